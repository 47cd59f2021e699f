"""The report: CLI, self-contained HTML (rendered in headless Chromium), Markdown, plots."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from bayes_poem import plots
from bayes_poem.cli import main
from tests.helpers import run_cli

pytestmark = pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")

ROOT = Path(__file__).resolve().parents[1]
QUICK_SAMPLER = "draws = 500\ntune = 500\nchains = 2\n"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SYNTHETIC_RED = np.array([0xB2, 0x18, 0x2B]) / 255


def _quick_copy(name: str, directory: Path) -> Path:
    """A copy of models/<name>.toml with shorter chains."""
    text = (ROOT / "models" / f"{name}.toml").read_text()
    text = re.sub(r"(?m)^(draws|tune|chains) = \d+\n", "", text)
    text = text.replace("[sampler]\n", "[sampler]\n" + QUICK_SAMPLER, 1)
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def sed_report(tmp_path_factory):
    """`bayes-poem run` then `bayes-poem report RESULTS_DIR`, recording every fit made."""
    from bayes_poem import sampling

    base = tmp_path_factory.mktemp("sed")
    spec = _quick_copy("sed_clinical_success", base)
    assert main(["run", str(spec), "--out", str(base / "results"), "--quiet"]) == 0
    fitted = []
    original = sampling.fit

    def recording_fit(spec, settings=None, **kwargs):
        fitted.append(spec)
        return original(spec, settings, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sampling, "fit", recording_fit)
        code = main(["report", str(base / "results"), "--out", str(base / "report"),
                     "--quiet"])
    assert code == 0
    return base, fitted


def _spec_report(name: str, tmp_path: Path, capsys, *extra: str) -> tuple[Path, str]:
    spec = _quick_copy(name, tmp_path)
    out = tmp_path / "report"
    code, stdout, err = run_cli(["report", spec, "--out", out, "--quiet", *extra], capsys)
    assert code == 0, err
    assert "report.html" in stdout
    return out, (out / "report.html").read_text()


# ---------------------------------------------------------------------- static checks
def _external_references(text: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]*)""", text,
                      flags=re.IGNORECASE)


@pytest.mark.mcmc
def test_report_files_and_self_contained_html(sed_report):
    base, _ = sed_report
    out = base / "report"
    names = {p.name for p in out.iterdir()}
    assert {"report.html", "report.md", "run.log"} <= names
    pngs = sorted(n for n in names if n.endswith(".png"))
    assert len(pngs) >= 8
    html = (out / "report.html").read_text()
    assert _external_references(html) == []
    assert not re.search(r"<script|<link|<iframe|<object|<embed|@import|url\(", html,
                         flags=re.IGNORECASE)
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == len(pngs)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "SYNTHETIC DATA" in html[:3000]  # the banner, before anything else
    assert html.count('class="synthetic"') == 2  # top and bottom
    assert "<math" in html and "<style>" in html
    for anchor in ("data", "model", "diagnostics", "summaries", "contrasts", "prior-predictive",
                   "ppc", "loo", "predictions", "frequentist", "reproducibility"):
        assert f'id="{anchor}"' in html, anchor
    for text in ("mid-p", "Pareto k", "P(events &gt;= 45)", "data hash", "[sampler]",
                 "type_iii vs jackhammer", "Khan", "beta-binomial", "N = 50"):
        assert text in html, text
    for package in ("bayes_poem", "Python", "numpy", "scipy", "pandas", "ArviZ", "PyMC",
                    "PyTensor", "nutpie", "numba", "platform"):
        assert f"<td>{package}</td>" in html


