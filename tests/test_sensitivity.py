"""Sensitivity grids: variants equal direct fits, failures are rows, executors agree."""

from __future__ import annotations

import concurrent.futures as cf

import arviz as az
import numpy as np
import pandas as pd
import pytest

from bayes_poem import Prior, SpecError
from bayes_poem.cli import main
from bayes_poem.contrasts import Contrast
from bayes_poem.intervals import IntervalSpec
from bayes_poem.loglik import pointwise_log_likelihood, power_scaling
from bayes_poem.outputs import MARKER
from bayes_poem.sampling import SamplerSettings
from bayes_poem.sensitivity import (
    MAIN,
    GridOptions,
    Variant,
    _flag,
    build_variants,
    fit_variant,
    parse_sensitivity,
    run_sensitivity,
)

QUICK = SamplerSettings(draws=300, tune=300, chains=2, seed=4)
CONTRAST = [Contrast("type_iii", "jackhammer", margin=0.1)]
SMALL = GridOptions(tau_priors={"tau HalfCauchy(0.5)": Prior("HalfCauchy", {"beta": 0.5})},
                    turner=(), mu_priors={}, sigma_subgroup_priors={}, subgroup_effects=(),
                    likelihoods=("beta_binomial",), leave_one_out=False,
                    subsets=(("good only", "quality", ("good",)),))


def _numeric(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=["seconds"]).reset_index(drop=True)


def test_default_grid_has_every_family(sed_spec):
    variants = build_variants(sed_spec)
    groups = {v.group for v in variants}
    assert groups == {MAIN, "tau prior", "mu prior", "subgroup prior", "structure",
                      "likelihood", "leave one out"}
    assert sum(v.group == "leave one out" for v in variants) == len(sed_spec.studies)
    # main + 6 tau priors + 1 Turner + 1 mu + 2 subgroup scales + fixed + 2 likelihoods + LOO
    assert len(variants) == 1 + 6 + 1 + 1 + 2 + 1 + 2 + len(sed_spec.studies)


@pytest.mark.mcmc
def test_each_variant_equals_a_direct_fit(sed_spec):
    """Same seed, same model: the grid's numbers equal a fit built from scratch (cold:
    the warm start is tested in test_sensitivity_grid.py)."""
    variants = build_variants(sed_spec, SMALL)
    table = run_sensitivity(variants[:3], QUICK, contrasts=CONTRAST, warm_start=False).table
    for variant, direct_spec in [
        (variants[1], sed_spec.with_priors(tau=Prior("HalfCauchy", {"beta": 0.5}))),
        (variants[2], sed_spec.with_options(likelihood="beta_binomial")),
    ]:
        direct = direct_spec.fit(QUICK)
        rows = table[table["variant"] == variant.name].set_index("quantity")
        contrast = direct.contrasts(CONTRAST).query("scale == 'difference'").iloc[0]
        got = rows.loc["difference[type_iii vs jackhammer]"]
        assert got["median"] == contrast["median"]
        assert got["p_gt_0"] == contrast["p_gt_null"]
        pooled = direct.subgroup_summary().query("quantity == 'p_pooled'").set_index("subgroup")
        assert rows.loc["p_pooled[des]", "lower"] == pooled.loc["des", "lower"]


@pytest.mark.mcmc
def test_leave_one_out_by_zeroing_equals_dropping_the_study(sed_spec):
    """Exactness of zeroing: same posterior as the model without the study (4 MCSE)."""
    settings = SamplerSettings(draws=2000, tune=1000, chains=4, seed=9)
    zeroed = sed_spec.leave_out("SYN-06").fit(settings).idata.posterior
    dropped = sed_spec.without_study("SYN-06").fit(settings).idata.posterior
    for name in ("mu", "tau", "sigma_subgroup"):
        se = np.hypot(float(az.mcse(zeroed[[name]])[name]), float(az.mcse(dropped[[name]])[name]))
        diff = abs(float(zeroed[name].mean()) - float(dropped[name].mean()))
        assert diff < 4 * se, (name, diff, se)


