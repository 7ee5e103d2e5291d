"""
Reading a study's records
=========================

``fastdrop run`` writes one JSON line per fit to ``records.jsonl`` (and its summary to
``summary.json``); figures and verdicts are computed from those records only, so anything
the study measured can be read back, here the full profile's records committed under
``docs/study-full/``. :class:`fastdrop.suite.store.ResultStore` reads them; each fit record
holds its dataset, family, parameters, repeat, validation and test accuracy, epochs and
per-epoch history.
"""
import json
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from fastdrop.suite.store import ResultStore

try:
    here = Path(__file__).resolve().parent
except NameError:  # run interactively
    here = Path.cwd()
study = here.parent / "docs" / "study-full"
records = ResultStore(study).records() if (study / "records.jsonl").exists() else []
fits = [r for r in records if r.get("kind") == "fit" and not r.get("error")]
print(f"{len(records)} records in docs/study-full/records.jsonl, {len(fits)} of them fits")

# %%
# Test accuracy along the drop rate on MNIST-1D (default architecture, one epoch budget),
# for each learning rate searched: the mean over repeats. The study itself picks the rate
# and the learning rate on *validation* accuracy; this only reads what was measured.
curves = defaultdict(lambda: defaultdict(list))
for r in fits:
    if (r["dataset"], r["family"], r.get("arch"), r.get("budget", 1)) in {
            ("mnist1d", "dropout", "default", 1), ("mnist1d", "none", "default", 1)}:
        lr = r["params"].get("learning_rate_init")
        curves[lr][r["params"].get("dropout", 0.0)].append(r["test_accuracy"])
fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
for lr, by_rate in sorted(curves.items()):
    rates = sorted(by_rate)
    ax.plot(rates, [np.mean(by_rate[p]) for p in rates], "o-", ms=3, label=f"lr {lr:g}")
ax.set_xlabel("drop rate")
ax.set_ylabel("test accuracy (mean over repeats)")
ax.set_title("MNIST-1D, 256-256 MLP: the full profile's fits", fontsize=9)
ax.grid(alpha=0.3)
if curves:
    ax.legend(fontsize=8)

# %%
# The verdicts are in ``summary.json``, one row per claim and dataset.
summary_path = study / "summary.json"
if summary_path.exists():
    for claim in json.loads(summary_path.read_text())["claims"]:
        if claim["dataset"] == "mnist1d":
            low, high = claim["ci"]
            print(f"{claim['verdict']:>13s}  {claim['claim']}  "
                  f"[{low if low is None else round(low, 4)}, "
                  f"{high if high is None else round(high, 4)}]")
plt.show()
