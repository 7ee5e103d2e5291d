"""fastdrop.torch against the numpy API it wraps, torch's autograd and compiler, and torch's own
dropout's interface. Skipped where torch is not installed (it is a baseline, not a dependency)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", minversion="2.4")
fd_torch = pytest.importorskip("fastdrop.torch")

import fastdrop  # noqa: E402


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_forward_and_backward_are_fastdrops_bit_for_bit(dtype, p):
    x = torch.randn(37, 129, dtype=dtype)
    want, mask = fastdrop.dropout(x.numpy(), p, seed=5, step=2)
    xr = x.clone().requires_grad_()
    y = fd_torch.dropout(xr, p, seed=5, step=2)
    assert torch.equal(y, torch.from_numpy(want))
    g = torch.randn_like(x)
    y.backward(g)
    assert torch.equal(xr.grad, torch.from_numpy(fastdrop.dropout_backward(g.numpy(), mask)))


def test_gradcheck_and_opcheck():
    x = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fd_torch.dropout(t, 0.5, seed=1), (x,))
    assert torch.autograd.gradcheck(
        lambda t: fd_torch.dropout(t, 0.5, seed=1, noise_shape=(5, 1), store_mask=False), (x,))
    seed, step = torch.tensor(3), torch.tensor(0)
    for p, noise, store in [(0.0, [], True), (0.5, [], True), (1.0, [], True),
                            (0.5, [], False), (0.5, [10, 1, 1], True)]:
        args = (torch.randn(10, 3, 7), p, seed, step, noise, store, 1)
        torch.library.opcheck(fd_torch._dropout_op, args)
        y, state = fd_torch._dropout_op(*args)
        assert state.numel() == 2 + (0 if not store else 1 if noise else 4)
        assert state[0] == seed and state[1] == step
        if p in (0.0, 1.0):  # the wrapper never sends them, but the op takes them
            assert torch.equal(y, args[0] * (1.0 - p))


def test_compiles_without_a_graph_break_to_the_eager_bits():
    """Compiled, the registered op runs; eager, an autograd.Function (less dispatch): the
    same values and gradients."""
    x = torch.randn(64, 33)
    f = torch.compile(lambda t: fd_torch.dropout(t, 0.5, seed=7) * 2, fullgraph=True,
                      backend="aot_eager")
    grads = []
    for fn in (f, lambda t: fd_torch.dropout(t, 0.5, seed=7) * 2):
        xr = x.clone().requires_grad_()
        y = fn(xr)
        y.backward(torch.arange(y.numel(), dtype=y.dtype).reshape(y.shape))
        grads.append((y.detach(), xr.grad))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_seeds_follow_torch_manual_seed_and_not_the_thread_count():
    x = torch.randn(1000, 65)
    threads = torch.get_num_threads()
    masks = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            torch.manual_seed(3)
            masks.append((fd_torch.dropout(x, 0.5), fd_torch.dropout(x, 0.5)))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, masks[0][0]) and torch.equal(b, masks[0][1]) for a, b in masks)
    assert not torch.equal(masks[0][0], masks[0][1])  # each call draws a new mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_keep_rate_and_scale(p):
    """Kept share within 5 sigma of 1 - p over 2^20 elements; kept values scaled by exactly
    1 / keep_prob (the realized keep probability, a multiple of 2^-16)."""
    x = torch.ones(2**20, dtype=torch.float64)
    y = fd_torch.dropout(x, p, seed=12)
    kept = (y != 0).double().mean().item()
    assert abs(kept - (1 - p)) < 5 * np.sqrt(p * (1 - p) / x.numel())
    keep_prob = fastdrop.bernoulli_mask(1, 1 - p, seed=0).keep_prob
    assert torch.all(y[y != 0] == 1 / keep_prob)
    assert abs(y.mean().item() - 1) < 5 * np.sqrt(p / (1 - p) / x.numel())


def test_module_train_eval_state_and_repr():
    x = torch.randn(8, 10)
    m = fd_torch.Dropout(0.5, seed=11)
    first, second = m(x), m(x)
    assert not torch.equal(first, second) and int(m.step) == 2
    resumed = fd_torch.Dropout(0.5, seed=11)
    resumed.load_state_dict({"step": torch.tensor(1)})
    assert torch.equal(resumed(x), second)  # the step survives state_dict
    assert torch.equal(m.eval()(x), x)
    assert repr(m) == "Dropout(p=0.5, inplace=False, seed=11)"


def test_edge_rates_inplace_and_eval():
    x = torch.randn(4, 70)
    assert fd_torch.dropout(x, 0.0) is x and fd_torch.dropout(x, 0.7, training=False) is x
    assert torch.equal(fd_torch.dropout(x, 1.0), torch.zeros_like(x))
    y = x.clone()
    out = fd_torch.dropout(y, 0.5, inplace=True, seed=2)
    assert out.data_ptr() == y.data_ptr() and torch.equal(y, fd_torch.dropout(x, 0.5, seed=2))
    t = x.t()  # not contiguous: a copy goes to the kernel
    assert torch.equal(fd_torch.dropout(t, 0.5, seed=4), fd_torch.dropout(t.contiguous(), 0.5,
                                                                            seed=4))


def test_replace_dropout_swaps_every_torch_dropout():
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.3),
                              torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Dropout(0.6)))
    assert fd_torch.replace_dropout(net) is net
    swapped = [m for m in net.modules() if isinstance(m, fd_torch.Dropout)]
    assert [m.p for m in swapped] == [0.3, 0.6]
    assert not any(type(m) is torch.nn.Dropout for m in net.modules())
    net(torch.randn(2, 4)).sum().backward()  # trains through it


@pytest.mark.parametrize("bad, error, match", [
    (lambda: fd_torch.dropout(torch.ones(3, dtype=torch.int32), 0.5), TypeError,
     "float32, float64, bfloat16 or float16 tensors, got torch.int32"),
    (lambda: fd_torch.dropout(torch.ones(3).to_sparse(), 0.5), ValueError,
     "dense .* got layout torch.sparse_coo"),
    (lambda: fd_torch.dropout(torch.ones(3, 4), 0.5, noise_shape=(3, 2)), ValueError,
     "noise_shape entries must be 1 or the length"),
    (lambda: fd_torch.dropout(np.ones(3), 0.5), TypeError, "must be a torch.Tensor"),
    (lambda: fd_torch.dropout(torch.ones(3), 1.5), ValueError, "between 0 and 1, but got 1.5"),
    (lambda: fd_torch.Dropout(-0.1), ValueError, "between 0 and 1"),
])
def test_bad_input_is_a_clear_error(bad, error, match):
    with pytest.raises(error, match=match):
        bad()


def _shared_axes(y):
    """The axes along which every slice of ``y`` drops the same entries."""
    dropped = y == 0
    return tuple(a for a in range(y.dim())
                 if torch.equal(dropped, dropped.narrow(a, 0, 1).expand_as(dropped)))


@pytest.mark.filterwarnings("ignore:dropout[23]d. Received")
@pytest.mark.parametrize("nd, shape", [(1, (6, 8, 9)), (1, (8, 9)), (2, (4, 6, 5, 7)),
                                       (2, (6, 5, 7)), (2, (9, 8)), (2, (3, 4, 2, 3, 5)),
                                       (3, (3, 4, 2, 3, 5)), (3, (4, 2, 3, 5)), (3, (6, 5, 7)),
                                       (3, (2, 3, 2, 2, 2, 2))])
def test_channel_dropout_shares_decisions_along_torchs_axes(nd, shape):
    """Which axes share a decision is torch 2.13's rule, deprecated ranks included: read off
    torch's own dropout{nd}d; the values are then fastdrop's mask of that noise shape."""
    x = torch.rand(*shape, dtype=torch.float64) + 0.5  # no zeros of its own
    torch.manual_seed(0)
    theirs = getattr(torch.nn.functional, f"dropout{nd}d")(x, 0.5)
    fn = getattr(fd_torch, f"dropout{nd}d")
    xr = x.clone().requires_grad_()
    y = fn(xr, 0.5, seed=9, step=1)
    assert _shared_axes(y.detach()) == _shared_axes(theirs)
    noise = tuple(1 if a in _shared_axes(theirs) else n for a, n in enumerate(shape))
    want, mask = fastdrop.dropout(x.numpy(), 0.5, seed=9, step=1, noise_shape=noise)
    assert torch.equal(y, torch.from_numpy(want))
    y.sum().backward()
    assert torch.equal(xr.grad, torch.from_numpy(fastdrop.dropout_backward(np.ones(shape),
                                                                           mask)))
    assert torch.equal(fn(x, 0.5, seed=9, step=1), y.detach())  # (seed, step) fixes it


@pytest.mark.parametrize("nd, shape, warns", [
    (2, (6, 5, 7), "assuming that channel-wise 1D dropout"), (2, (4, 5), "2-D input .* deprecated"),
    (2, (2, 3, 2, 2, 2), "5-D input"), (3, (6, 5, 7), "3-D input"), (3, (2,) * 6, "6-D input")])
def test_channel_dropout_warns_where_torch_warns(nd, shape, warns):
    fn = getattr(fd_torch, f"dropout{nd}d")
    with pytest.warns(UserWarning, match=warns):
        fn(torch.ones(shape), 0.5)
    with pytest.warns(UserWarning, match=warns):
        getattr(torch.nn.functional, f"dropout{nd}d")(torch.ones(shape), 0.5)


def test_channel_dropout_modules_and_their_errors():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Dropout2d(0.3),
                              torch.nn.Dropout1d(0.2), torch.nn.Dropout3d(0.1))
    fd_torch.replace_dropout(net)
    assert [type(m).__name__ for m in net][1:] == ["Dropout2d", "Dropout1d", "Dropout3d"]
    for m, theirs in zip(list(net)[1:], [torch.nn.Dropout2d, torch.nn.Dropout1d,
                                         torch.nn.Dropout3d]):
        assert isinstance(m, theirs) and not isinstance(m, torch.nn.Dropout)
    m = fd_torch.Dropout2d(0.5, seed=4)
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(m(x), fd_torch.dropout2d(x, 0.5, seed=4, step=0))
    assert torch.equal(m.eval()(x), x)
    for error in (ValueError, RuntimeError):  # fastdrop's kind of error, and torch's
        with pytest.raises(error, match="dropout1d: Expected 2D or 3D input, but received a 4D"):
            fd_torch.dropout1d(torch.ones(2, 3, 4, 5), 0.5)
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input"):
        torch.nn.functional.dropout1d(torch.ones(2, 3, 4, 5), 0.5)


@pytest.mark.parametrize("noise", [(6, 1, 9), (1, 5, 1), (None, 1, 9)])
@pytest.mark.parametrize("store_mask", [True, False])
def test_noise_shape_and_recomputed_masks_are_fastdrops(noise, store_mask):
    x = torch.randn(6, 5, 9, dtype=torch.float64)
    want, mask = fastdrop.dropout(x.numpy(), 0.3, seed=8, step=4, noise_shape=noise)
    xr = x.clone().requires_grad_()
    y = fd_torch.dropout(xr, 0.3, seed=8, step=4, noise_shape=noise, store_mask=store_mask)
    assert torch.equal(y, torch.from_numpy(want))
    g = torch.randn_like(x)
    y.backward(g)
    assert torch.equal(xr.grad, torch.from_numpy(fastdrop.dropout_backward(g.numpy(), mask)))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_goes_through_float32(dtype):
    x = torch.randn(33, 70).to(dtype)
    xr = x.clone().requires_grad_()
    y = fd_torch.dropout(xr, 0.3, seed=2)
    assert y.dtype == dtype
    assert torch.equal(y, fd_torch.dropout(x.float(), 0.3, seed=2).to(dtype))
    y.backward(torch.ones_like(y))
    assert xr.grad.dtype == dtype and torch.equal(xr.grad != 0, y != 0)
    z = x.clone()
    assert fd_torch.dropout(z, 0.3, seed=2, inplace=True) is z and torch.equal(z, y.detach())


def _net(cls):
    return torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), cls(0.5),
                               torch.nn.Linear(16, 3))


@pytest.mark.parametrize("seed", [None, 21])
def test_compiled_module_draws_like_eager_without_graph_breaks(seed):
    """The registered op inside a compiled model: one graph, a new mask each call, and the
    eager masks for the same torch seed (or module seed and step)."""
    torch.manual_seed(0)
    eager = _net(lambda p: fd_torch.Dropout(p, seed=seed))
    compiled_net = _net(lambda p: fd_torch.Dropout(p, seed=seed))
    compiled_net.load_state_dict(eager.state_dict())
    compiled = torch.compile(compiled_net, fullgraph=True, backend="aot_eager")
    x = torch.randn(8, 12)
    outputs = []
    for net in (eager, compiled):
        torch.manual_seed(5)
        outputs.append([net(x), net(x)])
    assert not torch.equal(outputs[0][0], outputs[0][1])
    assert torch.equal(outputs[0][0], outputs[1][0]) and torch.equal(outputs[0][1],
                                                                     outputs[1][1])


def test_compiled_channel_dropout_is_one_graph():
    f = torch.compile(lambda t: fd_torch.dropout2d(t, 0.5, seed=3) + 1, fullgraph=True,
                      backend="aot_eager")
    x = torch.randn(2, 4, 3, 3)
    assert torch.equal(f(x), fd_torch.dropout2d(x, 0.5, seed=3) + 1)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
def test_traced_module_keeps_the_op_and_draws_new_masks():
    net = _net(fd_torch.Dropout)
    x = torch.randn(8, 12)
    traced = torch.jit.trace(net, x, check_trace=False)
    assert "fastdrop::dropout" in str(traced.inlined_graph)
    torch.manual_seed(1)
    a, b = traced(x), traced(x)
    torch.manual_seed(1)
    assert not torch.equal(a, b) and torch.equal(a, net(x))
    seeded = torch.jit.trace(_net(lambda p: fd_torch.Dropout(p, seed=4)), x, check_trace=False)
    assert not torch.equal(seeded(x), seeded(x))  # the step buffer advances in the trace


def test_seeds_past_int64_survive_the_graph_op():
    f = torch.compile(lambda t: fd_torch.dropout(t, 0.5, seed=2**64 - 5, step=2**63 + 1),
                      fullgraph=True, backend="aot_eager")
    x = torch.randn(300)
    want, _ = fastdrop.dropout(x.numpy(), 0.5, seed=2**64 - 5, step=2**63 + 1)
    assert torch.equal(f(x), torch.from_numpy(want))


def test_the_backward_op_refuses_a_state_that_does_not_fit():
    with pytest.raises(ValueError, match="mask.bits must hold 2 words"):
        fd_torch._dropout_backward_op(torch.ones(100), torch.zeros(3, dtype=torch.int64), 0.5,
                                      [], 1)
    with pytest.raises(ValueError, match=r"state must be a 1-d int64 tensor .* got torch.int64 "
                                         r"of shape \(1,\)"):
        fd_torch._dropout_backward_op(torch.ones(100), torch.zeros(1, dtype=torch.int64), 0.5,
                                      [], 1)


def test_dropped_elements_are_plus_zero_even_for_nan_inf_and_negatives():
    """fastdrop's rule, p = 1 included (torch's own gives NaN there: input * 0)."""
    x = torch.tensor([float("nan"), float("inf"), -float("inf"), -2.0, 3.0] * 40,
                     requires_grad=True)
    for p in (1.0, 0.5):
        y = fd_torch.dropout(x, p, seed=1)
        dropped = y.detach()[y.detach() == 0]
        assert torch.all(torch.signbit(dropped) == 0)
        if p == 1.0:
            assert torch.equal(y.detach(), torch.zeros_like(x))
            y.sum().backward()
            assert torch.equal(x.grad, torch.zeros_like(x))


# Never silently wrong, round two (issue 24): one test per finding.

def test_replace_dropout_keeps_each_modules_training_flag():
    net = torch.nn.Sequential(torch.nn.Linear(20, 4), torch.nn.Dropout(0.5),
                              torch.nn.Dropout2d(0.5).train()).eval()
    net[2].train()
    fd_torch.replace_dropout(net)
    assert [m.training for m in net] == [False, False, True]
    m = torch.nn.Sequential(torch.nn.Linear(20, 4), torch.nn.Dropout(0.5)).eval()
    fd_torch.replace_dropout(m)
    x = torch.randn(3, 20)
    assert torch.equal(m(x), m(x)) and torch.equal(m(x), m[0](x))


def test_double_backward_gradient_penalty_and_hessian():
    """d/dx of the backward is the same masked scaling: a Hessian of sum(dropout(x)^2) is
    diag(2 * scale^2 * keep), and a gradient penalty trains through the dropout path."""
    x = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    for options in [{}, {"store_mask": False}, {"noise_shape": (6, 1)}]:
        f = lambda t: fd_torch.dropout(t, 0.4, seed=3, **options)  # noqa: E731
        assert torch.autograd.gradgradcheck(lambda t: f(t) ** 2, (x,))
        keep = (f(torch.ones_like(x)) != 0).double()
        scale = f(torch.ones_like(x)).max()
        hessian = torch.autograd.functional.hessian(lambda t: (f(t) ** 2).sum(), x)
        assert torch.allclose(hessian.reshape(42, 42), torch.diag((2 * scale**2 * keep).ravel()))
        grad, = torch.autograd.grad((f(x) ** 3).sum(), x, create_graph=True)
        penalty, = torch.autograd.grad(grad.pow(2).sum(), x)
        assert torch.allclose(penalty, 2 * grad * 6 * f(x) * scale**2 * keep)


def test_double_backward_through_the_registered_op():
    """The op that compiled and traced graphs hold: its backward is an op with its own
    derivative, so a graph that differentiates twice gets the eager numbers."""
    x = torch.randn(5, 9, dtype=torch.float64, requires_grad=True)
    seed, step = torch.tensor(8), torch.tensor(0)

    def penalty(dropout):
        grad, = torch.autograd.grad((dropout(x) ** 3).sum(), x, create_graph=True)
        return torch.autograd.grad(grad.pow(2).sum(), x)[0]

    by_op = penalty(lambda t: fd_torch._dropout_op(t, 0.5, seed, step, [], True, 1)[0])
    assert torch.equal(by_op, penalty(lambda t: fd_torch.dropout(t, 0.5, seed=8)))
    assert torch.autograd.gradgradcheck(
        lambda t: fd_torch._dropout_op(t, 0.5, seed, step, [5, 1], False, 1)[0] ** 2, (x,))
    args = (torch.randn(10, 3, dtype=torch.float64), torch.tensor([3, 0], dtype=torch.int64),
            0.5, [], 1)
    torch.library.opcheck(fd_torch._dropout_backward_op, args)


_BAD_THREADS = """
import torch, fastdrop.torch as ft
x = torch.ones(65536)
for n in (100000, 0, 2.5):
    for call in (lambda: ft.dropout(x, 0.5, n_threads=n), lambda: ft.Dropout(n_threads=n),
                 lambda: ft.dropout2d(torch.ones(2, 3, 4, 5), 0.5, n_threads=n),
                 lambda: ft.replace_dropout(torch.nn.Dropout(), n_threads=n)):
        try:
            call()
        except (TypeError, ValueError) as error:
            assert "n_threads" in str(error), error
        else:
            raise AssertionError(f"n_threads={n} accepted")
