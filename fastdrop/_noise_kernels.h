/*
 * The rest of the dropout family over the same Philox stream as the Bernoulli masks
 * (_philox.h): element i of draw (seed, step) reads the 16-bit uniform that would decide its
 * Bernoulli keep, so every kernel here is thread-count and SIMD-path invariant in the same way.
 *
 * Gaussian dropout: y = x * table[u]. The caller's table holds the 65536 values of the
 * multiplicative noise (1 + sigma * z_u, z_u a standardized inverse-CDF normal quantile), so
 * the kernel is one load, one gather and one multiply per element; its backward is the same
 * pass over dy (the noise is recomputed, never stored).
 *
 * Alpha dropout: y = keep ? x * a + b : c (c = alpha' * a + b, the dropped value), two roundings
 * in that order on every path (the build sets -ffp-contract=off). Its backward is the Bernoulli
 * apply kernel with scale a.
 *
 * Each has a portable version and an AVX2 one that hands tails shorter than a mask word to the
 * portable code.
 */
#ifndef FASTDROP_NOISE_KERNELS_H
#define FASTDROP_NOISE_KERNELS_H

#include "_dropout_kernels.h"

/* ---------------------------------------------------------------- portable */
#define FD_DEFINE_GAUSS_PORTABLE(NAME, T)                                                        \
static void NAME(const T *x, T *y, int64_t n, uint64_t g0, const fd_draw *d, const T *table) { \
    uint16_t u[64];                                                                            \
    for (int64_t base = 0, w = 0; base < n; base += 64, w++) {                                 \
        int64_t m = n - base < 64 ? n - base : 64;                                             \
        fd_uniforms_portable(d, g0 + (uint64_t)w, u);                                          \
        for (int64_t k = 0; k < m; k++) y[base + k] = x[base + k] * table[u[k]];              \
    }                                                                                          \
}
FD_DEFINE_GAUSS_PORTABLE(fd_gauss_f32_portable, float)
FD_DEFINE_GAUSS_PORTABLE(fd_gauss_f64_portable, double)

/* keep ? t : c, by bit masks (see FD_DEFINE_KEEP): no branch on a random decision. */
#define FD_DEFINE_SELECT(NAME, T, KEEP, UT)                                                     \
static inline T NAME(T t, T c, int keep) {                                                     \
    T a = KEEP(t, keep), b = KEEP(c, !keep);                                                   \
    UT ua, ub;                                                                                 \
    memcpy(&ua, &a, sizeof ua);                                                                \
    memcpy(&ub, &b, sizeof ub);                                                                \
    ua |= ub;                                                                                  \
    memcpy(&a, &ua, sizeof a);                                                                 \
    return a;                                                                                  \
}
FD_DEFINE_SELECT(fd_select_f32, float, fd_keep_f32, uint32_t)
FD_DEFINE_SELECT(fd_select_f64, double, fd_keep_f64, uint64_t)

#define FD_DEFINE_ALPHA_PORTABLE(NAME, T, SELECT)                                                \
static void NAME(const T *x, T *y, uint64_t *bits, int64_t n, uint64_t g0, const fd_draw *d,   \
                 T a, T b, T c) {                                                              \
    for (int64_t base = 0, w = 0; base < n; base += 64, w++) {                                 \
        int64_t m = n - base < 64 ? n - base : 64;                                             \
        uint64_t keep = fd_word_portable(d, g0 + (uint64_t)w) & fd_tail_bits(m);               \
        if (bits) bits[w] = keep;                                                              \
        for (int64_t k = 0; k < m; k++, keep >>= 1) {                                          \
            T t = x[base + k] * a;                                                             \
            y[base + k] = SELECT(t + b, c, (int)(keep & 1));                                   \
        }                                                                                      \
    }                                                                                          \
}
FD_DEFINE_ALPHA_PORTABLE(fd_alpha_f32_portable, float, fd_select_f32)
FD_DEFINE_ALPHA_PORTABLE(fd_alpha_f64_portable, double, fd_select_f64)

/* ---------------------------------------------------------------- AVX2 */
#if FD_X86
/* One mask word of Gaussian noise from its raw Philox outputs x[4]: 8 gathers of 8 floats. */
FD_TARGET_AVX2 static inline void fd_gauss_word_f32(const float *xs, float *ys, const __m256i *x,
                                                  const float *table) {
    for (int k = 0; k < 8; k++) {
        __m256 noise = _mm256_i32gather_ps(table, fd_uniform16(x, k), 4);
        _mm256_storeu_ps(ys + 8 * k, _mm256_mul_ps(_mm256_loadu_ps(xs + 8 * k), noise));
    }
}

FD_TARGET_AVX2 static inline void fd_gauss_word_f64(const double *xs, double *ys, const __m256i *x,
                                                  const double *table) {
    for (int k = 0; k < 8; k++) {
        __m256i u = fd_uniform16(x, k);
        __m256d lo = _mm256_i32gather_pd(table, _mm256_castsi256_si128(u), 8);
        __m256d hi = _mm256_i32gather_pd(table, _mm256_extracti128_si256(u, 1), 8);
        _mm256_storeu_pd(ys + 8 * k, _mm256_mul_pd(_mm256_loadu_pd(xs + 8 * k), lo));
        _mm256_storeu_pd(ys + 8 * k + 4, _mm256_mul_pd(_mm256_loadu_pd(xs + 8 * k + 4), hi));
    }
}

