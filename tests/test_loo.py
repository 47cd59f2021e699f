"""Leave-one-study-out cross-validation (bayes_poem.loo)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.integrate import trapezoid
from scipy.special import expit

from bayes_poem import ModelSpec, load_dataset, load_table
from bayes_poem.loo import (
    K_THRESHOLD,
    compare_likelihoods,
    exact_study_elpd,
    integrated_study_log_likelihood,
    likelihood_variants,
    loo_idata,
    psis_loo,
    study_log_likelihood,
)
from bayes_poem.predictive import row_draws
from bayes_poem.sampling import SamplerSettings

pytestmark = pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")

QUICK = SamplerSettings(draws=500, tune=500, chains=2, seed=23)


@pytest.fixture(scope="module")
def sed_quick(sed_spec):
    return sed_spec.fit(QUICK)


@pytest.fixture(scope="module")
def rats_fit():
    spec = ModelSpec.from_table(load_dataset("rat_tumors"))
    return spec.fit(SamplerSettings(draws=1000, tune=1000, chains=2, seed=1982))


@pytest.mark.mcmc
def test_conditional_study_log_likelihood_sums_the_rows(sed_quick):
    loglik = study_log_likelihood(sed_quick, integrate=False)
    assert loglik.dims == ("chain", "draw", "study")
    assert loglik["study"].values.tolist() == sed_quick.spec.studies
    draws = row_draws(sed_quick)
    p = expit(draws.base + draws.u)
    rows = stats.binom.logpmf(draws.events, draws.total, p)
    for s, study in enumerate(sed_quick.spec.studies):
        expected = rows[..., draws.study_idx == s].sum(-1)
        np.testing.assert_allclose(loglik.sel(study=study).values, expected, rtol=1e-10)


def test_integrated_log_likelihood_matches_brute_force_integration():
    """Adaptive Gauss-Hermite against a fine trapezoid grid, small and very large studies."""
    rng = np.random.default_rng(4)
    events = np.array([3, 7, 1, 1800, 40])
    total = np.array([10, 9, 12, 2000, 50])
    member = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]], dtype=float)
    base = rng.normal(0.5, 1.0, size=(6, 5))
    tau = np.array([0.05, 0.3, 1.0, 2.0, 3.0, 0.7])
    ours = integrated_study_log_likelihood(base, tau, events, total, member)
    x = np.linspace(-12, 12, 200001)
    for d in range(base.shape[0]):
        for s in range(member.shape[1]):
            rows = member[:, s] > 0
            eta = base[d, rows][:, None] + tau[d] * x[None, :]
            log_f = stats.binom.logpmf(events[rows][:, None], total[rows][:, None],
                                       expit(eta)).sum(0) + stats.norm.logpdf(x)
            peak = log_f.max()
            expected = peak + np.log(trapezoid(np.exp(log_f - peak), x))
            assert ours[d, s] == pytest.approx(expected, abs=1e-6), (d, s)


@pytest.mark.mcmc
def test_psis_loo_table_and_totals(sed_quick):
    result = psis_loo(sed_quick, refit=False)
    table = result.table
    assert table["study"].tolist() == sed_quick.spec.studies
    assert {"elpd_psis", "pareto_k", "high_k", "elpd_exact", "elpd", "method",
            "loo_pit"} <= set(table.columns)
    assert result.integrated
    assert result.elpd == pytest.approx(table["elpd"].sum())
    assert table["loo_pit"].between(0, 1).all()
    assert (table["high_k"] == (table["pareto_k"] > K_THRESHOLD)).all()
    import arviz as az

    reference = az.loo(loo_idata(sed_quick), pointwise=True)
    assert result.elpd == pytest.approx(float(reference.elpd_loo))


@pytest.mark.mcmc
def test_integrated_psis_agrees_with_exact_refits(rats_fit):
    """The integrated PSIS estimate equals the exact leave-one-study-out value."""
    result = psis_loo(rats_fit, refit=False)
    assert result.table["pareto_k"].max() < 0.5
    table = result.table.set_index("study")
    for study in ("1", "40", "67"):
        exact, pit, problems = exact_study_elpd(rats_fit, study, z_per_draw=64)
        assert exact == pytest.approx(table.loc[study, "elpd_psis"], abs=0.05), study
        assert pit == pytest.approx(table.loc[study, "loo_pit"], abs=0.05), study


@pytest.mark.mcmc
def test_high_k_studies_are_refitted(sed_quick):
    threshold = float(np.sort(psis_loo(sed_quick, refit=False).table["pareto_k"])[-3])
    result = psis_loo(sed_quick, k_threshold=threshold - 1e-9)
    table = result.table
    refitted = table[table["method"] == "refit"]
    assert len(refitted) == 3
    assert refitted["high_k"].all() and not table.loc[~table["high_k"], "elpd_exact"].notna().any()
    np.testing.assert_allclose(refitted["elpd"], refitted["elpd_exact"])
    assert (np.abs(refitted["elpd_exact"] - refitted["elpd_psis"]) < 0.5).all()
    assert result.elpd == pytest.approx(table["elpd"].sum())
    assert float(result.elpd_data["elpd_loo"]) == pytest.approx(result.elpd)
    assert not result.elpd_data["warning"]


@pytest.mark.mcmc
def test_exact_refit_when_a_subgroup_occurs_only_in_the_held_out_study():
    frame = pd.DataFrame({
        "study": ["A", "A", "B", "B", "C", "C", "D"],
        "subgroup": ["x", "rare", "x", "y", "x", "y", "y"],
        "outcome": "success", "events": [8, 3, 9, 5, 7, 6, 4], "total": [10, 5, 11, 8, 9, 9, 7],
    })
    spec = ModelSpec.from_table(load_table(frame), subgroup_effects="random")
    fit = spec.fit(QUICK)
    elpd, pit, _ = exact_study_elpd(fit, "A")
    assert np.isfinite(elpd) and 0.0 <= pit <= 1.0


@pytest.mark.mcmc
def test_compare_likelihoods_includes_the_beta_binomial(sed_quick):
    names = list(likelihood_variants(sed_quick.spec))
    assert names == ["binomial-logit-normal", "common-effect binomial", "beta-binomial"]
    assert likelihood_variants(sed_quick.spec)["beta-binomial"].study_effects == "common"
    comparison = compare_likelihoods(sed_quick, refit=False)
    assert set(comparison.table["model"]) == set(names)
    assert comparison.fits["binomial-logit-normal"] is sed_quick
    assert {"elpd_loo", "elpd_diff", "dse", "weight"} <= set(comparison.table.columns)
    assert comparison.table["elpd_diff"].min() == 0.0


@pytest.mark.mcmc
def test_az_loo_on_the_written_posterior_agrees_with_the_report(sed_quick, tmp_path):
    """posterior.nc as 'bayes-poem run' writes it: az.loo of the file alone gives the
    report's PSIS-LOO (elpd, per-study elpd and Pareto k, same draws) and its prior
    group holds the hyperparameters."""
    import warnings

    import arviz as az

    from bayes_poem import results_dir as rd

    path = tmp_path / rd.POSTERIOR
    writers = rd.run_writers(sed_quick, spec_toml="", text="", contrasts=pd.DataFrame())
    writers[rd.POSTERIOR](path)
    idata = az.from_netcdf(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from_file = az.loo(idata, pointwise=True)
    report = psis_loo(sed_quick, refit=False)  # what report/sections/checks.py computes
    assert from_file.elpd_loo == pytest.approx(report.psis.elpd_loo, rel=1e-12)
    table = report.table.set_index("study")
    studies = idata.log_likelihood["study"].values.tolist()
    np.testing.assert_allclose(from_file.pareto_k.values, table.loc[studies, "pareto_k"],
                               rtol=1e-12)
    np.testing.assert_allclose(from_file.loo_i.values, table.loc[studies, "elpd_psis"],
                               rtol=1e-12)
    assert {"mu", "tau", "sigma_subgroup"} <= set(idata.prior.data_vars)
    assert idata.prior["tau"].shape == idata.posterior["tau"].shape
