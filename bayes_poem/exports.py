"""Every table as LaTeX (``NAME.tex``) and all of a directory's tables in one Word file.

Formatting only: the tables are the DataFrames a command already writes as CSV
(``NAME.csv``); this module turns them into text and bytes, and the command's
results writer (:mod:`bayes_poem.outputs`, atomic) writes them beside the CSVs.

* **Cells** (:func:`format_cell`, :func:`format_table`): numbers as the text
  output prints them: a proportion column named in :data:`CAPTIONS` as a
  percentage with one decimal (``0.8910 -> 89.1%``), any other real number with
  three decimals (``-0.0203 -> -0.020``), integers and labels as they are (and a
  count column of :data:`COUNT_COLUMNS` stored as whole floats, ``8.0``, as
  ``8``), a missing value as an empty cell. The CSV keeps every digit; these files are
  for reading and pasting.
* **Captions**: the command's caption of each table (:data:`CAPTIONS`, by CSV
  file name, or given), followed by the interval the table's ``interval`` column
  records (``Intervals: 95% ETI.``; ``freq_interval``: ``Intervals (freq): 95%
  CI.``), so a caption cannot disagree with its numbers; such a column, when
  constant within the table, is then left out of the body.
* **LaTeX** (:func:`to_latex`): a ``table`` float with a ``booktabs`` tabular
  (``\\toprule``, ``\\midrule``, ``\\bottomrule``; the preamble needs
  ``\\usepackage{booktabs}``), numbers right-aligned, labels left-aligned,
  the caption and a ``tab:NAME`` label (``tab:study-estimates``); every LaTeX
  special character of a label, header or caption (``\\ & % $ # _ { } ~ ^ < >``)
  escaped.
* **Word** (:func:`to_docx`): one ``tables.docx`` per results directory, each
  table preceded by its caption (``Table k. ...``), built with python-docx
  (maintained, pure Python, no LibreOffice or pandoc needed to write a
  ``.docx``; its output opens in Word and LibreOffice).
* **Files** (:func:`table_files`, :func:`table_files`): the ``NAME.tex`` files
  and ``tables.docx`` of a set of CSV tables, as bytes or as results writers;
  :func:`export_tables` writes a :class:`~bayes_poem.results.FitResult`'s tables
  into a new directory from Python (``docs/exports.md``); :func:`report_table_files`
  does the same for the tables of a report (``bayes-poem report``: predictive
  checks, PSIS-LOO, ...), named ``tableNN_<section>.tex``.
"""

from __future__ import annotations

import io
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from bayes_poem.report.document import Report, Section
    from bayes_poem.results import FitResult

__all__ = ["CAPTIONS", "COUNT_COLUMNS", "DOCX", "JOINT_CAPTIONS", "TRIAL_CAPTIONS", "Caption",
           "caption_text", "export_tables", "format_cell", "format_table", "latex_escape",
           "report_table_files", "report_tables", "run_tables", "table_files", "to_docx",
           "to_latex"]

DOCX = "tables.docx"
EMPTY = "(no entries)"  # a table without columns, e.g. the contrasts of one subgroup


@dataclass(frozen=True)
class Caption:
    """What a table is (``text``) and which of its columns are proportions shown as
    percentages (``percent``)."""

    text: str
    percent: tuple[str, ...] = ()


_RATES = ("mean", "median", "sd", "lower", "upper", "observed")

