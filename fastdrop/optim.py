"""Optimizers: scikit-learn's SGD (momentum, Nesterov) and Adam as fused one-pass kernels.

Penalties are added to the weights' gradients inside the same pass (biases are not penalized):
the L2 term ``alpha * w / batch_size`` exactly as scikit-learn's MLP scales it, and the L1 term
``l1 * sign(w) / batch_size`` on the same footing. ``step`` returns the penalty part of the
batch loss, from sums the same pass takes of the weights before the update.

A gradient is a dense array like its parameter, or a :class:`SubmatrixGradient` (batch-mode
dropout): then the full gradient is never written out, yet every parameter takes its step, and
the step can also leave the next batch's kept submatrix of the weights (:class:`SubmatrixCopy`).
"""
import math
from typing import NamedTuple

import numpy as np

from . import _nn_kernels

__all__ = ["SGD", "Adam", "Penalty", "SubmatrixGradient", "SubmatrixCopy"]


class Penalty(NamedTuple):
    """A batch's weight penalties: L2 and L1 coefficients, both divided by ``scale`` (the
    batch size, or its rows' summed sample weights, as scikit-learn scales them)."""

    alpha: float
    l1: float
    scale: float


class SubmatrixGradient(NamedTuple):
    """A weight gradient that is zero outside a submatrix of kept rows and columns.

    ``values[row_pos[r], j]`` is the gradient of ``w[r, cols[j]]`` for rows with
    ``row_pos[r] >= 0``; every other element is zero.
    """

    values: np.ndarray   # (n_kept_rows, n_kept_cols)
    row_pos: np.ndarray  # (n_rows,) int64: row of ``values`` for each row of w, or -1
    cols: np.ndarray     # (n_kept_cols,) int64: column of w for each column of ``values``

    def to_dense(self, shape):
        """The full gradient as an array of ``shape`` (for tests and inspection)."""
        dense = np.zeros(shape, dtype=self.values.dtype)
        rows = np.flatnonzero(self.row_pos >= 0)
        dense[np.ix_(rows, self.cols)] = self.values[self.row_pos[rows]]
        return dense


class SubmatrixCopy(NamedTuple):
    """Where a batch-mode step also copies the updated weights: ``out[row_pos[r], j] =
    w[r, cols[j]]`` for every row with ``row_pos[r] >= 0`` (the next step's kept submatrix)."""

    row_pos: np.ndarray  # (n_rows,) int64: row of ``out`` for each row of w, or -1
    cols: np.ndarray     # (n_kept_cols,) int64, increasing
    out: np.ndarray      # (n_kept_rows, n_kept_cols), C-contiguous


_NO_ROWS = np.empty(0, np.int64)  # an empty row_pos / cols: no copy

# One step's settings by name, as the kernels read them (_nn_kernels.fd_step_params).
STEP_PARAMS = np.dtype([(name, np.float64) for name in (
    "lr", "momentum", "nesterov", "beta_1", "beta_2", "epsilon", "l2", "l1")])


class _StepParams:
    """The kernels' settings record for one kind of parameter array, written field by field
    only where a value changed (a field write costs about as much as a small kernel call's
    Python overhead)."""

    def __init__(self, **fields):
        self.record = np.zeros(1, STEP_PARAMS)
        self.words = self.record.view(np.float64)  # what the kernels take: the same memory
        self._values = dict.fromkeys(STEP_PARAMS.names, 0.0)
        self.set(**fields)

    def set(self, **fields):
        """Write the fields that changed; return the record's words for the kernels."""
        for name, value in fields.items():
            if self._values[name] != value:
                self._values[name] = value
                self.record[name] = value
        return self.words


