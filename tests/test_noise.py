"""Gaussian dropout, alpha dropout and DropConnect against numpy references, their statistics
with stated bounds, and their gradients by finite differences."""
import math

import numpy as np
import pytest

import fastdrop
from fastdrop import (AlphaDropout, DropConnectLinear, GaussianDropout, _kernels,
                      alpha_dropout, alpha_dropout_backward, bernoulli_mask, dropconnect_linear,
                      dropconnect_linear_backward, gaussian_dropout, gaussian_dropout_backward)
from fastdrop._noise import (GAUSSIAN_TABLE_KS, GAUSSIAN_TABLE_MAX, SELU_ALPHA, SELU_LAMBDA,
                             _table_ks_distance, alpha_dropout_params)
from fastdrop._plumbing import gaussian_table as _gaussian_table
from fastdrop._plumbing import standard_normal_table as _standard_normal_table

DTYPES = [np.float32, np.float64]
SHAPES = [(0,), (1,), (63,), (64,), (65,), (1000,), (7, 13), (33, 70001)]
N_THREADS = [1, 3]
Z_LIMIT = 5.0  # a correct implementation exceeds 5 standard errors with probability ~6e-7

_M0, _M1, _W0, _W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
_LO = np.uint64(0xFFFFFFFF)


def reference_uniforms(seed, step, n, first_word=0):
    """The 16-bit uniform of each of n elements, from a vectorized numpy Philox4x32-10 and
    the layout _philox.h documents (element 64 g + 8 k + l: half k & 1 of output k >> 1 of
    block 8 g + l)."""
    n_words = -(-n // 64)
    block = (np.arange(8 * n_words, dtype=np.uint64) + np.uint64(8 * first_word))
    c = [block & _LO, block >> np.uint64(32), np.full_like(block, step & 0xFFFFFFFF),
         np.full_like(block, step >> 32)]
    k0, k1 = seed & 0xFFFFFFFF, seed >> 32
    for _ in range(10):
        p0, p1 = c[0] * np.uint64(_M0), c[2] * np.uint64(_M1)
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ np.uint64(k0), p1 & _LO,
             (p0 >> np.uint64(32)) ^ c[3] ^ np.uint64(k1), p0 & _LO]
        k0, k1 = (k0 + _W0) & 0xFFFFFFFF, (k1 + _W1) & 0xFFFFFFFF
    x = np.stack(c, axis=1).reshape(n_words, 8, 4)          # word, lane l, output w
    halves = np.stack([x & np.uint64(0xFFFF), x >> np.uint64(16)], axis=-1)  # ..., w, h
    u = halves.reshape(n_words, 8, 8).transpose(0, 2, 1)    # word, k = 2 w + h, lane l
    return u.reshape(-1)[:n].astype(np.int64)


def test_reference_uniforms_follow_the_scalar_block_function():
    seed, step = 2**64 - 3, 2**33 + 5
    u = reference_uniforms(seed, step, 128, first_word=7)
    for g in (7, 8):
        for lane in range(8):
            block = 8 * g + lane
            x = _kernels.philox4x32_10((block & 0xFFFFFFFF, block >> 32, step & 0xFFFFFFFF,
                                        step >> 32), (seed & 0xFFFFFFFF, seed >> 32))
            for k in range(8):
                assert u[64 * (g - 7) + 8 * k + lane] == (x[k >> 1] >> (16 * (k & 1))) & 0xFFFF


