"""Small-study effects (``bayes_poem.frequentist.bias``) and their figures.

1. Egger's regression test reproduces R metafor 3.8-1 on ``dat.debruin2009``; the
   ``lm`` version equals Egger's original regression (statsmodels OLS).
2. The rank correlation test against independent computations: the deviates by hand,
   ``scipy.stats.kendalltau`` (exact without ties, asymptotic tie-corrected with ties,
   as R's ``cor.test``) and the exact permutation distribution by brute force.
3. Trim and fill on data built so that the answer is known: a symmetric funnel with its
   most negative studies removed (k0 = the removed ones, filled = their mirror images),
   a symmetric funnel (k0 = 0), mirrored data (the side flips, everything else mirrors).
4. Cumulative meta-analysis: every row is a direct fit of the first j studies.
5. Funnel-plot data, figures, the docs example, one-line errors.

Tier 1: no sampling, well under a second per test.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from scipy import stats
from scipy.special import expit

from bayes_poem import load_dataset, load_table
from bayes_poem.bias_plots import cumulative_plot, funnel_plot
from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist import (
    CUMULATIVE_COLUMNS,
    RANKTEST_COLUMNS,
    REGTEST_COLUMNS,
    TRIMFILL_COLUMNS,
    cumulative,
    cumulative_effects,
    funnel_data,
    funnel_effects,
    pool,
    pool_proportions,
    proportion_effects,
    ranktest,
    ranktest_effects,
    regtest,
    regtest_effects,
    trimfill,
    trimfill_effects,
)
from bayes_poem.frequentist.bias import kendall_exact_cdf
from bayes_poem.frequentist.inputs import counts_from

# --------------------------------------------------------------------------------------
# Reference values
# --------------------------------------------------------------------------------------

#: de Bruin M et al., Health Psychol 2009;28:668-674, standard-care arms of 13 HIV
#: adherence trials, as distributed in the metadat package (dat.debruin2009) that
#: accompanies metafor. Values COMPUTED with R metafor 3.8-1 (not a publication's
#: figures) on logit proportions (measure = "PLO"; no zero cells), copied from the
#: project's reference notes (PUBLISHED.md, section 4a): "Small-study-effect tests on the
#: REML model without moderators (regtest): Egger (predictor = standard error)
#: z = 1.250057715, p = 0.211278465; sample-size version (predictor = 1/n, "ninv")
#: z = 1.151683813, p = 0.2494510264."
METAFOR_REGTEST_DEBRUIN2009 = {
    "sei": {"z": 1.250057715, "p": 0.211278465},
    "ninv": {"z": 1.151683813, "p": 0.2494510264},
}
#: metafor's Fisher-scoring threshold: the reference values are its stopping point
METAFOR_THRESHOLD = 1e-5
REL = 1e-6


@pytest.fixture(scope="module")
def debruin():
    return load_dataset("debruin2009")


def _effects(table):
    return proportion_effects(counts_from(table), "logit")


# --------------------------------------------------------------------------------------
# 1. Regression test
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("predictor", ["sei", "ninv"])
def test_regtest_reproduces_metafor(debruin, predictor):
    ref = METAFOR_REGTEST_DEBRUIN2009[predictor]
    result = regtest(debruin, predictor=predictor, threshold=METAFOR_THRESHOLD)
    assert result.statistic == pytest.approx(ref["z"], rel=REL)
    assert result.p_value == pytest.approx(ref["p"], rel=REL)
    assert result.statistic_kind == "z" and np.isnan(result.df)
    # the exact REML root (default threshold) moves them by < 1e-8 relative
    exact = regtest(debruin, predictor=predictor)
    assert exact.statistic == pytest.approx(ref["z"], rel=REL)
    assert exact.p_value == pytest.approx(ref["p"], rel=REL)


def test_regtest_limit_estimate_is_the_intercept_of_the_meta_regression(debruin):
    result = regtest(debruin)
    fit = result.fit
    assert fit.terms == ("intercept", "sei")
    e = _effects(debruin)
    np.testing.assert_allclose(fit.design.X[:, 1], np.sqrt(e.vi))
    assert result.limit_estimate == fit.estimates[0]
    half = stats.norm.ppf(0.975) * fit.se[0]
    assert result.limit_ci_lower == pytest.approx(fit.estimates[0] - half, rel=1e-12)
    assert result.limit_ci_upper == pytest.approx(fit.estimates[0] + half, rel=1e-12)
    assert result.slope == fit.estimates[1]
    frame = result.to_frame()
    assert list(frame.columns) == list(REGTEST_COLUMNS) and len(frame) == 1


@pytest.mark.parametrize("predictor", ["ni", "sqrtni"])
def test_regtest_has_no_limit_estimate_for_predictors_growing_with_precision(debruin,
                                                                            predictor):
    result = regtest(debruin, predictor=predictor)
    assert np.isnan(result.limit_estimate) and np.isnan(result.limit_ci_lower)
    n = debruin.frame["total"].to_numpy(float)
    expected = n if predictor == "ni" else np.sqrt(n)
    np.testing.assert_allclose(result.fit.design.X[:, 1], expected)


def test_regtest_knapp_hartung_uses_t_on_k_minus_2_df(debruin):
    result = regtest(debruin, test="knha")
    assert result.statistic_kind == "t" and result.df == 11
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(result.statistic), 11))


def test_regtest_lm_is_eggers_original_regression(debruin):
    """Egger et al. (1997): OLS of y/se on 1/se; its intercept is the asymmetry term,
    its slope the limit estimate -- the WLS of y on se with weights 1/v, roles swapped."""
    e = _effects(debruin)
    se = np.sqrt(e.vi)
    ols = sm.OLS(e.yi / se, sm.add_constant(1 / se)).fit()
    result = regtest(debruin, model="lm")
    assert result.slope == pytest.approx(ols.params[0], rel=1e-10)
    assert result.slope_se == pytest.approx(ols.bse[0], rel=1e-10)
    assert result.statistic == pytest.approx(ols.tvalues[0], rel=1e-10)
    assert result.p_value == pytest.approx(ols.pvalues[0], rel=1e-10)
    assert result.df == ols.df_resid == 11
    lo, hi = ols.conf_int(0.05)[1]
    assert result.limit_estimate == pytest.approx(ols.params[1], rel=1e-10)
    assert (result.limit_ci_lower, result.limit_ci_upper) == pytest.approx((lo, hi),
                                                                          rel=1e-10)


def test_regtest_errors_are_one_line():
    y, v = [0.1, 0.5, 0.3, 0.2], [0.1, 0.2, 0.3, 0.4]
    with pytest.raises(SpecError, match="predictor: 'se' is not one of"):
        regtest_effects(y, v, predictor="se")
    with pytest.raises(SpecError, match="needs the sample sizes"):
        regtest_effects(y, v, predictor="ninv")
    with pytest.raises(SpecError, match="model: 'glm'"):
        regtest_effects(y, v, model="glm")
    with pytest.raises(DataError, match="at least 3 studies"):
        regtest_effects(y[:2], v[:2])
    with pytest.raises(DataError, match="the predictor ninv is the same for every study"):
        regtest([3, 5, 7, 9], [20, 20, 20, 20], predictor="ninv")
    with pytest.raises(DataError, match=r"entry 2 \(study '2'\): events \(25\) > total"):
        regtest([3, 25, 7], [20, 20, 20])


# --------------------------------------------------------------------------------------
# 2. Rank correlation test
# --------------------------------------------------------------------------------------

def _deviates(y, v):
    """Begg and Mazumdar's standardised deviates, written out independently."""
    w = 1 / v
    theta = np.sum(w * y) / np.sum(w)
    return (y - theta) / np.sqrt(v - 1 / np.sum(w))


