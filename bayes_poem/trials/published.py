"""Published figures on anterior versus posterior myotomy, each with citation and mark.

Every number is stored as ``{"value": ..., "mark": ...}``; ``"verified"`` means
checked against the abstract or a published table. Proportions are fractions.
Risk ratios (RR) and odds ratios (OR) are as published; where the abstract
states which arm has the lower risk, ``direction`` says so, otherwise the ratio
is read as posterior versus anterior (``direction`` says that this is an
assumption). These are the authors' frequentist random-effects estimates with
95% confidence intervals, set beside our posteriors by
:meth:`bayes_poem.trials.meta.BinomialMetaResult.published_comparison`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["COMPARATORS", "KHASHAB_2020", "META_ANALYSES", "REGISTRY", "TAN_2018",
           "comparison_notes", "published_rows", "value"]

VERIFIED = "verified"
ASSUMED_DIRECTION = "read as posterior vs anterior (the abstract does not name the reference arm)"


def _v(number: float, mark: str = VERIFIED) -> dict[str, Any]:
    return {"value": float(number), "mark": mark}


def _effect(measure: str, estimate: float, lower: float, upper: float, label: str,
            direction: str = ASSUMED_DIRECTION) -> dict[str, Any]:
    return {"measure": measure, "estimate": _v(estimate), "ci_lower": _v(lower),
            "ci_upper": _v(upper), "label": label, "direction": direction}


RODRIGUEZ_2019: dict[str, Any] = {
    "citation": ("Rodriguez de Santiago E et al., Anterior versus posterior myotomy during POEM "
                 "for the treatment of achalasia: systematic review and meta-analysis of "
                 "randomized clinical trials. J Gastrointestin Liver Dis 2019;28:107-115, "
                 "doi:10.15403/jgld.2014.1121.281.pom (PMID 30851179)"),
    "short": "Rodriguez de Santiago 2019",
    "design": "4 RCTs, 488 patients, random effects",
    "studies": _v(4),
    "patients": _v(488),
    "effects": {
        "clinical_success_rate": {"measure": "proportion", "estimate": _v(0.97),
                                  "ci_lower": _v(0.93), "ci_upper": _v(1.00),
                                  "label": "overall clinical success 3-12 months, both arms",
                                  "direction": "both arms pooled"},
        "clinical_success": _effect("RR", 0.98, 0.96, 1.01, "clinical success 3-12 months"),
        "gerd_ph": _effect("RR", 0.98, 0.75, 1.28, "GERD by 24-hour pH monitoring"),
        "gerd_endoscopy": _effect("RR", 1.04, 0.78, 1.38, "GERD by endoscopy"),
        "adverse_event": _effect("RR", 0.63, 0.42, 0.94, "adverse events",
                                 "posterior vs anterior (abstract: fewer AEs with posterior)"),
        "mucosotomy": _effect("RR", 0.42, 0.27, 0.66, "mucosotomy",
                              "posterior vs anterior (abstract: lower risk with posterior)"),
    },
}

MOHAN_2020: dict[str, Any] = {
    "citation": ("Mohan BP et al., Clinical outcomes of anterior versus posterior myotomy in "
                 "POEM: a systematic review and meta-analysis. Endoscopy 2020;52:251-258"),
    "short": "Mohan 2020",
    "design": ("18 studies, 1247 patients (623 anterior, 624 posterior), not restricted to "
               "randomised comparisons; pooled arm-level rates compared"),
    "studies": _v(18),
    "patients": _v(1247),
    "effects": {
        "clinical_success": _effect("OR", 1.02, 0.52, 2.0, "clinical success"),
        "gerd_endoscopy": _effect("OR", 1.02, 0.62, 1.68, "GERD by endoscopy (EGD)"),
        "gerd_ph": _effect("OR", 0.98, 0.59, 1.63, "GERD by pH monitoring"),
        "procedure_time_anterior": {"measure": "minutes", "estimate": _v(82.7),
                                    "label": "pooled total procedure time, anterior",
                                    "direction": "anterior arm"},
        "procedure_time_posterior": {"measure": "minutes", "estimate": _v(62.1),
                                     "label": "pooled total procedure time, posterior",
                                     "direction": "posterior arm"},
    },
}

GRP_2022: dict[str, Any] = {
    "citation": ("Anterior versus posterior approach of peroral endoscopic myotomy: a "
                 "meta-analysis. Gastroenterol Res Pract 2022, article 8357588"),
    "short": "Gastroenterol Res Pract 2022",
    "design": "19 studies, 1261 patients",
    "studies": _v(19),
    "patients": _v(1261),
    "effects": {
        "eckardt_change_anterior": {"measure": "points", "estimate": _v(-5.83),
                                    "label": "Eckardt score, pre-to-post change, anterior",
                                    "direction": "anterior arm"},
        "eckardt_change_posterior": {"measure": "points", "estimate": _v(-6.07),
                                     "label": "Eckardt score, pre-to-post change, posterior",
                                     "direction": "posterior arm"},
        "les_change_anterior": {"measure": "mmHg", "estimate": _v(-24.56),
                                "label": "LES pressure, pre-to-post change, anterior",
                                "direction": "anterior arm"},
        "les_change_posterior": {"measure": "mmHg", "estimate": _v(-20.14),
                                 "label": "LES pressure, pre-to-post change, posterior",
                                 "direction": "posterior arm"},
        "eckardt": _effect("WMD", 0.08, -0.28, 0.44, "Eckardt score, direct comparison",
                           "as published (reference arm not stated in the abstract)"),
        "les_pressure": _effect("WMD", -1.56, -3.90, 0.78, "LES pressure (mmHg), direct "
                                "comparison", "as published (reference arm not stated)"),
    },
}

META_ANALYSES: dict[str, dict[str, Any]] = {
    "rodriguez2019": RODRIGUEZ_2019,
    "mohan2020": MOHAN_2020,
    "grp2022": GRP_2022,
}

TAN_2018: dict[str, Any] = {
    "citation": "Tan Y et al., Gastrointest Endosc 2018;88:46-54 (PMID 29571969)",
    "short": "Tan 2018",
    "arms": {"anterior": _v(31), "posterior": _v(32)},
    "pooled_both_arms": {
        "eckardt": {"before_mean": _v(6.2), "before_sd": _v(1.3), "after_mean": _v(0.70),
                    "after_sd": _v(0.70)},
        "les_pressure": {"before_mean": _v(37.5), "before_sd": _v(6.7), "after_mean": _v(12.8),
                         "after_sd": _v(2.8)},
    },
    "note": "both arms pooled; per-arm Eckardt and LES values are not published",
}

KHASHAB_2020: dict[str, Any] = {
    "citation": "Khashab MA et al., Gastrointest Endosc 2020;91:288-297 (PMID 31408652)",
    "short": "Khashab 2020",
    "clinical_success_1_year": {"anterior": _v(0.90), "posterior": _v(0.89),
                                "analysed": _v(138)},
    "note": ("1-year clinical success 90% vs 89% among 138 analysed; the dataset's "
             "Khashab2020_long row is the same trial at >= 2 years"),
}

REGISTRY: dict[str, Any] = {
    "NCT02454335": {
        "sponsor": "Johns Hopkins University",
        "hypothesis": ("posterior myotomy is non-inferior to anterior myotomy in Eckardt score "
                       "reduction and LES pressure"),
        "mark": VERIFIED,
    }
}

# Our outcome label -> (meta-analysis key, effect key) pairs that are comparable.
COMPARATORS: dict[str, tuple[tuple[str, str], ...]] = {
    "clinical_success": (("rodriguez2019", "clinical_success"),
                         ("mohan2020", "clinical_success")),
    "adverse_event": (("rodriguez2019", "adverse_event"),),
    "abnormal_acid_exposure": (("rodriguez2019", "gerd_ph"), ("mohan2020", "gerd_ph")),
}

# The shipped trial selection per outcome, which the notes below describe.
SHIPPED_STUDIES: dict[str, tuple[str, ...]] = {
    "clinical_success": ("Khashab2020_long", "Tan2018"),
    "adverse_event": ("Khashab2020",),
    "abnormal_acid_exposure": ("Khashab2020",),
    "technical_success": ("Khashab2020",),
}

_OUTCOME_NOTES: dict[str, tuple[str, ...]] = {
    "clinical_success": (
        "Ours pools two RCTs: Khashab2020_long (>= 2-year follow-up) and Tan2018. Khashab2020 "
        "at 1 year (90% vs 89%, 138 analysed) is the same trial and is not pooled again.",
        "Rodriguez de Santiago 2019 pooled 4 RCTs (488 patients) at 3-12 months on the RR "
        "scale; with success near 97% an RR near 1 is expected whatever the odds ratio.",
        "Mohan 2020 compared pooled arm-level rates of 18 studies not restricted to randomised "
        "comparisons (OR); its arms partly come from different studies and centres, ours only "
        "from within-trial contrasts.",
        "Tan2018 has no failures in either arm, so it says little about the odds ratio; the "
        "pooled OR is driven by Khashab2020_long and by the priors on theta and tau.",
    ),
    "adverse_event": (
        "Ours uses Khashab2020 only (8/73 vs 7/77): with one trial the between-trial SD tau is "
        "informed by its prior alone, which widens the pooled interval.",
        "Rodriguez de Santiago 2019 pooled 4 RCTs (488 patients) and found fewer adverse events "
        "with posterior myotomy (RR 0.63); the shipped dataset has one trial for this outcome, "
        "and adverse-event definitions differ between trials.",
    ),
    "abnormal_acid_exposure": (
        "Ours uses Khashab2020 only: abnormal acid exposure on pH monitoring at 1 year "
        "(29/59 vs 25/60); tau is informed by its prior alone.",
        "Compared with GERD by pH in Rodriguez de Santiago 2019 (RR, 4 RCTs) and Mohan 2020 "
        "(OR, pooled arm-level rates); definitions of GERD by pH differ between studies.",
    ),
    "technical_success": (
        "Ours uses Khashab2020 only (71/73 vs 77/77); no published pooled comparison is "
        "stored for technical success.",
    ),
}

GENERAL_NOTE = ("Published figures are frequentist random-effects estimates with 95% "
                "confidence intervals; ours are posterior medians with credible intervals, the "
                "RR and RD at the pooled anterior rate of the analysed trials.")


def value(entry: dict[str, Any] | None, key: str) -> float:
    """The number stored under ``key`` (``nan`` when absent)."""
    if not entry or key not in entry:
        return float("nan")
    return float(entry[key]["value"])


def published_rows(outcome: str) -> list[dict[str, Any]]:
    """The published effects comparable with ``outcome`` (possibly none)."""
    rows = []
    for source, key in COMPARATORS.get(outcome, ()):
        meta = META_ANALYSES[source]
        effect = meta["effects"][key]
        rows.append({
            "source": meta["short"],
            "citation": meta["citation"],
            "design": meta["design"],
            "published_outcome": effect["label"],
            "measure": effect["measure"],
            "estimate": value(effect, "estimate"),
            "ci_lower": value(effect, "ci_lower"),
            "ci_upper": value(effect, "ci_upper"),
            "mark": effect["estimate"]["mark"],
            "direction": effect["direction"],
        })
    return rows


def comparison_notes(outcome: str, studies: Sequence[str]) -> tuple[str, ...]:
    """Why our result may differ from the published ones (trials, outcomes, methods)."""
    notes = [f"Trials analysed for {outcome}: {', '.join(studies)}."]
    if outcome in SHIPPED_STUDIES and tuple(sorted(studies)) == SHIPPED_STUDIES[outcome]:
        notes += list(_OUTCOME_NOTES[outcome])
    elif outcome in COMPARATORS:
        notes.append("The trials differ from the shipped selection "
                     f"({', '.join(SHIPPED_STUDIES.get(outcome, ()))}); the published "
                     "estimates below pool other trials.")
    else:
        notes.append(f"No published pooled comparison is stored for {outcome}.")
    if outcome in COMPARATORS:
        notes.append(GENERAL_NOTE)
    return tuple(notes)