@pytest.mark.mcmc
def test_failures_are_rows_and_the_grid_goes_on(sed_spec):
    class Exploding:
        subgroup_effects = "random"

        def subgroups_without_data(self):
            return []

        def fit(self, settings, **kwargs):  # kwargs: the warm start's initial_step
            raise RuntimeError("sampler exploded")

    variants = build_variants(sed_spec, SMALL)
    variants.insert(1, Variant("boom", "test", Exploding(), "always fails"))  # type: ignore
    result = run_sensitivity(variants, QUICK, contrasts=CONTRAST)
    status = result.table.groupby("variant", sort=False)["status"].first()
    assert status["boom"] == "failed"
    assert status["good only"] == "failed"  # des and jackhammer have no good studies
    assert "no studies in this variant" in result.failed.set_index("variant").loc[
        "good only", "error"]
    assert "sampler exploded" in result.failed.set_index("variant").loc["boom", "error"]
    assert status[MAIN] in ("ok", "diagnostics")
    assert status["beta-binomial"] in ("ok", "diagnostics")


def test_flags_mark_changed_conclusions():
    base = {"kind": "contrast", "status": "ok", "quantity": "d"}
    table = pd.DataFrame([
        {**base, "variant": MAIN, "p_gt_0": 0.97, "lower": 0.01, "upper": 0.3},
        {**base, "variant": "a", "p_gt_0": 0.90, "lower": -0.02, "upper": 0.3},
        {**base, "variant": "b", "p_gt_0": 0.96, "lower": 0.02, "upper": 0.3},
        {**base, "variant": "c", "p_gt_0": 0.96, "lower": -0.01, "upper": 0.3},
    ])
    flags = _flag(table, 0.95).set_index("variant")["flag"]
    assert "crosses 0.95" in flags["a"] and "stops excluding 0" in flags["a"]
    assert flags["b"] == ""
    assert flags["c"] == "interval stops excluding 0"


@pytest.mark.mcmc
def test_process_pool_gives_the_serial_table(sed_spec):
    variants = build_variants(sed_spec, SMALL)[:3]
    serial = run_sensitivity(variants, QUICK, contrasts=CONTRAST).table
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        parallel = run_sensitivity(variants, QUICK, contrasts=CONTRAST, executor=pool).table
    pd.testing.assert_frame_equal(_numeric(serial), _numeric(parallel))


@pytest.fixture(scope="module")
def dask_cluster():
    import distributed  # a dev dependency: a missing one fails the test, never skips it
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield cluster


@pytest.mark.mcmc
def test_dask_local_cluster_gives_the_serial_table(sed_spec, dask_cluster):
    import distributed

    variants = build_variants(sed_spec, SMALL)[:3]
    serial = run_sensitivity(variants, QUICK, contrasts=CONTRAST).table
    with distributed.Client(dask_cluster) as client:
        dask = run_sensitivity(variants, QUICK, contrasts=CONTRAST,
                               executor=client.get_executor()).table
    pd.testing.assert_frame_equal(_numeric(serial), _numeric(dask))


