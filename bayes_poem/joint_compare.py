r"""The joint (efficacy-safety) model next to its frequentist counterpart: ``compare``.

:func:`compare_joint` takes a :class:`~bayes_poem.joint_results.JointResult` and fits
the bivariate normal-normal model on the observed logits of the same rows by REML
(:func:`bayes_poem.frequentist.bivariate.bivariate_proportions`, metafor
``rma.mv(..., random = ~ outcome | study, struct = "UN")``), with one fixed effect
per outcome x subgroup (per outcome when ``subgroup_effects = "none"``) and a
confidence level equal to the fit's interval probability. It returns a
:class:`JointComparison`:

* ``subgroups`` -- one row per outcome x subgroup and ``overall``
  (:data:`SUBGROUP_COLUMNS`): the frequentist pooled rate
  :math:`\operatorname{expit}(\hat\beta_{o,d})` with its Wald CI next to the
  Bayesian ``p_pooled`` (the same median-study quantity) and ``p_mean``. The
  frequentist ``overall`` is :math:`\bar p_o = \sum_d \omega_{o,d}\,
  \operatorname{expit}(\hat\beta_{o,d})` with the Bayesian ``overall`` weights
  (the outcome's patient mix), CI by the delta method on
  :math:`\operatorname{logit}\bar p_o`;
* ``heterogeneity`` -- ``tau`` and ``tau2`` per outcome and ``rho``
  (:data:`HETEROGENEITY_COLUMNS`): REML estimates next to posterior medians and
  intervals;
* ``notes`` -- what differs between the two columns and why.

:func:`compare_command` is ``bayes-poem compare`` of a joint spec (the CLI
dispatches to it): the fit as ``run`` does it, then the comparison, written by the
one results writer (:func:`bayes_poem.outputs.reserve`, :func:`bayes_poem.bundle.write_bundle`).
Files: ``comparison_subgroups.csv``, ``comparison_heterogeneity.csv``,
``comparison.txt``.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, logit

from bayes_poem.errors import ConvergenceWarning
from bayes_poem.frequentist.bivariate import POOLED, BivariateResult, bivariate_proportions
from bayes_poem.results import OVERALL

if TYPE_CHECKING:
    import argparse

    from bayes_poem.joint_results import JointResult

__all__ = ["HETEROGENEITY_COLUMNS", "SUBGROUP_COLUMNS", "JointComparison", "compare_command",
           "compare_joint"]

SUBGROUP_COLUMNS = (
    "outcome", "subgroup", "k", "events", "total", "observed",
    "freq_estimate", "freq_ci_lower", "freq_ci_upper", "freq_interval",
    "bayes_p_pooled_median", "bayes_p_pooled_lower", "bayes_p_pooled_upper",
    "bayes_p_mean_median", "bayes_interval",
)
HETEROGENEITY_COLUMNS = ("parameter", "outcome", "freq_estimate", "freq_method",
                         "bayes_median", "bayes_lower", "bayes_upper", "bayes_interval")


@dataclass(frozen=True, eq=False)
class JointComparison:
    """Frequentist (bivariate REML) and Bayesian (joint model) results side by side.

    Attributes
    ----------
    subgroups : pandas.DataFrame
        One row per outcome x subgroup, then ``overall`` per outcome.
    heterogeneity : pandas.DataFrame
        ``tau``, ``tau2`` per outcome and ``rho``.
    notes : tuple of str
        What differs between the two analyses and why.
    fit : JointResult
    frequentist : BivariateResult
        The REML fit behind the ``freq_*`` columns.
    """

    subgroups: pd.DataFrame
    heterogeneity: pd.DataFrame
    notes: tuple[str, ...]
    fit: JointResult = field(repr=False)
    frequentist: BivariateResult = field(repr=False)

    def render_text(self, title: str = "") -> str:
        """The plain-text comparison (formatting only)."""
        from bayes_poem.banner import synthetic_banner

        spec = self.fit.spec
        synthetic = spec.table.is_synthetic
        lines = [synthetic_banner(spec.table)] if synthetic else []
        if title:
            lines.append(title)
        freq_interval = self.subgroups["freq_interval"].iloc[0]
        bayes_interval = self.subgroups["bayes_interval"].iloc[0]
        lines.append(f"Joint model of {spec.outcomes[0]} (benefit) and {spec.outcomes[1]} "
                     f"(harm), {len(spec.studies)} studies: frequentist bivariate REML "
                     f"(within-study correlation {self.frequentist.within_rho:g}) vs Bayesian "
                     f"(subgroup_effects={spec.subgroup_effects}, rho "
                     f"{spec.describe_priors()['rho']})")
        lines += ["", f"Pooled rates: frequentist expit(beta) [{freq_interval}] | Bayesian "
                      f"p_pooled median [{bayes_interval}], p_mean median",
                  f"{'outcome':<18} {'subgroup':<12} {'k':>3} {'observed':>8} | "
                  f"{'frequentist':<24} | {'p_pooled':<24} {'p_mean':>7}"]
        for row in self.subgroups.itertuples(index=False):
            freq = _ci(row.freq_estimate, row.freq_ci_lower, row.freq_ci_upper)
            bayes = _ci(row.bayes_p_pooled_median, row.bayes_p_pooled_lower,
                        row.bayes_p_pooled_upper)
            lines.append(f"{row.outcome[:18]:<18} {row.subgroup[:12]:<12} {row.k:>3} "
                         f"{_pct(row.observed):>8} | {freq:<24} | {bayes:<24} "
                         f"{_pct(row.bayes_p_mean_median):>7}")
        lines += ["", f"Between-study SDs and correlation (logit scale): frequentist REML | "
                      f"Bayesian median [{bayes_interval}]"]
        for row in self.heterogeneity.itertuples(index=False):
            if row.parameter == "tau2":
                continue
            name = "rho" if row.parameter == "rho" else f"tau[{row.outcome}]"
            lines.append(f"  {name:<26} {_num(row.freq_estimate):>7} | "
                         f"{_num(row.bayes_median):>7} [{_num(row.bayes_lower)}, "
                         f"{_num(row.bayes_upper)}]")
        lines += ["", "Notes:"]
        for i, note in enumerate(self.notes, start=1):
            lines.append(f"{i}. {note}")
        if synthetic:
            lines += ["", synthetic_banner(spec.table)]
        return "\n".join(lines)


def _pct(x: float) -> str:
    return "   nan" if not np.isfinite(x) else f"{100 * x:.1f}%"


def _ci(est: float, lower: float, upper: float) -> str:
    if not np.isfinite(est):
        return "-"
    return f"{_pct(est)} [{_pct(lower)}, {_pct(upper)}]"


def _num(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.3f}"


def compare_joint(fit: JointResult, *, within_rho: float = 0.0) -> JointComparison:
    """Fit the frequentist bivariate model to ``fit``'s rows and put the two side by side.

    Parameters
    ----------
    fit : JointResult
        Its interval (``fit.interval``) gives every Bayesian interval and the
        frequentist confidence level (the same probability).
    within_rho : float
        Within-study correlation of the two outcomes of a study x subgroup assumed by
        the frequentist model (default 0; not reported by the studies).
    """
    spec = fit.spec
    level = fit.interval.prob
    freq = bivariate_proportions(spec.table, spec.outcomes, subgroups=spec.subgroups,
                                 subgroup_terms=spec.subgroup_effects != "none",
                                 within_rho=within_rho, level=level)
    summary = fit.outcome_summary()
    subgroups = _subgroup_frame(fit, freq, summary)
    heterogeneity = _heterogeneity_frame(fit, freq)
    return JointComparison(subgroups, heterogeneity, _notes(fit, freq), fit, freq)


def _weights(fit: JointResult) -> pd.DataFrame:
    """The Bayesian ``overall`` weights: each outcome's patient mix over subgroups."""
    frame = fit.spec.table.frame
    totals = frame.groupby(["outcome", "subgroup"])["total"].sum()
    return pd.DataFrame([[float(totals.get((o, d), 0.0)) for d in fit.spec.subgroups]
                         for o in fit.spec.outcomes], index=list(fit.spec.outcomes),
                        columns=fit.spec.subgroups)


