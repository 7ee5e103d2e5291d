"""Time per training epoch: fastdrop vs scikit-learn vs torch vs a jitted JAX MLP, with and
without dropout 0.5 on both hidden layers, and two floors of the same shapes: the GEMMs alone,
and the GEMMs plus the memory traffic of an exact SGD step.

Run:  python -m pytest bench/bench_epochs.py --benchmark-json=epochs.json
One benchmark per (dataset, threads): a round trains every implementation for one epoch, so
the per-implementation epoch times in ``extra_info["epoch_times"]`` are interleaved.
Datasets: the study's synthetic-60k set (60000x784, 10 classes) with 784-512-512-10 and batch
128, digits with (512, 512) and batch 200, and a make_regression set of the synthetic set's size
for the regressors (fastdrop's MLPRegressor against scikit-learn's; "quick" profile: 5000 rows).
"""
import importlib.util
import os

import numpy as np
import pytest

import fastdrop
from fastdrop.suite.datasets import load_xy

from .mlp_baselines import EPOCH_IMPLEMENTATIONS
from fastdrop._timing import benchmark_rounds

QUICK = os.environ.get("FASTDROP_BENCH_PROFILE") == "quick"
# FASTDROP_BENCH_ROUNDS overrides the timed rounds; FASTDROP_BENCH_THREADS ("2,16") the
# thread counts (default: 1 and all cores)
_ROUNDS = int(os.environ.get("FASTDROP_BENCH_ROUNDS", 0))
DATASETS = {  # name: (loader, hidden layers, batch size, timed rounds)
    "synthetic": ("synthetic", (512, 512), 128, _ROUNDS or (1 if QUICK else 9)),
    "digits": ("digits", (512, 512), 200, _ROUNDS or (3 if QUICK else 11)),
    "regression": ("regression", (512, 512), 128, _ROUNDS or (1 if QUICK else 9)),
}
# Seconds of idle before each timed epoch: the previous implementation's thread pools stop
# spinning (OpenBLAS's workers spin ~0.1 s after their last job) instead of time-sharing the
# cores with the next epoch's threads (docs/bench/README.md, "Why the code is as it is").
SETTLE_S = float(os.environ.get("FASTDROP_BENCH_SETTLE", 0.0 if QUICK else 0.2))
ALL = fastdrop.get_num_threads()
THREADS = sorted({int(t) for t in os.environ["FASTDROP_BENCH_THREADS"].split(",")}
                 if os.environ.get("FASTDROP_BENCH_THREADS") else {1, ALL})


def load(name):
    """The study's own datasets (fastdrop.suite.datasets), standardized, unsplit: synthetic
    is its MNIST-sized preset (5000 rows in the quick profile); regression a make_regression
    set of the same size with a standardized target."""
    if name == "regression":
        from sklearn.datasets import make_regression

        X, y = make_regression(5000 if QUICK else 60000, 784, n_informative=100, noise=10.0,
                               random_state=0)
        return X.astype(np.float32), ((y - y.mean()) / y.std()).astype(np.float32)
    if name == "synthetic":
        name = "synthetic-5000x784x10" if QUICK else "synthetic-60k"
    return load_xy(name)


CASES = [("fastdrop", 0.0), ("fastdrop", 0.5), ("fastdrop-batch", 0.5), ("sklearn", 0.0),
         ("torch", 0.0), ("torch", 0.5), ("torch+fastdrop", 0.5), ("jax", 0.0), ("jax", 0.5),
         ("gemm-floor", 0.0),
         ("gemm+update-floor", 0.0)]


REGRESSION_CASES = [("fastdrop-regressor", 0.0), ("fastdrop-regressor", 0.5),
                    ("sklearn-regressor", 0.0)]


def _available(impl, n_threads):
    library = impl.split("+")[0]  # torch+fastdrop: torch's model with fastdrop's dropout
    if library in ("torch", "jax") and importlib.util.find_spec(library) is None:
        return False  # not installed: skipped, never a dependency
    # XLA's CPU thread pool is fixed at start-up: JAX is measured at all threads only
    return not (impl == "jax" and n_threads != ALL)


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("dataset", DATASETS)
def test_epochs(benchmark, dataset, n_threads):
    """Every implementation trains one epoch per round, in an order rotated each round, so
    all ratios compare epochs timed under the same load of a shared machine; each epoch
    starts after ``SETTLE_S`` of idle, so that none inherits another's spinning threads."""
    _, hidden, batch, rounds = DATASETS[dataset]
    X, y = load(dataset)
    cases = [(impl, p) for impl, p in (REGRESSION_CASES if dataset == "regression" else CASES)
             if _available(impl, n_threads)]
    runners = [EPOCH_IMPLEMENTATIONS[impl](X, y, hidden, p, batch, n_threads)
               for impl, p in cases]
    benchmark.group = f"epochs {dataset} threads={n_threads}"
    build = fastdrop.build_info()
    # one burn-in round (allocation, JIT compilation, caches), then timed rounds
    times = benchmark_rounds(benchmark, [r.epoch for r in runners], rounds, SETTLE_S)
    benchmark.extra_info.update(
        dataset=dataset, n_threads=n_threads, n_samples=len(y), batch_size=batch,
        hidden=list(hidden), blas_kernel=build["blas_kernel"],
        simd=build["simd"], optimizer_simd=build["optimizer_simd"],
        cases=[[impl, p] for impl, p in cases],
        settle_s=SETTLE_S, blas_pool=build["blas_pool"],
        epoch_times=times)
