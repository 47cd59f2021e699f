"""bayes_poem: Bayesian hierarchical meta-analysis of endoscopic procedure outcomes."""

from __future__ import annotations

from bayes_poem._version import __version__
from bayes_poem.datasets import list_datasets, load_dataset
from bayes_poem.errors import (
    BayesPoemError,
    ConvergenceWarning,
    DataError,
    OutputError,
    SamplingError,
    SpecError,
)
from bayes_poem.priors import DEFAULT_PRIORS, Prior
from bayes_poem.spec import ModelSpec
from bayes_poem.table import StudyTable, load_table, wide_to_long

__all__ = [
    "DEFAULT_PRIORS",
    "BayesPoemError",
    "ConvergenceWarning",
    "DataError",
    "ModelSpec",
    "OutputError",
    "Prior",
    "SamplingError",
    "SpecError",
    "StudyTable",
    "__version__",
    "list_datasets",
    "load_dataset",
    "load_table",
    "wide_to_long",
]
