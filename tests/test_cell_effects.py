"""Study x subgroup cell effects, ``cell_effects = "random"`` (``tau_cell * v[c_i]``).

Tier 1: the option, its TOML key and validation, the resolved spec, and the
downstream arithmetic on hand-made draws (row predictor, p_mean, p_new, I^2,
study estimates, the nested-quadrature LOO likelihood against brute-force
integration, predictive checks, log prior). The compiled density against PyMC is
in ``tests/test_density.py``; parameter recovery in ``tests/test_recovery_cell.py``.
Tier 2 (``mcmc``): one short CLI fit. All data here are SYNTHETIC.
"""

from __future__ import annotations

import io
import math

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import expit, logit
from scipy.stats import norm

from bayes_poem import ModelSpec, SpecError, load_table
from bayes_poem.backends import compiled
from bayes_poem.dims import CELL, SUBGROUP
from bayes_poem.loglik import _prior_logpdf, log_prior, power_scaling
from bayes_poem.loo import (
    integrated_study_cell_log_likelihood,
    integrated_study_log_likelihood,
    study_log_likelihood,
)
from bayes_poem.model_math import row_cell_effect, row_linear_predictor, row_study_effect
from bayes_poem.predictive import (
    posterior_predictive,
    prior_predictive,
    replicated_probabilities,
    row_draws,
)
from bayes_poem.results import GH_NODES
from bayes_poem.specfile import load_spec, parse_spec
from tests.helpers import fake_cell_fit, fit_over, run_cli

CSV = """study,subgroup,outcome,events,total,year
A,x,cs,8,10,2010
A,y,cs,4,6,2010
B,x,cs,9,15,2012
C,y,cs,2,7,2013
D,z,cs,7,10,2015
D,y,cs,5,9,2015
E,x,cs,9,12,2016
E,z,cs,3,8,2016
F,z,cs,6,11,2018
"""
SAMPLER = "[sampler]\ndraws = 200\ntune = 200\nchains = 2\nseed = 7\n"
MODEL = '[data]\npath = "d.csv"\noutcome = "cs"\n[model]\n'


@pytest.fixture(scope="module")
def table():
    return load_table(pd.read_csv(io.StringIO(CSV), dtype=str), source="d.csv")


def _spec(table, **options):
    return ModelSpec.from_table(table, "cs", cell_effects="random", **options)


# ---------------------------------------------------------------------- the option
def test_option_layouts_and_variants(table):
    plain = ModelSpec.from_table(table, "cs")
    assert plain.cell_effects == "none" and CELL not in plain.coords
    spec = plain.with_options(cell_effects="random")
    assert spec.cell_labels == ["A:x", "B:x", "E:x", "A:y", "C:y", "D:y", "D:z", "E:z", "F:z"]
    assert spec.coords[CELL] == spec.cell_labels
    assert spec.parameter_names()[-1] == "tau_cell"
    assert [n for n, _, _ in compiled.expanded_layout(spec)][-3:] == ["tau_cell", "v", "u_cell"]
    assert spec.without_study("F").cell_effects == "random"
    assert spec.leave_out("A").cell_labels == spec.cell_labels  # shape kept
    # variants without random study effects or subgroups have no cells to keep
    assert spec.with_options(study_effects="common").cell_effects == "none"
    assert spec.with_options(likelihood="beta_binomial").cell_effects == "none"
    assert spec.with_options(subgroup_effects="none").cell_effects == "none"
    assert spec.with_options(subgroup_effects="fixed").cell_effects == "random"
    both = spec.with_options(study_heterogeneity="by_subgroup").with_moderators("year")
    assert both.cell_effects == "random" and both.study_heterogeneity == "by_subgroup"
    with pytest.raises(SpecError,
                       match=r"^model\.cell_effects = 'random' .*model\.study_effects"):
        spec.with_options(study_effects="common", cell_effects="random")


