"""Datasets, offline: standardized, stratified train/validation/test splits, one per repeat.

Names:

* scikit-learn's bundled sets: ``digits``, ``breast_cancer``, ``wine``, ``iris``;
* ``mnist1d``: MNIST-1D (Greydanus 2020, "Scaling down deep learning"), 5000 x 40, 10
  classes, made by the ``mnist1d`` package's ``make_dataset`` with the paper's settings
  (``get_dataset_args()``: seed 42, the 4000/1000 train/test split), never downloaded;
  ``mnist1d-20k``: the same generator for 25000 samples, 20000/5000;
* ``synthetic`` (3000 x 40, 5 classes), ``synthetic-60k`` (60000 x 784, 10 classes, the
  MNIST-sized preset) and any ``synthetic-NxD`` or ``synthetic-NxDxC``;
* a file: ``PATH.npz`` (arrays ``X`` and ``y``), ``PATH.csv`` (a header row; the label is the
  column named ``label``, ``target``, ``class`` or ``y``, else the last one), or svmlight
  (``.svm``, ``.svmlight``, ``.libsvm``);
* ``openml:NAME_OR_ID``: scikit-learn's ``fetch_openml`` (cached after the first fetch; a
  clear error when it must download and cannot).

Each repeat ``r`` has its own split (``random_state=r``); ``Split.split_id`` fingerprints its
indices. A dataset with a published test set (MNIST-1D) keeps it for every repeat and carves
the validation part (20% of its training part) anew per repeat; the others split 60/20/20.
Features are standardized on the training part.
"""
import functools
import hashlib
import os
import re
from dataclasses import dataclass

import numpy as np
from sklearn import datasets as skd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

_LOADERS = {
    "digits": skd.load_digits,
    "breast_cancer": skd.load_breast_cancer,
    "wine": skd.load_wine,
    "iris": skd.load_iris,
}
_PRESETS = {"synthetic": (3000, 40, 5), "synthetic-60k": (60000, 784, 10)}
_MNIST1D = {"mnist1d": 5000, "mnist1d-20k": 25000}  # samples made; 80% train, 20% test
_SYNTHETIC = re.compile(r"^synthetic-(\d+)x(\d+)(?:x(\d+))?$")
_FILE_SUFFIXES = (".npz", ".csv", ".svm", ".svmlight", ".libsvm")
_LABEL_COLUMNS = ("label", "target", "class", "y")
VAL_FRACTION = 0.2   # of the training part, where the test set is fixed
TEST_FRACTION = 0.2  # of the whole, elsewhere (and as much again for validation)


@dataclass(frozen=True, eq=False)
class Split:
    """One repeat's train/validation/test parts; float32, standardized on the training part."""
    name: str
    repeat: int
    split_id: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    @property
    def n_classes(self):
        return int(np.unique(self.y_train).size)

    def __repr__(self):
        return (f"Split({self.name!r}, repeat={self.repeat}, train={self.X_train.shape}, "
                f"val={self.X_val.shape}, test={self.X_test.shape}, "
                f"classes={self.n_classes}, split_id={self.split_id})")


def check_name(name):
    """The dataset name, or ValueError listing the valid ones."""
    if _SYNTHETIC.match(name):
        _synthetic_settings(*_parse_synthetic(name), name)
        return name
    if name in _LOADERS or name in _PRESETS or name in _MNIST1D or _is_openml(name):
        return name
    if name.lower().endswith(_FILE_SUFFIXES):
        if not os.path.isfile(name):
            raise ValueError(f"dataset file {name!r} does not exist")
        return name
    raise ValueError(f"dataset must be one of {sorted(_LOADERS) + sorted(_PRESETS)}, "
                     f"{sorted(_MNIST1D)}, 'synthetic-NxD[xC]', a file ending in "
                     f"{', '.join(_FILE_SUFFIXES)} or 'openml:NAME_OR_ID', got {name!r}")


def _is_openml(name):
    return name.startswith("openml:") and len(name) > len("openml:")


def _raw(name):
    """(X, y, fixed test indices or None)."""
    if name in _LOADERS:
        return (*_LOADERS[name](return_X_y=True), None)
    if name in _MNIST1D:
        return _mnist1d(_MNIST1D[name])
    if _is_openml(name):
        return (*_openml(name[len("openml:"):]), None)
    if name.lower().endswith(_FILE_SUFFIXES):
        return (*load_file(name), None)
    n, d, c = _PRESETS.get(name) or _parse_synthetic(name)
    informative, redundant = _synthetic_settings(n, d, c, name)
    X, y = skd.make_classification(n, d, n_informative=informative, n_redundant=redundant,
                                   n_classes=c, n_clusters_per_class=2, class_sep=1.0,
                                   flip_y=0.01, random_state=0)
    return X, y, None


