"""TOML specs of trial analyses (``models/anterior_vs_posterior_*.toml``).

``load_trial_spec(path)`` reads and checks the keys and values;
``TrialSpec.prepare()`` loads and validates the data and every setting (all
user errors surface here, before anything runs or prints); ``.run()`` of the
prepared analysis computes and returns a :class:`~bayes_poem.trials.report.TrialReport`.
Unknown keys are rejected with the valid ones listed; every message starts with
the file name. Every key is documented in ``docs/trials.md``.

``analysis`` is one of ``binary``, ``continuous``, ``meta``,
``meta_continuous``, ``assurance``, ``interim``.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import tomli_w

from bayes_poem.datasets import load_dataset
from bayes_poem.errors import BayesPoemError, DataError, SpecError
from bayes_poem.intervals import IntervalSpec
from bayes_poem.prior_families import NORMAL
from bayes_poem.sampling import SamplerSettings
from bayes_poem.specfile import _shown
from bayes_poem.table import StudyTable, _check_label, load_table, read_text
from bayes_poem.trials import report as rep
from bayes_poem.trials.binary import ArmCounts, BetaPrior, analyse_binary, arm_counts_from_table
from bayes_poem.trials.common import (
    ARMS,
    MAX_DRAWS,
    MAX_N_PER_ARM,
    MAX_SIMULATIONS,
    check_better,
    check_count,
    check_kind,
    check_margin,
    check_number,
    check_probability,
    check_seed,
)

__all__ = ["ANALYSES", "PreparedAnalysis", "TrialSpec", "load_trial_spec", "parse_trial_spec"]

ANALYSES = ("binary", "continuous", "meta", "meta_continuous", "assurance", "interim")
TOP_KEYS = ("title", "description", "analysis", "data", "noninferiority", "model", "priors",
            "sampler", "simulation", "design", "interim", "summary")
SECTIONS: dict[str, tuple[str, ...]] = {
    "binary": ("data", "noninferiority", "priors", "simulation", "summary"),
    "continuous": ("data", "noninferiority", "model", "priors", "sampler", "simulation",
                   "summary"),
    "meta": ("data", "noninferiority", "priors", "sampler", "summary"),
    "meta_continuous": ("data", "priors", "sampler", "summary"),
    "assurance": ("data", "priors", "sampler", "design", "summary"),
    "interim": ("interim", "summary"),
}
SAMPLER_KEYS = ("draws", "tune", "chains", "seed", "backend", "target_accept")
SUMMARY_KEYS = ("interval", "prob")
KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("binary", "data"): ("dataset", "path", "trial", "outcome", "anterior", "posterior"),
    ("binary", "noninferiority"): ("margin", "kind"),
    ("binary", "priors"): ("anterior", "posterior"),
    ("binary", "simulation"): ("draws", "seed"),
    ("continuous", "data"): ("outcome", "path", "example", "synthetic", "anterior", "posterior",
                             "correlation"),
    ("continuous", "noninferiority"): ("margin", "better"),
    ("continuous", "model"): ("likelihood",),
    ("continuous", "priors"): ("b0", "b_arm", "b_base", "sigma", "change"),
    ("continuous", "simulation"): ("draws", "seed"),
    ("meta", "data"): ("dataset", "path", "outcomes", "studies", "same_trial"),
    ("meta", "noninferiority"): ("margin", "kinds"),
    ("meta", "priors"): ("theta", "tau", "mu_study"),
    ("meta_continuous", "data"): ("outcome", "measure", "studies", "path", "synthetic"),
    ("meta_continuous", "priors"): ("mu", "tau"),
    ("assurance", "data"): ("dataset", "path", "outcome", "studies", "same_trial"),
    ("assurance", "priors"): ("theta", "tau", "mu_study"),
    ("assurance", "design"): ("n_per_arm", "margin", "kind", "threshold", "baseline",
                              "simulations", "seed", "prior"),
    ("interim", "interim"): ("anterior", "posterior", "n_per_arm", "margin", "kind",
                             "threshold", "simulations", "seed", "prior"),
}
DEFAULT_KINDS = {"clinical_success": "benefit", "technical_success": "benefit",
                 "adverse_event": "harm", "abnormal_acid_exposure": "harm"}
EXAMPLES = ("synthetic_eckardt_patients", "synthetic_eckardt_summaries")


@dataclass(frozen=True)
class TrialSpec:
    """A parsed trial spec; sections are plain mappings checked for keys and types."""

    source: str
    base_dir: Path
    analysis: str
    title: str
    description: str
    sections: Mapping[str, Mapping[str, Any]]
    interval: IntervalSpec

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.sections.get(name, {}))

    def error(self, message: str) -> SpecError:
        return SpecError(f"{self.source}: {message}")

    def prepare(self) -> PreparedAnalysis:
        """Load and validate data and settings; nothing is computed or printed."""
        builder = {"binary": _prepare_binary, "continuous": _prepare_continuous,
                   "meta": _prepare_meta, "meta_continuous": _prepare_meta_continuous,
                   "assurance": _prepare_assurance, "interim": _prepare_interim}[self.analysis]
        try:
            return builder(self)
        except BayesPoemError as err:
            message = str(err)
            if message.startswith(self.source):
                raise
            raise type(err)(f"{self.source}: {message}") from None


@dataclass(frozen=True)
class PreparedAnalysis:
    """A validated analysis, ready to run; ``describe`` is one line for progress output."""

    spec: TrialSpec
    describe: str
    resolved: Mapping[str, Any]
    runner: Callable[[], rep.TrialReport]
    synthetic: bool = False

    def run(self) -> rep.TrialReport:
        report = self.runner()
        return dataclasses.replace(report, resolved_toml=tomli_w.dumps(_plain(self.resolved)))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- parsing
def load_trial_spec(path: str | Path) -> TrialSpec:
    """Read and check a TOML trial spec."""
    from bayes_poem.specfile import read_toml

    raw, source, base_dir = read_toml(path)
    return parse_trial_spec(raw, source=source, base_dir=base_dir)


def _unknown(mapping: Mapping[str, Any], allowed: tuple[str, ...], source: str,
             where: str) -> None:
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        place = f"[{where}]" if where else "the top level"
        raise SpecError(f"{source}: unknown key '{name}'; valid keys in {place}: "
                        f"{', '.join(allowed)}")


def parse_trial_spec(raw: Mapping[str, Any], *, source: str = "spec",
                     base_dir: Path | None = None) -> TrialSpec:
    """Check the keys of a spec given as a mapping (the parsed TOML)."""
    _unknown(raw, TOP_KEYS, source, "")
    analysis = raw.get("analysis")
    if analysis is None:
        raise SpecError(f"{source}: 'analysis' is required; one of {', '.join(ANALYSES)}")
    if analysis not in ANALYSES:
        raise SpecError(f"{source}: analysis: '{analysis}' is not one of {', '.join(ANALYSES)}")
    allowed = SECTIONS[analysis]
    for key in raw:
        if key in ("title", "description", "analysis"):
            continue
        if key not in allowed:
            raise SpecError(f"{source}: section [{key}] is not used by analysis '{analysis}'; "
                            f"its sections: {', '.join(allowed)}")
    sections: dict[str, dict[str, Any]] = {}
    for name in allowed:
        section = raw.get(name, {})
        if not isinstance(section, Mapping):
            raise SpecError(f"{source}: [{name}] must be a table (got {_shown(section)})")
        keys = KEYS.get((analysis, name)) or (SAMPLER_KEYS if name == "sampler"
                                              else SUMMARY_KEYS)
        _unknown(section, keys, source, name)
        sections[name] = dict(section)
    for key in ("title", "description"):
        if key in raw and not isinstance(raw[key], str):
            raise SpecError(f"{source}: {key} must be a string (got {_shown(raw[key])})")
    summary = sections.get("summary", {})
    try:
        interval = IntervalSpec(summary.get("interval", "hdi"), summary.get("prob", 0.95))
    except SpecError as err:
        raise SpecError(f"{source}: {err}") from None
    return TrialSpec(source=source, base_dir=base_dir or Path.cwd(), analysis=analysis,
                     title=raw.get("title", ""), description=raw.get("description", ""),
                     sections=sections, interval=interval)


# ---------------------------------------------------------------- helpers
def _string(section: Mapping[str, Any], key: str, where: str, default: str | None = None
            ) -> str | None:
    value = section.get(key, default)
    if value is not None and not isinstance(value, str):
        raise SpecError(f"{where}.{key}: must be a string (got {value!r})")
    return value


def _study_table(spec: TrialSpec, data: Mapping[str, Any]) -> StudyTable:
    if ("dataset" in data) == ("path" in data):
        raise spec.error("[data] needs exactly one of 'dataset' or 'path'")
    if "dataset" in data:
        return load_dataset(_string(data, "dataset", "data"))
    path = (spec.base_dir / _string(data, "path", "data")).resolve()
    return load_table(path, source=str(path))


def _sampler(spec: TrialSpec) -> SamplerSettings:
    return SamplerSettings(**spec.section("sampler"))


def _beta(value: Any, where: str) -> BetaPrior:
    if value is None:
        return BetaPrior()
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: must be a table {{ a = ..., b = ... }} "
                        f"(got {_shown(value)})")
    unknown = [k for k in value if k not in ("a", "b")]
    if unknown:
        raise SpecError(f"{where}: unknown key '{unknown[0]}'; valid keys: a, b")
    try:
        return BetaPrior(value.get("a", 1.0), value.get("b", 1.0))
    except SpecError as err:
        raise SpecError(f"{where}: {err}") from None


def _counts(value: Any, where: str) -> ArmCounts:
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: must be a table {{ events = ..., total = ... }} "
                        f"(got {_shown(value)})")
    unknown = [k for k in value if k not in ("events", "total")]
    if unknown or "events" not in value or "total" not in value:
        raise SpecError(f"{where}: needs exactly the keys events and total")
    return ArmCounts(value["events"], value["total"], where=where)


def _margin(section: Mapping[str, Any], where: str, required: bool = True, *,
            risk_difference: bool = True) -> float | None:
    """The section's margin: in (0, 1) for risk differences, > 0 in outcome units."""
    if "margin" not in section:
        if required:
            scale = "in (0, 1)" if risk_difference else "> 0"
            raise SpecError(f"{where}.margin: is required (a number {scale})")
        return None
    return check_margin(section["margin"], f"{where}.margin", risk_difference=risk_difference)


