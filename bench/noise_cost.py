"""The rest of the dropout family's forward passes on 2^24 float32 elements against
np.copyto of the same array and the fastest numpy code for the same operation (and torch's,
when installed): interleaved rounds at 1 thread and at all threads (numpy, single-threaded,
runs in every round), each round's ratios paired, with the distribution-free interval of
their median.

    python -m bench.noise_cost [rounds]

"x copy" is copy time / op time (1.0: the op runs at memory-copy speed); "x numpy" is
numpy's time / the op's.
"""
import sys

import numpy as np

import fastdrop
from fastdrop._benchreport import round_ratios
from fastdrop.suite.stats import median_ci

from fastdrop._baselines import IMPLEMENTATIONS
from fastdrop._timing import interleaved

OPS = ("forward", "gaussian_dropout", "alpha_dropout")
SIZE = 2**24
COPY = ("copy", "np.copyto")


def _runners(x, n_threads):
    y = np.empty_like(x)
    runners = {COPY: lambda: np.copyto(y, x)}
    for impl in ("fastdrop", "numpy", "torch"):
        try:
            kernels = IMPLEMENTATIONS[impl](x, None, n_threads)
        except ImportError:  # torch is a baseline, not a dependency
            continue
        runners.update({(op, impl): getattr(kernels, op) for op in OPS})
    return runners


def _speedup(slow, fast):
    """Median and interval of slow / fast over the rounds."""
    ratios = round_ratios(slow, fast)
    lo, hi, _ = median_ci(ratios)
    return f"{np.median(ratios):.2f} ({lo:.2f} - {hi:.2f})"


def main(rounds=15):
    x = np.random.default_rng(0).standard_normal(SIZE).astype(np.float32)
    print(f"{SIZE} float32 elements, {int(rounds)} interleaved rounds, "
          f"SIMD {fastdrop.build_info()['simd']}")
    print("| op | impl | threads | ms | x copy (95% CI) | x numpy (95% CI) |")
    print("|---|---|---:|---:|---|---|")
    for n_threads in sorted({1, fastdrop.get_num_threads()}):
        times = interleaved(_runners(x, n_threads), int(rounds), settle_s=0.05)
        for (op, impl), ts in times.items():
            if (op, impl) == COPY or impl == "numpy" and n_threads > 1:
                continue
            vs_numpy = "" if impl == "numpy" else _speedup(times[(op, "numpy")], ts)
            print(f"| {op} | {impl} | {n_threads} | {1e3 * np.median(ts):.1f} | "
                  f"{_speedup(times[COPY], ts)} | {vs_numpy} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
