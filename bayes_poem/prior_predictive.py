r"""Prior predictive: what the priors imply for rates on the probability scale.

Draws of the parameters from their priors (the registry's samplers,
:func:`sample_prior`), and what they imply: the median-study rate
:math:`\operatorname{logit}^{-1}(\mu + \alpha_d)` and the rate of a new study
:math:`\operatorname{logit}^{-1}(\mu + \alpha_d + \tau w)`, :math:`w \sim N(0, 1)`,
summarised by quantiles (:func:`prior_predictive`; with moderators ``beta`` drawn
from its prior, with cell effects :math:`\tau_{\text{cell}} v` added). Split from
:mod:`bayes_poem.predictive`, whose module docstring has the whole story and which
still exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from bayes_poem.backends.density import helmert_basis
from bayes_poem.dims import SUBGROUP
from bayes_poem.errors import SpecError
from bayes_poem.predictive import BETA_BINOMIAL, beta_binomial_shapes, likelihood_of
from bayes_poem.prior_families import REGISTRY
from bayes_poem.priors import Prior

if TYPE_CHECKING:
    from bayes_poem.spec import ModelSpec

PRIOR_QUANTILES = (0.025, 0.10, 0.25, 0.50, 0.75, 0.90, 0.975)


# ---------------------------------------------------------------------- prior predictive
def sample_prior(prior: Prior, size: int | tuple[int, ...],
                 rng: np.random.Generator) -> np.ndarray:
    """Draws from a :class:`Prior` (the registry's sampler of its family)."""
    if prior.dist not in REGISTRY:
        raise SpecError(f"prior predictive: no sampler for the {prior.dist} family")
    return REGISTRY[prior.dist].sample(rng, prior.params, size)


@dataclass(frozen=True)
class PriorPredictive:
    """What the priors imply for rates on the probability scale.

    Attributes
    ----------
    draws : xarray.Dataset
        ``p_pooled`` (median-study rate) and ``p_study`` (rate of a new study) with
        dims ``(sample, subgroup)``; with subgroup effects also ``difference``
        (``p_pooled`` of the first minus the second subgroup; the priors are
        exchangeable, so any pair has this prior). With moderators these are at
        the reference values (``x = 0``), and ``p_study_covariates`` is the rate
        of a new study with the covariate values of a randomly chosen row of the
        data (of that subgroup), ``logit^-1(mu + alpha_d + x_r' beta + tau w)``
        with ``beta`` drawn from its prior.
    table : pandas.DataFrame
        Per subgroup and quantity: quantiles (columns ``q2.5``, ``q10``, ...,
        ``q97.5``) and the prior probabilities of a rate below 5% or above 95%;
        for the ``difference`` row, ``p_abs_gt_10pts`` = P(|difference| > 0.10).
    notes : tuple of str
    """

    draws: xr.Dataset
    table: pd.DataFrame
    notes: tuple[str, ...] = ()


def _labels(spec: ModelSpec) -> list[str]:
    if spec.subgroup_effects == "none":
        return spec.subgroups if len(spec.subgroups) == 1 else ["pooled"]
    return list(spec.subgroups)


def _prior_rates_at_rows(spec: ModelSpec, labels: list[str], eta: np.ndarray, tau: np.ndarray,
                         phi: np.ndarray | None, rng: np.random.Generator,
                         tau_cell: np.ndarray | None = None) -> np.ndarray:
    """Prior new-study rates (draws, labels) at the covariates of a random row per draw.

    ``beta`` is drawn from its prior; each draw takes the coded moderators of one
    row of the data chosen uniformly among the rows of the label's subgroup (all
    rows for the single-group label), and a new study effect ``tau * w`` (plus a
    new cell effect ``tau_cell * v`` per label with cell effects).
    """
    n_draws = eta.shape[0]
    beta = sample_prior(spec.priors["beta"], (n_draws, len(spec.moderator_terms)), rng)
    design = spec.design()
    arrays = spec.arrays()
    active = arrays["total"] > 0
    if not active.any():
        active = np.ones_like(active)
    effect = np.empty_like(eta)
    for j, label in enumerate(labels):
        rows = active & (arrays["subgroup_idx"] == spec.subgroups.index(label)) if (
            spec.subgroup_effects != "none" and label in spec.subgroups) else active
        candidates = np.flatnonzero(rows if rows.any() else active)
        picked = design[candidates[rng.integers(candidates.size, size=n_draws)]]
        effect[:, j] = (picked * beta).sum(-1)
    eta_rows = eta + effect + tau * rng.standard_normal((n_draws, 1))
    if tau_cell is not None:
        eta_rows = eta_rows + tau_cell * rng.standard_normal(eta.shape)
    p_rows = expit(eta_rows)
    if phi is not None:
        a, b = beta_binomial_shapes(p_rows, phi)
        p_rows = rng.beta(np.maximum(a, 1e-300), np.maximum(b, 1e-300))
    return p_rows


def prior_predictive(spec: ModelSpec, *, draws: int = 4000, seed: int = 0) -> PriorPredictive:
    """Draw the parameters from their priors and summarise the implied rates."""
    rng = np.random.default_rng([int(seed), 7])
    labels = _labels(spec)
    n_d = len(labels)
    priors = spec.priors
    mu = sample_prior(priors["mu"], draws, rng)
    if spec.subgroup_effects == "random":
        sigma = sample_prior(priors["sigma_subgroup"], draws, rng)
        alpha = sigma[:, None] * rng.standard_normal((draws, n_d))
    elif spec.subgroup_effects == "fixed":
        basis = helmert_basis(n_d)
        raw = rng.standard_normal((draws, n_d - 1))
        alpha = priors["alpha"].params["sigma"] * raw @ basis.T
    else:
        alpha = np.zeros((draws, n_d))
    # tau: (draws, 1), or (draws, subgroups) with tau[d] i.i.d. from the tau prior
    if spec.study_effects != "random":
        tau = np.zeros((draws, 1))
    elif spec.study_heterogeneity == "by_subgroup":
        tau = sample_prior(priors["tau"], (draws, n_d), rng)
    else:
        tau = sample_prior(priors["tau"], draws, rng)[:, None]
    eta = mu[:, None] + alpha
    p_pooled = expit(eta)
    eta_study = eta + tau * rng.standard_normal((draws, 1))
    tau_cell = None
    if spec.cell_effects == "random":  # one new cell effect per subgroup
        tau_cell = sample_prior(priors["tau_cell"], draws, rng)[:, None]
        eta_study = eta_study + tau_cell * rng.standard_normal((draws, n_d))
    p_study = expit(eta_study)
    notes = []
    phi = None
    if likelihood_of(spec) == BETA_BINOMIAL:
        phi_prior = priors.get("phi") if isinstance(priors, Mapping) else None
        if phi_prior is None:
            notes.append("The beta-binomial precision phi has no prior in the spec; the rate "
                         "of a new study is shown without its beta-binomial spread.")
        else:
            phi = sample_prior(phi_prior, draws, rng)[:, None]
            a, b = beta_binomial_shapes(p_study, phi)
            p_study = rng.beta(np.maximum(a, 1e-300), np.maximum(b, 1e-300))
    data = xr.Dataset(
        {"p_pooled": (("sample", SUBGROUP), p_pooled), "p_study": (("sample", SUBGROUP), p_study)},
        coords={SUBGROUP: labels},
    )
    quantities = ["p_pooled", "p_study"]
    if spec.moderators:  # drawn last: the draws above stay those of the model without
        p_rows = _prior_rates_at_rows(spec, labels, eta, tau, phi, rng, tau_cell)
        data["p_study_covariates"] = (("sample", SUBGROUP), p_rows)
        quantities.append("p_study_covariates")
    rows = []
    for label in labels:
        for quantity in quantities:
            values = data[quantity].sel({SUBGROUP: label}).values
            row = {"subgroup": label, "quantity": quantity}
            row.update({f"q{100 * q:g}": float(np.quantile(values, q)) for q in PRIOR_QUANTILES})
            row["p_below_5pct"] = float(np.mean(values < 0.05))
            row["p_above_95pct"] = float(np.mean(values > 0.95))
            rows.append(row)
    if n_d > 1 and spec.subgroup_effects != "none":
        difference = p_pooled[:, 0] - p_pooled[:, 1]
        data["difference"] = ("sample", difference)
        data.attrs["difference"] = f"{labels[0]} - {labels[1]}"
        row = {"subgroup": f"{labels[0]} - {labels[1]}", "quantity": "difference"}
        row.update({f"q{100 * q:g}": float(np.quantile(difference, q))
                    for q in PRIOR_QUANTILES})
        row["p_below_5pct"] = row["p_above_95pct"] = float("nan")
        row["p_abs_gt_10pts"] = float(np.mean(np.abs(difference) > 0.10))
        rows.append(row)
    return PriorPredictive(data, pd.DataFrame(rows), tuple(notes))
