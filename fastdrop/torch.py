"""fastdrop for PyTorch: a drop-in for ``torch.nn.functional.dropout`` and ``torch.nn.Dropout``.

One registered operator, ``fastdrop::dropout`` (``torch.library.custom_op``), with its autograd
formula and a fake implementation, so autograd and ``torch.compile`` see one op. The forward
runs fastdrop's fused kernel on the tensor's own memory (no copy for contiguous CPU float32 /
float64 tensors) and keeps the mask as 1 bit per element; the backward reads those bits.

Seeds: with ``seed=None`` each call draws its seed from torch's default CPU generator, so
``torch.manual_seed(s)`` makes a whole training run reproducible; unlike torch's own dropout
the masks are the same for any ``torch.set_num_threads`` (counter-based Philox draws).

Importing this module needs torch (``pip install 'fastdrop[torch]'`` or any CPU torch).
"""
import numpy as np
import torch
from torch import nn

from . import _kernels
from ._dropout import _train_scale, bernoulli_mask, dropout as _np_dropout, keep_threshold

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "Dropout", "Dropout1d",
           "Dropout2d", "Dropout3d", "replace_dropout"]

_DTYPES = (torch.float32, torch.float64)
_SEED_HIGH = 2**63 - 1


def _forward(x, p, seed, step):
    """(y, mask) of inverted dropout on a contiguous CPU float tensor, on its memory."""
    y = torch.empty_like(x)
    _, mask = _np_dropout(x.detach().numpy(), p, seed=seed, step=step, out=y.numpy(),
                          n_threads=torch.get_num_threads())
    return y, mask


def _backward_from_bits(grad, bits, scale):
    """grad * scale where the packed uint64 ``bits`` kept the element, else +0."""
    grad = grad.contiguous()
    dx = torch.empty_like(grad)
    _kernels.apply_bits(grad.detach().numpy().reshape(-1), bits, dx.numpy().reshape(-1),
                        scale, torch.get_num_threads())
    return dx


@torch.library.custom_op("fastdrop::dropout", mutates_args=())
def _dropout_op(x: torch.Tensor, p: float, seed: int, step: int) -> tuple[torch.Tensor,
                                                                           torch.Tensor]:
    """(y, bits): inverted dropout of a contiguous CPU float tensor, and its packed mask as
    int64 words (bit j of word i keeps element 64 i + j)."""
    y, mask = _forward(x, p, seed, step)
    return y, torch.from_numpy(mask.packed().view(np.int64))  # p = 0 or 1: computed words


