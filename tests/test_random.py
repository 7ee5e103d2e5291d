"""The counter-based generator: known answers, layout invariances and statistics."""
import numpy as np
import pytest

from fastdrop import _kernels, bernoulli_mask
from fastdrop._dropout import keep_threshold
from fastdrop._simd import set_simd

# Random123's published known-answer vectors for Philox4x32-10 (tests/kat_vectors).
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]

Z_LIMIT = 5.0       # a correct generator exceeds this with probability ~6e-7
CHI2_LIMIT = 30.0   # chi-square, 1 degree of freedom: exceeded with probability ~4e-8


@pytest.mark.parametrize("ctr, key, expected", PHILOX_KAT)
def test_philox_known_answers(ctr, key, expected):
    assert _kernels.philox4x32_10(ctr, key) == expected


def reference_word(seed, step, g, threshold):
    """Mask word g from the scalar block function, following the documented layout."""
    key = (seed & 0xFFFFFFFF, seed >> 32)
    bits = 0
    for lane in range(8):
        block = 8 * g + lane
        x = _kernels.philox4x32_10((block & 0xFFFFFFFF, block >> 32,
                                    step & 0xFFFFFFFF, step >> 32), key)
        for k in range(8):
            u = (x[k >> 1] >> (16 * (k & 1))) & 0xFFFF
            bits |= int(u < threshold) << (8 * k + lane)
    return bits


@pytest.mark.parametrize("seed, step, first_word", [(0, 0, 0), (2**64 - 1, 7, 3),
                                                     (12345, 2**40 + 3, 2**35 + 1)])
def test_layout_matches_documented_formula(simd, seed, step, first_word):
    threshold = keep_threshold(0.3)
    mask = bernoulli_mask(3 * 64, 0.3, seed=seed, step=step, offset=64 * first_word)
    expected = [reference_word(seed, step, first_word + j, threshold) for j in range(3)]
    assert [int(w) for w in mask.bits] == expected


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_masks_do_not_depend_on_threads_or_simd(simd, n_threads):
    reference = bernoulli_mask(1_000_003, 0.37, seed=9, step=4, n_threads=1)
    set_simd("portable")
    portable = bernoulli_mask(1_000_003, 0.37, seed=9, step=4, n_threads=1)
    assert np.array_equal(reference.bits, portable.bits)
    set_simd(simd)
    mask = bernoulli_mask(1_000_003, 0.37, seed=9, step=4, n_threads=n_threads)
    assert np.array_equal(mask.bits, reference.bits)


@pytest.mark.parametrize("offset", [0, 1, 63, 64, 1000, 2**32 - 5, 2**32 + 77, 2**61 + 3])
def test_offset_slice_equals_slice_of_full_mask(simd, offset):
    size = 5000
    window = bernoulli_mask(size, 0.5, seed=3, step=1, offset=offset).to_bool()
    base = offset - offset % 64
    full = bernoulli_mask(size + 128, 0.5, seed=3, step=1, offset=base).to_bool()
    start = offset - base
    assert np.array_equal(window, full[start:start + size])


def test_trailing_bits_are_zero_and_storage_is_one_bit_per_element():
    mask = bernoulli_mask((7, 13), 0.99, seed=1)
    assert mask.nbytes == 8 * 2  # 91 bits -> 2 words
    assert int(mask.bits[-1]) >> (91 - 64) == 0
    big = bernoulli_mask(2**20, 0.5, seed=1)
    assert big.nbytes * 8 == big.size


def test_mask_shape_and_bool_view():
    mask = bernoulli_mask((3, 4, 5), 0.5, seed=2)
    assert mask.shape == (3, 4, 5) and mask.to_bool().dtype == np.bool_
    assert mask.to_bool().shape == (3, 4, 5)
    empty = bernoulli_mask((0, 5), 0.5, seed=2)
    assert empty.to_bool().shape == (0, 5) and empty.nbytes == 0


@pytest.mark.parametrize("keep, expected", [(0.5, 0.5), (1.0, 1.0), (0.0, 0.0),
                                            (1e-9, 2**-16), (1 - 1e-9, 1 - 2**-16),
                                            (0.3, round(0.3 * 65536) / 65536)])
def test_realized_keep_probability(keep, expected):
    assert bernoulli_mask(10, keep, seed=0).keep_prob == expected


def z_score(count, n, q):
    return (count - n * q) / np.sqrt(n * q * (1 - q))


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5, 0.9])
def test_keep_rate_within_binomial_bound(p):
    n = 10_000_000
    mask = bernoulli_mask(n, 1 - p, seed=2026, step=11)
    kept = int(np.unpackbits(mask.bits.view(np.uint8)).sum())
    assert abs(z_score(kept, n, mask.keep_prob)) < Z_LIMIT


def chi2_independence(a, b):
    """Pearson chi-square of the 2x2 table of two bool arrays (1 degree of freedom)."""
    a, b = a.ravel(), b.ravel()
    n = a.size
    observed = np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])
    pa, pb = a.mean(), b.mean()
    expected = n * np.outer([pa, 1 - pa], [pb, 1 - pb])
    return float(((observed - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("lag", [1, 2, 7, 8, 16, 32, 63, 64, 512])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_neighbouring_elements_are_independent(lag, keep):
    m = bernoulli_mask(4_000_000, keep, seed=5).to_bool()
    # disjoint pairs (i, i + lag), i in blocks of length lag taken every 2 * lag elements
    blocks = m[: (m.size // (2 * lag)) * 2 * lag].reshape(-1, 2, lag)
    assert chi2_independence(blocks[:, 0], blocks[:, 1]) < CHI2_LIMIT


@pytest.mark.parametrize("n_cols", [100, 512, 784])
def test_rows_are_independent(n_cols):
    m = bernoulli_mask((4000, n_cols), 0.5, seed=8, step=3).to_bool()
    assert chi2_independence(m[0::2], m[1::2]) < CHI2_LIMIT


def test_steps_and_seeds_give_independent_masks():
    n = 2_000_000
    base = bernoulli_mask(n, 0.5, seed=1, step=0).to_bool()
    for other in (bernoulli_mask(n, 0.5, seed=1, step=1), bernoulli_mask(n, 0.5, seed=2, step=0),
                  bernoulli_mask(n, 0.5, seed=1, step=2**32)):
        assert chi2_independence(base, other.to_bool()) < CHI2_LIMIT
