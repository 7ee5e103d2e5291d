"""The study's orchestration: which fits run, in which stages, and what is written at the end.

`fastdrop run` is :func:`run_study`: the profile's fits (config.default_suite), then while
validation chooses a grid's edge a step past it (config.extend_grids), dropout + L2 on
dropout's choice (config.second_stage), more repeats where they narrow the main comparison
(:func:`plan_repeats`), the side experiments, and the summary and figures
(:func:`finish`). `fastdrop sweep` is :func:`run_sweep`. Every stage reads what is stored,
so a rerun of the same command continues where an interrupted one stopped.
"""
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable

from .claims import power
from .config import (MAX_GRID_EXTENSIONS, default_suite, extend_grids, get_profile,
                     second_stage)
from .runner import pending, run_configs
from .selection import select
from .store import ResultStore


@dataclasses.dataclass
class Execution:
    """Where and how fits run: results folder, worker processes or a Dask scheduler, and
    what draws the figures at the end (``figures(out) -> paths``; the command line passes
    plots.plot_all: the suite itself imports no figure code)."""
    out: str
    jobs: int | None = None
    scheduler: str | None = None
    quiet: bool = False
    figures: Callable | None = None

    def say(self, text):
        if not self.quiet:
            print(text, file=sys.stderr)

    def run(self, configs, store):
        return run_configs(configs, store, n_jobs=self.jobs, scheduler=self.scheduler,
                           progress=not self.quiet)


def run_study(profile_name, ex):
    """`fastdrop run`: every stage of the profile; returns the exit status."""
    profile = get_profile(profile_name)
    configs = default_suite(profile_name)
    ex.say(f"fastdrop run --profile {profile.name}: {len(configs)} fits to start, on "
           f"{', '.join(profile.datasets)}, {len(profile.seeds)} repeats each (more where "
           f"they narrow the main comparison: {_caps_text(profile)})"
           + (f"; trimmed: {profile.trims}" if profile.trims else ""))
    return _stages(configs, profile_name, ex, study=True)


def run_sweep(configs, profile_name, ex, extend=False):
    """`fastdrop sweep`: the given grid (its grid edges extended if asked)."""
    return _stages(configs, profile_name, ex, extend=extend)


def _caps_text(profile):
    return ", ".join(f"{d} up to {n}" for d, n in profile.max_repeats) or "none"


def _stages(configs, profile_name, ex, study=False, extend=False):
    started = time.perf_counter()
    with ResultStore(ex.out) as store:
        store.write_manifest({"profile": profile_name, "jobs": ex.jobs,
                              "scheduler": ex.scheduler})
        try:
            ex.run(configs, store)
            if study or extend:
                configs = configs + _extend(configs, store, ex, profile_name)
            if study:
                configs = configs + _second_stage(configs, store, ex, profile_name)
                more = plan_repeats(configs, store, profile_name, ex)
                if more:
                    ex.run(more, store)
                    configs = configs + more
                    configs = configs + _extend(configs, store, ex, profile_name)
                    configs = configs + _second_stage(configs, store, ex, profile_name)
                from .experiments import run_experiments

                profile = get_profile(profile_name)
                run_experiments(store, profile_name, profile.datasets[:1],
                                progress=not ex.quiet, n_jobs=ex.jobs)
        except KeyboardInterrupt:
            _record_compute(store, started)
            print(f"\ninterrupted: finished runs are in {store.path}; run the same command "
                  "again to continue where it stopped", file=sys.stderr)
            return 130
        _record_compute(store, started)
    return finish(ex.out, ex.quiet, started, ex.figures)


def _extend(configs, store, ex, profile_name):
    """While validation chooses a grid's edge, run one step past it (at most
    MAX_GRID_EXTENSIONS times); each extension is stored as a record of its own. Returns the
    configurations added."""
    added = []
    for _ in range(MAX_GRID_EXTENSIONS):
        records = store.records()
        selected = select(records) + select(records, "seed")
        new, events = extend_grids(selected, configs + added)
        done = store.keys()
        new = [c for c in new if c.key not in done]
        if not new:
            break
        for e in events:
            ex.say(f"{e['dataset']}: validation chose {e['family']} {e['param']}="
                   f"{e['chosen']:g}, the edge of {e['grid']}; adding {e['added']:g}")
            store.append({"kind": "grid_extension", "profile": profile_name,
                          "key": f"grid_extension|{e['dataset']}|{e['arch']}|{e['family']}|"
                                 f"{e['param']}|{e['added']:g}", **e})
        ex.run(new, store)
        added += new
    return added


def _second_stage(configs, store, ex, profile_name):
    """Dropout + L2 on dropout's validation choice, its grid extended like the others."""
    later = second_stage(select(store.records()), configs)
    if not later:
        return []
    todo = len(pending(later, store))
    if todo:
        ex.say(f"dropout + L2: {todo} fits on dropout's choice")
    ex.run(later, store)
    return later + _extend(configs + later, store, ex, profile_name)


