"""An adaptive nutpie fit stops an attempt that is not the last at its first divergence
after warm-up (bayes_poem.sampling._nutpie_counted without a progress bar,
_wait_or_stop with one), and returns exactly the draws it returned before stopping
existed. The bookkeeping without sampling is in
tests/test_adaptive_target.py.

Seeds on the README's SED model (SYNTHETIC data) with 4 chains x (300 tune + 1000 draws),
the sensitivity grid's sampling (benchmarks/sed_grid_24.toml), found by running them:
seed 1 at 0.8 first diverges after warm-up at draw 288 of chain 0 (4 divergences in all);
seed 0 at 0.8 diverges 11 times during warm-up and never after it.
"""

from __future__ import annotations

import numpy as np
import pyarrow
import pytest
import xarray as xr

from bayes_poem import sampling
from bayes_poem.backends.compiled import compiled_model
from bayes_poem.diagnostics import Attempt, attempts
from bayes_poem.sampling import SamplerSettings, Stopped, _nutpie_counted, _nutpie_once

pytestmark = pytest.mark.mcmc

GRID = {"tune": 300, "draws": 1000, "chains": 4}


def _raw(model, seed: int, target: float):
    import nutpie

    return nutpie.sample(model, seed=seed, target_accept=target, progress_bar=False,
                         blocking=False, return_raw_trace=True, **GRID)


def _divergences(trace) -> tuple[int, int]:
    """(during warm-up, after it) of a raw trace."""
    warm = after = 0
    for batch in trace.get_arrow_trace()[1]:
        batch = pyarrow.record_batch(batch)
        tuning = batch.column("tuning").to_numpy(zero_copy_only=False)
        diverging = batch.column("diverging").to_numpy(zero_copy_only=False)
        warm += int(np.count_nonzero(diverging & tuning))
        after += int(np.count_nonzero(diverging & ~tuning))
    return warm, after


def _batches(trace) -> list[pyarrow.RecordBatch]:
    draws, stats = trace.get_arrow_trace()
    return [pyarrow.record_batch(b) for b in (*draws, *stats)]


def test_nutpie_keeps_sampling_through_a_wait_timeout(sed_spec):
    """The nutpie 0.16 behaviour _wait_or_stop relies on (it fails here if nutpie
    changes): wait(timeout=...) raises TimeoutError while the sampler runs on, inspect()
    returns the raw trace so far with the statistics tuning and diverging, and the
    finished trace is bit-for-bit that of a run never waited on with a timeout."""
    model = compiled_model(sed_spec, 1)
    watched = _raw(model, 1, 0.8)
    with pytest.raises(TimeoutError):
        watched.wait(timeout=1e-6)
    so_far = watched.inspect()
    assert {"tuning", "diverging"} <= set(pyarrow.record_batch(
        so_far.get_arrow_trace()[1][0]).column_names)
    trace = watched.wait()
    unwatched = _raw(model, 1, 0.8).wait()
    assert all(a.equals(b) for a, b in zip(_batches(trace), _batches(unwatched), strict=True))


def test_an_attempt_stops_at_its_first_divergence_after_warmup(sed_spec):
    model = compiled_model(sed_spec, 1)
    settings = SamplerSettings(seed=1, **GRID)
    assert _divergences(_raw(model, 1, 0.8).wait())[1] == 4  # what a full run has
    stopped = _nutpie_once(model, settings, 0.8, stop=True)
    assert isinstance(stopped, Stopped)
    assert 1 <= stopped.divergences <= 4
    assert stopped.draws < settings.chains * settings.draws  # stopped before the end


def test_warmup_divergences_do_not_stop_an_attempt(sed_spec):
    model = compiled_model(sed_spec, 0)
    settings = SamplerSettings(seed=0, **GRID)
    assert _divergences(_raw(model, 0, 0.8).wait()) == (11, 0)
    watched = _nutpie_once(model, settings, 0.8, stop=True)
    unwatched = _nutpie_once(model, settings, 0.8)
    for group in ("posterior", "sample_stats"):
        xr.testing.assert_equal(watched[group], unwatched[group])


def test_a_counted_attempt_stops_at_its_first_divergence_after_warmup(sed_spec):
    """Without a progress bar the attempt is watched through nutpie's progress counts
    (no copies of the trace): it stops as the watched one does."""
    model = compiled_model(sed_spec, 1)
    settings = SamplerSettings(seed=1, **GRID)
    stopped = _nutpie_counted(model, settings, 0.8)
    assert isinstance(stopped, Stopped)
    assert 1 <= stopped.divergences <= 4
    assert stopped.draws < settings.chains * settings.draws  # stopped before the end


def test_a_counted_attempt_is_nutpie_samples_own_run(sed_spec):
    """The sampler built for counting is the one nutpie.sample builds: seed 0 at 0.8
    (11 divergences during warm-up, none after, so it is not stopped), and at 0.99
    from an initial step size, give the same draws and statistics, bit for bit, as
    nutpie.sample's runs."""
    model = compiled_model(sed_spec, 0)
    settings = SamplerSettings(seed=0, **GRID)
    for target, step in ((0.8, None), (0.99, 0.3)):  # and a warm start's initial step
        counted = _nutpie_counted(model, settings, target, initial_step=step)
        plain = _nutpie_once(model, settings, target, initial_step=step)
        assert not isinstance(counted, Stopped), (target, step)
        for group in ("posterior", "sample_stats"):
            xr.testing.assert_equal(counted[group], plain[group])


def test_stopping_returns_exactly_the_draws_of_a_fit_run_to_the_end(sed_spec, monkeypatch):
    """Seed 1 diverges at 0.8 and is refitted at 0.95: with stopping or without, the
    same draws and statistics; only the record of the discarded attempt differs."""
    settings = SamplerSettings(seed=1, **GRID)
    stopping = sed_spec.fit(settings)
    monkeypatch.setattr(sampling, "_wait_or_stop", lambda sampler: sampler.wait())
    monkeypatch.setattr(sampling, "_nutpie_counted",
                        lambda model, settings, target, initial_step=None:
                        sampling._nutpie_once(model, settings, target, initial_step))
    to_the_end = sed_spec.fit(settings)
    assert attempts(to_the_end.idata) == [Attempt(0.8, 4), Attempt(0.95, 0)]
    assert attempts(stopping.idata)[1:] == [Attempt(0.95, 0)]
    first = attempts(stopping.idata)[0]
    assert first.target == 0.8 and first.stopped and 1 <= first.divergences <= 4
    assert stopping.settings == to_the_end.settings
    for group in ("posterior", "sample_stats"):
        for name, values in to_the_end.idata[group].data_vars.items():
            np.testing.assert_array_equal(stopping.idata[group][name].values, values.values)
