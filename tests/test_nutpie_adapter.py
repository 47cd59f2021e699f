"""Tier 1: the contract between bayes_poem's kernels and nutpie's non-exported model class.

``bayes_poem.backends.nutpie_adapter`` fills fields of
``nutpie.compile_pymc.CompiledPyMCModel`` by name; a nutpie release that renames
or adds a required field must fail here, not in the middle of a fit. No test
samples: nutpie exposes no log-density evaluation of its own, so the kernel is
called through ctypes at the two addresses nutpie hands its sampler, and
nutpie's internal model is built (``_make_model``) without drawing.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from nutpie.compile_pymc import CompiledPyMCModel

from bayes_poem.backends import compiled, density, nutpie_adapter
from bayes_poem.backends.compiled import compiled_model

PACKAGE = Path(nutpie_adapter.__file__).resolve().parents[1]
FILLED = {"dims", "_n_dim", "_coords", "_shapes", "compiled_logp_func", "compiled_expand_func",
          "initial_point_func", "shared_data", "user_data", "n_expanded", "shape_info",
          "logp_func", "expand_func"}


def test_compiled_pymc_model_has_the_fields_the_adapter_fills():
    fields = {f.name: f for f in dataclasses.fields(CompiledPyMCModel)}
    assert FILLED <= set(fields), sorted(FILLED - set(fields))
    required = {name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    assert required <= FILLED, f"nutpie requires fields the adapter leaves out: " \
                               f"{sorted(required - FILLED)}"
    assert dataclasses.is_dataclass(CompiledPyMCModel)
    assert CompiledPyMCModel.__dataclass_params__.frozen


@pytest.fixture(scope="module")
def core_model(request):
    spec = request.getfixturevalue("sed_spec")
    return spec, compiled_model(spec, seed=5)


def test_adapter_model_is_built_by_nutpie_without_sampling(core_model):
    spec, model = core_model
    assert model.n_dim == sum(int(np.prod(s)) for _, s in compiled.unconstrained_layout(spec))
    assert model.n_expanded == sum(int(np.prod(s)) for _, s, _ in compiled.expanded_layout(spec))
    assert list(model.coords[nutpie_adapter.UNCONSTRAINED])[:3] == ["mu", "tau_log__", "w_0"]
    x0 = model.initial_point_func(0)
    assert x0.shape == (model.n_dim,)
    np.testing.assert_array_equal(x0, model.initial_point_func(0))  # seeded
    assert not np.array_equal(x0, model.initial_point_func(1))
    # nutpie's own construction of its sampler-side model: variables, dims, coords,
    # the C function pointers and the user-data pointer.
    assert model._make_model(x0) is not None


def test_kernel_through_the_pointers_nutpie_is_given(core_model):
    spec, model = core_model
    buffer = compiled.density_buffer(spec)
    np.testing.assert_array_equal(model.user_data, buffer)
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.normal(scale=0.5, size=model.n_dim)
        value, grad, status = nutpie_adapter.evaluate(model, x)
        expected_grad = np.zeros(model.n_dim)
        expected = density.logp_grad(x, np.asarray(buffer), expected_grad)
        assert status == 0
        assert value == expected
        np.testing.assert_array_equal(grad, expected_grad)
    # the buffer's header guards the dimension nutpie passes
    assert nutpie_adapter.evaluate(model, np.zeros(model.n_dim + 1))[2] == -1


def test_expand_writes_the_layout_in_order(core_model):
    spec, model = core_model
    x = np.random.default_rng(2).normal(size=model.n_dim)
    values, status = nutpie_adapter.expand(model, x)
    assert status == 0
    assert list(values) == [name for name, _, _ in compiled.expanded_layout(spec)]
    assert values["mu"] == x[0]
    assert values["tau"] == pytest.approx(np.exp(x[1]))
    n_s = len(spec.studies)
    np.testing.assert_allclose(values["u"], np.exp(x[1]) * x[2:2 + n_s])
    assert model.dims["w"] == ("study",)


def test_flat_names():
    assert nutpie_adapter.flat_names([("a", ()), ("b_log__", ()), ("w", (3,))]) == [
        "a", "b_log__", "w_0", "w_1", "w_2"]


def _touches_compile_pymc(source: str) -> bool:
    """Whether Python source imports nutpie.compile_pymc or names CompiledPyMCModel."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module == "nutpie.compile_pymc" or module.startswith("nutpie.compile_pymc."):
                return True
            if module == "nutpie" and any(a.name == "compile_pymc" for a in node.names):
                return True
            if any(a.name == "CompiledPyMCModel" for a in node.names):
                return True
        elif isinstance(node, ast.Import):
            if any(a.name.startswith("nutpie.compile_pymc") for a in node.names):
                return True
        elif isinstance(node, ast.Attribute):
            if node.attr in ("compile_pymc", "CompiledPyMCModel"):
                return True
        elif isinstance(node, ast.Name) and node.id == "CompiledPyMCModel":
            return True
        elif isinstance(node, ast.Constant) and node.value == "nutpie.compile_pymc":
            return True  # importlib.import_module("nutpie.compile_pymc")
    return False


@pytest.mark.parametrize(("source", "touches"), [
    ("from nutpie.compile_pymc import CompiledPyMCModel", True),
    ("import nutpie.compile_pymc", True),
    ("from nutpie import compile_pymc", True),
    ("import nutpie\nnutpie.compile_pymc.CompiledPyMCModel(**kw)", True),
    ("import importlib\nimportlib.import_module('nutpie.compile_pymc')", True),
    ("import nutpie\nnutpie.compile_pymc_model(model)", False),  # the public function
    ("import nutpie\nnutpie.sample(model)", False),
])
def test_the_import_check_can_fail(source, touches):
    assert _touches_compile_pymc(source) is touches


def test_only_the_adapter_touches_nutpie_compile_pymc():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.resolve() == Path(nutpie_adapter.__file__).resolve():
            continue
        if _touches_compile_pymc(path.read_text(encoding="utf-8")):
            offenders.append(str(path.relative_to(PACKAGE.parent)))
    assert not offenders, offenders
    adapter = Path(nutpie_adapter.__file__).read_text(encoding="utf-8")
    assert _touches_compile_pymc(adapter)
