"""CLI behaviour: outputs, atomic writes, --force, --strict, and one-line user errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr

from bayes_poem.cli import main
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "models" / "sed_clinical_success.toml"
EXPECTED_FILES = {"posterior.nc", "summary.csv", "contrasts.csv", "spec.toml", "summary.txt",
                  "heterogeneity.csv", "study_estimates.csv", "diagnostics.csv",
                  ".bayes-poem.json", "run.log", "forest.png", "forest.pdf", "forest.svg",
                  "summary.tex", "contrasts.tex", "heterogeneity.tex", "study_estimates.tex",
                  "diagnostics.tex", "tables.docx"}


def _quick_spec(tmp_path: Path, extra: str = "", sampler: str = "draws = 300\ntune = 300\n"
                "chains = 2\nseed = 3\n") -> Path:
    path = tmp_path / "quick.toml"
    path.write_text(
        '[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
        'subgroups = ["type_iii", "des", "jackhammer", "unassigned"]\n'
        f"[sampler]\n{sampler}{extra}"
        '[[contrasts]]\na = "type_iii"\nb = "jackhammer"\nmargin = 0.1\n'
    )
    return path


@pytest.mark.mcmc
def test_run_writes_every_output(tmp_path, capsys):
    out_dir = tmp_path / "res"
    code, out, err = run_cli(["run", _quick_spec(tmp_path), "--out", out_dir, "--quiet"], capsys)
    assert code == 0, err
    assert {p.name for p in out_dir.iterdir()} == EXPECTED_FILES
    assert "SYNTHETIC DATA" in out
    assert "type_iii vs jackhammer" in out
    idata = xr.open_dataset(out_dir / "posterior.nc", group="posterior", engine="h5netcdf")
    assert set(idata.dims) >= {"chain", "draw", "study", "subgroup"}
    assert idata.attrs["synthetic_data"] == "true"
    contrasts = (out_dir / "contrasts.csv").read_text()
    assert "p_gt_margin" in contrasts and "95% ETI" in contrasts
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".res.")]
    # 4 subgroups: random by the rule, said so; the unpooled contrast beside each row
    line = ("Subgroup effects: random (partially pooled), chosen because 4 subgroups >= 3; "
            "set [model] subgroup_effects to change")
    assert line in out and idata.attrs["structure"].startswith(line)
    table = pd.read_csv(out_dir / "contrasts.csv")
    assert table["unpooled_median"].notna().all() and "unpooled" in out


def test_existing_results_are_not_overwritten_without_force(tmp_path, capsys):
    out_dir = tmp_path / "res"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("precious")
    code, out, err = run_cli(["run", _quick_spec(tmp_path), "--out", out_dir], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "already exists; use --force" in err
    assert (out_dir / "keep.txt").read_text() == "precious"
    assert {p.name for p in out_dir.iterdir()} == {"keep.txt"}


@pytest.mark.mcmc
def test_force_replaces_results_atomically(tmp_path, capsys):
    out_dir = tmp_path / "res"
    code, _, err = run_cli(["run", _quick_spec(tmp_path), "--out", out_dir, "--quiet"], capsys)
    assert code == 0, err
    (out_dir / "old.txt").write_text("old")
    code, _, err = run_cli(["run", _quick_spec(tmp_path), "--out", out_dir, "--force",
                         "--quiet"], capsys)
    assert code == 0, err
    assert {p.name for p in out_dir.iterdir()} == EXPECTED_FILES
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.mcmc
def test_failure_while_writing_leaves_nothing(tmp_path, capsys, monkeypatch):
    from bayes_poem import outputs

    def broken(idata):
        def write(path):
            raise OSError(28, "No space left on device", str(path))
        return write

    monkeypatch.setattr(outputs, "write_netcdf", broken)
    out_dir = tmp_path / "res"
    code, _, err = run_cli(["run", _quick_spec(tmp_path), "--out", out_dir, "--quiet"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "cannot write posterior.nc: No space left on device" in err
    assert not out_dir.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "quick.toml"]


@pytest.mark.mcmc
def test_strict_exit_status_on_failed_diagnostics(tmp_path, capsys):
    spec = _quick_spec(tmp_path, sampler="draws = 15\ntune = 5\nchains = 2\nseed = 1\n")
    out_dir = tmp_path / "res"
    code, out, err = run_cli(["run", spec, "--out", out_dir, "--strict", "--quiet"], capsys)
    assert code == 3
    assert "WARNING:" in out
    assert "sampler diagnostics failed (--strict)" in err
    assert (out_dir / "posterior.nc").exists()  # results are still kept
    code, out, _ = run_cli(["run", spec, "--out", tmp_path / "res2", "--quiet"], capsys)
    assert code == 0 and "WARNING:" in out


BAD_SPECS = {
    "unknown_key": ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
                    "[sampler]\ndraw = 3\n", "unknown key 'sampler.draw'"),
    "unknown_outcome": ('[data]\ndataset = "sed_synthetic"\noutcome = "success"\n',
                        "outcome 'success' is not in the data"),
    "unknown_dataset": ('[data]\ndataset = "sed"\noutcome = "success"\n',
                        "unknown dataset 'sed'"),
    "bad_prior": ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
                  '[priors.tau]\ndist = "Gamma"\n', "dist 'Gamma' is not allowed for 'tau'"),
    "bad_contrast": ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
                     '[[contrasts]]\na = "type_3"\nb = "des"\n',
                     "subgroup 'type_3' is not in the data"),
    "unknown_weight": ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
                       '[summary]\nweights = { typeIII = 1.0 }\n',
                       "summary.weights: unknown subgroup(s) typeIII"),
    "string_prob": ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
                    '[summary]\nprob = "0.9"\n', "summary.prob: must be strictly between"),
    "string_target_accept": ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"'
                             '\n[sampler]\ntarget_accept = "high"\n',
                             "sampler.target_accept: must be in [0.5, 1)"),
    "negative_weight": ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
                        '[summary]\nweights = { des = -1.0 }\n',
                        "summary.weights must be >= 0 with a positive sum"),
    "bad_structure": ('[data]\ndataset = "rat_tumors"\noutcome = "tumor"\n'
                      '[model]\nsubgroup_effects = "random"\n',
                      "bad.toml: model.subgroup_effects = 'random' needs at least 2 subgroups"),
    "missing_csv": ('[data]\npath = "nothere.csv"\noutcome = "x"\n', "nothere.csv: no such file"),
    "bad_toml": ("[data\n", "not valid TOML"),
}


@pytest.mark.parametrize("case", BAD_SPECS, ids=str)
def test_bad_specs_give_one_line_and_write_nothing(tmp_path, capsys, case):
    text, message = BAD_SPECS[case]
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    out_dir = tmp_path / "res"
    for command in (["run", spec, "--out", out_dir], ["check", spec]):
        code, out, err = run_cli(command, capsys)
        assert code == 2
        assert err.count("\n") == 1 and message in err and err.startswith("bayes-poem: error:")
        assert "Traceback" not in err
    assert not out_dir.exists()


BAD_CSVS = {
    "events_gt_total": ("study,outcome,events,total\nA,s,5,3\n",
                        "row 1 (line 2), column 'events': events (5) > total (3)"),
    "negative": ("study,outcome,events,total\nA,s,-1,3\n", "column 'events': negative count"),
    "non_integer": ("study,outcome,events,total\nA,s,1.5,3\n", "'1.5' is not an integer count"),
    "zero_total": ("study,outcome,events,total\nA,s,0,0\n", "total is 0"),
    "missing": ("study,outcome,events,total\nA,s,,3\n", "column 'events': missing value"),
    "duplicate": ("study,outcome,events,total\nA,s,1,3\nA,s,2,3\n",
                  "rows 1 and 2 (lines 2 and 3) repeat"),
    "empty": ("study,outcome,events,total\n", "the table has no rows"),
    "case_labels": ("study,outcome,events,total\nA,s,1,3\na,s,1,3\n",
                    "differs from 'A' (row 1) only by case or whitespace"),
    "no_column": ("study,outcome,count,total\nA,s,1,3\n",
                  "missing required column(s) 'events'; columns found: study, outcome, count"),
}


@pytest.mark.parametrize("case", BAD_CSVS, ids=str)
def test_bad_csv_through_check_and_run(tmp_path, capsys, case):
    text, message = BAD_CSVS[case]
    csv = tmp_path / "data.csv"
    csv.write_text(text)
    code, _, err = run_cli(["check", csv], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err and str(csv) in err
    spec = tmp_path / "spec.toml"
    spec.write_text('[data]\npath = "data.csv"\noutcome = "s"\n')
    code, _, err = run_cli(["run", spec, "--out", tmp_path / "res"], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err
    assert not (tmp_path / "res").exists()


@pytest.mark.mcmc
def test_missing_parent_directories_are_created(tmp_path, capsys):
    out_dir = tmp_path / "deep" / "er" / "res"
    code, _, err = run_cli(["run", _quick_spec(tmp_path), "--out", out_dir, "--quiet"], capsys)
    assert code == 0, err
    assert (out_dir / "summary.csv").exists()


def test_check_good_inputs(tmp_path, capsys):
    code, out, _ = run_cli(["check", SPEC], capsys)
    assert code == 0 and "OK:" in out and "SYNTHETIC" in out
    csv = tmp_path / "ok.csv"
    csv.write_text("study,subgroup,outcome,events,total\nA,x,s,1,3\nB,y,s,2,4\n")
    code, out, _ = run_cli(["check", csv], capsys)
    assert code == 0 and "2 rows, 2 studies, 2 subgroup(s)" in out


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "required" in err


def test_datasets_command_flags_synthetic(capsys):
    code, out, _ = run_cli(["datasets"], capsys)
    assert code == 0
    assert "sed_synthetic  [SYNTHETIC]" in out and "nielweise2007" in out


def test_console_script_reports_errors_without_traceback(tmp_path):
    """The installed entry point, as a user runs it: exit 2, one line, no traceback."""
    bad = tmp_path / "bad.csv"
    bad.write_text("study,outcome,events,total\nA,s,5,3\n")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "bayes_poem.cli", "check", str(bad)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "events (5) > total (3)" in proc.stderr
