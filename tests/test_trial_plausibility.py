"""Class 12 of issue 9: implausible trial inputs are refused, naming the key.

Each margin is checked on its own scale (a risk difference lies in (0, 1); a
margin in outcome units only needs to be > 0), arm summaries need n >= 2 (an SD
of one patient is undefined), and no number may be a boolean, NaN or infinite.
Tier 1: every case fails in ``TrialSpec.prepare``, before anything runs.
"""

from __future__ import annotations

import math

import pytest

from bayes_poem.errors import DataError, SpecError
from bayes_poem.trials.binary import BetaPrior, analyse_binary
from bayes_poem.trials.continuous import ArmSummary, check_patient_frame
from bayes_poem.trials.design import DecisionRule
from bayes_poem.trials.meta import random_effects_meta
from bayes_poem.trials.specfile import parse_trial_spec
from tests.helpers import run_cli

BINARY = ('analysis = "binary"\n[data]\nanterior = { events = 30, total = 40 }\n'
          'posterior = { events = 31, total = 40 }\n[noninferiority]\nmargin = MARGIN\n')
META = ('analysis = "meta"\n[data]\ndataset = "poem_anterior_posterior_rcts"\n'
        'outcomes = ["adverse_event"]\n[noninferiority]\nmargin = MARGIN\n')
ASSURANCE = ('analysis = "assurance"\n[data]\ndataset = "poem_anterior_posterior_rcts"\n'
             'outcome = "clinical_success"\n[design]\nn_per_arm = [50]\nmargin = MARGIN\n')
INTERIM = ('analysis = "interim"\n[interim]\nanterior = { events = 20, total = 25 }\n'
           "posterior = { events = 21, total = 25 }\nn_per_arm = 60\nmargin = MARGIN\n")
ARM = "n = 31, before_mean = 6.3, before_sd = 1.4, after_mean = 0.8, after_sd = 0.7"
SUMMARIES = ('analysis = "continuous"\n[data]\noutcome = "eckardt"\n'
             "anterior = { ANTERIOR }\nposterior = { n = 32, before_mean = 6.1, "
             "before_sd = 1.2, after_mean = 0.6, after_sd = 0.7 }\n"
             "[noninferiority]\nmargin = MARGIN\n")
META_CONTINUOUS = ('analysis = "meta_continuous"\n[data]\nstudies = [{ STUDY }, '
                   '{ study = "B", estimate = 0.2, se = 0.3 }]\n[priors.mu]\ndist = "Normal"'
                   '\nsigma = 1\n[priors.tau]\ndist = "HalfNormal"\nsigma = 1\n')


def _summaries(arm: str = ARM, margin: str = "1.0") -> str:
    return SUMMARIES.replace("ANTERIOR", arm).replace("MARGIN", margin)


RISK_MARGINS = ["1.5", "1", "1.0", "100", "-0.1", "0", "nan", "inf", "-inf", "true", '"0.1"',
                "[0.1]"]
RISK_SPECS = {"binary": (BINARY, "noninferiority.margin"), "meta": (META, "noninferiority.margin"),
              "assurance": (ASSURANCE, "design.margin"), "interim": (INTERIM, "interim.margin")}


def _one_line(tmp_path, capsys, text: str, *needles: str) -> str:
    spec = tmp_path / "plausible.toml"
    spec.write_text(text)
    out_dir = tmp_path / "res"
    code, out, err = run_cli(["trial", spec, "--out", out_dir], capsys)
    assert code == 2, (code, out, err)
    assert err.count("\n") == 1 and err.startswith("bayes-poem: error:"), err
    assert "Traceback" not in err and out == "" and not out_dir.exists()
    for needle in ("plausible.toml", *needles):
        assert needle in err, (needle, err)
    return err


@pytest.mark.parametrize("margin", RISK_MARGINS)
@pytest.mark.parametrize("analysis", RISK_SPECS)
def test_class12_risk_difference_margins_must_lie_in_0_1(tmp_path, capsys, analysis, margin):
    template, key = RISK_SPECS[analysis]
    err = _one_line(tmp_path, capsys, template.replace("MARGIN", margin), f"{key}: must be ")
    if margin in ("1.5", "1", "1.0", "100"):
        assert "must be < 1 on the risk-difference scale" in err


@pytest.mark.parametrize("margin", ["0.999", "0.001", "0.5"])
def test_class12_risk_difference_margins_inside_0_1_are_accepted(margin):
    raw = {"analysis": "binary", "data": {"anterior": {"events": 30, "total": 40},
                                          "posterior": {"events": 31, "total": 40}},
           "noninferiority": {"margin": float(margin)}}
    assert parse_trial_spec(raw, source="t.toml").prepare().resolved["noninferiority"][
        "margin"] == float(margin)


