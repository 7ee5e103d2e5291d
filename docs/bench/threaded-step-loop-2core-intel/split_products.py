"""Products of one 784-512-512-10 step (batch 128, float32): OpenBLAS on 2 threads against
the same products with their output rows split between two Python threads, each on a
one-thread OpenBLAS call; interleaved rounds."""
import time, numpy as np
from concurrent.futures import ThreadPoolExecutor
from threadpoolctl import threadpool_limits
rng = np.random.default_rng(0)
f = np.float32
x = rng.standard_normal((128, 784), dtype=f)
W = [rng.standard_normal((512, 784), dtype=f), rng.standard_normal((512, 512), dtype=f),
     rng.standard_normal((10, 512), dtype=f)]
a1 = rng.standard_normal((128, 512), dtype=f); a2 = rng.standard_normal((128, 512), dtype=f)
d3 = rng.standard_normal((128, 10), dtype=f); d2 = rng.standard_normal((128, 512), dtype=f)
d1 = rng.standard_normal((128, 512), dtype=f)
# (A, B) of each product, out = A @ B
prods = [(x, W[0].T), (a1, W[1].T), (a2, W[2].T), (d3.T, a2), (d3, W[2]), (d2.T, a1),
         (d2, W[1]), (d1.T, x)]
outs = [np.empty((A.shape[0], B.shape[1]), f) for A, B in prods]
pool = ThreadPoolExecutor(2)
def whole():
    for (A, B), o in zip(prods, outs):
        np.matmul(A, B, out=o)
def split():
    for (A, B), o in zip(prods, outs):
        h = A.shape[0] // 2
        if h < 16:
            np.matmul(A, B, out=o); continue
        fut = pool.submit(np.matmul, A[h:], B, out=o[h:])
        np.matmul(A[:h], B, out=o[:h]); fut.result()
def timeit(fn, reps=200):
    t = time.perf_counter()
    for _ in range(reps): fn()
    return (time.perf_counter() - t) / reps
ref = [None]*len(outs)
with threadpool_limits(1):
    whole(); ref = [o.copy() for o in outs]
    split(); same = all(np.array_equal(r, o) for r, o in zip(ref, outs))
print("split gives one thread's bits:", same)
res = {"1 thread": [], "2 threads (OpenBLAS)": [], "2 threads (rows split)": []}
for r in range(7):
    with threadpool_limits(1): res["1 thread"].append(timeit(whole))
    with threadpool_limits(2): res["2 threads (OpenBLAS)"].append(timeit(whole))
    with threadpool_limits(1): res["2 threads (rows split)"].append(timeit(split))
for k, v in res.items():
    print(f"{k}: {np.median(v)*1e6:.0f} us per step's products")
ratios = np.array(res["2 threads (rows split)"]) / np.array(res["2 threads (OpenBLAS)"])
print("split x OpenBLAS's threads, per round:", np.round(ratios, 3))
