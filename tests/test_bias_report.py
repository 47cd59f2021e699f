"""The report's "Small-study effects" section: written by `report` when the spec has a
[bias] section, and its funnel and cumulative plots rendered in headless Chromium."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bayes_poem import ModelSpec, load_dataset
from bayes_poem.bias import BiasOptions
from bayes_poem.bias_analysis import analyse_bias
from bayes_poem.report import Report, Section, render_html
from bayes_poem.report.sections.comparisons import bias_section as _bias_section
from bayes_poem.sampling import SamplerSettings
from tests.helpers import run_cli
from tests.test_report import _quick_copy, _render

pytestmark = pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")

ORANGE = np.array([0xE0, 0x82, 0x14]) / 255  # the frequentist cumulative estimates only


@pytest.mark.mcmc
def test_report_has_the_section_only_with_a_bias_table(tmp_path, capsys):
    spec = _quick_copy("sed_clinical_success", tmp_path)
    spec.write_text(spec.read_text() + '\n[bias]\nprecision = "sei"\n')
    out = tmp_path / "report"
    code, _, err = run_cli(["report", spec, "--out", out, "--quiet"], capsys)
    assert code == 0, err
    html = (out / "report.html").read_text()
    section = html[html.index('id="small-study-effects"'):html.index('id="frequentist"')]
    assert "Small-study effects" in section and "limit estimate" in section
    assert "SE of the observed logit" in section
    images = re.findall(r'<img[^>]*src="data:image/png;base64,', section)
    assert len(images) == 3 * 4  # two funnels and a cumulative plot per subgroup
    markdown = (out / "report.md").read_text()
    assert re.search(r"(?m)^#+ Small-study effects$", markdown)
    assert len(list(out.glob("*funnel_posterior_*.png"))) == 4


def _section_page(tmp_path):
    table = load_dataset("debruin2009")
    spec = ModelSpec.from_table(table)
    fit = spec.fit(SamplerSettings(draws=400, tune=400, chains=2, seed=3))
    section = _bias_section(fit, analyse_bias(fit, BiasOptions()))
    html = render_html(Report("Small-study effects", "debruin2009", False, (section,),
                              Section("footer")))
    path = tmp_path / "page.html"
    path.write_text(html)
    return path


def _orange_share(png) -> float:
    import matplotlib.image as mpimg

    image = mpimg.imread(png)[..., :3].reshape(-1, 3)
    return float((np.abs(image - ORANGE).max(axis=1) < 0.06).mean())


@pytest.mark.mcmc
@pytest.mark.browser
def test_funnel_and_cumulative_plots_render_in_headless_chromium(tmp_path):
    """Show it: the section's figures (frequentist funnel, posterior funnel, cumulative
    plot with the frequentist estimates in orange) are drawn by the browser; the same page
    without the image data has no orange at all, so the pixels come from the figures."""
    page = _section_page(tmp_path)
    png, requests = _render(page, tmp_path / "shot")
    assert png.is_file() and png.stat().st_size > 50_000
    assert [url for url in requests if re.match(r"(?i)(https?|wss?|ftp):", url)] == []
    assert _orange_share(png) > 1e-4
    blank = page.with_name("blank.html")
    blank.write_text(re.sub(r'src="data:image/png;base64,[^"]*"', 'src=""',
                            page.read_text()))
    blank_png, _ = _render(blank, tmp_path / "blank")
    assert _orange_share(blank_png) == 0.0
    import matplotlib.image as mpimg

    shot, control = mpimg.imread(png)[..., :3], mpimg.imread(blank_png)[..., :3]
    assert np.abs(shot - control).mean() > 0.01  # the figures change the page visibly
