"""The UCI regression benchmark protocol of Hernández-Lobato & Adams (2015) as Gal &
Ghahramani (2016) ran it for MC dropout: `fastdrop uncertainty --data DIR`.

DIR has their layout: ``data.txt`` (whitespace-separated numbers, one row per sample),
``index_features.txt`` (the feature columns), ``index_target.txt`` (the target column),
``index_train_K.txt`` / ``index_test_K.txt`` for K = 0, 1, ... (the row indices of each
split), and optionally ``dropout_rates.txt``, ``tau_values.txt``, ``n_hidden.txt``,
``n_epochs.txt`` (default rates 0.005, 0.01, 0.05, 0.1; tau chosen by a continuous search
when no grid is given; 50 hidden units; 40 epochs). Indices are 0-based, as in their files.

Per split: inputs and target standardized on the training rows; the training rows cut 80/20
in their stored order (as their code does); for each rate, one network (one hidden layer of
ReLU units, dropout at that rate on the input and the hidden layer) fitted on the 80% and
scored on the 20% by the log-likelihood of its MC-dropout mixture, in the target's units,
for each tau of the grid (or the best tau); the best (rate, tau) refitted on all the training
rows and scored on the test rows: RMSE of the MC mean and test log-likelihood. One
difference: their weight decay depended on tau (a fit per pair), ours is the estimator's
default, so one fit per rate serves every tau.

Each fit's result is a record in ``--out`` (:class:`ResultStore`: atomic appends), so a run
killed at any moment resumes where it stopped. The table reports mean +- standard error over
the splits, as theirs did.
"""
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .store import ResultStore

DEFAULT_RATES = (0.005, 0.01, 0.05, 0.1)
DEFAULT_HIDDEN, DEFAULT_EPOCHS, BATCH = 50, 40, 128
VALIDATION_SHARE = 0.8  # of each split's training rows, in their stored order


@dataclass
class UCIData:
    X: np.ndarray
    y: np.ndarray
    splits: list            # [(train rows, test rows)]
    rates: tuple
    taus: object            # a tuple of precisions, or None: the best tau by search
    n_hidden: int
    n_epochs: int


def _read(path, what, kind=float):
    try:
        values = np.loadtxt(path, dtype=kind, ndmin=1)
    except OSError:
        raise ValueError(f"{path} is missing: the UCI layout needs {what}") from None
    except ValueError as exc:
        raise ValueError(f"{path} does not parse as {what}: {exc}") from None
    return values


def load_uci(folder):
    """The data, splits and settings of a folder in the UCI benchmark layout."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"--data {folder}: not a folder (expected data.txt, "
                         "index_features.txt, index_target.txt, index_train_K.txt, ...)")
    data = _read(root / "data.txt", "the data matrix, one row per sample")
    data = data.reshape(len(data), -1) if data.ndim == 1 else data
    features = _read(root / "index_features.txt", "the feature column indices", int)
    target = int(_read(root / "index_target.txt", "the target column index", int)[0])
    for name, cols in (("index_features.txt", features), ("index_target.txt", [target])):
        if np.any(np.asarray(cols) < 0) or np.any(np.asarray(cols) >= data.shape[1]):
            raise ValueError(f"{root / name}: column indices must lie in [0, "
                             f"{data.shape[1]}), got {list(np.atleast_1d(cols))}")
    splits, k = [], 0
    while (root / f"index_train_{k}.txt").exists():
        train = _read(root / f"index_train_{k}.txt", "row indices", int)
        test = _read(root / f"index_test_{k}.txt", "row indices", int)
        for name, rows in ((f"index_train_{k}.txt", train), (f"index_test_{k}.txt", test)):
            if rows.size == 0 or rows.min() < 0 or rows.max() >= data.shape[0]:
                raise ValueError(f"{root / name}: row indices must lie in [0, "
                                 f"{data.shape[0]}) and be at least one")
        splits.append((train, test))
        k += 1
    if not splits:
        raise ValueError(f"{root}: no index_train_0.txt / index_test_0.txt (the splits)")
    optional = {name: (_read(root / f"{name}.txt", name) if (root / f"{name}.txt").exists()
                       else None)
                for name in ("dropout_rates", "tau_values", "n_hidden", "n_epochs")}
    rates = tuple(float(r) for r in (optional["dropout_rates"] if optional["dropout_rates"]
                                     is not None else DEFAULT_RATES))
    if not all(0 <= r < 1 for r in rates):
        raise ValueError(f"{root / 'dropout_rates.txt'}: rates must be in [0, 1), got {rates}")
    taus = (None if optional["tau_values"] is None
            else tuple(float(t) for t in optional["tau_values"]))
    if taus is not None and not all(t > 0 for t in taus):
        raise ValueError(f"{root / 'tau_values.txt'}: precisions must be > 0, got {taus}")
    n_hidden = (int(optional["n_hidden"][0]) if optional["n_hidden"] is not None
                else DEFAULT_HIDDEN)
    n_epochs = (int(optional["n_epochs"][0]) if optional["n_epochs"] is not None
                else DEFAULT_EPOCHS)
    return UCIData(data[:, features], data[:, target], splits, rates, taus, n_hidden,
                   n_epochs)


class Standardized:
    """Inputs and target standardized on a split's training rows (a constant column keeps
    scale 1); the study's regression sets (predictive.RegressionSplit) use it too."""

    def __init__(self, X, y):
        self.x_mean, self.x_std = X.mean(axis=0), _scale(X.std(axis=0))
        self.y_mean, self.y_std = float(y.mean()), float(_scale(np.array([y.std()]))[0])

    def x(self, X):
        return (X - self.x_mean) / self.x_std

    def y(self, y):
        return (y - self.y_mean) / self.y_std


