"""The analysis report: one self-contained HTML file and a Markdown version.

This module only assembles: every number comes from :class:`FitResult`,
:mod:`bayes_poem.predictive`, :mod:`bayes_poem.loo` and :mod:`bayes_poem.compare`,
every figure from :mod:`bayes_poem.plots`. A report is a list of :class:`Section`
objects (title, text, table, figures); :func:`render_html` turns it into one HTML
file with inline CSS, figures embedded as base64 PNG and formulas in MathML (no
script, no stylesheet or font link, nothing fetched), and :func:`render_markdown`
into Markdown with the figures as PNG files next to it. See ``docs/report.md``.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayes_poem import plots
from bayes_poem.contrasts import Contrast, contrast_draws
from bayes_poem.diagnostics import BFMI_MIN, ESS_PER_CHAIN_MIN, RHAT_MAX
from bayes_poem.dims import SUBGROUP
from bayes_poem.errors import DataError, SpecError
from bayes_poem.predictive import (
    FLAG_HIGH,
    FLAG_LOW,
    PRIOR_QUANTILES,
    clopper_pearson,
    default_exceedance_ks,
    likelihood_of,
    new_centre_prediction,
    posterior_predictive,
    prior_predictive,
)

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.spec import ModelSpec
    from bayes_poem.specfile import AnalysisSpec

__all__ = ["DEFAULT_NEW_CENTRE_N", "Formula", "Report", "ReportFigure", "Section",
           "build_report", "load_fit", "render_html", "render_markdown", "report_writers",
           "results_dir_files"]

DEFAULT_NEW_CENTRE_N = 50
SYNTHETIC_TEXT = ("SYNTHETIC DATA: the study-level counts in this report were simulated to "
                  "match published aggregates. They are not real study-level counts, and no "
                  "clinical conclusion can be drawn from them.")
PACKAGES = ("bayes-poem", "pymc", "arviz", "nutpie", "numpy")
HIGHLIGHT = "_highlight"


# ---------------------------------------------------------------------- the document
@dataclass(frozen=True)
class ReportFigure:
    """A figure as PNG bytes; ``name`` becomes the file name in the Markdown version."""

    name: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class Formula:
    """One displayed formula: MathML for HTML, plain text for Markdown."""

    mathml: str
    text: str


@dataclass(frozen=True)
class Section:
    """One section of the report.

    ``text`` is plain text (paragraphs separated by blank lines, lines starting
    with ``- `` are list items). ``table`` cells are shown as given; a boolean
    column ``_highlight`` marks rows to highlight and is not shown.
    """

    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    figures: tuple[ReportFigure, ...] = ()
    table_caption: str = ""
    formulas: tuple[Formula, ...] = ()
    code: str = ""
    subsections: tuple[Section, ...] = ()
    anchor: str = ""


@dataclass(frozen=True)
class Report:
    title: str
    subtitle: str
    synthetic: bool
    sections: tuple[Section, ...]
    footer: Section

    def all_figures(self) -> list[ReportFigure]:
        found: list[ReportFigure] = []

        def walk(section: Section) -> None:
            found.extend(section.figures)
            for sub in section.subsections:
                walk(sub)

        for section in (*self.sections, self.footer):
            walk(section)
        return found


# ---------------------------------------------------------------------- formatting
def _pct(x: float, digits: int = 1) -> str:
    if x is None or not np.isfinite(x):
        return ""
    value = round(100 * float(x), digits)
    return f"{value + 0.0:.{digits}f}%"  # + 0.0: no "-0.0%"


def _ci_pct(median: float, lower: float, upper: float, digits: int = 1) -> str:
    if not np.isfinite(median):
        return ""
    return f"{_pct(median, digits)} [{_pct(lower, digits)}, {_pct(upper, digits)}]"


def _num(x: float, fmt: str = ".3f") -> str:
    return "" if x is None or not np.isfinite(x) else format(x, fmt)


def _ci_num(median: float, lower: float, upper: float, fmt: str = ".3f") -> str:
    if not np.isfinite(median):
        return ""
    return f"{median:{fmt}} [{lower:{fmt}}, {upper:{fmt}}]"


def _p(x: float) -> str:
    if x is None or not np.isfinite(x):
        return ""
    return "< 0.001" if x < 0.001 else "> 0.999" if x > 0.999 else f"{x:.3f}"


def _figure(name: str, caption: str, fig: Any) -> ReportFigure:
    return ReportFigure(name, caption, plots.to_png(fig))


# ---------------------------------------------------------------------- building
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
    """
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

    sections = [_data_section(fit, description), _model_section(fit),
                _diagnostics_section(fit)]
    explained = None
    if spec.moderators:
        from bayes_poem.explained import is_defined

        if is_defined(fit):
            say("fit without moderators (share of tau^2 explained, R^2)")
            explained = _tau2_explained(fit)
    say("posterior summaries and contrasts")
    sections.append(_summary_section(fit, explained))
    sections.append(_contrast_section(fit, contrasts))
    say("prior and posterior predictive checks")
    sections.append(_prior_section(fit))
    sections.append(_ppc_section(fit))
    say("leave-one-study-out cross-validation"
        + (" and likelihood comparison (fits the other likelihoods)" if compare_models else ""))
    sections.append(_loo_section(fit, loo_refit, compare_models))
    sections.append(_prediction_section(fit, new_centre_n))
    if sensitivity is not None:
        sections.append(_sensitivity_section(sensitivity))
    if bias is None and analysis is not None and analysis.bias is not None:
        bias = analysis.bias_options()
    if bias is not None:
        from bayes_poem.bias_analysis import analyse_bias

        say("small-study effects (precision model, cumulative refits, frequentist tests)")
        sections.append(_bias_section(fit, analyse_bias(fit, bias, progress=say)))
    say("frequentist side-by-side")
    sections.append(_frequentist_section(fit, contrasts))
    subtitle = (f"Outcome {spec.outcome} | data {spec.table.source} | "
                f"{len(spec.studies)} studies, {int(spec.table.frame['total'].sum())} patients")
    return Report(title, subtitle, spec.table.is_synthetic, tuple(sections),
                  _footer(fit, analysis))


