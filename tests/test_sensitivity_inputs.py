"""Class 9 of issue 9: ``bayes-poem sensitivity`` options and variant names.

``--jobs`` below 1 and a scheduler that cannot be reached are one line, exit 2,
before sampling; a variant named ``main`` or two variants with one name are
refused when the spec is read, naming the key(s); a grid whose main analysis
fails exits 4 and writes nothing, while any other failed variant stays a
``failed`` row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bayes_poem import cli_executor
from bayes_poem.sensitivity import MAIN, read_table
from tests.helpers import run_cli

pytestmark = pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")

CSV = """study,subgroup,outcome,events,total,quality
A,x,cs,8,10,good
A,y,cs,4,6,good
B,x,cs,9,15,fair
C,y,cs,2,7,good
D,x,cs,7,10,fair
D,y,cs,5,9,fair
"""
SMALL_GRID = ("turner = []\nmu_priors = []\nsigma_subgroup_priors = []\n"
              "subgroup_effects = []\nlikelihoods = []\npsens = false\nsubsets = []\n")
SAMPLER = "[sampler]\ndraws = 200\ntune = 200\nchains = 2\nseed = 3\n"


def _spec(tmp_path: Path, sensitivity: str = "", *, grid: str = SMALL_GRID,
          tau: str = "tau_priors = []\n", loo: str = "leave_one_out = false\n") -> Path:
    (tmp_path / "d.csv").write_text(CSV)
    path = tmp_path / "s.toml"
    path.write_text('[data]\npath = "d.csv"\noutcome = "cs"\n' + SAMPLER
                    + "[sensitivity]\n" + grid + tau + loo + sensitivity)
    return path


def _cli(args, capsys) -> tuple[int, str, str]:
    """``run_cli`` that also returns argparse's exit status."""
    try:
        return run_cli(args, capsys)
    except SystemExit as exit_info:
        out, err = capsys.readouterr()
        return int(exit_info.code), out, err


def _one_line(code: int, out: str, err: str, expected_code: int = 2) -> None:
    assert code == expected_code, err
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.fixture
def no_fit(monkeypatch):
    from bayes_poem import sampling

    def fail(*args, **kwargs):
        raise AssertionError("sampled although the input was invalid")

    monkeypatch.setattr(sampling, "fit", fail)


# ---------------------------------------------------------------------- --jobs, --scheduler
@pytest.mark.parametrize("jobs", ["0", "-1", "-64", "abc", "1.5", "", "1e3"])
def test_class9_jobs_below_one_or_not_an_integer_is_one_line(tmp_path, capsys, no_fit, jobs):
    out = tmp_path / "out"
    result = _cli(["sensitivity", _spec(tmp_path), "--out", out, "--jobs", jobs], capsys)
    _one_line(*result)
    assert "--jobs" in result[2]
    assert not out.exists()


SCHEDULERS = ["nonsense", "tcp://", "tcp://127.0.0.1:1", "http://127.0.0.1:8786",
              "tls://127.0.0.1:1", "ucx://127.0.0.1:1", "tcp://host:abc", "tcp://[::1",
              "inproc://", ":::", "", "   "]


@pytest.mark.parametrize("address", SCHEDULERS)
def test_class9_scheduler_that_cannot_be_reached_is_one_line(tmp_path, capsys, monkeypatch,
                                                             no_fit, address):
    import dask

    monkeypatch.setattr(cli_executor, "SCHEDULER_TIMEOUT", 1.0)
    before = dask.config.get("scheduler", None)
    out = tmp_path / "out"
    result = _cli(["sensitivity", _spec(tmp_path), "--out", out, "--quiet",
                   "--scheduler", address], capsys)
    _one_line(*result)
    assert "--scheduler" in result[2]
    assert not out.exists()
    # a client that failed to connect leaves dask's global scheduler as it was
    assert dask.config.get("scheduler", None) == before


