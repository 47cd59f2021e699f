"""Tier-1 tests of the prior-family registry (``bayes_poem.prior_families``).

Every family is defined once. These tests hold the registry to that: no other
package module spells a family name, every entry has every field, and for every
family the PyMC builder, the scipy log-density, the compiled kernel and the numpy
sampler describe the same distribution. Parameter values are generated from each
entry (positive parameters positive), so a new family is covered without editing
this file.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import string
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import bayes_poem
from bayes_poem import prior_families
from bayes_poem.backends import density
from bayes_poem.prior_families import LOCATION, REGISTRY, SCALE, Family
from bayes_poem.priors import PARAMETERS, Prior, validate_prior
from bayes_poem.trials import pymc_models

PACKAGE = Path(bayes_poem.__file__).parent
DOCS = PACKAGE.parent / "docs"
# The modules allowed to know families by name: the registry, the priors as named
# data (defaults, presets, sensitivity variants) and the compiled kernel.
REGISTRY_MODULES = {"prior_families.py", "priors.py", "backends/density.py"}
# PyMC variables that are model structure, not priors: the standard-normal latent
# variables of the non-centred parameterisations and likelihoods (module, call, variable).
STRUCTURAL = Counter({
    "backends/pymc_model.py: pm.Normal('w')": 2,
    "backends/pymc_model.py: pm.Normal('v')": 1,
    "backends/pymc_model.py: pm.Normal('z')": 1,
    "backends/pymc_model.py: pm.Normal('alpha_raw')": 1,
    "backends/joint_pymc.py: pm.Normal('w')": 1,
    "backends/joint_pymc.py: pm.Normal('z')": 1,
    "backends/joint_pymc.py: pm.Normal('alpha_raw')": 1,
    "trials/meta.py: pm.Normal('w')": 2,
    "trials/meta.py: pm.Normal('y_obs')": 1,
    "trials/continuous.py: pm.Normal('followup')": 1,
    "trials/continuous.py: pm.StudentT('followup')": 1,
})


# ---------------------------------------------------------------------- source scan
def _pymc_names() -> set[str]:
    """The PyMC distributions the registry's builders call (``pm.<Name>``)."""
    tree = ast.parse((PACKAGE / "prior_families.py").read_text())
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id == "pm"}


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, kinds) and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}


