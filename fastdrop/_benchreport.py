"""Turn `fastdrop bench`'s pytest-benchmark JSON (kernels, epochs) into same-run ratio tables."""
import json
from collections import defaultdict

import numpy as np


def load_rates(path):
    """{(op, size, impl, n_threads): G elements/s (median time)} and the machine facts."""
    with open(path) as f:
        data = json.load(f)
    rates = {}
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        size = bench["group"].split(" ", 1)[1]
        key = (info["op"], size, info["impl"], info["n_threads"])
        rates[key] = info["elements"] / bench["stats"]["median"] / 1e9
    return rates, data.get("machine_info", {})


def ratio_table(rates):
    """Markdown table: one row per (op, size, impl, threads) with x copy / x numpy / x torch."""
    copy = {size: r for (op, size, impl, _), r in rates.items() if op == "copy"}
    by_group = defaultdict(dict)
    for (op, size, impl, threads), rate in rates.items():
        if op != "copy":
            by_group[(op, size)][(impl, threads)] = rate
    lines = ["| op | size | impl | threads | G elem/s | x copy | x numpy | x torch (same threads) |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for (op, size), row in by_group.items():
        numpy_rate = row.get(("numpy", 1))
        for (impl, threads), rate in sorted(row.items()):
            torch_rate = row.get(("torch", threads))
            cells = [op, size, impl, str(threads), f"{rate:.3f}",
                     _ratio(rate, copy.get(size)), _ratio(rate, numpy_rate),
                     _ratio(rate, torch_rate)]
            lines.append("| " + " | ".join(cells) + " |")
    for size, rate in copy.items():
        lines.append(f"| copy | {size} | np.copyto | 1 | {rate:.3f} | 1.00 | | |")
    return "\n".join(lines)


def _ratio(a, b):
    return f"{a / b:.2f}" if b else ""


def load_epochs(path):
    """{(dataset, n_threads): {(impl, dropout): per-round seconds per epoch}}: the interleaved
    epoch times of each round, in round order (every implementation runs once per round)."""
    with open(path) as f:
        data = json.load(f)
    table = defaultdict(dict)
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        for (impl, p), times in zip(info["cases"], info["epoch_times"]):
            table[(info["dataset"], info["n_threads"])][(impl, p)] = [float(t) for t in times]
    return table


def paired_ratio(times, ref_times):
    """Median over rounds of the per-round ratio: both epochs of a ratio ran in the same round,
    a few seconds apart, so a shared machine's drifting load cancels out of it."""
    if not ref_times:
        return None
    return float(np.median(np.asarray(times) / np.asarray(ref_times)))


def epoch_table(table):
    """Markdown: median seconds per epoch and, per dataset/threads, the ratios the MLP issue
    asks for (paired per round, see paired_ratio).

    Two floors: the GEMMs alone, and the GEMMs plus the memory traffic of an exact SGD step
    (``gemm+update-floor``, see bench/mlp_baselines.py).
    """
    lines = ["| dataset | threads | impl | dropout | s/epoch | x fastdrop p=0 | x GEMM floor "
             "| x GEMM+update floor | x torch p=0 | x sklearn |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for (dataset, threads), row in sorted(table.items()):
        refs = [row.get(key) for key in (("fastdrop", 0.0), ("gemm-floor", 0.0),
                                         ("gemm+update-floor", 0.0), ("torch", 0.0),
                                         ("sklearn", 0.0))]
        for (impl, dropout), times in sorted(row.items(), key=lambda kv: np.median(kv[1])):
            ratios = [paired_ratio(times, ref) for ref in refs]
            cells = [dataset, str(threads), impl, str(dropout), f"{np.median(times):.3f}",
                     *(f"{r:.2f}" if r is not None else "" for r in ratios)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
