"""Turn `fastdrop bench`'s pytest-benchmark JSON (kernels, epochs) into same-run ratio tables."""
import json
from collections import defaultdict
import math

import numpy as np

from .suite.stats import (FAILS, HOLDS, MIN_COVERAGE, Interval, at_most, median_ci,
                          paired_ratio, round_ratios)


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


def _benchmarks(path):
    """The ``extra_info`` of every benchmark in a pytest-benchmark JSON file."""
    with open(path) as f:
        return [bench["extra_info"] for bench in json.load(f)["benchmarks"]]


def _case_times(info, times_key="times"):
    """(case, per-round seconds) of a benchmark that timed its cases in interleaved rounds."""
    return [(case, [float(t) for t in times])
            for case, times in zip(info["cases"], info[times_key])]


def load_epochs(path):
    """{(dataset, n_threads): {(impl, dropout): per-round seconds per epoch}}: the interleaved
    epoch times of each round, in round order (every implementation runs once per round)."""
    table = defaultdict(dict)
    for info in _benchmarks(path):
        for (impl, p), times in _case_times(info, "epoch_times"):
            table[(info["dataset"], info["n_threads"])][(impl, p)] = times
    return table


# The MLP issue's acceptance lines: (label, (impl, p), reference (impl, p), target).
# A target of None is reported only (JAX: "the aim is to beat it").
ACCEPTANCE = [
    ("no-dropout epoch x torch", ("fastdrop", 0.0), ("torch", 0.0), 1.0),
    ("no-dropout epoch x sklearn", ("fastdrop", 0.0), ("sklearn", 0.0), 0.6),
    ("no-dropout epoch x GEMM floor", ("fastdrop", 0.0), ("gemm-floor", 0.0), 1.25),
    ("no-dropout epoch x GEMM+update floor", ("fastdrop", 0.0), ("gemm+update-floor", 0.0),
     None),
    ("no-dropout epoch x jitted JAX", ("fastdrop", 0.0), ("jax", 0.0), None),
    ("element dropout 0.5 x own p=0", ("fastdrop", 0.5), ("fastdrop", 0.0), 1.05),
    ("batch dropout 0.5 x own p=0", ("fastdrop-batch", 0.5), ("fastdrop", 0.0), 0.6),
    ("regressor epoch x sklearn's", ("fastdrop-regressor", 0.0), ("sklearn-regressor", 0.0),
     0.6),
    ("regressor dropout 0.5 x own p=0", ("fastdrop-regressor", 0.5),
     ("fastdrop-regressor", 0.0), 1.05),
]


def verdict(lo, hi, target, coverage=1.0):
    """The study's ``at_most`` rule (suite/stats.py) on a ratio's interval: holds when the
    whole interval is at or under the target, does not hold when all of it is above,
    undecided when the target lies inside it (the noise is wider than the margin); 'cannot
    decide' when too few rounds make the interval's coverage below MIN_COVERAGE."""
    if target is None:
        return ""
    if coverage < MIN_COVERAGE:
        return f"cannot decide (coverage {coverage:.2f} < {MIN_COVERAGE}: more rounds)"
    return at_most(Interval(math.nan, lo, hi, 0), target)


def _line_cells(times, ref_times, target, level, fmt):
    """An acceptance line's cells after its label: target, paired median ratio, the interval
    of that median, its coverage, rounds, verdict."""
    ratios = round_ratios(times, ref_times)
    lo, hi, coverage = median_ci(ratios, level)
    return ["" if target is None else f"<= {target:g}", f"{np.median(ratios):{fmt}}",
            f"{lo:{fmt}} - {hi:{fmt}}", f"{coverage:.3f}", str(ratios.size),
            verdict(lo, hi, target, coverage)]


def acceptance_table(table, level=0.95):
    """Markdown: each acceptance line per dataset/threads, its paired median ratio, the
    confidence interval of that median over rounds (median_ci) and the verdict."""
    lines = ["| dataset | threads | line | target | paired median | CI of the median "
             "| coverage | rounds | verdict |",
             "|---|---|---|---:|---:|---|---:|---:|---|"]
    for (dataset, threads), row in sorted(table.items()):
        for label, case, ref, target in ACCEPTANCE:
            if case not in row or ref not in row:
                continue
            cells = [dataset, str(threads), label,
                     *_line_cells(row[case], row[ref], target, level, ".2f")]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def epoch_report(table):
    """The whole epochs.md: the timing table, then the acceptance lines with their intervals."""
    return (epoch_table(table) + "\n\n## Acceptance lines\n\n"
            "Ratios are paired per round; the interval is a distribution-free confidence "
            "interval of their median over the rounds (order statistics). A line holds when "
            "the whole interval is within the target, does not hold when none of it is, "
            "undecided otherwise.\n\n" + acceptance_table(table))


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


