"""The claims: each is a small function from the evidence of one dataset and architecture to
at most one verdict row, listed in CLAIMS (adding a claim is adding a function there);
stats.py makes every verdict."""
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .._benchreport import median_ci
from .config import LEARNING_RATE
from .selection import (CONVERGENCE_TOL, _by_config, _params_text, best_at,
                        epochs_to_converge, select)
from .stats import (MARGIN, Interval, beats, both, mean_interval, not_better, paired_interval,
                    within)

ARTICLE = "the article"
SRIVASTAVA = "Srivastava et al. 2014"
KLAMBAUER = "Klambauer et al. 2017"
WAN = "Wan et al. 2013"


@dataclass(frozen=True)
class Evidence:
    """What a claim about one dataset and architecture reads: each family's validation
    choice (``chosen``), every configuration's runs (``configs``) and all records."""
    dataset: str
    arch: str
    chosen: dict
    configs: dict
    records: list

    def choice(self, family):
        return self.chosen.get((self.dataset, family))

    def best(self, family, **fixed):
        """{repeat: test accuracy} of the validation-preferred configuration of ``family``
        among those matching ``fixed`` (e.g. the best learning rate at ``dropout=0.5``)."""
        return _tests(best_at(self.configs, self.dataset, family, **fixed))


def _tests(runs):
    return {k: r["test_accuracy"] for k, r in runs.items()}


def _paired(a, b):
    """The two sides' test accuracies on the repeats both ran, in repeat order."""
    common = sorted(set(a) & set(b))
    return [a[k] for k in common], [b[k] for k in common]


def _claim(dataset, claim, source, verdict, interval, evidence, family="dropout"):
    """One verdict row; ``family``: the regularizer family the claim is about."""
    return {"dataset": dataset, "claim": claim, "source": source, "verdict": verdict,
            "estimate": interval.estimate, "ci": interval.as_list(), "n": interval.n,
            "evidence": evidence, "family": family}


def best_rate_near(ev, reference, claim):
    """The validation-chosen rate is no better than ``reference`` by the margin."""
    sel, at_ref = ev.choice("dropout"), ev.best("dropout", dropout=reference)
    if sel is None or not at_ref:
        return None
    iv = paired_interval(*_paired(sel["test_by_repeat"], at_ref))
    rate = sel["params"].get("dropout")
    return _claim(ev.dataset, claim, ARTICLE, not_better(iv), iv,
                  f"validation chose p={rate:g}; its test accuracy minus p={reference:g}'s "
                  f"(each at its validation-chosen learning rate; holds when p={reference:g} "
                  "is within the margin of the choice)")


def rises_then_falls(ev, claim):
    """The chosen rate beats both no dropout and the sweep's top rate."""
    sel, none = ev.choice("dropout"), ev.best("none")
    if sel is None or not none or not sel["grid"]:
        return None
    rate, top = sel["params"].get("dropout"), max(sel["grid"])
    if top == rate:
        return None
    best = sel["test_by_repeat"]
    rises = paired_interval(*_paired(best, none))
    falls = paired_interval(*_paired(best, ev.best("dropout", dropout=top)))
    return _claim(ev.dataset, claim, ARTICLE, both(beats(rises), beats(falls)), rises,
                  f"chosen p={rate:g} minus p=0: {rises.estimate:+.4f}; minus p={top:g}: "
                  f"{falls.estimate:+.4f} [{falls.low:+.4f}, {falls.high:+.4f}]")


def beats_penalties(ev, family, claim, source=SRIVASTAVA):
    """``family``'s choice beats the better (on validation) of L1's and L2's choices."""
    rival = ev.choice(family)
    penalties = [c for c in (ev.choice("l2"), ev.choice("l1")) if c]
    if rival is None or not penalties:
        return None
    if family == "dropout-maxnorm" and not rival.get("max_norm_clipped"):
        return None  # a constraint that never bound is plain dropout
    penalty = max(penalties, key=lambda c: c["val_score"])
    iv = paired_interval(*_paired(rival["test_by_repeat"], penalty["test_by_repeat"]))
    return _claim(ev.dataset, claim, source, beats(iv), iv,
                  f"{family} {_params_text(rival['params'])} vs {penalty['family']} "
                  f"{_params_text(penalty['params'])}, all chosen on validation", family)


def versus_dropout(ev, family, claim, source, rule):
    """``family``'s validation choice against Bernoulli dropout's, on the repeats both ran:
    ``rule`` "beats" (the family is better) or "matches" (dropout is no better than it by
    the margin)."""
    rival, dropout = ev.choice(family), ev.choice("dropout")
    if rival is None or dropout is None:
        return None
    if rule == "beats":
        iv = paired_interval(*_paired(rival["test_by_repeat"], dropout["test_by_repeat"]))
        verdict, sense = beats(iv), f"{family} minus dropout (holds when {family} is better)"
    else:
        iv = paired_interval(*_paired(dropout["test_by_repeat"], rival["test_by_repeat"]))
        verdict, sense = not_better(iv), (f"dropout minus {family} (holds when dropout is no "
                                          "better by the margin)")
    return _claim(ev.dataset, claim, source, verdict, iv,
                  f"{sense}: {family} {_params_text(rival['params'])} vs dropout "
                  f"{_params_text(dropout['params'])}, all chosen on validation", family)


