"""The compiled step loop: a whole epoch's mini-batches in C, Python only between epochs.

On a small network a training step is a few microseconds of arithmetic and about a hundred
of Python: a dozen kernel calls, their argument checks, the clock, the optimizer's records
(docs/bench/). :class:`CompiledEpoch` runs the epoch of :meth:`fastdrop._trainer.Trainer.run`
in ``_nn_kernels.train_epoch`` instead (``_step_loop.pxi``): the batch gather, the forward
and backward passes and the layer-wise optimizer steps, calling the same kernels and numpy's
own BLAS functions with the arguments numpy's matmul would pass, so the weights, losses and
history are bit for bit those of the Python loop (tested). History, early stopping and the
learning-rate schedule stay in Python, at epoch boundaries, and so does the thread policy,
which plans the epoch's steps in runs (:meth:`_threading.StepThreads.plan`: a run's thread
count and length; the loop hands back each step's time) and sets BLAS's threads between
them. In batch mode each step gathers its kept submatrix of the weights in its forward pass
rather than having the previous step's update leave it (network.BatchPlan's prefetch): the
same values.

It takes every fit on dense X, on any number of threads: on more than one, the kernels'
chunk loops fan out as their drivers do and BLAS runs on its pool as under np.matmul.
:func:`why_not` says what keeps a fit on the Python loop (a sparse X, chiefly);
``FASTDROP_COMPILED_STEPS=0`` keeps every fit there.
"""
import ctypes
import os
import platform
import struct
import sys

import numpy as np
from scipy import sparse

from . import _nn_kernels
from ._plumbing import ONE, alpha_dropout_params, gaussian_table
from ._sites import (AlphaDropout, BernoulliDropout, GaussianDropout, NoDropout, NoWeightNoise,
                     WeightMask)
from ._threading import FixedThreads, StepThreads
from .network import K_ALIGN, K_WHOLE
from .optim import SGD, Adam

__all__ = ["CompiledEpoch", "compiled_epoch", "numpy_blas", "why_not"]

_U, _I, _F = np.uint64, np.int64, np.float64
# The loop's records, field for field as _step_loop.pxi declares them.
LAYER_RECORD = np.dtype([
    ("weights", _U), ("bias", _U), ("grad_weights", _U), ("grad_bias", _U),
    ("state1_w", _U), ("state1_b", _U), ("state2_w", _U), ("state2_b", _U),
    ("output", _U), ("output_grad", _U), ("fan_in", _I), ("fan_out", _I), ("activation", _I),
    ("seed", _U), ("threshold", _U), ("scale", _F),
    ("kept", _U), ("n_kept", _I), ("positions", _U), ("sub_weights", _U), ("sub_grads", _U),
    ("sub_bias", _U), ("sub_dbias", _U),
    ("noise", _I), ("table", _U), ("alpha_a", _F), ("alpha_b", _F), ("alpha_fill", _F),
    ("site_out", _U), ("dropconnect", _I), ("dc_threshold", _U), ("masked_weights", _U)])
_BLAS = ("sgemm", "dgemm", "sgemv", "dgemv", "sdot", "ddot")
EPOCH_RECORD = np.dtype([*((name, _U) for name in _BLAS),
    ("X", _U), ("target", _U), ("order", _U), ("batch_x", _U), ("batch_target", _U),
    ("logits", _U), ("tail", _U), ("part", _U), ("colsums", _U), ("x_kept", _U),
    ("words", _U), ("row_scratch", _U), ("weights", _U), ("batch_weights", _U),
    ("step_weight", _F), ("batch_mode", _I),
    ("x_cols", _I), ("target_cols", _I), ("n_rows", _I), ("batch_size", _I), ("n_layers", _I),
    ("output_kind", _I), ("optimizer", _I), ("step", _I), ("adam_t", _I), ("k_whole", _I),
    ("k_align", _I),
    ("lr", _F), ("lr_init", _F), ("momentum", _F), ("nesterov", _F), ("beta_1", _F),
    ("beta_2", _F), ("epsilon", _F), ("alpha", _F), ("l1", _F), ("loss_limit", _F),
    ("max_norm", _F),
    ("total", _F), ("loss", _F), ("t_forward", _F), ("t_passes", _F), ("t_update", _F),
    ("steps_done", _I), ("norm_clipped", _I), ("norm_checked", _I), ("status", _I),
    ("threads", _I), ("batch_from", _I), ("batch_to", _I), ("stop_above", _F),
    ("stop_below", _F), ("window", _I), ("recent_len", _I),
    ("recent", _F, _nn_kernels.STEP_WINDOW), ("step_times", _U), ("batch_next", _I)])