def test_every_requirement_is_one_line_naming_the_key(table):
    cases = [({"study_effects": "common"}, "needs model.study_effects = 'random'"),
             ({"likelihood": "beta_binomial"}, "needs model.study_effects = 'random'"),
             ({"subgroup_effects": "none"}, "needs model.subgroup_effects"),
             ({"cell_effects": "per_row"}, "'per_row' is not one of none, random")]
    for options, text in cases:
        options = {"cell_effects": "random", **options}
        with pytest.raises(SpecError) as err:
            ModelSpec.from_table(table, "cs", **options)
        message = str(err.value)
        assert message.startswith("model.cell_effects") and text in message
        assert "\n" not in message
    single = load_table(pd.read_csv(io.StringIO(CSV), dtype=str).drop_duplicates("study"),
                        source="one.csv")
    with pytest.raises(SpecError, match="not separable from the study effect"):
        ModelSpec.from_table(single, "cs", subgroup_effects="fixed", cell_effects="random")


def test_toml_key_prior_errors_and_resolved_round_trip(tmp_path):
    (tmp_path / "d.csv").write_text(CSV)
    path = tmp_path / "s.toml"
    prior = '[priors.tau_cell]\ndist = "HalfCauchy"\nbeta = 0.3\n'
    path.write_text(MODEL + 'cell_effects = "random"\n' + prior + SAMPLER)
    analysis = load_spec(path)
    spec = analysis.model_spec()
    assert spec.cell_effects == "random"
    assert spec.priors["tau_cell"].describe() == "HalfCauchy(beta=0.3)"
    text = analysis.resolved_toml(spec)
    assert 'cell_effects = "random"' in text and "[priors.tau_cell]" in text
    # the resolved spec repeats the analysis: same model, same buffer
    (tmp_path / "resolved.toml").write_text(text)
    again = load_spec(tmp_path / "resolved.toml").model_spec()
    assert again.cell_effects == "random" and dict(again.priors) == dict(spec.priors)
    assert compiled.density_buffer(again).tobytes() == compiled.density_buffer(spec).tobytes()
    # errors: one line naming the file and the key
    path.write_text(MODEL + 'cell_effects = "random"\nstudy_effects = "common"\n' + SAMPLER)
    with pytest.raises(SpecError, match=r"s\.toml: model\.cell_effects = 'random'"):
        load_spec(path).model_spec()
    path.write_text(MODEL + "cell_effects = true\n" + SAMPLER)
    with pytest.raises(SpecError, match=r"model\.cell_effects must be a string"):
        load_spec(path)
    with pytest.raises(SpecError, match=r"priors\.tau_cell: dist 'Normal' is not allowed"):
        parse_spec({"data": {"path": "d.csv", "outcome": "cs"},
                    "priors": {"tau_cell": {"dist": "Normal", "sigma": 1.0}}}, source="x")
    path.write_text(MODEL + SAMPLER)  # option off: nothing new in the resolved spec
    analysis = load_spec(path)
    text = analysis.resolved_toml(analysis.model_spec())
    assert "cell_effects" not in text and "tau_cell" not in text


# ---------------------------------------------------------------------- model_math
@pytest.mark.parametrize("heterogeneity", ["common", "by_subgroup"])
def test_row_predictor_has_the_cell_term(table, heterogeneity):
    spec = _spec(table, study_heterogeneity=heterogeneity).with_moderators("year")
    fit = fake_cell_fit(spec)
    post = fit.posterior
    cell = post["u_cell"].transpose("chain", "draw", CELL).values[..., spec.arrays()["cell_idx"]]
    np.testing.assert_allclose(row_cell_effect(post, spec), cell)
    base = row_linear_predictor(post, spec, study_effects=False)
    np.testing.assert_allclose(row_linear_predictor(post, spec),
                               base + row_study_effect(post, spec) + cell)
    # from tau_cell and v alone (no stored u_cell) the same
    np.testing.assert_allclose(row_cell_effect(post.drop_vars("u_cell"), spec), cell,
                               rtol=1e-12)
    draws = row_draws(fit)
    np.testing.assert_allclose(draws.u, row_study_effect(post, spec) + cell)
    est = fit.study_estimates()
    np.testing.assert_allclose(est["mean"], expit(row_linear_predictor(post, spec)).mean((0, 1)))


