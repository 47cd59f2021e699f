"""Sensitivity analyses: a grid of model variants, fitted fast, flagged when conclusions move.

A :class:`Variant` is a named :class:`~bayes_poem.spec.ModelSpec`. Every variant
of one analysis reuses the same compiled log-density (:mod:`bayes_poem.backends.density`):
priors are data, leave-one-out and subsets zero counts (the model keeps its
shape), other likelihoods or structures are flags in the same buffer. Nothing
recompiles, so a variant costs one sampling run (a fraction of a second here).

Variants run on any :class:`concurrent.futures.Executor` -- a local
``ProcessPoolExecutor``, or Dask's ``distributed.Client(...).get_executor()`` --
or serially. A failing variant (sampler error, divergences, a subgroup left
without data) becomes a row with ``status`` and ``error``; it never aborts the
grid or loses finished rows. The exception is ``main``, the reference of every
flag: if it fails, :func:`run_sensitivity` raises ``SamplingError``.

Variant names are unique (``main`` is reserved) and subsets must select rows;
both are checked when the grid is built (:func:`build_variants`, cheap), so
``bayes-poem check`` finds them. :func:`read_table` reads a ``sensitivity.csv``
back, validated.

Output: one tidy DataFrame, one row per variant x quantity, with the posterior
median, interval, ``P(> 0)`` for contrasts, and flags where a conclusion changes
relative to the main analysis.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import dataclasses
import io
import math
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_poem.contrasts import Contrast
from bayes_poem.errors import ConvergenceWarning, DataError, SamplingError, SpecError
from bayes_poem.intervals import IntervalSpec
from bayes_poem.priors import (
    SENSITIVITY_PRIORS,
    TURNER_PRIORS,
    Prior,
    turner_description,
    turner_prior,
    validate_prior,
)
from bayes_poem.sampling import SamplerSettings
from bayes_poem.spec import ModelSpec

MAIN = "main"
ROW_COLUMNS = ["variant", "group", "description", "status", "error", "quantity", "kind",
               "median", "lower", "upper", "interval", "p_gt_0", "p_gt_margin", "margin",
               "divergences", "seconds", "flag"]

DEFAULT_TAU_PRIORS: dict[str, Prior] = SENSITIVITY_PRIORS["tau"]


@dataclass(frozen=True)
class Variant:
    """One model variant of a sensitivity grid."""

    name: str
    group: str
    spec: ModelSpec
    description: str = ""


@dataclass(frozen=True)
class GridOptions:
    """Which variants to build (each a list; empty turns that family off)."""

    tau_priors: Mapping[str, Prior] = field(default_factory=lambda: dict(DEFAULT_TAU_PRIORS))
    turner: Sequence[str] = ("turner_surgical_nonpharm",)
    mu_priors: Mapping[str, Prior] = field(
        default_factory=lambda: dict(SENSITIVITY_PRIORS["mu"]))
    sigma_subgroup_priors: Mapping[str, Prior] = field(
        default_factory=lambda: dict(SENSITIVITY_PRIORS["sigma_subgroup"]))
    subgroup_effects: Sequence[str] = ("fixed",)
    likelihoods: Sequence[str] = ("beta_binomial", "common_effect")
    leave_one_out: bool = True
    subsets: Sequence[tuple[str, str, tuple[str, ...]]] = ()  # (name, column, values)
    moderator_sets: Sequence[tuple[str, ...]] = ()  # covariate columns; () = none
    precision_moderator: str | None = None  # "sqrtninv" or "sei": the precision model


def build_variants(spec: ModelSpec, options: GridOptions | None = None) -> list[Variant]:
    """The main analysis followed by every variant ``options`` asks for.

    Cheap (nothing is fitted), so specs are checked by building their grid.

    Raises
    ------
    SpecError
        Two variants with the same name (``main`` is the main analysis), or a
        subset on a column the data do not have or on values that match no
        row, or a moderator set that cannot be coded (unknown or constant
        column, ...); the message names the ``sensitivity.*`` key(s).

    A moderator set equal (as a set) to the main analysis's own moderators is
    skipped: it is ``main``.
    """
    options = options or GridOptions()
    variants = [Variant(MAIN, MAIN, spec, "the analysis as specified")]
    origin = {MAIN: "the main analysis"}

    def add(key: str, variant: Variant) -> None:
        if variant.name in origin:
            first = origin[variant.name]
            reason = ("'main' is reserved for the main analysis" if variant.name == MAIN
                      else f"{first} and {key} both name a variant '{variant.name}'")
            raise SpecError(f"{key}: {reason}; variant names must be unique")
        origin[variant.name] = key
        variants.append(variant)

    if spec.study_effects == "random":
        for i, (name, prior) in enumerate(options.tau_priors.items(), start=1):
            add(f"sensitivity.tau_priors[{i}]",
                Variant(name, "tau prior", spec.with_priors(tau=prior),
                        f"tau ~ {prior.describe()}"))
        for i, preset in enumerate(options.turner, start=1):
            prior = turner_prior(preset)
            add(f"sensitivity.turner[{i}]",
                Variant(f"tau2 {preset}", "tau prior", spec.with_priors(tau=prior),
                        turner_description(preset)))
    for i, (name, prior) in enumerate(options.mu_priors.items(), start=1):
        add(f"sensitivity.mu_priors[{i}]",
            Variant(name, "mu prior", spec.with_priors(mu=prior), f"mu ~ {prior.describe()}"))
    if spec.subgroup_effects == "random":
        for i, (name, prior) in enumerate(options.sigma_subgroup_priors.items(), start=1):
            add(f"sensitivity.sigma_subgroup_priors[{i}]",
                Variant(name, "subgroup prior", spec.with_priors(sigma_subgroup=prior),
                        f"sigma_subgroup ~ {prior.describe()}"))
    for i, effects in enumerate(options.subgroup_effects, start=1):
        if spec.subgroup_effects != "none" and effects != spec.subgroup_effects:
            add(f"sensitivity.subgroup_effects[{i}]",
                Variant(f"subgroups {effects}", "structure",
                        spec.with_options(subgroup_effects=effects),
                        f"subgroup effects {effects}"))
    for i, likelihood in enumerate(options.likelihoods, start=1):
        key = f"sensitivity.likelihoods[{i}]"
        if likelihood == "beta_binomial" and spec.likelihood != "beta_binomial":
            add(key, Variant("beta-binomial", "likelihood",
                             spec.with_options(likelihood="beta_binomial"),
                             "beta-binomial likelihood (overdispersion phi)"))
        elif likelihood == "common_effect" and spec.study_effects == "random":
            add(key, Variant("common effect", "likelihood",
                             spec.with_options(study_effects="common"),
                             "common-effect model (tau = 0)"))
        elif likelihood not in ("beta_binomial", "common_effect", "binomial"):
            raise SpecError(f"{key}: '{likelihood}' is not one of "
                            "binomial, beta_binomial, common_effect")
    if options.leave_one_out:
        for study in spec.studies:
            add("sensitivity.leave_one_out",
                Variant(f"without {study}", "leave one out", spec.leave_out(study),
                        f"study {study} left out (its counts zeroed)"))
    for i, (name, column, values) in enumerate(options.subsets, start=1):
        key = f"sensitivity.subsets[{i}]"
        _check_subset(spec, column, values, key)
        add(key, Variant(name, "subset", spec.only_where(column, list(values)),
                         f"only rows with {column} in {', '.join(values)}"))
    own = frozenset(m.name for m in spec.moderators)
    for i, names in enumerate(options.moderator_sets, start=1):
        key = f"sensitivity.moderator_sets[{i}]"
        if frozenset(names) == own:  # the main analysis itself: skipped, as for likelihoods
            continue
        add(key, Variant(moderator_set_name(names), "moderators",
                         _with_moderator_set(spec, tuple(names), key),
                         "moderators " + (", ".join(names) if names else "none")
                         + f" (main: {', '.join(m.name for m in spec.moderators) or 'none'})"))
    if options.precision_moderator is not None:
        add("sensitivity.precision_moderator",
            Variant(f"with precision moderator ({options.precision_moderator})", "moderators",
                    _with_precision(spec, options.precision_moderator),
                    "precision moderator " + options.precision_moderator + ", not centred: "
                    "p_pooled is the limit estimate at infinite precision (bayes_poem.bias)"))
    return variants


def _with_precision(spec: ModelSpec, precision: str) -> ModelSpec:
    """``spec`` with the precision moderator of :func:`bayes_poem.bias.with_precision`
    (one common slope); a failure is a ``SpecError`` naming the key."""
    from bayes_poem.bias import with_precision

    try:
        return with_precision(spec, precision)
    except (SpecError, DataError) as err:
        raise SpecError(f"sensitivity.precision_moderator: {str(err).splitlines()[0]}") from None


def moderator_set_name(names: Sequence[str]) -> str:
    """The variant name of a moderator set: ``moderators: year, quality`` / ``moderators: none``."""
    return "moderators: " + (", ".join(names) if names else "none")


def _with_moderator_set(spec: ModelSpec, names: tuple[str, ...], key: str) -> ModelSpec:
    """``spec`` with the moderators ``names``, coded now (a failure is a ``SpecError``
    naming ``key``). A moderator of the main analysis keeps its coding there (kind,
    centre or reference level, scale); any other column gets the default coding."""
    from bayes_poem.moderators import RESERVED

    frame = spec.table.frame
    for name in names:
        if name in RESERVED:
            raise SpecError(f"{key}: '{name}' is a column of the model's own data, not a "
                            "covariate")
        if name not in frame.columns:
            covariates = [str(c) for c in frame.columns if c not in RESERVED]
            raise SpecError(f"{key}: no column '{name}' in the data; covariates: "
                            f"{', '.join(covariates) or '(none)'}")
    main = {m.name: m for m in spec.moderators if m.name in names}
    try:
        return spec.with_moderators(
            *names,
            reference={n: m.centre if m.kind == "numeric" else m.reference
                       for n, m in main.items()},
            scale={n: m.scale for n, m in main.items() if m.kind == "numeric"},
            kinds={n: m.kind for n, m in main.items()})
    except (SpecError, DataError) as err:
        raise SpecError(f"{key}: {str(err).splitlines()[0]}") from None


def _check_subset(spec: ModelSpec, column: str, values: Sequence[str], key: str) -> None:
    """A subset must name a column of the data and match at least one row of the
    outcome (the same comparison as :meth:`ModelSpec.only_where`)."""
    frame = spec.table.frame
    if column not in frame.columns:
        raise SpecError(f"{key}: no column '{column}' to subset by; columns: "
                        f"{', '.join(map(str, frame.columns))}")
    cells = frame[column].astype(str)
    if not cells.isin([str(v) for v in values]).any():
        found = list(dict.fromkeys(cells))
        shown = ", ".join(found[:10]) + (", ..." if len(found) > 10 else "")
        raise SpecError(f"{key}: no row has {column} in {', '.join(values) or '(no values)'}"
                        f" (outcome {spec.outcome}; values found: {shown})")


# ---------------------------------------------------------------------- running
def fit_variant(variant: Variant, settings: SamplerSettings, contrasts: Sequence[Contrast],
                interval: IntervalSpec) -> pd.DataFrame:
    """Fit one variant and return its rows; errors become a failed row (picklable)."""
    started = time.perf_counter()
    base = {"variant": variant.name, "group": variant.group,
            "description": variant.description}
    try:
        empty = variant.spec.subgroups_without_data()
        if empty and variant.spec.subgroup_effects != "none":
            raise SpecError(f"subgroup(s) {', '.join(empty)} have no studies in this variant")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = variant.spec.fit(settings)
        rows = _quantity_rows(result, contrasts, interval)
        problems = result.diagnostics.problems
        status = "ok" if not problems else "diagnostics"
        frame = pd.DataFrame(rows)
        frame = frame.assign(**base, status=status, error="; ".join(problems),
                             divergences=result.diagnostics.divergences,
                             seconds=time.perf_counter() - started)
    except Exception as err:  # noqa: BLE001 - a failed variant must not abort the grid
        message = f"{type(err).__name__}: {err}".splitlines()[0]
        if not isinstance(err, SpecError):
            message += " | " + traceback.format_exc(limit=1).strip().splitlines()[-1]
        frame = pd.DataFrame([{**base, "status": "failed", "error": message,
                               "seconds": time.perf_counter() - started}])
    return frame.reindex(columns=ROW_COLUMNS)


def _quantity_rows(result, contrasts: Sequence[Contrast], interval: IntervalSpec) -> list[dict]:
    rows = []
    summary = result.subgroup_summary(interval)
    for row in summary[summary["quantity"] == "p_pooled"].itertuples(index=False):
        rows.append({"quantity": f"p_pooled[{row.subgroup}]", "kind": "probability",
                     "median": row.median, "lower": row.lower, "upper": row.upper,
                     "interval": row.interval})
    for row in result.heterogeneity(interval).itertuples(index=False):
        if (row.parameter in ("tau", "sigma_subgroup", "phi", "tau_cell")
                or str(row.parameter).startswith("tau[")):  # per-subgroup heterogeneity
            rows.append({"quantity": row.parameter, "kind": "heterogeneity",
                         "median": row.median, "lower": row.lower, "upper": row.upper,
                         "interval": row.interval})
    if contrasts and result.spec.subgroup_effects != "none":
        table = result.contrasts(list(contrasts), interval)
        for row in table[table["scale"] == "difference"].itertuples(index=False):
            label = (row.contrast if row.quantity == "p_pooled"
                     else f"{row.contrast}, {row.quantity}")
            rows.append({"quantity": f"difference[{label}]", "kind": "contrast",
                         "median": row.median, "lower": row.lower, "upper": row.upper,
                         "interval": row.interval, "p_gt_0": row.p_gt_null,
                         "p_gt_margin": row.p_gt_margin, "margin": row.margin})
    return rows


@dataclass(frozen=True)
class SensitivityResult:
    """The grid's tidy table (one row per variant x quantity) and its settings."""

    table: pd.DataFrame
    threshold: float
    seconds: float

    @property
    def failed(self) -> pd.DataFrame:
        return self.table[self.table["status"] == "failed"]

    @property
    def flags(self) -> pd.DataFrame:
        return self.table[self.table["flag"].fillna("") != ""]

    def compact(self) -> pd.DataFrame:
        """Variants x contrast quantities (median and P(>0)) for the terminal."""
        contrasts = self.table[self.table["kind"] == "contrast"]
        if contrasts.empty:
            contrasts = self.table[self.table["kind"] == "heterogeneity"]
        return contrasts[["variant", "quantity", "median", "lower", "upper", "p_gt_0",
                          "flag"]].reset_index(drop=True)


