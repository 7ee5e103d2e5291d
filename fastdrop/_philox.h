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
 * Two implementations that produce identical bits and identical floating-point results (same
 * operations in the same order): portable C, and AVX2 compiled with a function-level target
 * attribute and picked at run time (__builtin_cpu_supports), so the extension is never built
 * with -march=native.
 */
#ifndef FASTDROP_PHILOX_H
#define FASTDROP_PHILOX_H

#include <stdint.h>
#include <string.h>

#define FD_PHILOX_M0 0xD2511F53u
#define FD_PHILOX_M1 0xCD9E8D57u
#define FD_PHILOX_W0 0x9E3779B9u
#define FD_PHILOX_W1 0xBB67AE85u
#define FD_PHILOX_ROUNDS 10
#define FD_THRESHOLD_ONE 65536u

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FD_HAVE_AVX2_CODE 1
#include <immintrin.h>
#define FD_AVX2 __attribute__((target("avx2")))
#else
#define FD_HAVE_AVX2_CODE 0
#endif

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
static inline uint64_t fd_word_scalar(const fd_draw *d, uint64_t g) {
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

static inline uint64_t fd_tail_bits(int64_t n_valid) {
    return n_valid >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << n_valid) - 1);
}

/* ---------------------------------------------------------------- element-wise ops
 * The forward op of every kernel: v = x (+ bias) ; v = relu(v) ; y = keep ? v * scale : 0.
 * relu(v) is (0 > v ? 0 : v), which is exactly _mm256_max_p[sd](0, v): NaN passes through
 * instead of being silently zeroed (a diverging network must show it).
 *
 * The portable code makes every such choice with a bit mask, fd_keep_*(v, keep): v, or +0 when
 * keep is 0 (what the AVX2 and-masks give). A data-dependent branch per element would
 * mispredict on half the elements of a random mask or a random-signed activation, and it
 * stops compilers from vectorizing the loop (a float ?: is not if-converted under the default
 * -ftrapping-math); masks vectorize, to SSE2 here and NEON on ARM.
 */
#define FD_DEFINE_KEEP(NAME, T, UT)                                                            \
static inline T NAME(T v, int keep) {                                                          \
    UT b;                                                                                      \
    memcpy(&b, &v, sizeof b);                                                                  \
    b &= (UT)0 - (UT)(keep != 0);                                                              \
    memcpy(&v, &b, sizeof v);                                                                  \
    return v;                                                                                  \
}
FD_DEFINE_KEEP(fd_keep_f32, float, uint32_t)
FD_DEFINE_KEEP(fd_keep_f64, double, uint64_t)

/* Forward over elements [0, n) of a range that starts at mask word g0 (element 64*g0 of the
 * array; bias column of element 0 is col0).  bits may be NULL. */
