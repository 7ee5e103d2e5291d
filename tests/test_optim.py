"""Optimizer kernels: numpy references, the batch-mode submatrix step, thread invariance."""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fastdrop import _nn_kernels
from fastdrop._simd import set_simd, simd_paths
from fastdrop.optim import SGD, Adam, SubmatrixCopy, SubmatrixGradient

DTYPES = [np.float32, np.float64]
_BEST = simd_paths()["optimizer"]
PATHS = ["portable", "avx2", "avx512"][: ["portable", "avx2", "avx512"].index(_BEST) + 1]


@pytest.fixture(params=PATHS)
def optim_simd(request):
    """Run the test once per optimizer code path the CPU has (portable C at least)."""
    assert set_simd(request.param) == request.param
    yield request.param
    set_simd("best")


def reference_step(cls, w, g, alpha, l1, m, steps=1, lr=0.05):
    """scikit-learn's update rules written out in numpy (in the parameters' dtype)."""
    w = w.copy()
    G_of = lambda w: g + (alpha * w + l1 * np.sign(w)) / m  # noqa: E731
    state = [np.zeros_like(w), np.zeros_like(w)]
    for t in range(1, steps + 1):
        G = G_of(w)
        if cls is SGD:
            v = 0.9 * state[0] - lr * G
            w = w + 0.9 * v - lr * G
            state[0] = v
        else:
            b1, b2, eps = 0.9, 0.999, 1e-8
            state[0] = b1 * state[0] + (1 - b1) * G
            state[1] = b2 * state[1] + (1 - b2) * G * G
            lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            w = w - lr_t * state[0] / (np.sqrt(state[1]) + eps)
    return w


