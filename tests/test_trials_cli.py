"""``bayes-poem trial SPEC``: outputs, shipped specs, and one-line errors that write nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from bayes_poem.outputs import MARKER, write_directory, write_text
from bayes_poem.trials import plots
from bayes_poem.trials.specfile import load_trial_spec
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
MODELS = sorted((ROOT / "models").glob("anterior_vs_posterior_*.toml"))
QUICK_SAMPLER = '[sampler]\ndraws = 300\ntune = 300\nchains = 2\nseed = 3\nbackend = "pymc"\n'


def _write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BINARY = ('analysis = "binary"\n[data]\ndataset = "poem_anterior_posterior_rcts"\n'
          'trial = "Khashab2020"\noutcome = "adverse_event"\n'
          '[noninferiority]\nmargin = 0.05\nkind = "harm"\n[simulation]\ndraws = 5000\n')


def test_binary_trial_writes_every_output(tmp_path, capsys):
    out_dir = tmp_path / "res"
    code, out, err = run_cli(["trial", _write(tmp_path, BINARY), "--out", out_dir], capsys)
    assert code == 0, err
    assert {p.name for p in out_dir.iterdir()} == {
        "summary.csv", "noninferiority.csv", "difference.png", "spec.toml", "summary.txt",
        MARKER, "run.log", "summary.tex", "noninferiority.tex", "tables.docx"}
    assert "P(p_posterior - p_anterior < +0.05)" in out and "exact (quadrature)" in out
    assert err.startswith("[bayes-poem] binary:")
    summary = pd.read_csv(out_dir / "summary.csv")
    assert "interval" in summary and (summary["interval"] == "95% ETI").all()
    resolved = load_trial_spec(out_dir / "spec.toml")  # the resolved spec is a valid spec
    assert resolved.section("data") == {"trial": "Khashab2020", "outcome": "adverse_event",
                                        "dataset": "poem_anterior_posterior_rcts"}
    assert resolved.prepare().resolved["priors"]["anterior"] == {"a": 1.0, "b": 1.0}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".res.")]


def test_quiet_and_force(tmp_path, capsys):
    out_dir = tmp_path / "res"
    write_directory(out_dir, {"old.txt": write_text("old")}, force=False)  # earlier results
    spec = _write(tmp_path, BINARY)
    code, _, err = run_cli(["trial", spec, "--out", out_dir], capsys)
    assert code == 2 and err.count("\n") == 1 and "already exists; use --force" in err
    assert (out_dir / "old.txt").exists()
    code, _, err = run_cli(["trial", spec, "--out", out_dir, "--force", "--quiet"], capsys)
    assert code == 0 and err == ""
    assert not (out_dir / "old.txt").exists()


@pytest.mark.mcmc
def test_meta_and_assurance_specs_write_outputs(tmp_path, capsys):
    meta = _write(tmp_path, 'analysis = "meta"\n[data]\ndataset = '
                  '"poem_anterior_posterior_rcts"\noutcomes = ["clinical_success"]\n'
                  '[noninferiority]\nmargin = 0.1\n' + QUICK_SAMPLER, "meta.toml")
    code, out, err = run_cli(["trial", meta, "--out", tmp_path / "meta", "--quiet"], capsys)
    assert code == 0, err
    files = {p.name for p in (tmp_path / "meta").iterdir()}
    assert {"summary.csv", "studies.csv", "published_comparison.csv", "notes.csv",
            "noninferiority.csv", "forest_clinical_success.png",
            "posterior_clinical_success.nc"} <= files
    assert "Rodriguez de Santiago 2019" in out and "Khashab2020_long, Tan2018" in out
    design = _write(tmp_path, 'analysis = "assurance"\n[data]\ndataset = '
                    '"poem_anterior_posterior_rcts"\noutcome = "clinical_success"\n'
                    '[design]\nn_per_arm = [50, 200]\nmargin = 0.1\nsimulations = 300\n'
                    + QUICK_SAMPLER, "design.toml")
    code, out, err = run_cli(["trial", design, "--out", tmp_path / "design", "--quiet"], capsys)
    assert code == 0, err
    curve = pd.read_csv(tmp_path / "design" / "assurance.csv")
    assert curve["n_per_arm"].tolist() == [50, 200]
    assert (tmp_path / "design" / "assurance.png").stat().st_size > 0


def test_synthetic_continuous_output_is_labelled(tmp_path, capsys):
    spec = ROOT / "models" / "anterior_vs_posterior_eckardt_summaries_synthetic.toml"
    code, out, err = run_cli(["trial", spec, "--out", tmp_path / "res", "--quiet"], capsys)
    assert code == 0, err
    assert out.startswith("*** SYNTHETIC DATA")
    assert "SYNTHETIC" in (tmp_path / "res" / "summary.txt").read_text()
    assert bool(pd.read_csv(tmp_path / "res" / "noninferiority.csv")["synthetic_data"].iloc[0])
    resolved = load_trial_spec(tmp_path / "res" / "spec.toml").prepare()
    assert resolved.synthetic and resolved.resolved["data"]["correlation"] == 0.5


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_shipped_specs_are_valid(path):
    prepared = load_trial_spec(path).prepare()
    assert prepared.describe
    if "synthetic" in path.stem:
        assert prepared.synthetic and "SYNTHETIC" in prepared.describe


def test_required_shipped_specs_exist():
    analyses = {load_trial_spec(p).analysis for p in MODELS}
    assert {"binary", "meta", "assurance"} <= analyses


def _summaries(anterior: str, posterior: str = "n = 32, before_mean = 6.1, before_sd = 1.2, "
               "after_mean = 0.6, after_sd = 0.7", margin: str = "1.0") -> str:
    return ('analysis = "continuous"\n[data]\noutcome = "eckardt"\n'
            f"anterior = {{ {anterior} }}\nposterior = {{ {posterior} }}\n"
            f"[noninferiority]\nmargin = {margin}\n")


ANT_OK = "n = 31, before_mean = 6.3, before_sd = 1.4, after_mean = 0.8, after_sd = 0.7"
BAD = {
    "binary_no_patients": (
        'analysis = "binary"\n[data]\nanterior = { events = 0, total = 0 }\n'
        'posterior = { events = 3, total = 10 }\n[noninferiority]\nmargin = 0.1\n',
        "data.anterior: total is 0: an arm with no patients"),
    "binary_events_gt_total": (
        'analysis = "binary"\n[data]\nanterior = { events = 5, total = 10 }\n'
        'posterior = { events = 12, total = 10 }\n[noninferiority]\nmargin = 0.1\n',
        "data.posterior: events (12) > total (10)"),
    "binary_negative_margin": (BINARY.replace("margin = 0.05", "margin = -0.05"),
                               "noninferiority.margin: must be > 0 (got -0.05)"),
    "binary_zero_margin": (BINARY.replace("margin = 0.05", "margin = 0"),
                           "noninferiority.margin: must be > 0"),
    "binary_missing_margin": (BINARY.replace("margin = 0.05\n", ""),
                              "noninferiority.margin: is required"),
    "binary_bad_kind": (BINARY.replace('kind = "harm"', 'kind = "bad"'),
                        "noninferiority.kind: 'bad' is not one of benefit, harm"),
    "binary_unknown_trial": (BINARY.replace('trial = "Khashab2020"', 'trial = "Kh"'),
                             "trial 'Kh' is not in the data"),
    "binary_bad_prior": (BINARY + "[priors]\nanterior = { a = 0, b = 1 }\n",
                         "priors.anterior: Beta prior 'a': must be > 0"),
    "continuous_sd_zero": (_summaries(ANT_OK.replace("before_sd = 1.4", "before_sd = 0")),
                           "data.anterior: before_sd must be > 0 (got 0)"),
    "continuous_sd_negative": (_summaries(ANT_OK.replace("after_sd = 0.7", "after_sd = -2")),
                               "data.anterior: after_sd must be > 0 (got -2)"),
    "continuous_no_patients": (_summaries(ANT_OK.replace("n = 31", "n = 0")),
                               "data.anterior: n is 0: an arm with no patients"),
    "continuous_negative_margin": (_summaries(ANT_OK, margin="-1"),
                                   "noninferiority.margin: must be > 0 (got -1)"),
    "continuous_better": (_summaries(ANT_OK) + 'better = "less"\n',
                          "noninferiority.better: 'less' is not one of higher, lower"),
    "continuous_sampler_for_summaries": (_summaries(ANT_OK) + "[sampler]\ndraws = 10\n",
                                         "[sampler] is used by patient-level data only"),
    "meta_unknown_outcome": ('analysis = "meta"\n[data]\ndataset = '
                             '"poem_anterior_posterior_rcts"\noutcomes = ["success"]\n',
                             "outcome 'success' is not in the data"),
    "meta_negative_margin": ('analysis = "meta"\n[data]\ndataset = '
                             '"poem_anterior_posterior_rcts"\noutcomes = ["adverse_event"]\n'
                             "[noninferiority]\nmargin = -0.1\n",
                             "noninferiority.margin: must be > 0"),
    "meta_bad_prior": ('analysis = "meta"\n[data]\ndataset = "poem_anterior_posterior_rcts"\n'
                       'outcomes = ["adverse_event"]\n[priors.tau]\ndist = "Normal"\n',
                       "priors.tau: dist 'Normal' is not allowed for 'tau'"),
    "meta_continuous_se": ('analysis = "meta_continuous"\n[data]\nstudies = [{ study = "A", '
                           'estimate = 0.1, se = 0 }]\n[priors.mu]\ndist = "Normal"\nsigma = 1'
                           '\n[priors.tau]\ndist = "HalfNormal"\nsigma = 1\n',
                           "study 1 (A), se: must be > 0"),
    "meta_continuous_no_prior": ('analysis = "meta_continuous"\n[data]\nstudies = [{ study = '
                                 '"A", estimate = 0.1, se = 0.2 }]\n',
                                 "priors.mu: a prior is required"),
    "assurance_margin": ('analysis = "assurance"\n[data]\ndataset = '
                         '"poem_anterior_posterior_rcts"\noutcome = "clinical_success"\n'
                         "[design]\nn_per_arm = [50]\nmargin = -0.1\n",
                         "design.margin: must be > 0"),
    "assurance_sizes": ('analysis = "assurance"\n[data]\ndataset = '
                        '"poem_anterior_posterior_rcts"\noutcome = "clinical_success"\n'
                        "[design]\nn_per_arm = [0]\nmargin = 0.1\n",
                        "design.n_per_arm[0]: must be >= 1"),
    "interim_too_many": ('analysis = "interim"\n[interim]\nanterior = { events = 5, total = 60 }'
                         '\nposterior = { events = 5, total = 10 }\nn_per_arm = 50\n'
                         "margin = 0.1\n", "60 patients observed but only 50 per arm planned"),
    "interim_no_patients": ('analysis = "interim"\n[interim]\nanterior = { events = 0, total = '
                            '0 }\nposterior = { events = 5, total = 10 }\nn_per_arm = 50\n'
                            "margin = 0.1\n", "interim.anterior: total is 0"),
    "unknown_key": (BINARY.replace(
        "[simulation]\ndraws = 5000", "[simulation]\ndraw = 5000"),
        "unknown key 'simulation.draw'; valid keys in [simulation]: draws, seed"),
    "unknown_analysis": ('analysis = "bayes"\n', "analysis: 'bayes' is not one of binary"),
    "missing_analysis": ("[data]\n", "'analysis' is required"),
    "unused_section": (BINARY + "[sampler]\ndraws = 10\n",
                       "section [sampler] is not used by analysis 'binary'"),
    "bad_toml": ("analysis = \n", "not valid TOML"),
}


@pytest.mark.parametrize("case", BAD, ids=str)
def test_bad_specs_give_one_line_and_write_nothing(tmp_path, capsys, case):
    text, message = BAD[case]
    spec = _write(tmp_path, text, "bad.toml")
    out_dir = tmp_path / "res"
    code, out, err = run_cli(["trial", spec, "--out", out_dir], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("bayes-poem: error:"), err
    assert message in err, err
    assert "bad.toml" in err
    assert out == "" and "Traceback" not in err
    assert not out_dir.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.toml"]


def test_bad_patient_csv_gives_one_line(tmp_path, capsys):
    (tmp_path / "patients.csv").write_text("arm,baseline,followup\nanterior,6,1\n"
                                           "anterior,7,2\n")
    spec = _write(tmp_path, 'analysis = "continuous"\n[data]\noutcome = "eckardt"\n'
                  'path = "patients.csv"\n[noninferiority]\nmargin = 1.0\n', "bad.toml")
    code, out, err = run_cli(["trial", spec, "--out", tmp_path / "res"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "arm 'posterior' has 0 patient(s)" in err and out == ""
    assert not (tmp_path / "res").exists()


def test_same_trial_twice_in_one_outcome_is_refused(tmp_path, capsys):
    rows = ["study,subgroup,outcome,events,total",
            "Khashab2020,anterior,clinical_success,50,55",
            "Khashab2020,posterior,clinical_success,49,55",
            "Khashab2020_long,anterior,clinical_success,46,54",
            "Khashab2020_long,posterior,clinical_success,45,57"]
    (tmp_path / "trials.csv").write_text("\n".join(rows) + "\n")
    spec = _write(tmp_path, 'analysis = "meta"\n[data]\npath = "trials.csv"\n'
                  'outcomes = ["clinical_success"]\n', "bad.toml")
    code, _, err = run_cli(["trial", spec, "--out", tmp_path / "res"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "'Khashab2020' and 'Khashab2020_long' are the same trial" in err


def test_plots_take_keywords_and_return_figures():
    import numpy as np

    fig = plots.difference_histogram(draws=np.random.default_rng(0).normal(size=500),
                                     margin=0.1, favourable="below", xlabel="d")
    assert isinstance(fig, Figure)
    curve = pd.DataFrame({"n_per_arm": [10, 20], "assurance": [0.2, 0.4], "lower": [0.1, 0.3],
                          "upper": [0.3, 0.5], "normal_approximation": [0.25, 0.45]})
    assert isinstance(plots.assurance_curve(curve=curve), Figure)
    with pytest.raises(TypeError):
        plots.assurance_curve(curve)  # keyword arguments only
