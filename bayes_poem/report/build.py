"""Building a report: :func:`build_report` computes everything the report shows and
assembles the sections (``bayes_poem.report.sections``) into a :class:`Report`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bayes_poem.banner import synthetic_text
from bayes_poem.contrasts import Contrast
from bayes_poem.report.document import Report
from bayes_poem.report.sections.checks import (
    loo_section,
    ppc_section,
    prediction_section,
    prior_section,
)
from bayes_poem.report.sections.comparisons import (
    bias_section,
    frequentist_section,
    sensitivity_section,
)
from bayes_poem.report.sections.estimates import (
    contrast_section,
    refit_tau2_explained,
    refit_unpooled,
    summary_section,
)
from bayes_poem.report.sections.model import data_section, diagnostics_section, model_section
from bayes_poem.report.sections.reproducibility import footer
from bayes_poem.results_dir import find_sensitivity
from bayes_poem.unpooled import is_defined as is_unpooled_defined

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.specfile import AnalysisSpec

DEFAULT_NEW_CENTRE_N = 50


def build_report(
    fit: FitResult,
    *,
    analysis: AnalysisSpec | None = None,
    title: str | None = None,
    contrasts: Sequence[Contrast] | None = None,
    new_centre_n: int | None = None,
    sensitivity: pd.DataFrame | None = None,
    results_dir: str | Path | None = None,
    loo_refit: bool = True,
    compare_models: bool = True,
    progress: Callable[[str], None] | None = None,
    bias: Any = None,
) -> Report:
    """Compute everything the report shows and assemble its sections.

    Parameters
    ----------
    fit : FitResult
        The fitted analysis (its interval and weights are used throughout).
    analysis : AnalysisSpec, optional
        The spec it came from: title, description, contrasts, resolved TOML.
    title : str, optional
        Overrides the spec's title.
    contrasts : sequence of Contrast, optional
        Default: the spec's contrasts, else every pair of subgroups.
    new_centre_n : int, optional
        Patients at the new centre of the predictions (default 50).
    sensitivity : DataFrame, optional
        A ``sensitivity.csv`` table; read from ``results_dir`` when not given.
    results_dir : path, optional
        Where the fit was loaded from (for ``sensitivity.csv``).
    loo_refit : bool
        Refit the model without each study whose Pareto k > 0.7.
    compare_models : bool
        Fit the other likelihood variants and compare them by LOO.
    progress : callable, optional
        Called with a short message before each slow step.
    bias : BiasOptions, optional
        Adds the "Small-study effects" section (:mod:`bayes_poem.bias_analysis`: the
        precision model and the cumulative posteriors are fitted here); default: the
        spec's ``[bias]`` section, if it has one.

    A :class:`~bayes_poem.joint_results.JointResult` (with its ``JointAnalysisSpec``)
    gets the joint model's report (:func:`bayes_poem.report.sections.joint.build_joint_report`:
    ``title``, ``sensitivity`` (a ``benefit_risk_sensitivity.csv`` table, else found in
    ``results_dir``) and ``progress`` apply; ``contrasts`` as pairs ``(a, b)``).
    """
    from bayes_poem.joint_results import JointResult

    if isinstance(fit, JointResult):
        from bayes_poem.report.sections.joint import build_joint_report
        from bayes_poem.results_dir import find_joint_sensitivity

        if sensitivity is None and results_dir is not None:
            sensitivity = find_joint_sensitivity(Path(results_dir))
        return build_joint_report(fit, analysis=analysis, title=title,
                                  pairs=[(c.a, c.b) if isinstance(c, Contrast) else tuple(c)
                                         for c in contrasts] if contrasts else None,
                                  sensitivity=sensitivity, progress=progress)
    say = progress or (lambda message: None)
    spec = fit.spec
    if contrasts is None and analysis is not None and analysis.contrasts:
        contrasts = list(analysis.contrasts)
    if new_centre_n is None:
        new_centre_n = DEFAULT_NEW_CENTRE_N
    if sensitivity is None and results_dir is not None:
        sensitivity = find_sensitivity(Path(results_dir))
    title = title or (analysis.title if analysis is not None and analysis.title else
                      f"Bayesian meta-analysis of {spec.outcome}")
    description = analysis.description if analysis is not None else ""

    sections = [data_section(fit, description), model_section(fit),
                diagnostics_section(fit)]
    explained = None
    if spec.moderators:
        from bayes_poem.explained import is_defined

        if is_defined(fit):
            say("fit without moderators (share of tau^2 explained, R^2)")
            explained = refit_tau2_explained(fit)
    unpooled = None
    if is_unpooled_defined(fit):
        say("fit with fixed subgroup effects (the unpooled contrasts)")
        unpooled = refit_unpooled(fit)
    say("posterior summaries and contrasts")
    sections.append(summary_section(fit, explained, forest_order=analysis.forest_order
                                    if analysis is not None else "data"))
    sections.append(contrast_section(fit, contrasts, unpooled))
    say("prior and posterior predictive checks")
    sections.append(prior_section(fit))
    sections.append(ppc_section(fit))
    say("leave-one-study-out cross-validation"
        + (" and likelihood comparison (fits the other likelihoods)" if compare_models else ""))
    sections.append(loo_section(fit, loo_refit, compare_models))
    sections.append(prediction_section(fit, new_centre_n))
    if sensitivity is not None:
        sections.append(sensitivity_section(sensitivity))
    if bias is None and analysis is not None and analysis.bias is not None:
        bias = analysis.bias_options()
    if bias is not None:
        from bayes_poem.bias_analysis import analyse_bias

        say("small-study effects (precision model, cumulative refits, frequentist tests)")
        sections.append(bias_section(fit, analyse_bias(fit, bias, progress=say)))
    say("frequentist side-by-side")
    sections.append(frequentist_section(fit, contrasts))
    subtitle = (f"Outcome {spec.outcome} | data {spec.table.source} | "
                f"{len(spec.studies)} studies, {int(spec.table.frame['total'].sum())} patients")
    return Report(title, subtitle, spec.table.is_synthetic, tuple(sections),
                  footer(fit, analysis),
                  synthetic_note=synthetic_text(spec.table) if spec.table.is_synthetic else "")

