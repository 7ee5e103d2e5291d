"""Every public name has a numpydoc docstring the documentation site can render: Parameters
for whatever takes arguments, Returns for whatever returns, on the public methods too."""
import inspect

import pytest

numpydoc = pytest.importorskip("numpydoc.docscrape", reason="the docs extra: pip install "
                               "-e '.[docs]'")

import fastdrop  # noqa: E402
import fastdrop.scores  # noqa: E402

# Hooks another library calls, documented there: torch.nn.Module.extra_repr.
HOOKS = {"extra_repr"}


def _public_names():
    names = [(fastdrop, n) for n in fastdrop.__all__ if n != "__version__"]
    names += [(fastdrop.scores, n) for n in fastdrop.scores.__all__]
    try:
        import fastdrop.torch as ft
    except ImportError:  # torch is optional: its names are checked where it is installed
        return names
    return names + [(ft, n) for n in ft.__all__]


def _arguments(fn):
    return [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]


def _missing_in_function(fn, doc):
    missing = []
    if _arguments(fn) and not doc["Parameters"]:
        missing.append("Parameters")
    if not (doc["Returns"] or doc["Yields"]):
        missing.append("Returns")
    return missing


def _own_methods(cls):
    """Public methods fastdrop defines on ``cls`` or its fastdrop bases."""
    for name, fn in inspect.getmembers(cls, inspect.isfunction):
        if not name.startswith("_") and name not in HOOKS and fn.__module__.startswith(
                "fastdrop"):
            yield name, fn


def _missing(obj):
    if not inspect.getdoc(obj):
        return ["a docstring"]
    if not inspect.isclass(obj):
        return _missing_in_function(obj, numpydoc.FunctionDoc(obj))
    missing = []
    own_init = (getattr(obj.__init__, "__module__", None) or "").startswith("fastdrop")
    if own_init and _arguments(obj.__init__) and not \
            numpydoc.ClassDoc(obj, config={"show_class_members": False})["Parameters"]:
        missing.append("Parameters")
    for name, fn in _own_methods(obj):
        missing += [f"{name}: {m}" for m in _missing_in_function(fn, numpydoc.FunctionDoc(fn))]
    return missing


@pytest.mark.parametrize("module, name", _public_names(),
                         ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_every_public_name_has_parameters_and_returns(module, name):
    assert _missing(getattr(module, name)) == []


def test_the_api_page_lists_every_public_name():
    """docs/api.rst names everything _public_names checks, so nothing public is left out."""
    from pathlib import Path

    page = (Path(__file__).parents[1] / "docs" / "api.rst")
    if not page.exists():
        pytest.skip("no docs/ beside the tests (an installed package)")
    listed = {line.strip() for line in page.read_text().splitlines()}
    for module, name in _public_names():
        assert name in listed, f"{module.__name__}.{name} is missing from docs/api.rst"
