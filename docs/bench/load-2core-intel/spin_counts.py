import os, sys, time, subprocess, warnings, json
import numpy as np
warnings.filterwarnings("ignore")
import fastdrop
rng = np.random.default_rng(0)
which = sys.argv[1]
if which == "uci":
    X = rng.standard_normal((246, 6)).astype(np.float32); y = X @ rng.standard_normal(6)
    mk = lambda: fastdrop.MLPRegressor(hidden_layer_sizes=(50,), batch_size=128, max_iter=100, tol=0, n_iter_no_change=10**6, random_state=0, n_threads=2); steps = 200
else:
    X = rng.standard_normal((3200, 784)).astype(np.float32); y = rng.integers(0, 10, 3200)
    mk = lambda: fastdrop.MLPClassifier(hidden_layer_sizes=(512, 512), batch_size=128, max_iter=1, tol=0, n_iter_no_change=10**6, random_state=0, solver="sgd", n_threads=2); steps = 25
def run(n_busy, rounds=5):
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n_busy)]
    time.sleep(0.3)
    try:
        ts = []
        for r in range(rounds):
            m = mk(); t = time.perf_counter(); m.fit(X, y); ts.append((time.perf_counter() - t) / steps * 1e6)
    finally:
        for p in procs: p.kill()
    return round(float(np.median(ts)))
print(which, os.environ.get("GOMP_SPINCOUNT", os.environ.get("OMP_WAIT_POLICY", "default")), "quiet", run(0), "busy2", run(2), "quiet", run(0))
