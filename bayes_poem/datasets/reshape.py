"""Shipped CSVs (as published, wide) -> the canonical long table, per embedded dataset.

Kept apart from the registry (``bayes_poem.datasets``) so that the datasets' names,
titles and citations are readable without importing pandas (``bayes-poem datasets``
starts in a fraction of a second); only :func:`bayes_poem.datasets.load_dataset`
imports this module.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from bayes_poem.errors import DataError
from bayes_poem.table import wide_to_long


def _identity(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


def _rat_tumors(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.rename(columns={"experiment": "study"})
    return wide_to_long(frame, {"tumor": "tumors"}, total="rats")


def _two_arm(arms: tuple[str, str], id_column: str, outcome: str | None):
    def reshape(frame: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for arm in arms:
            part = frame.rename(columns={id_column: "study"}).copy()
            part["subgroup"] = arm
            if outcome is not None:
                part["outcome"] = outcome
            part["events"] = frame[f"{arm}_events"]
            part["total"] = frame[f"{arm}_total"]
            drop = [f"{a}_{kind}" for a in arms for kind in ("events", "total")]
            parts.append(part.drop(columns=drop))
        return pd.concat(parts, ignore_index=True)

    return reshape


def _debruin2009(frame: pd.DataFrame) -> pd.DataFrame:
    """metadat's ``dat.debruin2009`` (one row per trial) -> the long table.

    ``author`` -> ``study``, ``xi`` -> ``events``, ``ni`` -> ``total``, one outcome
    ``undetectable_viral_load``, no subgroup; ``mi`` (= ``ni - xi``) is checked and
    dropped; ``year``, ``scq``, ``ethnicity``, ``patients``, ``select``, ``sens`` are
    kept as covariates (text, as every CSV cell).
    """
    bad = [i for i, (x, n, m) in enumerate(zip(frame["xi"], frame["ni"], frame["mi"],
                                                 strict=True), start=1)
           if int(n) - int(x) != int(m)]
    if bad:
        raise DataError(f"debruin2009.csv: row {bad[0]}: mi is not ni - xi")
    long = frame.rename(columns={"author": "study", "xi": "events", "ni": "total"})
    long.insert(1, "outcome", "undetectable_viral_load")
    columns = ["study", "outcome", "events", "total", "year", "scq", "ethnicity",
               "patients", "select", "sens"]
    return long[columns]


# Dataset name -> its reshaping; a dataset not named here is shipped in long form.
RESHAPES: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {
    "rat_tumors": _rat_tumors,
    "nielweise2007": _two_arm(("treated", "control"), "study", "catheter_infection"),
    "poem_anterior_posterior_rcts": _two_arm(("anterior", "posterior"), "trial", None),
    "debruin2009": _debruin2009,
}


def reshape(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The shipped CSV of dataset ``name`` as the long table (before validation)."""
    return RESHAPES.get(name, _identity)(frame)
