"""Tier-1 tests of the embedded datasets and the SYNTHETIC SED simulation."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest

from bayes_poem.datasets import dataset_names, list_datasets, load_dataset, synthetic
from bayes_poem.datasets.synthetic import SEED, simulate_sed
from bayes_poem.errors import DataError
from bayes_poem.table import StudyTable

EXPECTED_NAMES = ["sed_synthetic", "sed_published_studies", "rat_tumors", "nielweise2007",
                  "poem_anterior_posterior_rcts", "debruin2009"]
REAL_NAMES = [n for n in EXPECTED_NAMES if n != "sed_synthetic"]
NAMED_DISORDERS = ["type_iii", "des", "jackhammer"]


def shipped_csv(filename: str, **kwargs) -> pd.DataFrame:
    with resources.files("bayes_poem.datasets").joinpath(filename).open("r") as handle:
        return pd.read_csv(handle, **kwargs)


@pytest.fixture(scope="module")
def sed() -> StudyTable:
    return load_dataset("sed_synthetic")


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

def test_dataset_names():
    assert dataset_names() == EXPECTED_NAMES


def test_list_datasets_matches_names_and_flags():
    listing = list_datasets()
    assert list(listing.columns) == ["name", "title", "synthetic", "citation"]
    assert listing["name"].tolist() == dataset_names()
    flagged = listing.loc[listing["synthetic"].astype(bool), "name"].tolist()
    assert flagged == ["sed_synthetic"]


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_every_dataset_loads_with_provenance(name):
    table = load_dataset(name)
    assert isinstance(table, StudyTable)
    assert len(table.frame) > 0
    assert table.source == f"dataset '{name}'"
    assert table.metadata["dataset"] == name
    assert len(table.metadata["citation"].strip()) > 20
    assert table.metadata["title"].strip()
    assert table.metadata["synthetic"] in ("true", "false")
    assert table.frame["events"].dtype == np.int64
    assert (table.frame["events"] <= table.frame["total"]).all()
    assert (table.frame["total"] >= 1).all()
    assert not table.frame.duplicated(["study", "subgroup", "outcome"]).any()


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_list_datasets_citation_equals_metadata(name):
    listing = list_datasets().set_index("name")
    table = load_dataset(name)
    assert listing.loc[name, "citation"] == table.metadata["citation"]
    assert listing.loc[name, "title"] == table.metadata["title"]


@pytest.mark.parametrize("name", REAL_NAMES)
def test_real_datasets_are_not_flagged_synthetic(name):
    table = load_dataset(name)
    assert table.metadata["synthetic"] == "false"
    assert table.is_synthetic is False
    assert "SYNTHETIC" not in table.metadata["title"]


@pytest.mark.parametrize("name", ["nope", "SED_SYNTHETIC", "", "sed_synthetic.csv"])
def test_unknown_dataset_lists_the_names(name):
    with pytest.raises(DataError) as excinfo:
        load_dataset(name)
    message = str(excinfo.value)
    assert message.startswith(f"unknown dataset '{name}'")
    assert message.endswith("embedded datasets: " + ", ".join(EXPECTED_NAMES))


def test_loading_twice_gives_equal_independent_tables():
    first = load_dataset("rat_tumors")
    first.frame.loc[0, "events"] = 99
    second = load_dataset("rat_tumors")
    assert second.frame.loc[0, "events"] == 0


# ---------------------------------------------------------------------------
# sed_synthetic
# ---------------------------------------------------------------------------

def test_sed_synthetic_is_flagged_synthetic(sed):
    assert sed.metadata["synthetic"] == "true"
    assert sed.is_synthetic is True
    assert "SYNTHETIC" in sed.metadata["title"]
    assert "NOT the real" in sed.metadata["citation"]
    assert str(SEED) in sed.metadata["citation"]


def test_sed_synthetic_shape(sed):
    assert sed.has_subgroups is True
    assert len(sed.studies) == synthetic.N_STUDIES == 8
    assert sorted(sed.outcomes) == ["adverse_event", "clinical_success"]
    assert set(sed.subgroups) == {"type_iii", "des", "jackhammer", "unassigned"}
    assert sed.covariates == ["quality", "year"]


@pytest.mark.parametrize("outcome", ["clinical_success", "adverse_event"])
def test_sed_synthetic_totals_match_published_aggregates(sed, outcome):
    frame = sed.for_outcome(outcome).frame
    assert frame["total"].sum() == 179
    assert frame["study"].nunique() == 8
    by_subgroup = frame.groupby("subgroup")["total"].sum().to_dict()
    assert by_subgroup == {"type_iii": 116, "des": 18, "jackhammer": 37, "unassigned": 8}


def test_sed_synthetic_outcomes_share_the_same_cells(sed):
    cells = {
        outcome: sed.for_outcome(outcome).frame.set_index(["study", "subgroup"])["total"]
        .sort_index()
        for outcome in sed.outcomes
    }
    pd.testing.assert_series_equal(cells["clinical_success"], cells["adverse_event"])


def test_sed_synthetic_number_of_studies_per_disorder(sed):
    frame = sed.for_outcome("clinical_success").frame
    assert frame.groupby("subgroup")["study"].nunique().to_dict() == synthetic.DISORDER_STUDIES


def test_sed_synthetic_quality_two_good_six_fair(sed):
    quality = sed.frame.groupby("study")["quality"].unique()
    assert all(len(values) == 1 for values in quality), "quality must be constant per study"
    counts = quality.map(lambda v: v[0]).value_counts().to_dict()
    assert counts == {"good": 2, "fair": 6}


def test_sed_synthetic_years_constant_per_study_and_plausible(sed):
    years = sed.frame.groupby("study")["year"].nunique()
    assert (years == 1).all()
    assert sed.frame["year"].astype(int).between(2012, 2016).all()


def test_sed_synthetic_some_study_has_several_subgroups(sed):
    per_study = sed.for_outcome("clinical_success").frame.groupby("study")["subgroup"].nunique()
    assert per_study.max() > 1


def test_sed_synthetic_every_study_has_at_least_five_patients(sed):
    sizes = sed.for_outcome("clinical_success").frame.groupby("study")["total"].sum()
    assert sizes.min() >= synthetic.MIN_STUDY_SIZE


@pytest.mark.parametrize("outcome", ["clinical_success", "adverse_event"])
@pytest.mark.parametrize("disorder", NAMED_DISORDERS)
def test_sed_synthetic_crude_rate_per_disorder(sed, outcome, disorder):
    # "unassigned" (8 patients) is deliberately not held to the tolerance by the simulation.
    frame = sed.for_outcome(outcome).frame
    cell = frame[frame["subgroup"] == disorder]
    crude = cell["events"].sum() / cell["total"].sum()
    target = synthetic.PUBLISHED_RATES[outcome][disorder]
    assert abs(crude - target) <= synthetic.TOLERANCES["disorder"], (crude, target)


@pytest.mark.parametrize("outcome", ["clinical_success", "adverse_event"])
def test_sed_synthetic_crude_rate_overall(sed, outcome):
    frame = sed.for_outcome(outcome).frame
    crude = frame["events"].sum() / frame["total"].sum()
    target = synthetic.PUBLISHED_RATES[outcome]["overall"]
    assert abs(crude - target) <= synthetic.TOLERANCES["overall"], (crude, target)


def test_shipped_csv_equals_fresh_simulation():
    shipped = shipped_csv("sed_synthetic.csv")
    pd.testing.assert_frame_equal(shipped, simulate_sed(SEED))


def test_loaded_dataset_equals_fresh_simulation(sed):
    fresh = simulate_sed(SEED)
    frame = sed.frame.copy()
    frame["year"] = frame["year"].astype("int64")
    pd.testing.assert_frame_equal(frame, fresh)


def test_simulation_is_deterministic_and_seed_dependent():
    pd.testing.assert_frame_equal(simulate_sed(SEED), simulate_sed(SEED))
    other = simulate_sed(SEED + 1)
    assert not other.equals(simulate_sed(SEED))
    # Any seed keeps the published totals.
    cs = other[other["outcome"] == "clinical_success"]
    assert cs.groupby("subgroup")["total"].sum().to_dict() == synthetic.DISORDER_TOTALS


# ---------------------------------------------------------------------------
# Real datasets
# ---------------------------------------------------------------------------

def test_rat_tumors():
    table = load_dataset("rat_tumors")
    assert len(table.frame) == 71
    assert table.has_subgroups is False
    assert table.subgroups == ["all"]
    assert table.outcomes == ["tumor"]
    assert table.studies == [str(i) for i in range(1, 72)]
    # BDA3 section 5.3: 267 tumours in 1739 rats; the current experiment is 4/14.
    assert table.frame["events"].sum() == 267
    assert table.frame["total"].sum() == 1739
    assert table.frame.iloc[-1][["events", "total"]].tolist() == [4, 14]


def test_rat_tumors_matches_shipped_file():
    raw = shipped_csv("rat_tumors.csv")
    frame = load_dataset("rat_tumors").frame
    assert frame["events"].tolist() == raw["tumors"].tolist()
    assert frame["total"].tolist() == raw["rats"].tolist()


def test_nielweise2007():
    table = load_dataset("nielweise2007")
    assert len(table.frame) == 36
    assert len(table.studies) == 18
    assert table.subgroups == ["treated", "control"]
    assert table.outcomes == ["catheter_infection"]
    assert table.frame.groupby("subgroup")["study"].nunique().to_dict() == {
        "treated": 18, "control": 18}


@pytest.mark.parametrize("arm", ["treated", "control"])
def test_nielweise2007_arms_come_from_the_right_columns(arm):
    raw = shipped_csv("nielweise2007.csv", dtype=str)
    frame = load_dataset("nielweise2007").frame
    long = frame[frame["subgroup"] == arm].set_index("study")
    for _, row in raw.iterrows():
        assert long.loc[row["study"], "events"] == int(row[f"{arm}_events"])
        assert long.loc[row["study"], "total"] == int(row[f"{arm}_total"])


def test_nielweise2007_first_trial():
    frame = load_dataset("nielweise2007").frame.set_index(["study", "subgroup"])
    assert frame.loc[("1", "treated"), ["events", "total"]].tolist() == [0, 116]
    assert frame.loc[("1", "control"), ["events", "total"]].tolist() == [3, 117]


def test_poem_anterior_posterior_rcts():
    raw = shipped_csv("poem_anterior_posterior_rcts.csv", dtype=str, keep_default_na=False)
    table = load_dataset("poem_anterior_posterior_rcts")
    assert len(table.frame) == 2 * len(raw)
    assert table.subgroups == ["anterior", "posterior"]
    assert set(table.outcomes) == set(raw["outcome"])
    assert set(table.studies) == set(raw["trial"])
    assert {"citation", "followup", "status"} <= set(table.covariates)
    frame = table.frame.set_index(["study", "subgroup", "outcome"])
    for _, row in raw.iterrows():
        for arm in ("anterior", "posterior"):
            cell = frame.loc[(row["trial"], arm, row["outcome"])]
            assert cell["events"] == int(row[f"{arm}_events"])
            assert cell["total"] == int(row[f"{arm}_total"])


def test_poem_anterior_posterior_khashab_adverse_events():
    frame = load_dataset("poem_anterior_posterior_rcts").frame
    frame = frame.set_index(["study", "subgroup", "outcome"])
    assert frame.loc[("Khashab2020", "anterior", "adverse_event"),
                     ["events", "total"]].tolist() == [8, 73]
    assert frame.loc[("Khashab2020", "posterior", "adverse_event"),
                     ["events", "total"]].tolist() == [7, 77]


def test_sed_published_studies_matches_shipped_file():
    raw = shipped_csv("sed_published_studies.csv", dtype=str, keep_default_na=False)
    table = load_dataset("sed_published_studies")
    assert len(table.frame) == len(raw)
    assert table.frame["events"].tolist() == [int(v) for v in raw["events"]]
    assert table.frame["total"].tolist() == [int(v) for v in raw["total"]]
    assert table.covariates == ["procedure", "mark"]
