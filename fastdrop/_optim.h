/*
 * One-pass optimizer steps over a block of parameters, with the L2 / L1 penalty gradients
 * folded in. Written so that gcc/clang vectorize them: the arrays never overlap (restrict),
 * sign(w) is branch-free (branches mispredict on random signs), and Nesterov's variant is a
 * pair of loop constants rather than a select in the loop:
 *     w += c1 * v_new - c2 * G   with (c1, c2) = (momentum, lr) for Nesterov, (1, 0) otherwise.
 * (Both choices were measured: docs/bench/README.md, "Why the code is as it is".)
 */
#ifndef FASTDROP_OPTIM_H
#define FASTDROP_OPTIM_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define FD_SIGN(T, x) ((T)((x) > 0) - (T)((x) < 0))

#include "_simd.h"

/* The penalty sums sum(w^2) and sum|w| of the weights before the update are taken block by
 * block (FD_BLOCK elements, L1-resident) just ahead of the update, in FD_LANES independent
 * accumulators (a GCC/Clang vector type: gcc vectorizes neither a plain float reduction
 * without -ffast-math nor lane arrays folded into the update loop, measured 4-10x slower),
 * so they cost no pass of their own over memory and are summed in the same order whatever
 * the thread count or SIMD path. */
#define FD_LANES 8
#define FD_BLOCK 512

#if (defined(__GNUC__) || defined(__clang__)) && !defined(FD_NO_VECTOR_EXT)
#define FD_DEFINE_PENALTY_SUMS(NAME, T, ABS, ATTR)                                             \
typedef T NAME##_vec __attribute__((vector_size(FD_LANES * sizeof(T))));                       \
ATTR static inline void NAME(const T *restrict w, int64_t n, T *restrict sq, T *restrict ab) {  \
    NAME##_vec s = {0}, a = {0}, x;                                                            \
    int64_t i = 0;                                                                             \
    for (; i + FD_LANES <= n; i += FD_LANES) {                                                 \
        memcpy(&x, w + i, sizeof x);                                                           \
        s += x * x;                                                                            \
        for (int k = 0; k < FD_LANES; k++)                                                     \
            x[k] = ABS(x[k]);                                                                  \
        a += x;                                                                                \
    }                                                                                          \
    FD_PENALTY_SUMS_TAIL(ABS)                                                                  \
}
#else  /* other compilers (or -DFD_NO_VECTOR_EXT): the same sums, same order, same bits */
#define FD_DEFINE_PENALTY_SUMS(NAME, T, ABS, ATTR)                                             \
ATTR static void NAME(const T *restrict w, int64_t n, T *restrict sq, T *restrict ab) {         \
    T s[FD_LANES] = {0}, a[FD_LANES] = {0};                                                    \
    int64_t i = 0;                                                                             \
    for (; i + FD_LANES <= n; i += FD_LANES)                                                   \
        for (int k = 0; k < FD_LANES; k++) {                                                   \
            s[k] += w[i + k] * w[i + k];                                                       \
            a[k] += ABS(w[i + k]);                                                             \
        }                                                                                      \
    FD_PENALTY_SUMS_TAIL(ABS)                                                                  \
}
#endif

/* Fold a block's lanes into the running sums, then its last n % FD_LANES elements. */
#define FD_PENALTY_SUMS_TAIL(ABS)                                                              \
    for (int k = 0; k < FD_LANES; k++) {                                                       \
        sq[k] += s[k];                                                                         \
        ab[k] += a[k];                                                                         \
    }                                                                                          \
    for (; i < n; i++) {                                                                       \
        sq[0] += w[i] * w[i];                                                                  \
        ab[0] += ABS(w[i]);                                                                    \
    }

/* The loop both optimizers share: blocks of FD_BLOCK elements, the penalty sums of a block
 * (NAME##_sums, defined with the function), then BODY once per element i. */
#define FD_BLOCKED_STEP(NAME, T, n, BODY)                                                      \
    T sq[FD_LANES] = {0}, ab[FD_LANES] = {0};                                                  \
    for (int64_t b = 0; b < n; b += FD_BLOCK) {                                                \
        const int64_t e = n - b < FD_BLOCK ? n : b + FD_BLOCK;                                 \
        NAME##_sums(w + b, e - b, sq, ab);                                                     \
        for (int64_t i = b; i < e; i++) {                                                      \
            BODY                                                                               \
        }                                                                                      \
    }                                                                                          \
    for (int k = 0; k < FD_LANES; k++) { sums[0] += sq[k]; sums[1] += ab[k]; }

