r"""Design of a future anterior-versus-posterior trial: assurance and interim looks.

**Final analysis rule.** A trial with binary outcome data is analysed with
independent Beta priors per arm (default Beta(1, 1), flat) and declares
non-inferiority of posterior myotomy when the posterior probability
:math:`P(p_P - p_A > -\delta \mid \text{data})` (benefit) or
:math:`P(p_P - p_A < \delta \mid \text{data})` (harm) exceeds ``threshold``
(default 0.975). The probability is computed by Gauss-Legendre quadrature
(:func:`bayes_poem.trials.binary.prob_noninferior_grid`), once per distinct
outcome of the simulated trials.

**Assurance** (:func:`assurance`): the probability that a trial with ``N``
patients per arm meets the rule, averaging over uncertainty about the truth:
for each simulation draw a log odds ratio :math:`\theta_\text{new}` from the
meta-analytic predictive distribution (:meth:`BinomialMetaResult.theta_new_draws`),
an anterior rate :math:`p_A` (the pooled anterior rate's posterior, or a fixed
user value), set :math:`p_P = \operatorname{logit}^{-1}(\operatorname{logit} p_A
+ \theta_\text{new})`, simulate both arms, apply the rule. The same truths are
used for every ``N`` (common random numbers), so the curve is smooth.
:func:`assurance_normal_approximation` is the closed form derived in
``docs/trials.md``.

**Interim predictive probability of success** (:func:`interim_predictive_probability`):
given :math:`n_1` patients per arm observed and :math:`N` planned, draw the arm
probabilities from the current posterior, simulate the remaining patients, apply
the final rule and average. :func:`interim_predictive_probability_exact` sums
the same quantity over the beta-binomial predictive distribution (a check).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import betabinom, norm

from bayes_poem.errors import DataError, SpecError
from bayes_poem.trials.binary import ArmCounts, BetaPrior, as_counts, prob_noninferior_grid
from bayes_poem.trials.common import (
    MAX_N_PER_ARM,
    MAX_SIMULATIONS,
    check_count,
    check_kind,
    check_margin,
    check_probability,
    check_seed,
    noninferiority_statement,
)

__all__ = [
    "AssuranceResult",
    "DecisionRule",
    "InterimResult",
    "assurance",
    "assurance_from_meta",
    "assurance_normal_approximation",
    "check_sizes",
    "interim_inputs",
    "interim_predictive_probability",
    "interim_predictive_probability_exact",
]

MC_INTERVAL = "95% Monte Carlo interval"
# The exact interim probability enumerates (remaining_a + 1) x (remaining_p + 1)
# outcomes in float64 grids: 10^7 of them (about 3,000 patients per arm still to
# come) already need some hundreds of MB of working arrays.
MAX_EXACT_OUTCOMES = 10**7


@dataclass(frozen=True)
class DecisionRule:
    """The final analysis: Beta priors, margin, direction and posterior threshold."""

    margin: float
    kind: str = "benefit"
    threshold: float = 0.975
    prior: BetaPrior = field(default_factory=BetaPrior)

    def __post_init__(self) -> None:
        object.__setattr__(self, "margin", check_margin(self.margin, risk_difference=True))
        object.__setattr__(self, "kind", check_kind(self.kind))
        object.__setattr__(self, "threshold", check_probability(self.threshold, "threshold"))
        if not isinstance(self.prior, BetaPrior):
            raise SpecError(f"prior: expected a BetaPrior (got {self.prior!r})")

    @property
    def statement(self) -> str:
        scale = "p_posterior - p_anterior"
        return (f"{noninferiority_statement(self.kind, self.margin, scale)} > "
                f"{self.threshold:g} with {self.prior.describe()} priors")

    def probability(self, events_a: Any, total_a: Any, events_p: Any, total_p: Any, *,
                    nodes: int = 128) -> np.ndarray:
        """Posterior P(non-inferior) for arrays of trial outcomes (deduplicated).

        ``nodes`` Gauss-Legendre nodes: absolute error below 1e-5 against adaptive
        quadrature for trials of 5 to 20,000 patients per arm."""
        a = self.prior
        params = np.stack(np.broadcast_arrays(
            a.a + np.asarray(events_a, float), a.b + np.asarray(total_a, float)
            - np.asarray(events_a, float),
            a.a + np.asarray(events_p, float), a.b + np.asarray(total_p, float)
            - np.asarray(events_p, float)), axis=-1)
        flat = params.reshape(-1, 4)
        unique, inverse = np.unique(flat, axis=0, return_inverse=True)
        probs = np.empty(len(unique))
        for start in range(0, len(unique), 2048):
            chunk = unique[start:start + 2048]
            probs[start:start + 2048] = prob_noninferior_grid(
                chunk[:, 0], chunk[:, 1], chunk[:, 2], chunk[:, 3], self.margin, self.kind,
                nodes=nodes)
        return probs[inverse.ravel()].reshape(params.shape[:-1])

    def success(self, events_a: Any, total_a: Any, events_p: Any, total_p: Any) -> np.ndarray:
        return self.probability(events_a, total_a, events_p, total_p) > self.threshold


def _mc_row(successes: np.ndarray) -> dict[str, float | str]:
    n = successes.size
    p = float(np.mean(successes))
    se = math.sqrt(p * (1.0 - p) / n)
    return {"mcse": se, "lower": max(0.0, p - 1.96 * se), "upper": min(1.0, p + 1.96 * se),
            "interval": MC_INTERVAL}


# ---------------------------------------------------------------- assurance
@dataclass(frozen=True)
class AssuranceResult:
    """Assurance over sample sizes per arm; ``curve`` has one row per ``N``."""

    curve: pd.DataFrame
    rule: DecisionRule
    simulations: int
    seed: int
    theta_mean: float
    theta_sd: float
    baseline: str
    notes: tuple[str, ...] = ()

    def summary(self) -> pd.DataFrame:
        return self.curve.copy()


def assurance_normal_approximation(n_per_arm: Any, *, theta_mean: float, theta_sd: float,
                                   baseline: float, margin: float, kind: str = "benefit",
                                   threshold: float = 0.975) -> np.ndarray:
    r"""Closed-form normal approximation of the assurance (derived in ``docs/trials.md``).

    With :math:`p_\delta = p_A \mp \delta` (benefit/harm), :math:`\theta_\delta =
    \operatorname{logit} p_\delta - \operatorname{logit} p_A`,
    :math:`\sigma_N = \sqrt{(p_A(1-p_A) + p_\delta(1-p_\delta))/N} / (p_\delta(1-p_\delta))`
    and :math:`z = \Phi^{-1}(\text{threshold})`:

    .. math:: A(N) \approx \Phi\!\left(\frac{s(m - \theta_\delta) - z\,\sigma_N}
              {\sqrt{s_\theta^2 + \sigma_N^2}}\right),

    :math:`s = +1` for benefit, :math:`-1` for harm; :math:`\theta_\text{new} \sim
    N(m, s_\theta^2)`. As :math:`N \to \infty` it tends to
    :math:`P(s(\theta_\text{new} - \theta_\delta) > 0)`. ``nan`` if
    :math:`p_\delta` is outside (0, 1).
    """
    margin = check_margin(margin, risk_difference=True)
    kind = check_kind(kind)
    n = np.asarray(n_per_arm, dtype=float)
    sign = 1.0 if kind == "benefit" else -1.0
    p_d = baseline - sign * margin
    if not 0.0 < p_d < 1.0:
        return np.full(n.shape, np.nan)
    theta_d = logit(p_d) - logit(baseline)
    v = baseline * (1 - baseline) + p_d * (1 - p_d)
    sigma_n = np.sqrt(v / n) / (p_d * (1 - p_d))
    z = norm.ppf(threshold)
    return norm.cdf((sign * (theta_mean - theta_d) - z * sigma_n)
                    / np.sqrt(theta_sd**2 + sigma_n**2))


def check_sizes(n_per_arm: Any) -> list[int]:
    """The planned sizes per arm: one positive integer or a non-empty list of them."""
    if isinstance(n_per_arm, int | np.integer) and not isinstance(n_per_arm, bool):
        n_per_arm = [n_per_arm]
    if isinstance(n_per_arm, str) or not isinstance(n_per_arm, Sequence | np.ndarray) or len(
            n_per_arm) == 0:
        raise SpecError("n_per_arm: must be a non-empty list of integers >= 1")
    return [check_count(n, f"n_per_arm[{i}]", minimum=1, maximum=MAX_N_PER_ARM)
            for i, n in enumerate(n_per_arm)]


def assurance(*, n_per_arm: Sequence[int] | int, theta_new: Any, baseline: float | Any,
              margin: float, kind: str = "benefit", threshold: float = 0.975,
              analysis_prior: BetaPrior | None = None, simulations: int = 4000,
              seed: int = 20240101, baseline_label: str | None = None,
              notes: Sequence[str] = ()) -> AssuranceResult:
    """Assurance of a future trial by simulation, with its normal approximation.

    Parameters
    ----------
    n_per_arm : int or list of int
        Planned patients per arm.
    theta_new : array
        Draws of the log odds ratio (posterior vs anterior) in the new trial.
    baseline : float or array
        The anterior rate: a value in (0, 1) or draws of it.
    margin, kind, threshold, analysis_prior
        The final analysis rule (:class:`DecisionRule`).
    simulations, seed : int
        Simulated trials per ``N`` and the seed.
    """
    sizes = check_sizes(n_per_arm)
    rule = DecisionRule(margin, kind, threshold, analysis_prior or BetaPrior())
    simulations = check_count(simulations, "simulations", minimum=10, maximum=MAX_SIMULATIONS)
    seed = check_seed(seed)
    theta = np.asarray(theta_new, dtype=float).ravel()
    if theta.size == 0 or not np.isfinite(theta).all():
        raise DataError("theta_new: needs finite draws")
    base = np.asarray(baseline, dtype=float).ravel()
    if base.size == 0 or not ((base > 0) & (base < 1)).all():
        raise SpecError("baseline: the anterior rate must be strictly between 0 and 1")
    rng = np.random.default_rng([seed, 0])
    theta_i = theta[rng.integers(theta.size, size=simulations)]
    p_a = base[rng.integers(base.size, size=simulations)] if base.size > 1 else np.full(
        simulations, base[0])
    p_p = expit(logit(p_a) + theta_i)
    theta_mean, theta_sd = float(np.mean(theta)), float(np.std(theta))
    point = float(np.mean(base))
    approx = assurance_normal_approximation(sizes, theta_mean=theta_mean, theta_sd=theta_sd,
                                            baseline=point, margin=rule.margin, kind=rule.kind,
                                            threshold=rule.threshold)
    rows = []
    for n, approximation in zip(sizes, approx, strict=True):
        sim = np.random.default_rng([seed, 1, n])
        x_a = sim.binomial(n, p_a)
        x_p = sim.binomial(n, p_p)
        success = rule.success(x_a, n, x_p, n)
        rows.append({"n_per_arm": n, "assurance": float(np.mean(success)), **_mc_row(success),
                     "normal_approximation": float(approximation),
                     "simulations": simulations})
    label = baseline_label or (f"fixed anterior rate {point:g}" if base.size == 1
                               else f"anterior rate draws (mean {point:.3g})")
    return AssuranceResult(curve=pd.DataFrame(rows), rule=rule, simulations=simulations,
                           seed=seed, theta_mean=theta_mean, theta_sd=theta_sd,
                           baseline=label, notes=tuple(notes))


def assurance_from_meta(meta: Any, *, n_per_arm: Sequence[int] | int, margin: float,
                        kind: str | None = None, baseline: float | None = None,
                        threshold: float = 0.975, analysis_prior: BetaPrior | None = None,
                        simulations: int = 4000, seed: int = 20240101) -> AssuranceResult:
    """:func:`assurance` with the meta-analytic predictive distribution of ``meta``
    (a :class:`~bayes_poem.trials.meta.BinomialMetaResult`).

    ``baseline=None`` uses draws of the pooled anterior rate; a number fixes it.
    """
    theta = meta.theta_new_draws()
    if baseline is None:
        base = np.asarray(meta.draws["p_anterior"].values, dtype=float).ravel()
        label = (f"pooled anterior rate of {', '.join(meta.studies)} "
                 f"(Beta{meta.pooled_anterior}, mean {float(base.mean()):.3g})")
    else:
        base = check_probability(baseline, "baseline")
        label = f"fixed anterior rate {base:g}"
    notes = (f"theta_new: predictive log odds ratio of a new trial from the meta-analysis of "
             f"{meta.outcome} ({', '.join(meta.studies)})",)
    return assurance(n_per_arm=n_per_arm, theta_new=theta, baseline=base, margin=margin,
                     kind=kind or meta.kind, threshold=threshold,
                     analysis_prior=analysis_prior, simulations=simulations, seed=seed,
                     baseline_label=label, notes=notes)


# ---------------------------------------------------------------- interim
@dataclass(frozen=True)
class InterimResult:
    """Predictive probability of success at an interim look."""

    anterior: ArmCounts
    posterior: ArmCounts
    n_per_arm: int
    rule: DecisionRule
    predictive_probability: float
    mcse: float
    current_p_noninferior: float
    simulations: int
    seed: int

    def summary(self) -> pd.DataFrame:
        p = self.predictive_probability
        return pd.DataFrame([{
            "anterior_interim": f"{self.anterior.events}/{self.anterior.total}",
            "posterior_interim": f"{self.posterior.events}/{self.posterior.total}",
            "n_per_arm_planned": self.n_per_arm, "rule": self.rule.statement,
            "current_p_noninferior": self.current_p_noninferior,
            "predictive_probability": p, "mcse": self.mcse,
            "lower": max(0.0, p - 1.96 * self.mcse), "upper": min(1.0, p + 1.96 * self.mcse),
            "interval": MC_INTERVAL, "simulations": self.simulations,
        }])


def interim_inputs(anterior: Any, posterior: Any, n_per_arm: Any, margin: float, kind: str,
                   threshold: float, prior: BetaPrior | None
                   ) -> tuple[ArmCounts, ArmCounts, int, DecisionRule]:
    """The checked inputs of an interim analysis: both arms' counts, the planned size
    per arm, the final analysis' decision rule."""
    ant = as_counts(anterior, "interim anterior arm")
    post = as_counts(posterior, "interim posterior arm")
    n = check_count(n_per_arm, "n_per_arm", minimum=1, maximum=MAX_N_PER_ARM)
    for name, counts in (("anterior", ant), ("posterior", post)):
        if counts.total > n:
            raise DataError(f"interim {name} arm: {counts.total} patients observed but only "
                            f"{n} per arm planned (n_per_arm)")
    return ant, post, n, DecisionRule(margin, kind, threshold, prior or BetaPrior())


