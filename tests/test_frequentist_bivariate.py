"""The bivariate REML model (``bayes_poem.frequentist.bivariate``), unit tier.

Checked against (1) a direct numerical maximisation of the restricted
log-likelihood written out here independently (per-study blocks, explicit
inverse, Nelder-Mead on unconstrained parameters), (2) two univariate REML fits
of :func:`~bayes_poem.frequentist.pool_proportions` when rho is pinned at 0, and
(3) invariances: row order, outcome order, the sign of an outcome's logits, a
location shift. The simulated tables are SYNTHETIC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import expit

from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist import pool_proportions
from bayes_poem.frequentist.bivariate import (
    BIVARIATE_COLUMNS,
    bivariate_proportions,
    fit_bivariate,
    reml_loglik,
)
from bayes_poem.table import load_table


def _simulated(seed: int = 3, n_studies: int = 30, tau=(0.7, 0.5), rho=0.6):
    """SYNTHETIC effect sizes: two subgroups, some studies with one outcome or both
    subgroups, interior REML optimum."""
    rng = np.random.default_rng(seed)
    beta = {(0, "a"): 1.2, (0, "b"): 0.4, (1, "a"): -1.5, (1, "b"): -0.8}
    G = np.array([[tau[0] ** 2, rho * tau[0] * tau[1]], [rho * tau[0] * tau[1], tau[1] ** 2]])
    rows = []
    for s in range(n_studies):
        u = rng.multivariate_normal(np.zeros(2), G)
        groups = ["a", "b"] if s % 4 == 0 else ["a" if s % 2 else "b"]
        outcomes = [0] if s % 7 == 3 else [1] if s % 7 == 5 else [0, 1]
        for d in groups:
            for o in outcomes:
                v = rng.uniform(0.05, 0.4)
                rows.append((beta[(o, d)] + u[o] + rng.normal(0, np.sqrt(v)), v, o,
                             f"S{s:02d}", d))
    y, v, o, s, d = (np.array(c) for c in zip(*rows, strict=True))
    return y, v, o.astype(int), s, d


def _independent_reml(y, v, o, s, d, tau2, rho, within_rho=0.0):
    """The restricted log-likelihood written out directly (metafor REMLf = TRUE)."""
    n = y.size
    cells = sorted({(oi, di) for oi, di in zip(o, d, strict=True)})
    X = np.array([[1.0 if (oi, di) == c else 0.0 for c in cells]
                  for oi, di in zip(o, d, strict=True)])
    p = X.shape[1]
    cov = rho * np.sqrt(tau2[0] * tau2[1])
    S = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if s[i] != s[j]:
                continue
            S[i, j] = tau2[o[i]] if o[i] == o[j] else cov
            if i == j:
                S[i, j] += v[i]
            elif d[i] == d[j] and o[i] != o[j]:
                S[i, j] += within_rho * np.sqrt(v[i] * v[j])
    Si = np.linalg.inv(S)
    A = X.T @ Si @ X
    b = np.linalg.solve(A, X.T @ Si @ y)
    r = y - X @ b
    return -0.5 * ((n - p) * np.log(2 * np.pi) - np.linalg.slogdet(X.T @ X)[1]
                   + np.linalg.slogdet(S)[1] + np.linalg.slogdet(A)[1] + r @ Si @ r), b


def _maximise_independently(y, v, o, s, d, within_rho=0.0):
    def negative(x):
        return -_independent_reml(y, v, o, s, d, np.exp(2 * x[:2]), np.tanh(x[2]),
                                  within_rho)[0]

    res = optimize.minimize(negative, np.array([np.log(0.5), np.log(0.5), 0.3]),
                            method="Nelder-Mead",
                            options={"xatol": 1e-11, "fatol": 1e-14, "maxiter": 20000,
                                     "maxfev": 20000})
    tau2 = np.exp(2 * res.x[:2])
    rho = np.tanh(res.x[2])
    ll, b = _independent_reml(y, v, o, s, d, tau2, rho, within_rho)
    return tau2, rho, ll, b


@pytest.mark.parametrize("within_rho", [0.0, 0.3])
def test_matches_a_direct_maximisation_of_the_reml_likelihood(within_rho):
    y, v, o, s, d = _simulated()
    fit = fit_bivariate(y, v, o, s, d, within_rho=within_rho)
    tau2, rho, ll, b = _maximise_independently(y, v, o, s, d, within_rho)
    assert 0.05 < tau2.min() and abs(rho) < 0.99  # an interior optimum: a real check
    np.testing.assert_allclose(fit.tau2, tau2, atol=1e-5)
    assert fit.rho == pytest.approx(rho, abs=1e-5)
    assert fit.loglik == pytest.approx(ll, abs=1e-5)
    np.testing.assert_allclose(fit.estimate, b, atol=1e-5)
    assert fit.converged and fit.note == ""
    # the likelihood the module maximises is the one written out here
    assert reml_loglik(y, v, o, s, d, (0.3, 0.2), -0.4, within_rho=within_rho) == \
        pytest.approx(_independent_reml(y, v, o, s, d, (0.3, 0.2), -0.4, within_rho)[0],
                      abs=1e-9)


def test_within_rho_changes_the_fit():
    y, v, o, s, d = _simulated()
    assert fit_bivariate(y, v, o, s, d, within_rho=0.5).rho != pytest.approx(
        fit_bivariate(y, v, o, s, d).rho, abs=1e-3)


def _one_subgroup_table(seed: int = 11, n_studies: int = 12):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_studies):
        for outcome, mu, tau in (("cs", 1.5, 0.6), ("ae", -2.0, 0.4)):
            if (outcome == "ae" and s % 5 == 2) or (outcome == "cs" and s % 6 == 1):
                continue  # studies reporting one outcome
            n = int(rng.integers(8, 60))
            rows.append({"study": f"S{s}", "subgroup": "all", "outcome": outcome,
                         "events": int(rng.binomial(n, expit(mu + tau * rng.normal()))),
                         "total": n})
    return load_table(pd.DataFrame(rows), source="synthetic")


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_rho_fixed_at_0_is_two_univariate_reml_fits(seed):
    table = _one_subgroup_table(seed)
    fit = bivariate_proportions(table, ["cs", "ae"], rho_fixed=0.0, subgroup_terms=False)
    ll = 0.0
    for j, outcome in enumerate(("cs", "ae")):
        uni = pool_proportions(table, outcome=outcome, method="REML")
        row = fit.to_frame().iloc[j]
        assert row.outcome == outcome and row.k == uni.k
        assert fit.tau2[j] == pytest.approx(uni.tau2, abs=1e-6)
        assert row.estimate == pytest.approx(uni.estimate, abs=1e-6)
        assert row.se == pytest.approx(uni.se, abs=1e-6)
        assert row.proportion == pytest.approx(uni.back_estimate, abs=1e-6)
        y, w = uni.effects.yi, 1 / (uni.effects.vi + uni.tau2)
        mu = np.sum(w * y) / w.sum()
        ll += (-0.5 * (y.size - 1) * np.log(2 * np.pi) + 0.5 * np.log(y.size)
               + 0.5 * np.sum(np.log(w)) - 0.5 * np.log(w.sum()) - 0.5 * np.sum(w * (y - mu)**2))
    assert fit.rho == 0.0
    assert fit.loglik == pytest.approx(ll, abs=1e-6)


def test_invariances():
    y, v, o, s, d = _simulated(seed=5)
    base = fit_bivariate(y, v, o, s, d)
    # row order
    perm = np.random.default_rng(0).permutation(y.size)
    shuffled = fit_bivariate(y[perm], v[perm], o[perm], s[perm], d[perm])
    np.testing.assert_allclose(shuffled.tau2, base.tau2, atol=1e-7)
    assert shuffled.rho == pytest.approx(base.rho, abs=1e-7)
    for cell in base.cells:
        assert shuffled.estimate[shuffled.cell(*cell)] == pytest.approx(
            base.estimate[base.cell(*cell)], abs=1e-7)
    # outcome order: the variances swap, rho stays
    swapped = fit_bivariate(y, v, 1 - o, s, d, outcomes=("outcome_1", "outcome_0"))
    np.testing.assert_allclose(swapped.tau2[::-1], base.tau2, atol=1e-7)
    assert swapped.rho == pytest.approx(base.rho, abs=1e-7)
    assert swapped.loglik == pytest.approx(base.loglik, abs=1e-8)
    # events <-> non-events of outcome 1 negates its logits: rho changes sign
    flipped = fit_bivariate(np.where(o == 1, -y, y), v, o, s, d)
    np.testing.assert_allclose(flipped.tau2, base.tau2, atol=1e-7)
    assert flipped.rho == pytest.approx(-base.rho, abs=1e-7)
    for cell in base.cells:
        sign = -1 if cell[0] == "outcome_1" else 1
        assert flipped.estimate[flipped.cell(*cell)] == pytest.approx(
            sign * base.estimate[base.cell(*cell)], abs=1e-7)
    # a location shift of outcome 0 moves its fixed effects only
    shifted = fit_bivariate(np.where(o == 0, y + 0.7, y), v, o, s, d)
    np.testing.assert_allclose(shifted.tau2, base.tau2, atol=1e-7)
    np.testing.assert_allclose(
        shifted.estimate - base.estimate,
        [0.7 if c[0] == "outcome_0" else 0.0 for c in base.cells], atol=1e-7)
    np.testing.assert_allclose(shifted.se, base.se, atol=1e-7)


def test_counts_use_the_continuity_correction_and_the_frame_is_tidy():
    frame = pd.DataFrame({
        "study": ["A", "A", "B", "B", "C", "C", "D"],
        "subgroup": ["x"] * 7,
        "outcome": ["cs", "ae"] * 3 + ["cs"],
        "events": [10, 0, 7, 2, 12, 1, 5],
        "total": [10, 10, 9, 9, 15, 15, 8],
    })
    table = load_table(frame, source="synthetic")
    fit = bivariate_proportions(table, ["cs", "ae"], subgroup_terms=False)
    assert fit.n_corrected == (1, 1)  # A: 10/10 successes and 0/10 adverse events
    out = fit.to_frame()
    assert tuple(out.columns) == BIVARIATE_COLUMNS
    assert list(out.outcome) == ["cs", "ae"] and list(out.k) == [4, 3]
    assert (out.ci_lower < out.estimate).all() and (out.estimate < out.ci_upper).all()
    np.testing.assert_allclose(out.proportion, expit(out.estimate))


def test_an_outcome_without_residual_df_has_tau2_0_with_a_note():
    frame = pd.DataFrame({"study": ["A", "B", "C", "A"], "subgroup": ["x"] * 4,
                          "outcome": ["cs", "cs", "cs", "ae"], "events": [5, 7, 9, 1],
                          "total": [10, 10, 12, 10]})
    fit = bivariate_proportions(load_table(frame, source="synthetic"), ["cs", "ae"],
                                subgroup_terms=False)
    assert fit.tau2[1] == 0.0 and "tau^2[ae] fixed at 0" in fit.note
    assert np.isnan(fit.rho) and "rho is not identified" in fit.note


def test_bad_inputs_are_one_error():
    y, v, o, s, d = _simulated()
    with pytest.raises(SpecError, match="within_rho"):
        fit_bivariate(y, v, o, s, d, within_rho=1.0)
    with pytest.raises(SpecError, match="rho_fixed"):
        fit_bivariate(y, v, o, s, d, rho_fixed=1.5)
    with pytest.raises(DataError, match="outcome must be 0 or 1"):
        fit_bivariate(y, v, o + 1, s, d)
    with pytest.raises(DataError, match="not in the data"):
        bivariate_proportions(_one_subgroup_table(), ["cs", "harm"])
