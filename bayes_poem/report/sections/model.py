"""The report's first sections: the data, the model and its priors (formulas in
MathML and plain text), and the sampler diagnostics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from bayes_poem.diagnostics import BFMI_MIN, ESS_PER_CHAIN_MIN, RHAT_MAX
from bayes_poem.predictive import clopper_pearson, likelihood_of
from bayes_poem.report.document import HIGHLIGHT, Formula, Section
from bayes_poem.report.format import at_text, num, pct, synthetic_text
from bayes_poem.report.mathml import SPACE, fn, math, mi, mn, mo, mrow, mtext, sub, sup
from bayes_poem.structure import recorded_line

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.spec import ModelSpec


def data_section(fit: FitResult, description: str) -> Section:
    spec = fit.spec
    frame = spec.table.frame
    lower, upper = clopper_pearson(frame["events"].to_numpy(), frame["total"].to_numpy())
    table = pd.DataFrame({
        "study": frame["study"], "subgroup": frame["subgroup"],
        "events": frame["events"].astype(int), "total": frame["total"].astype(int),
        "observed": [pct(e / n) for e, n in zip(frame["events"], frame["total"], strict=True)],
        "exact 95% CI": [f"[{pct(lo)}, {pct(hi)}]" for lo, hi in zip(lower, upper,
                                                                       strict=True)],
    })
    for column in spec.table.covariates:
        table[column] = frame[column].astype(str)
    zeroed = set(getattr(spec, "zeroed_rows", ()))
    if zeroed:
        table[HIGHLIGHT] = [i in zeroed for i in range(len(frame))]
    meta = spec.table.metadata
    parts = []
    if spec.table.is_synthetic:
        parts.append(synthetic_text(spec.table))
    if description:
        parts.append(description)
    source = f"Data: {spec.table.source}"
    if spec.table.label:  # the spec's [data] label, else the dataset's title
        source += f" ({spec.table.label})"
    parts.append(source + ".")
    if meta.get("citation"):
        parts.append(f"Source: {meta['citation']}")
    parts.append(
        f"Outcome {spec.outcome}: {len(frame)} rows (study x subgroup cells) from "
        f"{len(spec.studies)} studies, {int(frame['total'].sum())} patients, "
        f"{int(frame['events'].sum())} events; subgroups {', '.join(spec.subgroups)}. "
        "Observed rates have exact (Clopper-Pearson) 95% confidence intervals.")
    return Section("Data", "\n\n".join(parts), table=table, anchor="data")


def model_formulas(spec: ModelSpec) -> list[Formula]:
    y_i, n_i, p_i = sub(mi("y"), mi("i")), sub(mi("n"), mi("i")), sub(mi("p"), mi("i"))
    mu, tau = mi("μ"), mi("τ")
    alpha_di = sub(mi("α"), sub(mi("d"), mi("i")))
    u_si = sub(mi("u"), sub(mi("s"), mi("i")))
    beta_binomial = likelihood_of(spec) == "beta_binomial"
    formulas = []
    if beta_binomial:
        kappa = mi("κ")
        formulas.append(Formula(
            math(y_i, mo("∼"), fn("BetaBinomial", n_i, mrow(p_i, kappa),
                                     mrow(mo("("), mn("1"), mo("−"), p_i, mo(")"), kappa)),
                  mo(","), SPACE, kappa, mo("="), mn("1"), mo("/"),
                  sup(mi("φ"), mn("2"))),
            "y_i ~ BetaBinomial(n_i, p_i*kappa, (1 - p_i)*kappa),  kappa = 1/phi^2"))
    else:
        formulas.append(Formula(math(y_i, mo("∼"), fn("Binomial", n_i, p_i)),
                                "y_i ~ Binomial(n_i, p_i)"))
    terms, text_terms = [mu], ["mu"]
    if spec.subgroup_effects != "none":
        terms += [mo("+"), alpha_di]
        text_terms.append("alpha[d_i]")
    by_subgroup = spec.study_heterogeneity == "by_subgroup"
    tau_di = sub(mi("τ"), sub(mi("d"), mi("i")))
    w_si = sub(mi("w"), sub(mi("s"), mi("i")))
    if spec.study_effects == "random" and by_subgroup:
        terms += [mo("+"), tau_di, w_si]
        text_terms.append("tau[d_i] * w[s_i]")
    elif spec.study_effects == "random":
        terms += [mo("+"), u_si]
        text_terms.append("u[s_i]")
    x_i = sub(mi("x"), mi("i"))
    if spec.moderators:
        terms += [mo("+"), f"<msubsup>{mi('x')}{mi('i')}{mo('⊤')}</msubsup>", mi("β")]
        text_terms.append("x_i' beta")
    cells = spec.cell_effects == "random"
    if cells:
        terms += [mo("+"), sub(mi("τ"), mtext("cell")),
                  sub(mi("v"), sub(mi("c"), mi("i")))]
        text_terms.append("tau_cell * v[c_i]")
    formulas.append(Formula(math(fn("logit", p_i), mo("="), *terms),
                            f"logit(p_i) = {' + '.join(text_terms)}"))
    if spec.study_effects == "random" and by_subgroup:
        w_s = sub(mi("w"), mi("s"))
        formulas.append(Formula(
            math(w_s, mo("∼"), fn("N", mn("0"), mn("1")), mo(","), SPACE,
                  sub(mi("τ"), mi("d")), mtext(" i.i.d. from the τ prior")),
            "w_s ~ N(0, 1),  tau_d i.i.d. from the tau prior   (study effects with a "
            "between-study SD per subgroup, non-centred)"))
    elif spec.study_effects == "random":
        w_s = sub(mi("w"), mi("s"))
        formulas.append(Formula(
            math(sub(mi("u"), mi("s")), mo("="), tau, w_s, mo(","), SPACE, w_s,
                  mo("∼"), fn("N", mn("0"), mn("1"))),
            "u_s = tau * w_s,  w_s ~ N(0, 1)   (random study effects, non-centred)"))
    if cells:
        v_c = sub(mi("v"), mi("c"))
        formulas.append(Formula(
            math(v_c, mo("∼"), fn("N", mn("0"), mn("1"))),
            "v_c ~ N(0, 1)   (study x subgroup cell effects, non-centred; c_i: the cell of "
            "row i)"))
    if spec.subgroup_effects == "random":
        z_d = sub(mi("z"), mi("d"))
        formulas.append(Formula(
            math(sub(mi("α"), mi("d")), mo("="), sub(mi("σ"), mtext("subgroup")), z_d,
                  mo(","), SPACE, z_d, mo("∼"), fn("N", mn("0"), mn("1"))),
            "alpha_d = sigma_subgroup * z_d,  z_d ~ N(0, 1)   (random subgroup effects)"))
    elif spec.subgroup_effects == "fixed":
        s_alpha = sub(mi("s"), mi("α"))
        raw = sup(mi("α"), mtext("raw"))
        formulas.append(Formula(
            math(mi("α"), mo("="), s_alpha, mi("H"), raw, mo(","), SPACE, raw,
                  mo("∼"), fn("N", mn("0"), sub(mi("I"), mrow(mi("D"), mo("−"),
                                                                     mn("1")))),
                  mo(","), SPACE, mrow(mo("∑"), sub(mi("α"), mi("d"))), mo("="),
                  mn("0")),
            "alpha = s_alpha * H * alpha_raw,  alpha_raw ~ N(0, I_(D-1)),  sum_d alpha_d = 0  "
            "(fixed, sum-to-zero subgroup effects; H: Helmert basis)"))
    if spec.moderators:
        coding = _moderator_coding(spec)
        formulas.append(Formula(
            math(x_i, mo("="), mo("("), *[item for k, term in enumerate(coding) for item in
                                              ([mo(",")] if k else []) + [mtext(term)]],
                  mo(")")),
            "x_i = (" + ", ".join(coding) + ")   (row i's coded moderators; x_i = 0 at the "
            "reference values)"))
    symbols = {"mu": mu, "tau": tau, "sigma_subgroup": sub(mi("σ"), mtext("subgroup")),
               "alpha": sub(mi("s"), mi("α")), "phi": mi("φ"),
               "beta": sub(mi("β"), mi("k"))}
    for name, described in spec.describe_priors().items():
        if name == "alpha":
            formulas.append(Formula(
                math(symbols[name], mo("="), mtext(f"{spec.priors['alpha'].params['sigma']:g}"
                                                      )),
                f"s_alpha = {spec.priors['alpha'].params['sigma']:g}"))
            continue
        formulas.append(Formula(math(symbols.get(name, mi(name)), mo("∼"),
                                      mtext(described)),
                                f"beta_k ~ {described}   (each moderator term k)"
                                if name == "beta" else f"{name} ~ {described}"))
    return formulas


def _moderator_coding(spec: ModelSpec) -> list[str]:
    """Each moderator term's coding, e.g. ``(year - 2012) / 3.1``, ``[quality = poor]``."""
    out = []
    for moderator in spec.moderators:
        if moderator.kind == "numeric":
            shift = (f"{moderator.name} - {moderator.centre:g}" if moderator.centre
                     else moderator.name)
            out.append(f"({shift}) / {moderator.scale:g}" if moderator.scale != 1.0
                       else shift)
        else:
            out += [f"[{moderator.name} = {level}]" for level in moderator.levels
                    if level != moderator.reference]
    return out


