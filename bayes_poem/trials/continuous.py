r"""One two-arm trial with a continuous outcome (Eckardt score, LES pressure).

Which direction is favourable is stated by ``better``: for the Eckardt score
and LES pressure a **lower** value is better (``better = "lower"``, the
default). Every result is reported as

* ``change_<arm>``: mean change from baseline, follow-up minus baseline
  (negative = a reduction);
* ``difference``: change in posterior minus change in anterior;
* ``improvement_difference``: the difference in improvement, posterior minus
  anterior, where improvement is the reduction when lower is better and the
  increase when higher is better (so > 0 always favours posterior myotomy).

Posterior myotomy is non-inferior with margin :math:`\delta > 0` (outcome units)
if ``improvement_difference`` :math:`> -\delta`, i.e. its mean change is at most
:math:`\delta` worse.

Two analyses:

(a) **patient-level data** (columns ``arm``, ``baseline``, ``followup``):
baseline-adjusted regression
:math:`y_i \sim N(b_0 + b_\text{arm} x_i + b_\text{base}(\text{baseline}_i - \bar b), \sigma)`
with :math:`x_i = 1` for posterior, or a Student-t likelihood with
:math:`\nu \sim \mathrm{Gamma}(2, 0.1)` (``likelihood = "student_t"``), sampled
with PyMC. :math:`b_\text{arm}` is the adjusted difference in change. Default
priors are weakly informative on the scale of the data (as rstanarm's
autoscaling): :math:`b_0 \sim N(\bar y, 2.5 s_y)`, :math:`b_\text{arm} \sim N(0, 5 s_y)`,
:math:`b_\text{base} \sim N(0, 2.5 s_y / s_b)`, :math:`\sigma \sim \mathrm{Exponential}(1/s_y)`
with :math:`s_y, s_b` the SDs of follow-up and baseline.

(b) **arm-level summaries** (n, mean and SD before and after, per arm): the
mean change per arm :math:`\bar d = \bar y_\text{after} - \bar y_\text{before}` with
standard error :math:`\sqrt{(s_\text{before}^2 + s_\text{after}^2 - 2 \rho s_\text{before}
s_\text{after}) / n}`. The pre-post correlation :math:`\rho` is rarely published:
it is **assumed** (default 0.5, configurable) and stated in the result. Normal
likelihood, flat prior on each arm's mean change (or a Normal prior): the
posterior is normal, drawn directly, and P(non-inferior) is also exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import norm

from bayes_poem.diagnostics import Diagnostics, check_fit
from bayes_poem.dims import DRAW, SAMPLE_DIMS
from bayes_poem.errors import DataError, SpecError
from bayes_poem.intervals import IntervalSpec, describe
from bayes_poem.prior_families import EXPONENTIAL, NORMAL
from bayes_poem.priors import Prior
from bayes_poem.sampling import SamplerSettings
from bayes_poem.trials import pymc_models
from bayes_poem.trials.common import (
    ANTERIOR,
    ARM_DIM,
    ARMS,
    MAX_DRAWS,
    MAX_PATIENTS,
    POSTERIOR,
    check_better,
    check_count,
    check_margin,
    check_number,
    check_seed,
    is_number,
    noninferiority_statement,
)

__all__ = [
    "ArmSummary",
    "ContinuousTrialResult",
    "analyse_arm_summaries",
    "analyse_patient_level",
    "as_summary",
    "check_patient_frame",
]

LIKELIHOODS = ("normal", "student_t")
PATIENT_COLUMNS = ("arm", "baseline", "followup")
PATIENT_PRIOR_FAMILIES = {"b0": pymc_models.LOCATION, "b_arm": pymc_models.LOCATION,
                          "b_base": pymc_models.LOCATION, "sigma": pymc_models.SCALE}
NU_PRIOR = "Gamma(2, 0.1)"
DEFAULT_CORRELATION = 0.5
DEFAULT_SETTINGS = SamplerSettings(draws=1000, tune=1000, chains=4, seed=20150601)


@dataclass(frozen=True)
class ArmSummary:
    """Published-style summary of one arm: n, mean and SD before and after."""

    n: int
    before_mean: float
    before_sd: float
    after_mean: float
    after_sd: float
    where: str = field(default="arm", compare=False, repr=False)

    def __post_init__(self) -> None:
        try:
            n = check_count(self.n, "n", minimum=-MAX_PATIENTS, maximum=MAX_PATIENTS)
        except SpecError:
            too_large = is_number(self.n) and self.n > MAX_PATIENTS
            reason = (f"at most {MAX_PATIENTS:,} patients per arm" if too_large
                      else "must be an integer")
            raise DataError(f"{self.where}: n {reason} (got {self.n!r})") from None
        if n <= 0:
            raise DataError(f"{self.where}: n is {n}: an arm with no patients")
        if n == 1:  # the SDs of a single patient are undefined
            raise DataError(f"{self.where}: n is 1: an arm summary with an SD needs n >= 2")
        object.__setattr__(self, "n", n)
        for name in ("before_mean", "before_sd", "after_mean", "after_sd"):
            value = getattr(self, name)
            try:
                number = check_number(value, name)
            except SpecError:
                raise DataError(f"{self.where}: {name} must be a finite number "
                                f"(got {value!r})") from None
            object.__setattr__(self, name, number)
        for name in ("before_sd", "after_sd"):
            if getattr(self, name) <= 0:
                raise DataError(f"{self.where}: {name} must be > 0 (got {getattr(self, name):g})")

    @property
    def change(self) -> float:
        return self.after_mean - self.before_mean

    def change_se(self, correlation: float) -> float:
        var = (self.before_sd**2 + self.after_sd**2
               - 2.0 * correlation * self.before_sd * self.after_sd)
        return math.sqrt(max(var, 0.0) / self.n)

    def to_dict(self) -> dict[str, float]:
        return {"n": self.n, "before_mean": self.before_mean, "before_sd": self.before_sd,
                "after_mean": self.after_mean, "after_sd": self.after_sd}


def as_summary(value: ArmSummary | Mapping[str, Any], where: str) -> ArmSummary:
    """One arm's summary from ``ArmSummary`` or a mapping of its five fields."""
    if isinstance(value, ArmSummary):
        return value
    if not isinstance(value, Mapping):
        raise DataError(f"{where}: expected n, before_mean, before_sd, after_mean, after_sd")
    keys = ("n", "before_mean", "before_sd", "after_mean", "after_sd")
    unknown = [k for k in value if k not in keys]
    missing = [k for k in keys if k not in value]
    if unknown or missing:
        bad = unknown[0] if unknown else missing[0]
        raise DataError(f"{where}: {'unknown' if unknown else 'missing'} key '{bad}'; "
                        f"keys: {', '.join(keys)}")
    return ArmSummary(**{k: value[k] for k in keys}, where=where)


