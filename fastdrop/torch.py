"""fastdrop for PyTorch: a drop-in for ``torch.nn.functional.dropout`` and ``torch.nn.Dropout``.

One registered operator, ``fastdrop::dropout`` (``torch.library.custom_op``), with its autograd
formula and a fake implementation, so autograd, ``torch.compile`` and ``torch.jit.trace`` see
one op (eager calls take a cheaper ``autograd.Function`` with the same bits). The forward runs
fastdrop's fused kernel on the tensor's own memory (no copy for contiguous CPU float32 / float64
tensors) and keeps the mask as 1 bit per decision; the backward reads those bits, or recomputes
them with ``store_mask=False``.

Seeds: with ``seed=None`` each call draws its seed from torch's default CPU generator, so
``torch.manual_seed(s)`` makes a whole training run reproducible; unlike torch's own dropout
the masks are the same for any ``torch.set_num_threads`` (counter-based Philox draws).

Importing this module needs torch (``pip install 'fastdrop[torch]'`` or any CPU torch).
"""
import numpy as np
import torch
from torch import nn

from ._dropout import (_ONE, DropoutMask, _backward_kernel, _check_mask, _dropout_checked,
                       _train_scale, keep_threshold)
from ._dropout import dropout as _np_dropout, dropout_backward as _np_dropout_backward
from ._validation import check_uint64

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "Dropout", "Dropout1d",
           "Dropout2d", "Dropout3d", "replace_dropout"]

_KERNEL_DTYPES = (torch.float32, torch.float64)
_CONVERTED_DTYPES = (torch.bfloat16, torch.float16)  # through float32 and back
_SEED_HIGH = 2**63 - 1


def _threads(n_threads):
    """None (eager) or -1 (the op's argument): torch's thread count when the kernel runs."""
    return torch.get_num_threads() if n_threads in (None, -1) else n_threads


def _forward(x, p, seed, step, noise, store_mask, n_threads):
    """(y, mask) of inverted dropout on a contiguous CPU float tensor: the kernel reads the
    tensor's memory and writes a fresh array that becomes the result tensor (no copies).
    A plain mask at 0 < p < 1 skips the numpy API's checks: they were made here."""
    threshold = keep_threshold(1.0 - p)
    if noise or threshold in (0, _ONE):
        y, mask = _np_dropout(x.detach().numpy(), p, seed=seed, step=step,
                              n_threads=_threads(n_threads), store_mask=store_mask,
                              noise_shape=noise or None)
    else:
        y, mask = _dropout_checked(x.detach().numpy(), threshold, check_uint64(seed, "seed"),
                                   check_uint64(step, "step"), store_mask, _threads(n_threads))
    return torch.from_numpy(y), mask


def _backward(grad, mask, n_threads):
    """grad * scale where the mask kept the element (broadcast from a noise shape), else +0."""
    dy = grad.detach().contiguous().numpy()
    if mask.shape != dy.shape or mask.threshold in (0, _ONE):
        return torch.from_numpy(_np_dropout_backward(dy, mask, n_threads=_threads(n_threads)))
    dx = np.empty_like(dy)
    _backward_kernel(dy, dx, mask, _threads(n_threads))
    return torch.from_numpy(dx)


def _mask(shape, p, seed, step, bits):
    """The DropoutMask of a draw, from the op's arguments (bits: int64 words, or empty)."""
    threshold = keep_threshold(1.0 - p)
    words = bits.numpy().view(np.uint64) if bits.numel() else None
    return DropoutMask(shape, threshold, _train_scale(threshold, "inverted"), seed, step,
                       bits=words)


def _as_uint64(t):
    return int(t) & 0xFFFFFFFFFFFFFFFF


def _n_words(x, noise, store_mask):
    return (int(np.prod(noise or x.shape)) + 63) // 64 if store_mask else 0


