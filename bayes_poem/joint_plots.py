"""The joint figure of one subgroup: posterior draws of (benefit, harm) with the thresholds.

Drawing only (no statistics), keyword arguments only, an Agg-canvas
:class:`~matplotlib.figure.Figure` in :mod:`bayes_poem.figure_style`'s style.
"""

from __future__ import annotations

import textwrap

import numpy as np
from matplotlib.figure import Figure

from bayes_poem.figure_style import (
    ACCEPTABLE,
    POOLED,
    SHRUNK,
    new_figure,
    percent_axis,
    percent_label,
    styled,
)

__all__ = ["joint_figure"]

MAX_POINTS = 4000


@styled
def joint_figure(*, benefit: np.ndarray, harm: np.ndarray, benefit_min: float,
                 harm_max: float, p_both: float, subgroup: str, outcomes: tuple[str, str],
                 quantity: str, title: str = "") -> Figure:
    """Scatter of the draws of ``(benefit, harm)`` with the lines ``benefit = a``,
    ``harm = b`` and the acceptable corner shaded; ``p_both`` in the title."""
    benefit = np.asarray(benefit, dtype=float).ravel()
    harm = np.asarray(harm, dtype=float).ravel()
    step = max(1, benefit.size // MAX_POINTS)  # evenly thinned, deterministic
    fig = new_figure(5.2, 4.6)
    ax = fig.add_subplot()
    ax.scatter(benefit[::step], harm[::step], s=4, alpha=0.25, color=SHRUNK,
               linewidths=0, label=f"posterior draws ({quantity})")
    ax.axvline(benefit_min, color=POOLED, lw=1.2, ls="--")
    ax.axhline(harm_max, color=POOLED, lw=1.2, ls="--")
    ax.fill_between([benefit_min, 1.0], 0.0, harm_max, color=ACCEPTABLE, alpha=0.12,
                    label=f"{outcomes[0]} >= {percent_label(benefit_min)} and {outcomes[1]} <= "
                          f"{percent_label(harm_max)}")
    ax.set_xlim(max(0.0, min(benefit.min(), benefit_min) - 0.05), 1.0)
    ax.set_ylim(0.0, min(1.0, max(harm.max(), harm_max) + 0.05))
    percent_axis(ax.xaxis)
    percent_axis(ax.yaxis)
    ax.set_xlabel(outcomes[0])
    ax.set_ylabel(outcomes[1])
    heading = f"{subgroup}: P(both acceptable) = {p_both:.2f}"
    ax.set_title(f"{textwrap.fill(title, 70)}\n{heading}" if title else heading, fontsize=8)
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return fig