def _subgroup_frame(fit: JointResult, freq: BivariateResult,
                    summary: pd.DataFrame) -> pd.DataFrame:
    spec = fit.spec
    crit = stats.norm.ppf(0.5 + freq.level / 2)
    lower, upper = freq.ci()
    freq_interval = f"{100 * freq.level:g}% CI"
    mix = _weights(fit)
    rows = []
    for outcome in spec.outcomes:
        labels = [*spec.subgroups, OVERALL]
        for label in labels:
            bayes = summary[(summary.outcome == outcome) & (summary.subgroup == label)]
            pooled = bayes[bayes.quantity == "p_pooled"].iloc[0]
            p_mean = bayes[bayes.quantity == "p_mean"].iloc[0]
            if label == OVERALL:
                est, lo, hi = _overall(freq, outcome, mix.loc[outcome], crit,
                                       spec.subgroup_effects != "none")
                k = int(spec.table.frame.query("outcome == @outcome")["study"].nunique())
            else:
                key = (outcome, label if spec.subgroup_effects != "none" else POOLED)
                if key in freq.cells:
                    j = freq.cell(*key)
                    est, lo, hi = expit(freq.estimate[j]), expit(lower[j]), expit(upper[j])
                else:
                    est = lo = hi = np.nan
                k = int(pooled["n_studies"])
            rows.append({
                "outcome": outcome, "subgroup": label, "k": k,
                "events": int(pooled["events"]), "total": int(pooled["total"]),
                "observed": pooled["observed"],
                "freq_estimate": est, "freq_ci_lower": lo, "freq_ci_upper": hi,
                "freq_interval": freq_interval,
                "bayes_p_pooled_median": pooled["median"], "bayes_p_pooled_lower": pooled["lower"],
                "bayes_p_pooled_upper": pooled["upper"], "bayes_p_mean_median": p_mean["median"],
                "bayes_interval": pooled["interval"],
            })
    return pd.DataFrame(rows, columns=list(SUBGROUP_COLUMNS))


