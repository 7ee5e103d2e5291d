"""What a run is: (dataset, architecture, regularizer, strength, seed) under a profile."""
import hashlib
import json
import numbers
from dataclasses import asdict, dataclass, field

from .datasets import check_name

ARCHITECTURES = {
    # hidden widths, output: the MLP default, and the article's Keras experiment as an MLP
    "default": {"hidden": (256, 256), "output": "softmax"},
    "seed": {"hidden": (64, 128, 256, 512, 512), "output": "sigmoid"},
}

REGULARIZERS = {
    # name: what ``strength`` means
    "none": "unused",
    "early-stopping": "unused: no penalty, stops on the validation part's accuracy and "
                      "restores the best epoch's weights",
    "l2": "alpha (scikit-learn's scaling)",
    "l1": "l1 penalty",
    "dropout": "drop rate on every hidden layer, per-example masks",
    "dropout-batch": "drop rate on every hidden layer, one unit mask per mini-batch",
    "dropout-maxnorm": "drop rate, plus max-norm 3.0 on every hidden unit",
    "input-dropout": "drop rate on the inputs (hidden layers at 0.5)",
}


DROPOUT_FAMILIES = ("dropout", "dropout-batch", "dropout-maxnorm", "input-dropout")
# The estimator parameter a family's strength sets (None: nothing searched; else "dropout").
SEARCHED_PARAM = {"none": None, "early-stopping": None, "l2": "alpha", "l1": "l1",
                  "input-dropout": "input_dropout"}


RATES = tuple(round(0.1 * i, 1) for i in range(10))


@dataclass(frozen=True)
class Profile:
    """Training budget and grids; ``quick`` keeps `fastdrop run` under 10 minutes on 2 cores."""
    name: str
    max_iter: int                    # epochs at most (the stopping rule usually ends sooner)
    n_iter_no_change: int            # scikit-learn's rule, on the training loss
    tol: float
    batch_size: int
    learning_rate_init: float        # Adam
    datasets: tuple                  # what `fastdrop run` uses
    seeds: tuple
    rates: tuple                     # the article's sweep: 0.0 .. 0.9
    batch_rates: tuple               # batch-mode rates in `fastdrop run`
    l2_grid: tuple
    l1_grid: tuple
    seed_arch_datasets: tuple = ()   # where `fastdrop run` also sweeps the "seed" architecture
    seed_arch_rates: tuple = RATES   # its rates (64-...-512 is slow: quick trims them)
    mc_samples: tuple = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)  # thinned networks averaged
    mc_rates: tuple = (0.2, 0.5, 0.8)
    trims: str = ""                  # what this profile leaves out, said when it runs


# Equal-size log grids, from no visible effect to clearly too strong (on MNIST-1D); a choice
# at an edge extends its grid by a decade (extend_grids).
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
L1_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
PROFILES = {
    "quick": Profile("quick", max_iter=150, n_iter_no_change=8, tol=1e-4, batch_size=64,
                     learning_rate_init=1e-3, datasets=("mnist1d",),
                     seeds=(0, 1, 2, 3, 4), rates=RATES, batch_rates=(0.2, 0.5, 0.8),
                     l2_grid=L2_GRID, l1_grid=L1_GRID, seed_arch_datasets=("mnist1d",),
                     seed_arch_rates=(0.0, 0.1, 0.2, 0.3, 0.5),
                     trims="MNIST-1D only; batch-mode dropout at 0.2, 0.5, 0.8; the "
                           "article's network at rates 0-0.3 and 0.5 (full: 0.0-0.9, 10 "
                           "repeats, 7 datasets)"),
    "full": Profile("full", max_iter=300, n_iter_no_change=10, tol=1e-4, batch_size=128,
                    learning_rate_init=1e-3,
                    datasets=("mnist1d", "mnist1d-20k", "digits", "breast_cancer", "wine",
                              "synthetic", "synthetic-60k"),
                    seeds=tuple(range(10)), rates=RATES, batch_rates=RATES[1:],
                    l2_grid=L2_GRID, l1_grid=L1_GRID,
                    seed_arch_datasets=("mnist1d", "mnist1d-20k")),
}
MAX_GRID_EXTENSIONS = 2  # decades added at most on each side


