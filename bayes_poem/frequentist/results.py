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

import numpy as np
import pandas as pd
from scipy import stats

from bayes_poem.frequentist.pooling import PooledEstimate
from bayes_poem.frequentist.transforms import BACK_SCALE, EffectSizes, back_transform

__all__ = ["RESULT_COLUMNS", "STUDY_COLUMNS", "GlmmResult", "MetaResult", "make_result"]

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