def _studies_mapping(value: Any, where: str) -> dict[str, list[str]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: must be a table outcome = [trial labels] "
                        f"(got {_shown(value)})")
    out = {}
    for outcome, labels in value.items():
        if not isinstance(labels, list) or not labels or not all(
                isinstance(s, str) for s in labels):
            raise SpecError(f"{where}.{outcome}: must be a non-empty list of trial labels "
                            f"(got {_shown(labels)})")
        out[str(outcome)] = list(labels)
    return out


def _same_trial(value: Any, where: str) -> tuple[tuple[str, ...], ...]:
    from bayes_poem.trials.meta import DEFAULT_SAME_TRIAL

    if value is None:
        return DEFAULT_SAME_TRIAL
    if not isinstance(value, list) or not all(
            isinstance(g, list) and all(isinstance(s, str) for s in g) for g in value):
        raise SpecError(f"{where}: must be a list of lists of trial labels "
                        f"(got {_shown(value)})")
    return tuple(tuple(g) for g in value)


def _summary_resolved(spec: TrialSpec) -> dict[str, Any]:
    return {"interval": spec.interval.kind, "prob": spec.interval.prob}


def _header(spec: TrialSpec) -> dict[str, Any]:
    return {"title": spec.title, "description": spec.description, "analysis": spec.analysis}