@dataclass(frozen=True)
class ContinuousTrialResult:
    """Posterior of a two-arm trial with a continuous outcome; see the module docstring.

    ``draws`` holds ``change`` (dim ``arm``), ``difference`` and
    ``improvement_difference`` (and ``nu`` for the Student-t model) over the
    sample dims (``draw``, or ``chain`` and ``draw`` after MCMC).
    """

    outcome: str
    method: str
    better: str
    margin: float
    draws: xr.Dataset
    arms: pd.DataFrame
    assumptions: tuple[str, ...]
    interval: IntervalSpec = IntervalSpec()
    exact_p_noninferior: float | None = None
    synthetic: bool = False
    idata: az.InferenceData | None = None
    diagnostics: Diagnostics | None = None

    @property
    def hypothesis(self) -> str:
        return noninferiority_statement(self.better, self.margin,
                                        "change_posterior - change_anterior")

    def noninferior_draws(self) -> np.ndarray:
        return np.asarray(self.draws["improvement_difference"].values).ravel() > -self.margin

    @property
    def p_noninferior(self) -> float:
        return float(np.mean(self.noninferior_draws()))

    def summary(self, interval: IntervalSpec | None = None) -> pd.DataFrame:
        interval = interval or self.interval
        improvement = "reduction" if self.better == "lower" else "increase"
        rows = []
        for arm in ARMS:
            rows.append({"quantity": f"change_{arm}",
                         "meaning": f"mean change from baseline (follow-up - baseline), {arm}",
                         **describe(self.draws["change"].sel({ARM_DIM: arm}).values, interval)})
        rows.append({"quantity": "difference",
                     "meaning": "change posterior - change anterior",
                     **describe(self.draws["difference"].values, interval)})
        rows.append({"quantity": "improvement_difference",
                     "meaning": f"{improvement} posterior - {improvement} anterior "
                                f"({self.better} is better; > 0 favours posterior)",
                     **describe(self.draws["improvement_difference"].values, interval)})
        if "nu" in self.draws:
            rows.append({"quantity": "nu", "meaning": "Student-t degrees of freedom",
                         **describe(self.draws["nu"].values, interval)})
        frame = pd.DataFrame(rows)
        frame.insert(0, "outcome", self.outcome)
        return frame

    @property
    def mcse_p_noninferior(self) -> float:
        """Monte Carlo SE of :attr:`p_noninferior`: binomial for independent draws,
        ESS-based (ArviZ) for MCMC draws."""
        improvement = self.draws["improvement_difference"]
        if "chain" not in improvement.dims:
            p = self.p_noninferior
            return math.sqrt(p * (1 - p) / improvement.size)
        indicator = (improvement > -self.margin).astype(float).values
        if indicator.min() == indicator.max():
            return 0.0
        return float(az.mcse(indicator))

    def noninferiority(self) -> pd.DataFrame:
        improvement = np.asarray(self.draws["improvement_difference"].values).ravel()
        n = improvement.size
        p = self.p_noninferior
        return pd.DataFrame([{
            "outcome": self.outcome, "method": self.method, "better": self.better,
            "margin": self.margin, "hypothesis": self.hypothesis, "p_noninferior": p,
            "mcse": self.mcse_p_noninferior,
            "p_noninferior_exact": (float("nan") if self.exact_p_noninferior is None
                                    else self.exact_p_noninferior),
            "p_posterior_better": float(np.mean(improvement > 0)),
            "draws": n, "synthetic_data": self.synthetic,
            "assumptions": "; ".join(self.assumptions),
        }])


