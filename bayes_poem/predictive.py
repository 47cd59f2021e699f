r"""Prior and posterior predictive checks, and predictions for a new centre.

Everything here is computed in numpy from posterior (or prior) draws; nothing is
sampled by MCMC and no PyMC graph is compiled.

**Prior predictive** (:func:`prior_predictive`): draws of the parameters from
their priors, and what they imply on the probability scale: the median-study rate
:math:`\operatorname{logit}^{-1}(\mu + \alpha_d)` and the rate of a new study
:math:`\operatorname{logit}^{-1}(\mu + \alpha_d + \tau w)`, :math:`w \sim N(0, 1)`,
summarised by quantiles.

**Posterior predictive** (:func:`posterior_predictive`): replicated counts of
every row. With ``method="mixed"`` (default) each replicated study gets a *new*
study effect :math:`u^{\text{rep}}_s = \tau z`, :math:`z \sim N(0, 1)`, shared by the
rows of that study (mixed predictive replication, Marshall & Spiegelhalter 2003);
with ``method="conditional"`` it keeps its fitted effect :math:`u_s`. Conditional
replication lets every study fit itself, so its p-values pile up near 0.5 and
hide outlying studies; the mixed replication compares each study with the
random-effects distribution, which is what a flag for a badly fitting study needs.

Posterior predictive p-values are **mid-p** values, because counts are discrete:

.. math::

    \text{ppp} = P\{T(y^{\text{rep}}) > T(y) \mid y\}
               + \tfrac12 P\{T(y^{\text{rep}}) = T(y) \mid y\}.

A small value means the observed count (or statistic) is higher than the model
predicts, a value near 1 that it is lower. For a row or a study total, the
probabilities given each draw are computed exactly (binomial, or the convolution
of the rows' distributions for a study total) and averaged over the draws; for
the test statistics (lowest and highest row rate, SD of the row rates) they are
estimated from one replicated data set per draw. Rows and studies with
ppp < 0.025 or > 0.975 are flagged.

**New centre** (:func:`new_centre_prediction`): the rate of a new study of a
given subgroup (``p_new`` of :meth:`FitResult.subgroup_probabilities`) and the
number of events among ``N`` patients, ``Binomial(N, p_new)``: its predictive
distribution is the average over draws of the binomial probabilities, so
``P(count >= k)`` is exact given the draws.

**Moderators** (meta-regression): every row's linear predictor includes its
moderator term, :math:`\mu + \alpha_{d_i} + u_{s_i} + x_i^\top\beta`
(:func:`bayes_poem.model_math.row_linear_predictor`), in the replicated data and
the log-likelihood; a new centre is at the moderators' reference values (or
``at``); the prior predictive draws ``beta`` from its prior (``p_study_covariates``).

**Cell effects** (``cell_effects = "random"``): every row's fitted random part is
``u[s_i] + u_cell[c_i]`` (:func:`bayes_poem.model_math.row_random_effect`); the mixed
replication draws a new study effect per study *and* a new cell effect
:math:`\tau_{\text{cell}} v^{\text{rep}}_c`, :math:`v^{\text{rep}}_c \sim N(0, 1)`,
per cell; the prior predictive ``p_study`` adds :math:`\tau_{\text{cell}} v` with
``tau_cell`` from its prior and one ``v`` per subgroup.

Likelihoods: the binomial-logit-normal model, and a beta-binomial likelihood when
the spec has one (``spec.likelihood == "beta_binomial"``, overdispersion ``phi`` in
the posterior): :math:`y_i \sim \operatorname{BetaBinomial}(n_i, p_i\kappa,
(1-p_i)\kappa)` with :math:`\kappa = 1/\phi^2`, independent latent rates per row
(as :meth:`ModelSpec.build`; :func:`beta_binomial_shapes` is the one place here).
Rows whose counts a spec has zeroed (``zeroed_rows``: leave-one-out or subset
variants) have ``total = 0`` and are left out of every check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats
from scipy.signal import fftconvolve
from scipy.special import betaln, expit, gammaln, log_expit

from bayes_poem.backends.density import helmert_basis
from bayes_poem.dims import SAMPLE_DIMS, SUBGROUP
from bayes_poem.errors import SpecError
from bayes_poem.intervals import IntervalSpec, describe
from bayes_poem.model_math import row_linear_predictor, row_random_effect, row_tau, tau_cell
from bayes_poem.prior_families import REGISTRY
from bayes_poem.priors import Prior

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.spec import ModelSpec

__all__ = [
    "FLAG_HIGH", "FLAG_LOW", "PRIOR_QUANTILES", "NewCentrePrediction", "PosteriorPredictive",
    "PriorPredictive", "RowDraws", "beta_binomial_shapes", "clopper_pearson",
    "count_distribution_summary", "default_exceedance_ks", "has_likelihood_option",
    "likelihood_of", "new_centre_prediction", "posterior_predictive", "prior_predictive",
    "row_draws", "row_log_likelihood", "row_pmfs", "sample_prior", "sum_pmf",
]

FLAG_LOW, FLAG_HIGH = 0.025, 0.975
PRIOR_QUANTILES = (0.025, 0.10, 0.25, 0.50, 0.75, 0.90, 0.975)
BINOMIAL, BETA_BINOMIAL = "binomial", "beta_binomial"
ReplicationMethod = Literal["mixed", "conditional"]


# ---------------------------------------------------------------------- likelihood
def has_likelihood_option() -> bool:
    """Whether :class:`ModelSpec` has a ``likelihood`` field (beta-binomial available)."""
    from bayes_poem.spec import ModelSpec

    return "likelihood" in {f.name for f in dataclasses.fields(ModelSpec)}


def likelihood_of(spec: ModelSpec) -> str:
    """``"binomial"`` or the spec's ``likelihood`` option when it has one."""
    return str(getattr(spec, "likelihood", BINOMIAL) or BINOMIAL)


