"""Aggregates and the article's claims, computed from stored records only."""
import math
from collections import defaultdict

import numpy as np

from .._benchreport import median_ci
from .config import LEARNING_RATE, LOG_PARAMS, SEARCHED_PARAM, get_profile
from .stats import (CONFIDENCE, MARGIN, METHOD, Interval, beats, both, mean_interval,
                    not_better, paired_interval, within)

METRICS = ("val_score", "best_val_accuracy", "best_val_loss", "final_val_loss",
           "test_accuracy", "epoch_time", "n_iter", "gap")


def fits(records, arch="default", budget=1):
    """The successful fits of one architecture at ``budget`` times the profile's epochs."""
    return [r for r in records if r.get("kind") == "fit" and r.get("error") is None
            and r.get("arch", "default") == arch and r.get("budget", 1) == budget]


def targets(records, fraction=0.99):
    """Per dataset: a validation accuracy every family can reach, ``fraction`` of the
    weakest validation-chosen family's mean best validation accuracy (before the protocol's
    records: of the best accuracy any configuration reached)."""
    weakest = {}
    for c in select(records):
        weakest[c["dataset"]] = min(weakest.get(c["dataset"], 1.0), c["best_val_accuracy"])
    if weakest:
        return {d: fraction * b for d, b in weakest.items()}
    best = defaultdict(float)
    for r in fits(records):
        best[r["dataset"]] = max(best[r["dataset"]], r["best_val_accuracy"])
    return {d: fraction * b for d, b in best.items()}


def time_to_target(record, target):
    """Wall seconds of training until validation accuracy first reaches ``target``."""
    elapsed = 0.0
    for t, acc in zip(record["history"]["time"], record["history"]["val_accuracy"]):
        elapsed += t
        if acc is not None and acc >= target:
            return elapsed
    return None


def _sd(values):
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def aggregate(records, arch="default"):
    """{(dataset, family, params key): {metric: (mean, std), 'n': seeds, ...}}."""
    goal = targets(records)
    groups = defaultdict(list)
    for r in fits(records, arch):
        groups[(r["dataset"], r["family"], _params_key(r.get("params")))].append(r)
    out = {}
    for key, runs in groups.items():
        row = {"n": len(runs)}
        for m in METRICS:
            vals = np.array([r.get(m, np.nan) for r in runs], dtype=float)
            row[m] = (float(vals.mean()), _sd(vals))
        counts = [epochs_to_converge(r) for r in runs]
        done = [e for e, censored in counts if e and not censored]
        row["censored"] = sum(censored for _, censored in counts) / len(runs)
        row["epochs_to_converge"] = (float(np.mean(done)), _sd(done)) \
            if done else (float("nan"), float("nan"))
        ttt = [time_to_target(r, goal[key[0]]) for r in runs]
        reached = [t for t in ttt if t is not None]
        row["time_to_target"] = (float(np.mean(reached)), _sd(reached)) \
            if reached else (float("nan"), float("nan"))
        row["reached_target"] = len(reached) / len(runs)
        out[key] = row
    return out


# ---------------------------------------------------------------- selection on validation
def _params_key(params):
    return tuple(sorted((params or {}).items()))


def _by_config(records, arch, budget=1):
    """{(dataset, family, params key): {repeat: record}} over the fits of one architecture."""
    out = defaultdict(dict)
    for r in fits(records, arch, budget):
        if "val_score" not in r:
            continue  # a record from before the protocol: nothing to select on
        out[(r["dataset"], r["family"], _params_key(r.get("params")))][r["repeat"]] = r
    return out


def _mean_val(runs):
    return float(np.mean([r["val_score"] for r in runs.values()]))


def _strength(family, params):
    """The value of a family's main searched parameter (0 where nothing is searched)."""
    name = SEARCHED_PARAM.get(family, "dropout")
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
        main = SEARCHED_PARAM.get(family, "dropout")
        edges = _edges(family, grids, params)
        tests = [runs[k]["test_accuracy"] for k in sorted(runs)]
        ci = mean_interval(tests)
        clipped = [r["max_norm_clipped"] for r in runs.values()
                   if r.get("max_norm_clipped") is not None]
        out.append({
            "dataset": dataset, "family": family, "arch": arch, "params": params,
            "grid": grids.get(main, []) if family != "none" else [],
            "grids": grids, "edges": edges, "at_grid_edge": bool(edges),
            "val_score": _mean_val(runs),
            "best_val_accuracy": float(np.mean([r["best_val_accuracy"]
                                                for r in runs.values()])),
            "test_accuracy": ci.estimate, "test_accuracy_ci": ci.as_list(), "n": ci.n,
            **({"max_norm_clipped": float(np.mean(clipped))} if clipped else {}),
            "test_by_repeat": {int(k): runs[k]["test_accuracy"] for k in sorted(runs)},
        })
    return out


