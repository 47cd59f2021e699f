"""Tier 1: the compiled bivariate (efficacy and safety) kernel equals the PyMC reference.

Value and gradient on the unconstrained space against ``compile_logp`` /
``compile_dlogp`` of :meth:`JointSpec.build`, at random points, for random,
fixed and no subgroup effects, rho sampled or pinned, several prior families per
outcome, and data with studies that report one outcome only (zero and full
cells included); the gradient also against central differences; the rho prior
against scipy; and the kernel through the nutpie adapter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import logit

from bayes_poem import load_table
from bayes_poem.backends import joint_compiled, joint_density, nutpie_adapter
from bayes_poem.errors import DataError, SpecError
from bayes_poem.joint import JointSpec
from bayes_poem.priors import Prior
from tests.helpers import pymc_logp_dlogp

# Per-study counts (study, subgroup, outcome, events, total). S4 reports success only,
# S5 adverse events only; zero and full cells.
ROWS = [
    ("S1", "a", "clinical_success", 9, 10), ("S1", "a", "adverse_event", 1, 10),
    ("S1", "b", "clinical_success", 5, 8), ("S1", "b", "adverse_event", 0, 8),
    ("S2", "b", "clinical_success", 12, 12), ("S2", "b", "adverse_event", 3, 12),
    ("S2", "c", "clinical_success", 4, 9), ("S2", "c", "adverse_event", 2, 9),
    ("S3", "a", "clinical_success", 20, 25), ("S3", "c", "adverse_event", 5, 14),
    ("S3", "c", "clinical_success", 10, 14),
    ("S4", "a", "clinical_success", 7, 9), ("S4", "b", "clinical_success", 0, 3),
    ("S5", "c", "adverse_event", 4, 4), ("S5", "a", "adverse_event", 2, 17),
]
PRIOR_SETS = {
    "defaults": {},
    "families": {
        "clinical_success": {"mu": Prior("StudentT", {"nu": 4.0, "mu": 1.0, "sigma": 1.2}),
                             "tau": Prior("HalfCauchy", {"beta": 0.4}),
                             "sigma_subgroup": Prior("Exponential", {"lam": 2.0}),
                             "alpha": Prior("Normal", {"sigma": 0.8})},
        "adverse_event": {"mu": Prior("Normal", {"mu": -2.0, "sigma": 1.0}),
                          "tau": Prior("LogNormalTau2", {"mu": -1.43, "sigma": 1.45}),
                          "sigma_subgroup": Prior("HalfStudentT", {"nu": 3.0, "sigma": 0.6}),
                          "alpha": Prior("Normal", {"sigma": 2.0})},
    },
}


def _table(rows=ROWS):
    frame = pd.DataFrame(rows, columns=["study", "subgroup", "outcome", "events", "total"])
    return load_table(frame, source="test_joint")


def _spec(subgroup_effects="random", priors="defaults", rho_fixed=None, eta=2.0):
    return JointSpec.from_table(_table(), subgroup_effects=subgroup_effects,
                                priors=PRIOR_SETS[priors], rho_eta=eta, rho_fixed=rho_fixed)


def _point(layout, x):
    point, k = {}, 0
    for name, shape in layout:
        size = int(np.prod(shape))
        point[name] = x[k:k + size].reshape(shape)
        k += size
    return point


def _random_points(spec, n_points, seed):
    n_dim = sum(int(np.prod(s)) for _, s in joint_compiled.unconstrained_layout(spec))
    rng = np.random.default_rng(seed)
    for _ in range(n_points):
        x = rng.normal(scale=0.9, size=n_dim)
        x[0] += logit(0.8)
        x[1] += logit(0.15)
        yield x


CASES = [(sub, priors, rho, eta)
         for sub in ("random", "fixed", "none")
         for priors in PRIOR_SETS
         for rho, eta in ((None, 2.0), (None, 0.7), (0.0, 2.0), (-0.6, 2.0))]


@pytest.mark.parametrize(("subgroup_effects", "priors", "rho_fixed", "eta"), CASES)
def test_kernel_matches_pymc(subgroup_effects, priors, rho_fixed, eta):
    spec = _spec(subgroup_effects, priors, rho_fixed, eta)
    model = spec.build()
    layout = joint_compiled.unconstrained_layout(spec)
    assert [v.name for v in model.value_vars] == [name for name, _ in layout]
    logp_dlogp = pymc_logp_dlogp(model)
    buffer = joint_compiled.density_buffer(spec)
    for x in _random_points(spec, n_points=3, seed=len(CASES)):
        grad = np.zeros(x.size)
        value = joint_density.logp_grad(x, buffer, grad)
        expected, expected_grad = logp_dlogp(_point(layout, x))
        # atol: PyMC folds some prior constants to float32 (1.2e-8 for log 1.5 of each
        # default Normal(0, 1.5) on mu; log 2 and log pi of HalfCauchy): at most 6 priors
        np.testing.assert_allclose(value, expected, rtol=1e-10, atol=6e-8)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("subgroup_effects", ["random", "fixed"])
@pytest.mark.parametrize("rho_fixed", [None, 0.4])
def test_gradient_matches_finite_differences(subgroup_effects, rho_fixed):
    spec = _spec(subgroup_effects, "families", rho_fixed)
    buffer = joint_compiled.density_buffer(spec)
    h = 1e-6
    for x in _random_points(spec, n_points=2, seed=7):
        grad = np.zeros(x.size)
        joint_density.logp_grad(x, buffer, grad)
        for k in range(x.size):
            e = np.zeros(x.size)
            e[k] = h
            up = joint_density.logp_grad(x + e, buffer, np.zeros(x.size))
            down = joint_density.logp_grad(x - e, buffer, np.zeros(x.size))
            assert abs((up - down) / (2 * h) - grad[k]) < 1e-5 * max(1.0, abs(grad[k]))


@pytest.mark.parametrize("eta", [0.5, 1.0, 2.0, 5.0])
def test_rho_prior_is_the_lkj_beta(eta):
    """p(y) = p_rho(tanh y) (1 - tanh^2 y) with (1 + rho) / 2 ~ Beta(eta, eta); it integrates
    to 1."""
    for y in (-3.0, -0.4, 0.0, 1.1, 6.0):
        rho = np.tanh(y)
        expected = stats.beta(eta, eta).logpdf((1 + rho) / 2) - np.log(2) + np.log1p(-rho**2)
        assert joint_density.rho_log_prior(y, eta) == pytest.approx(expected, rel=1e-10)
    grid = np.linspace(-25, 25, 200001)
    density = np.exp([joint_density.rho_log_prior(y, eta) for y in grid])
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-6)


def test_a_study_with_one_outcome_leaves_its_other_w_prior_only():
    """S4 has no adverse-event rows: the likelihood does not depend on w[1, S4]."""
    spec = _spec("random")
    buffer = joint_compiled.density_buffer(spec)
    layout = joint_compiled.unconstrained_layout(spec)
    names = nutpie_adapter.flat_names(layout)
    s4 = spec.studies.index("S4")
    k = names.index(f"w_{len(spec.studies) + s4}")  # w[1, S4], row-major
    x = next(_random_points(spec, 1, seed=3))
    grad = np.zeros(x.size)
    joint_density.logp_grad(x, buffer, grad)
    assert grad[k] == pytest.approx(-x[k], rel=1e-12)  # the N(0, 1) prior's score only


def test_rho_zero_separates_the_outcomes():
    """With rho pinned at 0 the log-density is the sum of two one-outcome densities."""
    from bayes_poem.spec import ModelSpec

    joint = _spec("random", "families", rho_fixed=0.0)
    x = next(_random_points(joint, 1, seed=5))
    point = _point(joint_compiled.unconstrained_layout(joint), x)
    total = joint_density.logp_grad(x, joint_compiled.density_buffer(joint), np.zeros(x.size))
    parts = 0.0
    for j, outcome in enumerate(joint.outcomes):
        single = ModelSpec.from_table(_table(), outcome, subgroup_effects="random",
                                      subgroups=joint.subgroups,
                                      priors=dict(joint.priors[outcome]))
        pos = {s: i for i, s in enumerate(joint.studies)}
        w = point["w"][j][[pos[s] for s in single.studies]]
        x1 = np.concatenate([[point[f"mu_{j}"]], [point[f"tau_{j}_log__"]], w,
                             [point[f"sigma_subgroup_{j}_log__"]], point["z"][j]])
        from bayes_poem.backends import compiled, density

        parts += density.logp_grad(x1, compiled.density_buffer(single), np.zeros(x1.size))
        missing = [s for s in joint.studies if s not in single.studies]
        parts += sum(stats.norm.logpdf(point["w"][j][pos[s]]) for s in missing)
    assert total == pytest.approx(parts, rel=1e-12)


@pytest.mark.parametrize(("subgroup_effects", "rho_fixed"), [("fixed", None), ("random", 0.3)])
def test_kernel_through_the_nutpie_adapter(subgroup_effects, rho_fixed):
    spec = _spec(subgroup_effects, "families", rho_fixed)
    model = joint_compiled.compiled_model(spec, seed=1)
    n_dim = sum(int(np.prod(s)) for _, s in joint_compiled.unconstrained_layout(spec))
    assert model._make_model(np.zeros(n_dim)) is not None
    x = next(_random_points(spec, 1, seed=4))
    value, grad, status = nutpie_adapter.evaluate(model, x)
    expected = np.zeros(x.size)
    assert status == 0
    assert value == joint_density.logp_grad(x, joint_compiled.density_buffer(spec), expected)
    np.testing.assert_array_equal(grad, expected)
    assert nutpie_adapter.evaluate(model, x[:-1])[2] == -1
    values, status = nutpie_adapter.expand(model, x)
    assert status == 0
    assert list(values) == [name for name, _, _ in joint_compiled.expanded_layout(spec)]
    point = _point(joint_compiled.unconstrained_layout(spec), x)
    # the expansion equals the PyMC model's deterministics at the same point
    pymc_model = spec.build()
    outputs = pymc_model.replace_rvs_by_values([pymc_model[n] for n in values])
    fn = pymc_model.compile_fn(outputs, inputs=pymc_model.value_vars, on_unused_input="ignore")
    for name, expected_value in zip(values, fn(point), strict=True):
        np.testing.assert_allclose(values[name], expected_value, rtol=1e-12, atol=1e-14)
    assert model.dims["u"] == ("outcome", "study")
    assert list(model.coords["outcome"]) == ["clinical_success", "adverse_event"]


def test_validation_names_the_key():
    table = _table()
    with pytest.raises(DataError, match="data.outcomes: outcome 'efficacy' is not in the data"):
        JointSpec.from_table(table, ["efficacy", "adverse_event"])
    with pytest.raises(SpecError, match="data.outcomes: the joint model takes exactly two"):
        JointSpec.from_table(table, ["clinical_success"])
    with pytest.raises(SpecError, match="priors.rho.fixed: must be a number in"):
        JointSpec.from_table(table, rho_fixed=1.0)
    with pytest.raises(SpecError, match="priors.rho.eta"):
        JointSpec.from_table(table, rho_eta=0.0)
    with pytest.raises(SpecError, match="priors.adverse_event: unknown prior name"):
        JointSpec.from_table(table, priors={"adverse_event": {"phi": Prior("HalfNormal",
                                                                           {"sigma": 1.0})}})
    with pytest.raises(SpecError, match="priors.clinical_success.tau: dist 'Normal'"):
        JointSpec.from_table(table, priors={"tau": {"dist": "Normal", "sigma": 1.0}})
