import json, os, subprocess, sys
import numpy as np
sys.path.insert(0, "/work/main")
from fastdrop.suite.stats import median_ci
R = int(sys.argv[1])
env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
versions = {"old": "/tmp/fd/base", "new": "/work/main"}
res = {v: [] for v in versions}
for r in range(R):
    order = list(versions) if r % 2 == 0 else list(versions)[::-1]
    for v in order:
        e = dict(env, PYTHONPATH=versions[v])
        o = subprocess.run([sys.executable, "/tmp/fd/ab_epoch.py"], env=e, capture_output=True, text=True, check=True, cwd="/tmp")
        d = json.loads(o.stdout.strip().splitlines()[-1]); assert d["file"].startswith(versions[v]), d["file"]
        res[v].append(d["times"])
    print("round", r, flush=True)
json.dump(res, open("/tmp/fd/ab_result.json", "w"))
print("| case | old s/epoch | new s/epoch | new / old, paired median | 95% CI | coverage |")
print("|---|---:|---:|---:|---|---:|")
for case in res["old"][0]:
    old = np.array([t[case] for t in res["old"]]); new = np.array([t[case] for t in res["new"]])
    ratio = new / old; lo, hi, cov = median_ci(ratio)
    print(f"| {case} | {np.median(old):.4f} | {np.median(new):.4f} | {np.median(ratio):.3f} | {lo:.3f} - {hi:.3f} | {cov:.3f} |")
