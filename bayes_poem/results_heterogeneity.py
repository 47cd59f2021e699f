r"""The heterogeneity of a fit (moved from :mod:`bayes_poem.results`, unchanged).

:func:`heterogeneity_table`: ``tau``, ``tau2``, Bayesian ``i2`` (``tau[d]`` with
``study_heterogeneity = "by_subgroup"``), ``tau_cell``, ``phi`` and ``rho`` of the
beta-binomial likelihood, ``sigma_subgroup``. :func:`i_squared`: per draw
``between / (between + s2)`` with ``between = tau^2 + tau_cell^2`` and ``s2 = (k - 1)
sum(w) / (sum(w)^2 - sum(w^2))``, ``w = total p (1 - p)`` over the rows with
patients (per subgroup ``d`` with ``tau[d]``); NaN with fewer than two rows. The
methods :meth:`FitResult.heterogeneity` and :meth:`FitResult.i_squared` call these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.special import expit

from bayes_poem.dims import SAMPLE_DIMS, SUBGROUP
from bayes_poem.intervals import IntervalSpec, describe
from bayes_poem.model_math import moderator_effect

if TYPE_CHECKING:
    from bayes_poem.results import FitResult

__all__ = ["heterogeneity_table", "i_squared"]


def heterogeneity_table(result: FitResult, interval: IntervalSpec, *,
                        derived: bool = True) -> pd.DataFrame:
    """The rows of :meth:`FitResult.heterogeneity` at ``interval`` (``derived``: with
    the squares, I-squared and rho)."""
    post = result.posterior
    rows = []
    if "tau" in post and SUBGROUP in post["tau"].dims:  # tau[d], one per subgroup
        tau = post["tau"].transpose(*SAMPLE_DIMS, SUBGROUP)
        i2 = result.i_squared() if derived else None
        for j, label in enumerate(tau[SUBGROUP].values.tolist()):
            t = tau.sel({SUBGROUP: label}).values
            rows.append({"parameter": f"tau[{label}]", **describe(t, interval)})
            if derived:
                rows.append({"parameter": f"tau2[{label}]", **describe(t**2, interval)})
                rows.append({"parameter": f"i2[{label}]", **describe(i2[..., j], interval)})
    elif "tau" in post:
        tau = post["tau"].values
        rows.append({"parameter": "tau", **describe(tau, interval)})
        if derived:
            rows.append({"parameter": "tau2", **describe(tau**2, interval)})
            rows.append({"parameter": "i2", **describe(result.i_squared(), interval)})
    if result.spec.cell_effects == "random":
        t = result._tau_cell().values
        rows.append({"parameter": "tau_cell", **describe(t, interval)})
        if derived:
            rows.append({"parameter": "tau_cell2", **describe(t**2, interval)})
    if "phi" in post:
        phi = post["phi"].values
        rows.append({"parameter": "phi", **describe(phi, interval)})
        if derived:
            rows.append({"parameter": "rho", **describe(phi**2 / (1 + phi**2), interval)})
    if "sigma_subgroup" in post:
        rows.append({"parameter": "sigma_subgroup",
                     **describe(post["sigma_subgroup"].values, interval)})
    return pd.DataFrame(rows, columns=["parameter", "mean", "median", "sd", "lower",
                                       "upper", "interval"])


def i_squared(result: FitResult) -> np.ndarray:
    """Draws of the Bayesian I-squared analogue (:meth:`FitResult.i_squared`)."""
    if result.spec.study_heterogeneity == "by_subgroup":
        return _i_squared_by_subgroup(result)
    arrays = result.spec.arrays()
    eta = result._linear_predictor().transpose(*SAMPLE_DIMS, SUBGROUP).values
    sub_idx = arrays["subgroup_idx"] if eta.shape[-1] > 1 else np.zeros_like(
        arrays["subgroup_idx"])
    active = arrays["total"] > 0
    shift = moderator_effect(result.posterior, result.spec)[..., active]
    p = expit(eta[..., sub_idx[active]] + shift)
    w = arrays["total"][active] * p * (1.0 - p)
    k = w.shape[-1]
    if k < 2:
        return np.full(eta.shape[:2], np.nan)
    s2 = (k - 1) * w.sum(-1) / (w.sum(-1) ** 2 - (w**2).sum(-1))
    between = result._tau().values ** 2 + result._tau_cell().values ** 2
    return between / (between + s2)


def _i_squared_by_subgroup(result: FitResult) -> np.ndarray:
    """I-squared per subgroup (``study_heterogeneity = "by_subgroup"``)."""
    arrays = result.spec.arrays()
    eta = result._linear_predictor().transpose(*SAMPLE_DIMS, SUBGROUP).values
    sub_idx = arrays["subgroup_idx"]
    p = expit(eta[..., sub_idx] + moderator_effect(result.posterior, result.spec))
    tau = result._tau().sel({SUBGROUP: result.spec.subgroups}).transpose(
        *SAMPLE_DIMS, SUBGROUP).values
    cell2 = result._tau_cell().values ** 2
    out = np.full(tau.shape, np.nan)
    for d in range(len(result.spec.subgroups)):
        rows = (sub_idx == d) & (arrays["total"] > 0)
        k = int(rows.sum())
        if k < 2:
            continue
        w = arrays["total"][rows] * p[..., rows] * (1.0 - p[..., rows])
        s2 = (k - 1) * w.sum(-1) / (w.sum(-1) ** 2 - (w**2).sum(-1))
        between = tau[..., d] ** 2 + cell2
        out[..., d] = between / (between + s2)
    return out
