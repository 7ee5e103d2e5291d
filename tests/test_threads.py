"""Thread control: fastdrop's default, OMP_NUM_THREADS, threadpoolctl, and the serial build."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import fastdrop
from fastdrop import _openmp_helpers

# their subject is the multithreaded path, small data included
pytestmark = pytest.mark.usefixtures("threads_at_any_size")

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


def _concurrent_fit_data():
    from sklearn.datasets import make_classification
    X, y = make_classification(3000, 100, n_informative=20, n_classes=5, random_state=0)
    return X.astype(np.float32), y


def _fit(X, y, seed, mode):
    from fastdrop import MLPClassifier
    return MLPClassifier((128, 128), max_iter=4, random_state=seed, n_threads=2, solver="sgd",
                         learning_rate_init=0.05, dropout=0.3, dropout_mode=mode,
                         tol=0).fit(X, y)


def _in_threads(fn, n):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(fn, range(n)))


@needs_openmp
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("n_fits, mode", [(2, "element"), (8, "element"), (2, "batch")])
def test_concurrent_fits_equal_serial_fits_bit_for_bit(n_fits, mode):
    """Fits on Python threads share OpenBLAS's job buffers through the BLAS callback: each
    multithreaded BLAS call must run alone (_blas_pool.h), or they corrupt each other."""
    X, y = _concurrent_fit_data()
    serial = [_fit(X, y, seed, mode) for seed in range(n_fits)]
    concurrent = _in_threads(lambda seed: _fit(X, y, seed, mode), n_fits)
    for a, b in zip(serial, concurrent):
        assert a.loss_curve_ == b.loss_curve_
        for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            np.testing.assert_array_equal(wa, wb)
    # Predictions at once, from the fitted models, give the serial probabilities too.
    expected = [est.predict_proba(X) for est in serial]
    got = _in_threads(lambda i: serial[i].predict_proba(X), n_fits)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)


@needs_openmp
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_numpy_products_on_another_thread_survive_fits_starting_and_ending():
    """Switching OpenBLAS's callback while another thread's product ran on OpenBLAS's own
    workers hung that product: the pool, once installed, stays (OpenMPBlasPool)."""
    import threading
    import time
    from fastdrop import MLPClassifier
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((300, 300)).astype(np.float32) for _ in range(2))
    expected = a @ b
    X = rng.standard_normal((600, 100)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    stop, counts = threading.Event(), {"products": 0, "wrong": 0}

    def products():
        while not stop.is_set():
            counts["wrong"] += not np.array_equal(a @ b, expected)
            counts["products"] += 1

    worker = threading.Thread(target=products, daemon=True)
    worker.start()
    deadline, fits = time.perf_counter() + 4.0, 0
    while time.perf_counter() < deadline:
        MLPClassifier((128,), max_iter=1, n_threads=2, random_state=0).fit(X, y)
        fits += 1
    stop.set()
    worker.join(timeout=30)
    assert not worker.is_alive(), f"a numpy product hung after {fits} fits"
    assert counts["wrong"] == 0 and counts["products"] > 0 and fits > 10


FORK_CHILD = """
import multiprocessing as mp, sys, warnings
import numpy as np
import fastdrop
from fastdrop import MLPClassifier

X = np.random.default_rng(0).standard_normal((600, 40)).astype(np.float32)
y = (X[:, 0] > 0).astype(int)

def work():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fastdrop.dropout(np.ones(1 << 20, np.float32), 0.5, seed=1, n_threads=2)
        MLPClassifier((64,), max_iter=2, n_threads=2, random_state=0).fit(X, y)
        X @ X.T  # numpy's BLAS, with OpenBLAS's own threading back
    single = fastdrop.get_num_threads() == 1 and any("fork" in str(w.message) for w in caught)
    sys.exit(0 if single else 3)

if __name__ == "__main__":
    fastdrop.dropout(np.ones(1 << 20, np.float32), 0.5, seed=1, n_threads=2)
    MLPClassifier((64,), max_iter=2, n_threads=2, random_state=0).fit(X, y)
    child = mp.get_context("fork").Process(target=work)
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        sys.exit(2)
    sys.exit(child.exitcode)
