r"""Bivariate normal-normal meta-analysis of two outcomes on observed logits (REML).

The frequentist counterpart of the joint efficacy-safety model
(:mod:`bayes_poem.joint`), as metafor's

.. code-block:: r

    rma.mv(yi, V, mods = ~ outcome:subgroup - 1, random = ~ outcome | study,
           struct = "UN", method = "REML")

(``mods = ~ outcome - 1`` without subgroup terms). Row :math:`i` is one study
:math:`s_i` x subgroup :math:`d_i` x outcome :math:`o_i \in \{0, 1\}` with
observed logit :math:`y_i` and sampling variance :math:`v_i` (metafor ``PLO``:
0.5 added to both cells of a row with 0 events or 0 non-events, ``to="only0"``,
as :func:`~bayes_poem.frequentist.pool_proportions` does):

.. math::

    y_i = \beta_{o_i, d_i} + u_{o_i, s_i} + e_i, \qquad
    (u_{0,s}, u_{1,s}) \sim N_2\!\left(0, G\right), \quad
    G = \begin{pmatrix} \tau_0^2 & \rho\tau_0\tau_1 \\ \rho\tau_0\tau_1 & \tau_1^2
    \end{pmatrix}, \qquad e \sim N(0, V).

The study effect :math:`u_{o,s}` is shared by the study's rows of outcome
:math:`o` (all its subgroups), as in the Bayesian model. :math:`V` is diagonal
(:math:`v_i`) except between the two outcomes of one study and subgroup, whose
within-study covariance is ``within_rho`` :math:`\sqrt{v_i v_j}` (the same patients
give both outcomes, but the correlation of the two proportions is not reported:
``within_rho = 0`` by default, metafor users' usual choice; give a guess to see
how much it matters). A study reporting one outcome contributes to that outcome
alone (it has no row of the other).

With :math:`\Sigma = V + Z G Z^\top` (:math:`(Z G Z^\top)_{ij} = [s_i = s_j]\,
G_{o_i o_j}`), :math:`n` rows and :math:`p` fixed effects, the restricted
log-likelihood maximised over :math:`(\tau_0, \tau_1, \rho) \in [0, \infty)^2
\times [-1, 1]` is metafor's (``REMLf = TRUE``)

.. math::

    \ell_R = -\tfrac12\bigl[(n - p)\log 2\pi - \log|X^\top X| + \log|\Sigma|
    + \log|X^\top \Sigma^{-1} X| + (y - X\hat\beta)^\top \Sigma^{-1} (y - X\hat\beta)
    \bigr],

:math:`\hat\beta = (X^\top\Sigma^{-1}X)^{-1}X^\top\Sigma^{-1}y`, with gradient
:math:`\partial\ell_R/\partial\theta_j = -\tfrac12\operatorname{tr}(P\Sigma_j) +
\tfrac12 y^\top P \Sigma_j P y` (:math:`P = \Sigma^{-1} - \Sigma^{-1}X(X^\top
\Sigma^{-1}X)^{-1}X^\top\Sigma^{-1}`, :math:`\Sigma_j = \partial\Sigma/\partial
\theta_j`), by L-BFGS-B from several starts (the best is kept). A variance on its
bound 0 is exact (the bound is a point of the search). The pooled logits are
:math:`\hat\beta` with Wald SEs from :math:`(X^\top\hat\Sigma^{-1}X)^{-1}` and
:math:`z` intervals, back-transformed by :math:`\operatorname{expit}` (median-study
proportions). ``rho_fixed`` pins :math:`\rho` (``0``: with ``within_rho = 0`` and
no subgroup terms the fit is two univariate REML fits). :math:`\rho` is not
identified when a :math:`\hat\tau^2` is 0: it is then reported as ``nan`` (with
a note). An outcome with no residual degrees of freedom (as many fixed effects
as rows) has :math:`\tau^2` fixed at 0, with a note.

References
----------
Viechtbauer W. Conducting meta-analyses in R with the metafor package.
J Stat Softw 2010;36(3):1-48 (``rma.mv``).
van Houwelingen HC, Arends LR, Stijnen T. Advanced methods in meta-analysis:
multivariate approach and meta-regression. Stat Med 2002;21:589-624.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import linalg, optimize, stats
from scipy.special import expit

from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist.inputs import Counts, check_level
from bayes_poem.frequentist.transforms import proportion_effects
from bayes_poem.table import StudyTable

__all__ = ["BIVARIATE_COLUMNS", "POOLED", "BivariateResult", "bivariate_proportions",
           "fit_bivariate", "reml_loglik"]

POOLED = "pooled"
"""The subgroup label of an outcome's one fixed effect without subgroup terms."""
BIVARIATE_COLUMNS = (
    "outcome", "subgroup", "k", "rows", "estimate", "se", "ci_lower", "ci_upper",
    "proportion", "proportion_ci_lower", "proportion_ci_upper", "tau2", "tau", "rho",
    "loglik", "method", "struct", "within_rho", "rho_fixed", "level", "note",
)


