r"""Tests of funnel-plot asymmetry: Egger's regression test and Begg's rank test, as
metafor's ``regtest`` and ``ranktest``.

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

See :mod:`bayes_poem.frequentist.bias` for the notation and the references.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist.bias_common import (
    EXACT_KENDALL_MAX_K,
    RANKTEST_COLUMNS,
    REGTEST_COLUMNS,
    REGTEST_MODELS,
    REGTEST_PREDICTORS,
    bias_effects,
    correction_note,
    join_notes,
    require_k,
    sample_sizes,
    subgroup_label,
)
from bayes_poem.frequentist.inputs import check_level, effect_arrays
from bayes_poem.frequentist.metareg import METAREG_METHODS, fit_meta_regression
from bayes_poem.frequentist.moderators import INTERCEPT, Design
from bayes_poem.frequentist.transforms import (
    EffectSizes,
)
from bayes_poem.table import StudyTable

__all__ = [
    "RankTestResult",
    "RegTestResult",
    "kendall_exact_cdf",
    "ranktest",
    "ranktest_effects",
    "regtest",
    "regtest_effects",
    "slope_design",
    "weighted_lm",
]


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


def slope_design(x: np.ndarray, name: str) -> Design:
    if np.ptp(x) == 0:
        raise DataError(f"the predictor {name} is the same for every study; the regression "
                        "test cannot be computed")
    return Design(np.column_stack([np.ones_like(x), x]), (INTERCEPT, name), (name,),
                  {name: "numeric"})


def weighted_lm(y: np.ndarray, v: np.ndarray, X: np.ndarray
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
    require_k(y.size, 3, "the regression test")
    n = sample_sizes(ni, y.size)
    design = slope_design(_predictor_values(predictor, v, n), predictor)
    limit = predictor in REGTEST_PREDICTORS[:4]
    note = correction_note(effects)
    if model == "lm":
        beta, se, df = weighted_lm(y, v, design.X)
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
        join_notes(fit.note, note))


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
    effects = bias_effects(data, totals, scale=scale, add=add, to=to, outcome=outcome,
                           subgroup=subgroup, labels=labels)
    return regtest_effects(effects.yi, effects.vi, effects.totals, predictor=predictor,
                           model=model, method=method, test=test, level=level,
                           threshold=threshold, label=subgroup_label(data, subgroup),
                           effects=effects)


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
    require_k(y.size, 3, "the rank correlation test")
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
                          v.copy(), join_notes(note, correction_note(effects)))


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
    effects = bias_effects(data, totals, scale=scale, add=add, to=to, outcome=outcome,
                           subgroup=subgroup, labels=labels)
    return ranktest_effects(effects.yi, effects.vi, exact=exact,
                            label=subgroup_label(data, subgroup), effects=effects)
