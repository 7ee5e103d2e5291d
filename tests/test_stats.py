"""The study's statistics (suite/stats.py) against scipy, Demšar's worked example and cases
computed by hand; the comparison across datasets and the repeats plan on built records."""
import math

import numpy as np
import pytest
from scipy import stats as st

from fastdrop.suite import stats
from fastdrop.suite.claims import across_datasets, power
from fastdrop.suite.config import RunConfig
from fastdrop.suite.study import repeats_wanted

# Demšar (JMLR 2006), section 3.2.2: AUC of four C4.5 variants over 14 data sets.
DEMSAR_RANKS = (3.143, 2.000, 2.893, 1.964)
DEMSAR_N = 14


def test_friedman_matches_demsar_worked_example():
    f = stats.friedman(DEMSAR_RANKS, DEMSAR_N)
    assert f.chi2 == pytest.approx(9.28, abs=0.01)
    assert f.f == pytest.approx(3.69, abs=0.01)
    # F(3, 39) at 0.05 is 2.85: the example rejects the null
    assert f.p < 0.05 and st.f.ppf(0.95, 3, 39) == pytest.approx(2.85, abs=0.01)


def test_friedman_matches_scipy_without_ties():
    rng = np.random.default_rng(0)
    scores = rng.random((9, 5))
    f = stats.friedman(stats.average_ranks(scores), 9)
    ref = st.friedmanchisquare(*scores.T)
    assert f.chi2 == pytest.approx(ref.statistic) and f.p_chi2 == pytest.approx(ref.pvalue)


def test_average_ranks_share_ties():
    assert list(stats.average_ranks([[0.9, 0.8, 0.8], [0.7, 0.9, 0.5]])) == [1.5, 1.75, 2.75]


def test_nemenyi_cd_matches_demsar():
    assert stats.nemenyi_cd(4, DEMSAR_N) == pytest.approx(1.25, abs=0.005)
    # the table agrees with the studentized range where scipy has it
    q = st.studentized_range.ppf(0.95, 6, np.inf) / math.sqrt(2)
    assert stats.nemenyi_cd(6, 10) == pytest.approx(q * math.sqrt(6 * 7 / 60), rel=1e-3)
    assert stats.nemenyi_cd(12, 10) > stats.nemenyi_cd(10, 10)  # beyond the table: scipy


def test_holm_against_control_matches_demsar():
    holm = stats.holm_vs_control(DEMSAR_RANKS, 3, DEMSAR_N)  # control: C4.5+m+cf
    z = {i: v[0] for i, v in holm.items()}
    p = {i: v[1] for i, v in holm.items()}
    assert z[0] == pytest.approx(2.416, abs=0.01) and p[0] == pytest.approx(0.016, abs=0.001)
    assert z[2] == pytest.approx(1.904, abs=0.01) and p[2] == pytest.approx(0.057, abs=0.001)
    assert z[1] == pytest.approx(0.073, abs=0.01)
    adjusted = {i: v[2] for i, v in holm.items()}
    assert adjusted[0] == pytest.approx(3 * p[0]) and adjusted[0] < 0.05  # rejected
    assert adjusted[2] == pytest.approx(2 * p[2]) and adjusted[2] > 0.05  # Holm stops here
    assert adjusted[1] == pytest.approx(max(p[1], adjusted[2]))


@pytest.mark.parametrize("n", [6, 9, 14])
def test_signed_rank_p_matches_scipy_exact(n):
    rng = np.random.default_rng(n)
    d = rng.normal(0.3, 1.0, n)
    ours = stats.signed_rank(d)
    ref = st.wilcoxon(d, method="exact")
    assert ours.p == pytest.approx(ref.pvalue)
    walsh = [(d[i] + d[j]) / 2 for i in range(n) for j in range(i, n)]
    assert ours.interval.estimate == pytest.approx(np.median(walsh))
    assert ours.coverage >= 0.95


