"""Disorder-specific heterogeneity, ``study_heterogeneity = "by_subgroup"`` (tau[subgroup]).

Tier 1: the downstream arithmetic on hand-made draws (row study effects, p_mean,
p_new, I^2 per subgroup, the integrated LOO likelihood, prior predictive, log
prior), the spec option and its validation. The compiled density against PyMC is
in ``tests/test_density.py``. Tier 2 (``mcmc``): one short fit through the CLI,
and ``bayes-poem report`` refusing an edited option.
"""

from __future__ import annotations

import io

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import integrate
from scipy.special import expit
from scipy.stats import binom, norm

from bayes_poem import ModelSpec, SpecError, load_table
from bayes_poem.backends import compiled
from bayes_poem.dims import STUDY, SUBGROUP
from bayes_poem.loglik import log_prior
from bayes_poem.loo import integrated_study_log_likelihood, study_log_likelihood
from bayes_poem.model_math import row_linear_predictor, row_study_effect
from bayes_poem.predictive import posterior_predictive, prior_predictive, row_draws
from bayes_poem.results import GH_NODES, FitResult
from bayes_poem.specfile import load_spec
from tests.helpers import fit_over, run_cli

CSV = """study,subgroup,outcome,events,total
A,x,cs,8,10
A,y,cs,4,6
B,x,cs,9,15
C,y,cs,2,7
D,z,cs,7,10
D,y,cs,5,9
E,x,cs,9,12
E,z,cs,3,8
F,z,cs,6,11
"""
SAMPLER = "[sampler]\ndraws = 200\ntune = 200\nchains = 2\nseed = 7\n"
MODEL = '[data]\npath = "d.csv"\noutcome = "cs"\n[model]\n'


@pytest.fixture(scope="module")
def table():
    return load_table(pd.read_csv(io.StringIO(CSV), dtype=str), source="d.csv")


def _spec(table, **options):
    return ModelSpec.from_table(table, "cs", study_heterogeneity="by_subgroup", **options)


def _fake_fit(spec: ModelSpec, seed: int = 0) -> FitResult:
    """A FitResult over hand-made draws (2 chains x 50) with tau[subgroup] and w[study]."""
    rng = np.random.default_rng(seed)
    shape = (2, 50)
    n_d, n_s = len(spec.subgroups), len(spec.studies)
    post = xr.Dataset({
        "mu": (("chain", "draw"), rng.normal(0.5, 0.1, shape)),
        "tau": (("chain", "draw", SUBGROUP), np.abs(rng.normal([0.2, 0.8, 1.5][:n_d], 0.05,
                                                               (*shape, n_d)))),
        "w": (("chain", "draw", STUDY), rng.normal(0, 1, (*shape, n_s))),
        "alpha": (("chain", "draw", SUBGROUP), rng.normal(0, 0.3, (*shape, n_d))),
    }, coords={SUBGROUP: spec.subgroups, STUDY: spec.studies})
    return fit_over(spec, post)


# ---------------------------------------------------------------------- the option
def test_option_layouts_and_defaults(table):
    common = ModelSpec.from_table(table, "cs")
    assert common.study_heterogeneity == "common"
    spec = common.with_options(study_heterogeneity="by_subgroup")
    assert spec.study_heterogeneity == "by_subgroup"
    assert ("tau", (3,), (SUBGROUP,)) in compiled.expanded_layout(spec)
    assert "u" not in [name for name, _, _ in compiled.expanded_layout(spec)]
    assert spec.without_study("F").study_heterogeneity == "by_subgroup"
    # variants without random study effects or subgroups have no tau[subgroup] to keep
    assert spec.with_options(study_effects="common").study_heterogeneity == "common"
    assert spec.with_options(likelihood="beta_binomial").study_heterogeneity == "common"
    assert spec.with_options(subgroup_effects="none").study_heterogeneity == "common"
    assert spec.with_options(subgroup_effects="fixed").study_heterogeneity == "by_subgroup"
    with pytest.raises(SpecError, match="study_heterogeneity"):
        spec.with_options(study_effects="common", study_heterogeneity="by_subgroup")


