"""Every figure of the study, drawn from stored records only (so results from another machine
can be re-plotted): `fastdrop plot RESULTS_DIR`. Each figure is written as PNG and SVG."""
from collections import defaultdict
from pathlib import Path

import numpy as np

from ._figures import pyplot as _plt, save as _save
from .suite.store import ResultStore
from .suite.families import NOISE_FAMILIES
from .suite.families import color as family_color
from .suite.stats import Interval, mean_interval, median_ci
from .suite.selection import (accuracy_targets, chosen_runs, epochs_to_converge, fits,
                              select, sweep, time_to_target)

CURVE_RATES = (0.0, 0.2, 0.5, 0.8)


def _latest(records, kind):
    """The last stored record of a side experiment (a rerun appends a newer one), or None."""
    recs = [r for r in records if r.get("kind") == kind]
    return recs[-1] if recs else None


def _interval(runs, metric):
    return mean_interval([r[metric] for r in runs.values() if r.get(metric) is not None])


def rate_sweep(records, out, arch="default"):
    """The article's figure: validation accuracy and best validation loss vs drop rate, each
    rate at its validation-chosen learning rate, mean and 95% interval over repeats, element
    and batch mode, with the validation-chosen L1 and L2 as reference bands."""
    plt, paths = _plt(), []
    chosen = {(c["dataset"], c["family"]): c for c in select(records, arch)}
    for dataset in sorted({d for d, _ in chosen}):
        curves = {fam: sweep(records, dataset, fam, arch=arch)
                  for fam in ("dropout", "dropout-batch")}
        none = sweep(records, dataset, "none", arch=arch)
        n = max((len(runs) for c in curves.values() for runs in c.values()), default=0)
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
        for ax, metric, label in ((axes[0], "val_score",
                                   "validation accuracy (the selection metric)"),
                                  (axes[1], "best_val_loss", "best validation loss (log-loss)")):
            for fam, style in (("dropout", "o-"), ("dropout-batch", "s--")):
                pts = sorted({**none, **curves[fam]}.items()) if curves[fam] else []
                _rate_curve(ax, pts, metric, style, fam,
                            f"{fam} ({'per-example' if fam == 'dropout' else 'per-batch'} "
                            "masks)")
            for fam in ("l2", "l1"):
                c = chosen.get((dataset, fam))
                if c is None:
                    continue
                iv = _interval(chosen_runs(records, c), metric)
                if np.isfinite(iv.low):
                    ax.axhspan(iv.low, iv.high, color=family_color(fam), alpha=0.15)
                ax.axhline(iv.estimate, color=family_color(fam), lw=1,
                           label=f"{fam.upper()} chosen on validation "
                                 f"({_params_label(c['params'])})")
            ax.set_xlabel("drop rate p on hidden layers")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        name = "" if arch == "default" else " (the article's 64-128-256-512-512 network)"
        fig.suptitle(f"Dropout rate sweep, {dataset}{name}: mean and 95% interval over n = {n} "
                     "repeats, each rate at its validation-chosen learning rate", fontsize=10)
        suffix = "" if arch == "default" else f"_{arch}"
        paths += _save(fig, out, f"rate_sweep_{dataset}{suffix}")
    return paths


def _rate_curve(ax, pts, metric, style, family, label):
    """``metric``'s mean and 95% interval over repeats at each rate of ``pts``
    [(rate, {repeat: record})], one curve in the family's colour (nothing without points)."""
    if not pts:
        return
    ivs = [_interval(runs, metric) for _, runs in pts]
    ax.errorbar([r for r, _ in pts], [iv.estimate for iv in ivs],
                yerr=np.array([_half(iv) or [[0], [0]] for iv in ivs])[:, :, 0].T,
                fmt=style, capsize=3, color=family_color(family), label=label)


