"""Records a reader can trust (issue 11, item 8): ``[data] synthetic`` and ``label``,
the software and platform in ``posterior.nc`` and the report, data paths relative to
the resolved spec, ``run.log`` in every results directory, no carriage returns in
redirected output.

Tier 1 needs no sampling; the tier-2 tests run ``bayes-poem`` in a subprocess with
stderr redirected to a file, as a user's batch job does.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import arviz as az
import pytest

from bayes_poem import outputs, runlog
from bayes_poem._version import ENVIRONMENT_PACKAGES, environment
from bayes_poem.errors import SpecError
from bayes_poem.report.sections.reproducibility import versions
from bayes_poem.sampling import SamplerSettings, progress_bar
from bayes_poem.specfile import load_spec, parse_spec

CSV = """study,subgroup,outcome,events,total
A,type_iii,cs,18,20
A,jackhammer,cs,4,6
B,type_iii,cs,15,15
C,jackhammer,cs,0,3
D,type_iii,cs,9,12
E,jackhammer,cs,5,9
F,type_iii,cs,11,14
"""
SAMPLER = "[sampler]\ndraws = 200\ntune = 200\nchains = 2\nseed = 7\n"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def _project(tmp_path: Path, data_keys: str = "") -> Path:
    """``data/d.csv`` and ``models/s.toml`` naming it as ``../data/d.csv``."""
    (tmp_path / "data").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "data" / "d.csv").write_text(CSV)
    spec = tmp_path / "models" / "s.toml"
    spec.write_text(f'[data]\npath = "../data/d.csv"\noutcome = "cs"\n{data_keys}\n{SAMPLER}')
    return spec


# ---------------------------------------------------------------------- [data] synthetic, label
def test_synthetic_and_label_mark_a_users_csv(tmp_path):
    plain = load_spec(_project(tmp_path)).model_spec()
    assert not plain.table.is_synthetic and plain.table.label == ""
    spec = tmp_path / "models" / "marked.toml"
    spec.write_text('[data]\npath = "../data/d.csv"\noutcome = "cs"\nsynthetic = true\n'
                    'label = "Simulated cohort"\n')
    analysis = load_spec(spec)
    model = analysis.model_spec()
    assert model.table.is_synthetic and model.table.label == "Simulated cohort"
    assert model.table.data_hash() == plain.table.data_hash()  # the same counts
    resolved = tomllib.loads(analysis.resolved_toml(model))
    assert resolved["data"]["synthetic"] is True
    assert resolved["data"]["label"] == "Simulated cohort"
    subset = model.table.with_subgroups(["jackhammer"])  # every view keeps the marks
    assert subset.is_synthetic and subset.label == "Simulated cohort"


def test_a_synthetic_dataset_cannot_be_unmarked():
    raw = {"data": {"dataset": "sed_synthetic", "outcome": "clinical_success",
                    "synthetic": False}}
    analysis = parse_spec(raw, source="s.toml")  # the key's type is fine ...
    with pytest.raises(SpecError, match=r"^s\.toml: data\.synthetic = false, but dataset "
                                        r"'sed_synthetic' is synthetic"):
        analysis.table()  # ... the value contradicts the data
    kept = parse_spec({**raw, "data": {**raw["data"], "synthetic": True}}, source="s.toml")
    assert kept.table().is_synthetic
    resolved = tomllib.loads(parse_spec(
        {"data": {"dataset": "sed_synthetic", "outcome": "clinical_success"}},
        source="s.toml").resolved_toml())
    assert resolved["data"]["synthetic"] is True  # written out even when not given


@pytest.mark.parametrize(("keys", "message"), [
    ({"synthetic": "yes"}, r"data\.synthetic must be true or false \(got 'yes'\)"),
    ({"synthetic": 1}, r"data\.synthetic must be true or false \(got 1\)"),
    ({"label": ""}, r"data\.label must be a non-empty one-line string"),
    ({"label": "two\nlines"}, r"data\.label must be a non-empty one-line string"),
    ({"label": 3}, r"data\.label must be a non-empty one-line string \(got 3\)"),
])
def test_bad_data_marks_are_one_line_errors_naming_the_key(keys, message):
    raw = {"data": {"path": "d.csv", "outcome": "cs", **keys}}
    with pytest.raises(SpecError, match=rf"^s\.toml: {message}") as err:
        parse_spec(raw, source="s.toml")
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------- relative data paths
def test_resolved_spec_in_a_results_directory_names_the_data_relative_to_itself(tmp_path):
    spec = _project(tmp_path, 'label = "mine"')
    analysis = load_spec(spec)
    model = analysis.model_spec()
    out = tmp_path / "results" / "s"  # not created yet, as when the CLI writes it
    text = analysis.resolved_toml(model, relative_to=out)
    assert tomllib.loads(text)["data"]["path"] == "../../data/d.csv"
    assert str(tmp_path) not in text  # no absolute path recorded
    out.mkdir(parents=True)
    (out / "spec.toml").write_text(text)
    rerun = load_spec(out / "spec.toml")
    again = rerun.model_spec()
    assert again.table.source == model.table.source  # the same file ...
    assert again.table.data_hash() == model.table.data_hash()  # ... the same data
    assert rerun.resolved_toml(again, relative_to=out) == text  # a fixed point
    assert again.table.label == "mine"


def test_resolved_spec_follows_symbolic_links_as_the_file_system_does(tmp_path):
    spec = _project(tmp_path)
    elsewhere = tmp_path / "elsewhere" / "deep"
    elsewhere.mkdir(parents=True)
    (tmp_path / "link").symlink_to(elsewhere)
    out = tmp_path / "link" / "res"  # physically elsewhere/deep/res
    analysis = load_spec(spec)
    text = analysis.resolved_toml(relative_to=out)
    out.mkdir()
    (out / "spec.toml").write_text(text)
    assert (load_spec(out / "spec.toml").table().data_hash()
            == analysis.table().data_hash())


# ---------------------------------------------------------------------- versions
def test_environment_records_python_the_packages_and_the_platform():
    import platform

    env = environment()
    assert list(env) == ["bayes_poem", "python", *ENVIRONMENT_PACKAGES.values(), "platform"]
    assert env["python"] == platform.python_version()
    assert env["platform"] == platform.platform()
    for distribution, key in ENVIRONMENT_PACKAGES.items():
        assert env[key] == version(distribution)


def test_report_versions_table_shows_the_fit_and_the_report():
    env = environment()
    attrs = {"numpy_version": "1.0.0", "platform": "Plan9", "python_version": "3.0"}
    table = versions(attrs).set_index("software")
    assert table.loc["numpy", "fitted with"] == "1.0.0"
    assert table.loc["platform", "fitted with"] == "Plan9"
    assert table.loc["PyTensor", "fitted with"] == "not recorded"  # an older posterior
    assert table.loc["PyTensor", "report made with"] == env["pytensor"]
    assert table.loc["Python", "report made with"] == env["python"]


# ---------------------------------------------------------------------- progress bars
class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_progress_bar_unless_stderr_is_a_terminal(monkeypatch):
    settings = SamplerSettings(progress=True)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not progress_bar(settings)
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert progress_bar(settings)
    assert not progress_bar(SamplerSettings(progress=False))


# ---------------------------------------------------------------------- run.log
def test_run_log_keeps_lines_with_timestamps_and_redrawn_lines_once():
    log = runlog.RunLog(["run", "s.toml"])
    log.feed("[bayes-poem] one\n[bayes-poem] tw")
    log.feed("o\n\r[bar  ] 1/2\r[bar##] 2/2\n\x1b[32mgreen\x1b[0m\n")
    log.note("only in the log")
    lines = log.text().splitlines()
    assert all(STAMP.match(line) for line in lines)
    assert [STAMP.sub("", line) for line in lines] == [
        "bayes-poem 0.1.0: bayes-poem run s.toml".replace("0.1.0", environment()["bayes_poem"]),
        "[bayes-poem] one", "[bayes-poem] two", "[bar##] 2/2", "green", "only in the log"]
    assert "\r" not in log.text() and "\x1b" not in log.text()


def test_capture_tees_stderr_and_the_writer_adds_run_log(tmp_path, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with runlog.capture(["run", "x.toml"]):
        assert sys.stderr.isatty()  # what decides on progress bars still sees the terminal
        sys.stderr.write("[bayes-poem] working\n")
        outputs.write_directory(tmp_path / "res", {"a.txt": outputs.write_text("a")},
                                force=False)
    assert sys.stderr is terminal
    assert "[bayes-poem] working\n" in terminal.getvalue()  # the terminal got it unchanged
    log = (tmp_path / "res" / "run.log").read_text()
    assert "[bayes-poem] working" in log
    assert "writing the results to res/" in log.splitlines()[-1]
    outputs.write_directory(tmp_path / "plain", {"a.txt": outputs.write_text("a")},
                            force=False)
    assert not (tmp_path / "plain" / "run.log").exists()  # Python API: no command, no log


WARNS = """
import sys, warnings
from bayes_poem import outputs, runlog
with runlog.capture(["x"]):
    warnings.warn("careful", UserWarning, stacklevel=1)
    outputs.write_directory(sys.argv[1], {"a.txt": outputs.write_text("a")}, force=False)
