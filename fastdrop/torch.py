"""fastdrop for PyTorch: a drop-in for ``torch.nn.functional.dropout`` and ``torch.nn.Dropout``.

One registered operator, ``fastdrop::dropout`` (``torch.library.custom_op``), with its autograd
formula and a fake implementation, so autograd, ``torch.compile``, ``torch.jit.trace`` and
``torch.jit.script`` see one op (eager calls take a cheaper ``autograd.Function`` with the same
bits). The forward runs fastdrop's fused kernel on the tensor's own memory (no copy for
contiguous CPU float32 / float64 tensors) and keeps the mask as 1 bit per decision; the
backward reads those bits, or recomputes them with ``store_mask=False``.

For a fixed mask dropout is linear in its input: ``y = keep ? x * scale : +0``. Every
derivative is that same masked scaling (the backward of the backward, forward-mode tangents,
batched gradients under ``vmap``), so each of them goes through the one function that applies
a draw's mask, and derivatives of any order come out right.

Seeds: with ``seed=None`` each call draws its seed from torch's default CPU generator, so
``torch.manual_seed(s)`` makes a whole training run reproducible; unlike torch's own dropout
the masks are the same for any ``torch.set_num_threads`` (counter-based Philox draws).

Importing this module needs torch (``pip install 'fastdrop[torch]'`` or any CPU torch).
"""
import numbers
import warnings
from typing import List

import numpy as np
import torch
from torch import nn
from torch.autograd import forward_ad as _forward_ad

from ._dropout import dropout as _np_dropout, dropout_backward as _np_dropout_backward
from ._plumbing import (ONE, DropoutMask, backward_kernel, check_mask, dropout_checked,
                        keep_threshold, train_scale)
from ._threading import resolve_n_threads
from ._validation import check_uint64

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "Dropout", "Dropout1d",
           "Dropout2d", "Dropout3d", "replace_dropout", "InputRankError"]

_KERNEL_DTYPES = (torch.float32, torch.float64)
_CONVERTED_DTYPES = (torch.bfloat16, torch.float16)  # through float32 and back
_SEED_HIGH = 2**63 - 1


class InputRankError(ValueError, RuntimeError):
    """An input of a rank a channel dropout cannot take. Both a ValueError (fastdrop's errors
    for bad arguments) and a RuntimeError (what torch raises for the same input)."""


def _check_threads(n_threads):
    """None (torch's thread count when the kernel runs), or a resolved positive count: the
    numpy API's rules (0 and more than 4 per core refused, -1 all cores, -2 all but one)."""
    return None if n_threads is None else resolve_n_threads(n_threads)


def _threads(n_threads):
    """The count a kernel runs on: torch's for None (eager) or -1 (the op's argument)."""
    return torch.get_num_threads() if n_threads in (None, -1) else n_threads


def _forward(x, p, seed, step, noise, store_mask, n_threads):
    """(y, mask) of inverted dropout on a contiguous float array: a fresh array that becomes
    the result tensor (no copies). A plain mask at 0 < p < 1 skips the numpy API's checks:
    they were made at the boundary."""
    threshold = keep_threshold(1.0 - p)
    if noise or threshold in (0, ONE):
        return _np_dropout(x, p, seed=seed, step=step, n_threads=_threads(n_threads),
                           store_mask=store_mask, noise_shape=noise or None)
    return dropout_checked(x, threshold, check_uint64(seed, "seed"),
                            check_uint64(step, "step"), store_mask, _threads(n_threads))


def _backward(grad, mask, n_threads):
    """grad * scale where the mask kept the element (broadcast from a noise shape), else +0."""
    dy = grad.detach().contiguous().numpy()
    if mask.shape != dy.shape or mask.threshold in (0, ONE):
        return torch.from_numpy(_np_dropout_backward(dy, mask, n_threads=_threads(n_threads)))
    dx = np.empty_like(dy)
    backward_kernel(dy, dx, mask, _threads(n_threads))
    return torch.from_numpy(dx)


_is_legacy_batched = torch._C._functorch.is_legacy_batchedtensor


