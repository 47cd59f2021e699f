"""Shared by every kernel's buffer: prior families packed into a header, C signatures.

:func:`pack_prior` is the one packer of a prior into a kernel header, used by the core
model's buffer (:mod:`bayes_poem.backends.compiled`) and the trials' kernels alike.

The prior log-densities themselves are the core kernel's
(:func:`bayes_poem.backends.density._location_logp`,
:func:`bayes_poem.backends.density._scale_logp`);
they read a family code and up to three parameters in the order of
:data:`PARAMETER_ORDER`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bayes_poem.backends.density import _EXPAND_SIG, _LOGP_SIG, LOCATION_CODES, SCALE_CODES
from bayes_poem.prior_families import REGISTRY
from bayes_poem.priors import Prior

__all__ = ["EXPAND_SIG", "LOCATION_CODES", "LOGP_SIG", "PARAMETER_ORDER", "SCALE_CODES",
           "pack_prior"]

LOGP_SIG = _LOGP_SIG
EXPAND_SIG = _EXPAND_SIG

PARAMETER_ORDER: dict[str, tuple[str, ...]] = {name: entry.params
                                               for name, entry in REGISTRY.items()}
"""Parameters of each family in the slots the kernel's prior functions read."""


def pack_prior(head: np.ndarray, family_at: int, params_at: int, prior: Prior,
               codes: Mapping[str, int]) -> None:
    """Write ``prior``'s family code at ``family_at`` and its parameters from ``params_at``."""
    head[family_at] = codes[prior.dist]
    for k, name in enumerate(PARAMETER_ORDER[prior.dist]):
        head[params_at + k] = prior.params[name]