for n in (-1, -2, -100000):
    assert ft.dropout(x, 0.5, seed=1, n_threads=n).shape == x.shape
    ft.Dropout(n_threads=n)(x)
print("ok")
"""


def test_thread_counts_are_checked_at_every_entry_point_without_crashing():
    """n_threads=100000 was a segfault and -2 an abort in libgomp: in a child process."""
    import subprocess
    import sys
    run = subprocess.run([sys.executable, "-c", _BAD_THREADS], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_unseeded_modules_have_torchs_state_dict_both_ways():
    def net(dropout):
        return torch.nn.Sequential(torch.nn.Linear(3, 3), dropout(0.3))

    stock = net(torch.nn.Dropout)
    replaced = fd_torch.replace_dropout(net(torch.nn.Dropout))
    replaced.load_state_dict(stock.state_dict(), strict=True)
    net(torch.nn.Dropout).load_state_dict(replaced.state_dict(), strict=True)
    for cls in (fd_torch.Dropout, fd_torch.Dropout1d, fd_torch.Dropout2d, fd_torch.Dropout3d):
        assert cls(0.5).state_dict() == {} and list(cls(0.5, seed=1).state_dict()) == ["step"]


def test_compiled_seeded_module_takes_two_forwards_before_one_backward():
    """R-Drop and siamese training under inductor ("is at version 2; expected version 1")."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), fd_torch.Dropout(0.5, seed=4))
    twin = torch.nn.Sequential(torch.nn.Linear(8, 8), fd_torch.Dropout(0.5, seed=4))
    twin.load_state_dict(net.state_dict())
    compiled = torch.compile(net)
    x = torch.randn(4, 8)
    a, b = compiled(x), compiled(x)
    (a.sum() + 2 * b.sum()).backward()
    a2, b2 = twin(x), twin(x)
    (a2.sum() + 2 * b2.sum()).backward()
    assert torch.equal(a, a2) and torch.equal(b, b2) and int(net[1].step) == 2
    assert torch.equal(net[0].weight.grad, twin[0].weight.grad)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
