"""Class 7 of issue 9: numeric edge values are refused at validation, naming the key.

NaN, infinities and overflowing ``summary.weights`` (spec and Python API), counts
above int64 or above :data:`bayes_poem.table.MAX_COUNT`, sampler settings out of
range, and trial draws / simulations / sizes / seeds that are floats, bools or
beyond their documented bounds. Tier 1: every case fails before any sampling.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bayes_poem import load_dataset
from bayes_poem.errors import DataError, SpecError
from bayes_poem.results import FitResult
from bayes_poem.sampling import MAX_SEED, SamplerSettings
from bayes_poem.spec import ModelSpec
from bayes_poem.table import MAX_COUNT, load_table
from bayes_poem.trials.binary import ArmCounts, analyse_binary
from bayes_poem.trials.design import (
    assurance,
    interim_predictive_probability,
    interim_predictive_probability_exact,
)
from tests.helpers import run_cli

SED = ("[data]\ndataset = \"sed_synthetic\"\noutcome = \"clinical_success\"\n")
SED_SUBGROUPS = ["type_iii", "des", "jackhammer", "unassigned"]


def _one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2, (code, out, err)
    assert err.count("\n") == 1 and err.startswith("bayes-poem: error:"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def _check(tmp_path, capsys, text: str, *needles: str, name: str = "edge.toml") -> str:
    spec = tmp_path / name
    spec.write_text(text)
    code, out, err = run_cli(["check", spec], capsys)
    _one_line_error(code, out, err, name, *needles)
    return err


# ---------------------------------------------------------------- summary.weights
BAD_WEIGHTS = {
    "nan": ("{ type_iii = nan, des = 1 }", "summary.weights.type_iii"),
    "minus_nan": ("{ type_iii = 1, des = -nan }", "summary.weights.des"),
    "inf": ("{ type_iii = inf, des = 1 }", "summary.weights.type_iii"),
    "minus_inf": ("{ jackhammer = -inf }", "summary.weights.jackhammer"),
    "sum_overflows": ("{ type_iii = 1e308, des = 1e308 }", "summary.weights: the sum"),
    "sum_overflows_3": ("{ type_iii = 1.7e308, des = 1.7e308, jackhammer = 1 }",
                        "overflows"),
    "negative": ("{ type_iii = -1, des = 2 }", "summary.weights.type_iii"),
    "all_zero": ("{ type_iii = 0, des = 0 }", "with a positive sum (all are 0)"),
    "bool": ("{ type_iii = true }", "summary.weights.type_iii"),
    "string": ("{ type_iii = \"1\" }", "summary.weights.type_iii"),
    "array": ("{ type_iii = [1] }", "summary.weights.type_iii"),
    "empty": ("{}", "summary.weights"),
    "number": ("3", "summary.weights"),
    "huge_int": ("{ type_iii = 99999999999999999999999999, des = nan }",
                 "summary.weights.des"),
}


@pytest.mark.parametrize("case", BAD_WEIGHTS, ids=str)
def test_class7_spec_weights_are_refused_naming_the_key(tmp_path, capsys, case):
    weights, needle = BAD_WEIGHTS[case]
    _check(tmp_path, capsys, SED + f"[summary]\nweights = {weights}\n", needle)


@pytest.mark.parametrize("case", ["nan", "sum_overflows", "bool"])
def test_class7_run_refuses_bad_weights_before_sampling(tmp_path, capsys, case):
    weights, needle = BAD_WEIGHTS[case]
    spec = tmp_path / "edge.toml"
    spec.write_text(SED + f"[summary]\nweights = {weights}\n")
    code, out, err = run_cli(["run", spec, "--out", tmp_path / "res"], capsys)
    _one_line_error(code, out, err, "edge.toml", needle)
    assert not (tmp_path / "res").exists() and sorted(tmp_path.iterdir()) == [spec]


API_BAD_WEIGHTS = [
    {"type_iii": math.nan},
    {"type_iii": np.nan, "des": 1.0},
    {"type_iii": math.inf},
    {"type_iii": -math.inf, "des": 1.0},
    {"type_iii": 1e308, "des": 1e308},
    {"type_iii": np.float64(1.5e308), "des": 1e308, "jackhammer": 1e308},
    {"type_iii": 10**400},
    {"type_iii": -1.0, "des": 2.0},
    {"type_iii": 0, "des": 0.0},
    {"type_iii": True},
    {"type_iii": np.bool_(True)},
    {"type_iii": "1"},
    {"type_iii": None},
    {"type_iii": [1.0]},
    {},
    {1: 1.0},
    [("type_iii", 1.0)],
]


@pytest.fixture(scope="module")
def sed_spec_module():
    return ModelSpec.from_table(load_dataset("sed_synthetic"), "clinical_success",
                                subgroups=SED_SUBGROUPS)


@pytest.mark.parametrize("weights", API_BAD_WEIGHTS, ids=repr)
def test_class7_api_weights_are_refused(sed_spec_module, weights):
    result = FitResult(spec=sed_spec_module, idata=None, settings=SamplerSettings(),
                       diagnostics=None, weights=weights)
    with pytest.raises(SpecError, match=r"^summary\.weights"):
        result._subgroup_weights(SED_SUBGROUPS)


def test_class7_api_valid_weights_are_normalised(sed_spec_module):
    result = FitResult(spec=sed_spec_module, idata=None, settings=SamplerSettings(),
                       diagnostics=None, weights={"type_iii": 1e307, "des": 3e307})
    w = result._subgroup_weights(SED_SUBGROUPS)
    np.testing.assert_allclose(w.values, [0.25, 0.75, 0.0, 0.0])


# ---------------------------------------------------------------- counts
CSV_BAD_COUNTS = {
    "above_int64": ("events", "99999999999999999999", "too large"),
    "above_int64_total": ("total", "99999999999999999999", "too large"),
    "int64_max": ("total", str(2**63 - 1), "too large"),
    "just_above_bound": ("total", str(MAX_COUNT + 1), "too large"),
    "400_digits": ("total", "9" * 400, "too large"),
    "5000_digits": ("events", "9" * 5000, "too large"),
    "huge_with_decimals": ("total", "99999999999999999999.000", "too large"),
    "huge_negative": ("events", "-99999999999999999999", "negative count"),
    "exponent": ("total", "1e30", "is not an integer count"),
    "inf": ("total", "inf", "is not an integer count"),
    "nan": ("events", "nan", "is not an integer count"),
}


@pytest.mark.parametrize("case", CSV_BAD_COUNTS, ids=str)
def test_class7_csv_counts_beyond_the_bound(tmp_path, capsys, case):
    column, value, needle = CSV_BAD_COUNTS[case]
    row = {"study": "A", "outcome": "x", "events": "1", "total": "10", column: value}
    path = tmp_path / "counts.csv"
    path.write_text("study,outcome,events,total\nB,x,1,5\n"
                    + ",".join(row[c] for c in ("study", "outcome", "events", "total")) + "\n")
    code, out, err = run_cli(["check", path], capsys)
    _one_line_error(code, out, err, "counts.csv", "row 2 (line 3)", f"column '{column}'",
                    needle)
    assert len(err) < 300, err


@pytest.mark.parametrize("value", [99999999999999999999, 2**63, 2**64 - 1, 1e300, 1e10,
                                   np.uint64(2**64 - 1), np.float64(1e19), MAX_COUNT + 1,
                                   10**400], ids=repr)
@pytest.mark.parametrize("column", ["events", "total"])
def test_class7_dataframe_counts_beyond_the_bound(value, column):
    frame = pd.DataFrame({"study": ["A", "B"], "outcome": ["x", "x"],
                          "events": pd.Series([1, 1], dtype=object),
                          "total": pd.Series([5, 10], dtype=object)})
    frame.loc[1, column] = value
    with pytest.raises(DataError) as excinfo:
        load_table(frame)
    message = str(excinfo.value)
    assert message.startswith(f"DataFrame: row 2, column '{column}': ") and "\n" not in message
    assert "too large" in message and len(message) < 300


def test_class7_largest_count_is_accepted():
    frame = pd.DataFrame({"study": ["A"], "outcome": ["x"], "events": [MAX_COUNT],
                          "total": [MAX_COUNT]})
    assert load_table(frame).frame["total"].iloc[0] == MAX_COUNT


# ---------------------------------------------------------------- sampler
BAD_SAMPLER = {
    "draws = 0": "sampler.draws: must be an integer >= 4 (got 0)",
    "draws = 1": "sampler.draws: must be an integer >= 4 (got 1)",
    "draws = 3": "sampler.draws: must be an integer >= 4 (got 3)",
    "draws = -1": "sampler.draws: must be an integer >= 4 (got -1)",
    "draws = 10000001": "sampler.draws: must be an integer <= 10000000 (got 10000001)",
    "draws = 1000000000000": "sampler.draws: must be an integer <= 10000000",
    "draws = 1e12": "sampler.draws: must be an integer from 4 to 10000000 (got 1000000000000.0)",
    "draws = 1000.0": "sampler.draws: must be an integer",
    "draws = true": "sampler.draws: must be an integer from 4 to 10000000 (got True)",
    "draws = nan": "sampler.draws: must be an integer",
    "tune = -1": "sampler.tune: must be an integer >= 0 (got -1)",
    "tune = 100000000": "sampler.tune: must be an integer <= 10000000 (got 100000000)",
    "tune = inf": "sampler.tune: must be an integer",
    "chains = 0": "sampler.chains: must be an integer >= 1 (got 0)",
    "chains = 65": "sampler.chains: must be an integer <= 64 (got 65)",
    "chains = 2.0": "sampler.chains: must be an integer",
    "seed = -1": "sampler.seed: must be an integer >= 0 (got -1)",
    "seed = 9223372036854775808": "sampler.seed: must be an integer <= 9223372036854775807",
    "seed = 18446744073709551617": "sampler.seed: must be an integer <= 9223372036854775807",
    "seed = 1e3": "sampler.seed: must be an integer",
    "seed = \"42\"": "sampler.seed: must be an integer",
    "target_accept = nan": "sampler.target_accept: must be in [0.5, 1) (got nan)",
    "target_accept = inf": "sampler.target_accept: must be in [0.5, 1) (got inf)",
    "target_accept = 1.0": "sampler.target_accept: must be in [0.5, 1) (got 1.0)",
    "target_accept = 0.4": "sampler.target_accept: must be in [0.5, 1)",
    "target_accept = true": "sampler.target_accept: must be in [0.5, 1) (got True)",
    "backend = 3": "sampler.backend: 3 is not one of nutpie, pymc",
}


@pytest.mark.parametrize("line", BAD_SAMPLER, ids=str)
def test_class7_sampler_settings_out_of_range(tmp_path, capsys, line):
    _check(tmp_path, capsys, SED + f"[sampler]\n{line}\n", BAD_SAMPLER[line])


@pytest.mark.parametrize("kwargs", [
    {"draws": 1}, {"draws": 10**12}, {"draws": np.int64(2)}, {"tune": 10**8},
    {"chains": 100}, {"seed": 2**64}, {"seed": MAX_SEED + 1}, {"seed": -5},
    {"seed": np.uint64(2**64 - 1)}, {"draws": np.bool_(True)}, {"target_accept": math.nan},
    {"target_accept": np.float64("nan")}, {"backend": None},
], ids=repr)
def test_class7_sampler_settings_api(kwargs):
    with pytest.raises(SpecError, match=rf"^sampler\.{next(iter(kwargs))}: "):
        SamplerSettings(**kwargs)


def test_class7_sampler_bounds_are_inclusive_and_numpy_ints_become_ints():
    settings = SamplerSettings(draws=np.int64(4), tune=0, chains=64, seed=np.uint64(MAX_SEED))
    assert settings.to_dict()["seed"] == MAX_SEED and type(settings.draws) is int
    assert SamplerSettings(draws=10**7, tune=10**7).draws == 10**7


# ---------------------------------------------------------------- trial specs
BINARY = ('analysis = "binary"\n[data]\nanterior = { events = 30, total = 40 }\n'
          'posterior = { events = 31, total = 40 }\n[noninferiority]\nmargin = 0.1\n')
SUMMARIES = ('analysis = "continuous"\n[data]\noutcome = "eckardt"\n'
             "anterior = { n = 31, before_mean = 6.3, before_sd = 1.4, after_mean = 0.8, "
             "after_sd = 0.7 }\nposterior = { n = 32, before_mean = 6.1, before_sd = 1.2, "
             "after_mean = 0.6, after_sd = 0.7 }\n[noninferiority]\nmargin = 1.0\n")
ASSURANCE = ('analysis = "assurance"\n[data]\ndataset = "poem_anterior_posterior_rcts"\n'
             'outcome = "clinical_success"\n[design]\nmargin = 0.1\n')
INTERIM = ('analysis = "interim"\n[interim]\nanterior = { events = 20, total = 25 }\n'
           "posterior = { events = 21, total = 25 }\nmargin = 0.1\n")

BAD_TRIAL_NUMBERS = {
    "binary_draws_1e12": (BINARY + "[simulation]\ndraws = 1e12\n",
                          "simulation.draws: must be <= 10000000 (got 1000000000000)"),
    "binary_draws_huge_int": (BINARY + "[simulation]\ndraws = 99999999999999999999\n",
                              "simulation.draws: must be <= 10000000"),
    "binary_draws_fraction": (BINARY + "[simulation]\ndraws = 2.5\n",
                              "simulation.draws: must be an integer from 2 to 10000000 "
                              "(got 2.5)"),
    "binary_draws_bool": (BINARY + "[simulation]\ndraws = true\n",
                          "simulation.draws: must be an integer"),
    "binary_draws_nan": (BINARY + "[simulation]\ndraws = nan\n",
                         "simulation.draws: must be an integer"),
    "binary_draws_inf": (BINARY + "[simulation]\ndraws = inf\n",
                         "simulation.draws: must be an integer"),
    "binary_seed_float": (BINARY + "[simulation]\nseed = 1e12\n",
                          "simulation.seed: must be an integer from 0 to 9223372036854775807"),
    "binary_seed_huge": (BINARY + "[simulation]\nseed = 18446744073709551616\n",
                         "simulation.seed: must be <= 9223372036854775807"),
    "binary_seed_negative": (BINARY + "[simulation]\nseed = -3\n",
                             "simulation.seed: must be >= 0 (got -3)"),
    "binary_seed_bool": (BINARY + "[simulation]\nseed = false\n",
                         "simulation.seed: must be an integer"),
    "binary_events_huge": (BINARY.replace("events = 30", "events = 99999999999999999999"),
                           "data.anterior: events (99999999999999999999) is too large"),
    "binary_total_huge": (BINARY.replace("total = 40 }\nposterior",
                                         "total = 1e12 }\nposterior"),
                          "data.anterior: total (1000000000000) is too large"),
    "summaries_draws_1e12": (SUMMARIES + "[simulation]\ndraws = 1e12\n",
                             "simulation.draws: must be <= 10000000"),
    "summaries_seed_float": (SUMMARIES + "[simulation]\nseed = 5.0\n",
                             "simulation.seed: must be an integer"),
    "assurance_simulations_1e12": (ASSURANCE + "n_per_arm = [50]\nsimulations = 1e12\n",
                                   "design.simulations: must be <= 1000000"),
    "assurance_simulations_bool": (ASSURANCE + "n_per_arm = [50]\nsimulations = true\n",
                                   "design.simulations: must be an integer"),
    "assurance_n_1e12": (ASSURANCE + "n_per_arm = [50, 1e12]\n",
                         "design.n_per_arm[1]: must be <= 1000000"),
    "assurance_n_fraction": (ASSURANCE + "n_per_arm = [50.5]\n",
                             "design.n_per_arm[0]: must be an integer"),
    "assurance_n_bool": (ASSURANCE + "n_per_arm = [true]\n",
                         "design.n_per_arm[0]: must be an integer"),
    "assurance_seed_float": (ASSURANCE + "n_per_arm = [50]\nseed = 1e12\n",
                             "design.seed: must be an integer"),
    "interim_n_1e12": (INTERIM + "n_per_arm = 1e12\n", "interim.n_per_arm: must be <= 1000000"),
    "interim_n_huge_int": (INTERIM + "n_per_arm = 99999999999999999999\n",
                           "interim.n_per_arm: must be <= 1000000"),
    "interim_simulations_1e12": (INTERIM + "n_per_arm = 60\nsimulations = 1e12\n",
                                 "interim.simulations: must be <= 1000000"),
    "interim_simulations_inf": (INTERIM + "n_per_arm = 60\nsimulations = inf\n",
                                "interim.simulations: must be an integer"),
    "interim_seed_huge": (INTERIM + "n_per_arm = 60\nseed = 9223372036854775808\n",
                          "interim.seed: must be <= 9223372036854775807"),
    "interim_total_huge": (INTERIM.replace("total = 25 }\nposterior", "total = 1e15 }\nposterior")
                           + "n_per_arm = 60\n", "interim.anterior: total (1000000000000000) "
                           "is too large"),
}


@pytest.mark.parametrize("case", BAD_TRIAL_NUMBERS, ids=str)
def test_class7_trial_numbers_out_of_range(tmp_path, capsys, case):
    text, needle = BAD_TRIAL_NUMBERS[case]
    spec = tmp_path / "trial.toml"
    spec.write_text(text)
    code, out, err = run_cli(["trial", spec, "--out", tmp_path / "res"], capsys)
    _one_line_error(code, out, err, "trial.toml", needle)
    assert out == "" and not (tmp_path / "res").exists()


def test_class7_trial_integral_floats_within_bounds_are_accepted(tmp_path):
    from bayes_poem.trials.specfile import parse_trial_spec

    raw = {"analysis": "binary", "data": {"anterior": {"events": 30, "total": 40},
                                          "posterior": {"events": 31, "total": 40}},
           "noninferiority": {"margin": 0.1}, "simulation": {"draws": 2e4, "seed": 7}}
    prepared = parse_trial_spec(raw, source="t.toml").prepare()
    assert prepared.resolved["simulation"] == {"draws": 20000, "seed": 7}


@pytest.mark.parametrize(("call", "needle"), [
    (lambda: analyse_binary(anterior=(3, 10), posterior=(4, 10), margin=0.1, draws=10**12),
     "draws: must be <= 10000000"),
    (lambda: analyse_binary(anterior=(3, 10), posterior=(4, 10), margin=0.1, seed=2**64),
     "seed: must be <= 9223372036854775807"),
    (lambda: analyse_binary(anterior=(3, 10), posterior=(4, 10), margin=0.1, seed=1.0),
     "seed: must be an integer"),
    (lambda: assurance(n_per_arm=[10**9], theta_new=[0.1, 0.2], baseline=0.8, margin=0.1),
     r"n_per_arm\[0\]: must be <= 1000000"),
    (lambda: interim_predictive_probability(anterior=(3, 10), posterior=(4, 10),
                                            n_per_arm=50, margin=0.1, simulations=1e9),
     "simulations: must be <= 1000000"),
    (lambda: interim_predictive_probability_exact(anterior=(3, 10), posterior=(4, 10),
                                                  n_per_arm=10**6, margin=0.1),
     "n_per_arm: 1000000 per arm leaves"),
], ids=["draws", "seed_huge", "seed_float", "n_per_arm", "simulations", "exact_grid"])
def test_class7_trial_api_bounds(call, needle):
    with pytest.raises(SpecError, match=needle):
        call()


@pytest.mark.parametrize(("events", "total"), [(10**10, 10**10), (1, 10**400), (True, 5),
                                               (1, math.inf), (np.int64(1), np.uint64(2**63))])
def test_class7_trial_api_arm_counts(events, total):
    with pytest.raises(DataError, match="^arm: (events|total)"):
        ArmCounts(events, total)
