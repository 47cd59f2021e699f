r"""Efficacy and safety together: the bivariate model's frozen specification and fit.

For study :math:`s`, subgroup :math:`d` and outcome :math:`o \in \{0, 1\}`
(``outcomes[0]`` the benefit, e.g. ``clinical_success``; ``outcomes[1]`` the
harm, e.g. ``adverse_event``):

.. math::

    y \sim \mathrm{Binomial}(n, p), \qquad
    \operatorname{logit} p = \mu_o + \alpha_{o,d} + u_{o,s} \\
    u_{0,s} = \tau_0 w_{0,s}, \quad
    u_{1,s} = \tau_1 (\rho\, w_{0,s} + \sqrt{1 - \rho^2}\, w_{1,s}), \quad
    w_{o,s} \sim N(0, 1) \\
    p(\rho) \propto (1 - \rho^2)^{\eta - 1} \quad (\text{LKJ}(\eta) \text{ on a 2 x 2
    correlation; } \eta = 2 \text{ by default})

so :math:`(u_{0,s}, u_{1,s})` is bivariate normal with SDs ``tau[o]`` and
correlation ``rho``. Subgroup effects per outcome as in the one-outcome model
(:mod:`bayes_poem.spec`): random, ``alpha[o, d] = sigma_subgroup[o] z[o, d]``;
fixed, sum-to-zero on the Helmert basis with scale ``s_alpha[o]``. Priors per
outcome (``mu``, ``tau``, ``sigma_subgroup``, ``alpha``) are the one-outcome
model's names and families (:mod:`bayes_poem.priors`). Study effects are always
random (a correlation needs them); the likelihood is binomial.

:meth:`JointSpec.build` is the PyMC reference model; :meth:`JointSpec.fit`
samples the compiled kernel :mod:`bayes_poem.backends.joint_density` through
:mod:`bayes_poem.backends.nutpie_adapter` (no compilation per fit).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bayes_poem._version import __version__
from bayes_poem.dims import OUTCOME, ROW, STUDY, SUBGROUP, SUBGROUP_CONTRAST
from bayes_poem.errors import DataError, SpecError
from bayes_poem.priors import PARAMETERS, Prior, resolve_priors
from bayes_poem.table import StudyTable

if TYPE_CHECKING:
    import arviz as az
    import pymc as pm

    from bayes_poem.joint_results import JointResult
    from bayes_poem.sampling import SamplerSettings

DEFAULT_OUTCOMES = ("clinical_success", "adverse_event")
JOINT_PRIORS = ("mu", "tau", "sigma_subgroup", "alpha")
"""Priors of the joint model, one set per outcome (names of ``priors.PARAMETERS``)."""
SUBGROUP_OPTIONS = ("random", "fixed", "none")
DEFAULT_RHO_ETA = 2.0
"""LKJ(2) on the 2 x 2 correlation: ``p(rho) = 0.75 (1 - rho^2)``; P(|rho| < 0.81) = 0.95.
Mildly favours small correlations without excluding strong ones; ``eta = 1`` is
uniform on (-1, 1)."""


def rho_prior_description(eta: float, fixed: float | None) -> str:
    """One line for the prior on ``rho``."""
    if fixed is not None:
        return f"fixed at {fixed:g}"
    return f"LKJ(eta={eta:g}): p(rho) proportional to (1 - rho^2)^{eta - 1:g}"


@dataclass(frozen=True)
class JointSpec:
    """The bivariate model of two outcomes, ready to build or fit.

    Create with :meth:`from_table`; ``with_*`` methods return copies.

    Attributes
    ----------
    table : StudyTable
        Rows of the two outcomes, in canonical order (by outcome, then subgroup).
    outcomes : (str, str)
        The benefit outcome (higher is better) and the harm (lower is better).
    subgroup_effects : {"random", "fixed", "none"}
        Per outcome, as in :class:`~bayes_poem.spec.ModelSpec`.
    priors : mapping outcome -> (name -> Prior)
        ``mu``, ``tau``, ``sigma_subgroup``, ``alpha`` for each outcome.
    rho_eta : float
        ``eta`` of the LKJ prior on ``rho`` (> 0; default :data:`DEFAULT_RHO_ETA`).
    rho_fixed : float or None
        Pins ``rho`` at this value in (-1, 1) (``0``: two independent one-outcome
        models sharing nothing); ``None`` samples it.
    """

    table: StudyTable
    outcomes: tuple[str, str] = DEFAULT_OUTCOMES
    subgroup_effects: str = "random"
    priors: Mapping[str, Mapping[str, Prior]] = field(default_factory=dict)
    rho_eta: float = DEFAULT_RHO_ETA
    rho_fixed: float | None = None

    # ------------------------------------------------------------------ creation
    @classmethod
    def from_table(cls, table: StudyTable, outcomes: Sequence[str] = DEFAULT_OUTCOMES, *,
                   subgroup_effects: str | None = None,
                   priors: Mapping[str, Any] | None = None,
                   subgroups: Sequence[str] | None = None,
                   rho_eta: float = DEFAULT_RHO_ETA,
                   rho_fixed: float | None = None) -> JointSpec:
        """Build a joint spec from a validated table holding both outcomes.

        ``priors`` maps a prior name (``mu``, ``tau``, ``sigma_subgroup``,
        ``alpha``) to a :class:`Prior` for both outcomes, or an outcome to such a
        mapping for that outcome alone (the latter wins). Subgroup effects
        default as in the one-outcome model (random for three or more subgroups,
        fixed for two, none for one).
        """
        if not isinstance(table, StudyTable):
            raise SpecError(f"table: expected a StudyTable from load_table or load_dataset "
                            f"(got {type(table).__name__})")
        outcomes = check_outcomes(outcomes, "data.outcomes")
        for outcome in outcomes:
            if outcome not in table.outcomes:
                raise DataError(f"{table.source}: data.outcomes: outcome '{outcome}' is not in "
                                f"the data; outcomes found: {', '.join(table.outcomes)}")
        frame = table.frame
        kept = StudyTable(frame[frame["outcome"].isin(outcomes)].reset_index(drop=True),
                          table.source, table.has_subgroups, table.metadata)
        try:
            kept = kept.with_subgroups(kept.subgroups if subgroups is None else list(subgroups))
        except DataError as err:
            raise SpecError(f"data.subgroups: {err}") from None
        order = {o: i for i, o in enumerate(outcomes)}
        ordered = kept.frame.sort_values("outcome", key=lambda s: s.map(order), kind="stable")
        kept = dataclasses.replace(kept, frame=ordered.reset_index(drop=True))
        n_sub = len(kept.subgroups)
        if subgroup_effects is None:
            subgroup_effects = "random" if n_sub > 2 else "fixed" if n_sub == 2 else "none"
        spec = cls(kept, outcomes, subgroup_effects, resolve_joint_priors(priors, outcomes),
                   rho_eta, rho_fixed)
        spec._check()
        return spec

    def _check(self) -> None:
        if self.subgroup_effects not in SUBGROUP_OPTIONS:
            raise SpecError(f"model.subgroup_effects: {self.subgroup_effects!r} is not one of "
                            f"{', '.join(SUBGROUP_OPTIONS)}")
        if self.subgroup_effects != "none" and len(self.subgroups) < 2:
            raise SpecError(f"model.subgroup_effects = '{self.subgroup_effects}' needs at least "
                            f"2 subgroups; the data have {len(self.subgroups)}; use 'none'")
        if (isinstance(self.rho_eta, bool) or not isinstance(self.rho_eta, numbers.Real)
                or not math.isfinite(self.rho_eta) or self.rho_eta <= 0):
            raise SpecError(f"priors.rho.eta: must be a finite number > 0 (got {self.rho_eta!r})")
        if self.rho_fixed is not None and (
                isinstance(self.rho_fixed, bool) or not isinstance(self.rho_fixed, numbers.Real)
                or not -1.0 < self.rho_fixed < 1.0):
            raise SpecError(f"priors.rho.fixed: must be a number in (-1, 1) "
                            f"(got {self.rho_fixed!r})")

    # ------------------------------------------------------------------ variants
    def with_rho(self, *, eta: float | None = None, fixed: float | None = None) -> JointSpec:
        """A copy with another LKJ ``eta``, or with ``rho`` pinned at ``fixed``."""
        spec = dataclasses.replace(self, rho_eta=self.rho_eta if eta is None else eta,
                                   rho_fixed=fixed)
        spec._check()
        return spec

    def with_priors(self, outcome: str | None = None, **priors: Prior) -> JointSpec:
        """A copy with priors replaced for one outcome (or both when ``outcome`` is None)."""
        new = {o: dict(p) for o, p in self.priors.items()}
        for o in self.outcomes if outcome is None else [outcome]:
            if o not in new:
                raise SpecError(f"priors: unknown outcome '{o}'; outcomes: "
                                f"{', '.join(self.outcomes)}")
            new[o].update(priors)
        return dataclasses.replace(self, priors=resolve_joint_priors(new, self.outcomes))

    def with_table(self, table: StudyTable) -> JointSpec:
        """The same model on other data (same outcomes, priors and options)."""
        return JointSpec.from_table(table, self.outcomes, subgroup_effects=self.subgroup_effects,
                                    priors={o: dict(p) for o, p in self.priors.items()},
                                    rho_eta=self.rho_eta, rho_fixed=self.rho_fixed)

    # ------------------------------------------------------------------ data views
    @property
    def studies(self) -> list[str]:
        return self.table.studies

    @property
    def subgroups(self) -> list[str]:
        return self.table.subgroups

    @property
    def row_labels(self) -> list[str]:
        f = self.table.frame
        return [f"{s} | {d} | {o}" for s, d, o in zip(f["study"], f["subgroup"], f["outcome"],
                                                      strict=True)]

    @property
    def coords(self) -> dict[str, list[str]]:
        coords = {OUTCOME: list(self.outcomes), STUDY: self.studies,
                  SUBGROUP: self.subgroups, ROW: self.row_labels}
        if self.subgroup_effects == "fixed":
            coords[SUBGROUP_CONTRAST] = [f"helmert_{k}" for k in range(1, len(self.subgroups))]
        return coords

    def arrays(self) -> dict[str, np.ndarray]:
        """Counts and index arrays, one entry per row."""
        f = self.table.frame
        pos = {name: {v: i for i, v in enumerate(values)} for name, values in
               (("outcome", self.outcomes), ("study", self.studies),
                ("subgroup", self.subgroups))}
        return {"events": f["events"].to_numpy(dtype=np.int64),
                "total": f["total"].to_numpy(dtype=np.int64),
                **{f"{name}_idx": f[name].map(p).to_numpy(dtype=np.int64)
                   for name, p in pos.items()}}

    def parameter_names(self) -> list[str]:
        """Names of the per-outcome priors this structure uses."""
        extra = {"random": ["sigma_subgroup"], "fixed": ["alpha"], "none": []}
        return ["mu", "tau", *extra[self.subgroup_effects]]

    def describe_priors(self) -> dict[str, str]:
        out = {f"{name}[{o}]": self.priors[o][name].describe()
               for o in self.outcomes for name in self.parameter_names()}
        out["rho"] = rho_prior_description(self.rho_eta, self.rho_fixed)
        return out

    # ------------------------------------------------------------------ backends
    def build(self) -> pm.Model:
        """A fresh PyMC model of this spec: the reference definition of the kernel
        (:func:`bayes_poem.backends.joint_pymc.build_model`)."""
        from bayes_poem.backends.joint_pymc import build_model

        return build_model(self)

    # ------------------------------------------------------------------ fitting
    def fit(self, settings: SamplerSettings | None = None, **kwargs: Any) -> JointResult:
        """Sample the posterior with nutpie (never a partial trace); see :func:`fit`."""
        return fit(self, settings, **kwargs)


def check_outcomes(outcomes: Any, key: str) -> tuple[str, str]:
    """Two different outcome labels (benefit first, harm second), or ``SpecError``."""
    if (isinstance(outcomes, str) or not isinstance(outcomes, Sequence)
            or not all(isinstance(o, str) and o.strip() for o in outcomes)):
        raise SpecError(f"{key}: must be a list of two outcome labels, the benefit then the "
                        f"harm (got {outcomes!r})")
    if len(outcomes) != 2 or outcomes[0] == outcomes[1]:
        raise SpecError(f"{key}: the joint model takes exactly two different outcomes, the "
                        f"benefit then the harm (got {list(outcomes)!r})")
    return (outcomes[0], outcomes[1])


def resolve_joint_priors(priors: Mapping[str, Any] | None,
                         outcomes: Sequence[str], where: str = "priors"
                         ) -> dict[str, dict[str, Prior]]:
    """Per-outcome priors: defaults, then shared entries, then the outcome's own."""
    priors = dict(priors or {})
    shared = {k: v for k, v in priors.items() if k not in outcomes}
    unknown = [k for k in shared if k not in JOINT_PRIORS]
    if unknown:
        raise SpecError(f"{where}: unknown prior name(s) {', '.join(map(repr, unknown))} for "
                        f"the joint model; valid: {', '.join(JOINT_PRIORS)}, rho, or an outcome "
                        f"({', '.join(outcomes)}) holding those")
    out = {}
    for outcome in outcomes:
        own = priors.get(outcome, {})
        if not isinstance(own, Mapping):
            raise SpecError(f"{where}.{outcome}: must be a table of priors (got {own!r})")
        bad = [k for k in own if k not in JOINT_PRIORS]
        if bad:
            raise SpecError(f"{where}.{outcome}: unknown prior name(s) "
                            f"{', '.join(map(repr, bad))}; valid: {', '.join(JOINT_PRIORS)}")
        merged = resolve_priors({**shared, **own}, where=f"{where}.{outcome}")
        out[outcome] = {k: v for k, v in merged.items() if k in JOINT_PRIORS}
    assert set(JOINT_PRIORS) <= set(PARAMETERS)
    return out


