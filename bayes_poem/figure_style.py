"""One figure style for every plotting module: palette, fonts, resolution, percent axes.

Every figure of the package (:mod:`bayes_poem.plots`, :mod:`bayes_poem.forest_plot`,
:mod:`bayes_poem.bias_plots`, :mod:`bayes_poem.joint_plots`,
:mod:`bayes_poem.trials.plots`) is made by :func:`new_figure` (an Agg canvas, no
pyplot, nothing global), drawn inside :func:`styled` (the rc settings below, applied
to that figure's artists only and restored afterwards) and written by :func:`save`
or :func:`to_png` at :data:`DPI` (300 dots per inch, the usual journal minimum for
line art with text) or as vector PDF/SVG (fonts embedded as TrueType, text kept as
text in SVG, so a journal's production can edit it).

Percent axes use :class:`PercentAxisFormatter`: as many decimals as the ticks need
and the same number on every tick, so a tick at 82.5% is never labelled "82%".
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter

from bayes_poem import png

__all__ = ["DPI", "FORMATS", "PALETTE", "PNG_COMPRESS_LEVEL", "RC", "SCREEN_PPI",
           "PercentAxisFormatter",
           "display_width", "new_figure", "percent_axis", "percent_decimals", "percent_label",
           "save", "styled",
           "to_bytes", "to_png"]

# ---------------------------------------------------------------------- palette
OBSERVED = "#4d4d4d"  # observed data (grey)
SHRUNK = "#1f5fa8"  # model estimates (blue)
POOLED = "#b2182b"  # pooled estimates and reference lines (red)
PREDICTION = "#e08214"  # prediction intervals, second series (orange)
FLAGGED = "#d7191c"  # flagged rows
PRIOR = "#7f7f7f"  # prior densities, reference lines
ACCEPTABLE = "#1a9850"  # an acceptable region (green)
GRID = "#dddddd"
PALETTE = (SHRUNK, PREDICTION, ACCEPTABLE, POOLED, "#762a83", "#8c510a", "#01665e",
           "#c51b7d")

# ---------------------------------------------------------------------- fonts, sizes
FONT_SIZE = 8.0  # body text, tick labels, legends (a journal's 7-9 pt at print size)
TITLE_SIZE = 10.0
RC: dict[str, Any] = {
    "font.family": "sans-serif",
    # the first installed one is used (Arial/Helvetica where the journal's machines have them)
    "font.sans-serif": ["Arial", "Helvetica", "Liberation Sans", "DejaVu Sans"],
    "font.size": FONT_SIZE,
    "axes.titlesize": 9.0,
    "axes.labelsize": FONT_SIZE + 0.5,
    "xtick.labelsize": FONT_SIZE,
    "ytick.labelsize": FONT_SIZE,
    "legend.fontsize": FONT_SIZE,
    "figure.titlesize": TITLE_SIZE,
    "axes.linewidth": 0.8,
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
    "lines.linewidth": 1.4,
    "pdf.fonttype": 42,  # TrueType in PDF (journals refuse Type 3 fonts)
    "ps.fonttype": 42,
    "svg.fonttype": "none",  # text stays text in SVG
}

# ---------------------------------------------------------------------- resolution, formats
DPI = 300
FORMATS = ("png", "pdf", "svg")
# zlib's level for PNGs (bayes_poem.png): 3 deflates a 300-dpi figure in about half the
# time of the default 6, files ~12% larger
PNG_COMPRESS_LEVEL = png.COMPRESS_LEVEL
# CSS pixels per inch at which a page shows a figure (the report's HTML): the 300-dpi
# PNG is drawn at its figure size, not at 300 / 110 times it
SCREEN_PPI = 110

F = TypeVar("F", bound=Callable[..., Figure])


def styled(function: F) -> F:
    """Draw ``function``'s figure with :data:`RC` (restored afterwards)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with mpl.rc_context(RC):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure on an Agg canvas (``width`` x ``height`` inches)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """The figure as PNG (at :data:`DPI`), PDF or SVG bytes, on white.

    A PNG of a figure on an Agg canvas (every figure of :func:`new_figure`) is drawn
    once: ``savefig`` draws a constrained-layout figure twice (a layout pass, then the
    drawing), while the canvas's own drawing lays it out within it, the same pixels
    (``tests/test_figure_style.py``); the pixels are written by :func:`bayes_poem.png.encode`
    ("Up"-filtered, deflated at :data:`PNG_COMPRESS_LEVEL`).
    """
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    if fmt == "png" and type(fig.canvas) is FigureCanvasAgg:
        dpi, facecolor = fig.dpi, fig.get_facecolor()
        with mpl.rc_context(RC):
            fig.set_dpi(DPI)
            fig.set_facecolor("white")
            try:
                fig.canvas.draw()
                return png.encode(np.asarray(fig.canvas.buffer_rgba()), DPI)
            finally:
                fig.set_dpi(dpi)
                fig.set_facecolor(facecolor)
    buffer = io.BytesIO()
    with mpl.rc_context(RC):
        metadata = {"Software": None} if fmt == "png" else {"Creator": None} if fmt == "pdf" \
            else {"Date": None}
        fig.savefig(buffer, format=fmt, dpi=DPI, facecolor="white", metadata=metadata,
                    **({"pil_kwargs": {"compress_level": PNG_COMPRESS_LEVEL}}
                       if fmt == "png" else {}))
    return buffer.getvalue()


def to_formats(fig: Figure, formats: Sequence[str]) -> dict[str, bytes]:
    """The figure in each of ``formats`` (:func:`to_bytes`), laid out once.

    The first format is drawn as :func:`to_bytes` draws it (a PNG first, when one
    is asked for: its one drawing lays the figure out at :data:`DPI`); the others
    reuse that layout, the layout engine paused while they are drawn (restored
    afterwards), so each is one drawing instead of a layout pass and a drawing.
    A constrained layout's pads are in inches, so a layout made at :data:`DPI`
    differs from one made at a vector format's 72 dpi only by the rounding of text
    extents to pixels (under 1% of a position).
    """
    order = sorted(dict.fromkeys(formats), key=lambda fmt: fmt != "png")
    if not order:
        return {}
    out = {order[0]: to_bytes(fig, order[0])}
    engine = fig.get_layout_engine()
    if engine is None or len(order) == 1:
        return {**out, **{fmt: to_bytes(fig, fmt) for fmt in order[1:]}}
    fig.set_layout_engine("none")
    try:
        out.update((fmt, to_bytes(fig, fmt)) for fmt in order[1:])
    finally:
        fig.set_layout_engine(engine)
    return {fmt: out[fmt] for fmt in dict.fromkeys(formats)}


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes at :data:`DPI`."""
    return to_bytes(fig, "png")


