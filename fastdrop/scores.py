"""Scores of predictive distributions: what Monte-Carlo dropout's spread can be checked with.

Regression (Gal & Ghahramani 2016; Hernández-Lobato & Adams 2015): the test log-likelihood of
the predictive *mixture* of T stochastic passes, each a Gaussian around its pass's output
(log-sum-exp over the passes, not a moment-matched Gaussian), the RMSE of the MC mean, and
the coverage of central Gaussian intervals. Classification: negative log-likelihood, Brier
score and expected calibration error (ECE, Guo et al. 2017) with its binning stated.

Every function takes plain arrays (the passes of MC dropout, the members of an ensemble, or
a single prediction), validates their shapes and returns floats (means over the samples)
unless told otherwise.
"""
import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm

__all__ = ["mixture_log_likelihood", "rmse", "interval_coverage", "negative_log_likelihood",
           "brier_score", "expected_calibration_error", "reliability_bins"]

_LOG_2PI = np.log(2.0 * np.pi)


def _as_2d(name, a):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 1-d or 2-d (n_samples[, n_targets]), got shape "
                         f"{a.shape}")
    return a


def mixture_log_likelihood(y, passes, noise_std, *, per_sample=False):
    """Mean test log-likelihood of the predictive mixture ``1/T sum_t N(y; mu_t, s_t^2)``.

    Parameters
    ----------
    y : array of shape (n_samples,) or (n_samples, n_targets)
    passes : array of shape (T, n_samples[, n_targets])
        The T stochastic passes' predictions (MC dropout) or the members' (an ensemble).
    noise_std : float or array broadcastable to ``passes``
        Each pass's observation noise: one standard deviation (homoscedastic, 1 / sqrt(tau)),
        or one per pass and sample (heteroscedastic). Must be > 0.
    per_sample : bool
        Return each sample's log-likelihood (summed over its targets) instead of the mean.

    Returns
    -------
    log_likelihood : float or ndarray of shape (n_samples,)
        In nats; the mean over samples, or each sample's with ``per_sample``.

    Targets of one sample are independent given the pass; their log densities add up before
    the log-sum-exp over passes, which is what a mixture of diagonal Gaussians means.
    """
    y = _as_2d("y", y)
    passes = np.asarray(passes, dtype=np.float64)
    noise_std = np.asarray(noise_std, dtype=np.float64)
    if passes.ndim == 2:  # one target: per-pass noise of shape (T, n) follows it
        passes = passes[:, :, None]
        if noise_std.ndim == 2:
            noise_std = noise_std[:, :, None]
    if passes.ndim != 3 or passes.shape[1:] != y.shape:
        raise ValueError(f"passes must have shape (T, {y.shape[0]}[, {y.shape[1]}]) to match "
                         f"y, got {np.shape(passes)}")
    s = np.broadcast_to(noise_std, passes.shape)
    if not np.all(s > 0):
        raise ValueError("noise_std must be > 0 everywhere")
    log_density = -0.5 * (_LOG_2PI + 2 * np.log(s) + ((y - passes) / s) ** 2)  # (T, n, k)
    per = logsumexp(log_density.sum(axis=2), axis=0) - np.log(passes.shape[0])
    return per if per_sample else float(per.mean())


def rmse(y, mean):
    """Root mean squared error of the predictive mean (over samples and targets).

    Parameters
    ----------
    y : array of shape (n_samples,) or (n_samples, n_targets)
    mean : array of y's shape
        The predictive mean.

    Returns
    -------
    rmse : float
    """
    y, mean = _as_2d("y", y), _as_2d("mean", mean)
    if y.shape != mean.shape:
        raise ValueError(f"mean must have y's shape {y.shape}, got {mean.shape}")
    return float(np.sqrt(np.mean((y - mean) ** 2)))


def interval_coverage(y, mean, std, levels=(0.5, 0.9, 0.95)):
    """The share of targets inside central Gaussian intervals ``mean +- z std``.

    Parameters
    ----------
    y : array of shape (n_samples,) or (n_samples, n_targets)
    mean, std : arrays of y's shape
        The predictive mean and total standard deviation.
    levels : iterable of float in (0, 1), default (0.5, 0.9, 0.95)
        Nominal levels; ``z`` is the standard normal's (1 + level) / 2 quantile.

    Returns
    -------
    coverage : dict
        {level: the fraction of y inside that level's interval}.
    """
    y, mean, std = _as_2d("y", y), _as_2d("mean", mean), _as_2d("std", std)
    if not (y.shape == mean.shape == std.shape):
        raise ValueError(f"y, mean and std must have one shape, got {y.shape}, {mean.shape}, "
                         f"{std.shape}")
    out = {}
    for level in levels:
        if not 0 < level < 1:
            raise ValueError(f"levels must be in (0, 1), got {level}")
        z = norm.ppf(0.5 + level / 2)
        out[level] = float(np.mean(np.abs(y - mean) <= z * std))
    return out


