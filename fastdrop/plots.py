"""Every figure of the study, drawn from stored records only (so results from another machine
can be re-plotted): `fastdrop plot RESULTS_DIR`. Each figure is written as PNG and SVG."""
from collections import defaultdict
from pathlib import Path

import numpy as np

from .suite.store import ResultStore
from .suite.stats import mean_interval
from .suite.summary import (aggregate, epochs_to_converge, fits, select, targets,
                            time_to_target)

FAMILY_COLORS = {"none": "black", "dropout": "tab:blue", "dropout-batch": "tab:cyan",
                 "dropout-maxnorm": "tab:purple", "input-dropout": "tab:pink",
                 "l2": "tab:orange", "l1": "tab:green", "early-stopping": "tab:brown"}
CURVE_RATES = (0.0, 0.2, 0.5, 0.8)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out, name):
    paths = []
    for ext in ("png", "svg"):
        path = Path(out) / f"{name}.{ext}"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        paths.append(path)
    _plt().close(fig)
    return paths


def _latest(records, kind):
    """The last stored record of a side experiment (a rerun appends a newer one), or None."""
    recs = [r for r in records if r.get("kind") == kind]
    return recs[-1] if recs else None


def rate_sweep(records, out, arch="default"):
    """The article's figure: validation accuracy and loss vs drop rate, mean ± std over seeds,
    element and batch mode, with the best L1 and L2 configurations as reference bands."""
    plt, agg, paths = _plt(), aggregate(records, arch), []
    for dataset in sorted({k[0] for k in agg}):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        n = max(v["n"] for k, v in agg.items() if k[0] == dataset)
        for ax, metric, label in ((axes[0], "val_score",
                                   "validation accuracy (the selection metric)"),
                                  (axes[1], "best_val_loss", "best validation loss (log-loss)")):
            for reg, style in (("dropout", "o-"), ("dropout-batch", "s--")):
                pts = sorted((k[2], v[metric]) for k, v in agg.items()
                             if k[0] == dataset and k[1] == reg)
                if reg == "dropout-batch":  # rate 0 of batch mode is the same network
                    base = agg.get((dataset, "dropout", 0.0))
                    pts = ([(0.0, base[metric])] if base and pts else []) + pts
                if not pts:
                    continue
                x = np.array([p[0] for p in pts])
                m = np.array([p[1][0] for p in pts])
                s = np.array([p[1][1] for p in pts])
                ax.errorbar(x, m, yerr=s, fmt=style, capsize=3, color=FAMILY_COLORS[reg],
                            label=f"{reg} ({'per-example' if reg == 'dropout' else 'per-batch'}"
                                  " masks)")
            for reg in ("l2", "l1"):
                rows = [v for k, v in agg.items() if k[0] == dataset and k[1] == reg]
                if rows:  # the strength validation chooses
                    best = max(rows, key=lambda v: v["val_score"][0])
                    mu, sd = best[metric]
                    ax.axhspan(mu - sd, mu + sd, color=FAMILY_COLORS[reg], alpha=0.15)
                    ax.axhline(mu, color=FAMILY_COLORS[reg], lw=1,
                               label=f"{reg.upper()} chosen on validation (mean ± std)")
            ax.set_xlabel("drop rate p on hidden layers")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"Dropout rate sweep, {dataset} ({arch} architecture), mean ± std over "
                     f"n = {n} repeats")
        paths += _save(fig, out, f"rate_sweep_{dataset}" + ("" if arch == "default" else f"_{arch}"))
    return paths


