"""Thread-count resolution, with stubs when the extension was built without OpenMP."""
import os

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define FD_OPENMP_ENABLED 1
    #else
    #define FD_OPENMP_ENABLED 0
    static int omp_get_max_threads(void) { return 1; }
    static void omp_set_num_threads(int n) { (void)n; }
    #endif
    """
    int FD_OPENMP_ENABLED
    int omp_get_max_threads() noexcept nogil
    void omp_set_num_threads(int n) noexcept nogil

cdef extern from "_blas_pool.h":
    size_t fd_blas_callback_address() noexcept nogil


def openmp_enabled():
    """True when the kernels were compiled with OpenMP (False: serial build, same results)."""
    return bool(FD_OPENMP_ENABLED)


def blas_callback_address():
    """Address of the C callback that runs OpenBLAS's parallel jobs on this OpenMP pool, for
    ``openblas_set_threads_callback_function`` (see ``_blas_pool.h``); 0 where unavailable."""
    return fd_blas_callback_address()


def _cpu_count():
    # Usable cores for this process (affinity / cpuset aware), as joblib would count them.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# Read once, like the OpenMP runtime itself reads OMP_NUM_THREADS once at start-up; this keeps
# a system call and an environment lookup out of every kernel call.
_CPU_COUNT = _cpu_count()
_OMP_NUM_THREADS_SET = bool(os.environ.get("OMP_NUM_THREADS"))


def omp_max_threads():
    """OpenMP's current nthreads ICV (what threadpoolctl reads and limits)."""
    return omp_get_max_threads()


def omp_set_max_threads(int n):
    omp_set_num_threads(n)


def effective_n_threads(n_threads=None, *, capped=True):
    """Resolve ``n_threads`` with scikit-learn's semantics.

    None: OpenMP's current maximum (which honours ``OMP_NUM_THREADS`` and threadpoolctl limits),
    capped at the usable cores unless ``capped`` is False; negative: all usable minus
    ``|n_threads| - 1``; 0: ValueError. A serial build always gives 1.
    """
    if n_threads is not None and type(n_threads) is not int:
        try:
            if isinstance(n_threads, bool):
                raise TypeError
            n_threads = int(n_threads.__index__())
        except (AttributeError, TypeError):
            raise TypeError(
                f"n_threads must be an int or None, got {type(n_threads).__name__}") from None
    if n_threads == 0:
        raise ValueError("n_threads must be a non-zero int or None, got 0")
    if not FD_OPENMP_ENABLED:
        return 1
    max_n = omp_get_max_threads()
    if capped and not _OMP_NUM_THREADS_SET:
        max_n = min(max_n, _CPU_COUNT)
    if n_threads is None:
        return max_n
    if n_threads < 0:
        return max(1, max_n + n_threads + 1)
    return n_threads
