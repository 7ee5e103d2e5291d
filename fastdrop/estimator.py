"""MLPClassifier and MLPRegressor: scikit-learn estimators over :class:`fastdrop.network.MLP`
and the training loop of :mod:`fastdrop._trainer`, on a base (_BaseMLP) that holds
everything but what their targets are: the regressor is another loss and target encoding on
the same engine and loop."""
import functools
import math
import numbers
import warnings
from typing import NamedTuple

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning, NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import (_check_sample_weight, check_array, check_is_fitted,
                                      column_or_1d, validate_data)

from ._estimator_docs import document
from ._threading import (fit_threads, resolve_n_threads, step_threads, step_work,
                         thread_budget)
from ._trainer import DivergenceWarning, Trainer, TrainingState, TrainSettings
from ._validation import Options, Range, Satisfies, check_params
from .network import DROPOUT_KINDS, MLP
from .optim import SGD, Adam

__all__ = ["MLPClassifier", "MLPRegressor", "Predictive", "Uncertainty", "DivergenceWarning"]

# A prediction of fewer rows runs on the calling thread alone, without setting BLAS limits:
# below this size waking a team of threads costs more than it saves (the crossover measured
# by bench/bench_predict.py, docs/bench/predict-2core-amd/).
SERIAL_PREDICT_ROWS = 2


class Uncertainty(NamedTuple):
    """What :meth:`MLPClassifier.predict_uncertainty` returns, one value per sample."""

    proba: np.ndarray                # (n_samples, n_classes) mean over the passes
    predictive_entropy: np.ndarray   # H[mean_t p_t]: total
    expected_entropy: np.ndarray     # mean_t H[p_t]: aleatoric
    mutual_information: np.ndarray   # their difference: epistemic (BALD)


class Predictive(NamedTuple):
    """What :meth:`MLPRegressor.predict_distribution` returns: a Gaussian mixture of the
    passes, one component per pass. Arrays of shape (n_samples[, n_targets]) but ``passes``
    (T, n_samples[, n_targets]) and ``noise_std``, broadcastable to ``passes``: together
    they are what :func:`fastdrop.scores.mixture_log_likelihood` takes."""

    mean: np.ndarray            # mean over the passes
    std: np.ndarray             # total: sqrt(epistemic^2 + aleatoric^2)
    epistemic_std: np.ndarray   # spread of the passes' means (0 without MC or dropout)
    aleatoric_std: np.ndarray   # observation noise: 1 / sqrt(tau), or the network's own
    passes: np.ndarray          # each pass's mean
    noise_std: np.ndarray       # each pass's observation noise


_LOG_2PI = math.log(2 * math.pi)


def _best_precision(y, passes):
    """The tau maximizing the mean log-likelihood of y under the mixture of N(passes_t,
    1/tau): a bounded search over log tau (the likelihood is smooth and, for one pass,
    concave in it; its closed form there, 1 / mean squared error, brackets the search)."""
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    def neg_ll(log_tau):
        tau = math.exp(log_tau)
        dens = 0.5 * (log_tau - _LOG_2PI) - 0.5 * tau * (y - passes) ** 2
        return -float(np.mean(logsumexp(dens, axis=0) - math.log(len(passes))))

    mse = float(np.mean((y - passes.mean(axis=0)) ** 2)) or np.finfo(float).tiny
    center = -math.log(mse)
    best = minimize_scalar(neg_ll, bounds=(center - 10, center + 10), method="bounded",
                           options={"xatol": 1e-6})
    return math.exp(best.x)


def _tempered(proba, temperature):
    """softmax(log p / T) row by row: the probabilities of logits divided by T (a row's
    logits and its log-probabilities differ by a constant, which the softmax drops)."""
    with np.errstate(divide="ignore"):
        z = np.log(proba) / temperature
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    return z / z.sum(axis=1, keepdims=True)


def _best_temperature(idx, passes):
    """The T minimizing the mean negative log-likelihood of the labels' columns ``idx``
    under the mean over ``passes`` (T, n, k) of each pass tempered: a bounded search over
    log T in [log 0.05, log 20]."""
    from scipy.optimize import minimize_scalar

    rows = np.arange(idx.size)

    def nll(log_t):
        mean = np.mean([_tempered(p, math.exp(log_t)) for p in passes], axis=0)
        return -float(np.mean(np.log(np.clip(mean[rows, idx], 1e-300, None))))

    best = minimize_scalar(nll, bounds=(math.log(0.05), math.log(20.0)), method="bounded",
                           options={"xatol": 1e-5})
    return math.exp(best.x)


def noise_precisions(y, passes):
    """The tau per target that maximizes the mixture log-likelihood of held-out targets ``y``
    (n,) or (n, k) under ``passes`` (T, n, k), the passes (or members) predicted on their
    rows; ValueError where the rows or the targets do not match."""
    y = np.reshape(y, (len(y), -1))
    if passes.shape[1] != y.shape[0]:
        raise ValueError(f"X and y must have as many rows, got {passes.shape[1]} and "
                         f"{y.shape[0]}")
    if passes.shape[2] != y.shape[1]:
        raise ValueError(f"y must have {passes.shape[2]} target(s), as the fit had, got "
                         f"{y.shape[1]}")
    return np.array([_best_precision(y[:, j], passes[:, :, j]) for j in range(y.shape[1])])


def held_out_targets(y):
    """Real, finite targets of held-out data as float64 (a NaN would make tau NaN)."""
    return check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")


def entropy_split(probas, entropy):
    """The :class:`Uncertainty` of the probabilities of several passes (MC-dropout passes,
    an ensemble's members), an iterable summed as it comes: one pass in memory at a time."""
    mean = expected = 0.0
    count = 0
    for p in probas:
        mean, expected, count = mean + p, expected + entropy(p), count + 1
    mean, expected = mean / count, expected / count
    predictive = entropy(mean)
    return Uncertainty(mean, predictive, expected, np.maximum(predictive - expected, 0.0))


def _xlogx(p):
    return p * np.log(np.where(p > 0, p, 1.0))  # 0 log 0 = 0


def _entropy(p):
    """Row-wise entropy in nats of class probabilities."""
    return -np.sum(_xlogx(p), axis=1)


def _label_entropy(p):
    """Each label's binary entropy in nats (multilabel: one Bernoulli per label)."""
    return -(_xlogx(p) + _xlogx(1.0 - p))


def _in_training_dtype(weights, dtype):
    """Row weights (float64, non-negative, finite) in the network's dtype, refused where that
    dtype would change what they mean: a positive weight that rounds to 0 (its rows would
    silently not train), or weights whose sum it cannot hold (every loss would be inf)."""
    if weights is None:
        return None
    info, positive = np.finfo(dtype), weights > 0
    if not positive.any():
        raise ValueError("sample_weight (times class_weight) is 0 for every sample: there is "
                         "nothing to train on")
    converted = np.ascontiguousarray(weights, dtype=dtype)
    smallest, total = float(weights[positive].min()), float(weights.sum())
    if (converted[positive] == 0).any():
        raise ValueError(f"sample_weight (times class_weight) has positive values down to "
                         f"{smallest:.3g}, below {dtype}'s smallest "
                         f"({float(info.smallest_subnormal):.3g}): "
                         f"they would round to 0 and their rows would not train. Scale the "
                         f"weights up, or use dtype='float64'")
    if total > info.max:
        raise ValueError(f"sample_weight (times class_weight) sums to {total:.3g}, more than "
                         f"{dtype} holds ({info.max:.3g}): every loss would be inf. Scale the "
                         f"weights down, or use dtype='float64'")
    return converted


