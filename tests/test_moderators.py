"""Moderators (meta-regression, issue 10): coding, validation, the spec file, results.

Tier 1 (no sampling): the coding of numeric and categorical moderators, every
validation error (Python and one CLI line), the buffer without moderators equal
to the one before moderators existed, the resolved spec.toml, ``at=`` and the
coefficient table on hand-made draws. Tier 2 (``mcmc``): attrs and refusal of an
edited moderator list, refits that never compile, recovery of a clear slope on
SYNTHETIC data, and a byte-for-byte rerun of the resolved spec. The compiled
density with moderators is checked against PyMC in ``tests/test_density.py``.
"""

from __future__ import annotations

import hashlib
import io
import json
import tomllib
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from bayes_poem import DataError, ModelSpec, Prior, SpecError, load_dataset, load_table
from bayes_poem.backends import compiled
from bayes_poem.dims import MODERATOR, SUBGROUP
from bayes_poem.results import with_summary_options
from bayes_poem.sampling import SamplerSettings
from bayes_poem.specfile import load_spec
from tests.conftest import SED_ORDER
from tests.helpers import fake_moderator_fit as _fake_fit
from tests.helpers import run_cli
from tests.test_density import moderator_table

CSV = """study,subgroup,outcome,events,total,quality,year,volume
A,x,cs,8,10,good,2015,3
A,y,cs,4,6,good,2015,1.5
B,x,cs,9,15,fair,2016,4
C,y,cs,2,7,good,2017,2
D,z,cs,7,10,fair,2018,1
D,y,cs,5,9,fair,2018,2.5
E,x,cs,9,12,poor,2019,6
E,z,cs,3,8,poor,2019,2
A,x,ae,1,10,excellent,2015,3
"""
SAMPLER = "[sampler]\ndraws = 200\ntune = 200\nchains = 2\nseed = 7\n"


@pytest.fixture(scope="module")
def table():
    return load_table(pd.read_csv(io.StringIO(CSV), dtype=str), source="d.csv")


def _spec(table, *names, **kwargs):
    return ModelSpec.from_table(table, "cs").with_moderators(*names, **kwargs)


# ---------------------------------------------------------------------- coding
def test_numeric_moderator_is_centred_and_scaled_over_the_model_rows(table):
    spec = _spec(table, "year")
    (year,) = spec.moderators
    values = spec.table.frame["year"].astype(float)  # the 8 'cs' rows, not the 'ae' row
    assert year.kind == "numeric" and len(values) == 8
    assert year.centre == values.mean() and year.scale == values.std(ddof=1)
    np.testing.assert_allclose(spec.design()[:, 0], (values - values.mean()) / values.std())
    assert spec.moderator_terms == ["year"] and spec.coords[MODERATOR] == ["year"]


def test_numeric_options_reference_centre_unscaled_and_given_scale(table):
    (year,) = _spec(table, "year", reference={"year": 2015}, scale=False).moderators
    assert (year.centre, year.scale) == (2015.0, 1.0)
    (year,) = _spec(table, "year", scale={"year": 5}).moderators
    assert year.scale == 5.0
    spec = _spec(table, "year", reference={"year": 2015}, scale=False)
    np.testing.assert_array_equal(spec.design()[:, 0],
                                  spec.table.frame["year"].astype(float) - 2015)


def test_categorical_moderator_gets_dummies_against_the_first_sorted_level(table):
    spec = _spec(table, "quality")
    (quality,) = spec.moderators
    assert quality.kind == "categorical"
    assert quality.levels == ("fair", "good", "poor") and quality.reference == "fair"
    assert spec.moderator_terms == ["quality[good]", "quality[poor]"]
    frame = spec.table.frame
    expected = np.stack([(frame["quality"] == "good"), (frame["quality"] == "poor")], 1)
    np.testing.assert_array_equal(spec.design(), expected.astype(float))
    other = _spec(table, "quality", reference={"quality": "good"})
    assert other.moderator_terms == ["quality[fair]", "quality[poor]"]


