r"""Prior and posterior predictive checks, and predictions for a new centre.

Everything here is computed in numpy from posterior (or prior) draws; nothing is
sampled by MCMC and no PyMC graph is compiled. The prior predictive is in
:mod:`bayes_poem.prior_predictive` and the new centre in
:mod:`bayes_poem.new_centre` (both importable from here, as before).

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

from bayes_poem.dims import SAMPLE_DIMS
from bayes_poem.errors import SpecError
from bayes_poem.model_math import row_linear_predictor, row_random_effect, row_tau, tau_cell

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.spec import ModelSpec

# Moved to their own modules and importable from here as before (PEP 562: loaded on
# first use, so neither module's import of this one is circular).
_MOVED = {"PRIOR_QUANTILES": "prior_predictive", "PriorPredictive": "prior_predictive",
          "prior_predictive": "prior_predictive", "sample_prior": "prior_predictive",
          "NewCentrePrediction": "new_centre", "new_centre_prediction": "new_centre",
          "new_study_rates": "new_centre", "default_exceedance_ks": "new_centre"}

__all__ = [
    "FLAG_HIGH", "FLAG_LOW", "PosteriorPredictive", "RowDraws", "beta_binomial_shapes",
    "clopper_pearson", "count_distribution_summary", "has_likelihood_option",
    "likelihood_of", "posterior_predictive", "row_draws", "row_log_likelihood", "row_pmfs",
    "sum_pmf", *_MOVED,
]

FLAG_LOW, FLAG_HIGH = 0.025, 0.975
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


def __getattr__(name: str):
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"bayes_poem.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