def _network_input(X, dtype, input_dropout):
    """X as the engine reads it: C-contiguous of ``dtype``, or a sparse X as CSR of it
    (never densified: its first layer is a sparse x dense product)."""
    if not sparse.issparse(X):
        return np.ascontiguousarray(X, dtype=dtype)
    if input_dropout > 0:
        raise ValueError(
            f"input_dropout={input_dropout} does not apply to sparse X: its masks "
            "draw one decision per element, stored or not. Set input_dropout=0 (hidden "
            "dropout works on sparse input), or densify X with X.toarray()")
    X = sparse.csr_matrix(X, dtype=dtype)
    X.sort_indices()
    return X


def _copy_into_layers(name, values, targets):
    """Copy ``values`` (one array-like per layer, as scikit-learn's attribute holds them)
    into the network's arrays ``targets``, in place (the optimizer's state stays paired
    with them), cast to the network's dtype; checked whole before anything is written."""
    values = list(values) if isinstance(values, (list, tuple)) else values
    if not isinstance(values, list) or len(values) != len(targets):
        raise ValueError(f"{name} must be a list of {len(targets)} arrays, one per layer, "
                         f"got {type(values).__name__}"
                         + (f" of length {len(values)}" if isinstance(values, list) else ""))
    arrays = []
    for l, (value, target) in enumerate(zip(values, targets)):
        array = np.asarray(value)
        if array.shape != target.shape:
            raise ValueError(f"{name}[{l}] must have shape {target.shape} (layer {l}), "
                             f"got {array.shape}")
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{name}[{l}] must hold real numbers, got dtype "
                             f"{array.dtype}")
        with np.errstate(over="ignore"):
            array = array.astype(target.dtype)
        if not np.isfinite(array).all():
            raise ValueError(f"{name}[{l}] must be finite in the network's dtype "
                             f"({target.dtype}), got NaN or inf")
        arrays.append(array)
    for array, target in zip(arrays, targets):
        np.copyto(target, array)


def _store_params(est, params):
    """Each constructor argument as the attribute of its name, nothing else (scikit-learn's
    rule for __init__), from the constructor's ``locals()``."""
    for name, value in params.items():
        if name != "self":
            setattr(est, name, value)


def _stochastic_solver(est):
    """partial_fit exists for the mini-batch solvers only, as in scikit-learn."""
    if est.solver == "lbfgs":
        raise AttributeError("partial_fit is only available for stochastic optimizers "
                             "(solver='sgd' or 'adam'); lbfgs is not stochastic")
    return True


def _from_state(name):
    """A fitted attribute that the training loop keeps (``_trainer.TrainingState``)."""
    return property(lambda self: getattr(self._training_state, name),
                    doc=f"The training state's ``{name}`` (see the class's Attributes).")


