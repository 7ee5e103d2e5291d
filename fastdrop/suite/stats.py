"""The study's statistics and verdict rules: the one place where anything is decided.

Within a dataset every comparison is paired: both sides ran on the same repeat, so on the
same split and from the same initial weights, and the estimate is the mean of the
per-repeat differences ``d_r = a_r - b_r``. Repeats reuse one pool of rows (each repeat
draws its split from the same data; MNIST-1D keeps its one test set), so the differences are
correlated and Student's t on them is too narrow. Test accuracies are therefore compared
with the **corrected resampled t** of Nadeau & Bengio (2003): the variance of the mean is
``(1/J + n_test/n_train) s^2`` instead of ``s^2 / J`` (J repeats, ``s^2`` the sample variance
of the differences, ddof 1), with J - 1 degrees of freedom. Quantities of the runs
themselves (epochs, seconds) use the plain t, or the distribution-free interval of a median
(:func:`median_ci`) where censored or skewed. With one repeat there is no interval and every
verdict is "undecided".

Across datasets (Demšar, JMLR 2006): the families are ranked per dataset by the test
accuracy of their validation choice (1 = best, ties share the mean rank); the Friedman test
(with Iman and Davenport's F) asks whether the average ranks differ; Nemenyi's critical
difference compares every pair, Holm's step-down procedure compares each family with
dropout; and one pooled verdict per question comes from the Wilcoxon signed-rank test over
the per-dataset differences, as the Hodges-Lehmann estimate with its exact interval.

The verdicts, with a margin of practical equivalence ``MARGIN`` (half a point of accuracy;
the uncertainty stage's log-likelihoods ``LOG_LIKELIHOOD_MARGIN``, 0.01 nats per test point,
and calibration errors ``CALIBRATION_MARGIN``, half a point) stated before looking at any
result:

* ``beats`` (A is better than B): **holds** when the interval's low end is above 0; **does
  not hold** when its high end is below the margin (A is at best negligibly better);
  **undecided** otherwise.
* ``not_better`` (A is no better than B, e.g. "no dropout on the input"): the mirror image:
  holds when the high end is below the margin, does not hold when the low end is above 0.
* ``within`` (a quantity lies in a range, e.g. "about twice the epochs": a ratio in
  [1.5, 3]): holds when the whole interval lies inside the range, does not hold when it lies
  wholly outside, undecided otherwise.
* ``exceeds`` (a quantity is above a target, e.g. "costs more time": a ratio above 1):
  holds when the interval's low end is above it, does not hold when its high end is at or
  under it.
* ``at_most`` (a quantity is at most a target, e.g. a benchmark's ratio): holds when the
  whole interval is at or under it, does not hold when all of it is above.
"""
import math
from dataclasses import dataclass
from math import comb

import numpy as np
from scipy import stats as _st

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
POWER = 0.8          # of the smallest detectable effect the summary states
MARGIN = 0.005       # accuracy: half a point
# The uncertainty stage's margins, in the units of what it compares: test log-likelihood in
# nats per test point (0.01: a likelihood ratio of 1% per point), and calibration (ECE, or a
# 90% interval's distance from 90% coverage) in probability, half a point as for accuracy.
LOG_LIKELIHOOD_MARGIN = 0.01
CALIBRATION_MARGIN = 0.005
HOLDS, FAILS, UNDECIDED = "holds", "does not hold", "undecided"
PAIRED_T = (f"paired differences over repeats (same split and initial weights), mean with a "
            f"{CONFIDENCE:.0%} Student t interval (ddof 1)")
CORRECTED_T = (f"paired differences over repeats (same split and initial weights), mean with "
               f"a {CONFIDENCE:.0%} corrected resampled t interval (Nadeau & Bengio 2003: "
               "variance (1/J + n_test/n_train) s^2, J - 1 degrees of freedom)")


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n: int

    def as_list(self):
        return [self.low, self.high]

    @property
    def half_width(self):
        return (self.high - self.low) / 2


def _empty(n=0, estimate=math.nan):
    return Interval(estimate, -math.inf, math.inf, n)


def mean_interval(values, confidence=CONFIDENCE, test_train_ratio=0.0):
    """Mean of ``values`` with its t interval (infinite with fewer than two values); with
    ``test_train_ratio`` > 0, Nadeau and Bengio's corrected resampled t."""
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        return _empty()
    mean = float(x.mean())
    if n < 2:
        return _empty(n, mean)
    half = (_st.t.ppf(0.5 + confidence / 2, n - 1) * float(x.std(ddof=1))
            * math.sqrt(1 / n + test_train_ratio))
    return Interval(mean, mean - half, mean + half, n)


