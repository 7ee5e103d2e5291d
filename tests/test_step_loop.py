"""The compiled step loop (fastdrop._compiled_epoch, _step_loop.pxi) against the Python loop:
the same weights, losses and history, bit for bit, wherever it takes a fit."""
import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import load_digits

import fastdrop
from fastdrop import _compiled_epoch, _nn_kernels

BLAS = _compiled_epoch.numpy_blas()
needs_loop = pytest.mark.skipif(BLAS is None, reason=f"no compiled step loop here: "
                                                     f"{_compiled_epoch._find_numpy_blas()[1]}")


# ---- products: numpy's choice, numpy's bits --------------------------------------------------

def _operand(rng, shape, dtype, transposed):
    a = rng.standard_normal(shape[::-1] if transposed else shape).astype(dtype)
    return a.T if transposed else a


@needs_loop
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", [(7, 33, 5), (1, 20, 6), (12, 20, 1), (9, 1, 4), (1, 1, 4),
                                     (6, 1, 1), (128, 300, 50), (3, 2, 2), (1, 300, 1),
                                     (1, 1, 1), (3, 0, 4), (0, 5, 2), (4, 6, 0)])
def test_products_match_matmul(rng, dtype, m, k, n):
    for ta in (False, True):
        for tb in (False, True):
            a, b = _operand(rng, (m, k), dtype, ta), _operand(rng, (k, n), dtype, tb)
            out = np.empty((m, n), dtype)
            assert _nn_kernels.direct_matmul(BLAS, a, b, out), (m, k, n, ta, tb)
            np.testing.assert_array_equal(out, a @ b, err_msg=str((m, k, n, ta, tb)))


def test_product_kinds_follow_numpy():
    # (a strides, b strides, out strides, m, n, p) -> numpy's matmul: 1 gemm, 2 and 3 gemv,
    # 4 its loop over one inner index, 5 empty, 6 dot, 0 its other loops (refused)
    cases = [((5, 1), (1, 5), (4, 1), 3, 5, 4, 1),
             ((5, 1), (4, 1), (4, 1), 1, 5, 4, 2),
             ((5, 1), (1, 5), (1, 1), 3, 5, 1, 3),
             ((1, 1), (4, 1), (4, 1), 3, 1, 4, 4),
             ((5, 1), (1, 1), (1, 1), 1, 5, 1, 6),
             ((1, 1), (1, 1), (1, 1), 1, 1, 1, 6),
             ((5, 1), (4, 1), (4, 1), 3, 0, 4, 5),
             ((10, 2), (4, 1), (4, 1), 3, 5, 4, 0)]
    for (a0, a1), (b0, b1), (o0, o1), m, n, p, kind in cases:
        assert _nn_kernels.matmul_kind(a0, a1, b0, b1, o0, o1, m, n, p) == kind


# ---- whole fits ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16, y[:600]


def _regression(rows, features, outputs, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    y = X @ rng.standard_normal((features, outputs))
    return X, (y[:, 0] if outputs == 1 else y)


@pytest.fixture
def loop_calls(monkeypatch):
    """Counts the compiled loop's epochs."""
    calls = []
    run = _nn_kernels.train_epoch
    monkeypatch.setattr(_nn_kernels, "train_epoch", lambda *a: calls.append(1) or run(*a))
    return calls


def _fit(monkeypatch, compiled, make, X, y, fit=None):
    monkeypatch.setenv("FASTDROP_COMPILED_STEPS", "1" if compiled else "0")
    est = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (fit or (lambda e: e.fit(X, y)))(est)
    return est


def _assert_same_fit(a, b):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_, strict=True):
        np.testing.assert_array_equal(p, q)
    assert a.loss_curve_ == b.loss_curve_
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_
    assert a.max_norm_clipped_ == b.max_norm_clipped_
    for key, column in a.history_.items():
        if not key.startswith("time"):
            np.testing.assert_array_equal(column, b.history_[key], err_msg=key)


