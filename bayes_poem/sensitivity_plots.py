"""The figures of a sensitivity grid: which ones, drawn as PNG, and the crossed grid's.

Drawing only. :func:`crossed_grid_plot` is the figure of a crossed grid of two axes
(``sensitivity_grid.png``): one heat map per quantity, a row per level of the first
crossed axis and a column per level of the second, each cell the variant's
posterior median (written in the cell), flagged cells outlined in red, failed cells
left blank; the main analysis's median is given in the panel's title. A panel's
colours span its own medians, and the numbers in the cells are its scale: no colour
bar (seven of them took a third of the figure's drawing time and repeated the
numbers). Cells are a ``pcolormesh`` (a quadrilateral each), not an image resampled
to 300 dpi. The forest figure of every variant (``sensitivity.png``) is
:func:`bayes_poem.plots.sensitivity_forest`.

:func:`figure_names` and :func:`figure_png` are what ``bayes-poem sensitivity``
writes: a figure drawn from the grid's table alone, by a module-level function, so
that with ``--jobs`` above 1 the grid's worker processes draw the figures at the
same time (each 300-dpi figure of a 25-variant grid takes 0.5-0.7 s to draw)
while the command writes its tables; the bytes are those of drawing it here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from bayes_poem.figure_style import new_figure, to_png
from bayes_poem.sensitivity_grid import AXIS_LABELS, CROSSED, MAIN

__all__ = ["FOREST", "HEAT_MAPS", "crossed_grid_plot", "figure_names", "figure_png"]

FLAGGED = "#c0392b"
FOREST = "sensitivity.png"  # every variant's median and interval, per quantity
HEAT_MAPS = "sensitivity_grid.png"  # a crossed grid of two axes: its heat maps


def figure_names(axes: Sequence[str]) -> tuple[str, ...]:
    """The figures of a grid with these axes: the forest, and for a crossed grid of
    two axes its heat maps."""
    return (FOREST, HEAT_MAPS) if len(axes) == 2 else (FOREST,)


def figure_png(name: str, frame: pd.DataFrame, axes: Sequence[str], title: str = "") -> bytes:
    """The grid's figure ``name`` (:func:`figure_names`) of ``frame``
    (``sensitivity.csv``) as PNG bytes (:func:`bayes_poem.figure_style.to_png`)."""
    from bayes_poem.plots import sensitivity_forest

    if name == FOREST:
        figure = sensitivity_forest(frame=frame, title=title)
    elif name == HEAT_MAPS:
        figure = crossed_grid_plot(frame=frame, axes=axes, title=title)
    else:
        raise ValueError(f"no sensitivity figure named {name!r}")
    return to_png(figure)


def crossed_grid_plot(*, frame: pd.DataFrame, axes: Sequence[str],
                      quantities: Sequence[str] | None = None, title: str = "") -> Figure:
    """Heat maps of the medians of ``quantities`` (default: every quantity) over the
    two crossed ``axes`` of ``frame`` (``sensitivity.csv``: its axis columns)."""
    rows_axis, columns_axis = axes
    data = frame[(frame["group"] == CROSSED) & (frame["status"] != "failed")]
    main = frame[(frame["variant"] == MAIN) & (frame["status"] != "failed")].set_index(
        "quantity")
    quantities = list(quantities or dict.fromkeys(data["quantity"]))
    crossed = frame[frame["group"] == CROSSED]
    row_levels = list(dict.fromkeys(crossed[rows_axis]))
    column_levels = list(dict.fromkeys(crossed[columns_axis]))
    n_cols = 2 if len(quantities) > 1 else 1
    n_rows = max(1, int(np.ceil(len(quantities) / n_cols)))
    width = max(6.0, 2.2 + 0.75 * len(column_levels)) * n_cols
    height = (1.4 + 0.45 * len(row_levels)) * n_rows + 0.4
    fig = new_figure(width, height)
    grid = fig.add_gridspec(n_rows, n_cols)
    for index, quantity in enumerate(quantities):
        ax = fig.add_subplot(grid[index // n_cols, index % n_cols])
        part = data[data["quantity"] == quantity]
        values = np.full((len(row_levels), len(column_levels)), np.nan)
        flags = np.zeros_like(values, dtype=bool)
        for row in part.itertuples(index=False):
            i = row_levels.index(getattr(row, rows_axis))
            j = column_levels.index(getattr(row, columns_axis))
            values[i, j] = row.median
            flags[i, j] = isinstance(row.flag, str) and bool(row.flag)
        ax.pcolormesh(np.arange(len(column_levels) + 1) - 0.5,
                      np.arange(len(row_levels) + 1) - 0.5,
                      np.ma.masked_invalid(values), cmap="viridis")
        ax.set_ylim(len(row_levels) - 0.5, -0.5)  # the first level on top
        for i, j in np.ndindex(values.shape):
            if np.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if values[i, j] < np.nanmean(values) else "black")
            if flags[i, j]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                       edgecolor=FLAGGED, lw=2))
        ax.set_xticks(range(len(column_levels)), [str(c) for c in column_levels],
                      rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(row_levels)), [str(r) for r in row_levels], fontsize=7)
        ax.set_xlabel(AXIS_LABELS.get(columns_axis, columns_axis), fontsize=8)
        ax.set_ylabel(AXIS_LABELS.get(rows_axis, rows_axis), fontsize=8)
        reference = (f" (main {main.loc[quantity, 'median']:.2f})"
                     if quantity in main.index else "")
        ax.set_title(f"median of {quantity}{reference}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
