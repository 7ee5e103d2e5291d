"""The claims: each is a small function from the evidence of one dataset and architecture to
at most one verdict row, listed in CLAIMS (adding a claim is adding a function there);
stats.py makes every verdict."""
import functools
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .config import LEARNING_RATE
from .families import CORE
from .selection import (CONVERGENCE_TOL, TARGET_FRACTION, _by_config, _params_text, best_at,
                        chosen_runs, epochs_to_converge, select, time_to_target)
from .stats import (CALIBRATION_MARGIN, CONFIDENCE, LOG_LIKELIHOOD_MARGIN, MARGIN, Interval,
                    average_ranks, beats, both,
                    detectable_effect, exceeds, friedman, holm_vs_control, mean_interval,
                    median_ci, median_interval, nemenyi_cd, not_better, paired_interval,
                    repeats_for, signed_rank, within)

ARTICLE = "the article"
SRIVASTAVA = "Srivastava et al. 2014"
KLAMBAUER = "Klambauer et al. 2017"
WAN = "Wan et al. 2013"
GAL = "Gal & Ghahramani 2016"
LAKSHMINARAYANAN = "Lakshminarayanan et al. 2017"


def test_train_ratio(records, dataset):
    """n_test / n_train of a dataset's splits (the corrected t's correction), from its fit
    records; 0 (the plain paired t) for records that do not say."""
    ratios = [r["n_test"] / r["n_train"] for r in records
              if r.get("dataset") == dataset and r.get("n_train")]
    return float(np.median(ratios)) if ratios else 0.0


@dataclass(frozen=True, eq=False)
class Evidence:
    """What a claim about one dataset and architecture reads: each family's validation
    choice (``chosen``), every configuration's runs (``configs``) and all records."""
    dataset: str
    arch: str
    chosen: dict
    configs: dict
    records: list

    @functools.cached_property
    def ratio(self):
        return test_train_ratio(self.records, self.dataset)

    def choice(self, family):
        return self.chosen.get((self.dataset, family))

    def compare(self, a, b):
        """Test accuracies {repeat: value} of two sides, on the repeats both ran: the
        corrected resampled t interval of their mean difference."""
        return paired_interval(*_paired(a, b), test_train_ratio=self.ratio)

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
    iv = ev.compare(sel["test_by_repeat"], at_ref)
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
    rises = ev.compare(best, none)
    falls = ev.compare(best, ev.best("dropout", dropout=top))
    return _claim(ev.dataset, claim, ARTICLE, both(beats(rises), beats(falls)), rises,
                  f"chosen p={rate:g} minus p=0: {rises.estimate:+.4f}; minus p={top:g}: "
                  f"{falls.estimate:+.4f} [{falls.low:+.4f}, {falls.high:+.4f}]")


def better_penalty(ev):
    """The validation choice of L1 or L2, whichever validation prefers (None: neither ran)."""
    penalties = [c for c in (ev.choice("l2"), ev.choice("l1")) if c]
    return max(penalties, key=lambda c: c["val_score"]) if penalties else None


def _differences(a, b):
    """{repeat: test accuracy of choice ``a`` minus choice ``b``} on the repeats both ran
    (empty where a side is missing)."""
    if a is None or b is None:
        return {}
    a, b = a["test_by_repeat"], b["test_by_repeat"]
    return {k: a[k] - b[k] for k in sorted(set(a) & set(b))}


def main_differences(ev):
    """Dropout's validation choice minus the better penalty's, per repeat: the study's main
    comparison on one dataset."""
    return _differences(ev.choice("dropout"), better_penalty(ev))


