"""Dropout: packed masks, the fused functional API and a layer object.

Conventions
-----------
* ``p`` is the **drop** probability (the Keras/PyTorch convention; Srivastava et al. 2014 write
  p for the *keep* probability). The keep probability is ``1 - p``.
* Keep decisions are drawn by Philox4x32-10, a counter-based generator: the decision for element
  ``i`` of the draw ``(seed, step)`` is a pure function of those three numbers, so results do not
  depend on the thread count, and a backward pass may recompute a mask instead of storing it.
* Resolution: an element is kept when a 16-bit uniform is below ``round((1 - p) * 65536)``; the
  **realized** keep probability (``mask.keep_prob``, a multiple of 2^-16) is what every scale
  factor uses, so inverted dropout is exactly unbiased in expectation. For ``0 < p < 1`` the
  threshold is clamped to [1, 65535], so a tiny but non-zero p still drops with probability
  at least 2^-16 (and a p just below 1 keeps with at least 2^-16).
* ``mode="inverted"`` (default) scales kept units by ``1 / keep_prob`` at train time and leaves
  inference alone; ``mode="classic"`` keeps units unscaled at train time and multiplies by
  ``keep_prob`` at inference (:func:`dropout_inference`).
* Dropped elements are exactly ``+0.0``, even where the input is inf or NaN.
* ``noise_shape`` (Keras's name) shares decisions along axes: an entry of 1 where ``x`` has more
  elements makes one decision for that whole axis (channel dropout, one mask per time series).
  The mask then has the noise shape and costs 1 bit per decision; its element ``i`` is element
  ``i`` of the draw, as for a mask of that shape drawn by :func:`bernoulli_mask`.
"""
import math
import operator

import numpy as np

from . import _kernels
from ._threading import resolve_n_threads
from ._plumbing import (EMPTY_BITS, NO_BIAS, ONE, DropoutMask, backward_kernel, check_mask,
                        deliver, identity, keep_threshold, layer_seed, n_words, numpy_output,
                        output_buffer, packed_words, train_scale)
from ._validation import (as_float_array, check_mode, check_probability, check_same_shape,
                          check_shape, check_uint64)

__all__ = ["DropoutMask", "bernoulli_mask", "dropout", "dropout_backward", "dropout_inference",
           "relu_dropout", "relu_dropout_backward", "Dropout", "keep_threshold"]


def bernoulli_mask(shape, keep_prob, *, seed, step=0, offset=0, n_threads=None):
    """Draw a packed Bernoulli(keep_prob) mask, 1 bit per element.

    Parameters
    ----------
    shape : int or tuple of int
    keep_prob : float in [0, 1]
        Probability that an element is kept (True). Realized as a multiple of 2^-16, see
        ``DropoutMask.keep_prob``.
    seed : int in [0, 2**64)
    step : int in [0, 2**64), default 0
        Index of the draw (e.g. the training iteration); each step is an independent mask.
    offset : int in [0, 2**64), default 0
        Index of the first element: the mask of ``shape`` for elements
        ``[offset, offset + size)`` equals that slice of a larger mask drawn from offset 0.
    n_threads : int or None
        None: :func:`fastdrop.get_num_threads`. The result does not depend on it.

    Returns
    -------
    DropoutMask
        Stored (``.bits``), with ``scale == 1``.
    """
    shape = check_shape(shape)
    keep_prob = check_probability(keep_prob, "keep_prob")
    seed, step = check_uint64(seed, "seed"), check_uint64(step, "step")
    offset = check_uint64(offset, "offset")
    size = math.prod(shape)
    if offset + size > 2**64:
        raise ValueError(f"offset + size must be at most 2**64, got {offset} + {size}")
    threshold = keep_threshold(keep_prob)
    bits = packed_words(size, threshold, seed, step, offset, resolve_n_threads(n_threads))
    return DropoutMask(shape, threshold, 1.0, seed, step, offset, bits)


