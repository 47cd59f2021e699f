"""Tier 1: the compiled arm-based binomial kernel equals the PyMC reference model.

Value and gradient on the unconstrained space against ``model.compile_logp`` /
``compile_dlogp`` of ``trials.meta._binomial_model``, for every prior-family
combination (theta: location families x tau: scale families, LogNormalTau2
included), 1, 2 and 5 trials with zero and full cells; the gradient also
against central differences; and the kernel through the nutpie adapter.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import logit

from bayes_poem.backends import arm_density, nutpie_adapter
from bayes_poem.dims import STUDY
from bayes_poem.priors import Prior
from bayes_poem.trials.meta import BINARY_META_FAMILIES, binomial_model, resolve_priors
from tests.helpers import pymc_logp_dlogp

THETA_PRIORS = {
    "Normal": Prior("Normal", {"mu": 0.3, "sigma": 1.5}),
    "StudentT": Prior("StudentT", {"nu": 4.0, "mu": -0.2, "sigma": 1.2}),
}
TAU_PRIORS = {
    "HalfNormal": Prior("HalfNormal", {"sigma": 0.5}),
    "HalfCauchy": Prior("HalfCauchy", {"beta": 0.4}),
    "HalfStudentT": Prior("HalfStudentT", {"nu": 3.0, "sigma": 0.6}),
    "Exponential": Prior("Exponential", {"lam": 2.0}),
    "LogNormalTau2": Prior("LogNormalTau2", {"mu": -1.69, "sigma": 1.68}),
}
MU_STUDY = Prior("Normal", {"mu": 0.5, "sigma": 2.5})
# (anterior events, total, posterior events, total) per trial: zero and full cells.
COUNTS = {
    1: [(0, 12, 12, 12)],
    2: [(3, 20, 20, 20), (0, 15, 4, 15)],
    5: [(46, 54, 45, 57), (0, 9, 0, 11), (30, 30, 28, 31), (5, 40, 2, 38), (12, 12, 0, 10)],
}


def test_every_scale_family_is_allowed_for_tau():
    assert set(TAU_PRIORS) == set(BINARY_META_FAMILIES["tau"])
    assert set(THETA_PRIORS) == set(BINARY_META_FAMILIES["theta"])


def _arrays(n_studies):
    rows = np.array(COUNTS[n_studies], dtype=float)
    return rows[:, [0, 2]], rows[:, [1, 3]]


def _priors(theta, tau):
    return resolve_priors({"theta": THETA_PRIORS[theta], "tau": TAU_PRIORS[tau],
                     "mu_study": MU_STUDY}, BINARY_META_FAMILIES, {})


def _point(layout, x):
    point, k = {}, 0
    for name, shape in layout:
        size = int(np.prod(shape))
        point[name] = x[k:k + size].reshape(shape)
        k += size
    return point


def _random_points(events, total, n_points, seed):
    """Plausible points: each mu[s] near its crude anterior logit."""
    n_s = events.shape[0]
    rng = np.random.default_rng(seed)
    crude = logit((events[:, 0] + 0.5) / (total[:, 0] + 1.0))
    for _ in range(n_points):
        x = rng.normal(scale=0.8, size=2 + 2 * n_s)
        x[2:2 + n_s] += crude
        yield x


@pytest.mark.parametrize("n_studies", sorted(COUNTS))
@pytest.mark.parametrize("tau", TAU_PRIORS)
@pytest.mark.parametrize("theta", THETA_PRIORS)
def test_kernel_matches_pymc(theta, tau, n_studies):
    import pymc as pm

    from bayes_poem.trials import pymc_models

    priors = _priors(theta, tau)
    events, total = _arrays(n_studies)
    model = binomial_model(n_studies, priors).model
    layout = arm_density.unconstrained_layout(n_studies)
    assert [v.name for v in model.value_vars] == [name for name, _ in layout]
    with model:
        pm.set_data({"events": events, "total": total, **pymc_models.hyper_values(priors)})
    logp_dlogp = pymc_logp_dlogp(model)
    buffer = arm_density.buffer(events, total, priors)
    assert int(buffer[arm_density.H_NDIM]) == 2 + 2 * n_studies
    for x in _random_points(events, total, n_points=4, seed=n_studies):
        grad = np.zeros(x.size)
        value = arm_density.logp_grad(x, buffer, grad)
        expected, expected_grad = logp_dlogp(_point(layout, x))
        # atol: PyMC's HalfCauchy carries log 2 (and log pi) rounded to float32, 3.8e-9 off
        np.testing.assert_allclose(value, expected, rtol=1e-10, atol=5e-9)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("n_studies", sorted(COUNTS))
@pytest.mark.parametrize("tau", ["HalfStudentT", "LogNormalTau2"])
def test_gradient_matches_finite_differences(tau, n_studies):
    events, total = _arrays(n_studies)
    buffer = arm_density.buffer(events, total, _priors("StudentT", tau))
    h = 1e-6
    for x in _random_points(events, total, n_points=2, seed=10 + n_studies):
        grad = np.zeros(x.size)
        arm_density.logp_grad(x, buffer, grad)
        for k in range(x.size):
            e = np.zeros(x.size)
            e[k] = h
            up = arm_density.logp_grad(x + e, buffer, np.zeros(x.size))
            down = arm_density.logp_grad(x - e, buffer, np.zeros(x.size))
            assert abs((up - down) / (2 * h) - grad[k]) < 1e-5 * max(1.0, abs(grad[k]))


def test_hyperparameters_are_data_in_the_buffer():
    """A prior scale moves the value by exactly its log-density difference."""
    events, total = _arrays(2)
    x = next(_random_points(events, total, 1, seed=3))
    narrow = _priors("Normal", "HalfNormal")
    wide = {**narrow, "tau": Prior("HalfNormal", {"sigma": 2.0})}
    g = np.zeros(x.size)
    diff = (arm_density.logp_grad(x, arm_density.buffer(events, total, wide), g)
            - arm_density.logp_grad(x, arm_density.buffer(events, total, narrow), g))
    tau = np.exp(x[1])
    expected = (-np.log(2.0) - 0.5 * (tau / 2.0) ** 2) - (-np.log(0.5) - 0.5 * (tau / 0.5) ** 2)
    assert diff == pytest.approx(expected, rel=1e-12)


def test_kernel_through_the_nutpie_adapter():
    events, total = _arrays(5)
    priors = _priors("Normal", "LogNormalTau2")
    buffer = arm_density.buffer(events, total, priors)
    labels = [f"trial_{k}" for k in range(5)]
    model = nutpie_adapter.nutpie_model(
        logp_cfunc=arm_density.logp_cfunc, expand_cfunc=arm_density.expand_cfunc,
        buffer=buffer, expanded=arm_density.expanded_layout(5), coords={STUDY: labels},
        unconstrained=arm_density.unconstrained_layout(5),
        initial_point=lambda seed: np.zeros(12))
    assert model._make_model(np.zeros(12)) is not None
    x = next(_random_points(events, total, 1, seed=4))
    value, grad, status = nutpie_adapter.evaluate(model, x)
    expected_grad = np.zeros(x.size)
    assert status == 0
    assert value == arm_density.logp_grad(x, buffer, expected_grad)
    np.testing.assert_array_equal(grad, expected_grad)
    assert nutpie_adapter.evaluate(model, x[:-1])[2] == -1
    values, status = nutpie_adapter.expand(model, x)
    assert status == 0
    assert list(values) == ["theta", "tau", "mu", "w", "delta"]
    assert values["theta"] == x[0]
    np.testing.assert_allclose(values["mu"], x[2:7])
    np.testing.assert_allclose(values["delta"], np.exp(x[1]) * x[7:12])
    assert model.dims["delta"] == (STUDY,)
    assert list(model.coords[STUDY]) == labels