class _Draw:
    """One dropout draw as a pure function of its input: ``keep ? t * scale : +0`` with the
    mask of (seed, step) over the noise shape (or the input's shape). Its first call runs the
    fused forward kernel and keeps the bits when ``store_mask``; later calls (the backward
    pass and every derivative after it) apply that mask, read or recomputed."""

    __slots__ = ("p", "seed", "step", "noise", "store_mask", "n_threads", "mask")

    def __init__(self, p, seed, step, noise, store_mask, n_threads):
        self.p, self.seed, self.step, self.noise = p, seed, step, noise
        self.store_mask, self.n_threads, self.mask = store_mask, n_threads, None

    def __call__(self, t):
        if _is_legacy_batched(t):  # torch.autograd's own vmap (jacobian(vectorize=True))
            return torch.where(self.keep(tuple(t.shape)), t * self.scale(),
                               torch.zeros((), dtype=t.dtype))
        if self.mask is None:
            y, self.mask = _forward(t.detach().contiguous().numpy(), self.p, self.seed,
                                    self.step, self.noise, self.store_mask, self.n_threads)
            return torch.from_numpy(y)
        return _backward(t, self.mask, self.n_threads)

    def keep(self, shape, seed=None):
        """The keep decisions as a bool tensor broadcastable to ``shape`` (the draw's own
        seed, or another one for a vmap that asks for different randomness)."""
        threshold = keep_threshold(1.0 - self.p)
        seed = self.seed if seed is None else seed
        mask = DropoutMask(self.noise or shape, threshold, 1.0, seed, self.step)
        return torch.from_numpy(mask.to_bool())

    def scale(self):
        return train_scale(keep_threshold(1.0 - self.p), "inverted")


def _apply(t, seeds, draw):
    """``draw(t)`` through the autograd.Function that fits: none where nothing can
    differentiate it (a first-order backward), the lean one in plain eager autograd, the
    functorch-ready one under ``torch.func`` transforms (its ``setup_context`` form costs
    torch an argument binding per call, twice the time of a small tensor's whole pass)."""
    if torch._C._are_functorch_transforms_active():
        return _Apply.apply(t, seeds, draw)
    if torch.is_grad_enabled() or _forward_ad_active():
        return _EagerApply.apply(t, draw)
    return draw(t)


def _forward_ad_active():
    """Inside ``torch.autograd.forward_ad.dual_level()`` (gradcheck's forward-mode check)."""
    return getattr(_forward_ad, "_current_level", 0) >= 0


class _EagerApply(torch.autograd.Function):
    """``y = draw(x)`` in plain eager autograd: its backward and its forward-mode derivative
    are the same draw applied to the incoming gradient or tangent, and so is the backward's
    own backward, so derivatives of any order work."""

    @staticmethod
    def forward(ctx, x, draw):
        ctx.draw = draw
        return draw(x)

    @staticmethod
    def backward(ctx, grad):
        return _apply(grad, None, ctx.draw), None

    @staticmethod
    def jvp(ctx, tangent, _draw):
        return _apply(tangent, None, ctx.draw)


