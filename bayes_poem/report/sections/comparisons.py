"""The report's comparisons with other analyses: the sensitivity grid
(``sensitivity.csv``), small-study effects and the frequentist analysis side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_poem import plots
from bayes_poem.contrasts import Contrast
from bayes_poem.report.document import Section
from bayes_poem.report.format import at_text, ci_num, ci_pct, embed, num, pct, prob

if TYPE_CHECKING:
    from bayes_poem.results import FitResult


def sensitivity_section(frame: pd.DataFrame) -> Section:
    data = frame.copy()
    variants = list(dict.fromkeys(data["variant"])) if "variant" in data else []
    text = [f"From sensitivity.csv: {len(variants)} variant(s), "
            f"{data['quantity'].nunique() if 'quantity' in data else 0} quantities. Each "
            "variant is the analysis refitted with one change (prior, structure, likelihood, "
            "a study left out or a subset); 'main' is the analysis itself."]
    if "status" in data:
        failed = data[data["status"].fillna("") == "failed"]
        if not failed.empty:
            text.append("Failed variants (not drawn): "
                        + ", ".join(dict.fromkeys(failed["variant"].astype(str))) + ".")
    table = None
    if "flag" in data:
        flagged = data[data["flag"].fillna("").astype(str) != ""]
        if flagged.empty:
            text.append("No variant changes a conclusion (no flags).")
        else:
            text.append("Variants whose conclusion differs from the main analysis:")
            label = str(flagged["interval"].iloc[0]) if "interval" in flagged else "interval"
            table = pd.DataFrame({
                "variant": flagged["variant"], "quantity": flagged["quantity"],
                f"median [{label}]": [ci_num(m, lo, hi) for m, lo, hi in zip(
                    flagged["median"], flagged["lower"], flagged["upper"], strict=True)],
                "flag": flagged["flag"]})
    figure = plots.sensitivity_forest(frame=data)
    return Section("Sensitivity analyses", "\n\n".join(text), table=table,
                   figures=(embed("sensitivity", "Every quantity under every variant "
                                    "(median and interval); flagged variants in red", figure),),
                   anchor="sensitivity")


def bias_section(fit: FitResult, bias: Any) -> Section:
    """Small-study effects: the precision model beside the main estimate, the frequentist
    tests, funnel plots (frequentist and posterior) and cumulative plots."""
    from bayes_poem.bias import PRECISION_LABELS
    from bayes_poem.bias_analysis import figures

    options = bias.options
    axis = PRECISION_LABELS[options.precision]
    prec = bias.precision_table()
    label = fit.interval.label
    table = pd.DataFrame({
        "subgroup": prec["subgroup"],
        f"slope per unit {axis} [{label}]": [
            ci_num(m, lo, hi) if isinstance(t, str) and t else "" for m, lo, hi, t in zip(
                prec["slope_median"], prec["slope_lower"], prec["slope_upper"], prec["term"],
                strict=True)],
        "P(slope < 0)": [prob(x) for x in prec["p_slope_lt_0"]],
        "P(slope > 0)": [prob(x) for x in prec["p_slope_gt_0"]],
        f"limit estimate [{label}]": [ci_pct(m, lo, hi) for m, lo, hi in zip(
            prec["limit_median"], prec["limit_lower"], prec["limit_upper"], strict=True)],
        f"main estimate [{label}]": [ci_pct(m, lo, hi) for m, lo, hi in zip(
            prec["main_median"], prec["main_lower"], prec["main_upper"], strict=True)],
    })
    reg = bias.regtest
    tests = []
    for d in dict.fromkeys(reg["label"]):
        rows = reg[reg["label"] == d].set_index("predictor")
        rank = bias.ranktest[bias.ranktest["label"] == d]
        fill = bias.trimfill[(bias.trimfill["label"] == d)
                             & (bias.trimfill["analysis"] == "trim-and-fill")]
        tests.append({
            "subgroup": d, "k": num(rows["k"].iloc[0], ".0f"),
            "Egger (SE) p": prob(rows.loc["sei", "p_value"]),
            "1/sqrt(n) p": prob(rows.loc["sqrtninv", "p_value"]),
            "1/n p": prob(rows.loc["ninv", "p_value"]),
            "rank test p": prob(rank["p_value"].iloc[0]) if len(rank) else "",
            "trim and fill": (f"{int(fill['k0'].iloc[0])} filled ({fill['side'].iloc[0]}), "
                              + ci_pct(fill["back_estimate"].iloc[0],
                                        fill["back_ci_lower"].iloc[0],
                                        fill["back_ci_upper"].iloc[0])
                              if len(fill) else "fewer than 3 studies"),
        })
    drawn = figures(bias)
    funnels = tuple(embed(stem, caption, fig) for stem, (caption, fig) in drawn.items()
                    if stem.startswith("funnel"))
    cumulative = tuple(embed(stem, caption, fig) for stem, (caption, fig) in drawn.items()
                       if stem.startswith("cumulative"))
    text = (f"Do smaller studies report other rates? The precision of each row "
            f"({axis}, computed from the data) is added to the model as a moderator, not "
            "centred, so the model's p_pooled is the limit estimate of a study of infinite "
            "size; the slope is per unit of precision on the logit scale (positive: smaller "
            f"studies report higher rates; slope {options.slope}). The main estimate is the "
            "analysis itself. Beside them the frequentist tests of each subgroup (metafor's "
            f"regtest, ranktest and trimfill, {options.method}); the tests need 3 studies. "
            "bayes_poem.bias, docs/model.md.")
    return Section(
        "Small-study effects", text, table=table,
        table_caption="Bayesian precision model (limit) beside the main estimate",
        subsections=(
            Section("Frequentist tests of funnel asymmetry", "Two-sided p-values of Egger's "
                    "regression test (predictor: SE of the observed logit) and its sample-size "
                    "versions, Begg's rank correlation test, and the trim-and-fill estimate.",
                    table=pd.DataFrame(tests)),
            Section("Funnel plots", "Frequentist: observed logits (0.5 added to zero cells) "
                    "against their precision, with the trim-and-fill studies. Posterior: each "
                    "row's shrunken estimate joined to its observed logit, on the same axes.",
                    figures=funnels),
            Section("Cumulative meta-analysis", f"The pooled estimate as studies accrue, "
                    f"ordered by {bias.order_by}: the posterior after each added study (the "
                    "model refitted with later studies' counts zeroed) beside the frequentist "
                    "cumulative meta-analysis (metafor cumul).", figures=cumulative)),
        anchor="small-study-effects")


def frequentist_section(fit: FitResult, contrasts: Sequence[Contrast] | None) -> Section:
    from bayes_poem.compare import compare

    comparison = compare(fit, contrasts=list(contrasts) if contrasts else None)
    sg = comparison.subgroups
    level = f"{100 * comparison.level:g}%"
    moderated = not comparison.moderators.empty
    columns = {
        "subgroup": sg["subgroup"], "k": sg["k"].astype(int), "n": sg["total"].astype(int),
        "observed": [pct(x) for x in sg["observed"]],
    }
    if moderated:  # the same quantity as the Bayesian p_pooled (docs/compare.md)
        columns[f"frequentist meta-regression at the same values [{level} CI]"] = [
            ci_pct(m, lo, hi) if np.isfinite(m) else "" for m, lo, hi in zip(
                sg["freq_metareg_estimate"], sg["freq_metareg_ci_lower"],
                sg["freq_metareg_ci_upper"], strict=True)]
    columns.update({
        f"frequentist{' without moderators' if moderated else ''} "
        f"[{level} CI]": [ci_pct(m, lo, hi) for m, lo, hi in zip(
            sg["freq_estimate"], sg["freq_ci_lower"], sg["freq_ci_upper"], strict=True)],
        "freq. model": sg["freq_model"], "I² (%)": [num(x, ".1f") for x in sg["freq_i2"]],
        f"Bayesian p_pooled [{fit.interval.label}]": [ci_pct(m, lo, hi) for m, lo, hi in zip(
            sg["bayes_p_pooled_median"], sg["bayes_p_pooled_lower"], sg["bayes_p_pooled_upper"],
            strict=True)],
    })
    by_subgroup = (fit.spec.study_heterogeneity == "by_subgroup"
                   and fit.spec.study_effects == "random")
    if by_subgroup:  # tau^2 per subgroup side by side
        columns[f"freq. random-effects tau² [{level} Q-profile CI]"] = [
            ci_num(*v) if np.isfinite(v[0]) else "" for v in zip(
                sg["freq_re_tau2"], sg["freq_re_tau2_ci_lower"], sg["freq_re_tau2_ci_upper"],
                strict=True)]
        columns[f"Bayesian tau[d]² [{fit.interval.label}]"] = [
            ci_num(*v) if np.isfinite(v[0]) else "" for v in zip(
                sg["bayes_tau2_median"], sg["bayes_tau2_lower"], sg["bayes_tau2_upper"],
                strict=True)]
    table = pd.DataFrame(columns)
    if comparison.has_published:
        table["published (real data)"] = [
            ci_pct(m, lo, hi) if np.isfinite(lo) else pct(m, 0) for m, lo, hi in zip(
                sg["published"], sg["published_ci_lower"], sg["published_ci_upper"],
                strict=True)]
    subsections = []
    ct = comparison.contrasts
    if not ct.empty:
        contrast_table = pd.DataFrame({
            "contrast": ct["contrast"],
            f"frequentist difference{' without moderators' if moderated else ''} "
            f"[{level} CI]": [ci_pct(m, lo, hi) for m, lo, hi in zip(
                ct["freq_difference"], ct["freq_ci_lower"], ct["freq_ci_upper"], strict=True)],
            "z-test p": [prob(x) for x in ct["freq_p_value"]],
            f"Bayesian difference [{fit.interval.label}]": [
                ci_pct(m, lo, hi) for m, lo, hi in zip(ct["bayes_median"], ct["bayes_lower"],
                                                        ct["bayes_upper"], strict=True)],
            **({f"meta-regression difference at the same values [{level} CI]": [
                ci_pct(m, lo, hi) if np.isfinite(m) else "" for m, lo, hi in zip(
                    ct["freq_metareg_difference"], ct["freq_metareg_ci_lower"],
                    ct["freq_metareg_ci_upper"], strict=True)],
                "meta-regression p": [prob(x) for x in ct["freq_metareg_p_value"]]}
               if moderated else {}),
            "P(> 0)": [prob(x) for x in ct["bayes_p_gt_0"]],
            "margin": [pct(x, 0) for x in ct["margin"]],
            "P(> margin)": [prob(x) for x in ct["bayes_p_gt_margin"]],
        })
        if "published_difference" in ct:
            contrast_table["published difference"] = [pct(x, 0) for x in
                                                       ct["published_difference"]]
            contrast_table["published p"] = [num(x, "g") for x in ct["published_p_value"]]
        subsections.append(Section("Contrasts (difference of rates)", "", table=contrast_table))
    md = comparison.moderators
    if not md.empty:
        subsections.append(Section(
            "Moderators (same moderators, coding and rows on both sides)",
            "Logit scale per Bayesian coded unit ('per'). In the subgroup table above, the "
            "frequentist meta-regression and the Bayesian p_pooled are both at "
            f"{at_text(fit)}; the column 'without moderators' pools each subgroup without "
            "them (another quantity, for reference).",
            table=pd.DataFrame({
                "term": md["term"], "per": md["per"],
                f"Bayesian [{fit.interval.label}]": [ci_num(*v) for v in zip(
                    md["bayes_median"], md["bayes_lower"], md["bayes_upper"], strict=True)],
                "P(β > 0)": [prob(x) for x in md["bayes_p_gt_0"]],
                f"REML [{level} CI]": [ci_num(*v) for v in zip(
                    md["freq_estimate"], md["freq_ci_lower"], md["freq_ci_upper"], strict=True)],
                "p": [prob(x) for x in md["freq_p_value"]],
                "Knapp-Hartung p": [prob(x) for x in md["freq_knha_p_value"]],
                f"GLMM [{level} CI]": [ci_num(*v) for v in zip(
                    md["glmm_estimate"], md["glmm_ci_lower"], md["glmm_ci_upper"], strict=True)],
            })))
    notes = "\n".join(f"- {note}" for note in comparison.notes)
    subsections.append(Section("What differs and why", notes))
    return Section(
        "Frequentist analysis side by side",
        f"The classical analysis of the same rows (inverse-variance pooling on the "
        f"{comparison.scale} scale, the fixed-vs-random rule of docs/frequentist.md) next to "
        "the Bayesian fit (bayes_poem.compare; docs/compare.md).",
        table=table, subsections=tuple(subsections), anchor="frequentist")