# ---------------------------------------------------------------------- fit
def fit(spec: JointSpec, settings: SamplerSettings | None = None, **kwargs: Any) -> JointResult:
    """Sample ``spec`` with nutpie through the adapter; checks as the one-outcome fit.

    The trace is complete and finite (:func:`bayes_poem.sampling.check_complete`)
    or a :class:`~bayes_poem.errors.SamplingError`; diagnostics are those of
    :func:`bayes_poem.diagnostics.check_fit`.
    """
    from bayes_poem.diagnostics import check_fit
    from bayes_poem.joint_results import JointResult
    from bayes_poem.sampling import SamplerSettings, check_complete, run_nutpie

    settings = dataclasses.replace(settings or SamplerSettings(), **kwargs)
    if settings.backend != "nutpie":
        raise SpecError("sampler.backend: the joint model samples with nutpie only "
                        f"(got {settings.backend!r})")
    started = time.perf_counter()
    from bayes_poem.backends.joint_compiled import compiled_model

    idata = run_nutpie(compiled_model(spec, settings.seed), settings)
    check_complete(idata, settings)
    idata = _finish(idata, spec, settings, time.perf_counter() - started)
    checked = idata
    if spec.rho_fixed is not None:  # a constant has no R-hat: diagnose the sampled variables
        import arviz as az

        checked = az.InferenceData(posterior=idata.posterior.drop_vars("rho"),
                                   sample_stats=idata.sample_stats)
    return JointResult(spec=spec, idata=idata, settings=settings,
                       diagnostics=check_fit(checked))