# ---------------------------------------------------------------- the claims
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


def _paired(a, b):
    """The two sides' test accuracies on the repeats both ran, in repeat order."""
    common = sorted(set(a) & set(b))
    return [a[k] for k in common], [b[k] for k in common]


def _claim(dataset, claim, source, verdict, interval, evidence):
    return {"dataset": dataset, "claim": claim, "source": source, "verdict": verdict,
            "estimate": interval.estimate, "ci": interval.as_list(), "n": interval.n,
            "evidence": evidence}


ARTICLE = "the article"
SRIVASTAVA = "Srivastava et al. 2014"


def claims(records):
    """Every claim's verdict per dataset, from paired intervals over repeats (stats.py)."""
    out = []
    for arch in ("default", "seed"):
        chosen = {(c["dataset"], c["family"]): c for c in select(records, arch)}
        configs = _by_config(records, arch)
        for dataset in sorted({d for d, _ in chosen}):
            out += _sweep_claims(dataset, arch, chosen, configs)
            if arch == "default":
                out += _default_claims(dataset, chosen, configs)
            else:
                out += _budget_claims(dataset, chosen, records)
    out += _cost_claims(records) + _mc_claims(records)
    return out


def _tests(runs):
    return {k: r["test_accuracy"] for k, r in runs.items()}


def _sweep_claims(dataset, arch, chosen, configs):
    sel = chosen.get((dataset, "dropout"))
    if sel is None:
        return []
    best = sel["test_by_repeat"]
    rate = sel["params"].get("dropout")
    none = _tests(best_at(configs, dataset, "none"))
    top = max(sel["grid"]) if sel["grid"] else None
    out = []
    ref = 0.5 if arch == "default" else 0.2
    at_ref = _tests(best_at(configs, dataset, "dropout", dropout=ref))
    if at_ref:
        iv = paired_interval(*_paired(best, at_ref))
        claim = ("p around 0.5 on hidden layers works best" if arch == "default" else
                 "the article's network: the best rate is near 0.2")
        out.append(_claim(dataset, claim, ARTICLE, not_better(iv), iv,
                          f"validation chose p={rate:g}; its test accuracy minus p={ref:g}'s "
                          f"(each at its validation-chosen learning rate; holds when p={ref:g} "
                          "is within the margin of the choice)"))
    if none and top is not None and top != rate:
        rises = paired_interval(*_paired(best, none))
        at_top = _tests(best_at(configs, dataset, "dropout", dropout=top))
        falls = paired_interval(*_paired(best, at_top))
        claim = ("accuracy rises then falls with the rate" if arch == "default" else
                 "the article's network: accuracy rises then falls with the rate")
        out.append(_claim(dataset, claim, ARTICLE, both(beats(rises), beats(falls)), rises,
                          f"chosen p={rate:g} minus p=0: {rises.estimate:+.4f}; minus "
                          f"p={top:g}: {falls.estimate:+.4f} [{falls.low:+.4f}, "
                          f"{falls.high:+.4f}]"))
    return out


