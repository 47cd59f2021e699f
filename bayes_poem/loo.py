r"""Leave-one-study-out cross-validation: PSIS-LOO, exact refits, LOO-PIT, comparisons.

The unit left out is a **study**: its log-likelihood is the sum over its rows (one
per subgroup), computed in numpy from the posterior draws (the sampler does not
store it) and passed to :func:`arviz.loo` as a ``log_likelihood`` group with
dimension ``study``.

**Integrated log-likelihood (default).** With random study effects a study has its
own parameter :math:`u_s = \tau w_s`, and the importance ratios
:math:`1/p(y_s \mid \theta, u_s)` of the *conditional* log-likelihood are heavy-tailed
(:math:`\hat k > 0.7` for 17 of the 71 rat-tumour experiments) and biased even
below that. The study's own effect is therefore integrated out first,

.. math::

    \log p(y_s \mid \mu, \alpha, \beta, \tau) = \log \int \prod_{i: s_i = s}
        p(y_i \mid \mu + \alpha_{d_i} + x_i^\top\beta + \tau x)\, \phi(x)\, dx ,

by adaptive Gauss-Hermite quadrature per draw (centred at the mode of the
integrand, :data:`AGH_NODES` nodes). The leave-one-study-out predictive density is
the same quantity either way; only the importance sampling is better behaved.
``integrate=False`` gives the conditional version. The log-likelihood per study
and its quadratures are :mod:`bayes_poem.study_loglik`'s (re-exported here).

With cell effects (``cell_effects = "random"``) the study's cells are integrated
out too, nested inside the study effect,

.. math::

    \log p(y_s \mid \mu, \alpha, \beta, \tau, \tau_{\text{cell}}) = \log \int
        \prod_{c \in s} \Bigl[\int \prod_{i: c_i = c}
        p(y_i \mid \mu + \alpha_{d_i} + x_i^\top\beta + \tau x + \tau_{\text{cell}} v)
        \,\phi(v)\, dv\Bigr] \phi(x)\, dx ,

by nested adaptive Gauss-Hermite quadrature
(:func:`integrated_study_cell_log_likelihood`): the outer rule in ``x`` is centred
at the joint mode of ``(x, v)`` with the marginal curvature (the Schur complement
of the joint Hessian); at each outer node every cell's inner rule
(:data:`CELL_NODES` nodes) is centred at the conditional mode of ``v_c``. Leaving
a study out is then exact up to quadrature error.

**Exact refits.** When a study's Pareto :math:`\hat k` exceeds 0.7 the importance
sampling estimate is unreliable; the study is then left out for real: the model
is refitted without it (``spec.without_study(s)``) and its contribution is

.. math::

    \widehat{\text{elpd}}_s = \log \frac{1}{SK} \sum_{j=1}^{S} \sum_{k=1}^{K}
        p\bigl(y_s \mid \mu^{(j)}, \alpha^{(j)}, u^{\text{new}}_{jk}\bigr), \qquad
    u^{\text{new}}_{jk} = \tau^{(j)} z_{jk},\; z_{jk} \sim N(0, 1),

over the refit's draws :math:`j` (log-mean-exp; the held-out study's random
effect is integrated by drawing it, ``K`` draws per posterior draw). With
moderators every linear predictor here includes :math:`x_i^\top\beta` (the
held-out rows' own covariates with the refit's coefficients; the refit keeps
the moderators' coding). A subgroup
seen only in the held-out study gets a new random subgroup effect
``sigma_subgroup * z`` the same way.

**LOO-PIT.** For each study, the mid-PIT of its total count under the
leave-one-out predictive distribution,
:math:`P(T^{\text{rep}} < T) + \tfrac12 P(T^{\text{rep}} = T)`, as a PSIS-weighted
average over draws (with a new study effect ``tau * z`` per draw when integrated),
or from the refit for refitted studies. Under a well calibrated model the values
are close to uniform.

**Comparisons** (:func:`compare_likelihoods`): the binomial-logit-normal model, the
common-effect binomial model, and the beta-binomial model when
:class:`~bayes_poem.spec.ModelSpec` has a ``likelihood`` field, compared with
:func:`arviz.compare` on the study-level log-likelihood (exact refits substituted
for high-:math:`\hat k` studies).
"""

from __future__ import annotations

import dataclasses
import warnings
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit, logsumexp

