"""Datasets from scikit-learn, offline: standardized, stratified train/validation/test splits.

Names: ``digits``, ``breast_cancer``, ``wine``, ``iris``, ``synthetic`` (3000 x 40, 5 classes),
``synthetic-60k`` (60000 x 784, 10 classes, the MNIST-sized preset) and any
``synthetic-NxD`` or ``synthetic-NxDxC`` (N samples, D features, C classes, default 10).
"""
import functools
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
_SYNTHETIC = re.compile(r"^synthetic-(\d+)x(\d+)(?:x(\d+))?$")


@dataclass(frozen=True, eq=False)
class Split:
    """60% train, 20% validation, 20% test; float32, standardized on the training part."""
    name: str
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
        return (f"Split({self.name!r}, train={self.X_train.shape}, val={self.X_val.shape}, "
                f"test={self.X_test.shape}, classes={self.n_classes})")


def check_name(name):
    """The dataset name, or ValueError listing the valid ones."""
    if name in _LOADERS or name in _PRESETS or _SYNTHETIC.match(name):
        return name
    raise ValueError(f"dataset must be one of {sorted(_LOADERS) + sorted(_PRESETS)} or "
                     f"'synthetic-NxD[xC]', got {name!r}")


def _raw(name):
    if name in _LOADERS:
        return _LOADERS[name](return_X_y=True)
    n, d, c = _PRESETS.get(name) or _parse_synthetic(name)
    return skd.make_classification(n, d, n_informative=max(2, min(d, 2 * c + d // 8)),
                                   n_redundant=min(d // 10, d - 2), n_classes=c,
                                   n_clusters_per_class=2, class_sep=1.0, flip_y=0.01,
                                   random_state=0)


def _parse_synthetic(name):
    n, d, c = _SYNTHETIC.match(name).groups()
    return int(n), int(d), int(c or 10)


@functools.lru_cache(maxsize=8)
def load_split(name, seed=0):
    """The cached split of dataset ``name``; ``seed`` fixes the split."""
    X, y = _raw(check_name(name))
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.4, stratify=y,
                                                        random_state=seed)
    X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, test_size=0.5,
                                                    stratify=y_rest, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    f32 = lambda a: np.ascontiguousarray(scaler.transform(a), dtype=np.float32)  # noqa: E731
    return Split(name, f32(X_train), y_train, f32(X_val), y_val, f32(X_test), y_test)
