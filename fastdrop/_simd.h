/*
 * One way to choose SIMD code at run time, for every kernel header (_philox.h,
 * _dropout_kernels.h, _optim.h): the CPU is asked once, one target macro per instruction set,
 * one dispatch macro, one setter. A kernel with SIMD versions defines NAME_portable and
 * NAME_avx2 (and NAME_avx512), compiled with FD_TARGET_AVX2 (FD_TARGET_AVX512), never with
 * -march=native; every version must produce the bits of the portable one (tests compare them
 * on every path the machine has). Each extension module holds its own level; the Python
 * setter (fastdrop._simd.set_simd) sets them all.
 */
#ifndef FASTDROP_SIMD_H
#define FASTDROP_SIMD_H

#define FD_LEVEL_PORTABLE 0
#define FD_LEVEL_AVX2 1
#define FD_LEVEL_AVX512 2

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FD_X86 1
#include <immintrin.h>
#define FD_TARGET_AVX2 __attribute__((target("avx2")))
#define FD_TARGET_AVX512 __attribute__((target("avx512f,avx512vl")))

static int fd_cpu_level(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
        return FD_LEVEL_AVX512;
    return __builtin_cpu_supports("avx2") ? FD_LEVEL_AVX2 : FD_LEVEL_PORTABLE;
}
#else
#define FD_X86 0
static int fd_cpu_level(void) { return FD_LEVEL_PORTABLE; }
#endif

/* The level in use; -1 until the first call, which takes the best the CPU has. */
static int fd_level = -1;

static inline int fd_simd_level(void) {
    if (fd_level < 0) fd_level = fd_cpu_level();
    return fd_level;
}

/* Use `level`, capped at what the CPU has (negative: the best); returns the level now used. */
static int fd_set_simd_level(int level) {
    int best = fd_cpu_level();
    fd_level = (level < 0 || level > best) ? best : level;
    return fd_level;
}

/* Call the best version of kernel `name` the level allows: FD_SIMD_CALL for kernels with all
 * three versions, FD_SIMD_CALL2 for those with AVX2 and portable ones. */
#if FD_X86
#define FD_SIMD_CALL(name, ...)                                                               \
    do {                                                                                      \
        switch (fd_simd_level()) {                                                            \
            case FD_LEVEL_AVX512: name##_avx512(__VA_ARGS__); break;                          \
            case FD_LEVEL_AVX2: name##_avx2(__VA_ARGS__); break;                              \
            default: name##_portable(__VA_ARGS__);                                            \
        }                                                                                     \
    } while (0)
#define FD_SIMD_CALL2(name, ...)                                                              \
    do {                                                                                      \
        if (fd_simd_level() >= FD_LEVEL_AVX2) name##_avx2(__VA_ARGS__);                       \
        else name##_portable(__VA_ARGS__);                                                    \
    } while (0)
#else
#define FD_SIMD_CALL(name, ...) name##_portable(__VA_ARGS__)
#define FD_SIMD_CALL2(name, ...) name##_portable(__VA_ARGS__)
#endif

#endif /* FASTDROP_SIMD_H */
