"""Shared fixtures. Tier-2 tests sample with few draws and fixed seeds."""

from __future__ import annotations

import warnings

import pytest

from bayes_poem import ModelSpec, load_dataset
from bayes_poem.sampling import SamplerSettings
from tests.tiers import SAMPLING_MARKERS, pytest_collection_modifyitems  # noqa: F401

SED_ORDER = ["type_iii", "des", "jackhammer", "unassigned"]


_tier = {"unit": False}


def pytest_configure(config):
    warnings.filterwarnings("ignore", message="ArviZ is undergoing", category=FutureWarning)
    _guard_samplers()


def _guard_samplers() -> None:
    """The unit tier never samples: a test without ``mcmc``/``slow`` that reaches a
    sampler fails, so the tiers stay what the markers say (``make test-fast``)."""
    import nutpie
    import pymc

    def guarded(module, name):
        real = getattr(module, name)

        def sample(*args, **kwargs):
            if _tier["unit"]:
                raise AssertionError(f"a unit-tier test called {module.__name__}.{name}: "
                                     "mark it @pytest.mark.mcmc")
            return real(*args, **kwargs)

        setattr(module, name, sample)

    guarded(nutpie, "sample")
    guarded(pymc, "sample")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _tier["unit"] = not any(item.get_closest_marker(m) for m in SAMPLING_MARKERS)


def pytest_runtest_teardown(item):
    _tier["unit"] = False


@pytest.fixture(scope="session")
def sed_table():
    return load_dataset("sed_synthetic")


@pytest.fixture(scope="session")
def sed_spec(sed_table):
    return ModelSpec.from_table(sed_table, "clinical_success", subgroups=SED_ORDER)


@pytest.fixture(scope="session")
def quick():
    """Short but healthy sampler settings for behavioural tests."""
    return SamplerSettings(draws=300, tune=300, chains=2, seed=11)


@pytest.fixture(scope="session")
def sed_fit(sed_spec):
    return sed_spec.fit(SamplerSettings(draws=1000, tune=1000, chains=4, seed=5))
