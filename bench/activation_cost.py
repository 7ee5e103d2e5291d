"""What each hidden activation and each kind of noise costs an epoch: fastdrop's
MLPClassifier on the first 20000 rows of synthetic-60k (784-512-512-10, batch 128, SGD +
Nesterov, float32), interleaved rounds; ratios to ReLU without dropout, paired per round,
with the distribution-free interval of their median.

    python -m bench.activation_cost [rounds]
"""
import sys

import numpy as np

import fastdrop
from fastdrop._benchreport import round_ratios
from fastdrop.suite.stats import median_ci
from fastdrop.suite.datasets import load_xy

from .mlp_baselines import LR, MOMENTUM
from fastdrop._timing import interleaved

ACTIVATIONS = ("relu", "identity", "logistic", "tanh", "selu")
# The rest of the dropout family, each at a typical rate: (label, estimator parameters).
NOISE = (("gaussian 0.5", dict(dropout=0.5, dropout_kind="gaussian")),
         ("alpha 0.1 (selu)", dict(dropout=0.1, dropout_kind="alpha", activation="selu",
                                   init="lecun")),
         ("dropconnect 0.5", dict(dropconnect=0.5)))


def _cases():
    cases = {(a, f"bernoulli {p}"): dict(activation=a, dropout=p)
             for a in ACTIVATIONS for p in (0.0, 0.5)}
    for label, params in NOISE:
        cases[(params.get("activation", "relu"), label)] = params
    return cases


def main(rounds=9):
    X, y = load_xy("synthetic-60k")
    X, y = X[:20000], y[:20000]
    classes = np.unique(y)
    runners = {}
    for case, params in _cases().items():
        est = fastdrop.MLPClassifier((512, 512), solver="sgd", learning_rate_init=LR,
                                     momentum=MOMENTUM, batch_size=128, random_state=0, **params)
        runners[case] = (lambda e: lambda: e.partial_fit(X, y, classes=classes))(est)
    times = interleaved(runners, int(rounds), settle_s=0.2)
    ref = times[("relu", "bernoulli 0.0")]
    print(f"threads={fastdrop.get_num_threads()}, {int(rounds)} rounds, "
          f"ReLU p=0: {np.median(ref):.3f} s/epoch")
    print("| activation | noise | s/epoch | x ReLU p=0 | 95% CI |\n|---|---|---:|---:|---|")
    for (activation, noise), ts in times.items():
        ratios = round_ratios(ts, ref)
        lo, hi, _ = median_ci(ratios)
        print(f"| {activation} | {noise} | {np.median(ts):.3f} | {np.median(ratios):.3f} "
              f"| {lo:.3f} - {hi:.3f} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
