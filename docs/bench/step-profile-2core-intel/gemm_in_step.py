"""Time of each product inside fastdrop's training step against the same product timed alone
on the same thread pool, same process: 60000x784 (512, 512), batch 128, 2 threads."""
import collections
import time
import warnings

import numpy as np

import fastdrop
import fastdrop.network as network
from fastdrop._threading import thread_budget
from fastdrop.suite.datasets import load_xy

warnings.simplefilter("ignore")
X, y = load_xy("synthetic-60k")
X = np.ascontiguousarray(X, dtype=np.float32)
est = fastdrop.MLPClassifier((512, 512), solver="sgd", learning_rate_init=0.01, momentum=0.9,
                             batch_size=128, n_threads=2, random_state=0)
est.partial_fit(X, y, classes=np.unique(y))

inner = network.gemm_into
spent = collections.defaultdict(float)
calls = collections.Counter()


def timed(a, b, out):
    t0 = time.perf_counter()
    r = inner(a, b, out)
    key = (a.shape, b.shape, a.flags.c_contiguous, b.flags.c_contiguous)
    spent[key] += time.perf_counter() - t0
    calls[key] += 1
    return r


network.gemm_into = timed
for rnd in range(3):
    spent.clear(); calls.clear()
    t0 = time.perf_counter()
    est.partial_fit(X, y)
    epoch = time.perf_counter() - t0
    in_step = sum(spent.values())
    # each shape alone, as many calls as the epoch made, on the same pool and budget
    alone = 0.0
    rows = []
    with thread_budget(2):
        for (sa, sb, ca, cb), n in calls.items():
            a = np.random.rand(*sa).astype(np.float32)
            b = np.random.rand(*sb).astype(np.float32)
            a = a if ca else np.asfortranarray(a)
            b = b if cb else np.asfortranarray(b)
            out = np.empty((sa[0], sb[1]), np.float32)
            for _ in range(5):
                inner(a, b, out)
            t1 = time.perf_counter()
            for _ in range(n):
                inner(a, b, out)
            dt = time.perf_counter() - t1
            alone += dt
            rows.append((sa, sb, ca, cb, n, spent[(sa, sb, ca, cb)], dt))
    print(f"round {rnd}: epoch {epoch:.3f} s; products in the step {in_step:.3f} s; the same "
          f"products alone {alone:.3f} s; rest of the step {epoch - in_step:.3f} s")
for sa, sb, ca, cb, n, st, al in rows:
    print(f"  {sa} @ {sb} (C-contig {ca}/{cb}) x{n}: in step {1e6 * st / n:.0f} us, "
          f"alone {1e6 * al / n:.0f} us")
