"""Moderators in :func:`bayes_poem.compare.compare`: the frequentist meta-regression
(REML, Wald and Knapp-Hartung) and the binomial-normal GLMM with the fit's moderators,
coding and rows (:func:`frequentist_moderator_fits`); the pooled proportions and
contrasts at the fit's covariate values; the moderator table and its notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from bayes_poem.compare_frames import _NAN, MODERATOR_COLUMNS, MODERATOR_CONTRAST_COLUMNS, _level
from bayes_poem.errors import DataError
from bayes_poem.frequentist.glmm import glmm_metareg_proportions
from bayes_poem.frequentist.metareg import metareg_proportions
from bayes_poem.frequentist.results import GlmmRegResult, MetaRegResult
from bayes_poem.results import OVERALL, FitResult


def _at_text(fit: FitResult) -> str:
    from bayes_poem.report_text import _at_text as at_text

    return at_text(fit)


def _frequentist_design(fit: FitResult) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments of :func:`metareg_proportions` reproducing the Bayesian model's
    moderators, coding and rows (see ``docs/compare.md``)."""
    spec = fit.spec
    names = [m.name for m in spec.moderators]
    categorical: dict[str, str | None] = {m.name: m.reference for m in spec.moderators
                                          if m.kind == "categorical"}
    several = len(spec.subgroups) > 1
    if several and spec.subgroup_effects == "none":
        # one probability for every row: all rows, no subgroup term (array input, since
        # a table with several subgroups needs 'subgroup' among the moderators)
        frame = spec.table.frame
        return ((frame["events"].to_numpy(dtype=float), frame["total"].to_numpy(dtype=float)),
                {"moderators": {n: frame[n].tolist() for n in names},
                 "categorical": categorical,
                 "labels": [f"{s} | {g}" for s, g in zip(frame["study"], frame["subgroup"],
                                                         strict=True)]})
    if several:
        names.append("subgroup")
        categorical["subgroup"] = spec.subgroups[0]
    return (spec.table,), {"moderators": names, "categorical": categorical,
                           "outcome": spec.outcome}


def frequentist_moderator_fits(fit: FitResult, level: float | None = None
                               ) -> tuple[MetaRegResult, MetaRegResult,
                                          GlmmRegResult | None, str]:
    """The frequentist meta-regressions matching ``fit``'s moderators and rows.

    Returns the REML fit with Wald z tests, the same with Knapp-Hartung tests, the
    binomial-normal GLMM (None when it cannot be fitted) and, then, why not.
    """
    level = float(fit.interval.prob) if level is None else level
    args, kwargs = _frequentist_design(fit)
    reml = metareg_proportions(*args, method="REML", test="z", level=level, **kwargs)
    knha = metareg_proportions(*args, method="REML", test="knha", level=level, **kwargs)
    try:
        glmm, error = glmm_metareg_proportions(*args, level=level, **kwargs), ""
    except DataError as exc:
        glmm, error = None, str(exc)
    return reml, knha, glmm, error


def _covariate_values(fit: FitResult) -> dict[str, Any]:
    """The raw value of each moderator at which the Bayesian probabilities are reported:
    ``fit.at``, else the reference value (a numeric moderator's centre, a categorical
    one's reference level)."""
    at = dict(fit.at or {})
    return {m.name: at.get(m.name, m.centre if m.kind == "numeric" else m.reference)
            for m in fit.spec.moderators}


def _design_row(reml: MetaRegResult, values: Mapping[str, Any],
                subgroup: str | None) -> np.ndarray:
    """The frequentist design row (raw units) of ``subgroup`` at the moderator ``values``."""
    terms = list(reml.terms)
    x = np.zeros(len(terms))
    x[0] = 1.0  # intercept
    for name, raw in values.items():
        if reml.design.kinds.get(name) == "numeric":
            x[terms.index(name)] = float(raw)
        elif f"{name}[{raw}]" in terms:  # the reference level has no term
            x[terms.index(f"{name}[{raw}]")] = 1.0
    if subgroup is not None and f"subgroup[{subgroup}]" in terms:
        x[terms.index(f"subgroup[{subgroup}]")] = 1.0
    return x


