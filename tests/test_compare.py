"""Frequentist vs Bayesian comparison: frames, published values, exactness, text and CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_poem import ModelSpec, load_dataset
from bayes_poem.banner import synthetic_banner
from bayes_poem.compare import (
    CONTRAST_COLUMNS,
    PUBLISHED_CONTRAST_COLUMNS,
    PUBLISHED_SUBGROUP_COLUMNS,
    SUBGROUP_COLUMNS,
    compare,
)
from bayes_poem.contrasts import Contrast
from bayes_poem.errors import SpecError
from bayes_poem.frequentist import ModelChoice, pool_by_rule, subgroup_analysis
from bayes_poem.outputs import MARKER, write_directory, write_text
from bayes_poem.published import PUBLISHED
from bayes_poem.sampling import SamplerSettings
from tests.helpers import run_cli

# Short chains for speed; their diagnostics are not what these tests check.
pytestmark = pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")

SED_ORDER = ["type_iii", "des", "jackhammer", "unassigned"]
SETTINGS = SamplerSettings(draws=500, tune=500, chains=2, seed=20170101)
FILES = {"comparison_subgroups.csv", "comparison_contrasts.csv", "comparison.txt", MARKER,
         "run.log", "comparison_subgroups.tex", "comparison_contrasts.tex", "tables.docx"}

# Khan MA et al., Dig Dis Sci 2017;62:35-44 (verified): estimate, CI, I^2 per row.
PUBLISHED_ROWS = {
    "clinical_success": {"overall": (0.87, 0.78, 0.93, 37.0), "type_iii": (0.92,),
                         "des": (0.88,), "jackhammer": (0.72,)},
    "adverse_event": {"overall": (0.14, 0.09, 0.20, 0.0), "type_iii": (0.11,),
                      "des": (0.14,), "jackhammer": (0.16,)},
}


def _fit(outcome: str, dataset: str = "sed_synthetic", **options):
    table = load_dataset(dataset)
    if dataset == "sed_synthetic":
        options.setdefault("subgroups", SED_ORDER)
    return ModelSpec.from_table(table, outcome, **options).fit(SETTINGS)


@pytest.fixture(scope="module")
def success_fit():
    return _fit("clinical_success")


@pytest.fixture(scope="module")
def success(success_fit):
    return compare(success_fit, contrasts=[Contrast("type_iii", "jackhammer", margin=0.10),
                                           Contrast("jackhammer", "des")])


@pytest.fixture(scope="module")
def harms():
    return compare(_fit("adverse_event"))


@pytest.fixture(scope="module")
def catheter():
    return compare(_fit("catheter_infection", dataset="nielweise2007"))


def _row(frame: pd.DataFrame, label: str) -> pd.Series:
    rows = frame[frame["subgroup"] == label]
    assert len(rows) == 1
    return rows.iloc[0]


# ---------------------------------------------------------------------- frames
@pytest.mark.mcmc
def test_frames_have_expected_rows_and_columns(success, catheter):
    assert list(success.subgroups["subgroup"]) == [*SED_ORDER, "overall"]
    assert list(success.subgroups.columns) == [*SUBGROUP_COLUMNS, *PUBLISHED_SUBGROUP_COLUMNS]
    assert list(success.contrasts["contrast"]) == ["type_iii vs jackhammer",
                                                   "jackhammer vs des"]
    assert list(success.contrasts.columns) == [*CONTRAST_COLUMNS, *PUBLISHED_CONTRAST_COLUMNS]
    assert isinstance(success.notes, tuple) and all(isinstance(n, str) for n in success.notes)
    assert list(catheter.subgroups["subgroup"]) == ["treated", "control", "overall"]
    assert list(catheter.contrasts["contrast"]) == ["treated vs control"]  # default: all pairs
    frame = success.subgroups
    assert set(frame["freq_model"]) <= {"fixed", "random"}
    assert frame["freq_reason"].str.contains("fixed-effect model|random-effects model").all()
    assert (frame["bayes_interval"] == "95% ETI").all() and (frame["freq_interval"]
                                                             == "95% CI").all()


@pytest.mark.mcmc
def test_published_values_for_sed_synthetic(success, harms):
    for comparison, outcome in ((success, "clinical_success"), (harms, "adverse_event")):
        frame = comparison.subgroups
        for label in [*SED_ORDER, "overall"]:
            row = _row(frame, label)
            expected = PUBLISHED_ROWS[outcome].get(label, ())
            got = (row["published"], row["published_ci_lower"], row["published_ci_upper"],
                   row["published_i2"])
            for i, value in enumerate(got):
                if i < len(expected):
                    assert value == pytest.approx(expected[i], abs=1e-12), (outcome, label)
                else:
                    assert math.isnan(value), (outcome, label, i)
            if expected:
                assert "real" in row["published_source"]
                assert "verified" in row["published_source"]
            else:
                assert row["published_source"] == ""
        assert any("SYNTHETIC" in n and "real study-level data" in n for n in comparison.notes)
    first = success.contrasts.iloc[0]
    assert first["published_difference"] == pytest.approx(0.20)
    assert first["published_p_value"] == pytest.approx(0.01)
    assert math.isnan(success.contrasts.iloc[1]["published_difference"])
    assert harms.contrasts["published_difference"].isna().all()
    assert any("no safety difference" in n for n in harms.notes)


def test_published_module_marks_every_number_verified():
    def numbers(node):
        if isinstance(node, dict) and set(node) == {"value", "mark"}:
            yield node
        elif isinstance(node, dict):
            for child in node.values():
                yield from numbers(child)

    found = list(numbers(PUBLISHED))
    assert len(found) == 2 * 7 + 2
    assert all(n["mark"] == "verified" for n in found)
    assert "Dig Dis Sci 2017;62:35-44" in PUBLISHED["sed_synthetic"]["citation"]


@pytest.mark.mcmc
def test_no_published_columns_for_other_data(catheter):
    assert not set(PUBLISHED_SUBGROUP_COLUMNS) & set(catheter.subgroups.columns)
    assert not set(PUBLISHED_CONTRAST_COLUMNS) & set(catheter.contrasts.columns)
    assert not catheter.has_published
    # no note about published values (the first note names the comparator method,
    # whose default is called "published")
    assert catheter.notes[0].startswith("Frequentist comparator: method = 'published'")
    assert not any("published" in n.lower() for n in catheter.notes[1:])
    assert "SYNTHETIC DATA" not in catheter.render_text()


@pytest.mark.mcmc
def test_overall_published_value_needs_every_subgroup():
    comparison = compare(_fit("clinical_success", subgroups=["type_iii", "jackhammer"]))
    assert _row(comparison.subgroups, "type_iii")["published"] == pytest.approx(0.92)
    assert math.isnan(_row(comparison.subgroups, "overall")["published"])
    assert any("only some of the dataset's subgroups" in n for n in comparison.notes)


# ---------------------------------------------------------------------- exactness
def _assert_close(a: float, b: float) -> None:
    assert (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-12, (a, b)


@pytest.mark.mcmc
def test_frequentist_numbers_equal_the_frequentist_api(success, success_fit):
    table = success_fit.spec.table
    direct = subgroup_analysis(table, outcome="clinical_success", subgroups=SED_ORDER)
    for label in [*SED_ORDER, "overall"]:
        row, ref = _row(success.subgroups, label), direct[label]
        if label != "overall":  # an independent route for the subgroup rows
            alone = pool_by_rule(table, subgroup=label, choice=ModelChoice())
            _assert_close(row["freq_estimate"], alone.back_estimate)
        for column, value in [("freq_estimate", ref.back_estimate),
                              ("freq_ci_lower", ref.back_ci_lower),
                              ("freq_ci_upper", ref.back_ci_upper), ("freq_i2", ref.i2),
                              ("freq_tau2", ref.tau2), ("freq_q", ref.q),
                              ("freq_q_pvalue", ref.q_pvalue)]:
            _assert_close(float(row[column]), float(value))
        assert row["freq_model"] == ref.model and row["freq_method"] == ref.method
        assert row["k"] == ref.k
        assert row["freq_reason"] in ref.note
    pair = direct.pairwise.set_index(["subgroup_1", "subgroup_2"])
    first, second = success.contrasts.iloc[0], success.contrasts.iloc[1]
    ref = pair.loc[("type_iii", "jackhammer")]
    for column, key in [("freq_difference", "difference"), ("freq_ci_lower", "ci_lower"),
                        ("freq_ci_upper", "ci_upper"), ("freq_z", "z"),
                        ("freq_p_value", "p_value")]:
        _assert_close(float(first[column]), float(ref[key]))
    ref = pair.loc[("des", "jackhammer")]  # requested as jackhammer vs des: sign flipped
    _assert_close(float(second["freq_difference"]), -float(ref["difference"]))
    _assert_close(float(second["freq_ci_lower"]), -float(ref["ci_upper"]))
    _assert_close(float(second["freq_ci_upper"]), -float(ref["ci_lower"]))
    _assert_close(float(second["freq_z"]), -float(ref["z"]))
    _assert_close(float(second["freq_p_value"]), float(ref["p_value"]))


@pytest.mark.mcmc
def test_bayesian_numbers_equal_the_fit_summaries(success, success_fit):
    summary = success_fit.subgroup_summary().set_index(["subgroup", "quantity"])
    het = success_fit.heterogeneity().set_index("parameter")["median"]
    for label in [*SED_ORDER, "overall"]:
        row = _row(success.subgroups, label)
        assert row["bayes_p_pooled_median"] == summary.loc[(label, "p_pooled"), "median"]
        assert row["bayes_p_pooled_lower"] == summary.loc[(label, "p_pooled"), "lower"]
        assert row["bayes_p_pooled_upper"] == summary.loc[(label, "p_pooled"), "upper"]
        assert row["bayes_p_mean_median"] == summary.loc[(label, "p_mean"), "median"]
        assert row["bayes_interval"] == summary.loc[(label, "p_pooled"), "interval"]
        assert row["bayes_tau_median"] == het["tau"] and row["bayes_tau2_median"] == het["tau2"]
        assert row["bayes_i2_median"] == pytest.approx(100 * het["i2"], abs=1e-12)
        assert row["total"] == summary.loc[(label, "p_pooled"), "total"]
        assert row["events"] == summary.loc[(label, "p_pooled"), "events"]
    bayes = success_fit.contrasts([Contrast("type_iii", "jackhammer", margin=0.10),
                                   Contrast("jackhammer", "des")])
    bayes = bayes[bayes["scale"] == "difference"].reset_index(drop=True)
    got = success.contrasts
    for ours, theirs in [("bayes_median", "median"), ("bayes_lower", "lower"),
                         ("bayes_upper", "upper"), ("bayes_p_gt_0", "p_gt_null"),
                         ("margin", "margin"), ("bayes_p_gt_margin", "p_gt_margin")]:
        np.testing.assert_array_equal(got[ours].to_numpy(float), bayes[theirs].to_numpy(float))
    assert list(got["margin"]) == [0.10, 0.0]


@pytest.mark.mcmc
def test_frequentist_options_are_passed_through(success_fit):
    comparison = compare(success_fit, choice="random", re_method="DL", scale="double_arcsine",
                         contrasts=[])
    assert set(comparison.subgroups["freq_model"]) == {"random"}
    direct = subgroup_analysis(success_fit.spec.table, subgroups=SED_ORDER, choice="random",
                               re_method="DL", scale="double_arcsine")
    _assert_close(_row(comparison.subgroups, "des")["freq_estimate"],
                  direct["des"].back_estimate)
    assert comparison.contrasts.empty
    assert any("double_arcsine scale and is not comparable" in n for n in comparison.notes)
    with pytest.raises(SpecError, match="re_method"):
        compare(success_fit, re_method="XX")
    with pytest.raises(SpecError, match="not in the model"):
        compare(success_fit, contrasts=[Contrast("type_3", "des")])


@pytest.mark.mcmc
def test_model_without_subgroup_effects_has_empty_bayesian_subgroup_cells():
    fit = _fit("clinical_success", subgroup_effects="none")
    comparison = compare(fit)
    frame = comparison.subgroups.set_index("subgroup")
    assert frame.loc[SED_ORDER, "bayes_p_pooled_median"].isna().all()
    assert np.isfinite(frame.loc["overall", "bayes_p_pooled_median"])
    assert comparison.contrasts.empty
    assert any("no subgroup effects" in n for n in comparison.notes)


# ---------------------------------------------------------------------- notes and text
@pytest.mark.mcmc
def test_notes_explain_the_differences(success):
    text = " ".join(success.notes)
    assert "continuity correction" in text and "exact binomial likelihood" in text
    assert "I^2 = " in text and "fixed-effect model" in text  # which model the rule chose
    assert "not a p-value" in text and "shared by all subgroups" in text


@pytest.mark.mcmc
def test_render_text_is_aligned_with_synthetic_banner(success):
    text = success.render_text(title="A title")
    lines = text.splitlines()
    banner = synthetic_banner(success.fit.spec.table)  # the dataset's own description
    assert "simulated to match published aggregates" in banner
    assert lines[0] == banner and lines[-1] == banner
    assert "A title" in lines
    for heading, n_rows in (("Pooled proportions", 5),
                            ("Contrasts, difference of proportions (a - b)", 2)):
        start = lines.index(heading) + 1
        block = lines[start:start + 2 + n_rows]
        bars = {tuple(i for i, ch in enumerate(line) if ch == "|") for line in block}
        assert len(bars) == 1, block  # the column groups line up on every line
        assert len(next(iter(bars))) == 3
    assert "87% [78%, 93%]" in text and "Published (real data)" in text


# ---------------------------------------------------------------------- CLI
def _quick_spec(tmp_path: Path, name: str = "quick.toml") -> Path:
    path = tmp_path / name
    path.write_text(
        '[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
        'subgroups = ["type_iii", "des", "jackhammer", "unassigned"]\n'
        "[sampler]\ndraws = 500\ntune = 500\nchains = 2\nseed = 3\n"
        '[[contrasts]]\na = "type_iii"\nb = "jackhammer"\nmargin = 0.1\n'
    )
    return path


@pytest.mark.mcmc
def test_cli_compare_writes_three_files_and_refuses_existing_dir(tmp_path, capsys,
                                                                 monkeypatch):
    spec = _quick_spec(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    code, out, err = run_cli(["compare", spec, "--quiet"], capsys)
    assert code == 0, err
    out_dir = tmp_path / "results" / "quick_compare"  # default: results/<stem>_compare
    assert {p.name for p in out_dir.iterdir()} == FILES
    assert "SYNTHETIC DATA" in out and "type_iii vs jackhammer" in out
    assert (out_dir / "comparison.txt").read_text() == out.split("\nResults written")[0]
    subgroups = pd.read_csv(out_dir / "comparison_subgroups.csv")
    assert list(subgroups["subgroup"]) == [*SED_ORDER, "overall"]
    assert "published" in subgroups.columns
    contrasts = pd.read_csv(out_dir / "comparison_contrasts.csv")
    assert list(contrasts["contrast"]) == ["type_iii vs jackhammer"]
    assert contrasts["margin"].iloc[0] == pytest.approx(0.1)

    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    code, out, err = run_cli(["compare", spec, "--quiet"], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "already exists; use --force" in err
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before
    assert not [p for p in (tmp_path / "results").iterdir() if p.name.startswith(".")]


@pytest.mark.mcmc
def test_cli_compare_force_replaces(tmp_path, capsys):
    out_dir = tmp_path / "res"
    write_directory(out_dir, {"old.txt": write_text("old")}, force=False)  # earlier results
    code, _, err = run_cli(["compare", _quick_spec(tmp_path), "--out", out_dir, "--force",
                         "--quiet"], capsys)
    assert code == 0, err
    assert {p.name for p in out_dir.iterdir()} == FILES


BAD = {
    "unknown_key": ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
                    "[sampler]\ndraw = 3\n", "unknown key 'sampler.draw'"),
    "bad_contrast": ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
                     '[[contrasts]]\na = "type_3"\nb = "des"\n',
                     "subgroup 'type_3' is not in the data"),
    "unknown_outcome": ('[data]\ndataset = "sed_synthetic"\noutcome = "success"\n',
                        "outcome 'success' is not in the data"),
    "bad_csv": ('[data]\npath = "data.csv"\noutcome = "s"\n',
                "row 1 (line 2), column 'events': events (5) > total (3)"),
    "bad_toml": ("[data\n", "not valid TOML"),
}


@pytest.mark.parametrize("case", BAD, ids=str)
def test_cli_compare_bad_spec_is_one_line_and_writes_nothing(tmp_path, capsys, case):
    text, message = BAD[case]
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    (tmp_path / "data.csv").write_text("study,outcome,events,total\nA,s,5,3\n")
    out_dir = tmp_path / "res"
    code, out, err = run_cli(["compare", spec, "--out", out_dir], capsys)  # not --quiet
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("bayes-poem: error:") and message in err
    assert "Traceback" not in err
    assert not out_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "data.csv"]


def test_cli_compare_missing_spec(tmp_path, capsys):
    code, _, err = run_cli(["compare", tmp_path / "nope.toml", "--out", tmp_path / "res"], capsys)
    assert code == 2 and err.count("\n") == 1 and "no such file" in err
    assert not (tmp_path / "res").exists()
