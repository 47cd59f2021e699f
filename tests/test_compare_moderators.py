"""``compare`` with moderators (issue 10, section 5): the frequentist meta-regression
side by side with the Bayesian coefficients.

Tier 1 (hand-made draws, no sampling): the frequentist side equals
``metareg_proportions`` / ``glmm_metareg_proportions`` called directly with the same
moderators, reference levels and rows; the slopes are converted to the Bayesian coded
scale; the pooling without moderators is kept and labelled as such. Tier 2 (``mcmc``):
``bayes-poem compare`` on a moderator spec writes ``comparison_moderators.csv`` with
both sides close for a clear simulated slope (SYNTHETIC data).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from bayes_poem import ModelSpec, load_table
from bayes_poem.compare import MODERATOR_COLUMNS, MODERATOR_SUBGROUP_COLUMNS, compare
from bayes_poem.frequentist import ModelChoice
from bayes_poem.frequentist.glmm import glmm_metareg_proportions
from bayes_poem.frequentist.metareg import metareg_proportions
from tests.helpers import fake_moderator_fit as _fake_fit
from tests.helpers import run_cli

CSV = """study,subgroup,outcome,events,total,quality,year
A,x,cs,8,10,good,2015
A,y,cs,4,6,good,2015
B,x,cs,9,15,fair,2016
C,y,cs,2,7,good,2017
D,z,cs,7,10,fair,2018
D,y,cs,5,9,fair,2018
E,x,cs,9,12,poor,2019
E,z,cs,3,8,poor,2019
F,x,cs,11,14,good,2020
F,z,cs,6,11,fair,2020
G,y,cs,7,9,poor,2021
A,x,ae,1,10,excellent,2015
"""


@pytest.fixture(scope="module")
def table():
    return load_table(pd.read_csv(io.StringIO(CSV), dtype=str), source="d.csv")


def _compare(spec: ModelSpec):
    """``compare`` with the frequentist pooling's own checks as usual (always random, so
    tiny subgroups do not matter here)."""
    return compare(_fake_fit(spec), choice=ModelChoice(rule="random"))


def test_frequentist_side_is_metareg_with_the_same_moderators_and_coding(table):
    spec = (ModelSpec.from_table(table, "cs")
            .with_moderators("year", "quality", reference={"quality": "good"})
            .with_options(subgroup_effects="fixed"))
    comparison = _compare(spec)
    frame = comparison.moderators
    assert list(frame.columns) == list(MODERATOR_COLUMNS)
    assert frame["term"].tolist() == ["year", "quality[fair]", "quality[poor]"]
    assert frame["reference"].tolist()[1:] == ["good", "good"]
    categorical = {"quality": "good", "subgroup": spec.subgroups[0]}
    level = comparison.level
    direct = metareg_proportions(spec.table, outcome="cs", level=level,
                                 categorical=categorical,
                                 moderators=["year", "quality", "subgroup"])
    knha = metareg_proportions(spec.table, outcome="cs", level=level, test="knha",
                               categorical=categorical,
                               moderators=["year", "quality", "subgroup"])
    glmm = glmm_metareg_proportions(spec.table, outcome="cs", level=level,
                                    categorical=categorical,
                                    moderators=["year", "quality", "subgroup"])
    assert direct.design.references["quality"] == spec.moderators[1].reference == "good"
    assert comparison.meta_regression.terms == direct.terms
    (year, _) = spec.moderators
    for row in frame.itertuples(index=False):
        i = direct.terms.index(row.term)
        factor = year.scale if row.term == "year" else 1.0
        assert row.freq_estimate == pytest.approx(factor * direct.estimates[i], rel=1e-12)
        assert row.freq_ci_lower == pytest.approx(factor * direct.ci_lower[i], rel=1e-12)
        assert row.freq_ci_upper == pytest.approx(factor * direct.ci_upper[i], rel=1e-12)
        assert row.freq_p_value == pytest.approx(direct.p_values[i], rel=1e-12)
        assert row.freq_knha_ci_upper == pytest.approx(factor * knha.ci_upper[i], rel=1e-12)
        assert row.freq_knha_p_value == pytest.approx(knha.p_values[i], rel=1e-12)
        assert row.glmm_estimate == pytest.approx(factor * glmm.estimates[i], rel=1e-9)
    bayes = comparison.fit.moderator_summary().set_index("term")
    np.testing.assert_allclose(frame["bayes_median"], bayes.loc[frame["term"], "median"])
    np.testing.assert_allclose(frame["bayes_p_gt_0"], bayes.loc[frame["term"], "p_gt_0"])


def test_numeric_slopes_are_on_the_bayesian_coded_scale(table):
    years = table.for_outcome("cs").frame["year"].astype(float)
    for kwargs, per in [({}, "per SD"), ({"scale": False}, "per 1 unit"),
                        ({"scale": {"year": 5}}, "per 5 units")]:
        spec = ModelSpec.from_table(table, "cs").with_moderators("year", **kwargs)
        comparison = _compare(spec.with_options(subgroup_effects="fixed"))
        row = comparison.moderators.iloc[0]
        raw = comparison.meta_regression.coefficients["year"]
        scale = spec.moderators[0].scale
        assert row["scale"] == scale and row["per"].startswith(per)
        assert row["freq_estimate"] == pytest.approx(raw * scale, rel=1e-12)
    assert spec.moderators[0].scale == 5.0
    sd_spec = ModelSpec.from_table(table, "cs").with_moderators("year")
    assert sd_spec.moderators[0].scale == pytest.approx(years.std(ddof=1))


def test_without_subgroup_effects_all_rows_are_pooled_without_a_subgroup_term(table):
    spec = (ModelSpec.from_table(table, "cs").with_moderators("year")
            .with_options(subgroup_effects="none"))
    comparison = _compare(spec)
    frame = table.for_outcome("cs").frame
    direct = metareg_proportions(frame["events"].astype(float), frame["total"].astype(float),
                                 moderators={"year": frame["year"].tolist()},
                                 level=comparison.level)
    assert comparison.meta_regression.terms == ("intercept", "year")
    assert comparison.meta_regression.k == len(frame) == direct.k
    np.testing.assert_allclose(comparison.meta_regression.estimates, direct.estimates)


def test_subgroup_table_keeps_the_pooling_without_moderators_labelled(table):
    spec = (ModelSpec.from_table(table, "cs").with_moderators("year", "quality")
            .with_options(subgroup_effects="fixed"))
    comparison = _compare(spec)
    assert set(MODERATOR_SUBGROUP_COLUMNS) <= set(comparison.subgroups.columns)
    assert (comparison.subgroups["freq_moderators"]
            == "none (pooled without moderators)").all()
    assert comparison.subgroups["bayes_at"].iloc[0].startswith("the reference values (year")
    text = comparison.render_text()
    assert "the frequentist pooling WITHOUT moderators is shown too" in text
    assert "Moderators, logit scale per Bayesian coded unit" in text
    assert "Knapp-Hartung" in text and "quality[good]" in text
    assert any("WITHOUT moderators: another quantity" in note for note in comparison.notes)
    plain = _compare(ModelSpec.from_table(table, "cs").with_options(subgroup_effects="fixed"))
    assert plain.moderators.empty and plain.meta_regression is None
    assert not set(MODERATOR_SUBGROUP_COLUMNS) & set(plain.subgroups.columns)
    assert "Moderators, logit" not in plain.render_text()


# ---------------------------------------------------------------------- tier 2: sampling
def _slope_csv() -> str:
    """SYNTHETIC: 24 studies, one subgroup, logit p = 0.4 + 0.5 * (year - 2016)."""
    rng = np.random.default_rng(11)
    lines = ["study,subgroup,outcome,events,total,year"]
    for i in range(24):
        year = 2010 + i % 12
        n = int(rng.integers(60, 120))
        p = 1 / (1 + np.exp(-(0.4 + 0.5 * (year - 2016) / 3 + rng.normal(0, 0.1))))
        lines.append(f"SYNTHETIC{i:02d},all,cs,{rng.binomial(n, p)},{n},{year}")
    return "\n".join(lines) + "\n"


@pytest.mark.mcmc
def test_cli_compare_writes_the_moderator_table(tmp_path, capsys):
    (tmp_path / "d.csv").write_text(_slope_csv())
    spec = tmp_path / "s.toml"
    # a CSV file cannot carry the synthetic flag: the title and study labels say it
    spec.write_text('title = "SYNTHETIC simulated slope"\n[data]\npath = "d.csv"\n'
                    'outcome = "cs"\n[model]\nmoderators = ["year"]\n'
                    "[sampler]\ndraws = 500\ntune = 500\nchains = 2\nseed = 3\n")
    out = tmp_path / "out"
    code, stdout, err = run_cli(["compare", spec, "--out", out, "--quiet"], capsys)
    assert code == 0, err
    assert "SYNTHETIC" in stdout and "Knapp-Hartung" in stdout
    table = pd.read_csv(out / "comparison_moderators.csv")
    assert table["term"].tolist() == ["year"] and table["per"].iloc[0].startswith("per SD")
    row = table.iloc[0]
    assert row["bayes_median"] > 0 and row["freq_estimate"] > 0 and row["glmm_estimate"] > 0
    assert row["bayes_p_gt_0"] > 0.99 and row["freq_p_value"] < 0.01
    assert abs(row["bayes_median"] - row["freq_estimate"]) < 0.15
    assert abs(row["glmm_estimate"] - row["freq_estimate"]) < 0.15
    subgroups = pd.read_csv(out / "comparison_subgroups.csv")
    assert (subgroups["freq_moderators"] == "none (pooled without moderators)").all()
