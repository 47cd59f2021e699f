"""Normal-normal meta-analysis of proportions and of two-arm odds ratios from counts.

These are the user-level entry points: counts (a ``StudyTable`` or arrays) ->
effect sizes (:mod:`.transforms`) -> pooled estimate (:mod:`.pooling`) ->
back-transformed :class:`~bayes_poem.frequentist.results.MetaResult`. They
reproduce ``metafor::rma(measure=..., xi=, ni=, method=...)`` followed by
``predict(..., transf=...)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from numpy.typing import ArrayLike

from bayes_poem.frequentist.inputs import counts_from, two_arm_counts_from
from bayes_poem.frequentist.pooling import pool
from bayes_poem.frequentist.results import MetaResult, make_result
from bayes_poem.frequentist.transforms import log_odds_ratio_effects, proportion_effects
from bayes_poem.table import StudyTable

__all__ = ["pool_log_odds_ratios", "pool_proportions"]


def pool_proportions(
    data: StudyTable | ArrayLike,
    totals: ArrayLike | None = None,
    *,
    scale: str = "logit",
    method: str = "REML",
    add: float | None = None,
    to: str = "only0",
    level: float = 0.95,
    outcome: str | None = None,
    subgroup: str | None = None,
    labels: Sequence[object] | None = None,
    threshold: float = 1e-10,
) -> MetaResult:
    """Pool single proportions (metafor ``rma(measure="PLO"|"PFT"|"PR")``).

    Parameters
    ----------
    data : StudyTable or array-like
        A table (one outcome and one subgroup, or select them with ``outcome=`` and
        ``subgroup=``), or the event counts.
    totals : array-like, optional
        Totals, with array input.
    scale : {"logit", "double_arcsine", "proportion"}
        Analysis scale.
    method : {"REML", "ML", "DL", "FE"}
        tau^2 estimator, or ``"FE"`` for the fixed-effect model.
    add : float, optional
        Continuity correction added to both cells; default 0.5 (0 for the double arcsine).
    to : {"only0", "all", "if0all", "none"}
        Which studies get it (default: those with 0 events or 0 non-events).
    level : float
        Confidence level of the CI, the prediction interval and the tau^2 CI.
    labels : sequence, optional
        Study labels for array input.
    threshold : float
        Convergence threshold of the REML/ML Fisher scoring (metafor: 1e-5).

    Returns
    -------
    MetaResult
        ``.to_frame()`` gives the pooled row on the analysis scale and on the
        proportion scale; ``.studies_frame()`` the per-study rows.

    Raises
    ------
    DataError
        Invalid counts, or an effect size undefined without a continuity correction.
    SpecError
        Invalid options.
    """
    counts = counts_from(data, totals, labels=labels, outcome=outcome, subgroup=subgroup)
    effects = proportion_effects(counts, scale, add=add, to=to)
    pooled = pool(effects.yi, effects.vi, method=method, level=level, threshold=threshold)
    label = subgroup if subgroup is not None else _label(data)
    return make_result(label, effects, pooled)


def pool_log_odds_ratios(
    data: StudyTable | ArrayLike,
    n1: ArrayLike | None = None,
    c: ArrayLike | None = None,
    n2: ArrayLike | None = None,
    *,
    treated: str = "treated",
    control: str = "control",
    method: str = "REML",
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = True,
    level: float = 0.95,
    outcome: str | None = None,
    labels: Sequence[object] | None = None,
    threshold: float = 1e-10,
) -> MetaResult:
    """Pool two-arm log odds ratios, treated vs control (metafor ``rma(measure="OR")``).

    Parameters
    ----------
    data : StudyTable or array-like
        A table whose subgroups are the arms ``treated`` and ``control``, paired by
        study; or ``a``, the treated-arm events (then ``n1``, ``c``, ``n2``).
    drop00 : bool
        Leave out trials with no events (or only events) in both arms (default True,
        as in Stijnen et al. 2010; metafor's ``escalc`` default is False).
    add, to : float, str
        Continuity correction of all four cells (see :mod:`.transforms`).

    Returns
    -------
    MetaResult
        On the ``log_odds_ratio`` scale, back-transformed to ``odds_ratio``.
    """
    counts = two_arm_counts_from(data, n1, c, n2, treated=treated, control=control,
                                 labels=labels, outcome=outcome)
    effects = log_odds_ratio_effects(counts, add=add, to=to, drop00=drop00)
    pooled = pool(effects.yi, effects.vi, method=method, level=level, threshold=threshold)
    return make_result(f"{treated} vs {control}", effects, pooled)


def _label(data: object) -> str:
    if isinstance(data, StudyTable) and len(data.subgroups) == 1:
        return data.subgroups[0]
    return "all"
