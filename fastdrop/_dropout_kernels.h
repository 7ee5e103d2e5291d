/*
 * The dropout kernels over Philox masks (_philox.h): forward (bias, ReLU, dropout, scale in one
 * pass, optionally storing the mask bits), backward from stored bits, and the ReLU + dropout
 * gate (with its column sums, a layer's bias gradient). Each has a portable version and an
 * AVX2 one that gives the same bits; the AVX2 versions hand every tail shorter than their
 * vector step to the portable version, so rules such as "a dropped element is exactly +0"
 * are written once. _simd.h picks the version at run time.
 */
#ifndef FASTDROP_DROPOUT_KERNELS_H
#define FASTDROP_DROPOUT_KERNELS_H

#include "_philox.h"

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
#define FD_DEFINE_FWD_PORTABLE(NAME, T, KEEP)                                                    \
static inline T NAME##_value(const T *x, const T *b, int64_t k, int relu) {                    \
    T v = b ? x[k] + b[k] : x[k];                                                              \
    return relu ? KEEP(v, !(0 > v)) : v;                                                       \
}                                                                                              \
static void NAME(const T *x, T *y, uint64_t *bits, int64_t n, uint64_t g0, const fd_draw *d,   \
                 T scale, const T *bias, int64_t ncols, int64_t col0, int relu) {              \
    int64_t col = col0;                                                                        \
    for (int64_t base = 0, w = 0; base < n; base += 64, w++) {                                 \
        int64_t m = n - base < 64 ? n - base : 64;                                             \
        uint64_t word = fd_word_portable(d, g0 + (uint64_t)w) & fd_tail_bits(m);                 \
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
FD_DEFINE_FWD_PORTABLE(fd_fwd_f32_portable, float, fd_keep_f32)
FD_DEFINE_FWD_PORTABLE(fd_fwd_f64_portable, double, fd_keep_f64)

#define FD_DEFINE_APPLY_PORTABLE(NAME, T, KEEP)                                                  \
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
FD_DEFINE_APPLY_PORTABLE(fd_apply_f32_portable, float, fd_keep_f32)
FD_DEFINE_APPLY_PORTABLE(fd_apply_f64_portable, double, fd_keep_f64)

/* Backward of relu+dropout from the output: y > 0 iff the unit was kept and its
 * pre-activation was positive, so y alone says where the gradient flows. */
static inline float fd_gated_f32(float dy, float y, float scale) {
    return fd_keep_f32(dy * scale, y > 0);
}
static inline double fd_gated_f64(double dy, double y, double scale) {
    return fd_keep_f64(dy * scale, y > 0);
}

#define FD_DEFINE_GATE_PORTABLE(NAME, T, GATED)                                                  \
static void NAME(const T *dy, const T *y, T *dx, int64_t n, T scale) {                         \
    for (int64_t i = 0; i < n; i++) dx[i] = GATED(dy[i], y[i], scale);                         \
}
FD_DEFINE_GATE_PORTABLE(fd_gate_f32_portable, float, fd_gated_f32)
FD_DEFINE_GATE_PORTABLE(fd_gate_f64_portable, double, fd_gated_f64)

/* ---------------------------------------------------------------- shared masks
 * Dropout with one decision shared along some axes (Keras's noise_shape, channel dropout):
 * the array is seen as rows of `cols` elements, and row r reads its decisions from mask element
 * idx[r] (one decision for the whole row: per_row) or idx[r] * cols + k (one per element).
 * Only the portable loop, which compilers vectorize: every build gives the same bits. */
static inline int fd_bit(const uint64_t *bits, int64_t i) {
    return (int)((bits[i >> 6] >> (i & 63)) & 1u);
}

/* Bits i .. i + m - 1 (m <= 64) as the low bits of a word, reading no word past them. */
static inline uint64_t fd_bits_at(const uint64_t *bits, int64_t i, int64_t m) {
    int64_t w = i >> 6, s = i & 63;
    uint64_t v = bits[w] >> s;
    if (s && s + m > 64) v |= bits[w + 1] << (64 - s);
    return v;
}

#define FD_DEFINE_APPLY_SHARED(NAME, T, KEEP)                                                    \
static void NAME(const T *x, T *y, int64_t rows, int64_t cols, const int64_t *idx,            \
                 const uint64_t *bits, int per_row, T scale) {                                 \
    for (int64_t r = 0; r < rows; r++) {                                                       \
        const T *xr = x + r * cols;                                                            \
        T *yr = y + r * cols;                                                                  \
        if (per_row) {                                                                         \
            int keep = fd_bit(bits, idx[r]);                                                   \
            for (int64_t k = 0; k < cols; k++) yr[k] = KEEP(xr[k] * scale, keep);             \
        } else {                                                                               \
            for (int64_t k = 0; k < cols; k += 64) {                                           \
                int64_t m = cols - k < 64 ? cols - k : 64;                                     \
                uint64_t keep = fd_bits_at(bits, idx[r] * cols + k, m);                        \
                for (int64_t j = 0; j < m; j++, keep >>= 1)                                    \
                    yr[k + j] = KEEP(xr[k + j] * scale, (int)(keep & 1));                      \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}
FD_DEFINE_APPLY_SHARED(fd_apply_shared_f32, float, fd_keep_f32)
FD_DEFINE_APPLY_SHARED(fd_apply_shared_f64, double, fd_keep_f64)

/* ---------------------------------------------------------------- AVX2 */
#if FD_X86
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

/* float32: one keep vector is the blend mask of 8 consecutive floats. */
FD_TARGET_AVX2 static void fd_fwd_f32_avx2(const float *x, float *y, uint64_t *bits, int64_t n,
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
        fd_fwd_f32_portable(x + 64 * n_full, y + 64 * n_full, bits ? bits + n_full : NULL, n - 64 * n_full,
                          g0 + (uint64_t)n_full, d, scale, bias, ncols, col, relu);
}

/* float64: each keep vector covers 8 doubles, i.e. two 4-lane halves. */
FD_TARGET_AVX2 static void fd_fwd_f64_avx2(const double *x, double *y, uint64_t *bits, int64_t n,
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
        fd_fwd_f64_portable(x + 64 * n_full, y + 64 * n_full, bits ? bits + n_full : NULL, n - 64 * n_full,
                          g0 + (uint64_t)n_full, d, scale, bias, ncols, col, relu);
}

/* Stored bits -> 8 lane masks: lane l of byte k is bit 8*k + l. */
FD_TARGET_AVX2 static inline __m256i fd_expand_byte(uint32_t byte) {
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)byte), sel), sel);
}

FD_TARGET_AVX2 static void fd_apply_f32_avx2(const float *dy, const uint64_t *bits, float *dx, int64_t n, float scale) {
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t n_full = n / 64, i;  /* whole mask words here, the rest to the portable code */
    for (i = 0; i < 8 * n_full; i++) {
        uint32_t byte = (uint32_t)(bits[i >> 3] >> (8 * (i & 7))) & 0xFFu;
        __m256 m = _mm256_castsi256_ps(fd_expand_byte(byte));
        _mm256_storeu_ps(dx + 8 * i, _mm256_and_ps(_mm256_mul_ps(_mm256_loadu_ps(dy + 8 * i), vs), m));
    }
    if (64 * n_full < n)
        fd_apply_f32_portable(dy + 64 * n_full, bits + n_full, dx + 64 * n_full, n - 64 * n_full, scale);
}

FD_TARGET_AVX2 static void fd_apply_f64_avx2(const double *dy, const uint64_t *bits, double *dx, int64_t n, double scale) {
    const __m256d vs = _mm256_set1_pd(scale);
    int64_t n_full = n / 64, i;  /* whole mask words here, the rest to the portable code */
    for (i = 0; i < 8 * n_full; i++) {
        uint32_t byte = (uint32_t)(bits[i >> 3] >> (8 * (i & 7))) & 0xFFu;
        __m256i m = fd_expand_byte(byte);
        __m256d mlo = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(m)));
        __m256d mhi = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1)));
        _mm256_storeu_pd(dx + 8 * i, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(dy + 8 * i), vs), mlo));
        _mm256_storeu_pd(dx + 8 * i + 4, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(dy + 8 * i + 4), vs), mhi));
    }
    if (64 * n_full < n)
        fd_apply_f64_portable(dy + 64 * n_full, bits + n_full, dx + 64 * n_full, n - 64 * n_full, scale);
}

