"""Prediction: fastdrop's predict_proba against scikit-learn's MLPClassifier and torch in
``inference_mode``, all with the same weights (784-512-512-10 ReLU, softmax, float32,
trained one epoch on synthetic-60k by fastdrop and copied into the others).

* ``throughput``: predict_proba of 10000 rows (rows/s);
* ``latency``: one row, the mean of CALLS calls per round;
* ``batch64``: 64 rows, the mean of CALLS // 4 calls per round;

and, as the floor of every part, the three matrix products alone (numpy ``matmul`` into
preallocated outputs: no bias, activation or softmax).

scikit-learn runs twice: on the float32 weights and float32 rows (the same arithmetic as
fastdrop's) and on float64 copies, which is what it computes when it is fitted on a float64
array, numpy's default. Every round runs each case once, in a rotated order, so the ratios
compare cases timed under the same load; ``fastdrop bench`` reports them paired per round.

Run:  python -m pytest bench/bench_predict.py --benchmark-json=predict.json
"""
import contextlib
import os
import warnings

import numpy as np
import pytest

import fastdrop
from fastdrop.suite.datasets import load_xy

from .mlp_baselines import numpy_own_threads
from fastdrop._timing import benchmark_rounds

QUICK = os.environ.get("FASTDROP_BENCH_PROFILE") == "quick"
_ROUNDS = int(os.environ.get("FASTDROP_BENCH_ROUNDS", 0))
ALL = fastdrop.get_num_threads()
THREADS = sorted({1, ALL})
ROWS = 2000 if QUICK else 10000
CALLS = 40 if QUICK else 400
HIDDEN = (512, 512)
# Untimed pause between cases: OpenBLAS's own workers (scikit-learn's products) spin about
# 0.1 s after their last job, and the next case must not share the cores with them.
SETTLE_S = float(os.environ.get("FASTDROP_BENCH_SETTLE", 0.15))


def _models(X, y, n_threads):
    """{impl: (predict_proba callable, the context its calls run in)}, all with fastdrop's
    weights after one epoch."""
    fd = fastdrop.MLPClassifier(HIDDEN, solver="sgd", learning_rate_init=0.01, batch_size=128,
                                n_threads=n_threads, random_state=0)
    fd.partial_fit(X, y, classes=np.unique(y))
    models = {"fastdrop": (fd.predict_proba, contextlib.nullcontext)}
    # numpy's BLAS threaded as without fastdrop (mlp_baselines.numpy_own_threads)
    own = lambda: numpy_own_threads(n_threads)  # noqa: E731
    models.update({name: (fn, own) for name, fn in _sklearn(fd, X, y).items()})
    models["gemm-floor"] = (_gemm_floor(fd, X.shape[0]), own)
    try:
        models["torch"] = (_torch(fd, n_threads), contextlib.nullcontext)
    except ImportError:  # a baseline, not a dependency
        pass
    return models


def _gemm_floor(fd, max_rows):
    weights = [w.T for w in fd._net.weights]
    outs = [np.empty((max_rows, w.shape[1]), np.float32) for w in weights]

    def products(Xb):
        a = Xb
        for w, out in zip(weights, outs):
            a = np.matmul(a, w, out=out[:Xb.shape[0]])
        return a
    return products


def _sklearn(fd, X, y):
    from sklearn.neural_network import MLPClassifier

    out = {}
    for name, dtype in (("sklearn-float32", np.float32), ("sklearn-float64", np.float64)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one iteration: not converged, by design
            est = MLPClassifier(HIDDEN, max_iter=1, random_state=0).fit(
                X[:200].astype(dtype), y[:200])
        est.coefs_ = [c.astype(dtype) for c in fd.coefs_]
        est.intercepts_ = [b.astype(dtype) for b in fd.intercepts_]

        out[name] = (lambda est, dtype: lambda Xb: est.predict_proba(
            Xb.astype(dtype, copy=False)))(est, dtype)
    return out


def _torch(fd, n_threads):
    import torch

    torch.set_num_threads(n_threads)
    sizes = [fd.n_features_in_, *HIDDEN, len(fd.classes_)]
    layers = []
    for fan_in, fan_out, w, b in zip(sizes[:-1], sizes[1:], fd._net.weights,
                                     fd._net.intercepts):
        lin = torch.nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).eval()

    def predict(Xb):
        with torch.inference_mode():
            return torch.softmax(model(torch.from_numpy(Xb)), dim=1).numpy()
    return predict


def _repeat(model, Xb, calls):
    fn, context = model
    def run():
        with context():
            for _ in range(calls):
                fn(Xb)
    return run


@pytest.mark.parametrize("n_threads", THREADS)
def test_predict(benchmark, n_threads):
    X, y = load_xy("synthetic-5000x784x10" if QUICK else "synthetic-60k")
    X, y = np.ascontiguousarray(X[:ROWS], dtype=np.float32), y[:ROWS]
    models = _models(X, y, n_threads)
    reference = models["fastdrop"][0](X[:100])
    for name, (fn, context) in models.items():  # the same network everywhere
        with context():
            if name != "gemm-floor":
                np.testing.assert_allclose(fn(X[:100]), reference, atol=1e-5, err_msg=name)
    parts = {"throughput": (X, 1), "latency": (X[:1], CALLS), "batch64": (X[:64], CALLS // 4)}
    cases = [(part, impl) for part in parts for impl in models]
    runners = [_repeat(models[impl], *parts[part]) for part, impl in cases]
    benchmark.group = f"predict threads={n_threads}"
    times = benchmark_rounds(benchmark, runners, _ROUNDS or (3 if QUICK else 15), SETTLE_S)
    build = fastdrop.build_info()
    per_call = [[t / parts[part][1] for t in ts] for (part, _), ts in zip(cases, times)]
    benchmark.extra_info.update(
        n_threads=n_threads, cases=[list(c) for c in cases], times=per_call,
        rows={part: int(Xb.shape[0]) for part, (Xb, _) in parts.items()},
        simd=build["simd"], blas_kernel=build["blas_kernel"])
