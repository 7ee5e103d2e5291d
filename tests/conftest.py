import numpy as np
import pytest

from fastdrop._simd import set_simd, simd_paths

_DEFAULT_SIMD = simd_paths()["dropout"]
SIMD_PATHS = ["portable"] + (["avx2"] if _DEFAULT_SIMD == "avx2" else [])


@pytest.fixture(params=SIMD_PATHS)
def simd(request):
    """Run the test once per dropout-kernel code path (AVX2 where the CPU has it, and the
    portable C)."""
    set_simd(request.param)
    yield request.param
    set_simd("best")


@pytest.fixture
def rng():
    return np.random.default_rng(20261127)


@pytest.fixture
def threads_at_any_size(monkeypatch):
    """Fits of any size use their threads (no serial path for small steps): for tests whose
    subject is the multithreaded path on small data."""
    from fastdrop import _threading
    monkeypatch.setattr(_threading, "SERIAL_STEP_WORK", 0)
