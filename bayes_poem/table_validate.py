"""Validation of a study table's rows (moved from :mod:`bayes_poem.table`, unchanged).

The column constants, :data:`MAX_COUNT`, the reserved labels, and ``_validate``:
required columns, counts (integers, ``0 <= events <= total``, ``1 <= total <=
MAX_COUNT``), labels (one line, no control characters, no ``|`` in study and
subgroup labels, no subgroup ``overall``, none differing only by case or
whitespace), duplicates; every error a ``DataError`` naming the source, the row
(and the file line) and the column. :mod:`bayes_poem.table` re-exports the
public names.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

from bayes_poem.errors import DataError

__all__ = ["COUNT_COLUMNS", "LABEL_COLUMNS", "MAX_COUNT", "REQUIRED_COLUMNS",
           "RESERVED_CHARACTER", "RESERVED_SUBGROUPS", "SINGLE_GROUP_LABEL", "check_label"]

REQUIRED_COLUMNS = ("study", "outcome", "events", "total")
LABEL_COLUMNS = ("study", "subgroup", "outcome")
COUNT_COLUMNS = ("events", "total")
SINGLE_GROUP_LABEL = "all"
# Largest count accepted in one row. Real rows hold at most some 10^5-10^6
# patients; 10^9 leaves room for registries while every sum the package forms
# (per subgroup, per study, over the table) stays far below 2^53, where float64
# (the compiled density, the tables) stops holding integers exactly, and below
# the int64 limit: 10^9 per row would need over nine million rows to reach 2^53.
MAX_COUNT = 10**9
# Row labels are "<study> | <subgroup>" (dims.ROW), so '|' in those labels could
# make two cells share one label; "overall" is the label of the weighted row
# added to every per-subgroup table (results.OVERALL).
RESERVED_CHARACTER = "|"
RESERVED_SUBGROUPS = ("overall",)

_INT_PATTERN = re.compile(r"^[+]?[0-9]+(\.0*)?$")


def _where(source: str, row: int, lines: list[int] | None, column: str | None = None) -> str:
    line = f" (line {lines[row - 1]})" if lines else ""
    col = f", column '{column}'" if column else ""
    return f"{source}: row {row}{line}{col}"


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    if value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, str) and value.strip() == ""


def _validate(
    raw: pd.DataFrame, source: str, lines: list[int] | None
) -> tuple[pd.DataFrame, str, bool]:
    raw = raw.rename(columns=lambda c: str(c).strip())
    dup_cols = raw.columns[raw.columns.duplicated()].tolist()
    if dup_cols:
        raise DataError(f"{source}: duplicate column(s) {', '.join(map(repr, dup_cols))}")
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(
            f"{source}: missing required column(s) {', '.join(map(repr, missing))}; "
            f"columns found: {', '.join(raw.columns) or '(none)'}"
        )
    if raw.empty:
        raise DataError(f"{source}: the table has no rows")

    has_subgroups = "subgroup" in raw.columns
    frame = raw.reset_index(drop=True).copy()
    if not has_subgroups:
        frame.insert(1, "subgroup", SINGLE_GROUP_LABEL)

    rows = range(1, len(frame) + 1)
    for column in LABEL_COLUMNS:
        labels = []
        for row, value in zip(rows, frame[column], strict=True):
            if _is_missing(value):
                raise DataError(f"{_where(source, row, lines, column)}: missing value")
            labels.append(check_label(str(value).strip(), column,
                                       _where(source, row, lines, column)))
        frame[column] = labels
        _check_label_spelling(frame[column], column, source, lines)

    for column in COUNT_COLUMNS:
        frame[column] = [
            _parse_count(value, _where(source, row, lines, column))
            for row, value in zip(rows, frame[column], strict=True)
        ]
        frame[column] = frame[column].astype("int64")

    for row, events, total in zip(rows, frame["events"], frame["total"], strict=True):
        if total == 0:
            raise DataError(
                f"{_where(source, row, lines, 'total')}: total is 0 (a row needs >= 1 patient)"
            )
        if events > total:
            raise DataError(
                f"{_where(source, row, lines, 'events')}: events ({events}) > total ({total})"
            )

    key = list(LABEL_COLUMNS)
    repeated = frame.duplicated(key, keep="first")
    if repeated.any():
        second = int(np.flatnonzero(repeated.to_numpy())[0])
        same = (frame[key] == frame.loc[second, key]).all(axis=1).to_numpy()
        first = int(np.flatnonzero(same)[0])
        cells = " x ".join(str(frame.loc[second, c]) for c in key)
        where = (f"rows {first + 1} and {second + 1}" if not lines else
                 f"rows {first + 1} and {second + 1} (lines {lines[first]} and {lines[second]})")
        raise DataError(f"{source}: {where} repeat study x subgroup x outcome ({cells})")

    ordered = [*LABEL_COLUMNS, *COUNT_COLUMNS]
    frame = frame[ordered + [c for c in frame.columns if c not in ordered]]
    return frame, source, has_subgroups


def _parse_count(value: object, where: str) -> int:
    if _is_missing(value):
        raise DataError(f"{where}: missing value")
    if isinstance(value, bool | np.bool_):
        raise DataError(f"{where}: {value!r} is not a count")
    if isinstance(value, int | np.integer):
        number = int(value)
    elif isinstance(value, float | np.floating):
        if not float(value).is_integer():
            raise DataError(f"{where}: {float(value)!r} is not an integer count")
        number = int(value)
    else:
        text = str(value).strip()
        if text.startswith("-") and _INT_PATTERN.match(text[1:]):
            raise DataError(f"{where}: negative count ({_shorten(text)})")
        if not _INT_PATTERN.match(text):
            raise DataError(f"{where}: {_shorten(text)!r} is not an integer count")
        digits = text.split(".")[0].lstrip("+").lstrip("0")
        if len(digits) > len(str(MAX_COUNT)):  # also keeps int() away from huge strings
            raise DataError(f"{where}: count {_shorten(digits)} is too large (at most "
                            f"{MAX_COUNT:,} per row)")
        number = int(digits or "0")
    if number < 0:
        raise DataError(f"{where}: negative count ({_shorten(str(number))})")
    if number > MAX_COUNT:
        raise DataError(f"{where}: count {_shorten(str(number))} is too large "
                        f"(at most {MAX_COUNT:,} per row)")
    return number


def check_label(label: str, column: str, where: str) -> str:
    """A label as the model's coordinates need it: one line, unambiguous (the tables'
    label columns here, the trials' study labels in ``trials.prepare_meta``)."""
    if not label:
        raise DataError(f"{where}: missing value")
    bad = next((ch for ch in label if unicodedata.category(ch) in _CONTROL_CATEGORIES), None)
    if bad is not None:
        raise DataError(f"{where}: label {_shorten(label)!r} contains the control character "
                        f"U+{ord(bad):04X}; a label must be one line of printable text")
    if column in ("study", "subgroup") and RESERVED_CHARACTER in label:
        raise DataError(f"{where}: label {_shorten(label)!r} contains '{RESERVED_CHARACTER}', "
                        "which is reserved: it separates study and subgroup in row "
                        "labels ('<study> | <subgroup>')")
    if column == "subgroup" and label.casefold() in RESERVED_SUBGROUPS:
        raise DataError(f"{where}: the subgroup label {label!r} is reserved for the weighted "
                        "average of all subgroups in the results; rename it")
    return label


# Control characters, lone surrogates, line and paragraph separators.
_CONTROL_CATEGORIES = ("Cc", "Cs", "Zl", "Zp")


def _shorten(text: str, width: int = 30) -> str:
    return text if len(text) <= width else f"{text[:width]}..."


def _normalise_label(label: str) -> str:
    return " ".join(label.split()).casefold()


def _check_label_spelling(labels: pd.Series, column: str, source: str,
                          lines: list[int] | None) -> None:
    seen: dict[str, tuple[str, int]] = {}
    for row, label in enumerate(labels, start=1):
        norm = _normalise_label(label)
        if norm in seen and seen[norm][0] != label:
            other, other_row = seen[norm]
            raise DataError(
                f"{_where(source, row, lines, column)}: label {label!r} differs from "
                f"{other!r} (row {other_row}) only by case or whitespace"
            )
        seen.setdefault(norm, (label, row))
