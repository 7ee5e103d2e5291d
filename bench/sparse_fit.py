"""`python -m bench.sparse_fit [rounds] [--dense]`: one training epoch on a TF-IDF-like sparse matrix
(20000 x 50000 CSR, 0.1% density, 10 classes), fastdrop (float32, X never densified)
against scikit-learn's MLPClassifier on the same CSR input, each round in a process of its
own per library (so each peak resident memory is its own), the libraries alternating; the
per-round ratio of epoch times with its median's interval, and each peak against the dense
matrix's size; ``--dense`` adds fastdrop on the densified matrix (3.8 GB of float32)
(docs/bench/sparse-2core-amd/)."""
import json
import resource
import subprocess
import sys
import time

import numpy as np

ROWS, COLS, DENSITY, CLASSES, HIDDEN = 20000, 50000, 0.001, 10, (100,)


def _data():
    from scipy import sparse
    # positions drawn with replacement (scipy.sparse.random draws a permutation of all
    # ROWS * COLS positions: 8 GB of indices), TF-IDF-like positive values
    rng = np.random.default_rng(0)
    nnz = int(ROWS * COLS * DENSITY)
    X = sparse.csr_matrix((rng.random(nnz, dtype=np.float32),
                           (rng.integers(0, ROWS, nnz), rng.integers(0, COLS, nnz))),
                          shape=(ROWS, COLS))
    w = np.random.default_rng(0).standard_normal((COLS, CLASSES)).astype(np.float32)
    return X, np.argmax(X @ w, axis=1)  # a learnable labelling


def _one(library):
    import warnings
    warnings.simplefilter("ignore")
    X, y = _data()
    if library == "fastdrop-dense":  # the alternative the sparse path saves: densify X
        X = X.toarray()
    if library.startswith("fastdrop"):
        from fastdrop import MLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier
    est = MLPClassifier(HIDDEN, random_state=0)
    est.partial_fit(X, y, classes=np.arange(CLASSES))  # the first epoch allocates
    start = time.perf_counter()
    est.partial_fit(X, y)
    epoch = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"library": library, "epoch": epoch, "peak_bytes": peak,
                      "accuracy": float(est.score(X, y))}))


def main(rounds, dense=False):
    from fastdrop.suite.stats import median_ci
    results = {"fastdrop": [], "sklearn": []}
    if dense:
        results["fastdrop-dense"] = []
    for r in range(rounds):
        for library in (list(results) if r % 2 == 0 else list(results)[::-1]):
            out = subprocess.run([sys.executable, "-m", "bench.sparse_fit", "--one", library],
                                 capture_output=True, text=True, check=True)
            results[library].append(json.loads(out.stdout.strip().splitlines()[-1]))
    ratio = np.array([f["epoch"] / s["epoch"] for f, s in zip(results["fastdrop"],
                                                              results["sklearn"])])
    lo, hi, coverage = median_ci(ratio)
    dense = ROWS * COLS * 4
    print(f"{ROWS} x {COLS} CSR, density {DENSITY}, hidden {HIDDEN}, {rounds} rounds")
    for library, runs in results.items():
        print(f"{library}: epoch {np.median([x['epoch'] for x in runs]):.2f} s (median), "
              f"peak RSS {max(x['peak_bytes'] for x in runs) / 2**20:.0f} MiB "
              f"(dense float32 X alone: {dense / 2**20:.0f} MiB), training accuracy after 2 "
              f"epochs {np.median([x['accuracy'] for x in runs]):.3f}")
    print(f"fastdrop epoch / scikit-learn epoch: {np.median(ratio):.3f} [{lo:.3f}, {hi:.3f}] "
          f"(coverage {coverage:.3f})")
    if dense:
        ratio = np.array([f["epoch"] / d["epoch"] for f, d in zip(results["fastdrop"],
                                                                  results["fastdrop-dense"])])
        lo, hi, coverage = median_ci(ratio)
        print(f"fastdrop sparse epoch / fastdrop on the densified X: {np.median(ratio):.3f} "
              f"[{lo:.3f}, {hi:.3f}] (coverage {coverage:.3f})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        _one(sys.argv[2])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 5, dense="--dense" in sys.argv)
