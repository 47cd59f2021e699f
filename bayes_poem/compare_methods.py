"""The frequentist comparators of :func:`bayes_poem.compare.compare` other than the
published rule (its ``method``): Knapp-Hartung CIs of the REML/DL pooled estimates,
the binomial-normal GLMM per subgroup and its pairwise contrasts, and their notes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bayes_poem.compare_frames import _NAN
from bayes_poem.errors import DataError
from bayes_poem.frequentist.glmm import glmm_proportions
from bayes_poem.frequentist.metareg import metareg_proportions
from bayes_poem.frequentist.subgroups import (
    PAIRWISE_COLUMNS,
    SubgroupResult,
)
from bayes_poem.results import OVERALL, FitResult

_METHOD_TEXT = {
    "published": "the published method (continuity-corrected logit, fixed or random by I^2)",
    "glmm": "binomial-normal GLMM (maximum likelihood, exact binomial likelihood)",
    "reml": "random effects, tau^2 by REML, continuity-corrected logit",
    "dl": "random effects, tau^2 by DerSimonian-Laird, continuity-corrected logit",
}


def _summed(fit: FitResult) -> pd.DataFrame:
    """Events and totals summed per study (the frequentist 'overall' row's data)."""
    return fit.spec.table.frame.groupby("study", sort=False)[["events", "total"]].sum()


def _knapp_hartung(fit: FitResult, freq: SubgroupResult, re_method: str,
                   level: float) -> SubgroupResult:
    """``freq`` with each random-effects row's SE, z, p and CI by Knapp-Hartung
    (metafor ``test="knha"``: the intercept-only meta-regression); one-study rows
    stay fixed effect. The pairwise contrasts are recomputed with these SEs."""
    from bayes_poem.frequentist.results import make_result
    from bayes_poem.frequentist.subgroups import _pairwise

    table = fit.spec.table.for_outcome(fit.spec.outcome)
    summed = _summed(fit)

    def adjusted(result: Any) -> Any:
        if result.model != "random" or result.k < 2:
            return result
        if result.label == OVERALL:
            kh = metareg_proportions(summed["events"].to_numpy(), summed["total"].to_numpy(),
                                     labels=list(summed.index), method=re_method,
                                     test="knha", level=level)
        else:
            kh = metareg_proportions(table, subgroup=result.label, method=re_method,
                                     test="knha", level=level)
        pooled = dataclasses.replace(
            result.pooled, method=f"{result.pooled.method}+KH", se=float(kh.se[0]),
            z=float(kh.statistic[0]), p_value=float(kh.p_values[0]),
            ci_lower=float(kh.ci_lower[0]), ci_upper=float(kh.ci_upper[0]))
        reason = "random-effects model by choice; Knapp-Hartung CI (t, k - 1 df)"
        return make_result(result.label, result.effects, pooled, reason)

    results = tuple(adjusted(r) for r in freq.results)
    overall = adjusted(freq.overall) if freq.overall is not None else None
    return dataclasses.replace(freq, results=results, overall=overall,
                               pairwise=_pairwise(results, level))


def _glmm_fits(fit: FitResult, level: float) -> dict[str, Any]:
    """The binomial-normal GLMM of each subgroup and of 'overall' (counts summed per study)."""
    table = fit.spec.table.for_outcome(fit.spec.outcome)
    summed = _summed(fit)
    fits: dict[str, Any] = {}
    for label in (*fit.spec.subgroups, OVERALL):
        try:
            fits[label] = (glmm_proportions(table, subgroup=label, level=level)
                           if label != OVERALL else
                           glmm_proportions(summed["events"].to_numpy(),
                                            summed["total"].to_numpy(),
                                            labels=list(summed.index), level=level))
        except DataError as err:  # e.g. only events in every study: no finite ML estimate
            raise DataError(f"compare method 'glmm', subgroup '{label}': {err}") from None
    return fits


def _glmm_pairwise(fits: Mapping[str, Any], subgroups: Sequence[str],
                   level: float) -> pd.DataFrame:
    """Pairwise differences of the GLMM pooled proportions (delta method,
    SE = sqrt((p1(1-p1)s1)^2 + (p2(1-p2)s2)^2), two-sided z), PAIRWISE_COLUMNS."""
    from itertools import combinations

    crit = stats.norm.ppf(0.5 + level / 2)
    rows = []
    for a, b in combinations(subgroups, 2):
        r1, r2 = fits[a], fits[b]
        p1, p2 = r1.back_estimate, r2.back_estimate
        diff = p1 - p2
        se = float(np.hypot(p1 * (1 - p1) * r1.se, p2 * (1 - p2) * r2.se))
        z = diff / se if se > 0 else _NAN
        d_scale, se_scale = r1.estimate - r2.estimate, float(np.hypot(r1.se, r2.se))
        rows.append({
            "subgroup_1": a, "subgroup_2": b, "proportion_1": p1, "proportion_2": p2,
            "difference": diff, "se": se, "ci_lower": diff - crit * se,
            "ci_upper": diff + crit * se, "z": z,
            "p_value": float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else _NAN,
            "scale": "logit", "scale_difference": d_scale, "scale_se": se_scale,
            "scale_p_value": float(2 * stats.norm.sf(abs(d_scale / se_scale))),
        })
    return pd.DataFrame(rows, columns=list(PAIRWISE_COLUMNS))


def _glmm_subgroups(frame: pd.DataFrame, fits: Mapping[str, Any]) -> pd.DataFrame:
    """The subgroup table with the GLMM in the freq_* columns (no Q, I^2 or correction)."""
    frame = frame.copy()
    for i, label in enumerate(frame["subgroup"]):
        r = fits[label]
        one = r.k < 2
        frame.loc[i, ["freq_estimate", "freq_ci_lower", "freq_ci_upper"]] = (
            r.back_estimate, r.back_ci_lower, r.back_ci_upper)
        frame.loc[i, ["freq_model", "freq_method"]] = ("fixed" if one else "random", r.method)
        frame.loc[i, "freq_reason"] = ("one study: binomial GLMM without a study effect"
                                       if one else "binomial-normal GLMM by choice")
        frame.loc[i, ["freq_i2", "freq_q", "freq_q_pvalue"]] = _NAN
        frame.loc[i, ["freq_tau2", "freq_re_tau2"]] = r.tau2
        frame.loc[i, ["freq_re_tau2_ci_lower", "freq_re_tau2_ci_upper"]] = _NAN
        frame.loc[i, "freq_n_corrected"] = 0
    return frame


def _method_notes(notes: list[str], method: str, knapp_hartung: bool,
                  subgroups: pd.DataFrame) -> list[str]:
    """Say which comparator was used; with the GLMM drop what only the corrected logit has."""
    text = _METHOD_TEXT[method] + (", Knapp-Hartung CI (t, k - 1 df); the contrasts use the "
                                   "Knapp-Hartung SEs with normal quantiles"
                                   if knapp_hartung else "")
    first = [f"Frequentist comparator: method = '{method}': {text}."]
    if knapp_hartung:
        notes = [n if not n.startswith("Frequentist intervals are") else n.replace(
            "Wald confidence intervals that treat tau^2 as known",
            "Knapp-Hartung confidence intervals (t with k - 1 df)") for n in notes]
    if method != "glmm":
        return first + notes
    kept = [n for n in notes if not n.startswith(("Frequentist pooled rates use a continuity",
                                                  "No study needed a continuity",
                                                  "freq_i2 is the chosen model",
                                                  "Frequentist model per row"))]
    first.append("The GLMM uses the exact binomial likelihood (as the Bayesian model does): no "
                 "continuity correction, so zero-event studies are not pulled toward 50%; "
                 "freq_tau2 and freq_re_tau2 are its ML tau^2 (no Q-profile CI), freq_i2 and "
                 "freq_q are not defined for it; the contrasts use the delta method on the "
                 "GLMM logits.")
    return first + kept
