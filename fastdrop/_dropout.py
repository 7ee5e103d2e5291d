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
from ._validation import (as_float_array, check_mode, check_out, check_probability,
                          check_same_shape, check_shape, check_uint64)

__all__ = ["DropoutMask", "bernoulli_mask", "dropout", "dropout_backward", "dropout_inference",
           "relu_dropout", "relu_dropout_backward", "Dropout", "keep_threshold"]

_ONE = _kernels.THRESHOLD_ONE  # threshold that keeps every element
# Placeholders for "no mask storage" / "no bias" (the kernels take empty arrays for those).
_EMPTY_BITS = np.empty(0, dtype=np.uint64)
_NO_BIAS = {np.dtype(np.float32): np.empty(0, np.float32),
            np.dtype(np.float64): np.empty(0, np.float64)}


def keep_threshold(keep_prob):
    """The 16-bit threshold for a keep probability: realized keep = threshold / 65536."""
    if keep_prob >= 1.0:
        return _ONE
    if keep_prob <= 0.0:
        return 0
    threshold = int(round(keep_prob * _ONE))
    return 1 if threshold < 1 else (_ONE - 1 if threshold > _ONE - 1 else threshold)


def _n_words(size):
    return (size + 63) // 64


class DropoutMask:
    """The keep decisions of one dropout draw.

    Either stored, 1 bit per element (``bits``, a uint64 array; bit ``j`` of word ``w`` is
    element ``64 * w + j`` of the flattened array, bits past the end are 0), or not stored
    (``bits is None``, ``nbytes == 0``): the decisions are then recomputed from ``(seed, step)``
    whenever they are needed. Masks with ``keep_prob`` 0 or 1 never store anything.

    Attributes
    ----------
    shape : tuple of int
    keep_prob : float
        Realized keep probability, ``threshold / 65536``.
    scale : float
        Factor applied to kept elements at train time (``1 / keep_prob`` for inverted dropout,
        1 for classic).
    seed, step, offset : int
        The draw and the index of the first element.
    """

    __slots__ = ("shape", "threshold", "scale", "seed", "step", "offset", "bits")

    def __init__(self, shape, threshold, scale, seed, step, offset=0, bits=None):
        self.shape = tuple(shape)
        self.threshold = int(threshold)
        self.scale = float(scale)
        self.seed, self.step, self.offset = int(seed), int(step), int(offset)
        self.bits = bits

    @property
    def keep_prob(self):
        return self.threshold / _ONE

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def stored(self):
        return self.bits is not None

    @property
    def nbytes(self):
        """Bytes of mask storage: ceil(size / 64) * 8 when stored, else 0."""
        return 0 if self.bits is None else self.bits.nbytes

    def packed(self, n_threads=None):
        """The packed uint64 words, computed now if they are not stored."""
        if self.bits is not None:
            return self.bits
        return _packed_words(self.size, self.threshold, self.seed, self.step, self.offset,
                             resolve_n_threads(n_threads))

    def to_bool(self):
        """The mask as a numpy bool array of ``shape`` (True = kept)."""
        _check_mask(self)
        return _unpack(self.packed(), self.size).reshape(self.shape)

    def __repr__(self):
        storage = f"{self.nbytes} bytes" if self.stored else "recomputed"
        return (f"DropoutMask(shape={self.shape}, keep_prob={self.keep_prob:.6g}, "
                f"seed={self.seed}, step={self.step}, {storage})")


def _check_mask(mask):
    """A mask built or edited by hand must still fit its shape: the kernels trust it."""
    if not isinstance(mask, DropoutMask):
        raise TypeError(f"mask must be a DropoutMask, got {type(mask).__name__}")
    shape = check_shape(mask.shape, "mask.shape")
    if not 0 <= mask.threshold <= _ONE:
        raise ValueError(f"mask.threshold must be in [0, {_ONE}], got {mask.threshold}")
    bits = mask.bits
    if bits is None:
        return
    n_words = _n_words(math.prod(shape))
    if not (isinstance(bits, np.ndarray) and bits.dtype == np.uint64 and bits.ndim == 1
            and bits.flags.c_contiguous):
        raise TypeError("mask.bits must be None or a C-contiguous 1-d uint64 array, got "
                        f"{type(bits).__name__} {getattr(bits, 'dtype', '')}")
    if bits.shape[0] != n_words:
        raise ValueError(f"mask.bits must hold {n_words} words for mask.shape {shape}, got "
                         f"{bits.shape[0]}")


def _unpack(words, count):
    """The first ``count`` decisions of packed words, as bools (bit j of word i is element
    64 i + j)."""
    flat = np.unpackbits(words.astype("<u8", copy=False).view(np.uint8), count=count,
                         bitorder="little")
    return flat.view(np.bool_)


def _identity(x, out):
    """``x`` itself, or copied into ``out``: a pass that changes nothing."""
    if out is None:
        return x
    y = check_out(out, x.shape, x.dtype)
    np.copyto(y, x)
    return y


