r"""Moderators of a meta-regression: checked columns -> design matrix :math:`X`.

The design matrix has one row per study (row of the selected outcome) and the
columns, in order,

* ``intercept`` (a column of ones; metafor's ``intrcpt``);
* each **numeric** moderator as given (no centring or scaling, as metafor's
  ``mods = ~ x``): term name = the column name;
* each **categorical** moderator dummy-coded against its reference level (R's
  treatment contrasts): one column per other level, named ``"<column>[<level>]"``
  (metafor prints ``"<column><level>"``), in sorted order of the levels.

The default reference level is R's: the first level of ``factor(x)``, that is the
first in sorted order (numerically if every level is a number, else by character
code; R sorts text in the locale's collation, which can differ for mixed case or
accents -- pass the reference explicitly to be sure). For ``dat.debruin2009`` the
levels of ``patients`` are ``continuing`` and ``starting``, so the reference is
``continuing`` and the coefficient is ``patients[starting]``.

Kind: a moderator listed in ``categorical=`` is categorical. Any other is **numeric
when every value reads as a number and categorical when none does** (as R turns a
character column into a factor; the cells of a CSV file are all text, so the type is
read from the values); a column with both, such as a typing error in a numeric column
(``"2O05"``), is an error naming the first value that is not a number -- declare the
column categorical if it is one (``sens`` of ``dat.debruin2009`` holds ``"<400"`` and
``"400"``). This is the rule of the Bayesian side (:mod:`bayes_poem.moderators`).

Every problem is one :class:`~bayes_poem.errors.DataError` naming the source, the
row (data rows counted from 1 in the table given, as :func:`~bayes_poem.load_table`
counts them; the entry number for arrays) and the column: a missing column, a
missing value, a value that is not a finite number in a numeric moderator, a
constant moderator (one value, or one level), collinear moderators, or more
coefficients than the studies allow. Invalid options (a reference level that is
not in the data, a moderator listed twice) are :class:`~bayes_poem.errors.SpecError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist.inputs import Counts, _select, counts_from
from bayes_poem.moderators import sorted_levels
from bayes_poem.table import COUNT_COLUMNS, StudyTable

__all__ = [
    "INTERCEPT",
    "Design",
    "array_columns",
    "build_design",
    "counts_and_design",
]

INTERCEPT = "intercept"
NOT_MODERATORS = ("study", "outcome", *COUNT_COLUMNS)

Categorical = Sequence[str] | Mapping[str, str | None]


@dataclass(frozen=True)
class Design:
    """A checked design matrix.

    Attributes
    ----------
    X : numpy.ndarray
        ``k x p`` float matrix; the first column is the intercept.
    terms : tuple of str
        Column names of ``X`` (``"intercept"``, ``"scq"``, ``"patients[starting]"``).
    moderators : tuple of str
        The moderator columns, in the order given.
    kinds : dict
        ``"numeric"`` or ``"categorical"`` per moderator.
    references, levels : dict
        Reference level and all levels (sorted) of each categorical moderator.
    means, sds : dict
        Mean and SD (``ddof=1``) of each numeric moderator, to express a slope per SD.
    """

    X: np.ndarray = field(repr=False)
    terms: tuple[str, ...]
    moderators: tuple[str, ...] = ()
    kinds: Mapping[str, str] = field(default_factory=dict)
    references: Mapping[str, str] = field(default_factory=dict)
    levels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    means: Mapping[str, float] = field(default_factory=dict)
    sds: Mapping[str, float] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.X.shape[0])

    @property
    def p(self) -> int:
        return int(self.X.shape[1])

    def frame(self) -> pd.DataFrame:
        """``X`` with the term names as columns."""
        return pd.DataFrame(self.X, columns=list(self.terms))


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float | np.floating) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _where(source: str, row: int, column: str, label: str | None) -> str:
    study = f" (study {label!r})" if label is not None else ""
    return f"{source}: row {row}{study}, column '{column}'"


def _reads_as_number(value: object) -> bool:
    if _is_missing(value) or isinstance(value, bool | np.bool_):
        return False
    try:
        float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _numeric(values: Sequence[object], column: str, source: str, rows: Sequence[int],
             labels: Sequence[str]) -> np.ndarray:
    out = np.empty(len(values))
    for i, value in enumerate(values):
        where = _where(source, rows[i], column, labels[i])
        if _is_missing(value):
            raise DataError(f"{where}: missing value (every study needs a value of each "
                            "moderator)")
        if isinstance(value, bool | np.bool_):
            raise DataError(f"{where}: {value!r} is not a number; list the column in "
                            "categorical=... to dummy-code it")
        try:
            number = float(str(value).strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise DataError(f"{where}: {str(value).strip()[:40]!r} is not a number; list "
                            "the column in categorical=... to dummy-code it") from None
        if not np.isfinite(number):
            raise DataError(f"{where}: {str(value).strip()[:40]!r} is missing or not a "
                            "finite number")
        out[i] = number
    if np.ptp(out) == 0:
        raise DataError(f"{source}: column '{column}': the moderator is constant "
                        f"({out[0]:g} in every row); its coefficient cannot be estimated "
                        "alongside the intercept")
    return out


_sorted_levels = sorted_levels  # one level order for the Bayesian and frequentist sides


def _categorical(values: Sequence[object], column: str, reference: str | None, source: str,
                 rows: Sequence[int], labels: Sequence[str]) -> tuple[np.ndarray, str,
                                                                      tuple[str, ...]]:
    text = []
    for i, value in enumerate(values):
        if _is_missing(value):
            raise DataError(f"{_where(source, rows[i], column, labels[i])}: missing value "
                            "(every study needs a value of each moderator)")
        text.append(str(value).strip())
    levels = _sorted_levels(set(text))
    if len(levels) < 2:
        raise DataError(f"{source}: column '{column}': the moderator is constant (level "
                        f"{levels[0]!r} in every row); its effect cannot be estimated")
    if reference is None:
        reference = levels[0]
    elif str(reference) not in levels:
        raise SpecError(f"categorical: reference level {reference!r} of '{column}' is not in "
                        f"the data; levels: {', '.join(levels)}")
    reference = str(reference)
    others = [lv for lv in levels if lv != reference]
    dummies = np.array([[1.0 if t == lv else 0.0 for lv in others] for t in text])
    return dummies, reference, levels


def _references(moderators: Sequence[str], categorical: Categorical) -> dict[str, str | None]:
    if isinstance(categorical, str):
        categorical = [categorical]
    refs = (dict(categorical) if isinstance(categorical, Mapping)
            else dict.fromkeys(categorical))
    unknown = [c for c in refs if c not in moderators]
    if unknown:
        raise SpecError(f"categorical: {', '.join(map(repr, unknown))} "
                        f"{'is' if len(unknown) == 1 else 'are'} not among the moderators "
                        f"({', '.join(moderators) or 'none'})")
    return refs


def _check_names(moderators: Sequence[str]) -> tuple[str, ...]:
    if isinstance(moderators, str):
        moderators = [moderators]
    names = tuple(str(m) for m in moderators)
    repeated = sorted({m for m in names if names.count(m) > 1})
    if repeated:
        raise SpecError(f"moderators: {', '.join(map(repr, repeated))} listed more than once")
    reserved = [m for m in names if m in NOT_MODERATORS]
    if reserved:
        raise SpecError(f"moderators: {', '.join(map(repr, reserved))} cannot be a moderator "
                        "(a label or count column of the table)")
    return names


def build_design(columns: Mapping[str, Sequence[object]], moderators: Sequence[str], *,
                 categorical: Categorical = (), source: str = "arrays",
                 rows: Sequence[int] | None = None, labels: Sequence[str] | None = None,
                 k: int | None = None) -> Design:
    """Design matrix from moderator columns (see module docstring).

    Parameters
    ----------
    columns : mapping
        Column name -> values (one per study); must hold every moderator.
    moderators : sequence of str
        Moderator columns, in order (empty: intercept-only model).
    categorical : sequence of str or mapping
        Moderators to dummy-code whatever their values (others: by their values, see
        the module docstring); a mapping gives the reference level (``None`` = first in
        sorted order).
    source, rows, labels
        For messages: the data source, each study's row number and label.
    k : int, optional
        Number of studies (needed when there are no moderators).
    """
    names = _check_names(moderators)
    refs = _references(names, categorical)
    if k is None:
        if not names:
            raise SpecError("k is needed for an intercept-only design")
        k = len(columns[names[0]]) if names[0] in columns else 0
    rows = list(rows) if rows is not None else list(range(1, k + 1))
    labels = list(labels) if labels is not None else [None] * k  # type: ignore[list-item]
    blocks, terms = [np.ones((k, 1))], [INTERCEPT]
    kinds, references, levels, means, sds = {}, {}, {}, {}, {}
    for name in names:
        if name not in columns:
            available = ", ".join(c for c in columns if c not in NOT_MODERATORS) or "(none)"
            raise DataError(f"{source}: column '{name}' not found; columns available as "
                            f"moderators: {available}")
        values = list(columns[name])
        if len(values) != k:
            raise DataError(f"{source}: column '{name}' has {len(values)} values for {k} "
                            "studies")
        present = [v for v in values if not _is_missing(v)]
        if name in refs or (present and not any(_reads_as_number(v) for v in present)):
            dummies, ref, lv = _categorical(values, name, refs.get(name), source, rows, labels)
            blocks.append(dummies)
            terms += [f"{name}[{level}]" for level in lv if level != ref]
            kinds[name], references[name], levels[name] = "categorical", ref, lv
        else:
            x = _numeric(values, name, source, rows, labels)
            blocks.append(x[:, None])
            terms.append(name)
            kinds[name], means[name], sds[name] = "numeric", float(x.mean()), float(x.std(ddof=1))
    X = np.hstack(blocks)
    if X.shape[1] + 1 > k:
        raise DataError(f"{source}: {X.shape[1]} coefficients and tau^2 cannot be estimated "
                        f"from {k} studies (need at least {X.shape[1] + 1})")
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise DataError(f"{source}: the moderators {', '.join(map(repr, names))} are collinear "
                        "(the design matrix is not of full rank); drop one of them")
    return Design(X, tuple(terms), names, kinds, references, levels, means, sds)


def counts_and_design(
    data: StudyTable | object,
    totals: object | None,
    moderators: Sequence[str] | Mapping[str, Sequence[object]] | pd.DataFrame | None,
    *,
    categorical: Categorical = (),
    labels: Sequence[object] | None = None,
    outcome: str | None = None,
    subgroup: str | None = None,
) -> tuple[Counts, Design]:
    """Counts of one outcome and their design matrix.

    With a :class:`~bayes_poem.table.StudyTable`, ``moderators`` are column names
    (covariates, or ``"subgroup"``: then every subgroup of the outcome is kept, one
    row per study x subgroup, unless ``subgroup=`` selects one). With arrays,
    ``moderators`` is a mapping (or ``DataFrame``) of moderator name -> values, one
    per study, in the order of the counts.
    """
    if isinstance(data, StudyTable):
        if moderators is not None and not isinstance(moderators, Sequence | str):
            raise SpecError("with a StudyTable, moderators= are column names, e.g. ['year']")
        names = _check_names(moderators or [])
        many = "subgroup" in names and subgroup is None
        selected = _select(data, outcome, subgroup, allow_many_subgroups=many)
        frame = data.frame
        mask = frame["outcome"] == selected.outcomes[0]
        if subgroup is not None:
            mask &= frame["subgroup"] == subgroup
        rows = [int(i) + 1 for i in np.flatnonzero(mask.to_numpy())]
        sub = frame[mask.to_numpy()]
        if many and len(selected.subgroups) > 1:
            study_labels = [f"{s} | {g}" for s, g in zip(sub["study"], sub["subgroup"],
                                                          strict=True)]
        else:
            study_labels = list(sub["study"])
        counts = Counts(tuple(study_labels), sub["events"].to_numpy(dtype=float),
                        sub["total"].to_numpy(dtype=float), data.source)
        columns = {c: sub[c].tolist() for c in sub.columns}
        design = build_design(columns, names, categorical=categorical, source=data.source,
                              rows=rows, labels=list(sub["study"]), k=len(sub))
        return counts, design
    counts = counts_from(data, totals, labels=labels, outcome=outcome, subgroup=subgroup)
    columns = array_columns(moderators, counts.source)
    design = build_design(columns, list(columns), categorical=categorical, source=counts.source,
                          labels=list(counts.labels), k=counts.k)
    return counts, design


def array_columns(moderators: object, source: str) -> dict[str, list[object]]:
    if moderators is None:
        return {}
    if isinstance(moderators, pd.DataFrame):
        return {str(c): moderators[c].tolist() for c in moderators.columns}
    if isinstance(moderators, Mapping):
        columns = {}
        for name, values in moderators.items():
            if isinstance(values, str) or np.ndim(values) != 1:
                raise DataError(f"{source}: moderator '{name}' must be a one-dimensional "
                                "sequence of values, one per study")
            columns[str(name)] = list(values)
        return columns
    raise SpecError("with array input, pass moderators= as a mapping (or DataFrame) of "
                    "name -> values, one per study")