def test_signed_rank_interval_needs_six_datasets_and_covers_as_it_says():
    assert not np.isfinite(stats.signed_rank([0.1, 0.2, 0.3, 0.4, 0.5]).interval.low)
    six = stats.signed_rank([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert six.interval.as_list() == [0.1, 0.6] and six.coverage == pytest.approx(1 - 2 / 64)
    assert six.p == pytest.approx(2 / 64)
    rng, n, trials, hits = np.random.default_rng(1), 10, 2000, 0
    for _ in range(trials):
        iv = stats.signed_rank(rng.standard_t(3, n) + 0.2).interval
        hits += iv.low <= 0.2 <= iv.high
    coverage = stats.signed_rank(np.arange(1.0, n + 1)).coverage
    assert abs(hits / trials - coverage) < 3.3 * math.sqrt(coverage * (1 - coverage) / trials)


def test_corrected_t_by_hand():
    d = [0.01, 0.03, -0.01, 0.02, 0.00]
    iv = stats.mean_interval(d, test_train_ratio=0.25)
    sd = math.sqrt((0 + 4e-4 + 4e-4 + 1e-4 + 1e-4) / 4)
    half = 2.7764451051977987 * sd * math.sqrt(1 / 5 + 0.25)
    assert iv.estimate == pytest.approx(0.01)
    assert iv.as_list() == pytest.approx([0.01 - half, 0.01 + half])
    assert half == pytest.approx(0.029448, abs=1e-6)
    plain = stats.mean_interval(d)
    assert plain.half_width == pytest.approx(2.7764451051977987 * sd / math.sqrt(5))


def test_detectable_effect_and_repeats_for_a_width():
    sd, r = 0.02, 1 / 3
    assert stats.detectable_effect(sd, 10, r) == pytest.approx(
        (st.t.ppf(0.975, 9) + st.t.ppf(0.8, 9)) * sd * math.sqrt(0.1 + r))
    assert stats.repeats_for(sd, 0.01, r) is None  # the floor 1.96 sd sqrt(r) is 2.3 points
    n = stats.repeats_for(0.01, 0.01)
    assert st.t.ppf(0.975, n - 1) * 0.01 / math.sqrt(n) <= 0.01
    assert st.t.ppf(0.975, n - 2) * 0.01 / math.sqrt(n - 1) > 0.01
    assert repeats_wanted({"repeats_for_goal": None, "test_train_ratio": r, "repeats": 5}) == 15


def test_verdict_rules():
    iv = stats.Interval
    assert stats.beats(iv(0.02, 0.01, 0.03, 5)) == stats.HOLDS
    assert stats.beats(iv(0.0, -0.01, 0.004, 5)) == stats.FAILS
    assert stats.exceeds(iv(1.5, 1.1, 2.0, 9), 1.0) == stats.HOLDS
    assert stats.exceeds(iv(0.8, 0.7, 1.0, 9), 1.0) == stats.FAILS
    assert stats.exceeds(iv(1.0, 0.9, 1.1, 9), 1.0) == stats.UNDECIDED
    assert stats.at_most(iv(0.5, 0.4, 0.6, 9), 0.6) == stats.HOLDS
    assert set(stats.VERDICT_RULES) == {"beats", "not_better", "within", "exceeds", "at_most"}


def _record(dataset, regularizer, strength, repeat, test, val=0.9, n_train=60, n_test=20):
    config = RunConfig("iris", regularizer, strength, repeat)
    hist = [0.5, val, val]
    return {"kind": "fit", "key": f"{dataset}|{config.key}", "error": None, "arch": "default",
            "dataset": dataset, "regularizer": regularizer, "strength": strength,
            "seed": repeat, "repeat": repeat, "family": config.family,
            "params": config.search_params(), "val_score": val, "test_accuracy": test,
            "best_val_accuracy": val, "best_val_loss": 0.3, "final_val_loss": 0.3,
            "epoch_time": 0.01, "n_iter": 3, "converged": True, "n_train": n_train,
            "n_test": n_test, "history": {"time": [0.01] * 3, "val_accuracy": hist,
                                          "val_loss": [1.0, 0.3, 0.3]}}


def _core_records(datasets, edge, repeats=6):
    """Every core family on each dataset; dropout ahead of the penalties by ``edge[d]``."""
    rng = np.random.default_rng(0)
    out = []
    for d in datasets:
        for r in range(repeats):
            base = 0.8 + 0.01 * rng.standard_normal()
            out += [_record(d, "dropout", 0.0, r, base - 0.02),
                    _record(d, "l1", 1e-3, r, base),
                    _record(d, "l2", 1e-3, r, base - 0.01, val=0.8),
                    _record(d, "dropout", 0.5, r, base + edge[d] + 0.003 * rng.standard_normal()),
                    _record(d, "dropout-l2", 1e-3, r, base + edge[d] + 0.01)]
    return out


def test_across_datasets_ranks_tests_and_pooled_verdicts():
    datasets = [f"set{i}" for i in range(6)]
    a = across_datasets(_core_records(datasets, {d: 0.02 for d in datasets}))
    assert a["datasets"] == datasets and a["families"] == ["none", "l1", "l2", "dropout",
                                                            "dropout-l2"]
    # every dataset orders them the same way: dropout-l2, dropout, l1, l2, none
    assert a["ranks"] == [5.0, 3.0, 4.0, 2.0, 1.0]
    assert a["friedman"]["p_chi2"] < 0.001
    assert a["nemenyi_cd"] == pytest.approx(stats.nemenyi_cd(5, 6))
    assert a["holm"]["none"]["p_holm"] < 0.05
    pooled = {c["claim"]: c for c in a["claims"]}
    main = pooled["dropout beats the better of L1 and L2 across datasets"]
    assert main["verdict"] == stats.HOLDS and main["n"] == 6
    assert main["estimate"] == pytest.approx(0.02, abs=0.004)
    assert "ahead on 6 of 6" in main["evidence"]


def test_pooled_verdict_is_undecided_with_five_datasets_and_mixed_signs():
    datasets = [f"set{i}" for i in range(5)]
    a = across_datasets(_core_records(datasets, {d: 0.02 for d in datasets}))
    main = a["claims"][0]
    assert main["verdict"] == stats.UNDECIDED and "needs 6 or more datasets" in main["evidence"]
    mixed = {d: e for d, e in zip([f"s{i}" for i in range(8)],
                                  (0.02, -0.02, 0.01, -0.01, 0.03, -0.03, 0.0, 0.001))}
    a = across_datasets(_core_records(list(mixed), mixed))
    assert a["claims"][0]["verdict"] == stats.UNDECIDED


def test_power_rows_use_the_corrected_t():
    records = _core_records(["set0"], {"set0": 0.02}, repeats=8)
    row = power(records)[0]
    assert row["test_train_ratio"] == pytest.approx(20 / 60)
    assert row["test"] == "corrected resampled t" and row["repeats"] == 8
    sd = row["sd"]
    assert row["half_width"] == pytest.approx(st.t.ppf(0.975, 7) * sd * math.sqrt(1 / 8 + 1 / 3))