def interim_predictive_probability(*, anterior: ArmCounts | Sequence[int],
                                   posterior: ArmCounts | Sequence[int], n_per_arm: int,
                                   margin: float, kind: str = "benefit",
                                   threshold: float = 0.975, prior: BetaPrior | None = None,
                                   simulations: int = 20_000, seed: int = 20240102
                                   ) -> InterimResult:
    """Predictive probability that the final analysis declares non-inferiority.

    ``anterior``/``posterior`` are the interim counts; ``n_per_arm`` the planned
    final size per arm. The current posterior (``prior`` updated with the interim
    data) is also the prior of the final analysis' data model.
    """
    ant, post, n, rule = interim_inputs(anterior, posterior, n_per_arm, margin, kind,
                                         threshold, prior)
    simulations = check_count(simulations, "simulations", minimum=10, maximum=MAX_SIMULATIONS)
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    post_a, post_p = ant.posterior(rule.prior), post.posterior(rule.prior)
    p_a = rng.beta(*post_a, size=simulations)
    p_p = rng.beta(*post_p, size=simulations)
    x_a = ant.events + rng.binomial(n - ant.total, p_a)
    x_p = post.events + rng.binomial(n - post.total, p_p)
    success = rule.success(x_a, n, x_p, n)
    p = float(np.mean(success))
    current = float(rule.probability(ant.events, ant.total, post.events, post.total))
    return InterimResult(anterior=ant, posterior=post, n_per_arm=n, rule=rule,
                         predictive_probability=p,
                         mcse=math.sqrt(p * (1 - p) / simulations),
                         current_p_noninferior=current, simulations=simulations, seed=seed)


