"""fastdrop.torch held to torch's own dropout tests.

The checks of torch 2.13's ``test/nn/test_dropout.py`` (ported: each runs on torch's module and
on fastdrop's, so a check that torch itself fails here cannot pass for fastdrop by accident),
and the dropout OpInfo sample inputs of ``common_methods_invocations`` through gradcheck,
gradgradcheck, forward-mode AD and batched gradients with the flags torch sets for its own op.
One documented difference is marked: fastdrop's keep probability is a multiple of 2^-16, so a
p of 1e-10 still scales kept elements by 65536/65535 (README, "From PyTorch")."""
import itertools
import random

import pytest

torch = pytest.importorskip("torch", minversion="2.4")
fd_torch = pytest.importorskip("fastdrop.torch")
F, nn = torch.nn.functional, torch.nn

IMPLEMENTATIONS = {"torch": nn, "fastdrop": fd_torch}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def impl(request):
    return IMPLEMENTATIONS[request.param]


def _check_dropout(cls, input, memory_format=torch.contiguous_format, decisions=None):
    """torch's _test_dropout: mean, layout of output and gradient, in place, eval mode. Its
    0.05 bound on the mean is widened to 5 binomial standard errors where few decisions make
    it a coin toss (Dropout1d's 10-15 x 10-15 channels: 0.05 is about 2 of them)."""
    p = 0.2
    input = input.fill_(1 - p)
    bound = max(0.05, 5 * (p * (1 - p) / (decisions or input.numel())) ** 0.5)
    for inplace in (False, True):
        module = cls(p, inplace)
        input_var = input.clone(memory_format=memory_format).requires_grad_()
        output = module(input_var + 0 if inplace else input_var)
        assert output.is_contiguous(memory_format=memory_format)
        assert abs(output.data.float().mean() - (1 - p)) < bound
        output.backward(input)
        assert input_var.grad.is_contiguous(memory_format=memory_format)
        assert abs(input_var.grad.data.float().mean() - (1 - p)) < bound
    for inplace in (True, False):
        assert torch.equal(input, cls(p, inplace).eval()(input))
    repr(module), str(module)


def _check_discontiguous(cls, p, memory_format=torch.contiguous_format):
    """torch's _test_dropout_discontiguous: layout and values kept at p = 0 or nearly 0."""
    inp = torch.ones(2, 3, 3, 3)
    discontiguous = torch.empty(2, 3, 3, 6, memory_format=memory_format)[..., ::2]
    discontiguous.copy_(inp)
    out = cls(p=p)(discontiguous)
    if p != 0:
        assert out.is_contiguous(memory_format=memory_format)
    torch.testing.assert_close(discontiguous, out)


def _check_channel_zero(dropout, input):
    """Each channel of a positive input is all kept or all dropped."""
    result = dropout(input)
    channel_numel = int(torch.tensor(input.shape[2:]).prod())
    for b, c in itertools.product(range(input.shape[0]), range(input.shape[1])):
        assert result[b, c].count_nonzero() in (0, channel_numel)


def _check_no_batch(dropout, input):
    """An input without its batch axis draws what the same input with one draws."""
    state = torch.get_rng_state()
    unbatched = dropout(input.clone())
    torch.set_rng_state(state)
    batched = dropout(input.clone().unsqueeze(0)).squeeze(0)
    assert torch.equal(unbatched, batched)


def test_invalid_dropout_p(impl):
    for cls in (impl.Dropout, impl.Dropout1d, impl.Dropout2d, impl.Dropout3d):
        for p in (-0.1, 1.1):
            with pytest.raises(ValueError):
                cls(p)
    for p in (-0.1, 1.1):
        with pytest.raises(ValueError):
            (F if impl is nn else fd_torch).dropout(torch.ones(1), p)


def test_Dropout(impl):
    torch.manual_seed(0)
    _check_dropout(impl.Dropout, torch.empty(1000))
    _check_dropout(impl.Dropout, torch.empty(1000).bfloat16())
    for memory_format in (torch.contiguous_format, torch.channels_last):
        _check_discontiguous(impl.Dropout, 0, memory_format)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_Dropout_near_zero_p_is_the_identity(impl, memory_format):
    if impl is fd_torch:
        pytest.xfail("documented: keep probability in steps of 2^-16, so p = 1e-10 scales "
                     "kept elements by 65536/65535")
    _check_discontiguous(impl.Dropout, 1e-10, memory_format)


def test_Dropout_stride_mean_preserve(impl):
    inp = torch.ones(2, 3, 4, 5)
    torch.manual_seed(0)
    for perm in itertools.permutations((0, 1, 2, 3)):
        inverse = tuple(perm.index(i) for i in range(4))
        for shift in [(0, 0), (1, 0), (0, 1), (1, 1)]:
            for p in [0.3, 0.5, 0.7]:
                permuted = inp.permute(perm).contiguous().permute(inverse)
                permuted = permuted[shift[0]:, shift[1]:, :, :]
                out = impl.Dropout(p=p)(permuted)
                assert out.permute(perm).is_contiguous()
                torch.testing.assert_close(inp.mean(), out.mean(), rtol=0.5, atol=0.5)
                assert not torch.equal(permuted, out)


