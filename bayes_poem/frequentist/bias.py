r"""Small-study effects: Egger's regression test, Begg's rank test, trim and fill,
cumulative meta-analysis and funnel-plot data, as metafor's ``regtest``, ``ranktest``,
``trimfill``, ``cumul`` and ``funnel``.

Study :math:`i` has the effect size :math:`y_i` and sampling variance :math:`v_i` of
:mod:`.transforms` (logit by default; the same continuity correction as every other
entry point: 0.5 added to both cells of a study with 0 events or 0 non-events,
``add=``/``to=``), standard error :math:`s_i = \sqrt{v_i}` and sample size :math:`n_i`
(the uncorrected total, metafor's ``ni``).

**Regression test** (:func:`regtest`; Egger et al. 1997, metafor ``regtest(model="rma")``).
The meta-regression of :mod:`.metareg` with the design :math:`X = [1, x_i]`,

.. math:: y_i = \beta_0 + \beta_1 x_i + u_i + \varepsilon_i, \qquad
          u_i \sim N(0, \tau^2), \quad \varepsilon_i \sim N(0, v_i),

where the predictor :math:`x_i` is ``"sei"`` :math:`s_i` (default), ``"vi"`` :math:`v_i`,
``"ni"`` :math:`n_i`, ``"ninv"`` :math:`1/n_i`, ``"sqrtni"`` :math:`\sqrt{n_i}` or
``"sqrtninv"`` :math:`1/\sqrt{n_i}`. The test of funnel-plot asymmetry is the test of
:math:`\beta_1 = 0`: Wald z (``test="z"``) or t on :math:`k-2` df (``"knha"``, ``"adhoc"``,
``"t"``). For the predictors that vanish at infinite precision (``sei``, ``vi``, ``ninv``,
``sqrtninv``) the intercept :math:`\hat\beta_0` is the *limit estimate* (metafor's
"Limit Estimate (as sei -> 0)") with its CI; ``nan`` for the others. ``model="lm"`` is the
classical weighted regression (metafor ``model="lm"``): weighted least squares with
weights :math:`1/v_i` and an estimated residual scale, t on :math:`k-2` df; it is
Egger's original regression of :math:`y_i/s_i` on :math:`1/s_i`, with the roles of
intercept and slope exchanged.

**Rank correlation test** (:func:`ranktest`; Begg & Mazumdar 1994, metafor ``ranktest``).
With the fixed-effect estimate :math:`\hat\theta = \sum y_i/v_i / \sum 1/v_i` and its
variance :math:`v_\theta = 1/\sum 1/v_i`, the standardised deviates
:math:`y_i^* = (y_i - \hat\theta)/\sqrt{v_i - v_\theta}`; Kendall's :math:`\tau_b` between
:math:`y^*` and :math:`v` (R's ``cor.test(method="kendall", exact=TRUE)``, as metafor).
Without ties the p-value is exact: with :math:`T` the number of concordant pairs,
whose null distribution is that of the inversions of a random permutation,
:math:`p = \min\{1, 2\min(P(T \le t), P(T \ge t))\}`. With ties in either variable,
the normal approximation without continuity correction:
:math:`z = S/\sqrt{\operatorname{Var} S}`, :math:`S` = concordant - discordant pairs and
Kendall's tie-corrected variance

.. math:: \operatorname{Var}S = \frac{v_0 - v_t - v_u}{18}
   + \frac{\sum_t t(t-1)\sum_u u(u-1)}{2k(k-1)}
   + \frac{\sum_t t(t-1)(t-2)\sum_u u(u-1)(u-2)}{9k(k-1)(k-2)},

:math:`v_0 = k(k-1)(2k+5)`, :math:`v_t = \sum_t t(t-1)(2t+5)` over the sizes :math:`t`
of the groups of tied :math:`y^*` (:math:`u`: of tied :math:`v`).

**Trim and fill** (:func:`trimfill`; Duval & Tweedie 2000, metafor ``trimfill.rma.uni``).
Side: by default the side where studies are missing is taken from the slope
:math:`\hat\beta_1` of the regression on :math:`s_i` above (same ``method``): ``"right"``
if :math:`\hat\beta_1 < 0`, else ``"left"`` (metafor's rule); or pass ``side=``. For the
right side the :math:`y_i` are negated, so that missing studies are always sought on the
left. Sort by :math:`y`; start at :math:`k_0 = 0` and iterate until :math:`k_0` repeats:
pool the :math:`k - k_0` smallest (``method``: fixed or random effects, as the model)
to :math:`\hat\mu`; rank :math:`|y_i - \hat\mu|` over all :math:`k` studies (ties: first
in sorted order first, R's ``ties.method="first"``); :math:`S_r` = the sum of the ranks of
the positive :math:`y_i - \hat\mu`;

.. math:: L_0 = \frac{4 S_r - k(k+1)}{2k - 1}, \qquad
          R_0 = k - r^* - 1,

(:math:`r^*` the largest rank of a negative deviation; ``estimator="R0"``) and
:math:`k_0 = \max(0, \operatorname{round}(\cdot))` (R rounds halves to even, as Python).
:math:`\operatorname{SE}(k_0) = 4\sqrt{\operatorname{Var}S_r}/(2k-1)` for ``L0`` with
:math:`\operatorname{Var}S_r = \tfrac1{24}\{k(k+1)(2k+1) + 10k_0^3 + 27k_0^2 + 17k_0
- 18kk_0^2 - 18kk_0 + 6k^2k_0\}` (:math:`k_0` unrounded), :math:`\sqrt{2k_0 + 2}` for ``R0``.
The :math:`k_0` largest studies are mirrored about the last :math:`\hat\mu`:
:math:`y^{fill} = 2\hat\mu - y` (on the original side), with the mirrored study's
:math:`v_i` and :math:`n_i`, and the model is refitted to the :math:`k + k_0` studies.

**Cumulative meta-analysis** (:func:`cumulative`; metafor ``cumul``). Order the studies
by ``order`` (ties keep the input order, as R's ``order``) and pool the first
:math:`j = 1, \dots, k` by :func:`~bayes_poem.frequentist.pool`. The first row is one study:
the fixed-effect result with :math:`\tau^2`, :math:`I^2`, :math:`H^2` ``nan``.

**Funnel plot** (:func:`funnel_data`; metafor ``funnel``). Points :math:`(y_i, s_i)` (or
:math:`(y_i, 1/\sqrt{n_i})` with ``yaxis="sqrtninv"``); reference line at the pooled
estimate (the trim-and-fill estimate with ``fill=True``); pseudo-confidence contours
:math:`\hat\mu \pm z_{1-\alpha/2}\, s` for :math:`0 \le s \le \max s_i` at each level
(metafor's default ``addtau2=FALSE``; none for the sample-size axis).

References
----------
Begg CB, Mazumdar M. Operating characteristics of a rank correlation test for publication
bias. Biometrics 1994;50:1088-101.
Duval S, Tweedie R. Trim and fill: a simple funnel-plot-based method of testing and
adjusting for publication bias in meta-analysis. Biometrics 2000;56:455-63.
Egger M, Davey Smith G, Schneider M, Minder C. Bias in meta-analysis detected by a simple,
graphical test. BMJ 1997;315:629-34.
Sterne JAC, Egger M. Regression methods to detect publication and other bias in
meta-analysis. In: Rothstein HR et al. (eds), Publication Bias in Meta-Analysis. Wiley 2005.
Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw
2010;36(3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist.inputs import _select, check_level, counts_from, effect_arrays
from bayes_poem.frequentist.metareg import METAREG_METHODS, fit_meta_regression
from bayes_poem.frequentist.moderators import INTERCEPT, NOT_MODERATORS, Design
from bayes_poem.frequentist.pooling import METHODS, PooledEstimate, pool
from bayes_poem.frequentist.transforms import (
    BACK_SCALE,
    EffectSizes,
    back_transform,
    proportion_effects,
)
from bayes_poem.moderators import sorted_levels
from bayes_poem.table import StudyTable

__all__ = [
    "CUMULATIVE_COLUMNS",
    "FUNNEL_YAXES",
    "RANKTEST_COLUMNS",
    "REGTEST_COLUMNS",
    "REGTEST_PREDICTORS",
    "TRIMFILL_COLUMNS",
    "CumulativeResult",
    "FunnelData",
    "RankTestResult",
    "RegTestResult",
    "TrimFillResult",
    "cumulative",
    "cumulative_effects",
    "funnel_data",
    "funnel_effects",
    "kendall_exact_cdf",
    "ranktest",
    "ranktest_effects",
    "regtest",
    "regtest_effects",
    "trimfill",
    "trimfill_effects",
]

#: metafor's predictors; the first four vanish at infinite precision (a limit estimate)
REGTEST_PREDICTORS = ("sei", "vi", "ninv", "sqrtninv", "ni", "sqrtni")
REGTEST_MODELS = ("rma", "lm")
TRIMFILL_ESTIMATORS = ("L0", "R0")
#: above this many studies the exact Kendall distribution (O(k^3) work) is replaced by the
#: normal approximation, with a note (metafor falls back when R's exact p is not available)
EXACT_KENDALL_MAX_K = 500
FUNNEL_YAXES = ("sei", "sqrtninv")

REGTEST_COLUMNS = ("label", "model", "predictor", "method", "test", "k", "slope", "slope_se",
                   "statistic", "df", "p_value", "limit_estimate", "limit_ci_lower",
                   "limit_ci_upper", "tau2", "note")
RANKTEST_COLUMNS = ("label", "k", "tau", "statistic", "statistic_kind", "p_value",
                    "p_method", "ties", "note")
TRIMFILL_COLUMNS = ("label", "analysis", "method", "side", "estimator", "k", "k0", "se_k0",
                    "estimate", "se", "ci_lower", "ci_upper", "p_value", "tau2", "i2",
                    "back_scale", "back_estimate", "back_ci_lower", "back_ci_upper", "note")
CUMULATIVE_COLUMNS = ("label", "step", "study", "order", "k", "method", "estimate", "se", "z",
                      "p_value", "ci_lower", "ci_upper", "q", "q_pvalue", "tau2", "i2", "h2",
                      "back_scale", "back_estimate", "back_ci_lower", "back_ci_upper")
FUNNEL_POINT_COLUMNS = ("study", "estimate", "se", "total", "y", "filled", "corrected")
FUNNEL_CONTOUR_COLUMNS = ("level", "y", "lower", "upper")


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------

def _effects(data: StudyTable | ArrayLike, totals: ArrayLike | None, *, scale: str,
             add: float | None, to: str, outcome: str | None, subgroup: str | None,
             labels: Sequence[object] | None) -> EffectSizes:
    counts = counts_from(data, totals, labels=labels, outcome=outcome, subgroup=subgroup)
    return proportion_effects(counts, scale, add=add, to=to)


def _label(data: object, subgroup: str | None) -> str:
    if subgroup is not None:
        return subgroup
    if isinstance(data, StudyTable) and len(data.subgroups) == 1:
        return data.subgroups[0]
    return "all"


def _correction_note(effects: EffectSizes | None) -> str:
    if effects is None or not effects.corrected.any():
        return ""
    n = int(effects.corrected.sum())
    return (f"{effects.add:g} added to each cell of {n} stud{'y' if n == 1 else 'ies'} "
            f"(to='{effects.to}')")


def _join(*notes: str) -> str:
    return "; ".join(dict.fromkeys(n for n in notes if n))


def _sizes(ni: ArrayLike | None, k: int) -> np.ndarray | None:
    if ni is None:
        return None
    try:
        n = np.asarray(ni, dtype=float)
    except (TypeError, ValueError):
        raise DataError("ni: sample sizes must be numbers") from None
    if n.shape != (k,):
        raise DataError(f"ni: {n.size} sample sizes for {k} studies")
    if not np.all(np.isfinite(n)) or np.any(n <= 0):
        raise DataError("ni: every sample size must be finite and > 0")
    return n


def _min_k(k: int, need: int, what: str) -> None:
    if k < need:
        raise DataError(f"{what} needs at least {need} studies (got {k})")


def _check_method(method: str) -> str:
    method = str(method).upper()
    if method not in METHODS:
        raise SpecError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    return method


# --------------------------------------------------------------------------------------
# Regression test
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RegTestResult:
    """Egger-type regression test for funnel-plot asymmetry (metafor ``regtest``).

    Attributes
    ----------
    label, model, predictor, method, test : str
        ``model`` is ``"rma"`` or ``"lm"``; ``method`` the tau^2 estimator of the
        ``rma`` model (``"REML"``, ``"ML"``, ``"DL"``; ``"-"`` for ``lm``).
    k : int
    slope, slope_se, statistic, df, p_value : float
        The predictor's coefficient, its SE, z or t (``df`` ``nan`` for z) and the
        two-sided p-value of the test of no asymmetry.
    limit_estimate, limit_ci_lower, limit_ci_upper : float
        The intercept (estimate as the predictor -> 0) and its CI at ``level``; ``nan``
        for ``ni`` and ``sqrtni``.
    tau2 : float
        Residual heterogeneity of the ``rma`` model (``nan`` for ``lm``).
    fit : MetaRegResult or None
        The fitted meta-regression (``rma``).
    """

    label: str
    model: str
    predictor: str
    method: str
    test: str
    k: int
    slope: float
    slope_se: float
    statistic: float
    df: float
    p_value: float
    limit_estimate: float
    limit_ci_lower: float
    limit_ci_upper: float
    tau2: float
    level: float = 0.95
    fit: object = field(default=None, repr=False)
    note: str = ""

    @property
    def statistic_kind(self) -> str:
        return "z" if np.isnan(self.df) else "t"

    def to_frame(self) -> pd.DataFrame:
        """One row (:data:`REGTEST_COLUMNS`)."""
        return pd.DataFrame([{c: getattr(self, c) for c in REGTEST_COLUMNS}],
                            columns=list(REGTEST_COLUMNS))


def _predictor_values(predictor: str, v: np.ndarray, n: np.ndarray | None) -> np.ndarray:
    if predictor == "sei":
        return np.sqrt(v)
    if predictor == "vi":
        return v
    if n is None:
        raise SpecError(f"predictor={predictor!r} needs the sample sizes (ni=)")
    return {"ni": n, "ninv": 1 / n, "sqrtni": np.sqrt(n), "sqrtninv": 1 / np.sqrt(n)}[predictor]


def _design(x: np.ndarray, name: str) -> Design:
    if np.ptp(x) == 0:
        raise DataError(f"the predictor {name} is the same for every study; the regression "
                        "test cannot be computed")
    return Design(np.column_stack([np.ones_like(x), x]), (INTERCEPT, name), (name,),
                  {name: "numeric"})


def _weighted_lm(y: np.ndarray, v: np.ndarray, X: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted least squares, weights 1/v, estimated scale: (beta, se, df)."""
    k, p = X.shape
    w = 1.0 / v
    xtwx = X.T @ (X * w[:, None])
    beta = np.linalg.solve(xtwx, X.T @ (w * y))
    sigma2 = float(np.sum(w * (y - X @ beta) ** 2)) / (k - p)
    se = np.sqrt(sigma2 * np.diag(np.linalg.inv(xtwx)))
    return beta, se, float(k - p)


