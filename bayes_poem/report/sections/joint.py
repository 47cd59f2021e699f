"""The report of the joint (efficacy and safety) model: its sections and their assembly.

:func:`build_joint_report` is what :func:`bayes_poem.report.build_report` does for a
:class:`~bayes_poem.joint_results.JointResult`: data (both outcomes), the model
(formulas of :mod:`bayes_poem.joint` in MathML and text, every prior incl. the one on
``rho``), the sampler diagnostics (the one-outcome section), per-outcome subgroup
probabilities, ``tau`` per outcome and ``rho``, the benefit-risk table with one joint
figure per subgroup (:mod:`bayes_poem.joint_plots`), the joint contrasts, the
sensitivity to the prior on ``rho`` when ``bayes-poem sensitivity`` has written its
``benefit_risk_sensitivity.csv`` (:func:`bayes_poem.results_dir.find_joint_sensitivity`),
and the reproducibility footer. Every number comes from ``JointResult``; this module
only lays them out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from bayes_poem.predictive import clopper_pearson
from bayes_poem.report.document import HIGHLIGHT, Formula, Report, Section
from bayes_poem.report.format import (
    ci_num,
    ci_pct,
    embed,
    num,
    pct,
    prob,
    synthetic_text,
)
from bayes_poem.report.mathml import SPACE, fn, math, mi, mn, mo, mrow, mtext, sub, sup

if TYPE_CHECKING:
    from bayes_poem.joint_results import JointResult
    from bayes_poem.joint_specfile import JointAnalysisSpec

__all__ = ["benefit_risk_section", "build_joint_report", "joint_contrast_section",
           "joint_data_section", "joint_model_formulas", "joint_model_section",
           "joint_sensitivity_section", "joint_summary_section"]

QUANTITY_TEXT = {"p_pooled": "the median study's rates (p_pooled)",
                 "p_mean": "the population-averaged rates (p_mean)",
                 "p_new": "the rates of one new study (p_new)"}
RHO_RATIONALE = ("LKJ(eta) on the 2 x 2 correlation of the study effects: p(rho) "
                 "proportional to (1 - rho^2)^(eta - 1); eta = 2 (default) puts 95% of the "
                 "mass in |rho| < 0.81, mildly favouring weak correlations without excluding "
                 "strong ones; eta = 1 is uniform; 'fixed' pins rho (0: two independent "
                 "one-outcome models).")


# ---------------------------------------------------------------------- data
def joint_data_section(result: JointResult, description: str) -> Section:
    spec = result.spec
    frame = spec.table.frame
    lower, upper = clopper_pearson(frame["events"].to_numpy(), frame["total"].to_numpy())
    table = pd.DataFrame({
        "study": frame["study"], "outcome": frame["outcome"], "subgroup": frame["subgroup"],
        "events": frame["events"].astype(int), "total": frame["total"].astype(int),
        "observed": [pct(e / n) for e, n in zip(frame["events"], frame["total"], strict=True)],
        "exact 95% CI": [f"[{pct(lo)}, {pct(hi)}]" for lo, hi in zip(lower, upper,
                                                                       strict=True)],
    })
    meta = spec.table.metadata
    parts = [synthetic_text(spec.table)] if spec.table.is_synthetic else []
    if description:
        parts.append(description)
    source = f"Data: {spec.table.source}"
    if spec.table.label:  # the spec's [data] label, else the dataset's title
        source += f" ({spec.table.label})"
    parts.append(source + ".")
    if meta.get("citation"):
        parts.append(f"Source: {meta['citation']}")
    benefit, harm = spec.outcomes
    counts = []
    for outcome, role in ((benefit, "benefit"), (harm, "harm")):
        mine = frame[frame["outcome"] == outcome]
        counts.append(f"- {outcome} ({role}): {len(mine)} rows from "
                      f"{mine['study'].nunique()} studies, {int(mine['total'].sum())} "
                      f"patients, {int(mine['events'].sum())} events")
    by_study = frame.groupby("study")["outcome"].nunique()
    single = sorted(by_study[by_study < 2].index.astype(str))
    parts.append(f"{len(spec.studies)} studies, subgroups {', '.join(spec.subgroups)}; one "
                 "row per study x subgroup x outcome:\n" + "\n".join(counts))
    parts.append("Studies reporting one outcome only (they inform that outcome alone): "
                 + (", ".join(single) if single else "none") + ". Observed rates have exact "
                 "(Clopper-Pearson) 95% confidence intervals.")
    return Section("Data", "\n\n".join(parts), table=table, anchor="data")


# ---------------------------------------------------------------------- model
def _msqrt(*items: str) -> str:
    return "<msqrt>" + "".join(items) + "</msqrt>"


def joint_model_formulas(spec) -> list[Formula]:
    """The joint model of :mod:`bayes_poem.joint` (MathML and plain text), then its priors."""
    y_i, n_i, p_i = sub(mi("y"), mi("i")), sub(mi("n"), mi("i")), sub(mi("p"), mi("i"))
    o_i, d_i, s_i = sub(mi("o"), mi("i")), sub(mi("d"), mi("i")), sub(mi("s"), mi("i"))
    rho = mi("ρ")

    def indexed(name: str, *index: str) -> str:
        return sub(mi(name), mrow(*[item for k, i in enumerate(index)
                                    for item in ([mo(",")] if k else []) + [i]]))

    formulas = [Formula(math(y_i, mo("∼"), fn("Binomial", n_i, p_i)),
                        "y_i ~ Binomial(n_i, p_i)")]
    terms, text_terms = [indexed("μ", o_i)], ["mu[o_i]"]
    if spec.subgroup_effects != "none":
        terms += [mo("+"), indexed("α", o_i, d_i)]
        text_terms.append("alpha[o_i, d_i]")
    terms += [mo("+"), indexed("u", o_i, s_i)]
    text_terms.append("u[o_i, s_i]")
    formulas.append(Formula(math(fn("logit", p_i), mo("="), *terms),
                            f"logit(p_i) = {' + '.join(text_terms)}"))
    w0, w1 = indexed("w", mn("0"), mi("s")), indexed("w", mn("1"), mi("s"))
    formulas.append(Formula(
        math(indexed("u", mn("0"), mi("s")), mo("="), sub(mi("τ"), mn("0")), w0, mo(","),
             SPACE, indexed("u", mn("1"), mi("s")), mo("="), sub(mi("τ"), mn("1")),
             mo("("), rho, w0, mo("+"), _msqrt(mn("1"), mo("−"), sup(rho, mn("2"))), w1,
             mo(")"), mo(","), SPACE, indexed("w", mi("o"), mi("s")), mo("∼"),
             fn("N", mn("0"), mn("1"))),
        "u[0, s] = tau_0 * w[0, s],  u[1, s] = tau_1 * (rho * w[0, s] + sqrt(1 - rho^2) * "
        "w[1, s]),  w[o, s] ~ N(0, 1)   (study effects bivariate normal: SDs tau_o, "
        "correlation rho; non-centred)"))
    if spec.subgroup_effects == "random":
        z = indexed("z", mi("o"), mi("d"))
        formulas.append(Formula(
            math(indexed("α", mi("o"), mi("d")), mo("="), indexed("σ", mtext("subgroup"),
                                                                   mi("o")), z, mo(","),
                 SPACE, z, mo("∼"), fn("N", mn("0"), mn("1"))),
            "alpha[o, d] = sigma_subgroup[o] * z[o, d],  z[o, d] ~ N(0, 1)   (random "
            "subgroup effects per outcome)"))
    elif spec.subgroup_effects == "fixed":
        raw = sup(sub(mi("α"), mi("o")), mtext("raw"))
        formulas.append(Formula(
            math(sub(mi("α"), mi("o")), mo("="), indexed("s", mi("α"), mi("o")), mi("H"), raw,
                 mo(","), SPACE, raw, mo("∼"),
                 fn("N", mn("0"), sub(mi("I"), mrow(mi("D"), mo("−"), mn("1")))), mo(","),
                 SPACE, mrow(mo("∑"), indexed("α", mi("o"), mi("d"))), mo("="), mn("0")),
            "alpha[o] = s_alpha[o] * H * alpha_raw[o],  alpha_raw[o] ~ N(0, I_(D-1)),  "
            "sum_d alpha[o, d] = 0   (fixed, sum-to-zero subgroup effects per outcome; H: "
            "Helmert basis)"))
    if spec.rho_fixed is None:
        eta = f"{spec.rho_eta:g}"
        formulas.append(Formula(
            math(fn("p", rho), mo("∝"), sup(mrow(mo("("), mn("1"), mo("−"), sup(rho, mn("2")),
                                                 mo(")")), mrow(mn(eta), mo("−"), mn("1"))),
                 SPACE, mtext(f"(LKJ({eta}) on the 2 x 2 correlation)")),
            f"p(rho) proportional to (1 - rho^2)^({eta} - 1)   (LKJ({eta}) on the 2 x 2 "
            "correlation)"))
    else:
        formulas.append(Formula(math(rho, mo("="), mn(f"{spec.rho_fixed:g}"),
                                     SPACE, mtext("(fixed)")),
                                f"rho = {spec.rho_fixed:g}   (fixed)"))
    symbols = {"mu": "μ", "tau": "τ", "sigma_subgroup": "σ", "alpha": "s"}
    for k, outcome in enumerate(spec.outcomes):
        for name in spec.parameter_names():
            prior = spec.priors[outcome][name]
            index = [mi("α"), mn(str(k))] if name == "alpha" else (
                [mtext("subgroup"), mn(str(k))] if name == "sigma_subgroup" else [mn(str(k))])
            symbol = indexed(symbols[name], *index)
            if name == "alpha":
                formulas.append(Formula(
                    math(symbol, mo("="), mn(f"{prior.params['sigma']:g}")),
                    f"s_alpha[{k}] = {prior.params['sigma']:g}   ({outcome})"))
            else:
                formulas.append(Formula(math(symbol, mo("∼"), mtext(prior.describe()),
                                             SPACE, mtext(f"({outcome})")),
                                        f"{name}[{k}] ~ {prior.describe()}   ({outcome})"))
    return formulas


def joint_model_section(result: JointResult) -> Section:
    from bayes_poem.priors import RATIONALE

    spec = result.spec
    benefit, harm = spec.outcomes
    text = [
        f"Joint (bivariate) model of {benefit} (outcome 0, the benefit: higher is better) and "
        f"{harm} (outcome 1, the harm: lower is better). Likelihood binomial; subgroup effects "
        f"{spec.subgroup_effects} per outcome; study effects random and correlated across the "
        "two outcomes. Row i is one study x subgroup x outcome cell with y_i events among n_i "
        "patients, in study s_i, subgroup d_i, outcome o_i. Everything is on the logit scale; "
        "the priors are listed below the likelihood (docs/model.md, joint model).",
        "Reported probabilities per outcome and subgroup d: p_pooled = logit^-1(mu_o + "
        "alpha[o, d]) (a median study); p_mean, its average over the between-study "
        "distribution N(0, tau_o^2); p_new, the rates of one new study, whose two outcomes are "
        "correlated by rho (one pair of study effects per posterior draw), with prediction "
        "intervals. 'overall' averages the subgroups with weights proportional to each "
        "outcome's patients.",
    ]
    rows = []
    for name, described in spec.describe_priors().items():
        base = name.split("[")[0]
        rows.append({"parameter": name, "prior": described,
                     "why": RHO_RATIONALE if base == "rho" else RATIONALE.get(base, "")})
    return Section("Model and priors", "\n\n".join(text), table=pd.DataFrame(rows),
                   table_caption="Priors used by this model (docs/priors.md; the prior on "
                                 "rho: docs/model.md)",
                   formulas=tuple(joint_model_formulas(spec)), anchor="model")


# ---------------------------------------------------------------------- estimates
def joint_summary_section(result: JointResult) -> Section:
    """Per outcome x subgroup probabilities, then tau per outcome and rho."""
    interval = result.interval.label
    summary = result.outcome_summary()
    rows = []
    for (outcome, label), group in summary.groupby(["outcome", "subgroup"], sort=False):
        first = group.iloc[0]
        row = {"outcome": outcome, "subgroup": label, "studies": int(first["n_studies"]),
               "events / total": f"{int(first['events'])} / {int(first['total'])}",
               "observed": pct(first["observed"])}
        for quantity in ("p_pooled", "p_mean", "p_new"):
            q = group[group["quantity"] == quantity].iloc[0]
            row[quantity] = ci_pct(q["median"], q["lower"], q["upper"])
        rows.append(row)
    het = result.heterogeneity()
    names = [p if o == "both" else f"{p}[{o}]" for p, o in
             zip(het["parameter"], het["outcome"], strict=True)]
    fixed = result.spec.rho_fixed is not None
    het_table = pd.DataFrame({
        "parameter": names,
        f"median [{interval}]": [
            f"{m:.3f} (fixed)" if fixed and n == "rho" else ci_num(m, lo, hi)
            for n, m, lo, hi in zip(names, het["median"], het["lower"], het["upper"],
                                    strict=True)],
        "mean": [num(x) for x in het["mean"]],
    })
    return Section(
        "Posterior summaries",
        f"Posterior medians with {interval} intervals, per outcome and subgroup (the p_new "
        "intervals are prediction intervals for one new study).",
        table=pd.DataFrame(rows), table_caption=f"Rates per outcome, median [{interval}]",
        subsections=(Section(
            "Heterogeneity and the correlation of the outcomes",
            "On the logit scale: tau[o] is the between-study SD of outcome o, tau2 its "
            "square, sigma_subgroup[o] the SD of the subgroup effects; rho is the correlation "
            "of a study's effects on the two outcomes (rho > 0: centres with more "
            f"{result.spec.outcomes[0]} also report more {result.spec.outcomes[1]}).",
            table=het_table),),
        anchor="summaries")


def benefit_risk_section(result: JointResult) -> Section:
    """P(benefit >= a), P(harm <= b), P(both), net benefit; one joint figure per subgroup."""
    from bayes_poem.joint_plots import joint_figure

    br = result.benefit_risk
    interval = result.interval.label
    benefit, harm = result.spec.outcomes
    table = result.benefit_risk_table()
    def shown(rows: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({
            "subgroup": rows["subgroup"], "quantity": rows["quantity"],
            f"P({benefit} >= {pct(br.benefit_min, 0)})": [prob(x) for x in rows["p_benefit_ok"]],
            f"P({harm} <= {pct(br.harm_max, 0)})": [prob(x) for x in rows["p_harm_ok"]],
            "P(both)": [prob(x) for x in rows["p_both"]],
            f"net benefit, median [{interval}]": [
                ci_num(m, lo, hi) for m, lo, hi in zip(rows["net_benefit_median"],
                                                       rows["net_benefit_lower"],
                                                       rows["net_benefit_upper"], strict=True)],
        })

    probs = result.probabilities()[br.quantity]
    figures = []
    for label in result.spec.subgroups:
        row = table[(table["subgroup"] == label) & (table["quantity"] == br.quantity)].iloc[0]
        fig = joint_figure(benefit=probs.sel(outcome=benefit, subgroup=label).values,
                           harm=probs.sel(outcome=harm, subgroup=label).values,
                           benefit_min=br.benefit_min, harm_max=br.harm_max,
                           p_both=float(row["p_both"]), subgroup=label,
                           outcomes=result.spec.outcomes, quantity=br.quantity)
        figures.append(embed(f"joint_{label}", f"{label}: posterior draws of ({benefit}, "
                             f"{harm}) ({br.quantity}); the dashed lines are the thresholds "
                             f"and the shaded corner is acceptable on both", fig))
    text = [
        f"Thresholds ([benefit_risk]): {benefit} at least {pct(br.benefit_min, 0)} and "
        f"{harm} at most {pct(br.harm_max, 0)}. P(both) is the posterior probability that a "
        "subgroup's rates meet both at once, counted over the joint posterior draws (so it "
        "uses the correlation of the two rates, not the product of the two probabilities).",
        f"Net benefit = {br.benefit_weight:g} x {benefit} - {br.harm_weight:g} x {harm} per "
        "patient, on the probability scale (docs/model.md).",
        f"The table and the figures are of {QUANTITY_TEXT[br.quantity]} ([benefit_risk] "
        "quantity), as are the joint contrasts; the other quantities follow. These are "
        "posterior probabilities, not p-values.",
    ]
    others = table[table["quantity"] != br.quantity]
    return Section("Benefit and risk together", "\n\n".join(text),
                   table=shown(table[table["quantity"] == br.quantity]),
                   table_caption=f"Benefit-risk probabilities per subgroup ({br.quantity})",
                   figures=tuple(figures), anchor="benefit-risk",
                   subsections=(Section("The other quantities", "p_pooled: "
                                        f"{QUANTITY_TEXT['p_pooled']}; p_mean: "
                                        f"{QUANTITY_TEXT['p_mean']}; p_new: "
                                        f"{QUANTITY_TEXT['p_new']}.", table=shown(others)),))


def joint_contrast_section(result: JointResult,
                           pairs: Sequence[tuple[str, str]] | None) -> Section:
    if result.spec.subgroup_effects == "none" or len(result.spec.subgroups) < 2:
        return Section("Subgroups compared on both outcomes",
                       "None: the model has no subgroup effects.", anchor="contrasts")
    benefit, harm = result.spec.outcomes
    interval = result.interval.label
    table = result.joint_contrasts(list(pairs) if pairs else None)
    shown = pd.DataFrame({
        "a vs b": [f"{a} vs {b}" for a, b in zip(table["a"], table["b"], strict=True)],
        f"P(higher {benefit})": [prob(x) for x in table["p_better_benefit"]],
        f"P(lower {harm})": [prob(x) for x in table["p_better_harm"]],
        "P(better on both)": [prob(x) for x in table["p_better_both"]],
        "P(worse on both)": [prob(x) for x in table["p_worse_both"]],
        f"net benefit a - b, median [{interval}]": [
            ci_num(m, lo, hi) for m, lo, hi in zip(
                table["net_benefit_difference_median"], table["net_benefit_difference_lower"],
                table["net_benefit_difference_upper"], strict=True)],
    })
    return Section(
        "Subgroups compared on both outcomes",
        f"Subgroup a against b on {result.benefit_risk.quantity}: P(better on both) = "
        f"P(a has the higher {benefit} and the lower {harm}), from the joint posterior draws; "
        "P(worse on both) the reverse; each outcome alone; and the difference of the net "
        "benefits. Posterior probabilities, not p-values.",
        table=shown, anchor="contrasts")


def joint_sensitivity_section(frame: pd.DataFrame) -> Section:
    """``benefit_risk_sensitivity.csv``: each probability (rows) under each prior on rho
    (columns), rho per variant, and the flagged changes."""
    data = frame.copy()
    variants = list(dict.fromkeys(data["variant"].astype(str)))
    status = data.groupby("variant", sort=False)["status"].first()
    failed = [v for v in variants if status.get(v) == "failed"]
    ok = [v for v in variants if v not in failed]
    text = [f"From benefit_risk_sensitivity.csv (bayes-poem sensitivity): {len(variants)} "
            "variant(s) of the prior on rho, each the analysis refitted with that prior and "
            "the same sampler settings and seed; 'main' is the analysis itself."]
    if failed:
        text.append("Failed variants (not shown): " + ", ".join(failed) + ".")
    probs = data[data["kind"].isin(["benefit_risk", "joint_contrast"])
                 & data["variant"].isin(ok)]
    rho = data[(data["quantity"] == "rho") & data["variant"].isin(ok)].set_index("variant")
    label = str(rho["interval"].iloc[0]) if "interval" in rho and len(rho) else "interval"
    rows = [{"quantity": f"rho, median [{label}]",
             **{v: (f"{rho.at[v, 'median']:.2f} (fixed)"
                    if rho.at[v, "lower"] == rho.at[v, "upper"]
                    else ci_num(rho.at[v, "median"], rho.at[v, "lower"], rho.at[v, "upper"],
                                ".2f")) if v in rho.index else "" for v in ok},
             HIGHLIGHT: False}]
    for quantity, group in probs.groupby("quantity", sort=False):
        by_variant = group.set_index("variant")
        flags = by_variant["flag"].fillna("").astype(str)
        rows.append({"quantity": quantity,
                     **{v: prob(by_variant.at[v, "probability"]) if v in by_variant.index
                        else "" for v in ok},
                     HIGHLIGHT: bool((flags != "").any())})
    flagged = data[data["flag"].fillna("").astype(str) != ""]
    text.append("No prior on rho changes a conclusion (no flags)." if flagged.empty else
                "Flagged (highlighted rows): a probability on the other side of the decision "
                "threshold than in main: " + "; ".join(
                    f"{r.variant}: {r.quantity} {r.flag}"
                    for r in flagged.itertuples(index=False)) + ".")
    return Section("Sensitivity to the prior on rho", "\n\n".join(text),
                   table=pd.DataFrame(rows),
                   table_caption="Posterior probabilities under each prior on rho",
                   anchor="sensitivity")


# ---------------------------------------------------------------------- assembly
def _footer(result: JointResult, analysis: JointAnalysisSpec | None) -> Section:
    from bayes_poem.report.sections.reproducibility import footer

    if analysis is not None:
        return footer(result, analysis, methods=False)  # the paragraph is one-outcome only
    from bayes_poem.joint_specfile import JointAnalysisSpec

    spec = result.spec
    # The spec as far as the result knows it: data, model, priors, sampler, summary.
    rebuilt = JointAnalysisSpec(
        source="(result)", base_dir=Path("."), title="",
        description="", data={"source": spec.table.source, "outcomes": list(spec.outcomes)},
        model={"subgroup_effects": spec.subgroup_effects}, priors={}, rho_eta=spec.rho_eta,
        rho_fixed=spec.rho_fixed, sampler=result.settings,
        interval=result.interval, benefit_risk=result.benefit_risk)
    section = footer(result, rebuilt, methods=False)
    # without the spec file the data are named by their source only: not a runnable spec
    text = section.text.rsplit("\n\n", 1)[0] + ("\n\nThe model and settings of this fit "
                                                "(built without its spec file: data.source "
                                                "names the data, it is not a runnable spec).")
    return dataclasses.replace(section, text=text)


def build_joint_report(result: JointResult, *, analysis: JointAnalysisSpec | None = None,
                       title: str | None = None,
                       pairs: Sequence[tuple[str, str]] | None = None,
                       sensitivity: pd.DataFrame | None = None,
                       progress: Callable[[str], None] | None = None) -> Report:
    """The report of a joint fit (what :func:`~bayes_poem.report.build_report` returns
    for a :class:`~bayes_poem.joint_results.JointResult`).

    ``pairs`` default to the spec's ``[[contrasts]]``, else every pair; ``sensitivity``
    is a ``benefit_risk_sensitivity.csv`` table (adds its section). Nothing is refitted.
    """
    say = progress or (lambda message: None)
    spec = result.spec
    if pairs is None and analysis is not None and analysis.pairs:
        pairs = list(analysis.pairs)
    benefit, harm = spec.outcomes
    title = title or (analysis.title if analysis is not None and analysis.title else
                      f"Bayesian joint meta-analysis of {benefit} and {harm}")
    description = analysis.description if analysis is not None else ""
    say("posterior summaries, benefit-risk and joint contrasts")
    sections = [joint_data_section(result, description), joint_model_section(result)]
    from bayes_poem.report.sections.model import diagnostics_section

    sections += [diagnostics_section(result), joint_summary_section(result),
                 benefit_risk_section(result), joint_contrast_section(result, pairs)]
    if sensitivity is not None:
        sections.append(joint_sensitivity_section(sensitivity))
    frame = spec.table.frame
    patients = frame.groupby("outcome")["total"].sum()
    subtitle = (f"Outcomes {benefit} and {harm} (joint model) | data {spec.table.source} | "
                f"{len(spec.studies)} studies; {int(patients.get(benefit, 0))} and "
                f"{int(patients.get(harm, 0))} patients")
    return Report(title, subtitle, spec.table.is_synthetic, tuple(sections),
                  _footer(result, analysis),
                  synthetic_note=synthetic_text(spec.table) if spec.table.is_synthetic else "")
