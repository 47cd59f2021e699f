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

Stopping a doomed attempt. An attempt that is not the last one the ladder
would make can only be kept if it has no divergence after warm-up, so the
nutpie backend stops it at the first one seen instead of drawing the rest and
discarding them: the draws returned are the same, only the discarded attempt
ends sooner. Its record is the divergences seen by
then (at least 1) and a ``"stopped"`` marker (``[0.8, 1, "stopped"]``). The
last rung's attempt and a fit at an explicit target always run to the end.

How an attempt is watched. Without a progress bar (a grid's variants, a
redirected log, ``--quiet``) the sampler is built as ``nutpie.sample`` builds it
but with nutpie's template progress callback in place of the bar
(:func:`_nutpie_counted`): every :data:`COUNT_RATE_MS` ms it reports each chain's
divergences after warm-up, and the attempt stops at the first. No copy of the
trace is made, so any model is watched. Reaching the callback takes nutpie's
private ``_make_sampler``; ``tests/test_stop_at_divergence.py`` checks that the
draws are ``nutpie.sample``'s, bit for bit. With a progress bar (a terminal),
nutpie's own bar is kept and the attempt is watched through its public
``inspect()`` (a copy of the trace so far; only the statistics ``tuning`` and
``diverging`` are read) between ``wait(timeout=...)`` calls whose timeout grows
by :data:`POLL_GROWTH` from :data:`POLL_FIRST`: a divergence at time ``t`` is seen
by about ``POLL_GROWTH * t``. A copy lives beside the sampler's own trace, so
such watching raises the peak memory by up to one trace: an attempt whose draws
would take more than :data:`WATCH_MAX_BYTES` is then not watched and runs to the
end (a 2,000-study fit's trace is 256 MB: watching it by copies raised the fit's
peak from 978 to 1314 MiB). "After warm-up" is nutpie's ``tuning`` statistic,
false: the same rows that :func:`bayes_poem.nutpie_trace.to_inference_data`
keeps as the draws.

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
# Watching an attempt that stops at its first divergence after warm-up: the first
# wait (seconds) and the factor each later wait grows by (the module docstring).
POLL_FIRST = 0.005
POLL_GROWTH = 1.5
STOPPED = "stopped"  # marker of an attempt stopped early in ATTEMPTS_ATTR's records
# nutpie's progress text read by a watched attempt without a progress bar: per chain,
# its divergences after warm-up and its draws so far (warm-up included); every 2 ms
COUNT_TEMPLATE = ("{% for chain in chains %}{{ chain.divergences }} "
                  "{{ chain.finished_draws }};{% endfor %}")
COUNT_RATE_MS = 2
# Largest trace (chains x (tune + draws) x stored values x 8 bytes) of an attempt that
# is watched for its first divergence (the module docstring): 64 MiB
WATCH_MAX_BYTES = 64 * 2**20
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


@dataclass(frozen=True)
class Stopped:
    """An attempt stopped at its first divergence after warm-up (no draws kept).

    ``divergences``: those seen after warm-up when it was stopped (at least 1);
    ``draws``: the post-warm-up draws of all chains drawn by then.
    """

    divergences: int
    draws: int


def sample_adaptive(sample: Any, settings: SamplerSettings, *,
                    start: float | None = None, stoppable: bool = False) -> az.InferenceData:
    """``sample(target_accept)`` at the given target, or up :data:`TARGET_LADDER`.

    With ``settings.target_accept`` set, one call at it. Unset, one call per rung
    (from ``start`` when given: that target, then the rungs above it)
    until a fit has no divergent transition (or the ladder ends: the last fit is
    returned, and its divergences are reported by the diagnostics). ``sample``
    must use ``settings.seed`` every time, so the returned draws are those of a
    single fit at the target it used. The ``sample_stats`` of the result carry
    ``target_accept`` (that target) and :data:`ATTEMPTS_ATTR`.

    ``stoppable``: ``sample`` is called as ``sample(target, stop=...)``, with
    ``stop=True`` for every attempt but the last the ladder would make (never
    with a set target); such an attempt may return a :class:`Stopped` instead of
    its draws, which could not have been kept (they have a divergence). The PyMC
    backend does not stop attempts (``stoppable=False``: ``sample(target)``).
    """
    if settings.target_accept is not None:
        targets: tuple[float, ...] = (settings.target_accept,)
    elif start is not None:
        targets = (float(start), *(t for t in TARGET_LADDER if t > start))
    else:
        targets = TARGET_LADDER
    attempts: list[list[Any]] = []
    for i, target in enumerate(targets):
        if stoppable:
            idata = sample(target, stop=settings.target_accept is None and i < len(targets) - 1)
        else:
            idata = sample(target)
        if isinstance(idata, Stopped):
            attempts.append([target, idata.divergences, STOPPED])
            continue
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
        lambda target, stop: (_nutpie_counted(model, settings, target, initial_step)
                              if stop and not progress_bar(settings)
                              else _nutpie_once(model, settings, target, initial_step,
                                                stop=stop)),
        settings, start=start, stoppable=True)


def _nutpie_once(model: Any, settings: SamplerSettings, target: float,
                 initial_step: float | None = None, *,
                 stop: bool = False) -> az.InferenceData | Stopped:
    """One nutpie run at ``target``; with ``stop``, a :class:`Stopped` as soon as
    a chain diverges after warm-up (:func:`_wait_or_stop`)."""
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
            watch = stop and watched(model, settings)
            trace = _wait_or_stop(sampler) if watch else sampler.wait()
        except BaseException:
            sampler.cancel()
            raise
        if isinstance(trace, Stopped):
            sampler.cancel()
            return trace
        draw_batches, stat_batches = trace.get_arrow_trace()
        return to_inference_data(draw_batches, stat_batches, model.coords,
                                 skip=skipped_stats(getattr(sampler, "_settings", None)))


