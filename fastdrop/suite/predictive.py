"""The study's uncertainty stage: is dropout's predictive distribution any good?

One record (kind ``uncertainty``) per dataset and repeat, each repeat on its own split, every
choice made on that split's validation part and every score on its test part:

* **classification** (MNIST-1D): the study's validation choices retrained on the repeat's
  split, dropout's (rate and learning rate) and no dropout's (learning rate); scored with
  weight scaling (``ws``), the mean of ``MC_SAMPLES`` stochastic passes (``mc``, Gal &
  Ghahramani 2016), weight scaling with a temperature fitted on validation (``ts``, Guo et
  al. 2017), the plain network (``plain``) and a ``MEMBERS``-member deep ensemble of plain
  networks (``ensemble``, Lakshminarayanan et al. 2017): accuracy, log-likelihood (the mean
  log-probability of the true class), Brier score, ECE over ``N_BINS`` equal-width bins,
  and the bins themselves for a reliability diagram.
* **regression** (scikit-learn's ``diabetes``; ``heteroscedastic``, a synthetic set whose
  noise is known, so the true predictive distribution scores alongside as ``oracle``): one
  hidden layer of 50 ReLU units, inputs and target standardized on the training part; the
  drop rate chosen from ``REGRESSION_RATES`` by each method's own validation log-likelihood
  and the noise precision tau fitted on validation (MLPRegressor.fit_noise): ``ws`` and
  ``mc`` as above, ``mc-het`` (MC dropout with a variance output, Kendall & Gal 2017),
  ``plain`` (no dropout, tau on validation) and ``ensemble`` (members with a variance
  output, as in the paper). Scores: the mixture's test log-likelihood in the target's units,
  the RMSE of the predictive mean and the coverage of central Gaussian intervals (mean +-
  z x total std) at ``COVERAGE_LEVELS``.

The verdicts these records feed are claims.uncertainty_claims; the figures plots.reliability
and plots.coverage.
"""
import math
import time
import warnings

import numpy as np
from sklearn.model_selection import train_test_split

from .. import scores
from ..ensemble import DeepEnsemble
from ..estimator import MLPClassifier, MLPRegressor
from .config import LEARNING_RATE, RunConfig
from .datasets import load_split
from .runner import _exit_with_parent, split_sizes
from .uci import Standardized

MC_SAMPLES = 100
MEMBERS = 5
N_BINS = 15
COVERAGE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
REGRESSION_RATES = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
REGRESSION_HIDDEN = (50,)
METHODS = {"ws": "weight scaling", "mc": f"MC dropout (T={MC_SAMPLES})",
           "ts": "weight scaling, temperature-scaled", "mc-het": "MC dropout, variance output",
           "plain": "no dropout", "ensemble": f"{MEMBERS}-member deep ensemble",
           "oracle": "the true distribution"}


# ---- data -----------------------------------------------------------------------------------

def _diabetes():
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    return X, y, None


HETEROSCEDASTIC_ROWS = 3000


def heteroscedastic_truth(X):
    """The synthetic set's mean and noise standard deviation at X (n, 3): f = sin(x0) +
    0.3 x1 + 0.1 x2^2, sigma = 0.1 + 0.3 |x0| (0.1 to 1.0 over the inputs' range)."""
    return (np.sin(X[:, 0]) + 0.3 * X[:, 1] + 0.1 * X[:, 2] ** 2,
            0.1 + 0.3 * np.abs(X[:, 0]))


def _heteroscedastic():
    rng = np.random.RandomState(0)  # one pool of rows; each repeat splits it anew
    X = rng.uniform(-3, 3, size=(HETEROSCEDASTIC_ROWS, 3))
    mean, std = heteroscedastic_truth(X)
    return X, mean + std * rng.standard_normal(HETEROSCEDASTIC_ROWS), (mean, std)


REGRESSION_SETS = {"diabetes": _diabetes, "heteroscedastic": _heteroscedastic}


def is_regression(dataset):
    return dataset in REGRESSION_SETS


class RegressionSplit:
    """One repeat's 60/20/20 split of a regression set; X and y standardized on the training
    part (``y_mean``, ``y_std`` undo it); ``truth``: the test rows' true (mean, std) in the
    target's units, where known."""

    def __init__(self, dataset, repeat):
        X, y, truth = REGRESSION_SETS[dataset]()
        index = np.arange(len(y))
        rest, test = train_test_split(index, test_size=0.2, random_state=repeat)
        train, val = train_test_split(rest, test_size=0.25, random_state=repeat)
        scale = Standardized(X[train], y[train])
        self.y_mean, self.y_std = scale.y_mean, scale.y_std
        self.X_train, self.X_val, self.X_test = (
            np.ascontiguousarray(scale.x(X[i]), dtype=np.float32) for i in (train, val, test))
        self.y_train, self.y_val, self.y_test = (scale.y(y[i]) for i in (train, val, test))
        self.truth = None if truth is None else tuple(t[test] for t in truth)