class _Apply(torch.autograd.Function):
    """:class:`_EagerApply` for ``torch.func`` transforms. Under ``vmap`` (batched gradients,
    ``jacobian(vectorize=True)``) the mask is applied with torch's ``where``, one mask for
    every member of the batch: the function is deterministic given its seed. A seed drawn
    inside ``vmap(randomness="different")`` is a batch of seeds, and then each member gets
    its own mask."""

    @staticmethod
    def forward(x, seed, draw):
        return draw(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.draw = inputs[2]

    @staticmethod
    def backward(ctx, grad):
        return _apply(grad, None, ctx.draw), None, None

    @staticmethod
    def jvp(ctx, tangent, _seed, _draw):
        return _apply(tangent, None, ctx.draw)

    @staticmethod
    def vmap(info, in_dims, x, seed, draw):
        x_dim, seed_dim = in_dims[0], in_dims[1]
        if x_dim is None:
            x = x.unsqueeze(0).expand(info.batch_size, *x.shape)
        else:
            x = x.movedim(x_dim, 0)
        shape = tuple(x.shape[1:])
        if seed_dim is None:
            keep = draw.keep(shape).unsqueeze(0)
        else:  # different randomness: one mask per member
            keep = torch.stack([draw.keep(shape, int(s) & 0xFFFFFFFFFFFFFFFF)
                                for s in seed.movedim(seed_dim, 0)])
        return torch.where(keep, x * draw.scale(), torch.zeros((), dtype=x.dtype)), 0


def _as_uint64(t):
    return int(t) & 0xFFFFFFFFFFFFFFFF


def n_words(x, noise, store_mask):
    return (int(np.prod(noise or x.shape)) + 63) // 64 if store_mask else 0


def _op_mask(shape, p, state):
    """The DropoutMask of a draw from the op's state: int64 [seed, step, packed words...]."""
    threshold = keep_threshold(1.0 - p)
    words = state[2:].numpy().view(np.uint64) if state.numel() > 2 else None
    return DropoutMask(shape, threshold, train_scale(threshold, "inverted"),
                       _as_uint64(state[0]), _as_uint64(state[1]), bits=words)


def _check_op_arguments(x, p, n_threads):
    """The op may be called directly (``torch.ops.fastdrop.dropout``, a scripted module): it
    checks what the kernels trust."""
    _check_input(x, p)
    if x.dtype not in _KERNEL_DTYPES:
        raise TypeError(f"fastdrop::dropout takes float32 or float64 tensors, got {x.dtype}")
    if n_threads != -1:
        _check_threads(n_threads)


@torch.library.custom_op("fastdrop::dropout", mutates_args=())
def _dropout_op(x: torch.Tensor, p: float, seed: torch.Tensor, step: torch.Tensor,
                noise_shape: List[int], store_mask: bool, n_threads: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, state): inverted dropout of a CPU float tensor, and the draw as int64 words
    ``[seed, step, packed mask...]`` (bit j of mask word i keeps element 64 i + j of the noise
    shape, or of x when ``noise_shape`` is empty; no mask words when ``store_mask`` is
    false). ``seed`` and ``step`` are int64 scalar tensors, so a traced or compiled graph
    draws a new mask on each run; ``n_threads`` -1 is torch's thread count. The backward
    reads the draw from ``state`` alone: an output, which no compiler recomputes from a
    ``step`` buffer that a later forward has advanced."""
    _check_op_arguments(x, p, n_threads)
    y, mask = _forward(x.detach().contiguous().numpy(), p, _as_uint64(seed), _as_uint64(step),
                       tuple(noise_shape), store_mask, n_threads)
    y = torch.from_numpy(y)
    if p == 0:  # numpy hands back x itself; an op's output must not alias its input
        y = y.clone()
    words = mask.packed() if store_mask else np.empty(0, np.uint64)
    state = torch.empty(2 + words.size, dtype=torch.int64)
    state[0], state[1] = _as_tensor(seed), _as_tensor(step)
    state[2:] = torch.from_numpy(words.view(np.int64))
    return y, state


@_dropout_op.register_fake
def _(x, p, seed, step, noise_shape, store_mask, n_threads):
    return torch.empty_like(x, memory_format=torch.contiguous_format), x.new_empty(
        (2 + n_words(x, noise_shape, store_mask),), dtype=torch.int64)


@torch.library.custom_op("fastdrop::dropout_backward", mutates_args=())
def _dropout_backward_op(grad: torch.Tensor, state: torch.Tensor, p: float,
                         noise_shape: List[int], n_threads: int) -> torch.Tensor:
    """grad * scale where the mask kept the element, else +0; the draw is read from
    ``state`` (``[seed, step, packed mask...]``), the mask recomputed when it holds none."""
    if n_threads != -1:
        _check_threads(n_threads)
    if state.dtype != torch.int64 or state.dim() != 1 or state.numel() < 2:
        raise ValueError(f"state must be a 1-d int64 tensor [seed, step, mask words...], got "
                         f"{state.dtype} of shape {tuple(state.shape)}")
    mask = _op_mask(tuple(noise_shape) or tuple(grad.shape), p, state)
    check_mask(mask)  # the op may be called with any words: the kernels trust their mask
    return _backward(grad, mask, n_threads)


@_dropout_backward_op.register_fake
def _(grad, state, p, noise_shape, n_threads):
    return torch.empty_like(grad, memory_format=torch.contiguous_format)


def _setup_context(ctx, inputs, output):
    _, ctx.p, _, _, ctx.noise_shape, _, ctx.n_threads = inputs
    ctx.save_for_backward(output[1])


def _op_backward(ctx, grad_y, _grad_state):
    state, = ctx.saved_tensors
    dx = _dropout_backward_op(grad_y, state, ctx.p, ctx.noise_shape, ctx.n_threads)
    return dx, None, None, None, None, None, None


def _setup_backward_context(ctx, inputs, output):
    _, state, ctx.p, ctx.noise_shape, ctx.n_threads = inputs
    ctx.save_for_backward(state)


def _op_double_backward(ctx, grad):
    """The backward op is the same masked scaling, so it is its own derivative."""
    state, = ctx.saved_tensors
    return (_dropout_backward_op(grad, state, ctx.p, ctx.noise_shape, ctx.n_threads),
            None, None, None, None)


_dropout_op.register_autograd(_op_backward, setup_context=_setup_context)
_dropout_backward_op.register_autograd(_op_double_backward,
                                       setup_context=_setup_backward_context)


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
    _check_p(p)


def _check_p(p):
    if type(p) is float and 0.0 <= p <= 1.0:  # the common case, without an ABC check
        return
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
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
    return torch.full((), _as_int64(value), dtype=torch.int64)


def _as_int64(value):
    """A uint64 seed or step as the int64 a tensor holds (_as_uint64 turns it back)."""
    value = int(value)
    return value - 2**64 if value >= 2**63 else value


def _in_layout_of(y, input):
    """``y`` (contiguous) in ``input``'s memory format, as torch's dropout returns it: the
    masks stay a function of the logical index, whatever the strides."""
    if input.is_contiguous():
        return y
    return torch.empty_like(input, dtype=y.dtype).copy_(y)


def _eager_seed(seed):
    """The seed of one eager call: an int, or inside ``vmap(randomness="different")`` the
    batch of seeds torch's generator gave (the vmap rule then draws one mask per member)."""
    if seed is not None:
        return int(seed), None
    drawn = _fresh_seed()
    try:
        return int(drawn), None
    except RuntimeError:  # a batched tensor: one seed per member of a vmap
        return 0, drawn


def _dropout(input, p, training, inplace, seed, step, noise, store_mask, n_threads):
    """The body of every fastdrop.torch dropout: checks, edge rates, dtype conversion, then
    the eager autograd.Function or the registered op."""
    _check_input(input, p)
    n_threads = _check_threads(n_threads)
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
        seed, seeds = _eager_seed(seed)
        draw = _Draw(float(p), seed, int(step), tuple(noise), bool(store_mask), n_threads)
        y = _apply(x, seeds, draw)
    return input.copy_(y) if inplace else _in_layout_of(y, input)


def dropout(input, p=0.5, training=True, inplace=False, *, seed=None, step=0, noise_shape=None,
            store_mask=True, n_threads=None):
    """Like ``torch.nn.functional.dropout``: zeroes each element with probability ``p`` and
    scales the others by ``1 / (1 - p)`` (by the realized keep probability, a multiple of
    2^-16), in training; returns ``input`` unchanged otherwise.

    The result has the input's memory format (``channels_last`` stays so); the mask is a
    function of the logical index, whatever the strides. float32 and float64 run on the
    tensor's memory; bfloat16 and float16 go through float32 (two conversions more) and
    round the result back. Derivatives of every order, forward mode (``torch.func.jvp``) and
    ``vmap`` work: for a fixed mask dropout is linear.

    Parameters
    ----------
    input : torch.Tensor
        A CPU floating-point tensor.
    p : float in [0, 1], default 0.5
        Drop probability.
    training : bool, default True
        False returns ``input`` itself.
    inplace : bool, default False
        Write the result into ``input``'s storage, as torch's does, where autograd allows it.
    seed : int in [0, 2**64) or None
        With ``step``, fixes the mask; None draws the seed from torch's default generator.
    step : int, default 0
        Index of the draw under ``seed``.
    noise_shape : sequence of int, optional
        One entry per dimension, 1 to share a decision along it (Keras's name;
        :func:`dropout2d` is ``noise_shape=(N, C, 1, 1)``).
    store_mask : bool, default True
        Keep the mask for the backward pass, 1 bit per decision, or (False) recompute it
        there from (seed, step).
    n_threads : int or None
        Threads of the kernel, ``torch.get_num_threads()`` by default, else as in the numpy
        API (-1 all cores; 0 and more than 4 per core are refused); the result does not
        depend on it.

    Returns
    -------
    output : torch.Tensor
        Of the input's shape, dtype and memory format (``input`` itself when ``inplace``).
    """
    if noise_shape is None:
        noise = ()
    elif len(noise_shape) != input.dim():
        raise ValueError(f"noise_shape must have one entry per dimension of input, "
                         f"{input.dim()}, got {len(noise_shape)}: {tuple(noise_shape)}")
    else:
        noise = tuple(input.shape[i] if e is None else int(e) for i, e in enumerate(noise_shape))
    return _dropout(input, p, training, inplace, seed, step, noise, store_mask, n_threads)


def _deprecated_rank(nd, dim):
    return (f"dropout{nd}d: Received a {dim}-D input to dropout{nd}d, which is deprecated "
            f"and will result in an error in a future release. To retain the behavior and "
            f"silence this warning, please use dropout instead.")


def _channel_noise(shape, nd, draws):
    """torch's channel noise shape for ``dropout{nd}d`` (torch 2.13's ``feature_dropout``
    after its own unsqueezing): one decision per entry of the leading ``decided`` axes,
    shared along the rest. Ranks torch refuses raise, ranks it deprecates warn as torch's;
    too few axes for a channel raise only where a mask is drawn (``draws``), as in torch."""
    dim = len(shape)
    if nd == 1 and dim not in (2, 3):
        raise InputRankError(f"dropout1d: Expected 2D or 3D input, but received a {dim}D input "
                             f"of shape {tuple(shape)}")
    if dim not in (nd + 1, nd + 2):
        warnings.warn(_deprecated_rank(nd, dim), stacklevel=4)
    if nd == 2 and dim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that "
                      "channel-wise 1D dropout behavior is desired - input is interpreted as "
                      "shape (N, C, L), where C is the channel dim. To maintain the 1D "
                      "channel-wise dropout behavior, please switch to using dropout1d instead.",
                      stacklevel=4)
    decided = 2 if nd == 2 or dim == nd + 2 else 1
    if draws and dim + (decided == 1) < 2:
        raise InputRankError(f"dropout{nd}d: Feature dropout requires at least 2 dimensions in "
                             f"the input, got shape {tuple(shape)}")
    return tuple(shape[:decided]) + (1,) * (dim - decided)


