"""Turn a :class:`~bayes_poem.table.StudyTable` or plain arrays into checked counts.

Every public entry point of :mod:`bayes_poem.frequentist` accepts either a
``StudyTable`` (already validated by :func:`~bayes_poem.table.load_table`) or
plain array-likes. Plain arrays are validated here with the same rules as the
loader (integer counts, ``0 <= events <= total``, ``total >= 1``) and a
:class:`~bayes_poem.errors.DataError` naming the entry on failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from bayes_poem.errors import DataError, SpecError
from bayes_poem.table import StudyTable

__all__ = [
    "Counts",
    "TwoArmCounts",
    "check_level",
    "counts_from",
    "effect_arrays",
    "two_arm_counts_from",
]


@dataclass(frozen=True)
class Counts:
    """Binomial counts of one group of studies (one outcome, one subgroup).

    Attributes
    ----------
    labels : tuple of str
        Study labels, in input order.
    events, totals : numpy.ndarray
        Float arrays of integer-valued counts.
    source : str
        Where the counts came from, for messages.
    """

    labels: tuple[str, ...]
    events: np.ndarray
    totals: np.ndarray
    source: str

    @property
    def k(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class TwoArmCounts:
    """Counts of two-arm trials: ``a`` events of ``n1`` (treated), ``c`` of ``n2`` (control)."""

    labels: tuple[str, ...]
    a: np.ndarray
    n1: np.ndarray
    c: np.ndarray
    n2: np.ndarray
    source: str

    @property
    def k(self) -> int:
        return len(self.labels)


def effect_arrays(yi: ArrayLike, vi: ArrayLike, min_k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Effect sizes and sampling variances as checked float arrays (``DataError`` if bad)."""
    try:
        y = np.asarray(yi, dtype=float)
        v = np.asarray(vi, dtype=float)
    except (TypeError, ValueError):
        raise DataError("yi and vi must be numbers") from None
    if y.ndim != 1 or v.shape != y.shape:
        raise DataError(f"yi and vi must be 1-D arrays of equal length (got {y.shape}, "
                        f"{v.shape})")
    if y.size < min_k:
        raise DataError(f"need at least {min_k} studies (got {y.size})")
    if not np.all(np.isfinite(y)):
        raise DataError("yi: every effect size must be finite")
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise DataError("vi: every sampling variance must be finite and > 0")
    return y, v


