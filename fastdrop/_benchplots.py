"""The figures of `fastdrop bench`, from its pytest-benchmark JSON files (the study's figures
are in plots.py)."""
from pathlib import Path

import numpy as np

from ._benchreport import load_epochs, load_rates, load_torch
from ._figures import pyplot as _plt, save as _save
from .suite.stats import median_ci, round_ratios


def bench_figures(out):
    """Figures of `fastdrop bench` from its pytest-benchmark JSON files in ``out``."""
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
    if (out / "torch.json").exists():
        paths += _torch_figure(plt, out)
    return paths


def _torch_figure(plt, out):
    """The torch part: per thread count, each dropout's epoch over the no-dropout epoch (paired
    median and its interval), and the op's forward + backward time per case."""
    table, _ = load_torch(out / "torch.json")
    loops = sorted((t, row) for (part, t), row in table.items() if part == "loop")
    ops = sorted((t, row) for (part, t), row in table.items() if part == "op")
    n_panels = len(loops) + bool(ops)
    fig, axes = plt.subplots(1, n_panels, figsize=(4.2 * n_panels, 3.6), squeeze=False)
    for ax, (threads, row) in zip(axes[0], loops):
        ref = row[("torch", 0.0)]
        cases = [c for c in row if c != ("torch", 0.0)]
        stats = [median_ci(round_ratios(row[c], ref)) for c in cases]
        mids = [float(np.median(round_ratios(row[c], ref))) for c in cases]
        ax.barh([("nn.Dropout" if c[0] == "torch" else c[0].replace("torch+", ""))
                 for c in cases], mids,
                xerr=[[m - lo for m, (lo, _, _) in zip(mids, stats)],
                      [hi - m for m, (_, hi, _) in zip(mids, stats)]],
                color=["tab:gray" if c[0] == "torch" else "tab:blue" for c in cases])
        ax.axvline(1.0, color="k", lw=0.8)
        ax.axvline(1.05, color="k", ls="--", lw=0.8)
        ax.set_xlim(left=0.9)
        ax.set_xlabel("epoch / epoch without dropout")
        ax.set_title(f"torch MLP epoch, p = 0.5, {threads} thread(s)", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    if ops:
        ax = axes[0][-1]
        for k, (threads, row) in enumerate(ops):
            labels = [f"{name} {dtype}" for name, dtype in row]
            ax.barh(np.arange(len(labels)) + 0.4 * k, [1e3 * np.median(t) for t in row.values()],
                    height=0.4, label=f"{threads} thread(s)")
        ax.set_yticks(np.arange(len(labels)) + 0.2, labels, fontsize=7)
        ax.set_xlabel("ms per forward + backward of the op's tensor")
        ax.legend(fontsize=7)
    fig.suptitle("fastdrop.torch against torch's dropout, one `fastdrop bench` run")
    fig.tight_layout()
    return _save(fig, out, "torch")


def _bench_size(label):
    if "x" in label:
        a, b = label.split("x")
        return int(a) * int(b)
    return 2 ** int(label.split("^")[1])