def _metareg_subgroups(fit: FitResult, reml: MetaRegResult,
                       labels: Sequence[str]) -> dict[str, list[Any]]:
    """The frequentist meta-regression's pooled proportion per row of the subgroup table,
    at the Bayesian covariate values (:data:`MODERATOR_SUBGROUP_COLUMNS`).

    Subgroup ``d``: :math:`\\operatorname{logit}^{-1}(x_d^\\top b)` with the Wald CI of
    :math:`x_d^\\top b` back-transformed. ``overall``: the subgroups' proportions averaged
    with the Bayesian ``overall`` weights, :math:`\\bar p = \\sum_d \\omega_d p_d`, CI by
    the delta method on :math:`\\operatorname{logit}\\bar p`. Without a subgroup term
    (one subgroup, or no subgroup effects) every row has the one prediction, except the
    per-subgroup rows of a model without subgroup effects (NaN, as on the Bayesian side).
    """
    level = float(reml.level)
    crit = float(stats.norm.ppf(0.5 + level / 2))
    values = _covariate_values(fit)
    vcov = reml.vcov
    spec = fit.spec
    by_subgroup = "subgroup" in reml.design.moderators
    estimates, lowers, uppers = [], [], []

    def logit_ci(p: float, se_logit: float) -> tuple[float, float, float]:
        eta = float(np.log(p / (1 - p)))
        return p, float(expit(eta - crit * se_logit)), float(expit(eta + crit * se_logit))

    def at(subgroup: str | None) -> tuple[float, np.ndarray]:
        x = _design_row(reml, values, subgroup)
        return float(expit(x @ reml.estimates)), x

    for label in labels:
        if label != OVERALL and (by_subgroup or len(spec.subgroups) == 1):
            p, x = at(label)
            est = logit_ci(p, float(np.sqrt(x @ vcov @ x)))
        elif label != OVERALL:  # no subgroup effects: no per-subgroup rate
            est = (_NAN, _NAN, _NAN)
        elif not by_subgroup:
            p, x = at(None)
            est = logit_ci(p, float(np.sqrt(x @ vcov @ x)))
        else:
            weights = _overall_weights(fit)
            p_bar, grad = 0.0, np.zeros(len(reml.terms))
            for subgroup, w in weights.items():
                p, x = at(subgroup)
                p_bar += w * p
                grad += w * p * (1 - p) * x
            se_p = float(np.sqrt(grad @ vcov @ grad))
            est = logit_ci(p_bar, se_p / (p_bar * (1 - p_bar)))
        estimates.append(est[0])
        lowers.append(est[1])
        uppers.append(est[2])
    terms = " + ".join([*(["subgroup"] if by_subgroup else []),
                        *(m.name for m in spec.moderators)])
    model = (f"{reml.method} meta-regression on {terms} at {_at_text(fit)}; "
             f"{_level(level)} Wald CI")
    return {"freq_metareg_estimate": estimates, "freq_metareg_ci_lower": lowers,
            "freq_metareg_ci_upper": uppers, "freq_metareg_model": [model] * len(labels)}


def _overall_weights(fit: FitResult) -> dict[str, float]:
    """The weights of the Bayesian ``overall`` row: ``summary.weights`` or the patient mix."""
    labels = fit.spec.subgroups
    if fit.weights is not None:
        raw = np.array([float(fit.weights.get(k, 0.0)) for k in labels])
    else:
        totals = fit.spec.active_frame().groupby("subgroup")["total"].sum()
        raw = np.array([float(totals.get(k, 0.0)) for k in labels])
    return dict(zip(labels, raw / raw.sum(), strict=True))


def _metareg_contrasts(frame: pd.DataFrame, fit: FitResult,
                       reml: MetaRegResult) -> pd.DataFrame:
    """Add the meta-regression's difference of two subgroups' proportions at the Bayesian
    covariate values (:data:`MODERATOR_CONTRAST_COLUMNS`): :math:`d = p_a - p_b`,
    delta-method SE from :math:`\\nabla d = p_a(1-p_a)x_a - p_b(1-p_b)x_b`, Wald CI and
    two-sided z test."""
    frame = frame.copy()
    if frame.empty or "subgroup" not in reml.design.moderators:
        for name in MODERATOR_CONTRAST_COLUMNS:
            frame[name] = np.full(len(frame), _NAN)
        return frame
    crit = float(stats.norm.ppf(0.5 + float(reml.level) / 2))
    values = _covariate_values(fit)
    rows = []
    for a, b in zip(frame["a"], frame["b"], strict=True):
        xa, xb = _design_row(reml, values, a), _design_row(reml, values, b)
        pa, pb = float(expit(xa @ reml.estimates)), float(expit(xb @ reml.estimates))
        grad = pa * (1 - pa) * xa - pb * (1 - pb) * xb
        diff, se = pa - pb, float(np.sqrt(grad @ reml.vcov @ grad))
        z = diff / se if se > 0 else _NAN
        rows.append((diff, diff - crit * se, diff + crit * se, z,
                     float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else _NAN))
    for j, name in enumerate(MODERATOR_CONTRAST_COLUMNS):
        frame[name] = [row[j] for row in rows]
    return frame


