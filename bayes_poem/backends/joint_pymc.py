"""The joint (efficacy-safety) model as a PyMC model: the reference definition that
:mod:`bayes_poem.backends.joint_density` is tested against (``tests/test_joint_density.py``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from bayes_poem import prior_families
from bayes_poem.backends.density import helmert_basis
from bayes_poem.dims import OUTCOME, ROW, STUDY, SUBGROUP, SUBGROUP_CONTRAST
from bayes_poem.priors import Prior

if TYPE_CHECKING:
    import pymc as pm

    from bayes_poem.joint import JointSpec

__all__ = ["build_model"]


def build_model(spec: JointSpec) -> pm.Model:
    """A fresh PyMC model of this spec: the reference definition of the kernel."""
    import pymc as pm
    import pytensor.tensor as pt

    a = spec.arrays()
    o_idx, s_idx, d_idx = a["outcome_idx"], a["study_idx"], a["subgroup_idx"]
    priors = [spec.priors[o] for o in spec.outcomes]
    with pm.Model(coords=spec.coords) as model:
        mus = [_rv(pm, f"mu_{j}", priors[j]["mu"]) for j in range(2)]
        taus = [_rv(pm, f"tau_{j}", priors[j]["tau"]) for j in range(2)]
        mu = pm.Deterministic("mu", pt.stack(mus), dims=OUTCOME)
        tau = pm.Deterministic("tau", pt.stack(taus), dims=OUTCOME)
        if spec.rho_fixed is None:
            y_rho = pm.Flat("rho_atanh")
            rho = pm.Deterministic("rho", pt.tanh(y_rho))
            # (1 + rho) / 2 ~ Beta(eta, eta), with the Jacobians of the two maps
            # (written out: PyMC's Beta logp is 2e-8 off in its constant)
            e = spec.rho_eta
            log_beta = 2.0 * math.lgamma(e) - math.lgamma(2.0 * e)
            pm.Potential("rho_prior", (e - 1.0) * (pt.log1p(rho) + pt.log1p(-rho))
                         - (2.0 * e - 1.0) * math.log(2.0) - log_beta
                         + pt.log1p(-rho**2))
        else:
            rho = pm.Deterministic("rho", pt.as_tensor(float(spec.rho_fixed)))
        w = pm.Normal("w", 0.0, 1.0, dims=(OUTCOME, STUDY))
        u = pm.Deterministic("u", pt.stack([
            tau[0] * w[0], tau[1] * (rho * w[0] + pt.sqrt(1.0 - rho**2) * w[1])]),
            dims=(OUTCOME, STUDY))
        eta = mu[o_idx] + u[o_idx, s_idx]
        if spec.subgroup_effects == "random":
            sig = pt.stack([_rv(pm, f"sigma_subgroup_{j}", priors[j]["sigma_subgroup"])
                            for j in range(2)])
            pm.Deterministic("sigma_subgroup", sig, dims=OUTCOME)
            z = pm.Normal("z", 0.0, 1.0, dims=(OUTCOME, SUBGROUP))
            alpha = pm.Deterministic("alpha", sig[:, None] * z, dims=(OUTCOME, SUBGROUP))
            eta = eta + alpha[o_idx, d_idx]
        elif spec.subgroup_effects == "fixed":
            basis = helmert_basis(len(spec.subgroups))
            s_alpha = np.array([p["alpha"].params["sigma"] for p in priors])
            raw = pm.Normal("alpha_raw", 0.0, 1.0, dims=(OUTCOME, SUBGROUP_CONTRAST))
            alpha = pm.Deterministic("alpha", s_alpha[:, None] * pt.dot(raw, basis.T),
                                     dims=(OUTCOME, SUBGROUP))
            eta = eta + alpha[o_idx, d_idx]
        pm.Binomial("y", n=a["total"], logit_p=eta, observed=a["events"], dims=ROW)
    return model



def _rv(pm: Any, name: str, prior: Prior) -> Any:
    return prior_families.build(pm, name, prior.dist, dict(prior.params))
