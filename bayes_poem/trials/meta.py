r"""Meta-analysis of comparative (two-arm) trials of anterior versus posterior myotomy.

**Binary outcomes: arm-based hierarchical binomial model.** For trial
:math:`s` and arm :math:`j` (0 = anterior, 1 = posterior),

.. math::

    y_{sj} \sim \mathrm{Binomial}(n_{sj}, p_{sj}), \quad
    \operatorname{logit} p_{sj} = \mu_s + (\theta + \delta_s)\,[j = 1],

    \mu_s \sim N(m_\mu, s_\mu^2) \text{ (fixed study baselines)}, \quad
    \delta_s = \tau w_s, \; w_s \sim N(0, 1) \text{ (non-centred)},

with priors on :math:`\theta` (the pooled log odds ratio, posterior versus
anterior) and :math:`\tau` (between-trial SD of the log odds ratio). Derived:
the odds ratio :math:`e^\theta`; the predictive log odds ratio of a new trial
:math:`\theta_\text{new} = \theta + \tau z`, :math:`z \sim N(0, 1)`; and the risk
ratio and risk difference at the pooled anterior rate :math:`p_A` (draws from
the Beta(1 + events, 1 + non-events) posterior of the anterior arms pooled):
:math:`p_P = \operatorname{logit}^{-1}(\operatorname{logit} p_A + \theta)`.

**Continuous outcomes: normal-normal random effects.** For trial estimates
:math:`y_s` of a mean difference with standard errors :math:`se_s`,
:math:`y_s \sim N(\mu + \tau w_s, se_s^2)`, :math:`w_s \sim N(0, 1)`, with
user-set priors on :math:`\mu` and :math:`\tau` (in the outcome's units).

**Sampling.** With the nutpie backend (the default) both models are sampled
from hand-written log-densities compiled once per installation
(:mod:`bayes_poem.backends.arm_density`, :mod:`bayes_poem.backends.normal_density`):
data and prior hyperparameters travel in a float64 buffer, so no fit compiles
anything, whatever the number of trials or the prior families. The PyMC models
below (``_binomial_model``, ``_normal_model``) remain the reference definitions:
``tests/test_arm_density.py`` and ``tests/test_normal_density.py`` check value
and gradient of the kernels against them, and ``backend = "pymc"`` samples them
with ``pm.sample`` (one model per structure, :mod:`bayes_poem.trials.pymc_models`).
The prior on ``tau`` may be any scale family of :mod:`bayes_poem.priors`,
``LogNormalTau2`` (:math:`\log \tau^2 \sim N(\mu, \sigma^2)`) included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit, logit

from bayes_poem import prior_families
from bayes_poem.diagnostics import Diagnostics, check_fit
from bayes_poem.dims import SAMPLE_DIMS, STUDY
from bayes_poem.errors import DataError, SpecError
from bayes_poem.intervals import IntervalSpec, describe
from bayes_poem.prior_families import HALF_NORMAL, NORMAL
from bayes_poem.priors import SCALE_FAMILIES, Prior
from bayes_poem.sampling import SamplerSettings, check_complete, run_nutpie
from bayes_poem.table import StudyTable
from bayes_poem.trials import pymc_models
from bayes_poem.trials.common import (
    ARM_DIM,
    ARMS,
    check_kind,
    check_margin,
    check_number,
    noninferiority_statement,
)
from bayes_poem.trials.counts import (
    COUNT_COLUMNS,
    DEFAULT_SAME_TRIAL,
    check_counts_frame,
    comparative_counts,
)
from bayes_poem.trials.published import comparison_notes, published_rows

__all__ = [
    "BINARY_META_PRIORS",
    "BinomialMetaResult",
    "NormalMetaResult",
    "binomial_meta",
    "binomial_meta_from_table",
    "random_effects_meta",
    "resolve_priors",
]

BINARY_META_PRIORS: dict[str, Prior] = {
    "theta": Prior(NORMAL, {"mu": 0.0, "sigma": 1.5}),
    "tau": Prior(HALF_NORMAL, {"sigma": 0.5}),
    "mu_study": Prior(NORMAL, {"mu": 0.0, "sigma": 2.5}),
}
BINARY_META_FAMILIES = {"theta": pymc_models.LOCATION, "tau": SCALE_FAMILIES, "mu_study": (NORMAL,)}
NORMAL_META_FAMILIES = {"mu": pymc_models.LOCATION, "tau": SCALE_FAMILIES}
DEFAULT_META_SETTINGS = SamplerSettings(draws=1000, tune=1000, chains=4, seed=20200101)


def resolve_priors(priors: Mapping[str, Prior | Mapping[str, Any]] | None,
                   allowed: Mapping[str, Sequence[str]], defaults: Mapping[str, Prior],
                   where: str = "priors") -> dict[str, Prior]:
    """The priors by name: ``priors`` (checked against the ``allowed`` families; a
    ``SpecError`` naming ``where`` otherwise) over the ``defaults``."""
    priors = dict(priors or {})
    unknown = [k for k in priors if k not in allowed]
    if unknown:
        raise SpecError(f"{where}: unknown prior name '{unknown[0]}'; valid names: "
                        f"{', '.join(allowed)}")
    out = {}
    for name, families in allowed.items():
        if name in priors:
            out[name] = pymc_models.check_prior(name, priors[name], families, f"{where}.{name}")
        elif name in defaults:
            out[name] = defaults[name]
        else:
            raise SpecError(f"{where}.{name}: a prior is required (in the outcome's units); "
                            f"families: {', '.join(families)}")
    return out


# ---------------------------------------------------------------- compiled kernels
def _sample_kernel(kernel: Any, buffer: np.ndarray, labels: Sequence[str],
                   centre: Mapping[int, np.ndarray | float], settings: SamplerSettings
                   ) -> az.InferenceData:
    """Sample a trial kernel with nutpie; every chain's every draw, or an error.

    ``centre`` maps a position of the unconstrained vector to the value the
    random initial points (uniform(-1, 1) per coordinate, seeded per chain) are
    centred on, e.g. each trial's crude anterior logit.
    """
    from bayes_poem.backends.nutpie_adapter import nutpie_model

    n_studies = len(labels)
    unconstrained = kernel.unconstrained_layout(n_studies)
    n_dim = sum(int(np.prod(shape)) for _, shape in unconstrained)
    offset = np.zeros(n_dim)
    for position, value in centre.items():
        values = np.atleast_1d(value)
        offset[position:position + values.size] = values

    def initial_point(chain_seed: int) -> np.ndarray:
        rng = np.random.default_rng([settings.seed, int(chain_seed)])
        return offset + rng.uniform(-1.0, 1.0, size=n_dim)

    model = nutpie_model(logp_cfunc=kernel.logp_cfunc, expand_cfunc=kernel.expand_cfunc,
                         buffer=buffer, expanded=kernel.expanded_layout(n_studies),
                         coords={STUDY: list(labels)}, unconstrained=unconstrained,
                         initial_point=initial_point)
    idata = run_nutpie(model, dataclasses.replace(settings, progress=False))
    check_complete(idata, settings)
    return az.InferenceData(posterior=idata.posterior, sample_stats=idata.sample_stats)


# ---------------------------------------------------------------- binomial model
def _binomial_model(n_studies: int, priors: Mapping[str, Prior]) -> pymc_models.ReusableModel:
    import pymc as pm
    import pytensor.tensor as pt

    labels = [f"s{i}" for i in range(n_studies)]
    zeros = np.zeros((n_studies, 2))
    with pm.Model(coords={STUDY: labels, ARM_DIM: list(ARMS)}) as model:
        events = pm.Data("events", zeros, dims=(STUDY, ARM_DIM))
        total = pm.Data("total", zeros + 1, dims=(STUDY, ARM_DIM))
        hyper = {k: pm.Data(k, v) for k, v in pymc_models.hyper_values(priors).items()}
        theta = pymc_models.prior_rv(pm, "theta", priors["theta"], hyper)
        tau = pymc_models.prior_rv(pm, "tau", priors["tau"], hyper)
        mu = prior_families.build(
            pm, "mu", priors["mu_study"].dist,
            {key: hyper[data] for key, data in pymc_models.hyper_names("mu_study",
                                                                  priors["mu_study"]).items()},
            dims=STUDY)
        w = pm.Normal("w", 0.0, 1.0, dims=STUDY)
        delta = pm.Deterministic("delta", tau * w, dims=STUDY)
        eta = pt.stack([mu, mu + theta + delta], axis=1)
        pm.Binomial("y", n=total, logit_p=eta, observed=events, dims=(STUDY, ARM_DIM))
    return pymc_models.ReusableModel(model, ["theta", "tau", "mu", "w", "delta"])


def binomial_model(n_studies: int, priors: Mapping[str, Prior] | None = None
                   ) -> pymc_models.ReusableModel:
    """The (cached) PyMC arm-based model for ``n_studies`` trials and these prior families
    (the reference definition, and the ``backend = "pymc"`` path)."""
    priors = resolve_priors(priors, BINARY_META_FAMILIES, BINARY_META_PRIORS)
    key = ("binomial_meta", int(n_studies), pymc_models.families(priors))
    return pymc_models.cached_model(key, lambda: _binomial_model(int(n_studies), priors))


@dataclass(frozen=True)
class BinomialMetaResult:
    """Posterior of the arm-based binomial meta-analysis of one outcome.

    ``draws`` holds ``theta``, ``odds_ratio``, ``tau``, ``theta_new``,
    ``odds_ratio_new``, ``p_anterior`` (pooled anterior rate), ``p_posterior``,
    ``risk_ratio`` and ``risk_difference`` (dims ``chain``, ``draw``).
    """

    outcome: str
    counts: pd.DataFrame
    priors: Mapping[str, Prior]
    settings: SamplerSettings
    idata: az.InferenceData
    draws: xr.Dataset
    diagnostics: Diagnostics
    interval: IntervalSpec = IntervalSpec()
    kind: str = "benefit"
    margin: float | None = None
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def studies(self) -> list[str]:
        return list(self.counts["study"])

    @property
    def pooled_anterior(self) -> tuple[float, float]:
        """Beta(1 + events, 1 + non-events) parameters of the pooled anterior rate."""
        return _pooled_anterior(self.counts)

    def theta_new_draws(self) -> np.ndarray:
        """Predictive log odds ratios of a new trial, flattened over chains and draws."""
        return np.asarray(self.draws["theta_new"].values, dtype=float).ravel()

    def summary(self, interval: IntervalSpec | None = None) -> pd.DataFrame:
        interval = interval or self.interval
        labels = {
            "theta": "pooled log odds ratio (posterior vs anterior)",
            "odds_ratio": "pooled odds ratio",
            "tau": "between-trial SD of the log odds ratio",
            "theta_new": "log odds ratio in a new trial (predictive)",
            "odds_ratio_new": "odds ratio in a new trial (predictive)",
            "p_anterior": "pooled anterior rate",
            "p_posterior": "posterior rate at the pooled anterior rate",
            "risk_ratio": "risk ratio at the pooled anterior rate",
            "risk_difference": "risk difference at the pooled anterior rate",
        }
        rows = [{"outcome": self.outcome, "quantity": name, "meaning": meaning,
                 **describe(self.draws[name].values, interval)}
                for name, meaning in labels.items()]
        return pd.DataFrame(rows)

    def noninferiority(self) -> pd.DataFrame:
        """P(non-inferior) on the risk-difference scale at the pooled anterior rate,
        for the pooled effect and for a new trial (empty without a margin)."""
        if self.margin is None:
            return pd.DataFrame()
        p_a = self.draws["p_anterior"].values
        rows = []
        for quantity, theta in (("pooled", self.draws["theta"].values),
                                ("new_trial", self.draws["theta_new"].values)):
            diff = expit(logit(p_a) + theta) - p_a
            ok = diff > -self.margin if self.kind == "benefit" else diff < self.margin
            rows.append({"outcome": self.outcome, "effect": quantity, "kind": self.kind,
                         "margin": self.margin,
                         "hypothesis": noninferiority_statement(
                             self.kind, self.margin, "p_posterior - p_anterior"),
                         "p_noninferior": float(np.mean(ok))})
        return pd.DataFrame(rows)

    def study_summary(self, interval: IntervalSpec | None = None) -> pd.DataFrame:
        """Per trial: counts, observed log OR (0.5 added to zero cells) and the
        trial's posterior log OR ``theta + delta_s``."""
        interval = interval or self.interval
        post = self.idata.posterior
        rows = []
        for row in self.counts.itertuples(index=False):
            cells = np.array([row.anterior_events, row.anterior_total - row.anterior_events,
                              row.posterior_events, row.posterior_total - row.posterior_events],
                             dtype=float)
            if (cells == 0).any():
                cells = cells + 0.5
            observed = np.log(cells[2] / cells[3]) - np.log(cells[0] / cells[1])
            theta_s = (post["theta"] + post["delta"].sel({STUDY: row.study})).values
            rows.append({"outcome": self.outcome, "study": row.study,
                         **{c: getattr(row, c) for c in COUNT_COLUMNS},
                         "observed_log_or": float(observed),
                         **{f"log_or_{k}" if k != "interval" else k: v
                            for k, v in describe(theta_s, interval).items()}})
        return pd.DataFrame(rows)

    def published_comparison(self, interval: IntervalSpec | None = None) -> pd.DataFrame:
        """Published meta-analyses of this outcome beside our estimate on their scale."""
        interval = interval or self.interval
        scale = {"RR": "risk_ratio", "OR": "odds_ratio"}
        rows = []
        for entry in published_rows(self.outcome):
            ours = describe(self.draws[scale[entry["measure"]]].values, interval)
            rows.append({
                "outcome": self.outcome, "source": entry["source"],
                "published_outcome": entry["published_outcome"],
                "measure": entry["measure"], "published": entry["estimate"],
                "published_lower": entry["ci_lower"], "published_upper": entry["ci_upper"],
                "published_interval": "95% CI", "published_design": entry["design"],
                "mark": entry["mark"], "direction": entry["direction"],
                "ours_median": ours["median"], "ours_lower": ours["lower"],
                "ours_upper": ours["upper"], "interval": ours["interval"],
                "ours_trials": ", ".join(self.studies),
                "ours_patients": int(self.counts[["anterior_total", "posterior_total"]]
                                     .to_numpy().sum()),
            })
        return pd.DataFrame(rows)


