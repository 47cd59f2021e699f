"""The public Python API (issue 14, item 3): ``from bayes_poem import ...`` offers what
the docs use, lazily (the import cost is tests/test_startup.py's); ``FitResult.summary``
is ``bayes-poem run``'s text and ``FitResult._repr_html_`` a compact notebook view.

Tier 1: names, the docs' imports, summary and HTML view on hand-made draws
(``tests.helpers.fake_moderator_fit``). Tier 2 (``mcmc``): ``summary()`` of a fit of a
spec equals what ``bayes-poem run`` prints for it, the R^2 refit included.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import re
from html import escape
from pathlib import Path

import pandas as pd
import pytest

import bayes_poem
from bayes_poem import ModelSpec, load_table
from bayes_poem.banner import synthetic_banner
from bayes_poem.explained import tau2_explained
from bayes_poem.report_text import render
from tests.helpers import fake_moderator_fit, run_cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# What docs/quickstart.md uses (issue 14, item 3).
QUICKSTART_NAMES = {"fit", "FitResult", "SamplerSettings", "Contrast", "IntervalSpec",
                    "load_spec", "load_results"}

CSV = """study,subgroup,outcome,events,total,quality,year
A,x,cs,8,10,good,2015
A,y,cs,4,6,good,2015
B,x,cs,9,15,fair,2016
C,y,cs,2,7,good,2017
D,x,cs,7,10,fair,2018
D,y,cs,5,9,fair,2018
E,x,cs,9,12,poor,2019
E,y,cs,3,8,poor,2019
F,x,cs,12,14,good,2020
"""


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "d.csv"
    path.write_text(CSV)
    return load_table(path, source="<my table> & co")


# ---------------------------------------------------------------------- names
def test_all_is_the_export_table_and_the_version():
    assert bayes_poem.__all__ == sorted([*bayes_poem._EXPORTS, "__version__"])
    assert QUICKSTART_NAMES <= set(bayes_poem.__all__)


def test_every_public_name_resolves_to_its_modules_object():
    """A name whose module is not in this tree yet (``load_results``, from
    ``bayes_poem/results_dir.py`` on another branch) is checked once it is."""
    checked = []
    for name, module in bayes_poem._EXPORTS.items():
        if importlib.util.find_spec(module) is None:
            assert name == "load_results", f"{name}: module {module} does not exist"
            continue
        assert getattr(bayes_poem, name) is getattr(importlib.import_module(module), name)
        checked.append(name)
    assert len(checked) >= len(bayes_poem._EXPORTS) - 1
    assert isinstance(bayes_poem.__version__, str)


def test_dir_lists_the_public_names_and_an_unknown_name_is_an_attribute_error():
    assert set(bayes_poem.__all__) <= set(dir(bayes_poem))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        bayes_poem.nope  # noqa: B018
    with pytest.raises(ImportError):
        from bayes_poem import nope  # noqa: F401


_FROM_IMPORT = re.compile(r"^\s*from bayes_poem import (\(([^)]*)\)|[^\n]+)", re.MULTILINE)


def imported_names(text: str) -> list[str]:
    """The names of every ``from bayes_poem import ...`` in ``text`` (one line or a
    parenthesised list; ``X as Y`` gives X)."""
    names = []
    for match in _FROM_IMPORT.finditer(text):
        body = match.group(2) if match.group(2) is not None else match.group(1)
        body = body.split("#", 1)[0] if match.group(2) is None else re.sub(r"#[^\n]*", "",
                                                                           body)
        names += [part.split(" as ")[0].strip() for part in body.split(",") if part.strip()]
    return names


def test_the_import_extractor():
    text = ("```python\nfrom bayes_poem import ModelSpec, load_dataset  # data\n"
            "from bayes_poem import (\n    fit,\n    FitResult as R,  # a result\n)\n"
            "from bayes_poem.results import with_summary_options\n```\n")
    assert imported_names(text) == ["ModelSpec", "load_dataset", "fit", "FitResult"]


def test_every_name_the_docs_import_from_the_package_is_public():
    found = {}
    for path in DOCS:
        for name in imported_names(path.read_text()):
            found.setdefault(name, path.relative_to(ROOT).as_posix())
    assert found, "no 'from bayes_poem import' in README.md or docs/*.md"
    missing = {name: where for name, where in found.items() if name not in bayes_poem.__all__}
    assert missing == {}


# ---------------------------------------------------------------------- summary()
def test_summary_is_runs_text_for_the_fit(table):
    fit = fake_moderator_fit(ModelSpec.from_table(table, "cs"), seed=3)
    assert fit.summary() == render(fit, fit.contrasts())
    titled = fit.summary(title="My title")
    assert titled.splitlines()[0] == "My title"
    assert "Pooled probabilities, posterior median [95% ETI]" in titled
    assert "Contrasts, posterior median" in titled
    assert "SYNTHETIC DATA" not in titled


def test_summary_with_moderators_refits_for_r2_as_run_does(table, monkeypatch):
    import bayes_poem.explained as explained

    spec = ModelSpec.from_table(table, "cs").with_moderators("year")
    fit = fake_moderator_fit(spec, seed=1)
    without = fake_moderator_fit(dataclasses.replace(spec, moderators=()), seed=2)
    given = tau2_explained(fit, without=without)
    calls = []

    def refit(result, settings=None, **kwargs):  # the hand-made fit without moderators
        calls.append(result)
        return tau2_explained(result, settings, without=without, **kwargs)

    monkeypatch.setattr(explained, "tau2_explained", refit)
    text = fit.summary()
    assert calls == [fit]
    assert text == render(fit, fit.contrasts(), explained=given)
    assert "Share of tau^2 explained by the moderators" in text
    assert fit.summary(explained=given) == text and len(calls) == 1  # given: no refit


# ---------------------------------------------------------------------- _repr_html_
def test_repr_html_is_a_compact_table_view_without_refit(table, monkeypatch):
    import bayes_poem.explained as explained

    def no_refit(*args, **kwargs):
        raise AssertionError("the HTML view must not refit")

    monkeypatch.setattr(explained, "tau2_explained", no_refit)
    fit = fake_moderator_fit(ModelSpec.from_table(table, "cs").with_moderators("year"))
    html = fit._repr_html_()
    assert html.startswith('<div class="bayes-poem-fit">') and html.endswith("</div>")
    assert html.count("<table") == 3  # probabilities, heterogeneity, moderators
    summary = fit.subgroup_summary()
    for row in summary.query("quantity == 'p_pooled'").itertuples():
        cell = (f"<td>{100 * row.median:.1f}% [{100 * row.lower:.1f}%, "
                f"{100 * row.upper:.1f}%]</td>")
        assert f"<tr><td>{row.subgroup}</td><td>{int(row.total)}</td>" in html
        assert cell in html
    tau = fit.heterogeneity().set_index("parameter").loc["tau"]
    assert f"<tr><td>tau</td><td>{tau['median']:.3f}</td>" in html
    assert "<td>year</td>" in html
    assert escape("<my table> & co") in html and "<my table>" not in html
    assert "SYNTHETIC DATA" not in html
    assert "Diagnostics: max R-hat" in html and "-- OK" in html
    # two subgroups: fixed by the rule, and the view says so
    assert (escape("Subgroup effects: fixed (unpooled, sum-to-zero), chosen because 2 "
                   "subgroups < 3") in html)


def test_repr_html_of_synthetic_data_has_the_banner_and_no_moderator_table(sed_spec):
    html = fake_moderator_fit(sed_spec)._repr_html_()
    assert html.count(escape(synthetic_banner(sed_spec.table))) == 2
    assert html.count("<table") == 2


# ---------------------------------------------------------------------- tier 2
SPEC = ('title = "API check"\n[data]\npath = "d.csv"\noutcome = "cs"\n'
        '[model]\nmoderators = ["year"]\n'
        "[sampler]\ndraws = 300\ntune = 300\nchains = 2\nseed = 7\n"
        '[summary]\ninterval = "eti"\nprob = 0.9\n'
        '[[contrasts]]\na = "x"\nb = "y"\nmargin = 0.05\n')


@pytest.mark.mcmc
@pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")
def test_summary_of_a_fit_prints_what_run_prints(tmp_path, capsys):
    from bayes_poem import fit, load_spec
    from bayes_poem.results import with_summary_options

    (tmp_path / "d.csv").write_text(CSV)
    path = tmp_path / "s.toml"
    path.write_text(SPEC)
    code, stdout, err = run_cli(["run", path, "--out", tmp_path / "res", "--quiet"], capsys)
    assert code == 0, err
    printed = stdout.split("\n\nResults written to ")[0]
    analysis = load_spec(path)
    result = with_summary_options(fit(analysis.model_spec(), analysis.sampler),
                                  interval=analysis.interval, weights=analysis.weights,
                                  at=analysis.at)
    text = result.summary(list(analysis.contrasts), title=analysis.title)
    assert "Share of tau^2 explained by the moderators" in text
    assert "[90% ETI]" in text
    assert text == printed
    assert pd.notna(result.diagnostics.table["r_hat"]).all()