def regtest_effects(yi: ArrayLike, vi: ArrayLike, ni: ArrayLike | None = None, *,
                    predictor: str = "sei", model: str = "rma", method: str = "REML",
                    test: str = "z", level: float = 0.95, threshold: float = 1e-10,
                    label: str = "all", effects: EffectSizes | None = None) -> RegTestResult:
    """Regression test from effect sizes (metafor ``regtest(yi, vi, ni=, ...)``).

    See the module docstring. ``ni`` (sample sizes) is needed for the predictors
    ``ni``, ``ninv``, ``sqrtni`` and ``sqrtninv``.
    """
    if predictor not in REGTEST_PREDICTORS:
        raise SpecError(f"predictor: {predictor!r} is not one of "
                        f"{', '.join(REGTEST_PREDICTORS)}")
    if model not in REGTEST_MODELS:
        raise SpecError(f"model: {model!r} is not one of {', '.join(REGTEST_MODELS)}")
    level = check_level(level)
    y, v = effect_arrays(yi, vi, 1)
    _min_k(y.size, 3, "the regression test")
    n = _sizes(ni, y.size)
    design = _design(_predictor_values(predictor, v, n), predictor)
    limit = predictor in REGTEST_PREDICTORS[:4]
    note = _correction_note(effects)
    if model == "lm":
        beta, se, df = _weighted_lm(y, v, design.X)
        stat = beta / se
        p = 2 * stats.t.sf(np.abs(stat), df)
        crit = stats.t.ppf(0.5 + level / 2, df)
        lo, hi = beta - crit * se, beta + crit * se
        return RegTestResult(label, model, predictor, "-", "t", y.size, float(beta[1]),
                             float(se[1]), float(stat[1]), df, float(p[1]),
                             float(beta[0]) if limit else np.nan,
                             float(lo[0]) if limit else np.nan,
                             float(hi[0]) if limit else np.nan, np.nan, level, None, note)
    method = str(method).upper()
    if method not in METAREG_METHODS:
        raise SpecError(f"method: {method!r} is not one of {', '.join(METAREG_METHODS)}")
    fit = fit_meta_regression(y, v, design, method=method, test=test, level=level,
                              threshold=threshold, label=label, effects=effects)
    return RegTestResult(
        label, model, predictor, method, fit.test, y.size, float(fit.estimates[1]),
        float(fit.se[1]), float(fit.statistic[1]), float(fit.df), float(fit.p_values[1]),
        float(fit.estimates[0]) if limit else np.nan,
        float(fit.ci_lower[0]) if limit else np.nan,
        float(fit.ci_upper[0]) if limit else np.nan, float(fit.tau2), level, fit,
        _join(fit.note, note))


