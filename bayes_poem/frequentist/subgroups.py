r"""Subgroup analysis: per-subgroup pooled rates, model choice, subgroup differences.

Model choice ("fixed or random by heterogeneity", as in many published
meta-analyses of proportions, e.g. Khan et al., Dig Dis Sci 2017;62:35-44) is made
per pooled group by :class:`ModelChoice`:

``rule="i2"`` (default, ``threshold=50``)
    random effects if :math:`I^2 > \text{threshold}` (percent), else fixed effect, with
    the Higgins-Thompson :math:`I^2 = \max\{0, 100(Q - (k-1))/Q\}` from Cochran's Q
    (it does not depend on the tau^2 estimator);
``rule="q_pvalue"`` (``alpha=0.10``)
    random effects if the p-value of Cochran's Q is below ``alpha``;
``rule="fixed"`` / ``rule="random"``
    always that model.

A group with one study is always pooled with the fixed-effect model (tau^2 is not
estimable); the reason is recorded in the result's note.

Test for subgroup differences (metafor FAQ "comparing estimates of independent
meta-analyses"; Borenstein et al. 2009, ch. 19): with each subgroup's pooled
estimate :math:`\hat\theta_g` and standard error :math:`s_g` on the analysis scale
(from its own chosen model, tau^2 not shared), :math:`w_g = 1/s_g^2`,

.. math::

    Q_B = \sum_g w_g(\hat\theta_g - \bar\theta)^2, \qquad
    \bar\theta = \sum w_g \hat\theta_g / \sum w_g, \qquad Q_B \sim \chi^2_{G-1}.

Pairwise differences of pooled proportions, :math:`d = p_1 - p_2`, with the delta-method
standard error :math:`\operatorname{SE}(d) = \sqrt{(g'(\hat\theta_1)s_1)^2 +
(g'(\hat\theta_2)s_2)^2}` where :math:`g` is the back-transform (:math:`g' = p(1-p)` for
the logit, 1 for the raw proportion, a central difference for Miller's inverse),
:math:`z = d/\operatorname{SE}(d)`, two-sided normal p-value and Wald CI. The same
contrast on the analysis scale (e.g. a difference of logits) is given as well.

References
----------
Borenstein M, Hedges LV, Higgins JPT, Rothstein HR. Introduction to Meta-Analysis.
Wiley 2009.
Higgins JPT, Thompson SG. Stat Med 2002;21:1539-58.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from scipy.special import expit

from bayes_poem.errors import SpecError
from bayes_poem.frequentist.inputs import check_level, counts_from
from bayes_poem.frequentist.pooling import heterogeneity, pool
from bayes_poem.frequentist.results import MetaResult, make_result
from bayes_poem.frequentist.tau2 import TAU2_METHODS
from bayes_poem.frequentist.transforms import back_transform, proportion_effects
from bayes_poem.table import StudyTable

__all__ = ["PAIRWISE_COLUMNS", "RULES", "ModelChoice", "SubgroupResult", "pool_by_rule",
           "subgroup_analysis"]

RULES = ("i2", "q_pvalue", "fixed", "random")
_MODEL_NAME = {"fixed": "fixed-effect model", "random": "random-effects model"}
OVERALL = "overall"
PAIRWISE_COLUMNS = (
    "subgroup_1", "subgroup_2", "proportion_1", "proportion_2", "difference", "se",
    "ci_lower", "ci_upper", "z", "p_value", "scale", "scale_difference", "scale_se",
    "scale_p_value",
)


@dataclass(frozen=True)
class ModelChoice:
    """The fixed-vs-random rule (see module docstring).

    Parameters
    ----------
    rule : {"i2", "q_pvalue", "fixed", "random"}
    threshold : float
        I^2 threshold in percent for ``rule="i2"``: random effects if I^2 > threshold.
    alpha : float
        Significance level for ``rule="q_pvalue"``: random effects if p < alpha.
    """

    rule: str = "i2"
    threshold: float = 50.0
    alpha: float = 0.10

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise SpecError(f"rule: {self.rule!r} is not one of {', '.join(RULES)}")
        if not 0 <= self.threshold < 100:
            raise SpecError(f"threshold: {self.threshold!r} must be a percentage in [0, 100)")
        if not 0 < self.alpha < 1:
            raise SpecError(f"alpha: {self.alpha!r} must lie in (0, 1)")

    def choose(self, q: float, q_df: int) -> tuple[str, str]:
        """``("fixed" | "random", reason)`` for Cochran's ``q`` on ``q_df`` df."""
        if q_df < 1:
            return "fixed", "one study: fixed-effect model"
        if self.rule in ("fixed", "random"):
            return self.rule, f"{_MODEL_NAME[self.rule]} by choice"
        if self.rule == "i2":
            i2 = 0.0 if q <= 0 else max(0.0, 100 * (q - q_df) / q)
            model = "random" if i2 > self.threshold else "fixed"
            sign = ">" if model == "random" else "<="
            return model, f"I^2 = {i2:.1f}% {sign} {self.threshold:g}%: {_MODEL_NAME[model]}"
        p = float(stats.chi2.sf(q, q_df))
        model = "random" if p < self.alpha else "fixed"
        sign = "<" if model == "random" else ">="
        return model, f"Q p-value = {p:.3g} {sign} {self.alpha:g}: {_MODEL_NAME[model]}"