@pytest.mark.mcmc
def test_cli_runs_the_grid_on_a_dask_scheduler(tmp_path, dask_cluster, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(
        '[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
        '[sampler]\ndraws = 300\ntune = 300\nchains = 2\nseed = 2\n'
        '[sensitivity]\ntau_priors = [{ dist = "HalfNormal", sigma = 0.5 }]\nturner = []\n'
        'mu_priors = []\nsigma_subgroup_priors = []\nsubgroup_effects = []\n'
        'likelihoods = []\nleave_one_out = true\npsens = false\nsubsets = []\n')
    local, remote = tmp_path / "local", tmp_path / "remote"
    assert main(["sensitivity", str(spec), "--out", str(local), "--quiet"]) == 0
    assert main(["sensitivity", str(spec), "--out", str(remote), "--quiet",
                 "--scheduler", dask_cluster.scheduler_address]) == 0
    a = pd.read_csv(local / "sensitivity.csv").drop(columns=["seconds"])
    b = pd.read_csv(remote / "sensitivity.csv").drop(columns=["seconds"])
    assert len(a["variant"].unique()) == 2 + 8
    pd.testing.assert_frame_equal(a, b)


def test_fit_variant_rejects_subset_without_a_subgroup(sed_spec):
    row = fit_variant(Variant("good", "subset", sed_spec.only_where("quality", ["good"])),
                      QUICK, CONTRAST, IntervalSpec())
    assert row["status"].iloc[0] == "failed"


def test_spec_section_validation():
    config = parse_sensitivity({
        "tau_priors": [{"name": "narrow", "dist": "HalfNormal", "sigma": 0.3}],
        "turner": ["turner_adverse_nonpharm"],
        "likelihoods": ["common_effect"],
        "subsets": [{"column": "quality", "values": ["good"]}],
        "decision_threshold": 0.9,
    }, "s.toml")
    assert list(config.grid.tau_priors) == ["narrow"]
    assert config.grid.subsets == (("quality in good", "quality", ("good",)),)
    assert config.threshold == 0.9
    with pytest.raises(SpecError, match="unknown key 'sensitivity.taus'; valid keys"):
        parse_sensitivity({"taus": []}, "s.toml")
    with pytest.raises(SpecError, match="dist 'Normal' is not allowed for 'tau'"):
        parse_sensitivity({"tau_priors": [{"dist": "Normal", "sigma": 1}]}, "s.toml")
    with pytest.raises(SpecError, match="'poisson' is not one of"):
        parse_sensitivity({"likelihoods": ["poisson"]}, "s.toml")
    with pytest.raises(SpecError, match="unknown Turner|is not one of"):
        parse_sensitivity({"turner": ["turner_everything"]}, "s.toml")


@pytest.mark.mcmc
def test_pointwise_log_likelihood_and_psens(sed_spec):
    result = sed_spec.leave_out("SYN-02").fit(QUICK)
    loglik = pointwise_log_likelihood(result)
    zeroed = list(result.spec.zeroed_rows)
    assert (loglik.values[..., zeroed] == 0).all()
    assert np.isfinite(loglik.values).all()
    table = power_scaling(result)
    assert {"mu", "tau", "sigma_subgroup"} <= set(table["parameter"])
    assert table["prior_sensitivity"].between(0, 1).all()


@pytest.mark.mcmc
def test_cli_sensitivity_writes_outputs_and_rejects_bad_keys(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(
        '[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
        '[sampler]\ndraws = 300\ntune = 300\nchains = 2\nseed = 2\n'
        '[[contrasts]]\na = "type_iii"\nb = "jackhammer"\n'
        '[sensitivity]\ntau_priors = [{ dist = "HalfNormal", sigma = 0.5 }]\nturner = []\n'
        'mu_priors = []\nsigma_subgroup_priors = []\nsubgroup_effects = []\n'
        'likelihoods = []\nleave_one_out = false\npsens = false\nsubsets = []\n')
    out = tmp_path / "res"
    assert main(["sensitivity", str(spec), "--out", str(out), "--quiet"]) == 0
    assert {p.name for p in out.iterdir()} == {"sensitivity.csv", "variants.csv",
                                              "sensitivity.png", "sensitivity.txt", "spec.toml",
                                              "run.log", MARKER, "sensitivity.tex",
                                              "variants.tex", "tables.docx"}
    table = pd.read_csv(out / "sensitivity.csv")
    assert set(table["variant"]) == {MAIN, "tau HalfNormal(sigma=0.5)"}
    capsys.readouterr()
    spec.write_text('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
                    '[sensitivity]\nloo = true\n')
    assert main(["sensitivity", str(spec), "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown key 'sensitivity.loo'" in err
    assert not (tmp_path / "r2").exists()
