"""nutpie's raw Arrow trace as an ``InferenceData``: posterior and sample_stats only.

``nutpie.sample(..., return_raw_trace=True)`` hands back the sampler's trace as
one Arrow record batch of draws and one of statistics per chain, warm-up rows
first (the statistic ``tuning`` marks them). nutpie's own conversion
(``nutpie.sample._arrow_to_arviz``, through ``az.from_dict``) also builds the
warm-up groups, which :func:`bayes_poem.sampling._nutpie_once` then drops
(``save_warmup=False``), and goes through ArviZ's generic dict converter
variable by variable: on the 8-study SED model it cost more than the sampling
itself. :func:`to_inference_data` builds the two ``xr.Dataset``s directly from
the post-warm-up rows, with what nutpie's conversion gives:

- variables in the batches' column order; a draws column is ``(chain, draw,
  *dims)`` with the dims and shape of its Arrow field metadata (``dims``,
  ``shape``; a shape without dims named ``<var>_dim_<i>``, as ArviZ names them);
- the ``chain`` and ``draw`` coordinates ``0 .. n-1`` (int64), every other
  dimension's coordinate from the compiled model's ``coords`` (``np.asarray`` of
  its ``pd.Index``, as nutpie passes them), or ``0 .. n-1`` when it has none;
- the dtype of each Arrow column (float64, int64, uint64, bool); chains shorter
  than the longest are padded with NaN (floats) or zeros, as nutpie pads them;
- without the statistics nutpie skips unless asked to store them (gradients,
  unconstrained draws, mass matrices, divergence points: :func:`skipped_stats`),
  nor the statistics ``chain`` and ``draw`` (``az.from_dict`` keeps them as
  the coordinates of those names);
- the attrs ``created_at`` and ``arviz_version`` of ``az.from_dict``.

``tests/test_nutpie_trace.py`` checks a fit converted both ways gives identical
groups.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import pyarrow
import xarray as xr

from bayes_poem.dims import CHAIN, DRAW

# nutpie's settings flags and the statistics each one keeps (nutpie.sample._extract)
_OPTIONAL_STATS = {
    "store_gradient": ("gradient",),
    "store_unconstrained": ("unconstrained_draw",),
    "store_mass_matrix": ("mass_matrix_inv", "mass_matrix_eigvals", "mass_matrix_stds"),
    "store_divergences": ("divergence_start", "divergence_end", "divergence_momentum",
                          "divergence_start_gradient"),
}


def skipped_stats(settings: Any) -> frozenset[str]:
    """The statistics nutpie's conversion leaves out for these sampler settings."""
    return frozenset(name for flag, names in _OPTIONAL_STATS.items()
                     if not getattr(settings, flag, False) for name in names)


def to_inference_data(draw_batches: Iterable[Any], stat_batches: Iterable[Any],
                      coords: Mapping[str, Iterable[Any]], *,
                      skip: Iterable[str] = ()) -> az.InferenceData:
    """The post-warm-up posterior and sample_stats of a raw nutpie trace.

    Parameters
    ----------
    draw_batches, stat_batches
        The raw trace's record batches, one per chain: ``get_arrow_trace()`` of
        ``sampler.wait()`` with ``return_raw_trace=True`` (it can be taken once).
    coords
        The compiled model's coordinates (``model.coords``).
    skip
        Statistics to leave out (:func:`skipped_stats` of the sampler settings).
    """
    draws = [pyarrow.record_batch(batch) for batch in draw_batches]
    stats = [pyarrow.record_batch(batch) for batch in stat_batches]
    warmup = [int(np.count_nonzero(s.column("tuning").to_numpy(zero_copy_only=False)))
              for s in stats]
    draws = [batch.slice(n) for batch, n in zip(draws, warmup, strict=True)]
    stats = [batch.slice(n) for batch, n in zip(stats, warmup, strict=True)]
    n_draws = max((batch.num_rows for batch in draws), default=0)
    base = {CHAIN: np.arange(len(draws)), DRAW: np.arange(n_draws)}
    attrs = {"created_at": datetime.datetime.now(datetime.UTC).isoformat(),
             "arviz_version": az.__version__}
    skip = frozenset(skip)
    return az.InferenceData(posterior=_dataset(draws, n_draws, base, coords, attrs, skip=()),
                            sample_stats=_dataset(stats, n_draws, base, coords, attrs,
                                                  skip=skip))


def _dataset(batches: list[pyarrow.RecordBatch], n_draws: int, base: dict[str, np.ndarray],
             coords: Mapping[str, Iterable[Any]], attrs: dict[str, str], *,
             skip: Iterable[str]) -> xr.Dataset:
    data_vars = {}
    used: dict[str, np.ndarray] = dict(base)
    if not batches:
        return xr.Dataset(coords=used, attrs=dict(attrs))
    for field in batches[0].schema:
        if field.name in skip or field.name in base:
            continue  # nutpie's statistics ``chain`` and ``draw``: the coordinates
        meta = field.metadata or {}
        shape = tuple(int(s) for s in meta[b"shape"].decode().split(",")) \
            if meta.get(b"shape") else ()
        dims = tuple(meta[b"dims"].decode().split(",")) if meta.get(b"dims") else \
            tuple(f"{field.name}_dim_{i}" for i in range(len(shape)))
        values = _stack([batch.column(field.name) for batch in batches], n_draws, shape)
        for dim, size in zip(dims, shape, strict=True):
            if dim not in used:
                used[dim] = (np.asarray(pd.Index(coords[dim])) if dim in coords
                             else np.arange(size))
        data_vars[field.name] = ((CHAIN, DRAW, *dims), values)
    return xr.Dataset(data_vars, coords=used, attrs=dict(attrs))


def _stack(columns: list[pyarrow.Array], n_draws: int, shape: tuple[int, ...]) -> np.ndarray:
    """One column of every chain as a ``(chain, draw, *shape)`` array (padded like nutpie)."""
    flat = [col.flatten() if hasattr(col, "flatten") else col for col in columns]
    dtype = flat[0].type.to_pandas_dtype()
    if all(col.null_count == 0 and len(col) == n_draws for col in columns):
        return np.stack([col.to_numpy(zero_copy_only=False) for col in flat]).reshape(
            (len(columns), n_draws, *shape))
    fill = np.nan if dtype in (np.float64, np.float32) else 0
    out = np.full((len(columns), n_draws, *shape), fill, dtype=dtype)
    for chain, (col, values) in enumerate(zip(columns, flat, strict=True)):
        values = values.to_numpy(zero_copy_only=False)
        if col.null_count == 0:
            out[chain, :len(col)] = values.reshape((len(col), *shape))
        else:
            valid = ~col.is_null().to_numpy(zero_copy_only=False)
            out[chain, :len(col)][valid] = values.reshape((int(valid.sum()), *shape))
    return out
