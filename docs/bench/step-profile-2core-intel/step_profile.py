"""Where fastdrop's 60000x784 (512, 512) epoch spends the time its GEMMs do not: cProfile of
one epoch (tottime per function), and the per-step fixed cost measured on a tiny network of
the same batch count."""
import cProfile
import io
import pstats
import time
import warnings

import numpy as np

import fastdrop
from fastdrop.suite.datasets import load_xy

X, y = load_xy("synthetic-60k")
X = np.ascontiguousarray(X, dtype=np.float32)
classes = np.unique(y)


def est(hidden):
    return fastdrop.MLPClassifier(hidden, solver="sgd", learning_rate_init=0.01, momentum=0.9,
                                  batch_size=128, n_threads=2, random_state=0)


warnings.simplefilter("ignore")
big = est((512, 512))
big.partial_fit(X, y, classes=classes)  # warm-up epoch
t = []
for _ in range(3):
    t0 = time.perf_counter(); big.partial_fit(X, y); t.append(time.perf_counter() - t0)
print(f"(512, 512) epoch: {1000 * np.median(t):.0f} ms (median of 3); history split of the "
      f"last: forward {1000 * big.history_['time_forward'][-1]:.0f}, backward "
      f"{1000 * big.history_['time_backward'][-1]:.0f}, update "
      f"{1000 * big.history_['time_update'][-1]:.0f} ms")
tiny = est((8, 8))
tiny.partial_fit(X[:, :8].copy(), y, classes=classes)
Xs = np.ascontiguousarray(X[:, :8])
t = []
for _ in range(5):
    t0 = time.perf_counter(); tiny.partial_fit(Xs, y); t.append(time.perf_counter() - t0)
print(f"8-8-8-10 epoch, same 469 steps: {1000 * np.median(t):.0f} ms: "
      f"{1e6 * np.median(t) / 469:.0f} us of fixed cost per step")
pr = cProfile.Profile()
pr.enable()
big.partial_fit(X, y)
pr.disable()
s = io.StringIO()
pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(18)
print(s.getvalue()[-3500:])
