"""Running a sensitivity grid: fit every variant, tabulate, flag changed conclusions.

Variants run on any :class:`concurrent.futures.Executor` -- a local
``ProcessPoolExecutor``, or Dask's ``distributed.Client(...).get_executor()`` --
or serially. A failing variant (sampler error, divergences, a subgroup left
without data) becomes a row with ``status`` and ``error``; it never aborts the
grid or loses finished rows. The exception is ``main``, the reference of every
flag: if it fails, :func:`run_sensitivity` raises ``SamplingError``.

Warm start. ``main`` is fitted first, in this process; the other variants then
start their step-size adaptation from the main fit's adapted step size
(nutpie's ``initial_step``; the median over chains) and tune for
``min(settings.tune, WARM_TUNE)`` steps instead of ``settings.tune``
(:class:`WarmStart`). This is sound because adaptation only changes *how fast*
the chains move, not *where* they go: every draw kept comes after adaptation
has stopped, from a NUTS kernel that leaves the variant's own posterior
invariant, and the chains still start from the variant's own overdispersed
initial points, so R-hat keeps its power. Each variant's diagnostics are
checked as for any fit (a poorly adapted variant is a ``diagnostics`` row, not
a silent one). nutpie 0.16 takes no initial mass matrix, so the mass matrix is
adapted afresh; 300 steps is nutpie's own default tuning length.

Warm target. With adaptive ``target_accept`` (unset), a variant samples
adaptively *from the main fit's resolved target* up the ladder
(:func:`bayes_poem.sampling.sample_adaptive`), as every refit of another model
of an analysis does (:func:`bayes_poem.sampling.refit`): a variant is the main
model with one prior, study or likelihood changed, so a target the main fit
needed to sample without divergences is where the variant starts, and a variant
that still diverges there is refitted higher. Starting each variant at 0.8
again refitted most of them (on the SED grid, 23 of 24) at the main fit's target
anyway, doubling their sampling. Each variant's row says the target its draws
were sampled at (``target_accept``). Exact on rerun: the main fit's ladder runs
again with the same seed and resolves to the same target (the resolved spec
leaves ``target_accept`` unset, as an explicit one would fix every variant's).
An explicit ``target_accept`` is used by every variant as given.
``tests/test_sensitivity_grid.py`` checks that warm-started variants agree with
cold fits (``settings.tune`` steps) within Monte Carlo error.

Pilot variants. A main fit that samples cleanly at a target says little about the
variants when the target is marginal for the model: on the SED grid at 0.8,
20 to 23 of the 24 variants diverge, at each of three seeds, while the main fit is
clean at 0.8 at some seeds and not at others. Each such variant pays an attempt at
the main fit's target (stopped at its first divergence after warm-up, but only
after its warm-up). So when the main fit resolved below the ladder's top, the
grid's first :data:`PILOTS` variants (in the grid's order, whatever the executor)
are fitted first, and if *every* pilot needed a higher target, the other variants
start at the lowest target the pilots resolved to. A variant sampled higher than
it needed is as valid (the target changes the step size, not the posterior), and
its rows say its target. Otherwise nothing changes. Exact on rerun, and the same
for any ``--jobs``: the pilots are always the first variants, and their fits are
seeded. The cost: the other workers wait for the pilots (about one variant's
time with more than two workers; none serially).

Output: one tidy DataFrame, one row per variant x quantity (:data:`ROW_COLUMNS`,
then one column per crossed axis), with the posterior median, interval,
``P(> 0)`` for contrasts, and flags where a conclusion changes relative to the
main analysis.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayes_poem.contrasts import Contrast
from bayes_poem.errors import ConvergenceWarning, SamplingError, SpecError
from bayes_poem.intervals import IntervalSpec
from bayes_poem.sampling import TARGET_LADDER, SamplerSettings
from bayes_poem.sensitivity_grid import MAIN, Variant

ROW_COLUMNS = ["variant", "group", "description", "status", "error", "quantity", "kind",
               "median", "lower", "upper", "interval", "p_gt_0", "p_gt_margin", "margin",
               "divergences", "target_accept", "seconds", "flag"]
# Written since the first release: a sensitivity.csv without them still reads
OPTIONAL_COLUMNS = ("target_accept",)
WARM_TUNE = 300  # tuning steps of a warm-started variant (nutpie's default tuning length)
PILOTS = 2  # variants fitted first to test the main fit's target (module docstring)

@dataclass(frozen=True)
class WarmStart:
    """How a variant reuses the main fit's tuning: nutpie's ``initial_step`` and fewer
    tuning steps (see the module docstring for why this is sound)."""

    initial_step: float
    tune: int
    target_accept: float | None = None  # adaptive from here (None: the settings' own)

    @classmethod
    def from_fit(cls, result: Any, settings: SamplerSettings) -> WarmStart | None:
        """From the main fit: the median over chains of its adapted step size and, with
        adaptive ``target_accept``, the target it resolved to; ``None`` for the PyMC
        backend or a fit without a finite positive step size."""
        if settings.backend != "nutpie":
            return None
        stats = getattr(result.idata, "sample_stats", None)
        if stats is None or "step_size" not in stats:
            return None
        step = float(np.median(stats["step_size"].values[:, -1]))
        if not np.isfinite(step) or step <= 0:
            return None
        target = None
        if settings.target_accept is None:  # adaptive: start at the main fit's target
            target = getattr(getattr(result, "settings", None), "target_accept", None)
        return cls(initial_step=step, tune=min(settings.tune, WARM_TUNE),
                   target_accept=None if target is None else float(target))


def fit_variant(variant: Variant, settings: SamplerSettings, contrasts: Sequence[Contrast],
                interval: IntervalSpec, warm: WarmStart | None = None) -> pd.DataFrame:
    """Fit one variant and return its rows; errors become a failed row (picklable).

    With ``warm`` the variant tunes for ``warm.tune`` steps from the step size
    ``warm.initial_step`` and, when ``warm.target_accept`` is set, samples adaptively
    from that target; the draws, chains and seed are ``settings``'.
    """
    return _fit_rows(variant, settings, contrasts, interval, warm)[0]


def _fit_rows(variant: Variant, settings: SamplerSettings, contrasts: Sequence[Contrast],
              interval: IntervalSpec, warm: WarmStart | None) -> tuple[pd.DataFrame, Any]:
    """:func:`fit_variant`'s rows and the fit itself (``None`` when it failed)."""
    started = time.perf_counter()
    try:
        empty = variant.spec.subgroups_without_data()
        if empty and variant.spec.subgroup_effects != "none":
            raise SpecError(f"subgroup(s) {', '.join(empty)} have no studies in this variant")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if warm is None:
                result = variant.spec.fit(settings)
            else:
                result = variant.spec.fit(dataclasses.replace(settings, tune=warm.tune),
                                          initial_step=warm.initial_step,
                                          adapt_from=warm.target_accept)
        rows = _quantity_rows(result, contrasts, interval)
        problems = result.diagnostics.problems
        status = "ok" if not problems else "diagnostics"
        frame = pd.DataFrame(rows)
        frame = frame.assign(**_identity(variant), status=status, error="; ".join(problems),
                             divergences=result.diagnostics.divergences,
                             target_accept=result.settings.target_accept,
                             seconds=time.perf_counter() - started)
    except Exception as err:  # noqa: BLE001 - a failed variant must not abort the grid
        message = f"{type(err).__name__}: {err}".splitlines()[0]
        if not isinstance(err, SpecError):
            message += " | " + traceback.format_exc(limit=1).strip().splitlines()[-1]
        return _failed_rows(variant, message, time.perf_counter() - started), None
    return frame.reindex(columns=_columns(variant)), result


