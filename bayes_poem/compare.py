"""Frequentist and Bayesian results side by side (computation and plain text only).

:func:`compare` takes a :class:`~bayes_poem.results.FitResult`, runs the frequentist
subgroup analysis (:func:`~bayes_poem.frequentist.subgroup_analysis`) on the same
rows (same outcome, same subgroups, confidence level = the fit's interval
probability) and returns a :class:`Comparison`:

* ``subgroups`` -- one row per subgroup and ``overall`` (:data:`SUBGROUP_COLUMNS`);
* ``contrasts`` -- one row per contrast on the difference scale (:data:`CONTRAST_COLUMNS`);
* ``moderators`` -- when the fit has moderators: one row per moderator term, the
  Bayesian coefficient next to the frequentist meta-regression (REML, Wald and
  Knapp-Hartung) and the binomial-normal GLMM with the same moderators, coding and
  rows, on the Bayesian coded scale (:data:`MODERATOR_COLUMNS`);
* ``notes`` -- what differs between the two columns and why.

The subgroup table stays a pooling *without* moderators on the frequentist side; with
moderators it says so (:data:`MODERATOR_SUBGROUP_COLUMNS`) and the Bayesian
``p_pooled`` there is at the reference covariate values (or ``fit.at``).

The frequentist comparator is chosen by ``method`` (:data:`METHODS`; ``[compare]
method`` of a spec, ``bayes-poem compare --method``):

* ``"published"`` (default) -- the published analysis: logit with 0.5 added to the
  cells of zero-event (or all-event) studies, fixed or random effects by I^2
  (``choice``, ``re_method``);
* ``"reml"`` / ``"dl"`` -- always random effects, tau^2 by REML or DerSimonian-Laird,
  on the same continuity-corrected logits; with ``knapp_hartung=True`` the pooled
  estimate's SE is the Knapp-Hartung one and its CI uses t with k - 1 df (metafor
  ``test="knha"``, :func:`~bayes_poem.frequentist.metareg.metareg_proportions`
  with no moderators); the contrasts then use these SEs (delta method, z);
* ``"glmm"`` -- the binomial-normal GLMM by maximum likelihood
  (:func:`~bayes_poem.frequentist.glmm.glmm_proportions`): the exact binomial
  likelihood, no continuity correction, Wald CI; contrasts by the delta method.
  Preferred with zero cells, where the corrected logit is biased toward 0.5.

When the table is the embedded ``sed_synthetic`` dataset, the published figures of
:mod:`bayes_poem.published` are added (:data:`PUBLISHED_SUBGROUP_COLUMNS`,
:data:`PUBLISHED_CONTRAST_COLUMNS`); they describe the authors' real study-level
data, not these synthetic counts. Every column is documented in ``docs/compare.md``.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from bayes_poem.contrasts import Contrast
from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist.glmm import glmm_metareg_proportions, glmm_proportions
from bayes_poem.frequentist.metareg import metareg_proportions
from bayes_poem.frequentist.results import GlmmRegResult, MetaRegResult
from bayes_poem.frequentist.subgroups import (
    PAIRWISE_COLUMNS,
    ModelChoice,
    SubgroupResult,
    subgroup_analysis,
)
from bayes_poem.published import published_for, value
from bayes_poem.results import OVERALL, FitResult
from bayes_poem.specfile import COMPARE_METHODS as METHODS
from bayes_poem.specfile import check_method

__all__ = ["CONTRAST_COLUMNS", "METHODS", "MODERATOR_COLUMNS", "MODERATOR_CONTRAST_COLUMNS",
           "MODERATOR_SUBGROUP_COLUMNS",
           "PUBLISHED_CONTRAST_COLUMNS", "PUBLISHED_SUBGROUP_COLUMNS", "SUBGROUP_COLUMNS",
           "Comparison", "compare", "frequentist_moderator_fits"]

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
_METHOD_TEXT = {
    "published": "the published method (continuity-corrected logit, fixed or random by I^2)",
    "glmm": "binomial-normal GLMM (maximum likelihood, exact binomial likelihood)",
    "reml": "random effects, tau^2 by REML, continuity-corrected logit",
    "dl": "random effects, tau^2 by DerSimonian-Laird, continuity-corrected logit",
}




@dataclass(frozen=True, eq=False)
class Comparison:
    """Frequentist and Bayesian results of one outcome, side by side.

    Attributes
    ----------
    subgroups : pandas.DataFrame
        One row per subgroup, then ``overall`` (see ``docs/compare.md``).
    contrasts : pandas.DataFrame
        One row per contrast, difference scale.
    notes : tuple of str
        What differs between the two analyses and why.
    fit : FitResult
        The Bayesian fit compared.
    frequentist : SubgroupResult
        The frequentist analysis behind the ``freq_*`` columns of ``subgroups``.
    scale, re_method, level, choice
        The frequentist options used.
    moderators : pandas.DataFrame
        One row per moderator term (empty without moderators).
    meta_regression, meta_regression_knha : MetaRegResult or None
        The REML meta-regression (Wald z, Knapp-Hartung) behind ``moderators``.
    glmm : GlmmRegResult or None
        The binomial-normal GLMM with moderators (None without moderators, or when it
        cannot be fitted: a note says why).
    """

    subgroups: pd.DataFrame
    contrasts: pd.DataFrame
    notes: tuple[str, ...]
    fit: FitResult = field(repr=False)
    frequentist: SubgroupResult = field(repr=False)
    scale: str = "logit"
    re_method: str = "REML"
    level: float = 0.95
    choice: ModelChoice = field(default_factory=ModelChoice)
    moderators: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(MODERATOR_COLUMNS)))
    meta_regression: MetaRegResult | None = field(default=None, repr=False)
    meta_regression_knha: MetaRegResult | None = field(default=None, repr=False)
    glmm: GlmmRegResult | None = field(default=None, repr=False)
    method: str = "published"
    knapp_hartung: bool = False

    @property
    def method_text(self) -> str:
        """The frequentist comparator in words (``method``, Knapp-Hartung)."""
        return _METHOD_TEXT[self.method] + (", Knapp-Hartung CI (t, k - 1 df)"
                                            if self.knapp_hartung else "")

    @property
    def has_published(self) -> bool:
        return "published" in self.subgroups.columns

    @property
    def synthetic(self) -> bool:
        return self.fit.spec.table.is_synthetic

    def render_text(self, title: str = "") -> str:
        """An aligned plain-text report for the terminal (SYNTHETIC banner when synthetic)."""
        from bayes_poem.banner import synthetic_banner

        spec = self.fit.spec
        interval = self.fit.interval.label
        lines = [synthetic_banner(spec.table)] if self.synthetic else []
        if title:
            lines.append(title)
        lines.append(
            f"Frequentist vs Bayesian | outcome: {spec.outcome} | data: {spec.table.source} | "
            f"{len(spec.studies)} studies, {int(spec.table.frame['total'].sum())} patients")
        if self.method == "published":
            lines.append(
                f"Frequentist (method = published): inverse-variance pooling on the "
                f"{self.scale} scale, {_rule_text(self.choice, self.re_method)}; "
                f"{_level(self.level)} Wald CI")
        else:
            lines.append(f"Frequentist (method = {self.method}): {self.method_text}; "
                         f"{_level(self.level)} CI")
        per_subgroup = (" (one tau per subgroup)" if spec.study_heterogeneity == "by_subgroup"
                        else "")
        lines.append(
            f"Bayesian: binomial-logit model, subgroup effects {spec.subgroup_effects}, study "
            f"effects {spec.study_effects}{per_subgroup}; posterior median [{interval}]")
        lines.append("Diagnostics: " + self.fit.diagnostics.summary_line()
                     + (" -- OK" if self.fit.diagnostics.ok else ""))
        for problem in self.fit.diagnostics.problems:
            lines.append(f"WARNING: {problem}")
        if self.has_published:
            source = published_for(_dataset(self.fit), spec.outcome) or {}
            lines.append(f"Published: {source.get('short', '')} -- values from the REAL "
                         "study-level data, not these data (see the notes)")
        moderated = bool(spec.moderators)
        if moderated:
            lines += ["", f"Pooled proportions at {_at_text(self.fit)}: frequentist "
                      "meta-regression (subgroup + moderators) and Bayesian p_pooled, the same "
                      "quantity; the frequentist pooling WITHOUT moderators is shown too "
                      "(another quantity)"]
        else:
            lines += ["", "Pooled proportions"]
        lines += _subgroup_table(self.subgroups, self.has_published, self.level, interval,
                                 moderated)
        if spec.study_heterogeneity == "by_subgroup" and spec.study_effects == "random":
            lines += ["", "Between-study variance per subgroup (logit scale): frequentist "
                      "random-effects tau^2 of each subgroup's own fit vs Bayesian tau[d]^2"]
            lines += _tau_table(self.subgroups, self.level, self.re_method, interval)
        if not self.contrasts.empty:
            lines += ["", "Contrasts, difference of proportions (a - b)"
                      + (f"; meta-regression and Bayesian at {_at_text(self.fit)}"
                         if moderated else "")]
            lines += _contrast_table(self.contrasts, "published_difference"
                                     in self.contrasts.columns, self.level, interval,
                                     moderated)
        if not self.moderators.empty:
            lines += ["", "Moderators, logit scale per Bayesian coded unit (same moderators, "
                      "coding and rows on both sides)"]
            lines += _moderator_table(self.moderators, self.level, interval)
        if self.notes:
            lines += ["", "Notes"]
            for i, note in enumerate(self.notes, start=1):
                lines.append(textwrap.fill(note, width=100, initial_indent=f"{i:>2}. ",
                                           subsequent_indent="    "))
        if self.synthetic:
            lines += ["", synthetic_banner(spec.table)]
        return "\n".join(lines)


def compare(
    fit: FitResult,
    *,
    contrasts: Sequence[Contrast] | None = None,
    choice: ModelChoice | str | None = None,
    scale: str = "logit",
    re_method: str = "REML",
    method: str = "published",
    knapp_hartung: bool = False,
) -> Comparison:
    """Frequentist subgroup analysis next to the Bayesian fit of the same data.

    Parameters
    ----------
    fit : FitResult
        The Bayesian fit; its interval (kind and probability) and subgroup weights are
        used, and the frequentist confidence level equals the interval probability.
    contrasts : sequence of Contrast, optional
        Contrasts to report (default: every pair of subgroups, as
        :meth:`FitResult.contrasts`). The frequentist difference is the same pair of
        pooled proportions, sign-flipped when ``a`` comes after ``b`` in table order.
    choice : ModelChoice or str, optional
        The frequentist fixed-vs-random rule (default ``ModelChoice()``: random effects
        if I^2 > 50%).
    scale : {"logit", "double_arcsine", "proportion"}
        Frequentist analysis scale.
    re_method : {"REML", "ML", "DL"}
        tau^2 estimator when the random-effects model is chosen (``method="published"``).
    method : {"published", "glmm", "reml", "dl"}
        The frequentist comparator (module docstring); ``"reml"`` and ``"dl"`` always
        use random effects (``choice`` and ``re_method`` are then not used), ``"glmm"``
        the binomial-normal GLMM on the logit scale.
    knapp_hartung : bool
        Knapp-Hartung CI of the pooled estimates (``method`` ``"reml"`` or ``"dl"`` only).

    Raises
    ------
    SpecError
        Unknown subgroup in a contrast, contrasts for a model without subgroup effects,
        or invalid frequentist options.
    """
    method, knapp_hartung = check_method(method, knapp_hartung)
    if method in ("reml", "dl"):
        choice, re_method = ModelChoice(rule="random"), method.upper()
    if method != "published" and scale != "logit":
        raise SpecError(f"scale: method '{method}' works on the logit scale, not '{scale}'")
    if choice is None:
        choice = ModelChoice()
    elif not isinstance(choice, ModelChoice):
        choice = ModelChoice(rule=str(choice))
    spec = fit.spec
    level = float(fit.interval.prob)
    bayes_contrasts = fit.contrasts(list(contrasts) if contrasts is not None else None)
    bayes_summary = fit.subgroup_summary()
    heterogeneity = fit.heterogeneity()
    freq = subgroup_analysis(spec.table, outcome=spec.outcome, subgroups=spec.subgroups,
                             scale=scale, choice=choice, re_method=re_method, level=level)
    glmm_fits: dict[str, Any] = {}
    if knapp_hartung:
        freq = _knapp_hartung(fit, freq, re_method, level)
    elif method == "glmm":
        glmm_fits = _glmm_fits(fit, level)
        freq = dataclasses.replace(freq, pairwise=_glmm_pairwise(glmm_fits, spec.subgroups,
                                                                 level))

    published = published_for(spec.table.metadata.get("dataset"), spec.outcome)
    overall_published = published is not None and _covers_dataset(fit)
    subgroups = _subgroup_frame(fit, freq, choice, bayes_summary, heterogeneity, level,
                                published, overall_published, str(re_method).upper())
    if glmm_fits:
        subgroups = _glmm_subgroups(subgroups, glmm_fits)
    contrast_frame = _contrast_frame(bayes_contrasts, freq, level, published)
    notes = _notes(fit, freq, choice, re_method, scale, level, subgroups, contrast_frame,
                   published, overall_published, contrasts)
    notes = _method_notes(notes, method, knapp_hartung, subgroups)
    options = {"method": method, "knapp_hartung": knapp_hartung}
    if not spec.moderators:
        return Comparison(subgroups, contrast_frame, tuple(notes), fit, freq, scale,
                          str(re_method).upper(), level, choice, **options)
    reml, knha, glmm, glmm_error = frequentist_moderator_fits(fit, level)
    subgroups["freq_moderators"] = "none (pooled without moderators)"
    for name, values in _metareg_subgroups(fit, reml, list(subgroups["subgroup"])).items():
        subgroups[name] = values
    subgroups["bayes_at"] = _at_text(fit)
    contrast_frame = _metareg_contrasts(contrast_frame, fit, reml)
    moderators = _moderator_frame(fit, reml, knha, glmm, level)
    notes += _moderator_notes(fit, reml, glmm, glmm_error)
    return Comparison(subgroups, contrast_frame, tuple(notes), fit, freq, scale,
                      str(re_method).upper(), level, choice, moderators=moderators,
                      meta_regression=reml, meta_regression_knha=knha, glmm=glmm, **options)


# ---------------------------------------------------------------------- comparators
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


# ---------------------------------------------------------------------- moderators
def _at_text(fit: FitResult) -> str:
    from bayes_poem.report_text import _at_text as at_text

    return at_text(fit)


def _frequentist_design(fit: FitResult) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments of :func:`metareg_proportions` reproducing the Bayesian model's
    moderators, coding and rows (see ``docs/compare.md``)."""
    spec = fit.spec
    names = [m.name for m in spec.moderators]
    categorical: dict[str, str | None] = {m.name: m.reference for m in spec.moderators
                                          if m.kind == "categorical"}
    several = len(spec.subgroups) > 1
    if several and spec.subgroup_effects == "none":
        # one probability for every row: all rows, no subgroup term (array input, since
        # a table with several subgroups needs 'subgroup' among the moderators)
        frame = spec.table.frame
        return ((frame["events"].to_numpy(dtype=float), frame["total"].to_numpy(dtype=float)),
                {"moderators": {n: frame[n].tolist() for n in names},
                 "categorical": categorical,
                 "labels": [f"{s} | {g}" for s, g in zip(frame["study"], frame["subgroup"],
                                                         strict=True)]})
    if several:
        names.append("subgroup")
        categorical["subgroup"] = spec.subgroups[0]
    return (spec.table,), {"moderators": names, "categorical": categorical,
                           "outcome": spec.outcome}


