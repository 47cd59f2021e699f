"""Sampler diagnostics checked after every fit.

Thresholds follow Vehtari et al. (2021, Bayesian Analysis 16:667): rank-normalised
split R-hat <= 1.01, bulk and tail ESS >= 100 per chain, no divergent
transitions, and E-BFMI >= 0.3 in every chain. R-hat and ESS are ArviZ's
estimators computed for all elements at once (:mod:`bayes_poem.mcmc_stats`). A problem issues a
:class:`~bayes_poem.errors.ConvergenceWarning`; the CLI reports it and, under
``--strict``, exits with status 3. A diagnostic that is NaN is no pass but a
failed computation (:class:`~bayes_poem.errors.SamplingError`).

A fit with adaptive ``target_accept`` (:func:`bayes_poem.sampling.sample_adaptive`)
that was redone at a higher target says so in :attr:`Diagnostics.adaptation`
and in :meth:`Diagnostics.summary_line`; the diagnostics are those of the last
attempt (the draws kept). An attempt stopped at its first divergence after
warm-up (nutpie: not the ladder's last) says so.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import arviz as az
import numpy as np
import pandas as pd

from bayes_poem import mcmc_stats
from bayes_poem.errors import ConvergenceWarning, SamplingError

RHAT_MAX = 1.01
MIN_DRAWS = 4  # split R-hat and ESS need 4 draws per chain (ArviZ's minimum)
ESS_PER_CHAIN_MIN = 100
BFMI_MIN = 0.3
# sample_stats attr of an adaptive fit: JSON [[target_accept, divergences], ...], an
# attempt stopped at its first divergence after warm-up [target, divergences, "stopped"]
ATTEMPTS_ATTR = "target_accept_attempts"
KINDS = ("r_hat", "ess_bulk", "ess_tail")  # the columns of Diagnostics.table


@dataclass(frozen=True)
class Diagnostics:
    """Per-variable R-hat and ESS, divergences, E-BFMI, and the problems found.

    ``adaptation``: one line per refit of an adaptive fit ("refit at
    target_accept 0.95 after 7 divergences at 0.8"); empty when the first
    attempt was kept or the target was set.
    """

    table: pd.DataFrame
    divergences: int
    bfmi: tuple[float, ...]
    problems: tuple[str, ...] = field(default_factory=tuple)
    adaptation: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary_line(self) -> str:
        return (
            f"max R-hat {self.table['r_hat'].max():.3f}, min bulk ESS "
            f"{self.table['ess_bulk'].min():.0f}, min tail ESS {self.table['ess_tail'].min():.0f}, "
            f"divergences {self.divergences}, min E-BFMI {min(self.bfmi):.2f}"
            + "".join(f"; {note}" for note in self.adaptation)
        )


def check_fit(idata: az.InferenceData, *, warn: bool = True) -> Diagnostics:
    """Compute diagnostics for every posterior variable and warn on problems.

    A diagnostic that cannot be computed (NaN: too few draws, non-finite or
    missing sampler statistics) is not a pass: it raises
    :class:`~bayes_poem.errors.SamplingError`, and no results may be made from
    such a fit. Maxima and minima are taken over every element of a variable,
    NaN included.
    """
    posterior = idata.posterior
    n_chains = posterior.sizes.get("chain", 0)
    n_draws = posterior.sizes.get("draw", 0)
    if n_draws < MIN_DRAWS or n_chains < 1:
        raise SamplingError(f"{n_chains} chain(s) x {n_draws} draw(s): diagnostics need at "
                            f"least {MIN_DRAWS} draws per chain; no results")
    stats = getattr(idata, "sample_stats", None)
    if stats is None or "diverging" not in stats:
        raise SamplingError("no sampler statistics (divergences) to check; no results")
    names = list(posterior.data_vars)
    stats_of = mcmc_stats.all_three_of([element_draws(posterior[name]) for name in names])
    # (variable, kind) extremes as one array; the checks below read it, not the DataFrame
    # (pandas indexing cost more than a small model's R-hat and ESS)
    values = np.array([[_extreme(rhat, np.max), _extreme(ess_bulk, np.min),
                        _extreme(ess_tail, np.min)]
                       for rhat, ess_bulk, ess_tail in stats_of]).reshape(-1, len(KINDS))
    table = pd.DataFrame(values, index=pd.Index(names, name="variable"), columns=list(KINDS))
    divergences = int(np.asarray(stats["diverging"]).sum())
    if "energy" in stats:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            energy = np.asarray(stats["energy"].transpose("chain", "draw"))
            bfmi = tuple(float(b) for b in e_bfmi(energy))
    else:
        bfmi = (float("nan"),)
    finite = np.isfinite(values)
    missing = [f"{kind} of {', '.join(_names_where(names, ~finite[:, j]))}"
               for j, kind in enumerate(KINDS) if not finite[:, j].all()]
    if not all(np.isfinite(b) for b in bfmi):
        missing.append("E-BFMI")
    if missing:
        raise SamplingError("sampler diagnostics could not be computed (NaN or infinite): "
                            + "; ".join(missing) + "; no results")

    problems = []
    bad_rhat = _names_where(names, values[:, 0] > RHAT_MAX)
    if bad_rhat and n_chains > 1:
        problems.append(f"R-hat > {RHAT_MAX} for {', '.join(bad_rhat)}")
    min_ess = ESS_PER_CHAIN_MIN * n_chains
    for j, kind in enumerate(KINDS[1:], start=1):
        low = _names_where(names, values[:, j] < min_ess)
        if low:
            problems.append(f"{kind.replace('_', ' ')} < {min_ess} for {', '.join(low)}")
    if divergences:
        problems.append(f"{divergences} divergent transition(s)")
    low_bfmi = [i for i, b in enumerate(bfmi) if b < BFMI_MIN]
    if low_bfmi:
        problems.append(f"E-BFMI < {BFMI_MIN} in chain(s) {', '.join(map(str, low_bfmi))}")
    diagnostics = Diagnostics(table, divergences, bfmi, tuple(problems),
                              adaptation_notes(idata))
    if warn and problems:
        warnings.warn("sampler diagnostics: " + "; ".join(problems), ConvergenceWarning,
                      stacklevel=2)
    return diagnostics


def e_bfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI per chain of a ``(chain, draw)`` energy array (Betancourt 2016):
    ``mean(diff(E)^2) / var(E)`` with the variance's ``ddof = 1``.

    ArviZ's ``az.bfmi`` formula, with numpy's two-pass variance where ArviZ (with
    numba installed) JIT-compiles a one-pass sum of squares on its first call in
    every process (about 0.2 s per process: each grid worker paid it again). The
    two agree to rounding (``tests/test_diagnostics.py``).
    """
    energy = np.atleast_2d(np.asarray(energy, dtype=float))
    return np.square(np.diff(energy, axis=1)).mean(axis=1) / np.var(energy, axis=1, ddof=1)


class Attempt(NamedTuple):
    """One attempt of an adaptive fit: its target, the divergences after warm-up
    (those seen by the stop if ``stopped``), and whether it was stopped at its first
    divergence instead of running to the end."""

    target: float
    divergences: int
    stopped: bool = False


def attempts(idata: az.InferenceData) -> list[Attempt]:
    """The :class:`Attempt` of each attempt of a fit; [] if not recorded.

    Reads both records: ``[target, divergences]`` (every attempt before stopping
    existed, and an attempt run to the end) and ``[target, divergences, "stopped"]``.
    """
    stats = getattr(idata, "sample_stats", None)
    raw = None if stats is None else stats.attrs.get(ATTEMPTS_ATTR)
    if not raw:
        return []
    return [Attempt(float(target), int(n), bool(rest) and rest[0] == "stopped")
            for target, n, *rest in json.loads(raw)]


def adaptation_notes(idata: az.InferenceData) -> tuple[str, ...]:
    """One line per refit: "refit at target_accept 0.95 after 7 divergences at 0.8", or
    for an attempt stopped early "refit at target_accept 0.95 after a divergence at 0.8
    (that attempt stopped at its first divergence after warm-up)"."""
    steps = attempts(idata)
    return tuple(_note(earlier, later) for earlier, later in zip(steps, steps[1:], strict=False))


def _note(earlier: Attempt, later: Attempt) -> str:
    n = earlier.divergences
    if earlier.stopped and n == 1:
        return (f"refit at target_accept {later.target:g} after a divergence at "
                f"{earlier.target:g} (that attempt stopped at its first divergence "
                f"after warm-up)")
    note = (f"refit at target_accept {later.target:g} after {n} divergence"
            f"{'' if n == 1 else 's'} at {earlier.target:g}")
    if earlier.stopped:
        note += " (that attempt stopped early, when its first divergences after warm-up were seen)"
    return note


def element_draws(var) -> np.ndarray:
    """A posterior variable's draws as ``(chain, draw, element)`` (:mod:`.mcmc_stats`)."""
    if var.dims[:2] != ("chain", "draw"):  # xarray's transpose costs more than the stats
        var = var.transpose("chain", "draw", ...)  # of a small variable
    return np.asarray(var.values).reshape(var.sizes["chain"], var.sizes["draw"], -1)


def _names_where(names: list, flags: np.ndarray) -> list:
    return [name for name, flag in zip(names, flags, strict=True) if flag]


def _extreme(values: np.ndarray, reduce) -> float:
    """``reduce`` over every element; NaN if any element is NaN (never skipped)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0 or np.isnan(values).any():
        return float("nan")
    return float(reduce(values))