# A main comparison whose half-width cannot reach the goal (the corrected t's floor) gets
# repeats until its half-width is within this factor of that floor: past it, repeats hardly
# narrow the interval.
NEAR_FLOOR = 1.1


def repeats_wanted(row):
    """Repeats the main comparison of one dataset wants (claims.power's row): those that
    bring its half-width to the goal, else those that bring it within NEAR_FLOOR of the
    corrected t's floor (1/J + r <= NEAR_FLOOR^2 r)."""
    if row["repeats_for_goal"] is not None:
        return row["repeats_for_goal"]
    r = row["test_train_ratio"]
    return math.ceil(1 / ((NEAR_FLOOR ** 2 - 1) * r)) if r > 0 else row["repeats"]


def plan_repeats(configs, store, profile_name, ex):
    """More repeats of every default-architecture fit of a dataset where the pilot (the
    profile's first repeats) says they narrow the main comparison, up to the profile's cap
    for that dataset. The plan is stored (kind "repeats_plan") and a rerun keeps it, so an
    interrupted run resumes the same plan. Returns the configurations added."""
    profile = get_profile(profile_name)
    records = store.records()
    plans = {r["dataset"]: r for r in records if r.get("kind") == "repeats_plan"}
    rows = {r["dataset"]: r for r in power(records)}
    added = []
    for dataset, cap in profile.max_repeats:
        if dataset not in plans and dataset in rows:
            row = rows[dataset]
            wanted = repeats_wanted(row)
            plans[dataset] = {"kind": "repeats_plan", "key": f"repeats_plan|{dataset}|"
                              f"{profile_name}", "dataset": dataset, "profile": profile_name,
                              "pilot_repeats": row["repeats"], "sd": row["sd"],
                              "test_train_ratio": row["test_train_ratio"],
                              "wanted": wanted, "cap": cap,
                              "planned": max(row["repeats"], min(cap, wanted))}
            store.append(plans[dataset])
        plan = plans.get(dataset)
        if plan is None:
            continue
        base = [c for c in configs if c.dataset == dataset and c.arch == "default"
                and c.budget == 1]
        seeds = sorted({c.seed for c in base})
        extra = range(max(seeds) + 1, max(seeds) + 1 + plan["planned"] - len(seeds))
        more = [dataclasses.replace(c, seed=s) for c in _distinct(base) for s in extra]
        if pending(more, store):
            ex.say(f"{dataset}: {plan['planned']} repeats (the pilot's {plan['pilot_repeats']} "
                   f"give sd {plan['sd']:.4f}; {plan['wanted']} wanted, cap {plan['cap']})")
        added += more
    return added


def _distinct(configs):
    """One configuration per setting, whatever its seed."""
    seen, out = set(), []
    for c in configs:
        key = dataclasses.replace(c, seed=0).key
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _record_compute(store, started):
    """Each invocation's wall time, stored, so a run made in parts gives its total."""
    store.append({"kind": "session", "key": f"session|{time.time():.6f}",
                  "wall": time.perf_counter() - started, "ended": time.time()})


def compute_time(records):
    """Total wall seconds of every invocation that wrote to the folder (kind "session"),
    and the sum of the fits' own seconds (across worker processes)."""
    sessions = sum(r["wall"] for r in records if r.get("kind") == "session")
    fits = sum(r.get("wall", 0.0) for r in records if r.get("kind") == "fit")
    return {"sessions_wall": sessions, "fits_wall": fits,
            "sessions": sum(r.get("kind") == "session" for r in records)}


def finish(out, quiet, started, figures=None):
    """summary.json and summary.md from what is stored in ``out``, then ``figures(out)``."""
    from .summary import (across_markdown, build_summary, claims_markdown, power_markdown,
                          selected_markdown, summary_table, uncertainty_markdown)

    records = ResultStore(out).records()
    summary = build_summary(records)  # the summary first: no figure can stop it
    summary["compute"] = compute_time(records)
    (Path(out) / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False))
    claims, chosen, table = (claims_markdown(summary), selected_markdown(summary),
                             summary_table(records))
    text = (f"# fastdrop results\n\n## The claims\n\n{claims}\n\n"
            f"## Across datasets\n\n{across_markdown(summary)}\n\n"
            f"## What each dataset's repeats could resolve\n\n{power_markdown(summary)}\n\n"
            f"## Chosen on validation\n\n{chosen}\n\n"
            f"## Predictive distributions (the uncertainty stage)\n\n"
            f"{uncertainty_markdown(summary)}\n\n"
            f"## Every configuration (default architecture)\n\n{table}\n")
    (Path(out) / "summary.md").write_text(text)
    paths = figures(out) if figures is not None else []
    if not quiet:
        print(chosen)
        print()
        print(claims)
        print(f"\n{len(records)} records in {Path(out) / 'records.jsonl'}; "
              f"{len(paths)} figure files in {Path(out) / 'figures'}; summary in "
              f"{Path(out) / 'summary.md'} and summary.json "
              f"({time.perf_counter() - started:.0f} s)")
    return 0