@torch.library.custom_op("fastdrop::dropout", mutates_args=())
def _dropout_op(x: torch.Tensor, p: float, seed: torch.Tensor, step: torch.Tensor,
                noise_shape: list[int], store_mask: bool, n_threads: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, bits): inverted dropout of a contiguous CPU float tensor, and its packed mask as
    int64 words (bit j of word i keeps element 64 i + j of the noise shape, or of x when
    ``noise_shape`` is empty), or no words when ``store_mask`` is false. ``seed`` and ``step``
    are int64 scalar tensors, so a traced or compiled graph draws a new mask on each run."""
    y, mask = _forward(x, p, _as_uint64(seed), _as_uint64(step), noise_shape, store_mask,
                       n_threads)
    if p == 0:  # numpy hands back x itself; an op's output must not alias its input
        y = y.clone()
    words = mask.packed() if store_mask else np.empty(0, np.uint64)
    return y, torch.from_numpy(words.view(np.int64))


@_dropout_op.register_fake
def _(x, p, seed, step, noise_shape, store_mask, n_threads):
    return torch.empty_like(x), x.new_empty((_n_words(x, noise_shape, store_mask),),
                                            dtype=torch.int64)


@torch.library.custom_op("fastdrop::dropout_backward", mutates_args=())
def _dropout_backward_op(grad: torch.Tensor, bits: torch.Tensor, p: float, seed: torch.Tensor,
                         step: torch.Tensor, noise_shape: list[int], n_threads: int
                         ) -> torch.Tensor:
    """grad * scale where the mask kept the element, else +0; the mask is read from ``bits``,
    or recomputed from (seed, step) when ``bits`` is empty."""
    mask = _mask(tuple(noise_shape) or tuple(grad.shape), p, _as_uint64(seed), _as_uint64(step),
                 bits)
    _check_mask(mask)  # the op may be called with any bits: the kernels trust their mask
    return _backward(grad, mask, n_threads)


@_dropout_backward_op.register_fake
def _(grad, bits, p, seed, step, noise_shape, n_threads):
    return torch.empty_like(grad)


def _setup_context(ctx, inputs, output):
    _, ctx.p, seed, step, ctx.noise_shape, _, ctx.n_threads = inputs
    ctx.save_for_backward(output[1], seed, step)


def _op_backward(ctx, grad_y, _grad_bits):
    bits, seed, step = ctx.saved_tensors
    dx = _dropout_backward_op(grad_y, bits, ctx.p, seed, step, ctx.noise_shape, ctx.n_threads)
    return dx, None, None, None, None, None, None


_dropout_op.register_autograd(_op_backward, setup_context=_setup_context)


class _EagerDropout(torch.autograd.Function):
    """The same computation for eager mode, where a custom op's dispatch costs more than the
    kernel (docs/bench/README.md); traced or compiled, the registered op is used instead.
    Same bits either way."""

    @staticmethod
    def forward(ctx, x, p, seed, step, noise, store_mask, n_threads):
        y, ctx.mask = _forward(x, p, seed, step, noise, store_mask, n_threads)
        ctx.n_threads = n_threads
        return y

    @staticmethod
    def backward(ctx, grad_y):
        return _backward(grad_y, ctx.mask, ctx.n_threads), None, None, None, None, None, None


def _check_input(input, p):
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor, got {type(input).__name__}")
    if input.dtype not in _KERNEL_DTYPES + _CONVERTED_DTYPES:
        raise TypeError(f"fastdrop.torch.dropout takes float32, float64, bfloat16 or float16 "
                        f"tensors, got {input.dtype}")
    if input.device.type != "cpu":
        raise ValueError(f"fastdrop.torch.dropout runs on CPU tensors, got device "
                         f"{input.device}; use torch.nn.functional.dropout there")
    if input.layout != torch.strided:
        raise ValueError(f"fastdrop.torch.dropout takes dense (strided) tensors, got layout "
                         f"{input.layout}; convert with input.to_dense()")
    if isinstance(p, bool) or not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _graph_mode():
    """Traced or compiled: the registered op, with seed and step as tensors in the graph."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


def _fresh_seed():
    """A seed from torch's default CPU generator (so torch.manual_seed governs it)."""
    return torch.randint(0, _SEED_HIGH, (), dtype=torch.int64)


def _as_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    value = int(value)  # uint64 seeds wrap to int64 and back in _as_uint64
    return torch.full((), value - 2**64 if value >= 2**63 else value, dtype=torch.int64)


def _dropout(input, p, training, inplace, seed, step, noise, store_mask, n_threads):
    """The body of every fastdrop.torch dropout: checks, edge rates, dtype conversion, then
    the eager autograd.Function or the registered op."""
    _check_input(input, p)
    if not training or p == 0:
        return input
    if input.dtype in _CONVERTED_DTYPES:
        y = _dropout(input.float(), p, True, False, seed, step, noise, store_mask, n_threads)
        return input.copy_(y) if inplace else y.to(input.dtype)
    x = input.contiguous()
    if _graph_mode():
        seed = _fresh_seed() if seed is None else _as_tensor(seed)
        y, _ = _dropout_op(x, float(p), seed, _as_tensor(step), list(noise), bool(store_mask),
                           -1 if n_threads is None else n_threads)
    else:
        seed = int(_fresh_seed()) if seed is None else int(seed)
        y = _EagerDropout.apply(x, float(p), seed, int(step), tuple(noise), bool(store_mask),
                                n_threads)
    return input.copy_(y) if inplace else y