def _moderator_frame(fit: FitResult, reml: MetaRegResult, knha: MetaRegResult,
                     glmm: GlmmRegResult | None, level: float) -> pd.DataFrame:
    bayes = fit.moderator_summary().set_index("term")
    frame = fit.spec.table.frame
    rows = []
    for moderator in fit.spec.moderators:
        numeric = moderator.kind == "numeric"
        # frequentist slopes are per raw unit; the Bayesian ones per coded unit
        factor = moderator.scale if numeric else 1.0
        if numeric:
            sd = float(pd.to_numeric(frame[moderator.name].astype(str).str.strip()).std(ddof=1))
            per = (f"per SD ({moderator.scale:.4g} units)" if np.isclose(moderator.scale, sd)
                   else f"per {moderator.scale:g} unit{'s' if moderator.scale != 1 else ''}")
        for term in moderator.terms:
            b = bayes.loc[term]
            row = {"term": term, "moderator": moderator.name, "kind": moderator.kind,
                   "reference": (f"{moderator.centre:g}" if numeric
                                 else str(moderator.reference)),
                   "per": per if numeric else f"vs {moderator.reference}",
                   "scale": factor if numeric else _NAN,
                   "bayes_median": float(b["median"]), "bayes_lower": float(b["lower"]),
                   "bayes_upper": float(b["upper"]), "bayes_interval": fit.interval.label,
                   "bayes_p_gt_0": float(b["p_gt_0"])}
            i = reml.terms.index(term)
            row.update({"freq_estimate": factor * reml.estimates[i],
                        "freq_ci_lower": factor * reml.ci_lower[i],
                        "freq_ci_upper": factor * reml.ci_upper[i],
                        "freq_interval": f"{_level(level)} CI",
                        "freq_p_value": float(reml.p_values[i]), "freq_method": "REML",
                        "freq_knha_ci_lower": factor * knha.ci_lower[i],
                        "freq_knha_ci_upper": factor * knha.ci_upper[i],
                        "freq_knha_p_value": float(knha.p_values[i])})
            if glmm is not None:
                j = glmm.terms.index(term)
                row.update({"glmm_estimate": factor * glmm.estimates[j],
                            "glmm_ci_lower": factor * glmm.ci_lower[j],
                            "glmm_ci_upper": factor * glmm.ci_upper[j],
                            "glmm_p_value": float(glmm.p_values[j])})
            else:
                row.update(dict.fromkeys(("glmm_estimate", "glmm_ci_lower", "glmm_ci_upper",
                                          "glmm_p_value"), _NAN))
            rows.append(row)
    return pd.DataFrame(rows, columns=list(MODERATOR_COLUMNS))


def _moderator_notes(fit: FitResult, reml: MetaRegResult, glmm: GlmmRegResult | None,
                     glmm_error: str) -> list[str]:
    spec = fit.spec
    several = len(spec.subgroups) > 1
    notes = [
        f"Pooled proportions with moderators: the Bayesian p_pooled is the meta-regression's "
        f"at {_at_text(fit)}; freq_metareg_* is the frequentist meta-regression below "
        "(subgroup indicators plus the same moderators, REML) evaluated at the same values, "
        "logit^-1(x'b) with a Wald CI (overall: the subgroups' rates averaged with the "
        "Bayesian overall weights, delta-method CI on the logit scale), so the two describe "
        "the same quantity; so do the contrasts' freq_metareg_* columns (difference of the "
        "two rates at those values, delta-method CI and z test). The freq_* columns pool "
        "each subgroup WITHOUT moderators: another quantity, shown for reference. The "
        "moderator table compares the same moderators, reference levels and rows on both "
        "sides.",
        "Moderator scale: Bayesian coefficients are per coded unit (numeric moderators "
        "centred and divided by their scale, 1 SD over the model's rows by default); the "
        "frequentist meta-regression uses the raw values, so its slopes, CIs and the "
        "GLMM's are multiplied by that scale ('per', 'scale' columns). Centring changes "
        "only the intercept, which is not shown.",
        f"Frequentist meta-regression: REML over k = {reml.k} rows (each row its own "
        f"random effect), residual tau^2 = {reml.tau2:.3g}, QM p = {reml.qm_pvalue:.3g}, "
        f"pseudo R^2 = {reml.r2:.3g}%; Wald z intervals (freq_*) and Knapp-Hartung t "
        f"intervals on {reml.k - reml.p} df (freq_knha_*). The Bayesian model has one "
        "random effect per study shared by its rows and a posterior for tau.",
    ]
    if several and spec.subgroup_effects != "none":
        kind = ("random (partially pooled) subgroup effects"
                if spec.subgroup_effects == "random" else "sum-to-zero fixed subgroup effects")
        notes.append(
            f"Subgroups: the Bayesian model has {kind}; the frequentist side adds subgroup "
            f"as a categorical moderator (reference {spec.subgroups[0]!r}, fixed effects), "
            "which leaves the moderator coefficients comparable; its subgroup terms are not "
            "shown.")
    elif several:
        notes.append("Subgroups: the Bayesian model has no subgroup effects, so the "
                     "frequentist meta-regression pools every row without a subgroup term.")
    if spec.study_effects == "common":
        notes.append("The Bayesian model is common-effect (tau = 0); the frequentist "
                     "meta-regression still estimates a residual tau^2 (REML).")
    if glmm is None:
        notes.append(f"The binomial-normal GLMM with moderators could not be fitted: "
                     f"{glmm_error}")
    else:
        notes.append(f"GLMM: binomial-normal model with the same moderators by maximum "
                     f"likelihood (tau^2 = {glmm.tau2:.3g}), Wald z intervals, no continuity "
                     "correction.")
    return notes
