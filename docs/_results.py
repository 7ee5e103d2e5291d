"""The results page, written at build time from the committed summary.json files with the
functions that write the README's tables (fastdrop.suite.summary): never edited by hand."""
import json
from pathlib import Path

from fastdrop.suite import summary as sm

STUDIES = (  # (title, summary.json, figures folder relative to docs/, what the run was)
    ("The quick profile", "summary-quick.json", "figures",
     "`fastdrop run` (the default profile, under 10 minutes on 2 cores)"),
    ("The full profile", "summary-full.json", "study-full/figures",
     "`fastdrop run --profile full --out docs/study-full` (every rate 0.0-0.9 in both modes, "
     "10-20 repeats, max-norm, the article's network, the uncertainty stage)"),
)
FIGURES = (("critical_difference", "critical difference diagram"),
           ("rate_sweep_mnist1d", "rate sweep, MNIST-1D"),
           ("time_vs_epochs", "epochs against epoch time"),
           ("mc_dropout_mnist1d", "Monte-Carlo averaging against weight scaling"),
           ("reliability_mnist1d", "reliability diagram, MNIST-1D"),
           ("coverage", "coverage of the predictive intervals"))


def study_section(docs, title, name, figures, how):
    path = docs / name
    label = "(the-full-profile)=\n" if "full" in name else ""  # the README's anchor
    if not path.exists():
        return f"{label}## {title}\n\n(no `{name}` committed yet)\n"
    summary = json.loads(path.read_text())
    parts = [f"{label}## {title}", f"From {how}; generated from `docs/{name}`.",
             "### Across datasets", sm.across_markdown(summary),
             "### The claims", sm.claims_markdown(summary),
             "### Chosen on validation", sm.selected_markdown(summary)]
    if summary.get("uncertainty"):
        parts += ["### Predictive distributions", sm.uncertainty_markdown(summary)]
    shown = [(f, alt) for f, alt in FIGURES if (docs / figures / f"{f}.png").exists()]
    if shown:
        parts.append("### Figures")
        parts += [f"![{alt}](../{figures}/{f}.png)" for f, alt in shown]
    return "\n\n".join(parts) + "\n"


def write_results_page(docs):
    """docs/_generated/results.md from the summaries; rewritten only when it changes, so an
    incremental build does not rebuild the page for nothing."""
    docs = Path(docs)
    text = ("# Latest results\n\nThe study's stored results, as `fastdrop run` summarized "
            "them: the same tables as the README's, written from the same files when the "
            "site is built. How each verdict is decided: "
            "[How the study decides](../guide/study.md).\n\n"
            + "\n".join(study_section(docs, *s) for s in STUDIES))
    out = docs / "_generated" / "results.md"
    out.parent.mkdir(exist_ok=True)
    if not out.exists() or out.read_text() != text:
        out.write_text(text)
    return out
