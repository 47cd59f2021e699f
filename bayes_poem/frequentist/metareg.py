r"""Mixed-effects meta-regression, as metafor's ``rma(yi, vi, mods = ~ ..., method=, test=)``.

Model: :math:`y_i = x_i^\top\beta + u_i + \varepsilon_i`, :math:`u_i \sim N(0, \tau^2)`,
:math:`\varepsilon_i \sim N(0, v_i)`, with the design matrix :math:`X` (``k x p``; an
intercept and the moderators, :mod:`.moderators`). For a weight vector :math:`w`,
:math:`W = \operatorname{diag}(w)` and

.. math:: P(w) = W - W X (X^\top W X)^{-1} X^\top W .

Residual heterogeneity :math:`\tau^2` (``method``):

DL (method of moments, DerSimonian-Laird generalised to moderators; Raudenbush 2009)
    with :math:`w_i = 1/v_i`, :math:`P_0 = P(1/v)`:
    :math:`\hat\tau^2 = \max\{0, (y^\top P_0 y - (k-p)) / \operatorname{tr} P_0\}`.
REML and ML (Viechtbauer 2005; Raudenbush 2009)
    Fisher scoring from the Hedges start :math:`\max\{0, (y^\top P_{OLS} y -
    \operatorname{tr}(P_{OLS} V))/(k-p)\}` (:math:`P_{OLS} = I - X(X^\top X)^{-1}X^\top`),
    with :math:`w_i = 1/(v_i + \tau^2)`, :math:`P = P(w)`:
    :math:`\delta_{REML} = (y^\top P P y - \operatorname{tr}P)/\operatorname{tr}(PP)`,
    :math:`\delta_{ML} = (y^\top P P y - \sum w_i)/\sum w_i^2`, halved while
    :math:`\tau^2 + \delta < 0`, until :math:`|\delta| \le` ``threshold`` (metafor
    ``1e-5``; default here ``1e-10``). If the (restricted) log-likelihood is higher at
    :math:`\tau^2 = 0` by more than ``1.22e-4`` (metafor's ``ll0check``), :math:`\tau^2 = 0`.

Coefficients: :math:`\hat\beta = (X^\top W X)^{-1} X^\top W y`,
:math:`\operatorname{Var}(\hat\beta) = s^2_w (X^\top W X)^{-1}`, where ``test``:

``"z"`` (default)
    :math:`s^2_w = 1`; Wald z, normal CIs; omnibus :math:`Q_M =
    \hat\beta_m^\top V_m^{-1}\hat\beta_m \sim \chi^2_m` over the :math:`m = p-1` moderator
    coefficients (all but the intercept).
``"knha"`` (Knapp & Hartung 2003)
    :math:`s^2_w = \sum w_i (y_i - x_i^\top\hat\beta)^2/(k-p)`, **not truncated** (metafor's
    default for ``test="knha"``: the factor may be below 1 and shrink the SEs; 0 if the
    residual sum of squares is below machine epsilon); t tests and CIs on :math:`k-p` df;
    omnibus :math:`F = Q_M/m \sim F(m, k-p)` with :math:`Q_M` from the scaled covariance.
``"adhoc"``
    as ``"knha"`` with :math:`s^2_w` truncated below at 1 (metafor ``test="adhoc"``,
    Knapp & Hartung's ad hoc improvement; Jackson et al. 2017, section 4.3).
``"t"``
    :math:`s^2_w = 1` with t and F distributions on :math:`k-p` df.

Residual heterogeneity test: :math:`Q_E = y^\top P_0 y \sim \chi^2_{k-p}` (inverse
sampling-variance weights, whatever ``method``). With the typical within-study variance
:math:`\tilde v = (k-p)/\operatorname{tr}P_0`: :math:`I^2 = 100\,\hat\tau^2/(\tilde v +
\hat\tau^2)`, :math:`H^2 = 1 + \hat\tau^2/\tilde v` (residual; metafor).
Pseudo :math:`R^2 = \max\{0, 100(\hat\tau^2_{RE} - \hat\tau^2)/\hat\tau^2_{RE}\}` with
:math:`\hat\tau^2_{RE}` of the intercept-only model by the same method and threshold
(0 if :math:`\hat\tau^2_{RE} = 0`; Raudenbush 1994; metafor's default ``R2``).

References
----------
Knapp G, Hartung J. Improved tests for a random effects meta-regression with a single
covariate. Stat Med 2003;22:2693-710.
Raudenbush SW. Analyzing effect sizes: random-effects models. In: Cooper H, Hedges LV,
Valentine JC (eds), The Handbook of Research Synthesis and Meta-Analysis, 2nd ed. 2009.
Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw
2010;36(3).
Jackson D, Law M, Rücker G, Schwarzer G. The Hartung-Knapp modification for random-effects
meta-analysis: a useful refinement but are there any residual concerns? Stat Med
2017;36:3923-34.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, stats

from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist.inputs import check_level, effect_arrays
from bayes_poem.frequentist.moderators import (
    Categorical,
    Design,
    array_columns,
    build_design,
    counts_and_design,
)
from bayes_poem.frequentist.results import MetaRegResult
from bayes_poem.frequentist.transforms import EffectSizes, proportion_effects
from bayes_poem.table import StudyTable

__all__ = ["METAREG_METHODS", "METAREG_TESTS", "fit_meta_regression", "meta_regression",
           "metareg_proportions"]

METAREG_METHODS = ("REML", "ML", "DL")
METAREG_TESTS = ("z", "knha", "adhoc", "t")
LL0_TOL = np.finfo(float).eps ** 0.25  # metafor's con$tol, used by its ll0check


def _projection(X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(w) and (X'WX)^{-1}."""
    xw = X * w[:, None]
    inv = np.linalg.inv(X.T @ xw)
    return np.diag(w) - xw @ inv @ xw.T, inv


