"""fastdrop's thread budget: one number, shared with OpenMP and visible to threadpoolctl."""
from . import _openmp_helpers

_explicit = False  # set_num_threads was called: do not cap at the usable cores


def get_num_threads():
    """Number of threads the kernels use when ``n_threads=None``.

    All usable cores by default, honouring ``OMP_NUM_THREADS``, :func:`set_num_threads` and
    ``threadpoolctl.threadpool_limits`` (which sets the same OpenMP value). 1 in a serial build.
    """
    return _openmp_helpers.effective_n_threads(None, capped=not _explicit)


def set_num_threads(n):
    """Set the default thread count (``-1``: all usable cores; ``-2``: all but one; ...).

    This sets OpenMP's ``nthreads`` value for the calling thread, so threadpoolctl reports and
    can temporarily override it.
    """
    global _explicit
    n = _openmp_helpers.effective_n_threads(n)
    _openmp_helpers.omp_set_max_threads(n)
    _explicit = True


def resolve_n_threads(n_threads):
    """The effective count for one call: ``None`` means :func:`get_num_threads`."""
    if n_threads is None:
        return get_num_threads()
    return _openmp_helpers.effective_n_threads(n_threads, capped=not _explicit)


_controller = None


def blas_limits(n_threads):
    """``threadpoolctl``'s limit on the BLAS thread pools, as a context manager, from one
    controller built on first use: building one scans every loaded library (about 4 ms, a
    tenth of a small dataset's epoch), so ``threadpool_limits`` per fit call would pay that
    each time. The BLAS fastdrop calls is numpy's, loaded before fastdrop is."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    return _controller.limit(limits=n_threads, user_api="blas")