def _identity(variant: Variant) -> dict[str, str]:
    """The columns naming a variant in each of its rows (its crossed axes' levels too)."""
    return {"variant": variant.name, "group": variant.group,
            "description": variant.description, **dict(variant.coordinates)}


def _columns(variant: Variant) -> list[str]:
    return ROW_COLUMNS + [axis for axis, _ in variant.coordinates]


def _failed_rows(variant: Variant, message: str, seconds: float = float("nan")
                 ) -> pd.DataFrame:
    """The one row of a failed variant: its status ``failed`` and the error's line."""
    return pd.DataFrame([{**_identity(variant), "status": "failed", "error": message,
                          "seconds": seconds}]).reindex(columns=_columns(variant))


def _quantity_rows(result, contrasts: Sequence[Contrast], interval: IntervalSpec) -> list[dict]:
    rows = []
    summary = result.subgroup_summary(interval, quantities=("p_pooled",))
    for row in summary.itertuples(index=False):
        rows.append({"quantity": f"p_pooled[{row.subgroup}]", "kind": "probability",
                     "median": row.median, "lower": row.lower, "upper": row.upper,
                     "interval": row.interval})
    # the model's own scales: tau (or tau[d]), tau_cell, phi, sigma_subgroup
    for row in result.heterogeneity(interval, derived=False).itertuples(index=False):
        rows.append({"quantity": row.parameter, "kind": "heterogeneity",
                     "median": row.median, "lower": row.lower, "upper": row.upper,
                     "interval": row.interval})
    if contrasts and result.spec.subgroup_effects != "none":
        table = result.contrasts(list(contrasts), interval)
        for row in table[table["scale"] == "difference"].itertuples(index=False):
            label = (row.contrast if row.quantity == "p_pooled"
                     else f"{row.contrast}, {row.quantity}")
            rows.append({"quantity": f"difference[{label}]", "kind": "contrast",
                         "median": row.median, "lower": row.lower, "upper": row.upper,
                         "interval": row.interval, "p_gt_0": row.p_gt_null,
                         "p_gt_margin": row.p_gt_margin, "margin": row.margin})
    return rows