#define FD_DEFINE_FWD_SCALAR(NAME, T, KEEP)                                                    \
static inline T NAME##_value(const T *x, const T *b, int64_t k, int relu) {                    \
    T v = b ? x[k] + b[k] : x[k];                                                              \
    return relu ? KEEP(v, !(0 > v)) : v;                                                       \
}                                                                                              \
static void NAME(const T *x, T *y, uint64_t *bits, int64_t n, uint64_t g0, const fd_draw *d,   \
                 T scale, const T *bias, int64_t ncols, int64_t col0, int relu) {              \
    int64_t col = col0;                                                                        \
    for (int64_t base = 0, w = 0; base < n; base += 64, w++) {                                 \
        int64_t m = n - base < 64 ? n - base : 64;                                             \
        uint64_t word = fd_word_scalar(d, g0 + (uint64_t)w) & fd_tail_bits(m);                 \
        if (bits) bits[w] = word;                                                              \
        /* runs of the word that stay within one row, so the bias is read contiguously */     \
        for (int64_t j = 0, run; j < m; j += run) {                                            \
            run = bias && ncols - col < m - j ? ncols - col : m - j;                           \
            const T *xr = x + base + j, *br = bias ? bias + col : NULL;                        \
            T *yr = y + base + j;                                                              \
            if (word == fd_tail_bits(m)) { /* all kept (no dropout): no mask to apply */       \
                for (int64_t k = 0; k < run; k++) yr[k] = NAME##_value(xr, br, k, relu) * scale; \
            } else {                                                                           \
                uint64_t keep = word >> j;                                                     \
                for (int64_t k = 0; k < run; k++, keep >>= 1)                                  \
                    yr[k] = KEEP(NAME##_value(xr, br, k, relu) * scale, (int)(keep & 1));      \
            }                                                                                  \
            if (bias && (col += run) == ncols) col = 0;                                        \
        }                                                                                      \
    }                                                                                          \
}
FD_DEFINE_FWD_SCALAR(fd_fwd_f32_scalar, float, fd_keep_f32)
FD_DEFINE_FWD_SCALAR(fd_fwd_f64_scalar, double, fd_keep_f64)

#define FD_DEFINE_APPLY_SCALAR(NAME, T, KEEP)                                                  \
static void NAME(const T *dy, const uint64_t *bits, T *dx, int64_t n, T scale) {               \
    for (int64_t base = 0, w = 0; base < n; base += 64, w++) {                                 \
        int64_t m = n - base < 64 ? n - base : 64;                                             \
        uint64_t keep = bits[w];                                                               \
        const T *src = dy + base;                                                              \
        T *dst = dx + base;                                                                    \
        if ((keep & fd_tail_bits(m)) == fd_tail_bits(m)) {                                     \
            for (int64_t k = 0; k < m; k++) dst[k] = src[k] * scale;                           \
        } else {                                                                               \
            for (int64_t k = 0; k < m; k++, keep >>= 1)                                        \
                dst[k] = KEEP(src[k] * scale, (int)(keep & 1));                                \
        }                                                                                      \
    }                                                                                          \
}
FD_DEFINE_APPLY_SCALAR(fd_apply_f32_scalar, float, fd_keep_f32)
FD_DEFINE_APPLY_SCALAR(fd_apply_f64_scalar, double, fd_keep_f64)

/* Backward of relu+dropout from the output: y > 0 iff the unit was kept and its
 * pre-activation was positive, so y alone says where the gradient flows. */
static inline float fd_gated_f32(float dy, float y, float scale) {
    return fd_keep_f32(dy * scale, y > 0);
}
static inline double fd_gated_f64(double dy, double y, double scale) {
    return fd_keep_f64(dy * scale, y > 0);
}

#define FD_DEFINE_GATE_SCALAR(NAME, T, GATED)                                                  \
static void NAME(const T *dy, const T *y, T *dx, int64_t n, T scale) {                         \
    for (int64_t i = 0; i < n; i++) dx[i] = GATED(dy[i], y[i], scale);                         \
}
FD_DEFINE_GATE_SCALAR(fd_gate_f32_scalar, float, fd_gated_f32)
FD_DEFINE_GATE_SCALAR(fd_gate_f64_scalar, double, fd_gated_f64)

static void fd_words_scalar(uint64_t *out, uint64_t g0, int64_t n_words, const fd_draw *d) {
    for (int64_t w = 0; w < n_words; w++) out[w] = fd_word_scalar(d, g0 + (uint64_t)w);
}

/* ---------------------------------------------------------------- AVX2 */
#if FD_HAVE_AVX2_CODE

typedef struct { __m256i k0[FD_PHILOX_ROUNDS], k1[FD_PHILOX_ROUNDS]; __m256i thr; } fd_keys8;

FD_AVX2 static inline void fd_keys8_init(fd_keys8 *K, const fd_draw *d) {
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
FD_AVX2 static inline void fd_mulhilo8(__m256i a, __m256i m, __m256i *hi, __m256i *lo) {
    __m256i even = _mm256_mul_epu32(a, m);                          /* lanes 0,2,4,6 */
    __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);    /* lanes 1,3,5,7 */
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

/* Keep masks (all-ones lanes = keep) of mask words g .. g + nw - 1 (nw is 1 or 2, a constant at
 * every call site): keep[8*j + k] lane l is element 8*k + l of word g + j.  Ten dependent rounds
 * make one chain latency-bound, so two words run interleaved to keep the multipliers busy. */
#define FD_MAX_CHAINS 2
FD_AVX2 static inline __attribute__((always_inline)) void
fd_words8(const fd_keys8 *K, const fd_draw *d, uint64_t g, const int nw, __m256i *keep) {
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
    const __m256i lo16 = _mm256_set1_epi32(0xFFFF);
    for (int j = 0; j < nw; j++) {
        __m256i x[4] = {c0[j], c1[j], c2[j], c3[j]};
        for (int w = 0; w < 4; w++) {
            keep[8 * j + 2 * w] = _mm256_cmpgt_epi32(K->thr, _mm256_and_si256(x[w], lo16));
            keep[8 * j + 2 * w + 1] = _mm256_cmpgt_epi32(K->thr, _mm256_srli_epi32(x[w], 16));
        }
    }
}

FD_AVX2 static inline uint64_t fd_keep_bits(const __m256i keep[8]) {
    uint64_t bits = 0;
    for (int k = 0; k < 8; k++)
        bits |= (uint64_t)(uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(keep[k])) << (8 * k);
    return bits;
}

FD_AVX2 static void fd_words_avx2(uint64_t *out, uint64_t g0, int64_t n_words, const fd_draw *d) {
    if (d->threshold >= FD_THRESHOLD_ONE) { fd_words_scalar(out, g0, n_words, d); return; }
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

/* Bias values for 8 columns starting at col, wrapping at ncols (rows shorter than 8). */
static inline void fd_fill_bias_float(float *buf, const float *bias, int64_t ncols, int64_t col) {
    for (int j = 0; j < 8; j++) { buf[j] = bias[col]; if (++col == ncols) col = 0; }
}
static inline void fd_fill_bias_double(double *buf, const double *bias, int64_t ncols, int64_t col) {
    for (int j = 0; j < 8; j++) { buf[j] = bias[col]; if (++col == ncols) col = 0; }
}
static inline int64_t fd_advance_col(int64_t col, int64_t step, int64_t ncols) {
    col += step;
    return col >= ncols ? col % ncols : col;
}

/* The keep vectors of full word w of a range of n_full words starting at word g0: drawn two
 * words at a time (one at the very end) into keeps[16], or all-ones when nothing is dropped
 * (keeps is filled once, by the caller's first call with w == 0). */
FD_AVX2 static inline const __m256i *fd_keeps_for(const fd_keys8 *K, const fd_draw *d,
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

/* float32: one keep vector is the blend mask of 8 consecutive floats. */
FD_AVX2 static void fd_fwd_f32_avx2(const float *x, float *y, uint64_t *bits, int64_t n,
                                    uint64_t g0, const fd_draw *d, float scale, const float *bias,
                                    int64_t ncols, int64_t col0, int relu) {
    fd_keys8 K;
    fd_keys8_init(&K, d);
    const __m256 vs = _mm256_set1_ps(scale), zero = _mm256_setzero_ps();
    __m256i keeps[16];
    float buf[8];
    int64_t col = col0, n_full = n / 64, w;
    for (w = 0; w < n_full; w++) {
        const __m256i *keep = fd_keeps_for(&K, d, g0, w, n_full, keeps);
        if (bits) bits[w] = fd_keep_bits(keep);
        const float *xs = x + 64 * w;
        float *ys = y + 64 * w;
        for (int k = 0; k < 8; k++) {
            __m256 v = _mm256_loadu_ps(xs + 8 * k);
            if (bias) {
                __m256 b = col + 8 <= ncols ? _mm256_loadu_ps(bias + col)
                                            : (fd_fill_bias_float(buf, bias, ncols, col), _mm256_loadu_ps(buf));
                v = _mm256_add_ps(v, b);
                col = fd_advance_col(col, 8, ncols);
            }
            if (relu) v = _mm256_max_ps(zero, v);
            _mm256_storeu_ps(ys + 8 * k, _mm256_and_ps(_mm256_mul_ps(v, vs), _mm256_castsi256_ps(keep[k])));
        }
    }
    if (64 * n_full < n)
        fd_fwd_f32_scalar(x + 64 * n_full, y + 64 * n_full, bits ? bits + n_full : NULL, n - 64 * n_full,
                          g0 + (uint64_t)n_full, d, scale, bias, ncols, col, relu);
}

/* float64: each keep vector covers 8 doubles, i.e. two 4-lane halves. */
FD_AVX2 static void fd_fwd_f64_avx2(const double *x, double *y, uint64_t *bits, int64_t n,
                                    uint64_t g0, const fd_draw *d, double scale, const double *bias,
                                    int64_t ncols, int64_t col0, int relu) {
    fd_keys8 K;
    fd_keys8_init(&K, d);
    const __m256d vs = _mm256_set1_pd(scale), zero = _mm256_setzero_pd();
    __m256i keeps[16];
    double buf[8];
    int64_t col = col0, n_full = n / 64, w;
    for (w = 0; w < n_full; w++) {
        const __m256i *keep = fd_keeps_for(&K, d, g0, w, n_full, keeps);
        if (bits) bits[w] = fd_keep_bits(keep);
        const double *xs = x + 64 * w;
        double *ys = y + 64 * w;
        for (int k = 0; k < 8; k++) {
            __m256d lo = _mm256_loadu_pd(xs + 8 * k), hi = _mm256_loadu_pd(xs + 8 * k + 4);
            if (bias) {
                const double *b = bias + col;
                if (col + 8 > ncols) { fd_fill_bias_double(buf, bias, ncols, col); b = buf; }
                lo = _mm256_add_pd(lo, _mm256_loadu_pd(b));
                hi = _mm256_add_pd(hi, _mm256_loadu_pd(b + 4));
                col = fd_advance_col(col, 8, ncols);
            }
            if (relu) { lo = _mm256_max_pd(zero, lo); hi = _mm256_max_pd(zero, hi); }
            __m256d mlo = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(keep[k])));
            __m256d mhi = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(keep[k], 1)));
            _mm256_storeu_pd(ys + 8 * k, _mm256_and_pd(_mm256_mul_pd(lo, vs), mlo));
            _mm256_storeu_pd(ys + 8 * k + 4, _mm256_and_pd(_mm256_mul_pd(hi, vs), mhi));
        }
    }
    if (64 * n_full < n)
        fd_fwd_f64_scalar(x + 64 * n_full, y + 64 * n_full, bits ? bits + n_full : NULL, n - 64 * n_full,
                          g0 + (uint64_t)n_full, d, scale, bias, ncols, col, relu);
}

