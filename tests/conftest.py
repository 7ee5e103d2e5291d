import numpy as np
import pytest

from fastdrop import _kernels

_DEFAULT_SIMD = _kernels.simd_name()
SIMD_PATHS = ["portable"] + (["avx2"] if _DEFAULT_SIMD == "avx2" else [])


@pytest.fixture(params=SIMD_PATHS)
def simd(request):
    """Run the test once per code path (AVX2 where the CPU has it, and the portable C)."""
    _kernels.set_simd(request.param == "avx2")
    yield request.param
    _kernels.set_simd(_DEFAULT_SIMD == "avx2")


@pytest.fixture
def rng():
    return np.random.default_rng(20261127)
