r"""Funnel-plot data, as metafor's ``funnel``.

**Funnel plot** (:func:`funnel_data`; metafor ``funnel``). Points :math:`(y_i, s_i)` (or
:math:`(y_i, 1/\sqrt{n_i})` with ``yaxis="sqrtninv"``); reference line at the pooled
estimate (the trim-and-fill estimate with ``fill=True``); pseudo-confidence contours
:math:`\hat\mu \pm z_{1-\alpha/2}\, s` for :math:`0 \le s \le \max s_i` at each level
(metafor's default ``addtau2=FALSE``; none for the sample-size axis).

See :mod:`bayes_poem.frequentist.bias` for the notation and the references.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from bayes_poem.errors import SpecError
from bayes_poem.frequentist.bias_common import (
    FUNNEL_CONTOUR_COLUMNS,
    FUNNEL_POINT_COLUMNS,
    FUNNEL_YAXES,
    bias_effects,
    check_pool_method,
    correction_note,
    join_notes,
    sample_sizes,
    subgroup_label,
)
from bayes_poem.frequentist.bias_trimfill import (
    trimfill_effects,
)
from bayes_poem.frequentist.inputs import check_level, effect_arrays
from bayes_poem.frequentist.pooling import pool
from bayes_poem.table import StudyTable

__all__ = [
    "FunnelData",
    "funnel_data",
    "funnel_effects",
]


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
    method = check_pool_method(method)
    checked = tuple(check_level(lv) for lv in levels)
    y, v = effect_arrays(yi, vi, 1)
    k = y.size
    given = sample_sizes(ni, k)
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
    effects = bias_effects(data, totals, scale=scale, add=add, to=to, outcome=outcome,
                           subgroup=subgroup, labels=labels)
    result = funnel_effects(effects.yi, effects.vi, effects.totals, yaxis=yaxis,
                            method=method, levels=levels, fill=fill, side=side,
                            threshold=threshold, labels=effects.labels,
                            corrected=effects.corrected, scale=scale,
                            label=subgroup_label(data, subgroup))
    return replace(result, note=join_notes(result.note, correction_note(effects)))
