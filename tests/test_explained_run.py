"""R^2 (share of tau^2 explained by the moderators) downstream: ``tau2_explained``
per tau, ``bayes-poem run`` (``tau2_explained.csv``, the text report) and the report.

Tier 1 (hand-made draws, no sampling): the table's arithmetic for one tau and per
subgroup with ``study_heterogeneity = "by_subgroup"``, the text and report
sections. Tier 2 (``mcmc``): ``run`` writes the table from a refit with the same
sampler settings and seed (its tau equals a separate fit without moderators, draw
for draw); a failed refit fails the command (exit 4, nothing written); the refit's
failed diagnostics fail ``--strict``.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_poem import ModelSpec, load_table
from bayes_poem.dims import MODERATOR, STUDY, SUBGROUP
from bayes_poem.errors import SamplingError, SpecError
from bayes_poem.explained import COLUMNS, is_defined, tau2_explained
from bayes_poem.intervals import IntervalSpec, describe
from bayes_poem.report_text import render
from tests.helpers import fake_moderator_fit, fit_over, run_cli

CSV = """study,subgroup,outcome,events,total,quality,year
A,x,cs,8,10,good,2015
A,y,cs,4,6,good,2015
B,x,cs,9,15,fair,2016
C,y,cs,2,7,good,2017
D,x,cs,7,10,fair,2018
D,y,cs,5,9,fair,2018
E,x,cs,9,12,poor,2019
E,y,cs,3,8,poor,2019
F,x,cs,12,14,good,2020
"""


@pytest.fixture(scope="module")
def table():
    return load_table(pd.read_csv(io.StringIO(CSV), dtype=str), source="d.csv")


def _by_subgroup_fit(spec, taus, seed=0):
    rng = np.random.default_rng(seed)
    shape = (2, 60)
    n_d, n_s = len(spec.subgroups), len(spec.studies)
    variables = {
        "mu": (("chain", "draw"), rng.normal(0.5, 0.1, shape)),
        "tau": (("chain", "draw", SUBGROUP), np.abs(rng.normal(taus, 0.05, (*shape, n_d)))),
        "w": (("chain", "draw", STUDY), rng.normal(0, 1, (*shape, n_s))),
        "alpha": (("chain", "draw", SUBGROUP), rng.normal(0, 0.3, (*shape, n_d))),
    }
    coords = {SUBGROUP: spec.subgroups, STUDY: spec.studies}
    if spec.moderator_terms:
        variables["beta"] = (("chain", "draw", MODERATOR),
                             rng.normal(0.3, 0.1, (*shape, len(spec.moderator_terms))))
        coords[MODERATOR] = spec.moderator_terms
    return fit_over(spec, xr.Dataset(variables, coords=coords))


def test_one_tau_r2_and_both_taus_with_their_intervals(table):
    spec = ModelSpec.from_table(table, "cs").with_moderators("year")
    fit = fake_moderator_fit(spec, seed=1)
    without = fake_moderator_fit(dataclasses.replace(spec, moderators=()), seed=2)
    interval = IntervalSpec("eti", 0.9)
    out = tau2_explained(fit, without=without, interval=interval)
    assert list(out.columns) == COLUMNS and len(out) == 1
    row = out.iloc[0]
    t_with, t_without = fit.posterior["tau"].values, without.posterior["tau"].values
    raw = 1 - np.median(t_with**2) / np.median(t_without**2)
    assert row["parameter"] == "r2_tau2" and row["r2_raw"] == pytest.approx(raw)
    assert row["r2"] == pytest.approx(min(max(raw, 0.0), 1.0))
    for name, draws in (("with", t_with), ("without", t_without)):
        expected = describe(draws, interval)
        for k in ("median", "lower", "upper"):
            assert row[f"tau_{name}_{k}"] == pytest.approx(expected[k])
    assert row["interval"] == interval.label and row["moderators"] == "year"


def test_by_subgroup_r2_is_per_subgroup(table):
    spec = ModelSpec.from_table(table, "cs", study_heterogeneity="by_subgroup",
                                subgroup_effects="fixed").with_moderators("year")
    fit = _by_subgroup_fit(spec, [0.2, 0.9], seed=3)
    without = _by_subgroup_fit(dataclasses.replace(spec, moderators=()), [0.8, 0.7], seed=4)
    out = tau2_explained(fit, without=without).set_index("parameter")
    assert list(out.index) == ["r2_tau2[x]", "r2_tau2[y]"]
    for label in spec.subgroups:
        t_with = fit.posterior["tau"].sel({SUBGROUP: label}).values
        t_without = without.posterior["tau"].sel({SUBGROUP: label}).values
        raw = 1 - np.median(t_with**2) / np.median(t_without**2)
        assert out.loc[f"r2_tau2[{label}]", "r2_raw"] == pytest.approx(raw)
        assert out.loc[f"r2_tau2[{label}]", "tau_with_median"] == pytest.approx(
            np.median(t_with))
    # x: tau drops from 0.8 to 0.2, most of its variance explained; y: tau rises, R^2 = 0
    assert out.loc["r2_tau2[x]", "r2"] > 0.8 and out.loc["r2_tau2[y]", "r2"] == 0.0
    # the refit must keep one tau per subgroup
    common = _by_subgroup_fit(dataclasses.replace(spec, moderators=(),
                                                  study_heterogeneity="common"), [0.5, 0.5])
    with pytest.raises(SpecError, match="same model"):
        tau2_explained(fit, without=common)


def test_text_report_shows_the_taus_r2_and_the_refits_warnings(table):
    spec = ModelSpec.from_table(table, "cs").with_moderators("year")
    fit = fake_moderator_fit(spec, seed=1)
    without = fake_moderator_fit(dataclasses.replace(spec, moderators=()), seed=2)
    out = tau2_explained(fit, without=without)
    text = render(fit, fit.contrasts(), explained=out)
    assert "Share of tau^2 explained by the moderators" in text
    lines = text.splitlines()
    start = next(i for i, t in enumerate(lines) if t.startswith("Share of tau^2"))
    line = lines[start + 2]  # after the heading and the column header
    assert f"{out.iloc[0]['tau_with_median']:.3f}" in line
    assert line.rstrip().endswith(f"{out.iloc[0]['r2']:.3f}")
    assert "WARNING (fit without" not in text
    flagged = out.assign(problems_without="R-hat > 1.01 for mu; divergences: 3")
    text = render(fit, fit.contrasts(), explained=flagged)
    assert "WARNING (fit without moderators, for R^2): R-hat > 1.01 for mu" in text
    assert "WARNING (fit without moderators, for R^2): divergences: 3" in text
    # moderators without random study effects: said, not silently missing
    common = fake_moderator_fit(spec.with_options(study_effects="common"))
    assert not is_defined(common)
    assert "(R^2): not defined" in render(common, common.contrasts(), explained=None)
    plain = fake_moderator_fit(ModelSpec.from_table(table, "cs"))
    assert "R^2" not in render(plain, plain.contrasts())


def test_report_section_of_r2(table):
    from bayes_poem.report.sections.estimates import explained_section as _explained_section

    spec = ModelSpec.from_table(table, "cs").with_moderators("year")
    fit = fake_moderator_fit(spec, seed=1)
    without = fake_moderator_fit(dataclasses.replace(spec, moderators=()), seed=2)
    out = tau2_explained(fit, without=without).assign(problems_without="divergences: 2")
    section = _explained_section(fit, out)
    assert section.table["parameter"].tolist() == ["tau"]
    assert section.table["R²"].iloc[0] == f"{out.iloc[0]['r2']:.3f}"
    assert "Warning (fit without moderators): divergences: 2" in section.text
    assert "Not defined" in _explained_section(fit, None).text


# ---------------------------------------------------------------------- tier 2
SPEC = ('[data]\npath = "d.csv"\noutcome = "cs"\n[model]\nmoderators = ["year"]\n'
        "[sampler]\ndraws = 300\ntune = 300\nchains = 2\nseed = 7\n")


@pytest.mark.mcmc
@pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")
def test_run_writes_r2_from_a_refit_with_the_same_settings_and_seed(tmp_path, capsys, table):
    from bayes_poem.specfile import load_spec

    (tmp_path / "d.csv").write_text(CSV)
    path = tmp_path / "s.toml"
    path.write_text(SPEC)
    out = tmp_path / "res"
    code, stdout, err = run_cli(["run", path, "--out", out, "--quiet"], capsys)
    assert code == 0, err
    written = pd.read_csv(out / "tau2_explained.csv")
    assert list(written.columns) == COLUMNS and written["parameter"].tolist() == ["r2_tau2"]
    assert "Share of tau^2 explained by the moderators" in stdout
    assert "Share of tau^2" in (out / "summary.txt").read_text()
    # the refit is the same model without moderators, same settings and seed
    analysis = load_spec(path)
    spec = analysis.model_spec()
    without = dataclasses.replace(spec, moderators=()).fit(analysis.sampler)
    assert written["tau_without_median"].iloc[0] == pytest.approx(
        float(np.median(without.posterior["tau"].values)), rel=1e-12)
    with_ = spec.fit(analysis.sampler)
    assert written["tau2_median_with"].iloc[0] == pytest.approx(
        float(np.median(with_.posterior["tau"].values ** 2)), rel=1e-12)


@pytest.mark.mcmc
@pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")
def test_a_failed_refit_fails_run_and_its_diagnostics_fail_strict(tmp_path, capsys,
                                                                    monkeypatch):
    import bayes_poem.explained as explained

    (tmp_path / "d.csv").write_text(CSV)
    path = tmp_path / "s.toml"
    path.write_text(SPEC)

    def failed(fit, settings=None):
        raise SamplingError("chain 1 returned 12 of 300 draws")

    with monkeypatch.context() as patch:
        patch.setattr(explained, "without_moderators", failed)
        code, _, err = run_cli(["run", path, "--out", tmp_path / "a", "--quiet"], capsys)
    assert code == 4, err
    assert "the fit without moderators (for R^2): chain 1 returned 12 of 300 draws" in err
    assert not (tmp_path / "a").exists()

    real = explained.tau2_explained

    def flagged(fit, *args, **kwargs):
        return real(fit, *args, **kwargs).assign(problems_without="divergences: 5")

    monkeypatch.setattr(explained, "tau2_explained", flagged)
    code, stdout, err = run_cli(["run", path, "--out", tmp_path / "b", "--quiet", "--strict"],
                                capsys)
    assert code == 3, err
    assert "fit without moderators: divergences: 5" in err
    assert "WARNING (fit without moderators, for R^2): divergences: 5" in stdout
    assert (tmp_path / "b" / "tau2_explained.csv").is_file()
