"""MLPRegressor: its quality against scikit-learn's regressor, losses, shapes and Monte-Carlo
predictive uncertainty (scikit-learn's estimator checks run in test_estimator.py)."""
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor as SklearnMLPRegressor
from sklearn.preprocessing import StandardScaler

from fastdrop import MLPRegressor


def quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def standardized_split(X, y, seed=0):
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=seed)
    scaler = StandardScaler().fit(X_tr)
    return scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["diabetes", "make_regression"])
def test_quality_matches_scikit_learn(dataset):
    """No dropout, same split, hidden sizes and adam: mean test R^2 of 3 seeds within 0.03."""
    if dataset == "diabetes":
        X, y = load_diabetes(return_X_y=True)
    else:
        X, y = make_regression(1000, 20, n_informative=10, noise=10.0, random_state=0)
        y = y / y.std()
    X_tr, X_te, y_tr, y_te = standardized_split(X, y)
    scores = {"fastdrop": [], "sklearn": []}
    for seed in range(3):
        params = dict(hidden_layer_sizes=(100,), learning_rate_init=0.01, max_iter=300,
                      random_state=seed)
        for name, cls in (("fastdrop", MLPRegressor), ("sklearn", SklearnMLPRegressor)):
            scores[name].append(quiet_fit(cls(**params), X_tr, y_tr).score(X_te, y_te))
    assert abs(np.mean(scores["fastdrop"]) - np.mean(scores["sklearn"])) <= 0.03, scores


def test_targets_keep_their_shape_and_count():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4))
    y2 = np.c_[X[:, 0], X[:, 1] - X[:, 2]]
    est = quiet_fit(MLPRegressor((16,), max_iter=20, random_state=0), X, y2)
    assert est.predict(X).shape == (80, 2) and est.n_outputs_ == 2
    assert est.out_activation_ == "identity"
    with pytest.raises(ValueError, match="y has 1 targets, the network was fitted with 2"):
        est.partial_fit(X, y2[:, 0])
    one = quiet_fit(MLPRegressor((16,), max_iter=20, random_state=0), X, y2[:, 0])
    assert one.predict(X).shape == (80,)
    mean, std = one.predict(X, mc_samples=3, return_std=True)
    assert mean.shape == std.shape == (80,)
    with pytest.raises(ValueError, match="y must be real numbers"):
        MLPRegressor().fit(X, np.array(["a"] * 80))


def test_partial_fit_early_stopping_and_history():
    X, y = make_regression(300, 8, noise=1.0, random_state=1)
    y = y / y.std()
    est = MLPRegressor((32,), random_state=0)
    for _ in range(3):
        est.partial_fit(X, y)
    assert est.n_iter_ == 1 and len(est.loss_curve_) == 3
    es = quiet_fit(MLPRegressor((32,), early_stopping=True, max_iter=300, random_state=0,
                                learning_rate_init=0.01), X, y)
    assert es.stopped_epoch_ is not None and es.best_validation_score_ > 0.9
    assert es.best_validation_score_ == max(es.history_["val_r2"])
    assert "val_accuracy" not in es.history_


def gap_problem(seed=0):
    """sin(x) + noise on |x| in (1.5, 4): no training inputs in between."""
    rng = np.random.default_rng(seed)
    x = np.r_[rng.uniform(-4, -1.5, 150), rng.uniform(1.5, 4, 150)]
    return x[:, None], np.sin(x) + 0.1 * rng.standard_normal(x.size)


def test_monte_carlo_std_is_zero_without_dropout_and_grows_in_a_gap():
    """The predictive std of MC dropout is larger inside the gap than on the data (the
    README figure's claim; Gal & Ghahramani 2016). Measured 1.41x at this seed, 1.2-1.5x over
    rates 0.1-0.3 and two seeds."""
    X, y = gap_problem()
    plain = quiet_fit(MLPRegressor((64, 64), max_iter=100, random_state=0), X, y)
    _, std = plain.predict(X, mc_samples=5, return_std=True)
    assert np.all(std == 0)
    est = quiet_fit(MLPRegressor((128, 128), dropout=0.2, max_iter=400, random_state=0,
                                 learning_rate_init=0.01), X, y)
    on_data = np.r_[np.linspace(-3.8, -1.7, 20), np.linspace(1.7, 3.8, 20)][:, None]
    in_gap = np.linspace(-0.8, 0.8, 20)[:, None]
    _, std_data = est.predict(on_data, mc_samples=200, return_std=True)
    _, std_gap = est.predict(in_gap, mc_samples=200, return_std=True)
    assert std_gap.mean() > 1.15 * std_data.mean(), (std_gap.mean(), std_data.mean())


