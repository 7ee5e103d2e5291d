"""The `fastdrop` command line."""
import argparse
import json
import sys


def _cmd_info(args):
    from ._info import build_info

    info = build_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"fastdrop {info['fastdrop']} (Python {info['python']}, {info['cpu']})")
    print(f"  OpenMP:  {'on' if info['openmp'] else 'off (serial build)'}")
    print(f"  threads: {info['threads']}")
    print(f"  SIMD:    {info['simd']}")
    print(f"  RNG:     {info['rng']}")
    for lib in info["blas"] or [{"internal_api": "none found"}]:
        details = ", ".join(f"{k}={v}" for k, v in lib.items() if k != "internal_api" and v)
        print(f"  BLAS:    {lib['internal_api']} ({details})")
    return 0


def _cmd_bench(args):
    import os
    import subprocess
    from importlib import resources
    from pathlib import Path

    from ._benchreport import epoch_table, load_epochs, load_rates, ratio_table

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    bench_dir = Path(str(resources.files("fastdrop._bench")))
    env = dict(os.environ, FASTDROP_BENCH_PROFILE=args.profile)
    suites = ["kernels", "epochs"] if args.only is None else [args.only]
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
        if code != 0:
            print(f"fastdrop bench: pytest exited with {code} on bench_{suite}.py",
                  file=sys.stderr)
            return code
        if suite == "kernels":
            table = ratio_table(load_rates(json_path)[0])
        else:
            table = epoch_table(load_epochs(json_path))
        (out / f"{suite}.md").write_text(table + "\n")
        print(f"\n## {suite}\n\n{table}\n\nwrote {json_path} and {out / (suite + '.md')}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="fastdrop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print build facts: OpenMP, threads, SIMD, RNG, BLAS")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=_cmd_info)

    bench = sub.add_parser("bench", help="kernel and epoch benchmarks (pytest-benchmark JSON) "
                                         "and their ratio tables")
    bench.add_argument("--out", default="fastdrop-results",
                       help="output folder (default: ./fastdrop-results)")
    bench.add_argument("--profile", choices=["quick", "full"], default="full",
                       help="quick: small arrays and data (a smoke run); full: kernels at "
                            "2^16 .. 2^24, epochs on 60000x784 and digits")
    bench.add_argument("--only", choices=["kernels", "epochs"],
                       help="run one of the two benchmark files")
    bench.add_argument("--max-time", type=float, default=0.5,
                       help="seconds of timing per case (default 0.5)")
    bench.add_argument("-k", "--filter", help="pytest -k expression to select cases")
    bench.add_argument("--quiet", action="store_true", help="less pytest output")
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
