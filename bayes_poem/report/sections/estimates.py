"""The report's estimates: posterior summaries (with the moderators and R^2 of a
meta-regression) and the contrasts between subgroups.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from bayes_poem import plots
from bayes_poem.contrasts import Contrast, contrast_draws
from bayes_poem.dims import SUBGROUP
from bayes_poem.errors import refit_reported
from bayes_poem.predictive import likelihood_of
from bayes_poem.report.document import ReportFigure, Section
from bayes_poem.report.format import at_text, ci_num, ci_pct, embed, num, pct, prob

if TYPE_CHECKING:
    from bayes_poem.results import FitResult


def refit_tau2_explained(fit: FitResult) -> pd.DataFrame:
    """``explained.tau2_explained`` (a refit without moderators, same settings and
    seed); its failed diagnostics are shown in the table, a failed refit is an error."""
    from bayes_poem.explained import REFIT_LABEL, tau2_explained

    with refit_reported(REFIT_LABEL):
        return tau2_explained(fit)


def refit_unpooled(fit: FitResult) -> FitResult:
    """``unpooled.unpooled_fit`` (the model with fixed subgroup effects, same settings
    and seed); its failed diagnostics are shown under the contrasts, a failed refit is
    an error."""
    from bayes_poem.unpooled import REFIT_LABEL, unpooled_fit

    with refit_reported(REFIT_LABEL):
        return unpooled_fit(fit)


def explained_section(fit: FitResult, explained: pd.DataFrame | None) -> Section:
    """tau with and without the moderators and R^2 (docs/model.md)."""
    if explained is None:
        return Section("Share of between-study variance explained (R²)",
                       "Not defined: the model has no random study effects (no tau²).")
    interval = fit.interval.label
    problems = [p for p in str(explained["problems_without"].iloc[0] or "").split("; ") if p]
    text = ("R² = max(0, 1 - median tau² with moderators / median tau² without them): the "
            "same model (data, structure, priors, sampler settings and seed) refitted "
            "without moderators. It compares two fits, so it has no interval; tau of each "
            "fit is shown with its posterior median and interval (docs/model.md)."
            + (" With one tau per subgroup, R² is per subgroup." if
               fit.spec.study_heterogeneity == "by_subgroup" else ""))
    if problems:
        text += ("\n\n" + "\n".join(f"- Warning (fit without moderators): {p}"
                                      for p in problems))
    return Section(
        "Share of between-study variance explained (R²)", text,
        table=pd.DataFrame({
            "parameter": [p.replace("r2_tau2", "tau", 1) for p in explained["parameter"]],
            f"with moderators, median [{interval}]": [ci_num(*v) for v in zip(
                explained["tau_with_median"], explained["tau_with_lower"],
                explained["tau_with_upper"], strict=True)],
            f"without moderators, median [{interval}]": [ci_num(*v) for v in zip(
                explained["tau_without_median"], explained["tau_without_lower"],
                explained["tau_without_upper"], strict=True)],
            "R²": [num(x) for x in explained["r2"]],
            "R² untruncated": [num(x) for x in explained["r2_raw"]],
        }))


def forest_figure(fit: FitResult, order: str = "data") -> ReportFigure:
    """The forest plot (``FitResult.plot_forest``) with its caption."""
    prob = f"{100 * fit.interval.prob:g}%"
    return embed("forest", f"Forest plot: observed proportions (squares, area proportional "
                 f"to patients) with exact {prob} Clopper-Pearson intervals, shrunken study "
                 f"estimates with {fit.interval.label} intervals, pooled subgroup estimates "
                 "(diamonds, dotted line over their studies) and prediction intervals for a "
                 "new study (bands)", fit.plot_forest(order=order))


def summary_section(fit: FitResult, explained: pd.DataFrame | None = None,
                    forest_order: str = "data") -> Section:
    interval = fit.interval.label
    summary = fit.subgroup_summary()
    single = summary["subgroup"].nunique() == 2  # one group and its 'overall' copy
    rows = []
    for label, group in summary.groupby("subgroup", sort=False):
        if single and label == "overall":
            continue
        first = group.iloc[0]
        cells = {q: group[group["quantity"] == q].iloc[0] for q in ("p_pooled", "p_mean",
                                                                    "p_new")}
        rows.append({
            "subgroup": fit.label_of(label), "studies": int(first["n_studies"]),
            "events/patients": f"{int(first['events'])}/{int(first['total'])}",
            "observed": pct(first["observed"]),
            "p_pooled (median study)": ci_pct(*(cells["p_pooled"][k] for k in
                                                 ("median", "lower", "upper"))),
            "p_mean (population mean)": ci_pct(*(cells["p_mean"][k] for k in
                                                  ("median", "lower", "upper"))),
            "p_new (new study)": ci_pct(*(cells["p_new"][k] for k in
                                           ("median", "lower", "upper"))),
        })
    pooled_table = pd.DataFrame(rows)
    het = fit.heterogeneity()
    het_table = pd.DataFrame({
        "parameter": het["parameter"],
        f"median [{interval}]": [ci_num(m, lo, hi) for m, lo, hi in
                                 zip(het["median"], het["lower"], het["upper"], strict=True)],
        "mean": [num(x) for x in het["mean"]],
    })
    params = fit.parameter_summary()
    param_table = pd.DataFrame({
        "parameter": params["parameter"],
        f"median [{interval}]": [ci_num(m, lo, hi) for m, lo, hi in
                                 zip(params["median"], params["lower"], params["upper"],
                                     strict=True)],
        "mean": [num(x) for x in params["mean"]], "sd": [num(x) for x in params["sd"]],
        "R-hat": [num(x) for x in params["r_hat"]],
        "bulk ESS": [num(x, ".0f") for x in params["ess_bulk"]],
    })

    moderated = bool(fit.spec.moderators)
    subsections = []
    if moderated:
        mods = fit.moderator_summary()
        subsections.append(Section(
            "Moderators (meta-regression coefficients)",
            "beta on the logit scale per coded unit (per SD of a numeric moderator by "
            "default, or a level against its reference level); odds ratios per unit of "
            "the moderator as recorded and per SD of its values; P(beta > 0) is a "
            f"posterior probability. The pooled probabilities above are at {at_text(fit)}.",
            table=pd.DataFrame({
                "term": mods["term"], "reference": mods["reference"],
                f"beta, median [{interval}]": [ci_num(m, lo, hi) for m, lo, hi in zip(
                    mods["median"], mods["lower"], mods["upper"], strict=True)],
                "OR per unit": [ci_num(m, lo, hi, ".3g") for m, lo, hi in zip(
                    mods["or_unit_median"], mods["or_unit_lower"], mods["or_unit_upper"],
                    strict=True)],
                "OR per SD": ["-" if kind != "numeric" else ci_num(m, lo, hi, ".3g")
                              for kind, m, lo, hi in zip(
                                  mods["kind"], mods["or_sd_median"], mods["or_sd_lower"],
                                  mods["or_sd_upper"], strict=True)],
                "P(beta > 0)": [prob(x) for x in mods["p_gt_0"]],
                "R-hat": [num(x) for x in mods["r_hat"]],
            })))
        subsections.append(explained_section(fit, explained))
    het_text = ("Heterogeneity on the logit scale: tau is the between-study SD, tau2 its "
                "square, i2 the Bayesian I-squared as a proportion (docs/model.md)"
                if "tau" in fit.posterior else "No between-study SD: common-effect model"
                if likelihood_of(fit.spec) == "binomial" else
                "Beta-binomial overdispersion: phi, and rho = phi^2 / (1 + phi^2), the "
                "intra-study correlation")
    return Section(
        "Posterior summaries",
        f"Posterior medians with {interval} intervals. Shrunken study estimates are each "
        "row's logit^-1(mu + alpha_d + u_s" + (" + x_i'beta" if moderated else "")
        + "): the hierarchical model pulls small studies towards their subgroup."
        + (f" Pooled probabilities are at {at_text(fit)}." if moderated else ""),
        table=pooled_table, table_caption=f"Pooled probabilities, median [{interval}]"
        + (f", at {at_text(fit)}" if moderated else ""),
        figures=(forest_figure(fit, forest_order),),
        subsections=(
            Section("Heterogeneity", het_text + ".", table=het_table),
            Section("Model parameters (logit scale)", "", table=param_table),
            *subsections,
        ),
        anchor="summaries")


def _ci(table: pd.DataFrame, prefix: str = "") -> list[str]:
    return [ci_pct(m, lo, hi) if scale == "difference" else ci_num(m, lo, hi)
            for m, lo, hi, scale in zip(table[f"{prefix}median"], table[f"{prefix}lower"],
                                        table[f"{prefix}upper"], table["scale"], strict=True)]


def contrast_section(fit: FitResult, contrasts: Sequence[Contrast] | None,
                     unpooled: FitResult | None = None) -> Section:
    """The contrasts; ``unpooled`` (the fit with fixed subgroup effects,
    :func:`refit_unpooled`) adds the unpooled contrast beside each row."""
    if fit.spec.subgroup_effects == "none":
        return Section("Contrasts between subgroups",
                       "None: the model has no subgroup effects (single-group model).",
                       anchor="contrasts")
    listed_or_none = list(contrasts) if contrasts else None
    if unpooled is not None:
        from bayes_poem.unpooled import unpooled_contrasts

        table = unpooled_contrasts(fit, listed_or_none, unpooled=unpooled)
    else:
        table = fit.contrasts(listed_or_none)
    label = fit.interval.label
    shown = pd.DataFrame({
        "contrast": [f"{fit.label_of(a)} vs {fit.label_of(b)}"
                     for a, b in zip(table["a"], table["b"], strict=True)]
        if fit.labels else table["contrast"],
        "quantity": table["quantity"], "scale": table["scale"],
        ("partially pooled, " if unpooled is not None else "") + f"median [{label}]":
            _ci(table),
        "P(> null)": [prob(x) for x in table["p_gt_null"]],
        "margin": [pct(m, 0) if s == "difference" else num(m, "g")
                   for m, s in zip(table["margin"], table["scale"], strict=True)],
        "P(> margin)": [prob(x) for x in table["p_gt_margin"]],
    })
    if unpooled is not None:
        shown[f"unpooled, median [{label}]"] = _ci(table, "unpooled_")
        shown["unpooled P(> null)"] = [prob(x) for x in table["unpooled_p_gt_null"]]
    probs = fit.subgroup_probabilities()
    listed = list(contrasts) if contrasts else [
        Contrast(a, b) for i, a in enumerate(fit.spec.subgroups)
        for b in fit.spec.subgroups[i + 1:]]
    draws, margins = {}, {}
    for contrast in listed:
        quantity = probs[contrast.quantity]
        diff = contrast_draws(quantity.sel({SUBGROUP: contrast.a}),
                              quantity.sel({SUBGROUP: contrast.b}))["difference"]
        name = f"{fit.label_of(contrast.a)} vs {fit.label_of(contrast.b)}"
        draws[name] = diff.values.ravel()
        margins[name] = contrast.margin
    figure = plots.contrast_density_plot(draws=draws, margins=margins)
    return Section(
        "Contrasts between subgroups",
        "Posterior of each contrast on three scales. P(> null) is the posterior probability "
        "that subgroup a has the higher rate; P(> margin) that the difference exceeds the "
        "decision margin (for harms: that a has at least that many more events per patient). "
        "These are posterior probabilities, not p-values."
        + ("" if unpooled is None else
           " The subgroup effects are random (partially pooled), which shrinks every contrast "
           "towards 0; the unpooled columns give the same contrast from the model refitted "
           "with fixed subgroup effects (same data, priors, sampler settings and seed)."
           + ("" if unpooled.diagnostics.ok else " That refit's diagnostics failed: "
              + "; ".join(unpooled.diagnostics.problems) + ".")),
        table=shown, figures=(embed("contrasts", "Posterior densities of the differences "
                                      "(a - b); the red line is the decision margin and the "
                                      "shaded area P(> margin)", figure),),
        anchor="contrasts")


