r"""Between-study variance :math:`\tau^2`: DerSimonian-Laird, REML, ML; Q-profile CI.

Notation (intercept-only model, :math:`k` studies): effect sizes :math:`y_i`,
sampling variances :math:`v_i`, weights :math:`w_i(\tau^2) = 1/(v_i + \tau^2)`,
:math:`S_r = \sum_i w_i^r`, weighted mean :math:`\hat\mu(\tau^2) = \sum w_i y_i / S_1`,
and the generalised Q statistic

.. math:: Q(\tau^2) = \sum_i w_i(\tau^2)\,\{y_i - \hat\mu(\tau^2)\}^2,

so Cochran's Q is :math:`Q(0)`. With :math:`P = W - w w^\top / S_1`:
:math:`\operatorname{tr}P = S_1 - S_2/S_1`, :math:`\operatorname{tr}P^2 = S_2 -
2 S_3/S_1 + S_2^2/S_1^2` and :math:`y^\top P^2 y = \sum w_i^2 (y_i - \hat\mu)^2`.

DerSimonian-Laird (1986)
    :math:`\hat\tau^2 = \max\{0, (Q(0) - (k-1)) / (S_1 - S_2/S_1)\}` with :math:`w_i = 1/v_i`.
REML and ML (Viechtbauer 2005)
    Fisher scoring as in metafor's ``rma.uni``: start at the Hedges (HE) estimate
    :math:`\max\{0, \sum(y_i-\bar y)^2/(k-1) - \bar v\}`, update
    :math:`\tau^2 \leftarrow \tau^2 + \delta` with
    :math:`\delta_{REML} = (y^\top P^2 y - \operatorname{tr}P)/\operatorname{tr}P^2` and
    :math:`\delta_{ML} = (y^\top P^2 y - S_1)/S_2`, halving :math:`\delta` while
    :math:`\tau^2 + \delta < 0`, until :math:`|\delta| <` ``threshold``. metafor uses
    ``threshold = 1e-5``; the default here is ``1e-10`` (the same root, more digits).
    As in metafor, if the (restricted) log-likelihood is larger at :math:`\tau^2 = 0`,
    :math:`\tau^2 = 0` is returned.
Q-profile confidence interval (Viechtbauer 2007)
    :math:`Q(\tau^2)` decreases monotonically in :math:`\tau^2`; the
    :math:`100(1-\alpha)\%` CI is :math:`\{\tau^2 \ge 0: \chi^2_{k-1,\alpha/2} \le
    Q(\tau^2) \le \chi^2_{k-1,1-\alpha/2}\}`. The lower bound solves
    :math:`Q(\tau^2_L) = \chi^2_{k-1,1-\alpha/2}` (0 if :math:`Q(0)` is below that
    quantile), the upper bound solves :math:`Q(\tau^2_U) = \chi^2_{k-1,\alpha/2}`
    (both 0 if :math:`Q(0) < \chi^2_{k-1,\alpha/2}`: the interval is then empty and
    reported as [0, 0] with a note, as metafor does).

References
----------
DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials
1986;7:177-88.
Viechtbauer W. Bias and efficiency of meta-analytic variance estimators in the
random-effects model. J Educ Behav Stat 2005;30:261-93.
Viechtbauer W. Confidence intervals for the amount of heterogeneity in
meta-analysis. Stat Med 2007;26:37-52.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats

from bayes_poem.errors import SpecError
from bayes_poem.frequentist.inputs import effect_arrays

__all__ = [
    "TAU2_METHODS",
    "Tau2Estimate",
    "Tau2Interval",
    "estimate_tau2",
    "generalised_q",
    "q_profile_ci",
    "tau2_dl",
    "tau2_he",
    "tau2_ml",
    "tau2_reml",
]

TAU2_METHODS = ("DL", "REML", "ML")


@dataclass(frozen=True)
class Tau2Estimate:
    """An estimate of :math:`\\tau^2` with its standard error (metafor's ``se.tau2``)."""

    method: str
    tau2: float
    se: float
    iterations: int = 0
    converged: bool = True
    note: str = ""


@dataclass(frozen=True)
class Tau2Interval:
    """Q-profile confidence interval for :math:`\\tau^2`."""

    lower: float
    upper: float
    level: float
    note: str = ""


def generalised_q(tau2: float, yi: ArrayLike, vi: ArrayLike) -> float:
    r""":math:`Q(\tau^2) = \sum w_i (y_i - \hat\mu)^2`, :math:`w_i = 1/(v_i + \tau^2)`."""
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    w = 1.0 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    return float(np.sum(w * (y - mu) ** 2))


def tau2_he(yi: ArrayLike, vi: ArrayLike) -> float:
    r"""Hedges' estimator :math:`\sum(y_i - \bar y)^2/(k-1) - \bar v` (may be negative)."""
    y, v = effect_arrays(yi, vi, 2)
    return float(np.sum((y - y.mean()) ** 2) / (y.size - 1) - v.mean())


def tau2_dl(yi: ArrayLike, vi: ArrayLike) -> Tau2Estimate:
    """DerSimonian-Laird moment estimator, truncated at 0 (see module docstring)."""
    y, v = effect_arrays(yi, vi, 2)
    k = y.size
    w = 1.0 / v
    s1, s2 = w.sum(), np.sum(w**2)
    tr_p = s1 - s2 / s1
    q = generalised_q(0.0, y, v)
    tau2 = max(0.0, (q - (k - 1)) / tr_p)
    # metafor: se.tau2 = sqrt(1/trP^2 * (2(k-1) + 4 tau2 trP + 2 tau2^2 tr(P^2))), FE weights
    tr_pp = s2 - 2 * np.sum(w**3) / s1 + s2**2 / s1**2
    se = np.sqrt((2 * (k - 1) + 4 * tau2 * tr_p + 2 * tau2**2 * tr_pp) / tr_p**2)
    return Tau2Estimate("DL", float(tau2), float(se))


def _loglik(tau2: float, y: np.ndarray, v: np.ndarray, reml: bool) -> float:
    w = 1.0 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    rss = np.sum(w * (y - mu) ** 2)
    k = y.size
    if reml:
        return float(-0.5 * (k - 1) * np.log(2 * np.pi) - 0.5 * np.sum(np.log(v + tau2))
                     - 0.5 * np.log(np.sum(w)) - 0.5 * rss)
    return float(-0.5 * k * np.log(2 * np.pi) - 0.5 * np.sum(np.log(v + tau2)) - 0.5 * rss)


def _score_step(tau2: float, y: np.ndarray, v: np.ndarray, reml: bool) -> tuple[float, float]:
    """Fisher-scoring step and the information-based SE of tau^2 at ``tau2``."""
    w = 1.0 / (v + tau2)
    s1, s2, s3 = w.sum(), np.sum(w**2), np.sum(w**3)
    mu = np.sum(w * y) / s1
    ypp_y = np.sum(w**2 * (y - mu) ** 2)
    if reml:
        tr_p = s1 - s2 / s1
        tr_pp = s2 - 2 * s3 / s1 + s2**2 / s1**2
        return (ypp_y - tr_p) / tr_pp, np.sqrt(2.0 / tr_pp)
    return (ypp_y - s1) / s2, np.sqrt(2.0 / s2)


def _fisher_scoring(yi: ArrayLike, vi: ArrayLike, reml: bool, threshold: float,
                    maxiter: int, tau2_init: float | None) -> Tau2Estimate:
    y, v = effect_arrays(yi, vi, 2)
    method = "REML" if reml else "ML"
    if not threshold > 0:
        raise SpecError(f"threshold: {threshold!r} must be > 0")
    tau2 = max(0.0, tau2_he(y, v)) if tau2_init is None else max(0.0, float(tau2_init))
    converged, iterations, note = False, 0, ""
    for iterations in range(1, maxiter + 1):  # noqa: B007 - iterations used after the loop
        step, _ = _score_step(tau2, y, v, reml)
        while tau2 + step < 0:
            step /= 2
        tau2 += step
        if abs(step) <= threshold:
            converged = True
            break
    if not converged:
        # a bounded one-dimensional maximisation of the same likelihood as fallback
        upper = 10 * max(np.var(y, ddof=1), v.max()) + 1.0
        res = optimize.minimize_scalar(lambda t: -_loglik(t, y, v, reml), bounds=(0.0, upper),
                                       method="bounded", options={"xatol": threshold})
        tau2 = float(res.x)
        converged = bool(res.success)
        note = f"Fisher scoring did not converge in {maxiter} steps; bounded search used"
    if tau2 > 0 and _loglik(0.0, y, v, reml) - _loglik(tau2, y, v, reml) > 1e-10:
        tau2 = 0.0
        note = "log-likelihood larger at tau^2 = 0; tau^2 set to 0"
    _, se = _score_step(tau2, y, v, reml)
    return Tau2Estimate(method, float(tau2), float(se), iterations, converged, note)


def tau2_reml(yi: ArrayLike, vi: ArrayLike, *, threshold: float = 1e-10, maxiter: int = 1000,
              tau2_init: float | None = None) -> Tau2Estimate:
    """Restricted maximum-likelihood estimate by Fisher scoring (see module docstring)."""
    return _fisher_scoring(yi, vi, True, threshold, maxiter, tau2_init)


def tau2_ml(yi: ArrayLike, vi: ArrayLike, *, threshold: float = 1e-10, maxiter: int = 1000,
            tau2_init: float | None = None) -> Tau2Estimate:
    """Maximum-likelihood estimate by Fisher scoring (see module docstring)."""
    return _fisher_scoring(yi, vi, False, threshold, maxiter, tau2_init)


def estimate_tau2(yi: ArrayLike, vi: ArrayLike, method: str = "REML", *,
                  threshold: float = 1e-10) -> Tau2Estimate:
    """Dispatch to :func:`tau2_dl`, :func:`tau2_reml` or :func:`tau2_ml` by ``method``."""
    method = str(method).upper()
    if method == "DL":
        return tau2_dl(yi, vi)
    if method == "REML":
        return tau2_reml(yi, vi, threshold=threshold)
    if method == "ML":
        return tau2_ml(yi, vi, threshold=threshold)
    raise SpecError(f"method: {method!r} is not one of {', '.join(TAU2_METHODS)}")


def _solve(target: float, y: np.ndarray, v: np.ndarray, lo: float) -> float:
    """The tau^2 >= lo where the decreasing Q(tau^2) equals ``target``."""
    hi = max(1.0, 10 * lo)
    while generalised_q(hi, y, v) > target:
        hi *= 2
        if hi > 1e12:
            return np.inf
    return float(optimize.brentq(lambda t: generalised_q(t, y, v) - target, lo, hi,
                                 xtol=1e-14, rtol=1e-13, maxiter=500))


def q_profile_ci(yi: ArrayLike, vi: ArrayLike, level: float = 0.95) -> Tau2Interval:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007; see module docstring)."""
    y, v = effect_arrays(yi, vi, 2)
    alpha = 1 - level
    df = y.size - 1
    crit_upper = stats.chi2.ppf(1 - alpha / 2, df)  # defines the lower bound
    crit_lower = stats.chi2.ppf(alpha / 2, df)  # defines the upper bound
    q0 = generalised_q(0.0, y, v)
    if q0 < crit_lower:
        return Tau2Interval(0.0, 0.0, level, "Q(0) is below the lower chi-square quantile: "
                            "both bounds are below 0 (interval empty, reported as [0, 0])")
    lower = 0.0 if q0 <= crit_upper else _solve(crit_upper, y, v, 0.0)
    upper = _solve(crit_lower, y, v, lower)
    return Tau2Interval(lower, upper, level)