# ---------------------------------------------------------------- binary
def _prepare_binary(spec: TrialSpec) -> PreparedAnalysis:
    data = spec.section("data")
    ni = spec.section("noninferiority")
    margin = _margin(ni, "noninferiority")
    kind = check_kind(ni.get("kind", "benefit"), "noninferiority.kind")
    inline = "anterior" in data or "posterior" in data
    outcome = _string(data, "outcome", "data", "outcome")
    if inline:
        if "dataset" in data or "path" in data:
            raise spec.error("[data]: give either dataset/path with trial, or inline "
                             "anterior and posterior counts, not both")
        for arm in ARMS:
            if arm not in data:
                raise spec.error(f"data.{arm}: missing; inline data need both arms")
        trial = _string(data, "trial", "data", "trial")
        anterior = _counts(data["anterior"], f"{spec.source}: data.anterior")
        posterior = _counts(data["posterior"], f"{spec.source}: data.posterior")
        source = "inline counts"
    else:
        table = _study_table(spec, data)
        trial = _string(data, "trial", "data")
        if trial is None or "outcome" not in data:
            raise spec.error("[data]: 'trial' and 'outcome' are required with dataset/path")
        anterior, posterior = arm_counts_from_table(table, trial, outcome)
        source = table.source
    priors = spec.section("priors")
    prior_a = _beta(priors.get("anterior"), "priors.anterior")
    prior_p = _beta(priors.get("posterior"), "priors.posterior")
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
    resolved = {**_header(spec), "data": resolved_data,
                "noninferiority": {"margin": margin, "kind": kind},
                "priors": {"anterior": prior_a.to_dict(), "posterior": prior_p.to_dict()},
                "simulation": {"draws": draws, "seed": seed},
                "summary": _summary_resolved(spec)}

    def run() -> rep.TrialReport:
        from bayes_poem.trials.plots import difference_histogram

        result = analyse_binary(anterior=anterior, posterior=posterior, margin=margin,
                                kind=kind, prior_anterior=prior_a, prior_posterior=prior_p,
                                draws=draws, seed=seed, interval=spec.interval, trial=trial,
                                outcome=outcome)
        figure = difference_histogram(
            draws=result.draws["risk_difference"].values, margin=margin,
            favourable="above" if kind == "benefit" else "below",
            xlabel="p_posterior - p_anterior", title=f"{trial}: {outcome}")
        return rep.TrialReport(
            text=rep.binary_text(result, spec.title),
            tables={"summary": result.summary(), "noninferiority": result.noninferiority()},
            figures={"difference": figure}, results=(result,))

    return PreparedAnalysis(spec, f"binary analysis of {trial} ({outcome}) from {source}",
                            resolved, run)