def frequentist_moderator_fits(fit: FitResult, level: float | None = None
                               ) -> tuple[MetaRegResult, MetaRegResult,
                                          GlmmRegResult | None, str]:
    """The frequentist meta-regressions matching ``fit``'s moderators and rows.

    Returns the REML fit with Wald z tests, the same with Knapp-Hartung tests, the
    binomial-normal GLMM (None when it cannot be fitted) and, then, why not.
    """
    level = float(fit.interval.prob) if level is None else level
    args, kwargs = _frequentist_design(fit)
    reml = metareg_proportions(*args, method="REML", test="z", level=level, **kwargs)
    knha = metareg_proportions(*args, method="REML", test="knha", level=level, **kwargs)
    try:
        glmm, error = glmm_metareg_proportions(*args, level=level, **kwargs), ""
    except DataError as exc:
        glmm, error = None, str(exc)
    return reml, knha, glmm, error


def _covariate_values(fit: FitResult) -> dict[str, Any]:
    """The raw value of each moderator at which the Bayesian probabilities are reported:
    ``fit.at``, else the reference value (a numeric moderator's centre, a categorical
    one's reference level)."""
    at = dict(fit.at or {})
    return {m.name: at.get(m.name, m.centre if m.kind == "numeric" else m.reference)
            for m in fit.spec.moderators}


