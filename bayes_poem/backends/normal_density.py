r"""Compiled log-density of the trials' normal-normal random-effects model, for nutpie.

The model of :func:`bayes_poem.trials.meta.random_effects_meta` (whose PyMC
version, ``meta._normal_model``, stays the reference definition): for trial
estimates ``y[s]`` with standard errors ``se[s]``::

    y[s] ~ Normal(theta_study[s], se[s])
    theta_study[s] = mu + tau * w[s],   w[s] ~ Normal(0, 1)   (non-centred)
    mu ~ Normal | StudentT
    tau ~ HalfNormal | HalfCauchy | HalfStudentT | Exponential | LogNormalTau2

Unconstrained vector ``x`` (the PyMC model's value variables, in order)::

    mu, log tau, w[study]          (2 + S values)

The log-density includes the Jacobian ``log tau`` and every constant, so it
equals PyMC's ``model.compile_logp()`` to rounding. With the scaled residuals
``r[s] = (y[s] - theta_study[s]) / se[s]^2``::

    d/dmu      = dprior(mu) + sum_s r[s]
    d/dlog tau = dprior(log tau) + sum_s tau w[s] r[s]
    d/dw[s]    = -w[s] + tau r[s]

Stored per draw (:func:`expanded_layout`): ``mu``, ``tau``, ``w[study]``,
``theta_study[study]``.

Buffer: a :data:`HEADER`-slot header (length, ``S``, the dimensions nutpie
will pass, prior family codes and parameters), then ``y`` and ``se`` (``S``
each). Prior functions and the numba caching caveat as in
:mod:`bayes_poem.backends.arm_density`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numba
import numpy as np

from bayes_poem.backends._kernel import (
    EXPAND_SIG,
    LOCATION_CODES,
    LOGP_SIG,
    SCALE_CODES,
    pack_prior,
)
from bayes_poem.backends.density import _location_logp, _scale_logp
from bayes_poem.dims import STUDY
from bayes_poem.priors import Prior

__all__ = ["HEADER", "buffer", "expand", "expand_cfunc", "expanded_layout", "logp_cfunc",
           "logp_grad", "unconstrained_layout"]

# Header layout.
H_LENGTH, H_STUDIES, H_NDIM, H_NEXPANDED = 0, 1, 2, 3
H_MU_FAMILY, H_MU_P = 4, 5  # three parameter slots 5, 6, 7
H_TAU_FAMILY, H_TAU_P = 8, 9  # two slots 9, 10
HEADER = 11

LOG_2PI = math.log(2.0 * math.pi)


def unconstrained_layout(n_studies: int) -> list[tuple[str, tuple[int, ...]]]:
    """The unconstrained vector's blocks (the PyMC model's value variables)."""
    return [("mu", ()), ("tau_log__", ()), ("w", (n_studies,))]


def expanded_layout(n_studies: int) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    """Variables stored per draw: name, shape, dims (see :func:`expand`)."""
    return [("mu", (), ()), ("tau", (), ()), ("w", (n_studies,), (STUDY,)),
            ("theta_study", (n_studies,), (STUDY,))]


def buffer(y: np.ndarray, se: np.ndarray, priors: Mapping[str, Prior]) -> np.ndarray:
    """The kernel's read-only buffer for estimates ``y``, standard errors ``se`` and priors.

    ``priors`` holds ``mu`` (a location family) and ``tau`` (a scale family),
    validated by the caller; ``se > 0``.
    """
    y = np.asarray(y, dtype=np.float64).ravel()
    se = np.asarray(se, dtype=np.float64).ravel()
    n_studies = y.size
    head = np.zeros(HEADER)
    head[H_LENGTH] = HEADER + 2 * n_studies
    head[H_STUDIES] = n_studies
    head[H_NDIM] = sum(int(np.prod(s)) for _, s in unconstrained_layout(n_studies))
    head[H_NEXPANDED] = sum(int(np.prod(s)) for _, s, _ in expanded_layout(n_studies))
    pack_prior(head, H_MU_FAMILY, H_MU_P, priors["mu"], LOCATION_CODES)
    pack_prior(head, H_TAU_FAMILY, H_TAU_P, priors["tau"], SCALE_CODES)
    out = np.concatenate([head, y, se])
    out.flags.writeable = False
    return out


@numba.njit(cache=True, error_model="numpy")
def logp_grad(x, buf, grad):
    """Log-density (with all constants) at ``x``; fills ``grad`` in place."""
    n_s = int(buf[H_STUDIES])
    y = buf[HEADER:HEADER + n_s]
    se = buf[HEADER + n_s:HEADER + 2 * n_s]
    for k in range(grad.shape[0]):
        grad[k] = 0.0
    mu = x[0]
    lp, g = _location_logp(int(buf[H_MU_FAMILY]), buf[H_MU_P:H_MU_P + 3], mu)
    grad[0] += g
    tau = math.exp(x[1])
    lpt, gt = _scale_logp(int(buf[H_TAU_FAMILY]), buf[H_TAU_P:H_TAU_P + 2], x[1])
    lp += lpt
    grad[1] += gt
    for s in range(n_s):
        w = x[2 + s]
        resid = y[s] - mu - tau * w
        t = resid / se[s]
        lp += -LOG_2PI - math.log(se[s]) - 0.5 * t * t - 0.5 * w * w
        r = t / se[s]
        grad[0] += r
        grad[1] += tau * w * r
        grad[2 + s] += tau * r - w
    return lp


@numba.njit(cache=True)
def expand(x, buf, out):
    """``mu, tau, w[study], theta_study[study]`` from ``x`` (see :func:`expanded_layout`)."""
    n_s = int(buf[H_STUDIES])
    tau = math.exp(x[1])
    out[0] = x[0]
    out[1] = tau
    for s in range(n_s):
        out[2 + s] = x[2 + s]
        out[2 + n_s + s] = x[0] + tau * x[2 + s]
    return 2 + 2 * n_s


@numba.cfunc(LOGP_SIG, cache=True)
def logp_cfunc(dim, x_, grad_, logp_, user_data_):
    head = numba.carray(user_data_, (HEADER,), np.float64)
    if dim != int(head[H_NDIM]):
        return -1
    buf = numba.carray(user_data_, (int(head[H_LENGTH]),), np.float64)
    x = numba.carray(x_, (dim,))
    grad = numba.carray(grad_, (dim,))
    out = numba.carray(logp_, ())
    value = logp_grad(x, buf, grad)
    out[()] = value
    for k in range(dim):
        if not math.isfinite(grad[k]):
            return 3
    if not math.isfinite(value):
        return 4
    return 0


@numba.cfunc(EXPAND_SIG, cache=True)
def expand_cfunc(dim, n_expanded, x_, out_, user_data_):
    head = numba.carray(user_data_, (HEADER,), np.float64)
    if dim != int(head[H_NDIM]) or n_expanded != int(head[H_NEXPANDED]):
        return -1
    buf = numba.carray(user_data_, (int(head[H_LENGTH]),), np.float64)
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (n_expanded,))
    expand(x, buf, out)
    return 0
