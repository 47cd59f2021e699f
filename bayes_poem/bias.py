r"""Small-study effects, Bayesian half: the precision model, cumulative posteriors and the
posterior funnel, all on the one compiled density (no compilation, a refit is a sampling run).

**Precision of a row.** Computed from the data, never a user column:

``"sqrtninv"`` (default)
    :math:`x_i = 1/\sqrt{n_i}`, with :math:`n_i` the row's total.
``"sei"``
    :math:`x_i = s_i = \sqrt{1/a_i + 1/(m_i - a_i)}`, the standard error of the observed
    logit :math:`\log\{a_i/(m_i - a_i)\}`, with the package's continuity correction
    (:mod:`bayes_poem.frequentist.transforms`, ``add=0.5, to="only0"``): a row with 0 events
    or 0 non-events gets :math:`a_i = y_i + 0.5`, :math:`m_i = n_i + 1`; other rows
    :math:`a_i = y_i`, :math:`m_i = n_i`. The same :math:`s_i` as the frequentist funnel and
    Egger test.

**Precision model** (:func:`with_precision`). The precision enters the linear predictor as a
moderator of the engine (:mod:`bayes_poem.moderators`),

.. math::

    \operatorname{logit} p_i = \mu + \alpha_{d_i} + u_{s_i} + x_i'^\top\beta' +
        \beta_x \frac{x_i}{\operatorname{sd}(x)}

(the model's own moderators :math:`x_i'` keep their coding), coded **without centring**
(reference value 0) and scaled by the SD of :math:`x` over the model's rows, so that

* :math:`\beta_x \sim N(0, s_\beta^2)` is the slope per SD of precision, under the same
  ``beta`` prior as every moderator; the slope per unit of precision, the quantity of
  Egger's test (metafor ``regtest`` with ``predictor="sei"`` or ``"sqrtninv"``), is
  :math:`b = \beta_x / \operatorname{sd}(x)`;
* :math:`x = 0`, infinite precision, is the reference value: ``p_pooled`` of the precision
  model, :math:`\operatorname{logit}^{-1}(\mu + \alpha_d)`, is the **limit estimate** (the
  PET-type estimate of a study of infinite size), reported per subgroup beside the main
  estimate (``p_pooled`` of the model without the precision term).

With ``slope="by_subgroup"`` each subgroup :math:`d` gets its own slope: the derived
columns ``sqrtninv[d]`` equal :math:`x_i` in subgroup :math:`d` and 0 elsewhere (all scaled
by the same :math:`\operatorname{sd}(x)`, so the slopes are comparable).

``P(b < 0)`` and ``P(b > 0)`` are posterior probabilities. A positive slope means smaller
studies (larger :math:`x`) report higher rates (higher logits), a negative one lower rates.

*Why 1/sqrt(n) by default.* :math:`s_i` is a function of the row's own events, so as a
covariate of a binomial likelihood it is part of the outcome: for rates far from 0.5 the
observed logit and its :math:`s_i` are correlated without any small-study effect (rows with
fewer events in the rarer category have both a more extreme logit and a larger
:math:`s_i`), which biases the slope (Peters et al. 2006; Harbord et al. 2006).
:math:`1/\sqrt{n_i}` depends on the design only.

**Cumulative posteriors** (:func:`cumulative_specs`, :func:`bayes_cumulative`). Studies are
ordered by a column (``year`` by default; ties keep the table's study order, as
metafor's ``cumul``); step :math:`j` is the model with the counts of every study after the
:math:`j`-th set to 0 (:meth:`ModelSpec.leave_out`: exactly the posterior given the first
:math:`j` studies, the model keeping its shape), refitted without compiling.

**Posterior funnel** (:func:`posterior_funnel`). Each row's shrunken estimate, the posterior
median of :math:`\operatorname{logit} p_i` (study and cell effects, moderators included),
drawn at the row's observed :math:`s_i` (or :math:`1/\sqrt{n_i}`): the vertical axis of the
frequentist funnel (:func:`bayes_poem.frequentist.funnel_data`), so the two plots compare
point by point; the reference line is the posterior median of :math:`\mu + \alpha_d`.

References
----------
Stanley TD, Doucouliagos H. Meta-regression approximations to reduce publication selection
bias. Res Synth Methods 2014;5:60-78.
Peters JL, Sutton AJ, Jones DR, Abrams KR, Rushton L. Comparison of two methods to detect
publication bias in meta-analysis. JAMA 2006;295:676-80.
Harbord RM, Egger M, Sterne JAC. A modified test for small-study effects in meta-analyses
of controlled trials with binary endpoints. Stat Med 2006;25:3443-57.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import logit

from bayes_poem.dims import MODERATOR, SUBGROUP
from bayes_poem.errors import ConvergenceWarning, DataError, SpecError
from bayes_poem.intervals import describe
from bayes_poem.moderators import _number

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.sampling import SamplerSettings
    from bayes_poem.spec import ModelSpec

__all__ = [
    "BIAS_KEYS",
    "CORRECTION",
    "PRECISIONS",
    "SLOPES",
    "BayesCumulative",
    "BiasOptions",
    "PosteriorFunnel",
    "PrecisionResult",
    "bayes_cumulative",
    "cumulative_specs",
    "observed_logit",
    "parse_bias",
    "posterior_funnel",
    "precision_model",
    "precision_terms",
    "precision_values",
    "study_order",
    "with_precision",
]

PRECISIONS = ("sqrtninv", "sei")
SLOPES = ("common", "by_subgroup")
#: the continuity correction of the observed logit (frequentist default: add 0.5 to both
#: cells of a row with 0 events or 0 non-events)
CORRECTION = 0.5
PRECISION_LABELS = {"sqrtninv": "1/sqrt(n)", "sei": "SE of the observed logit"}
PRECISION_COLUMNS = ("subgroup", "precision", "term", "slope_median", "slope_lower",
                     "slope_upper", "slope_per_sd_median", "slope_per_sd_lower",
                     "slope_per_sd_upper", "p_slope_lt_0", "p_slope_gt_0", "limit_median",
                     "limit_lower", "limit_upper", "main_median", "main_lower", "main_upper",
                     "interval", "n_studies", "r_hat", "ess_bulk")
CUMULATIVE_BAYES_COLUMNS = ("step", "study", "order", "subgroup", "n_studies", "events",
                            "total", "median", "lower", "upper", "interval", "divergences",
                            "problems")
POSTERIOR_FUNNEL_COLUMNS = ("study", "subgroup", "events", "total", "observed", "corrected",
                            "se", "y", "shrunk", "shrunk_lower", "shrunk_upper")


# ---------------------------------------------------------------------- options
BIAS_KEYS = ("precision", "slope", "order", "decreasing", "method")


@dataclass(frozen=True)
class BiasOptions:
    """The ``[bias]`` section of a spec (all optional).

    Attributes
    ----------
    precision : {"sqrtninv", "sei"}
        The precision moderator and the funnels' vertical axis.
    slope : {"common", "by_subgroup"}
        One slope, or one per subgroup.
    order : str or None
        The column the cumulative analyses order studies by; ``None``: ``year`` when the
        data have it, else the table's study order.
    decreasing : bool
        Latest first.
    method : str
        The frequentist tau^2 estimator (``REML``, ``ML``, ``DL``; ``FE`` for the
        cumulative and trim-and-fill analyses only).
    """

    precision: str = "sqrtninv"
    slope: str = "common"
    order: str | None = None
    decreasing: bool = False
    method: str = "REML"

    def to_dict(self) -> dict[str, Any]:
        """TOML-ready (``order`` left out when unset)."""
        out = dataclasses.asdict(self)
        return {k: v for k, v in out.items() if v is not None}


def parse_bias(raw: Mapping[str, Any] | None, source: str) -> BiasOptions:
    """Validate a ``[bias]`` table (``SpecError`` naming the file and the key)."""
    raw = dict(raw or {})
    unknown = [k for k in raw if k not in BIAS_KEYS]
    if unknown:
        raise SpecError(f"{source}: unknown key 'bias.{unknown[0]}'; valid keys in [bias]: "
                        f"{', '.join(BIAS_KEYS)}")
    for key, allowed in (("precision", PRECISIONS), ("slope", SLOPES),
                         ("method", ("REML", "ML", "DL"))):
        if key in raw and raw[key] not in allowed:
            raise SpecError(f"{source}: bias.{key}: {raw[key]!r} is not one of "
                            f"{', '.join(allowed)}")
    if "order" in raw and (not isinstance(raw["order"], str) or not raw["order"].strip()):
        raise SpecError(f"{source}: bias.order must be a column name (got {raw['order']!r})")
    if "decreasing" in raw and not isinstance(raw["decreasing"], bool):
        raise SpecError(f"{source}: bias.decreasing must be true or false "
                        f"(got {raw['decreasing']!r})")
    return BiasOptions(**raw)


# ---------------------------------------------------------------------- precision
def precision_values(frame: pd.DataFrame, precision: str = "sqrtninv") -> np.ndarray:
    """Each row's precision measure (module docstring): ``1/sqrt(n)`` or the SE of the
    observed logit with 0.5 added to both cells of a row with 0 events or 0 non-events."""
    if precision not in PRECISIONS:
        raise SpecError(f"bias.precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    events = frame["events"].to_numpy(dtype=float)
    total = frame["total"].to_numpy(dtype=float)
    if precision == "sqrtninv":
        return 1.0 / np.sqrt(total)
    corrected = (events == 0) | (events == total)
    a = events + CORRECTION * corrected
    m = total + 2 * CORRECTION * corrected
    return np.sqrt(1.0 / a + 1.0 / (m - a))


def observed_logit(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The observed logit of each row (same correction as ``sei``) and whether it was
    corrected."""
    events = frame["events"].to_numpy(dtype=float)
    total = frame["total"].to_numpy(dtype=float)
    corrected = (events == 0) | (events == total)
    a = events + CORRECTION * corrected
    m = total + 2 * CORRECTION * corrected
    return np.log(a / (m - a)), corrected


