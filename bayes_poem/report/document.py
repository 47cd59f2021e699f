"""The report as data: a :class:`Report` is a title and a tuple of
:class:`Section` objects (text, one table, figures as PNG bytes, formulas, a code
block, subsections); the renderers only format it."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bayes_poem.banner import synthetic_text

# A boolean table column marking rows to highlight (not shown).
HIGHLIGHT = "_highlight"


@dataclass(frozen=True)
class ReportFigure:
    """A figure as PNG bytes; ``name`` becomes the file name in the Markdown version."""

    name: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Formula:
    """One displayed formula: MathML for HTML, plain text for Markdown."""

    mathml: str
    text: str


@dataclass(frozen=True)
class Section:
    """One section of the report.

    ``text`` is plain text (paragraphs separated by blank lines, lines starting
    with ``- `` are list items). ``table`` cells are shown as given; a boolean
    column ``_highlight`` marks rows to highlight and is not shown.
    """

    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    figures: tuple[ReportFigure, ...] = ()
    table_caption: str = ""
    formulas: tuple[Formula, ...] = ()
    code: str = ""
    subsections: tuple[Section, ...] = ()
    anchor: str = ""


@dataclass(frozen=True)
class Report:
    title: str
    subtitle: str
    synthetic: bool
    sections: tuple[Section, ...]
    footer: Section
    synthetic_note: str = ""  # the banner's sentence (bayes_poem.banner.synthetic_text)

    @property
    def banner(self) -> str:
        """The SYNTHETIC banner's sentence ("" for real data)."""
        if not self.synthetic:
            return ""
        return self.synthetic_note or synthetic_text("these data are marked synthetic")

    def all_figures(self) -> list[ReportFigure]:
        found: list[ReportFigure] = []

        def walk(section: Section) -> None:
            found.extend(section.figures)
            for sub in section.subsections:
                walk(sub)

        for section in (*self.sections, self.footer):
            walk(section)
        return found

