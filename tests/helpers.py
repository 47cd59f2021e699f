"""Helpers shared by several test modules."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayes_poem.cli import main
from bayes_poem.diagnostics import Diagnostics
from bayes_poem.dims import MODERATOR, SUBGROUP
from bayes_poem.results import FitResult
from bayes_poem.sampling import SamplerSettings

QUANTILES = (0.025, 0.5, 0.975)


def run_cli(args, capsys) -> tuple[int, str, str]:
    """Run ``bayes-poem`` in-process: exit status, stdout, stderr."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def pymc_logp_dlogp(model):
    """``point -> (logp, dlogp)`` of a PyMC model on its unconstrained space: the values of
    ``model.compile_logp()`` and ``model.compile_dlogp()`` (Jacobian included), compiled as
    one function, so the shared graph is rewritten once (about half the cost of two), with
    the Python linker (FAST_COMPILE: a handful of evaluations beat compiling C)."""
    fn = model.compile_fn([model.logp(), model.dlogp()], mode="FAST_COMPILE")
    return lambda point: tuple(fn(point))


def assert_matches_exact(posterior, exact, coarse, params=("mu", "tau"), quantiles=QUANTILES):
    """MCMC mean and quantiles within 4 MCSE of an exact posterior.

    ``exact`` and ``coarse`` answer ``.mean(param)`` and ``.quantile(param, q)``;
    ``coarse`` is the same computation on a coarser grid: its change bounds the
    quadrature error (O(h^2)), which must stay below 0.25 MCSE.
    """
    failures = []
    for param in params:
        draws = posterior[param]
        mcse = float(az.mcse(posterior[[param]])[param])
        assert abs(coarse.mean(param) - exact.mean(param)) < 0.25 * mcse  # grid converged
        if abs(float(draws.mean()) - exact.mean(param)) > 4 * mcse:
            failures.append((param, "mean", float(draws.mean()), exact.mean(param), mcse))
        for q in quantiles:
            mcse_q = float(az.mcse(posterior[[param]], method="quantile", prob=q)[param])
            assert abs(coarse.quantile(param, q) - exact.quantile(param, q)) < 0.25 * mcse_q
            estimate = float(draws.quantile(q))
            if abs(estimate - exact.quantile(param, q)) > 4 * mcse_q:
                failures.append((param, q, estimate, exact.quantile(param, q), mcse_q))
    assert not failures, failures


def fit_over(spec, posterior: xr.Dataset) -> FitResult:
    """A FitResult over hand-made draws (healthy placeholder diagnostics): the
    arithmetic of results, contrasts and comparisons without sampling."""
    diagnostics = Diagnostics(pd.DataFrame({"r_hat": [1.0], "ess_bulk": [100.0],
                                            "ess_tail": [100.0]}), 0, (1.0,))
    return FitResult(spec=spec, idata=az.InferenceData(posterior=posterior),
                     settings=SamplerSettings(), diagnostics=diagnostics)


def fake_moderator_fit(spec, seed: int = 0) -> FitResult:
    """Hand-made draws (2 chains x 50) of mu, tau, alpha and beta for ``spec``."""
    rng = np.random.default_rng(seed)
    shape = (2, 50)
    n_d, terms = len(spec.subgroups), spec.moderator_terms
    post = xr.Dataset({
        "mu": (("chain", "draw"), rng.normal(1.0, 0.1, shape)),
        "tau": (("chain", "draw"), np.abs(rng.normal(0.3, 0.05, shape))),
        "alpha": (("chain", "draw", SUBGROUP), rng.normal(0, 0.3, (*shape, n_d))),
        "beta": (("chain", "draw", MODERATOR), rng.normal(0.5, 0.2, (*shape, len(terms)))),
    }, coords={SUBGROUP: spec.subgroups, MODERATOR: terms})
    if not terms:  # as a fit without moderators stores it: no beta at all
        post = post.drop_vars("beta").drop_dims(MODERATOR, errors="ignore")
    return fit_over(spec, post)


def fake_cell_fit(spec, seed: int = 0) -> FitResult:
    """Hand-made draws (2 chains x 50) for a spec with ``cell_effects = "random"``:
    mu, tau (or tau[subgroup]), w, u (one tau), alpha, beta (with moderators),
    tau_cell, v and u_cell."""
    from bayes_poem.dims import CELL, STUDY

    rng = np.random.default_rng(seed)
    shape = (2, 50)
    n_s, n_d, n_c = len(spec.studies), len(spec.subgroups), len(spec.cell_labels)
    by_subgroup = spec.study_heterogeneity == "by_subgroup"
    tau = np.abs(rng.normal(0.5, 0.05, (*shape, n_d) if by_subgroup else shape))
    w = rng.normal(0, 1, (*shape, n_s))
    tau_cell = np.abs(rng.normal(0.4, 0.05, shape))
    v = rng.normal(0, 1, (*shape, n_c))
    post = xr.Dataset({
        "mu": (("chain", "draw"), rng.normal(0.8, 0.1, shape)),
        "tau": (("chain", "draw", SUBGROUP) if by_subgroup else ("chain", "draw"), tau),
        "w": (("chain", "draw", STUDY), w),
        "alpha": (("chain", "draw", SUBGROUP), rng.normal(0, 0.3, (*shape, n_d))),
        "tau_cell": (("chain", "draw"), tau_cell),
        "v": (("chain", "draw", CELL), v),
        "u_cell": (("chain", "draw", CELL), tau_cell[..., None] * v),
    }, coords={SUBGROUP: spec.subgroups, STUDY: spec.studies, CELL: spec.cell_labels})
    if not by_subgroup:
        post["u"] = (("chain", "draw", STUDY), tau[..., None] * w)
    if spec.moderator_terms:
        post["beta"] = (("chain", "draw", MODERATOR),
                        rng.normal(0.3, 0.1, (*shape, len(spec.moderator_terms))))
        post = post.assign_coords({MODERATOR: spec.moderator_terms})
    return fit_over(spec, post)
