"""Kernel throughput: fastdrop vs numpy vs torch, against np.copyto of the same array.

Run:  python -m pytest bench/bench_kernels.py --benchmark-json=kernels.json
Each group is one (operation, size); the `copy` group of a size is the bandwidth reference.
`fastdrop bench` runs this file and prints elements/s and the ratios.
"""
import os

import numpy as np
import pytest

import fastdrop

from fastdrop._baselines import IMPLEMENTATIONS

SIZES = {"2^16": (2**16,), "2^20": (2**20,), "256x4096": (256, 4096), "2^24": (2**24,)}
if os.environ.get("FASTDROP_BENCH_PROFILE") == "quick":  # a smoke run: small arrays only
    SIZES = {"2^16": (2**16,), "64x1024": (64, 1024)}
OPS = ["mask_only", "forward", "backward", "relu_dropout", "relu_backward", "channel_dropout",
       "gaussian_dropout", "alpha_dropout"]
ALL = fastdrop.get_num_threads()
THREADS = sorted({1, ALL})


def _array(shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _record(benchmark, shape, impl, n_threads, op):
    build = fastdrop.build_info()
    benchmark.extra_info.update(
        elements=int(np.prod(shape)), impl=impl, n_threads=n_threads, op=op,
        simd=build["simd"], blas_kernel=build["blas_kernel"],
    )


@pytest.mark.parametrize("size", SIZES)
def test_copy(benchmark, size):
    """np.copyto of the same array: the memory-bandwidth reference."""
    shape = SIZES[size]
    benchmark.group = f"copy {size}"
    x = _array(shape)
    y = np.empty_like(x)
    _record(benchmark, shape, "copy", 1, "copy")
    benchmark(np.copyto, y, x)


@pytest.mark.parametrize("n_threads", THREADS)
@pytest.mark.parametrize("impl", list(IMPLEMENTATIONS))
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("op", OPS)
def test_kernel(benchmark, op, size, impl, n_threads):
    if impl == "torch":
        pytest.importorskip("torch")
    if impl == "numpy" and n_threads != 1:
        pytest.skip("numpy's element-wise operations are single-threaded")
    shape = SIZES[size]
    benchmark.group = f"{op} {size}"
    x = _array(shape)
    bias = np.linspace(-0.5, 0.5, shape[-1], dtype=np.float32) if len(shape) > 1 else None
    kernels = IMPLEMENTATIONS[impl](x, bias, n_threads)
    _record(benchmark, shape, impl, n_threads, op)
    benchmark(getattr(kernels, op))
