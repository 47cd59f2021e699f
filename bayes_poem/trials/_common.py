"""Shared vocabulary and input checks of the trial modules.

Arms are ``anterior`` (the reference) and ``posterior`` (the experimental arm
whose non-inferiority is assessed). Every contrast is *posterior minus (or over)
anterior*. The direction of non-inferiority comes from the outcome, never from
the sign of the margin, which is always > 0:

* binary ``kind = "benefit"`` (clinical success): non-inferior if
  ``p_posterior - p_anterior > -margin``;
* binary ``kind = "harm"`` (adverse events, GERD): non-inferior if
  ``p_posterior - p_anterior < +margin``;
* continuous ``better = "higher"``: non-inferior if the difference in change is
  ``> -margin``; ``better = "lower"`` (Eckardt score, LES pressure): ``< +margin``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from bayes_poem.dims import ARM
from bayes_poem.errors import DataError, SpecError

ANTERIOR = "anterior"
POSTERIOR = "posterior"
ARMS = (ANTERIOR, POSTERIOR)
ARM_DIM = ARM

Kind = Literal["benefit", "harm"]
KINDS = ("benefit", "harm")
Better = Literal["higher", "lower"]
BETTERS = ("higher", "lower")


def is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def check_number(value: Any, where: str) -> float:
    if not is_number(value) or not math.isfinite(float(value)):
        raise SpecError(f"{where}: must be a finite number (got {value!r})")
    return float(value)


def check_positive(value: Any, where: str) -> float:
    number = check_number(value, where)
    if number <= 0:
        raise SpecError(f"{where}: must be > 0 (got {number:g})")
    return number


def check_margin(margin: Any, where: str = "margin") -> float:
    """A non-inferiority margin: a finite number > 0 (the direction is set elsewhere)."""
    number = check_number(margin, where)
    if number <= 0:
        raise SpecError(
            f"{where}: must be > 0 (got {number:g}); the margin is a size, its direction "
            "comes from the outcome (kind = benefit/harm, better = higher/lower)"
        )
    return number


def check_kind(kind: Any, where: str = "kind") -> str:
    if kind not in KINDS:
        raise SpecError(f"{where}: '{kind}' is not one of {', '.join(KINDS)}")
    return str(kind)


def check_better(better: Any, where: str = "better") -> str:
    if better not in BETTERS:
        raise SpecError(f"{where}: '{better}' is not one of {', '.join(BETTERS)}")
    return str(better)


def check_probability(value: Any, where: str) -> float:
    number = check_number(value, where)
    if not 0.0 < number < 1.0:
        raise SpecError(f"{where}: must be strictly between 0 and 1 (got {number:g})")
    return number


def check_count(value: Any, where: str, *, minimum: int = 0) -> int:
    """A whole number >= ``minimum`` (floats with no fractional part are accepted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{where}: must be an integer (got {value!r})")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise SpecError(f"{where}: must be an integer (got {value!r})")
    number = int(value)
    if number < minimum:
        raise SpecError(f"{where}: must be >= {minimum} (got {number})")
    return number


def check_arm_counts(events: Any, total: Any, where: str) -> tuple[int, int]:
    """Events and total of one arm; ``DataError`` naming ``where`` if impossible."""
    values = []
    for name, value in (("events", events), ("total", total)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DataError(f"{where}: {name} must be an integer count (got {value!r})")
        if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
            raise DataError(f"{where}: {name} must be an integer count (got {value!r})")
        values.append(int(value))
    events_i, total_i = values
    if total_i <= 0:
        raise DataError(f"{where}: total is {total_i}: an arm with no patients")
    if events_i < 0:
        raise DataError(f"{where}: events is negative ({events_i})")
    if events_i > total_i:
        raise DataError(f"{where}: events ({events_i}) > total ({total_i})")
    return events_i, total_i


def check_seed(seed: Any, where: str = "seed") -> int:
    return check_count(seed, where, minimum=0)


def check_keys(mapping: Any, allowed: tuple[str, ...], where: str) -> dict[str, Any]:
    """A mapping with only ``allowed`` keys; ``SpecError`` listing them otherwise."""
    if not isinstance(mapping, dict):
        raise SpecError(f"{where}: must be a table (got {mapping!r})")
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        raise SpecError(f"{where}: unknown key '{unknown[0]}'; valid keys: {', '.join(allowed)}")
    return dict(mapping)


def noninferiority_statement(kind_or_better: str, margin: float, scale: str) -> str:
    """The hypothesis in words, e.g. ``P(p_posterior - p_anterior > -0.1)``."""
    if kind_or_better in ("benefit", "higher"):
        return f"P({scale} > -{margin:g})"
    return f"P({scale} < +{margin:g})"