# ---------------------------------------------------------------- continuous
def _read_csv(path: Path, source: str) -> pd.DataFrame:
    text = read_text(path, source)  # every OS error named; a FIFO never blocks
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{source}: not a readable CSV file ({err})") from None


def _prepare_continuous(spec: TrialSpec) -> PreparedAnalysis:
    from bayes_poem.trials import continuous as cont
    from bayes_poem.trials import synthetic as syn

    data = spec.section("data")
    ni = spec.section("noninferiority")
    margin = _margin(ni, "noninferiority", risk_difference=False)
    better = check_better(ni.get("better", "lower"), "noninferiority.better")
    outcome = _string(data, "outcome", "data", "outcome")
    synthetic = data.get("synthetic", False)
    if not isinstance(synthetic, bool):
        raise SpecError(f"data.synthetic: must be true or false (got {_shown(synthetic)})")
    sources = [k for k in ("path", "example") if k in data]
    inline = [k for k in ARMS if k in data]
    if len(sources) + (1 if inline else 0) != 1:
        raise spec.error("[data] needs exactly one of 'path' (patient-level CSV), 'example' "
                         f"({', '.join(EXAMPLES)}) or inline 'anterior' and 'posterior' "
                         "arm summaries")
    example = _string(data, "example", "data")
    if example is not None and example not in EXAMPLES:
        raise SpecError(f"data.example: '{example}' is not one of {', '.join(EXAMPLES)}")
    summaries = bool(inline) or example == "synthetic_eckardt_summaries"
    synthetic = synthetic or example is not None
    priors = spec.section("priors")
    model = spec.section("model")
    resolved: dict[str, Any] = {**_header(spec), "data": dict(data),
                                "noninferiority": {"margin": margin, "better": better},
                                "summary": _summary_resolved(spec)}
    resolved["data"]["synthetic"] = synthetic
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

        def compute():
            return cont.analyse_arm_summaries(
                anterior=anterior, posterior=posterior, margin=margin, better=better,
                correlation=correlation, prior=prior, draws=draws, seed=seed,
                interval=spec.interval, outcome=outcome, synthetic=synthetic)

        describe = "arm-level summaries"
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
            path = (spec.base_dir / _string(data, "path", "data")).resolve()
            source = str(path)
            patients = _read_csv(path, source)
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
        settings = _sampler(spec)
        resolved["model"] = {"likelihood": likelihood}
        resolved["priors"] = {k: overrides[k].to_dict() for k in cont.PATIENT_PRIOR_FAMILIES}
        resolved["sampler"] = {k: v for k, v in settings.to_dict().items() if k != "progress"}

        def compute():
            return cont.analyse_patient_level(
                frame, margin=margin, better=better, likelihood=likelihood, priors=overrides,
                settings=settings, interval=spec.interval, outcome=outcome,
                synthetic=synthetic, source=source, warn=False)

        describe = f"patient-level data from {source}, {likelihood} likelihood"

    def run() -> rep.TrialReport:
        from bayes_poem.trials.plots import difference_histogram

        result = compute()
        figure = difference_histogram(
            draws=result.draws["improvement_difference"].values, margin=margin,
            favourable="above", xlabel=f"improvement in {outcome}, posterior - anterior",
            title=f"{outcome}{' (SYNTHETIC data)' if synthetic else ''}")
        files = {}
        if result.idata is not None:
            files["posterior.nc"] = rep.netcdf(result.idata)
        return rep.TrialReport(
            text=rep.continuous_text(result, spec.title),
            tables={"summary": result.summary(), "noninferiority": result.noninferiority(),
                    "arms": result.arms},
            figures={"difference": figure}, files=files, results=(result,))

    label = " (SYNTHETIC data)" if synthetic else ""
    return PreparedAnalysis(spec, f"continuous analysis of {outcome}: {describe}{label}",
                            resolved, run, synthetic=synthetic)


