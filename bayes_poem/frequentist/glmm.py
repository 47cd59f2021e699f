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

**With moderators** (:func:`glmm_metareg_proportions`; metafor
``rma.glmm(measure="PLO", mods=)``, a random-intercept logistic model fitted by
``glmer(nAGQ=7)``) the linear predictor is :math:`\eta_i = x_i^\top\beta` instead of
:math:`\mu`, and study :math:`i`'s likelihood :math:`L_i(\eta_i, \tau)` is the same
one-dimensional integral with the offset :math:`\eta_i`
(:func:`glmm_study_logliks`). For fixed :math:`\tau`, :math:`\ell` is concave in
:math:`\beta` (each :math:`L_i` is log-concave in :math:`\eta_i`), so :math:`\beta` is
found by Newton's method with backtracking, the gradient :math:`X^\top\partial_\eta\ell`
and Hessian :math:`X^\top\operatorname{diag}(\partial^2_\eta\ell)X` from per-study central
differences in :math:`\eta_i`; :math:`\tau` by a bounded Brent search on that profile
(:math:`\tau = 0` checked explicitly). The covariance of :math:`\hat\beta` is the
:math:`\beta` block of the inverse observed information in :math:`(\beta, \tau)`, assembled
from per-study central differences in :math:`(\eta_i, \tau)` (in :math:`\beta` alone,
:math:`X^\top\operatorname{diag}\{n_i p_i(1-p_i)\}X`, when :math:`\hat\tau = 0`); Wald z
tests, CIs, and the omnibus :math:`Q_M = \hat\beta_m^\top V_m^{-1}\hat\beta_m \sim \chi^2_m`.

References
----------
Stijnen T, Hamza TH, Ozdemir P. Random effects meta-analysis of event outcome in
the framework of the generalized linear mixed model with applications in sparse
data. Stat Med 2010;29:3046-67.
Liu Q, Pierce DA. A note on Gauss-Hermite quadrature. Biometrika 1994;81:624-9.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats
from scipy.special import expit, gammaln, logsumexp

from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist.inputs import Counts, check_level, counts_from
from bayes_poem.frequentist.moderators import Categorical, Design, counts_and_design
from bayes_poem.frequentist.results import GlmmRegResult, GlmmResult
from bayes_poem.table import StudyTable

__all__ = ["glmm_loglik", "glmm_metareg_proportions", "glmm_proportions",
           "glmm_study_logliks"]

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


# --------------------------------------------------------------------------------------
# With moderators: eta_i = x_i' beta (metafor rma.glmm(measure="PLO", mods = ))
# --------------------------------------------------------------------------------------

def glmm_study_logliks(eta: ArrayLike, tau: float, events: ArrayLike, totals: ArrayLike,
                       n_nodes: int = 7) -> np.ndarray:
    """Per-study :math:`\\log L_i(\\eta_i, \\tau)` by adaptive Gauss-Hermite quadrature.

    As :func:`glmm_loglik` (which is their sum for :math:`\\eta_i = \\mu`), with one linear
    predictor :math:`\\eta_i` per study.
    """
    x = np.asarray(events, dtype=float)
    n = np.asarray(totals, dtype=float)
    eta = np.broadcast_to(np.asarray(eta, dtype=float), x.shape)
    logc = gammaln(n + 1) - gammaln(x + 1) - gammaln(n - x + 1)
    if tau < TAU_ZERO:
        return logc + x * eta - n * np.logaddexp(0.0, eta)
    z, w = np.polynomial.hermite.hermgauss(n_nodes)
    mode = _modes(eta, tau, x, n)  # type: ignore[arg-type]
    p = expit(eta + mode)
    sigma = 1.0 / np.sqrt(n * p * (1 - p) + 1.0 / tau**2)
    u = mode[:, None] + np.sqrt(2.0) * sigma[:, None] * z[None, :]
    log_f = _log_joint(u, eta[:, None], tau, x[:, None], n[:, None])  # type: ignore[arg-type]
    terms = logsumexp(np.log(w)[None, :] + z[None, :] ** 2 + log_f, axis=1)
    return logc + np.log(np.sqrt(2.0) * sigma) + terms


_ETA_STEP = 1e-4


