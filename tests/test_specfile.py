"""Tier 1: TOML analysis specs: every key validated, errors name the file and key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bayes_poem import SpecError
from bayes_poem.specfile import load_spec, parse_spec

MODELS = Path(__file__).resolve().parents[1] / "models"
BASE = {"data": {"dataset": "sed_synthetic", "outcome": "clinical_success"}}


def _with(**sections):
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in BASE.items()}
    for key, value in sections.items():
        raw[key] = value
    return raw


META_SPECS = [p for p in sorted(MODELS.glob("*.toml"))
              if "analysis" not in tomllib.loads(p.read_text())
              and "outcomes" not in tomllib.loads(p.read_text()).get("data", {})]
TRIAL_SPECS = [p for p in sorted(MODELS.glob("*.toml"))
               if "analysis" in tomllib.loads(p.read_text())]
# The joint specs (data.outcomes) are tested in tests/test_joint_cli.py.


@pytest.mark.parametrize("path", META_SPECS, ids=lambda p: p.name)
def test_shipped_specs_parse_and_build(path):
    analysis = load_spec(path)
    spec = analysis.model_spec()
    assert spec.outcome == analysis.data["outcome"]


@pytest.mark.parametrize("path", TRIAL_SPECS, ids=lambda p: p.name)
def test_trial_specs_are_pointed_to_the_trial_command(path):
    with pytest.raises(SpecError, match="a trial spec .*run it with 'bayes-poem trial"):
        load_spec(path)


def test_clinical_success_spec_contents():
    analysis = load_spec(MODELS / "sed_clinical_success.toml")
    assert analysis.sampler.seed == 20170101
    assert analysis.contrasts[0].a == "type_iii" and analysis.contrasts[0].b == "jackhammer"
    assert analysis.priors["tau"].params == {"sigma": 1.0}
    assert analysis.interval.label == "95% ETI"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_with(extra=1), "unknown key 'extra'; valid keys in the top level: title"),
        (_with(data={"dataset": "sed_synthetic", "outcome": "x", "outcom": "y"}),
         "unknown key 'data.outcom'; valid keys in \\[data\\]: dataset, path, outcome"),
        (_with(model={"subgroups": "random"}), "unknown key 'model.subgroups'"),
        (_with(sampler={"draw": 10}), "unknown key 'sampler.draw'; valid keys in \\[sampler\\]"),
        (_with(summary={"level": 0.9}), "unknown key 'summary.level'"),
        (_with(priors={"tau2": {"dist": "HalfNormal", "sigma": 1}}),
         "unknown prior name\\(s\\) 'tau2'; valid names: mu, tau, sigma_subgroup, alpha, phi"),
        (_with(priors={"tau": {"dist": "Normal", "sigma": 1}}),
         "dist 'Normal' is not allowed for 'tau'; valid: HalfNormal"),
        (_with(priors={"tau": {"dist": "HalfNormal", "scale": 1}}),
         "unknown parameter\\(s\\) 'scale' for HalfNormal; valid: sigma"),
        (_with(priors={"tau": {"dist": "HalfNormal", "sigma": -1}}), "must be > 0"),
        (_with(priors={"tau": {"sigma": 1}}), "missing key 'dist'"),
        (_with(contrasts=[{"a": "des"}]), "key 'b' \\(a subgroup label\\) is required"),
        (_with(contrasts=[{"a": "des", "b": "jackhammer", "mrgin": 0.1}]),
         "unknown key\\(s\\) 'mrgin'"),
        (_with(sampler={"draws": "many"}), "sampler.draws: must be an integer"),
        (_with(sampler={"backend": "stan"}), "sampler.backend: 'stan' is not one of"),
        (_with(summary={"prob": 1.5}), "summary.prob: must be strictly between 0 and 1"),
        (_with(summary={"interval": "hpd"}), "summary.interval: 'hpd' is not one of"),
        ({"data": {"outcome": "x"}}, "needs exactly one of 'dataset' or 'path'"),
        ({"data": {"dataset": "sed_synthetic"}}, "data.outcome is required"),
    ],
)
def test_invalid_specs_name_the_key(raw, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(raw, source="my.toml")
    with pytest.raises(SpecError, match="^my.toml: "):
        parse_spec(raw, source="my.toml")


def test_unknown_outcome_and_subgroup_are_data_errors():
    from bayes_poem import DataError

    # named by the spec file and key, then the data it is not in
    with pytest.raises(DataError, match="^spec: data.outcome: outcome 'success' is not in the "
                       "data \\(dataset 'sed_synthetic'\\); outcomes found: adverse_event"):
        parse_spec(_with(data={"dataset": "sed_synthetic", "outcome": "success"})).model_spec()
    raw = _with(data={"dataset": "sed_synthetic", "outcome": "clinical_success",
                      "subgroups": ["type_iii", "DES"]})
    # A subgroup list naming labels the data lack is an error of the spec key
    # data.subgroups (like a contrast label): SpecError naming the file and key.
    with pytest.raises(SpecError, match="^spec: data.subgroups: .*subgroup\\(s\\) 'DES' not in "
                       "the data"):
        parse_spec(raw).model_spec()


def test_path_is_relative_to_the_spec_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mine.csv").write_text(
        "study,outcome,events,total\nA,success,3,10\nB,success,5,12\n")
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text('[data]\npath = "data/mine.csv"\noutcome = "success"\n')
    spec = load_spec(spec_file).model_spec()
    assert spec.studies == ["A", "B"]
    assert spec.subgroup_effects == "none"


def test_invalid_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    with pytest.raises(SpecError, match="bad.toml: not valid TOML"):
        load_spec(bad)
    with pytest.raises(SpecError, match="nope.toml: no such file"):
        load_spec(tmp_path / "nope.toml")


def test_resolved_spec_round_trips(tmp_path):
    analysis = load_spec(MODELS / "sed_clinical_success.toml")
    text = analysis.resolved_toml()
    resolved = tomllib.loads(text)
    assert resolved["model"] == {"subgroup_effects": "random", "study_effects": "random",
                                 "likelihood": "binomial"}
    assert resolved["priors"]["mu"] == {"dist": "Normal", "mu": 0.0, "sigma": 1.5}
    again = parse_spec(resolved, source="resolved")
    assert again.model_spec().priors == analysis.model_spec().priors
    assert again.sampler == analysis.sampler
