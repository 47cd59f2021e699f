"""The small-study-effects analysis of a fit: both halves, their tables, text and figures.

Used by ``bayes-poem bias`` and by the report's "Small-study effects" section: the
frequentist tests of :mod:`bayes_poem.frequentist.bias` per subgroup of the data (Egger's
regression test with the predictors ``sei``, ``sqrtninv`` and ``ninv``, Begg's rank test,
trim and fill, the cumulative meta-analysis, the funnel with the filled studies) and the
Bayesian half of :mod:`bayes_poem.bias` (the precision model, the cumulative posteriors,
the posterior funnels). A frequentist analysis a subgroup has too few studies for (the
tests need 3) is a row with its reason in ``note``, never an error.

:func:`check_bias` runs every check that needs only the data (the precision column, the
ordering column), so the CLI reports bad input before any sampling.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_poem.bias import (
    PRECISION_LABELS,
    BayesCumulative,
    BiasOptions,
    PosteriorFunnel,
    PrecisionResult,
    bayes_cumulative,
    posterior_funnel,
    precision_model,
    study_order,
    with_precision,
)
from bayes_poem.errors import DataError
from bayes_poem.frequentist.bias import (
    RANKTEST_COLUMNS,
    REGTEST_COLUMNS,
    TRIMFILL_COLUMNS,
    CumulativeResult,
    FunnelData,
    cumulative,
    funnel_data,
    ranktest,
    regtest,
    trimfill,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bayes_poem.results import FitResult
    from bayes_poem.spec import ModelSpec

#: Egger's test (SE), its sample-size versions (1/sqrt(n), 1/n)
REGTEST_PREDICTORS = ("sei", "sqrtninv", "ninv")


@dataclass(frozen=True)
class BiasAnalysis:
    """Everything ``bayes-poem bias`` writes (tables are DataFrames, see docs/cli.md)."""

    options: BiasOptions
    order_by: str
    precision: PrecisionResult
    cumulative: BayesCumulative
    regtest: pd.DataFrame = field(repr=False)
    ranktest: pd.DataFrame = field(repr=False)
    trimfill: pd.DataFrame = field(repr=False)
    freq_cumulative: dict[str, CumulativeResult] = field(repr=False)
    funnels: dict[str, FunnelData] = field(repr=False)
    posterior_funnels: dict[str, PosteriorFunnel] = field(repr=False)

    def cumulative_frequentist(self) -> pd.DataFrame:
        frames = [r.to_frame() for r in self.freq_cumulative.values()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def cumulative_table(self) -> pd.DataFrame:
        return self.cumulative.to_frame()

    def precision_table(self) -> pd.DataFrame:
        return self.precision.to_frame()


def check_bias(spec: ModelSpec, options: BiasOptions) -> None:
    """The data-only checks (``DataError``/``SpecError``): the precision column can be
    derived and varies, and the ordering column exists with one value per study."""
    with_precision(spec, options.precision, options.slope)
    study_order(spec, options.order, options.decreasing)


def _skipped(columns: tuple[str, ...], label: str, err: Exception, **extra: Any) -> dict:
    row = dict.fromkeys(columns, np.nan)
    row.update(label=label, note=f"not computed: {err}", **extra)
    return row


def frequentist_tables(spec: ModelSpec, options: BiasOptions, order_by: str
                       ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame,
                                  dict[str, CumulativeResult], dict[str, FunnelData]]:
    """Per subgroup of the data: regtest, ranktest, trimfill rows, cumulative results and
    funnel data (with trim and fill when it can be computed)."""
    table = spec.table
    reg, rank, fill = [], [], []
    cumul: dict[str, CumulativeResult] = {}
    funnels: dict[str, FunnelData] = {}
    order = None if order_by == "table order" else order_by
    common = {"outcome": spec.outcome}
    for d in spec.subgroups:
        for predictor in REGTEST_PREDICTORS:
            try:
                reg.append(regtest(table, subgroup=d, predictor=predictor,
                                   method=options.method, **common).to_frame().iloc[0].to_dict())
            except DataError as err:
                reg.append(_skipped(REGTEST_COLUMNS, d, err, predictor=predictor,
                                    model="rma", method=options.method))
        try:
            rank.append(ranktest(table, subgroup=d, **common).to_frame().iloc[0].to_dict())
        except DataError as err:
            rank.append(_skipped(RANKTEST_COLUMNS, d, err))
        try:
            fill.extend(trimfill(table, subgroup=d, method=options.method,
                                 **common).to_frame().to_dict("records"))
        except DataError as err:
            fill.append(_skipped(TRIMFILL_COLUMNS, d, err, method=options.method))
        cumul[d] = cumulative(table, subgroup=d, order=order, decreasing=options.decreasing,
                              method=options.method, **common)
        try:
            funnels[d] = funnel_data(table, subgroup=d, yaxis=options.precision, fill=True,
                                     method=options.method, **common)
        except DataError:  # too few studies for trim and fill: the plain funnel
            funnels[d] = funnel_data(table, subgroup=d, yaxis=options.precision,
                                     method=options.method, **common)
    return (pd.DataFrame(reg, columns=list(REGTEST_COLUMNS)),
            pd.DataFrame(rank, columns=list(RANKTEST_COLUMNS)),
            pd.DataFrame(fill, columns=list(TRIMFILL_COLUMNS)), cumul, funnels)


def analyse_bias(main: FitResult, options: BiasOptions | None = None,
                 progress: Callable[[str], None] | None = None) -> BiasAnalysis:
    """Both halves for the fit ``main`` (its sampler settings, seed, interval, weights and
    ``at`` values): one more fit for the precision model, one per study but the last for
    the cumulative posteriors."""
    options = options or BiasOptions()
    say = progress or (lambda message: None)
    spec = main.spec
    _, _, order_by = study_order(spec, options.order, options.decreasing)
    say(f"precision model ({PRECISION_LABELS[options.precision]} as a moderator)")
    precision = precision_model(main, options.precision, options.slope)
    say(f"cumulative posteriors: {len(spec.studies) - 1} refits, ordered by {order_by}")
    cumul_bayes = bayes_cumulative(main, options.order, options.decreasing)
    say("frequentist tests: Egger, rank correlation, trim and fill, cumulative")
    reg, rank, fill, cumul, funnels = frequentist_tables(spec, options, order_by)
    posterior = {label: posterior_funnel(main, label, yaxis=options.precision)
                 for label in main._labels()}
    return BiasAnalysis(options, order_by, precision, cumul_bayes, reg, rank, fill, cumul,
                        funnels, posterior)


# ---------------------------------------------------------------------- text
def _pct(x: float) -> str:
    return "" if not np.isfinite(x) else f"{100 * x:5.1f}%"


def _ci_pct(m: float, lo: float, hi: float) -> str:
    return "" if not np.isfinite(m) else f"{_pct(m)} [{_pct(lo)}, {_pct(hi)}]"


def _num(x: float, fmt: str = "7.3f") -> str:
    return "" if x is None or not np.isfinite(x) else format(x, fmt)


def render_text(analysis: BiasAnalysis, spec: ModelSpec, title: str = "") -> str:
    """The plain-text summary (``bias.txt``), with the SYNTHETIC banner when the data are."""
    from bayes_poem.banner import synthetic_banner

    options = analysis.options
    lines = [synthetic_banner(spec.table)] if spec.table.is_synthetic else []
    if title:
        lines.append(title)
    lines.append(f"Small-study effects: outcome {spec.outcome}, {len(spec.studies)} studies, "
                 f"{len(spec.table.frame)} rows")
    lines += ["", f"Bayesian precision model: {PRECISION_LABELS[options.precision]} "
              f"({options.precision}) as a moderator, not centred (slope {options.slope}); "
              "'limit' is p_pooled at infinite precision, 'main' the analysis without it.",
              "The slope is per unit of precision on the logit scale (positive: smaller "
              "studies report higher rates)."]
    table = analysis.precision_table()
    interval = table["interval"].iloc[0] if len(table) else ""
    lines.append(f"{'subgroup':<14} {'slope [' + interval + ']':<30} {'P(b<0)':>7} "
                 f"{'P(b>0)':>7}  {'limit':<25} {'main':<25}")
    for row in table.itertuples(index=False):
        slope = (f"{row.slope_median:7.3f} [{row.slope_lower:7.3f}, {row.slope_upper:7.3f}]"
                 if isinstance(row.term, str) and row.term else "(one slope per subgroup)")
        lines.append(f"{row.subgroup[:14]:<14} {slope:<30} {_num(row.p_slope_lt_0, '7.3f'):>7} "
                     f"{_num(row.p_slope_gt_0, '7.3f'):>7}  "
                     f"{_ci_pct(row.limit_median, row.limit_lower, row.limit_upper):<25} "
                     f"{_ci_pct(row.main_median, row.main_lower, row.main_upper):<25}")
    lines += ["", f"Frequentist regression tests (metafor regtest, rma {options.method}, z test):"]
    lines.append(f"{'subgroup':<14} {'predictor':<9} {'k':>3} {'slope':>8} {'z':>7} "
                 f"{'p':>7}  {'limit (logit)':>13}  note")
    for row in analysis.regtest.itertuples(index=False):
        lines.append(f"{str(row.label)[:14]:<14} {row.predictor:<9} {_num(row.k, '3.0f'):>3} "
                     f"{_num(row.slope, '8.3f'):>8} {_num(row.statistic, '7.3f'):>7} "
                     f"{_num(row.p_value, '7.4f'):>7}  {_num(row.limit_estimate, '13.3f'):>13}"
                     f"  {row.note if isinstance(row.note, str) else ''}")
    lines += ["", "Rank correlation test (Begg and Mazumdar; metafor ranktest):"]
    for row in analysis.ranktest.itertuples(index=False):
        detail = (f"Kendall tau {row.tau:.3f}, p = {row.p_value:.4f} ({row.p_method})"
                  if np.isfinite(row.tau) else row.note)
        lines.append(f"  {row.label}: {detail}")
    lines += ["", "Trim and fill (L0; metafor trimfill):"]
    for label, rows in analysis.trimfill.groupby("label", sort=False):
        adjusted = rows[rows["analysis"] == "trim-and-fill"]
        if adjusted.empty:
            lines.append(f"  {label}: {rows['note'].iloc[0]}")
            continue
        a = adjusted.iloc[0]
        lines.append(f"  {label}: {int(a['k0'])} stud{'y' if a['k0'] == 1 else 'ies'} filled "
                     f"on the {a['side']}; adjusted estimate "
                     f"{_ci_pct(a['back_estimate'], a['back_ci_lower'], a['back_ci_upper'])}")
    cumul = analysis.cumulative_table()
    lines += ["", f"Cumulative meta-analysis ordered by {analysis.order_by}: Bayesian p_pooled "
              f"after each added study ({len(cumul['step'].unique())} steps; "
              "cumulative_bayes.csv, cumulative_frequentist.csv, cumulative_*.png)."]
    problems = cumul[cumul["problems"].fillna("") != ""].drop_duplicates("step")
    for row in problems.itertuples(index=False):
        lines.append(f"  step {row.step} (+ {row.study}): sampler problems: {row.problems}")
    if spec.table.is_synthetic:
        lines += ["", synthetic_banner(spec.table)]
    return "\n".join(lines)


# ---------------------------------------------------------------------- figures
def safe_name(label: str) -> str:
    """A label as part of a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(label))


