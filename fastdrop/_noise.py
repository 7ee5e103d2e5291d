"""The rest of the dropout family: Gaussian dropout, alpha dropout and DropConnect.

All three draw from the Philox stream of :func:`fastdrop.dropout`: element ``i`` of draw
``(seed, step)`` reads the 16-bit uniform that would decide its Bernoulli keep, so results do
not depend on the thread count or the SIMD path, and backward passes recompute the noise.

* **Gaussian dropout** (Srivastava et al. 2014, section 10; Keras ``GaussianDropout``):
  ``y = x * m`` with ``m`` of mean 1 and variance ``p / (1 - p)``, the variance of inverted
  Bernoulli dropout at drop rate ``p``. ``m = 1 + sigma * z`` where ``z`` is read from a table
  of the 65536 normal quantiles ``Phi^-1((k + 1/2) / 65536)``, rescaled so that the table's
  mean is exactly 0 and its variance exactly 1. Against N(0, 1) the table's distribution is off
  by at most :data:`GAUSSIAN_TABLE_KS` in CDF (Kolmogorov-Smirnov distance) and it has no values
  beyond ``|z| <=`` :data:`GAUSSIAN_TABLE_MAX` (a normal variate lies there with probability
  1.5e-5). The noise is never stored: the backward pass is the same kernel on ``dy``.
* **Alpha dropout** (Klambauer et al. 2017, for SELU networks): a dropped unit takes SELU's
  negative saturation ``alpha' = -lambda * alpha``, then ``y = a * v + b`` with ``a`` and
  ``b`` computed from the realized keep probability ``q`` so that inputs of mean 0 and
  variance 1 keep them. Its decisions are Bernoulli dropout's for the same draw; its backward
  is ``keep ? dy * a : 0`` (:func:`alpha_dropout_backward`).
* **DropConnect** (Wan et al. 2013): a Bernoulli mask on the weights of a linear layer instead
  of its units, scaled by ``1 / q`` (inverted, so inference uses the weights as they are).
  One mask per call, i.e. per mini-batch, shared by its rows: the product stays one GEMM; a
  mask per example (Wan et al.'s formulation) would turn it into one matrix-vector product
  per row.
"""
import math

import numpy as np

from . import _kernels
from ._dropout import dropout, dropout_backward
from ._plumbing import (EMPTY_BITS, ONE, SELU_ALPHA, SELU_LAMBDA, DropoutMask,
                        alpha_dropout_params, alpha_into, check_mask, deliver, gaussian_table,
                        identity, keep_threshold, layer_seed, n_words, output_buffer,
                        standard_normal_table)
from ._threading import resolve_n_threads
from ._validation import as_float_array, check_probability, check_shape, check_uint64

__all__ = ["GaussianNoise", "gaussian_dropout", "gaussian_dropout_backward", "alpha_dropout",
           "alpha_dropout_backward", "alpha_dropout_params", "dropconnect_linear",
           "dropconnect_linear_backward", "GaussianDropout", "AlphaDropout",
           "DropConnectLinear", "SELU_ALPHA", "SELU_LAMBDA"]


def _check_rate(p, why):
    """A drop rate in [0, 1): p = 1 has no finite rescaling for these kinds of noise."""
    p = check_probability(p, "p")
    if p >= 1.0:
        raise ValueError(f"p must be in [0, 1) here, got {p!r}: {why}")
    return p


# ---------------------------------------------------------------- Gaussian dropout


def _table_ks_distance():
    from scipy.special import ndtr

    z = standard_normal_table()
    k = np.arange(ONE)
    return float(max(np.max(np.abs((k + 1) / ONE - ndtr(z))), np.max(np.abs(k / ONE - ndtr(z)))))


GAUSSIAN_TABLE_MAX = 4.33  # max |z| of the table, rounded up (tested)
GAUSSIAN_TABLE_KS = 1.1e-5  # its Kolmogorov-Smirnov distance to N(0, 1), rounded up (tested)