def _check_noise_shape(noise_shape, shape, name="noise_shape"):
    """The noise shape as a tuple: one entry per axis of ``shape``, each that axis's length
    (None stands for it) or 1 (one decision shared along the axis)."""
    try:
        entries = tuple(noise_shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple with one entry per axis, got "
                        f"{noise_shape!r}") from None
    if len(entries) != len(shape):
        raise ValueError(f"{name} must have one entry per axis of the input, {len(shape)} for "
                         f"shape {shape}, got {len(entries)}: {noise_shape!r}")
    noise = tuple(n if e is None else _noise_entry(e, name) for e, n in zip(entries, shape))
    if any(e not in (1, n) for e, n in zip(noise, shape)):
        raise ValueError(f"{name} entries must be 1 or the length of that axis of the input (shape "
                         f"{shape}), got {noise}")
    return noise


def _broadcasts_to(noise, shape):
    return len(noise) == len(shape) and all(e in (1, n) for e, n in zip(noise, shape))


def _noise_entry(entry, name):
    try:
        return operator.index(entry)
    except TypeError:
        raise TypeError(f"{name} entries must be ints or None, got {entry!r}") from None


def _shared_layout(shape, noise):
    """``(cols, idx, per_row)`` for the shared-mask kernel: x as rows of ``cols`` elements
    (its trailing axes that all vary, or all share a decision), and each row's first mask
    element."""
    axes = [(n, e == 1) for n, e in zip(shape, noise) if n != 1]  # (length, shared)
    cols, k = 1, len(axes)
    per_row = bool(axes) and axes[-1][1]
    while k and axes[k - 1][1] == per_row:
        k -= 1
        cols *= axes[k][0]
    outer = [n for n, _ in axes[:k]]
    outer_noise = [1 if shared else n for n, shared in axes[:k]]
    first = np.arange(math.prod(outer_noise), dtype=np.int64).reshape(outer_noise)
    idx = np.ascontiguousarray(np.broadcast_to(first, outer).reshape(-1))
    return cols, idx, per_row or not axes


def _apply_shared(src, dst, mask, bits, n_threads):
    """dst = keep ? src * mask.scale : 0 for a mask of src's noise shape."""
    cols, idx, per_row = _shared_layout(src.shape, mask.shape)
    _kernels.apply_shared(src.reshape(-1), dst.reshape(-1), cols, idx, bits, per_row,
                          mask.scale, resolve_n_threads(n_threads))


def _shared_forward(x, p, noise, *, seed, step, mode, out, n_threads, store_mask):
    """Dropout with a mask of the noise shape, broadcast over x."""
    threshold = keep_threshold(1.0 - p)
    mask = DropoutMask(noise, threshold, train_scale(threshold, mode), seed, step)
    if threshold in (0, ONE):  # p == 1 or 0: as for a full mask
        return _fused_forward(x, p, seed=seed, step=step, mode=mode, out=out,
                              n_threads=n_threads, store_mask=False, bias=None,
                              relu=False)[0], mask
    bits = mask.packed(n_threads)
    y, out = output_buffer(out, x)
    _apply_shared(x, y, mask, bits, n_threads)
    if store_mask:
        mask.bits = bits
    return deliver(y, out), mask


def _fused_forward(x, p, *, seed, step, mode, out, n_threads, store_mask, bias, relu):
    """Shared body of dropout and relu_dropout."""
    p = check_probability(p, "p")
    mode = check_mode(mode)
    seed, step = check_uint64(seed, "seed"), check_uint64(step, "step")
    threshold = keep_threshold(1.0 - p)
    scale = train_scale(threshold, mode)
    mask = DropoutMask(x.shape, threshold, scale, seed, step)
    if threshold == 0:  # p == 1: everything dropped, no random numbers needed
        y = numpy_output(out, x)
        y.fill(0)
        return y, mask
    if threshold == ONE and bias is None and not relu:  # p == 0: the identity
        return identity(x, out), mask
    bias_flat = bias if bias is not None else NO_BIAS[x.dtype]
    y, out = output_buffer(out, x, bias_flat)
    store = store_mask and threshold < ONE
    bits = np.empty(n_words(x.size), dtype=np.uint64) if store else EMPTY_BITS
    _kernels.forward(x.reshape(-1), y.reshape(-1), bits, seed=seed, step=step,
                     threshold=threshold, scale=scale, bias=bias_flat, relu=relu,
                     n_threads=resolve_n_threads(n_threads))
    y = deliver(y, out)
    if store:
        mask.bits = bits
    return y, mask


