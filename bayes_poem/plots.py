"""Figures of the report (matplotlib, Agg canvas; drawing only, no statistics).

Every function takes keyword arguments only, takes data that are already
computed (DataFrames and arrays from :mod:`bayes_poem.predictive`,
:mod:`bayes_poem.loo` and :class:`~bayes_poem.results.FitResult`), and returns a
:class:`matplotlib.figure.Figure` attached to an Agg canvas. pyplot is not used,
so nothing global is touched and no figure needs closing. The style (palette,
fonts, 300 dpi, percent axes) is :mod:`bayes_poem.figure_style`'s; save with
:func:`bayes_poem.figure_style.save` (PNG, PDF, SVG) or :func:`to_png`. The forest
plot is :func:`bayes_poem.forest_plot.forest_plot` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from scipy import stats

from bayes_poem.figure_style import (
    FLAGGED,
    OBSERVED,
    PALETTE,
    POOLED,
    PREDICTION,
    SHRUNK,
    percent_axis,
    styled,
    to_png,
)
from bayes_poem.figure_style import PRIOR as PRIOR_COLOUR
from bayes_poem.figure_style import new_figure as _figure
from bayes_poem.forest_plot import forest_plot

__all__ = ["bubble_plot", "contrast_density_plot", "forest_plot", "loo_pit_plot", "new_centre_plot",
           "pareto_k_plot", "ppc_plot", "ppc_statistics_plot", "prior_posterior_plot",
           "prior_predictive_plot", "sensitivity_forest", "to_png"]

ROW_HEIGHT = 0.26


def _percent_axis(ax, lower: float = -0.02, upper: float = 1.02) -> None:
    ax.set_xlim(lower, upper)
    percent_axis(ax.xaxis)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


def _rate_limits(*columns: object) -> tuple[float, float]:
    """x limits covering the values, rounded out to tenths, within [0, 1] (plus a margin)."""
    values = np.concatenate([np.ravel(np.asarray(c, dtype=float)) for c in columns])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return -0.02, 1.02
    low = max(0.0, np.floor(values.min() * 10) / 10)
    high = min(1.0, np.ceil(values.max() * 10) / 10)
    if high - low < 0.2:
        low, high = max(0.0, low - 0.1), min(1.0, high + 0.1)
    pad = 0.02 * (high - low)
    return low - pad, high + pad


def _title(fig: Figure, title: str) -> None:
    if title:
        fig.suptitle(title, fontsize=11, fontweight="bold")


# ---------------------------------------------------------------------- contrasts
@styled
def contrast_density_plot(*, draws: Mapping[str, np.ndarray], margins: Mapping[str, float],
                          title: str = "", xlabel: str = "difference of rates (a - b)"
                          ) -> Figure:
    """Posterior density of each contrast with 0 and the decision margin marked.

    ``draws`` maps a contrast label to its draws (difference scale); ``margins``
    maps the same labels to the margin (the area above it is shaded and
    ``P(> margin)`` printed).
    """
    names = list(draws)
    fig = _figure(8.0, 0.6 + 2.0 * max(len(names), 1))
    if not names:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no contrasts", ha="center", va="center")
        ax.set_axis_off()
        return fig
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    everything = np.concatenate([np.ravel(draws[k]) for k in names])
    lo, hi = np.quantile(everything, [0.001, 0.999])
    margin_values = [margins.get(k, 0.0) for k in names]
    lo, hi = min(lo, 0.0, *margin_values), max(hi, 0.0, *margin_values)
    pad = 0.05 * (hi - lo)
    grid = np.linspace(lo - pad, hi + pad, 400)
    for ax, name in zip(axes, names, strict=True):
        values = np.ravel(draws[name])
        margin = float(margins.get(name, 0.0))
        density = stats.gaussian_kde(values)(grid)
        ax.plot(grid, density, color=SHRUNK, lw=1.5)
        above = grid >= margin
        ax.fill_between(grid[above], density[above], color=SHRUNK, alpha=0.25, lw=0)
        ax.axvline(0.0, color="#7f7f7f", ls="--", lw=1)
        ax.axvline(margin, color=POOLED, lw=1.5)
        p_null = float(np.mean(values > 0.0))
        p_margin = float(np.mean(values > margin))
        text = f"P(> 0) = {p_null:.3f}"
        if margin != 0.0:
            text += f"\nP(> margin {100 * margin:g} pts) = {p_margin:.3f}"
        ax.text(0.99, 0.92, text, transform=ax.transAxes, ha="right", va="top", fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "#cccccc", "boxstyle": "round"})
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_yticks([])
        percent_axis(ax.xaxis)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    axes[-1].set_xlabel(xlabel)
    handles = [Line2D([], [], color="#7f7f7f", ls="--", label="no difference"),
               Line2D([], [], color=POOLED, label="decision margin"),
               Patch(color=SHRUNK, alpha=0.25, label="beyond the margin")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    _title(fig, title)
    return fig


# ---------------------------------------------------------------------- predictive checks
@styled
def ppc_plot(*, rows: pd.DataFrame, title: str = "") -> Figure:
    """Observed rate of each row against its replicated-count interval (as a rate).

    ``rows`` is :attr:`PosteriorPredictive.rows` (``study``, ``subgroup``,
    ``events``, ``total``, ``observed``, ``rep_lower``, ``rep_median``,
    ``rep_upper``, ``interval``, ``ppp``, ``flag``); flagged rows are drawn in red.
    """
    n = len(rows)
    fig = _figure(8.5, 1.5 + ROW_HEIGHT * n)
    ax = fig.add_subplot()
    ys = np.arange(n, 0, -1)
    for y, row in zip(ys, rows.itertuples(index=False), strict=True):
        colour = FLAGGED if row.flag else SHRUNK
        ax.plot([row.rep_lower / row.total, row.rep_upper / row.total], [y, y], color=colour,
                lw=5, alpha=0.35, solid_capstyle="butt")
        ax.plot(row.rep_median / row.total, y, "|", color=colour, ms=9, mew=1.5)
        ax.plot(row.observed, y, "o", color=FLAGGED if row.flag else OBSERVED, ms=5)
        ax.text(1.01, y, f"{row.ppp:.3f}", transform=ax.get_yaxis_transform(), va="center",
                fontsize=7.5, color=FLAGGED if row.flag else "black")
    ax.text(1.01, n + 0.8, "ppp", transform=ax.get_yaxis_transform(), fontsize=8,
            fontweight="bold")
    several = rows["subgroup"].nunique() > 1
    labels = [f"{r.study}{' | ' + str(r.subgroup) if several else ''}  {r.events}/{r.total}"
              for r in rows.itertuples(index=False)]
    ax.set_yticks(ys, labels, fontsize=7.5)
    ax.set_ylim(0.3, n + 0.7)
    _percent_axis(ax, *_rate_limits(rows["observed"], rows["rep_lower"] / rows["total"],
                                    rows["rep_upper"] / rows["total"]))
    ax.set_xlabel("rate (replicated count / total)")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    interval = rows["interval"].iloc[0] if n else ""
    handles = [Line2D([], [], color=OBSERVED, marker="o", ls="", label="observed"),
               Line2D([], [], color=SHRUNK, lw=5, alpha=0.35,
                      label=f"replicated, {interval} (| median)"),
               Line2D([], [], color=FLAGGED, marker="o", ls="",
                      label="flagged: ppp < 0.025 or > 0.975")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    _title(fig, title)
    return fig


@styled
def ppc_statistics_plot(*, statistics: pd.DataFrame, draws: Mapping[str, np.ndarray],
                        title: str = "") -> Figure:
    """Histogram of each test statistic over replicated data with the observed value."""
    names = statistics["statistic"].tolist()
    fig = _figure(9.0, 2.9)
    axes = fig.subplots(1, max(len(names), 1), squeeze=False)[0]
    for ax, row in zip(axes, statistics.itertuples(index=False), strict=False):
        values = np.ravel(draws[row.statistic])
        levels, counts = np.unique(np.round(values, 10), return_counts=True)
        if levels.size <= 40:  # discrete: one bar per value
            width = 0.8 * (np.min(np.diff(levels)) if levels.size > 1 else 0.02)
            ax.bar(levels, counts / values.size, width=min(width, 0.02), color=SHRUNK,
                   alpha=0.55)
        else:
            ax.hist(values, bins=30, color=SHRUNK, alpha=0.55)
        ax.axvline(row.observed, color=POOLED, lw=2)
        low = min(float(levels[0]), row.observed)
        high = max(float(levels[-1]), row.observed)
        pad = max(0.05, 0.08 * (high - low))
        ax.set_xlim(max(-0.02, low - pad), min(1.02, high + pad))
        ax.set_title(f"{row.description}\nppp = {row.ppp:.3f}", fontsize=8.5)
        ax.set_yticks([])
        percent_axis(ax.xaxis)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    handles = [Patch(color=SHRUNK, alpha=0.55, label="T(replicated data)"),
               Line2D([], [], color=POOLED, lw=2, label="T(observed data)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    _title(fig, title)
    return fig


@styled
def prior_predictive_plot(*, rates: Mapping[str, np.ndarray],
                          difference: np.ndarray | None = None, label: str = "",
                          difference_label: str = "", title: str = "") -> Figure:
    """Prior distribution of the rates and, optionally, of a difference of rates.

    ``rates`` maps ``"p_pooled"`` and ``"p_study"`` to prior draws for one
    subgroup (``label``); ``difference`` holds prior draws of a difference of two
    subgroups' median-study rates (``difference_label``).
    """
    panels = 2 if difference is not None else 1
    fig = _figure(4.2 * panels + 0.6, 3.3)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    bins = np.linspace(0.0, 1.0, 26)
    ax = axes[0]
    ax.hist(rates["p_study"], bins=bins, color=PREDICTION, alpha=0.5, density=True,
            label="rate of a new study")
    ax.hist(rates["p_pooled"], bins=bins, histtype="step", color=POOLED, lw=1.8, density=True,
            label="median-study rate")
    ax.set_title(f"rate{' (' + label + ')' if label else ''}", fontsize=9)
    _percent_axis(ax)
    if difference is not None:
        ax = axes[1]
        ax.hist(difference, bins=np.linspace(-1.0, 1.0, 41), color=SHRUNK, alpha=0.55,
                density=True)
        ax.axvline(0.0, color="#7f7f7f", ls="--", lw=1)
        ax.set_title(f"difference of median-study rates ({difference_label})", fontsize=9)
        ax.set_xlim(-1.02, 1.02)
        percent_axis(ax.xaxis)
    for ax in axes:
        ax.set_yticks([])
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    handles = [Patch(color=PREDICTION, alpha=0.5, label="rate of a new study"),
               Line2D([], [], color=POOLED, lw=1.8, label="median-study rate")]
    if difference is not None:
        handles.append(Patch(color=SHRUNK, alpha=0.55, label="difference of two subgroups"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8,
               frameon=False)
    _title(fig, title)
    return fig



def _density(draws: np.ndarray, grid: np.ndarray, positive: bool) -> np.ndarray:
    """Gaussian kernel density of ``draws`` on ``grid``; reflected at 0 when ``positive``."""
    kde = stats.gaussian_kde(draws)
    return kde(grid) + (kde(-grid) if positive else 0.0)


@styled
def prior_posterior_plot(*, prior: Mapping[str, np.ndarray], posterior: Mapping[str, np.ndarray],
                         positive: frozenset[str] | set[str] = frozenset(),
                         title: str = "") -> Figure:
    """Prior and posterior densities of each parameter, one panel per parameter.

    ``prior`` and ``posterior`` map a parameter label (``"mu"``, ``"tau"``,
    ``"beta[scq]"``, ...) to its draws (any shape, flattened); a label in
    ``positive`` has its densities reflected at 0 (a scale parameter). The x range
    covers the posterior's central 99.8% and the prior's central 98%, so a wide
    prior shows as a nearly flat line under a narrow posterior.
    """
    names = [n for n in posterior if n in prior]
    ncols = min(3, len(names)) or 1
    nrows = max(1, -(-len(names) // ncols))
    fig = _figure(3.3 * ncols + 0.4, 2.5 * nrows + 0.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax, name in zip(axes, names, strict=False):
        post = np.ravel(np.asarray(posterior[name], dtype=float))
        pri = np.ravel(np.asarray(prior[name], dtype=float))
        is_positive = name.split("[")[0] in positive or name in positive
        lower = min(np.quantile(post, 0.001), np.quantile(pri, 0.01))
        upper = max(np.quantile(post, 0.999), np.quantile(pri, 0.99))
        if is_positive:
            lower = 0.0
        grid = np.linspace(lower, upper, 300)
        ax.fill_between(grid, _density(post, grid, is_positive), color=SHRUNK, alpha=0.35,
                        lw=0)
        ax.plot(grid, _density(post, grid, is_positive), color=SHRUNK, lw=1.4)
        ax.plot(grid, _density(pri, grid, is_positive), color=PRIOR_COLOUR, lw=1.4, ls="--")
        ax.set_title(name, fontsize=9)
        ax.set_xlim(lower, upper)
        ax.set_yticks([])
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    handles = [Patch(color=SHRUNK, alpha=0.35, label="posterior"),
               Line2D([], [], color=PRIOR_COLOUR, lw=1.4, ls="--", label="prior")]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    _title(fig, title)
    return fig


# ---------------------------------------------------------------------- LOO
@styled
def loo_pit_plot(*, pit: np.ndarray, prob: float = 0.95, title: str = "") -> Figure:
    """Sorted LOO-PIT values against uniform quantiles with pointwise bands."""
    values = np.sort(np.asarray(pit, dtype=float))
    n = values.size
    fig = _figure(4.4, 4.3)
    ax = fig.add_subplot()
    i = np.arange(1, n + 1)
    expected = i / (n + 1)
    tail = (1 - prob) / 2
    lower = stats.beta.ppf(tail, i, n + 1 - i)
    upper = stats.beta.ppf(1 - tail, i, n + 1 - i)
    ax.fill_between(expected, lower, upper, color="#cccccc", alpha=0.6, lw=0,
                    label=f"{100 * prob:g}% band of uniform order statistics")
    ax.plot([0, 1], [0, 1], color="#7f7f7f", ls="--", lw=1)
    outside = (values < lower) | (values > upper)
    ax.plot(expected[~outside], values[~outside], "o", color=SHRUNK, ms=4,
            label="study (mid-PIT of its total)")
    if outside.any():
        ax.plot(expected[outside], values[outside], "o", color=FLAGGED, ms=5,
                label="outside the band")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("uniform quantile")
    ax.set_ylabel("LOO-PIT")
    ax.set_aspect("equal")
    ax.legend(fontsize=7.5, loc="upper left", frameon=False)
    _title(fig, title)
    return fig


@styled
def pareto_k_plot(*, table: pd.DataFrame, threshold: float = 0.7, title: str = "") -> Figure:
    """Pareto k per study, with 0.5 and the refit threshold marked.

    ``table`` is :attr:`LooResult.table` (``study``, ``pareto_k``, ``method``).
    """
    n = len(table)
    fig = _figure(max(5.0, min(12.0, 2.5 + 0.28 * n)), 3.6)
    ax = fig.add_subplot()
    x = np.arange(n)
    k = table["pareto_k"].to_numpy(dtype=float)
    refit = (table["method"] == "refit").to_numpy()
    high = k > threshold
    ax.plot(x[~high], k[~high], "o", color=SHRUNK, ms=5, label="PSIS reliable")
    if high.any():
        ax.plot(x[high & ~refit], k[high & ~refit], "x", color=FLAGGED, ms=7, mew=2,
                label=f"k > {threshold:g}, not refitted")
        ax.plot(x[high & refit], k[high & refit], "D", color=PREDICTION, ms=6,
                label=f"k > {threshold:g}: exact refit used")
    ax.axhline(0.5, color="#aaaaaa", ls=":", lw=1)
    ax.axhline(threshold, color=FLAGGED, ls="--", lw=1)
    ax.set_ylabel("Pareto k")
    ax.set_ylim(min(-0.1, float(np.nanmin(k)) - 0.05), max(1.0, float(np.nanmax(k)) + 0.1))
    if n <= 40:
        ax.set_xticks(x, table["study"].tolist(), rotation=60, ha="right", fontsize=7.5)
    else:
        ax.set_xlabel("study (in data order)")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=7.5, frameon=False, loc="upper right")
    _title(fig, title)
    return fig


# ---------------------------------------------------------------------- predictions
@styled
def new_centre_plot(*, pmf: pd.DataFrame, n: int, title: str = "") -> Figure:
    """Predictive distribution of the number of events among ``n`` patients.

    ``pmf`` has a ``count`` column and one column of probabilities per subgroup.
    """
    labels = [c for c in pmf.columns if c != "count"]
    fig = _figure(8.0, 3.4)
    ax = fig.add_subplot()
    k = pmf["count"].to_numpy()
    for colour, label in zip(PALETTE * 4, labels, strict=False):
        ax.step(k, pmf[label].to_numpy(), where="mid", color=colour, lw=1.6, label=label)
    ax.set_xlim(-0.5, n + 0.5)
    ax.set_xlabel(f"events among {n} patients at a new centre")
    ax.set_ylabel("predictive probability")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=8, frameon=False, ncols=min(len(labels), 5), loc="upper left")
    ax.grid(axis="x", color="#eeeeee")
    _title(fig, title)
    return fig


# ---------------------------------------------------------------------- sensitivity
@styled
def sensitivity_forest(*, frame: pd.DataFrame, title: str = "",
                       reference: str = "main") -> Figure:
    """Median and interval of every quantity under every variant (``sensitivity.csv``).

    Uses the columns ``variant``, ``quantity``, ``median``, ``lower``, ``upper``
    and, when present, ``kind`` (probabilities and contrasts get a percent axis),
    ``status`` (failed rows are skipped) and ``flag`` (non-empty: drawn in red).
    ``reference`` (the main analysis) is drawn in black with a vertical line.

    Panels are laid out two to a row, each row's left panel labelled with the
    variants. The labels are text beside the panel, not tick labels: a tick is an
    artist of five parts, and building and laying out a tick per variant and panel
    took more time than drawing the figure's lines.
    """
    data = frame.copy()
    if "status" in data:
        data = data[data["status"].fillna("") != "failed"]
    data = data.dropna(subset=["median"])
    quantities = list(dict.fromkeys(data["quantity"]))
    variants = list(dict.fromkeys(data["variant"]))
    if not quantities:
        fig = _figure(6.0, 1.5)
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no sensitivity results to draw", ha="center", va="center")
        ax.set_axis_off()
        return fig
    n_cols = 2 if len(quantities) > 1 else 1
    n_rows = int(np.ceil(len(quantities) / n_cols))
    panel_height = 0.6 + 0.2 * len(variants)
    fig = _figure(11.0 if n_cols == 2 else 7.0, 0.8 + panel_height * n_rows)
    grid = fig.add_gridspec(n_rows, n_cols)
    ys = np.arange(len(variants), 0, -1)
    position = {variant: i for i, variant in enumerate(variants)}
    for index, quantity in enumerate(quantities):
        ax = fig.add_subplot(grid[index // n_cols, index % n_cols])
        part = data[data["quantity"] == quantity].drop_duplicates("variant")
        y = ys[part["variant"].map(position).to_numpy()]
        flagged = (part["flag"].map(lambda f: isinstance(f, str) and bool(f)).to_numpy()
                   if "flag" in part else np.zeros(len(part), dtype=bool))
        is_reference = (part["variant"] == reference).to_numpy()
        colours = np.where(is_reference, "black", np.where(flagged, FLAGGED, SHRUNK))
        for colour in dict.fromkeys(colours):  # one collection and one marker line per colour
            rows = colours == colour
            ax.hlines(y[rows], part["lower"].to_numpy()[rows], part["upper"].to_numpy()[rows],
                      color=colour, lw=1.4, capstyle="projecting")
            ax.plot(part["median"].to_numpy()[rows], y[rows], "o", color=colour, ms=3.5)
        if is_reference.any():
            ax.axvline(part["median"].to_numpy()[is_reference][0], color="#999999", lw=0.8,
                       ls=":")
        kind = str(part["kind"].iloc[0]) if "kind" in part else ""
        if kind in ("probability", "contrast"):
            percent_axis(ax.xaxis)
        if kind == "contrast":
            ax.axvline(0.0, color="#7f7f7f", ls="--", lw=0.8)
        ax.set_title(quantity, fontsize=8.5, loc="left")
        ax.set_ylim(0.3, len(variants) + 0.7)
        ax.set_yticks([])
        if index % n_cols == 0:  # x in axes fraction, y in data
            beside = ax.get_yaxis_transform()
            for y_label, variant in zip(ys, variants, strict=True):
                ax.text(-0.02, y_label, variant, transform=beside, ha="right", va="center",
                        fontsize=7)
        ax.grid(axis="x", color="#eeeeee")
        ax.tick_params(axis="x", labelsize=7.5)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    handles = [Line2D([], [], color="black", marker="o", label=reference),
               Line2D([], [], color=SHRUNK, marker="o", label="variant"),
               Line2D([], [], color=FLAGGED, marker="o", label="variant, conclusion flagged")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    _title(fig, title)
    return fig


# ---------------------------------------------------------------------- meta-regression
@styled
def bubble_plot(*, points: pd.DataFrame, curve: pd.DataFrame, moderator: str,
                interval_label: str, title: str = "") -> Figure:
    """Observed logits against a moderator, with the posterior regression line.

    Parameters
    ----------
    points : DataFrame
        One row per observed cell: ``value`` (the moderator, raw units),
        ``logit`` (the observed logit, 0.5 added to zero cells), ``total``
        (patients: the point's area) and optionally ``subgroup`` (colour).
    curve : DataFrame
        ``value``, ``median``, ``lower``, ``upper`` on the logit scale: the
        linear predictor at the reference values of every other term.
    moderator : str
        The axis label.
    interval_label : str
        Label of the band, e.g. ``"95% ETI"``.
    """
    fig = _figure(6.4, 4.4)
    ax = fig.add_subplot()
    ax.fill_between(curve["value"], curve["lower"], curve["upper"], color=SHRUNK, alpha=0.18,
                    linewidth=0, label=f"{interval_label} (posterior)")
    ax.plot(curve["value"], curve["median"], color=SHRUNK, linewidth=1.8,
            label="posterior median")
    area = 12.0 + 300.0 * np.asarray(points["total"], float) / float(np.max(points["total"]))
    groups = (list(dict.fromkeys(points["subgroup"])) if "subgroup" in points
              else [None])
    for k, group in enumerate(groups):
        rows = points if group is None else points[points["subgroup"] == group]
        sizes = area if group is None else area[(points["subgroup"] == group).to_numpy()]
        ax.scatter(rows["value"], rows["logit"], s=sizes, alpha=0.55,
                   color=OBSERVED if group is None else PALETTE[k % len(PALETTE)],
                   edgecolor="white", linewidth=0.6,
                   label="observed (area: patients)" if group is None else str(group))
    ax.set_xlabel(moderator)
    values = np.asarray(points["value"], float)
    if np.all(values == np.round(values)):  # years, counts: no ticks at 2012.5
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("logit of the proportion")
    secondary = ax.secondary_yaxis(
        "right", functions=(lambda v: 100.0 / (1.0 + np.exp(-v)),
                            lambda p: np.log(np.clip(p, 1e-9, 100 - 1e-9)
                                             / (100 - np.clip(p, 1e-9, 100 - 1e-9)))))
    percent_axis(secondary.yaxis, 100.0)
    secondary.set_ylabel("proportion")
    ax.grid(color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    legend = ax.legend(fontsize=8, frameon=False, loc="best")
    for handle in legend.legend_handles:  # one marker size in the legend, not the first point's
        if hasattr(handle, "set_sizes"):
            handle.set_sizes([40.0])
    _title(fig, title)
    return fig
