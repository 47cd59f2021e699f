"""Figures of small-study effects: the funnel plot and the cumulative meta-analysis.

Drawing only: the data come from :func:`bayes_poem.frequentist.funnel_data`,
:func:`bayes_poem.frequentist.cumulative` and, for the posterior versions,
:func:`bayes_poem.bias.posterior_funnel` and :func:`bayes_poem.bias.bayes_cumulative`.
As in :mod:`bayes_poem.plots`, every function takes keyword arguments only and returns a
:class:`matplotlib.figure.Figure` on an Agg canvas (no pyplot, nothing global) in
:mod:`bayes_poem.figure_style`'s style; save it with :func:`bayes_poem.figure_style.save`
or :func:`bayes_poem.figure_style.to_png`. Proportions are drawn on percent axes with
:func:`bayes_poem.figure_style.percent_axis`.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.special import expit

from bayes_poem.bias import BayesCumulative, PosteriorFunnel
from bayes_poem.figure_style import (
    OBSERVED,
    POOLED,
    PREDICTION,
    SHRUNK,
    percent_axis,
    styled,
)
from bayes_poem.figure_style import new_figure as _figure
from bayes_poem.frequentist.bias import CumulativeResult, FunnelData
from bayes_poem.plots import ROW_HEIGHT, _title

__all__ = ["bayes_cumulative_plot", "cumulative_plot", "funnel_plot", "posterior_funnel_plot"]

_SCALE_LABELS = {"logit": "logit of the proportion", "double_arcsine": "double arcsine",
                 "proportion": "proportion"}
_YAXIS_LABELS = {"sei": "standard error", "sqrtninv": "1 / sqrt(n)"}


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 1e-9, 100 - 1e-9)
    return np.log(p / (100 - p))


@styled
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
        percent_axis(top.xaxis, 100.0)
        top.set_xlabel("proportion")
    ax.grid(color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    fig.legend(fontsize=8, frameon=False, loc="outside lower center", ncol=2)
    _title(fig, title)
    return fig


@styled
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
    percent = back_transform and frame["back_scale"].iloc[0] == "proportion"
    if percent:
        unit = "proportion"
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
    if percent:
        percent_axis(ax.xaxis)
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


@styled
def posterior_funnel_plot(*, funnel: PosteriorFunnel, title: str = "") -> Figure:
    """The posterior funnel: each row's shrunken logit (posterior median, filled) joined to
    its observed logit (open) at the frequentist funnel's vertical coordinate (SE of the
    observed logit, or 1/sqrt(n)), with the posterior pooled estimate and its
    pseudo-confidence region.

    Parameters
    ----------
    funnel : PosteriorFunnel
        From :func:`~bayes_poem.bias.posterior_funnel`.
    title : str
    """
    fig = _figure(6.4, 4.8)
    ax = fig.add_subplot()
    contours = funnel.contours
    for level, rows in sorted(contours.groupby("level"), reverse=True):
        ax.fill_betweenx(rows["y"], rows["lower"], rows["upper"], color=SHRUNK, alpha=0.12,
                         linewidth=0, label=f"{100 * level:g}% pseudo-confidence region")
        ax.plot(rows["lower"], rows["y"], color=SHRUNK, linewidth=0.6, linestyle="--")
        ax.plot(rows["upper"], rows["y"], color=SHRUNK, linewidth=0.6, linestyle="--")
    ax.axvline(funnel.reference, color=POOLED, linewidth=1.4,
               label="posterior pooled estimate (median)")
    points = funnel.points
    for row in points.itertuples(index=False):
        ax.plot([row.observed, row.shrunk], [row.y, row.y], color="#999999", linewidth=0.7,
                zorder=2)
    ax.scatter(points["observed"], points["y"], s=30, facecolor="white", edgecolor=OBSERVED,
               linewidth=1.0, zorder=3, label="observed (0.5 added to zero cells)")
    ax.scatter(points["shrunk"], points["y"], s=34, color=SHRUNK, edgecolor="white",
               linewidth=0.6, zorder=4, label="shrunken (posterior median)")
    heights = [points["y"].to_numpy(float), contours["y"].to_numpy(float)]
    y_max = float(np.nanmax(np.concatenate(heights))) if len(points) else 1.0
    ax.set_ylim(y_max * 1.04, 0.0)
    ax.set_xlabel(_SCALE_LABELS["logit"])
    ax.set_ylabel(_YAXIS_LABELS[funnel.yaxis] + " (observed)")
    top = ax.secondary_xaxis("top", functions=(lambda v: 100.0 * expit(v), _logit))
    percent_axis(top.xaxis, 100.0)
    top.set_xlabel("proportion")
    ax.grid(color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    fig.legend(fontsize=8, frameon=False, loc="outside lower center", ncol=2)
    _title(fig, title)
    return fig


@styled
def bayes_cumulative_plot(*, cumulative: BayesCumulative, subgroup: str,
                          frequentist: CumulativeResult | None = None,
                          title: str = "") -> Figure:
    """Posterior ``p_pooled`` of one subgroup after each added study (median and
    interval), first study at the top, with the frequentist cumulative estimate and CI of
    the same subgroup beside it (at the steps that added a study to the subgroup).

    Steps before the subgroup has any study are left out (their estimate is the model's
    prediction for an unobserved subgroup).

    Parameters
    ----------
    cumulative : BayesCumulative
        From :func:`~bayes_poem.bias.bayes_cumulative`.
    subgroup : str
        A label of its ``subgroup`` column.
    frequentist : CumulativeResult, optional
        From :func:`~bayes_poem.frequentist.cumulative` for the same subgroup and order.
    title : str
    """
    frame = cumulative.frame
    rows = frame[(frame["subgroup"] == subgroup) & (frame["n_studies"] > 0)]
    n = len(rows)
    fig = _figure(7.5, 1.6 + ROW_HEIGHT * 1.4 * max(n, 1))
    ax = fig.add_subplot()
    ys = np.arange(n, 0, -1, dtype=float)
    offset = 0.17 if frequentist is not None else 0.0
    median = 100 * rows["median"].to_numpy(float)
    ax.hlines(ys + offset, 100 * rows["lower"].to_numpy(float),
              100 * rows["upper"].to_numpy(float), color=SHRUNK, linewidth=1.6)
    ax.scatter(median, ys + offset, s=28, color=SHRUNK, zorder=3, marker="o")
    if n:
        ax.axvline(median[-1], color=POOLED, linewidth=0.9, linestyle="--")
    handles = [Line2D([], [], color=SHRUNK, marker="o", linewidth=1.6,
                      label=f"Bayesian p_pooled ({rows['interval'].iloc[0] if n else ''})"),
               Line2D([], [], color=POOLED, linestyle="--", label="all studies (Bayesian)")]
    if frequentist is not None:
        freq = frequentist.to_frame().set_index("study")
        position = {study: y for study, y in zip(rows["study"], ys, strict=True)}
        shown = [s for s in freq.index if s in position]
        fy = np.array([position[s] for s in shown]) - offset
        est = 100 * freq.loc[shown, "back_estimate"].to_numpy(float)
        ax.hlines(fy, 100 * freq.loc[shown, "back_ci_lower"].to_numpy(float),
                  100 * freq.loc[shown, "back_ci_upper"].to_numpy(float), color=PREDICTION,
                  linewidth=1.4)
        ax.scatter(est, fy, s=24, color=PREDICTION, zorder=3, marker="s")
        level = 100 * frequentist.steps[-1].level
        handles.append(Line2D([], [], color=PREDICTION, marker="s", linewidth=1.4,
                              label=f"frequentist ({frequentist.method}, {level:g}% CI)"))
    labels = [f"+ {row.study} ({row.order})" if cumulative.order_by != "table order"
              else f"+ {row.study}" for row in rows.itertuples(index=False)]
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_ylim(0.4, n + 0.6)
    percent_axis(ax.xaxis, 100.0)
    ax.set_xlabel("pooled proportion")
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    fig.legend(handles=handles, fontsize=8, frameon=False, loc="outside lower center", ncol=3)
    ax.set_title(f"{subgroup}: cumulative meta-analysis, ordered by {cumulative.order_by}",
                 fontsize=9)
    _title(fig, title)
    return fig