def beta_binomial_shapes(p: np.ndarray, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Beta shapes ``(p * kappa, (1 - p) * kappa)`` with ``kappa = 1 / phi**2``."""
    kappa = 1.0 / np.asarray(phi, dtype=float) ** 2
    return p * kappa, (1.0 - p) * kappa


def log_binomial_coefficient(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


@dataclass(frozen=True)
class RowDraws:
    """Posterior draws mapped to the rows of the data, as numpy arrays.

    Attributes
    ----------
    base : ndarray (chain, draw, row)
        ``mu + alpha[d_i] + x_i' beta`` (no study effect; the moderator term
        with moderators), from :func:`bayes_poem.model_math.row_linear_predictor`.
    u : ndarray (chain, draw, row)
        The fitted random effects of each row, ``u[s_i]`` plus, with cell effects,
        ``u_cell[c_i]`` (zeros without study effects).
    tau : ndarray (chain, draw)
        Between-study SD (zeros under ``study_effects = "common"``; NaN with
        ``study_heterogeneity = "by_subgroup"``, where only ``tau_row`` applies).
    phi : ndarray (chain, draw) or None
        Beta-binomial precision, when the likelihood is beta-binomial.
    events, total, study_idx, subgroup_idx : ndarray (row,)
    studies : list of str
    likelihood : str
    tau_row : ndarray (chain, draw, row) or None
        The SD scaling each row's study effect, ``tau`` or ``tau[d_i]``
        (:func:`bayes_poem.model_math.row_tau`); None: ``tau`` for every row.
    tau_cell : ndarray (chain, draw) or None
        The SD of the cell effects (``cell_effects = "random"``); None without them.
    cell_idx : ndarray (row,) or None
        Each row's study x subgroup cell (with ``tau_cell``).
    """

    base: np.ndarray
    u: np.ndarray
    tau: np.ndarray
    phi: np.ndarray | None
    events: np.ndarray
    total: np.ndarray
    study_idx: np.ndarray
    subgroup_idx: np.ndarray
    studies: list[str]
    likelihood: str
    tau_row: np.ndarray | None = None
    tau_cell: np.ndarray | None = None
    cell_idx: np.ndarray | None = None

    @property
    def n_draws(self) -> int:
        return int(self.tau.size)

    def row_tau(self) -> np.ndarray:
        """The study-effect SD of every row, shape ``tau.shape + (rows,)``."""
        if self.tau_row is not None:
            return self.tau_row
        return np.repeat(self.tau[..., None], len(self.events), axis=-1)

    def flat(self, array: np.ndarray) -> np.ndarray:
        """Merge the chain and draw axes."""
        return array.reshape(self.n_draws, *array.shape[2:])


def _values(data: xr.DataArray, *extra: str) -> np.ndarray:
    return data.transpose(*SAMPLE_DIMS, *extra).values


def row_draws(fit: FitResult) -> RowDraws:
    """The fit's posterior draws of each row's linear predictor and scale parameters."""
    spec = fit.spec
    post = fit.posterior
    arrays = spec.arrays()
    mu = _values(post["mu"])
    base = row_linear_predictor(post, spec, study_effects=False)  # mu + alpha + x'beta
    u = row_random_effect(post, spec)  # u[s_i] (or tau[d_i] * w[s_i]) + u_cell[c_i]
    tau_row = row_tau(post, spec)
    tau = tau_row[..., 0] if spec.study_heterogeneity == "common" and tau_row.shape[-1] else (
        np.full_like(mu, np.nan))  # one tau per draw only when it is common
    likelihood = likelihood_of(spec)
    phi = None
    if likelihood == BETA_BINOMIAL:
        if "phi" not in post:
            raise SpecError("beta-binomial fit without 'phi' in the posterior")
        phi = _values(post["phi"])
    cells = spec.cell_effects == "random"
    return RowDraws(base, u, tau, phi, arrays["events"], arrays["total"],
                    arrays["study_idx"], arrays["subgroup_idx"], list(spec.studies), likelihood,
                    tau_row=tau_row, tau_cell=tau_cell(post, spec) if cells else None,
                    cell_idx=arrays["cell_idx"] if cells else None)


def row_log_likelihood(draws: RowDraws, eta: np.ndarray | None = None) -> np.ndarray:
    """Pointwise log-likelihood of every row, shape of ``eta`` (default ``base + u``).

    Binomial: :math:`\\log\\binom{n}{y} + y\\log p + (n-y)\\log(1-p)` computed with
    ``log_expit`` so that it is finite for 0 and ``n`` events. Beta-binomial:
    :math:`\\log\\binom{n}{y} + \\log B(y + a, n - y + b) - \\log B(a, b)`.
    """
    eta = draws.base + draws.u if eta is None else eta
    y = draws.events.astype(float)
    n = draws.total.astype(float)
    log_c = log_binomial_coefficient(n, y)
    if draws.likelihood == BETA_BINOMIAL:
        phi = np.asarray(draws.phi).reshape(draws.phi.shape + (1,) * (eta.ndim - 2))
        a, b = beta_binomial_shapes(expit(eta), phi)
        return log_c + betaln(y + a, n - y + b) - betaln(a, b)
    return log_c + y * log_expit(eta) + (n - y) * log_expit(-eta)


def row_pmfs(n: int, p: np.ndarray, phi: np.ndarray | None = None) -> np.ndarray:
    """P(count = k), k = 0..n, per draw: shape ``p.shape + (n + 1,)``."""
    k = np.arange(n + 1)
    p = np.asarray(p, dtype=float)[..., None]
    if phi is None:
        return stats.binom.pmf(k, n, p)
    a, b = beta_binomial_shapes(p, np.asarray(phi, dtype=float)[..., None])
    return stats.betabinom.pmf(k, n, a, b)


def sum_pmf(pmfs: Sequence[np.ndarray]) -> np.ndarray:
    """Distribution of a sum of independent counts, per draw (last axis: the count)."""
    total = pmfs[0]
    for pmf in pmfs[1:]:
        total = np.clip(fftconvolve(total, pmf, axes=-1), 0.0, None)
    return total


def _mid_p_upper(pmf: np.ndarray, observed: int) -> np.ndarray:
    """P(X > x) + P(X = x) / 2 per draw."""
    return pmf[..., observed + 1:].sum(-1) + 0.5 * pmf[..., observed]


# ---------------------------------------------------------------------- exact intervals
def clopper_pearson(events: np.ndarray, total: np.ndarray,
                    prob: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) binomial confidence limits of ``events / total``."""
    events = np.asarray(events, dtype=float)
    total = np.asarray(total, dtype=float)
    tail = (1.0 - prob) / 2.0
    with np.errstate(invalid="ignore"):
        lower = np.where(events > 0, stats.beta.ppf(tail, events, total - events + 1), 0.0)
        upper = np.where(events < total, stats.beta.ppf(1 - tail, events + 1, total - events),
                         1.0)
    return lower, upper


