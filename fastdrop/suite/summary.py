"""summary.json and the Markdown tables, from stored records only: the protocol, each family's
validation choice (selection.py), the claims (claims.py), and per-configuration aggregates."""
import math
from collections import defaultdict

import numpy as np

from .claims import across_datasets, claims, power, test_train_ratio, uncertainty_records
from .config import get_profile
from .selection import (_params_key, _params_text, accuracy_targets, epochs_to_converge,
                        fits, select, time_to_target)
from .stats import (CALIBRATION_MARGIN, CONFIDENCE, CORRECTED_T, LOG_LIKELIHOOD_MARGIN, MARGIN,
                    PAIRED_T, VERDICT_RULES, mean_interval)

METRICS = ("val_score", "best_val_accuracy", "best_val_loss", "final_val_loss",
           "test_accuracy", "epoch_time", "n_iter", "gap")


def _sd(values):
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def aggregate(records, arch="default"):
    """{(dataset, family, params key): {metric: (mean, std), 'n': seeds, ...}}."""
    goal = accuracy_targets(records)
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
        reached = [t for t in ttt if math.isfinite(t)]
        row["time_to_target"] = (float(np.mean(reached)), _sd(reached)) \
            if reached else (float("nan"), float("nan"))
        row["reached_target"] = len(reached) / len(runs)
        out[key] = row
    return out


def protocol(records):
    fit_records = fits(records)
    repeats = defaultdict(set)
    for r in fit_records:
        repeats[r["dataset"]].add(r["repeat"])
    profiles = sorted({r["profile"] for r in fit_records if "profile" in r})
    per_dataset = {}
    for dataset in sorted(repeats):
        ratio = test_train_ratio(records, dataset)
        per_dataset[dataset] = {
            "repeats": len(repeats[dataset]),
            "test": ("corrected resampled t (Nadeau & Bengio 2003), n_test/n_train = "
                     f"{ratio:.3f}") if ratio else "paired t (split sizes not recorded)",
            "test_train_ratio": ratio}
    return {"repeats": max((len(v) for v in repeats.values()), default=0),
            "per_dataset": per_dataset, "selection": "validation",
            "selection_rule": "per dataset and family, the parameters (strength and learning "
                              "rate) with the best mean validation accuracy over repeats; "
                              "test accuracy reported for that choice only; a choice at a "
                              "grid's edge extends the grid",
            "stopping": {name: get_profile(name).stopping for name in profiles},
            "learning_rates": {name: list(get_profile(name).learning_rates)
                               for name in profiles},
            "method": CORRECTED_T, "method_runs": PAIRED_T + "; medians of per-repeat ratios "
                      "with a distribution-free interval where runs are censored",
            "across_datasets": ACROSS, "margin": MARGIN, "confidence": CONFIDENCE,
            "margins_uncertainty": {"log_likelihood": LOG_LIKELIHOOD_MARGIN,
                                    "calibration": CALIBRATION_MARGIN},
            "verdict_rules": VERDICT_RULES}


ACROSS = ("Demšar 2006: per dataset, the families ranked by the test accuracy of their "
          "validation choice; Friedman test with Iman-Davenport's F; Nemenyi's critical "
          "difference; Holm's step-down test against dropout; pooled verdicts from the "
          "Wilcoxon signed-rank test over per-dataset mean differences (Hodges-Lehmann "
          "estimate, exact interval, the 'beats' rule)")


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
    across = across_datasets(records)
    return _json_ready({"protocol": protocol(records), "selected": kept, "dropped": dropped,
                        "claims": claims(records, across or {}), "power": power(records),
                        "across": across, "uncertainty": uncertainty_scores(records)})


UNCERTAINTY_PROTOCOL = (
    "per repeat its own split; every choice (the study's rate and learning rate, the "
    "regressors' drop rate and noise precision, the temperature) on its validation part, "
    "scores on its test part; the mean over repeats with a t interval (plain, not paired); "
    "the verdict rows pair methods per repeat (claims.uncertainty_claims)")
_COVERAGE_SHOWN = (0.5, 0.9, 0.95)