/* Stored bits -> 8 lane masks: lane l of byte k is bit 8*k + l. */
FD_AVX2 static inline __m256i fd_expand_byte(uint32_t byte) {
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)byte), sel), sel);
}

FD_AVX2 static void fd_apply_f32_avx2(const float *dy, const uint64_t *bits, float *dx, int64_t n, float scale) {
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t n8 = n / 8, i;
    for (i = 0; i < n8; i++) {
        uint32_t byte = (uint32_t)(bits[i >> 3] >> (8 * (i & 7))) & 0xFFu;
        __m256 m = _mm256_castsi256_ps(fd_expand_byte(byte));
        _mm256_storeu_ps(dx + 8 * i, _mm256_and_ps(_mm256_mul_ps(_mm256_loadu_ps(dy + 8 * i), vs), m));
    }
    for (i = 8 * n8; i < n; i++) dx[i] = ((bits[i >> 6] >> (i & 63)) & 1) ? dy[i] * scale : 0.0f;
}

FD_AVX2 static void fd_apply_f64_avx2(const double *dy, const uint64_t *bits, double *dx, int64_t n, double scale) {
    const __m256d vs = _mm256_set1_pd(scale);
    int64_t n8 = n / 8, i;
    for (i = 0; i < n8; i++) {
        uint32_t byte = (uint32_t)(bits[i >> 3] >> (8 * (i & 7))) & 0xFFu;
        __m256i m = fd_expand_byte(byte);
        __m256d mlo = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(m)));
        __m256d mhi = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1)));
        _mm256_storeu_pd(dx + 8 * i, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(dy + 8 * i), vs), mlo));
        _mm256_storeu_pd(dx + 8 * i + 4, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(dy + 8 * i + 4), vs), mhi));
    }
    for (i = 8 * n8; i < n; i++) dx[i] = ((bits[i >> 6] >> (i & 63)) & 1) ? dy[i] * scale : 0.0;
}

