"""The analysis report: one self-contained HTML file and a Markdown version.

This package only assembles: every number comes from :class:`FitResult`,
:mod:`bayes_poem.predictive`, :mod:`bayes_poem.loo` and :mod:`bayes_poem.compare`,
every figure from :mod:`bayes_poem.plots`. A report is a list of :class:`Section`
objects (title, text, table, figures); :func:`render_html` turns it into one HTML
file with inline CSS, figures embedded as base64 PNG and formulas in MathML (no
script, no stylesheet or font link, nothing fetched), and :func:`render_markdown`
into Markdown with the figures as PNG files next to it. See ``docs/report.md``.

Modules: ``document`` (the report as data), ``format`` (numbers and the SYNTHETIC
banner), ``sections/`` (the section builders, one module per topic), ``mathml``
(the formulas), ``build`` (:func:`build_report`), ``html_renderer`` (with the
stylesheet ``report.css`` as package data), ``markdown_renderer``, ``writing``.
A results directory is read back by :mod:`bayes_poem.results_dir`; its
:func:`load_fit`, :func:`results_dir_files` and :func:`find_sensitivity` are
importable from here too.
"""

from __future__ import annotations

from bayes_poem.report.build import DEFAULT_NEW_CENTRE_N, build_report
from bayes_poem.report.document import Formula, Report, ReportFigure, Section
from bayes_poem.report.html_renderer import render_html
from bayes_poem.report.markdown_renderer import figure_file_names, render_markdown
from bayes_poem.report.writing import report_bundle, report_writers, write_report
from bayes_poem.results_dir import find_sensitivity, load_fit, results_dir_files

__all__ = ["DEFAULT_NEW_CENTRE_N", "Formula", "Report", "ReportFigure", "Section",
           "build_report", "figure_file_names", "find_sensitivity", "load_fit",
           "render_html", "render_markdown", "report_bundle", "report_writers",
           "results_dir_files",
           "write_report"]