def dropout(x, p, *, seed, step=0, mode="inverted", out=None, n_threads=None, store_mask=True,
            noise_shape=None):
    """Fused dropout forward pass: one pass over memory, no temporaries.

    Parameters
    ----------
    x : array_like of any shape
        float32 and float64 are used as they are; a non-C-contiguous array is copied; bool,
        integer and float16 input is converted (float16 to float32, the others to float64).
        Complex input is refused.
    p : float in [0, 1]
        Drop probability (the Keras/PyTorch convention; the keep probability is 1 - p).
        ``p == 0`` returns ``x`` itself (or copies it into ``out``) without drawing;
        ``p == 1`` returns zeros.
    seed : int in [0, 2**64)
        Key of the counter-based generator.
    step : int in [0, 2**64), default 0
        Index of the draw; use a new step for each forward pass.
    mode : {"inverted", "classic"}, default "inverted"
        "inverted" scales kept elements by ``1 / keep_prob``; "classic" leaves them unscaled
        (use :func:`dropout_inference` with the same mode at test time).
    out : ndarray, optional
        Preallocated output of x's shape and (converted) dtype, C-contiguous and writable.
        May be ``x`` itself (in-place).
    n_threads : int or None
        None: :func:`fastdrop.get_num_threads`. Results do not depend on it.
    store_mask : bool, default True
        Store the mask (1 bit per element). With False the mask costs nothing and
        :func:`dropout_backward` recomputes it from ``(seed, step)``.
    noise_shape : tuple, optional
        One entry per axis of ``x``: 1 shares one decision along that axis, the axis's
        length (or None) draws one per element. ``(n, c, 1, 1)`` on an (n, c, h, w) array drops
        whole channels; ``(n, 1, f)`` on (n, t, f) drops the same features at every step.

    Returns
    -------
    y : ndarray
        ``keep ? x * scale : 0``; ``out`` when given.
    mask : DropoutMask
        Of the noise shape when one is given.
    """
    x = as_float_array(x, "x")
    if noise_shape is not None:
        noise = _check_noise_shape(noise_shape, x.shape)
        if noise != x.shape:
            p, mode = check_probability(p, "p"), check_mode(mode)
            seed, step = check_uint64(seed, "seed"), check_uint64(step, "step")
            return _shared_forward(x, p, noise, seed=seed, step=step, mode=mode, out=out,
                                   n_threads=n_threads, store_mask=store_mask)
    return _fused_forward(x, p, seed=seed, step=step, mode=mode, out=out, n_threads=n_threads,
                          store_mask=store_mask, bias=None, relu=False)


def dropout_backward(dy, mask, *, out=None, n_threads=None):
    """Gradient of :func:`dropout`: ``dx = keep ? dy * mask.scale : 0``.

    Reads the stored bits, or recomputes the decisions from ``(mask.seed, mask.step)`` when the
    mask was not stored (``store_mask=False``). A mask of a noise shape is broadcast over
    ``dy``.

    Parameters
    ----------
    dy : array_like
        Gradient with respect to the forward pass's output; of the mask's shape, or one the
        mask broadcasts to along its axes of length 1. Converted like ``x`` in
        :func:`dropout`.
    mask : DropoutMask
        The mask :func:`dropout` returned.
    out : ndarray, optional
        Preallocated output of dy's shape and dtype; may be ``dy`` itself.
    n_threads : int or None
        None: :func:`fastdrop.get_num_threads`. Results do not depend on it.

    Returns
    -------
    dx : ndarray
        The gradient with respect to the forward pass's input; ``out`` when given.
    """
    check_mask(mask)
    dy = as_float_array(dy, "dy")
    shared = mask.shape != dy.shape
    if shared and not _broadcasts_to(mask.shape, dy.shape):
        raise ValueError(f"dy must have the shape of mask, {mask.shape}, or a shape that mask "
                         f"broadcasts to along its axes of length 1, got {dy.shape}")
    if mask.threshold == ONE and mask.scale == 1.0:  # p == 0: identity
        return identity(dy, out)
    dx, out = output_buffer(out, dy)
    if mask.threshold == 0:
        dx.fill(0)
    elif shared:
        _apply_shared(dy, dx, mask, mask.packed(n_threads), n_threads)
    else:
        backward_kernel(dy, dx, mask, resolve_n_threads(n_threads))
    return deliver(dx, out)


