"""The numbers of the forest plot, one row per line of the figure (no drawing).

:func:`forest_table` turns a :class:`~bayes_poem.results.FitResult` into a tidy
DataFrame that :func:`bayes_poem.forest_plot.forest_plot` draws, top to bottom:

* per subgroup (in the model's order) a ``header`` row, then one ``study`` row per
  study x subgroup cell: its events and patients, the observed proportion
  ``events / total`` with its exact (Clopper-Pearson) interval at the fit's interval
  probability, and the shrunken estimate ``logit^-1(mu + alpha_d + u_s [+ x_i'beta])``
  with the fit's interval (``FitResult.study_estimates``);
* then a ``pooled`` row: ``p_pooled`` (the median study's rate) with its interval, the
  subgroup's summed events and patients and their crude proportion, and a
  ``prediction`` row: the interval of ``p_new`` (a new study's rate), both exactly as in
  ``FitResult.subgroup_summary``;
* with several subgroups, a last ``pooled`` and ``prediction`` pair for ``overall``.

The observed interval uses the same probability as the modelled ones (a 90%
interval beside a 90% interval). The text columns (``text_events``,
``text_observed``, ``text_estimate``) are what the figure prints on the right,
percentages to one decimal as in the report's tables.

Study order within a subgroup (``order``): ``"data"`` (the table's order),
``"year"`` (the table's ``year`` column, then study), ``"size"`` (patients, largest
first), ``"estimate"`` (the shrunken estimate's median, ascending) or ``"label"``
(study label, alphabetical). Display names of subgroups come from ``labels``
(``FitResult.labels``: the spec's ``[labels]`` table), codes stay in ``subgroup``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from bayes_poem.errors import SpecError

if TYPE_CHECKING:
    from bayes_poem.results import FitResult

__all__ = ["COLUMNS", "ORDERS", "exact_interval", "forest_table", "percent_text"]

ORDERS = ("data", "year", "size", "estimate", "label")
COLUMNS = ["kind", "subgroup", "label", "study", "year", "events", "total", "observed",
           "obs_lower", "obs_upper", "median", "lower", "upper", "interval", "text_events",
           "text_observed", "text_estimate"]
OVERALL = "overall"
NO_TEXT = {"text_events": "", "text_observed": "", "text_estimate": ""}


def percent_text(x: float, digits: int = 1) -> str:
    """``x`` as a percentage with ``digits`` decimals (as the report's tables print it)."""
    if x is None or not np.isfinite(x):
        return ""
    return f"{round(100 * float(x), digits) + 0.0:.{digits}f}%"


def _interval_text(median: float, lower: float, upper: float) -> str:
    return f"{percent_text(median)} [{percent_text(lower)}, {percent_text(upper)}]"


def exact_interval(events: int, total: int, prob: float) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of ``events / total`` at probability ``prob``
    (``scipy.stats.binomtest``; 0 and 1 at the ends)."""
    ci = stats.binomtest(int(events), int(total)).proportion_ci(prob, method="exact")
    return float(ci.low), float(ci.high)


def _ordered(rows: pd.DataFrame, order: str) -> pd.DataFrame:
    if order == "data":
        return rows
    if order == "year":
        return rows.sort_values(["year", "study"], kind="stable")
    if order == "size":
        return rows.sort_values("total", ascending=False, kind="stable")
    if order == "estimate":
        return rows.sort_values("median", kind="stable")
    return rows.sort_values("study", key=lambda s: s.astype(str).str.casefold(), kind="stable")


def forest_table(fit: FitResult, *, order: str = "data",
                 labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """One row per line of the forest plot (see the module docstring).

    Parameters
    ----------
    fit : FitResult
    order : {"data", "year", "size", "estimate", "label"}
        Order of the studies within each subgroup. ``"year"`` needs a ``year``
        column in the data (``SpecError`` otherwise, as for an unknown order).
    labels : mapping, optional
        Code -> display name of subgroups (default: ``fit.labels``).
    """
    if order not in ORDERS:
        raise SpecError(f"forest order must be one of {', '.join(ORDERS)} (got {order!r})")
    frame = fit.spec.table.frame
    if order == "year" and "year" not in frame.columns:
        raise SpecError(f"forest order 'year' needs a 'year' column in the data "
                        f"({fit.spec.table.source}); use 'data', 'size', 'estimate' or "
                        "'label'")
    labels = dict(fit.labels or {}) if labels is None else dict(labels)
    prob = fit.interval.prob
    interval = fit.interval.label
    estimates = fit.study_estimates().reset_index(drop=True)
    estimates["year"] = (frame["year"].to_numpy() if "year" in frame.columns
                         else np.full(len(estimates), None))
    limits = [exact_interval(e, t, prob) for e, t in zip(estimates["events"],
                                                          estimates["total"], strict=True)]
    estimates = estimates.assign(obs_lower=[lo for lo, _ in limits],
                                 obs_upper=[hi for _, hi in limits])

    summary = fit.subgroup_summary()
    pooled = {}
    for code, group in summary.groupby("subgroup", sort=False):
        pooled[code] = {q: group[group["quantity"] == q].iloc[0] for q in ("p_pooled", "p_new")}
    several = len(pooled) > 2 or (len(pooled) == 2 and OVERALL not in pooled)

    def pooled_rows(code: str, name: str) -> list[dict]:
        p, new = pooled[code]["p_pooled"], pooled[code]["p_new"]
        counts = {"events": int(p["events"]), "total": int(p["total"]),
                  "observed": float(p["observed"])}
        return [
            {"kind": "pooled", "subgroup": code, "label": name, **counts,
             "median": p["median"], "lower": p["lower"], "upper": p["upper"],
             "interval": interval, "text_events": f"{counts['events']}/{counts['total']}",
             "text_observed": percent_text(counts["observed"]),
             "text_estimate": _interval_text(p["median"], p["lower"], p["upper"])},
            {"kind": "prediction", "subgroup": code, "label": "Prediction (new study)",
             "median": new["median"], "lower": new["lower"], "upper": new["upper"],
             "interval": interval, "text_events": "", "text_observed": "",
             "text_estimate": _interval_text(new["median"], new["lower"], new["upper"])},
        ]

    rows: list[dict] = []
    for code in dict.fromkeys([*fit.spec.subgroups, *estimates["subgroup"]]):
        part = estimates[estimates["subgroup"] == code]
        if part.empty and code not in pooled:
            continue
        rows.append({"kind": "header", "subgroup": code, "label": labels.get(code, code),
                     **NO_TEXT})
        for row in _ordered(part, order).itertuples(index=False):
            rows.append({
                "kind": "study", "subgroup": code, "label": str(row.study),
                "study": row.study, "year": row.year, "events": row.events,
                "total": row.total, "observed": row.observed, "obs_lower": row.obs_lower,
                "obs_upper": row.obs_upper, "median": row.median, "lower": row.lower,
                "upper": row.upper, "interval": interval,
                "text_events": f"{row.events}/{row.total}",
                "text_observed": percent_text(row.observed),
                "text_estimate": _interval_text(row.median, row.lower, row.upper)})
        if code in pooled:
            rows += pooled_rows(code, "Pooled (median study)")
    listed = {r["subgroup"] for r in rows}
    for code in pooled:  # 'overall' (several subgroups), 'pooled' (no subgroup effects)
        if code not in listed and (several or code != OVERALL):
            name = labels.get(code, "Overall" if code == OVERALL else "Pooled")
            rows.append({"kind": "header", "subgroup": code, "label": name, **NO_TEXT})
            rows += pooled_rows(code, "Subgroups weighted (median study)" if code == OVERALL
                                else "Pooled (median study)")
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    for column in ("events", "total"):
        table[column] = table[column].astype("Int64")
    return table