def _finish(idata: az.InferenceData, spec: JointSpec, settings: SamplerSettings,
            seconds: float) -> az.InferenceData:
    """Named coordinates, data groups and provenance attrs (as the one-outcome fit)."""
    import arviz as az
    import xarray as xr

    from bayes_poem.sampling import _json_scalar, environment_attrs

    a = spec.arrays()
    coords = {ROW: spec.row_labels}
    observed = xr.Dataset({"y": ((ROW,), a["events"])}, coords=coords)
    constant = xr.Dataset({name: ((ROW,), a[name]) for name in
                           ("total", "outcome_idx", "study_idx", "subgroup_idx")},
                          coords=coords)
    posterior = idata.posterior.assign_coords(
        {dim: values for dim, values in spec.coords.items() if dim in idata.posterior.dims})
    result = az.InferenceData(posterior=posterior, sample_stats=idata.sample_stats,
                              observed_data=observed, constant_data=constant)
    meta = spec.table.metadata
    attrs = {
        "bayes_poem_version": __version__,
        "model": "joint",
        "outcomes": json.dumps(list(spec.outcomes)),
        "subgroup_effects": spec.subgroup_effects,
        "study_effects": "random",
        "likelihood": "binomial",
        "subgroups": json.dumps(list(spec.subgroups)),
        "studies": json.dumps(list(spec.studies)),
        "priors": json.dumps({o: {k: p.to_dict() for k, p in spec.priors[o].items()}
                              for o in spec.outcomes}),
        "priors_used": json.dumps(spec.describe_priors()),
        "rho_eta": float(spec.rho_eta),
        "rho_fixed": "none" if spec.rho_fixed is None else float(spec.rho_fixed),
        "data_source": spec.table.recorded_source,
        "data_hash": spec.table.data_hash(),
        "synthetic_data": str(spec.table.is_synthetic).lower(),
        "dataset_citation": str(meta.get("citation", "")),
        "data_label": spec.table.label,
        "sampler": json.dumps(settings.to_dict(), default=_json_scalar),
        "sampling_seconds": round(seconds, 3),
        **environment_attrs(),  # the software and platform, as a one-outcome fit's
    }
    for group in result.groups():
        result[group].attrs.update(attrs)
    return result
