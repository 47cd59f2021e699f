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
    assert "marked synthetic by the user ([data] synthetic = true)" in text
    assert "published aggregates" not in text


def test_a_users_unlabelled_csv_is_named_by_its_path(tmp_path):
    table = _user_table(tmp_path, "")
    text = synthetic_text(table)
    assert text.startswith(f"SYNTHETIC DATA: {table.source}, marked synthetic by the user")
    assert "published aggregates" not in text


def test_a_label_on_the_embedded_dataset_keeps_its_description():
    table = load_dataset("sed_synthetic").with_metadata(label="My copy")
    assert describe(table).startswith("My copy: the study-level counts were simulated")


def test_a_real_dataset_marked_synthetic_is_not_said_to_be_simulated_by_us():
    table = load_dataset("rat_tumors").with_metadata(synthetic="true")
    assert describe(table) == ("dataset 'rat_tumors', marked synthetic by the user "
                               "([data] synthetic = true)")


@pytest.mark.parametrize("render", [render_html, lambda r: render_markdown(r)[0]])
def test_the_report_shows_its_own_banner_sentence(render):
    note = synthetic_text("counts made up for this test")
    empty = Section("Data")
    report = Report("T", "sub", True, (Section("Data", text="x"),), empty, synthetic_note=note)
    assert render(report).count(note) == 2  # opens and closes the report
    real = Report("T", "sub", False, (Section("Data", text="x"),), empty)
    assert "SYNTHETIC DATA" not in render(real)
