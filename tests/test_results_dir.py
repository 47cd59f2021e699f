"""The results directory's one owner (bayes_poem.results_dir): names, default
locations, and a round trip run-layout -> load_results without sampling.

The fits are hand-made: draws per the compiled layout (``expanded_layout``) with the
provenance attrs that ``sampling.fit`` attaches (``sampling._finish``, the code a
real fit goes through), written by the writer ``bayes-poem run`` uses
(``results_dir.run_writers`` through ``outputs.write_directory``).
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_poem import results_dir as rd
from bayes_poem.backends.compiled import expanded_layout
from bayes_poem.diagnostics import check_fit
from bayes_poem.errors import DataError, SpecError
from bayes_poem.outputs import MARKER, write_directory
from bayes_poem.results import FitResult
from bayes_poem.sampling import _finish
from bayes_poem.specfile import load_spec

ROOT = Path(__file__).resolve().parents[1]
POSITIVE = {"tau", "sigma_subgroup", "phi", "tau_cell"}

MODERATED = """\
title = "debruin2009 with two moderators (round trip of results_dir)"

[data]
dataset = "debruin2009"
outcome = "undetectable_viral_load"

[model]
moderators = ["scq", "ethnicity"]

[summary]
interval = "eti"
prob = 0.9
"""


def _analysis(source: str | Path, tmp_path: Path, draws: int = 300, chains: int = 2):
    """The spec with a small sampler setting (what the hand-made draws claim)."""
    path = Path(source)
    if not path.is_file():
        path = tmp_path / "spec.toml"
        path.write_text(source)
    analysis = load_spec(path)
    sampler = dataclasses.replace(analysis.sampler, draws=draws, chains=chains)
    return dataclasses.replace(analysis, sampler=sampler)


def _hand_made_fit(analysis, seed: int = 0) -> FitResult:
    """A FitResult as ``sampling.fit`` returns it, over hand-made draws."""
    spec = analysis.model_spec()
    settings = analysis.sampler
    rng = np.random.default_rng(seed)
    shape = (settings.chains, settings.draws)
    coords = spec.coords
    variables = {}
    for name, var_shape, dims in expanded_layout(spec):
        values = rng.normal(0.0, 0.5, (*shape, *var_shape))
        variables[name] = (("chain", "draw", *dims),
                           np.abs(values) + 0.1 if name in POSITIVE else values)
    used = {d for _, _, dims in expanded_layout(spec) for d in dims}
    posterior = xr.Dataset(variables, coords={d: coords[d] for d in used})
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros(shape, dtype=bool)),
                        "energy": (("chain", "draw"), rng.normal(0.0, 1.0, shape))})
    idata = _finish(az.InferenceData(posterior=posterior, sample_stats=stats), spec,
                    settings, 0.0)
    return FitResult(spec=spec, idata=idata, settings=settings,
                     diagnostics=check_fit(idata, warn=False), interval=analysis.interval,
                     weights=analysis.weights, at=analysis.at)


def _write_run(fit: FitResult, analysis, out: Path) -> Path:
    contrasts = fit.contrasts(list(analysis.contrasts) or None)
    writers = rd.run_writers(fit, spec_toml=analysis.resolved_toml(fit.spec), text="summary",
                             contrasts=contrasts,
                             figures={rd.bubble_file("scq"): lambda p: p.write_bytes(b"png")}
                             if fit.spec.moderators else None)
    return write_directory(out, writers, force=False, command="run")


# ---------------------------------------------------------------------- names
def test_run_layout_names_every_file_once_and_only_with_what_it_needs(tmp_path):
    plain = _hand_made_fit(_analysis(ROOT / "models" / "rat_tumors.toml", tmp_path))
    contrasts = plain.contrasts()
    names = list(rd.run_writers(plain, spec_toml="", text="", contrasts=contrasts))
    exported = ["summary.tex", "heterogeneity.tex", "study_estimates.tex", "contrasts.tex"]
    assert names == [rd.POSTERIOR, rd.SUMMARY, rd.HETEROGENEITY, rd.STUDY_ESTIMATES,
                     rd.CONTRASTS, rd.FOREST_PNG, rd.FOREST_PDF, rd.FOREST_SVG,
                     rd.DIAGNOSTICS, *exported, "diagnostics.tex",
                     "tables.docx", rd.SPEC, rd.SUMMARY_TEXT]
    moderated = _hand_made_fit(_analysis(MODERATED, tmp_path))
    explained = pd.DataFrame({"parameter": ["r2_tau2"]})
    names = list(rd.run_writers(moderated, spec_toml="", text="", contrasts=contrasts,
                                explained=explained, figures={"bubble_scq.png": print}))
    assert names == [rd.POSTERIOR, rd.SUMMARY, rd.HETEROGENEITY, rd.STUDY_ESTIMATES,
                     rd.CONTRASTS, rd.MODERATORS, rd.TAU2_EXPLAINED, rd.FOREST_PNG,
                     rd.FOREST_PDF, rd.FOREST_SVG, "bubble_scq.png",
                     rd.DIAGNOSTICS, *exported, "moderators.tex", "tau2_explained.tex",
                     "diagnostics.tex", "tables.docx", rd.SPEC, rd.SUMMARY_TEXT]
    assert rd.MARKER == MARKER == ".bayes-poem.json"
    # above FOREST_MAX_STUDIES studies `run` passes no order: no forest files
    names = list(rd.run_writers(plain, spec_toml="", text="", contrasts=contrasts,
                                forest_order=None))
    assert not {rd.FOREST_PNG, rd.FOREST_PDF, rd.FOREST_SVG} & set(names)
    assert rd.FOREST_MAX_STUDIES == 100


@pytest.mark.parametrize("column, expected", [
    ("scq", "bubble_scq.png"), ("year of study", "bubble_year_of_study.png"),
    ("a/b\\c", "bubble_a_b_c.png"), ("x.1-2", "bubble_x.1-2.png")])
def test_bubble_file_names_are_safe(column, expected):
    assert rd.bubble_file(column) == expected


# ---------------------------------------------------------------------- locations
@pytest.mark.parametrize("command, expected", [
    ("run", "results/sed_cs"), ("trial", "results/sed_cs"),
    ("compare", "results/sed_cs_compare"), ("sensitivity", "results/sed_cs_sensitivity"),
    ("bias", "results/sed_cs_bias"), ("report", "results/sed_cs_report")])
def test_default_locations(command, expected):
    assert rd.default_out(command, "models/sed_cs.toml") == Path(expected)
    assert rd.default_help(command) == expected.replace("sed_cs", "<spec name>")


def test_siblings_of_a_results_directory():
    assert rd.beside("out/fit", "report") == Path("out/fit_report")
    assert rd.beside(Path("/a/b/fit"), "sensitivity") == Path("/a/b/fit_sensitivity")


def test_the_cli_help_spells_the_defaults_of_results_dir():
    from bayes_poem.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions
                    if a.__class__.__name__ == "_SubParsersAction").choices
    with_out = {name: sub for name, sub in commands.items()
                if any("--out" in a.option_strings for a in sub._actions)}
    assert set(with_out) == set(rd.SUFFIXES)
    for name, sub in with_out.items():
        out = next(a for a in sub._actions if "--out" in a.option_strings)
        assert f"(default: {rd.default_help(name)}" in out.help


# ---------------------------------------------------------------------- round trip
@pytest.mark.parametrize("source", [ROOT / "models" / "rat_tumors.toml", MODERATED],
                         ids=["rat_tumors", "moderators"])
def test_round_trip_run_directory_to_load_results(source, tmp_path):
    analysis = _analysis(source, tmp_path)
    fit = _hand_made_fit(analysis)
    out = _write_run(fit, analysis, tmp_path / "results" / "x")
    assert json.loads((out / MARKER).read_text())["command"] == "run"

    loaded = rd.load_results(out)
    assert isinstance(loaded, FitResult)
    assert loaded.spec.table.data_hash() == fit.spec.table.data_hash()
    assert loaded.spec.moderators == fit.spec.moderators
    assert loaded.interval == fit.interval and loaded.settings == fit.settings
    xr.testing.assert_equal(loaded.posterior, fit.posterior)
    pd.testing.assert_frame_equal(loaded.diagnostics.table, fit.diagnostics.table)
    # the tables read back are what the written fit reports
    written = pd.read_csv(out / rd.SUMMARY)
    recomputed = loaded.subgroup_summary().reset_index(drop=True)
    np.testing.assert_allclose(written.select_dtypes("number").to_numpy(),
                               recomputed.select_dtypes("number").to_numpy(), rtol=1e-12)
    assert (rd.MODERATORS in {p.name for p in out.iterdir()}) == bool(fit.spec.moderators)


def test_load_results_refuses_an_edited_spec_naming_the_key(tmp_path):
    analysis = _analysis(ROOT / "models" / "rat_tumors.toml", tmp_path)
    out = _write_run(_hand_made_fit(analysis), analysis, tmp_path / "r")
    spec_toml = out / rd.SPEC
    spec_toml.write_text(spec_toml.read_text().replace("draws = 300", "draws = 200"))
    with pytest.raises(SpecError, match=r"spec.toml: sampler.draws differs from the fitted "
                                        r"model \(fitted 300, spec.toml 200\)"):
        rd.load_results(out)


def test_load_results_refuses_what_is_not_a_run_directory(tmp_path):
    with pytest.raises(DataError, match="not a directory"):
        rd.load_results(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no posterior.nc \(expected a results "):
        rd.load_results(tmp_path / "empty")
    (tmp_path / "empty" / rd.POSTERIOR).write_bytes(b"not netCDF")
    with pytest.raises(DataError, match="no spec.toml"):
        rd.load_results(tmp_path / "empty")
    (tmp_path / "empty" / rd.SPEC).write_text(
        (ROOT / "models" / "rat_tumors.toml").read_text())
    with pytest.raises(DataError, match="posterior.nc: cannot be read as a posterior"):
        rd.load_results(tmp_path / "empty")


def test_find_sensitivity_looks_in_the_directory_then_its_sibling(tmp_path):
    results = tmp_path / "fit"
    results.mkdir()
    assert rd.find_sensitivity(results) is None
    sibling = rd.beside(results, "sensitivity")
    (sibling / rd.SENSITIVITY).mkdir(parents=True)  # found, and refused: not a file
    with pytest.raises(DataError, match=r"fit_sensitivity/sensitivity.csv: not a regular "
                                        "file"):
        rd.find_sensitivity(results)
    (results / rd.SENSITIVITY).mkdir()  # the directory's own comes first
    with pytest.raises(DataError, match=r"fit/sensitivity.csv: not a regular file"):
        rd.find_sensitivity(results)


# ---------------------------------------------------------------------- ArviZ groups
@pytest.mark.parametrize("source", [ROOT / "models" / "sed_clinical_success.toml", MODERATED],
                         ids=["sed", "moderators"])
def test_posterior_nc_has_the_study_log_likelihood_and_prior_groups(source, tmp_path):
    from scipy import stats

    from bayes_poem.loo import psis_loo, study_log_likelihood
    from bayes_poem.prior_families import REGISTRY

    analysis = _analysis(source, tmp_path)
    fit = _hand_made_fit(analysis)
    out = _write_run(fit, analysis, tmp_path / "results" / "x")
    idata = az.from_netcdf(str(out / rd.POSTERIOR), engine="h5netcdf")
    assert {"log_likelihood", "prior"} <= set(idata.groups())
    assert "log_likelihood" not in fit.idata.groups()  # the fit itself is not changed
    loglik = idata.log_likelihood["y"]
    assert loglik.dims == ("chain", "draw", "study")
    xr.testing.assert_allclose(loglik, study_log_likelihood(fit), rtol=1e-12)
    # the prior: the posterior's names, dims and shapes
    for name in fit.posterior.data_vars:
        assert idata.prior[name].dims == fit.posterior[name].dims, name
        assert idata.prior[name].shape == fit.posterior[name].shape, name
    # each hyperparameter's draws follow its prior (KS test, 600 draws, alpha 1e-4)
    for name in ("mu", "tau", "sigma_subgroup", "beta"):
        if name in idata.prior:
            frozen = REGISTRY[fit.spec.priors[name].dist].scipy(fit.spec.priors[name].params)
            draws = np.ravel(idata.prior[name].values)
            assert stats.kstest(draws, frozen.cdf).pvalue > 1e-4, name
    # az.loo on the file alone = the report's PSIS-LOO (before refits), same draws
    loo = psis_loo(fit, refit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # high Pareto k of hand-made draws
        from_file = az.loo(idata, pointwise=True)
    np.testing.assert_allclose(from_file.elpd_loo, loo.psis.elpd_loo, rtol=1e-10)
    np.testing.assert_allclose(from_file.pareto_k.values, loo.table["pareto_k"], rtol=1e-10)
    # and the results directory reads back with the new groups
    loaded = rd.load_results(out)
    xr.testing.assert_equal(loaded.posterior, fit.posterior)


def test_an_old_posterior_without_the_arviz_groups_still_loads(tmp_path):
    from bayes_poem import outputs

    analysis = _analysis(ROOT / "models" / "rat_tumors.toml", tmp_path)
    fit = _hand_made_fit(analysis)
    out = _write_run(fit, analysis, tmp_path / "results" / "x")
    outputs.write_netcdf(fit.idata)(out / rd.POSTERIOR)  # as written before issue 11
    assert "prior" not in az.from_netcdf(str(out / rd.POSTERIOR)).groups()
    xr.testing.assert_equal(rd.load_results(out).posterior, fit.posterior)
