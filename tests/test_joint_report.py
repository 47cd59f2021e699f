"""The joint model's report: section builders on hand-made draws (unit), `bayes-poem report`
of a joint spec and of a joint results directory (mcmc), and the joint figures drawn by
headless Chromium (browser)."""

from __future__ import annotations

import dataclasses
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from bayes_poem.diagnostics import Diagnostics
from bayes_poem.errors import DataError
from bayes_poem.joint_sensitivity import ROW_COLUMNS, read_table
from bayes_poem.report import build_report, render_html, render_markdown
from bayes_poem.report.format import prob
from bayes_poem.report.sections.joint import (
    benefit_risk_section,
    build_joint_report,
    joint_contrast_section,
    joint_model_formulas,
    joint_sensitivity_section,
)
from tests.helpers import run_cli
from tests.test_joint_results import _hand_made
from tests.test_report import _external_references, _quick_copy, _render

pytestmark = pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")

# The joint figure's acceptable corner: PALETTE[2] green at alpha 0.12 over white.
CORNER = 0.88 + 0.12 * np.array([0x1A, 0x98, 0x50]) / 255


def _result(n_draws=2000, rho=0.3, tau=(0.3, 0.4)):
    """A hand-made JointResult (tests/test_joint_results.py) with a diagnostics table."""
    result, mu, alpha = _hand_made(rho=rho, tau=tau, n_draws=n_draws)
    table = pd.DataFrame({"r_hat": [1.0, 1.0], "ess_bulk": [900.0, 950.0],
                          "ess_tail": [800.0, 850.0]}, index=["mu", "tau"])
    diagnostics = Diagnostics(table=table, divergences=0, bfmi=(1.0,))
    return dataclasses.replace(result, diagnostics=diagnostics), mu, alpha


# ---------------------------------------------------------------------- unit
def test_formulas_show_the_correlated_study_effects_and_the_rho_prior():
    result, _, _ = _result()
    spec = result.spec
    text = [f.text for f in joint_model_formulas(spec)]
    assert "logit(p_i) = mu[o_i] + alpha[o_i, d_i] + u[o_i, s_i]" in text
    assert any("sqrt(1 - rho^2) * w[1, s]" in t for t in text)
    assert "p(rho) proportional to (1 - rho^2)^(2 - 1)   (LKJ(2) on the 2 x 2 correlation)" in text
    assert any(t.startswith("s_alpha[1] = ") for t in text)  # fixed subgroup effects
    mathml = "".join(f.mathml for f in joint_model_formulas(spec))
    assert "<msqrt>" in mathml and "ρ" in mathml
    pinned = [f.text for f in joint_model_formulas(spec.with_rho(fixed=0.0))]
    assert "rho = 0   (fixed)" in pinned and not any("LKJ" in t for t in pinned)


def test_benefit_risk_cells_are_the_share_of_draws():
    """tau = 0: p_mean is expit(mu + alpha) per draw, so P(both) is a count of draws."""
    result, mu, alpha = _result(tau=(0.0, 0.0))
    p = expit(mu[:, :, None] + alpha)
    br = result.benefit_risk
    section = benefit_risk_section(result)
    row = section.table[section.table["subgroup"] == "jackhammer"].iloc[0]
    both = ((p[:, 0, 2] >= br.benefit_min) & (p[:, 1, 2] <= br.harm_max)).mean()
    assert row["quantity"] == "p_mean" and row["P(both)"] == prob(both)
    assert row["P(clinical_success >= 85%)"] == prob((p[:, 0, 2] >= br.benefit_min).mean())
    assert [f.name for f in section.figures] == [f"joint_{d}" for d in result.spec.subgroups]
    assert all(f.png.startswith(b"\x89PNG") for f in section.figures)
    other = section.subsections[0].table
    assert set(other["quantity"]) == {"p_pooled", "p_new"}


def test_joint_contrasts_cells():
    result, mu, alpha = _result(tau=(0.0, 0.0))
    p = expit(mu[:, :, None] + alpha)
    section = joint_contrast_section(result, [("type_iii", "jackhammer")])
    row = section.table.iloc[0]
    better = ((p[:, 0, 0] > p[:, 0, 2]) & (p[:, 1, 0] < p[:, 1, 2])).mean()
    assert row["a vs b"] == "type_iii vs jackhammer" and row["P(better on both)"] == prob(better)


