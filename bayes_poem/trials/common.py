"""Shared vocabulary and input checks of the trial modules (and the readers of a
trial spec's values: :func:`string_value`, :func:`margin_value`, ...).

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

import io
import math
import numbers
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from bayes_poem.dims import ARM
from bayes_poem.errors import DataError, SpecError
from bayes_poem.table import MAX_COUNT, read_text

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


# ---------------------------------------------------------------- spec values
# Readers of one value of a trial spec (``bayes_poem.trials.specfile``), used by the
# preparation of every analysis (``bayes_poem.trials.prepare``).
def shown(value: Any, width: int = 60) -> str:
    """``repr`` of a value for a message, cut to one short line."""
    text = repr(value)
    return text if len(text) <= width else f"{text[:width]}..."


def string_value(section: Mapping[str, Any], key: str, where: str,
                 default: str | None = None) -> str | None:
    """``section[key]`` (else ``default``): a string, or ``SpecError`` naming ``where.key``."""
    value = section.get(key, default)
    if value is not None and not isinstance(value, str):
        raise SpecError(f"{where}.{key}: must be a string (got {value!r})")
    return value


def margin_value(section: Mapping[str, Any], where: str, required: bool = True, *,
                 risk_difference: bool = True) -> float | None:
    """The section's margin: in (0, 1) for risk differences, > 0 in outcome units."""
    if "margin" not in section:
        if required:
            scale = "in (0, 1)" if risk_difference else "> 0"
            raise SpecError(f"{where}.margin: is required (a number {scale})")
        return None
    return check_margin(section["margin"], f"{where}.margin", risk_difference=risk_difference)


def studies_mapping(value: Any, where: str) -> dict[str, list[str]]:
    """``outcome = [trial labels]`` tables (empty when not given)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: must be a table outcome = [trial labels] "
                        f"(got {shown(value)})")
    out = {}
    for outcome, labels in value.items():
        if not isinstance(labels, list) or not labels or not all(
                isinstance(s, str) for s in labels):
            raise SpecError(f"{where}.{outcome}: must be a non-empty list of trial labels "
                            f"(got {shown(labels)})")
        out[str(outcome)] = list(labels)
    return out


def read_csv(path: Path, source: str) -> pd.DataFrame:
    """A CSV file as strings; every OS error named, a FIFO never blocks (``DataError``)."""
    text = read_text(path, source)
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{source}: not a readable CSV file ({err})") from None
