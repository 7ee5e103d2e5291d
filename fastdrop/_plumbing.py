"""The kernel plumbing that the functional API (``_dropout``, ``_noise``), the engine
(``network``, ``_sites``) and ``torch`` share: thresholds, packed masks, the mask record the
kernels read, output buffers, and the Gaussian and alpha noises' constants. Private: callers
have checked their arguments; the public API lives in ``_dropout`` and ``_noise``."""
import functools
import math

import numpy as np

from . import _kernels
from ._nn_kernels import SELU_CONSTANTS
from ._threading import resolve_n_threads
from ._validation import check_out, check_shape, check_uint64

SELU_ALPHA, SELU_LAMBDA = SELU_CONSTANTS  # Klambauer et al. 2017, eq. 14
_ALPHA_PRIME = -SELU_LAMBDA * SELU_ALPHA

ONE = _kernels.THRESHOLD_ONE  # threshold that keeps every element


# Placeholders for "no mask storage" / "no bias" (the kernels take empty arrays for those).
EMPTY_BITS = np.empty(0, dtype=np.uint64)


NO_BIAS = {np.dtype(np.float32): np.empty(0, np.float32),
            np.dtype(np.float64): np.empty(0, np.float64)}


def keep_threshold(keep_prob):
    """The 16-bit threshold for a keep probability: realized keep = threshold / 65536."""
    if keep_prob >= 1.0:
        return ONE
    if keep_prob <= 0.0:
        return 0
    threshold = int(round(keep_prob * ONE))
    return 1 if threshold < 1 else (ONE - 1 if threshold > ONE - 1 else threshold)


def n_words(size):
    return (size + 63) // 64


class DropoutMask:
    """The keep decisions of one dropout draw.

    Either stored, 1 bit per element (``bits``, a uint64 array; bit ``j`` of word ``w`` is
    element ``64 * w + j`` of the flattened array, bits past the end are 0), or not stored
    (``bits is None``, ``nbytes == 0``): the decisions are then recomputed from ``(seed, step)``
    whenever they are needed. Masks with ``keep_prob`` 0 or 1 never store anything. The
    functions of fastdrop make masks; building one by hand is for tests and tools.

    Parameters
    ----------
    shape : tuple of int
        The shape of the array the mask applies to.
    threshold : int in [0, 65536]
        An element is kept when its 16-bit uniform is below it.
    scale : float
        The factor kept elements are multiplied by.
    seed, step : int
        The draw: key and counter of the Philox generator.
    offset : int, default 0
        Index of the mask's first element in the draw's stream.
    bits : ndarray of uint64, optional
        The stored decisions; None: recomputed when needed.

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
        return self.threshold / ONE

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
        """The decisions as packed uint64 words, computed now if they are not stored.

        Parameters
        ----------
        n_threads : int or None
            Threads that recompute them; None: :func:`fastdrop.get_num_threads`.

        Returns
        -------
        words : ndarray of uint64
            ``ceil(size / 64)`` words, bit ``j`` of word ``w`` for element ``64 w + j``.
        """
        if self.bits is not None:
            return self.bits
        return packed_words(self.size, self.threshold, self.seed, self.step, self.offset,
                             resolve_n_threads(n_threads))

    def to_bool(self):
        """The decisions as a numpy array.

        Returns
        -------
        keep : ndarray of bool of shape ``shape``
            True where the element is kept.
        """
        check_mask(self)
        return unpack(self.packed(), self.size).reshape(self.shape)

    def __repr__(self):
        storage = f"{self.nbytes} bytes" if self.stored else "recomputed"
        return (f"DropoutMask(shape={self.shape}, keep_prob={self.keep_prob:.6g}, "
                f"seed={self.seed}, step={self.step}, {storage})")


def check_mask(mask):
    """A mask built or edited by hand must still fit its shape: the kernels trust it."""
    if not isinstance(mask, DropoutMask):
        raise TypeError(f"mask must be a DropoutMask, got {type(mask).__name__}")
    shape = check_shape(mask.shape, "mask.shape")
    if not 0 <= mask.threshold <= ONE:
        raise ValueError(f"mask.threshold must be in [0, {ONE}], got {mask.threshold}")
    bits = mask.bits
    if bits is None:
        return
    expected = n_words(math.prod(shape))
    if not (isinstance(bits, np.ndarray) and bits.dtype == np.uint64 and bits.ndim == 1
            and bits.flags.c_contiguous):
        raise TypeError("mask.bits must be None or a C-contiguous 1-d uint64 array, got "
                        f"{type(bits).__name__} {getattr(bits, 'dtype', '')}")
    if bits.shape[0] != expected:
        raise ValueError(f"mask.bits must hold {expected} words for mask.shape {shape}, got "
                         f"{bits.shape[0]}")


def unpack(words, count):
    """The first ``count`` decisions of packed words, as bools (bit j of word i is element
    64 i + j)."""
    flat = np.unpackbits(words.astype("<u8", copy=False).view(np.uint8), count=count,
                         bitorder="little")
    return flat.view(np.bool_)


def identity(x, out):
    """``x`` itself, or copied into ``out``: a pass that changes nothing."""
    if out is None:
        return x
    y = check_out(out, x.shape, x.dtype)
    np.copyto(y, x)
    return y


def packed_words(size, threshold, seed, step, offset, n_threads):
    """Packed decisions for elements [offset, offset + size) of draw (seed, step)."""
    count = n_words(size)
    if threshold >= ONE or threshold == 0:
        words = np.full(count, np.uint64(0xFFFFFFFFFFFFFFFF if threshold else 0))
    else:
        first, shift = divmod(offset, 64)
        if shift == 0:
            words = np.empty(count, dtype=np.uint64)
            _kernels.mask_words(words, first, seed, step, threshold, n_threads)
        else:  # element offset + j lives at bit (shift + j) of the aligned words: splice them
            aligned = np.empty(count + 1, dtype=np.uint64)
            _kernels.mask_words(aligned, first, seed, step, threshold, n_threads)
            words = (aligned[:-1] >> np.uint64(shift)) | (aligned[1:] << np.uint64(64 - shift))
    if size % 64:
        words[-1] &= np.uint64((1 << (size % 64)) - 1)
    return words


def train_scale(threshold, mode):
    return ONE / threshold if (mode == "inverted" and threshold) else 1.0


def output_buffer(out, like, *reads):
    """Where a kernel writes: ``(buffer, out)``, then :func:`deliver` ``(buffer, out)``.

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


