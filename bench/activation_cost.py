"""What each hidden activation costs an epoch: fastdrop's MLPClassifier on the first 20000
rows of synthetic-60k (784-512-512-10, batch 128, SGD + Nesterov, float32), each activation
with dropout 0 and 0.5, interleaved rounds; ratios to ReLU without dropout, paired per round,
with the distribution-free interval of their median.

    python -m bench.activation_cost [rounds]
"""
import sys

import numpy as np

import fastdrop
from fastdrop._benchreport import median_ci, round_ratios
from fastdrop.suite.datasets import load_xy

from .mlp_baselines import LR, MOMENTUM
from .timing import interleaved

ACTIVATIONS = ("relu", "identity", "logistic", "tanh")


def main(rounds=9):
    X, y = load_xy("synthetic-60k")
    X, y = X[:20000], y[:20000]
    classes = np.unique(y)
    runners = {}
    for activation in ACTIVATIONS:
        for p in (0.0, 0.5):
            est = fastdrop.MLPClassifier((512, 512), activation=activation, dropout=p,
                                         solver="sgd", learning_rate_init=LR,
                                         momentum=MOMENTUM, batch_size=128, random_state=0)
            runners[(activation, p)] = (lambda e: lambda: e.partial_fit(X, y, classes=classes))(est)
    times = interleaved(runners, int(rounds), settle_s=0.2)
    ref = times[("relu", 0.0)]
    print(f"threads={fastdrop.get_num_threads()}, {int(rounds)} rounds, "
          f"ReLU p=0: {np.median(ref):.3f} s/epoch")
    print("| activation | dropout | s/epoch | x ReLU p=0 | 95% CI |\n|---|---:|---:|---:|---|")
    for (activation, p), ts in times.items():
        ratios = round_ratios(ts, ref)
        lo, hi, _ = median_ci(ratios)
        print(f"| {activation} | {p} | {np.median(ts):.3f} | {np.median(ratios):.3f} "
              f"| {lo:.3f} - {hi:.3f} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