def beats_penalties(ev, family, claim, source=SRIVASTAVA):
    """``family``'s choice beats the better (on validation) of L1's and L2's choices."""
    rival, penalty = ev.choice(family), better_penalty(ev)
    if rival is None or penalty is None:
        return None
    if family == "dropout-maxnorm" and not rival.get("max_norm_clipped"):
        return None  # a constraint that never bound is plain dropout
    iv = ev.compare(rival["test_by_repeat"], penalty["test_by_repeat"])
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
        iv = ev.compare(rival["test_by_repeat"], dropout["test_by_repeat"])
        verdict, sense = beats(iv), f"{family} minus dropout (holds when {family} is better)"
    else:
        iv = ev.compare(dropout["test_by_repeat"], rival["test_by_repeat"])
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
    iv = ev.compare(with_input["test_by_repeat"], hidden)
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


def costs_more_time(ev, family="dropout"):
    """Wall time to the dataset's validation target (selection.time_to_target) of
    ``family``'s validation choice over no dropout's, per repeat: the median ratio with its
    distribution-free interval. A run that never reached the target is censored: its time is
    infinite, so a censored ``family`` run orders as an infinite ratio and a censored
    no-dropout run as 0; pairs where neither reached it are left out, and counted."""
    row = time_ratio(ev, family, "none")
    if row is None:
        return None
    iv, counts, target = row
    return _claim(ev.dataset, f"{family} costs more wall time to reach the same accuracy",
                  ARTICLE, exceeds(iv, 1.0), iv,
                  f"seconds to {target:.3f} validation accuracy (99% of no dropout's best; "
                  f"epochs to it x the run's median epoch time), {family} / none, median of "
                  f"per-repeat ratios; {counts['censored']} of {counts['pairs']} {family} runs "
                  f"and {counts['censored_ref']} no-dropout runs never reached it "
                  f"(censored){_dropped(counts)}", family)


def _dropped(counts):
    return f"; {counts['both']} pair(s) where neither did left out" if counts["both"] else ""


def time_ratio(ev, family, reference):
    """(median ratio Interval, counts, target) of the time to the validation target of two
    families' validation choices, paired by repeat; None where a side is missing."""
    a, b, none = ev.choice(family), ev.choice(reference), ev.choice("none")
    if a is None or b is None or none is None:
        return None
    target = TARGET_FRACTION * none["best_val_accuracy"]  # selection.accuracy_targets' rule
    runs_a, runs_b = chosen_runs(ev.records, a), chosen_runs(ev.records, b)
    ratios, counts = [], {"pairs": 0, "censored": 0, "censored_ref": 0, "both": 0}
    for k in sorted(set(runs_a) & set(runs_b)):
        ta, tb = time_to_target(runs_a[k], target), time_to_target(runs_b[k], target)
        counts["pairs"] += 1
        counts["censored"] += math.isinf(ta)
        counts["censored_ref"] += math.isinf(tb)
        if math.isinf(ta) and math.isinf(tb):
            counts["both"] += 1
            continue
        ratios.append(math.inf if math.isinf(ta) else 0.0 if math.isinf(tb) else ta / tb)
    return median_interval(ratios), counts, target


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
    iv = ev.compare(_tests(long), _tests(short))
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
        costs_more_time,
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


def claims(records, across=None):
    """Every claim's verdict per dataset, from paired intervals over repeats (stats.py),
    the pooled rows of ``across`` (across_datasets(records), computed when not given)
    first."""
    out = []
    for arch, claim_fns in CLAIMS.items():
        for ev in evidence(records, arch).values():
            out += [row for row in (fn(ev) for fn in claim_fns) if row is not None]
    across = across_datasets(records) if across is None else across
    pooled = across["claims"] if across else []
    return (pooled + out + epoch_cost_claims(records) + weight_scaling_claims(records)
            + uncertainty_claims(records))


def evidence(records, arch="default"):
    """{dataset: Evidence} of one architecture."""
    chosen = {(c["dataset"], c["family"]): c for c in select(records, arch)}
    configs = _by_config(records, arch)
    return {d: Evidence(d, arch, chosen, configs, records) for d in sorted({d for d, _ in chosen})}


HALF_WIDTH_GOAL = 0.01   # the main comparison's interval: +-1 accuracy point


