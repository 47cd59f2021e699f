"""The core model on the compiled kernel: buffer, layouts and the nutpie model of a spec.

:mod:`bayes_poem.backends.density` evaluates the log-density of every model of
:class:`~bayes_poem.spec.ModelSpec`'s family; this module turns one spec into what
the kernel reads, and hands it to nutpie through
:mod:`bayes_poem.backends.nutpie_adapter`:

- :func:`unconstrained_layout`: the free parameters in the order of the kernel's
  vector ``x`` (``mu``; ``tau_log__``, ``w``; ``phi_log__``;
  ``sigma_subgroup_log__``, ``z`` or ``alpha_raw``; ``beta``; ``tau_cell_log__``,
  ``v``), the order of the PyMC reference model's value variables;
- :func:`expanded_layout`: the variables stored per draw, with shapes and dims
  (what :func:`bayes_poem.backends.density.expand` writes);
- :func:`density_buffer`: structure, data and hyperparameters in one read-only
  ``float64`` buffer (header slots and body: the kernel's module docstring).
  Prior families are packed by :func:`bayes_poem.backends._kernel.pack_prior`, the
  trial kernels' packer, in the registry's parameter order;
- :func:`compiled_model`: the nutpie model over the cached kernel, each chain
  started at a point uniform in ``[-1, 1]`` per coordinate (generator seeded by
  ``(seed, chain)``) with the crude pooled logit
  ``logit((sum y + 0.5) / (sum n + 1))`` added to ``mu``.

Nothing here compiles: the kernel is compiled once per installation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import gammaln, logit

from bayes_poem.backends import density
from bayes_poem.backends._kernel import pack_prior
from bayes_poem.backends.nutpie_adapter import nutpie_model
from bayes_poem.dims import CELL, MODERATOR, STUDY, SUBGROUP

if TYPE_CHECKING:
    from bayes_poem.spec import ModelSpec

__all__ = ["compiled_model", "density_buffer", "expanded_layout", "unconstrained_layout"]


def unconstrained_layout(spec: ModelSpec) -> list[tuple[str, tuple[int, ...]]]:
    """Free parameters in the order of the compiled density's vector."""
    layout: list[tuple[str, tuple[int, ...]]] = [("mu", ())]
    if spec.study_effects == "random":
        n_tau = len(spec.subgroups) if spec.study_heterogeneity == "by_subgroup" else None
        layout += [("tau_log__", () if n_tau is None else (n_tau,)),
                   ("w", (len(spec.studies),))]
    if spec.likelihood == "beta_binomial":
        layout += [("phi_log__", ())]
    if spec.subgroup_effects == "random":
        layout += [("sigma_subgroup_log__", ()), ("z", (len(spec.subgroups),))]
    elif spec.subgroup_effects == "fixed":
        layout += [("alpha_raw", (len(spec.subgroups) - 1,))]
    if spec.moderators:
        layout += [("beta", (len(spec.moderator_terms),))]
    if spec.cell_effects == "random":
        layout += [("tau_cell_log__", ()), ("v", (len(spec.cell_labels),))]
    return layout


def expanded_layout(spec: ModelSpec) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    """Variables stored per draw: name, shape, dims (see :func:`density.expand`)."""
    n_s, n_d = len(spec.studies), len(spec.subgroups)
    layout: list[tuple[str, tuple[int, ...], tuple[str, ...]]] = [("mu", (), ())]
    if spec.study_effects == "random" and spec.study_heterogeneity == "by_subgroup":
        layout += [("tau", (n_d,), (SUBGROUP,)), ("w", (n_s,), (STUDY,))]
    elif spec.study_effects == "random":
        layout += [("tau", (), ()), ("w", (n_s,), (STUDY,)), ("u", (n_s,), (STUDY,))]
    if spec.likelihood == "beta_binomial":
        layout += [("phi", (), ())]
    if spec.subgroup_effects == "random":
        layout += [("sigma_subgroup", (), ()), ("z", (n_d,), (SUBGROUP,)),
                   ("alpha", (n_d,), (SUBGROUP,))]
    elif spec.subgroup_effects == "fixed":
        layout += [("alpha", (n_d,), (SUBGROUP,))]
    if spec.moderators:
        layout += [("beta", (len(spec.moderator_terms),), (MODERATOR,))]
    if spec.cell_effects == "random":
        n_c = len(spec.cell_labels)
        layout += [("tau_cell", (), ()), ("v", (n_c,), (CELL,)), ("u_cell", (n_c,), (CELL,))]
    return layout