def precision_terms(spec: ModelSpec, precision: str, slope: str) -> list[str]:
    """The derived column names: ``sqrtninv`` or one ``sqrtninv[<subgroup>]`` per subgroup."""
    if slope == "common":
        return [precision]
    return [f"{precision}[{d}]" for d in spec.subgroups]


def with_precision(spec: ModelSpec, precision: str = "sqrtninv",
                   slope: str = "common") -> ModelSpec:
    """``spec`` with the precision moderator(s) added (module docstring).

    The derived column(s) are added to the model's rows; the spec's own moderators keep
    their coding. The precision term is not centred (reference 0: ``p_pooled`` is the limit
    estimate) and is scaled by the SD of the precision over the model's rows.

    Raises
    ------
    SpecError
        An unknown ``precision`` or ``slope``, or ``slope="by_subgroup"`` without
        subgroup effects.
    DataError
        A covariate column with a derived column's name, or the same precision in every
        row (the slope cannot be estimated).
    """
    if precision not in PRECISIONS:
        raise SpecError(f"bias.precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if slope not in SLOPES:
        raise SpecError(f"bias.slope: {slope!r} is not one of {', '.join(SLOPES)}")
    if slope == "by_subgroup" and spec.subgroup_effects == "none":
        raise SpecError("bias.slope = 'by_subgroup' needs subgroup effects "
                        "(model.subgroup_effects = 'random' or 'fixed')")
    frame = spec.table.frame.copy()
    names = precision_terms(spec, precision, slope)
    clash = [n for n in names if n in frame.columns]
    if clash:
        raise DataError(f"{spec.table.source}: the data have a column '{clash[0]}', the name "
                        "of the derived precision moderator; rename that column")
    x = precision_values(frame, precision)
    sd = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
    if not sd > 0:
        raise DataError(f"{spec.table.source}: every row has the same precision "
                        f"({PRECISION_LABELS[precision]} = {x[0]:.4g}); the small-study "
                        "slope cannot be estimated")
    if slope == "common":
        frame[precision] = x
    else:
        subgroup = frame["subgroup"].to_numpy()
        for d, name in zip(spec.subgroups, names, strict=True):
            frame[name] = np.where(subgroup == d, x, 0.0)
    own = spec.moderators
    table = dataclasses.replace(spec.table, frame=frame)
    return dataclasses.replace(spec, table=table).with_moderators(
        *[m.name for m in own], *names,
        reference={**{m.name: m.centre if m.kind == "numeric" else m.reference for m in own},
                   **dict.fromkeys(names, 0.0)},
        scale={**{m.name: m.scale for m in own if m.kind == "numeric"},
               **dict.fromkeys(names, sd)},
        kinds={**{m.name: m.kind for m in own}, **dict.fromkeys(names, "numeric")})


@dataclass(frozen=True)
class PrecisionResult:
    """The precision model beside the main fit.

    Attributes
    ----------
    fit : FitResult
        The precision model (its ``p_pooled`` is the limit estimate).
    main : FitResult
        The analysis without the precision term.
    precision, slope : str
    """

    fit: FitResult
    main: FitResult
    precision: str
    slope: str

    @property
    def terms(self) -> list[str]:
        return precision_terms(self.fit.spec, self.precision, self.slope)

    def slope_draws(self, term: str) -> tuple[np.ndarray, float]:
        """Draws of the slope per unit of precision (``beta / scale``) and the scale."""
        moderator = next(m for m in self.fit.spec.moderators if m.name == term)
        beta = self.fit.posterior["beta"].sel({MODERATOR: term}).values
        return beta / moderator.scale, moderator.scale

    def to_frame(self) -> pd.DataFrame:
        """One row per subgroup (and ``overall``): slope, ``P(b < 0)``, ``P(b > 0)``,
        limit and main ``p_pooled`` (:data:`PRECISION_COLUMNS`)."""
        import arviz as az

        interval = self.main.interval
        limit = self.fit.subgroup_summary(interval)
        limit = limit[limit["quantity"] == "p_pooled"].set_index("subgroup")
        main = self.main.subgroup_summary(interval)
        main = main[main["quantity"] == "p_pooled"].set_index("subgroup")
        beta = self.fit.posterior[["beta"]]
        rhat, bulk = az.rhat(beta)["beta"], az.ess(beta, method="bulk")["beta"]
        rows = []
        for label in limit.index:
            term = (self.precision if self.slope == "common"
                    else f"{self.precision}[{label}]")
            has_slope = term in self.terms
            if has_slope:
                draws, scale = self.slope_draws(term)
                per_unit, per_sd = describe(draws, interval), describe(draws * scale, interval)
                slope = {"slope_median": per_unit["median"], "slope_lower": per_unit["lower"],
                         "slope_upper": per_unit["upper"],
                         "slope_per_sd_median": per_sd["median"],
                         "slope_per_sd_lower": per_sd["lower"],
                         "slope_per_sd_upper": per_sd["upper"],
                         "p_slope_lt_0": float((draws < 0).mean()),
                         "p_slope_gt_0": float((draws > 0).mean()),
                         "r_hat": float(rhat.sel({MODERATOR: term})),
                         "ess_bulk": float(bulk.sel({MODERATOR: term}))}
            else:  # by_subgroup: no single slope for the overall row
                slope = {}
            rows.append({
                "subgroup": label, "precision": self.precision,
                "term": term if has_slope else "", **slope,
                "limit_median": limit.loc[label, "median"],
                "limit_lower": limit.loc[label, "lower"],
                "limit_upper": limit.loc[label, "upper"],
                "main_median": main.loc[label, "median"], "main_lower": main.loc[label, "lower"],
                "main_upper": main.loc[label, "upper"], "interval": interval.label,
                "n_studies": int(limit.loc[label, "n_studies"]),
            })
        return pd.DataFrame(rows).reindex(columns=list(PRECISION_COLUMNS))


def precision_model(main: FitResult, precision: str = "sqrtninv", slope: str = "common",
                    settings: SamplerSettings | None = None) -> PrecisionResult:
    """Fit the precision model of ``main``'s spec (same sampler settings and seed by
    default) and pair it with ``main``. Its summaries use ``main``'s interval, weights and
    ``at`` values (the precision stays at 0: the limit)."""
    from bayes_poem.results import with_summary_options

    spec = with_precision(main.spec, precision, slope)
    fit = spec.fit(settings or main.settings)
    fit = with_summary_options(fit, interval=main.interval, weights=main.weights, at=main.at)
    return PrecisionResult(fit, main, precision, slope)


# ---------------------------------------------------------------------- cumulative
def study_order(spec: ModelSpec, order: str | None = None,
                decreasing: bool = False) -> tuple[list[str], list[Any], str]:
    """Studies in the order of the column ``order`` (module docstring): ``(studies,
    values, order_by)``. ``order=None``: ``year`` when the data have it, else the table's
    study order (``order_by`` says which).

    Raises
    ------
    DataError
        A missing column or value (naming the row), or a study whose rows disagree.
    """
    frame = spec.table.frame
    source = spec.table.source
    studies = spec.studies
    if order is None:
        if "year" not in frame.columns:
            return studies, list(range(1, len(studies) + 1)), "table order"
        order = "year"
    if order not in frame.columns:
        covariates = list(spec.table.covariates) or ["(none)"]
        raise DataError(f"{source}: no column '{order}' to order the cumulative analysis by "
                        f"(bias.order); covariates: {', '.join(map(str, covariates))}")
    values: dict[str, Any] = {}
    for study, subgroup, value in frame[["study", "subgroup", order]].itertuples(index=False):
        if value is None or (isinstance(value, float) and np.isnan(value)) or (
                isinstance(value, str) and not value.strip()) or value is pd.NA:
            raise DataError(f"{source}: row '{study} | {subgroup}' (outcome {spec.outcome}), "
                            f"column '{order}': missing value (the cumulative analysis orders "
                            "studies by it)")
        if study in values and str(values[study]) != str(value):
            raise DataError(f"{source}: study '{study}' has two values of '{order}' "
                            f"({values[study]} and {value}); the cumulative analysis orders "
                            "whole studies")
        values.setdefault(study, value)
    raw = [values[s] for s in studies]
    numbers = [_number(v) for v in raw]
    keys: list[Any] = (numbers if all(n is not None for n in numbers)
                       else [str(v).strip() for v in raw])
    positions = sorted(range(len(studies)), key=lambda i: keys[i])  # stable: ties in order
    if decreasing:  # latest first, ties still in table order
        groups: dict[Any, list[int]] = {}
        for i in positions:
            groups.setdefault(keys[i], []).append(i)
        positions = [i for key in reversed(list(groups)) for i in groups[key]]
    return [studies[i] for i in positions], [raw[i] for i in positions], order


def cumulative_specs(spec: ModelSpec, order: str | None = None,
                     decreasing: bool = False) -> list[tuple[str, Any, ModelSpec]]:
    """``(study, order value, spec)`` per step: the spec with every later study's counts
    zeroed (the same compiled model; a refit costs one sampling run)."""
    studies, values, _ = study_order(spec, order, decreasing)
    steps = []
    for j, (study, value) in enumerate(zip(studies, values, strict=True)):
        step = spec
        for later in studies[j + 1:]:
            step = step.leave_out(later)
        steps.append((study, value, step))
    return steps


@dataclass(frozen=True)
class BayesCumulative:
    """The posterior of ``p_pooled`` after each added study.

    Attributes
    ----------
    order_by : str
        The ordering column (or ``"table order"``).
    frame : DataFrame
        :data:`CUMULATIVE_BAYES_COLUMNS`: one row per step x subgroup (and ``overall``);
        ``n_studies`` counts the studies with data in that subgroup so far (0: the
        estimate is the model's prediction for a subgroup not yet observed).
    """

    order_by: str
    frame: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()


def bayes_cumulative(main: FitResult, order: str | None = None, decreasing: bool = False,
                     settings: SamplerSettings | None = None,
                     progress: Callable[[int, int, str], None] | None = None
                     ) -> BayesCumulative:
    """Refit ``main``'s model after each added study (module docstring).

    Uses ``main``'s sampler settings (and seed), interval, weights and ``at`` values. Sampler
    warnings of a step (few studies: divergences are common) are recorded in its
    ``problems`` column, not raised.
    """
    from bayes_poem.results import with_summary_options

    steps = cumulative_specs(main.spec, order, decreasing)
    _, _, order_by = study_order(main.spec, order, decreasing)
    rows = []
    for j, (study, value, spec) in enumerate(steps, start=1):
        if progress is not None:
            progress(j, len(steps), study)
        if j == len(steps):
            result = main  # every study: the analysis itself
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                result = spec.fit(settings or main.settings)
            result = with_summary_options(result, interval=main.interval,
                                          weights=main.weights, at=main.at)
        summary = result.subgroup_summary()
        summary = summary[summary["quantity"] == "p_pooled"]
        for row in summary.itertuples(index=False):
            rows.append({"step": j, "study": study, "order": value, "subgroup": row.subgroup,
                         "n_studies": row.n_studies, "events": row.events,
                         "total": row.total, "median": row.median, "lower": row.lower,
                         "upper": row.upper, "interval": row.interval,
                         "divergences": result.diagnostics.divergences,
                         "problems": "; ".join(result.diagnostics.problems)})
    return BayesCumulative(order_by, pd.DataFrame(rows, columns=list(CUMULATIVE_BAYES_COLUMNS)))


# ---------------------------------------------------------------------- posterior funnel
@dataclass(frozen=True)
class PosteriorFunnel:
    """What the posterior funnel plot draws (module docstring).

    Attributes
    ----------
    label : str
        The subgroup (or ``pooled``).
    yaxis : {"sei", "sqrtninv"}
    reference : float
        Posterior median of ``mu + alpha_d`` (logit).
    points : DataFrame
        :data:`POSTERIOR_FUNNEL_COLUMNS`; ``observed`` is the (corrected) observed logit,
        ``shrunk*`` the posterior median and interval of the row's logit.
    contours : DataFrame
        ``level, y, lower, upper``: ``reference +- z * se`` (``sei`` axis only).
    interval : str
    """

    label: str
    yaxis: str
    reference: float
    points: pd.DataFrame = field(repr=False)
    contours: pd.DataFrame = field(repr=False)
    interval: str = ""

    def to_frame(self) -> pd.DataFrame:
        return self.points.copy()


def posterior_funnel(fit: FitResult, subgroup: str | None = None, *, yaxis: str = "sei",
                     levels: Sequence[float] = (0.95,), n_grid: int = 101) -> PosteriorFunnel:
    """Shrunken row estimates against the frequentist funnel's axis, for one subgroup
    (``None``: the only label of the fit, e.g. a single-group model)."""
    if yaxis not in PRECISIONS:
        raise SpecError(f"yaxis: {yaxis!r} is not one of {', '.join(PRECISIONS)}")
    labels = fit._labels()
    if subgroup is None:
        if len(labels) != 1:
            raise SpecError(f"subgroup: name one of {', '.join(labels)}")
        subgroup = labels[0]
    if subgroup not in labels:
        raise SpecError(f"subgroup: '{subgroup}' is not one of {', '.join(labels)}")
    estimates = fit.study_estimates()
    frame = fit.spec.table.frame.reset_index(drop=True)
    keep = estimates["included"].to_numpy(dtype=bool).copy()
    if subgroup in fit.spec.subgroups:
        keep &= (frame["subgroup"] == subgroup).to_numpy()
    rows = frame[keep]
    est = estimates[keep]
    observed, corrected = observed_logit(rows)
    se = precision_values(rows, "sei")
    y = se if yaxis == "sei" else precision_values(rows, "sqrtninv")
    points = pd.DataFrame({
        "study": rows["study"].to_numpy(), "subgroup": rows["subgroup"].to_numpy(),
        "events": rows["events"].to_numpy(), "total": rows["total"].to_numpy(),
        "observed": observed, "corrected": corrected, "se": se, "y": y,
        "shrunk": logit(est["median"].to_numpy(float)),
        "shrunk_lower": logit(est["lower"].to_numpy(float)),
        "shrunk_upper": logit(est["upper"].to_numpy(float)),
    }, columns=list(POSTERIOR_FUNNEL_COLUMNS))
    eta = fit._linear_predictor(fit.at).sel({SUBGROUP: subgroup}).values
    reference = float(np.median(eta))
    parts = []
    if yaxis == "sei" and len(points):
        grid = np.linspace(0.0, float(points["y"].max()), n_grid)
        for level in levels:
            crit = stats.norm.ppf(0.5 + level / 2)
            parts.append(pd.DataFrame({"level": level, "y": grid,
                                       "lower": reference - crit * grid,
                                       "upper": reference + crit * grid}))
    contours = (pd.concat(parts, ignore_index=True) if parts
                else pd.DataFrame(columns=["level", "y", "lower", "upper"]))
    return PosteriorFunnel(subgroup, yaxis, reference, points, contours, fit.interval.label)