def figures(analysis: BiasAnalysis, title: str = "") -> dict[str, tuple[str, Figure]]:
    """File stem -> (caption, figure): the frequentist and posterior funnel of each
    subgroup, and the cumulative plot (Bayesian beside frequentist) of each subgroup."""
    from bayes_poem.bias_plots import bayes_cumulative_plot, funnel_plot, posterior_funnel_plot

    axis = PRECISION_LABELS[analysis.options.precision]
    out: dict[str, tuple[str, Figure]] = {}
    for label, funnel in analysis.funnels.items():
        filled = f"; {funnel.k0} studies filled by trim and fill (open)" if funnel.k0 else ""
        out[f"funnel_{safe_name(label)}"] = (
            f"{label}: funnel plot, observed logit against {axis}{filled}",
            funnel_plot(funnel=funnel, title=title))
    for label, funnel in analysis.posterior_funnels.items():
        fig = posterior_funnel_plot(funnel=funnel, title=title)
        frequentist = out.get(f"funnel_{safe_name(label)}")
        if frequentist is not None:  # the same axes as the frequentist funnel
            axes = (frequentist[1].axes[0], fig.axes[0])
            (a0, a1), (b0, b1) = (ax.get_xlim() for ax in axes)
            (c0, c1), (d0, d1) = (ax.get_ylim() for ax in axes)
            for ax in axes:
                ax.set_xlim(min(a0, b0), max(a1, b1))
                ax.set_ylim(max(c0, d0), min(c1, d1))
        out[f"funnel_posterior_{safe_name(label)}"] = (
            f"{label}: posterior funnel, shrunken estimates against the observed {axis} "
            "(same axes as the frequentist funnel)", fig)
    pairs = [k for label in dict.fromkeys([*analysis.funnels, *analysis.posterior_funnels])
             for k in (f"funnel_{safe_name(label)}", f"funnel_posterior_{safe_name(label)}")
             if k in out]
    out = {k: out[k] for k in pairs}  # each subgroup's two funnels side by side
    for label in dict.fromkeys(analysis.cumulative.frame["subgroup"]):
        if label == "overall":
            continue
        out[f"cumulative_{safe_name(label)}"] = (
            f"{label}: cumulative meta-analysis by {analysis.order_by}, Bayesian and "
            "frequentist",
            bayes_cumulative_plot(cumulative=analysis.cumulative, subgroup=label,
                                  frequentist=analysis.freq_cumulative.get(label), title=title))
    return out
