"""Thread-count resolution, with stubs when the extension was built without OpenMP."""
import os
import warnings

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

cdef extern from *:
    """
    /* Flush-to-zero and denormals-are-zero for the calling thread (x86: MXCSR's FTZ and DAZ
     * bits; AArch64: FPCR's FZ bit); elsewhere nothing. Returns the previous bits. */
    #if defined(__x86_64__) || defined(_M_X64) || (defined(__i386__) && defined(__SSE2__))
    #include <xmmintrin.h>
    #define FD_FTZ_BITS 0x8040u
    static unsigned fd_fp_get(void) { return _mm_getcsr() & FD_FTZ_BITS; }
    static void fd_fp_put(unsigned bits) {
        _mm_setcsr((_mm_getcsr() & ~FD_FTZ_BITS) | (bits & FD_FTZ_BITS));
    }
    #elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
    #define FD_FTZ_BITS (1u << 24)
    static unsigned fd_fp_get(void) {
        unsigned long r; __asm__ volatile("mrs %0, fpcr" : "=r"(r)); return (unsigned)r & FD_FTZ_BITS;
    }
    static void fd_fp_put(unsigned bits) {
        unsigned long r; __asm__ volatile("mrs %0, fpcr" : "=r"(r));
        r = (r & ~(unsigned long)FD_FTZ_BITS) | (bits & FD_FTZ_BITS);
        __asm__ volatile("msr fpcr, %0" : : "r"(r));
    }
    #else
    #define FD_FTZ_BITS 0u
    static unsigned fd_fp_get(void) { return 0; }
    static void fd_fp_put(unsigned bits) { (void)bits; }
    #endif
    /* The same bits on the calling thread and on every thread of an OpenMP team of n (the
     * pool prange and the BLAS callback use; threads it starts later copy the caller's). */
    static void fd_fp_put_team(unsigned bits, int n) {
        fd_fp_put(bits);
    #ifdef _OPENMP
        if (n > 1) {
            #pragma omp parallel num_threads(n)
            fd_fp_put(bits);
        }
    #endif
    }
    """
    unsigned FD_FTZ_BITS
    unsigned fd_fp_get() noexcept nogil
    void fd_fp_put_team(unsigned bits, int n) noexcept nogil

cdef extern from "_blas_pool.h":
    size_t fd_blas_callback_address() noexcept nogil
    void fd_blas_pool_init() noexcept nogil

fd_blas_pool_init()


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

# The most threads a call may ask for. Far past the cores nothing gets faster, and the OpenMP
# runtime fails badly when it cannot start what was asked: 100000 threads segfault, 2**31
# make libgomp exit the process.
MAX_THREADS = max(256, 4 * _CPU_COUNT)

# GNU OpenMP cannot start threads in a fork()ed child once its parent has run a team: the
# child's first parallel region hangs. So a child forked after this process handed out more
# than one thread runs on one thread (the BLAS callback in _blas_pool.h does likewise).
_handed_out_team = False
_forked_after_team = False
_warned_after_fork = False


def _after_fork_in_child():
    global _forked_after_team
    _forked_after_team = _forked_after_team or _handed_out_team


os.register_at_fork(after_in_child=_after_fork_in_child)


def _single_thread_after_fork():
    global _warned_after_fork
    if _warned_after_fork:
        return 1
    _warned_after_fork = True
    warnings.warn(
        "fastdrop: this process was fork()ed from one that had run OpenMP threads, and GNU "
        "OpenMP cannot start threads after that, so fastdrop runs on one thread here. Start "
        "worker processes with the 'spawn' or 'forkserver' method to keep them multithreaded.",
        RuntimeWarning, stacklevel=4)
    return 1


def flush_denormals(bint on, int n_threads):
    """Set flush-to-zero / denormals-are-zero on the calling thread and an OpenMP team of
    ``n_threads``; returns the calling thread's previous setting, to pass back afterwards
    (:func:`fastdrop._threading.thread_budget`). False where the CPU has no such mode."""
    previous = fd_fp_get() != 0
    fd_fp_put_team(FD_FTZ_BITS if on else 0, n_threads)
    return previous


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
    if n_threads is not None and n_threads > MAX_THREADS:
        raise ValueError(f"n_threads must be at most {MAX_THREADS} (4 per usable core, or "
                         f"256), got {n_threads}")
    if not FD_OPENMP_ENABLED:
        return 1
    max_n = min(omp_get_max_threads(), MAX_THREADS)
    if capped and not _OMP_NUM_THREADS_SET:
        max_n = min(max_n, _CPU_COUNT)
    if n_threads is None:
        n = max_n
    elif n_threads < 0:
        n = max(1, max_n + n_threads + 1)
    else:
        n = n_threads
    return _handed_out(n)


def _handed_out(int n):
    global _handed_out_team
    if n > 1:
        if _forked_after_team:
            return _single_thread_after_fork()
        _handed_out_team = True
    return n