@dataclass(frozen=True)
class BivariateResult:
    """A bivariate REML fit (see the module docstring).

    Attributes
    ----------
    outcomes : (str, str)
        Outcome 0 and outcome 1.
    cells : tuple of (str, str)
        ``(outcome, subgroup)`` of each fixed effect (subgroup :data:`POOLED` without
        subgroup terms), in the order of ``estimate``.
    estimate, se : numpy.ndarray
        Pooled logits and their Wald SEs.
    vcov : numpy.ndarray
        :math:`(X^\\top\\hat\\Sigma^{-1}X)^{-1}`.
    k, rows : tuple of int
        Studies and rows behind each fixed effect.
    tau2 : (float, float)
        REML between-study variances of the two outcomes (logit scale).
    rho : float
        Correlation of the study effects (``rho_fixed`` if given; ``nan`` if not
        identified).
    loglik : float
        Maximised restricted log-likelihood (metafor's, ``REMLf = TRUE``).
    level : float
        Confidence level of the intervals.
    within_rho : float
        Within-study correlation assumed between the two outcomes of a study x subgroup.
    rho_fixed : float or None
    n_corrected : (int, int)
        Rows of each outcome given the continuity correction (0 for array input).
    converged : bool
    note : str
        ``"; "``-separated notes.
    """

    outcomes: tuple[str, str]
    cells: tuple[tuple[str, str], ...]
    estimate: np.ndarray
    se: np.ndarray
    vcov: np.ndarray
    k: tuple[int, ...]
    rows: tuple[int, ...]
    tau2: tuple[float, float]
    rho: float
    loglik: float
    level: float
    within_rho: float = 0.0
    rho_fixed: float | None = None
    n_corrected: tuple[int, int] = (0, 0)
    converged: bool = True
    note: str = ""

    @property
    def tau(self) -> tuple[float, float]:
        return (float(np.sqrt(self.tau2[0])), float(np.sqrt(self.tau2[1])))

    def ci(self) -> tuple[np.ndarray, np.ndarray]:
        """Wald ``level`` intervals of the pooled logits."""
        crit = stats.norm.ppf(0.5 + self.level / 2)
        return self.estimate - crit * self.se, self.estimate + crit * self.se

    def to_frame(self) -> pd.DataFrame:
        """One row per fixed effect (:data:`BIVARIATE_COLUMNS`): the pooled logit with its
        Wald CI and the same through expit, the outcome's tau^2, rho and the fit."""
        lower, upper = self.ci()
        rows = []
        for j, (outcome, subgroup) in enumerate(self.cells):
            o = self.outcomes.index(outcome)
            rows.append({
                "outcome": outcome, "subgroup": subgroup, "k": self.k[j], "rows": self.rows[j],
                "estimate": self.estimate[j], "se": self.se[j],
                "ci_lower": lower[j], "ci_upper": upper[j],
                "proportion": expit(self.estimate[j]),
                "proportion_ci_lower": expit(lower[j]), "proportion_ci_upper": expit(upper[j]),
                "tau2": self.tau2[o], "tau": self.tau[o], "rho": self.rho,
                "loglik": self.loglik, "method": "REML", "struct": "UN",
                "within_rho": self.within_rho,
                "rho_fixed": np.nan if self.rho_fixed is None else self.rho_fixed,
                "level": self.level, "note": self.note,
            })
        return pd.DataFrame(rows, columns=list(BIVARIATE_COLUMNS))

    def cell(self, outcome: str, subgroup: str) -> int:
        """Index of the fixed effect of ``(outcome, subgroup)``; ``KeyError`` if none."""
        return self.cells.index((outcome, subgroup))


# ---------------------------------------------------------------------- likelihood
def _g(tau: np.ndarray, rho: float) -> np.ndarray:
    off = rho * tau[0] * tau[1]
    return np.array([[tau[0] ** 2, off], [off, tau[1] ** 2]])


