"""One process: the median of 3 epochs (after a warm-up) of the epoch benchmark's fastdrop
model, 60000x784 (512, 512) batch 128, SGD Nesterov, 2 threads; prints seconds. argv[1]
'nosplit' computes every product in one np.matmul (no K split)."""
import sys
import time
import warnings

import numpy as np

import fastdrop
import fastdrop.network as network
from fastdrop.suite.datasets import load_xy

if len(sys.argv) > 1 and sys.argv[1] == "nosplit":
    network.K_WHOLE = 10**9
warnings.simplefilter("ignore")
X, y = load_xy("synthetic-60k")
X = np.ascontiguousarray(X, dtype=np.float32)
est = fastdrop.MLPClassifier((512, 512), solver="sgd", learning_rate_init=0.01, momentum=0.9,
                             batch_size=128, n_threads=2, random_state=0)
est.partial_fit(X, y, classes=np.unique(y))
t = []
for _ in range(3):
    t0 = time.perf_counter()
    est.partial_fit(X, y)
    t.append(time.perf_counter() - t0)
print(np.median(t))
