"""The compiled integrated log-likelihood (bayes_poem.study_loglik_kernel) against the
vectorised numpy code it replaced (kept here as the reference): same values to 1e-10."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, sparse, special, stats
from scipy.special import expit, log_expit

from bayes_poem import study_loglik
from bayes_poem.predictive import log_binomial_coefficient
from bayes_poem.study_loglik import _integrated


def _reference(base, tau, events, total, row_of, n_studies, nodes=20):
    """The vectorised implementation before the kernel (sparse sums, log_expit twice,
    Newton from 0 until the block's largest step is below 1e-10), and where its Newton
    converged (it cycles for some large tau x gradient: see the brute-force test)."""
    keep = row_of >= 0
    tau = tau.reshape(-1, 1) if tau.ndim == 1 else tau[:, keep]
    base, row_of = base[:, keep], row_of[keep]
    y, n = events[keep].astype(float), total[keep].astype(float)
    summer = sparse.csr_matrix((np.ones(row_of.size), (row_of, np.arange(row_of.size))),
                               shape=(n_studies, row_of.size))

    def sum_last(values):
        return np.asarray(summer @ values.T).T

    log_c = summer @ log_binomial_coefficient(n, y)
    t, w = np.polynomial.hermite_e.hermegauss(nodes)
    x = np.zeros((base.shape[0], n_studies))
    for _ in range(50):
        p = expit(base + tau * x[:, row_of])
        grad = sum_last(tau * (y - n * p)) - x
        info = sum_last(tau**2 * (n * p * (1.0 - p))) + 1.0
        step = np.clip(grad / info, -5.0, 5.0)
        x = x + step
        if np.max(np.abs(step), initial=0.0) < 1e-10:
            break
    p = expit(base + tau * x[:, row_of])
    sigma = 1.0 / np.sqrt(sum_last(tau**2 * (n * p * (1.0 - p))) + 1.0)
    points = x[..., None] + sigma[..., None] * t
    eta = base[..., None] + tau[..., None] * points[:, row_of, :]
    ll_rows = y[:, None] * log_expit(eta) + (n - y)[:, None] * log_expit(-eta)
    ll = np.moveaxis(sum_last(np.moveaxis(ll_rows, 1, -1).reshape(-1, y.size))
                     .reshape(base.shape[0], nodes, n_studies), -1, 1) + log_c[None, :, None]
    g = ll - 0.5 * points**2 + 0.5 * t**2 + np.log(w)
    top = g.max(-1, keepdims=True)
    return (np.log(sigma) - 0.5 * np.log(2.0 * np.pi)
            + (top + np.log(np.exp(g - top).sum(-1, keepdims=True)))[..., 0],
            np.abs(step) < 1e-10)


def _assert_agree(got, expected, converged):
    assert converged.mean() > 0.9
    np.testing.assert_allclose(got[converged], expected[converged], rtol=0.0, atol=1e-10)


def _data(rng, n_draws, row_of):
    rows = row_of.size
    total = rng.integers(1, 400, rows)
    total[:3] = [5000, 2, 1]
    events = rng.binomial(total, rng.uniform(0.0, 1.0, rows))
    events[:3] = [4990, 0, 1]  # near-certain, none, all
    base = rng.normal(0.0, 2.5, (n_draws, rows))
    base[0, :2] = [9.0, -12.0]
    tau = rng.gamma(2.0, 0.4, n_draws)
    tau[:2] = [1e-9, 3.0]
    return base, tau, events, total


def test_single_row_studies_agree_with_the_vectorised_code():
    """The single-group case: one row per study, rows not in study order."""
    rng = np.random.default_rng(20261127)
    row_of = rng.permutation(300)
    base, tau, events, total = _data(rng, 40, row_of)
    got = _integrated(base, tau, events, total, row_of, 300)
    _assert_agree(got, *_reference(base, tau, events, total, row_of, 300))
    assert np.isfinite(got).all()


@pytest.mark.parametrize("per_row_tau", [False, True])
def test_studies_of_several_rows_agree_with_the_vectorised_code(per_row_tau):
    """Studies of 1-5 rows interleaved, rows of no study (-1) and a study of no rows
    (its value 0); a tau per draw, or per draw and row (by_subgroup)."""
    rng = np.random.default_rng(15)
    n_studies = 60
    row_of = np.repeat(np.arange(n_studies), rng.integers(1, 6, n_studies))
    row_of[row_of == 7] = -1
    row_of = rng.permutation(row_of)
    base, tau, events, total = _data(rng, 30, row_of)
    if per_row_tau:
        tau = tau[:, None] * rng.uniform(0.5, 2.0, row_of.size)
    got = _integrated(base, tau, events, total, row_of, n_studies)
    _assert_agree(got, *_reference(base, tau, events, total, row_of, n_studies))
    np.testing.assert_allclose(got[:, 7], 0.0, atol=1e-12)


def test_blocks_of_draws_do_not_change_the_values(monkeypatch):
    """Blocks of one draw (and a last, shorter block) give the same values as one block."""
    rng = np.random.default_rng(3)
    row_of = rng.permutation(np.repeat(np.arange(25), 2))
    base, tau, events, total = _data(rng, 7, row_of)
    whole = _integrated(base, tau, events, total, row_of, 25)
    for block in (50 * 20, 3 * 50 * 20):
        monkeypatch.setattr(study_loglik, "_NODE_BLOCK", block)
        np.testing.assert_array_equal(_integrated(base, tau, events, total, row_of, 25), whole)


def test_large_tau_finds_the_mode():
    """Where the earlier code's Newton cycled between two points (tau 3-10, large
    studies far from the mode at x = 0), the bracketed Newton still finds the mode:
    the same rule centred at the root of g' found by bisection (brentq) agrees."""
    rng = np.random.default_rng(8)
    row_of = np.arange(40)
    base, _, events, total = _data(rng, 3, row_of)
    tau = np.array([3.0, 6.0, 10.0])
    got = _integrated(base, tau, events, total, row_of, 40)
    _, converged = _reference(base, tau, events, total, row_of, 40)
    assert not converged.all()  # the case the bracket is for
    t, w = np.polynomial.hermite_e.hermegauss(20)
    y, n = events.astype(float), total.astype(float)
    for d in range(3):
        for s in range(40):
            def grad(x, d=d, s=s):
                return tau[d] * (y[s] - n[s] * expit(base[d, s] + tau[d] * x)) - x

            mode = optimize.brentq(grad, -100.0, 100.0, xtol=1e-14)
            p = expit(base[d, s] + tau[d] * mode)
            sigma = 1.0 / np.sqrt(1.0 + tau[d] ** 2 * n[s] * p * (1.0 - p))
            point = mode + sigma * t
            g = (stats.binom.logpmf(y[s], n[s], expit(base[d, s] + tau[d] * point))
                 - 0.5 * point**2 + 0.5 * t**2 + np.log(w))
            expected = np.log(sigma) - 0.5 * np.log(2.0 * np.pi) + special.logsumexp(g)
            assert got[d, s] == pytest.approx(expected, abs=1e-10), (d, s)


def test_binomial_kernel_is_the_two_log_expits():
    """The nested quadrature's row term: y eta - n softplus(eta) without cancellation,
    to rounding of the two-log_expit form, for eta from -800 to 800 and y = 0, n."""
    eta = np.array([-800.0, -40.0, -3.0, -1e-12, 0.0, 1e-12, 2.5, 40.0, 800.0])[:, None]
    y = np.array([0.0, 1.0, 37.0, 5000.0])
    n = np.array([0.0, 3.0, 5000.0, 5000.0])
    got = study_loglik._binomial_kernel(eta, y, n)
    expected = y * log_expit(eta) + (n - y) * log_expit(-eta)
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-12)
