"""A spec's fit as the commands run it: progress lines on stderr, the sampler's
warnings (a ``ConvergenceWarning`` goes to the run log and the summary, others are
shown), the ``[summary]`` options on the result, the R^2 refit without moderators,
and the refit with fixed subgroup effects for the unpooled contrasts.

Used by ``cli``'s ``run``, ``compare``, ``bias`` and ``report``; imports nothing heavy at
module level (``bayes-poem --version`` imports ``cli``).
"""

from __future__ import annotations

import dataclasses
import time
import warnings

from bayes_poem import runlog
from bayes_poem.cli_support import progress
from bayes_poem.errors import ConvergenceWarning, refit_reported

__all__ = ["fit_analysis", "tau2_explained_refit", "unpooled_refit"]


def fit_analysis(analysis, spec, quiet: bool):
    """Fit a validated spec (progress on stderr); the result reports the spec's
    [summary] interval and weights."""
    from bayes_poem.results import with_summary_options
    from bayes_poem.sampling import check_memory

    check_memory(spec, analysis.sampler)  # a user error: before any progress line
    table = spec.table
    tags = [table.metadata["label"]] if table.metadata.get("label") else []  # [data] label
    tags += ["SYNTHETIC"] if table.is_synthetic else []
    named = f" ({'; '.join(tags)})" if tags else ""
    progress(f"data loaded from {table.source}{named}: {len(spec.studies)} studies", quiet)
    settings = dataclasses.replace(analysis.sampler, progress=not quiet)
    progress(
        f"preparing the {settings.backend} sampler (compiled density is cached after the "
        "first run)", quiet)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        progress(f"sampling {settings.chains} chains x {settings.draws} draws "
                  f"({settings.tune} tuning), seed {settings.seed}", quiet)
        result = spec.fit(settings)
    progress(f"sampling done in {time.perf_counter() - started:.1f} s", quiet)
    for note in result.diagnostics.adaptation:  # adaptive target_accept: the refits
        progress(note, quiet)
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):  # in the summary; and the log
            runlog.note(f"[bayes-poem] warning: {warning.message}")
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    return with_summary_options(result, interval=analysis.interval, weights=analysis.weights,
                                at=analysis.at, labels=analysis.labels or None)


def tau2_explained_refit(result, quiet: bool):
    """R^2 of a fit with moderators and random study effects, else None: the model
    refitted without moderators with the same sampler settings and seed. A failed
    refit is a ``SamplingError`` (nothing is written); its failed diagnostics are in
    the table's ``problems_without`` (reported, and failing ``--strict``)."""
    from bayes_poem.explained import REFIT_LABEL, is_defined, tau2_explained

    if not is_defined(result):
        return None
    return _announced_refit(lambda: tau2_explained(result), "without moderators", "for R^2",
                            REFIT_LABEL, quiet)


def unpooled_refit(result, contrasts, quiet: bool):
    """The contrasts, with random subgroup effects beside the unpooled ones: the model
    refitted with fixed subgroup effects (same sampler settings and seed;
    ``bayes_poem.unpooled``). Its failed diagnostics are in ``unpooled_problems``
    (reported); a failed refit is a ``SamplingError`` (nothing is written)."""
    from bayes_poem.unpooled import REFIT_LABEL, is_defined, unpooled_contrasts

    if not is_defined(result):  # random subgroup effects have >= 2 subgroups: contrasts
        return result.contrasts(contrasts)
    return _announced_refit(lambda: unpooled_contrasts(result, contrasts),
                            "with fixed subgroup effects", "for the unpooled contrasts",
                            REFIT_LABEL, quiet)


def _announced_refit(compute, model: str, purpose: str, label: str, quiet: bool):
    """``compute()``, a table from a refit of the model ``model`` (e.g. "without
    moderators"), said before and after on stderr; see :func:`errors.refit_reported`."""
    progress(f"fitting the model {model} {purpose} (same sampler settings and seed)", quiet)
    started = time.perf_counter()
    with refit_reported(label):
        table = compute()
    progress(f"fit {model} done in {time.perf_counter() - started:.1f} s", quiet)
    return table
