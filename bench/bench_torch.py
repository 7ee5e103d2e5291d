"""fastdrop.torch against torch's own dropout, three parts:

* ``op``: forward + backward (``torch.autograd.grad``) of dropout 0.5 on a 2^24-element tensor,
  float32 and bfloat16, fastdrop (mask stored or recomputed) vs ``torch.nn.functional.dropout``,
  with ``x.clone()`` as the memory reference (a fresh 64 MiB tensor: allocation and first touch
  included, as every out-of-place op pays them);
* ``loop``: a torch training epoch (784-512-512-10 ReLU MLP, batch 128, SGD + Nesterov) on the
  first 20000 rows of the study's synthetic-60k set, without dropout, with ``nn.Dropout(0.5)``,
  and with ``fastdrop.torch.replace_dropout`` (mask stored, recomputed, or the kernel on one
  thread while torch uses all);
* ``accuracy``: the same model on digits with ``nn.Dropout`` and with fastdrop's, 3 seeds.

Run:  python -m pytest bench/bench_torch.py --benchmark-json=torch.json
Every timed part runs its cases once per round in a rotated order (fastdrop/_timing.py), so all
ratios compare cases timed under the same load; ``fastdrop bench`` reports them paired per round.
"""
import os

import numpy as np
import pytest

import fastdrop
from fastdrop.suite.datasets import load_xy

from .mlp_baselines import EPOCH_IMPLEMENTATIONS
from fastdrop._timing import benchmark_rounds

torch = pytest.importorskip("torch")
fd_torch = pytest.importorskip("fastdrop.torch")

QUICK = os.environ.get("FASTDROP_BENCH_PROFILE") == "quick"
_ROUNDS = int(os.environ.get("FASTDROP_BENCH_ROUNDS", 0))
ALL = fastdrop.get_num_threads()
THREADS = sorted({int(t) for t in os.environ["FASTDROP_BENCH_THREADS"].split(",")}
                 if os.environ.get("FASTDROP_BENCH_THREADS") else {1, ALL})
SETTLE_S = float(os.environ.get("FASTDROP_BENCH_SETTLE", 0.0 if QUICK else 0.2))
OP_SIZE = 2**16 if QUICK else 2**24
LOOP_ROWS = 2000 if QUICK else 20000
P = 0.5


def _forward_backward(fn, dtype):
    x = torch.randn(OP_SIZE).to(dtype).requires_grad_()
    g = torch.randn(OP_SIZE).to(dtype)

    def run():
        torch.autograd.grad(fn(x), x, g)
    return run


OP_CASES = {  # (name, dtype): forward + backward of dropout P
    ("torch", "float32"): lambda: _forward_backward(
        lambda t: torch.nn.functional.dropout(t, P), torch.float32),
    ("fastdrop", "float32"): lambda: _forward_backward(
        lambda t: fd_torch.dropout(t, P), torch.float32),
    ("fastdrop-recompute", "float32"): lambda: _forward_backward(
        lambda t: fd_torch.dropout(t, P, store_mask=False), torch.float32),
    ("torch", "bfloat16"): lambda: _forward_backward(
        lambda t: torch.nn.functional.dropout(t, P), torch.bfloat16),
    ("fastdrop", "bfloat16"): lambda: _forward_backward(
        lambda t: fd_torch.dropout(t, P), torch.bfloat16),
    ("clone", "float32"): lambda: (lambda x: lambda: x.clone())(torch.randn(OP_SIZE)),
}
LOOP_CASES = [("torch", 0.0), ("torch", P), ("torch+fastdrop", P),
              ("torch+fastdrop-recompute", P), ("torch+fastdrop-1thread", P)]


def _record(benchmark, part, n_threads, cases, times, **info):
    build = fastdrop.build_info()
    benchmark.extra_info.update(
        part=part, n_threads=n_threads, cases=[list(c) for c in cases], times=times,
        torch_version=torch.__version__, simd=build["simd"], blas_kernel=build["blas_kernel"],
        thp_mem_alloc=os.environ.get("THP_MEM_ALLOC_ENABLE", ""), **info)


@pytest.mark.parametrize("n_threads", THREADS)
def test_op(benchmark, n_threads):
    torch.set_num_threads(n_threads)
    cases = list(OP_CASES)
    runners = [OP_CASES[c]() for c in cases]
    benchmark.group = f"torch op threads={n_threads}"
    times = benchmark_rounds(benchmark, runners, _ROUNDS or (3 if QUICK else 15), 0.0)
    _record(benchmark, "op", n_threads, cases, times, elements=OP_SIZE)


@pytest.mark.parametrize("n_threads", THREADS)
def test_loop(benchmark, n_threads):
    X, y = load_xy("synthetic-5000x784x10" if QUICK else "synthetic-60k")
    X, y = X[:LOOP_ROWS], y[:LOOP_ROWS]
    runners = [EPOCH_IMPLEMENTATIONS[impl](X, y, (512, 512), p, 128, n_threads)
               for impl, p in LOOP_CASES]
    benchmark.group = f"torch loop threads={n_threads}"
    times = benchmark_rounds(benchmark, [r.epoch for r in runners],
                             _ROUNDS or (1 if QUICK else 9), SETTLE_S)
    _record(benchmark, "loop", n_threads, LOOP_CASES, times, n_samples=len(y),
            hidden=[512, 512], batch_size=128)


def _digits_accuracy(swap, seed, epochs):
    """Test accuracy of the 64-512-512-10 model with dropout 0.5 on digits after ``epochs``
    epochs of SGD + Nesterov; ``swap`` replaces its nn.Dropout by fastdrop's. Split, weights
    and batch order depend on ``seed`` only, so the two arms differ in their masks alone."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split((X / 16).astype(np.float32), y, test_size=0.3,
                                              stratify=y, random_state=seed)
    X_tr, y_tr, X_te = torch.from_numpy(X_tr), torch.from_numpy(y_tr), torch.from_numpy(X_te)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 512), torch.nn.ReLU(), torch.nn.Dropout(P),
        torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Dropout(P),
        torch.nn.Linear(512, 10))
    if swap:
        fd_torch.replace_dropout(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    for _ in range(epochs):
        perm = torch.randperm(len(y_tr))
        for start in range(0, len(y_tr), 128):
            idx = perm[start:start + 128]
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(X_tr[idx]), y_tr[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return float((model(X_te).argmax(1).numpy() == y_te).mean())


def test_accuracy(benchmark):
    seeds, epochs = (0, 1, 2), (3 if QUICK else 60)
    accuracy = {}

    def run():
        for name, swap in (("torch", False), ("torch+fastdrop", True)):
            accuracy[name] = [_digits_accuracy(swap, s, epochs) for s in seeds]

    benchmark.group = "torch accuracy digits"
    benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(part="accuracy", seeds=list(seeds), epochs=epochs,
                                accuracy=accuracy, torch_version=torch.__version__)