FD_AVX2 static void fd_gate_f32_avx2(const float *dy, const float *y, float *dx, int64_t n, float scale) {
    const __m256 vs = _mm256_set1_ps(scale), zero = _mm256_setzero_ps();
    int64_t i;
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 m = _mm256_cmp_ps(_mm256_loadu_ps(y + i), zero, _CMP_GT_OQ);
        _mm256_storeu_ps(dx + i, _mm256_and_ps(_mm256_mul_ps(_mm256_loadu_ps(dy + i), vs), m));
    }
    for (; i < n; i++) dx[i] = (y[i] > 0) ? dy[i] * scale : 0.0f;
}

FD_AVX2 static void fd_gate_f64_avx2(const double *dy, const double *y, double *dx, int64_t n, double scale) {
    const __m256d vs = _mm256_set1_pd(scale), zero = _mm256_setzero_pd();
    int64_t i;
    for (i = 0; i + 4 <= n; i += 4) {
        __m256d m = _mm256_cmp_pd(_mm256_loadu_pd(y + i), zero, _CMP_GT_OQ);
        _mm256_storeu_pd(dx + i, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(dy + i), vs), m));
    }
    for (; i < n; i++) dx[i] = (y[i] > 0) ? dy[i] * scale : 0.0;
}

static int fd_cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#else
static int fd_cpu_has_avx2(void) { return 0; }
#endif