# ---------------------------------------------------------------- meta (binary)
def _meta_inputs(spec: TrialSpec, outcomes_key: str) -> tuple[StudyTable, list[str], dict[
        str, pd.DataFrame], dict[str, Any]]:
    from bayes_poem.trials.meta import (
        BINARY_META_FAMILIES,
        BINARY_META_PRIORS,
        comparative_counts,
        resolve_priors,
    )

    data = spec.section("data")
    table = _study_table(spec, data)
    if outcomes_key == "outcomes":
        outcomes = data.get("outcomes")
        if not isinstance(outcomes, list) or not outcomes or not all(
                isinstance(o, str) for o in outcomes):
            raise SpecError("data.outcomes: must be a non-empty list of outcome labels "
                            f"(got {_shown(outcomes)})")
        studies = _studies_mapping(data.get("studies"), "data.studies")
        extra = [o for o in studies if o not in outcomes]
        if extra:
            raise SpecError(f"data.studies.{extra[0]}: not one of data.outcomes")
    else:
        outcome = _string(data, "outcome", "data")
        if outcome is None:
            raise SpecError("data.outcome: is required (the outcome of the meta-analysis)")
        outcomes = [outcome]
        raw = data.get("studies")
        if raw is not None and (not isinstance(raw, list) or not raw or not all(
                isinstance(s, str) for s in raw)):
            raise SpecError("data.studies: must be a non-empty list of trial labels "
                            f"(got {_shown(raw)})")
        studies = {outcome: raw} if raw is not None else {}
    same = _same_trial(data.get("same_trial"), "data.same_trial")
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