# The caption of every table a command writes, by its CSV file name.
CAPTIONS: dict[str, Caption] = {
    # run
    "summary.csv": Caption("Pooled probabilities by subgroup: p_pooled (median study), "
                           "p_mean (population mean), p_new (a new study); posterior mean, "
                           "median, SD and interval in percent; observed = events / total",
                           _RATES),
    "heterogeneity.csv": Caption("Heterogeneity: tau, tau2 and sigma_subgroup on the logit "
                                 "scale, i2 as a proportion; posterior summaries"),
    "study_estimates.csv": Caption("Study estimates: observed and shrunken (posterior) "
                                   "probability of each study and subgroup, in percent",
                                   _RATES),
    "contrasts.csv": Caption("Contrasts between subgroups (difference, ratio, odds ratio); "
                             "posterior summaries, P(>null) and P(>margin)"),
    "moderators.csv": Caption("Moderators: coefficients (beta, logit scale per coded unit) "
                              "and odds ratios per unit and per SD"),
    "tau2_explained.csv": Caption("Share of tau^2 explained by the moderators: tau with and "
                                  "without them and R^2"),
    "diagnostics.csv": Caption("Sampler diagnostics: R-hat and effective sample sizes"),
    # compare
    "comparison_subgroups.csv": Caption(
        "Bayesian and frequentist estimates by subgroup; proportions in percent",
        ("observed", "freq_estimate", "freq_ci_lower", "freq_ci_upper",
         "bayes_p_pooled_median", "bayes_p_pooled_lower", "bayes_p_pooled_upper",
         "bayes_p_mean_median", "published", "published_ci_lower", "published_ci_upper")),
    "comparison_contrasts.csv": Caption("Bayesian and frequentist contrasts between "
                                        "subgroups"),
    "comparison_moderators.csv": Caption("Bayesian and frequentist moderator coefficients"),
    # sensitivity
    "sensitivity.csv": Caption("Sensitivity analysis: estimates under each variant of the "
                               "model, priors and data"),
    "variants.csv": Caption("Sensitivity analysis: one row per variant"),
    "psens.csv": Caption("Power-scaling sensitivity of the prior and the likelihood"),
    # bias
    "precision.csv": Caption("Small-study effects: the precision model's slope and limit "
                             "estimate"),
    "regtest.csv": Caption("Egger-type regression test for funnel-plot asymmetry"),
    "ranktest.csv": Caption("Begg-Mazumdar rank correlation test"),
    "trimfill.csv": Caption("Trim-and-fill"),
    "cumulative_bayes.csv": Caption("Bayesian cumulative meta-analysis"),
    "cumulative_frequentist.csv": Caption("Frequentist cumulative meta-analysis"),
}

# A joint (efficacy-safety) spec's tables: its own summary.csv and heterogeneity.csv.
JOINT_CAPTIONS: dict[str, Caption] = {
    "summary.csv": Caption("Probabilities by outcome and subgroup (p_pooled, p_mean, p_new); "
                           "posterior summaries in percent; observed = events / total",
                           _RATES),
    "heterogeneity.csv": Caption("Heterogeneity: tau per outcome and the correlation rho of "
                                 "the study effects; posterior summaries"),
    "benefit_risk.csv": Caption("Benefit-risk: probability that success and adverse-event "
                                "rates both meet their thresholds, and net benefit"),
    "joint_contrasts.csv": Caption("Contrasts between subgroups on both outcomes"),
    "diagnostics.csv": CAPTIONS["diagnostics.csv"],
    "comparison_subgroups.csv": Caption("Joint posterior and frequentist bivariate REML "
                                        "estimates by outcome and subgroup"),
    "comparison_heterogeneity.csv": Caption("Joint posterior and frequentist bivariate REML "
                                            "heterogeneity (tau per outcome, rho)"),
    "benefit_risk_sensitivity.csv": Caption("Sensitivity of the benefit-risk probabilities "
                                            "and rho to the prior on rho"),
}

# A trial analysis's tables (bayes_poem.trials).
TRIAL_CAPTIONS: dict[str, Caption] = {
    "summary.csv": Caption("Trial analysis: posterior summaries"),
    "noninferiority.csv": Caption("Non-inferiority of posterior myotomy"),
    "arms.csv": Caption("Trial arms as analysed"),
    "studies.csv": Caption("Trials of the meta-analysis"),
    "published_comparison.csv": Caption("Published estimates (95% CI) beside the posterior "
                                        "ones"),
    "notes.csv": Caption("Notes on the analysis"),
    "assurance.csv": Caption("Assurance by sample size per arm"),
    "meta_summary.csv": Caption("Meta-analysis of the trials: posterior summaries"),
    "interim.csv": Caption("Interim analysis: predictive probability of success"),
    "diagnostics.csv": CAPTIONS["diagnostics.csv"],
}