# ---------------------------------------------------------------------- names
NAME_CASES = {  # name -> (the [sensitivity] keys, text of the message)
    "tau prior named main": (
        'tau_priors = [{ name = "main", dist = "HalfNormal", sigma = 0.5 }]\n',
        "sensitivity.tau_priors[1].name: 'main' is reserved"),
    "mu prior named main": (
        'mu_priors = [{ name = "main", dist = "Normal", mu = 0.0, sigma = 2.0 }]\n',
        "sensitivity.mu_priors[1].name: 'main' is reserved"),
    "subgroup prior named main": (
        'sigma_subgroup_priors = [{ name = "main", dist = "HalfNormal", sigma = 2.0 }]\n',
        "sensitivity.sigma_subgroup_priors[1].name: 'main' is reserved"),
    "subset named main": (
        'subsets = [{ name = "main", column = "quality", values = ["good"] }]\n',
        "sensitivity.subsets[1].name: 'main' is reserved"),
    "two tau priors, one name": (
        'tau_priors = [{ name = "t", dist = "HalfNormal", sigma = 0.5 },\n'
        '              { name = "t", dist = "HalfNormal", sigma = 2.0 }]\n',
        "sensitivity.tau_priors[1] and sensitivity.tau_priors[2] both name a variant 't'"),
    "two identical unnamed tau priors": (
        'tau_priors = [{ dist = "HalfNormal", sigma = 0.5 }, { dist = "HalfNormal", '
        'sigma = 0.5 }]\n',
        "sensitivity.tau_priors[1] and sensitivity.tau_priors[2] both name a variant"),
    "tau prior and mu prior, one name": (
        'tau_priors = [{ name = "v", dist = "HalfNormal", sigma = 0.5 }]\n'
        'mu_priors = [{ name = "v", dist = "Normal", mu = 0.0, sigma = 2.0 }]\n',
        "sensitivity.tau_priors[1] and sensitivity.mu_priors[1] both name a variant 'v'"),
    "subset named like a prior": (
        'tau_priors = [{ name = "v", dist = "HalfNormal", sigma = 0.5 }]\n'
        'subsets = [{ name = "v", column = "quality", values = ["good"] }]\n',
        "sensitivity.tau_priors[1] and sensitivity.subsets[1] both name a variant 'v'"),
    "two unnamed subsets alike": (
        'subsets = [{ column = "quality", values = ["good"] }, '
        '{ column = "quality", values = ["good"] }]\n',
        "sensitivity.subsets[1] and sensitivity.subsets[2] both name a variant"),
    "subset named like a leave-one-out variant": (
        'leave_one_out = true\nsubsets = [{ name = "without B", column = "quality", '
        'values = ["good"] }]\n',
        "sensitivity.leave_one_out and sensitivity.subsets[1] both name a variant "
        "'without B'"),
    "tau prior named like the likelihood variant": (
        'likelihoods = ["beta_binomial"]\n'
        'tau_priors = [{ name = "beta-binomial", dist = "HalfNormal", sigma = 0.5 }]\n',
        "sensitivity.tau_priors[1] and sensitivity.likelihoods[1] both name a variant"),
    "tau prior named like the common-effect variant": (
        'likelihoods = ["common_effect"]\n'
        'tau_priors = [{ name = "common effect", dist = "HalfNormal", sigma = 0.5 }]\n',
        "sensitivity.likelihoods[1] both name a variant 'common effect'"),
    "mu prior named like a Turner variant": (
        'turner = ["turner_adverse_nonpharm"]\n'
        'mu_priors = [{ name = "tau2 turner_adverse_nonpharm", dist = "Normal", mu = 0.0, '
        'sigma = 2.0 }]\n',
        "sensitivity.turner[1] and sensitivity.mu_priors[1] both name a variant"),
    "Turner preset twice": (
        'turner = ["turner_adverse_nonpharm", "turner_adverse_nonpharm"]\n',
        "sensitivity.turner: 'turner_adverse_nonpharm' is listed twice"),
    "likelihood twice": ('likelihoods = ["beta_binomial", "beta_binomial"]\n',
                         "sensitivity.likelihoods: 'beta_binomial' is listed twice"),
    "structure twice": ('subgroup_effects = ["random", "random"]\n',
                        "sensitivity.subgroup_effects: 'random' is listed twice"),
    "name not a string": ('tau_priors = [{ name = 3, dist = "HalfNormal", sigma = 0.5 }]\n',
                          "sensitivity.tau_priors[1].name: must be a non-empty string"),
    "empty name": ('subsets = [{ name = "", column = "quality", values = ["good"] }]\n',
                   "sensitivity.subsets[1].name: must be a non-empty string"),
}


def _grid_without(keys: str) -> str:
    """SMALL_GRID without the keys that ``keys`` sets."""
    given = {line.split("=")[0].strip() for line in keys.splitlines() if "=" in line
             and not line.startswith(" ")}
    return "".join(line + "\n" for line in SMALL_GRID.splitlines()
                   if line.split("=")[0].strip() not in given)


