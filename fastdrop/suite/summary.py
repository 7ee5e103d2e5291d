"""Aggregates and the article's claims, computed from stored records only."""
from collections import defaultdict

import numpy as np

METRICS = ("best_val_accuracy", "best_val_loss", "final_val_loss", "test_accuracy",
           "epoch_time", "n_iter", "gap")


def fits(records, arch="default"):
    return [r for r in records if r.get("kind") == "fit" and r.get("error") is None
            and r.get("arch", "default") == arch]


def targets(records, fraction=0.99):
    """Per dataset: ``fraction`` of the best validation accuracy any configuration reached."""
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
            vals = np.array([r[m] for r in runs], dtype=float)
            row[m] = (float(vals.mean()), float(vals.std()))
        epochs = [r["epochs_to_converge"] for r in runs if r["converged"]]
        row["converged"] = len(epochs) / len(runs)
        row["epochs_to_converge"] = (float(np.mean(epochs)), float(np.std(epochs))) \
            if epochs else (float("nan"), float("nan"))
        ttt = [time_to_target(r, goal[key[0]]) for r in runs]
        reached = [t for t in ttt if t is not None]
        row["time_to_target"] = (float(np.mean(reached)), float(np.std(reached))) \
            if reached else (float("nan"), float("nan"))
        row["reached_target"] = len(reached) / len(runs)
        out[key] = row
    return out


def _best(agg, dataset, regularizer, metric="test_accuracy"):
    rows = [(k[2], v) for k, v in agg.items() if k[0] == dataset and k[1] == regularizer]
    return max(rows, key=lambda kv: kv[1][metric][0]) if rows else (None, None)


def claims(records):
    """The article's claims, per dataset: list of (claim, verdict, evidence) strings."""
    agg = aggregate(records)
    cost = {r["dataset"]: r for r in records if r.get("kind") == "epoch_cost"}  # latest wins
    out = []
    for dataset in sorted({k[0] for k in agg}):
        get = lambda reg, s: agg.get((dataset, reg, s))  # noqa: E731
        sweep = sorted((k[2], v) for k, v in agg.items()
                       if k[0] == dataset and k[1] == "dropout")
        if not sweep:
            continue
        accs = {s: v["best_val_accuracy"][0] for s, v in sweep}
        best_rate = max(accs, key=accs.get)
        at5 = accs.get(0.5)
        if at5 is not None:
            sd = get("dropout", best_rate)["best_val_accuracy"][1]
            if 0.3 <= best_rate <= 0.6:
                verdict = "holds"
            elif abs(accs[best_rate] - at5) <= max(sd, 0.002):
                verdict = "within noise (0.5 ties the best)"
            else:
                verdict = "does not hold"
            out.append((dataset, "p around 0.5 on hidden layers works best", verdict,
                        f"best rate {best_rate:.1f} (val acc {accs[best_rate]:.4f}); at 0.5: "
                        f"{at5:.4f}; at 0.0: {accs.get(0.0, float('nan')):.4f}"))
        rising = [s for s, _ in sweep]
        if len(rising) >= 3:
            peak = accs[best_rate]
            shape = ("rises then falls" if 0 < best_rate < max(rising) and
                     accs[max(rising)] < peak else "monotone" if best_rate in (0.0, max(rising))
                     else "flat")
            out.append((dataset, "Keras sweep: accuracy rises then falls with the rate", shape,
                        "val acc by rate: " + ", ".join(f"{s:.1f}:{a:.3f}"
                                                        for s, a in sorted(accs.items()))))
        base, half = get("dropout", 0.0), get("dropout", 0.5)
        if base and half:
            e0, e5 = base["n_iter"][0], half["n_iter"][0]
            ratio = e5 / e0
            out.append((dataset, "dropout roughly doubles the epochs to converge",
                        "holds" if 1.5 <= ratio <= 3.0 else "does not hold",
                        f"epochs (stopping rule) p=0.5: {e5:.1f} vs p=0: {e0:.1f} "
                        f"({ratio:.2f}x)"))
            if dataset in cost:  # timed alone, paired per round: the clean measure
                r = cost[dataset]["ratio_to_none"]
                cheaper = min(r.values()) < 1
                evidence = (f"epoch time element mode {r['element']:.2f}x of p=0; batch mode "
                            f"{r['batch']:.2f}x (timed alone, median of "
                            f"{cost[dataset]['rounds']} paired rounds)")
            else:  # the fits' own epoch times
                t0, t5 = base["epoch_time"][0], half["epoch_time"][0]
                batch = get("dropout-batch", 0.5)
                cheaper = t5 < t0 or bool(batch and batch["epoch_time"][0] < t0)
                evidence = (f"epoch time element mode {t5 / t0:.2f}x of p=0"
                            + (f"; batch mode {batch['epoch_time'][0] / t0:.2f}x" if batch
                               else ""))
            out.append((dataset, "each epoch is cheaper with dropout",
                        "holds" if cheaper else "does not hold", evidence))
        inp, hid = get("input-dropout", 0.2), half
        if inp and hid:
            d = inp["test_accuracy"][0] - hid["test_accuracy"][0]
            out.append((dataset, "no dropout on the input",
                        "holds" if d <= 0 else "does not hold",
                        f"test acc with input 0.2 + hidden 0.5: {inp['test_accuracy'][0]:.4f}"
                        f" vs hidden 0.5 only: {hid['test_accuracy'][0]:.4f} ({d:+.4f})"))
        rd, vd = _best(agg, dataset, "dropout")
        r2, v2 = _best(agg, dataset, "l2")
        r1, v1 = _best(agg, dataset, "l1")
        mn = get("dropout-maxnorm", 0.5)
        if vd and v2 and v1:
            best_name = max([("dropout", vd), ("L2", v2), ("L1", v1)] +
                            ([("dropout+max-norm", mn)] if mn else []),
                            key=lambda kv: kv[1]["test_accuracy"][0])[0]
            out.append((dataset, "dropout (+ max-norm) beats L1/L2",
                        "holds" if best_name.startswith("dropout") else "does not hold",
                        f"best test acc: dropout {vd['test_accuracy'][0]:.4f} (p={rd}), "
                        f"L2 {v2['test_accuracy'][0]:.4f} (alpha={r2:g}), "
                        f"L1 {v1['test_accuracy'][0]:.4f} (l1={r1:g})"
                        + (f", dropout 0.5 + max-norm {mn['test_accuracy'][0]:.4f}" if mn
                           else "")))
    for r in records:
        if r.get("kind") == "mc":
            mc = dict(zip(r["samples"], r["mc_accuracy"]))
            last = max(mc)
            diff = mc[last] - r["weight_scaling_accuracy"]
            out.append((r["dataset"], "weight scaling matches averaging thinned networks",
                        "holds" if abs(diff) <= 0.01 else "does not hold",
                        f"test acc MC({last}) {mc[last]:.4f} vs weight scaling "
                        f"{r['weight_scaling_accuracy']:.4f} ({diff:+.4f}); MC(1) "
                        f"{mc[min(mc)]:.4f}"))
    return out


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


def claims_markdown(records):
    lines = ["| dataset | claim | verdict | evidence |", "|---|---|---|---|"]
    lines += [f"| {d} | {c} | {v} | {e} |" for d, c, v, e in claims(records)]
    return "\n".join(lines)