def test_a_posterior_and_spec_that_disagree_are_refused(table):
    spec = _spec(table)
    fit = fake_cell_fit(spec)
    plain = spec.with_options(cell_effects="none")
    with pytest.raises(SpecError, match="posterior has cell effects"):
        row_linear_predictor(fit.posterior, plain)
    with pytest.raises(SpecError, match="posterior has cell effects"):
        row_linear_predictor(fit.posterior, plain, study_effects=False)
    with pytest.raises(SpecError, match="posterior has no 'tau_cell'"):
        row_cell_effect(fit.posterior.drop_vars(["tau_cell", "v", "u_cell"]), spec)
    with pytest.raises(SpecError, match="posterior has cell effects"):
        fit_over(plain, fit.posterior).subgroup_probabilities()
    other = fit.posterior.assign_coords({CELL: [f"{c}!" for c in spec.cell_labels]})
    with pytest.raises(SpecError, match="cells"):
        row_cell_effect(other, spec)


# ---------------------------------------------------------------------- results
@pytest.mark.parametrize("heterogeneity", ["common", "by_subgroup"])
def test_p_mean_integrates_over_tau_and_tau_cell(table, heterogeneity):
    fit = fake_cell_fit(_spec(table, study_heterogeneity=heterogeneity))
    probs = fit.subgroup_probabilities()
    post = fit.posterior
    c, d = 1, 13
    for label in fit.spec.subgroups:
        eta = float((post["mu"] + post["alpha"].sel({SUBGROUP: label}))[c, d])
        tau = post["tau"].sel({SUBGROUP: label}) if heterogeneity == "by_subgroup" else (
            post["tau"])
        tau, tc = float(tau[c, d]), float(post["tau_cell"][c, d])

        def integrand(v, x, e=eta, t=tau, s=tc):  # both random effects, no shortcut
            return expit(e + t * x + s * v) * norm.pdf(x) * norm.pdf(v)

        exact, _ = integrate.dblquad(integrand, -10, 10, -10, 10, epsabs=1e-12)
        assert abs(float(probs["p_mean"].sel({SUBGROUP: label})[c, d]) - exact) < 1e-8
    assert GH_NODES == 40


def test_p_new_adds_a_new_cell_effect_per_subgroup(table):
    fit = fake_cell_fit(_spec(table))
    probs = fit.subgroup_probabilities()
    post = fit.posterior
    rng = np.random.default_rng([fit.settings.seed, 1])
    z = rng.standard_normal(post["mu"].shape)
    v = rng.standard_normal((*post["mu"].shape, len(fit.spec.subgroups)))
    eta = (post["mu"] + post["alpha"]).transpose("chain", "draw", SUBGROUP).values
    expected = expit(eta + post["tau"].values[..., None] * z[..., None]
                     + post["tau_cell"].values[..., None] * v)
    np.testing.assert_allclose(probs["p_new"].sel({SUBGROUP: fit.spec.subgroups}).values,
                               expected, rtol=1e-12)
    # the cell term differs between the subgroups of one new study
    lo = logit(expected) - eta - post["tau"].values[..., None] * z[..., None]
    assert np.std(lo[..., 0] - lo[..., 1]) > 0.1