@pytest.mark.mcmc
def test_markdown_links_its_figures(sed_report):
    out = sed_report[0] / "report"
    markdown = (out / "report.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert links and all((out / link).is_file() for link in links)
    assert {link for link in links} == {p.name for p in out.glob("*.png")}
    assert markdown.startswith("# ") and "**SYNTHETIC DATA" in markdown
    assert "```toml" in markdown and "| study |" in markdown


@pytest.mark.mcmc
def test_report_of_results_dir_does_not_refit_the_analysis(sed_report):
    base, fitted = sed_report
    from bayes_poem.specfile import load_spec

    main_spec = load_spec(base / "results" / "spec.toml").model_spec()
    same = [s for s in fitted
            if s.table.data_hash() == main_spec.table.data_hash()
            and (s.study_effects, s.likelihood, s.subgroup_effects)
            == (main_spec.study_effects, main_spec.likelihood, main_spec.subgroup_effects)]
    assert same == []
    # Only the likelihood variants of the comparison (and leave-one-out refits) were
    # fitted, and the unpooled refit of the contrasts: the main model with fixed
    # subgroup effects (the main one's are random).
    full = [s for s in fitted if s.table.data_hash() == main_spec.table.data_hash()]
    assert main_spec.subgroup_effects == "random"
    assert {(s.study_effects, s.likelihood, s.subgroup_effects) for s in full} == {
        ("common", "binomial", "random"), ("common", "beta_binomial", "random"),
        ("random", "binomial", "fixed")}


# ---------------------------------------------------------------------- the browser
def _chromium() -> str:
    path = next(filter(None, map(shutil.which,
                                 ("chromium", "chromium-browser", "google-chrome"))), None)
    assert path, ("chromium is not installed: this test must run (make test installs it: "
                  "scripts/ensure_chromium.sh)")
    return path


def _render(html: Path, work: Path) -> tuple[Path, list[str]]:
    """Screenshot ``html`` headless; return the PNG and the URLs the *page* requested."""
    work.mkdir(parents=True, exist_ok=True)
    png, netlog = work / "shot.png", work / "net.json"
    subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={work / 'profile'}",
                    f"--log-net-log={netlog}", f"--screenshot={png}",
                    "--window-size=1280,4000", html.as_uri()],
                   capture_output=True, timeout=180, check=False)
    return png, _page_requests(netlog)


def _page_requests(netlog: Path) -> list[str]:
    """URLs of the network requests started on behalf of a document.

    Chromium's own background traffic (component updates, account checks) has the
    initiator "not an origin"; a request made by the page has the page's origin
    (``null`` for a file:// page) and a ``file://`` network isolation key.
    """
    text = netlog.read_text()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # not closed when the browser exits abruptly
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    types = {value: key for key, value in log["constants"]["logEventTypes"].items()}
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if types.get(event["type"]) != "URL_REQUEST_START_JOB" or "url" not in params:
            continue
        if (params.get("initiator") != "not an origin"
                or "file://" in str(params.get("network_isolation_key", ""))):
            urls.append(params["url"])
    return urls


@pytest.mark.mcmc
@pytest.mark.browser
def test_report_renders_in_headless_chromium_without_network(sed_report, tmp_path):
    """Show it: the report renders to a non-trivial screenshot and the page requests
    nothing; a control page with one external image proves the detector sees requests."""
    html = sed_report[0] / "report" / "report.html"
    png, requests = _render(html, tmp_path / "report")
    assert png.is_file() and png.stat().st_size > 50_000
    import matplotlib.image as mpimg

    image = mpimg.imread(png)[..., :3]
    assert image.shape[:2] == (4000, 1280)
    assert image.std() > 0.05  # not a blank page
    top = image[:300].reshape(-1, 3)
    assert (np.abs(top - SYNTHETIC_RED).max(axis=1) < 0.08).mean() > 0.01  # red banner shown
    assert [url for url in requests if re.match(r"(?i)(https?|wss?|ftp):", url)] == []

    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><html><body><img src="http://netcheck.invalid/x.png">'
                       "</body></html>")
    _, control_requests = _render(control, tmp_path / "control")
    assert "http://netcheck.invalid/x.png" in control_requests


# ---------------------------------------------------------------------- other specs
@pytest.mark.mcmc
def test_single_group_report_renders(tmp_path, capsys):
    out, html = _spec_report("rat_tumors", tmp_path, capsys, "--new-centre-n", "20")
    assert "None: the model has no subgroup effects" in html
    assert "N = 20" in html and "P(events &gt;= 20)" in html
    assert "SYNTHETIC" not in html
    assert _external_references(html) == []
    assert (out / "report.md").is_file()


@pytest.mark.mcmc
def test_adverse_event_report_renders(tmp_path, capsys):
    _, html = _spec_report("sed_adverse_events", tmp_path, capsys)
    assert "jackhammer vs type_iii" in html and "5%" in html
    assert "SYNTHETIC DATA" in html
    assert _external_references(html) == []


