"""The meta-analyses of a trial spec, validated: ``meta``, ``meta_continuous``, and
``assurance`` (a design from a meta-analysis).

Each function turns a parsed :class:`~bayes_poem.trials.specfile.TrialSpec` into a
:class:`~bayes_poem.trials.prepare.PreparedAnalysis` (the runner's inputs, the
resolved spec, the SYNTHETIC banner's description): every user error is raised
here, before anything runs; nothing is computed (:mod:`bayes_poem.trials.run`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from bayes_poem.banner import marked_synthetic
from bayes_poem.errors import DataError, SpecError
from bayes_poem.table import StudyTable
from bayes_poem.table_validate import check_label
from bayes_poem.trials.common import (
    MAX_SIMULATIONS,
    check_count,
    check_kind,
    check_probability,
    check_seed,
    margin_value,
    read_csv,
    shown,
    string_value,
    studies_mapping,
)
from bayes_poem.trials.prepare import (
    DEFAULT_KINDS,
    PreparedAnalysis,
    beta_prior,
    header_resolved,
    same_trial,
    sampler_resolved,
    sampler_settings,
    study_table,
    summary_resolved,
    synthetic_flag,
)

if TYPE_CHECKING:
    from bayes_poem.trials.specfile import TrialSpec

__all__ = ["assurance", "meta", "meta_continuous"]


# ---------------------------------------------------------------- meta (binary)
def _meta_inputs(spec: TrialSpec, outcomes_key: str) -> tuple[StudyTable, list[str], dict[
        str, pd.DataFrame], dict[str, Any]]:
    from bayes_poem.trials.counts import comparative_counts
    from bayes_poem.trials.meta import (
        BINARY_META_FAMILIES,
        BINARY_META_PRIORS,
        resolve_priors,
    )

    data = spec.section("data")
    table = study_table(spec, data)
    if outcomes_key == "outcomes":
        outcomes = data.get("outcomes")
        if not isinstance(outcomes, list) or not outcomes or not all(
                isinstance(o, str) for o in outcomes):
            raise SpecError("data.outcomes: must be a non-empty list of outcome labels "
                            f"(got {shown(outcomes)})")
        studies = studies_mapping(data.get("studies"), "data.studies")
        extra = [o for o in studies if o not in outcomes]
        if extra:
            raise SpecError(f"data.studies.{extra[0]}: not one of data.outcomes")
    else:
        outcome = string_value(data, "outcome", "data")
        if outcome is None:
            raise SpecError("data.outcome: is required (the outcome of the meta-analysis)")
        outcomes = [outcome]
        raw = data.get("studies")
        if raw is not None and (not isinstance(raw, list) or not raw or not all(
                isinstance(s, str) for s in raw)):
            raise SpecError("data.studies: must be a non-empty list of trial labels "
                            f"(got {shown(raw)})")
        studies = {outcome: raw} if raw is not None else {}
    same = same_trial(data.get("same_trial"), "data.same_trial")
    counts = {o: comparative_counts(table, o, studies=studies.get(o), same_trial=same)
              for o in outcomes}
    priors = resolve_priors(spec.section("priors"), BINARY_META_FAMILIES, BINARY_META_PRIORS,
                            "priors")
    resolved_data = {**({"dataset": data["dataset"]} if "dataset" in data
                        else {"path": table.source}),
                     ("outcomes" if outcomes_key == "outcomes" else "outcome"):
                         outcomes if outcomes_key == "outcomes" else outcomes[0],
                     "studies": ({o: list(c["study"]) for o, c in counts.items()}
                                 if outcomes_key == "outcomes"
                                 else list(counts[outcomes[0]]["study"])),
                     "same_trial": [list(g) for g in same]}
    return table, outcomes, counts, {"data": resolved_data, "priors": priors}


def meta(spec: TrialSpec) -> PreparedAnalysis:
    table, outcomes, counts, parts = _meta_inputs(spec, "outcomes")
    ni = spec.section("noninferiority")
    margin = margin_value(ni, "noninferiority", required=False)
    kinds_raw = ni.get("kinds", {})
    if not isinstance(kinds_raw, Mapping):
        raise SpecError("noninferiority.kinds: must be a table outcome = \"benefit\"|\"harm\" "
                        f"(got {shown(kinds_raw)})")
    kinds = {}
    for outcome in outcomes:
        kind = kinds_raw.get(outcome, DEFAULT_KINDS.get(outcome))
        if kind is None:
            if margin is not None:
                raise SpecError(f"noninferiority.kinds.{outcome}: give the kind of this outcome "
                                "(benefit or harm)")
            kind = "benefit"
        kinds[outcome] = check_kind(kind, f"noninferiority.kinds.{outcome}")
    extra = [k for k in kinds_raw if k not in outcomes]
    if extra:
        raise SpecError(f"noninferiority.kinds.{extra[0]}: not one of data.outcomes")
    settings = sampler_settings(spec)
    priors = parts["priors"]
    resolved = {**header_resolved(spec), "data": parts["data"],
                "noninferiority": {"margin": margin, "kinds": kinds},
                "priors": {k: p.to_dict() for k, p in priors.items()},
                "sampler": sampler_resolved(settings),
                "summary": summary_resolved(spec)}
    inputs = {"outcomes": outcomes, "counts": counts, "priors": priors, "settings": settings,
              "kinds": kinds, "margin": margin, "source": table.source}
    summary = "; ".join(f"{o}: {', '.join(c['study'])}" for o, c in counts.items())
    return PreparedAnalysis(spec, f"meta-analysis of {table.source} ({summary})", resolved,
                            inputs)


# ---------------------------------------------------------------- meta (continuous)
def meta_continuous(spec: TrialSpec) -> PreparedAnalysis:
    from bayes_poem.trials.meta import NORMAL_META_FAMILIES, resolve_priors

    data = spec.section("data")
    outcome = string_value(data, "outcome", "data", "outcome")
    measure = string_value(data, "measure", "data", "mean difference (posterior - anterior)")
    synthetic = synthetic_flag(data)
    if ("studies" in data) == ("path" in data):
        raise spec.error("[data] needs exactly one of 'studies' (inline) or 'path' (CSV with "
                         "columns study, estimate, se)")
    if "studies" in data:
        rows = data["studies"]
        if not isinstance(rows, list) or not rows:
            raise SpecError("data.studies: must be a non-empty array of tables "
                            f"{{ study, estimate, se }} (got {shown(rows)})")
        source = "inline studies"
    else:
        path = (spec.base_dir / string_value(data, "path", "data")).resolve()
        source = str(path)
        rows = read_csv(path, source).to_dict("records")
    labels, estimates, ses = _study_rows(rows, source)
    priors = resolve_priors(spec.section("priors"), NORMAL_META_FAMILIES, {}, "priors")
    settings = sampler_settings(spec)
    resolved = {**header_resolved(spec),
                "data": {"outcome": outcome, "measure": measure, "synthetic": synthetic,
                         "studies": [{"study": s, "estimate": e, "se": v}
                                     for s, e, v in zip(labels, estimates, ses, strict=True)]},
                "priors": {k: p.to_dict() for k, p in priors.items()},
                "sampler": sampler_resolved(settings),
                "summary": summary_resolved(spec)}
    inputs = {"estimates": estimates, "ses": ses, "studies": labels, "priors": priors,
              "outcome": outcome, "settings": settings, "measure": measure,
              "notes": ("SYNTHETIC data",) if synthetic else ()}
    data_name = "the spec's inline studies" if "studies" in data else source
    label = " (SYNTHETIC data)" if synthetic else ""
    return PreparedAnalysis(spec, f"normal-normal meta-analysis of {outcome}: {len(labels)} "
                            f"trials{label}", resolved, inputs,
                            synthetic=marked_synthetic(data_name) if synthetic else "")


def _study_rows(rows: list[Any], source: str) -> tuple[list[str], list[float], list[float]]:
    """Labels, estimates and standard errors of ``{study, estimate, se}`` rows."""
    labels, estimates, ses = [], [], []
    for i, row in enumerate(rows, start=1):
        where = f"{source}: study {i}"
        if not isinstance(row, Mapping):
            raise SpecError(f"{where}: must be a table {{ study, estimate, se }} "
                            f"(got {shown(row)})")
        unknown = [k for k in row if k not in ("study", "estimate", "se")]
        missing = [k for k in ("study", "estimate", "se") if k not in row]
        if unknown or missing:
            raise DataError(f"{where}: {'unknown' if unknown else 'missing'} key "
                            f"'{(unknown or missing)[0]}'; keys: study, estimate, se")
        label = row["study"]
        if isinstance(label, bool) or not isinstance(label, str | int):
            raise DataError(f"{where}, study: must be a label (got {label!r})")
        label = check_label(str(label).strip(), "study", f"{where}, study")
        values = []
        for key in ("estimate", "se"):
            value = row[key]
            try:
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    raise TypeError  # float(true) would be 1.0
                value = float(value)
            except OverflowError:
                value = float("inf")
            except (TypeError, ValueError):
                raise DataError(f"{where}, {key}: {row[key]!r} is not a number") from None
            if not math.isfinite(value):
                raise DataError(f"{where}, {key}: must be finite (got {row[key]!r})")
            values.append(value)
        if values[1] <= 0:
            raise DataError(f"{where} ({label}), se: must be > 0 (got {values[1]:g})")
        labels.append(label)
        estimates.append(values[0])
        ses.append(values[1])
    if len(set(labels)) != len(labels):
        raise DataError(f"{source}: study labels must be distinct")
    return labels, estimates, ses


# ---------------------------------------------------------------- assurance
def assurance(spec: TrialSpec) -> PreparedAnalysis:
    from bayes_poem.trials.design import DecisionRule, check_sizes

    table, outcomes, counts, parts = _meta_inputs(spec, "outcome")
    outcome = outcomes[0]
    design = spec.section("design")
    try:
        sizes = check_sizes(design.get("n_per_arm"))
    except SpecError as err:
        raise SpecError(f"design.{err}") from None
    margin = margin_value(design, "design")
    kind = check_kind(design.get("kind", DEFAULT_KINDS.get(outcome, "benefit")), "design.kind")
    threshold = check_probability(design.get("threshold", 0.975), "design.threshold")
    baseline = design.get("baseline", "pooled")
    if baseline != "pooled":
        baseline = check_probability(baseline, "design.baseline")
    simulations = check_count(design.get("simulations", 4000), "design.simulations",
                              minimum=10, maximum=MAX_SIMULATIONS)
    seed = check_seed(design.get("seed", 20240101), "design.seed")
    prior = beta_prior(design.get("prior"), "design.prior")
    DecisionRule(margin, kind, threshold, prior)
    settings = sampler_settings(spec)
    priors = parts["priors"]
    resolved = {**header_resolved(spec), "data": parts["data"],
                "priors": {k: p.to_dict() for k, p in priors.items()},
                "sampler": sampler_resolved(settings),
                "design": {"n_per_arm": sizes, "margin": margin, "kind": kind,
                           "threshold": threshold, "baseline": baseline,
                           "simulations": simulations, "seed": seed,
                           "prior": prior.to_dict()},
                "summary": summary_resolved(spec)}
    inputs = {"counts": counts[outcome], "outcome": outcome, "priors": priors,
              "settings": settings, "kind": kind, "margin": margin, "source": table.source,
              "sizes": sizes, "baseline": baseline, "threshold": threshold, "prior": prior,
              "simulations": simulations, "seed": seed}
    return PreparedAnalysis(
        spec, f"assurance for N per arm {sizes} from the meta-analysis of {outcome} "
        f"({', '.join(counts[outcome]['study'])})", resolved, inputs)
