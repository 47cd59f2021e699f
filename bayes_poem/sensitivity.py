"""Sensitivity analyses: a grid of model variants, fitted fast, flagged when conclusions move.

A :class:`Variant` is a named :class:`~bayes_poem.spec.ModelSpec`. Every variant
of one analysis reuses the same compiled log-density (:mod:`bayes_poem.density`):
priors are data, leave-one-out and subsets zero counts (the model keeps its
shape), other likelihoods or structures are flags in the same buffer. Nothing
recompiles, so a variant costs one sampling run (a fraction of a second here).

Variants run on any :class:`concurrent.futures.Executor` -- a local
``ProcessPoolExecutor``, or Dask's ``distributed.Client(...).get_executor()`` --
or serially. A failing variant (sampler error, divergences, a subgroup left
without data) becomes a row with ``status`` and ``error``; it never aborts the
grid or loses finished rows.

Output: one tidy DataFrame, one row per variant x quantity, with the posterior
median, interval, ``P(> 0)`` for contrasts, and flags where a conclusion changes
relative to the main analysis.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bayes_poem.contrasts import Contrast
from bayes_poem.errors import ConvergenceWarning, SpecError
from bayes_poem.intervals import IntervalSpec
from bayes_poem.priors import TURNER_PRIORS, Prior, turner_prior, validate_prior
from bayes_poem.sampling import SamplerSettings
from bayes_poem.spec import ModelSpec

MAIN = "main"
ROW_COLUMNS = ["variant", "group", "description", "status", "error", "quantity", "kind",
               "median", "lower", "upper", "interval", "p_gt_0", "p_gt_margin", "margin",
               "divergences", "seconds", "flag"]

DEFAULT_TAU_PRIORS: dict[str, Prior] = {
    "tau HalfNormal(0.5)": Prior("HalfNormal", {"sigma": 0.5}),
    "tau HalfNormal(1)": Prior("HalfNormal", {"sigma": 1.0}),
    "tau HalfNormal(2)": Prior("HalfNormal", {"sigma": 2.0}),
    "tau HalfCauchy(0.5)": Prior("HalfCauchy", {"beta": 0.5}),
    "tau HalfStudentT(3, 1)": Prior("HalfStudentT", {"nu": 3.0, "sigma": 1.0}),
    "tau Exponential(1)": Prior("Exponential", {"lam": 1.0}),
}


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
    mu_priors: Mapping[str, Prior] = field(default_factory=lambda: {
        "mu Normal(0, 3)": Prior("Normal", {"mu": 0.0, "sigma": 3.0})})
    sigma_subgroup_priors: Mapping[str, Prior] = field(default_factory=lambda: {
        "sigma_subgroup HalfNormal(0.5)": Prior("HalfNormal", {"sigma": 0.5}),
        "sigma_subgroup HalfNormal(2)": Prior("HalfNormal", {"sigma": 2.0})})
    subgroup_effects: Sequence[str] = ("fixed",)
    likelihoods: Sequence[str] = ("beta_binomial", "common_effect")
    leave_one_out: bool = True
    subsets: Sequence[tuple[str, str, tuple[str, ...]]] = ()  # (name, column, values)


def build_variants(spec: ModelSpec, options: GridOptions | None = None) -> list[Variant]:
    """The main analysis followed by every variant ``options`` asks for."""
    options = options or GridOptions()
    variants = [Variant(MAIN, MAIN, spec, "the analysis as specified")]
    if spec.study_effects == "random":
        for name, prior in options.tau_priors.items():
            variants.append(Variant(name, "tau prior", spec.with_priors(tau=prior),
                                    f"tau ~ {prior.describe()}"))
        for preset in options.turner:
            prior = turner_prior(preset)
            variants.append(Variant(f"tau2 {preset}", "tau prior", spec.with_priors(tau=prior),
                                    f"Turner et al. 2015: {TURNER_PRIORS[preset][0]}; "
                                    f"log tau^2 ~ Normal({prior.params['mu']:g}, "
                                    f"{prior.params['sigma']:g})"))
    for name, prior in options.mu_priors.items():
        variants.append(Variant(name, "mu prior", spec.with_priors(mu=prior),
                                f"mu ~ {prior.describe()}"))
    if spec.subgroup_effects == "random":
        for name, prior in options.sigma_subgroup_priors.items():
            variants.append(Variant(name, "subgroup prior",
                                    spec.with_priors(sigma_subgroup=prior),
                                    f"sigma_subgroup ~ {prior.describe()}"))
    for effects in options.subgroup_effects:
        if spec.subgroup_effects != "none" and effects != spec.subgroup_effects:
            variants.append(Variant(f"subgroups {effects}", "structure",
                                    spec.with_options(subgroup_effects=effects),
                                    f"subgroup effects {effects}"))
    for likelihood in options.likelihoods:
        if likelihood == "beta_binomial" and spec.likelihood != "beta_binomial":
            variants.append(Variant("beta-binomial", "likelihood",
                                    spec.with_options(likelihood="beta_binomial"),
                                    "beta-binomial likelihood (overdispersion phi)"))
        elif likelihood == "common_effect" and spec.study_effects == "random":
            variants.append(Variant("common effect", "likelihood",
                                    spec.with_options(study_effects="common"),
                                    "common-effect model (tau = 0)"))
        elif likelihood not in ("beta_binomial", "common_effect", "binomial"):
            raise SpecError(f"sensitivity.likelihoods: '{likelihood}' is not one of "
                            "binomial, beta_binomial, common_effect")
    if options.leave_one_out:
        for study in spec.studies:
            variants.append(Variant(f"without {study}", "leave one out", spec.leave_out(study),
                                    f"study {study} left out (its counts zeroed)"))
    for name, column, values in options.subsets:
        variants.append(Variant(name, "subset", spec.only_where(column, list(values)),
                                f"only rows with {column} in {', '.join(values)}"))
    return variants


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
        if row.parameter in ("tau", "sigma_subgroup", "phi"):
            rows.append({"quantity": row.parameter, "kind": "heterogeneity",
                         "median": row.median, "lower": row.lower, "upper": row.upper,
                         "interval": row.interval})
    if contrasts and result.spec.subgroup_effects != "none":
        table = result.contrasts(list(contrasts), interval)
        for row in table[table["scale"] == "difference"].itertuples(index=False):
            rows.append({"quantity": f"difference[{row.contrast}]", "kind": "contrast",
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
    """
    if not 0.5 <= threshold < 1.0:
        raise SpecError("sensitivity.decision_threshold: must be in [0.5, 1)")
    interval = interval or IntervalSpec()
    started = time.perf_counter()
    frames: dict[int, pd.DataFrame] = {}
    total = len(variants)
    if executor is None:
        for i, variant in enumerate(variants):
            frames[i] = fit_variant(variant, settings, contrasts, interval)
            if progress:
                progress(i + 1, total, variant.name)
    else:
        futures = {executor.submit(fit_variant, v, settings, tuple(contrasts), interval): i
                   for i, v in enumerate(variants)}
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
            if progress:
                progress(done, total, variants[i].name)
    table = pd.concat([frames[i] for i in range(total)], ignore_index=True)
    table = _flag(table, threshold)
    return SensitivityResult(table, threshold, time.perf_counter() - started)


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
                    "decision_threshold", "psens")


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

    def priors(key: str, parameter: str, default: Mapping[str, Prior]) -> dict[str, Prior]:
        if key not in raw:
            return dict(default)
        entries = raw[key]
        if not isinstance(entries, list):
            raise SpecError(f"{source}: sensitivity.{key} must be an array of tables")
        out = {}
        for i, entry in enumerate(entries, start=1):
            if not isinstance(entry, Mapping):
                raise SpecError(f"{source}: sensitivity.{key}[{i}] must be a table")
            entry = dict(entry)
            name = entry.pop("name", None)
            prior = validate_prior(parameter, entry, f"{source}: sensitivity.{key}[{i}]")
            out[str(name) if name else f"{parameter} {prior.describe()}"] = prior
        return out

    def strings(key: str, default: Iterable[str], allowed: Iterable[str]) -> tuple[str, ...]:
        value = raw.get(key, list(default))
        allowed = tuple(allowed)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SpecError(f"{source}: sensitivity.{key} must be a list of strings")
        bad = [v for v in value if v not in allowed]
        if bad:
            raise SpecError(f"{source}: sensitivity.{key}: '{bad[0]}' is not one of "
                            f"{', '.join(allowed)}")
        return tuple(value)

    subsets = []
    for i, entry in enumerate(raw.get("subsets", []), start=1):
        where = f"{source}: sensitivity.subsets[{i}]"
        if not isinstance(entry, Mapping) or set(entry) - {"name", "column", "values"}:
            raise SpecError(f"{where}: a table with keys name, column, values")
        if not isinstance(entry.get("column"), str) or not isinstance(entry.get("values"), list):
            raise SpecError(f"{where}: needs 'column' (string) and 'values' (list)")
        values = tuple(str(v) for v in entry["values"])
        name = str(entry.get("name") or f"{entry['column']} in {', '.join(values)}")
        subsets.append((name, entry["column"], values))

    leave_one_out = raw.get("leave_one_out", True)
    psens = raw.get("psens", True)
    threshold = raw.get("decision_threshold", 0.95)
    if not isinstance(leave_one_out, bool) or not isinstance(psens, bool):
        raise SpecError(f"{source}: sensitivity.leave_one_out and psens must be true or false")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not (
            0.5 <= threshold < 1.0):
        raise SpecError(f"{source}: sensitivity.decision_threshold must be in [0.5, 1)")
    grid = GridOptions(
        tau_priors=priors("tau_priors", "tau", defaults.tau_priors),
        turner=strings("turner", defaults.turner, TURNER_PRIORS),
        mu_priors=priors("mu_priors", "mu", defaults.mu_priors),
        sigma_subgroup_priors=priors("sigma_subgroup_priors", "sigma_subgroup",
                                     defaults.sigma_subgroup_priors),
        subgroup_effects=strings("subgroup_effects", defaults.subgroup_effects,
                                 ("random", "fixed")),
        likelihoods=strings("likelihoods", defaults.likelihoods,
                            ("binomial", "beta_binomial", "common_effect")),
        leave_one_out=leave_one_out,
        subsets=tuple(subsets),
    )
    return SensitivityConfig(grid, float(threshold), psens)


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