def interim_predictive_probability_exact(*, anterior: ArmCounts | Sequence[int],
                                         posterior: ArmCounts | Sequence[int], n_per_arm: int,
                                         margin: float, kind: str = "benefit",
                                         threshold: float = 0.975,
                                         prior: BetaPrior | None = None) -> float:
    """The same probability by summing over the beta-binomial predictive outcomes of the
    remaining patients (exact up to the quadrature of the rule; cost grows as N^2)."""
    ant, post, n, rule = interim_inputs(anterior, posterior, n_per_arm, margin, kind,
                                         threshold, prior)
    m_a, m_p = n - ant.total, n - post.total
    if (m_a + 1) * (m_p + 1) > MAX_EXACT_OUTCOMES:
        raise SpecError(f"n_per_arm: {n} per arm leaves {(m_a + 1) * (m_p + 1):,} outcomes to "
                        f"enumerate (at most {MAX_EXACT_OUTCOMES:,}); use "
                        "interim_predictive_probability (simulation)")
    a_a, b_a = ant.posterior(rule.prior)
    a_p, b_p = post.posterior(rule.prior)
    y_a = np.arange(m_a + 1)
    y_p = np.arange(m_p + 1)
    w_a = betabinom.pmf(y_a, m_a, a_a, b_a)
    w_p = betabinom.pmf(y_p, m_p, a_p, b_p)
    grid_a, grid_p = np.meshgrid(y_a, y_p, indexing="ij")
    success = rule.success(ant.events + grid_a, n, post.events + grid_p, n)
    return float(w_a @ success.astype(float) @ w_p)
