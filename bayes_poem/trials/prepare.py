"""A trial spec's analysis, validated: data loaded and every setting checked.

``TrialSpec.prepare()`` turns a parsed :class:`~bayes_poem.trials.specfile.TrialSpec`
into a :class:`PreparedAnalysis` with this module's :func:`binary`,
:func:`continuous` and :func:`interim` (one trial) or
:mod:`bayes_poem.trials.prepare_meta`'s (meta-analyses and the design from them):
the validated inputs of its runner (:mod:`bayes_poem.trials.run`), the resolved
spec (every default filled in, written as ``spec.toml``), a one-line
description for the progress output and, for synthetic data, what the data are
(the SYNTHETIC banner, :mod:`bayes_poem.banner`). Every user error is raised
here, before anything runs or prints; nothing is computed. The readers shared
by every analysis (:func:`study_table`, :func:`beta_prior`, :func:`counts_value`,
...) are here too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import tomli_w

from bayes_poem.banner import marked_synthetic
from bayes_poem.datasets import load_dataset
from bayes_poem.errors import DataError, SpecError
from bayes_poem.prior_families import NORMAL
from bayes_poem.sampling import SamplerSettings
from bayes_poem.table import StudyTable, load_table
from bayes_poem.trials.binary import ArmCounts, BetaPrior, arm_counts_from_table
from bayes_poem.trials.common import (
    ARMS,
    MAX_DRAWS,
    MAX_N_PER_ARM,
    MAX_SIMULATIONS,
    check_better,
    check_count,
    check_kind,
    check_number,
    check_probability,
    check_seed,
    margin_value,
    read_csv,
    shown,
    string_value,
)

if TYPE_CHECKING:
    from bayes_poem.trials.report import TrialReport
    from bayes_poem.trials.specfile import TrialSpec

__all__ = ["DEFAULT_KINDS", "EXAMPLES", "PreparedAnalysis", "beta_prior", "binary",
           "continuous", "counts_value", "header_resolved", "interim", "same_trial",
           "sampler_resolved", "sampler_settings", "study_table", "summary_resolved",
           "synthetic_flag"]

DEFAULT_KINDS = {"clinical_success": "benefit", "technical_success": "benefit",
                 "adverse_event": "harm", "abnormal_acid_exposure": "harm"}
EXAMPLES = ("synthetic_eckardt_patients", "synthetic_eckardt_summaries")


@dataclass(frozen=True)
class PreparedAnalysis:
    """A validated analysis, ready to run; ``describe`` is one line for progress output.

    ``inputs`` are the keyword arguments of the analysis' runner
    (:mod:`bayes_poem.trials.run`); ``synthetic`` says what synthetic data are
    (the SYNTHETIC banner's description), empty for real data.
    """

    spec: TrialSpec
    describe: str
    resolved: Mapping[str, Any]
    inputs: Mapping[str, Any] = field(default_factory=dict)
    synthetic: str = ""

    def run(self) -> TrialReport:
        from bayes_poem.trials.run import run_analysis

        report = run_analysis(self)
        return dataclasses.replace(report, resolved_toml=tomli_w.dumps(_plain(self.resolved)))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- helpers
def study_table(spec: TrialSpec, data: Mapping[str, Any]) -> StudyTable:
    if ("dataset" in data) == ("path" in data):
        raise spec.error("[data] needs exactly one of 'dataset' or 'path'")
    if "dataset" in data:
        return load_dataset(string_value(data, "dataset", "data"))
    path = (spec.base_dir / string_value(data, "path", "data")).resolve()
    return load_table(path, source=str(path))


def sampler_settings(spec: TrialSpec) -> SamplerSettings:
    return SamplerSettings(**spec.section("sampler"))


def beta_prior(value: Any, where: str) -> BetaPrior:
    if value is None:
        return BetaPrior()
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: must be a table {{ a = ..., b = ... }} "
                        f"(got {shown(value)})")
    unknown = [k for k in value if k not in ("a", "b")]
    if unknown:
        raise SpecError(f"{where}: unknown key '{unknown[0]}'; valid keys: a, b")
    try:
        return BetaPrior(value.get("a", 1.0), value.get("b", 1.0))
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None


def counts_value(value: Any, where: str) -> ArmCounts:
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: must be a table {{ events = ..., total = ... }} "
                        f"(got {shown(value)})")
    unknown = [k for k in value if k not in ("events", "total")]
    if unknown or "events" not in value or "total" not in value:
        raise SpecError(f"{where}: needs exactly the keys events and total")
    return ArmCounts(value["events"], value["total"], where=where)


def same_trial(value: Any, where: str) -> tuple[tuple[str, ...], ...]:
    from bayes_poem.trials.counts import DEFAULT_SAME_TRIAL

    if value is None:
        return DEFAULT_SAME_TRIAL
    if not isinstance(value, list) or not all(
            isinstance(g, list) and all(isinstance(s, str) for s in g) for g in value):
        raise SpecError(f"{where}: must be a list of lists of trial labels "
                        f"(got {shown(value)})")
    return tuple(tuple(g) for g in value)


def synthetic_flag(data: Mapping[str, Any]) -> bool:
    synthetic = data.get("synthetic", False)
    if not isinstance(synthetic, bool):
        raise SpecError(f"data.synthetic: must be true or false (got {shown(synthetic)})")
    return synthetic


def summary_resolved(spec: TrialSpec) -> dict[str, Any]:
    return {"interval": spec.interval.kind, "prob": spec.interval.prob}


def header_resolved(spec: TrialSpec) -> dict[str, Any]:
    return {"title": spec.title, "description": spec.description, "analysis": spec.analysis}


def sampler_resolved(settings: SamplerSettings) -> dict[str, Any]:
    return {k: v for k, v in settings.to_dict().items() if k != "progress"}


# ---------------------------------------------------------------- binary
def binary(spec: TrialSpec) -> PreparedAnalysis:
    data = spec.section("data")
    ni = spec.section("noninferiority")
    margin = margin_value(ni, "noninferiority")
    kind = check_kind(ni.get("kind", "benefit"), "noninferiority.kind")
    inline = "anterior" in data or "posterior" in data
    outcome = string_value(data, "outcome", "data", "outcome")
    if inline:
        if "dataset" in data or "path" in data:
            raise spec.error("[data]: give either dataset/path with trial, or inline "
                             "anterior and posterior counts, not both")
        for arm in ARMS:
            if arm not in data:
                raise spec.error(f"data.{arm}: missing; inline data need both arms")
        trial = string_value(data, "trial", "data", "trial")
        anterior = counts_value(data["anterior"], f"{spec.source}: data.anterior")
        posterior = counts_value(data["posterior"], f"{spec.source}: data.posterior")
        source = "inline counts"
    else:
        table = study_table(spec, data)
        trial = string_value(data, "trial", "data")
        if trial is None or "outcome" not in data:
            raise spec.error("[data]: 'trial' and 'outcome' are required with dataset/path")
        anterior, posterior = arm_counts_from_table(table, trial, outcome)
        source = table.source
    priors = spec.section("priors")
    prior_a = beta_prior(priors.get("anterior"), "priors.anterior")
    prior_p = beta_prior(priors.get("posterior"), "priors.posterior")
    simulation = spec.section("simulation")
    draws = check_count(simulation.get("draws", 20_000), "simulation.draws", minimum=2,
                        maximum=MAX_DRAWS)
    seed = check_seed(simulation.get("seed", 20200101), "simulation.seed")
    resolved_data: dict[str, Any] = {"trial": trial, "outcome": outcome}
    if inline:
        resolved_data.update({"anterior": {"events": anterior.events, "total": anterior.total},
                              "posterior": {"events": posterior.events,
                                            "total": posterior.total}})
    elif "dataset" in data:
        resolved_data["dataset"] = data["dataset"]
    else:
        resolved_data["path"] = source
    resolved = {**header_resolved(spec), "data": resolved_data,
                "noninferiority": {"margin": margin, "kind": kind},
                "priors": {"anterior": prior_a.to_dict(), "posterior": prior_p.to_dict()},
                "simulation": {"draws": draws, "seed": seed},
                "summary": summary_resolved(spec)}
    inputs = {"anterior": anterior, "posterior": posterior, "margin": margin, "kind": kind,
              "prior_anterior": prior_a, "prior_posterior": prior_p, "draws": draws,
              "seed": seed, "trial": trial, "outcome": outcome}
    return PreparedAnalysis(spec, f"binary analysis of {trial} ({outcome}) from {source}",
                            resolved, inputs)


# ---------------------------------------------------------------- continuous
def continuous(spec: TrialSpec) -> PreparedAnalysis:
    from bayes_poem.trials import continuous as cont
    from bayes_poem.trials import synthetic as syn

    data = spec.section("data")
    ni = spec.section("noninferiority")
    margin = margin_value(ni, "noninferiority", risk_difference=False)
    better = check_better(ni.get("better", "lower"), "noninferiority.better")
    outcome = string_value(data, "outcome", "data", "outcome")
    synthetic = synthetic_flag(data)
    sources = [k for k in ("path", "example") if k in data]
    inline = [k for k in ARMS if k in data]
    if len(sources) + (1 if inline else 0) != 1:
        raise spec.error("[data] needs exactly one of 'path' (patient-level CSV), 'example' "
                         f"({', '.join(EXAMPLES)}) or inline 'anterior' and 'posterior' "
                         "arm summaries")
    example = string_value(data, "example", "data")
    if example is not None and example not in EXAMPLES:
        raise SpecError(f"data.example: '{example}' is not one of {', '.join(EXAMPLES)}")
    summaries = bool(inline) or example == "synthetic_eckardt_summaries"
    synthetic = synthetic or example is not None
    priors = spec.section("priors")
    model = spec.section("model")
    resolved: dict[str, Any] = {**header_resolved(spec), "data": dict(data),
                                "noninferiority": {"margin": margin, "better": better},
                                "summary": summary_resolved(spec)}
    resolved["data"]["synthetic"] = synthetic
    common = {"margin": margin, "better": better, "interval": spec.interval,
              "outcome": outcome, "synthetic": synthetic}
    if summaries:
        for key in ("b0", "b_arm", "b_base", "sigma"):
            if key in priors:
                raise SpecError(f"priors.{key}: is used by patient-level data only; arm "
                                "summaries take priors.change")
        if model:
            raise SpecError("[model] (likelihood) is used by patient-level data only")
        if spec.section("sampler"):
            raise SpecError("[sampler] is used by patient-level data only (arm summaries are "
                            "analysed in closed form; see [simulation])")
        if example is not None:
            arms = syn.SYNTHETIC_ECKARDT_SUMMARIES
        else:
            for arm in ARMS:
                if arm not in data:
                    raise SpecError(f"data.{arm}: missing; arm summaries need both arms")
            arms = {arm: data[arm] for arm in ARMS}
        anterior = cont.as_summary(arms["anterior"], f"{spec.source}: data.anterior")
        posterior = cont.as_summary(arms["posterior"], f"{spec.source}: data.posterior")
        correlation = check_number(data.get("correlation", cont.DEFAULT_CORRELATION),
                                   "data.correlation")
        if not -1 <= correlation <= 1:
            raise SpecError(f"data.correlation: must be in [-1, 1] (got {correlation:g})")
        prior = priors.get("change")
        if prior is not None:
            from bayes_poem.trials.pymc_models import check_prior

            prior = check_prior("change", prior, (NORMAL,), "priors.change")
        simulation = spec.section("simulation")
        draws = check_count(simulation.get("draws", 20_000), "simulation.draws", minimum=2,
                            maximum=MAX_DRAWS)
        seed = check_seed(simulation.get("seed", 20150601), "simulation.seed")
        for arm, value in (("anterior", anterior), ("posterior", posterior)):
            if value.change_se(correlation) <= 0:
                raise DataError(f"data.{arm}: the standard error of the change is 0 with "
                                f"correlation {correlation:g}")
        resolved["data"].pop("example", None)
        resolved["data"].update({"anterior": anterior.to_dict(),
                                 "posterior": posterior.to_dict(),
                                 "correlation": correlation})
        resolved["simulation"] = {"draws": draws, "seed": seed}
        if prior is not None:
            resolved["priors"] = {"change": prior.to_dict()}
        inputs = {"method": "summaries", "anterior": anterior, "posterior": posterior,
                  "correlation": correlation, "prior": prior, "draws": draws, "seed": seed,
                  **common}
        describe = "arm-level summaries"
        data_name = "the spec's inline arm summaries"
    else:
        if "change" in priors:
            raise SpecError("priors.change: is used by arm summaries only")
        if "correlation" in data:
            raise SpecError("data.correlation: is used by arm summaries only")
        if spec.section("simulation"):
            raise SpecError("[simulation] is used by arm summaries only (patient-level data "
                            "are sampled; see [sampler])")
        if example is not None:
            patients = syn.synthetic_eckardt_patients()
            source = f"example '{example}' (SYNTHETIC)"
        else:
            path = (spec.base_dir / string_value(data, "path", "data")).resolve()
            source = str(path)
            patients = read_csv(path, source)
            resolved["data"]["path"] = source
        frame = cont.check_patient_frame(patients, source)
        likelihood = model.get("likelihood", "normal")
        if likelihood not in cont.LIKELIHOODS:
            raise SpecError(f"model.likelihood: '{likelihood}' is not one of "
                            f"{', '.join(cont.LIKELIHOODS)}")
        from bayes_poem.trials.pymc_models import check_prior

        overrides = {name: check_prior(name, value, cont.PATIENT_PRIOR_FAMILIES[name],
                                       f"priors.{name}") for name, value in priors.items()}
        if len(overrides) < len(cont.PATIENT_PRIOR_FAMILIES):
            defaults = cont.default_patient_priors(frame, source)
            overrides = {**defaults, **overrides}
        settings = sampler_settings(spec)
        resolved["model"] = {"likelihood": likelihood}
        resolved["priors"] = {k: overrides[k].to_dict() for k in cont.PATIENT_PRIOR_FAMILIES}
        resolved["sampler"] = sampler_resolved(settings)
        inputs = {"method": "patients", "frame": frame, "likelihood": likelihood,
                  "priors": overrides, "settings": settings, "source": source, **common}
        describe = f"patient-level data from {source}, {likelihood} likelihood"
        data_name = source
    note = ""
    if synthetic:
        note = (syn.DESCRIPTIONS[example] if example is not None
                else marked_synthetic(data_name))
    label = " (SYNTHETIC data)" if synthetic else ""
    return PreparedAnalysis(spec, f"continuous analysis of {outcome}: {describe}{label}",
                            resolved, inputs, synthetic=note)


# ---------------------------------------------------------------- interim
def interim(spec: TrialSpec) -> PreparedAnalysis:
    from bayes_poem.trials.design import interim_inputs

    section = spec.section("interim")
    for key in ("anterior", "posterior", "n_per_arm"):
        if key not in section:
            raise SpecError(f"interim.{key}: is required")
    anterior = counts_value(section["anterior"], f"{spec.source}: interim.anterior")
    posterior = counts_value(section["posterior"], f"{spec.source}: interim.posterior")
    n = check_count(section["n_per_arm"], "interim.n_per_arm", minimum=1,
                    maximum=MAX_N_PER_ARM)
    margin = margin_value(section, "interim")
    kind = check_kind(section.get("kind", "benefit"), "interim.kind")
    threshold = check_probability(section.get("threshold", 0.975), "interim.threshold")
    simulations = check_count(section.get("simulations", 20_000), "interim.simulations",
                              minimum=10, maximum=MAX_SIMULATIONS)
    seed = check_seed(section.get("seed", 20240102), "interim.seed")
    prior = beta_prior(section.get("prior"), "interim.prior")
    interim_inputs(anterior, posterior, n, margin, kind, threshold, prior)
    resolved = {**header_resolved(spec),
                "interim": {"anterior": {"events": anterior.events, "total": anterior.total},
                            "posterior": {"events": posterior.events,
                                          "total": posterior.total},
                            "n_per_arm": n, "margin": margin, "kind": kind,
                            "threshold": threshold, "simulations": simulations, "seed": seed,
                            "prior": prior.to_dict()},
                "summary": summary_resolved(spec)}
    inputs = {"anterior": anterior, "posterior": posterior, "n_per_arm": n, "margin": margin,
              "kind": kind, "threshold": threshold, "prior": prior,
              "simulations": simulations, "seed": seed}
    return PreparedAnalysis(spec, f"interim predictive probability ({n} per arm planned)",
                            resolved, inputs)
