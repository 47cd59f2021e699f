r"""Binomial-normal generalised linear mixed model by maximum likelihood.

Model (Stijnen, Hamza & Ozdemir 2010, model for one proportion; metafor
``rma.glmm(measure="PLO")``, which calls ``lme4::glmer(nAGQ=7)``):

.. math::

    x_i \mid u_i \sim \operatorname{Binomial}\bigl(n_i, \operatorname{expit}(\mu + u_i)\bigr),
    \qquad u_i \sim N(0, \tau^2).

The marginal likelihood of study :math:`i`, :math:`L_i = \int f_i(u)\,du` with
:math:`f_i(u) = \binom{n_i}{x_i} e^{x_i(\mu+u)}(1+e^{\mu+u})^{-n_i}\,\phi(u; 0, \tau^2)`,
is computed by adaptive Gauss-Hermite quadrature (Liu & Pierce 1994): with the mode
:math:`\hat u_i` of :math:`\log f_i` (Newton's method; the function is strictly
concave), the curvature scale :math:`\sigma_i = \{n_i \hat p_i(1-\hat p_i) + 1/\tau^2\}^{-1/2}`
and the :math:`m`-point Gauss-Hermite rule :math:`(z_j, w_j)` for weight :math:`e^{-z^2}`,

.. math:: L_i \approx \sqrt2\,\sigma_i \sum_j w_j e^{z_j^2} f_i(\hat u_i + \sqrt2\,\sigma_i z_j).

:math:`m = 1` is the Laplace approximation; the default :math:`m = 7` is lme4's
``nAGQ`` in metafor. The log-likelihood :math:`\ell(\mu, \tau) = \sum_i \log L_i` is
maximised by nested Brent searches (over :math:`\mu` for fixed :math:`\tau`, then over
:math:`\tau \in [0, \tau_{max}]`, with :math:`\tau = 0` checked explicitly). The SE of
:math:`\hat\mu` is the square root of the :math:`\mu\mu` element of the inverse observed
information, the central-difference Hessian of :math:`-\ell` in :math:`(\mu, \tau)`
(or in :math:`\mu` alone when :math:`\hat\tau = 0`); the Wald CI is
:math:`\hat\mu \pm z_{1-\alpha/2}\operatorname{SE}` and the prediction interval
:math:`\hat\mu \pm z_{1-\alpha/2}\sqrt{\operatorname{SE}^2 + \hat\tau^2}`; both are
back-transformed with :math:`\operatorname{expit}`.

References
----------
Stijnen T, Hamza TH, Ozdemir P. Random effects meta-analysis of event outcome in
the framework of the generalized linear mixed model with applications in sparse
data. Stat Med 2010;29:3046-67.
Liu Q, Pierce DA. A note on Gauss-Hermite quadrature. Biometrika 1994;81:624-9.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats
from scipy.special import expit, gammaln, logsumexp

from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist.inputs import Counts, check_level, counts_from
from bayes_poem.frequentist.results import GlmmResult
from bayes_poem.table import StudyTable

__all__ = ["glmm_loglik", "glmm_proportions"]

TAU_ZERO = 1e-8  # tau below this is treated as exactly 0


def _log_joint(u: np.ndarray, mu: float, tau: float, x: np.ndarray, n: np.ndarray
               ) -> np.ndarray:
    eta = mu + u
    return (x * eta - n * np.logaddexp(0.0, eta) - 0.5 * (u / tau) ** 2
            - 0.5 * np.log(2 * np.pi * tau**2))


def _modes(mu: float, tau: float, x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Mode of log f_i(u) per study, by damped Newton (log f_i is strictly concave)."""
    u = np.zeros_like(x)
    prec = 1.0 / tau**2
    for _ in range(200):
        p = expit(mu + u)
        grad = x - n * p - u * prec
        hess = n * p * (1 - p) + prec
        step = grad / hess
        old = _log_joint(u, mu, tau, x, n)
        for _ in range(60):  # backtrack where the step does not increase log f
            new = _log_joint(u + step, mu, tau, x, n)
            worse = new < old - 1e-12 * np.abs(old)
            if not worse.any():
                break
            step = np.where(worse, step / 2, step)
        u = u + step
        if np.max(np.abs(step)) < 1e-13 * max(1.0, float(np.max(np.abs(u)))):
            break
    return u


def glmm_loglik(mu: float, tau: float, events: ArrayLike, totals: ArrayLike,
                n_nodes: int = 7) -> float:
    """Log-likelihood :math:`\\ell(\\mu, \\tau)` by adaptive Gauss-Hermite quadrature."""
    x = np.asarray(events, dtype=float)
    n = np.asarray(totals, dtype=float)
    logc = gammaln(n + 1) - gammaln(x + 1) - gammaln(n - x + 1)
    if tau < TAU_ZERO:
        return float(np.sum(logc + x * mu - n * np.logaddexp(0.0, mu)))
    z, w = np.polynomial.hermite.hermgauss(n_nodes)
    mode = _modes(mu, tau, x, n)
    p = expit(mu + mode)
    sigma = 1.0 / np.sqrt(n * p * (1 - p) + 1.0 / tau**2)
    u = mode[:, None] + np.sqrt(2.0) * sigma[:, None] * z[None, :]
    log_f = _log_joint(u, mu, tau, x[:, None], n[:, None])
    terms = logsumexp(np.log(w)[None, :] + z[None, :] ** 2 + log_f, axis=1)
    return float(np.sum(logc + np.log(np.sqrt(2.0) * sigma) + terms))


