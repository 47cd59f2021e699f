"""Comparative (two-arm) trial counts: the data of the trials' binomial meta-analysis.

:func:`comparative_counts` takes a long study table with ``subgroup`` = arm
(``anterior``/``posterior``) to one row per trial (:data:`COUNT_COLUMNS`),
refusing to pool two labels of one trial (:data:`DEFAULT_SAME_TRIAL`);
:func:`check_counts_frame` checks such a table given directly
(:func:`bayes_poem.trials.meta.binomial_meta`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_poem.errors import DataError, SpecError
from bayes_poem.table import StudyTable
from bayes_poem.trials.common import ARMS, check_arm_counts

__all__ = ["COUNT_COLUMNS", "DEFAULT_SAME_TRIAL", "check_counts_frame", "comparative_counts"]

DEFAULT_SAME_TRIAL: tuple[tuple[str, ...], ...] = (("Khashab2020", "Khashab2020_long"),)
"""Labels that denote one trial (at different follow-up): never pooled in one outcome."""
COUNT_COLUMNS = ("anterior_events", "anterior_total", "posterior_events", "posterior_total")


def comparative_counts(table: StudyTable, outcome: str, *, studies: Sequence[str] | None = None,
                       same_trial: Sequence[Sequence[str]] = DEFAULT_SAME_TRIAL
                       ) -> pd.DataFrame:
    """One row per trial of ``outcome``: anterior and posterior events and totals.

    ``table`` is a long table with ``subgroup`` = arm (``anterior``/``posterior``).
    ``studies`` restricts (and orders) the trials. ``DataError`` if a trial lacks an
    arm, has a row of another subgroup, or if two labels of one trial (see
    ``same_trial``) would be pooled.
    """
    frame = table.for_outcome(outcome).frame
    others = sorted(set(frame["subgroup"]) - set(ARMS))
    if others:
        raise DataError(f"{table.source}: outcome '{outcome}': subgroup(s) "
                        f"{', '.join(map(repr, others))} are not arms; expected "
                        f"{', '.join(ARMS)} (subgroup = arm)")
    available = list(dict.fromkeys(frame["study"]))
    if studies is not None:
        if isinstance(studies, str) or not studies:
            raise SpecError("studies: must be a non-empty list of trial labels")
        missing = [s for s in studies if s not in available]
        if missing:
            raise DataError(f"{table.source}: outcome '{outcome}': trial(s) "
                            f"{', '.join(map(repr, missing))} not in the data; trials with "
                            f"this outcome: {', '.join(available)}")
        available = list(dict.fromkeys(studies))
    for group in same_trial:
        present = [label for label in group if label in available]
        if len(present) > 1:
            raise DataError(
                f"{table.source}: outcome '{outcome}': {' and '.join(map(repr, present))} are "
                "the same trial (different follow-up); pool only one of them (choose with "
                "studies = [...])")
    rows = []
    for study in available:
        record: dict[str, Any] = {"study": study}
        part = frame[frame["study"] == study]
        for arm in ARMS:
            arm_rows = part[part["subgroup"] == arm]
            if len(arm_rows) != 1:
                raise DataError(f"{table.source}: outcome '{outcome}', trial '{study}': "
                                f"expected one '{arm}' row, found {len(arm_rows)}")
            events, total = check_arm_counts(int(arm_rows["events"].iloc[0]),
                                             int(arm_rows["total"].iloc[0]),
                                             f"{table.source}: {study} {outcome} {arm}")
            record[f"{arm}_events"], record[f"{arm}_total"] = events, total
        rows.append(record)
    return pd.DataFrame(rows)


def check_counts_frame(counts: pd.DataFrame) -> pd.DataFrame:
    """``counts`` checked (columns, one row per trial, possible counts) and typed."""
    if not isinstance(counts, pd.DataFrame):
        raise DataError("counts: expected a DataFrame with columns study, "
                        + ", ".join(COUNT_COLUMNS))
    missing = [c for c in ("study", *COUNT_COLUMNS) if c not in counts.columns]
    if missing:
        raise DataError(f"counts: missing column(s) {', '.join(missing)}")
    if counts.empty:
        raise DataError("counts: no trials")
    if counts["study"].duplicated().any():
        raise DataError(f"counts: trial '{counts['study'][counts['study'].duplicated()].iloc[0]}'"
                        " appears twice")
    out = counts[["study", *COUNT_COLUMNS]].copy()
    for i, row in enumerate(out.itertuples(index=False), start=1):
        for arm in ARMS:
            check_arm_counts(getattr(row, f"{arm}_events"), getattr(row, f"{arm}_total"),
                             f"counts row {i} ({row.study}), {arm} arm")
    out["study"] = out["study"].astype(str)
    for column in COUNT_COLUMNS:
        out[column] = out[column].astype(np.int64)
    return out.reset_index(drop=True)