def _discrete_quantiles(pmf: np.ndarray, probs: Sequence[float]) -> list[int]:
    cdf = np.cumsum(pmf)
    cdf = cdf / cdf[-1]
    return [int(np.searchsorted(cdf, q - 1e-12)) for q in probs]


def count_distribution_summary(pmf: np.ndarray, prob: float) -> dict[str, float | str]:
    """Mean, median, SD and central interval of a count distribution given by its pmf."""
    k = np.arange(pmf.size)
    pmf = pmf / pmf.sum()
    mean = float((k * pmf).sum())
    sd = float(np.sqrt(max(((k - mean) ** 2 * pmf).sum(), 0.0)))
    tail = (1.0 - prob) / 2.0
    lower, median, upper = _discrete_quantiles(pmf, [tail, 0.5, 1.0 - tail])
    return {"mean": mean, "median": float(median), "sd": sd, "lower": float(lower),
            "upper": float(upper), "interval": f"{100 * prob:g}% central"}


# ---------------------------------------------------------------------- prior predictive
def sample_prior(prior: Prior, size: int | tuple[int, ...],
                 rng: np.random.Generator) -> np.ndarray:
    """Draws from a :class:`Prior` (the registry's sampler of its family)."""
    if prior.dist not in REGISTRY:
        raise SpecError(f"prior predictive: no sampler for the {prior.dist} family")
    return REGISTRY[prior.dist].sample(rng, prior.params, size)


