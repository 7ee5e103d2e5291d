"""What a run is: (dataset, architecture, regularizer, strength, seed) under a profile."""
import hashlib
import itertools
import json
import numbers
from dataclasses import asdict, dataclass, field

from .datasets import check_name
from .families import FAMILIES, LOG_PARAMS, get_family

ARCHITECTURES = {
    # hidden widths, output: the MLP default, and the article's Keras experiment as an MLP
    "default": {"hidden": (256, 256), "output": "softmax"},
    "seed": {"hidden": (64, 128, 256, 512, 512), "output": "sigmoid"},
}

LEARNING_RATE = "learning_rate_init"


RATES = tuple(round(0.1 * i, 1) for i in range(10))


@dataclass(frozen=True)
class Profile:
    """Training budget and grids; ``quick`` keeps `fastdrop run` under 10 minutes on 2 cores."""
    name: str
    max_iter: int                    # epochs at most (early stopping usually ends sooner)
    n_iter_no_change: int            # patience of the stopping rule, in epochs
    tol: float
    batch_size: int
    learning_rates: tuple            # Adam's step sizes, searched for every family
    datasets: tuple                  # what `fastdrop run` uses
    seeds: tuple
    rates: tuple                     # the rate sweep (0 is the "none" family)
    batch_rates: tuple               # batch-mode rates in `fastdrop run`
    l2_grid: tuple
    l1_grid: tuple
    # The switch: every family stops on the validation part's accuracy and restores its
    # best epoch's weights; off, each trains until scikit-learn's rule on the training
    # loss fires and "early-stopping" runs as a family of its own.
    early_stopping: bool = True
    seed_arch_datasets: tuple = ()   # where `fastdrop run` also sweeps the "seed" architecture
    seed_arch_rates: tuple = RATES   # its rates (64-...-512 is slow: quick trims them)
    seed_arch_learning_rate: float = 1e-3  # Keras's Adam default, as the article trained it
    seed_arch_penalties: bool = False  # L1 and L2 on it too (references on its sweep)
    longer_budget: int = 3           # the article's network again at its top rate, this many
    #                                  times the epochs
    maxnorm_rates: tuple = (0.5,)    # dropout + max-norm: drop rates,
    maxnorm_radii: tuple = (1.0, 2.0, 4.0)  # radii (Srivastava et al.: 3-4 on raw pixels; on
    #                                   40 standardized features 3 hardly ever binds),
    maxnorm_learning_rates: tuple = (0.03, 0.1)  # and SGD step sizes
    mc_samples: tuple = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)  # thinned networks averaged
    mc_rates: tuple = (0.2, 0.5, 0.8)
    cost_rates: tuple = (0.2, 0.5, 0.8)  # epoch cost per rate, element and batch mode
    cost_dataset: str = "mnist1d-20k"    # where that is timed (epochs long enough to time)
    trims: str = ""                  # what this profile leaves out, said when it runs
    # (dataset, most repeats): where more repeats than ``seeds`` may run, when the pilot
    # says they narrow the main comparison (study.plan_repeats)
    max_repeats: tuple = ()
    # where batch-mode dropout, input dropout and dropout + max-norm run (None: everywhere)
    extras_datasets: tuple | None = None
    # the uncertainty stage (suite/predictive.py): classification sets the study swept, and
    # regression sets of predictive.REGRESSION_SETS
    uncertainty_datasets: tuple = ()

    @property
    def stopping(self):
        """The stopping rule, in words (for the summary's protocol)."""
        if self.early_stopping:
            return (f"every family: early stopping on validation accuracy, patience "
                    f"{self.n_iter_no_change} epochs, the best epoch's weights restored, at "
                    f"most {self.max_iter} epochs")
        return (f"scikit-learn's rule on the training loss (patience {self.n_iter_no_change}), "
                f"at most {self.max_iter} epochs; early stopping is a family of its own")


