"""Tier 1: the compiled normal-normal kernel equals the PyMC reference model.

Value and gradient on the unconstrained space against ``trials.meta._normal_model``
for every prior-family combination (mu: location x tau: scale families) and
1, 2 and 6 trials; the gradient also against central differences.
"""

from __future__ import annotations

import numpy as np
import pytest

from bayes_poem.backends import normal_density
from bayes_poem.priors import Prior
from bayes_poem.trials.meta import NORMAL_META_FAMILIES, normal_model, resolve_priors
from tests.helpers import pymc_logp_dlogp

MU_PRIORS = {
    "Normal": Prior("Normal", {"mu": 0.5, "sigma": 2.0}),
    "StudentT": Prior("StudentT", {"nu": 5.0, "mu": -0.3, "sigma": 1.5}),
}
TAU_PRIORS = {
    "HalfNormal": Prior("HalfNormal", {"sigma": 0.7}),
    "HalfCauchy": Prior("HalfCauchy", {"beta": 0.5}),
    "HalfStudentT": Prior("HalfStudentT", {"nu": 3.0, "sigma": 0.6}),
    "Exponential": Prior("Exponential", {"lam": 1.5}),
    "LogNormalTau2": Prior("LogNormalTau2", {"mu": -1.0, "sigma": 1.2}),
}
DATA = {
    1: ([0.4], [0.3]),
    2: ([1.2, -0.4], [0.5, 0.6]),
    6: ([0.35, -0.10, 0.60, 0.15, 0.90, -0.30], [0.30, 0.25, 0.40, 0.20, 0.35, 0.30]),
}


def test_every_scale_family_is_allowed_for_tau():
    assert set(TAU_PRIORS) == set(NORMAL_META_FAMILIES["tau"])
    assert set(MU_PRIORS) == set(NORMAL_META_FAMILIES["mu"])


def _priors(mu, tau):
    return resolve_priors({"mu": MU_PRIORS[mu], "tau": TAU_PRIORS[tau]}, NORMAL_META_FAMILIES, {})


def _points(n_studies, n_points, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n_points):
        yield rng.normal(scale=0.8, size=2 + n_studies)


@pytest.mark.parametrize("n_studies", sorted(DATA))
@pytest.mark.parametrize("tau", TAU_PRIORS)
@pytest.mark.parametrize("mu", MU_PRIORS)
def test_kernel_matches_pymc(mu, tau, n_studies):
    import pymc as pm

    from bayes_poem.trials import pymc_models

    priors = _priors(mu, tau)
    y, se = (np.array(v) for v in DATA[n_studies])
    model = normal_model(n_studies, priors).model
    layout = normal_density.unconstrained_layout(n_studies)
    assert [v.name for v in model.value_vars] == [name for name, _ in layout]
    with model:
        pm.set_data({"y": y, "se": se, **pymc_models.hyper_values(priors)})
    logp_dlogp = pymc_logp_dlogp(model)
    buffer = normal_density.buffer(y, se, priors)
    for x in _points(n_studies, 4, seed=n_studies):
        grad = np.zeros(x.size)
        value = normal_density.logp_grad(x, buffer, grad)
        expected, expected_grad = logp_dlogp({"mu": x[0], "tau_log__": x[1], "w": x[2:]})
        # atol: PyMC's HalfCauchy carries log 2 (and log pi) rounded to float32, 3.8e-9 off
        np.testing.assert_allclose(value, expected, rtol=1e-10, atol=5e-9)
        np.testing.assert_allclose(grad, expected_grad, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("n_studies", sorted(DATA))
def test_gradient_matches_finite_differences(n_studies):
    y, se = (np.array(v) for v in DATA[n_studies])
    buffer = normal_density.buffer(y, se, _priors("StudentT", "HalfCauchy"))
    h = 1e-6
    for x in _points(n_studies, 2, seed=20 + n_studies):
        grad = np.zeros(x.size)
        normal_density.logp_grad(x, buffer, grad)
        for k in range(x.size):
            e = np.zeros(x.size)
            e[k] = h
            up = normal_density.logp_grad(x + e, buffer, np.zeros(x.size))
            down = normal_density.logp_grad(x - e, buffer, np.zeros(x.size))
            assert abs((up - down) / (2 * h) - grad[k]) < 1e-5 * max(1.0, abs(grad[k]))


def test_expand_gives_the_trial_effects():
    y, se = (np.array(v) for v in DATA[6])
    buffer = normal_density.buffer(y, se, _priors("Normal", "HalfNormal"))
    x = next(_points(6, 1, seed=5))
    out = np.zeros(int(buffer[normal_density.H_NEXPANDED]))
    assert normal_density.expand(x, buffer, out) == out.size
    np.testing.assert_allclose(out[:2], [x[0], np.exp(x[1])])
    np.testing.assert_allclose(out[2:8], x[2:])
    np.testing.assert_allclose(out[8:], x[0] + np.exp(x[1]) * x[2:])