def _design_row(reml: MetaRegResult, values: Mapping[str, Any],
                subgroup: str | None) -> np.ndarray:
    """The frequentist design row (raw units) of ``subgroup`` at the moderator ``values``."""
    terms = list(reml.terms)
    x = np.zeros(len(terms))
    x[0] = 1.0  # intercept
    for name, raw in values.items():
        if reml.design.kinds.get(name) == "numeric":
            x[terms.index(name)] = float(raw)
        elif f"{name}[{raw}]" in terms:  # the reference level has no term
            x[terms.index(f"{name}[{raw}]")] = 1.0
    if subgroup is not None and f"subgroup[{subgroup}]" in terms:
        x[terms.index(f"subgroup[{subgroup}]")] = 1.0
    return x


def _metareg_subgroups(fit: FitResult, reml: MetaRegResult,
                       labels: Sequence[str]) -> dict[str, list[Any]]:
    """The frequentist meta-regression's pooled proportion per row of the subgroup table,
    at the Bayesian covariate values (:data:`MODERATOR_SUBGROUP_COLUMNS`).

    Subgroup ``d``: :math:`\\operatorname{logit}^{-1}(x_d^\\top b)` with the Wald CI of
    :math:`x_d^\\top b` back-transformed. ``overall``: the subgroups' proportions averaged
    with the Bayesian ``overall`` weights, :math:`\\bar p = \\sum_d \\omega_d p_d`, CI by
    the delta method on :math:`\\operatorname{logit}\\bar p`. Without a subgroup term
    (one subgroup, or no subgroup effects) every row has the one prediction, except the
    per-subgroup rows of a model without subgroup effects (NaN, as on the Bayesian side).
    """
    level = float(reml.level)
    crit = float(stats.norm.ppf(0.5 + level / 2))
    values = _covariate_values(fit)
    vcov = reml.vcov
    spec = fit.spec
    by_subgroup = "subgroup" in reml.design.moderators
    estimates, lowers, uppers = [], [], []

    def logit_ci(p: float, se_logit: float) -> tuple[float, float, float]:
        eta = float(np.log(p / (1 - p)))
        return p, float(expit(eta - crit * se_logit)), float(expit(eta + crit * se_logit))

    def at(subgroup: str | None) -> tuple[float, np.ndarray]:
        x = _design_row(reml, values, subgroup)
        return float(expit(x @ reml.estimates)), x

    for label in labels:
        if label != OVERALL and (by_subgroup or len(spec.subgroups) == 1):
            p, x = at(label)
            est = logit_ci(p, float(np.sqrt(x @ vcov @ x)))
        elif label != OVERALL:  # no subgroup effects: no per-subgroup rate
            est = (_NAN, _NAN, _NAN)
        elif not by_subgroup:
            p, x = at(None)
            est = logit_ci(p, float(np.sqrt(x @ vcov @ x)))
        else:
            weights = _overall_weights(fit)
            p_bar, grad = 0.0, np.zeros(len(reml.terms))
            for subgroup, w in weights.items():
                p, x = at(subgroup)
                p_bar += w * p
                grad += w * p * (1 - p) * x
            se_p = float(np.sqrt(grad @ vcov @ grad))
            est = logit_ci(p_bar, se_p / (p_bar * (1 - p_bar)))
        estimates.append(est[0])
        lowers.append(est[1])
        uppers.append(est[2])
    terms = " + ".join([*(["subgroup"] if by_subgroup else []),
                        *(m.name for m in spec.moderators)])
    model = (f"{reml.method} meta-regression on {terms} at {_at_text(fit)}; "
             f"{_level(level)} Wald CI")
    return {"freq_metareg_estimate": estimates, "freq_metareg_ci_lower": lowers,
            "freq_metareg_ci_upper": uppers, "freq_metareg_model": [model] * len(labels)}


