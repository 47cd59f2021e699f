"""The notes of a :class:`bayes_poem.compare.Comparison`: what differs between the
frequentist and the Bayesian columns, and why (plain sentences).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from bayes_poem.compare_frames import _level
from bayes_poem.contrasts import Contrast
from bayes_poem.frequentist.subgroups import (
    ModelChoice,
    SubgroupResult,
)
from bayes_poem.results import FitResult


def _rule_text(choice: ModelChoice, re_method: str) -> str:
    random = f"random effects ({str(re_method).upper()})"
    if choice.rule == "i2":
        return f"{random} if I^2 > {choice.threshold:g}%, else fixed effect"
    if choice.rule == "q_pvalue":
        return f"{random} if the Q-test p < {choice.alpha:g}, else fixed effect"
    return "always fixed effect" if choice.rule == "fixed" else f"always {random}"


def _notes(fit: FitResult, freq: SubgroupResult, choice: ModelChoice, re_method: str,
           scale: str, level: float, subgroups: pd.DataFrame, contrasts: pd.DataFrame,
           published: Mapping[str, Any] | None, overall_published: bool,
           requested: Sequence[Contrast] | None) -> list[str]:
    spec = fit.spec
    notes = []
    if published is not None:
        notes.append(
            f"The published values ({published['citation']}) come from the real study-level data, "
            "which are not available; this dataset is SYNTHETIC, simulated to resemble the "
            "published aggregates, so closeness to the published values reflects how the "
            "data were simulated and is not a replication.")
        for statement in published.get("statements", ()):
            notes.append(f"Published ({published['short']}): {statement}.")
        if not overall_published:
            notes.append("The published all-patients rate is not shown on the 'overall' row: "
                         "this analysis uses only some of the dataset's subgroups.")
    elif spec.table.is_synthetic:
        notes.append("This dataset is SYNTHETIC (simulated study-level counts): neither "
                      "column describes real patients.")

    results = (*freq.results, freq.overall)
    corrected = [(r.label, int(r.effects.corrected.sum())) for r in results]
    add = results[0].effects.add
    if any(n for _, n in corrected):
        detail = ", ".join(f"{label} {n}" for label, n in corrected if n)
        notes.append(
            f"Frequentist pooled rates use a continuity correction for zero cells: {add:g} is "
            f"added to each cell of studies with 0 events or 0 non-events (studies corrected: "
            f"{detail}); the Bayesian model uses the exact binomial likelihood and needs no "
            "correction.")
    else:
        notes.append("No study needed a continuity correction on the frequentist side; the "
                     "Bayesian model uses the exact binomial likelihood.")

    reasons = "; ".join(f"{row.subgroup}: {row.freq_reason}"
                        for row in subgroups.itertuples(index=False))
    notes.append(f"Frequentist model per row ({_rule_text(choice, re_method)}): {reasons}.")
    if any(r.model == "random" and r.method != "DL" for r in results):
        notes.append("freq_i2 is the chosen model's I^2 (metafor's tau^2/(tau^2 + s^2) for "
                     "random-effects rows), which can differ from the Higgins-Thompson I^2 "
                     "that the rule uses.")

    tau_text = ("one between-study SD tau (logit scale) shared by all subgroups"
                if spec.study_effects == "random"
                else "no between-study variation (common-effect model, tau = 0)")
    structure = {
        "random": "partially pools the subgroups (random subgroup effects), which shrinks "
                  "small subgroups toward the others",
        "fixed": "estimates each subgroup with its own effect (sum-to-zero fixed effects), "
                 "without pooling between subgroups",
        "none": "has one probability for all subgroups (no subgroup effects), so its "
                "per-subgroup cells are empty and its 'overall' row is that single "
                "probability",
    }[spec.subgroup_effects]
    if len(spec.subgroups) == 1:
        structure = "is a single-group model"
    if spec.study_heterogeneity == "by_subgroup" and spec.study_effects == "random":
        notes.append(
            f"Heterogeneity: the frequentist analysis pools each subgroup separately with its "
            f"own tau^2 on the {scale} scale (freq_tau2: 0 under the fixed-effect model; "
            f"freq_re_tau2: the random-effects estimate with its Q-profile CI whatever model "
            "the rule chose). The Bayesian model has one between-study SD per subgroup, "
            "tau[d] (study_heterogeneity = 'by_subgroup'), with one standardised effect per "
            f"study shared by its rows, and {structure}; bayes_tau*, bayes_tau2* and "
            "bayes_i2 are the row's own tau[d], and the 'overall' row has none.")
    else:
        notes.append(
            f"Heterogeneity: the frequentist analysis pools each subgroup separately with its "
            f"own tau^2 on the {scale} scale (0 under the fixed-effect model); the Bayesian "
            f"model has {tau_text} and {structure}. The Bayesian tau, tau^2 and I^2 are "
            "therefore the same on every row.")
    if spec.cell_effects == "random":
        notes.append(
            "Cell effects: the Bayesian model also has study x subgroup cell effects "
            "(tau_cell, the SD of a study's disorders around their subgroup means beyond the "
            "study effect). bayes_tau is the study-level SD only, while bayes_i2 uses "
            "tau^2 + tau_cell^2; a frequentist analysis pooling each subgroup separately "
            "cannot tell the two apart, so its tau^2 is to be read against tau^2 + "
            "tau_cell^2 (heterogeneity.csv of the run has both).")
    if scale != "logit":
        notes.append(f"The frequentist tau^2 is on the {scale} scale and is not comparable "
                     "with the Bayesian tau^2 (logit scale).")
    estimand = {
        "logit": "the back-transformed pooled logit, the proportion of a median study",
        "double_arcsine": "the pooled double arcsine back-transformed with Miller's inverse "
                          "(harmonic-mean sample size)",
        "proportion": "the pooled raw proportion",
    }.get(scale, f"the back-transformed pooled {scale}")
    notes.append(
        f"freq_estimate is {estimand}; it is compared with the posterior median of p_pooled "
        "(median study). p_mean averages over the study distribution and lies nearer 50% "
        "when tau > 0.")
    weights = ("the weights in summary.weights" if fit.weights is not None
               else "weights proportional to each subgroup's patients")
    if len(spec.subgroups) > 1:
        notes.append(
            "The frequentist 'overall' row pools all subgroups together after summing each "
            "study's events and totals (model chosen by the same rule); the Bayesian "
            f"'overall' averages the subgroup probabilities with {weights}.")
    carry = (", which carry the uncertainty in tau" if spec.study_effects == "random"
             else "")
    notes.append(
        f"Frequentist intervals are {_level(level)} Wald confidence intervals that treat "
        f"tau^2 as known; Bayesian intervals are {fit.interval.label} credible "
        f"intervals{carry}.")
    if not contrasts.empty:
        notes.append(
            "Contrasts: the frequentist difference compares the two pooled proportions of "
            "separate subgroup fits (delta-method SE, two-sided z-test); the Bayesian "
            "difference is the posterior of p_a - p_b in one joint model. P(difference > 0) "
            "is a posterior probability, not a p-value.")
        other = sorted(set(contrasts["bayes_quantity"]) - {"p_pooled"})
        if other:
            notes.append(f"Some Bayesian contrasts use {', '.join(other)} rather than "
                         "p_pooled; the frequentist difference is always of pooled "
                         "(median-study) proportions.")
    elif spec.subgroup_effects == "none" and len(spec.subgroups) > 1 and requested is None:
        notes.append("No contrasts: the Bayesian model has no subgroup effects.")
    if not fit.diagnostics.ok:
        notes.append("Sampler diagnostics failed (" + "; ".join(fit.diagnostics.problems)
                     + "); the Bayesian columns may be unreliable.")
    return notes