@dataclass(frozen=True)
class SensitivityResult:
    """The grid's tidy table (one row per variant x quantity) and its settings."""

    table: pd.DataFrame
    threshold: float
    seconds: float
    main_fit: Any = dataclasses.field(default=None, repr=False, compare=False)
    warm: WarmStart | None = None
    # the pilot variants fitted first (module docstring), and the target the other
    # variants started at when every pilot needed one above the main fit's (else None)
    pilots: tuple[str, ...] = ()
    raised_to: float | None = None

    @property
    def failed(self) -> pd.DataFrame:
        return self.table[self.table["status"] == "failed"]

    @property
    def flags(self) -> pd.DataFrame:
        return self.table[self.table["flag"].fillna("") != ""]

    def compact(self) -> pd.DataFrame:
        """Variants x contrast quantities (median and P(>0)) for the terminal."""
        contrasts = self.table[self.table["kind"] == "contrast"]
        if contrasts.empty:
            contrasts = self.table[self.table["kind"] == "heterogeneity"]
        return contrasts[["variant", "quantity", "median", "lower", "upper", "p_gt_0",
                          "flag"]].reset_index(drop=True)


def run_sensitivity(
    variants: Sequence[Variant],
    settings: SamplerSettings,
    *,
    contrasts: Sequence[Contrast] = (),
    interval: IntervalSpec | None = None,
    threshold: float = 0.95,
    executor: cf.Executor | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    warm_start: bool = True,
) -> SensitivityResult:
    """Fit every variant (in parallel on ``executor`` if given) and flag changes.

    Parameters
    ----------
    variants : sequence of Variant
        The first named ``"main"`` is the reference for the flags.
    settings : SamplerSettings
        Used for every variant (same seed: variants differ only by the model).
    contrasts : sequence of Contrast
        Contrasts to track across variants.
    threshold : float
        Decision threshold for ``P(contrast > 0)``; a variant whose probability
        falls on the other side of it than the main analysis is flagged.
    executor : concurrent.futures.Executor, optional
        ``None`` runs serially in this process.
    progress : callable, optional
        Called as ``progress(done, total, variant_name)``.
    warm_start : bool
        Fit ``main`` first, in this process, and start the other variants from
        its tuning (:class:`WarmStart`; nutpie backend). ``False``: every
        variant tunes from scratch for ``settings.tune`` steps.

    The main fit itself is ``SensitivityResult.main_fit`` (``None`` when
    ``main`` is not among the variants, or was fitted on the executor
    because ``warm_start`` is off).

    Raises
    ------
    SpecError
        Two variants with the same name, or a contrast given twice.
    SamplingError
        The ``main`` variant failed (it is the reference of every flag: the
        other variants are cancelled and no table is returned), or every
        variant failed. Any other failed variant is a ``failed`` row.
    """
    if not 0.5 <= threshold < 1.0:
        raise SpecError("sensitivity.decision_threshold: must be in [0.5, 1)")
    names = [v.name for v in variants]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SpecError(f"sensitivity: several variants named {', '.join(map(repr, repeated))}"
                        "; variant names must be unique")
    pairs = [(c.a, c.b, c.quantity) for c in contrasts]
    if len(set(pairs)) != len(pairs):  # their rows would share one quantity name
        raise SpecError("sensitivity: a contrast is given twice (same a, b and quantity)")
    interval = interval or IntervalSpec()
    started = time.perf_counter()
    frames: dict[int, pd.DataFrame] = {}
    total = len(variants)
    done = 0
    main_fit = warm = None
    main_at = next((i for i, v in enumerate(variants) if v.name == MAIN), None)
    if warm_start and main_at is not None:  # the reference first: its tuning is reused
        # on the executor's workers when there is one (the same fit as serial; the
        # parent stays free to end them on an interrupt)
        fit_main = (_fit_rows if executor is None
                    else lambda *a: executor.submit(_fit_rows, *a).result())
        frames[main_at], main_fit = fit_main(variants[main_at], settings, tuple(contrasts),
                                             interval, None)
        _raise_if_main_failed(variants[main_at], frames[main_at])
        warm = WarmStart.from_fit(main_fit, settings)
        done = 1
        if progress:
            progress(done, total, MAIN)
    rest = [i for i in range(total) if i not in frames]

    def fit(indices: Sequence[int], start: WarmStart | None) -> None:
        nonlocal done
        # closing: a failed main fit raised here cancels the variants not started
        with contextlib.closing(_fitted(indices, variants, settings, tuple(contrasts),
                                        interval, start, executor)) as fitted:
            for i, frame in fitted:
                frames[i] = frame
                _raise_if_main_failed(variants[i], frame)
                done += 1
                if progress:
                    progress(done, total, variants[i].name)

    pilots, raised_to = [], None
    if (warm is not None and warm.target_accept is not None
            and warm.target_accept < TARGET_LADDER[-1] and len(rest) > PILOTS):
        pilots, rest = rest[:PILOTS], rest[PILOTS:]
        fit(pilots, warm)
        raised_to = _raised_start(warm.target_accept, [frames[i] for i in pilots])
    fit(rest, warm if raised_to is None else dataclasses.replace(warm, target_accept=raised_to))
    table = pd.concat([frames[i] for i in range(total)], ignore_index=True)
    if total and (table["status"] == "failed").all():
        raise SamplingError(f"sensitivity: every variant failed (first: {variants[0].name}: "
                            f"{table['error'].iloc[0]})")
    table = _flag(table, threshold)
    return SensitivityResult(table, threshold, time.perf_counter() - started, main_fit, warm,
                             tuple(variants[i].name for i in pilots), raised_to)


