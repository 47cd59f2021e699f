"""Tier-1 tests of prior validation and resolution (``bayes_poem.priors``)."""

from __future__ import annotations

import copy
import math

import pytest

from bayes_poem.errors import BayesPoemError, SpecError
from bayes_poem.priors import (
    DEFAULT_PRIORS,
    FAMILIES,
    PARAMETERS,
    RATIONALE,
    Prior,
    resolve_priors,
    validate_prior,
)

PARAMETER_NAMES = ["mu", "tau", "sigma_subgroup", "alpha", "phi", "beta", "tau_cell"]
SCALE_FAMILIES = ["HalfNormal", "HalfCauchy", "HalfStudentT", "Exponential", "LogNormalTau2"]
ALLOWED = {
    "mu": ["Normal", "StudentT"],
    "tau": SCALE_FAMILIES,
    "sigma_subgroup": SCALE_FAMILIES,
    "alpha": ["Normal"],
    "phi": SCALE_FAMILIES,
    "beta": ["Normal"],
    "tau_cell": SCALE_FAMILIES,
}
# A valid parameter set for every family (mu = 0 so that it also suits 'alpha').
VALID_PARAMS = {
    "Normal": {"mu": 0.0, "sigma": 2.0},
    "StudentT": {"nu": 3.0, "mu": 0.0, "sigma": 2.5},
    "HalfNormal": {"sigma": 0.5},
    "HalfCauchy": {"beta": 1.0},
    "HalfStudentT": {"nu": 4.0, "sigma": 1.0},
    "Exponential": {"lam": 2.0},
    "LogNormalTau2": {"mu": -1.69, "sigma": 1.68},
}
ALLOWED_CASES = [(name, dist) for name, dists in ALLOWED.items() for dist in dists]


def spec_error(name, prior, where="") -> str:
    with pytest.raises(SpecError) as excinfo:
        validate_prior(name, prior, where)
    return str(excinfo.value)


# ---------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------

def test_parameter_table_is_what_the_tests_assume():
    assert list(PARAMETERS) == PARAMETER_NAMES
    assert {name: list(PARAMETERS[name][0]) for name in PARAMETERS} == ALLOWED
    assert set(FAMILIES) == set(VALID_PARAMS)
    assert all(list(VALID_PARAMS[d]) == list(FAMILIES[d]) for d in FAMILIES)


def test_every_parameter_has_a_default_and_a_rationale():
    assert list(DEFAULT_PRIORS) == PARAMETER_NAMES
    assert set(RATIONALE) == set(PARAMETER_NAMES)
    assert all(len(text) > 40 for text in RATIONALE.values())


@pytest.mark.parametrize("name", PARAMETER_NAMES)
def test_defaults_are_valid(name):
    prior = DEFAULT_PRIORS[name]
    assert validate_prior(name, prior) == prior
    assert validate_prior(name, prior.to_dict()) == prior


def test_default_values():
    assert DEFAULT_PRIORS["mu"] == Prior("Normal", {"mu": 0.0, "sigma": 1.5})
    assert DEFAULT_PRIORS["tau"] == Prior("HalfNormal", {"sigma": 1.0})
    assert DEFAULT_PRIORS["sigma_subgroup"] == Prior("HalfNormal", {"sigma": 1.0})
    assert DEFAULT_PRIORS["alpha"] == Prior("Normal", {"mu": 0.0, "sigma": 1.5})
    assert DEFAULT_PRIORS["tau_cell"] == Prior("HalfNormal", {"sigma": 0.5})


def test_resolve_without_overrides_returns_the_defaults():
    assert resolve_priors() == DEFAULT_PRIORS
    assert resolve_priors({}) == DEFAULT_PRIORS
    assert resolve_priors() is not DEFAULT_PRIORS


# ---------------------------------------------------------------------------
# Prior object
# ---------------------------------------------------------------------------

def test_prior_params_become_floats():
    prior = Prior("HalfNormal", {"sigma": 1})
    assert prior.params == {"sigma": 1.0}
    assert isinstance(prior.params["sigma"], float)


def test_prior_describe_and_to_dict():
    prior = Prior("StudentT", {"nu": 3, "mu": 0, "sigma": 2.5})
    assert prior.describe() == "StudentT(nu=3, mu=0, sigma=2.5)"
    assert prior.to_dict() == {"dist": "StudentT", "nu": 3.0, "mu": 0.0, "sigma": 2.5}


def test_prior_is_frozen():
    prior = Prior("HalfNormal", {"sigma": 1.0})
    with pytest.raises(AttributeError):
        prior.dist = "HalfCauchy"


# ---------------------------------------------------------------------------
# Valid priors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "dist"), ALLOWED_CASES)
def test_every_allowed_family_validates(name, dist):
    params = VALID_PARAMS[dist]
    expected = Prior(dist, params)
    assert validate_prior(name, Prior(dist, params)) == expected
    assert validate_prior(name, {"dist": dist, **params}) == expected


