"""Where an epoch's time goes beyond its matrix products: each piece of fastdrop's training
step timed alone on the epoch benchmark's shapes (784-512-512-10, batch 128, 469 batches of
synthetic-60k, float32), at all threads on fastdrop's pool, as milliseconds per epoch:

* the shuffled batch gather (``take_rows``) against slicing rows in order;
* the fused bias + ReLU pass and the gate + column-sum pass of a 128x512 layer;
* the products in fastdrop's unit-major layout (``a @ W.T``, ``dz.T @ a``, ``dz @ W``)
  against the floor's (``a @ W``, ``a.T @ dz``, ``dz @ W.T``);
* the weight gradients and SGD steps of a batch, whole layers against row blocks of 64 and
  128 units stepped as soon as they are computed (the blocked update the MLP issue asks
  about; same bits for the gradient rows, checked).

    python -m bench.epoch_breakdown
"""
import time

import numpy as np

import fastdrop
from fastdrop import _kernels, _nn_kernels
from fastdrop._threading import thread_budget
from fastdrop.optim import STEP_PARAMS
from fastdrop.suite.datasets import load_xy

SIZES, BATCH, BATCHES = [784, 512, 512, 10], 128, 469


def per_epoch_ms(fn, reps=BATCHES):
    """Milliseconds for ``reps`` calls ``fn(i)``, after 20 warm-up calls."""
    for i in range(20):
        fn(i)
    t0 = time.perf_counter()
    for i in range(reps):
        fn(i)
    return (time.perf_counter() - t0) * 1e3


def _element_wise(X, k):
    order = np.random.RandomState(0).permutation(X.shape[0])
    xb = np.empty((BATCH, SIZES[0]), np.float32)
    z = np.random.rand(BATCH, 512).astype(np.float32)
    bias, colsum, no_bits = np.zeros(512, np.float32), np.empty(512, np.float32), np.empty(0, np.uint64)
    rows = lambda i: order[(i % BATCHES) * BATCH:(i % BATCHES + 1) * BATCH]  # noqa: E731
    return {
        "gather of a shuffled batch": per_epoch_ms(
            lambda i: _nn_kernels.take_rows(X, rows(i), xb, k)),
        "copy of a batch in order": per_epoch_ms(
            lambda i: np.copyto(xb, X[(i % 400) * BATCH:(i % 400 + 1) * BATCH])),
        "bias + ReLU, one 128x512 layer": per_epoch_ms(
            lambda i: _kernels.forward(z.reshape(-1), z.reshape(-1), no_bits, seed=0, step=0,
                                       threshold=65536, scale=1.0, bias=bias, relu=True,
                                       n_threads=k)),
        "gate + column sums, one 128x512 layer": per_epoch_ms(
            lambda i: _kernels.gate_colsum(z, z, z, 1.0, colsum, k)),
    }


def _layouts():
    rng = np.random.default_rng(0)
    w_in = [rng.standard_normal((a, b)).astype(np.float32) for a, b in zip(SIZES[:-1], SIZES[1:])]
    w_out = [np.ascontiguousarray(w.T) for w in w_in]
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    acts = [np.empty((BATCH, s), np.float32) for s in SIZES[1:]]
    grads = [np.empty((BATCH, s), np.float32) for s in SIZES[1:]]
    g_in, g_out = [np.empty_like(w) for w in w_in], [np.empty_like(w) for w in w_out]

    def step(unit_major):
        a, inputs = x, [x]
        for w_i, w_o, out in zip(w_in, w_out, acts):
            np.matmul(a, w_o.T if unit_major else w_i, out=out)
            inputs.append(out)
            a = out
        d = acts[-1]
        for l in range(len(w_in) - 1, -1, -1):
            if unit_major:
                np.matmul(d.T, inputs[l], out=g_out[l])
            else:
                np.matmul(inputs[l].T, d, out=g_in[l])
            if l:
                np.matmul(d, w_out[l] if unit_major else w_in[l].T, out=grads[l - 1])
                d = grads[l - 1]
    return {"products, the floor's layout": per_epoch_ms(lambda i: step(False)),
            "products, unit-major (fastdrop's)": per_epoch_ms(lambda i: step(True))}


def _blocked_update(k):
    rng = np.random.default_rng(0)
    shapes = list(zip(SIZES[1:], SIZES[:-1]))  # (out, in)
    W = [rng.standard_normal(s).astype(np.float32) * 0.05 for s in shapes]
    V, G = [np.zeros_like(w) for w in W], [np.empty_like(w) for w in W]
    dz = [rng.standard_normal((BATCH, s[0])).astype(np.float32) for s in shapes]
    a = [rng.standard_normal((BATCH, s[1])).astype(np.float32) for s in shapes]
    hp = np.zeros(1, STEP_PARAMS)  # SGD with Nesterov momentum, as the epoch benchmark
    hp["lr"], hp["momentum"], hp["nesterov"] = 0.01, 0.9, 1.0
    hp, none = hp.view(np.float64), np.empty(0, np.float32)
    block = np.empty(128 * max(s[1] for s in shapes), np.float32)

    def whole(i):
        for w, v, g, d, x in zip(W, V, G, dz, a):
            np.matmul(d.T, x, out=g)
            _nn_kernels.optimizer_step(_nn_kernels.SGD, w.reshape(-1), g.reshape(-1),
                                       v.reshape(-1), none, hp, k)

    def blocked(rows):
        def run(i):
            for w, v, d, x in zip(W, V, dz, a):
                for r0 in range(0, w.shape[0], rows):
                    r1 = min(w.shape[0], r0 + rows)
                    g = block[:(r1 - r0) * w.shape[1]].reshape(r1 - r0, w.shape[1])
                    np.matmul(d[:, r0:r1].T, x, out=g)
                    _nn_kernels.optimizer_step(_nn_kernels.SGD, w[r0:r1].reshape(-1),
                                               g.reshape(-1), v[r0:r1].reshape(-1), none, hp, k)
        return run
    same = np.array_equal(dz[0].T @ a[0], np.concatenate(
        [dz[0][:, r:r + 64].T @ a[0] for r in range(0, SIZES[1], 64)]))
    return {"gradients + SGD steps, whole layers": per_epoch_ms(whole),
            "same, 64-unit row blocks": per_epoch_ms(blocked(64)),
            "same, 128-unit row blocks": per_epoch_ms(blocked(128)),
            "(blocked gradient rows bit-identical)": same}


def main():
    X, _ = load_xy("synthetic-60k")
    X = np.ascontiguousarray(X, dtype=np.float32)
    n_threads = fastdrop.get_num_threads()
    with thread_budget(n_threads) as k:
        results = {**_element_wise(X, k), **_layouts(), **_blocked_update(k)}
    print(f"{n_threads} threads, {BATCHES} batches of {BATCH}: milliseconds per epoch")
    print("| piece | ms per epoch |\n|---|---:|")
    for name, value in results.items():
        print(f"| {name} | {value if isinstance(value, bool) else f'{value:.0f}'} |")


if __name__ == "__main__":
    main()
