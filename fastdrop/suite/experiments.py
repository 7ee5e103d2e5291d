"""Measurements that must run alone on the machine (after the pool of fits), stored as records.

* ``mc``: Monte-Carlo dropout accuracy vs number of samples, against weight scaling.
* ``uncertainty``: the predictive distributions of dropout, a plain network and a deep
  ensemble scored and calibrated (suite/predictive.py; the profile's uncertainty_datasets).
* ``threads``: epoch time vs thread count, with and without dropout.
* ``kernel``: dropout forward throughput vs array size, against numpy and np.copyto (and
  torch.nn.functional.dropout when installed).
* ``epoch_cost``: what one epoch of the study's network costs with element and batch dropout
  at several rates, and with L1 and L2, relative to none, timed alone and interleaved on a set
  whose epochs are long enough to time (the fits' own epoch times carry the load of the fits
  running beside them).
"""
import functools
import os
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..estimator import MLPClassifier
from .config import LEARNING_RATE, RunConfig, get_profile
from .datasets import load_split
from .runner import _exit_with_parent, in_workers, share_cores, split_sizes
from .stats import paired_ratio


def mc_dropout(dataset, profile="quick", rate=0.5, seed=0, learning_rate=None, *,
               n_threads=None, parent_pid=None):
    """Weight scaling against Monte-Carlo averaging of T thinned networks (Srivastava et al.
    2014, Fig. 11): the study's network at drop rate ``rate`` on repeat ``seed`` (trained as
    its fit was, at ``learning_rate``: the one validation chose for that rate), then on the
    test set, for each T of the profile, the MC average's accuracy, log-loss and mean
    KL(MC || weight scaling), beside weight scaling's accuracy and log-loss.
    ``parent_pid``: as for runner.run_one."""
    _exit_with_parent(parent_pid)
    p = get_profile(profile)
    split = load_split(dataset, seed)
    lr = learning_rate or p.learning_rates[0]
    config = RunConfig(dataset, "dropout", rate, seed, profile=profile,
                       overrides=((LEARNING_RATE, lr),))
    est = MLPClassifier(**config.estimator_params(), n_threads=n_threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(split.X_train, split.y_train, X_val=split.X_val, y_val=split.y_val)
    ws = est.predict_proba(split.X_test)
    curves = {"mc_accuracy": [], "mc_log_loss": [], "mc_kl": []}
    for t in p.mc_samples:
        mc = est.predict_proba(split.X_test, mc_samples=t)
        curves["mc_accuracy"].append(_accuracy(est, mc, split.y_test))
        curves["mc_log_loss"].append(_log_loss(est, mc, split.y_test))
        curves["mc_kl"].append(_mean_kl(mc, ws))
    return {"kind": "mc", "key": f"mc|{dataset}|{profile}|{rate}|{seed}", "dataset": dataset,
            "profile": profile, "rate": rate, "seed": seed, "learning_rate": lr,
            **split_sizes(split),
            "samples": list(p.mc_samples),
            **curves, "weight_scaling_accuracy": _accuracy(est, ws, split.y_test),
            "weight_scaling_log_loss": _log_loss(est, ws, split.y_test)}


def _accuracy(est, proba, y):
    return float(np.mean(est.classes_[proba.argmax(1)] == y))


def _log_loss(est, proba, y, eps=1e-15):
    true = proba[np.arange(len(y)), np.searchsorted(est.classes_, y)]
    return float(-np.mean(np.log(np.clip(true, eps, None))))


def _mean_kl(p, q, eps=1e-15):
    """Mean over rows of KL(p || q), in nats."""
    p, q = np.clip(p, eps, 1), np.clip(q, eps, 1)
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))


