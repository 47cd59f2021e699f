"""Acceptance tests of ``bayes_poem.frequentist`` (the metafor-equivalent reference analyses).

1. Stijnen, Hamza & Ozdemir, Stat Med 2010;29:3046-67, Tables II and III, as
   reproduced by metafor's test suite (tests/test_analysis_example_stijnen2010.r),
   compared by rounding to the published number of decimals.
2. Agreement with ``statsmodels.stats.meta_analysis.combine_effects`` (DL) to 1e-8.
3. Bad input gives a clear error or a stated result, never a crash.
4. Freeman-Tukey / Miller back-transformation on a hand-computed example; Q-profile
   bounds solve their defining equations.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from bayes_poem import load_dataset, load_table
from bayes_poem.errors import BayesPoemError, DataError, SpecError
from bayes_poem.frequentist import (
    RESULT_COLUMNS,
    fixed_effect,
    ft_double_arcsine,
    generalised_q,
    glmm_proportions,
    miller_inverse,
    pool_log_odds_ratios,
    pool_proportions,
    q_profile_ci,
    random_effects,
    subgroup_analysis,
)
from bayes_poem.frequentist.inputs import counts_from
from bayes_poem.frequentist.transforms import proportion_effects


@pytest.fixture(scope="module")
def niel():
    return load_dataset("nielweise2007")


# --------------------------------------------------------------------------------------
# 1. Published figures (Stijnen et al. 2010, Table II / III; verified)
# --------------------------------------------------------------------------------------

GLMM_PUBLISHED = {
    # arm: (mu, SE, tau^2, p, p_lo, p_hi)
    "control": (-3.50, 0.26, 0.81, 0.029, 0.018, 0.048),
    "treated": (-4.81, 0.36, 0.83, 0.008, 0.004, 0.016),
}
NORMAL_PUBLISHED = {
    "control": (-3.30, 0.24, 0.663, 0.036, 0.023, 0.055),
    "treated": (-4.26, 0.26, 0.393, 0.014, 0.008, 0.023),
}


@pytest.fixture(scope="module")
def glmm_fits(niel):
    return {arm: glmm_proportions(niel, subgroup=arm) for arm in GLMM_PUBLISHED}


@pytest.mark.parametrize("arm", sorted(GLMM_PUBLISHED))
def test_binomial_normal_glmm_reproduces_table_ii(glmm_fits, arm):
    mu, se, tau2, p, lo, hi = GLMM_PUBLISHED[arm]
    fit = glmm_fits[arm]
    assert round(fit.estimate, 2) == mu
    assert round(fit.se, 2) == se
    assert round(fit.tau2, 2) == tau2
    assert round(fit.back_estimate, 3) == p
    assert round(fit.back_ci_lower, 3) == lo
    assert round(fit.back_ci_upper, 3) == hi
    assert fit.k == 18 and fit.converged and fit.note == ""


@pytest.mark.parametrize("arm", sorted(NORMAL_PUBLISHED))
def test_normal_normal_logit_reml_reproduces_table_ii(niel, arm):
    mu, se, tau2, p, lo, hi = NORMAL_PUBLISHED[arm]
    res = pool_proportions(niel, subgroup=arm, scale="logit", method="REML")
    assert round(res.estimate, 2) == mu
    assert round(res.se, 2) == se
    assert round(res.tau2, 3) == tau2
    assert round(res.back_estimate, 3) == p
    assert round(res.back_ci_lower, 3) == lo
    assert round(res.back_ci_upper, 3) == hi
    # 0.5 added to the cells of the studies with a zero cell, and said so
    n_zero = int((niel.for_outcome("catheter_infection").with_subgroups([arm])
                  .frame["events"] == 0).sum())
    assert res.effects.corrected.sum() == n_zero > 0
    assert res.effects.add == 0.5 and res.effects.to == "only0"
    assert f"0.5 added to each cell of {n_zero} stud" in res.note


def test_normal_normal_log_odds_ratio_reproduces_table_iii(niel):
    res = pool_log_odds_ratios(niel, treated="treated", control="control", method="REML")
    assert res.effects.dropped == ("15",)  # the double-zero trial
    assert res.k == 17
    assert round(res.estimate, 3) == -0.980
    assert round(res.se, 3) == 0.243
    assert round(math.sqrt(res.tau2), 2) == 0.19
    assert round(res.back_estimate, 2) == 0.38
    assert round(res.back_ci_lower, 2) == 0.23
    assert round(res.back_ci_upper, 2) == 0.60
    # 0.5 added to all four cells of trials with a zero cell
    a = [0, 1, 2, 0, 5, 1, 1, 1, 1, 1, 0, 0, 3, 6, 0, 1, 4]
    c = [3, 3, 9, 7, 6, 4, 3, 2, 19, 2, 7, 1, 5, 11, 1, 3, 1]
    assert int(res.effects.corrected.sum()) == sum(x == 0 for x in a + c)
    assert "dropped" in res.note and "15" in res.note


def test_result_frames_are_tidy(niel):
    res = pool_proportions(niel, subgroup="control")
    frame = res.to_frame()
    assert tuple(frame.columns) == RESULT_COLUMNS
    assert list(frame["scale"]) == ["logit", "proportion"]
    assert frame.loc[1, "estimate"] == pytest.approx(res.back_estimate)
    glmm = glmm_proportions(niel, subgroup="control").to_frame()
    assert tuple(glmm.columns) == RESULT_COLUMNS
    assert list(glmm["method"]) == ["GLMM-ML", "GLMM-ML"]


# --------------------------------------------------------------------------------------
# 2. Agreement with statsmodels combine_effects (DerSimonian-Laird) to 1e-8
# --------------------------------------------------------------------------------------

def _niel_logits(arm: str) -> tuple[np.ndarray, np.ndarray]:
    counts = counts_from(load_dataset("nielweise2007"), subgroup=arm)
    eff = proportion_effects(counts, "logit")
    return eff.yi, eff.vi


def _inputs():
    rng = np.random.default_rng(20240601)
    cases = {"niel_control_logit": _niel_logits("control"),
             "niel_treated_logit": _niel_logits("treated")}
    log_or = pool_log_odds_ratios(load_dataset("nielweise2007")).effects
    cases["niel_log_or"] = (log_or.yi, log_or.vi)
    cases["homogeneous_tau2_zero"] = (np.array([0.10, 0.12, 0.09, 0.11]),
                                      np.array([0.04, 0.05, 0.03, 0.06]))
    cases["two_studies"] = (np.array([-1.0, 1.5]), np.array([0.2, 0.3]))
    cases["random_k10"] = (rng.normal(0.3, 0.6, 10), rng.uniform(0.02, 0.5, 10))
    cases["random_k25"] = (rng.normal(-2.0, 1.0, 25), rng.uniform(0.05, 1.5, 25))
    return cases


@pytest.mark.parametrize("name", sorted(_inputs()))
def test_dl_agrees_with_statsmodels(name):
    yi, vi = _inputs()[name]
    with np.errstate(invalid="ignore"):  # statsmodels takes sqrt of negative tau^2
        sm = combine_effects(yi, vi, method_re="dl")
        ci_sm = sm.conf_int(use_t=False)  # (fixed, random, fixed wls, random wls)
    re = random_effects(yi, vi, method="DL")
    fe = fixed_effect(yi, vi)
    tol = 1e-8
    assert fe.estimate == pytest.approx(sm.mean_effect_fe, abs=tol, rel=tol)
    assert fe.se == pytest.approx(sm.sd_eff_w_fe, abs=tol, rel=tol)
    assert (fe.ci_lower, fe.ci_upper) == pytest.approx(ci_sm[0], abs=tol, rel=tol)
    assert re.q == pytest.approx(sm.q, abs=tol, rel=tol)
    assert fe.q == pytest.approx(sm.q, abs=tol, rel=tol)
    if sm.tau2 >= 0:
        assert re.tau2 == pytest.approx(sm.tau2, abs=tol, rel=tol)
        assert re.estimate == pytest.approx(sm.mean_effect_re, abs=tol, rel=tol)
        assert re.se == pytest.approx(sm.sd_eff_w_re, abs=tol, rel=tol)
        assert (re.ci_lower, re.ci_upper) == pytest.approx(ci_sm[1], abs=tol, rel=tol)
        assert re.i2 / 100 == pytest.approx(sm.i2, abs=tol)
        assert fe.i2 / 100 == pytest.approx(sm.i2, abs=tol)
    else:
        # statsmodels does not truncate the DL moment estimate at 0 (DerSimonian & Laird
        # and metafor do): then tau^2 = 0, I^2 = 0 and the random-effects result is the
        # fixed-effect one.
        assert sm.q < len(yi) - 1
        assert re.tau2 == 0.0 and re.i2 == 0.0 and fe.i2 == 0.0
        assert re.estimate == pytest.approx(sm.mean_effect_fe, abs=tol, rel=tol)
        assert re.se == pytest.approx(sm.sd_eff_w_fe, abs=tol, rel=tol)


def test_statsmodels_cases_cover_positive_tau2():
    positive = [name for name, (yi, vi) in _inputs().items()
                if random_effects(yi, vi, method="DL").tau2 > 0]
    assert {"niel_control_logit", "niel_treated_logit"} <= set(positive)
    assert len(positive) >= 4


# --------------------------------------------------------------------------------------
# 3. Bad input: a clear error or a stated result
# --------------------------------------------------------------------------------------

def test_total_zero_rejected_by_loader_and_by_array_entry_points():
    frame = pd.DataFrame({"study": ["a", "b"], "outcome": "x", "events": [1, 0],
                          "total": [10, 0]})
    with pytest.raises(DataError, match="total is 0"):
        load_table(frame)
    for entry in (pool_proportions, glmm_proportions, fixed_effect_from_counts):
        with pytest.raises(DataError, match=r"entry 2 \(study '2'\): total is 0"):
            entry([1, 0], [10, 0])
    with pytest.raises(DataError, match="total is 0"):
        pool_log_odds_ratios([1, 2], [10, 0], [1, 1], [10, 10])


def fixed_effect_from_counts(events, totals):
    return pool_proportions(events, totals, method="FE")


@pytest.mark.parametrize(("events", "totals", "message"), [
    ([1, 2], [10], "2 events but 1 totals"),
    ([1, -2], [10, 10], "negative"),
    ([1, 2.5], [10, 10], "not an integer count"),
    ([1, float("nan")], [10, 10], "missing or not finite"),
    ([11, 2], [10, 10], r"events \(11\) > total \(10\)"),
    ([], [], "no studies"),
    (["a", "b"], [10, 10], "must be numbers"),
])
def test_bad_arrays_give_data_errors(events, totals, message):
    with pytest.raises(DataError, match=message):
        pool_proportions(events, totals)


def test_all_zero_events_give_a_stated_result_or_a_clear_error():
    events, totals = [0, 0, 0], [10, 20, 30]
    res = pool_proportions(events, totals, scale="logit")
    assert res.effects.corrected.all()
    expected_yi = np.log(0.5 / (np.array(totals) + 0.5))
    np.testing.assert_allclose(res.effects.yi, expected_yi)
    assert np.isfinite(res.estimate) and 0 < res.back_estimate < 0.05
    assert "0.5 added to each cell of 3 studies" in res.note
    # without a correction the logit is infinite: say so
    with pytest.raises(DataError, match="logit of 0 or 1 events/total is infinite.*'1', '2', "
                                        "'3'.*continuity correction"):
        pool_proportions(events, totals, to="none")
    # the double arcsine needs no correction
    ft = pool_proportions(events, totals, scale="double_arcsine")
    assert ft.back_estimate == 0.0 and not ft.effects.corrected.any()
    # the GLMM has no finite ML estimate: a clear DataError
    with pytest.raises(DataError, match="no events in every study.*infinite"):
        glmm_proportions(events, totals)


def test_single_study_states_that_tau2_is_not_estimable():
    res = pool_proportions([3], [20], method="REML")
    assert res.k == 1 and res.model == "fixed" and res.method == "FE"
    assert math.isnan(res.tau2) and math.isnan(res.pooled.pi_lower)
    assert "single study" in res.note and "fixed-effect result returned" in res.note
    assert res.estimate == pytest.approx(math.log(3 / 17))
    assert res.se == pytest.approx(math.sqrt(1 / 3 + 1 / 17))
    frame = res.to_frame()
    assert frame["tau2"].isna().all() and frame["note"].str.contains("single study").all()
    glmm = glmm_proportions([3], [20])
    assert math.isnan(glmm.tau2) and "single study" in glmm.note
    assert glmm.estimate == pytest.approx(math.log(3 / 17), abs=1e-10)
    assert glmm.se == pytest.approx(math.sqrt(1 / 3 + 1 / 17), abs=1e-10)


def test_subgroup_with_a_single_study():
    frame = pd.DataFrame({
        "study": ["s1", "s2", "s3", "s1"],
        "subgroup": ["a", "a", "a", "b"],
        "outcome": "success",
        "events": [8, 15, 9, 4],
        "total": [10, 20, 12, 9],
    })
    res = subgroup_analysis(load_table(frame))
    single = res["b"]
    assert single.k == 1 and single.model == "fixed" and math.isnan(single.tau2)
    assert "one study" in single.note
    assert np.isfinite(res.q_between) and res.q_between_df == 1
    assert len(res.pairwise) == 1 and np.isfinite(res.pairwise.loc[0, "p_value"])
    # only one subgroup, and it has one study
    only = subgroup_analysis(load_table(frame[frame["subgroup"] == "b"]))
    assert math.isnan(only.q_between) and "one subgroup" in only.note
    assert only.pairwise.empty
    assert only.overall is not None and only.overall.k == 1


def test_user_errors_are_bayes_poem_errors(niel):
    with pytest.raises(SpecError, match="subgroups treated, control"):
        pool_proportions(niel)
    with pytest.raises(SpecError, match="scale"):
        pool_proportions([1, 2], [10, 10], scale="probit")
    with pytest.raises(SpecError, match="method"):
        pool_proportions([1, 2], [10, 10], method="PM")
    with pytest.raises(SpecError, match="level"):
        pool_proportions([1, 2], [10, 10], level=95)
    with pytest.raises(SpecError, match="to"):
        pool_proportions([1, 2], [10, 10], to="some")
    with pytest.raises(DataError, match="sampling variance"):
        random_effects([0.1, 0.2], [0.1, 0.0])
    with pytest.raises(BayesPoemError):
        subgroup_analysis(load_dataset("sed_synthetic"))  # two outcomes, none chosen


# --------------------------------------------------------------------------------------
# 4. Freeman-Tukey / Miller on a hand-computed example; Q-profile defining equations
# --------------------------------------------------------------------------------------

def test_freeman_tukey_hand_computed():
    # x = 3, n = 10: asin(sqrt(3/11)) = asin(0.5222329678670935) = 0.5494672447576273,
    # asin(sqrt(4/11)) = asin(0.6030226891555273) = 0.6472848480156526,
    # t = (0.5494672447576273 + 0.6472848480156526) / 2 = 0.5983760463866399
    assert ft_double_arcsine(3, 10) == pytest.approx(0.5983760463866399, abs=1e-15)
    eff = proportion_effects(counts_from([3], [10]), "double_arcsine")
    assert eff.vi[0] == pytest.approx(1 / 42, abs=1e-15)  # 1 / (4 n + 2)
    assert not eff.corrected.any() and eff.add == 0.0  # metafor: no correction for PFT
    # Miller: sin 2t = 0.9308572676771109, cos 2t > 0,
    # p = (1 - sqrt(1 - (s + (s - 1/s)/10)^2)) / 2 = 0.3 (Miller's inverse is exact)
    assert float(miller_inverse(0.5983760463866399, 10)) == pytest.approx(0.3, abs=1e-14)


def test_miller_back_transform_uses_the_harmonic_mean():
    # t = 0.45 with n = (10, 20): harmonic mean 2 / (1/10 + 1/20) = 13.3333...
    # s = sin 0.9 = 0.7833269096274834, s - 1/s = -0.49327930383141194,
    # s + (s - 1/s)/n = 0.7463309618401275, cos 0.9 > 0,
    # p = (1 - sqrt(1 - 0.7463309618401275^2)) / 2 = 0.16721249445074182
    assert float(miller_inverse(0.45, 2 / (1 / 10 + 1 / 20))) == pytest.approx(
        0.16721249445074182, abs=1e-14)
    res = pool_proportions([3, 5], [10, 20], scale="double_arcsine", method="FE")
    n_hm = 2 / (1 / 10 + 1 / 20)
    assert res.back_estimate == pytest.approx(float(miller_inverse(res.estimate, n_hm)),
                                              abs=1e-15)
    # clipping outside the attainable range, as metafor's transf.ipft.hm
    assert float(miller_inverse(-0.1, 10)) == 0.0
    assert float(miller_inverse(1.7, 10)) == 1.0


def _qprofile_cases():
    yi, vi = _niel_logits("control")
    yt, vt = _niel_logits("treated")
    rng = np.random.default_rng(7)
    return {
        "niel_control": (yi, vi),
        "niel_treated": (yt, vt),
        "heterogeneous_k6": (np.array([-1.2, 0.4, 1.9, -0.3, 2.5, 0.8]),
                             np.array([0.1, 0.2, 0.15, 0.3, 0.25, 0.12])),
        "random_k12": (rng.normal(0, 0.7, 12), rng.uniform(0.05, 0.4, 12)),
    }


@pytest.mark.parametrize("name", sorted(_qprofile_cases()))
@pytest.mark.parametrize("level", [0.95, 0.90])
def test_q_profile_bounds_solve_their_defining_equations(name, level):
    yi, vi = _qprofile_cases()[name]
    df = len(yi) - 1
    ci = q_profile_ci(yi, vi, level)
    crit_upper = stats.chi2.ppf(1 - (1 - level) / 2, df)
    crit_lower = stats.chi2.ppf((1 - level) / 2, df)
    if ci.lower > 0:
        assert generalised_q(ci.lower, yi, vi) == pytest.approx(crit_upper, abs=1e-6)
    else:  # truncated at 0 because Q(0) is already below the upper quantile
        assert generalised_q(0.0, yi, vi) <= crit_upper
    assert ci.upper > ci.lower
    assert generalised_q(ci.upper, yi, vi) == pytest.approx(crit_lower, abs=1e-6)
    # the REML estimate lies inside
    assert ci.lower <= random_effects(yi, vi).tau2 <= ci.upper


def test_q_profile_ci_coverage_is_the_chi_square_coverage():
    """Under the normal-normal model, tau2 in CI <=> Q(tau2) between the quantiles."""
    rng = np.random.default_rng(11)
    tau2, k, covered = 0.3, 8, []
    for _ in range(300):
        vi = rng.uniform(0.05, 0.5, k)
        yi = rng.normal(0.0, np.sqrt(vi + tau2))
        ci = q_profile_ci(yi, vi, 0.95)
        inside = ci.lower <= tau2 <= ci.upper
        q_true = generalised_q(tau2, yi, vi)
        assert inside == (stats.chi2.ppf(0.025, k - 1) <= q_true <= stats.chi2.ppf(0.975, k - 1))
        covered.append(inside)
    assert abs(np.mean(covered) - 0.95) < 3 * math.sqrt(0.95 * 0.05 / 300)


def test_q_profile_empty_interval_is_stated():
    yi = np.array([0.100, 0.101, 0.099, 0.100, 0.1005])
    vi = np.array([0.5, 0.4, 0.6, 0.5, 0.45])
    ci = q_profile_ci(yi, vi)
    assert (ci.lower, ci.upper) == (0.0, 0.0) and "empty" in ci.note
