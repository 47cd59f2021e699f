"""Priors as named data: families, parameters, defaults and their rationale.

A prior is a :class:`Prior` (a distribution family name and its parameters).
The model's priors are a mapping from parameter name to ``Prior``; defaults live
in :data:`DEFAULT_PRIORS`, one place, with the reasons in :data:`RATIONALE` and
``docs/priors.md``. Every value is on the logit scale.

Family and hyperparameters are kept apart: changing a hyperparameter (say the
half-normal scale of ``tau``) only changes data passed to the compiled model;
changing a family changes the model's structure.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayes_poem.errors import SpecError
from bayes_poem.prior_families import LOCATION, NORMAL, REGISTRY, SCALE, names

# Family -> ordered parameter names (PyMC's), from the registry of prior_families.
FAMILIES: dict[str, tuple[str, ...]] = {name: f.params for name, f in REGISTRY.items()}
LOCATION_FAMILIES = names(LOCATION)
SCALE_FAMILIES = names(SCALE)

# Parameter -> (allowed families, what it is).
PARAMETERS: dict[str, tuple[tuple[str, ...], str]] = {
    "mu": (LOCATION_FAMILIES, "logit-scale intercept"),
    "tau": (SCALE_FAMILIES, "between-study SD on the logit scale"),
    "sigma_subgroup": (SCALE_FAMILIES, "SD of random subgroup effects (logit scale)"),
    "alpha": ((NORMAL,), "fixed (sum-to-zero) subgroup effects; only sigma is used, mu = 0"),
    "phi": (SCALE_FAMILIES, "overdispersion of the beta-binomial likelihood, 1/sqrt(kappa)"),
    "beta": ((NORMAL,), "moderator coefficients (logit scale, per standardised unit); "
                          "only sigma is used, mu = 0"),
    "tau_cell": (SCALE_FAMILIES, "SD of the study x subgroup cell effects (logit scale)"),
}

# Empirical priors of Turner et al. (2015, Stat Med 34:984-998, Table IV) for the
# between-study variance: log(tau^2) ~ Normal(mu, sigma), "LogNormalTau2" here.
# Values as tabulated in Table IV (and in the bayesmeta R package). They were derived
# for log odds ratios; applied to the tau of logit proportions they are an
# approximation to be used as a sensitivity check, not a default.
TURNER_PRIORS: dict[str, tuple[str, dict[str, float]]] = {
    "turner_surgical_nonpharm": (
        "surgical / device related success / failure; non-pharmacological vs "
        "non-pharmacological", {"mu": -1.69, "sigma": 1.68}),
    "turner_adverse_nonpharm": (
        "adverse events; non-pharmacological vs non-pharmacological",
        {"mu": -1.43, "sigma": 1.45}),
    "turner_surgical_pharm_placebo": (
        "surgical / device related success / failure; pharmacological vs placebo / control",
        {"mu": -2.14, "sigma": 1.74}),
    "turner_adverse_pharm_placebo": (
        "adverse events; pharmacological vs placebo / control", {"mu": -1.87, "sigma": 1.52}),
}


def turner_prior(name: str) -> Prior:
    """A Turner et al. (2015) log-normal prior on tau^2 by preset name."""
    if name not in TURNER_PRIORS:
        raise SpecError(f"unknown Turner prior '{name}'; valid: {', '.join(TURNER_PRIORS)}")
    return Prior("LogNormalTau2", TURNER_PRIORS[name][1])


def turner_description(name: str) -> str:
    """One line for a Turner et al. (2015) preset: its setting and its prior on tau^2."""
    prior = turner_prior(name)
    return (f"Turner et al. 2015: {TURNER_PRIORS[name][0]}; "
            f"log tau^2 ~ Normal({prior.params['mu']:g}, {prior.params['sigma']:g})")


def _numbers(values: Mapping[str, Any], where: str) -> dict[str, float]:
    """Parameter name -> finite float; the one check of prior parameters (both forms)."""
    out = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise SpecError(f"{where}: parameter names must be strings (got {key!r})")
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            raise SpecError(f"{where}: parameter '{key}' must be a number (got {value!r})")
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range
            number = math.inf
        if not math.isfinite(number):
            raise SpecError(f"{where}: parameter '{key}' must be finite (got {value!r})")
        out[key] = number
    return out


@dataclass(frozen=True)
class Prior:
    """A prior distribution: a family name and its parameters.

    Examples
    --------
    >>> Prior("HalfNormal", {"sigma": 0.5})
    Prior(dist='HalfNormal', params={'sigma': 0.5})
    """

    dist: str
    params: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.dist, str):
            raise SpecError(f"Prior: dist must be a family name such as 'HalfNormal' "
                            f"(got {self.dist!r}); families: {', '.join(FAMILIES)}")
        if not isinstance(self.params, Mapping):
            raise SpecError(f"{self.dist} prior: params must be a mapping parameter -> number "
                            f"(got {self.params!r})")
        object.__setattr__(self, "params", _numbers(self.params, f"{self.dist} prior"))

    def describe(self) -> str:
        """One line, e.g. ``HalfNormal(sigma=0.5)`` (the family's format in the registry)."""
        if self.dist in REGISTRY and set(self.params) == set(REGISTRY[self.dist].params):
            return REGISTRY[self.dist].format(self.params)
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        return f"{self.dist}({args})"

    def to_dict(self) -> dict[str, Any]:
        return {"dist": self.dist, **self.params}


def _fmt(value: float) -> str:
    return f"{value:g}"


DEFAULT_PRIORS: dict[str, Prior] = {
    "mu": Prior("Normal", {"mu": 0.0, "sigma": 1.5}),
    "tau": Prior("HalfNormal", {"sigma": 1.0}),
    "sigma_subgroup": Prior("HalfNormal", {"sigma": 1.0}),
    "alpha": Prior("Normal", {"mu": 0.0, "sigma": 1.5}),
    "phi": Prior("HalfNormal", {"sigma": 0.5}),
    "beta": Prior("Normal", {"mu": 0.0, "sigma": 1.0}),
    "tau_cell": Prior("HalfNormal", {"sigma": 0.5}),
}

RATIONALE: dict[str, str] = {
    "mu": (
        "Normal(0, 1.5) on the logit scale: close to flat on the probability scale between "
        "about 0.05 and 0.95, without the U-shaped mass at 0 and 1 that wide normals put on "
        "probabilities."
    ),
    "tau": (
        "HalfNormal(1): between-study SDs of logit proportions above 2 are implausible for "
        "one procedure; half-normal priors of scale 0.5-1 are the weakly informative default "
        "for heterogeneity with few studies (Roever et al. 2021, Res Synth Methods 12:448)."
    ),
    "sigma_subgroup": (
        "HalfNormal(1): with three or four subgroups the data say little about their spread; "
        "scale 1 allows subgroup odds differing by several fold while shrinking noise."
    ),
    "alpha": (
        "Normal(0, 1.5) scale for fixed (unpooled) subgroup effects, coded to sum to zero so "
        "that mu stays the mean subgroup logit and every subgroup has the same prior."
    ),
    "phi": (
        "HalfNormal(0.5) on phi = 1/sqrt(kappa) of the beta-binomial: the intra-study "
        "correlation phi^2/(1+phi^2) is below 0.5 with 95% prior probability, comparable in "
        "reach to tau ~ HalfNormal(1) for rates between 0.1 and 0.9."
    ),
    "beta": (
        "Normal(0, 1) for each moderator coefficient on the logit scale, per SD of a numeric "
        "moderator (they are scaled by default) or per level against the reference level: "
        "2 prior SDs are an odds ratio of e^2 = 7.4 per SD, larger than the effect of era or "
        "study quality on one procedure's success is expected to be, while shrinking "
        "coefficients that a handful of studies cannot estimate."
    ),
    "tau_cell": (
        "HalfNormal(0.5) for the SD of the cell effects (a study's disorders differing from "
        "each other beyond the subgroup means): within one study the centre, operators, "
        "protocol and follow-up are shared, so the disorders of one study should differ "
        "less than studies do; half the scale of tau puts the prior median at 0.34 and 95% "
        "below 0.98 on the logit scale, and keeps tau_cell from absorbing between-study "
        "variation that only a few multi-disorder studies can separate from it."
    ),
}


# Prior variants of the default sensitivity grid (bayes_poem.sensitivity.GridOptions),
# by parameter: label -> prior. Alternatives to the defaults above that a reader would
# ask about: a tighter and a wider half-normal, heavier-tailed scale priors (half-Cauchy,
# half-t with 3 d.f.), an exponential, and a wider normal for mu.
SENSITIVITY_PRIORS: dict[str, dict[str, Prior]] = {
    "tau": {
        "tau HalfNormal(0.5)": Prior("HalfNormal", {"sigma": 0.5}),
        "tau HalfNormal(1)": Prior("HalfNormal", {"sigma": 1.0}),
        "tau HalfNormal(2)": Prior("HalfNormal", {"sigma": 2.0}),
        "tau HalfCauchy(0.5)": Prior("HalfCauchy", {"beta": 0.5}),
        "tau HalfStudentT(3, 1)": Prior("HalfStudentT", {"nu": 3.0, "sigma": 1.0}),
        "tau Exponential(1)": Prior("Exponential", {"lam": 1.0}),
    },
    "mu": {"mu Normal(0, 3)": Prior("Normal", {"mu": 0.0, "sigma": 3.0})},
    "sigma_subgroup": {
        "sigma_subgroup HalfNormal(0.5)": Prior("HalfNormal", {"sigma": 0.5}),
        "sigma_subgroup HalfNormal(2)": Prior("HalfNormal", {"sigma": 2.0}),
    },
}


def validate_prior(name: str, prior: Prior | Mapping[str, Any], where: str = "",
                   allowed: Sequence[str] | None = None) -> Prior:
    """Check one prior and return it as a :class:`Prior`.

    ``prior`` may be a ``Prior`` or a mapping ``{"dist": ..., <params>}`` as in a
    spec file. Unknown parameter names, families or prior names raise
    :class:`SpecError` listing the valid ones. ``allowed`` (the families a
    parameter may take) is looked up in :data:`PARAMETERS` unless given, as the
    trial models do for their own parameters.
    """
    where = where or f"prior '{name}'"
    if allowed is None and name not in PARAMETERS:
        raise SpecError(
            f"{where}: unknown prior name '{name}'; valid names: {', '.join(PARAMETERS)}"
        )
    allowed = tuple(allowed) if allowed is not None else PARAMETERS[name][0]
    if not isinstance(prior, Prior):
        if not isinstance(prior, Mapping):
            raise SpecError(f"{where}: expected a table with 'dist' and its parameters")
        values = dict(prior)
        if "dist" not in values:
            raise SpecError(f"{where}: missing key 'dist'; valid: {', '.join(allowed)}")
        dist = values.pop("dist")
        if not isinstance(dist, str):
            raise SpecError(f"{where}: dist must be a string (got {dist!r}); "
                            f"valid: {', '.join(allowed)}")
        prior = Prior(dist, _numbers(values, where))
    if prior.dist not in allowed:
        raise SpecError(
            f"{where}: dist '{prior.dist}' is not allowed for '{name}'; "
            f"valid: {', '.join(allowed)}"
        )
    expected = FAMILIES[prior.dist]
    unknown = [k for k in prior.params if k not in expected]
    if unknown:
        raise SpecError(
            f"{where}: unknown parameter(s) {', '.join(map(repr, unknown))} for {prior.dist}; "
            f"valid: {', '.join(expected)}"
        )
    family = REGISTRY[prior.dist]
    defaults = family.defaults
    params = {k: prior.params.get(k, defaults.get(k)) for k in expected}
    missing = [k for k, v in params.items() if v is None]
    if missing:
        raise SpecError(f"{where}: {prior.dist} needs parameter(s) {', '.join(missing)}")
    for key, value in params.items():
        if not math.isfinite(value):
            raise SpecError(f"{where}: parameter '{key}' must be finite (got {value!r})")
        if key in family.positive and value <= 0:
            raise SpecError(f"{where}: parameter '{key}' must be > 0 (got {value:g})")
    if name == "alpha" and params.get("mu", 0.0) != 0.0:
        raise SpecError(f"{where}: fixed subgroup effects sum to zero; 'mu' must be 0")
    if name == "beta" and params.get("mu", 0.0) != 0.0:
        raise SpecError(f"{where}: moderator coefficients are centred at no effect; "
                        "'mu' must be 0")
    return Prior(prior.dist, params)


def resolve_priors(overrides: Mapping[str, Prior | Mapping[str, Any]] | None = None,
                   where: str = "priors") -> dict[str, Prior]:
    """Defaults updated with ``overrides``, every entry validated."""
    priors = dict(DEFAULT_PRIORS)
    for name, prior in (overrides or {}).items():
        priors[name] = validate_prior(name, prior, f"{where}.{name}")
    return {name: validate_prior(name, prior) for name, prior in priors.items()}