C, R = fastdrop.MLPClassifier, fastdrop.MLPRegressor
# name -> (estimator, its parameters, data: "digits" or (rows, features, outputs))
FITS = {
    "adam": (C, dict(hidden_layer_sizes=(40,)), "digits"),
    "two hidden, dropout": (C, dict(hidden_layer_sizes=(32, 24), dropout=0.5,
                                    input_dropout=0.2), "digits"),
    "sgd nesterov, L1 + L2": (C, dict(hidden_layer_sizes=(30,), solver="sgd", alpha=1e-3,
                                      l1=1e-4), "digits"),
    "sgd plain momentum, invscaling": (C, dict(hidden_layer_sizes=(30,), solver="sgd",
                                               nesterovs_momentum=False,
                                               learning_rate="invscaling",
                                               learning_rate_init=0.1), "digits"),
    "sgd no momentum, adaptive": (C, dict(hidden_layer_sizes=(30,), solver="sgd", momentum=0.0,
                                          learning_rate="adaptive", n_iter_no_change=1,
                                          tol=1.0), "digits"),
    "classic scaling": (C, dict(hidden_layer_sizes=(30,), dropout=0.4,
                                dropout_scale="classic"), "digits"),
    "float64": (C, dict(hidden_layer_sizes=(30,), dropout=0.3, dtype="float64"), "digits"),
    "batch mode": (C, dict(hidden_layer_sizes=(40, 30), dropout=0.5, dropout_mode="batch"),
                   "digits"),
    "batch mode, inputs, sgd, L1 + L2": (C, dict(hidden_layer_sizes=(30,), dropout=0.5,
                                                 input_dropout=0.2, dropout_mode="batch",
                                                 solver="sgd", alpha=1e-3, l1=1e-4), "digits"),
    "batch mode, tanh, classic, max-norm": (C, dict(hidden_layer_sizes=(24, 24), dropout=0.4,
                                                    dropout_mode="batch", activation="tanh",
                                                    dropout_scale="classic", max_norm=0.8),
                                            "digits"),
    "batch mode, units dropped to none": (R, dict(hidden_layer_sizes=(2, 3), dropout=0.7,
                                                  dropout_mode="batch", batch_size=16),
                                          (90, 3, 1)),
    "batch mode, wide rows, float64": (R, dict(hidden_layer_sizes=(300,), dropout=0.5,
                                               dropout_mode="batch", dtype="float64"),
                                       (120, 400, 2)),
    "gaussian dropout": (C, dict(hidden_layer_sizes=(30, 20), dropout=0.3, input_dropout=0.1,
                                 dropout_kind="gaussian"), "digits"),
    "gaussian, tanh, float64": (R, dict(hidden_layer_sizes=(16,), dropout=0.3, dtype="float64",
                                        dropout_kind="gaussian", activation="tanh"),
                                (150, 4, 1)),
    "alpha dropout, selu": (C, dict(hidden_layer_sizes=(30, 20), dropout=0.2, input_dropout=0.1,
                                    dropout_kind="alpha", activation="selu", init="lecun"),
                            "digits"),
    "alpha, relu, sgd": (R, dict(hidden_layer_sizes=(16,), dropout=0.2, dropout_kind="alpha",
                                 solver="sgd", learning_rate_init=0.01), (200, 5, 2)),
    "dropconnect": (C, dict(hidden_layer_sizes=(30, 20), dropconnect=0.3), "digits"),
    "dropconnect + dropout, L2, max-norm": (C, dict(hidden_layer_sizes=(30,), dropconnect=0.2,
                                                    dropout=0.3, alpha=1e-3, max_norm=1.0),
                                            "digits"),
    "dropconnect, split inner dimension": (R, dict(hidden_layer_sizes=(20,), dropconnect=0.5,
                                                   batch_size=300), (700, 321, 1)),
    "tanh, dropout": (C, dict(hidden_layer_sizes=(30, 20), activation="tanh", dropout=0.4,
                              input_dropout=0.1), "digits"),
    "logistic": (C, dict(hidden_layer_sizes=(30,), activation="logistic"), "digits"),
    "identity, float64": (R, dict(hidden_layer_sizes=(12,), activation="identity",
                                  dropout=0.2, dtype="float64"), (150, 4, 1)),
    "selu": (R, dict(hidden_layer_sizes=(16, 16), activation="selu"), (200, 5, 2)),
    "max-norm that binds": (C, dict(hidden_layer_sizes=(30, 20), dropout=0.5, solver="sgd",
                                    learning_rate_init=0.5, max_norm=0.5), "digits"),
    "early stopping": (C, dict(hidden_layer_sizes=(30,), early_stopping=True,
                               n_iter_no_change=2), "digits"),
    "no shuffle": (C, dict(hidden_layer_sizes=(30,), shuffle=False), "digits"),
    "binary": (C, dict(hidden_layer_sizes=(20,)), "binary"),
    "one output": (R, dict(hidden_layer_sizes=(50,), batch_size=128), (246, 6, 1)),
    "two outputs, sgd": (R, dict(hidden_layer_sizes=(50,), solver="sgd",
                                 learning_rate_init=0.01), (246, 6, 2)),
    "poisson": (R, dict(hidden_layer_sizes=(16,), loss="poisson"), "poisson"),
    "gaussian likelihood": (R, dict(hidden_layer_sizes=(16,), loss="gaussian_nll",
                                    dropout=0.2), (200, 5, 2)),
    "gaussian likelihood, batch mode": (R, dict(hidden_layer_sizes=(16,), loss="gaussian_nll",
                                                dropout=0.3, dropout_mode="batch"),
                                        (200, 5, 1)),
    "one feature": (R, dict(hidden_layer_sizes=(8,)), (100, 1, 1)),
    "split inner dimension": (R, dict(hidden_layer_sizes=(20,), batch_size=257, dropout=0.5),
                              (700, 321, 1)),
    "last batch of one row": (R, dict(hidden_layer_sizes=(12,), batch_size=32), (97, 5, 2)),
    "float64 one output": (R, dict(hidden_layer_sizes=(12, 6), dtype="float64", dropout=0.2),
                           (150, 4, 1)),
    # wide enough that every chunked kernel has several chunks to share between threads
    "wide, dropout, sgd + L2": (C, dict(hidden_layer_sizes=(300, 200), dropout=0.5,
                                        input_dropout=0.2, solver="sgd", alpha=1e-3), "digits"),
    "wide batch mode, max-norm": (C, dict(hidden_layer_sizes=(300, 200), dropout=0.5,
                                          input_dropout=0.2, dropout_mode="batch",
                                          max_norm=1.0), "digits"),
    "wide tanh, gaussian, dropconnect": (C, dict(hidden_layer_sizes=(300, 120), dropout=0.3,
                                                 dropout_kind="gaussian", activation="tanh",
                                                 dropconnect=0.2), "digits"),
    "wide alpha, selu, float64": (C, dict(hidden_layer_sizes=(300,), dropout=0.2,
                                          dropout_kind="alpha", activation="selu",
                                          dtype="float64"), "digits"),
}