@pytest.mark.mcmc
def test_sensitivity_section_from_results_dir(sed_report):
    from bayes_poem.report import build_report, load_fit, render_html
    from bayes_poem.sensitivity import ROW_COLUMNS
    from bayes_poem.specfile import load_spec

    base = sed_report[0]
    results = base / "results_with_sensitivity"
    if not results.exists():
        shutil.copytree(base / "results", results)
    rows = []
    for variant, shift, flag in (("main", 0.0, ""), ("tau HalfNormal(2)", 0.01, ""),
                                 ("drop SYN-02", -0.05, "P(>0) crosses 0.95")):
        rows.append({"variant": variant, "group": "g", "status": "ok", "quantity": "tau",
                     "kind": "heterogeneity", "median": 0.4 + shift, "lower": 0.02,
                     "upper": 1.1, "flag": ""})
        rows.append({"variant": variant, "group": "g", "status": "ok",
                     "quantity": "difference[type_iii vs jackhammer]", "kind": "contrast",
                     "median": 0.15 + shift, "lower": -0.02 + shift, "upper": 0.33,
                     "p_gt_0": 0.96 + shift, "flag": flag})
    rows.append({"variant": "broken", "group": "g", "status": "failed", "quantity": None,
                 "kind": None, "median": None, "lower": None, "upper": None, "flag": ""})
    # every column 'bayes-poem sensitivity' writes (the report validates the file)
    pd.DataFrame(rows).reindex(columns=ROW_COLUMNS).to_csv(results / "sensitivity.csv",
                                                           index=False)
    analysis = load_spec(results / "spec.toml")
    fit = load_fit(results, analysis, analysis.model_spec())
    html = render_html(build_report(fit, analysis=analysis, results_dir=results,
                                    compare_models=False))
    assert 'id="sensitivity"' in html and "drop SYN-02" in html
    assert "Failed variants (not drawn): broken" in html