def regtest(
    data: StudyTable | ArrayLike,
    totals: ArrayLike | None = None,
    *,
    predictor: str = "sei",
    model: str = "rma",
    scale: str = "logit",
    method: str = "REML",
    test: str = "z",
    add: float | None = None,
    to: str = "only0",
    level: float = 0.95,
    outcome: str | None = None,
    subgroup: str | None = None,
    labels: Sequence[object] | None = None,
    threshold: float = 1e-10,
) -> RegTestResult:
    """Egger's regression test of single proportions (metafor
    ``regtest(rma(measure="PLO", xi=, ni=, method=, test=), model=, predictor=)``).

    Parameters
    ----------
    data, totals, outcome, subgroup, labels
        Counts, as :func:`~bayes_poem.frequentist.pool_proportions`.
    predictor : {"sei", "vi", "ninv", "sqrtninv", "ni", "sqrtni"}
        The regressor (module docstring); the sample size is the study's total.
    model : {"rma", "lm"}
        Meta-regression (default) or weighted least squares with an estimated scale.
    scale, add, to
        Effect size and continuity correction (0.5 added to both cells of studies with
        0 events or 0 non-events by default).
    method : {"REML", "ML", "DL"}
        tau^2 estimator of the ``rma`` model.
    test : {"z", "knha", "adhoc", "t"}
        As :func:`~bayes_poem.frequentist.fit_meta_regression`.
    threshold : float
        Fisher-scoring threshold (metafor: 1e-5).

    Raises
    ------
    DataError
        Invalid counts, fewer than 3 studies, or a predictor equal in every study.
    SpecError
        Invalid options.
    """
    effects = _effects(data, totals, scale=scale, add=add, to=to, outcome=outcome,
                       subgroup=subgroup, labels=labels)
    return regtest_effects(effects.yi, effects.vi, effects.totals, predictor=predictor,
                           model=model, method=method, test=test, level=level,
                           threshold=threshold, label=_label(data, subgroup), effects=effects)


