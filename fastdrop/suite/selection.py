"""Selection on validation, from stored records only: which configuration of each family
validation prefers, and the per-record measures the claims and figures share."""
import math
from collections import defaultdict

import numpy as np

from .families import LOG_PARAMS, searched_param
from .stats import mean_interval


def fits(records, arch="default", budget=1):
    """The successful fits of one architecture at ``budget`` times the profile's epochs."""
    return [r for r in records if r.get("kind") == "fit" and r.get("error") is None
            and r.get("arch", "default") == arch and r.get("budget", 1) == budget]


def _params_key(params):
    return tuple(sorted((params or {}).items()))


def _config_key(r):
    return r["dataset"], r["family"], _params_key(r.get("params"))


def failed(records, arch="default", budget=1):
    """The configurations (as _by_config keys) with a fit that diverged on some repeat."""
    return {_config_key(r) for r in records if r.get("kind") == "fit"
            and r.get("error") is not None and r.get("arch", "default") == arch
            and r.get("budget", 1) == budget}


def _by_config(records, arch, budget=1):
    """{(dataset, family, params key): {repeat: record}} over the fits of one architecture.
    A configuration that diverged on any repeat is left out: averaged over the repeats it
    survived, it would look better than it is (on wine, Adam at 0.37 with input dropout
    diverged on 7 of 15 repeats and led validation on the other 8)."""
    out = defaultdict(dict)
    broken = failed(records, arch, budget)
    for r in fits(records, arch, budget):
        if "val_score" not in r or _config_key(r) in broken:
            continue  # before the protocol: nothing to select on; or diverged somewhere
        out[_config_key(r)][r["repeat"]] = r
    return out


def _mean_val(runs):
    """Mean validation score, summed in repeat order: the same bits in whatever order the
    records arrived."""
    return float(np.mean([runs[k]["val_score"] for k in sorted(runs)]))


def _strength(family, params):
    """The value of a family's main searched parameter (0 where nothing is searched)."""
    name = searched_param(family)
    return params.get(name, 0.0) if name else 0.0


def _best(options):
    """The option of best mean validation score; ties go to the weaker regularization."""
    return max(sorted(options, key=lambda o: (_strength(o[0], dict(o[1])), o[1])),
               key=lambda o: _mean_val(o[2]))


def best_at(configs, dataset, family, **fixed):
    """{repeat: record} of the validation-best configuration of ``family`` among those whose
    params match ``fixed`` (e.g. ``dropout=0.5``: the best learning rate at that rate)."""
    options = [(f, key, runs) for (d, f, key), runs in configs.items()
               if d == dataset and f == family
               and all(dict(key).get(k) == v for k, v in fixed.items())]
    return _best(options)[2] if options else {}


def _grids(keys):
    values = defaultdict(set)
    for key in keys:
        for name, v in key:
            values[name].add(v)
    return {name: sorted(vals) for name, vals in values.items()}


def _edges(family, grids, params):
    """The parameters whose chosen value is an end of a grid of two or more values, with an
    untried value beyond (a drop rate's grid is the rate sweep, 0 being the "none" family:
    the lowest rate is an edge only above 0.1)."""
    edges = []
    for name, values in grids.items():
        if len(values) < 2 or params[name] not in (values[0], values[-1]):
            continue
        if name not in LOG_PARAMS:
            if params[name] == values[0] and values[0] <= 0.1 or params[name] >= 0.9:
                continue
        edges.append(name)
    return edges


def sweep(records, dataset, family, param="dropout", arch="default"):
    """{value of ``param``: {repeat: record}}: at each value, the configuration of ``family``
    (e.g. its learning rate) validation prefers. What a rate-sweep curve shows."""
    configs = _by_config(records, arch)
    values = sorted({dict(key)[param] for d, f, key in configs
                     if d == dataset and f == family and param in dict(key)})
    return {v: best_at(configs, dataset, family, **{param: v}) for v in values}


def chosen_runs(records, entry):
    """{repeat: record} of a selected entry (one of select()'s)."""
    return _by_config(records, entry["arch"]).get(
        (entry["dataset"], entry["family"], _params_key(entry["params"])), {})