def _improvement(difference: Any, better: str) -> Any:
    return -difference if better == "lower" else difference


# ---------------------------------------------------------------- (b) arm summaries
def analyse_arm_summaries(*, anterior: ArmSummary | Mapping[str, Any],
                          posterior: ArmSummary | Mapping[str, Any], margin: float,
                          better: str = "lower", correlation: float = DEFAULT_CORRELATION,
                          prior: Prior | Mapping[str, Any] | None = None, draws: int = 20_000,
                          seed: int = 20150601, interval: IntervalSpec | None = None,
                          outcome: str = "outcome", synthetic: bool = False
                          ) -> ContinuousTrialResult:
    """Normal analysis of per-arm changes from arm-level summaries.

    ``correlation`` is the assumed pre-post correlation (in [-1, 1]; default 0.5).
    ``prior`` is ``None`` (flat) or a ``Normal`` prior on each arm's mean change.
    """
    margin = check_margin(margin, risk_difference=False)
    better = check_better(better)
    correlation = check_number(correlation, "correlation")
    if not -1.0 <= correlation <= 1.0:
        raise SpecError(f"correlation: must be in [-1, 1] (got {correlation:g})")
    draws = check_count(draws, "draws", minimum=2, maximum=MAX_DRAWS)
    seed = check_seed(seed)
    arms = {ANTERIOR: as_summary(anterior, f"{outcome}: anterior arm"),
            POSTERIOR: as_summary(posterior, f"{outcome}: posterior arm")}
    if prior is not None:
        prior = pymc_models.check_prior("change", prior, (NORMAL,), "prior")
    means, sds, rows = [], [], []
    for arm, summary in arms.items():
        se = summary.change_se(correlation)
        if se <= 0:
            raise DataError(f"{outcome}: {arm} arm: the standard error of the change is 0 "
                            f"(correlation {correlation:g} with equal SDs); use a correlation "
                            "below 1")
        if prior is None:
            mean, sd = summary.change, se
        else:
            prec = 1.0 / prior.params["sigma"] ** 2 + 1.0 / se**2
            mean = (prior.params["mu"] / prior.params["sigma"] ** 2 + summary.change / se**2)
            mean, sd = mean / prec, math.sqrt(1.0 / prec)
        means.append(mean)
        sds.append(sd)
        rows.append({"arm": arm, **summary.to_dict(), "change": summary.change,
                     "change_se": se, "correlation": correlation})
    rng = np.random.default_rng(seed)
    change = np.column_stack([rng.normal(m, s, size=draws) for m, s in zip(means, sds,
                                                                              strict=True)])
    difference = change[:, 1] - change[:, 0]
    dataset = xr.Dataset(
        {"change": ((DRAW, ARM_DIM), change), "difference": ((DRAW,), difference),
         "improvement_difference": ((DRAW,), _improvement(difference, better))},
        coords={DRAW: np.arange(draws), ARM_DIM: list(ARMS)})
    diff_mean = means[1] - means[0]
    diff_sd = math.hypot(sds[0], sds[1])
    imp_mean = diff_mean if better == "higher" else -diff_mean
    exact = float(norm.sf(-margin, loc=imp_mean, scale=diff_sd))
    assumptions = (
        f"pre-post correlation {correlation:g} assumed (not published) for the SE of each "
        "arm's change",
        "normal likelihood for each arm's mean change",
        "flat prior on each arm's mean change" if prior is None
        else f"{prior.describe()} prior on each arm's mean change",
        f"{better} {outcome} is better",
    ) + (("SYNTHETIC data",) if synthetic else ())
    return ContinuousTrialResult(
        outcome=outcome, method="arm_summaries", better=better, margin=margin,
        draws=dataset, arms=pd.DataFrame(rows), assumptions=assumptions,
        interval=interval or IntervalSpec(), exact_p_noninferior=exact, synthetic=synthetic)