#define FD_DEFINE_SGD(NAME, T, ABS, ATTR)                                                      \
FD_DEFINE_PENALTY_SUMS(NAME##_sums, T, ABS, ATTR)                                              \
ATTR static void NAME(T *restrict w, const T *restrict g, T *restrict v, int64_t n, T lr, T mom,    \
                 int nesterov, T l2, T l1, double *restrict sums) {                            \
    const T c1 = nesterov ? mom : (T)1, c2 = nesterov ? lr : (T)0;                             \
    FD_BLOCKED_STEP(NAME, T, n,                                                                \
        T wi = w[i];                                                                           \
        T gi = g[i] + l2 * wi + l1 * FD_SIGN(T, wi);                                           \
        T vi = mom * v[i] - lr * gi;                                                           \
        v[i] = vi;                                                                             \
        w[i] = wi + (c1 * vi - c2 * gi);                                                       \
    )                                                                                          \
}
FD_DEFINE_SGD(fd_sgd_f32_portable, float, fabsf, )
FD_DEFINE_SGD(fd_sgd_f64_portable, double, fabs, )

#define FD_DEFINE_ADAM(NAME, T, SQRT, ABS, ATTR)                                               \
FD_DEFINE_PENALTY_SUMS(NAME##_sums, T, ABS, ATTR)                                              \
ATTR static void NAME(T *restrict w, const T *restrict g, T *restrict m, T *restrict s, int64_t n,  \
                 T lr_t, T b1, T b2, T eps, T l2, T l1, double *restrict sums) {               \
    FD_BLOCKED_STEP(NAME, T, n,                                                                \
        T wi = w[i];                                                                           \
        T gi = g[i] + l2 * wi + l1 * FD_SIGN(T, wi);                                           \
        T mi = b1 * m[i] + (1 - b1) * gi;                                                      \
        T si = b2 * s[i] + (1 - b2) * gi * gi;                                                 \
        m[i] = mi;                                                                             \
        s[i] = si;                                                                             \
        w[i] = wi - lr_t * mi / (SQRT(si) + eps);                                              \
    )                                                                                          \
}
FD_DEFINE_ADAM(fd_adam_f32_portable, float, sqrtf, fabsf, )
FD_DEFINE_ADAM(fd_adam_f64_portable, double, sqrt, fabs, )

/* The same loops compiled for AVX2 and for AVX-512, chosen at run time (the best the CPU
 * has; tests force each). No FMA in any of them (setup.py builds with -ffp-contract=off), so
 * every path rounds as the portable code does: the same bits whichever runs.
 * An AVX-512 path for a memory-bound loop, because on a machine that has it the AVX2 and
 * scalar builds ran an order of magnitude slower (docs/bench/README.md). */
#if FD_X86
FD_DEFINE_SGD(fd_sgd_f32_avx2, float, fabsf, FD_TARGET_AVX2)
FD_DEFINE_SGD(fd_sgd_f64_avx2, double, fabs, FD_TARGET_AVX2)
FD_DEFINE_ADAM(fd_adam_f32_avx2, float, sqrtf, fabsf, FD_TARGET_AVX2)
FD_DEFINE_ADAM(fd_adam_f64_avx2, double, sqrt, fabs, FD_TARGET_AVX2)
FD_DEFINE_SGD(fd_sgd_f32_avx512, float, fabsf, FD_TARGET_AVX512)
FD_DEFINE_SGD(fd_sgd_f64_avx512, double, fabs, FD_TARGET_AVX512)
FD_DEFINE_ADAM(fd_adam_f32_avx512, float, sqrtf, fabsf, FD_TARGET_AVX512)
FD_DEFINE_ADAM(fd_adam_f64_avx512, double, sqrt, fabs, FD_TARGET_AVX512)

#endif  /* FD_X86 */

/* sums[0] += sum(w^2), sums[1] += sum|w| over the block, before the update. */
static void fd_sgd_f32(float *w, const float *g, float *v, int64_t n, float lr, float mom,
                       int nesterov, float l2, float l1, double *sums) {
    FD_SIMD_CALL(fd_sgd_f32, w, g, v, n, lr, mom, nesterov, l2, l1, sums);
}
static void fd_sgd_f64(double *w, const double *g, double *v, int64_t n, double lr, double mom,
                       int nesterov, double l2, double l1, double *sums) {
    FD_SIMD_CALL(fd_sgd_f64, w, g, v, n, lr, mom, nesterov, l2, l1, sums);
}
static void fd_adam_f32(float *w, const float *g, float *m, float *s, int64_t n, float lr_t,
                        float b1, float b2, float eps, float l2, float l1, double *sums) {
    FD_SIMD_CALL(fd_adam_f32, w, g, m, s, n, lr_t, b1, b2, eps, l2, l1, sums);
}
static void fd_adam_f64(double *w, const double *g, double *m, double *s, int64_t n,
                        double lr_t, double b1, double b2, double eps, double l2, double l1,
                        double *sums) {
    FD_SIMD_CALL(fd_adam_f64, w, g, m, s, n, lr_t, b1, b2, eps, l2, l1, sums);
}

#endif
