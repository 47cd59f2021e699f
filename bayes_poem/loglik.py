"""Pointwise log-likelihood and log-prior of a fit, computed from its draws.

The fast sampler stores parameters only; these functions rebuild the
``log_likelihood`` (per row, dim ``row``) and ``log_prior`` (per hyperparameter)
groups that ArviZ's LOO and power-scaling diagnostics need. Rows zeroed for
leave-one-out contribute exactly 0. With moderators the log-likelihood includes
each row's ``x_i' beta`` (through :func:`bayes_poem.predictive.row_draws`) and the
log prior the ``beta ~ Normal(0, s_beta)`` prior of every coefficient. With cell
effects the log-likelihood includes each row's ``u_cell[c_i]`` and the log prior
has ``tau_cell`` (its prior) and ``v`` (the ``N(0, 1)`` of every cell, summed).

:func:`arviz_groups` builds the two groups that ``bayes-poem run`` adds to
``posterior.nc`` so that ArviZ works on the file alone:

* ``log_likelihood``: variable ``y`` with dims ``(chain, draw, study)``, the
  log-likelihood of each **study** with its own study effect (and its cells)
  integrated out, :func:`bayes_poem.loo.study_log_likelihood` -- the quantity the
  report's PSIS-LOO uses, so ``az.loo(az.from_netcdf(path))`` gives the report's
  elpd and Pareto k (before exact refits). Without random study effects, or
  with the beta-binomial likelihood, it is the conditional per-study
  log-likelihood, as in the report.
* ``prior``: draws from the prior of every stored parameter, with the
  posterior's names, dims and shape (chains x draws): ``mu``, ``tau`` (per
  subgroup with ``study_heterogeneity = "by_subgroup"``), ``phi``,
  ``sigma_subgroup``, ``tau_cell``, ``beta`` and the structure built on them
  (``w``, ``u``, ``z``, ``alpha``, ``v``, ``u_cell``), drawn through the prior
  registry's samplers (:func:`bayes_poem.predictive.sample_prior`), seeded by the
  fit's seed.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayes_poem.dims import MODERATOR, ROW, SAMPLE_DIMS
from bayes_poem.model_math import moderator_effect, tau_cell
from bayes_poem.prior_families import REGISTRY
from bayes_poem.priors import Prior


def pointwise_log_likelihood(result) -> xr.DataArray:
    """log p(y_i | parameters) per draw and row (binomial or beta-binomial).

    Computed by :func:`bayes_poem.predictive.row_log_likelihood`; rows zeroed
    for leave-one-out give exactly 0.
    """
    from bayes_poem.predictive import row_draws, row_log_likelihood

    values = row_log_likelihood(row_draws(result))
    coords = {ROW: result.spec.row_labels}
    return xr.DataArray(values, dims=(*SAMPLE_DIMS, ROW), coords=coords)


def _prior_logpdf(prior: Prior, x: np.ndarray) -> np.ndarray:
    """Log prior density on the natural scale (the registry's scipy distribution)."""
    if prior.dist not in REGISTRY:
        raise ValueError(f"no log density for {prior.dist}")
    return REGISTRY[prior.dist].logpdf(prior.params, x)


def log_prior(result) -> xr.Dataset:
    """Log prior density of each top-level parameter (mu, tau, phi, sigma_subgroup,
    tau_cell), with moderators of each coefficient ``beta`` (dims chain, draw,
    moderator). The standardised random effects (``w``, ``z``, ``v``) are the
    model's hierarchical structure, not priors a user sets: they are not scaled."""
    post = result.idata.posterior
    out = {}
    tau_cell(post, result.spec)  # a cell term not of this model: SpecError
    for name in ("mu", "tau", "phi", "sigma_subgroup", "tau_cell"):
        if name in post:
            values = _prior_logpdf(result.spec.priors[name],
                                   post[name].transpose(*SAMPLE_DIMS, ...).values)
            # tau[subgroup] (study_heterogeneity = "by_subgroup"): i.i.d., joint = sum
            out[name] = (SAMPLE_DIMS, values.reshape(*values.shape[:2], -1).sum(-1))
    if result.spec.moderators or "beta" in post:
        moderator_effect(post, result.spec)  # a posterior not of this model: SpecError
        beta = post["beta"].transpose(*SAMPLE_DIMS, MODERATOR)
        out["beta"] = ((*SAMPLE_DIMS, MODERATOR),
                       _prior_logpdf(result.spec.priors["beta"], beta.values))
    coords = {d: post[d] for d in SAMPLE_DIMS}
    if "beta" in out:
        coords[MODERATOR] = post[MODERATOR]
    return xr.Dataset(out, coords=coords)


def with_log_groups(result) -> az.InferenceData:
    """A new InferenceData with ``log_likelihood`` (``y``) and ``log_prior`` groups."""
    idata = result.idata
    loglik = xr.Dataset({"y": pointwise_log_likelihood(result)})
    groups = {g: idata[g] for g in idata.groups()}
    groups["log_likelihood"] = loglik
    groups["log_prior"] = log_prior(result)
    return az.InferenceData(**groups)


def prior_group(result) -> xr.Dataset:
    """Draws from the prior of every parameter of the posterior (module docstring).

    Same variable names, dims and coords as ``result.idata.posterior``;
    ``chains x draws`` draws, seeded by ``[seed, 11]`` of the fit's seed.
    """
    from bayes_poem.backends.compiled import expanded_layout
    from bayes_poem.backends.density import helmert_basis
    from bayes_poem.predictive import sample_prior

    spec, post = result.spec, result.idata.posterior
    shape = (post.sizes["chain"], post.sizes["draw"])
    rng = np.random.default_rng([int(result.settings.seed), 11])
    layout = {name: (size, dims) for name, size, dims in expanded_layout(spec)}
    priors = spec.priors
    out: dict[str, np.ndarray] = {}

    def normal(name: str) -> np.ndarray:
        return rng.standard_normal(shape + layout[name][0])

    out["mu"] = sample_prior(priors["mu"], shape, rng)
    if "tau" in layout:
        out["tau"] = sample_prior(priors["tau"], shape + layout["tau"][0], rng)
        out["w"] = normal("w")
        if "u" in layout:
            out["u"] = out["tau"][..., None] * out["w"]
    if "phi" in layout:
        out["phi"] = sample_prior(priors["phi"], shape, rng)
    if "sigma_subgroup" in layout:
        out["sigma_subgroup"] = sample_prior(priors["sigma_subgroup"], shape, rng)
        out["z"] = normal("z")
        out["alpha"] = out["sigma_subgroup"][..., None] * out["z"]
    elif "alpha" in layout:  # fixed, sum-to-zero: alpha = sigma * H raw, raw ~ N(0, 1)
        n_d = layout["alpha"][0][0]
        raw = rng.standard_normal(shape + (n_d - 1,))
        out["alpha"] = priors["alpha"].params["sigma"] * raw @ helmert_basis(n_d).T
    if "beta" in layout:
        out["beta"] = sample_prior(priors["beta"], shape + layout["beta"][0], rng)
    if "tau_cell" in layout:
        out["tau_cell"] = sample_prior(priors["tau_cell"], shape, rng)
        out["v"] = normal("v")
        out["u_cell"] = out["tau_cell"][..., None] * out["v"]
    data = {name: ((*SAMPLE_DIMS, *layout[name][1]), out[name])
            for name in layout if name in out}
    coords = {d: post[d].values for d in SAMPLE_DIMS}
    for _, dims in layout.values():
        coords.update({d: post[d].values for d in dims if d in post.coords})
    return xr.Dataset(data, coords=coords)


def arviz_groups(result) -> dict[str, xr.Dataset]:
    """The ``log_likelihood`` (per study, study effect integrated) and ``prior`` groups
    of ``posterior.nc`` (module docstring)."""
    from bayes_poem.study_loglik import study_log_likelihood

    return {"log_likelihood": xr.Dataset({"y": study_log_likelihood(result)}),
            "prior": prior_group(result)}


def with_arviz_groups(result) -> az.InferenceData:
    """A new InferenceData: the fit's groups plus :func:`arviz_groups` (the fit's
    ``idata`` is not changed)."""
    idata = result.idata
    groups = {g: idata[g] for g in idata.groups()}
    groups.update(arviz_groups(result))
    out = az.InferenceData(**groups)
    out.attrs.update(getattr(idata, "attrs", {}) or {})
    return out


def power_scaling(result) -> pd.DataFrame:
    """ArviZ ``psens`` for prior and likelihood, per parameter, with the diagnosis.

    Kallioinen et al. (2023, Stat Comput 34:57): a sensitivity above 0.05 to the
    prior and to the likelihood suggests prior-data conflict; above 0.05 to the
    prior only, a strong prior or weak likelihood.
    """
    idata = with_log_groups(result)
    names = [n for n in ("mu", "tau", "phi", "sigma_subgroup", "alpha", "beta", "tau_cell")
             if n in idata.posterior]
    prior = az.psens(idata, component="prior", var_names=names)
    like = az.psens(idata, component="likelihood", var_names=names)
    rows = []
    for name in names:
        extra = [d for d in prior[name].dims]
        labels = prior[name][extra[0]].values.tolist() if extra else [None]
        for label in labels:
            where = {extra[0]: label} if extra else {}
            p_val = float(prior[name].sel(where))
            l_val = float(like[name].sel(where))
            if p_val > 0.05 and l_val > 0.05:
                diagnosis = "potential prior-data conflict"
            elif p_val > 0.05:
                diagnosis = "strong prior / weak likelihood"
            else:
                diagnosis = "-"
            rows.append({"parameter": name if label is None else f"{name}[{label}]",
                         "prior_sensitivity": p_val, "likelihood_sensitivity": l_val,
                         "diagnosis": diagnosis})
    return pd.DataFrame(rows)