def noise_kinds(records, out, arch="default"):
    """Which kind of noise pays: validation accuracy against the rate for Bernoulli dropout
    and each other kind present (each rate at its validation-chosen learning rate; mean and
    95% interval over repeats), and each family's validation-chosen configuration's test
    accuracy with its interval, L1, L2 and no regularization beside."""
    plt, paths = _plt(), []
    chosen = {(c["dataset"], c["family"]): c for c in select(records, arch)}
    for dataset in sorted({d for d, f in chosen if f in NOISE_FAMILIES}):
        fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
        for fam, style in zip(("dropout",) + NOISE_FAMILIES, ("o-", "s--", "^-.", "d:")):
            param = "dropconnect" if fam == "dropconnect" else "dropout"
            runs_by_rate = sweep(records, dataset, fam, param=param, arch=arch)
            if fam != "alpha-dropout":  # rate 0 of the others is the plain network
                runs_by_rate = {**sweep(records, dataset, "none", arch=arch), **runs_by_rate}
            _rate_curve(left, sorted(runs_by_rate.items()), "val_score", style, fam, fam)
        left.set_xlabel("drop rate p (of units; of weights for DropConnect)")
        left.set_ylabel("validation accuracy (the selection metric)")
        left.grid(alpha=0.3)
        left.legend(fontsize=7)
        order = [f for f in ("none", "l1", "l2", "dropout") + NOISE_FAMILIES
                 if (dataset, f) in chosen]
        for i, fam in enumerate(order):
            c = chosen[(dataset, fam)]
            iv = _interval(chosen_runs(records, c), "test_accuracy")
            right.errorbar([i], [iv.estimate], yerr=_half(iv), fmt="o", capsize=4,
                           color=family_color(fam))
        right.set_xticks(range(len(order)),
                         [f"{f}\n{_params_label(chosen[(dataset, f)]['params'])}"
                          for f in order], fontsize=6, rotation=30, ha="right")
        right.set_ylabel("test accuracy of the validation choice")
        right.grid(alpha=0.3, axis="y")
        fig.suptitle(f"Which noise pays, {dataset}: rate sweeps (left) and each family's "
                     "validation choice on the test set (right), mean and 95% interval over "
                     "repeats", fontsize=10)
        paths += _save(fig, out, f"noise_kinds_{dataset}")
    return paths


def _params_label(params):
    return ", ".join(f"{k.replace('learning_rate_init', 'lr')}={v:g}" for k, v in params.items())


def _cost_points(records, cost):
    """(label, family, epochs-to-converge runs, ratio interval) per timed case of an
    epoch_cost record, the fits being the validation-preferred ones of each case."""
    dataset = cost.get("fits_dataset", "mnist1d")
    chosen = {c["family"]: c for c in select(records) if c["dataset"] == dataset}
    sweeps = {fam: sweep(records, dataset, fam) for fam in ("none", "dropout", "dropout-batch")}
    points = []
    for case, (reg, strength) in cost.get("cases", {}).items():
        if case == "none":
            runs, family = sweeps["none"].get(0.0, {}), "none"
        elif reg in ("dropout", "dropout-batch"):
            runs, family = sweeps[reg].get(strength, {}), reg
        else:
            c = chosen.get(reg)
            runs, family = (chosen_runs(records, c) if c else {}), reg
        if not runs:
            continue
        ratios = np.ones(len(cost["epoch_times"]["none"])) if case == "none" else \
            np.asarray(cost["epoch_times"][case]) / np.asarray(cost["epoch_times"]["none"])
        low, high, _ = median_ci(ratios)
        points.append((case, family, runs, Interval(float(np.median(ratios)), low, high,
                                                    ratios.size)))
    return points


