"""Deep ensembles (Lakshminarayanan et al. 2017): M fastdrop networks with their own seeds, the
baseline a reviewer asks MC dropout to beat, with the estimators' own uncertainty API.

The members play the part of MC dropout's passes: a classifier's probabilities are their
mean and :meth:`DeepEnsemble.predict_uncertainty` splits the entropy as for MC dropout; a
regressor's :meth:`DeepEnsemble.predict_distribution` is the mixture of one Gaussian per member,
each with its own variance (``loss="gaussian_nll"`` members, as in the paper) or a shared
noise precision that :meth:`DeepEnsemble.fit_noise` chooses on held-out data. Each member
predicts with weight scaling; dropout in the members is theirs to have.
"""
import numpy as np
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .estimator import (MLPClassifier, MLPRegressor, _entropy, _label_entropy,
                        entropy_split, held_out_targets, noise_precisions)

__all__ = ["DeepEnsemble"]


class DeepEnsemble(BaseEstimator):
    """``n_members`` clones of ``estimator`` (a fastdrop MLPClassifier or MLPRegressor; default
    ``MLPRegressor(loss="gaussian_nll")``), each fitted on all the data with its own
    ``random_state`` drawn from ``random_state``: their initial weights, batch orders and
    masks differ, as in Lakshminarayanan et al. (2017).

    Parameters
    ----------
    estimator : MLPClassifier or MLPRegressor, default=None
        The member; None is ``MLPRegressor(loss="gaussian_nll")``.
    n_members : int, default=5
    random_state : int, RandomState or None, default=None
        Draws each member's seed.

    Attributes
    ----------
    estimators_ : list of fitted members
    classes_ : ndarray (classifiers only)
    noise_precision_ : ndarray of shape (n_targets,)
        Set by :meth:`fit_noise` (regressors without a variance output).
    """

    def __init__(self, estimator=None, n_members=5, random_state=None):
        self.estimator = estimator
        self.n_members = n_members
        self.random_state = random_state

    def _member(self):
        if self.estimator is None:
            return MLPRegressor(loss="gaussian_nll")
        if not isinstance(self.estimator, (MLPClassifier, MLPRegressor)):
            raise TypeError("estimator must be a fastdrop MLPClassifier or MLPRegressor (or "
                            f"None), got {type(self.estimator).__name__}")
        return clone(self.estimator)

    def fit(self, X, y, **fit_params):
        """Fit every member on (X, y).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like
            As the member's ``fit`` takes it.
        **fit_params
            ``sample_weight``, ``X_val``, ``y_val``: given to each member's ``fit``.

        Returns
        -------
        self : the fitted ensemble
        """
        if (isinstance(self.n_members, bool) or not isinstance(self.n_members, (int, np.integer))
                or self.n_members < 1):
            raise ValueError(f"n_members must be a positive int, got {self.n_members!r}")
        seeds = check_random_state(self.random_state).randint(0, 2**31 - 1, self.n_members)
        self.estimators_ = [self._member().set_params(random_state=int(s)).fit(X, y,
                                                                              **fit_params)
                            for s in seeds]
        if is_classifier(self.estimators_[0]):
            self.classes_ = self.estimators_[0].classes_
        self.noise_precision_ = None
        return self

    # ---- classifiers
    def predict_proba(self, X, *, return_std=False):
        """The members' mean probabilities (classifiers).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        return_std : bool, default False
            Also return the members' per-class standard deviation.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        std : ndarray of proba's shape
            With ``return_std`` only.
        """
        probas = self._each("predict_proba", X)
        mean = probas.mean(axis=0)
        return (mean, probas.std(axis=0)) if return_std else mean

    def predict_uncertainty(self, X):
        """As :meth:`fastdrop.MLPClassifier.predict_uncertainty`, with the members as the
        passes (classifiers).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        uncertainty : fastdrop.estimator.Uncertainty
        """
        members = self._fitted()
        entropy = _label_entropy if members[0]._is_multilabel else _entropy
        return entropy_split((m.predict_proba(X) for m in members), entropy)

    # ---- both
    def predict(self, X, *, return_std=False):
        """Classifiers: the most probable class of the mean probabilities. Regressors: the
        members' mean prediction and, with ``return_std``, their spread (epistemic).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        return_std : bool, default False
            Regressors only.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        std : ndarray of y's shape
            With ``return_std`` only.
        """
        if is_classifier(self._fitted()[0]):
            if return_std:
                raise ValueError("return_std is for regressors; use predict_proba")
            proba = self.predict_proba(X)
            if self.estimators_[0]._is_multilabel:
                return (proba > 0.5).astype(int)
            return self.classes_[np.argmax(proba, axis=1)]
        preds = self._each("predict", X)
        mean = preds.mean(axis=0)
        return (mean, preds.std(axis=0)) if return_std else mean

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifiers) or R^2 (regressors) of :meth:`predict`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        score : float
        """
        from sklearn.metrics import accuracy_score, r2_score
        metric = accuracy_score if is_classifier(self._fitted()[0]) else r2_score
        return metric(y, self.predict(X), sample_weight=sample_weight)

    # ---- regressors
    def fit_noise(self, X, y):
        """The noise precision tau per target that maximizes the held-out log-likelihood of
        the members' mixture (members without a variance output).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Held-out data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self : the ensemble, with ``noise_precision_`` set
        """
        members = self._fitted()
        if members[0].loss == "gaussian_nll":
            raise ValueError("fit_noise is for members without a variance output; "
                             "loss='gaussian_nll' members predict their own noise")
        means = self._each("predict", X)  # (members, n) or (members, n, targets)
        self.noise_precision_ = noise_precisions(held_out_targets(y),
                                                 means.reshape(*means.shape[:2], -1))
        return self

    def predict_distribution(self, X):
        """The mixture of one Gaussian per member (regressors).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        distribution : fastdrop.Predictive
            As :meth:`fastdrop.MLPRegressor.predict_distribution`'s, with the members as the
            ``passes``.
        """
        members = self._fitted()
        if members[0].loss != "gaussian_nll" and self.noise_precision_ is None:
            raise ValueError("predict_distribution needs the observation noise: call "
                             "fit_noise(X_val, y_val) after fit, or use members with "
                             "loss='gaussian_nll'")
        # each member's weight-scaled pass, with the ensemble's tau where it has one
        pairs = [m._passes_and_noise(X, None, self.noise_precision_) for m in members]
        return members[0]._predictive(np.concatenate([p for p, _ in pairs]),
                                      np.concatenate([n for _, n in pairs]))

    def _fitted(self):
        check_is_fitted(self, "estimators_")
        return self.estimators_

    def _each(self, method, X):
        return np.stack([getattr(m, method)(X) for m in self._fitted()])