def _overall_weights(fit: FitResult) -> dict[str, float]:
    """The weights of the Bayesian ``overall`` row: ``summary.weights`` or the patient mix."""
    labels = fit.spec.subgroups
    if fit.weights is not None:
        raw = np.array([float(fit.weights.get(k, 0.0)) for k in labels])
    else:
        totals = fit.spec.active_frame().groupby("subgroup")["total"].sum()
        raw = np.array([float(totals.get(k, 0.0)) for k in labels])
    return dict(zip(labels, raw / raw.sum(), strict=True))


def _metareg_contrasts(frame: pd.DataFrame, fit: FitResult,
                       reml: MetaRegResult) -> pd.DataFrame:
    """Add the meta-regression's difference of two subgroups' proportions at the Bayesian
    covariate values (:data:`MODERATOR_CONTRAST_COLUMNS`): :math:`d = p_a - p_b`,
    delta-method SE from :math:`\\nabla d = p_a(1-p_a)x_a - p_b(1-p_b)x_b`, Wald CI and
    two-sided z test."""
    frame = frame.copy()
    if frame.empty or "subgroup" not in reml.design.moderators:
        for name in MODERATOR_CONTRAST_COLUMNS:
            frame[name] = np.full(len(frame), _NAN)
        return frame
    crit = float(stats.norm.ppf(0.5 + float(reml.level) / 2))
    values = _covariate_values(fit)
    rows = []
    for a, b in zip(frame["a"], frame["b"], strict=True):
        xa, xb = _design_row(reml, values, a), _design_row(reml, values, b)
        pa, pb = float(expit(xa @ reml.estimates)), float(expit(xb @ reml.estimates))
        grad = pa * (1 - pa) * xa - pb * (1 - pb) * xb
        diff, se = pa - pb, float(np.sqrt(grad @ reml.vcov @ grad))
        z = diff / se if se > 0 else _NAN
        rows.append((diff, diff - crit * se, diff + crit * se, z,
                     float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else _NAN))
    for j, name in enumerate(MODERATOR_CONTRAST_COLUMNS):
        frame[name] = [row[j] for row in rows]
    return frame


