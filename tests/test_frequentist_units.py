"""Unit tests of the pieces of ``bayes_poem.frequentist``: estimators, corrections,
quadrature, model choice and subgroup contrasts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, stats
from scipy.special import expit, gammaln

from bayes_poem import load_dataset, load_table
from bayes_poem.errors import SpecError
from bayes_poem.frequentist import (
    PAIRWISE_COLUMNS,
    STUDY_COLUMNS,
    ModelChoice,
    fixed_effect,
    generalised_q,
    glmm_loglik,
    glmm_proportions,
    pool_by_rule,
    pool_log_odds_ratios,
    pool_proportions,
    q_profile_ci,
    random_effects,
    subgroup_analysis,
    tau2_dl,
    tau2_ml,
    tau2_reml,
)
from bayes_poem.frequentist.inputs import counts_from
from bayes_poem.frequentist.transforms import proportion_effects

Y = np.array([-1.2, 0.4, 1.9, -0.3, 2.5, 0.8])
V = np.array([0.1, 0.2, 0.15, 0.3, 0.25, 0.12])


def _loglik(tau2, y, v, reml):
    w = 1 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    ll = -0.5 * np.sum(np.log(v + tau2)) - 0.5 * np.sum(w * (y - mu) ** 2)
    return ll - 0.5 * np.log(np.sum(w)) if reml else ll


@pytest.mark.parametrize(("estimator", "reml"), [(tau2_reml, True), (tau2_ml, False)])
def test_reml_and_ml_maximise_their_likelihoods(estimator, reml):
    est = estimator(Y, V)
    assert est.converged and est.tau2 > 0
    best = optimize.minimize_scalar(lambda t: -_loglik(t, Y, V, reml), bounds=(0, 20),
                                    method="bounded", options={"xatol": 1e-12})
    assert est.tau2 == pytest.approx(best.x, abs=1e-6)
    # metafor's own threshold (1e-5) gives the same root to that precision
    assert estimator(Y, V, threshold=1e-5).tau2 == pytest.approx(est.tau2, abs=1e-5)


def test_reml_returns_zero_when_the_maximum_is_on_the_boundary():
    y = np.array([0.10, 0.12, 0.09, 0.11])
    v = np.array([0.04, 0.05, 0.03, 0.06])
    assert tau2_reml(y, v).tau2 == 0.0
    assert tau2_ml(y, v).tau2 == 0.0
    assert tau2_dl(y, v).tau2 == 0.0
    re = random_effects(y, v)
    fe = fixed_effect(y, v)
    assert re.estimate == pytest.approx(fe.estimate) and re.se == pytest.approx(fe.se)
    assert (re.pi_lower, re.pi_upper) == pytest.approx((re.ci_lower, re.ci_upper))


def test_dl_formula_and_i2_definitions():
    w = 1 / V
    q = np.sum(w * (Y - np.sum(w * Y) / w.sum()) ** 2)
    c = w.sum() - np.sum(w**2) / w.sum()
    assert tau2_dl(Y, V).tau2 == pytest.approx((q - 5) / c)
    dl = random_effects(Y, V, method="DL")
    assert dl.i2 == pytest.approx(100 * (q - 5) / q)  # DL: tau2-based I^2 = Q-based I^2
    assert dl.h2 == pytest.approx(q / 5)
    reml = random_effects(Y, V, method="REML")
    s2 = 5 * w.sum() / (w.sum() ** 2 - np.sum(w**2))
    assert reml.i2 == pytest.approx(100 * reml.tau2 / (reml.tau2 + s2))
    assert reml.q_pvalue == pytest.approx(stats.chi2.sf(q, 5))


def test_prediction_interval_is_metafor_predict():
    re = random_effects(Y, V, method="REML", level=0.9)
    z = stats.norm.ppf(0.95)
    half = z * math.sqrt(re.se**2 + re.tau2)
    assert (re.pi_lower, re.pi_upper) == pytest.approx((re.estimate - half, re.estimate + half))
    assert (re.ci_lower, re.ci_upper) == pytest.approx((re.estimate - z * re.se,
                                                        re.estimate + z * re.se))
    assert re.weights.sum() == pytest.approx(100)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-3, 3), st.floats(0.01, 2)), min_size=2, max_size=15))
def test_pooling_properties(pairs):
    y = np.array([p[0] for p in pairs])
    v = np.array([p[1] for p in pairs])
    for method in ("DL", "REML", "ML"):
        res = random_effects(y, v, method=method)
        assert y.min() - 1e-9 <= res.estimate <= y.max() + 1e-9
        assert res.tau2 >= 0 and res.se > 0 and 0 <= res.i2 < 100
    ci = q_profile_ci(y, v)
    df = y.size - 1
    if ci.upper > 0:
        assert generalised_q(ci.upper, y, v) == pytest.approx(stats.chi2.ppf(0.025, df),
                                                             abs=1e-6)
    if ci.lower > 0:
        assert generalised_q(ci.lower, y, v) == pytest.approx(stats.chi2.ppf(0.975, df),
                                                             abs=1e-6)


# ----- continuity correction and scales ------------------------------------------------

def test_continuity_correction_options():
    counts = counts_from([0, 3, 10], [10, 10, 10])
    only0 = proportion_effects(counts, "logit")
    assert list(only0.corrected) == [True, False, True]
    assert only0.yi[1] == pytest.approx(math.log(3 / 7))
    assert only0.yi[0] == pytest.approx(math.log(0.5 / 10.5))
    assert only0.vi[0] == pytest.approx(1 / 0.5 + 1 / 10.5)
    every = proportion_effects(counts, "logit", to="all", add=0.25)
    assert every.corrected.all() and every.yi[1] == pytest.approx(math.log(3.25 / 7.25))
    if0all = proportion_effects(counts, "logit", to="if0all")
    assert if0all.corrected.all()
    none_needed = proportion_effects(counts_from([2, 3], [10, 10]), "logit", to="if0all")
    assert not none_needed.corrected.any()
    raw = proportion_effects(counts, "proportion")
    assert raw.yi[0] == pytest.approx(0.5 / 11) and raw.vi[1] == pytest.approx(0.3 * 0.7 / 10)
    with pytest.raises(SpecError, match="add"):
        proportion_effects(counts, "logit", add=-1)


def test_proportion_scale_matches_manual_fixed_effect():
    res = pool_proportions([3, 6], [10, 20], scale="proportion", method="FE")
    w = np.array([10 / 0.21, 20 / 0.21])
    assert res.estimate == pytest.approx(0.3)
    assert res.se == pytest.approx(1 / math.sqrt(w.sum()))
    assert res.back_estimate == res.estimate


def test_log_odds_ratio_arrays_equal_table_and_drop00_option():
    table = load_dataset("nielweise2007")
    from_table = pool_log_odds_ratios(table)
    frame = table.frame
    t = frame[frame["subgroup"] == "treated"]
    c = frame[frame["subgroup"] == "control"]
    from_arrays = pool_log_odds_ratios(t["events"], t["total"], c["events"], c["total"],
                                       labels=t["study"])
    assert from_arrays.estimate == pytest.approx(from_table.estimate, abs=1e-14)
    kept = pool_log_odds_ratios(table, drop00=False)
    assert kept.k == 18 and kept.effects.dropped == ()


def test_studies_frame():
    res = pool_proportions(load_dataset("nielweise2007"), subgroup="control")
    studies = res.studies_frame()
    assert tuple(studies.columns) == STUDY_COLUMNS
    assert len(studies) == 18 and studies["weight"].sum() == pytest.approx(100)
    assert studies["corrected"].sum() == 1


# ----- GLMM ---------------------------------------------------------------------------

def test_adaptive_quadrature_matches_direct_integration():
    x = np.array([0.0, 3.0, 19.0, 1.0])
    n = np.array([105.0, 117.0, 103.0, 58.0])
    mu, tau = -3.4, 0.9

    def study_lik(xi, ni):
        def f(u):
            eta = mu + u
            return math.exp(gammaln(ni + 1) - gammaln(xi + 1) - gammaln(ni - xi + 1)
                            + xi * eta - ni * np.logaddexp(0, eta)) * stats.norm.pdf(u, 0, tau)
        return integrate.quad(f, -12 * tau, 12 * tau, epsabs=1e-300, epsrel=1e-12, limit=400)[0]

    direct = sum(math.log(study_lik(xi, ni)) for xi, ni in zip(x, n, strict=True))
    assert glmm_loglik(mu, tau, x, n, n_nodes=30) == pytest.approx(direct, abs=1e-9)
    # 7 nodes (metafor/lme4 default): small approximation error
    assert glmm_loglik(mu, tau, x, n, n_nodes=7) == pytest.approx(direct, abs=1e-3)
    at_zero = np.sum(gammaln(n + 1) - gammaln(x + 1) - gammaln(n - x + 1)
                     + x * mu - n * np.logaddexp(0, mu))
    assert glmm_loglik(mu, 0.0, x, n) == pytest.approx(at_zero)


def test_glmm_is_stable_in_the_number_of_nodes():
    table = load_dataset("nielweise2007")
    seven = glmm_proportions(table, subgroup="control")
    many = glmm_proportions(table, subgroup="control", n_nodes=20)
    assert seven.estimate == pytest.approx(many.estimate, abs=2e-3)
    assert seven.se == pytest.approx(many.se, abs=2e-3)
    assert seven.tau2 == pytest.approx(many.tau2, abs=2e-3)


def test_glmm_with_homogeneous_data_reports_tau2_zero():
    res = glmm_proportions([10, 20, 30, 40], [100, 200, 300, 400])
    assert res.tau2 == 0.0 and "boundary" in res.note
    assert res.estimate == pytest.approx(math.log(0.1 / 0.9), abs=1e-8)
    assert res.se == pytest.approx(1 / math.sqrt(1000 * 0.09), rel=1e-6)


# ----- model choice and subgroups -------------------------------------------------------

def test_model_choice_rules():
    # Q = 20 on 4 df: I^2 = 80%, p = 0.0005
    assert ModelChoice("i2", threshold=50).choose(20.0, 4)[0] == "random"
    assert ModelChoice("i2", threshold=85).choose(20.0, 4)[0] == "fixed"
    assert ModelChoice("q_pvalue", alpha=0.10).choose(20.0, 4)[0] == "random"
    assert ModelChoice("q_pvalue", alpha=0.10).choose(5.0, 4)[0] == "fixed"  # p = 0.29
    assert ModelChoice("random").choose(0.0, 4)[0] == "random"
    assert ModelChoice("fixed").choose(99.0, 4)[0] == "fixed"
    assert ModelChoice("random").choose(0.0, 0) == ("fixed", "one study: fixed-effect model")
    model, reason = ModelChoice().choose(20.0, 4)
    assert reason == "I^2 = 80.0% > 50%: random-effects model"
    with pytest.raises(SpecError, match="rule"):
        ModelChoice("aic")
    with pytest.raises(SpecError, match="threshold"):
        ModelChoice("i2", threshold=150)


def test_pool_by_rule_uses_the_chosen_model():
    table = load_dataset("nielweise2007")
    res = pool_by_rule(table, subgroup="control", choice="i2")  # I^2 ~ 76%
    assert res.model == "random" and "random-effects model" in res.note
    fixed = pool_by_rule(table, subgroup="control", choice=ModelChoice("i2", threshold=90))
    assert fixed.model == "fixed" and fixed.method == "FE"


def _two_subgroup_table():
    rows = [("s1", "a", 8, 10), ("s2", "a", 15, 20), ("s3", "a", 9, 12), ("s4", "a", 30, 33),
            ("s1", "b", 4, 9), ("s2", "b", 5, 11), ("s5", "b", 7, 10)]
    frame = pd.DataFrame(rows, columns=["study", "subgroup", "events", "total"])
    frame["outcome"] = "success"
    return load_table(frame)


def test_subgroup_test_and_pairwise_difference_by_hand():
    table = _two_subgroup_table()
    res = subgroup_analysis(table, choice="fixed")
    a, b = res["a"], res["b"]
    w = np.array([1 / a.se**2, 1 / b.se**2])
    est = np.array([a.estimate, b.estimate])
    mean = np.sum(w * est) / w.sum()
    assert res.q_between == pytest.approx(np.sum(w * (est - mean) ** 2))
    assert res.q_between_pvalue == pytest.approx(stats.chi2.sf(res.q_between, 1))
    row = res.pairwise.iloc[0]
    assert tuple(res.pairwise.columns) == PAIRWISE_COLUMNS
    pa, pb = expit(a.estimate), expit(b.estimate)
    se = math.hypot(pa * (1 - pa) * a.se, pb * (1 - pb) * b.se)
    assert row["difference"] == pytest.approx(pa - pb)
    assert row["se"] == pytest.approx(se)
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(abs((pa - pb) / se)))
    # the overall analysis sums subgroups per study
    assert res.overall.k == 5
    assert res.overall.effects.labels == ("s1", "s2", "s3", "s4", "s5")
    frame = res.to_frame()
    assert list(frame["label"].unique()) == ["a", "b", "overall"]
    assert res.test_frame().loc[0, "n_subgroups"] == 2


def test_subgroup_analysis_on_synthetic_sed_data():
    table = load_dataset("sed_synthetic")
    res = subgroup_analysis(table, outcome="clinical_success",
                            subgroups=["type_iii", "des", "jackhammer"], choice="q_pvalue")
    assert res.subgroups == ["type_iii", "des", "jackhammer"]
    assert len(res.pairwise) == 3 and res.q_between_df == 2
    for result in res.results:
        assert 0 < result.back_ci_lower < result.back_estimate < result.back_ci_upper < 1
    ft = subgroup_analysis(table, outcome="adverse_event", scale="double_arcsine")
    assert np.isfinite(ft.pairwise["se"]).all()


def test_pooled_estimate_frame_and_glmm_search_bound():
    frame = random_effects(Y, V).to_frame()
    assert len(frame) == 1 and {"estimate", "se", "tau2", "i2", "q_pvalue"} <= set(frame)
    assert "weights" not in frame
    # studies with only 0 or only n events: tau runs to the search bound, and it is said
    res = glmm_proportions([0, 10, 0, 12], [10, 10, 15, 12], tau_max=5.0)
    assert not res.converged and "search bound" in res.note