def test_the_whole_report_renders_self_contained_with_the_synthetic_banner():
    result, _, _ = _result(n_draws=600)
    report = build_report(result, title="Joint test")  # build_report dispatches
    titles = [s.title for s in report.sections]
    assert titles == ["Data", "Model and priors", "Sampler diagnostics", "Posterior summaries",
                      "Benefit and risk together", "Subgroups compared on both outcomes"]
    html = render_html(report)
    # the banner at the top and the end, and the Data section's first paragraph
    assert report.synthetic and html.count("SYNTHETIC DATA: the study-level counts") == 3
    assert _external_references(html) == []
    assert html.count('src="data:image/png;base64,') == 4
    assert "tau[adverse_event]" in html and "rho" in html and "<math>" in html
    priors = report.sections[1].table
    assert list(priors["parameter"])[-1] == "rho"
    assert priors["why"].iloc[-1].startswith("LKJ(eta)")
    markdown, files = render_markdown(report)
    assert sorted(files) == [f"fig0{i}_joint_{d}.png" for i, d in
                             enumerate(result.spec.subgroups, start=1)]
    assert markdown.count("SYNTHETIC DATA") >= 2
    assert "p(rho) proportional to" in markdown


def _sensitivity_rows(flag_des: bool) -> pd.DataFrame:
    rows = []
    for variant, shift in (("main", 0.0), ("rho LKJ(eta=1)", 0.02), ("rho fixed at 0", -0.4)):
        rows.append({"variant": variant, "status": "ok", "quantity": "rho",
                     "kind": "heterogeneity", "median": 0.1 + shift, "lower": -0.5 + shift,
                     "upper": 0.7 + shift})
        for subgroup, p in (("type_iii", 0.97), ("des", 0.96)):
            crossing = flag_des and subgroup == "des" and variant != "main"
            rows.append({"variant": variant, "status": "ok", "kind": "benefit_risk",
                         "quantity": f"p_both[{subgroup}]", "subgroup": subgroup,
                         "probability": 0.9 if crossing else p,
                         "flag": "crosses 0.95 (0.960 -> 0.900)" if crossing else ""})
    rows.append({"variant": "broken", "status": "failed", "error": "SamplingError: x"})
    return pd.DataFrame(rows).reindex(columns=ROW_COLUMNS)


def test_sensitivity_section_pivots_variants_and_highlights_flags(tmp_path):
    frame = _sensitivity_rows(flag_des=True)
    path = tmp_path / "benefit_risk_sensitivity.csv"
    frame.to_csv(path, index=False)
    section = joint_sensitivity_section(read_table(path))
    table = section.table
    assert list(table.columns) == ["quantity", "main", "rho LKJ(eta=1)", "rho fixed at 0",
                                   "_highlight"]
    assert table["_highlight"].tolist() == [False, False, True]
    assert table.iloc[2]["rho LKJ(eta=1)"] == "0.900"
    assert "Failed variants (not shown): broken." in section.text
    quiet = joint_sensitivity_section(_sensitivity_rows(flag_des=False))
    assert "no flags" in quiet.text and not quiet.table["_highlight"].any()


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.drop(columns=["flag"]), "no column 'flag'"),
    (lambda f: f.assign(variant=f["variant"].replace("main", "first")), "no 'main' variant"),
    (lambda f: f.assign(probability=f["probability"].where(f.index != 2, 1.5)),
     "row 4, column 'probability': 1.5 is not a probability in [0, 1]"),
    (lambda f: f.assign(kind=f["kind"].where(f.index != 1, "contrast")),
     "row 3, column 'kind': 'contrast' is not one of"),
])
def test_sensitivity_table_errors_name_the_row_and_column(tmp_path, change, message):
    path = tmp_path / "benefit_risk_sensitivity.csv"
    change(_sensitivity_rows(flag_des=False)).to_csv(path, index=False)
    with pytest.raises(DataError, match=re.escape(f"{path}: ") + ".*" + re.escape(message)):
        read_table(path)


