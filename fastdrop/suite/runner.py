"""Execute runs (joblib processes or a Dask cluster) and record each one as it finishes."""
import os
import threading
import time
import warnings
from dataclasses import asdict

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..estimator import DivergenceWarning, MLPClassifier
from .config import RunConfig
from .datasets import load_split


def run_one(config: RunConfig, n_threads=1, parent_pid=None):
    """Fit one configuration; return its record (a JSON-ready dict).

    ``parent_pid``: the sweep's process, when this runs in a worker process it started; the
    worker then exits soon after that process dies (:func:`_exit_with_parent`)."""
    _exit_with_parent(parent_pid)
    split = load_split(config.dataset, config.seed)  # the seed is the repeat: its own split
    est = MLPClassifier(**config.estimator_params(), n_threads=n_threads)
    start = time.perf_counter()
    error = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # the study records a divergence as such, early stopping's kept weights or not
        warnings.simplefilter("error", DivergenceWarning)
        try:
            est.fit(split.X_train, split.y_train, X_val=split.X_val, y_val=split.y_val)
        except FloatingPointError as exc:  # diverged: recorded, not fatal to the sweep
            error = str(exc)
        except DivergenceWarning as exc:
            error = exc.reason
    wall = time.perf_counter() - start
    record = {"kind": "fit", "key": config.key, **asdict(config),
              "overrides": [list(kv) for kv in config.overrides], "family": config.family,
              "params": config.search_params(), "repeat": config.seed,
              "split_id": split.split_id, **split_sizes(split), "n_threads": n_threads,
              "wall": wall, "error": error}
    if error is not None or not hasattr(est, "history_"):
        return record
    h = est.history_
    times = np.asarray(h["time"])
    val_acc = np.asarray(h["val_accuracy"])
    val_loss = np.asarray(h["val_loss"])
    converged = est.stopped_epoch_ is not None
    train_acc = float(est.score(split.X_train, split.y_train))
    record.update(
        n_iter=est.n_iter_, converged=converged,
        epochs_to_converge=est.stopped_epoch_,
        # median after a burn-in epoch: the first one pays for allocation and caches
        epoch_time=float(np.median(times[1:] if times.size > 1 else times)),
        time_to_converge=float(times.sum()) if converged else None,
        best_val_accuracy=float(val_acc.max()), best_val_loss=float(val_loss.min()),
        final_val_accuracy=float(val_acc[-1]), final_val_loss=float(val_loss[-1]),
        # the selection metric: validation accuracy of the weights that are tested
        val_score=float(est.score(split.X_val, split.y_val)),
        test_accuracy=float(est.score(split.X_test, split.y_test)),
        train_accuracy=train_acc, gap=train_acc - float(val_acc[-1]),
        max_norm_clipped=est.max_norm_clipped_,
        history={k: [None if isinstance(v, float) and v != v else v for v in vals]
                 for k, vals in h.items()},
    )
    return record


def split_sizes(split):
    """Rows in each part of a repeat's split: the corrected t's n_test / n_train reads them."""
    return {"n_train": int(split.y_train.size), "n_val": int(split.y_val.size),
            "n_test": int(split.y_test.size)}


_parent_watch = None


def _exit_with_parent(parent_pid, interval=0.5):
    """Exit this worker within ``interval`` seconds of the death of the sweep process that
    started it. A SIGKILLed sweep cannot stop its workers, and they would otherwise fit on
    as orphans for minutes. Nothing is lost: the sweep stores only what its workers return."""
    global _parent_watch
    if _parent_watch is not None or parent_pid is None or os.getppid() != parent_pid:
        return  # already watching; in the sweep's own process; or not its child (Dask)

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(1)

    _parent_watch = threading.Thread(target=watch, name="fastdrop-parent-watch", daemon=True)
    _parent_watch.start()


def pending(configs, store):
    done = store.keys()
    return [c for c in configs if c.key not in done]


def run_configs(configs, store, *, n_jobs=None, scheduler=None, progress=True):
    """Run every configuration not yet in ``store``; append each record as it finishes.

    ``n_jobs`` worker processes (default: all cores), each fitting with
    ``cores // n_jobs`` threads so the machine is not oversubscribed; or, with
    ``scheduler`` (a Dask distributed address), the cluster's workers, one thread each.
    Returns the number of runs executed.
    """
    todo = pending(configs, store)
    if not todo:
        return 0
    bar = _progress(len(todo), len(configs) - len(todo), progress)
    try:
        if scheduler is not None:
            for record in _dask_results(todo, scheduler):
                store.append(record)
                bar.update()
        else:
            n_jobs, threads = share_cores(n_jobs, len(todo))
            for record in _joblib_results(todo, n_jobs, threads):
                store.append(record)
                bar.update()
    finally:
        bar.close()
    return len(todo)


def share_cores(n_jobs, n_calls):
    """(worker processes, threads each): ``n_jobs`` (default: all cores), no more than there
    are calls, each with an equal share of the cores so the machine is not oversubscribed."""
    cores = os.cpu_count() or 1
    n_jobs = max(1, min(n_jobs or cores, n_calls))
    return n_jobs, max(1, cores // n_jobs)


def _joblib_results(todo, n_jobs, threads):
    if n_jobs == 1:
        return (run_one(c, threads) for c in todo)
    return in_workers(run_one, [(c, threads) for c in todo], n_jobs)


def in_workers(fn, calls, n_jobs):
    """fn(*args, parent_pid) for each args of ``calls`` in ``n_jobs`` worker processes,
    results as they finish. Each worker watches this process from its start (the pool's
    initializer), so one killed before its first task does not outlive the sweep either."""
    from joblib import Parallel, delayed, parallel_config

    me = os.getpid()
    guard = _start_guard()
    try:
        with parallel_config(backend="loky", initializer=_exit_with_parent, initargs=(me,)):
            yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                delayed(fn)(*args, parent_pid=me) for args in calls)
    finally:
        if guard is not None:
            guard.communicate(b"done")  # the pool is done: the guard exits


def _start_guard():
    """The process that kills this sweep's workers if the sweep is killed (_guard.py), where
    /proc exists; None elsewhere."""
    if not os.path.isdir("/proc/self"):
        return None
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_guard.py")
    return subprocess.Popen([sys.executable, "-S", script, str(os.getpid())],
                            stdin=subprocess.PIPE)


def _dask_results(todo, scheduler):
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise RuntimeError("--scheduler needs Dask distributed: pip install "
                           "'fastdrop[distributed]'") from exc
    with Client(scheduler) as client:
        futures = client.map(run_one, todo, n_threads=1, pure=False)
        for future in as_completed(futures):
            yield future.result()


def _progress(total, initial, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total + initial, initial=initial, disable=not enabled, unit="run",
                desc="fits", dynamic_ncols=True)