@dataclass(frozen=True)
class PriorPredictive:
    """What the priors imply for rates on the probability scale.

    Attributes
    ----------
    draws : xarray.Dataset
        ``p_pooled`` (median-study rate) and ``p_study`` (rate of a new study) with
        dims ``(sample, subgroup)``; with subgroup effects also ``difference``
        (``p_pooled`` of the first minus the second subgroup; the priors are
        exchangeable, so any pair has this prior). With moderators these are at
        the reference values (``x = 0``), and ``p_study_covariates`` is the rate
        of a new study with the covariate values of a randomly chosen row of the
        data (of that subgroup), ``logit^-1(mu + alpha_d + x_r' beta + tau w)``
        with ``beta`` drawn from its prior.
    table : pandas.DataFrame
        Per subgroup and quantity: quantiles (columns ``q2.5``, ``q10``, ...,
        ``q97.5``) and the prior probabilities of a rate below 5% or above 95%;
        for the ``difference`` row, ``p_abs_gt_10pts`` = P(|difference| > 0.10).
    notes : tuple of str
    """

    draws: xr.Dataset
    table: pd.DataFrame
    notes: tuple[str, ...] = ()


def _labels(spec: ModelSpec) -> list[str]:
    if spec.subgroup_effects == "none":
        return spec.subgroups if len(spec.subgroups) == 1 else ["pooled"]
    return list(spec.subgroups)


