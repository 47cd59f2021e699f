r"""The result of a fit: the ``InferenceData`` plus summaries computed on demand.

Derived quantities, per subgroup :math:`d` and posterior draw:

``p_pooled``
    Probability for the median study, :math:`\operatorname{logit}^{-1}(\mu + \alpha_d)`.
``p_mean``
    Population-averaged probability, integrated over the study distribution,
    :math:`\int \operatorname{logit}^{-1}(\mu + \alpha_d + \tau z)\,\phi(z)\,dz`
    (Gauss-Hermite quadrature, :data:`GH_NODES` nodes: error below 1e-8 for
    tau <= 2 and below 1e-4 for tau <= 4).
``p_new``
    Predictive probability for a new study,
    :math:`\operatorname{logit}^{-1}(\mu + \alpha_d + \tau z_{\text{new}})` with one
    :math:`z_{\text{new}} \sim N(0, 1)` per draw, shared by all subgroups (one new
    study treating the patient mix), seeded by the fit's seed. Its intervals are
    prediction intervals; its mean equals ``p_mean``.
``overall``
    Each of the three, averaged over subgroups with weights proportional to the
    patient mix (total patients per subgroup in the data by default; configurable).

Beta-binomial likelihood: study-level probabilities follow
:math:`\mathrm{Beta}(p\kappa, (1-p)\kappa)` with mean :math:`p = \operatorname{logit}^{-1}
(\mu + \alpha_d)`, so ``p_pooled`` and ``p_mean`` are both that mean and ``p_new``
is one draw from the Beta per posterior draw; heterogeneity is reported as ``phi``
and the intra-study correlation ``rho = 1 / (1 + kappa)``.

Moderators (meta-regression): every probability above is at covariate values
``at`` (by default the reference values, where the coded moderators are 0),
:math:`\operatorname{logit}^{-1}(\mu + \alpha_d + x_{\text{at}}^\top\beta + \dots)`;
``study_estimates`` and ``I^2`` use each row's own moderator values, so ``tau`` is
the residual between-study SD. :meth:`FitResult.moderator_summary` reports the
coefficients ``beta`` (logit scale and odds ratios).

Heterogeneity: ``tau``, ``tau2``, ``sigma_subgroup`` and a Bayesian
:math:`I^2 = \tau^2 / (\tau^2 + s^2)`, with the Higgins-Thompson typical
within-study variance :math:`s^2 = (k-1)\sum w_i / ((\sum w_i)^2 - \sum w_i^2)`,
:math:`w_i = n_i p_i (1-p_i)` evaluated per draw at the row's ``p_pooled``
(a model-based within-study variance, so zero cells need no correction).

Disorder-specific heterogeneity (``study_heterogeneity = "by_subgroup"``): every
``tau`` above is the subgroup's own ``tau[d]`` (``p_mean`` integrates over
:math:`N(0, \tau_d^2)`, ``p_new`` uses :math:`\tau_d z_{\text{new}}` with the one
shared :math:`z_{\text{new}}`), and ``heterogeneity`` reports ``tau[d]``,
``tau2[d]`` and ``i2[d]`` (``s^2`` from the rows of subgroup ``d``).

Cell effects (``cell_effects = "random"``, a study's subgroups varying around its
study effect with SD ``tau_cell``): a row of a typical study deviates from
:math:`\mu + \alpha_d` by :math:`\tau z + \tau_{\text{cell}} v`, so ``p_mean``
integrates over :math:`N(0, \tau^2 + \tau_{\text{cell}}^2)` (both terms
integrated: one Gauss-Hermite integral at the total between-row SD
:math:`\sqrt{\tau^2 + \tau_{\text{cell}}^2}`, or :math:`\sqrt{\tau_d^2 +
\tau_{\text{cell}}^2}`), ``p_new`` adds :math:`\tau_{\text{cell}} v_{\text{new}, d}`
with one :math:`v_{\text{new}, d} \sim N(0, 1)` per subgroup (each cell of the
new study its own) to the shared :math:`\tau z_{\text{new}}`, and the between
variance of :math:`I^2` is :math:`\tau^2 + \tau_{\text{cell}}^2`:
:math:`I^2 = (\tau^2 + \tau_{\text{cell}}^2) / (\tau^2 + \tau_{\text{cell}}^2 + s^2)`.
``heterogeneity`` adds ``tau_cell`` and ``tau_cell2``; ``study_estimates`` include
each row's fitted ``u_cell[c_i]``.

The heterogeneity table and I² are computed in :mod:`bayes_poem.results_heterogeneity`,
the meta-regression tables in :mod:`bayes_poem.results_moderators`; the methods of
:class:`FitResult` call them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from bayes_poem.contrasts import Contrast, contrast_table
from bayes_poem.diagnostics import Diagnostics
from bayes_poem.dims import MODERATOR, SAMPLE_DIMS, SUBGROUP
from bayes_poem.errors import SpecError
from bayes_poem.intervals import IntervalSpec, describe, describe_columns
from bayes_poem.model_math import moderator_effect, row_random_effect, tau_cell
from bayes_poem.moderators import code_values
from bayes_poem.weights import check_weights

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bayes_poem.sampling import SamplerSettings
    from bayes_poem.spec import ModelSpec

GH_NODES = 40
OVERALL = "overall"
QUANTITIES = ("p_pooled", "p_mean", "p_new")  # the subgroup probabilities, in table order
POOLED_LABEL = "pooled"


@dataclass(frozen=True)
class FitResult:
    """A fitted model. Methods return new DataFrames; nothing is stored or mutated.

    Attributes
    ----------
    spec : ModelSpec
        What was fitted.
    idata : arviz.InferenceData
        Posterior draws (``mu``, ``tau``, ``w``, ``u``, ``sigma_subgroup``, ``z``,
        ``alpha`` as the structure has them), sample stats, data and provenance.
    settings : SamplerSettings
    diagnostics : Diagnostics
    interval : IntervalSpec
        Default interval for every table (95% ETI unless set).
    weights : mapping, optional
        Subgroup -> weight for the ``overall`` rows; default patient mix.
    at : mapping, optional
        Moderator -> value at which the pooled probabilities (and contrasts)
        are reported; moderators not named stay at their reference values
        (default: all at their reference values).
    labels : mapping, optional
        Code -> display name of subgroups and outcomes (the spec's ``[labels]``),
        used by the figures and the tables' display, never by machine-readable keys.
    """

    spec: ModelSpec
    idata: az.InferenceData
    settings: SamplerSettings
    diagnostics: Diagnostics
    interval: IntervalSpec = field(default_factory=IntervalSpec)
    weights: Mapping[str, float] | None = None
    at: Mapping[str, Any] | None = None
    labels: Mapping[str, str] | None = None

    # ------------------------------------------------------------------ draws
    @property
    def posterior(self) -> xr.Dataset:
        return self.idata.posterior

    def _labels(self) -> list[str]:
        if self.spec.subgroup_effects == "none":
            subs = self.spec.subgroups
            return subs if len(subs) == 1 else [POOLED_LABEL]
        return self.spec.subgroups

    def _linear_predictor(self, at: Mapping[str, Any] | None = None) -> xr.DataArray:
        """mu + alpha_d (+ x_at' beta), with dims (chain, draw, subgroup)."""
        post = self.posterior
        labels = self._labels()
        if "alpha" in post:
            eta = post["mu"] + post["alpha"]
        else:
            zeros = xr.DataArray(np.zeros(len(labels)), dims=SUBGROUP,
                                 coords={SUBGROUP: labels})
            eta = post["mu"] + zeros
        if at and "beta" in post:
            x = code_values(self.spec.moderators, at)
            eta = eta + (post["beta"] * xr.DataArray(x, dims=MODERATOR)).sum(MODERATOR)
        elif at:
            code_values(self.spec.moderators, at)  # names no moderator: SpecError
        return eta

    def _tau(self) -> xr.DataArray:
        """``tau`` (chain, draw), ``tau[subgroup]`` with ``study_heterogeneity =
        "by_subgroup"``, or zeros without random study effects."""
        post = self.posterior
        return post["tau"] if "tau" in post else xr.zeros_like(post["mu"])

    def _tau_cell(self) -> xr.DataArray:
        """``tau_cell`` (chain, draw), zeros without cell effects (``SpecError`` if the
        posterior and the spec disagree about them)."""
        post = self.posterior
        values = tau_cell(post, self.spec)
        return xr.DataArray(values, dims=post["mu"].dims, coords=post["mu"].coords)

    def _between_sd(self) -> xr.DataArray:
        """SD of a typical study's row around ``mu + alpha_d``: ``sqrt(tau^2 + tau_cell^2)``
        (``tau[d]`` with ``study_heterogeneity = "by_subgroup"``)."""
        if self.spec.cell_effects != "random":
            return self._tau()
        return np.sqrt(self._tau() ** 2 + self._tau_cell() ** 2)

    def subgroup_probabilities(self, at: Mapping[str, Any] | None = None,
                               quantities: Sequence[str] = QUANTITIES) -> xr.Dataset:
        """Draws of ``p_pooled``, ``p_mean`` and ``p_new`` per subgroup, plus ``overall``.

        With moderators, at the covariate values ``at`` (moderator -> value;
        default :attr:`at`, else the reference values), e.g.
        ``at={"year": 2016, "quality": "good"}``. ``quantities`` names the
        variables to compute (a subset of :data:`QUANTITIES`, in that order;
        each one's draws are the same whatever the others).

        The draws are computed as numpy arrays ``(chain, draw, subgroup)``, the
        Gauss-Hermite nodes of ``p_mean`` on a last axis (xarray's label
        alignment and copies cost more than the arithmetic at 4,000 draws).
        """
        unknown = [q for q in quantities if q not in QUANTITIES]
        if unknown:
            raise ValueError(f"unknown quantities {unknown}; known: {', '.join(QUANTITIES)}")
        eta_da = self._linear_predictor(self.at if at is None else at).transpose(
            *SAMPLE_DIMS, SUBGROUP)
        labels = eta_da[SUBGROUP].values
        eta = eta_da.values
        post = self.posterior
        rng = np.random.default_rng([self.settings.seed, 1])
        draws: dict[str, np.ndarray] = {}
        if "phi" in post:
            p = expit(eta)
            kappa = (1.0 / post["phi"].transpose(*SAMPLE_DIMS).values ** 2)[..., None]
            draws = {"p_pooled": p, "p_mean": p}
            if "p_new" in quantities:
                draws["p_new"] = rng.beta(p * kappa, (1 - p) * kappa)
        else:
            tau = self._tau()
            # tau[subgroup] (study_heterogeneity = "by_subgroup") in eta's subgroup order
            tau = (tau.sel({SUBGROUP: labels}).transpose(*SAMPLE_DIMS, SUBGROUP).values
                   if SUBGROUP in tau.dims else tau.transpose(*SAMPLE_DIMS).values[..., None])
            tau_c = self._tau_cell().transpose(*SAMPLE_DIMS).values[..., None]
            if "p_pooled" in quantities:
                draws["p_pooled"] = expit(eta)
            if "p_mean" in quantities:
                nodes, weights = np.polynomial.hermite_e.hermegauss(GH_NODES)
                between = (tau if self.spec.cell_effects != "random"
                           else np.sqrt(tau ** 2 + tau_c ** 2))
                draws["p_mean"] = (expit(eta[..., None] + between[..., None] * nodes)
                                   * (weights / weights.sum())).sum(-1)
            if "p_new" in quantities:
                # One new study: one z_new per draw shared by the subgroups, scaled by
                # tau or by each subgroup's tau[d] (study_heterogeneity = "by_subgroup").
                z_new = rng.standard_normal(post["mu"].transpose(*SAMPLE_DIMS).shape)
                new = eta + tau * z_new[..., None]
                if self.spec.cell_effects == "random":  # each cell of the new study its own
                    new = new + tau_c * rng.standard_normal(eta.shape)
                draws["p_new"] = expit(new)
        w = self._subgroup_weights(labels.tolist()).values
        coords = {dim: eta_da[dim].values for dim in SAMPLE_DIMS if dim in eta_da.coords}
        coords[SUBGROUP] = np.concatenate([labels, np.array([OVERALL])])
        return xr.Dataset(
            {q: ((*SAMPLE_DIMS, SUBGROUP),
                 np.concatenate([draws[q], (draws[q] * w).sum(-1)[..., None]], axis=-1))
             for q in QUANTITIES if q in quantities},
            coords=coords)

    def _subgroup_weights(self, labels: list[str]) -> xr.DataArray:
        frame = self.spec.active_frame()
        if self.weights is not None:
            weights = check_weights(self.weights)
            unknown = [k for k in weights if k not in labels]
            if unknown:
                raise SpecError(f"summary.weights: unknown subgroup(s) {', '.join(unknown)}; "
                                f"subgroups: {', '.join(labels)}")
            raw = np.array([weights.get(k, 0.0) for k in labels])
        elif labels == [POOLED_LABEL]:
            raw = np.ones(1)
        else:
            totals = frame.groupby("subgroup")["total"].sum()
            raw = np.array([float(totals.get(k, 0.0)) for k in labels])
        return xr.DataArray(raw / raw.sum(), dims=SUBGROUP, coords={SUBGROUP: labels})

    # ------------------------------------------------------------------ tables
    def subgroup_summary(self, interval: IntervalSpec | None = None,
                         quantities: Sequence[str] = QUANTITIES) -> pd.DataFrame:
        """One row per subgroup x quantity (``p_pooled``, ``p_mean``, ``p_new``, or
        those of ``quantities``: the sensitivity grid reads ``p_pooled`` only)."""
        interval = interval or self.interval
        probs = self.subgroup_probabilities(quantities=quantities)
        values = {q: probs[q].transpose(*SAMPLE_DIMS, SUBGROUP).values for q in probs.data_vars}
        frame = self.spec.active_frame()
        # the observed counts per subgroup (a pandas groupby costs more than the rest)
        subgroup, study = frame["subgroup"].to_numpy(), frame["study"].to_numpy()
        events, total = frame["events"].to_numpy(), frame["total"].to_numpy()
        rows = []
        for j, label in enumerate(probs[SUBGROUP].values.tolist()):
            mine = subgroup == label
            if mine.any():
                counts = {"n_studies": len(set(study[mine])), "events": int(events[mine].sum()),
                          "total": int(total[mine].sum())}
            elif label in self.spec.subgroups:  # no rows left (subset or leave-one-out)
                counts = {"n_studies": 0, "events": 0, "total": 0}
            else:
                counts = {"n_studies": frame["study"].nunique(),
                          "events": int(frame["events"].sum()),
                          "total": int(frame["total"].sum())}
            crude = counts["events"] / counts["total"] if counts["total"] else float("nan")
            for quantity, draws in values.items():
                rows.append({"subgroup": label, "quantity": quantity,
                             **describe(draws[..., j], interval),
                             **counts, "observed": crude})
        return pd.DataFrame(rows)

    def heterogeneity(self, interval: IntervalSpec | None = None, *,
                      derived: bool = True) -> pd.DataFrame:
        """``tau``, ``tau2``, Bayesian ``i2`` and ``sigma_subgroup`` (when modelled);
        ``derived=False``: the model's own scales only (no ``tau2``, ``i2``,
        ``tau_cell2``, ``rho``: the sensitivity grid's rows)."""
        from bayes_poem.results_heterogeneity import heterogeneity_table

        return heterogeneity_table(self, interval or self.interval, derived=derived)

    def i_squared(self) -> np.ndarray:
        """Draws of the Bayesian I-squared analogue (see module docstring).

        Shape (chain, draw); (chain, draw, subgroup) with ``study_heterogeneity =
        "by_subgroup"``: ``tau[d]^2 / (tau[d]^2 + s_d^2)`` with ``s_d^2`` from the
        rows of subgroup ``d`` (docs/model.md). With cell effects the between
        variance is ``tau^2 + tau_cell^2`` (``tau[d]^2 + tau_cell^2``).
        """
        from bayes_poem.results_heterogeneity import i_squared

        return i_squared(self)

    def study_estimates(self, interval: IntervalSpec | None = None) -> pd.DataFrame:
        """Shrunken per-row probabilities next to the observed proportions."""
        interval = interval or self.interval
        arrays = self.spec.arrays()
        eta = self._linear_predictor().transpose(*SAMPLE_DIMS, SUBGROUP).values
        sub_idx = arrays["subgroup_idx"] if eta.shape[-1] > 1 else np.zeros_like(
            arrays["subgroup_idx"])
        linear = eta[..., sub_idx] + moderator_effect(self.posterior, self.spec)
        # u[s_i] (or tau[d_i] w[s_i]) + u_cell[c_i]
        linear = linear + row_random_effect(self.posterior, self.spec)
        p = expit(linear)
        if "phi" in self.posterior:  # conditional posterior mean of each row's Beta rate
            kappa = 1.0 / self.posterior["phi"].values[..., None] ** 2
            p = (p * kappa + arrays["events"]) / (kappa + arrays["total"])
        frame = self.spec.table.frame
        zeroed = set(self.spec.zeroed_rows)
        events = frame["events"].to_numpy(dtype=np.int64)
        total = frame["total"].to_numpy(dtype=np.int64)
        # every row's summaries in one pass (describe_columns: describe's numbers)
        return pd.DataFrame({"study": frame["study"].tolist(),
                             "subgroup": frame["subgroup"].tolist(),
                             "events": events, "total": total, "observed": events / total,
                             "included": [i not in zeroed for i in range(len(frame))],
                             **describe_columns(p, interval)})

    def contrasts(self, contrasts: Sequence[Contrast] | None = None,
                  interval: IntervalSpec | None = None) -> pd.DataFrame:
        """Subgroup contrasts; by default every pair of subgroups (a listed before b)."""
        if self.spec.subgroup_effects == "none":
            if contrasts:
                raise SpecError("contrasts need a model with subgroup effects "
                                "(model.subgroup_effects = 'random' or 'fixed')")
            return contrast_table(self.subgroup_probabilities(), [], interval or self.interval)
        if contrasts is None:
            subs = self.spec.subgroups
            contrasts = [Contrast(a, b) for i, a in enumerate(subs) for b in subs[i + 1:]]
        return contrast_table(self.subgroup_probabilities(), contrasts,
                              interval or self.interval)

    def parameter_summary(self, interval: IntervalSpec | None = None) -> pd.DataFrame:
        """Model parameters on the logit scale with R-hat and ESS."""
        interval = interval or self.interval
        names = [n for n in ("mu", "tau", "sigma_subgroup", "alpha", "beta", "tau_cell")
                 if n in self.posterior]
        post = self.posterior[names]
        rhat, bulk, tail = az.rhat(post), az.ess(post, method="bulk"), az.ess(post, method="tail")
        rows = []
        for name in names:
            var = post[name]
            extra = [d for d in var.dims if d not in SAMPLE_DIMS]
            labels = var[extra[0]].values.tolist() if extra else [None]
            for label in labels:
                where = {extra[0]: label} if extra else {}
                rows.append({"parameter": name if label is None else f"{name}[{label}]",
                             **describe(var.sel(where).values, interval),
                             "r_hat": float(rhat[name].sel(where)),
                             "ess_bulk": float(bulk[name].sel(where)),
                             "ess_tail": float(tail[name].sel(where))})
        return pd.DataFrame(rows)


    def moderator_curve(self, name: str, n: int = 60,
                        interval: IntervalSpec | None = None) -> tuple[pd.DataFrame,
                                                                       pd.DataFrame]:
        """The regression line of a numeric moderator and the observed cells (bubble plot).

        ``curve``: at ``n`` values across the moderator's observed range, the
        posterior median and interval of ``mu + beta' x(value)`` on the logit
        scale: the mean subgroup logit at the median study, every other moderator
        at its reference value. ``points``: per row of the model, the moderator's
        value, the observed logit (0.5 added to both counts of a row with 0 or all
        events), ``total`` and ``subgroup``. ``SpecError`` if ``name`` is not a
        numeric moderator of the model.
        """
        from bayes_poem.results_moderators import moderator_curve

        return moderator_curve(self, name, n, interval or self.interval)

    def moderator_summary(self, interval: IntervalSpec | None = None) -> pd.DataFrame:
        """One row per moderator term: the coefficient ``beta`` and its odds ratios.

        ``beta`` is on the logit scale per coded unit: per ``scale`` units of a
        numeric moderator (its SD by default), or the level against the
        reference level of a categorical one. ``or_unit_*`` is the odds ratio
        per unit of the moderator as recorded in the data (``exp(beta /
        scale)``), ``or_sd_*`` per SD of its values over the model's rows
        (``exp(beta * moderator_sd / scale)``; NaN for categorical terms, whose odds
        ratio against the reference is ``or_unit_*``), ``p_gt_0`` is
        P(beta > 0 | data). Empty without moderators.
        """
        from bayes_poem.results_moderators import moderator_summary

        return moderator_summary(self, interval or self.interval)

    # ------------------------------------------------------------------ views
    def summary(self, contrasts: Sequence[Contrast] | None = None, *, title: str = "",
                explained: pd.DataFrame | None = None) -> str:
        """The text ``bayes-poem run`` prints for this fit (``print(fit.summary())``).

        ``contrasts`` as for :meth:`contrasts`; ``title``: the spec's title line.
        With moderators and random study effects, the share of tau^2 they explain
        is ``explained`` (a :func:`bayes_poem.explained.tau2_explained` table) or,
        if not given, computed as ``run`` does: a refit without the moderators
        (same settings and seed; its failed diagnostics are ``WARNING`` lines).
        """
        import warnings

        from bayes_poem.errors import ConvergenceWarning
        from bayes_poem.explained import is_defined, tau2_explained
        from bayes_poem.report_text import render

        if explained is None and is_defined(self):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # reported in the text
                explained = tau2_explained(self)
        return render(self, self.contrasts(contrasts), title=title, explained=explained)

    def label_of(self, code: str) -> str:
        """The display name of a subgroup or outcome code (the code itself by default)."""
        return (self.labels or {}).get(code, code)

    def plot_forest(self, *, order: str = "data", labels: Mapping[str, str] | None = None,
                    title: str = "") -> Figure:
        """The forest plot (a matplotlib ``Figure``; save it with
        :func:`bayes_poem.figure_style.save` as PNG at 300 dpi, PDF or SVG).

        Its numbers are :func:`bayes_poem.forest_data.forest_table` (``order``:
        ``"data"``, ``"year"``, ``"size"``, ``"estimate"`` or ``"label"``;
        ``labels``: display names, default :attr:`labels`), drawn by
        :func:`bayes_poem.forest_plot.forest_plot`.
        """
        from bayes_poem.forest_data import forest_table
        from bayes_poem.forest_plot import forest_plot

        labels = dict(self.labels or {}) if labels is None else dict(labels)
        table = forest_table(self, order=order, labels=labels)
        outcome = labels.get(self.spec.outcome, self.spec.outcome)
        return forest_plot(table=table, xlabel=f"{outcome} (proportion)",
                           title=title)

    def _repr_html_(self) -> str:
        """A compact HTML view for notebooks (``bayes_poem.result_html``); no refit."""
        from bayes_poem.result_html import fit_html

        return fit_html(self)


def with_summary_options(result: FitResult, *, interval: IntervalSpec | None = None,
                         weights: Mapping[str, float] | None = None,
                         at: Mapping[str, Any] | None = None,
                         labels: Mapping[str, str] | None = None) -> FitResult:
    """A copy of ``result`` reporting another interval, subgroup weighting,
    moderator values ``at`` (checked here: ``SpecError`` naming the moderator) or
    display ``labels``."""
    import dataclasses

    if at is not None:
        code_values(result.spec.moderators, at, "summary.at")
    return dataclasses.replace(result, interval=interval or result.interval,
                               weights=weights if weights is not None else result.weights,
                               at=at if at is not None else result.at,
                               labels=labels if labels is not None else result.labels)
