"""`python fit_fingerprint.py save` on one commit, `python fit_fingerprint.py check` on another:
124 arrays (weights, losses, probabilities, MC passes) of fits over every engine path."""
import sys, itertools, warnings
import numpy as np
from sklearn.datasets import load_digits, make_regression
from fastdrop import MLPClassifier, MLPRegressor

X, y = load_digits(return_X_y=True); X = (X / 16).astype(np.float64)
Xr, yr = make_regression(300, 10, n_targets=2, random_state=0)
cases = []
for kind, act, mode, scale, dc, dt, solver in [
    ("bernoulli", "relu", "element", "inverted", 0.0, "float32", "adam"),
    ("bernoulli", "relu", "element", "classic", 0.0, "float64", "sgd"),
    ("bernoulli", "relu", "batch", "inverted", 0.0, "float32", "adam"),
    ("bernoulli", "relu", "batch", "classic", 0.0, "float64", "adam"),
    ("bernoulli", "tanh", "element", "inverted", 0.0, "float32", "adam"),
    ("bernoulli", "logistic", "batch", "inverted", 0.0, "float64", "sgd"),
    ("gaussian", "relu", "element", "inverted", 0.0, "float32", "adam"),
    ("gaussian", "tanh", "element", "inverted", 0.0, "float64", "adam"),
    ("alpha", "selu", "element", "inverted", 0.0, "float32", "adam"),
    ("bernoulli", "relu", "element", "inverted", 0.3, "float32", "adam"),
    ("gaussian", "relu", "element", "inverted", 0.3, "float64", "sgd"),
    ("bernoulli", "identity", "element", "classic", 0.0, "float32", "adam"),
]:
    cases.append(dict(dropout_kind=kind, activation=act, dropout_mode=mode, dropout_scale=scale,
                      dropconnect=dc, dtype=dt, solver=solver))
out = {}
warnings.simplefilter("ignore")
for i, c in enumerate(cases):
    for nt in (1, 2):
        est = MLPClassifier((40, 30), dropout=[0.3, 0.5], input_dropout=0.2, max_iter=6,
                            random_state=i, n_threads=nt, alpha=1e-3, l1=1e-5, **c,
                            early_stopping=(i % 3 == 0), max_norm=(3.0 if i % 4 == 1 else None))
        est.fit(X, y)
        out[f"c{i}t{nt}_coefs"] = np.concatenate([w.ravel() for w in est.coefs_ + est.intercepts_])
        out[f"c{i}t{nt}_loss"] = np.array(est.loss_curve_)
        out[f"c{i}t{nt}_proba"] = est.predict_proba(X[:300])
        out[f"c{i}t{nt}_mc"] = est.predict_proba(X[:300], mc_samples=3)
        est.set_params(warm_start=True, max_iter=2); est.fit(X[:500], y[:500])
        out[f"c{i}t{nt}_pf"] = est.predict_proba(X[:50])
reg = MLPRegressor((20,), dropout=0.2, max_iter=5, random_state=0, early_stopping=True).fit(Xr, yr)
out["reg"] = reg.predict(Xr[:50]); out["reg_mc"] = reg.predict(Xr[:50], mc_samples=4, return_std=True)[1]
lb = MLPClassifier((20,), solver="lbfgs", max_iter=20, random_state=0).fit(X, y)
out["lbfgs"] = lb.predict_proba(X[:50]); out["lbfgs_loss"] = np.array(lb.loss_curve_)
if sys.argv[1] == "save":
    np.savez("fit_fingerprint.npz", **out); print("saved", len(out))
else:
    ref = np.load("fit_fingerprint.npz")
    bad = [k for k in ref.files if not np.array_equal(ref[k], out[k], equal_nan=True)]
    print("identical" if not bad else f"DIFFER: {bad}"); sys.exit(bool(bad))