def _nutpie_counted(model: Any, settings: SamplerSettings, target: float,
                    initial_step: float | None = None) -> az.InferenceData | Stopped:
    """:func:`_nutpie_once` with ``stop`` and no progress bar: the attempt is watched
    through nutpie's progress counts (:class:`_Counts`), not copies of its trace.

    The sampler is built as ``nutpie.sample`` builds it (the same settings, chains
    in parallel, initial mean and in-memory store: the same draws, checked by
    ``tests/test_stop_at_divergence.py``), with a progress callback in place of
    the progress bar: nutpie's template progress, whose per-chain ``divergences``
    count the divergences after warm-up. Reaching it takes nutpie's
    ``_make_sampler`` (private; nutpie is pinned to 0.16.x and the test fails if
    it changes). No copy of the trace is made, so any model is watched.
    """
    from nutpie import _lib

    from bayes_poem.nutpie_trace import skipped_stats, to_inference_data

    nuts = _lib.PyNutsSettings.Diag(settings.seed)
    nuts.num_tune = settings.tune
    nuts.num_draws = settings.draws
    nuts.num_chains = settings.chains
    nuts.target_accept = target
    if initial_step is not None:
        nuts.initial_step = float(initial_step)
    cores = min(settings.chains, os.cpu_count() or 1)
    counts = _Counts(settings.tune)
    progress = _lib.ProgressType.template_callback(COUNT_RATE_MS, COUNT_TEMPLATE, cores,
                                                   counts.update)
    with signals.watch():
        sampler = model._make_sampler(nuts, np.zeros(model.n_dim), cores, progress,
                                      _lib.PyStorage.arrow())
        try:
            while True:
                try:
                    sampler.wait(COUNT_RATE_MS / 1000)
                    break
                except TimeoutError:  # still running (nutpie 0.16's wait with a timeout)
                    if counts.divergences:
                        sampler.abort()
                        return Stopped(counts.divergences, counts.draws)
        except BaseException:
            sampler.abort()
            raise
        draw_batches, stat_batches = sampler.take_results().get_arrow_trace()
        return to_inference_data(draw_batches, stat_batches, model.coords,
                                 skip=skipped_stats(nuts))


class _Counts:
    """The divergences after warm-up and the draws after warm-up, summed over chains,
    from nutpie's progress text (:data:`COUNT_TEMPLATE`); a text it cannot read
    leaves them as they were (the attempt then runs to the end)."""

    def __init__(self, tune: int) -> None:
        self.tune = tune
        self.divergences = 0
        self.draws = 0

    def update(self, text: str) -> None:
        try:
            chains = [part.split() for part in text.split(";") if part.strip()]
            divergences = sum(int(d) for d, _ in chains)
            draws = sum(max(0, int(f) - self.tune) for _, f in chains)
        except ValueError:
            return
        self.divergences, self.draws = divergences, draws


def watched(model: Any, settings: SamplerSettings) -> bool:
    """Whether a stoppable attempt of ``model`` is watched: its trace (warm-up
    included, as nutpie stores it) within :data:`WATCH_MAX_BYTES`."""
    values = int(getattr(model, "n_expanded", 0) or 0)
    return settings.chains * (settings.tune + settings.draws) * values * 8 <= WATCH_MAX_BYTES


def _wait_or_stop(sampler: Any, first: float = POLL_FIRST) -> Any:
    """The raw trace of a running nutpie sampler (``return_raw_trace=True``), or a
    :class:`Stopped` as soon as a check finds a divergence after warm-up.

    nutpie 0.16's ``wait(timeout=...)`` raises ``TimeoutError`` while the sampler
    runs on, undisturbed (its draws are those of an unwatched run;
    ``tests/test_stop_at_divergence.py`` checks both, so a change in nutpie fails
    there). Between waits, ``inspect()`` copies the trace so far; only its
    statistics ``tuning`` and ``diverging`` are read (:func:`_after_warmup`).
    (``is_finished`` is no cheaper check: in nutpie 0.16 it raises the same
    ``TimeoutError`` while the sampler runs.)
    """
    timeout = first
    while True:
        try:
            return sampler.wait(timeout=timeout)
        except TimeoutError:
            pass
        divergences, draws = _after_warmup(sampler.inspect())
        if divergences:
            return Stopped(divergences, draws)
        timeout *= POLL_GROWTH


def _after_warmup(trace: Any) -> tuple[int, int]:
    """Divergences and draws after warm-up (``tuning`` false) of a raw nutpie trace."""
    import pyarrow

    divergences = draws = 0
    for batch in trace.get_arrow_trace()[1]:
        batch = pyarrow.record_batch(batch)
        if not batch.num_rows:
            continue
        kept = ~batch.column("tuning").to_numpy(zero_copy_only=False)
        diverging = batch.column("diverging").to_numpy(zero_copy_only=False)
        divergences += int(np.count_nonzero(diverging & kept))
        draws += int(np.count_nonzero(kept))
    return divergences, draws


# ---------------------------------------------------------------------- PyMC
def _sample_pymc(spec: ModelSpec, settings: SamplerSettings, *,
                 start: float | None = None) -> az.InferenceData:
    """The PyMC backend's fit: every attempt runs to the end (no stop at the first
    divergence: a reference backend, kept simple; nutpie is the default)."""
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
