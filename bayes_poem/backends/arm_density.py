r"""Compiled log-density of the trials' arm-based binomial meta-analysis, for nutpie.

The model of :mod:`bayes_poem.trials.meta` (whose PyMC version,
``meta._binomial_model``, stays the reference definition): for trial ``s`` and
arm ``j`` (0 = anterior, 1 = posterior)::

    y[s, j] ~ Binomial(n[s, j], p[s, j])
    logit p[s, 0] = mu[s]
    logit p[s, 1] = mu[s] + theta + delta[s],   delta[s] = tau * w[s]
    mu[s] ~ Normal(m, s_mu)      (fixed study baselines, prior "mu_study")
    w[s] ~ Normal(0, 1)          (non-centred)
    theta ~ Normal | StudentT    (pooled log odds ratio)
    tau ~ HalfNormal | HalfCauchy | HalfStudentT | Exponential | LogNormalTau2

Unconstrained vector ``x`` (the PyMC model's value variables, in order)::

    theta, log tau, mu[study], w[study]          (2 + 2 S values)

and the log-density includes the Jacobian ``log tau`` of ``tau = exp(x[1])``
and every constant (``log binom(n, y)`` included), so it equals PyMC's
``model.compile_logp()`` to rounding. With ``r0 = y[s,0] - n[s,0] p[s,0]`` and
``r1 = y[s,1] - n[s,1] p[s,1]`` (the binomial scores in the logits) the gradient is::

    d/dtheta   = dprior(theta) + sum_s r1[s]
    d/dlog tau = dprior(log tau) + sum_s tau w[s] r1[s]
    d/dmu[s]   = -(mu[s] - m) / s_mu^2 + r0[s] + r1[s]
    d/dw[s]    = -w[s] + tau r1[s]

Stored per draw (:func:`expanded_layout`): ``theta``, ``tau``, ``mu[study]``,
``w[study]``, ``delta[study]``.

Buffer: a :data:`HEADER`-slot header (length, number of trials ``S``, the
dimensions nutpie will pass, prior family codes and parameters), then the
arrays ``events``, ``total`` and ``log binom(n, y)``, each ``S x 2`` row-major
(trial, arm). The prior functions are the core kernel's
(``density._location_logp``, ``density._scale_logp``; codes
``density.LOCATION_CODES``, ``density.SCALE_CODES``).

Compiled by numba once per installation (``cache=True``). numba keys its disk
cache on this file only: after editing the prior functions in ``density.py``,
touch this file (or remove its ``__pycache__`` entries) so that the kernels
here are recompiled with them; ``tests/test_arm_density.py`` compares against
PyMC and would show a stale cache.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numba
import numpy as np
from scipy.special import gammaln

from bayes_poem.backends._kernel import (
    EXPAND_SIG,
    LOCATION_CODES,
    LOGP_SIG,
    SCALE_CODES,
    pack_prior,
)
from bayes_poem.backends.density import _location_logp, _log_sigmoid, _scale_logp, _sigmoid
from bayes_poem.dims import STUDY
from bayes_poem.priors import Prior

__all__ = ["HEADER", "buffer", "expand", "expand_cfunc", "expanded_layout", "logp_cfunc",
           "logp_grad", "unconstrained_layout"]

# Header layout.
H_LENGTH, H_STUDIES, H_NDIM, H_NEXPANDED = 0, 1, 2, 3
H_THETA_FAMILY, H_THETA_P = 4, 5  # three parameter slots 5, 6, 7
H_TAU_FAMILY, H_TAU_P = 8, 9  # two slots 9, 10
H_MU_P = 11  # Normal(m, s_mu): slots 11, 12
HEADER = 13

LOG_2PI = math.log(2.0 * math.pi)


def unconstrained_layout(n_studies: int) -> list[tuple[str, tuple[int, ...]]]:
    """The unconstrained vector's blocks (the PyMC model's value variables)."""
    return [("theta", ()), ("tau_log__", ()), ("mu", (n_studies,)), ("w", (n_studies,))]


def expanded_layout(n_studies: int) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    """Variables stored per draw: name, shape, dims (see :func:`expand`)."""
    per_study = ((n_studies,), (STUDY,))
    return [("theta", (), ()), ("tau", (), ()), ("mu", *per_study), ("w", *per_study),
            ("delta", *per_study)]


def buffer(events: np.ndarray, total: np.ndarray, priors: Mapping[str, Prior]) -> np.ndarray:
    """The kernel's read-only buffer for ``S x 2`` counts (trial, arm) and priors.

    ``priors`` holds ``theta`` (a location family), ``tau`` (a scale family) and
    ``mu_study`` (Normal), validated by the caller.
    """
    events = np.asarray(events, dtype=np.float64).reshape(-1, 2)
    total = np.asarray(total, dtype=np.float64).reshape(-1, 2)
    n_studies = events.shape[0]
    log_binom = gammaln(total + 1.0) - gammaln(events + 1.0) - gammaln(total - events + 1.0)
    body = np.concatenate([events.ravel(), total.ravel(), log_binom.ravel()])
    head = np.zeros(HEADER)
    head[H_LENGTH] = HEADER + body.size
    head[H_STUDIES] = n_studies
    head[H_NDIM] = sum(int(np.prod(s)) for _, s in unconstrained_layout(n_studies))
    head[H_NEXPANDED] = sum(int(np.prod(s)) for _, s, _ in expanded_layout(n_studies))
    pack_prior(head, H_THETA_FAMILY, H_THETA_P, priors["theta"], LOCATION_CODES)
    pack_prior(head, H_TAU_FAMILY, H_TAU_P, priors["tau"], SCALE_CODES)
    mu_study = priors["mu_study"]
    head[H_MU_P], head[H_MU_P + 1] = mu_study.params["mu"], mu_study.params["sigma"]
    out = np.concatenate([head, body])
    out.flags.writeable = False
    return out


@numba.njit(cache=True, error_model="numpy")
def logp_grad(x, buf, grad):
    """Log-density (with all constants) at ``x``; fills ``grad`` in place."""
    n_s = int(buf[H_STUDIES])
    o = HEADER
    events = buf[o:o + 2 * n_s]
    total = buf[o + 2 * n_s:o + 4 * n_s]
    log_binom = buf[o + 4 * n_s:o + 6 * n_s]
    for k in range(grad.shape[0]):
        grad[k] = 0.0

    theta = x[0]
    lp, g = _location_logp(int(buf[H_THETA_FAMILY]), buf[H_THETA_P:H_THETA_P + 3], theta)
    grad[0] += g
    tau = math.exp(x[1])
    lpt, gt = _scale_logp(int(buf[H_TAU_FAMILY]), buf[H_TAU_P:H_TAU_P + 2], x[1])
    lp += lpt
    grad[1] += gt
    m, s_mu = buf[H_MU_P], buf[H_MU_P + 1]
    i_mu, i_w = 2, 2 + n_s
    for s in range(n_s):
        mu = x[i_mu + s]
        w = x[i_w + s]
        t = (mu - m) / s_mu
        lp += -0.5 * LOG_2PI - math.log(s_mu) - 0.5 * t * t - 0.5 * LOG_2PI - 0.5 * w * w
        grad[i_mu + s] -= t / s_mu
        grad[i_w + s] -= w
        # anterior arm: logit p = mu
        y, n = events[2 * s], total[2 * s]
        lp += y * _log_sigmoid(mu) + (n - y) * _log_sigmoid(-mu) + log_binom[2 * s]
        r0 = y - n * _sigmoid(mu)
        # posterior arm: logit p = mu + theta + tau * w
        eta = mu + theta + tau * w
        y, n = events[2 * s + 1], total[2 * s + 1]
        lp += y * _log_sigmoid(eta) + (n - y) * _log_sigmoid(-eta) + log_binom[2 * s + 1]
        r1 = y - n * _sigmoid(eta)
        grad[i_mu + s] += r0 + r1
        grad[0] += r1
        grad[i_w + s] += tau * r1
        grad[1] += tau * w * r1
    return lp


@numba.njit(cache=True)
def expand(x, buf, out):
    """``theta, tau, mu[study], w[study], delta[study]`` from ``x`` (:func:`expanded_layout`)."""
    n_s = int(buf[H_STUDIES])
    tau = math.exp(x[1])
    out[0] = x[0]
    out[1] = tau
    for s in range(n_s):
        out[2 + s] = x[2 + s]
        out[2 + n_s + s] = x[2 + n_s + s]
        out[2 + 2 * n_s + s] = tau * x[2 + n_s + s]
    return 2 + 3 * n_s


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
