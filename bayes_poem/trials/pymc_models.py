"""PyMC plumbing of the trial models: priors as data, one compiled model per structure.

A model is built once per *structure* (prior families, likelihood, number of
studies) and kept in a small process-wide cache. Data and prior
hyperparameters are ``pm.Data``: a refit with new data or new prior scales
changes only data (``pm.set_data`` for the PyMC backend, ``with_data`` of the
compiled nutpie model), never the compiled code.

Which models come here: the patient-level regression of
:mod:`bayes_poem.trials.continuous` with either backend (nutpie compiles it once
per structure and process: the first fit costs 15-25 s), and the meta-analysis
models of :mod:`bayes_poem.trials.meta` only with ``backend = "pymc"`` -- with
nutpie those sample compiled kernels (:mod:`bayes_poem.backends`) and never
reach this module's cache.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import arviz as az
import numpy as np

from bayes_poem import prior_families, signals
from bayes_poem._version import __version__
from bayes_poem.priors import Prior, validate_prior
from bayes_poem.sampling import (
    SamplerSettings,
    check_complete,
    progress_bar,
    run_nutpie,
    sample_adaptive,
)

# The prior families a trial parameter may take, by kind (the registry's, LogNormalTau2
# included for scale parameters such as tau).
LOCATION = prior_families.names(prior_families.LOCATION)
SCALE = prior_families.names(prior_families.SCALE)

_CACHE_SIZE = 12


def check_prior(name: str, prior: Prior | Mapping[str, Any], allowed: Sequence[str],
                where: str) -> Prior:
    """Validate a prior of a trial model (the rules of :func:`bayes_poem.priors.validate_prior`)."""
    return validate_prior(name, prior, where, allowed=allowed)


def hyper_names(name: str, prior: Prior) -> dict[str, str]:
    return {key: f"prior_{name}_{key}" for key in prior.params}


def hyper_values(priors: Mapping[str, Prior]) -> dict[str, float]:
    return {f"prior_{name}_{key}": value for name, prior in priors.items()
            for key, value in prior.params.items()}


def prior_rv(pm: Any, name: str, prior: Prior, hyper: Mapping[str, Any], **kwargs: Any) -> Any:
    """The random variable ``name`` with hyperparameters read from ``hyper`` (pm.Data)."""
    params = {key: hyper[data] for key, data in hyper_names(name, prior).items()}
    return prior_families.build(pm, name, prior.dist, params, **kwargs)


def families(priors: Mapping[str, Prior]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, prior.dist) for name, prior in priors.items()))


class ReusableModel:
    """A PyMC model with ``pm.Data`` inputs, sampled repeatedly without recompiling.

    ``sample(data, settings)`` sets every data variable and draws with the
    backend of ``settings``: ``"nutpie"`` compiles once (on first use) and uses
    ``with_data`` afterwards; ``"pymc"`` uses ``pm.set_data`` and ``pm.sample``
    (pytensor caches the compiled code).
    """

    def __init__(self, model: Any, var_names: Sequence[str]) -> None:
        self.model = model
        self.var_names = list(var_names)
        self._nutpie: Any = None
        self.compilations = 0

    def sample(self, data: Mapping[str, np.ndarray | float], settings: SamplerSettings,
               coords: Mapping[str, Sequence[str]] | None = None) -> az.InferenceData:
        values = {k: np.asarray(v, dtype=float) for k, v in data.items()}
        if settings.backend == "nutpie":
            idata = self._sample_nutpie(values, settings)
        else:
            idata = self._sample_pymc(values, settings)
        check_complete(idata, settings)
        posterior = idata.posterior[self.var_names]
        if coords:
            posterior = posterior.assign_coords(
                {dim: list(labels) for dim, labels in coords.items() if dim in posterior.dims})
        return az.InferenceData(posterior=posterior, sample_stats=idata.sample_stats)

    def _sample_nutpie(self, data: Mapping[str, np.ndarray], settings: SamplerSettings):
        import nutpie

        if self._nutpie is None:
            self._nutpie = nutpie.compile_pymc_model(self.model)
            self.compilations += 1
        compiled = self._nutpie.with_data(**data)
        return run_nutpie(compiled, dataclasses.replace(settings, progress=False))

    def _sample_pymc(self, data: Mapping[str, np.ndarray], settings: SamplerSettings):
        import pymc as pm

        logger = logging.getLogger("pymc")
        level = logger.level
        if not settings.progress:  # PyMC's progress lines; problems are in our diagnostics
            logger.setLevel(logging.ERROR)
        try:
            # pm.sample returns the draws so far on Ctrl-C: the watch makes it Interrupted.
            def once(target: float):  # target_accept unset: adapted as every fit's
                with self.model, signals.watch():
                    pm.set_data(dict(data))
                    return pm.sample(draws=settings.draws, tune=settings.tune,
                                     chains=settings.chains, cores=1, random_seed=settings.seed,
                                     target_accept=target,
                                     progressbar=progress_bar(settings),
                                     compute_convergence_checks=False,
                                     return_inferencedata=True)

            return sample_adaptive(once, settings)
        finally:
            logger.setLevel(level)


_MODELS: OrderedDict[Hashable, ReusableModel] = OrderedDict()


def cached_model(key: Hashable, build: Callable[[], ReusableModel]) -> ReusableModel:
    """The model of structure ``key``, built on first use (small LRU cache)."""
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key]
    model = build()
    _MODELS[key] = model
    while len(_MODELS) > _CACHE_SIZE:
        _MODELS.popitem(last=False)
    return model


def provenance(idata: az.InferenceData, **attrs: Any) -> az.InferenceData:
    """Attach version, settings and the given attributes to every group."""
    values = {"bayes_poem_version": __version__}
    for key, value in attrs.items():
        values[key] = value if isinstance(value, str | int | float) else json.dumps(value)
    for group in idata.groups():
        idata[group].attrs.update(values)
    return idata