def _overall(freq: BivariateResult, outcome: str, weights: pd.Series, crit: float,
             subgroup_terms: bool) -> tuple[float, float, float]:
    """Patient-mix average of the pooled rates; delta-method CI on its logit."""
    total = weights.sum()
    gradient = np.zeros(len(freq.cells))
    p_bar = 0.0
    for label, weight in weights.items():
        if weight == 0:
            continue
        j = freq.cell(outcome, label if subgroup_terms else POOLED)
        p = expit(freq.estimate[j])
        p_bar += weight / total * p
        gradient[j] += weight / total * p * (1 - p)
    se = np.sqrt(gradient @ freq.vcov @ gradient) / (p_bar * (1 - p_bar))
    centre = logit(p_bar)
    return float(p_bar), float(expit(centre - crit * se)), float(expit(centre + crit * se))


def _heterogeneity_frame(fit: JointResult, freq: BivariateResult) -> pd.DataFrame:
    het = fit.heterogeneity()
    rows = []
    for parameter, outcome, value in [
            *[(name, o, v) for j, o in enumerate(fit.spec.outcomes)
              for name, v in (("tau", freq.tau[j]), ("tau2", freq.tau2[j]))],
            ("rho", "both", freq.rho)]:
        bayes = het[(het.parameter == parameter) & (het.outcome == outcome)].iloc[0]
        rows.append({"parameter": parameter, "outcome": outcome, "freq_estimate": value,
                     "freq_method": "REML",
                     "bayes_median": bayes["median"], "bayes_lower": bayes["lower"],
                     "bayes_upper": bayes["upper"], "bayes_interval": bayes["interval"]})
    return pd.DataFrame(rows, columns=list(HETEROGENEITY_COLUMNS))


