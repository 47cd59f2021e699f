"""Embedded datasets, each with its provenance.

``load_dataset(name)`` returns a validated :class:`~bayes_poem.table.StudyTable`
whose ``metadata`` holds the title, citation and whether the data are synthetic.
The CSV files of published data are shipped exactly as published (wide form) and
reshaped to the canonical long table by :mod:`bayes_poem.datasets.reshape`. See
``docs/datasets.md``.

The registry (names, titles, citations, the synthetic flag: :func:`catalog`,
:func:`dataset_names`) imports no numerical library, so ``bayes-poem datasets``
starts at once; pandas is imported by :func:`list_datasets` and
:func:`load_dataset` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from bayes_poem.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from bayes_poem.table import StudyTable


@dataclass(frozen=True)
class DatasetInfo:
    """One embedded dataset: its provenance and shipped file (reshaped by
    :mod:`bayes_poem.datasets.reshape` under the same ``name``)."""

    name: str
    title: str
    citation: str
    synthetic: bool
    filename: str
    note: str = ""
    description: str = ""  # what synthetic data are: the SYNTHETIC banner (bayes_poem.banner)


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
            filename="sed_synthetic.csv",
            note="8 studies, 179 patients (116 type III, 18 DES, 37 JH, 8 unassigned)",
            description=("the study-level counts were simulated to match published aggregates "
                         "(Khan et al. 2017)"),
        ),
        DatasetInfo(
            name="sed_published_studies",
            title="POEM in SED: small real figures from two studies (counts derived)",
            citation=(
                "Khashab MA et al., Gastrointest Endosc 2015;81:1170-7; "
                "Kumbhari V et al., Endosc Int Open 2015;3:E195-201"
            ),
            synthetic=False,
            filename="sed_published_studies.csv",
            note="counts derived from verified percentages; may be off by one",
        ),
        DatasetInfo(
            name="rat_tumors",
            title="Rat tumour experiments (70 historical control groups and the current one)",
            citation=("Gelman A et al., Bayesian Data Analysis, 3rd ed. (BDA3), section 5.3; "
                      "Tarone RE, Biometrics 1982;38:215-20"),
            synthetic=False,
            filename="rat_tumors.csv",
        ),
        DatasetInfo(
            name="nielweise2007",
            title="Catheter-related bloodstream infections, 18 trials (subgroup = arm)",
            citation=("Niel-Weise BS, Stijnen T, van den Broek PJ, J Antimicrob Chemother "
                      "2007;60:1244-50; results in Stijnen T, Hamza TH, Ozdemir P, Stat Med "
                      "2010;29:3046-67"),
            synthetic=False,
            filename="nielweise2007.csv",
        ),
        DatasetInfo(
            name="poem_anterior_posterior_rcts",
            title="Anterior vs posterior myotomy: randomised trials (subgroup = arm)",
            citation=("Khashab MA et al., Gastrointest Endosc 2020;91:288-297; Endoscopy 2021 "
                      "(2-year follow-up); Tan Y et al., Gastrointest Endosc 2018;88:46-54"),
            synthetic=False,
            filename="poem_anterior_posterior_rcts.csv",
        ),
        DatasetInfo(
            name="debruin2009",
            title=("Standard-care arms of 13 HIV adherence trials: undetectable viral load, "
                   "with study-level moderators"),
            citation=("de Bruin M et al., Health Psychol 2009;28:668-674, as distributed in "
                      "the metadat package (dat.debruin2009) that accompanies metafor"),
            synthetic=False,
            filename="debruin2009.csv",
            note=("real published data; the meta-regression reference of "
                  "tests/test_frequentist_metareg.py (metafor 3.8-1)"),
        ),
    ]
}


def catalog() -> tuple[DatasetInfo, ...]:
    """Every embedded dataset's metadata, in the registry's order (no pandas)."""
    return tuple(_DATASETS.values())


def list_datasets() -> pd.DataFrame:
    """Names, titles, citations and the synthetic flag of every embedded dataset."""
    import pandas as pd

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
    import pandas as pd

    from bayes_poem.datasets.reshape import reshape
    from bayes_poem.table import load_table

    info = _DATASETS[name]
    with resources.files(__name__).joinpath(info.filename).open("r") as handle:
        frame = pd.read_csv(handle, dtype=str, keep_default_na=False)
    metadata = {
        "dataset": info.name,
        "title": info.title,
        "citation": info.citation,
        "synthetic": str(info.synthetic).lower(),
        "note": info.note,
        **({"description": info.description} if info.description else {}),
    }
    return load_table(reshape(name, frame), source=f"dataset '{name}'", metadata=metadata)
