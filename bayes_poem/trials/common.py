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
import numbers
from typing import Any, Literal

import numpy as np

from bayes_poem.dims import ARM
from bayes_poem.errors import DataError, SpecError
from bayes_poem.table import MAX_COUNT

ANTERIOR = "anterior"
POSTERIOR = "posterior"
ARMS = (ANTERIOR, POSTERIOR)
ARM_DIM = ARM

Kind = Literal["benefit", "harm"]
KINDS = ("benefit", "harm")
Better = Literal["higher", "lower"]
BETTERS = ("higher", "lower")


# Upper bounds of the integer settings. They catch typos (draws = 1e12) before
# numpy tries to allocate; each is far beyond any useful value.
MAX_DRAWS = 10**7  # direct posterior draws: MCSE of a probability < 0.0002 already
MAX_SIMULATIONS = 10**6  # simulated trials, each decided by quadrature; MCSE < 0.0005
MAX_N_PER_ARM = 10**6  # planned patients per arm
MAX_PATIENTS = MAX_COUNT  # observed patients per arm, as per row of a study table
MAX_SEED = 2**63 - 1  # numpy takes any seed; TOML integers are signed 64-bit


def is_number(value: Any) -> bool:
    return not isinstance(value, bool | np.bool_) and isinstance(value, numbers.Real)


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return math.inf


def check_number(value: Any, where: str) -> float:
    if not is_number(value) or not math.isfinite(_as_float(value)):
        raise SpecError(f"{where}: must be a finite number (got {value!r})")
    return float(value)


def check_positive(value: Any, where: str) -> float:
    number = check_number(value, where)
    if number <= 0:
        raise SpecError(f"{where}: must be > 0 (got {number:g})")
    return number


def check_margin(margin: Any, where: str = "margin", *, risk_difference: bool) -> float:
    """A non-inferiority margin: a finite number > 0 (the direction is set elsewhere).

    On the risk-difference scale (``risk_difference=True``: binary trials, their
    meta-analysis and designs) it must also be < 1: a difference of two
    probabilities lies in (-1, 1), so a margin >= 1 declares any result
    non-inferior. A margin in outcome units (continuous trials) has no upper bound.
    """
    number = check_number(margin, where)
    if number <= 0:
        raise SpecError(
            f"{where}: must be > 0 (got {number:g}); the margin is a size, its direction "
            "comes from the outcome (kind = benefit/harm, better = higher/lower)"
        )
    if risk_difference and number >= 1:
        raise SpecError(
            f"{where}: must be < 1 on the risk-difference scale (got {number:g}); a "
            "difference of two probabilities is below 1, e.g. 0.1 for 10 percentage points"
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


def check_count(value: Any, where: str, *, minimum: int = 0, maximum: int) -> int:
    """A whole number in [``minimum``, ``maximum``].

    Floats with no fractional part are accepted (``draws = 2e4`` in TOML) when in
    range; bools, other floats, NaN and infinities are not.
    """
    expected = f"{where}: must be an integer from {minimum} to {maximum} (got {value!r})"
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise SpecError(expected)
    if not isinstance(value, numbers.Integral) and (
            not math.isfinite(_as_float(value)) or not float(value).is_integer()):
        raise SpecError(expected)
    number = int(value)
    if number < minimum:
        raise SpecError(f"{where}: must be >= {minimum} (got {number})")
    if number > maximum:
        raise SpecError(f"{where}: must be <= {maximum} (got {number})")
    return number


def check_arm_counts(events: Any, total: Any, where: str) -> tuple[int, int]:
    """Events and total of one arm; ``DataError`` naming ``where`` if impossible."""
    values = []
    for name, value in (("events", events), ("total", total)):
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real) or (
                not isinstance(value, numbers.Integral)
                and not (math.isfinite(_as_float(value)) and float(value).is_integer())):
            raise DataError(f"{where}: {name} must be an integer count (got {value!r})")
        values.append(int(value))
        if values[-1] > MAX_PATIENTS:
            raise DataError(f"{where}: {name} ({values[-1]}) is too large (at most "
                            f"{MAX_PATIENTS:,} patients per arm)")
    events_i, total_i = values
    if total_i <= 0:
        raise DataError(f"{where}: total is {total_i}: an arm with no patients")
    if events_i < 0:
        raise DataError(f"{where}: events is negative ({events_i})")
    if events_i > total_i:
        raise DataError(f"{where}: events ({events_i}) > total ({total_i})")
    return events_i, total_i


def check_seed(seed: Any, where: str = "seed") -> int:
    """A seed: an integer in [0, 2^63 - 1] (a float would silently lose digits)."""
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, numbers.Integral):
        raise SpecError(f"{where}: must be an integer from 0 to {MAX_SEED} (got {seed!r})")
    return check_count(seed, where, minimum=0, maximum=MAX_SEED)


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
