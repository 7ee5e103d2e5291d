"""numpy's OpenBLAS on fastdrop's OpenMP pool (OpenMPBlasPool): installed, restored, exact."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastdrop
from fastdrop import _openmp_helpers
from fastdrop._threading import (_blas_controller, _OpenBLASThreading, OpenMPBlasPool,
                                 blas_limits, openmp_blas_pool, thread_budget)

# their subject is the multithreaded path, small data included
pytestmark = pytest.mark.usefixtures("threads_at_any_size")

ADDRESS = _openmp_helpers.blas_callback_address()


def _hooks():
    return [_OpenBLASThreading(lc) for lc in _blas_controller().lib_controllers
            if lc.user_api == "blas" and lc.internal_api == "openblas"]


def _pool_available():
    return openmp_blas_pool().available()


needs_pool = pytest.mark.skipif(
    not _pool_available(),
    reason="no shared pool here (serial build, a BLAS other than a pthreads OpenBLAS >= "
           "0.3.27): fastdrop keeps the BLAS's own threads and its kernels on one thread")


@pytest.fixture(autouse=True)
def _default_pool(monkeypatch):
    monkeypatch.delenv("FASTDROP_SHARED_BLAS_POOL", raising=False)
    OpenMPBlasPool.uninstall()  # each test starts from OpenBLAS's own threading
    yield
    OpenMPBlasPool.uninstall()


def _installed():
    return {h.filepath: h.get() for h in _hooks()}


@needs_pool
def test_pool_installs_on_first_entry_and_stays():
    assert set(_installed().values()) == {0}
    with openmp_blas_pool() as shared:
        assert shared
        assert set(_installed().values()) == {ADDRESS}
        with openmp_blas_pool() as inner:  # nested: the same installation
            assert inner
    assert set(_installed().values()) == {ADDRESS}  # switching back mid-run can hang OpenBLAS
    with pytest.raises(KeyboardInterrupt):
        with openmp_blas_pool():
            raise KeyboardInterrupt
    assert set(_installed().values()) == {ADDRESS}
    OpenMPBlasPool.uninstall()
    assert set(_installed().values()) == {0}


def test_opt_out_leaves_blas_threading_alone(monkeypatch):
    monkeypatch.setenv("FASTDROP_SHARED_BLAS_POOL", "0")
    with openmp_blas_pool() as shared:
        assert shared is False
        assert set(_installed().values()) <= {0}
    with thread_budget(2) as kernel_threads:
        assert kernel_threads == 1  # two pools: the kernels stay on one thread


@needs_pool
def test_someone_elses_callback_is_left_alone(monkeypatch):
    monkeypatch.setattr(_OpenBLASThreading, "get", lambda self: 12345)
    with openmp_blas_pool() as shared:
        assert shared is False
    monkeypatch.undo()
    assert set(_installed().values()) == {0}


@needs_pool
def test_thread_budget_gives_the_kernels_the_whole_budget_on_a_shared_pool():
    with thread_budget(1) as kernel_threads:  # BLAS runs serially: nothing to install
        assert kernel_threads == 1
        assert set(_installed().values()) == {0}
    with thread_budget(2) as kernel_threads:
        assert kernel_threads == 2


@needs_pool
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_on_the_pool_is_bitwise_openblas_own(dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((700, 513)).astype(dtype)
    b = rng.standard_normal((513, 901)).astype(dtype)
    with blas_limits(2):
        own = a @ b
        with openmp_blas_pool():
            pooled = a @ b
            pooled_t = b.T @ a.T
    np.testing.assert_array_equal(pooled, own)
    np.testing.assert_array_equal(pooled_t, (b.T @ a.T))


FALLBACK = """
import numpy as np
from fastdrop._threading import blas_limits, openmp_blas_pool
rng = np.random.default_rng(0)
a = rng.standard_normal((600, 500)).astype(np.float32)
b = rng.standard_normal((500, 700)).astype(np.float32)
with blas_limits(2):
    own = a @ b
    with openmp_blas_pool() as shared:
        pooled = a @ b
print(shared, np.array_equal(own, pooled))
"""


@needs_pool
@pytest.mark.parametrize("env", [{"OMP_DYNAMIC": "true"}, {"OMP_THREAD_LIMIT": "1"}],
                         ids=["dynamic", "thread-limit"])
def test_jobs_run_on_threads_of_their_own_when_openmp_cannot_promise_a_team(env):
    # OpenBLAS's jobs wait on one another: a team smaller than the job count would hang, so
    # the callback runs them on POSIX threads instead (the timeout turns a hang into a failure)
    out = subprocess.run([sys.executable, "-c", FALLBACK], env=dict(os.environ, **env),
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["True", "True"]


@needs_pool
@pytest.mark.parametrize("mode", ["element", "batch"])
def test_fit_gives_the_same_bits_on_either_pool(monkeypatch, mode):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 40)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)

    def fit():
        est = fastdrop.MLPClassifier((64, 32), dropout=0.5, dropout_mode=mode, max_iter=3,
                                     batch_size=50, n_threads=2, random_state=0,
                                     solver="sgd", learning_rate_init=0.01)
        with pytest.warns(Warning):  # 3 epochs do not converge
            est.fit(X, y)
        return est

    shared = fit()
    OpenMPBlasPool.uninstall()
    monkeypatch.setenv("FASTDROP_SHARED_BLAS_POOL", "0")
    separate = fit()
    assert set(_installed().values()) == {0}
    for a, b in zip(shared.coefs_ + shared.intercepts_, separate.coefs_ + separate.intercepts_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(shared.predict_proba(X), separate.predict_proba(X))
