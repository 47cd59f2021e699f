"""Vectorised R-hat and ESS (:mod:`bayes_poem.mcmc_stats`) equal ArviZ's, element by element.

Synthetic draws (no sampling): AR(1) chains over a range of ``phi`` (so ESS
runs from well above to far below the number of draws and Geyer's truncation
lands at many lags), plus edge elements ArviZ treats specially. Each value is
compared with ``az.rhat`` / ``az.ess(method="bulk"/"tail")`` called on that one
element. The only difference is rounding (``np.var`` against ArviZ's
``E[x^2] - E[x]^2`` under numba), hence 1e-10 relative; NaN must match NaN.
"""

from __future__ import annotations

import logging
import warnings

import arviz as az
import numpy as np
import pytest

from bayes_poem import mcmc_stats
from bayes_poem.diagnostics import check_fit

REL = 1e-10
SHAPES = [(4, 1000), (4, 200), (2, 7), (3, 5), (1, 50), (4, 4), (2, 101), (4, 9), (1, 3)]
FUNCS = {
    "rhat": (mcmc_stats.rhat_rank, lambda a: az.rhat(a)),
    "bulk": (mcmc_stats.ess_bulk, lambda a: az.ess(a, method="bulk")),
    "tail": (mcmc_stats.ess_tail, lambda a: az.ess(a, method="tail")),
}


def _draws(chains, draws, seed=0):
    """AR(1) chains, phi from -0.9 to 0.99 (stationary start), then edge elements."""
    rng = np.random.default_rng(seed)
    k = 30
    phis = np.linspace(-0.9, 0.99, k)
    x = np.empty((chains, draws, k))
    noise = rng.normal(size=(chains, draws, k))
    x[:, 0] = noise[:, 0] / np.sqrt(1 - phis**2)
    for t in range(1, draws):
        x[:, t] = phis * x[:, t - 1] + noise[:, t]
    x[:, :, 0] = 0.5                                    # constant element
    x[:, :, 1] = np.round(x[:, :, 1])                   # many ties
    x[0, min(2, draws - 1), 2] = np.nan                 # one NaN draw
    x[:, :, 3] += 1e6                                   # large offset
    x[-1, :, 4] = 3.0                                   # one stuck chain
    x[:, :, 5] = rng.integers(0, 2, size=(chains, draws))  # binary draws
    x[:, :, 6] = np.arange(draws)                       # a trend, same in every chain
    x[0, :, 7] = 10.0 + x[0, :, 7]                      # one chain elsewhere
    return x


def _arviz(ref, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([float(ref(x[:, :, j])) for j in range(x.shape[2])])


@pytest.fixture(autouse=True)
def _quiet_arviz():
    logger = logging.getLogger("arviz")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "Array contains NaN-value" / shape warnings
    yield
    logger.setLevel(level)


@pytest.mark.parametrize("chains, draws", SHAPES, ids=lambda v: str(v))
@pytest.mark.parametrize("kind", sorted(FUNCS))
def test_every_element_equals_arviz(kind, chains, draws):
    mine, ref = FUNCS[kind]
    x = _draws(chains, draws, seed=chains * 1000 + draws)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning leaks out of the vectorised code
        got = mine(x)
    want = _arviz(ref, x)
    assert got.shape == (x.shape[2],)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=REL, atol=0)


def test_edge_elements_are_what_arviz_makes_them():
    """Pinned, so a change in ArviZ or here is seen: constant -> NaN R-hat but ESS = draws."""
    x = _draws(4, 200)
    rhat, bulk, tail = (FUNCS[k][0](x) for k in ("rhat", "bulk", "tail"))
    assert np.isnan(rhat[0]) and bulk[0] == tail[0] == 800
    assert np.isnan(rhat[2]) and np.isnan(bulk[2]) and np.isnan(tail[2])
    assert rhat[7] > 1.5 and rhat[6] > 1.5  # separated chains and trends are caught
    assert bulk[-1] < 100 < bulk[10]  # phi = 0.99 mixes slowly, phi ~ 0 does not


def test_one_chain_has_no_rhat_but_has_ess():
    x = _draws(1, 50)
    assert np.isnan(mcmc_stats.rhat_rank(x)).all()
    assert np.isfinite(mcmc_stats.ess_bulk(x)[8:]).all()


def test_float32_draws_equal_arviz():
    x = _draws(4, 200)[:, :, 8:].astype(np.float32)
    for kind, (mine, ref) in FUNCS.items():
        np.testing.assert_allclose(mine(x), _arviz(ref, x), rtol=REL, atol=0, err_msg=kind)


