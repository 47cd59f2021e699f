"""Plain-text reports and output files of trial analyses (formatting only).

A :class:`TrialReport` is what a run returns; its :meth:`TrialReport.bundle` is
what ``bayes-poem trial`` writes (:func:`bayes_poem.bundle.write_bundle`). The
texts open with the one SYNTHETIC banner (:mod:`bayes_poem.banner`) when the
data are synthetic, saying what they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_poem.banner import BANNER_START, marked_synthetic, synthetic_banner
from bayes_poem.bundle import Bundle

Writer = Callable[[Path], None]


@dataclass(frozen=True)
class TrialReport:
    """What a trial analysis produces: text, tables, figures and other files."""

    text: str
    tables: Mapping[str, pd.DataFrame]
    figures: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, Writer] = field(default_factory=dict)
    resolved_toml: str = ""
    results: tuple[Any, ...] = ()

    def bundle(self) -> Bundle:
        """The results directory's files (:func:`bayes_poem.bundle.write_bundle`):
        ``<table>.csv`` (also as ``<table>.tex`` and in ``tables.docx``), ``<figure>.png``,
        other files, ``spec.toml``, ``summary.txt``."""
        from bayes_poem.exports import TRIAL_CAPTIONS, table_files

        tables = {f"{name}.csv": table for name, table in self.tables.items()}
        exported = table_files(tables, TRIAL_CAPTIONS,
                                 synthetic=self.text.startswith(BANNER_START))
        return Bundle(text=self.text, text_name="summary.txt", tables=tables,
                      figures={f"{name}.png": figure for name, figure in self.figures.items()},
                      files={**self.files, **exported}, spec_toml=self.resolved_toml or None)


def netcdf(idata: Any) -> Writer:
    """Serialised in memory first, so a full disk is one clean ``OSError``."""
    from bayes_poem.outputs import write_netcdf

    return write_netcdf(idata)


def _num(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.4g}"


def interval_lines(table: pd.DataFrame, label_column: str = "quantity") -> list[str]:
    """``name  median [lower, upper]`` lines of a summary table (with its interval label)."""
    if table.empty:
        return []
    lines = [f"  posterior median [{table['interval'].iloc[0]}]"]
    width = max(len(str(v)) for v in table[label_column]) + 2
    for row in table.itertuples(index=False):
        label = getattr(row, label_column)
        lines.append(f"  {label:<{width}} {_num(row.median):>9} "
                     f"[{_num(row.lower)}, {_num(row.upper)}]")
    return lines


def _description(synthetic: str | bool) -> str:
    """What synthetic data are ("" for real data; a bare flag: marked synthetic)."""
    if isinstance(synthetic, str):
        return synthetic
    return marked_synthetic("the data") if synthetic else ""


def header(title: str, synthetic: str | bool) -> list[str]:
    """The SYNTHETIC banner (``synthetic``: what the data are, or a flag) and the title."""
    description = _description(synthetic)
    lines = [synthetic_banner(description)] if description else []
    if title:
        lines.append(title)
    return lines


def binary_text(result: Any, title: str) -> str:
    lines = header(title, False)
    ni = result.noninferiority().iloc[0]
    lines.append(f"Trial {result.trial}, outcome {result.outcome} ({result.kind}); "
                 f"anterior {result.anterior.events}/{result.anterior.total}, posterior "
                 f"{result.posterior.events}/{result.posterior.total}; priors "
                 f"{result.prior_anterior.describe()} / {result.prior_posterior.describe()}")
    lines.append("")
    lines += interval_lines(result.summary())
    lines.append("")
    lines.append(f"Non-inferiority of posterior myotomy, margin {result.margin:g}: "
                 f"{ni['hypothesis']}")
    lines.append(f"  exact (quadrature) {ni['p_noninferior_exact']:.4f}; from "
                 f"{int(ni['draws'])} draws {ni['p_noninferior']:.4f} (MCSE {ni['mcse']:.4f})")
    lines.append(f"  P(posterior arm better) {ni['p_posterior_better']:.3f}")
    return "\n".join(lines)


def continuous_text(result: Any, title: str, synthetic: str = "") -> str:
    lines = header(title, synthetic or result.synthetic)
    lines.append(f"Outcome {result.outcome} ({result.better} is better); method "
                 f"{result.method}")
    for assumption in result.assumptions:
        lines.append(f"  assumed: {assumption}")
    if result.diagnostics is not None:
        lines.append("Diagnostics: " + result.diagnostics.summary_line()
                     + (" -- OK" if result.diagnostics.ok else ""))
        lines += [f"WARNING: {p}" for p in result.diagnostics.problems]
    lines.append("")
    lines += interval_lines(result.summary())
    ni = result.noninferiority().iloc[0]
    lines.append("")
    lines.append(f"Non-inferiority of posterior myotomy, margin {result.margin:g} "
                 f"({result.outcome} units): {ni['hypothesis']}")
    exact = ni["p_noninferior_exact"]
    lines.append(f"  from draws {ni['p_noninferior']:.4f} (MCSE {ni['mcse']:.4f})"
                 + ("" if pd.isna(exact) else f"; exact (normal) {exact:.4f}"))
    return "\n".join(lines)


def meta_text(results: list[Any], title: str) -> str:
    lines = header(title, False)
    for result in results:
        lines.append("")
        lines.append(f"== {result.outcome}: trials {', '.join(result.studies)} ==")
        lines.append("Priors: " + "; ".join(f"{k} ~ {p.describe()}"
                                             for k, p in result.priors.items()))
        lines.append("Diagnostics: " + result.diagnostics.summary_line()
                     + (" -- OK" if result.diagnostics.ok else ""))
        lines += [f"WARNING: {p}" for p in result.diagnostics.problems]
        lines += interval_lines(result.summary())
        ni = result.noninferiority()
        for row in ni.itertuples(index=False):
            lines.append(f"  non-inferiority ({row.effect}, at the pooled anterior rate): "
                         f"{row.hypothesis} = {row.p_noninferior:.3f}")
        published = result.published_comparison()
        if not published.empty:
            lines.append("  Published (95% CI) beside ours (posterior median "
                         f"[{published['interval'].iloc[0]}]):")
            for row in published.itertuples(index=False):
                lines.append(
                    f"    {row.source:<27} {row.measure} {row.published:.2f} "
                    f"({row.published_lower:.2f}-{row.published_upper:.2f})  |  ours "
                    f"{row.ours_median:.2f} [{row.ours_lower:.2f}, {row.ours_upper:.2f}]")
        lines.append("  Notes:")
        lines += [f"  - {note}" for note in result.notes]
    return "\n".join(lines)


def normal_meta_text(result: Any, title: str, synthetic: str | bool) -> str:
    lines = header(title, synthetic)
    lines.append(f"Outcome {result.outcome}: {len(result.data)} trials; {result.measure}")
    lines.append("Priors: " + "; ".join(f"{k} ~ {p.describe()}" for k, p in
                                         result.priors.items()))
    lines.append("Diagnostics: " + result.diagnostics.summary_line()
                 + (" -- OK" if result.diagnostics.ok else ""))
    lines += [f"WARNING: {p}" for p in result.diagnostics.problems]
    lines += interval_lines(result.summary())
    lines += [f"  - {note}" for note in result.notes]
    return "\n".join(lines)


def assurance_text(result: Any, meta: Any, title: str) -> str:
    lines = header(title, False)
    lines.append(f"Final analysis rule: {result.rule.statement}")
    lines.append(f"Predictive log odds ratio of a new trial: mean {result.theta_mean:.3f}, "
                 f"SD {result.theta_sd:.3f}; baseline: {result.baseline}")
    if meta is not None:
        lines.append("Diagnostics of the meta-analysis: " + meta.diagnostics.summary_line()
                     + (" -- OK" if meta.diagnostics.ok else ""))
        lines += [f"WARNING: {p}" for p in meta.diagnostics.problems]
    lines.append("")
    lines.append(f"  {'N per arm':>9}  {'assurance':>9}  {'MCSE':>6}  {'normal approx.':>14}")
    for row in result.curve.itertuples(index=False):
        lines.append(f"  {row.n_per_arm:>9}  {row.assurance:9.3f}  {row.mcse:6.3f}  "
                     f"{row.normal_approximation:14.3f}")
    lines.append(f"  ({result.simulations} simulated trials per N, seed {result.seed})")
    lines += [f"  - {note}" for note in result.notes]
    return "\n".join(lines)


def interim_text(result: Any, title: str) -> str:
    lines = header(title, False)
    row = result.summary().iloc[0]
    lines.append(f"Interim data: anterior {row['anterior_interim']}, posterior "
                 f"{row['posterior_interim']}; planned {result.n_per_arm} per arm")
    lines.append(f"Final analysis rule: {result.rule.statement}")
    lines.append(f"  current P(non-inferior): {result.current_p_noninferior:.4f}")
    lines.append(f"  predictive probability of success: {result.predictive_probability:.4f} "
                 f"(MCSE {result.mcse:.4f}, {result.simulations} simulations)")
    return "\n".join(lines)