# Equal-size log grids, from no visible effect to clearly too strong (on MNIST-1D); a choice
# at an edge extends its grid (extend_grids).
L2_GRID = (1e-3, 1e-2, 1e-1, 1.0)
L1_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
# Adam's step sizes: two to start, grown past whichever edge validation chooses (at the
# chosen strength), as every other grid is.
LEARNING_RATES = (3e-3, 1e-2)
SMALL_SETS = ("digits", "breast_cancer", "wine", "iris")
PROFILES = {
    "quick": Profile("quick", max_iter=150, n_iter_no_change=15, tol=1e-4, batch_size=64,
                     learning_rates=LEARNING_RATES,
                     datasets=("mnist1d",) + SMALL_SETS + ("synthetic-1500x20x4",),
                     seeds=(0, 1, 2, 3, 4), rates=(0.0, 0.1, 0.2, 0.3, 0.5, 0.8),
                     batch_rates=(), l2_grid=L2_GRID, l1_grid=L1_GRID,
                     max_repeats=(("digits", 12), ("breast_cancer", 20), ("wine", 20),
                                  ("iris", 20)),
                     extras_datasets=("mnist1d",), maxnorm_rates=(), mc_rates=(0.5,),
                     trims="the rate sweep at 0-0.3, 0.5, 0.8; input dropout on MNIST-1D "
                           "only; 5 repeats (up to 12-20 on the small sets where they "
                           "narrow the main comparison); Monte-Carlo averaging at p = 0.5; "
                           "batch-mode fits (its epochs are still timed), dropout + "
                           "max-norm and the article's 64-128-256-512-512 network left out "
                           "(full: every rate 0.0-0.9 in both modes, 10-20 repeats, "
                           "max-norm, the article's network with L1/L2, the uncertainty stage)"),
    "full": Profile("full", max_iter=300, n_iter_no_change=20, tol=1e-4, batch_size=64,
                    learning_rates=LEARNING_RATES,
                    datasets=("mnist1d",) + SMALL_SETS + ("synthetic",),
                    seeds=tuple(range(10)), rates=RATES, batch_rates=RATES[1:],
                    l2_grid=L2_GRID, l1_grid=L1_GRID,
                    seed_arch_datasets=("mnist1d",), seed_arch_penalties=True,
                    maxnorm_rates=(0.2, 0.5, 0.8),
                    max_repeats=(("digits", 20), ("breast_cancer", 20), ("wine", 20),
                                 ("iris", 20)),
                    uncertainty_datasets=("mnist1d", "diabetes", "heteroscedastic"),
                    trims="MNIST-1D 20k and synthetic-60k left out of the fits (each fit "
                          "costs 5-20x MNIST-1D's and decides no claim the others do not; "
                          "MNIST-1D 20k still times the epochs)"),
}
MAX_GRID_EXTENSIONS = 2  # steps added at most past each edge


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
    overrides: tuple = field(default=())  # extra (name, value) estimator parameters, sorted
    budget: int = 1                       # the profile's max_iter times this

    def __post_init__(self):
        check_name(self.dataset)
        family = get_family(self.regularizer)
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {sorted(ARCHITECTURES)}, got {self.arch!r}")
        get_profile(self.profile)
        for name, low, what in (("seed", 0, "non-negative"), ("budget", 1, "positive")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be a {what} int, got {value!r}")
        high = 1.0 if family.is_rate else float("inf")
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
        if FAMILIES[self.regularizer].plain_at_zero and self.strength == 0:
            return "none"
        return self.regularizer

    def search_params(self):
        """What was searched for this configuration's family, as a dict (the record's
        ``params``): the strength under its own name, and the overrides."""
        name = FAMILIES[self.regularizer].searched
        params = {name: self.strength} if name else {}
        params.update(dict(self.overrides))
        return params

    def estimator_params(self):
        p = get_profile(self.profile)
        arch = ARCHITECTURES[self.arch]
        params = dict(hidden_layer_sizes=arch["hidden"], output_activation=arch["output"],
                      alpha=0.0, max_iter=p.max_iter * self.budget,
                      n_iter_no_change=p.n_iter_no_change, tol=p.tol, batch_size=p.batch_size,
                      learning_rate_init=p.learning_rates[0], random_state=self.seed,
                      early_stopping=p.early_stopping or self.regularizer == "early-stopping")
        params.update(FAMILIES[self.regularizer].params(self.strength))
        params.update(dict(self.overrides))
        return params


def grid(datasets, regularizers, rates, seeds, *, profile="quick", arch="default",
         l1_grid=None, l2_grid=None, searched=None, budget=1):
    """Every combination; ``rates`` serve the dropout flavours, the grids L1 and L2.
    ``searched``: {estimator parameter: values} crossed with them (default: _searched)."""
    p = get_profile(profile)
    given = {"l2_grid": l2_grid, "l1_grid": l1_grid}
    configs = {}
    for dataset in datasets:
        for reg in regularizers:
            # dropout + L2 crosses the L2 grid with the rates
            extra = [(("dropout", float(r)),) for r in rates] if reg == "dropout-l2" else [()]
            for s in _strengths(get_family(reg), rates, p, given):
                # rate 0 of a family whose rate 0 is the plain network: that network, once
                name = "dropout" if FAMILIES[reg].plain_at_zero and s == 0 else reg
                for overrides in _combinations(searched or _searched(p, reg, arch)):
                    for more in extra:
                        for seed in seeds:
                            c = RunConfig(dataset, name, float(s), _as_int(seed), arch,
                                          profile, tuple(sorted(overrides + more)), budget)
                            configs.setdefault(c.key, c)
    return list(configs.values())


def _strengths(family, rates, p, given):
    """The strengths a family runs: the rates given, its profile grid (unless ``given``
    overrides it), or 0 alone."""
    if family.is_rate:
        return rates
    if not family.grid:
        return (0.0,)
    return given.get(family.grid) or getattr(p, family.grid)


def _searched(p, regularizer, arch):
    """What a family searches besides its strength, by default: the learning rates (the
    article's one for its own network; SGD's, and the radii, for dropout + max-norm)."""
    if regularizer == "dropout-maxnorm":
        return {"max_norm": p.maxnorm_radii, LEARNING_RATE: p.maxnorm_learning_rates}
    return {LEARNING_RATE: (p.seed_arch_learning_rate,) if arch == "seed" else p.learning_rates}


def _combinations(searched):
    """Every combination of {name: values} as sorted (name, value) tuples."""
    return [tuple(sorted(zip(searched, values)))
            for values in itertools.product(*searched.values())]


def _as_int(value):
    """numpy integers become ints; anything else is left for RunConfig to refuse (1.7 must
    not silently become seed 1)."""
    return int(value) if isinstance(value, numbers.Integral) else value


def default_suite(profile="quick"):
    """What `fastdrop run` runs first: the rate sweep (element and batch), L1/L2 grids, input
    dropout and dropout + max-norm, each crossed with the learning rates, on the profile's
    datasets and repeats (early stopping alone where the profile's switch is off); the
    "seed" architecture's rate sweep, and its top rate with a longer budget. Dropout + L2
    follows once dropout's choice is known (:func:`second_stage`)."""
    p = get_profile(profile)
    extras = p.datasets if p.extras_datasets is None else p.extras_datasets
    configs = grid(p.datasets, ["dropout"], p.rates, p.seeds, profile=profile)
    configs += grid(extras, ["dropout-batch"], p.batch_rates, p.seeds, profile=profile)
    configs += grid(p.datasets, ["l2", "l1"], (), p.seeds, profile=profile)
    if not p.early_stopping:
        configs += grid(p.datasets, ["early-stopping"], (), p.seeds, profile=profile)
    configs += grid(extras, ["input-dropout"], (0.2,), p.seeds, profile=profile)
    configs += grid(extras, ["dropout-maxnorm"], p.maxnorm_rates, p.seeds, profile=profile)
    if p.seed_arch_penalties:
        configs += grid(p.seed_arch_datasets, ["l2", "l1"], (), p.seeds, profile=profile,
                        arch="seed")
    for budget in (1, p.longer_budget) if p.seed_arch_datasets else ():
        rates = p.seed_arch_rates if budget == 1 else p.seed_arch_rates[-1:]
        configs += grid(p.seed_arch_datasets, ["dropout"], rates, p.seeds, profile=profile,
                        arch="seed", budget=budget)
    return configs


def second_stage(selected, configs):
    """Dropout + L2: L2's grid added to the rate and learning rate validation chose for
    dropout (``selected``: selection.select's entries), for the repeats ``configs`` ran."""
    new = []
    for entry in selected:
        if (entry["family"] != "dropout" or entry["arch"] != "default"
                or not _runs_of(configs, entry)):
            continue
        base = {k: v for k, v in entry["params"].items()}
        rate = base.pop("dropout")
        p = get_profile(_profile_of(configs, entry))
        for seed in _seeds_of(configs, entry):
            for alpha in p.l2_grid:
                new.append(config_for(entry["dataset"], "dropout-l2",
                                      {"alpha": alpha, "dropout": rate, **base}, seed,
                                      "default", p.name))
    return new


def config_for(dataset, family, params, seed, arch="default", profile="quick", budget=1):
    """The RunConfig of a family and its ``params`` (a record's ``params``)."""
    params = dict(params)
    regularizer = "dropout" if family == "none" else family
    name = FAMILIES[regularizer].searched
    strength = params.pop(name, 0.0) if name else 0.0
    return RunConfig(dataset, regularizer, float(strength), seed, arch, profile,
                     tuple(sorted(params.items())), budget)


def _runs_of(configs, entry):
    return [c for c in configs if c.dataset == entry["dataset"] and c.arch == entry["arch"]
            and c.budget == 1]


def _seeds_of(configs, entry):
    return sorted({c.seed for c in _runs_of(configs, entry)})


def _profile_of(configs, entry):
    return next(c.profile for c in _runs_of(configs, entry))


# The [sweep] table of a TOML grid: key -> (type of the value or of each item, is a list).
SWEEP_KEYS = {
    "datasets": (str, True), "regularizers": (str, True), "rates": (float, True),
    "l1": (float, True), "l2": (float, True), "learning_rates": (float, True),
    "seeds": (int, True),
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
    """Configurations one step past a grid's edge where validation chose that edge
    (``selected``: selection.select's entries, whose ``edges`` name the parameters), the other
    parameters at their chosen values, for the repeats ``configs`` ran; with what was added,
    for the record. Log-scale parameters step by their grid's outermost ratio, drop rates
    by 0.1."""
    new, events = [], []
    for entry in selected:
        if not _runs_of(configs, entry):
            continue  # a dataset of another sweep in the same folder: its own sweep extends it
        for name in entry.get("edges", ()):
            values = entry["grids"][name]
            chosen = entry["params"][name]
            added = _step_past(name, values, chosen)
            if added is None:
                continue
            params = {**entry["params"], name: added}
            profile = _profile_of(configs, entry)
            new += [config_for(entry["dataset"], entry["family"], params, seed, entry["arch"],
                               profile) for seed in _seeds_of(configs, entry)]
            events.append({"dataset": entry["dataset"], "family": entry["family"],
                           "arch": entry["arch"], "param": name, "grid": values,
                           "chosen": chosen, "added": added})
    return new, events


def _step_past(name, values, chosen):
    """The next value past ``chosen``, the edge of ``values``; None where none is allowed."""
    up = chosen == max(values)
    if name in LOG_PARAMS:
        ends = sorted(values)[-2:] if up else sorted(values)[:2]
        ratio = ends[1] / ends[0]
        return float(f"{chosen * ratio if up else chosen / ratio:.6g}")
    added = round(chosen + (0.1 if up else -0.1), 1)
    return added if 0.1 <= added <= 0.9 else None