def power(records):
    """Per dataset, what the main comparison (dropout against the better of L1 and L2, both
    chosen on validation) could resolve: its repeats, the standard deviation of the paired
    differences, the corrected interval's half-width, the smallest effect found with
    probability POWER, and the repeats a half-width of HALF_WIDTH_GOAL would take (None:
    out of reach, the corrected t's floor is above it)."""
    rows = []
    for dataset, ev in evidence(records).items():
        diffs = main_differences(ev)
        if len(diffs) < 2:
            continue
        d = np.array(list(diffs.values()))
        sd = float(d.std(ddof=1))
        iv = mean_interval(d, test_train_ratio=ev.ratio)
        rows.append({"dataset": dataset, "repeats": len(d), "test_train_ratio": ev.ratio,
                     "test": "corrected resampled t" if ev.ratio else "paired t",
                     "sd": sd, "estimate": iv.estimate, "half_width": iv.half_width,
                     "detectable_effect": detectable_effect(sd, len(d), ev.ratio),
                     "repeats_for_goal": repeats_for(sd, HALF_WIDTH_GOAL, ev.ratio),
                     "goal": HALF_WIDTH_GOAL})
    return rows


def across_datasets(records, families=CORE, control="dropout"):
    """Demšar's comparison over the datasets where every one of ``families`` has a
    validation choice: per dataset the families ranked by test accuracy, the Friedman test,
    Nemenyi's critical difference, Holm's test of each family against ``control``, and the
    pooled verdict rows (Wilcoxon signed-rank over the per-dataset mean differences, as the
    Hodges-Lehmann estimate with its exact interval). None with fewer than 2 datasets."""
    evs = {d: ev for d, ev in evidence(records).items()
           if all(ev.choice(f) for f in families)}
    if len(evs) < 2:
        return None
    datasets = sorted(evs)
    scores = [[evs[d].choice(f)["test_accuracy"] for f in families] for d in datasets]
    ranks = average_ranks(scores)
    n, k = len(datasets), len(families)
    test = friedman(ranks, n)
    holm = holm_vs_control(ranks, families.index(control), n)
    return {
        "datasets": datasets, "families": list(families), "scores": scores,
        "ranks": [float(r) for r in ranks],
        "friedman": {"chi2": test.chi2, "p_chi2": test.p_chi2, "iman_davenport_f": test.f,
                     "p": test.p, "k": k, "n": n},
        "nemenyi_cd": nemenyi_cd(k, n), "confidence": CONFIDENCE, "control": control,
        "holm": {families[i]: {"z": z, "p": p, "p_holm": adj}
                 for i, (z, p, adj) in holm.items()},
        "claims": [c for c in (_pooled(evs, "dropout beats the better of L1 and L2",
                                       main_differences, SRIVASTAVA),
                               _pooled(evs, "dropout + L2 beats L2", _l2_differences,
                                       SRIVASTAVA, "dropout-l2")) if c],
    }


def _l2_differences(ev):
    return _differences(ev.choice("dropout-l2"), ev.choice("l2"))


def _pooled(evs, claim, differences, source, family="dropout"):
    """One verdict over datasets: each dataset's mean paired difference, the signed-rank
    test's Hodges-Lehmann interval over them, the ``beats`` rule."""
    means = {d: float(np.mean(list(diff.values())))
             for d, diff in ((d, differences(ev)) for d, ev in evs.items()) if diff}
    if len(means) < 2:
        return None
    test = signed_rank(list(means.values()))
    wins = sum(v > 0 for v in means.values())
    coverage = (f"exact coverage {test.coverage:.3f}" if test.coverage
                else f"{CONFIDENCE:.0%} needs 6 or more datasets: no interval")
    return _claim(f"across {len(means)} datasets", f"{claim} across datasets", source,
                  beats(test.interval), test.interval,
                  f"per-dataset mean differences, Hodges-Lehmann estimate with the Wilcoxon "
                  f"signed-rank interval ({coverage}), two-sided p = {test.p:.3f}; ahead on "
                  f"{wins} of {len(means)}: " + ", ".join(f"{d} {v:+.4f}"
                                                         for d, v in means.items()), family)


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
        ratio = test_train_ratio(recs, dataset)
        iv = paired_interval([r["mc_accuracy"][-1] for r in recs], ws, test_train_ratio=ratio)
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


