r"""Compiled log-density of the bivariate (efficacy and safety) model, for nutpie.

The model of :mod:`bayes_poem.joint` (whose PyMC version, ``JointSpec.build``,
stays the reference definition). Row ``i`` is one study ``s_i`` x subgroup
``d_i`` x outcome ``o_i`` cell, ``o = 0`` the benefit outcome (clinical success),
``o = 1`` the harm (adverse events)::

    y_i ~ Binomial(n_i, p_i)
    logit p_i = mu[o] + alpha[o, d] + u[o, s]                (o = o_i, d = d_i, s = s_i)
    u[0, s] = tau[0] * w[0, s]
    u[1, s] = tau[1] * (rho * w[0, s] + c * w[1, s]),   c = sqrt(1 - rho^2)
    w[o, s] ~ Normal(0, 1)                                    (non-centred)
    rho = tanh(y_rho),   p(rho) = (1 - rho^2)^(eta - 1) / (2^(2 eta - 1) B(eta, eta))

so ``(u[0, s], u[1, s])`` is bivariate normal with SDs ``tau[0]``, ``tau[1]`` and
correlation ``rho``. The prior on ``rho`` is the LKJ(``eta``) distribution of a
2 x 2 correlation matrix, i.e. ``(1 + rho) / 2 ~ Beta(eta, eta)`` (``eta = 2``
by default: density ``0.75 (1 - rho^2)``, 95% of its mass in ``|rho| < 0.81``).
With ``rho`` pinned (header slot :data:`H_RHO_MODE` = :data:`RHO_FIXED`) the
vector has no ``y_rho`` and ``rho = buf[H_RHO_VALUE]``.

Subgroup effects, per outcome, as in the one-outcome kernel
(:mod:`bayes_poem.backends.density`): random, ``alpha[o, d] = sigma_subgroup[o] * z[o, d]``,
``z ~ N(0, 1)``; fixed (sum to zero), ``alpha[o] = s_alpha[o] * H @ alpha_raw[o]``
with ``H`` the orthonormal Helmert basis (``density.helmert_basis``),
``alpha_raw ~ N(0, I)``; or none. Priors per outcome on ``mu[o]`` (a location
family), ``tau[o]`` and ``sigma_subgroup[o]`` (scale families) come from the
registry (:mod:`bayes_poem.prior_families`) through the core kernel's
``density._location_logp`` / ``density._scale_logp``.

Unconstrained vector ``x`` (the PyMC reference's value variables, in order)::

    mu_0, mu_1, tau_0_log__, tau_1_log__,
    rho_atanh                              (rho free: y_rho)
    w[outcome, study]                      (2 S, row-major: w[0, :], then w[1, :])
    sigma_subgroup_0_log__, sigma_subgroup_1_log__, z[outcome, subgroup]   (random)
    alpha_raw[outcome, subgroup_contrast]  (fixed: 2 (D - 1))

A study that reports one outcome only has rows of that outcome only: the other
outcome's ``w`` enters the likelihood only through ``u[1, s]`` (for ``w[0, s]``)
or not at all (``w[1, s]``), and is otherwise prior-only.

Gradient. With the binomial scores ``r_i = y_i - n_i p_i`` summed per outcome and
study, ``R[o, s] = sum_{i: o_i = o, s_i = s} r_i``, and per outcome and subgroup,
``Q[o, d]``::

    d/d mu[o]       = dprior + sum_s R[o, s]
    d/d w[0, s]     = -w[0, s] + tau[0] R[0, s] + tau[1] rho R[1, s]
    d/d w[1, s]     = -w[1, s] + tau[1] c R[1, s]
    d/d log tau[0]  = dprior + sum_s u[0, s] R[0, s]
    d/d log tau[1]  = dprior + sum_s u[1, s] R[1, s]
    d/d y_rho       = -2 eta rho + sum_s tau[1] (c^2 w[0, s] - rho c w[1, s]) R[1, s]

(``d rho / d y_rho = c^2``, ``d c / d y_rho = -rho c``; the log-density of
``y_rho`` is ``eta log(1 - rho^2) - (2 eta - 1) log 2 - log B(eta, eta)``, the
prior of ``rho`` with the Jacobian ``1 - rho^2``), and for the subgroup effects
those of the one-outcome kernel with ``Q[o, :]`` per outcome.

Stored per draw (:func:`expanded_layout`): ``mu[outcome]``, ``tau[outcome]``,
``rho``, ``w[outcome, study]``, ``u[outcome, study]``, then
``sigma_subgroup[outcome]`` and ``z[outcome, subgroup]`` (random) and
``alpha[outcome, subgroup]`` (random or fixed).

Buffer: a :data:`HEADER`-slot header, then ``events``, ``total``,
``log binom(n, y)``, ``outcome_idx``, ``study_idx``, ``subgroup_idx`` (one value
per row) and the Helmert basis (``D x (D-1)``, row-major). Compiled by numba
once per installation (``cache=True``); numba keys its disk cache on this file
only, so after editing the prior functions in ``density.py`` touch this file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

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
from bayes_poem.backends.density import (
    _location_logp,
    _log_sigmoid,
    _scale_logp,
    _sigmoid,
    helmert_basis,
)
from bayes_poem.dims import OUTCOME, STUDY, SUBGROUP
from bayes_poem.priors import Prior

__all__ = ["HEADER", "RHO_FIXED", "RHO_FREE", "SUBGROUP_CODES", "buffer", "expand",
           "expand_cfunc", "expanded_layout", "logp_cfunc", "logp_grad", "rho_log_prior",
           "unconstrained_layout"]

SUBGROUP_NONE, SUBGROUP_RANDOM, SUBGROUP_FIXED = 0, 1, 2
SUBGROUP_CODES = {"none": SUBGROUP_NONE, "random": SUBGROUP_RANDOM, "fixed": SUBGROUP_FIXED}
RHO_FREE, RHO_FIXED = 0, 1

# Header layout.
H_LENGTH, H_ROWS, H_STUDIES, H_SUBGROUPS = 0, 1, 2, 3
H_SUBGROUP_MODE, H_NDIM, H_NEXPANDED = 4, 5, 6
H_RHO_MODE, H_RHO_VALUE, H_ETA = 7, 8, 9
H_OUTCOME0 = 10  # per outcome o, from H_OUTCOME0 + o * OUTCOME_SLOTS:
P_MU_FAMILY, P_MU_P = 0, 1  # three parameter slots 1, 2, 3
P_TAU_FAMILY, P_TAU_P = 4, 5  # two slots 5, 6
P_SG_FAMILY, P_SG_P = 7, 8  # two slots 8, 9
P_ALPHA_SIGMA = 10
OUTCOME_SLOTS = 11
HEADER = H_OUTCOME0 + 2 * OUTCOME_SLOTS

LOG_2PI = math.log(2.0 * math.pi)
LOG_2 = math.log(2.0)


def unconstrained_layout(n_studies: int, n_subgroups: int, subgroup_effects: str,
                         rho_free: bool) -> list[tuple[str, tuple[int, ...]]]:
    """The unconstrained vector's blocks (the PyMC reference's value variables)."""
    layout: list[tuple[str, tuple[int, ...]]] = [
        ("mu_0", ()), ("mu_1", ()), ("tau_0_log__", ()), ("tau_1_log__", ())]
    if rho_free:
        layout.append(("rho_atanh", ()))
    layout.append(("w", (2, n_studies)))
    if subgroup_effects == "random":
        layout += [("sigma_subgroup_0_log__", ()), ("sigma_subgroup_1_log__", ()),
                   ("z", (2, n_subgroups))]
    elif subgroup_effects == "fixed":
        layout.append(("alpha_raw", (2, n_subgroups - 1)))
    return layout


def expanded_layout(n_studies: int, n_subgroups: int,
                    subgroup_effects: str) -> list[tuple[str, tuple[int, ...], tuple[str, ...]]]:
    """Variables stored per draw: name, shape, dims (see :func:`expand`)."""
    by_study = ((2, n_studies), (OUTCOME, STUDY))
    by_subgroup = ((2, n_subgroups), (OUTCOME, SUBGROUP))
    layout: list[tuple[str, tuple[int, ...], tuple[str, ...]]] = [
        ("mu", (2,), (OUTCOME,)), ("tau", (2,), (OUTCOME,)), ("rho", (), ()),
        ("w", *by_study), ("u", *by_study)]
    if subgroup_effects == "random":
        layout += [("sigma_subgroup", (2,), (OUTCOME,)), ("z", *by_subgroup),
                   ("alpha", *by_subgroup)]
    elif subgroup_effects == "fixed":
        layout.append(("alpha", *by_subgroup))
    return layout


def buffer(*, events: np.ndarray, total: np.ndarray, outcome_idx: np.ndarray,
           study_idx: np.ndarray, subgroup_idx: np.ndarray, n_studies: int, n_subgroups: int,
           subgroup_effects: str, priors: Sequence[Mapping[str, Prior]], rho_eta: float,
           rho_fixed: float | None) -> np.ndarray:
    """The kernel's read-only buffer.

    ``priors[o]`` holds ``mu`` (a location family), ``tau`` and
    ``sigma_subgroup`` (scale families) and ``alpha`` (Normal: its ``sigma``) of
    outcome ``o``, validated by the caller; ``rho_fixed`` pins ``rho`` (``None``:
    ``rho`` is sampled under the LKJ(``rho_eta``) prior).
    """
    events = np.asarray(events, dtype=np.float64)
    total = np.asarray(total, dtype=np.float64)
    log_binom = gammaln(total + 1.0) - gammaln(events + 1.0) - gammaln(total - events + 1.0)
    body = np.concatenate([events, total, log_binom,
                           np.asarray(outcome_idx, dtype=np.float64),
                           np.asarray(study_idx, dtype=np.float64),
                           np.asarray(subgroup_idx, dtype=np.float64),
                           helmert_basis(n_subgroups).ravel()])
    head = np.zeros(HEADER)
    head[H_LENGTH] = HEADER + body.size
    head[H_ROWS] = events.size
    head[H_STUDIES] = n_studies
    head[H_SUBGROUPS] = n_subgroups
    head[H_SUBGROUP_MODE] = SUBGROUP_CODES[subgroup_effects]
    rho_free = rho_fixed is None
    head[H_NDIM] = sum(int(np.prod(s)) for _, s in unconstrained_layout(
        n_studies, n_subgroups, subgroup_effects, rho_free))
    head[H_NEXPANDED] = sum(int(np.prod(s)) for _, s, _ in expanded_layout(
        n_studies, n_subgroups, subgroup_effects))
    head[H_RHO_MODE] = RHO_FREE if rho_free else RHO_FIXED
    head[H_RHO_VALUE] = 0.0 if rho_free else float(rho_fixed)
    head[H_ETA] = rho_eta
    for o in range(2):
        at = H_OUTCOME0 + o * OUTCOME_SLOTS
        pack_prior(head, at + P_MU_FAMILY, at + P_MU_P, priors[o]["mu"], LOCATION_CODES)
        pack_prior(head, at + P_TAU_FAMILY, at + P_TAU_P, priors[o]["tau"], SCALE_CODES)
        pack_prior(head, at + P_SG_FAMILY, at + P_SG_P, priors[o]["sigma_subgroup"],
                   SCALE_CODES)
        head[at + P_ALPHA_SIGMA] = priors[o]["alpha"].params["sigma"]
    out = np.concatenate([head, body])
    out.flags.writeable = False
    return out


def rho_log_prior(y: float, eta: float) -> float:
    """log density of ``y_rho = atanh(rho)`` (prior of ``rho`` with its Jacobian); for tests."""
    return float(_rho_logp(y, eta)[0])


@numba.njit(cache=True)
def _rho_logp(y, eta):
    """log p(y) for rho = tanh(y) with p(rho) LKJ(eta), and d/dy."""
    a = abs(y)
    log_1m_rho2 = 2.0 * (LOG_2 - a - math.log1p(math.exp(-2.0 * a)))  # -2 log cosh y
    log_beta = 2.0 * math.lgamma(eta) - math.lgamma(2.0 * eta)
    lp = eta * log_1m_rho2 - (2.0 * eta - 1.0) * LOG_2 - log_beta
    return lp, -2.0 * eta * math.tanh(y)


@numba.njit(cache=True, error_model="numpy")
def logp_grad(x, buf, grad):
    """Log-density (with all constants) at ``x``; fills ``grad`` in place."""
    n_rows = int(buf[H_ROWS])
    n_s = int(buf[H_STUDIES])
    n_sub = int(buf[H_SUBGROUPS])
    sub_mode = int(buf[H_SUBGROUP_MODE])
    rho_free = int(buf[H_RHO_MODE]) == RHO_FREE
    o = HEADER
    events = buf[o:o + n_rows]
    total = buf[o + n_rows:o + 2 * n_rows]
    log_binom = buf[o + 2 * n_rows:o + 3 * n_rows]
    out_idx = buf[o + 3 * n_rows:o + 4 * n_rows]
    study_idx = buf[o + 4 * n_rows:o + 5 * n_rows]
    sub_idx = buf[o + 5 * n_rows:o + 6 * n_rows]
    basis = buf[o + 6 * n_rows:o + 6 * n_rows + n_sub * max(n_sub - 1, 0)]
    for k in range(grad.shape[0]):
        grad[k] = 0.0

    lp = 0.0
    taus = np.zeros(2)
    for j in range(2):
        at = H_OUTCOME0 + j * OUTCOME_SLOTS
        lpm, gm = _location_logp(int(buf[at + P_MU_FAMILY]),
                                 buf[at + P_MU_P:at + P_MU_P + 3], x[j])
        lp += lpm
        grad[j] += gm
        lpt, gt = _scale_logp(int(buf[at + P_TAU_FAMILY]),
                              buf[at + P_TAU_P:at + P_TAU_P + 2], x[2 + j])
        lp += lpt
        grad[2 + j] += gt
        taus[j] = math.exp(x[2 + j])
    pos = 4
    i_rho = -1
    if rho_free:
        i_rho = pos
        eta = buf[H_ETA]
        lpr, gr = _rho_logp(x[pos], eta)
        lp += lpr
        grad[pos] += gr
        rho = math.tanh(x[pos])
        pos += 1
    else:
        rho = buf[H_RHO_VALUE]
    c = math.sqrt(1.0 - rho * rho)
    i_w = pos
    u = np.zeros((2, n_s))
    for k in range(2 * n_s):
        w = x[i_w + k]
        lp += -0.5 * LOG_2PI - 0.5 * w * w
        grad[i_w + k] -= w
    for s in range(n_s):
        w0 = x[i_w + s]
        w1 = x[i_w + n_s + s]
        u[0, s] = taus[0] * w0
        u[1, s] = taus[1] * (rho * w0 + c * w1)
    pos = i_w + 2 * n_s

    alpha = np.zeros((2, n_sub))
    sig = np.zeros(2)
    i_sig = -1
    i_z = -1
    if sub_mode == SUBGROUP_RANDOM:
        i_sig = pos
        i_z = pos + 2
        for j in range(2):
            at = H_OUTCOME0 + j * OUTCOME_SLOTS
            lps, gs = _scale_logp(int(buf[at + P_SG_FAMILY]),
                                  buf[at + P_SG_P:at + P_SG_P + 2], x[pos + j])
            lp += lps
            grad[pos + j] += gs
            sig[j] = math.exp(x[pos + j])
            for d in range(n_sub):
                z = x[i_z + j * n_sub + d]
                lp += -0.5 * LOG_2PI - 0.5 * z * z
                grad[i_z + j * n_sub + d] -= z
                alpha[j, d] = sig[j] * z
        pos = i_z + 2 * n_sub
    elif sub_mode == SUBGROUP_FIXED:
        i_z = pos
        m = n_sub - 1
        for j in range(2):
            s_alpha = buf[H_OUTCOME0 + j * OUTCOME_SLOTS + P_ALPHA_SIGMA]
            for k in range(m):
                v = x[i_z + j * m + k]
                lp += -0.5 * LOG_2PI - 0.5 * v * v
                grad[i_z + j * m + k] -= v
                for d in range(n_sub):
                    alpha[j, d] += s_alpha * basis[d * m + k] * v
        pos = i_z + 2 * m

    # Likelihood: r_i = d loglik / d eta_i = y_i - n_i p_i, summed per (outcome, study)
    # and per (outcome, subgroup).
    resid_study = np.zeros((2, n_s))
    resid_sub = np.zeros((2, n_sub))
    for i in range(n_rows):
        n = total[i]
        if n == 0.0:
            continue
        y = events[i]
        j = int(out_idx[i])
        s = int(study_idx[i])
        d = int(sub_idx[i])
        eta_i = x[j] + alpha[j, d] + u[j, s]
        lp += y * _log_sigmoid(eta_i) + (n - y) * _log_sigmoid(-eta_i) + log_binom[i]
        r = y - n * _sigmoid(eta_i)
        grad[j] += r
        resid_study[j, s] += r
        resid_sub[j, d] += r

    for s in range(n_s):
        r0 = resid_study[0, s]
        r1 = resid_study[1, s]
        w0 = x[i_w + s]
        w1 = x[i_w + n_s + s]
        grad[i_w + s] += taus[0] * r0 + taus[1] * rho * r1
        grad[i_w + n_s + s] += taus[1] * c * r1
        grad[2] += u[0, s] * r0
        grad[3] += u[1, s] * r1
        if rho_free:
            grad[i_rho] += taus[1] * (c * c * w0 - rho * c * w1) * r1

    if sub_mode == SUBGROUP_RANDOM:
        for j in range(2):
            for d in range(n_sub):
                grad[i_z + j * n_sub + d] += sig[j] * resid_sub[j, d]
                grad[i_sig + j] += alpha[j, d] * resid_sub[j, d]
    elif sub_mode == SUBGROUP_FIXED:
        m = n_sub - 1
        for j in range(2):
            s_alpha = buf[H_OUTCOME0 + j * OUTCOME_SLOTS + P_ALPHA_SIGMA]
            for k in range(m):
                acc = 0.0
                for d in range(n_sub):
                    acc += basis[d * m + k] * resid_sub[j, d]
                grad[i_z + j * m + k] += s_alpha * acc
    return lp


@numba.njit(cache=True)
def expand(x, buf, out):
    """The stored variables at ``x``, in the order of :func:`expanded_layout`."""
    n_rows = int(buf[H_ROWS])
    n_s = int(buf[H_STUDIES])
    n_sub = int(buf[H_SUBGROUPS])
    sub_mode = int(buf[H_SUBGROUP_MODE])
    rho_free = int(buf[H_RHO_MODE]) == RHO_FREE
    out[0] = x[0]
    out[1] = x[1]
    out[2] = math.exp(x[2])
    out[3] = math.exp(x[3])
    pos = 4
    if rho_free:
        rho = math.tanh(x[pos])
        pos += 1
    else:
        rho = buf[H_RHO_VALUE]
    out[4] = rho
    c = math.sqrt(1.0 - rho * rho)
    k = 5
    for j in range(2 * n_s):
        out[k + j] = x[pos + j]
    k += 2 * n_s
    for s in range(n_s):
        out[k + s] = out[2] * x[pos + s]
        out[k + n_s + s] = out[3] * (rho * x[pos + s] + c * x[pos + n_s + s])
    k += 2 * n_s
    pos += 2 * n_s
    if sub_mode == SUBGROUP_RANDOM:
        out[k] = math.exp(x[pos])
        out[k + 1] = math.exp(x[pos + 1])
        k += 2
        for j in range(2):
            for d in range(n_sub):
                z = x[pos + 2 + j * n_sub + d]
                out[k + j * n_sub + d] = z
                out[k + 2 * n_sub + j * n_sub + d] = out[k - 2 + j] * z
        k += 4 * n_sub
    elif sub_mode == SUBGROUP_FIXED:
        m = n_sub - 1
        o_basis = HEADER + 6 * n_rows
        for j in range(2):
            s_alpha = buf[H_OUTCOME0 + j * OUTCOME_SLOTS + P_ALPHA_SIGMA]
            for d in range(n_sub):
                acc = 0.0
                for q in range(m):
                    acc += buf[o_basis + d * m + q] * x[pos + j * m + q]
                out[k + j * n_sub + d] = s_alpha * acc
        k += 2 * n_sub
    return k


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
