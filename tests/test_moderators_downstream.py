"""Moderators downstream of the fit: predictive checks, LOO, log-likelihood, log prior, report.

Every computation that rebuilds a row's linear predictor from draws must include
``x_i' beta`` (``bayes_poem.model_math.row_linear_predictor``). Tier 1 (no
sampling): hand-made draws (from the compiled density's own ``expand`` at random
points) checked against the PyMC reference model's pointwise log-likelihood, the
log prior against scipy, row draws, conditional PPC p-values, the integrated
study log-likelihood against a brute-force integral, an exact leave-one-out
refit (the refit replaced by hand-made draws), the new-centre and prior
predictive, and the report's model section. Tier 2 (``mcmc``): ``bayes-poem
report`` on a moderator spec, with its LOO and PPC computed with the term.
"""

from __future__ import annotations

import io

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from scipy.integrate import trapezoid
from scipy.special import expit

from bayes_poem import ModelSpec, Prior, SpecError, load_dataset, load_table
from bayes_poem.backends import compiled, density
from bayes_poem.diagnostics import Diagnostics
from bayes_poem.dims import MODERATOR, ROW, STUDY, SUBGROUP
from bayes_poem.loglik import log_prior, pointwise_log_likelihood, power_scaling
from bayes_poem.loo import exact_study_elpd, study_log_likelihood
from bayes_poem.model_math import row_linear_predictor
from bayes_poem.predictive import (
    new_centre_prediction,
    posterior_predictive,
    prior_predictive,
    row_draws,
)
from bayes_poem.results import FitResult
from bayes_poem.sampling import SamplerSettings
from tests.conftest import SED_ORDER
from tests.helpers import run_cli

SETTINGS = SamplerSettings(draws=300, tune=300, chains=2, seed=17)


def _spec(subgroup_effects="random", study_effects="random", likelihood="binomial"):
    """sed_synthetic clinical success with a numeric and a categorical moderator."""
    spec = ModelSpec.from_table(load_dataset("sed_synthetic"), "clinical_success",
                                subgroups=SED_ORDER, subgroup_effects=subgroup_effects,
                                study_effects=study_effects, likelihood=likelihood)
    return spec.with_moderators("year", "quality", reference={"quality": "good"}).with_priors(
        beta=Prior("Normal", {"sigma": 0.6}))


