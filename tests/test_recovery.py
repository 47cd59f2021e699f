"""Tier 3 (slow): parameter recovery by interval coverage on simulated SED-like data.

Each replicate draws the true parameters from the prior (so that posterior
intervals have exactly nominal coverage in expectation), simulates a SED-like
table (8 studies, 4 subgroups, 2-3 subgroups per study, 2-30 patients per cell),
fits the default model and records whether each true value lies in the central
90% posterior interval. Over R replicates the number covered is
Binomial(R, 0.9); the acceptance band holds 99.8% of that distribution, with a
Bonferroni split over the quantities checked. All data here are SYNTHETIC.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import binom

from bayes_poem import ModelSpec, load_table
from bayes_poem.sampling import SamplerSettings

SUBGROUPS = ["type_iii", "des", "jackhammer", "unassigned"]
REPLICATES = 100
LEVEL = 0.9


def _simulate(rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    mu = rng.normal(0.0, 1.5)
    tau = abs(rng.normal(0.0, 1.0))
    sigma = abs(rng.normal(0.0, 1.0))
    alpha = sigma * rng.standard_normal(len(SUBGROUPS))
    u = tau * rng.standard_normal(8)
    rows = []
    for s in range(8):
        present = rng.choice(len(SUBGROUPS), size=rng.integers(2, 4), replace=False)
        if s < 4:  # every subgroup appears in at least one study
            present = np.union1d(present, [s])
        for d in present:
            total = int(rng.integers(2, 31))
            p = expit(mu + alpha[d] + u[s])
            rows.append({"study": f"SIM-{s + 1}", "subgroup": SUBGROUPS[d],
                         "outcome": "synthetic_success",
                         "events": int(rng.binomial(total, p)), "total": total})
    truth = {"mu": np.array(mu), "tau": np.array(tau), "sigma_subgroup": np.array(sigma),
             "alpha": alpha, "p_pooled": expit(mu + alpha)}
    return pd.DataFrame(rows), truth


@pytest.mark.slow
def test_interval_coverage_over_replicates():
    covered: dict[str, int] = {}
    checks: dict[str, int] = {}
    for replicate in range(REPLICATES):
        rng = np.random.default_rng([2026, replicate])
        frame, truth = _simulate(rng)
        table = load_table(frame, source=f"SYNTHETIC replicate {replicate}")
        spec = ModelSpec.from_table(table, subgroups=SUBGROUPS)
        result = spec.fit(SamplerSettings(draws=1000, tune=1000, chains=4, seed=replicate))
        post = result.idata.posterior
        draws = {
            "mu": post["mu"].values.reshape(-1, 1),
            "tau": post["tau"].values.reshape(-1, 1),
            "sigma_subgroup": post["sigma_subgroup"].values.reshape(-1, 1),
            "alpha": post["alpha"].values.reshape(-1, len(SUBGROUPS)),
            "p_pooled": expit(post["mu"] + post["alpha"]).values.reshape(-1, len(SUBGROUPS)),
        }
        for name, values in draws.items():
            lower, upper = np.quantile(values, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
            true = np.atleast_1d(truth[name])
            covered[name] = covered.get(name, 0) + int(((lower <= true) & (true <= upper)).sum())
            checks[name] = checks.get(name, 0) + true.size

    alpha_family = 0.002 / len(checks)
    report = {}
    for name, n in checks.items():
        # Subgroup-level checks within a replicate are dependent; the band uses the
        # replicate count for them, which is conservative (wider than needed).
        effective = REPLICATES
        rate = covered[name] / n
        lo = binom.ppf(alpha_family / 2, effective, LEVEL) / effective
        hi = binom.isf(alpha_family / 2, effective, LEVEL) / effective
        report[name] = (round(rate, 3), round(lo, 3), round(hi, 3))
        assert lo <= rate <= hi, report