def test_numbers_can_be_declared_categorical_and_row_level_values_are_kept(table):
    spec = _spec(table, "year", "volume", kinds={"year": "categorical"})
    year, volume = spec.moderators
    assert year.kind == "categorical" and year.levels == ("2015", "2016", "2017", "2018",
                                                          "2019")
    assert volume.kind == "numeric"
    # volume differs between the two rows of study A: row-level, not averaged
    rows = spec.table.frame["study"] == "A"
    assert len(set(spec.design()[rows.to_numpy(), -1])) == 2


def test_no_moderators_give_exactly_the_buffer_before_moderators_existed(sed_spec):
    """SHA-256 of buffers written by the code before issue 10 (K = 0: same semantics).

    The header has since grown by the cell-effect slots (24-27, all 0 without cell
    effects); without them the buffer is byte for byte the old one.
    """
    from bayes_poem.backends import density

    before = {"random": "3f969e09169a8985", "fixed": "32ff9fd1b76afe39",
              "beta_binomial": "f8efd85ded195cc4", "leave_out": "b202dd1d7343c97e"}
    variants = {"random": sed_spec, "fixed": sed_spec.with_options(subgroup_effects="fixed"),
                "beta_binomial": sed_spec.with_options(likelihood="beta_binomial"),
                "leave_out": sed_spec.leave_out("SYN-06")}
    old_header = 24
    added = density.HEADER - old_header
    for name, spec in variants.items():
        buffer = np.array(compiled.density_buffer(spec))
        assert not buffer[old_header:density.HEADER].any()
        old = np.concatenate([buffer[:old_header], buffer[density.HEADER:]])
        old[density.H_LENGTH] -= added
        digest = hashlib.sha256(old.tobytes()).hexdigest()[:16]
        assert digest == before[name], name
        np.testing.assert_array_equal(compiled.density_buffer(spec.with_moderators()),
                                      compiled.density_buffer(spec))
    with_year = sed_spec.with_moderators("year")
    assert with_year.with_moderators() == sed_spec
    assert "beta" not in sed_spec.parameter_names() and "beta" in with_year.parameter_names()


def test_variants_keep_the_coding(sed_spec):
    spec = sed_spec.with_moderators("year", "quality")
    for variant in (spec.leave_out("SYN-06"), spec.only_where("quality", ["good"]),
                    spec.with_priors(beta=Prior("Normal", {"sigma": 0.5})),
                    spec.with_options(subgroup_effects="fixed")):
        assert variant.moderators == spec.moderators
        np.testing.assert_array_equal(variant.design(), spec.design())
    smaller = spec.without_study("SYN-06")  # other rows, the same coding (mu keeps meaning)
    assert smaller.moderators == spec.moderators
    assert len(smaller.design()) < len(spec.design())


def test_without_study_may_leave_a_level_to_its_prior(table):
    spec = _spec(table, "quality")
    smaller = spec.without_study("E")  # the only 'poor' study
    assert smaller.moderator_terms == ["quality[good]", "quality[poor]"]
    assert (smaller.design()[:, 1] == 0).all()


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize("names, kwargs, error, message", [
    (["nope"], {}, DataError, "d.csv: no column 'nope' for the moderator; covariates: "
                              "quality, year, volume"),
    (["events"], {}, SpecError, "model.moderators: 'events' is a column of the model's own"),
    (["year", "year"], {}, SpecError, "model.moderators: 'year' listed more than once"),
    (["year"], {"kinds": {"year": "ordinal"}}, SpecError,
     "model.moderator_kinds.year: 'ordinal' is not one of numeric, categorical"),
    (["quality"], {"kinds": {"quality": "numeric"}}, DataError,
     "d.csv: row 'A | x' (outcome cs), column 'quality': 'good' is not a finite number"),
    (["quality"], {"reference": {"quality": "excellent"}}, SpecError,
     "model.moderator_reference.quality: 'excellent' is not a level of 'quality'; levels: "
     "fair, good, poor"),
    (["year"], {"reference": {"year": "2015"}}, SpecError,
     "model.moderator_reference.year: the reference (centre) of a numeric moderator must be"),
    (["year"], {"reference": {"quality": "good"}}, SpecError,
     "model.moderator_reference: 'quality' is not a moderator; moderators: year"),
    (["year"], {"scale": {"year": 0}}, SpecError, "model.moderator_scale.year: must be a "
                                                  "finite number > 0 (got 0)"),
    (["quality"], {"scale": {"quality": 2}}, SpecError,
     "model.moderator_scale.quality: 'quality' is categorical"),
])
def test_invalid_moderators_raise_one_error_naming_the_key_or_row(table, names, kwargs, error,
                                                                  message):
    with pytest.raises(error) as excinfo:
        _spec(table, *names, **kwargs)
    assert message in str(excinfo.value)