# ---- scores ---------------------------------------------------------------------------------

def classification_scores(y, proba, classes):
    """Accuracy, log-likelihood, Brier score, ECE and the reliability bins of one method."""
    nll = scores.negative_log_likelihood(y, proba, classes)
    return {"accuracy": float(np.mean(classes[proba.argmax(axis=1)] == y)),
            "log_likelihood": -nll, "nll": nll,
            "brier": scores.brier_score(y, proba, classes),
            "ece": scores.expected_calibration_error(y, proba, classes, n_bins=N_BINS),
            "bins": scores.reliability_bins(y, proba, classes, n_bins=N_BINS)}


def regression_scores(split, passes, noise_std, mean, std):
    """Log-likelihood (target's units), RMSE and coverage of a predictive mixture given in
    standardized units: ``passes`` (T, n), ``noise_std`` broadcastable to it, and the
    mixture's ``mean`` and total ``std`` (n,)."""
    ll = scores.mixture_log_likelihood(split.y_test, passes, noise_std) - math.log(split.y_std)
    coverage = scores.interval_coverage(split.y_test, mean, std, COVERAGE_LEVELS)
    return {"log_likelihood": ll, "rmse": scores.rmse(split.y_test, mean) * split.y_std,
            "coverage": [coverage[level] for level in COVERAGE_LEVELS]}


def _scores_of(split, dist):
    return regression_scores(split, dist.passes, dist.noise_std, dist.mean, dist.std)


# ---- classification -------------------------------------------------------------------------

def _study_network(dataset, profile, seed, rate, learning_rate, n_threads):
    """The study's network for ``dataset`` at drop rate ``rate`` and ``learning_rate``."""
    config = RunConfig(dataset, "dropout", rate, seed, profile=profile,
                       overrides=((LEARNING_RATE, learning_rate),))
    return MLPClassifier(**config.estimator_params(), n_threads=n_threads)


def classification_record(dataset, profile, seed, chosen, *, n_threads=None,
                          parent_pid=None):
    """The classification record of one repeat. ``chosen``: {"dropout": (rate, learning
    rate), "none": (0.0, learning rate)}, the study's validation choices."""
    _exit_with_parent(parent_pid)
    start = time.perf_counter()
    split = load_split(dataset, seed)
    fit = dict(X_val=split.X_val, y_val=split.y_val)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: early stopping decides
        dropout = _study_network(dataset, profile, seed, *chosen["dropout"], n_threads)
        dropout.fit(split.X_train, split.y_train, **fit)
        plain = _study_network(dataset, profile, seed, *chosen["none"], n_threads)
        ensemble = DeepEnsemble(plain, n_members=MEMBERS, random_state=seed)
        ensemble.fit(split.X_train, split.y_train, **fit)
        plain.fit(split.X_train, split.y_train, **fit)
    temperature = dropout.fit_temperature(split.X_val, split.y_val).temperature_
    X = split.X_test
    probas = {"ws": dropout.predict_proba(X),
              "mc": dropout.predict_proba(X, mc_samples=MC_SAMPLES),
              "ts": dropout.predict_proba(X, temperature=temperature),
              "plain": plain.predict_proba(X), "ensemble": ensemble.predict_proba(X)}
    classes = dropout.classes_
    return {"kind": "uncertainty", "key": f"uncertainty|{dataset}|{profile}|{seed}",
            "task": "classification", "dataset": dataset, "profile": profile, "seed": seed,
            "repeat": seed, **split_sizes(split),
            "params": {"dropout": list(chosen["dropout"]), "none": list(chosen["none"])},
            "temperature": temperature, "mc_samples": MC_SAMPLES, "members": MEMBERS,
            "n_bins": N_BINS,
            "methods": {m: classification_scores(split.y_test, p, classes)
                        for m, p in probas.items()},
            "wall": time.perf_counter() - start}


# ---- regression -----------------------------------------------------------------------------

def _regressor(rate, loss, seed, n_threads):
    return MLPRegressor(REGRESSION_HIDDEN, dropout=rate, loss=loss, alpha=0.0,
                        learning_rate_init=3e-3, batch_size=32, max_iter=500,
                        early_stopping=True, early_stopping_metric="loss",
                        n_iter_no_change=20, random_state=seed, n_threads=n_threads)


def _val_ll(split, est, mc_samples):
    d = est.predict_distribution(split.X_val, mc_samples=mc_samples)
    return scores.mixture_log_likelihood(split.y_val, d.passes, d.noise_std)