def test_Dropout1d(impl):
    random.seed(0), torch.manual_seed(0)
    N, C, L = random.randint(10, 15), random.randint(10, 15), random.randint(10, 15)
    _check_dropout(impl.Dropout1d, torch.empty(N, C, L, dtype=torch.double),
                   decisions=N * C)
    for shape, rank in [((1, 2, 2, 2), 4), ((2,), 1)]:
        with pytest.raises(RuntimeError, match=f"Expected 2D or 3D input, but received a "
                                               f"{rank}D input"):
            impl.Dropout1d(p=0.5)(torch.rand(shape))
    input = torch.rand(50, 2)
    _check_no_batch(impl.Dropout1d(p=0.5), input)
    _check_no_batch(impl.Dropout1d(p=0.5, inplace=True), input)
    _check_channel_zero(impl.Dropout1d(p=0.5), torch.ones(10, 4, 2))
    _check_channel_zero(impl.Dropout1d(p=0.5, inplace=True), torch.ones(10, 4, 2))


def test_Dropout2d(impl):
    random.seed(0), torch.manual_seed(0)
    b, w, h = (random.randint(1, 5) for _ in range(3))
    input = torch.empty(1000, b, w, h)
    _check_dropout(impl.Dropout2d, input)
    _check_dropout(impl.Dropout2d, input, memory_format=torch.channels_last)
    for memory_format in (torch.contiguous_format, torch.channels_last):
        _check_discontiguous(impl.Dropout2d, 0, memory_format)
    for shape, warns in [((1, 2, 2, 2, 2), "Received a 5-D input to dropout2d"),
                         ((1, 2), "Received a 2-D input to dropout2d"),
                         ((1, 2, 2), "assuming that channel-wise 1D dropout behavior")]:
        with pytest.warns(UserWarning, match=warns):
            impl.Dropout2d(p=0.5)(torch.rand(shape))
    _check_channel_zero(impl.Dropout2d(p=0.5), torch.ones(10, 4, 2, 2))
    _check_channel_zero(impl.Dropout2d(p=0.5, inplace=True), torch.ones(10, 4, 2, 2))


def test_Dropout3d(impl):
    random.seed(0), torch.manual_seed(0)
    b, w, h, d = random.randint(1, 5), random.randint(1, 5), random.randint(1, 5), \
        random.randint(1, 2)
    _check_dropout(impl.Dropout3d, torch.empty(1000, b, d, w, h))
    for memory_format in (torch.contiguous_format, torch.channels_last):
        _check_discontiguous(impl.Dropout3d, 0, memory_format)
    for shape, warns in [((1, 2, 2, 2, 2, 2), "Received a 6-D input to dropout3d"),
                         ((1, 2, 2), "Received a 3-D input to dropout3d")]:
        with pytest.warns(UserWarning, match=warns):
            impl.Dropout3d(p=0.5)(torch.rand(shape))
    input = torch.rand(50, 2, 2, 2)
    _check_no_batch(impl.Dropout3d(p=0.5), input)
    _check_no_batch(impl.Dropout3d(p=0.5, inplace=True), input)
    _check_channel_zero(impl.Dropout3d(p=0.5), torch.ones(10, 4, 2, 2, 2))
    _check_channel_zero(impl.Dropout3d(p=0.5, inplace=True), torch.ones(10, 4, 2, 2, 2))


def test_empty_dropout(impl):
    x = torch.tensor([])
    assert (F if impl is nn else fd_torch).dropout(x).size() == x.size()


# torch 2.13's OpInfo entries for its dropouts: name, sample input shapes, and the autograd
# checks torch runs on them (check_batched_forward_grad is off for torch's own op too).
_OPINFO_SHAPES = {"dropout": [(5, 5), (5,), ()], "dropout2d": [(5, 5, 5), (5, 5, 5, 5)],
                  "dropout3d": [(5, 5, 5, 5), (5, 5, 5, 5, 5)]}
_OPINFO_SAMPLES = [(name, shape, {"p": p, "training": t})
                   for name, shapes in _OPINFO_SHAPES.items() for shape in shapes
                   for p in (0.0, 0.5, 1.0) for t in (True, False)] + [
    (name, shapes[-1], {}) for name, shapes in _OPINFO_SHAPES.items()]


def _seeded(fn, **kwargs):
    """torch's wrapper_set_seed: every call draws the same mask."""
    def call(x):
        torch.manual_seed(42)
        return fn(x, **kwargs)
    return call


def test_the_opinfo_table_is_torchs():
    """Where torch's internal test helpers import, the table above is their sample list."""
    pytest.importorskip("expecttest")
    from torch.testing._internal.common_methods_invocations import op_db
    theirs = []
    for op in op_db:
        if op.name in {f"nn.functional.{n}" for n in _OPINFO_SHAPES}:
            theirs += [(op.name.split(".")[-1], tuple(s.input.shape), s.kwargs)
                       for s in op.sample_inputs("cpu", torch.float64, requires_grad=True)]
            assert op.supports_forward_ad and op.supports_fwgrad_bwgrad
            assert op.check_batched_grad and op.check_batched_gradgrad
    assert sorted(map(repr, theirs)) == sorted(map(repr, _OPINFO_SAMPLES))


@pytest.mark.filterwarnings("ignore:dropout2d. Received a 3D input")
@pytest.mark.parametrize("name, shape, kwargs", _OPINFO_SAMPLES)
@pytest.mark.parametrize("implementation", ["torch", "fastdrop"])
def test_opinfo_samples_pass_gradcheck_and_gradgradcheck(name, shape, kwargs, implementation):
    fn = getattr(F if implementation == "torch" else fd_torch, name)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    f = _seeded(fn, **kwargs)
    fast = x.numel() > 125  # torch's fast mode: a random projection of the Jacobian
    assert torch.autograd.gradcheck(f, (x,), check_forward_ad=True, check_batched_grad=True,
                                    check_backward_ad=True, check_undefined_grad=True,
                                    fast_mode=fast)
    assert torch.autograd.gradgradcheck(f, (x,), check_fwd_over_rev=True,
                                        check_rev_over_rev=True, check_batched_grad=True,
                                        fast_mode=fast)