def display_width(png: bytes) -> int:
    """The width (CSS pixels) to show a :func:`to_png` image at: its figure width at
    :data:`SCREEN_PPI` (the PNG's pixel width is read from its header)."""
    return round(int.from_bytes(png[16:20], "big") * SCREEN_PPI / DPI)


def save(fig: Figure, path: str | Path) -> None:
    """Write the figure to ``path`` in the format its suffix names (png, pdf, svg)."""
    path = Path(path)
    path.write_bytes(to_bytes(fig, path.suffix.lstrip(".").lower()))


# ---------------------------------------------------------------------- percent axes
def percent_decimals(values: Sequence[float], scale: float = 1.0, most: int = 4) -> int:
    """The fewest decimals (up to ``most``) that show every value exactly as a percent.

    ``values`` are on the scale where ``scale`` is 100% (1.0: proportions; 100.0:
    values already in percent). ``[0.80, 0.825, 0.85]`` needs 1 ("82.5%").
    """
    percents = 100.0 * np.asarray(values, dtype=float) / scale
    percents = percents[np.isfinite(percents)]
    for decimals in range(most + 1):
        if np.allclose(np.round(percents, decimals), percents, rtol=0.0, atol=1e-9):
            return decimals
    return most


class PercentAxisFormatter(Formatter):
    """Tick labels as percents with the decimals the ticks need, the same on every tick.

    ``scale`` is the data value shown as 100% (1.0 for proportions, 100.0 for data
    already in percent).
    """

    def __init__(self, scale: float = 1.0):
        self.scale = float(scale)
        self.decimals = 0

    def set_locs(self, locs: Sequence[float]) -> None:
        super().set_locs(locs)
        low, high = (self.axis.get_view_interval() if self.axis is not None
                     else (-np.inf, np.inf))
        low, high = min(low, high), max(low, high)
        shown = [v for v in locs if low - 1e-12 <= v <= high + 1e-12]
        self.decimals = percent_decimals(shown or list(locs), self.scale)

    def __call__(self, x: float, pos: int | None = None) -> str:
        return self.text(x, self.scale, self.decimals)

    @staticmethod
    def text(x: float, scale: float, decimals: int) -> str:
        value = round(100.0 * x / scale, decimals) + 0.0  # no "-0%"
        return f"{value:.{decimals}f}%"


def percent_label(x: float, scale: float = 1.0) -> str:
    """One value as a percent with the decimals it needs (0.825 -> "82.5%", 0.1 -> "10%")."""
    return PercentAxisFormatter.text(x, scale, percent_decimals([x], scale))


def percent_axis(axis: Any, scale: float = 1.0) -> None:
    """Percent tick labels on ``axis`` (``ax.xaxis``, ``ax.yaxis`` or a secondary axis)."""
    axis.set_major_formatter(PercentAxisFormatter(scale))
