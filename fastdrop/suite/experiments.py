"""Measurements that must run alone on the machine (after the pool of fits), stored as records.

* ``mc``: Monte-Carlo dropout accuracy vs number of samples, against weight scaling.
* ``threads``: epoch time vs thread count, with and without dropout.
* ``kernel``: dropout forward throughput vs array size, against numpy and np.copyto (and
  torch.nn.functional.dropout when installed).
* ``epoch_cost``: what one epoch of the study's network costs with element and batch dropout
  0.5, relative to none, timed alone and interleaved (the fits' own epoch times carry the load
  of the fits running beside them).
"""
import os
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from .. import dropout as fd_dropout
from .._benchreport import paired_ratio
from ..estimator import MLPClassifier
from .config import RunConfig, get_profile
from .datasets import load_split


def mc_dropout(dataset, profile="quick", rate=0.5, seed=0):
    """Weight scaling against Monte-Carlo averaging of T thinned networks (Srivastava et al.
    2014, Fig. 11): the study's network at drop rate ``rate`` on repeat ``seed``, then on the
    test set, for each T of the profile, the MC average's accuracy, log-loss and mean
    KL(MC || weight scaling), beside weight scaling's accuracy and log-loss."""
    p = get_profile(profile)
    split = load_split(dataset, seed)
    est = MLPClassifier(**RunConfig(dataset, "dropout", rate, seed, profile=profile)
                        .estimator_params())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(split.X_train, split.y_train)
    ws = est.predict_proba(split.X_test)
    curves = {"mc_accuracy": [], "mc_log_loss": [], "mc_kl": []}
    for t in p.mc_samples:
        mc = est.predict_proba(split.X_test, mc_samples=t)
        curves["mc_accuracy"].append(_accuracy(est, mc, split.y_test))
        curves["mc_log_loss"].append(_log_loss(est, mc, split.y_test))
        curves["mc_kl"].append(_mean_kl(mc, ws))
    return {"kind": "mc", "key": f"mc|{dataset}|{profile}|{rate}|{seed}", "dataset": dataset,
            "profile": profile, "rate": rate, "seed": seed, "samples": list(p.mc_samples),
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


def epoch_cost(dataset, profile="quick", rounds=15):
    """Seconds per epoch of the study's network (its default architecture and settings, one
    thread as each fit has) with no dropout, element dropout 0.5 and batch dropout 0.5: one
    epoch of each per round, in an order rotated each round, after a burn-in round. The ratios
    to no dropout are medians of the per-round ratios, so a drifting load cancels out."""
    split = load_split(dataset, 0)
    cases = {"none": ("dropout", 0.0), "element": ("dropout", 0.5),
             "batch": ("dropout-batch", 0.5)}
    ests = {name: MLPClassifier(**RunConfig(dataset, reg, s, 0, profile=profile)
                                .estimator_params(), n_threads=1)
            for name, (reg, s) in cases.items()}
    classes = np.unique(split.y_train)
    for est in ests.values():  # burn-in: allocation, first touch of the data
        est.partial_fit(split.X_train, split.y_train, classes=classes)
    names, times = list(ests), {name: [] for name in ests}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            ests[name].partial_fit(split.X_train, split.y_train)
            times[name].append(time.perf_counter() - t)
    ratios = {name: paired_ratio(times[name], times["none"]) for name in ("element", "batch")}
    return {"kind": "epoch_cost", "key": f"epoch_cost|{dataset}|{profile}", "dataset": dataset,
            "profile": profile, "rounds": rounds, "epoch_times": times,
            "ratio_to_none": ratios}


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
                         "epoch_time": float(np.median(est.history_["time"][1:]))})
    return {"kind": "threads", "key": f"threads|{dataset}|{profile}", "dataset": dataset,
            "profile": profile, "n_samples": int(split.X_train.shape[0]), "rows": rows}


def kernel_throughput(profile="quick", p=0.5):
    """G elements/s of dropout forward (out=) vs size; numpy's best and np.copyto alongside."""
    sizes = [2**k for k in range(12, 23 if profile == "quick" else 25, 2)]
    rng = np.random.default_rng(0)
    try:
        import torch
    except ImportError:  # a baseline only: measured when installed
        torch = None
    rows = []
    for n in sizes:
        x = rng.standard_normal(n).astype(np.float32)
        y = np.empty_like(x)
        t = round((1 - p) * 65536)
        scale = np.float32(1 / (1 - p))
        calls = {
            "fastdrop": lambda: fd_dropout(x, p, seed=1, out=y),
            "numpy": lambda: np.multiply(np.multiply(
                x, rng.integers(0, 65536, n, dtype=np.uint16) < t, out=y), scale, out=y),
            "copy": lambda: np.copyto(y, x),
        }
        if torch is not None:
            xt = torch.from_numpy(x)
            calls["torch"] = lambda: torch.nn.functional.dropout(xt, p, training=True)
        for name, fn in calls.items():
            rows.append({"impl": name, "elements": n, "rate": n / _best_time(fn) / 1e9})
    return {"kind": "kernel", "key": f"kernel|{profile}", "profile": profile, "p": p,
            "rows": rows}


def _best_time(fn, budget=0.05):
    fn()
    best, spent = float("inf"), 0.0
    while spent < budget or best == float("inf"):
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        best, spent = min(best, dt), spent + dt
    return best


def run_experiments(store, profile="quick", datasets=("digits",), progress=True):
    """Run the side experiments not yet stored, one after another."""
    from tqdm.auto import tqdm

    p = get_profile(profile)
    jobs = [(f"mc|{d}|{profile}|{rate}|{s}",
             lambda d=d, rate=rate, s=s: mc_dropout(d, profile, rate, s))
            for d in datasets for rate in p.mc_rates for s in p.seeds]
    jobs += [(f"epoch_cost|{d}|{profile}", lambda d=d: epoch_cost(d, profile))
             for d in p.datasets]
    threads_data = "synthetic-20000x784" if profile == "full" else "synthetic-6000x784"
    jobs.append((f"threads|{threads_data}|{profile}",
                 lambda: epoch_time_vs_threads(threads_data, profile)))
    jobs.append((f"kernel|{profile}", lambda: kernel_throughput(profile)))
    done = store.keys()
    todo = [(k, f) for k, f in jobs if k not in done]
    for key, job in tqdm(todo, desc="experiments", disable=not progress or not todo):
        store.append(job())
    return len(todo)
