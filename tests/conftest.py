"""Shared fixtures. Tier-2 tests sample with few draws and fixed seeds."""

from __future__ import annotations

import warnings

import pytest

from bayes_poem import ModelSpec, load_dataset
from bayes_poem.sampling import SamplerSettings

SED_ORDER = ["type_iii", "des", "jackhammer", "unassigned"]


def pytest_configure(config):
    warnings.filterwarnings("ignore", message="ArviZ is undergoing", category=FutureWarning)


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
