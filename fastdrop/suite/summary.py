"""Aggregates and the article's claims, computed from stored records only."""
import math
from collections import defaultdict

import numpy as np

from .._benchreport import median_ci
from .stats import (CONFIDENCE, MARGIN, METHOD, Interval, beats, both, mean_interval,
                    not_better, paired_interval, within)

METRICS = ("val_score", "best_val_accuracy", "best_val_loss", "final_val_loss",
           "test_accuracy", "epoch_time", "n_iter", "gap")


def fits(records, arch="default"):
    return [r for r in records if r.get("kind") == "fit" and r.get("error") is None
            and r.get("arch", "default") == arch]


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
    """{(dataset, regularizer, strength): {metric: (mean, std), 'n': seeds, ...}}."""
    goal = targets(records)
    groups = defaultdict(list)
    for r in fits(records, arch):
        groups[(r["dataset"], r["regularizer"], r["strength"])].append(r)
    out = {}
    for key, runs in groups.items():
        row = {"n": len(runs)}
        for m in METRICS:
            vals = np.array([r.get(m, np.nan) for r in runs], dtype=float)
            row[m] = (float(vals.mean()), _sd(vals))
        epochs = [r["epochs_to_converge"] for r in runs if r["converged"]]
        row["converged"] = len(epochs) / len(runs)
        row["epochs_to_converge"] = (float(np.mean(epochs)), _sd(epochs)) \
            if epochs else (float("nan"), float("nan"))
        ttt = [time_to_target(r, goal[key[0]]) for r in runs]
        reached = [t for t in ttt if t is not None]
        row["time_to_target"] = (float(np.mean(reached)), _sd(reached)) \
            if reached else (float("nan"), float("nan"))
        row["reached_target"] = len(reached) / len(runs)
        out[key] = row
    return out


# ---------------------------------------------------------------- selection on validation
def _param_value(record):
    """The searched strength of a fit (its family's one parameter), or None."""
    params = record.get("params") or {}
    return next(iter(params.values())) if params else None


def _by_config(records, arch):
    """{(dataset, family, strength): {repeat: record}} over the fits of one architecture."""
    out = defaultdict(dict)
    for r in fits(records, arch):
        if "val_score" not in r:
            continue  # a record from before the protocol: nothing to select on
        out[(r["dataset"], r["family"], _param_value(r))][r["repeat"]] = r
    return out


