"""bayes_poem: Bayesian hierarchical meta-analysis of endoscopic procedure outcomes."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bayes-poem")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

from bayes_poem.datasets import list_datasets, load_dataset  # noqa: E402
from bayes_poem.errors import (  # noqa: E402
    BayesPoemError,
    ConvergenceWarning,
    DataError,
    OutputError,
    SamplingError,
    SpecError,
)
from bayes_poem.priors import DEFAULT_PRIORS, Prior  # noqa: E402
from bayes_poem.spec import ModelSpec  # noqa: E402
from bayes_poem.table import StudyTable, load_table, wide_to_long  # noqa: E402

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
