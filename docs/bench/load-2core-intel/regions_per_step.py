"""Parallel regions per training step: run under LD_PRELOAD of count_regions.c
(gcc -O2 -shared -fPIC -o libcount.so count_regions.c -ldl), FD_COUNT_LIB naming it."""
import ctypes, os, sys, warnings
import numpy as np
warnings.filterwarnings("ignore")
lib = ctypes.CDLL(os.environ.get("FD_COUNT_LIB", "./libcount.so")); lib.fd_region_count.restype = ctypes.c_long
import fastdrop
from sklearn.datasets import load_digits
rng = np.random.default_rng(0)
cases = {}
X = rng.standard_normal((246, 6)).astype(np.float32); yr = X @ rng.standard_normal(6)
cases["uci 246x6 h50 b128"] = (fastdrop.MLPRegressor, X, yr, dict(hidden_layer_sizes=(50,), batch_size=128), 2)
Xd, yd = load_digits(return_X_y=True); Xd = (Xd / 16).astype(np.float32)
cases["digits h100 b200"] = (fastdrop.MLPClassifier, Xd, yd, dict(hidden_layer_sizes=(100,), batch_size=200), 9)
Xm = rng.standard_normal((1280, 784)).astype(np.float32); ym = rng.integers(0, 10, 1280)
cases["784-512-512 b128"] = (fastdrop.MLPClassifier, Xm, ym, dict(hidden_layer_sizes=(512, 512), batch_size=128, solver="sgd"), 10)
for p in (0.0, 0.5):
  for name, (cls, X, y, kw, steps) in cases.items():
    def fit(E):
        m = cls(**kw, max_iter=E, tol=0, n_iter_no_change=10**6, random_state=0, n_threads=2, dropout=p)
        c0 = lib.fd_region_count(); m.fit(X, y); return lib.fd_region_count() - c0
    a, b = fit(2), fit(4)
    print(f"p={p} {name}: regions per step {(b - a) / (2 * steps):.1f}; per fit fixed {a - 2 * (b - a) / 2:.0f}")