def _loglik(tau2: float, y: np.ndarray, v: np.ndarray, X: np.ndarray, reml: bool) -> float:
    """(Restricted) log-likelihood as metafor's ll0check computes it (no |X'X| term)."""
    w = 1.0 / (v + tau2)
    xw = X * w[:, None]
    xtwx = X.T @ xw
    beta = np.linalg.solve(xtwx, xw.T @ y)
    rss = float(np.sum(w * (y - X @ beta) ** 2))
    k, p = X.shape
    if reml:
        return float(-0.5 * (k - p) * np.log(2 * np.pi) - 0.5 * np.sum(np.log(v + tau2))
                     - 0.5 * np.linalg.slogdet(xtwx)[1] - 0.5 * rss)
    return float(-0.5 * k * np.log(2 * np.pi) - 0.5 * np.sum(np.log(v + tau2)) - 0.5 * rss)


def _tau2_dl(y: np.ndarray, v: np.ndarray, X: np.ndarray) -> tuple[float, float]:
    k, p = X.shape
    P, _ = _projection(X, 1.0 / v)
    tr_p = float(np.trace(P))
    tau2 = max(0.0, (float(y @ P @ y) - (k - p)) / tr_p)
    se = np.sqrt((2 * (k - p) + 4 * tau2 * tr_p + 2 * tau2**2 * float(np.sum(P * P))) / tr_p**2)
    return tau2, float(se)


def _tau2_fisher(y: np.ndarray, v: np.ndarray, X: np.ndarray, reml: bool, threshold: float,
                 maxiter: int) -> tuple[float, float, int, bool, str]:
    """(tau2, se, iterations, converged, note) by metafor's Fisher scoring."""
    k, p = X.shape
    ols = np.eye(k) - X @ np.linalg.solve(X.T @ X, X.T)
    tau2 = max(0.0, (float(y @ ols @ y) - float(np.sum(np.diag(ols) * v))) / (k - p))
    converged, iterations, note = False, 0, ""
    for iterations in range(1, maxiter + 1):  # noqa: B007 - used after the loop
        w = 1.0 / (v + tau2)
        P, _ = _projection(X, w)
        py = P @ y
        if reml:
            step = (float(py @ py) - float(np.trace(P))) / float(np.sum(P * P))
        else:
            step = (float(py @ py) - float(w.sum())) / float(np.sum(w**2))
        while tau2 + step < 0:
            step /= 2
        tau2 += step
        if abs(step) <= threshold:
            converged = True
            break
    if not converged:
        upper = 10 * max(float(np.var(y, ddof=1)), float(v.max())) + 1.0
        res = optimize.minimize_scalar(lambda t: -_loglik(t, y, v, X, reml),
                                       bounds=(0.0, upper), method="bounded",
                                       options={"xatol": threshold})
        tau2, converged = float(res.x), bool(res.success)
        note = f"Fisher scoring did not converge in {maxiter} steps; bounded search used"
    if (tau2 > threshold
            and _loglik(0.0, y, v, X, reml) - _loglik(tau2, y, v, X, reml) > LL0_TOL):
        tau2, note = 0.0, "log-likelihood larger at tau^2 = 0; tau^2 set to 0"
    w = 1.0 / (v + tau2)
    P, _ = _projection(X, w)
    se = np.sqrt(2.0 / np.sum(P * P)) if reml else np.sqrt(2.0 / np.sum(w**2))
    return float(tau2), float(se), iterations, converged, note


