"""nutpie_trace: the raw Arrow trace converted as nutpie 0.16 converts it.

Each test converts the same record batches twice, with nutpie's own
``nutpie.sample._arrow_to_arviz`` (what ``sampler.wait()`` runs without
``return_raw_trace``) and with :func:`bayes_poem.nutpie_trace.to_inference_data`,
and asks for identical groups: variables and their order, values, dims, coords,
dtypes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow
import pytest
import xarray as xr
from arro3.core import RecordBatch
from nutpie.sample import _arrow_to_arviz

from bayes_poem import nutpie_trace
from bayes_poem.diagnostics import ATTEMPTS_ATTR
from bayes_poem.nutpie_trace import skipped_stats, to_inference_data
from bayes_poem.sampling import run_nutpie

ALL_OPTIONAL = {"gradient", "unconstrained_draw", "mass_matrix_inv", "mass_matrix_eigvals",
                "mass_matrix_stds", "divergence_start", "divergence_end",
                "divergence_momentum", "divergence_start_gradient"}


def _nutpies(draws, stats, coords, skip):
    return _arrow_to_arviz(draws, stats, skip_vars=sorted(skip), save_warmup=False,
                           coords={name: pd.Index(v) for name, v in coords.items()})


def _assert_same(theirs, ours):
    assert theirs.groups() == ours.groups() == ["posterior", "sample_stats"]
    for group in ("posterior", "sample_stats"):
        a, b = theirs[group], ours[group]
        assert list(a.data_vars) == list(b.data_vars)
        xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
        for name, var in a.variables.items():
            assert (var.dtype, var.dims) == (b[name].dtype, b[name].dims), name
        for name, index in a.indexes.items():
            assert index.dtype == b.indexes[name].dtype, name
        assert set(a.attrs) == set(b.attrs) == {"created_at", "arviz_version"}
        assert a.attrs["arviz_version"] == b.attrs["arviz_version"]


def _batch(columns: dict, meta: dict) -> RecordBatch:
    """An arro3 record batch, as nutpie's raw trace holds them."""
    fields = [pyarrow.field(name, col.type, metadata=meta.get(name)) for name, col in
              columns.items()]
    return RecordBatch.from_arrow(pyarrow.RecordBatch.from_arrays(
        list(columns.values()), schema=pyarrow.schema(fields)))


def test_hand_made_trace_with_unequal_chains_and_null_rows_converts_as_nutpie():
    """Warm-up rows dropped, a shorter chain padded (NaN, or 0 for integers), null
    rows of a list statistic left as padding, a shape without dims named
    ``<var>_dim_0``, coords from the model where given."""
    meta = {"theta": {b"dims": b"group", b"shape": b"2"}, "eta": {b"shape": b"3"},
            "pt": {b"dims": b"unconstrained_parameter", b"shape": b"2"}}
    rng = np.random.default_rng(1)
    draws, stats = [], []
    for n, warm in ((7, 3), (5, 2)):
        draws.append(_batch({
            "mu": pyarrow.array(rng.normal(size=n)),
            "theta": pyarrow.array(list(rng.normal(size=(n, 2))),
                                   type=pyarrow.large_list(pyarrow.float64())),
            "eta": pyarrow.array(list(rng.normal(size=(n, 3))),
                                 type=pyarrow.large_list(pyarrow.float64())),
        }, meta))
        points = [list(rng.normal(size=2)) if i % 2 else None for i in range(n)]
        stats.append(_batch({
            "depth": pyarrow.array(rng.integers(1, 5, size=n).astype(np.uint64)),
            "chain": pyarrow.array(np.full(n, len(stats), dtype=np.uint64)),
            "draw": pyarrow.array(np.arange(n, dtype=np.uint64)),
            "logp": pyarrow.array(rng.normal(size=n)),
            "tuning": pyarrow.array([i < warm for i in range(n)]),
            "diverging": pyarrow.array(rng.random(n) < 0.5),
            "pt": pyarrow.array(points, type=pyarrow.large_list(pyarrow.float64())),
            "gradient": pyarrow.array(list(rng.normal(size=(n, 2))),
                                      type=pyarrow.large_list(pyarrow.float64())),
        }, meta))
    coords = {"group": ["a", "b"], "unconstrained_parameter": ["x", "y"]}
    ours = to_inference_data(draws, stats, coords, skip={"gradient"})
    _assert_same(_nutpies(draws, stats, coords, {"gradient"}), ours)
    assert ours.posterior.sizes["draw"] == 4 and np.isnan(ours.posterior["mu"].values[1, 3])
    assert "eta_dim_0" in ours.posterior.dims and "pt" in ours.sample_stats


def test_skipped_stats_are_nutpies_optional_statistics():
    assert skipped_stats(None) == ALL_OPTIONAL

    class Settings:
        store_gradient = True
        store_divergences = False

    assert skipped_stats(Settings()) == ALL_OPTIONAL - {"gradient"}


@pytest.mark.mcmc
@pytest.mark.parametrize("cells", [False, True], ids=["sed", "sed_cell_effects"])
def test_a_fit_converts_as_nutpie_converts_it(sed_spec, quick, monkeypatch, cells):
    """``run_nutpie``'s trace against nutpie's conversion of the same batches."""
    from bayes_poem.backends.compiled import compiled_model

    spec = sed_spec.with_options(cell_effects="random") if cells else sed_spec
    seen = []
    real = nutpie_trace.to_inference_data

    def spy(draws, stats, coords, *, skip):
        seen.append((draws, stats, coords, skip))
        return real(draws, stats, coords, skip=skip)

    monkeypatch.setattr(nutpie_trace, "to_inference_data", spy)
    settings = quick.__class__(draws=quick.draws, tune=quick.tune, chains=quick.chains,
                               seed=quick.seed, target_accept=0.8)
    ours = run_nutpie(compiled_model(spec, settings.seed), settings)
    (draws, stats, coords, skip), = seen
    assert skip == ALL_OPTIONAL  # what nutpie's _extract skips at its default settings
    theirs = _nutpies(draws, stats, coords, skip)
    for key in ("target_accept", ATTEMPTS_ATTR):  # sample_adaptive's records
        del ours.sample_stats.attrs[key]
    _assert_same(theirs, ours)
    assert (ours.posterior.sizes["chain"], ours.posterior.sizes["draw"]) == (2, 300)
    assert ("cell" in ours.posterior.dims) == cells
