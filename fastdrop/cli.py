"""The `fastdrop` command line: run | sweep | plot | bench | info | uncertainty."""
import argparse
import json
import sys
import time
from pathlib import Path

from .suite.families import FAMILIES, NOISE_FAMILIES

DEFAULT_OUT = "fastdrop-results"
NO_TESTS_COLLECTED = 5  # pytest's exit code


def _csv(kind):
    def parse(text):
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind.__name__} values, got {text!r}") from None
        if not values:
            raise argparse.ArgumentTypeError(
                f"expected at least one {kind.__name__} value, got {text!r}")
        return values
    return parse


def _execution(args):
    from .plots import plot_all
    from .suite.study import Execution

    return Execution(args.out, args.jobs, args.scheduler, args.quiet, figures=plot_all)


def _cmd_run(args):
    from .suite.study import run_study

    return run_study(args.profile, _execution(args))


def _cmd_sweep(args):
    from .suite.config import grid, sweep_spec

    spec = {}
    if args.config:
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            import tomli as tomllib
        with open(args.config, "rb") as f:
            spec = sweep_spec(tomllib.load(f), args.config)
    pick = lambda name, default: (  # noqa: E731
        getattr(args, name) if getattr(args, name) is not None else spec.get(name, default))
    args.profile = pick("profile", "quick")
    lrs = pick("learning_rates", None)
    configs = grid(pick("datasets", ["digits"]), pick("regularizers", ["dropout"]),
                   pick("rates", [0.0, 0.5]), pick("seeds", [0]), profile=args.profile,
                   arch=pick("arch", "default"), l1_grid=pick("l1", None),
                   l2_grid=pick("l2", None),
                   searched={"learning_rate_init": lrs} if lrs else None)
    from .suite.study import run_sweep

    return run_sweep(configs, args.profile, _execution(args), extend=args.extend_grids)


def _cmd_plot(args):
    from .plots import plot_all
    from .suite.store import ResultStore

    if not (Path(args.results) / "records.jsonl").exists():
        print(f"fastdrop plot: no records.jsonl in {args.results}", file=sys.stderr)
        return 2
    if args.readme:
        return _update_readme(args.results, args.readme, args.section)
    if args.out:
        paths = plot_all(args.results, args.out)
        print("\n".join(str(p) for p in paths))
        return 0
    if not ResultStore(args.results).records():
        print(f"fastdrop plot: {Path(args.results) / 'records.jsonl'} holds no records yet",
              file=sys.stderr)
        return 2
    from .suite.study import finish

    return finish(args.results, args.quiet, time.perf_counter(), plot_all)


README_TABLES = {"claims": "claims_markdown", "selected": "selected_markdown",
                 "mnist1d": "mnist1d_markdown", "across": "across_markdown",
                 "power": "power_markdown", "uncertainty": "uncertainty_markdown"}
# Another study's tables beside the main one's: the families whose claims each shows (None:
# every family; "full": the full profile's run beside the quick one's).
README_SECTIONS = {"noise": NOISE_FAMILIES, "full": None}


def _update_readme(results, readme, section=None):
    """The README's study tables, generated from a stored summary.json, never by hand: the
    blocks NAME the file has, or with ``section`` its blocks NAME:SECTION (another study's
    tables beside the main one's); a file with none of them is an error."""
    import re

    from .suite import summary as sm

    summary = json.loads((Path(results) / "summary.json").read_text())
    text = Path(readme).read_text()
    written = []
    for name, fn in README_TABLES.items():
        tag = name if section is None else f"{name}:{section}"
        block = re.compile(rf"(<!-- fastdrop:{tag} -->\n).*?(<!-- /fastdrop:{tag} -->)", re.S)
        if not block.search(text):
            continue
        if name == "claims" and section is not None and README_SECTIONS[section]:
            table = sm.claims_markdown(summary, README_SECTIONS[section])
        else:
            table = getattr(sm, fn)(summary)
        text = block.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)
        written.append(tag)
    if not written:
        tag = "NAME" if section is None else f"NAME:{section}"
        raise ValueError(f"{readme} has no <!-- fastdrop:{tag} --> block (NAME: "
                         f"{', '.join(README_TABLES)})")
    Path(readme).write_text(text)
    print(f"wrote the {', '.join(written)} tables of {readme} from "
          f"{Path(results) / 'summary.json'}")
    return 0


def _cmd_info(args):
    from ._info import build_info

    info = build_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"fastdrop {info['fastdrop']} (Python {info['python']}, {info['cpu']})")
    print(f"  OpenMP:  {'on' if info['openmp'] else 'off (serial build)'}")
    print(f"  threads: {info['threads']}")
    print(f"  SIMD:    {info['simd']} (dropout kernels), {info['optimizer_simd']} (optimizer)")
    print(f"  RNG:     {info['rng']}")
    for lib in info["blas"] or [{"internal_api": "none found"}]:
        details = ", ".join(f"{k}={v}" for k, v in lib.items() if k != "internal_api" and v)
        print(f"  BLAS:    {lib['internal_api']} ({details})")
    print(f"  BLAS threads in fit: {info['blas_pool']}")
    print(f"  step loop: {info['step_loop']}")
    return 0


