"""TOML specs of the joint (efficacy and safety) model: ``[data] outcomes = [...]``.

:func:`bayes_poem.specfile.parse_spec` hands a spec whose ``[data]`` has
``outcomes`` to :func:`parse_joint_spec`. Keys (``docs/spec-reference.md`` for
the shared ones)::

    [data]            dataset | path, outcomes = [benefit, harm], subgroups,
                      synthetic, label (as for one outcome: every banner, the name)
    [model]           subgroup_effects
    [priors.NAME]     mu, tau, sigma_subgroup, alpha: both outcomes
    [priors.OUTCOME.NAME]  one outcome's own (wins over the shared one)
    [priors.rho]      eta = 2.0 (LKJ) | fixed = 0.0 (pins rho)
    [sampler]         as for one outcome (nutpie only)
    [summary]         interval, prob
    [benefit_risk]    benefit_min, harm_max, benefit_weight, harm_weight, quantity
    [[contrasts]]     a, b: the pairs of subgroups compared on both outcomes
    [sensitivity]     rho_priors, decision_threshold (``bayes-poem sensitivity``:
                      :mod:`bayes_poem.joint_sensitivity`)

Every error names the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from bayes_poem.errors import DataError, SpecError
from bayes_poem.intervals import IntervalSpec
from bayes_poem.joint import (
    DEFAULT_RHO_ETA,
    JOINT_PRIORS,
    JointSpec,
    check_outcomes,
    resolve_joint_priors,
)
from bayes_poem.joint_results import BenefitRisk
from bayes_poem.joint_sensitivity import parse_joint_sensitivity
from bayes_poem.sampling import SamplerSettings
from bayes_poem.specfile_sections import (
    check_data_marks,
    check_data_source,
    check_keys,
    data_table,
)
from bayes_poem.table import StudyTable

TOP_KEYS = ("title", "description", "data", "model", "priors", "sampler", "summary",
            "benefit_risk", "contrasts", "sensitivity")
SECTION_KEYS = {
    "data": ("dataset", "path", "outcomes", "subgroups", "synthetic", "label"),
    "model": ("subgroup_effects",),
    "sampler": ("draws", "tune", "chains", "seed", "backend", "target_accept"),
    "summary": ("interval", "prob"),
}
RHO_KEYS = ("eta", "fixed")


@dataclass(frozen=True)
class JointAnalysisSpec:
    """A parsed, validated joint spec; :meth:`model_spec` gives the :class:`JointSpec`."""

    source: str
    base_dir: Path
    title: str
    description: str
    data: Mapping[str, Any]
    model: Mapping[str, Any]
    priors: Mapping[str, Any]
    rho_eta: float
    rho_fixed: float | None
    sampler: SamplerSettings
    interval: IntervalSpec
    benefit_risk: BenefitRisk
    pairs: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    sensitivity: Mapping[str, Any] = field(default_factory=dict)

    is_joint = True

    def table(self) -> StudyTable:
        """The data named by ``[data]``, marked and labelled as it says (as
        :meth:`bayes_poem.specfile.AnalysisSpec.table`: ``synthetic = true`` marks it
        synthetic, ``label`` names it, a synthetic dataset cannot be un-marked; the
        data path recorded relative to the spec, :func:`~bayes_poem.table.recorded_path`)."""
        return data_table(self.data, self.base_dir, self.source)

    def model_spec(self) -> JointSpec:
        table = self.table()
        for outcome in self.data["outcomes"]:
            if outcome not in table.outcomes:
                raise DataError(f"{self.source}: data.outcomes: outcome '{outcome}' is not in "
                                f"the data ({table.source}); outcomes found: "
                                f"{', '.join(table.outcomes)}")
        try:
            spec = JointSpec.from_table(
                table, self.data["outcomes"], subgroup_effects=self.model.get("subgroup_effects"),
                priors=self.priors, subgroups=self.data.get("subgroups"),
                rho_eta=self.rho_eta, rho_fixed=self.rho_fixed)
        except SpecError as err:
            raise SpecError(f"{self.source}: {err}") from None
        for i, (a, b) in enumerate(self.pairs, start=1):
            for key, label in (("a", a), ("b", b)):
                if label not in spec.subgroups:
                    raise SpecError(f"{self.source}: contrasts[{i}].{key}: subgroup '{label}' "
                                    f"is not in the data; subgroups: "
                                    f"{', '.join(spec.subgroups)}")
        return spec

    def resolved(self, spec: JointSpec | None = None) -> dict[str, Any]:
        """Every setting with defaults filled in: running it again repeats the analysis."""
        spec = spec or self.model_spec()
        data = dict(self.data)
        if "path" in data:
            data["path"] = str((self.base_dir / data["path"]).resolve())
        data["subgroups"] = list(spec.subgroups)
        if spec.table.is_synthetic:
            data["synthetic"] = True
        rho: dict[str, float] = {"eta": spec.rho_eta}
        if spec.rho_fixed is not None:
            rho["fixed"] = spec.rho_fixed
        priors: dict[str, Any] = {o: {name: spec.priors[o][name].to_dict()
                                      for name in spec.parameter_names()}
                                  for o in spec.outcomes}
        priors["rho"] = rho
        sampler = {k: v for k, v in self.sampler.to_dict().items()
                   if k != "progress" and v is not None}
        return {
            "title": self.title, "description": self.description, "data": data,
            "model": {"subgroup_effects": spec.subgroup_effects},
            "priors": priors, "sampler": sampler,
            "summary": {"interval": self.interval.kind, "prob": self.interval.prob},
            "benefit_risk": self.benefit_risk.to_dict(),
            "contrasts": [{"a": a, "b": b} for a, b in self.pairs],
            **({"sensitivity": dict(self.sensitivity)} if self.sensitivity else {}),
        }

    def resolved_toml(self, spec: JointSpec | None = None, *,
                      relative_to: Path | None = None) -> str:
        """The resolved spec as TOML. ``relative_to`` is accepted for the one-outcome
        spec's interface; a joint spec records its data path absolute."""
        del relative_to
        return tomli_w.dumps(self.resolved(spec))


