"""The compiled step loop against the Python loop, fit by fit: time per step of the same
fits (same bits) with the loop and with FASTDROP_COMPILED_STEPS=0, on one thread, over the
networks the study trains (scikit-learn's sets and MNIST-1D, element and batch dropout,
L1 / L2, max-norm, a tanh network) and an MNIST-sized one; on more threads, over networks
whose steps are large enough to use them (above _threading.SERIAL_STEP_WORK). Interleaved
rounds; each line is the median of the per-round ratios with its distribution-free 95%
interval.

    python -m bench.step_loop [ROUNDS] [THREADS]
"""
import os
import sys
import time
import warnings

import numpy as np

import fastdrop
from fastdrop._timing import interleaved
from fastdrop.suite.stats import median_ci, round_ratios


def _digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def _mnist1d():
    from fastdrop.suite.datasets import load_xy
    X, y = load_xy("mnist1d")
    return np.ascontiguousarray(X, dtype=np.float32), y


def _mnist_sized():
    from fastdrop.suite.datasets import load_xy
    X, y = load_xy("synthetic-60k")
    return np.ascontiguousarray(X[:2560], dtype=np.float32), y[:2560]


def _uci():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((246, 6)).astype(np.float32)
    return X, X @ rng.standard_normal(6)


# name -> (data, estimator parameters, epochs)
CASES = {
    "246x6 regression, h50 b128": (_uci, dict(hidden_layer_sizes=(50,), batch_size=128), 60),
    "digits h100 b200": (_digits, dict(hidden_layer_sizes=(100,)), 10),
    "digits h100, dropout 0.5": (_digits, dict(hidden_layer_sizes=(100,), dropout=0.5), 10),
    "digits h100, batch dropout 0.5": (_digits, dict(hidden_layer_sizes=(100,), dropout=0.5,
                                                     dropout_mode="batch"), 10),
    "digits h100, L2 + L1": (_digits, dict(hidden_layer_sizes=(100,), alpha=1e-3, l1=1e-4), 10),
    "digits h100, dropout + max-norm, sgd": (_digits, dict(hidden_layer_sizes=(100,),
                                                           dropout=0.5, max_norm=3.0,
                                                           solver="sgd"), 10),
    "digits h100, tanh": (_digits, dict(hidden_layer_sizes=(100,), activation="tanh"), 10),
    "mnist1d h(256, 256) b64, dropout 0.5": (_mnist1d, dict(hidden_layer_sizes=(256, 256),
                                                            batch_size=64, dropout=0.5), 2),
    "mnist1d, batch dropout 0.5": (_mnist1d, dict(hidden_layer_sizes=(256, 256), batch_size=64,
                                                  dropout=0.5, dropout_mode="batch"), 2),
    "784-512-512 b128": (_mnist_sized, dict(hidden_layer_sizes=(512, 512), batch_size=128,
                                            solver="sgd"), 1),
}
# on several threads: steps above SERIAL_STEP_WORK (the smaller ones run on one thread)
THREADED_CASES = {
    "digits h(512, 512) b200": (_digits, dict(hidden_layer_sizes=(512, 512)), 4),
    "digits h(512, 512), dropout 0.5": (_digits, dict(hidden_layer_sizes=(512, 512),
                                                      dropout=0.5), 4),
    "digits h(512, 512), batch dropout 0.5": (_digits, dict(hidden_layer_sizes=(512, 512),
                                                            dropout=0.5,
                                                            dropout_mode="batch"), 4),
    "mnist1d h(256, 256) b128, dropout 0.5": (_mnist1d, dict(hidden_layer_sizes=(256, 256),
                                                             batch_size=128, dropout=0.5), 1),
    "784-512-512 b128": CASES["784-512-512 b128"],
    "784-512-512 b128, dropout 0.5": (_mnist_sized, dict(hidden_layer_sizes=(512, 512),
                                                         batch_size=128, solver="sgd",
                                                         dropout=0.5), 1),
}


def _runner(loader, params, epochs, compiled, threads):
    X, y = loader()
    cls = fastdrop.MLPRegressor if y.dtype.kind == "f" else fastdrop.MLPClassifier

    def run():
        os.environ["FASTDROP_COMPILED_STEPS"] = "1" if compiled else "0"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(**params, max_iter=epochs, tol=0.0, n_iter_no_change=10**6, random_state=0,
                n_threads=threads).fit(X, y)
    return run, epochs * -(-X.shape[0] // params.get("batch_size", min(200, X.shape[0])))


def main(rounds=9, threads=1):
    print(f"fastdrop {fastdrop.__version__}, {rounds} rounds, {threads} thread(s), "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    print("| fit | compiled us/step | Python loop us/step | compiled x Python (paired) "
          "| 95% CI |")
    print("|---|---:|---:|---:|---|")
    for name, (loader, params, epochs) in (CASES if threads == 1 else THREADED_CASES).items():
        (fast, steps), (slow, _) = (_runner(loader, params, epochs, c, threads)
                                    for c in (True, False))
        times = interleaved({"compiled": fast, "python": slow}, rounds)
        ratios = round_ratios(times["compiled"], times["python"])
        lo, hi, _ = median_ci(ratios)
        print(f"| {name} | {np.median(times['compiled']) / steps * 1e6:.0f} "
              f"| {np.median(times['python']) / steps * 1e6:.0f} | {np.median(ratios):.2f} "
              f"| {lo:.2f} - {hi:.2f} |", flush=True)
    os.environ.pop("FASTDROP_COMPILED_STEPS", None)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