def _data(spec, digits):
    if spec == "digits":
        return digits
    if spec == "binary":
        return digits[0], digits[1] % 2
    if spec == "poisson":
        X, y = _regression(300, 5, 1)
        return X, np.exp(y / 4)
    return _regression(*spec)


@needs_loop
@pytest.mark.parametrize("name", list(FITS))
def test_same_fit_as_python_loop(monkeypatch, loop_calls, digits, simd, name):
    cls, params, spec = FITS[name]
    X, y = _data(spec, digits)
    make = lambda: cls(**params, max_iter=4, random_state=0, n_threads=1)  # noqa: E731
    compiled = _fit(monkeypatch, True, make, X, y)
    assert len(loop_calls) == compiled.n_iter_ > 0
    _assert_same_fit(compiled, _fit(monkeypatch, False, make, X, y))
    assert len(loop_calls) == compiled.n_iter_


@needs_loop
@pytest.mark.parametrize("name", list(FITS))
def test_same_fit_as_python_loop_on_two_threads(monkeypatch, loop_calls, digits,
                                                threads_at_any_size, name):
    """Two threads, the fit's step policy choosing each run's count: the Python loop's bits
    on two threads, and (float32, BLAS on the kernels' pool) one thread's too."""
    cls, params, spec = FITS[name]
    X, y = _data(spec, digits)
    make = lambda: cls(**params, max_iter=4, random_state=0, n_threads=2)  # noqa: E731
    compiled = _fit(monkeypatch, True, make, X, y)
    assert loop_calls
    _assert_same_fit(compiled, _fit(monkeypatch, False, make, X, y))
    if compiled._net.dtype == np.float32 and _kernel_threads(2) == 2:
        one = lambda: cls(**params, max_iter=4, random_state=0, n_threads=1)  # noqa: E731
        _assert_same_fit(compiled, _fit(monkeypatch, True, one, X, y))


@needs_loop
@pytest.mark.parametrize("plan, run", [
    (dict(steps=10), 10),                                              # no bounds: whole runs
    (dict(steps=10, stop_above=1e-12, window=8, recent=(1.0,) * 3), 1),  # mean above at once
    (dict(steps=10, stop_above=1e-12, window=8), 4),                   # once half the window
    (dict(steps=10, stop_below=1e9, window=8, recent=(1.0,) * 5), 1),
    (dict(steps=10, stop_above=1e9, window=8), 10)])                   # a bound never crossed
