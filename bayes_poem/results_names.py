"""The names and locations of a results directory's files (a leaf of the results layer).

The constants (:data:`POSTERIOR`, :data:`SUMMARY`, ..., :data:`SENSITIVITY`,
:data:`RUN_LOG`) and where each command writes (:data:`RESULTS_ROOT`,
:data:`SUFFIXES`, :func:`default_out`, :func:`beside`, :func:`default_help`),
shared by :mod:`bayes_poem.results_dir` (what is written, which re-exports them)
and :mod:`bayes_poem.results_read` (reading back). Moved out of ``results_dir``
unchanged.
"""

from __future__ import annotations

from pathlib import Path

from bayes_poem import bundle, outputs
from bayes_poem.outputs import MARKER

__all__ = ["CONTRASTS", "DIAGNOSTICS", "FOREST_MAX_STUDIES", "FOREST_PDF", "FOREST_PNG",
           "FOREST_SVG", "HETEROGENEITY",
           "JOINT_SENSITIVITY", "MARKER", "MODERATORS", "POSTERIOR", "REPORT_HTML", "REPORT_MD",
           "RESULTS_ROOT", "RUN_LOG", "SENSITIVITY", "SPEC", "STUDY_ESTIMATES", "SUFFIXES",
           "SUMMARY", "SUMMARY_TEXT", "TAU2_EXPLAINED", "beside", "default_help", "default_out"]

# ---------------------------------------------------------------------- names
# arviz.InferenceData, netCDF-4, with the provenance attrs; groups posterior, sample_stats,
# observed_data, constant_data, log_likelihood (``y``: per study,
# study effect integrated) and prior (loglik.arviz_groups); older files without the last two
# still load
POSTERIOR = "posterior.nc"
SUMMARY = "summary.csv"
HETEROGENEITY = "heterogeneity.csv"
STUDY_ESTIMATES = "study_estimates.csv"
CONTRASTS = "contrasts.csv"
MODERATORS = "moderators.csv"  # with moderators only
TAU2_EXPLAINED = "tau2_explained.csv"  # with moderators and random study effects only
DIAGNOSTICS = "diagnostics.csv"
SPEC = bundle.SPEC_FILE  # the resolved spec: every setting with its default filled in
SUMMARY_TEXT = "summary.txt"
SENSITIVITY = "sensitivity.csv"  # written by 'bayes-poem sensitivity', read by 'report'
JOINT_SENSITIVITY = "benefit_risk_sensitivity.csv"  # the same, of a joint spec
# the forest plot (bayes_poem.forest_plot) as PNG at 300 dpi, PDF and SVG (figure_style)
FOREST_PNG = "forest.png"
FOREST_PDF = "forest.pdf"
FOREST_SVG = "forest.svg"
# A run draws its forest files only up to this many studies: one row per study, so
# beyond it the figure is unreadable on a page and drawing it costs more than the fit
# (2,000 studies: 75 s); FitResult.plot_forest draws any number.
FOREST_MAX_STUDIES = 100
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
RUN_LOG = outputs.RUN_LOG  # every command's stderr lines, timestamped (bayes_poem.runlog)


# ---------------------------------------------------------------------- locations
RESULTS_ROOT = Path("results")
# The default directory of each command is RESULTS_ROOT / (spec file stem + suffix).
SUFFIXES = {"run": "", "trial": "", "compare": "_compare", "sensitivity": "_sensitivity",
            "bias": "_bias", "report": "_report"}


def default_out(command: str, spec_path: str | Path) -> Path:
    """Where ``command`` writes by default: ``results/<spec file stem><suffix>``
    (relative to the working directory)."""
    return RESULTS_ROOT / f"{Path(spec_path).stem}{SUFFIXES[command]}"


def beside(results_dir: str | Path, command: str) -> Path:
    """The sibling of ``results_dir`` where ``command`` writes for it:
    ``<results_dir><suffix>`` in the same parent (``<DIR>_report``, ``<DIR>_sensitivity``)."""
    path = Path(results_dir)
    return path.parent / f"{path.name}{SUFFIXES[command]}"


def default_help(command: str) -> str:
    """The default location as the CLI's help spells it, e.g. ``results/<spec name>_bias``."""
    return f"{RESULTS_ROOT.as_posix()}/<spec name>{SUFFIXES[command]}"
