import json
import subprocess
import sys

import numpy as np
import pytest

from fastdrop.cli import main


def test_info_prints_build_facts(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("OpenMP", "threads", "SIMD", "Philox4x32-10", "BLAS", "BLAS threads in fit",
                 "step loop"):
        assert word in out


def test_info_says_whether_the_step_loop_is_on(monkeypatch, capsys):
    from fastdrop import _compiled_epoch
    monkeypatch.setenv("FASTDROP_COMPILED_STEPS", "0")
    assert main(["info"]) == 0
    assert "step loop: off (FASTDROP_COMPILED_STEPS=0)" in capsys.readouterr().out
    monkeypatch.delenv("FASTDROP_COMPILED_STEPS")
    assert main(["info"]) == 0
    expected = "compiled" if _compiled_epoch.numpy_blas() is not None else "off ("
    assert f"step loop: {expected}" in capsys.readouterr().out


def test_info_json_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "fastdrop", "info", "--json"],
                         capture_output=True, text=True, check=True).stdout
    info = json.loads(out)
    assert info["rng"].startswith("Philox4x32-10") and info["threads"] >= 1


def test_bench_quick_profile_writes_json_and_table(tmp_path):
    """`fastdrop bench` runs the installed benchmark files (a smoke run: tiny arrays)."""
    code = main(["bench", "--only", "kernels", "--profile", "quick", "--max-time", "0.001",
                 "--out", str(tmp_path), "--quiet", "-k", "copy or forward"])
    assert code == 0
    table = (tmp_path / "kernels.md").read_text()
    assert "| forward | 2^16 | fastdrop |" in table and "np.copyto" in table
    data = json.loads((tmp_path / "kernels.json").read_text())
    assert all("n_threads" in b["extra_info"] for b in data["benchmarks"])
    assert (tmp_path / "kernels.png").stat().st_size > 0


def test_bench_epochs_quick(tmp_path):
    code = main(["bench", "--only", "epochs", "--profile", "quick", "--out", str(tmp_path),
                 "--quiet", "-k", "digits"])
    assert code == 0
    table = (tmp_path / "epochs.md").read_text()
    assert "| digits | 1 | fastdrop | 0.0 |" in table and "gemm-floor" in table
    assert "gemm+update-floor" in table
    assert "## Acceptance lines" in table
    assert "| digits | 1 | no-dropout epoch x sklearn |" in table
    assert (tmp_path / "epochs.png").stat().st_size > 0 and (tmp_path / "epochs.svg").exists()


def test_paired_ratio_cancels_drifting_load():
    from fastdrop._benchreport import paired_ratio

    # the machine slows down 3x over the run; each round keeps a ratio of 0.5
    fast, slow = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]
    assert paired_ratio(fast, slow) == 0.5
    assert paired_ratio(fast, None) is None


def test_parts_report_names_cases_of_any_type():
    from fastdrop._benchreport import TORCH_ACCEPTANCE, parts_report
    # the torch loop's cases are (name, drop rate): a float in the case
    table = {("loop", 2): {("torch", 0.0): [1.0, 1.1, 0.9], ("torch+fastdrop", 0.5): [1.0] * 3},
             ("throughput", 2): {"fastdrop": [0.1] * 3}}
    text = parts_report(table, TORCH_ACCEPTANCE)
    assert "| loop | 2 | torch+fastdrop 0.5 |" in text and "| throughput | 2 | fastdrop |" in text
    assert "replace_dropout 0.5 x no dropout" in text


def test_median_ci_is_the_order_statistics_interval():
    from fastdrop.suite.stats import median_ci

    # n=9: (x_(2), x_(8)), coverage 1 - 2 * 10/512; n=11: (x_(2), x_(10)); n=5: the range
    assert median_ci(range(9)) == (1.0, 7.0, 1 - 20 / 512)
    assert median_ci([5, 3, 9, 0, 1, 2, 4, 6, 8, 7, 10])[:2] == (1.0, 9.0)
    lo, hi, coverage = median_ci(range(5))
    assert (lo, hi) == (0.0, 4.0) and coverage == 1 - 2 / 32
    with pytest.raises(ValueError, match="at least one value"):
        median_ci([])