class GaussianNoise:
    """The multiplicative noise of one Gaussian dropout draw: nothing stored, everything
    recomputed from ``(seed, step)``. :func:`gaussian_dropout` makes it.

    Parameters
    ----------
    shape : tuple of int
        The shape of the array the noise multiplies.
    p : float in [0, 1)
        The drop rate the noise stands for.
    seed, step : int in [0, 2**64)
        The draw.

    Attributes
    ----------
    shape : tuple of int
    p : float
        The drop rate it stands for: the noise has mean 1 and variance ``p / (1 - p)``.
    seed, step : int
        The draw.
    """

    __slots__ = ("shape", "p", "seed", "step")

    def __init__(self, shape, p, seed, step):
        p = check_probability(p, "p")
        if p >= 1.0:
            raise ValueError(f"p must be in [0, 1) for Gaussian noise (its variance is "
                             f"p / (1 - p)), got {p!r}")
        self.shape, self.p = check_shape(shape), p
        self.seed, self.step = check_uint64(seed, "seed"), check_uint64(step, "step")

    @property
    def std(self):
        return math.sqrt(self.p / (1.0 - self.p))

    def multipliers(self, dtype=np.float64, n_threads=None):
        """The noise itself.

        Parameters
        ----------
        dtype : float32 or float64, default float64
        n_threads : int or None
            None: :func:`fastdrop.get_num_threads`. Results do not depend on it.

        Returns
        -------
        m : ndarray of ``shape`` and ``dtype``
            The multipliers, of mean 1 and variance ``p / (1 - p)``.
        """
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        ones = np.ones(self.shape, dtype=dtype)
        return _apply_gaussian(ones, ones, self, resolve_n_threads(n_threads))

    def __repr__(self):
        return (f"GaussianNoise(shape={self.shape}, p={self.p:g}, std={self.std:.6g}, "
                f"seed={self.seed}, step={self.step})")


def _apply_gaussian(src, dst, noise, n_threads):
    """dst = src * noise (src and dst C-contiguous, of noise's shape and one dtype)."""
    if noise.p == 0.0:
        if dst is not src:
            np.copyto(dst, src)
        return dst
    _kernels.gaussian(src.reshape(-1), dst.reshape(-1), noise.seed, noise.step,
                      gaussian_table(noise.p, src.dtype), n_threads)
    return dst


def gaussian_dropout(x, p, *, seed, step=0, out=None, n_threads=None):
    """Gaussian dropout: ``y = x * m``, ``m`` of mean 1 and variance ``p / (1 - p)``.

    Parameters
    ----------
    x : array_like
        Converted as in :func:`fastdrop.dropout`.
    p : float in [0, 1)
        The Bernoulli drop rate whose noise variance this matches (Keras's ``rate``);
        ``p == 0`` returns ``x`` (or copies it into ``out``).
    seed, step, out, n_threads
        As in :func:`fastdrop.dropout`; ``out`` may be ``x`` itself.

    Returns
    -------
    y : ndarray
    noise : GaussianNoise
        What :func:`gaussian_dropout_backward` needs (4 numbers, no storage).
    """
    x = as_float_array(x, "x")
    p = _check_rate(p, "Gaussian noise of variance p / (1 - p) would be infinite")
    noise = GaussianNoise(x.shape, p, check_uint64(seed, "seed"), check_uint64(step, "step"))
    if p == 0.0:
        return identity(x, out), noise
    y, out = output_buffer(out, x)
    _apply_gaussian(x, y, noise, resolve_n_threads(n_threads))
    return deliver(y, out), noise


def gaussian_dropout_backward(dy, noise, *, out=None, n_threads=None):
    """Gradient of :func:`gaussian_dropout`: ``dx = dy * m``, the noise recomputed.

    Parameters
    ----------
    dy : array_like
        Gradient with respect to the forward pass's output, of the noise's shape.
    noise : GaussianNoise
        The draw :func:`gaussian_dropout` returned.
    out : ndarray, optional
        Preallocated output of dy's shape and dtype; may be ``dy`` itself.
    n_threads : int or None
        None: :func:`fastdrop.get_num_threads`. Results do not depend on it.

    Returns
    -------
    dx : ndarray
        The gradient with respect to the forward pass's input; ``out`` when given.
    """
    if not isinstance(noise, GaussianNoise):
        raise TypeError(f"noise must be a GaussianNoise, got {type(noise).__name__}")
    dy = as_float_array(dy, "dy")
    if dy.shape != noise.shape:
        raise ValueError(f"dy must have the noise's shape {noise.shape}, got {dy.shape}")
    if noise.p == 0.0:
        return identity(dy, out)
    dx, out = output_buffer(out, dy)
    _apply_gaussian(dy, dx, noise, resolve_n_threads(n_threads))
    return deliver(dx, out)