def _default_claims(dataset, chosen, configs):
    out = []
    sel = chosen.get((dataset, "dropout"))
    penalties = [chosen[(dataset, f)] for f in ("l2", "l1") if (dataset, f) in chosen]
    if penalties:
        penalty = max(penalties, key=lambda c: c["val_score"])  # the better, on validation
        rivals = [(sel, "dropout beats the better of L1 and L2")]
        maxnorm = chosen.get((dataset, "dropout-maxnorm"))
        if maxnorm and maxnorm.get("max_norm_clipped"):
            rivals.append((maxnorm, "dropout + max-norm beats the better of L1 and L2"))
        for rival, claim in rivals:
            if rival is None:
                continue
            iv = paired_interval(*_paired(rival["test_by_repeat"], penalty["test_by_repeat"]))
            out.append(_claim(dataset, claim, SRIVASTAVA, beats(iv), iv,
                              f"{rival['family']} {_params_text(rival['params'])} vs "
                              f"{penalty['family']} {_params_text(penalty['params'])}, all "
                              "chosen on validation"))
    hidden = best_at(configs, dataset, "dropout", dropout=0.5)
    with_input = chosen.get((dataset, "input-dropout"))
    if hidden and with_input:
        iv = paired_interval(*_paired(with_input["test_by_repeat"], _tests(hidden)))
        out.append(_claim(dataset, "no dropout on the input", ARTICLE, not_better(iv), iv,
                          "input 0.2 + hidden 0.5 minus hidden 0.5 alone, each at its "
                          "validation-chosen learning rate (holds when input dropout does "
                          "not help by the margin)"))
    none_sel = chosen.get((dataset, "none"))
    if none_sel:
        lr = none_sel["params"].get(LEARNING_RATE)
        fixed = {LEARNING_RATE: lr} if lr is not None else {}
        out += _epochs_claim(dataset, best_at(configs, dataset, "dropout", dropout=0.5,
                                              **fixed),
                             best_at(configs, dataset, "none", **fixed), lr)
    return out


def _epochs_claim(dataset, hidden, none, lr):
    if not hidden or not none:
        return []
    ratios, censored = [], 0
    for k in sorted(set(hidden) & set(none)):
        (e5, c5), (e0, c0) = epochs_to_converge(hidden[k]), epochs_to_converge(none[k])
        if c5 or c0 or not e5 or not e0:
            censored += 1
            continue
        ratios.append(math.log(e5 / e0))
    iv = mean_interval(ratios)
    exp = Interval(math.exp(iv.estimate), math.exp(iv.low), math.exp(iv.high), iv.n) \
        if ratios else iv
    at = f" at the learning rate chosen for no dropout ({lr:g})" if lr is not None else ""
    return [_claim(dataset, "dropout roughly doubles the epochs to converge", ARTICLE,
                   within(exp, 1.5, 3.0), exp,
                   f"epochs to reach validation loss within {CONVERGENCE_TOL:.0%} of the run's "
                   f"best, p=0.5 / p=0{at}, geometric mean; {censored} censored pair(s) left "
                   "out")]


def _budget_claims(dataset, chosen, records):
    """The article's network at its sweep's top rate with a longer epoch budget against the
    profile's budget: does training longer change the high rates?"""
    sel = chosen.get((dataset, "dropout"))
    budgets = sorted({r.get("budget", 1) for r in records if r.get("kind") == "fit"})
    if sel is None or not sel["grid"] or len(budgets) < 2:
        return []
    top, longer = max(sel["grid"]), budgets[-1]
    short = best_at(_by_config(records, "seed"), dataset, "dropout", dropout=top)
    long = best_at(_by_config(records, "seed", longer), dataset, "dropout", dropout=top)
    if not short or not long:
        return []
    iv = paired_interval(*_paired(_tests(long), _tests(short)))
    capped = sum(not r.get("converged", True) for r in short.values())
    return [_claim(dataset, f"the article's network: {longer}x the epochs changes the "
                            f"accuracy at p={top:g}", ARTICLE, beats(iv), iv,
                   f"test accuracy with {longer}x the epoch budget minus with 1x, p={top:g}; "
                   f"{capped} of {len(short)} 1x runs hit their epoch cap (holds when the "
                   "longer budget helps)")]


def _params_text(params):
    return ", ".join(f"{k}={v:g}" for k, v in params.items()) or "-"


def _cost_claims(records):
    out = []
    cost = {r["dataset"]: r for r in records if r.get("kind") == "epoch_cost"}  # latest wins
    for dataset, r in sorted(cost.items()):
        times = r["epoch_times"]
        for mode in ("element", "batch"):
            case = f"{mode} 0.5" if f"{mode} 0.5" in times else mode  # older records: mode
            if case not in times:
                continue
            ratios = np.asarray(times[case]) / np.asarray(times["none"])
            low, high, coverage = median_ci(ratios)
            iv = Interval(float(np.median(ratios)), low, high, int(ratios.size))
            out.append(_claim(dataset, f"each epoch is cheaper with dropout ({mode} mode)",
                              ARTICLE, within(iv, 0.0, 1.0), iv,
                              f"seconds per epoch at p=0.5 / p=0, timed alone on {dataset}, "
                              f"median of {ratios.size} paired rounds, distribution-free "
                              f"interval (coverage {coverage:.3f})"))
    return out