"""


def test_capture_keeps_python_warnings(tmp_path):
    """Warnings are shown on ``sys.stderr``: in a plain process (pytest records them
    itself, so this runs in a subprocess) they reach the log too."""
    err = tmp_path / "err.txt"
    with err.open("w") as stream:
        subprocess.run([sys.executable, "-c", WARNS, tmp_path / "res"], stderr=stream,
                       check=True, timeout=120)
    assert "UserWarning: careful" in err.read_text()
    assert "UserWarning: careful" in (tmp_path / "res" / "run.log").read_text()


def test_capture_writes_nothing_when_the_command_fails(tmp_path):
    with pytest.raises(RuntimeError), runlog.capture(["run"]), \
            outputs.reserve(tmp_path / "res", force=False) as target:
        sys.stderr.write("[bayes-poem] started\n")
        raise RuntimeError("the fit failed")
    assert not target.committed and sorted(p.name for p in tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- tier 2: the CLI
def _cli(args, cwd: Path, err: Path) -> subprocess.CompletedProcess:
    """``bayes-poem`` with stderr redirected to the file ``err`` (not a terminal)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with err.open("w") as stream:
        return subprocess.run([sys.executable, "-m", "bayes_poem.cli", *map(str, args)],
                              cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stream,
                              timeout=900, check=False)


