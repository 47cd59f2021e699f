"""The joint model's compiled kernel for one spec: buffer, layouts and the nutpie model.

The kernel is :mod:`bayes_poem.backends.joint_density` (compiled once per
installation); this module packs a :class:`~bayes_poem.joint.JointSpec` into its
buffer and hands it to nutpie through :mod:`bayes_poem.backends.nutpie_adapter`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.special import logit

from bayes_poem.backends import joint_density

if TYPE_CHECKING:
    from bayes_poem.joint import JointSpec

__all__ = ["compiled_model", "density_buffer", "expanded_layout", "unconstrained_layout"]


def unconstrained_layout(spec: JointSpec) -> list[tuple[str, tuple[int, ...]]]:
    return joint_density.unconstrained_layout(len(spec.studies), len(spec.subgroups),
                                              spec.subgroup_effects, spec.rho_fixed is None)

def expanded_layout(spec: JointSpec) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    return joint_density.expanded_layout(len(spec.studies), len(spec.subgroups),
                                         spec.subgroup_effects)

def density_buffer(spec: JointSpec) -> np.ndarray:
    a = spec.arrays()
    return joint_density.buffer(
        events=a["events"], total=a["total"], outcome_idx=a["outcome_idx"],
        study_idx=a["study_idx"], subgroup_idx=a["subgroup_idx"],
        n_studies=len(spec.studies), n_subgroups=len(spec.subgroups),
        subgroup_effects=spec.subgroup_effects,
        priors=[spec.priors[o] for o in spec.outcomes], rho_eta=spec.rho_eta,
        rho_fixed=spec.rho_fixed)

def compiled_model(spec: JointSpec, seed: int) -> Any:
    """The nutpie model over the cached compiled kernel, for this spec's buffer."""
    from bayes_poem.backends.nutpie_adapter import nutpie_model

    layout = unconstrained_layout(spec)
    n_dim = sum(int(np.prod(shape)) for _, shape in layout)
    a = spec.arrays()
    centres = [float(logit((a["events"][a["outcome_idx"] == j].sum() + 0.5)
                           / (a["total"][a["outcome_idx"] == j].sum() + 1.0)))
               for j in range(2)]

    def initial_point(chain_seed: int) -> np.ndarray:
        rng = np.random.default_rng([seed, int(chain_seed)])
        point = rng.uniform(-1.0, 1.0, size=n_dim)
        point[:2] += centres
        return point

    return nutpie_model(logp_cfunc=joint_density.logp_cfunc,
                        expand_cfunc=joint_density.expand_cfunc,
                        buffer=density_buffer(spec), expanded=expanded_layout(spec),
                        coords=spec.coords, unconstrained=layout,
                        initial_point=initial_point)