def test_median_ci_covers_the_median_as_often_as_it_says():
    """Skewed samples (exponential, median ln 2): the interval's hit rate over 4000 samples
    of 9 lies within a 99.9% binomial bound of its stated coverage."""
    from fastdrop.suite.stats import median_ci

    rng = np.random.default_rng(0)
    trials, hits, coverage = 4000, 0, None
    for sample in rng.exponential(size=(trials, 9)):
        lo, hi, coverage = median_ci(sample)
        hits += lo <= np.log(2) <= hi
    bound = 3.3 * np.sqrt(coverage * (1 - coverage) / trials)
    assert abs(hits / trials - coverage) < bound


def test_acceptance_table_verdicts():
    from fastdrop._benchreport import acceptance_table, verdict

    assert [verdict(0.5, 0.59, 0.6), verdict(0.61, 0.7, 0.6), verdict(0.55, 0.65, 0.6),
            verdict(0.5, 0.7, None)] == ["holds", "does not hold", "undecided", ""]
    base = [1.0, 1.1, 0.9, 1.2, 1.0, 1.05, 0.95, 1.0, 1.1]
    row = {("fastdrop", 0.0): base,
           ("sklearn", 0.0): [2 * t for t in base],            # every round: 0.5
           ("fastdrop-batch", 0.5): [0.7 * t for t in base],   # every round: 0.7
           ("fastdrop", 0.5): [t * r for t, r in zip(base, [1.0, 1.1] * 4 + [1.0])]}
    text = acceptance_table({("synthetic", 2): row})
    assert "| no-dropout epoch x sklearn | <= 0.6 | 0.50 | 0.50 - 0.50 |" in text
    assert text.count("| holds |") == 1 and text.count("| does not hold |") == 1
    assert "element dropout 0.5 x own p=0 | <= 1.05 | 1.00 | 1.00 - 1.10 | 0.961 | 9 | undecided" \
        in text
    assert "torch" not in text  # a line whose reference did not run is left out
    one_round = acceptance_table({("synthetic", 2): {k: v[:1] for k, v in row.items()}})
    assert "| holds |" not in one_round and "| does not hold |" not in one_round
    assert one_round.count("cannot decide (coverage 0.00 < 0.9: more rounds)") == 3


def _one_line_error(capsys, argv, expected):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_unusable_places_are_one_line_errors(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    sweep = ["sweep", "--datasets", "iris", "--rates", "0", "--quiet"]
    _one_line_error(capsys, sweep + ["--out", str(a_file)], "is not a folder")
    _one_line_error(capsys, sweep + ["--out", str(a_file / "below")], "Not a directory")
    _one_line_error(capsys, sweep + ["--config", str(tmp_path), "--out", str(tmp_path / "r")],
                    "Is a directory")
    import os
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        _one_line_error(capsys, sweep + ["--out", str(locked / "r")], "Permission denied")


def test_a_full_disk_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    import errno
    import os
    from fastdrop.suite import store

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store.ResultStore, "_write", full)
    _one_line_error(capsys, ["sweep", "--datasets", "iris", "--rates", "0", "--quiet",
                             "--out", str(tmp_path / "r")], "No space left on device")


def test_plot_of_an_empty_store_says_so(tmp_path, capsys):
    (tmp_path / "records.jsonl").write_text("")
    _one_line_error(capsys, ["plot", str(tmp_path), "--quiet"], "holds no records yet")


def test_bench_filter_matching_nothing_says_so(tmp_path, capsys):
    _one_line_error(capsys, ["bench", "--profile", "quick", "--out", str(tmp_path), "--quiet",
                             "-k", "no_such_benchmark"], "matches no benchmark")


def test_bench_without_its_extra_names_what_to_install(tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pytest_benchmark" else real(name, *a))
    _one_line_error(capsys, ["bench", "--out", str(tmp_path)], "pip install 'fastdrop[bench]'")
