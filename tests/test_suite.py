"""The study suite: datasets, configs, store, resume after SIGKILL, Dask, CLI, figures."""
import dataclasses
import itertools
import json
import math
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fastdrop.cli import main
from fastdrop.suite import config as cfg
from fastdrop.suite.config import RunConfig, default_suite, grid
from fastdrop.suite.datasets import check_name, load_split
from fastdrop.suite.runner import run_configs, run_one
from fastdrop.suite.store import ResultStore, StoreBusy
from fastdrop.suite import stats
from fastdrop.suite.claims import claims
from fastdrop.suite.selection import epochs_to_converge, select
from fastdrop.suite.summary import build_summary, time_to_target

TIMING = {"wall", "epoch_time", "time_to_converge", "history"}


def test_splits_are_stratified_standardized_and_cached():
    s = load_split("wine")
    assert s.X_train.dtype == np.float32 and s.X_train.flags.c_contiguous
    n = len(s.y_train) + len(s.y_val) + len(s.y_test)
    assert abs(len(s.y_train) / n - 0.6) < 0.02 and abs(len(s.y_test) / n - 0.2) < 0.02
    np.testing.assert_allclose(s.X_train.mean(0), 0, atol=1e-5)
    for part in (s.y_val, s.y_test):  # stratified: class shares match the training part
        np.testing.assert_allclose(np.bincount(part) / len(part),
                                   np.bincount(s.y_train) / len(s.y_train), atol=0.05)
    assert load_split("wine") is s
    syn = load_split("synthetic-500x12x3")
    assert syn.X_train.shape[1] == 12 and syn.n_classes == 3
    with pytest.raises(ValueError, match="dataset must be one of .* got 'mnist'"):
        check_name("mnist")


def test_each_repeat_has_its_own_split_with_a_fingerprint():
    a, b = load_split("wine", 0), load_split("wine", 1)
    assert a.split_id != b.split_id and a.repeat == 0 and b.repeat == 1
    assert load_split("wine", 1).split_id == b.split_id
    assert not np.array_equal(a.y_test, b.y_test) or not np.array_equal(a.X_test, b.X_test)


def test_mnist1d_keeps_the_papers_test_set_and_carves_validation_per_repeat():
    from mnist1d.data import get_dataset_args, make_dataset
    paper = make_dataset(get_dataset_args())
    a, b = load_split("mnist1d", 0), load_split("mnist1d", 3)
    assert a.X_train.shape == (3200, 40) and a.X_val.shape == (800, 40)
    assert a.X_test.shape == (1000, 40) and a.n_classes == 10
    np.testing.assert_array_equal(a.y_test, paper["y_test"])
    np.testing.assert_array_equal(a.y_test, b.y_test)   # the same test set every repeat
    assert a.split_id != b.split_id                      # a new validation part


