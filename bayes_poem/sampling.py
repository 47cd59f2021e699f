"""Sampling a :class:`~bayes_poem.spec.ModelSpec`: nutpie by default, PyMC as an option.

The nutpie backend drives the disk-cached compiled density of
:mod:`bayes_poem.backends.density` (the spec's buffer and nutpie model:
:mod:`bayes_poem.backends.compiled`): a fit costs no compilation at all, whatever
the data, structure or priors (see that module). The PyMC backend samples the
reference ``pm.Model`` (:func:`bayes_poem.backends.pymc_model.build_model`) with
``pm.sample``.

Both return the same variables with the same names and dims, a
``constant_data``/``observed_data`` group, and ``attrs`` recording the priors,
the package version, a hash of the data and the sampler settings.

Adaptive ``target_accept`` (the default, ``target_accept=None``): a fit samples
at nutpie's own default target acceptance rate, the first of :data:`TARGET_LADDER`,
0.8, and only when that fit has divergent transitions is it redone, with the
same seed, at the next rung (0.95, then 0.99), which shrinks the step size
until the divergences are gone or the ladder ends. A divergence is evidence that
the leapfrog integrator cannot follow the posterior's curvature (a funnel in
``tau``), and its draws are biased where they matter; a smaller step size is
the standard remedy. Fitting at 0.99 always (the earlier default) costs about 4x
in gradient evaluations at scale (2,000 studies) for nothing when no
divergence occurs. Each attempt uses the same seed, so the last attempt's draws
are exactly those of a fit with ``target_accept`` set to the target it used:
that target is the fit's resolved setting (``FitResult.settings``, the
``sampler`` attr, the resolved ``spec.toml``), and a rerun takes one fit at it.
The attempts are recorded in the ``sample_stats`` attrs
(``target_accept_attempts``: target and divergences of each) and in
:attr:`bayes_poem.diagnostics.Diagnostics.adaptation` ("refit at target_accept
0.95 after 7 divergences"). An explicit ``target_accept`` is used as given,
with no refit.

The study effects stay non-centred whatever the data (the compiled density of
:mod:`bayes_poem.backends.density` has one parameterisation; a centred variant
would be a second kernel for every structure, likelihood and cell-effect
option, and for the data here, many small studies, the non-centred form is the
one without a funnel).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import arviz as az
import numpy as np
import xarray as xr

from bayes_poem import signals
from bayes_poem._version import __version__, environment
from bayes_poem.diagnostics import ATTEMPTS_ATTR, MIN_DRAWS
from bayes_poem.dims import MODERATOR, ROW
from bayes_poem.errors import SamplingError, SpecError
from bayes_poem.structure import structure_line

if TYPE_CHECKING:
    from bayes_poem.results import FitResult
    from bayes_poem.spec import ModelSpec

Backend = Literal["nutpie", "pymc"]
BACKENDS = ("nutpie", "pymc")
# Allowed range of each integer setting of SamplerSettings (docs/spec-reference.md).
# draws >= 4: ArviZ's split R-hat and ESS need at least 4 draws per chain (and
# E-BFMI fails on a single draw). The upper bounds catch typos such as 1e12
# before anything is allocated (nutpie aborts the process when an allocation
# fails); 10^7 draws per chain is far beyond any useful run. seed: nutpie takes
# an unsigned 64-bit seed, and TOML integers are signed 64-bit, so 2^63 - 1 is
# the largest seed that the resolved spec.toml can write back.
MAX_DRAWS = 10**7
MAX_TUNE = 10**7
MAX_CHAINS = 64
MAX_SEED = 2**63 - 1
# Targets tried in turn by an adaptive fit (target_accept=None): nutpie's default
# first, then smaller step sizes, each only after divergences at the one before.
TARGET_LADDER = (0.8, 0.95, 0.99)
SETTING_RANGES = {"draws": (MIN_DRAWS, MAX_DRAWS), "tune": (0, MAX_TUNE),
                  "chains": (1, MAX_CHAINS), "seed": (0, MAX_SEED)}


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings. Every fit carries a seed; the same seed gives the same draws.

    ``target_accept=None`` (the default) is adaptive: 0.8, raised to 0.95 and then
    0.99 only after a fit with divergent transitions (see the module docstring);
    a number is used as given. A fit's ``settings`` hold the target it used.
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 20261121
    backend: Backend = "nutpie"
    target_accept: float | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        for name, (low, high) in SETTING_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
                raise SpecError(f"sampler.{name}: must be an integer from {low} to {high} "
                                f"(got {value!r})")
            if not low <= value <= high:
                bound = f">= {low}" if value < low else f"<= {high}"
                raise SpecError(f"sampler.{name}: must be an integer {bound} (got {int(value)})")
            object.__setattr__(self, name, int(value))
        if not isinstance(self.backend, str) or self.backend not in BACKENDS:
            raise SpecError(
                f"sampler.backend: {self.backend!r} is not one of {', '.join(BACKENDS)}"
            )
        if self.target_accept is None:  # adaptive
            return
        if (isinstance(self.target_accept, bool | np.bool_)
                or not isinstance(self.target_accept, int | float | np.floating)
                or not 0.5 <= float(self.target_accept) < 1.0):
            raise SpecError(f"sampler.target_accept: must be in [0.5, 1) "
                            f"(got {self.target_accept!r})")
        object.__setattr__(self, "target_accept", float(self.target_accept))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def fit(spec: ModelSpec, settings: SamplerSettings | None = None, *,
        initial_step: float | None = None, adapt_from: float | None = None,
        **kwargs: Any) -> FitResult:
    """Sample the posterior of ``spec``.

    Parameters
    ----------
    spec : ModelSpec
    settings : SamplerSettings, optional
        Defaults to ``SamplerSettings()``; keyword arguments override fields,
        e.g. ``fit(spec, draws=500, seed=1)``.
    initial_step : float, optional
        nutpie's initial step size (its adaptation starts there); the
        sensitivity grid's warm start (:mod:`bayes_poem.sensitivity_run`).
    adapt_from : float, optional
        Sample adaptively (:func:`sample_adaptive`) starting at this target
        instead of ``settings.target_accept``: how :func:`refit` fits another
        model of an analysis.

    Returns
    -------
    FitResult
        Holds the ``InferenceData`` and computes summaries on demand.
    """
    from bayes_poem.backends.compiled import compiled_model
    from bayes_poem.diagnostics import check_fit
    from bayes_poem.results import FitResult

    settings = dataclasses.replace(settings or SamplerSettings(), **kwargs)
    if adapt_from is not None:
        settings = dataclasses.replace(settings, target_accept=None)
    check_memory(spec, settings)
    started = time.perf_counter()
    if settings.backend == "nutpie":
        idata = run_nutpie(compiled_model(spec, settings.seed), settings,
                           initial_step=initial_step, start=adapt_from)
    else:
        idata = _sample_pymc(spec, settings, start=adapt_from)
    settings = resolved_settings(settings, idata)
    check_complete(idata, settings)
    idata = _finish(idata, spec, settings, time.perf_counter() - started)
    return FitResult(spec=spec, idata=idata, settings=settings, diagnostics=check_fit(idata))


def progress_bar(settings: SamplerSettings) -> bool:
    """Whether the sampler draws its progress bar: asked for, and stderr a terminal.

    A bar redraws its line with carriage returns; in a redirected log (a file,
    a pipe, ``run.log``) those would be noise, so there is none.
    """
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(settings.progress and isatty is not None and isatty())


# ---------------------------------------------------------------- adaptation
def refit(spec: ModelSpec, settings: SamplerSettings) -> FitResult:
    """Fit another model of an analysis (the unpooled contrasts, R^2 without moderators,
    cumulative and precision refits, exact LOO refits) with the main fit's ``settings``
    (its resolved target): adaptively from that target up :data:`TARGET_LADDER`, so a
    refit that diverges is refitted higher, never returned with divergences the main
    fit did not need. Exact on rerun: the main fit's resolved spec records its target,
    and the refit starts there again.
    """
    return spec.fit(settings, adapt_from=settings.target_accept or TARGET_LADDER[0])


def sample_adaptive(sample: Any, settings: SamplerSettings, *,
                    start: float | None = None) -> az.InferenceData:
    """``sample(target_accept)`` at the given target, or up :data:`TARGET_LADDER`.

    With ``settings.target_accept`` set, one call at it. Unset, one call per rung
    (from ``start`` when given: that target, then the rungs above it)
    until a fit has no divergent transition (or the ladder ends: the last fit is
    returned, and its divergences are reported by the diagnostics). ``sample``
    must use ``settings.seed`` every time, so the returned draws are those of a
    single fit at the target it used. The ``sample_stats`` of the result carry
    ``target_accept`` (that target) and :data:`ATTEMPTS_ATTR`.
    """
    if settings.target_accept is not None:
        targets: tuple[float, ...] = (settings.target_accept,)
    elif start is not None:
        targets = (float(start), *(t for t in TARGET_LADDER if t > start))
    else:
        targets = TARGET_LADDER
    attempts = []
    for target in targets:
        idata = sample(target)
        attempts.append([target, _divergences(idata)])
        if attempts[-1][1] == 0:
            break
    stats = getattr(idata, "sample_stats", None)
    if stats is not None:
        stats.attrs["target_accept"] = float(attempts[-1][0])
        stats.attrs[ATTEMPTS_ATTR] = json.dumps(attempts)
    return idata


def _divergences(idata: az.InferenceData) -> int:
    stats = getattr(idata, "sample_stats", None)
    if stats is None or "diverging" not in stats:
        return 0  # no statistics: check_complete refuses the trace, no refit helps
    return int(stats["diverging"].values.sum())


def resolved_settings(settings: SamplerSettings, idata: az.InferenceData) -> SamplerSettings:
    """``settings`` with the target the fit used (:func:`sample_adaptive`'s attr)."""
    stats = getattr(idata, "sample_stats", None)
    target = None if stats is None else stats.attrs.get("target_accept")
    if target is None:
        return settings
    return dataclasses.replace(settings, target_accept=float(target))


# ---------------------------------------------------------------------- nutpie
def run_nutpie(model: Any, settings: SamplerSettings, *,
               initial_step: float | None = None,
               start: float | None = None) -> az.InferenceData:
    """Sample a compiled nutpie model; an interrupt or error never returns draws.

    The target acceptance rate is ``settings.target_accept`` or, unset, adapted
    (:func:`sample_adaptive`). nutpie's blocking ``sample`` answers Ctrl-C by
    returning the trace drawn so far. Here the sampler runs in the background
    and is waited for; on any exception (an interrupt included) it is
    cancelled, its draws discarded and the exception raised (an
    :class:`~bayes_poem.errors.Interrupted` for a signal).
    """
    return sample_adaptive(
        lambda target: _nutpie_once(model, settings, target, initial_step), settings,
        start=start)


def _nutpie_once(model: Any, settings: SamplerSettings, target: float,
                 initial_step: float | None = None) -> az.InferenceData:
    import nutpie

    from bayes_poem.nutpie_trace import skipped_stats, to_inference_data

    with signals.watch():
        sampler = nutpie.sample(
            model,
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            seed=settings.seed,
            target_accept=target,
            save_warmup=False,
            progress_bar=progress_bar(settings),
            blocking=False,
            return_raw_trace=True,  # nutpie_trace converts it: ~10x faster, no warm-up groups
            **({} if initial_step is None else {"initial_step": float(initial_step)}),
        )
        try:
            trace = sampler.wait()
        except BaseException:
            sampler.cancel()
            raise
        draw_batches, stat_batches = trace.get_arrow_trace()
        return to_inference_data(draw_batches, stat_batches, model.coords,
                                 skip=skipped_stats(getattr(sampler, "_settings", None)))


# ---------------------------------------------------------------------- PyMC
def _sample_pymc(spec: ModelSpec, settings: SamplerSettings, *,
                 start: float | None = None) -> az.InferenceData:
    import pymc as pm

    from bayes_poem.backends.compiled import expanded_layout
    from bayes_poem.backends.pymc_model import build_model

    model = build_model(spec)
    keep = [name for name, _, _ in expanded_layout(spec)]

    def once(target: float) -> az.InferenceData:
        # pm.sample returns the draws so far on Ctrl-C: the watch turns that into Interrupted.
        with model, signals.watch():
            idata = pm.sample(
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                random_seed=settings.seed,
                target_accept=target,
                progressbar=progress_bar(settings),
                compute_convergence_checks=False,
                return_inferencedata=True,
            )
        return az.InferenceData(posterior=idata.posterior[keep],
                                sample_stats=idata.sample_stats)

    return sample_adaptive(once, settings, start=start)


# ---------------------------------------------------------------------- common
STATS_PER_DRAW = 12  # sampler statistics nutpie and PyMC keep per draw (generous)


def check_memory(spec: ModelSpec, settings: SamplerSettings) -> None:
    """Refuse, before sampling, draws whose trace cannot fit in half the memory.

    The trace holds ``chains x draws x (values + statistics)`` float64 numbers;
    a request beyond half the physical memory would abort in the sampler's
    allocator (or swap for hours) instead of failing with a message.
    """
    from bayes_poem.backends.compiled import expanded_layout

    n_values = sum(int(np.prod(shape)) for _, shape, _ in expanded_layout(spec))
    needed = settings.chains * settings.draws * (n_values + STATS_PER_DRAW) * 8
    try:
        available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return
    if needed > available / 2:
        raise SpecError(
            f"sampler: {settings.chains} chains x {settings.draws} draws of {n_values} values "
            f"need about {needed / 2**30:.1f} GiB for the trace, more than half of this "
            f"machine's {available / 2**30:.1f} GiB; lower sampler.draws or sampler.chains")


def check_complete(idata: az.InferenceData, settings: SamplerSettings) -> None:
    """Refuse a trace that is not every chain's every draw, all finite.

    A sampler that stopped early (interrupted, or a chain that failed) or drew
    non-finite values has produced no posterior: :class:`SamplingError`.
    """
    posterior = getattr(idata, "posterior", None)
    if posterior is None or not posterior.data_vars:
        raise SamplingError("the sampler returned no posterior draws")
    expected = {"chain": settings.chains, "draw": settings.draws}
    got = {dim: int(posterior.sizes.get(dim, 0)) for dim in expected}
    if got != expected:
        raise SamplingError(
            f"the sampler returned {got['chain']} chain(s) x {got['draw']} draws, not the "
            f"{settings.chains} x {settings.draws} asked for (stopped early); no results")
    for name, values in posterior.data_vars.items():
        if not np.isfinite(values.values).all():
            raise SamplingError(f"non-finite posterior draws of '{name}'; no results")
    stats = getattr(idata, "sample_stats", None)
    if stats is None or "diverging" not in stats:
        raise SamplingError("the sampler returned no sampler statistics; no results")


def _finish(idata: az.InferenceData, spec: ModelSpec, settings: SamplerSettings,
            seconds: float) -> az.InferenceData:
    """Attach data groups, true coordinates and provenance attrs.

    The attrs record everything that defines the fitted model (outcome,
    structure, likelihood, priors, subgroups and studies in order, zeroed rows,
    moderators with their coding, data hash, sampler settings): ``bayes-poem
    report`` compares each with the results directory's ``spec.toml``
    (:func:`bayes_poem.report.load_fit`). They also record the data's label
    (``data_label``) and the software that drew the posterior:
    ``python_version``, ``numpy_version``, ``scipy_version``, ``pandas_version``,
    ``arviz_version``, ``pymc_version``, ``pytensor_version``,
    ``nutpie_version``, ``numba_version`` and ``platform``
    (:func:`bayes_poem._version.environment`). With moderators, ``constant_data``
    holds the design matrix ``design`` (row x moderator).
    """
    arrays = spec.arrays()
    coords = {ROW: spec.row_labels}
    observed = xr.Dataset({"y": ((ROW,), arrays["events"])}, coords=coords)
    constant = xr.Dataset(
        {name: ((ROW,), arrays[name]) for name in ("total", "study_idx", "subgroup_idx")},
        coords=coords,
    )
    if spec.moderators:
        constant["design"] = xr.DataArray(spec.design(), dims=(ROW, MODERATOR),
                                          coords={MODERATOR: spec.moderator_terms})
    posterior = idata.posterior.assign_coords(
        {dim: values for dim, values in spec.coords.items() if dim in idata.posterior.dims}
    )
    groups = {"posterior": posterior, "sample_stats": idata.sample_stats,
              "observed_data": observed, "constant_data": constant}
    result = az.InferenceData(**groups)
    meta = spec.table.metadata
    attrs = {
        "bayes_poem_version": __version__,
        "outcome": spec.outcome,
        "subgroup_effects": spec.subgroup_effects,
        "structure": structure_line(spec),  # with the reason it was chosen
        "study_effects": spec.study_effects,
        "likelihood": spec.likelihood,
        "study_heterogeneity": spec.study_heterogeneity,
        "cell_effects": spec.cell_effects,
        "subgroups": json.dumps(list(spec.subgroups)),
        "studies": json.dumps(list(spec.studies)),
        "zeroed_rows": json.dumps([int(i) for i in spec.zeroed_rows]),
        "moderators": json.dumps([m.to_dict() for m in spec.moderators]),
        "priors": json.dumps({k: p.to_dict() for k, p in spec.priors.items()}),
        "priors_used": json.dumps(spec.describe_priors()),
        "data_source": spec.table.recorded_source,
        "data_hash": spec.table.data_hash(),
        "synthetic_data": str(spec.table.is_synthetic).lower(),
        "dataset_citation": str(meta.get("citation", "")),
        "data_label": spec.table.label,
        "sampler": json.dumps(settings.to_dict(), default=_json_scalar),
        "sampling_seconds": round(seconds, 3),
        **environment_attrs(),
    }
    for group in result.groups():
        result[group].attrs.update(attrs)
    return result


def environment_attrs() -> dict[str, str]:
    """The software and platform as posterior attrs (one-outcome and joint fits):
    ``python_version``, ``numpy_version``, ..., ``platform``."""
    return dict(_environment_attrs())


@functools.cache
def _environment_attrs() -> tuple[tuple[str, str], ...]:
    # Read once per process: the installed metadata of 8 packages cost 20 ms a fit,
    # and the modules a process has imported do not change with a later install.
    return tuple(((key if key == "platform" else f"{key}_version"), value)
                 for key, value in environment().items() if key != "bayes_poem")


def _json_scalar(value: Any) -> Any:
    """numpy scalars (e.g. a seed given as ``np.int64``) as plain Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {value!r}")
