"""Issue 10, section 5: a moderator-set axis of the sensitivity grid, and the share of
tau^2 explained by the moderators (``bayes_poem.explained.tau2_explained``).

Unmarked tests build grids only (nothing is sampled); the ``mcmc`` ones fit small
models on simulated data and run one ``bayes-poem sensitivity`` grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_poem import SpecError, load_table
from bayes_poem.explained import tau2_explained
from bayes_poem.sampling import SamplerSettings
from bayes_poem.sensitivity import (
    GridOptions,
    build_variants,
    parse_sensitivity,
    read_table,
    spec_grid,
)
from bayes_poem.spec import ModelSpec
from tests.helpers import run_cli

pytestmark = pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")

CSV = """study,subgroup,outcome,events,total,quality,year,site
A,x,cs,8,10,good,2010,eu
A,y,cs,4,6,good,2010,eu
B,x,cs,9,15,fair,2012,eu
C,y,cs,2,7,good,2015,eu
D,x,cs,7,10,fair,2018,eu
D,y,cs,5,9,fair,2018,eu
"""
OFF = ("tau_priors = []\nturner = []\nmu_priors = []\nsigma_subgroup_priors = []\n"
       "subgroup_effects = []\nlikelihoods = []\nleave_one_out = false\npsens = false\n"
       "subsets = []\n")
SAMPLER = "[sampler]\ndraws = 200\ntune = 200\nchains = 2\nseed = 3\n"


def _table(tmp_path: Path):
    (tmp_path / "d.csv").write_text(CSV)
    return load_table(tmp_path / "d.csv")


def _grid(**kwargs) -> GridOptions:
    off = dict(tau_priors={}, turner=(), mu_priors={}, sigma_subgroup_priors={},
               subgroup_effects=(), likelihoods=(), leave_one_out=False, subsets=())
    return GridOptions(**{**off, **kwargs})


def _spec_file(tmp_path: Path, sets: str, model: str = "") -> Path:
    (tmp_path / "d.csv").write_text(CSV)
    path = tmp_path / "s.toml"
    path.write_text('[data]\npath = "d.csv"\noutcome = "cs"\n' + model + SAMPLER
                    + "[sensitivity]\n" + OFF + sets)
    return path


# ---------------------------------------------------------------------- tier 1: the grid
def test_no_key_no_moderator_variants(tmp_path):
    spec = ModelSpec.from_table(_table(tmp_path))
    config = parse_sensitivity({}, "s.toml")
    assert config.grid.moderator_sets == ()
    assert all(v.group != "moderators" for v in build_variants(spec, config.grid))


def test_one_variant_per_set_and_the_main_set_is_skipped(tmp_path):
    spec = ModelSpec.from_table(_table(tmp_path), moderators=["year"])
    config = parse_sensitivity(
        {"moderator_sets": [[], ["year"], ["year", "quality"], ["quality"]]}, "s.toml")
    variants = build_variants(spec, _grid(moderator_sets=config.grid.moderator_sets))
    names = [v.name for v in variants]
    assert names == ["main", "moderators: none", "moderators: year, quality",
                     "moderators: quality"]
    by_name = {v.name: v for v in variants}
    assert by_name["moderators: none"].spec.moderators == ()
    assert [m.name for m in by_name["moderators: year, quality"].spec.moderators] == [
        "year", "quality"]
    assert {v.group for v in variants[1:]} == {"moderators"}
    # the rest of the model is the main one
    for v in variants[1:]:
        assert v.spec.priors == spec.priors and v.spec.zeroed_rows == spec.zeroed_rows
        assert v.spec.subgroup_effects == spec.subgroup_effects


def test_main_set_is_skipped_in_any_order(tmp_path):
    spec = ModelSpec.from_table(_table(tmp_path), moderators=["year", "quality"])
    variants = build_variants(spec, _grid(moderator_sets=(("quality", "year"), ())))
    assert [v.name for v in variants] == ["main", "moderators: none"]


def test_variants_keep_the_main_coding(tmp_path):
    spec = ModelSpec.from_table(_table(tmp_path), moderators=["year", "quality"],
                                moderator_reference={"year": 2000, "quality": "good"},
                                moderator_scale={"year": 10.0})
    variants = build_variants(spec, _grid(moderator_sets=(("year",), ("quality",))))
    year = variants[1].spec.moderators[0]
    assert (year.centre, year.scale) == (2000.0, 10.0)
    quality = variants[2].spec.moderators[0]
    assert quality.reference == "good" and quality.terms == ["quality[fair]"]


def test_new_columns_get_the_default_coding(tmp_path):
    spec = ModelSpec.from_table(_table(tmp_path))
    (year,) = build_variants(spec, _grid(moderator_sets=(("year",),)))[1].spec.moderators
    values = np.array([2010, 2010, 2012, 2015, 2018, 2018], dtype=float)
    assert year.centre == pytest.approx(values.mean())
    assert year.scale == pytest.approx(values.std(ddof=1))


BAD = {
    "not a list": ("moderator_sets = [\"year\"]", "sensitivity.moderator_sets[1]: must be a list"),
    "not an array": ("moderator_sets = \"year\"", "sensitivity.moderator_sets must be an array"),
    "empty name": ("moderator_sets = [[\"\"]]", "sensitivity.moderator_sets[1]: must be a list"),
    "twice in a set": ("moderator_sets = [[\"year\", \"year\"]]",
                       "sensitivity.moderator_sets[1]: 'year' is listed twice"),
    "duplicate set": ("moderator_sets = [[\"year\", \"quality\"], [], [\"quality\", \"year\"]]",
                      "sensitivity.moderator_sets[3]: the same moderators as "
                      "sensitivity.moderator_sets[1]"),
    "unknown column": ("moderator_sets = [[], [\"yaer\"]]",
                       "sensitivity.moderator_sets[2]: no column 'yaer' in the data"),
    "reserved column": ("moderator_sets = [[\"total\"]]",
                        "sensitivity.moderator_sets[1]: 'total' is a column of the model's"),
    "constant column": ("moderator_sets = [[\"year\", \"site\"]]",
                        "d.csv: moderator 'site' is constant"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_sets_are_one_line_at_check(tmp_path, capsys, case):
    keys, message = BAD[case]
    path = _spec_file(tmp_path, keys + "\n")
    code, out, err = run_cli(["check", path], capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{path}: " in err and message in err, err
    assert "sensitivity.moderator_sets" in err, err


def test_spec_grid_names_the_source(tmp_path):
    spec = ModelSpec.from_table(_table(tmp_path))
    with pytest.raises(SpecError, match=r"^s\.toml: sensitivity\.moderator_sets\[1\]: no col"):
        spec_grid({"moderator_sets": [["nope"]]}, spec, "s.toml")
    config, variants = spec_grid({"moderator_sets": [["year"]], "subsets": []}, spec,
                                 "s.toml")
    assert variants[-1].name == "moderators: year"


def test_a_set_named_like_another_variant_is_refused(tmp_path):
    spec = ModelSpec.from_table(_table(tmp_path))
    with pytest.raises(SpecError, match="both name a variant 'moderators: year'"):
        build_variants(spec, _grid(subsets=(("moderators: year", "quality", ("good",)),),
                                   moderator_sets=(("year",),)))


def test_tau2_explained_refuses_models_without_moderators_or_tau(sed_spec):
    from types import SimpleNamespace

    fit = SimpleNamespace(spec=sed_spec, posterior={"tau": None})
    with pytest.raises(SpecError, match="no moderators"):
        tau2_explained(fit)
    common = sed_spec.with_moderators("year").with_options(study_effects="common")
    with pytest.raises(SpecError, match="no random study effects"):
        tau2_explained(SimpleNamespace(spec=common, posterior={}))


# ---------------------------------------------------------------------- mcmc: R^2
def _simulated(tmp_path: Path, explained: bool, seed: int) -> ModelSpec:
    rng = np.random.default_rng(seed)
    k = 24
    x = rng.normal(size=k)
    if explained:  # the moderator carries nearly all the heterogeneity
        logit = -0.3 + 1.0 * x + rng.normal(scale=0.1, size=k)
    else:  # pure noise moderator
        logit = -0.3 + rng.normal(scale=0.8, size=k)
    total = np.full(k, 200)
    events = rng.binomial(total, 1 / (1 + np.exp(-logit)))
    frame = pd.DataFrame({"study": [f"S{i:02d}" for i in range(k)], "subgroup": "all",
                          "outcome": "y", "events": events, "total": total,
                          "x": np.round(x, 4)})
    path = tmp_path / f"sim_{explained}.csv"
    frame.to_csv(path, index=False)
    return ModelSpec.from_table(load_table(path), moderators=["x"])


SETTINGS = SamplerSettings(draws=400, tune=400, chains=2, seed=7)


@pytest.mark.mcmc
def test_r2_near_one_when_the_moderator_explains_the_heterogeneity(tmp_path):
    fit = _simulated(tmp_path, True, seed=1).fit(SETTINGS)
    table = tau2_explained(fit)
    row = table.iloc[0]
    assert row["parameter"] == "r2_tau2" and row["moderators"] == "x"
    assert row["r2"] > 0.85, table
    assert row["tau2_median_without"] > row["tau2_median_with"]


@pytest.mark.mcmc
def test_r2_near_zero_for_a_noise_moderator(tmp_path):
    spec = _simulated(tmp_path, False, seed=2)
    fit = spec.fit(SETTINGS)
    without = spec.with_moderators().fit(SETTINGS)
    table = tau2_explained(fit, without=without)
    assert 0.0 <= table.iloc[0]["r2"] < 0.25, table
    assert table.iloc[0]["r2_raw"] == pytest.approx(
        1 - table.iloc[0]["tau2_median_with"] / table.iloc[0]["tau2_median_without"])
    with pytest.raises(SpecError, match="same model"):
        tau2_explained(fit, without=fit)


# ---------------------------------------------------------------------- mcmc: the CLI grid
@pytest.mark.mcmc
def test_cli_sensitivity_with_a_moderator_set_axis(tmp_path, capsys):
    path = _spec_file(tmp_path, 'moderator_sets = [[], ["year"], ["year", "quality"]]\n',
                      model='[model]\nmoderators = ["year"]\n')
    out_dir = tmp_path / "out"
    code, out, err = run_cli(["sensitivity", path, "--out", out_dir, "--quiet"], capsys)
    assert code == 0, err
    table = read_table(out_dir / "sensitivity.csv")
    variants = list(dict.fromkeys(table["variant"]))
    assert variants == ["main", "moderators: none", "moderators: year, quality"]
    fitted = table[table["variant"] != "main"]
    assert (fitted["status"] != "failed").all(), fitted[["variant", "error"]]
    assert set(fitted["group"]) == {"moderators"}
    assert {"tau", "p_pooled[x]"} <= set(fitted["quantity"])