def uncertainty_records(records):
    """{dataset: [its uncertainty records, by repeat]} (the latest record of each key)."""
    latest = {r["key"]: r for r in records if r.get("kind") == "uncertainty"}
    groups = defaultdict(list)
    for r in sorted(latest.values(), key=lambda r: r["repeat"]):
        groups[r["dataset"]].append(r)
    return dict(sorted(groups.items()))


def _coverage_error(record, method, level=0.9):
    return abs(record["methods"][method]["coverage"][record["levels"].index(level)] - level)


def _ece(record, method):
    return record["methods"][method]["ece"]


def _log_likelihood(record, method):
    return record["methods"][method]["log_likelihood"]


# (claim, source, the two sides: a's score minus b's is the interval's quantity, where a
# positive difference means the claim's side is better; the margin; the evidence's words)
UNCERTAINTY_CLAIMS = (
    ("MC averaging gives a better test log-likelihood than weight scaling", GAL,
     lambda r: _log_likelihood(r, "mc") - _log_likelihood(r, "ws"), LOG_LIKELIHOOD_MARGIN,
     "test log-likelihood per point, MC dropout ({T} passes) minus weight scaling, {tuned}"),
    ("a 5-member ensemble beats MC dropout on log-likelihood", LAKSHMINARAYANAN,
     lambda r: _log_likelihood(r, "ensemble") - _log_likelihood(r, "mc"),
     LOG_LIKELIHOOD_MARGIN,
     "test log-likelihood per point, {M}-member deep ensemble of plain networks{variance} "
     "minus MC dropout ({T} passes)"),
)


def uncertainty_claims(records):
    """Per dataset of the uncertainty stage (suite/predictive.py): the literature's claims
    about dropout's predictive distribution, paired per repeat with the corrected t (the
    repeats' splits share one pool of rows), decided by ``beats`` with the stage's margins:
    log-likelihood in nats per test point, calibration as ECE (classification) or the 90%
    interval's distance from 90% coverage (regression)."""
    out = []
    for dataset, recs in uncertainty_records(records).items():
        ratio = test_train_ratio(recs, dataset)
        regression = recs[0]["task"] == "regression"
        words = {"T": recs[0]["mc_samples"], "M": recs[0]["members"],
                 "tuned": ("each with its own validation-chosen drop rate and noise precision"
                           if regression else "one network, the study's validation choice of "
                           "rate and learning rate"),
                 "variance": " with a variance output" if regression else ""}
        for claim, source, diff, margin, evidence in UNCERTAINTY_CLAIMS:
            iv = mean_interval([diff(r) for r in recs], test_train_ratio=ratio)
            out.append(_claim(dataset, claim, source, beats(iv, margin), iv,
                              evidence.format(**words) + f"; margin {margin:g}"))
        calibration = (lambda r: _coverage_error(r, "plain") - _coverage_error(r, "mc")) \
            if regression else (lambda r: _ece(r, "plain") - _ece(r, "mc"))
        iv = mean_interval([calibration(r) for r in recs], test_train_ratio=ratio)
        what = ("|coverage of the 90% interval - 0.9|, no dropout (tau on validation) minus MC "
                "dropout" if regression else
                f"expected calibration error ({recs[0]['n_bins']} equal-width confidence "
                "bins), no dropout minus MC dropout")
        out.append(_claim(dataset, "MC dropout is better calibrated than the plain network",
                          GAL, beats(iv, CALIBRATION_MARGIN), iv,
                          f"{what} (holds when MC dropout's error is smaller); margin "
                          f"{CALIBRATION_MARGIN:g}"))
    return out
