"""A few hundred random calls of the functional API against its numpy reference.

Each case draws a shape (0-d, empty and odd sizes included), a dtype (converted ones too), a
layout, a drop rate, an ``out=`` choice (none, the input itself, a fresh buffer, a view that
partly overlaps the input) and a thread count. The seed is fixed, so a failure reproduces;
the case's parameters are in the assertion message.
"""
import numpy as np
import pytest

import fastdrop

N_CASES = 300
SHAPES = [(), (0,), (1,), (3, 0), (63,), (64,), (65,), (7, 13), (2, 3, 129), (300, 257),
          (70001,)]
DTYPES = [np.float32, np.float64, np.float16, np.int32, np.bool_]
LAYOUTS = ["C", "F", "strided"]
OUTS = [None, "itself", "fresh", "overlap-before", "overlap-after"]
FUNCTIONS = ["dropout", "dropout_backward", "relu_dropout", "relu_dropout_backward"]


def _cases():
    rng = np.random.default_rng(20261130)
    for i in range(N_CASES):
        yield dict(
            case=i, fn=FUNCTIONS[rng.integers(len(FUNCTIONS))],
            shape=SHAPES[rng.integers(len(SHAPES))], dtype=DTYPES[rng.integers(len(DTYPES))],
            layout=LAYOUTS[rng.integers(len(LAYOUTS))],
            p=float(rng.choice([0.0, 1.0, 1e-6, 0.999999, rng.uniform()])),
            out=OUTS[rng.integers(len(OUTS))], n_threads=int(rng.integers(1, 4)),
            store_mask=bool(rng.integers(2)), bias=bool(rng.integers(2)),
            seed=int(rng.integers(2**63)), step=int(rng.integers(1000)))


def _input(rng, shape, dtype, layout):
    """Values of ``dtype`` in the asked layout (the API converts them)."""
    if layout == "F":
        x = np.asfortranarray(rng.standard_normal(shape) * 3)
    elif layout == "strided":
        x = (rng.standard_normal(shape + (2,)) * 3)[..., 0]
    else:
        x = rng.standard_normal(shape) * 3
    return x.astype(dtype) if dtype is not np.bool_ else x > 0


def _converted(x):
    kind, size = x.dtype.kind, x.dtype.itemsize
    to = x.dtype if kind == "f" and size in (4, 8) else (
        np.float32 if kind == "f" else np.float64)
    return np.array(x, dtype=to, order="C")


def _out_and_input(choice, xc, rng):
    """(the array to pass as input, out): ``xc`` or a view holding its values."""
    if choice is None:
        return xc, None
    if choice == "itself":
        return xc, xc
    if choice == "fresh":
        return xc, np.full_like(xc, np.nan)
    if xc.size == 0:
        return xc, np.empty_like(xc)
    shift = int(rng.integers(1, 70))
    buf = np.zeros(xc.size + shift, dtype=xc.dtype)
    a, b = buf[shift:], buf[:xc.size]
    x_view, out = (a, b) if choice == "overlap-before" else (b, a)
    x_view[...] = xc.reshape(-1)
    return x_view.reshape(xc.shape), out.reshape(xc.shape)


def _reference(fn, xc, mask, bias, dy):
    keep = mask.to_bool()
    scale = xc.dtype.type(mask.scale)
    if fn == "dropout":
        return np.where(keep, xc * scale, 0).astype(xc.dtype)
    if fn == "dropout_backward":
        return np.where(keep, dy * scale, 0).astype(xc.dtype)
    v = np.maximum(xc + bias if bias is not None else xc, 0)
    y = np.where(keep, v * scale, 0).astype(xc.dtype)
    if fn == "relu_dropout":
        return y
    return np.where(y > 0, dy * scale, 0).astype(xc.dtype)


def _call(case, x_in, xc, out, bias, rng):
    """Run the case; returns (result, mask, dy or None)."""
    fn, kw = case["fn"], dict(seed=case["seed"], step=case["step"], n_threads=case["n_threads"])
    if fn == "dropout":
        y, mask = fastdrop.dropout(x_in, case["p"], out=out, store_mask=case["store_mask"], **kw)
        return y, mask, None
    if fn == "relu_dropout":
        y, mask = fastdrop.relu_dropout(x_in, case["p"], bias=bias, out=out,
                                        store_mask=case["store_mask"], **kw)
        return y, mask, None
    # Backward passes: x_in plays dy; the forward runs first on an independent input.
    forward_x = rng.standard_normal(xc.shape).astype(xc.dtype)
    if fn == "dropout_backward":
        _, mask = fastdrop.dropout(forward_x, case["p"], store_mask=case["store_mask"], **kw)
        return fastdrop.dropout_backward(x_in, mask, out=out,
                                         n_threads=case["n_threads"]), mask, forward_x
    y, mask = fastdrop.relu_dropout(forward_x, case["p"], bias=bias, **kw)
    return fastdrop.relu_dropout_backward(x_in, y, mask, out=out,
                                          n_threads=case["n_threads"]), mask, forward_x


@pytest.mark.parametrize("case", list(_cases()), ids=lambda c: f"case{c['case']}")
def test_functional_api_matches_numpy_reference(case):
    rng = np.random.default_rng(case["case"])
    x = _input(rng, case["shape"], case["dtype"], case["layout"])
    xc = _converted(x)
    x_in, out = _out_and_input(case["out"], xc.copy(), rng)
    if case["out"] is None or case["out"] == "fresh":
        x_in = x  # the unconverted input: the API converts it
    n_features = xc.shape[-1] if xc.ndim else 1
    bias = (rng.standard_normal(n_features).astype(xc.dtype)
            if case["bias"] and case["fn"].startswith("relu") else None)
    result, mask, forward_x = _call(case, x_in, xc, out, bias, rng)

    assert result.shape == xc.shape and result.dtype == xc.dtype, case
    if out is not None:
        assert result is out, case
    if case["fn"].endswith("backward"):
        expected = _reference(case["fn"], forward_x, mask, bias, xc)
    else:
        expected = _reference(case["fn"], xc, mask, bias, None)
    np.testing.assert_array_equal(result, expected, err_msg=str(case))
    # The mask is the one bernoulli_mask draws for this seed and step, whatever the threads.
    drawn = fastdrop.bernoulli_mask(xc.shape, mask.keep_prob, seed=case["seed"],
                                    step=case["step"], n_threads=1)
    np.testing.assert_array_equal(mask.to_bool(), drawn.to_bool(), err_msg=str(case))