def _pooled_anterior(counts: pd.DataFrame) -> tuple[float, float]:
    events = int(counts["anterior_events"].sum())
    total = int(counts["anterior_total"].sum())
    return 1.0 + events, 1.0 + total - events


def _derived(idata: az.InferenceData, pooled: tuple[float, float], seed: int) -> xr.Dataset:
    post = idata.posterior
    shape = (post.sizes["chain"], post.sizes["draw"])
    rng = np.random.default_rng([seed, 7])
    z = xr.DataArray(rng.standard_normal(shape), dims=SAMPLE_DIMS)
    p_a = xr.DataArray(rng.beta(*pooled, size=shape), dims=SAMPLE_DIMS)
    theta, tau = post["theta"], post["tau"]
    theta_new = theta + tau * z
    p_p = xr.apply_ufunc(expit, xr.apply_ufunc(logit, p_a) + theta)
    return xr.Dataset({
        "theta": theta, "odds_ratio": np.exp(theta), "tau": tau,
        "theta_new": theta_new, "odds_ratio_new": np.exp(theta_new),
        "p_anterior": p_a, "p_posterior": p_p, "risk_ratio": p_p / p_a,
        "risk_difference": p_p - p_a,
    })


def binomial_meta(counts: pd.DataFrame, *, outcome: str = "outcome",
                  priors: Mapping[str, Prior | Mapping[str, Any]] | None = None,
                  settings: SamplerSettings | None = None, interval: IntervalSpec | None = None,
                  kind: str = "benefit", margin: float | None = None, source: str = "",
                  notes: Sequence[str] | None = None, warn: bool = True) -> BinomialMetaResult:
    """Fit the arm-based binomial model to ``counts`` (one row per trial).

    ``counts`` has columns ``study``, ``anterior_events``, ``anterior_total``,
    ``posterior_events``, ``posterior_total`` (see :func:`comparative_counts`).
    Priors (``theta``, ``tau``, ``mu_study``) default to :data:`BINARY_META_PRIORS`.
    ``margin`` (> 0, risk-difference scale) and ``kind`` set the optional
    non-inferiority table.
    """
    counts = check_counts_frame(counts)
    resolved = resolve_priors(priors, BINARY_META_FAMILIES, BINARY_META_PRIORS)
    kind = check_kind(kind)
    if margin is not None:
        margin = check_margin(margin, risk_difference=True)
    settings = settings or DEFAULT_META_SETTINGS
    events = counts[["anterior_events", "posterior_events"]].to_numpy(float)
    total = counts[["anterior_total", "posterior_total"]].to_numpy(float)
    labels = list(counts["study"])
    if settings.backend == "nutpie":
        from bayes_poem.backends import arm_density

        crude = logit((events[:, 0] + 0.5) / (total[:, 0] + 1.0))  # mu[s] starts near it
        idata = _sample_kernel(arm_density, arm_density.buffer(events, total, resolved), labels,
                               {2: crude}, settings)
    else:
        data = {"events": events, "total": total, **pymc_models.hyper_values(resolved)}
        idata = binomial_model(len(counts), resolved).sample(data, settings,
                                                             coords={STUDY: labels})
    idata = pymc_models.provenance(idata, outcome=outcome, data_source=source,
                             priors={k: p.to_dict() for k, p in resolved.items()},
                             sampler=settings.to_dict())
    return BinomialMetaResult(
        outcome=outcome, counts=counts, priors=resolved, settings=settings, idata=idata,
        draws=_derived(idata, _pooled_anterior(counts), settings.seed),
        diagnostics=check_fit(idata, warn=warn), interval=interval or IntervalSpec(),
        kind=kind, margin=margin, source=source,
        notes=tuple(notes) if notes is not None else comparison_notes(
            outcome, list(counts["study"])),
    )


