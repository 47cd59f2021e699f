r"""Small-study effects, Bayesian half: the precision of a row and the precision model
(the limit estimate), on the one compiled density (a refit is a sampling run).

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
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_poem.dims import MODERATOR
from bayes_poem.errors import DataError, SpecError
from bayes_poem.intervals import describe

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.sampling import SamplerSettings
    from bayes_poem.spec import ModelSpec

__all__ = [
    "CORRECTION",
    "PRECISIONS",
    "PRECISION_COLUMNS",
    "PRECISION_LABELS",
    "SLOPES",
    "PrecisionResult",
    "observed_logit",
    "precision_model",
    "precision_terms",
    "precision_values",
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
    fit = spec.fit(settings) if settings else spec.refit(main.settings)
    fit = with_summary_options(fit, interval=main.interval, weights=main.weights, at=main.at)
    return PrecisionResult(fit, main, precision, slope)