BENCH_NEEDS = ("pytest", "pytest_benchmark")  # the `bench` extra


def _cmd_bench(args):
    import importlib.util
    import os
    import subprocess
    from importlib import resources

    from ._benchreport import (PREDICT_ACCEPTANCE, epoch_report, load_epochs, load_load,
                               load_predict, load_rates, load_report, load_torch, parts_report,
                               ratio_table, torch_report)

    missing = [m for m in BENCH_NEEDS if importlib.util.find_spec(m) is None]
    if missing:
        print(f"fastdrop bench runs pytest-benchmark files and needs {', '.join(missing)}: "
              "pip install 'fastdrop[bench]'", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    bench_dir = Path(str(resources.files("fastdrop._bench")))
    env = dict(os.environ, FASTDROP_BENCH_PROFILE=args.profile)
    has_torch = importlib.util.find_spec("torch") is not None
    if args.only == "torch" and not has_torch:
        print("fastdrop bench --only torch compares with PyTorch, which is not installed: "
              "pip install 'fastdrop[torch]'", file=sys.stderr)
        return 2
    suites = ([args.only] if args.only else
              ["kernels", "epochs", "predict"] + (["torch"] if has_torch else []))
    ran = []
    for suite in suites:
        json_path = out / f"{suite}.json"
        cmd = [sys.executable, "-m", "pytest", str(bench_dir / f"bench_{suite}.py"),
               "--rootdir", str(bench_dir), "-c", os.devnull, "-p", "no:cacheprovider",
               "--benchmark-only", f"--benchmark-json={json_path}",
               f"--benchmark-max-time={args.max_time}", "-q" if not args.quiet else "-qq"]
        if args.filter:
            cmd += ["-k", args.filter]
        # cwd=out: `python -m` puts the cwd first on sys.path, and a source checkout's
        # fastdrop/ (without compiled extensions) must not shadow the installed package.
        code = subprocess.call(cmd, env=env, cwd=out,
                               stdout=subprocess.DEVNULL if args.quiet else None)
        if code == NO_TESTS_COLLECTED and args.filter:
            json_path.unlink(missing_ok=True)
            continue  # -k selects cases of the other file only
        if code != 0:
            print(f"fastdrop bench: pytest exited with {code} on bench_{suite}.py",
                  file=sys.stderr)
            return code
        if suite == "kernels":
            table = ratio_table(load_rates(json_path)[0])
        elif suite == "torch":
            table = torch_report(*load_torch(json_path))
        elif suite == "predict":
            table = parts_report(load_predict(json_path), PREDICT_ACCEPTANCE)
        elif suite == "load":
            table = load_report(*load_load(json_path))
        else:
            table = epoch_report(load_epochs(json_path))
        (out / f"{suite}.md").write_text(table + "\n")
        print(f"\n## {suite}\n\n{table}\n\nwrote {json_path} and {out / (suite + '.md')}")
        ran.append(suite)
    if not ran:
        print(f"fastdrop bench: -k {args.filter!r} matches no benchmark in "
              f"{', '.join('bench_' + s + '.py' for s in suites)}", file=sys.stderr)
        return 2
    from ._benchplots import bench_figures

    for path in bench_figures(out):
        print(f"wrote {path}")
    return 0


def _add_execution(p):
    p.add_argument("--out", default=DEFAULT_OUT,
                   help=f"results folder (default: ./{DEFAULT_OUT}); rerunning continues it")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes (default: all cores; each gets cores/jobs threads)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on an existing Dask distributed cluster instead of local processes")
    p.add_argument("--quiet", action="store_true", help="no progress bars or tables")


def build_parser():
    parser = argparse.ArgumentParser(prog="fastdrop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_run_parser, _sweep_parser, _plot_parser, _info_parser, _bench_parser,
                _uncertainty_parser):
        add(sub)
    return parser


def _run_parser(sub):
    run = sub.add_parser("run", help="the study: every regularizer family, each tuned on "
                                     "validation, on MNIST-1D and scikit-learn's datasets; "
                                     "claims per dataset and across them, figures and "
                                     "summary.json")
    run.add_argument("--profile", choices=["quick", "full"], default="quick",
                     help="quick: under 10 minutes on 2 cores (default); full: 6 datasets, "
                          "10-20 repeats, every rate, up to 300 epochs, the article's "
                          "network (about 1-2 hours on 2 cores; rerun to resume)")
    _add_execution(run)
    run.set_defaults(func=_cmd_run)


def _sweep_parser(sub):
    sweep = sub.add_parser("sweep", help="any grid, from flags or a TOML file ([sweep] table "
                                         "with the same names)")
    sweep.add_argument("--datasets", type=_csv(str),
                       help="e.g. digits,wine,synthetic-5000x100 (default: digits)")
    sweep.add_argument("--regularizers", type=_csv(str),
                       help=f"of {','.join(FAMILIES)} (dropout-l2 crosses --l2 with "
                            "--rates; default: dropout)")
    sweep.add_argument("--rates", type=_csv(float), help="drop rates (default: 0,0.5)")
    sweep.add_argument("--l2", type=_csv(float), help="alpha grid (default: the profile's)")
    sweep.add_argument("--l1", type=_csv(float), help="l1 grid (default: the profile's)")
    sweep.add_argument("--learning-rates", type=_csv(float), dest="learning_rates",
                       help="Adam step sizes, each crossed with the grid (default: the "
                            "profile's, 3e-3,1e-2)")
    sweep.add_argument("--seeds", type=_csv(int), help="(default: 0)")
    sweep.add_argument("--arch", choices=["default", "seed"], help="(default: default)")
    sweep.add_argument("--profile", choices=["quick", "full"], help="(default: quick)")
    sweep.add_argument("--config", metavar="TOML", help="read the grid from a TOML file")
    sweep.add_argument("--extend-grids", action="store_true", dest="extend_grids",
                       help="while validation chooses a grid's edge, run one step past it "
                            "(as `fastdrop run` does)")
    _add_execution(sweep)
    sweep.set_defaults(func=_cmd_sweep)


def _plot_parser(sub):
    plot = sub.add_parser("plot", help="(re)draw every figure and the summary from stored "
                                       "results")
    plot.add_argument("results", metavar="RESULTS_DIR")
    plot.add_argument("--out", help="figures folder (default: RESULTS_DIR/figures)")
    plot.add_argument("--readme", metavar="MARKDOWN",
                      help="rewrite the tables between <!-- fastdrop:NAME --> and "
                           "<!-- /fastdrop:NAME --> (NAME: claims, selected, mnist1d) in "
                           "this file from RESULTS_DIR/summary.json")
    plot.add_argument("--section", choices=sorted(README_SECTIONS),
                      help="with --readme: rewrite the blocks <!-- fastdrop:TABLE:SECTION --> "
                           "instead, the claims table keeping the claims about that section's "
                           "families (noise: Gaussian dropout, alpha dropout, DropConnect)")
    plot.add_argument("--quiet", action="store_true")
    plot.set_defaults(func=_cmd_plot)


def _info_parser(sub):
    info = sub.add_parser("info", help="print build facts: OpenMP, threads, SIMD, RNG, BLAS")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=_cmd_info)


