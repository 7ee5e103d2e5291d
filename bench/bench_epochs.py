"""Time per training epoch: fastdrop vs scikit-learn vs torch vs a jitted JAX MLP, with and
without dropout 0.5 on both hidden layers, and the GEMM-only floor of the same shapes.

Run:  python -m pytest bench/bench_epochs.py --benchmark-json=epochs.json
Datasets: make_classification 60000x784 (10 classes) with 784-512-512-10 and batch 128, and
digits with (512, 512) and batch 200 ("quick" profile: 5000x784 and digits).
"""
import importlib.util
import os

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification
from sklearn.preprocessing import StandardScaler

import fastdrop

from .mlp_baselines import EPOCH_IMPLEMENTATIONS

QUICK = os.environ.get("FASTDROP_BENCH_PROFILE") == "quick"
DATASETS = {  # name: (loader, hidden layers, batch size, timed rounds)
    "synthetic": ("synthetic", (512, 512), 128, 1 if QUICK else 3),
    "digits": ("digits", (512, 512), 200, 3 if QUICK else 10),
}
ALL = fastdrop.get_num_threads()
THREADS = sorted({1, ALL})
_CACHE = {}


def load(name):
    if name not in _CACHE:
        if name == "synthetic":
            n = 5000 if QUICK else 60000
            X, y = make_classification(n, 784, n_informative=100, n_classes=10,
                                       random_state=0)
        else:
            X, y = load_digits(return_X_y=True)
        _CACHE[name] = (StandardScaler().fit_transform(X).astype(np.float32), y)
    return _CACHE[name]


CASES = [("fastdrop", 0.0), ("fastdrop", 0.5), ("fastdrop-batch", 0.5), ("sklearn", 0.0),
         ("torch", 0.0), ("torch", 0.5), ("jax", 0.0), ("jax", 0.5), ("gemm-floor", 0.0)]


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("impl, dropout", CASES, ids=[f"{i}-p{d}" for i, d in CASES])
@pytest.mark.parametrize("dataset", DATASETS)
def test_epoch(benchmark, dataset, impl, dropout, n_threads):
    if impl in ("torch", "jax") and importlib.util.find_spec(impl) is None:
        pytest.skip(f"{impl} is not installed")
    if impl == "jax" and n_threads != ALL:
        pytest.skip("XLA's CPU thread pool is fixed at start-up: measured at all threads only")
    _, hidden, batch, rounds = DATASETS[dataset]
    X, y = load(dataset)
    runner = EPOCH_IMPLEMENTATIONS[impl](X, y, hidden, dropout, batch, n_threads)
    benchmark.group = f"epoch {dataset} threads={n_threads}"
    info = fastdrop.build_info()["blas"]
    benchmark.extra_info.update(impl=impl, dropout=dropout, n_threads=n_threads,
                                dataset=dataset, n_samples=len(y), batch_size=batch,
                                hidden=list(hidden),
                                blas_kernel=info[0]["architecture"] if info else "none")
    # one burn-in epoch (allocation, JIT compilation, caches), then timed epochs
    benchmark.pedantic(runner.epoch, rounds=rounds, warmup_rounds=1, iterations=1)
