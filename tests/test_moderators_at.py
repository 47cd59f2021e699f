"""``[summary] at``: the covariate values of the pooled probabilities, from the spec file.

Tier 1: the key is validated with the moderators before any sampling (one line
naming the key), and written to the resolved spec. Tier 2 (``mcmc``): ``run``
reports the probabilities at those values, equal to ``subgroup_summary`` of the
same fit with ``at=``.
"""

from __future__ import annotations

import tomllib

import pandas as pd
import pytest

from bayes_poem.results import with_summary_options
from bayes_poem.specfile import load_spec
from tests.helpers import run_cli

CSV = """study,subgroup,outcome,events,total,quality,year
A,x,cs,8,10,good,2015
A,y,cs,4,6,good,2015
B,x,cs,9,15,fair,2016
C,y,cs,2,7,good,2017
D,x,cs,7,10,fair,2018
D,y,cs,5,9,fair,2018
E,x,cs,9,12,poor,2019
E,y,cs,3,8,poor,2019
"""
BASE = ('[data]\npath = "d.csv"\noutcome = "cs"\n'
        '[model]\nmoderators = ["year", "quality"]\n'
        "[sampler]\ndraws = 300\ntune = 300\nchains = 2\nseed = 5\n")


def _write(tmp_path, summary: str):
    (tmp_path / "d.csv").write_text(CSV)
    spec = tmp_path / "s.toml"
    spec.write_text(BASE + summary)
    return spec


@pytest.mark.parametrize("summary, message", [
    ('[summary]\nat = { volume = 3 }\n', "summary.at: 'volume' is not a moderator"),
    ('[summary]\nat = { quality = "excellent" }\n',
     "summary.at.quality: 'excellent' is not a level of 'quality'"),
    ('[summary]\nat = { year = "late" }\n', "summary.at.year: must be a finite number"),
    ('[summary]\nat = { year = nan }\n', "summary.at.year: must be a finite number"),
    ('[summary]\nat = { year = true }\n', "summary.at must be a table moderator = value"),
    ('[summary]\nat = 2016\n', "summary.at must be a table moderator = value"),
    ('[summary]\nat = {}\n', "summary.at must be a table moderator = value"),
], ids=["unknown", "bad_level", "text_number", "nan", "bool", "not_a_table", "empty"])
def test_invalid_at_is_one_line_before_sampling(tmp_path, capsys, summary, message):
    spec = _write(tmp_path, summary)
    for command in (["check", spec], ["run", spec, "--out", tmp_path / "res"]):
        code, _, err = run_cli(command, capsys)
        assert code == 2, err
        assert err.count("\n") == 1 and message in err and "s.toml" in err
    assert not (tmp_path / "res").exists()


def test_at_without_moderators_is_refused(tmp_path, capsys):
    (tmp_path / "d.csv").write_text(CSV)
    spec = tmp_path / "s.toml"
    spec.write_text('[data]\npath = "d.csv"\noutcome = "cs"\n[summary]\nat = { year = 2016 }\n')
    code, _, err = run_cli(["check", spec], capsys)
    assert code == 2 and "summary.at: 'year' is not a moderator of the model" in err


def test_at_is_written_to_the_resolved_spec(tmp_path):
    analysis = load_spec(_write(tmp_path, '[summary]\nat = { year = 2016, quality = "poor" }\n'))
    resolved = tomllib.loads(analysis.resolved_toml())
    assert resolved["summary"]["at"] == {"year": 2016, "quality": "poor"}


@pytest.mark.mcmc
def test_run_reports_probabilities_at_the_given_values(tmp_path, capsys):
    at = {"year": 2019, "quality": "poor"}
    spec = _write(tmp_path, '[summary]\nat = { year = 2019, quality = "poor" }\n')
    code, out, err = run_cli(["run", spec, "--out", tmp_path / "res", "--quiet"], capsys)
    assert code == 0, err
    written = pd.read_csv(tmp_path / "res" / "summary.csv")
    analysis = load_spec(spec)
    fit = analysis.model_spec().fit(analysis.sampler)
    expected = with_summary_options(fit, interval=analysis.interval, at=at).subgroup_summary()
    pd.testing.assert_frame_equal(written, expected.reset_index(drop=True), check_dtype=False)
    reference = with_summary_options(fit, interval=analysis.interval).subgroup_summary()
    assert not written["median"].equals(reference["median"])  # the values moved them
    assert "2019" in out and "poor" in out  # the report says where the probabilities are