# ---------------------------------------------------------------------- cells
def format_cell(value: object, percent: bool = False) -> str:
    """One cell as the text output prints it: a proportion (``percent``) as ``89.1%``,
    a real number with three decimals, an integer, boolean or label as it is, a
    missing value (``None``, NaN) as an empty string."""
    if value is None:
        return ""
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            return "" if math.isnan(x) else ("inf" if x > 0 else "-inf")
        if percent:
            return f"{round(100 * x, 1) + 0.0:.1f}%"  # + 0.0: no "-0.0%"
        return f"{round(x, 3) + 0.0:.3f}"
    try:
        import pandas as pd

        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def _interval_columns(frame: pd.DataFrame) -> dict[str, str]:
    """The constant interval-label columns of ``frame`` (``interval``, ``freq_interval``,
    ...) and their one label: stated in the caption, left out of the body."""
    found = {}
    for column in frame.columns:
        if str(column) == "interval" or str(column).endswith("_interval"):
            labels = frame[column].dropna().unique()
            if len(labels) == 1:
                found[str(column)] = str(labels[0])
    return found


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without its constant interval-label columns (the caption states them)."""
    return frame.drop(columns=list(_interval_columns(frame)))


# Columns of counts: stored as floats where a missing value made the column float
# (``k``, ``divergences``, ...), shown as integers when every value is whole.
COUNT_COLUMNS = frozenset({"k", "n", "n_studies", "events", "total", "divergences",
                           "draws", "df", "step", "n_per_arm"})


def _whole(column: pd.Series) -> bool:
    import numpy as np
    import pandas as pd

    if not pd.api.types.is_float_dtype(column):
        return False
    finite = column[np.isfinite(column)]
    return bool(len(finite)) and bool((finite == np.round(finite)).all())


def format_table(frame: pd.DataFrame, percent: Sequence[str] = ()) -> list[list[str]]:
    """The header and the formatted rows of ``frame`` as shown in the exports (a
    constant ``interval`` column left out; a count column of :data:`COUNT_COLUMNS`
    stored as whole floats, ``8.0``, shown as the integer ``8``)."""
    shown = _shown(frame)
    counts = {c for c in shown.columns if c in COUNT_COLUMNS and _whole(shown[c])}
    rows = [[str(c) for c in shown.columns]]
    for values in shown.itertuples(index=False, name=None):
        rows.append([format_cell(int(v), False) if c in counts and v == v
                     else format_cell(v, c in percent)
                     for c, v in zip(shown.columns, values, strict=True)])
    return rows


def caption_text(frame: pd.DataFrame, caption: str) -> str:
    """``caption`` and the interval(s) the table's interval-label columns record
    (``Intervals: 95% ETI``; ``freq_interval`` as ``Intervals (freq): 95% CI``)."""
    text = caption.rstrip().rstrip(".")
    stated = [(f"Intervals: {label}" if column == "interval" else
               f"Intervals ({column.removesuffix('_interval')}): {label}")
              for column, label in _interval_columns(frame).items()]
    return ". ".join([text, *stated]) + "."


def _numeric(frame: pd.DataFrame) -> list[bool]:
    import pandas as pd

    return [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
            for c in frame.columns]


# ---------------------------------------------------------------------- LaTeX
_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
          "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
          "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def latex_escape(text: str) -> str:
    """``text`` with every LaTeX special character escaped (for text mode)."""
    return "".join(_LATEX.get(ch, ch) for ch in str(text))


def to_latex(frame: pd.DataFrame, caption: str, *, name: str = "table",
             percent: Sequence[str] = (), note: str = "") -> str:
    """``frame`` as a LaTeX ``table`` with a booktabs ``tabular`` (needs
    ``\\usepackage{booktabs}``), its caption (:func:`caption_text`) and label
    ``tab:NAME`` (letters and digits kept, any other run of characters as ``-``:
    ``tab:study-estimates``, safe in ``\\ref``); ``note`` (e.g. a SYNTHETIC warning)
    is put under the table."""
    rows = format_table(frame, percent)
    align = "".join("r" if num else "l" for num in _numeric(_shown(frame)))
    lines = ["% bayes-poem table; needs \\usepackage{booktabs}",
             "\\begin{table}[htbp]", "\\centering",
             f"\\caption{{{latex_escape(caption_text(frame, caption))}}}",
             f"\\label{{tab:{re.sub(r'[^A-Za-z0-9]+', '-', name)}}}"]
    if not align:  # no columns (e.g. no contrasts): a tabular needs one
        lines.append(f"\\emph{{{EMPTY}}}")
    else:
        lines += [f"\\begin{{tabular}}{{{align}}}", "\\toprule",
                  " & ".join(latex_escape(c) for c in rows[0]) + " \\\\", "\\midrule"]
        lines += [" & ".join(latex_escape(c) for c in row) + " \\\\" for row in rows[1:]]
        lines += ["\\bottomrule", "\\end{tabular}"]
    if note:
        lines.append(f"\\par\\smallskip\\footnotesize {latex_escape(note)}")
    lines += ["\\end{table}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------- Word
def to_docx(tables: Mapping[str, tuple[pd.DataFrame, str, Sequence[str]]], *,
            title: str = "", note: str = "") -> bytes:
    """One Word document of ``tables`` (name -> (frame, caption, percent columns)),
    each a Word table preceded by ``Table k. caption``; ``title`` as its heading,
    ``note`` (e.g. a SYNTHETIC warning) under it."""
    import docx

    document = docx.Document()
    if title:
        document.add_heading(title, level=1)
    if note:
        document.add_paragraph().add_run(note).bold = True
    for k, (frame, caption, percent) in enumerate(tables.values(), start=1):
        paragraph = document.add_paragraph()
        paragraph.add_run(f"Table {k}. ").bold = True
        paragraph.add_run(caption_text(frame, caption))
        rows = format_table(frame, percent)
        numeric = _numeric(_shown(frame))
        if not numeric:  # no columns (e.g. no contrasts)
            document.add_paragraph(EMPTY)
            continue
        _word_table(document, rows, numeric)
        document.add_paragraph()
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


_PLAIN = re.compile(r"[^\s]([^\t\n\r]*[^\s])?")  # no tab, break or edge space


def _word_table(document, rows: list[list[str]], numeric: Sequence[bool]) -> None:
    """``rows`` (header first) as a "Table Grid" table at the end of ``document``: the
    header in bold, the body's number columns right-aligned.

    Linear in the cells: python-docx's per-cell API (``run.bold``, ``alignment``)
    searches each element's children for where to insert, 3.4 s for a 2,000-row table.
    So only the header and one body row are made with that API; that row's ``w:tr``
    is the template copied (lxml, in C) for every body row, its ``w:t`` texts set.
    A text the template's one ``w:t`` cannot hold as is (empty, a tab or line break,
    a space at either end) is set by python-docx's run text (``w:tab``, ``w:br``,
    ``xml:space``), as ``add_run`` sets it.
    """
    import copy

    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml.ns import qn

    table = document.add_table(rows=2, cols=len(rows[0]))
    table.style = "Table Grid"
    header, body = table.rows
    for text, cell in zip(rows[0], header.cells, strict=True):
        cell.paragraphs[0].add_run(text).bold = True
    for right, cell in zip(numeric, body.cells, strict=True):
        paragraph = cell.paragraphs[0]
        paragraph.add_run("x")
        if right:
            paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    template = body._tr
    tbl = table._tbl
    tbl.remove(template)
    t_tag = qn("w:t")
    for row in rows[1:]:
        tr = copy.deepcopy(template)
        for text, t in zip(row, list(tr.iter(t_tag)), strict=True):
            if _PLAIN.fullmatch(text):
                t.text = text
            else:
                run = t.getparent()
                run.text = text  # CT_R: clears the run's content, then w:t/w:tab/w:br
        tbl.append(tr)


# ---------------------------------------------------------------------- files
def _stem(name: str) -> str:
    return name[:-4] if name.endswith(".csv") else name


def table_files(tables: Mapping[str, pd.DataFrame],
                captions: Mapping[str, str | Caption] | None = None, *,
                title: str = "", synthetic: bool | str = False) -> dict[str, bytes]:
    """``NAME.tex`` for each table (keyed by its CSV name, ``NAME.csv``) and one
    ``tables.docx`` with all of them; captions from ``captions`` (default
    :data:`CAPTIONS`; a table without one is captioned by its file name).
    ``synthetic`` puts the SYNTHETIC banner's sentence (:mod:`bayes_poem.banner`) under
    each table and at the top of the Word file: the sentence itself when a string
    (``banner.synthetic_text``), a generic one when ``True``."""
    from bayes_poem.banner import synthetic_text

    if isinstance(synthetic, str):
        note = synthetic
    else:
        note = synthetic_text("these data are marked synthetic") if synthetic else ""
    files: dict[str, bytes] = {}
    word = {}
    for name, frame in tables.items():
        given = (captions if captions is not None else CAPTIONS).get(name, Caption(_stem(name)))
        caption = given if isinstance(given, Caption) else Caption(str(given))
        stem = _stem(name)
        files[f"{stem}.tex"] = to_latex(frame, caption.text, name=stem,
                                        percent=caption.percent, note=note).encode()
        word[stem] = (frame, caption.text, caption.percent)
    if word:
        files[DOCX] = to_docx(word, title=title, note=note)
    return files


def report_tables(report: Report) -> dict[str, tuple[pd.DataFrame, str]]:
    """The tables of a report (``bayes_poem.report``: posterior summaries, checks,
    PSIS-LOO, predictions, comparisons, ...), in reading order, as
    ``tableNN_<section>.csv`` -> (cells as shown, caption); the highlight column left
    out."""
    from bayes_poem.report.document import HIGHLIGHT

    found: dict[str, tuple[pd.DataFrame, str]] = {}

    def walk(section: Section) -> None:
        if section.table is not None and not section.table.empty:
            slug = re.sub(r"[^a-z0-9]+", "_", section.title.lower()).strip("_")
            if len(slug) > 60:  # at a word's end
                slug = slug[:61].rsplit("_", 1)[0]
            name = f"table{len(found) + 1:02d}_{slug or 'table'}.csv"
            caption = (f"{section.title}: {section.table_caption}" if section.table_caption
                       else section.title)
            found[name] = (section.table.drop(columns=[HIGHLIGHT], errors="ignore"), caption)
        for sub in section.subsections:
            walk(sub)

    for section in (*report.sections, report.footer):
        walk(section)
    return found


def report_table_files(report: Report) -> dict[str, bytes]:
    """The report's tables (:func:`report_tables`) as ``tableNN_<section>.tex`` and one
    ``tables.docx`` (file name -> content, for the report's bundle)."""
    tables = report_tables(report)
    return table_files({name: frame for name, (frame, _) in tables.items()},
                         {name: caption for name, (_, caption) in tables.items()},
                         title=report.title, synthetic=report.banner)


def run_tables(result: FitResult, contrasts: pd.DataFrame | None = None,
               explained: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """The tables of a ``bayes-poem run`` directory, by CSV name (as ``run`` writes
    them; ``contrasts`` defaults to the result's own)."""
    tables = {"summary.csv": result.subgroup_summary(),
              "heterogeneity.csv": result.heterogeneity(),
              "study_estimates.csv": result.study_estimates(),
              "contrasts.csv": result.contrasts() if contrasts is None else contrasts}
    if result.spec.moderators:
        tables["moderators.csv"] = result.moderator_summary()
    if explained is not None:
        tables["tau2_explained.csv"] = explained
    tables["diagnostics.csv"] = result.diagnostics.table.reset_index()
    return tables


def export_tables(result: FitResult, out: str | Path, *, title: str = "",
                  force: bool = False) -> Path:
    """Write ``result``'s tables as CSV, LaTeX and ``tables.docx`` into the new
    directory ``out`` (the results writer: atomic, never replacing anything but a
    results directory, and that only with ``force``); returns its path."""
    from bayes_poem.bundle import Bundle, write_bundle

    tables = run_tables(result)
    from bayes_poem.banner import synthetic_text

    table = result.spec.table
    files = table_files(tables, title=title,
                        synthetic=synthetic_text(table) if table.is_synthetic else "")
    return write_bundle(Bundle(text_name="", tables=tables, files=files), out, force=force,
                        command="export")
