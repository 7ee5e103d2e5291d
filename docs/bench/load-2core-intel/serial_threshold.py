import time, warnings, numpy as np
warnings.filterwarnings("ignore")
import fastdrop
rng = np.random.default_rng(0)
cfgs = [(6, (50,), 128), (64, (100,), 200), (64, (256,), 200), (6, (50,), 4096), (784, (32,), 128), (784, (64,), 128), (784, (128,), 128), (256, (256, 256), 128), (784, (256,), 128), (784, (512, 512), 128)]
for nf, h, b in cfgs:
    sizes = (nf,) + h + (10,)
    work = b * sum(a * c for a, c in zip(sizes, sizes[1:]))
    n = max(b * 20, 2000)
    X = rng.standard_normal((n, nf)).astype(np.float32); y = rng.integers(0, 10, n)
    steps = -(-n // b) * 2
    res = {1: [], 2: []}
    for r in range(7):
        for t in ((1, 2) if r % 2 else (2, 1)):
            m = fastdrop.MLPClassifier(h, batch_size=b, max_iter=2, tol=0, n_iter_no_change=10**6, random_state=0, n_threads=t, dropout=0.5)
            t0 = time.perf_counter(); m.fit(X, y); res[t].append((time.perf_counter() - t0) / steps * 1e6)
    r2 = np.median(np.array(res[2]) / np.array(res[1]))
    print(f"{sizes} b{b} work {work/1e6:.2f}M: 1t {np.median(res[1]):.0f} us, 2t {np.median(res[2]):.0f} us, 2t/1t {r2:.2f}", flush=True)