def test_poisson_loss_fits_counts_and_refuses_negative_targets():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 3))
    rate = np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1])
    y = rng.poisson(rate).astype(float)
    est = quiet_fit(MLPRegressor((32,), loss="poisson", max_iter=200, random_state=0,
                                 learning_rate_init=0.01), X, y)
    pred = est.predict(X)
    assert est.out_activation_ == "exp" and np.all(pred > 0)
    assert np.corrcoef(pred, rate)[0, 1] > 0.9
    ref = SklearnMLPRegressor(loss="poisson", hidden_layer_sizes=(32,), max_iter=200,
                              random_state=0, learning_rate_init=0.01) \
        if "loss" in SklearnMLPRegressor().get_params() else None
    if ref is not None:  # scikit-learn >= 1.8: the same loss value for the same predictions
        quiet_fit(ref, X, y)
        assert est.loss_ == pytest.approx(ref.loss_, rel=0.1)
    with pytest.raises(ValueError, match="loss='poisson' needs y >= 0"):
        MLPRegressor(loss="poisson").fit(X, y - 1)


def test_loss_value_follows_the_gradient_it_steps_along():
    """One target: loss_ equals scikit-learn's definition, half the mean squared error."""
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((200, 4)), rng.standard_normal(200)
    est = MLPRegressor((8,), random_state=0)
    est.partial_fit(X, y)
    val_loss, _ = est._evaluate(X, y, None, 1)
    assert val_loss == pytest.approx(np.mean((est.predict(X) - y) ** 2) / 2, rel=1e-6)


@pytest.mark.parametrize("x_dtype, expected", [(np.float32, np.float32),
                                               (np.float64, np.float64),
                                               (np.int64, np.float64)])
def test_dtype_none_follows_the_input_as_scikit_learn(x_dtype, expected):
    """dtype=None: float32 input trains and predicts in float32, anything else in float64
    (scikit-learn's rule); a warm start keeps the network's dtype."""
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((80, 4)) * 3).astype(x_dtype)
    y = X.astype(np.float64) @ np.arange(1, 5.0)
    est = MLPRegressor((8,), dtype=None, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        assert est.coefs_[0].dtype == expected and est.predict(X).dtype == expected
        mean, std = est.predict(X, mc_samples=3, return_std=True)
        assert mean.dtype == std.dtype == expected and mean.shape == (80,)
        est.set_params(warm_start=True).fit(X.astype(np.float64), y)
    assert est.coefs_[0].dtype == expected


def test_a_dtype_set_for_speed_still_predicts_float64():
    """The float32 default is for speed: float64 callers get float64 predictions, as
    scikit-learn's check_regressor_multioutput demands."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 3))
    Y = X @ rng.standard_normal((3, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPRegressor((8,), max_iter=2, random_state=0).fit(X, Y)
    assert est.coefs_[0].dtype == np.float32
    assert est.predict(X).dtype == np.float64 and est.predict(X).shape == (60, 2)


# ---- predictive distributions (issue 29) ---------------------------------------------------

def _noisy_sine(n, seed, heteroscedastic):
    """y = sin(x) + sigma(x) eps on x ~ U(-3, 3); sigma known (0.5 when homoscedastic)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, (n, 1))
    sigma = (0.1 + 0.4 * np.abs(x[:, 0]) * (x[:, 0] > 0) / 3 + 0.1 * np.abs(np.sin(x[:, 0]))
             if heteroscedastic else np.full(n, 0.5))
    return x, np.sin(x[:, 0]) + sigma * rng.standard_normal(n), sigma


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_heteroscedastic_intervals_cover_what_they_say():
    """Known noise that grows with x: the 90% intervals of the Gaussian-likelihood regressor
    cover 0.9 +- 0.03 of 2000 test points, and its noise tracks the true one."""
    from fastdrop.scores import interval_coverage
    x, y, sigma = _noisy_sine(6000, 0, heteroscedastic=True)
    est = MLPRegressor((64, 64), loss="gaussian_nll", max_iter=60, random_state=0,
                       learning_rate_init=3e-3, batch_size=128).fit(x[:4000], y[:4000])
    d = est.predict_distribution(x[4000:])
    coverage = interval_coverage(y[4000:], d.mean, d.std)
    assert abs(coverage[0.9] - 0.9) <= 0.03, coverage
    assert np.corrcoef(d.aleatoric_std, sigma[4000:])[0, 1] > 0.9
    assert est.predict(x[4000:]).shape == (2000,)  # the means only
    np.testing.assert_allclose(est.predict(x[4000:]), d.mean, rtol=1e-6)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_noise_recovers_the_noise_precision_on_validation_data():
    """Homoscedastic noise 0.5 (tau = 4): tau chosen on 5000 held-out rows within 10%, with
    one weight-scaled pass and with 20 MC-dropout passes; the distribution's mixture then
    scores with fastdrop.scores."""
    from fastdrop.scores import interval_coverage, mixture_log_likelihood
    x, y, _ = _noisy_sine(10000, 1, heteroscedastic=False)
    est = MLPRegressor((64, 64), dropout=0.05, max_iter=60, random_state=0,
                       learning_rate_init=3e-3, batch_size=128).fit(x[:3000], y[:3000])
    with pytest.raises(ValueError, match="fit_noise"):
        est.predict_distribution(x[:5])
    for mc in (None, 20):
        est.fit_noise(x[3000:8000], y[3000:8000], mc_samples=mc)
        assert est.noise_precision_ == pytest.approx([4.0], rel=0.10)
    d = est.predict_distribution(x[8000:], mc_samples=20)
    assert d.passes.shape == d.noise_std.shape == (20, 2000)
    assert np.all(d.std >= d.epistemic_std) and np.all(d.epistemic_std > 0)
    assert abs(interval_coverage(y[8000:], d.mean, d.std)[0.9] - 0.9) <= 0.03
    ll = mixture_log_likelihood(y[8000:], d.passes, d.noise_std)
    assert ll == pytest.approx(-0.5 * np.log(2 * np.pi * 0.25) - 0.5, abs=0.05)


