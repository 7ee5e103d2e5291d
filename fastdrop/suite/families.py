"""The regularizer families of the study, in one table: what each searches, what its strength
means, what its rate 0 is, which estimator parameters it sets and how figures draw it.

A family is one row of FAMILIES; everything else (run configurations, selection, claims,
plots, the command line's help) reads it from here. Adding a family is adding a row.
"""
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Family:
    name: str
    strength: str            # what a configuration's ``strength`` means, in words
    searched: str | None     # the estimator parameter the strength sets (None: nothing)
    params: Callable         # strength -> the estimator parameters the family sets
    color: str               # matplotlib colour of its curves and bars
    grid: str = "rates"      # where its strengths come from: "rates" (the rate sweep given),
    #                          a Profile attribute ("l2_grid"), or "" (strength 0 only)
    plain_at_zero: bool = False  # its rate 0 is the plain network: the "none" family
    noise: bool = False      # a kind of noise compared with Bernoulli dropout

    @property
    def is_rate(self):
        """True when the strength is a drop rate, in [0, 1)."""
        return self.grid == "rates"


def _row(*args, **kw):
    family = Family(*args, **kw)
    return family.name, family


FAMILIES = dict([
    _row("none", "unused", None, lambda s: {}, "black", grid=""),
    _row("early-stopping", "unused: no penalty, stops on validation and restores the best "
         "epoch's weights (a family of its own when the profile's switch is off)", None,
         lambda s: {}, "tab:brown", grid=""),
    _row("l2", "alpha (scikit-learn's scaling)", "alpha", lambda s: {"alpha": s},
         "tab:orange", grid="l2_grid"),
    _row("l1", "l1 penalty", "l1", lambda s: {"l1": s}, "tab:green", grid="l1_grid"),
    _row("dropout", "drop rate on every hidden layer, per-example masks", "dropout",
         lambda s: {"dropout": s}, "tab:blue", plain_at_zero=True),
    _row("dropout-batch", "drop rate on every hidden layer, one unit mask per mini-batch",
         "dropout", lambda s: {"dropout": s, "dropout_mode": "batch"}, "tab:cyan",
         plain_at_zero=True),
    _row("dropout-l2", "alpha, added to dropout's validation-chosen rate and learning rate",
         "alpha", lambda s: {"alpha": s}, "tab:olive", grid="l2_grid"),
    _row("dropout-maxnorm", "drop rate, plus max-norm on every hidden unit, under SGD with "
         "momentum at large steps (Srivastava et al.'s setting, where it binds)", "dropout",
         lambda s: {"dropout": s, "solver": "sgd", "momentum": 0.9, "max_norm": 3.0},
         "tab:purple"),
    _row("input-dropout", "drop rate on the inputs (hidden layers at 0.5)", "input_dropout",
         lambda s: {"dropout": 0.5, "input_dropout": s}, "tab:pink"),
    _row("gaussian-dropout", "the Bernoulli rate whose variance multiplicative Gaussian noise "
         "on every hidden layer matches, p / (1 - p) (Srivastava et al. 2014, section 10)",
         "dropout", lambda s: {"dropout": s, "dropout_kind": "gaussian"}, "tab:red",
         plain_at_zero=True, noise=True),
    # rate 0 is still a SELU network with LeCun initialization: not the plain network
    _row("alpha-dropout", "alpha dropout rate on every hidden layer of a SELU network with "
         "LeCun initialization (Klambauer et al. 2017); rate 0 is that network alone",
         "dropout", lambda s: {"dropout": s, "dropout_kind": "alpha", "activation": "selu",
                               "init": "lecun"}, "tab:gray", noise=True),
    _row("dropconnect", "drop rate of every layer's weights, one mask per mini-batch "
         "(Wan et al. 2013)", "dropconnect", lambda s: {"dropconnect": s}, "gold",
         plain_at_zero=True, noise=True),
])

# The kinds of noise the study compares with Bernoulli dropout (`fastdrop sweep
# --regularizers`), in table order.
NOISE_FAMILIES = tuple(name for name, f in FAMILIES.items() if f.noise)
# The families every dataset of `fastdrop run` has, in the order tables list them: no
# regularization, the penalties, dropout and dropout with L2. The comparisons across
# datasets (ranks, Friedman, post-hoc tests, the critical-difference figure) are over them.
CORE = ("none", "l1", "l2", "dropout", "dropout-l2")
# Estimator parameters searched on a log scale (their grids extend by their outermost step);
# the others are drop rates (extended by 0.1 within 0.1 .. 0.9).
LOG_PARAMS = ("alpha", "l1", "learning_rate_init", "max_norm")


def get_family(name):
    """The Family called ``name``, or ValueError listing them."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"regularizer must be one of {sorted(FAMILIES)}, got {name!r}") \
            from None


def searched_param(family):
    """The parameter a family's strength sets (None where nothing is searched); a family not
    in the table (a record from another version) is taken as a drop rate."""
    f = FAMILIES.get(family)
    return f.searched if f is not None else "dropout"


def color(family):
    f = FAMILIES.get(family)
    return f.color if f is not None else "tab:gray"
