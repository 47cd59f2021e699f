"""``compare`` with moderators at the same covariate values, and with one tau per subgroup.

Tier 1 (hand-made draws, no sampling):

* with moderators, the frequentist pooled proportion of subgroup ``d`` at the
  Bayesian covariate values equals the *intercept* of the same meta-regression
  refitted with the moderators recentred at those values and ``d`` as the
  reference subgroup (an independent route to ``logit^-1(x'b)`` and its Wald CI);
  the ``overall`` row is the patient-mix average; the contrasts are the difference
  of two such rates, with a delta-method SE checked by finite differences;
* with ``study_heterogeneity = "by_subgroup"`` every subgroup row carries its own
  Bayesian ``tau[d]`` and the frequentist random-effects tau^2 of that subgroup's
  own fit (``pool`` with REML), ``overall`` has no Bayesian tau.

Tier 2 (``mcmc``): ``bayes-poem compare`` and ``bayes-poem report`` on a
``by_subgroup`` spec with a moderator (SYNTHETIC-free toy data, labelled by source).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from scipy.special import expit

from bayes_poem import ModelSpec, load_table
from bayes_poem.compare import (
    MODERATOR_CONTRAST_COLUMNS,
    MODERATOR_SUBGROUP_COLUMNS,
    SUBGROUP_COLUMNS,
    compare,
)
from bayes_poem.dims import STUDY, SUBGROUP
from bayes_poem.frequentist import ModelChoice
from bayes_poem.frequentist.metareg import metareg_proportions
from bayes_poem.frequentist.pooling import pool
from bayes_poem.results import OVERALL, with_summary_options
from tests.helpers import fake_moderator_fit, fit_over, run_cli

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
G,z,cs,4,10,poor,2021
"""


@pytest.fixture(scope="module")
def table():
    return load_table(pd.read_csv(io.StringIO(CSV), dtype=str), source="d.csv")


def _moderated(table, **options):
    return (ModelSpec.from_table(table, "cs", **options)
            .with_moderators("year", "quality", reference={"quality": "good"}))


def _recentred_intercept(table, subgroup: str, year: float, quality: str, level: float):
    """The meta-regression with year - ``year``, reference levels ``quality`` and
    ``subgroup``: its intercept is the logit rate of ``subgroup`` at those values."""
    frame = table.frame.copy()
    frame["year"] = (frame["year"].astype(float) - year).map(repr)
    shifted = load_table(frame, source="shifted")
    fit = metareg_proportions(shifted, outcome="cs", moderators=["year", "quality", "subgroup"],
                              categorical={"quality": quality, "subgroup": subgroup},
                              level=level)
    return fit.estimates[0], fit.ci_lower[0], fit.ci_upper[0], fit


@pytest.mark.parametrize("at", [None, {"year": 2019.5, "quality": "poor"}])
def test_subgroup_rates_are_the_meta_regression_at_the_bayesian_values(table, at):
    spec = _moderated(table, subgroup_effects="fixed")
    fit = fake_moderator_fit(spec)
    if at is not None:
        fit = with_summary_options(fit, at=at)
    comparison = compare(fit, choice=ModelChoice(rule="random"))
    frame = comparison.subgroups
    assert list(frame.columns) == [*SUBGROUP_COLUMNS, *MODERATOR_SUBGROUP_COLUMNS]
    year = at["year"] if at else spec.moderators[0].centre
    quality = at["quality"] if at else "good"
    for label in spec.subgroups:
        est, lower, upper, _ = _recentred_intercept(table, label, year, quality,
                                                    comparison.level)
        row = frame[frame["subgroup"] == label].iloc[0]
        assert row["freq_metareg_estimate"] == pytest.approx(expit(est), rel=1e-8)
        assert row["freq_metareg_ci_lower"] == pytest.approx(expit(lower), rel=1e-8)
        assert row["freq_metareg_ci_upper"] == pytest.approx(expit(upper), rel=1e-8)
    # overall: the subgroups' rates averaged with the patient mix (the Bayesian weights)
    totals = table.frame.groupby("subgroup")["total"].sum()
    weights = totals[spec.subgroups] / totals.sum()
    rates = frame.set_index("subgroup")["freq_metareg_estimate"]
    overall = frame[frame["subgroup"] == OVERALL].iloc[0]
    assert overall["freq_metareg_estimate"] == pytest.approx(
        float((weights * rates[spec.subgroups]).sum()), rel=1e-12)
    assert overall["freq_metareg_ci_lower"] < overall["freq_metareg_estimate"] < overall[
        "freq_metareg_ci_upper"]
    label = "the given values" if at else "the reference values"
    assert frame["bayes_at"].iloc[0].startswith(label)
    assert frame["freq_metareg_model"].iloc[0].startswith(
        "REML meta-regression on subgroup + year + quality at " + label)
    # the frequentist pooling without moderators is still there, labelled
    assert (frame["freq_moderators"] == "none (pooled without moderators)").all()
    text = comparison.render_text()
    assert "Meta-regression [95% CI]" in text and "Frequentist without moderators" in text
    assert "the same quantity" in text and "not like-for-like" not in text


