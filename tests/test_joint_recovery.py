"""Tier 3: parameter recovery of the joint model's rho and both taus.

R SYNTHETIC SED-like tables (8 studies, 4 subgroups, 1-3 disorders per study,
2-30 patients per cell, both outcomes per cell except one study that reports
clinical success only), each simulated with true parameters drawn from the
default priors (mu[o] ~ Normal(0, 1.5), tau[o] ~ HalfNormal(1),
sigma_subgroup[o] ~ HalfNormal(1), rho ~ LKJ(2)) and fitted with the default
joint model. Drawing the truth from the prior makes every central posterior
interval cover it with exactly its probability (if the sampler is right), so the
number of the R replicates whose central 80% interval covers the truth is
Binomial(R, 0.8) for each of rho, tau[0], tau[1]; each count must lie in the
central 99% range of that binomial.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

from bayes_poem import load_table
from bayes_poem.errors import ConvergenceWarning
from bayes_poem.joint import JointSpec

R = 100
PROB = 0.8
SUBGROUPS = ["type_iii", "des", "jackhammer", "unassigned"]
OUTCOMES = ("clinical_success", "adverse_event")


def _simulate(rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, float]]:
    mu = rng.normal(0.0, 1.5, 2)
    tau = np.abs(rng.normal(0.0, 1.0, 2))
    sigma = np.abs(rng.normal(0.0, 1.0, 2))
    rho = 2.0 * rng.beta(2.0, 2.0) - 1.0
    alpha = sigma[:, None] * rng.standard_normal((2, 4))
    rows = []
    for s in range(8):
        e0, e1 = rng.standard_normal(2)
        u = (tau[0] * e0, tau[1] * (rho * e0 + np.sqrt(1 - rho**2) * e1))
        for d in rng.choice(4, size=rng.integers(1, 4), replace=False):
            n = int(rng.integers(2, 31))
            for o in range(1 if s == 7 else 2):
                y = rng.binomial(n, expit(mu[o] + alpha[o, d] + u[o]))
                rows.append((f"SIM-{s}", SUBGROUPS[d], OUTCOMES[o], int(y), n))
    frame = pd.DataFrame(rows, columns=["study", "subgroup", "outcome", "events", "total"])
    return frame, {"rho": rho, "tau_0": tau[0], "tau_1": tau[1]}


@pytest.mark.slow
@pytest.mark.mcmc
def test_rho_and_taus_are_recovered_over_replicates():
    rng = np.random.default_rng(20261127)
    covered = {"rho": 0, "tau_0": 0, "tau_1": 0}
    for r in range(R):
        frame, truth = _simulate(rng)
        table = load_table(frame, source=f"SYNTHETIC replicate {r}")
        subgroups = [d for d in SUBGROUPS if d in set(frame["subgroup"])]
        # random subgroup effects, as the truth was drawn (>= 2 subgroups with this seed)
        spec = JointSpec.from_table(table, subgroups=subgroups, subgroup_effects="random")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            post = spec.fit(draws=500, tune=500, chains=2, seed=r).posterior
        draws = {"rho": post["rho"].values, "tau_0": post["tau"].values[..., 0],
                 "tau_1": post["tau"].values[..., 1]}
        for name, value in truth.items():
            low, high = np.quantile(draws[name], [(1 - PROB) / 2, (1 + PROB) / 2])
            covered[name] += bool(low <= value <= high)
    low, high = stats.binom(R, PROB).ppf([0.005, 0.995])
    print(f"covered by the central {PROB:.0%} intervals of {R} replicates: {covered}; "
          f"band [{low:g}, {high:g}]")
    assert all(low <= c <= high for c in covered.values()), (covered, (low, high))
