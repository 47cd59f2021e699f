r"""The log-likelihood of each study from posterior draws, its random effects integrated.

The quantity :mod:`bayes_poem.loo`'s PSIS-LOO and the ``log_likelihood`` group of
``posterior.nc`` (:mod:`bayes_poem.loglik`) use: per draw and study, the sum
over the study's rows of the row log-likelihood, with (default) the study's own
effect :math:`u_s = \tau w_s` integrated out,

.. math::

    \log p(y_s \mid \mu, \alpha, \beta, \tau) = \log \int \prod_{i: s_i = s}
        p(y_i \mid \mu + \alpha_{d_i} + x_i^\top\beta + \tau x)\, \phi(x)\, dx ,

by adaptive Gauss-Hermite quadrature per draw (:data:`AGH_NODES` nodes centred
at the mode of the integrand), and with cell effects its cells too, by nested
quadrature (:data:`CELL_NODES` inner nodes; see :mod:`bayes_poem.loo`).

**Cost linear in rows x draws.** Every sum over a study's rows is a sparse
(rows -> studies) product or, in :func:`_integrated`, a loop over the study's
rows sorted by study (:mod:`bayes_poem.study_loglik_kernel`), never a dense
``rows x studies`` matrix, and draws are processed in blocks of at most
:data:`_CHUNK_VALUES` (:data:`_NODE_BLOCK` in :func:`_integrated`) array
elements, so time and memory grow as rows x draws x nodes (a dense membership
matrix made a 10,000-study fit's log-likelihood quadratic in the studies: 800 MB
for the matrix alone and rows x studies products per Newton step). On the
2,000-study single-group benchmark (4,000 draws, 20 nodes) the compiled
:func:`_integrated` takes 1.3 s of CPU where the vectorised numpy code it
replaced took 6.2 s (``scipy.special.log_expit`` twice per row and node was most
of it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import arviz as az
import numpy as np
import xarray as xr
from scipy import sparse
from scipy.special import expit

from bayes_poem.dims import SAMPLE_DIMS, STUDY
from bayes_poem.predictive import (
    BETA_BINOMIAL,
    RowDraws,
    log_binomial_coefficient,
    row_draws,
    row_log_likelihood,
)
from bayes_poem.study_loglik_kernel import node_abs_eta, node_log_integrand, study_modes

if TYPE_CHECKING:
    from bayes_poem.results import FitResult

AGH_NODES = 20
CELL_NODES = 16
_NEWTON_STEPS = 50
_CHUNK_VALUES = 4_000_000  # array elements per block of draws in the quadratures
_NODE_BLOCK = 262_144  # values (rows x nodes x draws) per block of _integrated's nodes


# ---------------------------------------------------------------------- log-likelihood
def _active_studies(draws: RowDraws) -> list[tuple[int, str]]:
    """(index, label) of the studies with at least one row with data."""
    has_data = np.zeros(len(draws.studies), dtype=bool)
    has_data[draws.study_idx[draws.total > 0]] = True
    return [(s, study) for s, study in enumerate(draws.studies) if has_data[s]]


def _row_study(draws: RowDraws, studies: list[tuple[int, str]]) -> np.ndarray:
    """Each row's column among ``studies``; -1 for a row without data (or study)."""
    column = np.full(len(draws.studies), -1)
    column[[s for s, _ in studies]] = np.arange(len(studies))
    return np.where(draws.total > 0, column[draws.study_idx], -1)


def _rows_of(member: np.ndarray) -> np.ndarray:
    """The study column of each row of a 0/1 ``member`` matrix; -1 for a row of none."""
    member = np.asarray(member)
    return np.where(member.any(axis=1), np.argmax(member, axis=1), -1)


def _summer(row_of: np.ndarray, n_groups: int) -> sparse.csr_matrix:
    """Sparse ``(groups, rows)`` 0/1 matrix: row ``i`` counts in group ``row_of[i]``."""
    rows = np.arange(row_of.size)
    return sparse.csr_matrix((np.ones(row_of.size), (row_of, rows)),
                             shape=(n_groups, row_of.size))


