"""The training loop, apart from the estimators that drive it.

A :class:`Trainer` owns one fit call's workspace, batches, optimizer stepper and clock, and
writes into a :class:`TrainingState`, which the estimator keeps between calls (a warm start or
``partial_fit`` goes on from it) and reads its fitted attributes from. The estimator
validates the parameters, builds the engine, the optimizer and the :class:`TrainSettings`,
and supplies what depends on its targets: how to score a validation set, and what to say
when the loss diverges.
"""
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning

from . import _nn_kernels
from ._compiled_epoch import compiled_epoch
from ._threading import FixedThreads
from .network import Workspace
from .optim import Penalty

__all__ = ["DivergenceWarning", "TrainSettings", "TrainingState", "Trainer", "history_keys"]


class DivergenceWarning(ConvergenceWarning):
    """A fit with early stopping diverged and kept the weights of its best epoch on
    validation, as scikit-learn's MLPs do (a search over learning rates then finishes and
    ranks the diverging setting by that epoch). ``reason`` is the FloatingPointError message
    the same fit raises without early stopping."""

    def __init__(self, message, reason):
        super().__init__(message)
        self.reason = reason


class _Diverged(Exception):
    """The loss blew up inside an epoch (with early stopping: the trainer recovers)."""


def history_keys(score_key):
    """history_'s columns; ``score_key`` names the validation score (val_accuracy, val_r2)."""
    return ("epoch", "train_loss", "val_loss", score_key, "learning_rate", "time",
            "time_forward", "time_backward", "time_forward_backward", "time_update",
            "time_validation")


@dataclass
class TrainSettings:
    """What the loop reads from the estimator's parameters, once per fit call."""

    batch_size: int
    max_iter: int                # epochs of this call (1 for partial_fit)
    n_threads: int               # the kernels' threads, resolved
    loss_limit: float            # a loss no converging fit reaches (see _BaseMLP._loss_limit)
    score_key: str               # the validation score's history_ column
    shuffle: bool = True
    alpha: float = 0.0           # L2, scaled as scikit-learn does
    l1: float = 0.0
    max_norm: Optional[float] = None
    tol: float = 1e-4
    n_iter_no_change: float = 10
    early_stopping: bool = False  # in use for this call: a validation set, not partial_fit
    watch_loss: bool = False     # early stopping watches the validation loss, not the score
    incremental: bool = False    # partial_fit: one epoch, no stopping rule
    verbose: bool = False
    threads: Any = None          # each step's thread count (_threading.StepThreads); None:
    #                              every step on n_threads


@dataclass
class TrainingState:
    """Everything a fit leaves for the next one and for the fitted attributes."""

    score_key: str
    step: int = 0                # optimizer steps so far: each batch's draw of the masks
    t: int = 0                   # training samples seen (scikit-learn's t_)
    n_iter: int = 0              # epochs of the last call
    loss: float = np.nan
    loss_curve: list = field(default_factory=list)
    best_loss: Optional[float] = np.inf
    no_improvement_count: int = 0
    validation_scores: Optional[list] = None
    best_validation_score: Optional[float] = None
    best_watched: float = -np.inf  # the best watched value (a score, or minus a loss)
    best_params: Optional[list] = None
    best_epoch: Optional[int] = None  # the epoch (as history_ counts) whose weights those are
    stopped_epoch: Optional[int] = None
    max_norm_counts: list = field(default_factory=lambda: [0, 0])  # clipped, checked
    history: dict = None

    def __post_init__(self):
        if self.history is None:
            self.history = {k: [] for k in history_keys(self.score_key)}


class EpochClock:
    """Where an epoch's wall time goes, batch by batch: batch copies and forward halves
    (``forward``), whole passes without the optimizer steps taken inside them (``passes``),
    optimizer steps and max-norm (``update``)."""

    def __init__(self):
        self.start = time.perf_counter()
        self.forward = self.passes = self.update = 0.0
        self._t = self.start

    def batch_start(self):
        self._t = time.perf_counter()

    def forward_done(self):
        self.forward += time.perf_counter() - self._t

    def pass_done(self, stepping):
        """The pass is over; ``stepping`` seconds of it were optimizer steps."""
        now = time.perf_counter()
        self.passes += now - self._t - stepping
        self.update += stepping
        self._t = now

    def update_done(self):
        self.update += time.perf_counter() - self._t


