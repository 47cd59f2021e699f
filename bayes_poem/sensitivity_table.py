"""Reading a ``sensitivity.csv`` back, validated (``bayes-poem report`` does)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_poem.errors import DataError
from bayes_poem.sensitivity_grid import MAIN
from bayes_poem.sensitivity_run import OPTIONAL_COLUMNS, ROW_COLUMNS

STATUSES = ("ok", "diagnostics", "failed")
KINDS = ("probability", "heterogeneity", "contrast")
_TEXT_COLUMNS = ("variant", "group", "description", "status", "error", "quantity", "kind",
                 "interval", "flag")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read and validate a ``sensitivity.csv`` written by ``bayes-poem sensitivity``.

    Every column of :data:`ROW_COLUMNS` must be there (others are ignored), but for
    :data:`~bayes_poem.sensitivity_run.OPTIONAL_COLUMNS` (tables written before them:
    read as empty).
    ``status`` is ``ok``, ``diagnostics`` or ``failed``; a row that is not
    failed has a ``quantity``, a ``kind`` and finite ``median``, ``lower`` <=
    ``upper``; probabilities lie in [0, 1]; ``(variant, quantity)`` pairs are
    unique and the main analysis has a fitted row.

    Raises
    ------
    DataError
        One line naming the file, and the row (file line) and column where
        there is one.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err})") from None
    if b"\x00" in raw:
        raise DataError(f"{path}: not a CSV text file (binary data)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        header = [h.strip() for h in next(reader)]
        records, lines = [], []
        start = reader.line_num + 1
        for record in reader:
            if record and any(cell.strip() for cell in record):
                if len(record) != len(header):
                    raise DataError(f"{path}: line {start}: {len(record)} fields, but the "
                                    f"header has {len(header)}")
                records.append(record)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as err:
        raise DataError(f"{path}: not a readable CSV file ({err})") from None
    missing = [c for c in ROW_COLUMNS if c not in header and c not in OPTIONAL_COLUMNS]
    if missing:
        raise DataError(f"{path}: not a sensitivity table of 'bayes-poem sensitivity': missing "
                        f"column(s) {', '.join(missing)}")
    repeated = sorted({c for c in ROW_COLUMNS if header.count(c) > 1})
    if repeated:
        raise DataError(f"{path}: line 1: duplicate column(s) {', '.join(repeated)}")
    present = [c for c in ROW_COLUMNS if c in header]  # OPTIONAL_COLUMNS may be missing
    if not records:
        raise DataError(f"{path}: the table has no rows")
    at = {c: header.index(c) for c in present}
    columns: dict[str, list[Any]] = {c: [] for c in present}
    seen: dict[tuple[str, str], int] = {}
    for row, (line, record) in enumerate(zip(lines, records, strict=True), start=1):
        cells = {c: record[at[c]].strip() if c in at else "" for c in ROW_COLUMNS}

        def bad(column: str, problem: str, row: int = row, line: int = line) -> DataError:
            return DataError(f"{path}: row {row} (line {line}), column '{column}': {problem}")

        if not cells["variant"]:
            raise bad("variant", "missing value")
        if cells["status"] not in STATUSES:
            raise bad("status", f"{cells['status']!r} is not one of {', '.join(STATUSES)}")
        fitted = cells["status"] != "failed"
        numbers = {}
        for column in ("median", "lower", "upper", "p_gt_0", "p_gt_margin", "margin",
                       "divergences", "target_accept", "seconds"):
            numbers[column] = _number(cells[column], lambda p, c=column: bad(c, p))
        if fitted:
            for column in ("quantity", "kind"):
                if not cells[column]:
                    raise bad(column, "missing value (the row is not a failed variant)")
            if cells["kind"] not in KINDS:
                raise bad("kind", f"{cells['kind']!r} is not one of {', '.join(KINDS)}")
            for column in ("median", "lower", "upper"):
                if numbers[column] is None:
                    raise bad(column, "missing value (the row is not a failed variant)")
            if numbers["lower"] > numbers["upper"]:
                raise bad("lower", f"lower ({numbers['lower']:g}) > upper "
                                   f"({numbers['upper']:g})")
            if cells["kind"] == "contrast" and numbers["p_gt_0"] is None:
                raise bad("p_gt_0", "missing value (a contrast row)")
        for column in ("p_gt_0", "p_gt_margin"):
            if numbers[column] is not None and not 0.0 <= numbers[column] <= 1.0:
                raise bad(column, f"{numbers[column]:g} is not a probability in [0, 1]")
        for column in ("divergences", "seconds"):
            if numbers[column] is not None and numbers[column] < 0:
                raise bad(column, f"negative ({numbers[column]:g})")
        target = numbers["target_accept"]
        if target is not None and not 0.5 <= target < 1.0:
            raise bad("target_accept", f"{target:g} is not in [0.5, 1)")
        pair = (cells["variant"], cells["quantity"] if fitted else "")
        if pair in seen:
            what = f"variant {pair[0]!r}" + (f", quantity {pair[1]!r}" if fitted else "")
            raise DataError(f"{path}: rows {seen[pair]} and {row} repeat {what}")
        seen[pair] = row
        for column in present:
            if column in _TEXT_COLUMNS:
                columns[column].append(cells[column] or None)
            else:
                value = numbers[column]
                columns[column].append(float("nan") if value is None else value)
    frame = pd.DataFrame(columns, columns=present).reindex(columns=ROW_COLUMNS)
    failed = set(frame.loc[frame["status"] == "failed", "variant"])
    mixed = sorted(failed & set(frame.loc[frame["status"] != "failed", "variant"]))
    if mixed:
        raise DataError(f"{path}: variant {mixed[0]!r} has both failed and fitted rows")
    if not ((frame["variant"] == MAIN) & (frame["status"] != "failed")).any():
        raise DataError(f"{path}: no fitted row of the main analysis (variant '{MAIN}'), the "
                        "reference of every flag")
    for column in _TEXT_COLUMNS:
        frame[column] = frame[column].astype(object)
    return frame


def _number(text: str, bad: Callable[[str], DataError]) -> float | None:
    """A finite number, or ``None`` for an empty cell."""
    if not text:
        return None
    try:
        if "_" in text:  # float() accepts "1_0"; a CSV writer never does that
            raise ValueError(text)
        value = float(text)
    except ValueError:
        raise bad(f"{text[:20]!r} is not a number") from None
    if not math.isfinite(value):
        raise bad(f"{text[:20]!r} is not a finite number")
    return value
