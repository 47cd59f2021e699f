r"""Cumulative meta-analysis, as metafor's ``cumul``.

**Cumulative meta-analysis** (:func:`cumulative`; metafor ``cumul``). Order the studies
by ``order`` (ties keep the input order, as R's ``order``) and pool the first
:math:`j = 1, \dots, k` by :func:`~bayes_poem.frequentist.pool`. The first row is one study:
the fixed-effect result with :math:`\tau^2`, :math:`I^2`, :math:`H^2` ``nan``.

See :mod:`bayes_poem.frequentist.bias` for the notation and the references.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist.bias_common import (
    CUMULATIVE_COLUMNS,
    bias_effects,
    check_pool_method,
    correction_note,
    sample_sizes,
    subgroup_label,
)
from bayes_poem.frequentist.inputs import _select, check_level, effect_arrays
from bayes_poem.frequentist.moderators import NOT_MODERATORS
from bayes_poem.frequentist.pooling import PooledEstimate, pool
from bayes_poem.frequentist.transforms import (
    BACK_SCALE,
    EffectSizes,
    back_transform,
)
from bayes_poem.moderators import sorted_levels
from bayes_poem.table import StudyTable

__all__ = [
    "CumulativeResult",
    "cumulative",
    "cumulative_effects",
]


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
    method = check_pool_method(method)
    level = check_level(level)
    y, v = effect_arrays(yi, vi, 1)
    k = y.size
    names = (tuple(str(x) for x in labels) if labels is not None
             else tuple(str(i) for i in range(1, k + 1)))
    if len(names) != k:
        raise DataError(f"labels: {len(names)} labels for {k} studies")
    n = sample_sizes(totals, k)
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
                            correction_note(effects))


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
    effects = bias_effects(data, totals, scale=scale, add=add, to=to, outcome=outcome,
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
                              order_by=order_by, label=subgroup_label(data, subgroup),
                              effects=effects)
