"""The joint spec file and ``bayes-poem run``/``check`` on it: one-line errors (tier 1),
the results directory (tier 2)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bayes_poem.cli import main
from bayes_poem.errors import SpecError
from bayes_poem.joint_specfile import JointAnalysisSpec
from bayes_poem.specfile import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "models" / "sed_joint.toml"


def _raw(**changes):
    raw = tomllib.loads(EXAMPLE.read_text())
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            raw.setdefault(section, {})[name] = value
        else:
            raw[section] = value
    return raw


def _key(spec):
    return (spec.outcomes, spec.subgroups, spec.subgroup_effects, spec.priors, spec.rho_eta,
            spec.rho_fixed, spec.table.data_hash())


def test_the_example_parses_as_a_joint_spec():
    analysis = load_spec(EXAMPLE)
    assert isinstance(analysis, JointAnalysisSpec)
    spec = analysis.model_spec()
    assert spec.outcomes == ("clinical_success", "adverse_event")
    assert spec.table.is_synthetic
    assert spec.rho_eta == 2.0 and spec.rho_fixed is None
    again = parse_spec(tomllib.loads(analysis.resolved_toml(spec)), source="resolved")
    assert _key(again.model_spec()) == _key(spec)


@pytest.mark.parametrize(("changes", "message"), [
    ({"data__outcomes": ["clinical_success"]}, "data.outcomes: the joint model takes exactly two"),
    ({"data__outcome": "adverse_event"}, "unknown key 'data.outcome'"),
    ({"priors": {"rho": {"eta": 2.0, "fixed": 0.0}}}, "priors.rho: give eta"),
    ({"priors": {"rho": {"fixed": 1.0}}}, "priors.rho.fixed: must be a number in"),
    ({"priors": {"rho": {"sd": 1.0}}}, "unknown key 'priors.rho.sd'"),
    ({"priors": {"adverse_event": {"tau": {"dist": "Normal", "sigma": 1.0}}}},
     "priors.adverse_event.tau: dist 'Normal' is not allowed"),
    ({"benefit_risk__harm_max": 2.0}, "benefit_risk.harm_max: must be a probability"),
    ({"sampler__backend": "pymc"}, "sampler.backend: the joint model samples with nutpie"),
    ({"contrasts": [{"a": "type_iii", "b": "type_iii"}]}, "contrasts[1]: a and b must be two"),
])
def test_spec_errors_name_the_key(changes, message):
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_spec(_raw(**changes), source="joint.toml")


def test_benefit_risk_needs_the_joint_model():
    raw = tomllib.loads((ROOT / "models" / "sed_adverse_events.toml").read_text())
    raw["benefit_risk"] = {"harm_max": 0.1}
    with pytest.raises(SpecError, match=r"\[benefit_risk\] needs the joint model"):
        parse_spec(raw, source="one.toml")


def test_check_and_other_commands(tmp_path, capsys):
    assert main(["check", str(EXAMPLE)]) == 0
    assert "joint model of clinical_success and adverse_event" in capsys.readouterr().out
    assert main(["bias", str(EXAMPLE), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "runs with 'bayes-poem run', 'compare', 'sensitivity'" in err[0]
    assert not (tmp_path / "c").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('"adverse_event"]', '"adverse_events"]'))
    assert main(["run", str(bad), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.outcomes: outcome 'adverse_events' is not in the data" in err[0]
    assert not (tmp_path / "r").exists()


@pytest.mark.mcmc
def test_run_writes_the_joint_results(tmp_path, capsys):
    spec = tmp_path / "joint.toml"
    spec.write_text(EXAMPLE.read_text().replace("draws = 1000", "draws = 300")
                    .replace("tune = 1000", "tune = 300"))
    out = tmp_path / "out"
    assert main(["run", str(spec), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("*** SYNTHETIC DATA")
    names = {p.name for p in out.iterdir()}
    assert {"posterior.nc", "summary.csv", "heterogeneity.csv", "benefit_risk.csv",
            "joint_contrasts.csv", "diagnostics.csv", "spec.toml", "summary.txt",
            "joint_type_iii.png", "joint_jackhammer.png", "run.log"} <= names
    assert (out / "joint_des.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rerun = load_spec(out / "spec.toml")
    assert _key(rerun.model_spec()) == _key(load_spec(spec).model_spec())
