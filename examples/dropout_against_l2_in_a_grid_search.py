"""
Dropout against L2 in a grid search
===================================

:class:`fastdrop.MLPClassifier` is a scikit-learn estimator, so
:class:`~sklearn.model_selection.GridSearchCV` tunes it like any other. Here one search
covers two regularizers on equal terms: the drop rate (no penalty) and the L2 strength
``alpha`` (no dropout), each over five values, scored by 3-fold cross-validation on digits;
the test set is scored once, for the choice.
"""
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fastdrop import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                    random_state=0)
rates, alphas = [0.0, 0.1, 0.2, 0.3, 0.5], [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
grid = [{"mlpclassifier__dropout": rates, "mlpclassifier__alpha": [0.0]},
        {"mlpclassifier__alpha": alphas, "mlpclassifier__dropout": [0.0]}]
model = make_pipeline(StandardScaler(), MLPClassifier((128,), max_iter=60, random_state=0))
search = GridSearchCV(model, grid, cv=3)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # max_iter reached on some folds: the budget is fixed
    search.fit(X_train, y_train)
print("chosen by cross-validation:", search.best_params_)
print(f"its test accuracy: {search.score(X_test, y_test):.4f}")

# %%
# Cross-validated accuracy along each regularizer's grid (mean +- one standard deviation
# over the folds).
res = search.cv_results_
is_dropout = np.array([p["mlpclassifier__alpha"] == 0.0 for p in res["params"]])
fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True, layout="constrained")
for ax, rows, xs, label in ((a, is_dropout, rates, "drop rate"),
                            (b, ~is_dropout, alphas, "L2 alpha")):
    mean, sd = res["mean_test_score"][rows], res["std_test_score"][rows]
    ax.errorbar(xs, mean, sd, marker="o", capsize=3)
    ax.set_xlabel(label)
    ax.grid(alpha=0.3)
b.set_xscale("log")
a.set_ylabel("3-fold CV accuracy")
fig.suptitle("digits, MLP (128,), 60 epochs")
plt.show()