#define FD_DEFINE_GAUSS_AVX2(NAME, T, WORD, PORTABLE)                                           \
FD_TARGET_AVX2 static void NAME(const T *x, T *y, int64_t n, uint64_t g0, const fd_draw *d,     \
                                const T *table) {                                              \
    fd_keys8 K;                                                                                \
    fd_keys8_init(&K, d);                                                                      \
    __m256i raw[4 * FD_MAX_CHAINS];                                                            \
    int64_t n_full = n / 64, w = 0;                                                            \
    for (; w + 2 <= n_full; w += 2) {                                                          \
        fd_philox8(&K, d, g0 + (uint64_t)w, 2, raw);                                           \
        WORD(x + 64 * w, y + 64 * w, raw, table);                                              \
        WORD(x + 64 * w + 64, y + 64 * w + 64, raw + 4, table);                                \
    }                                                                                          \
    if (w < n_full) {                                                                          \
        fd_philox8(&K, d, g0 + (uint64_t)w, 1, raw);                                           \
        WORD(x + 64 * w, y + 64 * w, raw, table);                                              \
    }                                                                                          \
    if (64 * n_full < n)                                                                       \
        PORTABLE(x + 64 * n_full, y + 64 * n_full, n - 64 * n_full, g0 + (uint64_t)n_full, d,  \
                 table);                                                                       \
}
FD_DEFINE_GAUSS_AVX2(fd_gauss_f32_avx2, float, fd_gauss_word_f32, fd_gauss_f32_portable)
FD_DEFINE_GAUSS_AVX2(fd_gauss_f64_avx2, double, fd_gauss_word_f64, fd_gauss_f64_portable)

/* One mask word of alpha dropout: keep ? x * a + b : c, the keep vectors as blend masks. */
FD_TARGET_AVX2 static inline __attribute__((always_inline)) void
fd_alpha_word_f32(const float *xs, float *ys, const __m256i *keep, float a, float b, float c) {
    const __m256 va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b), vc = _mm256_set1_ps(c);
    for (int k = 0; k < 8; k++) {
        __m256 t = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(xs + 8 * k), va), vb);
        _mm256_storeu_ps(ys + 8 * k, _mm256_blendv_ps(vc, t, _mm256_castsi256_ps(keep[k])));
    }
}

FD_TARGET_AVX2 static inline __attribute__((always_inline)) void
fd_alpha_word_f64(const double *xs, double *ys, const __m256i *keep, double a, double b,
                  double c) {
    const __m256d va = _mm256_set1_pd(a), vb = _mm256_set1_pd(b), vc = _mm256_set1_pd(c);
    for (int k = 0; k < 8; k++) {  /* each keep vector covers 8 doubles: two 4-lane halves */
        __m256d mlo = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(keep[k])));
        __m256d mhi = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(keep[k], 1)));
        __m256d lo = _mm256_add_pd(_mm256_mul_pd(_mm256_loadu_pd(xs + 8 * k), va), vb);
        __m256d hi = _mm256_add_pd(_mm256_mul_pd(_mm256_loadu_pd(xs + 8 * k + 4), va), vb);
        _mm256_storeu_pd(ys + 8 * k, _mm256_blendv_pd(vc, lo, mlo));
        _mm256_storeu_pd(ys + 8 * k + 4, _mm256_blendv_pd(vc, hi, mhi));
    }
}

#define FD_DEFINE_ALPHA_AVX2(NAME, T, WORD, PORTABLE)                                           \
FD_TARGET_AVX2 static void NAME(const T *x, T *y, uint64_t *bits, int64_t n, uint64_t g0,       \
                                const fd_draw *d, T a, T b, T c) {                             \
    fd_keys8 K;                                                                                \
    fd_keys8_init(&K, d);                                                                      \
    __m256i keeps[16];                                                                         \
    int64_t n_full = n / 64;                                                                   \
    for (int64_t w = 0; w < n_full; w++) {                                                     \
        const __m256i *keep = fd_keeps_for(&K, d, g0, w, n_full, keeps);                       \
        if (bits) bits[w] = fd_keep_bits(keep);                                                \
        WORD(x + 64 * w, y + 64 * w, keep, a, b, c);                                           \
    }                                                                                          \
    if (64 * n_full < n)                                                                       \
        PORTABLE(x + 64 * n_full, y + 64 * n_full, bits ? bits + n_full : NULL, n - 64 * n_full, \
                 g0 + (uint64_t)n_full, d, a, b, c);                                           \
}
FD_DEFINE_ALPHA_AVX2(fd_alpha_f32_avx2, float, fd_alpha_word_f32, fd_alpha_f32_portable)
FD_DEFINE_ALPHA_AVX2(fd_alpha_f64_avx2, double, fd_alpha_word_f64, fd_alpha_f64_portable)
#endif  /* FD_X86 */

/* ---------------------------------------------------------------- run-time dispatch */
static void fd_gauss_f32(const float *x, float *y, int64_t n, uint64_t g0, const fd_draw *d,
                         const float *table) {
    FD_SIMD_CALL2(fd_gauss_f32, x, y, n, g0, d, table);
}
static void fd_gauss_f64(const double *x, double *y, int64_t n, uint64_t g0, const fd_draw *d,
                         const double *table) {
    FD_SIMD_CALL2(fd_gauss_f64, x, y, n, g0, d, table);
}
static void fd_alpha_f32(const float *x, float *y, uint64_t *bits, int64_t n, uint64_t g0,
                         const fd_draw *d, float a, float b, float c) {
    FD_SIMD_CALL2(fd_alpha_f32, x, y, bits, n, g0, d, a, b, c);
}
static void fd_alpha_f64(const double *x, double *y, uint64_t *bits, int64_t n, uint64_t g0,
                         const fd_draw *d, double a, double b, double c) {
    FD_SIMD_CALL2(fd_alpha_f64, x, y, bits, n, g0, d, a, b, c);
}

#endif /* FASTDROP_NOISE_KERNELS_H */