def _packed_words(size, threshold, seed, step, offset, n_threads):
    """Packed decisions for elements [offset, offset + size) of draw (seed, step)."""
    n_words = _n_words(size)
    if threshold >= _ONE or threshold == 0:
        words = np.full(n_words, np.uint64(0xFFFFFFFFFFFFFFFF if threshold else 0))
    else:
        first, shift = divmod(offset, 64)
        if shift == 0:
            words = np.empty(n_words, dtype=np.uint64)
            _kernels.mask_words(words, first, seed, step, threshold, n_threads)
        else:  # element offset + j lives at bit (shift + j) of the aligned words: splice them
            aligned = np.empty(n_words + 1, dtype=np.uint64)
            _kernels.mask_words(aligned, first, seed, step, threshold, n_threads)
            words = (aligned[:-1] >> np.uint64(shift)) | (aligned[1:] << np.uint64(64 - shift))
    if size % 64:
        words[-1] &= np.uint64((1 << (size % 64)) - 1)
    return words


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
    bits = _packed_words(size, threshold, seed, step, offset, resolve_n_threads(n_threads))
    return DropoutMask(shape, threshold, 1.0, seed, step, offset, bits)


def _train_scale(threshold, mode):
    return _ONE / threshold if (mode == "inverted" and threshold) else 1.0


def _output(out, like, *reads):
    """Where a kernel writes: ``(buffer, out)``, then :func:`_deliver` ``(buffer, out)``.

    The buffer is a fresh array when ``out`` is None, and ``out`` itself when it is exactly
    ``like``'s memory (in place) or shares none with ``like`` and ``reads``. Otherwise (a
    shifted view of an input, say) an element-wise pass would read what it had already
    written, so the kernel writes a scratch array that is copied into ``out`` after.
    """
    if out is None:
        return np.empty_like(like), None
    check_out(out, like.shape, like.dtype)
    if any(_overlaps_partly(out, a) for a in (like,) + reads):
        return np.empty_like(like), out
    return out, None


def _overlaps_partly(out, a):
    """Some memory shared with ``a``, but not element for element. Both are C-contiguous, so
    the bounds check of ``may_share_memory`` is exact."""
    same = (a.__array_interface__["data"][0] == out.__array_interface__["data"][0]
            and a.size == out.size and a.dtype == out.dtype)
    return not same and np.may_share_memory(out, a)


def _numpy_output(out, like):
    """Where numpy writes: it handles overlapping memory itself."""
    return np.empty_like(like) if out is None else check_out(out, like.shape, like.dtype)


def _deliver(buffer, out):
    if out is None:
        return buffer
    np.copyto(out, buffer)
    return out


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
    mask = DropoutMask(noise, threshold, _train_scale(threshold, mode), seed, step)
    if threshold in (0, _ONE):  # p == 1 or 0: as for a full mask
        return _fused_forward(x, p, seed=seed, step=step, mode=mode, out=out,
                              n_threads=n_threads, store_mask=False, bias=None,
                              relu=False)[0], mask
    bits = mask.packed(n_threads)
    y, out = _output(out, x)
    _apply_shared(x, y, mask, bits, n_threads)
    if store_mask:
        mask.bits = bits
    return _deliver(y, out), mask


def _fused_forward(x, p, *, seed, step, mode, out, n_threads, store_mask, bias, relu):
    """Shared body of dropout and relu_dropout."""
    p = check_probability(p, "p")
    mode = check_mode(mode)
    seed, step = check_uint64(seed, "seed"), check_uint64(step, "step")
    threshold = keep_threshold(1.0 - p)
    scale = _train_scale(threshold, mode)
    mask = DropoutMask(x.shape, threshold, scale, seed, step)
    if threshold == 0:  # p == 1: everything dropped, no random numbers needed
        y = _numpy_output(out, x)
        y.fill(0)
        return y, mask
    if threshold == _ONE and bias is None and not relu:  # p == 0: the identity
        return _identity(x, out), mask
    bias_flat = bias if bias is not None else _NO_BIAS[x.dtype]
    y, out = _output(out, x, bias_flat)
    store = store_mask and threshold < _ONE
    bits = np.empty(_n_words(x.size), dtype=np.uint64) if store else _EMPTY_BITS
    _kernels.forward(x.reshape(-1), y.reshape(-1), bits, seed=seed, step=step,
                     threshold=threshold, scale=scale, bias=bias_flat, relu=relu,
                     n_threads=resolve_n_threads(n_threads))
    y = _deliver(y, out)
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
    ``dy``. ``dy`` is converted like ``x`` in :func:`dropout`; ``out`` may be ``dy`` itself.
    """
    _check_mask(mask)
    dy = as_float_array(dy, "dy")
    shared = mask.shape != dy.shape
    if shared and not _broadcasts_to(mask.shape, dy.shape):
        raise ValueError(f"dy must have the shape of mask, {mask.shape}, or a shape that mask "
                         f"broadcasts to along its axes of length 1, got {dy.shape}")
    if mask.threshold == _ONE and mask.scale == 1.0:  # p == 0: identity
        return _identity(dy, out)
    dx, out = _output(out, dy)
    if mask.threshold == 0:
        dx.fill(0)
    elif shared:
        _apply_shared(dy, dx, mask, mask.packed(n_threads), n_threads)
    else:
        _backward_kernel(dy, dx, mask, resolve_n_threads(n_threads))
    return _deliver(dx, out)


def _backward_kernel(dy, dx, mask, n_threads):
    """dx = keep ? dy * mask.scale : 0 for a checked mask of dy's shape with 0 < keep < 1."""
    if mask.bits is not None:
        _kernels.apply_bits(dy.reshape(-1), mask.bits, dx.reshape(-1), mask.scale, n_threads)
    elif mask.offset == 0:  # recompute: the forward of dy with the same draw
        _kernels.forward(dy.reshape(-1), dx.reshape(-1), _EMPTY_BITS, seed=mask.seed,
                         step=mask.step, threshold=mask.threshold, scale=mask.scale,
                         bias=_NO_BIAS[dy.dtype], relu=False, n_threads=n_threads)
    else:
        _kernels.apply_bits(dy.reshape(-1), mask.packed(n_threads), dx.reshape(-1), mask.scale,
                            n_threads)


