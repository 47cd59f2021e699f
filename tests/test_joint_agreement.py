"""Tier 2: with rho pinned at 0 the joint model is two one-outcome models.

The joint fit of ``sed_synthetic`` with ``rho = 0`` and two one-outcome core fits
with the same priors and structure must agree, for ``mu``, ``tau``,
``sigma_subgroup`` and each subgroup's ``p_pooled`` of both outcomes, in the
posterior mean and the 2.5/50/97.5% quantiles, within 4 Monte Carlo standard
errors of the difference (``sqrt(mcse_joint^2 + mcse_single^2)``, ArviZ's MCSE of
the mean and of each quantile). 2 outcomes x 7 quantities x 4 statistics = 56
comparisons: at 4 MCSE the chance of any false alarm is below 0.4%.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from bayes_poem import load_dataset
from bayes_poem.joint import JointSpec
from bayes_poem.spec import ModelSpec

SUBGROUPS = ["type_iii", "des", "jackhammer", "unassigned"]
QUANTILES = (0.025, 0.5, 0.975)


def _stats(draws: np.ndarray) -> list[tuple[str, float, float]]:
    """(statistic, estimate, MCSE) for draws of shape (chain, draw)."""
    data = az.convert_to_dataset({"x": draws})
    out = [("mean", float(draws.mean()), float(az.mcse(data, method="mean")["x"]))]
    for q in QUANTILES:
        out.append((f"q{q}", float(np.quantile(draws, q)),
                    float(az.mcse(data, method="quantile", prob=q)["x"])))
    return out


@pytest.mark.mcmc
def test_rho_zero_agrees_with_two_one_outcome_fits():
    table = load_dataset("sed_synthetic")
    settings = {"draws": 3000, "tune": 1000, "chains": 4}
    joint = JointSpec.from_table(table, subgroups=SUBGROUPS, subgroup_effects="random",
                                 rho_fixed=0.0).fit(seed=11, **settings)
    joint_p = joint.probabilities()["p_pooled"]
    failures = []
    for j, outcome in enumerate(joint.spec.outcomes):
        single_spec = ModelSpec.from_table(table, outcome, subgroups=SUBGROUPS,
                                           subgroup_effects="random",
                                           priors=dict(joint.spec.priors[outcome]))
        single = single_spec.fit(seed=12 + j, **settings)
        single_p = single.subgroup_probabilities()["p_pooled"]
        pairs = {name: (joint.posterior[name].sel(outcome=outcome).values,
                        single.posterior[name].values)
                 for name in ("mu", "tau", "sigma_subgroup")}
        pairs.update({f"p_pooled[{d}]": (joint_p.sel(outcome=outcome, subgroup=d).values,
                                         single_p.sel(subgroup=d).values) for d in SUBGROUPS})
        for name, (a, b) in pairs.items():
            for (stat, est_a, se_a), (_, est_b, se_b) in zip(_stats(a), _stats(b), strict=True):
                bound = 4 * np.hypot(se_a, se_b)
                if abs(est_a - est_b) > bound:
                    failures.append(f"{outcome} {name} {stat}: {est_a:.4f} vs {est_b:.4f} "
                                    f"(4 MCSE = {bound:.4f})")
    assert not failures, "; ".join(failures)
