import json
import subprocess
import sys

from fastdrop.cli import main


def test_info_prints_build_facts(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("OpenMP", "threads", "SIMD", "Philox4x32-10", "BLAS"):
        assert word in out


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
    assert (tmp_path / "epochs.png").stat().st_size > 0 and (tmp_path / "epochs.svg").exists()


def test_paired_ratio_cancels_drifting_load():
    from fastdrop._benchreport import paired_ratio

    # the machine slows down 3x over the run; each round keeps a ratio of 0.5
    fast, slow = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]
    assert paired_ratio(fast, slow) == 0.5
    assert paired_ratio(fast, None) is None