# The PyTorch issue's acceptance lines: (part, label, case, reference case, target), cases as
# (name, dtype) in the op part and (name, p) in the loop part; measured at every thread count.
TORCH_ACCEPTANCE = [
    ("op", "fwd+bwd x torch's (target: 20x faster)", ("fastdrop", "float32"),
     ("torch", "float32"), 0.05),
    ("op", "bfloat16 fwd+bwd x torch's", ("fastdrop", "bfloat16"), ("torch", "bfloat16"), None),
    ("op", "recomputed mask x stored", ("fastdrop-recompute", "float32"),
     ("fastdrop", "float32"), None),
    ("loop", "replace_dropout 0.5 x no dropout", ("torch+fastdrop", 0.5), ("torch", 0.0), 1.05),
    ("loop", "nn.Dropout 0.5 x no dropout", ("torch", 0.5), ("torch", 0.0), None),
    ("loop", "replace_dropout x nn.Dropout", ("torch+fastdrop", 0.5), ("torch", 0.5), None),
    ("loop", "kernel at torch's threads x at 1 thread", ("torch+fastdrop", 0.5),
     ("torch+fastdrop-1thread", 0.5), 1.0),
    ("loop", "recomputed mask x stored", ("torch+fastdrop-recompute", 0.5),
     ("torch+fastdrop", 0.5), None),
]
ACCURACY_TOLERANCE = 0.01  # same semantics: mean test accuracy within 1 point of nn.Dropout's


def load_torch(path):
    """{(part, n_threads): {case: per-round seconds}} and the accuracy record (or None)."""
    table, accuracy = defaultdict(dict), None
    for info in _benchmarks(path):
        if info["part"] == "accuracy":
            accuracy = info
            continue
        for case, times in _case_times(info):
            table[(info["part"], info["n_threads"])][tuple(case)] = times
    return table, accuracy


def torch_report(table, accuracy, level=0.95):
    """The whole torch.md: median times, the acceptance lines (paired ratios, the interval of
    their median, verdicts as in acceptance_table) and the digits accuracy."""
    text = parts_report(table, TORCH_ACCEPTANCE, level)
    return text + ("\n\n" + accuracy_table(accuracy) if accuracy else "")


def parts_report(table, acceptance, level=0.95):
    """Markdown for benchmarks in parts: ``table`` {(part, threads): {case: per-round
    seconds}}, each part's median times and ratios to its first case, then ``acceptance``
    [(part, label, case, reference case, target)], measured at every thread count."""
    lines = ["| part | threads | case | median s | x first case |", "|---|---|---|---:|---:|"]
    for (part, threads), row in sorted(table.items()):
        first = next(iter(row.values()))
        for case, times in row.items():
            name = " ".join(map(str, case)) if isinstance(case, tuple) else case
            lines.append(f"| {part} | {threads} | {name} | {np.median(times):.6f} "
                         f"| {paired_ratio(times, first):.2f} |")
    lines += ["", "## Acceptance lines", "",
              "| part | threads | line | target | paired median | CI of the median | coverage "
              "| rounds | verdict |", "|---|---|---|---:|---:|---|---:|---:|---|"]
    for (part, threads), row in sorted(table.items()):
        for line_part, label, case, ref, target in acceptance:
            if line_part != part or case not in row or ref not in row:
                continue
            lines.append("| " + " | ".join([
                part, str(threads), label,
                *_line_cells(row[case], row[ref], target, level, ".3f")]) + " |")
    return "\n".join(lines)


# The MLP issue's prediction lines: (part, label, case, reference, target) on time ratios.
PREDICT_ACCEPTANCE = [
    ("throughput", "10000 rows x sklearn float32 (target: 1.5x its rows/s)", "fastdrop",
     "sklearn-float32", 1 / 1.5),
    ("throughput", "10000 rows x sklearn float64 (its default dtype)", "fastdrop",
     "sklearn-float64", 1 / 1.5),
    ("throughput", "10000 rows x torch inference_mode (target: as fast)", "fastdrop", "torch",
     1.0),
    ("throughput", "10000 rows x the products alone", "fastdrop", "gemm-floor", None),
    ("latency", "1 row x sklearn float32 (target: no slower)", "fastdrop", "sklearn-float32",
     1.0),
    ("latency", "1 row x sklearn float64", "fastdrop", "sklearn-float64", 1.0),
    ("latency", "1 row x torch", "fastdrop", "torch", None),
    ("latency", "1 row x the products alone", "fastdrop", "gemm-floor", None),
    ("batch64", "64 rows x sklearn float32", "fastdrop", "sklearn-float32", None),
    ("batch64", "64 rows x torch", "fastdrop", "torch", None),
]