# ---------------------------------------------------------------------- sections
def _data_section(fit: FitResult, description: str) -> Section:
    spec = fit.spec
    frame = spec.table.frame
    lower, upper = clopper_pearson(frame["events"].to_numpy(), frame["total"].to_numpy())
    table = pd.DataFrame({
        "study": frame["study"], "subgroup": frame["subgroup"],
        "events": frame["events"].astype(int), "total": frame["total"].astype(int),
        "observed": [_pct(e / n) for e, n in zip(frame["events"], frame["total"], strict=True)],
        "exact 95% CI": [f"[{_pct(lo)}, {_pct(hi)}]" for lo, hi in zip(lower, upper,
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
        parts.append(SYNTHETIC_TEXT)
    if description:
        parts.append(description)
    source = f"Data: {spec.table.source}"
    if meta.get("title"):
        source += f" ({meta['title']})"
    parts.append(source + ".")
    if meta.get("citation"):
        parts.append(f"Source: {meta['citation']}")
    parts.append(
        f"Outcome {spec.outcome}: {len(frame)} rows (study x subgroup cells) from "
        f"{len(spec.studies)} studies, {int(frame['total'].sum())} patients, "
        f"{int(frame['events'].sum())} events; subgroups {', '.join(spec.subgroups)}. "
        "Observed rates have exact (Clopper-Pearson) 95% confidence intervals.")
    return Section("Data", "\n\n".join(parts), table=table, anchor="data")


def _mrow(*items: str) -> str:
    return "<mrow>" + "".join(items) + "</mrow>"


def _mi(name: str) -> str:
    return f"<mi>{html.escape(name)}</mi>"


def _mo(op: str) -> str:
    return f"<mo>{html.escape(op)}</mo>"


def _mn(value: str) -> str:
    return f"<mn>{html.escape(value)}</mn>"


def _mtext(text: str) -> str:
    return f"<mtext>{html.escape(text)}</mtext>"


_SPACE = '<mspace width="1.2em"></mspace>'


def _sub(base: str, sub: str) -> str:
    return f"<msub>{base}{sub}</msub>"


def _sup(base: str, sup: str) -> str:
    return f"<msup>{base}{sup}</msup>"


def _fn(name: str, *args: str) -> str:
    inner = [args[0]]
    for arg in args[1:]:
        inner += [_mo(","), arg]
    return _mrow(_mi(name) if len(name) == 1 else _mtext(name), _mo("("), *inner, _mo(")"))


def _math(*items: str) -> str:
    return '<div class="formula"><math>' + _mrow(*items) + "</math></div>"


def _model_formulas(spec: ModelSpec) -> list[Formula]:
    y_i, n_i, p_i = _sub(_mi("y"), _mi("i")), _sub(_mi("n"), _mi("i")), _sub(_mi("p"), _mi("i"))
    mu, tau = _mi("μ"), _mi("τ")
    alpha_di = _sub(_mi("α"), _sub(_mi("d"), _mi("i")))
    u_si = _sub(_mi("u"), _sub(_mi("s"), _mi("i")))
    beta_binomial = likelihood_of(spec) == "beta_binomial"
    formulas = []
    if beta_binomial:
        kappa = _mi("κ")
        formulas.append(Formula(
            _math(y_i, _mo("∼"), _fn("BetaBinomial", n_i, _mrow(p_i, kappa),
                                     _mrow(_mo("("), _mn("1"), _mo("−"), p_i, _mo(")"), kappa)),
                  _mo(","), _SPACE, kappa, _mo("="), _mn("1"), _mo("/"),
                  _sup(_mi("φ"), _mn("2"))),
            "y_i ~ BetaBinomial(n_i, p_i*kappa, (1 - p_i)*kappa),  kappa = 1/phi^2"))
    else:
        formulas.append(Formula(_math(y_i, _mo("∼"), _fn("Binomial", n_i, p_i)),
                                "y_i ~ Binomial(n_i, p_i)"))
    terms, text_terms = [mu], ["mu"]
    if spec.subgroup_effects != "none":
        terms += [_mo("+"), alpha_di]
        text_terms.append("alpha[d_i]")
    by_subgroup = spec.study_heterogeneity == "by_subgroup"
    tau_di = _sub(_mi("τ"), _sub(_mi("d"), _mi("i")))
    w_si = _sub(_mi("w"), _sub(_mi("s"), _mi("i")))
    if spec.study_effects == "random" and by_subgroup:
        terms += [_mo("+"), tau_di, w_si]
        text_terms.append("tau[d_i] * w[s_i]")
    elif spec.study_effects == "random":
        terms += [_mo("+"), u_si]
        text_terms.append("u[s_i]")
    x_i = _sub(_mi("x"), _mi("i"))
    if spec.moderators:
        terms += [_mo("+"), f"<msubsup>{_mi('x')}{_mi('i')}{_mo('⊤')}</msubsup>", _mi("β")]
        text_terms.append("x_i' beta")
    cells = spec.cell_effects == "random"
    if cells:
        terms += [_mo("+"), _sub(_mi("τ"), _mtext("cell")),
                  _sub(_mi("v"), _sub(_mi("c"), _mi("i")))]
        text_terms.append("tau_cell * v[c_i]")
    formulas.append(Formula(_math(_fn("logit", p_i), _mo("="), *terms),
                            f"logit(p_i) = {' + '.join(text_terms)}"))
    if spec.study_effects == "random" and by_subgroup:
        w_s = _sub(_mi("w"), _mi("s"))
        formulas.append(Formula(
            _math(w_s, _mo("∼"), _fn("N", _mn("0"), _mn("1")), _mo(","), _SPACE,
                  _sub(_mi("τ"), _mi("d")), _mtext(" i.i.d. from the τ prior")),
            "w_s ~ N(0, 1),  tau_d i.i.d. from the tau prior   (study effects with a "
            "between-study SD per subgroup, non-centred)"))
    elif spec.study_effects == "random":
        w_s = _sub(_mi("w"), _mi("s"))
        formulas.append(Formula(
            _math(_sub(_mi("u"), _mi("s")), _mo("="), tau, w_s, _mo(","), _SPACE, w_s,
                  _mo("∼"), _fn("N", _mn("0"), _mn("1"))),
            "u_s = tau * w_s,  w_s ~ N(0, 1)   (random study effects, non-centred)"))
    if cells:
        v_c = _sub(_mi("v"), _mi("c"))
        formulas.append(Formula(
            _math(v_c, _mo("∼"), _fn("N", _mn("0"), _mn("1"))),
            "v_c ~ N(0, 1)   (study x subgroup cell effects, non-centred; c_i: the cell of "
            "row i)"))
    if spec.subgroup_effects == "random":
        z_d = _sub(_mi("z"), _mi("d"))
        formulas.append(Formula(
            _math(_sub(_mi("α"), _mi("d")), _mo("="), _sub(_mi("σ"), _mtext("subgroup")), z_d,
                  _mo(","), _SPACE, z_d, _mo("∼"), _fn("N", _mn("0"), _mn("1"))),
            "alpha_d = sigma_subgroup * z_d,  z_d ~ N(0, 1)   (random subgroup effects)"))
    elif spec.subgroup_effects == "fixed":
        s_alpha = _sub(_mi("s"), _mi("α"))
        raw = _sup(_mi("α"), _mtext("raw"))
        formulas.append(Formula(
            _math(_mi("α"), _mo("="), s_alpha, _mi("H"), raw, _mo(","), _SPACE, raw,
                  _mo("∼"), _fn("N", _mn("0"), _sub(_mi("I"), _mrow(_mi("D"), _mo("−"),
                                                                     _mn("1")))),
                  _mo(","), _SPACE, _mrow(_mo("∑"), _sub(_mi("α"), _mi("d"))), _mo("="),
                  _mn("0")),
            "alpha = s_alpha * H * alpha_raw,  alpha_raw ~ N(0, I_(D-1)),  sum_d alpha_d = 0  "
            "(fixed, sum-to-zero subgroup effects; H: Helmert basis)"))
    if spec.moderators:
        coding = _moderator_coding(spec)
        formulas.append(Formula(
            _math(x_i, _mo("="), _mo("("), *[item for k, term in enumerate(coding) for item in
                                              ([_mo(",")] if k else []) + [_mtext(term)]],
                  _mo(")")),
            "x_i = (" + ", ".join(coding) + ")   (row i's coded moderators; x_i = 0 at the "
            "reference values)"))
    symbols = {"mu": mu, "tau": tau, "sigma_subgroup": _sub(_mi("σ"), _mtext("subgroup")),
               "alpha": _sub(_mi("s"), _mi("α")), "phi": _mi("φ"),
               "beta": _sub(_mi("β"), _mi("k"))}
    for name, described in spec.describe_priors().items():
        if name == "alpha":
            formulas.append(Formula(
                _math(symbols[name], _mo("="), _mtext(f"{spec.priors['alpha'].params['sigma']:g}"
                                                      )),
                f"s_alpha = {spec.priors['alpha'].params['sigma']:g}"))
            continue
        formulas.append(Formula(_math(symbols.get(name, _mi(name)), _mo("∼"),
                                      _mtext(described)),
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


def _at_text(fit: FitResult) -> str:
    """The covariate values of the pooled probabilities (the text report's wording)."""
    from bayes_poem.report_text import _at_text as at_text

    return at_text(fit)


def _model_section(fit: FitResult) -> Section:
    from bayes_poem.priors import RATIONALE

    spec = fit.spec
    likelihood = likelihood_of(spec)
    text = [
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
            f"{_at_text(fit)}; tau is the residual between-study SD, and every row's "
            "prediction, predictive check and cross-validation uses its own x_i'beta.")
    priors = pd.DataFrame([
        {"parameter": name, "prior": described, "why": RATIONALE.get(name, "")}
        for name, described in spec.describe_priors().items()
    ])
    return Section("Model and priors", "\n\n".join(text), table=priors,
                   table_caption="Priors used by this model (docs/priors.md)",
                   formulas=tuple(_model_formulas(spec)), anchor="model")


def _diagnostics_section(fit: FitResult) -> Section:
    diagnostics = fit.diagnostics
    settings = fit.settings
    post = fit.posterior
    seconds = post.attrs.get("sampling_seconds", "")
    text = [
        f"Sampler: {settings.backend} NUTS, {settings.chains} chains x {settings.draws} draws "
        f"after {settings.tune} tuning steps, target_accept {settings.target_accept:g}, seed "
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
        "max R-hat": [_num(x) for x in table["r_hat"]],
        "min bulk ESS": [_num(x, ".0f") for x in table["ess_bulk"]],
        "min tail ESS": [_num(x, ".0f") for x in table["ess_tail"]],
        HIGHLIGHT: [(r > RHAT_MAX) or (b < ESS_PER_CHAIN_MIN * settings.chains)
                    or (t < ESS_PER_CHAIN_MIN * settings.chains)
                    for r, b, t in zip(table["r_hat"], table["ess_bulk"], table["ess_tail"],
                                       strict=True)],
    })
    bfmi = ", ".join(_num(b, ".2f") for b in diagnostics.bfmi)
    text.append(f"Divergent transitions: {diagnostics.divergences}. E-BFMI per chain: {bfmi}.")
    return Section("Sampler diagnostics", "\n\n".join(text), table=shown,
                   table_caption="Worst value over the elements of each stored variable",
                   anchor="diagnostics")


def _tau2_explained(fit: FitResult) -> pd.DataFrame:
    """``explained.tau2_explained`` (a refit without moderators, same settings and
    seed); its failed diagnostics are shown in the table, a failed refit is an error."""
    import warnings

    from bayes_poem.errors import ConvergenceWarning, SamplingError
    from bayes_poem.explained import tau2_explained

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the table
            return tau2_explained(fit)
    except SamplingError as err:
        raise SamplingError(f"the fit without moderators (for R^2): {err}") from None


def _explained_section(fit: FitResult, explained: pd.DataFrame | None) -> Section:
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
            f"with moderators, median [{interval}]": [_ci_num(*v) for v in zip(
                explained["tau_with_median"], explained["tau_with_lower"],
                explained["tau_with_upper"], strict=True)],
            f"without moderators, median [{interval}]": [_ci_num(*v) for v in zip(
                explained["tau_without_median"], explained["tau_without_lower"],
                explained["tau_without_upper"], strict=True)],
            "R²": [_num(x) for x in explained["r2"]],
            "R² untruncated": [_num(x) for x in explained["r2_raw"]],
        }))


def _summary_section(fit: FitResult, explained: pd.DataFrame | None = None) -> Section:
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
            "subgroup": label, "studies": int(first["n_studies"]),
            "events/patients": f"{int(first['events'])}/{int(first['total'])}",
            "observed": _pct(first["observed"]),
            "p_pooled (median study)": _ci_pct(*(cells["p_pooled"][k] for k in
                                                 ("median", "lower", "upper"))),
            "p_mean (population mean)": _ci_pct(*(cells["p_mean"][k] for k in
                                                  ("median", "lower", "upper"))),
            "p_new (new study)": _ci_pct(*(cells["p_new"][k] for k in
                                           ("median", "lower", "upper"))),
        })
    pooled_table = pd.DataFrame(rows)
    het = fit.heterogeneity()
    het_table = pd.DataFrame({
        "parameter": het["parameter"],
        f"median [{interval}]": [_ci_num(m, lo, hi) for m, lo, hi in
                                 zip(het["median"], het["lower"], het["upper"], strict=True)],
        "mean": [_num(x) for x in het["mean"]],
    })
    params = fit.parameter_summary()
    param_table = pd.DataFrame({
        "parameter": params["parameter"],
        f"median [{interval}]": [_ci_num(m, lo, hi) for m, lo, hi in
                                 zip(params["median"], params["lower"], params["upper"],
                                     strict=True)],
        "mean": [_num(x) for x in params["mean"]], "sd": [_num(x) for x in params["sd"]],
        "R-hat": [_num(x) for x in params["r_hat"]],
        "bulk ESS": [_num(x, ".0f") for x in params["ess_bulk"]],
    })

    estimates = fit.study_estimates()
    lower, upper = clopper_pearson(estimates["events"].to_numpy(), estimates["total"].to_numpy())
    forest_rows = estimates.assign(cp_lower=lower, cp_upper=upper)
    pooled = []
    for label, group in summary.groupby("subgroup", sort=False):
        if single and label == "overall":
            continue
        p = group[group["quantity"] == "p_pooled"].iloc[0]
        new = group[group["quantity"] == "p_new"].iloc[0]
        pooled.append({"subgroup": label, "median": p["median"], "lower": p["lower"],
                       "upper": p["upper"], "pred_lower": new["lower"],
                       "pred_upper": new["upper"]})
    forest = plots.forest_plot(rows=forest_rows, pooled=pd.DataFrame(pooled),
                               interval_label=interval)
    moderated = bool(fit.spec.moderators)
    subsections = []
    if moderated:
        mods = fit.moderator_summary()
        subsections.append(Section(
            "Moderators (meta-regression coefficients)",
            "beta on the logit scale per coded unit (per SD of a numeric moderator by "
            "default, or a level against its reference level); odds ratios per unit of "
            "the moderator as recorded and per SD of its values; P(beta > 0) is a "
            f"posterior probability. The pooled probabilities above are at {_at_text(fit)}.",
            table=pd.DataFrame({
                "term": mods["term"], "reference": mods["reference"],
                f"beta, median [{interval}]": [_ci_num(m, lo, hi) for m, lo, hi in zip(
                    mods["median"], mods["lower"], mods["upper"], strict=True)],
                "OR per unit": [_ci_num(m, lo, hi, ".3g") for m, lo, hi in zip(
                    mods["or_unit_median"], mods["or_unit_lower"], mods["or_unit_upper"],
                    strict=True)],
                "OR per SD": ["-" if kind != "numeric" else _ci_num(m, lo, hi, ".3g")
                              for kind, m, lo, hi in zip(
                                  mods["kind"], mods["or_sd_median"], mods["or_sd_lower"],
                                  mods["or_sd_upper"], strict=True)],
                "P(beta > 0)": [_p(x) for x in mods["p_gt_0"]],
                "R-hat": [_num(x) for x in mods["r_hat"]],
            })))
        subsections.append(_explained_section(fit, explained))
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
        + (f" Pooled probabilities are at {_at_text(fit)}." if moderated else ""),
        table=pooled_table, table_caption=f"Pooled probabilities, median [{interval}]"
        + (f", at {_at_text(fit)}" if moderated else ""),
        figures=(_figure("forest", "Forest plot: observed rates with exact 95% CIs, shrunken "
                         "study estimates, pooled subgroup estimates (diamonds) and prediction "
                         "intervals for a new study (bands)", forest),),
        subsections=(
            Section("Heterogeneity", het_text + ".", table=het_table),
            Section("Model parameters (logit scale)", "", table=param_table),
            *subsections,
        ),
        anchor="summaries")