@pytest.mark.parametrize("seed", [None, 6])
def test_a_replaced_model_scripts_saves_and_draws_like_eager(seed, tmp_path):
    def net():
        return torch.nn.Sequential(torch.nn.Linear(4, 8), fd_torch.Dropout(0.5, seed=seed),
                                   fd_torch.Dropout1d(0.3, seed=seed))

    eager, scripted_net = net(), net()
    scripted_net.load_state_dict(eager.state_dict())
    scripted = torch.jit.script(scripted_net)
    torch.jit.save(scripted, tmp_path / "m.pt")
    loaded = torch.jit.load(tmp_path / "m.pt")
    x = torch.randn(3, 4)
    outputs = []
    for m in (eager, scripted, loaded):
        torch.manual_seed(2)
        outputs.append([m(x), m(x)])
    for a, b in outputs[1:]:
        assert torch.equal(a, outputs[0][0]) and torch.equal(b, outputs[0][1])
    assert not torch.equal(*outputs[0])
    x.requires_grad_()
    loaded(x).sum().backward()
    assert x.grad is not None
    assert torch.equal(loaded.eval()(x), scripted_net[0](x))


@pytest.mark.parametrize("fn, shape", [(fd_torch.dropout, (2, 3, 4, 5)),
                                       (fd_torch.dropout2d, (2, 3, 4, 5))])
