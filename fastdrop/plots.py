"""Every figure of the study, drawn from stored records only (so results from another machine
can be re-plotted): `fastdrop plot RESULTS_DIR`. Each figure is written as PNG and SVG."""
from collections import defaultdict
from pathlib import Path

import numpy as np

from .suite.store import ResultStore
from .suite.summary import aggregate, fits, targets, time_to_target

FAMILY_COLORS = {"none": "black", "dropout": "tab:blue", "dropout-batch": "tab:cyan",
                 "dropout-maxnorm": "tab:purple", "input-dropout": "tab:pink",
                 "l2": "tab:orange", "l1": "tab:green"}
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
        for ax, metric, label in ((axes[0], "best_val_accuracy", "best validation accuracy"),
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
                if rows:
                    best = max(rows, key=lambda v: v["best_val_accuracy"][0])
                    mu, sd = best[metric]
                    ax.axhspan(mu - sd, mu + sd, color=FAMILY_COLORS[reg], alpha=0.15)
                    ax.axhline(mu, color=FAMILY_COLORS[reg], lw=1,
                               label=f"best {reg.upper()} (mean ± std)")
            ax.set_xlabel("drop rate p on hidden layers")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"Dropout rate sweep, {dataset} ({arch} architecture), mean ± std over seeds")
        paths += _save(fig, out, f"rate_sweep_{dataset}" + ("" if arch == "default" else f"_{arch}"))
    return paths


def time_vs_epochs(records, out):
    """Time per epoch vs epochs to converge, one point per configuration and dataset."""
    plt, agg = _plt(), aggregate(records)
    fig, ax = plt.subplots(figsize=(7, 5))
    markers = dict(zip(sorted({k[0] for k in agg}), "osD^vP*X"))
    seen = set()
    for (dataset, reg, s), v in sorted(agg.items()):
        family = "none" if reg.startswith("dropout") and s == 0 else reg
        label = family if family not in seen else None
        seen.add(family)
        ax.scatter(v["n_iter"][0], 1000 * v["epoch_time"][0], marker=markers[dataset],
                   edgecolors=FAMILY_COLORS[family], label=label, alpha=0.8,
                   facecolors="none" if v["converged"] < 1 else FAMILY_COLORS[family])
    for dataset, mk in markers.items():
        ax.scatter([], [], marker=mk, color="gray", label=dataset)
    ax.set_xlabel("epochs until the stopping rule fired (hollow: not all seeds converged)")
    ax.set_ylabel("median time per epoch (ms)")
    ax.set_yscale("log")
    from matplotlib.ticker import ScalarFormatter

    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(ScalarFormatter())
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    ax.set_title("Cost per epoch vs epochs to converge, one point per configuration")
    return _save(fig, out, "time_vs_epochs")


def time_to_target_bars(records, out):
    """Time to reach 99% of the best validation accuracy, best configuration per regularizer."""
    plt, goal = _plt(), targets(records)
    by = defaultdict(lambda: defaultdict(list))
    for r in fits(records):
        t = time_to_target(r, goal[r["dataset"]])
        by[r["dataset"]][(r["family"], r["strength"])].append(np.nan if t is None else t)
    datasets = sorted(by)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        best = {}
        for (family, s), ts in by[dataset].items():
            ts = np.array(ts)
            if np.isnan(ts).all():
                continue
            mean = np.nanmean(ts)
            if family not in best or mean < best[family][0]:
                best[family] = (mean, np.nanstd(ts), s)
        names = sorted(best, key=lambda f: best[f][0])
        never = sorted({f for f, _ in by[dataset]} - set(names))
        if never:
            ax.text(0.02, 0.97, "never reached: " + ", ".join(never), transform=ax.transAxes,
                    va="top", fontsize=8, color="dimgray")
        ax.bar(range(len(names)), [best[f][0] for f in names],
               yerr=[best[f][1] for f in names], capsize=3,
               color=[FAMILY_COLORS[f] for f in names])
        ax.set_xticks(range(len(names)),
                      [f"{f}\n({best[f][2]:g})" for f in names], fontsize=7, rotation=30)
        ax.set_ylabel("seconds of training to target")
        ax.set_title(f"{dataset}: time to {goal[dataset]:.3f} val acc")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("Time to 99% of the best validation accuracy (best setting per regularizer)")
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
    """Per dataset: Monte-Carlo averaging's test accuracy against the number of thinned
    networks, mean over seeds with a band of one standard deviation, and weight scaling's."""
    plt = _plt()
    by_dataset = defaultdict(list)
    for r in records:
        if r.get("kind") == "mc":
            by_dataset[r["dataset"]].append(r)
    if not by_dataset:
        return []
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, (dataset, recs) in enumerate(sorted(by_dataset.items())):
        color, n = f"C{i}", len(recs)
        samples = recs[0]["samples"]
        acc = np.array([r["mc_accuracy"] for r in recs])
        ws = np.array([r["weight_scaling_accuracy"] for r in recs])
        sd = acc.std(0, ddof=1) if n > 1 else np.zeros(len(samples))
        ax.plot(samples, acc.mean(0), "o-", color=color,
                label=f"{dataset}: Monte-Carlo average (n={n})")
        ax.fill_between(samples, acc.mean(0) - sd, acc.mean(0) + sd, color=color, alpha=0.2)
        ax.axhline(ws.mean(), color=color, ls="--", label=f"{dataset}: weight scaling")
    ax.set_xscale("log")
    ax.set_xlabel("number of thinned networks averaged (MC samples)")
    ax.set_ylabel("test accuracy (mean ± 1 sd over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Monte-Carlo dropout vs weight scaling (p = 0.5)")
    return _save(fig, out, "mc_dropout")


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