@pytest.mark.parametrize(("name", "dist"), ALLOWED_CASES)
def test_integer_parameters_are_accepted(name, dist):
    params = {k: 0 if k == "mu" else max(1, round(v)) for k, v in VALID_PARAMS[dist].items()}
    assert all(type(v) is int for v in params.values())
    result = validate_prior(name, {"dist": dist, **params})
    assert result.params == {k: float(v) for k, v in params.items()}


@pytest.mark.parametrize("dist", ["Normal", "StudentT"])
def test_location_mu_defaults_to_zero(dist):
    params = {k: v for k, v in VALID_PARAMS[dist].items() if k != "mu"}
    result = validate_prior("mu", {"dist": dist, **params})
    assert result.params["mu"] == 0.0
    assert list(result.params) == list(FAMILIES[dist])


def test_parameters_are_returned_in_family_order():
    result = validate_prior("mu", {"sigma": 2, "nu": 5, "mu": 1, "dist": "StudentT"})
    assert list(result.params) == ["nu", "mu", "sigma"]


def test_location_prior_may_be_off_centre():
    assert validate_prior("mu", {"dist": "Normal", "mu": -1.5, "sigma": 1}).params["mu"] == -1.5


def test_input_mapping_is_not_modified():
    spec = {"dist": "HalfNormal", "sigma": 0.5}
    before = copy.deepcopy(spec)
    validate_prior("tau", spec)
    assert spec == before


# ---------------------------------------------------------------------------
# Invalid priors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["theta", "Tau", "", "sigma"])
def test_unknown_prior_name_lists_valid_names(name):
    message = spec_error(name, {"dist": "HalfNormal", "sigma": 1.0})
    assert message == (
        f"prior '{name}': unknown prior name '{name}'; "
        "valid names: mu, tau, sigma_subgroup, alpha, phi, beta, tau_cell"
    )


@pytest.mark.parametrize("name", PARAMETER_NAMES)
@pytest.mark.parametrize("dist", ["Gamma", "halfnormal", "Beta", ""])
def test_unknown_family_lists_allowed_families(name, dist):
    message = spec_error(name, {"dist": dist, "sigma": 1.0})
    assert message == (
        f"prior '{name}': dist '{dist}' is not allowed for '{name}'; "
        f"valid: {', '.join(ALLOWED[name])}"
    )


DISALLOWED_CASES = [(name, dist) for name in PARAMETER_NAMES for dist in VALID_PARAMS
                    if dist not in ALLOWED[name]]


@pytest.mark.parametrize(("name", "dist"), DISALLOWED_CASES)
def test_family_not_allowed_for_parameter(name, dist):
    message = spec_error(name, {"dist": dist, **VALID_PARAMS[dist]})
    assert f"dist '{dist}' is not allowed for '{name}'" in message
    assert message.endswith(f"valid: {', '.join(ALLOWED[name])}")


@pytest.mark.parametrize(("name", "dist", "bad"), [
    ("tau", "HalfNormal", "scale"),
    ("tau", "HalfCauchy", "sigma"),
    ("tau", "Exponential", "rate"),
    ("mu", "Normal", "loc"),
    ("mu", "StudentT", "df"),
    ("sigma_subgroup", "HalfStudentT", "mu"),
])
def test_unknown_parameter_lists_valid_parameters(name, dist, bad):
    params = dict(VALID_PARAMS[dist], **{bad: 1.0})
    message = spec_error(name, {"dist": dist, **params})
    assert message == (
        f"prior '{name}': unknown parameter(s) '{bad}' for {dist}; "
        f"valid: {', '.join(FAMILIES[dist])}"
    )


def test_unknown_parameter_in_prior_object():
    message = spec_error("tau", Prior("HalfNormal", {"scale": 1.0}))
    assert "unknown parameter(s) 'scale' for HalfNormal; valid: sigma" in message


@pytest.mark.parametrize(("name", "dist", "key"), [
    ("mu", "Normal", "sigma"),
    ("mu", "StudentT", "nu"),
    ("mu", "StudentT", "sigma"),
    ("tau", "HalfNormal", "sigma"),
    ("tau", "HalfCauchy", "beta"),
    ("tau", "HalfStudentT", "nu"),
    ("tau", "HalfStudentT", "sigma"),
    ("sigma_subgroup", "Exponential", "lam"),
    ("alpha", "Normal", "sigma"),
])
@pytest.mark.parametrize("value", [0, 0.0, -1, -0.5])
def test_non_positive_scale_is_rejected(name, dist, key, value):
    params = dict(VALID_PARAMS[dist], **{key: value})
    message = spec_error(name, {"dist": dist, **params})
    assert message == f"prior '{name}': parameter '{key}' must be > 0 (got {value:g})"


@pytest.mark.parametrize("value", ["1.0", "abc", None, [1.0], True, {"x": 1}])
def test_non_numeric_value_is_rejected(value):
    message = spec_error("tau", {"dist": "HalfNormal", "sigma": value})
    assert message == f"prior 'tau': parameter 'sigma' must be a number (got {value!r})"


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_value_is_rejected(value):
    message = spec_error("mu", {"dist": "Normal", "mu": value, "sigma": 1.0})
    assert message == f"prior 'mu': parameter 'mu' must be finite (got {value!r})"
    with pytest.raises(SpecError) as excinfo:  # the Prior form refuses it when built
        Prior("Normal", {"mu": value, "sigma": 1.0})
    assert str(excinfo.value) == f"Normal prior: parameter 'mu' must be finite (got {value!r})"


