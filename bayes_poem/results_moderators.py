"""The meta-regression tables of a fit (moved from :mod:`bayes_poem.results`, unchanged).

:func:`moderator_curve`: the regression line ``mu + beta' x(value)`` of a numeric
moderator across its observed range and the observed logits of the rows (the
bubble plot's data); :func:`moderator_summary`: per term ``beta``, the odds ratios
``exp(beta / scale)`` per unit and ``exp(beta * moderator_sd / scale)`` per SD,
P(beta > 0), R-hat and ESS. The methods :meth:`FitResult.moderator_curve` and
:meth:`FitResult.moderator_summary` call these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import arviz as az
import numpy as np
import pandas as pd

from bayes_poem.dims import MODERATOR, SAMPLE_DIMS
from bayes_poem.errors import SpecError
from bayes_poem.intervals import IntervalSpec, describe
from bayes_poem.moderators import code_values

if TYPE_CHECKING:
    from bayes_poem.results import FitResult

__all__ = ["moderator_curve", "moderator_summary"]


def moderator_curve(result: FitResult, name: str, n: int,
                    interval: IntervalSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The curve and points of :meth:`FitResult.moderator_curve` at ``interval``."""
    moderator = next((m for m in result.spec.moderators if m.name == name), None)
    if moderator is None or moderator.kind != "numeric":
        numeric = [m.name for m in result.spec.moderators if m.kind == "numeric"]
        raise SpecError(f"'{name}' is not a numeric moderator of the model; numeric "
                        f"moderators: {', '.join(numeric) or '(none)'}")
    frame = result.spec.table.frame
    raw = frame[name].astype(float).to_numpy()
    grid = np.linspace(raw.min(), raw.max(), n)
    post = result.posterior
    eta = post["mu"].values[..., None] + np.stack(
        [np.tensordot(post["beta"].transpose(*SAMPLE_DIMS, MODERATOR).values,
                      code_values(result.spec.moderators, {name: float(v)}), axes=1)
         for v in grid], axis=-1)
    draws = eta.reshape(-1, n)
    rows = [describe(draws[:, j], interval) for j in range(n)]
    curve = pd.DataFrame({"value": grid, "median": [r["median"] for r in rows],
                          "lower": [r["lower"] for r in rows],
                          "upper": [r["upper"] for r in rows]})
    events = frame["events"].to_numpy(float)
    total = frame["total"].to_numpy(float)
    edge = (events == 0) | (events == total)
    y, m = events + 0.5 * edge, total + 1.0 * edge
    points = pd.DataFrame({"value": raw, "logit": np.log(y / (m - y)),
                           "total": frame["total"].to_numpy(),
                           "subgroup": frame["subgroup"].to_numpy()})
    return curve, points


def moderator_summary(result: FitResult, interval: IntervalSpec) -> pd.DataFrame:
    """The rows of :meth:`FitResult.moderator_summary` at ``interval``."""
    columns = ["term", "moderator", "kind", "reference", "centre", "scale", "moderator_sd",
               "mean", "median", "sd", "lower", "upper", "interval", "or_unit_median",
               "or_unit_lower", "or_unit_upper", "or_sd_median", "or_sd_lower",
               "or_sd_upper", "p_gt_0", "r_hat", "ess_bulk"]
    if "beta" not in result.posterior:
        return pd.DataFrame(columns=columns)
    beta = result.posterior[["beta"]]
    rhat, bulk = az.rhat(beta)["beta"], az.ess(beta, method="bulk")["beta"]
    frame = result.spec.table.frame
    rows = []
    for moderator in result.spec.moderators:
        numeric = moderator.kind == "numeric"
        sd = (float(pd.to_numeric(frame[moderator.name].astype(str).str.strip()).std(ddof=1))
              if numeric else float("nan"))
        for term in moderator.terms:
            draws = beta["beta"].sel({MODERATOR: term}).values
            stats = describe(draws, interval)
            per_unit = describe(np.exp(draws / moderator.scale), interval)
            per_sd = (describe(np.exp(draws * sd / moderator.scale), interval) if numeric
                      else {"median": np.nan, "lower": np.nan, "upper": np.nan})
            rows.append({
                "term": term, "moderator": moderator.name, "kind": moderator.kind,
                "reference": (f"{moderator.centre:g}" if numeric
                              else str(moderator.reference)),
                "centre": moderator.centre if numeric else np.nan,
                "scale": moderator.scale if numeric else np.nan, "moderator_sd": sd,
                **stats,
                **{f"or_unit_{k}": per_unit[k] for k in ("median", "lower", "upper")},
                **{f"or_sd_{k}": per_sd[k] for k in ("median", "lower", "upper")},
                "p_gt_0": float((draws > 0).mean()),
                "r_hat": float(rhat.sel({MODERATOR: term})),
                "ess_bulk": float(bulk.sel({MODERATOR: term})),
            })
    return pd.DataFrame(rows, columns=columns)
