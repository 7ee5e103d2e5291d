"""fastdrop's thread budget: one number, shared with OpenMP and visible to threadpoolctl."""
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import _openmp_helpers

_explicit = False  # set_num_threads was called: do not cap at the usable cores


def get_num_threads():
    """Number of threads the kernels use when ``n_threads=None``.

    All usable cores by default, honouring ``OMP_NUM_THREADS``, :func:`set_num_threads` and
    ``threadpoolctl.threadpool_limits`` (which sets the same OpenMP value).

    Returns
    -------
    n : int
        The count; 1 in a build without OpenMP.
    """
    return _openmp_helpers.effective_n_threads(None, capped=not _explicit)


def set_num_threads(n):
    """Set the default thread count.

    This sets OpenMP's ``nthreads`` value for the calling thread, so threadpoolctl reports and
    can temporarily override it.

    Parameters
    ----------
    n : int
        A positive count, or a negative one counted from the usable cores (``-1``: all of
        them; ``-2``: all but one; ...).

    Returns
    -------
    None
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
    return _blas_controller().limit(limits=n_threads, user_api="blas")


class _OpenBLASThreading:
    """One loaded OpenBLAS's threading hook: ``openblas_set_threads_callback_function`` and
    the ``openblas_threads_callback_`` pointer it sets (NULL: OpenBLAS's own workers)."""

    _AFFIXES = [(p, s) for p in ("", "scipy_") for s in ("", "64_", "_64")]

    def __init__(self, lib_controller):
        import ctypes

        dynlib = lib_controller.dynlib
        self.filepath = lib_controller.filepath
        self._setter = self._current = None
        for prefix, suffix in self._AFFIXES:
            name = f"{prefix}openblas_set_threads_callback_function{suffix}"
            if hasattr(dynlib, name):
                self._setter = getattr(dynlib, name)
                self._setter.argtypes, self._setter.restype = [ctypes.c_void_p], None
                break
        for prefix, suffix in [("", "")] + self._AFFIXES:
            try:
                self._current = ctypes.c_void_p.in_dll(
                    dynlib, f"{prefix}openblas_threads_callback_{suffix}")
                break
            except ValueError:
                continue

    @property
    def supported(self):
        return self._setter is not None and self._current is not None

    def get(self):
        """The installed callback's address; 0 when none is, or this OpenBLAS (before
        0.3.27, e.g. numpy 1.26's) has no callbacks at all."""
        return (self._current.value or 0) if self._current is not None else 0

    def set(self, address):
        self._setter(address or None)


class OpenMPBlasPool:
    """Runs numpy's OpenBLAS on fastdrop's OpenMP thread pool.

    OpenBLAS's pthreads workers spin on the cores between GEMMs, so OpenMP kernels that fan
    out between two GEMMs fight them (an epoch 13x slower, docs/bench/README.md). OpenBLAS
    0.3.27+ can hand its jobs to a callback instead; ours (``_blas_pool.h``) runs them on the
    OpenMP pool, so both kinds of work take turns on one set of threads and the kernels can
    use the whole budget. ``threadpool_limits`` still caps both: OpenBLAS splits a call into
    as many jobs as its own thread limit.

    The first entry installs the callback and it stays for the life of the process (numpy
    products outside fits then run on the same pool, with the same bits). OpenBLAS reads the
    callback once per call and means its setter to be called before use: switching it back
    and forth while another thread's product runs on OpenBLAS's own workers hung that
    product (see ``tests/test_threads.py``). A fork()ed child gets OpenBLAS's own threading
    back (:meth:`_reset_in_forked_child`).

    Entering returns True when every BLAS library loaded in the process is an OpenBLAS whose
    jobs go to the pool; False (nothing changed) otherwise: another BLAS (MKL, BLIS), an
    OpenBLAS older than 0.3.27 or built on OpenMP, someone else's callback, a serial build,
    or ``FASTDROP_SHARED_BLAS_POOL=0`` in the environment (the way back to OpenBLAS's own
    workers, with the kernels on one thread).
    """

    _lock = threading.Lock()
    _installed = []  # the libraries whose callback is ours

    def __init__(self, controller):
        self._controller = controller

    def __enter__(self):
        cls = type(self)
        if _opted_out():
            return False
        with cls._lock:
            return bool(cls._installed) or self._install()

    def __exit__(self, *exc):
        return False

    def _install(self):
        hooks = self._hooks()
        if hooks is None:
            return False
        address = _openmp_helpers.blas_callback_address()
        for hook in hooks:
            hook.set(address)
        type(self)._installed = hooks
        return True

    def _hooks(self):
        """The loaded BLAS libraries' hooks, or None when one of them cannot take ours."""
        if _opted_out():
            return None
        address = _openmp_helpers.blas_callback_address()
        libs = [lc for lc in self._controller.lib_controllers if lc.user_api == "blas"]
        if not address or not libs:
            return None
        hooks = []
        for lc in libs:
            if lc.internal_api != "openblas" or getattr(lc, "threading_layer", "") != "pthreads":
                return None
            hook = _OpenBLASThreading(lc)
            if not hook.supported or hook.get() not in (0, address):
                return None
            hooks.append(hook)
        return hooks

    def available(self):
        """Whether entering would share the pool (checked without installing anything)."""
        return bool(type(self)._installed) or self._hooks() is not None

    @classmethod
    def uninstall(cls):
        """OpenBLAS's own threading back. Only while no other thread is inside BLAS."""
        with cls._lock:
            for lib in cls._installed:
                lib.set(0)
            cls._installed = []

    @classmethod
    def _reset_in_forked_child(cls):
        # The child has one thread and runs single-threaded (see _openmp_helpers): OpenBLAS's
        # own threading back, and a lock no parent thread can hold.
        cls._lock = threading.Lock()
        cls.uninstall()


def _opted_out():
    return os.environ.get("FASTDROP_SHARED_BLAS_POOL", "1").strip() == "0"


os.register_at_fork(after_in_child=OpenMPBlasPool._reset_in_forked_child)


def _blas_controller():
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    return _controller


def openmp_blas_pool():
    """``OpenMPBlasPool`` over the loaded BLAS libraries: ``with openmp_blas_pool() as
    shared:``, where ``shared`` says whether the element-wise kernels may fan out too."""
    return OpenMPBlasPool(_blas_controller())


@contextmanager
def thread_budget(n_threads):
    """One fit's or prediction's threads: BLAS capped at ``n_threads`` and, where it can be,
    run on the OpenMP pool (:class:`OpenMPBlasPool`). Yields the element-wise kernels'
    thread count: ``n_threads`` when they share that pool with BLAS, else 1 (two pools
    fanning out in turn would fight for the cores)."""
    with denormals_flushed(n_threads):
        if n_threads == 1:
            with blas_limits(1):
                yield 1
            return
        with blas_limits(n_threads), openmp_blas_pool() as shared:
            yield n_threads if shared else 1


@contextmanager
def denormals_flushed(n_threads):
    """Subnormal numbers read and written as 0 on the calling thread and the OpenMP pool
    while a fit or prediction runs, then the previous mode back. An L1 or L2 penalty shrinks
    the weights of dead units geometrically, through the subnormal range, where every
    multiply that reads or makes one takes a microcode assist: a strongly penalized fit's
    epochs grew 14-30x slower as it trained (docs/bench/README.md). Every thread computes
    in the same mode, so results stay the same for any thread count. (BLAS threads of
    OpenBLAS's own, where its jobs cannot run on the OpenMP pool, keep their mode.)"""
    previous = _openmp_helpers.flush_denormals(True, n_threads)
    try:
        yield
    finally:
        _openmp_helpers.flush_denormals(previous, n_threads)


# ---- a fit's threads, step by step ------------------------------------------------------

# Multiply-adds of one training step (its rows times every layer's fan_in x fan_out) below
# which a fit runs on the calling thread, whatever ``n_threads`` allows: there a second
# thread gained at most 8% on a quiet machine, while on a busy one every parallel region
# waits for a descheduled thread (a 246x6 regression fit, 7 regions a step, ran 16-140x
# slower on 2 threads than on 1 under 2 busy processes). Measured in docs/bench/load-2core-intel/.
SERIAL_STEP_WORK = 8_000_000


def step_work(sizes, rows):
    """Multiply-adds of one forward pass of ``rows`` rows through layers ``sizes``."""
    return rows * sum(a * b for a, b in zip(sizes, sizes[1:]))


def fit_threads(n_threads, work):
    """The threads a fit asks for: ``n_threads``, or 1 below :data:`SERIAL_STEP_WORK`."""
    return 1 if work < SERIAL_STEP_WORK else n_threads


def _adaptive_opted_out():
    return os.environ.get("FASTDROP_ADAPTIVE_THREADS", "1").strip() == "0"


def blas_threads_setter():
    """A callable setting every loaded BLAS library's thread count (about 3 us), for
    switching within a ``blas_limits`` block, which restores the counts on exit."""
    libs = [lc for lc in _blas_controller().lib_controllers if lc.user_api == "blas"]

    def set_blas_threads(n):
        for lc in libs:
            lc.set_num_threads(n)
    return set_blas_threads


class FixedThreads:
    """Every step on the same threads (the policy where threads cannot change mid-fit)."""

    def __init__(self, n):
        self.current = n

    def begin_step(self):
        return self.current

    def end_step(self, rows):
        pass

    def plan(self):
        """The next run of steps (see :meth:`StepThreads.plan`): all of them, on ``current``."""
        return RunPlan(self.current, None)

    def record(self, seconds, rows):
        pass


@dataclass(frozen=True)
class RunPlan:
    """A run of steps the compiled loop takes between two looks of the policy: on
    ``threads``, at most ``steps`` of them (None: to the epoch's end). It ends early after a
    step that brings the mean of the latest ``window`` times per row (``recent``, the
    policy's, oldest first, then the run's) above ``stop_above`` or below ``stop_below``
    seconds (0: no bound; no test before half the window is full): the policy's drift
    test, which must see that step before the next."""

    threads: int
    steps: Optional[int]
    stop_above: float = 0.0
    stop_below: float = 0.0
    window: int = 0
    recent: tuple = ()


class StepThreads:
    """Each mini-batch step's threads: the fit's budget ``n`` or one, whichever steps
    faster now.

    A fit's results do not depend on its thread count (every kernel, and every float32
    product run on the shared pool, gives the same bits for any count), so the count may
    change between steps. On a quiet machine ``n`` threads step faster and keep doing so.
    When other processes take the cores, a step on several threads waits at each of its
    parallel regions' barriers for whichever thread the scheduler left out (a 784-512-512
    step went from 4 ms to 200 ms on 2 threads with 2 busy processes, against 6-14 ms on
    one), and one thread steps faster.

    Every so often the other count runs up to ``PROBE_STEPS`` steps; their mean time per row
    against the mean of the current count's last ``WINDOW`` steps decides. Means, not
    medians: under load most steps on 2 threads took 8 ms, as on one, but some took 200 ms,
    and those decide what a fit costs. Moving to one thread needs it faster by ``MARGIN``,
    moving to the budget by ``MARGIN_UP``, since the budget's rare stalls hide from a few
    probe steps. A probe step slower than ``ABORT`` times the current mean ends the probe at
    once, so a count that is plainly worse costs one step (on a quiet machine one thread's
    step took 1.3-1.5x as long). Each fit probes once early (after ``WINDOW // 2`` steps),
    then after a period that doubles with every probe (up to ``MAX_PERIOD`` steps), since a
    move up that a stall soon reverses must not repeat often. Drift probes at once: on
    ``n`` threads, steps ``DRIFT`` times slower than at the last decision (a load arriving);
    on one, steps ``DRIFT_UP`` times faster (a load leaving: one thread's steps slowed only
    1.3-1.6x under load), and a move up on that evidence brings the period back to
    ``MIN_PERIOD``.

    The machine's load outlives a fit. A fit of the same ``model`` (any hashable: the
    estimator passes its budget and step size) as an earlier one in the process goes on
    with that one's schedule: its count, its probe period and the time it decided on; any
    other fit starts on the count the last fit on ``n`` threads ended on, and probes early.

    Where the system's run queue can be read (``room(n)``: whether ``n`` threads would find
    free cores, :func:`cores_free_for`), a fit starts on one thread while other processes hold
    the cores, and a fit on one thread looks instead of guessing: it tries the budget when
    the cores free up, and never while they stay taken. One thread's step times were too
    noisy on a shared VM to see a load leave (1.3-1.6x under load, 4.2-6.4 ms quiet from one
    minute to the next).

    ``set_blas(k)`` sets the BLAS threads; ``clock`` is replaceable for tests.
    """

    PROBE_STEPS, WINDOW, ABORT = 3, 8, 1.2
    RUN_STEPS = 16  # the compiled loop's longest run between two looks (see plan)
    MARGIN, MARGIN_UP, DRIFT, DRIFT_UP = 0.10, 0.15, 1.5, 1.25
    MIN_PERIOD, MAX_PERIOD = 16, 128
    _last_choice = {}  # budget -> the count the last fit with that budget ended on
    _schedules = {}    # model -> the last StepThreads of that model

    def __init__(self, n, set_blas, clock=time.perf_counter, model=None, room=None):
        self.n, self._set_blas, self._clock, self._room = n, set_blas, clock, room
        self._had_room = False    # the last look at the cores found room for n threads
        self.current = self._last_choice.get(n, n)  # the chosen count
        self._running = None      # the count BLAS is set to (None: the budget, as entered)
        self._recent = []         # seconds per row of the chosen count's latest steps
        self._probe = []          # ... of the other count while probing
        self._reference = None    # the chosen count's mean when last decided
        self._period, self._since = self.WINDOW // 2, 0  # the first probe comes early
        self.switches = 0
        self._t = 0.0
        self._drifted = False     # the probe under way was set off by drift
        if model is not None:
            earlier = self._schedules.get(model)
            if earlier is not None:
                self.current, self._reference = earlier.current, earlier._reference
                self._period, self._since = earlier._period, earlier._since
            self._schedules[model] = self
        if room is not None and self.current != 1 and not room(n):
            self.current = 1  # other processes hold the cores now: start on one thread

    @property
    def other(self):
        return 1 if self.current != 1 else self.n

    def begin_step(self):
        """This step's thread count (BLAS set to it)."""
        want = self._choose()
        self._t = self._clock()
        return want

    def end_step(self, rows):
        self.record(self._clock() - self._t, rows)

    def _choose(self):
        want = self.other if self._probing() else self.current
        if want != (self._running or self.n):
            self._set_blas(want)
        self._running = want
        return want

    def plan(self):
        """The compiled loop's next run of steps (a :class:`RunPlan`, BLAS set to its count):
        as many steps as the policy would run on this count before it could look again, each
        then passed to :meth:`record`. A probe goes a step at a time; otherwise the run ends
        where a probe's period comes up, at the next look at the run queue (on one thread),
        or after ``RUN_STEPS``, and early after a step that sets off a drift probe (the loop
        keeps the window of step times as :meth:`record` does): the policy chooses the same
        count for every step as :meth:`begin_step` would."""
        threads = self._choose()
        if threads != self.current:
            return RunPlan(threads, 1)
        steps = self.RUN_STEPS
        if len(self._recent) < self.WINDOW // 2:
            steps = min(steps, self.WINDOW // 2 - len(self._recent))
        if self._since < self._period:
            steps = min(steps, self._period - self._since)
        above = below = 0.0
        if self.current == 1 and self._room is not None:
            steps = min(steps, 4 - self._since % 4)
        elif self._reference is not None:
            if self.current == 1:
                below = self._reference / self.DRIFT_UP
            else:
                above = self._reference * self.DRIFT
        return RunPlan(threads, max(1, steps), above, below, self.WINDOW,
                       tuple(self._recent))

    def record(self, seconds, rows):
        """A step's time on the count :meth:`begin_step` or :meth:`plan` chose."""
        per_row = seconds / max(rows, 1)
        if self._running != self.current:
            self._probe.append(per_row)
            mine = float(np.mean(self._recent))
            if len(self._probe) == self.PROBE_STEPS or per_row > self.ABORT * mine:
                self._decide()
            return
        self._recent = (self._recent + [per_row])[-self.WINDOW:]
        self._since += 1

    def _probing(self):
        if self._probe:
            return True
        if len(self._recent) < self.WINDOW // 2:
            return False
        if self.current == 1 and self._room is not None:
            return self._room_to_move_up()
        if self._since >= self._period:
            return True
        if self._reference is None:
            return False
        drift = float(np.mean(self._recent)) / self._reference
        self._drifted = drift < 1 / self.DRIFT_UP if self.current == 1 else drift > self.DRIFT
        return self._drifted

    def _room_to_move_up(self):
        """On one thread where the system's run queue can be read: try the budget when the
        cores look free and did not at the last look (every 4th step), or its period is up
        and they still do; never while they look taken."""
        room = self._room(self.n) if self._since % 4 == 0 else self._had_room
        freed, self._had_room = room and not self._had_room, room
        self._drifted = freed
        return room and (freed or self._since >= self._period)

    def _decide(self):
        mine, theirs = float(np.mean(self._recent)), float(np.mean(self._probe))
        up = self.current == 1
        self._probe, self._since = [], 0
        if theirs < mine * (1 - (self.MARGIN_UP if up else self.MARGIN)):
            self.current, self.switches = self.other, self.switches + 1
            self._recent, self._reference = [], theirs
        else:
            self._reference = mine
        # probes grow rarer, except right after a load left (one thread's steps sped up):
        # then the budget is tried again soon, in case it comes back
        restart = up and self._drifted and self.current != 1
        self._period = (self.MIN_PERIOD if restart else
                        min(2 * max(self._period, self.MIN_PERIOD // 2), self.MAX_PERIOD))
        self._drifted = False
        self._last_choice[self.n] = self.current


def cores_free_for(n):
    """Whether ``n`` threads of ours would find cores no other process runs on now (Linux:
    the running count of ``/proc/loadavg``, this thread included); None elsewhere."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return running - 1 + n <= (os.cpu_count() or 1)


def _room_probe():
    """cores_free_for where /proc/loadavg answers, else None (timing alone decides)."""
    return cores_free_for if cores_free_for(1) is not None else None


def step_threads(n, kernel_threads, dtype, work=None):
    """The policy of a fit whose budget is ``n`` threads, whose kernels run on
    ``kernel_threads``, in ``dtype``: :class:`StepThreads` where the bits cannot depend on
    the count, i.e. float32 products (``network.gemm_into``) on OpenBLAS sharing the
    kernels' pool; else :class:`FixedThreads` (OpenBLAS's float64 products differed in the
    last bits between 1 and 2 threads for some output widths, and another BLAS promises
    nothing). ``work``, the step's size, tells fits of one model apart (their schedules
    carry over). ``FASTDROP_ADAPTIVE_THREADS=0`` keeps every step on the budget."""
    if (n > 1 and kernel_threads == n and np.dtype(dtype) == np.float32
            and not _adaptive_opted_out()):
        return StepThreads(n, blas_threads_setter(), model=(n, work), room=_room_probe())
    return FixedThreads(kernel_threads)
