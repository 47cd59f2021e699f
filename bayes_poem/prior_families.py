"""The prior families, defined once: a declarative registry.

Everything the package knows about a family of prior distributions is one
:class:`Family` entry of :data:`REGISTRY`: whether it is a location or a scale
(positive) family, its ordered parameter names (PyMC's), which of them must be
positive and which may be omitted, the PyMC builder, the scipy distribution on
the natural scale (log-densities for the rebuilt ``log_prior``), the numpy
sampler (prior predictive checks), the integer code the compiled kernel of
:mod:`bayes_poem.backends.density` dispatches on, and its one-line description.

Adding a family touches this registry and the kernel's branch for its code
(``density._location_logp`` or ``density._scale_logp``), nothing else;
``tests/test_prior_registry.py`` checks that no other module spells a family
name and that builder, scipy density, kernel and sampler agree.

Densities, with the code's symbols (``x`` the value; scale families have
``x > 0``):

- ``Normal(mu, sigma)``: ``N(x | mu, sigma^2)``;
- ``StudentT(nu, mu, sigma)``: Student t, ``nu`` d.f., location ``mu``, scale ``sigma``;
- ``HalfNormal(sigma)``: ``2 N(x | 0, sigma^2)``;
- ``HalfCauchy(beta)``: ``2 / (pi beta (1 + x^2 / beta^2))``;
- ``HalfStudentT(nu, sigma)``: twice the Student t density, ``nu`` d.f., scale ``sigma``;
- ``Exponential(lam)``: ``lam exp(-lam x)``;
- ``LogNormalTau2(mu, sigma)``: ``log x^2 ~ N(mu, sigma^2)``, i.e.
  ``x ~ LogNormal(mu / 2, sigma / 2)`` (Turner et al. 2015 priors on ``tau^2``).

scipy is imported only when a scipy distribution is asked for, so that importing
the package stays light.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LOCATION, SCALE = "location", "scale"

Params = Mapping[str, Any]  # parameter name -> float (or a PyMC tensor in a builder)
Size = int | tuple[int, ...]


@dataclass(frozen=True)
class Family:
    """One prior family.

    Attributes
    ----------
    name : str
        The family name users write (``dist`` of a :class:`~bayes_poem.priors.Prior`).
    kind : str
        ``"location"`` (real line) or ``"scale"`` (positive values; the kernel
        samples their logarithm).
    params : tuple of str
        Ordered parameter names (PyMC's); the order of the kernel's parameter slots.
    positive : frozenset of str
        Parameters that must be ``> 0``.
    defaults : Mapping[str, float]
        Parameters that may be omitted, with their values; the others are required.
    code : int
        The code the compiled kernel dispatches on (``density._location_logp``
        for location families, ``density._scale_logp`` for scale families).
    pymc : callable
        ``(pm, name, params, **kwargs) -> RV``: the PyMC random variable.
    scipy : callable
        ``(params) -> frozen scipy distribution`` on the natural scale.
    sample : callable
        ``(rng, params, size) -> draws``: numpy draws from the prior.
    describe : str
        One-line format of a prior of this family, filled with its parameters
        (each formatted with ``:g``).
    """

    name: str
    kind: str
    params: tuple[str, ...]
    positive: frozenset[str]
    code: int
    pymc: Callable[..., Any]
    scipy: Callable[[Params], Any]
    sample: Callable[[np.random.Generator, Params, Size], np.ndarray]
    describe: str
    defaults: Mapping[str, float] = field(default_factory=dict)

    def logpdf(self, params: Params, x: Any) -> np.ndarray:
        """Log-density at ``x`` on the natural scale (no Jacobian)."""
        return self.scipy(params).logpdf(x)

    def format(self, params: Params) -> str:
        """The one-line description of a prior with these parameters."""
        return self.describe.format(**{k: f"{float(v):g}" for k, v in params.items()})


@functools.cache
def _half_t() -> Any:
    """scipy has no half Student t: ``2 t(x | nu)`` on ``x > 0`` (scale by ``scale=``)."""
    from scipy import stats

    class HalfT(stats.rv_continuous):
        def _logpdf(self, x, nu):
            return math.log(2.0) + stats.t.logpdf(x, nu)

        def _pdf(self, x, nu):
            return 2.0 * stats.t.pdf(x, nu)

        def _cdf(self, x, nu):
            return 2.0 * stats.t.cdf(x, nu) - 1.0

        def _ppf(self, q, nu):
            return stats.t.ppf(0.5 + 0.5 * q, nu)

    return HalfT(a=0.0, name="half_t")


def _stats() -> Any:
    from scipy import stats

    return stats


REGISTRY: dict[str, Family] = {family.name: family for family in (
    Family(
        name="Normal", kind=LOCATION, params=("mu", "sigma"), positive=frozenset({"sigma"}),
        defaults={"mu": 0.0}, code=0,
        pymc=lambda pm, name, p, **kw: pm.Normal(name, mu=p["mu"], sigma=p["sigma"], **kw),
        scipy=lambda p: _stats().norm(p["mu"], p["sigma"]),
        sample=lambda rng, p, size: rng.normal(p["mu"], p["sigma"], size),
        describe="Normal(mu={mu}, sigma={sigma})",
    ),
    Family(
        name="StudentT", kind=LOCATION, params=("nu", "mu", "sigma"),
        positive=frozenset({"nu", "sigma"}), defaults={"mu": 0.0}, code=1,
        pymc=lambda pm, name, p, **kw: pm.StudentT(name, nu=p["nu"], mu=p["mu"],
                                                   sigma=p["sigma"], **kw),
        scipy=lambda p: _stats().t(p["nu"], p["mu"], p["sigma"]),
        sample=lambda rng, p, size: p["mu"] + p["sigma"] * rng.standard_t(p["nu"], size),
        describe="StudentT(nu={nu}, mu={mu}, sigma={sigma})",
    ),
    Family(
        name="HalfNormal", kind=SCALE, params=("sigma",), positive=frozenset({"sigma"}),
        code=0,
        pymc=lambda pm, name, p, **kw: pm.HalfNormal(name, sigma=p["sigma"], **kw),
        scipy=lambda p: _stats().halfnorm(scale=p["sigma"]),
        sample=lambda rng, p, size: np.abs(rng.normal(0.0, p["sigma"], size)),
        describe="HalfNormal(sigma={sigma})",
    ),
    Family(
        name="HalfCauchy", kind=SCALE, params=("beta",), positive=frozenset({"beta"}), code=1,
        pymc=lambda pm, name, p, **kw: pm.HalfCauchy(name, beta=p["beta"], **kw),
        scipy=lambda p: _stats().halfcauchy(scale=p["beta"]),
        sample=lambda rng, p, size: np.abs(p["beta"] * rng.standard_cauchy(size)),
        describe="HalfCauchy(beta={beta})",
    ),
    Family(
        name="HalfStudentT", kind=SCALE, params=("nu", "sigma"),
        positive=frozenset({"nu", "sigma"}), code=2,
        pymc=lambda pm, name, p, **kw: pm.HalfStudentT(name, nu=p["nu"], sigma=p["sigma"],
                                                       **kw),
        scipy=lambda p: _half_t()(p["nu"], scale=p["sigma"]),
        sample=lambda rng, p, size: np.abs(p["sigma"] * rng.standard_t(p["nu"], size)),
        describe="HalfStudentT(nu={nu}, sigma={sigma})",
    ),
    Family(
        name="Exponential", kind=SCALE, params=("lam",), positive=frozenset({"lam"}), code=3,
        pymc=lambda pm, name, p, **kw: pm.Exponential(name, lam=p["lam"], **kw),
        scipy=lambda p: _stats().expon(scale=1.0 / p["lam"]),
        sample=lambda rng, p, size: rng.exponential(1.0 / p["lam"], size),
        describe="Exponential(lam={lam})",
    ),
    Family(
        # log(x^2) ~ N(mu, sigma)  <=>  x ~ LogNormal(mu / 2, sigma / 2)
        name="LogNormalTau2", kind=SCALE, params=("mu", "sigma"), positive=frozenset({"sigma"}),
        code=4,
        pymc=lambda pm, name, p, **kw: pm.LogNormal(name, mu=p["mu"] / 2.0,
                                                    sigma=p["sigma"] / 2.0, **kw),
        scipy=lambda p: _stats().lognorm(s=p["sigma"] / 2.0, scale=np.exp(p["mu"] / 2.0)),
        sample=lambda rng, p, size: rng.lognormal(p["mu"] / 2.0, p["sigma"] / 2.0, size),
        describe="LogNormalTau2(mu={mu}, sigma={sigma})",
    ),
)}

# Family names for code that must name one (a default, a Normal-only prior): one
# spelling each, here. NORMAL is also the family of the fixed subgroup effects and
# moderator coefficients (only its sigma is used, mu = 0).
NORMAL = "Normal"
STUDENT_T = "StudentT"
HALF_NORMAL = "HalfNormal"
HALF_CAUCHY = "HalfCauchy"
HALF_STUDENT_T = "HalfStudentT"
EXPONENTIAL = "Exponential"
LOG_NORMAL_TAU2 = "LogNormalTau2"


def family(dist: str) -> Family:
    """The registry entry of ``dist`` (a ``KeyError`` for an unknown name: validate first)."""
    return REGISTRY[dist]


def names(kind: str) -> tuple[str, ...]:
    """The families of one kind (``"location"`` or ``"scale"``), in registry order."""
    return tuple(name for name, entry in REGISTRY.items() if entry.kind == kind)


def codes(kind: str) -> dict[str, int]:
    """Family name -> kernel code, for the families of one kind."""
    return {name: entry.code for name, entry in REGISTRY.items() if entry.kind == kind}


def build(pm: Any, name: str, dist: str, params: Params, **kwargs: Any) -> Any:
    """The PyMC random variable ``name`` of family ``dist`` (params may be ``pm.Data``)."""
    return REGISTRY[dist].pymc(pm, name, params, **kwargs)
