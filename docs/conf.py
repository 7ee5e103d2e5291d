"""Sphinx configuration of fastdrop's documentation site.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (warnings are errors). The user
guide includes the README's sections (one text, two places), the API reference is generated
from the docstrings (numpydoc), the gallery runs ``examples/`` (sphinx-gallery), and the
results page is written from the committed ``summary.json`` files at build time
(``_results.py``), as the README's tables are.
"""
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from _results import write_results_page  # noqa: E402

import fastdrop  # noqa: E402

project = "fastdrop"
author = "the fastdrop developers"
copyright = "2026, the fastdrop developers"
version = release = fastdrop.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# Not pages of the site: the raw benchmark records, the studies' stored results, the build.
exclude_patterns = ["_build", "bench/*/**", "study-full", "study-noise/figures",
                    "summary-*.md",
                    "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip",
                    "auto_examples/*.md5", "auto_examples/*.json"]
templates_path = ["_templates"]

myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

autosummary_generate = True
# A class page shows its methods, those of fastdrop's bases included (MLPClassifier.fit is
# _BaseMLP's); scikit-learn's own are skipped (skip_other_libraries_methods).
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_validation_checks = set()  # the docstrings' content is tested in tests/test_docs.py

intersphinx_mapping = {}  # offline builds: nothing is fetched

sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": str(HERE / "auto_examples"),
    "filename_pattern": r"\.py$",       # every example runs in the build
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
    "reset_modules": ("matplotlib",),
}

html_theme = "pydata_sphinx_theme"
html_title = f"fastdrop {release}"
html_static_path = ["_static"]
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2,
                      "header_links_before_dropdown": 4,
                      "secondary_sidebar_items": ["page-toc"]}
html_show_sourcelink = False

nitpicky = False


def skip_other_libraries_methods(app, what, name, obj, skip, options):
    """Members a class inherits from another library (scikit-learn's get_params, score and
    set_*_request; torch.nn.Module's train, eval, ...) are that library's to document: their
    docstrings cross-reference its own pages, which this site does not have."""
    module = getattr(obj, "__module__", None) or ""
    if (module and not module.startswith("fastdrop")) or "RequestMethod" in getattr(
            obj, "__qualname__", ""):
        return True
    return None  # autodoc's and autosummary's own rule (None: no opinion; False would force in)


def setup(app):
    app.connect("builder-inited", lambda app: write_results_page(HERE))
    app.connect("autodoc-skip-member", skip_other_libraries_methods)