def uncertainty_scores(records):
    """Per uncertainty dataset and method: each score's mean over repeats with its t
    interval, the coverage per level, and (classification) the reliability bins pooled over
    repeats; None where the stage did not run."""
    groups = uncertainty_records(records)
    if not groups:
        return None
    out = {"protocol": UNCERTAINTY_PROTOCOL, "datasets": {}}
    for dataset, recs in groups.items():
        first = recs[0]
        methods = {}
        for method in first["methods"]:
            runs = [r["methods"][method] for r in recs if method in r["methods"]]
            row = {name: _estimate_and_ci([run[name] for run in runs])
                   for name, value in runs[0].items() if isinstance(value, float)}
            row["n"] = len(runs)
            if "coverage" in runs[0]:
                row["coverage"] = np.mean([run["coverage"] for run in runs], axis=0).tolist()
                # descriptive, no verdict: the whole coverage curve's distance from nominal
                row["coverage_error"] = _estimate_and_ci(
                    [np.mean(np.abs(np.subtract(run["coverage"], first["levels"])))
                     for run in runs])
            if "bins" in runs[0]:
                row["bins"] = {k: np.sum([run["bins"][k] for run in runs], axis=0).tolist()
                               for k in runs[0]["bins"]}
            methods[method] = row
        entry = {"task": first["task"], "repeats": len(recs), "methods": methods,
                 "mc_samples": first["mc_samples"], "members": first["members"]}
        if first["task"] == "regression":
            entry["levels"] = first["levels"]
            entry["rates_chosen"] = {m: sorted({r["rates"][m] for r in recs})
                                     for m in first["rates"]}
            entry["rate_grid"] = first.get("rate_grid")
        else:
            entry["n_bins"] = first["n_bins"]
            entry["temperature"] = _estimate_and_ci([r["temperature"] for r in recs])
            entry["params"] = first["params"]
        out["datasets"][dataset] = entry
    return out


def _estimate_and_ci(values):
    iv = mean_interval(values)
    return [iv.estimate, iv.low, iv.high]


def uncertainty_markdown(summary):
    """The uncertainty stage's scores: one table for classification, one for regression."""
    from .predictive import METHODS

    u = summary.get("uncertainty")
    if not u:
        return "(the uncertainty stage has not run: it is part of the full profile)"
    cls = ["| dataset | method | accuracy | log-likelihood | Brier | ECE | n |",
           "|---|---|---:|---:|---:|---:|---:|"]
    reg = ["| dataset | method | log-likelihood | RMSE | "
           + " | ".join(f"{level:.0%} interval covers" for level in _COVERAGE_SHOWN)
           + " | mean \\|coverage - level\\| | n |",
           "|---|---|---:|---:|" + "---:|" * len(_COVERAGE_SHOWN) + "---:|---:|"]
    notes = []
    for dataset, d in u["datasets"].items():
        for method, row in d["methods"].items():
            name = METHODS.get(method, method)
            if d["task"] == "classification":
                cls.append(f"| {dataset} | {name} | {_mean_ci(row['accuracy'])} | "
                           f"{_mean_ci(row['log_likelihood'])} | {_mean_ci(row['brier'])} | "
                           f"{_mean_ci(row['ece'])} | {row['n']} |")
            else:
                cover = [row["coverage"][d["levels"].index(level)] for level in _COVERAGE_SHOWN]
                reg.append(f"| {dataset} | {name} | {_mean_ci(row['log_likelihood'])} | "
                           f"{_mean_ci(row['rmse'])} | "
                           + " | ".join(f"{c:.3f}" for c in cover)
                           + f" | {_mean_ci(row['coverage_error'])} | {row['n']} |")
        if d["task"] == "classification":
            t = d["temperature"]
            notes.append(f"{dataset}: the study's choices (dropout: rate, learning rate "
                         f"{d['params']['dropout']}; none: {d['params']['none']}); fitted "
                         f"temperature {t[0]:.3f} [{t[1]:.3f}, {t[2]:.3f}]; ECE over "
                         f"{d['n_bins']} equal-width bins.")
        else:
            grid = d["rate_grid"] or []
            chosen = "; ".join(f"{METHODS.get(m, m)} {', '.join(f'{v:g}' for v in rates)}"
                               for m, rates in d["rates_chosen"].items())
            edges = sorted({v for rates in d["rates_chosen"].values() for v in rates
                            if grid and v in (grid[0], grid[-1])})
            edge_text = "".join(
                f"; {v:g} is the grid's " + ("low edge (below it, 0: the no-dropout row)"
                                             if v == grid[0] else "top edge")
                for v in edges)
            notes.append(f"{dataset}: drop rates chosen on validation over the repeats (grid "
                         f"{', '.join(f'{v:g}' for v in grid)}): {chosen}{edge_text}.")
    parts = [u["protocol"].capitalize() + "."]
    if len(cls) > 2:
        parts.append("\n".join(cls))
    if len(reg) > 2:
        parts.append("\n".join(reg))
    parts.append("\n".join(f"- {n}" for n in notes))
    return "\n\n".join(parts)