"""


@needs_openmp
def test_a_fork_started_child_runs_on_one_thread_and_does_not_hang(tmp_path):
    script = tmp_path / "fork_child.py"
    script.write_text(FORK_CHILD)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 2, "the forked child hung"
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("n_threads", [100_000, 2**31, 2**63])
def test_too_many_threads_is_an_error_naming_the_argument(n_threads):
    with pytest.raises(ValueError, match="n_threads must be at most"):
        fastdrop.dropout(np.ones(10), 0.5, seed=0, n_threads=n_threads)
    with pytest.raises(ValueError, match="n_threads must be at most"):
        fastdrop.set_num_threads(n_threads)


def test_too_many_threads_is_refused_by_the_estimator():
    from fastdrop import MLPClassifier
    with pytest.raises(ValueError, match="n_threads must be at most"):
        MLPClassifier(n_threads=100_000, max_iter=1).fit(np.ones((4, 2)), [0, 1, 0, 1])


@pytest.mark.parametrize("n_threads", [1, 2])
def test_fits_flush_subnormals_then_restore_the_mode(n_threads):
    """Inside a fit's thread budget subnormal results are 0 (a penalized fit's decaying
    weights would otherwise slow every multiply 14-30x); outside, the caller's mode is back."""
    from fastdrop._openmp_helpers import flush_denormals
    from fastdrop._threading import thread_budget

    tiny, half = np.float32(1e-38), np.float32(0.01)
    previous = flush_denormals(True, 1)
    has_mode = tiny * half == 0
    flush_denormals(previous, 1)
    if not has_mode:
        pytest.skip("this CPU has no flush-to-zero mode")
    assert tiny * half != 0
    with thread_budget(n_threads):
        assert tiny * half == 0
    assert tiny * half != 0


# ---- a fit's threads step by step (issue 27) ---------------------------------------------

def _openblas_versions():
    found = [re.match(r"(\d+)\.(\d+)\.(\d+)", lib.get("version") or "")
             for lib in threadpool_info() if lib.get("internal_api") == "openblas"]
    return [tuple(map(int, m.groups())) if m else (0, 0, 0) for m in found]


# The invariance was measured on OpenBLAS 0.3.30/0.3.31 (numpy 2's wheels); numpy 1.26's
# OpenBLAS 0.3.23 gave other bits on 1 and 2 threads whatever the split (CI's minimum-versions
# run, 2026-12-06), and there the step policy keeps a fit's count fixed (no shared pool).
needs_invariant_blas = pytest.mark.skipif(
    not _openblas_versions() or min(_openblas_versions()) < (0, 3, 27),
    reason="float32 products are thread-count invariant on OpenBLAS 0.3.27+ only (measured)")

@needs_invariant_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_products_are_close_to_numpy_and_float32_ones_ignore_the_thread_count(dtype):
    """gemm_into splits an inner dimension OpenBLAS would cut differently on 1 and on more
    threads (K = 784 did): float32 products give the same bits on 1-3 threads."""
    from fastdrop.network import gemm_into
    rng = np.random.default_rng(7)
    for m, k, n in [(128, 784, 512), (200, 600, 100), (37, 1500, 300), (64, 256, 10),
                    (128, 768, 512), (5, 300, 7)]:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((n, k)).astype(dtype).T
        outs = []
        for t in (1, 2, 3):
            with threadpool_limits(t, user_api="blas"):
                outs.append(gemm_into(a, b, np.empty((m, n), dtype)))
        np.testing.assert_allclose(outs[0], a.astype(np.float64) @ b,
                                   rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-3)
        if dtype == np.float32:
            for other in outs[1:]:
                np.testing.assert_array_equal(outs[0], other)


class _Clock:
    """A step clock for StepThreads: each step takes ``cost[count]`` seconds per row."""

    def __init__(self, policy_costs):
        self.t, self.cost, self.running = 0.0, policy_costs, None

    def __call__(self):
        return self.t