def _profile_mu(tau: float, x: np.ndarray, n: np.ndarray, m: int, start: float
                ) -> tuple[float, float]:
    """max over mu of l(mu, tau): (mu_hat, l)."""
    res = optimize.minimize_scalar(lambda mu: -glmm_loglik(mu, tau, x, n, m),
                                   bracket=(start - 0.5, start + 0.5), method="brent",
                                   options={"xtol": 1e-12, "maxiter": 500})
    return float(res.x), float(-res.fun)


def _hessian(f, point: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Central-difference Hessian of f at point."""
    dim = point.size
    hess = np.empty((dim, dim))
    f0 = f(point)
    for i in range(dim):
        ei = np.zeros(dim)
        ei[i] = steps[i]
        hess[i, i] = (f(point + ei) - 2 * f0 + f(point - ei)) / steps[i] ** 2
        for j in range(i):
            ej = np.zeros(dim)
            ej[j] = steps[j]
            hess[i, j] = hess[j, i] = (
                f(point + ei + ej) - f(point + ei - ej) - f(point - ei + ej) + f(point - ei - ej)
            ) / (4 * steps[i] * steps[j])
    return hess


def _fit(counts: Counts, m: int, tau_max: float) -> tuple[float, float, float, float, bool, str]:
    """(mu, se, tau2, loglik, converged, note)."""
    x, n = counts.events, counts.totals
    if x.sum() == 0 or x.sum() == n.sum():
        which = "no events" if x.sum() == 0 else "only events"
        raise DataError(
            f"{counts.source}: {which} in every study; the maximum-likelihood estimate of "
            "the pooled logit is infinite. Use pool_proportions() (normal-normal model with "
            "a continuity correction) for a stated estimate"
        )
    start = float(np.log((x.sum() + 0.5) / (n.sum() - x.sum() + 0.5)))
    if counts.k == 1:
        mu = float(np.log(x[0] / (n[0] - x[0])))
        se = float(np.sqrt(1 / x[0] + 1 / (n[0] - x[0])))
        return (mu, se, np.nan, glmm_loglik(mu, 0.0, x, n), True,
                "single study: tau^2 not estimable; fixed-effect (tau = 0) logistic result")
    outer = optimize.minimize_scalar(lambda t: -_profile_mu(t, x, n, m, start)[1],
                                     bounds=(0.0, tau_max), method="bounded",
                                     options={"xatol": 1e-10, "maxiter": 500})
    tau = float(outer.x)
    mu, ll = _profile_mu(tau, x, n, m, start)
    mu0, ll0 = _profile_mu(0.0, x, n, m, start)
    note = ""
    if ll0 >= ll - 1e-12 or tau < 1e-5:
        tau, mu, ll = 0.0, mu0, ll0
    converged = bool(outer.success)
    if tau_max - tau < 1e-6:
        converged = False
        note = f"tau reached the search bound tau_max = {tau_max:g}; the fit is unreliable"
    if tau == 0.0:
        p = expit(mu)
        se = float(1 / np.sqrt(np.sum(n * p * (1 - p))))
        note = note or "tau^2 estimate on the boundary (0); SE from the fixed-effect information"
        return mu, se, 0.0, ll, converged, note
    steps = np.array([1e-4, 1e-4 * max(1.0, tau)])
    hess = _hessian(lambda th: -glmm_loglik(th[0], th[1], x, n, m), np.array([mu, tau]), steps)
    try:
        cov = np.linalg.inv(hess)
        var = cov[0, 0]
    except np.linalg.LinAlgError:
        var = np.nan
    if not (np.isfinite(var) and var > 0):
        var = np.nan
        note = "; ".join(filter(None, [note, "observed information not positive definite"]))
    return mu, float(np.sqrt(var)), tau**2, ll, converged, note


def glmm_proportions(
    data: StudyTable | ArrayLike,
    totals: ArrayLike | None = None,
    *,
    n_nodes: int = 7,
    level: float = 0.95,
    outcome: str | None = None,
    subgroup: str | None = None,
    labels: Sequence[object] | None = None,
    tau_max: float = 20.0,
) -> GlmmResult:
    """Binomial-normal GLMM of single proportions by ML (see module docstring).

    Parameters
    ----------
    data, totals, outcome, subgroup, labels
        As for :func:`~bayes_poem.frequentist.meta.pool_proportions`.
    n_nodes : int
        Adaptive Gauss-Hermite nodes per study (7 = metafor/lme4 default; 1 = Laplace).
    level : float
        Confidence level.
    tau_max : float
        Upper end of the search for tau (logit scale).

    Raises
    ------
    DataError
        No events (or only events) in every study: the ML estimate is infinite.
    """
    level = check_level(level)
    if int(n_nodes) != n_nodes or n_nodes < 1:
        raise SpecError(f"n_nodes: {n_nodes!r} must be a positive integer")
    if not tau_max > 0:
        raise SpecError(f"tau_max: {tau_max!r} must be > 0")
    counts = counts_from(data, totals, labels=labels, outcome=outcome, subgroup=subgroup)
    mu, se, tau2, ll, converged, note = _fit(counts, int(n_nodes), float(tau_max))
    crit = stats.norm.ppf(0.5 + level / 2)
    ci = (mu - crit * se, mu + crit * se)
    if np.isnan(tau2):
        pi = (np.nan, np.nan)
    else:
        half = crit * np.sqrt(se**2 + tau2)
        pi = (mu - half, mu + half)
    back = expit(np.array([mu, *ci, *pi]))
    if subgroup is not None:
        label = subgroup
    elif isinstance(data, StudyTable) and len(data.subgroups) == 1:
        label = data.subgroups[0]
    else:
        label = "all"
    return GlmmResult(label, counts.k, mu, se, *ci, *pi, tau2, *(float(b) for b in back), ll,
                      int(n_nodes), converged, counts.labels, level, note)
