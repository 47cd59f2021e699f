"""Prior and posterior predictive checks and new-centre predictions (bayes_poem.predictive)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

from bayes_poem import ModelSpec, load_dataset, load_table
from bayes_poem.errors import SpecError
from bayes_poem.predictive import (
    FLAG_HIGH,
    FLAG_LOW,
    clopper_pearson,
    new_centre_prediction,
    posterior_predictive,
    prior_predictive,
    row_draws,
    row_log_likelihood,
    sample_prior,
    sum_pmf,
)
from bayes_poem.priors import Prior
from bayes_poem.sampling import SamplerSettings

pytestmark = pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")

QUICK = SamplerSettings(draws=500, tune=500, chains=2, seed=17)


def _table(events, totals, subgroups=None) -> object:
    frame = pd.DataFrame({"study": [f"S{i + 1:02d}" for i in range(len(events))],
                          "outcome": "success", "events": events, "total": totals})
    if subgroups is not None:
        frame["subgroup"] = subgroups
    return load_table(frame)


# ---------------------------------------------------------------------- building blocks
def test_clopper_pearson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    events = np.array([0, 1, 5, 14, 20])
    total = np.array([12, 10, 7, 14, 40])
    lower, upper = clopper_pearson(events, total)
    ref_lower, ref_upper = proportion_confint(events, total, alpha=0.05, method="beta")
    np.testing.assert_allclose(lower, np.nan_to_num(ref_lower), atol=1e-10)
    np.testing.assert_allclose(upper, np.nan_to_num(ref_upper, nan=1.0), atol=1e-10)
    assert lower[0] == 0.0 and upper[3] == 1.0


def test_sum_pmf_is_the_convolution():
    rng = np.random.default_rng(0)
    a = rng.dirichlet(np.ones(6), size=3)
    b = rng.dirichlet(np.ones(9), size=3)
    c = rng.dirichlet(np.ones(4), size=3)
    total = sum_pmf([a, b, c])
    for j in range(3):
        np.testing.assert_allclose(total[j], np.convolve(np.convolve(a[j], b[j]), c[j]),
                                   atol=1e-12)


@pytest.mark.parametrize("prior, cdf", [
    (Prior("Normal", {"mu": 0.5, "sigma": 1.5}), stats.norm(0.5, 1.5).cdf),
    (Prior("StudentT", {"nu": 3, "mu": 0.0, "sigma": 2.0}), stats.t(3, 0.0, 2.0).cdf),
    (Prior("HalfNormal", {"sigma": 0.5}), stats.halfnorm(scale=0.5).cdf),
    (Prior("HalfCauchy", {"beta": 0.5}), stats.halfcauchy(scale=0.5).cdf),
    (Prior("HalfStudentT", {"nu": 3, "sigma": 1.0}), lambda x: 2 * stats.t(3).cdf(x) - 1),
    (Prior("Exponential", {"lam": 2.0}), stats.expon(scale=0.5).cdf),
    # log(tau^2) ~ N(mu, sigma)  <=>  tau ~ LogNormal(mu / 2, sigma / 2)
    (Prior("LogNormalTau2", {"mu": -1.69, "sigma": 1.68}),
     stats.lognorm(s=0.84, scale=np.exp(-0.845)).cdf),
])
def test_prior_samplers_have_the_right_distribution(prior, cdf):
    draws = sample_prior(prior, 20000, np.random.default_rng(1))
    assert stats.kstest(draws, cdf).pvalue > 1e-3


@pytest.mark.mcmc
def test_row_log_likelihood_matches_scipy_for_both_likelihoods(sed_spec):
    for spec in (sed_spec, sed_spec.with_options(likelihood="beta_binomial")):
        fit = spec.fit(SamplerSettings(draws=100, tune=200, chains=2, seed=3))
        draws = row_draws(fit)
        loglik = row_log_likelihood(draws)
        p = expit(draws.base + draws.u)
        y, n = draws.events, draws.total
        if spec.likelihood == "beta_binomial":
            kappa = 1.0 / fit.posterior["phi"].values[..., None] ** 2
            expected = stats.betabinom.logpmf(y, n, p * kappa, (1 - p) * kappa)
        else:
            expected = stats.binom.logpmf(y, n, p)
        np.testing.assert_allclose(loglik, expected, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------- prior predictive
def test_prior_predictive_matches_the_pymc_model(sed_spec):
    """The numpy prior draws have the distribution of the PyMC reference model's."""
    import pymc as pm

    ours = prior_predictive(sed_spec, draws=4000, seed=2)
    with sed_spec.build():
        prior = pm.sample_prior_predictive(draws=4000, random_seed=3, var_names=[
            "mu", "tau", "alpha", "u"]).prior
    arrays = sed_spec.arrays()
    rate = expit(prior["mu"] + prior["alpha"].isel(subgroup=int(arrays["subgroup_idx"][0]))
                 + prior["u"].isel(study=int(arrays["study_idx"][0]))).values.ravel()
    pooled = expit(prior["mu"] + prior["alpha"].isel(subgroup=0)).values.ravel()
    label = sed_spec.subgroups[int(arrays["subgroup_idx"][0])]
    assert stats.ks_2samp(ours.draws["p_study"].sel(subgroup=label).values, rate).pvalue > 1e-3
    assert stats.ks_2samp(ours.draws["p_pooled"].sel(subgroup=sed_spec.subgroups[0]).values,
                          pooled).pvalue > 1e-3
    table = ours.table
    assert set(table["quantity"]) == {"p_pooled", "p_study", "difference"}
    quantiles = table.filter(regex=r"^q\d").to_numpy()
    assert (np.diff(quantiles, axis=1) >= 0).all()