def _run_policy(costs_at, steps, n=4, rows=100, driver="steps"):
    from fastdrop._threading import StepThreads
    StepThreads._last_choice.clear()
    StepThreads._schedules.clear()
    clock = _Clock(None)
    blas = []
    policy = StepThreads(n, blas.append, clock=clock)
    counts = _drive(policy, clock, lambda i, k: costs_at(i)[k], steps, rows, driver)
    return policy, counts, blas


def _drive(policy, clock, cost, steps, rows, driver, before=lambda i: None):
    """Each step's count as the Python loop asks for it (``driver="steps"``: begin_step and
    end_step around each step) or as the compiled loop does ("runs": plan() for a run of
    steps, a run ending early past the plan's bounds, then record() for each of its steps)."""
    counts = []
    while len(counts) < steps:
        before(len(counts))
        if driver == "steps":
            k = policy.begin_step()
            clock.t += cost(len(counts), k) * rows
            policy.end_step(rows)
            counts.append(k)
            continue
        plan, times = policy.plan(), []
        window = list(plan.recent)
        for _ in range(min(plan.steps or steps, steps - len(counts))):
            times.append(cost(len(counts), plan.threads) * rows)
            counts.append(plan.threads)
            if _drifted(plan, window, times[-1] / rows):
                break
        for seconds in times:
            policy.record(seconds, rows)
    return counts


def _drifted(plan, window, per_row):
    """_step_loop.pxi's _drifted: the window's mean past a bound of the plan."""
    if not plan.window or not (plan.stop_above or plan.stop_below):
        return False
    window[:] = (window + [per_row])[-plan.window:]
    if len(window) < plan.window // 2:
        return False
    mean = float(np.mean(window))
    return bool(plan.stop_above and mean > plan.stop_above) or mean < plan.stop_below


DRIVERS = pytest.mark.parametrize("driver", ["steps", "runs"])


@pytest.mark.parametrize("seed", range(4))
def test_runs_of_steps_get_the_counts_steps_one_by_one_get(seed):
    """The compiled loop's runs (plan, then record) against begin_step / end_step around
    every step, on noisy step times with a load that comes and goes and stalls on the
    budget: the same count at every step."""
    rng = np.random.default_rng(seed)
    noise, stalls = rng.lognormal(0, 0.4, (3000, 2)), rng.random(3000) < 0.02

    def costs(i):
        loaded = 600 <= i < 1800
        return {4: (20.0 if stalls[i] else 1.2) * noise[i, 0] if loaded else noise[i, 0],
                1: (4.0 if loaded else 3.0) * noise[i, 1]}

    steps = _run_policy(costs, 3000, driver="steps")[1]
    assert _run_policy(costs, 3000, driver="runs")[1] == steps
    assert 0 < steps.count(1) < 3000


@DRIVERS
def test_step_threads_keep_the_budget_on_a_quiet_machine_and_probe_less_and_less(driver):
    policy, counts, blas = _run_policy(lambda i: {4: 1.0, 1: 3.0}, 2000, driver=driver)
    assert policy.current == 4 and policy.switches == 0
    probes = counts.count(1)
    # probes grow rarer (period doubling up to MAX_PERIOD), each one step (1 thread is 3x slower)
    assert 0 < probes <= 5 + 2000 // policy.MAX_PERIOD, probes
    assert counts[-400:].count(1) <= 6
    assert blas and set(blas) <= {1, 4}


@DRIVERS
def test_step_threads_move_to_one_thread_under_load_and_back_when_it_leaves(driver):
    busy = lambda i: {4: 1.0, 1: 3.0} if i < 300 or i >= 1300 else {4: 20.0, 1: 4.0}  # noqa
    policy, counts, _ = _run_policy(busy, 2000, driver=driver)
    assert counts[400:1300].count(1) >= 0.9 * 900          # loaded: one thread
    assert counts[1500:].count(4) >= 0.9 * 500              # quiet again: the budget
    assert policy.current == 4 and policy.switches == 2