def _synthetic_settings(n, d, c, name):
    """(informative, redundant) features of a synthetic set, or an error naming the set and
    what its N, D and C must satisfy (make_classification's own conditions)."""
    informative = max(2, min(d, 2 * c + d // 8))
    redundant = min(d // 10, d - informative)
    problems = [f"D >= 2 features (got {d})" if d < 2 else "",
                f"C >= 2 classes (got {c})" if c < 2 else "",
                f"N >= 2 * C samples, two clusters per class (got N={n}, C={c})"
                if n < 2 * c else "",
                f"C <= 2 ** (informative features) / 2, {2 ** min(informative, 62) // 2} for "
                f"D={d} (got C={c})" if 2 * c > 2 ** min(informative, 62) else ""]
    problems = [p for p in problems if p]
    if problems:
        raise ValueError(f"dataset {name!r}: synthetic-NxD[xC] needs " + "; ".join(problems))
    return informative, redundant


def _parse_synthetic(name):
    n, d, c = _SYNTHETIC.match(name).groups()
    return int(n), int(d), int(c or 10)


def _mnist1d(n_samples):
    """MNIST-1D from its generator, the paper's settings; the last 20% is its test set."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise ValueError("dataset 'mnist1d' needs the mnist1d package: pip install "
                         "mnist1d") from exc
    args = get_dataset_args()
    args.num_samples = n_samples
    state = np.random.get_state()  # make_dataset seeds numpy's global generator
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(state)
    X = np.concatenate([data["x"], data["x_test"]])
    y = np.concatenate([data["y"], data["y_test"]])
    return X, y, np.arange(len(data["y"]), len(y))


def _openml(name_or_id):
    kw = {"data_id": int(name_or_id)} if name_or_id.isdigit() else {"name": name_or_id}
    try:
        X, y = skd.fetch_openml(**kw, return_X_y=True, as_frame=False, parser="auto")
    except OSError as exc:  # urllib's URLError is an OSError: no network, no cache
        raise ValueError(f"dataset 'openml:{name_or_id}' is neither in scikit-learn's cache "
                         f"nor downloadable here ({exc}); fetch it once on a machine that is "
                         "online, or save it as a .npz file with X and y") from None
    return _numeric(X, f"openml:{name_or_id}"), y


def load_file(path):
    """(X, y) from a .npz (``X``, ``y``), .csv (header row) or svmlight file."""
    lower = path.lower()
    if lower.endswith(".npz"):
        with np.load(path, allow_pickle=False) as f:
            missing = {"X", "y"} - set(f.files)
            if missing:
                raise ValueError(f"{path} must hold arrays 'X' and 'y', missing "
                                 f"{sorted(missing)} (it has {sorted(f.files)})")
            return _numeric(f["X"], path), f["y"]
    if lower.endswith(".csv"):
        return _csv(path)
    X, y = skd.load_svmlight_file(path)
    return X.toarray(), y


def _csv(path):
    with open(path, encoding="utf-8") as f:
        header = [h.strip() for h in f.readline().strip().split(",")]
    names = [h.lower() for h in header]
    label = next((names.index(c) for c in _LABEL_COLUMNS if c in names), len(header) - 1)
    table = np.genfromtxt(path, delimiter=",", skip_header=1, dtype=str, ndmin=2)
    if table.shape[1] != len(header):
        raise ValueError(f"{path}: {len(header)} columns in the header, {table.shape[1]} in "
                         "the rows")
    y = table[:, label]
    X = np.delete(table, label, axis=1)
    return _numeric(X, path), y


def _numeric(X, source):
    try:
        X = np.asarray(X, dtype=np.float64)
    except ValueError:
        raise ValueError(f"{source}: the features must be numbers") from None
    if X.ndim != 2 or not np.isfinite(X).all():
        raise ValueError(f"{source}: the features must be a 2-d table of finite numbers, "
                         f"got shape {X.shape}")
    return X


def _fingerprint(*parts):
    h = hashlib.sha1()
    for p in parts:
        h.update(np.ascontiguousarray(p, dtype=np.int64).tobytes())
        h.update(b"|")
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=4)
def load_xy(name):
    """All of dataset ``name`` unsplit, standardized, float32: (X, y), for timing epochs."""
    X, y, _ = _raw(check_name(name))
    return np.ascontiguousarray(StandardScaler().fit_transform(X), dtype=np.float32), y


@functools.lru_cache(maxsize=16)
def load_split(name, repeat=0):
    """The cached split of dataset ``name`` for repeat ``repeat``."""
    X, y, fixed_test = _raw(check_name(name))
    index = np.arange(len(y))
    if fixed_test is not None:
        test = fixed_test
        rest = np.setdiff1d(index, test)
        train, val = train_test_split(rest, test_size=VAL_FRACTION, stratify=y[rest],
                                      random_state=repeat)
    else:
        rest, test = train_test_split(index, test_size=TEST_FRACTION, stratify=y,
                                      random_state=repeat)
        train, val = train_test_split(rest, test_size=TEST_FRACTION / (1 - TEST_FRACTION),
                                      stratify=y[rest], random_state=repeat)
    scaler = StandardScaler().fit(X[train])
    f32 = lambda idx: np.ascontiguousarray(scaler.transform(X[idx]), dtype=np.float32)  # noqa: E731
    return Split(name, repeat, _fingerprint(train, val, test), f32(train), y[train], f32(val),
                 y[val], f32(test), y[test])