def cost_cases(profile="quick"):
    """{case: (regularizer, strength)} timed by epoch_cost: no dropout, element and batch
    dropout at the profile's cost rates, and L2 and L1 at their grids' middle."""
    p = get_profile(profile)
    cases = {"none": ("dropout", 0.0)}
    for mode, reg in (("element", "dropout"), ("batch", "dropout-batch")):
        cases.update({f"{mode} {r:g}": (reg, r) for r in p.cost_rates})
    cases.update({"l2": ("l2", p.l2_grid[len(p.l2_grid) // 2]),
                  "l1": ("l1", p.l1_grid[len(p.l1_grid) // 2])})
    return cases


def epoch_cost(dataset=None, profile="quick", rounds=9):
    """Seconds per epoch of the study's network (its default architecture and settings, one
    thread as each fit has) for each of cost_cases, timed alone after the pool of fits, on
    the profile's cost dataset (MNIST-1D 20k: epochs long enough to time): one epoch of each
    case per round in a rotated order (fastdrop._timing.interleaved). Ratios to no dropout are
    medians of the per-round ratios, so a drifting load cancels out."""
    from .._timing import interleaved

    dataset = dataset or get_profile(profile).cost_dataset
    split = load_split(dataset, 0)
    classes = np.unique(split.y_train)
    cases = cost_cases(profile)
    # one epoch per partial_fit call: nothing to stop early on
    ests = {name: MLPClassifier(**{**RunConfig(dataset, reg, s, 0, profile=profile)
                                   .estimator_params(), "early_stopping": False}, n_threads=1)
            for name, (reg, s) in cases.items()}
    for est in ests.values():  # the first epoch sets the classes
        est.partial_fit(split.X_train, split.y_train, classes=classes)
    times = interleaved({name: (lambda e=est: e.partial_fit(split.X_train, split.y_train))
                         for name, est in ests.items()}, rounds)
    ratios = {name: paired_ratio(times[name], times["none"]) for name in times
              if name != "none"}
    return {"kind": "epoch_cost", "key": f"epoch_cost|{dataset}|{profile}", "dataset": dataset,
            "fits_dataset": get_profile(profile).datasets[0], "profile": profile,
            "rounds": rounds, "n_samples": int(split.X_train.shape[0]),
            "cases": {k: list(v) for k, v in cases.items()},
            "epoch_times": times, "ratio_to_none": ratios}


def epoch_time_vs_threads(dataset="synthetic-20000x784", profile="quick", epochs=3):
    """Epoch time of (512, 512), batch 128, for 1..cores threads, p = 0 and 0.5."""
    split = load_split(dataset, 0)
    cores = os.cpu_count() or 1
    rows = []
    for n_threads in range(1, cores + 1):
        for rate in (0.0, 0.5):
            est = MLPClassifier((512, 512), dropout=rate, max_iter=epochs, tol=0,
                                n_iter_no_change=epochs + 1, batch_size=128, random_state=0,
                                n_threads=n_threads, solver="sgd", learning_rate_init=0.01)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(split.X_train, split.y_train)
            rows.append({"n_threads": n_threads, "dropout": rate,
                         "epoch_time": float(np.median(est.history_["time"][1:])),
                         "epoch_times": [float(t) for t in est.history_["time"][1:]]})
    return {"kind": "threads", "key": f"threads|{dataset}|{profile}", "dataset": dataset,
            "profile": profile, "n_samples": int(split.X_train.shape[0]), "rows": rows}


def kernel_throughput(profile="quick"):
    """G elements/s of dropout forward (out=) vs size: fastdrop, numpy's best and torch (when
    installed) as `fastdrop bench` runs them (fastdrop._baselines), and np.copyto alongside."""
    from .._baselines import IMPLEMENTATIONS, P
    from .._timing import best_time

    sizes = [2**k for k in range(12, 23 if profile == "quick" else 25, 2)]
    rows = []
    for n in sizes:
        x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
        y = np.empty_like(x)
        calls = {"copy": lambda: np.copyto(y, x)}
        for name, impl in IMPLEMENTATIONS.items():
            try:
                calls[name] = impl(x, None, 1).forward
            except ImportError:  # torch: a baseline only, measured when installed
                continue
        for name, fn in calls.items():
            rows.append({"impl": name, "elements": n, "rate": n / best_time(fn) / 1e9})
    return {"kind": "kernel", "key": f"kernel|{profile}", "profile": profile, "p": P,
            "rows": rows}


def run_experiments(store, profile="quick", datasets=("digits",), progress=True,
                    n_jobs=None):
    """Run the side experiments not yet stored: the Monte-Carlo ones in ``n_jobs`` worker
    processes (default: all cores), then the timed ones one after another, alone."""
    from tqdm.auto import tqdm

    p = get_profile(profile)
    lrs = {d: _chosen_learning_rates(store.records(), d) for d in datasets}
    mc = [(f"mc|{d}|{profile}|{rate}|{s}", (d, profile, rate, s, lrs[d].get(rate)))
          for d in datasets for rate in p.mc_rates for s in p.seeds]
    threads_data = "synthetic-20000x784" if profile == "full" else "synthetic-6000x784"
    timed = [(f"epoch_cost|{p.cost_dataset}|{profile}", lambda: epoch_cost(None, profile)),
             (f"threads|{threads_data}|{profile}",
              lambda: epoch_time_vs_threads(threads_data, profile)),
             (f"kernel|{profile}", lambda: kernel_throughput(profile))]
    done = store.keys()
    mc = [args for key, args in mc if key not in done]
    timed = [(k, f) for k, f in timed if k not in done]
    from .predictive import pending_calls

    predictive = [(fn, *args) for _, fn, args in
                  pending_calls(store.records(), p.uncertainty_datasets, p.seeds, profile)]
    bar = tqdm(total=len(mc) + len(predictive) + len(timed), desc="experiments",
               disable=not progress or not (mc or predictive or timed))
    with bar:
        for record in _in_workers(mc_dropout, mc, n_jobs):
            store.append(record)
            bar.update()
        for record in _in_workers(_call, predictive, n_jobs):
            store.append(record)
            bar.update()
        for _, job in timed:
            store.append(job())
            bar.update()
    return len(mc) + len(predictive) + len(timed)


def _call(fn, *args, n_threads=None, parent_pid=None):
    """fn(*args) in a worker: the uncertainty stage's records come from two functions."""
    return fn(*args, n_threads=n_threads, parent_pid=parent_pid)


def _in_workers(fn, calls, n_jobs=None):
    """fn(*args, n_threads=..., parent_pid=...) for each args of ``calls``, in worker
    processes that share the cores; results as they finish."""
    if not calls:
        return iter(())
    n_jobs, threads = share_cores(n_jobs, len(calls))
    return in_workers(functools.partial(fn, n_threads=threads), calls, n_jobs)


def _chosen_learning_rates(records, dataset):
    """{drop rate: the learning rate validation prefers at that rate} from the stored fits."""
    from .selection import sweep

    return {rate: next(iter(runs.values()))["params"].get(LEARNING_RATE)
            for rate, runs in sweep(records, dataset, "dropout").items() if runs}
