"""Show it (2): the normal-normal random-effects model, sampled with nutpie from its
compiled kernel, agrees with its exact posterior within 4 Monte Carlo standard errors.

Exact posterior: with mu ~ N(m0, s0^2), the marginal y_s | tau ~ N(mu, se_s^2 + tau^2)
is integrated over mu analytically; p(tau | y) is evaluated on a fine grid and
mu | tau, y is normal, so p(mu | y) is a grid mixture of normals.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import cauchy, halfnorm, norm

from bayes_poem.priors import Prior
from bayes_poem.sampling import SamplerSettings
from bayes_poem.trials import random_effects_meta
from tests.helpers import assert_matches_exact

Y = np.array([0.35, -0.10, 0.60, 0.15, 0.90, -0.30])
SE = np.array([0.30, 0.25, 0.40, 0.20, 0.35, 0.30])


class ExactNormalNormal:
    """Exact posterior of (mu, tau) on a tau grid; mu integrated analytically."""

    def __init__(self, y, se, m0, s0, log_tau_prior, tau_max, n_grid):
        tau = np.linspace(0.0, tau_max, n_grid)
        v = se[None, :] ** 2 + tau[:, None] ** 2
        prec = 1.0 / s0**2 + (1.0 / v).sum(axis=1)
        mean = (m0 / s0**2 + (y[None, :] / v).sum(axis=1)) / prec
        log_marginal = (-0.5 * np.log(2 * np.pi * v).sum(axis=1)
                        - 0.5 * (y[None, :] ** 2 / v).sum(axis=1)
                        - 0.5 * m0**2 / s0**2 - np.log(s0) - 0.5 * np.log(prec)
                        + 0.5 * mean**2 * prec)
        log_post = log_tau_prior(tau) + log_marginal
        dens = np.exp(log_post - log_post.max())
        weights = np.full(n_grid, tau[1] - tau[0])
        weights[[0, -1]] *= 0.5  # trapezoid
        w = dens * weights
        self.w = w / w.sum()
        self.tau, self.mu_mean, self.mu_sd = tau, mean, np.sqrt(1.0 / prec)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(tau))])
        self.tau_cdf = cdf / cdf[-1]

    def mean(self, param):
        return float(self.w @ (self.mu_mean if param == "mu" else self.tau))

    def quantile(self, param, q):
        if param == "tau":
            return float(np.interp(q, self.tau_cdf, self.tau))

        def cdf(x):
            return float(self.w @ norm.cdf((x - self.mu_mean) / self.mu_sd)) - q

        return brentq(cdf, -20, 20, xtol=1e-12)


def _halfnormal(sigma):
    return lambda tau: halfnorm.logpdf(tau, scale=sigma)


@pytest.mark.mcmc
def test_normal_normal_mcmc_matches_exact_posterior():
    priors = {"mu": Prior("Normal", {"mu": 0.0, "sigma": 1.0}),
              "tau": Prior("HalfNormal", {"sigma": 0.5})}
    settings = SamplerSettings(draws=5000, tune=1000, chains=4, seed=2022)
    result = random_effects_meta(Y, SE, priors=priors, settings=settings, outcome="synthetic")
    assert result.diagnostics.ok, result.diagnostics.problems
    exact = ExactNormalNormal(Y, SE, 0.0, 1.0, _halfnormal(0.5), 6.0, 40_001)
    coarse = ExactNormalNormal(Y, SE, 0.0, 1.0, _halfnormal(0.5), 6.0, 20_001)
    assert_matches_exact(result.idata.posterior, exact, coarse)
    # refits with new data, prior scales and families compile nothing (the cached kernel)
    import nutpie
    import pytensor

    from bayes_poem.trials import meta

    def forbidden(*args, **kwargs):
        raise AssertionError("a refit tried to compile")

    with pytest.MonkeyPatch.context() as patch:
        for module, name in ((nutpie, "compile_pymc_model"), (pytensor, "function"),
                             (meta, "normal_model")):
            patch.setattr(module, name, forbidden)
        refit = random_effects_meta(
            Y + 1.0, SE, priors={"mu": {"dist": "Normal", "mu": 0.0, "sigma": 5.0},
                                 "tau": {"dist": "LogNormalTau2", "mu": -2.0, "sigma": 1.0}},
            settings=SamplerSettings(draws=500, tune=500, chains=2, seed=1))
    assert float(refit.idata.posterior["mu"].mean()) > 0.8
    summary = result.summary()
    assert summary["quantity"].tolist() == ["mu", "tau", "mu_new"]
    assert (summary["interval"] == "95% ETI").all()


@pytest.mark.slow
def test_normal_normal_with_half_cauchy_tau_matches_exact_posterior():
    y = np.array([1.2, -0.4, 0.8, 2.0, 0.1, -1.1, 0.6, 1.5])
    se = np.array([0.5, 0.6, 0.4, 0.9, 0.3, 0.7, 0.5, 0.8])
    priors = {"mu": Prior("Normal", {"mu": 0.5, "sigma": 2.0}),
              "tau": Prior("HalfCauchy", {"beta": 0.5})}
    settings = SamplerSettings(draws=10_000, tune=1500, chains=4, seed=7)
    result = random_effects_meta(y, se, priors=priors, settings=settings)
    assert result.diagnostics.ok, result.diagnostics.problems

    def log_prior(tau):
        return np.log(2.0) + cauchy.logpdf(tau, scale=0.5)

    exact = ExactNormalNormal(y, se, 0.5, 2.0, log_prior, 200.0, 400_001)
    coarse = ExactNormalNormal(y, se, 0.5, 2.0, log_prior, 200.0, 200_001)
    assert_matches_exact(result.idata.posterior, exact, coarse)
