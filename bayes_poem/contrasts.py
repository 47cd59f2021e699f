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

With random (partially pooled) subgroup effects the subgroups shrink towards
each other, and so does every contrast between them. :func:`with_unpooled` puts
the same contrast from the unpooled structure (a fit with fixed subgroup
effects, :mod:`bayes_poem.unpooled`) beside each row, in the columns
:data:`UNPOOLED_COLUMNS`.
"""

from __future__ import annotations

import math
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
KEY = ("contrast", "quantity", "scale")
UNPOOLED_COLUMNS = ("unpooled_median", "unpooled_lower", "unpooled_upper",
                    "unpooled_p_gt_null", "unpooled_p_gt_margin", "unpooled_problems")
"""The unpooled contrast's columns: the ``median``, ``lower``, ``upper``,
``p_gt_null`` and ``p_gt_margin`` of the fixed-subgroup-effects fit (same interval,
margins, weights and ``at``), and that fit's failed diagnostics (empty if none)."""


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

    Raises
    ------
    SpecError
        If ``a`` and ``b`` are not two different labels, a margin is not a
        finite number (ratio margins: finite and > 0), or ``quantity`` is
        unknown. Checked on construction, so the Python API and TOML specs
        (:meth:`from_mapping`) get the same validation.
    """

    a: str
    b: str
    margin: float = 0.0
    ratio_margin: float = 1.0
    odds_ratio_margin: float = 1.0
    quantity: str = "p_pooled"

    def __post_init__(self) -> None:
        margins = _checked(self.a, self.b, self.quantity,
                           {"margin": self.margin, "ratio_margin": self.ratio_margin,
                            "odds_ratio_margin": self.odds_ratio_margin}, "Contrast")
        for key, value in margins.items():
            object.__setattr__(self, key, value)  # plain floats (ints, numpy scalars in)

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
            if key not in entry:
                raise SpecError(f"{where}: key '{key}' (a subgroup label) is required")
        numbers = {key: entry[key] for key in MARGIN_KEYS if key in entry}
        quantity = entry.get("quantity", "p_pooled")
        numbers = _checked(entry["a"], entry["b"], quantity, numbers, where)
        return cls(entry["a"], entry["b"], quantity=quantity, **numbers)


MARGIN_KEYS = ("margin", "ratio_margin", "odds_ratio_margin")


def _checked(a: Any, b: Any, quantity: Any, margins: Mapping[str, Any],
             where: str) -> dict[str, float]:
    """Validate a contrast's fields (``SpecError`` naming ``where.key``); the margins
    as floats. Margins on the difference scale are finite; on the ratio and
    odds-ratio scales finite and > 0 (the scale's range: a NaN or infinite margin
    would make ``P(> margin)`` silently 0)."""
    for key, label in (("a", a), ("b", b)):
        if not isinstance(label, str) or not label:
            raise SpecError(f"{where}.{key}: must be a subgroup label (a non-empty string; "
                            f"got {label!r})")
    if a == b:
        raise SpecError(f"{where}: a and b must be two different subgroups (both '{a}')")
    out = {}
    for key, value in margins.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer
                                                     | np.floating):
            raise SpecError(f"{where}.{key}: must be a number (got {value!r})")
        try:
            number = float(value)
        except OverflowError:  # an int beyond the float range
            number = math.inf
        valid = "a finite number" if key == "margin" else "a finite number > 0 (a ratio)"
        if not math.isfinite(number) or (key != "margin" and number <= 0):
            shown = repr(value) if len(repr(value)) <= 24 else f"{repr(value)[:20]}..."
            raise SpecError(f"{where}.{key}: must be {valid}; got {shown}")
        out[key] = number
    if not isinstance(quantity, str) or quantity not in QUANTITIES:
        raise SpecError(f"{where}.quantity: {quantity!r} is not one of "
                        f"{', '.join(QUANTITIES)}")
    return out


def check_contrast_labels(contrasts: Sequence[Contrast], subgroups: tuple[str, ...],
                          subgroup_effects: str, source: str) -> None:
    """The ``[[contrasts]]`` of a spec against its model: subgroup effects to contrast,
    ``a`` and ``b`` among the data's ``subgroups``, and no pair (with its quantity)
    twice. One ``SpecError`` naming ``source`` (the spec file) and the key."""
    if contrasts and subgroup_effects == "none":
        raise SpecError(f"{source}: contrasts need subgroup effects "
                        "(model.subgroup_effects = 'random' or 'fixed')")
    seen: dict[tuple[str, str, str], int] = {}
    for i, contrast in enumerate(contrasts, start=1):
        for key, label in (("a", contrast.a), ("b", contrast.b)):
            if label not in subgroups:
                raise SpecError(
                    f"{source}: contrasts[{i}].{key}: subgroup '{label}' is not in "
                    f"the data; subgroups: {', '.join(subgroups)}"
                )
        pair = (contrast.a, contrast.b, contrast.quantity)
        if pair in seen:  # the same rows twice in contrasts.csv and the sensitivity grid
            raise SpecError(f"{source}: contrasts[{i}] repeats contrasts[{seen[pair]}]"
                            f" ({contrast.label}, {contrast.quantity}); give each pair once")
        seen[pair] = i


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


def with_unpooled(pooled: pd.DataFrame, unpooled: pd.DataFrame,
                  problems: Sequence[str] = ()) -> pd.DataFrame:
    """``pooled`` (a :func:`contrast_table`) with the columns :data:`UNPOOLED_COLUMNS`
    taken from ``unpooled``, the same contrasts' table of the unpooled fit.

    Rows are matched on (contrast, quantity, scale), never by position; both tables
    must hold the same rows and the same interval (else ``ValueError``: a bug, the
    two are computed from one list of contrasts). ``problems`` are the unpooled fit's
    failed diagnostics, joined into ``unpooled_problems``.
    """
    if pooled.empty:
        return pooled.reindex(columns=[*pooled.columns, *UNPOOLED_COLUMNS])
    keys = list(KEY)
    if (sorted(map(tuple, pooled[keys].to_numpy())) != sorted(
            map(tuple, unpooled[keys].to_numpy()))
            or set(pooled["interval"]) != set(unpooled["interval"])):
        raise ValueError("with_unpooled: the pooled and unpooled tables differ in rows "
                         "or interval")
    picked = unpooled[[*keys, "median", "lower", "upper", "p_gt_null", "p_gt_margin"]]
    picked = picked.rename(columns={c: f"unpooled_{c}" for c in picked.columns
                                    if c not in keys})
    out = pooled.merge(picked, on=keys, how="left", validate="one_to_one")
    out["unpooled_problems"] = "; ".join(problems)
    return out