class _Optimizer:
    kind = None  # _nn_kernels.SGD or ADAM
    n_state = 1

    def __init__(self, params, learning_rate):
        self.learning_rate_init = float(learning_rate)
        self.learning_rate = float(learning_rate)
        # per parameter: SGD's velocity; Adam's first and second moments
        self.states = [[np.zeros(p.shape, dtype=p.dtype) for p in params]
                       for _ in range(self.n_state)]
        # SGD has one state array: an empty second one stands in for Adam's
        self._no_state = {p.ndim: np.empty((0,) * p.ndim, dtype=p.dtype) for p in params}
        # the settings of penalized weights, and of what is never penalized (intercepts)
        self._penalized = _StepParams(**self._fixed_settings())
        self._plain = _StepParams(**self._fixed_settings())

    def _fixed_settings(self):
        """The settings that stay for the optimizer's life, by STEP_PARAMS's names."""
        return {}

    def _learning_rate(self):
        """This step's rate as the kernel applies it."""
        return self.learning_rate

    def _step_params(self, l2, l1):
        """The settings record for one array with penalty coefficients l2, l1."""
        lr = self._learning_rate()
        if not (l2 or l1):
            return self._plain.set(lr=lr)
        return self._penalized.set(lr=lr, l2=l2, l1=l1)

    def start_step(self):
        """Begin one optimizer step (Adam advances its time step here)."""

    def update(self, i, w, g, l2, l1, n_threads, copy_to=None):
        """Step parameter array ``i`` (the index it had in ``params``) with gradient ``g`` and
        penalty coefficients ``l2``, ``l1`` (already divided by the batch size); returns the
        (sum w^2, sum |w|) of the weights before the step. ``copy_to`` (a SubmatrixCopy, with
        a SubmatrixGradient only) receives a submatrix of the updated weights."""
        s1 = self.states[0][i]
        s2 = self.states[1][i] if self.n_state > 1 else self._no_state[w.ndim]
        hp = self._step_params(l2, l1)
        if isinstance(g, SubmatrixGradient):
            copy = copy_to or SubmatrixCopy(_NO_ROWS, _NO_ROWS, self._no_state[2])
            return _nn_kernels.optimizer_step_submatrix(self.kind, w, g.values, g.row_pos,
                                                        g.cols, s1, s2, hp, n_threads, *copy)
        if copy_to is not None:
            raise ValueError("copy_to needs the gradient as a SubmatrixGradient (batch mode)")
        if not w.flags.c_contiguous:  # reshape(-1) would update a copy
            raise ValueError(f"parameter {i} must be C-contiguous to be updated in place; "
                             f"got strides {w.strides} for shape {w.shape}")
        return _nn_kernels.optimizer_step(self.kind, w.reshape(-1),
                                          np.ascontiguousarray(g).reshape(-1),
                                          s1.reshape(-1), s2.reshape(-1), hp, n_threads)

    def update_layer(self, l, n_layers, params, grads, penalty, n_threads, copy_to=None):
        """Step one layer's ``params`` (weights, intercepts) with ``grads`` (their
        gradients) under ``penalty`` (a Penalty, on the weights only); return the layer's
        penalty loss (weights before the step).

        Parameters are numbered as ``MLP.weights + MLP.intercepts``: weight ``l`` is ``l``,
        its intercept ``n_layers + l``. ``copy_to``: see ``update``.
        """
        (weight, intercept), (grad_weight, grad_intercept) = params, grads
        alpha, l1, scale = penalty
        sq, ab = self.update(l, weight, grad_weight, alpha / scale, l1 / scale, n_threads,
                             copy_to)
        self.update(n_layers + l, intercept, grad_intercept, 0.0, 0.0, n_threads)
        return ((0.5 * alpha * sq if alpha else 0.0) + (l1 * ab if l1 else 0.0)) / scale

    def step(self, weights, intercepts, grad_weights, grad_intercepts, batch_size, alpha, l1,
             n_threads):
        """Update all parameters in place; return the batch's penalty loss (weights before)."""
        self.start_step()
        penalty = Penalty(alpha, l1, batch_size)
        return sum(self.update_layer(l, len(weights), (w, b), (gw, gb), penalty, n_threads)
                   for l, (w, b, gw, gb) in enumerate(zip(weights, intercepts, grad_weights,
                                                          grad_intercepts)))

    def iteration_ends(self, time_step):
        """After each epoch, ``time_step`` training samples seen in all (scikit-learn's t_)."""

    def trigger_stopping(self, message, verbose):
        """scikit-learn's rule: stop (True), or for an adaptive rate divide it by 5 first."""
        if verbose:
            print(message + " Stopping.")
        return True

    def __repr__(self):
        return f"{type(self).__name__}(learning_rate={self.learning_rate:g})"


class SGD(_Optimizer):
    """SGD with momentum (``v = mu v - lr g; w += v``) or Nesterov's variant, and
    scikit-learn's schedules: "constant", "adaptive" (divided by 5 when the stopping rule
    fires) and "invscaling" (``lr_init / (t + 1) ** power_t`` after each epoch, t the samples
    seen)."""

    kind = _nn_kernels.SGD

    def __init__(self, params, learning_rate=0.1, momentum=0.9, nesterov=True,
                 schedule="constant", power_t=0.5):
        self.momentum, self.nesterov, self.schedule = float(momentum), bool(nesterov), schedule
        self.power_t = float(power_t)
        super().__init__(params, learning_rate)

    def _fixed_settings(self):
        return {"momentum": self.momentum, "nesterov": float(self.nesterov)}

    def iteration_ends(self, time_step):
        if self.schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (time_step + 1) ** self.power_t

    def trigger_stopping(self, message, verbose):
        if self.schedule != "adaptive":
            return super().trigger_stopping(message, verbose)
        if self.learning_rate <= 1e-6:
            if verbose:
                print(message + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(message + f" Setting learning rate to {self.learning_rate:f}")
        return False


class Adam(_Optimizer):
    """Adam (Kingma & Ba) with scikit-learn's bias correction folded into the step size."""

    kind = _nn_kernels.ADAM
    n_state = 2

    def __init__(self, params, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.t = 0
        super().__init__(params, learning_rate)

    def _fixed_settings(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}

    def start_step(self):
        self.t += 1
        self._lr_t = (self.learning_rate_init * math.sqrt(1 - self.beta_2 ** self.t)
                      / (1 - self.beta_1 ** self.t))

    def _learning_rate(self):
        return self._lr_t