def _best_by_validation(split, fitted, mc_samples, with_tau):
    """The (rate, estimator) whose validation log-likelihood is highest, tau fitted on
    validation first where ``with_tau``; the estimator keeps that tau."""
    best = None
    for rate, est in fitted.items():
        if with_tau:
            est.fit_noise(split.X_val, split.y_val, mc_samples=mc_samples)
        ll = _val_ll(split, est, mc_samples)
        if best is None or ll > best[0]:
            best = (ll, rate, est, getattr(est, "noise_precision_", None))
    _, rate, est, tau = best
    if with_tau:
        est.noise_precision_ = tau
    return rate, est


def _regression_fits(split, seed, n_threads):
    """Every network a regression repeat scores, fitted on its training part with early
    stopping on its validation part: {rate: squared-error network}, {rate: variance-output
    network}, the network without dropout, the ensemble."""
    fit = dict(X_val=split.X_val, y_val=split.y_val)

    def fitted(est):
        return est.fit(split.X_train, split.y_train, **fit)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings: early stopping decides
        squared = {r: fitted(_regressor(r, "squared_error", seed, n_threads))
                   for r in REGRESSION_RATES}
        het = {r: fitted(_regressor(r, "gaussian_nll", seed, n_threads))
               for r in REGRESSION_RATES}
        plain = fitted(_regressor(0.0, "squared_error", seed, n_threads))
        ensemble = fitted(DeepEnsemble(_regressor(0.0, "gaussian_nll", seed, n_threads),
                                       n_members=MEMBERS, random_state=seed))
    return squared, het, plain, ensemble


def regression_record(dataset, profile, seed, *, n_threads=None, parent_pid=None):
    """The regression record of one repeat (the module's docstring says what it holds)."""
    _exit_with_parent(parent_pid)
    start = time.perf_counter()
    split = RegressionSplit(dataset, seed)
    squared, het, plain, ensemble = _regression_fits(split, seed, n_threads)
    X, methods, rates = split.X_test, {}, {}
    # each method's own rate (and tau) on validation; MC first: the weight-scaled choice
    # refits tau on the same networks
    rates["mc"], est = _best_by_validation(split, squared, MC_SAMPLES, True)
    methods["mc"] = _scores_of(split, est.predict_distribution(X, mc_samples=MC_SAMPLES))
    rates["ws"], est = _best_by_validation(split, squared, None, True)
    methods["ws"] = _scores_of(split, est.predict_distribution(X))
    rates["mc-het"], est = _best_by_validation(split, het, MC_SAMPLES, False)
    methods["mc-het"] = _scores_of(split, est.predict_distribution(X, mc_samples=MC_SAMPLES))
    plain.fit_noise(split.X_val, split.y_val)
    methods["plain"] = _scores_of(split, plain.predict_distribution(X))
    methods["ensemble"] = _scores_of(split, ensemble.predict_distribution(X))
    if split.truth is not None:  # the true distribution, in standardized units
        true_mean, true_std = split.truth
        mean, std = (true_mean - split.y_mean) / split.y_std, true_std / split.y_std
        methods["oracle"] = regression_scores(split, mean[None], std[None], mean, std)
    return {"kind": "uncertainty", "key": f"uncertainty|{dataset}|{profile}|{seed}",
            "task": "regression", "dataset": dataset, "profile": profile, "seed": seed,
            "repeat": seed, "n_train": len(split.y_train), "n_val": len(split.y_val),
            "n_test": len(split.y_test), "rates": rates, "rate_grid": list(REGRESSION_RATES),
            "mc_samples": MC_SAMPLES, "members": MEMBERS, "levels": list(COVERAGE_LEVELS),
            "methods": methods, "wall": time.perf_counter() - start}


# ---- the stage ------------------------------------------------------------------------------

def chosen_settings(records, dataset):
    """{"dropout": (rate, learning rate), "none": (0.0, learning rate)}: the study's
    validation choices on ``dataset`` (default architecture); None where either is missing."""
    from .selection import select

    chosen = {c["family"]: c["params"] for c in select(records)
              if c["dataset"] == dataset and c["family"] in ("dropout", "none")}
    if set(chosen) != {"dropout", "none"}:
        return None
    return {f: (float(p.get("dropout", 0.0)), float(p[LEARNING_RATE]))
            for f, p in chosen.items()}


def pending_calls(records, datasets, seeds, profile):
    """(key, function, args) of every record of the stage not yet stored; a classification
    set the study has no choices for yet is left out."""
    done = {r["key"] for r in records}
    calls = []
    for dataset in datasets:
        if is_regression(dataset):
            fn, args = regression_record, lambda s: (dataset, profile, s)
        else:
            chosen = chosen_settings(records, dataset)
            if chosen is None:
                continue
            fn, args = classification_record, lambda s, c=chosen: (dataset, profile, s, c)
        calls += [(key, fn, args(s)) for s in seeds
                  if (key := f"uncertainty|{dataset}|{profile}|{s}") not in done]
    return calls