def _table(text: str):
    return load_table(pd.read_csv(io.StringIO(text), dtype=str), source="t.csv")


def test_missing_mixed_and_constant_values_name_the_row_and_column():
    missing = _table("study,outcome,events,total,year\nA,cs,1,4,2015\nB,cs,2,5,\nC,cs,1,3,2017\n")
    with pytest.raises(DataError, match=r"t.csv: row 'B \| all' \(outcome cs\), column 'year': "
                                        "missing value"):
        ModelSpec.from_table(missing, moderators=["year"])
    mixed = _table("study,outcome,events,total,year\nA,cs,1,4,2015\nB,cs,2,5,unknown\n"
                   "C,cs,1,3,2017\n")
    with pytest.raises(DataError, match=r"row 'B \| all' .*'unknown' is not a finite number"):
        ModelSpec.from_table(mixed, moderators=["year"])
    constant = _table("study,outcome,events,total,year,q\nA,cs,1,4,2015,a\nB,cs,2,5,2015,a\n"
                      "A,ae,2,5,2016,b\n")
    with pytest.raises(DataError, match="moderator 'year' is constant .2015. over the model's"):
        ModelSpec.from_table(constant, "cs", moderators=["year"])  # 2016 is another outcome
    with pytest.raises(DataError, match="moderator 'q' is constant .'a'."):
        ModelSpec.from_table(constant, "cs", moderators=["q"])


MODEL = '[data]\npath = "d.csv"\noutcome = "cs"\n[model]\n'


@pytest.mark.parametrize("model, message", [
    ('moderators = ["nope"]\n', "d.csv: no column 'nope' for the moderator"),
    ('moderators = "year"\n', "model.moderators must be a list of covariate column names"),
    ('moderators = ["year"]\nmoderator_reference = { year = true }\n',
     "model.moderator_reference.year must be a level (string) or a centre (number)"),
    ('moderators = ["quality"]\nmoderator_reference = { quality = "best" }\n',
     "model.moderator_reference.quality: 'best' is not a level of 'quality'"),
    ('moderators = ["year"]\nmoderator_scale = "yes"\n', "model.moderator_scale must be true"),
    ('moderators = ["year"]\nmoderator_kinds = { year = "ordinal" }\n',
     "model.moderator_kinds.year must be \"numeric\" or \"categorical\""),
    ('moderators = ["quality"]\nmoderator_kinds = { quality = "numeric" }\n',
     "row 'A | x' (outcome cs), column 'quality': 'good' is not a finite number"),
    ('moderators = ["year"]\n[priors.beta]\ndist = "Normal"\nmu = 1\nsigma = 1\n',
     "priors.beta: moderator coefficients are centred at no effect; 'mu' must be 0"),
])
def test_cli_check_gives_one_line_per_invalid_moderator_setting(tmp_path, capsys, model,
                                                                message):
    (tmp_path / "d.csv").write_text(CSV)
    spec = tmp_path / "s.toml"
    spec.write_text(MODEL + model)
    code, out, err = run_cli(["check", spec], capsys)
    assert code == 2 and out == "", err
    assert err.count("\n") == 1 and err.startswith("bayes-poem: error: ")
    assert message in err, err


