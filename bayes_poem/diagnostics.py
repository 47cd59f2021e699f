"""Sampler diagnostics checked after every fit.

Thresholds follow Vehtari et al. (2021, Bayesian Analysis 16:667): rank-normalised
split R-hat <= 1.01, bulk and tail ESS >= 100 per chain, no divergent
transitions, and E-BFMI >= 0.3 in every chain. A problem issues a
:class:`~bayes_poem.errors.ConvergenceWarning`; the CLI reports it and, under
``--strict``, exits with status 3.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd

from bayes_poem.errors import ConvergenceWarning

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100
BFMI_MIN = 0.3


@dataclass(frozen=True)
class Diagnostics:
    """Per-variable R-hat and ESS, divergences, E-BFMI, and the problems found."""

    table: pd.DataFrame
    divergences: int
    bfmi: tuple[float, ...]
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary_line(self) -> str:
        return (
            f"max R-hat {self.table['r_hat'].max():.3f}, min bulk ESS "
            f"{self.table['ess_bulk'].min():.0f}, min tail ESS {self.table['ess_tail'].min():.0f}, "
            f"divergences {self.divergences}, min E-BFMI {min(self.bfmi):.2f}"
        )


def check_fit(idata: az.InferenceData, *, warn: bool = True) -> Diagnostics:
    """Compute diagnostics for every posterior variable and warn on problems."""
    posterior = idata.posterior
    n_chains = posterior.sizes["chain"]
    rhat = az.rhat(posterior)
    ess_bulk = az.ess(posterior, method="bulk")
    ess_tail = az.ess(posterior, method="tail")
    rows = []
    for name in posterior.data_vars:
        rows.append({
            "variable": name,
            "r_hat": float(np.nanmax(rhat[name].values)),
            "ess_bulk": float(np.nanmin(ess_bulk[name].values)),
            "ess_tail": float(np.nanmin(ess_tail[name].values)),
        })
    table = pd.DataFrame(rows).set_index("variable")
    divergences = int(idata.sample_stats["diverging"].sum())
    bfmi = tuple(float(b) for b in az.bfmi(idata)) if "energy" in idata.sample_stats else (
        float("nan"),
    )

    problems = []
    bad_rhat = table.index[table["r_hat"] > RHAT_MAX].tolist()
    if bad_rhat and n_chains > 1:
        problems.append(f"R-hat > {RHAT_MAX} for {', '.join(bad_rhat)}")
    min_ess = ESS_PER_CHAIN_MIN * n_chains
    for kind in ("ess_bulk", "ess_tail"):
        low = table.index[table[kind] < min_ess].tolist()
        if low:
            problems.append(f"{kind.replace('_', ' ')} < {min_ess} for {', '.join(low)}")
    if divergences:
        problems.append(f"{divergences} divergent transition(s)")
    low_bfmi = [i for i, b in enumerate(bfmi) if b < BFMI_MIN]
    if low_bfmi:
        problems.append(f"E-BFMI < {BFMI_MIN} in chain(s) {', '.join(map(str, low_bfmi))}")
    diagnostics = Diagnostics(table, divergences, bfmi, tuple(problems))
    if warn and problems:
        warnings.warn("sampler diagnostics: " + "; ".join(problems), ConvergenceWarning,
                      stacklevel=2)
    return diagnostics