def _bench_parser(sub):
    bench = sub.add_parser("bench", help="kernel, epoch and prediction benchmarks "
                                         "(pytest-benchmark JSON) and their ratio tables")
    bench.add_argument("--out", default=DEFAULT_OUT,
                       help="output folder (default: ./fastdrop-results)")
    bench.add_argument("--profile", choices=["quick", "full"], default="full",
                       help="quick: small arrays and data (a smoke run); full: kernels at "
                            "2^16 .. 2^24, epochs on 60000x784 and digits")
    bench.add_argument("--only", choices=["kernels", "epochs", "predict", "torch", "load"],
                       help="run one of the benchmark files (predict: predict_proba against "
                            "scikit-learn and torch; torch: fastdrop.torch against torch's "
                            "dropout, part of the default run when torch is installed; load: "
                            "steps with the cores free and with busy processes it starts, "
                            "run only when asked)")
    bench.add_argument("--max-time", type=float, default=0.5,
                       help="seconds of timing per case (default 0.5)")
    bench.add_argument("-k", "--filter", help="pytest -k expression to select cases")
    bench.add_argument("--quiet", action="store_true", help="less pytest output")
    bench.set_defaults(func=_cmd_bench)


def _uncertainty_parser(sub):
    unc = sub.add_parser("uncertainty", help="the UCI regression benchmark protocol "
                                             "(Hernandez-Lobato & Adams 2015; Gal & "
                                             "Ghahramani 2016) on a folder in its layout")
    unc.add_argument("--data", required=True, metavar="DIR",
                     help="data.txt, index_features.txt, index_target.txt, "
                          "index_train_K.txt / index_test_K.txt (optional: dropout_rates.txt, "
                          "tau_values.txt, n_hidden.txt, n_epochs.txt)")
    unc.add_argument("--out", default="fastdrop-uncertainty",
                     help="records and table (default: ./fastdrop-uncertainty); rerunning "
                          "resumes it")
    unc.add_argument("--mc-samples", type=int, default=100, dest="mc_samples",
                     help="MC-dropout passes per prediction (default 100)")
    unc.add_argument("--quiet", action="store_true", help="no progress bar")
    unc.set_defaults(func=_cmd_uncertainty)


def _cmd_uncertainty(args):
    from .suite.uci import run_uci

    table = run_uci(args.data, args.out, args.mc_samples, args.quiet)
    print(table)
    print(f"wrote {Path(args.out) / 'uncertainty.md'} and {Path(args.out) / 'records.jsonl'}")
    return 0


def main(argv=None):
    from .suite.store import StoreBusy

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    # What the user can fix from one line: bad names or values in a grid, a TOML file that
    # does not parse, a folder that cannot be written (read-only, a file, a full disk), a
    # results folder another process owns.
    except (ValueError, OSError, StoreBusy) as exc:
        print(f"fastdrop {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