def _mc_claims(records):
    """Per dataset and rate: averaging the most thinned networks against weight scaling, in
    test accuracy, paired per repeat; the evidence adds log-loss, the KL divergence and the
    number of networks whose average first matches weight scaling's accuracy."""
    groups = defaultdict(list)
    for r in records:
        if r.get("kind") == "mc" and "mc_log_loss" in r:
            groups[(r["dataset"], r["rate"])].append(r)
    out = []
    for (dataset, rate), recs in sorted(groups.items()):
        ws = [r["weight_scaling_accuracy"] for r in recs]
        iv = paired_interval([r["mc_accuracy"][-1] for r in recs], ws)
        samples = recs[0]["samples"]
        mean_acc = np.mean([r["mc_accuracy"] for r in recs], axis=0)
        matched = next((t for t, a in zip(samples, mean_acc) if a >= np.mean(ws)), None)
        loss = mean_interval([r["mc_log_loss"][-1] - r["weight_scaling_log_loss"]
                              for r in recs])
        kl = np.mean([r["mc_kl"][-1] for r in recs])
        out.append(_claim(
            dataset, f"weight scaling matches averaging thinned networks (p={rate:g})",
            SRIVASTAVA, within(iv, -MARGIN, MARGIN), iv,
            f"test accuracy of the average of {samples[-1]} thinned networks minus weight "
            f"scaling's; log-loss {loss.estimate:+.4f} [{loss.low:+.4f}, {loss.high:+.4f}]; "
            f"mean KL(average || weight scaling) {kl:.3f} nats; the average first matches "
            f"weight scaling's accuracy at T = {matched if matched else f'> {samples[-1]}'}"))
    return out


def protocol(records):
    repeats = sorted({r["repeat"] for r in fits(records) if "repeat" in r})
    profiles = sorted({r["profile"] for r in fits(records) if "profile" in r})
    return {"repeats": len(repeats), "selection": "validation",
            "selection_rule": "per dataset and family, the parameters (strength and learning "
                              "rate) with the best mean validation accuracy over repeats; "
                              "test accuracy reported for that choice only; a choice at a "
                              "grid's edge extends the grid",
            "stopping": {name: get_profile(name).stopping for name in profiles},
            "learning_rates": {name: list(get_profile(name).learning_rates)
                               for name in profiles},
            "method": METHOD, "margin": MARGIN, "confidence": CONFIDENCE,
            "verdict_rules": {
                "beats": "holds if the interval's low end > 0; does not hold if its high "
                         "end < margin; else undecided",
                "not_better": "holds if the high end < margin; does not hold if the low end "
                              "> 0; else undecided",
                "within": "holds if the interval lies inside the range; does not hold if "
                          "it lies outside; else undecided"}}


def build_summary(records):
    """summary.json: the protocol, the validation-selected configurations (a max-norm row
    whose constraint never clipped is dropped, and said so), the claims."""
    selected = select(records) + select(records, "seed")
    extensions = defaultdict(int)
    for r in records:
        if r.get("kind") == "grid_extension":
            extensions[(r["dataset"], r["family"], r.get("arch", "default"))] += 1
    kept, dropped = [], []
    for entry in selected:
        entry.pop("test_by_repeat")
        entry["grid_extended"] = extensions[(entry["dataset"], entry["family"], entry["arch"])]
        if entry.get("max_norm_clipped") == 0:
            dropped.append({"dataset": entry["dataset"], "family": entry["family"],
                            "why": "max-norm never clipped a unit's weights: the row would "
                                   "be plain dropout"})
        else:
            kept.append(entry)
    return _json_ready({"protocol": protocol(records), "selected": kept, "dropped": dropped,
                        "claims": claims(records)})