# --------------------------------------------------------------------------------------
# Rank correlation test
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RankTestResult:
    """Begg and Mazumdar's rank correlation test (metafor ``ranktest``).

    Attributes
    ----------
    label : str
    k : int
    tau : float
        Kendall's tau-b between the standardised deviates and the sampling variances.
    statistic : float
        ``T`` (concordant pairs) for the exact test, ``z`` for the normal approximation.
    statistic_kind : {"T", "z"}
    p_value : float
        Two-sided.
    p_method : {"exact", "normal"}
    ties : bool
        Whether either variable has ties (then the normal approximation is used).
    deviates, vi : numpy.ndarray
        The standardised deviates and the variances they were correlated with.
    """

    label: str
    k: int
    tau: float
    statistic: float
    statistic_kind: str
    p_value: float
    p_method: str
    ties: bool
    deviates: np.ndarray = field(repr=False)
    vi: np.ndarray = field(repr=False)
    note: str = ""

    def to_frame(self) -> pd.DataFrame:
        """One row (:data:`RANKTEST_COLUMNS`)."""
        return pd.DataFrame([{c: getattr(self, c) for c in RANKTEST_COLUMNS}],
                            columns=list(RANKTEST_COLUMNS))


def kendall_exact_cdf(k: int) -> np.ndarray:
    """``P(T <= t)`` for ``t = 0 .. k(k-1)/2``, T the number of concordant pairs of ``k``
    untied pairs under independence (the inversions of a uniform random permutation).

    Built one element at a time: adding the ``j``-th element adds 0 .. j-1 inversions with
    equal probability, a moving sum of width ``j`` over the previous distribution.
    """
    pmf = np.ones(1)
    for j in range(2, k + 1):
        cum = np.concatenate([[0.0], np.cumsum(pmf)])
        size = pmf.size + j - 1
        idx = np.arange(size)
        upper = np.minimum(idx + 1, pmf.size)
        lower = np.maximum(idx - j + 1, 0)
        pmf = (cum[upper] - cum[lower]) / j
    return np.minimum(np.cumsum(pmf), 1.0)


def _pair_signs(x: np.ndarray, y: np.ndarray) -> tuple[int, int]:
    i, j = np.triu_indices(x.size, 1)
    s = np.sign(x[j] - x[i]) * np.sign(y[j] - y[i])
    return int(np.sum(s > 0)), int(np.sum(s < 0))


def _tie_sizes(x: np.ndarray) -> np.ndarray:
    _, counts = np.unique(x, return_counts=True)
    return counts[counts > 1].astype(float)


def _kendall(x: np.ndarray, y: np.ndarray, exact: bool) -> tuple[float, float, str, float, str,
                                                                   bool]:
    """(tau_b, statistic, kind, p, p_method, ties) as R's cor.test(method="kendall")."""
    k = x.size
    con, dis = _pair_signs(x, y)
    t0 = k * (k - 1) / 2
    tx, ty = _tie_sizes(x), _tie_sizes(y)
    t1, t2 = np.sum(tx * (tx - 1)) / 2, np.sum(ty * (ty - 1)) / 2
    denominator = np.sqrt((t0 - t1) * (t0 - t2))
    tau = (con - dis) / denominator if denominator > 0 else np.nan
    ties = bool(tx.size or ty.size)
    if exact and not ties and k <= EXACT_KENDALL_MAX_K:
        cdf = kendall_exact_cdf(k)
        q = con
        p = 1 - (cdf[q - 1] if q >= 1 else 0.0) if q > k * (k - 1) / 4 else cdf[q]
        return float(tau), float(q), "T", float(min(1.0, 2 * p)), "exact", ties
    s = con - dis
    var_s = ((k * (k - 1) * (2 * k + 5) - np.sum(tx * (tx - 1) * (2 * tx + 5))
              - np.sum(ty * (ty - 1) * (2 * ty + 5))) / 18
             + np.sum(tx * (tx - 1)) * np.sum(ty * (ty - 1)) / (2 * k * (k - 1))
             + np.sum(tx * (tx - 1) * (tx - 2)) * np.sum(ty * (ty - 1) * (ty - 2))
             / (9 * k * (k - 1) * (k - 2)))
    z = s / np.sqrt(var_s) if var_s > 0 else np.nan
    p = float(2 * min(stats.norm.cdf(z), stats.norm.sf(z))) if np.isfinite(z) else np.nan
    return float(tau), float(z), "z", p, "normal", ties


