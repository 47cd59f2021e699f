"""The canonical study table: one row per study x subgroup x outcome.

Data enter bayes_poem only through :func:`load_table` (a CSV path or a
``DataFrame``), which validates everything once and raises :class:`DataError`
naming the source, the row and the column. Inside the package a
:class:`StudyTable` is trusted.

Columns
-------
``study`` (required)
    Study label.
``subgroup`` (optional)
    Subgroup label, for example the disorder. A table without it is a
    single-group table; every row gets the subgroup ``"all"``.
``outcome`` (required)
    Binary outcome label, for example ``clinical_success``.
``events``, ``total`` (required)
    Integer counts with ``0 <= events <= total``, ``total >= 1`` and at most
    :data:`MAX_COUNT` (10^9) per row.
anything else
    Covariates (for example ``quality``, ``year``), carried along unchanged for
    later subsetting.

Labels are stripped of surrounding whitespace and must be one line of text (no
control characters); labels that differ only by case or whitespace are refused.
``study`` and ``subgroup`` labels may not contain ``|`` (row labels are
``"<study> | <subgroup>"``), and no subgroup may be called ``overall`` (the
label of the weighted average of the subgroups in every results table).

Row numbers in messages count data rows from 1; for CSV files the file line
(header = line 1) is given too.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import stat
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_poem.errors import BayesPoemError, DataError

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


def recorded_path(path: str | Path, base_dir: str | Path) -> str:
    """A spec's data path as a posterior records it (``data_source``).

    Relative to ``base_dir`` (the spec file's directory), with ``/`` separators,
    when the file lies in that directory's tree (symbolic links resolved):
    ``data/studies.csv``, so a posterior names no user's home directory and
    stays true when the project moves. Otherwise the path as the spec gives it
    (``../shared/studies.csv``, or an absolute path). The resolved ``spec.toml``
    of a results directory keeps the absolute path (it must rerun from there).
    """
    base = Path(base_dir).resolve()
    try:
        return (base / path).resolve().relative_to(base).as_posix()
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class StudyTable:
    """A validated table of binomial counts.

    Build one with :func:`load_table`; the constructor does not validate.

    Attributes
    ----------
    frame : pandas.DataFrame
        Columns ``study``, ``subgroup``, ``outcome``, ``events``, ``total`` and
        any covariates; labels are strings, counts ``int64``.
    source : str
        Where the data came from (a file path or a dataset name), used in messages.
    has_subgroups : bool
        Whether the source had a ``subgroup`` column.
    metadata : dict
        Provenance: for embedded datasets the title, citation and synthetic
        flag; for a user's CSV what the spec's ``[data] synthetic`` and
        ``label`` set (:meth:`with_metadata`).
    """

    frame: pd.DataFrame
    source: str
    has_subgroups: bool = True
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def outcomes(self) -> list[str]:
        return list(dict.fromkeys(self.frame["outcome"]))

    @property
    def subgroups(self) -> list[str]:
        return list(dict.fromkeys(self.frame["subgroup"]))

    @property
    def studies(self) -> list[str]:
        return list(dict.fromkeys(self.frame["study"]))

    @property
    def covariates(self) -> list[str]:
        fixed = {*LABEL_COLUMNS, *COUNT_COLUMNS}
        return [c for c in self.frame.columns if c not in fixed]

    @property
    def is_synthetic(self) -> bool:
        return str(self.metadata.get("synthetic", "false")).lower() == "true"

    @property
    def recorded_source(self) -> str:
        """Where the data came from, as a posterior records it (``data_source``): the
        spec reader's record (metadata ``data_source``, :func:`recorded_path`), else
        :attr:`source` (a dataset's name, or the path given to :func:`load_table`)."""
        return str(self.metadata.get("data_source") or self.source)

    @property
    def label(self) -> str:
        """The data's display name: the spec's ``[data] label``, else the dataset title."""
        return str(self.metadata.get("label") or self.metadata.get("title") or "")

    def with_metadata(self, **items: str) -> StudyTable:
        """A copy with ``items`` added to the metadata (the rows are shared, not copied).

        A synthetic table stays synthetic: ``synthetic="false"`` on one raises
        ``ValueError`` (the spec reader turns it into a ``SpecError`` naming the key).
        """
        if self.is_synthetic and str(items.get("synthetic", "true")).lower() != "true":
            raise ValueError(f"{self.source} is synthetic and cannot be marked otherwise")
        return StudyTable(self.frame, self.source, self.has_subgroups,
                          {**self.metadata, **items})

    def for_outcome(self, outcome: str) -> StudyTable:
        """Rows of one outcome; ``DataError`` if the outcome is not in the data."""
        if outcome not in self.outcomes:
            raise DataError(
                f"{self.source}: outcome '{outcome}' is not in the data; "
                f"outcomes found: {', '.join(self.outcomes)}"
            )
        return self._subset(self.frame["outcome"] == outcome)

    def with_subgroups(self, subgroups: Sequence[str]) -> StudyTable:
        """Keep only the given subgroups, in the given order.

        The rows are stably sorted by that order (the canonical row order of a
        model, see :meth:`ModelSpec.from_table`).
        """
        if not subgroups:
            raise DataError(f"{self.source}: the selection leaves no rows (no subgroups given)")
        repeated = list(dict.fromkeys(s for s in subgroups if list(subgroups).count(s) > 1))
        if repeated:
            raise DataError(f"{self.source}: subgroup(s) {', '.join(map(repr, repeated))} "
                            "listed more than once")
        missing = [s for s in subgroups if s not in self.subgroups]
        if missing:
            raise DataError(
                f"{self.source}: subgroup(s) {', '.join(map(repr, missing))} not in the data; "
                f"subgroups found: {', '.join(self.subgroups)}"
            )
        kept = self.frame[self.frame["subgroup"].isin(subgroups)].copy()
        order = {s: i for i, s in enumerate(subgroups)}
        kept = kept.sort_values("subgroup", key=lambda s: s.map(order), kind="stable")
        return StudyTable(kept.reset_index(drop=True), self.source, self.has_subgroups,
                          self.metadata)

    def without_studies(self, studies: Sequence[str]) -> StudyTable:
        """Drop the given studies (unknown labels raise ``DataError``)."""
        missing = [s for s in studies if s not in self.studies]
        if missing:
            raise DataError(
                f"{self.source}: study {', '.join(map(repr, missing))} not in the data"
            )
        return self._subset(~self.frame["study"].isin(studies))

    def _subset(self, mask: pd.Series) -> StudyTable:
        frame = self.frame[mask].reset_index(drop=True)
        if frame.empty:
            raise DataError(f"{self.source}: the selection leaves no rows")
        return StudyTable(frame, self.source, self.has_subgroups, self.metadata)

    def data_hash(self) -> str:
        """SHA-256 of the canonical CSV rendering of the table (first 16 hex digits)."""
        text = self.frame.to_csv(index=False, lineterminator="\n")
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_table(
    data: str | Path | pd.DataFrame,
    *,
    source: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> StudyTable:
    """Load and validate a study table from a CSV path or a ``DataFrame``.

    Parameters
    ----------
    data : path or DataFrame
        The long table (see the module docstring). For a wide table, convert
        it first with :func:`wide_to_long`.
    source : str, optional
        Name used in error messages; defaults to the path, or ``"DataFrame"``.
    metadata : mapping, optional
        Provenance carried on the returned table.

    Raises
    ------
    DataError
        On any malformed input, naming the source, row and column.
    """
    lines: list[int] | None = None
    if isinstance(data, pd.DataFrame):
        source = source or "DataFrame"
        raw = data.copy()
        raw.columns = [str(c) for c in raw.columns]
    else:
        path = Path(data)
        source = source or str(path)
        raw, lines = _read_csv(path, source)
    return StudyTable(*_validate(raw, source, lines), metadata=dict(metadata or {}))


def read_text(path: str | Path, source: str | None = None, *,
              error: type[BayesPoemError] = DataError) -> str:
    """The text of a user's file (UTF-8, a leading byte-order mark dropped).

    The one reader of user files (CSV tables, TOML specs): every failure is an
    ``error`` (``DataError`` or ``SpecError``) naming ``source`` and the actual
    reason: no such file, is a directory, not a regular file (a FIFO, device or
    socket; checked before opening, so a FIFO never blocks), permission denied,
    not UTF-8 text.
    """
    path = Path(path)
    source = source or str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        broken = os.path.islink(path)
        raise error(f"{source}: no such file{' (a broken symbolic link)' if broken else ''}"
                    ) from None
    except NotADirectoryError:
        raise error(f"{source}: no such file (a parent of the path is not a directory)"
                    ) from None
    except OSError as err:
        raise error(f"{source}: cannot read ({_os_reason(err)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{source}: is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{source}: not a regular file ({_file_kind(info.st_mode)})")
    try:
        # O_NONBLOCK: should the path be swapped for a FIFO after the check, opening
        # it still returns at once and fstat below refuses it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise error(f"{source}: not a regular file")
            content = handle.read()
    except OSError as err:
        raise error(f"{source}: cannot read ({_os_reason(err)})") from None
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"{source}: not a UTF-8 text file") from None


def _os_reason(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "permission denied"
    return (err.strerror or type(err).__name__).lower()


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO / named pipe"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def _read_csv(path: Path, source: str) -> tuple[pd.DataFrame, list[int]]:
    """Read every cell as text; return the frame and each data row's file line."""
    text = read_text(path, source)
    try:
        with io.StringIO(text, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            while header is not None and not any(cell.strip() for cell in header):
                header = next(reader, None)
            if header is None:
                raise DataError(f"{source}: the file is empty")
            header = [h.strip() for h in header]
            dups = sorted({h for h in header if header.count(h) > 1})
            if dups:
                raise DataError(f"{source}: line 1: duplicate column(s) "
                                f"{', '.join(map(repr, dups))}")
            records, lines = [], []
            start = reader.line_num + 1
            for record in reader:
                if not record or all(not cell.strip() for cell in record):
                    start = reader.line_num + 1
                    continue
                if len(record) != len(header):
                    raise DataError(
                        f"{source}: line {start}: {len(record)} fields, but the header has "
                        f"{len(header)} ({', '.join(header)})"
                    )
                records.append(record)
                lines.append(start)
                start = reader.line_num + 1
    except csv.Error as err:
        raise DataError(f"{source}: not a readable CSV file ({err})") from None
    return pd.DataFrame(records, columns=header, dtype=object), lines


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
            labels.append(_check_label(str(value).strip(), column,
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


def _check_label(label: str, column: str, where: str) -> str:
    """A label as the model's coordinates need it: one line, unambiguous."""
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


def wide_to_long(
    frame: pd.DataFrame,
    outcomes: Mapping[str, str],
    *,
    total: str | Mapping[str, str] = "total",
) -> pd.DataFrame:
    """Turn a wide table (one events column per outcome) into the long form.

    Parameters
    ----------
    frame : DataFrame
        One row per study x subgroup, with an events column per outcome.
    outcomes : mapping
        Outcome name -> events column, for example
        ``{"clinical_success": "success", "adverse_event": "ae"}``.
    total : str or mapping
        The total column shared by all outcomes, or outcome name -> total column.

    Returns
    -------
    DataFrame
        The long table, not yet validated: pass it to :func:`load_table`.
    """
    if not outcomes:
        raise DataError("wide_to_long: no outcomes given")
    totals = dict.fromkeys(outcomes, total) if isinstance(total, str) else dict(total)
    used = set(outcomes.values()) | set(totals.values())
    missing = sorted(c for c in used if c not in frame.columns)
    if missing:
        raise DataError(
            f"wide_to_long: column(s) {', '.join(map(repr, missing))} not in the table; "
            f"columns found: {', '.join(map(str, frame.columns))}"
        )
    unknown = sorted(set(totals) - set(outcomes))
    if unknown or set(outcomes) - set(totals):
        raise DataError(f"wide_to_long: total columns must be given for exactly the outcomes "
                        f"{', '.join(outcomes)}")
    if "outcome" in frame.columns:
        raise DataError("wide_to_long: the wide table already has an 'outcome' column")
    keep = [c for c in frame.columns if c not in used]
    parts = []
    for outcome, events_column in outcomes.items():
        part = frame[keep].copy()
        part.insert(min(2, len(keep)), "outcome", outcome)
        part["events"] = frame[events_column].to_numpy()
        part["total"] = frame[totals[outcome]].to_numpy()
        parts.append(part)
    long = pd.concat(parts, ignore_index=True)
    ordered = [c for c in (*LABEL_COLUMNS, *COUNT_COLUMNS) if c in long.columns]
    return long[ordered + [c for c in long.columns if c not in ordered]]