# ---------------------------------------------------------------------- spec file
def test_resolved_spec_records_the_coding_and_reruns_the_same_model(tmp_path):
    (tmp_path / "d.csv").write_text(CSV)
    spec_path = tmp_path / "s.toml"
    spec_path.write_text(MODEL + 'moderators = ["year", "quality", "volume"]\n'
                         'moderator_reference = { quality = "good" }\n'
                         '[priors.beta]\ndist = "Normal"\nsigma = 0.5\n' + SAMPLER)
    analysis = load_spec(spec_path)
    model = analysis.model_spec()
    resolved_text = analysis.resolved_toml(model)
    resolved = tomllib.loads(resolved_text)
    year, quality, volume = model.moderators
    assert resolved["model"]["moderators"] == ["year", "quality", "volume"]
    assert resolved["model"]["moderator_kinds"] == {"year": "numeric", "quality": "categorical",
                                                    "volume": "numeric"}
    assert resolved["model"]["moderator_reference"] == {
        "year": year.centre, "quality": "good", "volume": volume.centre}
    assert resolved["model"]["moderator_scale"] == {"year": year.scale, "volume": volume.scale}
    assert resolved["priors"]["beta"] == {"dist": "Normal", "mu": 0.0, "sigma": 0.5}
    rerun_path = tmp_path / "rerun" / "spec.toml"
    rerun_path.parent.mkdir()
    rerun_path.write_text(resolved_text)
    rerun = load_spec(rerun_path)
    again = rerun.model_spec()
    assert again.moderators == model.moderators
    np.testing.assert_array_equal(compiled.density_buffer(again), compiled.density_buffer(model))
    assert rerun.resolved_toml(again) == resolved_text  # a fixed point


def test_spec_without_moderators_resolves_as_before(tmp_path):
    (tmp_path / "d.csv").write_text(CSV)
    spec_path = tmp_path / "s.toml"
    spec_path.write_text(MODEL)
    analysis = load_spec(spec_path)
    resolved = tomllib.loads(analysis.resolved_toml())
    assert set(resolved["model"]) == {"subgroup_effects", "study_effects", "likelihood"}
    assert "beta" not in resolved["priors"]


# ---------------------------------------------------------------------- results (no sampling)
def test_probabilities_at_covariate_values(table):
    spec = _spec(table, "year", "quality").with_options(subgroup_effects="fixed")
    fit = _fake_fit(spec)
    post = fit.posterior
    eta = (post["mu"] + post["alpha"]).transpose("chain", "draw", SUBGROUP).values
    reference = fit.subgroup_probabilities()["p_pooled"].sel({SUBGROUP: spec.subgroups})
    np.testing.assert_allclose(reference.values, expit(eta))
    year, _ = spec.moderators
    at = fit.subgroup_probabilities(at={"year": 2018, "quality": "poor"})
    beta = post["beta"].transpose("chain", "draw", MODERATOR).values
    x = np.array([(2018 - year.centre) / year.scale, 0.0, 1.0])  # quality[good], [poor]
    shifted = expit(eta + (beta @ x)[..., None])
    np.testing.assert_allclose(at["p_pooled"].sel({SUBGROUP: spec.subgroups}).values, shifted)
    via_options = with_summary_options(fit, at={"year": 2018, "quality": "poor"})
    np.testing.assert_allclose(via_options.subgroup_probabilities()["p_pooled"].values,
                               at["p_pooled"].values)
    for bad, message in [({"nope": 1}, "at: 'nope' is not a moderator of the model"),
                         ({"year": "late"}, "at.year: must be a finite number"),
                         ({"quality": "best"}, "at.quality: 'best' is not a level")]:
        with pytest.raises(SpecError, match=message):
            fit.subgroup_probabilities(at=bad)
    with pytest.raises(SpecError, match="summary.at.quality"):
        with_summary_options(fit, at={"quality": 3})