def test_i2_uses_tau2_plus_tau_cell2(table):
    fit = fake_cell_fit(_spec(table))
    post, arrays = fit.posterior, fit.spec.arrays()
    i2 = fit.i_squared()
    c, d = 0, 9
    eta = (post["mu"] + post["alpha"]).transpose("chain", "draw", SUBGROUP).values[c, d]
    p = expit(eta[arrays["subgroup_idx"]])
    w = arrays["total"] * p * (1 - p)
    k = w.size
    s2 = (k - 1) * w.sum() / (w.sum() ** 2 - (w**2).sum())
    between = float(post["tau"][c, d]) ** 2 + float(post["tau_cell"][c, d]) ** 2
    assert abs(i2[c, d] - between / (between + s2)) < 1e-12
    by = fake_cell_fit(_spec(table, study_heterogeneity="by_subgroup")).i_squared()
    assert by.shape == (2, 50, 3) and np.isfinite(by).all()
    het = fit.heterogeneity().set_index("parameter")
    assert {"tau", "tau2", "i2", "tau_cell", "tau_cell2"} <= set(het.index)
    assert np.isclose(het.loc["tau_cell", "median"], np.median(post["tau_cell"].values))
    summary = fit.parameter_summary()
    assert "tau_cell" in summary["parameter"].tolist()


# ---------------------------------------------------------------------- LOO
def _brute_force(base, tau, tc, events, total, rows, cell_idx):
    """log of the nested integral by scipy quad: the definition, no quadrature rule."""
    def log_binom(y, n, eta):  # plain floats: scipy.stats per call would take minutes
        return (math.lgamma(n + 1) - math.lgamma(y + 1) - math.lgamma(n - y + 1)
                - y * math.log1p(math.exp(-eta)) - (n - y) * math.log1p(math.exp(eta)))

    cells = [[int(i) for i in rows[cell_idx[rows] == c]] for c in np.unique(cell_idx[rows])]

    def outer(x):
        value = norm.pdf(x)
        for rc in cells:
            def inner(v, rc=rc):
                ll = sum(log_binom(float(events[i]), float(total[i]),
                                   float(base[i] + tau[i] * x + tc * v)) for i in rc)
                return math.exp(ll - 0.5 * v * v) / math.sqrt(2.0 * math.pi)

            value *= integrate.quad(inner, -9, 9, epsabs=0.0, epsrel=1e-10)[0]
        return value

    return np.log(integrate.quad(outer, -9, 9, epsabs=0.0, epsrel=1e-10)[0])


def test_nested_quadrature_matches_brute_force_integration():
    """Two studies: one with two one-row cells, one with a two-row cell and a third cell;
    a tau per row (by_subgroup) in the first draw, tau_cell = 1.5 in the second."""
    base = np.array([[0.3, -0.4, 1.1, 0.2, -0.5], [1.0, 0.5, -0.2, 0.0, 0.3]])
    tau = np.array([[0.4, 1.3, 0.7, 0.7, 0.9], [0.8, 0.8, 0.8, 0.8, 0.8]])
    tc = np.array([0.6, 1.5])
    events, total = np.array([7, 2, 12, 0, 5]), np.array([10, 9, 15, 4, 5])
    member = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [0, 1]], dtype=float)
    cell_idx = np.array([0, 1, 2, 2, 3])
    got = integrated_study_cell_log_likelihood(base, tau, tc, events, total, member, cell_idx)
    for d in range(2):
        for s in range(2):
            exact = _brute_force(base[d], tau[d], tc[d], events, total,
                                 np.flatnonzero(member[:, s]), cell_idx)
            # quadrature error: below 3e-7 here for 16 inner and 20 outer nodes (1e-11 for
            # tau_cell = 0.6); scipy's relative error is below 1e-10 (tails beyond 9 SD: 1e-19)
            assert abs(got[d, s] - exact) < 1e-6, (d, s, got[d, s], exact)
    # tau_cell -> 0: the integral of the study effect alone
    near = integrated_study_cell_log_likelihood(base, tau, np.full(2, 1e-9), events, total,
                                                member, cell_idx)
    np.testing.assert_allclose(near, integrated_study_log_likelihood(base, tau, events, total,
                                                                     member), atol=1e-10)
    # a row of no study (zeroed) is ignored
    member0 = member.copy()
    member0[4] = 0.0
    part = integrated_study_cell_log_likelihood(base, tau, tc, events, total, member0, cell_idx)
    exact = _brute_force(base[1], tau[1], tc[1], events, total, np.array([2, 3]), cell_idx)
    assert abs(part[1, 1] - exact) < 1e-6


