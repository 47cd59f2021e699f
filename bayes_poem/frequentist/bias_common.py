r"""The shared vocabulary of the small-study-effect analyses (:mod:`bayes_poem.frequentist.bias`):
metafor's predictors and estimators, the columns of their tables, and the input helpers
(counts -> effect sizes, sample sizes, labels, notes).

Study :math:`i` has the effect size :math:`y_i` and sampling variance :math:`v_i` of
:mod:`.transforms` (logit by default; the same continuity correction as every other
entry point: 0.5 added to both cells of a study with 0 events or 0 non-events,
``add=``/``to=``), standard error :math:`s_i = \sqrt{v_i}` and sample size :math:`n_i`
(the uncorrected total, metafor's ``ni``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist.inputs import counts_from
from bayes_poem.frequentist.pooling import METHODS
from bayes_poem.frequentist.transforms import (
    EffectSizes,
    proportion_effects,
)
from bayes_poem.table import StudyTable

__all__ = [
    "CUMULATIVE_COLUMNS",
    "EXACT_KENDALL_MAX_K",
    "FUNNEL_CONTOUR_COLUMNS",
    "FUNNEL_POINT_COLUMNS",
    "FUNNEL_YAXES",
    "RANKTEST_COLUMNS",
    "REGTEST_COLUMNS",
    "REGTEST_MODELS",
    "REGTEST_PREDICTORS",
    "TRIMFILL_COLUMNS",
    "TRIMFILL_ESTIMATORS",
    "bias_effects",
    "check_pool_method",
    "correction_note",
    "join_notes",
    "require_k",
    "sample_sizes",
    "subgroup_label",
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

def bias_effects(data: StudyTable | ArrayLike, totals: ArrayLike | None, *, scale: str,
                 add: float | None, to: str, outcome: str | None, subgroup: str | None,
                 labels: Sequence[object] | None) -> EffectSizes:
    counts = counts_from(data, totals, labels=labels, outcome=outcome, subgroup=subgroup)
    return proportion_effects(counts, scale, add=add, to=to)


def subgroup_label(data: object, subgroup: str | None) -> str:
    if subgroup is not None:
        return subgroup
    if isinstance(data, StudyTable) and len(data.subgroups) == 1:
        return data.subgroups[0]
    return "all"


def correction_note(effects: EffectSizes | None) -> str:
    if effects is None or not effects.corrected.any():
        return ""
    n = int(effects.corrected.sum())
    return (f"{effects.add:g} added to each cell of {n} stud{'y' if n == 1 else 'ies'} "
            f"(to='{effects.to}')")


def join_notes(*notes: str) -> str:
    return "; ".join(dict.fromkeys(n for n in notes if n))


def sample_sizes(ni: ArrayLike | None, k: int) -> np.ndarray | None:
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


def require_k(k: int, need: int, what: str) -> None:
    if k < need:
        raise DataError(f"{what} needs at least {need} studies (got {k})")


def check_pool_method(method: str) -> str:
    method = str(method).upper()
    if method not in METHODS:
        raise SpecError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    return method