# ---------------------------------------------------------------- (a) patient level
def check_patient_frame(frame: pd.DataFrame, source: str = "patients") -> pd.DataFrame:
    """Validate patient-level data: columns arm, baseline, followup; both arms present."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a table with columns {', '.join(PATIENT_COLUMNS)}")
    missing = [c for c in PATIENT_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(map(repr, missing))}; "
                        f"columns found: {', '.join(map(str, frame.columns)) or '(none)'}")
    out = {"arm": [], "baseline": [], "followup": []}
    for row, record in enumerate(frame[list(PATIENT_COLUMNS)].itertuples(index=False), start=1):
        arm = str(record.arm).strip()
        if arm not in ARMS:
            raise DataError(f"{source}: row {row}, column 'arm': '{record.arm}' is not one of "
                            f"{', '.join(ARMS)}")
        out["arm"].append(arm)
        for column in ("baseline", "followup"):
            raw = getattr(record, column)
            try:
                if isinstance(raw, bool | np.bool_):  # float(True) would be 1.0
                    raise TypeError
                value = float(raw)
            except OverflowError:
                value = math.inf
            except (TypeError, ValueError):
                raise DataError(f"{source}: row {row}, column '{column}': '{raw}' is not a "
                                "number") from None
            if not math.isfinite(value):
                raise DataError(f"{source}: row {row}, column '{column}': missing or not "
                                "finite")
            out[column].append(value)
    clean = pd.DataFrame(out)
    for arm in ARMS:
        n = int((clean["arm"] == arm).sum())
        if n < 2:
            raise DataError(f"{source}: arm '{arm}' has {n} patient(s); at least 2 per arm "
                            "are needed")
    return clean


def default_patient_priors(frame: pd.DataFrame, source: str = "patients") -> dict[str, Prior]:
    """Weakly informative priors on the scale of the data (see the module docstring)."""
    s_y = float(frame["followup"].std(ddof=1))
    if not s_y > 0:
        raise DataError(f"{source}: column 'followup' has no variation (SD 0); give the "
                        "priors b0, b_arm, b_base and sigma explicitly")
    s_b = float(frame["baseline"].std(ddof=1))
    s_b = s_b if s_b > 0 else 1.0
    return {"b0": Prior(NORMAL, {"mu": float(frame["followup"].mean()), "sigma": 2.5 * s_y}),
            "b_arm": Prior(NORMAL, {"mu": 0.0, "sigma": 5.0 * s_y}),
            "b_base": Prior(NORMAL, {"mu": 0.0, "sigma": 2.5 * s_y / s_b}),
            "sigma": Prior(EXPONENTIAL, {"lam": 1.0 / s_y})}


def _patient_model(likelihood: str, priors: Mapping[str, Prior]) -> pymc_models.ReusableModel:
    import pymc as pm

    with pm.Model() as model:
        x_arm = pm.Data("x_arm", np.array([0.0, 1.0, 0.0, 1.0]))
        x_base = pm.Data("x_base", np.zeros(4))
        y = pm.Data("y", np.zeros(4))
        hyper = {k: pm.Data(k, v) for k, v in pymc_models.hyper_values(priors).items()}
        b0 = pymc_models.prior_rv(pm, "b0", priors["b0"], hyper)
        b_arm = pymc_models.prior_rv(pm, "b_arm", priors["b_arm"], hyper)
        b_base = pymc_models.prior_rv(pm, "b_base", priors["b_base"], hyper)
        sigma = pymc_models.prior_rv(pm, "sigma", priors["sigma"], hyper)
        mean = b0 + b_arm * x_arm + b_base * x_base
        names = ["b0", "b_arm", "b_base", "sigma"]
        if likelihood == "student_t":
            nu = pm.Gamma("nu", alpha=2.0, beta=0.1)
            pm.StudentT("followup", nu=nu, mu=mean, sigma=sigma, observed=y, shape=y.shape)
            names.append("nu")
        else:
            pm.Normal("followup", mean, sigma, observed=y, shape=y.shape)
    return pymc_models.ReusableModel(model, names)


def patient_model(likelihood: str, priors: Mapping[str, Prior]) -> pymc_models.ReusableModel:
    """The (cached) patient-level model for this likelihood and these prior families."""
    key = ("patient_level", likelihood, pymc_models.families(priors))
    return pymc_models.cached_model(key, lambda: _patient_model(likelihood, priors))


def analyse_patient_level(patients: pd.DataFrame, *, margin: float, better: str = "lower",
                          likelihood: str = "normal",
                          priors: Mapping[str, Prior | Mapping[str, Any]] | None = None,
                          settings: SamplerSettings | None = None,
                          interval: IntervalSpec | None = None, outcome: str = "outcome",
                          synthetic: bool = False, source: str = "patients",
                          warn: bool = True) -> ContinuousTrialResult:
    """Baseline-adjusted analysis of patient-level data, sampled with PyMC.

    ``priors`` may override any of ``b0``, ``b_arm``, ``b_base`` (Normal/StudentT)
    and ``sigma`` (half-normal, half-Cauchy, half-Student-t, exponential).
    """
    margin = check_margin(margin, risk_difference=False)
    better = check_better(better)
    if likelihood not in LIKELIHOODS:
        raise SpecError(f"likelihood: '{likelihood}' is not one of {', '.join(LIKELIHOODS)}")
    frame = check_patient_frame(patients, source)
    overrides = dict(priors or {})
    unknown = [k for k in overrides if k not in PATIENT_PRIOR_FAMILIES]
    if unknown:
        raise SpecError(f"priors: unknown prior name '{unknown[0]}'; valid names: "
                        f"{', '.join(PATIENT_PRIOR_FAMILIES)}")
    resolved = {name: pymc_models.check_prior(name, overrides[name], PATIENT_PRIOR_FAMILIES[name],
                                        f"priors.{name}")
                for name in overrides}
    if len(resolved) < len(PATIENT_PRIOR_FAMILIES):
        resolved = {**default_patient_priors(frame, source), **resolved}
    resolved = {name: resolved[name] for name in PATIENT_PRIOR_FAMILIES}
    settings = settings or DEFAULT_SETTINGS
    baseline_mean = float(frame["baseline"].mean())
    model = patient_model(likelihood, resolved)
    data = {"x_arm": (frame["arm"] == POSTERIOR).to_numpy(float),
            "x_base": frame["baseline"].to_numpy(float) - baseline_mean,
            "y": frame["followup"].to_numpy(float), **pymc_models.hyper_values(resolved)}
    idata = model.sample(data, settings)
    idata = pymc_models.provenance(idata, outcome=outcome, data_source=source,
                             synthetic_data=str(synthetic).lower(), likelihood=likelihood,
                             priors={k: p.to_dict() for k, p in resolved.items()},
                             sampler=settings.to_dict())
    diagnostics = check_fit(idata, warn=warn)
    post = idata.posterior
    change = xr.concat([post["b0"] - baseline_mean, post["b0"] + post["b_arm"] - baseline_mean],
                       dim=ARM_DIM).assign_coords({ARM_DIM: list(ARMS)})
    change = change.transpose(*SAMPLE_DIMS, ARM_DIM)
    dataset = xr.Dataset({"change": change, "difference": post["b_arm"],
                          "improvement_difference": _improvement(post["b_arm"], better)})
    if likelihood == "student_t":
        dataset["nu"] = post["nu"]
    arms = frame.groupby("arm", sort=False).agg(
        n=("followup", "size"), before_mean=("baseline", "mean"),
        before_sd=("baseline", "std"), after_mean=("followup", "mean"),
        after_sd=("followup", "std")).reindex(list(ARMS)).reset_index()
    assumptions = (
        f"baseline-adjusted {likelihood.replace('_', '-')} regression of follow-up on arm and "
        f"centred baseline (mean {baseline_mean:.3g}); per-arm change at the mean baseline",
        "priors: " + "; ".join(f"{k} ~ {p.describe()}" for k, p in resolved.items())
        + (f"; nu ~ {NU_PRIOR}" if likelihood == "student_t" else ""),
        f"{better} {outcome} is better",
    ) + (("SYNTHETIC data",) if synthetic else ())
    return ContinuousTrialResult(
        outcome=outcome, method=f"patient_level_{likelihood}", better=better, margin=margin,
        draws=dataset, arms=arms, assumptions=assumptions, interval=interval or IntervalSpec(),
        synthetic=synthetic, idata=idata, diagnostics=diagnostics)