def _contrast_section(fit: FitResult, contrasts: Sequence[Contrast] | None) -> Section:
    if fit.spec.subgroup_effects == "none":
        return Section("Contrasts between subgroups",
                       "None: the model has no subgroup effects (single-group model).",
                       anchor="contrasts")
    table = fit.contrasts(list(contrasts) if contrasts else None)
    shown = pd.DataFrame({
        "contrast": table["contrast"], "quantity": table["quantity"], "scale": table["scale"],
        f"median [{fit.interval.label}]": [
            _ci_pct(m, lo, hi) if scale == "difference" else _ci_num(m, lo, hi)
            for m, lo, hi, scale in zip(table["median"], table["lower"], table["upper"],
                                        table["scale"], strict=True)],
        "P(> null)": [_p(x) for x in table["p_gt_null"]],
        "margin": [_pct(m, 0) if s == "difference" else _num(m, "g")
                   for m, s in zip(table["margin"], table["scale"], strict=True)],
        "P(> margin)": [_p(x) for x in table["p_gt_margin"]],
    })
    probs = fit.subgroup_probabilities()
    listed = list(contrasts) if contrasts else [
        Contrast(a, b) for i, a in enumerate(fit.spec.subgroups)
        for b in fit.spec.subgroups[i + 1:]]
    draws, margins = {}, {}
    for contrast in listed:
        quantity = probs[contrast.quantity]
        diff = contrast_draws(quantity.sel({SUBGROUP: contrast.a}),
                              quantity.sel({SUBGROUP: contrast.b}))["difference"]
        draws[contrast.label] = diff.values.ravel()
        margins[contrast.label] = contrast.margin
    figure = plots.contrast_density_plot(draws=draws, margins=margins)
    return Section(
        "Contrasts between subgroups",
        "Posterior of each contrast on three scales. P(> null) is the posterior probability "
        "that subgroup a has the higher rate; P(> margin) that the difference exceeds the "
        "decision margin (for harms: that a has at least that many more events per patient). "
        "These are posterior probabilities, not p-values.",
        table=shown, figures=(_figure("contrasts", "Posterior densities of the differences "
                                      "(a - b); the red line is the decision margin and the "
                                      "shaded area P(> margin)", figure),),
        anchor="contrasts")


