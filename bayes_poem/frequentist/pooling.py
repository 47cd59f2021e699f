r"""Inverse-variance pooling: fixed (common) effect and random effects.

With effect sizes :math:`y_i`, sampling variances :math:`v_i` and weights
:math:`w_i = 1/(v_i + \hat\tau^2)` (:math:`\hat\tau^2 = 0` for the fixed-effect model):

.. math::

    \hat\mu = \frac{\sum w_i y_i}{\sum w_i}, \qquad
    \operatorname{SE}(\hat\mu) = \Bigl(\sum w_i\Bigr)^{-1/2}, \qquad
    \hat\mu \pm z_{1-\alpha/2}\operatorname{SE}(\hat\mu).

Prediction interval (metafor's ``predict``): :math:`\hat\mu \pm z_{1-\alpha/2}
\sqrt{\operatorname{SE}(\hat\mu)^2 + \hat\tau^2}` (equal to the CI for the fixed-effect model).

Heterogeneity (Cochran 1954; Higgins & Thompson 2002), with :math:`w_i = 1/v_i`:
Cochran's :math:`Q = \sum w_i (y_i - \hat\mu_{FE})^2` on :math:`k-1` degrees of freedom,
p-value :math:`P(\chi^2_{k-1} > Q)`. :math:`I^2` and :math:`H^2` follow metafor:

* fixed-effect model: :math:`I^2 = \max\{0, 100 (Q - (k-1))/Q\}`, :math:`H^2 = Q/(k-1)`;
* random-effects model: :math:`I^2 = 100\,\hat\tau^2/(\hat\tau^2 + s^2)`,
  :math:`H^2 = 1 + \hat\tau^2/s^2`, with the typical within-study variance
  :math:`s^2 = (k-1)\sum w_i / \{(\sum w_i)^2 - \sum w_i^2\}`.

For the DerSimonian-Laird estimate both definitions coincide. With a single study
:math:`\tau^2`, :math:`I^2`, :math:`H^2` and the prediction interval are undefined
(``nan``) and the fixed-effect result is returned with a note.

References
----------
Higgins JPT, Thompson SG. Quantifying heterogeneity in a meta-analysis.
Stat Med 2002;21:1539-58.
DerSimonian R, Laird N. Control Clin Trials 1986;7:177-88.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from bayes_poem.errors import SpecError
from bayes_poem.frequentist.inputs import check_level, effect_arrays
from bayes_poem.frequentist.tau2 import TAU2_METHODS, estimate_tau2, q_profile_ci

__all__ = ["METHODS", "Heterogeneity", "PooledEstimate", "fixed_effect", "heterogeneity",
           "pool", "random_effects"]

METHODS = ("FE", *TAU2_METHODS)
SINGLE_STUDY_NOTE = ("single study: tau^2, I^2, H^2 and the prediction interval are not "
                     "estimable; fixed-effect result returned")


@dataclass(frozen=True)
class Heterogeneity:
    """Cochran's Q test and the fixed-effect :math:`I^2`, :math:`H^2` (Higgins-Thompson)."""

    q: float
    q_df: int
    q_pvalue: float
    i2: float
    h2: float
    s2: float  # typical within-study variance


@dataclass(frozen=True)
class PooledEstimate:
    """A pooled estimate on the analysis scale.

    Attributes
    ----------
    model : {"fixed", "random"}
    method : {"FE", "DL", "REML", "ML"}
    k : int
        Number of studies.
    estimate, se, z, p_value : float
        :math:`\\hat\\mu`, its standard error, Wald z and two-sided p-value (H0: mu = 0).
    ci_lower, ci_upper, pi_lower, pi_upper : float
        Confidence and prediction interval at ``level``.
    tau2, tau2_se, tau2_ci_lower, tau2_ci_upper : float
        Between-study variance, its SE and Q-profile CI (0 for the fixed-effect model,
        ``nan`` when not estimable).
    i2, h2 : float
        :math:`I^2` (percent) and :math:`H^2` of this model (see module docstring).
    q, q_df, q_pvalue : float, int, float
        Cochran's Q test of homogeneity.
    weights : numpy.ndarray
        Relative weights in percent.
    level : float
    note : str
        Anything the reader must know (single study, boundary estimate, ...).
    """

    model: str
    method: str
    k: int
    estimate: float
    se: float
    z: float
    p_value: float
    ci_lower: float
    ci_upper: float
    pi_lower: float
    pi_upper: float
    tau2: float
    tau2_se: float
    tau2_ci_lower: float
    tau2_ci_upper: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_pvalue: float
    weights: np.ndarray = field(repr=False)
    level: float = 0.95
    note: str = ""

    def to_frame(self) -> pd.DataFrame:
        """One row with every field except ``weights`` (named as in ``MetaResult.to_frame``)."""
        row = {name: getattr(self, name) for name in self.__dataclass_fields__
               if name != "weights"}
        return pd.DataFrame([row])