def ranktest_effects(yi: ArrayLike, vi: ArrayLike, *, exact: bool = True, label: str = "all",
                     effects: EffectSizes | None = None) -> RankTestResult:
    """Rank correlation test from effect sizes (metafor ``ranktest(yi, vi, exact=)``).

    ``exact=True`` (metafor's default) gives the exact p-value when there are no ties
    (and at most :data:`EXACT_KENDALL_MAX_K` studies) and the normal approximation
    otherwise; ``exact=False`` always the approximation.
    """
    y, v = effect_arrays(yi, vi, 1)
    _min_k(y.size, 3, "the rank correlation test")
    w = 1.0 / v
    theta = float(np.sum(w * y) / np.sum(w))
    deviates = (y - theta) / np.sqrt(v - 1.0 / np.sum(w))
    if np.ptp(v) == 0:
        raise DataError("the rank correlation test needs sampling variances that differ "
                        "between studies (all are equal)")
    tau, stat, kind, p, p_method, ties = _kendall(deviates, v, bool(exact))
    note = ""
    if exact and ties:
        note = "ties: normal approximation"
    elif exact and y.size > EXACT_KENDALL_MAX_K:
        note = f"k > {EXACT_KENDALL_MAX_K}: normal approximation"
    return RankTestResult(label, y.size, tau, stat, kind, p, p_method, ties, deviates,
                          v.copy(), _join(note, _correction_note(effects)))


def ranktest(
    data: StudyTable | ArrayLike,
    totals: ArrayLike | None = None,
    *,
    exact: bool = True,
    scale: str = "logit",
    add: float | None = None,
    to: str = "only0",
    outcome: str | None = None,
    subgroup: str | None = None,
    labels: Sequence[object] | None = None,
) -> RankTestResult:
    """Begg and Mazumdar's rank correlation test of single proportions (metafor
    ``ranktest(rma(measure="PLO", xi=, ni=))``); see the module docstring.

    Raises
    ------
    DataError
        Invalid counts or fewer than 3 studies.
    """
    effects = _effects(data, totals, scale=scale, add=add, to=to, outcome=outcome,
                       subgroup=subgroup, labels=labels)
    return ranktest_effects(effects.yi, effects.vi, exact=exact, label=_label(data, subgroup),
                            effects=effects)


# --------------------------------------------------------------------------------------
# Trim and fill
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrimFillResult:
    """Duval and Tweedie's trim and fill (metafor ``trimfill``).

    Attributes
    ----------
    label, scale, method, side, estimator : str
    k, k0 : int
        Observed studies and the estimated number of missing ones.
    se_k0 : float
    iterations : int
    observed, adjusted : PooledEstimate
        The model fitted to the observed studies and to the observed plus filled ones
        (``adjusted is observed`` when ``k0 == 0``).
    labels : tuple of str
        Observed study labels; the filled ones are ``"Filled 1"`` ... (metafor's names).
    yi, vi, totals : numpy.ndarray
        Observed effect sizes, variances and sample sizes.
    filled_yi, filled_vi, filled_totals : numpy.ndarray
        The filled studies, in metafor's order: the mirror images of the k0 most extreme
        studies on the other side, taken from the least to the most extreme.
    filled_from : tuple of str
        The observed study each filled one mirrors.
    """

    label: str
    scale: str
    method: str
    side: str
    estimator: str
    k: int
    k0: int
    se_k0: float
    iterations: int
    observed: PooledEstimate
    adjusted: PooledEstimate
    labels: tuple[str, ...]
    yi: np.ndarray = field(repr=False)
    vi: np.ndarray = field(repr=False)
    totals: np.ndarray = field(repr=False)
    filled_yi: np.ndarray = field(repr=False)
    filled_vi: np.ndarray = field(repr=False)
    filled_totals: np.ndarray = field(repr=False)
    filled_from: tuple[str, ...] = ()
    note: str = ""

    @property
    def filled_labels(self) -> tuple[str, ...]:
        return tuple(f"Filled {i}" for i in range(1, self.k0 + 1))

    def _back(self, pooled: PooledEstimate, totals: np.ndarray) -> tuple[str, np.ndarray]:
        values = back_transform(self.scale, totals)(
            np.array([pooled.estimate, pooled.ci_lower, pooled.ci_upper]))
        return BACK_SCALE[self.scale], values

    def to_frame(self) -> pd.DataFrame:
        """Two rows, ``observed`` and ``trim-and-fill`` (:data:`TRIMFILL_COLUMNS`)."""
        rows = []
        for analysis, pooled, totals in (
                ("observed", self.observed, self.totals),
                ("trim-and-fill", self.adjusted,
                 np.concatenate([self.totals, self.filled_totals]))):
            back_scale, back = self._back(pooled, totals)
            rows.append({
                "label": self.label, "analysis": analysis, "method": pooled.method,
                "side": self.side, "estimator": self.estimator, "k": pooled.k,
                "k0": self.k0, "se_k0": self.se_k0, "estimate": pooled.estimate,
                "se": pooled.se, "ci_lower": pooled.ci_lower, "ci_upper": pooled.ci_upper,
                "p_value": pooled.p_value, "tau2": pooled.tau2, "i2": pooled.i2,
                "back_scale": back_scale, "back_estimate": back[0], "back_ci_lower": back[1],
                "back_ci_upper": back[2], "note": self.note})
        return pd.DataFrame(rows, columns=list(TRIMFILL_COLUMNS))

    def studies_frame(self) -> pd.DataFrame:
        """Observed then filled studies: ``study, estimate, se, total, filled, mirrors``."""
        return pd.DataFrame({
            "study": [*self.labels, *self.filled_labels],
            "estimate": np.concatenate([self.yi, self.filled_yi]),
            "se": np.sqrt(np.concatenate([self.vi, self.filled_vi])),
            "total": np.concatenate([self.totals, self.filled_totals]),
            "filled": [False] * self.k + [True] * self.k0,
            "mirrors": [""] * self.k + list(self.filled_from),
        })


def _trimfill_side(y: np.ndarray, v: np.ndarray, method: str, threshold: float) -> str:
    design = _design(np.sqrt(v), "sei")
    if method == "FE":  # the fixed-effect meta-regression's slope is the WLS slope
        slope = _weighted_lm(y, v, design.X)[0][1]
    else:
        slope = fit_meta_regression(y, v, design, method=method,
                                    threshold=threshold).estimates[1]
    return "right" if slope < 0 else "left"