def family_mentions(source: str, module: str, families: set[str],
                    pymc_names: set[str]) -> Counter:
    """Family names in code: string constants (docstrings excluded) that are or contain a
    family name as a word, ``<x>.<PyMC distribution>`` attributes and ``getattr(pm, ...)``."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    word = re.compile(r"\b(" + "|".join(map(re.escape, sorted(families))) + r")\b")
    found: Counter = Counter()
    calls = {id(node.func): node for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docs):
            for name in word.findall(node.value):
                found[f"{module}: {name!r}"] += 1
        elif isinstance(node, ast.Attribute) and node.attr in pymc_names | families:
            call = calls.get(id(node))
            first = call.args[0] if call is not None and call.args else None
            var = first.value if isinstance(first, ast.Constant) else "?"
            found[f"{module}: pm.{node.attr}({var!r})"] += 1
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "getattr" and node.args
              and isinstance(node.args[0], ast.Name) and node.args[0].id == "pm"):
            found[f"{module}: getattr(pm, ...)"] += 1
    return found


def test_the_scanner_finds_family_names_in_code_not_in_docstrings():
    source = '''
"""A module mentioning HalfNormal and Normal in its docstring."""
import pymc as pm

DEFAULT = Prior("HalfNormal", {"sigma": 1.0})
LABEL = "tau HalfCauchy(0.5)"


def f(name, prior):
    """Normal prior."""
    # a comment about StudentT
    x = pm.HalfCauchy("tau", beta=1.0)
    return getattr(pm, prior.dist)(name)
'''
    found = family_mentions(source, "m.py", set(REGISTRY), _pymc_names())
    assert found == Counter({"m.py: 'HalfNormal'": 1, "m.py: 'HalfCauchy'": 1,
                             "m.py: pm.HalfCauchy('tau')": 1, "m.py: getattr(pm, ...)": 1})


def test_no_family_name_outside_the_registry_and_the_kernel():
    families, pymc_names = set(REGISTRY), _pymc_names()
    assert {"Normal", "LogNormal"} <= pymc_names  # LogNormalTau2's builder
    found: Counter = Counter()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module not in REGISTRY_MODULES:
            found += family_mentions(path.read_text(), module, families, pymc_names)
    unexpected = found - STRUCTURAL
    assert not unexpected, (
        "prior families spelled outside bayes_poem/prior_families.py (use the registry): "
        + ", ".join(f"{k} x{v}" for k, v in sorted(unexpected.items())))


# ---------------------------------------------------------------------- every field
def test_every_family_has_every_field():
    fields = {f.name for f in dataclasses.fields(Family)}
    assert set(REGISTRY) == {"Normal", "StudentT", "HalfNormal", "HalfCauchy",
                             "HalfStudentT", "Exponential", "LogNormalTau2"}
    for name, family in REGISTRY.items():
        assert family.name == name
        assert all(getattr(family, f) is not None for f in fields)
        assert family.kind in (LOCATION, SCALE)
        assert family.params and all(isinstance(p, str) for p in family.params)
        assert len(set(family.params)) == len(family.params)
        assert family.positive <= set(family.params)
        assert set(family.defaults) <= set(family.params)
        assert isinstance(family.code, int) and not isinstance(family.code, bool)
        for builder in (family.pymc, family.scipy, family.sample):
            assert callable(builder)
        placeholders = [f for _, f, _, _ in string.Formatter().parse(family.describe) if f]
        assert placeholders == list(family.params), name
        assert "\n" not in family.describe


@pytest.mark.parametrize("kind, slots, table", [
    (LOCATION, 3, density.LOCATION_CODES), (SCALE, 2, density.SCALE_CODES)])
def test_codes_are_the_kernels_and_parameters_fit_its_slots(kind, slots, table):
    names = prior_families.names(kind)
    assert table == {name: REGISTRY[name].code for name in names}
    # the kernel's branches are codes 0 .. n-1 (the last one is its fall-through)
    assert sorted(table.values()) == list(range(len(names)))
    assert all(len(REGISTRY[name].params) <= slots for name in names)


def test_trial_models_take_every_family_of_each_kind():
    assert pymc_models.LOCATION == prior_families.names(LOCATION)
    assert pymc_models.SCALE == prior_families.names(SCALE)
    assert "LogNormalTau2" in pymc_models.SCALE


def test_a_trial_meta_analysis_takes_a_lognormal_tau2_prior_for_tau():
    import pymc as pm

    from bayes_poem.trials.meta import normal_model

    params = {"mu": -1.69, "sigma": 1.68}
    model = normal_model(3, {"mu": {"dist": "Normal", "sigma": 1.0},
                             "tau": {"dist": "LogNormalTau2", **params}}).model
    tau = np.array([0.05, 0.3, 1.5])
    with model:
        value = np.array([pm.logp(model["tau"], t).eval() for t in tau])
    np.testing.assert_allclose(value, REGISTRY["LogNormalTau2"].logpdf(params, tau), rtol=1e-10)


def test_describe_is_the_familys_one_line_format():
    prior = validate_prior("tau", {"dist": "LogNormalTau2", "mu": -1.69, "sigma": 1.68})
    assert prior.describe() == "LogNormalTau2(mu=-1.69, sigma=1.68)"
    assert Prior("HalfStudentT", {"nu": 3, "sigma": 1}).describe() == (
        "HalfStudentT(nu=3, sigma=1)")


# ---------------------------------------------------------------------- one distribution
POSITIVE, REAL = (2.5, 0.7), (-0.4, 0.9)


def _params(family: Family, variant: int) -> dict[str, float]:
    """Valid parameters generated from the entry: two sets per family."""
    return {k: (POSITIVE if k in family.positive else REAL)[variant] for k in family.params}


CASES = [pytest.param(name, variant, id=f"{name}-{variant}")
         for name in REGISTRY for variant in (0, 1)]
LOCATION_POINTS = np.array([-3.0, -0.5, 0.0, 1.2, 4.0])
SCALE_POINTS = np.array([0.05, 0.4, 1.0, 2.5, 8.0])


def _kernel(family: Family, params, x: float) -> tuple[float, float]:
    """The compiled kernel's log-density on the natural scale and its derivative in the
    sampled coordinate (``x`` itself, or ``log x`` for scale families)."""
    slots = np.zeros(3)
    slots[:len(family.params)] = [params[k] for k in family.params]
    if family.kind == LOCATION:
        return density._location_logp(family.code, slots, x)
    y = np.log(x)
    lp, grad = density._scale_logp(family.code, slots, y)
    return lp - y, grad  # remove the Jacobian of x = exp(y): log|dx/dy| = y


@pytest.mark.parametrize("name, variant", CASES)
def test_builder_scipy_and_kernel_agree(name, variant):
    import pymc as pm

    family = REGISTRY[name]
    params = _params(family, variant)
    x = LOCATION_POINTS if family.kind == LOCATION else SCALE_POINTS
    with pm.Model():
        # float64 tensors, as the pm.Data of the models (a Python float may become float32)
        tensors = {k: pm.math.constant(np.float64(v)) for k, v in params.items()}
        rv = family.pymc(pm, "x", tensors, shape=x.shape)
        pymc_logp = pm.logp(rv, x).eval()
    scipy_logp = family.logpdf(params, x)
    kernel = np.array([_kernel(family, params, xi) for xi in x])
    # PyMC's HalfCauchy and HalfStudentT add pt.log(2) of an integer 2, computed in
    # float32: an offset of |float32(log 2) - log 2| = 1.9e-9, hence atol 5e-9 here.
    np.testing.assert_allclose(pymc_logp, scipy_logp, rtol=1e-10, atol=5e-9)
    np.testing.assert_allclose(kernel[:, 0], scipy_logp, rtol=1e-10, atol=1e-10)
    # the kernel's derivative against a central difference of its own value
    h = 1e-6
    coord = x if family.kind == LOCATION else np.log(x)
    to_x = (lambda c: c) if family.kind == LOCATION else np.exp
    jac = 0.0 if family.kind == LOCATION else 1.0  # d/dy of the Jacobian term y
    diff = [(_kernel(family, params, to_x(c + h))[0] - _kernel(family, params, to_x(c - h))[0])
            / (2 * h) + jac for c in coord]
    np.testing.assert_allclose(kernel[:, 1], diff, rtol=1e-5, atol=1e-6)


# KS test of 20000 draws against the scipy distribution. Under the null the p-value
# is uniform, so a correct sampler fails with probability 1e-4 (fixed seed: never
# flaky); the critical distance sqrt(log(2 / 1e-4) / (2 n)) = 0.016 is far below the
# 0.05-0.1 that a 25% error in a scale parameter gives (the power check below).
N_DRAWS, P_MIN = 20_000, 1e-4


def _ks_pvalue(family: Family, params, stretch: float = 1.0) -> float:
    draws = family.sample(np.random.default_rng(20150601), params, N_DRAWS)
    assert draws.shape == (N_DRAWS,)
    return stats.kstest(stretch * draws, family.scipy(params).cdf).pvalue


@pytest.mark.parametrize("name, variant", CASES)
def test_sampler_draws_from_the_scipy_distribution(name, variant):
    family = REGISTRY[name]
    assert _ks_pvalue(family, _params(family, variant)) > P_MIN


@pytest.mark.parametrize("name", list(REGISTRY))
def test_the_sampler_check_rejects_a_wrong_scale(name):
    family = REGISTRY[name]
    assert _ks_pvalue(family, _params(family, 0), stretch=1.25) < P_MIN


def test_sampler_size_may_be_a_shape():
    for family in REGISTRY.values():
        params = _params(family, 0)
        assert family.sample(np.random.default_rng(1), params, (3, 4)).shape == (3, 4)


# ---------------------------------------------------------------------- docs
def _docs_table(heading: str) -> list[list[str]]:
    text = (DOCS / "priors.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def test_docs_table_lists_exactly_the_registry():
    rows = _docs_table("Prior families")
    documented = {re.findall(r"`(\w+)`", row[0])[0]: row for row in rows}
    assert list(documented) == list(REGISTRY)
    for name, row in documented.items():
        family = REGISTRY[name]
        assert row[1] == family.kind, name
        assert re.findall(r"`(\w+)`", row[2]) == list(family.params), name
        allowed = [p for p, (families, _) in PARAMETERS.items() if name in families]
        assert list(dict.fromkeys(re.findall(r"`(\w+)`", row[4]))) == allowed, name


def test_docs_state_the_moderator_prior_and_its_rationale():
    text = (DOCS / "priors.md").read_text()
    assert "### `beta ~ Normal(0, 1)` (moderators)" in text
    assert Prior("Normal", {"mu": 0.0, "sigma": 1.0}) == bayes_poem.DEFAULT_PRIORS["beta"]
