"""Tier 3 (slow): MCMC agrees with the exact posterior computed by quadrature.

Single-group model, mu ~ Normal(0, 1.5), tau ~ HalfNormal(0.5). For the mean
and the 2.5/50/97.5% quantiles of mu and tau, |MCMC - exact| < 4 Monte Carlo
standard errors (ArviZ ``mcse``; quantile MCSE by Vehtari et al. 2021). The
quadrature itself is checked for convergence (doubling nodes and grid points).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.special import expit
from scipy.stats import binom, norm

from bayes_poem import ModelSpec, Prior, load_dataset
from bayes_poem.sampling import SamplerSettings
from tests.helpers import assert_matches_exact
from tests.quadrature import (
    exact_posterior,
    exact_regression_posterior,
    log_marginal_likelihood,
)

PRIORS = {"mu": Prior("Normal", {"mu": 0.0, "sigma": 1.5}),
          "tau": Prior("HalfNormal", {"sigma": 0.5})}


def _data(name):
    table = load_dataset(name)
    if name == "nielweise2007":
        table = table.with_subgroups(["control"])
    return table


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rat_tumors", "nielweise2007"])
def test_mcmc_matches_quadrature(name):
    table = _data(name)
    spec = ModelSpec.from_table(table, subgroup_effects="none", priors=PRIORS)
    arrays = spec.arrays()
    coarse = exact_posterior(arrays["events"], arrays["total"], tau_sigma=0.5)
    exact = exact_posterior(arrays["events"], arrays["total"], tau_sigma=0.5,
                            n_mu=350, n_log_tau=350, n_nodes=30)
    result = spec.fit(SamplerSettings(draws=5000, tune=1000, chains=4, seed=2024))
    assert_matches_exact(result.idata.posterior, exact, coarse)


@pytest.mark.parametrize(("mu", "tau"), [(-3.3, 1.2), (-4.0, 1.5), (-3.5, 0.01), (0.5, 3.0)])
def test_adaptive_quadrature_matches_brute_force_integral(mu, tau):
    """Tier 1 check of the test's own integrator against a dense trapezoid rule.

    (-4.0, 1.5) is where an undamped Newton search for the mode once diverged.
    """
    table = load_dataset("nielweise2007").with_subgroups(["control"])
    events, total = table.frame["events"].to_numpy(), table.frame["total"].to_numpy()
    z = np.linspace(-15, 15, 300_001)
    eta = mu + tau * z
    brute = sum(np.log(np.trapezoid(binom.pmf(y, n, expit(eta)) * norm.pdf(z), z))
                for y, n in zip(events, total, strict=True))
    agh = log_marginal_likelihood(events, total, np.array([[mu]]), np.array([[tau]]),
                                  n_nodes=40)[0, 0]
    # 1e-6 in the log-likelihood moves posterior summaries by ~1e-6: far below any MCSE.
    np.testing.assert_allclose(agh, brute, rtol=0, atol=1e-6)


def test_regression_quadrature_reduces_to_the_two_parameter_posterior():
    """Tier 1 check of the 3-d integrator used for the moderator model: with x = 0 the
    slope's posterior is its prior and (beta0, tau) is the model without moderator."""
    table = load_dataset("nielweise2007").with_subgroups(["control"])
    events, total = table.frame["events"].to_numpy(), table.frame["total"].to_numpy()
    two = exact_posterior(events, total, tau_sigma=0.5)
    three = exact_regression_posterior(events, total, np.zeros(len(events)), tau_sigma=0.5,
                                       beta1_prior=(0.0, 1.0), n_coarse=25,
                                       n_grid=(30, 24, 30))
    for name, other in (("beta0", "mu"), ("tau", "tau")):
        assert abs(three.mean(name) - two.mean(other)) < 1e-6
        for q in (0.025, 0.5, 0.975):
            assert abs(three.quantile(name, q) - two.quantile(other, q)) < 1e-3
    assert abs(three.mean("beta1")) < 1e-9
    for q in (0.025, 0.5, 0.975):
        assert abs(three.quantile("beta1", q) - norm.ppf(q)) < 1e-3


@pytest.mark.slow
def test_mcmc_matches_quadrature_with_a_numeric_moderator():
    """Meta-regression (issue 10): dat.debruin2009 (real data) with the moderator scq.

    logit p_s = mu + beta x_s + tau z_s with x_s = (scq_s - centre) / scale as the
    spec codes it; mu ~ Normal(0, 1.5), beta ~ Normal(0, 1), tau ~ HalfNormal(0.5).
    The exact posterior of (mu, beta, tau) integrates each study's effect by
    adaptive Gauss-Hermite quadrature on a 3-d grid; every mean and 2.5/50/97.5%
    quantile must lie within 4 MCSE of it (a coarser grid bounds the quadrature error).
    """
    priors = {**PRIORS, "beta": Prior("Normal", {"mu": 0.0, "sigma": 1.0})}
    spec = ModelSpec.from_table(load_dataset("debruin2009"), subgroup_effects="none",
                                priors=priors, moderators=["scq"])
    arrays = spec.arrays()
    x = spec.design()[:, 0]
    moderator = spec.moderators[0]
    raw = spec.table.frame["scq"].astype(float).to_numpy()
    np.testing.assert_allclose(x, (raw - moderator.centre) / moderator.scale)
    exact = exact_regression_posterior(arrays["events"], arrays["total"], x, tau_sigma=0.5,
                                       n_coarse=41, n_grid=(64, 64, 64), n_nodes=20)
    coarse = exact_regression_posterior(arrays["events"], arrays["total"], x, tau_sigma=0.5,
                                        n_coarse=31, n_grid=(44, 44, 44), n_nodes=16)
    result = spec.fit(SamplerSettings(draws=5000, tune=1000, chains=4, seed=2025))
    posterior = result.idata.posterior
    draws = xr.Dataset({"beta0": posterior["mu"], "beta1": posterior["beta"].isel(moderator=0),
                        "tau": posterior["tau"]})
    assert_matches_exact(draws, exact, coarse, params=("beta0", "beta1", "tau"))
