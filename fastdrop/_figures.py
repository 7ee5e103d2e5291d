"""What every figure module shares: matplotlib without a display, file names, PNG + SVG."""
import re
from pathlib import Path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def file_name(name):
    """A figure's file name from its title words: a dataset may be a path or an OpenML name
    ("data/mine.csv", "openml:61"), and every character but letters, digits, "-", "_" and "."
    becomes "_", so the figure lands in the figures folder whatever the dataset is called."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_"


def save(fig, out, name):
    paths = []
    for ext in ("png", "svg"):
        path = Path(out) / f"{file_name(name)}.{ext}"
        fig.savefig(path, dpi=120, bbox_inches="tight")
        paths.append(path)
    pyplot().close(fig)
    return paths
