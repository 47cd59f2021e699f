r"""The model's row linear predictor rebuilt from posterior (or hand-made) draws.

.. math::

    \eta_i = \mu + \alpha_{d_i} + u_{s_i} + x_i^\top \beta + \tau_{\text{cell}} v_{c_i}

(``u_{s_i} = tau[d_i] * w[s_i]`` with ``study_heterogeneity = "by_subgroup"``;
the cell term ``u_cell[c_i] = tau_cell * v[c_i]`` with ``cell_effects = "random"``,
``c_i`` the row's study x subgroup cell)

(the terms the structure has: no ``alpha`` without subgroup effects, no ``u``
under common study effects, no ``beta`` without moderators, no cell term
without cell effects). The row's random part ``u_{s_i} + u_cell[c_i]`` is
:func:`row_random_effect`; the cell term alone :func:`row_cell_effect`. One numpy
implementation for every module that needs the per-row linear predictor from
draws (:mod:`bayes_poem.predictive`, :mod:`bayes_poem.loo`,
:mod:`bayes_poem.loglik` through ``predictive.row_draws``), so that none can
leave out a term. The moderator term of a fit whose posterior and spec
disagree (a ``beta`` in one and not the other, or other terms) is refused with
:class:`~bayes_poem.errors.SpecError`, never computed; so is the cell term
(``tau_cell`` in one and not the other, or other cells).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from bayes_poem.dims import CELL, MODERATOR, SAMPLE_DIMS, STUDY, SUBGROUP
from bayes_poem.errors import SpecError

if TYPE_CHECKING:
    from bayes_poem.spec import ModelSpec

__all__ = ["moderator_effect", "row_cell_effect", "row_linear_predictor", "row_random_effect",
           "row_study_effect", "row_tau", "tau_cell"]


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

    ``mu + alpha[d_i] + x_i' beta``, plus the row's random effects ``u[s_i] +
    u_cell[c_i]`` (:func:`row_random_effect`) with ``study_effects`` (default;
    ``False`` leaves out both, the part that LOO integrates and mixed
    replication redraws). ``posterior`` is any dataset with the posterior's
    variables and ``chain``/``draw`` dimensions (a fit's posterior or hand-made
    draws).
    """
    arrays = spec.arrays()
    mu = _values(posterior["mu"])
    eta = np.repeat(mu[..., None], len(arrays["events"]), axis=-1)
    if "alpha" in posterior:
        alpha = _values(posterior["alpha"].sel({SUBGROUP: spec.subgroups}), SUBGROUP)
        eta = eta + alpha[..., arrays["subgroup_idx"]]
    eta = eta + moderator_effect(posterior, spec)
    if study_effects:
        eta = eta + row_random_effect(posterior, spec)
    else:
        tau_cell(posterior, spec)  # a cell term of another model: SpecError, even when unused
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


def tau_cell(posterior: xr.Dataset, spec: ModelSpec) -> np.ndarray:
    """The SD of the cell effects per draw, shape (chain, draw); zeros without them.

    ``SpecError`` if the posterior and the spec disagree about cell effects
    (``tau_cell`` in one and not the other, or other cell labels).
    """
    has = "tau_cell" in posterior
    if spec.cell_effects != "random":
        if has:
            raise SpecError("the posterior has cell effects 'tau_cell' but the model has "
                            "cell_effects = 'none'")
        return np.zeros(posterior["mu"].shape)
    if not has:
        raise SpecError("the model has cell_effects = 'random' but the posterior has no "
                        "'tau_cell'")
    for name in ("v", "u_cell"):
        if name in posterior:
            known = [str(x) for x in posterior[name][CELL].values]
            if known != spec.cell_labels:
                raise SpecError(f"the posterior's cells ({', '.join(known[:3])}, ...) are not "
                                f"the model's ({', '.join(spec.cell_labels[:3])}, ...)")
    return _values(posterior["tau_cell"])


def row_cell_effect(posterior: xr.Dataset, spec: ModelSpec) -> np.ndarray:
    """Each row's fitted cell effect ``u_cell[c_i] = tau_cell * v[c_i]``, (chain, draw, row).

    Zeros without cell effects; ``SpecError`` as :func:`tau_cell`.
    """
    scale = tau_cell(posterior, spec)
    cell_idx = spec.arrays()["cell_idx"]
    if spec.cell_effects != "random":
        return np.zeros((*scale.shape, len(cell_idx)))
    if "u_cell" in posterior:
        return _values(posterior["u_cell"], CELL)[..., cell_idx]
    return scale[..., None] * _values(posterior["v"], CELL)[..., cell_idx]


def row_random_effect(posterior: xr.Dataset, spec: ModelSpec) -> np.ndarray:
    """Each row's fitted random effects, ``u[s_i] + u_cell[c_i]``, (chain, draw, row).

    :func:`row_study_effect` plus :func:`row_cell_effect`: what a row's linear
    predictor adds to ``mu + alpha[d_i] + x_i' beta``.
    """
    return row_study_effect(posterior, spec) + row_cell_effect(posterior, spec)
