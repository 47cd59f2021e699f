"""The report's checks and predictions: prior and posterior predictive checks,
leave-one-study-out cross-validation (with the likelihood comparison) and the
predictions for a new centre.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from bayes_poem import plots
from bayes_poem.dims import SUBGROUP
from bayes_poem.predictive import (
    FLAG_HIGH,
    FLAG_LOW,
    PRIOR_QUANTILES,
    default_exceedance_ks,
    new_centre_prediction,
    posterior_predictive,
    prior_predictive,
)
from bayes_poem.report.document import HIGHLIGHT, Section
from bayes_poem.report.format import at_text, ci_pct, embed, num, pct, prob

if TYPE_CHECKING:
    from bayes_poem.results import FitResult


def prior_section(fit: FitResult) -> Section:
    prior = prior_predictive(fit.spec, seed=fit.settings.seed)
    table = prior.table
    labels = prior.draws[SUBGROUP].values.tolist()
    first = labels[0]
    keep = (table["subgroup"] == first) | (table["quantity"] == "difference")
    table = table[keep]
    names = {"p_pooled": "median-study rate", "p_study": "new-study rate",
             "p_study_covariates": "new-study rate at the data's covariates",
             "difference": "difference of median-study rates"}
    shown = pd.DataFrame({
        "quantity": [names[q] + (f" ({g})" if q == "difference" else "")
                     for q, g in zip(table["quantity"], table["subgroup"], strict=True)]})
    for q in PRIOR_QUANTILES:
        shown[f"{100 * q:g}%"] = [pct(x) for x in table[f"q{100 * q:g}"]]
    shown["P(< 5%)"] = [pct(x) for x in table["p_below_5pct"]]
    shown["P(> 95%)"] = [pct(x) for x in table["p_above_95pct"]]
    if "p_abs_gt_10pts" in table:
        shown["P(|difference| > 10 pts)"] = [pct(x) for x in table["p_abs_gt_10pts"]]
    rates = {q: prior.draws[q].sel({SUBGROUP: first}).values for q in ("p_pooled", "p_study")}
    difference = prior.draws["difference"].values if "difference" in prior.draws else None
    figure = plots.prior_predictive_plot(
        rates=rates, difference=difference,
        label=first if len(labels) == 1 else "any subgroup",
        difference_label=prior.draws.attrs.get("difference", ""))
    text = ("What the priors alone imply, before seeing the data: 4000 draws of the parameters "
            "from their priors, turned into the rate of a median study, logit^-1(mu + alpha_d), "
            "and of a new study, logit^-1(mu + alpha_d + tau w) with w ~ N(0, 1). Priors that "
            "put much mass below 5% or above 95% would be informative in a way that should be "
            "deliberate.")
    if len(labels) > 1:
        text += (" The priors treat the subgroups exchangeably, so every subgroup has the same "
                 "prior rate and every pair of subgroups the same prior difference (shown for "
                 f"{prior.draws.attrs.get('difference', 'one pair')}).")
    if fit.spec.moderators:
        text += ("\n\nWith moderators the median-study and new-study rates are at the "
                 "moderators' reference values (x = 0), where beta does not enter; the "
                 "new-study rate at the data's covariates takes, per draw, the coded "
                 "moderators x of a randomly chosen row of that subgroup and beta from its "
                 "prior, logit^-1(mu + alpha_d + x'beta + tau w).")
    if prior.notes:
        text += "\n\n" + "\n\n".join(prior.notes)
    figures = [embed("prior_predictive", "Prior distribution of the rates (and "
                     "of a difference between two subgroups)", figure)]
    prior_draws, posterior_draws = _prior_and_posterior(fit)
    if posterior_draws:
        text += ("\n\nPrior against posterior: the density of each hyperparameter's "
                 "posterior draws beside draws from its prior (the 'prior' group of "
                 "posterior.nc, as many draws as the posterior). A posterior much narrower "
                 "than its prior was learnt from the data; one that follows its prior was "
                 "not.")
        figures.append(embed("prior_posterior", "Prior and posterior densities of "
                             + ", ".join(posterior_draws),
                             plots.prior_posterior_plot(
                                 prior=prior_draws, posterior=posterior_draws,
                                 positive=SCALE_PARAMETERS)))
    return Section("Prior predictive check", text, table=shown,
                   table_caption="Prior quantiles", figures=tuple(figures),
                   anchor="prior-predictive")


# the hyperparameters shown prior against posterior, and which are scales (positive)
PRIOR_POSTERIOR = ("mu", "tau", "sigma_subgroup", "phi", "tau_cell", "beta")
SCALE_PARAMETERS = frozenset({"tau", "sigma_subgroup", "phi", "tau_cell"})


def _prior_and_posterior(fit: FitResult) -> tuple[dict, dict]:
    """Label -> draws of each hyperparameter, prior (:func:`loglik.prior_group`) and
    posterior; a parameter with a dimension (``tau[subgroup]``, ``beta[moderator]``)
    gives one label per element."""
    from bayes_poem.loglik import prior_group

    posterior = fit.posterior
    prior = prior_group(fit)
    out_prior, out_post = {}, {}
    for name in PRIOR_POSTERIOR:
        if name not in posterior:
            continue
        extra = [d for d in posterior[name].dims if d not in ("chain", "draw")]
        if not extra:
            out_prior[name], out_post[name] = prior[name].values, posterior[name].values
            continue
        for label in posterior[extra[0]].values.tolist():
            where = {extra[0]: label}
            key = f"{name}[{label}]"
            out_prior[key] = prior[name].sel(where).values
            out_post[key] = posterior[name].sel(where).values
    return out_prior, out_post


def ppc_section(fit: FitResult) -> Section:
    ppc = posterior_predictive(fit)
    rows = ppc.rows
    row_table = pd.DataFrame({
        "study": rows["study"], "subgroup": rows["subgroup"],
        "observed": [f"{e}/{n}" for e, n in zip(rows["events"], rows["total"], strict=True)],
        "replicated median": [num(x, ".0f") for x in rows["rep_median"]],
        f"replicated {rows['interval'].iloc[0]}": [
            f"[{lo:.0f}, {hi:.0f}]" for lo, hi in zip(rows["rep_lower"], rows["rep_upper"],
                                                       strict=True)],
        "ppp (mid-p)": [num(x) for x in rows["ppp"]],
        "flag": ["FLAG" if f else "" for f in rows["flag"]], HIGHLIGHT: rows["flag"],
    })
    studies = ppc.studies
    study_table = pd.DataFrame({
        "study": studies["study"], "rows": studies["rows"],
        "events/total": [f"{e}/{n}" for e, n in zip(studies["events"], studies["total"],
                                                     strict=True)],
        "ppp (mid-p)": [num(x) for x in studies["ppp"]],
        "flag": ["FLAG" if f else "" for f in studies["flag"]], HIGHLIGHT: studies["flag"],
    })
    stats_frame = ppc.statistics
    stat_table = pd.DataFrame({
        "statistic T": stats_frame["description"],
        "T(observed)": [pct(x) for x in stats_frame["observed"]],
        f"T(replicated), mean [{stats_frame['interval'].iloc[0]}]": [
            f"{pct(m)} [{pct(lo)}, {pct(hi)}]" for m, lo, hi in
            zip(stats_frame["rep_mean"], stats_frame["rep_lower"], stats_frame["rep_upper"],
                strict=True)],
        "ppp (mid-p)": [num(x) for x in stats_frame["ppp"]],
        HIGHLIGHT: (stats_frame["ppp"] < FLAG_LOW) | (stats_frame["ppp"] > FLAG_HIGH),
    })
    flagged = ppc.flagged_studies
    text = [
        "Each posterior draw generates a replicated data set of the same design. A replicated "
        "study gets a NEW study effect tau * z, z ~ N(0, 1), shared by its rows (mixed "
        "replication): the check asks whether each study is plausible as a draw from the "
        "fitted random-effects distribution. (Replicating with the study's own fitted effect "
        "lets every study explain itself, so its p-values cluster near 0.5 and hide "
        "outliers.)",
        "Posterior predictive p-values are mid-p values because counts are discrete: "
        "ppp = P(T_rep > T_obs) + 1/2 P(T_rep = T_obs). A small ppp means the observed "
        "value is higher than the model predicts, a ppp near 1 that it is lower. For a row "
        "or a study total they are computed exactly given each draw (binomial, or the "
        "convolution of the study's rows) and averaged over draws; for the test statistics "
        "they are estimated from one replicated data set per draw. "
        f"Flagged: ppp < {FLAG_LOW} or > {FLAG_HIGH}.",
        ("Flagged studies: " + ", ".join(flagged) + ".") if flagged else
        "No study is flagged.",
    ]
    subsections = []
    if len(rows) > len(studies):
        subsections.append(Section("Rows (study x subgroup)", "", table=row_table))
    subsections.append(Section("Test statistics",
                               "Computed over rows (study x subgroup cells): the lowest and "
                               "highest observed rate and the SD of the observed rates.",
                               table=stat_table,
                               figures=(embed("ppc_statistics", "Test statistics over "
                                                "replicated data (histogram) and observed "
                                                "(line)", plots.ppc_statistics_plot(
                                                    statistics=stats_frame,
                                                    draws=ppc.statistic_draws)),)))
    main_table = study_table if len(rows) > len(studies) else row_table
    return Section(
        "Posterior predictive checks", "\n\n".join(text), table=main_table,
        table_caption="Per study (all its rows summed)" if len(rows) > len(studies) else "",
        figures=(embed("ppc", "Observed rate of each row against the central interval of "
                         "its replicated count (as a rate); ppp at the right",
                         plots.ppc_plot(rows=rows)),),
        subsections=tuple(subsections), anchor="ppc")


def loo_section(fit: FitResult, refit: bool, compare_models: bool) -> Section:
    from bayes_poem.loo import K_THRESHOLD, compare_likelihoods, psis_loo

    loo = psis_loo(fit, refit=refit)
    table = loo.table
    shown = pd.DataFrame({
        "study": table["study"],
        "events/total": [f"{e}/{n}" for e, n in zip(table["events"], table["total"],
                                                     strict=True)],
        "elpd (PSIS)": [num(x) for x in table["elpd_psis"]],
        "Pareto k": [num(x, ".2f") for x in table["pareto_k"]],
        "elpd (exact refit)": [num(x) for x in table["elpd_exact"]],
        "elpd used": [num(x) for x in table["elpd"]],
        "LOO-PIT": [num(x) for x in table["loo_pit"]],
        HIGHLIGHT: table["high_k"],
    })
    high = loo.high_k_studies
    integrated = ("Each study's log-likelihood is the sum over its rows with the study's own "
                  "random effect integrated out (adaptive Gauss-Hermite quadrature per draw), "
                  "which makes the importance ratios depend only on the hyperparameters and "
                  "the Pareto k small; the leave-one-study-out predictive density estimated "
                  "is the same." if loo.integrated else
                  "Each study's log-likelihood is the sum over its rows given the drawn "
                  "parameters.")
    text = [
        "Leave-one-study-out cross-validation by Pareto-smoothed importance sampling "
        "(PSIS-LOO, arviz.loo): elpd_s = log p(y_s | data without study s), the expected log "
        "predictive density of each study's counts. " + integrated,
        f"A study with Pareto k > {K_THRESHOLD:g} makes importance sampling unreliable; it is "
        "then left out for real: the model is refitted without it and its elpd computed by "
        "averaging its likelihood over the refit's posterior draws (log-mean-exp), with its "
        "study effect drawn as tau * z. "
        + (f"Refitted: {', '.join(high)}." if high and refit else
           f"Studies with k > {K_THRESHOLD:g}: {', '.join(high)} (not refitted)." if high else
           f"No study has k > {K_THRESHOLD:g}; no refit was needed."),
        f"Total elpd_loo = {loo.elpd:.2f} (SE {loo.se:.2f}), effective number of parameters "
        f"p_loo = {loo.p_loo:.2f}.",
        "LOO-PIT: for each study, the mid-PIT of its total count under its leave-one-out "
        "predictive distribution, P(T_rep < T) + 1/2 P(T_rep = T); for a well calibrated "
        "model these are close to uniform (the cross-validated counterpart of the "
        "posterior predictive p-value: about 1 - ppp).",
    ]
    text += [f"- {note}" for note in loo.notes]
    figures = (
        embed("pareto_k", "Pareto k per study", plots.pareto_k_plot(
            table=table, threshold=K_THRESHOLD)),
        embed("loo_pit", "LOO-PIT values against uniform quantiles",
                plots.loo_pit_plot(pit=table["loo_pit"].to_numpy())),
    )
    subsections = []
    if compare_models:
        comparison = compare_likelihoods(fit, refit=refit, loo=loo)
        ct = comparison.table
        compared = pd.DataFrame({
            "model": ct["model"], "rank": ct["rank"].astype(int),
            "elpd_loo": [num(x, ".2f") for x in ct["elpd_loo"]],
            "SE": [num(x, ".2f") for x in ct["se"]],
            "elpd_diff": [num(x, ".2f") for x in ct["elpd_diff"]],
            "dSE": [num(x, ".2f") for x in ct["dse"]],
            "p_loo": [num(x, ".2f") for x in ct["p_loo"]],
            "stacking weight": [num(x, ".3f") for x in ct["weight"]],
            "k warning": ["yes" if w else "" for w in ct["warning"]],
        })
        described = ", ".join(comparison.results)
        compare_text = [
            f"Models compared ({described}) on the same studies with the same sampler "
            "settings; the models other than the analysed one were fitted for this "
            "comparison. elpd_diff is the difference from the best model and dSE its "
            "standard error: differences smaller than about 2 dSE are not distinguishable. "
            "The beta-binomial, when available, carries between-study variation in its "
            "overdispersion phi instead of random study effects.",
        ]
        compare_text += [f"- {note}" for note in comparison.notes]
        subsections.append(Section("Comparison of likelihoods (arviz.compare)",
                                   "\n\n".join(compare_text), table=compared))
    return Section("Leave-one-study-out cross-validation (LOO)", "\n\n".join(text),
                   table=shown, figures=figures, subsections=tuple(subsections), anchor="loo")


def prediction_section(fit: FitResult, n: int) -> Section:
    prediction = new_centre_prediction(fit, n)
    summary = prediction.summary
    rows = []
    for label in prediction.rate_draws[SUBGROUP].values.tolist():
        rate = summary[(summary["subgroup"] == label) & (summary["quantity"] == "rate")].iloc[0]
        count = summary[(summary["subgroup"] == label)
                        & (summary["quantity"] == "count")].iloc[0]
        rows.append({
            "subgroup": fit.label_of(label),  # display names ([labels])
            f"rate, median [{rate['interval']}]": ci_pct(rate["median"], rate["lower"],
                                                          rate["upper"]),
            f"events among {n}: mean": num(count["mean"], ".1f"),
            "median": num(count["median"], ".0f"),
            f"{count['interval']} interval": f"[{count['lower']:.0f}, {count['upper']:.0f}]",
        })
    exceed = prediction.exceedance
    ks = default_exceedance_ks(n)
    exceed_table = pd.DataFrame({"k": [f"P(events >= {k})" for k in ks]})
    for label in prediction.rate_draws[SUBGROUP].values.tolist():
        values = exceed.set_index("k")[label]
        exceed_table[fit.label_of(label)] = [prob(values.loc[k]) for k in ks]
    figure = plots.new_centre_plot(pmf=prediction.pmf.rename(
        columns=lambda c: c if c == "count" else fit.label_of(c)), n=n)
    text = (f"A new centre treating {n} patients of one subgroup: its rate is p_new, drawn "
            "per posterior draw from the fitted between-study distribution, and its number of "
            f"events is Binomial({n}, p_new). The predictive distribution of the count is the "
            "average of these binomial distributions over the draws, so the probabilities "
            "below are exact given the draws. "
            "The count interval is central (equal-tailed) on the discrete counts. Set N with "
            "--new-centre-n.")
    if fit.spec.moderators:
        text += f" The new centre's covariates are at {at_text(fit)}."
    return Section(f"Predictions for a new centre (N = {n})", text, table=pd.DataFrame(rows),
                   figures=(embed("new_centre", f"Predictive distribution of the number of "
                                    f"events among {n} patients", figure),),
                   subsections=(Section("Probability of at least k events", "",
                                        table=exceed_table),),
                   anchor="predictions")