_OUTPUT_KINDS = _nn_kernels.OUTPUT_CODES  # output layer -> the loop's code
# site class -> the loop's code of its noise
_SITE_NOISE = {cls: _nn_kernels.NOISE_CODES[kind] for cls, kind in (
    (NoDropout, "mask"), (BernoulliDropout, "mask"), (GaussianDropout, "gaussian"),
    (AlphaDropout, "alpha"))}
_OK, _DIVERGED, _BAD_PRODUCT = (_nn_kernels.LOOP_STATUS[k]
                                for k in ("ok", "diverged", "bad product"))
_CHUNK = _nn_kernels.STEP_CHUNK  # parameters per optimizer chunk (partial sums)
_ROW_BLOCK = _nn_kernels.STEP_ROW_BLOCK  # elements per block of a submatrix step


def _address(a):
    return a.__array_interface__["data"][0] if a is not None else 0


# ---- numpy's BLAS --------------------------------------------------------------------------

_blas = None  # (addresses as a uint64 array, or None; why not)


def numpy_blas():
    """numpy's own sgemm, dgemm, sgemv, dgemv, sdot and ddot (CBLAS), as a uint64 array of
    addresses, or None where they cannot be had or do not give np.matmul's bits; found and
    checked once.

    The functions are looked up from numpy's matmul module itself (``dlsym`` on its handle
    searches the libraries it links), so they are the ones np.matmul calls, under the names
    numpy's builds give them (``scipy_`` and ``64_`` affixes for its ILP64 OpenBLAS)."""
    global _blas
    if _blas is None:
        _blas = _find_numpy_blas()
    return _blas[0]


def _find_numpy_blas():
    if (sys.platform == "win32" or sys.byteorder != "little" or struct.calcsize("P") != 8
            or platform.machine().lower() not in ("x86_64", "amd64", "aarch64", "arm64")):
        return None, f"no compiled step loop on {sys.platform} {platform.machine()}"
    try:
        from numpy._core import _multiarray_umath as module
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as module
    try:
        lib = ctypes.CDLL(module.__file__)
    except OSError as error:
        return None, f"numpy's matmul module could not be opened: {error}"
    for prefix in ("scipy_", ""):
        for suffix in ("64_", "_64", ""):
            names = [f"{prefix}cblas_{f}{suffix}" for f in _BLAS]
            if all(hasattr(lib, name) for name in names):
                blas = np.array([ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
                                 for name in names], dtype=np.uint64)
                if _same_bits_as_matmul(blas):
                    return blas, None
                return None, f"{names[0]} does not give np.matmul's bits"
    return None, "numpy's matmul module links no CBLAS this loop knows"


def _same_bits_as_matmul(blas):
    """Products of every kind the loop makes (gemm with either operand transposed, gemv
    either way round, a 1x1 result), through the functions found, against np.matmul."""
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for (m, k, n), ta, tb in [((7, 33, 5), False, True), ((9, 6, 300), True, False),
                                  ((40, 17, 12), False, False), ((1, 20, 6), False, False),
                                  ((12, 20, 1), False, True), ((1, 300, 1), False, False)]:
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
            a, b = (a.T if ta else a), (b.T if tb else b)
            out = np.empty((m, n), dtype)
            if not _nn_kernels.direct_matmul(blas, a, b, out):
                return False
            if not np.array_equal(out, np.matmul(a, b)):
                return False
    return True


# ---- which fits ----------------------------------------------------------------------------

