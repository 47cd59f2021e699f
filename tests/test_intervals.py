"""Equal-tailed intervals by default, and why: transformation invariance.

Unit tier (no sampling): draws are simulated directly.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayes_poem import intervals
from bayes_poem.contrasts import Contrast, contrast_table
from bayes_poem.dims import SUBGROUP
from bayes_poem.intervals import IntervalSpec, describe, describe_columns


def test_default_interval_is_equal_tailed():
    assert IntervalSpec().kind == "eti" and IntervalSpec().label == "95% ETI"


def test_eti_commutes_with_a_monotone_transformation():
    """The ETI of exp(x) is exp of the ETI of x (quantiles commute with increasing
    maps); the HDI does not (a skewed exp(x) has a shorter interval elsewhere)."""
    x = np.random.default_rng(3).normal(0.2, 1.0, size=40_001)  # odd: exact order stats
    eti = IntervalSpec("eti", 0.95)
    lo, hi = eti.bounds(x)
    np.testing.assert_allclose(eti.bounds(np.exp(x)), (np.exp(lo), np.exp(hi)), rtol=1e-9)
    hdi = IntervalSpec("hdi", 0.95)
    hlo, hhi = hdi.bounds(x)
    # exp(HDI of x) is not the HDI of exp(x): the HDI of a right-skewed variable is
    # shifted left; for lognormal(0.2, 1) the shift of the upper bound is ~30%.
    assert hdi.bounds(np.exp(x))[1] < 0.8 * np.exp(hhi)


def _probabilities(p_a: np.ndarray, p_b: np.ndarray) -> xr.Dataset:
    values = np.stack([p_a, p_b], axis=-1)[None]  # chain, draw, subgroup
    p = xr.DataArray(values, dims=("chain", "draw", SUBGROUP),
                     coords={SUBGROUP: ["a", "b"]})
    return xr.Dataset({"p_pooled": p})


def _boundary_draws(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 4000
    logit_b = rng.normal(0.0, 0.3, n)
    logit_a = logit_b + rng.normal(0.55, 0.28, n)  # P(a > b) about 0.975
    return 1 / (1 + np.exp(-logit_a)), 1 / (1 + np.exp(-logit_b))


def _excludes_null(table) -> dict[str, bool]:
    return {scale: bool(table.loc[scale, "lower"] > null or table.loc[scale, "upper"] < null)
            for scale, null in (("difference", 0.0), ("ratio", 1.0), ("odds_ratio", 1.0))}


@pytest.mark.parametrize("seed", range(5))
def test_or_and_difference_eti_agree_on_excluding_the_null(seed):
    """One contrast on two scales: the odds ratio exceeds 1 exactly when the difference
    exceeds 0 (draw by draw), so under ETI the two intervals exclude their nulls
    together, on either side, for any draws. Draws are chosen near the boundary
    (a - b has its 2.5% quantile near 0), where HDIs can disagree."""
    p_a, p_b = _boundary_draws(seed)
    table = contrast_table(_probabilities(p_a, p_b), [Contrast("a", "b")],
                           IntervalSpec("eti", 0.95)).set_index("scale")
    assert (table["interval"] == "95% ETI").all()
    excludes = _excludes_null(table)
    assert len(set(excludes.values())) == 1, excludes
    # the bounds themselves: the OR's ETI is the ETI of the OR computed from each draw's
    # sign-preserving map; its lower bound sits at the same draw as the difference's
    odds = (p_a / (1 - p_a)) / (p_b / (1 - p_b))
    np.testing.assert_allclose(table.loc["odds_ratio", ["lower", "upper"]].to_numpy(float),
                               np.quantile(odds, [0.025, 0.975]))
    assert table.loc["difference", "p_gt_null"] == table.loc["odds_ratio", "p_gt_null"]


def test_hdis_of_one_contrast_can_disagree_on_the_null():
    """The check above fails under HDI on the same draws (so it can fail): near the
    boundary the difference's HDI and the odds ratio's HDI disagree."""
    disagree = 0
    for seed in range(5):
        p_a, p_b = _boundary_draws(seed)
        table = contrast_table(_probabilities(p_a, p_b), [Contrast("a", "b")],
                               IntervalSpec("hdi", 0.95)).set_index("scale")
        disagree += len(set(_excludes_null(table).values())) > 1
    assert disagree >= 1


@pytest.mark.parametrize("interval", [IntervalSpec(), IntervalSpec("eti", 0.8),
                                      IntervalSpec("hdi", 0.9)])
def test_describe_columns_equals_describe_of_each_column_number_for_number(interval,
                                                                         monkeypatch):
    """``study_estimates`` summarises its 2,000 rows in one pass; each row's numbers must
    be exactly ``describe``'s (no last-digit drift from reducing along another axis)."""
    draws = np.random.default_rng(5).beta(2.0, 5.0, size=(4, 250, 30))
    draws[..., 3] = 0.25  # a constant column: SD 0
    monkeypatch.setattr(intervals, "BLOCK_VALUES", 7 * 1000)  # blocks of 7 columns, one of 2
    columns = describe_columns(draws, interval)
    for i in range(draws.shape[-1]):
        assert {key: values[i] for key, values in columns.items()} == describe(
            draws[..., i], interval)


def test_describe_columns_with_a_non_finite_draw_is_describe_per_column():
    draws = np.random.default_rng(6).normal(size=(2, 50, 4))
    draws[0, 3, 1] = np.nan
    columns = describe_columns(draws, IntervalSpec())
    assert np.isnan(columns["mean"][1]) and np.isfinite(columns["lower"][1])
    for i in range(4):
        expected = describe(draws[..., i], IntervalSpec())
        got = {key: values[i] for key, values in columns.items()}
        assert got.keys() == expected.keys()
        assert all(got[k] == expected[k] or (got[k] != got[k] and expected[k] != expected[k])
                   for k in got)