def _beta_at(tau: float, X: np.ndarray, x: np.ndarray, n: np.ndarray, m: int,
             start: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """max over beta of l(beta, tau) by Newton with backtracking: (beta, l, converged)."""
    beta = start.copy()
    h = _ETA_STEP
    ll = float(np.sum(glmm_study_logliks(X @ beta, tau, x, n, m)))
    for _ in range(200):
        eta = X @ beta
        l0 = glmm_study_logliks(eta, tau, x, n, m)
        lp = glmm_study_logliks(eta + h, tau, x, n, m)
        lm = glmm_study_logliks(eta - h, tau, x, n, m)
        grad = X.T @ ((lp - lm) / (2 * h))
        curv = np.minimum((lp - 2 * l0 + lm) / h**2, -1e-12)  # log-concave in eta
        step = np.linalg.solve(X.T @ (X * -curv[:, None]), grad)
        ll = float(np.sum(l0))
        for _ in range(60):
            new = float(np.sum(glmm_study_logliks(X @ (beta + step), tau, x, n, m)))
            if new >= ll - 1e-12 * abs(ll):
                break
            step = step / 2
        beta = beta + step
        ll = max(ll, new)
        if np.max(np.abs(step)) < 1e-10 * max(1.0, float(np.max(np.abs(beta)))):
            return beta, float(np.sum(glmm_study_logliks(X @ beta, tau, x, n, m))), True
    return beta, ll, False


def _information(beta: np.ndarray, tau: float, X: np.ndarray, x: np.ndarray, n: np.ndarray,
                 m: int) -> np.ndarray:
    """Observed information of (beta, tau) from per-study central differences."""
    eta = X @ beta
    he, ht = 1e-4, 1e-4 * max(1.0, tau)

    def ell(de: float, dt: float) -> np.ndarray:
        return glmm_study_logliks(eta + de, tau + dt, x, n, m)

    l0 = ell(0, 0)
    l_ee = (ell(he, 0) - 2 * l0 + ell(-he, 0)) / he**2
    l_tt = float(np.sum(ell(0, ht) - 2 * l0 + ell(0, -ht))) / ht**2
    l_et = (ell(he, ht) - ell(he, -ht) - ell(-he, ht) + ell(-he, -ht)) / (4 * he * ht)
    p = X.shape[1]
    hess = np.empty((p + 1, p + 1))
    hess[:p, :p] = X.T @ (X * l_ee[:, None])
    hess[:p, p] = hess[p, :p] = X.T @ l_et
    hess[p, p] = l_tt
    return -hess


def _check_separation(design: Design, x: np.ndarray, n: np.ndarray, source: str) -> None:
    """A level of a categorical moderator with no events (or only events): beta infinite."""
    X, terms = design.X, design.terms
    for name, levels in design.levels.items():
        dummies = [terms.index(f"{name}[{lv}]") for lv in levels if lv != design.references[name]]
        for level in levels:
            if level == design.references[name]:
                rows = np.all(X[:, dummies] == 0, axis=1)
            else:
                rows = X[:, terms.index(f"{name}[{level}]")] == 1
            events, total = x[rows].sum(), n[rows].sum()
            if events == 0 or events == total:
                which = "no events" if events == 0 else "only events"
                raise DataError(
                    f"{source}: column '{name}': level {level!r} has {which} in every study; "
                    "its maximum-likelihood coefficient is infinite. Use metareg_proportions() "
                    "(normal-normal model with a continuity correction)")


def glmm_metareg_proportions(
    data: StudyTable | ArrayLike,
    totals: ArrayLike | None = None,
    *,
    moderators: Sequence[str] | Mapping[str, Sequence[object]] | None = None,
    categorical: Categorical = (),
    n_nodes: int = 7,
    level: float = 0.95,
    outcome: str | None = None,
    subgroup: str | None = None,
    labels: Sequence[object] | None = None,
    tau_max: float = 20.0,
) -> GlmmRegResult:
    """Binomial-normal GLMM with moderators by ML (metafor ``rma.glmm(measure="PLO", mods=)``).

    :math:`x_i \\mid u_i \\sim \\operatorname{Binomial}(n_i, \\operatorname{expit}(x_i^\\top
    \\beta + u_i))`, :math:`u_i \\sim N(0, \\tau^2)` (module docstring). Arguments as
    :func:`~bayes_poem.frequentist.metareg_proportions` (moderators, categorical, data
    selection) and :func:`glmm_proportions` (``n_nodes``, ``tau_max``). No continuity
    correction: the counts enter the likelihood as they are.

    Raises
    ------
    DataError
        Bad counts or moderators; no events (or only events) in every study, or in every
        study of one level of a categorical moderator (the ML estimate is infinite).
    """
    level = check_level(level)
    if int(n_nodes) != n_nodes or n_nodes < 1:
        raise SpecError(f"n_nodes: {n_nodes!r} must be a positive integer")
    if not tau_max > 0:
        raise SpecError(f"tau_max: {tau_max!r} must be > 0")
    m = int(n_nodes)
    counts, design = counts_and_design(data, totals, moderators, categorical=categorical,
                                       labels=labels, outcome=outcome, subgroup=subgroup)
    x, n, X = counts.events, counts.totals, design.X
    if x.sum() == 0 or x.sum() == n.sum():
        which = "no events" if x.sum() == 0 else "only events"
        raise DataError(f"{counts.source}: {which} in every study; the maximum-likelihood "
                        "estimate is infinite. Use metareg_proportions() (normal-normal model "
                        "with a continuity correction)")
    _check_separation(design, x, n, counts.source)
    start = np.zeros(X.shape[1])
    start[0] = np.log((x.sum() + 0.5) / (n.sum() - x.sum() + 0.5))
    beta0, ll0, conv0 = _beta_at(0.0, X, x, n, m, start)
    cache = {"beta": beta0}

    def profile(tau: float) -> float:
        beta, ll, _ = _beta_at(tau, X, x, n, m, cache["beta"])
        cache["beta"] = beta
        return -ll

    outer = optimize.minimize_scalar(profile, bounds=(0.0, tau_max), method="bounded",
                                     options={"xatol": 1e-10, "maxiter": 500})
    tau = float(outer.x)
    beta, ll, conv = _beta_at(tau, X, x, n, m, cache["beta"])
    notes = []
    if ll0 >= ll - 1e-12 or tau < 1e-5:
        tau, beta, ll, conv = 0.0, beta0, ll0, conv0
    converged = bool(outer.success) and conv
    if tau_max - tau < 1e-6:
        converged = False
        notes.append(f"tau reached the search bound tau_max = {tau_max:g}; the fit is "
                     "unreliable")
    if not conv:
        notes.append("Newton's method for the coefficients did not converge")
    if tau == 0.0:
        pr = expit(X @ beta)
        vb = np.linalg.inv(X.T @ (X * (n * pr * (1 - pr))[:, None]))
        notes.append("tau^2 estimate on the boundary (0); SEs from the fixed-effect "
                     "information")
    else:
        try:
            vb = np.linalg.inv(_information(beta, tau, X, x, n, m))[:-1, :-1]
        except np.linalg.LinAlgError:
            vb = np.full((X.shape[1],) * 2, np.nan)
        if not np.all(np.isfinite(np.diag(vb))) or np.any(np.diag(vb) <= 0):
            vb = np.full_like(vb, np.nan)
            notes.append("observed information not positive definite")
    se = np.sqrt(np.diag(vb))
    z = beta / se
    crit = stats.norm.ppf(0.5 + level / 2)
    p_mod = X.shape[1] - 1
    qm = float(beta[1:] @ np.linalg.solve(vb[1:, 1:], beta[1:])) if p_mod > 0 else np.nan
    qm_p = float(stats.chi2.sf(qm, p_mod)) if p_mod > 0 else np.nan
    if subgroup is not None:
        label = subgroup
    elif (isinstance(data, StudyTable) and len(data.subgroups) == 1
          and "subgroup" not in design.moderators):
        label = data.subgroups[0]
    else:
        label = "all"
    return GlmmRegResult(
        label=label, k=counts.k, terms=design.terms, estimates=beta, se=se, statistic=z,
        p_values=2 * stats.norm.sf(np.abs(z)), ci_lower=beta - crit * se,
        ci_upper=beta + crit * se, vcov=vb, tau2=tau**2, loglik=ll, qm=qm, qm_df1=p_mod,
        qm_pvalue=qm_p, n_nodes=m, converged=converged, design=design, studies=counts.labels,
        level=level, note="; ".join(notes),
    )