def binomial_meta_from_table(table: StudyTable, outcome: str, *,
                             studies: Sequence[str] | None = None,
                             same_trial: Sequence[Sequence[str]] = DEFAULT_SAME_TRIAL,
                             **kwargs: Any) -> BinomialMetaResult:
    """:func:`binomial_meta` for one outcome of a long table with ``subgroup`` = arm."""
    counts = comparative_counts(table, outcome, studies=studies, same_trial=same_trial)
    return binomial_meta(counts, outcome=outcome, source=table.source, **kwargs)


# ---------------------------------------------------------------- normal-normal model
def _normal_model(n_studies: int, priors: Mapping[str, Prior]) -> pymc_models.ReusableModel:
    import pymc as pm

    labels = [f"s{i}" for i in range(n_studies)]
    with pm.Model(coords={STUDY: labels}) as model:
        y = pm.Data("y", np.zeros(n_studies), dims=STUDY)
        se = pm.Data("se", np.ones(n_studies), dims=STUDY)
        hyper = {k: pm.Data(k, v) for k, v in pymc_models.hyper_values(priors).items()}
        mu = pymc_models.prior_rv(pm, "mu", priors["mu"], hyper)
        tau = pymc_models.prior_rv(pm, "tau", priors["tau"], hyper)
        w = pm.Normal("w", 0.0, 1.0, dims=STUDY)
        effect = pm.Deterministic("theta_study", mu + tau * w, dims=STUDY)
        pm.Normal("y_obs", effect, se, observed=y, dims=STUDY)
    return pymc_models.ReusableModel(model, ["mu", "tau", "w", "theta_study"])