def _draws(spec, n_draws=6, seed=0, scale=0.8, chains=1):
    """Posterior-shaped draws from the compiled ``expand`` at random points.

    Returns the dataset and the unconstrained points (for the PyMC model)."""
    buffer = compiled.density_buffer(spec)
    n_dim, n_out = int(buffer[density.H_NDIM]), int(buffer[density.H_NEXPANDED])
    rng = np.random.default_rng(seed)
    points = rng.normal(scale=scale, size=(n_draws, n_dim))
    points[:, 0] += 0.8
    points[:, -len(spec.moderator_terms):] *= 2.0  # clearly non-zero coefficients
    out = np.zeros((n_draws, n_out))
    for j in range(n_draws):
        density.expand(points[j], buffer, out[j])
    variables, k = {}, 0
    coords = spec.coords
    for name, shape, dims in compiled.expanded_layout(spec):
        size = int(np.prod(shape))
        values = out[:, k:k + size].reshape(chains, n_draws // chains, *shape)
        variables[name] = (("chain", "draw", *dims), values)
        k += size
    used = {d for _, _, dims in compiled.expanded_layout(spec) for d in dims}
    post = xr.Dataset(variables, coords={d: coords[d] for d in used})
    return post, points


def _fit(spec, post):
    diagnostics = Diagnostics(pd.DataFrame({"r_hat": [1.0], "ess_bulk": [100.0],
                                            "ess_tail": [100.0]}), 0, (1.0,))
    return FitResult(spec=spec, idata=az.InferenceData(posterior=post),
                     settings=SamplerSettings(seed=3), diagnostics=diagnostics)


def _point(spec, x):
    point, k = {}, 0
    for name, shape in compiled.unconstrained_layout(spec):
        size = int(np.prod(shape))
        point[name] = x[k:k + size].reshape(shape)
        k += size
    return point


def _by_hand(spec, post, study_effects=True):
    """mu + alpha[d_i] + x_i' beta (+ u[s_i]) per draw and row, written out."""
    arrays = spec.arrays()
    eta = post["mu"].values[..., None] + np.zeros(len(arrays["events"]))
    if "alpha" in post:
        eta = eta + post["alpha"].transpose("chain", "draw", SUBGROUP).values[
            ..., arrays["subgroup_idx"]]
    beta = post["beta"].transpose("chain", "draw", MODERATOR).values
    eta = eta + np.einsum("cdk,rk->cdr", beta, spec.design())
    if study_effects and "u" in post:
        eta = eta + post["u"].transpose("chain", "draw", STUDY).values[..., arrays["study_idx"]]
    return eta


STRUCTURES = [("random", "random", "binomial"), ("fixed", "common", "binomial"),
              ("none", "random", "binomial"), ("random", "common", "beta_binomial")]


# ---------------------------------------------------------------------- (a) log-likelihood
@pytest.mark.parametrize("structure", STRUCTURES, ids="-".join)
def test_pointwise_log_likelihood_equals_the_pymc_model(structure):
    spec = _spec(*structure)
    post, points = _draws(spec)
    ours = pointwise_log_likelihood(_fit(spec, post))
    assert ours.dims == ("chain", "draw", ROW)
    model = spec.build()
    row_logp = model.compile_fn(model.logp(vars=[model["y"]], sum=False)[0],
                                inputs=model.value_vars, on_unused_input="ignore",
                                mode="FAST_COMPILE")
    for j, x in enumerate(points):
        np.testing.assert_allclose(ours.values[0, j], row_logp(_point(spec, x)), rtol=1e-9,
                                   atol=1e-9)


def test_zeroed_rows_with_moderators_contribute_zero_and_others_match_pymc():
    spec = _spec().leave_out("SYN-03")
    post, points = _draws(spec, seed=4)
    ours = pointwise_log_likelihood(_fit(spec, post)).values
    model = spec.build()
    row_logp = model.compile_fn(model.logp(vars=[model["y"]], sum=False)[0],
                                inputs=model.value_vars, on_unused_input="ignore",
                                mode="FAST_COMPILE")
    zeroed = list(spec.zeroed_rows)
    assert zeroed and (ours[..., zeroed] == 0.0).all()
    for j, x in enumerate(points):
        np.testing.assert_allclose(ours[0, j], row_logp(_point(spec, x)), rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------- (b) log prior
def test_log_prior_includes_the_beta_prior():
    spec = _spec()
    post, _ = _draws(spec, n_draws=8, seed=1)
    lp = log_prior(_fit(spec, post))
    assert "beta" in lp and lp["beta"].dims == ("chain", "draw", MODERATOR)
    beta = post["beta"].transpose("chain", "draw", MODERATOR).values
    np.testing.assert_allclose(lp["beta"].values, stats.norm.logpdf(beta, 0.0, 0.6))
    total = sum(lp[name].values.reshape(1, 8, -1).sum(-1) for name in lp.data_vars)
    expected = (stats.norm.logpdf(post["mu"].values, 0.0, 1.5)
                + stats.halfnorm.logpdf(post["tau"].values, scale=1.0)
                + stats.halfnorm.logpdf(post["sigma_subgroup"].values, scale=1.0)
                + stats.norm.logpdf(beta, 0.0, 0.6).sum(-1))
    np.testing.assert_allclose(total, expected)


def test_power_scaling_reports_every_moderator_coefficient():
    spec = _spec()
    post, _ = _draws(spec, n_draws=400, seed=2, scale=0.3, chains=2)
    table = power_scaling(_fit(spec, post))
    rows = [f"beta[{term}]" for term in spec.moderator_terms]
    assert set(rows) <= set(table["parameter"])


def test_a_posterior_without_beta_is_refused_for_a_moderator_model():
    spec = _spec()
    post, _ = _draws(spec)
    with pytest.raises(SpecError, match="no coefficients 'beta'"):
        row_draws(_fit(spec, post.drop_vars("beta")))
    with pytest.raises(SpecError, match="no coefficients 'beta'"):
        log_prior(_fit(spec, post.drop_vars("beta")))


# ---------------------------------------------------------------------- (c) row draws, PPC
@pytest.mark.parametrize("structure", STRUCTURES, ids="-".join)
def test_row_draws_include_the_moderator_term(structure):
    spec = _spec(*structure)
    post, _ = _draws(spec, seed=5)
    draws = row_draws(_fit(spec, post))
    np.testing.assert_allclose(draws.base, _by_hand(spec, post, study_effects=False),
                               rtol=1e-12)
    np.testing.assert_allclose(draws.base + draws.u, _by_hand(spec, post), rtol=1e-12)
    np.testing.assert_allclose(row_linear_predictor(post, spec), _by_hand(spec, post),
                               rtol=1e-12)


def test_conditional_ppc_p_values_use_each_rows_moderators():
    spec = _spec()
    post, _ = _draws(spec, n_draws=20, seed=6)
    ppc = posterior_predictive(_fit(spec, post), method="conditional")
    p = expit(_by_hand(spec, post)).reshape(20, -1)
    arrays = spec.arrays()
    for i in range(len(arrays["events"])):
        y, n = int(arrays["events"][i]), int(arrays["total"][i])
        expected = np.mean(stats.binom.sf(y, n, p[:, i]) + 0.5 * stats.binom.pmf(y, n, p[:, i]))
        assert ppc.rows["ppp"].iloc[i] == pytest.approx(expected, rel=1e-9)


def test_new_centre_is_at_the_reference_values_or_at():
    spec = _spec(subgroup_effects="fixed", study_effects="common")
    post, _ = _draws(spec, n_draws=20, seed=7)
    fit = _fit(spec, post)
    eta = (post["mu"] + post["alpha"]).transpose("chain", "draw", SUBGROUP).values
    at_reference = new_centre_prediction(fit, 10).rate_draws.sel({SUBGROUP: SED_ORDER})
    np.testing.assert_allclose(at_reference.values, expit(eta))
    year, _ = spec.moderators
    x = np.array([(2019 - year.centre) / year.scale] + [0.0] * (len(spec.moderator_terms) - 1))
    beta = post["beta"].transpose("chain", "draw", MODERATOR).values
    shifted = new_centre_prediction(fit, 10, at={"year": 2019}).rate_draws.sel(
        {SUBGROUP: SED_ORDER})
    np.testing.assert_allclose(shifted.values, expit(eta + (beta @ x)[..., None]))


def test_prior_predictive_draws_beta_at_the_data_covariates():
    spec = _spec()
    ours = prior_predictive(spec, draws=4000, seed=2)
    assert "p_study_covariates" in set(ours.table["quantity"])
    # without moderators the draws are unchanged
    plain = prior_predictive(spec.with_moderators(), draws=4000, seed=2)
    np.testing.assert_array_equal(plain.draws["p_study"].values, ours.draws["p_study"].values)
    assert "p_study_covariates" not in plain.draws
    # the distribution of the PyMC model's prior rate of a row, over the rows of a subgroup
    import pymc as pm

    with spec.build():
        prior = pm.sample_prior_predictive(draws=4000, random_seed=3, var_names=[
            "mu", "tau", "alpha", "beta"]).prior
    arrays = spec.arrays()
    d = 0
    rows = np.flatnonzero(arrays["subgroup_idx"] == d)
    rng = np.random.default_rng(9)
    pick = rows[rng.integers(rows.size, size=4000)]
    beta = prior["beta"].transpose("chain", "draw", MODERATOR).values.reshape(4000, -1)
    eta = (prior["mu"] + prior["alpha"].isel(subgroup=d)).values.ravel()
    eta = eta + (beta * spec.design()[pick]).sum(-1)
    eta = eta + prior["tau"].values.ravel() * rng.standard_normal(4000)
    ours_rows = ours.draws["p_study_covariates"].sel(subgroup=spec.subgroups[d]).values
    assert stats.ks_2samp(ours_rows, expit(eta)).pvalue > 1e-3
    # and the moderator term matters: a wide beta prior is far from no moderator term
    no_beta = expit(eta - (beta * spec.design()[pick]).sum(-1))
    wide = spec.with_priors(beta=Prior("Normal", {"sigma": 3.0}))
    wide_rows = prior_predictive(wide, draws=4000, seed=2).draws["p_study_covariates"]
    assert stats.ks_2samp(wide_rows.sel(subgroup=spec.subgroups[d]).values,
                          no_beta).pvalue < 1e-6


# ---------------------------------------------------------------------- LOO
def _brute_force_study_loglik(spec, post, study, draw):
    """log of the integral over the study effect, trapezoid on a fine grid."""
    arrays = spec.arrays()
    rows = np.flatnonzero(np.asarray(spec.table.frame["study"]) == study)
    base = _by_hand(spec, post, study_effects=False)[0, draw, rows]
    tau = float(post["tau"].values[0, draw])
    x = np.linspace(-12, 12, 100001)
    eta = base[:, None] + tau * x[None, :]
    log_f = stats.binom.logpmf(arrays["events"][rows][:, None], arrays["total"][rows][:, None],
                               expit(eta)).sum(0) + stats.norm.logpdf(x)
    peak = log_f.max()
    return peak + np.log(trapezoid(np.exp(log_f - peak), x))


def test_integrated_study_log_likelihood_includes_the_moderator_term():
    spec = _spec()
    post, _ = _draws(spec, n_draws=3, seed=8)
    loglik = study_log_likelihood(_fit(spec, post))
    for study in ("SYN-01", "SYN-05"):
        for draw in range(3):
            expected = _brute_force_study_loglik(spec, post, study, draw)
            assert float(loglik.sel(study=study).values[0, draw]) == pytest.approx(
                expected, abs=5e-5), (study, draw)  # AGH error at tau 3.5: 4e-6


def test_exact_refit_predicts_the_held_out_rows_with_their_own_covariates(monkeypatch):
    """The refit is replaced by hand-made draws (no sampling): with common study
    effects the exact elpd is a deterministic log-mean-exp."""
    spec = _spec(subgroup_effects="fixed", study_effects="common")
    post, _ = _draws(spec, n_draws=5, seed=9)
    fit = _fit(spec, post)
    study = "SYN-04"
    refit_spec = spec.without_study(study)
    refit_post, _ = _draws(refit_spec, n_draws=40, seed=10)

    def fake_fit(self, settings=None, **kwargs):
        assert self.moderators == spec.moderators  # the coding is kept
        return _fit(self, refit_post)

    monkeypatch.setattr(ModelSpec, "fit", fake_fit)
    monkeypatch.setattr("bayes_poem.diagnostics.check_fit",
                        lambda idata, warn=False: Diagnostics(pd.DataFrame(), 0, (1.0,)))
    elpd, pit, _ = exact_study_elpd(fit, study)
    rows = np.flatnonzero(np.asarray(spec.table.frame["study"]) == study)
    arrays = spec.arrays()
    alpha = refit_post["alpha"].sel({SUBGROUP: spec.subgroups}).values[0]
    eta = (refit_post["mu"].values[0][:, None] + alpha[:, arrays["subgroup_idx"][rows]]
           + refit_post["beta"].values[0] @ spec.design()[rows].T)
    loglik = stats.binom.logpmf(arrays["events"][rows], arrays["total"][rows],
                                expit(eta)).sum(-1)
    expected = np.log(np.mean(np.exp(loglik)))
    assert elpd == pytest.approx(expected, rel=1e-10)
    assert 0.0 <= pit <= 1.0


# ---------------------------------------------------------------------- report (no sampling)
def test_report_model_section_shows_the_moderator_term_and_beta_prior():
    from bayes_poem.report.sections.model import model_formulas as _model_formulas
    from bayes_poem.report.sections.model import model_section as _model_section

    spec = _spec()
    texts = [f.text for f in _model_formulas(spec)]
    assert "logit(p_i) = mu + alpha[d_i] + u[s_i] + x_i' beta" in texts
    assert any(t.startswith("beta_k ~ Normal(mu=0, sigma=0.6)") for t in texts)
    assert any(t.startswith("x_i = (") and "[quality = " in t for t in texts)
    html = "".join(f.mathml for f in _model_formulas(spec))
    assert "<mi>β</mi>" in html and "<msubsup>" in html
    post, _ = _draws(spec)
    section = _model_section(_fit(spec, post))
    assert "beta" in section.table["parameter"].tolist()
    assert "reference values" in section.text
    plain = [f.text for f in _model_formulas(spec.with_moderators())]
    assert "logit(p_i) = mu + alpha[d_i] + u[s_i]" in plain
    assert not any("beta" in t for t in plain)


# ---------------------------------------------------------------------- tier 2
CSV = """study,subgroup,outcome,events,total,quality,year
A,x,cs,8,10,good,2015
A,y,cs,4,6,good,2015
B,x,cs,9,15,fair,2016
C,y,cs,2,7,good,2017
D,x,cs,7,10,fair,2018
D,y,cs,5,9,fair,2018
E,x,cs,9,12,poor,2019
E,y,cs,3,8,poor,2019
F,x,cs,12,14,good,2020
"""


@pytest.mark.mcmc
@pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")
def test_report_runs_on_a_moderator_spec_with_the_term_in_ppc_and_loo(tmp_path, capsys):
    (tmp_path / "d.csv").write_text(CSV)
    spec_file = tmp_path / "s.toml"
    spec_file.write_text('[data]\npath = "d.csv"\noutcome = "cs"\n[model]\n'
                         'moderators = ["year", "quality"]\n'
                         "[sampler]\ndraws = 300\ntune = 300\nchains = 2\nseed = 7\n")
    out = tmp_path / "report"
    code, _, err = run_cli(["report", spec_file, "--out", out, "--quiet"], capsys)
    assert code == 0, err
    markdown = (out / "report.md").read_text()
    for text in ("x_i' beta", "beta_k ~ Normal(mu=0, sigma=1)", "Moderators (meta-regression "
                 "coefficients)", "quality[good]", "at the reference values (year = "):
        assert text in markdown, text

    table = load_table(pd.read_csv(io.StringIO(CSV), dtype=str), source="d.csv")
    spec = ModelSpec.from_table(table, "cs").with_moderators("year", "quality")
    fit = spec.fit(SETTINGS)
    post = fit.posterior.isel(draw=slice(0, 3))
    loglik = study_log_likelihood(fit)
    for study in ("A", "E"):
        for draw in range(3):
            expected = _brute_force_study_loglik(spec, post, study, draw)
            assert float(loglik.sel(study=study).values[0, draw]) == pytest.approx(
                expected, abs=1e-6)
    ppc = posterior_predictive(fit, method="conditional")
    p = expit(_by_hand(spec, fit.posterior)).reshape(-1, len(table.frame))
    arrays = spec.arrays()
    y, n = int(arrays["events"][0]), int(arrays["total"][0])
    expected = np.mean(stats.binom.sf(y, n, p[:, 0]) + 0.5 * stats.binom.pmf(y, n, p[:, 0]))
    assert ppc.rows["ppp"].iloc[0] == pytest.approx(expected, rel=1e-9)
