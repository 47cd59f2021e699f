r"""The result of a joint (efficacy and safety) fit: probabilities and benefit-risk answers.

Per outcome ``o`` and subgroup ``d``, per posterior draw, as the one-outcome
model defines them (:mod:`bayes_poem.results`), with ``eta[o, d] = mu[o] + alpha[o, d]``:

``p_pooled``
    :math:`\operatorname{logit}^{-1}(\eta_{o,d})`, the median study;
``p_mean``
    :math:`\int \operatorname{logit}^{-1}(\eta_{o,d} + \tau_o x)\,\phi(x)\,dx`
    (Gauss-Hermite, ``results.GH_NODES`` nodes), population-averaged;
``p_new``
    :math:`\operatorname{logit}^{-1}(\eta_{o,d} + \tau_o z_o)` for one new study:
    per draw one pair :math:`z_0 = e_0`, :math:`z_1 = \rho e_0 + \sqrt{1-\rho^2}\, e_1`
    (:math:`e_0, e_1 \sim N(0, 1)` seeded by the fit's seed), shared by the subgroups,
    so the new study's two outcomes are correlated as the model says.

``overall`` averages each over subgroups with the outcome's patient mix.

Benefit-risk (:class:`BenefitRisk`, thresholds ``a = benefit_min``,
``b = harm_max``, weights ``w_b``, ``w_h``), per subgroup and quantity, from the
draws of the pair :math:`(p_b, p_h)` (benefit, harm):
:math:`P(p_b \ge a)`, :math:`P(p_h \le b)`, :math:`P(p_b \ge a \text{ and } p_h \le b)`,
and the net benefit :math:`NB = w_b\, p_b - w_h\, p_h`. Joint contrasts of
subgroups ``A`` and ``B``: :math:`P(p_b^A > p_b^B \text{ and } p_h^A < p_h^B)`
("A better on both"), each outcome's probability alone, and :math:`NB^A - NB^B`.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import expit

from bayes_poem.diagnostics import Diagnostics
from bayes_poem.dims import OUTCOME, SAMPLE_DIMS, SUBGROUP
from bayes_poem.errors import SpecError
from bayes_poem.intervals import IntervalSpec, describe
from bayes_poem.results import GH_NODES, OVERALL

if TYPE_CHECKING:
    import arviz as az

    from bayes_poem.joint import JointSpec
    from bayes_poem.sampling import SamplerSettings

QUANTITIES = ("p_pooled", "p_mean", "p_new")


@dataclass(frozen=True)
class BenefitRisk:
    """Thresholds and weights of the benefit-risk summaries (the ``[benefit_risk]`` table).

    Attributes
    ----------
    benefit_min : float
        ``a``: a benefit rate (clinical success) at least this is acceptable (default 0.85).
    harm_max : float
        ``b``: a harm rate (adverse events) at most this is acceptable (default 0.15).
    benefit_weight, harm_weight : float
        ``w_b``, ``w_h`` of the net benefit ``w_b p_b - w_h p_h`` (default 1 and 1:
        one adverse event weighs as much as one clinical success).
    quantity : {"p_pooled", "p_mean", "p_new"}
        The probability of the joint figure and of the joint contrasts (default
        ``p_mean``, the population-averaged rates).
    """

    benefit_min: float = 0.85
    harm_max: float = 0.15
    benefit_weight: float = 1.0
    harm_weight: float = 1.0
    quantity: str = "p_mean"

    def __post_init__(self) -> None:
        for key in ("benefit_min", "harm_max"):
            value = getattr(self, key)
            if not _number(value) or not 0.0 <= value <= 1.0:
                raise SpecError(f"benefit_risk.{key}: must be a probability in [0, 1] "
                                f"(got {value!r})")
        for key in ("benefit_weight", "harm_weight"):
            value = getattr(self, key)
            if not _number(value) or value < 0:
                raise SpecError(f"benefit_risk.{key}: must be a finite number >= 0 "
                                f"(got {value!r})")
        if self.quantity not in QUANTITIES:
            raise SpecError(f"benefit_risk.quantity: {self.quantity!r} is not one of "
                            f"{', '.join(QUANTITIES)}")

    @classmethod
    def from_mapping(cls, raw: Any, source: str = "spec") -> BenefitRisk:
        if not isinstance(raw, Mapping):
            raise SpecError(f"{source}: [benefit_risk] must be a table (got {raw!r})")
        unknown = [k for k in raw if k not in cls.__dataclass_fields__]
        if unknown:
            raise SpecError(f"{source}: unknown key 'benefit_risk.{unknown[0]}'; valid keys in "
                            f"[benefit_risk]: {', '.join(cls.__dataclass_fields__)}")
        try:
            return cls(**raw)
        except SpecError as err:
            raise SpecError(f"{source}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _number(value: Any) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


@dataclass(frozen=True)
class JointResult:
    """A fitted joint model. Methods return new tables; nothing is stored or mutated."""

    spec: JointSpec
    idata: az.InferenceData
    settings: SamplerSettings
    diagnostics: Diagnostics
    interval: IntervalSpec = field(default_factory=IntervalSpec)
    benefit_risk: BenefitRisk = field(default_factory=BenefitRisk)

    @property
    def posterior(self) -> xr.Dataset:
        return self.idata.posterior

    # ------------------------------------------------------------------ draws
    def _eta(self) -> xr.DataArray:
        post = self.posterior
        if "alpha" in post:
            return (post["mu"] + post["alpha"]).transpose(*SAMPLE_DIMS, OUTCOME, SUBGROUP)
        zeros = xr.DataArray(np.zeros(len(self.spec.subgroups)), dims=SUBGROUP,
                             coords={SUBGROUP: self.spec.subgroups})
        return (post["mu"] + zeros).transpose(*SAMPLE_DIMS, OUTCOME, SUBGROUP)

    def probabilities(self) -> xr.Dataset:
        """Draws of ``p_pooled``, ``p_mean``, ``p_new`` (chain, draw, outcome, subgroup),
        the subgroups plus ``overall``."""
        post = self.posterior
        eta = self._eta()
        tau = post["tau"]
        nodes, weights = np.polynomial.hermite_e.hermegauss(GH_NODES)
        node = xr.DataArray(nodes, dims="gh_node")
        weight = xr.DataArray(weights / weights.sum(), dims="gh_node")
        rng = np.random.default_rng([self.settings.seed, 1])
        rho = post["rho"]
        e = rng.standard_normal((2, *rho.shape))
        z = xr.DataArray(np.stack([e[0], rho.values * e[0]
                                   + np.sqrt(1.0 - rho.values**2) * e[1]], axis=-1),
                         dims=(*SAMPLE_DIMS, OUTCOME), coords={OUTCOME: list(self.spec.outcomes)})
        per_subgroup = xr.Dataset({
            "p_pooled": expit(eta),
            "p_mean": (expit(eta + tau * node) * weight).sum("gh_node"),
            "p_new": expit(eta + tau * z),
        })
        frame = self.spec.table.frame
        totals = frame.groupby(["outcome", "subgroup"])["total"].sum()
        raw = np.array([[float(totals.get((o, d), 0.0)) for d in self.spec.subgroups]
                        for o in self.spec.outcomes])
        mix = xr.DataArray(raw / raw.sum(axis=1, keepdims=True), dims=(OUTCOME, SUBGROUP),
                           coords={OUTCOME: list(self.spec.outcomes),
                                   SUBGROUP: self.spec.subgroups})
        overall = (per_subgroup * mix).sum(SUBGROUP).expand_dims({SUBGROUP: [OVERALL]})
        return xr.concat([per_subgroup, overall], dim=SUBGROUP).transpose(
            *SAMPLE_DIMS, OUTCOME, SUBGROUP)

    # ------------------------------------------------------------------ tables
    def outcome_summary(self, interval: IntervalSpec | None = None) -> pd.DataFrame:
        """One row per outcome x subgroup x quantity, with the observed counts."""
        interval = interval or self.interval
        probs = self.probabilities()
        frame = self.spec.table.frame
        observed = frame.groupby(["outcome", "subgroup"]).agg(
            n_studies=("study", "nunique"), events=("events", "sum"), total=("total", "sum"))
        rows = []
        for outcome in self.spec.outcomes:
            mine = frame[frame["outcome"] == outcome]
            for label in probs[SUBGROUP].values.tolist():
                if (outcome, label) in observed.index:
                    obs = observed.loc[(outcome, label)]
                    counts = {k: int(obs[k]) for k in ("n_studies", "events", "total")}
                elif label == OVERALL:
                    counts = {"n_studies": mine["study"].nunique(),
                              "events": int(mine["events"].sum()),
                              "total": int(mine["total"].sum())}
                else:
                    counts = {"n_studies": 0, "events": 0, "total": 0}
                crude = counts["events"] / counts["total"] if counts["total"] else math.nan
                for quantity in QUANTITIES:
                    draws = probs[quantity].sel({OUTCOME: outcome, SUBGROUP: label}).values
                    rows.append({"outcome": outcome, "subgroup": label, "quantity": quantity,
                                 **describe(draws, interval), **counts, "observed": crude})
        return pd.DataFrame(rows)

    def heterogeneity(self, interval: IntervalSpec | None = None) -> pd.DataFrame:
        """``tau`` and ``tau2`` per outcome, ``sigma_subgroup`` per outcome (random
        subgroup effects) and the correlation ``rho`` of the study effects."""
        interval = interval or self.interval
        post = self.posterior
        rows = []
        for outcome in self.spec.outcomes:
            tau = post["tau"].sel({OUTCOME: outcome}).values
            rows.append({"parameter": "tau", "outcome": outcome, **describe(tau, interval)})
            rows.append({"parameter": "tau2", "outcome": outcome,
                         **describe(tau**2, interval)})
            if "sigma_subgroup" in post:
                sig = post["sigma_subgroup"].sel({OUTCOME: outcome}).values
                rows.append({"parameter": "sigma_subgroup", "outcome": outcome,
                             **describe(sig, interval)})
        rows.append({"parameter": "rho", "outcome": "both",
                     **describe(post["rho"].values, interval)})
        return pd.DataFrame(rows)

    def _pair(self, quantity: str) -> tuple[xr.DataArray, xr.DataArray]:
        probs = self.probabilities()[quantity]
        benefit, harm = self.spec.outcomes
        return probs.sel({OUTCOME: benefit}), probs.sel({OUTCOME: harm})

    def net_benefit(self, quantity: str | None = None) -> xr.DataArray:
        """Draws of ``w_b p_b - w_h p_h`` per subgroup (chain, draw, subgroup)."""
        br = self.benefit_risk
        p_b, p_h = self._pair(quantity or br.quantity)
        return br.benefit_weight * p_b - br.harm_weight * p_h

    def benefit_risk_table(self, interval: IntervalSpec | None = None) -> pd.DataFrame:
        """Per subgroup x quantity: P(benefit >= a), P(harm <= b), P(both), net benefit."""
        interval = interval or self.interval
        br = self.benefit_risk
        rows = []
        for quantity in QUANTITIES:
            p_b, p_h = self._pair(quantity)
            good_b, good_h = p_b >= br.benefit_min, p_h <= br.harm_max
            both = (good_b & good_h).mean(SAMPLE_DIMS)
            nb = self.net_benefit(quantity)
            for label in p_b[SUBGROUP].values.tolist():
                stats = describe(nb.sel({SUBGROUP: label}).values, interval)
                rows.append({
                    "subgroup": label, "quantity": quantity,
                    "benefit_min": br.benefit_min, "harm_max": br.harm_max,
                    "p_benefit_ok": float(good_b.sel({SUBGROUP: label}).mean()),
                    "p_harm_ok": float(good_h.sel({SUBGROUP: label}).mean()),
                    "p_both": float(both.sel({SUBGROUP: label})),
                    **{f"net_benefit_{k}": v for k, v in stats.items()},
                })
        return pd.DataFrame(rows)

    def joint_contrasts(self, pairs: Sequence[tuple[str, str]] | None = None,
                        quantity: str | None = None,
                        interval: IntervalSpec | None = None) -> pd.DataFrame:
        """Subgroup A against B on both outcomes at once (every pair by default).

        ``p_better_both`` is P(p_b[A] > p_b[B] and p_h[A] < p_h[B]);
        ``p_worse_both`` the reverse; ``net_benefit_difference_*`` describe
        ``NB[A] - NB[B]``.
        """
        interval = interval or self.interval
        quantity = quantity or self.benefit_risk.quantity
        labels = self.spec.subgroups
        if pairs is None:
            pairs = list(itertools.combinations(labels, 2))
        for a, b in pairs:
            for label in (a, b):
                if label not in labels:
                    raise SpecError(f"joint contrasts: subgroup '{label}' is not in the data; "
                                    f"subgroups: {', '.join(labels)}")
        p_b, p_h = self._pair(quantity)
        nb = self.net_benefit(quantity)
        rows = []
        for a, b in pairs:
            better_b = p_b.sel({SUBGROUP: a}) > p_b.sel({SUBGROUP: b})
            better_h = p_h.sel({SUBGROUP: a}) < p_h.sel({SUBGROUP: b})
            diff = (nb.sel({SUBGROUP: a}) - nb.sel({SUBGROUP: b})).values
            rows.append({
                "a": a, "b": b, "quantity": quantity,
                "p_better_benefit": float(better_b.mean()),
                "p_better_harm": float(better_h.mean()),
                "p_better_both": float((better_b & better_h).mean()),
                "p_worse_both": float((~better_b & ~better_h).mean()),
                **{f"net_benefit_difference_{k}": v
                   for k, v in describe(diff, interval).items()},
            })
        return pd.DataFrame(rows)


def with_options(result: JointResult, *, interval: IntervalSpec | None = None,
                 benefit_risk: BenefitRisk | None = None) -> JointResult:
    """A copy reporting another interval or other benefit-risk thresholds and weights."""
    import dataclasses

    return dataclasses.replace(result, interval=interval or result.interval,
                               benefit_risk=benefit_risk or result.benefit_risk)