def trimfill_effects(yi: ArrayLike, vi: ArrayLike, ni: ArrayLike | None = None, *,
                     side: str | None = None, estimator: str = "L0", method: str = "REML",
                     level: float = 0.95, maxiter: int = 100, threshold: float = 1e-10,
                     labels: Sequence[object] | None = None, scale: str = "logit",
                     label: str = "all", effects: EffectSizes | None = None
                     ) -> TrimFillResult:
    """Trim and fill from effect sizes (metafor ``trimfill(rma(yi, vi, method=))``).

    Parameters
    ----------
    side : {"left", "right"}, optional
        Where studies are missing; by default from the sign of the regression slope on
        the standard error (module docstring).
    estimator : {"L0", "R0"}
    method : {"REML", "ML", "DL", "FE"}
        The model pooled in every iteration and refitted to the filled data.
    ni : array-like, optional
        Sample sizes (carried to the filled studies; default ``nan``).
    scale : str
        The scale of ``yi`` (for the back-transform in ``to_frame``).
    """
    if estimator not in TRIMFILL_ESTIMATORS:
        raise SpecError(f"estimator: {estimator!r} is not one of "
                        f"{', '.join(TRIMFILL_ESTIMATORS)}")
    if side not in (None, "left", "right"):
        raise SpecError(f"side: {side!r} is not 'left', 'right' or None (automatic)")
    method = _check_method(method)
    level = check_level(level)
    y0, v0 = effect_arrays(yi, vi, 1)
    k = y0.size
    _min_k(k, 3, "trim and fill")
    n0 = _sizes(ni, k)
    n0 = np.full(k, np.nan) if n0 is None else n0
    names = (tuple(str(x) for x in labels) if labels is not None
             else tuple(str(i) for i in range(1, k + 1)))
    if len(names) != k:
        raise DataError(f"labels: {len(names)} labels for {k} studies")
    if side is None:
        side = _trimfill_side(y0, v0, method, threshold)
    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * y0, kind="stable")
    y, v = sign * y0[order], v0[order]

    k0, k0_previous, iterations, mu, se_k0 = 0, -1, 0, 0.0, 0.0
    while k0 != k0_previous:
        k0_previous = k0
        iterations += 1
        if iterations > maxiter:
            raise DataError(f"trim and fill did not converge in {maxiter} iterations")
        mu = pool(y[:k - k0], v[:k - k0], method=method, level=level,
                  threshold=threshold).estimate
        centred = y - mu
        ranks = np.empty(k)
        ranks[np.argsort(np.abs(centred), kind="stable")] = np.arange(1, k + 1)
        signed = np.sign(centred) * ranks
        if estimator == "L0":
            sr = float(np.sum(signed[signed > 0]))
            raw = (4 * sr - k * (k + 1)) / (2 * k - 1)
            var_sr = (k * (k + 1) * (2 * k + 1) + 10 * raw**3 + 27 * raw**2 + 17 * raw
                      - 18 * k * raw**2 - 18 * k * raw + 6 * k**2 * raw) / 24
            se_k0 = 4 * np.sqrt(var_sr) / (2 * k - 1) if var_sr > 0 else 0.0
        else:
            negative = -signed[signed < 0]
            raw = k - (negative.max() if negative.size else 0.0) - 1
            se_k0 = np.sqrt(2 * max(0.0, raw) + 2)
        k0 = max(0, round(raw))
        se_k0 = max(0.0, float(se_k0))
        if k0 >= k:  # pragma: no cover - L0 <= k-1/2 and R0 <= k-1 by construction
            raise DataError("trim and fill estimated as many missing studies as observed")

    observed = pool(y0, v0, method=method, level=level, threshold=threshold)
    mirrored = order[k - k0:]
    filled_yi = sign * (2 * mu - y[k - k0:])
    filled_vi, filled_n = v0[mirrored], n0[mirrored]
    if k0 > 0:
        adjusted = pool(np.concatenate([y0, filled_yi]), np.concatenate([v0, filled_vi]),
                        method=method, level=level, threshold=threshold)
    else:
        adjusted = observed
    note = _join(observed.note, _correction_note(effects))
    return TrimFillResult(label, scale, method, side, estimator, k, int(k0), se_k0,
                          iterations, observed, adjusted, names, y0.copy(), v0.copy(),
                          n0.copy(), filled_yi, filled_vi, filled_n,
                          tuple(names[i] for i in mirrored), note)


def trimfill(
    data: StudyTable | ArrayLike,
    totals: ArrayLike | None = None,
    *,
    side: str | None = None,
    estimator: str = "L0",
    method: str = "REML",
    scale: str = "logit",
    add: float | None = None,
    to: str = "only0",
    level: float = 0.95,
    maxiter: int = 100,
    outcome: str | None = None,
    subgroup: str | None = None,
    labels: Sequence[object] | None = None,
    threshold: float = 1e-10,
) -> TrimFillResult:
    """Trim and fill of single proportions (metafor
    ``trimfill(rma(measure="PLO", xi=, ni=, method=), side=, estimator=)``).

    See :func:`trimfill_effects` and the module docstring; counts and the continuity
    correction as :func:`~bayes_poem.frequentist.pool_proportions`.
    """
    effects = _effects(data, totals, scale=scale, add=add, to=to, outcome=outcome,
                       subgroup=subgroup, labels=labels)
    return trimfill_effects(effects.yi, effects.vi, effects.totals, side=side,
                            estimator=estimator, method=method, level=level, maxiter=maxiter,
                            threshold=threshold, labels=effects.labels, scale=scale,
                            label=_label(data, subgroup), effects=effects)


# --------------------------------------------------------------------------------------
# Cumulative meta-analysis
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CumulativeResult:
    """Cumulative meta-analysis (metafor ``cumul``): one pooled estimate per added study.

    Attributes
    ----------
    label, scale, method, order_by : str
        ``order_by`` is the ordering column (or ``"input order"``/``"values"``).
    studies : tuple of str
        Study labels in the order added.
    order_values : tuple
        The ordering values in that order.
    steps : tuple of PooledEstimate
        The pooled estimate after each added study.
    totals : numpy.ndarray
        Sample sizes in that order (for the double-arcsine back-transform).
    """

    label: str
    scale: str
    method: str
    order_by: str
    studies: tuple[str, ...]
    order_values: tuple[object, ...]
    steps: tuple[PooledEstimate, ...] = field(repr=False)
    totals: np.ndarray = field(repr=False)
    note: str = ""

    def to_frame(self) -> pd.DataFrame:
        """One row per step (:data:`CUMULATIVE_COLUMNS`)."""
        rows = []
        for j, (study, value, p) in enumerate(zip(self.studies, self.order_values, self.steps,
                                                  strict=True), start=1):
            back = back_transform(self.scale, self.totals[:j])(
                np.array([p.estimate, p.ci_lower, p.ci_upper]))
            rows.append({
                "label": self.label, "step": j, "study": study, "order": value, "k": p.k,
                "method": p.method, "estimate": p.estimate, "se": p.se, "z": p.z,
                "p_value": p.p_value, "ci_lower": p.ci_lower, "ci_upper": p.ci_upper,
                "q": p.q, "q_pvalue": p.q_pvalue, "tau2": p.tau2, "i2": p.i2, "h2": p.h2,
                "back_scale": BACK_SCALE[self.scale], "back_estimate": back[0],
                "back_ci_lower": back[1], "back_ci_upper": back[2]})
        return pd.DataFrame(rows, columns=list(CUMULATIVE_COLUMNS))