def load_predict(path):
    """{(part, n_threads): {impl: per-round seconds per call}} of bench_predict.py."""
    table = defaultdict(dict)
    for info in _benchmarks(path):
        for (part, impl), times in _case_times(info):
            table[(part, info["n_threads"])][impl] = times
    return table


def accuracy_table(accuracy):
    """Markdown: digits test accuracy per seed with nn.Dropout and with fastdrop's, the mean
    difference and whether it is within ACCURACY_TOLERANCE."""
    torch_acc, fd_acc = (np.asarray(accuracy["accuracy"][k]) for k in ("torch",
                                                                       "torch+fastdrop"))
    diff = float(fd_acc.mean() - torch_acc.mean())
    seeds = ", ".join(f"{s}: {a:.4f} / {b:.4f}"
                      for s, a, b in zip(accuracy["seeds"], torch_acc, fd_acc))
    ok = HOLDS if abs(diff) <= ACCURACY_TOLERANCE else FAILS
    return ("| digits, dropout 0.5, {e} epochs | nn.Dropout | fastdrop | difference | target "
            "| verdict |\n|---|---:|---:|---:|---:|---|\n"
            "| mean of seeds ({s}) | {a:.4f} | {b:.4f} | {d:+.4f} | within {t} | {ok} |"
            ).format(e=accuracy["epochs"], s=seeds, a=torch_acc.mean(), b=fd_acc.mean(), d=diff,
                     t=ACCURACY_TOLERANCE, ok=ok)


# The busy-machine issue's lines: (label, case, reference case, target), cases as
# (condition, impl), measured on every model of bench_load.py.
LOAD_ACCEPTANCE = [
    ("loaded: fastdrop x sklearn", ("loaded", "fastdrop"), ("loaded", "sklearn"), 1.0),
    ("fastdrop loaded x its quiet", ("loaded", "fastdrop"), ("quiet", "fastdrop"), 3.0),
    ("quiet: fastdrop x sklearn", ("quiet", "fastdrop"), ("quiet", "sklearn"), None),
    ("loaded: fastdrop x fastdrop on 1 thread", ("loaded", "fastdrop"),
     ("loaded", "fastdrop-1thread"), None),
    ("quiet: step policy x every step on all cores", ("quiet", "fastdrop"),
     ("quiet", "fastdrop-fixed"), None),
    ("loaded: step policy x every step on all cores", ("loaded", "fastdrop"),
     ("loaded", "fastdrop-fixed"), None),
    ("quiet: compiled step loop x Python loop", ("quiet", "fastdrop"),
     ("quiet", "fastdrop-python-loop"), None),
    ("loaded: compiled step loop x Python loop", ("loaded", "fastdrop"),
     ("loaded", "fastdrop-python-loop"), None),
    ("sklearn loaded x its quiet", ("loaded", "sklearn"), ("quiet", "sklearn"), None),
]


def load_load(path):
    """{model: {(condition, impl): per-round seconds per step}} of bench_load.py, and the
    number of busy processes."""
    table, busy = defaultdict(dict), None
    for info in _benchmarks(path):
        busy = info["busy"]
        for (condition, impl), times in _case_times(info):
            table[info["case"]][(condition, impl)] = times
    return table, busy


def load_report(table, busy, level=0.95):
    """The whole load.md: median microseconds per step quiet and loaded, then the issue's
    lines as paired ratios with the interval of their median and a verdict."""
    lines = [f"Loaded: {busy} busy processes on the cores.", "",
             "| model | impl | quiet us/step | loaded us/step | loaded x quiet (paired) |",
             "|---|---|---:|---:|---:|"]
    for model, row in table.items():
        for impl in dict.fromkeys(i for _, i in row):
            quiet, loaded = row[("quiet", impl)], row[("loaded", impl)]
            lines.append(f"| {model} | {impl} | {np.median(quiet) * 1e6:.0f} "
                         f"| {np.median(loaded) * 1e6:.0f} | {paired_ratio(loaded, quiet):.2f} |")
    lines += ["", "## Acceptance lines", "",
              "| model | line | target | paired median | CI of the median | coverage | rounds "
              "| verdict |", "|---|---|---:|---:|---|---:|---:|---|"]
    for model, row in table.items():
        for label, case, ref, target in LOAD_ACCEPTANCE:
            if case not in row or ref not in row:
                continue
            lines.append("| " + " | ".join([
                model, label, *_line_cells(row[case], row[ref], target, level, ".2f")]) + " |")
    return "\n".join(lines)
