"""Small-study effects, Bayesian half and CLI: the derived precision column, its coding,
the cumulative specs, the [bias] section, CLI errors and the writer (unit tier: no
sampling), then the `bias` command end to end (mcmc)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bayes_poem import ModelSpec, load_dataset, load_table
from bayes_poem.backends.compiled import density_buffer
from bayes_poem.bias import (
    BayesCumulative,
    BiasOptions,
    PosteriorFunnel,
    cumulative_specs,
    observed_logit,
    parse_bias,
    precision_values,
    study_order,
    with_precision,
)
from bayes_poem.bias_plots import bayes_cumulative_plot, posterior_funnel_plot
from bayes_poem.errors import DataError, SpecError
from bayes_poem.frequentist import cumulative
from bayes_poem.frequentist.inputs import counts_from
from bayes_poem.frequentist.transforms import proportion_effects
from bayes_poem.moderators import code_values
from bayes_poem.sensitivity import spec_grid
from bayes_poem.specfile import load_spec, parse_spec
from tests.conftest import SED_ORDER
from tests.helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


def _table(events, totals, years=None, extra=None):
    frame = pd.DataFrame({"study": [f"S{i}" for i in range(len(events))], "subgroup": "all",
                          "outcome": "y", "events": events, "total": totals})
    if years is not None:
        frame["year"] = years
    for name, values in (extra or {}).items():
        frame[name] = values
    return load_table(frame, source="SYNTHETIC test table")


# ---------------------------------------------------------------------- precision column
def test_sei_is_the_frequentist_standard_error_with_the_same_correction():
    table = _table([0, 3, 10, 12], [10, 12, 10, 40])
    frame = table.frame
    effects = proportion_effects(counts_from(table), "logit")  # add 0.5, to="only0"
    assert effects.corrected.tolist() == [True, False, True, False]
    np.testing.assert_allclose(precision_values(frame, "sei"), np.sqrt(effects.vi), rtol=1e-14)
    logit, corrected = observed_logit(frame)
    np.testing.assert_allclose(logit, effects.yi, rtol=1e-14)
    assert corrected.tolist() == effects.corrected.tolist()
    # by hand: 0/10 -> 0.5/11: sqrt(1/0.5 + 1/10.5)
    assert precision_values(frame, "sei")[0] == pytest.approx(np.sqrt(2 + 1 / 10.5), rel=1e-14)


def test_sqrtninv_is_one_over_root_n():
    frame = _table([1, 2, 3], [4, 25, 100]).frame
    np.testing.assert_allclose(precision_values(frame, "sqrtninv"), [0.5, 0.2, 0.1])


def test_precision_moderator_is_not_centred_and_scaled_by_its_sd():
    table = _table([1, 5, 9, 30], [4, 16, 25, 100])
    spec = with_precision(ModelSpec.from_table(table))
    x = 1 / np.sqrt([4, 16, 25, 100])
    (moderator,) = spec.moderators
    assert (moderator.name, moderator.kind, moderator.centre) == ("sqrtninv", "numeric", 0.0)
    assert moderator.scale == pytest.approx(np.std(x, ddof=1), rel=1e-14)
    np.testing.assert_allclose(spec.design()[:, 0], x / np.std(x, ddof=1), rtol=1e-14)
    # the reference values (where p_pooled is reported) are x = 0: infinite precision
    np.testing.assert_array_equal(code_values(spec.moderators, None), [0.0])
    np.testing.assert_allclose(code_values(spec.moderators, {"sqrtninv": 0.25}),
                               [0.25 / np.std(x, ddof=1)])
    assert spec.priors["beta"].params["sigma"] == 1.0  # the moderators' own prior


def test_own_moderators_keep_their_coding(sed_table):
    spec = ModelSpec.from_table(sed_table, "clinical_success", subgroups=SED_ORDER,
                                moderators=["year", "quality"],
                                moderator_reference={"year": 2010, "quality": "good"})
    with_sei = with_precision(spec, "sei")
    assert with_sei.moderators[:2] == spec.moderators
    assert with_sei.moderator_terms == [*spec.moderator_terms, "sei"]
    np.testing.assert_array_equal(with_sei.design()[:, :-1], spec.design())
    assert with_sei.table.frame["events"].tolist() == spec.table.frame["events"].tolist()
    assert spec.moderators == ModelSpec.from_table(  # the original spec is untouched
        sed_table, "clinical_success", subgroups=SED_ORDER, moderators=["year", "quality"],
        moderator_reference={"year": 2010, "quality": "good"}).moderators
    assert "sei" not in spec.table.frame.columns


def test_slope_by_subgroup_has_one_column_per_subgroup(sed_spec):
    spec = with_precision(sed_spec, slope="by_subgroup")
    terms = [f"sqrtninv[{d}]" for d in SED_ORDER]
    assert spec.moderator_terms == terms
    frame = spec.table.frame
    x = 1 / np.sqrt(frame["total"].to_numpy(float))
    scale = np.std(x, ddof=1)
    design = spec.design()
    for k, d in enumerate(SED_ORDER):
        inside = (frame["subgroup"] == d).to_numpy()
        np.testing.assert_allclose(design[inside, k], x[inside] / scale, rtol=1e-14)
        assert (design[~inside, k] == 0).all()
    assert {m.scale for m in spec.moderators} == {scale}  # comparable slopes


def test_precision_errors_name_the_problem(sed_spec):
    with pytest.raises(SpecError, match=r"^bias.precision: 'se' is not one of sqrtninv, sei"):
        with_precision(sed_spec, "se")
    with pytest.raises(SpecError, match=r"^bias.slope: 'each'"):
        with_precision(sed_spec, slope="each")
    single = ModelSpec.from_table(_table([1, 2, 3], [4, 9, 16]))
    with pytest.raises(SpecError, match="by_subgroup' needs subgroup effects"):
        with_precision(single, slope="by_subgroup")
    clash = ModelSpec.from_table(_table([1, 2, 3], [4, 9, 16], extra={"sei": [1, 2, 3]}))
    with pytest.raises(DataError, match=r"SYNTHETIC test table: the data have a column 'sei'"):
        with_precision(clash, "sei")
    same = ModelSpec.from_table(_table([1, 2, 3], [10, 10, 10]))
    with pytest.raises(DataError, match=r"every row has the same precision \(1/sqrt\(n\)"):
        with_precision(same)


# ---------------------------------------------------------------------- cumulative
def test_study_order_ties_keep_table_order_as_metafor_cumul():
    table = _table([1, 2, 3, 4, 5], [10, 10, 10, 10, 10], years=[2014, 2012, 2014, 2010, 2012])
    spec = ModelSpec.from_table(table)
    studies, values, order_by = study_order(spec)
    assert (studies, values, order_by) == (["S3", "S1", "S4", "S0", "S2"],
                                           [2010, 2012, 2012, 2014, 2014], "year")
    assert study_order(spec, decreasing=True)[0] == ["S0", "S2", "S1", "S4", "S3"]
    frequentist = cumulative(table, order="year").to_frame()["study"].tolist()
    assert frequentist == studies
    assert list(cumulative(table, order="year", decreasing=True).studies) == study_order(
        spec, decreasing=True)[0]


def test_study_order_without_year_is_table_order_and_errors_name_rows(sed_table):
    spec = ModelSpec.from_table(_table([1, 2], [5, 6]))
    assert study_order(spec) == (["S0", "S1"], [1, 2], "table order")
    with pytest.raises(DataError, match=r"no column 'when' .*bias.order"):
        study_order(spec, "when")
    odd = sed_table.frame.copy()
    odd.loc[(odd["study"] == "SYN-03") & (odd["subgroup"] == "des"), "year"] = "2014"
    spec = ModelSpec.from_table(load_table(odd, source="odd.csv"), "clinical_success")
    with pytest.raises(DataError, match=r"odd.csv: study 'SYN-03' has two values of 'year'"):
        study_order(spec)
    missing = sed_table.frame.copy().astype({"year": object})
    missing.loc[missing.index[20], "year"] = ""
    spec = ModelSpec.from_table(load_table(missing, source="gap.csv"), "clinical_success")
    with pytest.raises(DataError, match=r"gap.csv: row 'SYN-03 \| des' .*column 'year': "
                                        "missing value"):
        study_order(spec)


def test_cumulative_specs_zero_every_later_study(sed_spec):
    steps = cumulative_specs(sed_spec)
    studies = study_order(sed_spec)[0]
    assert [s for s, _, _ in steps] == studies
    frame = sed_spec.table.frame
    for j, (_, _, spec) in enumerate(steps, start=1):
        arrays = spec.arrays()
        later = frame["study"].isin(studies[j:]).to_numpy()
        assert (arrays["total"][later] == 0).all() and (arrays["events"][later] == 0).all()
        np.testing.assert_array_equal(arrays["total"][~later],
                                      frame["total"].to_numpy()[~later])
        assert density_buffer(spec).size == density_buffer(sed_spec).size  # same shape
    assert steps[-1][2] is sed_spec


# ---------------------------------------------------------------------- options and specs
def test_parse_bias_rejects_bad_keys_and_values():
    assert parse_bias(None, "s.toml") == BiasOptions()
    assert parse_bias({"precision": "sei", "order": "year", "decreasing": True},
                      "s.toml").order == "year"
    for raw, message in [({"precison": "sei"}, "unknown key 'bias.precison'; valid keys"),
                         ({"precision": "se"}, "bias.precision: 'se' is not one of"),
                         ({"slope": 1}, "bias.slope: 1 is not one of common, by_subgroup"),
                         ({"method": "FE"}, "bias.method: 'FE' is not one of REML, ML, DL"),
                         ({"order": ""}, "bias.order must be a column name"),
                         ({"decreasing": "yes"}, "bias.decreasing must be true or false")]:
        with pytest.raises(SpecError, match=r"^s\.toml: " + re.escape(message)):
            parse_bias(raw, "s.toml")


def _spec_text(extra: str = "") -> str:
    text = (ROOT / "models" / "sed_clinical_success.toml").read_text()
    return text + extra


def test_bias_section_parses_and_is_resolved(tmp_path):
    import tomllib

    raw = tomllib.loads(_spec_text('\n[bias]\nprecision = "sei"\n'))
    analysis = parse_spec(raw, source="s.toml", base_dir=tmp_path)
    assert analysis.bias_options() == BiasOptions(precision="sei")
    resolved = tomllib.loads(analysis.resolved_toml())
    assert resolved["bias"] == {"precision": "sei", "slope": "common", "decreasing": False,
                                "method": "REML"}
    assert parse_spec(tomllib.loads(_spec_text()), source="s.toml").bias is None
    assert "bias" not in tomllib.loads(
        parse_spec(tomllib.loads(_spec_text()), source="s.toml").resolved_toml())
    with pytest.raises(SpecError, match=r"^s.toml: \[bias\] must be a table"):
        parse_spec({**raw, "bias": 3}, source="s.toml")


def test_sensitivity_grid_has_the_precision_variant(sed_spec):
    _, variants = spec_grid({"precision_moderator": "sqrtninv", "leave_one_out": False},
                            sed_spec, "s.toml")
    variant = variants[-1]
    assert variant.name == "with precision moderator (sqrtninv)"
    assert variant.spec.moderators == with_precision(sed_spec).moderators
    np.testing.assert_array_equal(variant.spec.design(), with_precision(sed_spec).design())
    _, default = spec_grid({"leave_one_out": False}, sed_spec, "s.toml")
    assert len(default) == len(variants) - 1  # off unless asked for
    with pytest.raises(SpecError, match=r"s.toml: sensitivity.precision_moderator must be"):
        spec_grid({"precision_moderator": True}, sed_spec, "s.toml")


# ---------------------------------------------------------------------- plots
def test_posterior_plots_draw_hand_made_data():
    points = pd.DataFrame({"study": ["a", "b"], "subgroup": "all", "events": [3, 10],
                           "total": [4, 20], "observed": [1.1, 0.0], "corrected": False,
                           "se": [1.15, 0.45], "y": [1.15, 0.45], "shrunk": [0.5, 0.1],
                           "shrunk_lower": [0.0, -0.3], "shrunk_upper": [1.0, 0.5]})
    contours = pd.DataFrame({"level": 0.95, "y": [0.0, 1.15], "lower": [0.2, -2.0],
                             "upper": [0.2, 2.4]})
    fig = posterior_funnel_plot(funnel=PosteriorFunnel("all", "sei", 0.2, points, contours),
                                title="t")
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_ylim()[0] > fig.axes[0].get_ylim()[1]  # largest studies on top
    frame = pd.DataFrame({"step": [1, 1, 2, 2], "study": ["a", "a", "b", "b"],
                          "order": [2001, 2001, 2002, 2002],
                          "subgroup": ["x", "overall", "x", "overall"], "n_studies": 1,
                          "events": 1, "total": 2, "median": 0.5, "lower": 0.2, "upper": 0.8,
                          "interval": "95% HDI", "divergences": 0, "problems": ""})
    fig = bayes_cumulative_plot(cumulative=BayesCumulative("year", frame), subgroup="x")
    ax = fig.axes[0]
    ticks = dict(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()],
                     strict=True))
    assert ticks[max(ticks)] == "+ a (2001)"  # the first study at the top


# ---------------------------------------------------------------------- CLI (no sampling)
def _write_spec(tmp_path: Path, extra: str = "", data: str | None = None) -> Path:
    text = _spec_text(extra)
    if data is not None:
        text = text.replace('dataset = "sed_synthetic"', f'path = "{data}"')
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("extra", "message"), [
    ('\n[bias]\nprecision = "se"\n', r"spec.toml: bias.precision: 'se' is not one of"),
    ('\n[bias]\nwhatever = 1\n', r"spec.toml: unknown key 'bias.whatever'"),
    ('\n[bias]\norder = "when"\n', r"no column 'when' to order the cumulative analysis by"),
    ('\n[bias]\ndecreasing = "yes"\n', r"spec.toml: bias.decreasing must be true or false"),
])
def test_bias_errors_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, extra, message):
    spec = _write_spec(tmp_path, extra)
    out = tmp_path / "out"
    code, stdout, err = run_cli(["bias", spec, "--out", out], capsys)
    assert code == 2 and stdout == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    if "order" in extra:  # 'check' runs the same validation
        code, _, check_err = run_cli(["check", spec], capsys)
        assert code == 2 and re.search(message, check_err)


def test_bias_data_errors_name_the_file_and_column(tmp_path, capsys):
    frame = load_dataset("sed_synthetic").frame.copy()
    frame["sqrtninv"] = 1.0
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = _write_spec(tmp_path, data="d.csv")
    code, _, err = run_cli(["bias", spec, "--out", tmp_path / "out"], capsys)
    assert code == 2
    assert re.search(r"d.csv: the data have a column 'sqrtninv', the name of the derived "
                     "precision moderator", err), err
    same = frame.drop(columns="sqrtninv").assign(total=12, events=6)
    same.to_csv(tmp_path / "d.csv", index=False)
    code, _, err = run_cli(["bias", spec, "--out", tmp_path / "out"], capsys)
    assert code == 2 and "every row has the same precision" in err


def test_bias_refuses_an_existing_directory_before_sampling(tmp_path, capsys):
    spec = _write_spec(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    for extra in ([], ["--force"]):
        code, _, err = run_cli(["bias", spec, "--out", out, *extra], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert (out / "mine.txt").read_text() == "keep"
    code, _, err = run_cli(["bias", spec, "--out", ""], capsys)
    assert code == 2 and "--out: empty path" in err


# ---------------------------------------------------------------------- end to end
FILES = {"precision.csv", "regtest.csv", "ranktest.csv", "trimfill.csv",
         "cumulative_bayes.csv", "cumulative_frequentist.csv", "spec.toml", "bias.txt",
         ".bayes-poem.json", "run.log"}


@pytest.fixture(scope="module")
def bias_run(tmp_path_factory):
    from bayes_poem.cli import main

    base = tmp_path_factory.mktemp("bias")
    text = _spec_text().replace("draws = 1000", "draws = 400").replace("tune = 1000",
                                                                       "tune = 400")
    spec = base / "sed.toml"
    spec.write_text(text.replace("chains = 4", "chains = 2"))
    assert main(["bias", str(spec), "--out", str(base / "out"), "--quiet"]) == 0
    return base, spec


@pytest.mark.mcmc
@pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")
def test_bias_writes_every_table_and_figure(bias_run):
    base, _ = bias_run
    out = base / "out"
    names = {p.name for p in out.iterdir()}
    assert FILES <= names
    figures = {f"{kind}_{d}.png" for d in SED_ORDER
               for kind in ("funnel", "funnel_posterior", "cumulative")}
    assert figures <= names
    marker = json.loads((out / ".bayes-poem.json").read_text())
    assert marker["command"] == "bias" and set(marker["files"]) >= FILES - {".bayes-poem.json"}
    text = (out / "bias.txt").read_text()
    assert text.startswith("*** SYNTHETIC DATA") and text.rstrip().endswith("***")
    precision = pd.read_csv(out / "precision.csv")
    assert precision["subgroup"].tolist() == [*SED_ORDER, "overall"]
    assert (precision["p_slope_lt_0"] + precision["p_slope_gt_0"]).round(12).eq(1).all()
    assert (precision["limit_lower"] <= precision["limit_median"]).all()
    cumul = pd.read_csv(out / "cumulative_bayes.csv")
    assert cumul["step"].max() == 8 and cumul["study"].iloc[-1] == "SYN-08"
    assert (cumul.groupby("subgroup")["n_studies"].diff().fillna(0) >= 0).all()
    regtest = pd.read_csv(out / "regtest.csv")
    assert set(regtest["predictor"]) == {"sei", "sqrtninv", "ninv"}
    unassigned = regtest[regtest["label"] == "unassigned"]
    assert unassigned["note"].str.contains("needs at least 3 studies").all()
    resolved = load_spec(out / "spec.toml")
    assert resolved.bias_options() == BiasOptions()  # the options used, written back


@pytest.mark.mcmc
@pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")
def test_bias_force_replaces_and_without_force_refuses(bias_run, capsys):
    base, spec = bias_run
    out = base / "out"
    before = (out / "bias.txt").read_text()
    code, _, err = run_cli(["bias", spec, "--out", out, "--quiet"], capsys)
    assert code == 2 and "exists" in err and len(err.strip().splitlines()) == 1
    code, stdout, _ = run_cli(["bias", spec, "--out", out, "--force", "--quiet"], capsys)
    assert code == 0 and "Results written to" in stdout
    assert (out / "bias.txt").read_text() == before  # same seed, same results
    assert not list(base.glob(".out.tmp-*"))


@pytest.mark.mcmc
@pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")
def test_limit_is_p_pooled_at_zero_precision(sed_spec, quick):
    """The precision model's p_pooled is expit(mu + alpha_d): the engine's summary at the
    reference values, with the coded precision 0."""
    from scipy.special import expit

    from bayes_poem.bias import precision_model

    main = sed_spec.fit(quick)
    result = precision_model(main)
    post = result.fit.posterior
    table = result.to_frame().set_index("subgroup")
    for d in SED_ORDER:
        draws = expit(post["mu"] + post["alpha"].sel(subgroup=d)).values
        assert table.loc[d, "limit_median"] == pytest.approx(np.median(draws), rel=1e-12)
    slope, scale = result.slope_draws("sqrtninv")
    assert table.loc["type_iii", "p_slope_gt_0"] == pytest.approx((slope > 0).mean())
    assert scale == result.fit.spec.moderators[0].scale
    assert result.main.spec is sed_spec
