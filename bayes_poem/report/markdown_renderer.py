"""The Markdown renderer: the report as Markdown text and the PNG files it links to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from bayes_poem.report.document import HIGHLIGHT, Report, Section


def _md_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(table: pd.DataFrame, caption: str) -> str:
    highlight = (table[HIGHLIGHT].fillna(False).astype(bool).tolist() if HIGHLIGHT in table
                 else [False] * len(table))
    shown = table.drop(columns=[HIGHLIGHT], errors="ignore")
    lines = [f"*{caption}*", ""] if caption else []
    lines.append("| " + " | ".join(_md_cell(c) for c in shown.columns) + " |")
    lines.append("|" + "|".join("---" for _ in shown.columns) + "|")
    for flag, row in zip(highlight, shown.itertuples(index=False), strict=True):
        cells = [_md_cell(v) for v in row]
        if flag:
            cells[0] = f"**{cells[0]}** ⚑"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _md_section(section: Section, level: int, names: Mapping[int, str]) -> str:
    parts = ["#" * level + " " + section.title]
    if section.text:
        parts.append(section.text)
    if section.formulas:
        parts.append("```text\n" + "\n".join(f.text for f in section.formulas) + "\n```")
    if section.table is not None and not section.table.empty:
        parts.append(_md_table(section.table, section.table_caption))
    for figure in section.figures:
        parts.append(f"![{figure.caption}]({names[id(figure)]})\n\n*{figure.caption}*")
    if section.code:
        parts.append("```toml\n" + section.code.rstrip() + "\n```")
    for sub in section.subsections:
        parts.append(_md_section(sub, level + 1, names))
    return "\n\n".join(parts)


def figure_file_names(report: Report) -> dict[int, str]:
    """``id(figure)`` -> ``figNN_name.png``, in order of appearance."""
    return {id(fig): f"fig{i:02d}_{fig.name}.png"
            for i, fig in enumerate(report.all_figures(), start=1)}


def render_markdown(report: Report) -> tuple[str, dict[str, bytes]]:
    """Markdown text and the PNG files it links to (file name -> bytes)."""
    names = figure_file_names(report)
    parts = [f"# {report.title}"]
    if report.synthetic:
        parts.append(f"> **{report.banner}**")
    parts.append(report.subtitle)
    parts += [_md_section(s, 2, names) for s in report.sections]
    parts.append(_md_section(report.footer, 2, names))
    if report.synthetic:
        parts.append(f"> **{report.banner}**")
    files = {names[id(fig)]: fig.png for fig in report.all_figures()}
    return "\n\n".join(parts) + "\n", files