def test_prior_predictive_single_group_and_fixed_effects():
    rats = ModelSpec.from_table(load_dataset("rat_tumors"))
    table = prior_predictive(rats).table
    assert table["subgroup"].tolist() == ["all", "all"]
    fixed = ModelSpec.from_table(load_dataset("nielweise2007"))
    assert fixed.subgroup_effects == "fixed"
    result = prior_predictive(fixed, draws=20000, seed=1)
    # Sum-to-zero effects with s_alpha = 1.5: every subgroup has the same marginal prior.
    a, b = (result.draws["p_pooled"].isel(subgroup=i).values for i in (0, 1))
    assert stats.ks_2samp(a, b).pvalue > 1e-3


# ---------------------------------------------------------------------- posterior predictive
@pytest.fixture(scope="module")
def quick_sed_fit(sed_spec):
    return sed_spec.fit(QUICK)


@pytest.mark.mcmc
def test_posterior_predictive_tables(quick_sed_fit):
    ppc = posterior_predictive(quick_sed_fit)
    rows, studies = ppc.rows, ppc.studies
    assert len(rows) == len(quick_sed_fit.spec.table.frame)
    assert studies["study"].tolist() == quick_sed_fit.spec.studies
    for frame in (rows, studies):
        assert frame["ppp"].between(0, 1).all()
        assert (frame["flag"] == ((frame["ppp"] < FLAG_LOW) | (frame["ppp"] > FLAG_HIGH))).all()
    assert (rows["rep_lower"] <= rows["rep_median"]).all()
    assert (rows["rep_median"] <= rows["rep_upper"]).all()
    assert (rows["rep_upper"] <= rows["total"]).all()
    assert ppc.replicated.shape == (1000, len(rows))
    assert set(ppc.statistics["statistic"]) == {"min_rate", "max_rate", "sd_rate"}
    # A study with one row: the study's p-value is the row's.
    single = studies[studies["rows"] == 1]
    for row in single.itertuples(index=False):
        assert row.ppp == pytest.approx(rows.loc[rows["study"] == row.study, "ppp"].iloc[0],
                                        abs=1e-12)


@pytest.mark.mcmc
def test_exact_ppp_agrees_with_simulated_replicates(quick_sed_fit):
    """The exact (per-draw) mid-p equals the Monte Carlo mid-p of the replicated counts."""
    ppc = posterior_predictive(quick_sed_fit)
    reps = ppc.replicated
    y = ppc.rows["events"].to_numpy()
    simulated = (reps > y).mean(0) + 0.5 * (reps == y).mean(0)
    se = np.sqrt(np.maximum(simulated * (1 - simulated), 0.01) / reps.shape[0])
    assert np.all(np.abs(simulated - ppc.rows["ppp"].to_numpy()) < 4 * se + 1e-3)


@pytest.mark.mcmc
def test_conditional_replication_is_more_conservative(quick_sed_fit):
    mixed = posterior_predictive(quick_sed_fit, method="mixed").studies["ppp"]
    conditional = posterior_predictive(quick_sed_fit, method="conditional").studies["ppp"]
    assert (conditional - 0.5).abs().mean() < (mixed - 0.5).abs().mean()
    with pytest.raises(SpecError):
        posterior_predictive(quick_sed_fit, method="other")


OUTLIER_EVENTS = [25, 21, 33, 30, 16, 38, 25, 23, 27, 6]
OUTLIER_TOTALS = [30, 25, 40, 35, 20, 45, 30, 28, 33, 40]


@pytest.mark.mcmc
def test_planted_outlier_study_is_flagged():
    """Nine studies near 83%, one at 6/40: only the planted study is flagged."""
    fit = ModelSpec.from_table(_table(OUTLIER_EVENTS, OUTLIER_TOTALS)).fit(QUICK)
    ppc = posterior_predictive(fit)
    assert ppc.flagged_studies == ["S10"]
    assert ppc.studies.set_index("study").loc["S10", "ppp"] > FLAG_HIGH  # lower than predicted
    # Why mixed replication: with its own fitted effect the outlier explains itself.
    conditional = posterior_predictive(fit, method="conditional")
    assert conditional.flagged_studies == []


