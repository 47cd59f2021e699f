r"""Small-study effects, Bayesian half: cumulative posteriors.

**Cumulative posteriors** (:func:`cumulative_specs`, :func:`bayes_cumulative`). Studies are
ordered by a column (``year`` by default; ties keep the table's study order, as
metafor's ``cumul``); step :math:`j` is the model with the counts of every study after the
:math:`j`-th set to 0 (:meth:`ModelSpec.leave_out`: exactly the posterior given the first
:math:`j` studies, the model keeping its shape), refitted without compiling.

See :mod:`bayes_poem.bias` for the overview and the references.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_poem.errors import ConvergenceWarning, DataError
from bayes_poem.moderators import _number

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.sampling import SamplerSettings
    from bayes_poem.spec import ModelSpec

__all__ = [
    "CUMULATIVE_BAYES_COLUMNS",
    "BayesCumulative",
    "bayes_cumulative",
    "cumulative_specs",
    "study_order",
]

CUMULATIVE_BAYES_COLUMNS = ("step", "study", "order", "subgroup", "n_studies", "events",
                            "total", "median", "lower", "upper", "interval", "divergences",
                            "problems")

# ---------------------------------------------------------------------- cumulative
def study_order(spec: ModelSpec, order: str | None = None,
                decreasing: bool = False) -> tuple[list[str], list[Any], str]:
    """Studies in the order of the column ``order`` (module docstring): ``(studies,
    values, order_by)``. ``order=None``: ``year`` when the data have it, else the table's
    study order (``order_by`` says which).

    Raises
    ------
    DataError
        A missing column or value (naming the row), or a study whose rows disagree.
    """
    frame = spec.table.frame
    source = spec.table.source
    studies = spec.studies
    if order is None:
        if "year" not in frame.columns:
            return studies, list(range(1, len(studies) + 1)), "table order"
        order = "year"
    if order not in frame.columns:
        covariates = list(spec.table.covariates) or ["(none)"]
        raise DataError(f"{source}: no column '{order}' to order the cumulative analysis by "
                        f"(bias.order); covariates: {', '.join(map(str, covariates))}")
    values: dict[str, Any] = {}
    for study, subgroup, value in frame[["study", "subgroup", order]].itertuples(index=False):
        if value is None or (isinstance(value, float) and np.isnan(value)) or (
                isinstance(value, str) and not value.strip()) or value is pd.NA:
            raise DataError(f"{source}: row '{study} | {subgroup}' (outcome {spec.outcome}), "
                            f"column '{order}': missing value (the cumulative analysis orders "
                            "studies by it)")
        if study in values and str(values[study]) != str(value):
            raise DataError(f"{source}: study '{study}' has two values of '{order}' "
                            f"({values[study]} and {value}); the cumulative analysis orders "
                            "whole studies")
        values.setdefault(study, value)
    raw = [values[s] for s in studies]
    numbers = [_number(v) for v in raw]
    keys: list[Any] = (numbers if all(n is not None for n in numbers)
                       else [str(v).strip() for v in raw])
    positions = sorted(range(len(studies)), key=lambda i: keys[i])  # stable: ties in order
    if decreasing:  # latest first, ties still in table order
        groups: dict[Any, list[int]] = {}
        for i in positions:
            groups.setdefault(keys[i], []).append(i)
        positions = [i for key in reversed(list(groups)) for i in groups[key]]
    return [studies[i] for i in positions], [raw[i] for i in positions], order


def cumulative_specs(spec: ModelSpec, order: str | None = None,
                     decreasing: bool = False) -> list[tuple[str, Any, ModelSpec]]:
    """``(study, order value, spec)`` per step: the spec with every later study's counts
    zeroed (the same compiled model; a refit costs one sampling run)."""
    studies, values, _ = study_order(spec, order, decreasing)
    steps = []
    for j, (study, value) in enumerate(zip(studies, values, strict=True)):
        step = spec
        for later in studies[j + 1:]:
            step = step.leave_out(later)
        steps.append((study, value, step))
    return steps


@dataclass(frozen=True)
class BayesCumulative:
    """The posterior of ``p_pooled`` after each added study.

    Attributes
    ----------
    order_by : str
        The ordering column (or ``"table order"``).
    frame : DataFrame
        :data:`CUMULATIVE_BAYES_COLUMNS`: one row per step x subgroup (and ``overall``);
        ``n_studies`` counts the studies with data in that subgroup so far (0: the
        estimate is the model's prediction for a subgroup not yet observed).
    """

    order_by: str
    frame: pd.DataFrame = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()


def bayes_cumulative(main: FitResult, order: str | None = None, decreasing: bool = False,
                     settings: SamplerSettings | None = None,
                     progress: Callable[[int, int, str], None] | None = None
                     ) -> BayesCumulative:
    """Refit ``main``'s model after each added study (module docstring).

    Uses ``main``'s sampler settings (and seed), interval, weights and ``at`` values. Sampler
    warnings of a step (few studies: divergences are common) are recorded in its
    ``problems`` column, not raised.
    """
    from bayes_poem.results import with_summary_options

    steps = cumulative_specs(main.spec, order, decreasing)
    _, _, order_by = study_order(main.spec, order, decreasing)
    rows = []
    for j, (study, value, spec) in enumerate(steps, start=1):
        if progress is not None:
            progress(j, len(steps), study)
        if j == len(steps):
            result = main  # every study: the analysis itself
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                result = (spec.fit(settings) if settings else
                          spec.refit(main.settings))
            result = with_summary_options(result, interval=main.interval,
                                          weights=main.weights, at=main.at)
        summary = result.subgroup_summary()
        summary = summary[summary["quantity"] == "p_pooled"]
        for row in summary.itertuples(index=False):
            rows.append({"step": j, "study": study, "order": value, "subgroup": row.subgroup,
                         "n_studies": row.n_studies, "events": row.events,
                         "total": row.total, "median": row.median, "lower": row.lower,
                         "upper": row.upper, "interval": row.interval,
                         "divergences": result.diagnostics.divergences,
                         "problems": "; ".join(result.diagnostics.problems)})
    return BayesCumulative(order_by, pd.DataFrame(rows, columns=list(CUMULATIVE_BAYES_COLUMNS)))