def _scale(s):
    return np.where(s > 0, s, 1.0)


def _mc_passes(X_tr, y_tr, X_eval, rate, data, seed, mc_samples):
    """Fit on (X_tr, y_tr) at ``rate`` and return T MC-dropout passes on X_eval, in the
    target's units."""
    from ..estimator import MLPRegressor

    scale = Standardized(X_tr, y_tr)
    est = MLPRegressor((data.n_hidden,), dropout=rate, input_dropout=rate,
                       max_iter=data.n_epochs, batch_size=min(BATCH, len(y_tr)),
                       random_state=seed, learning_rate_init=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fixed number of epochs, as the protocol has
        est.fit(scale.x(X_tr), scale.y(y_tr))
    passes = np.stack(list(est._mc_passes(scale.x(X_eval).astype(np.float32), est._means,
                                          mc_samples)))[:, :, 0]
    return passes * scale.y_std + scale.y_mean


def log_likelihood(y, passes, tau):
    """Mean log-likelihood of y under the mixture of N(passes_t, 1/tau) (Gal's formula)."""
    from ..scores import mixture_log_likelihood
    return mixture_log_likelihood(y, passes, 1 / math.sqrt(tau))


def _best_tau(y, passes, taus):
    from ..estimator import _best_precision
    if taus is None:
        return _best_precision(y, passes)
    return max(taus, key=lambda t: log_likelihood(y, passes, t))


def run_protocol(data, store, mc_samples=100, progress=None):
    """Every split's validation fits and test fit, skipping those stored; returns the test
    records in split order."""
    done = {r["key"]: r for r in store.records()}
    for k, (train, test) in enumerate(data.splits):
        cut = int(VALIDATION_SHARE * len(train))
        fit_rows, val_rows = train[:cut], train[cut:]
        choices = []
        for rate in data.rates:
            key = f"val/{k}/{rate:g}"
            if key not in done:
                passes = _mc_passes(data.X[fit_rows], data.y[fit_rows], data.X[val_rows], rate,
                                    data, k, mc_samples)
                y_val = data.y[val_rows]
                tau = _best_tau(y_val, passes, data.taus)
                done[key] = {"key": key, "kind": "uci-validation", "split": k, "rate": rate,
                             "tau": tau, "val_ll": log_likelihood(y_val, passes, tau)}
                store.append(done[key])
            choices.append(done[key])
            if progress is not None:
                progress.update(1)
        key = f"test/{k}"
        if key not in done:
            best = max(choices, key=lambda r: r["val_ll"])
            passes = _mc_passes(data.X[train], data.y[train], data.X[test], best["rate"],
                                data, k, mc_samples)
            y_test = data.y[test]
            done[key] = {"key": key, "kind": "uci-test", "split": k, "rate": best["rate"],
                         "tau": best["tau"], "mc_samples": mc_samples,
                         "rmse": float(np.sqrt(np.mean((y_test - passes.mean(axis=0)) ** 2))),
                         "test_ll": log_likelihood(y_test, passes, best["tau"])}
            store.append(done[key])
        if progress is not None:
            progress.update(1)
    return [done[f"test/{k}"] for k in range(len(data.splits))]


def summary_table(tests):
    """Markdown: RMSE and test log-likelihood, mean +- standard error over the splits."""
    def mean_se(values):
        v = np.asarray(values, dtype=float)
        se = v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else float("nan")
        return f"{v.mean():.3f} +- {se:.3f}"
    rates = ", ".join(f"{r['rate']:g}" for r in tests)
    return ("| splits | RMSE | test log-likelihood | chosen rates |\n|---:|---|---|---|\n"
            f"| {len(tests)} | {mean_se([r['rmse'] for r in tests])} "
            f"| {mean_se([r['test_ll'] for r in tests])} | {rates} |")


def run_uci(folder, out, mc_samples=100, quiet=False):
    """`fastdrop uncertainty`: the protocol on ``folder``, records and table in ``out``."""
    if isinstance(mc_samples, bool) or not isinstance(mc_samples, int) or mc_samples < 1:
        raise ValueError(f"--mc-samples must be a positive int, got {mc_samples!r}")
    data = load_uci(folder)
    store = ResultStore(out)
    store.acquire()
    store.write_manifest({"command": "uncertainty", "data": str(Path(folder).resolve())})
    progress = None
    if not quiet:
        from tqdm.auto import tqdm
        progress = tqdm(total=len(data.splits) * (len(data.rates) + 1), unit="fit",
                        desc="uncertainty")
    try:
        tests = run_protocol(data, store, mc_samples, progress)
    finally:
        if progress is not None:
            progress.close()
    table = summary_table(tests)
    (Path(out) / "uncertainty.md").write_text(table + "\n")
    return table