def test_user_files_load_as_datasets(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = np.repeat(["cat", "dog", "eel"], 20)
    npz, csv, svm = tmp_path / "d.npz", tmp_path / "d.csv", tmp_path / "d.svmlight"
    np.savez(npz, X=X, y=y)
    csv.write_text("a,label,b,c\n" + "".join(f"{r[0]},{t},{r[1]},{r[2]}\n"
                                               for r, t in zip(X, y)))
    from sklearn.datasets import dump_svmlight_file
    dump_svmlight_file(X, np.repeat([0, 1, 2], 20), str(svm))
    for path in (npz, csv, svm):
        split = load_split(str(path), 0)
        assert split.X_train.shape == (36, 3) and split.n_classes == 3, path
    rec = run_one(RunConfig(str(npz), "dropout", 0.2, 1))
    assert rec["error"] is None and rec["dataset"] == str(npz)
    assert (rec["n_train"], rec["n_val"], rec["n_test"]) == (36, 12, 12)
    np.savez(tmp_path / "bad.npz", X=X)
    with pytest.raises(ValueError, match="must hold arrays 'X' and 'y', missing \\['y'\\]"):
        load_split(str(tmp_path / "bad.npz"))
    with pytest.raises(ValueError, match="does not exist"):
        check_name(str(tmp_path / "missing.csv"))


def test_a_users_file_gets_verdict_rows_with_intervals(tmp_path):
    """`fastdrop sweep --datasets my.csv ...` then `fastdrop plot`: the claims about the
    user's file, each with a finite corrected interval."""
    from sklearn.datasets import make_classification

    X, y = make_classification(150, 6, n_informative=4, random_state=0)
    mine = tmp_path / "my.csv"
    mine.write_text("a,b,c,d,e,f,label\n" + "".join(
        ",".join(f"{v:.5f}" for v in row) + f",{t}\n" for row, t in zip(X, y)))
    out = tmp_path / "res"
    assert main(["sweep", "--datasets", str(mine), "--regularizers", "dropout,l1,l2",
                 "--rates", "0,0.5", "--l1", "1e-4", "--l2", "1e-3", "--learning-rates",
                 "1e-2", "--seeds", "0,1,2", "--out", str(out), "--quiet"]) == 0
    assert main(["plot", str(out), "--quiet"]) == 0
    data = json.loads((out / "summary.json").read_text())
    rows = [c for c in data["claims"] if c["dataset"] == str(mine)]
    assert {c["claim"] for c in rows} >= {"dropout beats the better of L1 and L2",
                                          "dropout costs more wall time to reach the same "
                                          "accuracy"}
    beats = next(c for c in rows if c["claim"] == "dropout beats the better of L1 and L2")
    assert beats["n"] == 3 and all(math.isfinite(v) for v in beats["ci"])
    assert data["protocol"]["per_dataset"][str(mine)]["test"].startswith(
        "corrected resampled t (Nadeau & Bengio 2003), n_test/n_train = 0.333")
    assert data["power"][0]["dataset"] == str(mine)


def test_openml_offline_is_a_clear_error(monkeypatch):
    import urllib.error
    from sklearn import datasets as skd

    def offline(**kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(skd, "fetch_openml", offline)
    with pytest.raises(ValueError, match="openml:iris' is neither in scikit-learn's cache"):
        load_split("openml:iris", 0)


def test_configs_keys_and_parameters():
    a = RunConfig("digits", "dropout", 0.5, 0)
    assert a.key == RunConfig("digits", "dropout", 0.5, 0).key
    assert a.key != RunConfig("digits", "dropout", 0.5, 1).key
    assert a.estimator_params()["dropout"] == 0.5
    assert RunConfig("digits", "dropout-batch", 0.3, 0).estimator_params()["dropout_mode"] == "batch"
    assert RunConfig("digits", "l2", 1e-3, 0).estimator_params()["alpha"] == 1e-3
    assert RunConfig("digits", "input-dropout", 0.2, 0).estimator_params()["input_dropout"] == 0.2
    seed = RunConfig("digits", "dropout", 0.2, 0, arch="seed").estimator_params()
    assert seed["hidden_layer_sizes"] == (64, 128, 256, 512, 512)
    assert seed["output_activation"] == "sigmoid"
    with pytest.raises(ValueError, match="regularizer must be one of"):
        RunConfig("digits", "dropblock", 0.5, 0)
    assert RunConfig("digits", "dropconnect", 0.3, 0).estimator_params()["dropconnect"] == 0.3
    alpha = RunConfig("digits", "alpha-dropout", 0.1, 0).estimator_params()
    assert (alpha["dropout_kind"], alpha["activation"], alpha["init"]) == ("alpha", "selu",
                                                                          "lecun")
    configs = default_suite("quick")
    assert len({c.key for c in configs}) == len(configs)
    rates = {c.strength for c in configs if c.regularizer == "dropout" and c.arch == "default"}
    assert rates == set(cfg.get_profile("quick").rates)
    assert {c.strength for c in default_suite("full") if c.regularizer == "dropout"} == set(
        cfg.RATES)


def test_rate_zero_of_plain_families_is_the_plain_network_once():
    configs = cfg.grid(["digits"], ["dropout", "gaussian-dropout", "dropconnect",
                                    "alpha-dropout"], [0.0, 0.2], [0, 1])
    plain = [c for c in configs if c.family == "none"]
    assert {c.regularizer for c in plain} == {"dropout"}
    assert len(plain) == 2 * len(cfg.get_profile("quick").learning_rates)
    # a SELU network without dropout is alpha dropout's own rate 0, not "none"
    assert {c.family for c in configs if c.strength == 0} == {"none", "alpha-dropout"}


def test_store_appends_whole_lines_and_survives_a_torn_one(tmp_path):
    store = ResultStore(tmp_path)
    store.append({"kind": "fit", "key": "a"})
    with open(store.path, "a") as f:
        f.write('{"kind": "fit", "key": "torn"')  # a writer died mid-line
    store = ResultStore(tmp_path)  # reopening fences the torn line
    store.append({"kind": "fit", "key": "b"})
    with pytest.warns(UserWarning, match="skipping a torn record"):
        assert store.keys() == {"a", "b"}
    manifest = store.write_manifest({"profile": "quick"})
    assert manifest["profile"] == "quick" and store.manifest()["blas"] == manifest["blas"]


def _sweep_cmd(out, *extra):
    return [sys.executable, "-m", "fastdrop", "sweep", "--datasets", "iris",
            "--regularizers", "dropout", "--rates", "0,0.1,0.2,0.3,0.4,0.5,0.6,0.7",
            "--learning-rates", "1e-3", "--seeds", "0", "--out", str(out), "--quiet", *extra]


def _start_sweep(out, jobs, wait_for_records, *extra):
    """A sweep in a subprocess, once it has stored ``wait_for_records`` runs."""
    proc = subprocess.Popen(_sweep_cmd(out, "--jobs", str(jobs), *extra),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = out / "records.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if records.exists() and records.read_text().count("\n") >= wait_for_records:
            break
        time.sleep(0.05)
    return proc, records


def test_sweep_killed_with_sigkill_then_rerun_has_every_run_once(tmp_path):
    out = tmp_path / "res"
    proc, records = _start_sweep(out, jobs=1, wait_for_records=2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = records.read_text().count("\n")
    assert 2 <= done_before < 8, "the kill should land mid-sweep"
    subprocess.run(_sweep_cmd(out, "--jobs", "2"), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    keys = [r["key"] for r in lines if r["kind"] == "fit"]
    assert len(keys) == 8 and len(set(keys)) == 8


def test_dask_local_cluster_gives_the_same_records(tmp_path):
    distributed = pytest.importorskip("distributed")
    configs = grid(["iris"], ["dropout", "l2"], [0.0, 0.5], [0, 1], l2_grid=[1e-3])
    local = ResultStore(tmp_path / "local")
    run_configs(configs, local, n_jobs=2, progress=False)  # 2 jobs on 2 cores: 1 thread each
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = ResultStore(tmp_path / "dask")
        run_configs(configs, remote, scheduler=cluster.scheduler_address, progress=False)

    def strip(store):
        return {r["key"]: {k: v for k, v in r.items() if k not in TIMING | {"n_threads"}}
                for r in store.records()}

    if os.cpu_count() != 2:
        pytest.skip("thread budgets differ from the cluster's on this machine")
    assert strip(local) == strip(remote) and len(strip(local)) == len(configs)


def test_run_one_record_fields():
    rec = run_one(RunConfig("iris", "dropout", 0.5, 0))
    for field in ("epoch_time", "n_iter", "converged", "best_val_accuracy", "final_val_loss",
                  "test_accuracy", "gap", "history", "family"):
        assert field in rec
    assert len(rec["history"]["val_accuracy"]) == rec["n_iter"]
    assert time_to_target(rec, 0.0) == rec["epoch_time"]  # one epoch, at the median's cost
    assert time_to_target(rec, 2.0) == math.inf  # never reached: censored


def _fit_record(dataset, regularizer, strength, repeat, val, test, epochs=20, converged=True,
                val_loss=None):
    config = RunConfig("iris", regularizer, strength, repeat)  # "d": a built dataset
    losses = val_loss or [1.0 / (e + 1) for e in range(epochs)]
    return {"kind": "fit", "key": config.key, "error": None, "arch": "default",
            "dataset": dataset, "regularizer": regularizer, "strength": strength,
            "seed": repeat, "repeat": repeat, "family": config.family,
            "params": config.search_params(), "split_id": f"split{repeat}",
            "val_score": val, "test_accuracy": test, "best_val_accuracy": val,
            "best_val_loss": min(losses), "final_val_loss": losses[-1], "epoch_time": 0.01,
            "n_iter": len(losses), "gap": 0.0, "converged": converged,
            "epochs_to_converge": len(losses) if converged else None,
            "history": {"time": [0.01] * len(losses), "val_accuracy": [val] * len(losses),
                        "val_loss": losses}}


def test_a_configuration_that_diverged_on_a_repeat_is_not_chosen():
    records = []
    for r in range(4):
        records.append(_fit_record("d", "l2", 1e-3, r, val=0.80, test=0.80))
        wild = _fit_record("d", "l2", 1e-1, r, val=0.95, test=0.95)
        if r == 3:  # diverged: the sweep records the error and no scores
            wild = {k: v for k, v in wild.items() if k in ("kind", "key", "arch", "dataset",
                                                         "family", "params", "repeat")}
            wild["error"] = "diverged"
        records.append(wild)
    chosen = {c["family"]: c for c in select(records)}
    assert chosen["l2"]["params"] == {"alpha": 1e-3} and chosen["l2"]["n"] == 4


def test_selection_follows_validation_when_test_disagrees():
    records = []
    for r in range(5):
        # p=0.2 is best on validation, p=0.8 on test: the study must report p=0.2
        records += [_fit_record("d", "dropout", 0.2, r, val=0.90, test=0.80 + 0.001 * r),
                    _fit_record("d", "dropout", 0.8, r, val=0.85, test=0.95)]
        records += [_fit_record("d", "l2", a, r, val=0.80 + a, test=0.9) for a in (1e-4, 1e-2)]
    chosen = {c["family"]: c for c in select(records)}
    assert chosen["dropout"]["params"] == {"dropout": 0.2}
    assert chosen["dropout"]["test_accuracy"] == pytest.approx(0.802)
    assert chosen["dropout"]["n"] == 5 and chosen["dropout"]["grid"] == [0.2, 0.8]
    low, high = chosen["dropout"]["test_accuracy_ci"]
    assert low < 0.802 < high
    assert chosen["l2"]["params"] == {"alpha": 1e-2} and chosen["l2"]["at_grid_edge"]


def test_a_choice_at_a_grid_edge_extends_the_grid():
    records, configs = [], []
    for r in range(3):
        for a in (1e-4, 1e-3, 1e-2):  # validation keeps improving with alpha
            records.append(_fit_record("iris", "l2", a, r, val=0.8 + a, test=0.8))
            configs.append(RunConfig("iris", "l2", a, r))
        records.append(_fit_record("iris", "l1", 1e-4, r, val=0.8, test=0.8))
    new, events = cfg.extend_grids(select(records), configs)
    assert sorted({c.strength for c in new}) == [0.1] and sorted(c.seed for c in new) == [0, 1, 2]
    assert events == [{"dataset": "iris", "family": "l2", "arch": "default", "param": "alpha",
                       "grid": [1e-4, 1e-3, 1e-2], "chosen": 1e-2, "added": 0.1}]
    records += [_fit_record("iris", "l2", 0.1, r, val=0.5, test=0.8) for r in range(3)]
    records.append({"kind": "grid_extension", "key": "grid_extension|iris|l2|0.1",
                    **events[0]})
    assert cfg.extend_grids(select(records), configs) == ([], [])  # 1e-2 is inside now
    chosen = {c["family"]: c for c in build_summary(records)["selected"]}
    assert chosen["l2"]["grid_extended"] == 1 and not chosen["l2"]["at_grid_edge"]


def test_claims_are_decided_by_paired_intervals():
    rng = np.random.default_rng(0)
    records = []
    for r in range(6):
        base = 0.85 + 0.02 * rng.standard_normal()  # the repeat's split: shared by all sides
        records += [_fit_record("d", "dropout", 0.0, r, 0.8, base, epochs=20),
                    _fit_record("d", "dropout", 0.5, r, 0.9, base + 0.03, epochs=41),
                    _fit_record("d", "dropout", 0.9, r, 0.7, base - 0.05),
                    _fit_record("d", "l2", 1e-3, r, 0.85, base + 0.001),
                    _fit_record("d", "l1", 1e-4, r, 0.84, base - 0.01),
                    _fit_record("d", "input-dropout", 0.2, r, 0.88,
                                base + 0.03 + 0.001 * (-1) ** r)]
    verdicts = {c["claim"]: c for c in claims(records)}
    assert verdicts["dropout beats the better of L1 and L2"]["verdict"] == "holds"
    assert verdicts["p around 0.5 on hidden layers works best"]["verdict"] == "holds"
    assert verdicts["accuracy rises then falls with the rate"]["verdict"] == "holds"
    assert verdicts["no dropout on the input"]["verdict"] == "holds"  # within the margin
    doubling = verdicts["dropout roughly doubles the epochs to converge"]
    assert doubling["verdict"] == "holds" and doubling["n"] == 6
    summary = build_summary(records)
    assert summary["protocol"]["repeats"] == 6 and summary["protocol"]["selection"] == \
        "validation"
    assert all(c["verdict"] in ("holds", "does not hold", "undecided")
               for c in summary["claims"])
    json.dumps(summary, allow_nan=False)


def test_noise_families_are_compared_with_dropout_by_their_rules():
    rng = np.random.default_rng(1)
    records = []
    for r in range(6):
        base = 0.85 + 0.02 * rng.standard_normal()
        wobble = 0.001 * (-1) ** r
        records += [_fit_record("d", "dropout", 0.3, r, 0.90, base),
                    _fit_record("d", "l2", 1e-3, r, 0.85, base - 0.02),
                    # Gaussian: the same as dropout up to noise (within the margin)
                    _fit_record("d", "gaussian-dropout", 0.3, r, 0.90, base + wobble),
                    # alpha dropout: clearly worse than dropout
                    _fit_record("d", "alpha-dropout", 0.1, r, 0.80, base - 0.05 + wobble),
                    # DropConnect: clearly better
                    _fit_record("d", "dropconnect", 0.2, r, 0.95, base + 0.03 + wobble)]
    verdicts = {c["claim"]: c for c in claims(records)}
    assert verdicts["Gaussian dropout works as well as Bernoulli dropout"]["verdict"] == "holds"
    selu = verdicts["a SELU network with alpha dropout beats a ReLU network with dropout"]
    assert selu["verdict"] == "does not hold" and selu["source"] == "Klambauer et al. 2017"
    assert verdicts["DropConnect beats dropout"]["verdict"] == "holds"
    assert verdicts["DropConnect beats the better of L1 and L2"]["verdict"] == "holds"
    assert verdicts["Gaussian dropout beats the better of L1 and L2"]["n"] == 6


def test_weight_scaling_claim_pairs_monte_carlo_with_weight_scaling_per_repeat():
    def mc(seed, gap):
        return {"kind": "mc", "key": f"mc|{seed}", "dataset": "d", "rate": 0.5, "seed": seed,
                "samples": [1, 10, 100], "mc_accuracy": [0.5, 0.7, 0.8 + gap],
                "mc_log_loss": [1.5, 1.0, 0.9], "mc_kl": [0.5, 0.2, 0.1],
                "weight_scaling_accuracy": 0.8, "weight_scaling_log_loss": 0.9}
    same = claims([mc(s, 0.001 * (-1) ** s) for s in range(5)])
    assert [c["verdict"] for c in same] == ["holds"]
    assert "first matches weight scaling's accuracy at T = 100" in same[0]["evidence"]
    worse = claims([mc(s, -0.03 + 0.001 * s) for s in range(5)])
    assert worse[0]["verdict"] == "does not hold" and worse[0]["n"] == 5


def test_early_stopping_is_one_switch_for_every_family(monkeypatch):
    quick = default_suite("quick")
    assert all(c.estimator_params()["early_stopping"] for c in quick)
    assert not any(c.regularizer == "early-stopping" for c in quick)  # "none" is that
    assert "early stopping on validation" in cfg.get_profile("quick").stopping
    off = dataclasses.replace(cfg.PROFILES["quick"], early_stopping=False)
    monkeypatch.setitem(cfg.PROFILES, "quick", off)
    suite = default_suite("quick")
    assert not any(c.estimator_params()["early_stopping"] for c in suite
                   if c.regularizer != "early-stopping")
    alone = [c for c in suite if c.regularizer == "early-stopping"]
    assert alone and all(c.estimator_params()["early_stopping"] for c in alone)
    config = alone[0]
    assert config.family == "early-stopping" and set(config.search_params()) == {
        "learning_rate_init"}
    rec = run_one(RunConfig("iris", "early-stopping", 0.0, 0))
    assert rec["error"] is None and rec["family"] == "early-stopping"


def test_every_family_searches_the_learning_rates():
    quick = cfg.get_profile("quick")
    default = [c for c in default_suite("quick") if c.arch == "default"
               and c.regularizer != "dropout-maxnorm"]
    for family in {c.family for c in default}:
        lrs = {c.search_params()["learning_rate_init"] for c in default if c.family == family}
        assert lrs == set(quick.learning_rates), family
    full = cfg.get_profile("full")  # the quick profile leaves max-norm out
    maxnorm = [c.estimator_params() for c in default_suite("full")
               if c.regularizer == "dropout-maxnorm"]
    assert {(p["max_norm"], p["learning_rate_init"]) for p in maxnorm} == set(
        itertools.product(full.maxnorm_radii, full.maxnorm_learning_rates))
    assert all(p["solver"] == "sgd" for p in maxnorm)


def test_dropout_plus_l2_adds_l2_to_dropouts_choice():
    records, configs = [], []
    for r in range(3):
        for rate, lr, val in ((0.3, 1e-3, 0.70), (0.3, 3e-3, 0.75), (0.5, 3e-3, 0.72)):
            c = RunConfig("iris", "dropout", rate, r, overrides=(("learning_rate_init", lr),))
            configs.append(c)
            records.append({**_fit_record("iris", "dropout", rate, r, val, 0.7),
                            "params": c.search_params(), "key": c.key})
    later = cfg.second_stage(select(records), configs)
    assert len(later) == 3 * len(cfg.get_profile("quick").l2_grid)
    assert {(c.regularizer, dict(c.overrides)["dropout"], dict(c.overrides)[
        "learning_rate_init"]) for c in later} == {("dropout-l2", 0.3, 3e-3)}
    assert {c.estimator_params()["alpha"] for c in later} == set(cfg.L2_GRID)
    assert all(c.estimator_params()["dropout"] == 0.3 for c in later)


def test_a_learning_rate_at_the_edge_extends_for_that_family_only():
    records, configs = [], []
    for r in range(3):
        for lr in (1e-3, 3e-3, 1e-2):
            for family, rate in (("dropout", 0.5), ("dropout", 0.0)):
                c = RunConfig("iris", family, rate, r, overrides=(("learning_rate_init", lr),))
                val = 0.7 + (lr if rate else -lr)  # dropout: higher is better; none: lower
                configs.append(c)
                records.append({**_fit_record("iris", family, rate, r, val, 0.7),
                                "params": c.search_params(), "key": c.key})
    new, events = cfg.extend_grids(select(records), configs)
    assert sorted((e["family"], e["param"], e["added"]) for e in events) == [
        ("dropout", "learning_rate_init", pytest.approx(1e-2 * 10 / 3)),
        ("none", "learning_rate_init", pytest.approx(1e-3 / 3))]
    assert sorted((c.strength, dict(c.overrides)["learning_rate_init"]) for c in new) == [
        (0.0, pytest.approx(1e-3 / 3))] * 3 + [(0.5, pytest.approx(1e-2 * 10 / 3))] * 3


def test_max_norm_row_is_dropped_when_it_never_clips():
    records = []
    for r in range(3):
        records += [{**_fit_record("d", "dropout-maxnorm", 0.5, r, 0.8, 0.8),
                     "max_norm_clipped": 0.0},
                    _fit_record("d", "l2", 1e-3, r, 0.7, 0.7)]
    summary = build_summary(records)
    assert [d["family"] for d in summary["dropped"]] == ["dropout-maxnorm"]
    assert {c["family"] for c in summary["selected"]} == {"l2"}
    assert not any("max-norm" in c["claim"] for c in summary["claims"])
    for rec in records[::2]:
        rec["max_norm_clipped"] = 0.05
    summary = build_summary(records)
    chosen = {c["family"]: c for c in summary["selected"]}
    assert chosen["dropout-maxnorm"]["max_norm_clipped"] == pytest.approx(0.05)
    assert any(c["claim"] == "dropout + max-norm beats the better of L1 and L2"
               for c in summary["claims"])


def test_one_repeat_is_undecided_and_json_safe():
    records = [_fit_record("d", "dropout", 0.5, 0, 0.9, 0.99),
               _fit_record("d", "l2", 1e-3, 0, 0.8, 0.5)]
    summary = build_summary(records)
    claim = {c["claim"]: c for c in summary["claims"]}["dropout beats the better of L1 and L2"]
    assert claim["verdict"] == "undecided" and claim["ci"] == [None, None]
    json.dumps(summary, allow_nan=False)


def test_t_interval_covers_the_mean_difference_as_often_as_it_says():
    rng = np.random.default_rng(1)
    trials, covered = 4000, 0
    for _ in range(trials):
        a = rng.normal(0.8, 0.03, 5)
        b = a - 0.01 + rng.normal(0, 0.01, 5)  # paired: true mean difference 0.01
        iv = stats.paired_interval(a, b)
        covered += iv.low <= 0.01 <= iv.high
    # 95% nominal; a correct interval leaves this band with probability < 1e-4
    se = (0.95 * 0.05 / trials) ** 0.5
    assert abs(covered / trials - 0.95) < 4 * se


def test_verdict_rules():
    iv = lambda lo, hi: stats.Interval((lo + hi) / 2, lo, hi, 5)  # noqa: E731
    assert stats.beats(iv(0.001, 0.02)) == "holds"
    assert stats.beats(iv(-0.01, 0.004)) == "does not hold"  # at best within the margin
    assert stats.beats(iv(-0.01, 0.02)) == "undecided"
    assert stats.not_better(iv(-0.01, 0.004)) == "holds"
    assert stats.not_better(iv(0.001, 0.02)) == "does not hold"
    assert stats.within(iv(1.6, 2.5), 1.5, 3.0) == "holds"
    assert stats.within(iv(0.9, 1.2), 1.5, 3.0) == "does not hold"
    assert stats.within(iv(1.2, 2.0), 1.5, 3.0) == "undecided"


def test_epochs_to_converge_on_validation_with_censoring():
    falling = [1.0 / (e + 1) for e in range(30)]
    rec = _fit_record("d", "dropout", 0.5, 0, 0.9, 0.9, val_loss=falling, converged=False)
    epochs, censored = epochs_to_converge(rec)
    assert censored and epochs >= 28  # still improving at the cap: at least this many
    u_shape = [abs(e - 10) / 10 + 0.5 for e in range(30)]
    rec = _fit_record("d", "dropout", 0.5, 0, 0.9, 0.9, val_loss=u_shape, converged=False)
    assert epochs_to_converge(rec) == (11, False)  # best at epoch 11, long before the cap


def test_cli_sweep_from_toml_then_plot_from_records(tmp_path, capsys):
    toml = tmp_path / "grid.toml"
    toml.write_text('[sweep]\ndatasets = ["iris"]\nregularizers = ["dropout", "l1"]\n'
                    'rates = [0.0, 0.5]\nseeds = [0, 1]\nl1 = [1e-4]\n'
                    'learning_rates = [1e-3]\n')
    out = tmp_path / "res"
    assert main(["sweep", "--config", str(toml), "--out", str(out), "--quiet"]) == 0
    assert len(ResultStore(out).records("fit")) == 6
    figures = out / "figures"
    for name in ("rate_sweep_iris", "time_to_target", "learning_curves_iris"):
        assert (figures / f"{name}.png").stat().st_size > 0
        assert (figures / f"{name}.svg").exists()
    for f in figures.iterdir():
        f.unlink()
    assert main(["plot", str(out), "--quiet"]) == 0  # from stored records only
    assert (figures / "rate_sweep_iris.png").exists() and (out / "summary.md").exists()
    assert main(["sweep", "--datasets", "mnist", "--out", str(out)]) == 2
    assert "dataset must be one of" in capsys.readouterr().err


def test_run_writes_every_figure(tmp_path, monkeypatch, capsys):
    """`fastdrop run` end to end on a shrunken profile: all seven kinds of figure."""
    tiny = cfg.Profile("quick", max_iter=5, n_iter_no_change=3, tol=1e-4, batch_size=64,
                       learning_rates=(1e-3,), datasets=("iris", "wine"), seeds=(0, 1),
                       max_repeats=(("wine", 3),), extras_datasets=("iris",),
                       rates=(0.0, 0.2, 0.5, 0.8), batch_rates=(0.5,), l2_grid=(1e-3,),
                       l1_grid=(1e-4,), seed_arch_datasets=("iris",),
                       seed_arch_rates=(0.0, 0.5), mc_samples=(1, 5), maxnorm_radii=(1.0,),
                       maxnorm_learning_rates=(0.05,), cost_rates=(0.5,),
                       cost_dataset="iris", uncertainty_datasets=("iris", "diabetes"))
    monkeypatch.setitem(cfg.PROFILES, "quick", tiny)
    import fastdrop.suite.experiments as ex
    import fastdrop.suite.predictive as predictive

    monkeypatch.setattr(predictive, "REGRESSION_RATES", (0.1, 0.5))

    def few_threads(dataset, profile, epochs=3):  # the real one fits 784-512-512 per count
        return {"kind": "threads", "key": f"threads|{dataset}|{profile}", "dataset": dataset,
                "profile": profile, "n_samples": 1,
                "rows": [{"n_threads": 1, "dropout": d, "epoch_time": 1.0} for d in (0, 0.5)]}

    monkeypatch.setattr(ex, "epoch_time_vs_threads", few_threads)
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), "--quiet"]) == 0
    names = {p.stem for p in (out / "figures").glob("*.png")}
    assert {"rate_sweep_iris", "rate_sweep_iris_seed", "time_vs_epochs", "time_to_target",
            "learning_curves_iris", "kernel_throughput", "epoch_time_vs_threads",
            "mc_dropout_iris", "critical_difference", "reliability_iris", "coverage"} <= names
    summary = (out / "summary.md").read_text()
    assert "## The claims" in summary and "## Chosen on validation" in summary
    assert "## Predictive distributions" in summary and "| diabetes | MC dropout" in summary
    cost = [r for r in ResultStore(out).records() if r["kind"] == "epoch_cost"]
    assert [r["dataset"] for r in cost] == ["iris"]
    assert all(len(t) == cost[0]["rounds"] for t in cost[0]["epoch_times"].values())
    assert "timed alone on iris, median of 9 paired rounds" in summary  # the claim uses it
    records = ResultStore(out).records("fit")
    assert {r["family"] for r in records} >= {"none", "dropout", "dropout-batch", "l1", "l2",
                                               "input-dropout", "dropout-maxnorm",
                                               "dropout-l2"}
    assert {r.get("budget", 1) for r in records if r["arch"] == "seed"} == {1, 3}
    data = json.loads((out / "summary.json").read_text())
    assert {"protocol", "selected", "claims", "power", "across", "compute",
            "uncertainty"} <= set(data)
    stage = data["uncertainty"]["datasets"]
    assert set(stage) == {"iris", "diabetes"}
    assert set(stage["diabetes"]["methods"]) == {"ws", "mc", "mc-het", "plain", "ensemble"}
    assert {stage[d]["repeats"] for d in stage} == {2}  # the profile's seeds
    rows = [c for c in data["claims"] if c["source"] in ("Gal & Ghahramani 2016",
                                                         "Lakshminarayanan et al. 2017")]
    assert sorted(c["dataset"] for c in rows) == ["diabetes"] * 3 + ["iris"] * 3
    # the pilot's two repeats, then the plan's: wine's cap is 3
    plans = ResultStore(out).records("repeats_plan")
    assert [p["dataset"] for p in plans] == ["wine"] and plans[0]["cap"] == 3
    wine = {r["repeat"] for r in records if r["dataset"] == "wine"}
    assert wine == set(range(plans[0]["planned"]))
    assert {r["repeat"] for r in records if r["dataset"] == "iris"} == {0, 1}
    assert data["across"]["datasets"] == ["iris", "wine"]
    assert data["claims"][0]["dataset"] == "across 2 datasets"
    assert "## Across datasets" in summary
    for entry in data["selected"]:
        assert {"dataset", "family", "params", "grid", "at_grid_edge", "val_score",
                "test_accuracy", "test_accuracy_ci"} <= set(entry)
    for claim in data["claims"]:
        assert {"dataset", "claim", "source", "verdict", "estimate", "ci", "n"} <= set(claim)
    for r in ResultStore(out).records("fit"):
        assert {"dataset", "family", "params", "repeat", "split_id", "val_score",
                "test_accuracy"} <= set(r)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- fastdrop:claims -->\nstale\n<!-- /fastdrop:claims -->\n"
                      "<!-- fastdrop:selected -->\n<!-- /fastdrop:selected -->\n"
                      "<!-- fastdrop:mnist1d -->\n<!-- /fastdrop:mnist1d -->\nend\n")
    assert main(["plot", str(out), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "stale" not in text and "| dataset | claim | source | verdict |" in text
    assert "| dataset | arch | family | chosen on validation |" in text
    assert text.startswith("intro\n") and text.endswith("end\n")
    # a second study's tables: only the blocks of its section are rewritten
    readme.write_text(text + "<!-- fastdrop:claims:noise -->\nSTALE-NOISE\n<!-- /fastdrop:claims:noise -->\n")
    assert main(["plot", str(out), "--readme", str(readme), "--section", "noise"]) == 0
    again = readme.read_text()
    assert again.startswith(text) and "STALE-NOISE" not in again and again.count("| verdict |") == 2
    readme.write_text(text)
    assert main(["plot", str(out), "--readme", str(readme), "--section", "noise"]) == 2
    assert "no <!-- fastdrop:NAME:noise --> block" in capsys.readouterr().err


def test_a_second_writer_of_a_results_folder_is_refused(tmp_path):
    owner = ResultStore(tmp_path).acquire()
    with pytest.raises(StoreBusy, match=f"in use by another fastdrop process \\(pid {os.getpid()}"):
        ResultStore(tmp_path).append({"kind": "fit", "key": "x"})
    owner.release()
    ResultStore(tmp_path).append({"kind": "fit", "key": "x"})  # free again


def test_two_sweeps_on_one_folder_run_each_configuration_once(tmp_path):
    out, many = tmp_path / "res", ("--seeds", "0,1,2,3,4")  # 40 fits: still running when
    first, records = _start_sweep(out, 1, 1, *many)             # the second one starts
    second = subprocess.run(_sweep_cmd(out, "--jobs", "1", *many), capture_output=True,
                            text=True)
    running = first.poll() is None
    first.kill()
    first.wait()
    assert running, "the first sweep ended before the second started"
    assert second.returncode == 2 and "in use by another fastdrop process" in second.stderr
    assert second.stderr.count("\n") == 1  # one line, no traceback
    keys = [json.loads(line)["key"] for line in records.read_text().splitlines()]
    assert len(keys) == len(set(keys)) >= 1


def test_duplicate_records_of_one_key_count_once(tmp_path):
    store = ResultStore(tmp_path)
    for seed_acc in (0.5, 0.9):
        store.append({"kind": "fit", "key": "same", "test_accuracy": seed_acc})
    store.append({"kind": "fit", "key": "other"})
    records = store.records()
    assert [r["key"] for r in records] == ["same", "other"]
    assert records[0]["test_accuracy"] == 0.5


@pytest.mark.parametrize("line, what", [
    (b"42", "not a record"), (b"null", "not a record"), (b"[1, 2]", "not a record"),
    (b'{"kind": "fit"}', "not a record"), (b'{"key": 3}', "not a record"),
    (b'{"key": "\xff\xfe"}', "not UTF-8")])
def test_lines_that_are_not_records_are_skipped_with_their_line_number(tmp_path, line, what):
    store = ResultStore(tmp_path)
    store.append({"kind": "fit", "key": "a"})
    with open(store.path, "ab") as f:
        f.write(line + b"\n")
    store.append({"kind": "fit", "key": "b"})
    with pytest.warns(UserWarning, match=f"records.jsonl:2: skipping .*{what}"):
        assert store.keys() == {"a", "b"}


def test_a_short_write_leaves_no_torn_record(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    store.append({"kind": "fit", "key": "a"})
    before = store.path.read_bytes()
    real_write = os.write

    def disk_fills(fd, data):  # half the line fits, then the disk is full
        if len(data) > 2:
            return real_write(fd, data[:len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", disk_fills)
    with pytest.raises(OSError, match="No space left"):
        store.append({"kind": "fit", "key": "b", "pad": "x" * 100})
    monkeypatch.undo()
    assert store.path.read_bytes() == before


def test_sweep_grid_mistakes_are_errors_naming_the_key(tmp_path, capsys):
    cases = {
        '[sweep]\ndatasets = ["iris"]\nseed = [0]\n': "unknown key sweep.seed",
        '[sweeps]\ndatasets = ["iris"]\n': "no \\[sweep\\] table",
        '[sweep]\nseeds = [1.7]\n': "sweep.seeds must hold int values, got 1.7",
        '[sweep]\nrates = []\n': "sweep.rates must be a non-empty list",
        'sweep = 5\n': "sweep must be a table",
        '[sweep]\narch = 3\n': "sweep.arch must be a str",
        '[sweep]\nrates = [1.5]\n': "dropout strength must be a drop rate in \\[0, 1\\)",
    }
    for i, (text, message) in enumerate(cases.items()):
        toml = tmp_path / f"grid{i}.toml"
        toml.write_text(text)
        assert main(["sweep", "--config", str(toml), "--out", str(tmp_path / "r"),
                     "--quiet"]) == 2, text
        err = capsys.readouterr().err
        assert re.search(message, err) and err.count("\n") == 1, (text, err)
    assert not (tmp_path / "r" / "records.jsonl").exists()


@pytest.mark.parametrize("flag", ["--datasets", "--rates", "--seeds"])
def test_an_empty_grid_flag_is_an_error_not_the_default(tmp_path, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", flag, "", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "expected at least one" in capsys.readouterr().err


def _pids_of_children(pid):
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")
def test_workers_exit_soon_after_their_sweep_is_killed(tmp_path):
    proc, _ = _start_sweep(tmp_path / "res", jobs=2, wait_for_records=1)
    workers = [p for p in _pids_of_children(proc.pid)
               if "python" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert workers, "the sweep should have started worker processes"
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    alive = {p: Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ")[:300]
             for p in workers if _alive(p)}
    assert not alive, f"orphaned workers still running: {alive}"


def test_interleaved_rounds_rotate_the_order_and_drop_the_burn_in():
    from fastdrop._timing import interleaved

    calls = []
    times = interleaved({name: (lambda n=name: calls.append(n)) for name in "abc"}, rounds=3)
    assert calls == list("abc" "bca" "cab" "abc")  # burn-in round, then 3 rotated rounds
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}


def test_the_benchmark_and_the_study_share_their_60000x784_set(monkeypatch):
    import fastdrop._bench.bench_epochs as bench
    from fastdrop.suite.datasets import load_xy

    asked = []
    monkeypatch.setattr(bench, "load_xy", asked.append)
    monkeypatch.setattr(bench, "QUICK", False)
    bench.load("synthetic")
    assert asked == ["synthetic-60k"]  # the study's preset, not a second copy
    X, y = load_xy("synthetic-300x20x3")
    assert X.dtype == np.float32 and X.shape == (300, 20) and len(np.unique(y)) == 3
    assert np.allclose(X.mean(0), 0, atol=1e-5) and np.allclose(X.std(0), 1, atol=1e-4)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="the guard reads /proc (Linux)")
@pytest.mark.parametrize("sweep_ends", ["killed", "done"])
def test_the_guard_kills_a_killed_sweeps_children_and_only_then(tmp_path, sweep_ends):
    """_guard.py: a child of a SIGKILLed sweep dies with it; a finished sweep's guard leaves
    its children alone and exits at once."""
    guard = Path(cfg.__file__).with_name("_guard.py")
    sweep = tmp_path / "sweep.py"
    sweep.write_text(
        "import subprocess, sys, time\n"
        f"g = subprocess.Popen([sys.executable, '-S', {str(guard)!r}, str(__import__('os')"
        ".getpid())], stdin=subprocess.PIPE)\n"
        "c = subprocess.Popen(['sleep', '30'])\n"
        "print(c.pid, flush=True)\n"
        "time.sleep(0.5)  # the guard records the child\n"
        "if sys.argv[1] == 'done':\n"
        "    g.communicate(b'done')\n"
        "print(g.poll(), flush=True)\n"
        "time.sleep(30)\n")
    proc = subprocess.Popen([sys.executable, str(sweep), sweep_ends], stdout=subprocess.PIPE,
                            text=True)
    child = int(proc.stdout.readline())
    guard_code = proc.stdout.readline().strip()  # the guard's exit code, None if running
    assert guard_code == ("0" if sweep_ends == "done" else "None")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + (5 if sweep_ends == "killed" else 1)
    while time.time() < deadline and _alive(child):
        time.sleep(0.05)
    try:
        assert _alive(child) == (sweep_ends == "done")
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


# Never silently wrong, round two (issue 24): the study's own surfaces.

def test_a_user_file_given_with_a_path_gets_its_summary_and_figures(tmp_path, monkeypatch):
    from sklearn.datasets import load_iris

    data = tmp_path / "data"
    data.mkdir()
    X, y = load_iris(return_X_y=True)
    np.savetxt(data / "mine.csv", np.c_[X, y], delimiter=",", header="a,b,c,d,label",
               comments="")
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "res"
    assert main(["sweep", "--datasets", "data/mine.csv", "--regularizers", "dropout",
                 "--rates", "0,0.5", "--seeds", "0", "--learning-rates", "1e-3",
                 "--jobs", "1",  # a pool another test started has that test's folder
                 "--out", str(out), "--quiet"]) == 0
    assert (out / "summary.json").exists() and (out / "summary.md").exists()
    assert (out / "figures" / "rate_sweep_data_mine.csv.png").stat().st_size > 0
    assert main(["plot", str(out)]) == 0


def test_extending_grids_passes_over_another_sweeps_dataset():
    """A folder holding two sweeps' records: this sweep extends only its own datasets (a
    choice at the edge of the other's grid was a bare StopIteration)."""
    records, configs = [], []
    for r in range(3):
        for a in (1e-4, 1e-3, 1e-2):  # at the edge for both datasets
            records += [_fit_record(d, "l2", a, r, val=0.8 + a, test=0.8)
                        for d in ("iris", "wine")]
            configs.append(RunConfig("iris", "l2", a, r))
        records += [_fit_record(d, "dropout", 0.5, r, val=0.8, test=0.8)
                    for d in ("iris", "wine")]
    new, events = cfg.extend_grids(select(records), configs)
    assert {c.dataset for c in new} == {"iris"} and {e["dataset"] for e in events} == {"iris"}
    assert {c.dataset for c in cfg.second_stage(select(records), configs)} <= {"iris"}


@pytest.mark.parametrize("name, works", [("synthetic-300x10", True), ("synthetic-300x1", False),
                                         ("synthetic-10x3x8", False)])
def test_synthetic_names_load_or_say_what_they_need(name, works):
    from fastdrop.suite.datasets import load_xy

    if works:
        X, y = load_xy(check_name(name))
        assert X.shape == (300, 10) and len(np.unique(y)) == 10
    else:
        with pytest.raises(ValueError, match=f"dataset '{name}': synthetic-NxD.xC. needs"):
            check_name(name)


def test_the_sweep_guard_ignores_ctrl_c():
    """Ctrl-C reaches the terminal's whole process group: the guard must not print a
    KeyboardInterrupt traceback above the sweep's one-line message."""
    import fastdrop.suite._guard as guard

    proc = subprocess.Popen([sys.executable, guard.__file__, str(os.getpid())],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert proc.poll() is None  # still watching
    proc.stdin.write(b"x")
    proc.stdin.flush()
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and b"Traceback" not in err, err