def _estimate_tau2(y: np.ndarray, v: np.ndarray, X: np.ndarray, method: str,
                   threshold: float, maxiter: int) -> tuple[float, float, int, bool, str]:
    if method == "DL":
        return (*_tau2_dl(y, v, X), 0, True, "")
    return _tau2_fisher(y, v, X, method == "REML", threshold, maxiter)


def _check_options(method: str, test: str, level: float, threshold: float
                   ) -> tuple[str, str, float]:
    method = str(method).upper()
    if method not in METAREG_METHODS:
        raise SpecError(f"method: {method!r} is not one of {', '.join(METAREG_METHODS)}")
    test = str(test).lower()
    if test == "hksj":
        test = "knha"
    if test not in METAREG_TESTS:
        raise SpecError(f"test: {test!r} is not one of {', '.join(METAREG_TESTS)}")
    if not threshold > 0:
        raise SpecError(f"threshold: {threshold!r} must be > 0")
    return method, test, check_level(level)


def fit_meta_regression(yi: ArrayLike, vi: ArrayLike, design: Design, *, method: str = "REML",
                        test: str = "z", level: float = 0.95, threshold: float = 1e-10,
                        maxiter: int = 1000, label: str = "all",
                        effects: EffectSizes | None = None) -> MetaRegResult:
    """Fit the mixed-effects meta-regression of ``yi`` on ``design`` (module docstring)."""
    method, test, level = _check_options(method, test, level, threshold)
    y, v = effect_arrays(yi, vi, 2)
    X = design.X
    k, p = X.shape
    if k != y.size:
        raise SpecError(f"the design has {k} rows for {y.size} effect sizes")
    tau2, tau2_se, iterations, converged, note = _estimate_tau2(y, v, X, method, threshold,
                                                                maxiter)
    w = 1.0 / (v + tau2)
    _, vb = _projection(X, w)
    beta = vb @ (X * w[:, None]).T @ y
    s2w = 1.0
    if test in ("knha", "adhoc"):
        rss = float(np.sum(w * (y - X @ beta) ** 2))
        s2w = 0.0 if rss <= np.finfo(float).eps else rss / (k - p)
        if test == "adhoc":
            s2w = max(1.0, s2w)
    vb = s2w * vb
    se = np.sqrt(np.diag(vb))
    statistic = beta / se
    m = p - 1
    qm = (float(beta[1:] @ np.linalg.solve(vb[1:, 1:], beta[1:])) if m > 0 else np.nan)
    if test == "z":
        df = np.nan
        p_values = 2 * stats.norm.sf(np.abs(statistic))
        crit = stats.norm.ppf(0.5 + level / 2)
        qm_df2 = np.nan
        qm_p = float(stats.chi2.sf(qm, m)) if m > 0 else np.nan
    else:
        df = float(k - p)
        p_values = 2 * stats.t.sf(np.abs(statistic), df)
        crit = stats.t.ppf(0.5 + level / 2, df)
        qm = qm / m if m > 0 else np.nan
        qm_df2 = df
        qm_p = float(stats.f.sf(qm, m, df)) if m > 0 else np.nan
    # residual heterogeneity, always with inverse sampling-variance weights
    P0, _ = _projection(X, 1.0 / v)
    if k > p:
        qe = max(0.0, float(y @ P0 @ y))
        qe_p = float(stats.chi2.sf(qe, k - p))
        vt = (k - p) / float(np.trace(P0))
        i2, h2 = 100 * tau2 / (vt + tau2), 1 + tau2 / vt
    else:  # pragma: no cover - build_design refuses p + 1 > k
        qe, qe_p, vt, i2, h2 = 0.0, 1.0, 0.0, 0.0, 1.0
    if m > 0:
        ones = np.ones((k, 1))
        tau2_re = _estimate_tau2(y, v, ones, method, threshold, maxiter)[0]
        r2 = 0.0 if tau2_re == 0 else max(0.0, 100 * (tau2_re - tau2) / tau2_re)
    else:
        tau2_re, r2 = tau2, np.nan
    return MetaRegResult(
        label=label, method=method, test=test, k=k, terms=design.terms,
        estimates=beta, se=se, statistic=statistic, df=df, p_values=p_values,
        ci_lower=beta - crit * se, ci_upper=beta + crit * se, vcov=vb,
        tau2=tau2, tau2_se=tau2_se, tau2_no_moderators=tau2_re, r2=r2,
        qm=qm, qm_df1=m, qm_df2=qm_df2, qm_pvalue=qm_p, qe=qe, qe_df=k - p, qe_pvalue=qe_p,
        i2=i2, h2=h2, typical_variance=vt, s2w=s2w, iterations=iterations,
        converged=converged, design=design, yi=y, vi=v, effects=effects, level=level,
        note=note,
    )