# ---------------------------------------------------------------- alpha dropout


def alpha_dropout(x, p, *, seed, step=0, out=None, n_threads=None, store_mask=True):
    """Alpha dropout (for SELU networks): ``keep ? a * x + b : a * alpha' + b``.

    Parameters
    ----------
    x : array_like
        Converted as in :func:`fastdrop.dropout`.
    p : float in [0, 1)
        Drop probability (Klambauer et al. recommend 0.05 or 0.1). ``p == 0`` returns ``x``.
    seed, step, out, n_threads, store_mask
        As in :func:`fastdrop.dropout`.

    Returns
    -------
    y : ndarray
    mask : DropoutMask
        The keep decisions, with ``scale == a``: :func:`alpha_dropout_backward` (the same
        arithmetic as :func:`fastdrop.dropout_backward`) reads or recomputes them.
    """
    x = as_float_array(x, "x")
    p = _check_rate(p, "every unit dropped leaves no signal to rescale")
    seed, step = check_uint64(seed, "seed"), check_uint64(step, "step")
    threshold = keep_threshold(1.0 - p)
    a = alpha_dropout_params(threshold / ONE)[0]
    mask = DropoutMask(x.shape, threshold, a, seed, step)
    if threshold == ONE:
        return identity(x, out), mask
    y, out = output_buffer(out, x)
    store = bool(store_mask)
    bits = np.empty(n_words(x.size), dtype=np.uint64) if store else EMPTY_BITS
    alpha_into(x, y, bits, threshold, seed, step, resolve_n_threads(n_threads))
    if store:
        mask.bits = bits
    return deliver(y, out), mask


def alpha_dropout_backward(dy, mask, *, out=None, n_threads=None):
    """Gradient of :func:`alpha_dropout`: ``dx = keep ? dy * a : 0`` (``a`` is
    ``mask.scale``); recomputes the decisions when the mask was not stored.

    Parameters
    ----------
    dy : array_like
        Gradient with respect to the forward pass's output, of the mask's shape.
    mask : DropoutMask
        The mask :func:`alpha_dropout` returned.
    out : ndarray, optional
        Preallocated output of dy's shape and dtype; may be ``dy`` itself.
    n_threads : int or None
        None: :func:`fastdrop.get_num_threads`. Results do not depend on it.

    Returns
    -------
    dx : ndarray
        The gradient with respect to the forward pass's input; ``out`` when given.
    """
    return dropout_backward(dy, mask, out=out, n_threads=n_threads)


# ---------------------------------------------------------------- DropConnect
def _check_linear(x, weight, bias):
    weight = as_float_array(weight, "weight")
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-d (out_features, in_features), got shape "
                         f"{weight.shape}")
    x = as_float_array(x, "x").astype(weight.dtype, copy=False)
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must have in_features={weight.shape[1]} on its last axis (weight "
                         f"{weight.shape}), got shape {x.shape}")
    if bias is not None:
        bias = as_float_array(bias, "bias").astype(weight.dtype, copy=False)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return x, weight, bias


def dropconnect_linear(x, weight, p, *, bias=None, seed, step=0, n_threads=None,
                       store_mask=False):
    """A linear layer with DropConnect: ``y = x @ (weight * M / q).T + bias``.

    Parameters
    ----------
    x : array_like of shape (..., in_features)
    weight : array_like of shape (out_features, in_features)
        PyTorch's ``Linear`` layout; ``x`` is converted to its dtype.
    p : float in [0, 1)
        Drop probability of each weight; kept weights are scaled by ``1 / q``. ``p == 0`` is
        the plain layer.
    bias : array_like of shape (out_features,), optional
        Never masked (as in Wan et al.'s experiments, where it is not part of W).
    seed, step, n_threads
        As in :func:`fastdrop.dropout`: one mask of weight's shape per call, shared by every
        row of ``x``.
    store_mask : bool, default False
        Keep the mask (1 bit per weight); by default the backward pass recomputes it.

    Returns
    -------
    y : ndarray of shape (..., out_features)
    mask : DropoutMask
        The weights' mask; :func:`dropconnect_linear_backward` takes it.
    """
    x, weight, bias = _check_linear(x, weight, bias)
    p = _check_rate(p, "a layer with every weight dropped has no output to rescale")
    masked, mask = dropout(weight, p, seed=seed, step=step, n_threads=n_threads,
                           store_mask=store_mask)
    y = x @ masked.T
    if bias is not None:
        y += bias
    return y, mask


