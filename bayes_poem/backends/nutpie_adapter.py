"""A compiled log-density kernel as a nutpie model: the one adapter to nutpie's internals.

nutpie samples a model given as two C callbacks -- the log-density with its
gradient, and the expansion of an unconstrained point into the stored variables
-- plus an opaque ``user_data`` pointer handed to both. Its public API builds
such a model only by compiling a PyMC graph (seconds per process); the class it
builds, ``nutpie.compile_pymc.CompiledPyMCModel``, is not exported, and this
module is the only place in the package that imports it. The kernels
(:mod:`bayes_poem.backends.density`, :mod:`bayes_poem.backends.arm_density`,
:mod:`bayes_poem.backends.normal_density`) are numba C callbacks
(``numba.cfunc``) compiled once per installation; everything that varies
between fits travels in one ``float64`` buffer passed as ``user_data``.

The callbacks' C signatures (those nutpie's own PyMC compilation emits)::

    int64 logp(uint64 dim, double *x, double *grad, double *logp, void *user_data)
    int64 expand(uint64 dim, uint64 n_expanded, double *x, double *out, void *user_data)

(0 = success; any other value rejects the point). ``tests/test_nutpie_adapter.py``
pins the fields of ``CompiledPyMCModel`` this module fills, builds nutpie's
internal model from the result without sampling, and evaluates the kernel
through the very pointers nutpie is given (:func:`evaluate`).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

UNCONSTRAINED = "unconstrained_parameter"
"""nutpie's coordinate of the unconstrained vector (its gradient and mass-matrix stats)."""

Layout = Sequence[tuple[str, tuple[int, ...], tuple[str, ...]]]
"""Expanded variables in the kernel's output order: name, shape, dims."""

_LOGP = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.POINTER(ctypes.c_double),
                         ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double),
                         ctypes.c_void_p)
_EXPAND = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_uint64,
                           ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double),
                           ctypes.c_void_p)


def flat_names(layout: Sequence[tuple[str, tuple[int, ...]]]) -> list[str]:
    """Labels of the unconstrained vector: ``name`` for a scalar, ``name_k`` per element."""
    names: list[str] = []
    for name, shape in layout:
        size = int(np.prod(shape))
        names += [name] if shape == () else [f"{name}_{k}" for k in range(size)]
    return names


def nutpie_model(*, logp_cfunc: Any, expand_cfunc: Any, buffer: np.ndarray,
                 expanded: Layout, coords: Mapping[str, Sequence[Any]],
                 unconstrained: Sequence[tuple[str, tuple[int, ...]]],
                 initial_point: Callable[[int], np.ndarray]) -> Any:
    """The nutpie model that samples a compiled kernel with ``buffer`` as its data.

    Parameters
    ----------
    logp_cfunc, expand_cfunc
        numba C callbacks (``numba.cfunc``) with the signatures of the module docstring.
    buffer
        The kernel's ``float64`` buffer (header, data, hyperparameters); kept
        alive by the model, read-only.
    expanded
        Stored variables in the order ``expand_cfunc`` writes them: name, shape, dims.
    coords
        Labels of every dimension named in ``expanded``.
    unconstrained
        The unconstrained vector's blocks in the kernel's order: name, shape.
    initial_point
        ``chain_seed -> x0``, a point of the unconstrained space.

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
        Ready for ``nutpie.sample`` (through :func:`bayes_poem.sampling.run_nutpie`).
    """
    from nutpie.compile_pymc import CompiledPyMCModel

    buffer = np.ascontiguousarray(buffer, dtype=np.float64)
    names = [name for name, _, _ in expanded]
    shapes = [tuple(shape) for _, shape, _ in expanded]
    slices, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        slices.append(slice(start, start + size))
        start += size
    labels = flat_names(unconstrained)
    all_coords = {dim: pd.Index(list(values)) for dim, values in coords.items()}
    all_coords[UNCONSTRAINED] = pd.Index(labels)
    return CompiledPyMCModel(
        dims={name: tuple(dims) for name, _, dims in expanded},
        _n_dim=len(labels),
        _coords=all_coords,
        _shapes=dict(zip(names, shapes, strict=True)),
        compiled_logp_func=logp_cfunc,
        compiled_expand_func=expand_cfunc,
        initial_point_func=initial_point,
        shared_data={},
        user_data=buffer,
        n_expanded=start,
        shape_info=(names, slices, shapes),
        logp_func=None,
        expand_func=None,
    )


def evaluate(model: Any, x: np.ndarray) -> tuple[float, np.ndarray, int]:
    """Log-density, gradient and status code at ``x``, through the model's own pointers.

    Calls the C callback at ``model.compiled_logp_func.address`` with
    ``model.user_data.ctypes.data``, exactly the two addresses nutpie passes to
    its sampler (``CompiledPyMCModel._make_model``). For tests and checks.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    grad = np.zeros(x.size)
    value = np.zeros(1)
    function = _LOGP(model.compiled_logp_func.address)
    double = ctypes.POINTER(ctypes.c_double)
    status = function(x.size, x.ctypes.data_as(double), grad.ctypes.data_as(double),
                      value.ctypes.data_as(double), model.user_data.ctypes.data)
    return float(value[0]), grad, int(status)


def expand(model: Any, x: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
    """The stored variables at ``x`` (name -> array) and the callback's status code."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.zeros(model.n_expanded)
    function = _EXPAND(model.compiled_expand_func.address)
    double = ctypes.POINTER(ctypes.c_double)
    status = function(x.size, out.size, x.ctypes.data_as(double), out.ctypes.data_as(double),
                      model.user_data.ctypes.data)
    names, slices, shapes = model.shape_info
    values = {name: out[part].reshape(shape)
              for name, part, shape in zip(names, slices, shapes, strict=True)}
    return values, int(status)
