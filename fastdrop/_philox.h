/*
 * Counter-based dropout masks: Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random
 * numbers: as easy as 1, 2, 3", SC 2011; the Random123 library).  The paper reports that
 * Philox4x32 passes TestU01's BigCrush from 7 rounds on; we use the default of 10, which leaves
 * a safety margin of 3 rounds and matches Random123's known-answer vectors (tested).
 *
 * Layout of one mask "word": 64 consecutive elements, 64*g .. 64*g + 63 for word g, drawn from
 * the 8 Philox blocks with counters 8*g + l (l = 0..7).  Each block yields four 32-bit outputs
 * x[0..3]; each output is split into two 16-bit uniforms.  Element e of the word (e = 8*k + l,
 * k = 2*w + h) is decided by the h-th 16-bit half of x[w] of block l:
 *
 *     keep(64*g + 8*k + l) = ((x_l[k >> 1] >> (16 * (k & 1))) & 0xFFFF) < threshold
 *
 * so the decision for element i is a pure function of (seed, step, i): counter = (block lo, block
 * hi, step lo, step hi), key = (seed lo, seed hi).  The "k-major" order is what lets the AVX2
 * code run 8 blocks in the 8 lanes and get the decisions for 8 *consecutive* elements from one
 * vector compare, which doubles as the blend mask for 8 floats.  Bit e of the uint64 mask word
 * holds element 64*g + e; bits past the end of an array are zero.
 *
 * threshold is in [0, 65536]: the realized keep probability is threshold / 65536 (resolution
 * 2^-16), and every scale factor is computed from that realized value upstream.
 *
 * Two implementations that produce identical bits: portable C, and AVX2 compiled with a
 * function-level target attribute and picked at run time (_simd.h), so the extension is never
 * built with -march=native. The dropout kernels built on these masks are in
 * _dropout_kernels.h, the Gaussian and alpha dropout kernels on its uniforms in _noise_kernels.h.
 */
#ifndef FASTDROP_PHILOX_H
#define FASTDROP_PHILOX_H

#include <stdint.h>
#include <string.h>

#include "_simd.h"

#define FD_PHILOX_M0 0xD2511F53u
#define FD_PHILOX_M1 0xCD9E8D57u
#define FD_PHILOX_W0 0x9E3779B9u
#define FD_PHILOX_W1 0xBB67AE85u
#define FD_PHILOX_ROUNDS 10
#define FD_THRESHOLD_ONE 65536u


/* What one draw needs: the key (seed), the step and the keep threshold. */
typedef struct {
    uint32_t k0, k1;     /* seed, low and high 32 bits */
    uint32_t s0, s1;     /* step, low and high 32 bits */
    uint32_t threshold;  /* keep iff 16-bit uniform < threshold; 65536 keeps everything */
} fd_draw;

/* ---------------------------------------------------------------- portable Philox */

static inline void fd_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

/* Philox4x32-10 of one counter block; exposed for the known-answer test. */
static inline void fd_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < FD_PHILOX_ROUNDS; r++) {
        uint32_t hi0, lo0, hi1, lo1;
        fd_mulhilo32(FD_PHILOX_M0, c0, &hi0, &lo0);
        fd_mulhilo32(FD_PHILOX_M1, c2, &hi1, &lo1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += FD_PHILOX_W0;
        k1 += FD_PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* The 64 keep decisions of mask word g, as bits. */
static inline uint64_t fd_word_portable(const fd_draw *d, uint64_t g) {
    if (d->threshold >= FD_THRESHOLD_ONE) return ~(uint64_t)0;
    const uint32_t key[2] = {d->k0, d->k1};
    uint64_t bits = 0;
    for (int l = 0; l < 8; l++) {
        uint64_t block = 8 * g + (uint64_t)l;
        uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), d->s0, d->s1};
        uint32_t x[4];
        fd_philox4x32_10(ctr, key, x);
        for (int k = 0; k < 8; k++) {
            uint32_t u = (x[k >> 1] >> (16 * (k & 1))) & 0xFFFFu;
            bits |= (uint64_t)(u < d->threshold) << (8 * k + l);
        }
    }
    return bits;
}

