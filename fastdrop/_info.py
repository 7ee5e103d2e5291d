"""Facts about this build and machine, for `fastdrop info` and benchmark records."""
import platform

from . import _kernels, _openmp_helpers
from ._simd import simd_paths
from ._threading import get_num_threads, openmp_blas_pool


def blas_info():
    """The BLAS libraries numpy uses, as threadpoolctl reports them (name, kernel, threads)."""
    import numpy  # noqa: F401  (loads the BLAS so threadpoolctl can see it)
    from threadpoolctl import threadpool_info

    return [
        {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads",
                                 "threading_layer")}
        for lib in threadpool_info() if lib.get("user_api") == "blas"
    ]


def step_loop_info():
    """The compiled step loop's state in words: on (with the BLAS it calls) or why not."""
    import os

    from . import _compiled_epoch

    if os.environ.get("FASTDROP_COMPILED_STEPS", "1").strip() == "0":
        return "off (FASTDROP_COMPILED_STEPS=0)"
    if _compiled_epoch.numpy_blas() is None:
        return f"off ({_compiled_epoch._blas[1]})"
    return "compiled, through numpy's own BLAS (fits on dense X)"


def build_info():
    """What this build and machine got: ``python -m fastdrop info`` prints it.

    Returns
    -------
    info : dict
        ``fastdrop`` (the version), ``openmp`` (bool), ``threads`` (the default count),
        ``simd`` and ``optimizer_simd`` (the kernels' dispatched paths), ``rng``, ``blas``
        (numpy's BLAS libraries as threadpoolctl reports them), ``blas_pool``, ``step_loop``
        (the compiled step loop, or why fits step in Python) and the CPU's facts.
    """
    from . import __version__

    blas = blas_info()
    return {
        "fastdrop": __version__,
        "openmp": _openmp_helpers.openmp_enabled(),
        "threads": get_num_threads(),
        "simd": simd_paths()["dropout"],
        "optimizer_simd": simd_paths()["optimizer"],
        "rng": _kernels.RNG_NAME,
        "blas": blas,
        # the kernel OpenBLAS chose for this CPU (e.g. Haswell, SkylakeX): what benchmark
        # records name, since it sets the GEMMs' speed
        "blas_kernel": blas[0]["architecture"] if blas else "none",
        # where multithreaded BLAS calls run inside fastdrop's fit/predict
        "blas_pool": ("OpenMP (shared with the kernels)" if openmp_blas_pool().available()
                      else "BLAS's own threads (kernels on one thread inside fit)"),
        # whether fits whose kernels run on one thread step in C (fastdrop._compiled_epoch)
        "step_loop": step_loop_info(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }
