"""Dropout sites: the noise at one layer input of the MLP, one class per kind.

Site ``l`` is the input of layer ``l``: site 0 the network input, site ``l`` the output of
hidden layer ``l``. Every site answers the same few calls, and the engine
(:class:`fastdrop.network.MLP`) holds one per input and never asks which kind it is:

* ``forward(z, out, bias, relu, step, n_threads)``: the training pass on a layer's output
  ``z`` (``bias`` and ``relu`` are what the activation left to fuse); returns what the next
  layer reads: ``z`` itself, or ``out``, the site's own buffer (``buffer_size``).
* ``backward(grad, out, h, step, activation, grad_bias, n_threads)``: the gradient at the
  site's output becomes the gradient at the activation's input, in place, with its column
  sums (the bias gradient) in ``grad_bias``; ``out`` is what ``forward`` returned, ``h`` the
  activation's output under it.
* ``predict(src, dst, bias, relu, first_word, mc_step, n_threads)``: the inference pass
  (weight scaling), or with ``mc_step`` a Monte-Carlo draw.
* ``kept(width, step)``: the kept units of one training batch in batch mode (unit masks
  only), and ``train_scale``, the factor on kept units at train time.

:class:`WeightMask` is the same idea for DropConnect: the noise on a layer's weights.
Adding a kind is one class here (plus its kernels) and a line in :data:`SITE_KINDS`.
"""
import numpy as np

from . import _kernels
from ._plumbing import (EMPTY_BITS, NO_BIAS, ONE, alpha_dropout_params, alpha_into,
                        gaussian_table, keep_threshold, packed_words, train_scale, unpack)

__all__ = ["SITE_KINDS", "make_site", "make_weight_noise"]

MC_STEP_BASE = 2**63  # Monte-Carlo prediction draws live far from the training steps
DROPCONNECT_STEP_BASE = 2**62  # and DropConnect's weight masks from the units' masks


def apply_mask(src, dst, *, seed, step, threshold, scale, bias, relu, n_threads, first_word=0):
    """dst = keep ? relu(src (+ bias)) * scale : 0, the mask of draw (seed, step) recomputed;
    ``threshold`` ONE keeps everything and draws nothing (bias, ReLU and scale only)."""
    _kernels.forward(src.reshape(-1), dst.reshape(-1), EMPTY_BITS, seed=seed, step=step,
                     threshold=threshold, scale=scale,
                     bias=NO_BIAS[src.dtype] if bias is None else bias, relu=relu,
                     n_threads=n_threads, first_word=first_word)
    return dst


def scale_bias_relu(src, dst, scale, bias, relu, n_threads):
    """dst = relu(src (+ bias)) * scale: the dropout kernel's pass with nothing dropped."""
    return apply_mask(src, dst, seed=0, step=0, threshold=ONE, scale=scale, bias=bias,
                      relu=relu, n_threads=n_threads)


def _fuse(src, dst, scale, bias, relu, n_threads):
    """What the activation left to fuse (bias, ReLU) and a scale, skipped when it is none."""
    if bias is not None or relu or scale != 1.0:
        scale_bias_relu(src, dst, scale, bias, relu, n_threads)
    return dst


class NoDropout:
    """A site with rate 0: nothing drawn; the activation's fused bias and ReLU only."""

    rate, threshold = 0.0, ONE
    train_scale = test_scale = 1.0
    drops = False

    def __init__(self, seed, rate=0.0, scale_mode="inverted", dtype=np.float32):
        self.seed = seed

    def buffer_size(self, rows, width):
        return 0  # the pass works in place

    def forward(self, z, out, bias, relu, step, n_threads):
        return _fuse(z, z, 1.0, bias, relu, n_threads)

    def backward(self, grad, out, h, step, activation, grad_bias, n_threads):
        return activation.backward(grad, out, self.train_scale, grad_bias, n_threads)

    def forward_kept(self, z, bias, relu, n_threads):
        """Batch mode's training pass on the kept units: what the activation left to fuse,
        and the training scale."""
        return _fuse(z, z, self.train_scale, bias, relu, n_threads)

    def backward_kept(self, grad, out, activation, grad_bias, n_threads):
        """Batch mode's backward on the kept units (their submatrix holds no dropped one)."""
        return activation.backward(grad, out, self.train_scale, grad_bias, n_threads)

    def predict(self, src, dst, bias, relu, first_word, mc_step, n_threads):
        return _fuse(src, dst, self.test_scale, bias, relu, n_threads)

    def changes_input(self, mc_step):
        """Whether a prediction pass at the network input writes anything."""
        return False

    def kept(self, width, step):
        return np.arange(width, dtype=np.int64)

    def __repr__(self):
        return f"{type(self).__name__}(rate={self.rate:.4g})"


