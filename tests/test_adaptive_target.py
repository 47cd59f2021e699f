"""Adaptive target_accept (bayes_poem.sampling.sample_adaptive): 0.8, then 0.95 and 0.99
only after divergences; an explicit target used as given; the target used recorded so a
rerun at it gives the same draws; an attempt that is not the last stopped at its first
divergence and recorded so (tests/test_stop_at_divergence.py samples it)."""

from __future__ import annotations

import dataclasses
import json
import tomllib

import arviz as az
import numpy as np
import pytest
import xarray as xr

from bayes_poem.diagnostics import (
    ATTEMPTS_ATTR,
    Attempt,
    adaptation_notes,
    attempts,
    check_fit,
)
from bayes_poem.errors import ConvergenceWarning
from bayes_poem.sampling import (
    TARGET_LADDER,
    SamplerSettings,
    Stopped,
    resolved_settings,
    sample_adaptive,
)


def fake_idata(divergences: int, seed: int = 0) -> az.InferenceData:
    """4 chains x 100 well-mixed draws of one variable and ``divergences`` divergent ones."""
    rng = np.random.default_rng(seed)
    diverging = np.zeros((4, 100), dtype=bool)
    diverging.flat[:divergences] = True
    dims = ("chain", "draw")
    return az.InferenceData(
        posterior=xr.Dataset({"mu": (dims, rng.normal(size=(4, 100)))}),
        sample_stats=xr.Dataset({"diverging": (dims, diverging),
                                 "energy": (dims, rng.normal(size=(4, 100)))}))


class FakeSampler:
    """Divergences by target; records the targets it was asked for."""

    def __init__(self, divergences: dict[float, int]):
        self.divergences = divergences
        self.calls: list[float] = []

    def __call__(self, target: float) -> az.InferenceData:
        self.calls.append(target)
        return fake_idata(self.divergences[target])


def test_default_is_adaptive():
    assert SamplerSettings().target_accept is None
    assert TARGET_LADDER == (0.8, 0.95, 0.99)


def test_no_divergence_keeps_the_first_fit():
    sampler = FakeSampler({0.8: 0, 0.95: 0, 0.99: 0})
    idata = sample_adaptive(sampler, SamplerSettings())
    assert sampler.calls == [0.8]
    assert attempts(idata) == [Attempt(0.8, 0)]
    assert adaptation_notes(idata) == ()
    assert resolved_settings(SamplerSettings(), idata).target_accept == 0.8


def test_divergences_escalate_until_clean():
    sampler = FakeSampler({0.8: 7, 0.95: 0, 0.99: 0})
    idata = sample_adaptive(sampler, SamplerSettings())
    assert sampler.calls == [0.8, 0.95]
    assert idata.sample_stats.attrs["target_accept"] == 0.95
    assert json.loads(idata.sample_stats.attrs[ATTEMPTS_ATTR]) == [[0.8, 7], [0.95, 0]]
    assert adaptation_notes(idata) == ("refit at target_accept 0.95 after 7 divergences at 0.8",)
    settings = resolved_settings(SamplerSettings(seed=5), idata)
    assert (settings.target_accept, settings.seed) == (0.95, 5)


def test_ladder_ends_at_its_last_target_with_the_divergences_reported():
    sampler = FakeSampler({0.8: 9, 0.95: 3, 0.99: 1})
    idata = sample_adaptive(sampler, SamplerSettings())
    assert sampler.calls == [0.8, 0.95, 0.99]
    assert adaptation_notes(idata) == (
        "refit at target_accept 0.95 after 9 divergences at 0.8",
        "refit at target_accept 0.99 after 3 divergences at 0.95")
    with pytest.warns(ConvergenceWarning, match="1 divergent transition"):
        diagnostics = check_fit(idata)
    assert diagnostics.divergences == 1
    assert diagnostics.adaptation == adaptation_notes(idata)
    assert diagnostics.summary_line().endswith(
        "; refit at target_accept 0.95 after 9 divergences at 0.8"
        "; refit at target_accept 0.99 after 3 divergences at 0.95")


@pytest.mark.parametrize("target", [0.8, 0.9, 0.99])
def test_an_explicit_target_is_used_as_given(target):
    sampler = FakeSampler({target: 5})
    idata = sample_adaptive(sampler, SamplerSettings(target_accept=target))
    assert sampler.calls == [target]
    assert attempts(idata) == [Attempt(target, 5)]
    assert adaptation_notes(idata) == ()