def time_vs_epochs(records, out):
    """The cost dropout trades: epoch time relative to no dropout (timed alone, interleaved,
    median and distribution-free interval) against epochs to converge (validation loss
    within 1% of the run's best; mean and 95% interval over the uncensored repeats of the
    validation-preferred configuration), with iso-lines of total training cost."""
    plt = _plt()
    cost = _latest(records, "epoch_cost")
    if cost is None or "cases" not in cost:
        return []
    points = _cost_points(records, cost)
    if not points:
        return []
    fig, ax = plt.subplots(figsize=(8, 5.5), layout="constrained")
    xs, ys, n_max, seen = [], [], 0, set()
    for case, family, runs, ratio in points:
        done = [e for e, censored in map(epochs_to_converge, runs.values())
                if e and not censored]
        if not done:
            continue
        ex = mean_interval(done)
        n_max = max(n_max, len(runs))
        color = family_color(family)
        label = family if family not in seen else None
        seen.add(family)
        ax.errorbar(ex.estimate, ratio.estimate, xerr=_half(ex), yerr=_half(ratio),
                    fmt="o", color=color, mfc="none" if len(done) < len(runs) else color,
                    capsize=2, alpha=0.85, label=label)
        if family.startswith("dropout"):  # the rate; the others are named by the legend
            ax.annotate(f"p = {case.split()[-1]}", (ex.estimate, ratio.estimate), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
        xs.append(ex.estimate)
        ys.append(ratio.estimate)
    _iso_cost_lines(ax, xs, ys)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_xlabel(f"epochs to converge on {cost.get('fits_dataset', 'mnist1d')} (validation "
                  "loss within 1% of the run's best)")
    ax.set_ylabel(f"epoch time / no-dropout epoch time\n(timed alone on {cost['dataset']}, "
                  f"{cost['rounds']} interleaved rounds)")
    ax.grid(alpha=0.3)
    ax.set_title(f"What dropout costs: epochs x cost per epoch (n = {n_max} repeats; hollow: "
                 "some repeats censored; dotted: equal total cost)", fontsize=9)
    return _save(fig, out, "time_vs_epochs")


def _half(interval):
    """Error-bar half widths of an interval (none without one)."""
    if not np.isfinite(interval.low):
        return None
    return [[interval.estimate - interval.low], [interval.high - interval.estimate]]


def _iso_cost_lines(ax, xs, ys):
    """Dotted curves of equal total cost (epochs x relative cost per epoch), labelled in
    no-dropout epochs where they enter the plot."""
    if not xs:
        return
    low, high = 0.8 * min(ys), 1.25 * max(ys)
    x = np.linspace(max(1.0, 0.5 * min(xs)), 1.15 * max(xs), 200)
    totals = np.array(xs) * np.array(ys)
    for total in np.quantile(totals, [0.1, 0.5, 0.9]):
        ax.plot(x, total / x, ls=":", color="gray", lw=1)
        at = min(max(total / (0.95 * high), x[0]), x[-1])  # where the curve enters the top
        ax.annotate(f"{total:.0f} epochs' cost", (at, total / at), fontsize=7, color="gray",
                    xytext=(3, -8), textcoords="offset points")
    ax.set_ylim(low, high)


def time_to_target_bars(records, out):
    """Seconds of training until validation accuracy first reaches the dataset's target
    (selection.accuracy_targets), for each family's validation-chosen configuration, with the
    count of repeats that reached it."""
    plt, goal = _plt(), accuracy_targets(records)
    chosen = select(records)
    if not chosen:
        return []
    datasets = sorted({c["dataset"] for c in chosen})
    fig, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 4.5), squeeze=False,
                             layout="constrained")
    for ax, dataset in zip(axes[0], datasets):
        bars = []
        for c in (c for c in chosen if c["dataset"] == dataset):
            group = list(chosen_runs(records, c).values())
            times = [t for t in (time_to_target(r, goal[dataset]) for r in group)
                     if np.isfinite(t)]
            bars.append((c["family"], _params_label(c["params"]), mean_interval(times),
                         len(times), len(group)))
        bars.sort(key=lambda b: (np.isnan(b[2].estimate), b[2].estimate))
        heights = [0.0 if np.isnan(b[2].estimate) else b[2].estimate for b in bars]
        ax.bar(range(len(bars)), heights, color=[family_color(b[0]) for b in bars],
               yerr=np.array([_half(b[2]) or [[0], [0]] for b in bars])[:, :, 0].T,
               capsize=3)
        for i, b in enumerate(bars):
            ax.annotate(f"{b[3]}/{b[4]}", (i, heights[i]), ha="center", fontsize=7,
                        xytext=(0, 3), textcoords="offset points")
        ax.set_xticks(range(len(bars)), [f"{b[0]}\n{b[1].replace(', ', chr(10))}"
                                         for b in bars], fontsize=6)
        ax.set_ylabel("seconds of training (mean, 95% CI)")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{dataset}: time to {goal[dataset]:.3f} validation accuracy",
                     fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Time to 99% of the no-dropout network's best validation accuracy (epochs "
                 "to it x the run's median epoch time), each family's validation choice; k/n: "
                 "repeats that reached it",
                 fontsize=9)
    return _save(fig, out, "time_to_target")