def no_input_dropout(ev):
    """Input dropout 0.2 on top of hidden 0.5 does not help by the margin."""
    with_input, hidden = ev.choice("input-dropout"), ev.best("dropout", dropout=0.5)
    if with_input is None or not hidden:
        return None
    iv = paired_interval(*_paired(with_input["test_by_repeat"], hidden))
    return _claim(ev.dataset, "no dropout on the input", ARTICLE, not_better(iv), iv,
                  "input 0.2 + hidden 0.5 minus hidden 0.5 alone, each at its validation-"
                  "chosen learning rate (holds when input dropout does not help by the margin)")


def doubles_epochs(ev):
    """Epochs to converge at p = 0.5 over p = 0, at no dropout's chosen learning rate: the
    geometric mean of the per-repeat ratios lies in [1.5, 3]; censored pairs left out."""
    none_sel = ev.choice("none")
    if none_sel is None:
        return None
    lr = none_sel["params"].get(LEARNING_RATE)
    fixed = {LEARNING_RATE: lr} if lr is not None else {}
    hidden = best_at(ev.configs, ev.dataset, "dropout", dropout=0.5, **fixed)
    none = best_at(ev.configs, ev.dataset, "none", **fixed)
    if not hidden or not none:
        return None
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
    return _claim(ev.dataset, "dropout roughly doubles the epochs to converge", ARTICLE,
                  within(exp, 1.5, 3.0), exp,
                  f"epochs to reach validation loss within {CONVERGENCE_TOL:.0%} of the run's "
                  f"best, p=0.5 / p=0{at}, geometric mean; {censored} censored pair(s) left "
                  "out")


def longer_budget_changes_top_rate(ev):
    """The sweep's top rate with the longest epoch budget run beats it at the profile's."""
    sel = ev.choice("dropout")
    budgets = sorted({r.get("budget", 1) for r in ev.records if r.get("kind") == "fit"})
    if sel is None or not sel["grid"] or len(budgets) < 2:
        return None
    top, longer = max(sel["grid"]), budgets[-1]
    short = best_at(ev.configs, ev.dataset, "dropout", dropout=top)
    long = best_at(_by_config(ev.records, ev.arch, longer), ev.dataset, "dropout", dropout=top)
    if not short or not long:
        return None
    iv = paired_interval(*_paired(_tests(long), _tests(short)))
    capped = sum(not r.get("converged", True) for r in short.values())
    return _claim(ev.dataset, f"the article's network: {longer}x the epochs changes the "
                              f"accuracy at p={top:g}", ARTICLE, beats(iv), iv,
                  f"test accuracy with {longer}x the epoch budget minus with 1x, p={top:g}; "
                  f"{capped} of {len(short)} 1x runs hit their epoch cap (holds when the "
                  "longer budget helps)")


# Per architecture, in the order the table lists them.
CLAIMS = {
    "default": [
        lambda ev: best_rate_near(ev, 0.5, "p around 0.5 on hidden layers works best"),
        lambda ev: rises_then_falls(ev, "accuracy rises then falls with the rate"),
        lambda ev: beats_penalties(ev, "dropout", "dropout beats the better of L1 and L2"),
        lambda ev: beats_penalties(ev, "dropout-maxnorm",
                                   "dropout + max-norm beats the better of L1 and L2"),
        no_input_dropout,
        doubles_epochs,
        lambda ev: versus_dropout(ev, "gaussian-dropout", "Gaussian dropout works as well as "
                                  "Bernoulli dropout", SRIVASTAVA, "matches"),
        lambda ev: beats_penalties(ev, "gaussian-dropout",
                                   "Gaussian dropout beats the better of L1 and L2"),
        lambda ev: versus_dropout(ev, "alpha-dropout", "a SELU network with alpha dropout "
                                  "beats a ReLU network with dropout", KLAMBAUER, "beats"),
        lambda ev: beats_penalties(ev, "alpha-dropout",
                                   "SELU + alpha dropout beats the better of L1 and L2",
                                   KLAMBAUER),
        lambda ev: versus_dropout(ev, "dropconnect", "DropConnect beats dropout", WAN,
                                  "beats"),
        lambda ev: beats_penalties(ev, "dropconnect",
                                   "DropConnect beats the better of L1 and L2", WAN),
    ],
    "seed": [
        lambda ev: best_rate_near(ev, 0.2, "the article's network: the best rate is near 0.2"),
        lambda ev: rises_then_falls(
            ev, "the article's network: accuracy rises then falls with the rate"),
        longer_budget_changes_top_rate,
    ],
}


def claims(records):
    """Every claim's verdict per dataset, from paired intervals over repeats (stats.py)."""
    out = []
    for arch, claim_fns in CLAIMS.items():
        chosen = {(c["dataset"], c["family"]): c for c in select(records, arch)}
        configs = _by_config(records, arch)
        for dataset in sorted({d for d, _ in chosen}):
            ev = Evidence(dataset, arch, chosen, configs, records)
            out += [row for row in (fn(ev) for fn in claim_fns) if row is not None]
    return out + epoch_cost_claims(records) + weight_scaling_claims(records)


def epoch_cost_claims(records):
    """Per timed dataset and mode: the epoch at p = 0.5 is cheaper than at p = 0 (the median
    of the per-round ratios lies below 1)."""
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


def weight_scaling_claims(records):
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
