"""Intervals over repeats and the verdict rules: the one place where the study decides.

Every comparison is paired: both sides ran on the same repeat, so on the same split and from
the same initial weights, and the estimate is the mean of the per-repeat differences
``d_r = a_r - b_r``. Its 95% interval is Student's t with ``n - 1`` degrees of freedom on the
sample standard deviation (ddof 1); with one repeat there is no interval and every verdict
is "undecided".

The verdicts, with a margin of practical equivalence ``MARGIN`` (half a point of accuracy)
stated before looking at any result:

* ``beats`` (A is better than B): **holds** when the interval's low end is above 0; **does
  not hold** when its high end is below the margin (A is at best negligibly better);
  **undecided** otherwise.
* ``not_better`` (A is no better than B, e.g. "no dropout on the input"): the mirror image:
  holds when the high end is below the margin, does not hold when the low end is above 0.
* ``within`` (a quantity lies in a range, e.g. "about twice the epochs": a ratio in
  [1.5, 3]): holds when the whole interval lies inside the range, does not hold when it lies
  wholly outside, undecided otherwise.
"""
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

CONFIDENCE = 0.95
MARGIN = 0.005       # accuracy: half a point
HOLDS, FAILS, UNDECIDED = "holds", "does not hold", "undecided"
METHOD = (f"paired differences over repeats (same split and initial weights), mean with a "
          f"{CONFIDENCE:.0%} Student t interval (ddof 1)")


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    n: int

    def as_list(self):
        return [self.low, self.high]


def mean_interval(values, confidence=CONFIDENCE):
    """Mean of ``values`` with its t interval (infinite with fewer than two values)."""
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf, 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, -math.inf, math.inf, n)
    half = _st.t.ppf(0.5 + confidence / 2, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def paired_interval(a, b, confidence=CONFIDENCE):
    """Mean of the paired differences ``a - b`` with its t interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values must match, got {a.shape} and {b.shape}")
    return mean_interval(a - b, confidence)


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


def both(*verdicts):
    """A claim made of parts: holds when every part does, fails when any part fails."""
    if all(v == HOLDS for v in verdicts):
        return HOLDS
    return FAILS if FAILS in verdicts else UNDECIDED
