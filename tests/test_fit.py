"""Tier 2: sampling behaviour (few draws, fixed seeds): not exact numbers."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import bayes_poem
from bayes_poem import ConvergenceWarning, ModelSpec, Prior, load_dataset
from bayes_poem.dims import STUDY, SUBGROUP
from bayes_poem.sampling import SamplerSettings


@pytest.mark.mcmc
def test_fit_returns_named_dims_and_provenance(sed_spec, quick):
    result = sed_spec.fit(quick)
    post = result.idata.posterior
    assert set(post.data_vars) == {"mu", "tau", "w", "u", "sigma_subgroup", "z", "alpha"}
    assert post["u"].dims == ("chain", "draw", STUDY)
    assert post["alpha"].dims == ("chain", "draw", SUBGROUP)
    assert list(post[STUDY].values) == sed_spec.studies
    assert list(post[SUBGROUP].values) == sed_spec.subgroups
    attrs = post.attrs
    assert attrs["bayes_poem_version"] == bayes_poem.__version__
    assert attrs["data_hash"] == sed_spec.table.data_hash()
    assert json.loads(attrs["priors"])["tau"] == {"dist": "HalfNormal", "sigma": 1.0}
    assert attrs["synthetic_data"] == "true"
    assert "observed_data" in result.idata.groups()
    np.testing.assert_array_equal(result.idata.observed_data["y"], sed_spec.arrays()["events"])


@pytest.mark.mcmc
def test_same_seed_same_draws_other_seed_other_draws(sed_spec, quick):
    first = sed_spec.fit(quick).idata.posterior["mu"].values
    again = sed_spec.fit(quick).idata.posterior["mu"].values
    other = sed_spec.fit(quick, seed=12).idata.posterior["mu"].values
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.mcmc
def test_refits_never_compile(sed_spec, quick, monkeypatch):
    """Other data, priors and structure reuse the disk-cached density: no compilation."""
    import nutpie
    import pytensor

    sed_spec.fit(quick)  # make sure the cached functions are loaded

    def forbidden(*args, **kwargs):
        raise AssertionError("a refit tried to compile")

    monkeypatch.setattr(nutpie, "compile_pymc_model", forbidden)
    monkeypatch.setattr(pytensor, "function", forbidden)
    variants = [
        sed_spec.with_priors(tau=Prior("HalfNormal", {"sigma": 0.3})),
        sed_spec.with_priors(tau=Prior("HalfCauchy", {"beta": 0.5})),
        sed_spec.without_study("SYN-06"),
        sed_spec.with_options(subgroup_effects="fixed"),
        sed_spec.with_options(study_effects="common"),
        ModelSpec.from_table(load_dataset("rat_tumors")),
    ]
    for variant in variants:
        result = variant.fit(quick)
        assert result.idata.posterior.sizes["draw"] == quick.draws


@pytest.mark.mcmc
def test_prior_hyperparameter_moves_posterior(sed_spec, quick):
    tight = sed_spec.with_priors(tau=Prior("HalfNormal", {"sigma": 0.05})).fit(quick)
    loose = sed_spec.fit(quick)
    assert float(tight.idata.posterior["tau"].mean()) < float(loose.idata.posterior["tau"].mean())
    assert float(tight.idata.posterior["tau"].quantile(0.99)) < 0.2


@pytest.mark.mcmc
def test_pymc_backend_gives_same_variables(sed_spec):
    settings = SamplerSettings(draws=200, tune=200, chains=2, seed=3, backend="pymc")
    result = sed_spec.fit(settings)
    assert set(result.idata.posterior.data_vars) == {
        "mu", "tau", "w", "u", "sigma_subgroup", "z", "alpha"}
    assert list(result.idata.posterior[STUDY].values) == sed_spec.studies


@pytest.mark.mcmc
def test_backends_agree_on_posterior_mean(sed_spec):
    """Both backends target the same posterior: means agree within 4 MC standard errors."""
    import arviz as az

    nut = sed_spec.fit(SamplerSettings(draws=1000, tune=1000, chains=2, seed=1))
    pmc = sed_spec.fit(SamplerSettings(draws=1000, tune=1000, chains=2, seed=1, backend="pymc"))
    for name in ("mu", "tau"):
        se = np.hypot(float(az.mcse(nut.idata.posterior[[name]])[name]),
                      float(az.mcse(pmc.idata.posterior[[name]])[name]))
        diff = abs(float(nut.idata.posterior[name].mean() - pmc.idata.posterior[name].mean()))
        assert diff < 4 * se, (name, diff, se)


@pytest.mark.mcmc
def test_poor_sampling_warns_and_is_reported(sed_spec):
    settings = SamplerSettings(draws=15, tune=5, chains=2, seed=1)
    with pytest.warns(ConvergenceWarning, match="sampler diagnostics"):
        result = sed_spec.fit(settings)
    assert not result.diagnostics.ok
    assert any("ess bulk" in p for p in result.diagnostics.problems)


@pytest.mark.parametrize("name", ["sed_synthetic", "sed_published_studies", "rat_tumors",
                                  "nielweise2007", "poem_anterior_posterior_rcts"])
@pytest.mark.mcmc
def test_default_models_sample_every_dataset_without_divergences(name):
    table = load_dataset(name)
    for outcome in table.outcomes:
        spec = ModelSpec.from_table(table, outcome)
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            result = spec.fit(SamplerSettings(seed=7))
        assert result.diagnostics.divergences == 0, (name, outcome)
        assert result.diagnostics.ok, (name, outcome, result.diagnostics.problems)