/* The 64 16-bit uniforms of mask word g, in element order (u[e] decides element 64*g + e). */
static inline void fd_uniforms_portable(const fd_draw *d, uint64_t g, uint16_t u[64]) {
    const uint32_t key[2] = {d->k0, d->k1};
    for (int l = 0; l < 8; l++) {
        uint64_t block = 8 * g + (uint64_t)l;
        uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), d->s0, d->s1};
        uint32_t x[4];
        fd_philox4x32_10(ctr, key, x);
        for (int k = 0; k < 8; k++) u[8 * k + l] = (uint16_t)(x[k >> 1] >> (16 * (k & 1)));
    }
}

static inline uint64_t fd_tail_bits(int64_t n_valid) {
    return n_valid >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n_valid) - 1);
}

static void fd_words_portable(uint64_t *out, uint64_t g0, int64_t n_words, const fd_draw *d) {
    for (int64_t w = 0; w < n_words; w++) out[w] = fd_word_portable(d, g0 + (uint64_t)w);
}

/* ---------------------------------------------------------------- AVX2
 * 8 Philox blocks in the 8 lanes: the decisions of 8 consecutive elements in one compare. */
#if FD_X86

typedef struct { __m256i k0[FD_PHILOX_ROUNDS], k1[FD_PHILOX_ROUNDS]; __m256i thr; } fd_keys8;

FD_TARGET_AVX2 static inline void fd_keys8_init(fd_keys8 *K, const fd_draw *d) {
    uint32_t k0 = d->k0, k1 = d->k1;
    for (int r = 0; r < FD_PHILOX_ROUNDS; r++) {
        K->k0[r] = _mm256_set1_epi32((int)k0);
        K->k1[r] = _mm256_set1_epi32((int)k1);
        k0 += FD_PHILOX_W0;
        k1 += FD_PHILOX_W1;
    }
    K->thr = _mm256_set1_epi32((int)d->threshold);
}

/* 32x32 -> 64 products of 8 lanes, split into high and low halves. */
FD_TARGET_AVX2 static inline void fd_mulhilo8(__m256i a, __m256i m, __m256i *hi, __m256i *lo) {
    __m256i even = _mm256_mul_epu32(a, m);                          /* lanes 0,2,4,6 */
    __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);    /* lanes 1,3,5,7 */
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

/* The raw Philox outputs of mask words g .. g + nw - 1 (nw is 1 or 2, a constant at every
 * call site): x[4*j + w] lane l is output x[w] of block 8*(g + j) + l. Ten dependent rounds
 * make one chain latency-bound, so two words run interleaved to keep the multipliers busy. */
#define FD_MAX_CHAINS 2
FD_TARGET_AVX2 static inline __attribute__((always_inline)) void
fd_philox8(const fd_keys8 *K, const fd_draw *d, uint64_t g, const int nw, __m256i *x) {
    const __m256i M0 = _mm256_set1_epi32((int)FD_PHILOX_M0);
    const __m256i M1 = _mm256_set1_epi32((int)FD_PHILOX_M1);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i c0[FD_MAX_CHAINS], c1[FD_MAX_CHAINS], c2[FD_MAX_CHAINS], c3[FD_MAX_CHAINS];
    for (int j = 0; j < nw; j++) {
        uint64_t block = 8 * (g + (uint64_t)j);  /* + lane never carries: block % 8 == 0 */
        c0[j] = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)block), lane);
        c1[j] = _mm256_set1_epi32((int)(uint32_t)(block >> 32));
        c2[j] = _mm256_set1_epi32((int)d->s0);
        c3[j] = _mm256_set1_epi32((int)d->s1);
    }
    for (int r = 0; r < FD_PHILOX_ROUNDS; r++) {
        for (int j = 0; j < nw; j++) {
            __m256i hi0, lo0, hi1, lo1;
            fd_mulhilo8(c0[j], M0, &hi0, &lo0);
            fd_mulhilo8(c2[j], M1, &hi1, &lo1);
            c0[j] = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[j]), K->k0[r]);
            c1[j] = lo1;
            c2[j] = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[j]), K->k1[r]);
            c3[j] = lo0;
        }
    }
    for (int j = 0; j < nw; j++) {
        x[4 * j] = c0[j]; x[4 * j + 1] = c1[j]; x[4 * j + 2] = c2[j]; x[4 * j + 3] = c3[j];
    }
}