def test_the_input_memory_format_is_kept(fn, shape):
    x = torch.randn(shape)
    y = fn(x.to(memory_format=torch.channels_last), 0.5, seed=1)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y, fn(x, 0.5, seed=1))  # the mask follows the logical index
    t = torch.randn(7, 5).t()
    assert fn is fd_torch.dropout2d or fd_torch.dropout(t, 0.5, seed=2).stride() == t.stride()


def test_forward_mode_ad_and_vmap_follow_the_formula():
    from torch.func import jacfwd, jacrev, jvp, vmap

    f = lambda t: fd_torch.dropout(t, 0.5, seed=3)  # noqa: E731
    x, v = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    y, tangent = jvp(f, (x,), (v,))
    assert torch.equal(y, f(x)) and torch.equal(tangent, f(v))
    assert torch.equal(jacfwd(f)(x), jacrev(f)(x))
    jacobian = torch.autograd.functional.jacobian(f, x, vectorize=True)
    assert torch.equal(jacobian, jacrev(f)(x))
    batch = torch.randn(4, 6, 5)
    assert torch.equal(vmap(f)(batch), torch.stack([f(b) for b in batch]))  # seeded: pure
    with pytest.raises(RuntimeError, match="randomness error mode"):  # as torch's dropout
        vmap(lambda t: fd_torch.dropout(t, 0.5))(batch)
    same = vmap(lambda t: fd_torch.dropout(t, 0.5), randomness="same")(torch.ones(4, 64))
    assert all(torch.equal(row, same[0]) for row in same)
    different = vmap(lambda t: fd_torch.dropout(t, 0.5), randomness="different")(
        torch.ones(4, 64))
    assert len({tuple(row.tolist()) for row in different}) == 4
    assert torch.autograd.gradcheck(f, (x.requires_grad_(),), check_forward_ad=True,
                                    check_batched_grad=True, check_batched_forward_grad=True)


def test_fastdrops_modules_pass_the_isinstance_checks_of_mc_dropout_code():
    pairs = [(fd_torch.Dropout, torch.nn.Dropout), (fd_torch.Dropout1d, torch.nn.Dropout1d),
             (fd_torch.Dropout2d, torch.nn.Dropout2d), (fd_torch.Dropout3d, torch.nn.Dropout3d)]
    for ours, theirs in pairs:
        assert isinstance(ours(0.5), theirs)
    net = fd_torch.replace_dropout(torch.nn.Sequential(torch.nn.Dropout(0.2)))
    first = net[0]
    assert fd_torch.replace_dropout(net)[0] is first  # not replaced again
    mc = [m for m in net.modules() if isinstance(m, torch.nn.Dropout)]  # Baal's search
    assert mc == [first]
