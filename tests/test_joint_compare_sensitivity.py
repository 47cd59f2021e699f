"""``compare`` and ``sensitivity`` of a joint spec: the rho-prior variants and their
``[sensitivity]`` keys, the flag rule (tier 1), and both commands end to end (mcmc).
The data are the SYNTHETIC ``sed_synthetic`` table."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest

from bayes_poem.cli import main
from bayes_poem.errors import SpecError
from bayes_poem.joint_sensitivity import (
    MAIN,
    ROW_COLUMNS,
    JointSensitivityConfig,
    build_rho_variants,
    flag,
    parse_joint_sensitivity,
)
from bayes_poem.specfile import parse_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "models" / "sed_joint.toml"


def _spec(**rho):
    raw = tomllib.loads(EXAMPLE.read_text())
    if rho:
        raw["priors"]["rho"] = rho
    return parse_spec(raw, source="joint.toml").model_spec()


def test_default_variants_are_eta_1_2_4_and_rho_0_without_a_copy_of_main():
    spec = _spec()  # eta = 2: the LKJ(2) variant would be main again
    variants = build_rho_variants(spec)
    assert [v.name for v in variants] == [MAIN, "rho LKJ(eta=1)", "rho LKJ(eta=4)",
                                          "rho fixed at 0"]
    assert [(v.spec.rho_eta, v.spec.rho_fixed) for v in variants] == [
        (2.0, None), (1.0, None), (4.0, None), (2.0, 0.0)]
    assert all(v.spec.table is spec.table and v.spec.priors == spec.priors for v in variants)
    fixed = build_rho_variants(_spec(fixed=0.0))
    assert [v.name for v in fixed] == [MAIN, "rho LKJ(eta=1)", "rho LKJ(eta=2)",
                                       "rho LKJ(eta=4)"]
    assert all(v.spec.rho_fixed is None for v in fixed[1:])


def test_the_sensitivity_section_sets_the_variants_and_threshold():
    config = parse_joint_sensitivity({"rho_priors": [{"eta": 0.5}, {"fixed": 0.5,
                                                                      "name": "strong"}],
                                      "decision_threshold": 0.9}, "j.toml")
    assert config == JointSensitivityConfig(((None, 0.5, None), ("strong", None, 0.5)), 0.9)
    names = [v.name for v in build_rho_variants(_spec(), config)]
    assert names == [MAIN, "rho LKJ(eta=0.5)", "strong"]
    assert [v.name for v in build_rho_variants(_spec(), JointSensitivityConfig((), 0.95))] \
        == [MAIN]


@pytest.mark.parametrize("section, message", [
    ({"tau_priors": []}, "unknown key 'sensitivity.tau_priors'; valid keys in [sensitivity] of "
                         "a joint spec: rho_priors, decision_threshold"),
    ({"rho_priors": {"eta": 1}}, "sensitivity.rho_priors must be an array of tables"),
    ({"rho_priors": [{"eta": 1, "fixed": 0}]}, "rho_priors[1]: give eta"),
    ({"rho_priors": [{}]}, "rho_priors[1]: give eta"),
    ({"rho_priors": [{"eta": 0}]}, "rho_priors[1].eta: must be a finite number > 0"),
    ({"rho_priors": [{"fixed": 1.0}]}, "rho_priors[1].fixed: must be a number in (-1, 1)"),
    ({"rho_priors": [{"eta": 1, "name": "main"}]}, "rho_priors[1].name"),
    ({"rho_priors": [{"eta": 1}, {"eta": 1.0}]}, "two variants named 'rho LKJ(eta=1)'"),
    ({"decision_threshold": 1.0}, "sensitivity.decision_threshold must be in [0.5, 1)"),
])
def test_bad_sections_are_one_line_naming_the_key(section, message):
    raw = tomllib.loads(EXAMPLE.read_text())
    raw["sensitivity"] = section
    with pytest.raises(SpecError) as err:
        parse_spec(raw, source="joint.toml")
    assert str(err.value).startswith("joint.toml: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_probability_is_flagged_when_it_crosses_the_threshold():
    rows = [(MAIN, "p_both[a]", "benefit_risk", 0.96), (MAIN, "p_both[b]", "benefit_risk", 0.5),
            (MAIN, "rho", "heterogeneity", None),
            ("v", "p_both[a]", "benefit_risk", 0.94), ("v", "p_both[b]", "benefit_risk", 0.9),
            ("v", "rho", "heterogeneity", None),
            ("w", "p_both[a]", "benefit_risk", 0.95), ("w", "p_both[b]", "benefit_risk", 0.97)]
    table = pd.DataFrame([{"variant": v, "quantity": q, "kind": k, "probability": p,
                           "status": "ok"} for v, q, k, p in rows]).reindex(columns=ROW_COLUMNS)
    flags = flag(table, 0.95).set_index(["variant", "quantity"])["flag"]
    assert flags[("v", "p_both[a]")] == "crosses 0.95 (0.960 -> 0.940)"
    assert flags[("v", "p_both[b]")] == "" and flags[("v", "rho")] == ""
    assert flags[("w", "p_both[a]")] == ""  # 0.95 is on the same side as 0.96
    assert flags[("w", "p_both[b]")] == "crosses 0.95 (0.500 -> 0.970)"
    assert (flags[MAIN] == "").all()


def _small(tmp_path: Path) -> Path:
    text = (EXAMPLE.read_text().replace("draws = 1000", "draws = 200")
            .replace("tune = 1000", "tune = 300").replace("chains = 4", "chains = 2"))
    spec = tmp_path / "joint.toml"
    spec.write_text(text + '\n[sensitivity]\nrho_priors = [{ eta = 1.0 }, { fixed = 0.0 }]\n')
    return spec


@pytest.mark.mcmc
def test_compare_and_sensitivity_commands_on_a_joint_spec(tmp_path, capsys):
    spec = _small(tmp_path)
    assert main(["compare", str(spec), "--out", str(tmp_path / "c"), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "frequentist bivariate REML" in text and "tau[adverse_event]" in text
    subgroups = pd.read_csv(tmp_path / "c" / "comparison_subgroups.csv")
    assert len(subgroups) == 2 * 5  # two outcomes x (four subgroups + overall)
    assert subgroups["freq_estimate"].between(0, 1).all()
    assert (subgroups.freq_ci_lower <= subgroups.freq_estimate).all()
    het = pd.read_csv(tmp_path / "c" / "comparison_heterogeneity.csv")
    assert list(het.parameter) == ["tau", "tau2", "tau", "tau2", "rho"]
    assert (tmp_path / "c" / "comparison.txt").read_text().strip().endswith("***")

    assert main(["sensitivity", str(spec), "--out", str(tmp_path / "s"), "--quiet"]) == 0
    capsys.readouterr()
    table = pd.read_csv(tmp_path / "s" / "benefit_risk_sensitivity.csv")
    assert list(dict.fromkeys(table.variant)) == [MAIN, "rho LKJ(eta=1)", "rho fixed at 0"]
    assert (table.status != "failed").all()
    rho = table[table.quantity == "rho"].set_index("variant")
    assert rho.loc["rho fixed at 0", "median"] == 0.0
    assert rho.loc[MAIN, "lower"] < rho.loc[MAIN, "upper"]
    p_both = table[table.quantity == "p_both[type_iii]"]
    assert len(p_both) == 3 and p_both.probability.between(0, 1).all()
    assert {"sensitivity.txt", "spec.toml"} <= {p.name for p in (tmp_path / "s").iterdir()}
    resolved = tomllib.loads((tmp_path / "s" / "spec.toml").read_text())
    assert resolved["sensitivity"]["rho_priors"] == [{"eta": 1.0}, {"fixed": 0.0}]