def meta_regression(yi: ArrayLike, vi: ArrayLike,
                    moderators: Mapping[str, Sequence[object]] | pd.DataFrame | None = None,
                    *, categorical: Categorical = (), method: str = "REML", test: str = "z",
                    level: float = 0.95, threshold: float = 1e-10,
                    labels: Sequence[object] | None = None) -> MetaRegResult:
    """Meta-regression from effect sizes (metafor ``rma(yi, vi, mods = , method =, test =)``).

    Parameters
    ----------
    yi, vi : array-like
        Effect sizes and sampling variances.
    moderators : mapping or DataFrame, optional
        Moderator name -> values, one per study (none: the random-effects model).
    categorical : sequence of str or mapping
        Moderators to dummy-code; a mapping gives each one's reference level.
    method : {"REML", "ML", "DL"}
    test : {"z", "knha", "adhoc", "t"}
        See the module docstring (``"hksj"`` is an alias of ``"knha"``).
    """
    y, v = effect_arrays(yi, vi, 2)
    columns = array_columns(moderators, "arrays")
    names = ([str(label) for label in labels] if labels is not None
             else [str(i) for i in range(1, y.size + 1)])
    if len(names) != y.size:
        raise DataError(f"arrays: {len(names)} labels for {y.size} studies")
    design = build_design(columns, list(columns), categorical=categorical, labels=names,
                          k=y.size)
    return fit_meta_regression(y, v, design, method=method, test=test, level=level,
                               threshold=threshold)


def metareg_proportions(
    data: StudyTable | ArrayLike,
    totals: ArrayLike | None = None,
    *,
    moderators: Sequence[str] | Mapping[str, Sequence[object]] | pd.DataFrame | None = None,
    categorical: Categorical = (),
    scale: str = "logit",
    method: str = "REML",
    test: str = "z",
    add: float | None = None,
    to: str = "only0",
    level: float = 0.95,
    outcome: str | None = None,
    subgroup: str | None = None,
    labels: Sequence[object] | None = None,
    threshold: float = 1e-10,
) -> MetaRegResult:
    """Meta-regression of single proportions (metafor ``rma(measure="PLO", xi=, ni=, mods=)``).

    Parameters
    ----------
    data : StudyTable or array-like
        A table (one outcome; one subgroup, or ``"subgroup"`` among the moderators), or
        the event counts.
    totals : array-like, optional
        The totals, with array input.
    moderators : sequence of str, or mapping / DataFrame
        With a table: covariate column names (e.g. ``["scq"]``). With arrays: name ->
        values. Numeric if every value is a number, categorical if none is (a mix is a
        ``DataError``), unless listed in ``categorical``.
    categorical : sequence of str or mapping
        Moderators to dummy-code whatever their values (e.g. numeric codes), or whose
        reference level you choose: ``{"patients": "starting"}``. Default reference: the
        first level in sorted order, as R's ``factor``.
    scale : {"logit", "double_arcsine", "proportion"}
        Effect size (``"logit"`` = metafor ``PLO``).
    method, test, level, threshold
        See :func:`fit_meta_regression`.
    add, to
        Continuity correction, exactly as :func:`~bayes_poem.frequentist.pool_proportions`
        (0.5 added to both cells of studies with 0 events or 0 non-events by default).

    Returns
    -------
    MetaRegResult
        ``.to_frame()`` (coefficients), ``.heterogeneity_frame()``, ``.studies_frame()``.

    Raises
    ------
    DataError
        Invalid counts, or a bad moderator (missing column or value, non-numeric value,
        constant, collinear, too many coefficients), naming the source, row and column.
    SpecError
        Invalid options.
    """
    counts, design = counts_and_design(data, totals, moderators, categorical=categorical,
                                       labels=labels, outcome=outcome, subgroup=subgroup)
    effects = proportion_effects(counts, scale, add=add, to=to)
    label = subgroup if subgroup is not None else _label(data, design)
    fit = fit_meta_regression(effects.yi, effects.vi, design, method=method, test=test,
                              level=level, threshold=threshold, label=label, effects=effects)
    n_corrected = int(effects.corrected.sum())
    if not n_corrected:
        return fit
    correction = (f"{effects.add:g} added to each cell of {n_corrected} "
                  f"stud{'y' if n_corrected == 1 else 'ies'} (to='{effects.to}')")
    return replace(fit, note="; ".join(filter(None, [fit.note, correction])))


def _label(data: object, design: Design) -> str:
    if (isinstance(data, StudyTable) and len(data.subgroups) == 1
            and "subgroup" not in design.moderators):
        return data.subgroups[0]
    return "all"