def check_level(level: float) -> float:
    """Return ``level`` as a float in (0, 1) or raise :class:`SpecError`."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise SpecError(f"level: {level!r} is not a number in (0, 1)") from None
    if not 0.0 < value < 1.0:
        raise SpecError(f"level: {level!r} must lie strictly between 0 and 1 (e.g. 0.95)")
    return value


def _as_counts(values: ArrayLike, name: str, source: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise DataError(f"{source}: {name} must be numbers") from None
    if arr.ndim != 1:
        raise DataError(f"{source}: {name} must be one-dimensional (got shape {arr.shape})")
    for i, value in enumerate(arr, start=1):
        if not np.isfinite(value):
            raise DataError(f"{source}: {name} entry {i} is missing or not finite ({value})")
        if value < 0:
            raise DataError(f"{source}: {name} entry {i} is negative ({value:g})")
        if not float(value).is_integer():
            raise DataError(f"{source}: {name} entry {i} is not an integer count ({value:g})")
    return arr


def _check_pair(events: np.ndarray, totals: np.ndarray, labels: Sequence[str], source: str,
                what: str = "") -> None:
    for i, (x, n, label) in enumerate(zip(events, totals, labels, strict=True), start=1):
        where = f"{source}: entry {i} (study {label!r}){what}"
        if n == 0:
            raise DataError(f"{where}: total is 0 (a study needs >= 1 patient)")
        if x > n:
            raise DataError(f"{where}: events ({x:g}) > total ({n:g})")


def _labels(labels: Sequence[object] | None, k: int, source: str) -> tuple[str, ...]:
    if labels is None:
        return tuple(str(i) for i in range(1, k + 1))
    out = tuple(str(label) for label in labels)
    if len(out) != k:
        raise DataError(f"{source}: {len(out)} labels for {k} studies")
    if len(set(out)) != k:
        raise DataError(f"{source}: study labels are not unique")
    return out


def _select(table: StudyTable, outcome: str | None, subgroup: str | None,
            allow_many_subgroups: bool = False) -> StudyTable:
    if outcome is not None:
        table = table.for_outcome(outcome)
    elif len(table.outcomes) != 1:
        raise SpecError(
            f"{table.source}: the table has outcomes {', '.join(table.outcomes)}; "
            "choose one with outcome=..."
        )
    if subgroup is not None:
        table = table.with_subgroups([subgroup])
    elif len(table.subgroups) != 1 and not allow_many_subgroups:
        raise SpecError(
            f"{table.source}: the table has subgroups {', '.join(table.subgroups)}; "
            "choose one with subgroup=... or use subgroup_analysis()"
        )
    return table


def counts_from(
    data: StudyTable | ArrayLike,
    totals: ArrayLike | None = None,
    *,
    labels: Sequence[object] | None = None,
    outcome: str | None = None,
    subgroup: str | None = None,
    source: str = "arrays",
) -> Counts:
    """Counts of one outcome and one subgroup.

    Parameters
    ----------
    data : StudyTable or array-like
        A table, or the event counts.
    totals : array-like, optional
        The totals, required with array input and forbidden with a table.
    labels : sequence, optional
        Study labels for array input (default ``"1"``, ``"2"``, ...).
    outcome, subgroup : str, optional
        Selection from a table; needed when the table holds several.

    Raises
    ------
    DataError
        For invalid counts (total 0, events > total, negative, non-integer, missing).
    SpecError
        For an ambiguous selection or arguments that do not fit the input type.
    """
    if isinstance(data, StudyTable):
        if totals is not None or labels is not None:
            raise SpecError("totals and labels are taken from the table; do not pass them")
        table = _select(data, outcome, subgroup)
        frame = table.frame
        return Counts(tuple(frame["study"]), frame["events"].to_numpy(dtype=float),
                      frame["total"].to_numpy(dtype=float), table.source)
    if totals is None:
        raise SpecError("with array input, pass both events and totals")
    if outcome is not None or subgroup is not None:
        raise SpecError("outcome= and subgroup= select rows of a StudyTable, not of arrays")
    events = _as_counts(data, "events", source)
    tot = _as_counts(totals, "totals", source)
    if events.shape != tot.shape:
        raise DataError(f"{source}: {events.size} events but {tot.size} totals")
    if events.size == 0:
        raise DataError(f"{source}: no studies")
    names = _labels(labels, events.size, source)
    _check_pair(events, tot, names, source)
    return Counts(names, events, tot, source)


def two_arm_counts_from(
    data: StudyTable | ArrayLike,
    n1: ArrayLike | None = None,
    c: ArrayLike | None = None,
    n2: ArrayLike | None = None,
    *,
    treated: str = "treated",
    control: str = "control",
    labels: Sequence[object] | None = None,
    outcome: str | None = None,
    source: str = "arrays",
) -> TwoArmCounts:
    """Counts of two-arm trials from a table (subgroup = arm) or from four arrays.

    With a table, the rows of subgroup ``treated`` and ``control`` are paired by
    study; a study with only one of the two arms is a :class:`DataError`.
    """
    if isinstance(data, StudyTable):
        if any(v is not None for v in (n1, c, n2, labels)):
            raise SpecError("with a StudyTable, pass no count arrays or labels")
        table = _select(data, outcome, None, allow_many_subgroups=True)
        table = table.with_subgroups([treated, control])
        frame = table.frame
        arm_t = frame[frame["subgroup"] == treated].set_index("study")
        arm_c = frame[frame["subgroup"] == control].set_index("study")
        unpaired = sorted(set(arm_t.index) ^ set(arm_c.index))
        if unpaired:
            raise DataError(
                f"{table.source}: study {', '.join(map(repr, unpaired))} lacks the "
                f"'{treated}' or the '{control}' arm"
            )
        order = list(arm_t.index)
        arm_c = arm_c.loc[order]
        return TwoArmCounts(
            tuple(order), arm_t["events"].to_numpy(dtype=float),
            arm_t["total"].to_numpy(dtype=float), arm_c["events"].to_numpy(dtype=float),
            arm_c["total"].to_numpy(dtype=float), table.source,
        )
    if n1 is None or c is None or n2 is None:
        raise SpecError("with array input, pass a (treated events), n1, c (control events), n2")
    arrays = [_as_counts(v, name, source)
              for v, name in ((data, "a"), (n1, "n1"), (c, "c"), (n2, "n2"))]
    if len({arr.size for arr in arrays}) != 1:
        raise DataError(f"{source}: a, n1, c, n2 differ in length")
    if arrays[0].size == 0:
        raise DataError(f"{source}: no studies")
    names = _labels(labels, arrays[0].size, source)
    _check_pair(arrays[0], arrays[1], names, source, " (treated arm)")
    _check_pair(arrays[2], arrays[3], names, source, " (control arm)")
    return TwoArmCounts(names, *arrays, source)