# ---------------------------------------------------------------------- CLI errors
def test_report_refuses_an_existing_directory_without_force(tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    spec = _quick_copy("sed_clinical_success", tmp_path)
    code, stdout, err = run_cli(["report", spec, "--out", out], capsys)
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and "already exists; use --force" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_bad_results_dir_is_one_line(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "spec.toml").write_text('[data]\ndataset = "rat_tumors"\noutcome = "tumor"\n')
    code, stdout, err = run_cli(["report", results, "--out", tmp_path / "rep"], capsys)
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and "no posterior.nc" in err
    assert not (tmp_path / "rep").exists()


@pytest.mark.mcmc
def test_results_dir_of_other_data_is_refused(sed_report, tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(sed_report[0] / "results", results)
    spec = results / "spec.toml"
    spec.write_text(spec.read_text().replace('outcome = "clinical_success"',
                                             'outcome = "adverse_event"'))
    code, _, err = run_cli(["report", results, "--out", tmp_path / "rep"], capsys)
    # the key that differs is named (issue 9, class 5)
    assert code == 2 and err.count("\n") == 1
    assert f"{spec}: data.outcome differs from the fitted model" in err
    assert not (tmp_path / "rep").exists()


def test_new_centre_n_must_be_positive(tmp_path, capsys):
    spec = _quick_copy("rat_tumors", tmp_path)
    code, _, err = run_cli(["report", spec, "--out", tmp_path / "rep", "--new-centre-n", "0"],
                        capsys)
    assert code == 2 and err.count("\n") == 1 and "--new-centre-n" in err
    with pytest.raises(SystemExit) as exit_info:  # argparse usage error
        main(["report", str(spec), "--new-centre-n", "many"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


# ---------------------------------------------------------------------- plots
def test_plots_take_keywords_only_and_return_figures():
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"study": ["A", "B"], "subgroup": ["x", "x"], "events": [3, 9],
                         "total": [10, 10], "observed": [0.3, 0.9], "cp_lower": [0.07, 0.55],
                         "cp_upper": [0.65, 0.99], "median": [0.4, 0.8], "lower": [0.2, 0.6],
                         "upper": [0.6, 0.95]})
    forest = pd.DataFrame({  # forest_data.forest_table's rows: header, studies, pooled
        "kind": ["header", "study", "study", "pooled", "prediction"],
        "subgroup": ["x"] * 5, "label": ["x", "A", "B", "Pooled", "Prediction"],
        "year": [None] * 5, "total": [None, 10, 10, 20, None],
        "observed": [None, 0.3, 0.9, 0.6, None], "obs_lower": [None, 0.07, 0.55, None, None],
        "obs_upper": [None, 0.65, 0.99, None, None], "median": [None, 0.4, 0.8, 0.6, 0.6],
        "lower": [None, 0.2, 0.6, 0.4, 0.2], "upper": [None, 0.6, 0.95, 0.8, 0.95],
        "interval": [None] + ["95% ETI"] * 4, "text_events": ["", "3/10", "9/10", "12/20", ""],
        "text_observed": ["", "30.0%", "90.0%", "60.0%", ""],
        "text_estimate": ["", "40.0% [20.0%, 60.0%]", "80.0% [60.0%, 95.0%]",
                          "60.0% [40.0%, 80.0%]", "60.0% [20.0%, 95.0%]"]})
    ppc_rows = rows.assign(rep_lower=[1, 5], rep_median=[4, 8], rep_upper=[7, 10],
                           interval="95% central", ppp=[0.6, 0.01], flag=[False, True])
    figures = [
        plots.forest_plot(table=forest),
        plots.contrast_density_plot(draws={"a vs b": rng.normal(0.1, 0.05, 500)},
                                    margins={"a vs b": 0.1}),
        plots.ppc_plot(rows=ppc_rows),
        plots.ppc_statistics_plot(
            statistics=pd.DataFrame({"statistic": ["min_rate"], "description": ["lowest"],
                                     "observed": [0.3], "ppp": [0.4]}),
            draws={"min_rate": rng.integers(0, 10, 500) / 10}),
        plots.prior_predictive_plot(rates={"p_pooled": rng.uniform(size=500),
                                           "p_study": rng.uniform(size=500)},
                                    difference=rng.normal(0, 0.2, 500)),
        plots.loo_pit_plot(pit=rng.uniform(size=12)),
        plots.prior_posterior_plot(prior={"mu": rng.normal(0, 2, 500),
                                          "tau": np.abs(rng.normal(0, 1, 500))},
                                   posterior={"mu": rng.normal(1, 0.2, 500),
                                              "tau": np.abs(rng.normal(0.3, 0.1, 500))},
                                   positive={"tau"}),
        plots.pareto_k_plot(table=pd.DataFrame({"study": list("abc"),
                                                "pareto_k": [0.1, 0.8, 0.9],
                                                "method": ["psis", "refit", "psis"]})),
        plots.new_centre_plot(pmf=pd.DataFrame({"count": [0, 1, 2], "x": [0.2, 0.5, 0.3]}),
                              n=2),
        plots.sensitivity_forest(frame=pd.DataFrame({
            "variant": ["main", "v1"], "quantity": ["tau", "tau"], "median": [0.4, 0.5],
            "lower": [0.1, 0.2], "upper": [0.9, 1.0]})),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        assert plots.to_png(fig).startswith(b"\x89PNG")
    with pytest.raises(TypeError):
        plots.forest_plot(forest)  # type: ignore[misc]


@pytest.mark.mcmc
def test_report_finds_the_sensitivity_command_output(sed_report, capsys):
    """End to end: 'sensitivity' writes <results>_sensitivity/, 'report' picks it up."""
    base = sed_report[0]
    spec = base / "grid.toml"
    spec.write_text((base / "results" / "spec.toml").read_text() + (
        '\n[sensitivity]\ntau_priors = [{ dist = "HalfNormal", sigma = 0.5 }]\nturner = []\n'
        'mu_priors = []\nsigma_subgroup_priors = []\nsubgroup_effects = []\n'
        'likelihoods = []\nleave_one_out = false\npsens = false\nsubsets = []\n'))
    grid_dir = base / "results_sensitivity"
    code, _, err = run_cli(["sensitivity", spec, "--out", grid_dir, "--quiet"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["report", base / "results", "--out", base / "report_grid", "--quiet"],
                        capsys)
    assert code == 0, err
    html = (base / "report_grid" / "report.html").read_text()
    assert 'id="sensitivity"' in html and "From sensitivity.csv: 2 variant(s)" in html


def test_prior_posterior_section_shows_every_hyperparameter(tmp_path):
    """The prior predictive section carries the prior-vs-posterior figure of mu, tau,
    sigma_subgroup (and beta per moderator term); its draws are loglik.prior_group's."""
    from bayes_poem.report.sections.checks import _prior_and_posterior, prior_section
    from tests.test_results_dir import MODERATED, _analysis, _hand_made_fit

    fit = _hand_made_fit(_analysis(ROOT / "models" / "sed_clinical_success.toml", tmp_path))
    prior, posterior = _prior_and_posterior(fit)
    assert list(posterior) == ["mu", "tau", "sigma_subgroup"] == list(prior)
    assert prior["tau"].shape == posterior["tau"].shape
    section = prior_section(fit)
    names = [figure.name for figure in section.figures]
    assert names == ["prior_predictive", "prior_posterior"]
    assert "mu, tau, sigma_subgroup" in section.figures[1].caption
    moderated = _hand_made_fit(_analysis(MODERATED, tmp_path))
    _, posterior = _prior_and_posterior(moderated)
    assert [k for k in posterior if k.startswith("beta[")] == [
        f"beta[{t}]" for t in moderated.spec.moderator_terms]