@pytest.mark.parametrize("case", sorted(NAME_CASES))
@pytest.mark.parametrize("command", ["check", "sensitivity", "run"])
def test_class9_variant_names_are_unique_and_main_is_reserved(tmp_path, capsys, no_fit,
                                                               case, command):
    keys, message = NAME_CASES[case]
    tau = "" if "tau_priors" in keys else "tau_priors = []\n"
    loo = "" if "leave_one_out" in keys else "leave_one_out = false\n"
    spec = _spec(tmp_path, keys, grid=_grid_without(keys), tau=tau, loo=loo)
    args = [command, spec] if command == "check" else [command, spec, "--out",
                                                       tmp_path / "out", "--quiet"]
    code, out, err = _cli(args, capsys)
    _one_line(code, out, err)
    assert f"{spec}: " in err and message in err, err
    assert not (tmp_path / "out").exists()


def test_class9_python_api_rejects_repeated_variant_names(tmp_path):
    from bayes_poem import Prior, SpecError, load_table
    from bayes_poem.sampling import SamplerSettings
    from bayes_poem.sensitivity import GridOptions, Variant, build_variants, run_sensitivity
    from bayes_poem.spec import ModelSpec

    (tmp_path / "d.csv").write_text(CSV)
    spec = ModelSpec.from_table(load_table(tmp_path / "d.csv"))
    options = GridOptions(tau_priors={MAIN: Prior("HalfNormal", {"sigma": 0.5})}, turner=(),
                          mu_priors={}, sigma_subgroup_priors={}, subgroup_effects=(),
                          likelihoods=(), leave_one_out=False)
    with pytest.raises(SpecError, match="'main' is reserved"):
        build_variants(spec, options)
    twice = [Variant(MAIN, MAIN, spec), Variant("v", "g", spec), Variant("v", "g", spec)]
    with pytest.raises(SpecError, match="several variants named 'v'"):
        run_sensitivity(twice, SamplerSettings(draws=10, tune=10, chains=1))


# ---------------------------------------------------------------------- a failing main fit
def _fail_for(monkeypatch, which):
    """Make sampling.fit raise for the specs ``which(spec)`` selects."""
    from bayes_poem import sampling

    original = sampling.fit

    def fit(spec, settings=None, **kwargs):
        if which(spec):
            raise RuntimeError("the sampler blew up")
        return original(spec, settings, **kwargs)

    monkeypatch.setattr(sampling, "fit", fit)


@pytest.mark.parametrize("jobs", ["1", pytest.param("2", marks=pytest.mark.mcmc)])  # 2: the
@pytest.mark.parametrize("who", ["main only", "every variant"])  # other worker may sample
def test_class9_grid_whose_main_analysis_fails_exits_4_and_writes_nothing(
        tmp_path, capsys, monkeypatch, jobs, who):
    if who == "main only":
        _fail_for(monkeypatch, lambda spec: not spec.zeroed_rows)
    else:
        _fail_for(monkeypatch, lambda spec: True)
    spec = _spec(tmp_path, loo="leave_one_out = true\n")
    out = tmp_path / "out"
    code, stdout, err = _cli(["sensitivity", spec, "--out", out, "--quiet", "--jobs", jobs],
                             capsys)
    _one_line(code, stdout, err, expected_code=4)
    assert f"{spec}: the main analysis failed" in err and "the sampler blew up" in err
    assert "nothing was written" in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.mcmc
def test_class9_a_failed_variant_other_than_main_is_a_row_and_the_grid_goes_on(
        tmp_path, capsys, monkeypatch):
    _fail_for(monkeypatch, lambda spec: bool(spec.zeroed_rows) and 0 in spec.zeroed_rows)
    spec = _spec(tmp_path, loo="leave_one_out = true\n")
    out = tmp_path / "out"
    code, stdout, err = _cli(["sensitivity", spec, "--out", out, "--quiet"], capsys)
    assert code == 0, err
    assert "Results written" in stdout
    table = read_table(out / "sensitivity.csv")  # what 'sensitivity' writes reads back
    status = table.groupby("variant", sort=False)["status"].first()
    assert status[MAIN] != "failed"
    assert (status == "failed").sum() == 1
    assert len(status) == 1 + 4  # main and the four studies left out
    assert pd.api.types.is_float_dtype(table["median"])