class Batches:
    """The training rows, copied batch by batch into the workspace's buffers."""

    def __init__(self, X, target, weights, rows, ws, size):
        self.X, self.target, self.weights, self.rows = X, target, weights, rows
        self.n = X.shape[0] if rows is None else rows.size
        self.ws = ws
        self.batch_target = np.empty((size, *target.shape[1:]), dtype=target.dtype)
        self.batch_weights = None if weights is None else np.empty(size, dtype=weights.dtype)

    def order(self, rs, shuffle):
        """The epoch's rows of X: shuffled, or None (as stored)."""
        order = rs.permutation(self.n) if shuffle else None
        if self.rows is not None:  # positions among the training rows -> rows of X
            order = self.rows if order is None else self.rows[order]
        return order

    def load(self, order, start, m, n_threads):
        """Rows start .. start + m of the epoch's order into the batch buffers; returns the
        batch's targets and row weights (None without sample weights)."""
        X, weights = self.X, self.weights
        rows = slice(start, start + m) if order is None else order[start:start + m]
        if sparse.issparse(X):  # the batch's rows as a CSR matrix of their own
            self.ws.sparse_x = X[rows]
        elif order is None:
            np.copyto(self.ws.x[:m], X[rows])
        else:
            _nn_kernels.take_rows(X, rows, self.ws.x[:m], n_threads)
        _take(self.target, rows, self.batch_target[:m])
        if weights is None:
            return self.batch_target[:m], None
        return self.batch_target[:m], _take(weights, rows, self.batch_weights[:m])


def _take(src, rows, out):
    """out = src[rows] without a temporary: a slice is copied, indices are taken."""
    if isinstance(rows, slice):
        np.copyto(out, src[rows])
    else:
        np.take(src, rows, axis=0, out=out)
    return out


class LayerwiseStep:
    """The optimizer step of one batch, taken layer by layer during the backward pass.

    Layer ``l`` steps as soon as the pass is done with it (``MLP.forward_backward``'s
    ``on_layer``), while its freshly computed gradient is still in cache: the same bits as a
    step after the whole pass, one trip through memory fewer. In batch mode the step also
    leaves the next step's kept submatrix of the weights where the next forward pass looks
    for it (``network.BatchPlan``), instead of that pass gathering it from memory again.
    Accumulates the batch's penalty loss and the time spent stepping.
    """

    def __init__(self, net, opt, ws, settings):
        self.net, self.opt, self.ws = net, opt, ws
        self.alpha, self.l1, self.n_threads = settings.alpha, settings.l1, settings.n_threads
        self.batch_penalty, self.penalty, self.time = None, 0.0, 0.0

    def begin(self, m, n_threads):
        """A new step on ``n_threads``; ``m`` scales the penalties: the batch size, or the
        sum of its sample weights (as scikit-learn scales them)."""
        self.n_threads = n_threads
        self.opt.start_step()
        self.batch_penalty = Penalty(self.alpha, self.l1, m)
        self.penalty, self.time = 0.0, 0.0

    def layer(self, l):
        t = time.perf_counter()
        ws, layers = self.ws, self.net.layers
        copy_to = ws.plan.copy_target(l) if ws.batch_mode else None
        layer = layers[l]
        self.penalty += self.opt.update_layer(
            l, len(layers), (layer.weights, layer.bias),
            (ws.grad_weights[l], ws.grad_intercepts[l]), self.batch_penalty, self.n_threads,
            copy_to)
        if copy_to is not None:  # the next step's forward pass finds its submatrix ready
            ws.plan.left(l)
        self.time += time.perf_counter() - t


