"""Issue 11, items 1-3: the journal forest plot, [labels], percent axes, one figure style.

Unit tier: hand-made draws (no sampling) of the SYNTHETIC SED table's clinical-success
model. The forest plot's text columns are checked against the summary tables' numbers,
its observed intervals against an independent Clopper-Pearson implementation at the
fit's interval probability, its order, its labels and its file formats.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.collections import PathCollection
from matplotlib.ticker import MultipleLocator

from bayes_poem.dims import STUDY, SUBGROUP
from bayes_poem.errors import SpecError
from bayes_poem.figure_style import (
    DPI,
    PercentAxisFormatter,
    new_figure,
    percent_decimals,
    save,
    to_bytes,
)
from bayes_poem.forest_data import forest_table
from bayes_poem.intervals import IntervalSpec
from bayes_poem.predictive import clopper_pearson
from bayes_poem.report.format import ci_pct, pct
from bayes_poem.results import with_summary_options
from bayes_poem.spec import ModelSpec
from tests.conftest import SED_ORDER
from tests.helpers import fit_over

LABELS = {"type_iii": "Type III achalasia", "des": "Distal esophageal spasm",
          "jackhammer": "Jackhammer esophagus", "clinical_success": "Clinical success"}


def _fake_fit(spec: ModelSpec, seed: int = 0, prob: float = 0.9):
    """Hand-made draws (2 chains x 200) of mu, tau, u, alpha, sigma_subgroup."""
    rng = np.random.default_rng(seed)
    shape = (2, 200)
    tau = np.abs(rng.normal(0.4, 0.05, shape))
    post = xr.Dataset({
        "mu": (("chain", "draw"), rng.normal(1.8, 0.2, shape)),
        "tau": (("chain", "draw"), tau),
        "u": (("chain", "draw", STUDY), rng.normal(0, 0.4, (*shape, len(spec.studies)))),
        "alpha": (("chain", "draw", SUBGROUP), rng.normal(0, 0.3, (*shape, len(spec.subgroups)))),
        "sigma_subgroup": (("chain", "draw"), np.abs(rng.normal(0.5, 0.1, shape))),
    }, coords={SUBGROUP: spec.subgroups, STUDY: spec.studies})
    return with_summary_options(fit_over(spec, post), interval=IntervalSpec("eti", prob))


@pytest.fixture(scope="module")
def fit(sed_spec):
    return _fake_fit(sed_spec)


def _shown_ticks(ax) -> list[str]:
    low, high = ax.get_xlim()
    return [label.get_text() for label, loc in zip(ax.get_xticklabels(), ax.get_xticks(),
                                                   strict=True)
            if low - 1e-9 <= loc <= high + 1e-9]


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


# ---------------------------------------------------------------------- percent axes
def test_percent_ticks_at_2_5_points_keep_their_decimal():
    fig = new_figure(4, 1)
    ax = fig.add_subplot()
    ax.set_xlim(0.8, 0.9)
    ax.xaxis.set_major_locator(MultipleLocator(0.025))
    ax.xaxis.set_major_formatter(PercentAxisFormatter())
    fig.canvas.draw()
    assert _shown_ticks(ax) == ["80.0%", "82.5%", "85.0%", "87.5%", "90.0%"]
    ax.xaxis.set_major_locator(MultipleLocator(0.05))  # whole percents: no decimals
    fig.canvas.draw()
    assert _shown_ticks(ax) == ["80%", "85%", "90%"]


def test_percent_decimals_on_both_scales():
    assert percent_decimals([0.8, 0.825]) == 1
    assert percent_decimals([80.0, 82.5], scale=100.0) == 1
    assert percent_decimals([0.1, 0.2]) == 0
    assert percent_decimals([0.0125]) == 2
    formatter = PercentAxisFormatter(100.0)
    formatter.set_locs([0.0, 12.5, 25.0])
    assert formatter(12.5) == "12.5%" and formatter(0.0) == "0.0%"


# ---------------------------------------------------------------------- the numbers
def test_text_columns_match_the_summary_tables(fit):
    table = forest_table(fit)
    summary = fit.subgroup_summary()
    pooled = table[table["kind"] == "pooled"].set_index("subgroup")
    prediction = table[table["kind"] == "prediction"].set_index("subgroup")
    assert list(pooled.index) == [*SED_ORDER, "overall"]
    for code, row in pooled.iterrows():
        p = summary[(summary["subgroup"] == code) & (summary["quantity"] == "p_pooled")].iloc[0]
        new = summary[(summary["subgroup"] == code) & (summary["quantity"] == "p_new")].iloc[0]
        # the same strings as the report's pooled-probability table
        assert row["text_estimate"] == ci_pct(p["median"], p["lower"], p["upper"])
        assert row["text_events"] == f"{int(p['events'])}/{int(p['total'])}"
        assert row["text_observed"] == pct(p["observed"])
        assert prediction.loc[code, "text_estimate"] == ci_pct(new["median"], new["lower"],
                                                               new["upper"])
    studies = table[table["kind"] == "study"].reset_index(drop=True)
    estimates = fit.study_estimates()
    assert len(studies) == len(estimates)
    for row, est in zip(studies.itertuples(), estimates.itertuples(), strict=True):
        assert row.text_estimate == ci_pct(est.median, est.lower, est.upper)
        assert row.text_events == f"{est.events}/{est.total}"
        assert row.text_observed == pct(est.observed)
    # and the figure prints exactly these strings
    texts = _texts(fit.plot_forest())
    for column in ("text_events", "text_observed", "text_estimate"):
        for value in table[column].dropna():
            if value:
                assert value in texts, (column, value)


def test_observed_and_modelled_intervals_share_the_fits_probability(sed_spec):
    for prob in (0.9, 0.95):
        fit = _fake_fit(sed_spec, prob=prob)
        studies = forest_table(fit).query("kind == 'study'")
        lower, upper = clopper_pearson(studies["events"].to_numpy(int),
                                       studies["total"].to_numpy(int), prob)
        np.testing.assert_allclose(studies["obs_lower"], lower, atol=1e-10)
        np.testing.assert_allclose(studies["obs_upper"], upper, atol=1e-10)
        assert set(studies["interval"]) == {f"{100 * prob:g}% ETI"}
        texts = _texts(fit.plot_forest())
        assert f"Posterior median\n[{100 * prob:g}% ETI]" in texts
    wider = forest_table(_fake_fit(sed_spec, prob=0.95)).query("kind == 'study'")
    assert (wider["obs_upper"] - wider["obs_lower"]
            > studies["obs_upper"] - studies["obs_lower"] - 1e-12).all()


def test_marker_area_is_proportional_to_patients(fit):
    fig = fit.plot_forest()
    sizes = np.concatenate([c.get_sizes() for ax in fig.axes for c in ax.collections
                            if isinstance(c, PathCollection)])
    totals = forest_table(fit).query("kind == 'study'")["total"].to_numpy(float)
    np.testing.assert_allclose(sizes / sizes.max(), totals / totals.max())


# ---------------------------------------------------------------------- order
@pytest.mark.parametrize("order", ["data", "year", "size", "estimate", "label"])
def test_order_within_each_subgroup(fit, order):
    table = forest_table(fit, order=order)
    frame = fit.spec.table.frame
    for code in SED_ORDER:
        rows = table[(table["kind"] == "study") & (table["subgroup"] == code)]
        data = frame[frame["subgroup"] == code]
        if order == "data":
            assert list(rows["study"]) == list(data["study"])
        elif order == "year":
            assert list(rows["year"]) == sorted(data["year"])
        elif order == "size":
            assert list(rows["total"]) == sorted(data["total"], reverse=True)
        elif order == "estimate":
            assert list(rows["median"]) == sorted(rows["median"])
        else:
            assert list(rows["study"]) == sorted(data["study"], key=str.casefold)
    # the header, pooled and prediction rows stay around each subgroup's studies
    kinds = table[table["subgroup"] == "type_iii"]["kind"].tolist()
    assert kinds[0] == "header" and kinds[-2:] == ["pooled", "prediction"]


def test_order_year_needs_a_year_column_and_unknown_orders_are_refused(sed_spec, fit):
    with pytest.raises(SpecError, match="forest order must be one of"):
        forest_table(fit, order="weight")
    frame = sed_spec.table.frame.drop(columns="year")
    from bayes_poem.table import load_table

    spec = ModelSpec.from_table(load_table(frame, source="no_year.csv"), "clinical_success",
                                subgroups=SED_ORDER)
    no_year = _fake_fit(spec)
    with pytest.raises(SpecError, match=r"'year' needs a 'year' column in the data "
                                        r"\(no_year.csv\)"):
        no_year.plot_forest(order="year")
    assert "year" not in forest_table(no_year, order="size").dropna(axis=1, how="all")


# ---------------------------------------------------------------------- labels
def test_labels_in_the_figure_and_the_tables_not_in_the_csv_keys(fit):
    from bayes_poem.report.sections.estimates import contrast_section, summary_section
    from bayes_poem.report_text import render

    labelled = with_summary_options(fit, labels=LABELS)
    texts = _texts(labelled.plot_forest())
    for code in ("type_iii", "des", "jackhammer"):
        assert LABELS[code] in texts and code not in texts
    assert "unassigned" in texts  # no label: the code
    fig = labelled.plot_forest()
    assert fig.axes[1].get_xlabel() == "Clinical success (proportion)"

    section = summary_section(labelled)
    assert list(section.table["subgroup"]) == [*(LABELS.get(c, c) for c in SED_ORDER),
                                               "overall"]
    contrasts = contrast_section(labelled, None)
    assert "Type III achalasia vs Distal esophageal spasm" in set(contrasts.table["contrast"])
    text = render(labelled, labelled.contrasts())
    assert "Jackhammer esophagus" in text and "Type III achalasia vs Jackhammer esophagus" in text
    from bayes_poem.report.sections.checks import prediction_section

    predictions = prediction_section(labelled, 20)
    assert "Distal esophageal spasm" in set(predictions.table["subgroup"])
    # machine-readable tables keep the codes
    assert set(labelled.subgroup_summary()["subgroup"]) == {*SED_ORDER, "overall"}
    assert "type_iii vs des" in set(labelled.contrasts()["contrast"])
    # without labels, the text report is what it was (codes)
    assert "type_iii vs jackhammer" in render(fit, fit.contrasts())


# ---------------------------------------------------------------------- files
def test_png_pdf_and_svg_are_valid_and_png_is_300_dpi(fit, tmp_path):
    fig = fit.plot_forest()
    png = to_bytes(fig, "png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    inches = fig.get_size_inches()
    assert (width, height) == (int(inches[0] * DPI), int(inches[1] * DPI))
    phys = png.index(b"pHYs") + 4  # pixels per metre, x and y: 300 dpi
    assert int.from_bytes(png[phys:phys + 4], "big") == round(DPI / 0.0254)
    pdf = to_bytes(fig, "pdf")
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    assert b"/FontType 3" not in pdf  # TrueType (Type 42) fonts, as journals ask
    svg = to_bytes(fig, "svg")
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert b"Posterior median" in svg  # text kept as text
    for ext in ("png", "pdf", "svg"):
        save(fig, tmp_path / f"forest.{ext}")
        assert (tmp_path / f"forest.{ext}").read_bytes()[:4] == {
            "png": png, "pdf": pdf, "svg": svg}[ext][:4]
    with pytest.raises(ValueError, match="figure format"):
        to_bytes(fig, "jpg")


def test_run_directory_forest_files(fit, tmp_path):
    from bayes_poem.results_dir import FOREST_PDF, FOREST_PNG, FOREST_SVG, forest_files

    files = forest_files(fit, "year")
    assert list(files) == [FOREST_PNG, FOREST_PDF, FOREST_SVG] == [
        "forest.png", "forest.pdf", "forest.svg"]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    assert (tmp_path / FOREST_PNG).read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / FOREST_PDF).read_bytes().startswith(b"%PDF-")
    ET.parse(tmp_path / FOREST_SVG)


def test_single_group_forest_has_no_overall_copy(sed_table):
    spec = ModelSpec.from_table(sed_table, "clinical_success", subgroups=["type_iii"])
    table = forest_table(_fake_fit(spec))
    assert table["kind"].tolist().count("pooled") == 1
    assert "overall" not in set(table["subgroup"])


def test_every_forest_row_kind_is_known(fit):
    table = forest_table(fit)
    assert set(table["kind"]) == {"header", "study", "pooled", "prediction"}
    assert isinstance(table, pd.DataFrame)


# ---------------------------------------------------------------------- the spec
SPEC = ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
        'subgroups = ["type_iii", "des", "jackhammer", "unassigned"]\n')


def _parse(text: str):
    import tomllib

    from bayes_poem.specfile import parse_spec

    return parse_spec(tomllib.loads(text), source="s.toml")


def test_labels_are_parsed_written_back_and_checked_against_the_data():
    import tomllib

    analysis = _parse(SPEC + '[summary]\nforest_order = "year"\n[labels]\n'
                      'type_iii = "Type III achalasia"\nclinical_success = "Clinical success"\n')
    assert analysis.labels == {"type_iii": "Type III achalasia",
                               "clinical_success": "Clinical success"}
    resolved = tomllib.loads(analysis.resolved_toml())
    assert resolved["labels"] == analysis.labels
    assert resolved["summary"]["forest_order"] == "year"
    assert _parse(analysis.resolved_toml()).labels == analysis.labels  # reruns as written
    assert "labels" not in tomllib.loads(_parse(SPEC).resolved_toml())

    typo = _parse(SPEC + '[labels]\ntypo_iii = "Type III"\n')
    with pytest.raises(SpecError, match=r"^s.toml: labels.typo_iii: 'typo_iii' is not a "
                                        r"subgroup or outcome of the data"):
        typo.model_spec()


@pytest.mark.parametrize(("extra", "message"), [
    ('[labels]\ntype_iii = 3\n', "labels.type_iii must be a non-empty one-line string"),
    ('[labels]\ntype_iii = ""\n', "labels.type_iii must be a non-empty one-line string"),
    ('[labels]\ntype_iii = "a\\nb"\n', "labels.type_iii must be a non-empty one-line string"),
    ('labels = "x"\n', r"\[labels\] must be a table"),
    ('[summary]\nforest_order = "weight"\n', "summary.forest_order must be one of"),
])
def test_bad_labels_and_orders_name_the_key(extra, message):
    text = (extra + SPEC) if extra.startswith("labels =") else SPEC + extra
    with pytest.raises(SpecError, match=message):
        _parse(text)


def test_forest_order_year_needs_the_column(tmp_path):
    from bayes_poem.datasets import load_dataset

    frame = load_dataset("sed_synthetic").frame.drop(columns="year")
    frame.to_csv(tmp_path / "d.csv", index=False)
    from bayes_poem.specfile import parse_spec

    raw = {"data": {"path": "d.csv", "outcome": "clinical_success"},
           "summary": {"forest_order": "year"}}
    analysis = parse_spec(raw, source="s.toml", base_dir=tmp_path)
    with pytest.raises(SpecError, match="summary.forest_order = 'year' needs a 'year' column"):
        analysis.model_spec()


def test_the_report_shows_300_dpi_figures_at_their_figure_size(fit):
    from bayes_poem.figure_style import SCREEN_PPI, display_width
    from bayes_poem.report.document import Report, Section
    from bayes_poem.report.format import embed
    from bayes_poem.report.html_renderer import render_html

    fig = fit.plot_forest()
    figure = embed("forest", "caption", fig)
    width = display_width(figure.png)
    assert width == round(fig.get_size_inches()[0] * SCREEN_PPI)
    page = render_html(Report("t", "s", False, (Section("S", "", figures=(figure,)),),
                              Section("Footer", "")))
    assert f'width="{width}"' in page


def test_percent_labels_in_text_keep_their_decimal():
    from bayes_poem.figure_style import percent_label

    assert [percent_label(x) for x in (0.825, 0.1, 0.0125, 1.0)] == ["82.5%", "10%", "1.25%",
                                                                     "100%"]
    assert percent_label(82.5, scale=100.0) == "82.5%"


@pytest.mark.mcmc
def test_run_with_labels_writes_labelled_figures_and_coded_csv(tmp_path, capsys):
    import tomllib

    from tests.helpers import run_cli

    spec = tmp_path / "labelled.toml"
    spec.write_text(SPEC + "[sampler]\ndraws = 300\ntune = 300\nchains = 2\nseed = 3\n"
                    '[summary]\nforest_order = "size"\n[labels]\n'
                    'type_iii = "Type III achalasia"\njackhammer = "Jackhammer esophagus"\n'
                    'clinical_success = "Clinical success"\n')
    out = tmp_path / "res"
    code, stdout, err = run_cli(["run", spec, "--out", out, "--quiet"], capsys)
    assert code == 0, err
    assert "Type III achalasia vs Jackhammer esophagus" in stdout
    assert set(pd.read_csv(out / "summary.csv")["subgroup"]) == {*SED_ORDER, "overall"}
    svg = (out / "forest.svg").read_text()
    assert "Type III achalasia" in svg and "Clinical success (proportion)" in svg
    assert (out / "forest.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "forest.pdf").read_bytes().startswith(b"%PDF-")
    resolved = tomllib.loads((out / "spec.toml").read_text())
    assert resolved["labels"]["type_iii"] == "Type III achalasia"
    assert resolved["summary"]["forest_order"] == "size"


@pytest.mark.mcmc
@pytest.mark.parametrize("quiet", [True, False])
def test_run_above_the_forest_limit_writes_no_forest_and_says_so_once(tmp_path, capsys,
                                                                       monkeypatch, quiet):
    """Above FOREST_MAX_STUDIES, run writes no forest files and says so once: on stderr
    (unless --quiet) and in run.log either way."""
    from bayes_poem import results_dir
    from tests.helpers import run_cli

    monkeypatch.setattr(results_dir, "FOREST_MAX_STUDIES", 5)  # the SED example has 8
    spec = tmp_path / "many.toml"
    spec.write_text(SPEC + "[sampler]\ndraws = 200\ntune = 200\nchains = 2\nseed = 3\n")
    out = tmp_path / "res"
    code, _, err = run_cli(["run", spec, "--out", out] + (["--quiet"] if quiet else []), capsys)
    assert code == 0, err
    assert not list(out.glob("forest.*"))
    line = "forest plot not written: 8 studies > 5 (one row per study)"
    assert (out / "run.log").read_text().count(line) == 1
    assert err.count(line) == (0 if quiet else 1)