def select(records, arch="default"):
    """Per (dataset, family): the strength with the best mean validation score over repeats
    (ties: the weaker regularization), and the test accuracy of that choice with its
    interval. The test set is read only for the choice made."""
    configs = _by_config(records, arch)
    families = defaultdict(list)
    for (dataset, family, value), runs in configs.items():
        families[(dataset, family)].append((value, runs))
    out = []
    for (dataset, family), options in sorted(families.items()):
        options.sort(key=lambda o: (o[0] is not None, o[0] or 0.0))
        value, runs = max(options, key=lambda o: np.mean([r["val_score"] for r in
                                                         o[1].values()]))
        grid = [v for v, _ in options if v is not None]
        tests = [runs[k]["test_accuracy"] for k in sorted(runs)]
        ci = mean_interval(tests)
        out.append({
            "dataset": dataset, "family": family, "arch": arch,
            "params": dict(next(iter(runs.values())).get("params") or {}),
            "grid": grid, "at_grid_edge": len(grid) > 1 and value in (grid[0], grid[-1]),
            "val_score": float(np.mean([r["val_score"] for r in runs.values()])),
            "best_val_accuracy": float(np.mean([r["best_val_accuracy"]
                                                for r in runs.values()])),
            "test_accuracy": ci.estimate, "test_accuracy_ci": ci.as_list(), "n": ci.n,
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
    out += _cost_claims(records) + _mc_claims(records)
    return out


def _tests(configs, dataset, family, value):
    return {k: r["test_accuracy"] for k, r in configs.get((dataset, family, value), {}).items()}


def _sweep_claims(dataset, arch, chosen, configs):
    sel = chosen.get((dataset, "dropout"))
    if sel is None:
        return []
    best = sel["test_by_repeat"]
    rate = sel["params"].get("dropout")
    none = _tests(configs, dataset, "none", None) or _tests(configs, dataset, "none", 0.0)
    top = max(sel["grid"]) if sel["grid"] else None
    out = []
    ref = 0.5 if arch == "default" else 0.2
    at_ref = _tests(configs, dataset, "dropout", ref)
    if at_ref:
        iv = paired_interval(*_paired(best, at_ref))
        claim = ("p around 0.5 on hidden layers works best" if arch == "default" else
                 "the article's network: the best rate is near 0.2")
        out.append(_claim(dataset, claim, ARTICLE, not_better(iv), iv,
                          f"validation chose p={rate:g}; its test accuracy minus p={ref:g}'s "
                          f"(holds when p={ref:g} is within the margin of the choice)"))
    if none and top is not None and top != rate:
        rises = paired_interval(*_paired(best, none))
        falls = paired_interval(*_paired(best, _tests(configs, dataset, "dropout", top)))
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
    if sel and penalties:
        penalty = max(penalties, key=lambda c: c["val_score"])  # the better, on validation
        iv = paired_interval(*_paired(sel["test_by_repeat"], penalty["test_by_repeat"]))
        out.append(_claim(dataset, "dropout beats the better of L1 and L2", SRIVASTAVA,
                          beats(iv), iv, f"dropout {sel['params']} vs {penalty['family']} "
                          f"{penalty['params']}, both chosen on validation"))
    hidden = configs.get((dataset, "dropout", 0.5), {})
    with_input = _tests(configs, dataset, "input-dropout", 0.2)
    if hidden and with_input:
        iv = paired_interval(*_paired(with_input, _tests(configs, dataset, "dropout", 0.5)))
        out.append(_claim(dataset, "no dropout on the input", ARTICLE, not_better(iv), iv,
                          "input 0.2 + hidden 0.5 minus hidden 0.5 alone (holds when input "
                          "dropout does not help by the margin)"))
    none = configs.get((dataset, "none", None)) or configs.get((dataset, "none", 0.0)) or {}
    if hidden and none:
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
        out.append(_claim(dataset, "dropout roughly doubles the epochs to converge", ARTICLE,
                          within(exp, 1.5, 3.0), exp,
                          f"epochs to reach validation loss within {CONVERGENCE_TOL:.0%} of "
                          f"the run's best, p=0.5 / p=0, geometric mean; {censored} "
                          "censored pair(s) left out"))
    return out


def _cost_claims(records):
    out = []
    cost = {r["dataset"]: r for r in records if r.get("kind") == "epoch_cost"}  # latest wins
    for dataset, r in sorted(cost.items()):
        for mode in ("element", "batch"):
            ratios = np.asarray(r["epoch_times"][mode]) / np.asarray(r["epoch_times"]["none"])
            low, high, coverage = median_ci(ratios)
            iv = Interval(float(np.median(ratios)), low, high, int(ratios.size))
            out.append(_claim(dataset, f"each epoch is cheaper with dropout ({mode} mode)",
                              ARTICLE, within(iv, 0.0, 1.0), iv,
                              f"seconds per epoch at p=0.5 / p=0, timed alone, median of "
                              f"{ratios.size} paired rounds, distribution-free interval "
                              f"(coverage {coverage:.3f})"))
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
    return {"repeats": len(repeats), "selection": "validation",
            "selection_rule": "per dataset and family, the strength with the best mean "
                              "validation accuracy over repeats; test accuracy reported for "
                              "that choice only",
            "method": METHOD, "margin": MARGIN, "confidence": CONFIDENCE,
            "verdict_rules": {
                "beats": "holds if the interval's low end > 0; does not hold if its high "
                         "end < margin; else undecided",
                "not_better": "holds if the high end < margin; does not hold if the low end "
                              "> 0; else undecided",
                "within": "holds if the interval lies inside the range; does not hold if "
                          "it lies outside; else undecided"}}


def build_summary(records):
    """summary.json: the protocol, the validation-selected configurations, the claims."""
    selected = select(records) + select(records, "seed")
    extensions = defaultdict(int)
    for r in records:
        if r.get("kind") == "grid_extension":
            extensions[(r["dataset"], r["family"])] += 1
    for entry in selected:
        entry.pop("test_by_repeat")
        entry["grid_extended"] = extensions[(entry["dataset"], entry["family"])]
    return _json_ready({"protocol": protocol(records), "selected": selected,
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
    lines = ["| dataset | regularizer | strength | seeds | test acc | best val acc | "
             "epochs | converged | epoch ms | time to target s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (dataset, reg, s), v in sorted(agg.items()):
        pm = lambda m, f="{:.4f}": f"{f.format(v[m][0])} ± {f.format(v[m][1])}"  # noqa: E731
        lines.append(f"| {dataset} | {reg} | {s:g} | {v['n']} | {pm('test_accuracy')} | "
                     f"{pm('best_val_accuracy')} | {v['n_iter'][0]:.1f} | "
                     f"{v['converged']:.0%} | {1000 * v['epoch_time'][0]:.1f} | "
                     f"{v['time_to_target'][0]:.2f} |")
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
             "| n | grid | at grid edge |", "|---|---|---|---|---:|---|---:|---|---|"]
    for c in summary["selected"]:
        low, high = (_num(v, "{:.4f}") for v in c["test_accuracy_ci"])
        params = ", ".join(f"{k}={v:g}" for k, v in c["params"].items()) or "-"
        grid = ", ".join(f"{v:g}" for v in c["grid"])
        lines.append(f"| {c['dataset']} | {c['arch']} | {c['family']} | {params} "
                     f"| {c['val_score']:.4f} | {c['test_accuracy']:.4f} [{low}, {high}] "
                     f"| {c['n']} | {grid} | {'yes' if c['at_grid_edge'] else ''} |")
    return "\n".join(lines)