def get_profile(name):
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {name!r}")
    return PROFILES[name]


@dataclass(frozen=True)
class RunConfig:
    dataset: str
    regularizer: str
    strength: float
    seed: int
    arch: str = "default"
    profile: str = "quick"
    overrides: tuple = field(default=())  # extra (name, value) estimator parameters

    def __post_init__(self):
        check_name(self.dataset)
        if self.regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {sorted(REGULARIZERS)}, "
                             f"got {self.regularizer!r}")
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}, got {self.arch!r}")
        get_profile(self.profile)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        high = 1.0 if self.regularizer in DROPOUT_FAMILIES else float("inf")
        if not 0.0 <= self.strength < high:
            what = "a drop rate in [0, 1)" if high == 1.0 else "a penalty >= 0"
            raise ValueError(f"{self.regularizer} strength must be {what}, got {self.strength}")

    @property
    def key(self):
        """Stable identity of the run: what resuming a sweep compares."""
        text = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    @property
    def family(self):
        """The regularizer family for plots (rate 0 of any dropout flavour is 'none')."""
        if self.regularizer.startswith("dropout") and self.strength == 0:
            return "none"
        return self.regularizer

    def search_params(self):
        """What was searched for this configuration's family, as a dict (the record's
        ``params``): the strength under its own name, and any overrides."""
        name = SEARCHED_PARAM.get(self.regularizer, "dropout")
        params = {name: self.strength} if name else {}
        params.update(dict(self.overrides))
        return params

    def estimator_params(self):
        p = get_profile(self.profile)
        arch = ARCHITECTURES[self.arch]
        params = dict(hidden_layer_sizes=arch["hidden"], output_activation=arch["output"],
                      alpha=0.0, max_iter=p.max_iter, n_iter_no_change=p.n_iter_no_change,
                      tol=p.tol, batch_size=p.batch_size,
                      learning_rate_init=p.learning_rate_init, random_state=self.seed)
        s = self.strength
        if self.regularizer == "early-stopping":
            params["early_stopping"] = True
        elif self.regularizer == "l2":
            params["alpha"] = s
        elif self.regularizer == "l1":
            params["l1"] = s
        elif self.regularizer == "dropout":
            params["dropout"] = s
        elif self.regularizer == "dropout-batch":
            params.update(dropout=s, dropout_mode="batch")
        elif self.regularizer == "dropout-maxnorm":
            params.update(dropout=s, max_norm=3.0)
        elif self.regularizer == "input-dropout":
            params.update(dropout=0.5, input_dropout=s)
        params.update(dict(self.overrides))
        return params


def grid(datasets, regularizers, rates, seeds, *, profile="quick", arch="default",
         l1_grid=None, l2_grid=None):
    """Every combination; ``rates`` serve the dropout flavours, the grids L1 and L2."""
    p = get_profile(profile)
    strengths = {"none": (0.0,), "early-stopping": (0.0,), "l2": l2_grid or p.l2_grid,
                 "l1": l1_grid or p.l1_grid}
    configs = []
    for dataset in datasets:
        for reg in regularizers:
            for s in strengths.get(reg, rates):
                for seed in seeds:
                    configs.append(RunConfig(dataset, reg, float(s), _as_int(seed), arch,
                                             profile))
    return configs


def _as_int(value):
    """numpy integers become ints; anything else is left for RunConfig to refuse (1.7 must
    not silently become seed 1)."""
    return int(value) if isinstance(value, numbers.Integral) else value


