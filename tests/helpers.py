"""Helpers shared by several test modules."""

from __future__ import annotations

import arviz as az

from bayes_poem.cli import main

QUANTILES = (0.025, 0.5, 0.975)


def run_cli(args, capsys) -> tuple[int, str, str]:
    """Run ``bayes-poem`` in-process: exit status, stdout, stderr."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


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
