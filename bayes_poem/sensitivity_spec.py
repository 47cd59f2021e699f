"""The ``[sensitivity]`` section of a spec: parsing, validation, and the grid it makes.

:func:`parse_sensitivity` validates the section (unknown keys, types, names,
``cross``); :func:`spec_grid` builds its grid for a model, with the default
subsets (:func:`~bayes_poem.sensitivity_grid.default_subsets`) when the section
has no ``subsets`` key (``GridOptions.subsets = None``, as in Python), so the
Python API and ``bayes-poem sensitivity`` build the same grid. Every error is
one line naming the spec file and the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bayes_poem.errors import SpecError
from bayes_poem.priors import TURNER_PRIORS, Prior, validate_prior
from bayes_poem.sensitivity_grid import (
    MAIN,
    GridOptions,
    GridPlan,
    Variant,
    plan_grid,
)
from bayes_poem.spec import ModelSpec
from bayes_poem.specfile_sections import check_keys

SENSITIVITY_KEYS = ("tau_priors", "turner", "mu_priors", "sigma_subgroup_priors",
                    "subgroup_effects", "likelihoods", "leave_one_out", "subsets",
                    "decision_threshold", "psens", "moderator_sets", "precision_moderator",
                    "cross")


@dataclass(frozen=True)
class SensitivityConfig:
    """The ``[sensitivity]`` section of a spec (defaults: the standard grid)."""

    grid: GridOptions = field(default_factory=GridOptions)
    threshold: float = 0.95
    psens: bool = True


def parse_sensitivity(raw: Mapping[str, Any] | None, source: str) -> SensitivityConfig:
    """Validate a ``[sensitivity]`` table; unknown keys are rejected."""
    raw = dict(raw or {})
    check_keys(raw, SENSITIVITY_KEYS, source, "sensitivity")
    defaults = GridOptions()
    named: dict[str, str] = {}  # variant name -> the key that names it

    def variant_name(name: Any, where: str) -> str:
        if not isinstance(name, str) or not name.strip():
            raise SpecError(f"{source}: {where}.name: must be a non-empty string "
                            f"(got {name!r})")
        if name == MAIN:
            raise SpecError(f"{source}: {where}.name: '{MAIN}' is reserved for the main "
                            "analysis; choose another name")
        if name in named:
            raise SpecError(f"{source}: {named[name]} and {where} both name a variant "
                            f"'{name}'; variant names must be unique")
        named[name] = where
        return name

    def priors(key: str, parameter: str, default: Mapping[str, Prior]) -> dict[str, Prior]:
        if key not in raw:
            return dict(default)
        entries = raw[key]
        if not isinstance(entries, list):
            raise SpecError(f"{source}: sensitivity.{key} must be an array of tables")
        out = {}
        for i, entry in enumerate(entries, start=1):
            where = f"sensitivity.{key}[{i}]"
            if not isinstance(entry, Mapping):
                raise SpecError(f"{source}: {where} must be a table")
            entry = dict(entry)
            given = "name" in entry
            name = entry.pop("name", None)
            prior = validate_prior(parameter, entry, f"{source}: {where}")
            label = name if given else f"{parameter} {prior.describe()}"
            out[variant_name(label, where)] = prior
        return out

    def strings(key: str, default: Iterable[str], allowed: Iterable[str]) -> tuple[str, ...]:
        value = raw.get(key, list(default))
        allowed = tuple(allowed)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SpecError(f"{source}: sensitivity.{key} must be a list of strings")
        twice = [v for i, v in enumerate(value) if v in value[:i]]
        if twice:
            raise SpecError(f"{source}: sensitivity.{key}: '{twice[0]}' is listed twice")
        bad = [v for v in value if v not in allowed]
        if bad:
            raise SpecError(f"{source}: sensitivity.{key}: '{bad[0]}' is not one of "
                            f"{', '.join(allowed)}")
        return tuple(value)

    tau_priors = priors("tau_priors", "tau", defaults.tau_priors)
    mu_priors = priors("mu_priors", "mu", defaults.mu_priors)
    sigma_subgroup_priors = priors("sigma_subgroup_priors", "sigma_subgroup",
                                   defaults.sigma_subgroup_priors)
    subsets = []
    if not isinstance(raw.get("subsets", []), list):
        raise SpecError(f"{source}: sensitivity.subsets must be an array of tables")
    for i, entry in enumerate(raw.get("subsets", []), start=1):
        key = f"sensitivity.subsets[{i}]"
        where = f"{source}: {key}"
        if not isinstance(entry, Mapping) or set(entry) - {"name", "column", "values"}:
            raise SpecError(f"{where}: a table with keys name, column, values")
        if not isinstance(entry.get("column"), str) or not isinstance(entry.get("values"), list):
            raise SpecError(f"{where}: needs 'column' (string) and 'values' (list)")
        if not entry["values"] or not all(
                isinstance(v, str | int | float) and not isinstance(v, bool)
                for v in entry["values"]):
            raise SpecError(f"{where}.values: must be a non-empty list of strings or numbers")
        values = tuple(str(v) for v in entry["values"])
        name = (entry["name"] if "name" in entry
                else f"{entry['column']} in {', '.join(values)}")
        subsets.append((variant_name(name, key), entry["column"], values))

    moderator_sets: list[tuple[str, ...]] = []
    entries = raw.get("moderator_sets", [])
    if not isinstance(entries, list):
        raise SpecError(f"{source}: sensitivity.moderator_sets must be an array of lists of "
                        'column names, e.g. [[], ["year"], ["year", "quality"]]')
    for i, entry in enumerate(entries, start=1):
        where = f"{source}: sensitivity.moderator_sets[{i}]"
        if not isinstance(entry, list) or not all(isinstance(n, str) and n.strip()
                                                  for n in entry):
            raise SpecError(f"{where}: must be a list of covariate column names "
                            f"([] for no moderators; got {entry!r})")
        twice = [n for j, n in enumerate(entry) if n in entry[:j]]
        if twice:
            raise SpecError(f"{where}: '{twice[0]}' is listed twice")
        same = next((j for j, other in enumerate(moderator_sets, start=1)
                     if set(other) == set(entry)), None)
        if same is not None:
            raise SpecError(f"{where}: the same moderators as sensitivity.moderator_sets"
                            f"[{same}] ({', '.join(entry) or 'none'})")
        moderator_sets.append(tuple(entry))

    precision = raw.get("precision_moderator", False)
    if precision is not False and precision not in ("sqrtninv", "sei"):
        raise SpecError(f"{source}: sensitivity.precision_moderator must be \"sqrtninv\", "
                        f"\"sei\" or false (got {precision!r})")
    leave_one_out = raw.get("leave_one_out", True)
    psens = raw.get("psens", True)
    threshold = raw.get("decision_threshold", 0.95)
    if not isinstance(leave_one_out, bool) or not isinstance(psens, bool):
        raise SpecError(f"{source}: sensitivity.leave_one_out and psens must be true or false")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not (
            0.5 <= threshold < 1.0):
        raise SpecError(f"{source}: sensitivity.decision_threshold must be in [0.5, 1)")
    cross = raw.get("cross", [])
    if not isinstance(cross, list) or not all(isinstance(a, str) for a in cross):
        raise SpecError(f"{source}: sensitivity.cross must be a list of family names, e.g. "
                        '["tau_priors", "leave_one_out"]')
    if "turner" in cross:
        raise SpecError(f"{source}: sensitivity.cross: 'turner' presets are levels of the "
                        "'tau_priors' axis; cross 'tau_priors'")
    grid = GridOptions(
        tau_priors=tau_priors,
        turner=strings("turner", defaults.turner, TURNER_PRIORS),
        mu_priors=mu_priors,
        sigma_subgroup_priors=sigma_subgroup_priors,
        subgroup_effects=strings("subgroup_effects", defaults.subgroup_effects,
                                 ("random", "fixed")),
        likelihoods=strings("likelihoods", defaults.likelihoods,
                            ("binomial", "beta_binomial", "common_effect")),
        leave_one_out=leave_one_out,
        subsets=tuple(subsets) if "subsets" in raw else None,
        moderator_sets=tuple(moderator_sets),
        precision_moderator=precision or None,
        cross=tuple(cross),
    )
    return SensitivityConfig(grid, float(threshold), psens)


def spec_grid(section: Mapping[str, Any] | None, spec: ModelSpec,
              source: str) -> tuple[SensitivityConfig, list[Variant]]:
    """The ``[sensitivity]`` section of a spec and the variants it makes for ``spec``
    (:func:`spec_plan`'s variants)."""
    config, plan = spec_plan(section, spec, source)
    return config, plan.variants


def spec_plan(section: Mapping[str, Any] | None, spec: ModelSpec,
              source: str) -> tuple[SensitivityConfig, GridPlan]:
    """The ``[sensitivity]`` section of a spec and the grid it makes for ``spec``.

    Without a ``subsets`` key the grid gets :func:`default_subsets` (and, when
    the default quality subset is left out because it could not be fitted, a
    note saying so). Cheap (no fitting): ``bayes-poem check`` and every command
    that reads a spec build the grid, so a bad subset, a repeated name or a
    ``cross`` that cannot be built is reported before any sampling, naming
    ``source`` and the key.
    """
    config = parse_sensitivity(section, source)
    try:
        return config, plan_grid(spec, config.grid)
    except SpecError as err:
        raise SpecError(f"{source}: {err}") from None