def _dropout_checked(x, threshold, seed, step, store_mask, n_threads):
    """(y, mask) of inverted dropout of a C-contiguous float32/float64 array, for callers that
    have checked every argument and hold 0 < threshold < 65536 (fastdrop.torch's hot path:
    no validation, no ``out``)."""
    mask = DropoutMask(x.shape, threshold, _ONE / threshold, seed, step)
    y = np.empty_like(x)
    bits = np.empty(_n_words(x.size), dtype=np.uint64) if store_mask else _EMPTY_BITS
    _kernels.forward(x.reshape(-1), y.reshape(-1), bits, seed=seed, step=step,
                     threshold=threshold, scale=mask.scale, bias=_NO_BIAS[x.dtype], relu=False,
                     n_threads=n_threads)
    if store_mask:
        mask.bits = bits
    return y, mask


def dropout_inference(x, p, *, mode="inverted", out=None):
    """Test-time pass: ``x`` for inverted dropout, ``x * keep_prob`` for classic dropout.

    ``keep_prob`` is the realized probability of the training masks (see module notes). With
    ``mode="inverted"`` and no ``out``, ``x`` itself is returned.
    """
    p = check_probability(p, "p")
    mode = check_mode(mode)
    x = as_float_array(x, "x")
    if mode == "inverted":
        return _identity(x, out)
    keep = keep_threshold(1.0 - p) / _ONE
    y = _numpy_output(out, x)
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
    ``out`` may be ``dy`` itself.
    """
    _check_mask(mask)
    dy = as_float_array(dy, "dy")
    check_same_shape(dy, "dy", mask.shape, "mask")
    y = np.asarray(y)
    check_same_shape(y, "y", mask.shape, "mask")
    if y.dtype != dy.dtype:
        raise ValueError(f"y must have the dtype of dy, {dy.dtype}, got {y.dtype}")
    y = np.asarray(y, order="C")
    dx, out = _output(out, dy, y)
    _kernels.gate(dy.reshape(-1), y.reshape(-1), dx.reshape(-1), mask.scale,
                  resolve_n_threads(n_threads))
    return _deliver(dx, out)


def _layer_seed(seed):
    """A layer's seed: the one given, checked, or (None) one from the OS entropy pool."""
    if seed is None:
        seed = np.random.SeedSequence().entropy & (2**64 - 1)
    return check_uint64(seed, "seed")


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
        self.seed = _layer_seed(seed)
        self.store_mask = bool(store_mask)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.step = 0
        self.mask = None

    def forward(self, x, training=True, *, out=None, n_threads=None):
        """Training: dropout with the next step's mask; inference: :func:`dropout_inference`."""
        if not training:
            return dropout_inference(x, self.p, mode=self.mode, out=out)
        y, self.mask = dropout(x, self.p, seed=self.seed, step=self.step, mode=self.mode,
                               out=out, n_threads=n_threads, store_mask=self.store_mask,
                               noise_shape=self.noise_shape)
        self.step += 1
        return y

    def backward(self, dy, *, out=None, n_threads=None):
        """Gradient through the mask of the last training forward pass."""
        if self.mask is None:
            raise RuntimeError("Dropout.backward called before a training forward pass")
        return dropout_backward(dy, self.mask, out=out, n_threads=n_threads)

    def __repr__(self):
        return f"Dropout(p={self.p}, seed={self.seed}, mode={self.mode!r}, step={self.step})"