def _choice(choice: ModelChoice | str) -> ModelChoice:
    return choice if isinstance(choice, ModelChoice) else ModelChoice(rule=str(choice))


def pool_by_rule(
    data: StudyTable | ArrayLike,
    totals: ArrayLike | None = None,
    *,
    choice: ModelChoice | str = "i2",
    re_method: str = "REML",
    scale: str = "logit",
    add: float | None = None,
    to: str = "only0",
    level: float = 0.95,
    outcome: str | None = None,
    subgroup: str | None = None,
    labels: Sequence[object] | None = None,
    label: str | None = None,
) -> MetaResult:
    """Pool proportions with the model picked by ``choice`` (random effects by ``re_method``).

    Arguments as :func:`~bayes_poem.frequentist.meta.pool_proportions`; the reason for the
    model is appended to the result's note.
    """
    choice = _choice(choice)
    if str(re_method).upper() not in TAU2_METHODS:
        raise SpecError(f"re_method: {re_method!r} is not one of {', '.join(TAU2_METHODS)}")
    counts = counts_from(data, totals, labels=labels, outcome=outcome, subgroup=subgroup)
    effects = proportion_effects(counts, scale, add=add, to=to)
    het = heterogeneity(effects.yi, effects.vi)
    model, reason = choice.choose(het.q, het.q_df)
    pooled = pool(effects.yi, effects.vi, method="FE" if model == "fixed" else re_method,
                  level=level)
    if label is None:
        label = subgroup or (data.subgroups[0] if isinstance(data, StudyTable)
                             and len(data.subgroups) == 1 else "all")
    return make_result(label, effects, pooled, reason)


@dataclass(frozen=True)
class SubgroupResult:
    """Per-subgroup and overall pooled results with the test for subgroup differences.

    Attributes
    ----------
    results : tuple of MetaResult
        One per subgroup, in table order.
    overall : MetaResult or None
        All subgroups together, events and totals summed per study.
    q_between, q_between_df, q_between_pvalue : float, int, float
        Test for subgroup differences (``nan`` with fewer than two subgroups).
    pairwise : pandas.DataFrame
        Pairwise differences of pooled proportions (:data:`PAIRWISE_COLUMNS`).
    choice : ModelChoice
    note : str
    """

    results: tuple[MetaResult, ...]
    overall: MetaResult | None
    q_between: float
    q_between_df: int
    q_between_pvalue: float
    pairwise: pd.DataFrame = field(repr=False)
    choice: ModelChoice = field(default_factory=ModelChoice)
    note: str = ""

    @property
    def subgroups(self) -> list[str]:
        return [r.label for r in self.results]

    def __getitem__(self, subgroup: str) -> MetaResult:
        for result in self.results:
            if result.label == subgroup:
                return result
        if subgroup == OVERALL and self.overall is not None:
            return self.overall
        raise KeyError(subgroup)

    def to_frame(self) -> pd.DataFrame:
        """Rows of every subgroup's (and the overall) ``MetaResult.to_frame()``."""
        parts = [r.to_frame() for r in self.results]
        if self.overall is not None:
            parts.append(self.overall.to_frame())
        return pd.concat(parts, ignore_index=True)

    def test_frame(self) -> pd.DataFrame:
        """One row: ``q_between``, ``q_between_df``, ``q_between_pvalue``, ``n_subgroups``."""
        return pd.DataFrame([{
            "scale": self.results[0].scale, "n_subgroups": len(self.results),
            "q_between": self.q_between, "q_between_df": self.q_between_df,
            "q_between_pvalue": self.q_between_pvalue, "note": self.note,
        }])


