"""Figures of small-study effects: the funnel plot and the cumulative meta-analysis.

Drawing only: the data come from :func:`bayes_poem.frequentist.funnel_data` and
:func:`bayes_poem.frequentist.cumulative`. As in :mod:`bayes_poem.plots`, every
function takes keyword arguments only and returns a
:class:`matplotlib.figure.Figure` on an Agg canvas (no pyplot, nothing global);
save it with ``fig.savefig(path)`` or :func:`bayes_poem.plots.to_png`.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.special import expit

from bayes_poem.frequentist.bias import CumulativeResult, FunnelData
from bayes_poem.plots import OBSERVED, POOLED, ROW_HEIGHT, SHRUNK, _figure, _title

__all__ = ["cumulative_plot", "funnel_plot"]

_SCALE_LABELS = {"logit": "logit of the proportion", "double_arcsine": "double arcsine",
                 "proportion": "proportion"}
_YAXIS_LABELS = {"sei": "standard error", "sqrtninv": "1 / sqrt(n)"}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-9, 100 - 1e-9)
    return np.log(p / (100 - p))


def funnel_plot(*, funnel: FunnelData, title: str = "") -> Figure:
    """Observed effect sizes against their standard error (or 1/sqrt(n)), largest
    studies at the top, with the pooled estimate and the pseudo-confidence region.

    Parameters
    ----------
    funnel : FunnelData
        From :func:`~bayes_poem.frequentist.funnel_data` (``fill=True`` adds the
        trim-and-fill studies, drawn as open markers, and moves the reference line to
        the adjusted estimate).
    title : str
    """
    fig = _figure(6.4, 4.8)
    ax = fig.add_subplot()
    contours = funnel.contours
    shades = np.linspace(0.10, 0.22, max(1, contours["level"].nunique()))
    for shade, (level, rows) in zip(shades, sorted(contours.groupby("level"), reverse=True),
                                    strict=False):
        ax.fill_betweenx(rows["y"], rows["lower"], rows["upper"], color=SHRUNK, alpha=shade,
                         linewidth=0, label=f"{100 * level:g}% pseudo-confidence region")
        ax.plot(rows["lower"], rows["y"], color=SHRUNK, linewidth=0.6, linestyle="--")
        ax.plot(rows["upper"], rows["y"], color=SHRUNK, linewidth=0.6, linestyle="--")
    label = "pooled estimate (trim and fill)" if funnel.k0 else "pooled estimate"
    ax.axvline(funnel.reference, color=POOLED, linewidth=1.4, label=label)
    points = funnel.points
    observed = points[~points["filled"].to_numpy(dtype=bool)]
    filled = points[points["filled"].to_numpy(dtype=bool)]
    ax.scatter(observed["estimate"], observed["y"], s=34, color=OBSERVED, edgecolor="white",
               linewidth=0.6, zorder=3, label="observed study")
    if not filled.empty:
        ax.scatter(filled["estimate"], filled["y"], s=34, facecolor="none",
                   edgecolor=OBSERVED, linewidth=1.2, zorder=3,
                   label=f"filled study ({len(filled)})")
    y_max = float(np.nanmax(np.concatenate([points["y"].to_numpy(float),
                                            contours["y"].to_numpy(float)])))
    ax.set_ylim(y_max * 1.04, 0.0)
    ax.set_xlabel(_SCALE_LABELS.get(funnel.scale, funnel.scale))
    ax.set_ylabel(_YAXIS_LABELS[funnel.yaxis])
    if funnel.scale == "logit":
        top = ax.secondary_xaxis("top", functions=(lambda v: 100.0 * expit(v), _logit))
        top.set_xlabel("proportion (%)")
    ax.grid(color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    fig.legend(fontsize=8, frameon=False, loc="outside lower center", ncol=2)
    _title(fig, title)
    return fig


def cumulative_plot(*, cumulative: CumulativeResult, back_transform: bool = True,
                    title: str = "") -> Figure:
    """Pooled estimate and CI after each added study, first study at the top.

    Parameters
    ----------
    cumulative : CumulativeResult
        From :func:`~bayes_poem.frequentist.cumulative`.
    back_transform : bool
        Draw on the back-transformed scale (proportion, in percent) instead of the
        analysis scale.
    title : str
    """
    frame = cumulative.to_frame()
    prefix = "back_" if back_transform else ""
    est = frame[f"{prefix}estimate"].to_numpy(float)
    lo = frame[f"{prefix}ci_lower"].to_numpy(float)
    hi = frame[f"{prefix}ci_upper"].to_numpy(float)
    if back_transform and frame["back_scale"].iloc[0] == "proportion":
        est, lo, hi, unit = 100 * est, 100 * lo, 100 * hi, "proportion (%)"
    elif back_transform:
        unit = str(frame["back_scale"].iloc[0]).replace("_", " ")
    else:
        unit = _SCALE_LABELS.get(cumulative.scale, cumulative.scale)
    n = len(frame)
    fig = _figure(7.5, 1.5 + ROW_HEIGHT * n)
    ax = fig.add_subplot()
    ys = np.arange(n, 0, -1)
    ax.hlines(ys, lo, hi, color=SHRUNK, linewidth=1.4)
    ax.scatter(est, ys, s=26, color=SHRUNK, zorder=3, marker="s")
    ax.axvline(est[-1], color=POOLED, linewidth=0.9, linestyle="--")
    labels = [f"+ {row.study} ({row.order})" if cumulative.order_by != "input order"
              else f"+ {row.study}" for row in frame.itertuples()]
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_ylim(0.4, n + 0.6)
    ax.set_xlabel(f"{unit}, {100 * cumulative.steps[-1].level:g}% CI")
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    legend = [Line2D([], [], color=SHRUNK, marker="s", linewidth=1.4,
                     label=f"pooled after each study ({cumulative.method})"),
              Line2D([], [], color=POOLED, linestyle="--", label="all studies")]
    fig.legend(handles=legend, fontsize=8, frameon=False, loc="outside lower center", ncol=2)
    ax.set_title(f"cumulative meta-analysis, ordered by {cumulative.order_by}", fontsize=9)
    _title(fig, title)
    return fig