def test_check_fit_table_equals_arviz_extremes():
    rng = np.random.default_rng(3)
    theta = _draws(4, 300, seed=5)[:, :, 8:].reshape(4, 300, 11, 2)
    idata = az.from_dict(posterior={"mu": rng.normal(size=(4, 300)), "theta": theta},
                         sample_stats={"diverging": np.zeros((4, 300), dtype=bool),
                                       "energy": rng.normal(size=(4, 300))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = check_fit(idata, warn=False).table
        want = {"r_hat": az.rhat(idata.posterior).max(),
                "ess_bulk": az.ess(idata.posterior, method="bulk").min(),
                "ess_tail": az.ess(idata.posterior, method="tail").min()}
    for column, extremes in want.items():
        for name in ("mu", "theta"):
            assert table.loc[name, column] == pytest.approx(float(extremes[name]), rel=REL)


def _rounded(x, decimals):
    """Draws with tie blocks of many lengths, at the extremes and in the middle."""
    return np.round(x, decimals)


@pytest.mark.parametrize("case", ["no ties", "ties", "mixed"])
@pytest.mark.parametrize("kind", sorted(FUNCS))
def test_ties_and_no_ties_equal_arviz(kind, case, monkeypatch):
    """Both ranking paths (the score table scattered; tie blocks' own scores), in blocks
    holding only untied elements, only tied ones, or both."""
    x = _draws(4, 60, seed=11)[:, :, 8:]  # continuous AR(1): no ties
    if case == "ties":
        x = _rounded(x, 1)
    elif case == "mixed":
        x[:, :, ::2] = _rounded(x[:, :, ::2], 1)
    monkeypatch.setattr(mcmc_stats, "BLOCK_BYTES", 3 * 8 * 4 * 60)  # 3 elements a block
    mine, ref = FUNCS[kind]
    got, want = mine(x), _arviz(ref, x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=REL, atol=0)


def test_normal_scores_are_blom_scores_of_average_ranks():
    """Exactly ``ndtri((rankdata - 3/8) / (M + 1/4))``, ties and no ties, every element."""
    from scipy import special, stats

    x = _draws(3, 40, seed=2)[:, :, 8:]
    x[:, :, :6] = _rounded(x[:, :, :6], 0)  # long tie blocks
    x[:, :, 6] = np.repeat([0.0, -0.0, 1.0], 40)[:, None].reshape(3, 40)  # signed zeros tie
    s = mcmc_stats._split(x)
    z, srt = mcmc_stats._normal_scores(s)
    rows = s.reshape(s.shape[0], -1)
    size = rows.shape[1]
    want = special.ndtri((stats.rankdata(rows, axis=1) - 3 / 8) / (size - 3 / 4 + 1))
    np.testing.assert_array_equal(z.reshape(rows.shape), want)
    np.testing.assert_array_equal(srt, np.sort(rows, axis=1))


def _same(got, want):
    """Equal to rounding (numpy's reductions sum in an order that depends on the
    array's shape), NaN where NaN."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


def test_values_do_not_depend_on_blocks(monkeypatch):
    x = _draws(4, 200, seed=4)
    whole = mcmc_stats.all_three(x)
    for block in (1, 7):
        monkeypatch.setattr(mcmc_stats, "BLOCK_BYTES", block * 8 * 4 * 200)
        for got, want in zip(mcmc_stats.all_three(x), whole, strict=True):
            _same(got, want)


def test_all_three_of_equals_each_variable_alone(monkeypatch):
    """Variables joined into shared blocks (same shape and dtype) or not (float32,
    another draw count, no elements) give what each gives alone, and ArviZ's values."""
    base = _draws(4, 100, seed=8)
    arrays = [base[:, :, :5], base[:, :, 5:6], base[:, :, 6:].astype(np.float32),
              base[:, :50, 20:23], base[:, :, 6:20], np.empty((4, 100, 0))]
    monkeypatch.setattr(mcmc_stats, "BLOCK_BYTES", 4 * 8 * 4 * 100)  # blocks span variables
    joint = mcmc_stats.all_three_of(arrays)
    assert len(joint) == len(arrays)
    for x, got in zip(arrays, joint, strict=True):
        alone = (FUNCS[k][0](x) for k in ("rhat", "bulk", "tail"))
        for kind, values, single in zip(("rhat", "bulk", "tail"), got, alone, strict=True):
            assert values.shape == (x.shape[2],)
            _same(values, single)
            want = _arviz(FUNCS[kind][1], x)
            np.testing.assert_array_equal(np.isnan(values), np.isnan(want))
            np.testing.assert_allclose(values, want, rtol=REL, atol=0)
