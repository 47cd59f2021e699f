"""The SYNTHETIC banner, defined once: what synthetic data are, said one way everywhere.

Every output of synthetic data (``run``, ``compare``, ``sensitivity``, ``bias``,
``trial`` text; the report's HTML and Markdown) carries the same sentence,

    SYNTHETIC DATA: <description>; not real data, and no clinical conclusion can be
    drawn from them.

as a line ``*** ... ***`` in plain text (:func:`synthetic_banner`) and as the
report's banner (:func:`synthetic_text`). The description is the data's own
(:func:`describe`): an embedded dataset's ``description`` from the registry
(:mod:`bayes_poem.datasets`, e.g. counts simulated to match published
aggregates), prefixed by the spec's ``[data] label`` when one is given; a
user's table marked ``[data] synthetic = true`` is named by its label (or its
source) and said to be marked so; the trials' examples describe themselves
(:mod:`bayes_poem.trials.synthetic`). A leaf module (no pandas, no matplotlib):
``report/format.py`` re-exports it for the report.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BANNER_START", "describe", "marked_synthetic", "synthetic_banner", "synthetic_text"]

BANNER_START = "*** SYNTHETIC DATA: "  # how a text with the banner begins


def marked_synthetic(name: str) -> str:
    """The description of data a user marked synthetic (``[data] synthetic = true``)."""
    return f"{name}, marked synthetic ([data] synthetic = true)"


def describe(table: Any) -> str:
    """What a synthetic :class:`~bayes_poem.table.StudyTable` is, from its metadata."""
    metadata = table.metadata
    label = str(metadata.get("label") or "")
    description = str(metadata.get("description") or "")
    if description:  # an embedded dataset's own
        return f"{label}: {description}" if label else description
    return marked_synthetic(f"{label} ({table.source})" if label else str(table.source))


def synthetic_text(what: Any) -> str:
    """The banner's sentence; ``what`` is a description or a table (:func:`describe`)."""
    description = what if isinstance(what, str) else describe(what)
    return (f"SYNTHETIC DATA: {description}; not real data, and no clinical conclusion can "
            "be drawn from them.")


def synthetic_banner(what: Any) -> str:
    """The banner as one plain-text line: ``*** SYNTHETIC DATA: ... ***``."""
    return f"*** {synthetic_text(what)} ***"