def time_vs_epochs(records, out):
    """Seconds per epoch against epochs to converge (on validation loss), one point per
    configuration with 95% intervals over its uncensored repeats, and iso-lines of total
    training time: the cost dropout trades."""
    plt = _plt()
    points = defaultdict(list)
    for r in fits(records):
        if "val_score" in r:
            points[(r["dataset"], r["family"], r["strength"])].append(r)
    if not points:
        return []
    fig, ax = plt.subplots(figsize=(7.5, 5))
    markers = dict(zip(sorted({k[0] for k in points}), "osD^vP*X"))
    seen, xs, ys = set(), [], []
    for (dataset, family, s), runs in sorted(points.items()):
        done = [(e, 1000 * r["epoch_time"]) for r in runs
                for e, censored in [epochs_to_converge(r)] if e and not censored]
        if not done:
            continue
        ex, ey = mean_interval([e for e, _ in done]), mean_interval([t for _, t in done])
        label = family if family not in seen else None
        seen.add(family)
        hollow = len(done) < len(runs)
        ax.errorbar(ex.estimate, ey.estimate, xerr=_half(ex), yerr=_half(ey),
                    fmt=markers[dataset], color=FAMILY_COLORS[family], label=label,
                    mfc="none" if hollow else FAMILY_COLORS[family], capsize=2, alpha=0.85)
        xs.append(ex.estimate)
        ys.append(ey.estimate)
    if len(markers) > 1:
        for dataset, mk in markers.items():
            ax.scatter([], [], marker=mk, color="gray", label=dataset)
    _iso_time_lines(ax, xs, ys)
    ax.set_xlabel("epochs to converge (validation loss within 1% of the run's best)")
    ax.set_ylabel("time per epoch (ms, from the sweep)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    n = max(len(runs) for runs in points.values())
    ax.set_title(f"Cost per epoch vs epochs to converge (n = {n} repeats; hollow: some "
                 "censored)", fontsize=10)
    return _save(fig, out, "time_vs_epochs")


def _half(interval):
    """Error-bar half widths of an interval (none without one)."""
    if not np.isfinite(interval.low):
        return None
    return [[interval.estimate - interval.low], [interval.high - interval.estimate]]


def _iso_time_lines(ax, xs, ys):
    """Dashed curves of equal total training time (epochs x time per epoch)."""
    if not xs:
        return
    x = np.linspace(max(1.0, 0.5 * min(xs)), 1.2 * max(xs), 200)
    totals = np.array(xs) * np.array(ys) / 1000
    for total in np.quantile(totals, [0.1, 0.5, 0.9]):
        ax.plot(x, 1000 * total / x, ls=":", color="gray", lw=1)
        ax.annotate(f"{total:.1f} s", (x[-1], 1000 * total / x[-1]), fontsize=7,
                    color="gray", xytext=(2, 0), textcoords="offset points")
    ax.set_ylim(0.8 * min(ys), 1.25 * max(ys))


def time_to_target_bars(records, out):
    """Seconds of training until validation accuracy first reaches a target every family can
    reach (summary.targets), for each family's validation-chosen configuration, with the
    count of repeats that reached it."""
    plt, goal = _plt(), targets(records)
    chosen = select(records)
    if not chosen:
        return []
    runs = defaultdict(list)
    for r in fits(records):
        runs[(r["dataset"], r["family"], r["strength"])].append(r)
    datasets = sorted({c["dataset"] for c in chosen})
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        bars = []
        for c in (c for c in chosen if c["dataset"] == dataset):
            value = next(iter(c["params"].values()), 0.0)
            group = runs[(dataset, c["family"], value)]
            times = [t for t in (time_to_target(r, goal[dataset]) for r in group)
                     if t is not None]
            iv = mean_interval(times)
            bars.append((c["family"], value, iv, len(times), len(group)))
        bars.sort(key=lambda b: (np.isnan(b[2].estimate), b[2].estimate))
        heights = [0.0 if np.isnan(b[2].estimate) else b[2].estimate for b in bars]
        ax.bar(range(len(bars)), heights, color=[FAMILY_COLORS[b[0]] for b in bars],
               yerr=np.array([_half(b[2]) or [[0], [0]] for b in bars])[:, :, 0].T,
               capsize=3)
        for i, b in enumerate(bars):
            ax.annotate(f"{b[3]}/{b[4]}", (i, heights[i]), ha="center", fontsize=7,
                        xytext=(0, 3), textcoords="offset points")
        ax.set_xticks(range(len(bars)), [f"{b[0]}\n({b[1]:g})" for b in bars], fontsize=7,
                      rotation=30)
        ax.set_ylabel("seconds of training (mean, 95% CI)")
        ax.set_ylim(bottom=0)
        ax.set_title(f"{dataset}: time to {goal[dataset]:.3f} validation accuracy",
                     fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Time to a validation accuracy every family reaches (99% of the weakest\n"
                 "family's best), choice made on validation; k/n: repeats that reached it",
                 fontsize=9)
    return _save(fig, out, "time_to_target")


def learning_curves(records, out):
    """Validation loss vs epoch for drop rates 0, 0.2, 0.5, 0.8 (mean over seeds)."""
    plt, paths = _plt(), []
    runs = [r for r in fits(records) if r["regularizer"] == "dropout"
            and r["strength"] in CURVE_RATES]
    for dataset in sorted({r["dataset"] for r in runs}):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        cmap = _plt().get_cmap("viridis")
        for i, rate in enumerate(CURVE_RATES):
            curves = [r["history"]["val_loss"] for r in runs
                      if r["dataset"] == dataset and r["strength"] == rate]
            if not curves:
                continue
            n = max(len(c) for c in curves)
            padded = np.full((len(curves), n), np.nan)
            for j, c in enumerate(curves):
                padded[j, :len(c)] = [np.nan if v is None else v for v in c]
            with np.errstate(all="ignore"):
                ax.plot(np.arange(1, n + 1), np.nanmean(padded, axis=0),
                        color=cmap(i / len(CURVE_RATES)), label=f"p = {rate}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation loss (log-loss)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title(f"Learning curves, {dataset} (mean over seeds; runs end at the stopping rule)")
        paths += _save(fig, out, f"learning_curves_{dataset}")
    return paths


def kernel_throughput(records, out):
    plt = _plt()
    rec = _latest(records, "kernel")
    if rec is None:
        return []
    fig, ax = plt.subplots(figsize=(7, 4.5))
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
    ax.set_title(f"Dropout forward (p = {rec['p']}, out=) throughput vs size")
    return _save(fig, out, "kernel_throughput")


def threads_scaling(records, out):
    plt = _plt()
    rec = _latest(records, "threads")
    if rec is None:
        return []
    fig, ax = plt.subplots(figsize=(6, 4))
    for rate, style in ((0.0, "o-"), (0.5, "s--")):
        rows = [r for r in rec["rows"] if r["dropout"] == rate]
        ax.plot([r["n_threads"] for r in rows], [r["epoch_time"] for r in rows], style,
                label=f"dropout {rate}")
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
    if fits(records, arch="seed"):
        paths += rate_sweep(records, out, arch="seed")
    paths += kernel_throughput(records, out) + threads_scaling(records, out)
    paths += mc_dropout(records, out)
    return paths


def bench_figures(out):
    """Figures of `fastdrop bench` from its pytest-benchmark JSON files in ``out``."""
    from ._benchreport import load_epochs, load_rates

    plt, out, paths = _plt(), Path(out), []
    if (out / "kernels.json").exists():
        rates, _ = load_rates(out / "kernels.json")
        ops = sorted({k[0] for k in rates if k[0] != "copy"})
        fig, axes = plt.subplots(1, len(ops), figsize=(4 * len(ops), 3.8), squeeze=False)
        sizes = sorted({k[1] for k in rates}, key=_bench_size)
        for ax, op in zip(axes[0], ops):
            series = sorted({(k[2], k[3]) for k in rates if k[0] == op})
            for impl, threads in series + [("copy", 1)]:
                key_op = "copy" if impl == "copy" else op
                xs = [s for s in sizes if (key_op, s, impl, threads) in rates]
                ax.plot([_bench_size(s) for s in xs], [rates[(key_op, s, impl, threads)]
                                                      for s in xs],
                        "k--" if impl == "copy" else "o-",
                        label="np.copyto" if impl == "copy" else f"{impl}, {threads} thr")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(op)
            ax.set_xlabel("float32 elements")
            ax.grid(alpha=0.3, which="both")
        axes[0][0].set_ylabel("G elements / s")
        axes[0][-1].legend(fontsize=7)
        fig.suptitle("Kernel throughput (p = 0.5), one `fastdrop bench` run")
        paths += _save(fig, out, "kernels")
    if (out / "epochs.json").exists():
        table = load_epochs(out / "epochs.json")
        fig, axes = plt.subplots(1, len(table), figsize=(4.5 * len(table), 4), squeeze=False)
        for ax, ((dataset, threads), row) in zip(axes[0], sorted(table.items())):
            items = sorted(((key, float(np.median(t))) for key, t in row.items()),
                           key=lambda kv: kv[1])
            ax.barh([f"{impl} p={p}" for (impl, p), _ in items], [t for _, t in items],
                    color=["tab:blue" if impl.startswith("fastdrop")
                           else "gainsboro" if impl.endswith("floor") else "tab:gray"
                           for (impl, _), _ in items])
            ax.set_xlabel("seconds per epoch")
            ax.set_title(f"{dataset}, {threads} thread(s)", fontsize=9)
            ax.tick_params(axis="y", labelsize=7)
            ax.grid(axis="x", alpha=0.3)
        fig.suptitle("Time per training epoch, one `fastdrop bench` run")
        fig.tight_layout()
        paths += _save(fig, out, "epochs")
    return paths


def _bench_size(label):
    if "x" in label:
        a, b = label.split("x")
        return int(a) * int(b)
    return 2 ** int(label.split("^")[1])