def _prior_section(fit: FitResult) -> Section:
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
        shown[f"{100 * q:g}%"] = [_pct(x) for x in table[f"q{100 * q:g}"]]
    shown["P(< 5%)"] = [_pct(x) for x in table["p_below_5pct"]]
    shown["P(> 95%)"] = [_pct(x) for x in table["p_above_95pct"]]
    if "p_abs_gt_10pts" in table:
        shown["P(|difference| > 10 pts)"] = [_pct(x) for x in table["p_abs_gt_10pts"]]
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
    return Section("Prior predictive check", text, table=shown,
                   table_caption="Prior quantiles",
                   figures=(_figure("prior_predictive", "Prior distribution of the rates (and "
                                    "of a difference between two subgroups)", figure),),
                   anchor="prior-predictive")


def _ppc_section(fit: FitResult) -> Section:
    ppc = posterior_predictive(fit)
    rows = ppc.rows
    row_table = pd.DataFrame({
        "study": rows["study"], "subgroup": rows["subgroup"],
        "observed": [f"{e}/{n}" for e, n in zip(rows["events"], rows["total"], strict=True)],
        "replicated median": [_num(x, ".0f") for x in rows["rep_median"]],
        f"replicated {rows['interval'].iloc[0]}": [
            f"[{lo:.0f}, {hi:.0f}]" for lo, hi in zip(rows["rep_lower"], rows["rep_upper"],
                                                       strict=True)],
        "ppp (mid-p)": [_num(x) for x in rows["ppp"]],
        "flag": ["FLAG" if f else "" for f in rows["flag"]], HIGHLIGHT: rows["flag"],
    })
    studies = ppc.studies
    study_table = pd.DataFrame({
        "study": studies["study"], "rows": studies["rows"],
        "events/total": [f"{e}/{n}" for e, n in zip(studies["events"], studies["total"],
                                                     strict=True)],
        "ppp (mid-p)": [_num(x) for x in studies["ppp"]],
        "flag": ["FLAG" if f else "" for f in studies["flag"]], HIGHLIGHT: studies["flag"],
    })
    stats_frame = ppc.statistics
    stat_table = pd.DataFrame({
        "statistic T": stats_frame["description"],
        "T(observed)": [_pct(x) for x in stats_frame["observed"]],
        f"T(replicated), mean [{stats_frame['interval'].iloc[0]}]": [
            f"{_pct(m)} [{_pct(lo)}, {_pct(hi)}]" for m, lo, hi in
            zip(stats_frame["rep_mean"], stats_frame["rep_lower"], stats_frame["rep_upper"],
                strict=True)],
        "ppp (mid-p)": [_num(x) for x in stats_frame["ppp"]],
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
                               figures=(_figure("ppc_statistics", "Test statistics over "
                                                "replicated data (histogram) and observed "
                                                "(line)", plots.ppc_statistics_plot(
                                                    statistics=stats_frame,
                                                    draws=ppc.statistic_draws)),)))
    main_table = study_table if len(rows) > len(studies) else row_table
    return Section(
        "Posterior predictive checks", "\n\n".join(text), table=main_table,
        table_caption="Per study (all its rows summed)" if len(rows) > len(studies) else "",
        figures=(_figure("ppc", "Observed rate of each row against the central interval of "
                         "its replicated count (as a rate); ppp at the right",
                         plots.ppc_plot(rows=rows)),),
        subsections=tuple(subsections), anchor="ppc")


