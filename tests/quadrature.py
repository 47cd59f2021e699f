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
from scipy.interpolate import CubicSpline
from scipy.special import expit, gammaln, log_expit
from scipy.stats import halfnorm, norm


def log_marginal_likelihood(events, total, mu, tau, n_nodes=30, offset=None):
    """log prod_s int Binomial(y_s | n_s, expit(mu + o_s + tau z)) phi(z) dz, on grids.

    ``mu`` and ``tau`` are broadcast grids (any number of dims); ``offset`` (one
    value per study, default 0) is added to ``mu`` study by study, e.g. a
    moderator term ``beta1 * x_s``; it may itself be a grid with a leading study axis.
    """
    grid_ndim = max(np.ndim(mu), np.ndim(tau))
    lead = (slice(None),) + (None,) * grid_ndim
    y = np.asarray(events, float)[lead]
    n = np.asarray(total, float)[lead]
    mu = np.asarray(mu, float)[None]
    tau = np.asarray(tau, float)[None]
    if offset is not None:
        offset = np.asarray(offset, float)
        mu = mu + (offset[lead] if offset.ndim == 1 else offset)

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


@dataclass(frozen=True)
class ExactRegressionPosterior:
    """Posterior of (beta0, beta1, tau) of a one-moderator model on a 3-d grid."""

    grids: dict  # name -> 1-d grid: "beta0", "beta1", "log_tau"
    density: np.ndarray  # normalised over (beta0, beta1, log tau)

    def _marginal(self, name):
        order = ("beta0", "beta1", "log_tau")
        key = "log_tau" if name == "tau" else name
        axis = order.index(key)
        marg = self.density
        for other in reversed(range(3)):
            if other != axis:
                marg = np.trapezoid(marg, self.grids[order[other]], axis=other)
        grid = self.grids[key]
        return grid, marg / np.trapezoid(marg, grid)

    def mean(self, name):
        grid, marg = self._marginal(name)
        values = np.exp(grid) if name == "tau" else grid
        return float(np.trapezoid(values * marg, grid))

    def quantile(self, name, q):
        """From a cubic spline of the marginal density, integrated exactly: the grid
        can stay coarse in three dimensions without a piecewise-linear CDF's bias."""
        grid, marg = self._marginal(name)
        spline = CubicSpline(grid, marg)
        fine = np.linspace(grid[0], grid[-1], 20 * grid.size)
        cdf = np.array([spline.integrate(grid[0], b) for b in fine])
        cdf /= cdf[-1]
        value = float(np.interp(q, cdf, fine))
        return float(np.exp(value)) if name == "tau" else value


def exact_regression_posterior(events, total, x, *, beta0_prior=(0.0, 1.5),
                               beta1_prior=(0.0, 1.0), tau_sigma=0.5, n_grid=(64, 64, 64),
                               n_coarse=41, n_nodes=20) -> ExactRegressionPosterior:
    """Grid posterior of logit p_s = beta0 + beta1 x_s + tau z_s, study effects integrated.

    beta0 ~ Normal(*beta0_prior), beta1 ~ Normal(*beta1_prior), tau ~ HalfNormal(tau_sigma);
    the grid is zoomed, axis by axis, onto the box where the density is within e^-16 of
    its peak (the mass outside is below 1e-6), as :func:`exact_posterior` does.
    """
    x = np.asarray(x, float)

    def log_post(b0, b1, lt):
        out = np.empty((b0.size, b1.size, lt.size))
        for j, slope in enumerate(b1):
            m, t = np.meshgrid(b0, np.exp(lt), indexing="ij")
            lp = log_marginal_likelihood(events, total, m, t, n_nodes, offset=slope * x)
            out[:, j, :] = (lp + norm.logpdf(m, *beta0_prior) + norm.logpdf(slope, *beta1_prior)
                            + halfnorm.logpdf(t, scale=tau_sigma) + np.log(t))
        return out

    grids = {"beta0": np.linspace(-8, 8, n_coarse), "beta1": np.linspace(-6, 6, n_coarse),
             "log_tau": np.linspace(-12, 2.5, n_coarse)}
    for _ in range(2):  # zoom twice: the second pass refines the box's edges
        lp = log_post(grids["beta0"], grids["beta1"], grids["log_tau"])
        keep = lp > lp.max() - 16
        zoomed = {}
        for axis, name in enumerate(grids):
            inside = np.flatnonzero(keep.any(axis=tuple(a for a in range(3) if a != axis)))
            grid = grids[name]
            lo = grid[max(inside[0] - 1, 0)]
            hi = grid[min(inside[-1] + 1, grid.size - 1)]
            zoomed[name] = np.linspace(lo, hi, n_coarse if _ == 0 else n_grid[axis])
        grids = zoomed
    lp = log_post(grids["beta0"], grids["beta1"], grids["log_tau"])
    dens = np.exp(lp - lp.max())
    total_mass = np.trapezoid(np.trapezoid(np.trapezoid(dens, grids["log_tau"], axis=2),
                                           grids["beta1"], axis=1), grids["beta0"])
    return ExactRegressionPosterior(grids, dens / total_mass)
