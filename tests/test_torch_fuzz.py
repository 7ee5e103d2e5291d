"""Random calls of fastdrop.torch's entry points against torch's own dropout and fastdrop's
numpy API.

Each case draws an entry point (the functions, the modules, a replaced torch module), a shape
(0-d, empty and odd sizes, the ranks torch deprecates), a dtype, a layout (contiguous,
transposed, channels_last, sliced), a rate, training or eval, in place or not, stored or
recomputed masks and a thread count. torch's own function on the same input gives what must
match: the error's type (or a warning), the output's shape, dtype and strides, and which axes
share a decision; fastdrop's numpy API gives the values bit for bit. The seed is fixed, so a
failure reproduces; the case is in the assertion message.
"""
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", minversion="2.4")
fd_torch = pytest.importorskip("fastdrop.torch")

import fastdrop  # noqa: E402
from test_torch import _shared_axes  # noqa: E402

N_CASES = 200
SHAPES = [(), (0,), (1,), (65,), (3, 0), (7, 13), (2, 3, 5), (4, 3, 2, 5), (2, 3, 2, 2, 3),
          (2, 2, 1, 2, 2, 3)]
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
LAYOUTS = ["contiguous", "transposed", "channels_last", "sliced"]
ENTRIES = ["dropout", "dropout1d", "dropout2d", "dropout3d", "module", "replaced"]
THREADS = [None, 1, 2, 3, -1]


def _cases():
    rng = np.random.default_rng(20261206)
    for i in range(N_CASES):
        yield dict(case=i, entry=ENTRIES[rng.integers(len(ENTRIES))],
                   shape=SHAPES[rng.integers(len(SHAPES))],
                   dtype=DTYPES[rng.integers(len(DTYPES))],
                   layout=LAYOUTS[rng.integers(len(LAYOUTS))],
                   p=float(rng.choice([0.0, 1.0, 1e-6, 0.999999, rng.uniform()])),
                   training=bool(rng.random() < 0.8), inplace=bool(rng.integers(2)),
                   store_mask=bool(rng.integers(2)), n_threads=THREADS[rng.integers(5)],
                   nd=int(rng.integers(4)), seed=int(rng.integers(2**63)))


def _input(shape, dtype, layout, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype) + 3  # no zeros
    if layout == "transposed" and x.dim() >= 2:
        return x.transpose(0, -1).contiguous().transpose(0, -1)
    if layout == "channels_last" and x.dim() == 4:
        return x.to(memory_format=torch.channels_last)
    if layout == "sliced" and x.dim() >= 1:
        return torch.cat([x, x], dim=-1)[..., ::2]
    return x


def _call(case, impl, x, seed):
    """Run the case on fastdrop (impl='fd', with its keywords) or torch (impl='torch')."""
    entry, p, training, inplace = case["entry"], case["p"], case["training"], case["inplace"]
    extra = dict(seed=seed, store_mask=case["store_mask"], n_threads=case["n_threads"])
    if entry in ("module", "replaced"):
        kind = {0: "Dropout", 1: "Dropout1d", 2: "Dropout2d", 3: "Dropout3d"}[case["nd"]]
        torch_module = getattr(torch.nn, kind)(p, inplace).train(training)
        if impl == "torch":
            module = torch_module
        elif entry == "module":
            module = getattr(fd_torch, kind)(p, inplace, **extra).train(training)
        else:
            module = fd_torch.replace_dropout(torch_module, store_mask=case["store_mask"],
                                              n_threads=case["n_threads"])
        return module(x)
    fn = getattr(torch.nn.functional if impl == "torch" else fd_torch, entry)
    if impl == "torch":
        return fn(x, p, training, inplace)
    return fn(x, p, training, inplace, **({k: v for k, v in extra.items()
                                           if entry == "dropout" or k != "noise_shape"}))


def _outcome(case, impl, x, seed):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            y = _call(case, impl, x.clone(memory_format=torch.preserve_format), seed)
        except Exception as error:  # noqa: BLE001 - the type is what is compared
            return error, caught
    return y, caught


@pytest.mark.parametrize("case", list(_cases()), ids=lambda c: str(c["case"]))
def test_random_calls_behave_as_torchs_dropout_and_give_fastdrops_bits(case):
    seed = case["seed"]
    x = _input(case["shape"], case["dtype"], case["layout"], seed % 2**31)
    theirs, their_warnings = _outcome(case, "torch", x, seed)
    ours, our_warnings = _outcome(case, "fd", x, seed)
    if isinstance(theirs, Exception):
        assert isinstance(ours, type(theirs)), (case, theirs, ours)
        return
    assert not isinstance(ours, Exception), (case, ours)
    assert bool(their_warnings) == bool(our_warnings), (case, their_warnings, our_warnings)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, case
    if ours.numel() > 1 and x.dim() > 1:
        assert ours.stride() == theirs.stride(), (case, ours.stride(), theirs.stride())
    p, training = case["p"], case["training"]
    if not training or p == 0 or ours.numel() == 0:
        assert torch.equal(ours, x), case
        return
    nd = case["nd"] if case["entry"] in ("module", "replaced") else (
        0 if case["entry"] == "dropout" else int(case["entry"][-2]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noise = fd_torch._channel_noise(tuple(x.shape), nd, True) if nd else tuple(x.shape)
    varying = {a for a in range(x.dim()) if x.shape[a] > 1} - set(_shared_axes(theirs))
    assert varying <= {a for a, e in enumerate(noise) if e != 1}, (case, noise)  # torch's axes
    if case["entry"] == "replaced":
        return  # seeded by torch's generator: the values are checked by the other entries
    values = x.float() if x.dtype in DTYPES[2:] else x
    want, _ = fastdrop.dropout(values.contiguous().numpy(), p, seed=seed, step=0,
                               noise_shape=noise)
    assert torch.equal(ours, torch.from_numpy(want).to(x.dtype)), case