class Trainer:
    """Runs epochs of a network with an optimizer, under ``settings``, into ``state``.

    ``evaluate(X, y, weights, n_threads)`` gives a validation set's (loss, score);
    ``divergence(loss, epoch)`` says what a loss that blew up means. Without early stopping
    that is a FloatingPointError; with it, the best weights on validation (the initial ones
    if no epoch finished) are kept and a DivergenceWarning says so.
    """

    def __init__(self, net, optimizer, settings: TrainSettings, state: TrainingState,
                 evaluate: Callable, divergence: Callable):
        self.net, self.opt, self.settings, self.state = net, optimizer, settings, state
        self.evaluate, self.divergence = evaluate, divergence
        self.threads = settings.threads or FixedThreads(settings.n_threads)

    # ------------------------------------------------------------------ mini-batch solvers
    def run(self, X, target, weights, val, rs, rows=None):
        """The epochs of one fit (or partial_fit) call over rows ``rows`` of X (None: all);
        ``val`` is (X_val, y_val, weights_val) or None."""
        s, state = self.settings, self.state
        # max-norm changes the weights after each step: the step cannot prefetch for the next
        ws = Workspace(self.net, s.batch_size, prefetch=s.max_norm is None,
                       sparse_input=sparse.issparse(X))
        stepper = LayerwiseStep(self.net, self.opt, ws, s)
        batches = Batches(X, target, weights, rows, ws, s.batch_size)
        compiled = compiled_epoch(self, ws, batches, weights)
        if s.early_stopping and state.validation_scores is None:
            state.validation_scores, state.best_validation_score = [], -np.inf
            state.best_watched = -np.inf
        if s.early_stopping and state.best_params is None:  # kept if epoch 1 diverges
            state.best_params = self._params_copy()
        if state.best_loss is None:  # early stopping was on until now: the loss rule restarts
            state.best_loss = np.inf
        converged = False
        state.n_iter = 0  # epochs of this call, as scikit-learn counts them (not cumulative)
        for _ in range(s.max_iter):
            clock = EpochClock()
            try:
                self._epoch(batches, ws, stepper, rs, clock, compiled)
            except _Diverged as diverged:
                self._keep_best(str(diverged))
                return
            val_loss, val_score = self._end_epoch(val, clock)
            self.opt.iteration_ends(state.t)
            if s.incremental:
                state.best_loss = min(state.best_loss, state.loss)
                break
            if self._should_stop(val_score, val_loss):
                converged = True
                break
        self._finish(converged)

    def _epoch(self, batches, ws, stepper, rs, clock, compiled=None):
        """One pass over the training rows in mini-batches, each stepped layer by layer: in
        the compiled loop where it takes the fit (``compiled``), else here. Sets state.loss
        (the epoch's mean training loss, penalties included; with sample weights each
        batch's loss is their weighted mean, as in scikit-learn)."""
        state = self.state
        order = batches.order(rs, self.settings.shuffle)
        if compiled is not None:
            total = compiled.run(np.arange(batches.n) if order is None else order, state,
                                 clock)
        else:
            total = self._steps(batches, ws, stepper, order, clock)
        state.n_iter += 1
        state.t += batches.n
        state.loss = total / batches.n
        state.loss_curve.append(state.loss)

    def _steps(self, batches, ws, stepper, order, clock):
        """The epoch's mini-batches in ``order``; returns their summed loss (loss x rows)."""
        s, state, net = self.settings, self.state, self.net
        total = 0.0
        for start in range(0, batches.n, s.batch_size):
            m = min(s.batch_size, batches.n - start)
            n_threads = self.threads.begin_step()
            clock.batch_start()
            target, w = batches.load(order, start, m, n_threads)
            total_weight = m if w is None else float(w.sum())
            if total_weight == 0:  # every sample weighs 0: no loss, nothing to step on
                continue
            stepper.begin(total_weight, n_threads)
            loss = net.forward_backward(ws, m, target, state.step, n_threads, stepper.layer,
                                        clock.forward_done, w) / total_weight
            clock.pass_done(stepper.time)
            loss += stepper.penalty
            if s.max_norm is not None:
                self._apply_max_norm()
            clock.update_done()
            if not loss < s.loss_limit:  # NaN too
                self.blew_up(loss)
            state.step += 1
            total += loss * m
            self.threads.end_step(m)
        return total

    def blew_up(self, loss):
        """A step's loss that is not below the limit: with early stopping, end the epoch
        (run() keeps the best weights and warns); else a FloatingPointError."""
        message = self.divergence(loss, self.state.n_iter + 1)
        raise _Diverged(message) if self.settings.early_stopping else FloatingPointError(message)

    def _apply_max_norm(self):
        counts = self.state.max_norm_counts
        for layer in self.net.layers[:-1]:  # hidden units' incoming weights, a row each
            counts[0] += _nn_kernels.max_norm(layer.weights, self.settings.max_norm)
            counts[1] += layer.weights.shape[0]

    def _end_epoch(self, val, clock):
        """Validation loss and score (NaN without a validation set), logged in the history
        with the epoch's times."""
        tv = time.perf_counter()
        val_loss = val_score = np.nan
        if val is not None:
            val_loss, val_score = self.evaluate(*val, n_threads=self.threads.current)
        t_val = time.perf_counter() - tv
        state = self.state
        rate = np.nan if self.opt is None else self.opt.learning_rate
        for key, value in (("epoch", len(state.loss_curve)), ("train_loss", state.loss),
                           ("val_loss", val_loss), (state.score_key, val_score),
                           ("learning_rate", rate), ("time", time.perf_counter() - clock.start),
                           ("time_forward", clock.forward),
                           ("time_backward", clock.passes - clock.forward),
                           ("time_forward_backward", clock.passes),
                           ("time_update", clock.update), ("time_validation", t_val)):
            state.history[key].append(value)
        if self.settings.verbose:
            print(f"Iteration {state.n_iter}, loss = {state.loss:.8f}")
        return val_loss, val_score

    def _should_stop(self, val_score, val_loss):
        """The stopping rule, after an epoch (SGD's adaptive rate first divides its step)."""
        s, state = self.settings, self.state
        self._count_no_improvement(val_score, val_loss)
        if state.no_improvement_count <= s.n_iter_no_change:
            return False
        what = "Validation score" if s.early_stopping else "Training loss"
        msg = (f"{what} did not improve more than tol={s.tol:f} for "
               f"{s.n_iter_no_change} consecutive epochs.")
        if self.opt.trigger_stopping(msg, s.verbose):
            state.stopped_epoch = state.n_iter
            return True
        state.no_improvement_count = 0
        return False

    def _count_no_improvement(self, val_score, val_loss):
        s, state = self.settings, self.state
        if s.early_stopping:
            state.validation_scores.append(val_score)
            # watch a value to maximize: the score, or minus the validation loss
            watched = -val_loss if s.watch_loss else val_score
            worse = watched < state.best_watched + s.tol
            if watched > state.best_watched:
                state.best_watched = watched
                state.best_validation_score = val_score
                state.best_params = self._params_copy()
                state.best_epoch = len(state.loss_curve)
            state.best_loss = None
        else:
            worse = state.loss_curve[-1] > state.best_loss - s.tol
            state.best_loss = min(state.best_loss, state.loss_curve[-1])
        state.no_improvement_count = state.no_improvement_count + 1 if worse else 0

    def _params_copy(self):
        return [p.copy() for p in self.net.weights + self.net.intercepts]

    def _keep_best(self, reason):
        """After a divergence under early stopping: the best weights back, and a warning."""
        state = self.state
        for dst, src in zip(self.net.weights + self.net.intercepts, state.best_params):
            np.copyto(dst, src)
        kept = ("the weights it started from: no epoch finished" if state.best_epoch is None
                else f"the weights of epoch {state.best_epoch}, the best on validation "
                     f"({state.best_validation_score:.4g})")
        warnings.warn(DivergenceWarning(f"{reason} Early stopping kept {kept}.", reason),
                      stacklevel=4)

    def _finish(self, converged):
        s, net = self.settings, self.net
        if s.early_stopping and self.state.best_params is not None:
            for dst, src in zip(net.weights + net.intercepts, self.state.best_params):
                np.copyto(dst, src)
        if not s.incremental and not converged:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({s.max_iter}) reached "
                          f"and the optimization hasn't converged yet.", ConvergenceWarning)

    # ------------------------------------------------------------------ L-BFGS
    def run_lbfgs(self, X, target, weights, max_fun):
        """scikit-learn's lbfgs: scipy's L-BFGS-B on the full-batch loss (data loss + L2)
        and its gradient, from one forward-backward pass of the whole set each evaluation;
        at most max_iter iterations and max_fun evaluations, gtol=tol. Each iteration goes
        to the loss curve and the history. Returns scipy's result."""
        from scipy.optimize import minimize

        s, state, net, n = self.settings, self.state, self.net, X.shape[0]
        total_weight = n if weights is None else float(weights.sum())
        params = net.weights + net.intercepts
        ws = Workspace(net, n, sparse_input=sparse.issparse(X))
        if ws.x is None:
            ws.sparse_x = X
        else:
            np.copyto(ws.x, X)
        last = {"loss": np.nan, "clock": EpochClock()}

        def loss_and_grad(theta):
            _unflatten(theta, params)
            loss = net.forward_backward(ws, n, target, 0, s.n_threads, weights=weights)
            # no divergence check: the line search tries far points on purpose
            loss = loss / total_weight if total_weight > 0 else 0.0
            l2 = s.alpha / total_weight if total_weight > 0 else 0.0
            grads = [g + l2 * w for g, w in zip(ws.grad_weights, net.weights)]
            loss += 0.5 * l2 * sum(float(np.dot(w.ravel(), w.ravel())) for w in net.weights)
            last["loss"] = loss
            return loss, _flatten(grads + ws.grad_intercepts)

        def iteration_done(_theta):
            state.n_iter += 1
            state.loss = last["loss"]
            state.loss_curve.append(state.loss)
            self._end_epoch(None, last["clock"])
            last["clock"] = EpochClock()

        state.n_iter = 0
        result = minimize(loss_and_grad, _flatten(params), method="L-BFGS-B", jac=True,
                          callback=iteration_done,
                          options={"maxfun": max_fun, "maxiter": s.max_iter, "gtol": s.tol})
        _unflatten(result.x, params)
        state.loss = float(result.fun)
        state.t += n
        return result


def _flatten(arrays):
    """One float64 vector of all the arrays' values (L-BFGS's parameter vector)."""
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])


def _unflatten(theta, arrays):
    """Copy the vector back into the arrays, in place, in their dtypes."""
    start = 0
    for a in arrays:
        np.copyto(a, theta[start:start + a.size].reshape(a.shape), casting="same_kind")
        start += a.size
