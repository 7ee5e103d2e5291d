"""Under load: the time per mini-batch step of fastdrop and scikit-learn with the cores free
and with other processes busy on them (`fastdrop bench --only load`).

Three cases, as in issue 27: a UCI-sized regression (246x6, hidden 50, batch 128), digits
(1797x64, hidden 100, batch 200) and a MNIST-sized classifier (the first ROWS rows of
synthetic-60k, 784-512-512-10, batch 128, SGD). Implementations: fastdrop at its default
threads (all cores, its serial path, step policy and compiled step loop included), the same
with every step on all cores (``fastdrop-fixed``: FASTDROP_ADAPTIVE_THREADS=0), the same with
every epoch on the Python step loop (``fastdrop-python-loop``: FASTDROP_COMPILED_STEPS=0),
fastdrop on one thread, and scikit-learn's MLP. Each round runs every implementation under both conditions: ``quiet``,
and ``loaded`` with BUSY processes spinning (``while True: pass``; default one per core,
FASTDROP_BENCH_BUSY to change, at most 4 per core), started before and killed after that
condition's fits. Conditions alternate their order from round to round, implementations
rotate within one, so each ratio compares times from the same round. A fit's time over its
steps (epochs x batches) is the time per step; it includes the fit's fixed costs, as a
user's fit does.

Run:  python -m pytest bench/bench_load.py --benchmark-json=load.json
"""
import contextlib
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import fastdrop
from fastdrop._timing import rotated_round

QUICK = os.environ.get("FASTDROP_BENCH_PROFILE") == "quick"
ROUNDS = int(os.environ.get("FASTDROP_BENCH_ROUNDS", 0)) or (3 if QUICK else 9)
CORES = fastdrop.get_num_threads()
BUSY = min(int(os.environ.get("FASTDROP_BENCH_BUSY", CORES)), 4 * CORES)
ROWS = 1280 if QUICK else 6400  # of synthetic-60k, the MNIST-sized case
SETTLE_S = 0.2  # after starting or killing the busy processes


def _uci():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((246, 6)).astype(np.float32)
    return X, X @ rng.standard_normal(6), "regressor", dict(hidden_layer_sizes=(50,),
                                                            batch_size=128), 30 if QUICK else 100


def _digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return ((X / 16).astype(np.float32), y, "classifier",
            dict(hidden_layer_sizes=(100,), batch_size=200), 3 if QUICK else 10)


def _mnist_sized():
    from fastdrop.suite.datasets import load_xy
    X, y = load_xy("synthetic-60k")
    return (np.ascontiguousarray(X[:ROWS], dtype=np.float32), y[:ROWS], "classifier",
            dict(hidden_layer_sizes=(512, 512), batch_size=128, solver="sgd",
                 learning_rate_init=0.01), 1)


CASES = {"uci-246x6": _uci, "digits": _digits, "784-512-512": _mnist_sized}
IMPLS = ("fastdrop", "fastdrop-fixed", "fastdrop-python-loop", "fastdrop-1thread", "sklearn")
CONDITIONS = ("quiet", "loaded")
# fastdrop as it would run with one of its parts switched off: the environment of its fits
_ENVIRONMENTS = {"fastdrop-fixed": {"FASTDROP_ADAPTIVE_THREADS": "0"},  # every step on all cores
                 "fastdrop-python-loop": {"FASTDROP_COMPILED_STEPS": "0"}}  # no compiled loop


def _estimator(impl, kind, params, epochs):
    from sklearn import neural_network as sk

    common = dict(params, max_iter=epochs, tol=0.0, n_iter_no_change=10**6, random_state=0)
    if impl == "sklearn":
        return (sk.MLPRegressor if kind == "regressor" else sk.MLPClassifier)(**common)
    cls = fastdrop.MLPRegressor if kind == "regressor" else fastdrop.MLPClassifier
    return cls(**common, n_threads=1 if impl == "fastdrop-1thread" else None)


@contextlib.contextmanager
def _environment(impl):
    """The implementation's environment (_ENVIRONMENTS) while its fit runs."""
    changes = _ENVIRONMENTS.get(impl, {})
    before = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value


def _fit_runner(impl, X, y, kind, params, epochs):
    def run():
        with warnings.catch_warnings(), _environment(impl):
            warnings.simplefilter("ignore")  # a fixed number of epochs: not converged
            _estimator(impl, kind, params, epochs).fit(X, y)
    return run


@contextlib.contextmanager
def busy_processes(n):
    """``n`` processes spinning on the CPU while the block runs; always killed after."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(SETTLE_S)
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
        time.sleep(SETTLE_S)


@pytest.mark.parametrize("case", list(CASES))
def test_load(benchmark, case):
    X, y, kind, params, epochs = CASES[case]()
    steps = epochs * -(-X.shape[0] // params["batch_size"])
    runners = [_fit_runner(impl, X, y, kind, params, epochs) for impl in IMPLS]
    for run in runners:  # untimed: first touch, the pool's first start
        run()
    times = {c: [[] for _ in IMPLS] for c in CONDITIONS}
    state = {"round": 0}

    def one_round():
        r = state["round"]
        for condition in (CONDITIONS if r % 2 == 0 else CONDITIONS[::-1]):
            with (busy_processes(BUSY) if condition == "loaded" else contextlib.nullcontext()):
                rotated_round(runners, r, times[condition])
        state["round"] += 1

    benchmark.group = f"load {case}"
    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    build = fastdrop.build_info()
    benchmark.extra_info.update(
        case=case, steps=steps, busy=BUSY, cores=CORES, n_threads=CORES,
        cases=[[c, impl] for c in CONDITIONS for impl in IMPLS],
        times=[[t / steps for t in times[c][i]] for c in CONDITIONS for i in range(len(IMPLS))],
        simd=build["simd"], blas_kernel=build["blas_kernel"])
