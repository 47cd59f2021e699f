"""Sensitivity analyses: a grid of model variants, fitted fast, flagged when conclusions move.

The public names of the sensitivity grid, one concern per module:

- :mod:`bayes_poem.sensitivity_grid`: :class:`Variant`, :class:`GridOptions`,
  :func:`build_variants` / :func:`plan_grid` (families of variants, crossed
  axes, default subsets, variants that cannot be fitted);
- :mod:`bayes_poem.sensitivity_spec`: the ``[sensitivity]`` spec section
  (:func:`parse_sensitivity`, :func:`spec_grid`);
- :mod:`bayes_poem.sensitivity_run`: :func:`run_sensitivity` (any
  :class:`concurrent.futures.Executor`, warm-started variants), flags,
  :class:`SensitivityResult`;
- :mod:`bayes_poem.sensitivity_table`: :func:`read_table` (a ``sensitivity.csv``
  read back, validated);
- :mod:`bayes_poem.sensitivity_text`: the text ``bayes-poem sensitivity`` prints.

Every variant of one analysis reuses the same compiled log-density
(:mod:`bayes_poem.backends.density`): priors are data, leave-one-out and
subsets zero counts (the model keeps its shape), other likelihoods or
structures are flags in the same buffer. Nothing recompiles, so a variant
costs one sampling run. See ``docs/sensitivity.md``.
"""

from __future__ import annotations

from bayes_poem.sensitivity_grid import (
    AXES,
    CROSSED,
    DEFAULT_TAU_PRIORS,
    MAIN,
    GridOptions,
    GridPlan,
    Variant,
    build_variants,
    default_subset_note,
    default_subsets,
    moderator_set_name,
    plan_grid,
)
from bayes_poem.sensitivity_run import (
    PILOTS,
    ROW_COLUMNS,
    WARM_TUNE,
    SensitivityResult,
    WarmStart,
    _flag,
    fit_variant,
    run_sensitivity,
    summarise_by_variant,
)
from bayes_poem.sensitivity_spec import (
    SENSITIVITY_KEYS,
    SensitivityConfig,
    parse_sensitivity,
    spec_grid,
    spec_plan,
)
from bayes_poem.sensitivity_table import KINDS, STATUSES, read_table

__all__ = [
    "AXES", "CROSSED", "DEFAULT_TAU_PRIORS", "KINDS", "MAIN", "PILOTS", "ROW_COLUMNS",
    "SENSITIVITY_KEYS", "STATUSES", "WARM_TUNE", "GridOptions", "GridPlan",
    "SensitivityConfig", "SensitivityResult", "Variant", "WarmStart", "_flag",
    "build_variants", "default_subset_note", "default_subsets", "fit_variant",
    "moderator_set_name", "parse_sensitivity", "plan_grid", "read_table",
    "run_sensitivity", "spec_grid", "spec_plan", "summarise_by_variant",
]
