"""What users apply to our files works: ArviZ on a ``posterior.nc`` written by ``run``.

``bayes-poem run`` on the shipped example (SYNTHETIC data) writes a results directory;
``az.from_netcdf`` reads its ``posterior.nc`` back and ``az.summary``, ``az.mcse``
(methods "mean", "sd", "quantile"), ``az.ess`` and ``az.rhat`` must give finite values
for every variable, and ``az.summary``'s columns must be those functions' values.
``az.loo`` runs when the file has a ``log_likelihood`` group; it has none yet, and the
test skips only when ArviZ's refusal says so.

Why: with numpy 2.4, ArviZ 0.23.4's ``az.mcse(..., method="sd")`` (and so
``az.summary``) raises ``TypeError: only 0-dimensional arrays can be converted to Python
scalars``; pyproject.toml bounds numpy below 2.4 and this test keeps the ranges honest.
"""

from __future__ import annotations

from pathlib import Path

import arviz as az
import numpy as np
import pytest

from bayes_poem.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "models" / "sed_clinical_success.toml"

pytestmark = [
    pytest.mark.mcmc,
    # numpy 2.3's notice of the numpy 2.4 TypeError above, raised inside ArviZ's mcse "sd".
    pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def idata(tmp_path_factory):
    out = tmp_path_factory.mktemp("arviz") / "results"
    assert main(["run", str(EXAMPLE), "--out", str(out), "--quiet"]) == 0
    return az.from_netcdf(out / "posterior.nc")


def _values(dataset) -> dict[str, np.ndarray]:
    return {name: np.asarray(dataset[name]) for name in dataset.data_vars}


def _assert_finite_for_every_variable(result, idata) -> None:
    values = _values(result)
    assert set(values) == set(idata.posterior.data_vars)
    bad = {name: v for name, v in values.items() if not np.all(np.isfinite(v))}
    assert bad == {}


@pytest.mark.parametrize(("method", "kwargs"), [
    pytest.param("mean", {}, id="mean"), pytest.param("sd", {}, id="sd"),
    pytest.param("quantile", {"prob": 0.025}, id="quantile-0.025"),
    pytest.param("quantile", {"prob": 0.975}, id="quantile-0.975")])
def test_mcse(idata, method, kwargs):
    mcse = az.mcse(idata, method=method, **kwargs)
    _assert_finite_for_every_variable(mcse, idata)
    assert all(np.all(v > 0) for v in _values(mcse).values())
    # A Monte Carlo error is far below the posterior's spread (4 x 1000 healthy draws).
    sd = idata.posterior.std(("chain", "draw"))
    assert all(np.all(_values(mcse)[n] < 0.2 * _values(sd)[n]) for n in sd.data_vars)


@pytest.mark.parametrize("method", ["bulk", "tail"])
def test_ess(idata, method):
    ess = az.ess(idata, method=method)
    _assert_finite_for_every_variable(ess, idata)
    assert all(np.all(v > 100) for v in _values(ess).values())


def test_rhat(idata):
    rhat = az.rhat(idata)
    _assert_finite_for_every_variable(rhat, idata)
    assert all(np.all(v < 1.05) for v in _values(rhat).values())


def test_summary_columns_are_the_diagnostics(idata):
    table = az.summary(idata, round_to="none")
    assert np.isfinite(table.to_numpy(dtype=float)).all()
    for column, computed in (("mcse_mean", az.mcse(idata, method="mean")),
                             ("mcse_sd", az.mcse(idata, method="sd")),
                             ("ess_bulk", az.ess(idata, method="bulk")),
                             ("r_hat", az.rhat(idata))):
        for name in ("mu", "tau", "sigma_subgroup"):
            assert table.loc[name, column] == pytest.approx(float(computed[name]), rel=1e-9)


def test_loo_where_the_log_likelihood_group_exists(idata):
    if "log_likelihood" not in idata.groups():
        # The group's absence, and nothing else, is why there is no LOO to check.
        with pytest.raises(TypeError, match="log likelihood not found"):
            az.loo(idata)
        pytest.skip("posterior.nc has no log_likelihood group (run does not write one yet)")
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo) and np.isfinite(loo.p_loo)
