r"""The model's row linear predictor rebuilt from posterior (or hand-made) draws.

.. math::

    \eta_i = \mu + \alpha_{d_i} + u_{s_i} + x_i^\top \beta

(``u_{s_i} = tau[d_i] * w[s_i]`` with ``study_heterogeneity = "by_subgroup"``)

(the terms the structure has: no ``alpha`` without subgroup effects, no ``u``
under common study effects, no ``beta`` without moderators). One numpy
implementation for every module that needs the per-row linear predictor from
draws (:mod:`bayes_poem.predictive`, :mod:`bayes_poem.loo`,
:mod:`bayes_poem.loglik` through ``predictive.row_draws``), so that none can
leave out a term. The moderator term of a fit whose posterior and spec
disagree (a ``beta`` in one and not the other, or other terms) is refused with
:class:`~bayes_poem.errors.SpecError`, never computed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from bayes_poem.dims import MODERATOR, SAMPLE_DIMS, STUDY, SUBGROUP
from bayes_poem.errors import SpecError

if TYPE_CHECKING:
    from bayes_poem.spec import ModelSpec

__all__ = ["moderator_effect", "row_linear_predictor", "row_study_effect", "row_tau"]


def _values(data: xr.DataArray, *extra: str) -> np.ndarray:
    return data.transpose(*SAMPLE_DIMS, *extra).values


def moderator_effect(posterior: xr.Dataset, spec: ModelSpec,
                     design: np.ndarray | None = None) -> np.ndarray:
    """``x_i' beta`` per draw and row, shape (chain, draw, rows).

    ``design`` defaults to ``spec.design()`` (every row of the spec); pass the
    rows of another spec with the same moderator coding (e.g. the held-out
    study's rows for a refit without it). Zeros without moderators.
    """
    design = spec.design() if design is None else np.asarray(design, dtype=float)
    terms = spec.moderator_terms
    has_beta = "beta" in posterior
    if not terms:
        if has_beta:
            raise SpecError("the posterior has moderator coefficients 'beta' but the model "
                            "has no moderators")
        return np.zeros((*posterior["mu"].shape, design.shape[0]))
    if not has_beta:
        raise SpecError(f"the model has moderators ({', '.join(terms)}) but the posterior "
                        "has no coefficients 'beta'")
    known = posterior["beta"][MODERATOR].values.tolist()
    if known != terms:
        raise SpecError(f"the posterior's moderator terms ({', '.join(map(str, known))}) are "
                        f"not the model's ({', '.join(terms)})")
    if design.shape[1] != len(terms):
        raise SpecError(f"design matrix with {design.shape[1]} columns for {len(terms)} "
                        "moderator terms")
    return _values(posterior["beta"], MODERATOR) @ design.T


def row_linear_predictor(posterior: xr.Dataset, spec: ModelSpec, *,
                         study_effects: bool = True) -> np.ndarray:
    """The linear predictor of every row of ``spec``, shape (chain, draw, row).

    ``mu + alpha[d_i] + x_i' beta``, plus ``u[s_i]`` with ``study_effects``
    (default). ``posterior`` is any dataset with the posterior's variables and
    ``chain``/``draw`` dimensions (a fit's posterior or hand-made draws).
    """
    arrays = spec.arrays()
    mu = _values(posterior["mu"])
    eta = np.repeat(mu[..., None], len(arrays["events"]), axis=-1)
    if "alpha" in posterior:
        alpha = _values(posterior["alpha"].sel({SUBGROUP: spec.subgroups}), SUBGROUP)
        eta = eta + alpha[..., arrays["subgroup_idx"]]
    eta = eta + moderator_effect(posterior, spec)
    if study_effects:
        eta = eta + row_study_effect(posterior, spec)
    return eta


def row_tau(posterior: xr.Dataset, spec: ModelSpec) -> np.ndarray:
    """The between-study SD scaling each row's study effect, shape (chain, draw, row).

    ``tau`` repeated over the rows, or ``tau[d_i]`` with
    ``study_heterogeneity = "by_subgroup"``; zeros without random study effects.
    """
    arrays = spec.arrays()
    n_rows = len(arrays["events"])
    if "tau" not in posterior:
        return np.zeros((*posterior["mu"].shape, n_rows))
    tau = posterior["tau"]
    if SUBGROUP in tau.dims:
        if spec.study_heterogeneity != "by_subgroup":
            raise SpecError("the posterior has a 'tau' per subgroup but the model has "
                            "study_heterogeneity = 'common'")
        return _values(tau.sel({SUBGROUP: spec.subgroups}), SUBGROUP)[..., arrays["subgroup_idx"]]
    if spec.study_heterogeneity == "by_subgroup":
        raise SpecError("the model has study_heterogeneity = 'by_subgroup' but the posterior "
                        "has one 'tau'")
    return np.repeat(_values(tau)[..., None], n_rows, axis=-1)


def row_study_effect(posterior: xr.Dataset, spec: ModelSpec) -> np.ndarray:
    """Each row's fitted study effect, shape (chain, draw, row).

    ``u[s_i] = tau * w[s_i]``, or ``tau[d_i] * w[s_i]`` with
    ``study_heterogeneity = "by_subgroup"`` (no per-study ``u`` is stored then);
    zeros without random study effects.
    """
    arrays = spec.arrays()
    if "u" in posterior:
        u = _values(posterior["u"].sel({STUDY: spec.studies}), STUDY)
        return u[..., arrays["study_idx"]]
    if "tau" in posterior and "w" in posterior:
        w = _values(posterior["w"].sel({STUDY: spec.studies}), STUDY)
        return row_tau(posterior, spec) * w[..., arrays["study_idx"]]
    return np.zeros((*posterior["mu"].shape, len(arrays["events"])))
