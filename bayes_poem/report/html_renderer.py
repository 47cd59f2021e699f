"""The HTML renderer: one self-contained document (the stylesheet ``report.css``,
package data, inline in a ``<style>`` element; figures as base64 PNG; formulas in
MathML; no script, no link, nothing fetched).
"""

from __future__ import annotations

import base64
import html
from importlib import resources

import numpy as np
import pandas as pd

from bayes_poem.figure_style import display_width
from bayes_poem.report.document import HIGHLIGHT, Report, Section

# The stylesheet, package data: inlined into every document.
CSS = resources.files("bayes_poem.report").joinpath("report.css").read_text(encoding="utf-8")

_NUMERIC = set("0123456789.-+%[], <>≥≤")


def _is_numeric(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and any(c.isdigit() for c in stripped) and set(stripped) <= _NUMERIC


def _html_text(text: str) -> str:
    out, items = [], []

    def flush() -> None:
        if items:
            out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for block in [b for b in text.split("\n\n") if b.strip()]:
        for line in block.split("\n"):
            if line.startswith("- "):
                items.append(line[2:])
            else:
                flush()
                if line.strip():
                    out.append(f"<p>{html.escape(line)}</p>")
        flush()
    return "\n".join(out)


def _html_table(table: pd.DataFrame, caption: str) -> str:
    highlight = (table[HIGHLIGHT].fillna(False).astype(bool).tolist() if HIGHLIGHT in table
                 else [False] * len(table))
    shown = table.drop(columns=[HIGHLIGHT], errors="ignore")
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = []
    for flag, row in zip(highlight, shown.itertuples(index=False), strict=True):
        cells = []
        for value in row:
            text = "" if value is None or (isinstance(value, float) and np.isnan(value)) \
                else str(value)
            css = ' class="num"' if _is_numeric(text) else ""
            cells.append(f"<td{css}>{html.escape(text)}</td>")
        opening = '<tr class="flag">' if flag else "<tr>"
        body.append(opening + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _html_section(section: Section, level: int) -> str:
    tag = f"h{level}"
    anchor = f' id="{html.escape(section.anchor)}"' if section.anchor else ""
    parts = [f"<section{anchor}><{tag}>{html.escape(section.title)}</{tag}>"]
    if section.text:
        parts.append(_html_text(section.text))
    if section.formulas:
        parts.append('<div class="formulas">' + "".join(f.mathml for f in section.formulas)
                     + "</div>")
    if section.table is not None and not section.table.empty:
        parts.append(_html_table(section.table, section.table_caption))
    figures = []
    for figure in section.figures:
        data = base64.b64encode(figure.png).decode("ascii")
        figures.append(f'<figure><img alt="{html.escape(figure.caption)}" '
                       f'width="{display_width(figure.png)}" '  # 300 dpi shown at figure size
                       f'src="data:image/png;base64,{data}"><figcaption>'
                       f"{html.escape(figure.caption)}</figcaption></figure>")
    if figures:
        parts.append('<div class="figures">' + "".join(figures) + "</div>")
    if section.code:
        parts.append(f"<pre>{html.escape(section.code)}</pre>")
    for sub in section.subsections:
        parts.append(_html_section(sub, level + 1))
    parts.append("</section>")
    return "\n".join(parts)


def render_html(report: Report) -> str:
    """One self-contained HTML document (inline CSS, base64 PNGs, MathML; no scripts)."""
    banner = (f'<div class="synthetic" role="alert">{html.escape(report.banner)}</div>'
              if report.synthetic else "")
    tag = ' <span class="synthetic-tag">SYNTHETIC DATA</span>' if report.synthetic else ""
    nav = "".join(f'<a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a>'
                  for s in (*report.sections, report.footer) if s.anchor)
    body = "\n".join(_html_section(s, 2) for s in report.sections)
    title = ("[SYNTHETIC DATA] " if report.synthetic else "") + report.title
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<header>{banner}<h1>{html.escape(report.title)}{tag}</h1>"
        f'<p class="subtitle">{html.escape(report.subtitle)}</p></header>\n'
        f"<nav>{nav}</nav>\n{body}\n<footer>{_html_section(report.footer, 2)}</footer>\n"
        f"{banner}\n</main>\n</body>\n</html>\n"
    )