def _loo_section(fit: FitResult, refit: bool, compare_models: bool) -> Section:
    from bayes_poem.loo import K_THRESHOLD, compare_likelihoods, psis_loo

    loo = psis_loo(fit, refit=refit)
    table = loo.table
    shown = pd.DataFrame({
        "study": table["study"],
        "events/total": [f"{e}/{n}" for e, n in zip(table["events"], table["total"],
                                                     strict=True)],
        "elpd (PSIS)": [_num(x) for x in table["elpd_psis"]],
        "Pareto k": [_num(x, ".2f") for x in table["pareto_k"]],
        "elpd (exact refit)": [_num(x) for x in table["elpd_exact"]],
        "elpd used": [_num(x) for x in table["elpd"]],
        "LOO-PIT": [_num(x) for x in table["loo_pit"]],
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
        _figure("pareto_k", "Pareto k per study", plots.pareto_k_plot(
            table=table, threshold=K_THRESHOLD)),
        _figure("loo_pit", "LOO-PIT values against uniform quantiles",
                plots.loo_pit_plot(pit=table["loo_pit"].to_numpy())),
    )
    subsections = []
    if compare_models:
        comparison = compare_likelihoods(fit, refit=refit, loo=loo)
        ct = comparison.table
        compared = pd.DataFrame({
            "model": ct["model"], "rank": ct["rank"].astype(int),
            "elpd_loo": [_num(x, ".2f") for x in ct["elpd_loo"]],
            "SE": [_num(x, ".2f") for x in ct["se"]],
            "elpd_diff": [_num(x, ".2f") for x in ct["elpd_diff"]],
            "dSE": [_num(x, ".2f") for x in ct["dse"]],
            "p_loo": [_num(x, ".2f") for x in ct["p_loo"]],
            "stacking weight": [_num(x, ".3f") for x in ct["weight"]],
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


def _prediction_section(fit: FitResult, n: int) -> Section:
    prediction = new_centre_prediction(fit, n)
    summary = prediction.summary
    rows = []
    for label in prediction.rate_draws[SUBGROUP].values.tolist():
        rate = summary[(summary["subgroup"] == label) & (summary["quantity"] == "rate")].iloc[0]
        count = summary[(summary["subgroup"] == label)
                        & (summary["quantity"] == "count")].iloc[0]
        rows.append({
            "subgroup": label,
            f"rate, median [{rate['interval']}]": _ci_pct(rate["median"], rate["lower"],
                                                          rate["upper"]),
            f"events among {n}: mean": _num(count["mean"], ".1f"),
            "median": _num(count["median"], ".0f"),
            f"{count['interval']} interval": f"[{count['lower']:.0f}, {count['upper']:.0f}]",
        })
    exceed = prediction.exceedance
    ks = default_exceedance_ks(n)
    exceed_table = pd.DataFrame({"k": [f"P(events >= {k})" for k in ks]})
    for label in prediction.rate_draws[SUBGROUP].values.tolist():
        values = exceed.set_index("k")[label]
        exceed_table[label] = [_p(values.loc[k]) for k in ks]
    figure = plots.new_centre_plot(pmf=prediction.pmf, n=n)
    text = (f"A new centre treating {n} patients of one subgroup: its rate is p_new, drawn "
            "per posterior draw from the fitted between-study distribution, and its number of "
            f"events is Binomial({n}, p_new). The predictive distribution of the count is the "
            "average of these binomial distributions over the draws, so the probabilities "
            "below are exact given the draws. "
            "The count interval is central (equal-tailed) on the discrete counts. Set N with "
            "--new-centre-n.")
    if fit.spec.moderators:
        text += f" The new centre's covariates are at {_at_text(fit)}."
    return Section(f"Predictions for a new centre (N = {n})", text, table=pd.DataFrame(rows),
                   figures=(_figure("new_centre", f"Predictive distribution of the number of "
                                    f"events among {n} patients", figure),),
                   subsections=(Section("Probability of at least k events", "",
                                        table=exceed_table),),
                   anchor="predictions")


def find_sensitivity(results_dir: Path) -> pd.DataFrame | None:
    """``sensitivity.csv`` in ``results_dir`` or in its sibling ``<name>_sensitivity``
    (where ``bayes-poem sensitivity`` writes by default), validated
    (:func:`bayes_poem.sensitivity.read_table`: ``DataError`` naming the file,
    row and column); ``None`` if there is none."""
    from bayes_poem.sensitivity import read_table

    results_dir = Path(results_dir)
    for path in (results_dir / "sensitivity.csv",
                 results_dir.parent / f"{results_dir.name}_sensitivity" / "sensitivity.csv"):
        if path.exists():
            if not path.is_file():
                raise DataError(f"{path}: not a regular file")
            return read_table(path)
    return None


def _sensitivity_section(frame: pd.DataFrame) -> Section:
    data = frame.copy()
    variants = list(dict.fromkeys(data["variant"])) if "variant" in data else []
    text = [f"From sensitivity.csv: {len(variants)} variant(s), "
            f"{data['quantity'].nunique() if 'quantity' in data else 0} quantities. Each "
            "variant is the analysis refitted with one change (prior, structure, likelihood, "
            "a study left out or a subset); 'main' is the analysis itself."]
    if "status" in data:
        failed = data[data["status"].fillna("") == "failed"]
        if not failed.empty:
            text.append("Failed variants (not drawn): "
                        + ", ".join(dict.fromkeys(failed["variant"].astype(str))) + ".")
    table = None
    if "flag" in data:
        flagged = data[data["flag"].fillna("").astype(str) != ""]
        if flagged.empty:
            text.append("No variant changes a conclusion (no flags).")
        else:
            text.append("Variants whose conclusion differs from the main analysis:")
            table = pd.DataFrame({
                "variant": flagged["variant"], "quantity": flagged["quantity"],
                "median [interval]": [_ci_num(m, lo, hi) for m, lo, hi in zip(
                    flagged["median"], flagged["lower"], flagged["upper"], strict=True)],
                "flag": flagged["flag"]})
    figure = plots.sensitivity_forest(frame=data)
    return Section("Sensitivity analyses", "\n\n".join(text), table=table,
                   figures=(_figure("sensitivity", "Every quantity under every variant "
                                    "(median and interval); flagged variants in red", figure),),
                   anchor="sensitivity")


def _bias_section(fit: FitResult, bias: Any) -> Section:
    """Small-study effects: the precision model beside the main estimate, the frequentist
    tests, funnel plots (frequentist and posterior) and cumulative plots."""
    from bayes_poem.bias import PRECISION_LABELS
    from bayes_poem.bias_analysis import figures

    options = bias.options
    axis = PRECISION_LABELS[options.precision]
    prec = bias.precision_table()
    label = fit.interval.label
    table = pd.DataFrame({
        "subgroup": prec["subgroup"],
        f"slope per unit {axis} [{label}]": [
            _ci_num(m, lo, hi) if isinstance(t, str) and t else "" for m, lo, hi, t in zip(
                prec["slope_median"], prec["slope_lower"], prec["slope_upper"], prec["term"],
                strict=True)],
        "P(slope < 0)": [_p(x) for x in prec["p_slope_lt_0"]],
        "P(slope > 0)": [_p(x) for x in prec["p_slope_gt_0"]],
        f"limit estimate [{label}]": [_ci_pct(m, lo, hi) for m, lo, hi in zip(
            prec["limit_median"], prec["limit_lower"], prec["limit_upper"], strict=True)],
        f"main estimate [{label}]": [_ci_pct(m, lo, hi) for m, lo, hi in zip(
            prec["main_median"], prec["main_lower"], prec["main_upper"], strict=True)],
    })
    reg = bias.regtest
    tests = []
    for d in dict.fromkeys(reg["label"]):
        rows = reg[reg["label"] == d].set_index("predictor")
        rank = bias.ranktest[bias.ranktest["label"] == d]
        fill = bias.trimfill[(bias.trimfill["label"] == d)
                             & (bias.trimfill["analysis"] == "trim-and-fill")]
        tests.append({
            "subgroup": d, "k": _num(rows["k"].iloc[0], ".0f"),
            "Egger (SE) p": _p(rows.loc["sei", "p_value"]),
            "1/sqrt(n) p": _p(rows.loc["sqrtninv", "p_value"]),
            "1/n p": _p(rows.loc["ninv", "p_value"]),
            "rank test p": _p(rank["p_value"].iloc[0]) if len(rank) else "",
            "trim and fill": (f"{int(fill['k0'].iloc[0])} filled ({fill['side'].iloc[0]}), "
                              + _ci_pct(fill["back_estimate"].iloc[0],
                                        fill["back_ci_lower"].iloc[0],
                                        fill["back_ci_upper"].iloc[0])
                              if len(fill) else "fewer than 3 studies"),
        })
    drawn = figures(bias)
    funnels = tuple(_figure(stem, caption, fig) for stem, (caption, fig) in drawn.items()
                    if stem.startswith("funnel"))
    cumulative = tuple(_figure(stem, caption, fig) for stem, (caption, fig) in drawn.items()
                       if stem.startswith("cumulative"))
    text = (f"Do smaller studies report other rates? The precision of each row "
            f"({axis}, computed from the data) is added to the model as a moderator, not "
            "centred, so the model's p_pooled is the limit estimate of a study of infinite "
            "size; the slope is per unit of precision on the logit scale (positive: smaller "
            f"studies report higher rates; slope {options.slope}). The main estimate is the "
            "analysis itself. Beside them the frequentist tests of each subgroup (metafor's "
            f"regtest, ranktest and trimfill, {options.method}); the tests need 3 studies. "
            "bayes_poem.bias, docs/model.md.")
    return Section(
        "Small-study effects", text, table=table,
        table_caption="Bayesian precision model (limit) beside the main estimate",
        subsections=(
            Section("Frequentist tests of funnel asymmetry", "Two-sided p-values of Egger's "
                    "regression test (predictor: SE of the observed logit) and its sample-size "
                    "versions, Begg's rank correlation test, and the trim-and-fill estimate.",
                    table=pd.DataFrame(tests)),
            Section("Funnel plots", "Frequentist: observed logits (0.5 added to zero cells) "
                    "against their precision, with the trim-and-fill studies. Posterior: each "
                    "row's shrunken estimate joined to its observed logit, on the same axes.",
                    figures=funnels),
            Section("Cumulative meta-analysis", f"The pooled estimate as studies accrue, "
                    f"ordered by {bias.order_by}: the posterior after each added study (the "
                    "model refitted with later studies' counts zeroed) beside the frequentist "
                    "cumulative meta-analysis (metafor cumul).", figures=cumulative)),
        anchor="small-study-effects")


def _frequentist_section(fit: FitResult, contrasts: Sequence[Contrast] | None) -> Section:
    from bayes_poem.compare import compare

    comparison = compare(fit, contrasts=list(contrasts) if contrasts else None)
    sg = comparison.subgroups
    level = f"{100 * comparison.level:g}%"
    moderated = not comparison.moderators.empty
    columns = {
        "subgroup": sg["subgroup"], "k": sg["k"].astype(int), "n": sg["total"].astype(int),
        "observed": [_pct(x) for x in sg["observed"]],
    }
    if moderated:  # the same quantity as the Bayesian p_pooled (docs/compare.md)
        columns[f"frequentist meta-regression at the same values [{level} CI]"] = [
            _ci_pct(m, lo, hi) if np.isfinite(m) else "" for m, lo, hi in zip(
                sg["freq_metareg_estimate"], sg["freq_metareg_ci_lower"],
                sg["freq_metareg_ci_upper"], strict=True)]
    columns.update({
        f"frequentist{' without moderators' if moderated else ''} "
        f"[{level} CI]": [_ci_pct(m, lo, hi) for m, lo, hi in zip(
            sg["freq_estimate"], sg["freq_ci_lower"], sg["freq_ci_upper"], strict=True)],
        "freq. model": sg["freq_model"], "I² (%)": [_num(x, ".1f") for x in sg["freq_i2"]],
        f"Bayesian p_pooled [{fit.interval.label}]": [_ci_pct(m, lo, hi) for m, lo, hi in zip(
            sg["bayes_p_pooled_median"], sg["bayes_p_pooled_lower"], sg["bayes_p_pooled_upper"],
            strict=True)],
    })
    by_subgroup = (fit.spec.study_heterogeneity == "by_subgroup"
                   and fit.spec.study_effects == "random")
    if by_subgroup:  # tau^2 per subgroup side by side
        columns[f"freq. random-effects tau² [{level} Q-profile CI]"] = [
            _ci_num(*v) if np.isfinite(v[0]) else "" for v in zip(
                sg["freq_re_tau2"], sg["freq_re_tau2_ci_lower"], sg["freq_re_tau2_ci_upper"],
                strict=True)]
        columns[f"Bayesian tau[d]² [{fit.interval.label}]"] = [
            _ci_num(*v) if np.isfinite(v[0]) else "" for v in zip(
                sg["bayes_tau2_median"], sg["bayes_tau2_lower"], sg["bayes_tau2_upper"],
                strict=True)]
    table = pd.DataFrame(columns)
    if comparison.has_published:
        table["published (real data)"] = [
            _ci_pct(m, lo, hi) if np.isfinite(lo) else _pct(m, 0) for m, lo, hi in zip(
                sg["published"], sg["published_ci_lower"], sg["published_ci_upper"],
                strict=True)]
    subsections = []
    ct = comparison.contrasts
    if not ct.empty:
        contrast_table = pd.DataFrame({
            "contrast": ct["contrast"],
            f"frequentist difference{' without moderators' if moderated else ''} "
            f"[{level} CI]": [_ci_pct(m, lo, hi) for m, lo, hi in zip(
                ct["freq_difference"], ct["freq_ci_lower"], ct["freq_ci_upper"], strict=True)],
            "z-test p": [_p(x) for x in ct["freq_p_value"]],
            f"Bayesian difference [{fit.interval.label}]": [
                _ci_pct(m, lo, hi) for m, lo, hi in zip(ct["bayes_median"], ct["bayes_lower"],
                                                        ct["bayes_upper"], strict=True)],
            **({f"meta-regression difference at the same values [{level} CI]": [
                _ci_pct(m, lo, hi) if np.isfinite(m) else "" for m, lo, hi in zip(
                    ct["freq_metareg_difference"], ct["freq_metareg_ci_lower"],
                    ct["freq_metareg_ci_upper"], strict=True)],
                "meta-regression p": [_p(x) for x in ct["freq_metareg_p_value"]]}
               if moderated else {}),
            "P(> 0)": [_p(x) for x in ct["bayes_p_gt_0"]],
            "margin": [_pct(x, 0) for x in ct["margin"]],
            "P(> margin)": [_p(x) for x in ct["bayes_p_gt_margin"]],
        })
        if "published_difference" in ct:
            contrast_table["published difference"] = [_pct(x, 0) for x in
                                                       ct["published_difference"]]
            contrast_table["published p"] = [_num(x, "g") for x in ct["published_p_value"]]
        subsections.append(Section("Contrasts (difference of rates)", "", table=contrast_table))
    md = comparison.moderators
    if not md.empty:
        subsections.append(Section(
            "Moderators (same moderators, coding and rows on both sides)",
            "Logit scale per Bayesian coded unit ('per'). In the subgroup table above, the "
            "frequentist meta-regression and the Bayesian p_pooled are both at "
            f"{_at_text(fit)}; the column 'without moderators' pools each subgroup without "
            "them (another quantity, for reference).",
            table=pd.DataFrame({
                "term": md["term"], "per": md["per"],
                f"Bayesian [{fit.interval.label}]": [_ci_num(*v) for v in zip(
                    md["bayes_median"], md["bayes_lower"], md["bayes_upper"], strict=True)],
                "P(β > 0)": [_p(x) for x in md["bayes_p_gt_0"]],
                f"REML [{level} CI]": [_ci_num(*v) for v in zip(
                    md["freq_estimate"], md["freq_ci_lower"], md["freq_ci_upper"], strict=True)],
                "p": [_p(x) for x in md["freq_p_value"]],
                "Knapp-Hartung p": [_p(x) for x in md["freq_knha_p_value"]],
                f"GLMM [{level} CI]": [_ci_num(*v) for v in zip(
                    md["glmm_estimate"], md["glmm_ci_lower"], md["glmm_ci_upper"], strict=True)],
            })))
    notes = "\n".join(f"- {note}" for note in comparison.notes)
    subsections.append(Section("What differs and why", notes))
    return Section(
        "Frequentist analysis side by side",
        f"The classical analysis of the same rows (inverse-variance pooling on the "
        f"{comparison.scale} scale, the fixed-vs-random rule of docs/frequentist.md) next to "
        "the Bayesian fit (bayes_poem.compare; docs/compare.md).",
        table=table, subsections=tuple(subsections), anchor="frequentist")


def _package_version(name: str) -> str:
    if name == "bayes-poem":
        from bayes_poem import __version__

        return __version__
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _spec_toml(fit: FitResult, analysis: AnalysisSpec | None) -> str:
    if analysis is not None:
        return analysis.resolved_toml(fit.spec)
    import tomli_w

    spec = fit.spec
    data = {"source": spec.table.source, "outcome": spec.outcome,
            "subgroups": list(spec.subgroups)}
    model = {"subgroup_effects": spec.subgroup_effects, "study_effects": spec.study_effects,
             "likelihood": likelihood_of(spec)}
    if spec.study_heterogeneity != "common":
        model["study_heterogeneity"] = spec.study_heterogeneity
    if spec.cell_effects != "none":
        model["cell_effects"] = spec.cell_effects
    if spec.moderators:
        from bayes_poem.specfile import _resolved_moderators

        model.update(_resolved_moderators(spec))
    settings = fit.settings.to_dict()
    settings.pop("progress", None)
    return tomli_w.dumps({
        "data": data, "model": model,
        "priors": {name: spec.priors[name].to_dict() for name in spec.parameter_names()},
        "sampler": settings,
        "summary": {"interval": fit.interval.kind, "prob": fit.interval.prob},
    })


def _footer(fit: FitResult, analysis: AnalysisSpec | None) -> Section:
    attrs = fit.posterior.attrs
    versions = pd.DataFrame({"package": list(PACKAGES),
                             "version": [_package_version(p) for p in PACKAGES]})
    fitted_with = attrs.get("bayes_poem_version", "")
    lines = [
        f"Seed {fit.settings.seed}; data hash {attrs.get('data_hash', fit.spec.table.data_hash())}"
        f" (SHA-256 of the canonical CSV of the analysed table, first 16 hex digits).",
        f"Posterior created {attrs.get('created_at', 'unknown')}"
        + (f" by bayes_poem {fitted_with}" if fitted_with else "") + ".",
        "Resolved analysis spec (every setting with its default filled in); with the same "
        "package versions, `bayes-poem report` on it reproduces this report.",
    ]
    return Section("Reproducibility", "\n\n".join(lines), table=versions,
                   code=_spec_toml(fit, analysis), anchor="reproducibility")


# ---------------------------------------------------------------------- results directories
def results_dir_files(path: str | Path) -> tuple[Path, Path]:
    """``posterior.nc`` and ``spec.toml`` of a results directory (``DataError`` if missing)."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: not a directory")
    posterior, spec = path / "posterior.nc", path / "spec.toml"
    if not posterior.is_file():
        raise DataError(f"{path}: no posterior.nc (expected a results directory written by "
                        "'bayes-poem run')")
    if not spec.is_file():
        raise DataError(f"{path}: no spec.toml (expected a results directory written by "
                        "'bayes-poem run')")
    return posterior, spec


def load_fit(path: str | Path, analysis: AnalysisSpec, spec: ModelSpec) -> FitResult:
    """The :class:`FitResult` stored in a results directory, without refitting.

    ``analysis`` and ``spec`` come from its ``spec.toml``. The posterior's
    attributes (written by :func:`bayes_poem.sampling.fit`) must describe
    exactly the model of ``spec.toml``: outcome, subgroups, data (hash and
    studies), subgroup and study effects, likelihood, moderators (names, kinds,
    centres, scales, levels, references), the priors the structure uses and
    every sampler setting. A difference is refused (``SpecError``
    naming the ``spec.toml`` key), and so is a posterior without these
    attributes or whose draws do not match them (``DataError``). Only the
    ``[summary]`` options, contrasts, title and description may be edited:
    they change how the fit is reported, not the fit.
    """
    import arviz as az

    from bayes_poem.diagnostics import check_fit
    from bayes_poem.results import FitResult

    posterior_path, _ = results_dir_files(path)
    try:
        idata = az.from_netcdf(str(posterior_path), engine="h5netcdf")
        for group in idata.groups():
            idata[group].load()
        post = idata.posterior
    except Exception as err:  # noqa: BLE001 - any unreadable file is a user error
        raise DataError(f"{posterior_path}: cannot be read as a posterior "
                        f"({type(err).__name__})") from None
    fitted = _fitted_model(post.attrs, posterior_path)
    _check_same_model(fitted, analysis, spec)
    _check_draws(idata, fitted, spec, posterior_path)
    settings = dataclasses.replace(analysis.sampler, progress=False)
    return FitResult(spec=spec, idata=idata, settings=settings,
                     diagnostics=check_fit(idata, warn=False), interval=analysis.interval,
                     weights=analysis.weights, at=analysis.at)


# Attributes that define a fitted model, and whether each is JSON.
MODEL_ATTRS = {"outcome": False, "subgroups": True, "data_hash": False, "studies": True,
               "subgroup_effects": False, "study_effects": False, "likelihood": False,
               "priors": True, "zeroed_rows": True, "sampler": True}


def _fitted_model(attrs: Mapping[str, Any], posterior_path: Path) -> dict[str, Any]:
    """The model-defining attributes of a posterior; ``DataError`` if any is missing."""
    fitted = {}
    for name, is_json in MODEL_ATTRS.items():
        if name not in attrs:
            raise DataError(f"{posterior_path}: no '{name}' attribute: not a posterior written "
                            "by this version of bayes-poem, so what was fitted is unknown; "
                            "refit it with 'bayes-poem run'")
        value = attrs[name]
        try:
            fitted[name] = json.loads(value) if is_json else str(value)
        except (TypeError, ValueError):
            raise DataError(f"{posterior_path}: attribute '{name}' is not valid JSON") from None
    kinds = {"subgroups": list, "studies": list, "priors": dict, "zeroed_rows": list,
             "sampler": dict}
    for name, kind in kinds.items():
        if not isinstance(fitted[name], kind):
            raise DataError(f"{posterior_path}: attribute '{name}' is not a JSON "
                            f"{'list' if kind is list else 'object'}")
    fitted["sampler"].pop("progress", None)
    # Optional: posteriors written before moderators existed have none.
    try:
        fitted["moderators"] = json.loads(attrs.get("moderators", "[]"))
    except (TypeError, ValueError):
        raise DataError(f"{posterior_path}: attribute 'moderators' is not valid JSON") from None
    if not isinstance(fitted["moderators"], list):
        raise DataError(f"{posterior_path}: attribute 'moderators' is not a JSON list")
    # Optional: posteriors written before tau[subgroup] existed had one tau.
    fitted["study_heterogeneity"] = str(attrs.get("study_heterogeneity", "common"))
    # Optional: posteriors written before cell effects existed had none.
    fitted["cell_effects"] = str(attrs.get("cell_effects", "none"))
    return fitted


def _check_same_model(fitted: Mapping[str, Any], analysis: AnalysisSpec,
                      spec: ModelSpec) -> None:
    """Refuse a spec.toml whose model differs from the fitted one, naming the key."""
    source = analysis.source
    data_key = "data.dataset" if "dataset" in analysis.data else "data.path"

    def differs(key: str, was: Any, now: Any) -> SpecError:
        return SpecError(f"{source}: {key} differs from the fitted model (fitted {was}, "
                         f"spec.toml {now})")

    def labels(values: Sequence[Any]) -> str:
        return "[" + ", ".join(map(str, values)) + "]"

    if fitted["outcome"] != spec.outcome:
        raise differs("data.outcome", fitted["outcome"], spec.outcome)
    if fitted["subgroups"] != list(spec.subgroups):
        raise differs("data.subgroups", labels(fitted["subgroups"]), labels(spec.subgroups))
    if fitted["data_hash"] != spec.table.data_hash() or fitted["studies"] != spec.studies:
        raise SpecError(f"{source}: {data_key}: the posterior was fitted to other data than "
                        f"spec.toml describes (data hash: fitted {fitted['data_hash']}, "
                        f"spec.toml {spec.table.data_hash()})")
    for key in ("subgroup_effects", "study_effects", "likelihood", "study_heterogeneity",
                "cell_effects"):
        if fitted[key] != getattr(spec, key):
            raise differs(f"model.{key}", fitted[key], getattr(spec, key))
    coding = [m.to_dict() for m in spec.moderators]
    if fitted["moderators"] != coding:
        was_names = [m.get("name") if isinstance(m, Mapping) else m
                     for m in fitted["moderators"]]
        now_names = [m["name"] for m in coding]
        if was_names != now_names:
            raise differs("model.moderators", labels(was_names), labels(now_names))
        k = next(k for k, (a, b) in enumerate(zip(fitted["moderators"], coding,
                                                   strict=True)) if a != b)
        raise differs(f"the coding of moderator '{now_names[k]}' (model.moderator_reference, "
                      "moderator_scale, moderator_kinds or its data)",
                      json.dumps(fitted["moderators"][k]), json.dumps(coding[k]))
    for name in spec.parameter_names():
        was, now = fitted["priors"].get(name), spec.priors[name].to_dict()
        if was != now:
            raise differs(f"priors.{name}", _prior_text(was), _prior_text(now))
    described = analysis.sampler.to_dict()
    described.pop("progress", None)
    missing = object()
    for key in [*described, *(k for k in fitted["sampler"] if k not in described)]:
        was, now = fitted["sampler"].get(key, missing), described.get(key, missing)
        if was != now:
            raise differs(f"sampler.{key}", "(not set)" if was is missing else repr(was),
                          "(not set)" if now is missing else repr(now))
    if fitted["zeroed_rows"]:
        raise SpecError(f"{source}: the posterior is of a variant with rows zeroed "
                        f"(rows {labels(fitted['zeroed_rows'])}), which no spec.toml describes")


def _prior_text(prior: Any) -> str:
    if not isinstance(prior, Mapping):
        return "(none)"
    params = {k: v for k, v in prior.items() if k != "dist"}
    return f"{prior.get('dist')}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def _check_draws(idata: Any, fitted: Mapping[str, Any], spec: ModelSpec,
                 posterior_path: Path) -> None:
    """The stored draws and data are those of the model the attributes describe."""
    from bayes_poem.backends.compiled import expanded_layout

    post = idata.posterior

    def refuse(problem: str) -> DataError:
        return DataError(f"{posterior_path}: {problem}; it is not the posterior its "
                         "attributes describe")

    for group in ("sample_stats", "observed_data", "constant_data"):
        if group not in idata.groups():
            raise refuse(f"no '{group}' group")
    sampler = fitted["sampler"]
    shape = (post.sizes.get("chain"), post.sizes.get("draw"))
    if shape != (sampler.get("chains"), sampler.get("draws")):
        raise refuse(f"{shape[0]} chains x {shape[1]} draws stored, but sampled with "
                     f"{sampler.get('chains')} x {sampler.get('draws')}")
    for name, dims_shape, dims in expanded_layout(spec):
        if name not in post:
            raise refuse(f"variable '{name}' missing")
        if (tuple(post[name].dims) != ("chain", "draw", *dims)
                or tuple(post[name].shape[2:]) != tuple(dims_shape)):
            raise refuse(f"variable '{name}' has dims {tuple(post[name].dims)}")
        if not np.isfinite(post[name].values).all():
            raise refuse(f"variable '{name}' has non-finite draws")
    for dim, values in spec.coords.items():
        if dim in post.dims and [str(v) for v in post[dim].values] != list(values):
            raise refuse(f"the '{dim}' labels differ from the data's")
    arrays = spec.arrays()
    for group, name, expected in (("observed_data", "y", arrays["events"]),
                                  ("constant_data", "total", arrays["total"])):
        stored = idata[group].get(name)
        if (stored is None or stored.shape != expected.shape
                or not (np.asarray(stored) == expected).all()):
            raise refuse(f"its {group} '{name}' differs from the data of spec.toml")


# ---------------------------------------------------------------------- HTML
CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1a1a1a; background: #ffffff; margin: 0; line-height: 1.45; font-size: 15px; }
main { max-width: 1120px; margin: 0 auto; padding: 16px 28px 40px; }
h1 { font-size: 1.6em; margin: 0.6em 0 0.2em; }
h2 { font-size: 1.3em; border-bottom: 2px solid #1f5fa8; padding-bottom: 3px;
     margin-top: 2.0em; }
h3 { font-size: 1.08em; margin-top: 1.4em; color: #1f3f6a; }
.subtitle { color: #555; margin: 0 0 1em; }
.synthetic { background: #b2182b; color: #fff; font-weight: bold; padding: 12px 18px;
             border-radius: 4px; font-size: 1.05em; margin: 12px 0; letter-spacing: 0.01em; }
.synthetic-tag { background: #b2182b; color: #fff; padding: 1px 6px; border-radius: 3px;
                 font-size: 0.8em; vertical-align: middle; }
nav { background: #f4f6f9; border: 1px solid #dde3ea; padding: 8px 14px; border-radius: 4px;
      font-size: 0.92em; }
nav { display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a { color: #1f5fa8; text-decoration: none; white-space: nowrap; }
p { margin: 0.5em 0; max-width: 60em; }
ul { margin: 0.4em 0; max-width: 60em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.88em; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 4px 0;
          color: #333; }
th, td { border: 1px solid #d4d9df; padding: 3px 8px; vertical-align: top; }
th { background: #eef2f6; text-align: left; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.flag td { background: #fde0dd; }
.table-wrap { overflow-x: auto; }
.figures { display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: flex-start; }
figure { margin: 0.8em 0 1.2em; flex: 0 1 auto; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
figcaption { font-size: 0.88em; color: #444; margin-top: 4px; max-width: 60em; }
.formulas { background: #fafbfc; border-left: 3px solid #1f5fa8; padding: 6px 14px;
            margin: 0.6em 0; }
.formula { margin: 5px 0; }
.formula math { font-size: 1.15em; math-style: normal; }
pre { background: #f6f8fa; border: 1px solid #e1e4e8; padding: 10px 12px; font-size: 0.85em;
      white-space: pre-wrap; overflow-wrap: anywhere; }
footer { margin-top: 2em; }
"""

_NUMERIC = set("0123456789.-+%[], <>≥≤")


def _is_numeric(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and any(c.isdigit() for c in stripped) and set(stripped) <= _NUMERIC


def _html_text(text: str) -> str:
    out, items = [], []

    def flush() -> None:
        if items:
            out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for block in [b for b in text.split("\n\n") if b.strip()]:
        for line in block.split("\n"):
            if line.startswith("- "):
                items.append(line[2:])
            else:
                flush()
                if line.strip():
                    out.append(f"<p>{html.escape(line)}</p>")
        flush()
    return "\n".join(out)


def _html_table(table: pd.DataFrame, caption: str) -> str:
    highlight = (table[HIGHLIGHT].fillna(False).astype(bool).tolist() if HIGHLIGHT in table
                 else [False] * len(table))
    shown = table.drop(columns=[HIGHLIGHT], errors="ignore")
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = []
    for flag, row in zip(highlight, shown.itertuples(index=False), strict=True):
        cells = []
        for value in row:
            text = "" if value is None or (isinstance(value, float) and np.isnan(value)) \
                else str(value)
            css = ' class="num"' if _is_numeric(text) else ""
            cells.append(f"<td{css}>{html.escape(text)}</td>")
        opening = '<tr class="flag">' if flag else "<tr>"
        body.append(opening + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _html_section(section: Section, level: int) -> str:
    tag = f"h{level}"
    anchor = f' id="{html.escape(section.anchor)}"' if section.anchor else ""
    parts = [f"<section{anchor}><{tag}>{html.escape(section.title)}</{tag}>"]
    if section.text:
        parts.append(_html_text(section.text))
    if section.formulas:
        parts.append('<div class="formulas">' + "".join(f.mathml for f in section.formulas)
                     + "</div>")
    if section.table is not None and not section.table.empty:
        parts.append(_html_table(section.table, section.table_caption))
    figures = []
    for figure in section.figures:
        data = base64.b64encode(figure.png).decode("ascii")
        figures.append(f'<figure><img alt="{html.escape(figure.caption)}" '
                       f'src="data:image/png;base64,{data}"><figcaption>'
                       f"{html.escape(figure.caption)}</figcaption></figure>")
    if figures:
        parts.append('<div class="figures">' + "".join(figures) + "</div>")
    if section.code:
        parts.append(f"<pre>{html.escape(section.code)}</pre>")
    for sub in section.subsections:
        parts.append(_html_section(sub, level + 1))
    parts.append("</section>")
    return "\n".join(parts)


def render_html(report: Report) -> str:
    """One self-contained HTML document (inline CSS, base64 PNGs, MathML; no scripts)."""
    banner = (f'<div class="synthetic" role="alert">{html.escape(SYNTHETIC_TEXT)}</div>'
              if report.synthetic else "")
    tag = ' <span class="synthetic-tag">SYNTHETIC DATA</span>' if report.synthetic else ""
    nav = "".join(f'<a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a>'
                  for s in (*report.sections, report.footer) if s.anchor)
    body = "\n".join(_html_section(s, 2) for s in report.sections)
    title = ("[SYNTHETIC DATA] " if report.synthetic else "") + report.title
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<header>{banner}<h1>{html.escape(report.title)}{tag}</h1>"
        f'<p class="subtitle">{html.escape(report.subtitle)}</p></header>\n'
        f"<nav>{nav}</nav>\n{body}\n<footer>{_html_section(report.footer, 2)}</footer>\n"
        f"{banner}\n</main>\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------- Markdown
def _md_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _md_table(table: pd.DataFrame, caption: str) -> str:
    highlight = (table[HIGHLIGHT].fillna(False).astype(bool).tolist() if HIGHLIGHT in table
                 else [False] * len(table))
    shown = table.drop(columns=[HIGHLIGHT], errors="ignore")
    lines = [f"*{caption}*", ""] if caption else []
    lines.append("| " + " | ".join(_md_cell(c) for c in shown.columns) + " |")
    lines.append("|" + "|".join("---" for _ in shown.columns) + "|")
    for flag, row in zip(highlight, shown.itertuples(index=False), strict=True):
        cells = [_md_cell(v) for v in row]
        if flag:
            cells[0] = f"**{cells[0]}** ⚑"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _md_section(section: Section, level: int, names: Mapping[int, str]) -> str:
    parts = ["#" * level + " " + section.title]
    if section.text:
        parts.append(section.text)
    if section.formulas:
        parts.append("```text\n" + "\n".join(f.text for f in section.formulas) + "\n```")
    if section.table is not None and not section.table.empty:
        parts.append(_md_table(section.table, section.table_caption))
    for figure in section.figures:
        parts.append(f"![{figure.caption}]({names[id(figure)]})\n\n*{figure.caption}*")
    if section.code:
        parts.append("```toml\n" + section.code.rstrip() + "\n```")
    for sub in section.subsections:
        parts.append(_md_section(sub, level + 1, names))
    return "\n\n".join(parts)


def figure_file_names(report: Report) -> dict[int, str]:
    """``id(figure)`` -> ``figNN_name.png``, in order of appearance."""
    return {id(fig): f"fig{i:02d}_{fig.name}.png"
            for i, fig in enumerate(report.all_figures(), start=1)}


def render_markdown(report: Report) -> tuple[str, dict[str, bytes]]:
    """Markdown text and the PNG files it links to (file name -> bytes)."""
    names = figure_file_names(report)
    parts = [f"# {report.title}"]
    if report.synthetic:
        parts.append(f"> **{SYNTHETIC_TEXT}**")
    parts.append(report.subtitle)
    parts += [_md_section(s, 2, names) for s in report.sections]
    parts.append(_md_section(report.footer, 2, names))
    if report.synthetic:
        parts.append(f"> **{SYNTHETIC_TEXT}**")
    files = {names[id(fig)]: fig.png for fig in report.all_figures()}
    return "\n\n".join(parts) + "\n", files


def report_writers(report: Report) -> dict[str, Callable[[Path], None]]:
    """Writers for :func:`bayes_poem.outputs.write_directory`: HTML, Markdown, PNGs."""
    html_text = render_html(report)
    markdown, files = render_markdown(report)

    def text_writer(content: str) -> Callable[[Path], None]:
        return lambda path: path.write_text(content, encoding="utf-8")

    def bytes_writer(content: bytes) -> Callable[[Path], None]:
        return lambda path: path.write_bytes(content)

    writers = {"report.html": text_writer(html_text), "report.md": text_writer(markdown)}
    writers.update({name: bytes_writer(png) for name, png in files.items()})
    return writers


def write_report(report: Report, out: str | Path, *, force: bool = False) -> Path:
    """Write ``report.html``, ``report.md`` and the PNGs atomically to ``out``."""
    from bayes_poem.outputs import write_directory

    return write_directory(Path(out), report_writers(report), force=force)
