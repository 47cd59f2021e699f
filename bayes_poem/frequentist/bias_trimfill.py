r"""Trim and fill, as metafor's ``trimfill``.

**Trim and fill** (:func:`trimfill`; Duval & Tweedie 2000, metafor ``trimfill.rma.uni``).
Side: by default the side where studies are missing is taken from the slope
:math:`\hat\beta_1` of the regression on :math:`s_i` above (same ``method``): ``"right"``
if :math:`\hat\beta_1 < 0`, else ``"left"`` (metafor's rule); or pass ``side=``. For the
right side the :math:`y_i` are negated, so that missing studies are always sought on the
left. Sort by :math:`y`; start at :math:`k_0 = 0` and iterate until :math:`k_0` repeats:
pool the :math:`k - k_0` smallest (``method``: fixed or random effects, as the model)
to :math:`\hat\mu`; rank :math:`|y_i - \hat\mu|` over all :math:`k` studies (ties: first
in sorted order first, R's ``ties.method="first"``); :math:`S_r` = the sum of the ranks of
the positive :math:`y_i - \hat\mu`;

.. math:: L_0 = \frac{4 S_r - k(k+1)}{2k - 1}, \qquad
          R_0 = k - r^* - 1,

(:math:`r^*` the largest rank of a negative deviation; ``estimator="R0"``) and
:math:`k_0 = \max(0, \operatorname{round}(\cdot))` (R rounds halves to even, as Python).
:math:`\operatorname{SE}(k_0) = 4\sqrt{\operatorname{Var}S_r}/(2k-1)` for ``L0`` with
:math:`\operatorname{Var}S_r = \tfrac1{24}\{k(k+1)(2k+1) + 10k_0^3 + 27k_0^2 + 17k_0
- 18kk_0^2 - 18kk_0 + 6k^2k_0\}` (:math:`k_0` unrounded), :math:`\sqrt{2k_0 + 2}` for ``R0``.
The :math:`k_0` largest studies are mirrored about the last :math:`\hat\mu`:
:math:`y^{fill} = 2\hat\mu - y` (on the original side), with the mirrored study's
:math:`v_i` and :math:`n_i`, and the model is refitted to the :math:`k + k_0` studies.

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
    TRIMFILL_COLUMNS,
    TRIMFILL_ESTIMATORS,
    bias_effects,
    check_pool_method,
    correction_note,
    join_notes,
    require_k,
    sample_sizes,
    subgroup_label,
)
from bayes_poem.frequentist.bias_tests import (
    slope_design,
    weighted_lm,
)
from bayes_poem.frequentist.inputs import check_level, effect_arrays
from bayes_poem.frequentist.metareg import fit_meta_regression
from bayes_poem.frequentist.pooling import PooledEstimate, pool
from bayes_poem.frequentist.transforms import (
    BACK_SCALE,
    EffectSizes,
    back_transform,
)
from bayes_poem.table import StudyTable

__all__ = [
    "TrimFillResult",
    "trimfill",
    "trimfill_effects",
]


# --------------------------------------------------------------------------------------
# Trim and fill
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrimFillResult:
    """Duval and Tweedie's trim and fill (metafor ``trimfill``).

    Attributes
    ----------
    label, scale, method, side, estimator : str
    k, k0 : int
        Observed studies and the estimated number of missing ones.
    se_k0 : float
    iterations : int
    observed, adjusted : PooledEstimate
        The model fitted to the observed studies and to the observed plus filled ones
        (``adjusted is observed`` when ``k0 == 0``).
    labels : tuple of str
        Observed study labels; the filled ones are ``"Filled 1"`` ... (metafor's names).
    yi, vi, totals : numpy.ndarray
        Observed effect sizes, variances and sample sizes.
    filled_yi, filled_vi, filled_totals : numpy.ndarray
        The filled studies, in metafor's order: the mirror images of the k0 most extreme
        studies on the other side, taken from the least to the most extreme.
    filled_from : tuple of str
        The observed study each filled one mirrors.
    """

    label: str
    scale: str
    method: str
    side: str
    estimator: str
    k: int
    k0: int
    se_k0: float
    iterations: int
    observed: PooledEstimate
    adjusted: PooledEstimate
    labels: tuple[str, ...]
    yi: np.ndarray = field(repr=False)
    vi: np.ndarray = field(repr=False)
    totals: np.ndarray = field(repr=False)
    filled_yi: np.ndarray = field(repr=False)
    filled_vi: np.ndarray = field(repr=False)
    filled_totals: np.ndarray = field(repr=False)
    filled_from: tuple[str, ...] = ()
    note: str = ""

    @property
    def filled_labels(self) -> tuple[str, ...]:
        return tuple(f"Filled {i}" for i in range(1, self.k0 + 1))

    def _back(self, pooled: PooledEstimate, totals: np.ndarray) -> tuple[str, np.ndarray]:
        values = back_transform(self.scale, totals)(
            np.array([pooled.estimate, pooled.ci_lower, pooled.ci_upper]))
        return BACK_SCALE[self.scale], values

    def to_frame(self) -> pd.DataFrame:
        """Two rows, ``observed`` and ``trim-and-fill`` (:data:`TRIMFILL_COLUMNS`)."""
        rows = []
        for analysis, pooled, totals in (
                ("observed", self.observed, self.totals),
                ("trim-and-fill", self.adjusted,
                 np.concatenate([self.totals, self.filled_totals]))):
            back_scale, back = self._back(pooled, totals)
            rows.append({
                "label": self.label, "analysis": analysis, "method": pooled.method,
                "side": self.side, "estimator": self.estimator, "k": pooled.k,
                "k0": self.k0, "se_k0": self.se_k0, "estimate": pooled.estimate,
                "se": pooled.se, "ci_lower": pooled.ci_lower, "ci_upper": pooled.ci_upper,
                "p_value": pooled.p_value, "tau2": pooled.tau2, "i2": pooled.i2,
                "back_scale": back_scale, "back_estimate": back[0], "back_ci_lower": back[1],
                "back_ci_upper": back[2], "note": self.note})
        return pd.DataFrame(rows, columns=list(TRIMFILL_COLUMNS))

    def studies_frame(self) -> pd.DataFrame:
        """Observed then filled studies: ``study, estimate, se, total, filled, mirrors``."""
        return pd.DataFrame({
            "study": [*self.labels, *self.filled_labels],
            "estimate": np.concatenate([self.yi, self.filled_yi]),
            "se": np.sqrt(np.concatenate([self.vi, self.filled_vi])),
            "total": np.concatenate([self.totals, self.filled_totals]),
            "filled": [False] * self.k + [True] * self.k0,
            "mirrors": [""] * self.k + list(self.filled_from),
        })


def _trimfill_side(y: np.ndarray, v: np.ndarray, method: str, threshold: float) -> str:
    design = slope_design(np.sqrt(v), "sei")
    if method == "FE":  # the fixed-effect meta-regression's slope is the WLS slope
        slope = weighted_lm(y, v, design.X)[0][1]
    else:
        slope = fit_meta_regression(y, v, design, method=method,
                                    threshold=threshold).estimates[1]
    return "right" if slope < 0 else "left"


def trimfill_effects(yi: ArrayLike, vi: ArrayLike, ni: ArrayLike | None = None, *,
                     side: str | None = None, estimator: str = "L0", method: str = "REML",
                     level: float = 0.95, maxiter: int = 100, threshold: float = 1e-10,
                     labels: Sequence[object] | None = None, scale: str = "logit",
                     label: str = "all", effects: EffectSizes | None = None
                     ) -> TrimFillResult:
    """Trim and fill from effect sizes (metafor ``trimfill(rma(yi, vi, method=))``).

    Parameters
    ----------
    side : {"left", "right"}, optional
        Where studies are missing; by default from the sign of the regression slope on
        the standard error (module docstring).
    estimator : {"L0", "R0"}
    method : {"REML", "ML", "DL", "FE"}
        The model pooled in every iteration and refitted to the filled data.
    ni : array-like, optional
        Sample sizes (carried to the filled studies; default ``nan``).
    scale : str
        The scale of ``yi`` (for the back-transform in ``to_frame``).
    """
    if estimator not in TRIMFILL_ESTIMATORS:
        raise SpecError(f"estimator: {estimator!r} is not one of "
                        f"{', '.join(TRIMFILL_ESTIMATORS)}")
    if side not in (None, "left", "right"):
        raise SpecError(f"side: {side!r} is not 'left', 'right' or None (automatic)")
    method = check_pool_method(method)
    level = check_level(level)
    y0, v0 = effect_arrays(yi, vi, 1)
    k = y0.size
    require_k(k, 3, "trim and fill")
    n0 = sample_sizes(ni, k)
    n0 = np.full(k, np.nan) if n0 is None else n0
    names = (tuple(str(x) for x in labels) if labels is not None
             else tuple(str(i) for i in range(1, k + 1)))
    if len(names) != k:
        raise DataError(f"labels: {len(names)} labels for {k} studies")
    if side is None:
        side = _trimfill_side(y0, v0, method, threshold)
    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * y0, kind="stable")
    y, v = sign * y0[order], v0[order]

    k0, k0_previous, iterations, mu, se_k0 = 0, -1, 0, 0.0, 0.0
    while k0 != k0_previous:
        k0_previous = k0
        iterations += 1
        if iterations > maxiter:
            raise DataError(f"trim and fill did not converge in {maxiter} iterations")
        mu = pool(y[:k - k0], v[:k - k0], method=method, level=level,
                  threshold=threshold).estimate
        centred = y - mu
        ranks = np.empty(k)
        ranks[np.argsort(np.abs(centred), kind="stable")] = np.arange(1, k + 1)
        signed = np.sign(centred) * ranks
        if estimator == "L0":
            sr = float(np.sum(signed[signed > 0]))
            raw = (4 * sr - k * (k + 1)) / (2 * k - 1)
            var_sr = (k * (k + 1) * (2 * k + 1) + 10 * raw**3 + 27 * raw**2 + 17 * raw
                      - 18 * k * raw**2 - 18 * k * raw + 6 * k**2 * raw) / 24
            se_k0 = 4 * np.sqrt(var_sr) / (2 * k - 1) if var_sr > 0 else 0.0
        else:
            negative = -signed[signed < 0]
            raw = k - (negative.max() if negative.size else 0.0) - 1
            se_k0 = np.sqrt(2 * max(0.0, raw) + 2)
        k0 = max(0, round(raw))
        se_k0 = max(0.0, float(se_k0))
        if k0 >= k:  # pragma: no cover - L0 <= k-1/2 and R0 <= k-1 by construction
            raise DataError("trim and fill estimated as many missing studies as observed")

    observed = pool(y0, v0, method=method, level=level, threshold=threshold)
    mirrored = order[k - k0:]
    filled_yi = sign * (2 * mu - y[k - k0:])
    filled_vi, filled_n = v0[mirrored], n0[mirrored]
    if k0 > 0:
        adjusted = pool(np.concatenate([y0, filled_yi]), np.concatenate([v0, filled_vi]),
                        method=method, level=level, threshold=threshold)
    else:
        adjusted = observed
    note = join_notes(observed.note, correction_note(effects))
    return TrimFillResult(label, scale, method, side, estimator, k, int(k0), se_k0,
                          iterations, observed, adjusted, names, y0.copy(), v0.copy(),
                          n0.copy(), filled_yi, filled_vi, filled_n,
                          tuple(names[i] for i in mirrored), note)


def trimfill(
    data: StudyTable | ArrayLike,
    totals: ArrayLike | None = None,
    *,
    side: str | None = None,
    estimator: str = "L0",
    method: str = "REML",
    scale: str = "logit",
    add: float | None = None,
    to: str = "only0",
    level: float = 0.95,
    maxiter: int = 100,
    outcome: str | None = None,
    subgroup: str | None = None,
    labels: Sequence[object] | None = None,
    threshold: float = 1e-10,
) -> TrimFillResult:
    """Trim and fill of single proportions (metafor
    ``trimfill(rma(measure="PLO", xi=, ni=, method=), side=, estimator=)``).

    See :func:`trimfill_effects` and the module docstring; counts and the continuity
    correction as :func:`~bayes_poem.frequentist.pool_proportions`.
    """
    effects = bias_effects(data, totals, scale=scale, add=add, to=to, outcome=outcome,
                           subgroup=subgroup, labels=labels)
    return trimfill_effects(effects.yi, effects.vi, effects.totals, side=side,
                            estimator=estimator, method=method, level=level, maxiter=maxiter,
                            threshold=threshold, labels=effects.labels, scale=scale,
                            label=subgroup_label(data, subgroup), effects=effects)