def test_class12_continuous_margins_are_in_outcome_units():
    """1.5 Eckardt points is a plausible margin: no upper bound in outcome units."""
    for margin in (1.5, 25.0):
        raw = {"analysis": "continuous",
               "data": {"outcome": "eckardt",
                        "anterior": {"n": 31, "before_mean": 6.3, "before_sd": 1.4,
                                     "after_mean": 0.8, "after_sd": 0.7},
                        "posterior": {"n": 32, "before_mean": 6.1, "before_sd": 1.2,
                                      "after_mean": 0.6, "after_sd": 0.7}},
               "noninferiority": {"margin": margin}}
        prepared = parse_trial_spec(raw, source="t.toml").prepare()
        assert prepared.resolved["noninferiority"]["margin"] == margin


@pytest.mark.parametrize("margin", ["0", "-1", "nan", "inf", "true", '"1"'])
def test_class12_continuous_margin_must_be_a_positive_number(tmp_path, capsys, margin):
    _one_line(tmp_path, capsys, _summaries(margin=margin), "noninferiority.margin: must be ")


BAD_ARMS = {
    "n_1": (ARM.replace("n = 31", "n = 1"), "data.anterior: n is 1: an arm summary with an SD "
            "needs n >= 2"),
    "n_0": (ARM.replace("n = 31", "n = 0"), "data.anterior: n is 0"),
    "n_negative": (ARM.replace("n = 31", "n = -4"), "data.anterior: n is -4"),
    "n_fraction": (ARM.replace("n = 31", "n = 2.5"), "data.anterior: n must be an integer"),
    "n_bool": (ARM.replace("n = 31", "n = true"), "data.anterior: n must be an integer"),
    "n_nan": (ARM.replace("n = 31", "n = nan"), "data.anterior: n must be an integer"),
    "n_huge": (ARM.replace("n = 31", "n = 1e12"), "data.anterior: n at most 1,000,000,000"),
    "mean_bool": (ARM.replace("before_mean = 6.3", "before_mean = true"),
                  "data.anterior: before_mean must be a finite number (got True)"),
    "mean_nan": (ARM.replace("after_mean = 0.8", "after_mean = nan"),
                 "data.anterior: after_mean must be a finite number (got nan)"),
    "mean_inf": (ARM.replace("after_mean = 0.8", "after_mean = -inf"),
                 "data.anterior: after_mean must be a finite number"),
    "sd_bool": (ARM.replace("before_sd = 1.4", "before_sd = true"),
                "data.anterior: before_sd must be a finite number (got True)"),
    "sd_inf": (ARM.replace("after_sd = 0.7", "after_sd = inf"),
               "data.anterior: after_sd must be a finite number"),
    "sd_string": (ARM.replace("after_sd = 0.7", 'after_sd = "0.7"'),
                  "data.anterior: after_sd must be a finite number"),
}


@pytest.mark.parametrize("case", BAD_ARMS, ids=str)
def test_class12_arm_summaries(tmp_path, capsys, case):
    arm, needle = BAD_ARMS[case]
    _one_line(tmp_path, capsys, _summaries(arm), needle)


BAD_STUDIES = {
    "estimate_true": ('study = "A", estimate = true, se = 0.2', "study 1, estimate: True is "
                      "not a number"),
    "estimate_false": ('study = "A", estimate = false, se = 0.2', "study 1, estimate"),
    "se_true": ('study = "A", estimate = 0.1, se = true', "study 1, se: True is not a number"),
    "estimate_nan": ('study = "A", estimate = nan, se = 0.2', "study 1, estimate: must be "
                     "finite (got nan)"),
    "estimate_inf": ('study = "A", estimate = inf, se = 0.2', "study 1, estimate: must be "
                     "finite"),
    "se_minus_inf": ('study = "A", estimate = 0.1, se = -inf', "study 1, se: must be finite"),
    "se_zero": ('study = "A", estimate = 0.1, se = 0', "study 1 (A), se: must be > 0"),
    "estimate_array": ('study = "A", estimate = [0.1], se = 0.2', "study 1, estimate"),
    "estimate_text": ('study = "A", estimate = "x", se = 0.2', "study 1, estimate: 'x' is not "
                      "a number"),
    "study_bool": ("study = true, estimate = 0.1, se = 0.2", "study 1, study: must be a label"),
    "study_empty": ('study = " ", estimate = 0.1, se = 0.2', "study 1, study: missing value"),
    "study_newline": ('study = "A\\nB", estimate = 0.1, se = 0.2',
                      "study 1, study: label 'A\\nB' contains the control character"),
}