def _prepare_meta(spec: TrialSpec) -> PreparedAnalysis:
    from bayes_poem.trials.meta import binomial_meta

    table, outcomes, counts, parts = _meta_inputs(spec, "outcomes")
    ni = spec.section("noninferiority")
    margin = _margin(ni, "noninferiority", required=False)
    kinds_raw = ni.get("kinds", {})
    if not isinstance(kinds_raw, Mapping):
        raise SpecError("noninferiority.kinds: must be a table outcome = \"benefit\"|\"harm\" "
                        f"(got {_shown(kinds_raw)})")
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
    settings = _sampler(spec)
    priors = parts["priors"]
    resolved = {**_header(spec), "data": parts["data"],
                "noninferiority": {"margin": margin, "kinds": kinds},
                "priors": {k: p.to_dict() for k, p in priors.items()},
                "sampler": {k: v for k, v in settings.to_dict().items() if k != "progress"},
                "summary": _summary_resolved(spec)}

    def run() -> rep.TrialReport:
        from bayes_poem.trials.plots import forest_plot

        results = [binomial_meta(counts[o], outcome=o, priors=priors, settings=settings,
                                 interval=spec.interval, kind=kinds[o], margin=margin,
                                 source=table.source, warn=False) for o in outcomes]
        tables = {
            "summary": pd.concat([r.summary() for r in results], ignore_index=True),
            "studies": pd.concat([r.study_summary() for r in results], ignore_index=True),
            "published_comparison": pd.concat([r.published_comparison() for r in results],
                                              ignore_index=True),
            "notes": pd.DataFrame([{"outcome": r.outcome, "note": n} for r in results
                                   for n in r.notes]),
            "diagnostics": pd.concat([r.diagnostics.table.reset_index().assign(outcome=r.outcome)
                                      for r in results], ignore_index=True),
        }
        if margin is not None:
            tables["noninferiority"] = pd.concat([r.noninferiority() for r in results],
                                                 ignore_index=True)
        figures, files = {}, {}
        for r in results:
            summary = r.summary().set_index("quantity")
            pooled = pd.DataFrame([
                {"label": "pooled OR (ours)", **summary.loc["odds_ratio"].to_dict()},
                {"label": "new-trial OR (ours, predictive)",
                 **summary.loc["odds_ratio_new"].to_dict()},
                {"label": "RR at pooled anterior rate (ours)",
                 **summary.loc["risk_ratio"].to_dict()}])
            published = r.published_comparison()
            figures[f"forest_{r.outcome}"] = forest_plot(
                studies=r.study_summary(), pooled=pooled,
                published=published if not published.empty else None,
                title=f"{r.outcome}: anterior vs posterior myotomy")
            files[f"posterior_{r.outcome}.nc"] = rep.netcdf(r.idata)
        return rep.TrialReport(text=rep.meta_text(results, spec.title), tables=tables,
                               figures=figures, files=files, results=tuple(results))

    summary = "; ".join(f"{o}: {', '.join(c['study'])}" for o, c in counts.items())
    return PreparedAnalysis(spec, f"meta-analysis of {table.source} ({summary})", resolved, run)