@pytest.mark.mcmc
def test_run_records_versions_log_and_data_path_without_carriage_returns(tmp_path):
    _project(tmp_path, 'synthetic = true\nlabel = "Simulated cohort"')
    err = tmp_path / "err.txt"
    assert _cli(["run", "models/s.toml", "--out", "results/s"], tmp_path, err).returncode == 0
    stderr = err.read_text()
    assert "\r" not in stderr and "[bayes-poem] sampling done" in stderr
    assert "data loaded from " in stderr and "d.csv (Simulated cohort; SYNTHETIC): 6 studies" \
        in stderr
    out = tmp_path / "results" / "s"
    log = (out / "run.log").read_text()
    assert "\r" not in log
    assert all(STAMP.match(line) for line in log.splitlines())
    logged = [STAMP.sub("", line) for line in log.splitlines()]
    # every progress line, in order; convergence warnings (shown in the summary, not on
    # stderr) are in the log too
    assert [line for line in stderr.splitlines() if line.startswith("[bayes-poem]")] == [
        line for line in logged if line.startswith("[bayes-poem]")
        and not line.startswith("[bayes-poem] warning: ")]
    assert "*** SYNTHETIC DATA" in (out / "summary.txt").read_text()
    resolved = tomllib.loads((out / "spec.toml").read_text())
    # absolute, so a results directory copied elsewhere still reruns and reports
    # (tests/test_report_inputs.py copies them); resolved_toml(relative_to=) is the option
    assert resolved["data"]["path"] == str((tmp_path / "data" / "d.csv").resolve())
    attrs = az.from_netcdf(out / "posterior.nc").posterior.attrs
    env = environment()
    for key in ("python", *ENVIRONMENT_PACKAGES.values()):
        assert attrs[f"{key}_version"] == env[key]
    assert attrs["platform"] == env["platform"]
    assert attrs["synthetic_data"] == "true" and attrs["data_label"] == "Simulated cohort"
    # the resolved spec reruns from inside the results directory: the same analysis
    assert _cli(["run", out / "spec.toml", "--out", "results/again", "--quiet"], tmp_path,
                err).returncode == 0
    assert err.read_text() == ""  # --quiet: nothing on stderr ...
    again = tmp_path / "results" / "again"
    assert "[bayes-poem] sampling done" in (again / "run.log").read_text()  # ... all logged
    for name in ("summary.csv", "spec.toml"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


@pytest.mark.mcmc
def test_sensitivity_redirected_has_no_carriage_returns_and_a_line_per_variant(tmp_path):
    spec = _project(tmp_path)
    spec.write_text(spec.read_text() + "[sensitivity]\npsens = false\n")
    err = tmp_path / "err.txt"
    done = _cli(["sensitivity", "models/s.toml", "--out", "sens"], tmp_path, err)
    stderr = err.read_text()
    assert done.returncode == 0, stderr
    assert "\r" not in stderr
    variants = [line for line in stderr.splitlines() if " done: " in line]
    assert variants and variants[-1].startswith(f"[bayes-poem] variant {len(variants)}/"
                                                f"{len(variants)} done: ")
    log = (tmp_path / "sens" / "run.log").read_text()
    assert "\r" not in log and log.count(" done: ") == len(variants)
    text = (tmp_path / "sens" / "sensitivity.txt").read_text()  # the structure, its reason
    assert ("Main analysis: Subgroup effects: fixed (unpooled, sum-to-zero), chosen because 2 "
            "subgroups < 3; set [model] subgroup_effects to change") in text
    assert " 95% ETI " in text  # the table's interval column says which
    assert tomllib.loads((tmp_path / "sens" / "spec.toml").read_text())["data"]["path"] \
        == str((tmp_path / "data" / "d.csv").resolve())


# ---------------------------------------------------------------------- methods paragraph
def _fake_fit(tmp_path: Path, data_keys: str, attrs: dict):
    """What :func:`methods_paragraph` reads of a fit, without sampling."""
    from types import SimpleNamespace

    import pandas as pd

    from bayes_poem.diagnostics import Diagnostics
    from bayes_poem.intervals import IntervalSpec

    analysis = load_spec(_project(tmp_path, data_keys))
    diagnostics = Diagnostics(pd.DataFrame({"r_hat": [1.001, 1.0123], "ess_bulk": [812.4, 950],
                                            "ess_tail": [700, 655.6]}), 2, (0.91, 0.77))
    return SimpleNamespace(spec=analysis.model_spec(), settings=analysis.sampler,
                           posterior=SimpleNamespace(attrs=attrs), diagnostics=diagnostics,
                           interval=IntervalSpec("eti", 0.9))


def test_methods_paragraph_states_the_fit_and_its_records(tmp_path):
    from bayes_poem.methods import REFERENCES, methods_paragraph

    env = environment()
    attrs = {**{f"{k}_version": v for k, v in env.items() if k not in ("platform",)},
             "bayes_poem_version": "9.9", "platform": "Plan9"}
    del attrs["numba_version"]  # an older posterior: said so, not guessed
    fit = _fake_fit(tmp_path, 'synthetic = true\nlabel = "Simulated cohort"', attrs)
    text = methods_paragraph(fit)
    paragraph, references = text.split("\n\n")
    spec = fit.spec
    assert (f"the cs counts of Simulated cohort (7 study x subgroup cells from 6 studies, "
            f"{sum(spec.arrays()['total'])} patients, {sum(spec.arrays()['events'])} "
            "events; subgroups type_iii, jackhammer)") in paragraph
    assert "SYNTHETIC" in paragraph
    for name, prior in spec.describe_priors().items():
        assert f"{name} ~ {prior}" in paragraph
    assert "2 chains of 200 draws after 200 warm-up iterations" in paragraph
    assert "seed 7" in paragraph and "(maximum 1.012)" in paragraph
    assert "(minimum 812 and 656)" in paragraph and "divergent transitions (2)" in paragraph
    assert "E-BFMI (minimum 0.77)" in paragraph and "90% ETI credible intervals" in paragraph
    assert f"PyMC {env['pymc']} [4]" in paragraph and f"nutpie {env['nutpie']}" in paragraph
    assert "numba (version not recorded) on Plan9." in paragraph and "bayes_poem 9.9" in paragraph
    assert references.splitlines() == [f"[{i}] {r}" for i, r in enumerate(REFERENCES, 1)]
    (tmp_path / "b").mkdir()
    plain = methods_paragraph(_fake_fit(tmp_path / "b", "", attrs))
    assert "SYNTHETIC" not in plain and "of " + str(tmp_path / "b" / "data" / "d.csv") in plain
