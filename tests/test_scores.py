"""Scores of predictive distributions against direct computations and references."""
import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, log_loss

from fastdrop.scores import (brier_score, expected_calibration_error, interval_coverage,
                             mixture_log_likelihood, negative_log_likelihood, rmse)


def test_mixture_log_likelihood_is_the_mixture_not_a_moment_match():
    """Two passes at -1 and +1, noise 0.5, y = 0 and 1: the direct formula, by hand."""
    y = np.array([0.0, 1.0])
    passes = np.array([[-1.0, -1.0], [1.0, 1.0]])
    s = 0.5

    def density(x, mu):
        return np.exp(-0.5 * ((x - mu) / s) ** 2) / (s * np.sqrt(2 * np.pi))

    direct = np.log(0.5 * (density(y, -1.0) + density(y, 1.0)))
    np.testing.assert_allclose(mixture_log_likelihood(y, passes, s, per_sample=True), direct,
                               rtol=1e-12)
    assert mixture_log_likelihood(y, passes, s) == pytest.approx(direct.mean(), rel=1e-12)
    var = 1 + s * s  # the passes' variance plus the noise's: one Gaussian of mean 0
    moment_matched = -0.5 * np.log(2 * np.pi * var) - 0.5 * y ** 2 / var
    assert not np.allclose(direct, moment_matched)


def test_mixture_log_likelihood_heteroscedastic_and_several_targets():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((5, 2))
    passes = rng.standard_normal((3, 5, 2))
    s = rng.uniform(0.5, 2.0, (3, 5, 2))
    log_n = -0.5 * np.log(2 * np.pi * s * s) - 0.5 * ((y - passes) / s) ** 2
    direct = np.log(np.mean(np.exp(log_n.sum(axis=2)), axis=0))  # targets add, passes mix
    np.testing.assert_allclose(mixture_log_likelihood(y, passes, s, per_sample=True), direct,
                               rtol=1e-12)


def test_rmse_and_coverage_of_a_calibrated_gaussian():
    """Standard normal draws against N(0, 1) intervals: coverage within 5 binomial standard
    errors of each level (a correct implementation fails this with negligible probability)."""
    rng = np.random.default_rng(1)
    y = rng.standard_normal(20000)
    cover = interval_coverage(y, np.zeros_like(y), np.ones_like(y))
    for level, got in cover.items():
        assert abs(got - level) <= 5 * np.sqrt(level * (1 - level) / y.size)
    assert rmse(y, np.zeros_like(y)) == pytest.approx(np.sqrt(np.mean(y * y)))


def _ece_reference(y, proba, n_bins):
    """A loop over samples, bins as (k/n, (k+1)/n] written with explicit edges."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        confs, hits = [], []
        for label, p in zip(y, proba):
            c = p.max()
            if (lo < c <= hi) or (lo == 0.0 and c == 0.0):
                confs.append(c)
                hits.append(float(np.argmax(p) == label))
        if confs:
            total += len(confs) / len(y) * abs(np.mean(hits) - np.mean(confs))
    return total


def test_expected_calibration_error_matches_a_reference_on_fixed_probabilities():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.55, 0.45], [0.3, 0.7], [0.6, 0.4],
                      [0.5, 0.5], [0.95, 0.05], [0.2, 0.8]])
    y = np.array([0, 1, 0, 1, 1, 0, 0, 0])
    for n_bins in (1, 5, 10, 15):
        assert expected_calibration_error(y, proba, n_bins=n_bins) == pytest.approx(
            _ece_reference(y, proba, n_bins), abs=1e-15)
    # by hand, 1 bin: accuracy 5/8, mean confidence (0.9+0.8+0.55+0.7+0.6+0.5+0.95+0.8)/8
    assert expected_calibration_error(y, proba, n_bins=1) == pytest.approx(
        abs(5 / 8 - 5.8 / 8))
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(4), 500)
    labels = rng.integers(0, 4, 500)
    assert expected_calibration_error(labels, p, n_bins=15) == pytest.approx(
        _ece_reference(labels, p, 15), abs=1e-12)


def test_nll_and_brier_against_scikit_learn():
    rng = np.random.default_rng(3)
    p1 = rng.uniform(0.01, 0.99, 200)
    proba = np.column_stack([1 - p1, p1])
    y = np.array(["no", "yes"])[rng.integers(0, 2, 200)]
    classes = np.array(["no", "yes"])
    assert negative_log_likelihood(y, proba, classes) == pytest.approx(
        log_loss(y, proba, labels=classes), rel=1e-12)
    assert brier_score(y, proba, classes) == pytest.approx(
        2 * brier_score_loss(y == "yes", p1), rel=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: mixture_log_likelihood([0.0, 1.0], np.zeros((3, 4)), 1.0),
     r"passes must have shape \(T, 2\[, 1\]\) to match y"),
    (lambda: mixture_log_likelihood([0.0], np.zeros((3, 1)), 0.0), "noise_std must be > 0"),
    (lambda: interval_coverage([0.0], [0.0], [1.0], levels=(1.0,)),
     r"levels must be in \(0, 1\)"),
    (lambda: expected_calibration_error([0], [[1.0, 0.0]], n_bins=0),
     "n_bins must be a positive"),
    (lambda: brier_score([2], [[0.5, 0.5]]), "y must hold one label of classes per row"),
    (lambda: negative_log_likelihood([0], [[1.0, 0.0]], classes=[0, 1, 2]),
     "classes must hold one label per column of proba"),
])
def test_scores_refuse_mismatched_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
