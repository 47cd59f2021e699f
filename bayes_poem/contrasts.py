r"""Contrasts between subgroups on the difference, ratio and odds-ratio scales.

For subgroups :math:`a` and :math:`b` with probability draws :math:`p_a, p_b`
(by default the median-study probabilities ``p_pooled``):

* difference :math:`p_a - p_b` (null value 0),
* ratio :math:`p_a / p_b` (null 1),
* odds ratio :math:`\frac{p_a/(1-p_a)}{p_b/(1-p_b)}` (null 1).

Reported per scale: posterior mean and median, credible interval,
:math:`P(\text{contrast} > \text{null})` and :math:`P(\text{contrast} > \text{margin})`
for a user margin on that scale. These replace the proportion difference and
its p-value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayes_poem.dims import SUBGROUP
from bayes_poem.errors import SpecError
from bayes_poem.intervals import IntervalSpec, describe

SCALES = ("difference", "ratio", "odds_ratio")
NULL_VALUE = {"difference": 0.0, "ratio": 1.0, "odds_ratio": 1.0}
QUANTITIES = ("p_pooled", "p_mean", "p_new")


@dataclass(frozen=True)
class Contrast:
    """Subgroup ``a`` versus subgroup ``b``.

    Parameters
    ----------
    a, b : str
        Subgroup labels.
    margin : float
        Margin on the difference scale for ``P(difference > margin)``.
    ratio_margin, odds_ratio_margin : float
        Margins on the ratio and odds-ratio scales.
    quantity : {"p_pooled", "p_mean", "p_new"}
        Which subgroup probability to contrast.
    """

    a: str
    b: str
    margin: float = 0.0
    ratio_margin: float = 1.0
    odds_ratio_margin: float = 1.0
    quantity: str = "p_pooled"

    @property
    def label(self) -> str:
        return f"{self.a} vs {self.b}"

    def margin_for(self, scale: str) -> float:
        return {"difference": self.margin, "ratio": self.ratio_margin,
                "odds_ratio": self.odds_ratio_margin}[scale]

    @classmethod
    def from_mapping(cls, entry: Mapping[str, Any], where: str = "contrasts") -> Contrast:
        allowed = ("a", "b", "margin", "ratio_margin", "odds_ratio_margin", "quantity")
        unknown = [k for k in entry if k not in allowed]
        if unknown:
            raise SpecError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                            f"valid keys: {', '.join(allowed)}")
        for key in ("a", "b"):
            if not isinstance(entry.get(key), str):
                raise SpecError(f"{where}: key '{key}' (a subgroup label) is required")
        numbers = {}
        for key in ("margin", "ratio_margin", "odds_ratio_margin"):
            if key in entry:
                value = entry[key]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise SpecError(f"{where}.{key}: must be a number (got {value!r})")
                numbers[key] = float(value)
        for key in ("ratio_margin", "odds_ratio_margin"):
            if key in numbers and numbers[key] <= 0:
                raise SpecError(f"{where}.{key}: must be > 0 (got {numbers[key]:g})")
        quantity = entry.get("quantity", "p_pooled")
        if quantity not in QUANTITIES:
            raise SpecError(f"{where}.quantity: '{quantity}' is not one of "
                            f"{', '.join(QUANTITIES)}")
        return cls(entry["a"], entry["b"], quantity=quantity, **numbers)


def contrast_draws(p_a: xr.DataArray, p_b: xr.DataArray) -> dict[str, xr.DataArray]:
    """Draws of the three contrast scales."""
    return {
        "difference": p_a - p_b,
        "ratio": p_a / p_b,
        "odds_ratio": (p_a / (1.0 - p_a)) / (p_b / (1.0 - p_b)),
    }


def contrast_table(
    probabilities: xr.Dataset,
    contrasts: Sequence[Contrast],
    interval: IntervalSpec,
) -> pd.DataFrame:
    """One row per contrast x scale; see the module docstring."""
    rows = []
    available = list(probabilities[SUBGROUP].values)
    for contrast in contrasts:
        for label in (contrast.a, contrast.b):
            if label not in available:
                raise SpecError(
                    f"contrast {contrast.label}: subgroup '{label}' is not in the model; "
                    f"subgroups: {', '.join(map(str, available))}"
                )
        if contrast.a == contrast.b:
            raise SpecError(f"contrast {contrast.label}: a and b must differ")
        p = probabilities[contrast.quantity]
        draws = contrast_draws(p.sel({SUBGROUP: contrast.a}), p.sel({SUBGROUP: contrast.b}))
        for scale in SCALES:
            values = np.asarray(draws[scale].values, dtype=float).ravel()
            margin = contrast.margin_for(scale)
            rows.append({
                "contrast": contrast.label,
                "a": contrast.a,
                "b": contrast.b,
                "quantity": contrast.quantity,
                "scale": scale,
                **describe(values, interval),
                "p_gt_null": float(np.mean(values > NULL_VALUE[scale])),
                "margin": margin,
                "p_gt_margin": float(np.mean(values > margin)),
            })
    return pd.DataFrame(rows)