def test_ranktest_with_ties_is_the_tie_corrected_normal_approximation(debruin):
    """dat.debruin2009 has two studies with 11/29 (Andrade, Murphy): tied y* and tied v,
    so R's cor.test (and metafor) falls back to the normal approximation."""
    e = _effects(debruin)
    result = ranktest(debruin)
    x = _deviates(e.yi, e.vi)
    np.testing.assert_allclose(result.deviates, x, rtol=1e-12)
    assert result.ties and result.p_method == "normal" and result.statistic_kind == "z"
    ref = stats.kendalltau(x, e.vi, variant="b", method="asymptotic")
    assert result.tau == pytest.approx(ref.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert "normal approximation" in result.note
    frame = result.to_frame()
    assert list(frame.columns) == list(RANKTEST_COLUMNS)


def _brute_force_two_sided(x, y):
    """R's exact two-sided p: min(1, 2 min(P(T <= t), P(T >= t))) over all k! pairings."""
    k = len(x)

    def concordant(xs, ys):
        return sum((xs[j] - xs[i]) * (ys[j] - ys[i]) > 0
                   for i in range(k) for j in range(i + 1, k))

    t = concordant(x, y)
    all_t = np.array([concordant(x, [y[i] for i in perm])
                      for perm in itertools.permutations(range(k))])
    return min(1.0, 2 * min(np.mean(all_t <= t), np.mean(all_t >= t))), t


def test_ranktest_exact_p_matches_brute_force_and_scipy(debruin):
    e = _effects(debruin)
    keep = np.array([0, 1, 2, 3, 4, 6, 10])  # 7 studies without ties (Murphy left out)
    y, v = e.yi[keep], e.vi[keep]
    result = ranktest_effects(y, v)
    assert not result.ties and result.p_method == "exact" and result.statistic_kind == "T"
    x = _deviates(y, v)
    p_brute, t = _brute_force_two_sided(list(x), list(v))
    assert result.statistic == t
    assert result.p_value == pytest.approx(p_brute, rel=1e-12)
    ref = stats.kendalltau(x, v, method="exact")
    assert result.tau == pytest.approx(ref.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-10)


def test_ranktest_exact_on_twelve_studies_matches_scipy(debruin):
    e = _effects(debruin)
    keep = np.arange(13) != 5  # Murphy et al. removed: no ties left
    result = ranktest_effects(e.yi[keep], e.vi[keep])
    x = _deviates(e.yi[keep], e.vi[keep])
    exact = stats.kendalltau(x, e.vi[keep], method="exact")
    assert result.p_method == "exact"
    assert result.p_value == pytest.approx(exact.pvalue, rel=1e-10)
    approx = ranktest_effects(e.yi[keep], e.vi[keep], exact=False)
    asymptotic = stats.kendalltau(x, e.vi[keep], method="asymptotic")
    assert approx.p_method == "normal"
    assert approx.p_value == pytest.approx(asymptotic.pvalue, rel=1e-10)


@pytest.mark.parametrize("k", range(1, 8))
def test_kendall_exact_distribution_counts_inversions(k):
    """P(T <= t) against the inversion counts of all k! permutations."""
    counts = np.zeros(k * (k - 1) // 2 + 1)
    for perm in itertools.permutations(range(k)):
        counts[sum(perm[i] > perm[j] for i in range(k) for j in range(i + 1, k))] += 1
    np.testing.assert_allclose(kendall_exact_cdf(k), np.cumsum(counts) / counts.sum(),
                               rtol=1e-13)


# --------------------------------------------------------------------------------------
# 3. Trim and fill
# --------------------------------------------------------------------------------------

def _symmetric_funnel(n_pairs: int):
    """A study at 0 and pairs +-d_j sharing the variance v_j; larger |effect| in smaller
    studies. Every fixed- or random-effects estimate of it is exactly 0."""
    d = 0.2 * np.arange(1, n_pairs + 1)
    v = 0.02 + 0.03 * np.arange(n_pairs)
    return np.concatenate([[0.0], d, -d]), np.concatenate([[0.01], v, v]), d, v


def _l0(y, mu):
    """Duval and Tweedie's L0 at the centre mu, ties by sorted position (metafor)."""
    y = np.sort(y)
    c = y - mu
    ranks = np.empty(y.size)
    ranks[np.argsort(np.abs(c), kind="stable")] = np.arange(1, y.size + 1)
    k = y.size
    return (4 * ranks[c > 0].sum() - k * (k + 1)) / (2 * k - 1)


@pytest.mark.parametrize("method", ["FE", "DL", "REML"])
@pytest.mark.parametrize("n_pairs", [4, 6, 8])
def test_trimfill_restores_the_removed_studies_of_a_symmetric_funnel(method, n_pairs):
    """Remove the 2 most negative studies of a symmetric funnel: trim and fill must find
    k0 = 2, fill exactly their values and variances, and the filled data are the full
    symmetric funnel again, so the adjusted estimate is 0."""
    y_full, v_full, d, v = _symmetric_funnel(n_pairs)
    keep = np.ones(y_full.size, dtype=bool)
    keep[-2:] = False  # -d[-2], -d[-1]: the two most negative
    y, vi = y_full[keep], v_full[keep]
    # by hand: at the truncated estimate 0 the L0 statistic rounds to 2 (a fixed point)
    assert round(_l0(y, 0.0)) == 2
    result = trimfill_effects(y, vi, method=method)
    assert result.side == "left" and result.k0 == 2
    order = np.argsort(result.filled_yi)
    np.testing.assert_allclose(result.filled_yi[order], -d[::-1][:2], atol=1e-9)
    np.testing.assert_allclose(result.filled_vi[order], v[::-1][:2])
    assert result.adjusted.k == y_full.size
    assert result.adjusted.estimate == pytest.approx(0.0, abs=1e-9)
    full = pool(y_full, v_full, method=method)
    assert result.adjusted.estimate == pytest.approx(full.estimate, abs=1e-9)
    assert result.adjusted.tau2 == pytest.approx(full.tau2, rel=1e-6, abs=1e-12)
    assert result.observed.estimate > 0.01  # the asymmetry biased the observed estimate


@pytest.mark.parametrize("side", [None, "left", "right"])
def test_trimfill_finds_nothing_missing_in_a_symmetric_funnel(side):
    y, v, _, _ = _symmetric_funnel(6)
    result = trimfill_effects(y, v, side=side)
    assert result.k0 == 0 and result.filled_yi.size == 0
    assert result.adjusted is result.observed
    assert result.adjusted.estimate == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("method", ["FE", "REML"])
def test_trimfill_of_mirrored_data_fills_the_other_side(method):
    y_full, v_full, _, _ = _symmetric_funnel(6)
    y, v = y_full[:-2], v_full[:-2]
    left = trimfill_effects(y, v, method=method)
    right = trimfill_effects(-y, v, method=method)
    assert (left.side, right.side) == ("left", "right")
    assert left.k0 == right.k0 == 2
    np.testing.assert_allclose(np.sort(right.filled_yi), np.sort(-left.filled_yi), atol=1e-12)
    assert right.adjusted.estimate == pytest.approx(-left.adjusted.estimate, abs=1e-12)
    assert right.observed.estimate == pytest.approx(-left.observed.estimate, abs=1e-12)
    assert right.se_k0 == pytest.approx(left.se_k0)


def test_trimfill_side_follows_the_sign_of_the_regression_on_the_standard_error(debruin):
    e = _effects(debruin)
    slope = regtest_effects(e.yi, e.vi).slope
    assert trimfill(debruin).side == ("right" if slope < 0 else "left")
    assert trimfill_effects(-e.yi, e.vi).side == ("left" if slope < 0 else "right")


def _r0(y, mu):
    """R0 = k - r* - 1, r* the largest rank of |y - mu| among negative deviations."""
    c = np.sort(y) - mu
    ranks = np.empty(c.size)
    ranks[np.argsort(np.abs(c), kind="stable")] = np.arange(1, c.size + 1)
    return c.size - ranks[c < 0].max() - 1


def test_trimfill_r0_estimator_stops_at_its_fixed_point():
    """R0 counts the run of largest positive deviations less one. On the funnel above,
    the fixed-effect estimate of the observed studies is slightly positive, so the pair
    -d_4, d_4 is no longer tied in |y - mu| and only d_5, d_6 form the run: k0 = 1,
    a fixed point (computed here by hand at the truncated estimate)."""
    y_full, v_full, d, _ = _symmetric_funnel(6)
    y, v = y_full[:-2], v_full[:-2]
    result = trimfill_effects(y, v, estimator="R0", method="FE")
    assert result.estimator == "R0" and result.k0 == 1
    order = np.argsort(y)
    mu = pool(y[order][:-1], v[order][:-1], method="FE").estimate
    assert _r0(y, mu) == 1
    assert result.filled_yi == pytest.approx([2 * mu - d[-1]])
    assert result.se_k0 == pytest.approx(np.sqrt(2 * 1 + 2))


#: SYNTHETIC counts (made up for this test): small studies report higher proportions
SYNTHETIC_EVENTS = [30, 45, 60, 40, 14, 9, 8, 6, 5, 12]
SYNTHETIC_TOTALS = [100, 150, 200, 120, 35, 20, 15, 10, 8, 25]


def test_trimfill_from_counts_fills_mirrored_studies():
    result = trimfill(SYNTHETIC_EVENTS, SYNTHETIC_TOTALS,
                      labels=[f"S{i}" for i in range(1, 11)])
    e = proportion_effects(counts_from(SYNTHETIC_EVENTS, SYNTHETIC_TOTALS), "logit")
    assert result.side == "left" and result.k0 >= 1
    # each filled study mirrors an observed one about the last truncated estimate
    positions = [int(label[1:]) - 1 for label in result.filled_from]
    centre = (result.filled_yi + e.yi[positions]) / 2
    np.testing.assert_allclose(centre, centre[0], rtol=1e-12)
    np.testing.assert_allclose(result.filled_vi, e.vi[positions])
    np.testing.assert_allclose(result.filled_totals, np.array(SYNTHETIC_TOTALS)[positions])
    # the mirrored studies are the k0 largest effects
    assert set(positions) == set(np.argsort(e.yi)[-result.k0:])
    direct = pool(np.concatenate([e.yi, result.filled_yi]),
                  np.concatenate([e.vi, result.filled_vi]))
    assert result.adjusted.estimate == pytest.approx(direct.estimate, rel=1e-12)
    frame = result.to_frame()
    assert list(frame.columns) == list(TRIMFILL_COLUMNS)
    assert frame["analysis"].tolist() == ["observed", "trim-and-fill"]
    assert frame["k"].tolist() == [10, 10 + result.k0]
    assert frame["back_estimate"].iloc[1] == pytest.approx(expit(direct.estimate))
    studies = result.studies_frame()
    assert studies["filled"].sum() == result.k0
    assert studies["study"].iloc[-1] == f"Filled {result.k0}"


def test_trimfill_options_are_checked():
    y, v, _, _ = _symmetric_funnel(3)
    with pytest.raises(SpecError, match="side: 'up'"):
        trimfill_effects(y, v, side="up")
    with pytest.raises(SpecError, match="estimator: 'Q1'"):
        trimfill_effects(y, v, estimator="Q1")
    with pytest.raises(SpecError, match="method: 'EB'"):
        trimfill_effects(y, v, method="EB")
    with pytest.raises(DataError, match="trim and fill needs at least 3 studies"):
        trimfill_effects(y[:2], v[:2])


# --------------------------------------------------------------------------------------
# 4. Cumulative meta-analysis
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["REML", "DL", "FE"])
def test_cumulative_rows_are_direct_fits_of_the_first_studies(debruin, method):
    result = cumulative(debruin, method=method)
    frame = result.to_frame()
    assert list(frame.columns) == list(CUMULATIVE_COLUMNS)
    table = debruin.frame
    years = table["year"].astype(int).to_numpy()
    order = np.argsort(years, kind="stable")  # ties: table order
    assert frame["study"].tolist() == table["study"].iloc[order].tolist()
    assert frame["order"].tolist() == sorted(years.tolist())
    for j, row in enumerate(frame.itertuples(), start=1):
        rows = order[:j]
        direct = pool_proportions(table["events"].to_numpy()[rows],
                                  table["total"].to_numpy()[rows],
                                  method=method if j > 1 else "FE")
        assert row.k == j
        assert row.estimate == pytest.approx(direct.estimate, rel=1e-12)
        assert row.ci_lower == pytest.approx(direct.pooled.ci_lower, rel=1e-12)
        assert row.back_estimate == pytest.approx(direct.back_estimate, rel=1e-12)
        if j > 1:
            assert row.tau2 == pytest.approx(direct.tau2, rel=1e-12, abs=1e-15)
            assert row.i2 == pytest.approx(direct.i2, rel=1e-12, abs=1e-12)
    full = pool_proportions(debruin, method=method).to_frame().iloc[0]
    last = frame.iloc[-1]
    for column in ("estimate", "se", "ci_lower", "ci_upper", "tau2", "i2", "q"):
        assert last[column] == pytest.approx(full[column], rel=1e-12, abs=1e-15)
    assert np.isnan(frame["tau2"].iloc[0])  # one study: fixed-effect, tau^2 not estimable


def test_cumulative_order_options(debruin):
    latest = cumulative(debruin, decreasing=True).to_frame()
    years = latest["order"].tolist()
    assert years == sorted(years, reverse=True)
    # ties keep the table order in both directions
    table = debruin.frame
    in_2006 = table.loc[table["year"] == "2006", "study"].tolist()
    assert latest["study"].tolist()[:3] == in_2006
    assert cumulative(debruin, order=None).to_frame()["study"].tolist() == \
        table["study"].tolist()
    by_scq = cumulative(debruin, order="scq").to_frame()
    assert by_scq["order"].tolist() == sorted(table["scq"].astype(float).tolist())
    e = _effects(debruin)
    direct = cumulative_effects(e.yi, e.vi, order=table["year"].tolist(),
                                labels=e.labels).to_frame()
    pd.testing.assert_series_equal(direct["estimate"],
                                   cumulative(debruin).to_frame()["estimate"])


def test_cumulative_errors_are_one_line(debruin, tmp_path):
    with pytest.raises(DataError, match="column 'published' not found"):
        cumulative(debruin, order="published")
    with pytest.raises(SpecError, match="with array input pass the ordering values"):
        cumulative([3, 4, 5], [10, 10, 10])
    with pytest.raises(DataError, match="order: pass one value per study"):
        cumulative([3, 4, 5], [10, 10, 10], order=[2001, 2002])
    path = tmp_path / "t.csv"
    path.write_text("study,outcome,events,total,year\nA,cs,3,10,2001\nB,cs,4,12,\n"
                    "C,cs,5,20,2003\n")
    with pytest.raises(DataError, match=r"row 2 \(study 'B'\), column 'year': missing"):
        cumulative(load_table(path))


# --------------------------------------------------------------------------------------
# 5. Funnel data, zero cells, figures, docs
# --------------------------------------------------------------------------------------

def test_funnel_data_points_reference_and_contours(debruin):
    funnel = funnel_data(debruin, levels=(0.95, 0.99))
    e = _effects(debruin)
    points = funnel.points
    np.testing.assert_allclose(points["estimate"], e.yi)
    np.testing.assert_allclose(points["se"], np.sqrt(e.vi))
    np.testing.assert_allclose(points["y"], np.sqrt(e.vi))
    assert not points["filled"].any()
    assert funnel.reference == pytest.approx(pool_proportions(debruin).estimate, rel=1e-12)
    for level, rows in funnel.contours.groupby("level"):
        z = stats.norm.ppf(0.5 + level / 2)
        np.testing.assert_allclose(rows["lower"], funnel.reference - z * rows["y"])
        np.testing.assert_allclose(rows["upper"], funnel.reference + z * rows["y"])
        assert rows["y"].min() == 0 and rows["y"].max() == pytest.approx(points["se"].max())
    by_n = funnel_data(debruin, yaxis="sqrtninv")
    np.testing.assert_allclose(by_n.points["y"], 1 / np.sqrt(debruin.frame["total"]))
    assert by_n.contours.empty


def test_funnel_data_with_trim_and_fill():
    funnel = funnel_effects(*_symmetric_funnel(6)[:2], fill=False)
    assert funnel.k0 == 0
    y_full, v_full, _, _ = _symmetric_funnel(6)
    filled = funnel_effects(y_full[:-2], v_full[:-2], fill=True)
    tf = trimfill_effects(y_full[:-2], v_full[:-2])
    assert filled.k0 == tf.k0 == 2
    assert filled.reference == tf.adjusted.estimate
    assert filled.points["filled"].tolist() == [False] * 11 + [True] * 2
    np.testing.assert_allclose(filled.points["estimate"].iloc[-2:], tf.filled_yi)


def test_zero_cells_get_the_documented_continuity_correction():
    events, totals = [0, 4, 9, 12, 20], [15, 20, 30, 25, 40]
    result = regtest(events, totals)
    assert "0.5 added to each cell of 1 study (to='only0')" in result.note
    funnel = funnel_data(events, totals)
    assert funnel.points["estimate"].iloc[0] == pytest.approx(np.log(0.5 / 15.5))
    assert funnel.points["corrected"].tolist() == [True, False, False, False, False]
    assert ranktest(events, totals).note.endswith("(to='only0')")
    with pytest.raises(DataError, match="logit of 0 or 1 events/total is infinite"):
        regtest(events, totals, to="none")


def test_funnel_plot_draws_filled_studies_as_open_markers():
    y_full, v_full, _, _ = _symmetric_funnel(6)
    fig = funnel_plot(funnel=funnel_effects(y_full[:-2], v_full[:-2], fill=True),
                      title="SYNTHETIC")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    def is_open(c):  # facecolor "none": no face colours, or transparent ones
        return c.get_facecolors().size == 0 or np.all(c.get_facecolors()[:, 3] == 0)

    open_ = [c for c in scatters if is_open(c)]
    solid = [c for c in scatters if not is_open(c)]
    assert [c.get_offsets().shape[0] for c in open_] == [2]
    assert [c.get_offsets().shape[0] for c in solid] == [11]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # precise studies at the top
    fig.savefig(io.BytesIO(), format="png")


def test_cumulative_plot_has_one_row_per_step(debruin):
    fig = cumulative_plot(cumulative=cumulative(debruin))
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0] == "+ Knobel et al. (1999)" and len(labels) == 13
    fig.savefig(io.BytesIO(), format="png")


DOCS = Path(__file__).resolve().parents[1] / "docs" / "frequentist.md"


def test_docs_example_prints_what_the_docs_show():
    text = DOCS.read_text()
    section = text[text.index("## 7. Small-study effects"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"```python\n.*?```\n+```text\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(DOCS), "exec"), {})
    assert out.getvalue() == shown


def test_ranktest_refuses_equal_variances_and_approximates_for_many_studies():
    with pytest.raises(DataError, match="sampling variances that differ"):
        ranktest_effects([0.1, 0.4, 0.2], [0.2, 0.2, 0.2])
    rng = np.random.default_rng(13)
    y, v = rng.normal(size=501), rng.uniform(0.01, 0.5, size=501)
    result = ranktest_effects(y, v)
    assert result.p_method == "normal" and "k > 500" in result.note
    ref = stats.kendalltau(_deviates(y, v), v, method="asymptotic")
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-10)
