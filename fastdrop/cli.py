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


def build_parser():
    parser = argparse.ArgumentParser(prog="fastdrop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print build facts: OpenMP, threads, SIMD, RNG, BLAS")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