def learning_curves(records, out):
    """Validation loss vs epoch for drop rates 0, 0.2, 0.5, 0.8, each at its validation-
    preferred learning rate: median over repeats and their range; a run that stopped holds
    its last value (no jumps where runs end)."""
    plt, paths = _plt(), []
    for dataset in sorted({r["dataset"] for r in fits(records)}):
        curves = {**sweep(records, dataset, "none"), **sweep(records, dataset, "dropout")}
        curves = {rate: runs for rate, runs in curves.items() if rate in CURVE_RATES and runs}
        if not curves:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
        cmap = _plt().get_cmap("viridis")
        for i, (rate, runs) in enumerate(sorted(curves.items())):
            held = _held([r["history"]["val_loss"] for r in runs.values()])
            epochs = np.arange(1, held.shape[1] + 1)
            color = cmap(i / len(CURVE_RATES))
            lr = next(iter(runs.values()))["params"].get("learning_rate_init")
            ax.plot(epochs, np.median(held, axis=0), color=color,
                    label=f"p = {rate:g}, lr {lr:g} (n = {len(runs)})")
            ax.fill_between(epochs, held.min(0), held.max(0), color=color, alpha=0.15)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation loss (log-loss)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title(f"Learning curves, {dataset}: median and range over repeats (a stopped "
                     "run holds its last value)", fontsize=9)
        paths += _save(fig, out, f"learning_curves_{dataset}")
    return paths


def _held(curves):
    """Curves of unequal length as one array, each run's last value held to the longest."""
    values = [[np.nan if v is None else v for v in c] for c in curves]
    n = max(len(c) for c in values)
    return np.array([c + [c[-1]] * (n - len(c)) for c in values], dtype=float)


def _latest_figure(records, kind, figsize):
    """The last record of a side experiment and a figure for it; (None, None, None) when
    there is none."""
    rec = _latest(records, kind)
    if rec is None:
        return None, None, None
    fig, ax = _plt().subplots(figsize=figsize)
    return rec, fig, ax


def kernel_throughput(records, out):
    rec, fig, ax = _latest_figure(records, "kernel", (7, 4.5))
    if rec is None:
        return []
    styles = {"fastdrop": "o-", "numpy": "s-", "torch": "^-", "copy": "k--"}
    for impl in styles:
        rows = [r for r in rec["rows"] if r["impl"] == impl]
        if rows:
            ax.plot([r["elements"] for r in rows], [r["rate"] for r in rows], styles[impl],
                    label="np.copyto (bandwidth)" if impl == "copy" else impl)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("array size (float32 elements)")
    ax.set_ylabel("G elements / s")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(f"Dropout forward (p = {rec['p']}, out=) throughput vs size\n(each point: the "
                 "fastest of the calls made in 0.05 s, after a warm-up call)", fontsize=10)
    return _save(fig, out, "kernel_throughput")


def threads_scaling(records, out):
    rec, fig, ax = _latest_figure(records, "threads", (6, 4))
    if rec is None:
        return []
    for rate, style in ((0.0, "o-"), (0.5, "s--")):
        rows = [r for r in rec["rows"] if r["dropout"] == rate]
        mid = np.array([r["epoch_time"] for r in rows])
        spread = np.array([[mid[i] - min(r.get("epoch_times", [m])),
                            max(r.get("epoch_times", [m])) - mid[i]]
                           for i, (r, m) in enumerate(zip(rows, mid))]).T
        n = len(rows[0].get("epoch_times", [0])) if rows else 0
        ax.errorbar([r["n_threads"] for r in rows], mid, yerr=spread, fmt=style, capsize=3,
                    label=f"dropout {rate} (median and range of {n} epochs)")
    ax.set_xlabel("threads (BLAS)")
    ax.set_ylabel("seconds per epoch")
    ax.set_xticks(sorted({r["n_threads"] for r in rec["rows"]}))
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"Epoch time vs threads, {rec['dataset']} (train part), 784-512-512")
    return _save(fig, out, "epoch_time_vs_threads")


