"""Writing a report: ``report.html``, ``report.md``, the figures' PNGs and the tables as
``tableNN_<section>.tex`` and ``tables.docx`` (:mod:`bayes_poem.exports`), atomically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bayes_poem.bundle import Bundle, write_bundle
from bayes_poem.exports import report_table_files
from bayes_poem.report.document import Report
from bayes_poem.report.html_renderer import render_html
from bayes_poem.report.markdown_renderer import render_markdown
from bayes_poem.results_dir import REPORT_HTML, REPORT_MD


def report_bundle(report: Report) -> Bundle:
    """The report's files as a bundle (no summary text): HTML, Markdown, PNGs, the
    tables' LaTeX and Word files."""
    markdown, files = render_markdown(report)
    return Bundle(text_name="", files={REPORT_HTML: render_html(report), REPORT_MD: markdown,
                                       # its tables as LaTeX and Word too
                                       **report_table_files(report)},
                  figures=dict(files))


def report_writers(report: Report) -> dict[str, Callable[[Path], None]]:
    """Writers (file name -> function of the path): HTML, Markdown, PNGs, the tables'
    LaTeX and Word files."""
    return report_bundle(report).writers()


def write_report(report: Report, out: str | Path, *, force: bool = False) -> Path:
    """Write ``report.html``, ``report.md``, the PNGs and the tables' LaTeX and Word
    files atomically to ``out``."""
    return write_bundle(report_bundle(report), Path(out), force=force)