def test_study_estimates_use_each_rows_moderators(table):
    spec = _spec(table, "year").with_options(subgroup_effects="fixed", study_effects="common")
    fit = _fake_fit(spec)
    post = fit.posterior
    arrays = spec.arrays()
    eta = (post["mu"] + post["alpha"]).transpose("chain", "draw", SUBGROUP).values
    beta = post["beta"].transpose("chain", "draw", MODERATOR).values
    p = expit(eta[..., arrays["subgroup_idx"]] + beta @ spec.design().T)
    np.testing.assert_allclose(fit.study_estimates()["median"], np.median(p, axis=(0, 1)))


def test_moderator_summary_reports_odds_ratios_per_unit_and_per_sd(table):
    spec = _spec(table, "year", "quality", scale=False)
    fit = _fake_fit(spec)
    summary = fit.moderator_summary()
    assert summary["term"].tolist() == ["year", "quality[good]", "quality[poor]"]
    beta = fit.posterior["beta"]
    year = summary.iloc[0]
    draws = beta.sel({MODERATOR: "year"}).values
    sd = spec.table.frame["year"].astype(float).std()
    assert year["scale"] == 1.0 and year["moderator_sd"] == pytest.approx(sd)
    assert year["median"] == pytest.approx(np.median(draws))
    assert year["or_unit_median"] == pytest.approx(np.median(np.exp(draws)))
    assert year["or_sd_median"] == pytest.approx(np.median(np.exp(draws * sd)))
    assert year["p_gt_0"] == pytest.approx((draws > 0).mean())
    good = summary.iloc[1]
    assert good["reference"] == "fair" and np.isnan(good["or_sd_median"])
    assert good["or_unit_median"] == pytest.approx(
        np.median(np.exp(beta.sel({MODERATOR: "quality[good]"}).values)))
    assert _fake_fit(ModelSpec.from_table(table, "cs").with_options(
        subgroup_effects="fixed")).moderator_summary().empty


# ---------------------------------------------------------------------- tier 2: sampling
@pytest.mark.mcmc
def test_fit_records_moderators_and_report_refuses_an_edited_list(tmp_path, capsys):
    (tmp_path / "d.csv").write_text(CSV)
    spec = tmp_path / "s.toml"
    spec.write_text(MODEL + 'moderators = ["year", "quality"]\n' + SAMPLER)
    results = tmp_path / "results"
    code, out, err = run_cli(["run", spec, "--out", results, "--quiet"], capsys)
    assert code == 0, err
    assert "Moderators (logit scale" in out
    table = pd.read_csv(results / "moderators.csv")
    assert table["term"].tolist() == ["year", "quality[good]", "quality[poor]"]
    idata = az.from_netcdf(results / "posterior.nc")
    assert idata.posterior["beta"].dims == ("chain", "draw", MODERATOR)
    assert idata.constant_data["design"].dims == ("row", MODERATOR)
    recorded = json.loads(idata.posterior.attrs["moderators"])
    assert [m["name"] for m in recorded] == ["year", "quality"]
    assert recorded[1]["reference"] == "fair" and "centre" in recorded[0]

    text = (results / "spec.toml").read_text()
    edits = {
        "list": (text.replace('moderators = [\n    "year",\n    "quality",\n]',
                              'moderators = [\n    "year",\n]')
                 .replace('quality = "categorical"\n', "").replace('quality = "fair"\n', ""),
                 "model.moderators differs from the fitted model (fitted [year, quality], "
                 "spec.toml [year])"),
        "reference": (text.replace('quality = "fair"', 'quality = "good"'),
                      "the coding of moderator 'quality'"),
    }
    for name, (edited, message) in edits.items():
        assert edited != text, name
        (results / "spec.toml").write_text(edited)
        code, _, err = run_cli(["report", results, "--out", tmp_path / f"rep_{name}",
                                "--quiet"], capsys)
        assert code == 2 and message in err, (name, err)


