"""Trial design: assurance and interim predictive probability (no MCMC)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from scipy.special import expit, logit

from bayes_poem import DataError, SpecError
from bayes_poem.trials import (
    BetaPrior,
    DecisionRule,
    assurance,
    assurance_from_meta,
    assurance_normal_approximation,
    interim_predictive_probability,
    interim_predictive_probability_exact,
)
from bayes_poem.trials.binary import exact_prob_noninferior

SIZES = [25, 100, 400, 1600, 6400]


@pytest.mark.parametrize(("m", "s", "baseline", "kind", "check_shrinking"), [
    (0.0, 0.4, 0.85, "benefit", True),
    (0.2, 0.3, 0.15, "harm", False),
])
def test_assurance_converges_to_its_normal_approximation(m, s, baseline, kind,
                                                         check_shrinking):
    """Show it (3). theta_new ~ N(m, s^2) exactly, so the closed form is exact as N grows;
    at small N (discrete data, Beta posteriors, linearisation) it is measurably off."""
    theta = m + s * np.random.default_rng(5).standard_normal(400_000)
    result = assurance(n_per_arm=SIZES, theta_new=theta, baseline=baseline, margin=0.1,
                       kind=kind, simulations=10_000, seed=1)
    curve = result.curve
    diff = (curve["assurance"] - curve["normal_approximation"]).abs().to_numpy()
    mcse = curve["mcse"].to_numpy()
    # large N: simulation and closed form agree within Monte Carlo error
    assert diff[-1] < 4 * mcse[-1], (diff, mcse)
    assert diff[-2] < 4 * mcse[-2], (diff, mcse)
    # the limit is P(theta_new beyond theta_delta), the closed form at N = infinity
    p_delta = baseline - 0.1 if kind == "benefit" else baseline + 0.1
    theta_delta = logit(p_delta) - logit(baseline)
    limit = float(np.mean(theta > theta_delta) if kind == "benefit" else
                  np.mean(theta < theta_delta))
    far = assurance_normal_approximation([1e9], theta_mean=theta.mean(),
                                         theta_sd=theta.std(), baseline=baseline, margin=0.1,
                                         kind=kind)
    assert far[0] == pytest.approx(limit, abs=2e-3)
    # assurance increases with N, towards that limit
    assert np.all(np.diff(curve["assurance"]) > 0)
    assert np.all(curve["assurance"] < limit + 4 * mcse)
    if check_shrinking:
        assert diff[0] > 4 * mcse[0]           # the approximation is off at N = 25 ...
        assert diff[0] > 3 * diff[-1]          # ... and the difference shrinks
        assert diff[:2].mean() > 2 * diff[-2:].mean()


def test_normal_approximation_formula():
    # with no uncertainty about theta it is the frequentist power of the normal test
    base, margin, n = 0.85, 0.1, 200
    p_d = base - margin
    sigma_n = math.sqrt((base * (1 - base) + p_d * (1 - p_d)) / n) / (p_d * (1 - p_d))
    value = assurance_normal_approximation([n], theta_mean=0.0, theta_sd=0.0, baseline=base,
                                           margin=margin)
    theta_d = logit(p_d) - logit(base)
    from scipy.stats import norm

    assert value[0] == pytest.approx(norm.cdf(-theta_d / sigma_n - norm.ppf(0.975)))
    assert np.isnan(assurance_normal_approximation([n], theta_mean=0, theta_sd=1,
                                                   baseline=0.05, margin=0.1))[0]


def test_decision_rule_uses_the_exact_probability():
    rule = DecisionRule(0.1, "benefit", 0.975, BetaPrior(1, 1))
    x_a = np.array([80, 85, 90, 70])
    x_p = np.array([78, 80, 70, 75])
    probs = rule.probability(x_a, 100, x_p, 100)
    expected = [exact_prob_noninferior((1 + a, 101 - a), (1 + p, 101 - p), 0.1)
                for a, p in zip(x_a, x_p, strict=True)]
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_array_equal(rule.success(x_a, 100, x_p, 100), np.array(expected) > 0.975)
    assert rule.statement == ("P(p_posterior - p_anterior > -0.1) > 0.975 with Beta(1, 1) "
                              "priors")


@pytest.mark.parametrize(("anterior", "posterior", "n", "margin", "kind"), [
    ((54, 60), (53, 60), 150, 0.10, "benefit"),
    ((40, 45), (38, 45), 100, 0.08, "benefit"),
    ((6, 50), (4, 50), 120, 0.05, "harm"),
    ((3, 20), (9, 25), 60, 0.15, "harm"),
])
def test_interim_simulation_matches_beta_binomial_enumeration(anterior, posterior, n, margin,
                                                             kind):
    sim = interim_predictive_probability(anterior=anterior, posterior=posterior, n_per_arm=n,
                                         margin=margin, kind=kind, simulations=20_000, seed=2)
    exact = interim_predictive_probability_exact(anterior=anterior, posterior=posterior,
                                                 n_per_arm=n, margin=margin, kind=kind)
    se = math.sqrt(exact * (1 - exact) / 20_000)
    assert abs(sim.predictive_probability - exact) <= 4 * se + 1e-12
    summary = sim.summary()
    assert summary["interval"].iloc[0] == "95% Monte Carlo interval"
    assert 0 <= summary["current_p_noninferior"].iloc[0] <= 1


def test_interim_at_the_final_size_is_the_final_decision():
    result = interim_predictive_probability(anterior=(90, 100), posterior=(89, 100),
                                            n_per_arm=100, margin=0.1, simulations=100)
    assert result.predictive_probability == float(result.current_p_noninferior > 0.975)


def test_assurance_from_a_meta_analysis_result():
    rng = np.random.default_rng(0)
    shape = (2, 500)
    fake = SimpleNamespace(
        theta_new_draws=lambda: rng.normal(0.0, 0.3, size=1000),
        draws=xr.Dataset({"p_anterior": (("chain", "draw"), rng.beta(78, 9, size=shape))}),
        studies=["A", "B"], pooled_anterior=(78.0, 9.0), outcome="clinical_success",
        kind="benefit")
    pooled = assurance_from_meta(fake, n_per_arm=[50, 200], margin=0.1, simulations=2000)
    fixed = assurance_from_meta(fake, n_per_arm=[50, 200], margin=0.1, baseline=0.9,
                                simulations=2000)
    assert "pooled anterior rate of A, B" in pooled.baseline
    assert fixed.baseline == "fixed anterior rate 0.9"
    assert (pooled.curve["assurance"].diff().dropna() > 0).all()
    assert pooled.summary().columns.tolist() == ["n_per_arm", "assurance", "mcse", "lower",
                                                 "upper", "interval", "normal_approximation",
                                                 "simulations"]


def test_assurance_uses_common_random_numbers_and_seeds():
    theta = np.random.default_rng(1).normal(0, 0.4, 5000)
    one = assurance(n_per_arm=[60, 80], theta_new=theta, baseline=0.9, margin=0.1, seed=3,
                    simulations=500)
    two = assurance(n_per_arm=[60, 80], theta_new=theta, baseline=0.9, margin=0.1, seed=3,
                    simulations=500)
    assert one.curve.equals(two.curve)
    p_p = expit(logit(0.9) + theta)
    assert p_p.min() > 0


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: interim_predictive_probability(anterior=(50, 60), posterior=(50, 200),
                                            n_per_arm=150, margin=0.1),
     DataError, "200 patients observed but only 150 per arm planned"),
    (lambda: interim_predictive_probability(anterior=(0, 0), posterior=(5, 10),
                                            n_per_arm=150, margin=0.1),
     DataError, "total is 0: an arm with no patients"),
    (lambda: interim_predictive_probability(anterior=(11, 10), posterior=(5, 10),
                                            n_per_arm=150, margin=0.1),
     DataError, r"events \(11\) > total \(10\)"),
    (lambda: interim_predictive_probability(anterior=(5, 10), posterior=(5, 10),
                                            n_per_arm=150, margin=-0.1),
     SpecError, "margin: must be > 0"),
    (lambda: assurance(n_per_arm=[0], theta_new=[0.0], baseline=0.9, margin=0.1),
     SpecError, r"n_per_arm\[0\]: must be >= 1"),
    (lambda: assurance(n_per_arm=[10], theta_new=[0.0], baseline=1.2, margin=0.1),
     SpecError, "baseline: the anterior rate must be strictly between 0 and 1"),
    (lambda: assurance(n_per_arm=[10], theta_new=[0.0], baseline=0.9, margin=0.1,
                       threshold=1.0),
     SpecError, "threshold: must be strictly between 0 and 1"),
    (lambda: assurance(n_per_arm=[10], theta_new=[0.0], baseline=0.9, margin=-0.1),
     SpecError, "margin: must be > 0"),
])
def test_bad_design_inputs(call, error, message):
    with pytest.raises(error, match=message):
        call()