def parse_joint_spec(raw: Mapping[str, Any], *, source: str = "spec",
                     base_dir: Path | None = None) -> JointAnalysisSpec:
    """Validate a joint spec given as a mapping (the parsed TOML)."""
    _check_keys(raw, TOP_KEYS, source, "")
    sections = {}
    for name, allowed in SECTION_KEYS.items():
        section = raw.get(name, {})
        if not isinstance(section, Mapping):
            raise SpecError(f"{source}: [{name}] must be a table (got {section!r})")
        _check_keys(section, allowed, source, name)
        sections[name] = dict(section)
    data = sections["data"]
    check_data_source(data, source, ("dataset", "path"), shown=repr)
    check_data_marks(data, source, shown=repr)
    try:
        outcomes = check_outcomes(data["outcomes"], "data.outcomes")
    except SpecError as err:
        raise SpecError(f"{source}: {err}") from None
    data["outcomes"] = list(outcomes)
    if "subgroups" in data and (not isinstance(data["subgroups"], list) or not data["subgroups"]
                                or not all(isinstance(s, str) for s in data["subgroups"])):
        raise SpecError(f"{source}: data.subgroups must be a non-empty list of labels "
                        f"(got {data['subgroups']!r})")
    model = sections["model"]
    if "subgroup_effects" in model and not isinstance(model["subgroup_effects"], str):
        raise SpecError(f"{source}: model.subgroup_effects must be a string "
                        f"(got {model['subgroup_effects']!r})")

    priors = dict(raw.get("priors", {}))
    if not isinstance(raw.get("priors", {}), Mapping):
        raise SpecError(f"{source}: [priors] must be a table of [priors.NAME] tables")
    rho = priors.pop("rho", {})
    if not isinstance(rho, Mapping):
        raise SpecError(f"{source}: [priors.rho] must be a table with eta or fixed")
    _check_keys(rho, RHO_KEYS, source, "priors.rho")
    if "eta" in rho and "fixed" in rho:
        raise SpecError(f"{source}: priors.rho: give eta (the LKJ prior) or fixed (rho "
                        "pinned), not both")
    rho_eta = rho.get("eta", DEFAULT_RHO_ETA)
    rho_fixed = rho.get("fixed")
    resolve_joint_priors(priors, outcomes, where=f"{source}: priors")  # validated now
    try:
        JointSpec._check(_RhoOnly(rho_eta, rho_fixed))  # type: ignore[arg-type]
        sampler = SamplerSettings(**sections["sampler"])
        summary = sections["summary"]
        interval = IntervalSpec(summary.get("interval", "eti"), summary.get("prob", 0.95))
    except SpecError as err:
        raise SpecError(f"{source}: {err}") from None
    if sampler.backend != "nutpie":
        raise SpecError(f"{source}: sampler.backend: the joint model samples with nutpie only "
                        f"(got {sampler.backend!r})")
    benefit_risk = BenefitRisk.from_mapping(raw.get("benefit_risk", {}), source)
    pairs = []
    contrasts = raw.get("contrasts", [])
    if not isinstance(contrasts, list):
        raise SpecError(f"{source}: contrasts must be an array of tables ([[contrasts]])")
    for i, entry in enumerate(contrasts, start=1):
        if not isinstance(entry, Mapping):
            raise SpecError(f"{source}: contrasts entry {i} must be a table (got {entry!r})")
        _check_keys(entry, ("a", "b"), source, f"contrasts[{i}]")
        a, b = entry.get("a"), entry.get("b")
        if not isinstance(a, str) or not isinstance(b, str) or a == b:
            raise SpecError(f"{source}: contrasts[{i}]: a and b must be two different "
                            f"subgroup labels (got {a!r}, {b!r})")
        pairs.append((a, b))
    sensitivity = raw.get("sensitivity", {})
    if not isinstance(sensitivity, Mapping):
        raise SpecError(f"{source}: [sensitivity] must be a table (got {sensitivity!r})")
    parse_joint_sensitivity(sensitivity, source)  # validated now, used by 'sensitivity'
    for key in ("title", "description"):
        if key in raw and not isinstance(raw[key], str):
            raise SpecError(f"{source}: {key} must be a string (got {raw[key]!r})")
    return JointAnalysisSpec(
        source=source, base_dir=base_dir or Path.cwd(), title=raw.get("title", ""),
        description=raw.get("description", ""), data=data, model=model, priors=priors,
        rho_eta=rho_eta, rho_fixed=rho_fixed, sampler=sampler, interval=interval,
        benefit_risk=benefit_risk, pairs=tuple(pairs), sensitivity=dict(sensitivity))


@dataclass(frozen=True)
class _RhoOnly:
    """The rho options alone, for :meth:`JointSpec._check`'s messages before any data."""

    rho_eta: Any
    rho_fixed: Any
    subgroup_effects: str = "none"
    subgroups: tuple[str, ...] = ()


def _check_keys(mapping: Mapping[str, Any], allowed: tuple[str, ...], source: str,
                section: str) -> None:
    """:func:`~bayes_poem.specfile_sections.check_keys`, naming the joint model where a
    one-outcome key might have been meant."""
    check_keys(mapping, allowed, source, section,
               " (the joint model, data.outcomes)" if section in ("", "data", "model") else "")


__all__ = ["JOINT_PRIORS", "JointAnalysisSpec", "parse_joint_spec"]