def _order_key(values: Sequence[object], name: str, source: str, labels: Sequence[str],
               rows: Sequence[int] | None = None) -> tuple[np.ndarray, tuple[object, ...]]:
    """Sort positions (stable) and the values, numeric when every value is a number."""
    text = []
    rows = list(rows) if rows is not None else list(range(1, len(values) + 1))
    for i, value, label in zip(rows, values, labels, strict=True):
        missing = value is None or value is pd.NA or (isinstance(value, float)
                                                      and np.isnan(value))
        if missing or (isinstance(value, str) and not value.strip()):
            raise DataError(f"{source}: row {i} (study {label!r}), column '{name}': missing "
                            "value (every study needs a value to be ordered by)")
        text.append(value.strip() if isinstance(value, str) else value)
    try:
        numbers = np.array([float(t) for t in text])
    except (TypeError, ValueError):
        levels = sorted_levels({str(t) for t in text})
        rank = {level: i for i, level in enumerate(levels)}
        key = np.array([rank[str(t)] for t in text], dtype=float)
        return np.argsort(key, kind="stable"), tuple(str(t) for t in text)
    shown = tuple(int(x) if float(x).is_integer() else float(x) for x in numbers)
    return np.argsort(numbers, kind="stable"), shown


def cumulative_effects(yi: ArrayLike, vi: ArrayLike, *, order: Sequence[object] | None = None,
                       decreasing: bool = False, method: str = "REML", level: float = 0.95,
                       threshold: float = 1e-10, labels: Sequence[object] | None = None,
                       totals: ArrayLike | None = None, scale: str = "logit",
                       order_by: str = "values", label: str = "all",
                       effects: EffectSizes | None = None) -> CumulativeResult:
    """Cumulative meta-analysis from effect sizes (metafor ``cumul(rma(yi, vi), order=)``).

    ``order`` holds one value per study (numbers, or text sorted as R's ``factor``);
    ``None`` keeps the input order. Ties keep the input order; ``decreasing`` reverses
    the sort (ties still in input order, as R's ``order(decreasing=TRUE)``).
    """
    method = _check_method(method)
    level = check_level(level)
    y, v = effect_arrays(yi, vi, 1)
    k = y.size
    names = (tuple(str(x) for x in labels) if labels is not None
             else tuple(str(i) for i in range(1, k + 1)))
    if len(names) != k:
        raise DataError(f"labels: {len(names)} labels for {k} studies")
    n = _sizes(totals, k)
    n = np.full(k, np.nan) if n is None else n
    if order is None:
        positions, values = np.arange(k), tuple(range(1, k + 1))
        order_by = "input order"
    else:
        if isinstance(order, str) or np.ndim(order) != 1 or len(order) != k:
            raise DataError(f"order: pass one value per study ({k})")
        positions, values = _order_key(list(order), order_by, "arrays", names)
        if decreasing:  # reverse the sort, keeping ties in input order
            sorted_values = [values[i] for i in positions]
            groups: dict[object, list[int]] = {}
            for pos, value in zip(positions, sorted_values, strict=True):
                groups.setdefault(value, []).append(int(pos))
            positions = np.array([p for g in reversed(list(groups.values())) for p in g])
    steps = tuple(pool(y[positions[:j]], v[positions[:j]], method=method, level=level,
                       threshold=threshold) for j in range(1, k + 1))
    return CumulativeResult(label, scale, method, order_by,
                            tuple(names[i] for i in positions),
                            tuple(values[i] for i in positions), steps, n[positions],
                            _correction_note(effects))


def cumulative(
    data: StudyTable | ArrayLike,
    totals: ArrayLike | None = None,
    *,
    order: str | Sequence[object] | None = "year",
    decreasing: bool = False,
    method: str = "REML",
    scale: str = "logit",
    add: float | None = None,
    to: str = "only0",
    level: float = 0.95,
    outcome: str | None = None,
    subgroup: str | None = None,
    labels: Sequence[object] | None = None,
    threshold: float = 1e-10,
) -> CumulativeResult:
    """Cumulative meta-analysis of single proportions (metafor
    ``cumul(rma(measure="PLO", xi=, ni=, method=), order=year)``).

    Parameters
    ----------
    order : str, sequence or None
        With a table, the column to order by (default ``"year"``); with arrays, one
        value per study. ``None``: the input order.
    decreasing : bool
        Latest first.
    method : {"REML", "ML", "DL", "FE"}

    Raises
    ------
    DataError
        Invalid counts, an ordering column that is missing or has a missing value.
    SpecError
        A column name with array input.
    """
    effects = _effects(data, totals, scale=scale, add=add, to=to, outcome=outcome,
                       subgroup=subgroup, labels=labels)
    values: Sequence[object] | None = None
    order_by = "values"
    if isinstance(data, StudyTable) and isinstance(order, str):
        selected = _select(data, outcome, subgroup)
        frame = data.frame
        mask = ((frame["outcome"] == selected.outcomes[0])
                & (frame["subgroup"] == selected.subgroups[0])).to_numpy()
        if order not in frame.columns:
            columns = ", ".join(c for c in frame.columns if c not in NOT_MODERATORS
                                and c != "subgroup") or "(none)"
            raise DataError(f"{data.source}: column '{order}' not found; columns to order "
                            f"by: {columns}")
        values, order_by = frame.loc[mask, order].tolist(), order
        rows = [int(i) + 1 for i in np.flatnonzero(mask)]
        _order_key(values, order, data.source, list(effects.labels), rows)
    elif isinstance(order, str):
        raise SpecError(f"order={order!r} names a table column; with array input pass the "
                        "ordering values (e.g. the years) or order=None")
    else:
        values = order
    return cumulative_effects(effects.yi, effects.vi, order=values, decreasing=decreasing,
                              method=method, level=level, threshold=threshold,
                              labels=effects.labels, totals=effects.totals, scale=scale,
                              order_by=order_by, label=_label(data, subgroup),
                              effects=effects)


