"""The results directory: the one owner of its format.

What a command writes and where, and how ``report`` and :func:`load_results`
read a run's directory back:

* **Names.** The files of a ``bayes-poem run`` directory (:data:`POSTERIOR`,
  :data:`SUMMARY`, ..., :data:`SPEC`, :data:`SUMMARY_TEXT`, the forest plot
  :data:`FOREST_PNG` (300 dpi), :data:`FOREST_PDF` and :data:`FOREST_SVG` by
  :func:`forest_files`, ``bubble_<moderator>.png`` by :func:`bubble_file`), laid out
  by :func:`run_bundle` (:func:`run_writers` in the layout's order); the files other commands
  read (:data:`SENSITIVITY` of ``bayes-poem sensitivity``) or write for the report
  (:data:`REPORT_HTML`, :data:`REPORT_MD`); the marker :data:`MARKER`; every
  command's :data:`RUN_LOG` (added by the writer, :mod:`bayes_poem.runlog`).
  ``posterior.nc`` holds, besides the draws and data, a ``log_likelihood``
  group (``y``, dims ``chain, draw, study``: each study's log-likelihood with
  its study effect integrated, what the report's PSIS-LOO uses) and a
  ``prior`` group (prior draws of the posterior's variables), built by
  :func:`bayes_poem.loglik.arviz_groups`, so that ``az.loo`` and ArviZ's
  prior-vs-posterior plots work on the file alone.
* **Locations.** A command writes to ``results/<spec file stem><suffix>`` by
  default (:func:`default_out`, :data:`SUFFIXES`: ``run`` and ``trial`` none,
  ``compare`` ``_compare``, ``sensitivity`` ``_sensitivity``, ``bias`` ``_bias``,
  ``report`` ``_report``); :func:`beside` names the sibling of a results
  directory (``<DIR>_report``, ``<DIR>_sensitivity``); :func:`default_help`
  spells a default for the CLI's help.
* **Writing** is :func:`bayes_poem.bundle.write_bundle`'s (through
  :mod:`bayes_poem.outputs`: reserve, atomic commit, marker): this module says
  what is written, those how.
* **Reading back.** :func:`load_results` (and :func:`load_fit`, given the parsed
  spec) rebuilds the :class:`~bayes_poem.results.FitResult` from ``posterior.nc``
  and ``spec.toml`` without refitting, refusing a posterior that is not the fit
  of the model ``spec.toml`` describes (``SpecError`` naming the key, or
  ``DataError`` naming the file); :func:`find_sensitivity` finds a
  ``sensitivity.csv`` in the directory or its ``_sensitivity`` sibling.
  A joint model's directory (``bayes_poem.joint_cli``) is read back by
  :func:`load_joint_fit` (the same checks on the joint posterior's attributes),
  and :func:`find_joint_sensitivity` finds its ``benefit_risk_sensitivity.csv``.

The names and locations live in :mod:`bayes_poem.results_names` and the reading
back in :mod:`bayes_poem.results_read`; this module writes and re-exports every
public name of both, so ``bayes_poem.results_dir.X`` stays the one address.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bayes_poem import outputs
from bayes_poem.bundle import Bundle
from bayes_poem.outputs import Writer
from bayes_poem.results_names import (  # re-exported: the names and locations
    CONTRASTS,
    DIAGNOSTICS,
    FOREST_MAX_STUDIES,
    FOREST_PDF,
    FOREST_PNG,
    FOREST_SVG,
    HETEROGENEITY,
    JOINT_SENSITIVITY,
    MARKER,
    MODERATORS,
    POSTERIOR,
    REPORT_HTML,
    REPORT_MD,
    RESULTS_ROOT,
    RUN_LOG,
    SENSITIVITY,
    SPEC,
    STUDY_ESTIMATES,
    SUFFIXES,
    SUMMARY,
    SUMMARY_TEXT,
    TAU2_EXPLAINED,
    beside,
    default_help,
    default_out,
)
from bayes_poem.results_read import (  # re-exported: reading back
    find_joint_sensitivity,
    find_sensitivity,
    load_fit,
    load_joint_fit,
    load_results,
    results_dir_files,
)

if TYPE_CHECKING:
    import pandas as pd

    from bayes_poem.results import FitResult

__all__ = ["CONTRASTS", "DIAGNOSTICS", "FOREST_MAX_STUDIES", "FOREST_PDF", "FOREST_PNG",
           "FOREST_SVG", "HETEROGENEITY",
           "JOINT_SENSITIVITY", "MARKER", "MODERATORS", "POSTERIOR",
           "REPORT_HTML", "REPORT_MD", "RESULTS_ROOT", "RUN_LOG", "SENSITIVITY", "SPEC",
           "STUDY_ESTIMATES",
           "SUFFIXES", "SUMMARY", "SUMMARY_TEXT", "TAU2_EXPLAINED", "beside", "bubble_file",
           "default_help", "default_out", "find_joint_sensitivity", "find_sensitivity",
           "forest_files", "load_fit", "load_joint_fit", "load_results",
           "results_dir_files", "run_bundle", "run_writers"]


# ---------------------------------------------------------------------- writing
def bubble_file(moderator: str) -> str:
    """``bubble_<moderator>.png``, the column name made safe as a file name."""
    return f"bubble_{re.sub(r'[^A-Za-z0-9_.-]+', '_', moderator)}.png"


def forest_files(result: FitResult, order: str = "data") -> dict[str, bytes]:
    """:data:`FOREST_PNG`, :data:`FOREST_PDF` and :data:`FOREST_SVG` of
    ``result.plot_forest(order=order)`` (drawn now; file name -> content)."""
    from bayes_poem.figure_style import to_formats

    names = {name.rpartition(".")[2]: name for name in (FOREST_PNG, FOREST_PDF, FOREST_SVG)}
    content = to_formats(result.plot_forest(order=order), list(names))
    return {name: content[fmt] for fmt, name in names.items()}


def run_bundle(result: FitResult, *, spec_toml: str, text: str, contrasts: pd.DataFrame,
               explained: pd.DataFrame | None = None,
               figures: Mapping[str, Any] | None = None,
               forest_order: str | None = "data") -> Bundle:
    """The files of a ``bayes-poem run`` directory as a :class:`~bayes_poem.bundle.Bundle`.

    ``spec_toml`` is the resolved spec, ``text`` the printed summary, ``contrasts``
    the contrast table, ``explained`` the R^2 table (when defined), ``figures``
    the bubble plots (named by :func:`bubble_file`: PNG bytes, figures or writers) and
    ``forest_order`` the studies' order in the forest plot (:func:`forest_files`;
    ``None``: no forest files).
    Every table is also written as ``NAME.tex`` and in one ``tables.docx``
    (:mod:`bayes_poem.exports`).
    """
    from bayes_poem.exports import run_tables, table_files
    from bayes_poem.loglik import with_arviz_groups

    spec = result.spec
    # each table computed once (study_estimates: 0.5 s at 2,000 studies), for the CSVs and
    # the exports alike; the CSV keeps the diagnostics' index (the exports show it as a column)
    exported = run_tables(result, contrasts, explained)
    tables = {**exported, DIAGNOSTICS: result.diagnostics.table}
    # outputs' writers looked up when called, so that a test can replace them there
    return Bundle(text=text, text_name=SUMMARY_TEXT, tables=tables, figures=dict(figures or {}),
                  files={POSTERIOR: outputs.write_netcdf(with_arviz_groups(result)),
                         **(forest_files(result, forest_order)
                            if forest_order is not None else {}),
                         # every table also as NAME.tex and in tables.docx
                         **table_files(exported, synthetic=spec.table.is_synthetic)},
                  spec_toml=spec_toml, indexed=frozenset({DIAGNOSTICS}))


def run_writers(result: FitResult, *, spec_toml: str, text: str, contrasts: pd.DataFrame,
                explained: pd.DataFrame | None = None,
                figures: Mapping[str, Any] | None = None,
                forest_order: str | None = "data") -> dict[str, Writer]:
    """The files of a ``bayes-poem run`` directory (name -> writer), in the layout's order:
    posterior, tables, figures, diagnostics, exports, spec, summary text (:func:`run_bundle`)."""
    writers = run_bundle(result, spec_toml=spec_toml, text=text, contrasts=contrasts,
                         explained=explained, figures=figures,
                         forest_order=forest_order).writers()
    last = [SPEC, SUMMARY_TEXT]
    first = [POSTERIOR] + [name for name in writers if name.endswith(".csv")
                           and name not in last + [DIAGNOSTICS]]
    figures = [name for name in writers if name.endswith((".png", ".pdf", ".svg"))]
    first += figures + [DIAGNOSTICS]
    order = first + [name for name in writers if name not in first + last] + last
    return {name: writers[name] for name in order}