from bayes_poem.dims import SAMPLE_DIMS, STUDY, SUBGROUP
from bayes_poem.errors import BayesPoemError, ConvergenceWarning
from bayes_poem.model_math import moderator_effect
from bayes_poem.predictive import (
    BETA_BINOMIAL,
    RowDraws,
    has_likelihood_option,
    likelihood_of,
    row_draws,
    row_log_likelihood,
    row_pmfs,
    sum_pmf,
)
from bayes_poem.study_loglik import (  # the log-likelihood per study; re-exported here
    AGH_NODES,
    CELL_NODES,
    _integrates,
    integrated_study_cell_log_likelihood,
    integrated_study_log_likelihood,
    loo_idata,
    study_log_likelihood,
)

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.sampling import SamplerSettings
    from bayes_poem.spec import ModelSpec

__all__ = ["AGH_NODES", "CELL_NODES", "K_THRESHOLD", "LikelihoodComparison", "LooResult",
           "compare_likelihoods", "exact_study_elpd", "integrated_study_cell_log_likelihood",
           "integrated_study_log_likelihood", "likelihood_variants", "loo_idata", "psis_loo",
           "study_log_likelihood"]

K_THRESHOLD = 0.7
Z_PER_DRAW = 32
PIT_Z_PER_DRAW = 4


# ---------------------------------------------------------------------- PSIS-LOO
@dataclass(frozen=True)
class LooResult:
    """Leave-one-study-out results of one fit.

    Attributes
    ----------
    table : pandas.DataFrame
        Per study: ``study``, ``rows``, ``events``, ``total``, ``elpd_psis``,
        ``pareto_k``, ``high_k`` (k > threshold), ``elpd_exact`` (refits only, else
        NaN), ``elpd`` (the value used), ``method`` (``psis`` or ``refit``) and
        ``loo_pit`` (mid-PIT of the study total).
    elpd, se, p_loo : float
        Totals with exact refits substituted.
    psis : arviz.ELPDData
        ``arviz.loo`` output, unmodified.
    elpd_data : arviz.ELPDData
        The same with exact values substituted (what comparisons use).
    integrated : bool
        Whether the study effects were integrated out of the log-likelihood.
    notes : tuple of str
    k_threshold : float
    """

    table: pd.DataFrame
    elpd: float
    se: float
    p_loo: float
    psis: Any
    elpd_data: Any
    integrated: bool
    notes: tuple[str, ...] = ()
    k_threshold: float = K_THRESHOLD

    @property
    def high_k_studies(self) -> list[str]:
        return self.table.loc[self.table["high_k"], "study"].tolist()


def _reff(fit: FitResult) -> float:
    """Relative efficiency as :func:`arviz.loo` computes it."""
    post = fit.posterior
    if post.sizes["chain"] == 1:
        return 1.0
    ess = az.ess(post, method="mean")
    values = np.hstack([np.ravel(ess[v].values) for v in ess.data_vars])
    return float(np.mean(values) / (post.sizes["chain"] * post.sizes["draw"]))


def _mid_pit(pmf: np.ndarray, observed: int) -> np.ndarray:
    """P(X < x) + P(X = x) / 2 per draw."""
    return pmf[..., :observed].sum(-1) + 0.5 * pmf[..., observed]


def _study_pit(draws: RowDraws, members: np.ndarray, p: np.ndarray,
               phi: np.ndarray | None) -> np.ndarray:
    """Mid-PIT of a study's total count for each set of row probabilities ``p[..., j]``."""
    pmf = sum_pmf([row_pmfs(int(draws.total[i]), p[..., j], phi)
                   for j, i in enumerate(members)])
    return _mid_pit(pmf, int(draws.events[members].sum()))


