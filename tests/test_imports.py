"""The package's layers import down only (README, Layout): the engine knows nothing of the
suite, the suite nothing of figures or benchmarks, and nothing in fastdrop imports bench/."""
import ast
from pathlib import Path

import pytest

import fastdrop

ROOT = Path(fastdrop.__file__).parent

# area -> rank: a module may import its own rank or lower. Modules not listed are the core.
_RANKS = {"suite": 1, "plots": 2, "_benchplots": 2, "_benchreport": 2, "cli": 3,
          "__main__": 3, "_bench": 4}


def _rank(relative):
    return _RANKS.get(relative.split("/")[0].removesuffix(".py"), 0)


def _imports(path):
    """(module imported, relative to the fastdrop folder) of every fastdrop import in path."""
    package = path.relative_to(ROOT).parent.parts
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - node.level + 1])
                target = "/".join(base + (node.module or "").split(".")).strip("/")
            elif (node.module or "").startswith("fastdrop"):
                target = node.module.replace("fastdrop", "", 1).replace(".", "/").strip("/")
            else:
                continue
            yield target or "__init__"


@pytest.mark.parametrize("path", sorted(p for p in ROOT.rglob("*.py")
                                        if "_bench" not in p.parts),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_down_only(path):
    relative = str(path.relative_to(ROOT))
    up = [target for target in _imports(path) if _rank(target) > _rank(relative)]
    assert not up, f"{relative} imports {up}, above its layer"


def test_the_engine_imports_no_private_name_of_the_public_api():
    """The kernel plumbing lives in _plumbing.py: nothing reaches into _dropout.py's or
    _noise.py's private names."""
    reach_ins = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1]
                    in ("_dropout", "_noise")):
                reach_ins += [f"{path.name}: {a.name}" for a in node.names
                              if a.name.startswith("_")]
    assert not reach_ins