def numpy_output(out, like):
    """Where numpy writes: it handles overlapping memory itself."""
    return np.empty_like(like) if out is None else check_out(out, like.shape, like.dtype)


def deliver(buffer, out):
    if out is None:
        return buffer
    np.copyto(out, buffer)
    return out


def backward_kernel(dy, dx, mask, n_threads):
    """dx = keep ? dy * mask.scale : 0 for a checked mask of dy's shape with 0 < keep < 1."""
    if mask.bits is not None:
        _kernels.apply_bits(dy.reshape(-1), mask.bits, dx.reshape(-1), mask.scale, n_threads)
    elif mask.offset == 0:  # recompute: the forward of dy with the same draw
        _kernels.forward(dy.reshape(-1), dx.reshape(-1), EMPTY_BITS, seed=mask.seed,
                         step=mask.step, threshold=mask.threshold, scale=mask.scale,
                         bias=NO_BIAS[dy.dtype], relu=False, n_threads=n_threads)
    else:
        _kernels.apply_bits(dy.reshape(-1), mask.packed(n_threads), dx.reshape(-1), mask.scale,
                            n_threads)


def dropout_checked(x, threshold, seed, step, store_mask, n_threads):
    """(y, mask) of inverted dropout of a C-contiguous float32/float64 array, for callers that
    have checked every argument and hold 0 < threshold < 65536 (fastdrop.torch's hot path:
    no validation, no ``out``)."""
    mask = DropoutMask(x.shape, threshold, ONE / threshold, seed, step)
    y = np.empty_like(x)
    bits = np.empty(n_words(x.size), dtype=np.uint64) if store_mask else EMPTY_BITS
    _kernels.forward(x.reshape(-1), y.reshape(-1), bits, seed=seed, step=step,
                     threshold=threshold, scale=mask.scale, bias=NO_BIAS[x.dtype], relu=False,
                     n_threads=n_threads)
    if store_mask:
        mask.bits = bits
    return y, mask


def layer_seed(seed):
    """A layer's seed: the one given, checked, or (None) one from the OS entropy pool."""
    if seed is None:
        seed = np.random.SeedSequence().entropy & (2**64 - 1)
    return check_uint64(seed, "seed")


@functools.lru_cache(maxsize=1)
def standard_normal_table():
    """The 65536 normal quantiles at (k + 1/2) / 65536, scaled to variance 1. The upper half
    is the negated lower half, so the table is antisymmetric (mean 0) on every scipy, whose
    ndtri need not be."""
    from scipy.special import ndtri

    lower = ndtri((np.arange(ONE // 2, dtype=np.float64) + 0.5) / ONE)
    z = np.concatenate([lower, -lower[::-1]])
    return z / np.sqrt(np.mean(z * z))


@functools.lru_cache(maxsize=32)
def gaussian_table(p, dtype):
    """Read-only multipliers 1 + sigma * z for drop rate p, in dtype."""
    sigma = math.sqrt(p / (1.0 - p))
    table = (1.0 + sigma * standard_normal_table()).astype(dtype)
    table.flags.writeable = False
    return table


def alpha_dropout_params(keep_prob):
    """``(a, b, fill)`` of alpha dropout at keep probability ``q``: a dropped unit becomes
    ``fill = a * alpha' + b``, a kept one ``a * x + b``, with
    ``a = (q + alpha'^2 q (1 - q))^(-1/2)`` and ``b = -a alpha' (1 - q)`` (Klambauer et al.
    2017, eq. 10 with the roles of q and 1 - q as here)."""
    q = float(keep_prob)
    a = 1.0 / math.sqrt(q + _ALPHA_PRIME**2 * q * (1.0 - q))
    b = -a * _ALPHA_PRIME * (1.0 - q)
    return a, b, _ALPHA_PRIME * a + b


def alpha_into(src, dst, bits, threshold, seed, step, n_threads, first_word=0):
    """dst = alpha dropout of src at the realized keep probability threshold / 65536."""
    a, b, fill = alpha_dropout_params(threshold / ONE)
    _kernels.alpha(src.reshape(-1), dst.reshape(-1), bits, seed, step, threshold, a, b, fill,
                   n_threads, first_word=first_word)
    return a