def heterogeneity(yi: ArrayLike, vi: ArrayLike) -> Heterogeneity:
    """Cochran's Q, its p-value, and :math:`I^2 = \\max(0, (Q-df)/Q)`, :math:`H^2 = Q/df`."""
    y, v = effect_arrays(yi, vi)
    k = y.size
    w = 1.0 / v
    mu = np.sum(w * y) / w.sum()
    q = float(np.sum(w * (y - mu) ** 2))
    if k == 1:
        return Heterogeneity(q, 0, np.nan, np.nan, np.nan, np.nan)
    df = k - 1
    i2 = 0.0 if q <= 0 else max(0.0, 100 * (q - df) / q)
    s2 = df * w.sum() / (w.sum() ** 2 - np.sum(w**2))
    return Heterogeneity(q, df, float(stats.chi2.sf(q, df)), i2, q / df, float(s2))


def _combine(y: np.ndarray, v: np.ndarray, tau2: float, level: float
             ) -> tuple[float, float, float, float, float, float, np.ndarray]:
    w = 1.0 / (v + tau2)
    mu = float(np.sum(w * y) / w.sum())
    se = float(np.sqrt(1.0 / w.sum()))
    crit = stats.norm.ppf(0.5 + level / 2)
    z = mu / se
    p = float(2 * stats.norm.sf(abs(z)))
    return mu, se, z, p, mu - crit * se, mu + crit * se, 100 * w / w.sum()


def fixed_effect(yi: ArrayLike, vi: ArrayLike, *, level: float = 0.95) -> PooledEstimate:
    """Inverse-variance fixed-effect (common-effect) pooling; see module docstring."""
    level = check_level(level)
    y, v = effect_arrays(yi, vi)
    het = heterogeneity(y, v)
    mu, se, z, p, lo, hi, wts = _combine(y, v, 0.0, level)
    if y.size == 1:
        return PooledEstimate("fixed", "FE", 1, mu, se, z, p, lo, hi, np.nan, np.nan, np.nan,
                              np.nan, np.nan, np.nan, np.nan, np.nan, het.q, 0, np.nan, wts,
                              level, SINGLE_STUDY_NOTE)
    return PooledEstimate("fixed", "FE", y.size, mu, se, z, p, lo, hi, lo, hi, 0.0, 0.0, np.nan,
                          np.nan, het.i2, het.h2, het.q, het.q_df, het.q_pvalue, wts, level)


def random_effects(yi: ArrayLike, vi: ArrayLike, *, method: str = "REML", level: float = 0.95,
                   threshold: float = 1e-10) -> PooledEstimate:
    """Random-effects pooling with tau^2 by ``method`` ("DL", "REML", "ML").

    One study: returns the fixed-effect result with ``tau2 = nan`` and a note.
    """
    level = check_level(level)
    method = str(method).upper()
    if method not in TAU2_METHODS:
        raise SpecError(f"method: {method!r} is not one of {', '.join(TAU2_METHODS)}")
    y, v = effect_arrays(yi, vi)
    if y.size == 1:
        return fixed_effect(y, v, level=level)
    het = heterogeneity(y, v)
    est = estimate_tau2(y, v, method, threshold=threshold)
    tau2 = est.tau2
    mu, se, z, p, lo, hi, wts = _combine(y, v, tau2, level)
    crit = stats.norm.ppf(0.5 + level / 2)
    half_pi = crit * np.sqrt(se**2 + tau2)
    ci = q_profile_ci(y, v, level)
    i2 = 100 * tau2 / (tau2 + het.s2)
    h2 = 1 + tau2 / het.s2
    note = "; ".join(n for n in (est.note, ci.note) if n)
    return PooledEstimate("random", method, y.size, mu, se, z, p, lo, hi, mu - half_pi,
                          mu + half_pi, tau2, est.se, ci.lower, ci.upper, i2, h2, het.q,
                          het.q_df, het.q_pvalue, wts, level, note)


def pool(yi: ArrayLike, vi: ArrayLike, *, method: str = "REML", level: float = 0.95,
         threshold: float = 1e-10) -> PooledEstimate:
    """:func:`fixed_effect` for ``method="FE"``, otherwise :func:`random_effects`."""
    if str(method).upper() == "FE":
        return fixed_effect(yi, vi, level=level)
    if str(method).upper() not in METHODS:
        raise SpecError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    return random_effects(yi, vi, method=method, level=level, threshold=threshold)