def _rows_by_study(draws: RowDraws) -> list[np.ndarray]:
    """Per study (in ``draws.studies`` order) its rows with data, found in one pass."""
    rows = np.flatnonzero(draws.total > 0)
    order = np.argsort(draws.study_idx[rows], kind="stable")
    bounds = np.searchsorted(draws.study_idx[rows][order], np.arange(len(draws.studies) + 1))
    return [rows[order[a:b]] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def psis_loo(fit: FitResult, *, integrate: bool = True, refit: bool = True,
             k_threshold: float = K_THRESHOLD, settings: SamplerSettings | None = None,
             z_per_draw: int = Z_PER_DRAW, seed: int | None = None) -> LooResult:
    """PSIS-LOO per study, with exact refits for studies whose Pareto k > ``k_threshold``.

    Parameters
    ----------
    fit : FitResult
    integrate : bool
        Integrate each study's own random effect out of its log-likelihood
        (module docstring); ``False`` conditions on the drawn effects.
    refit : bool
        Refit the model without each high-k study and use the exact contribution.
    k_threshold : float
        Pareto k above which a study is flagged (and refitted).
    settings : SamplerSettings, optional
        Sampler settings of the refits (default: the fit's, without progress bar).
    z_per_draw : int
        Draws of the held-out study's effect per posterior draw of a refit.
    seed : int, optional
        Seed for the drawn study effects (default: the fit's seed).
    """
    idata = loo_idata(fit, integrate=integrate)
    loglik = idata.log_likelihood["y"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        psis = az.loo(idata, pointwise=True)
        log_w, _ = az.psislw(-loglik.stack(__sample__=SAMPLE_DIMS), reff=_reff(fit))
    weights = np.exp(log_w.transpose("__sample__", STUDY).values)
    weights = weights / weights.sum(0, keepdims=True)
    draws = row_draws(fit)
    integrated = _integrates(fit, draws, integrate)
    seed = int(fit.settings.seed if seed is None else seed)
    phi = None if draws.phi is None else draws.phi.reshape(-1)
    base = draws.flat(draws.base)
    if integrated:  # PIT: a new study effect tau * z, PIT_Z_PER_DRAW per draw
        rng = np.random.default_rng([seed, 5])
        z = rng.standard_normal((base.shape[0], PIT_Z_PER_DRAW, len(draws.studies)))
        pit_eta = base[:, None, :] + draws.flat(draws.row_tau())[:, None, :] * z[
            ..., draws.study_idx]
        if draws.tau_cell is not None:  # and a new effect for each of its cells
            v = rng.standard_normal((base.shape[0], PIT_Z_PER_DRAW,
                                     int(draws.cell_idx.max()) + 1))
            pit_eta = pit_eta + draws.flat(draws.tau_cell)[:, None, None] * v[
                ..., draws.cell_idx]
        pit_phi = None if phi is None else np.repeat(phi[:, None], PIT_Z_PER_DRAW, axis=1)
    else:
        pit_eta = (base + draws.flat(draws.u))[:, None, :]
        pit_phi = None if phi is None else phi[:, None]
    pit_p = expit(pit_eta)  # (draws, K, rows)

    elpd_psis = np.asarray(psis.loo_i.values, dtype=float)
    pareto_k = np.asarray(psis.pareto_k.values, dtype=float)
    records, notes = [], []
    position = {study: s for s, study in enumerate(draws.studies)}
    rows_of = _rows_by_study(draws)
    for j, study in enumerate(loglik[STUDY].values.tolist()):
        members = rows_of[position[study]]
        pit_draws = _study_pit(draws, members, pit_p[..., members], pit_phi).mean(-1)
        pit = float(np.sum(weights[:, j] * pit_draws))
        high = bool(pareto_k[j] > k_threshold)
        exact = np.nan
        if high and refit:
            try:
                exact, pit, problems = exact_study_elpd(
                    fit, study, settings=settings, z_per_draw=z_per_draw, seed=seed)
                notes += [f"refit without {study}: {problem}" for problem in problems]
            except BayesPoemError as err:
                notes.append(f"exact refit without {study} impossible ({err}); the PSIS "
                             "value is used")
        used = exact if np.isfinite(exact) else elpd_psis[j]
        records.append({
            "study": study, "rows": len(members), "events": int(draws.events[members].sum()),
            "total": int(draws.total[members].sum()),
            "elpd_psis": float(elpd_psis[j]), "pareto_k": float(pareto_k[j]), "high_k": high,
            "elpd_exact": float(exact), "elpd": float(used),
            "method": "refit" if np.isfinite(exact) else "psis", "loo_pit": pit,
        })
    table = pd.DataFrame(records)
    elpd_data = _substituted(psis, loglik, table)
    return LooResult(table, float(elpd_data["elpd_loo"]), float(elpd_data["se"]),
                     float(elpd_data["p_loo"]), psis, elpd_data, integrated, tuple(notes),
                     k_threshold)


def _substituted(psis: Any, loglik: xr.DataArray, table: pd.DataFrame) -> Any:
    """A copy of ``psis`` with the per-study values of ``table['elpd']``."""
    out = psis.copy()
    values = table["elpd"].to_numpy(dtype=float)
    n = values.size
    flat = loglik.stack(__sample__=SAMPLE_DIMS).transpose(STUDY, "__sample__").values
    lppd = float(np.sum(logsumexp(flat, axis=1) - np.log(flat.shape[1])))
    out["loo_i"] = xr.DataArray(values, dims=(STUDY,), coords={STUDY: table["study"].tolist()},
                                name="loo_i")
    out["elpd_loo"] = float(values.sum())
    out["se"] = float(np.sqrt(n * np.var(values))) if n > 1 else float("nan")
    out["p_loo"] = lppd - float(values.sum())
    out["warning"] = bool((table["high_k"] & (table["method"] != "refit")).any())
    return out


class _NoExactLoo(BayesPoemError):
    """The held-out study cannot be predicted from the refit."""


def exact_study_elpd(fit: FitResult, study: str, *, settings: SamplerSettings | None = None,
                     z_per_draw: int = Z_PER_DRAW, seed: int | None = None
                     ) -> tuple[float, float, tuple[str, ...]]:
    """Exact leave-one-out contribution of ``study`` by refitting without it.

    Returns ``(elpd, loo_pit, problems)``: the log predictive density of the
    study's rows under the refit, integrating its random effect (``u = tau * z``,
    ``z_per_draw`` draws per posterior draw, with a new ``tau_cell * v`` per cell
    with cell effects); the mid-PIT of its total count; and
    the refit's sampler-diagnostic problems (if any).
    """
    from bayes_poem.diagnostics import check_fit

    spec = fit.spec
    given = settings is not None  # else the fit's, adaptively from its target
    settings = dataclasses.replace(settings or fit.settings, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        held_out = spec.without_study(study)
        refit = held_out.fit(settings) if given else held_out.refit(settings)
    problems = check_fit(refit.idata, warn=False).problems
    seed = int(fit.settings.seed if seed is None else seed)
    rng = np.random.default_rng([seed, 4, zlib.crc32(study.encode())])

    arrays = spec.arrays()
    mask = (spec.table.frame["study"] == study).to_numpy() & (arrays["total"] > 0)
    events, total = arrays["events"][mask], arrays["total"][mask]
    subgroups = spec.table.frame.loc[mask, "subgroup"].tolist()
    post = refit.posterior

    def flat(name: str) -> np.ndarray:
        values = post[name].transpose(*SAMPLE_DIMS, ...).values
        return values.reshape(values.shape[0] * values.shape[1], *values.shape[2:])

    mu = flat("mu")
    n_draws = mu.size
    k = int(z_per_draw) if "tau" in post else 1
    eta = np.repeat(mu[:, None, None], k, axis=1) * np.ones((1, 1, len(events)))
    if "alpha" in post:
        known = post["alpha"][SUBGROUP].values.tolist()
        alpha = flat("alpha")
        for j, label in enumerate(subgroups):
            if label in known:
                eta[..., j] += alpha[:, known.index(label)][:, None]
            elif "sigma_subgroup" in post:
                eta[..., j] += flat("sigma_subgroup")[:, None] * rng.standard_normal((n_draws, k))
            else:
                raise _NoExactLoo(f"subgroup '{label}' occurs only in study {study}; its fixed "
                                  "effect is not estimable without it")
    if spec.moderators:  # the held-out rows' own covariates, the refit's coefficients
        effect = moderator_effect(post, spec, spec.design()[mask])
        eta = eta + effect.reshape(n_draws, 1, len(events))
    if "tau" in post and SUBGROUP in post["tau"].dims:  # tau[d_j] * one new w per study
        known = post["tau"][SUBGROUP].values.tolist()
        missing = [label for label in subgroups if label not in known]
        if missing:
            raise _NoExactLoo(f"subgroup '{missing[0]}' occurs only in study {study}; its "
                              "between-study SD tau is not estimable without it")
        tau_rows = flat("tau")[:, [known.index(label) for label in subgroups]]
        eta = eta + tau_rows[:, None, :] * rng.standard_normal((n_draws, k))[..., None]
    elif "tau" in post:
        eta = eta + (flat("tau")[:, None] * rng.standard_normal((n_draws, k)))[..., None]
    if "tau_cell" in post:  # a new effect tau_cell * v for each cell of the held-out study
        _, held_cell = np.unique(arrays["cell_idx"][mask], return_inverse=True)
        v = rng.standard_normal((n_draws, k, int(held_cell.max()) + 1))
        eta = eta + flat("tau_cell")[:, None, None] * v[..., held_cell]
    likelihood = likelihood_of(spec)
    phi = flat("phi") if likelihood == BETA_BINOMIAL else None
    held = RowDraws(base=eta, u=np.zeros_like(eta), tau=np.zeros((n_draws, k)),
                    phi=None if phi is None else np.repeat(phi[:, None], k, axis=1),
                    events=events, total=total, study_idx=np.zeros(len(events), dtype=int),
                    subgroup_idx=np.zeros(len(events), dtype=int), studies=[study],
                    likelihood=likelihood)
    loglik = row_log_likelihood(held).sum(-1)  # (draws, k)
    elpd = float(logsumexp(loglik) - np.log(loglik.size))
    p = expit(eta).reshape(n_draws * k, len(events))
    phi_flat = None if phi is None else np.repeat(phi, k)
    pmf = sum_pmf([row_pmfs(int(total[j]), p[:, j], phi_flat) for j in range(len(events))])
    pit = float(_mid_pit(pmf, int(events.sum())).mean())
    return elpd, pit, tuple(problems)


# ---------------------------------------------------------------------- comparisons
def likelihood_variants(spec: ModelSpec) -> dict[str, ModelSpec]:
    """Model variants compared by :func:`compare_likelihoods`, by display name.

    Binomial-logit-normal (random study effects) and common-effect binomial; when
    ModelSpec has a ``likelihood`` field, also beta-binomial (common study effects).
    """
    options = has_likelihood_option()
    base = spec
    if options and likelihood_of(spec) != "binomial":
        base = spec.with_options(likelihood="binomial", study_effects="random")
    variants = {
        "binomial-logit-normal": base.with_options(study_effects="random"),
        "common-effect binomial": base.with_options(study_effects="common",
                                                    study_heterogeneity="common"),
    }
    if options:
        variants["beta-binomial"] = base.with_options(likelihood=BETA_BINOMIAL,
                                                      study_effects="common",
                                                      study_heterogeneity="common")
    return variants


def _same_model(a: ModelSpec, b: ModelSpec) -> bool:
    return (a.study_effects == b.study_effects and a.subgroup_effects == b.subgroup_effects
            and a.study_heterogeneity == b.study_heterogeneity
            and a.cell_effects == b.cell_effects
            and likelihood_of(a) == likelihood_of(b) and dict(a.priors) == dict(b.priors)
            and a.table is b.table and a.moderators == b.moderators)


@dataclass(frozen=True)
class LikelihoodComparison:
    """``arviz.compare`` table (column ``model`` first) and the per-model LOO results."""

    table: pd.DataFrame
    results: Mapping[str, LooResult]
    fits: Mapping[str, FitResult] = field(repr=False)
    notes: tuple[str, ...] = ()


def compare_likelihoods(fit: FitResult, *, integrate: bool = True, refit: bool = True,
                        settings: SamplerSettings | None = None,
                        loo: LooResult | None = None) -> LikelihoodComparison:
    """Fit the likelihood variants of ``fit.spec`` and compare them by PSIS-LOO.

    The fit itself stands for the variant it matches (with ``loo`` as its LOO
    result when given); the other variants are fitted with ``settings`` (default:
    the fit's).
    """
    given = settings is not None  # else the fit's, adaptively from its target
    settings = dataclasses.replace(settings or fit.settings, progress=False)
    results: dict[str, LooResult] = {}
    fits: dict[str, FitResult] = {}
    notes: list[str] = []
    for name, variant in likelihood_variants(fit.spec).items():
        if _same_model(variant, fit.spec):
            fits[name] = fit
            results[name] = loo if loo is not None else psis_loo(
                fit, integrate=integrate, refit=refit, settings=settings if given else None)
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            fits[name] = variant.fit(settings) if given else variant.refit(settings)
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            notes.append(f"{name}: sampler diagnostics failed ("
                         + "; ".join(fits[name].diagnostics.problems) + ")")
        results[name] = psis_loo(fits[name], integrate=integrate, refit=refit,
                                 settings=settings)
    for name, result in results.items():
        notes += [f"{name}: {note}" for note in result.notes]
    with warnings.catch_warnings():  # arviz's own UserWarnings and pandas deprecations
        warnings.simplefilter("ignore")
        table = az.compare({name: r.elpd_data for name, r in results.items()}, ic="loo")
    return LikelihoodComparison(table.reset_index(names="model"), results, fits, tuple(notes))