def paired_interval(a, b, confidence=CONFIDENCE, test_train_ratio=0.0):
    """Mean of the paired differences ``a - b`` with its (corrected) t interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values must match, got {a.shape} and {b.shape}")
    return mean_interval(a - b, confidence, test_train_ratio)


def detectable_effect(sd, n, test_train_ratio=0.0, power=POWER, confidence=CONFIDENCE):
    """The smallest true mean difference a two-sided test at ``confidence`` finds with
    probability ``power``, for ``n`` repeats of standard deviation ``sd`` (the corrected t's
    variance where ``test_train_ratio`` > 0). None with fewer than two repeats."""
    if n < 2 or not np.isfinite(sd):
        return None
    df = n - 1
    return float((_st.t.ppf(0.5 + confidence / 2, df) + _st.t.ppf(power, df)) * sd
                 * math.sqrt(1 / n + test_train_ratio))


def repeats_for(sd, half_width, test_train_ratio=0.0, most=200, confidence=CONFIDENCE):
    """The fewest repeats whose interval half-width is at most ``half_width`` for differences
    of standard deviation ``sd``; None when no number up to ``most`` gets there (the
    corrected t's width never falls below ``z sd sqrt(n_test/n_train)``)."""
    for n in range(2, most + 1):
        if (_st.t.ppf(0.5 + confidence / 2, n - 1) * sd
                * math.sqrt(1 / n + test_train_ratio)) <= half_width:
            return n
    return None


def median_ci(values, level=CONFIDENCE):
    """A distribution-free confidence interval for the median: (lo, hi, coverage).

    The order statistics (x_(k), x_(n+1-k)) cover the true median with probability
    1 - 2 P(Binomial(n, 1/2) < k), whatever the distribution; k is the largest with that
    coverage at least ``level``. With fewer than 6 values 95% is out of reach: the interval
    is then the whole range and ``coverage`` says what it holds (5 values: 0.94).
    Infinite values (censored runs) are ordered like any other.
    """
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    if n == 0:
        raise ValueError("median_ci needs at least one value, got none")
    k, coverage = 1, 1 - 2 * 0.5 ** n
    while k < (n + 1) // 2:
        tail = sum(comb(n, i) for i in range(k + 1)) / 2 ** n  # P(B < k + 1)
        if 1 - 2 * tail < level:
            break
        k, coverage = k + 1, 1 - 2 * tail
    return float(x[k - 1]), float(x[n - k]), coverage


def round_ratios(times, ref_times):
    """Per-round ratios of two cases timed in interleaved rounds: both ran in the same round,
    a few seconds apart, so a shared machine's drifting load cancels out of each ratio."""
    return np.asarray(times) / np.asarray(ref_times)


def paired_ratio(times, ref_times):
    """The median of round_ratios (None without reference times)."""
    if not ref_times:
        return None
    return float(np.median(round_ratios(times, ref_times)))


# The least coverage an order-statistics interval needs before a verdict is read from it.
MIN_COVERAGE = 0.9


def median_interval(values, level=CONFIDENCE):
    """The median with median_ci's interval, as an Interval; infinite (no verdict) where the
    coverage is below MIN_COVERAGE."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return _empty()
    low, high, coverage = median_ci(x, level)
    estimate = float(np.median(x))
    if coverage < MIN_COVERAGE:
        return _empty(int(x.size), estimate)
    return Interval(estimate, low, high, int(x.size))


# ---- verdict rules --------------------------------------------------------------------------

def beats(interval, margin=MARGIN):
    if interval.low > 0:
        return HOLDS
    if interval.high < margin:
        return FAILS
    return UNDECIDED


def not_better(interval, margin=MARGIN):
    if interval.high < margin:
        return HOLDS
    if interval.low > 0:
        return FAILS
    return UNDECIDED


def within(interval, low, high):
    if low <= interval.low and interval.high <= high:
        return HOLDS
    if interval.high < low or interval.low > high:
        return FAILS
    return UNDECIDED


def at_most(interval, target):
    if interval.high <= target:
        return HOLDS
    if interval.low > target:
        return FAILS
    return UNDECIDED


def exceeds(interval, target):
    """The quantity is above ``target`` (e.g. a ratio above 1: "costs more")."""
    if interval.low > target:
        return HOLDS
    if interval.high <= target:
        return FAILS
    return UNDECIDED


def both(*verdicts):
    """A claim made of parts: holds when every part does, fails when any part fails."""
    if all(v == HOLDS for v in verdicts):
        return HOLDS
    return FAILS if FAILS in verdicts else UNDECIDED


VERDICT_RULES = {
    "beats": "holds if the interval's low end > 0; does not hold if its high end < margin; "
             "else undecided",
    "not_better": "holds if the high end < margin; does not hold if the low end > 0; else "
                  "undecided",
    "within": "holds if the interval lies inside the range; does not hold if it lies "
              "outside; else undecided",
    "exceeds": "holds if the interval's low end > the target; does not hold if its high end "
               "<= the target; else undecided",
    "at_most": "holds if the interval's high end <= the target; does not hold if its low end "
               "> the target; else undecided",
}


# ---- across datasets (Demšar 2006) ---------------------------------------------------------

def average_ranks(scores):
    """Average rank of each column of ``scores`` (rows: datasets, columns: methods; higher is
    better, rank 1 the best, ties sharing the mean of their ranks)."""
    s = np.asarray(scores, dtype=float)
    ranks = np.apply_along_axis(lambda row: _st.rankdata(-row), 1, s)
    return ranks.mean(axis=0)


@dataclass(frozen=True)
class Friedman:
    chi2: float        # Friedman's statistic
    p_chi2: float
    f: float           # Iman and Davenport's F, less conservative (Demšar's choice)
    p: float           # its p-value: the one the verdict reads
    k: int
    n: int


def friedman(ranks, n):
    """The Friedman test from the average ``ranks`` of k methods over ``n`` datasets."""
    r = np.asarray(ranks, dtype=float)
    k = r.size
    if k < 2 or n < 2:
        raise ValueError(f"the Friedman test needs at least 2 methods and 2 datasets, got "
                         f"{k} and {n}")
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(r ** 2) - k * (k + 1) ** 2 / 4)
    denom = n * (k - 1) - chi2
    f = (n - 1) * chi2 / denom if denom > 0 else math.inf
    p_f = float(_st.f.sf(f, k - 1, (k - 1) * (n - 1))) if np.isfinite(f) else 0.0
    return Friedman(float(chi2), float(_st.chi2.sf(chi2, k - 1)), float(f), p_f, k, n)


# Critical values q_alpha of the Nemenyi test (the studentized range over sqrt 2), k = 2..10
# methods (Demšar 2006, Table 5a).
_NEMENYI_Q = {0.05: (1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164),
              0.10: (1.645, 2.052, 2.291, 2.459, 2.589, 2.693, 2.780, 2.855, 2.920)}


def nemenyi_cd(k, n, alpha=ALPHA):
    """Nemenyi's critical difference of average ranks, k methods over n datasets."""
    if 2 <= k <= 10 and round(alpha, 10) in _NEMENYI_Q:
        q = _NEMENYI_Q[round(alpha, 10)][k - 2]
    else:
        q = float(_st.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q * math.sqrt(k * (k + 1) / (6 * n))


def holm_vs_control(ranks, control, n):
    """Holm's step-down test of each method against ``control`` (a column index) from
    average ranks over ``n`` datasets: {index: (z, p, Holm-adjusted p)}."""
    r = np.asarray(ranks, dtype=float)
    k = r.size
    se = math.sqrt(k * (k + 1) / (6 * n))
    others = [i for i in range(k) if i != control]
    z = {i: (r[i] - r[control]) / se for i in others}
    p = {i: float(2 * _st.norm.sf(abs(z[i]))) for i in others}
    adjusted, running, m = {}, 0.0, len(others)
    for step, i in enumerate(sorted(others, key=lambda i: p[i])):
        running = max(running, min(1.0, (m - step) * p[i]))
        adjusted[i] = running
    return {i: (float(z[i]), p[i], adjusted[i]) for i in others}


def _signed_rank_null(n):
    """P(T+ = t) for t = 0 .. n(n+1)/2 under the null: the exact signed-rank distribution."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    return counts / 2 ** n


@dataclass(frozen=True)
class SignedRank:
    interval: Interval  # Hodges-Lehmann estimate (median of the Walsh averages), exact CI
    p: float            # two-sided exact p-value of the signed-rank test
    coverage: float     # what the interval's order statistics cover (at least CONFIDENCE)


def signed_rank(differences, confidence=CONFIDENCE):
    """The Wilcoxon signed-rank test over per-dataset differences, exact (no ties among the
    absolute values assumed beyond what mid-ranks give), with the Hodges-Lehmann estimate
    and its exact interval from the Walsh averages. With too few differences for the
    confidence asked (fewer than 6 at 95%) the interval is infinite: nothing is decided."""
    d = np.asarray(differences, dtype=float)
    n = int(d.size)
    if n == 0:
        return SignedRank(_empty(), math.nan, 0.0)
    walsh = np.sort([(d[i] + d[j]) / 2 for i in range(n) for j in range(i, n)])
    estimate = float(np.median(walsh))
    nonzero = d[d != 0]
    p = 1.0
    if nonzero.size:
        ranks = _st.rankdata(np.abs(nonzero))
        t_plus = float(ranks[nonzero > 0].sum())
        null = _signed_rank_null(nonzero.size)
        t = min(t_plus, nonzero.size * (nonzero.size + 1) / 2 - t_plus)
        p = float(min(1.0, 2 * null[:int(math.floor(t + 1e-9)) + 1].sum()))
    cdf = np.cumsum(_signed_rank_null(n))
    # the c-th smallest and c-th largest Walsh averages cover with 1 - 2 P(T <= c - 1)
    c = 0
    while c < len(cdf) and 1 - 2 * cdf[c] >= confidence:
        c += 1
    if c == 0:
        return SignedRank(_empty(n, estimate), p, 0.0)
    coverage = 1 - 2 * cdf[c - 1]
    return SignedRank(Interval(estimate, float(walsh[c - 1]), float(walsh[-c]), n), p,
                      float(coverage))