def _channel_dropout(input, p, training, inplace, seed, step, store_mask, n_threads, nd):
    """One decision per (sample, channel), broadcast over the spatial dimensions: the mask
    costs a bit per channel, not per element."""
    _check_input(input, p)
    draws = training and 0 < p < 1 and input.numel() > 0
    noise = _channel_noise(tuple(input.shape), nd, draws)
    return _dropout(input, p, training, inplace, seed, step, noise, store_mask, n_threads)


def dropout1d(input, p=0.5, training=True, inplace=False, *, seed=None, step=0,
              store_mask=True, n_threads=None):
    """Like ``torch.nn.functional.dropout1d``: whole channels of (N, C, L) or (C, L); the
    keywords as in :func:`dropout`. Other ranks raise :class:`InputRankError`.

    Parameters
    ----------
    input : torch.Tensor
    p, training, inplace, seed, step, store_mask, n_threads
        As in :func:`dropout`.

    Returns
    -------
    output : torch.Tensor
    """
    return _channel_dropout(input, p, training, inplace, seed, step, store_mask, n_threads, 1)


def dropout2d(input, p=0.5, training=True, inplace=False, *, seed=None, step=0,
              store_mask=True, n_threads=None):
    """Like ``torch.nn.functional.dropout2d``: whole channels of (N, C, H, W); the keywords as
    in :func:`dropout`. As torch 2.13 does, a 3-D input is read as (N, C, L) with a warning,
    and other ranks warn and drop per entry of the first two axes.

    Parameters
    ----------
    input : torch.Tensor
    p, training, inplace, seed, step, store_mask, n_threads
        As in :func:`dropout`.

    Returns
    -------
    output : torch.Tensor
    """
    return _channel_dropout(input, p, training, inplace, seed, step, store_mask, n_threads, 2)


