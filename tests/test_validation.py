"""Bad input: clear errors that name the argument, what was expected and what came."""
import numpy as np
import pytest

from fastdrop import (Dropout, bernoulli_mask, dropout, dropout_backward, dropout_inference,
                      relu_dropout, relu_dropout_backward)

X = np.ones((4, 5), dtype=np.float32)


@pytest.mark.parametrize("p, exc, match", [
    (1.5, ValueError, r"p must be in \[0, 1\], got 1.5"),
    (-0.1, ValueError, r"p must be in \[0, 1\], got -0.1"),
    (float("nan"), ValueError, r"p must be in \[0, 1\], got nan"),
    ("0.5", TypeError, r"p must be a real number in \[0, 1\], got '0.5'"),
    (None, TypeError, r"p must be a real number"),
    (True, TypeError, r"p must be a real number"),
])
def test_bad_p(p, exc, match):
    with pytest.raises(exc, match=match):
        dropout(X, p, seed=0)
    with pytest.raises(exc, match=match):
        relu_dropout(X, p, seed=0)
    with pytest.raises(exc, match=match):
        Dropout(p)
    with pytest.raises(exc, match=match):
        dropout_inference(X, p)


def test_bad_keep_prob_is_named():
    with pytest.raises(ValueError, match=r"keep_prob must be in \[0, 1\], got 2.0"):
        bernoulli_mask(10, 2.0, seed=0)


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"seed": -1}, ValueError, r"seed must be in \[0, 2\*\*64\), got -1"),
    ({"seed": 2**64}, ValueError, r"seed must be in \[0, 2\*\*64\)"),
    ({"seed": 1.5}, TypeError, r"seed must be an int in \[0, 2\*\*64\), got 1.5"),
    ({"seed": 0, "step": -3}, ValueError, r"step must be in \[0, 2\*\*64\), got -3"),
    ({"seed": 0, "mode": "scaled"}, ValueError,
     r"mode must be 'inverted' or 'classic', got 'scaled'"),
])
def test_bad_seed_step_mode(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        dropout(X, 0.5, **kwargs)


def test_seed_is_required():
    with pytest.raises(TypeError, match="seed"):
        dropout(X, 0.5)


@pytest.mark.parametrize("x, match", [
    (np.ones(3, dtype=np.complex64), "x must be a real float32 or float64 array, got dtype complex64"),
    (np.array(["a", "b"]), "x must be a real float32 or float64 array, got dtype <U1"),
    (np.array([object()]), "x must be a real float32 or float64 array, got dtype object"),
])
def test_bad_x_dtype(x, match):
    with pytest.raises(TypeError, match=match):
        dropout(x, 0.5, seed=0)


@pytest.mark.parametrize("out, exc, match", [
    (np.empty((4, 6), np.float32), ValueError, r"out must have shape \(4, 5\), got \(4, 6\)"),
    (np.empty((4, 5), np.float64), ValueError, "out must have dtype float32, got float64"),
    (np.empty((5, 4), np.float32).T, ValueError, "out must be C-contiguous"),
    ([0.0] * 20, TypeError, "out must be a numpy.ndarray, got list"),
])
def test_bad_out(out, exc, match):
    with pytest.raises(exc, match=match):
        dropout(X, 0.5, seed=0, out=out)


def test_read_only_out():
    out = np.empty_like(X)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writable"):
        dropout(X, 0.5, seed=0, out=out)


def test_shape_mismatches():
    _, mask = dropout(X, 0.5, seed=0)
    with pytest.raises(ValueError, match=r"dy must have the shape of mask, \(4, 5\), or .* got \(5, 4\)"):
        dropout_backward(np.ones((5, 4), np.float32), mask)
    y, rmask = relu_dropout(X, 0.5, seed=0)
    with pytest.raises(ValueError, match=r"y must have the shape of mask"):
        relu_dropout_backward(X, y[:2], rmask)
    with pytest.raises(ValueError, match="y must have the dtype of dy"):
        relu_dropout_backward(X, y.astype(np.float64), rmask)
    with pytest.raises(TypeError, match="mask must be a DropoutMask, got ndarray"):
        dropout_backward(X, np.ones_like(X, dtype=bool))
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\) to match the last axis"):
        relu_dropout(X, 0.5, seed=0, bias=np.ones(4))


def test_bad_shape_and_threads():
    with pytest.raises(ValueError, match="shape must have non-negative dimensions"):
        bernoulli_mask((3, -1), 0.5, seed=0)
    with pytest.raises(TypeError, match="shape must be an int or a tuple of ints"):
        bernoulli_mask("big", 0.5, seed=0)
    with pytest.raises(ValueError, match="n_threads must be a non-zero int or None, got 0"):
        dropout(X, 0.5, seed=0, n_threads=0)
    with pytest.raises(TypeError, match="n_threads must be an int or None, got float"):
        dropout(X, 0.5, seed=0, n_threads=1.5)
    with pytest.raises(ValueError, match=r"offset \+ size must be at most 2\*\*64"):
        bernoulli_mask(10, 0.5, seed=0, offset=2**64 - 5)