@pytest.mark.parametrize("start, divergent, calls", [
    (0.8, {}, [0.8]),
    (0.8, {0.8: 2}, [0.8, 0.95]),
    (0.95, {0.95: 3}, [0.95, 0.99]),
    (0.9, {0.9: 1}, [0.9, 0.95]),  # a target between rungs, then the rungs above it
    (0.99, {0.99: 4}, [0.99]),
])
def test_a_refit_adapts_from_the_main_fits_target(start, divergent, calls):
    """sampling.refit: another model of the analysis starts at the main fit's target and
    escalates only after divergences (so its draws are the same on a rerun of the
    resolved spec, which records that target)."""
    sampler = FakeSampler({0.8: 0, 0.9: 0, 0.95: 0, 0.99: 0, **divergent})
    sample_adaptive(sampler, SamplerSettings(), start=start)
    assert sampler.calls == calls


def test_a_fit_without_a_record_has_no_notes():
    idata = fake_idata(0)
    assert attempts(idata) == [] and adaptation_notes(idata) == ()
    assert resolved_settings(SamplerSettings(), idata).target_accept is None
    assert check_fit(idata).adaptation == ()


def test_resolved_spec_writes_the_target_used_only_when_known():
    from bayes_poem.specfile import parse_spec

    raw = {"data": {"dataset": "sed_synthetic", "outcome": "clinical_success"}}
    analysis = parse_spec(raw)
    assert "target_accept" not in tomllib.loads(analysis.resolved_toml())["sampler"]
    used = dataclasses.replace(analysis, sampler=SamplerSettings(target_accept=0.95))
    again = parse_spec(tomllib.loads(used.resolved_toml()))
    assert again.sampler.target_accept == 0.95


class StoppableSampler(FakeSampler):
    """A nutpie-like ``sample(target, stop=...)``: with ``stop``, a divergent attempt
    returns :class:`Stopped` (its first divergence seen after 120 draws)."""

    def __init__(self, divergences: dict[float, int]):
        super().__init__(divergences)
        self.stops: list[bool] = []

    def __call__(self, target: float, *, stop: bool) -> az.InferenceData | Stopped:
        self.stops.append(stop)
        if stop and self.divergences[target]:
            self.calls.append(target)
            return Stopped(divergences=1, draws=120)
        return super().__call__(target)


@pytest.mark.parametrize("settings, start, divergent, calls, stops", [
    (SamplerSettings(), None, {}, [0.8], [True]),
    (SamplerSettings(), None, {0.8: 7}, [0.8, 0.95], [True, True]),
    (SamplerSettings(), None, {0.8: 9, 0.95: 3, 0.99: 1}, [0.8, 0.95, 0.99],
     [True, True, False]),
    (SamplerSettings(), 0.95, {0.95: 3, 0.99: 2}, [0.95, 0.99], [True, False]),
    (SamplerSettings(), 0.99, {0.99: 4}, [0.99], [False]),
    (SamplerSettings(target_accept=0.8), None, {0.8: 5}, [0.8], [False]),
])
def test_only_an_attempt_that_is_not_the_last_may_stop(settings, start, divergent, calls,
                                                        stops):
    """The last rung's attempt and a set target run to the end (stop=False)."""
    sampler = StoppableSampler({0.8: 0, 0.95: 0, 0.99: 0, **divergent})
    sample_adaptive(sampler, settings, start=start, stoppable=True)
    assert (sampler.calls, sampler.stops) == (calls, stops)


def test_a_stopped_attempt_is_recorded_as_stopped_and_the_clean_one_returned():
    sampler = StoppableSampler({0.8: 7, 0.95: 0, 0.99: 0})
    idata = sample_adaptive(sampler, SamplerSettings(), stoppable=True)
    assert json.loads(idata.sample_stats.attrs[ATTEMPTS_ATTR]) == [[0.8, 1, "stopped"],
                                                                   [0.95, 0]]
    assert idata.sample_stats.attrs["target_accept"] == 0.95
    assert attempts(idata) == [Attempt(0.8, 1, stopped=True), Attempt(0.95, 0)]
    xr.testing.assert_identical(idata.posterior, fake_idata(0).posterior)
    assert adaptation_notes(idata) == (
        "refit at target_accept 0.95 after a divergence at 0.8 (that attempt stopped at "
        "its first divergence after warm-up)",)


def test_the_last_rung_is_returned_whatever_it_has_after_stopped_attempts():
    sampler = StoppableSampler({0.8: 9, 0.95: 3, 0.99: 2})
    idata = sample_adaptive(sampler, SamplerSettings(), stoppable=True)
    assert attempts(idata) == [Attempt(0.8, 1, True), Attempt(0.95, 1, True),
                               Attempt(0.99, 2)]
    assert int(idata.sample_stats["diverging"].sum()) == 2