# --------------------------------------------------------------------------------------
# Funnel plot data
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FunnelData:
    """What a funnel plot draws (metafor ``funnel``).

    Attributes
    ----------
    label, scale, yaxis, method : str
        ``yaxis`` is ``"sei"`` (standard error) or ``"sqrtninv"`` (1/sqrt(n)).
    reference : float
        The pooled estimate (vertical line): the model's, or the trim-and-fill one.
    points : DataFrame
        ``study, estimate, se, total, y, filled, corrected`` (``y`` is the vertical
        coordinate; filled studies last).
    contours : DataFrame
        ``level, y, lower, upper``: the pseudo-confidence region at each level (empty
        for the sample-size axis).
    k0 : int
        Filled studies (0 without trim and fill).
    """

    label: str
    scale: str
    yaxis: str
    method: str
    reference: float
    points: pd.DataFrame = field(repr=False)
    contours: pd.DataFrame = field(repr=False)
    k0: int = 0
    note: str = ""

    def to_frame(self) -> pd.DataFrame:
        """The points (:data:`FUNNEL_POINT_COLUMNS`)."""
        return self.points.copy()


def funnel_effects(yi: ArrayLike, vi: ArrayLike, ni: ArrayLike | None = None, *,
                   yaxis: str = "sei", method: str = "REML", levels: Sequence[float] = (0.95,),
                   fill: bool = False, side: str | None = None, threshold: float = 1e-10,
                   labels: Sequence[object] | None = None,
                   corrected: ArrayLike | None = None, scale: str = "logit",
                   label: str = "all", n_grid: int = 101) -> FunnelData:
    """Funnel-plot data from effect sizes (see :class:`FunnelData`).

    With ``fill=True`` the studies filled by :func:`trimfill_effects` (same ``method``,
    ``side``) are added (``filled`` True) and the reference line is the adjusted
    estimate, as metafor's ``funnel(trimfill(res))``.
    """
    if yaxis not in FUNNEL_YAXES:
        raise SpecError(f"yaxis: {yaxis!r} is not one of {', '.join(FUNNEL_YAXES)}")
    method = _check_method(method)
    checked = tuple(check_level(lv) for lv in levels)
    y, v = effect_arrays(yi, vi, 1)
    k = y.size
    given = _sizes(ni, k)
    if yaxis == "sqrtninv" and given is None:
        raise SpecError("yaxis='sqrtninv' needs the sample sizes (ni=)")
    n = np.full(k, np.nan) if given is None else given
    names = (tuple(str(x) for x in labels) if labels is not None
             else tuple(str(i) for i in range(1, k + 1)))
    flags = (np.zeros(k, dtype=bool) if corrected is None
             else np.asarray(corrected, dtype=bool))
    if fill:
        tf = trimfill_effects(y, v, given, side=side, method=method, threshold=threshold,
                              labels=names, scale=scale, label=label)
        reference, k0, note = tf.adjusted.estimate, tf.k0, tf.note
        y_all = np.concatenate([y, tf.filled_yi])
        v_all = np.concatenate([v, tf.filled_vi])
        n_all = np.concatenate([n, tf.filled_totals])
        names_all = (*names, *tf.filled_labels)
        flags = np.concatenate([flags, np.zeros(k0, dtype=bool)])
    else:
        fitted = pool(y, v, method=method, threshold=threshold)
        reference, k0, note = fitted.estimate, 0, fitted.note
        y_all, v_all, n_all, names_all = y, v, n, names
    se = np.sqrt(v_all)
    vertical = se if yaxis == "sei" else 1 / np.sqrt(n_all)
    points = pd.DataFrame({
        "study": list(names_all), "estimate": y_all, "se": se, "total": n_all, "y": vertical,
        "filled": [False] * k + [True] * k0, "corrected": flags,
    }, columns=list(FUNNEL_POINT_COLUMNS))
    rows = []
    if yaxis == "sei":
        grid = np.linspace(0.0, float(se.max()), n_grid)
        for lv in checked:
            crit = stats.norm.ppf(0.5 + lv / 2)
            rows.append(pd.DataFrame({"level": lv, "y": grid, "lower": reference - crit * grid,
                                      "upper": reference + crit * grid}))
    contours = (pd.concat(rows, ignore_index=True) if rows
                else pd.DataFrame(columns=list(FUNNEL_CONTOUR_COLUMNS)))
    return FunnelData(label, scale, yaxis, method, float(reference), points, contours, k0,
                      note)


def funnel_data(
    data: StudyTable | ArrayLike,
    totals: ArrayLike | None = None,
    *,
    yaxis: str = "sei",
    method: str = "REML",
    levels: Sequence[float] = (0.95,),
    fill: bool = False,
    side: str | None = None,
    scale: str = "logit",
    add: float | None = None,
    to: str = "only0",
    outcome: str | None = None,
    subgroup: str | None = None,
    labels: Sequence[object] | None = None,
    threshold: float = 1e-10,
) -> FunnelData:
    """Funnel-plot data of single proportions: observed effect sizes (logit by default,
    0.5 added to zero cells) against their SE (or ``yaxis="sqrtninv"``: 1/sqrt(n)), the
    pooled estimate and pseudo-confidence contours; trim-and-fill studies with
    ``fill=True``. Draw with :func:`bayes_poem.bias_plots.funnel_plot`.
    """
    effects = _effects(data, totals, scale=scale, add=add, to=to, outcome=outcome,
                       subgroup=subgroup, labels=labels)
    result = funnel_effects(effects.yi, effects.vi, effects.totals, yaxis=yaxis,
                            method=method, levels=levels, fill=fill, side=side,
                            threshold=threshold, labels=effects.labels,
                            corrected=effects.corrected, scale=scale,
                            label=_label(data, subgroup))
    return replace(result, note=_join(result.note, _correction_note(effects)))