def _moderator_frame(fit: FitResult, reml: MetaRegResult, knha: MetaRegResult,
                     glmm: GlmmRegResult | None, level: float) -> pd.DataFrame:
    bayes = fit.moderator_summary().set_index("term")
    frame = fit.spec.table.frame
    rows = []
    for moderator in fit.spec.moderators:
        numeric = moderator.kind == "numeric"
        # frequentist slopes are per raw unit; the Bayesian ones per coded unit
        factor = moderator.scale if numeric else 1.0
        if numeric:
            sd = float(pd.to_numeric(frame[moderator.name].astype(str).str.strip()).std(ddof=1))
            per = (f"per SD ({moderator.scale:.4g} units)" if np.isclose(moderator.scale, sd)
                   else f"per {moderator.scale:g} unit{'s' if moderator.scale != 1 else ''}")
        for term in moderator.terms:
            b = bayes.loc[term]
            row = {"term": term, "moderator": moderator.name, "kind": moderator.kind,
                   "reference": (f"{moderator.centre:g}" if numeric
                                 else str(moderator.reference)),
                   "per": per if numeric else f"vs {moderator.reference}",
                   "scale": factor if numeric else _NAN,
                   "bayes_median": float(b["median"]), "bayes_lower": float(b["lower"]),
                   "bayes_upper": float(b["upper"]), "bayes_interval": fit.interval.label,
                   "bayes_p_gt_0": float(b["p_gt_0"])}
            i = reml.terms.index(term)
            row.update({"freq_estimate": factor * reml.estimates[i],
                        "freq_ci_lower": factor * reml.ci_lower[i],
                        "freq_ci_upper": factor * reml.ci_upper[i],
                        "freq_interval": f"{_level(level)} CI",
                        "freq_p_value": float(reml.p_values[i]), "freq_method": "REML",
                        "freq_knha_ci_lower": factor * knha.ci_lower[i],
                        "freq_knha_ci_upper": factor * knha.ci_upper[i],
                        "freq_knha_p_value": float(knha.p_values[i])})
            if glmm is not None:
                j = glmm.terms.index(term)
                row.update({"glmm_estimate": factor * glmm.estimates[j],
                            "glmm_ci_lower": factor * glmm.ci_lower[j],
                            "glmm_ci_upper": factor * glmm.ci_upper[j],
                            "glmm_p_value": float(glmm.p_values[j])})
            else:
                row.update(dict.fromkeys(("glmm_estimate", "glmm_ci_lower", "glmm_ci_upper",
                                          "glmm_p_value"), _NAN))
            rows.append(row)
    return pd.DataFrame(rows, columns=list(MODERATOR_COLUMNS))


