/* What the compiled step loop (_step_loop.pxi) needs from C: 2-d products through numpy's own
 * CBLAS, chosen exactly as numpy's matmul chooses, and a clock.
 *
 * The compiled step loop (_step_loop.pxi) must give the bits the Python loop gives, whose
 * products are np.matmul calls. numpy's matmul (umath/matmul.c.src, unchanged in this part
 * from 1.26 to 2.x) picks, from the shapes and strides: gemm for matrix @ matrix, gemv when
 * one side is a vector (one row, or one output column), its own loops for an inner dimension
 * of 1 or a 1x1 result. fd_matmul makes the same choice with the same arguments, calling the
 * functions numpy's extension module itself resolves (found by the Python side, fastdrop.
 * _compiled_epoch), so each product is the same call into the same library. Of the products
 * numpy computes with its own loops, only those of an inner dimension of 1 are taken: each
 * element is then 0 + a * b, one rounding however numpy was compiled; and empty ones (zeros).
 * A 1x1 result is numpy's dot: its BLAS dot summed into a double, as numpy does. Strides BLAS
 * cannot take are refused (-1); the loop never makes them.
 *
 * Strides are in elements. Integer arguments are passed as 64-bit: right for ILP64 builds,
 * and read correctly by LP64 ones on the little-endian 64-bit ABIs the Python side allows
 * (integer arguments travel in 64-bit registers and 8-byte stack slots).
 */
#ifndef FD_STEP_LOOP_H
#define FD_STEP_LOOP_H

#include <stdint.h>
#if !defined(_WIN32)
#include <time.h>
#endif

/* Seconds on the clock time.perf_counter reads on Linux (0 where the loop is never used). */
static inline double fd_now(void)
{
#if !defined(_WIN32)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#else
    return 0.0;
#endif
}

enum { FD_ROW_MAJOR = 101, FD_COL_MAJOR = 102, FD_NO_TRANS = 111, FD_TRANS = 112 };

typedef void (*fd_sgemm_t)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, float,
                           const float *, int64_t, const float *, int64_t, float, float *,
                           int64_t);
typedef void (*fd_dgemm_t)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, double,
                           const double *, int64_t, const double *, int64_t, double, double *,
                           int64_t);
typedef void (*fd_sgemv_t)(int64_t, int64_t, int64_t, int64_t, float, const float *, int64_t,
                           const float *, int64_t, float, float *, int64_t);
typedef void (*fd_dgemv_t)(int64_t, int64_t, int64_t, int64_t, double, const double *,
                           int64_t, const double *, int64_t, double, double *, int64_t);

typedef float (*fd_sdot_t)(int64_t, const float *, int64_t, const float *, int64_t);
typedef double (*fd_ddot_t)(int64_t, const double *, int64_t, const double *, int64_t);

typedef struct {
    fd_sgemm_t sgemm;
    fd_dgemm_t dgemm;
    fd_sgemv_t sgemv;
    fd_dgemv_t dgemv;
    fd_sdot_t sdot;
    fd_ddot_t ddot;
} fd_blas;

/* numpy's is_blasable2d: the second axis contiguous, the first's stride at least its width. */
static inline int fd_blasable(int64_t s1, int64_t s2, int64_t d2)
{
    return s2 == 1 && s1 >= d2;
}

/* The product's kind as numpy's matmul sees it: 1 gemm, 2 gemv (vector @ matrix),
   3 gemv (matrix @ vector), 4 numpy's own loop over an inner dimension of 1, 5 an empty
   product (zeros), 6 a 1x1 result (dot), 0 anything else numpy computes itself or copies
   first. */
static inline int fd_matmul_kind(int64_t a0, int64_t a1, int64_t b0, int64_t b1,
                                 int64_t o0, int64_t o1, int64_t dm, int64_t dn, int64_t dp)
{
    int a_ok = fd_blasable(a0, a1, dn) || fd_blasable(a1, a0, dm);
    int b_ok = fd_blasable(b0, b1, dp) || fd_blasable(b1, b0, dn);
    int o_ok = fd_blasable(o0, o1, dp);
    if (dm == 0 || dn == 0 || dp == 0)
        return 5;
    if (dm == 1 || dn == 1 || dp == 1) {
        if (dm == 1 && dp == 1)
            return a1 > 0 && b0 > 0 ? 6 : 0;
        if (dn == 1 && (dp == 1 || dm == 1))
            return 4;
        if (dm == 1 && b_ok && fd_blasable(a1, 1, 1))
            return 2;
        if (dp == 1 && a_ok && fd_blasable(b0, 1, 1))
            return 3;
        return dn == 1 ? 4 : 0;
    }
    /* numpy 2.x also transposes the call for an F-ordered output; ours are C-ordered */
    return a_ok && b_ok && o_ok && !(o0 < o1) ? 1 : 0;
}

