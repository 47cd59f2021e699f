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

This module holds :class:`Comparison` and :func:`compare`; the parts are in
``compare_frames`` (columns, subgroup and contrast frames, published sources),
``compare_methods`` (Knapp-Hartung, GLMM), ``compare_moderators`` (meta-regression
and GLMM with moderators), ``compare_notes`` and ``compare_text`` (text tables).
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bayes_poem.compare_frames import (
    CONTRAST_COLUMNS,
    MODERATOR_COLUMNS,
    MODERATOR_CONTRAST_COLUMNS,
    MODERATOR_SUBGROUP_COLUMNS,
    PUBLISHED_CONTRAST_COLUMNS,
    PUBLISHED_SUBGROUP_COLUMNS,
    SUBGROUP_COLUMNS,
    _contrast_frame,
    _covers_dataset,
    _dataset,
    _level,
    _subgroup_frame,
)
from bayes_poem.compare_methods import (
    _METHOD_TEXT,
    _glmm_fits,
    _glmm_pairwise,
    _glmm_subgroups,
    _knapp_hartung,
    _method_notes,
)
from bayes_poem.compare_moderators import (
    _at_text,
    _metareg_contrasts,
    _metareg_subgroups,
    _moderator_frame,
    _moderator_notes,
    frequentist_moderator_fits,
)
from bayes_poem.compare_notes import _notes, _rule_text
from bayes_poem.compare_text import _contrast_table, _moderator_table, _subgroup_table, _tau_table
from bayes_poem.contrasts import Contrast
from bayes_poem.errors import SpecError
from bayes_poem.frequentist.results import GlmmRegResult, MetaRegResult
from bayes_poem.frequentist.subgroups import (
    ModelChoice,
    SubgroupResult,
    subgroup_analysis,
)
from bayes_poem.published import published_for
from bayes_poem.results import FitResult
from bayes_poem.specfile import COMPARE_METHODS as METHODS
from bayes_poem.specfile import check_method

__all__ = ["CONTRAST_COLUMNS", "METHODS", "MODERATOR_COLUMNS", "MODERATOR_CONTRAST_COLUMNS",
           "MODERATOR_SUBGROUP_COLUMNS",
           "PUBLISHED_CONTRAST_COLUMNS", "PUBLISHED_SUBGROUP_COLUMNS", "SUBGROUP_COLUMNS",
           "Comparison", "compare", "frequentist_moderator_fits"]


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
        from bayes_poem.structure import recorded_line

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
        lines.append(recorded_line(spec, self.fit.idata.posterior.attrs))
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
