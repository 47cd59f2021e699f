"""Exact posterior of the single-group binomial-logit-normal model by quadrature.

Model: y_s ~ Binomial(n_s, expit(mu + tau z_s)), z_s ~ N(0, 1),
mu ~ Normal(m0, s0), tau ~ HalfNormal(t0).

Each study's marginal likelihood integrates z_s by adaptive Gauss-Hermite
quadrature (centred at the mode of the integrand, scaled by its curvature, as
lme4's nAGQ); the posterior of (mu, log tau) is then evaluated on a fine grid
and integrated by the trapezoid rule, which is spectrally accurate for smooth
densities that vanish at the grid's edges. Used only by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, gammaln, log_expit
from scipy.stats import halfnorm, norm


def log_marginal_likelihood(events, total, mu, tau, n_nodes=30):
    """log prod_s int Binomial(y_s | n_s, expit(mu + tau z)) phi(z) dz, on broadcast grids."""
    y = np.asarray(events, float)[:, None, None]
    n = np.asarray(total, float)[:, None, None]
    mu = np.asarray(mu, float)[None]
    tau = np.asarray(tau, float)[None]

    def g(z):
        eta = mu + tau * z
        return y * log_expit(eta) + (n - y) * log_expit(-eta) - 0.5 * z * z

    # Mode of the concave integrand: g' is strictly decreasing with its root in
    # [-tau (n - y), tau y]; safeguarded Newton (bisection when a step leaves the bracket).
    shape = np.broadcast_shapes(y.shape, mu.shape, tau.shape)
    lo = np.broadcast_to(-tau * (n - y), shape).copy()
    hi = np.broadcast_to(tau * y, shape).copy()
    z = np.clip(np.zeros(shape), lo, hi)
    for _ in range(200):
        p = expit(mu + tau * z)
        grad = tau * (y - n * p) - z
        hess = -(tau**2) * n * p * (1 - p) - 1.0
        lo = np.where(grad > 0, z, lo)
        hi = np.where(grad <= 0, z, hi)
        newton = z - grad / hess
        inside = (newton > lo) & (newton < hi)
        new_z = np.where(inside, newton, 0.5 * (lo + hi))
        if np.max(np.abs(new_z - z)) < 1e-12:
            z = new_z
            break
        z = new_z
    p = expit(mu + tau * z)
    scale = 1.0 / np.sqrt(tau**2 * n * p * (1 - p) + 1.0)
    nodes, weights = np.polynomial.hermite.hermgauss(n_nodes)
    log_integral = np.full(z.shape, -np.inf)
    for x, w in zip(nodes, weights, strict=True):
        log_integral = np.logaddexp(log_integral, np.log(w) + g(z + np.sqrt(2) * scale * x) + x * x)
    log_integral += np.log(np.sqrt(2) * scale) - 0.5 * np.log(2 * np.pi)
    log_binom = gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1)
    return (log_integral + log_binom).sum(axis=0)


@dataclass(frozen=True)
class ExactPosterior:
    mu_grid: np.ndarray
    log_tau_grid: np.ndarray
    density: np.ndarray  # normalised, on the (mu, log tau) grid

    def _marginal(self, axis):
        grid = self.log_tau_grid if axis == 0 else self.mu_grid
        other = self.mu_grid if axis == 0 else self.log_tau_grid
        marg = np.trapezoid(self.density, other, axis=axis)
        return grid, marg / np.trapezoid(marg, grid)

    def mean(self, name):
        if name == "mu":
            grid, marg = self._marginal(1)
            return float(np.trapezoid(grid * marg, grid))
        grid, marg = self._marginal(0)
        return float(np.trapezoid(np.exp(grid) * marg, grid))

    def quantile(self, name, q):
        grid, marg = self._marginal(1 if name == "mu" else 0)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (marg[1:] + marg[:-1]) * np.diff(grid))])
        cdf /= cdf[-1]
        value = float(np.interp(q, cdf, grid))
        return value if name == "mu" else float(np.exp(value))


def exact_posterior(events, total, *, mu_prior=(0.0, 1.5), tau_sigma=0.5,
                    n_mu=250, n_log_tau=250, n_nodes=20) -> ExactPosterior:
    """Grid posterior over (mu, log tau), zoomed onto the region holding the mass."""

    def log_post(mu_grid, lt_grid):
        rows = []
        for chunk in np.array_split(mu_grid, max(1, mu_grid.size // 25)):
            mu, lt = np.meshgrid(chunk, lt_grid, indexing="ij")
            tau = np.exp(lt)
            lp = log_marginal_likelihood(events, total, mu, tau, n_nodes)
            rows.append(lp + norm.logpdf(mu, *mu_prior) + halfnorm.logpdf(tau, scale=tau_sigma)
                        + lt)
        return np.concatenate(rows, axis=0)

    coarse_mu = np.linspace(-10, 10, 161)
    coarse_lt = np.linspace(-14, 2.5, 111)
    lp = log_post(coarse_mu, coarse_lt)
    # Mass outside the box where the density is e^-16 of its peak is below 1e-6.
    keep = lp > lp.max() - 16
    mu_idx = np.flatnonzero(keep.any(axis=1))
    lt_idx = np.flatnonzero(keep.any(axis=0))
    mu_lo = coarse_mu[max(mu_idx[0] - 1, 0)]
    mu_hi = coarse_mu[min(mu_idx[-1] + 1, coarse_mu.size - 1)]
    lt_lo = coarse_lt[max(lt_idx[0] - 1, 0)]
    lt_hi = coarse_lt[min(lt_idx[-1] + 1, coarse_lt.size - 1)]
    mu_grid = np.linspace(mu_lo, mu_hi, n_mu)
    lt_grid = np.linspace(lt_lo, lt_hi, n_log_tau)
    lp = log_post(mu_grid, lt_grid)
    dens = np.exp(lp - lp.max())
    dens /= np.trapezoid(np.trapezoid(dens, lt_grid, axis=1), mu_grid)
    return ExactPosterior(mu_grid, lt_grid, dens)
