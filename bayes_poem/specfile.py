"""TOML analysis specs (``models/*.toml``): parsing, validation and the resolved form.

Every key is documented in ``docs/spec-reference.md``. Unknown keys are
rejected with the valid ones listed; every error names the file and the key.
The section parsers (``[data]``, the moderator keys, ``[labels]``, ``[compare]``)
are :mod:`bayes_poem.specfile_sections`'.

Example::

    title = "Clinical success of POEM by disorder (SYNTHETIC data)"

    [data]
    dataset = "sed_synthetic"          # or: path = "my_studies.csv" (relative to this file)
    # synthetic = true                 # a user's CSV of simulated counts: every banner
    # label = "Simulated SED cohort"   # the data's display name
    outcome = "clinical_success"
    subgroups = ["type_iii", "des", "jackhammer", "unassigned"]

    [model]
    subgroup_effects = "random"        # random | fixed | none
    study_effects = "random"           # random | common
    study_heterogeneity = "common"     # common | by_subgroup (a tau per subgroup)
    cell_effects = "none"              # none | random (study x subgroup cell effects)
    moderators = ["year", "quality"]   # meta-regression (optional)
    moderator_reference = { quality = "good" }

    [priors.tau]
    dist = "HalfNormal"
    sigma = 1.0

    [sampler]
    draws = 1000
    tune = 1000
    chains = 4
    seed = 20170101

    [summary]
    interval = "eti"
    prob = 0.95

    [[contrasts]]
    a = "type_iii"
    b = "jackhammer"
    margin = 0.10
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from bayes_poem.contrasts import Contrast, check_contrast_labels
from bayes_poem.errors import DataError, SpecError
from bayes_poem.intervals import IntervalSpec
from bayes_poem.priors import PARAMETERS, Prior, resolve_priors
from bayes_poem.sampling import SamplerSettings
from bayes_poem.spec import ModelSpec
from bayes_poem.specfile_sections import (  # the section parsers; public names re-exported
    COMPARE_KEYS,
    COMPARE_METHODS,
    _check_data,
    _check_moderator_keys,
    _parse_compare,
    _parse_labels,
    _shown,
    check_keys,
    check_method,
    data_table,
)
from bayes_poem.table import StudyTable, read_text
from bayes_poem.weights import check_weight_labels, check_weights

__all__ = ["COMPARE_KEYS", "COMPARE_METHODS", "SECTION_KEYS", "TOP_KEYS", "AnalysisSpec",
           "check_method", "load_spec", "parse_spec", "read_toml"]

TOP_KEYS = ("title", "description", "data", "model", "priors", "sampler", "summary",
            "contrasts", "sensitivity", "bias", "compare", "labels")
SECTION_KEYS = {
    "data": ("dataset", "path", "outcome", "subgroups", "synthetic", "label"),
    "model": ("subgroup_effects", "study_effects", "likelihood", "study_heterogeneity",
              "cell_effects", "moderators",
              "moderator_reference", "moderator_scale", "moderator_kinds"),
    "sampler": ("draws", "tune", "chains", "seed", "backend", "target_accept"),
    "summary": ("interval", "prob", "weights", "at", "forest_order"),
}


@dataclass(frozen=True)
class AnalysisSpec:
    """A parsed, validated analysis spec. ``model_spec()`` gives the :class:`ModelSpec`."""

    source: str
    base_dir: Path
    title: str
    description: str
    data: Mapping[str, Any]
    model: Mapping[str, Any]
    priors: Mapping[str, Prior]
    sampler: SamplerSettings
    interval: IntervalSpec
    weights: Mapping[str, float] | None
    contrasts: tuple[Contrast, ...] = field(default_factory=tuple)
    sensitivity: Mapping[str, Any] = field(default_factory=dict)
    at: Mapping[str, Any] | None = None  # [summary] at: moderator values of the summaries
    bias: Mapping[str, Any] | None = None  # [bias]: None when the spec has no such section
    # [compare]: the frequentist comparator (method, knapp_hartung); defaults without it
    compare: Mapping[str, Any] = field(
        default_factory=lambda: {"method": "published", "knapp_hartung": False})
    # [labels]: display names of subgroups and outcomes (code -> name); checked against the
    # data by model_spec(); [summary] forest_order: the forest plot's study order
    labels: Mapping[str, str] = field(default_factory=dict)
    forest_order: str = "data"

    def bias_options(self):
        """The ``[bias]`` options (defaults without the section); see :mod:`bayes_poem.bias`."""
        from bayes_poem.bias import parse_bias

        return parse_bias(self.bias, self.source)

    def table(self) -> StudyTable:
        """The data named by ``[data]`` (validated), marked and labelled as it says.

        ``synthetic = true`` marks the table synthetic (every SYNTHETIC banner
        follows); ``label`` names it. A synthetic dataset cannot be un-marked:
        ``synthetic = false`` on one is a ``SpecError`` naming the key.
        """
        return data_table(self.data, self.base_dir, self.source)

    def model_spec(self) -> ModelSpec:
        """The :class:`ModelSpec` of the spec's data and ``[model]``, with the labels the
        spec names checked against it: ``[[contrasts]]`` (``check_contrast_labels``),
        ``summary.weights`` (``check_weight_labels``) and ``summary.at`` (the
        moderators' values). The Python API (``load_spec(path).model_spec()``) thus
        raises the one-line ``SpecError`` the CLI prints, naming the file and the key."""
        spec = self._model_spec()
        check_contrast_labels(self.contrasts, spec.subgroups, spec.subgroup_effects,
                              self.source)
        check_weight_labels(self.weights, spec.subgroups, self.source)
        if self.at is not None:
            from bayes_poem.moderators import code_values

            try:
                code_values(spec.moderators, self.at, "summary.at")
            except SpecError as err:
                raise SpecError(f"{self.source}: {err}") from None
        return spec

    def validated_spec(self) -> ModelSpec:
        """:meth:`model_spec`, and every other section checked against it, printing
        nothing: the ``[sensitivity]`` grid (its variants are built, which is cheap, so
        subsets and names are checked too) and the ``[bias]`` options when the spec has
        that section. The one validation of a spec before sampling (``bayes-poem
        check``, ``run``, ``compare``, ``sensitivity``, ``bias``, ``report``): every user
        error surfaces here, before any progress line."""
        from bayes_poem.sensitivity import spec_grid

        spec = self.model_spec()
        spec_grid(self.sensitivity, spec, self.source)
        if self.bias is not None:  # a [bias] section: used by 'bias' and 'report'
            self.checked_bias_options(spec)
        return spec

    def checked_bias_options(self, spec: ModelSpec):
        """:meth:`bias_options` checked against the data of ``spec`` (the precision and
        ordering columns): a ``SpecError`` names the file."""
        from bayes_poem.bias_analysis import check_bias

        options = self.bias_options()
        try:
            check_bias(spec, options)
        except SpecError as err:
            raise SpecError(f"{self.source}: {err}") from None
        return options

    def _model_spec(self) -> ModelSpec:
        table = self.table()
        outcome = self.data["outcome"]
        if outcome not in table.outcomes:
            raise DataError(f"{self.source}: data.outcome: outcome '{outcome}' is not in the "
                            f"data ({table.source}); outcomes found: "
                            f"{', '.join(table.outcomes)}")
        self._check_labels(table, outcome)
        try:
            return ModelSpec.from_table(
                table,
                self.data["outcome"],
                subgroup_effects=self.model.get("subgroup_effects"),  # type: ignore[arg-type]
                study_effects=self.model.get("study_effects"),  # type: ignore[arg-type]
                priors=dict(self.priors),
                subgroups=self.data.get("subgroups"),
                likelihood=self.model.get("likelihood", "binomial"),  # type: ignore[arg-type]
                moderators=self.model.get("moderators"),
                moderator_reference=self.model.get("moderator_reference"),
                moderator_scale=self.model.get("moderator_scale", True),
                moderator_kinds=self.model.get("moderator_kinds"),
                study_heterogeneity=self.model.get(  # type: ignore[arg-type]
                    "study_heterogeneity", "common"),
                cell_effects=self.model.get("cell_effects", "none"),  # type: ignore[arg-type]
            )
        except SpecError as err:
            raise SpecError(f"{self.source}: {err}") from None

    def _check_labels(self, table: StudyTable, outcome: str) -> None:
        """``[labels]`` names only subgroups (or ``overall``) and outcomes of the data;
        ``forest_order = "year"`` needs a ``year`` column (``SpecError`` naming the key)."""
        rows = table.frame[table.frame["outcome"] == outcome]
        subgroups = list(dict.fromkeys(rows["subgroup"]))
        known = {*subgroups, "overall", *table.outcomes}
        for key in self.labels:
            if key not in known:
                raise SpecError(f"{self.source}: labels.{key}: '{key}' is not a subgroup or "
                                f"outcome of the data ({table.source}); subgroups: "
                                f"{', '.join(subgroups)}; outcomes: {', '.join(table.outcomes)}")
        if self.forest_order == "year" and "year" not in table.frame.columns:
            raise SpecError(f"{self.source}: summary.forest_order = 'year' needs a 'year' "
                            f"column in the data ({table.source})")

    def resolved(self, spec: ModelSpec | None = None, *,
                 relative_to: str | Path | None = None) -> dict[str, Any]:
        """Every setting with defaults filled in, as a TOML-ready mapping.

        Running it again repeats the analysis exactly: the data path is written
        relative to ``relative_to``, the directory the resolved spec is written
        to (a results directory: so the spec reruns from there and the record
        holds no absolute path), or absolute without it; the data's synthetic
        mark and label are written; the subgroups are listed in the model's order (which fixes
        its canonical row order, see :meth:`ModelSpec.from_table`), every
        sampler setting and prior the structure uses is written, the
        moderators' coding (kinds, reference levels, centres and scales) is
        written explicitly, and floats round-trip exactly through TOML.
        """
        spec = spec or self.model_spec()
        data = dict(self.data)
        if "path" in data:
            data["path"] = _data_path(self.base_dir / data["path"], relative_to)
        data["subgroups"] = list(spec.subgroups)
        if spec.table.is_synthetic:
            data["synthetic"] = True
        out: dict[str, Any] = {
            "title": self.title,
            "description": self.description,
            "data": data,
            "model": {"subgroup_effects": spec.subgroup_effects,
                      "study_effects": spec.study_effects, "likelihood": spec.likelihood,
                      **({"study_heterogeneity": spec.study_heterogeneity}
                         if spec.study_heterogeneity != "common" else {}),
                      **({"cell_effects": spec.cell_effects}
                         if spec.cell_effects != "none" else {}),
                      **_resolved_moderators(spec)},
            "priors": {name: spec.priors[name].to_dict() for name in spec.parameter_names()},
            "sampler": self.sampler.to_dict(),
            "summary": {"interval": self.interval.kind, "prob": self.interval.prob},
            "contrasts": [
                {"a": c.a, "b": c.b, "margin": c.margin, "ratio_margin": c.ratio_margin,
                 "odds_ratio_margin": c.odds_ratio_margin, "quantity": c.quantity}
                for c in self.contrasts
            ],
        }
        out["sampler"].pop("progress", None)
        # TOML has no null: an unset (None) option is left out and so stays unset.
        out["sampler"] = {k: v for k, v in out["sampler"].items() if v is not None}
        if self.sensitivity:
            out["sensitivity"] = dict(self.sensitivity)
        if self.weights is not None:
            out["summary"]["weights"] = dict(self.weights)
        if self.at is not None:
            out["summary"]["at"] = dict(self.at)
        if self.forest_order != "data":
            out["summary"]["forest_order"] = self.forest_order
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.bias is not None:
            out["bias"] = self.bias_options().to_dict()
        out["compare"] = dict(self.compare)
        return out

    def resolved_toml(self, spec: ModelSpec | None = None, *,
                      relative_to: str | Path | None = None) -> str:
        return tomli_w.dumps(self.resolved(spec, relative_to=relative_to))


def _data_path(path: Path, relative_to: str | Path | None) -> str:
    """``path`` absolute, or relative to the directory ``relative_to`` (which need not
    exist yet: a results directory being written). Both sides have their symbolic
    links resolved, so the ``..`` steps are the ones the file system takes."""
    path = path.resolve()
    if relative_to is None:
        return str(path)
    return os.path.relpath(path, Path(relative_to).resolve())


def _resolved_moderators(spec: ModelSpec) -> dict[str, Any]:
    """The ``[model]`` keys that reproduce the moderators' coding exactly."""
    mods = spec.moderators
    if not mods:
        return {}
    out: dict[str, Any] = {
        "moderators": [m.name for m in mods],
        "moderator_kinds": {m.name: m.kind for m in mods},
        "moderator_reference": {m.name: m.centre if m.kind == "numeric" else m.reference
                                for m in mods},
    }
    scales = {m.name: m.scale for m in mods if m.kind == "numeric"}
    if scales:
        out["moderator_scale"] = scales
    return out