def _dg(tau: np.ndarray, rho: float) -> list[np.ndarray]:
    """dG/dtau0, dG/dtau1, dG/drho."""
    return [np.array([[2 * tau[0], rho * tau[1]], [rho * tau[1], 0.0]]),
            np.array([[0.0, rho * tau[0]], [rho * tau[0], 2 * tau[1]]]),
            np.array([[0.0, tau[0] * tau[1]], [tau[0] * tau[1], 0.0]])]


@dataclass(frozen=True)
class _Problem:
    y: np.ndarray
    X: np.ndarray
    V: np.ndarray
    outcome: np.ndarray
    same_study: np.ndarray

    def sigma(self, tau: np.ndarray, rho: float) -> np.ndarray:
        return self.V + self.same_study * _g(tau, rho)[np.ix_(self.outcome, self.outcome)]

    def value_and_grad(self, tau: np.ndarray, rho: float,
                       grad: bool = True) -> tuple[float, np.ndarray, dict]:
        n, p = self.X.shape
        sigma = self.sigma(tau, rho)
        chol = linalg.cho_factor(sigma, lower=True)
        si_x = linalg.cho_solve(chol, self.X)
        si_y = linalg.cho_solve(chol, self.y)
        a = self.X.T @ si_x
        a_chol = linalg.cho_factor(a, lower=True)
        beta = linalg.cho_solve(a_chol, self.X.T @ si_y)
        resid = self.y - self.X @ beta
        py = linalg.cho_solve(chol, resid)
        logdet = 2 * np.sum(np.log(np.diag(chol[0])))
        logdet_a = 2 * np.sum(np.log(np.diag(a_chol[0])))
        logdet_xx = np.linalg.slogdet(self.X.T @ self.X)[1]
        value = -0.5 * ((n - p) * np.log(2 * np.pi) - logdet_xx + logdet + logdet_a
                        + resid @ py)
        g = np.zeros(3)
        if grad:
            P = linalg.cho_solve(chol, np.eye(n)) - si_x @ linalg.cho_solve(a_chol, si_x.T)
            for j, dg in enumerate(_dg(tau, rho)):
                d = self.same_study * dg[np.ix_(self.outcome, self.outcome)]
                g[j] = -0.5 * np.sum(P * d) + 0.5 * py @ d @ py
        return float(value), g, {"beta": beta, "vcov": linalg.cho_solve(a_chol, np.eye(p))}


def reml_loglik(yi: ArrayLike, vi: ArrayLike, outcome: ArrayLike, study: ArrayLike,
                group: ArrayLike, tau2: Sequence[float], rho: float, *,
                subgroup_terms: bool = True, within_rho: float = 0.0) -> float:
    """The restricted log-likelihood :math:`\\ell_R` at ``tau2 = (tau0^2, tau1^2)`` and
    ``rho`` (the function :func:`fit_bivariate` maximises)."""
    problem, _ = _problem(yi, vi, outcome, study, group, subgroup_terms, within_rho)
    tau = np.sqrt(np.asarray(tau2, dtype=float))
    return problem.value_and_grad(tau, float(rho), grad=False)[0]


def _problem(yi, vi, outcome, study, group, subgroup_terms: bool, within_rho: float):
    y = np.asarray(yi, dtype=float)
    v = np.asarray(vi, dtype=float)
    o = np.asarray(outcome, dtype=int)
    s = np.asarray(study)
    d = np.asarray(group)
    n = y.size
    if not (v.shape == o.shape == s.shape == d.shape == (n,)) or n == 0:
        raise DataError("yi, vi, outcome, study and group must be 1-D arrays of equal, "
                        "non-zero length")
    if not (np.isfinite(y).all() and np.isfinite(v).all() and (v > 0).all()):
        raise DataError("yi must be finite and vi finite and > 0")
    if not np.isin(o, (0, 1)).all():
        raise DataError("outcome must be 0 or 1 on every row")
    if (isinstance(within_rho, bool) or not isinstance(within_rho, int | float)
            or not -1.0 < within_rho < 1.0):
        raise SpecError(f"within_rho: must be a number in (-1, 1) (got {within_rho!r})")
    keys = list(zip(o.tolist(), d.tolist() if subgroup_terms else [POOLED] * n, strict=True))
    seen = list(dict.fromkeys(sorted(set(keys), key=lambda k: (k[0], keys.index(k)))))
    X = np.zeros((n, len(seen)))
    for i, key in enumerate(keys):
        X[i, seen.index(key)] = 1.0
    same_study = (s[:, None] == s[None, :]).astype(float)
    pair = same_study * (d[:, None] == d[None, :]) * (o[:, None] != o[None, :])
    V = np.diag(v) + within_rho * pair * np.sqrt(np.outer(v, v))
    return _Problem(y, X, V, o, same_study), seen