def test_contrasts_are_the_meta_regression_difference_with_a_delta_method_se(table):
    spec = _moderated(table, subgroup_effects="fixed")
    comparison = compare(fake_moderator_fit(spec), choice=ModelChoice(rule="random"))
    frame = comparison.contrasts
    assert set(MODERATOR_CONTRAST_COLUMNS) <= set(frame.columns)
    rates = comparison.subgroups.set_index("subgroup")["freq_metareg_estimate"]
    reml = comparison.meta_regression
    crit = stats.norm.ppf(0.5 + comparison.level / 2)
    year = spec.moderators[0].centre
    for row in frame.itertuples(index=False):
        assert row.freq_metareg_difference == pytest.approx(rates[row.a] - rates[row.b],
                                                            rel=1e-10)
        # the SE from a finite-difference gradient of p_a - p_b in the coefficients

        def diff(b, a=row.a, c=row.b):
            def rate(label):
                x = np.zeros(len(reml.terms))
                x[0], x[reml.terms.index("year")] = 1.0, year
                if f"subgroup[{label}]" in reml.terms:
                    x[reml.terms.index(f"subgroup[{label}]")] = 1.0
                return expit(x @ b)
            return rate(a) - rate(c)

        # a step of 1e-6 on the linear predictor per coefficient (year multiplies ~2017)
        steps = [1e-6 / (year if term == "year" else 1.0) for term in reml.terms]
        grad = np.array([(diff(reml.estimates + h * e) - diff(reml.estimates - h * e)) / (2 * h)
                         for h, e in zip(steps, np.eye(len(reml.terms)), strict=True)])
        se = float(np.sqrt(grad @ reml.vcov @ grad))
        assert row.freq_metareg_ci_upper - row.freq_metareg_difference == pytest.approx(
            crit * se, rel=1e-6)
        assert row.freq_metareg_p_value == pytest.approx(
            2 * stats.norm.sf(abs(row.freq_metareg_difference) / se), rel=1e-5)


def test_without_subgroup_effects_only_the_overall_row_has_a_meta_regression_rate(table):
    spec = _moderated(table, subgroup_effects="none")
    comparison = compare(fake_moderator_fit(spec), choice=ModelChoice(rule="random"))
    frame = comparison.subgroups.set_index("subgroup")
    assert frame.loc[spec.subgroups, "freq_metareg_estimate"].isna().all()
    frequentist = table.for_outcome("cs").frame.copy()
    frequentist["year"] = (frequentist["year"].astype(float)
                           - spec.moderators[0].centre).map(repr)
    direct = metareg_proportions(frequentist["events"].astype(float),
                                 frequentist["total"].astype(float),
                                 moderators={"year": frequentist["year"].tolist(),
                                             "quality": frequentist["quality"].tolist()},
                                 categorical={"quality": "good"}, level=comparison.level)
    assert frame.loc[OVERALL, "freq_metareg_estimate"] == pytest.approx(
        expit(direct.estimates[0]), rel=1e-8)
    assert comparison.contrasts.empty


