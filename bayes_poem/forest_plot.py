"""The forest plot, to a journal's conventions (drawing only).

:func:`forest_plot` draws a :func:`bayes_poem.forest_data.forest_table` in three
panels sharing one row per line: labels on the left (subgroup headers in bold,
studies indented), the estimates in the middle on a percent axis, and text
columns on the right (events/patients, observed proportion, posterior median
[interval]). Per study: the observed proportion as a grey square whose **area is
proportional to the patients** with its exact interval, and the shrunken estimate
(blue) with its credible interval at the same probability. Per subgroup: the
pooled ``p_pooled`` as a diamond, the prediction interval of ``p_new`` as an orange
band on the row below, and a dotted reference line at the pooled median over the
subgroup's studies.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon

from bayes_poem.figure_style import (
    GRID,
    OBSERVED,
    POOLED,
    PREDICTION,
    SHRUNK,
    new_figure,
    percent_axis,
    styled,
)

__all__ = ["forest_plot"]

ROW = 0.2  # inches per line
MAX_MARKER_AREA = 90.0  # points^2 of the largest study's square
TEXT_HEADERS = ("Events/N", "Observed")


def _limits(table: pd.DataFrame) -> tuple[float, float]:
    """x limits covering every interval, rounded out to tenths, within [0, 1]."""
    values = table[["obs_lower", "obs_upper", "lower", "upper"]].to_numpy(float).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low = max(0.0, np.floor(values.min() * 10) / 10)
    high = min(1.0, np.ceil(values.max() * 10) / 10)
    if high - low < 0.2:
        low, high = max(0.0, low - 0.1), min(1.0, high + 0.1)
    return low, high


@styled
def forest_plot(*, table: pd.DataFrame, xlabel: str = "proportion of patients",
                title: str = "", observed_label: str | None = None) -> Figure:
    """Forest plot of a :func:`~bayes_poem.forest_data.forest_table`.

    Parameters
    ----------
    table : DataFrame
        The rows to draw, top to bottom (``kind``: ``header``, ``study``, ``pooled``,
        ``prediction``), with the columns of ``forest_data.COLUMNS``.
    xlabel : str
        Label of the percent axis (e.g. the outcome's display name).
    title : str
    observed_label : str, optional
        Legend entry of the observed intervals (default: exact Clopper-Pearson
        interval at the table's interval probability).
    """
    n = len(table)
    interval = str(table["interval"].dropna().iloc[0]) if table["interval"].notna().any() \
        else "interval"
    prob_text = interval.split()[0] if interval[:1].isdigit() else ""
    label_chars = max([len(str(v)) + 2 for v in table["label"].fillna("")] + [12])
    years = table["year"].notna().any()
    left = min(2.8, 0.2 + 0.065 * label_chars) + (0.45 if years else 0.0)
    right = 3.1
    # right-hand columns, right-aligned at these distances (inches) from the panel's left
    columns = np.array([0.62, 1.38, 3.05]) / right
    fig = new_figure(left + 3.2 + right, 1.3 + ROW * (n + 1.5))
    grid = fig.add_gridspec(1, 3, width_ratios=[left, 3.2, right], wspace=0.0)
    ax_left = fig.add_subplot(grid[0])
    ax = fig.add_subplot(grid[1], sharey=ax_left)
    ax_right = fig.add_subplot(grid[2], sharey=ax_left)
    ys = np.arange(n, 0, -1, dtype=float)
    top = n + 1.0
    # the study markers' area: proportional to the patients, the largest MAX_MARKER_AREA
    studies = table["kind"] == "study"
    biggest = float(table.loc[studies, "total"].max()) if studies.any() else 1.0

    block_start: float | None = None
    for y, row in zip(ys, table.itertuples(index=False), strict=True):
        kind = row.kind
        indent = 0.0 if kind == "header" else 0.06
        ax_left.text(indent, y, str(row.label), ha="left", va="center",
                     fontweight="bold" if kind in ("header",) else "normal",
                     fontstyle="italic" if kind == "prediction" else "normal",
                     transform=ax_left.get_yaxis_transform())
        if kind == "study" and years and pd.notna(row.year):
            ax_left.text(1.0 - 0.08 / left, y, str(row.year), ha="right", va="center",
                         transform=ax_left.get_yaxis_transform())
        if kind == "header":
            block_start = y - 0.5
            continue
        for x, text in zip(columns, (row.text_events, row.text_observed,
                                                row.text_estimate), strict=True):
            if isinstance(text, str) and text:
                ax_right.text(x, y, text, ha="right", va="center",
                              fontweight="bold" if kind == "pooled" else "normal",
                              transform=ax_right.get_yaxis_transform())
        if kind == "study":
            ax.plot([row.obs_lower, row.obs_upper], [y + 0.17] * 2, color=OBSERVED, lw=0.9)
            ax.scatter([row.observed], [y + 0.17], marker="s", color=OBSERVED, zorder=3,
                       s=MAX_MARKER_AREA * float(row.total) / biggest, linewidths=0)
            ax.plot([row.lower, row.upper], [y - 0.17] * 2, color=SHRUNK, lw=1.4)
            ax.plot([row.median], [y - 0.17], "o", color=SHRUNK, ms=3.2, zorder=3)
        elif kind == "pooled":
            ax.add_patch(Polygon([(row.lower, y), (row.median, y + 0.34), (row.upper, y),
                                  (row.median, y - 0.34)], closed=True, color=POOLED,
                                 zorder=3))
            if block_start is not None and block_start > y + 0.5:
                ax.plot([row.median] * 2, [y + 0.5, block_start], color=POOLED, lw=0.8,
                        ls=":", zorder=1)
            block_start = None
        elif kind == "prediction":
            ax.plot([row.lower, row.upper], [y, y], color=PREDICTION, lw=4.5, alpha=0.55,
                    solid_capstyle="butt")
            ax.plot([row.median], [y], "|", color=PREDICTION, ms=7, mew=1.2)
    headers = (*TEXT_HEADERS, f"Posterior median\n[{interval}]")
    for x, text in zip(columns, headers, strict=True):
        ax_right.text(x, top - 0.3, text, ha="right", va="bottom", fontweight="bold",
                      transform=ax_right.get_yaxis_transform())
    ax_left.text(0.0, top - 0.3, "Study", ha="left", va="bottom", fontweight="bold",
                 transform=ax_left.get_yaxis_transform())
    if years:
        ax_left.text(1.0 - 0.08 / left, top - 0.3, "Year", ha="right", va="bottom",
                     fontweight="bold", transform=ax_left.get_yaxis_transform())
    ax.set_ylim(0.4, top + 1.0)
    low, high = _limits(table)
    pad = 0.015 * (high - low)  # room for the markers at 0% and 100%
    ax.set_xlim(low - pad, high + pad)
    percent_axis(ax.xaxis)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", color=GRID, linewidth=0.5)
    ax.set_axisbelow(True)
    ax.tick_params(axis="y", left=False, labelleft=False)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    for side_ax in (ax_left, ax_right):
        side_ax.set_axis_off()
    for panel in (ax_left, ax, ax_right):  # the rule under the column headers
        panel.axhline(top - 0.5, xmin=-0.05, xmax=1.05, color="black", lw=0.6,
                      clip_on=False)
    handles = [
        Line2D([], [], color=OBSERVED, marker="s", lw=0.9, ms=5,
               label=observed_label or f"observed, exact {prob_text} CI (Clopper-Pearson); "
                                       "area proportional to sample size"),
        Line2D([], [], color=SHRUNK, marker="o", ms=3.2, lw=1.4,
               label=f"shrunken study estimate, {interval}"),
        Patch(color=POOLED, label=f"pooled, median study (p_pooled), {interval}"),
        Patch(color=PREDICTION, alpha=0.55,
              label=f"prediction interval for a new study (p_new), {interval}"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    if title:
        fig.suptitle(title, fontweight="bold")
    return fig