def _moderator_notes(fit: FitResult, reml: MetaRegResult, glmm: GlmmRegResult | None,
                     glmm_error: str) -> list[str]:
    spec = fit.spec
    several = len(spec.subgroups) > 1
    notes = [
        f"Pooled proportions with moderators: the Bayesian p_pooled is the meta-regression's "
        f"at {_at_text(fit)}; freq_metareg_* is the frequentist meta-regression below "
        "(subgroup indicators plus the same moderators, REML) evaluated at the same values, "
        "logit^-1(x'b) with a Wald CI (overall: the subgroups' rates averaged with the "
        "Bayesian overall weights, delta-method CI on the logit scale), so the two describe "
        "the same quantity; so do the contrasts' freq_metareg_* columns (difference of the "
        "two rates at those values, delta-method CI and z test). The freq_* columns pool "
        "each subgroup WITHOUT moderators: another quantity, shown for reference. The "
        "moderator table compares the same moderators, reference levels and rows on both "
        "sides.",
        "Moderator scale: Bayesian coefficients are per coded unit (numeric moderators "
        "centred and divided by their scale, 1 SD over the model's rows by default); the "
        "frequentist meta-regression uses the raw values, so its slopes, CIs and the "
        "GLMM's are multiplied by that scale ('per', 'scale' columns). Centring changes "
        "only the intercept, which is not shown.",
        f"Frequentist meta-regression: REML over k = {reml.k} rows (each row its own "
        f"random effect), residual tau^2 = {reml.tau2:.3g}, QM p = {reml.qm_pvalue:.3g}, "
        f"pseudo R^2 = {reml.r2:.3g}%; Wald z intervals (freq_*) and Knapp-Hartung t "
        f"intervals on {reml.k - reml.p} df (freq_knha_*). The Bayesian model has one "
        "random effect per study shared by its rows and a posterior for tau.",
    ]
    if several and spec.subgroup_effects != "none":
        kind = ("random (partially pooled) subgroup effects"
                if spec.subgroup_effects == "random" else "sum-to-zero fixed subgroup effects")
        notes.append(
            f"Subgroups: the Bayesian model has {kind}; the frequentist side adds subgroup "
            f"as a categorical moderator (reference {spec.subgroups[0]!r}, fixed effects), "
            "which leaves the moderator coefficients comparable; its subgroup terms are not "
            "shown.")
    elif several:
        notes.append("Subgroups: the Bayesian model has no subgroup effects, so the "
                     "frequentist meta-regression pools every row without a subgroup term.")
    if spec.study_effects == "common":
        notes.append("The Bayesian model is common-effect (tau = 0); the frequentist "
                     "meta-regression still estimates a residual tau^2 (REML).")
    if glmm is None:
        notes.append(f"The binomial-normal GLMM with moderators could not be fitted: "
                     f"{glmm_error}")
    else:
        notes.append(f"GLMM: binomial-normal model with the same moderators by maximum "
                     f"likelihood (tau^2 = {glmm.tau2:.3g}), Wald z intervals, no continuity "
                     "correction.")
    return notes


