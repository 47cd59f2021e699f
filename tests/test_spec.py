"""Tier 1: the frozen model spec, its variants and its density buffer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bayes_poem import ModelSpec, Prior, SpecError, load_dataset
from bayes_poem.backends import compiled, density
from bayes_poem.dims import STUDY, SUBGROUP


def test_spec_is_frozen(sed_spec):
    with pytest.raises(dataclasses.FrozenInstanceError):
        sed_spec.outcome = "adverse_event"  # type: ignore[misc]


def test_with_priors_returns_new_spec_and_keeps_original(sed_spec):
    changed = sed_spec.with_priors(tau=Prior("HalfNormal", {"sigma": 0.5}))
    assert changed.priors["tau"].params["sigma"] == 0.5
    assert sed_spec.priors["tau"].params["sigma"] == 1.0
    assert changed.priors["mu"] == sed_spec.priors["mu"]


def test_with_priors_rejects_unknown_name(sed_spec):
    with pytest.raises(SpecError, match="valid names: mu, tau, sigma_subgroup, alpha, phi"):
        sed_spec.with_priors(tau2=Prior("HalfNormal", {"sigma": 1}))


def test_without_study_drops_its_rows(sed_spec):
    smaller = sed_spec.without_study("SYN-03")
    assert "SYN-03" not in smaller.studies
    assert len(smaller.studies) == len(sed_spec.studies) - 1
    assert "SYN-03" in sed_spec.studies


def test_default_structure_follows_number_of_subgroups(sed_table):
    assert ModelSpec.from_table(sed_table, "clinical_success").subgroup_effects == "random"
    rats = ModelSpec.from_table(load_dataset("rat_tumors"))
    assert rats.subgroup_effects == "none"
    arms = ModelSpec.from_table(load_dataset("nielweise2007"))
    assert arms.subgroup_effects == "fixed"


def test_subgroup_effects_need_two_subgroups():
    with pytest.raises(SpecError, match="needs at least 2 subgroups"):
        ModelSpec.from_table(load_dataset("rat_tumors"), subgroup_effects="random")


def test_several_outcomes_need_a_name(sed_table):
    with pytest.raises(SpecError, match="name one with outcome="):
        ModelSpec.from_table(sed_table)


@pytest.mark.parametrize("option", [{"subgroup_effects": "mixed"}, {"study_effects": "fixed"}])
def test_unknown_model_options_are_rejected(sed_table, option):
    with pytest.raises(SpecError, match="is not one of"):
        ModelSpec.from_table(sed_table, "clinical_success", **option)


def test_coords_come_from_labels(sed_spec):
    coords = sed_spec.coords
    assert coords[STUDY] == [f"SYN-0{i}" for i in range(1, 9)]
    assert coords[SUBGROUP] == ["type_iii", "des", "jackhammer", "unassigned"]


def test_buffer_header_encodes_structure_and_priors(sed_spec):
    spec = sed_spec.with_priors(tau=Prior("HalfCauchy", {"beta": 0.3}))
    buffer = compiled.density_buffer(spec)
    assert not buffer.flags.writeable
    assert buffer[density.H_LENGTH] == buffer.size
    assert buffer[density.H_STUDY_MODE] == density.STUDY_RANDOM
    assert buffer[density.H_SUBGROUP_MODE] == density.SUBGROUP_RANDOM
    assert buffer[density.H_TAU_FAMILY] == density.SCALE_CODES["HalfCauchy"]
    assert buffer[density.H_TAU_P] == 0.3
    n_dim = 1 + 1 + len(spec.studies) + 1 + len(spec.subgroups)
    assert buffer[density.H_NDIM] == n_dim


def test_buffer_packs_prior_parameters_in_the_registrys_order(sed_spec):
    """The kernel reads StudentT's slots as (nu, mu, sigma) whatever order the Prior
    was written in: a Prior placed without resolve_priors keeps its own dict order."""
    shuffled = Prior("StudentT", {"sigma": 2.0, "mu": 0.5, "nu": 4.0})
    assert list(shuffled.params) == ["sigma", "mu", "nu"]
    spec = dataclasses.replace(sed_spec, priors={**sed_spec.priors, "mu": shuffled})
    buffer = compiled.density_buffer(spec)
    assert buffer[density.H_MU_FAMILY] == density.LOCATION_CODES["StudentT"]
    assert list(buffer[density.H_MU_P:density.H_MU_P + 3]) == [4.0, 0.5, 2.0]
    resolved = sed_spec.with_priors(mu=shuffled)
    assert compiled.density_buffer(resolved).tobytes() == buffer.tobytes()


def test_hyperparameters_are_named_data(sed_spec):
    hyper = sed_spec.hyperparameters()
    assert hyper["prior_tau_sigma"] == 1.0
    assert hyper["prior_mu_sigma"] == 1.5
    model = sed_spec.build()
    assert float(model["prior_tau_sigma"].get_value()) == 1.0


def test_arrays_index_studies_and_subgroups(sed_spec):
    arrays = sed_spec.arrays()
    frame = sed_spec.table.frame
    studies = np.array(sed_spec.studies)[arrays["study_idx"]]
    assert (studies == frame["study"].to_numpy()).all()
    subgroups = np.array(sed_spec.subgroups)[arrays["subgroup_idx"]]
    assert (subgroups == frame["subgroup"].to_numpy()).all()