def _prior_rates_at_rows(spec: ModelSpec, labels: list[str], eta: np.ndarray, tau: np.ndarray,
                         phi: np.ndarray | None, rng: np.random.Generator,
                         tau_cell: np.ndarray | None = None) -> np.ndarray:
    """Prior new-study rates (draws, labels) at the covariates of a random row per draw.

    ``beta`` is drawn from its prior; each draw takes the coded moderators of one
    row of the data chosen uniformly among the rows of the label's subgroup (all
    rows for the single-group label), and a new study effect ``tau * w`` (plus a
    new cell effect ``tau_cell * v`` per label with cell effects).
    """
    n_draws = eta.shape[0]
    beta = sample_prior(spec.priors["beta"], (n_draws, len(spec.moderator_terms)), rng)
    design = spec.design()
    arrays = spec.arrays()
    active = arrays["total"] > 0
    if not active.any():
        active = np.ones_like(active)
    effect = np.empty_like(eta)
    for j, label in enumerate(labels):
        rows = active & (arrays["subgroup_idx"] == spec.subgroups.index(label)) if (
            spec.subgroup_effects != "none" and label in spec.subgroups) else active
        candidates = np.flatnonzero(rows if rows.any() else active)
        picked = design[candidates[rng.integers(candidates.size, size=n_draws)]]
        effect[:, j] = (picked * beta).sum(-1)
    eta_rows = eta + effect + tau * rng.standard_normal((n_draws, 1))
    if tau_cell is not None:
        eta_rows = eta_rows + tau_cell * rng.standard_normal(eta.shape)
    p_rows = expit(eta_rows)
    if phi is not None:
        a, b = beta_binomial_shapes(p_rows, phi)
        p_rows = rng.beta(np.maximum(a, 1e-300), np.maximum(b, 1e-300))
    return p_rows


def prior_predictive(spec: ModelSpec, *, draws: int = 4000, seed: int = 0) -> PriorPredictive:
    """Draw the parameters from their priors and summarise the implied rates."""
    rng = np.random.default_rng([int(seed), 7])
    labels = _labels(spec)
    n_d = len(labels)
    priors = spec.priors
    mu = sample_prior(priors["mu"], draws, rng)
    if spec.subgroup_effects == "random":
        sigma = sample_prior(priors["sigma_subgroup"], draws, rng)
        alpha = sigma[:, None] * rng.standard_normal((draws, n_d))
    elif spec.subgroup_effects == "fixed":
        basis = helmert_basis(n_d)
        raw = rng.standard_normal((draws, n_d - 1))
        alpha = priors["alpha"].params["sigma"] * raw @ basis.T
    else:
        alpha = np.zeros((draws, n_d))
    # tau: (draws, 1), or (draws, subgroups) with tau[d] i.i.d. from the tau prior
    if spec.study_effects != "random":
        tau = np.zeros((draws, 1))
    elif spec.study_heterogeneity == "by_subgroup":
        tau = sample_prior(priors["tau"], (draws, n_d), rng)
    else:
        tau = sample_prior(priors["tau"], draws, rng)[:, None]
    eta = mu[:, None] + alpha
    p_pooled = expit(eta)
    eta_study = eta + tau * rng.standard_normal((draws, 1))
    tau_cell = None
    if spec.cell_effects == "random":  # one new cell effect per subgroup
        tau_cell = sample_prior(priors["tau_cell"], draws, rng)[:, None]
        eta_study = eta_study + tau_cell * rng.standard_normal((draws, n_d))
    p_study = expit(eta_study)
    notes = []
    phi = None
    if likelihood_of(spec) == BETA_BINOMIAL:
        phi_prior = priors.get("phi") if isinstance(priors, Mapping) else None
        if phi_prior is None:
            notes.append("The beta-binomial precision phi has no prior in the spec; the rate "
                         "of a new study is shown without its beta-binomial spread.")
        else:
            phi = sample_prior(phi_prior, draws, rng)[:, None]
            a, b = beta_binomial_shapes(p_study, phi)
            p_study = rng.beta(np.maximum(a, 1e-300), np.maximum(b, 1e-300))
    data = xr.Dataset(
        {"p_pooled": (("sample", SUBGROUP), p_pooled), "p_study": (("sample", SUBGROUP), p_study)},
        coords={SUBGROUP: labels},
    )
    quantities = ["p_pooled", "p_study"]
    if spec.moderators:  # drawn last: the draws above stay those of the model without
        p_rows = _prior_rates_at_rows(spec, labels, eta, tau, phi, rng, tau_cell)
        data["p_study_covariates"] = (("sample", SUBGROUP), p_rows)
        quantities.append("p_study_covariates")
    rows = []
    for label in labels:
        for quantity in quantities:
            values = data[quantity].sel({SUBGROUP: label}).values
            row = {"subgroup": label, "quantity": quantity}
            row.update({f"q{100 * q:g}": float(np.quantile(values, q)) for q in PRIOR_QUANTILES})
            row["p_below_5pct"] = float(np.mean(values < 0.05))
            row["p_above_95pct"] = float(np.mean(values > 0.95))
            rows.append(row)
    if n_d > 1 and spec.subgroup_effects != "none":
        difference = p_pooled[:, 0] - p_pooled[:, 1]
        data["difference"] = ("sample", difference)
        data.attrs["difference"] = f"{labels[0]} - {labels[1]}"
        row = {"subgroup": f"{labels[0]} - {labels[1]}", "quantity": "difference"}
        row.update({f"q{100 * q:g}": float(np.quantile(difference, q))
                    for q in PRIOR_QUANTILES})
        row["p_below_5pct"] = row["p_above_95pct"] = float("nan")
        row["p_abs_gt_10pts"] = float(np.mean(np.abs(difference) > 0.10))
        rows.append(row)
    return PriorPredictive(data, pd.DataFrame(rows), tuple(notes))


