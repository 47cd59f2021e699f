"""Records of joint specs and of data paths (issue 11, item 8), without sampling.

* A joint spec takes ``[data] synthetic`` and ``label`` as a one-outcome spec does
  (tests/test_records.py), and its posterior records the same software, platform
  and label attributes (``joint._finish`` on hand-made draws: the code a real joint
  fit goes through).
* ``posterior.nc``'s ``data_source`` names the data relative to the spec file when
  they lie in its directory tree, else as the spec gives the path; the resolved
  ``spec.toml`` keeps the absolute path.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import arviz as az
import numpy as np
import pytest
import xarray as xr

from bayes_poem import joint
from bayes_poem._version import environment
from bayes_poem.errors import SpecError
from bayes_poem.sampling import environment_attrs
from bayes_poem.specfile import load_spec, parse_spec
from bayes_poem.table import recorded_path
from tests.test_records import CSV
from tests.test_results_dir import _hand_made_fit

JOINT_CSV = "study,subgroup,outcome,events,total\n" + "".join(
    f"{s},{g},{o},{e},{n}\n"
    for s, g, (cs, ae), n in [("A", "type_iii", (18, 2), 20), ("A", "des", (5, 1), 6),
                              ("B", "type_iii", (14, 0), 15), ("C", "des", (7, 2), 9),
                              ("D", "type_iii", (9, 3), 12), ("E", "des", (4, 0), 5)]
    for o, e in (("clinical_success", cs), ("adverse_event", ae)))
JOINT_DATA = '[data]\npath = "{path}"\noutcomes = ["clinical_success", "adverse_event"]\n'
SAMPLER = "[sampler]\ndraws = 20\ntune = 20\nchains = 1\nseed = 1\n"


def _joint_project(tmp_path: Path, path: str = "data/d.csv", keys: str = "") -> Path:
    """``models/data/d.csv`` beside ``models/j.toml`` (and a copy in ``shared/``)."""
    for folder in ("models/data", "shared"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "d.csv").write_text(JOINT_CSV)
    spec = tmp_path / "models" / "j.toml"
    spec.write_text(JOINT_DATA.format(path=path) + keys + SAMPLER)
    return spec


def _finished(spec, settings):
    """``joint._finish`` over a hand-made posterior (no sampling)."""
    shape = (settings.chains, settings.draws)
    post = xr.Dataset({"mu": (("chain", "draw", "outcome"), np.zeros((*shape, 2)))},
                      coords={"outcome": list(spec.outcomes)})
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros(shape, dtype=bool))})
    return joint._finish(az.InferenceData(posterior=post, sample_stats=stats), spec,
                         settings, 0.0)


# ---------------------------------------------------------------------- joint [data] marks
def test_a_joint_spec_marks_a_users_csv_synthetic_and_labelled(tmp_path):
    plain = load_spec(_joint_project(tmp_path)).model_spec()
    assert not plain.table.is_synthetic and plain.table.label == ""
    spec = _joint_project(tmp_path, keys='synthetic = true\nlabel = "Simulated cohort"\n')
    analysis = load_spec(spec)
    assert analysis.is_joint
    model = analysis.model_spec()
    assert model.table.is_synthetic and model.table.label == "Simulated cohort"
    assert model.table.data_hash() == plain.table.data_hash()  # the same counts
    resolved = tomllib.loads(analysis.resolved_toml(model))
    assert resolved["data"]["synthetic"] is True
    assert resolved["data"]["label"] == "Simulated cohort"
    assert Path(resolved["data"]["path"]).is_absolute()  # spec.toml keeps it absolute
    rerun = parse_spec(resolved, source="spec.toml", base_dir=tmp_path / "results")
    assert rerun.table().is_synthetic and rerun.table().label == "Simulated cohort"
    attrs = _finished(model, analysis.sampler).posterior.attrs
    assert attrs["synthetic_data"] == "true" and attrs["data_label"] == "Simulated cohort"


def test_a_joint_synthetic_dataset_cannot_be_unmarked():
    raw = {"data": {"dataset": "sed_synthetic",
                    "outcomes": ["clinical_success", "adverse_event"], "synthetic": False}}
    analysis = parse_spec(raw, source="j.toml")
    with pytest.raises(SpecError, match=r"^j\.toml: data\.synthetic = false, but dataset "
                                        r"'sed_synthetic' is synthetic"):
        analysis.table()
    kept = parse_spec({"data": {**raw["data"], "synthetic": True}}, source="j.toml")
    assert kept.table().is_synthetic
    unmarked = {"data": {k: v for k, v in raw["data"].items() if k != "synthetic"}}
    resolved = tomllib.loads(parse_spec(unmarked, source="j.toml").resolved_toml())
    assert resolved["data"]["synthetic"] is True  # written out even when not given


@pytest.mark.parametrize(("keys", "message"), [
    ({"synthetic": "yes"}, r"data\.synthetic must be true or false \(got 'yes'\)"),
    ({"label": ""}, r"data\.label must be a non-empty one-line string"),
    ({"label": "two\nlines"}, r"data\.label must be a non-empty one-line string"),
    ({"label": 3}, r"data\.label must be a non-empty one-line string \(got 3\)"),
    ({"labels": "x"}, r"unknown key 'data\.labels'; valid keys in \[data\].*synthetic, label"),
])
def test_bad_joint_data_marks_are_one_line_errors_naming_the_key(keys, message):
    raw = {"data": {"path": "d.csv", "outcomes": ["clinical_success", "adverse_event"],
                    **keys}}
    with pytest.raises(SpecError, match=rf"^j\.toml: {message}") as err:
        parse_spec(raw, source="j.toml")
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------- joint versions
def test_a_joint_posterior_records_the_software_and_platform_as_one_outcome_does(tmp_path):
    analysis = load_spec(_joint_project(tmp_path))
    attrs = _finished(analysis.model_spec(), analysis.sampler).posterior.attrs
    env = environment()
    expected = environment_attrs()
    assert set(expected) == {"python_version", "numpy_version", "scipy_version",
                             "pandas_version", "arviz_version", "pymc_version",
                             "pytensor_version", "nutpie_version", "numba_version",
                             "platform"}
    for key, value in expected.items():
        assert attrs[key] == value
    assert attrs["python_version"] == env["python"] and attrs["platform"] == env["platform"]
    assert attrs["bayes_poem_version"] == env["bayes_poem"]
    # the same keys as a one-outcome posterior
    one = _hand_made_fit(_one_outcome(tmp_path)).idata.posterior.attrs
    assert {k for k in one if k.endswith("_version") or k in ("platform", "data_label")} <= set(
        attrs)


def _one_outcome(tmp_path: Path, path: str = "data/d.csv"):
    folder = tmp_path / "one"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "d.csv").write_text(CSV)
    spec = folder / "s.toml"
    spec.write_text(f'[data]\npath = "{path}"\noutcome = "cs"\n{SAMPLER}')
    analysis = load_spec(spec)
    # what the hand-made draws claim: enough for R-hat
    return dataclasses.replace(analysis, sampler=dataclasses.replace(analysis.sampler,
                                                                     draws=100, chains=2))


# ---------------------------------------------------------------------- data_source
def test_recorded_path_is_relative_inside_the_spec_tree_else_as_given(tmp_path):
    models = tmp_path / "models"
    (models / "data").mkdir(parents=True)
    assert recorded_path("data/d.csv", models) == "data/d.csv"
    assert recorded_path("./data/../data/d.csv", models) == "data/d.csv"
    assert recorded_path(models / "data" / "d.csv", models) == "data/d.csv"  # absolute, inside
    assert recorded_path("../shared/d.csv", models) == "../shared/d.csv"  # outside: as given
    outside = str(tmp_path / "shared" / "d.csv")
    assert recorded_path(outside, models) == outside
    (models / "link").symlink_to(tmp_path / "shared")  # inside by name, outside in fact
    assert recorded_path("link/d.csv", models) == "link/d.csv"


def test_posterior_data_source_is_relative_to_the_spec(tmp_path):
    fit = _hand_made_fit(_one_outcome(tmp_path))
    attrs = fit.idata.posterior.attrs
    assert attrs["data_source"] == "data/d.csv"
    assert str(tmp_path) not in attrs["data_source"]
    assert fit.spec.table.source == str(tmp_path / "one" / "data" / "d.csv")  # messages
    # a dataset records its name, as before
    dataset = _hand_made_fit(load_spec(Path(__file__).parents[1] / "models"
                                       / "rat_tumors.toml"))
    assert dataset.idata.posterior.attrs["data_source"] == dataset.spec.table.source


@pytest.mark.parametrize("given, recorded", [
    ("data/d.csv", "data/d.csv"), ("../shared/d.csv", "../shared/d.csv")])
def test_joint_posterior_data_source_is_relative_to_the_spec(tmp_path, given, recorded):
    analysis = load_spec(_joint_project(tmp_path, path=given))
    attrs = _finished(analysis.model_spec(), analysis.sampler).posterior.attrs
    assert attrs["data_source"] == recorded


def test_a_results_directory_spec_keeps_the_absolute_path_and_records_it(tmp_path):
    analysis = _one_outcome(tmp_path)
    resolved = tomllib.loads(analysis.resolved_toml())
    absolute = resolved["data"]["path"]
    assert Path(absolute).is_absolute()
    out = tmp_path / "results"
    out.mkdir()
    (out / "spec.toml").write_text(analysis.resolved_toml())
    rerun = load_spec(out / "spec.toml")
    assert rerun.table().recorded_source == absolute  # outside results/: as given