def why_not(trainer, X, target, weights):
    """Why this fit's epochs cannot run in the compiled loop (a sentence), or None."""
    net = trainer.net
    checks = (
        (os.environ.get("FASTDROP_COMPILED_STEPS", "1").strip() == "0",
         "FASTDROP_COMPILED_STEPS=0"),
        (numpy_blas() is None, lambda: _blas[1]),
        (not isinstance(trainer.threads, (FixedThreads, StepThreads)),
         "its thread policy is not one the loop knows"),
        (type(trainer.opt) not in (SGD, Adam), "its optimizer is not SGD or Adam"),
        (weights is not None and (weights.dtype != net.dtype or not weights.flags.c_contiguous
                                  or weights.ndim != 1), "sample weights not in the loop's layout"),
        (sparse.issparse(X) or X.dtype != net.dtype or not X.flags.c_contiguous,
         "X is not a dense C-contiguous array of the network's dtype"),
        (net.output not in _OUTPUT_KINDS, f"the {net.output!r} output layer"),
        (any(type(layer.site) not in _SITE_NOISE for layer in net.layers),
         "a dropout site of a kind the loop does not know"),
        (any(type(layer.weight_noise) not in (NoWeightNoise, WeightMask)
             for layer in net.layers), "weight noise the loop does not know"),
        (not _target_ok(net, target), "targets not in the loop's layout"),
    )
    for failed, reason in checks:
        if failed:
            return reason() if callable(reason) else reason
    return None


def _target_ok(net, target):
    if net.output == "softmax":
        return target.ndim == 1 and target.dtype == np.int64 and target.flags.c_contiguous
    columns = net.sizes[-1] // 2 if net.output == "gaussian" else net.sizes[-1]
    return (target.ndim == 2 and target.dtype == net.dtype and target.flags.c_contiguous
            and target.shape[1] == columns)


# ---- the loop ------------------------------------------------------------------------------

def compiled_epoch(trainer, ws, batches, weights):
    """The fit call's CompiledEpoch, or None when its epochs run on the Python loop."""
    if why_not(trainer, batches.X, batches.target, weights) is not None:
        return None
    compiled = CompiledEpoch(trainer, ws, batches)
    return compiled if compiled.products_ok() else None