def test_toml_key_is_read_validated_and_resolved(tmp_path, table):
    (tmp_path / "d.csv").write_text(CSV)
    path = tmp_path / "s.toml"
    path.write_text(MODEL + 'study_heterogeneity = "by_subgroup"\n' + SAMPLER)
    analysis = load_spec(path)
    spec = analysis.model_spec()
    assert spec.study_heterogeneity == "by_subgroup"
    assert 'study_heterogeneity = "by_subgroup"' in analysis.resolved_toml(spec)
    path.write_text(MODEL + 'study_heterogeneity = "per_study"\n' + SAMPLER)
    with pytest.raises(SpecError, match="model.study_heterogeneity: 'per_study'"):
        load_spec(path).model_spec()
    path.write_text(MODEL + SAMPLER)  # option off: nothing new in the resolved spec
    analysis = load_spec(path)
    assert "study_heterogeneity" not in analysis.resolved_toml(analysis.model_spec())


# ---------------------------------------------------------------------- downstream maths
def test_row_study_effect_is_tau_of_the_row_subgroup_times_w(table):
    fit = _fake_fit(_spec(table))
    post, spec = fit.posterior, fit.spec
    arrays = spec.arrays()
    tau = post["tau"].transpose("chain", "draw", SUBGROUP).values
    w = post["w"].transpose("chain", "draw", STUDY).values
    expected = tau[..., arrays["subgroup_idx"]] * w[..., arrays["study_idx"]]
    np.testing.assert_allclose(row_study_effect(post, spec), expected)
    base = row_linear_predictor(post, spec, study_effects=False)
    np.testing.assert_allclose(row_linear_predictor(post, spec), base + expected)
    draws = row_draws(fit)
    np.testing.assert_allclose(draws.u, expected)
    np.testing.assert_allclose(draws.row_tau(), tau[..., arrays["subgroup_idx"]])
    # study estimates use the same per-row effect
    est = fit.study_estimates()
    np.testing.assert_allclose(est["mean"], expit(base + expected).mean(axis=(0, 1)))
    # a spec that disagrees with the posterior is refused
    with pytest.raises(SpecError, match="per subgroup"):
        row_study_effect(post, spec.with_options(study_heterogeneity="common"))


def test_p_mean_and_p_new_use_each_subgroups_tau(table):
    fit = _fake_fit(_spec(table))
    probs = fit.subgroup_probabilities()
    post = fit.posterior
    c, d = 1, 7
    for label in fit.spec.subgroups:
        eta = float((post["mu"] + post["alpha"].sel({SUBGROUP: label}))[c, d])
        tau = float(post["tau"].sel({SUBGROUP: label})[c, d])
        exact, _ = integrate.quad(lambda x, e=eta, t=tau: expit(e + t * x) * norm.pdf(x),
                                  -12, 12, epsabs=1e-13)
        assert abs(float(probs["p_mean"].sel({SUBGROUP: label})[c, d]) - exact) < 1e-9
    # p_new: one z_new per draw shared by the subgroups, scaled by tau[d]
    eta = (post["mu"] + post["alpha"]).transpose("chain", "draw", SUBGROUP).values
    tau = post["tau"].transpose("chain", "draw", SUBGROUP).values
    logit_new = np.log(probs["p_new"].sel({SUBGROUP: fit.spec.subgroups}).values) - np.log1p(
        -probs["p_new"].sel({SUBGROUP: fit.spec.subgroups}).values)
    z = (logit_new - eta) / tau
    np.testing.assert_allclose(z, np.repeat(z[..., :1], z.shape[-1], axis=-1), atol=1e-8)
    assert GH_NODES == 40


def test_heterogeneity_reports_tau_per_subgroup_with_its_i2(table):
    fit = _fake_fit(_spec(table))
    het = fit.heterogeneity().set_index("parameter")
    labels = fit.spec.subgroups
    assert [f"tau[{x}]" for x in labels] == [p for p in het.index if p.startswith("tau[")]
    assert "tau" not in het.index and "sigma_subgroup" not in het.index
    i2 = fit.i_squared()
    assert i2.shape == (2, 50, 3)
    # I^2 of subgroup x by hand at one draw: rows of x only
    arrays, post = fit.spec.arrays(), fit.posterior
    rows = arrays["subgroup_idx"] == 0
    p = expit(float(post["mu"][0, 3] + post["alpha"].sel({SUBGROUP: "x"})[0, 3]))
    w = arrays["total"][rows] * p * (1 - p)
    k = rows.sum()
    s2 = (k - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())
    t2 = float(post["tau"].sel({SUBGROUP: "x"})[0, 3]) ** 2
    assert abs(i2[0, 3, 0] - t2 / (t2 + s2)) < 1e-12
    assert np.isclose(het.loc["tau[y]", "median"],
                      np.median(post["tau"].sel({SUBGROUP: "y"}).values))


