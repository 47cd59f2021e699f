"""The joint result's arithmetic on hand-made draws (tier 1) and a real fit (tier 2)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest
import xarray as xr
from scipy.special import expit

from bayes_poem import load_dataset
from bayes_poem.diagnostics import Diagnostics
from bayes_poem.errors import SpecError
from bayes_poem.joint import JointSpec
from bayes_poem.joint_results import BenefitRisk, JointResult
from bayes_poem.sampling import SamplerSettings

SUBGROUPS = ["type_iii", "des", "jackhammer", "unassigned"]


def _hand_made(rho=0.0, tau=(0.0, 0.0), n_draws=4000, seed=0):
    """Draws with alpha known: subgroup A better than B on both outcomes in 3/4 of them."""
    spec = JointSpec.from_table(load_dataset("sed_synthetic"), subgroups=SUBGROUPS,
                                subgroup_effects="fixed")
    rng = np.random.default_rng(seed)
    mu = np.stack([np.full(n_draws, 1.5), np.full(n_draws, -2.0)], axis=-1)
    alpha = rng.normal(0.0, 0.5, size=(n_draws, 2, 4))
    coords = {"outcome": list(spec.outcomes), "subgroup": SUBGROUPS}
    post = xr.Dataset({
        "mu": (("chain", "draw", "outcome"), mu[None]),
        "tau": (("chain", "draw", "outcome"), np.broadcast_to(tau, (1, n_draws, 2)).copy()),
        "rho": (("chain", "draw"), np.full((1, n_draws), rho)),
        "alpha": (("chain", "draw", "outcome", "subgroup"), alpha[None]),
    }, coords=coords)
    diagnostics = Diagnostics(table=None, divergences=0, bfmi=(1.0,))
    return JointResult(spec=spec, idata=az.InferenceData(posterior=post),
                       settings=SamplerSettings(draws=n_draws, chains=1, seed=seed),
                       diagnostics=diagnostics), mu, alpha


def test_benefit_risk_and_contrasts_count_the_draws():
    result, mu, alpha = _hand_made()
    p = expit(mu[:, :, None] + alpha)  # tau = 0: the three quantities coincide
    br = result.benefit_risk
    table = result.benefit_risk_table()
    row = table[(table.subgroup == "des") & (table.quantity == "p_new")].iloc[0]
    good = (p[:, 0, 1] >= br.benefit_min) & (p[:, 1, 1] <= br.harm_max)
    assert row.p_both == pytest.approx(good.mean(), abs=1e-12)
    assert row.net_benefit_mean == pytest.approx((p[:, 0, 1] - p[:, 1, 1]).mean(), rel=1e-12)
    contrasts = result.joint_contrasts([("type_iii", "jackhammer")])
    both = (p[:, 0, 0] > p[:, 0, 2]) & (p[:, 1, 0] < p[:, 1, 2])
    assert contrasts.p_better_both.iloc[0] == pytest.approx(both.mean(), abs=1e-12)
    # independent alphas: P(better on both) ~ 1/4
    assert abs(contrasts.p_better_both.iloc[0] - 0.25) < 4 * np.sqrt(0.25 * 0.75 / len(p))
    with pytest.raises(SpecError, match="subgroup 'achalasia' is not in the data"):
        result.joint_contrasts([("type_iii", "achalasia")])


@pytest.mark.parametrize("rho", [-0.8, 0.0, 0.7])
def test_p_new_of_the_two_outcomes_is_correlated_by_rho(rho):
    result, _, _ = _hand_made(rho=rho, tau=(1.0, 1.0), n_draws=20000)
    eta = result._eta().values[0]
    p_new = result.probabilities()["p_new"].sel(subgroup="type_iii").values[0]
    z = np.log(p_new / (1 - p_new)) - eta[:, :, 0]
    r = np.corrcoef(z[:, 0], z[:, 1])[0, 1]
    assert abs(r - rho) < 4 * (1 - rho**2) / np.sqrt(len(z))  # SE of a correlation


def test_benefit_risk_validation_names_the_key():
    with pytest.raises(SpecError, match="benefit_risk.harm_max: must be a probability"):
        BenefitRisk(harm_max=1.5)
    with pytest.raises(SpecError, match="benefit_risk.benefit_weight: must be a finite"):
        BenefitRisk(benefit_weight=-1.0)
    with pytest.raises(SpecError, match="spec: unknown key 'benefit_risk.succes_min'"):
        BenefitRisk.from_mapping({"succes_min": 0.8})
    with pytest.raises(SpecError, match="benefit_risk.quantity"):
        BenefitRisk(quantity="p_median")


@pytest.mark.mcmc
@pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")  # short chains
def test_joint_fit_named_dims_provenance_and_tables():
    spec = JointSpec.from_table(load_dataset("sed_synthetic"), subgroups=SUBGROUPS)
    result = spec.fit(draws=200, tune=300, chains=2, seed=3)
    post = result.posterior
    assert post["u"].dims == ("chain", "draw", "outcome", "study")
    assert post["alpha"].dims == ("chain", "draw", "outcome", "subgroup")
    assert list(post["outcome"].values) == ["clinical_success", "adverse_event"]
    attrs = result.idata.posterior.attrs
    assert attrs["model"] == "joint" and attrs["synthetic_data"] == "true"
    assert attrs["data_hash"] == spec.table.data_hash()
    summary = result.outcome_summary()
    assert len(summary) == 2 * 5 * 3
    assert set(result.heterogeneity().parameter) == {"tau", "tau2", "sigma_subgroup", "rho"}
    again = spec.fit(draws=200, tune=300, chains=2, seed=3)
    np.testing.assert_array_equal(again.posterior["rho"].values, post["rho"].values)