def _sum_last(values: np.ndarray, summer: sparse.csr_matrix) -> np.ndarray:
    """Sum the last axis (rows) of ``values`` into groups: ``values @ summer.T``."""
    lead = values.shape[:-1]
    flat = values.reshape(-1, values.shape[-1])
    return np.asarray(summer @ flat.T).T.reshape(*lead, summer.shape[0])


def _sum_middle(values: np.ndarray, summer: sparse.csr_matrix) -> np.ndarray:
    """Sum axis 1 (rows) of a ``(draws, rows, ...)`` array into groups."""
    moved = np.moveaxis(values, 1, -1)
    return np.moveaxis(_sum_last(moved, summer), -1, 1)


def _logsumexp(values: np.ndarray) -> np.ndarray:
    """``log(sum(exp(values)))`` over the last axis (the nodes; every value finite):
    scipy's ``logsumexp`` without its checks for infinities and signs, about twice
    as fast on these arrays."""
    top = values.max(axis=-1, keepdims=True)
    return (top + np.log(np.exp(values - top).sum(axis=-1, keepdims=True)))[..., 0]


def _binomial_kernel(eta: np.ndarray, y: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``y log expit(eta) + (n - y) log expit(-eta)`` as ``y eta - n softplus(eta)``,
    i.e. ``-m |eta| - n log1p(exp(-|eta|))`` with ``m = n - y`` where ``eta >= 0``,
    else ``y`` (no cancellation): numpy's vectorised ``exp`` and ``log1p`` (about
    4 ns a value with the arithmetic) where ``scipy.special.log_expit`` takes 14."""
    size = np.abs(eta)
    out = -n * np.log1p(np.exp(-size))
    out -= np.where(eta >= 0.0, n - y, y) * size
    return out


def _blocks(n_draws: int, per_draw: int):
    """Slices of the draws, each block at most :data:`_CHUNK_VALUES` elements."""
    chunk = max(1, _CHUNK_VALUES // max(1, per_draw))
    return (slice(start, start + chunk) for start in range(0, n_draws, chunk))


def integrated_study_log_likelihood(base: np.ndarray, tau: np.ndarray, events: np.ndarray,
                                    total: np.ndarray, member: np.ndarray,
                                    nodes: int = AGH_NODES) -> np.ndarray:
    r"""Per-study binomial log-likelihood with the study effect integrated out.

    Parameters
    ----------
    base : ndarray (draws, rows)
        ``mu + alpha[d_i] + x_i' beta`` per draw (everything but the study effect).
    tau : ndarray (draws,) or (draws, rows)
        The SD of the study effect, one per draw or one per draw and row
        (``tau[d_i]`` with ``study_heterogeneity = "by_subgroup"``: a study's
        rows share its standardised effect ``x``, scaled by their own ``tau``).
    events, total : ndarray (rows,)
    member : ndarray (rows, studies)
        1 where a row belongs to a study.
    nodes : int
        Adaptive Gauss-Hermite nodes.

    Returns
    -------
    ndarray (draws, studies)
        :math:`\log \int \prod_i \mathrm{Bin}(y_i \mid n_i, \operatorname{logit}^{-1}
        (\text{base}_i + \tau x))\,\phi(x)\,dx`, the integrand's log
        :math:`g(x)` maximised by Newton's method (it is concave), then
        :math:`\log\hat\sigma - \tfrac12\log 2\pi + \log\sum_k w_k
        \exp\{g(\hat x + \hat\sigma t_k) + t_k^2/2\}` with
        :math:`\hat\sigma = (-g''(\hat x))^{-1/2}`.
    """
    return _integrated(base, tau, events, total, _rows_of(member), member.shape[1], nodes)


def _integrated(base: np.ndarray, tau: np.ndarray, events: np.ndarray, total: np.ndarray,
                row_of: np.ndarray, n_studies: int, nodes: int = AGH_NODES) -> np.ndarray:
    """:func:`integrated_study_log_likelihood` with each row's study column ``row_of``
    (-1: no study): rows sorted by study, the modes per draw and study, then the
    nodes in blocks of draws (:mod:`bayes_poem.study_loglik_kernel`)."""
    keep = np.flatnonzero(row_of >= 0)
    order = keep[np.argsort(row_of[keep], kind="stable")]
    study = row_of[order].astype(np.int64)
    tau = np.ascontiguousarray(tau.reshape(-1, 1) if tau.ndim == 1 else tau[:, order],
                               dtype=float)
    base = np.ascontiguousarray(base[:, order], dtype=float)
    y = events[order].astype(float)
    n = total[order].astype(float)
    start = np.zeros(n_studies + 1, dtype=np.int64)
    np.cumsum(np.bincount(study, minlength=n_studies), out=start[1:])
    log_c = _summer(study, n_studies) @ log_binomial_coefficient(n, y)  # (studies,)
    t, w = np.polynomial.hermite_e.hermegauss(nodes)
    shift = 0.5 * t**2 + np.log(w)
    n_draws = base.shape[0]
    x, info = np.empty((n_draws, n_studies)), np.empty((n_draws, n_studies))
    study_modes(base, tau, y, n, start, _NEWTON_STEPS, x, info)
    sigma = 1.0 / np.sqrt(info)
    chunk = max(1, _NODE_BLOCK // max(1, y.size * nodes, n_studies * nodes))
    log1p_q = np.empty((min(chunk, n_draws), y.size, nodes))
    g = np.empty((min(chunk, n_draws), n_studies, nodes))
    top = np.empty((min(chunk, n_draws), n_studies))
    out = np.empty((n_draws, n_studies))
    for d0 in range(0, n_draws, chunk):
        m = min(chunk, n_draws - d0)
        q_, g_, top_ = log1p_q[:m], g[:m], top[:m]
        node_abs_eta(base, tau, x, sigma, study, t, d0, q_)
        np.log1p(np.exp(q_, out=q_), out=q_)
        node_log_integrand(base, tau, x, sigma, y, n, start, t, shift, d0, q_, g_, top_)
        out[d0:d0 + m] = top_ + np.log(np.exp(g_, out=g_).sum(axis=-1))
    return out + np.log(sigma) - 0.5 * np.log(2.0 * np.pi) + log_c


def integrated_study_cell_log_likelihood(base: np.ndarray, tau: np.ndarray,
                                         tau_cell: np.ndarray, events: np.ndarray,
                                         total: np.ndarray, member: np.ndarray,
                                         cell_idx: np.ndarray, nodes: int = AGH_NODES,
                                         cell_nodes: int = CELL_NODES) -> np.ndarray:
    r"""Per-study binomial log-likelihood with the study effect and its cells integrated out.

    Parameters
    ----------
    base : ndarray (draws, rows)
        ``mu + alpha[d_i] + x_i' beta`` per draw (no random effect).
    tau : ndarray (draws,) or (draws, rows)
        SD of the study effect (per row with ``study_heterogeneity = "by_subgroup"``).
    tau_cell : ndarray (draws,)
        SD of the cell effects.
    events, total : ndarray (rows,)
    member : ndarray (rows, studies)
        1 where a row with data belongs to a study (rows of no column drop out).
    cell_idx : ndarray (rows,)
        Each row's cell (a cell lies within one study).
    nodes, cell_nodes : int
        Adaptive Gauss-Hermite nodes of the outer (study) and inner (cell) rules.

    Returns
    -------
    ndarray (draws, studies)
        :math:`\log \int \prod_{c \in s} [\int \prod_{i \in c} \mathrm{Bin}(y_i \mid n_i,
        \operatorname{logit}^{-1}(	ext{base}_i + 	au_i x + 	au_{	ext{cell}} v))
        \phi(v)\,dv]\,\phi(x)\,dx`. The joint mode of ``(x, v)`` per study is found
        by Newton's method (the log integrand is concave; the Hessian is an
        arrowhead, solved through its Schur complement); the outer rule is centred
        there with :math:`\hat\sigma_x = S^{-1/2}`, ``S`` the Schur complement
        (the Laplace curvature of the marginal in ``x``); at each outer node
        every cell's inner rule is centred at the conditional mode of ``v_c``
        (a few 1-d Newton steps) with its conditional curvature.
    """
    return _integrated_cells(base, tau, tau_cell, events, total, _rows_of(member),
                             member.shape[1], cell_idx, nodes, cell_nodes)


def _integrated_cells(base: np.ndarray, tau: np.ndarray, tau_cell: np.ndarray,
                      events: np.ndarray, total: np.ndarray, row_of: np.ndarray,
                      n_studies: int, cell_idx: np.ndarray, nodes: int = AGH_NODES,
                      cell_nodes: int = CELL_NODES) -> np.ndarray:
    """:func:`integrated_study_cell_log_likelihood` with each row's study column
    ``row_of`` (-1: no study), sparse sums over rows and cells."""
    active = row_of >= 0
    base, row_study = base[:, active], row_of[active]
    tau = tau.reshape(-1, 1) if tau.ndim == 1 else tau[:, active]
    y = events[active].astype(float)
    n = total[active].astype(float)
    _, cell_of = np.unique(cell_idx[active], return_inverse=True)
    n_cells = int(cell_of.max()) + 1 if cell_of.size else 0
    member = _summer(row_study, n_studies)  # (studies, rows)
    cells = _summer(cell_of, n_cells)  # (cells, rows)
    study_of_cell = np.zeros(n_cells, dtype=int)
    study_of_cell[cell_of] = row_study  # a cell lies within one study
    cell_study = _summer(study_of_cell, n_studies)  # (studies, cells)
    tc = np.asarray(tau_cell, dtype=float).reshape(-1, 1)
    log_c = member @ log_binomial_coefficient(n, y)

    def curvature(x: np.ndarray, v: np.ndarray, tau_: np.ndarray, tc_: np.ndarray,
                  base_: np.ndarray) -> tuple[np.ndarray, ...]:
        p = expit(base_ + tau_ * x[:, row_study] + tc_ * v[:, cell_of])
        r, w = y - n * p, n * p * (1.0 - p)
        g_x = _sum_last(tau_ * r, member) - x
        g_v = tc_ * _sum_last(r, cells) - v
        a = _sum_last(tau_**2 * w, member) + 1.0
        b = tc_**2 * _sum_last(w, cells) + 1.0
        c = tc_ * _sum_last(tau_ * w, cells)
        schur = a - _sum_last(c**2 / b, cell_study)
        return g_x, g_v, b, c, schur

    t_out, w_out = np.polynomial.hermite_e.hermegauss(nodes)
    t_in, w_in = np.polynomial.hermite_e.hermegauss(cell_nodes)
    out = np.empty((base.shape[0], n_studies))
    for sl in _blocks(base.shape[0], y.size * nodes * cell_nodes):
        base_, tc_ = base[sl], tc[sl]
        tau_ = tau[sl]
        x = np.zeros((base_.shape[0], n_studies))
        v = np.zeros((base_.shape[0], n_cells))
        for _ in range(_NEWTON_STEPS):  # joint mode of (x, v)
            g_x, g_v, b, c, schur = curvature(x, v, tau_, tc_, base_)
            dx = np.clip((g_x - _sum_last(c * g_v / b, cell_study)) / schur, -5.0, 5.0)
            dv = np.clip((g_v - c * dx[:, study_of_cell]) / b, -5.0, 5.0)
            x, v = x + dx, v + dv
            if max(np.max(np.abs(dx), initial=0.0), np.max(np.abs(dv), initial=0.0)) < 1e-10:
                break
        _, _, b, c, schur = curvature(x, v, tau_, tc_, base_)
        sigma_x = 1.0 / np.sqrt(schur)
        xk = x[..., None] + sigma_x[..., None] * t_out  # (draws, studies, K)
        # conditional mode of each v_c at each outer node: start from the joint
        # Gaussian approximation, then 1-d Newton steps
        vk = v[..., None] - (c / b)[..., None] * (xk - x[..., None])[:, study_of_cell, :]
        fixed = base_[..., None] + tau_[..., None] * xk[:, row_study, :]  # (draws, rows, K)
        tck = tc_[..., None]
        for _ in range(_NEWTON_STEPS):
            p = expit(fixed + tck * vk[:, cell_of, :])
            r, w = y[:, None] - n[:, None] * p, n[:, None] * p * (1.0 - p)
            h = tck**2 * _sum_middle(w, cells) + 1.0
            step = np.clip((tck * _sum_middle(r, cells) - vk) / h, -5.0, 5.0)
            vk = vk + step
            if np.max(np.abs(step), initial=0.0) < 1e-10:
                break
        p = expit(fixed + tck * vk[:, cell_of, :])
        h = tck**2 * _sum_middle(n[:, None] * p * (1.0 - p), cells) + 1.0
        sigma_v = 1.0 / np.sqrt(h)  # (draws, cells, K)
        vkj = vk[..., None] + sigma_v[..., None] * t_in  # (draws, cells, K, J)
        eta = fixed[..., None] + tck[..., None] * vkj[:, cell_of]  # (draws, rows, K, J)
        ll_rows = _binomial_kernel(eta, y[:, None, None], n[:, None, None])
        g_in = _sum_middle(ll_rows, cells) - 0.5 * vkj**2
        log_cell = (np.log(sigma_v) - 0.5 * np.log(2.0 * np.pi)
                    + _logsumexp(g_in + 0.5 * t_in**2 + np.log(w_in)))
        g_out = _sum_middle(log_cell, cell_study) - 0.5 * xk**2
        out[sl] = (np.log(sigma_x) - 0.5 * np.log(2.0 * np.pi)
                   + _logsumexp(g_out + 0.5 * t_out**2 + np.log(w_out)))
    return out + log_c[None, :]


def _integrates(fit: FitResult, draws: RowDraws, integrate: bool) -> bool:
    return (integrate and "tau" in fit.posterior and "w" in fit.posterior
            and draws.likelihood != BETA_BINOMIAL)


def study_log_likelihood(fit: FitResult, *, integrate: bool = True) -> xr.DataArray:
    """Log-likelihood per study (rows summed), dims (chain, draw, study).

    With ``integrate`` (default) and random study effects, the study's own effect
    is integrated out (:func:`integrated_study_log_likelihood`); otherwise it is
    conditional on the drawn ``u``. Studies whose rows all have zeroed counts
    (``spec.zeroed_rows``) are left out.
    """
    draws = row_draws(fit)
    studies = _active_studies(draws)
    row_of = _row_study(draws, studies)
    # one tau per draw where it is every row's (a finite draws.tau: not by_subgroup)
    tau = draws.tau if np.isfinite(draws.tau).all() else draws.row_tau()
    if _integrates(fit, draws, integrate) and draws.tau_cell is not None:
        values = _integrated_cells(
            draws.flat(draws.base), draws.flat(tau), draws.flat(draws.tau_cell),
            draws.events, draws.total, row_of, len(studies), draws.cell_idx)
        values = values.reshape(draws.base.shape[:2] + (len(studies),))
    elif _integrates(fit, draws, integrate):
        values = _integrated(draws.flat(draws.base), draws.flat(tau),
                             draws.events, draws.total, row_of, len(studies))
        values = values.reshape(draws.base.shape[:2] + (len(studies),))
    else:
        keep = row_of >= 0
        values = _sum_last(row_log_likelihood(draws)[..., keep],
                           _summer(row_of[keep], len(studies)))
    post = fit.posterior
    return xr.DataArray(values, dims=(*SAMPLE_DIMS, STUDY),
                        coords={"chain": post["chain"].values, "draw": post["draw"].values,
                                STUDY: [label for _, label in studies]})


def loo_idata(fit: FitResult, *, integrate: bool = True) -> az.InferenceData:
    """The fit's posterior with a ``log_likelihood`` group (variable ``y``, dim ``study``)."""
    loglik = xr.Dataset({"y": study_log_likelihood(fit, integrate=integrate)})
    return az.InferenceData(posterior=fit.posterior, log_likelihood=loglik)