@pytest.mark.mcmc
def test_refits_with_moderators_never_compile(sed_spec, quick, monkeypatch):
    """Other moderators, data, priors and likelihood reuse the disk-cached density."""
    import nutpie
    import pytensor

    sed_spec.fit(quick)  # make sure the cached functions are loaded

    def forbidden(*args, **kwargs):
        raise AssertionError("a refit tried to compile")

    monkeypatch.setattr(nutpie, "compile_pymc_model", forbidden)
    monkeypatch.setattr(pytensor, "function", forbidden)
    other = ModelSpec.from_table(moderator_table(), "clinical_success", subgroups=SED_ORDER)
    variants = [
        sed_spec.with_moderators("year"),
        sed_spec.with_moderators("year", "quality"),
        sed_spec.with_moderators("quality").with_priors(beta=Prior("Normal", {"sigma": 0.3})),
        other.with_moderators("era", "volume", scale=False),
        ModelSpec.from_table(load_dataset("sed_synthetic"), "adverse_event",
                             likelihood="beta_binomial", moderators=["year"]),
    ]
    for variant in variants:
        result = variant.fit(quick)
        assert list(result.posterior[MODERATOR].values) == variant.moderator_terms


def _simulated_slope_table(slope: float, seed: int = 3):
    """SYNTHETIC: 24 studies, logit p = -0.2 + slope * (year - 2015) / 3 + u, tau = 0.3."""
    rng = np.random.default_rng(seed)
    year = np.repeat(np.arange(2010, 2022), 2)
    total = rng.integers(40, 80, year.size)
    eta = -0.2 + slope * (year - 2015.5) / 3.0 + rng.normal(0, 0.3, year.size)
    events = rng.binomial(total, expit(eta))
    frame = pd.DataFrame({"study": [f"SIM-{i:02d}" for i in range(year.size)],
                          "outcome": "success", "events": events, "total": total,
                          "year": year})
    return load_table(frame, source="SYNTHETIC slope simulation",
                      metadata={"synthetic": "true"})


@pytest.mark.mcmc
def test_sampling_recovers_a_clear_slope_on_synthetic_data():
    table = _simulated_slope_table(slope=1.0)
    spec = ModelSpec.from_table(table, moderators=["year"],
                                moderator_scale={"year": 3.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = spec.fit(SamplerSettings(draws=500, tune=500, chains=2, seed=5))
        none = spec.with_moderators().fit(SamplerSettings(draws=500, tune=500, chains=2, seed=5))
    row = result.moderator_summary().iloc[0]
    assert row["lower"] < 1.0 < row["upper"], row
    assert row["p_gt_0"] > 0.999 and 0.6 < row["median"] < 1.4
    # the slope explains most between-study variation: residual tau is smaller
    assert float(result.posterior["tau"].median()) < float(none.posterior["tau"].median())


@pytest.mark.mcmc
def test_rerun_of_resolved_spec_with_moderators_repeats_byte_for_byte(tmp_path, capsys):
    (tmp_path / "d.csv").write_text(CSV)
    spec = tmp_path / "s.toml"
    spec.write_text(MODEL + 'moderators = ["year", "quality", "volume"]\n'
                    'moderator_reference = { quality = "good" }\n' + SAMPLER)
    first, second = tmp_path / "first", tmp_path / "second"
    code, _, err = run_cli(["run", spec, "--out", first, "--quiet"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["run", first / "spec.toml", "--out", second, "--quiet"], capsys)
    assert code == 0, err
    for name in ("summary.csv", "moderators.csv", "contrasts.csv", "heterogeneity.csv",
                 "study_estimates.csv", "spec.toml"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
