"""The unpooled contrasts beside the partially pooled ones (bayes_poem.unpooled).

Unit tier: the table assembly (``contrasts.with_unpooled``) and its text, on
hand-made draws. mcmc: the refit path on a small table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_poem.contrasts import UNPOOLED_COLUMNS, Contrast, with_unpooled
from bayes_poem.report_text import contrast_lines
from bayes_poem.sampling import SamplerSettings
from bayes_poem.spec import ModelSpec
from bayes_poem.table import load_table
from bayes_poem.unpooled import is_defined, unpooled_contrasts, unpooled_fit
from tests.helpers import fake_moderator_fit


def _table():
    rows = []
    rates = {"g0": 0.9, "g1": 0.75, "g2": 0.6}
    for s in range(8):
        for d, rate in rates.items():
            n = 20 + 3 * s
            rows.append({"study": f"S{s}", "subgroup": d, "outcome": "cs",
                         "events": round(rate * n), "total": n})
    return load_table(pd.DataFrame(rows), source="<unpooled test>")


@pytest.fixture(scope="module")
def fits():
    random = fake_moderator_fit(ModelSpec.from_table(_table(), "cs"), seed=1)
    fixed = fake_moderator_fit(random.spec.with_options(subgroup_effects="fixed"), seed=2)
    return random, fixed


def test_columns_are_matched_by_contrast_not_by_position(fits):
    random, fixed = fits
    pooled = random.contrasts()
    unpooled = fixed.contrasts()
    shuffled = unpooled.iloc[::-1].reset_index(drop=True)
    table = with_unpooled(pooled, shuffled, ("R-hat > 1.01 for mu",))
    assert list(table.columns) == [*pooled.columns, *UNPOOLED_COLUMNS]
    pd.testing.assert_frame_equal(table[pooled.columns], pooled)
    keyed = unpooled.set_index(["contrast", "quantity", "scale"])
    for row in table.itertuples(index=False):
        source = keyed.loc[(row.contrast, row.quantity, row.scale)]
        assert (row.unpooled_median, row.unpooled_lower, row.unpooled_upper,
                row.unpooled_p_gt_null, row.unpooled_p_gt_margin) == (
            source["median"], source["lower"], source["upper"], source["p_gt_null"],
            source["p_gt_margin"])
    assert (table["unpooled_problems"] == "R-hat > 1.01 for mu").all()
    # the unpooled draws differ from the pooled ones (seed 2 vs 1): a copy would pass
    assert not np.allclose(table["unpooled_median"], table["median"])


def test_mismatched_tables_are_a_bug(fits):
    random, fixed = fits
    pooled = random.contrasts()
    with pytest.raises(ValueError, match="differ"):
        with_unpooled(pooled, fixed.contrasts([Contrast("g0", "g1")]))
    with pytest.raises(ValueError, match="differ"):
        from bayes_poem.intervals import IntervalSpec

        with_unpooled(pooled, fixed.contrasts(None, IntervalSpec("hdi")))


def test_the_text_shows_both_beside_each_other(fits):
    random, fixed = fits
    table = with_unpooled(random.contrasts(), fixed.contrasts())
    lines = contrast_lines(table)
    assert "partially pooled (random subgroup effects), and unpooled" in lines[0]
    assert lines[1].count("95% ETI") == 2 and "unpooled" in lines[1]
    first = table.iloc[0]
    assert lines[2].endswith(f"| {first.unpooled_median:8.3f} [{first.unpooled_lower:7.3f}, "
                             f"{first.unpooled_upper:7.3f}]   {first.unpooled_p_gt_null:9.3f}")
    assert not any(line.startswith("WARNING") for line in lines)
    # without the columns, the table is as before
    assert "|" not in "".join(contrast_lines(random.contrasts()))


def test_only_random_subgroup_effects_are_refitted(fits):
    random, fixed = fits
    assert is_defined(random) and not is_defined(fixed)
    # a fixed-effects fit's contrasts are the unpooled ones: returned unchanged, no refit
    pd.testing.assert_frame_equal(unpooled_contrasts(fixed), fixed.contrasts())


@pytest.mark.mcmc
@pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")  # short chains
def test_the_refit_is_the_same_model_with_fixed_subgroup_effects():
    spec = ModelSpec.from_table(_table(), "cs")
    settings = SamplerSettings(draws=300, tune=300, chains=2, seed=11, progress=False)
    fit = spec.fit(settings)
    unpooled = unpooled_fit(fit)
    assert unpooled.spec.subgroup_effects == "fixed" and unpooled.settings == fit.settings
    assert unpooled.spec.study_effects == spec.study_effects
    assert unpooled.posterior.attrs["data_hash"] == fit.posterior.attrs["data_hash"]
    table = unpooled_contrasts(fit, [Contrast("g0", "g2")], unpooled=unpooled)
    direct = unpooled.contrasts([Contrast("g0", "g2")], fit.interval).set_index("scale")
    got = table.set_index("scale")
    np.testing.assert_array_equal(got["unpooled_median"], direct["median"])
    np.testing.assert_array_equal(got["unpooled_lower"], direct["lower"])
    # the fitted path (no unpooled given) is the same refit: same seed, same draws
    again = unpooled_contrasts(fit, [Contrast("g0", "g2")]).set_index("scale")
    np.testing.assert_array_equal(again["unpooled_median"], got["unpooled_median"])
