r"""Moderators (meta-regression): coding covariate columns into a design matrix.

A moderator is a covariate column of the study table that enters the linear
predictor as a fixed effect,

.. math::

    \operatorname{logit} p_i = \mu + \alpha_{d_i} + u_{s_i} + x_i^\top \beta,

where :math:`x_i` is row :math:`i`'s coded moderator values (one entry per
*term*), and :math:`\beta \sim N(0, s_\beta^2 I)` (prior ``beta``).

Coding (computed once, from the model's rows, when the spec is created):

numeric
    one term, :math:`x = (v - c) / s`. The centre :math:`c` is the mean of the
    column over the model's rows unless a reference value is given; the scale
    :math:`s` is its SD over those rows (``ddof = 1``) when ``scale=True``, 1
    when ``scale=False``, or a given positive number.
categorical
    one 0/1 dummy term per level other than the reference, named
    ``"<name>[<level>]"``. Levels are the column's distinct values (as text),
    sorted as R's ``factor()`` does (:func:`sorted_levels`: numerically when every
    level is a number); the reference is the first of them unless one is given.

So every :math:`x_i = 0` at the *reference values* (the centre of each numeric
moderator, the reference level of each categorical one), where ``mu``,
``alpha`` and ``p_pooled`` keep their meaning. The values are per row: a
moderator may differ between the rows of one study (row-level), and is never
averaged.

A column is numeric when every value reads as a number and categorical when
none does, unless ``kinds`` says which; a column with both is an error naming
the first value that does not fit.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from bayes_poem.errors import DataError, SpecError

Kind = Literal["numeric", "categorical"]
KINDS = ("numeric", "categorical")
# Columns that are the model's own data, never moderators.
RESERVED = ("study", "subgroup", "outcome", "events", "total")


def sorted_levels(levels: set[str]) -> tuple[str, ...]:
    """Levels in R's ``factor()`` order: numerically if every level is a number, else
    by character code (R uses the locale's collation, which may differ for mixed case).

    The frequentist meta-regression uses the same order, so both sides pick the same
    default reference level.
    """
    try:
        return tuple(sorted(levels, key=float))
    except ValueError:
        return tuple(sorted(levels))


@dataclass(frozen=True)
class Moderator:
    """The frozen coding of one moderator column.

    Attributes
    ----------
    name : str
        The covariate column.
    kind : {"numeric", "categorical"}
    centre, scale : float
        Numeric moderators: ``x = (value - centre) / scale`` (0 and 1 for
        categorical ones).
    levels : tuple of str
        Categorical moderators: every level, sorted (empty for numeric ones).
    reference : str or None
        Categorical moderators: the level coded by all-zero dummies.
    """

    name: str
    kind: Kind
    centre: float = 0.0
    scale: float = 1.0
    levels: tuple[str, ...] = ()
    reference: str | None = None

    @property
    def terms(self) -> list[str]:
        """Names of this moderator's columns of the design matrix (coefficients)."""
        if self.kind == "numeric":
            return [self.name]
        return [f"{self.name}[{level}]" for level in self.levels if level != self.reference]

    def code(self, value: Any) -> np.ndarray:
        """The design-matrix entries of one value (already validated)."""
        if self.kind == "numeric":
            return np.array([(float(value) - self.centre) / self.scale])
        text = str(value).strip()
        return np.array([float(text == level) for level in self.levels
                         if level != self.reference])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (recorded in the posterior's attrs)."""
        if self.kind == "numeric":
            return {"name": self.name, "kind": self.kind, "terms": self.terms,
                    "centre": self.centre, "scale": self.scale}
        return {"name": self.name, "kind": self.kind, "terms": self.terms,
                "levels": list(self.levels), "reference": self.reference}


def code_moderators(
    frame: pd.DataFrame,
    source: str,
    names: Sequence[str],
    *,
    reference: Mapping[str, Any] | None = None,
    scale: bool | Mapping[str, float] = True,
    kinds: Mapping[str, str] | None = None,
    levels: Mapping[str, Sequence[str]] | None = None,
    check_variation: bool = True,
) -> tuple[Moderator, ...]:
    """Validate the moderator columns of ``frame`` (the model's rows) and code them.

    Parameters
    ----------
    frame : DataFrame
        The model's rows (one outcome, canonical order).
    source : str
        Where the data came from, for messages.
    names : sequence of str
        Covariate columns, in the order of the coefficients.
    reference : mapping, optional
        Name -> reference level (categorical) or centre (numeric).
    scale : bool or mapping
        Scale numeric moderators by their SD (``True``), not at all
        (``False``), or by the given positive number per name (others by SD).
    kinds : mapping, optional
        Name -> ``"numeric"`` or ``"categorical"``; by default inferred.
    levels : mapping, optional
        Name -> the known levels of a categorical moderator (used when the
        coding of another spec is reapplied to other rows): a value outside
        them is an error.
    check_variation : bool
        Refuse a moderator constant over the rows (default). ``False`` when a
        coding is reapplied to a subset of rows (``without_study``), where, as
        with zeroed rows, a coefficient may be left to its prior.

    Raises
    ------
    SpecError
        A malformed argument, naming the ``model.moderator*`` key.
    DataError
        A missing column, a missing or non-numeric value (naming the source,
        the row and the column), or a moderator constant over the rows.
    """
    reference = _mapping(reference, "model.moderator_reference")
    kinds = _mapping(kinds, "model.moderator_kinds")
    levels = levels or {}
    if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
        raise SpecError(f"model.moderators: must be a list of covariate column names "
                        f"(got {names!r})")
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if repeated:
        raise SpecError(f"model.moderators: {', '.join(map(repr, repeated))} listed more "
                        "than once")
    for key, mapping in (("model.moderator_reference", reference),
                         ("model.moderator_kinds", kinds)):
        unknown = [k for k in mapping if k not in names]
        if unknown:
            raise SpecError(f"{key}: {', '.join(map(repr, unknown))} is not a moderator; "
                            f"moderators: {', '.join(names) or '(none)'}")
    if not isinstance(scale, bool):
        scale = _mapping(scale, "model.moderator_scale")
        unknown = [k for k in scale if k not in names]
        if unknown:
            raise SpecError(f"model.moderator_scale: {', '.join(map(repr, unknown))} is not a "
                            f"moderator; moderators: {', '.join(names) or '(none)'}")
    out = []
    for name in names:
        kind = kinds.get(name)
        if kind is not None and kind not in KINDS:
            raise SpecError(f"model.moderator_kinds.{name}: {kind!r} is not one of "
                            f"{', '.join(KINDS)}")
        out.append(_code_one(frame, source, name, kind, reference.get(name), scale,
                             levels.get(name), check_variation))
    return tuple(out)


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise SpecError(f"{key}: must be a table moderator = value (got {value!r})")
    return dict(value)


def _number(value: Any) -> float | None:
    """A finite float from a number or numeric text; None if it is not one."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, numbers.Real):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            return None
    return number if math.isfinite(number) else None


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _row(frame: pd.DataFrame, source: str, i: int, column: str) -> str:
    study, subgroup, outcome = (frame[c].iloc[i] for c in ("study", "subgroup", "outcome"))
    return f"{source}: row '{study} | {subgroup}' (outcome {outcome}), column '{column}'"


def _code_one(frame: pd.DataFrame, source: str, name: str, kind: str | None,
              reference: Any, scale: bool | Mapping[str, float],
              known_levels: Sequence[str] | None, check_variation: bool = True) -> Moderator:
    if name in RESERVED:
        raise SpecError(f"model.moderators: '{name}' is a column of the model's own data, "
                        "not a covariate")
    if name not in frame.columns:
        covariates = [c for c in frame.columns if c not in RESERVED]
        raise DataError(f"{source}: no column '{name}' for the moderator; covariates: "
                        f"{', '.join(map(str, covariates)) or '(none)'}")
    values = frame[name].tolist()
    for i, value in enumerate(values):
        if _missing(value):
            raise DataError(f"{_row(frame, source, i, name)}: missing value (every row of "
                            "the model needs a value of each moderator)")
    parsed = [_number(v) for v in values]
    if kind is None:
        kind = "numeric" if all(p is not None for p in parsed) else (
            "categorical" if all(p is None for p in parsed) else "numeric")
    if kind == "numeric":
        bad = next((i for i, p in enumerate(parsed) if p is None), None)
        if bad is not None:
            raise DataError(f"{_row(frame, source, bad, name)}: {str(values[bad]).strip()!r} is "
                            "not a finite number; a numeric moderator needs numbers in every "
                            f"row (declare it categorical with model.moderator_kinds.{name})")
        numbers_ = np.array(parsed, dtype=float)
        if check_variation and np.ptp(numbers_) == 0.0:
            raise DataError(f"{source}: moderator '{name}' is constant ({numbers_[0]:g}) over "
                            "the model's rows; it cannot be estimated")
        centre = float(numbers_.mean())
        if reference is not None:
            centre = _number(reference) if not isinstance(reference, str) else None
            if centre is None:
                raise SpecError(f"model.moderator_reference.{name}: the reference (centre) of "
                                f"a numeric moderator must be a finite number "
                                f"(got {reference!r})")
        if isinstance(scale, bool):
            spread = float(numbers_.std(ddof=1)) if scale else 1.0
        elif name in scale:
            spread = _number(scale[name]) if not isinstance(scale[name], str) else None
            if spread is None or spread <= 0:
                raise SpecError(f"model.moderator_scale.{name}: must be a finite number > 0 "
                                f"(got {scale[name]!r})")
        else:
            spread = float(numbers_.std(ddof=1))
        return Moderator(name, "numeric", centre=centre, scale=spread)
    if not isinstance(scale, bool) and name in scale:
        raise SpecError(f"model.moderator_scale.{name}: '{name}' is categorical; only numeric "
                        "moderators are scaled")
    texts = [str(v).strip() for v in values]
    levels = list(sorted_levels(set(texts))) if known_levels is None else list(known_levels)
    if known_levels is not None:
        bad = next((i for i, t in enumerate(texts) if t not in levels), None)
        if bad is not None:
            raise DataError(f"{_row(frame, source, bad, name)}: level {texts[bad]!r} is not one "
                            f"of the moderator's levels ({', '.join(levels)})")
    if check_variation and len(set(texts)) < 2:
        raise DataError(f"{source}: moderator '{name}' is constant ({texts[0]!r}) over the "
                        "model's rows; it cannot be estimated")
    ref = levels[0] if reference is None else str(reference).strip()
    if isinstance(reference, bool) or ref not in levels:
        raise SpecError(f"model.moderator_reference.{name}: {reference!r} is not a level of "
                        f"'{name}'; levels: {', '.join(levels)}")
    return Moderator(name, "categorical", levels=tuple(levels), reference=ref)


def design_matrix(moderators: Sequence[Moderator], frame: pd.DataFrame) -> np.ndarray:
    """The coded moderators of every row of ``frame``: shape (rows, terms)."""
    columns = [np.stack([moderator.code(v) for v in frame[moderator.name].tolist()])
               for moderator in moderators]
    if not columns:
        return np.zeros((len(frame), 0))
    return np.concatenate(columns, axis=1)


def term_names(moderators: Sequence[Moderator]) -> list[str]:
    """Every coefficient's name, in the order of the design matrix's columns."""
    return [term for moderator in moderators for term in moderator.terms]


def code_values(moderators: Sequence[Moderator], at: Mapping[str, Any] | None,
                where: str = "at") -> np.ndarray:
    """The coded vector ``x`` for covariate values ``at`` (others at their reference).

    ``SpecError`` names the key for an unknown moderator, a level that is not
    one of the moderator's, or a numeric value that is not a finite number.
    """
    at = _mapping(at, where)
    known = {m.name: m for m in moderators}
    unknown = [k for k in at if k not in known]
    if unknown:
        raise SpecError(f"{where}: {', '.join(map(repr, unknown))} is not a moderator of the "
                        f"model; moderators: {', '.join(known) or '(none)'}")
    parts = []
    for moderator in moderators:
        if moderator.name not in at:
            parts.append(np.zeros(len(moderator.terms)))
            continue
        value = at[moderator.name]
        if moderator.kind == "numeric":
            number = None if isinstance(value, str) else _number(value)
            if number is None:
                raise SpecError(f"{where}.{moderator.name}: must be a finite number "
                                f"(got {value!r})")
            parts.append(moderator.code(number))
        else:
            if not isinstance(value, str) or value.strip() not in moderator.levels:
                raise SpecError(f"{where}.{moderator.name}: {value!r} is not a level of "
                                f"'{moderator.name}'; levels: {', '.join(moderator.levels)}")
            parts.append(moderator.code(value))
    return np.concatenate(parts) if parts else np.zeros(0)