class BernoulliDropout(NoDropout):
    """Bernoulli masks (Srivastava et al. 2014), fused with bias and ReLU; inverted (kept units
    scaled by 1 / keep at train time) or classic (scaled by keep at prediction)."""

    drops = True
    unit_mask, keeps_mean = True, False

    def __init__(self, seed, rate, scale_mode="inverted", dtype=np.float32):
        self.seed, self.rate = seed, rate
        self.threshold = keep_threshold(1.0 - rate)
        self.train_scale = train_scale(self.threshold, scale_mode)
        self.test_scale = self.threshold / ONE if scale_mode == "classic" else 1.0

    def _mask(self, src, dst, step, bias, relu, n_threads, scale=None, first_word=0):
        return apply_mask(src, dst, seed=self.seed, step=step, threshold=self.threshold,
                          scale=self.train_scale if scale is None else scale, bias=bias,
                          relu=relu, n_threads=n_threads, first_word=first_word)

    def forward(self, z, out, bias, relu, step, n_threads):
        return self._mask(z, z, step, bias, relu, n_threads)

    def backward(self, grad, out, h, step, activation, grad_bias, n_threads):
        if not activation.gate_in_output:  # a dropped unit's gradient is 0: the mask again
            self._mask(grad, grad, step, None, False, n_threads, scale=1.0)
        return activation.backward(grad, out, self.train_scale, grad_bias, n_threads)

    def predict(self, src, dst, bias, relu, first_word, mc_step, n_threads):
        if mc_step is None:
            return _fuse(src, dst, self.test_scale, bias, relu, n_threads)
        return self._mask(src, dst, MC_STEP_BASE + mc_step, bias, relu, n_threads,
                          first_word=first_word)

    def changes_input(self, mc_step):
        return mc_step is not None or self.test_scale != 1.0

    def kept(self, width, step):
        words = packed_words(width, self.threshold, self.seed, step, 0, 1)
        return np.flatnonzero(unpack(words, width)).astype(np.int64)


class _NoiseAfterActivation(NoDropout):
    """Noise that is not a unit mask (Gaussian, alpha): a pass of its own after the
    activation, into a buffer of its own, so the backward pass still has the activation's
    output for its derivative; the noise is recomputed from (seed, step). Inference is the
    identity; a Monte-Carlo pass draws the noise."""

    drops = True
    unit_mask, keeps_mean = False, True  # no batch mode; no classic scaling

    def __init__(self, seed, rate, scale_mode="inverted", dtype=np.float32):
        self.seed, self.rate, self.dtype = seed, rate, np.dtype(dtype)
        self.threshold = keep_threshold(1.0 - rate)

    def buffer_size(self, rows, width):
        return rows * width

    def forward(self, z, out, bias, relu, step, n_threads):
        _fuse(z, z, 1.0, bias, relu, n_threads)
        out = z if out is None else out  # the network input: in place on the batch copy
        self.noise(z, out, step, n_threads)
        return out

    def backward(self, grad, out, h, step, activation, grad_bias, n_threads):
        self.noise_backward(grad, step, n_threads)
        return activation.backward(grad, h, 1.0, grad_bias, n_threads)

    def predict(self, src, dst, bias, relu, first_word, mc_step, n_threads):
        _fuse(src, dst, 1.0, bias, relu, n_threads)
        if mc_step is not None:
            self.noise(dst, dst, MC_STEP_BASE + mc_step, n_threads, first_word)
        return dst

    def changes_input(self, mc_step):
        return mc_step is not None

    def kept(self, width, step):
        raise ValueError(f"{type(self).__name__} is not a unit mask: no batch mode")


