"""Classes 5 and 6 of issue 9: what ``bayes-poem report`` reads from a results directory.

Class 5: the posterior's attributes record the fitted model; ``report`` refuses a
``spec.toml`` that describes another model (one line naming the key) and a
posterior whose attributes are missing or do not match its draws.
Class 6: ``sensitivity.csv`` is validated (one line naming the file, row and
column), for a SPEC target before anything is fitted.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest

from bayes_poem.report import load_fit
from bayes_poem.sensitivity import ROW_COLUMNS, read_table
from bayes_poem.specfile import load_spec
from tests.helpers import run_cli

pytestmark = pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")

CSV = """study,subgroup,outcome,events,total,quality
A,type_iii,cs,18,20,good
A,jackhammer,cs,4,6,good
B,des,cs,15,15,fair
C,jackhammer,cs,0,3,good
D,type_iii,cs,7,10,fair
D,des,cs,5,9,fair
E,jackhammer,cs,6,8,good
"""
SPEC = """title = "report inputs"
[data]
path = "d.csv"
outcome = "cs"
[sampler]
draws = 200
tune = 200
chains = 2
seed = 5
"""


def _write_analysis(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "d.csv").write_text(CSV)
    spec = directory / "s.toml"
    spec.write_text(SPEC)
    return spec


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """One fitted results directory of 'bayes-poem run' (interleaved rows, 3 subgroups)."""
    from bayes_poem.cli import main

    base = tmp_path_factory.mktemp("fitted")
    spec = _write_analysis(base)
    assert main(["run", str(spec), "--out", str(base / "results"), "--quiet"]) == 0
    return base / "results"


def _copy(results: Path, tmp_path: Path) -> Path:
    target = tmp_path / "results"
    shutil.copytree(results, target)
    return target


def _refused(args, capsys, *needles: str, out: Path) -> str:
    code, stdout, err = run_cli(args, capsys)
    assert code == 2, err
    assert stdout == "" and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    assert not out.exists()
    return err


# ---------------------------------------------------------------------- class 5: spec.toml
def _sub(pattern: str, repl: str):
    def edit(text: str) -> str:
        new, n = re.subn(pattern, repl, text, count=1, flags=re.MULTILINE | re.DOTALL)
        assert n == 1, pattern
        return new
    return edit


OTHER_DATA = CSV.replace("E,jackhammer,cs,6,8,good", "E,jackhammer,cs,5,8,good")

SPEC_EDITS = {  # name -> (edit of spec.toml, key named in the message)
    "tau prior scale": (_sub(r"(\[priors\.tau\]\ndist = \"HalfNormal\"\nsigma = )1\.0",
                             r"\g<1>0.5"), "priors.tau"),
    "tau prior family": (_sub(r"(\[priors\.tau\]\ndist = )\"HalfNormal\"\nsigma = 1\.0",
                              '\\1"HalfCauchy"\nbeta = 1.0'), "priors.tau"),
    "mu prior": (_sub(r"(\[priors\.mu\]\ndist = \"Normal\"\nmu = )0\.0", r"\g<1>0.5"),
                 "priors.mu"),
    "sigma_subgroup prior": (_sub(r"(\[priors\.sigma_subgroup\]\ndist = \"HalfNormal\"\n"
                                  r"sigma = )1\.0", r"\g<1>2.0"), "priors.sigma_subgroup"),
    "subgroup effects fixed": (_sub(r'subgroup_effects = "random"', 'subgroup_effects = "fixed"'),
                               "model.subgroup_effects"),
    "subgroup effects none": (_sub(r'subgroup_effects = "random"', 'subgroup_effects = "none"'),
                              "model.subgroup_effects"),
    "common effect": (_sub(r'study_effects = "random"', 'study_effects = "common"'),
                      "model.study_effects"),
    "beta-binomial": (_sub(r'study_effects = "random"\nlikelihood = "binomial"',
                           'study_effects = "common"\nlikelihood = "beta_binomial"'),
                      "model.study_effects"),
    "subgroup order": (_sub(r'subgroups = \[\n    "type_iii",\n    "jackhammer",\n    "des",\n\]',
                            'subgroups = ["des", "type_iii", "jackhammer"]'), "data.subgroups"),
    "subgroup subset": (_sub(r'subgroups = \[\n    "type_iii",\n    "jackhammer",\n    "des",\n\]',
                             'subgroups = ["type_iii", "jackhammer"]'), "data.subgroups"),
    "outcome": (_sub(r'outcome = "cs"', 'outcome = "ae"'), "data.outcome"),
    "other data": (_sub(r'path = ".*?"', 'path = "OTHER"'), "data.path"),
    "draws": (_sub(r"^draws = 200", "draws = 300"), "sampler.draws"),
    "tune": (_sub(r"^tune = 200", "tune = 100"), "sampler.tune"),
    "chains": (_sub(r"^chains = 2", "chains = 3"), "sampler.chains"),
    "seed": (_sub(r"^seed = 5", "seed = 6"), "sampler.seed"),
    "backend": (_sub(r'^backend = "nutpie"', 'backend = "pymc"'), "sampler.backend"),
    "target_accept": (_sub(r"^target_accept = [0-9.]+", "target_accept = 0.9"),
                      "sampler.target_accept"),
    "seed removed (default differs)": (_sub(r"^seed = 5\n", ""), "sampler.seed"),
}


@pytest.mark.mcmc
@pytest.mark.parametrize("name", sorted(SPEC_EDITS))
def test_class5_report_refuses_a_spec_toml_of_another_model(results, tmp_path, capsys, name):
    edit, key = SPEC_EDITS[name]
    target = _copy(results, tmp_path)
    spec = target / "spec.toml"
    text = spec.read_text()
    if name == "other data":
        (tmp_path / "other.csv").write_text(OTHER_DATA)
        text = edit(text).replace('"OTHER"', f'"{tmp_path / "other.csv"}"')
    elif name == "outcome":
        other = tmp_path / "two.csv"
        other.write_text(CSV + "".join(line.replace(",cs,", ",ae,") + "\n"
                                       for line in CSV.splitlines()[1:]))
        text = edit(re.sub(r'path = ".*?"', f'path = "{other}"', text))
    else:
        text = edit(text)
    spec.write_text(text)
    err = _refused(["report", target, "--out", tmp_path / "rep"], capsys,
                   f"{spec}: {key}", out=tmp_path / "rep")
    assert "fitted" in err


def _rewrite_posterior(target: Path, change) -> None:
    path = target / "posterior.nc"
    idata = az.from_netcdf(str(path), engine="h5netcdf")
    for group in idata.groups():
        idata[group].load()
    idata = change(idata)
    path.unlink()
    idata.to_netcdf(str(path), engine="h5netcdf")


def _drop_attr(name):
    def change(idata):
        for group in idata.groups():
            idata[group].attrs.pop(name, None)
        return idata
    return change


def _set_attr(name, value):
    def change(idata):
        for group in idata.groups():
            idata[group].attrs[name] = value
        return idata
    return change


def _truncate(idata):
    return az.InferenceData(**{g: idata[g].isel(draw=slice(0, 50)) if "draw" in idata[g].dims
                               else idata[g] for g in idata.groups()})


def _nan_mu(idata):
    idata.posterior["mu"][0, 3] = np.nan
    return idata


def _drop_group(name):
    def change(idata):
        return az.InferenceData(**{g: idata[g] for g in idata.groups() if g != name})
    return change


def _other_events(idata):
    idata.observed_data["y"][0] = idata.observed_data["y"][0] + 1
    return idata


def _drop_variable(idata):
    idata.posterior = idata.posterior.drop_vars("sigma_subgroup")
    return idata


POSTERIOR_EDITS = {  # name -> (change, text in the message)
    **{f"no {attr}": (_drop_attr(attr), f"no '{attr}' attribute")
       for attr in ("outcome", "subgroups", "studies", "data_hash", "subgroup_effects",
                    "study_effects", "likelihood", "priors", "zeroed_rows", "sampler")},
    "likelihood edited": (_set_attr("likelihood", "beta_binomial"), "model.likelihood"),
    "priors not JSON": (_set_attr("priors", "{tau: half"), "'priors' is not valid JSON"),
    "sampler not an object": (_set_attr("sampler", "[1, 2]"), "'sampler' is not a JSON"),
    "zeroed rows": (_set_attr("zeroed_rows", "[0, 2]"), "rows zeroed"),
    "studies reordered": (_set_attr("studies", '["E", "A", "B", "C", "D"]'), "data.path"),
    "truncated draws": (_truncate, "2 chains x 50 draws stored"),
    "NaN draw": (_nan_mu, "non-finite draws"),
    "no sample_stats": (_drop_group("sample_stats"), "no 'sample_stats' group"),
    "no observed_data": (_drop_group("observed_data"), "no 'observed_data' group"),
    "other counts": (_other_events, "observed_data 'y' differs"),
    "variable missing": (_drop_variable, "variable 'sigma_subgroup' missing"),
}


@pytest.mark.mcmc
@pytest.mark.parametrize("name", sorted(POSTERIOR_EDITS))
def test_class5_report_refuses_a_posterior_it_cannot_trust(results, tmp_path, capsys, name):
    change, needle = POSTERIOR_EDITS[name]
    target = _copy(results, tmp_path)
    _rewrite_posterior(target, change)
    _refused(["report", target, "--out", tmp_path / "rep"], capsys, needle,
             out=tmp_path / "rep")


@pytest.mark.mcmc
def test_class5_presentation_keys_may_be_edited(results, tmp_path):
    """Title, [summary], contrasts, and keys removed whose default is the fitted value,
    change how the fit is reported, not the fit: load_fit accepts them."""
    target = _copy(results, tmp_path)
    spec = target / "spec.toml"
    text = spec.read_text().replace('title = "report inputs"', 'title = "renamed"')
    text = text.replace('interval = "eti"', 'interval = "hdi"').replace("prob = 0.95",
                                                                        "prob = 0.8")
    text = re.sub(r'^backend = "nutpie"\n', "", text, flags=re.MULTILINE)
    text = text.replace("contrasts = []\n", "")
    text += '\n[[contrasts]]\na = "des"\nb = "type_iii"\nmargin = 0.05\n'
    spec.write_text(text)
    analysis = load_spec(spec)
    fit = load_fit(target, analysis, analysis.model_spec())
    assert fit.interval.kind == "hdi" and fit.settings.seed == 5
    assert fit.contrasts(list(analysis.contrasts))["contrast"].iloc[0] == "des vs type_iii"


@pytest.mark.mcmc
def test_class5_posterior_records_the_fitted_model(results):
    import json

    attrs = az.from_netcdf(str(results / "posterior.nc"), engine="h5netcdf").posterior.attrs
    assert attrs["likelihood"] == "binomial"
    assert json.loads(attrs["subgroups"]) == ["type_iii", "jackhammer", "des"]
    assert json.loads(attrs["studies"]) == ["A", "D", "C", "E", "B"]
    assert json.loads(attrs["zeroed_rows"]) == []
    assert json.loads(attrs["sampler"])["seed"] == 5


# ---------------------------------------------------------------------- class 6: sensitivity.csv
def _valid_rows() -> pd.DataFrame:
    rows = []
    for variant, shift in (("main", 0.0), ("tau HalfNormal(2)", 0.01)):
        for quantity, kind in (("p_pooled[type_iii]", "probability"), ("tau", "heterogeneity"),
                               ("difference[type_iii vs des]", "contrast")):
            rows.append({"variant": variant, "group": "g", "description": "d", "status": "ok",
                         "error": "", "quantity": quantity, "kind": kind,
                         "median": 0.4 + shift, "lower": 0.1, "upper": 0.9,
                         "interval": "95% HDI",
                         "p_gt_0": 0.7 if kind == "contrast" else None,
                         "p_gt_margin": 0.5 if kind == "contrast" else None,
                         "margin": 0.0 if kind == "contrast" else None,
                         "divergences": 0, "target_accept": 0.95, "seconds": 0.3,
                         "flag": ""})
    rows.append({"variant": "broken", "group": "g", "status": "failed",
                 "error": "SpecError: no studies", "seconds": 0.01})
    return pd.DataFrame(rows).reindex(columns=ROW_COLUMNS)


def _csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def _cell(row: int, column: str, value):
    def make() -> str:
        frame = _valid_rows()
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return _csv_text(frame)
    return make


def _without(column: str):
    return lambda: _csv_text(_valid_rows().drop(columns=[column]))


HOSTILE_CSV = {  # name -> (content: bytes or a function giving text, text in the message)
    "binary garbage": (bytes(range(256)) * 4, "binary data"),
    "PNG bytes": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data"),
    "latin-1 text": ("variant,médian\n".encode("latin-1"), "not a UTF-8 text file"),
    "empty": (b"", "the file is empty"),
    "blank lines": (b"\n\n  \n", "the file is empty"),
    "foreign columns": (lambda: "a,b,c\n1,2,3\n", "missing column(s) variant, group"),
    "header only": (lambda: ",".join(ROW_COLUMNS) + "\n", "the table has no rows"),
    "no median column": (_without("median"), "missing column(s) median"),
    "no flag column": (_without("flag"), "missing column(s) flag"),
    "ragged row": (lambda: _csv_text(_valid_rows()) + "main,x\n", "fields, but the header"),
    "unterminated quote": (lambda: _csv_text(_valid_rows()) + 'x,"unterminated\n',
                           "not a readable CSV file"),
    "median text": (_cell(1, "median", "abc"), "row 2 (line 3), column 'median'"),
    "median inf": (_cell(1, "median", "inf"), "column 'median': 'inf' is not a finite"),
    "median nan": (_cell(0, "median", "nan"), "column 'median'"),
    "median with underscore": (_cell(0, "median", "1_0"), "column 'median'"),
    "median missing": (_cell(0, "median", None), "column 'median': missing value"),
    "lower above upper": (_cell(4, "lower", 0.95), "row 5 (line 6), column 'lower'"),
    "status unknown": (_cell(2, "status", "great"), "column 'status': 'great' is not one of"),
    "kind unknown": (_cell(2, "kind", "other"), "column 'kind'"),
    "quantity missing": (_cell(3, "quantity", None), "column 'quantity': missing value"),
    "variant missing": (_cell(3, "variant", None), "column 'variant': missing value"),
    "probability above 1": (_cell(2, "p_gt_0", 1.5), "column 'p_gt_0'"),
    "contrast without P(>0)": (_cell(5, "p_gt_0", None), "column 'p_gt_0'"),
    "negative divergences": (_cell(0, "divergences", -3), "column 'divergences'"),
    "target_accept above 1": (_cell(1, "target_accept", 1.2),
                              "row 2 (line 3), column 'target_accept': 1.2 is not in"),
    "target_accept text": (_cell(0, "target_accept", "high"), "column 'target_accept'"),
    "seconds text": (_cell(6, "seconds", "fast"), "column 'seconds'"),
    "repeated quantity": (_cell(1, "quantity", "p_pooled[type_iii]"), "rows 1 and 2 repeat"),
    "no main": (lambda: _csv_text(_valid_rows().replace({"variant": {"main": "other"}})),
                "no fitted row of the main analysis"),
    "main failed": (lambda: _csv_text(_valid_rows().assign(
        status=lambda f: np.where(f["variant"] == "main", "failed", f["status"]))),
        "main"),
    "failed and fitted": (_cell(6, "variant", "main"), "both failed and fitted rows"),
}


def _write_hostile(path: Path, name: str) -> None:
    content, _ = HOSTILE_CSV[name]
    data = content if isinstance(content, bytes) else content().encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_class6_a_valid_table_is_read_with_its_types(tmp_path):
    path = tmp_path / "sensitivity.csv"
    path.write_text(_csv_text(_valid_rows()))
    table = read_table(path)
    assert list(table.columns) == ROW_COLUMNS and len(table) == 7
    assert table["median"].dtype == float and table["flag"].fillna("").eq("").all()
    assert table.loc[6, "status"] == "failed" and np.isnan(table.loc[6, "median"])


def test_class6_a_table_written_before_target_accept_still_reads(tmp_path):
    path = tmp_path / "sensitivity.csv"
    path.write_text(_csv_text(_valid_rows().drop(columns=["target_accept"])))
    table = read_table(path)
    assert list(table.columns) == ROW_COLUMNS and table["target_accept"].isna().all()


@pytest.mark.parametrize("name", sorted(HOSTILE_CSV))
def test_class6_hostile_sensitivity_csv_is_one_line(tmp_path, name):
    from bayes_poem.errors import DataError

    path = tmp_path / "sensitivity.csv"
    _write_hostile(path, name)
    with pytest.raises(DataError) as info:
        read_table(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert HOSTILE_CSV[name][1] in message, message


@pytest.mark.mcmc
@pytest.mark.parametrize("name", sorted(HOSTILE_CSV)[::3])
@pytest.mark.parametrize("place", ["inside", "sibling"])
def test_class6_report_of_results_dir_refuses_hostile_sensitivity_csv(results, tmp_path,
                                                                      capsys, name, place):
    target = _copy(results, tmp_path)
    path = (target / "sensitivity.csv" if place == "inside"
            else tmp_path / "results_sensitivity" / "sensitivity.csv")
    _write_hostile(path, name)
    _refused(["report", target, "--out", tmp_path / "rep"], capsys, f"{path}: ",
             HOSTILE_CSV[name][1], out=tmp_path / "rep")


@pytest.mark.parametrize("name", sorted(HOSTILE_CSV))
def test_class6_report_of_a_spec_validates_sensitivity_csv_before_fitting(
        tmp_path, capsys, monkeypatch, name):
    from bayes_poem import sampling

    spec = _write_analysis(tmp_path)
    monkeypatch.chdir(tmp_path)
    path = Path("results") / f"{spec.stem}_sensitivity" / "sensitivity.csv"
    _write_hostile(path, name)

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before sensitivity.csv was validated")

    monkeypatch.setattr(sampling, "fit", no_fit)
    _refused(["report", spec, "--out", tmp_path / "rep"], capsys, f"{path}: ",
             HOSTILE_CSV[name][1], out=tmp_path / "rep")


def test_class6_a_directory_named_sensitivity_csv_is_refused(tmp_path, capsys, monkeypatch):
    from bayes_poem import sampling

    spec = _write_analysis(tmp_path)
    monkeypatch.chdir(tmp_path)
    path = Path("results") / spec.stem / "sensitivity.csv"
    path.mkdir(parents=True)
    monkeypatch.setattr(sampling, "fit", lambda *a, **k: pytest.fail("fitted"))
    _refused(["report", spec, "--out", tmp_path / "rep"], capsys, f"{path}: not a regular",
             out=tmp_path / "rep")