@pytest.mark.parametrize("case", BAD_STUDIES, ids=str)
def test_class12_meta_continuous_estimates(tmp_path, capsys, case):
    study, needle = BAD_STUDIES[case]
    _one_line(tmp_path, capsys, META_CONTINUOUS.replace("STUDY", study), needle)


def _correlation(value: str) -> str:
    line = f'outcome = "eckardt"\ncorrelation = {value}'
    return _summaries().replace('outcome = "eckardt"', line)


OTHER_SPECS = {
    "correlation_bool": (_correlation("true"),
                         "data.correlation: must be a finite number (got True)"),
    "correlation_range": (_correlation("1.5"), "data.correlation: must be in [-1, 1] (got 1.5)"),
    "correlation_nan": (_correlation("nan"), "data.correlation: must be a finite number (got nan)"),
    "prior_a_bool": (BINARY.replace("MARGIN", "0.1") + "[priors]\nanterior = { a = true }\n",
                     "priors.anterior: Beta prior 'a': must be a finite number"),
    "prior_b_nan": (BINARY.replace("MARGIN", "0.1") + "[priors]\nposterior = { b = nan }\n",
                    "priors.posterior: Beta prior 'b': must be a finite number"),
    "prior_b_inf": (BINARY.replace("MARGIN", "0.1") + "[priors]\nposterior = { b = inf }\n",
                    "priors.posterior: Beta prior 'b': must be a finite number"),
    "threshold_bool": (INTERIM.replace("MARGIN", "0.1") + "threshold = true\n",
                       "interim.threshold: must be a finite number"),
    "threshold_one": (INTERIM.replace("MARGIN", "0.1") + "threshold = 1.0\n",
                      "interim.threshold: must be strictly between 0 and 1"),
    "threshold_nan": (INTERIM.replace("MARGIN", "0.1") + "threshold = nan\n",
                      "interim.threshold"),
    "baseline_bool": (ASSURANCE.replace("MARGIN", "0.1") + "baseline = true\n",
                      "design.baseline: must be a finite number"),
    "baseline_range": (ASSURANCE.replace("MARGIN", "0.1") + "baseline = 1.5\n",
                       "design.baseline: must be strictly between 0 and 1"),
    "events_bool": (BINARY.replace("MARGIN", "0.1").replace("events = 30", "events = true"),
                    "data.anterior: events must be an integer count (got True)"),
    "total_fraction": (BINARY.replace("MARGIN", "0.1").replace("total = 40 }\nposterior",
                                                               "total = 40.5 }\nposterior"),
                       "data.anterior: total must be an integer count (got 40.5)"),
    "interim_events_nan": (INTERIM.replace("MARGIN", "0.1").replace("events = 20",
                                                                    "events = nan"),
                           "interim.anterior: events must be an integer count (got nan)"),
}

@pytest.mark.parametrize("case", OTHER_SPECS, ids=str)
def test_class12_other_numbers_of_trial_specs(tmp_path, capsys, case):
    text, needle = OTHER_SPECS[case]
    _one_line(tmp_path, capsys, text, needle)


# ---------------------------------------------------------------- Python API
@pytest.mark.parametrize("margin", [1.5, 1.0, math.nan, True])
def test_class12_api_risk_difference_margins(margin):
    with pytest.raises(SpecError, match="margin: must be"):
        analyse_binary(anterior=(3, 10), posterior=(4, 10), margin=margin)
    with pytest.raises(SpecError, match="margin: must be"):
        DecisionRule(margin)


@pytest.mark.parametrize("kwargs", [{"n": 1}, {"n": True}, {"before_mean": True},
                                    {"after_sd": math.nan}, {"n": 10**10}])
def test_class12_api_arm_summary(kwargs):
    values = {"n": 10, "before_mean": 6.0, "before_sd": 1.0, "after_mean": 1.0,
              "after_sd": 1.0, **kwargs}
    with pytest.raises(DataError, match=f"arm: {next(iter(kwargs))} "):
        ArmSummary(**values)


@pytest.mark.parametrize("value", [True, math.nan])
def test_class12_api_patient_rows_and_estimates(value):
    import pandas as pd

    frame = pd.DataFrame({"arm": ["anterior"] * 2 + ["posterior"] * 2,
                          "baseline": [6.0, 7.0, 6.5, value], "followup": [1.0, 2.0, 1.0, 2.0]})
    with pytest.raises(DataError, match="row 4, column 'baseline'"):
        check_patient_frame(frame)
    with pytest.raises(SpecError, match=r"estimates\[0\]"):
        random_effects_meta([value], [0.2], priors={})
    with pytest.raises(SpecError, match="Beta prior 'a'"):
        BetaPrior(value, 1.0)
