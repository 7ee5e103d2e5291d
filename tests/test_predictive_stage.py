"""The study's uncertainty stage (suite/predictive.py): its scores, data and verdicts."""
import math

import numpy as np
import pytest
from scipy.stats import norm

from fastdrop.scores import expected_calibration_error
from fastdrop.suite import predictive
from fastdrop.suite.claims import uncertainty_claims
from fastdrop.suite.stats import CALIBRATION_MARGIN, LOG_LIKELIHOOD_MARGIN, mean_interval
from fastdrop.suite.summary import uncertainty_markdown, uncertainty_scores


def test_the_reliability_bins_give_back_the_ece():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4) * 0.5, size=2000)
    y = rng.integers(0, 4, 2000)
    classes = np.arange(4)
    s = predictive.classification_scores(y, proba, classes)
    bins = {k: np.asarray(v, dtype=float) for k, v in s["bins"].items()}
    seen = bins["count"] > 0
    from_bins = np.sum(bins["count"][seen] / len(y) * np.abs(
        bins["correct"][seen] - bins["confidence"][seen]) / bins["count"][seen])
    assert from_bins == pytest.approx(s["ece"], rel=1e-12)
    assert s["ece"] == expected_calibration_error(y, proba, classes, n_bins=predictive.N_BINS)
    assert s["log_likelihood"] == -s["nll"] and bins["count"].sum() == len(y)


def test_the_heteroscedastic_truth_covers_what_it_says():
    """Over the set's 3000 rows, the true mean +- z sigma intervals cover each level within
    4 binomial standard deviations: the generator and its stated noise agree."""
    X, y, (mean, std) = predictive.REGRESSION_SETS["heteroscedastic"]()
    assert std.min() >= 0.1 and std.max() <= 1.0 and std.max() > 0.9  # 10x heteroscedastic
    n = len(y)
    for level in predictive.COVERAGE_LEVELS:
        inside = np.mean(np.abs(y - mean) <= norm.ppf(0.5 + level / 2) * std)
        assert abs(inside - level) <= 4 * math.sqrt(level * (1 - level) / n)


def test_a_regression_split_standardizes_on_its_training_part_and_scores_in_units():
    split = predictive.RegressionSplit("diabetes", 3)
    assert (len(split.y_train), len(split.y_val), len(split.y_test)) == (264, 89, 89)
    assert abs(split.y_train.mean()) < 1e-12 and split.y_train.std() == pytest.approx(1)
    np.testing.assert_allclose(split.X_train.mean(axis=0), 0, atol=1e-5)
    # a perfect mean with unit noise (standardized): the log-likelihood in the target's units
    # is the standardized one minus log(y_std); the RMSE is 0
    s = predictive.regression_scores(split, split.y_test[None], np.ones((1, 89)),
                                     split.y_test, np.ones(89))
    assert s["log_likelihood"] == pytest.approx(-0.5 * math.log(2 * math.pi)
                                                - math.log(split.y_std))
    assert s["rmse"] == 0 and s["coverage"] == [1.0] * len(predictive.COVERAGE_LEVELS)


def _records(dataset, task, diffs, n_test=100, n_train=400):
    """Hand-made uncertainty records: per repeat, the methods' scores set so that mc - ws,
    ensemble - mc and the calibration difference are ``diffs``' columns."""
    out = []
    for k, (d_mc_ws, d_ens_mc, d_cal) in enumerate(diffs):
        ws = {"log_likelihood": -1.0}
        mc = {"log_likelihood": -1.0 + d_mc_ws}
        ens = {"log_likelihood": mc["log_likelihood"] + d_ens_mc}
        if task == "classification":
            plain, mc["ece"] = {"ece": 0.05 + d_cal}, 0.05
        else:  # 90% coverage: MC dropout at 0.88, the plain network d_cal further away
            levels = [0.5, 0.9]
            mc["coverage"], plain = [0.5, 0.88], {"coverage": [0.5, 0.9 - 0.02 - d_cal]}
        rec = {"kind": "uncertainty", "key": f"uncertainty|{dataset}|full|{k}", "task": task,
               "dataset": dataset, "repeat": k, "n_test": n_test, "n_train": n_train,
               "mc_samples": 100, "members": 5, "n_bins": 15,
               "methods": {"ws": ws, "mc": mc, "ensemble": ens, "plain": plain}}
        if task == "regression":
            rec["levels"] = levels
        out.append(rec)
    return out


def test_the_uncertainty_verdicts_use_the_corrected_t_and_the_stages_margins():
    rng = np.random.default_rng(0)
    diffs = np.column_stack([0.05 + 0.001 * rng.standard_normal(10),   # MC clearly better
                             -0.002 + 0.0005 * rng.standard_normal(10),  # no better
                             0.01 * rng.standard_normal(10)])           # cannot tell
    rows = uncertainty_claims(_records("mnist1d", "classification", diffs)
                              + _records("diabetes", "regression", diffs))
    assert [r["dataset"] for r in rows] == ["diabetes"] * 3 + ["mnist1d"] * 3
    for dataset in ("diabetes", "mnist1d"):
        mc_ws, ens_mc, calibration = (r for r in rows if r["dataset"] == dataset)
        assert mc_ws["verdict"] == "holds" and ens_mc["verdict"] == "does not hold"
        assert ens_mc["ci"][1] < LOG_LIKELIHOOD_MARGIN
        iv = mean_interval(diffs[:, 2], test_train_ratio=0.25)  # corrected: 100 / 400
        assert calibration["estimate"] == pytest.approx(iv.estimate, abs=1e-12)
        np.testing.assert_allclose(calibration["ci"], [iv.low, iv.high], atol=1e-12)
        assert calibration["verdict"] == "undecided"
        assert f"margin {CALIBRATION_MARGIN:g}" in calibration["evidence"]
        assert mc_ws["source"] == "Gal & Ghahramani 2016"
        assert ens_mc["source"] == "Lakshminarayanan et al. 2017"
    assert "expected calibration error (15 equal-width" in rows[5]["evidence"]
    assert "coverage of the 90% interval" in rows[2]["evidence"]


def test_only_unstored_records_are_pending_and_a_set_without_choices_waits():
    calls = predictive.pending_calls([], ("iris", "diabetes"), (0, 1, 2), "full")
    assert [c[0] for c in calls] == [f"uncertainty|diabetes|full|{s}" for s in (0, 1, 2)]
    stored = [{"key": "uncertainty|diabetes|full|1", "kind": "uncertainty"}]
    calls = predictive.pending_calls(stored, ("diabetes",), (0, 1, 2), "full")
    assert [c[2] for c in calls] == [("diabetes", "full", 0), ("diabetes", "full", 2)]


def test_the_summary_table_says_when_the_stage_has_not_run():
    assert uncertainty_scores([]) is None
    assert "has not run" in uncertainty_markdown({"uncertainty": None})
