"""
Batchwise dropout: cheaper epochs
=================================

Element dropout draws a mask per example; batchwise dropout (``dropout_mode="batch"``,
Graham et al. 2015) drops the same units for the whole mini-batch, so the matrix products of
a step shrink to the kept units: at p = 0.5 the hidden-to-hidden product is a quarter of its
size. Each epoch's wall time is in ``history_["time"]``. The figures below come from the
machine that built this page: read them as ratios.
"""
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification

from fastdrop import MLPClassifier

X, y = make_classification(6000, 256, n_informative=64, n_classes=10, random_state=0)
X = X.astype(np.float32)
settings = {"none": dict(dropout=0.0), "element 0.5": dict(dropout=0.5),
            "batch 0.5": dict(dropout=0.5, dropout_mode="batch")}
times = {}
for name, params in settings.items():
    est = MLPClassifier((1024, 1024), max_iter=4, batch_size=128, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 4 epochs: timing, not convergence
        est.fit(X, y)
    times[name] = float(np.median(est.history_["time"][1:]))  # the first epoch warms up
for name, t in times.items():
    print(f"{name:12s} {1000 * t:7.1f} ms per epoch, {t / times['none']:.2f}x no dropout")

# %%
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.barh(list(times), [1000 * t for t in times.values()])
ax.set_xlabel("milliseconds per epoch (median of 3)")
ax.set_title("6000 x 256, hidden 1024-1024, batch 128", fontsize=9)
ax.invert_yaxis()
plt.show()
