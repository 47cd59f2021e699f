"""Embedded datasets, each with its provenance.

``load_dataset(name)`` returns a validated :class:`~bayes_poem.table.StudyTable`
whose ``metadata`` holds the title, citation and whether the data are synthetic.
The CSV files of published data are shipped exactly as published (wide form) and
reshaped to the canonical long table here. See ``docs/datasets.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import pandas as pd

from bayes_poem.errors import DataError
from bayes_poem.table import StudyTable, load_table, wide_to_long


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    citation: str
    synthetic: bool
    reshape: Callable[[pd.DataFrame], pd.DataFrame]
    filename: str
    note: str = ""


def _identity(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


def _rat_tumors(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.rename(columns={"experiment": "study"})
    return wide_to_long(frame, {"tumor": "tumors"}, total="rats")


def _two_arm(arms: tuple[str, str], id_column: str, outcome: str | None):
    def reshape(frame: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for arm in arms:
            part = frame.rename(columns={id_column: "study"}).copy()
            part["subgroup"] = arm
            if outcome is not None:
                part["outcome"] = outcome
            part["events"] = frame[f"{arm}_events"]
            part["total"] = frame[f"{arm}_total"]
            drop = [f"{a}_{kind}" for a in arms for kind in ("events", "total")]
            parts.append(part.drop(columns=drop))
        return pd.concat(parts, ignore_index=True)

    return reshape


def _debruin2009(frame: pd.DataFrame) -> pd.DataFrame:
    """metadat's ``dat.debruin2009`` (one row per trial) -> the long table.

    ``author`` -> ``study``, ``xi`` -> ``events``, ``ni`` -> ``total``, one outcome
    ``undetectable_viral_load``, no subgroup; ``mi`` (= ``ni - xi``) is checked and
    dropped; ``year``, ``scq``, ``ethnicity``, ``patients``, ``select``, ``sens`` are
    kept as covariates (text, as every CSV cell).
    """
    bad = [i for i, (x, n, m) in enumerate(zip(frame["xi"], frame["ni"], frame["mi"],
                                                 strict=True), start=1)
           if int(n) - int(x) != int(m)]
    if bad:
        raise DataError(f"debruin2009.csv: row {bad[0]}: mi is not ni - xi")
    long = frame.rename(columns={"author": "study", "xi": "events", "ni": "total"})
    long.insert(1, "outcome", "undetectable_viral_load")
    columns = ["study", "outcome", "events", "total", "year", "scq", "ethnicity",
               "patients", "select", "sens"]
    return long[columns]


_DATASETS = {
    info.name: info
    for info in [
        DatasetInfo(
            name="sed_synthetic",
            title="SYNTHETIC study-level data for POEM in spastic esophageal disorders",
            citation=(
                "Simulated by bayes_poem (bayes_poem/datasets/synthetic.py, seed 20170101) to "
                "match the published aggregates of Khan MA et al., Dig Dis Sci "
                "2017;62:35-44, doi:10.1007/s10620-016-4373-1. NOT the real per-study counts."
            ),
            synthetic=True,
            reshape=_identity,
            filename="sed_synthetic.csv",
            note="8 studies, 179 patients (116 type III, 18 DES, 37 JH, 8 unassigned)",
        ),
        DatasetInfo(
            name="sed_published_studies",
            title="POEM in SED: small real figures from two studies (counts derived)",
            citation=(
                "Khashab MA et al., Gastrointest Endosc 2015;81:1170-7; "
                "Kumbhari V et al., Endosc Int Open 2015;3:E195-201"
            ),
            synthetic=False,
            reshape=_identity,
            filename="sed_published_studies.csv",
            note="counts derived from verified percentages; may be off by one",
        ),
        DatasetInfo(
            name="rat_tumors",
            title="Rat tumour experiments (70 historical control groups and the current one)",
            citation=("Gelman A et al., Bayesian Data Analysis, 3rd ed. (BDA3), section 5.3; "
                      "Tarone RE, Biometrics 1982;38:215-20"),
            synthetic=False,
            reshape=_rat_tumors,
            filename="rat_tumors.csv",
        ),
        DatasetInfo(
            name="nielweise2007",
            title="Catheter-related bloodstream infections, 18 trials (subgroup = arm)",
            citation=("Niel-Weise BS, Stijnen T, van den Broek PJ, J Antimicrob Chemother "
                      "2007;60:1244-50; results in Stijnen T, Hamza TH, Ozdemir P, Stat Med "
                      "2010;29:3046-67"),
            synthetic=False,
            reshape=_two_arm(("treated", "control"), "study", "catheter_infection"),
            filename="nielweise2007.csv",
        ),
        DatasetInfo(
            name="poem_anterior_posterior_rcts",
            title="Anterior vs posterior myotomy: randomised trials (subgroup = arm)",
            citation=("Khashab MA et al., Gastrointest Endosc 2020;91:288-297; Endoscopy 2021 "
                      "(2-year follow-up); Tan Y et al., Gastrointest Endosc 2018;88:46-54"),
            synthetic=False,
            reshape=_two_arm(("anterior", "posterior"), "trial", None),
            filename="poem_anterior_posterior_rcts.csv",
        ),
        DatasetInfo(
            name="debruin2009",
            title=("Standard-care arms of 13 HIV adherence trials: undetectable viral load, "
                   "with study-level moderators"),
            citation=("de Bruin M et al., Health Psychol 2009;28:668-674, as distributed in "
                      "the metadat package (dat.debruin2009) that accompanies metafor"),
            synthetic=False,
            reshape=_debruin2009,
            filename="debruin2009.csv",
            note=("real published data; the meta-regression reference of "
                  "tests/test_frequentist_metareg.py (metafor 3.8-1)"),
        ),
    ]
}


def list_datasets() -> pd.DataFrame:
    """Names, titles, citations and the synthetic flag of every embedded dataset."""
    return pd.DataFrame(
        [{"name": i.name, "title": i.title, "synthetic": i.synthetic, "citation": i.citation}
         for i in _DATASETS.values()]
    )


def dataset_names() -> list[str]:
    return list(_DATASETS)


def load_dataset(name: str) -> StudyTable:
    """Load an embedded dataset as a validated long table."""
    if name not in _DATASETS:
        raise DataError(
            f"unknown dataset '{name}'; embedded datasets: {', '.join(_DATASETS)}"
        )
    info = _DATASETS[name]
    with resources.files(__name__).joinpath(info.filename).open("r") as handle:
        frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
    metadata = {
        "dataset": info.name,
        "title": info.title,
        "citation": info.citation,
        "synthetic": str(info.synthetic).lower(),
        "note": info.note,
    }
    return load_table(info.reshape(frame), source=f"dataset '{name}'", metadata=metadata)
