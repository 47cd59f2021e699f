"""The meta-regression line and bubble plot (issue 10): arithmetic on hand-made draws,
the figure, and ``bubble_<moderator>.png`` in the results of ``run``."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from bayes_poem import SpecError
from bayes_poem.dims import MODERATOR
from bayes_poem.intervals import IntervalSpec
from bayes_poem.plots import bubble_plot
from tests.helpers import fake_moderator_fit as _fake_fit
from tests.helpers import run_cli
from tests.test_moderators import _spec, table  # noqa: F401 - fixture


def test_curve_is_mu_plus_beta_x_across_the_observed_range(table):  # noqa: F811
    spec = _spec(table, "year", "quality")
    fit = _fake_fit(spec)
    curve, points = fit.moderator_curve("year", n=7, interval=IntervalSpec("eti", 0.9))
    year = spec.moderators[0]
    raw = table.frame.loc[table.frame["outcome"] == "cs", "year"].astype(float)
    assert curve["value"].tolist() == pytest.approx(np.linspace(raw.min(), raw.max(), 7))
    post = fit.posterior
    beta_year = post["beta"].sel({MODERATOR: "year"}).values.ravel()
    for row in curve.itertuples():
        draws = post["mu"].values.ravel() + beta_year * (row.value - year.centre) / year.scale
        assert row.median == pytest.approx(np.median(draws))
        assert row.lower == pytest.approx(np.quantile(draws, 0.05))
        assert row.upper == pytest.approx(np.quantile(draws, 0.95))
    frame = spec.table.frame
    assert points["value"].tolist() == frame["year"].astype(float).tolist()
    first = frame.iloc[0]
    assert points["logit"].iloc[0] == pytest.approx(
        np.log(first["events"] / (first["total"] - first["events"])))
    assert points["total"].tolist() == frame["total"].tolist()


def test_curve_corrects_zero_and_all_event_rows(table):  # noqa: F811
    fit = _fake_fit(_spec(table, "year"))
    _, points = fit.moderator_curve("year")
    frame = fit.spec.table.frame
    edge = (frame["events"] == 0) | (frame["events"] == frame["total"])
    assert np.isfinite(points["logit"]).all()
    y, n = frame["events"] + 0.5 * edge, frame["total"] + 1.0 * edge
    np.testing.assert_allclose(points["logit"], np.log(y / (n - y)))


@pytest.mark.parametrize("name", ["quality", "volume", "nope"])
def test_only_numeric_moderators_of_the_model_have_a_curve(table, name):  # noqa: F811
    fit = _fake_fit(_spec(table, "year", "quality"))
    with pytest.raises(SpecError, match=f"'{name}' is not a numeric moderator"):
        fit.moderator_curve(name)


def test_bubble_plot_draws_points_line_and_band(table):  # noqa: F811
    fit = _fake_fit(_spec(table, "year"))
    curve, points = fit.moderator_curve("year")
    fig = bubble_plot(points=points, curve=curve, moderator="year", interval_label="95% ETI")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 1 and len(ax.collections) >= 2  # line; band and point sets
    offsets = np.concatenate([c.get_offsets() for c in ax.collections[1:]])
    assert len(offsets) == len(points)


@pytest.mark.mcmc
def test_run_writes_a_bubble_plot_per_numeric_moderator(tmp_path, capsys):
    spec = tmp_path / "m.toml"
    spec.write_text('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
                    '[model]\nmoderators = ["year", "quality"]\n'
                    "[sampler]\ndraws = 200\ntune = 200\nchains = 2\nseed = 4\n")
    code, _, err = run_cli(["run", spec, "--out", tmp_path / "res", "--quiet"], capsys)
    assert code == 0, err
    pngs = sorted(p.name for p in (tmp_path / "res").glob("bubble_*.png"))
    assert pngs == ["bubble_year.png"]  # quality is categorical: no line
    assert (tmp_path / "res" / "bubble_year.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
