"""Tier 3 (slow, mcmc): parameter recovery for the engine's newer terms.

(a) the coefficient ``beta`` of a numeric moderator, (b) ``tau[subgroup]`` under
``study_heterogeneity = "by_subgroup"``. As in ``tests/test_recovery.py``, each
replicate draws the true parameters from the model's default priors (so that
central posterior intervals have exactly nominal coverage in expectation),
simulates a table from the model, fits the default model and records whether the
true value lies in the central 90% posterior interval.

Each replicate contributes ONE Bernoulli outcome per test (for ``tau[subgroup]``
the subgroup ``replicate % D``), so over R independent replicates the number
covered is Binomial(R, 0.9) when the engine is right. The acceptance band is the
central 99% of that distribution, ``[binom.ppf(0.005, R, 0.9), binom.isf(0.005,
R, 0.9)]`` = [168, 190] of R = 200 replicates. Monte Carlo error of the interval
end points (2 chains x 1000 draws after 1000 tuning steps) is small against the
binomial spread and only widens the band's effective width slightly.

The designs are informative (12 studies, every study with all three subgroups,
10-60 patients per cell), so that the posteriors of ``beta`` and ``tau[d]`` are
not their priors: a wrong likelihood, gradient or coding (e.g. one shared tau,
a design matrix not standardised as the spec's) moves coverage out of the band.
Each test takes about 2-3 minutes on one core (200 fits of 0.5-1 s). All data here are SYNTHETIC.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import binom

from bayes_poem import ModelSpec, load_table
from bayes_poem.errors import ConvergenceWarning
from bayes_poem.sampling import SamplerSettings
from tests.test_recovery import LEVEL

pytestmark = [pytest.mark.slow, pytest.mark.mcmc]

REPLICATES = 200
BAND = 0.99
SUBGROUPS = ["type_i", "type_ii", "type_iii"]
STUDIES = 12


def _band(replicates: int) -> tuple[int, int]:
    """Central ``BAND`` range of Binomial(replicates, LEVEL), in counts."""
    tail = (1 - BAND) / 2
    return (int(binom.ppf(tail, replicates, LEVEL)), int(binom.isf(tail, replicates, LEVEL)))


def _covered(draws: np.ndarray, truth: float) -> bool:
    lower, upper = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return bool(lower <= truth <= upper)


def _design(rng: np.random.Generator) -> pd.DataFrame:
    """Every study reports every subgroup; 10-60 patients per cell; a row-level
    numeric covariate (follow-up in months) that differs between a study's rows."""
    rows = [{"study": f"SIM-{s + 1:02d}", "subgroup": d, "outcome": "synthetic_success",
             "total": int(rng.integers(10, 61)), "followup": float(rng.integers(3, 37))}
            for s in range(STUDIES) for d in SUBGROUPS]
    return pd.DataFrame(rows)


def _prior_draws(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Default priors: mu ~ N(0, 1.5), sigma_subgroup ~ HN(1), z ~ N(0, 1), w ~ N(0, 1)."""
    sigma = abs(rng.normal(0.0, 1.0))
    return {"mu": rng.normal(0.0, 1.5), "alpha": sigma * rng.standard_normal(len(SUBGROUPS)),
            "w": rng.standard_normal(STUDIES)}


def _fit(frame: pd.DataFrame, replicate: int, **options):
    table = load_table(frame, source=f"SYNTHETIC replicate {replicate}")
    spec = ModelSpec.from_table(table, subgroups=SUBGROUPS, **options)
    assert spec.subgroup_effects == "random"  # the default for three subgroups
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return spec, spec.fit(SamplerSettings(draws=1000, tune=1000, chains=2,
                                              seed=replicate))


def _assert_in_band(name: str, covered: int) -> None:
    lo, hi = _band(REPLICATES)
    assert lo <= covered <= hi, (f"{name}: {covered} of {REPLICATES} central {LEVEL:.0%} "
                                 f"intervals cover the truth; {BAND:.0%} band [{lo}, {hi}]")


def test_coverage_of_a_numeric_moderator_coefficient():
    covered = 0
    for replicate in range(REPLICATES):
        rng = np.random.default_rng([2027, 1, replicate])
        frame = _design(rng)
        p = _prior_draws(rng)
        tau = abs(rng.normal(0.0, 1.0))
        beta = rng.normal(0.0, 1.0)  # default beta prior, per SD of the moderator
        v = frame["followup"].to_numpy()
        x = (v - v.mean()) / v.std(ddof=1)  # the spec's default coding over the rows
        d = frame["subgroup"].map(SUBGROUPS.index).to_numpy()
        s = np.repeat(np.arange(STUDIES), len(SUBGROUPS))
        eta = p["mu"] + p["alpha"][d] + tau * p["w"][s] + beta * x
        frame["events"] = rng.binomial(frame["total"].to_numpy(), expit(eta))
        spec, result = _fit(frame, replicate, moderators=["followup"])
        if replicate == 0:  # the truth is on the scale the model estimates (rows of the
            # spec are in subgroup order, so match them by study and subgroup)
            coded = frame.assign(x=x).set_index(["study", "subgroup"])["x"]
            rows = pd.MultiIndex.from_frame(spec.table.frame[["study", "subgroup"]])
            np.testing.assert_allclose(spec.design()[:, 0], coded.loc[rows].to_numpy(),
                                       rtol=1e-12)
        covered += _covered(result.posterior["beta"].values.ravel(), beta)
    _assert_in_band("beta[followup]", covered)


def test_coverage_of_tau_per_subgroup():
    covered = 0
    for replicate in range(REPLICATES):
        rng = np.random.default_rng([2027, 2, replicate])
        frame = _design(rng)
        p = _prior_draws(rng)
        taus = np.abs(rng.normal(0.0, 1.0, len(SUBGROUPS)))  # tau[d] iid from the tau prior
        d = frame["subgroup"].map(SUBGROUPS.index).to_numpy()
        s = np.repeat(np.arange(STUDIES), len(SUBGROUPS))
        eta = p["mu"] + p["alpha"][d] + taus[d] * p["w"][s]  # one w per study, scaled by tau[d]
        frame["events"] = rng.binomial(frame["total"].to_numpy(), expit(eta))
        _, result = _fit(frame, replicate, study_heterogeneity="by_subgroup")
        checked = replicate % len(SUBGROUPS)
        draws = result.posterior["tau"].sel(subgroup=SUBGROUPS[checked]).values.ravel()
        covered += _covered(draws, taus[checked])
    _assert_in_band("tau[subgroup]", covered)


def test_band_is_the_central_99_percent_of_the_binomial():
    lo, hi = _band(REPLICATES)
    assert (lo, hi) == (168, 190)
    assert binom.cdf(lo - 1, REPLICATES, LEVEL) <= 0.005
    assert binom.sf(hi, REPLICATES, LEVEL) <= 0.005