def select(records, arch="default"):
    """Per (dataset, family): the parameters with the best mean validation score over
    repeats (ties: the weaker regularization), and the test accuracy of that choice with its
    interval. The test set is read only for the choice made."""
    configs = _by_config(records, arch)
    families = defaultdict(list)
    for (dataset, family, key), runs in configs.items():
        families[(dataset, family)].append((family, key, runs))
    out = []
    for (dataset, family), options in sorted(families.items()):
        _, key, runs = _best(options)
        params = dict(key)
        grids = _grids(k for _, k, _ in options)
        main = searched_param(family)
        edges = _edges(family, grids, params)
        tests = [runs[k]["test_accuracy"] for k in sorted(runs)]
        ci = mean_interval(tests)
        clipped = [r["max_norm_clipped"] for _, r in sorted(runs.items())
                   if r.get("max_norm_clipped") is not None]
        out.append({
            "dataset": dataset, "family": family, "arch": arch, "params": params,
            "grid": grids.get(main, []) if family != "none" else [],
            "grids": grids, "edges": edges, "at_grid_edge": bool(edges),
            "val_score": _mean_val(runs),
            "best_val_accuracy": float(np.mean([r["best_val_accuracy"]
                                                for _, r in sorted(runs.items())])),
            "test_accuracy": ci.estimate, "test_accuracy_ci": ci.as_list(), "n": ci.n,
            **({"max_norm_clipped": float(np.mean(clipped))} if clipped else {}),
            "test_by_repeat": {int(k): runs[k]["test_accuracy"] for k in sorted(runs)},
        })
    return out


CONVERGENCE_TOL = 0.01   # relative: within 1% of the run's best validation loss
CENSOR_TAIL = 10         # epochs: a capped run whose best came this late has not converged


def epochs_to_converge(record):
    """(epochs, censored): the first epoch whose validation loss is within CONVERGENCE_TOL of
    the run's best. Censored (the true count is at least this) when the run hit its epoch
    cap with its best validation loss in its last CENSOR_TAIL epochs."""
    losses = np.array([np.nan if v is None else v for v in record["history"]["val_loss"]])
    if not np.isfinite(losses).any():
        return None, True
    best = np.nanmin(losses)
    first = int(np.argmax(losses <= best * (1 + CONVERGENCE_TOL))) + 1
    at_cap = not record.get("converged", True)
    censored = at_cap and int(np.nanargmin(losses)) >= len(losses) - CENSOR_TAIL
    return first, censored


TARGET_FRACTION = 0.99   # of the plain network's best validation accuracy


def accuracy_targets(records, fraction=TARGET_FRACTION):
    """Per dataset: the validation accuracy every family is timed to, ``fraction`` of the mean
    best validation accuracy of the no-dropout network validation chose (without one: of the
    weakest validation-chosen family's; before the protocol's records: of the best any
    configuration reached)."""
    chosen = select(records)
    plain = {c["dataset"]: c["best_val_accuracy"] for c in chosen if c["family"] == "none"}
    weakest = {}
    for c in chosen:
        weakest[c["dataset"]] = min(weakest.get(c["dataset"], 1.0), c["best_val_accuracy"])
    best = defaultdict(float)
    for r in fits(records):
        best[r["dataset"]] = max(best[r["dataset"]], r.get("best_val_accuracy", 0.0))
    return {d: fraction * plain.get(d, weakest.get(d, best[d])) for d in best}


def epochs_to_target(record, target):
    """The first epoch whose validation accuracy reaches ``target``; None if none did."""
    for epoch, acc in enumerate(record["history"]["val_accuracy"], 1):
        if acc is not None and acc >= target:
            return epoch
    return None


def time_to_target(record, target):
    """Wall seconds a run needs to reach ``target``: epochs to it times the run's median
    epoch time (the product the brief weighs: more epochs against cheaper ones; the
    median, so that a moment of load on the machine does not count), or infinity when the
    run never reached it (censored)."""
    epochs = epochs_to_target(record, target)
    return math.inf if epochs is None else epochs * record["epoch_time"]


def _params_text(params):
    return ", ".join(f"{k}={v:g}" for k, v in params.items()) or "-"