# ---------------------------------------------------------------------- fitting
def fit_bivariate(yi: ArrayLike, vi: ArrayLike, outcome: ArrayLike, study: ArrayLike,
                  group: ArrayLike, *, outcomes: Sequence[str] = ("outcome_0", "outcome_1"),
                  subgroup_terms: bool = True, within_rho: float = 0.0,
                  rho_fixed: float | None = None, level: float = 0.95,
                  n_corrected: tuple[int, int] = (0, 0)) -> BivariateResult:
    """REML fit of the bivariate model from effect sizes (see the module docstring).

    Parameters
    ----------
    yi, vi : array-like
        Observed logits and their sampling variances, one per row.
    outcome : array-like of {0, 1}
        The outcome of each row.
    study, group : array-like
        Study and subgroup labels of each row (``group`` is ignored for the fixed
        effects when ``subgroup_terms`` is False, but still pairs the within-study
        covariance).
    outcomes : (str, str)
        Names of outcome 0 and 1 in the result.
    subgroup_terms : bool
        One fixed effect per outcome x subgroup (default) or per outcome.
    within_rho : float
        Within-study correlation of the two outcomes of one study x subgroup, in (-1, 1).
    rho_fixed : float, optional
        Pins the between-study correlation at this value in [-1, 1].
    level : float
        Confidence level of the Wald intervals.
    """
    level = check_level(level)
    if rho_fixed is not None and (isinstance(rho_fixed, bool)
                                  or not isinstance(rho_fixed, int | float)
                                  or not -1.0 <= rho_fixed <= 1.0):
        raise SpecError(f"rho_fixed: must be a number in [-1, 1] (got {rho_fixed!r})")
    problem, seen = _problem(yi, vi, outcome, study, group, subgroup_terms, within_rho)
    o = problem.outcome
    s = np.asarray(study)
    notes = []
    bounds = []
    for j in (0, 1):
        mine = o == j
        df = int(mine.sum()) - sum(1 for key in seen if key[0] == j)
        if df <= 0:
            bounds.append((0.0, 0.0))
            notes.append(f"tau^2[{outcomes[j]}] fixed at 0: no residual degrees of freedom "
                         f"({int(mine.sum())} rows, as many fixed effects)")
        else:
            bounds.append((0.0, None))
    starts = _starts(problem, bounds, rho_fixed)

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        rho = rho_fixed if rho_fixed is not None else x[2]
        value, grad, _ = problem.value_and_grad(x[:2], rho)
        return -value, -(grad if rho_fixed is None else grad[:2])

    best = None
    for x0 in starts:
        res = optimize.minimize(objective, x0, jac=True, method="L-BFGS-B",
                                bounds=bounds + ([(-1.0, 1.0)] if rho_fixed is None else []),
                                options={"ftol": 1e-15, "gtol": 1e-11, "maxiter": 2000})
        if best is None or res.fun < best.fun:
            best = res
    tau = best.x[:2].copy()
    rho = float(rho_fixed) if rho_fixed is not None else float(best.x[2])
    loglik, _, extra = problem.value_and_grad(tau, rho, grad=False)
    if rho_fixed is None and (tau == 0).any():
        rho = np.nan
        notes.append("rho is not identified (a tau^2 is 0): reported as nan")
    if not best.success:
        notes.append(f"L-BFGS-B: {best.message}")
    labels = [(outcomes[j], str(d)) for j, d in seen]
    cell_of_row = problem.X.argmax(axis=1)
    k = tuple(int(np.unique(s[cell_of_row == c]).size) for c in range(len(seen)))
    rows = tuple(int((cell_of_row == c).sum()) for c in range(len(seen)))
    vcov = extra["vcov"]
    return BivariateResult(
        outcomes=(str(outcomes[0]), str(outcomes[1])), cells=tuple(labels),
        estimate=extra["beta"], se=np.sqrt(np.diag(vcov)), vcov=vcov, k=k, rows=rows,
        tau2=(float(tau[0] ** 2), float(tau[1] ** 2)), rho=rho, loglik=loglik, level=level,
        within_rho=float(within_rho), rho_fixed=None if rho_fixed is None else float(rho_fixed),
        n_corrected=n_corrected, converged=bool(best.success), note="; ".join(notes))


