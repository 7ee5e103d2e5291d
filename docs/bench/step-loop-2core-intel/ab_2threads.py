"""The 2-thread epoch before the compiled step loop (a checkout of 9ae3ec3 at OLD, built in
place) and now, p = 0 and batch dropout 0.5: interleaved rounds of ab_one.py, one process
per configuration, rotated order; paired per-round ratios now / before with the median's
distribution-free interval.

    python ab_2threads.py OLD ROUNDS
"""
import os
import subprocess
import sys

import numpy as np

from fastdrop.suite.stats import median_ci

HERE = os.path.dirname(os.path.abspath(__file__))
NEW = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
old, rounds = sys.argv[1], int(sys.argv[2])
CONFIGS = {f"{when} {rate} {mode}": (root, rate, mode)
           for rate, mode in (("0", "element"), ("0.5", "batch"))
           for when, root in (("before", old), ("now", NEW))}
times = {k: [] for k in CONFIGS}
names = list(CONFIGS)
for r in range(rounds):
    for name in names[r % len(names):] + names[:r % len(names)]:
        root, rate, mode = CONFIGS[name]
        out = subprocess.run([sys.executable, os.path.join(HERE, "ab_one.py"), rate, mode],
                             env={**os.environ, "PYTHONPATH": root}, capture_output=True,
                             text=True, check=True, cwd=root)
        times[name].append(float(out.stdout.strip().splitlines()[-1]))
    print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in times.items()),
          flush=True)
for rate, mode in (("0", "element"), ("0.5", "batch")):
    before, now = (np.array(times[f"{w} {rate} {mode}"]) for w in ("before", "now"))
    ratios = now / before
    low, high, cov = median_ci(ratios)
    print(f"p={rate} {mode}: now {np.median(now):.3f} s, before {np.median(before):.3f} s, "
          f"now x before {np.median(ratios):.3f} [{low:.3f}, {high:.3f}] "
          f"(coverage {cov:.3f}, {rounds} rounds)")