@_dropout_op.register_fake
def _(x, p, seed, step):
    return torch.empty_like(x), x.new_empty(((x.numel() + 63) // 64,), dtype=torch.int64)


@torch.library.custom_op("fastdrop::dropout_backward", mutates_args=())
def _dropout_backward_op(grad: torch.Tensor, bits: torch.Tensor, scale: float) -> torch.Tensor:
    """grad * scale where the mask kept the element, else +0."""
    return _backward_from_bits(grad, bits.numpy().view(np.uint64), scale)


@_dropout_backward_op.register_fake
def _(grad, bits, scale):
    return torch.empty_like(grad)


def _setup_context(ctx, inputs, output):
    _, p, _, _ = inputs
    ctx.save_for_backward(output[1])
    ctx.scale = _train_scale(keep_threshold(1.0 - p), "inverted")


def _backward(ctx, grad_y, _grad_bits):
    (bits,) = ctx.saved_tensors
    return _dropout_backward_op(grad_y, bits, ctx.scale), None, None, None


_dropout_op.register_autograd(_backward, setup_context=_setup_context)


class _EagerDropout(torch.autograd.Function):
    """The same computation for eager mode, where a custom op's dispatch costs more than the
    kernel (docs/bench/README.md); under torch.compile the registered op is used instead.
    Same bits either way."""

    @staticmethod
    def forward(ctx, x, p, seed, step):
        y, mask = _forward(x, p, seed, step)
        ctx.bits, ctx.scale = mask.packed(), mask.scale
        return y

    @staticmethod
    def backward(ctx, grad_y):
        return _backward_from_bits(grad_y, ctx.bits, ctx.scale), None, None, None


def _check_input(input, p):
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if input.dtype not in _DTYPES:
        raise TypeError(f"fastdrop.torch.dropout takes float32 or float64 tensors, got "
                        f"{input.dtype}; convert with input.float() (bfloat16 and float16 "
                        "have no fastdrop kernel yet)")
    if input.device.type != "cpu":
        raise ValueError(f"fastdrop.torch.dropout runs on CPU tensors, got device "
                         f"{input.device}; use torch.nn.functional.dropout there")
    if isinstance(p, bool) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _fresh_seed():
    """A seed from torch's default CPU generator (so torch.manual_seed governs it)."""
    return int(torch.randint(0, _SEED_HIGH, (1,), dtype=torch.int64).item())


def dropout(input, p=0.5, training=True, inplace=False, *, seed=None, step=0):
    """Like ``torch.nn.functional.dropout``: zeroes each element with probability ``p`` and
    scales the others by ``1 / (1 - p)`` (by the realized keep probability, a multiple of
    2^-16), in training; returns ``input`` unchanged otherwise.

    ``seed`` (with ``step``) fixes the mask; ``None`` draws the seed from torch's default
    generator. ``inplace=True`` writes the result into ``input``'s storage as torch's does,
    where autograd allows it."""
    _check_input(input, p)
    if not training or p == 0:
        return input
    if p == 1:
        return input.mul_(0) if inplace else input * 0
    seed = _fresh_seed() if seed is None else int(seed)
    x = input.contiguous()
    if torch.compiler.is_compiling():
        y, _ = _dropout_op(x, float(p), seed, int(step))
    else:
        y = _EagerDropout.apply(x, float(p), seed, int(step))
    return input.copy_(y) if inplace else y


def _channel_dropout(input, p, training, inplace, seed, step, nd):
    """One decision per (sample, channel), broadcast over the ``nd`` spatial dimensions: the
    mask costs a bit per channel, not per element. (Not a registered op yet: under
    torch.compile it breaks the graph.)"""
    _check_input(input, p)
    if input.dim() not in (nd + 1, nd + 2):
        raise ValueError(f"dropout{nd}d takes a {nd + 1}-D (C, ...) or {nd + 2}-D (N, C, ...) "
                         f"input, got a {input.dim()}-D one of shape {tuple(input.shape)}")
    if not training or p == 0:
        return input
    if p == 1:
        return input.mul_(0) if inplace else input * 0
    seed = _fresh_seed() if seed is None else int(seed)
    channels = tuple(input.shape[:input.dim() - nd])
    mask = bernoulli_mask(channels, 1.0 - p, seed=seed, step=int(step),
                          n_threads=torch.get_num_threads())
    scale = _train_scale(mask.threshold, "inverted")
    keep = torch.from_numpy(mask.to_bool()).to(input.dtype) * scale
    keep = keep.reshape(*channels, *([1] * nd))
    return input.mul_(keep) if inplace else input * keep


def dropout1d(input, p=0.5, training=True, inplace=False, *, seed=None, step=0):
    """Like ``torch.nn.functional.dropout1d``: whole channels of (N, C, L) or (C, L)."""
    return _channel_dropout(input, p, training, inplace, seed, step, 1)


def dropout2d(input, p=0.5, training=True, inplace=False, *, seed=None, step=0):
    """Like ``torch.nn.functional.dropout2d``: whole channels of (N, C, H, W) or (C, H, W)."""
    return _channel_dropout(input, p, training, inplace, seed, step, 2)


def dropout3d(input, p=0.5, training=True, inplace=False, *, seed=None, step=0):
    """Like ``torch.nn.functional.dropout3d``: whole channels of (N, C, D, H, W) or
    (C, D, H, W)."""
    return _channel_dropout(input, p, training, inplace, seed, step, 3)


class Dropout(nn.Module):
    """Like ``torch.nn.Dropout``: :func:`dropout` in training mode, the identity in eval mode.

    With an integer ``seed`` the module draws from (seed, step) and advances ``step`` on each
    training call; ``step`` is a buffer, so it survives ``state_dict`` and a resumed run
    draws the masks it would have drawn. With ``seed=None`` each call takes a fresh seed
    from torch's default generator."""

    def __init__(self, p=0.5, inplace=False, *, seed=None):
        super().__init__()
        if isinstance(p, bool) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace, self.seed = float(p), inplace, seed
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    _function = staticmethod(dropout)

    def forward(self, input):
        if not self.training or self.seed is None:
            return self._function(input, self.p, self.training, self.inplace)
        step = int(self.step)
        self.step += 1
        return self._function(input, self.p, True, self.inplace, seed=self.seed, step=step)

    def extra_repr(self):
        seed = "" if self.seed is None else f", seed={self.seed}"
        return f"p={self.p}, inplace={self.inplace}{seed}"


class Dropout1d(Dropout):
    """Like ``torch.nn.Dropout1d`` (one decision per channel); seeds as :class:`Dropout`."""
    _function = staticmethod(dropout1d)


class Dropout2d(Dropout):
    """Like ``torch.nn.Dropout2d`` (one decision per channel); seeds as :class:`Dropout`."""
    _function = staticmethod(dropout2d)


class Dropout3d(Dropout):
    """Like ``torch.nn.Dropout3d`` (one decision per channel); seeds as :class:`Dropout`."""
    _function = staticmethod(dropout3d)


_REPLACEMENTS = {nn.Dropout: Dropout, nn.Dropout1d: Dropout1d, nn.Dropout2d: Dropout2d,
                 nn.Dropout3d: Dropout3d}


def replace_dropout(module):
    """Swap every ``torch.nn.Dropout`` (and ``Dropout1d/2d/3d``) in ``module``, itself included
    if it is one, for fastdrop's with the same ``p`` and ``inplace``; returns the module."""
    if type(module) in _REPLACEMENTS:
        return _REPLACEMENTS[type(module)](module.p, module.inplace)
    for name, child in module.named_children():
        setattr(module, name, replace_dropout(child))
    return module
