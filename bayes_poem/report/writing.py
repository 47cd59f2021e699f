"""Writing a report: ``report.html``, ``report.md``, the figures' PNGs and the tables as
``tableNN_<section>.tex`` and ``tables.docx`` (:mod:`bayes_poem.exports`), atomically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bayes_poem.exports import report_table_writers
from bayes_poem.report.document import Report
from bayes_poem.report.html_renderer import render_html
from bayes_poem.report.markdown_renderer import render_markdown
from bayes_poem.results_dir import REPORT_HTML, REPORT_MD


def report_writers(report: Report) -> dict[str, Callable[[Path], None]]:
    """Writers for :func:`bayes_poem.outputs.write_directory`: HTML, Markdown, PNGs,
    the tables' LaTeX and Word files."""
    html_text = render_html(report)
    markdown, files = render_markdown(report)

    def text_writer(content: str) -> Callable[[Path], None]:
        return lambda path: path.write_text(content, encoding="utf-8")

    def bytes_writer(content: bytes) -> Callable[[Path], None]:
        return lambda path: path.write_bytes(content)

    writers = {REPORT_HTML: text_writer(html_text), REPORT_MD: text_writer(markdown)}
    writers.update({name: bytes_writer(png) for name, png in files.items()})
    writers.update(report_table_writers(report))  # its tables as LaTeX and Word too
    return writers


def write_report(report: Report, out: str | Path, *, force: bool = False) -> Path:
    """Write ``report.html``, ``report.md`` and the PNGs atomically to ``out``."""
    from bayes_poem.outputs import write_directory

    return write_directory(Path(out), report_writers(report), force=force)
