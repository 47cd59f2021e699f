"""Result objects of the frequentist analyses and their tidy DataFrames.

:meth:`MetaResult.to_frame` (and :meth:`GlmmResult.to_frame`) return one row per
scale: the analysis scale (``logit``, ``double_arcsine``, ``proportion``,
``log_odds_ratio``) and, when it differs, the back-transformed scale
(``proportion`` or ``odds_ratio``). Columns (:data:`RESULT_COLUMNS`):

``label, model, method, scale, k, estimate, se, ci_lower, ci_upper, pi_lower, pi_upper,
z, p_value, tau2, tau2_ci_lower, tau2_ci_upper, i2, h2, q, q_df, q_pvalue, add, to,
n_corrected, note``

``se``, ``z`` and ``p_value`` are given on the analysis scale only (``nan`` on the
back-transformed row); heterogeneity columns repeat on both rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from bayes_poem.frequentist.pooling import PooledEstimate
from bayes_poem.frequentist.transforms import BACK_SCALE, EffectSizes, back_transform

if TYPE_CHECKING:
    from bayes_poem.frequentist.moderators import Design

__all__ = ["COEFFICIENT_COLUMNS", "HETEROGENEITY_COLUMNS", "REGRESSION_STUDY_COLUMNS",
           "RESULT_COLUMNS", "STUDY_COLUMNS", "GlmmRegResult", "GlmmResult", "MetaRegResult",
           "MetaResult", "make_result"]

RESULT_COLUMNS = (
    "label", "model", "method", "scale", "k", "estimate", "se", "ci_lower", "ci_upper",
    "pi_lower", "pi_upper", "z", "p_value", "tau2", "tau2_ci_lower", "tau2_ci_upper", "i2",
    "h2", "q", "q_df", "q_pvalue", "add", "to", "n_corrected", "note",
)
STUDY_COLUMNS = ("label", "study", "scale", "estimate", "se", "ci_lower", "ci_upper", "weight",
                 "corrected")


def _rows(common: dict, scale: str, back_scale: str, main: dict, back: dict) -> pd.DataFrame:
    rows = [{**common, "scale": scale, **main}]
    if back_scale != scale:
        rows.append({**common, "scale": back_scale, **back, "se": np.nan, "z": np.nan,
                     "p_value": np.nan})
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


@dataclass(frozen=True)
class MetaResult:
    """A normal-normal (inverse-variance) meta-analysis with its back-transform.

    Attributes
    ----------
    label : str
        What was pooled (subgroup, arm or ``"all"``).
    effects : EffectSizes
        The per-study effect sizes, including the continuity correction applied.
    pooled : PooledEstimate
        The pooled estimate on the analysis scale.
    back_scale : str
        ``"proportion"`` or ``"odds_ratio"``.
    back_estimate, back_ci_lower, back_ci_upper, back_pi_lower, back_pi_upper : float
        Estimate, CI and prediction interval back-transformed (expit, Miller's inverse
        with the harmonic mean sample size, identity, or exp).
    note : str
        Notes from the fit and the data handling, ``"; "``-separated.
    """

    label: str
    effects: EffectSizes
    pooled: PooledEstimate
    back_scale: str
    back_estimate: float
    back_ci_lower: float
    back_ci_upper: float
    back_pi_lower: float
    back_pi_upper: float
    note: str = ""

    # the most used fields of the pooled estimate, for convenience
    @property
    def scale(self) -> str:
        return self.effects.scale

    @property
    def model(self) -> str:
        return self.pooled.model

    @property
    def method(self) -> str:
        return self.pooled.method

    @property
    def k(self) -> int:
        return self.pooled.k

    @property
    def estimate(self) -> float:
        return self.pooled.estimate

    @property
    def se(self) -> float:
        return self.pooled.se

    @property
    def tau2(self) -> float:
        return self.pooled.tau2

    @property
    def i2(self) -> float:
        return self.pooled.i2

    @property
    def q(self) -> float:
        return self.pooled.q

    @property
    def q_pvalue(self) -> float:
        return self.pooled.q_pvalue

    def to_frame(self) -> pd.DataFrame:
        """Tidy summary, one row per scale (see module docstring for the columns)."""
        p = self.pooled
        common = {
            "label": self.label, "model": p.model, "method": p.method, "k": p.k,
            "tau2": p.tau2, "tau2_ci_lower": p.tau2_ci_lower, "tau2_ci_upper": p.tau2_ci_upper,
            "i2": p.i2, "h2": p.h2, "q": p.q, "q_df": p.q_df, "q_pvalue": p.q_pvalue,
            "add": self.effects.add, "to": self.effects.to,
            "n_corrected": int(self.effects.corrected.sum()), "note": self.note,
        }
        main = {"estimate": p.estimate, "se": p.se, "ci_lower": p.ci_lower,
                "ci_upper": p.ci_upper, "pi_lower": p.pi_lower, "pi_upper": p.pi_upper,
                "z": p.z, "p_value": p.p_value}
        back = {"estimate": self.back_estimate, "ci_lower": self.back_ci_lower,
                "ci_upper": self.back_ci_upper, "pi_lower": self.back_pi_lower,
                "pi_upper": self.back_pi_upper}
        return _rows(common, self.scale, self.back_scale, main, back)

    def studies_frame(self) -> pd.DataFrame:
        """Per-study effect sizes on the analysis scale with Wald CIs and weights (%)."""
        e = self.effects
        se = np.sqrt(e.vi)
        crit = stats.norm.ppf(0.5 + self.pooled.level / 2)
        return pd.DataFrame({
            "label": self.label, "study": list(e.labels), "scale": e.scale, "estimate": e.yi,
            "se": se, "ci_lower": e.yi - crit * se, "ci_upper": e.yi + crit * se,
            "weight": self.pooled.weights, "corrected": e.corrected,
        }, columns=list(STUDY_COLUMNS))


def _join(*notes: str) -> str:
    return "; ".join(dict.fromkeys(n for n in notes if n))


def make_result(label: str, effects: EffectSizes, pooled: PooledEstimate,
                *notes: str) -> MetaResult:
    """Attach the back-transformed estimate and intervals to a pooled estimate."""
    back: Callable = back_transform(effects.scale, effects.totals)
    values = back(np.array([pooled.estimate, pooled.ci_lower, pooled.ci_upper,
                            pooled.pi_lower, pooled.pi_upper]))
    extra = []
    if effects.corrected.any():
        extra.append(f"{effects.add:g} added to each cell of {int(effects.corrected.sum())} "
                     f"stud{'y' if effects.corrected.sum() == 1 else 'ies'} "
                     f"(to='{effects.to}')")
    if effects.dropped:
        extra.append(f"dropped (no events or only events in both arms): "
                     f"{', '.join(effects.dropped)}")
    return MetaResult(label, effects, pooled, BACK_SCALE[effects.scale],
                      *(float(v) for v in values), note=_join(pooled.note, *extra, *notes))


@dataclass(frozen=True)
class GlmmResult:
    """Binomial-normal GLMM fitted by maximum likelihood (see :mod:`.glmm`).

    Attributes
    ----------
    label : str
    k : int
    estimate, se : float
        :math:`\\hat\\mu` on the logit scale and its SE from the observed information.
    ci_lower, ci_upper, pi_lower, pi_upper : float
        Wald CI and prediction interval :math:`\\hat\\mu \\pm z\\sqrt{SE^2+\\hat\\tau^2}`.
    tau2 : float
        ML estimate of :math:`\\tau^2` (``nan`` for a single study).
    back_estimate, back_ci_lower, back_ci_upper, back_pi_lower, back_pi_upper : float
        The same, through :math:`\\operatorname{expit}` (a median-study proportion).
    loglik : float
        Maximised log-likelihood (with the binomial coefficients).
    n_nodes : int
        Adaptive Gauss-Hermite nodes per study.
    converged : bool
    studies : tuple of str
    level : float
    note : str
    """

    label: str
    k: int
    estimate: float
    se: float
    ci_lower: float
    ci_upper: float
    pi_lower: float
    pi_upper: float
    tau2: float
    back_estimate: float
    back_ci_lower: float
    back_ci_upper: float
    back_pi_lower: float
    back_pi_upper: float
    loglik: float
    n_nodes: int
    converged: bool
    studies: tuple[str, ...] = field(default=(), repr=False)
    level: float = 0.95
    note: str = ""

    model = "random"
    method = "GLMM-ML"
    scale = "logit"

    @property
    def z(self) -> float:
        return self.estimate / self.se

    @property
    def p_value(self) -> float:
        return float(2 * stats.norm.sf(abs(self.z)))

    def to_frame(self) -> pd.DataFrame:
        """Tidy summary with the columns of :data:`RESULT_COLUMNS` (no Q, I^2, H^2)."""
        common = {
            "label": self.label, "model": self.model, "method": self.method, "k": self.k,
            "tau2": self.tau2, "tau2_ci_lower": np.nan, "tau2_ci_upper": np.nan,
            "i2": np.nan, "h2": np.nan, "q": np.nan, "q_df": np.nan, "q_pvalue": np.nan,
            "add": 0.0, "to": "none", "n_corrected": 0, "note": self.note,
        }
        main = {"estimate": self.estimate, "se": self.se, "ci_lower": self.ci_lower,
                "ci_upper": self.ci_upper, "pi_lower": self.pi_lower,
                "pi_upper": self.pi_upper, "z": self.z, "p_value": self.p_value}
        back = {"estimate": self.back_estimate, "ci_lower": self.back_ci_lower,
                "ci_upper": self.back_ci_upper, "pi_lower": self.back_pi_lower,
                "pi_upper": self.back_pi_upper}
        return _rows(common, "logit", "proportion", main, back)


# --------------------------------------------------------------------------------------
# Meta-regression (metafor rma(mods = ), rma.glmm(mods = )); see .metareg and .glmm
# --------------------------------------------------------------------------------------

#: columns of ``MetaRegResult.to_frame()`` and ``GlmmRegResult.to_frame()``, one row per
#: coefficient (``df`` is ``nan`` for z tests; ``statistic`` is z or t)
COEFFICIENT_COLUMNS = ("label", "method", "test", "term", "estimate", "se", "statistic", "df",
                       "p_value", "ci_lower", "ci_upper")
#: columns of ``heterogeneity_frame()``, one row (``qm_distribution``: ``"chi2"`` or ``"F"``)
HETEROGENEITY_COLUMNS = ("label", "method", "test", "k", "p", "tau2", "tau2_se",
                         "tau2_no_moderators", "r2", "i2", "h2", "qe", "qe_df", "qe_pvalue",
                         "qm", "qm_df1", "qm_df2", "qm_pvalue", "qm_distribution", "s2w",
                         "loglik", "note")
#: columns of ``MetaRegResult.studies_frame()``
REGRESSION_STUDY_COLUMNS = ("label", "study", "estimate", "se", "fitted", "residual",
                            "corrected")


def _coefficients(label: str, method: str, test: str, terms: tuple[str, ...],
                  values: tuple[np.ndarray, ...], df: float) -> pd.DataFrame:
    est, se, stat, p, lo, hi = values
    return pd.DataFrame({
        "label": label, "method": method, "test": test, "term": list(terms), "estimate": est,
        "se": se, "statistic": stat, "df": df, "p_value": p, "ci_lower": lo, "ci_upper": hi,
    }, columns=list(COEFFICIENT_COLUMNS))


@dataclass(frozen=True)
class MetaRegResult:
    """A mixed-effects meta-regression (metafor ``rma(yi, vi, mods = , method =, test =)``).

    Attributes
    ----------
    label, method, test : str
        What was fitted, the tau^2 estimator (``REML``, ``ML``, ``DL``) and the test
        (``z``, ``knha``, ``adhoc``, ``t``).
    k : int
    terms : tuple of str
        Coefficient names (``intercept`` first).
    estimates, se, statistic, p_values, ci_lower, ci_upper : numpy.ndarray
        Per coefficient; ``statistic`` is z (test ``z``) or t on ``df`` = k - p.
    df : float
        ``k - p`` for t-based tests, ``nan`` for z.
    vcov : numpy.ndarray
        Covariance of the coefficients (scaled by ``s2w`` under Knapp-Hartung).
    tau2, tau2_se : float
        Residual heterogeneity and its SE (metafor's ``se.tau2``).
    tau2_no_moderators : float
        tau^2 of the intercept-only model by the same method (for ``r2``).
    r2 : float
        Pseudo R^2 in percent (``nan`` without moderators).
    qm, qm_df1, qm_df2, qm_pvalue : float, int, float, float
        Omnibus test of the moderators: chi-square on ``qm_df1`` df (``qm_df2 = nan``)
        or, for t-based tests, F on (``qm_df1``, ``qm_df2``).
    qe, qe_df, qe_pvalue : float, int, float
        Test of residual heterogeneity.
    i2, h2, typical_variance : float
        Residual I^2 (percent), H^2 and the typical within-study variance.
    s2w : float
        Knapp-Hartung scale factor applied to the covariance (1 otherwise).
    iterations, converged
        Of the Fisher scoring (0 and True for DL).
    design : Design
    yi, vi : numpy.ndarray
    effects : EffectSizes or None
        The effect sizes with the continuity correction, when fitted from counts.
    level : float
    note : str
    """

    label: str
    method: str
    test: str
    k: int
    terms: tuple[str, ...]
    estimates: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    df: float
    p_values: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    vcov: np.ndarray = field(repr=False)
    tau2: float = np.nan
    tau2_se: float = np.nan
    tau2_no_moderators: float = np.nan
    r2: float = np.nan
    qm: float = np.nan
    qm_df1: int = 0
    qm_df2: float = np.nan
    qm_pvalue: float = np.nan
    qe: float = np.nan
    qe_df: int = 0
    qe_pvalue: float = np.nan
    i2: float = np.nan
    h2: float = np.nan
    typical_variance: float = np.nan
    s2w: float = 1.0
    iterations: int = 0
    converged: bool = True
    design: Design | None = field(default=None, repr=False)
    yi: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    vi: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    effects: EffectSizes | None = field(default=None, repr=False)
    level: float = 0.95
    note: str = ""

    @property
    def p(self) -> int:
        return len(self.terms)

    @property
    def qm_distribution(self) -> str:
        return "chi2" if self.test == "z" else "F"

    @property
    def coefficients(self) -> pd.Series:
        """Estimates indexed by term."""
        return pd.Series(self.estimates, index=list(self.terms), name="estimate")

    @property
    def fitted(self) -> np.ndarray:
        """Fitted values :math:`X\\hat\\beta` (without the study effects)."""
        assert self.design is not None
        return self.design.X @ self.estimates

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient (:data:`COEFFICIENT_COLUMNS`)."""
        return _coefficients(self.label, self.method, self.test, self.terms,
                             (self.estimates, self.se, self.statistic, self.p_values,
                              self.ci_lower, self.ci_upper), self.df)

    def heterogeneity(self) -> dict:
        """The heterogeneity and omnibus statistics (:data:`HETEROGENEITY_COLUMNS`)."""
        return {"label": self.label, "method": self.method, "test": self.test, "k": self.k,
                "p": self.p, "tau2": self.tau2, "tau2_se": self.tau2_se,
                "tau2_no_moderators": self.tau2_no_moderators, "r2": self.r2, "i2": self.i2,
                "h2": self.h2, "qe": self.qe, "qe_df": self.qe_df, "qe_pvalue": self.qe_pvalue,
                "qm": self.qm, "qm_df1": self.qm_df1, "qm_df2": self.qm_df2,
                "qm_pvalue": self.qm_pvalue, "qm_distribution": self.qm_distribution,
                "s2w": self.s2w, "loglik": np.nan, "note": self.note}

    def heterogeneity_frame(self) -> pd.DataFrame:
        """:meth:`heterogeneity` as a one-row DataFrame."""
        return pd.DataFrame([self.heterogeneity()], columns=list(HETEROGENEITY_COLUMNS))

    def studies_frame(self) -> pd.DataFrame:
        """Per study: effect size, SE, fitted value and residual (analysis scale)."""
        labels = (list(self.effects.labels) if self.effects is not None
                  else [str(i) for i in range(1, self.k + 1)])
        corrected = (self.effects.corrected if self.effects is not None
                     else np.zeros(self.k, dtype=bool))
        fitted = self.fitted
        return pd.DataFrame({
            "label": self.label, "study": labels, "estimate": self.yi, "se": np.sqrt(self.vi),
            "fitted": fitted, "residual": self.yi - fitted, "corrected": corrected,
        }, columns=list(REGRESSION_STUDY_COLUMNS))


@dataclass(frozen=True)
class GlmmRegResult:
    """Binomial-normal GLMM with moderators by ML (metafor ``rma.glmm(measure="PLO", mods=)``).

    Attributes as :class:`MetaRegResult` where they apply (Wald z tests; ``vcov`` is the
    coefficient block of the inverse observed information in (beta, tau)); ``tau2`` is
    the ML estimate, ``loglik`` the maximised log-likelihood (with the binomial
    coefficients), ``n_nodes`` the adaptive Gauss-Hermite nodes per study.
    """

    label: str
    k: int
    terms: tuple[str, ...]
    estimates: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    p_values: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    vcov: np.ndarray = field(repr=False)
    tau2: float = np.nan
    loglik: float = np.nan
    qm: float = np.nan
    qm_df1: int = 0
    qm_pvalue: float = np.nan
    n_nodes: int = 7
    converged: bool = True
    design: Design | None = field(default=None, repr=False)
    studies: tuple[str, ...] = field(default=(), repr=False)
    level: float = 0.95
    note: str = ""

    method = "GLMM-ML"
    test = "z"

    @property
    def p(self) -> int:
        return len(self.terms)

    @property
    def coefficients(self) -> pd.Series:
        """Estimates indexed by term."""
        return pd.Series(self.estimates, index=list(self.terms), name="estimate")

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient (:data:`COEFFICIENT_COLUMNS`)."""
        return _coefficients(self.label, self.method, self.test, self.terms,
                             (self.estimates, self.se, self.statistic, self.p_values,
                              self.ci_lower, self.ci_upper), np.nan)

    def heterogeneity(self) -> dict:
        """tau^2, the Wald omnibus test and the log-likelihood; the rest ``nan``."""
        nan = np.nan
        return {"label": self.label, "method": self.method, "test": self.test, "k": self.k,
                "p": self.p, "tau2": self.tau2, "tau2_se": nan, "tau2_no_moderators": nan,
                "r2": nan, "i2": nan, "h2": nan, "qe": nan, "qe_df": nan, "qe_pvalue": nan,
                "qm": self.qm, "qm_df1": self.qm_df1, "qm_df2": nan,
                "qm_pvalue": self.qm_pvalue, "qm_distribution": "chi2", "s2w": 1.0,
                "loglik": self.loglik, "note": self.note}

    def heterogeneity_frame(self) -> pd.DataFrame:
        """:meth:`heterogeneity` as a one-row DataFrame."""
        return pd.DataFrame([self.heterogeneity()], columns=list(HETEROGENEITY_COLUMNS))
