r"""Predictions for a new centre: the rate of a new study and its event count.

The rate of a new study of a given subgroup (``p_new`` of
:meth:`FitResult.subgroup_probabilities`) and the number of events among ``N``
patients, ``Binomial(N, p_new)``: its predictive distribution is the average over
draws of the binomial probabilities, so ``P(count >= k)`` is exact given the
draws. Split from :mod:`bayes_poem.predictive`, which still exports these names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayes_poem.dims import SAMPLE_DIMS, SUBGROUP
from bayes_poem.errors import SpecError
from bayes_poem.intervals import IntervalSpec, describe
from bayes_poem.predictive import count_distribution_summary

if TYPE_CHECKING:
    from bayes_poem.results import FitResult


# ---------------------------------------------------------------------- new centre
@dataclass(frozen=True)
class NewCentrePrediction:
    """Predictive distribution for a new centre treating ``n`` patients of one subgroup.

    Attributes
    ----------
    n : int
    rate_draws : xarray.DataArray
        ``p_new`` per draw, dims (chain, draw, subgroup).
    summary : pandas.DataFrame
        Per subgroup: ``quantity`` ``rate`` (posterior predictive of the centre's
        rate; the fit's interval) and ``count`` (events among ``n``; central
        interval of the exact predictive distribution).
    pmf : pandas.DataFrame
        ``count`` k = 0..n and one column per subgroup: P(count = k).
    exceedance : pandas.DataFrame
        ``k`` = 0..n and one column per subgroup: P(count >= k).
    """

    n: int
    rate_draws: xr.DataArray
    summary: pd.DataFrame
    pmf: pd.DataFrame
    exceedance: pd.DataFrame

    def prob_at_least(self, k: int, subgroup: str) -> float:
        return float(self.exceedance.loc[self.exceedance["k"] == k, subgroup].iloc[0])


def new_study_rates(fit: FitResult, at: Mapping[str, object] | None = None) -> xr.DataArray:
    """Draws of a new study's rate per subgroup label (and ``overall``): ``p_new``.

    ``p_new`` of :meth:`FitResult.subgroup_probabilities` (the same draws as the
    summary tables); with one group, the repeated ``overall`` label is dropped.
    With moderators, at the covariate values ``at`` (default: the fit's ``at``,
    else the reference values, where the coded moderators are 0).
    """
    from bayes_poem.results import OVERALL

    p_new = fit.subgroup_probabilities(at)["p_new"]
    labels = p_new[SUBGROUP].values.tolist()
    if len(labels) == 2 and OVERALL in labels:  # one group: 'overall' repeats it
        p_new = p_new.sel({SUBGROUP: [x for x in labels if x != OVERALL]})
    return p_new.transpose(*SAMPLE_DIMS, SUBGROUP)


def new_centre_prediction(fit: FitResult, n: int = 50, *,
                          subgroups: Sequence[str] | None = None,
                          interval: IntervalSpec | None = None,
                          at: Mapping[str, object] | None = None) -> NewCentrePrediction:
    """Rate and number of events at a new centre treating ``n`` patients.

    With moderators the centre has the covariate values ``at`` (moderator ->
    value; default: the fit's ``at``, else the moderators' reference values).

    Per draw the centre's rate is ``p_new`` of the subgroup and the count is
    ``Binomial(n, p_new)``; the predictive distribution of the count is the
    average of these binomial distributions over the draws.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise SpecError(f"new-centre N must be a positive integer (got {n!r})")
    n = int(n)
    interval = interval or fit.interval
    rates = new_study_rates(fit, at)
    labels = rates[SUBGROUP].values.tolist()
    if subgroups is not None:
        unknown = [s for s in subgroups if s not in labels]
        if unknown:
            raise SpecError(f"new centre: unknown subgroup(s) {', '.join(unknown)}; "
                            f"subgroups: {', '.join(labels)}")
        labels = list(subgroups)
        rates = rates.sel({SUBGROUP: labels})
    k = np.arange(n + 1)
    pmf_cols, exc_cols, records = {}, {}, []
    for label in labels:
        p = rates.sel({SUBGROUP: label}).values.reshape(-1)
        pmf = stats.binom.pmf(k[None, :], n, p[:, None]).mean(0)
        pmf_cols[label] = pmf
        exc_cols[label] = np.clip(pmf[::-1].cumsum()[::-1], 0.0, 1.0)
        records.append({"subgroup": label, "quantity": "rate", **describe(p, interval)})
        records.append({"subgroup": label, "quantity": "count",
                        **count_distribution_summary(pmf, interval.prob)})
    pmf_frame = pd.DataFrame({"count": k, **pmf_cols})
    exceedance = pd.DataFrame({"k": k, **exc_cols})
    return NewCentrePrediction(n, rates, pd.DataFrame(records), pmf_frame, exceedance)


def default_exceedance_ks(n: int) -> list[int]:
    """Thresholds shown in the report: every 10% of ``n`` (k >= 1), without repeats."""
    return sorted({max(1, int(round(n * j / 10))) for j in range(1, 11)})
