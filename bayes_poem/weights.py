"""Subgroup weights of the ``overall`` rows (``summary.weights``): the one check.

Used by :func:`bayes_poem.specfile.parse_spec` (the TOML key) and by
:class:`~bayes_poem.results.FitResult` (the Python API); ``check_weight_labels``
(the labels against the data's subgroups) by ``AnalysisSpec.model_spec``. A leaf
module, so that results never import the spec-file layer above them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from bayes_poem.errors import SpecError

__all__ = ["check_weight_labels", "check_weights"]


def check_weights(weights: Any, source: str | None = None) -> dict[str, float]:
    """Subgroup weights of the ``overall`` rows: finite numbers >= 0 with a finite, positive sum.

    The one check of ``summary.weights``, used by :func:`parse_spec` (``source``
    is the spec file) and by :class:`~bayes_poem.results.FitResult` (the Python
    API). NaN, infinities and values whose sum overflows (``1e308`` twice) would
    turn every ``overall`` row into 0 or NaN; ``SpecError`` names the key and the
    value instead.
    """
    key = "summary.weights"
    where = f"{source}: {key}" if source else key
    if not isinstance(weights, Mapping) or not weights:
        raise SpecError(f"{where}: must be a non-empty table subgroup = number "
                        f"(got {_shown(weights)})")
    out = {}
    for label, value in weights.items():
        if not isinstance(label, str):
            raise SpecError(f"{where}: subgroup labels must be strings (got {label!r})")
        name = f"{key}.{label}" if label.isprintable() else f"{key}[{label!r}]"
        try:
            number = (float(value) if isinstance(value, numbers.Real)
                      and not isinstance(value, bool | np.bool_) else math.nan)
        except OverflowError:  # an int beyond float range
            number = math.inf
        if not math.isfinite(number):
            raise SpecError(f"{where.removesuffix(key)}{name}: must be a finite number >= 0 "
                            f"(got {_shown(value)})")
        if number < 0:
            raise SpecError(f"{where} must be >= 0 with a positive sum ({name} = {number:g})")
        out[label] = number
    total = sum(out.values())
    if not math.isfinite(total):
        raise SpecError(f"{where}: the sum of the weights overflows ({total}); only their "
                        "ratios matter, so use smaller numbers")
    if total <= 0:
        raise SpecError(f"{where} must be >= 0 with a positive sum (all are 0)")
    return out


def check_weight_labels(weights: Mapping[str, float] | None, subgroups: tuple[str, ...],
                        source: str) -> None:
    """Every label of ``summary.weights`` is one of the model's ``subgroups``: else one
    ``SpecError`` naming ``source`` (the spec file), the key and the subgroups there are."""
    unknown = [k for k in (weights or {}) if k not in subgroups]
    if unknown:
        raise SpecError(f"{source}: summary.weights: unknown subgroup(s) "
                        f"{', '.join(unknown)}; subgroups: {', '.join(subgroups)}")


def _shown(value: Any, width: int = 60) -> str:
    """``repr`` of a value for a message, cut to one short line (as the spec file's)."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width]}..."
