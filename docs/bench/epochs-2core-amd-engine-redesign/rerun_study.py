"""`python rerun_study.py` from the repository root: rerun 8 committed study configurations
(and 3 that diverged) through run_one; compare every field but the times."""
import json, sys
from fastdrop.suite.config import RunConfig
from fastdrop.suite.runner import run_one

want = {("dropout", "none"), ("dropout", "dropout"), ("dropout-batch", "dropout-batch"),
        ("l2", "l2"), ("l1", "l1"), ("early-stopping", "early-stopping"),
        ("input-dropout", "input-dropout"), ("dropout-maxnorm", "dropout-maxnorm"), ("dropout-l2", "dropout-l2")}
picked = {}
with open("docs/study-full/records.jsonl") as f:
    for line in f:
        r = json.loads(line)
        if r.get("kind") != "fit" or r.get("error"):
            continue
        k = (r["regularizer"], r["family"])
        if k in want and k not in picked and (r["dataset"] in ("wine", "breast_cancer", "iris")
                                              or k[0] == "dropout-batch") and r["strength"] != 0.9:
            picked[k] = r
diverged = []
with open("docs/study-full/records.jsonl") as f:
    for line in f:
        r = json.loads(line)
        if r.get("kind") == "fit" and r.get("error") and r["dataset"] in ("wine", "iris", "breast_cancer") and len(diverged) < 3:
            diverged.append(r)
for i, r in enumerate(diverged):
    picked[("diverged", i)] = r
print(sorted(picked), file=sys.stderr)
TIMES = {"wall", "epoch_time", "time_to_converge"}
bad = 0
for k, r in sorted(picked.items()):
    cfg = RunConfig(r["dataset"], r["regularizer"], r["strength"], r["seed"], r["arch"],
                    r["profile"], tuple(tuple(kv) for kv in r["overrides"]), r["budget"])
    assert cfg.key == r["key"]
    new = run_one(cfg, n_threads=r["n_threads"])
    diffs = [f for f in r if f not in TIMES and f != "history" and r[f] != new.get(f)]
    diffs += [f"history.{h}" for h in r.get("history", {}) if not h.startswith("time")
              and r["history"][h] != new["history"][h]]
    print(k, r["dataset"], r["strength"], "n_iter", r.get("n_iter"), (r["error"] or "")[:50], "OK" if not diffs else diffs)
    bad += bool(diffs)
print("identical" if not bad else f"{bad} differ")
sys.exit(bad)