@pytest.mark.slow
def test_ppc_pvalues_are_not_piled_up_on_data_simulated_from_the_model():
    """Over 60 data sets simulated from the model (10 studies each), the fraction of study
    p-values below 0.025 or above 0.975 is within the binomial band of its nominal 5%
    (one-sided: mixed p-values that include the study in the fit are, if anything,
    conservative), and the p-values are spread out, not collapsed at 0.5."""
    rng = np.random.default_rng(20261121)
    settings = SamplerSettings(draws=500, tune=500, chains=2, seed=5)
    n_sets, n_studies = 60, 10
    values = []
    for _ in range(n_sets):
        mu, tau = rng.normal(1.0, 0.5), abs(rng.normal(0.0, 0.6))
        totals = rng.integers(10, 60, n_studies)
        events = rng.binomial(totals, expit(mu + tau * rng.standard_normal(n_studies)))
        fit = ModelSpec.from_table(_table(events, totals)).fit(settings)
        values += posterior_predictive(fit).studies["ppp"].tolist()
    values = np.array(values)
    extreme = int(np.sum((values < FLAG_LOW) | (values > FLAG_HIGH)))
    n = values.size
    assert extreme <= stats.binom.ppf(0.999, n, 0.05), (extreme, n)
    assert values.std() > 0.15
    assert 0.35 < values.mean() < 0.65


# ---------------------------------------------------------------------- new centre
def _mcse(values: np.ndarray) -> float:
    """Monte Carlo SE of the mean of draws shaped (chain, draw)."""
    return float(az.mcse(az.convert_to_dataset(np.asarray(values, dtype=float)))["x"])


@pytest.mark.mcmc
def test_new_centre_matches_direct_simulation(quick_sed_fit):
    """Show it: the predictive of the count at a new centre equals the direct computation
    (posterior draws of the new-study rate, then Binomial(N, rate)) within 4 MCSE."""
    n = 50
    fit = quick_sed_fit
    prediction = new_centre_prediction(fit, n)
    post = fit.posterior
    rng = np.random.default_rng(99)
    z = rng.standard_normal(post["tau"].shape)
    for label in fit.spec.subgroups:
        eta = (post["mu"] + post["alpha"].sel(subgroup=label)).values
        rate = expit(eta + post["tau"].values * z)  # (chain, draw), independent z
        count = rng.binomial(n, rate)
        ours_rate = prediction.rate_draws.sel(subgroup=label).values
        ours_count = n * ours_rate
        summary = prediction.summary.set_index(["subgroup", "quantity"])
        mean = summary.loc[(label, "count"), "mean"]
        mcse = np.hypot(_mcse(count), _mcse(ours_count))
        assert abs(mean - count.mean()) < 4 * mcse, (label, mean, count.mean(), mcse)
        for k in (30, 40, 45, 48, 50):
            hit = (count >= k).astype(float)
            exact_per_draw = stats.binom.sf(k - 1, n, ours_rate)
            mcse = np.hypot(_mcse(hit), _mcse(exact_per_draw))
            p_ours = prediction.prob_at_least(k, label)
            assert abs(p_ours - hit.mean()) < 4 * mcse + 1e-9, (label, k, p_ours, hit.mean())


@pytest.mark.mcmc
def test_new_centre_distribution_is_proper(quick_sed_fit):
    prediction = new_centre_prediction(quick_sed_fit, 20)
    labels = prediction.rate_draws["subgroup"].values.tolist()
    assert labels == [*quick_sed_fit.spec.subgroups, "overall"]
    for label in labels:
        assert prediction.pmf[label].sum() == pytest.approx(1.0, abs=1e-12)
        exceed = prediction.exceedance[label].to_numpy()
        assert exceed[0] == pytest.approx(1.0)
        assert (np.diff(exceed) <= 1e-12).all()
    count = prediction.summary[prediction.summary["quantity"] == "count"]
    assert (count["lower"] <= count["median"]).all() and (count["upper"] <= 20).all()
    with pytest.raises(SpecError):
        new_centre_prediction(quick_sed_fit, 0)
    with pytest.raises(SpecError):
        new_centre_prediction(quick_sed_fit, 10, subgroups=["nope"])


@pytest.mark.mcmc
def test_new_centre_single_group_has_no_overall_copy():
    fit = ModelSpec.from_table(_table(OUTLIER_EVENTS[:6], OUTLIER_TOTALS[:6])).fit(QUICK)
    prediction = new_centre_prediction(fit, 10)
    assert prediction.rate_draws["subgroup"].values.tolist() == ["all"]
