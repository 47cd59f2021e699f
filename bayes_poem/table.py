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

Reading a user's file is :mod:`bayes_poem.table_read`'s (:func:`read_text`, the CSV
reader) and the validation of the rows :mod:`bayes_poem.table_validate`'s (the
column constants, :data:`MAX_COUNT`, labels and counts); this module re-exports
their public names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bayes_poem.errors import DataError
from bayes_poem.table_read import _read_csv, read_text
from bayes_poem.table_validate import (
    COUNT_COLUMNS,
    LABEL_COLUMNS,
    MAX_COUNT,
    REQUIRED_COLUMNS,
    RESERVED_CHARACTER,
    RESERVED_SUBGROUPS,
    SINGLE_GROUP_LABEL,
    _validate,
)

__all__ = ["COUNT_COLUMNS", "LABEL_COLUMNS", "MAX_COUNT", "REQUIRED_COLUMNS",
           "RESERVED_CHARACTER", "RESERVED_SUBGROUPS", "SINGLE_GROUP_LABEL", "StudyTable",
           "load_table", "read_text", "recorded_path", "wide_to_long"]


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
