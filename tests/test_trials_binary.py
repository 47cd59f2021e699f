"""Trials, one binary outcome: conjugate Beta analysis (no MCMC, fast)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import beta as beta_dist

from bayes_poem import DataError, SpecError, load_dataset
from bayes_poem.dims import DRAW
from bayes_poem.intervals import IntervalSpec
from bayes_poem.trials import ArmCounts, BetaPrior, analyse_binary, binary_from_table
from bayes_poem.trials.binary import (
    exact_prob_noninferior,
    prob_difference_above,
    prob_difference_below,
    prob_noninferior_grid,
)

# (anterior, posterior, margin, kind, priors): real shipped counts, small, extreme, harm.
CASES = [
    ((46, 54), (45, 57), 0.10, "benefit", None),          # Khashab2020_long
    ((31, 31), (32, 32), 0.05, "benefit", None),          # Tan2018, all events
    ((8, 73), (7, 77), 0.05, "harm", None),               # Khashab2020 adverse events
    ((29, 59), (25, 60), 0.10, "harm", None),             # abnormal acid exposure
    ((3, 10), (1, 12), 0.15, "harm", (0.5, 0.5)),         # Jeffreys priors, tiny arms
    ((0, 20), (2, 20), 0.02, "harm", (2.0, 8.0)),         # zero events, informative prior
    ((180, 200), (170, 200), 0.08, "benefit", (1.0, 1.0)),
]


@pytest.mark.parametrize(("anterior", "posterior", "margin", "kind", "prior"), CASES)
def test_draws_match_exact_probability_within_mcse(anterior, posterior, margin, kind, prior):
    """Show it (1): P(non-inferior) from posterior draws vs quadrature, 4 MC SEs."""
    priors = {} if prior is None else {"prior_anterior": BetaPrior(*prior),
                                      "prior_posterior": BetaPrior(*prior)}
    n_draws = 40_000
    result = analyse_binary(anterior=anterior, posterior=posterior, margin=margin, kind=kind,
                            draws=n_draws, seed=11, **priors)
    p = result.exact_p_noninferior
    tolerance = 4 * math.sqrt(p * (1 - p) / n_draws)
    assert abs(result.p_noninferior - p) <= max(tolerance, 1e-12)
    # and the exact value is what its definition says, by an independent integral
    a = result.anterior.posterior(result.prior_anterior)
    b = result.posterior.posterior(result.prior_posterior)
    shift = -margin if kind == "benefit" else margin

    def inner(u):
        x = beta_dist(*a).ppf(u)
        return beta_dist(*b).sf(x + shift) if kind == "benefit" else beta_dist(*b).cdf(x + shift)

    independent, _ = integrate.quad(inner, 0, 1, limit=400, epsabs=1e-12)
    assert p == pytest.approx(independent, abs=1e-7)


def test_harm_direction_is_reversed():
    # A harm that is much rarer with posterior: non-inferior (and superior) for harm ...
    harm = analyse_binary(anterior=(20, 100), posterior=(5, 100), margin=0.05, kind="harm")
    assert harm.exact_p_noninferior > 0.999
    assert harm.hypothesis == "P(p_posterior - p_anterior < +0.05)"
    # ... while the same counts read as a benefit are clearly inferior.
    benefit = analyse_binary(anterior=(20, 100), posterior=(5, 100), margin=0.05)
    assert benefit.exact_p_noninferior < 0.02
    assert benefit.hypothesis == "P(p_posterior - p_anterior > -0.05)"
    # complementary events: P(D > -d) + P(D < -d) = 1
    a, b = (21, 81), (6, 96)
    assert prob_difference_above(a, b, -0.05) + prob_difference_below(a, b, -0.05) == \
        pytest.approx(1.0, abs=1e-10)


def test_grid_quadrature_agrees_with_adaptive_quadrature():
    rng = np.random.default_rng(3)
    for _ in range(40):
        n = int(rng.integers(5, 3000))
        xa, xp = rng.binomial(n, rng.uniform(0.02, 0.98, size=2))
        margin = float(rng.uniform(0.01, 0.3))
        kind = str(rng.choice(["benefit", "harm"]))
        exact = exact_prob_noninferior((1 + xa, 1 + n - xa), (1 + xp, 1 + n - xp), margin, kind)
        grid = prob_noninferior_grid(1 + xa, 1 + n - xa, 1 + xp, 1 + n - xp, margin, kind)
        assert grid == pytest.approx(exact, abs=1e-5)


def test_summary_layout_and_contrasts():
    result = analyse_binary(anterior=(46, 54), posterior=(45, 57), margin=0.1,
                            interval=IntervalSpec("eti", 0.9), trial="T", outcome="success")
    table = result.summary()
    assert table["quantity"].tolist() == ["p_anterior", "p_posterior", "risk_difference",
                                          "risk_ratio", "odds_ratio"]
    assert (table["interval"] == "90% ETI").all()
    assert ((table["lower"] <= table["median"]) & (table["median"] <= table["upper"])).all()
    p = result.draws["p"]
    assert p.dims == (DRAW, "arm") and list(p["arm"].values) == ["anterior", "posterior"]
    diff = p.sel(arm="posterior") - p.sel(arm="anterior")
    np.testing.assert_allclose(result.draws["risk_difference"], diff)
    # posterior means are the Beta means
    row = table.set_index("quantity").loc["p_anterior"]
    assert row["mean"] == pytest.approx(47 / 56, abs=4 * math.sqrt(47 * 9 / 56**2 / 57 / 20_000))
    ni = result.noninferiority().iloc[0]
    assert ni["p_noninferior_exact"] == result.exact_p_noninferior
    assert ni["mcse"] == pytest.approx(result.mcse_p_noninferior)


def test_same_seed_same_draws_and_seed_matters():
    one = analyse_binary(anterior=(8, 73), posterior=(7, 77), margin=0.05, kind="harm", seed=4)
    two = analyse_binary(anterior=(8, 73), posterior=(7, 77), margin=0.05, kind="harm", seed=4)
    other = analyse_binary(anterior=(8, 73), posterior=(7, 77), margin=0.05, kind="harm",
                           seed=5)
    np.testing.assert_array_equal(one.draws["p"], two.draws["p"])
    assert not np.array_equal(one.draws["p"], other.draws["p"])


def test_from_the_shipped_dataset():
    table = load_dataset("poem_anterior_posterior_rcts")
    result = binary_from_table(table, trial="Khashab2020", outcome="adverse_event",
                               margin=0.05, kind="harm")
    assert (result.anterior.events, result.anterior.total) == (8, 73)
    assert (result.posterior.events, result.posterior.total) == (7, 77)
    with pytest.raises(DataError, match="trial 'Khashab' is not in the data"):
        binary_from_table(table, trial="Khashab", outcome="adverse_event", margin=0.05)
    with pytest.raises(DataError, match="has no outcome 'clinical_success'"):
        binary_from_table(table, trial="Khashab2020", outcome="clinical_success", margin=0.05)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"anterior": (0, 0)}, DataError, "total is 0: an arm with no patients"),
    ({"posterior": (5, 3)}, DataError, r"events \(5\) > total \(3\)"),
    ({"anterior": (-1, 3)}, DataError, "events is negative"),
    ({"anterior": (1.5, 3)}, DataError, "events must be an integer count"),
    ({"margin": -0.1}, SpecError, r"margin: must be > 0 \(got -0.1\)"),
    ({"margin": 0}, SpecError, "margin: must be > 0"),
    ({"margin": float("nan")}, SpecError, "margin: must be a finite number"),
    ({"kind": "harmful"}, SpecError, "kind: 'harmful' is not one of benefit, harm"),
    ({"draws": 1}, SpecError, "draws: must be >= 2"),
])
def test_bad_inputs_raise_one_clear_error(kwargs, error, message):
    args = {"anterior": (10, 20), "posterior": (11, 20), "margin": 0.1, **kwargs}
    with pytest.raises(error, match=message):
        analyse_binary(**args)


def test_bad_priors_and_counts_name_the_problem():
    with pytest.raises(SpecError, match="Beta prior 'a': must be > 0"):
        BetaPrior(0.0, 1.0)
    with pytest.raises(DataError, match="my arm: total is 0"):
        ArmCounts(0, 0, where="my arm")