def test_heterogeneity_without_derived_rows_is_the_same_rows_of_the_model_scales(table):
    """derived=False (the sensitivity grid's rows): tau[d] only, the same numbers."""
    fit = _fake_fit(_spec(table))
    full = fit.heterogeneity().set_index("parameter")
    own = fit.heterogeneity(derived=False).set_index("parameter")
    assert list(own.index) == [f"tau[{x}]" for x in fit.spec.subgroups]
    pd.testing.assert_frame_equal(own, full.loc[own.index])


def test_integrated_study_likelihood_with_a_tau_per_row():
    """A study with two rows of different subgroups: one shared w, two taus."""
    base = np.array([[0.3, -0.4]])
    tau = np.array([[0.4, 1.3]])
    events, total = np.array([7, 2]), np.array([10, 9])
    member = np.ones((2, 1))
    got = integrated_study_log_likelihood(base, tau, events, total, member)

    def integrand(x):
        p = expit(base[0] + tau[0] * x)
        return np.prod(binom.pmf(events, total, p)) * norm.pdf(x)

    exact, _ = integrate.quad(integrand, -12, 12, epsabs=1e-14)
    assert abs(got[0, 0] - np.log(exact)) < 1e-8
    # one tau per draw (the common model) is the same as repeating it over the rows
    one = integrated_study_log_likelihood(base, np.array([0.7]), events, total, member)
    rep = integrated_study_log_likelihood(base, np.array([[0.7, 0.7]]), events, total, member)
    np.testing.assert_allclose(one, rep, rtol=1e-12)


def test_loo_ppc_prior_predictive_and_log_prior_run(table):
    fit = _fake_fit(_spec(table))
    loglik = study_log_likelihood(fit)
    assert loglik.sizes[STUDY] == len(fit.spec.studies) and np.isfinite(loglik).all()
    ppc = posterior_predictive(fit)
    assert ppc is not None
    prior = prior_predictive(fit.spec, draws=500)
    assert prior is not None
    lp = log_prior(fit)
    assert lp["tau"].dims == ("chain", "draw")
    from bayes_poem.loglik import _prior_logpdf

    tau = fit.posterior["tau"].transpose("chain", "draw", SUBGROUP).values
    np.testing.assert_allclose(lp["tau"].values,
                               _prior_logpdf(fit.spec.priors["tau"], tau).sum(-1))


# ---------------------------------------------------------------------- tier 2: sampling
@pytest.mark.mcmc
def test_cli_fit_with_tau_per_subgroup_and_report_refuses_an_edited_option(tmp_path, capsys):

    (tmp_path / "d.csv").write_text(CSV)
    path = tmp_path / "s.toml"
    path.write_text(MODEL + 'subgroup_effects = "fixed"\nstudy_heterogeneity = "by_subgroup"\n'
                    + SAMPLER)
    results = tmp_path / "results"
    code, out, err = run_cli(["run", path, "--out", results, "--quiet"], capsys)
    assert code == 0, err
    idata = az.from_netcdf(results / "posterior.nc")
    assert idata.posterior["tau"].dims == ("chain", "draw", SUBGROUP)
    assert "u" not in idata.posterior
    assert idata.posterior.attrs["study_heterogeneity"] == "by_subgroup"
    het = pd.read_csv(results / "heterogeneity.csv")
    assert {"tau[x]", "tau[y]", "tau[z]", "i2[x]"} <= set(het["parameter"])
    text = (results / "spec.toml").read_text()
    assert 'study_heterogeneity = "by_subgroup"' in text
    (results / "spec.toml").write_text(text.replace('study_heterogeneity = "by_subgroup"\n', ""))
    code, _, err = run_cli(["report", results, "--out", tmp_path / "rep", "--quiet"], capsys)
    assert code == 2 and "model.study_heterogeneity differs from the fitted model" in err, err