def _fitted(indices: Sequence[int], variants: Sequence[Variant], settings: SamplerSettings,
            contrasts: tuple[Contrast, ...], interval: IntervalSpec, warm: WarmStart | None,
            executor: cf.Executor | None):
    """``(index, rows)`` of each variant of ``indices`` as it is fitted: here in order,
    or on ``executor`` as they finish (a variant whose worker was lost is a failed row;
    an interrupt cancels the ones not started)."""
    if executor is None:
        for i in indices:
            yield i, fit_variant(variants[i], settings, contrasts, interval, warm)
        return
    futures = {executor.submit(fit_variant, variants[i], settings, contrasts, interval,
                               warm): i for i in indices}
    try:
        for future in cf.as_completed(futures):
            i = futures[future]
            try:
                frame = future.result()
            except Exception as err:  # noqa: BLE001 - e.g. a worker lost: keep the grid
                frame = _failed_rows(variants[i],
                                     f"{type(err).__name__}: {err}".splitlines()[0])
            yield i, frame
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def _raised_start(start: float, pilots: Sequence[pd.DataFrame]) -> float | None:
    """The lowest target the pilots' draws were sampled at, when every pilot was
    fitted and needed a target above ``start``; ``None`` otherwise."""
    targets = []
    for frame in pilots:
        if (frame["status"] == "failed").any():
            return None
        targets.append(float(frame["target_accept"].iloc[0]))
    return min(targets) if targets and min(targets) > start else None


def _raise_if_main_failed(variant: Variant, frame: pd.DataFrame) -> None:
    if variant.name == MAIN and (frame["status"] == "failed").any():
        raise SamplingError(
            f"the main analysis failed ({frame['error'].iloc[0]}); it is the reference of "
            "every flag, so the grid was stopped")


def _flag(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Mark rows whose conclusion differs from the main analysis."""
    table = table.copy()
    table["flag"] = ""
    main = table[(table["variant"] == MAIN) & (table["status"] != "failed")]
    if main.empty:
        return table
    reference = main.set_index("quantity")
    for idx, row in table.iterrows():
        if row["variant"] == MAIN or row["status"] == "failed":
            continue
        if row["quantity"] not in reference.index:
            continue
        ref = reference.loc[row["quantity"]]
        flags = []
        if row["kind"] == "contrast":
            if (ref["p_gt_0"] >= threshold) != (row["p_gt_0"] >= threshold):
                flags.append(f"P(>0) crosses {threshold:g} "
                             f"({ref['p_gt_0']:.3f} -> {row['p_gt_0']:.3f})")
            ref_excl = ref["lower"] > 0 or ref["upper"] < 0
            row_excl = row["lower"] > 0 or row["upper"] < 0
            if ref_excl != row_excl:
                flags.append("interval " + ("stops" if ref_excl else "starts")
                             + " excluding 0")
        table.at[idx, "flag"] = "; ".join(flags)
    return table



def summarise_by_variant(table: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: status, seconds, divergences, the target_accept its draws
    were sampled at, number of flags."""
    grouped = table.groupby("variant", sort=False)
    return pd.DataFrame({
        "status": grouped["status"].first(),
        "seconds": grouped["seconds"].first(),
        "divergences": grouped["divergences"].first(),
        "target_accept": grouped["target_accept"].first(),
        "flags": grouped["flag"].apply(lambda s: int((s.fillna("") != "").sum())),
    }).reset_index()


