"""Plain-text rendering of fit summaries for the terminal (no computation here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from bayes_poem.banner import synthetic_banner
from bayes_poem.structure import recorded_line

if TYPE_CHECKING:  # FitResult.summary() imports this module: no import back at run time
    from bayes_poem.results import FitResult



def _pct(value: float) -> str:
    return f"{100 * value:5.1f}%"


def subgroup_lines(table: pd.DataFrame) -> list[str]:
    interval = table["interval"].iloc[0]
    w = max(12, *(len(str(s)) for s in table["subgroup"]))  # display names can be long
    header = (f"{'subgroup':<{w}} {'n':>4} {'observed':>8}   {'median study (p_pooled)':<26}"
              f" {'population mean (p_mean)':<26} {'new study (p_new)':<26}")
    lines = [f"Pooled probabilities, posterior median [{interval}]", header]
    for label, group in table.groupby("subgroup", sort=False):
        cells = []
        for quantity in ("p_pooled", "p_mean", "p_new"):
            row = group[group["quantity"] == quantity].iloc[0]
            cells.append(f"{_pct(row['median'])} [{_pct(row['lower'])}, {_pct(row['upper'])}]")
        first = group.iloc[0]
        lines.append(f"{label:<{w}} {int(first['total']):>4} {_pct(first['observed']):>8}   "
                     + " ".join(f"{c:<26}" for c in cells))
    return lines


def heterogeneity_lines(table: pd.DataFrame) -> list[str]:
    if table.empty:
        return ["Heterogeneity: none modelled (common-effect model, tau = 0)"]
    interval = table["interval"].iloc[0]
    lines = [f"Heterogeneity (tau, tau2, sigma_subgroup on the logit scale; i2 as a "
             f"proportion), posterior median [{interval}]"]
    width = max(15, *(len(p) for p in table["parameter"]))  # tau2[<subgroup>] can be long
    for row in table.itertuples(index=False):
        lines.append(f"  {row.parameter:<{width}} {row.median:7.3f} "
                     f"[{row.lower:.3f}, {row.upper:.3f}]")
    return lines


def moderator_lines(table: pd.DataFrame, at: str) -> list[str]:
    """The coefficient table of a meta-regression (empty without moderators)."""
    if table.empty:
        return []
    interval = table["interval"].iloc[0]
    lines = [f"Moderators (logit scale per coded unit: per SD of a numeric moderator by "
             f"default, or a level against the reference), posterior median [{interval}]; "
             f"pooled probabilities above are at {at}",
             f"{'term':<24} {'reference':<12} {'beta':>7} {'interval':<19} "
             f"{'OR per unit':<24} {'OR per SD':<24} {'P(beta>0)':>9}"]
    for row in table.itertuples(index=False):
        per_sd = ("-" if row.kind != "numeric" else
                  f"{row.or_sd_median:.3g} [{row.or_sd_lower:.3g}, {row.or_sd_upper:.3g}]")
        per_unit = f"{row.or_unit_median:.3g} [{row.or_unit_lower:.3g}, {row.or_unit_upper:.3g}]"
        lines.append(f"{row.term:<24} {row.reference:<12} {row.median:7.3f} "
                     f"[{row.lower:6.3f}, {row.upper:6.3f}]  {per_unit:<24} {per_sd:<24} "
                     f"{row.p_gt_0:9.3f}")
    return lines


def explained_lines(table: pd.DataFrame | None, result: FitResult) -> list[str]:
    """tau with and without the moderators and R^2 (``bayes_poem.explained``); with
    moderators but no random study effects, one line saying R^2 is not defined."""
    if not result.spec.moderators:
        return []
    if table is None or table.empty:
        return ["Share of tau^2 explained by the moderators (R^2): not defined, the model "
                "has no random study effects (no tau^2)"]
    interval = table["interval"].iloc[0]
    lines = [f"Share of tau^2 explained by the moderators: tau (logit scale) with and without "
             f"them, posterior median [{interval}], and R^2 = max(0, 1 - median tau^2 with / "
             "median tau^2 without) (two fits compared: no interval)",
             f"  {'':<20} {'tau with moderators':<26} {'tau without':<26} {'R^2':>6}"]
    for row in table.itertuples(index=False):
        name = row.parameter.replace("r2_tau2", "tau", 1)
        with_ = f"{row.tau_with_median:.3f} [{row.tau_with_lower:.3f}, {row.tau_with_upper:.3f}]"
        without = (f"{row.tau_without_median:.3f} [{row.tau_without_lower:.3f}, "
                   f"{row.tau_without_upper:.3f}]")
        lines.append(f"  {name:<20} {with_:<26} {without:<26} {row.r2:6.3f}")
    return lines


def explained_problems(table: pd.DataFrame | None) -> list[str]:
    """Failed diagnostics of the fit without moderators (one per item, no repeats)."""
    if table is None or table.empty:
        return []
    text = str(table["problems_without"].iloc[0] or "")
    return [p for p in text.split("; ") if p]


def _at_text(result: FitResult) -> str:
    values = {m.name: (f"{m.centre:g}" if m.kind == "numeric" else str(m.reference))
              for m in result.spec.moderators}
    values.update({k: str(v) for k, v in (result.at or {}).items()})
    kind = "the given values" if result.at else "the reference values"
    return f"{kind} (" + ", ".join(f"{k} = {v}" for k, v in values.items()) + ")"


def contrast_lines(table: pd.DataFrame) -> list[str]:
    """The contrasts; with the unpooled columns (``bayes_poem.unpooled``) the unpooled
    contrast's median, interval and P(>null) beside each row."""
    if table.empty:
        return []
    interval = table["interval"].iloc[0]
    w = max(26, *(len(str(c)) for c in table["contrast"]))
    unpooled = "unpooled_median" in table and table["unpooled_median"].notna().any()
    lines = [f"Contrasts, posterior median [{interval}]"
             + ("; partially pooled (random subgroup effects), and unpooled (a fit with "
                "fixed subgroup effects)" if unpooled else ""),
             f"{'contrast':<{w}} {'scale':<11} {'median':>8} {interval:<22} "
             f"{'P(>null)':>9} {'margin':>7} {'P(>margin)':>10}"
             + (f" | {'unpooled':>8} {interval:<22} {'P(>null)':>9}" if unpooled else "")]
    for row in table.itertuples(index=False):
        lines.append(
            f"{row.contrast:<{w}} {row.scale:<11} {row.median:8.3f} "
            f"[{row.lower:7.3f}, {row.upper:7.3f}]   {row.p_gt_null:9.3f} "
            f"{row.margin:7.3g} {row.p_gt_margin:10.3f}"
            + (f" | {row.unpooled_median:8.3f} [{row.unpooled_lower:7.3f}, "
               f"{row.unpooled_upper:7.3f}]   {row.unpooled_p_gt_null:9.3f}"
               if unpooled else "")
        )
    if unpooled and str(table["unpooled_problems"].iloc[0]):
        lines.append("WARNING (unpooled fit): " + str(table["unpooled_problems"].iloc[0]))
    return lines