@pytest.mark.parametrize("record, parsed, notes", [
    ([[0.8, 7], [0.95, 0]], [Attempt(0.8, 7), Attempt(0.95, 0)],  # before stopping existed
     ("refit at target_accept 0.95 after 7 divergences at 0.8",)),
    ([[0.8, 1], [0.95, 0]], [Attempt(0.8, 1), Attempt(0.95, 0)],
     ("refit at target_accept 0.95 after 1 divergence at 0.8",)),
    ([[0.8, 3, "stopped"], [0.95, 1, "stopped"], [0.99, 0]],
     [Attempt(0.8, 3, True), Attempt(0.95, 1, True), Attempt(0.99, 0)],
     ("refit at target_accept 0.95 after 3 divergences at 0.8 (that attempt stopped "
      "early, when its first divergences after warm-up were seen)",
      "refit at target_accept 0.99 after a divergence at 0.95 (that attempt stopped at "
      "its first divergence after warm-up)")),
])
def test_attempts_reads_old_and_stopped_records(record, parsed, notes):
    idata = fake_idata(0)
    idata.sample_stats.attrs[ATTEMPTS_ATTR] = json.dumps(record)
    assert attempts(idata) == parsed
    assert [a.stopped for a in attempts(idata)] == [len(r) == 3 for r in record]
    assert adaptation_notes(idata) == notes


@pytest.mark.mcmc
def test_a_divergent_prone_fit_escalates_and_its_target_reproduces_the_draws(sed_spec):
    """The README's SED model at seed 1 diverges at 0.8 (9 of seeds 0-9 do,
    benchmarks/convergence_seeds.py); the refit is clean, and a fit at the recorded
    target with the same seed gives the same draws, as does the adaptive fit again."""
    settings = SamplerSettings(seed=1)
    fit = sed_spec.fit(settings)
    steps = attempts(fit.idata)
    assert steps[0][0] == 0.8 and steps[0][1] > 0
    assert len(steps) >= 2 and steps[-1][1] == 0 == fit.diagnostics.divergences
    assert fit.settings.target_accept == steps[-1][0]
    assert json.loads(fit.posterior.attrs["sampler"])["target_accept"] == steps[-1][0]
    assert fit.diagnostics.adaptation[0].startswith("refit at target_accept 0.95 after ")
    rerun = sed_spec.fit(fit.settings)
    assert attempts(rerun.idata) == [steps[-1]]
    again = sed_spec.fit(settings)
    for other in (rerun, again):
        for name in fit.posterior.data_vars:
            np.testing.assert_array_equal(other.posterior[name].values,
                                          fit.posterior[name].values)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(20))
def test_the_main_shipped_spec_samples_cleanly_over_20_seeds(seed):
    """models/sed_clinical_success.toml (the README example's model) with seeds 0-19:
    no divergence, R-hat <= 1.01, ESS and E-BFMI above their thresholds, no warning
    (benchmarks/convergence_seeds.py prints the table for every shipped model)."""
    import warnings
    from pathlib import Path

    from bayes_poem.specfile import load_spec

    analysis = load_spec(Path(__file__).resolve().parents[1] / "models"
                         / "sed_clinical_success.toml")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = analysis.model_spec().fit(dataclasses.replace(analysis.sampler, seed=seed))
    assert fit.diagnostics.ok and fit.diagnostics.divergences == 0


def test_only_an_attempt_with_a_small_trace_is_watched_for_its_first_divergence():
    """Watching copies the trace so far: a trace above WATCH_MAX_BYTES runs to the end
    (the copy would raise the peak memory by up to one trace)."""
    import types

    from bayes_poem.sampling import WATCH_MAX_BYTES, SamplerSettings, watched

    settings = SamplerSettings(draws=1000, tune=1000, chains=4)
    per_value = settings.chains * (settings.tune + settings.draws) * 8
    assert watched(types.SimpleNamespace(n_expanded=27), settings)  # the SED model
    assert watched(types.SimpleNamespace(n_expanded=WATCH_MAX_BYTES // per_value), settings)
    assert not watched(types.SimpleNamespace(n_expanded=WATCH_MAX_BYTES // per_value + 1),
                       settings)
    assert not watched(types.SimpleNamespace(n_expanded=4003), settings)  # 2,000 studies


def test_nutpie_progress_counts_are_read_and_a_text_not_understood_is_ignored():
    from bayes_poem.sampling import _Counts

    counts = _Counts(tune=300)
    counts.update("0 1079;1 1107;0 0;0 0;")  # COUNT_TEMPLATE's text: 4 chains
    assert (counts.divergences, counts.draws) == (1, 779 + 807)
    counts.update("<html>not the template</html>")
    counts.update("1 x;")
    assert (counts.divergences, counts.draws) == (1, 779 + 807)
