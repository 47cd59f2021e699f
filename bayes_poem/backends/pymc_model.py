"""The PyMC reference model of a :class:`~bayes_poem.spec.ModelSpec`.

:func:`build_model` writes the model of :mod:`bayes_poem.spec`'s docstring in PyMC,
with the spec's named dims as coords. It is the reference definition: the compiled
kernel (:mod:`bayes_poem.backends.density`) is tested against its ``logp`` and
``dlogp`` (``tests/test_density.py``), and ``backend = "pymc"`` samples it.
Non-centred throughout: ``u = tau * w``, ``alpha = sigma_subgroup * z`` (random)
or ``alpha = s_alpha * H @ alpha_raw`` (fixed; ``H`` the Helmert basis),
``u_cell = tau_cell * v``. Priors are the registry's builders
(:func:`bayes_poem.prior_families.build`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bayes_poem import prior_families
from bayes_poem.backends.density import helmert_basis
from bayes_poem.dims import CELL, MODERATOR, ROW, STUDY, SUBGROUP, SUBGROUP_CONTRAST

if TYPE_CHECKING:
    import pymc as pm

    from bayes_poem.priors import Prior
    from bayes_poem.spec import ModelSpec

__all__ = ["build_model"]


def build_model(spec: ModelSpec) -> pm.Model:
    """A fresh PyMC model of ``spec`` (the reference definition).

    Data and prior hyperparameters are ``pm.Data`` so that the model can be
    refitted with ``pm.set_data`` without rebuilding.
    """
    import pymc as pm

    arrays = spec.arrays()
    with pm.Model(coords=spec.coords) as model:
        events = pm.Data("events", arrays["events"], dims=ROW)
        total = pm.Data("total", arrays["total"], dims=ROW)
        study_idx = pm.Data("study_idx", arrays["study_idx"], dims=ROW)
        subgroup_idx = pm.Data("subgroup_idx", arrays["subgroup_idx"], dims=ROW)
        hyper = {k: pm.Data(k, v) for k, v in spec.hyperparameters().items()}

        mu = _prior_rv(pm, "mu", spec.priors["mu"], hyper)
        eta = mu
        if spec.study_effects == "random" and spec.study_heterogeneity == "by_subgroup":
            tau = _prior_rv(pm, "tau", spec.priors["tau"], hyper, dims=SUBGROUP)
            w = pm.Normal("w", 0.0, 1.0, dims=STUDY)
            eta = eta + tau[subgroup_idx] * w[study_idx]
        elif spec.study_effects == "random":
            tau = _prior_rv(pm, "tau", spec.priors["tau"], hyper)
            w = pm.Normal("w", 0.0, 1.0, dims=STUDY)
            u = pm.Deterministic("u", tau * w, dims=STUDY)
            eta = eta + u[study_idx]
        if spec.likelihood == "beta_binomial":
            phi = _prior_rv(pm, "phi", spec.priors["phi"], hyper)
            kappa = 1.0 / phi**2
        if spec.subgroup_effects == "random":
            sigma = _prior_rv(pm, "sigma_subgroup", spec.priors["sigma_subgroup"], hyper)
            z = pm.Normal("z", 0.0, 1.0, dims=SUBGROUP)
            alpha = pm.Deterministic("alpha", sigma * z, dims=SUBGROUP)
            eta = eta + alpha[subgroup_idx]
        elif spec.subgroup_effects == "fixed":
            basis = helmert_basis(len(spec.subgroups))
            raw = pm.Normal("alpha_raw", 0.0, 1.0, dims=SUBGROUP_CONTRAST)
            alpha = pm.Deterministic(
                "alpha", hyper["prior_alpha_sigma"] * pm.math.dot(basis, raw), dims=SUBGROUP
            )
            eta = eta + alpha[subgroup_idx]
        if spec.moderators:
            design = pm.Data("design", spec.design(), dims=(ROW, MODERATOR))
            beta = _prior_rv(pm, "beta", spec.priors["beta"], hyper, dims=MODERATOR)
            eta = eta + pm.math.dot(design, beta)
        if spec.cell_effects == "random":
            cell_idx = pm.Data("cell_idx", arrays["cell_idx"], dims=ROW)
            tau_cell = _prior_rv(pm, "tau_cell", spec.priors["tau_cell"], hyper)
            v = pm.Normal("v", 0.0, 1.0, dims=CELL)
            u_cell = pm.Deterministic("u_cell", tau_cell * v, dims=CELL)
            eta = eta + u_cell[cell_idx]
        if spec.likelihood == "beta_binomial":
            p = pm.math.sigmoid(eta)
            pm.BetaBinomial("y", alpha=p * kappa, beta=(1.0 - p) * kappa, n=total,
                            observed=events, dims=ROW)
        else:
            pm.Binomial("y", n=total, logit_p=eta, observed=events, dims=ROW)
    return model


def _prior_rv(pm: Any, name: str, prior: Prior, hyper: Mapping[str, Any], **kwargs: Any) -> Any:
    """The prior's random variable (the registry's builder), hyperparameters from ``hyper``."""
    params = {key: hyper[f"prior_{name}_{key}"] for key in prior.params}
    return prior_families.build(pm, name, prior.dist, params, **kwargs)