/* ---------------------------------------------------------------- run-time dispatch */
/* 1 when the AVX2 code is used; tests set it to 0 to compare against the portable code. */
static int fd_use_avx2 = -1;

static inline int fd_simd(void) {
    if (fd_use_avx2 < 0) fd_use_avx2 = fd_cpu_has_avx2();
    return fd_use_avx2;
}

static int fd_set_simd(int on) {
    fd_use_avx2 = on && fd_cpu_has_avx2();
    return fd_use_avx2;
}

#if FD_HAVE_AVX2_CODE
#define FD_DISPATCH(avx2_call, scalar_call) do { if (fd_simd()) avx2_call; else scalar_call; } while (0)
#else
#define FD_DISPATCH(avx2_call, scalar_call) do { scalar_call; } while (0)
#endif

static void fd_words(uint64_t *out, uint64_t g0, int64_t n_words, const fd_draw *d) {
    FD_DISPATCH(fd_words_avx2(out, g0, n_words, d), fd_words_scalar(out, g0, n_words, d));
}
static void fd_fwd_f32(const float *x, float *y, uint64_t *bits, int64_t n, uint64_t g0, const fd_draw *d,
                       float scale, const float *bias, int64_t ncols, int64_t col0, int relu) {
    FD_DISPATCH(fd_fwd_f32_avx2(x, y, bits, n, g0, d, scale, bias, ncols, col0, relu),
                fd_fwd_f32_scalar(x, y, bits, n, g0, d, scale, bias, ncols, col0, relu));
}
static void fd_fwd_f64(const double *x, double *y, uint64_t *bits, int64_t n, uint64_t g0, const fd_draw *d,
                       double scale, const double *bias, int64_t ncols, int64_t col0, int relu) {
    FD_DISPATCH(fd_fwd_f64_avx2(x, y, bits, n, g0, d, scale, bias, ncols, col0, relu),
                fd_fwd_f64_scalar(x, y, bits, n, g0, d, scale, bias, ncols, col0, relu));
}
static void fd_apply_f32(const float *dy, const uint64_t *bits, float *dx, int64_t n, float scale) {
    FD_DISPATCH(fd_apply_f32_avx2(dy, bits, dx, n, scale), fd_apply_f32_scalar(dy, bits, dx, n, scale));
}
static void fd_apply_f64(const double *dy, const uint64_t *bits, double *dx, int64_t n, double scale) {
    FD_DISPATCH(fd_apply_f64_avx2(dy, bits, dx, n, scale), fd_apply_f64_scalar(dy, bits, dx, n, scale));
}
static void fd_gate_f32(const float *dy, const float *y, float *dx, int64_t n, float scale) {
    FD_DISPATCH(fd_gate_f32_avx2(dy, y, dx, n, scale), fd_gate_f32_scalar(dy, y, dx, n, scale));
}
static void fd_gate_f64(const double *dy, const double *y, double *dx, int64_t n, double scale) {
    FD_DISPATCH(fd_gate_f64_avx2(dy, y, dx, n, scale), fd_gate_f64_scalar(dy, y, dx, n, scale));
}