@pytest.mark.parametrize("spec", [{"sigma": 1.0}, {}, {"Dist": "HalfNormal", "sigma": 1.0}])
def test_missing_dist_is_rejected(spec):
    message = spec_error("tau", spec)
    assert message == ("prior 'tau': missing key 'dist'; "
                       "valid: HalfNormal, HalfCauchy, HalfStudentT, Exponential, LogNormalTau2")


def test_missing_dist_lists_allowed_families():
    message = spec_error("tau", {"sigma": 1.0})
    assert all(dist in message for dist in SCALE_FAMILIES)


@pytest.mark.parametrize("prior", ["HalfNormal", 1.0, None, ["HalfNormal", 1.0]])
def test_prior_that_is_not_a_table_is_rejected(prior):
    message = spec_error("tau", prior)
    assert message == "prior 'tau': expected a table with 'dist' and its parameters"


@pytest.mark.parametrize(("name", "dist", "missing"), [
    ("mu", "Normal", "sigma"),
    ("mu", "StudentT", "nu, sigma"),
    ("tau", "HalfNormal", "sigma"),
    ("tau", "HalfStudentT", "nu, sigma"),
    ("tau", "Exponential", "lam"),
])
def test_missing_required_parameter(name, dist, missing):
    message = spec_error(name, {"dist": dist})
    assert message == f"prior '{name}': {dist} needs parameter(s) {missing}"


@pytest.mark.parametrize("mu", [0.5, -1.0])
def test_alpha_requires_zero_mean(mu):
    message = spec_error("alpha", {"dist": "Normal", "mu": mu, "sigma": 1.5})
    assert "'mu' must be 0" in message


def test_where_prefix_is_used_in_messages():
    message = spec_error("tau", {"dist": "HalfNormal", "sigma": -1}, where="spec.toml [priors.tau]")
    assert message.startswith("spec.toml [priors.tau]: ")


def test_spec_error_is_a_package_and_value_error():
    assert issubclass(SpecError, BayesPoemError)
    assert issubclass(SpecError, ValueError)


# ---------------------------------------------------------------------------
# resolve_priors
# ---------------------------------------------------------------------------

def test_resolve_applies_an_override_and_keeps_other_defaults():
    resolved = resolve_priors({"tau": {"dist": "HalfCauchy", "beta": 0.5}})
    assert resolved["tau"] == Prior("HalfCauchy", {"beta": 0.5})
    for name in ("mu", "sigma_subgroup", "alpha"):
        assert resolved[name] == DEFAULT_PRIORS[name]
    assert list(resolved) == PARAMETER_NAMES


def test_resolve_applies_several_overrides_of_both_forms():
    resolved = resolve_priors({
        "mu": Prior("StudentT", {"nu": 3, "sigma": 2}),
        "sigma_subgroup": {"dist": "Exponential", "lam": 1},
    })
    assert resolved["mu"] == Prior("StudentT", {"nu": 3.0, "mu": 0.0, "sigma": 2.0})
    assert resolved["sigma_subgroup"] == Prior("Exponential", {"lam": 1.0})
    assert resolved["tau"] == DEFAULT_PRIORS["tau"]
    assert resolved["alpha"] == DEFAULT_PRIORS["alpha"]


def test_resolve_does_not_change_the_defaults():
    before = copy.deepcopy(DEFAULT_PRIORS)
    resolved = resolve_priors({"tau": {"dist": "HalfNormal", "sigma": 0.25}})
    assert resolved["tau"].params == {"sigma": 0.25}
    assert before == DEFAULT_PRIORS
    assert DEFAULT_PRIORS["tau"].params == {"sigma": 1.0}


def test_resolve_unknown_name_lists_valid_names():
    with pytest.raises(SpecError) as excinfo:
        resolve_priors({"tua": {"dist": "HalfNormal", "sigma": 1.0}})
    assert str(excinfo.value) == (
        "priors.tua: unknown prior name 'tua'; valid names: mu, tau, sigma_subgroup, alpha, "
        "phi, beta, tau_cell"
    )


@pytest.mark.parametrize(("override", "fragment"), [
    ({"tau": {"dist": "Normal", "sigma": 1.0}}, "valid: " + ", ".join(SCALE_FAMILIES)),
    ({"tau": {"dist": "HalfNormal", "sigma": 0}}, "'sigma' must be > 0"),
    ({"mu": {"dist": "Normal", "sigma": "wide"}}, "must be a number"),
])
def test_resolve_errors_name_the_override(override, fragment):
    (name,) = override
    with pytest.raises(SpecError) as excinfo:
        resolve_priors(override, where="spec.priors")
    message = str(excinfo.value)
    assert message.startswith(f"spec.priors.{name}: ")
    assert fragment in message
