"""Tier 2: summaries, heterogeneity, study estimates and contrasts from a fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from bayes_poem import SpecError
from bayes_poem.contrasts import Contrast
from bayes_poem.dims import SUBGROUP
from bayes_poem.intervals import IntervalSpec, hdi
from bayes_poem.results import OVERALL, with_summary_options


@pytest.mark.mcmc
def test_subgroup_summary_layout(sed_fit):
    table = sed_fit.subgroup_summary()
    labels = ["type_iii", "des", "jackhammer", "unassigned", OVERALL]
    assert table["subgroup"].unique().tolist() == labels
    assert set(table["quantity"]) == {"p_pooled", "p_mean", "p_new"}
    assert (table["interval"] == "95% ETI").all()
    assert ((table["lower"] <= table["median"]) & (table["median"] <= table["upper"])).all()
    overall = table[table["subgroup"] == OVERALL].iloc[0]
    assert overall["total"] == 179


@pytest.mark.mcmc
def test_p_pooled_is_inverse_logit_of_mu_plus_alpha(sed_fit):
    post = sed_fit.idata.posterior
    probs = sed_fit.subgroup_probabilities()
    expected = expit(post["mu"] + post["alpha"]).sel({SUBGROUP: "des"})
    np.testing.assert_allclose(probs["p_pooled"].sel({SUBGROUP: "des"}), expected)


@pytest.mark.mcmc
def test_population_average_matches_monte_carlo(sed_fit):
    """Gauss-Hermite p_mean equals a brute-force average over simulated study effects."""
    post = sed_fit.idata.posterior.isel(chain=0, draw=slice(0, 50))
    eta = (post["mu"] + post["alpha"].sel({SUBGROUP: "jackhammer"})).values
    tau = post["tau"].values
    z = np.random.default_rng(0).standard_normal(400_000)
    brute = np.array([expit(e + t * z).mean() for e, t in zip(eta, tau, strict=True)])
    gh = sed_fit.subgroup_probabilities()["p_mean"].isel(chain=0, draw=slice(0, 50)).sel(
        {SUBGROUP: "jackhammer"}).values
    # MC error of a mean of 400k draws of a [0, 1] variable is below 1e-3.
    np.testing.assert_allclose(gh, brute, atol=3e-3)


@pytest.mark.mcmc
def test_overall_weights_follow_patient_mix_and_can_be_set(sed_fit):
    probs = sed_fit.subgroup_probabilities()["p_pooled"]
    weights = np.array([116, 18, 37, 8]) / 179
    manual = (probs.sel({SUBGROUP: ["type_iii", "des", "jackhammer", "unassigned"]})
              * weights[None, None, :]).sum(SUBGROUP)
    np.testing.assert_allclose(probs.sel({SUBGROUP: OVERALL}), manual)
    only_jh = with_summary_options(sed_fit, weights={"jackhammer": 1.0})
    p = only_jh.subgroup_probabilities()["p_pooled"]
    np.testing.assert_allclose(p.sel({SUBGROUP: OVERALL}), p.sel({SUBGROUP: "jackhammer"}))
    with pytest.raises(SpecError, match="unknown subgroup"):
        with_summary_options(sed_fit, weights={"nope": 1.0}).subgroup_probabilities()


@pytest.mark.mcmc
def test_interval_kind_is_configurable(sed_fit):
    eti = sed_fit.subgroup_summary(IntervalSpec("eti", 0.9))
    assert (eti["interval"] == "90% ETI").all()
    draws = sed_fit.subgroup_probabilities()["p_pooled"].sel({SUBGROUP: "des"}).values
    row = eti[(eti["subgroup"] == "des") & (eti["quantity"] == "p_pooled")].iloc[0]
    np.testing.assert_allclose([row["lower"], row["upper"]],
                               np.quantile(draws.ravel(), [0.05, 0.95]))
    hdi90 = sed_fit.subgroup_summary(IntervalSpec("hdi", 0.9))
    assert (hdi90["interval"] == "90% HDI").all()
    row = hdi90[(hdi90["subgroup"] == "des") & (hdi90["quantity"] == "p_pooled")].iloc[0]
    np.testing.assert_allclose([row["lower"], row["upper"]], hdi(draws, 0.9))


def test_hdi_of_known_distribution():
    draws = np.random.default_rng(1).normal(size=200_000)
    lower, upper = hdi(draws, 0.95)
    assert lower == pytest.approx(-1.96, abs=0.02)
    assert upper == pytest.approx(1.96, abs=0.02)
    skewed = np.random.default_rng(2).exponential(size=200_000)
    lower, upper = hdi(skewed, 0.9)
    assert lower == pytest.approx(0.0, abs=0.01)
    assert upper == pytest.approx(-np.log(0.1), abs=0.03)


@pytest.mark.mcmc
def test_heterogeneity_rows_and_i2_range(sed_fit):
    table = sed_fit.heterogeneity().set_index("parameter")
    assert list(table.index) == ["tau", "tau2", "i2", "sigma_subgroup"]
    i2 = sed_fit.i_squared()
    assert np.all((i2 >= 0) & (i2 <= 1))
    np.testing.assert_allclose(table.loc["tau2", "mean"],
                               float((sed_fit.idata.posterior["tau"] ** 2).mean()))


@pytest.mark.mcmc
def test_study_estimates_shrink_towards_the_pool(sed_fit):
    table = sed_fit.study_estimates()
    assert len(table) == len(sed_fit.spec.table.frame)
    pooled = sed_fit.subgroup_summary().query("quantity == 'p_pooled'").set_index("subgroup")
    for row in table.itertuples(index=False):
        centre = pooled.loc[row.subgroup, "median"]
        assert abs(row.median - centre) <= abs(row.observed - centre) + 1e-9 or (
            row.lower <= row.observed <= row.upper)


@pytest.mark.mcmc
def test_contrasts_scales_and_probabilities(sed_fit):
    table = sed_fit.contrasts([Contrast("type_iii", "jackhammer", margin=0.1,
                                        odds_ratio_margin=2.0)])
    assert table["scale"].tolist() == ["difference", "ratio", "odds_ratio"]
    probs = sed_fit.subgroup_probabilities()["p_pooled"]
    diff = (probs.sel({SUBGROUP: "type_iii"}) - probs.sel({SUBGROUP: "jackhammer"})).values
    row = table.iloc[0]
    assert row["p_gt_null"] == pytest.approx(np.mean(diff > 0))
    assert row["p_gt_margin"] == pytest.approx(np.mean(diff > 0.1))
    assert row["median"] == pytest.approx(np.median(diff))
    # P(difference > 0) and P(ratio > 1) and P(OR > 1) are the same event.
    assert table["p_gt_null"].nunique() == 1
    assert table.iloc[2]["margin"] == 2.0


@pytest.mark.mcmc
def test_default_contrasts_are_all_pairs(sed_fit):
    table = sed_fit.contrasts()
    assert table["contrast"].nunique() == 6


@pytest.mark.mcmc
def test_contrast_with_unknown_subgroup_is_rejected(sed_fit):
    with pytest.raises(SpecError, match="subgroup 'achalasia' is not in the model"):
        sed_fit.contrasts([Contrast("achalasia", "des")])


@pytest.mark.mcmc
def test_parameter_summary_lists_alpha_per_subgroup(sed_fit):
    table = sed_fit.parameter_summary()
    assert "alpha[jackhammer]" in table["parameter"].tolist()
    assert (table["r_hat"] < 1.05).all()


@pytest.mark.parametrize("make", ["moderators", "cells"])
def test_a_subset_of_quantities_has_the_draws_and_rows_of_the_full_table(sed_spec, make):
    """``quantities=`` (the sensitivity grid asks for ``p_pooled`` only) leaves each
    quantity's draws and rows as the full computation has them; the hand-made
    posterior has no chain/draw coordinates, and the table adds none."""
    from tests.helpers import fake_cell_fit, fake_moderator_fit

    fit = (fake_moderator_fit(sed_spec.with_moderators("year")) if make == "moderators"
           else fake_cell_fit(sed_spec.with_options(cell_effects="random")))
    full = fit.subgroup_probabilities()
    assert list(full.data_vars) == ["p_pooled", "p_mean", "p_new"]
    assert "chain" not in full.coords and full[SUBGROUP].values[-1] == OVERALL
    for quantities in (("p_pooled",), ("p_mean",), ("p_new",), ("p_new", "p_pooled")):
        part = fit.subgroup_probabilities(quantities=quantities)
        assert list(part.data_vars) == [q for q in full.data_vars if q in quantities]
        xr_identical = [part[q].identical(full[q]) for q in quantities]
        assert all(xr_identical), quantities
    table = fit.subgroup_summary()
    pooled = fit.subgroup_summary(quantities=("p_pooled",))
    expected = table[table["quantity"] == "p_pooled"].reset_index(drop=True)
    assert pooled.equals(expected) and len(pooled) == len(sed_spec.subgroups) + 1
    with pytest.raises(ValueError, match="unknown quantities"):
        fit.subgroup_probabilities(quantities=("p_mean", "p_median"))
