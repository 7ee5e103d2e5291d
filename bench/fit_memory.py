"""Peak resident memory of one training epoch against the arrays it must hold.

    python -m bench.fit_memory [--rows 60000]

Each library trains one epoch (784-512-512-10, batch 128, SGD + Nesterov, float32; the
epoch benchmark's implementations, bench/mlp_baselines.py) in a process of its own, on the
synthetic-60k rows saved as a C-contiguous float32 .npy and loaded either into memory or as
an ``np.memmap``. The child measures its resident set before loading X (imports done), then
resets the kernel's peak counter (``/proc/self/clear_refs``) after loading X and building the
model, trains, and reads the peak (``VmHWM``): "used" is that peak minus the resident set
before X. "must hold" is X, y, the weights and biases, one velocity per parameter (SGD
momentum) and one batch of activations and their gradients. Linux only.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

IMPLS = ("fastdrop", "fastdrop-early-stopping", "sklearn", "torch")
HIDDEN, BATCH = (512, 512), 128


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _must_hold(X, y, n_classes):
    sizes = [X.shape[1], *HIDDEN, n_classes]
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    activations = 2 * BATCH * sum(sizes)  # each layer's output and its gradient
    return X.nbytes + y.nbytes + 4 * (2 * params + activations)


class _EarlyStoppingEpoch:
    """fastdrop's fit with early_stopping=True and no X_val: one epoch on the 90% it keeps
    after holding out validation_fraction=0.1 (copied: the validation rows only)."""

    def __init__(self, X, y, n_threads):
        import fastdrop
        self.X, self.y = X, y
        self.est = fastdrop.MLPClassifier(HIDDEN, solver="sgd", learning_rate_init=0.01,
                                          batch_size=BATCH, early_stopping=True, max_iter=1,
                                          n_threads=n_threads, random_state=0)

    def epoch(self):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one epoch: not converged, by design
            self.est.fit(self.X, self.y)


def child(impl, path, source, n_threads):
    import fastdrop  # noqa: F401  (imports first: they are not the fit's memory)
    from .mlp_baselines import EPOCH_IMPLEMENTATIONS
    if impl == "torch":
        import torch  # noqa: F401
    before = _status_kib("VmRSS")
    X = np.load(path, mmap_mode="r" if source == "memmap" else None)
    y = np.load(os.path.join(os.path.dirname(path), "y.npy"))
    runner = (_EarlyStoppingEpoch(X, y, n_threads) if impl == "fastdrop-early-stopping"
              else EPOCH_IMPLEMENTATIONS[impl](X, y, HIDDEN, 0.0, BATCH, n_threads))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) restarts from the current resident set
    runner.epoch()
    peak = _status_kib("VmHWM")
    print(json.dumps({"impl": impl, "source": source, "used": (peak - before) * 1024,
                      "must_hold": _must_hold(X, y, int(y.max()) + 1),
                      "X": X.nbytes}))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--child", nargs=3, metavar=("IMPL", "PATH", "SOURCE"))
    args = parser.parse_args(argv)
    import fastdrop
    threads = args.threads or fastdrop.get_num_threads()
    if args.child:
        return child(*args.child, threads)
    from fastdrop.suite.datasets import load_xy
    X, y = load_xy("synthetic-60k")
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "X.npy")
    np.save(path, np.ascontiguousarray(X[:args.rows], dtype=np.float32))
    np.save(os.path.join(tmp, "y.npy"), np.asarray(y[:args.rows]))
    print(f"{args.rows} rows x {X.shape[1]} float32, {threads} threads, one epoch")
    print("| library | X as | used MiB | must hold MiB | used / must hold |")
    print("|---|---|---:|---:|---:|")
    for source in ("array", "memmap"):
        for impl in IMPLS:
            out = subprocess.run([sys.executable, "-m", "bench.fit_memory", "--threads",
                                  str(threads), "--child", impl, path, source],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"| {impl} | {source} | failed: {out.stderr.strip().splitlines()[-1]} |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {impl} | {source} | {r['used'] / 2**20:.0f} | "
                  f"{r['must_hold'] / 2**20:.0f} | {r['used'] / r['must_hold']:.2f} |")


if __name__ == "__main__":
    main()