def dropout(input, p=0.5, training=True, inplace=False, *, seed=None, step=0, noise_shape=None,
            store_mask=True, n_threads=None):
    """Like ``torch.nn.functional.dropout``: zeroes each element with probability ``p`` and
    scales the others by ``1 / (1 - p)`` (by the realized keep probability, a multiple of
    2^-16), in training; returns ``input`` unchanged otherwise.

    ``seed`` (with ``step``) fixes the mask; ``None`` draws the seed from torch's default
    generator. ``inplace=True`` writes the result into ``input``'s storage as torch's does,
    where autograd allows it. Beyond torch's arguments:

    - ``noise_shape``: one entry per dimension, 1 to share a decision along it (Keras's
      name; :func:`dropout2d` is ``noise_shape=(N, C, 1, 1)``);
    - ``store_mask``: keep the mask for the backward pass, 1 bit per decision (default), or
      recompute it there from (seed, step);
    - ``n_threads``: threads of the kernel, ``torch.get_num_threads()`` by default; the
      result does not depend on it.

    float32 and float64 run on the tensor's memory; bfloat16 and float16 go through float32
    (two conversions more) and round the result back."""
    noise = () if noise_shape is None else tuple(
        input.shape[i] if e is None else int(e) for i, e in enumerate(noise_shape))
    return _dropout(input, p, training, inplace, seed, step, noise, store_mask, n_threads)


def _channel_dropout(input, p, training, inplace, seed, step, store_mask, n_threads, nd):
    """One decision per (sample, channel), broadcast over the ``nd`` spatial dimensions: the
    mask costs a bit per channel, not per element."""
    _check_input(input, p)
    if input.dim() not in (nd + 1, nd + 2):
        raise ValueError(f"dropout{nd}d takes a {nd + 1}-D (C, ...) or {nd + 2}-D (N, C, ...) "
                         f"input, got a {input.dim()}-D one of shape {tuple(input.shape)}")
    noise = tuple(input.shape[:input.dim() - nd]) + (1,) * nd
    return _dropout(input, p, training, inplace, seed, step, noise, store_mask, n_threads)


def dropout1d(input, p=0.5, training=True, inplace=False, *, seed=None, step=0,
              store_mask=True, n_threads=None):
    """Like ``torch.nn.functional.dropout1d``: whole channels of (N, C, L) or (C, L); the
    keywords as in :func:`dropout`."""
    return _channel_dropout(input, p, training, inplace, seed, step, store_mask, n_threads, 1)


def dropout2d(input, p=0.5, training=True, inplace=False, *, seed=None, step=0,
              store_mask=True, n_threads=None):
    """Like ``torch.nn.functional.dropout2d``: whole channels of (N, C, H, W) or (C, H, W);
    the keywords as in :func:`dropout`."""
    return _channel_dropout(input, p, training, inplace, seed, step, store_mask, n_threads, 2)


def dropout3d(input, p=0.5, training=True, inplace=False, *, seed=None, step=0,
              store_mask=True, n_threads=None):
    """Like ``torch.nn.functional.dropout3d``: whole channels of (N, C, D, H, W) or
    (C, D, H, W); the keywords as in :func:`dropout`."""
    return _channel_dropout(input, p, training, inplace, seed, step, store_mask, n_threads, 3)


class Dropout(nn.Module):
    """Like ``torch.nn.Dropout``: :func:`dropout` in training mode, the identity in eval mode.

    With an integer ``seed`` the module draws from (seed, step) and advances ``step`` on each
    training call; ``step`` is a buffer, so it survives ``state_dict`` and a resumed run
    draws the masks it would have drawn. With ``seed=None`` each call takes a fresh seed
    from torch's default generator. ``store_mask`` and ``n_threads`` as in :func:`dropout`."""

    def __init__(self, p=0.5, inplace=False, *, seed=None, store_mask=True, n_threads=None):
        super().__init__()
        if isinstance(p, bool) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace, self.seed = float(p), inplace, seed
        self.store_mask, self.n_threads = bool(store_mask), n_threads
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    _function = staticmethod(dropout)

    def forward(self, input):
        options = dict(store_mask=self.store_mask, n_threads=self.n_threads)
        if not self.training or self.seed is None:
            return self._function(input, self.p, self.training, self.inplace, **options)
        step = self.step.clone() if _graph_mode() else int(self.step)
        self.step.add_(1)
        return self._function(input, self.p, True, self.inplace, seed=self.seed, step=step,
                              **options)

    def extra_repr(self):
        extras = [f", seed={self.seed}" if self.seed is not None else "",
                  "" if self.store_mask else ", store_mask=False",
                  "" if self.n_threads is None else f", n_threads={self.n_threads}"]
        return f"p={self.p}, inplace={self.inplace}" + "".join(extras)


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


def replace_dropout(module, *, store_mask=True, n_threads=None):
    """Swap every ``torch.nn.Dropout`` (and ``Dropout1d/2d/3d``) in ``module``, itself included
    if it is one, for fastdrop's with the same ``p`` and ``inplace`` (and ``store_mask`` and
    ``n_threads`` as given); returns the module."""
    if type(module) in _REPLACEMENTS:
        return _REPLACEMENTS[type(module)](module.p, module.inplace, store_mask=store_mask,
                                           n_threads=n_threads)
    for name, child in module.named_children():
        setattr(module, name, replace_dropout(child, store_mask=store_mask,
                                              n_threads=n_threads))
    return module