/* The gate over a block of nb <= FD_COLSUM_BLOCK columns of an (m, ld) row-major matrix, and
 * each column's sum over rows 0..m-1 in order (a hidden layer's bias gradient, in the same
 * pass). One loop, vectorized by the compiler for the function's target (the build's
 * baseline, or AVX2): both versions give the same bits. */
#define FD_COLSUM_BLOCK 64
#define FD_DEFINE_GATE_COLSUM(NAME, ATTR, T, GATED)                                            \
ATTR static void NAME(const T *dy, const T *y, T *dx, T *colsum, int64_t m, int64_t ld,       \
                      int64_t nb, T scale) {                                                   \
    T acc[FD_COLSUM_BLOCK];                                                                    \
    for (int64_t j = 0; j < nb; j++) acc[j] = 0;                                               \
    for (int64_t i = 0; i < m; i++) {                                                          \
        const T *dyr = dy + i * ld, *yr = y + i * ld;                                          \
        T *dxr = dx + i * ld;                                                                  \
        for (int64_t j = 0; j < nb; j++) {                                                     \
            T v = GATED(dyr[j], yr[j], scale);                                                 \
            dxr[j] = v;                                                                        \
            acc[j] += v;                                                                       \
        }                                                                                      \
    }                                                                                          \
    for (int64_t j = 0; j < nb; j++) colsum[j] = acc[j];                                       \
}
FD_DEFINE_GATE_COLSUM(fd_gate_colsum_f32_scalar, , float, fd_gated_f32)
FD_DEFINE_GATE_COLSUM(fd_gate_colsum_f64_scalar, , double, fd_gated_f64)
#if FD_HAVE_AVX2_CODE
FD_DEFINE_GATE_COLSUM(fd_gate_colsum_f32_avx2, FD_AVX2, float, fd_gated_f32)
FD_DEFINE_GATE_COLSUM(fd_gate_colsum_f64_avx2, FD_AVX2, double, fd_gated_f64)
#endif
static void fd_gate_colsum_f32(const float *dy, const float *y, float *dx, float *colsum,
                               int64_t m, int64_t ld, int64_t nb, float scale) {
    FD_DISPATCH(fd_gate_colsum_f32_avx2(dy, y, dx, colsum, m, ld, nb, scale),
                fd_gate_colsum_f32_scalar(dy, y, dx, colsum, m, ld, nb, scale));
}
static void fd_gate_colsum_f64(const double *dy, const double *y, double *dx, double *colsum,
                               int64_t m, int64_t ld, int64_t nb, double scale) {
    FD_DISPATCH(fd_gate_colsum_f64_avx2(dy, y, dx, colsum, m, ld, nb, scale),
                fd_gate_colsum_f64_scalar(dy, y, dx, colsum, m, ld, nb, scale));
}

#endif /* FASTDROP_PHILOX_H */
