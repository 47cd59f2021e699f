"""Tier 3 (slow, mcmc): the Bayesian precision model's slope, over replicates.

Each replicate simulates a SYNTHETIC single-group table of ``STUDIES`` studies whose sizes
are drawn log-uniformly from 10 to 400 patients, with

    logit p_i = mu + b * x_i + tau * w_i,   x_i = 1 / sqrt(n_i),   w_i ~ N(0, 1),

and fits the precision model of :func:`bayes_poem.bias.with_precision` (the default
``sqrtninv`` precision, one slope, default priors). Two scenarios:

* a planted small-study effect, ``b = PLANTED`` (smaller studies report higher rates): the
  central 90% posterior interval of the slope per unit of precision must cover ``b``;
* none planted, ``b = 0``: the interval must cover 0.

Each replicate is one Bernoulli outcome, so over R independent replicates the number
covered is Binomial(R, 0.9) when the intervals are calibrated. The acceptance band is the
central 99% of that distribution, ``[binom.ppf(0.005, R, 0.9), binom.isf(0.005, R, 0.9)]``
= [168, 190] of R = 200.

The true slope is fixed here, not drawn from the prior, so the nominal rate holds in the
large-sample sense (Bernstein-von Mises) rather than exactly: the design is informative
(30 studies, a wide range of sizes), and the test checks that premise too: the mean
posterior SD of the coded slope (per SD of precision) must be below a third of its prior SD
of 1, so that the prior's pull towards 0 moves coverage by well under the band's width. A
wrong sign or scale of the derived column, a centred precision (the slope is the same,
but a coding error moves ``b``), or a likelihood error moves coverage out of the band.
Run time: about 2 x 200 fits of 0.3 s (2 chains x 1000 draws) on one core.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import binom

from bayes_poem import ModelSpec, load_table
from bayes_poem.bias import with_precision
from bayes_poem.dims import MODERATOR
from bayes_poem.errors import ConvergenceWarning
from bayes_poem.sampling import SamplerSettings

pytestmark = [pytest.mark.slow, pytest.mark.mcmc]

REPLICATES = 200
LEVEL = 0.90
BAND = 0.99
STUDIES = 30
MU, TAU = 0.5, 0.3
PLANTED = 3.0  # logit per unit of 1/sqrt(n): +0.75 at n = 16 against an infinite study
SETTINGS = SamplerSettings(draws=1000, tune=1000, chains=2, seed=0)


def _band(replicates: int) -> tuple[int, int]:
    tail = (1 - BAND) / 2
    return int(binom.ppf(tail, replicates, LEVEL)), int(binom.isf(tail, replicates, LEVEL))


def _table(rng: np.random.Generator, slope: float):
    n = np.round(np.exp(rng.uniform(np.log(10), np.log(400), STUDIES))).astype(int)
    eta = MU + slope / np.sqrt(n) + TAU * rng.standard_normal(STUDIES)
    events = rng.binomial(n, expit(eta))
    frame = pd.DataFrame({"study": [f"SIM-{i:02d}" for i in range(STUDIES)],
                          "subgroup": "all", "outcome": "success", "events": events,
                          "total": n})
    return load_table(frame, source="SYNTHETIC simulation")


def _replicate(seed: int, slope: float) -> tuple[bool, float]:
    rng = np.random.default_rng([20260513, seed, int(slope != 0)])
    spec = with_precision(ModelSpec.from_table(_table(rng, slope)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = spec.fit(SETTINGS, seed=seed)
    coded = fit.posterior["beta"].sel({MODERATOR: "sqrtninv"}).values.ravel()
    per_unit = coded / spec.moderators[0].scale
    lower, upper = np.quantile(per_unit, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return bool(lower <= slope <= upper), float(coded.std())


@pytest.mark.parametrize("slope", [PLANTED, 0.0], ids=["planted", "none"])
def test_precision_slope_interval_coverage(slope):
    results = [_replicate(seed, slope) for seed in range(REPLICATES)]
    covered = sum(c for c, _ in results)
    posterior_sd = float(np.mean([sd for _, sd in results]))
    low, high = _band(REPLICATES)
    assert posterior_sd < 1 / 3, f"the design does not dominate the prior ({posterior_sd:.3f})"
    assert low <= covered <= high, (f"slope {slope}: {covered}/{REPLICATES} covered, "
                                    f"band [{low}, {high}]")