class GaussianDropout(_NoiseAfterActivation):
    """Multiplicative Gaussian noise of mean 1 and variance p / (1 - p) (Srivastava et al.
    2014, section 10), from a 65536-entry inverse-CDF table."""

    def noise(self, src, dst, step, n_threads, first_word=0):
        _kernels.gaussian(src.reshape(-1), dst.reshape(-1), self.seed, step,
                          gaussian_table(self.rate, self.dtype), n_threads,
                          first_word=first_word)

    def noise_backward(self, grad, step, n_threads):
        self.noise(grad, grad, step, n_threads)  # d(x * m)/dx = m: the same draw


class AlphaDropout(_NoiseAfterActivation):
    """Alpha dropout (Klambauer et al. 2017): keeps a SELU network's mean and variance."""

    def noise(self, src, dst, step, n_threads, first_word=0):
        alpha_into(src, dst, EMPTY_BITS, self.threshold, self.seed, step, n_threads,
                   first_word)

    def noise_backward(self, grad, step, n_threads):  # keep ? grad * a : 0
        a = alpha_dropout_params(self.threshold / ONE)[0]
        apply_mask(grad, grad, seed=self.seed, step=step, threshold=self.threshold, scale=a,
                   bias=None, relu=False, n_threads=n_threads)


# dropout_kind -> the site class of a rate > 0 (rate 0 is always NoDropout)
SITE_KINDS = {"bernoulli": BernoulliDropout, "gaussian": GaussianDropout,
              "alpha": AlphaDropout}


def make_site(kind, rate, seed, scale_mode, dtype):
    """The site of ``kind`` at drop rate ``rate``: NoDropout where nothing is dropped."""
    if keep_threshold(1.0 - rate) >= ONE:
        return NoDropout(seed)
    return SITE_KINDS[kind](seed, rate, scale_mode, dtype)


class NoWeightNoise:
    """A layer whose weights are used as they are."""

    drops = False

    def buffer(self, weights):
        return None

    def training_weights(self, weights, scratch, step, n_threads):
        return weights

    def mask_gradient(self, grad, step, n_threads):
        return grad

    def predict_weights(self, weights, mc_step, n_threads):
        return weights


class WeightMask(NoWeightNoise):
    """DropConnect (Wan et al. 2013): a fresh mask of a layer's weights per training batch
    (draw ``2**62 + step`` of the layer's input site's seed), shared by the batch's rows so
    the product stays one GEMM; kept weights are scaled by 1 / keep (inverted), so prediction
    uses the weights as they are. The bias is never dropped."""

    drops = True

    def __init__(self, site, rate):
        self.site = site  # the seed is the input site's: a warm start that keeps it keeps this
        self.threshold = keep_threshold(1.0 - rate)

    def _apply(self, src, dst, step, n_threads):
        return apply_mask(src, dst, seed=self.site.seed, step=step, threshold=self.threshold,
                          scale=ONE / self.threshold, bias=None, relu=False,
                          n_threads=n_threads)

    def buffer(self, weights):
        return np.empty_like(weights)

    def training_weights(self, weights, scratch, step, n_threads):
        return self._apply(weights, scratch, DROPCONNECT_STEP_BASE + step, n_threads)

    def mask_gradient(self, grad, step, n_threads):
        return self._apply(grad, grad, DROPCONNECT_STEP_BASE + step, n_threads)

    def predict_weights(self, weights, mc_step, n_threads):
        """As they are, or masked once for a whole Monte-Carlo pass."""
        if mc_step is None:
            return weights
        step = MC_STEP_BASE + DROPCONNECT_STEP_BASE + mc_step
        return self._apply(weights, np.empty_like(weights), step, n_threads)


def make_weight_noise(rate, input_site):
    """DropConnect on a layer at ``rate`` (its mask seeded by ``input_site``), or none."""
    if keep_threshold(1.0 - rate) >= ONE:
        return NoWeightNoise()
    return WeightMask(input_site, rate)
