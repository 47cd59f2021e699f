"""Comparative meta-analysis of the shipped anterior-vs-posterior trials (short sampling).

The nutpie backend samples the disk-cached compiled kernel
(``bayes_poem.backends.arm_density``): no fit compiles; the PyMC backend samples the
reference model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

from bayes_poem import DataError, SpecError, load_dataset, load_table
from bayes_poem.dims import STUDY
from bayes_poem.sampling import SamplerSettings
from bayes_poem.trials import binomial_meta, binomial_meta_from_table, comparative_counts
from bayes_poem.trials.published import META_ANALYSES, comparison_notes, published_rows

QUICK = SamplerSettings(draws=1000, tune=700, chains=2, seed=19)


@pytest.fixture(scope="module")
def table():
    return load_dataset("poem_anterior_posterior_rcts")


@pytest.fixture(scope="module")
def success(table):
    return binomial_meta_from_table(table, "clinical_success", settings=QUICK, margin=0.1)


def test_counts_per_outcome_never_pool_one_trial_twice(table):
    counts = comparative_counts(table, "clinical_success")
    assert counts["study"].tolist() == ["Khashab2020_long", "Tan2018"]
    assert counts.iloc[0][["anterior_events", "anterior_total", "posterior_events",
                           "posterior_total"]].tolist() == [46, 54, 45, 57]
    assert comparative_counts(table, "adverse_event")["study"].tolist() == ["Khashab2020"]
    # a table in which both labels of the trial report the same outcome is refused
    frame = table.frame.copy()
    extra = frame[(frame["study"] == "Khashab2020_long")].copy()
    extra["study"] = "Khashab2020"
    doubled = load_table(pd.concat([frame, extra], ignore_index=True), source="doubled")
    with pytest.raises(DataError, match="'Khashab2020' and 'Khashab2020_long' are the same "
                                        "trial"):
        comparative_counts(doubled, "clinical_success")
    only_one = comparative_counts(doubled, "clinical_success",
                                  studies=["Khashab2020_long", "Tan2018"])
    assert only_one["study"].tolist() == ["Khashab2020_long", "Tan2018"]


@pytest.mark.parametrize(("rows", "kwargs", "message"), [
    ("A,anterior,s,1,10\n", {}, "trial 'A': expected one 'posterior' row, found 0"),
    ("A,anterior,s,1,10\nA,posterior,s,1,10\nA,lateral,s,1,3\n", {}, "'lateral' are not arms"),
    ("A,anterior,s,1,10\nA,posterior,s,1,10\n", {"studies": ["B"]}, "trial(s) 'B' not in"),
])
def test_bad_comparative_tables(rows, kwargs, message):
    frame = pd.read_csv(pd.io.common.StringIO("study,subgroup,outcome,events,total\n" + rows))
    bad = load_table(frame, source="bad")
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        comparative_counts(bad, "s", **kwargs)


def test_counts_frame_is_validated():
    good = {"study": ["A"], "anterior_events": [1], "anterior_total": [10],
            "posterior_events": [2], "posterior_total": [10]}
    with pytest.raises(DataError, match=r"counts row 1 \(A\), posterior arm: events \(12\) > "
                                        r"total \(10\)"):
        binomial_meta(pd.DataFrame({**good, "posterior_events": [12]}))
    with pytest.raises(DataError, match="anterior arm: total is 0: an arm with no patients"):
        binomial_meta(pd.DataFrame({**good, "anterior_total": [0], "anterior_events": [0]}))
    with pytest.raises(SpecError, match="margin: must be > 0"):
        binomial_meta(pd.DataFrame(good), margin=-0.1)
    with pytest.raises(SpecError, match="dist 'Normal' is not allowed for 'tau'"):
        binomial_meta(pd.DataFrame(good), priors={"tau": {"dist": "Normal", "sigma": 1}})
    with pytest.raises(SpecError, match="unknown prior name 'mu'"):
        binomial_meta(pd.DataFrame(good), priors={"mu": {"dist": "Normal", "sigma": 1}})


@pytest.mark.mcmc
def test_clinical_success_fit_has_named_dims_and_derived_quantities(success):
    post = success.idata.posterior
    assert list(post[STUDY].values) == ["Khashab2020_long", "Tan2018"]
    assert not [d for d in post.dims if "_dim_" in d]
    assert success.diagnostics.ok, success.diagnostics.problems
    draws = success.draws
    np.testing.assert_allclose(draws["odds_ratio"], np.exp(post["theta"]))
    np.testing.assert_allclose(draws["p_posterior"],
                               expit(logit(draws["p_anterior"]) + post["theta"]))
    np.testing.assert_allclose(draws["risk_ratio"], draws["p_posterior"] / draws["p_anterior"])
    assert success.pooled_anterior == (1 + 77, 1 + 8)
    # the predictive log OR is wider than the pooled one
    assert float(draws["theta_new"].std()) > float(draws["theta"].std())
    table = success.summary()
    assert table["quantity"].tolist()[:3] == ["theta", "odds_ratio", "tau"]
    assert (table["interval"] == "95% ETI").all()
    ni = success.noninferiority()
    assert ni["effect"].tolist() == ["pooled", "new_trial"]
    assert ni["p_noninferior"].between(0, 1).all()


@pytest.mark.mcmc
def test_shipped_results_beside_the_published_ones(success):
    comparison = success.published_comparison()
    assert comparison["source"].tolist() == ["Rodriguez de Santiago 2019", "Mohan 2020"]
    assert comparison["measure"].tolist() == ["RR", "OR"]
    assert comparison["published"].tolist() == [0.98, 1.02]
    assert (comparison["mark"] == "verified").all()
    assert (comparison["ours_lower"] < comparison["ours_median"]).all()
    # our RR is uncertain but centred near 1, like the published RR 0.98 (0.96-1.01)
    rr = comparison.iloc[0]
    assert rr["ours_lower"] < 0.98 < rr["ours_upper"]
    assert any("Khashab2020 at 1 year" in n for n in success.notes)
    assert any("Tan2018 has no failures" in n for n in success.notes)


@pytest.mark.mcmc
def test_fits_never_compile(table, success, monkeypatch):
    """Other trial counts, data and prior families: the disk-cached kernel, no compilation."""
    import nutpie
    import pytensor

    from bayes_poem.trials import meta

    def forbidden(*args, **kwargs):
        raise AssertionError("a fit tried to compile")

    monkeypatch.setattr(nutpie, "compile_pymc_model", forbidden)
    monkeypatch.setattr(pytensor, "function", forbidden)
    monkeypatch.setattr(meta, "binomial_model", forbidden)
    counts = pd.DataFrame({"study": ["X", "Y", "Z"], "anterior_events": [400, 300, 50],
                           "anterior_total": [500, 400, 60], "posterior_events": [300, 200, 30],
                           "posterior_total": [500, 400, 50]})
    refit = binomial_meta(counts, settings=QUICK,
                          priors={"tau": {"dist": "LogNormalTau2", "mu": -1.69, "sigma": 1.68},
                                  "theta": {"dist": "StudentT", "nu": 4, "mu": 0, "sigma": 1}},
                          warn=False)
    assert list(refit.idata.posterior[STUDY].values) == ["X", "Y", "Z"]
    assert refit.idata.posterior.sizes["draw"] == QUICK.draws
    # large trials with log OR near -0.8: the posterior is centred there
    observed = np.log(300 / 200) - np.log(400 / 100)
    assert float(refit.draws["theta"].median()) == pytest.approx(observed, abs=0.2)


@pytest.mark.mcmc
def test_backends_agree(table):
    """The compiled kernel and the PyMC reference model: the same posterior within MCSE."""
    import arviz as az

    counts = comparative_counts(table, "clinical_success")
    runs = {backend: binomial_meta(counts, settings=SamplerSettings(
        draws=2000, tune=1000, chains=2, seed=5, backend=backend), warn=False)
        for backend in ("nutpie", "pymc")}
    for name in ("theta", "tau"):
        means = [float(r.idata.posterior[name].mean()) for r in runs.values()]
        mcse = [float(az.mcse(r.idata.posterior[[name]])[name]) for r in runs.values()]
        # difference of two independent estimates: 4 combined MCSE
        assert abs(means[0] - means[1]) < 4 * np.hypot(*mcse), (name, means, mcse)
    assert set(runs["nutpie"].idata.posterior.data_vars) == \
        set(runs["pymc"].idata.posterior.data_vars) == {"theta", "tau", "mu", "w", "delta"}


@pytest.mark.mcmc
def test_single_trial_outcome_with_the_pymc_backend(table):
    settings = SamplerSettings(draws=400, tune=400, chains=2, seed=3, backend="pymc")
    result = binomial_meta_from_table(table, "adverse_event", settings=settings, kind="harm",
                                      margin=0.05)
    assert result.studies == ["Khashab2020"]
    assert result.published_comparison()["published"].tolist() == [0.63]
    assert any("Khashab2020 only" in n for n in result.notes)
    assert result.noninferiority()["hypothesis"].iloc[0] == \
        "P(p_posterior - p_anterior < +0.05)"


def test_published_figures_are_cited_and_marked():
    for meta in META_ANALYSES.values():
        assert meta["citation"] and meta["short"]
        for effect in meta["effects"].values():
            assert effect["estimate"]["mark"] == "verified"
    rows = published_rows("abnormal_acid_exposure")
    assert [(r["measure"], r["estimate"], r["ci_lower"], r["ci_upper"]) for r in rows] == [
        ("RR", 0.98, 0.75, 1.28), ("OR", 0.98, 0.59, 1.63)]
    assert published_rows("technical_success") == []
    notes = comparison_notes("clinical_success", ["Tan2018"])
    assert "differ from the shipped selection" in notes[1]