def mc_dropout(records, out):
    """Per dataset: Monte-Carlo averaging of T thinned networks against weight scaling, in
    test accuracy, log-loss and KL(average || weight scaling), one line per drop rate (mean
    over repeats, band of one standard deviation; dashed: weight scaling)."""
    plt, paths = _plt(), []
    groups = defaultdict(list)
    for r in records:
        if r.get("kind") == "mc" and "mc_log_loss" in r:
            groups[(r["dataset"], r["rate"])].append(r)
    panels = (("mc_accuracy", "weight_scaling_accuracy", "test accuracy"),
              ("mc_log_loss", "weight_scaling_log_loss", "test log-loss"),
              ("mc_kl", None, "KL(average || weight scaling), nats"))
    for dataset in sorted({d for d, _ in groups}):
        fig, axes = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
        rates = sorted(rate for d, rate in groups if d == dataset)
        for i, rate in enumerate(rates):
            recs, color = groups[(dataset, rate)], f"C{i}"
            samples = recs[0]["samples"]
            for ax, (key, ws_key, label) in zip(axes, panels):
                values = np.array([r[key] for r in recs])
                mean = values.mean(0)
                sd = values.std(0, ddof=1) if len(recs) > 1 else np.zeros_like(mean)
                ax.plot(samples, mean, "o-", ms=3, color=color,
                        label=f"p = {rate:g}, average (n = {len(recs)})")
                ax.fill_between(samples, mean - sd, mean + sd, color=color, alpha=0.2)
                if ws_key:
                    ax.axhline(np.mean([r[ws_key] for r in recs]), color=color, ls="--",
                               lw=1, label=f"p = {rate:g}, weight scaling")
                ax.set_xscale("log")
                ax.set_xlabel("thinned networks averaged (T)")
                ax.set_ylabel(label)
                ax.grid(alpha=0.3)
        axes[2].set_yscale("log")
        axes[0].legend(fontsize=7)
        fig.suptitle(f"Monte-Carlo averaging vs weight scaling, {dataset} (mean ± 1 sd over "
                     "repeats)")
        paths += _save(fig, out, f"mc_dropout_{dataset}")
    return paths


RELIABILITY_METHODS = ("ws", "mc", "ts", "plain", "ensemble")
MIN_BIN_POINTS = 10  # a bin's accuracy from fewer points is noise, drawn as a spike
COVERAGE_METHODS = ("ws", "mc", "mc-het", "plain", "ensemble", "oracle")


def reliability(records, out):
    """Per classification set of the uncertainty stage: the reliability diagram (accuracy
    against mean confidence per confidence bin, the bins pooled over repeats; the diagonal is
    perfect calibration) of each method, its ECE in the legend, and the share of test points
    per bin below."""
    from .suite.claims import uncertainty_records
    from .suite.predictive import METHODS

    plt, paths = _plt(), []
    for dataset, recs in uncertainty_records(records).items():
        if recs[0]["task"] != "classification":
            continue
        fig, (ax, hist) = plt.subplots(2, 1, figsize=(6.5, 7), height_ratios=(3, 1),
                                       sharex=True, layout="constrained")
        ax.plot([0, 1], [0, 1], color="gray", lw=1, ls=":", label="perfect calibration")
        n_bins = recs[0]["n_bins"]
        edges = np.linspace(0, 1, n_bins + 1)
        for i, method in enumerate(m for m in RELIABILITY_METHODS if m in recs[0]["methods"]):
            bins = {k: np.sum([r["methods"][method]["bins"][k] for r in recs], axis=0)
                    for k in ("count", "confidence", "correct")}
            seen = bins["count"] >= MIN_BIN_POINTS
            conf = bins["confidence"][seen] / bins["count"][seen]
            acc = bins["correct"][seen] / bins["count"][seen]
            ece = np.mean([r["methods"][method]["ece"] for r in recs])
            ax.plot(conf, acc, "o-", ms=3, color=f"C{i}",
                    label=f"{METHODS[method]} (ECE {ece:.3f})")
            hist.stairs(bins["count"] / bins["count"].sum(), edges, color=f"C{i}")
        ax.set_ylabel("accuracy in the bin")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
        hist.set_xlabel(f"confidence (top probability), {n_bins} equal-width bins")
        hist.set_ylabel("share of test points")
        hist.grid(alpha=0.3)
        ax.set_title(f"Reliability, {dataset}: {len(recs)} repeats pooled (bins of fewer than "
                     f"{MIN_BIN_POINTS} points not drawn); ECE: mean over repeats", fontsize=9)
        paths += _save(fig, out, f"reliability_{dataset}")
    return paths


