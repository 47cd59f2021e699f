"""The tables of :func:`bayes_poem.compare.compare`: their columns (documented in
``docs/compare.md``), the subgroup and contrast frames (frequentist and Bayesian
columns side by side) and the published figures' source columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from bayes_poem.frequentist.subgroups import (
    ModelChoice,
    SubgroupResult,
)
from bayes_poem.published import value
from bayes_poem.results import OVERALL, FitResult

SUBGROUP_COLUMNS = (
    "subgroup", "k", "events", "total", "observed",
    "freq_estimate", "freq_ci_lower", "freq_ci_upper", "freq_interval", "freq_model",
    "freq_method", "freq_reason", "freq_i2", "freq_tau2", "freq_q", "freq_q_pvalue",
    "freq_n_corrected",
    "bayes_p_pooled_median", "bayes_p_pooled_lower", "bayes_p_pooled_upper",
    "freq_re_tau2", "freq_re_tau2_ci_lower", "freq_re_tau2_ci_upper",
    "bayes_p_mean_median", "bayes_tau_median", "bayes_tau2_median", "bayes_tau2_lower",
    "bayes_tau2_upper", "bayes_i2_median", "bayes_interval",
)
PUBLISHED_SUBGROUP_COLUMNS = ("published", "published_ci_lower", "published_ci_upper",
                              "published_i2", "published_source")
CONTRAST_COLUMNS = (
    "contrast", "a", "b",
    "freq_difference", "freq_ci_lower", "freq_ci_upper", "freq_interval", "freq_z",
    "freq_p_value",
    "bayes_quantity", "bayes_median", "bayes_lower", "bayes_upper", "bayes_interval",
    "bayes_p_gt_0", "margin", "bayes_p_gt_margin",
)
PUBLISHED_CONTRAST_COLUMNS = ("published_difference", "published_p_value", "published_source")
MODERATOR_COLUMNS = (
    "term", "moderator", "kind", "reference", "per", "scale",
    "bayes_median", "bayes_lower", "bayes_upper", "bayes_interval", "bayes_p_gt_0",
    "freq_estimate", "freq_ci_lower", "freq_ci_upper", "freq_interval", "freq_p_value",
    "freq_method", "freq_knha_ci_lower", "freq_knha_ci_upper", "freq_knha_p_value",
    "glmm_estimate", "glmm_ci_lower", "glmm_ci_upper", "glmm_p_value",
)
MODERATOR_SUBGROUP_COLUMNS = ("freq_moderators", "freq_metareg_estimate",
                              "freq_metareg_ci_lower", "freq_metareg_ci_upper",
                              "freq_metareg_model", "bayes_at")
MODERATOR_CONTRAST_COLUMNS = ("freq_metareg_difference", "freq_metareg_ci_lower",
                              "freq_metareg_ci_upper", "freq_metareg_z",
                              "freq_metareg_p_value")

_NAN = float("nan")


def _level(level: float) -> str:
    return f"{100 * level:g}%"


def _subgroup_frame(fit: FitResult, freq: SubgroupResult, choice: ModelChoice,
                    summary: pd.DataFrame, heterogeneity: pd.DataFrame, level: float,
                    published: Mapping[str, Any] | None, overall_published: bool,
                    re_method: str = "REML") -> pd.DataFrame:
    frame = fit.spec.table.frame
    rows = []
    for result in (*freq.results, freq.overall):
        label = result.label
        counts = frame if label == OVERALL else frame[frame["subgroup"] == label]
        events, total = int(counts["events"].sum()), int(counts["total"].sum())
        model, reason = choice.choose(result.q, result.pooled.q_df)
        row = {
            "subgroup": label, "k": int(result.k), "events": events, "total": total,
            "observed": events / total,
            "freq_estimate": result.back_estimate, "freq_ci_lower": result.back_ci_lower,
            "freq_ci_upper": result.back_ci_upper, "freq_interval": f"{_level(level)} CI",
            "freq_model": result.model, "freq_method": result.method, "freq_reason": reason,
            "freq_i2": result.i2, "freq_tau2": result.tau2, "freq_q": result.q,
            "freq_q_pvalue": result.q_pvalue,
            "freq_n_corrected": int(result.effects.corrected.sum()),
        }
        row.update(_random_effects_tau2(result, re_method, level))
        row.update(_bayes_row(summary, label))
        row.update(_bayes_heterogeneity(heterogeneity, fit, label))
        row["bayes_interval"] = fit.interval.label
        if published is not None:
            entry = published["subgroups"].get(label)
            if label == OVERALL and not overall_published:
                entry = None
            row.update({
                "published": value(entry, "estimate"),
                "published_ci_lower": value(entry, "ci_lower"),
                "published_ci_upper": value(entry, "ci_upper"),
                "published_i2": value(entry, "i2"),
                "published_source": _source(published["short"], entry),
            })
        rows.append(row)
    columns = list(SUBGROUP_COLUMNS)
    if published is not None:
        columns += PUBLISHED_SUBGROUP_COLUMNS
    return pd.DataFrame(rows, columns=columns)


def _bayes_row(summary: pd.DataFrame, label: str) -> dict[str, float]:
    pooled = summary[(summary["subgroup"] == label) & (summary["quantity"] == "p_pooled")]
    mean = summary[(summary["subgroup"] == label) & (summary["quantity"] == "p_mean")]
    if pooled.empty:  # a model without subgroup effects has no per-subgroup rows
        return {"bayes_p_pooled_median": _NAN, "bayes_p_pooled_lower": _NAN,
                "bayes_p_pooled_upper": _NAN, "bayes_p_mean_median": _NAN}
    return {"bayes_p_pooled_median": float(pooled["median"].iloc[0]),
            "bayes_p_pooled_lower": float(pooled["lower"].iloc[0]),
            "bayes_p_pooled_upper": float(pooled["upper"].iloc[0]),
            "bayes_p_mean_median": float(mean["median"].iloc[0])}


def _bayes_heterogeneity(table: pd.DataFrame, fit: FitResult, label: str) -> dict[str, float]:
    """Posterior medians (and the tau^2 interval) of the row's tau, tau^2 and I^2 (%).

    One tau: the same on every row. ``study_heterogeneity = "by_subgroup"``: the
    subgroup's own ``tau[d]``; ``overall`` has none (NaN). Common effect: 0.
    """
    names = ("bayes_tau_median", "bayes_tau2_median", "bayes_tau2_lower", "bayes_tau2_upper",
             "bayes_i2_median")
    if fit.spec.study_effects == "common":
        return dict(zip(names, (0.0, 0.0, 0.0, 0.0, _NAN), strict=True))
    het = table.set_index("parameter")
    suffix = ""
    if fit.spec.study_heterogeneity == "by_subgroup":
        if label not in fit.spec.subgroups:
            return dict.fromkeys(names, _NAN)
        suffix = f"[{label}]"
    if f"tau{suffix}" not in het.index:  # beta-binomial: phi, no tau
        return dict.fromkeys(names, _NAN)
    tau2 = het.loc[f"tau2{suffix}"]
    return dict(zip(names, (float(het.loc[f"tau{suffix}", "median"]), float(tau2["median"]),
                            float(tau2["lower"]), float(tau2["upper"]),
                            100 * float(het.loc[f"i2{suffix}", "median"])), strict=True))


def _random_effects_tau2(result, re_method: str, level: float) -> dict[str, float]:
    """tau^2 of the random-effects model of a frequentist row, whatever model the rule
    chose (NaN for one study), with its Q-profile CI."""
    from bayes_poem.frequentist.pooling import pool

    if result.k < 2:
        return {"freq_re_tau2": _NAN, "freq_re_tau2_ci_lower": _NAN,
                "freq_re_tau2_ci_upper": _NAN}
    pooled = pool(result.effects.yi, result.effects.vi, method=re_method, level=level)
    return {"freq_re_tau2": pooled.tau2, "freq_re_tau2_ci_lower": pooled.tau2_ci_lower,
            "freq_re_tau2_ci_upper": pooled.tau2_ci_upper}


def _contrast_frame(bayes: pd.DataFrame, freq: SubgroupResult, level: float,
                    published: Mapping[str, Any] | None) -> pd.DataFrame:
    columns = list(CONTRAST_COLUMNS)
    if published is not None:
        columns += PUBLISHED_CONTRAST_COLUMNS
    if bayes.empty:
        return pd.DataFrame([], columns=columns)
    pairwise = freq.pairwise
    rows = []
    for b_row in bayes[bayes["scale"] == "difference"].itertuples(index=False):
        a, b = b_row.a, b_row.b
        match = pairwise[(pairwise["subgroup_1"] == a) & (pairwise["subgroup_2"] == b)]
        sign = 1.0
        if match.empty:
            match = pairwise[(pairwise["subgroup_1"] == b) & (pairwise["subgroup_2"] == a)]
            sign = -1.0
        f = match.iloc[0]
        lower, upper = sorted((sign * f["ci_lower"], sign * f["ci_upper"]))
        row = {
            "contrast": b_row.contrast, "a": a, "b": b,
            "freq_difference": sign * f["difference"], "freq_ci_lower": lower,
            "freq_ci_upper": upper, "freq_interval": f"{_level(level)} CI",
            "freq_z": sign * f["z"], "freq_p_value": f["p_value"],
            "bayes_quantity": b_row.quantity, "bayes_median": b_row.median,
            "bayes_lower": b_row.lower, "bayes_upper": b_row.upper,
            "bayes_interval": b_row.interval, "bayes_p_gt_0": b_row.p_gt_null,
            "margin": b_row.margin, "bayes_p_gt_margin": b_row.p_gt_margin,
        }
        if published is not None:
            entry, p_sign = published["contrasts"].get((a, b)), 1.0
            if entry is None and (b, a) in published["contrasts"]:
                entry, p_sign = published["contrasts"][(b, a)], -1.0
            row.update({"published_difference": p_sign * value(entry, "difference"),
                        "published_p_value": value(entry, "p_value"),
                        "published_source": _source_contrast(published["short"], entry, p_sign)})
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------- published
def _dataset(fit: FitResult) -> str:
    return str(fit.spec.table.metadata.get("dataset", ""))


def _covers_dataset(fit: FitResult) -> bool:
    """Whether the analysed subgroups are all of the dataset's (for the 'overall' row)."""
    from bayes_poem.datasets import load_dataset

    full = load_dataset(_dataset(fit)).for_outcome(fit.spec.outcome)
    return set(full.subgroups) == set(fit.spec.subgroups)


def _source(short: str, entry: Mapping[str, Any] | None) -> str:
    if not entry:
        return ""
    marks = sorted({item["mark"] for item in entry.values()})
    return f"{short} ({'/'.join(marks)}): published value for different (real) study-level data"


def _source_contrast(short: str, entry: Mapping[str, Any] | None, sign: float) -> str:
    if not entry:
        return ""
    marks = sorted({item["mark"] for item in entry.values()})
    flipped = "; sign flipped to a - b" if sign < 0 else ""
    return (f"{short} ({'/'.join(marks)}): published value for different (real) "
            f"study-level data{flipped}")