def dropconnect_linear_backward(dy, x, weight, mask, *, n_threads=None):
    """Gradients of :func:`dropconnect_linear`.

    Parameters
    ----------
    dy : array_like of shape (..., out_features)
        Gradient with respect to the forward pass's output.
    x : array_like of shape (..., in_features)
        The forward pass's input.
    weight : array_like of shape (out_features, in_features)
        The weights, unmasked.
    mask : DropoutMask of weight's shape
        The mask :func:`dropconnect_linear` returned.
    n_threads : int or None
        None: :func:`fastdrop.get_num_threads`. Results do not depend on it.

    Returns
    -------
    dx : ndarray of x's shape
    dweight : ndarray of weight's shape
        Masked and scaled as the weights were.
    dbias : ndarray of shape (out_features,)
        dy summed over its rows.
    """
    x, weight, _ = _check_linear(x, weight, None)
    check_mask(mask)
    if mask.shape != weight.shape:
        raise ValueError(f"mask must have weight's shape {weight.shape}, got {mask.shape}")
    dy = as_float_array(dy, "dy").astype(weight.dtype, copy=False)
    if dy.shape != x.shape[:-1] + (weight.shape[0],):
        raise ValueError(f"dy must have shape {x.shape[:-1] + (weight.shape[0],)}, got "
                         f"{dy.shape}")
    dy2, x2 = dy.reshape(-1, weight.shape[0]), x.reshape(-1, weight.shape[1])
    masked = dropout_backward(weight, mask, n_threads=n_threads)
    dweight = dropout_backward(dy2.T @ x2, mask, n_threads=n_threads)
    return (dy2 @ masked).reshape(x.shape), dweight, dy2.sum(axis=0)


# ---------------------------------------------------------------- layers
class _NoiseLayer:
    """A layer that draws new noise on every training forward pass (step 0, 1, ...)."""

    def __init__(self, seed):
        self.seed = layer_seed(seed)
        self.step = 0
        self._draw = None

    def _next_step(self):
        step, self.step = self.step, self.step + 1
        return step

    def _last_draw(self, what):
        if self._draw is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before a training "
                               f"forward pass ({what})")
        return self._draw

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p}, seed={self.seed}, step={self.step})"


class GaussianDropout(_NoiseLayer):
    """A Gaussian dropout layer (Keras's ``GaussianDropout(rate)``): training multiplies by
    noise of mean 1 and variance ``p / (1 - p)``; inference is the identity.

    Parameters
    ----------
    p : float in [0, 1)
        The drop rate the noise stands for.
    seed : int or None
        None draws one from the OS entropy pool (``.seed`` holds it).
    """

    def __init__(self, p, *, seed=None):
        self.p = _check_rate(p, "Gaussian noise of variance p / (1 - p) would be infinite")
        super().__init__(seed)

    def forward(self, x, training=True, *, out=None, n_threads=None):
        """Training: multiply by the next step's noise; inference: the identity.

        Parameters
        ----------
        x : array_like
            The input, converted like in :func:`fastdrop.dropout`.
        training : bool, default True
            False: the test-time pass, the identity (nothing drawn, the step unchanged).
        out : ndarray, optional
            Preallocated output of x's shape and (converted) dtype.
        n_threads : int or None
            None: :func:`fastdrop.get_num_threads`. Results do not depend on it.

        Returns
        -------
        y : ndarray
        """
        if not training:
            return identity(as_float_array(x, "x"), out)
        y, self._draw = gaussian_dropout(x, self.p, seed=self.seed, step=self._next_step(),
                                         out=out, n_threads=n_threads)
        return y

    def backward(self, dy, *, out=None, n_threads=None):
        """Gradient through the noise of the last training forward pass.

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
        """
        return gaussian_dropout_backward(dy, self._last_draw("no noise drawn yet"), out=out,
                                         n_threads=n_threads)