def coverage(records, out):
    """The regression sets of the uncertainty stage, one panel each: the share of test
    points inside each method's central interval against the interval's nominal level (mean
    over repeats, band of one standard deviation); on the diagonal an interval covers what it
    says. ``oracle``, where the noise is known: the true distribution."""
    from .suite.claims import uncertainty_records
    from .suite.predictive import METHODS

    groups = {d: recs for d, recs in uncertainty_records(records).items()
              if recs[0]["task"] == "regression"}
    if not groups:
        return []
    plt = _plt()
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 5), squeeze=False,
                             layout="constrained")
    for ax, (dataset, recs) in zip(axes[0], groups.items()):
        levels = np.array(recs[0]["levels"])
        ax.plot([0, 1], [0, 1], color="gray", lw=1, ls=":", label="nominal")
        for i, method in enumerate(m for m in COVERAGE_METHODS if m in recs[0]["methods"]):
            cov = np.array([r["methods"][method]["coverage"] for r in recs])
            mean = cov.mean(axis=0)
            sd = cov.std(axis=0, ddof=1) if len(recs) > 1 else np.zeros_like(mean)
            color = "black" if method == "oracle" else f"C{i}"
            style = dict(ls="--") if method == "oracle" else dict(marker="o", ms=3)
            ax.plot(levels, mean, color=color, label=METHODS[method], **style)
            ax.fill_between(levels, mean - sd, mean + sd, alpha=0.15, color=color)
        ax.set_xlabel("nominal level of the central interval")
        ax.set_ylabel("share of test points inside")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.set_title(f"{dataset} ({len(recs)} repeats, mean ± 1 sd)", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Coverage of the predictive intervals (mean ± z x total std)")
    return _save(fig, out, "coverage")


def critical_difference(records, out):
    """Demšar's critical-difference diagram: the core families' average ranks over the
    datasets (1 = best), Nemenyi's critical difference as a bar, and a thick line joining
    each group of families no further apart than it (no difference the test can see)."""
    from .suite.claims import across_datasets

    a = across_datasets(records)
    if a is None:
        return []
    plt = _plt()
    ranks, names, cd = np.array(a["ranks"]), a["families"], a["nemenyi_cd"]
    k = len(names)
    order = np.argsort(ranks)
    fig, ax = plt.subplots(figsize=(8, 1.6 + 0.32 * k), layout="constrained")
    ax.set_xlim(k + 0.2, 0.8)  # the best rank on the right, as Demšar draws it
    ax.set_ylim(-((k + 1) // 2 * 0.8 + 0.6), 2.2)
    ax.axhline(0, color="black", lw=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.15], color="black", lw=1)
        ax.annotate(str(r), (r, 0.25), ha="center", fontsize=8)
    ax.plot([1, 1 + cd], [1.4, 1.4], color="black", lw=2)
    ax.annotate(f"CD = {cd:.2f}", (1 + cd / 2, 1.6), ha="center", fontsize=8)
    for i, idx in enumerate(order):  # best half labelled on the right, the rest on the left
        right = i < (k + 1) // 2
        y = -(i + 1) * 0.8 if right else -(k - i) * 0.8
        end = 0.7 if right else k + 0.1
        ax.plot([ranks[idx], ranks[idx], end], [0, y, y], color=family_color(names[idx]),
                lw=1)
        ax.annotate(f"{names[idx]} ({ranks[idx]:.2f})", (end, y), fontsize=8, va="center",
                    ha="left" if right else "right", annotation_clip=False)
    _clique_bars(ax, np.sort(ranks), cd)
    ax.axis("off")
    f = a["friedman"]
    p = "n/a" if f["p"] is None else f"{f['p']:.3f}"
    ax.set_title(f"Average rank over {f['n']} datasets (test accuracy of each family's "
                 f"validation choice); Friedman / Iman-Davenport p = {p}; bars join families "
                 f"within Nemenyi's CD ({1 - a['confidence']:.2f})", fontsize=8)
    return _save(fig, out, "critical_difference")


def _clique_bars(ax, ranks, cd):
    """Thick bars under the axis over each maximal run of ranks within ``cd`` of its first."""
    cliques = []
    for i in range(len(ranks)):
        j = max(j for j in range(i, len(ranks)) if ranks[j] - ranks[i] <= cd)
        if j > i and not any(a <= i and j <= b for a, b in cliques):
            cliques.append((i, j))
    for n, (i, j) in enumerate(cliques):
        y = -0.25 - 0.2 * n
        ax.plot([ranks[i] - 0.03, ranks[j] + 0.03], [y, y], color="black", lw=3)


def plot_all(results_dir, out=None):
    """Draw every figure the stored records allow; returns the written paths."""
    store = ResultStore(results_dir)
    records = store.records()
    out = Path(out or Path(results_dir) / "figures")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    if fits(records):
        paths += rate_sweep(records, out) + time_vs_epochs(records, out)
        paths += time_to_target_bars(records, out) + learning_curves(records, out)
        paths += noise_kinds(records, out) + critical_difference(records, out)
    if fits(records, arch="seed"):
        paths += rate_sweep(records, out, arch="seed")
    paths += kernel_throughput(records, out) + threads_scaling(records, out)
    paths += mc_dropout(records, out) + reliability(records, out) + coverage(records, out)
    return paths