def test_predictive_distribution_refuses_what_it_cannot_do():
    x, y, _ = _noisy_sine(300, 2, heteroscedastic=True)
    est = quiet_fit(MLPRegressor((8,), loss="gaussian_nll", max_iter=2, random_state=0), x, y)
    with pytest.raises(ValueError, match="predicts its own noise"):
        est.fit_noise(x, y)
    plain = quiet_fit(MLPRegressor((8,), max_iter=2, random_state=0), x, y)
    with pytest.raises(ValueError, match="NaN"):
        plain.fit_noise(x, np.where(np.arange(len(y)) == 5, np.nan, y))
    est.set_params(warm_start=True, loss="squared_error")
    with pytest.raises(ValueError, match="output layer has 2 columns and this loss needs 1"):
        est.fit(x, y)
    two = quiet_fit(MLPRegressor((8,), loss="gaussian_nll", max_iter=2, random_state=0), x,
                    np.c_[y, -y])
    d = two.predict_distribution(x[:5], mc_samples=3)
    assert d.mean.shape == d.std.shape == (5, 2) and d.passes.shape == (3, 5, 2)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_deep_ensemble_has_the_estimators_uncertainty_api():
    """Lakshminarayanan et al. 2017 as a first-class option: members with their own seeds,
    their mixture scored like MC dropout's passes (regression and classification)."""
    from sklearn.datasets import load_digits
    from fastdrop import DeepEnsemble, MLPClassifier
    from fastdrop.scores import interval_coverage, mixture_log_likelihood
    x, y, _ = _noisy_sine(3000, 4, heteroscedastic=True)
    ens = DeepEnsemble(MLPRegressor((32, 32), loss="gaussian_nll", max_iter=40,
                                    learning_rate_init=3e-3), n_members=3,
                       random_state=0).fit(x[:2000], y[:2000])
    seeds = {m.random_state for m in ens.estimators_}
    assert len(seeds) == 3
    d = ens.predict_distribution(x[2000:])
    assert d.passes.shape == (3, 1000) and np.all(d.epistemic_std > 0)
    assert abs(interval_coverage(y[2000:], d.mean, d.std)[0.9] - 0.9) <= 0.05
    mean, std = ens.predict(x[2000:], return_std=True)
    np.testing.assert_allclose(mean, d.mean, rtol=1e-6)
    assert np.isfinite(mixture_log_likelihood(y[2000:], d.passes, d.noise_std))
    plain = DeepEnsemble(MLPRegressor((16,), max_iter=20), n_members=2, random_state=1)
    plain.fit(x[:1000], y[:1000])
    with pytest.raises(ValueError, match="fit_noise"):
        plain.predict_distribution(x[:5])
    assert plain.fit_noise(x[1000:2000], y[1000:2000]).noise_precision_.shape == (1,)
    assert plain.predict_distribution(x[:5]).passes.shape == (2, 5)
    X, yd = load_digits(return_X_y=True)
    clf = DeepEnsemble(MLPClassifier((32,), max_iter=60), n_members=2, random_state=0)
    clf.fit(X[:1000] / 16, yd[:1000])
    u = clf.predict_uncertainty(X[1000:] / 16)
    assert u.proba.shape == (797, 10) and np.all(u.mutual_information >= 0)
    assert clf.score(X[1000:] / 16, yd[1000:]) > 0.85
    with pytest.raises(ValueError, match="n_members"):
        DeepEnsemble(n_members=0).fit(x, y)
    with pytest.raises(TypeError, match="estimator must be a fastdrop"):
        DeepEnsemble(SklearnMLPRegressor()).fit(x, y)
    bad = y[1000:2000].copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        plain.fit_noise(x[1000:2000], bad)
    # rows or targets that do not match the members' predictions: an error, not a reshape
    with pytest.raises(ValueError, match="as many rows, got 1000 and 500"):
        plain.fit_noise(x[1000:2000], y[1000:1500])
    with pytest.raises(ValueError, match="1 target"):
        plain.fit_noise(x[1000:2000], np.column_stack([y[1000:2000]] * 2))