# ---------------------------------------------------------------- meta (continuous)
def _prepare_meta_continuous(spec: TrialSpec) -> PreparedAnalysis:
    from bayes_poem.trials.meta import NORMAL_META_FAMILIES, random_effects_meta, resolve_priors

    data = spec.section("data")
    outcome = _string(data, "outcome", "data", "outcome")
    measure = _string(data, "measure", "data", "mean difference (posterior - anterior)")
    synthetic = data.get("synthetic", False)
    if not isinstance(synthetic, bool):
        raise SpecError(f"data.synthetic: must be true or false (got {_shown(synthetic)})")
    if ("studies" in data) == ("path" in data):
        raise spec.error("[data] needs exactly one of 'studies' (inline) or 'path' (CSV with "
                         "columns study, estimate, se)")
    if "studies" in data:
        rows = data["studies"]
        if not isinstance(rows, list) or not rows:
            raise SpecError("data.studies: must be a non-empty array of tables "
                            f"{{ study, estimate, se }} (got {_shown(rows)})")
        source = "inline studies"
    else:
        path = (spec.base_dir / _string(data, "path", "data")).resolve()
        source = str(path)
        rows = _read_csv(path, source).to_dict("records")
    labels, estimates, ses = [], [], []
    for i, row in enumerate(rows, start=1):
        where = f"{source}: study {i}"
        if not isinstance(row, Mapping):
            raise SpecError(f"{where}: must be a table {{ study, estimate, se }} "
                            f"(got {_shown(row)})")
        unknown = [k for k in row if k not in ("study", "estimate", "se")]
        missing = [k for k in ("study", "estimate", "se") if k not in row]
        if unknown or missing:
            raise DataError(f"{where}: {'unknown' if unknown else 'missing'} key "
                            f"'{(unknown or missing)[0]}'; keys: study, estimate, se")
        label = row["study"]
        if isinstance(label, bool) or not isinstance(label, str | int):
            raise DataError(f"{where}, study: must be a label (got {label!r})")
        label = _check_label(str(label).strip(), "study", f"{where}, study")
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
    priors = resolve_priors(spec.section("priors"), NORMAL_META_FAMILIES, {}, "priors")
    settings = _sampler(spec)
    resolved = {**_header(spec),
                "data": {"outcome": outcome, "measure": measure, "synthetic": synthetic,
                         "studies": [{"study": s, "estimate": e, "se": v}
                                     for s, e, v in zip(labels, estimates, ses, strict=True)]},
                "priors": {k: p.to_dict() for k, p in priors.items()},
                "sampler": {k: v for k, v in settings.to_dict().items() if k != "progress"},
                "summary": _summary_resolved(spec)}
    notes = ("SYNTHETIC data",) if synthetic else ()

    def run() -> rep.TrialReport:
        result = random_effects_meta(estimates, ses, priors=priors, studies=labels,
                                     outcome=outcome, settings=settings,
                                     interval=spec.interval, measure=measure, notes=notes,
                                     warn=False)
        return rep.TrialReport(
            text=rep.normal_meta_text(result, spec.title, synthetic),
            tables={"summary": result.summary(), "studies": result.data,
                    "diagnostics": result.diagnostics.table.reset_index()},
            files={"posterior.nc": rep.netcdf(result.idata)}, results=(result,))

    label = " (SYNTHETIC data)" if synthetic else ""
    return PreparedAnalysis(spec, f"normal-normal meta-analysis of {outcome}: {len(labels)} "
                            f"trials{label}", resolved, run, synthetic=synthetic)