def render(result: FitResult, contrasts: pd.DataFrame, *, title: str = "",
           explained: pd.DataFrame | None = None) -> str:
    """The report of ``result``; ``explained`` is its ``tau2_explained`` table (shown
    with moderators; its refit's failed diagnostics become ``WARNING`` lines)."""
    spec = result.spec
    lines = []
    if spec.table.is_synthetic:
        lines.append(synthetic_banner(spec.table))
    if title:
        lines.append(title)
    lines.append(
        f"Outcome: {spec.outcome} | data: {spec.table.source} | {len(spec.studies)} studies, "
        f"{int(spec.table.frame['total'].sum())} patients"
        + (f" | moderators: {', '.join(m.name for m in spec.moderators)}"
           if spec.moderators else "")
    )
    lines.append(recorded_line(spec, result.idata.posterior.attrs))
    lines.append("Priors: " + "; ".join(f"{k} ~ {v}" for k, v in spec.describe_priors().items()))
    lines.append("Diagnostics: " + result.diagnostics.summary_line()
                 + (" -- OK" if result.diagnostics.ok else ""))
    for problem in result.diagnostics.problems:
        lines.append(f"WARNING: {problem}")
    for problem in explained_problems(explained):
        lines.append(f"WARNING (fit without moderators, for R^2): {problem}")
    lines.append("")
    summary = result.subgroup_summary()
    if result.labels:  # display names ([labels]); the CSV files keep the codes
        summary = summary.assign(subgroup=summary["subgroup"].map(result.label_of))
        if not contrasts.empty:
            contrasts = contrasts.assign(contrast=[
                f"{result.label_of(a)} vs {result.label_of(b)}"
                for a, b in zip(contrasts["a"], contrasts["b"], strict=True)])
    lines += subgroup_lines(summary)
    lines.append("")
    lines += heterogeneity_lines(result.heterogeneity())
    if spec.moderators:
        lines.append("")
        lines += moderator_lines(result.moderator_summary(), _at_text(result))
        lines.append("")
        lines += explained_lines(explained, result)
    contrast_text = contrast_lines(contrasts)
    if contrast_text:
        lines.append("")
        lines += contrast_text
    if spec.table.is_synthetic:
        lines.append("")
        lines.append(synthetic_banner(spec.table))
    return "\n".join(lines)
