"""Meta-regression (``bayes_poem.frequentist.metareg`` and the GLMM with moderators).

1. Reproduction of R metafor 3.8-1 on ``dat.debruin2009`` (embedded as the dataset
   ``debruin2009``): REML without and with moderators, Knapp-Hartung, a categorical
   moderator, the binomial-normal GLMM.
2. Checks with constructed data that can fail: DL against a hand computation,
   Knapp-Hartung against statsmodels' WLS, truncation of the scale factor, REML/ML
   against a direct maximisation of their likelihoods, the intercept-only model against
   the package's random-effects pooling, invariance under rescaling a moderator.
3. Bad moderators give one ``DataError`` naming the source, row and column.

Tier 1: no sampling, well under a second per test.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import optimize, stats

from bayes_poem import load_dataset, load_table
from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist import (
    COEFFICIENT_COLUMNS,
    HETEROGENEITY_COLUMNS,
    REGRESSION_STUDY_COLUMNS,
    glmm_metareg_proportions,
    glmm_proportions,
    glmm_study_logliks,
    meta_regression,
    metareg_proportions,
    pool_proportions,
    tau2_dl,
)

# --------------------------------------------------------------------------------------
# Reference values
# --------------------------------------------------------------------------------------

#: de Bruin M et al., Health Psychol 2009;28:668-674, standard-care arms of 13 HIV
#: adherence trials, as distributed in the metadat package (dat.debruin2009) that
#: accompanies metafor. Values COMPUTED with R metafor 3.8-1 (not a publication's
#: figures), logit proportions (measure = "PLO"; no zero cells, so no continuity
#: correction). Copied from the project's reference notes (PUBLISHED.md, section 4a):
#:
#: | model | intercept (SE) | slope (SE) | tau^2 | other |
#: |---|---|---|---|---|
#: | REML, no moderators | -0.1121224728 | | 0.4014393612 | |
#: | REML, mods = ~ scq | -0.5385785898 (0.3872208627) | 0.03089571737 (0.02472637224) | 0.3704158111 | QM = 1.561261898 (p 0.2114805497), QE = 77.71276672, R^2 = 7.728078798 % |  # noqa: E501
#: | same, Knapp-Hartung (test = "knha") | SE 0.3930034189 | SE 0.0250956231 | | F = 1.515655852, p = 0.2439515753 |  # noqa: E501
#: | REML, mods = ~ patients (reference: continuing) | -0.3432920966 (0.2405824176) | 0.5365116294 (0.3693687702) | 0.3533989893 | QM = 2.109783703, R^2 = 11.96703078 % |  # noqa: E501
#: | binomial-normal GLMM (ML), mods = ~ scq | -0.5505749995 (0.3585237189) | 0.03164356539 (0.02292746011) | 0.3092662604 | |  # noqa: E501
METAFOR_DEBRUIN2009 = {
    "reml_none": {"intercept": -0.1121224728, "tau2": 0.4014393612},
    "reml_scq": {"intercept": -0.5385785898, "intercept_se": 0.3872208627,
                 "slope": 0.03089571737, "slope_se": 0.02472637224, "tau2": 0.3704158111,
                 "qm": 1.561261898, "qm_pvalue": 0.2114805497, "qe": 77.71276672,
                 "r2": 7.728078798},
    "knha_scq": {"intercept_se": 0.3930034189, "slope_se": 0.0250956231,
                 "f": 1.515655852, "f_pvalue": 0.2439515753},
    "reml_patients": {"intercept": -0.3432920966, "intercept_se": 0.2405824176,
                      "slope": 0.5365116294, "slope_se": 0.3693687702, "tau2": 0.3533989893,
                      "qm": 2.109783703, "r2": 11.96703078},
    "glmm_scq": {"intercept": -0.5505749995, "intercept_se": 0.3585237189,
                 "slope": 0.03164356539, "slope_se": 0.02292746011, "tau2": 0.3092662604},
}
#: metafor's Fisher-scoring threshold: the reference values are its stopping point
METAFOR_THRESHOLD = 1e-5
REL = 1e-6
REL_GLMM = 1e-3


@pytest.fixture(scope="module")
def debruin():
    return load_dataset("debruin2009")


def _values(fit, knha: bool = False) -> dict[str, float]:
    """The reference quantities of a fit, keyed as in METAFOR_DEBRUIN2009."""
    out = {"intercept": fit.estimates[0], "intercept_se": fit.se[0], "tau2": fit.tau2}
    if len(fit.terms) > 1:
        out.update(slope=fit.estimates[1], slope_se=fit.se[1], qm=fit.qm,
                   qm_pvalue=fit.qm_pvalue)
    if hasattr(fit, "qe"):
        out.update(qe=fit.qe, r2=fit.r2)
    if knha:
        out.update(f=fit.qm, f_pvalue=fit.qm_pvalue)
    return out


def _assert_reference(fit, case: str, rel: float, knha: bool = False) -> None:
    got = _values(fit, knha)
    for key, expected in METAFOR_DEBRUIN2009[case].items():
        assert got[key] == pytest.approx(expected, rel=rel), (case, key, got[key], expected)


# --------------------------------------------------------------------------------------
# 1. metafor 3.8-1 on dat.debruin2009
# --------------------------------------------------------------------------------------

def test_reml_without_moderators_reproduces_metafor(debruin):
    fit = metareg_proportions(debruin, threshold=METAFOR_THRESHOLD)
    assert fit.terms == ("intercept",)
    _assert_reference(fit, "reml_none", REL)
    assert np.isnan(fit.qm) and np.isnan(fit.r2) and fit.qm_df1 == 0


def test_reml_with_scq_reproduces_metafor(debruin):
    fit = metareg_proportions(debruin, moderators=["scq"], threshold=METAFOR_THRESHOLD)
    assert fit.terms == ("intercept", "scq")
    _assert_reference(fit, "reml_scq", REL)
    assert (fit.qm_df1, fit.qe_df, fit.k, fit.test, fit.method) == (1, 11, 13, "z", "REML")
    assert np.isnan(fit.df) and np.isnan(fit.qm_df2) and fit.s2w == 1.0
    assert fit.note == ""  # no zero cells: no continuity correction


def test_knapp_hartung_reproduces_metafor(debruin):
    fit = metareg_proportions(debruin, moderators=["scq"], test="knha",
                              threshold=METAFOR_THRESHOLD)
    _assert_reference(fit, "knha_scq", REL, knha=True)
    # the coefficients and tau^2 are those of the z-test fit
    ref = METAFOR_DEBRUIN2009["reml_scq"]
    assert fit.estimates[1] == pytest.approx(ref["slope"], rel=REL)
    assert fit.tau2 == pytest.approx(ref["tau2"], rel=REL)
    assert (fit.qm_df1, fit.qm_df2, fit.df, fit.qm_distribution) == (1, 11.0, 11.0, "F")
    t = fit.estimates / fit.se
    assert fit.p_values == pytest.approx(2 * stats.t.sf(np.abs(t), 11), rel=1e-12)
    # one coefficient tested: F = t^2
    assert fit.qm == pytest.approx(t[1] ** 2, rel=1e-12)


def test_categorical_patients_reproduces_metafor(debruin):
    fit = metareg_proportions(debruin, moderators=["patients"], categorical=["patients"],
                              threshold=METAFOR_THRESHOLD)
    # metafor's default reference level is the first in sorted order: "continuing"
    assert fit.terms == ("intercept", "patients[starting]")
    assert fit.design.references == {"patients": "continuing"}
    _assert_reference(fit, "reml_patients", REL)


def test_glmm_with_scq_reproduces_metafor(debruin):
    fit = glmm_metareg_proportions(debruin, moderators=["scq"])
    assert fit.terms == ("intercept", "scq") and fit.converged and fit.note == ""
    _assert_reference(fit, "glmm_scq", REL_GLMM)
    # our optimum is at least as high as metafor's (lme4's) on the same likelihood
    frame = debruin.frame
    x, n = frame["events"].to_numpy(float), frame["total"].to_numpy(float)
    ref = METAFOR_DEBRUIN2009["glmm_scq"]
    at_ref = glmm_study_logliks(fit.design.X @ [ref["intercept"], ref["slope"]],
                                np.sqrt(ref["tau2"]), x, n).sum()
    assert fit.loglik >= at_ref - 1e-9


@pytest.mark.parametrize(("case", "kwargs"), [
    ("reml_none", {}),
    ("reml_scq", {"moderators": ["scq"]}),
    ("reml_patients", {"moderators": ["patients"], "categorical": ["patients"]}),
])
def test_exact_root_differs_from_metafor_only_by_its_stopping_point(debruin, case, kwargs):
    """With the default threshold (1e-10) tau^2 is the root itself; metafor stops at
    |step| <= 1e-5, which moves the sixth digit of tau^2 and R^2 but not the fourth."""
    exact = metareg_proportions(debruin, **kwargs)
    _assert_reference(exact, case, 1e-4)
    # the REML score is zero at the exact root
    w = 1 / (exact.vi + exact.tau2)
    X = exact.design.X
    xw = X * w[:, None]
    P = np.diag(w) - xw @ np.linalg.solve(X.T @ xw, xw.T)
    py = P @ exact.yi
    assert py @ py - np.trace(P) == pytest.approx(0, abs=1e-8)


def test_reference_level_can_be_chosen(debruin):
    base = metareg_proportions(debruin, moderators=["patients"], categorical=["patients"])
    flip = metareg_proportions(debruin, moderators=["patients"],
                               categorical={"patients": "starting"})
    assert flip.terms == ("intercept", "patients[continuing]")
    assert flip.estimates[1] == pytest.approx(-base.estimates[1], rel=1e-9)
    assert flip.estimates[0] == pytest.approx(base.estimates.sum(), rel=1e-9)
    for name in ("tau2", "qm", "qe", "r2", "i2"):
        assert getattr(flip, name) == pytest.approx(getattr(base, name), rel=1e-9)
    assert flip.fitted == pytest.approx(base.fitted, rel=1e-9)


def test_debruin2009_dataset_is_the_metadat_table(debruin):
    with resources.files("bayes_poem.datasets").joinpath("debruin2009.csv").open() as handle:
        raw = pd.read_csv(handle)
    assert list(raw.columns) == ["author", "year", "scq", "ni", "xi", "mi", "ethnicity",
                                 "patients", "select", "sens"]
    assert (len(raw), raw["xi"].sum(), raw["ni"].sum()) == (13, 669, 1516)
    assert (raw["ni"] - raw["xi"] == raw["mi"]).all()
    frame = debruin.frame
    assert frame["study"].tolist() == raw["author"].tolist()
    assert frame["events"].tolist() == raw["xi"].tolist()
    assert frame["total"].tolist() == raw["ni"].tolist()
    assert set(frame["outcome"]) == {"undetectable_viral_load"}
    assert debruin.covariates == ["year", "scq", "ethnicity", "patients", "select", "sens"]
    assert frame["scq"].astype(float).tolist() == raw["scq"].tolist()
    assert not debruin.is_synthetic and "metadat" in debruin.metadata["citation"]


# --------------------------------------------------------------------------------------
# 2. Constructed data
# --------------------------------------------------------------------------------------

Y = np.array([-1.2, 1.4, 0.2, -0.9, 2.5, 0.6, 1.1, -0.3])
V = np.array([0.10, 0.20, 0.15, 0.30, 0.25, 0.12, 0.40, 0.18])
X1 = np.array([1.0, 3.0, 5.5, 2.0, 7.0, 4.0, 2.5, 6.0])
GROUP = ["a", "b", "b", "a", "c", "c", "a", "b"]


def _wls(y, v, X, tau2):
    w = 1 / (v + tau2)
    cov = np.linalg.inv(X.T @ (X * w[:, None]))
    beta = cov @ X.T @ (w * y)
    return beta, cov


def test_dl_with_moderators_matches_hand_computation():
    fit = meta_regression(Y, V, {"x": X1}, method="DL")
    X = np.column_stack([np.ones_like(X1), X1])
    k, p = X.shape
    w = 1 / V
    beta_fe, cov_fe = _wls(Y, V, X, 0.0)
    qe = np.sum(w * (Y - X @ beta_fe) ** 2)
    # tr P = sum w - tr((X'WX)^-1 X'W^2 X)
    tr_p = w.sum() - np.trace(cov_fe @ X.T @ (X * (w**2)[:, None]))
    tau2 = max(0.0, (qe - (k - p)) / tr_p)
    assert tau2 > 0
    beta, cov = _wls(Y, V, X, tau2)
    assert fit.tau2 == pytest.approx(tau2, rel=1e-12)
    assert fit.qe == pytest.approx(qe, rel=1e-12)
    assert fit.qe_pvalue == pytest.approx(stats.chi2.sf(qe, k - p), rel=1e-12)
    assert fit.estimates == pytest.approx(beta, rel=1e-12)
    assert fit.se == pytest.approx(np.sqrt(np.diag(cov)), rel=1e-12)
    assert fit.qm == pytest.approx(beta[1] ** 2 / cov[1, 1], rel=1e-12)
    crit = stats.norm.ppf(0.975)
    assert fit.ci_lower == pytest.approx(beta - crit * np.sqrt(np.diag(cov)), rel=1e-12)
    # residual I^2, H^2 with the typical variance (k - p) / tr P
    vt = (k - p) / tr_p
    assert fit.typical_variance == pytest.approx(vt, rel=1e-12)
    assert fit.i2 == pytest.approx(100 * tau2 / (vt + tau2), rel=1e-12)
    assert fit.h2 == pytest.approx(1 + tau2 / vt, rel=1e-12)
    # R^2 against the DL tau^2 without moderators (the package's tau2_dl)
    tau2_re = tau2_dl(Y, V).tau2
    assert fit.tau2_no_moderators == pytest.approx(tau2_re, rel=1e-12)
    assert fit.r2 == pytest.approx(max(0, 100 * (tau2_re - tau2) / tau2_re), rel=1e-12)


def test_dl_is_truncated_at_zero():
    y = np.array([0.10, 0.12, 0.09, 0.11, 0.10])
    fit = meta_regression(y, np.full(5, 0.5), {"x": [1, 2, 3, 4, 5]}, method="DL")
    assert fit.tau2 == 0.0 and fit.i2 == 0.0 and fit.h2 == 1.0


def _ll(tau2, y, v, X, reml):
    beta, cov = _wls(y, v, X, tau2)
    w = 1 / (v + tau2)
    ll = -0.5 * np.sum(np.log(v + tau2)) - 0.5 * np.sum(w * (y - X @ beta) ** 2)
    return ll + 0.5 * np.linalg.slogdet(cov)[1] if reml else ll


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_reml_and_ml_maximise_their_likelihoods_with_moderators(method):
    fit = meta_regression(Y, V, {"x": X1, "g": GROUP}, categorical=["g"], method=method)
    X = fit.design.X
    assert X.shape == (8, 4)
    best = optimize.minimize_scalar(lambda t: -_ll(t, Y, V, X, method == "REML"),
                                    bounds=(0, 20), method="bounded",
                                    options={"xatol": 1e-12})
    assert fit.tau2 > 0 and fit.converged
    assert fit.tau2 == pytest.approx(best.x, abs=1e-6)
    beta, cov = _wls(Y, V, X, fit.tau2)
    assert fit.estimates == pytest.approx(beta, rel=1e-10)
    assert fit.se == pytest.approx(np.sqrt(np.diag(cov)), rel=1e-10)
    # QM: the three moderator coefficients jointly
    b = beta[1:]
    assert fit.qm == pytest.approx(b @ np.linalg.solve(cov[1:, 1:], b), rel=1e-10)
    assert fit.qm_df1 == 3 and fit.qm_pvalue == pytest.approx(stats.chi2.sf(fit.qm, 3))


@pytest.mark.parametrize("method", ["REML", "ML", "DL"])
def test_knapp_hartung_equals_weighted_least_squares(method):
    """Knapp-Hartung = WLS with weights 1/(v + tau^2) and an estimated scale (statsmodels)."""
    z = meta_regression(Y, V, {"x": X1, "g": GROUP}, categorical=["g"], method=method)
    kh = meta_regression(Y, V, {"x": X1, "g": GROUP}, categorical=["g"], method=method,
                         test="knha")
    ols = sm.WLS(Y, kh.design.X, weights=1 / (V + kh.tau2)).fit()
    assert kh.tau2 == z.tau2
    assert kh.estimates == pytest.approx(ols.params, rel=1e-10)
    assert kh.se == pytest.approx(ols.bse, rel=1e-10)
    assert kh.s2w == pytest.approx(ols.scale, rel=1e-10)
    assert kh.p_values == pytest.approx(ols.pvalues, rel=1e-8)
    ci = ols.conf_int(0.05)
    assert kh.ci_lower == pytest.approx(ci[:, 0], rel=1e-10)
    f_test = ols.f_test(np.eye(4)[1:])
    assert kh.qm == pytest.approx(float(np.squeeze(f_test.fvalue)), rel=1e-10)
    assert kh.qm_pvalue == pytest.approx(float(f_test.pvalue), rel=1e-8)
    assert (kh.qm_df1, kh.qm_df2) == (3, 4.0)


def test_knapp_hartung_factor_is_not_truncated_but_adhoc_is():
    """metafor's test="knha" lets s2w < 1 shrink the SEs; test="adhoc" truncates at 1."""
    y = np.array([0.10, 0.31, 0.52, 0.69, 0.91, 1.12])  # almost on a line
    v = np.full(6, 0.04)
    x = {"x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]}
    z = meta_regression(y, v, x)
    kh = meta_regression(y, v, x, test="knha")
    adhoc = meta_regression(y, v, x, test="adhoc")
    t = meta_regression(y, v, x, test="t")
    assert kh.s2w < 1
    assert kh.se == pytest.approx(np.sqrt(kh.s2w) * z.se, rel=1e-12)
    assert np.all(kh.se < z.se)
    assert adhoc.s2w == 1.0 and adhoc.se == pytest.approx(z.se, rel=1e-12)
    assert t.s2w == 1.0 and t.se == pytest.approx(z.se, rel=1e-12)
    for fit in (kh, adhoc, t):
        assert fit.df == 4.0 and fit.qm_distribution == "F"
        crit = stats.t.ppf(0.975, 4)
        assert fit.ci_upper == pytest.approx(fit.estimates + crit * fit.se, rel=1e-12)
    assert meta_regression(y, v, x, test="hksj").se == pytest.approx(kh.se)


@pytest.mark.parametrize("method", ["REML", "ML", "DL"])
def test_without_moderators_equals_random_effects_pooling(debruin, method):
    fit = metareg_proportions(debruin, method=method)
    pooled = pool_proportions(debruin, method=method)
    assert fit.estimates[0] == pytest.approx(pooled.estimate, rel=1e-9)
    assert fit.se[0] == pytest.approx(pooled.se, rel=1e-9)
    assert fit.tau2 == pytest.approx(pooled.tau2, rel=1e-9)
    assert fit.tau2_se == pytest.approx(pooled.pooled.tau2_se, rel=1e-9)
    assert fit.qe == pytest.approx(pooled.q, rel=1e-12)
    assert fit.i2 == pytest.approx(pooled.i2, rel=1e-9)
    assert fit.h2 == pytest.approx(pooled.pooled.h2, rel=1e-9)
    assert fit.ci_lower[0] == pytest.approx(pooled.pooled.ci_lower, rel=1e-9)


def test_zero_cells_get_the_package_continuity_correction():
    niel = load_dataset("nielweise2007")
    fit = metareg_proportions(niel, subgroup="control")
    pooled = pool_proportions(niel, subgroup="control")
    assert fit.effects.corrected.tolist() == pooled.effects.corrected.tolist()
    assert fit.effects.corrected.sum() > 0
    assert fit.estimates[0] == pytest.approx(pooled.estimate, rel=1e-9)
    assert fit.tau2 == pytest.approx(pooled.tau2, rel=1e-9)
    assert "0.5 added to each cell of" in fit.note and "(to='only0')" in fit.note
    assert fit.studies_frame()["corrected"].sum() == fit.effects.corrected.sum()
    none = metareg_proportions(niel, subgroup="control", add=0.5, to="all")
    assert none.effects.corrected.all()


def test_glmm_without_moderators_equals_the_glmm(debruin):
    fit = glmm_metareg_proportions(debruin)
    one = glmm_proportions(debruin)
    # two optimisers of one likelihood (Newton in beta vs Brent in mu): the optimum is
    # flat to ~1e-13 in the log-likelihood, so agreement is to ~1e-7
    assert fit.estimates[0] == pytest.approx(one.estimate, rel=1e-6)
    assert fit.tau2 == pytest.approx(one.tau2, rel=1e-6)
    assert fit.se[0] == pytest.approx(one.se, rel=1e-5)
    assert fit.loglik == pytest.approx(one.loglik, abs=1e-9)


def _rescaled(table, factor: float, shift: float):
    frame = table.frame.copy()
    frame["scq"] = frame["scq"].astype(float) * factor + shift
    return load_table(frame, source="rescaled")


@pytest.mark.parametrize("method", ["REML", "ML", "DL"])
def test_fitted_values_are_invariant_to_rescaling_a_moderator(debruin, method):
    base = metareg_proportions(debruin, moderators=["scq"], method=method, test="knha")
    scaled = metareg_proportions(_rescaled(debruin, 10.0, -50.0), moderators=["scq"],
                                 method=method, test="knha")
    assert scaled.fitted == pytest.approx(base.fitted, rel=1e-9)
    assert scaled.estimates[1] == pytest.approx(base.estimates[1] / 10, rel=1e-9)
    assert scaled.se[1] == pytest.approx(base.se[1] / 10, rel=1e-9)
    for name in ("tau2", "qm", "qm_pvalue", "qe", "r2", "i2", "h2", "s2w"):
        assert getattr(scaled, name) == pytest.approx(getattr(base, name), rel=1e-9), name


def test_glmm_fitted_values_are_invariant_to_rescaling_a_moderator(debruin):
    base = glmm_metareg_proportions(debruin, moderators=["scq"])
    scaled = glmm_metareg_proportions(_rescaled(debruin, 0.1, 3.0), moderators=["scq"])
    assert scaled.design.X @ scaled.estimates == pytest.approx(
        base.design.X @ base.estimates, rel=1e-6)
    assert scaled.estimates[1] == pytest.approx(base.estimates[1] * 10, rel=1e-6)
    assert scaled.se[1] == pytest.approx(base.se[1] * 10, rel=1e-4)
    assert scaled.tau2 == pytest.approx(base.tau2, rel=1e-6)
    assert scaled.qm == pytest.approx(base.qm, rel=1e-4)


def test_array_input_equals_table_input(debruin):
    frame = debruin.frame
    table_fit = metareg_proportions(debruin, moderators=["scq", "patients"],
                                    categorical=["patients"], test="knha")
    array_fit = metareg_proportions(
        frame["events"], frame["total"], labels=frame["study"],
        moderators={"scq": frame["scq"].astype(float).to_numpy(),
                    "patients": frame["patients"].tolist()},
        categorical=["patients"], test="knha")
    assert array_fit.terms == table_fit.terms == ("intercept", "scq", "patients[starting]")
    assert array_fit.estimates == pytest.approx(table_fit.estimates, rel=1e-12)
    assert array_fit.se == pytest.approx(table_fit.se, rel=1e-12)
    frame_fit = metareg_proportions(frame["events"], frame["total"],
                                    moderators=frame[["scq", "patients"]],
                                    categorical=["patients"], test="knha")
    assert frame_fit.estimates == pytest.approx(table_fit.estimates, rel=1e-12)


def test_subgroup_can_be_a_categorical_moderator():
    sed = load_dataset("sed_synthetic")
    fit = metareg_proportions(sed, outcome="clinical_success", moderators=["subgroup"],
                              categorical={"subgroup": "type_iii"})
    assert fit.k == 17  # study x subgroup cells
    assert fit.terms == ("intercept", "subgroup[des]", "subgroup[jackhammer]",
                         "subgroup[unassigned]")
    assert "added to each cell" in fit.note
    assert fit.studies_frame()["study"].iloc[0].count(" | ") == 1
    with pytest.raises(DataError, match="level 'unassigned' has only events"):
        glmm_metareg_proportions(sed, outcome="clinical_success", moderators=["subgroup"],
                                 categorical=["subgroup"])


def test_result_frames(debruin):
    fit = metareg_proportions(debruin, moderators=["scq"], test="knha")
    coef = fit.to_frame()
    assert tuple(coef.columns) == COEFFICIENT_COLUMNS
    assert coef["term"].tolist() == ["intercept", "scq"]
    assert (coef["df"] == 11).all() and (coef["test"] == "knha").all()
    het = fit.heterogeneity_frame()
    assert tuple(het.columns) == HETEROGENEITY_COLUMNS and len(het) == 1
    assert het.loc[0, "qm_distribution"] == "F" and het.loc[0, "qm_df2"] == 11
    studies = fit.studies_frame()
    assert tuple(studies.columns) == REGRESSION_STUDY_COLUMNS
    assert studies["residual"].to_numpy() == pytest.approx(
        (studies["estimate"] - studies["fitted"]).to_numpy())
    assert fit.coefficients["scq"] == fit.estimates[1]
    glmm = glmm_metareg_proportions(debruin, moderators=["scq"])
    assert tuple(glmm.to_frame().columns) == COEFFICIENT_COLUMNS
    assert glmm.to_frame()["df"].isna().all()
    g = glmm.heterogeneity()
    assert g["tau2"] == glmm.tau2 and np.isnan(g["qe"]) and g["qm_distribution"] == "chi2"
    assert g["qm"] == pytest.approx(glmm.estimates[1] ** 2 / glmm.vcov[1, 1], rel=1e-10)


# --------------------------------------------------------------------------------------
# 3. Bad moderators: one DataError naming the source, row and column
# --------------------------------------------------------------------------------------

def _edited(table, column, row, value):
    frame = table.frame.drop(columns="subgroup")
    frame[column] = frame[column].astype(object)
    frame.loc[row - 1, column] = value
    return load_table(frame, source="edited.csv")


@pytest.mark.parametrize(("column", "value", "expected"), [
    ("scq", "", "edited.csv: row 4 (study 'Holzemer et al.'), column 'scq': missing value"),
    ("scq", None, "edited.csv: row 4 (study 'Holzemer et al.'), column 'scq': missing value"),
    ("scq", "3,67", "edited.csv: row 4 (study 'Holzemer et al.'), column 'scq': '3,67' is "
                    "not a number"),
    ("scq", "inf", "edited.csv: row 4 (study 'Holzemer et al.'), column 'scq': 'inf' is "
                   "missing or not a finite number"),
    ("patients", "  ", "edited.csv: row 4 (study 'Holzemer et al.'), column 'patients': "
                       "missing value"),
])
def test_bad_moderator_values_name_source_row_and_column(debruin, column, value, expected):
    table = _edited(debruin, column, 4, value)
    categorical = ["patients"] if column == "patients" else []
    for fit in (metareg_proportions, glmm_metareg_proportions):
        with pytest.raises(DataError) as info:
            fit(table, moderators=[column], categorical=categorical)
        assert str(info.value).startswith(expected)


def test_missing_moderator_column_is_named(debruin):
    with pytest.raises(DataError, match=r"dataset 'debruin2009': column 'quality' not found; "
                                        r"columns available as moderators: subgroup, year"):
        metareg_proportions(debruin, moderators=["quality"])


def test_text_in_a_numeric_moderator_says_how_to_declare_it_categorical(debruin):
    """sens holds "<400" and "400": numbers and text mixed, so neither kind is assumed."""
    with pytest.raises(DataError, match=r"row 1 \(study 'Andrade et al.'\), column "
                                        r"'sens': '<400' is not a number; list the "
                                        r"column in categorical="):
        metareg_proportions(debruin, moderators=["sens"])
    fit = metareg_proportions(debruin, moderators=["sens"], categorical={"sens": "<400"})
    assert fit.terms == ("intercept", "sens[400]")


def test_a_text_column_is_categorical_without_declaring_it(debruin):
    auto = metareg_proportions(debruin, moderators=["patients", "scq"])
    declared = metareg_proportions(debruin, moderators=["patients", "scq"],
                                   categorical=["patients"])
    assert auto.terms == declared.terms == ("intercept", "patients[starting]", "scq")
    assert auto.design.kinds == {"patients": "categorical", "scq": "numeric"}
    assert auto.estimates == pytest.approx(declared.estimates, rel=1e-12)
    # numeric codes are numeric unless declared categorical
    frame = debruin.frame.copy()
    frame["code"] = ["1", "2", "10"] * 4 + ["2"]
    table = load_table(frame, source="codes.csv")
    assert metareg_proportions(table, moderators=["code"]).terms == ("intercept", "code")
    fit = metareg_proportions(table, moderators=["code"], categorical=["code"])
    # levels sorted as numbers, as R's factor() of a numeric column: reference "1"
    assert fit.terms == ("intercept", "code[2]", "code[10]")


@pytest.mark.parametrize(("kind", "value", "message"), [
    ("numeric", "12", "column 'const': the moderator is constant (12 in every row)"),
    ("categorical", "yes", "column 'const': the moderator is constant (level 'yes' in "
                           "every row)"),
])
def test_constant_moderator_is_refused(debruin, kind, value, message):
    frame = debruin.frame.copy()
    frame["const"] = value
    table = load_table(frame, source="const.csv")
    categorical = ["const"] if kind == "categorical" else []
    with pytest.raises(DataError) as info:
        metareg_proportions(table, moderators=["const"], categorical=categorical)
    assert str(info.value).startswith(f"const.csv: {message}")


def test_collinear_and_too_many_moderators_are_refused():
    with pytest.raises(DataError, match="collinear"):
        meta_regression(Y, V, {"x": X1, "x2": 2 * X1 + 1})
    with pytest.raises(DataError, match="5 coefficients and tau.2 cannot be estimated from "
                                        "5 studies"):
        meta_regression(Y[:5], V[:5], {"a": [1, 2, 3, 4, 6], "b": [1, 0, 0, 1, 1],
                                       "c": [0, 0, 1, 1, 0], "d": [3, 1, 4, 1, 5]})


def test_array_moderators_are_checked_per_entry():
    with pytest.raises(DataError, match=r"arrays: row 3 \(study '3'\), column 'a': 'x' is not "
                                        r"a number"):
        metareg_proportions([1, 2, 3, 4], [10, 10, 10, 10], moderators={"a": [1, 2, "x", 4]})
    with pytest.raises(DataError, match=r"arrays: row 2 \(study '2'\), column 'a': "
                                        r"missing value"):
        meta_regression(Y[:4], V[:4], {"a": [1.0, np.nan, 2.0, 3.0]})
    with pytest.raises(DataError, match="column 'a' has 3 values for 4 studies"):
        meta_regression(Y[:4], V[:4], {"a": [1.0, 2.0, 3.0]})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"moderators": ["patients"], "categorical": {"patients": "new"}},
     "categorical: reference level 'new' of 'patients' is not in the data; levels: "
     "continuing, starting"),
    ({"moderators": ["scq"], "categorical": ["patients"]},
     "categorical: 'patients' is not among the moderators (scq)"),
    ({"moderators": ["scq", "scq"]}, "moderators: 'scq' listed more than once"),
    ({"moderators": ["events"]}, "moderators: 'events' cannot be a moderator"),
    ({"moderators": ["scq"], "method": "PM"}, "method: 'PM' is not one of REML, ML, DL"),
    ({"moderators": ["scq"], "test": "wald"}, "test: 'wald' is not one of z, knha, adhoc, t"),
])
def test_invalid_options_are_spec_errors(debruin, kwargs, message):
    with pytest.raises(SpecError) as info:
        metareg_proportions(debruin, **kwargs)
    assert str(info.value).startswith(message)