def model_section(fit: FitResult) -> Section:
    from bayes_poem.priors import RATIONALE

    spec = fit.spec
    likelihood = likelihood_of(spec)
    text = [
        f"{recorded_line(spec, fit.idata.posterior.attrs)}.",
        f"Likelihood {likelihood.replace('_', '-')}; subgroup effects {spec.subgroup_effects}; "
        f"study effects {spec.study_effects}. Row i is one study x subgroup cell with y_i "
        "events among n_i patients, in study s_i and subgroup d_i. Everything is on the "
        "logit scale; the prior distributions are listed below the likelihood.",
        "Reported probabilities per subgroup d: p_pooled = logit^-1(mu + alpha_d) (a median "
        "study); p_mean, its average over the between-study distribution; p_new, the rate "
        "in a new study (a new study effect drawn per posterior draw), whose intervals are "
        "prediction intervals. 'overall' averages the subgroups with weights proportional "
        "to their patients (or the spec's summary.weights).",
    ]
    if spec.moderators:
        text.append(
            "Meta-regression: x_i holds row i's coded moderators ("
            + "; ".join(f"{term} = {code}" for term, code in zip(
                spec.moderator_terms, _moderator_coding(spec), strict=True))
            + "), so x_i = 0 at the reference values, and beta_k are their coefficients on "
            "the logit scale (per SD of a numeric moderator by default, or a level against "
            "its reference). The reported probabilities add x'beta at "
            f"{at_text(fit)}; tau is the residual between-study SD, and every row's "
            "prediction, predictive check and cross-validation uses its own x_i'beta.")
    priors = pd.DataFrame([
        {"parameter": name, "prior": described, "why": RATIONALE.get(name, "")}
        for name, described in spec.describe_priors().items()
    ])
    return Section("Model and priors", "\n\n".join(text), table=priors,
                   table_caption="Priors used by this model (docs/priors.md)",
                   formulas=tuple(model_formulas(spec)), anchor="model")


