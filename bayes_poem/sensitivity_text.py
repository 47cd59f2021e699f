"""The text of ``bayes-poem sensitivity`` (printed and written as ``sensitivity.txt``).

Formatting only: the grid's size line, notes on variants that cannot be fitted,
the compact table of contrasts (or heterogeneity) per variant; for a crossed
grid of two axes, the crossed variants as one table per such quantity (its
median; rows: first axis, columns: second); failed variants, and the power-scaling
diagnostics of the main fit. The SYNTHETIC banner opens and closes the text of
synthetic data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from bayes_poem.sensitivity_grid import AXIS_LABELS, CROSSED, MAIN, GridPlan
from bayes_poem.sensitivity_run import SensitivityResult


def sensitivity_text(*, title: str | None, synthetic: str, result: SensitivityResult,
                     by_variant: pd.DataFrame, psens: pd.DataFrame | None,
                     plan: GridPlan | None = None, structure: str | None = None,
                     interval_label: str = "interval") -> str:
    """The report text of a grid's result (``synthetic``: the SYNTHETIC banner line,
    ``banner.synthetic_banner``, or "" for real data; ``by_variant``: ``summarise_by_variant``;
    ``structure``: the main analysis's structure line, ``structure.structure_line``;
    ``interval_label``: the intervals' kind and level, e.g. ``95% ETI``)."""
    lines = [synthetic] if synthetic else []
    if title:
        lines.append(title)
    if plan is not None:
        lines.append(plan.summary())
        lines += list(plan.notes)
    n_failed = int((by_variant["status"] == "failed").sum())
    lines.append(f"Sensitivity analysis: {len(by_variant)} variants in {result.seconds:.1f} s "
                 f"({n_failed} failed); decision threshold P(>0) = {result.threshold:g}")
    if structure:
        lines.append(f"Main analysis: {structure}")
    if result.warm is not None:
        lines.append(f"Variants warm-started from the main fit: initial step size "
                     f"{result.warm.initial_step:.3g}, {result.warm.tune} tuning steps"
                     + _targets(result, by_variant))
    compact = result.compact()
    pivot = plan is not None and len(plan.axes) == 2
    if pivot:  # the crossed variants are shown as tables below, one per quantity
        crossed = set(result.table.loc[result.table["group"] == CROSSED, "variant"])
        quantities = list(dict.fromkeys(compact["quantity"]))
        compact = compact[~compact["variant"].isin(crossed)]
    if not compact.empty:
        lines.append("")
        lines.append(f"{'variant':<34} {'quantity':<36} {'median':>7} {interval_label:<19} "
                     f"{'P(>0)':>6}  flag")
        for row in compact.itertuples(index=False):
            p = "" if row.p_gt_0 != row.p_gt_0 else f"{row.p_gt_0:6.3f}"
            lines.append(f"{row.variant[:34]:<34} {row.quantity[:36]:<36} {row.median:7.3f} "
                         f"[{row.lower:7.3f}, {row.upper:7.3f}] {p:>6}  {row.flag or ''}")
    if pivot:
        for quantity in quantities:
            lines += crossed_table(result.table, [axis for axis, _ in plan.axes], quantity)
    failed = result.failed
    if not failed.empty:
        lines.append("")
        lines.append("Failed variants (reported, not fatal):")
        for row in failed.itertuples(index=False):
            lines.append(f"  {row.variant}: {row.error}")
    if psens is not None:
        lines.append("")
        lines.append("Power-scaling sensitivity of the main fit (ArviZ psens; > 0.05 is "
                     "notable)")
        for row in psens.itertuples(index=False):
            lines.append(f"  {row.parameter:<22} prior {row.prior_sensitivity:6.3f}  "
                         f"likelihood {row.likelihood_sensitivity:6.3f}  {row.diagnosis}")
    if synthetic:
        lines += ["", synthetic]
    return "\n".join(lines)


def crossed_table(table: pd.DataFrame, axes: Sequence[str], quantity: str) -> list[str]:
    """The median of ``quantity`` over a two-axis crossed grid: a row per level of
    ``axes[0]``, a column per level of ``axes[1]``; ``*`` marks a flagged cell,
    ``-`` a failed one."""
    rows, columns = axes
    crossed = table[table["group"] == CROSSED]
    if crossed.empty:
        return []
    row_levels = list(dict.fromkeys(crossed[rows]))
    column_levels = list(dict.fromkeys(crossed[columns]))
    cells: dict[tuple[Any, Any], str] = {}
    for row in crossed.itertuples(index=False):
        key = (getattr(row, rows), getattr(row, columns))
        if row.status == "failed":
            cells.setdefault(key, "-")
        elif row.quantity == quantity:
            cells[key] = f"{row.median:.3f}" + ("*" if row.flag else "")
    width = max(8, *(len(str(c)) for c in column_levels))
    first = max(len(AXIS_LABELS[rows]), *(len(str(r)) for r in row_levels))
    lines = ["", f"Median of {quantity} over the crossed grid ({AXIS_LABELS[rows]} x "
                 f"{AXIS_LABELS[columns]}; * flagged, - failed)",
             f"{AXIS_LABELS[rows]:<{first}}  " + "  ".join(f"{str(c):>{width}}"
                                                         for c in column_levels)]
    for level in row_levels:
        lines.append(f"{str(level):<{first}}  " + "  ".join(
            f"{cells.get((level, c), ''):>{width}}" for c in column_levels))
    return lines


def _targets(result: SensitivityResult, by_variant: pd.DataFrame) -> str:
    """Where the variants' adaptive target_accept started, and how many were refitted
    higher; with pilot variants that raised it (``sensitivity_run``), said so."""
    start = result.warm.target_accept
    if start is None:
        return ""
    if result.raised_to is None:
        return f", target_accept from {start:g}" + _refitted(by_variant, start)
    others = by_variant[~by_variant["variant"].isin(result.pilots)]
    n_others = int((others["variant"] != MAIN).sum())
    return (f", target_accept from {start:g}; the first {len(result.pilots)} variants "
            f"(pilots) were all refitted higher after divergences, so the other {n_others} "
            f"started at {result.raised_to:g}, the lowest target the pilots needed"
            + _refitted(others, result.raised_to))


def _refitted(by_variant: pd.DataFrame, start: float) -> str:
    """How many fitted variants diverged at ``start`` and were sampled higher."""
    if "target_accept" not in by_variant:
        return ""
    fitted = by_variant[(by_variant["variant"] != MAIN) & (by_variant["status"] != "failed")]
    higher = int((fitted["target_accept"] > start).sum())
    return (f" ({higher} of {len(fitted)} refitted higher after divergences; "
            "variants.csv: target_accept)")