/* The 16-bit uniforms of element 8*k + l of a word (lane l), k = 2*w + h: the h-th half of
 * output x[w]. */
FD_TARGET_AVX2 static inline __m256i fd_uniform16(const __m256i *x, int k) {
    return (k & 1) ? _mm256_srli_epi32(x[k >> 1], 16)
                   : _mm256_and_si256(x[k >> 1], _mm256_set1_epi32(0xFFFF));
}

/* Keep masks (all-ones lanes = keep) of mask words g .. g + nw - 1: keep[8*j + k] lane l is
 * element 8*k + l of word g + j. */
FD_TARGET_AVX2 static inline __attribute__((always_inline)) void
fd_words8(const fd_keys8 *K, const fd_draw *d, uint64_t g, const int nw, __m256i *keep) {
    __m256i x[4 * FD_MAX_CHAINS];
    fd_philox8(K, d, g, nw, x);
    for (int j = 0; j < nw; j++)
        for (int k = 0; k < 8; k++)
            keep[8 * j + k] = _mm256_cmpgt_epi32(K->thr, fd_uniform16(x + 4 * j, k));
}

FD_TARGET_AVX2 static inline uint64_t fd_keep_bits(const __m256i keep[8]) {
    uint64_t bits = 0;
    for (int k = 0; k < 8; k++)
        bits |= (uint64_t)(uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(keep[k])) << (8 * k);
    return bits;
}

FD_TARGET_AVX2 static void fd_words_avx2(uint64_t *out, uint64_t g0, int64_t n_words, const fd_draw *d) {
    if (d->threshold >= FD_THRESHOLD_ONE) { fd_words_portable(out, g0, n_words, d); return; }
    fd_keys8 K;
    fd_keys8_init(&K, d);
    __m256i keep[16];
    int64_t w = 0;
    for (; w + 2 <= n_words; w += 2) {
        fd_words8(&K, d, g0 + (uint64_t)w, 2, keep);
        out[w] = fd_keep_bits(keep);
        out[w + 1] = fd_keep_bits(keep + 8);
    }
    if (w < n_words) {
        fd_words8(&K, d, g0 + (uint64_t)w, 1, keep);
        out[w] = fd_keep_bits(keep);
    }
}

/* The keep vectors of full word w of a range of n_full words starting at word g0: drawn two
 * words at a time (one at the very end) into keeps[16], or all-ones when nothing is dropped
 * (keeps is filled once, by the caller's first call with w == 0). */
FD_TARGET_AVX2 static inline const __m256i *fd_keeps_for(const fd_keys8 *K, const fd_draw *d,
                                                  uint64_t g0, int64_t w, int64_t n_full,
                                                  __m256i keeps[16]) {
    if (d->threshold >= FD_THRESHOLD_ONE) {
        if (w == 0) for (int k = 0; k < 16; k++) keeps[k] = _mm256_set1_epi32(-1);
    } else if (!(w & 1)) {
        if (w + 1 < n_full) fd_words8(K, d, g0 + (uint64_t)w, 2, keeps);
        else fd_words8(K, d, g0 + (uint64_t)w, 1, keeps);
    }
    return keeps + 8 * (w & 1);
}
#endif  /* FD_X86 */

/* The mask words g0 .. g0 + n_words - 1 of a draw. */
static void fd_words(uint64_t *out, uint64_t g0, int64_t n_words, const fd_draw *d) {
    FD_SIMD_CALL2(fd_words, out, g0, n_words, d);
}

#endif /* FASTDROP_PHILOX_H */
