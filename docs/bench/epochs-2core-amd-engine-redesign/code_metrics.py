"""`python code_metrics.py [REPO]`: #26's code-shape counts (largest classes, longest argument
lists, if-tests on the noise kind in the engine, imports up or sideways)."""
import ast, pathlib, re, sys
root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
files = sorted(p for p in (root / "fastdrop").rglob("*.py"))
classes, funcs, branches, imports = [], [], [], []
KIND = re.compile(r"dropout_kind|noise_at|thresholds\[|dropconnect_threshold|batch_mode|has_dropout|"
                  r"masked_weights is")
ENGINE = {"network.py", "estimator.py", "_trainer.py", "_layers.py"}
SITE_FILES = {"_sites.py"}
for p in files:
    src = p.read_text(); tree = ast.parse(src); rel = p.relative_to(root)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            meths = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            classes.append((node.end_lineno - node.lineno + 1, len(meths), f"{rel}:{node.name}"))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
            funcs.append((len(names), f"{rel}:{node.name}"))
        if isinstance(node, (ast.If, ast.IfExp, ast.While)) and p.name in ENGINE:
            seg = ast.get_source_segment(src, node.test) or ""
            if KIND.search(seg):
                branches.append(f"{rel}:{node.lineno}: {seg[:70]}")
        if isinstance(node, ast.ImportFrom):
            mod = "." * node.level + (node.module or "")
            imports.append((str(rel), mod, [n.name for n in node.names]))
classes.sort(reverse=True); funcs.sort(reverse=True)
print("largest classes:", classes[:4])
print("longest argument lists:", funcs[:5])
print(f"branches on the noise kind outside the site classes: {len(branches)}")
for b in branches: print("   ", b)
# layering: rank of each area; an import from a higher rank is 'up'
def area(rel, mod=None):
    s = rel if mod is None else mod
    for key, rank in (("_bench", 9), ("cli", 8), ("_benchreport", 7), ("plots", 7), ("suite", 6)):
        if key in s: return key, rank
    return "core", 0
bad = []
for rel, mod, names in imports:
    if not mod.startswith(".") and not mod.startswith("fastdrop"): continue
    a_from, r_from = area(rel); a_to, r_to = area(rel, mod.lstrip(".") or "core")
    if "suite" in rel and mod.startswith(".") and not mod.startswith(".."):
        a_to, r_to = "suite", 6  # relative within suite
    if a_from == "cli" or (rel.endswith("study.py") and "plots" in mod):
        continue  # the command line sits on top; the study draws its own figures
    if r_to > r_from or (a_from != a_to and r_to == r_from and a_to != "core"):
        bad.append(f"{rel} -> {mod} {names}")
    if mod.lstrip(".").endswith("_dropout") and any(n.startswith("_") for n in names):
        bad.append(f"{rel} -> {mod} private {[n for n in names if n.startswith('_')]}")
print(f"imports up or sideways / private reach-ins: {len(bad)}")
for b in bad: print("   ", b)