def normal_model(n_studies: int, priors: Mapping[str, Prior]) -> pymc_models.ReusableModel:
    """The (cached) PyMC normal-normal model for ``n_studies`` estimates (the reference
    definition, and the ``backend = "pymc"`` path)."""
    priors = resolve_priors(priors, NORMAL_META_FAMILIES, {})
    key = ("normal_meta", int(n_studies), pymc_models.families(priors))
    return pymc_models.cached_model(key, lambda: _normal_model(int(n_studies), priors))


@dataclass(frozen=True)
class NormalMetaResult:
    """Posterior of the normal-normal random-effects model (``mu``, ``tau``, ``mu_new``)."""

    outcome: str
    data: pd.DataFrame
    priors: Mapping[str, Prior]
    settings: SamplerSettings
    idata: az.InferenceData
    diagnostics: Diagnostics
    interval: IntervalSpec = IntervalSpec()
    measure: str = "mean difference (posterior - anterior)"
    notes: tuple[str, ...] = field(default_factory=tuple)

    def mu_new_draws(self) -> xr.DataArray:
        post = self.idata.posterior
        rng = np.random.default_rng([self.settings.seed, 7])
        z = rng.standard_normal((post.sizes["chain"], post.sizes["draw"]))
        return post["mu"] + post["tau"] * xr.DataArray(z, dims=SAMPLE_DIMS)

    def summary(self, interval: IntervalSpec | None = None) -> pd.DataFrame:
        interval = interval or self.interval
        post = self.idata.posterior
        quantities = {"mu": (post["mu"], f"pooled {self.measure}"),
                      "tau": (post["tau"], "between-trial SD"),
                      "mu_new": (self.mu_new_draws(), f"{self.measure} in a new trial")}
        return pd.DataFrame([{"outcome": self.outcome, "quantity": name, "meaning": meaning,
                              **describe(draws.values, interval)}
                             for name, (draws, meaning) in quantities.items()])


