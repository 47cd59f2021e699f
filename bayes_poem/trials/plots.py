"""Figures of the trial analyses (matplotlib). Drawing only; no computation here.

Every function takes keyword arguments only and returns a
:class:`matplotlib.figure.Figure` (created without pyplot, so no display or
global state is involved) in :mod:`bayes_poem.figure_style`'s style; save it with
:func:`bayes_poem.figure_style.save` (PNG at 300 dpi, PDF, SVG). The odds-ratio chart
of the trials (:func:`odds_ratio_plot`) is not the core forest plot of proportions
(:func:`bayes_poem.forest_plot.forest_plot`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from bayes_poem.figure_style import (
    ACCEPTABLE,
    OBSERVED,
    POOLED,
    PREDICTION,
    PRIOR,
    SHRUNK,
    new_figure,
    percent_axis,
    styled,
)

__all__ = ["assurance_curve", "difference_histogram", "odds_ratio_plot"]


@styled
def difference_histogram(*, draws: np.ndarray, margin: float, favourable: str,
                         xlabel: str, title: str = "", bins: int = 80) -> Figure:
    """Histogram of posterior draws of a difference with the non-inferiority boundary.

    ``favourable`` is ``"above"`` (non-inferior if the difference > -margin) or
    ``"below"`` (non-inferior if < +margin); the non-inferior side is shaded.
    """
    values = np.asarray(draws, dtype=float).ravel()
    fig = new_figure(6.4, 4.0)
    ax = fig.add_subplot()
    ax.hist(values, bins=bins, density=True, color=PRIOR, edgecolor="none")
    bound = -margin if favourable == "above" else margin
    ax.axvline(bound, color=POOLED, linestyle="--", label=f"margin ({bound:+g})")
    ax.axvline(0.0, color="0.2", linewidth=0.8)
    lo, hi = ax.get_xlim()
    if favourable == "above":
        ax.axvspan(bound, max(hi, bound), color=ACCEPTABLE, alpha=0.12, label="non-inferior")
    else:
        ax.axvspan(min(lo, bound), bound, color=ACCEPTABLE, alpha=0.12, label="non-inferior")
    ax.set_xlim(lo, hi)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("posterior density")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    return fig


@styled
def odds_ratio_plot(*, studies: pd.DataFrame, pooled: pd.DataFrame,
                    published: pd.DataFrame | None = None, title: str = "") -> Figure:
    """Odds ratios per trial, pooled and predictive, and published estimates (log axis).

    ``studies``: columns ``study``, ``log_or_median``, ``log_or_lower``,
    ``log_or_upper``. ``pooled``: rows with ``label``, ``median``, ``lower``,
    ``upper`` on the odds-ratio scale. ``published``: ``source``, ``measure``,
    ``published``, ``published_lower``, ``published_upper``.
    """
    rows: list[tuple[str, float, float, float, str]] = []
    for row in studies.itertuples(index=False):
        rows.append((f"{row.study} (trial OR)", float(np.exp(row.log_or_median)),
                     float(np.exp(row.log_or_lower)), float(np.exp(row.log_or_upper)),
                     OBSERVED))
    for row in pooled.itertuples(index=False):
        rows.append((str(row.label), float(row.median), float(row.lower), float(row.upper),
                     SHRUNK))
    if published is not None:
        for row in published.itertuples(index=False):
            rows.append((f"{row.source} ({row.measure}, published)", float(row.published),
                         float(row.published_lower), float(row.published_upper),
                         PREDICTION))
    fig = new_figure(7.0, 0.45 * len(rows) + 1.4)
    ax = fig.add_subplot()
    for i, (_, mid, lo, hi, colour) in enumerate(rows):
        y = len(rows) - 1 - i
        ax.plot([lo, hi], [y, y], color=colour, linewidth=2)
        ax.plot([mid], [y], "o", color=colour)
    ax.set_yticks(range(len(rows) - 1, -1, -1), [r[0] for r in rows], fontsize=8)
    ax.axvline(1.0, color="0.2", linewidth=0.8)
    ax.set_xscale("log")
    lo, hi = min(r[2] for r in rows), max(r[3] for r in rows)
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
             if lo / 1.5 <= t <= hi * 1.5]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("ratio, posterior vs anterior (log scale)")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


@styled
def assurance_curve(*, curve: pd.DataFrame, title: str = "",
                    reference: Sequence[float] = ()) -> Figure:
    """Assurance against patients per arm: simulation with its Monte Carlo interval
    (columns ``n_per_arm``, ``assurance``, ``lower``, ``upper``) and the normal
    approximation (``normal_approximation``). ``reference`` adds horizontal lines."""
    fig = new_figure(6.4, 4.0)
    ax = fig.add_subplot()
    n = curve["n_per_arm"].to_numpy(float)
    ax.fill_between(n, curve["lower"], curve["upper"], color=SHRUNK, alpha=0.2,
                    label="95% Monte Carlo interval")
    ax.plot(n, curve["assurance"], "o-", color=SHRUNK, label="assurance (simulation)")
    if "normal_approximation" in curve:
        ax.plot(n, curve["normal_approximation"], "--", color=PREDICTION,
                label="normal approximation")
    for level in reference:
        ax.axhline(level, color="0.5", linewidth=0.8, linestyle=":")
    ax.set_ylim(0.0, 1.0)
    percent_axis(ax.yaxis)
    ax.set_xlabel("patients per arm (N)")
    ax.set_ylabel("probability of demonstrating non-inferiority")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    return fig