def _json_ready(value):
    """Non-finite numbers (no interval from one repeat) become None: JSON has no inf."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def summary_table(records):
    """Markdown: one row per configuration (default architecture), mean ± std over seeds."""
    agg = aggregate(records)
    lines = ["| dataset | family | params | seeds | val acc | test acc | epochs run | "
             "epochs to converge | censored | epoch ms | time to target s |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (dataset, family, key), v in sorted(agg.items()):
        pm = lambda m, f="{:.4f}": f"{f.format(v[m][0])} ± {f.format(v[m][1])}"  # noqa: E731
        lines.append(f"| {dataset} | {family} | {_params_text(dict(key))} | {v['n']} | "
                     f"{pm('val_score')} | {pm('test_accuracy')} | {v['n_iter'][0]:.1f} | "
                     f"{v['epochs_to_converge'][0]:.1f} | {v['censored']:.0%} | "
                     f"{1000 * v['epoch_time'][0]:.1f} | {v['time_to_target'][0]:.2f} |")
    return "\n".join(lines)


def claims_markdown(summary):
    """The claims of a build_summary() as a Markdown table (what the README shows)."""
    lines = ["| dataset | claim | source | verdict | estimate [95% CI] | n | evidence |",
             "|---|---|---|---|---|---:|---|"]
    for c in summary["claims"]:
        evidence = c["evidence"].replace("|", "\\|")  # a pipe would end the cell
        lines.append(f"| {c['dataset']} | {c['claim']} | {c['source']} | **{c['verdict']}** "
                     f"| {_num(c['estimate'])} [{_num(c['ci'][0])}, {_num(c['ci'][1])}] "
                     f"| {c['n']} | {evidence} |")
    return "\n".join(lines)


# Greydanus 2020, "Scaling down deep learning", test accuracy on MNIST-1D (its table).
MNIST1D_PAPER = (("logistic regression", 0.32), ("MLP", 0.68), ("GRU", 0.91), ("CNN", 0.94))


def mnist1d_markdown(summary):
    """The paper's MNIST-1D results beside this study's validation-chosen MLPs."""
    lines = ["| model | test accuracy | source |", "|---|---|---|"]
    lines += [f"| {name} | {acc:.0%} | Greydanus 2020 |" for name, acc in MNIST1D_PAPER]
    for c in summary["selected"]:
        if c["dataset"] != "mnist1d":
            continue
        low, high = (_num(v, "{:.1%}") for v in c["test_accuracy_ci"])
        params = ", ".join(f"{k}={v:g}" for k, v in c["params"].items()) or "none"
        arch = "256-256" if c["arch"] == "default" else "64-128-256-512-512"
        lines.append(f"| fastdrop MLP {arch}, {c['family']} ({params}) | "
                     f"{c['test_accuracy']:.1%} [{low}, {high}] | this study, n={c['n']} |")
    return "\n".join(lines)


def _num(value, fmt="{:+.4f}"):
    return "n/a" if value is None else fmt.format(value)


def selected_markdown(summary):
    lines = ["| dataset | arch | family | chosen on validation | val acc | test acc [95% CI] "
             "| n | grids searched | at an edge (extended) |",
             "|---|---|---|---|---:|---|---:|---|---|"]
    for c in summary["selected"]:
        low, high = (_num(v, "{:.4f}") for v in c["test_accuracy_ci"])
        params = _short(_params_text(c["params"]))
        if c.get("max_norm_clipped") is not None:
            params += f" (clipped {c['max_norm_clipped']:.1%} of unit updates)"
        grids = "; ".join(_short(f"{k}: {', '.join(f'{v:g}' for v in vals)}")
                          for k, vals in c.get("grids", {"": c["grid"]}).items() if vals)
        edges = ", ".join(_short(e) for e in c.get("edges", ["yes"] * c["at_grid_edge"]))
        extended = f" ({c['grid_extended']}x)" if c.get("grid_extended") else ""
        lines.append(f"| {c['dataset']} | {c['arch']} | {c['family']} | {params} "
                     f"| {c['val_score']:.4f} | {c['test_accuracy']:.4f} [{low}, {high}] "
                     f"| {c['n']} | {grids} | {edges}{extended} |")
    for d in summary.get("dropped", []):
        lines.append(f"\n{d['dataset']}, {d['family']}: left out, {d['why']}.")
    return "\n".join(lines)


def _short(text):
    return text.replace("learning_rate_init", "lr")
