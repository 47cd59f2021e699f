"""Compiled log-density of the binomial-logit-normal model family, for nutpie.

Why this exists
---------------
nutpie compiles a PyMC model to numba in every new process (about 6 s warm,
13 s cold here), which would dominate a CLI run or a grid of sensitivity
variants. This module holds one hand-written log-density and gradient for the
whole model family of :mod:`bayes_poem.spec`, compiled by numba **once per
installation** (``cache=True``: later processes load machine code from disk).
Everything that varies between fits -- the model's structure flags, the data
and every prior hyperparameter -- travels in one ``float64`` buffer passed to
the C callback as nutpie's ``user_data``. No fit ever recompiles.

The PyMC model from :func:`bayes_poem.backends.pymc_model.build_model` remains the
reference definition: ``tests/test_density.py`` checks log-density and gradient
against it at random points for every structure and prior family. A spec's buffer
and layouts are packed by :mod:`bayes_poem.backends.compiled`.

Unconstrained parameter vector ``x`` (in this order, matching the PyMC model's
free variables)::

    mu
    log tau, w[study]                     (study_effects == "random")
    log tau[subgroup], w[study]           (... with study_heterogeneity == "by_subgroup")
    log phi                               (likelihood == "beta_binomial")
    log sigma_subgroup, z[subgroup]       (subgroup_effects == "random")
    alpha_raw[subgroup_contrast]          (subgroup_effects == "fixed")
    beta[moderator]                       (K > 0 moderator terms)
    log tau_cell, v[cell]                 (C = buf[H_CELLS] > 0: cell_effects == "random")

with ``u = tau * w``, ``alpha = sigma_subgroup * z`` (random) or
``alpha = s_alpha * H @ alpha_raw`` (fixed; ``H`` an orthonormal basis of the
sum-to-zero subspace), and ``logit p_i = mu + alpha[d_i] + u[s_i] + X[i] @ beta``
(with ``study_heterogeneity == "by_subgroup"``, header slot ``H_STUDY_MODE`` =
:data:`STUDY_BY_SUBGROUP`, the study term of row ``i`` is ``tau[d_i] * w[s_i]``;
with cell effects ``+ tau_cell * v[c_i]``, below)
with ``beta_k ~ Normal(0, s_beta[k])``; the gradient in ``beta`` is
``X^T dlogp/deta``. With cell effects (``C`` cells, the distinct study x subgroup
pairs of the rows) row ``i`` also gets ``tau_cell * v[c_i]``, ``v ~ N(0, 1)``
(non-centred), so ``d logp / d v_c = tau_cell * sum_{i: c_i = c} r_i - v_c``
and ``d logp / d log tau_cell = tau_cell * sum_i v[c_i] r_i + d log prior``.

Buffer: a :data:`HEADER`-slot header, then the arrays ``events``, ``total``,
``log binom(n, y)``, ``study_idx``, ``subgroup_idx`` (one value per row), the
Helmert basis (``D x (D-1)``, row-major), and, when ``K = buf[H_MODERATORS] > 0``,
the prior SDs ``s_beta`` (``K``) and the design matrix ``X`` (``rows x K``,
row-major), and, when ``C = buf[H_CELLS] > 0``, the cell index ``cell_idx`` (one
value per row). With ``K = 0`` the buffer is the one of the model without
moderators; with ``C = 0`` the one without cell effects (the ``tau_cell`` prior
slots are then unused).

Likelihoods: binomial, or beta-binomial with mean ``p_i`` and concentration
``kappa = 1 / phi**2`` (``a = p kappa``, ``b = (1 - p) kappa``). For integer counts
the beta-function ratios are finite sums, e.g.
``log Gamma(y + a) - log Gamma(a) = sum_{k<y} log(a + k)``, so value and gradient
need no digamma function.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types

from bayes_poem import prior_families

# Structure codes (stored as floats in the buffer header).
STUDY_COMMON, STUDY_RANDOM, STUDY_BY_SUBGROUP = 0, 1, 2  # 2: random, tau[subgroup]
SUBGROUP_NONE, SUBGROUP_RANDOM, SUBGROUP_FIXED = 0, 1, 2
# Prior family -> kernel code, from the registry (prior_families.REGISTRY); the
# branches of _location_logp / _scale_logp below are the kernel's side of each code.
LOCATION_CODES = prior_families.codes(prior_families.LOCATION)
SCALE_CODES = prior_families.codes(prior_families.SCALE)
LIKELIHOOD_CODES = {"binomial": 0, "beta_binomial": 1}

# Header layout.
H_LENGTH, H_ROWS, H_STUDIES, H_SUBGROUPS = 0, 1, 2, 3
H_STUDY_MODE, H_SUBGROUP_MODE = 4, 5
H_MU_FAMILY, H_MU_P = 6, 7  # three parameter slots 7, 8, 9
H_TAU_FAMILY, H_TAU_P = 10, 11  # two slots 11, 12
H_SG_FAMILY, H_SG_P = 13, 14  # two slots 14, 15
H_ALPHA_SIGMA = 16
H_NDIM, H_NEXPANDED = 17, 18
H_LIKELIHOOD, H_PHI_FAMILY, H_PHI_P = 19, 20, 21  # two slots 21, 22
H_MODERATORS = 23  # K, the number of moderator terms (columns of the design matrix)
H_CELLS = 24  # C, the number of study x subgroup cells with an effect; 0: no cell effects
H_TAU_CELL_FAMILY, H_TAU_CELL_P = 25, 26  # two slots 26, 27
HEADER = 28

LOG_2PI = math.log(2.0 * math.pi)
LOG_2 = math.log(2.0)


def helmert_basis(n: int) -> np.ndarray:
    """Orthonormal ``n x (n-1)`` basis of the sum-to-zero subspace of R^n."""
    basis = np.zeros((n, max(n - 1, 0)))
    for k in range(1, n):
        basis[:k, k - 1] = 1.0
        basis[k, k - 1] = -float(k)
        basis[:, k - 1] /= math.sqrt(k * (k + 1))
    return basis


@numba.njit(cache=True, fastmath=False)
def _log_sigmoid(x):
    if x >= 0:
        return -math.log1p(math.exp(-x))
    return x - math.log1p(math.exp(x))


@numba.njit(cache=True)
def _sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@numba.njit(cache=True)
def _location_logp(family, p, x):
    """log p(x) and d/dx for a location prior; p holds its parameters."""
    if family == 0:  # code 0, registry "Normal": Normal(mu, sigma)
        m, s = p[0], p[1]
        t = (x - m) / s
        return -0.5 * LOG_2PI - math.log(s) - 0.5 * t * t, -t / s
    # code 1, registry "StudentT": StudentT(nu, mu, sigma)
    nu, m, s = p[0], p[1], p[2]
    t = (x - m) / s
    lp = (math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu) - 0.5 * math.log(nu * math.pi)
          - math.log(s) - 0.5 * (nu + 1.0) * math.log1p(t * t / nu))
    return lp, -(nu + 1.0) * t / (nu + t * t) / s


@numba.njit(cache=True)
def _scale_logp(family, p, y):
    """log p(s) + log|ds/dy| and its derivative in y, for s = exp(y)."""
    s = math.exp(y)
    if family == 0:  # code 0, registry "HalfNormal": HalfNormal(sigma)
        sig = p[0]
        r = s / sig
        return (LOG_2 - 0.5 * LOG_2PI - math.log(sig) - 0.5 * r * r + y, -r * r + 1.0)
    if family == 1:  # code 1, registry "HalfCauchy": HalfCauchy(beta)
        r = s / p[0]
        return (LOG_2 - math.log(math.pi * p[0]) - math.log1p(r * r) + y,
                -2.0 * r * r / (1.0 + r * r) + 1.0)
    if family == 2:  # code 2, registry "HalfStudentT": HalfStudentT(nu, sigma)
        nu, sig = p[0], p[1]
        r2 = (s / sig) ** 2 / nu
        lp = (LOG_2 + math.lgamma(0.5 * (nu + 1.0)) - math.lgamma(0.5 * nu)
              - 0.5 * math.log(nu * math.pi) - math.log(sig) - 0.5 * (nu + 1.0) * math.log1p(r2))
        return lp + y, -(nu + 1.0) * r2 / (1.0 + r2) + 1.0
    if family == 3:  # code 3, registry "Exponential": Exponential(lam)
        lam = p[0]
        return math.log(lam) - lam * s + y, -lam * s + 1.0
    # code 4, registry "LogNormalTau2": log(tau^2) ~ Normal(m, sd), i.e.
    # y = log tau ~ Normal(m / 2, sd / 2)
    m, sd = 0.5 * p[0], 0.5 * p[1]
    t = (y - m) / sd
    return -0.5 * LOG_2PI - math.log(sd) - 0.5 * t * t, -t / sd


@numba.njit(cache=True, error_model="numpy")
def logp_grad(x, buf, grad):
    """Log-density (with all constants) at ``x``; fills ``grad`` in place.

    ``error_model="numpy"``: a division by zero (a probability that underflows
    to 0 or 1 in the beta-binomial) yields inf/nan instead of raising inside the
    C callback; the callback then reports a non-finite value and nutpie rejects
    the point like any other divergent proposal.
    """
    n_rows = int(buf[H_ROWS])
    n_studies = int(buf[H_STUDIES])
    n_sub = int(buf[H_SUBGROUPS])
    study_mode = int(buf[H_STUDY_MODE])
    sub_mode = int(buf[H_SUBGROUP_MODE])
    o = HEADER
    events = buf[o:o + n_rows]
    total = buf[o + n_rows:o + 2 * n_rows]
    log_binom = buf[o + 2 * n_rows:o + 3 * n_rows]
    study_idx = buf[o + 3 * n_rows:o + 4 * n_rows]
    sub_idx = buf[o + 4 * n_rows:o + 5 * n_rows]
    basis = buf[o + 5 * n_rows:o + 5 * n_rows + n_sub * max(n_sub - 1, 0)]
    n_mod = int(buf[H_MODERATORS])
    o_mod = o + 5 * n_rows + n_sub * max(n_sub - 1, 0)
    s_beta = buf[o_mod:o_mod + n_mod]
    design = buf[o_mod + n_mod:o_mod + n_mod + n_rows * n_mod]
    n_cells = int(buf[H_CELLS])
    o_cell = o_mod + n_mod + n_rows * n_mod
    cell_idx = buf[o_cell:o_cell + (n_rows if n_cells > 0 else 0)]

    for k in range(grad.shape[0]):
        grad[k] = 0.0

    mu = x[0]
    lp, g = _location_logp(int(buf[H_MU_FAMILY]), buf[H_MU_P:H_MU_P + 3], mu)
    grad[0] += g
    pos = 1

    random_study = study_mode != STUDY_COMMON
    by_subgroup = study_mode == STUDY_BY_SUBGROUP
    n_tau = n_sub if by_subgroup else 1
    taus = np.zeros(n_tau)
    i_tau = -1
    i_w = -1
    if random_study:
        i_tau = pos
        for j in range(n_tau):
            taus[j] = math.exp(x[pos + j])
            lpt, gt = _scale_logp(int(buf[H_TAU_FAMILY]), buf[H_TAU_P:H_TAU_P + 2], x[pos + j])
            lp += lpt
            grad[pos + j] += gt
        i_w = pos + n_tau
        for s in range(n_studies):
            w = x[i_w + s]
            lp += -0.5 * LOG_2PI - 0.5 * w * w
            grad[i_w + s] -= w
        pos = i_w + n_studies

    beta_binomial = int(buf[H_LIKELIHOOD]) == 1
    kappa = 0.0
    i_phi = -1
    if beta_binomial:
        i_phi = pos
        kappa = math.exp(-2.0 * x[pos])
        lpp, gp = _scale_logp(int(buf[H_PHI_FAMILY]), buf[H_PHI_P:H_PHI_P + 2], x[pos])
        lp += lpp
        grad[pos] += gp
        pos += 1

    alpha = np.zeros(n_sub)
    sig = 0.0
    i_sig = -1
    i_z = -1
    if sub_mode == SUBGROUP_RANDOM:
        i_sig = pos
        sig = math.exp(x[pos])
        lps, gs = _scale_logp(int(buf[H_SG_FAMILY]), buf[H_SG_P:H_SG_P + 2], x[pos])
        lp += lps
        grad[pos] += gs
        i_z = pos + 1
        for d in range(n_sub):
            z = x[i_z + d]
            lp += -0.5 * LOG_2PI - 0.5 * z * z
            grad[i_z + d] -= z
            alpha[d] = sig * z
        pos = i_z + n_sub
    elif sub_mode == SUBGROUP_FIXED:
        s_alpha = buf[H_ALPHA_SIGMA]
        i_z = pos
        for k in range(n_sub - 1):
            v = x[i_z + k]
            lp += -0.5 * LOG_2PI - 0.5 * v * v
            grad[i_z + k] -= v
            for d in range(n_sub):
                alpha[d] += s_alpha * basis[d * (n_sub - 1) + k] * v
        pos = i_z + n_sub - 1

    i_beta = pos
    for k in range(n_mod):
        t = x[i_beta + k] / s_beta[k]
        lp += -0.5 * LOG_2PI - math.log(s_beta[k]) - 0.5 * t * t
        grad[i_beta + k] -= t / s_beta[k]
    pos = i_beta + n_mod

    tau_cell = 0.0
    i_tc = -1
    i_v = -1
    if n_cells > 0:
        i_tc = pos
        tau_cell = math.exp(x[pos])
        lpc, gc = _scale_logp(int(buf[H_TAU_CELL_FAMILY]),
                              buf[H_TAU_CELL_P:H_TAU_CELL_P + 2], x[pos])
        lp += lpc
        grad[pos] += gc
        i_v = pos + 1
        for c in range(n_cells):
            v = x[i_v + c]
            lp += -0.5 * LOG_2PI - 0.5 * v * v
            grad[i_v + c] -= v

    # Likelihood: r_i = d loglik / d eta_i = y_i - n_i * p_i.
    resid_sub = np.zeros(n_sub)
    for i in range(n_rows):
        n = total[i]
        if n == 0.0:
            continue
        y = events[i]
        s = int(study_idx[i])
        d = int(sub_idx[i])
        eta = mu + alpha[d]
        j_tau = d if by_subgroup else 0
        if random_study:
            eta += taus[j_tau] * x[i_w + s]
        for k in range(n_mod):
            eta += design[i * n_mod + k] * x[i_beta + k]
        c = -1
        if n_cells > 0:
            c = int(cell_idx[i])
            eta += tau_cell * x[i_v + c]
        if beta_binomial:
            p = _sigmoid(eta)
            a = p * kappa
            b = kappa - a
            da = 0.0
            db = 0.0
            dk = 0.0
            for k in range(int(y)):
                lp += math.log(a + k)
                da += 1.0 / (a + k)
            for k in range(int(n - y)):
                lp += math.log(b + k)
                db += 1.0 / (b + k)
            for k in range(int(n)):
                lp -= math.log(kappa + k)
                dk -= 1.0 / (kappa + k)
            lp += log_binom[i]
            r = kappa * p * (1.0 - p) * (da - db)
            grad[i_phi] += -2.0 * kappa * (da * p + db * (1.0 - p) + dk)
        else:
            lp += y * _log_sigmoid(eta) + (n - y) * _log_sigmoid(-eta) + log_binom[i]
            r = y - n * _sigmoid(eta)
        grad[0] += r
        resid_sub[d] += r
        for k in range(n_mod):
            grad[i_beta + k] += design[i * n_mod + k] * r
        if random_study:
            grad[i_w + s] += taus[j_tau] * r
            grad[i_tau + j_tau] += taus[j_tau] * x[i_w + s] * r
        if n_cells > 0:
            grad[i_v + c] += tau_cell * r
            grad[i_tc] += tau_cell * x[i_v + c] * r

    if sub_mode == SUBGROUP_RANDOM:
        for d in range(n_sub):
            grad[i_z + d] += sig * resid_sub[d]
            grad[i_sig] += sig * x[i_z + d] * resid_sub[d]
    elif sub_mode == SUBGROUP_FIXED:
        s_alpha = buf[H_ALPHA_SIGMA]
        for k in range(n_sub - 1):
            acc = 0.0
            for d in range(n_sub):
                acc += basis[d * (n_sub - 1) + k] * resid_sub[d]
            grad[i_z + k] += s_alpha * acc
    return lp


@numba.njit(cache=True)
def expand(x, buf, out):
    """Constrained and derived quantities stored per draw (:func:`.compiled.expanded_layout`)."""
    n_studies = int(buf[H_STUDIES])
    n_sub = int(buf[H_SUBGROUPS])
    n_rows = int(buf[H_ROWS])
    study_mode = int(buf[H_STUDY_MODE])
    sub_mode = int(buf[H_SUBGROUP_MODE])
    out[0] = x[0]
    pos = 1
    k = 1
    if study_mode == STUDY_RANDOM:
        tau = math.exp(x[pos])
        out[k] = tau
        k += 1
        for s in range(n_studies):
            out[k + s] = x[pos + 1 + s]
            out[k + n_studies + s] = tau * x[pos + 1 + s]
        k += 2 * n_studies
        pos += 1 + n_studies
    elif study_mode == STUDY_BY_SUBGROUP:  # tau[subgroup], w[study]; no per-study u
        for d in range(n_sub):
            out[k + d] = math.exp(x[pos + d])
        k += n_sub
        pos += n_sub
        for s in range(n_studies):
            out[k + s] = x[pos + s]
        k += n_studies
        pos += n_studies
    if int(buf[H_LIKELIHOOD]) == 1:
        out[k] = math.exp(x[pos])
        k += 1
        pos += 1
    if sub_mode == SUBGROUP_RANDOM:
        sig = math.exp(x[pos])
        out[k] = sig
        k += 1
        for d in range(n_sub):
            out[k + d] = x[pos + 1 + d]
            out[k + n_sub + d] = sig * x[pos + 1 + d]
        k += 2 * n_sub
    elif sub_mode == SUBGROUP_FIXED:
        o = HEADER + 5 * n_rows
        s_alpha = buf[H_ALPHA_SIGMA]
        for d in range(n_sub):
            acc = 0.0
            for j in range(n_sub - 1):
                acc += buf[o + d * (n_sub - 1) + j] * x[pos + j]
            out[k + d] = s_alpha * acc
        k += n_sub
    n_mod = int(buf[H_MODERATORS])
    n_cells = int(buf[H_CELLS])
    # beta, then (with cell effects) log tau_cell and v[cell], end the vector x
    i_beta = x.shape[0] - n_mod - (1 + n_cells if n_cells > 0 else 0)
    for j in range(n_mod):
        out[k + j] = x[i_beta + j]
    k += n_mod
    if n_cells > 0:  # tau_cell, v[cell], u_cell[cell] = tau_cell * v
        i_tc = i_beta + n_mod
        tau_cell = math.exp(x[i_tc])
        out[k] = tau_cell
        k += 1
        for c in range(n_cells):
            out[k + c] = x[i_tc + 1 + c]
            out[k + n_cells + c] = tau_cell * x[i_tc + 1 + c]
        k += 2 * n_cells
    return k


_LOGP_SIG = types.int64(types.uint64, types.CPointer(types.double),
                        types.CPointer(types.double), types.CPointer(types.double),
                        types.voidptr)
_EXPAND_SIG = types.int64(types.uint64, types.uint64, types.CPointer(types.double),
                          types.CPointer(types.double), types.voidptr)


@numba.cfunc(_LOGP_SIG, cache=True)
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


@numba.cfunc(_EXPAND_SIG, cache=True)
def expand_cfunc(dim, n_expanded, x_, out_, user_data_):
    head = numba.carray(user_data_, (HEADER,), np.float64)
    if dim != int(head[H_NDIM]) or n_expanded != int(head[H_NEXPANDED]):
        return -1
    buf = numba.carray(user_data_, (int(head[H_LENGTH]),), np.float64)
    x = numba.carray(x_, (dim,))
    out = numba.carray(out_, (n_expanded,))
    expand(x, buf, out)
    return 0