# ---------------------------------------------------------------------- frames
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


# ---------------------------------------------------------------------- notes
def _level(level: float) -> str:
    return f"{100 * level:g}%"


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


# ---------------------------------------------------------------------- text tables
def _pct(x: float, digits: int = 1) -> str:
    return "" if not np.isfinite(x) else f"{100 * x:.{digits}f}%"


def _pct_g(x: float) -> str:
    return "" if not np.isfinite(x) else f"{100 * x:g}%"


def _ci(est: float, lower: float, upper: float, fmt: Callable[[float], str] = _pct) -> str:
    if not np.isfinite(est):
        return ""
    if not (np.isfinite(lower) and np.isfinite(upper)):
        return fmt(est)
    return f"{fmt(est)} [{fmt(lower)}, {fmt(upper)}]"


def _num(x: float, fmt: str) -> str:
    return "" if not np.isfinite(x) else format(x, fmt)


def _table(groups: list[tuple[str, list[tuple[str, str, list[str]]]]]) -> list[str]:
    """Columns ``(header, align, cells)`` in named groups, separated by `` | ``."""
    blocks = []
    for name, columns in groups:
        widths = [max(len(h), *(len(c) for c in cells)) for h, _, cells in columns]
        n_rows = len(columns[0][2])

        def cell(text: str, width: int, align: str) -> str:
            return text.rjust(width) if align == ">" else text.ljust(width)

        header = "  ".join(cell(h, w, a) for (h, a, _), w in zip(columns, widths, strict=True))
        body = ["  ".join(cell(c[2][i], w, c[1]) for c, w in zip(columns, widths, strict=True))
                for i in range(n_rows)]
        width = max(len(header), len(name))
        blocks.append([name.ljust(width), header.ljust(width),
                       *(line.ljust(width) for line in body)])
    return [" | ".join(parts).rstrip() for parts in zip(*blocks, strict=True)]


def _subgroup_table(frame: pd.DataFrame, published: bool, level: float,
                    interval: str, moderated: bool = False) -> list[str]:
    r = frame
    groups = [
        ("", [("subgroup", "<", list(r["subgroup"])),
              ("k", ">", [str(k) for k in r["k"]]),
              ("n", ">", [str(n) for n in r["total"]]),
              ("observed", ">", [_pct(x) for x in r["observed"]])]),
    ]
    if moderated:
        groups.append((f"Meta-regression [{_level(level)} CI]", [
            ("estimate", "<", [_ci(*v) for v in zip(
                r["freq_metareg_estimate"], r["freq_metareg_ci_lower"],
                r["freq_metareg_ci_upper"], strict=True)])]))
    groups += [
        (f"Frequentist{' without moderators' if moderated else ''}, estimate "
         f"[{_level(level)} CI]", [
            ("estimate", "<", [_ci(*v) for v in zip(r["freq_estimate"], r["freq_ci_lower"],
                                                    r["freq_ci_upper"], strict=True)]),
            ("model", "<", list(r["freq_model"])),
            ("I^2", ">", [_num(x, ".1f") + "%" if np.isfinite(x) else "" for x in r["freq_i2"]]),
            ("tau^2", ">", [_num(x, ".3f") for x in r["freq_tau2"]]),
            ("Q p", ">", [_num(x, ".3f") for x in r["freq_q_pvalue"]])]),
        (f"Bayesian, median [{interval}]", [
            ("p_pooled", "<", [_ci(*v) for v in zip(
                r["bayes_p_pooled_median"], r["bayes_p_pooled_lower"],
                r["bayes_p_pooled_upper"], strict=True)]),
            ("p_mean", ">", [_pct(x) for x in r["bayes_p_mean_median"]]),
            ("tau^2", ">", [_num(x, ".3f") for x in r["bayes_tau2_median"]])]),
    ]
    if published:
        groups.append(("Published (real data)", [
            ("estimate", "<", [_ci(*v, fmt=_pct_g) for v in zip(
                r["published"], r["published_ci_lower"], r["published_ci_upper"],
                strict=True)]),
            ("I^2", ">", [_num(x, "g") + "%" if np.isfinite(x) else ""
                          for x in r["published_i2"]])]))
    return _table(groups)