class AlphaDropout(_NoiseLayer):
    """An alpha dropout layer (PyTorch's and Keras's ``AlphaDropout``): for SELU networks;
    inference is the identity.

    Parameters
    ----------
    p : float in [0, 1)
        Drop probability.
    seed : int or None
        None draws one from the OS entropy pool (``.seed`` holds it).
    store_mask : bool, default True
        False recomputes the mask in :meth:`backward` instead of keeping 1 bit per element.
    """

    def __init__(self, p, *, seed=None, store_mask=True):
        self.p = _check_rate(p, "every unit dropped leaves no signal to rescale")
        self.store_mask = bool(store_mask)
        super().__init__(seed)

    def forward(self, x, training=True, *, out=None, n_threads=None):
        """Training: alpha dropout with the next step's mask; inference: the identity.

        Parameters
        ----------
        x : array_like
            The input, converted like in :func:`fastdrop.dropout`.
        training : bool, default True
            False: the test-time pass, the identity (nothing drawn, the step unchanged).
        out : ndarray, optional
            Preallocated output of x's shape and (converted) dtype.
        n_threads : int or None
            None: :func:`fastdrop.get_num_threads`. Results do not depend on it.

        Returns
        -------
        y : ndarray
        """
        if not training:
            return identity(as_float_array(x, "x"), out)
        y, self._draw = alpha_dropout(x, self.p, seed=self.seed, step=self._next_step(),
                                      out=out, n_threads=n_threads, store_mask=self.store_mask)
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
        """
        return alpha_dropout_backward(dy, self._last_draw("no mask drawn yet"), out=out,
                                      n_threads=n_threads)


class DropConnectLinear(_NoiseLayer):
    """A linear layer whose weights are dropped, one mask per training forward pass.

    :meth:`backward` returns dx and leaves ``grad_weight`` and ``grad_bias``. Inference uses
    the weights unmasked (inverted scaling: their expectation).

    Parameters
    ----------
    weight : array_like of shape (out_features, in_features)
        Held as given, converted to a float array.
    bias : array_like of shape (out_features,), optional
    p : float in [0, 1), default 0.5
        Drop probability of each weight.
    seed : int or None
        None draws one from the OS entropy pool (``.seed`` holds it).
    store_mask : bool, default False
        True keeps the mask (1 bit per weight) instead of recomputing it in :meth:`backward`.
    """

    def __init__(self, weight, bias=None, p=0.5, *, seed=None, store_mask=False):
        _, self.weight, self.bias = _check_linear(np.zeros(np.shape(weight)[-1:]), weight, bias)
        self.p = _check_rate(p, "a layer with every weight dropped has no output to rescale")
        self.store_mask = bool(store_mask)
        self.grad_weight = self.grad_bias = None
        super().__init__(seed)

    def forward(self, x, training=True, *, n_threads=None):
        """Training: ``x @ (weight * mask).T + bias`` with the next step's mask; inference:
        the unmasked weights.

        Parameters
        ----------
        x : array_like of shape (..., in_features)
        training : bool, default True
        n_threads : int or None
            None: :func:`fastdrop.get_num_threads`. Results do not depend on it.

        Returns
        -------
        y : ndarray of shape (..., out_features)
        """
        if not training:
            x, _, _ = _check_linear(x, self.weight, None)
            y = x @ self.weight.T
            return y + self.bias if self.bias is not None else y
        y, mask = dropconnect_linear(x, self.weight, self.p, bias=self.bias, seed=self.seed,
                                     step=self._next_step(), n_threads=n_threads,
                                     store_mask=self.store_mask)
        self._draw = (np.asarray(x), mask)
        return y

    def backward(self, dy, *, n_threads=None):
        """Gradient through the last training forward pass; sets ``grad_weight`` and
        ``grad_bias``.

        Parameters
        ----------
        dy : array_like of shape (..., out_features)
        n_threads : int or None
            None: :func:`fastdrop.get_num_threads`. Results do not depend on it.

        Returns
        -------
        dx : ndarray of the input's shape
        """
        x, mask = self._last_draw("no mask drawn yet")
        dx, self.grad_weight, grad_bias = dropconnect_linear_backward(dy, x, self.weight, mask,
                                                                      n_threads=n_threads)
        self.grad_bias = grad_bias if self.bias is not None else None
        return dx
