"""bayes_poem: Bayesian hierarchical meta-analysis of endoscopic procedure outcomes.

The public names are imported on first use (PEP 562: the module's ``__getattr__``),
so ``import bayes_poem`` and the ``bayes-poem`` command's start-up load no numerical
library (numpy, pandas, ArviZ, PyMC, numba); ``bayes_poem.fit`` or
``from bayes_poem import fit`` imports what it needs then. ``__all__`` lists every
public name; :data:`_EXPORTS` says which module defines each.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bayes_poem._version import __version__

# Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "BayesPoemError": "bayes_poem.errors",
    "ConvergenceWarning": "bayes_poem.errors",
    "DataError": "bayes_poem.errors",
    "OutputError": "bayes_poem.errors",
    "SamplingError": "bayes_poem.errors",
    "SpecError": "bayes_poem.errors",
    "DEFAULT_PRIORS": "bayes_poem.priors",
    "Prior": "bayes_poem.priors",
    "ModelSpec": "bayes_poem.spec",
    "StudyTable": "bayes_poem.table",
    "load_table": "bayes_poem.table",
    "wide_to_long": "bayes_poem.table",
    "list_datasets": "bayes_poem.datasets",
    "load_dataset": "bayes_poem.datasets",
    "load_spec": "bayes_poem.specfile",
    "SamplerSettings": "bayes_poem.sampling",
    "fit": "bayes_poem.sampling",
    "FitResult": "bayes_poem.results",
    "load_results": "bayes_poem.results_dir",
    "IntervalSpec": "bayes_poem.intervals",
    "Contrast": "bayes_poem.contrasts",
}

__all__ = [  # = sorted(_EXPORTS) + __version__ (tests/test_public_api.py)
    "BayesPoemError",
    "Contrast",
    "ConvergenceWarning",
    "DEFAULT_PRIORS",
    "DataError",
    "FitResult",
    "IntervalSpec",
    "ModelSpec",
    "OutputError",
    "Prior",
    "SamplerSettings",
    "SamplingError",
    "SpecError",
    "StudyTable",
    "__version__",
    "fit",
    "list_datasets",
    "load_dataset",
    "load_results",
    "load_spec",
    "load_table",
    "wide_to_long",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use and keep the name here."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and editors; never run
    from bayes_poem.contrasts import Contrast
    from bayes_poem.datasets import list_datasets, load_dataset
    from bayes_poem.errors import (
        BayesPoemError,
        ConvergenceWarning,
        DataError,
        OutputError,
        SamplingError,
        SpecError,
    )
    from bayes_poem.intervals import IntervalSpec
    from bayes_poem.priors import DEFAULT_PRIORS, Prior
    from bayes_poem.results import FitResult
    from bayes_poem.results_dir import load_results
    from bayes_poem.sampling import SamplerSettings, fit
    from bayes_poem.spec import ModelSpec
    from bayes_poem.specfile import load_spec
    from bayes_poem.table import StudyTable, load_table, wide_to_long