def _slope(result: MetaResult) -> float:
    """Derivative of the back-transform at the pooled estimate."""
    theta = result.pooled.estimate
    if result.scale == "logit":
        p = float(expit(theta))
        return p * (1 - p)
    if result.scale == "proportion":
        return 1.0
    back = back_transform(result.scale, result.effects.totals)
    h = 1e-6
    return float((back(theta + h) - back(theta - h)) / (2 * h))


def _pairwise(results: Sequence[MetaResult], level: float) -> pd.DataFrame:
    crit = stats.norm.ppf(0.5 + level / 2)
    rows = []
    for r1, r2 in combinations(results, 2):
        diff = r1.back_estimate - r2.back_estimate
        se = float(np.hypot(_slope(r1) * r1.se, _slope(r2) * r2.se))
        z = diff / se if se > 0 else np.nan
        d_scale = r1.estimate - r2.estimate
        se_scale = float(np.hypot(r1.se, r2.se))
        rows.append({
            "subgroup_1": r1.label, "subgroup_2": r2.label, "proportion_1": r1.back_estimate,
            "proportion_2": r2.back_estimate, "difference": diff, "se": se,
            "ci_lower": diff - crit * se, "ci_upper": diff + crit * se, "z": z,
            "p_value": float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
            "scale": r1.scale, "scale_difference": d_scale, "scale_se": se_scale,
            "scale_p_value": float(2 * stats.norm.sf(abs(d_scale / se_scale))),
        })
    return pd.DataFrame(rows, columns=list(PAIRWISE_COLUMNS))


def subgroup_analysis(
    table: StudyTable,
    *,
    outcome: str | None = None,
    subgroups: Sequence[str] | None = None,
    scale: str = "logit",
    choice: ModelChoice | str = "i2",
    re_method: str = "REML",
    add: float | None = None,
    to: str = "only0",
    level: float = 0.95,
    overall: bool = True,
) -> SubgroupResult:
    """Pool each subgroup (model by ``choice``), test and contrast the subgroups.

    Parameters
    ----------
    table : StudyTable
        One outcome (or choose it with ``outcome=``).
    subgroups : sequence of str, optional
        Subgroups to analyse, in this order (default: all, in table order).
    scale, add, to, level
        As for :func:`~bayes_poem.frequentist.meta.pool_proportions`.
    choice : ModelChoice or str
        The fixed-vs-random rule, or its name (``"i2"``, ``"q_pvalue"``, ...).
    re_method : {"REML", "ML", "DL"}
        tau^2 estimator when the random-effects model is chosen.
    overall : bool
        Also pool all the subgroups together, summing events and totals per study
        (subgroups of one study are disjoint sets of patients).
    """
    if not isinstance(table, StudyTable):
        raise SpecError("subgroup_analysis needs a StudyTable (see bayes_poem.load_table)")
    level = check_level(level)
    choice = _choice(choice)
    if outcome is not None:
        table = table.for_outcome(outcome)
    elif len(table.outcomes) != 1:
        raise SpecError(f"{table.source}: the table has outcomes {', '.join(table.outcomes)}; "
                        "choose one with outcome=...")
    if subgroups is not None:
        table = table.with_subgroups(list(subgroups))
    options = {"choice": choice, "re_method": re_method, "scale": scale, "add": add, "to": to,
               "level": level}
    results = tuple(pool_by_rule(table, subgroup=s, **options) for s in table.subgroups)
    notes = []
    if len(results) >= 2:
        est = np.array([r.estimate for r in results])
        se = np.array([r.se for r in results])
        het = heterogeneity(est, se**2)
        q_b, q_df, q_p = het.q, het.q_df, het.q_pvalue
    else:
        q_b, q_df, q_p = np.nan, 0, np.nan
        notes.append("one subgroup: no test of subgroup differences")
    total = None
    if overall:
        summed = table.frame.groupby("study", sort=False)[["events", "total"]].sum()
        total = pool_by_rule(summed["events"].to_numpy(), summed["total"].to_numpy(),
                             labels=list(summed.index), label=OVERALL, **options)
    return SubgroupResult(results, total, q_b, q_df, q_p, _pairwise(results, level), choice,
                          "; ".join(notes))
