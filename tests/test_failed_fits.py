"""Class 2 of "no silent wrong results": a failed or partial fit is an error, never results.

Diagnostics that are NaN (or infinite) fail instead of passing comparisons; a
trace with fewer chains or draws than asked (what an interrupted sampler
hands back), or with non-finite draws, is refused before any summary; the CLI
reports either in one line with exit status 4 and writes nothing, ``--strict``
or not. The diagnostics are tested on constructed traces (no sampling); the
CLI path samples briefly.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest

from bayes_poem import sampling
from bayes_poem.diagnostics import check_fit
from bayes_poem.errors import SamplingError, SpecError
from bayes_poem.sampling import SamplerSettings, check_complete, check_memory
from tests.helpers import run_cli


def _trace(chains=4, draws=200, *, stats=True, energy=True, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    posterior = {"mu": rng.normal(size=(chains, draws)),
                 "w": rng.normal(size=(chains, draws, 3))}
    posterior.update(overrides)
    sample_stats = {}
    if stats:
        sample_stats["diverging"] = np.zeros((chains, draws), dtype=bool)
        if energy:
            sample_stats["energy"] = rng.normal(size=(chains, draws))
    with warnings.catch_warnings():  # "more chains than draws" for the short traces
        warnings.simplefilter("ignore", UserWarning)
        return az.from_dict(posterior=posterior, sample_stats=sample_stats or None)


def test_a_healthy_trace_passes():
    diagnostics = check_fit(_trace(), warn=False)
    assert diagnostics.ok and np.isfinite(diagnostics.table.to_numpy()).all()


NAN_TRACES = {
    "constant_variable": dict(mu=np.zeros((4, 200))),
    "constant_element": dict(w=np.concatenate([np.zeros((4, 200, 1)),
                                               np.ones((4, 200, 2)).cumsum(1)], axis=2)),
    "nan_element": dict(w=np.where(np.arange(3) == 1, np.nan, 1.0)
                        * np.random.default_rng(1).normal(size=(4, 200, 3))),
}


@pytest.mark.parametrize("case", NAN_TRACES, ids=str)
def test_class2_nan_or_infinite_diagnostics_fail(case):
    """Formerly np.nanmax skipped NaN elements and NaN > 1.01 was False: both 'passed'."""
    with pytest.raises(SamplingError, match="could not be computed"):
        check_fit(_trace(**NAN_TRACES[case]), warn=False)


def test_class2_a_stuck_chain_is_a_failed_diagnostic_not_a_pass():
    stuck = np.concatenate([np.zeros((1, 200)), np.random.default_rng(2).normal(size=(3, 200))])
    diagnostics = check_fit(_trace(mu=stuck), warn=False)
    assert not diagnostics.ok and "R-hat > 1.01 for mu" in diagnostics.problems[0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(energy=False), "E-BFMI"),
    (dict(stats=False), "no sampler statistics"),
    (dict(draws=3), "at least 4 draws per chain"),
    (dict(draws=1), "at least 4 draws per chain"),
    (dict(chains=1, draws=0, mu=np.zeros((1, 0)), w=np.zeros((1, 0, 3))), "0 draw"),
], ids=["no_energy", "no_stats", "three_draws", "one_draw", "no_draws"])
def test_class2_missing_or_too_short_diagnostics_fail(kwargs, message):
    with pytest.raises(SamplingError, match=message):
        check_fit(_trace(**kwargs), warn=False)


@pytest.mark.parametrize("chains, draws, message", [
    (4, 137, "4 chain(s) x 137 draws, not the 4 x 200"),   # interrupted in the draw phase
    (4, 0, "4 chain(s) x 0 draws"),                        # interrupted in warm-up
    (3, 200, "3 chain(s) x 200 draws"),                    # a chain lost
])
def test_class2_partial_traces_are_refused(chains, draws, message):
    settings = SamplerSettings(draws=200, chains=4)
    idata = _trace(chains=chains, draws=draws, mu=np.zeros((chains, draws)),
                   w=np.zeros((chains, draws, 3)))
    with pytest.raises(SamplingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_complete(idata, settings)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_class2_non_finite_draws_are_refused(value):
    settings = SamplerSettings(draws=200, chains=4)
    w = np.random.default_rng(3).normal(size=(4, 200, 3))
    w[2, 150, 1] = value
    with pytest.raises(SamplingError, match="non-finite posterior draws of 'w'"):
        check_complete(_trace(w=w), settings)
    check_complete(_trace(), settings)


def test_class7_draws_beyond_memory_are_refused_before_sampling(sed_spec):
    with pytest.raises(SpecError, match="GiB for the trace"):
        check_memory(sed_spec, SamplerSettings(draws=10**7, chains=64))
    check_memory(sed_spec, SamplerSettings())


SPEC = ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
        "[sampler]\ndraws = 100\ntune = 100\nchains = 2\nseed = 3\n")


def _partial(real):
    """nutpie as it behaves on Ctrl-C: the trace so far, returned as if complete."""
    def run(model, settings, **kwargs):
        return real(model, settings, **kwargs).isel(draw=slice(0, settings.draws // 2))
    return run


def _constant(real):
    """A complete, finite trace whose R-hat is NaN (a variable that never moved)."""
    def run(model, settings, **kwargs):
        idata = real(model, settings, **kwargs)
        idata.posterior["mu"] = idata.posterior["mu"] * 0.0
        return idata
    return run


@pytest.mark.mcmc
@pytest.mark.parametrize("sabotage, message", [
    (_partial, "1 chain(s)"), (_constant, "could not be computed (NaN or infinite): r_hat of mu"),
], ids=["partial_trace", "nan_rhat"])
@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
def test_class2_cli_failed_fit_exits_4_and_writes_nothing(tmp_path, capsys, monkeypatch,
                                                          sabotage, message, strict):
    monkeypatch.setattr(sampling, "run_nutpie", sabotage(sampling.run_nutpie))
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.replace("chains = 2", "chains = 1") if sabotage is _partial else SPEC)
    args = ["run", spec, "--out", tmp_path / "res", "--quiet"] + (["--strict"] if strict else [])
    code, out, err = run_cli(args, capsys)
    assert code == 4
    assert err.count("\n") == 1 and err.startswith("bayes-poem: the computation failed:")
    assert message in err and "Results written" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]
