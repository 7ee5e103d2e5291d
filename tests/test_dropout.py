"""Fused passes against few-line numpy references that apply mask.to_bool()."""
import numpy as np
import pytest

import fastdrop
from fastdrop import (Dropout, dropout, dropout_backward, dropout_inference, relu_dropout,
                      relu_dropout_backward)
from fastdrop._simd import set_simd, simd_paths

DTYPES = [np.float32, np.float64]
SHAPES = [(0,), (1,), (63,), (64,), (65,), (1000,), (7, 13), (33, 70001), (2, 3, 129)]
N_THREADS = [1, 2]


def ref_dropout(x, mask):
    return np.where(mask.to_bool(), x * x.dtype.type(mask.scale), 0).astype(x.dtype)


def ref_relu_dropout(x, bias, mask):
    v = x + bias if bias is not None else x
    return np.where(mask.to_bool(), np.maximum(v, 0) * x.dtype.type(mask.scale), 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_threads", N_THREADS)
@pytest.mark.parametrize("mode", ["inverted", "classic"])
def test_forward_and_backward_match_reference(simd, rng, dtype, shape, n_threads, mode):
    x = rng.standard_normal(shape).astype(dtype)
    y, mask = dropout(x, 0.3, seed=11, step=5, mode=mode, n_threads=n_threads)
    assert y.dtype == dtype and y.shape == shape and mask.shape == shape
    np.testing.assert_array_equal(y, ref_dropout(x, mask))
    assert mask.scale == (1 / mask.keep_prob if mode == "inverted" else 1.0)
    dy = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(dropout_backward(dy, mask, n_threads=n_threads),
                                  ref_dropout(dy, mask))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0, 4), (1, 1), (5, 3), (9, 64), (31, 100), (40, 1031)])
@pytest.mark.parametrize("n_threads", N_THREADS)
@pytest.mark.parametrize("p", [0.0, 0.5])
@pytest.mark.parametrize("with_bias", [True, False])
def test_relu_dropout_matches_reference(simd, rng, dtype, shape, n_threads, p, with_bias):
    x = rng.standard_normal(shape).astype(dtype)
    bias = rng.standard_normal(shape[-1]).astype(dtype) if with_bias else None
    y, mask = relu_dropout(x, p, seed=4, step=9, bias=bias, n_threads=n_threads)
    np.testing.assert_array_equal(y, ref_relu_dropout(x, bias, mask))
    dy = rng.standard_normal(shape).astype(dtype)
    dx = relu_dropout_backward(dy, y, mask, n_threads=n_threads)
    expected = np.where(mask.to_bool() & (ref_relu_dropout(x, bias, mask) > 0),
                        dy * dtype(mask.scale), 0)
    np.testing.assert_array_equal(dx, expected)


