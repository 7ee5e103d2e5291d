"""Thread control: fastdrop's default, OMP_NUM_THREADS, threadpoolctl, and the serial build."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import fastdrop
from fastdrop import _openmp_helpers

needs_openmp = pytest.mark.skipif(not _openmp_helpers.openmp_enabled(),
                                  reason="serial build: one thread by construction")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def restore_threads():
    before = _openmp_helpers.omp_max_threads()
    explicit = fastdrop._threading._explicit
    yield
    _openmp_helpers.omp_set_max_threads(before)
    fastdrop._threading._explicit = explicit


@needs_openmp
def test_set_and_get_num_threads(restore_threads):
    fastdrop.set_num_threads(3)
    assert fastdrop.get_num_threads() == 3
    fastdrop.set_num_threads(-1)
    assert fastdrop.get_num_threads() == _openmp_helpers._CPU_COUNT


@needs_openmp
def test_threadpoolctl_limits_fastdrop(restore_threads):
    assert any(lib["user_api"] == "openmp" for lib in threadpool_info())
    fastdrop.set_num_threads(2)
    with threadpool_limits(1):
        assert fastdrop.get_num_threads() == 1
    assert fastdrop.get_num_threads() == 2
    with threadpool_limits(1, user_api="openmp"):
        assert fastdrop.get_num_threads() == 1


def test_blas_limits_caps_and_restores_blas_from_one_controller():
    from fastdrop._threading import blas_limits

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    with blas_limits(1):
        assert set(blas_threads()) == {1}
        controller = fastdrop._threading._controller
    assert blas_threads() == before
    with blas_limits(1):
        assert fastdrop._threading._controller is controller  # scanned once, not per call


def test_negative_n_threads_semantics():
    n = fastdrop.get_num_threads()
    assert _openmp_helpers.effective_n_threads(-1) == n
    assert _openmp_helpers.effective_n_threads(-(n + 5)) == 1


@needs_openmp
def test_omp_num_threads_is_honoured():
    code = "import fastdrop; print(fastdrop.get_num_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "3"


PROBE = """
import json, numpy as np, fastdrop
x = np.random.default_rng(0).standard_normal((123, 4567)).astype(np.float32)
b = np.linspace(-1, 1, 4567).astype(np.float32)
y, m = fastdrop.relu_dropout(x, 0.5, seed=3, step=7, bias=b)
mask = fastdrop.bernoulli_mask(100_003, 0.3, seed=5, offset=2**33 + 17)
print(json.dumps({"openmp": fastdrop.build_info()["openmp"], "y": float(np.sum(y.astype(np.float64) ** 2)),
                  "bits": [int(w) for w in m.bits[:50]] + [int(w) for w in mask.bits[::97]],
                  "ysum": y.view(np.uint32).astype(np.uint64).sum().item()}))
"""


@pytest.mark.slow
def test_serial_build_gives_identical_results(tmp_path):
    """Build the extensions without OpenMP in a scratch copy and compare bit for bit."""
    pytest.importorskip("Cython")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "fastdrop", src / "fastdrop",
                    ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    shutil.copy(ROOT / "setup.py", src / "setup.py")
    env = dict(os.environ, FASTDROP_NO_OPENMP="1")
    subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=src, env=env,
                   check=True, capture_output=True)
    serial = subprocess.run([sys.executable, "-c", PROBE], cwd=src, capture_output=True,
                            text=True, check=True, env=dict(os.environ, PYTHONPATH=str(src)))
    here = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True,
                          text=True, check=True)
    serial, here = json.loads(serial.stdout), json.loads(here.stdout)
    assert serial["openmp"] is False
    assert serial["bits"] == here["bits"] and serial["ysum"] == here["ysum"]