# ---------------------------------------------------------------------- tau per subgroup
def _by_subgroup_fit(spec, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (2, 50)
    n_d, n_s = len(spec.subgroups), len(spec.studies)
    post = xr.Dataset({
        "mu": (("chain", "draw"), rng.normal(0.5, 0.1, shape)),
        "tau": (("chain", "draw", SUBGROUP),
                np.abs(rng.normal(np.linspace(0.2, 1.5, n_d), 0.05, (*shape, n_d)))),
        "w": (("chain", "draw", STUDY), rng.normal(0, 1, (*shape, n_s))),
        "alpha": (("chain", "draw", SUBGROUP), rng.normal(0, 0.3, (*shape, n_d))),
    }, coords={SUBGROUP: spec.subgroups, STUDY: spec.studies})
    return fit_over(spec, post)


def test_by_subgroup_tau_per_row_next_to_the_frequentist_tau2(table):
    spec = ModelSpec.from_table(table, "cs", study_heterogeneity="by_subgroup")
    fit = _by_subgroup_fit(spec)
    comparison = compare(fit)
    frame = comparison.subgroups.set_index("subgroup")
    het = fit.heterogeneity().set_index("parameter")
    for label in spec.subgroups:
        row = frame.loc[label]
        assert row["bayes_tau_median"] == het.loc[f"tau[{label}]", "median"]
        assert row["bayes_tau2_median"] == het.loc[f"tau2[{label}]", "median"]
        assert row["bayes_tau2_lower"] == het.loc[f"tau2[{label}]", "lower"]
        assert row["bayes_i2_median"] == pytest.approx(100 * het.loc[f"i2[{label}]", "median"])
        effects = comparison.frequentist[label].effects
        direct = pool(effects.yi, effects.vi, method="REML", level=comparison.level)
        assert row["freq_re_tau2"] == pytest.approx(direct.tau2, rel=1e-12)
        assert row["freq_re_tau2_ci_upper"] == pytest.approx(direct.tau2_ci_upper, rel=1e-12)
    taus = frame.loc[spec.subgroups, "bayes_tau_median"]
    assert taus.nunique() == len(spec.subgroups)  # not one shared value
    assert np.isnan(frame.loc[OVERALL, ["bayes_tau_median", "bayes_tau2_median",
                                        "bayes_i2_median"]].astype(float)).all()
    text = comparison.render_text()
    assert "(one tau per subgroup)" in text
    assert "Between-study variance per subgroup" in text and "tau[d]^2" in text
    assert any("tau[d] (study_heterogeneity = 'by_subgroup')" in n for n in comparison.notes)
    # the common model: one tau on every row, no per-subgroup table
    common = compare(fake_moderator_fit(ModelSpec.from_table(table, "cs")))
    assert common.subgroups["bayes_tau_median"].nunique() == 1
    assert "Between-study variance per subgroup" not in common.render_text()


def test_report_frequentist_section_with_tau_per_subgroup_and_moderators(table):
    from bayes_poem.report.sections.comparisons import frequentist_section as _frequentist_section

    spec = ModelSpec.from_table(table, "cs", study_heterogeneity="by_subgroup")
    section = _frequentist_section(_by_subgroup_fit(spec), None)
    columns = list(section.table.columns)
    assert "freq. random-effects tau² [95% Q-profile CI]" in columns
    assert "Bayesian tau[d]² [95% ETI]" in columns
    moderated = _frequentist_section(fake_moderator_fit(_moderated(table)), None)
    columns = list(moderated.table.columns)
    assert "frequentist meta-regression at the same values [95% CI]" in columns
    assert "frequentist without moderators [95% CI]" in columns
    contrast_columns = list(moderated.subsections[0].table.columns)
    assert "meta-regression difference at the same values [95% CI]" in contrast_columns


# ---------------------------------------------------------------------- tier 2
SPEC = ('[data]\npath = "d.csv"\noutcome = "cs"\n[model]\nsubgroup_effects = "fixed"\n'
        'study_heterogeneity = "by_subgroup"\nmoderators = ["year"]\n'
        "[sampler]\ndraws = 300\ntune = 300\nchains = 2\nseed = 7\n")


@pytest.mark.mcmc
@pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")
def test_cli_compare_and_report_with_tau_per_subgroup_and_a_moderator(tmp_path, capsys):
    (tmp_path / "d.csv").write_text(CSV)
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC)
    code, stdout, err = run_cli(["compare", spec, "--out", tmp_path / "cmp", "--quiet"], capsys)
    assert code == 0, err
    assert "Between-study variance per subgroup" in stdout
    subgroups = pd.read_csv(tmp_path / "cmp" / "comparison_subgroups.csv")
    per_subgroup = subgroups[subgroups["subgroup"] != OVERALL]
    assert per_subgroup["bayes_tau_median"].notna().all()
    assert per_subgroup["freq_metareg_estimate"].between(0, 1).all()
    code, _, err = run_cli(["report", spec, "--out", tmp_path / "rep", "--quiet"], capsys)
    assert code == 0, err
    markdown = (tmp_path / "rep" / "report.md").read_text()
    for text in ("Share of between-study variance explained (R²)", "Bayesian tau[d]²",
                 "frequentist meta-regression at the same values", "R² untruncated"):
        assert text in markdown, text