def test_relu_dropout_mask_equals_dropout_mask():
    x = np.ones((100, 30), dtype=np.float32)
    _, m1 = relu_dropout(x, 0.4, seed=1, step=2)
    _, m2 = dropout(x, 0.4, seed=1, step=2)
    assert np.array_equal(m1.bits, m2.bits)


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_identical_across_thread_counts(dtype):
    x = np.random.default_rng(0).standard_normal((300, 1000)).astype(dtype)
    bias = np.linspace(-1, 1, 1000).astype(dtype)
    results = []
    for n_threads in (1, 2, 3):
        y, mask = relu_dropout(x, 0.5, seed=2, step=1, bias=bias, n_threads=n_threads)
        results.append((y, mask.bits, dropout_backward(x, mask, n_threads=n_threads)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_recomputed_mask_backward_equals_stored(simd, rng, dtype):
    x = rng.standard_normal((17, 301)).astype(dtype)
    _, stored = dropout(x, 0.6, seed=7, step=3)
    _, lazy = dropout(x, 0.6, seed=7, step=3, store_mask=False)
    assert lazy.bits is None and lazy.nbytes == 0
    assert np.array_equal(lazy.to_bool(), stored.to_bool())
    np.testing.assert_array_equal(dropout_backward(x, lazy), dropout_backward(x, stored))


def test_out_is_used_and_in_place_works(rng):
    x = rng.standard_normal((50, 70)).astype(np.float32)
    out = np.empty_like(x)
    y, mask = dropout(x, 0.5, seed=1, out=out)
    assert y is out and np.shares_memory(y, out)
    expected = y.copy()
    z, _ = dropout(x, 0.5, seed=1, out=x)  # in place
    assert z is x and np.array_equal(x, expected)
    dx = dropout_backward(x, mask, out=x)
    assert dx is x
    r, rmask = relu_dropout(x, 0.5, seed=3, out=out)
    assert r is out
    g = relu_dropout_backward(x, r, rmask, out=x)
    assert g is x
    assert dropout_inference(x, 0.5, mode="classic", out=out) is out


def test_p_zero_is_identity_and_draws_nothing(rng):
    x = rng.standard_normal(100)
    y, mask = dropout(x, 0.0, seed=1)
    assert y is x and mask.keep_prob == 1.0 and mask.nbytes == 0
    assert mask.to_bool().all()
    assert dropout_backward(x, mask) is x
    out = np.empty_like(x)
    y, _ = dropout(x, 0.0, seed=1, out=out)
    assert y is out and np.array_equal(out, x)


@pytest.mark.parametrize("mode", ["inverted", "classic"])
def test_p_one_gives_zeros_and_zero_gradient(rng, mode):
    x = rng.standard_normal((4, 5))
    y, mask = dropout(x, 1.0, seed=1, mode=mode)
    assert not y.any() and mask.keep_prob == 0.0 and not mask.to_bool().any()
    assert not dropout_backward(x, mask).any()
    assert not dropout_inference(x, 1.0, mode=mode).any() or mode == "inverted"
    r, rmask = relu_dropout(x, 1.0, seed=1)
    assert not r.any() and not relu_dropout_backward(x, r, rmask).any()


def test_dropped_elements_are_zero_even_for_inf_and_nan():
    x = np.array([np.inf, -np.inf, np.nan] * 1000, dtype=np.float32)
    y, mask = dropout(x, 0.5, seed=3)
    keep = mask.to_bool()
    assert np.all(y[~keep] == 0)
    assert np.array_equal(np.isnan(y), keep & np.isnan(x))


def test_relu_passes_nan_through():
    x = np.full(256, np.nan, dtype=np.float32)
    y, mask = relu_dropout(x, 0.0, seed=0)
    assert np.isnan(y).all()


@pytest.mark.parametrize("mode", ["inverted", "classic"])
def test_inference_matches_expectation_of_training(mode):
    """E[train output] = inference output, estimated over many masks (z-bounded)."""
    p, n_steps = 0.3, 2000
    x = np.linspace(0.5, 2.0, 64)
    draws = np.stack([dropout(x, p, seed=5, step=s, mode=mode)[0] for s in range(n_steps)])
    train_mean = draws.mean(axis=0)
    # with classic dropout, training is unscaled: E[y] = keep * x = inference output
    expected = dropout_inference(x, p, mode=mode)
    keep = dropout(x, p, seed=5, mode=mode)[1].keep_prob
    scale = 1 / keep if mode == "inverted" else 1.0
    stderr = x * scale * np.sqrt(keep * (1 - keep) / n_steps)
    assert np.all(np.abs(train_mean - expected) < 5 * stderr)


def test_classic_inference_uses_realized_keep_probability():
    x = np.ones(3)
    keep = dropout(x, 0.3, seed=0)[1].keep_prob
    assert np.array_equal(dropout_inference(x, 0.3, mode="classic"), x * keep)
    assert dropout_inference(x, 0.3) is x


def finite_difference(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        grad[i] = (f(x + step) - f(x - step)) / (2 * eps)
    return grad


def test_dropout_gradient_by_finite_differences(rng):
    x = rng.standard_normal((6, 9))
    w = rng.standard_normal((6, 9))

    def loss(v):
        return float(np.sum(w * dropout(v, 0.4, seed=3, step=8)[0]))

    _, mask = dropout(x, 0.4, seed=3, step=8)
    np.testing.assert_allclose(dropout_backward(w, mask), finite_difference(loss, x),
                               rtol=1e-6, atol=1e-8)


def test_relu_dropout_gradient_by_finite_differences(rng):
    x = rng.standard_normal((5, 8))
    x[np.abs(x) < 0.05] = 0.5  # keep away from the ReLU kink at 0
    bias = rng.standard_normal(8) * 0.01
    w = rng.standard_normal((5, 8))

    def loss_x(v):
        return float(np.sum(w * relu_dropout(v, 0.5, seed=1, step=2, bias=bias)[0]))

    def loss_b(b):
        return float(np.sum(w * relu_dropout(x, 0.5, seed=1, step=2, bias=b)[0]))

    y, mask = relu_dropout(x, 0.5, seed=1, step=2, bias=bias)
    dx = relu_dropout_backward(w, y, mask)
    np.testing.assert_allclose(dx, finite_difference(loss_x, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dx.sum(axis=0), finite_difference(loss_b, bias),
                               rtol=1e-6, atol=1e-8)


def test_dropout_layer_steps_and_backward(rng):
    layer = Dropout(0.5, seed=42)
    x = rng.standard_normal((10, 20)).astype(np.float32)
    y0 = layer.forward(x)
    assert layer.step == 1
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)),
                                  ref_dropout(np.ones_like(x), layer.mask))
    y1 = layer.forward(x)
    assert not np.array_equal(y0, y1)
    np.testing.assert_array_equal(y0, dropout(x, 0.5, seed=42, step=0)[0])
    assert layer.forward(x, training=False) is x
    assert "Dropout(p=0.5" in repr(layer)
    assert Dropout(0.5).seed != Dropout(0.5).seed
    lazy = Dropout(0.5, seed=42, store_mask=False)
    lazy.forward(x)
    assert lazy.mask.nbytes == 0
    np.testing.assert_array_equal(lazy.backward(x), ref_dropout(x, lazy.mask))
    assert np.array_equal(lazy.mask.to_bool(), dropout(x, 0.5, seed=42, step=0)[1].to_bool())


def test_layer_backward_before_forward_is_an_error():
    with pytest.raises(RuntimeError, match="before a training forward"):
        Dropout(0.5, seed=0).backward(np.ones(3))


def test_non_contiguous_and_list_input_are_accepted(rng):
    x = rng.standard_normal((20, 30))
    y, mask = dropout(x.T, 0.5, seed=1)
    np.testing.assert_array_equal(y, ref_dropout(np.ascontiguousarray(x.T), mask))
    y, mask = dropout([[1.0, 2.0], [3.0, 4.0]], 0.5, seed=1)
    assert y.dtype == np.float64 and y.shape == (2, 2)


@pytest.mark.parametrize("dtype, expected", [(np.int32, np.float64), (np.bool_, np.float64),
                                             (np.float16, np.float32)])
def test_other_real_dtypes_are_converted(dtype, expected):
    y, _ = dropout(np.ones(10, dtype=dtype), 0.5, seed=1)
    assert y.dtype == expected


def test_mask_repr_and_public_api():
    _, mask = dropout(np.ones(100), 0.5, seed=1)
    assert "DropoutMask(shape=(100,), keep_prob=0.5" in repr(mask)
    assert fastdrop.__version__
    for name in fastdrop.__all__:
        assert hasattr(fastdrop, name)


@pytest.mark.skipif(simd_paths()["dropout"] != "avx2", reason="needs the AVX2 path")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.0, 0.5])
def test_portable_and_avx2_paths_agree_bit_for_bit(rng, dtype, p):
    """Signed zeros, infinities and NaN included: the portable code's bit masks give exactly
    what the AVX2 and-masks and max give (NaN passes relu, dropped units are +0)."""
    x = rng.standard_normal((37, 129)).astype(dtype)
    x.flat[::7], x.flat[1::11], x.flat[2::13], x.flat[3::17] = np.nan, -0.0, np.inf, -np.inf
    bias = rng.standard_normal(129).astype(dtype)
    bias[::5] = -0.0
    outs = {}
    for avx2 in (True, False):
        set_simd("avx2" if avx2 else "portable")
        try:
            y1, m1 = relu_dropout(x, p, seed=3, step=2, bias=bias)
            y2, m2 = dropout(x, p, seed=3, step=2, out=np.empty_like(x))
            grads = relu_dropout_backward(x, y1, m1), dropout_backward(x, m2)
            outs[avx2] = [a.view(np.uint8).copy() for a in (y1, y2, *grads)]
        finally:
            set_simd("best")
    for a, b in zip(outs[True], outs[False]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shift", [1, 8, -8, 4096])
@pytest.mark.parametrize("fn", ["dropout", "relu_dropout"])
def test_out_overlapping_the_input_gives_the_separate_buffer_result(rng, shift, fn):
    n = 65536
    buf = rng.standard_normal(n + abs(shift)).astype(np.float32)
    x, out = (buf[shift:], buf[:n]) if shift > 0 else (buf[:n], buf[-shift:])
    expected, _ = getattr(fastdrop, fn)(x.copy(), 0.5, seed=3)
    y, _ = getattr(fastdrop, fn)(x, 0.5, seed=3, out=out)
    assert y is out
    np.testing.assert_array_equal(y, expected)


def test_bias_overlapping_out_is_read_before_it_is_written(rng):
    buf = rng.standard_normal(8 * 64 + 64).astype(np.float32)
    x, out, bias = rng.standard_normal((8, 64)).astype(np.float32), buf[:512], buf[480:544]
    expected, _ = relu_dropout(x, 0.5, seed=1, bias=bias.copy())
    y, _ = relu_dropout(x, 0.5, seed=1, bias=bias, out=out.reshape(8, 64))
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("shape", [(2**32, 2**32), (2**63,), (2**40, 2**40, 0, 2**40)])
def test_shapes_past_what_an_array_can_index_are_refused(shape):
    if 0 in shape:  # zero elements: a valid empty mask, whatever the other dimensions
        assert fastdrop.bernoulli_mask(shape, 0.5, seed=0).size == 0
        return
    with pytest.raises(ValueError, match="more than an array can index"):
        fastdrop.bernoulli_mask(shape, 0.5, seed=0)


@pytest.mark.parametrize("fn", [dropout, relu_dropout])
@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_zero_d_input_keeps_its_shape(fn, p):
    y, mask = fn(np.float32(3), p, seed=1)
    assert y.shape == () and mask.shape == ()
    assert dropout_backward(np.float32(1), mask).shape == ()


def test_a_mask_whose_bits_do_not_fit_its_shape_is_refused():
    mask = fastdrop.bernoulli_mask(1000, 0.5, seed=0)
    mask.shape = (2**28,)
    dy = np.ones(2**28, np.float32)
    with pytest.raises(ValueError, match="mask.bits must hold 4194304 words"):
        dropout_backward(dy, mask)
    with pytest.raises(ValueError, match="mask.bits must hold"):
        mask.to_bool()
    short = fastdrop.DropoutMask((2**20,), 32768, 2.0, 0, 0, bits=np.zeros(3, np.uint64))
    with pytest.raises(ValueError, match="mask.bits must hold"):
        dropout_backward(np.ones(2**20, np.float32), short)
    wrong = fastdrop.DropoutMask((64,), 32768, 2.0, 0, 0, bits=np.zeros(2, np.int32))
    with pytest.raises(TypeError, match="uint64"):
        dropout_backward(np.ones(64, np.float32), wrong)


def ref_shared_dropout(x, noise, p, seed, step, mode="inverted"):
    """The reference for a noise shape: a mask of that shape, broadcast by numpy."""
    mask = fastdrop.bernoulli_mask(noise, 1 - p, seed=seed, step=step)
    scale = x.dtype.type(1 / mask.keep_prob if mode == "inverted" else 1)
    return np.where(mask.to_bool(), x * scale, 0).astype(x.dtype)


NOISE_SHAPES = [((4, 5, 6, 7), (4, 5, 1, 1)),      # channel dropout
                ((4, 5, 6), (4, 1, 6)),            # the same features at every time step
                ((3, 1, 5), (1, 1, 5)),            # shared along the batch
                ((8, 9), (1, 1)),                  # one decision for everything
                ((2, 3, 4, 5), (1, 3, 1, 5)),      # alternating axes
                ((2, 3, 4, 5), (2, 1, 4, 1)),
                ((3, 70, 200), (3, 1, 200)),       # rows of several chunks
                ((2, 40000), (2, 1)),
                ((0, 3), (0, 1)), ((3, 4), (None, 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, noise", NOISE_SHAPES)
@pytest.mark.parametrize("n_threads", [1, 3])
@pytest.mark.parametrize("store_mask", [True, False])
def test_noise_shape_matches_a_broadcast_mask(rng, dtype, shape, noise, n_threads, store_mask):
    x = rng.standard_normal(shape).astype(dtype)
    expected = ref_shared_dropout(x, tuple(n if e is None else e for e, n in zip(noise, shape)),
                                  0.3, 7, 2)
    y, mask = dropout(x, 0.3, seed=7, step=2, noise_shape=noise, n_threads=n_threads,
                      store_mask=store_mask)
    np.testing.assert_array_equal(y, expected)
    assert mask.stored == store_mask and mask.size == np.prod(mask.shape)
    np.testing.assert_array_equal(dropout_backward(x, mask, n_threads=n_threads), expected)


def test_noise_shape_mask_costs_a_bit_per_decision(rng):
    x = rng.standard_normal((32, 16, 8, 8)).astype(np.float32)
    _, mask = dropout(x, 0.5, seed=1, noise_shape=(32, 16, 1, 1))
    assert mask.shape == (32, 16, 1, 1) and mask.nbytes == 32 * 16 // 8
    _, full = dropout(x, 0.5, seed=1, noise_shape=x.shape)  # nothing shared: the plain pass
    assert full.nbytes == x.size // 8


@pytest.mark.parametrize("p", [0.0, 1.0])
@pytest.mark.parametrize("mode", ["inverted", "classic"])
def test_noise_shape_with_p_zero_or_one(rng, p, mode):
    x = rng.standard_normal((3, 4, 5))
    y, mask = dropout(x, p, seed=0, mode=mode, noise_shape=(3, 1, 1))
    np.testing.assert_array_equal(y, x if p == 0 else np.zeros_like(x))
    np.testing.assert_array_equal(dropout_backward(x, mask), y)


def test_noise_shape_in_place_and_layer(rng):
    x = rng.standard_normal((6, 5, 4)).astype(np.float32)
    expected = ref_shared_dropout(x, (6, 1, 4), 0.5, 3, 0)
    y, _ = dropout(x, 0.5, seed=3, noise_shape=(6, 1, 4), out=x)
    assert y is x
    np.testing.assert_array_equal(x, expected)
    layer = Dropout(0.5, seed=3, noise_shape=(6, 1, 4))
    z = rng.standard_normal((6, 5, 4)).astype(np.float32)
    np.testing.assert_array_equal(layer.forward(z), ref_shared_dropout(z, (6, 1, 4), 0.5, 3, 0))
    assert layer.mask.shape == (6, 1, 4)


def test_noise_shape_keep_rate_and_mean_are_right():
    """Whole channels go: per channel all-or-nothing, kept share within 4.4 sigma of 1 - p."""
    x = np.ones((400, 100, 64), np.float32)
    y, _ = dropout(x, 0.25, seed=9, noise_shape=(400, 100, 1))
    per_channel = y.reshape(40000, 64)
    assert np.all((per_channel == 0).all(axis=1) | (per_channel != 0).all(axis=1))
    kept = (per_channel[:, 0] != 0).mean()
    assert abs(kept - 0.75) < 4.4 * np.sqrt(0.75 * 0.25 / 40000)


@pytest.mark.parametrize("noise, message", [
    ((4, 5), "one entry per axis of the input, 3"),
    ((4, 2, 6), "entries must be 1 or the length"),
    ((4, "a", 6), "entries must be ints or None"),
    (5, "must be a tuple with one entry per axis")])
def test_bad_noise_shape_is_refused(noise, message):
    x = np.ones((4, 5, 6))
    with pytest.raises((ValueError, TypeError), match=message):
        dropout(x, 0.5, seed=0, noise_shape=noise)


def test_backward_refuses_a_mask_that_does_not_broadcast():
    _, mask = dropout(np.ones((4, 5)), 0.5, seed=0, noise_shape=(4, 1))
    with pytest.raises(ValueError, match="or a shape that mask broadcasts to"):
        dropout_backward(np.ones((3, 5)), mask)
