# The SIMD level of the extension module that includes this file (_simd.h); fastdrop._simd
# sets every module's at once.

cdef extern from "_simd.h" nogil:
    int fd_simd_level()
    int fd_set_simd_level(int level)


def simd_level():
    """This module's SIMD level: 0 portable, 1 AVX2, 2 AVX-512."""
    return fd_simd_level()


def set_simd_level(int level):
    """Set it, capped at what the CPU has (negative: the best); returns the level in use."""
    return fd_set_simd_level(level)
