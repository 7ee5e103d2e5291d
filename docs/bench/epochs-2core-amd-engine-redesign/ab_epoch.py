"""Median seconds per epoch (partial_fit) of fixed cases, for the fastdrop on sys.path."""
import json, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from sklearn.datasets import load_iris, load_digits, make_classification
from sklearn.preprocessing import StandardScaler
import fastdrop
from fastdrop import MLPClassifier

Xi, yi = load_iris(return_X_y=True); Xi = StandardScaler().fit_transform(Xi)
Xd, yd = load_digits(return_X_y=True); Xd = Xd / 16
Xs, ys = make_classification(5000, 784, n_informative=50, n_classes=10, random_state=0)
Xs = StandardScaler().fit_transform(Xs).astype(np.float32)
CASES = {
    "iris (100,) p0": (Xi, yi, dict(hidden_layer_sizes=(100,)), 1, 30),
    "iris (100,) p0.5": (Xi, yi, dict(hidden_layer_sizes=(100,), dropout=0.5), 1, 30),
    "digits (256,256) p0 1t": (Xd, yd, dict(hidden_layer_sizes=(256, 256)), 1, 7),
    "digits (256,256) p0.5 1t": (Xd, yd, dict(hidden_layer_sizes=(256, 256), dropout=0.5), 1, 7),
    "digits (256,256) batch0.5 1t": (Xd, yd, dict(hidden_layer_sizes=(256, 256), dropout=0.5, dropout_mode="batch"), 1, 7),
    "digits (256,256) l2 1t": (Xd, yd, dict(hidden_layer_sizes=(256, 256), alpha=1.0), 1, 7),
    "synth5k (512,512) p0 2t": (Xs, ys, dict(hidden_layer_sizes=(512, 512), batch_size=128, solver="sgd", learning_rate_init=0.01), 2, 3),
    "synth5k (512,512) p0.5 2t": (Xs, ys, dict(hidden_layer_sizes=(512, 512), batch_size=128, solver="sgd", learning_rate_init=0.01, dropout=0.5), 2, 3),
}
out = {}
for name, (X, y, kw, nt, epochs) in CASES.items():
    est = MLPClassifier(random_state=0, n_threads=nt, **kw)
    est.partial_fit(X, y, classes=np.unique(y)); est.partial_fit(X, y)
    times = []
    for _ in range(epochs):
        t = time.perf_counter(); est.partial_fit(X, y); times.append(time.perf_counter() - t)
    out[name] = float(np.median(times))
print(json.dumps({"file": fastdrop.__file__, "times": out}))