def test_runs_end_where_the_plan_says(monkeypatch, digits, plan, run):
    """train_epoch's runs: at most plan.steps steps, ending after the step whose time brings
    the window's mean past a bound (the drift test StepThreads makes)."""
    from fastdrop import _threading, estimator

    class Planned(_threading.FixedThreads):
        def __init__(self):
            super().__init__(1)
            self.runs = []

        def plan(self):
            self.runs.append(0)
            return _threading.RunPlan(1, **plan)

        def record(self, seconds, rows):
            assert seconds > 0 and rows == 50
            self.runs[-1] += 1

    policy = Planned()
    monkeypatch.setattr(estimator, "step_threads", lambda *a: policy)
    X, y = digits
    C(hidden_layer_sizes=(20,), batch_size=50, max_iter=1, n_threads=1,
      random_state=0).fit(X[:500], y[:500])
    assert sum(policy.runs) == 10, policy.runs  # the epoch's last run may be cut short
    assert set(policy.runs[:-1]) <= {run} and 0 < policy.runs[-1] <= run, policy.runs


def _kernel_threads(n):
    from fastdrop._threading import thread_budget
    with thread_budget(n) as kernel_threads:
        return kernel_threads


@needs_loop
@pytest.mark.parametrize("case", ["weights", "zero-weight batches", "balanced classes",
                                  "batch mode, float64, sgd + L2"])
