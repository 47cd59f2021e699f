"""Trials, one continuous outcome: arm summaries (closed form) and patient-level models.

The patient-level models are built once per module (the model cache) and refitted
with new data without recompiling.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from bayes_poem import DataError, SpecError
from bayes_poem.priors import Prior
from bayes_poem.sampling import SamplerSettings
from bayes_poem.trials import ArmSummary, analyse_arm_summaries, analyse_patient_level
from bayes_poem.trials.continuous import patient_model
from bayes_poem.trials.synthetic import SYNTHETIC_ECKARDT_SUMMARIES, synthetic_eckardt_patients

ANT = {"n": 31, "before_mean": 6.3, "before_sd": 1.4, "after_mean": 0.8, "after_sd": 0.7}
POST = {"n": 32, "before_mean": 6.1, "before_sd": 1.2, "after_mean": 0.6, "after_sd": 0.7}
QUICK = SamplerSettings(draws=600, tune=600, chains=2, seed=8)


def test_change_standard_error_uses_the_stated_correlation():
    arm = ArmSummary(**ANT)
    for rho in (0.0, 0.5, 0.8):
        expected = math.sqrt((1.4**2 + 0.7**2 - 2 * rho * 1.4 * 0.7) / 31)
        assert arm.change_se(rho) == pytest.approx(expected)
    result = analyse_arm_summaries(anterior=ANT, posterior=POST, margin=1.0, correlation=0.3)
    assert "pre-post correlation 0.3 assumed" in result.assumptions[0]
    assert result.arms["correlation"].tolist() == [0.3, 0.3]


@pytest.mark.parametrize("better", ["lower", "higher"])
@pytest.mark.parametrize("margin", [0.2, 0.5, 1.0])
def test_arm_summaries_draws_match_the_normal_posterior(better, margin):
    n = 40_000
    result = analyse_arm_summaries(anterior=ANT, posterior=POST, margin=margin, better=better,
                                   draws=n, seed=3)
    se_a, se_p = ArmSummary(**ANT).change_se(0.5), ArmSummary(**POST).change_se(0.5)
    diff = (0.6 - 6.1) - (0.8 - 6.3)
    sd = math.hypot(se_a, se_p)
    improvement = -diff if better == "lower" else diff
    exact = norm.sf(-margin, loc=improvement, scale=sd)
    assert result.exact_p_noninferior == pytest.approx(exact)
    assert abs(result.p_noninferior - exact) <= 4 * math.sqrt(exact * (1 - exact) / n) + 1e-12
    table = result.summary().set_index("quantity")
    assert table.loc["difference", "mean"] == pytest.approx(diff, abs=4 * sd / math.sqrt(n))
    assert table.loc["improvement_difference", "mean"] == pytest.approx(
        -table.loc["difference", "mean"] if better == "lower" else table.loc["difference",
                                                                             "mean"])
    hypothesis = result.noninferiority()["hypothesis"].iloc[0]
    assert hypothesis == (f"P(change_posterior - change_anterior < +{margin:g})"
                          if better == "lower"
                          else f"P(change_posterior - change_anterior > -{margin:g})")


def test_normal_prior_on_the_change_shrinks():
    flat = analyse_arm_summaries(anterior=ANT, posterior=POST, margin=1.0)
    tight = analyse_arm_summaries(anterior=ANT, posterior=POST, margin=1.0,
                                  prior=Prior("Normal", {"mu": 0.0, "sigma": 0.5}))
    assert abs(tight.summary()["mean"].iloc[0]) < abs(flat.summary()["mean"].iloc[0])
    with pytest.raises(SpecError, match="dist 'StudentT' is not allowed for 'change'"):
        analyse_arm_summaries(anterior=ANT, posterior=POST, margin=1.0,
                              prior={"dist": "StudentT", "nu": 3, "sigma": 1})


def test_synthetic_examples_are_labelled():
    result = analyse_arm_summaries(anterior=SYNTHETIC_ECKARDT_SUMMARIES["anterior"],
                                   posterior=SYNTHETIC_ECKARDT_SUMMARIES["posterior"],
                                   margin=1.0, synthetic=True)
    assert "SYNTHETIC data" in result.assumptions
    assert bool(result.noninferiority()["synthetic_data"].iloc[0])


@pytest.mark.parametrize(("anterior", "kwargs", "error", "message"), [
    ({**ANT, "before_sd": 0.0}, {}, DataError, "before_sd must be > 0"),
    ({**ANT, "after_sd": -1.0}, {}, DataError, "after_sd must be > 0"),
    ({**ANT, "n": 0}, {}, DataError, "n is 0: an arm with no patients"),
    ({**ANT, "n": 2.5}, {}, DataError, "n must be an integer"),
    ({**ANT, "after_mean": float("nan")}, {}, DataError, "after_mean must be a finite number"),
    ({k: v for k, v in ANT.items() if k != "after_sd"}, {}, DataError, "missing key 'after_sd'"),
    (ANT, {"margin": -1.0}, SpecError, r"margin: must be > 0 \(got -1\)"),
    (ANT, {"better": "smaller"}, SpecError, "better: 'smaller' is not one of higher, lower"),
    (ANT, {"correlation": 1.5}, SpecError, "correlation: must be in"),
])
def test_bad_summaries_raise_one_clear_error(anterior, kwargs, error, message):
    args = {"anterior": anterior, "posterior": POST, "margin": 1.0, **kwargs}
    with pytest.raises(error, match=message):
        analyse_arm_summaries(**args)


def test_zero_standard_error_is_reported():
    same = {**ANT, "after_sd": 1.4}
    with pytest.raises(DataError, match="standard error of the change is 0"):
        analyse_arm_summaries(anterior=same, posterior=POST, margin=1.0, correlation=1.0)


# ---------------------------------------------------------------- patient level
@pytest.fixture(scope="module")
def patients():
    return synthetic_eckardt_patients(seed=2018)


@pytest.fixture(scope="module")
def normal_fit(patients):
    return analyse_patient_level(patients, margin=1.0, settings=QUICK, outcome="eckardt",
                                 synthetic=True)


@pytest.mark.mcmc
def test_patient_level_recovers_the_adjusted_difference(patients, normal_fit):
    """The posterior mean of b_arm is close to the least-squares ANCOVA estimate."""
    x = np.column_stack([np.ones(len(patients)), (patients["arm"] == "posterior").astype(float),
                         patients["baseline"] - patients["baseline"].mean()])
    coef, *_ = np.linalg.lstsq(x, patients["followup"].to_numpy(), rcond=None)
    post = normal_fit.idata.posterior
    assert float(post["b_arm"].mean()) == pytest.approx(coef[1], abs=0.05)
    assert set(post.data_vars) == {"b0", "b_arm", "b_base", "sigma"}
    assert not [d for d in post.dims if "_dim_" in d]
    assert normal_fit.diagnostics.ok, normal_fit.diagnostics.problems
    table = normal_fit.summary().set_index("quantity")
    change_a = float((post["b0"] - patients["baseline"].mean()).mean())
    assert table.loc["change_anterior", "mean"] == pytest.approx(change_a)
    assert normal_fit.idata.posterior.attrs["synthetic_data"] == "true"
    ni = normal_fit.noninferiority().iloc[0]
    assert 0.0 <= ni["mcse"] < 0.05 and ni["method"] == "patient_level_normal"


@pytest.mark.mcmc
def test_patient_level_refits_new_data_without_recompiling(patients, normal_fit):
    model = patient_model("normal", {k: Prior("Normal", {"mu": 0, "sigma": 1})
                                     for k in ("b0", "b_arm", "b_base")}
                          | {"sigma": Prior("Exponential", {"lam": 1.0})})
    compilations = model.compilations
    assert compilations == 1  # compiled once, by the module fixture
    other = synthetic_eckardt_patients(n_anterior=45, n_posterior=40, effect=2.0, seed=9)
    refit = analyse_patient_level(other, margin=1.0, settings=QUICK)
    assert model.compilations == compilations  # the same compiled model, new data
    assert float(refit.idata.posterior["b_arm"].mean()) == pytest.approx(2.0, abs=0.4)


@pytest.mark.mcmc
def test_student_t_resists_outliers():
    data = synthetic_eckardt_patients(seed=5, outliers=4)
    settings = SamplerSettings(draws=500, tune=500, chains=2, seed=4, backend="pymc")
    robust = analyse_patient_level(data, margin=1.0, likelihood="student_t", settings=settings)
    plain = analyse_patient_level(data, margin=1.0, likelihood="normal", settings=settings)
    assert "nu" in robust.draws and robust.method == "patient_level_student_t"
    assert float(robust.draws["nu"].median()) < 10  # heavy tails found
    # outliers inflate the residual SD of the normal model much more
    assert float(plain.idata.posterior["sigma"].mean()) > \
        1.5 * float(robust.idata.posterior["sigma"].mean())


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({"arm": ["anterior"] * 3, "baseline": [1, 2, 3], "followup": [1, 2, 3]}),
     "arm 'posterior' has 0 patient"),
    (pd.DataFrame({"arm": ["anterior", "lateral"], "baseline": [1, 2], "followup": [1, 2]}),
     "row 2, column 'arm': 'lateral' is not one of anterior, posterior"),
    (pd.DataFrame({"arm": ["anterior"], "followup": [1]}), "missing column"),
    (pd.DataFrame({"arm": ["anterior", "posterior"] * 2, "baseline": [1, 2, "x", 4],
                   "followup": [1, 2, 3, 4]}), "row 3, column 'baseline': 'x' is not a number"),
    (pd.DataFrame({"arm": ["anterior", "posterior"] * 2, "baseline": [1, 2, 3, 4],
                   "followup": [2, 2, 2, 2]}), "'followup' has no variation"),
])
def test_bad_patient_data(frame, message):
    with pytest.raises(DataError, match=message):
        analyse_patient_level(frame, margin=1.0, settings=QUICK)


def test_bad_patient_settings():
    data = synthetic_eckardt_patients()
    with pytest.raises(SpecError, match="margin: must be > 0"):
        analyse_patient_level(data, margin=-0.5)
    with pytest.raises(SpecError, match="likelihood: 'cauchy' is not one of normal, student_t"):
        analyse_patient_level(data, margin=1.0, likelihood="cauchy")
    with pytest.raises(SpecError, match="unknown prior name 'beta'"):
        analyse_patient_level(data, margin=1.0, priors={"beta": {"dist": "Normal", "sigma": 1}})