def test_study_log_likelihood_integrates_the_cells(table):
    spec = _spec(table).with_moderators("year")
    fit = fake_cell_fit(spec)
    loglik = study_log_likelihood(fit)
    draws = row_draws(fit)
    # study D (rows in y and z) at one draw, by brute force
    s = spec.studies.index("D")
    rows = np.flatnonzero(draws.study_idx == s)
    c, d = 1, 4
    exact = _brute_force(draws.base[c, d], draws.row_tau()[c, d], float(draws.tau_cell[c, d]),
                         draws.events, draws.total, rows, draws.cell_idx)
    assert abs(float(loglik.sel(study="D")[c, d]) - exact) < 1e-6
    conditional = study_log_likelihood(fit, integrate=False)
    assert not np.allclose(conditional.values, loglik.values)


# ---------------------------------------------------------------------- predictive, log prior
def test_predictive_checks_and_log_prior_include_the_cells(table):
    spec = _spec(table)
    fit = fake_cell_fit(spec)
    draws = row_draws(fit)
    rng = np.random.default_rng([3, 2])
    p = replicated_probabilities(draws, "mixed", rng)
    rng = np.random.default_rng([3, 2])
    z = rng.standard_normal((draws.n_draws, len(spec.studies)))
    v = rng.standard_normal((draws.n_draws, len(spec.cell_labels)))
    expected = expit(draws.flat(draws.base) + draws.flat(draws.row_tau()) * z[:, draws.study_idx]
                     + draws.flat(draws.tau_cell)[:, None] * v[:, draws.cell_idx])
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    conditional = replicated_probabilities(draws, "conditional", rng)
    np.testing.assert_allclose(conditional, expit(draws.flat(draws.base + draws.u)))
    assert posterior_predictive(fit).rows.shape[0] == len(spec.row_labels)
    # prior predictive: the new study's rate spreads more with the cell term than without
    with_cells = prior_predictive(spec, draws=4000, seed=1).draws["p_study"].values
    without = prior_predictive(spec.with_options(cell_effects="none"), draws=4000,
                               seed=1).draws["p_study"].values
    assert np.std(logit(with_cells)) > np.std(logit(without))
    lp = log_prior(fit)
    np.testing.assert_allclose(lp["tau_cell"].values,
                               _prior_logpdf(spec.priors["tau_cell"],
                                             fit.posterior["tau_cell"].values))
    # the standardised effects (w, z, v) are structure, not priors a user sets
    assert "v" not in lp and "w" not in lp
    with pytest.raises(SpecError, match="posterior has cell effects"):
        log_prior(fit_over(spec.with_options(cell_effects="none"), fit.posterior))


def test_power_scaling_lists_tau_cell(table):
    fit = fake_cell_fit(_spec(table))
    assert "tau_cell" in power_scaling(fit)["parameter"].tolist()


# ---------------------------------------------------------------------- tier 2: sampling
@pytest.mark.mcmc
def test_cli_fit_with_cell_effects(tmp_path, capsys):
    (tmp_path / "d.csv").write_text(CSV)
    path = tmp_path / "s.toml"
    path.write_text(MODEL + 'subgroup_effects = "fixed"\ncell_effects = "random"\n' + SAMPLER)
    results = tmp_path / "results"
    code, _, err = run_cli(["run", path, "--out", results, "--quiet"], capsys)
    assert code == 0, err
    idata = az.from_netcdf(results / "posterior.nc")
    post = idata.posterior
    assert post["v"].dims == ("chain", "draw", CELL) and post["tau_cell"].dims == ("chain",
                                                                                   "draw")
    assert [str(c) for c in post[CELL].values][:2] == ["A:x", "B:x"]
    np.testing.assert_allclose(post["u_cell"], post["tau_cell"] * post["v"])
    het = pd.read_csv(results / "heterogeneity.csv")
    assert {"tau", "i2", "tau_cell"} <= set(het["parameter"])
    assert 'cell_effects = "random"' in (results / "spec.toml").read_text()