def test_sample_weights_give_the_same_fit(monkeypatch, loop_calls, digits, case):
    """Row weights: each batch's loss and penalty scaled by their sum as numpy sums it (its
    pairwise summation), a batch of zero weights skipped as the Python loop skips it."""
    X, y = digits
    rng = np.random.default_rng(1)
    weights = {"weights": rng.uniform(0.1, 3.0, len(y)),
               "zero-weight batches": np.repeat(rng.integers(0, 2, len(y) // 40 + 1), 40)
               [:len(y)] * rng.uniform(0.5, 1.5, len(y)),
               "balanced classes": None,
               "batch mode, float64, sgd + L2": rng.uniform(0.0, 2.0, len(y))}[case]
    params = dict(hidden_layer_sizes=(24,), batch_size=40, max_iter=3, random_state=0,
                  n_threads=1, shuffle=case != "zero-weight batches")
    if case == "balanced classes":
        params["class_weight"] = "balanced"
    if case.startswith("batch mode"):
        params.update(dropout=0.5, dropout_mode="batch", dtype="float64", solver="sgd",
                      alpha=1e-2)
    make = lambda: C(**params)  # noqa: E731
    fit = lambda est: est.fit(X, y, sample_weight=weights)  # noqa: E731
    compiled = _fit(monkeypatch, True, make, X, y, fit)
    assert len(loop_calls) == compiled.n_iter_
    _assert_same_fit(compiled, _fit(monkeypatch, False, make, X, y, fit))


def test_pairwise_sum_is_numpys():
    """The loop's sum of a batch's weights against ndarray.sum, over lengths and dtypes."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for n in list(range(1, 40)) + [127, 128, 129, 200, 256, 257, 700, 4097]:
            w = (rng.random(n) * 10.0 ** rng.uniform(-3, 3, n)).astype(dtype)
            assert _nn_kernels.pairwise_sum(w) == w.sum(), (dtype, n)


@needs_loop
def test_partial_fit_and_warm_start_continue_alike(monkeypatch, loop_calls, digits):
    X, y = digits
    make = lambda: C(hidden_layer_sizes=(30,), dropout=0.3, random_state=0,  # noqa: E731
                     n_threads=1, max_iter=3, warm_start=True)

    def three_calls(est):
        est.partial_fit(X, y, classes=np.unique(y))
        est.fit(X, y)
        est.partial_fit(X[:200], y[:200])

    compiled = _fit(monkeypatch, True, make, X, y, three_calls)
    assert len(loop_calls) == 5
    _assert_same_fit(compiled, _fit(monkeypatch, False, make, X, y, three_calls))


@needs_loop
@pytest.mark.parametrize("early_stopping", [False, True])
def test_divergence_is_reported_alike(monkeypatch, loop_calls, early_stopping):
    X, y = _regression(200, 4, 1)
    make = lambda: R(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=10.0,  # noqa
                     max_iter=20, random_state=0, n_threads=1, early_stopping=early_stopping)
    outcomes = []
    for compiled in (True, False):
        monkeypatch.setenv("FASTDROP_COMPILED_STEPS", "1" if compiled else "0")
        est = make()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                est.fit(X, y)
                error = None
            except FloatingPointError as raised:
                error = str(raised)
        outcomes.append((error, [str(w.message) for w in caught
                                 if "diverge" in str(w.message).lower()],
                         [c.copy() for c in est.coefs_] if hasattr(est, "coefs_") else None,
                         est._training_state.step))
    assert loop_calls
    (e1, w1, c1, s1), (e2, w2, c2, s2) = outcomes
    assert (e1, w1, s1) == (e2, w2, s2)
    assert (e1 is not None) != early_stopping and (bool(w1) == early_stopping)
    if c1 is not None:
        for p, q in zip(c1, c2):
            np.testing.assert_array_equal(p, q)


def test_history_times_are_counted(monkeypatch, loop_calls, digits):
    est = _fit(monkeypatch, True, lambda: C(hidden_layer_sizes=(30,), max_iter=3, n_threads=1,
                                            random_state=0), *digits)
    h = est.history_
    for fwd, passes, update, total in zip(h["time_forward"], h["time_forward_backward"],
                                          h["time_update"], h["time"]):
        assert 0 < fwd < passes and 0 < update and passes + update <= total


# Fits the loop does not take, each for one reason (why_not's sentence).
ELSEWHERE = {
    "X is not a dense": (dict(), "sparse"),
    "FASTDROP_COMPILED_STEPS=0": (dict(), "off"),
}


@pytest.mark.parametrize("reason", list(ELSEWHERE))
def test_other_fits_stay_on_the_python_loop(monkeypatch, loop_calls, digits, reason):
    params, how = ELSEWHERE[reason]
    X, y = digits
    monkeypatch.setenv("FASTDROP_COMPILED_STEPS", "0" if how == "off" else "1")
    seen = []
    why_not = _compiled_epoch.why_not
    monkeypatch.setattr(_compiled_epoch, "why_not", lambda *a: seen.append(why_not(*a)) or
                        seen[-1])
    est = C(hidden_layer_sizes=(20,), max_iter=2, n_threads=1, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(sparse.csr_matrix(X) if how == "sparse" else X, y)
    assert not loop_calls
    if BLAS is not None or how == "off":
        assert seen and seen[-1].startswith(reason)


def test_multithreaded_steps_are_compiled_too(monkeypatch, loop_calls, digits,
                                              threads_at_any_size):
    """Steps whose kernels run on several threads (the shared BLAS pool) take the loop as
    one-thread steps do; where BLAS cannot share the pool (numpy 1.26's OpenBLAS, a serial
    build) the kernels run on one thread, BLAS keeping its own threads."""
    X, y = digits
    C(hidden_layer_sizes=(20,), max_iter=2, n_threads=2, random_state=0).fit(X, y)
    assert bool(loop_calls) == (BLAS is not None)


def test_records_are_checked():
    epoch = np.zeros(1, _compiled_epoch.EPOCH_RECORD)
    with pytest.raises(ValueError, match="epoch must be one EPOCH_RECORD"):
        _nn_kernels.train_epoch(np.zeros(8, np.uint8), np.zeros(8, np.uint8), False)
    epoch["n_layers"] = 2
    with pytest.raises(ValueError, match="layers must be 2 LAYER_RECORDs"):
        _nn_kernels.train_epoch(epoch.view(np.uint8),
                                np.zeros(1, _compiled_epoch.LAYER_RECORD).view(np.uint8), False)
    layers = np.zeros(2, _compiled_epoch.LAYER_RECORD).view(np.uint8)
    epoch["n_rows"], epoch["batch_size"], epoch["threads"], epoch["batch_to"] = 10, 4, 0, 3
    with pytest.raises(ValueError, match="threads must be at least 1, got 0"):
        _nn_kernels.train_epoch(epoch.view(np.uint8), layers, False)
    epoch["threads"], epoch["batch_to"] = 1, 4
    with pytest.raises(ValueError, match="batches 0..4 are not a run of the epoch's 3"):
        _nn_kernels.train_epoch(epoch.view(np.uint8), layers, False)
    epoch["batch_to"], epoch["window"], epoch["recent_len"] = 3, 8, 9
    with pytest.raises(ValueError, match="got 8 and 9"):
        _nn_kernels.train_epoch(epoch.view(np.uint8), layers, False)