class CompiledEpoch:
    """One fit call's records for ``_nn_kernels.train_epoch``: built once, each epoch only
    writes its order, step counters and learning rate. Holds every array the records point
    to, so none can go while the loop runs."""

    def __init__(self, trainer, ws, batches):
        net, opt, s = trainer.net, trainer.opt, trainer.settings
        self.trainer, self.ws, self.batches = trainer, ws, batches
        self.double = net.dtype == np.float64
        self.max_threads = max(s.n_threads, trainer.threads.current)
        self.step_times = np.empty(0)  # the steps of a run, for the thread policy
        n_layers = net.n_layers
        keep = [net.weights, net.intercepts, ws.grad_weight_buffers, ws.grad_intercepts,
                opt.states]
        self.layers = np.zeros(n_layers, LAYER_RECORD)
        self._tables = []  # Gaussian sites' multipliers
        for l, layer in enumerate(net.layers):
            rec = self.layers[l]
            fan_out, fan_in = layer.weights.shape
            rec["weights"], rec["bias"] = _address(layer.weights), _address(layer.bias)
            rec["grad_weights"] = _address(ws.grad_weight_buffers[l])
            rec["grad_bias"] = _address(ws.grad_intercepts[l])
            rec["state1_w"] = _address(opt.states[0][l])
            rec["state1_b"] = _address(opt.states[0][n_layers + l])
            if opt.n_state > 1:
                rec["state2_w"] = _address(opt.states[1][l])
                rec["state2_b"] = _address(opt.states[1][n_layers + l])
            if l < n_layers - 1:
                rec["output"], rec["output_grad"] = _address(ws.acts[l]), _address(ws.dacts[l])
            rec["fan_in"], rec["fan_out"] = fan_in, fan_out
            if layer.activation is not None and layer.activation.name != "relu":
                rec["activation"] = _nn_kernels.ACTIVATIONS[layer.activation.name]
            self._site(rec, layer.site, ws.site_out[l - 1] if l else None, net.dtype)
            if isinstance(layer.weight_noise, WeightMask):
                rec["dropconnect"] = 1
                rec["dc_threshold"] = layer.weight_noise.threshold
                rec["masked_weights"] = _address(ws.masked_weights[l])
        largest = max(s.batch_size * max(net.sizes), max(w.size for w in net.weights))
        self.tail = np.empty(largest, net.dtype)
        self.colsums = np.empty(max(net.sizes), np.float64)
        # partial sums: per chunk of a dense step, or per block of rows of a submatrix step
        self.part = np.empty(2 * max(largest // _CHUNK + 1, max(net.sizes)), np.float64)
        if ws.batch_mode:
            self._batch_buffers(net, ws)
        X, target = batches.X, batches.target
        self.epoch = np.zeros(1, EPOCH_RECORD)
        e = self.epoch[0]
        for name, address in zip(_BLAS, numpy_blas()):
            e[name] = address
        e["X"], e["target"] = _address(X), _address(target)
        e["batch_x"], e["batch_target"] = _address(ws.x), _address(batches.batch_target)
        e["logits"], e["tail"], e["part"] = (_address(ws.logits), _address(self.tail),
                                             _address(self.part))
        e["colsums"] = _address(self.colsums)
        if ws.batch_mode:
            e["batch_mode"] = 1
            e["x_kept"], e["words"] = _address(ws.x_kept), _address(self.words)
            e["row_scratch"] = _address(self.row_scratch)
        if batches.weights is not None:
            e["weights"] = _address(batches.weights)
            e["batch_weights"] = _address(batches.batch_weights)
        e["x_cols"] = X.shape[1]
        e["target_cols"] = 0 if target.ndim == 1 else target.shape[1]
        e["batch_size"], e["n_layers"] = s.batch_size, n_layers
        e["output_kind"] = _OUTPUT_KINDS[net.output]
        e["optimizer"] = opt.kind
        e["k_whole"], e["k_align"] = K_WHOLE, K_ALIGN
        e["lr_init"] = opt.learning_rate_init
        for name in ("momentum", "beta_1", "beta_2", "epsilon"):
            e[name] = getattr(opt, name, 0.0)
        e["nesterov"] = float(getattr(opt, "nesterov", False))
        e["alpha"], e["l1"], e["loss_limit"] = s.alpha, s.l1, s.loss_limit
        e["max_norm"] = 0.0 if s.max_norm is None else s.max_norm
        self._keep = keep

    def _site(self, rec, site, out, dtype):
        """The site at a layer's input: its draw, and for noise after the activation its
        kind, constants and output buffer (``out``: the workspace's, hidden sites only)."""
        rec["seed"], rec["threshold"] = site.seed, site.threshold
        rec["scale"] = site.train_scale
        rec["noise"] = _SITE_NOISE[type(site)]
        if isinstance(site, GaussianDropout):
            table = gaussian_table(site.rate, dtype)
            self._tables.append(table)
            rec["table"] = _address(table)
        elif isinstance(site, AlphaDropout):
            rec["alpha_a"], rec["alpha_b"], rec["alpha_fill"] = alpha_dropout_params(
                site.threshold / ONE)
        if rec["noise"] and out is not None:
            rec["site_out"] = _address(out)

    def _batch_buffers(self, net, ws):
        """Batch mode: where each step's kept units, their positions and the submatrices
        go (the workspace's own buffers for the submatrices)."""
        self.kept = [np.empty(w, np.int64) for w in net.sizes[:-1]]
        self.positions = [np.empty(w, np.int64) for w in net.sizes[1:]]
        self.words = np.empty((max(net.sizes) + 63) // 64 + 256, np.uint64)
        blocks = max(max(1, _ROW_BLOCK // w.shape[1]) * w.shape[1] for w in net.weights)
        # a block of zeros, then a staging block per thread
        self.row_scratch = np.empty((self.max_threads + 1) * blocks, net.dtype)
        for l, rec in enumerate(self.layers):
            rec["kept"], rec["positions"] = _address(self.kept[l]), _address(self.positions[l])
            rec["sub_weights"], rec["sub_grads"] = (_address(ws.sub_weights[l]),
                                                    _address(ws.sub_grads[l]))
            rec["sub_bias"], rec["sub_dbias"] = (_address(ws.sub_bias[l]),
                                                 _address(ws.sub_dbias[l]))

    def products_ok(self):
        """Whether every product of the fit's steps (full batches and the last one) is one
        numpy sends to BLAS; an inner dimension of 1, for one, numpy computes itself."""
        n, size = self.batches.n, self.trainer.settings.batch_size
        return all(_nn_kernels.products_ok(self.epoch.view(np.uint8),
                                           self.layers.view(np.uint8), m)
                   for m in {min(size, n), n % size} if m > 0)

    def run(self, order, state, clock):
        """One epoch over ``order`` (the rows of X, in order), from ``state.step``, in runs
        of steps the fit's thread policy plans (:meth:`_threading.StepThreads.plan`; one run
        with :class:`_threading.FixedThreads`): returns the summed loss of its steps (loss
        times rows); a loss that blew up goes to ``Trainer.blew_up``, as in the Python loop.
        The epoch's times go to ``clock``."""
        trainer, e = self.trainer, self.epoch[0]
        order = np.ascontiguousarray(order, dtype=np.int64)
        opt = trainer.opt
        e["order"], e["n_rows"] = _address(order), order.size
        e["step"], e["lr"] = state.step, opt.learning_rate
        e["adam_t"] = getattr(opt, "t", 0)
        for name in ("total", "loss", "t_forward", "t_passes", "t_update"):
            e[name] = 0.0
        e["steps_done"] = e["norm_clipped"] = e["norm_checked"] = 0
        size = trainer.settings.batch_size
        n_batches = -(-order.size // size)
        batch, status = 0, _OK
        while batch < n_batches and status == _OK:
            plan = trainer.threads.plan()
            end = n_batches if plan.steps is None else min(n_batches, batch + plan.steps)
            status = self._steps(plan, batch, end)
            done = int(self.epoch[0]["batch_next"])
            if plan.steps is not None:
                for b, seconds in zip(range(batch, done), self.step_times):
                    if seconds >= 0:  # not a skipped batch (every row weighs 0)
                        trainer.threads.record(seconds, min(size, order.size - b * size))
            batch = done
        self._finish(state, clock, status)
        return float(self.epoch[0]["total"])

    def _steps(self, plan, batch, end):
        """Batches ``batch`` up to ``end`` in _nn_kernels.train_epoch, on ``plan.threads``
        (BLAS already set to them by the policy); the steps' times in ``step_times`` when the
        policy wants them."""
        if not 1 <= plan.threads <= self.max_threads:
            raise ValueError(f"the thread policy planned {plan.threads} threads; this fit's "
                             f"buffers allow 1 to {self.max_threads}")
        e = self.epoch[0]
        e["threads"], e["batch_from"], e["batch_to"] = plan.threads, batch, end
        e["stop_above"], e["stop_below"] = plan.stop_above, plan.stop_below
        e["window"], e["recent_len"] = plan.window, len(plan.recent)
        e["recent"][:len(plan.recent)] = plan.recent
        if plan.steps is None:
            e["step_times"] = 0
        else:
            if self.step_times.size < end - batch:
                self.step_times = np.empty(end - batch)
            e["step_times"] = _address(self.step_times)
        return _nn_kernels.train_epoch(self.epoch.view(np.uint8), self.layers.view(np.uint8),
                                       self.double)

    def _finish(self, state, clock, status):
        """The epoch's counters back into ``state``, the optimizer and ``clock``; a bad
        product or a loss that blew up raised as the Python loop raises it."""
        trainer, opt, e = self.trainer, self.trainer.opt, self.epoch[0]
        state.step = int(e["step"])
        state.max_norm_counts[0] += int(e["norm_clipped"])
        state.max_norm_counts[1] += int(e["norm_checked"])
        if isinstance(opt, Adam) and e["adam_t"] != opt.t:
            opt.t = int(e["adam_t"]) - 1
            opt.start_step()  # Adam's time step and step size as the loop's last step left them
        clock.forward += float(e["t_forward"])
        clock.passes += float(e["t_passes"])
        clock.update += float(e["t_update"])
        if status == _BAD_PRODUCT:  # products_ok said otherwise when the fit began
            raise RuntimeError("the compiled step loop met a product it does not compute as "
                               "numpy does; set FASTDROP_COMPILED_STEPS=0 and report it")
        if status == _DIVERGED:
            trainer.blew_up(float(e["loss"]))