# ---------------------------------------------------------------------- posterior predictive
@dataclass(frozen=True)
class PosteriorPredictive:
    """Posterior predictive checks of a fit.

    Attributes
    ----------
    method : {"mixed", "conditional"}
        How the study effect of a replicated study is drawn (module docstring).
    rows : pandas.DataFrame
        Per row: ``study``, ``subgroup``, ``events``, ``total``, ``observed`` (rate),
        replicated-count ``rep_mean``, ``rep_median``, ``rep_lower``, ``rep_upper``
        (central interval, ``interval``), ``ppp`` (mid-p) and ``flag``.
    studies : pandas.DataFrame
        Per study (all its rows summed): ``study``, ``rows``, ``events``, ``total``,
        ``ppp`` and ``flag``.
    statistics : pandas.DataFrame
        Test statistics: ``statistic``, ``observed``, replicated ``rep_mean``,
        ``rep_lower``, ``rep_upper`` and ``ppp`` (mid-p).
    replicated : numpy.ndarray
        One replicated data set per draw, shape (draws, rows) (the rows of ``rows``).
    statistic_draws : dict of str to numpy.ndarray
        T(y_rep) per draw for each statistic.
    """

    method: str
    rows: pd.DataFrame
    studies: pd.DataFrame
    statistics: pd.DataFrame
    replicated: np.ndarray
    statistic_draws: Mapping[str, np.ndarray]

    @property
    def flagged_studies(self) -> list[str]:
        return self.studies.loc[self.studies["flag"], "study"].tolist()


STATISTICS = {
    "min_rate": "lowest row rate",
    "max_rate": "highest row rate",
    "sd_rate": "between-study SD of the observed rates",
}


def _statistics(counts: np.ndarray, total: np.ndarray) -> dict[str, np.ndarray]:
    rates = counts / total
    sd = rates.std(axis=-1, ddof=1) if rates.shape[-1] > 1 else np.zeros(rates.shape[:-1])
    return {"min_rate": rates.min(-1), "max_rate": rates.max(-1), "sd_rate": sd}


def _flag(ppp: np.ndarray) -> np.ndarray:
    return (ppp < FLAG_LOW) | (ppp > FLAG_HIGH)


def replicated_probabilities(draws: RowDraws, method: ReplicationMethod,
                             rng: np.random.Generator) -> np.ndarray:
    """Row probabilities (draws, rows) used to replicate the data."""
    base = draws.flat(draws.base)
    if method == "conditional":
        return expit(base + draws.flat(draws.u))
    if method != "mixed":
        raise SpecError(f"posterior predictive method '{method}' is not one of mixed, "
                        "conditional")
    z = rng.standard_normal((draws.n_draws, len(draws.studies)))
    eta = base + draws.flat(draws.row_tau()) * z[:, draws.study_idx]
    if draws.tau_cell is not None:  # a new effect for every cell as well
        v = rng.standard_normal((draws.n_draws, int(draws.cell_idx.max()) + 1))
        eta = eta + draws.flat(draws.tau_cell)[:, None] * v[:, draws.cell_idx]
    return expit(eta)


