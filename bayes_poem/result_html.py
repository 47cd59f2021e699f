"""A compact HTML view of a :class:`~bayes_poem.results.FitResult` for notebooks.

``FitResult._repr_html_`` returns :func:`fit_html`: the model in one line, the
diagnostics, then the tables of ``bayes-poem run``'s text in HTML -- pooled
probabilities per subgroup (``p_pooled``, ``p_mean``, ``p_new``: median and
interval), heterogeneity and, with moderators, their coefficients -- in the fit's
interval. The SYNTHETIC banner is shown above and below when the data are
synthetic. Formatting only: every number comes from the result's own tables, and
nothing is refitted (the share of tau^2 explained needs a refit: see
``FitResult.summary``). Text from the data (labels, sources) is escaped.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from bayes_poem.results import FitResult

QUANTITIES = (("p_pooled", "median study (p_pooled)"),
              ("p_mean", "population mean (p_mean)"),
              ("p_new", "new study (p_new)"))
STYLE = "border-collapse: collapse; margin: 0.3em 0 0.8em 0; font-size: 90%"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _table(caption: str, header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return (f'<table style="{STYLE}"><caption style="text-align: left">{escape(caption)}'
            f"</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _subgroups(table: pd.DataFrame) -> str:
    rows = []
    for label, group in table.groupby("subgroup", sort=False):
        first = group.iloc[0]
        cells = [str(label), str(int(first["total"])), _pct(first["observed"])]
        for quantity, _ in QUANTITIES:
            row = group[group["quantity"] == quantity].iloc[0]
            cells.append(f"{_pct(row['median'])} [{_pct(row['lower'])}, {_pct(row['upper'])}]")
        rows.append(cells)
    interval = table["interval"].iloc[0]
    return _table(f"Pooled probabilities, posterior median [{interval}]",
                  ["subgroup", "n", "observed", *(name for _, name in QUANTITIES)], rows)


def _heterogeneity(table: pd.DataFrame) -> str:
    if table.empty:
        return "<p>Heterogeneity: none modelled (common-effect model, tau = 0)</p>"
    rows = [[row.parameter, f"{row.median:.3f}", f"[{row.lower:.3f}, {row.upper:.3f}]"]
            for row in table.itertuples(index=False)]
    return _table(f"Heterogeneity (logit scale; i2 as a proportion), posterior median "
                  f"[{table['interval'].iloc[0]}]", ["parameter", "median", "interval"], rows)


def _moderators(table: pd.DataFrame) -> str:
    if table.empty:
        return ""
    rows = [[row.term, str(row.reference), f"{row.median:.3f}",
             f"[{row.lower:.3f}, {row.upper:.3f}]",
             f"{row.or_unit_median:.3g} [{row.or_unit_lower:.3g}, {row.or_unit_upper:.3g}]",
             f"{row.p_gt_0:.3f}"]
            for row in table.itertuples(index=False)]
    return _table(f"Moderators (logit scale per coded unit), posterior median "
                  f"[{table['interval'].iloc[0]}]",
                  ["term", "reference", "beta", "interval", "OR per unit", "P(beta>0)"], rows)


def fit_html(result: FitResult) -> str:
    """The compact HTML view of ``result`` (one ``<div>``)."""
    from bayes_poem.banner import synthetic_banner
    from bayes_poem.structure import recorded_line

    spec = result.spec
    banner = (f"<p><strong>{escape(synthetic_banner(spec.table))}</strong></p>"
              if spec.table.is_synthetic else "")
    model = (f"FitResult: outcome {spec.outcome} | data: {spec.table.source} | "
             f"{len(spec.studies)} studies, {int(spec.table.frame['total'].sum())} patients | "
             f"subgroup effects: {spec.subgroup_effects} | study effects: "
             f"{spec.study_effects}"
             + (f" | moderators: {', '.join(m.name for m in spec.moderators)}"
                if spec.moderators else ""))
    diagnostics = result.diagnostics
    status = "OK" if diagnostics.ok else "; ".join(diagnostics.problems)
    parts = [
        banner,
        f"<p>{escape(model)}<br>{escape(recorded_line(spec, result.posterior.attrs))}<br>"
        f"Diagnostics: {escape(diagnostics.summary_line())} -- "
        f"{'' if diagnostics.ok else 'WARNING: '}{escape(status)}</p>",
        _subgroups(result.subgroup_summary().assign(  # display names ([labels])
            subgroup=lambda t: t["subgroup"].map(result.label_of))),
        _heterogeneity(result.heterogeneity()),
        _moderators(result.moderator_summary()) if spec.moderators else "",
        banner,
    ]
    return '<div class="bayes-poem-fit">' + "".join(parts) + "</div>"