def diagnostics_section(fit: FitResult) -> Section:
    diagnostics = fit.diagnostics
    settings = fit.settings
    post = fit.posterior
    seconds = post.attrs.get("sampling_seconds", "")
    target = settings.target_accept  # unset (adaptive, joint fits): the target used
    if target is None:
        stats = getattr(fit.idata, "sample_stats", None)
        target = float(getattr(stats, "attrs", {}).get("target_accept", "nan"))
    text = [
        f"Sampler: {settings.backend} NUTS, {settings.chains} chains x {settings.draws} draws "
        f"after {settings.tune} tuning steps, target_accept {target:g}, seed "
        f"{settings.seed}" + (f", sampled in {seconds} s" if seconds != "" else "") + ".",
        "Checks (Vehtari et al. 2021): rank-normalised split R-hat <= "
        f"{RHAT_MAX}, bulk and tail ESS >= {ESS_PER_CHAIN_MIN} per chain, no divergent "
        f"transitions, E-BFMI >= {BFMI_MIN} in every chain.",
        "Result: " + diagnostics.summary_line() + ("; all checks passed." if diagnostics.ok
                                                   else "."),
    ]
    for problem in diagnostics.problems:
        text.append(f"- WARNING: {problem}")
    table = diagnostics.table.reset_index().rename(columns={"index": "variable"})
    shown = pd.DataFrame({
        "variable": table["variable"],
        "max R-hat": [num(x) for x in table["r_hat"]],
        "min bulk ESS": [num(x, ".0f") for x in table["ess_bulk"]],
        "min tail ESS": [num(x, ".0f") for x in table["ess_tail"]],
        HIGHLIGHT: [(r > RHAT_MAX) or (b < ESS_PER_CHAIN_MIN * settings.chains)
                    or (t < ESS_PER_CHAIN_MIN * settings.chains)
                    for r, b, t in zip(table["r_hat"], table["ess_bulk"], table["ess_tail"],
                                       strict=True)],
    })
    bfmi = ", ".join(num(b, ".2f") for b in diagnostics.bfmi)
    text.append(f"Divergent transitions: {diagnostics.divergences}. E-BFMI per chain: {bfmi}.")
    return Section("Sampler diagnostics", "\n\n".join(text), table=shown,
                   table_caption="Worst value over the elements of each stored variable",
                   anchor="diagnostics")