def density_buffer(spec: ModelSpec) -> np.ndarray:
    """Structure, data and hyperparameters packed for :mod:`bayes_poem.backends.density`."""
    arrays = spec.arrays()
    n_rows, n_sub = len(arrays["events"]), len(spec.subgroups)
    events = arrays["events"].astype(float)
    total = arrays["total"].astype(float)
    log_binom = gammaln(total + 1) - gammaln(events + 1) - gammaln(total - events + 1)
    basis = density.helmert_basis(n_sub).ravel()
    parts = [events, total, log_binom, arrays["study_idx"].astype(float),
             arrays["subgroup_idx"].astype(float), basis]
    n_terms = len(spec.moderator_terms)
    if n_terms:  # K = 0 leaves the buffer of the model without moderators
        parts += [np.full(n_terms, spec.priors["beta"].params["sigma"]),
                  spec.design().ravel()]
    n_cells = len(spec.cell_labels) if spec.cell_effects == "random" else 0
    if n_cells:  # C = 0 leaves the buffer of the model without cell effects
        parts += [arrays["cell_idx"].astype(float)]
    body = np.concatenate(parts)
    head = np.zeros(density.HEADER)
    head[density.H_LENGTH] = density.HEADER + body.size
    head[density.H_ROWS] = n_rows
    head[density.H_STUDIES] = len(spec.studies)
    head[density.H_SUBGROUPS] = n_sub
    head[density.H_STUDY_MODE] = (
        density.STUDY_COMMON if spec.study_effects != "random"
        else density.STUDY_BY_SUBGROUP if spec.study_heterogeneity == "by_subgroup"
        else density.STUDY_RANDOM)
    head[density.H_SUBGROUP_MODE] = {
        "none": density.SUBGROUP_NONE, "random": density.SUBGROUP_RANDOM,
        "fixed": density.SUBGROUP_FIXED,
    }[spec.subgroup_effects]
    pack_prior(head, density.H_MU_FAMILY, density.H_MU_P, spec.priors["mu"],
               density.LOCATION_CODES)
    pack_prior(head, density.H_TAU_FAMILY, density.H_TAU_P, spec.priors["tau"],
               density.SCALE_CODES)
    pack_prior(head, density.H_SG_FAMILY, density.H_SG_P, spec.priors["sigma_subgroup"],
               density.SCALE_CODES)
    head[density.H_ALPHA_SIGMA] = spec.priors["alpha"].params["sigma"]
    head[density.H_LIKELIHOOD] = density.LIKELIHOOD_CODES[spec.likelihood]
    pack_prior(head, density.H_PHI_FAMILY, density.H_PHI_P, spec.priors["phi"],
               density.SCALE_CODES)
    head[density.H_NDIM] = sum(int(np.prod(s)) for _, s in unconstrained_layout(spec))
    head[density.H_NEXPANDED] = sum(int(np.prod(s)) for _, s, _ in expanded_layout(spec))
    head[density.H_MODERATORS] = n_terms
    head[density.H_CELLS] = n_cells
    if n_cells:
        pack_prior(head, density.H_TAU_CELL_FAMILY, density.H_TAU_CELL_P,
                   spec.priors["tau_cell"], density.SCALE_CODES)
    buffer = np.concatenate([head, body])
    buffer.flags.writeable = False
    return buffer


def compiled_model(spec: ModelSpec, seed: int) -> Any:
    """A nutpie model over the cached compiled density, for this spec's buffer."""
    unconstrained = unconstrained_layout(spec)
    n_dim = sum(int(np.prod(shape)) for _, shape in unconstrained)
    centre = _crude_logit(spec)

    def initial_point(chain_seed: int) -> np.ndarray:
        rng = np.random.default_rng([seed, int(chain_seed)])
        point = rng.uniform(-1.0, 1.0, size=n_dim)
        point[0] += centre
        return point

    return nutpie_model(logp_cfunc=density.logp_cfunc, expand_cfunc=density.expand_cfunc,
                        buffer=density_buffer(spec), expanded=expanded_layout(spec),
                        coords=spec.coords, unconstrained=unconstrained,
                        initial_point=initial_point)


def _crude_logit(spec: ModelSpec) -> float:
    arrays = spec.arrays()
    rate = (arrays["events"].sum() + 0.5) / (arrays["total"].sum() + 1.0)
    return float(logit(rate))