class _BaseMLP(BaseEstimator):
    """What every fastdrop MLP estimator shares: parameters and their checks, building the
    network, the optimizer and the trainer (``_trainer.Trainer``: epochs, validation, the
    stopping rule), and reading the fitted attributes from its state. A subclass says what
    its targets are: ``_check_targets``,
    ``_n_outputs``, ``_network_output``, ``_out_activation_name``, ``_encode_targets``,
    ``_stratify_by``, ``_uniform_loss``, ``_evaluate`` (validation loss and score),
    ``_score_key`` (the score's history_ column) and ``_multi_output``."""

    # ------------------------------------------------------------------ validation
    # Each parameter's constraint, the way scikit-learn's _parameter_constraints reads
    # (hidden_layer_sizes and dropout depend on each other: _layer_sizes_and_rates).
    _constraints = {
        "alpha": Range(float, 0),
        "l1": Range(float, 0),
        "max_norm": Range(float, 0, low_open=True, none_ok=True),
        "input_dropout": Range(float, 0, 1, high_open=True),
        "dropout_mode": Options(("element", "batch")),
        "dropout_scale": Options(("inverted", "classic")),
        "dropout_kind": Options(DROPOUT_KINDS),
        "dropconnect": Range(float, 0, 1, high_open=True),
        "activation": Options(("identity", "logistic", "tanh", "relu", "selu")),
        "solver": Options(("adam", "sgd", "lbfgs")),
        "max_fun": Range(int, 1),
        "learning_rate": Options(("constant", "invscaling", "adaptive")),
        "power_t": Range(float, 0),
        "init": Options(("glorot", "he", "lecun")),
        "dtype": Options(("float32", "float64", np.float32, np.float64, None)),
        "batch_size": Range(int, 1, words=("auto",)),
        "learning_rate_init": Range(float, 0, low_open=True),
        "max_iter": Range(int, 1),
        "tol": Range(float, 0),
        "momentum": Range(float, 0, 1),
        "validation_fraction": Range(float, 0, 1, low_open=True, high_open=True),
        "beta_1": Range(float, 0, 1, high_open=True),
        "beta_2": Range(float, 0, 1, high_open=True),
        "epsilon": Range(float, 0, low_open=True),
        "n_iter_no_change": Range(int, 1, inf_ok=True),
    }

    def _check_params(self):
        """The hidden sizes and per-layer drop rates, after checking every parameter."""
        sizes, rates = self._layer_sizes_and_rates()
        check_params(self, self._constraints)
        if self.solver == "lbfgs":
            self._check_lbfgs_combination(rates)
        return sizes, rates

    # What full-batch L-BFGS cannot train: (parameter, its value when it is in use, why).
    _NOT_WITH_LBFGS = (
        ("dropout", lambda est, rates: any(rates), "a new random network every step"),
        ("input_dropout", lambda est, rates: est.input_dropout > 0,
         "a new random network every step"),
        ("dropconnect", lambda est, rates: est.dropconnect > 0,
         "a new random network every step"),
        ("l1", lambda est, rates: est.l1 > 0, "a non-smooth penalty"),
        ("max_norm", lambda est, rates: est.max_norm is not None,
         "a projection after every step"),
    )

    def _check_lbfgs_combination(self, rates):
        for name, in_use, why in self._NOT_WITH_LBFGS:
            if in_use(self, rates):
                raise ValueError(
                    f"solver='lbfgs' minimizes one deterministic, smooth full-batch loss, and "
                    f"{name}={getattr(self, name)!r} makes it {why}: use solver='adam' or "
                    f"'sgd' with {name}, or leave {name} at its default with 'lbfgs'")

    def _layer_sizes_and_rates(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                   for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive ints, got "
                             f"{self.hidden_layer_sizes!r}")
        rates = self.dropout
        rates = ([rates] * len(sizes) if isinstance(rates, numbers.Real) else list(rates))
        if len(rates) != len(sizes):
            raise ValueError(f"dropout must be a float or one rate per hidden layer "
                             f"({len(sizes)}), got {self.dropout!r}")
        for r in rates:
            if isinstance(r, bool) or not isinstance(r, numbers.Real) or not 0 <= r < 1:
                raise ValueError(f"dropout rates must be in [0, 1), got {self.dropout!r}")
        return [int(s) for s in sizes], [float(r) for r in rates]

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None):
        """Fit on (X, y); optional (X_val, y_val) is the validation set for ``history_``
        (and for early stopping when ``early_stopping=True``, instead of a held-out split).

        ``sample_weight`` (n_samples,), non-negative, weighs the samples as scikit-learn
        does: each mini-batch's loss is their weighted mean and the penalties are divided by
        the batch's weight instead of its size (with full-batch "lbfgs", integer weights
        equal repeated rows); a held-out validation split scores with its samples' weights.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels or a multilabel indicator matrix (classifier), targets (regressor).
        sample_weight : array-like of shape (n_samples,), optional
        X_val, y_val : optional
            A validation set of the same kinds, instead of a held-out part of X.

        Returns
        -------
        self : the fitted estimator
        """
        return self._fit(X, y, X_val, y_val, incremental=False, sample_weight=sample_weight)

    def _fit(self, X, y, X_val, y_val, incremental, sample_weight=None):
        hidden, rates = self._check_params()
        if incremental and self.early_stopping:
            # scikit-learn's rule and message (its gh-25693): one epoch per call holds out
            # no validation split, and a best-weights rule across calls has nothing to use
            raise ValueError("partial_fit does not support early_stopping=True")
        # a new network unless one exists and partial_fit or warm_start asks to continue it
        first = not hasattr(self, "_net") or not (incremental or self.warm_start)
        X, y = validate_data(self, X, y, reset=first, dtype=(np.float64, np.float32),
                             order="C", multi_output=self._multi_output,
                             y_numeric=self._y_numeric, accept_sparse=("csr", "csc"))
        y = self._check_targets(y, fresh=first and not incremental)
        dtype = self._training_dtype(X, first)
        X = _network_input(X, dtype, self.input_dropout)
        weights = _in_training_dtype(self._row_weights(X, y, sample_weight, incremental), dtype)
        rs = check_random_state(self.random_state)
        if first:
            self._initialize(X.shape[1], hidden, rates, dtype, rs)
        else:
            self._continue_with_current_params(hidden, rates, dtype, rs, incremental)
        val, rows = None, None  # rows: the training rows of X (None: all)
        if X_val is not None or y_val is not None:
            val = (*self._validation_set(X_val, y_val, dtype), None)
        elif self.early_stopping and not incremental and self.solver != "lbfgs":
            rows, val = self._hold_out(X, y, weights, rs)
        use_early_stopping = self.early_stopping and val is not None and not incremental
        if use_early_stopping and len(val[1]) < self._min_validation_rows:
            raise ValueError(
                f"The validation set is too small for early stopping: {len(val[1])} row(s), "
                f"and its score needs at least {self._min_validation_rows}. Pass more rows "
                f"in X_val, a larger validation_fraction, or set early_stopping=False.")
        target = self._encode_targets(y)
        n = X.shape[0] if rows is None else rows.size
        batch = min(200, n) if self.batch_size == "auto" else min(self.batch_size, n)
        if self.batch_size != "auto" and self.batch_size > n:
            warnings.warn(f"batch_size={self.batch_size} is larger than the number of samples "
                          f"({n}); using {n}", UserWarning)
        work = step_work(self._net.sizes, n if self.solver == "lbfgs" else batch)
        n_threads = fit_threads(resolve_n_threads(self.n_threads), work)
        # overflow on the way to a diverging loss is reported once, by _divergence, not by numpy
        with thread_budget(n_threads) as kernel_threads, \
                np.errstate(over="ignore", invalid="ignore"):
            settings = self._train_settings(batch, kernel_threads,
                                            1 if incremental else self.max_iter,
                                            use_early_stopping, incremental)
            settings.threads = step_threads(n_threads, kernel_threads, self._net.dtype, work)
            trainer = Trainer(self._net, self._optimizer, settings, self._training_state,
                              self._evaluate, self._divergence)
            if self.solver == "lbfgs":
                self._fit_lbfgs(trainer, X, target, weights)
            else:
                trainer.run(X, target, weights, val, rs, rows)
        return self

    def _fit_lbfgs(self, trainer, X, target, weights):
        result = trainer.run_lbfgs(X, target, weights, self.max_fun)
        if result.status != 0:
            warnings.warn(f"lbfgs failed to converge after {result.nit} iterations "
                          f"(status={result.status}): {result.message}. Increase max_iter "
                          f"({self.max_iter}) or max_fun ({self.max_fun}), or scale the "
                          "data.", ConvergenceWarning)

    def _row_weights(self, X, y, sample_weight, incremental):
        """The training rows' weights (float64), or None (all equal)."""
        if sample_weight is None:
            return None
        return _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)

    _min_validation_rows = 1  # rows a validation score needs (R^2: 2)

    def _validation_set(self, X_val, y_val, dtype):
        """fit's (X_val, y_val), checked against the training data."""
        if X_val is None or y_val is None:
            given = "y_val" if X_val is None else "X_val"
            raise ValueError(f"X_val and y_val are a pair: {given} was given without the other")
        Xv, yv = validate_data(self, X_val, y_val, reset=False, dtype=dtype, order="C",
                               multi_output=self._multi_output, accept_sparse=("csr", "csc"))
        return _network_input(Xv, dtype, self.input_dropout), self._check_validation_targets(yv)

    def _check_validation_targets(self, yv):
        """Validation targets of the training targets' kind (each estimator checks its own),
        as the training loop reads them."""
        return yv

    def _hold_out(self, X, y, weights, rs):
        """early_stopping's split: the rows to train on (indices into X, which is not
        copied) and (X_val, y_val, weights_val), the rows held out, or an error that says how
        to get one. The same split, rows in the same order, as train_test_split of (X, y)."""
        try:
            rows, held = train_test_split(np.arange(X.shape[0]), random_state=rs,
                                          test_size=self.validation_fraction,
                                          stratify=self._stratify_by(y))
        except ValueError as exc:
            raise ValueError(
                f"early_stopping=True holds out validation_fraction={self.validation_fraction} "
                f"of the {X.shape[0]} training samples, which is not possible here ({exc}). "
                "Use more samples or a larger validation_fraction, pass X_val and y_val, or "
                "set early_stopping=False.") from None
        return rows, (X[held], y[held], None if weights is None else weights[held])

    def _training_dtype(self, X, first):
        """The network's dtype: ``dtype`` as set, or with None scikit-learn's rule, the
        input's (float32 stays float32, anything else float64) on the call that builds the
        network; a warm start or partial_fit with None keeps the network's."""
        if self.dtype is not None:
            return np.dtype(self.dtype)
        return X.dtype if first else self._net.dtype

    def _network_spec(self, hidden, rates, dtype):
        """Everything the engine is built from but its initial weights: a warm start or
        partial_fit compares it with what built the network it continues."""
        return dict(hidden=tuple(hidden), output=self._network_output(),
                    dropout=(float(self.input_dropout), *rates),
                    dropout_mode=self.dropout_mode, dropout_scale=self.dropout_scale,
                    dtype=dtype, activation=self.activation,
                    dropout_kind=self.dropout_kind, dropconnect=float(self.dropconnect))

    # What the optimizer is built from (read at each fit, as scikit-learn rebuilds its own).
    _OPTIMIZER_PARAMS = ("solver", "learning_rate_init", "momentum", "nesterovs_momentum",
                         "learning_rate", "power_t", "beta_1", "beta_2", "epsilon")

    def _optimizer_spec(self):
        return {name: getattr(self, name) for name in self._OPTIMIZER_PARAMS}

    def _network_width(self):
        """The output layer's width: one column per output (a regressor's Gaussian
        likelihood adds one per target)."""
        return self._n_outputs()

    def _build_network(self, n_features, spec, rs):
        self._net = MLP([n_features, *spec["hidden"], self._network_width()],
                        output=spec["output"],
                        dropout=list(spec["dropout"]), dropout_mode=spec["dropout_mode"],
                        dropout_scale=spec["dropout_scale"], dtype=spec["dtype"],
                        activation=spec["activation"], dropout_kind=spec["dropout_kind"],
                        dropconnect=spec["dropconnect"], init=self.init, random_state=rs)
        self._built_spec = spec

    def _build_optimizer(self):
        params = self._net.weights + self._net.intercepts
        if self.solver == "lbfgs":
            self._optimizer = None  # scipy's L-BFGS-B, in _fit_lbfgs
        elif self.solver == "sgd":
            self._optimizer = SGD(params, self.learning_rate_init, self.momentum,
                                  self.nesterovs_momentum, self.learning_rate, self.power_t)
        else:
            self._optimizer = Adam(params, self.learning_rate_init, self.beta_1, self.beta_2,
                                   self.epsilon)
        self._optimizer_built = self._optimizer_spec()

    def _continue_with_current_params(self, hidden, rates, dtype, rs, incremental):
        """A warm start or partial_fit honours every parameter as it is set now. The learned
        weights fix the layer sizes (a change is an error naming it); a changed rate, noise
        kind, activation or dtype rebuilds the engine around the learned weights (its
        combinations checked as for a new one; ``init`` only draws a new network's weights).
        The optimizer is rebuilt on every warm-start fit, as scikit-learn does, and on
        partial_fit when the network or an optimizer parameter changed."""
        spec, built = self._network_spec(hidden, rates, dtype), self._built_spec
        if spec["hidden"] != built["hidden"]:
            raise ValueError(
                f"hidden_layer_sizes changed from {built['hidden']} to {spec['hidden']} since "
                f"the network was fitted; warm_start and partial_fit continue its learned "
                f"weights, which keep their sizes. Set warm_start=False to fit a new network.")
        if self._network_width() != self._net.sizes[-1]:
            raise ValueError(
                f"The output layer has {self._net.sizes[-1]} columns and this loss needs "
                f"{self._network_width()} (loss or targets changed since the network was "
                f"fitted); warm_start and partial_fit continue its learned weights. Set "
                f"warm_start=False to fit a new network.")
        rebuilt = spec != built
        if rebuilt:
            old = self._net
            self._build_network(old.sizes[0], spec, rs)
            for new, learned in zip(self._net.weights + self._net.intercepts,
                                    old.weights + old.intercepts):
                np.copyto(new, learned, casting="unsafe")
            self._net.seeds = list(old.seeds)  # the masks go on where they were
            self.out_activation_ = self._out_activation_name()
        if rebuilt or not incremental or self._optimizer_spec() != self._optimizer_built:
            self._build_optimizer()

    def _initialize(self, n_features, hidden, rates, dtype, rs):
        self._build_network(n_features, self._network_spec(hidden, rates, dtype), rs)
        self._build_optimizer()
        self.n_outputs_ = self._n_outputs()
        self.n_layers_ = len(hidden) + 2
        self.out_activation_ = self._out_activation_name()
        self._training_state = TrainingState(self._score_key)

    def _train_settings(self, batch, n_threads, max_iter, use_early_stopping, incremental):
        return TrainSettings(
            batch_size=batch, max_iter=max_iter, n_threads=n_threads,
            loss_limit=self._loss_limit, score_key=self._score_key, shuffle=self.shuffle,
            alpha=self.alpha, l1=self.l1, max_norm=self.max_norm, tol=self.tol,
            n_iter_no_change=self.n_iter_no_change, early_stopping=use_early_stopping,
            watch_loss=self.early_stopping_metric == "loss", incremental=incremental,
            verbose=self.verbose)

    @property
    def max_norm_clipped_(self):
        """The fraction of (hidden unit, step) pairs whose weights max-norm clipped (None
        without max_norm): 0 means the constraint never bound."""
        clipped, checked = self._training_state.max_norm_counts
        return clipped / checked if checked else None

    @property
    def _loss_limit(self):
        """A loss no converging fit reaches: 1000 times that of a uniform guess (Adam's steps
        are bounded, so a too-large rate gives huge but finite losses, not NaN)."""
        return 1000.0 * max(1.0, self._uniform_loss())

    def _divergence(self, loss, epoch):
        """What a diverged fit says (its error, or with early stopping its warning's start)."""
        return (
            f"Training diverged: the loss became {loss:.4g} at epoch {epoch} "
            f"(a uniform guess scores {self._loss_limit / 1000:.3g}). "
            f"learning_rate_init={self.learning_rate_init} is probably too large for this data "
            f"and solver={self.solver!r}; try a smaller value such as "
            f"{self.learning_rate_init / 10:g}, or standardize X.")

    def _predict_moments(self, X, compute, mc_samples, return_std):
        """``compute(X, n_threads, mc_step)`` on checked X: one deterministic pass (weight
        scaling) without ``mc_samples``; with it, the mean over that many stochastic passes
        with fresh dropout masks (Monte-Carlo dropout, Gal & Ghahramani 2016) and, with
        ``return_std``, their standard deviation."""
        if mc_samples is None:
            if return_std:
                raise ValueError("return_std=True needs mc_samples (a positive int)")
            (single,) = self._mc_passes(X, compute, None)  # runs the generator to its end
            return single
        mean = sq = 0.0
        for p in self._mc_passes(X, compute, mc_samples):
            mean, sq = mean + p, sq + p * p
        mean /= mc_samples
        if not return_std:
            return mean
        return mean, np.sqrt(np.maximum(sq / mc_samples - mean * mean, 0))

    def _prediction_input(self, X):
        """X checked as scikit-learn's validate_data checks it, which costs ~70 us: half a
        single-row prediction. A C-contiguous finite ndarray of our dtype and width, for an
        estimator fitted without feature names, passes as it is (what validate_data would
        return: the sum is finite, so is every element); anything else, a sum that
        overflowed included, goes through validate_data and its messages."""
        dtype = self._net.dtype
        if (type(X) is np.ndarray and X.ndim == 2 and X.dtype == dtype
                and X.flags.c_contiguous and X.shape[1] == getattr(self, "n_features_in_", -1)
                and X.shape[0] > 0 and not hasattr(self, "feature_names_in_")
                and np.isfinite(X.sum())):  # NaN or inf anywhere (or overflow): checked
            return X
        X = validate_data(self, X, reset=False, dtype=dtype, order="C",
                          accept_sparse=("csr", "csc"))
        return sparse.csr_matrix(X) if sparse.issparse(X) else X

    def _mc_passes(self, X, compute, mc_samples):
        """Yield ``compute(X, n_threads, mc_step)`` for checked X: the deterministic pass
        once (``mc_samples=None``), else each of ``mc_samples`` stochastic ones."""
        check_is_fitted(self)
        if mc_samples is not None and (isinstance(mc_samples, bool) or not isinstance(
                mc_samples, numbers.Integral) or mc_samples < 1):
            raise ValueError(f"mc_samples must be a positive int or None, got {mc_samples!r}")
        X = self._prediction_input(X)
        steps = [None] if mc_samples is None else range(mc_samples)
        if X.shape[0] < SERIAL_PREDICT_ROWS:  # no thread pool to wake, no limits to set
            for step in steps:
                yield compute(X, 1, step)
            return
        with thread_budget(resolve_n_threads(self.n_threads)) as kernel_threads:
            for step in steps:
                yield compute(X, kernel_threads, step)

    # fitted attributes the training loop keeps between fit calls
    n_iter_, t_, loss_, loss_curve_ = (_from_state(n) for n in ("n_iter", "t", "loss",
                                                                 "loss_curve"))
    best_loss_, validation_scores_ = _from_state("best_loss"), _from_state("validation_scores")
    best_validation_score_ = _from_state("best_validation_score")
    stopped_epoch_, history_ = _from_state("stopped_epoch"), _from_state("history")

    @property
    def coefs_(self):
        """Per layer, the (fan_in, fan_out) weights: views on the network's own arrays, so an
        in-place edit reaches it; assigning a list copies it in (see ``_set_parameters``)."""
        check_is_fitted(self, "_net")
        return self._net.coefs

    @coefs_.setter
    def coefs_(self, coefs):
        _copy_into_layers("coefs_", coefs, [layer.weights.T for layer in self._layers()])

    @property
    def intercepts_(self):
        check_is_fitted(self, "_net")
        return self._net.intercepts

    @intercepts_.setter
    def intercepts_(self, intercepts):
        _copy_into_layers("intercepts_", intercepts, [layer.bias for layer in self._layers()])

    def _layers(self):
        if not hasattr(self, "_net"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet: coefs_ and "
                "intercepts_ can be assigned once a fit (or partial_fit) has fixed the layer "
                "sizes; fit or partial_fit once on data of the right width, then assign them.")
        return self._net.layers

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # CSR and CSC X, never densified; input dropout has no sparse form
        tags.input_tags.sparse = self.input_dropout == 0
        return tags

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_net")


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multilayer perceptron classifier with dropout, L1, L2 and max-norm regularization.

    Every parameter of :class:`sklearn.neural_network.MLPClassifier` with the same meaning and
    default (the same L2 scaling and stopping rule), plus fastdrop's regularizers.
    """
    # Parameters and Attributes are appended by _estimator_docs.document (one source for
    # both estimators), below the class.

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, alpha=1e-4, l1=0.0,
                 max_norm=None, dropout=0.0, input_dropout=0.0, dropout_mode="element",
                 dropout_scale="inverted", dropout_kind="bernoulli", dropconnect=0.0,
                 output_activation="softmax", class_weight=None,
                 solver="adam",
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001,
                 power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4,
                 verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True,
                 early_stopping=False,
                 validation_fraction=0.1, early_stopping_metric="accuracy", beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 init="glorot", dtype="float32", n_threads=None):
        _store_params(self, locals())

    @available_if(_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), weighted by ``sample_weight`` as in :meth:`fit`.

        A first call that fails leaves the estimator unfitted, so a corrected call starts
        afresh.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        sample_weight : array-like of shape (n_samples,), optional
        classes : array-like of shape (n_classes,)
            Every label the estimator will see; required on the first call.

        Returns
        -------
        self : the estimator
        """
        first_call = not hasattr(self, "classes_")
        if first_call:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            self.classes_ = unique_labels(classes)
        elif classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(f"classes={classes!r} is not the same as on the first call "
                             f"to partial_fit, {self.classes_!r}")
        try:
            return self._fit(X, y, None, None, incremental=True, sample_weight=sample_weight)
        except BaseException:
            if first_call:
                for name in ("classes_", "_multilabel", "_net", "_training_state",
                             "n_features_in_", "feature_names_in_"):
                    self.__dict__.pop(name, None)
            raise

    # ------------------------------------------------------------------ what a classifier adds
    _constraints = {**_BaseMLP._constraints,
                    "output_activation": Options(("softmax", "sigmoid")),
                    "early_stopping_metric": Options(("accuracy", "loss")),
                    "class_weight": Satisfies(
                        lambda v: v is None or v == "balanced" or isinstance(v, dict),
                        "None, 'balanced' or a dict {class: weight}")}
    _multi_output = True  # a multilabel indicator matrix is a target too (_check_targets)
    _y_numeric = False
    _score_key = "val_accuracy"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    @property
    def _is_multilabel(self):
        return getattr(self, "_multilabel", False)

    def _network_output(self):
        return "sigmoid" if self._is_multilabel else self.output_activation

    def _check_targets(self, y, fresh):
        """Class labels, or a multilabel indicator matrix (one sigmoid output per label, as
        scikit-learn trains it): learned on a fresh fit, else they must be of the kind and
        among the classes seen. A column vector of labels is raveled with scikit-learn's
        DataConversionWarning."""
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please "
                          "change the shape of y to (n_samples,), for example using ravel().",
                          DataConversionWarning, stacklevel=3)
            y = y.ravel()
        check_classification_targets(y)
        kind = type_of_target(y)
        if y.ndim == 2 and kind != "multilabel-indicator":
            raise ValueError(f"y must be class labels (n_samples,) or a multilabel indicator "
                             f"matrix of 0/1 (n_samples, n_labels); got {kind} targets of "
                             f"shape {y.shape}")
        multilabel = kind == "multilabel-indicator"
        if fresh or not hasattr(self, "_multilabel"):
            self._multilabel = multilabel
            if fresh:
                self.classes_ = unique_labels(y)
        if multilabel != self._multilabel:
            kinds = {True: "a multilabel indicator matrix", False: "class labels"}
            raise ValueError(f"y is {kinds[multilabel]}, but the network was fitted on "
                             f"{kinds[self._multilabel]}")
        labels = unique_labels(y)
        if not np.isin(labels, self.classes_).all():
            what = "labels" if multilabel else "classes"
            raise ValueError(f"y has {what} {labels!r} not seen on the first call, "
                             f"{self.classes_!r}")
        if multilabel and self.class_weight is not None:
            raise ValueError(f"class_weight={self.class_weight!r} weighs the rows of one class "
                             "each; multilabel rows hold several labels: use sample_weight")
        return y

    def _check_validation_targets(self, yv):
        if yv.ndim == 2 and yv.shape[1] == 1:
            yv = yv.ravel()
        if self._is_multilabel != (yv.ndim == 2) or (yv.ndim == 2
                                                     and yv.shape[1] != len(self.classes_)):
            expected = (f"a 0/1 matrix of {len(self.classes_)} label columns"
                        if self._is_multilabel else "class labels (n_samples,)")
            raise ValueError(f"y_val must be {expected}, as y is; got shape {yv.shape}")
        return yv

    def _row_weights(self, X, y, sample_weight, incremental):
        """sample_weight times the class weights of each row's class."""
        weights = super()._row_weights(X, y, sample_weight, incremental)
        if self.class_weight is None:
            return weights
        if self.class_weight == "balanced" and incremental:
            raise ValueError("class_weight='balanced' needs the whole training set's class "
                             "counts, which partial_fit does not see; pass a dict of class "
                             "weights or sample_weight")
        per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        bad = ~np.isfinite(per_class) | (per_class < 0)
        if bad.any():
            raise ValueError(f"class_weight must be finite and non-negative for every class, "
                             f"as sample_weight is; got {float(per_class[bad][0])} for class "
                             f"{self.classes_[bad][0].item()!r}")
        rows = per_class[np.searchsorted(self.classes_, y)]
        return rows if weights is None else rows * weights

    def _n_outputs(self):
        n_classes = len(self.classes_)
        if self._is_multilabel:
            return n_classes  # one sigmoid per label
        sigmoid = self.output_activation == "sigmoid"
        return 1 if (sigmoid and n_classes <= 2) else max(n_classes, 2)

    def _out_activation_name(self):
        return "softmax" if self._network_output() == "softmax" else "logistic"

    def _stratify_by(self, y):
        """early_stopping's hold-out keeps the class proportions. Two classes: always, as
        scikit-learn does (a class too small to split is an error); more: where every class
        can be split (scikit-learn never stratifies them); multilabel: never (as
        scikit-learn)."""
        if self._is_multilabel:
            return None
        if len(self.classes_) <= 2:
            return y
        _, counts = np.unique(y, return_counts=True)
        return y if counts.min() >= 2 else None

    def _encode_targets(self, y):
        if self._is_multilabel:
            return np.ascontiguousarray(y, dtype=self._net.dtype)
        idx = np.searchsorted(self.classes_, y).astype(np.int64)
        if self.output_activation == "softmax":
            return idx
        if self.n_outputs_ == 1:
            return (idx == 1).astype(self._net.dtype).reshape(-1, 1)
        onehot = np.zeros((y.shape[0], self.n_outputs_), dtype=self._net.dtype)
        onehot[np.arange(y.shape[0]), idx] = 1
        return onehot

    def _uniform_loss(self):
        """The loss of a uniform guess over the classes."""
        return (math.log(max(len(self.classes_), 2)) if self._network_output() == "softmax"
                else self.n_outputs_ * math.log(2))

    def _evaluate(self, Xv, yv, weights, n_threads):
        """Validation log-loss and accuracy (deterministic pass; unseen labels count as p=0),
        weighted by the samples' weights when they have them."""
        if len(yv) == 0:
            return np.nan, np.nan
        proba = self._proba(Xv, n_threads)
        if self._is_multilabel:  # the training loss (binary cross-entropy summed over
            p = np.clip(np.where(yv == 1, proba, 1.0 - proba), 1e-15, None)  # labels), and
            loss = float(-np.average(np.log(p).sum(axis=1), weights=weights))  # subset
            acc = float(np.average(((proba > 0.5) == (yv == 1)).all(axis=1),  # accuracy
                                   weights=weights))
            return loss, acc
        idx = np.clip(np.searchsorted(self.classes_, yv), 0, len(self.classes_) - 1)
        p_true = np.where(self.classes_[idx] == yv, proba[np.arange(len(yv)), idx], 0.0)
        loss = float(-np.average(np.log(np.clip(p_true, 1e-15, None)), weights=weights))
        acc = float(np.average(self.classes_[np.argmax(proba, axis=1)] == yv, weights=weights))
        return loss, acc

    # ------------------------------------------------------------------ prediction
    def _proba(self, X, n_threads, mc_step=None):
        if len(self.classes_) == 1 and not self._is_multilabel:  # one class seen: certain,
            return np.ones((X.shape[0], 1))  # as scikit-learn predicts
        out = self._net.predict_output(X, n_threads, mc_step, reuse_output=True).astype(
            np.float64)
        if self._network_output() == "softmax" or self._is_multilabel:  # multilabel: each
            return out  # label's own probability, as scikit-learn's
        if self.n_outputs_ == 1:
            return np.hstack([1 - out, out])
        total = out.sum(axis=1, keepdims=True)
        return np.divide(out, total, out=np.full_like(out, 1 / out.shape[1]), where=total > 0)

    def predict_proba(self, X, *, mc_samples=None, return_std=False, temperature=None):
        """Class probabilities (n_samples, n_classes); multilabel: each label's probability
        (n_samples, n_labels), independent sigmoids, as scikit-learn returns them.

        Deterministic weight scaling by default. With ``mc_samples=T``, the mean over T
        stochastic forward passes with fresh dropout masks (Monte-Carlo dropout, Gal &
        Ghahramani 2016); ``return_std=True`` also returns their per-class standard deviation.
        ``temperature``: a float > 0 divides each pass's logits by it (temperature scaling,
        Guo et al. 2017; pass ``temperature_`` after :meth:`fit_temperature`); None or 1
        leaves the probabilities as they are. The most probable class never changes.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        mc_samples : int or None
            Stochastic passes averaged; None: one weight-scaled pass.
        return_std : bool, default False
            Also return the passes' per-class standard deviation (needs ``mc_samples``).
        temperature : float > 0 or None

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes or n_labels)
        std : ndarray of proba's shape
            With ``return_std`` only.
        """
        compute = self._proba
        if temperature is not None and self._check_temperature(temperature) != 1.0:
            compute = functools.partial(self._tempered_proba, temperature=float(temperature))
        return self._predict_moments(X, compute, mc_samples, return_std)

    def _check_temperature(self, temperature):
        if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
                or not math.isfinite(temperature) or temperature <= 0):
            raise ValueError(f"temperature must be a finite float > 0 or None, got "
                             f"{temperature!r}")
        check_is_fitted(self)
        if self._is_multilabel:
            raise ValueError("temperature scaling is for class probabilities; a multilabel "
                             "classifier's labels are independent sigmoids")
        return temperature

    def _tempered_proba(self, X, n_threads, mc_step=None, *, temperature):
        return _tempered(self._proba(X, n_threads, mc_step), temperature)

    def fit_temperature(self, X, y, mc_samples=None):
        """Choose the temperature T > 0 that minimizes the negative log-likelihood of
        ``(X, y)``, held-out data, under ``predict_proba(X, mc_samples=mc_samples,
        temperature=T)`` (Guo et al. 2017: one scalar dividing the logits, fitted on the
        validation set); sets ``temperature_`` and returns self. T > 1 softens an
        overconfident network, T < 1 sharpens an underconfident one. The passes are computed
        once; the search is over log T in [0.05, 20].

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Held-out data: never the training set, whose probabilities are too confident.
        y : array-like of shape (n_samples,)
            Their labels, each one the classifier was fitted on.
        mc_samples : int or None
            Fit the temperature of the mean over that many stochastic passes; None: of
            weight scaling.

        Returns
        -------
        self : the estimator, with ``temperature_`` set
        """
        check_is_fitted(self)
        if self._is_multilabel:
            raise ValueError("fit_temperature is for class probabilities; a multilabel "
                             "classifier's labels are independent sigmoids")
        y = column_or_1d(check_array(y, ensure_2d=False, dtype=None, input_name="y"))
        passes = np.stack(list(self._mc_passes(X, self._proba, mc_samples)))
        if passes.shape[1] != len(y):
            raise ValueError(f"X and y must have as many rows, got {passes.shape[1]} and "
                             f"{len(y)}")
        unseen = ~np.isin(y, self.classes_)
        if unseen.any():
            raise ValueError(f"y holds labels the classifier was not fitted on: "
                             f"{np.unique(y[unseen])[:5].tolist()}")
        self.temperature_ = _best_temperature(np.searchsorted(self.classes_, y), passes)
        return self

    def predict_log_proba(self, X, *, mc_samples=None):
        """The log of :meth:`predict_proba` (with ``mc_samples``, of the Monte-Carlo mean).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        mc_samples : int or None
            As in :meth:`predict_proba`.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        proba = self.predict_proba(X, mc_samples=mc_samples)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    def predict_uncertainty(self, X, mc_samples=100):
        """Per-sample uncertainty of Monte-Carlo dropout over ``mc_samples`` stochastic passes.

        Without dropout every pass is the same network and the mutual information is 0.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        mc_samples : int, default 100
            Stochastic passes.

        Returns
        -------
        uncertainty : Uncertainty
            Arrays of shape (n_samples,): ``predictive_entropy`` H[mean_t p_t] (total
            uncertainty), ``expected_entropy`` mean_t H[p_t] (the noise each network sees,
            aleatoric) and ``mutual_information``, their difference (the networks'
            disagreement, epistemic: BALD, Houlsby et al. 2011), plus ``proba``, the mean
            probabilities. Entropies in nats. Multilabel: the same per label, arrays of
            shape (n_samples, n_labels), each label a Bernoulli.
        """
        if mc_samples is None:
            raise ValueError("predict_uncertainty needs mc_samples, a positive int")
        entropy = _label_entropy if self._is_multilabel else _entropy
        return entropy_split(self._mc_passes(X, self._proba, mc_samples), entropy)

    def predict(self, X):
        """Most probable class (deterministic pass).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
            The labels; multilabel: the indicator matrix (n_samples, n_labels) of the labels
            whose probability exceeds 0.5, as scikit-learn's.
        """
        proba = self.predict_proba(X)
        if self._is_multilabel:
            return (proba > 0.5).astype(int)
        return self.classes_[np.argmax(proba, axis=1)]


document(MLPClassifier, "classifier", MLPClassifier.__doc__)


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multilayer perceptron regressor with dropout, L1, L2 and max-norm regularization.

    scikit-learn's :class:`~sklearn.neural_network.MLPRegressor` with fastdrop's
    regularizers, on the engine and loop of :class:`MLPClassifier`, for one or several
    targets. ``loss_`` sums the loss over targets and averages it over samples: the loss
    whose gradient both libraries follow; for the squared error scikit-learn reports it
    divided by the number of targets (the same for one target). Validation, early stopping
    included, scores R^2 (``history_["val_r2"]``), or the loss with
    ``early_stopping_metric="loss"``. ``predict`` takes ``mc_samples`` and ``return_std`` for
    Monte-Carlo dropout: the predictive mean and standard deviation.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, loss="squared_error",
                 alpha=1e-4, l1=0.0, max_norm=None, dropout=0.0, input_dropout=0.0,
                 dropout_mode="element", dropout_scale="inverted", dropout_kind="bernoulli",
                 dropconnect=0.0, solver="adam", batch_size="auto",
                 learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, early_stopping_metric="r2", beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, init="glorot",
                 dtype="float32", n_threads=None):
        _store_params(self, locals())

    @available_if(_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), weighted by ``sample_weight`` as in :meth:`fit`; the first
        call sets the number of targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self : the estimator
        """
        first_call = not hasattr(self, "_net")
        try:
            return self._fit(X, y, None, None, incremental=True, sample_weight=sample_weight)
        except BaseException:
            if first_call:
                for name in ("_net", "_training_state", "n_features_in_", "feature_names_in_"):
                    self.__dict__.pop(name, None)
            raise

    # ------------------------------------------------------------------ what a regressor adds
    _constraints = {**_BaseMLP._constraints,
                    "loss": Options(("squared_error", "poisson", "gaussian_nll")),
                    "early_stopping_metric": Options(("r2", "loss"))}
    _OUTPUT = {"squared_error": "identity", "poisson": "exp", "gaussian_nll": "gaussian"}
    _multi_output = True
    _y_numeric = True
    _score_key = "val_r2"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _check_targets(self, y, fresh):
        """Real targets, one column each: their count is fixed by the first fit."""
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"y must be real numbers, got dtype {y.dtype}")
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("loss='poisson' needs y >= 0 (counts or rates); y has negative "
                             "values")
        n_targets = 1 if y.ndim == 1 else y.shape[1]
        if fresh or not hasattr(self, "_n_targets"):
            self._n_targets = n_targets
            self._reference_loss = self._loss_of_a_zero_output(np.reshape(y, (len(y), -1)))
        elif n_targets != self._n_targets:
            raise ValueError(f"y has {n_targets} targets, the network was fitted with "
                             f"{self._n_targets}")
        return y

    def _loss_of_a_zero_output(self, y):
        """The loss when the last layer outputs 0 (prediction 0, or 1 for poisson; log
        variance 0 for gaussian_nll): the scale against which divergence shows."""
        y = y.astype(np.float64)
        if self.loss == "gaussian_nll":
            return float(np.mean(np.sum(y * y + _LOG_2PI, axis=1))) / 2
        if self.loss == "poisson":
            return float(np.mean(np.sum(1 - y + np.where(y > 0, y * np.log(np.where(
                y > 0, y, 1)), 0), axis=1)))
        return float(np.mean(np.sum(y * y, axis=1))) / 2

    def _n_outputs(self):
        return self._n_targets

    def _network_width(self):
        return self._n_targets * (2 if self.loss == "gaussian_nll" else 1)

    def _network_output(self):
        return self._OUTPUT[self.loss]

    def _out_activation_name(self):
        return self._OUTPUT[self.loss]

    def _stratify_by(self, y):
        return None

    def _encode_targets(self, y):
        return np.ascontiguousarray(np.reshape(y, (len(y), -1)), dtype=self._net.dtype)

    def _uniform_loss(self):
        return self._reference_loss

    _min_validation_rows = 2  # R^2 of one row is undefined

    def _check_validation_targets(self, yv):
        n_targets = 1 if yv.ndim == 1 else yv.shape[1]
        if n_targets != self.n_outputs_:
            raise ValueError(f"y_val must have {self.n_outputs_} target(s) per row, as y has, "
                             f"got {n_targets} (y_val of shape {yv.shape})")
        return yv

    def _evaluate(self, Xv, yv, weights, n_threads):
        """Validation loss (as loss_) and R^2 (NaN for one row), weighted by the samples'
        weights if any."""
        if len(yv) == 0:
            return np.nan, np.nan
        pred = self._outputs(Xv, n_threads)
        if self.loss == "gaussian_nll":
            pred, log_var = np.split(pred, 2, axis=1)
        yv = np.reshape(yv, pred.shape).astype(np.float64)
        if self.loss == "gaussian_nll":
            rows = np.sum(log_var + (yv - pred) ** 2 * np.exp(-log_var) + _LOG_2PI, axis=1) / 2
        elif self.loss == "poisson":
            rows = np.sum(pred - yv + yv * np.log(np.where(yv > 0, yv, 1) /
                                                  np.where(yv > 0, pred, 1)), axis=1)
        else:
            rows = np.sum((yv - pred) ** 2, axis=1) / 2
        r2 = float(r2_score(yv, pred, sample_weight=weights)) if len(yv) > 1 else np.nan
        return float(np.average(rows, weights=weights)), r2

    # ------------------------------------------------------------------ prediction
    def _outputs(self, X, n_threads, mc_step=None):
        return self._net.predict_output(X, n_threads, mc_step, reuse_output=True).astype(
            np.float64)

    def _means(self, X, n_threads, mc_step=None):
        """The predicted means: the outputs, or their first half under gaussian_nll."""
        out = self._outputs(X, n_threads, mc_step)
        return out[:, :self._n_targets] if self.loss == "gaussian_nll" else out

    def predict(self, X, *, mc_samples=None, return_std=False):
        """Predicted targets: (n_samples, n_targets), or 1-D for one target (as scikit-learn).

        Deterministic weight scaling by default. With ``mc_samples=T``, the mean over T
        stochastic passes with fresh dropout masks (Monte-Carlo dropout); ``return_std=True``
        also returns their standard deviation: the spread of the passes' means, the
        *epistemic* part of the predictive uncertainty only (Gal & Ghahramani 2016; without
        dropout every pass is the same and it is 0). The observation noise comes on top:
        :meth:`predict_distribution` gives both and their total.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        mc_samples : int or None
            Stochastic passes averaged; None: one weight-scaled pass.
        return_std : bool, default False
            Also return the passes' standard deviation (needs ``mc_samples``).

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        std : ndarray of y's shape
            With ``return_std`` only.
        """
        result = self._predict_moments(X, self._means, mc_samples, return_std)
        return tuple(map(self._shaped, result)) if return_std else self._shaped(result)

    def _shaped(self, r):
        """1-d for one target, as scikit-learn's; in the training dtype under dtype=None
        (scikit-learn's rule: the input's), else float64 (the moments are summed in float64
        either way)."""
        out_dtype = self._net.dtype if self.dtype is None else np.float64
        shaped = r.ravel() if self.n_outputs_ == 1 else r
        return shaped.astype(out_dtype, copy=False)

    def predict_distribution(self, X, mc_samples=None):
        """The predictive distribution: a mixture of one Gaussian per pass (Gal & Ghahramani
        2016), as a :class:`Predictive`.

        Each pass (one deterministic weight-scaled pass without ``mc_samples``; T stochastic
        ones with it) gives a mean and an observation noise: the network's own variance
        output with ``loss="gaussian_nll"`` (heteroscedastic, Kendall & Gal 2017), else the
        noise precision :meth:`fit_noise` chose on validation data (homoscedastic, tau).
        ``std`` is the mixture's: the passes' spread (epistemic) and the mean noise
        (aleatoric) in quadrature. Score it with :mod:`fastdrop.scores`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        mc_samples : int or None
            Stochastic passes, one Gaussian each; None: one weight-scaled pass.

        Returns
        -------
        distribution : Predictive
            ``mean``, ``std``, ``epistemic_std``, ``aleatoric_std`` of shape (n_samples[,
            n_targets]), and ``passes`` and ``noise_std``, the mixture's components.
        """
        if self.loss != "gaussian_nll" and getattr(self, "noise_precision_", None) is None:
            raise ValueError(
                "predict_distribution needs the observation noise: call fit_noise(X_val, "
                "y_val) after fit (a noise precision chosen on validation data), or fit with "
                "loss='gaussian_nll' (the network predicts its own variance)")
        return self._predictive(*self._passes_and_noise(X, mc_samples,
                                                        getattr(self, "noise_precision_", None)))

    def _passes_and_noise(self, X, mc_samples, precision):
        """Each pass's means and observation noise, arrays of shape (T, n_samples,
        n_targets): the variance output's under gaussian_nll, else 1 / sqrt(precision)."""
        passes, noise = [], []
        for out in self._mc_passes(X, self._outputs, mc_samples):
            if self.loss == "gaussian_nll":
                mean, log_var = np.split(out, 2, axis=1)
                passes.append(mean)
                noise.append(np.exp(0.5 * log_var))
            else:
                passes.append(out)
                noise.append(np.broadcast_to(1 / np.sqrt(precision), out.shape))
        return np.stack(passes), np.stack(noise)

    def _predictive(self, passes, noise):
        """The Predictive of a mixture of one Gaussian per pass: its moments shaped as
        predict's, the passes and noises 2-d for one target."""
        mean, epistemic = passes.mean(axis=0), passes.std(axis=0)
        aleatoric = np.sqrt(np.mean(noise ** 2, axis=0))
        total = np.sqrt(epistemic ** 2 + aleatoric ** 2)
        if self.n_outputs_ == 1:
            passes, noise = passes[..., 0], noise[..., 0]
        return Predictive(*(self._shaped(a) for a in (mean, total, epistemic, aleatoric)),
                          passes, noise)

    def fit_noise(self, X, y, mc_samples=None):
        """Choose the observation noise precision tau (one per target) that maximizes the
        log-likelihood of ``(X, y)``, held-out data, under :meth:`predict_distribution`'s
        mixture, as Gal & Ghahramani (2016) chose tau on validation data. Only for losses
        without a variance output (``squared_error``, ``poisson``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Held-out data: never the training set, whose residuals are too small.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        mc_samples : int or None
            The passes ``predict_distribution(X, mc_samples)`` makes (one weight-scaled pass
            by default).

        Returns
        -------
        self : the estimator, with ``noise_precision_`` set
        """
        if self.loss == "gaussian_nll":
            raise ValueError("fit_noise is for losses without a variance output; "
                             "loss='gaussian_nll' predicts its own noise")
        y = self._check_validation_targets(held_out_targets(y))
        passes = np.stack(list(self._mc_passes(X, self._means, mc_samples)))
        self.noise_precision_ = noise_precisions(y, passes)
        return self

document(MLPRegressor, "regressor", MLPRegressor.__doc__)