FD_TARGET_AVX2 static void fd_gate_f32_avx2(const float *dy, const float *y, float *dx, int64_t n, float scale) {
    const __m256 vs = _mm256_set1_ps(scale), zero = _mm256_setzero_ps();
    int64_t i;
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 m = _mm256_cmp_ps(_mm256_loadu_ps(y + i), zero, _CMP_GT_OQ);
        _mm256_storeu_ps(dx + i, _mm256_and_ps(_mm256_mul_ps(_mm256_loadu_ps(dy + i), vs), m));
    }
    fd_gate_f32_portable(dy + i, y + i, dx + i, n - i, scale);
}

FD_TARGET_AVX2 static void fd_gate_f64_avx2(const double *dy, const double *y, double *dx, int64_t n, double scale) {
    const __m256d vs = _mm256_set1_pd(scale), zero = _mm256_setzero_pd();
    int64_t i;
    for (i = 0; i + 4 <= n; i += 4) {
        __m256d m = _mm256_cmp_pd(_mm256_loadu_pd(y + i), zero, _CMP_GT_OQ);
        _mm256_storeu_pd(dx + i, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(dy + i), vs), m));
    }
    fd_gate_f64_portable(dy + i, y + i, dx + i, n - i, scale);
}
#endif  /* FD_X86 */

