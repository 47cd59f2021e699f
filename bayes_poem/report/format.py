"""Number formatting and the SYNTHETIC banner's text (:func:`synthetic_text`, defined in
the leaf module :mod:`bayes_poem.banner` so that plain-text outputs use it without
loading the report), shared by the report's sections and renderers: percentages,
numbers, intervals and probabilities as table cells (an empty cell for a missing
value), figures as embedded PNGs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from bayes_poem import plots
from bayes_poem.banner import synthetic_text  # the SYNTHETIC banner, defined once there
from bayes_poem.report.document import ReportFigure

if TYPE_CHECKING:
    from bayes_poem.results import FitResult

__all__ = ["at_text", "ci_num", "ci_pct", "embed", "num", "pct", "prob", "synthetic_text"]


def pct(x: float, digits: int = 1) -> str:
    """``x`` as a percentage with ``digits`` decimals (empty if missing)."""
    if x is None or not np.isfinite(x):
        return ""
    value = round(100 * float(x), digits)
    return f"{value + 0.0:.{digits}f}%"  # + 0.0: no "-0.0%"


def ci_pct(median: float, lower: float, upper: float, digits: int = 1) -> str:
    """``median [lower, upper]`` as percentages."""
    if not np.isfinite(median):
        return ""
    return f"{pct(median, digits)} [{pct(lower, digits)}, {pct(upper, digits)}]"


def num(x: float, fmt: str = ".3f") -> str:
    """``x`` formatted with ``fmt`` (empty if missing)."""
    return "" if x is None or not np.isfinite(x) else format(x, fmt)


def ci_num(median: float, lower: float, upper: float, fmt: str = ".3f") -> str:
    """``median [lower, upper]`` formatted with ``fmt``."""
    if not np.isfinite(median):
        return ""
    return f"{median:{fmt}} [{lower:{fmt}}, {upper:{fmt}}]"


def prob(x: float) -> str:
    """A probability to 3 decimals; ``< 0.001`` and ``> 0.999`` at the ends."""
    if x is None or not np.isfinite(x):
        return ""
    return "< 0.001" if x < 0.001 else "> 0.999" if x > 0.999 else f"{x:.3f}"


def embed(name: str, caption: str, fig: Any) -> ReportFigure:
    """A matplotlib figure as a :class:`ReportFigure` (PNG bytes)."""
    return ReportFigure(name, caption, plots.to_png(fig))


def at_text(fit: FitResult) -> str:
    """The covariate values of the pooled probabilities (the text report's wording)."""
    from bayes_poem.report_text import _at_text as text_at

    return text_at(fit)