def run_sensitivity(
    variants: Sequence[Variant],
    settings: SamplerSettings,
    *,
    contrasts: Sequence[Contrast] = (),
    interval: IntervalSpec | None = None,
    threshold: float = 0.95,
    executor: cf.Executor | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> SensitivityResult:
    """Fit every variant (in parallel on ``executor`` if given) and flag changes.

    Parameters
    ----------
    variants : sequence of Variant
        The first named ``"main"`` is the reference for the flags.
    settings : SamplerSettings
        Used for every variant (same seed: variants differ only by the model).
    contrasts : sequence of Contrast
        Contrasts to track across variants.
    threshold : float
        Decision threshold for ``P(contrast > 0)``; a variant whose probability
        falls on the other side of it than the main analysis is flagged.
    executor : concurrent.futures.Executor, optional
        ``None`` runs serially in this process.
    progress : callable, optional
        Called as ``progress(done, total, variant_name)``.

    Raises
    ------
    SpecError
        Two variants with the same name, or a contrast given twice.
    SamplingError
        The ``main`` variant failed (it is the reference of every flag: the
        other variants are cancelled and no table is returned), or every
        variant failed. Any other failed variant is a ``failed`` row.
    """
    if not 0.5 <= threshold < 1.0:
        raise SpecError("sensitivity.decision_threshold: must be in [0.5, 1)")
    names = [v.name for v in variants]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SpecError(f"sensitivity: several variants named {', '.join(map(repr, repeated))}"
                        "; variant names must be unique")
    pairs = [(c.a, c.b, c.quantity) for c in contrasts]
    if len(set(pairs)) != len(pairs):  # their rows would share one quantity name
        raise SpecError("sensitivity: a contrast is given twice (same a, b and quantity)")
    interval = interval or IntervalSpec()
    started = time.perf_counter()
    frames: dict[int, pd.DataFrame] = {}
    total = len(variants)
    if executor is None:
        for i, variant in enumerate(variants):
            frames[i] = fit_variant(variant, settings, contrasts, interval)
            _raise_if_main_failed(variant, frames[i])
            if progress:
                progress(i + 1, total, variant.name)
    else:
        futures = {executor.submit(fit_variant, v, settings, tuple(contrasts), interval): i
                   for i, v in enumerate(variants)}
        try:
            for done, future in enumerate(cf.as_completed(futures), start=1):
                i = futures[future]
                try:
                    frames[i] = future.result()
                except Exception as err:  # noqa: BLE001 - e.g. a worker lost: keep the grid
                    frames[i] = pd.DataFrame([{
                        "variant": variants[i].name, "group": variants[i].group,
                        "description": variants[i].description, "status": "failed",
                        "error": f"{type(err).__name__}: {err}".splitlines()[0]}]).reindex(
                        columns=ROW_COLUMNS)
                _raise_if_main_failed(variants[i], frames[i])
                if progress:
                    progress(done, total, variants[i].name)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    table = pd.concat([frames[i] for i in range(total)], ignore_index=True)
    if total and (table["status"] == "failed").all():
        raise SamplingError(f"sensitivity: every variant failed (first: {variants[0].name}: "
                            f"{table['error'].iloc[0]})")
    table = _flag(table, threshold)
    return SensitivityResult(table, threshold, time.perf_counter() - started)


def _raise_if_main_failed(variant: Variant, frame: pd.DataFrame) -> None:
    if variant.name == MAIN and (frame["status"] == "failed").any():
        raise SamplingError(
            f"the main analysis failed ({frame['error'].iloc[0]}); it is the reference of "
            "every flag, so the grid was stopped")


def _flag(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Mark rows whose conclusion differs from the main analysis."""
    table = table.copy()
    table["flag"] = ""
    main = table[(table["variant"] == MAIN) & (table["status"] != "failed")]
    if main.empty:
        return table
    reference = main.set_index("quantity")
    for idx, row in table.iterrows():
        if row["variant"] == MAIN or row["status"] == "failed":
            continue
        if row["quantity"] not in reference.index:
            continue
        ref = reference.loc[row["quantity"]]
        flags = []
        if row["kind"] == "contrast":
            if (ref["p_gt_0"] >= threshold) != (row["p_gt_0"] >= threshold):
                flags.append(f"P(>0) crosses {threshold:g} "
                             f"({ref['p_gt_0']:.3f} -> {row['p_gt_0']:.3f})")
            ref_excl = ref["lower"] > 0 or ref["upper"] < 0
            row_excl = row["lower"] > 0 or row["upper"] < 0
            if ref_excl != row_excl:
                flags.append("interval " + ("stops" if ref_excl else "starts")
                             + " excluding 0")
        table.at[idx, "flag"] = "; ".join(flags)
    return table


# ---------------------------------------------------------------------- spec section
SENSITIVITY_KEYS = ("tau_priors", "turner", "mu_priors", "sigma_subgroup_priors",
                    "subgroup_effects", "likelihoods", "leave_one_out", "subsets",
                    "decision_threshold", "psens", "moderator_sets", "precision_moderator")


@dataclass(frozen=True)
class SensitivityConfig:
    """The ``[sensitivity]`` section of a spec (defaults: the standard grid)."""

    grid: GridOptions = field(default_factory=GridOptions)
    threshold: float = 0.95
    psens: bool = True


def parse_sensitivity(raw: Mapping[str, Any] | None, source: str) -> SensitivityConfig:
    """Validate a ``[sensitivity]`` table; unknown keys are rejected."""
    raw = dict(raw or {})
    unknown = [k for k in raw if k not in SENSITIVITY_KEYS]
    if unknown:
        raise SpecError(f"{source}: unknown key 'sensitivity.{unknown[0]}'; valid keys in "
                        f"[sensitivity]: {', '.join(SENSITIVITY_KEYS)}")
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
        subsets=tuple(subsets),
        moderator_sets=tuple(moderator_sets),
        precision_moderator=precision or None,
    )
    return SensitivityConfig(grid, float(threshold), psens)


def spec_grid(section: Mapping[str, Any] | None, spec: ModelSpec,
              source: str) -> tuple[SensitivityConfig, list[Variant]]:
    """The ``[sensitivity]`` section of a spec and the variants it makes for ``spec``.

    Without a ``subsets`` key the grid gets :func:`default_subsets`. Cheap (no
    fitting): ``bayes-poem check`` and every command that reads a spec build the
    grid, so a bad subset or a repeated name is reported before any sampling,
    naming ``source`` and the key.
    """
    config = parse_sensitivity(section, source)
    grid = config.grid
    if "subsets" not in (section or {}):
        grid = dataclasses.replace(grid, subsets=default_subsets(spec))
    try:
        return config, build_variants(spec, grid)
    except SpecError as err:
        raise SpecError(f"{source}: {err}") from None


def default_subsets(spec: ModelSpec) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """A quality subset when the data have a ``quality`` column with "good" rows."""
    frame = spec.table.frame
    if "quality" in frame.columns and (frame["quality"] == "good").any():
        return (("good-quality studies only", "quality", ("good",)),)
    return ()


def summarise_by_variant(table: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: status, seconds, divergences, number of flags."""
    grouped = table.groupby("variant", sort=False)
    return pd.DataFrame({
        "status": grouped["status"].first(),
        "seconds": grouped["seconds"].first(),
        "divergences": grouped["divergences"].first(),
        "flags": grouped["flag"].apply(lambda s: int((s.fillna("") != "").sum())),
    }).reset_index()



# ---------------------------------------------------------------------- reading sensitivity.csv
STATUSES = ("ok", "diagnostics", "failed")
KINDS = ("probability", "heterogeneity", "contrast")
_TEXT_COLUMNS = ("variant", "group", "description", "status", "error", "quantity", "kind",
                 "interval", "flag")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read and validate a ``sensitivity.csv`` written by ``bayes-poem sensitivity``.

    Every column of :data:`ROW_COLUMNS` must be there (others are ignored).
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
    missing = [c for c in ROW_COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path}: not a sensitivity table of 'bayes-poem sensitivity': missing "
                        f"column(s) {', '.join(missing)}")
    repeated = sorted({c for c in ROW_COLUMNS if header.count(c) > 1})
    if repeated:
        raise DataError(f"{path}: line 1: duplicate column(s) {', '.join(repeated)}")
    if not records:
        raise DataError(f"{path}: the table has no rows")
    at = {c: header.index(c) for c in ROW_COLUMNS}
    columns: dict[str, list[Any]] = {c: [] for c in ROW_COLUMNS}
    seen: dict[tuple[str, str], int] = {}
    for row, (line, record) in enumerate(zip(lines, records, strict=True), start=1):
        cells = {c: record[at[c]].strip() for c in ROW_COLUMNS}

        def bad(column: str, problem: str, row: int = row, line: int = line) -> DataError:
            return DataError(f"{path}: row {row} (line {line}), column '{column}': {problem}")

        if not cells["variant"]:
            raise bad("variant", "missing value")
        if cells["status"] not in STATUSES:
            raise bad("status", f"{cells['status']!r} is not one of {', '.join(STATUSES)}")
        fitted = cells["status"] != "failed"
        numbers = {}
        for column in ("median", "lower", "upper", "p_gt_0", "p_gt_margin", "margin",
                       "divergences", "seconds"):
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
        pair = (cells["variant"], cells["quantity"] if fitted else "")
        if pair in seen:
            what = f"variant {pair[0]!r}" + (f", quantity {pair[1]!r}" if fitted else "")
            raise DataError(f"{path}: rows {seen[pair]} and {row} repeat {what}")
        seen[pair] = row
        for column in ROW_COLUMNS:
            if column in _TEXT_COLUMNS:
                columns[column].append(cells[column] or None)
            else:
                value = numbers[column]
                columns[column].append(float("nan") if value is None else value)
    frame = pd.DataFrame(columns, columns=ROW_COLUMNS)
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
