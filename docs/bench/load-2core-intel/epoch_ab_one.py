import sys, time, warnings, numpy as np
warnings.filterwarnings("ignore")
import fastdrop
from fastdrop.suite.datasets import load_xy
X, y = load_xy("synthetic-60k"); X = np.ascontiguousarray(X[:20000], dtype=np.float32); y = y[:20000]
p = float(sys.argv[1])
m = fastdrop.MLPClassifier((512, 512), batch_size=128, solver="sgd", learning_rate_init=0.01, max_iter=1, random_state=0, dropout=p)
m.fit(X[:1280], y[:1280])
t = time.perf_counter(); m.fit(X, y); print(time.perf_counter() - t)
