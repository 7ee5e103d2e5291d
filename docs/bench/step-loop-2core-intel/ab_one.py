"""One process: the median of 3 epochs (after a warm-up) of the epoch benchmark's fastdrop
model, 60000x784 (512, 512) batch 128, SGD Nesterov, 2 threads, at drop rate argv[1] in mode
argv[2]; prints seconds. Which fastdrop runs is PYTHONPATH's (a checkout of another commit)."""
import sys
import time
import warnings

import numpy as np

import fastdrop
from fastdrop.suite.datasets import load_xy

warnings.simplefilter("ignore")
X, y = load_xy("synthetic-60k")
X = np.ascontiguousarray(X, dtype=np.float32)
est = fastdrop.MLPClassifier((512, 512), solver="sgd", learning_rate_init=0.01, momentum=0.9,
                             batch_size=128, n_threads=2, random_state=0,
                             dropout=float(sys.argv[1]), dropout_mode=sys.argv[2])
est.partial_fit(X, y, classes=np.unique(y))
t = []
for _ in range(3):
    t0 = time.perf_counter()
    est.partial_fit(X, y)
    t.append(time.perf_counter() - t0)
print(fastdrop.__file__, file=sys.stderr)
print(np.median(t))