#define FD_DEFINE_MATMUL(NAME, T, GEMM, GEMV, DOT)                                                 \
static void NAME##_gemv(const fd_blas *blas, const T *ip1, int64_t is1_m, int64_t is1_n,       \
                        const T *ip2, int64_t is2_n, T *op, int64_t os, int64_t m, int64_t n)  \
{                                                                                             \
    if (fd_blasable(is1_m, is1_n, n))                                                         \
        blas->GEMV(FD_COL_MAJOR, FD_TRANS, n, m, (T)1, ip1, is1_m, ip2, is2_n, (T)0, op, os);  \
    else                                                                                      \
        blas->GEMV(FD_ROW_MAJOR, FD_TRANS, n, m, (T)1, ip1, is1_n, ip2, is2_n, (T)0, op, os);  \
}                                                                                             \
                                                                                              \
/* out (dm, dp) = a (dm, dn) @ b (dn, dp); 0, or -1 for a product numpy computes itself. */   \
static int NAME(const fd_blas *blas, const T *a, int64_t a0, int64_t a1, const T *b,           \
                int64_t b0, int64_t b1, T *out, int64_t o0, int64_t o1, int64_t dm,            \
                int64_t dn, int64_t dp)                                                       \
{                                                                                             \
    int64_t ta, tb, lda, ldb;                                                                 \
    switch (fd_matmul_kind(a0, a1, b0, b1, o0, o1, dm, dn, dp)) {                             \
    case 2:                                                                                   \
        NAME##_gemv(blas, b, b1, b0, a, a1, out, o1, dp, dn);                                 \
        return 0;                                                                             \
    case 3:                                                                                   \
        NAME##_gemv(blas, a, a0, a1, b, b0, out, o0, dm, dn);                                 \
        return 0;                                                                             \
    case 6: /* numpy's dot: the BLAS dot, summed into a double */                             \
        out[0] = (T)(0.0 + (double)blas->DOT(dn, a, a1, b, b0));                              \
        return 0;                                                                             \
    case 5: /* numpy's loop: every element 0 + nothing */                                     \
        for (ta = 0; ta < dm; ta++)                                                           \
            for (tb = 0; tb < dp; tb++)                                                       \
                out[ta * o0 + tb * o1] = (T)0;                                                \
        return 0;                                                                             \
    case 4: /* numpy's loop: out = 0, then out += a * b over the one inner index */          \
        for (ta = 0; ta < dm; ta++)                                                           \
            for (tb = 0; tb < dp; tb++)                                                       \
                out[ta * o0 + tb * o1] = (T)0 + a[ta * a0] * b[tb * b1];                      \
        return 0;                                                                             \
    case 1:                                                                                   \
        if (a == b && dm == dp && a0 == b1 && a1 == b0)                                       \
            return -1; /* numpy's syrk case: never one of the loop's products */              \
        ta = fd_blasable(a0, a1, dn) ? FD_NO_TRANS : FD_TRANS;                                \
        lda = ta == FD_NO_TRANS ? a0 : a1;                                                    \
        tb = fd_blasable(b0, b1, dp) ? FD_NO_TRANS : FD_TRANS;                                \
        ldb = tb == FD_NO_TRANS ? b0 : b1;                                                    \
        blas->GEMM(FD_ROW_MAJOR, ta, tb, dm, dp, dn, (T)1, a, lda, b, ldb, (T)0, out, o0);    \
        return 0;                                                                             \
    default:                                                                                  \
        return -1;                                                                            \
    }                                                                                         \
}

FD_DEFINE_MATMUL(fd_matmul_f32, float, sgemm, sgemv, sdot)
FD_DEFINE_MATMUL(fd_matmul_f64, double, dgemm, dgemv, ddot)

#endif