# ---------------------------------------------------------------- Gaussian dropout
def ref_gaussian(x, p, seed, step):
    table = _gaussian_table(p, x.dtype)
    return (x.reshape(-1) * table[reference_uniforms(seed, step, x.size)]).reshape(x.shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_threads", N_THREADS)
def test_gaussian_dropout_matches_reference(simd, rng, dtype, shape, n_threads):
    x = rng.standard_normal(shape).astype(dtype)
    y, noise = gaussian_dropout(x, 0.3, seed=2**63 + 9, step=4, n_threads=n_threads)
    assert y.dtype == dtype and y.shape == shape
    np.testing.assert_array_equal(y, ref_gaussian(x, 0.3, 2**63 + 9, 4))
    dy = rng.standard_normal(shape).astype(dtype)
    np.testing.assert_array_equal(gaussian_dropout_backward(dy, noise, n_threads=n_threads),
                                  ref_gaussian(dy, 0.3, 2**63 + 9, 4))


def test_gaussian_noise_multipliers_and_in_place(rng):
    x = rng.standard_normal((40, 70)).astype(np.float32)
    y, noise = gaussian_dropout(x, 0.5, seed=1, step=2)
    np.testing.assert_array_equal(y, x * noise.multipliers(np.float32))
    z = x.copy()
    assert gaussian_dropout(z, 0.5, seed=1, step=2, out=z)[0] is z
    np.testing.assert_array_equal(z, y)
    same, _ = gaussian_dropout(x, 0.0, seed=1)
    assert same is x
    assert noise.std == 1.0 and "std=1" in repr(noise)


def test_gaussian_table_is_a_standardized_normal_within_its_stated_error():
    z = _standard_normal_table()
    assert z.size == 65536 and abs(z.mean()) < 1e-15 and abs(np.mean(z * z) - 1) < 1e-12
    assert np.all(np.diff(z) > 0) and np.array_equal(z, -z[::-1])
    assert np.abs(z).max() <= GAUSSIAN_TABLE_MAX
    assert _table_ks_distance() <= GAUSSIAN_TABLE_KS


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_gaussian_noise_mean_and_variance_over_1e7_elements(p):
    m = gaussian_dropout(np.ones(10**7), p, seed=31, step=0)[0]
    var = p / (1 - p)
    # standard errors: sd / sqrt(n) for the mean; sqrt((E[(m-1)^4] - var^2) / n) for the
    # variance, with the table's fourth moment (kurtosis 2.9992, not 3)
    z4 = np.mean(_standard_normal_table() ** 4)
    se_mean = math.sqrt(var / m.size)
    se_var = math.sqrt((z4 - 1) * var**2 / m.size)
    assert abs(m.mean() - 1) < Z_LIMIT * se_mean
    assert abs(m.var() - var) < Z_LIMIT * se_var


# ---------------------------------------------------------------- alpha dropout
def ref_alpha(x, mask):
    a, b, fill = alpha_dropout_params(mask.keep_prob)
    t = x * x.dtype.type(a) + x.dtype.type(b)
    return np.where(mask.to_bool(), t, x.dtype.type(fill)).astype(x.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n_threads", N_THREADS)
@pytest.mark.parametrize("store_mask", [True, False])
def test_alpha_dropout_matches_reference(simd, rng, dtype, shape, n_threads, store_mask):
    x = rng.standard_normal(shape).astype(dtype)
    y, mask = alpha_dropout(x, 0.1, seed=5, step=3, n_threads=n_threads, store_mask=store_mask)
    # the decisions are Bernoulli dropout's for the same draw
    expected_mask = bernoulli_mask(shape, mask.keep_prob, seed=5, step=3)
    if shape[0]:
        assert mask.stored == store_mask
    np.testing.assert_array_equal(mask.to_bool(), expected_mask.to_bool())
    np.testing.assert_array_equal(y, ref_alpha(x, mask))
    dy = rng.standard_normal(shape).astype(dtype)
    expected = np.where(mask.to_bool(), dy * dtype(mask.scale), 0).astype(dtype)
    np.testing.assert_array_equal(alpha_dropout_backward(dy, mask, n_threads=n_threads),
                                  expected)


def test_alpha_dropout_params_keep_mean_zero_and_variance_one():
    for q in (0.5, 0.9, 0.95):
        a, b, fill = alpha_dropout_params(q)
        alpha_prime = -SELU_LAMBDA * SELU_ALPHA
        # E[y] and E[y^2] for x ~ N(0, 1) kept with probability q
        mean = q * b + (1 - q) * fill
        second = q * (a * a + b * b) + (1 - q) * fill**2
        assert abs(mean) < 1e-12 and abs(second - 1) < 1e-12
        assert fill == pytest.approx(a * alpha_prime + b)


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_alpha_dropout_output_mean_zero_variance_one_over_1e7_elements(p):
    x = np.random.default_rng(7).standard_normal(10**7)
    y = alpha_dropout(x, p, seed=8)[0]
    # standard errors from the sample itself: sd(y) / sqrt(n) and sd(y^2) / sqrt(n)
    se_mean = y.std() / math.sqrt(y.size)
    se_second = (y * y).std() / math.sqrt(y.size)
    assert abs(y.mean()) < Z_LIMIT * se_mean
    assert abs(np.mean(y * y) - 1) < Z_LIMIT * se_second


def test_alpha_dropout_p0_is_identity_and_stored_equals_recomputed(rng):
    x = rng.standard_normal(1000)
    y, mask = alpha_dropout(x, 0.0, seed=1)
    assert y is x and mask.scale == 1.0
    dy = rng.standard_normal((37, 41))
    _, stored = alpha_dropout(dy, 0.2, seed=4, step=9)
    _, recomputed = alpha_dropout(dy, 0.2, seed=4, step=9, store_mask=False)
    assert recomputed.bits is None
    np.testing.assert_array_equal(alpha_dropout_backward(dy, stored),
                                  alpha_dropout_backward(dy, recomputed))


# ---------------------------------------------------------------- DropConnect
def test_dropconnect_linear_matches_reference(rng):
    x, w, b = rng.standard_normal((9, 30)), rng.standard_normal((20, 30)), rng.standard_normal(20)
    y, mask = dropconnect_linear(x, w, 0.4, bias=b, seed=3, step=2)
    masked = np.where(bernoulli_mask(w.shape, mask.keep_prob, seed=3, step=2).to_bool(),
                      w / mask.keep_prob, 0)
    np.testing.assert_allclose(y, x @ masked.T + b, rtol=1e-12)
    dy = rng.standard_normal((9, 20))
    dx, dw, db = dropconnect_linear_backward(dy, x, w, mask)
    np.testing.assert_allclose(dx, dy @ masked, rtol=1e-12)
    np.testing.assert_allclose(dw, np.where(masked != 0, dy.T @ x / mask.keep_prob, 0),
                               rtol=1e-12)
    np.testing.assert_allclose(db, dy.sum(axis=0))


def test_dropconnect_expected_output_equals_the_dense_layer():
    # 10^7 weight decisions: 100 draws of a (1000, 100) weight matrix
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(100), rng.standard_normal((1000, 100))
    p, draws = 0.5, 100
    ys = np.stack([dropconnect_linear(x, w, p, seed=11, step=s)[0] for s in range(draws)])
    dense = x @ w.T
    # each output's per-draw variance: sum_i x_i^2 w_ji^2 (1 - q) / q
    se = np.sqrt((w * w) @ (x * x) * p / (1 - p) / draws)
    z = (ys.mean(axis=0) - dense) / se
    assert np.abs(z).max() < 5.5  # the largest of 1000 |z|: exceeds 5.5 with probability 4e-5
    assert abs(z.mean()) < Z_LIMIT / math.sqrt(z.size)


# ---------------------------------------------------------------- finite differences
def _numeric_gradient(f, x, eps=1e-6):
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        hi = f()
        flat[i] = old - eps
        lo = f()
        flat[i] = old
        gflat[i] = (hi - lo) / (2 * eps)
    return g


def test_gradients_by_finite_differences(rng):
    c = rng.standard_normal((5, 8))
    x = rng.standard_normal((5, 8))
    y, noise = gaussian_dropout(x, 0.3, seed=2, step=1)
    np.testing.assert_allclose(gaussian_dropout_backward(c, noise), _numeric_gradient(
        lambda: np.sum(c * gaussian_dropout(x, 0.3, seed=2, step=1)[0]), x), rtol=1e-6)
    y, mask = alpha_dropout(x, 0.3, seed=2, step=1)
    np.testing.assert_allclose(alpha_dropout_backward(c, mask), _numeric_gradient(
        lambda: np.sum(c * alpha_dropout(x, 0.3, seed=2, step=1)[0]), x), rtol=1e-6,
        atol=1e-9)
    w, b = rng.standard_normal((6, 8)), rng.standard_normal(6)
    cy = rng.standard_normal((5, 6))
    loss = lambda: np.sum(cy * dropconnect_linear(x, w, 0.3, bias=b, seed=2, step=1)[0])  # noqa: E731
    _, mask = dropconnect_linear(x, w, 0.3, bias=b, seed=2, step=1)
    dx, dw, db = dropconnect_linear_backward(cy, x, w, mask)
    for analytic, param in ((dx, x), (dw, w), (db, b)):
        np.testing.assert_allclose(analytic, _numeric_gradient(loss, param), rtol=1e-6,
                                   atol=1e-9)


# ---------------------------------------------------------------- layers and errors
def test_layers_draw_new_noise_each_step_and_are_identity_at_inference(rng):
    x = rng.standard_normal((16, 64))
    for layer in (GaussianDropout(0.3, seed=1), AlphaDropout(0.1, seed=1)):
        y0, y1 = layer.forward(x), layer.forward(x)
        assert layer.step == 2 and not np.array_equal(y0, y1)
        assert layer.backward(np.ones_like(x)).shape == x.shape
        np.testing.assert_array_equal(layer.forward(x, training=False), x)
        assert "step=2" in repr(layer)
    dc = DropConnectLinear(rng.standard_normal((10, 64)), np.zeros(10), 0.5, seed=4)
    y = dc.forward(x)
    dx = dc.backward(np.ones_like(y))
    assert dx.shape == x.shape and dc.grad_weight.shape == (10, 64) and dc.grad_bias.shape == (10,)
    np.testing.assert_allclose(dc.forward(x, training=False), x @ dc.weight.T)


@pytest.mark.parametrize("call, match", [
    (lambda: gaussian_dropout(np.ones(3), 1.0, seed=0), r"p must be in \[0, 1\) here, got 1.0"),
    (lambda: alpha_dropout(np.ones(3), 1.0, seed=0), r"p must be in \[0, 1\) here"),
    (lambda: GaussianDropout(0.5).backward(np.ones(3)), "before a training forward pass"),
    (lambda: gaussian_dropout(np.ones(3), 0.5, seed=0)[1].multipliers(np.int64),
     "dtype must be float32 or float64, got int64"),
    (lambda: gaussian_dropout_backward(np.ones(3), "noise"), "noise must be a GaussianNoise"),
    (lambda: gaussian_dropout_backward(np.ones(4), gaussian_dropout(np.ones(3), 0.5, seed=0)[1]),
     r"dy must have the noise's shape \(3,\), got \(4,\)"),
    (lambda: dropconnect_linear(np.ones((2, 3)), np.ones((4, 5)), 0.5, seed=0),
     r"x must have in_features=5 on its last axis"),
    (lambda: dropconnect_linear(np.ones(3), np.ones(3), 0.5, seed=0), "weight must be 2-d"),
    (lambda: dropconnect_linear(np.ones(3), np.ones((2, 3)), 0.5, bias=np.ones(3), seed=0),
     r"bias must have shape \(2,\), got \(3,\)"),
])
def test_errors_name_the_argument(call, match):
    with pytest.raises((ValueError, TypeError, RuntimeError), match=match):
        call()


def test_public_names():
    for name in ("gaussian_dropout", "alpha_dropout", "dropconnect_linear", "GaussianDropout",
                 "AlphaDropout", "DropConnectLinear"):
        assert name in fastdrop.__all__


@pytest.mark.parametrize("args, error, match", [
    (((3,), 1.0, 0, 0), ValueError, r"p must be in \[0, 1\) for Gaussian noise .* got 1.0"),
    (((3,), 2.0, 0, 0), ValueError, r"p must be in \[0, 1\], got 2.0"),
    (((3,), float("nan"), 0, 0), ValueError, "p must be in"),
    (((3,), 0.5, -1, 0), ValueError, r"seed must be in \[0, 2\*\*64\), got -1"),
    (((3,), 0.5, 0, 2**64), ValueError, "step must be in"),
    (((-3,), 0.5, 0, 0), ValueError, "shape must have non-negative dimensions"),
])
def test_gaussian_noise_checks_its_arguments(args, error, match):
    with pytest.raises(error, match=match):
        fastdrop.GaussianNoise(*args)
