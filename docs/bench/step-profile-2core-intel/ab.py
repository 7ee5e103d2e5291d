"""Interleaved rounds of ab_one.py under each configuration (separate processes, rotated
order); paired per-round ratios to the default, their median and its distribution-free
interval (fastdrop.suite.stats.median_ci)."""
import os
import subprocess
import sys

import numpy as np

from fastdrop.suite.stats import median_ci

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = {"default": ({}, []), "no adaptive threads": ({"FASTDROP_ADAPTIVE_THREADS": "0"}, []),
           "own OpenBLAS pool": ({"FASTDROP_SHARED_BLAS_POOL": "0"}, []),
           "no K split": ({}, ["nosplit"])}
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
times = {k: [] for k in CONFIGS}
names = list(CONFIGS)
for r in range(rounds):
    for name in names[r % len(names):] + names[:r % len(names)]:
        env, args = CONFIGS[name]
        out = subprocess.run([sys.executable, os.path.join(HERE, "ab_one.py"), *args],
                             env={**os.environ, **env}, capture_output=True, text=True,
                             check=True)
        times[name].append(float(out.stdout.strip().splitlines()[-1]))
    print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in times.items()),
          flush=True)
base = np.array(times["default"])
for name in names:
    ratios = np.array(times[name]) / base
    low, high, cov = median_ci(ratios)
    print(f"{name:22s} {np.median(times[name]):.3f} s  x default {np.median(ratios):.3f} "
          f"[{low:.3f}, {high:.3f}] (coverage {cov:.3f}, {rounds} rounds)")
