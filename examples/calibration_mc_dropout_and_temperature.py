"""
Calibration: weight scaling, MC dropout and temperature scaling
================================================================

A classifier's probabilities are *calibrated* when, of the points it gives 80%, about 80%
are right. Here one dropout network on MNIST-1D predicts three ways: weight scaling (one
deterministic pass), the mean of 100 stochastic passes (MC dropout, Gal & Ghahramani 2016),
and weight scaling with a temperature fitted on validation data
(:meth:`fastdrop.MLPClassifier.fit_temperature`, Guo et al. 2017); a network without dropout
for reference. :mod:`fastdrop.scores` scores each: negative log-likelihood, Brier score and
the expected calibration error (15 equal-width confidence bins).
"""
import warnings

import matplotlib.pyplot as plt
import numpy as np

from fastdrop import MLPClassifier, scores
from fastdrop.suite.datasets import load_split

split = load_split("mnist1d", 0)  # generated offline by the mnist1d package
common = dict(hidden_layer_sizes=(256, 256), learning_rate_init=3e-3, batch_size=64,
              max_iter=150, early_stopping=True, n_iter_no_change=15, random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    dropout = MLPClassifier(dropout=0.3, **common).fit(
        split.X_train, split.y_train, X_val=split.X_val, y_val=split.y_val)
    plain = MLPClassifier(**common).fit(split.X_train, split.y_train, X_val=split.X_val,
                                        y_val=split.y_val)
dropout.fit_temperature(split.X_val, split.y_val)
print(f"temperature fitted on validation: {dropout.temperature_:.3f}")
probas = {"weight scaling": dropout.predict_proba(split.X_test),
          "MC dropout (100 passes)": dropout.predict_proba(split.X_test, mc_samples=100),
          "temperature-scaled": dropout.predict_proba(split.X_test,
                                                      temperature=dropout.temperature_),
          "no dropout": plain.predict_proba(split.X_test)}
for name, p in probas.items():
    print(f"{name:24s} accuracy {np.mean(p.argmax(1) == split.y_test):.3f}  "
          f"NLL {scores.negative_log_likelihood(split.y_test, p):.3f}  "
          f"Brier {scores.brier_score(split.y_test, p):.3f}  "
          f"ECE {scores.expected_calibration_error(split.y_test, p):.3f}")

# %%
# The reliability diagram: accuracy against mean confidence in each bin.
fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfect calibration")
for name, p in probas.items():
    confidence, correct = p.max(1), p.argmax(1) == split.y_test
    bins = np.clip(np.ceil(confidence * 15).astype(int) - 1, 0, 14)
    seen = np.bincount(bins, minlength=15) > 0
    conf = np.bincount(bins, confidence, 15)[seen] / np.bincount(bins, minlength=15)[seen]
    acc = np.bincount(bins, correct, 15)[seen] / np.bincount(bins, minlength=15)[seen]
    ax.plot(conf, acc, "o-", ms=3, label=name)
ax.set_xlabel("confidence")
ax.set_ylabel("accuracy")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
ax.set_title("MNIST-1D test set, one repeat", fontsize=9)
plt.show()