def _tau_table(frame: pd.DataFrame, level: float, re_method: str, interval: str) -> list[str]:
    r = frame[frame["subgroup"] != OVERALL]

    def num(est: float, lower: float, upper: float) -> str:
        return _ci(est, lower, upper, fmt=lambda x: f"{x:.3f}")

    groups = [
        ("", [("subgroup", "<", list(r["subgroup"])), ("k", ">", [str(k) for k in r["k"]])]),
        (f"Frequentist random effects ({re_method}), Q-profile {_level(level)} CI", [
            ("tau^2", "<", [num(*v) for v in zip(r["freq_re_tau2"], r["freq_re_tau2_ci_lower"],
                                                 r["freq_re_tau2_ci_upper"], strict=True)]),
            ("chosen model", "<", list(r["freq_model"]))]),
        (f"Bayesian, median [{interval}]", [
            ("tau[d]^2", "<", [num(*v) for v in zip(r["bayes_tau2_median"],
                                                    r["bayes_tau2_lower"],
                                                    r["bayes_tau2_upper"], strict=True)]),
            ("tau[d]", ">", [_num(x, ".3f") for x in r["bayes_tau_median"]]),
            ("I^2", ">", [_num(x, ".1f") + "%" if np.isfinite(x) else ""
                          for x in r["bayes_i2_median"]])]),
    ]
    return _table(groups)


def _moderator_table(frame: pd.DataFrame, level: float, interval: str) -> list[str]:
    r = frame

    def num(est: float, lower: float, upper: float) -> str:
        return _ci(est, lower, upper, fmt=lambda x: f"{x:.3f}")

    groups = [
        ("", [("term", "<", list(r["term"])), ("per", "<", list(r["per"]))]),
        (f"Bayesian, median [{interval}]", [
            ("beta", "<", [num(*v) for v in zip(r["bayes_median"], r["bayes_lower"],
                                                r["bayes_upper"], strict=True)]),
            ("P(>0)", ">", [_num(x, ".3f") for x in r["bayes_p_gt_0"]])]),
        (f"REML [{_level(level)} CI]", [
            ("estimate", "<", [num(*v) for v in zip(r["freq_estimate"], r["freq_ci_lower"],
                                                    r["freq_ci_upper"], strict=True)]),
            ("p", ">", [_num(x, ".3f") for x in r["freq_p_value"]]),
            ("Knapp-Hartung CI", "<", [num(*v) for v in zip(
                r["freq_estimate"], r["freq_knha_ci_lower"], r["freq_knha_ci_upper"],
                strict=True)]),
            ("KH p", ">", [_num(x, ".3f") for x in r["freq_knha_p_value"]])]),
        (f"GLMM [{_level(level)} CI]", [
            ("estimate", "<", [num(*v) for v in zip(r["glmm_estimate"], r["glmm_ci_lower"],
                                                    r["glmm_ci_upper"], strict=True)]),
            ("p", ">", [_num(x, ".3f") for x in r["glmm_p_value"]])]),
    ]
    return _table(groups)


def _contrast_table(frame: pd.DataFrame, published: bool, level: float,
                    interval: str, moderated: bool = False) -> list[str]:
    r = frame
    groups = [("", [("contrast", "<", list(r["contrast"]))])]
    if moderated and "freq_metareg_difference" in r:
        groups.append((f"Meta-regression [{_level(level)} CI]", [
            ("difference", "<", [_ci(*v) for v in zip(
                r["freq_metareg_difference"], r["freq_metareg_ci_lower"],
                r["freq_metareg_ci_upper"], strict=True)]),
            ("p", ">", [_num(x, ".3f") for x in r["freq_metareg_p_value"]])]))
    groups += [
        (f"Frequentist{' without moderators' if moderated else ''} [{_level(level)} CI]", [
            ("difference", "<", [_ci(*v) for v in zip(r["freq_difference"], r["freq_ci_lower"],
                                                      r["freq_ci_upper"], strict=True)]),
            ("z", ">", [_num(x, ".2f") for x in r["freq_z"]]),
            ("p", ">", [_num(x, ".3f") for x in r["freq_p_value"]])]),
        (f"Bayesian, median [{interval}]", [
            ("difference", "<", [_ci(*v) for v in zip(r["bayes_median"], r["bayes_lower"],
                                                      r["bayes_upper"], strict=True)]),
            ("P(>0)", ">", [_num(x, ".3f") for x in r["bayes_p_gt_0"]]),
            ("margin", ">", [_pct_g(x) for x in r["margin"]]),
            ("P(>margin)", ">", [_num(x, ".3f") for x in r["bayes_p_gt_margin"]])]),
    ]
    if published:
        groups.append(("Published (real data)", [
            ("difference", ">", [_pct_g(x) for x in r["published_difference"]]),
            ("P", ">", [_num(x, "g") for x in r["published_p_value"]])]))
    return _table(groups)

