"""The chosen frequentist comparator of ``compare`` (``[compare] method``, ``--method``,
``knapp_hartung``): each method puts the frequentist module's own numbers in the
comparison table; a bad method or option is one line naming the key. No MCMC: the
Bayesian side is a hand-made posterior (the frequentist columns do not depend on it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bayes_poem.compare import METHODS, compare
from bayes_poem.errors import SpecError
from bayes_poem.frequentist.glmm import glmm_proportions
from bayes_poem.frequentist.metareg import metareg_proportions
from bayes_poem.frequentist.subgroups import subgroup_analysis
from bayes_poem.specfile import load_spec
from tests.test_results_dir import _analysis, _hand_made_fit

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "models" / "sed_adverse_events.toml"


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    return _hand_made_fit(_analysis(SPEC, tmp_path_factory.mktemp("spec")))


def _row(frame, label):
    return frame.loc[frame["subgroup"] == label].iloc[0]


def test_published_is_the_default_and_unchanged(fit):
    default, published = compare(fit), compare(fit, method="published")
    assert default.method == "published" and not default.knapp_hartung
    assert default.subgroups.equals(published.subgroups)
    freq = subgroup_analysis(fit.spec.table, outcome=fit.spec.outcome,
                             subgroups=fit.spec.subgroups, level=fit.interval.prob)
    for result in (*freq.results, freq.overall):
        assert _row(default.subgroups, result.label)["freq_estimate"] == result.back_estimate
    assert "method = 'published'" in default.notes[0]
    assert "method = published" in default.render_text()


@pytest.mark.parametrize("method", ["reml", "dl"])
def test_inverse_variance_methods_give_the_random_effects_pooling(fit, method):
    comparison = compare(fit, method=method)
    freq = subgroup_analysis(fit.spec.table, outcome=fit.spec.outcome,
                             subgroups=fit.spec.subgroups, choice="random",
                             re_method=method.upper(), level=fit.interval.prob)
    for result in (*freq.results, freq.overall):
        row = _row(comparison.subgroups, result.label)
        assert row["freq_method"] == (method.upper() if result.k > 1 else "FE")
        np.testing.assert_allclose(
            [row["freq_estimate"], row["freq_ci_lower"], row["freq_ci_upper"]],
            [result.back_estimate, result.back_ci_lower, result.back_ci_upper], rtol=1e-12)
    assert f"method = '{method}'" in comparison.notes[0]


def test_knapp_hartung_gives_metafors_knha_interval(fit):
    comparison = compare(fit, method="reml", knapp_hartung=True)
    table = fit.spec.table.for_outcome(fit.spec.outcome)
    level = fit.interval.prob
    for label in fit.spec.subgroups:
        kh = metareg_proportions(table, subgroup=label, method="REML", test="knha",
                                 level=level)
        row = _row(comparison.subgroups, label)
        if kh.k < 2:
            continue
        np.testing.assert_allclose(
            [row["freq_ci_lower"], row["freq_ci_upper"]],
            1 / (1 + np.exp(-np.array([kh.ci_lower[0], kh.ci_upper[0]]))), rtol=1e-10)
        assert row["freq_method"] == "REML+KH"
    plain = compare(fit, method="reml")
    # t quantiles and the KH SE: the intervals differ from the Wald ones
    assert not np.allclose(plain.subgroups["freq_ci_lower"], comparison.subgroups["freq_ci_lower"])
    assert "Knapp-Hartung" in comparison.render_text()


def test_glmm_gives_the_glmm_numbers_without_continuity_correction(fit):
    comparison = compare(fit, method="glmm")
    table = fit.spec.table.for_outcome(fit.spec.outcome)
    level = fit.interval.prob
    for label in fit.spec.subgroups:
        glmm = glmm_proportions(table, subgroup=label, level=level)
        row = _row(comparison.subgroups, label)
        np.testing.assert_allclose(
            [row["freq_estimate"], row["freq_ci_lower"], row["freq_ci_upper"], row["freq_tau2"]],
            [glmm.back_estimate, glmm.back_ci_lower, glmm.back_ci_upper, glmm.tau2],
            rtol=1e-12, equal_nan=True)
        assert row["freq_method"] == "GLMM-ML" and row["freq_n_corrected"] == 0
    summed = table.frame.groupby("study", sort=False)[["events", "total"]].sum()
    overall = glmm_proportions(summed["events"].to_numpy(), summed["total"].to_numpy(),
                               level=level)
    assert _row(comparison.subgroups, "overall")["freq_estimate"] == pytest.approx(
        overall.back_estimate, rel=1e-12)
    # contrasts: difference of the GLMM proportions
    first = comparison.contrasts.iloc[0]
    a, b = (glmm_proportions(table, subgroup=s, level=level) for s in (first["a"], first["b"]))
    assert first["freq_difference"] == pytest.approx(a.back_estimate - b.back_estimate,
                                                     rel=1e-12)
    assert not any("continuity correction for zero cells" in n for n in comparison.notes)
    assert "method = 'glmm'" in comparison.notes[0]


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "bayes"}, "method: 'bayes' is not one of published, glmm, reml, dl"),
    ({"method": "glmm", "knapp_hartung": True}, "knapp_hartung: the Knapp-Hartung"),
    ({"method": "reml", "knapp_hartung": "yes"}, "knapp_hartung: 'yes' must be true or false"),
])
def test_bad_method_is_one_line(fit, kwargs, message):
    with pytest.raises(SpecError, match=message) as err:
        compare(fit, **kwargs)
    assert "\n" not in str(err.value)


def test_methods_are_the_documented_four():
    assert METHODS == ("published", "glmm", "reml", "dl")


# ---------------------------------------------------------------------- [compare] and flags
def _spec(tmp_path, section: str):
    path = tmp_path / "spec.toml"
    text = SPEC.read_text()  # a top-level key goes first, a table last
    path.write_text(section + text if not section.startswith("[") else text + "\n" + section)
    return load_spec(path)


def test_compare_section_default_and_resolved(tmp_path):
    assert _spec(tmp_path, "").compare == {"method": "published", "knapp_hartung": False}
    analysis = _spec(tmp_path, '[compare]\nmethod = "dl"\nknapp_hartung = true\n')
    assert analysis.compare == {"method": "dl", "knapp_hartung": True}
    assert analysis.resolved()["compare"] == {"method": "dl", "knapp_hartung": True}


@pytest.mark.parametrize("section, message", [
    ('[compare]\nmethod = "ml"\n', "compare.method: 'ml' is not one of published, glmm, reml, dl"),
    ('[compare]\nmethod = "glmm"\nknapp_hartung = true\n',
     "compare.knapp_hartung: the Knapp-Hartung adjustment applies to method 'reml' or 'dl'"),
    ('[compare]\nknapp_hartung = 1\n', "compare.knapp_hartung: 1 must be true or false"),
    ('[compare]\nmetod = "dl"\n', "unknown key 'compare.metod'"),
    ('compare = "glmm"\n', r"\[compare\] must be a table"),
])
def test_bad_compare_section_is_one_line_naming_the_key(tmp_path, section, message):
    with pytest.raises(SpecError, match=message) as err:
        _spec(tmp_path, section)
    assert "\n" not in str(err.value) and "spec.toml" in str(err.value)


def test_cli_flags_override_the_spec_and_bad_ones_are_one_line(tmp_path, capsys):
    import argparse

    from bayes_poem.cli import _compare_options, main

    analysis = _spec(tmp_path, '[compare]\nmethod = "reml"\n')
    args = argparse.Namespace(method=None, knha=None)
    assert _compare_options(args, analysis) == {"method": "reml", "knapp_hartung": False}
    args = argparse.Namespace(method="glmm", knha=None)
    assert _compare_options(args, analysis) == {"method": "glmm", "knapp_hartung": False}
    args = argparse.Namespace(method=None, knha=True)
    assert _compare_options(args, analysis) == {"method": "reml", "knapp_hartung": True}
    with pytest.raises(SpecError, match=r"^--knha: the Knapp-Hartung"):
        _compare_options(argparse.Namespace(method="glmm", knha=True), analysis)
    # argparse refuses an unknown method before anything runs (exit 2, one usage line)
    with pytest.raises(SystemExit) as exit_:
        main(["compare", str(SPEC), "--method", "bayes"])
    assert exit_.value.code == 2
    assert "invalid choice: 'bayes'" in capsys.readouterr().err


def test_glmm_without_a_finite_estimate_is_one_line_naming_the_subgroup(tmp_path):
    """Clinical success: a subgroup where every study has only events has no finite ML
    estimate; the GLMM comparator says so (no silent fallback to another method)."""
    from bayes_poem.errors import DataError

    fit = _hand_made_fit(_analysis(ROOT / "models" / "sed_clinical_success.toml", tmp_path))
    with pytest.raises(DataError, match=r"^compare method 'glmm', subgroup '\w+': .*only "
                                        "events in every study") as err:
        compare(fit, method="glmm")
    assert "\n" not in str(err.value)