def read_toml(path: str | Path) -> tuple[dict[str, Any], str, Path]:
    """Parse a TOML file: ``(mapping, source name, directory)``; ``SpecError`` if unreadable."""
    path = Path(path)
    source = str(path)
    text = read_text(path, source, error=SpecError)  # every OS error named; BOM dropped
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{source}: not valid TOML ({err})") from None
    return raw, source, path.resolve().parent


def load_spec(path: str | Path) -> AnalysisSpec:
    """Read and validate a TOML analysis spec."""
    raw, source, base_dir = read_toml(path)
    return parse_spec(raw, source=source, base_dir=base_dir)


def parse_spec(raw: Mapping[str, Any], *, source: str = "spec",
               base_dir: Path | None = None) -> AnalysisSpec:
    """Validate a spec given as a mapping (the parsed TOML)."""
    if "analysis" in raw:
        raise SpecError(f"{source}: a trial spec (analysis = {raw['analysis']!r}); run it with "
                        f"'bayes-poem trial {source}'")
    data = raw.get("data")
    if isinstance(data, Mapping) and "outcomes" in data:  # the joint (two-outcome) model
        from bayes_poem.joint_specfile import parse_joint_spec

        return parse_joint_spec(raw, source=source, base_dir=base_dir)  # type: ignore[return-value]
    if "benefit_risk" in raw:
        raise SpecError(f"{source}: [benefit_risk] needs the joint model: data.outcomes = "
                        "[\"clinical_success\", \"adverse_event\"] instead of data.outcome")
    check_keys(raw, TOP_KEYS, source, "")
    sections = {}
    for name, allowed in SECTION_KEYS.items():
        section = raw.get(name, {})
        if not isinstance(section, Mapping):
            raise SpecError(f"{source}: [{name}] must be a table (got {_shown(section)})")
        check_keys(section, allowed, source, name)
        sections[name] = dict(section)

    data = sections["data"]
    _check_data(data, source)

    model = sections["model"]
    for key, value in model.items():
        if not key.startswith("moderator") and not isinstance(value, str):
            raise SpecError(f"{source}: model.{key} must be a string (got {_shown(value)})")
    _check_moderator_keys(model, source)

    priors_raw = raw.get("priors", {})
    if not isinstance(priors_raw, Mapping):
        raise SpecError(f"{source}: [priors] must be a table of [priors.NAME] tables "
                        f"(got {_shown(priors_raw)})")
    unknown = [k for k in priors_raw if k not in PARAMETERS]
    if unknown:
        raise SpecError(f"{source}: unknown prior name(s) {', '.join(map(repr, unknown))}; "
                        f"valid names: {', '.join(PARAMETERS)}")
    priors = resolve_priors(priors_raw, where=f"{source}: priors")

    try:
        sampler = SamplerSettings(**sections["sampler"])
        summary = sections["summary"]
        interval = IntervalSpec(summary.get("interval", "eti"), summary.get("prob", 0.95))
    except SpecError as err:
        raise SpecError(f"{source}: {err}") from None
    weights = summary.get("weights")
    if weights is not None:
        weights = check_weights(weights, source)
    at = summary.get("at")
    if at is not None and (not isinstance(at, Mapping) or not at or not all(
            isinstance(v, str) or (isinstance(v, int | float) and not isinstance(v, bool))
            for v in at.values())):
        raise SpecError(f"{source}: summary.at must be a table moderator = value (a number, "
                        f"or a level as a string) (got {_shown(at)})")

    contrasts_raw = raw.get("contrasts", [])
    if not isinstance(contrasts_raw, list):
        raise SpecError(f"{source}: contrasts must be an array of tables ([[contrasts]]) "
                        f"(got {_shown(contrasts_raw)})")
    contrasts = []
    for i, entry in enumerate(contrasts_raw, start=1):
        if not isinstance(entry, Mapping):
            raise SpecError(f"{source}: contrasts entry {i} must be a table "
                            f"(got {_shown(entry)})")
        contrasts.append(Contrast.from_mapping(entry, where=f"{source}: contrasts[{i}]"))

    for key in ("title", "description"):
        if key in raw and not isinstance(raw[key], str):
            raise SpecError(f"{source}: {key} must be a string (got {_shown(raw[key])})")
    sensitivity = raw.get("sensitivity", {})
    if not isinstance(sensitivity, Mapping):
        raise SpecError(f"{source}: [sensitivity] must be a table (got {_shown(sensitivity)})")
    from bayes_poem.sensitivity import parse_sensitivity

    parse_sensitivity(sensitivity, source)  # validated now, used by 'bayes-poem sensitivity'
    bias = raw.get("bias")
    if bias is not None:
        if not isinstance(bias, Mapping):
            raise SpecError(f"{source}: [bias] must be a table (got {_shown(bias)})")
        from bayes_poem.bias import parse_bias

        parse_bias(bias, source)  # validated now, used by 'bayes-poem bias' and 'report'
    compare = _parse_compare(raw.get("compare", {}), source)
    labels = _parse_labels(raw.get("labels", {}), source)
    forest_order = summary.get("forest_order", "data")
    from bayes_poem.forest_data import ORDERS

    if forest_order not in ORDERS:
        raise SpecError(f"{source}: summary.forest_order must be one of "
                        f"{', '.join(repr(o) for o in ORDERS)} (got {_shown(forest_order)})")
    return AnalysisSpec(
        source=source,
        base_dir=base_dir or Path.cwd(),
        title=raw.get("title", ""),
        description=raw.get("description", ""),
        data=data,
        model=model,
        priors=priors,
        sampler=sampler,
        interval=interval,
        weights=weights,
        contrasts=tuple(contrasts),
        sensitivity=dict(sensitivity),
        at=dict(at) if at is not None else None,
        bias=dict(bias) if bias is not None else None,
        compare=compare,
        labels=labels,
        forest_order=forest_order,
    )
