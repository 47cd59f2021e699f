"""``check_fit``'s table, problems and messages against ArviZ's own functions.

Constructed SYNTHETIC traces (no sampling) with every kind of problem at once:
R-hat above 1.01 (one chain elsewhere), bulk and tail ESS below 100 per chain
(AR(1) with phi = 0.99), divergences, E-BFMI below 0.3 (a random-walk energy
in one chain). The expected lines are built from ``az.rhat``, ``az.ess`` and
``az.bfmi`` on the whole InferenceData, so they check check_fit's own
bookkeeping (joined variables, names, order) as well as the numbers.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest

from bayes_poem.diagnostics import BFMI_MIN, ESS_PER_CHAIN_MIN, RHAT_MAX, check_fit
from bayes_poem.errors import ConvergenceWarning, SamplingError

CHAINS, DRAWS = 4, 300


def _ar1(rng, shape, phi):
    x = np.empty(shape)
    noise = rng.normal(size=shape)
    x[:, 0] = noise[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, shape[1]):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


def _idata(seed=1):
    rng = np.random.default_rng(seed)
    shifted = rng.normal(size=(CHAINS, DRAWS, 2))
    shifted[0] += 3.0  # one chain elsewhere: R-hat
    energy = rng.normal(size=(CHAINS, DRAWS))
    energy[2] = np.cumsum(energy[2])  # a random walk: E-BFMI far below 0.3
    diverging = np.zeros((CHAINS, DRAWS), dtype=bool)
    diverging[1, [5, 50, 70]] = True
    posterior = {"mu": rng.normal(size=(CHAINS, DRAWS)),
                 "slow": _ar1(rng, (CHAINS, DRAWS, 3), 0.99),  # ESS: bulk and tail
                 "shifted": shifted,
                 "fine": rng.normal(size=(CHAINS, DRAWS, 5)).astype(np.float32)}
    return az.from_dict(posterior=posterior,
                        sample_stats={"diverging": diverging, "energy": energy})


def _names(dataset, test):
    return ", ".join(name for name in dataset.data_vars if test(float(dataset[name].values)))


def test_table_and_problems_equal_arviz():
    idata = _idata()
    post = idata.posterior
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = az.rhat(post).max()
        bulk = az.ess(post, method="bulk").min()
        tail = az.ess(post, method="tail").min()
        bfmi = az.bfmi(idata)
    min_ess = ESS_PER_CHAIN_MIN * CHAINS
    low_bfmi = [str(i) for i, b in enumerate(bfmi) if b < BFMI_MIN]
    want = (f"R-hat > {RHAT_MAX} for {_names(rhat, lambda v: v > RHAT_MAX)}",
            f"ess bulk < {min_ess} for {_names(bulk, lambda v: v < min_ess)}",
            f"ess tail < {min_ess} for {_names(tail, lambda v: v < min_ess)}",
            "3 divergent transition(s)",
            f"E-BFMI < {BFMI_MIN} in chain(s) {', '.join(low_bfmi)}")
    assert want[0].endswith("shifted") and "slow" in want[1] and "slow" in want[2]
    assert low_bfmi == ["2"]
    with pytest.warns(ConvergenceWarning) as caught:
        diagnostics = check_fit(idata)
    assert diagnostics.problems == want
    assert str(caught[0].message) == "sampler diagnostics: " + "; ".join(want)
    assert diagnostics.bfmi == pytest.approx(tuple(float(b) for b in bfmi), rel=1e-12)
    assert diagnostics.divergences == 3
    table = diagnostics.table
    assert table.index.name == "variable" and list(table.index) == list(post.data_vars)
    assert list(table.columns) == ["r_hat", "ess_bulk", "ess_tail"]
    for column, extremes in (("r_hat", rhat), ("ess_bulk", bulk), ("ess_tail", tail)):
        for name in post.data_vars:
            assert table.loc[name, column] == pytest.approx(float(extremes[name]), rel=1e-10)


def test_every_nan_diagnostic_is_named():
    idata = _idata()
    idata.posterior["fine"][0, 3, 1] = np.nan
    idata.sample_stats["energy"][1, 7] = np.nan
    with pytest.raises(SamplingError) as error:
        check_fit(idata, warn=False)
    assert str(error.value) == (
        "sampler diagnostics could not be computed (NaN or infinite): r_hat of fine; "
        "ess_bulk of fine; ess_tail of fine; E-BFMI; no results")


def test_e_bfmi_is_arvizs_formula_and_shift_invariant():
    from bayes_poem.diagnostics import e_bfmi

    rng = np.random.default_rng(7)
    energy = rng.normal(size=(4, 500))
    energy[1] = np.cumsum(energy[1])  # a chain with low E-BFMI
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = az.bfmi(energy)
    assert e_bfmi(energy) == pytest.approx(want, rel=1e-12)
    # E-BFMI does not depend on the energy's level; numpy's two-pass variance keeps
    # that to rounding at a level of 1e4 (a model's energies are often that large)
    assert e_bfmi(energy + 1e4) == pytest.approx(e_bfmi(energy), rel=1e-9)
    assert e_bfmi(energy[0]).shape == (1,)