def test_report_of_a_joint_spec_refuses_new_centre_n_in_one_line(tmp_path, capsys):
    spec = _quick_copy("sed_joint", tmp_path)
    code, out, err = run_cli(["report", spec, "--out", tmp_path / "r", "--new-centre-n", "20"],
                             capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "--new-centre-n: the joint model's report has no predictions" in err
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------- the command
@pytest.fixture(scope="module")
def joint_report(tmp_path_factory):
    """`bayes-poem run` of the SED joint spec (short chains), then `report RESULTS_DIR`."""
    from bayes_poem.cli import main

    base = tmp_path_factory.mktemp("joint")
    spec = _quick_copy("sed_joint", base)
    assert main(["run", str(spec), "--out", str(base / "results"), "--quiet"]) == 0
    return base, spec


@pytest.mark.mcmc
def test_report_of_a_joint_results_directory_does_not_refit(joint_report, tmp_path, capsys,
                                                             monkeypatch):
    from bayes_poem.joint import JointSpec

    base, _ = joint_report
    results = tmp_path / "results"
    shutil.copytree(base / "results", results)
    (tmp_path / "results_sensitivity").mkdir()  # where 'bayes-poem sensitivity' writes
    _sensitivity_rows(flag_des=True).to_csv(
        tmp_path / "results_sensitivity" / "benefit_risk_sensitivity.csv", index=False)

    def no_fit(*args, **kwargs):
        raise AssertionError("refitted")

    monkeypatch.setattr(JointSpec, "fit", no_fit)
    code, out, err = run_cli(["report", results, "--quiet"], capsys)
    assert (code, err) == (0, "")
    report = tmp_path / "results_report"
    assert out == f"Report written to {report}/report.html and {report}/report.md\n"
    html = (report / "report.html").read_text()
    for anchor in ("data", "model", "diagnostics", "summaries", "benefit-risk", "contrasts",
                   "sensitivity", "reproducibility"):
        assert f'id="{anchor}"' in html
    assert "type_iii vs jackhammer" in html and "type_iii vs des" in html  # [[contrasts]]
    assert "des vs jackhammer" not in html
    assert "SYNTHETIC DATA" in html and _external_references(html) == []
    assert len(list(report.glob("fig*_joint_*.png"))) == 4

    # a spec.toml whose model differs from the posterior's is refused, naming the key
    toml = results / "spec.toml"
    toml.write_text(toml.read_text().replace("eta = 2.0", "eta = 4.0"))
    code, out, err = run_cli(["report", results, "--out", tmp_path / "other"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "priors.rho.eta differs from the fitted model (fitted 2.0, spec.toml 4.0)" in err
    assert not (tmp_path / "other").exists()


@pytest.mark.mcmc
def test_report_of_a_joint_spec_fits_it(joint_report, tmp_path, capsys):
    _, spec = joint_report
    code, out, err = run_cli(["report", spec, "--out", tmp_path / "r", "--quiet"], capsys)
    assert code == 0 and err == ""
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Benefit and risk together" in html and 'id="sensitivity"' not in html


# ---------------------------------------------------------------------- the browser
def _green_share(png) -> float:
    """Share of pixels of the shaded corner's colour (the stylesheet has no green)."""
    import matplotlib.image as mpimg

    image = mpimg.imread(png)[..., :3].reshape(-1, 3)
    return float((np.abs(image - CORNER).max(axis=1) < 0.02).mean())


@pytest.mark.browser
def test_joint_figures_render_in_headless_chromium(tmp_path):
    """Show it: the joint report's figures are drawn by the browser (their green acceptable
    corners); the same page without the image data has no pixel of that colour. The
    report (of hand-made draws: no sampling; the mcmc tests make it from a fit) keeps its
    banner, benefit-risk section and footer, so the figures fall inside the 4000-pixel
    screenshot."""
    result, _, _ = _result(n_draws=1000)
    full = build_report(result)
    (section,) = [s for s in full.sections if s.anchor == "benefit-risk"]
    page = tmp_path / "page.html"
    page.write_text(render_html(dataclasses.replace(full, sections=(section,))))
    png, requests = _render(page, tmp_path / "shot")
    assert png.is_file() and png.stat().st_size > 50_000
    assert [url for url in requests if re.match(r"(?i)(https?|wss?|ftp):", url)] == []
    assert _green_share(png) > 1e-3
    blank = page.with_name("blank.html")
    blank.write_text(re.sub(r'src="data:image/png;base64,[^"]*"', 'src=""', page.read_text()))
    blank_png, _ = _render(blank, tmp_path / "blank")
    assert _green_share(blank_png) == 0.0


def test_report_builder_is_also_reachable_directly():
    result, _, _ = _result(n_draws=400)
    report = build_joint_report(result, pairs=[("des", "jackhammer")])
    assert report.sections[-1].table.iloc[0]["a vs b"] == "des vs jackhammer"
    assert "Bayesian joint meta-analysis of clinical_success and adverse_event" == report.title