def dropout_inference(x, p, *, mode="inverted", out=None):
    """Test-time pass: ``x`` for inverted dropout, ``x * keep_prob`` for classic dropout.

    Parameters
    ----------
    x : array_like
        Converted like in :func:`dropout`.
    p : float in [0, 1]
        The drop probability the network trained with.
    mode : {"inverted", "classic"}, default "inverted"
        As in :func:`dropout`.
    out : ndarray, optional
        Preallocated output of x's shape and (converted) dtype.

    Returns
    -------
    y : ndarray
        ``x`` (inverted; ``x`` itself when no ``out`` is given) or ``x * keep_prob``
        (classic), ``keep_prob`` being the realized probability of the training masks (see
        the module notes).
    """
    p = check_probability(p, "p")
    mode = check_mode(mode)
    x = as_float_array(x, "x")
    if mode == "inverted":
        return identity(x, out)
    keep = keep_threshold(1.0 - p) / ONE
    y = numpy_output(out, x)
    np.multiply(x, x.dtype.type(keep), out=y)
    return y


def relu_dropout(x, p, *, seed, step=0, bias=None, mode="inverted", out=None, n_threads=None,
                 store_mask=True):
    """Fused ``dropout(relu(x + bias))`` in one pass: the hidden-layer hot path of an MLP.

    Parameters
    ----------
    x : array_like of shape (..., n_features)
        Pre-activations, converted like in :func:`dropout`.
    p, seed, step, mode, out, n_threads, store_mask
        As in :func:`dropout`. With ``p == 0`` no random numbers are drawn (bias + ReLU only).
    bias : array_like of shape (n_features,), optional
        Added along the last axis before the ReLU; converted to x's dtype.

    Returns
    -------
    y : ndarray
        ``keep ? relu(x + bias) * scale : 0``.
    mask : DropoutMask
        :func:`relu_dropout_backward` needs only its scale, so ``store_mask=False`` costs
        nothing in the backward pass.
    """
    x = as_float_array(x, "x")
    if bias is not None:
        bias = as_float_array(bias, "bias").astype(x.dtype, copy=False)
        n_features = x.shape[-1] if x.ndim else 1
        if bias.ndim != 1 or bias.shape[0] != n_features:
            raise ValueError(f"bias must have shape ({n_features},) to match the last axis of x, "
                             f"got {bias.shape}")
        if bias.shape[0] == 0:
            bias = None
    return _fused_forward(x, p, seed=seed, step=step, mode=mode, out=out, n_threads=n_threads,
                          store_mask=store_mask, bias=bias, relu=True)