def random_effects_meta(estimates: Sequence[float], standard_errors: Sequence[float], *,
                        priors: Mapping[str, Prior | Mapping[str, Any]],
                        studies: Sequence[str] | None = None, outcome: str = "outcome",
                        settings: SamplerSettings | None = None,
                        interval: IntervalSpec | None = None,
                        measure: str = "mean difference (posterior - anterior)",
                        notes: Sequence[str] = (), warn: bool = True) -> NormalMetaResult:
    """Normal-normal random-effects meta-analysis of per-trial mean differences.

    ``priors`` must give ``mu`` (Normal or StudentT) and ``tau`` (half-normal,
    half-Cauchy, half-Student-t, exponential or ``LogNormalTau2``), in the
    outcome's units.
    """
    y = [check_number(v, f"estimates[{i}]") for i, v in enumerate(estimates)]
    se = [check_number(v, f"standard_errors[{i}]") for i, v in enumerate(standard_errors)]
    if not y:
        raise DataError("estimates: no trials")
    if len(y) != len(se):
        raise DataError(f"estimates ({len(y)}) and standard_errors ({len(se)}) differ in length")
    for i, value in enumerate(se):
        if value <= 0:
            raise DataError(f"standard_errors[{i}]: must be > 0 (got {value:g})")
    labels = list(studies) if studies is not None else [f"study_{i + 1}" for i in range(len(y))]
    if len(labels) != len(y) or len(set(labels)) != len(labels):
        raise DataError("studies: one distinct label per estimate is needed")
    resolved = resolve_priors(priors, NORMAL_META_FAMILIES, {})
    settings = settings or DEFAULT_META_SETTINGS
    if settings.backend == "nutpie":
        from bayes_poem.backends import normal_density

        weights = 1.0 / np.square(se)
        start = float(np.dot(weights, y) / weights.sum())  # mu starts near the pooled estimate
        idata = _sample_kernel(normal_density, normal_density.buffer(y, se, resolved), labels,
                               {0: start}, settings)
    else:
        idata = normal_model(len(y), resolved).sample(
            {"y": np.array(y), "se": np.array(se), **pymc_models.hyper_values(resolved)}, settings,
            coords={STUDY: labels})
    idata = pymc_models.provenance(idata, outcome=outcome,
                             priors={k: p.to_dict() for k, p in resolved.items()},
                             sampler=settings.to_dict())
    data = pd.DataFrame({"study": labels, "estimate": y, "se": se})
    return NormalMetaResult(outcome=outcome, data=data, priors=resolved, settings=settings,
                            idata=idata, diagnostics=check_fit(idata, warn=warn),
                            interval=interval or IntervalSpec(), measure=measure,
                            notes=tuple(notes))

