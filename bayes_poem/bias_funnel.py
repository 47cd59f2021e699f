r"""Small-study effects, Bayesian half: the posterior funnel.

**Posterior funnel** (:func:`posterior_funnel`). Each row's shrunken estimate, the posterior
median of :math:`\operatorname{logit} p_i` (study and cell effects, moderators included),
drawn at the row's observed :math:`s_i` (or :math:`1/\sqrt{n_i}`): the vertical axis of the
frequentist funnel (:func:`bayes_poem.frequentist.funnel_data`), so the two plots compare
point by point; the reference line is the posterior median of :math:`\mu + \alpha_d`.

See :mod:`bayes_poem.bias` for the overview and the references.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import logit

from bayes_poem.bias_precision import PRECISIONS, observed_logit, precision_values
from bayes_poem.dims import SUBGROUP
from bayes_poem.errors import SpecError

if TYPE_CHECKING:
    from bayes_poem.results import FitResult

__all__ = [
    "POSTERIOR_FUNNEL_COLUMNS",
    "PosteriorFunnel",
    "posterior_funnel",
]

POSTERIOR_FUNNEL_COLUMNS = ("study", "subgroup", "events", "total", "observed", "corrected",
                            "se", "y", "shrunk", "shrunk_lower", "shrunk_upper")


# ---------------------------------------------------------------------- posterior funnel
@dataclass(frozen=True)
class PosteriorFunnel:
    """What the posterior funnel plot draws (module docstring).

    Attributes
    ----------
    label : str
        The subgroup (or ``pooled``).
    yaxis : {"sei", "sqrtninv"}
    reference : float
        Posterior median of ``mu + alpha_d`` (logit).
    points : DataFrame
        :data:`POSTERIOR_FUNNEL_COLUMNS`; ``observed`` is the (corrected) observed logit,
        ``shrunk*`` the posterior median and interval of the row's logit.
    contours : DataFrame
        ``level, y, lower, upper``: ``reference +- z * se`` (``sei`` axis only).
    interval : str
    """

    label: str
    yaxis: str
    reference: float
    points: pd.DataFrame = field(repr=False)
    contours: pd.DataFrame = field(repr=False)
    interval: str = ""

    def to_frame(self) -> pd.DataFrame:
        return self.points.copy()


def posterior_funnel(fit: FitResult, subgroup: str | None = None, *, yaxis: str = "sei",
                     levels: Sequence[float] = (0.95,), n_grid: int = 101) -> PosteriorFunnel:
    """Shrunken row estimates against the frequentist funnel's axis, for one subgroup
    (``None``: the only label of the fit, e.g. a single-group model)."""
    if yaxis not in PRECISIONS:
        raise SpecError(f"yaxis: {yaxis!r} is not one of {', '.join(PRECISIONS)}")
    labels = fit._labels()
    if subgroup is None:
        if len(labels) != 1:
            raise SpecError(f"subgroup: name one of {', '.join(labels)}")
        subgroup = labels[0]
    if subgroup not in labels:
        raise SpecError(f"subgroup: '{subgroup}' is not one of {', '.join(labels)}")
    estimates = fit.study_estimates()
    frame = fit.spec.table.frame.reset_index(drop=True)
    keep = estimates["included"].to_numpy(dtype=bool).copy()
    if subgroup in fit.spec.subgroups:
        keep &= (frame["subgroup"] == subgroup).to_numpy()
    rows = frame[keep]
    est = estimates[keep]
    observed, corrected = observed_logit(rows)
    se = precision_values(rows, "sei")
    y = se if yaxis == "sei" else precision_values(rows, "sqrtninv")
    points = pd.DataFrame({
        "study": rows["study"].to_numpy(), "subgroup": rows["subgroup"].to_numpy(),
        "events": rows["events"].to_numpy(), "total": rows["total"].to_numpy(),
        "observed": observed, "corrected": corrected, "se": se, "y": y,
        "shrunk": logit(est["median"].to_numpy(float)),
        "shrunk_lower": logit(est["lower"].to_numpy(float)),
        "shrunk_upper": logit(est["upper"].to_numpy(float)),
    }, columns=list(POSTERIOR_FUNNEL_COLUMNS))
    eta = fit._linear_predictor(fit.at).sel({SUBGROUP: subgroup}).values
    reference = float(np.median(eta))
    parts = []
    if yaxis == "sei" and len(points):
        grid = np.linspace(0.0, float(points["y"].max()), n_grid)
        for level in levels:
            crit = stats.norm.ppf(0.5 + level / 2)
            parts.append(pd.DataFrame({"level": level, "y": grid,
                                       "lower": reference - crit * grid,
                                       "upper": reference + crit * grid}))
    contours = (pd.concat(parts, ignore_index=True) if parts
                else pd.DataFrame(columns=["level", "y", "lower", "upper"]))
    return PosteriorFunnel(subgroup, yaxis, reference, points, contours, fit.interval.label)