def _labels_and_proba(y, proba, classes):
    """Column index of each label (``classes``: the sorted labels of proba's columns, as an
    estimator's ``classes_``; default 0 .. n_classes - 1) and the probabilities."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2:
        raise ValueError(f"proba must be (n_samples, n_classes), got shape {proba.shape}")
    classes = np.arange(proba.shape[1]) if classes is None else np.asarray(classes)
    if classes.shape != (proba.shape[1],):
        raise ValueError(f"classes must hold one label per column of proba "
                         f"({proba.shape[1]}), got {classes.shape[0]}")
    y = np.asarray(y)
    idx = np.searchsorted(classes, y)
    if y.shape != (proba.shape[0],) or np.any(idx >= classes.size) or np.any(
            classes[np.minimum(idx, classes.size - 1)] != y):
        raise ValueError("y must hold one label of classes per row of proba")
    return idx, proba


def negative_log_likelihood(y, proba, classes=None, eps=1e-15):
    """Mean -log p(true class); probabilities clipped at ``eps`` (scikit-learn's log_loss).

    Parameters
    ----------
    y : array of shape (n_samples,)
        True labels, each one of ``classes``.
    proba : array of shape (n_samples, n_classes)
        Predicted probabilities, one column per class.
    classes : array of shape (n_classes,), optional
        The sorted labels of proba's columns (an estimator's ``classes_``); default
        0 .. n_classes - 1.
    eps : float, default 1e-15
        The smallest probability taken.

    Returns
    -------
    nll : float
        In nats.
    """
    idx, proba = _labels_and_proba(y, proba, classes)
    return float(-np.mean(np.log(np.clip(proba[np.arange(idx.size), idx], eps, None))))


def brier_score(y, proba, classes=None):
    """Mean over samples of sum_k (p_k - 1[y = k])^2 (Brier 1950's multiclass form; for two
    classes twice scikit-learn's brier_score_loss of the positive class).

    Parameters
    ----------
    y : array of shape (n_samples,)
        True labels, each one of ``classes``.
    proba : array of shape (n_samples, n_classes)
        Predicted probabilities, one column per class.
    classes : array of shape (n_classes,), optional
        The sorted labels of proba's columns (an estimator's ``classes_``); default
        0 .. n_classes - 1.

    Returns
    -------
    brier : float
        In [0, 2].
    """
    idx, proba = _labels_and_proba(y, proba, classes)
    onehot = np.zeros_like(proba)
    onehot[np.arange(idx.size), idx] = 1.0
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def _binned(y, proba, classes, n_bins):
    """Each sample's confidence (top probability), whether its top class is right, and its
    bin among ``n_bins`` equal-width, right-closed bins of (0, 1]."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    idx, proba = _labels_and_proba(y, proba, classes)
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == idx
    return confidence, correct, np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0,
                                        n_bins - 1)


def reliability_bins(y, proba, classes=None, n_bins=15):
    """What a reliability diagram draws: per confidence bin (those of
    :func:`expected_calibration_error`), its samples, their summed confidence and their
    number of right predictions. Sums, not means, so bins of several runs add up.

    Parameters
    ----------
    y : array of shape (n_samples,)
        True labels, each one of ``classes``.
    proba : array of shape (n_samples, n_classes)
        Predicted probabilities, one column per class.
    classes : array of shape (n_classes,), optional
        The sorted labels of proba's columns (an estimator's ``classes_``); default
        0 .. n_classes - 1.
    n_bins : int, default 15
        Equal-width confidence bins.

    Returns
    -------
    bins : dict
        ``count``, ``confidence`` and ``correct``: lists of ``n_bins`` numbers; a bin's
        accuracy is ``correct / count`` and its mean confidence ``confidence / count``.
    """
    confidence, correct, bins = _binned(y, proba, classes, n_bins)
    return {"count": np.bincount(bins, minlength=n_bins).tolist(),
            "confidence": np.bincount(bins, confidence, n_bins).tolist(),
            "correct": np.bincount(bins, correct, n_bins).tolist()}


def expected_calibration_error(y, proba, classes=None, n_bins=15):
    """ECE (Guo et al. 2017): the confidence (top probability) of each sample binned into
    ``n_bins`` equal-width bins of (0, 1] (right-closed, as (k/n, (k+1)/n]); the sum over bins
    of (bin size / n) x the absolute difference of the bin's accuracy and mean confidence.

    Parameters
    ----------
    y : array of shape (n_samples,)
        True labels, each one of ``classes``.
    proba : array of shape (n_samples, n_classes)
        Predicted probabilities, one column per class.
    classes : array of shape (n_classes,), optional
        The sorted labels of proba's columns (an estimator's ``classes_``); default
        0 .. n_classes - 1.
    n_bins : int, default 15
        Equal-width confidence bins.

    Returns
    -------
    ece : float
        In [0, 1].
    """
    confidence, correct, bins = _binned(y, proba, classes, n_bins)
    ece = 0.0
    for b in range(n_bins):
        members = bins == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)
