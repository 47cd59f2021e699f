"""``bayes-poem run`` for a joint spec (``[data] outcomes = [...]``): fit, tables, figures.

The same results-directory writer as the one-outcome ``run``
(:func:`bayes_poem.outputs.reserve` before the work, :func:`bayes_poem.bundle.write_bundle`
at its end: a failed or interrupted fit writes nothing). Files: ``posterior.nc``,
``summary.csv`` (per outcome x subgroup x quantity), ``heterogeneity.csv``
(``tau`` per outcome, ``rho``), ``benefit_risk.csv``, ``joint_contrasts.csv``,
``diagnostics.csv``, ``spec.toml`` (resolved), ``summary.txt`` and one
``joint_<subgroup>.png`` per subgroup.

``bayes-poem report`` of a joint spec or of such a directory is :func:`report_joint`
(sections: :mod:`bayes_poem.report.sections.joint`).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
import warnings

import pandas as pd

from bayes_poem.errors import ConvergenceWarning
from bayes_poem.joint_results import JointResult, with_options

__all__ = ["render", "report_joint", "run_joint"]


def run_joint(args: argparse.Namespace, analysis) -> int:
    from bayes_poem.bundle import Bundle, write_bundle
    from bayes_poem.cli_support import EXIT_DIAGNOSTICS, EXIT_OK
    from bayes_poem.cli_support import out_path as _out_path
    from bayes_poem.cli_support import progress as _progress
    from bayes_poem.cli_support import spec_inputs as _inputs
    from bayes_poem.exports import JOINT_CAPTIONS, table_files
    from bayes_poem.joint_plots import joint_figure
    from bayes_poem.outputs import check_target, reserve, write_netcdf
    from bayes_poem.plots import to_png
    from bayes_poem.results_dir import default_out

    out = _out_path(args, default_out("run", args.spec))
    inputs = _inputs(analysis, args.spec)
    check_target(out, force=args.force, protect=inputs)
    spec = analysis.model_spec()
    with reserve(out, force=args.force, protect=inputs, command="run") as target:
        table = spec.table  # tagged as a one-outcome run's: [data] label, SYNTHETIC
        tags = [table.metadata["label"]] if table.metadata.get("label") else []
        tags += ["SYNTHETIC"] if table.is_synthetic else []
        named = f" ({'; '.join(tags)})" if tags else ""
        _progress(f"data loaded from {table.source}{named}: {len(spec.studies)} studies, "
                  f"outcomes {' and '.join(spec.outcomes)} (joint model)", args.quiet)
        settings = dataclasses.replace(analysis.sampler, progress=not args.quiet)
        _progress(f"sampling {settings.chains} chains x {settings.draws} draws "
                  f"({settings.tune} tuning), seed {settings.seed}", args.quiet)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the summary
            result = spec.fit(settings)
        _progress(f"sampling done in {time.perf_counter() - started:.1f} s", args.quiet)
        result = with_options(result, interval=analysis.interval,
                              benefit_risk=analysis.benefit_risk)
        benefit_risk = result.benefit_risk_table()
        contrasts = result.joint_contrasts(list(analysis.pairs) or None)
        text = render(result, benefit_risk, contrasts, title=analysis.title)
        tables = {
            "summary.csv": result.outcome_summary(),
            "heterogeneity.csv": result.heterogeneity(),
            "benefit_risk.csv": benefit_risk,
            "joint_contrasts.csv": contrasts,
            "diagnostics.csv": result.diagnostics.table,
        }
        figures = _figure_pngs(result, benefit_risk, analysis.title, joint_figure, to_png)
        exported = {**tables, "diagnostics.csv": result.diagnostics.table.reset_index()}
        write_bundle(Bundle(text=text, text_name="summary.txt", tables=tables, figures=figures,
                            files={"posterior.nc": write_netcdf(result.idata),
                                   # every table also as NAME.tex and in tables.docx
                                   **table_files(exported, JOINT_CAPTIONS,
                                                   title=analysis.title,
                                                   synthetic=spec.table.is_synthetic)},
                            spec_toml=analysis.resolved_toml(spec),
                            indexed=frozenset({"diagnostics.csv"})), target)
    print(text)
    print(f"\nResults written to {out}/")
    problems = list(result.diagnostics.problems)
    if problems and args.strict:
        sys.stderr.write("bayes-poem: sampler diagnostics failed (--strict): "
                         + "; ".join(problems) + "\n")
        return EXIT_DIAGNOSTICS
    return EXIT_OK


def report_joint(args: argparse.Namespace, analysis, target, out, inputs, *,
                 from_results: bool) -> int:
    """``bayes-poem report`` of a joint spec (fitted here) or of a joint results directory
    (its ``posterior.nc`` and ``spec.toml``, not refitted); ``out`` was checked by the
    caller. A ``benefit_risk_sensitivity.csv`` beside the results (or in
    ``results/<spec name>_sensitivity`` for a spec) adds its section."""
    from pathlib import Path

    from bayes_poem.bundle import write_bundle
    from bayes_poem.cli_support import EXIT_OK
    from bayes_poem.cli_support import progress as _progress
    from bayes_poem.errors import SpecError
    from bayes_poem.outputs import reserve
    from bayes_poem.report import report_bundle
    from bayes_poem.report.sections.joint import build_joint_report
    from bayes_poem.results_dir import (
        REPORT_HTML,
        REPORT_MD,
        default_out,
        find_joint_sensitivity,
        load_joint_fit,
    )

    if args.new_centre_n is not None:
        raise SpecError("--new-centre-n: the joint model's report has no predictions for a "
                        "new centre (leave it out)")
    spec = analysis.model_spec()  # every user error before the directory is reserved
    target = Path(target)
    sensitivity = find_joint_sensitivity(target if from_results
                                         else default_out("run", target))
    with reserve(out, force=args.force, protect=inputs, command="report") as reserved:
        if from_results:
            result = load_joint_fit(target, analysis, spec)
        else:
            _progress(f"data loaded from {spec.table.source}: {len(spec.studies)} studies, "
                      f"outcomes {' and '.join(spec.outcomes)} (joint model)", args.quiet)
            settings = dataclasses.replace(analysis.sampler, progress=not args.quiet)
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # shown in the report
                result = spec.fit(settings)
            _progress(f"sampling done in {time.perf_counter() - started:.1f} s", args.quiet)
            result = with_options(result, interval=analysis.interval,
                                  benefit_risk=analysis.benefit_risk)
        report = build_joint_report(result, analysis=analysis, sensitivity=sensitivity,
                                    progress=lambda message: _progress(message, args.quiet))
        write_bundle(report_bundle(report), reserved)
    print(f"Report written to {out}/{REPORT_HTML} and {out}/{REPORT_MD}")
    return EXIT_OK


def _figure_pngs(result: JointResult, benefit_risk: pd.DataFrame, title: str, joint_figure,
                 to_png) -> dict[str, bytes]:
    """``joint_<subgroup>.png`` per subgroup, drawn now."""
    br = result.benefit_risk
    probs = result.probabilities()[br.quantity]
    benefit, harm = result.spec.outcomes
    pngs = {}
    for label in result.spec.subgroups:
        row = benefit_risk[(benefit_risk.subgroup == label)
                           & (benefit_risk.quantity == br.quantity)].iloc[0]
        fig = joint_figure(benefit=probs.sel(outcome=benefit, subgroup=label).values,
                           harm=probs.sel(outcome=harm, subgroup=label).values,
                           benefit_min=br.benefit_min, harm_max=br.harm_max,
                           p_both=float(row.p_both), subgroup=label,
                           outcomes=result.spec.outcomes, quantity=br.quantity, title=title)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)
        pngs[f"joint_{safe}.png"] = to_png(fig)
    return pngs


def _pct(value: float) -> str:
    return f"{100 * value:5.1f}%"


def render(result: JointResult, benefit_risk: pd.DataFrame, contrasts: pd.DataFrame, *,
           title: str = "") -> str:
    """The plain-text summary of a joint fit (formatting only)."""
    from bayes_poem.banner import synthetic_banner

    spec = result.spec
    br = result.benefit_risk
    lines = [synthetic_banner(spec.table)] if spec.table.is_synthetic else []
    if title:
        lines.append(title)
    benefit, harm = spec.outcomes
    lines.append(f"Joint model of {benefit} (benefit) and {harm} (harm): "
                 f"{len(spec.studies)} studies, subgroups {', '.join(spec.subgroups)}; "
                 f"subgroup_effects={spec.subgroup_effects}; rho prior "
                 f"{spec.describe_priors()['rho']}")
    summary = result.outcome_summary()
    interval = summary["interval"].iloc[0]
    lines += ["", f"Population-averaged rates (p_mean), posterior median [{interval}]",
              f"{'subgroup':<12} {benefit:>32} {harm:>32}"]
    for label in [*spec.subgroups, "overall"]:
        cells = []
        for outcome in spec.outcomes:
            row = summary[(summary.outcome == outcome) & (summary.subgroup == label)
                          & (summary.quantity == "p_mean")].iloc[0]
            cells.append(f"{_pct(row['median'])} [{_pct(row['lower'])}, {_pct(row['upper'])}]")
        lines.append(f"{label:<12} {cells[0]:>32} {cells[1]:>32}")
    het = result.heterogeneity()
    lines += ["", f"Between-study SDs and correlation, posterior median [{interval}]"]
    for row in het[het.parameter.isin(["tau", "rho"])].itertuples(index=False):
        name = "rho" if row.parameter == "rho" else f"tau[{row.outcome}]"
        lines.append(f"  {name:<26} {row.median:6.3f} [{row.lower:6.3f}, {row.upper:6.3f}]")
    lines += ["", f"Benefit-risk ({br.quantity}): P({benefit} >= {br.benefit_min:g}), "
                  f"P({harm} <= {br.harm_max:g}), both; net benefit "
                  f"{br.benefit_weight:g} x {benefit} - {br.harm_weight:g} x {harm}",
              f"{'subgroup':<12} {'P(benefit)':>10} {'P(harm)':>8} {'P(both)':>8}   "
              f"net benefit [{interval}]"]
    for row in benefit_risk[benefit_risk.quantity == br.quantity].itertuples(index=False):
        lines.append(f"{row.subgroup:<12} {row.p_benefit_ok:10.3f} {row.p_harm_ok:8.3f} "
                     f"{row.p_both:8.3f}   {row.net_benefit_median:6.3f} "
                     f"[{row.net_benefit_lower:6.3f}, {row.net_benefit_upper:6.3f}]")
    lines += ["", f"Subgroups compared on both outcomes ({br.quantity}): P(A better on both) "
                  "= P(higher benefit and lower harm)",
              f"{'A vs B':<26} {'P(better both)':>14} {'P(worse both)':>13}   "
              f"net benefit A - B [{interval}]"]
    for row in contrasts.itertuples(index=False):
        lines.append(f"{row.a + ' vs ' + row.b:<26} {row.p_better_both:14.3f} "
                     f"{row.p_worse_both:13.3f}   {row.net_benefit_difference_median:6.3f} "
                     f"[{row.net_benefit_difference_lower:6.3f}, "
                     f"{row.net_benefit_difference_upper:6.3f}]")
    lines += ["", f"Sampler: {result.diagnostics.summary_line()}"]
    if result.diagnostics.problems:
        lines.append("WARNING: " + "; ".join(result.diagnostics.problems))
    if spec.table.is_synthetic:
        lines += ["", synthetic_banner(spec.table)]
    return "\n".join(lines)