def dropout3d(input, p=0.5, training=True, inplace=False, *, seed=None, step=0,
              store_mask=True, n_threads=None):
    """Like ``torch.nn.functional.dropout3d``: whole channels of (N, C, D, H, W) or
    (C, D, H, W); the keywords as in :func:`dropout`. Other ranks warn as torch's do.

    Parameters
    ----------
    input : torch.Tensor
    p, training, inplace, seed, step, store_mask, n_threads
        As in :func:`dropout`.

    Returns
    -------
    output : torch.Tensor
    """
    return _channel_dropout(input, p, training, inplace, seed, step, store_mask, n_threads, 3)


def _script_noise(shape: List[int], nd: int) -> List[int]:
    """:func:`_channel_noise` for TorchScript (no warnings: torch.jit has its own)."""
    if nd == 0:
        return []
    dim = len(shape)
    if nd == 1 and dim != 2 and dim != 3:
        raise RuntimeError("dropout1d: Expected 2D or 3D input")
    decided = 2 if nd == 2 or dim == nd + 2 else 1
    return shape[:decided] + [1] * (dim - decided)


class _FastdropDropout:
    """What the four modules share: seeds, steps, checks, the eager and the scripted forward.
    Mixed into torch's own classes, so ``isinstance(m, nn.Dropout)`` holds, as code that
    looks for dropout layers (Monte-Carlo dropout, Baal) expects."""

    _nd = 0  # channel dropout over this many spatial axes (0: element-wise)
    _seed_high = _SEED_HIGH  # TorchScript reads constants of the module, not globals
    __constants__ = ["p", "inplace", "store_mask", "_nd", "_seed_i64", "_script_threads",
                     "_seed_high"]

    def __init__(self, p=0.5, inplace=False, *, seed=None, store_mask=True, n_threads=None):
        _check_p(p)
        super().__init__(float(p), bool(inplace))
        if seed is not None:
            seed = check_uint64(seed, "seed")
        self.seed, self.store_mask = seed, bool(store_mask)
        self.n_threads = _check_threads(n_threads)
        self._seed_i64 = 0 if seed is None else _as_int64(seed)
        self._script_threads = -1 if n_threads is None else self.n_threads
        if seed is not None:  # unseeded: the state_dict of torch's module (nothing)
            self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Dropout in training mode (a seeded module advances its ``step``); the identity in
        eval mode.

        Parameters
        ----------
        input : torch.Tensor

        Returns
        -------
        output : torch.Tensor
        """
        if torch.jit.is_scripting():
            return self._script_forward(input)
        return self._eager_forward(input)

    @torch.jit.unused
    def _eager_forward(self, input):
        options = dict(store_mask=self.store_mask, n_threads=self.n_threads)
        if not self.training or self.seed is None:
            return self._function(input, self.p, self.training, self.inplace, **options)
        step = self.step.clone() if _graph_mode() else int(self.step)
        self.step.add_(1)
        return self._function(input, self.p, True, self.inplace, seed=self.seed, step=step,
                              **options)

    def _script_forward(self, input: torch.Tensor) -> torch.Tensor:
        """The forward TorchScript compiles: the registered op, drawn as the eager path."""
        if not self.training or self.p == 0.0:
            return input
        x = input.contiguous()
        if x.dtype == torch.bfloat16 or x.dtype == torch.float16:
            x = x.float()
        if hasattr(self, "step"):  # seeded (decided when the module is compiled)
            seed = torch.full([], self._seed_i64, dtype=torch.int64)
            step = self.step.clone()
            self.step.add_(1)
        else:
            seed = torch.randint(0, self._seed_high, [], dtype=torch.int64)
            step = torch.zeros([], dtype=torch.int64)
        noise = _script_noise(list(x.shape), self._nd)
        y = torch.ops.fastdrop.dropout(x, self.p, seed, step, noise, self.store_mask,
                                       self._script_threads)[0]
        if self.inplace:
            return input.copy_(y)
        return y.to(input.dtype)

    def extra_repr(self):
        extras = [f", seed={self.seed}" if self.seed is not None else "",
                  "" if self.store_mask else ", store_mask=False",
                  "" if self.n_threads is None else f", n_threads={self.n_threads}"]
        return f"p={self.p}, inplace={self.inplace}" + "".join(extras)


# The four modules' parameters, said once (their docstrings are built from it)
_MODULE_PARAMETERS = """

    Parameters
    ----------
    p : float in [0, 1], default 0.5
        Drop probability.
    inplace : bool, default False
        As torch's.
    seed : int in [0, 2**64) or None
        None: a fresh seed from torch's default generator on each training call.
    store_mask, n_threads
        As in :func:`dropout`.
    """


class Dropout(_FastdropDropout, nn.Dropout):
    __doc__ = """Like ``torch.nn.Dropout`` (and an instance of it): :func:`dropout` in training
    mode, the identity in eval mode.

    With an integer ``seed`` the module draws from (seed, step) and advances ``step`` on each
    training call; ``step`` is then a buffer, so it survives ``state_dict`` and a resumed run
    draws the masks it would have drawn. With ``seed=None`` each call takes a fresh seed
    from torch's default generator, and the ``state_dict`` is torch's (empty), so
    checkpoints load both ways.""" + _MODULE_PARAMETERS
    _function = staticmethod(dropout)


class Dropout1d(_FastdropDropout, nn.Dropout1d):
    __doc__ = """Like ``torch.nn.Dropout1d`` (one decision per channel); seeds as
    :class:`Dropout`.""" + _MODULE_PARAMETERS
    _function = staticmethod(dropout1d)
    _nd = 1


class Dropout2d(_FastdropDropout, nn.Dropout2d):
    __doc__ = """Like ``torch.nn.Dropout2d`` (one decision per channel); seeds as
    :class:`Dropout`.""" + _MODULE_PARAMETERS
    _function = staticmethod(dropout2d)
    _nd = 2


class Dropout3d(_FastdropDropout, nn.Dropout3d):
    __doc__ = """Like ``torch.nn.Dropout3d`` (one decision per channel); seeds as
    :class:`Dropout`.""" + _MODULE_PARAMETERS
    _function = staticmethod(dropout3d)
    _nd = 3


_REPLACEMENTS = {nn.Dropout: Dropout, nn.Dropout1d: Dropout1d, nn.Dropout2d: Dropout2d,
                 nn.Dropout3d: Dropout3d}


def replace_dropout(module, *, store_mask=True, n_threads=None):
    """Swap every ``torch.nn.Dropout`` (and ``Dropout1d/2d/3d``) in ``module``, itself included
    if it is one, for fastdrop's with the same ``p``, ``inplace`` and training flag.
    fastdrop's own modules (instances of torch's classes too) are left as they are.

    Parameters
    ----------
    module : torch.nn.Module
        Changed in place.
    store_mask, n_threads
        Given to every new module, as in :class:`Dropout`.

    Returns
    -------
    module : torch.nn.Module
        ``module``, or its replacement when it is itself a dropout module.
    """
    n_threads = _check_threads(n_threads)
    if type(module) in _REPLACEMENTS:
        new = _REPLACEMENTS[type(module)](module.p, module.inplace, store_mask=store_mask,
                                          n_threads=n_threads)
        return new.train(module.training)
    for name, child in module.named_children():
        setattr(module, name, replace_dropout(child, store_mask=store_mask,
                                              n_threads=n_threads))
    return module