def posterior_predictive(fit: FitResult, *, method: ReplicationMethod = "mixed",
                         prob: float | None = None, seed: int | None = None
                         ) -> PosteriorPredictive:
    """Replicated counts, mid-p posterior predictive p-values and flags.

    Parameters
    ----------
    fit : FitResult
    method : {"mixed", "conditional"}
        ``"mixed"`` (default) gives each replicated study a new effect ``tau * z``;
        ``"conditional"`` keeps its fitted effect.
    prob : float, optional
        Probability of the central intervals of replicated counts (default: the
        fit's interval probability).
    seed : int, optional
        Seed of the replication (default: the fit's seed).
    """
    draws = row_draws(fit)
    prob = float(prob if prob is not None else fit.interval.prob)
    rng = np.random.default_rng([int(fit.settings.seed if seed is None else seed), 2])
    p = replicated_probabilities(draws, method, rng)
    phi = None if draws.phi is None else draws.phi.reshape(-1)
    frame = fit.spec.table.frame
    active = np.flatnonzero(draws.total > 0)  # zeroed rows (leave-out variants) drop out

    row_records, pmfs = [], {}
    for i in active:
        y, n = int(draws.events[i]), int(draws.total[i])
        pmf = row_pmfs(n, p[:, i], phi)
        pmfs[i] = pmf
        summary = count_distribution_summary(pmf.mean(0), prob)
        row_records.append({
            "study": frame["study"].iloc[i], "subgroup": frame["subgroup"].iloc[i],
            "events": y, "total": n, "observed": y / n,
            "rep_mean": summary["mean"], "rep_median": summary["median"],
            "rep_lower": summary["lower"], "rep_upper": summary["upper"],
            "interval": summary["interval"], "ppp": float(_mid_p_upper(pmf, y).mean()),
        })
    rows = pd.DataFrame(row_records)
    rows["flag"] = _flag(rows["ppp"].to_numpy())

    study_records = []
    for s, study in enumerate(draws.studies):
        members = [i for i in active if draws.study_idx[i] == s]
        if not members:
            continue
        y = int(draws.events[members].sum())
        pmf = sum_pmf([pmfs[i] for i in members])
        study_records.append({"study": study, "rows": len(members), "events": y,
                              "total": int(draws.total[members].sum()),
                              "ppp": float(_mid_p_upper(pmf, y).mean())})
    studies = pd.DataFrame(study_records)
    studies["flag"] = _flag(studies["ppp"].to_numpy())

    total = draws.total[active]
    p_active = p[:, active]
    if phi is None:
        replicated = rng.binomial(total, p_active)
    else:
        a, b = beta_binomial_shapes(p_active, phi[:, None])
        replicated = rng.binomial(total, rng.beta(np.maximum(a, 1e-300), np.maximum(b, 1e-300)))
    observed = _statistics(draws.events[active][None, :].astype(float), total)
    reps = _statistics(replicated.astype(float), total)
    tail = (1.0 - prob) / 2.0
    stat_records = []
    for name, label in STATISTICS.items():
        t_obs = float(observed[name][0])
        t_rep = reps[name]
        close = np.isclose(t_rep, t_obs, rtol=0.0, atol=1e-12)
        ppp = float(np.mean((t_rep > t_obs) & ~close) + 0.5 * np.mean(close))
        lower, upper = np.quantile(t_rep, [tail, 1.0 - tail])
        stat_records.append({"statistic": name, "description": label, "observed": t_obs,
                             "rep_mean": float(t_rep.mean()), "rep_lower": float(lower),
                             "rep_upper": float(upper), "interval": f"{100 * prob:g}% central",
                             "ppp": ppp})
    return PosteriorPredictive(method, rows, studies, pd.DataFrame(stat_records), replicated,
                               reps)


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
