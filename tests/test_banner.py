"""One SYNTHETIC banner whose wording states what the data are, for every source.

The sentence is defined once (:mod:`bayes_poem.banner`); what the data are comes
from the data: an embedded dataset's registry description, a user's ``label`` or
path marked ``[data] synthetic = true``, the trials' own simulated examples.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bayes_poem import load_dataset
from bayes_poem.banner import describe, synthetic_banner, synthetic_text
from bayes_poem.report.document import Report, Section
from bayes_poem.report.html_renderer import render_html
from bayes_poem.report.markdown_renderer import render_markdown
from bayes_poem.specfile import load_spec

ROOT = Path(__file__).resolve().parents[1]


def test_the_embedded_dataset_is_described_by_its_registry_entry():
    table = load_dataset("sed_synthetic")
    assert table.is_synthetic
    assert describe(table) == ("the study-level counts were simulated to match published "
                               "aggregates (Khan et al. 2017)")
    assert synthetic_banner(table) == f"*** {synthetic_text(table)} ***"
    assert synthetic_text(table).startswith("SYNTHETIC DATA: the study-level counts were "
                                            "simulated")


def _user_table(tmp_path, extra: str):
    csv = tmp_path / "sim.csv"
    csv.write_text("study,subgroup,outcome,events,total\nA,x,cs,3,10\nB,x,cs,4,12\n")
    spec = tmp_path / "sim.toml"
    spec.write_text(f'[data]\npath = "sim.csv"\noutcome = "cs"\nsynthetic = true\n{extra}')
    return load_spec(spec).table()


def test_a_users_labelled_csv_is_named_by_its_label_not_said_to_match_aggregates(tmp_path):
    table = _user_table(tmp_path, 'label = "Simulated SED cohort"\n')
    text = synthetic_text(table)
    assert "Simulated SED cohort" in text and "sim.csv" in text
    assert "marked synthetic ([data] synthetic = true)" in text
    assert "published aggregates" not in text


def test_a_users_unlabelled_csv_is_named_by_its_path(tmp_path):
    table = _user_table(tmp_path, "")
    text = synthetic_text(table)
    assert text.startswith(f"SYNTHETIC DATA: {table.source}, marked synthetic ([data]")
    assert "published aggregates" not in text


def test_a_label_on_the_embedded_dataset_keeps_its_description():
    table = load_dataset("sed_synthetic").with_metadata(label="My copy")
    assert describe(table).startswith("My copy: the study-level counts were simulated")


def test_a_real_dataset_marked_synthetic_is_not_said_to_be_simulated_by_us():
    table = load_dataset("rat_tumors").with_metadata(synthetic="true")
    assert describe(table) == "dataset 'rat_tumors', marked synthetic ([data] synthetic = true)"


@pytest.mark.parametrize("render", [render_html, lambda r: render_markdown(r)[0]])
def test_the_report_shows_its_own_banner_sentence(render):
    note = synthetic_text("counts made up for this test")
    empty = Section("Data")
    report = Report("T", "sub", True, (Section("Data", text="x"),), empty, synthetic_note=note)
    assert render(report).count(note) == 2  # opens and closes the report
    real = Report("T", "sub", False, (Section("Data", text="x"),), empty)
    assert "SYNTHETIC DATA" not in render(real)


# ---------------------------------------------------------------------- trials
SUMMARIES = {"anterior": {"n": 31, "before_mean": 6.3, "before_sd": 1.4, "after_mean": 0.8,
                          "after_sd": 0.7},
             "posterior": {"n": 32, "before_mean": 6.1, "before_sd": 1.2, "after_mean": 0.6,
                           "after_sd": 0.7}}


def _trial(data: dict, analysis: str = "continuous"):
    from bayes_poem.trials.specfile import parse_trial_spec

    raw = {"analysis": analysis, "data": {"outcome": "eckardt", **data}}
    if analysis == "continuous":
        raw["noninferiority"] = {"margin": 1.0, "better": "lower"}
    else:
        raw["priors"] = {"mu": {"dist": "Normal", "mu": 0.0, "sigma": 2.0},
                         "tau": {"dist": "HalfNormal", "sigma": 0.5}}
    return parse_trial_spec(raw, source="t.toml").prepare()


def test_a_trial_example_is_described_by_its_own_description():
    from bayes_poem.trials.synthetic import DESCRIPTIONS

    prepared = _trial({"example": "synthetic_eckardt_summaries"})
    assert prepared.synthetic == DESCRIPTIONS["synthetic_eckardt_summaries"]
    text = prepared.run().text
    assert text.splitlines()[0] == synthetic_banner(prepared.synthetic)
    assert "made up by bayes_poem for illustration" in text
    assert "published aggregates" not in text
    patients = _trial({"example": "synthetic_eckardt_patients"})  # prepared only: no MCMC
    assert patients.synthetic == DESCRIPTIONS["synthetic_eckardt_patients"]


def test_trial_data_the_user_marks_synthetic_are_said_to_be_so():
    prepared = _trial({"synthetic": True, **SUMMARIES})
    assert prepared.synthetic == ("the spec's inline arm summaries, marked synthetic "
                                  "([data] synthetic = true)")
    assert prepared.run().text.startswith(f"*** SYNTHETIC DATA: {prepared.synthetic}; ")
    studies = [{"study": "A", "estimate": 0.2, "se": 0.3}, {"study": "B", "estimate": 0.1,
                                                            "se": 0.2}]
    meta = _trial({"synthetic": True, "studies": studies}, analysis="meta_continuous")
    assert meta.synthetic.startswith("the spec's inline studies, marked synthetic ([data]")


def test_real_trial_data_have_no_banner():
    prepared = _trial(SUMMARIES)
    assert prepared.synthetic == ""
    assert "SYNTHETIC" not in prepared.run().text