def _mean_ci(cell):
    estimate, low, high = cell
    return (f"{estimate:.4f}" if low is None or not math.isfinite(low)
            else f"{estimate:.4f} [{low:.4f}, {high:.4f}]")


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


def claims_markdown(summary, families=None):
    """The claims of a build_summary() as a Markdown table (what the README shows); with
    ``families``, only the claims about those regularizer families."""
    lines = ["| dataset | claim | source | verdict | estimate [95% CI] | n | evidence |",
             "|---|---|---|---|---|---:|---|"]
    for c in summary["claims"]:
        if families is not None and c.get("family", "dropout") not in families:
            continue
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


def power_markdown(summary):
    """Per dataset: what the main comparison could resolve (claims.power)."""
    lines = ["| dataset | repeats | test | n_test/n_train | sd of differences | dropout minus "
             "better of L1/L2 | half-width | smallest detectable effect (80% power) | repeats "
             "for +-1 point |", "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for p in summary.get("power", []):
        needed = p["repeats_for_goal"]
        needed = ("out of reach (the corrected t's floor is wider)" if needed is None
                  else str(needed))
        lines.append(f"| {p['dataset']} | {p['repeats']} | {p['test']} | "
                     f"{p['test_train_ratio']:.3f} | {p['sd']:.4f} | {p['estimate']:+.4f} | "
                     f"{_num(p['half_width'], '{:.4f}')} | "
                     f"{_num(p['detectable_effect'], '{:.4f}')} | {needed} |")
    return "\n".join(lines)


def across_markdown(summary):
    """The comparison over datasets: average ranks, Friedman, Nemenyi, Holm (claims)."""
    a = summary.get("across")
    if not a:
        return "(fewer than two datasets with every core family: no comparison across them)"
    f = a["friedman"]
    lines = [f"{f['n']} datasets ({', '.join(a['datasets'])}), {f['k']} families. Friedman "
             f"chi2 = {f['chi2']:.2f} (p = {f['p_chi2']:.3f}), Iman-Davenport F = "
             f"{_num(f['iman_davenport_f'], '{:.2f}')} (p = {f['p']:.3f}); Nemenyi critical "
             f"difference {a['nemenyi_cd']:.2f} ranks at {1 - a['confidence']:.2f}.", "",
             f"| family | average rank | z against {a['control']} | p | Holm-adjusted p |",
             "|---|---:|---:|---:|---:|"]
    for fam, rank in sorted(zip(a["families"], a["ranks"]), key=lambda x: x[1]):
        h = a["holm"].get(fam)
        cells = ("-", "-", "-") if h is None else (f"{h['z']:+.2f}", f"{h['p']:.3f}",
                                                   f"{h['p_holm']:.3f}")
        lines.append(f"| {fam} | {rank:.2f} | " + " | ".join(cells) + " |")
    lines += ["", "| dataset | " + " | ".join(a["families"]) + " |",
              "|---|" + "---:|" * len(a["families"])]
    for dataset, row in zip(a["datasets"], a["scores"]):
        lines.append(f"| {dataset} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
    return "\n".join(lines)