/* ---------------------------------------------------------------- run-time dispatch */
static void fd_fwd_f32(const float *x, float *y, uint64_t *bits, int64_t n, uint64_t g0, const fd_draw *d,
                       float scale, const float *bias, int64_t ncols, int64_t col0, int relu) {
    FD_SIMD_CALL2(fd_fwd_f32, x, y, bits, n, g0, d, scale, bias, ncols, col0, relu);
}
static void fd_fwd_f64(const double *x, double *y, uint64_t *bits, int64_t n, uint64_t g0, const fd_draw *d,
                       double scale, const double *bias, int64_t ncols, int64_t col0, int relu) {
    FD_SIMD_CALL2(fd_fwd_f64, x, y, bits, n, g0, d, scale, bias, ncols, col0, relu);
}
static void fd_apply_f32(const float *dy, const uint64_t *bits, float *dx, int64_t n, float scale) {
    FD_SIMD_CALL2(fd_apply_f32, dy, bits, dx, n, scale);
}
static void fd_apply_f64(const double *dy, const uint64_t *bits, double *dx, int64_t n, double scale) {
    FD_SIMD_CALL2(fd_apply_f64, dy, bits, dx, n, scale);
}
static void fd_gate_f32(const float *dy, const float *y, float *dx, int64_t n, float scale) {
    FD_SIMD_CALL2(fd_gate_f32, dy, y, dx, n, scale);
}
static void fd_gate_f64(const double *dy, const double *y, double *dx, int64_t n, double scale) {
    FD_SIMD_CALL2(fd_gate_f64, dy, y, dx, n, scale);
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
FD_DEFINE_GATE_COLSUM(fd_gate_colsum_f32_portable, , float, fd_gated_f32)
FD_DEFINE_GATE_COLSUM(fd_gate_colsum_f64_portable, , double, fd_gated_f64)
#if FD_X86
FD_DEFINE_GATE_COLSUM(fd_gate_colsum_f32_avx2, FD_TARGET_AVX2, float, fd_gated_f32)
FD_DEFINE_GATE_COLSUM(fd_gate_colsum_f64_avx2, FD_TARGET_AVX2, double, fd_gated_f64)
#endif
static void fd_gate_colsum_f32(const float *dy, const float *y, float *dx, float *colsum,
                               int64_t m, int64_t ld, int64_t nb, float scale) {
    FD_SIMD_CALL2(fd_gate_colsum_f32, dy, y, dx, colsum, m, ld, nb, scale);
}
static void fd_gate_colsum_f64(const double *dy, const double *y, double *dx, double *colsum,
                               int64_t m, int64_t ld, int64_t nb, double scale) {
    FD_SIMD_CALL2(fd_gate_colsum_f64, dy, y, dx, colsum, m, ld, nb, scale);
}

#endif /* FASTDROP_DROPOUT_KERNELS_H */