@DRIVERS
def test_a_bad_count_costs_one_step_per_probe_and_the_next_fit_starts_on_the_choice(driver):
    from fastdrop._threading import StepThreads
    loaded = lambda i: {4: 50.0, 1: 1.0}  # noqa: E731
    policy, counts, _ = _run_policy(loaded, 1000, driver=driver)
    slow = [i for i, k in enumerate(counts) if k == 4]
    # the first 4 steps, then one step per probe (the probe ends at its first bad step)
    assert slow[:4] == [0, 1, 2, 3] and len(slow) <= 4 + 3 + 1000 // StepThreads.MAX_PERIOD, slow
    StepThreads._last_choice[4] = 1  # as the fit above left it
    nxt = StepThreads(4, lambda k: None)
    assert nxt.begin_step() == 1


def test_a_fit_of_the_same_model_goes_on_with_the_schedule_of_the_last_one():
    from fastdrop._threading import StepThreads
    StepThreads._schedules.clear()
    first = StepThreads(4, lambda k: None, model="m")
    first.current, first._period, first._since, first._reference = 1, 512, 100, 3.0
    again = StepThreads(4, lambda k: None, model="m")
    assert (again.current, again._period, again._since, again._reference) == (1, 512, 100, 3.0)
    assert again._recent == []  # its own steps' times
    other = StepThreads(4, lambda k: None, model="other")
    assert other._period == StepThreads.WINDOW // 2


@needs_invariant_blas
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kwargs", [{}, {"dropout": 0.5}, {"dropout": 0.5, "dropout_mode": "batch"}])
def test_a_fit_changing_its_threads_every_step_gives_the_bits_of_one_thread(monkeypatch,
                                                                             kwargs):
    """The adaptive policy may switch at any step: float32 fits (inner dimensions 600, 300
    and the batch) are the same bits whichever steps ran on which count."""
    from fastdrop import _threading, estimator

    class EveryOther(_threading.FixedThreads):
        def __init__(self, n, set_blas):
            super().__init__(n)
            self.set_blas, self.i = set_blas, 0

        def begin_step(self):
            self.i += 1
            k = 1 if self.i % 2 else 2
            self.set_blas(k)
            return k

        def plan(self):  # the compiled loop's runs: a step each
            return _threading.RunPlan(self.begin_step(), 1, 0.0, 0.0)

    rng = np.random.default_rng(3)
    X = rng.standard_normal((600, 600)).astype(np.float32)
    y = (X[:, :3].sum(axis=1) > 0).astype(int)

    def fit(n_threads):
        return fastdrop.MLPClassifier((300, 64), batch_size=100, max_iter=2, random_state=0,
                                      n_threads=n_threads, **kwargs).fit(X, y)

    serial = fit(1)
    monkeypatch.setattr(estimator, "step_threads",
                        lambda n, k, d, w: EveryOther(n, _threading.blas_threads_setter()))
    switching = fit(2)
    for a, b in zip(serial.coefs_ + serial.intercepts_,
                    switching.coefs_ + switching.intercepts_):
        np.testing.assert_array_equal(a, b)



@DRIVERS
def test_where_the_run_queue_says_the_cores_are_taken_no_step_tries_the_budget(driver):
    from fastdrop._threading import StepThreads, cores_free_for
    StepThreads._last_choice.clear()
    free = {"now": False}
    clock = _Clock(None)
    policy = StepThreads(4, lambda k: None, clock=clock, room=lambda n: free["now"])

    def before(i):
        if i >= 400:
            free["now"] = True  # the other processes end

    counts = _drive(policy, clock, lambda i, k: {4: 1.0, 1: 3.0}[k], 600, 100, driver, before)
    assert set(counts[:400]) == {1}  # started on one thread, never tried the budget
    assert counts[400:420].count(4) >= 10 and policy.current == 4
    assert cores_free_for(1) in (True, False, None)
