"""The SIMD code path of every kernel, chosen at run time (_simd.h): the best the CPU has by
default; tests force each path to compare it with the portable code."""
from . import _kernels, _nn_kernels

LEVELS = ("portable", "avx2", "avx512")
_MODULES = (_kernels, _nn_kernels)
# The dropout kernels have portable and AVX2 versions; the optimizer also an AVX-512 one.
_DROPOUT_TOP = LEVELS.index("avx2")


def set_simd(name):
    """Use code path ``name`` ("portable", "avx2", "avx512", capped at what the CPU has) or
    the CPU's best ("best") in every extension; returns the name of the level now in use."""
    if name != "best" and name not in LEVELS:
        raise ValueError(f"name must be one of {LEVELS + ('best',)}, got {name!r}")
    level = -1 if name == "best" else LEVELS.index(name)
    return LEVELS[min(module.set_simd_level(level) for module in _MODULES)]


def simd_paths():
    """{"dropout": path, "optimizer": path}: what each family of kernels runs now."""
    level = _nn_kernels.simd_level()
    return {"dropout": LEVELS[min(_kernels.simd_level(), _DROPOUT_TOP)],
            "optimizer": LEVELS[level]}
