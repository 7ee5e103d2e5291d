"""
Monte-Carlo dropout regression: uncertainty where there is no data
==================================================================

Monte-Carlo dropout on a 1-D regression with a gap in its training inputs: the predictive
standard deviation grows where the network has seen no data (Gal & Ghahramani 2016).

Fits :class:`fastdrop.MLPRegressor` (two hidden layers of 128, dropout 0.2) to sin(x) + noise
on 1.5 < ``|x|`` < 4, then draws 200 stochastic passes over a grid and plots their mean and two
standard deviations; prints the mean standard deviation inside the gap and on the data.
``python examples/mc_dropout_regression.py figure.png`` writes the README's figure.
"""
import sys
import warnings

import numpy as np

import fastdrop


def gap_problem(seed=0):
    rng = np.random.default_rng(seed)
    x = np.r_[rng.uniform(-4, -1.5, 150), rng.uniform(1.5, 4, 150)]
    return x[:, None], np.sin(x) + 0.1 * rng.standard_normal(x.size)


def main(path=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y = gap_problem()
    est = fastdrop.MLPRegressor((128, 128), dropout=0.2, max_iter=400, learning_rate_init=0.01,
                                random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached: the fit is long enough here
        est.fit(X, y)
    grid = np.linspace(-5, 5, 401)[:, None]
    mean, std = est.predict(grid, mc_samples=200, return_std=True)
    in_gap, on_data = np.abs(grid[:, 0]) < 1, (np.abs(grid[:, 0]) > 1.7) & (
        np.abs(grid[:, 0]) < 3.8)
    print(f"mean predictive std: {std[in_gap].mean():.3f} in the gap (|x| < 1), "
          f"{std[on_data].mean():.3f} on the data (1.7 < |x| < 3.8)")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.axvspan(-1.5, 1.5, color="0.93", label="no training data")
    ax.plot(X[:, 0], y, ".", ms=3, color="0.4", label="training data")
    ax.plot(grid[:, 0], np.sin(grid[:, 0]), "k:", lw=1, label="sin(x)")
    ax.plot(grid[:, 0], mean, color="tab:blue", label="MC mean (200 passes)")
    ax.fill_between(grid[:, 0], mean - 2 * std, mean + 2 * std, color="tab:blue", alpha=0.25,
                    label="mean +- 2 std")
    ax.set_xlabel("x")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("fastdrop.MLPRegressor, dropout 0.2: Monte-Carlo predictive uncertainty",
                 fontsize=9)
    fig.tight_layout()
    if path is None:  # the gallery shows the open figure
        plt.show()
    else:
        fig.savefig(path, dpi=120)
        print(f"wrote {path}")


if __name__ == "__main__":
    main(*sys.argv[1:])