def make(dtype, shape=(37, 29), seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls", [SGD, Adam])
def test_step_matches_numpy_reference(cls, dtype, n_threads, optim_simd):
    w, g = make(dtype, (301, 257))  # > one 16384-element chunk, odd widths: tails exercised
    b = np.zeros(3, dtype=dtype)
    expected = reference_step(cls, w.astype(np.float64), g.astype(np.float64), 0.3, 0.1, 8,
                              steps=3)
    opt = cls([w, b], 0.05)
    for _ in range(3):
        opt.step([w], [b], [g], [np.zeros_like(b)], 8, 0.3, 0.1, n_threads)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(w, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls", [SGD, Adam])
def test_penalty_loss_is_the_weights_sums_whatever_the_threads(cls, dtype):
    w0, g = make(dtype, (300, 300))
    penalties, results = [], []
    for n_threads in (1, 2, 3):
        w, b = w0.copy(), np.zeros(1, dtype=dtype)
        opt = cls([w, b], 0.05)
        penalties.append(opt.step([w], [b], [g], [np.zeros(1, dtype)], 4, 0.5, 0.25, n_threads))
        results.append(w)
    w64 = w0.astype(np.float64)
    expected = (0.5 * 0.5 * np.sum(w64 * w64) + 0.25 * np.sum(np.abs(w64))) / 4
    assert penalties[0] == pytest.approx(expected, rel=1e-6)
    assert penalties[0] == penalties[1] == penalties[2]  # fixed summation order
    assert np.array_equal(results[0], results[1]) and np.array_equal(results[0], results[2])


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("all_cols", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls", [SGD, Adam])
@pytest.mark.parametrize("shape", [(45, 70), (300, 100), (7, 5000)])  # 1, 8, 7 row blocks
def test_submatrix_step_is_the_dense_step_bit_for_bit(cls, dtype, all_cols, n_threads, shape,
                                                      optim_simd):
    """Batch mode's update: same bits as expanding the kept submatrix into a full gradient."""
    rng = np.random.default_rng(1)
    n_rows, n_cols = shape
    w0, _ = make(dtype, shape)
    rows = np.flatnonzero(rng.random(n_rows) < 0.5)
    cols = np.arange(n_cols) if all_cols else np.flatnonzero(rng.random(n_cols) < 0.5)
    row_pos = np.full(n_rows, -1, dtype=np.int64)
    row_pos[rows] = np.arange(rows.size)
    values = rng.standard_normal((rows.size, cols.size)).astype(dtype)
    sub = SubmatrixGradient(values, row_pos, cols.astype(np.int64))
    dense = sub.to_dense(w0.shape)
    assert np.array_equal(dense[np.ix_(rows, cols)], values)
    assert np.count_nonzero(dense) == np.count_nonzero(values)
    out = []
    for grad in (dense, sub):
        w, b = w0.copy(), np.zeros(2, dtype=dtype)
        opt = cls([w, b], 0.05)
        penalty = 0.0
        for _ in range(2):  # the second step also sees nonzero optimizer state
            penalty = opt.step([w], [b], [grad], [np.ones(2, dtype)], 16, 1e-2, 1e-3,
                               n_threads)
        out.append((w, penalty, [s.copy() for state in opt.states for s in state]))
    assert np.array_equal(out[0][0], out[1][0])
    # the penalty sums are taken per row here, per chunk there: equal up to rounding
    assert out[0][1] == pytest.approx(out[1][1], rel=1e-6 if dtype == np.float32 else 1e-12)
    for a, b in zip(out[0][2], out[1][2]):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("next_all_cols", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls", [SGD, Adam])
@pytest.mark.parametrize("shape", [(40, 33), (300, 100)])
def test_submatrix_step_copies_the_next_submatrix(cls, dtype, next_all_cols, n_threads, shape):
    """The step leaves w_new[next rows][:, next cols] and steps exactly as without the copy."""
    rng = np.random.default_rng(2)
    (n_rows, n_cols), w0 = shape, make(dtype, shape)[0]
    rows = np.flatnonzero(rng.random(n_rows) < 0.5)
    cols = np.flatnonzero(rng.random(n_cols) < 0.5)
    row_pos = np.full(n_rows, -1, dtype=np.int64)
    row_pos[rows] = np.arange(rows.size)
    sub = SubmatrixGradient(rng.standard_normal((rows.size, cols.size)).astype(dtype),
                            row_pos, cols.astype(np.int64))
    next_rows = np.flatnonzero(rng.random(n_rows) < 0.5)
    next_cols = (np.arange(n_cols) if next_all_cols
                 else np.flatnonzero(rng.random(n_cols) < 0.5))
    next_pos = np.full(n_rows, -1, dtype=np.int64)
    next_pos[next_rows] = np.arange(next_rows.size)
    out = np.full((next_rows.size, next_cols.size), np.nan, dtype=dtype)
    copy = SubmatrixCopy(next_pos, next_cols.astype(np.int64), out)
    results = []
    for copy_to in (None, copy):
        w = w0.copy()
        opt = cls([w], 0.05)
        opt.start_step()
        penalty = opt.update(0, w, sub, 1e-2, 1e-3, n_threads, copy_to)
        results.append((w, penalty, [s.copy() for state in opt.states for s in state]))
    (w_plain, p_plain, s_plain), (w_copy, p_copy, s_copy) = results
    assert np.array_equal(w_plain, w_copy) and p_plain == p_copy
    assert all(np.array_equal(a, b) for a, b in zip(s_plain, s_copy))
    assert np.array_equal(out, w_copy[np.ix_(next_rows, next_cols)])


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_submatrix_penalty_sums_do_not_depend_on_the_thread_count(cls):
    rng = np.random.default_rng(3)
    w0, _ = make(np.float32, (300, 100))
    row_pos = np.where(rng.random(300) < 0.5, 0, -1).astype(np.int64)
    row_pos[row_pos == 0] = np.arange(np.count_nonzero(row_pos == 0))
    cols = np.flatnonzero(rng.random(100) < 0.5).astype(np.int64)
    sub = SubmatrixGradient(rng.standard_normal((np.count_nonzero(row_pos >= 0), cols.size))
                            .astype(np.float32), row_pos, cols)
    results = []
    for n_threads in (1, 2, 3):
        w = w0.copy()
        opt = cls([w], 0.05)
        opt.start_step()
        results.append((opt.update(0, w, sub, 0.1, 0.01, n_threads), w))
    assert results[0][0] == results[1][0] == results[2][0]
    assert all(np.array_equal(results[0][1], w) for _, w in results[1:])


def test_copy_to_needs_a_submatrix_gradient():
    w, g = make(np.float32, (4, 5))
    opt = SGD([w], 0.1)
    copy = SubmatrixCopy(np.zeros(4, np.int64), np.arange(5), np.empty((1, 5), np.float32))
    with pytest.raises(ValueError, match="copy_to needs the gradient as a SubmatrixGradient"):
        opt.update(0, w, g, 0.0, 0.0, 1, copy)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cls", [SGD, Adam])
def test_every_code_path_gives_the_same_bits(cls, dtype):
    """No FMA anywhere: the AVX2 / AVX-512 builds round exactly as the portable code."""
    w0, g = make(dtype, (130, 77))
    results = []
    try:
        for path in PATHS:
            set_simd(path)
            w, b = w0.copy(), np.zeros(1, dtype=dtype)
            opt = cls([w, b], 0.05)
            penalty = [opt.step([w], [b], [g], [np.ones(1, dtype)], 8, 0.3, 0.1, 2)
                       for _ in range(3)]
            results.append((w, penalty))
    finally:
        set_simd("best")
    for w, penalty in results[1:]:
        assert np.array_equal(w, results[0][0]) and penalty == results[0][1]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_step_traffic_matches_numpy(dtype, n_threads):
    # the benchmark's update floor: the step's bytes, none of its arithmetic
    rng = np.random.default_rng(3)
    n = 40001  # three chunks, the last one short
    w, g, v = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    want_w, want_v = np.copysign(w, g), -v
    _nn_kernels.step_traffic(w, g, v, n_threads)
    np.testing.assert_array_equal(w, want_w)
    np.testing.assert_array_equal(v, want_v)


def test_one_setter_names_the_choices_and_sets_every_module():
    with pytest.raises(ValueError, match="name must be one of"):
        set_simd("sse9")
    try:
        assert set_simd("portable") == "portable"
        assert simd_paths() == {"dropout": "portable", "optimizer": "portable"}
    finally:
        assert set_simd("best") == _BEST
    assert simd_paths()["optimizer"] == _BEST


def test_step_refuses_a_parameter_it_cannot_update_in_place():
    w = np.asfortranarray(np.ones((3, 4)))
    opt = SGD([w], 0.1)
    with pytest.raises(ValueError, match="C-contiguous"):
        opt.update(0, w, np.ones((3, 4)), 0.0, 0.0, 1)


_SUMS_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include "_optim.h"
int main(void) {
    int64_t n = 10007;
    float *w = malloc(n * 4), *g = malloc(n * 4), *v = calloc(n, 4);
    double s[2] = {0, 0};
    for (int64_t i = 0; i < n; i++) {
        w[i] = (float)((i * 37) % 101) / 50.f - 1.f;
        g[i] = w[i] / 3;
    }
    fd_sgd_f32_portable(w, g, v, n, 0.01f, 0.9f, 1, 1e-3f, 1e-4f, s);
    printf("%a %a %a\n", s[0], s[1], (double)w[n / 2]);
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_penalty_sums_without_vector_extensions_give_the_same_bits(tmp_path):
    """The plain-C fallback of the lane sums (compilers without GCC vector types)."""
    header = Path(_nn_kernels.__file__).parent / "_optim.h"
    (tmp_path / "prog.c").write_text(_SUMS_PROGRAM)
    outputs = []
    for extra in ([], ["-DFD_NO_VECTOR_EXT"]):
        exe = tmp_path / f"prog{len(outputs)}"
        subprocess.run(["cc", "-O2", "-ffp-contract=off", f"-I{header.parent}", *extra,
                        str(tmp_path / "prog.c"), "-o", str(exe), "-lm"], check=True)
        outputs.append(subprocess.run([str(exe)], check=True, capture_output=True,
                                      text=True).stdout)
    assert outputs[0] == outputs[1]