# ---------------------------------------------------------------- assurance
def _prepare_assurance(spec: TrialSpec) -> PreparedAnalysis:
    from bayes_poem.trials.design import DecisionRule, check_sizes
    from bayes_poem.trials.meta import binomial_meta

    table, outcomes, counts, parts = _meta_inputs(spec, "outcome")
    outcome = outcomes[0]
    design = spec.section("design")
    try:
        sizes = check_sizes(design.get("n_per_arm"))
    except SpecError as err:
        raise SpecError(f"design.{err}") from None
    margin = _margin(design, "design")
    kind = check_kind(design.get("kind", DEFAULT_KINDS.get(outcome, "benefit")), "design.kind")
    threshold = check_probability(design.get("threshold", 0.975), "design.threshold")
    baseline = design.get("baseline", "pooled")
    if baseline != "pooled":
        baseline = check_probability(baseline, "design.baseline")
    simulations = check_count(design.get("simulations", 4000), "design.simulations",
                              minimum=10, maximum=MAX_SIMULATIONS)
    seed = check_seed(design.get("seed", 20240101), "design.seed")
    prior = _beta(design.get("prior"), "design.prior")
    DecisionRule(margin, kind, threshold, prior)
    settings = _sampler(spec)
    priors = parts["priors"]
    resolved = {**_header(spec), "data": parts["data"],
                "priors": {k: p.to_dict() for k, p in priors.items()},
                "sampler": {k: v for k, v in settings.to_dict().items() if k != "progress"},
                "design": {"n_per_arm": sizes, "margin": margin, "kind": kind,
                           "threshold": threshold, "baseline": baseline,
                           "simulations": simulations, "seed": seed,
                           "prior": prior.to_dict()},
                "summary": _summary_resolved(spec)}

    def run() -> rep.TrialReport:
        from bayes_poem.trials.design import assurance_from_meta
        from bayes_poem.trials.plots import assurance_curve

        meta = binomial_meta(counts[outcome], outcome=outcome, priors=priors,
                             settings=settings, interval=spec.interval, kind=kind,
                             margin=margin, source=table.source, warn=False)
        result = assurance_from_meta(meta, n_per_arm=sizes, margin=margin, kind=kind,
                                     baseline=None if baseline == "pooled" else baseline,
                                     threshold=threshold, analysis_prior=prior,
                                     simulations=simulations, seed=seed)
        figure = assurance_curve(curve=result.curve, reference=(0.8,),
                                 title=f"Assurance: {result.rule.statement}")
        return rep.TrialReport(
            text=rep.assurance_text(result, meta, spec.title),
            tables={"assurance": result.summary(), "meta_summary": meta.summary(),
                    "diagnostics": meta.diagnostics.table.reset_index()},
            figures={"assurance": figure}, files={"posterior.nc": rep.netcdf(meta.idata)},
            results=(result, meta))

    return PreparedAnalysis(
        spec, f"assurance for N per arm {sizes} from the meta-analysis of {outcome} "
        f"({', '.join(counts[outcome]['study'])})", resolved, run)


# ---------------------------------------------------------------- interim
def _prepare_interim(spec: TrialSpec) -> PreparedAnalysis:
    from bayes_poem.trials.design import interim_inputs, interim_predictive_probability

    section = spec.section("interim")
    for key in ("anterior", "posterior", "n_per_arm"):
        if key not in section:
            raise SpecError(f"interim.{key}: is required")
    anterior = _counts(section["anterior"], f"{spec.source}: interim.anterior")
    posterior = _counts(section["posterior"], f"{spec.source}: interim.posterior")
    n = check_count(section["n_per_arm"], "interim.n_per_arm", minimum=1,
                    maximum=MAX_N_PER_ARM)
    margin = _margin(section, "interim")
    kind = check_kind(section.get("kind", "benefit"), "interim.kind")
    threshold = check_probability(section.get("threshold", 0.975), "interim.threshold")
    simulations = check_count(section.get("simulations", 20_000), "interim.simulations",
                              minimum=10, maximum=MAX_SIMULATIONS)
    seed = check_seed(section.get("seed", 20240102), "interim.seed")
    prior = _beta(section.get("prior"), "interim.prior")
    interim_inputs(anterior, posterior, n, margin, kind, threshold, prior)
    resolved = {**_header(spec),
                "interim": {"anterior": {"events": anterior.events, "total": anterior.total},
                            "posterior": {"events": posterior.events,
                                          "total": posterior.total},
                            "n_per_arm": n, "margin": margin, "kind": kind,
                            "threshold": threshold, "simulations": simulations, "seed": seed,
                            "prior": prior.to_dict()},
                "summary": _summary_resolved(spec)}

    def run() -> rep.TrialReport:
        result = interim_predictive_probability(
            anterior=anterior, posterior=posterior, n_per_arm=n, margin=margin, kind=kind,
            threshold=threshold, prior=prior, simulations=simulations, seed=seed)
        return rep.TrialReport(text=rep.interim_text(result, spec.title),
                               tables={"interim": result.summary()}, results=(result,))

    return PreparedAnalysis(spec, f"interim predictive probability ({n} per arm planned)",
                            resolved, run)