def _notes(fit: JointResult, freq: BivariateResult) -> tuple[str, ...]:
    spec = fit.spec
    notes = []
    if spec.table.is_synthetic:
        notes.append("The data are SYNTHETIC: no column describes real patients.")
    terms = ("one fixed effect per outcome x subgroup" if spec.subgroup_effects != "none"
             else "one fixed effect per outcome")
    notes.append(f"Frequentist model: the bivariate normal-normal model on observed logits, "
                 f"REML, unstructured 2 x 2 between-study covariance (metafor rma.mv, "
                 f"struct = 'UN'), {terms}, within-study correlation of the two outcomes "
                 f"{freq.within_rho:g} (not reported by the studies; an assumption); Wald "
                 f"{100 * freq.level:g}% CIs treat the variances as known. Bayesian: the "
                 f"binomial likelihood of the counts, subgroup effects "
                 f"{spec.subgroup_effects}, credible intervals integrate over tau and rho.")
    corrected = [f"{n} row{'s' if n != 1 else ''} of {o}"
                 for o, n in zip(spec.outcomes, freq.n_corrected, strict=True) if n]
    if corrected:
        notes.append("Continuity correction: 0.5 added to both cells of rows with 0 events or "
                     f"0 non-events ({', '.join(corrected)}); the Bayesian model needs none.")
    notes.append("Estimand: the frequentist rate is the back-transformed pooled logit, a "
                 "median-study rate, matched with the Bayesian p_pooled; p_mean (the "
                 "population average) lies nearer 50% when tau > 0. 'overall' averages the "
                 "subgroups with each outcome's patient mix on both sides.")
    notes.append("rho: with few studies the REML estimate is often on a bound (-1 or 1) or "
                 "not identified (nan when a tau^2 is 0); the Bayesian posterior of rho is "
                 f"shaped by its prior ({spec.describe_priors()['rho']}).")
    if freq.note:
        notes.append(f"Frequentist fit: {freq.note}.")
    if fit.diagnostics.problems:
        notes.append("Sampler diagnostics failed (" + "; ".join(fit.diagnostics.problems)
                     + "): the Bayesian columns may be unreliable.")
    return tuple(notes)


# ---------------------------------------------------------------------- command
def compare_command(args: argparse.Namespace, analysis, out: Path, inputs: Sequence[Path], *,
                    progress: Callable[[str], None]) -> int:
    """``bayes-poem compare`` of a joint spec: ``out`` was checked by the caller."""
    from bayes_poem.bundle import Bundle, write_bundle
    from bayes_poem.exports import JOINT_CAPTIONS, table_files
    from bayes_poem.joint_results import with_options
    from bayes_poem.outputs import reserve

    spec = analysis.model_spec()  # every user error before the directory is reserved
    with reserve(out, force=args.force, protect=inputs, command="compare") as target:
        progress(f"data loaded from {spec.table.source}: {len(spec.studies)} studies, "
                 f"outcomes {' and '.join(spec.outcomes)} (joint model)")
        settings = dataclasses.replace(analysis.sampler, progress=not args.quiet)
        progress(f"sampling {settings.chains} chains x {settings.draws} draws "
                 f"({settings.tune} tuning), seed {settings.seed}")
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the notes
            fit = spec.fit(settings)
        progress(f"sampling done in {time.perf_counter() - started:.1f} s")
        fit = with_options(fit, interval=analysis.interval, benefit_risk=analysis.benefit_risk)
        progress("frequentist bivariate REML and comparison")
        comparison = compare_joint(fit)
        text = comparison.render_text(title=analysis.title)
        tables = {"comparison_subgroups.csv": comparison.subgroups,
                  "comparison_heterogeneity.csv": comparison.heterogeneity}
        write_bundle(Bundle(text=text, text_name="comparison.txt", tables=tables,
                            files=table_files(tables, JOINT_CAPTIONS, title=analysis.title,
                                                synthetic=spec.table.is_synthetic)), target)
    print(text)
    print(f"\nResults written to {out}/")
    return 0