def default_suite(profile="quick"):
    """What `fastdrop run` runs: the rate sweep (element and batch), L1/L2 grids, early
    stopping alone and input dropout, on the profile's datasets and repeats; plus the
    "seed" architecture's rate sweep where the profile asks for it. (Dropout + max-norm is
    left out: under Adam at 1e-3 its constraint never bound, so its rows equalled plain
    dropout's.)"""
    p = get_profile(profile)
    configs = grid(p.datasets, ["dropout"], p.rates, p.seeds, profile=profile)
    configs += grid(p.datasets, ["dropout-batch"], p.batch_rates, p.seeds, profile=profile)
    configs += grid(p.datasets, ["l2", "l1", "early-stopping"], (), p.seeds, profile=profile)
    configs += grid(p.datasets, ["input-dropout"], (0.2,), p.seeds, profile=profile)
    configs += grid(p.seed_arch_datasets, ["dropout"], p.seed_arch_rates, p.seeds,
                    profile=profile, arch="seed")
    return configs


# The [sweep] table of a TOML grid: key -> (type of the value or of each item, is a list).
SWEEP_KEYS = {
    "datasets": (str, True), "regularizers": (str, True), "rates": (float, True),
    "l1": (float, True), "l2": (float, True), "seeds": (int, True),
    "arch": (str, False), "profile": (str, False),
}


def sweep_spec(doc, source):
    """The checked ``[sweep]`` table of a parsed TOML file: a misspelled key, a misnamed
    table, an empty list or a value of the wrong type is an error naming it, never a
    silent fall-back to the defaults."""
    if "sweep" not in doc:
        found = ", ".join(sorted(doc)) or "nothing"
        raise ValueError(f"{source}: no [sweep] table (found {found})")
    extra = sorted(set(doc) - {"sweep"})
    if extra:
        raise ValueError(f"{source}: unknown top-level key(s) {', '.join(extra)}; the grid "
                         "belongs in the [sweep] table")
    table = doc["sweep"]
    if not isinstance(table, dict):
        raise ValueError(f"{source}: sweep must be a table ([sweep]), got "
                         f"{type(table).__name__} {table!r}")
    spec = {}
    for key, value in table.items():
        if key not in SWEEP_KEYS:
            raise ValueError(f"{source}: unknown key sweep.{key}; expected one of "
                             f"{', '.join(SWEEP_KEYS)}")
        spec[key] = _sweep_value(f"{source}: sweep.{key}", value, *SWEEP_KEYS[key])
    return spec


def _sweep_value(name, value, kind, is_list):
    if not is_list:
        if not isinstance(value, kind):
            raise ValueError(f"{name} must be a {kind.__name__}, got {value!r}")
        return value
    if not isinstance(value, list) or not value:
        raise ValueError(f"{name} must be a non-empty list of {kind.__name__}, got {value!r}")
    return [_sweep_item(name, v, kind) for v in value]


def _sweep_item(name, v, kind):
    ok = (not isinstance(v, bool)) and (
        isinstance(v, (int, float)) if kind is float else isinstance(v, kind))
    if not ok:
        raise ValueError(f"{name} must hold {kind.__name__} values, got {v!r}")
    return kind(v)


def extend_grids(selected, configs):
    """Configurations one decade past an L1 or L2 grid's edge where validation chose that
    edge (``selected``: summary.select's entries), for the repeats ``configs`` ran; with the
    families and the values added, for the record."""
    new, events = [], []
    for entry in selected:
        family, grid_values = entry["family"], entry["grid"]
        if family not in ("l1", "l2") or not entry["at_grid_edge"]:
            continue
        value = entry["params"][SEARCHED_PARAM[family]]
        added = value * 10 if value == max(grid_values) else value / 10
        runs = [c for c in configs if c.dataset == entry["dataset"] and c.regularizer == family
                and c.arch == entry["arch"]]
        for c in {(c.seed, c.profile): c for c in runs}.values():
            new.append(RunConfig(c.dataset, family, added, c.seed, c.arch, c.profile))
        events.append({"dataset": entry["dataset"], "family": family, "grid": grid_values,
                       "chosen": value, "added": added})
    return new, events