def relu_dropout_backward(dy, y, mask, *, out=None, n_threads=None):
    """Gradient of :func:`relu_dropout` with respect to its input (and so to its bias).

    ``y > 0`` exactly where the unit was kept *and* its pre-activation was positive, so the
    output ``y`` of the forward pass gives the whole gate: ``dx = y > 0 ? dy * mask.scale : 0``.
    The mask's bits are not read (only its scale); the bias gradient is ``dx.sum(axis=0)``.

    Parameters
    ----------
    dy : array_like
        Gradient with respect to the forward pass's output, of the mask's shape.
    y : ndarray
        The forward pass's output, of dy's shape and dtype.
    mask : DropoutMask
        The mask :func:`relu_dropout` returned.
    out : ndarray, optional
        Preallocated output of dy's shape and dtype; may be ``dy`` itself.
    n_threads : int or None
        None: :func:`fastdrop.get_num_threads`. Results do not depend on it.

    Returns
    -------
    dx : ndarray
        The gradient with respect to the pre-activations; ``out`` when given.
    """
    check_mask(mask)
    dy = as_float_array(dy, "dy")
    check_same_shape(dy, "dy", mask.shape, "mask")
    y = np.asarray(y)
    check_same_shape(y, "y", mask.shape, "mask")
    if y.dtype != dy.dtype:
        raise ValueError(f"y must have the dtype of dy, {dy.dtype}, got {y.dtype}")
    y = np.asarray(y, order="C")
    dx, out = output_buffer(out, dy, y)
    _kernels.gate(dy.reshape(-1), y.reshape(-1), dx.reshape(-1), mask.scale,
                  resolve_n_threads(n_threads))
    return deliver(dx, out)


class Dropout:
    """A dropout layer that draws a fresh mask on every training forward pass.

    Parameters
    ----------
    p : float in [0, 1]
        Drop probability.
    seed : int or None
        None draws one from the OS entropy pool (see ``.seed`` to reproduce it).
    mode : {"inverted", "classic"}
    store_mask : bool, default True
        False recomputes the mask in :meth:`backward` instead of keeping 1 bit per element.
    noise_shape : tuple, optional
        Decisions shared along axes, as in :func:`dropout`.

    Examples
    --------
    >>> layer = Dropout(0.5, seed=0)
    >>> y = layer.forward(x)              # step 0
    >>> dx = layer.backward(dy)           # same mask
    >>> y2 = layer.forward(x)             # step 1: a new mask
    >>> y_test = layer.forward(x, training=False)
    """

    def __init__(self, p, *, seed=None, mode="inverted", store_mask=True, noise_shape=None):
        self.p = check_probability(p, "p")
        self.mode = check_mode(mode)
        self.seed = layer_seed(seed)
        self.store_mask = bool(store_mask)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.step = 0
        self.mask = None

    def forward(self, x, training=True, *, out=None, n_threads=None):
        """Training: dropout with the next step's mask; inference: :func:`dropout_inference`.

        Parameters
        ----------
        x : array_like
            The input, converted like in :func:`dropout`.
        training : bool, default True
            False: the test-time pass (no mask drawn, the step unchanged).
        out : ndarray, optional
            Preallocated output, as in :func:`dropout`.
        n_threads : int or None
            None: :func:`fastdrop.get_num_threads`. Results do not depend on it.

        Returns
        -------
        y : ndarray
            The layer's output; the mask of a training pass is kept in ``.mask`` for
            :meth:`backward`.
        """
        if not training:
            return dropout_inference(x, self.p, mode=self.mode, out=out)
        y, self.mask = dropout(x, self.p, seed=self.seed, step=self.step, mode=self.mode,
                               out=out, n_threads=n_threads, store_mask=self.store_mask,
                               noise_shape=self.noise_shape)
        self.step += 1
        return y

    def backward(self, dy, *, out=None, n_threads=None):
        """Gradient through the mask of the last training forward pass.

        Parameters
        ----------
        dy : array_like
            Gradient with respect to that pass's output.
        out : ndarray, optional
            Preallocated output; may be ``dy`` itself.
        n_threads : int or None
            None: :func:`fastdrop.get_num_threads`. Results do not depend on it.

        Returns
        -------
        dx : ndarray
            The gradient with respect to that pass's input.
        """
        if self.mask is None:
            raise RuntimeError("Dropout.backward called before a training forward pass")
        return dropout_backward(dy, self.mask, out=out, n_threads=n_threads)

    def __repr__(self):
        return f"Dropout(p={self.p}, seed={self.seed}, mode={self.mode!r}, step={self.step})"
