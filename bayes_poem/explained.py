r"""Share of between-study variance explained by the moderators (pseudo-:math:`R^2`).

.. math::

    R^2_{\tau^2} = \max\Big(0,\; 1 - \frac{\operatorname{med}(\tau^2_{\text{with}})}
                                          {\operatorname{med}(\tau^2_{\text{without}})}\Big),

where :math:`\operatorname{med}(\tau^2_{\text{with}})` is the posterior median of
:math:`\tau^2` (the residual between-study variance) of the fitted model with
moderators and :math:`\operatorname{med}(\tau^2_{\text{without}})` that of the same
model (data, zeroed rows, structure, priors, sampler settings and seed) without
moderators. As metafor's pseudo-:math:`R^2` (``rma(mods = )``), it compares point
estimates of two fits and is truncated below at 0 (it cannot exceed 1 since
:math:`\tau^2 \ge 0`). It is *not* a posterior quantity of one model: the two fits
have no joint posterior, so it has no interval. See docs/model.md.

With disorder-specific heterogeneity (``study_heterogeneity = "by_subgroup"``) it
is computed per subgroup :math:`d` from :math:`\tau_d^2` of the two fits (both keep
one :math:`\tau_d` per subgroup),

.. math::

    R^2_{\tau^2_d} = \max\Big(0,\; 1 - \frac{\operatorname{med}(\tau^2_{d,\text{with}})}
                                            {\operatorname{med}(\tau^2_{d,\text{without}})}\Big),

the share of subgroup :math:`d`'s between-study variance explained by the
moderators (whose coefficients :math:`\beta` are shared by the subgroups). There
is no single :math:`R^2` across subgroups: the :math:`\tau_d` are separate
parameters, and any pooled ratio would need weights the model does not define.

With study x subgroup cell effects (``cell_effects = "random"``) both fits keep
them, and :math:`R^2` is the share of the *study-level* :math:`\tau^2` explained;
:math:`\tau_\text{cell}` is not part of it (study-level moderators act on the
study effect; a row-level moderator may also shrink :math:`\tau_\text{cell}`,
which the heterogeneity tables of the two fits show).

Next to :math:`R^2` the table gives the posterior median and interval of
:math:`\tau` (or :math:`\tau_d`) of each fit, so a reader sees both variances
that it compares.

The model without moderators is fitted on demand (:func:`tau2_explained`); it
reuses the compiled log-density, so nothing is compiled.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bayes_poem.dims import SAMPLE_DIMS, SUBGROUP
from bayes_poem.errors import SpecError
from bayes_poem.intervals import IntervalSpec, describe

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.sampling import SamplerSettings

REFIT_LABEL = "the fit without moderators (for R^2)"  # a failed refit's message names it
COLUMNS = ["parameter", "r2", "r2_raw", "tau2_median_with", "tau2_median_without",
           "tau_with_median", "tau_with_lower", "tau_with_upper", "tau_without_median",
           "tau_without_lower", "tau_without_upper", "interval", "moderators",
           "problems_without"]


def is_defined(fit: FitResult) -> bool:
    """Whether ``fit`` has an R^2: moderators and random study effects (a ``tau``)."""
    return bool(fit.spec.moderators) and fit.spec.study_effects == "random" and (
        "tau" in fit.posterior)


def without_moderators(fit: FitResult, settings: SamplerSettings | None = None) -> FitResult:
    """Fit ``fit.spec`` without its moderators (same sampler settings unless given).

    Raises
    ------
    SpecError
        The model has no moderators, or no random study effects (no ``tau``).
    """
    _check(fit)
    spec = dataclasses.replace(fit.spec, moderators=())
    return spec.fit(settings) if settings is not None else spec.refit(fit.settings)


def tau2_explained(fit: FitResult, settings: SamplerSettings | None = None, *,
                   without: FitResult | None = None,
                   interval: IntervalSpec | None = None) -> pd.DataFrame:
    """The share of tau^2 explained by the moderators of ``fit``: row ``r2_tau2``,
    or one row ``r2_tau2[d]`` per subgroup with ``study_heterogeneity = "by_subgroup"``.

    Parameters
    ----------
    fit : FitResult
        A fit with moderators and random study effects.
    settings : SamplerSettings, optional
        For the refit without moderators; default ``fit.settings`` (same seed).
    without : FitResult, optional
        The fit without moderators, if already available (nothing is refitted);
        it must be ``fit.spec`` without moderators.
    interval : IntervalSpec, optional
        For the ``tau_*_lower``/``tau_*_upper`` columns; default ``fit.interval``.

    Returns
    -------
    DataFrame
        One row per tau: columns ``parameter`` (``"r2_tau2"``, or ``"r2_tau2[d]"``
        per subgroup ``d``), ``r2`` (truncated to [0, 1]),
        ``r2_raw`` (untruncated, negative when the moderators' model has the
        larger median tau^2), ``tau2_median_with``, ``tau2_median_without``,
        ``tau_with_median``/``_lower``/``_upper`` and ``tau_without_*`` (posterior
        median and interval of tau of each fit), ``interval`` (its label),
        ``moderators`` (comma-separated) and ``problems_without`` (failed
        diagnostics of the refit, empty if none).

    Raises
    ------
    SpecError
        ``fit`` has no moderators or no random study effects, or ``without``
        is not the same model without moderators.
    """
    _check(fit)
    if without is None:
        without = without_moderators(fit, settings)
    elif not _same_without_moderators(fit.spec, without.spec):
        raise SpecError("tau2_explained: 'without' must be the same model as 'fit' "
                        "without moderators")
    interval = interval or fit.interval
    with_tau, without_tau = _tau_draws(fit), _tau_draws(without)
    rows = []
    for label, t_with in with_tau.items():
        t_without = without_tau[label]
        with_ = float(np.median(t_with**2))
        base = float(np.median(t_without**2))
        raw = 1.0 - with_ / base if base > 0 else float("nan")
        r2 = float(np.clip(raw, 0.0, 1.0)) if np.isfinite(raw) else float("nan")
        a, b = describe(t_with, interval), describe(t_without, interval)
        rows.append({
            "parameter": "r2_tau2" if label is None else f"r2_tau2[{label}]",
            "r2": r2, "r2_raw": raw, "tau2_median_with": with_, "tau2_median_without": base,
            **{f"tau_with_{k}": a[k] for k in ("median", "lower", "upper")},
            **{f"tau_without_{k}": b[k] for k in ("median", "lower", "upper")},
            "interval": interval.label,
            "moderators": ", ".join(m.name for m in fit.spec.moderators),
            "problems_without": "; ".join(without.diagnostics.problems),
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def _tau_draws(fit: FitResult) -> dict[str | None, np.ndarray]:
    """Draws of tau (key ``None``), or of tau[d] per subgroup label."""
    tau = fit.posterior["tau"]
    if SUBGROUP not in tau.dims:
        return {None: tau.values}
    tau = tau.transpose(*SAMPLE_DIMS, SUBGROUP)
    return {label: tau.sel({SUBGROUP: label}).values for label in fit.spec.subgroups}


def _same_without_moderators(spec, other) -> bool:
    return (not other.moderators and other.outcome == spec.outcome
            and other.subgroup_effects == spec.subgroup_effects
            and other.study_effects == spec.study_effects
            and other.study_heterogeneity == spec.study_heterogeneity
            and other.cell_effects == spec.cell_effects
            and other.likelihood == spec.likelihood
            and other.zeroed_rows == spec.zeroed_rows
            and dict(other.priors) == dict(spec.priors)
            and other.table.frame.equals(spec.table.frame))


def _check(fit: FitResult) -> None:
    if not fit.spec.moderators:
        raise SpecError("tau2_explained: the model has no moderators, so they explain "
                        "nothing (R^2 compares the model with and without moderators)")
    if fit.spec.study_effects != "random" or "tau" not in fit.posterior:
        raise SpecError("tau2_explained: the model has no random study effects "
                        f"(study_effects = {fit.spec.study_effects!r}, likelihood = "
                        f"{fit.spec.likelihood!r}), so there is no tau^2 to explain")