def _starts(problem: _Problem, bounds: list, rho_fixed: float | None) -> list[np.ndarray]:
    """Moment-based taus (residual SD after the fixed effects minus the mean sampling
    variance, at least 0.1) and a few rhos."""
    X, y = problem.X, problem.y
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    v = np.diag(problem.V)
    taus = []
    for j in (0, 1):
        mine = problem.outcome == j
        if bounds[j][1] == 0.0:
            taus.append(0.0)
            continue
        df = max(int(mine.sum()) - int((np.abs(X[mine]).sum(axis=0) > 0).sum()), 1)
        moment = np.sum(resid[mine] ** 2) / df - v[mine].mean()
        taus.append(max(np.sqrt(max(moment, 0.0)), 0.1))
    if rho_fixed is not None:
        return [np.array(taus), np.array(taus) * 0.3 + 0.05]
    return [np.array([*taus, r]) for r in (0.0, 0.5, -0.5)]


# ---------------------------------------------------------------------- from counts
def bivariate_proportions(table: StudyTable, outcomes: Sequence[str], *,
                          subgroups: Sequence[str] | None = None, subgroup_terms: bool = True,
                          within_rho: float = 0.0, rho_fixed: float | None = None,
                          add: float = 0.5, to: str = "only0",
                          level: float = 0.95) -> BivariateResult:
    """The bivariate REML model of two outcomes of a study table (observed logits).

    Parameters
    ----------
    table : StudyTable
        Rows of both outcomes (others are ignored).
    outcomes : (str, str)
        Outcome 0 and outcome 1 (for the joint model: the benefit, then the harm).
    subgroups : sequence of str, optional
        Subgroups to keep (default: all, in the table's order).
    add, to : float, str
        Continuity correction of each row (default 0.5 to both cells of a row with 0
        events or 0 non-events; :mod:`.transforms`).
    subgroup_terms, within_rho, rho_fixed, level
        As in :func:`fit_bivariate`.

    Raises
    ------
    DataError
        An outcome not in the table, or no rows left.
    """
    if not isinstance(table, StudyTable):
        raise SpecError(f"table: expected a StudyTable (got {type(table).__name__})")
    outcomes = tuple(outcomes)
    if len(outcomes) != 2 or outcomes[0] == outcomes[1]:
        raise SpecError(f"outcomes: two different outcome labels (got {list(outcomes)!r})")
    frame = table.frame
    for outcome in outcomes:
        if outcome not in set(frame["outcome"]):
            raise DataError(f"{table.source}: outcome '{outcome}' is not in the data")
    keep = frame["outcome"].isin(outcomes)
    if subgroups is not None:
        keep &= frame["subgroup"].isin(list(subgroups))
    rows = frame[keep]
    if rows.empty:
        raise DataError(f"{table.source}: no rows of {' and '.join(outcomes)} in the "
                        "selected subgroups")
    labels = tuple(f"{s} | {d} | {o}" for s, d, o in
                   zip(rows["study"], rows["subgroup"], rows["outcome"], strict=True))
    counts = Counts(labels, rows["events"].to_numpy(dtype=float),
                    rows["total"].to_numpy(dtype=float), table.source)
    effects = proportion_effects(counts, "logit", add=add, to=to)
    index = rows["outcome"].map({o: i for i, o in enumerate(outcomes)}).to_numpy()
    corrected = tuple(int(effects.corrected[index == j].sum()) for j in (0, 1))
    result = fit_bivariate(effects.yi, effects.vi, index, rows["study"].to_numpy(),
                           rows["subgroup"].to_numpy(), outcomes=outcomes,
                           subgroup_terms=subgroup_terms, within_rho=within_rho,
                           rho_fixed=rho_fixed, level=level, n_corrected=corrected)
    order = list(subgroups) if subgroups is not None else list(dict.fromkeys(rows["subgroup"]))
    return _ordered(result, order)


def _ordered(result: BivariateResult, order: list[str]) -> BivariateResult:
    """The fixed effects by outcome, then by ``order`` of the subgroups."""
    import dataclasses

    rank = {d: i for i, d in enumerate(order)}
    idx = sorted(range(len(result.cells)), key=lambda j: (
        result.outcomes.index(result.cells[j][0]), rank.get(result.cells[j][1], -1)))
    return dataclasses.replace(
        result, cells=tuple(result.cells[j] for j in idx), estimate=result.estimate[idx],
        se=result.se[idx], vcov=result.vcov[np.ix_(idx, idx)],
        k=tuple(result.k[j] for j in idx), rows=tuple(result.rows[j] for j in idx))
