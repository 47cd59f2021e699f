"""SYNTHETIC example data for the continuous-outcome analyses.

Per-arm Eckardt scores and LES pressures of the anterior-versus-posterior trials
are not published (Tan et al. 2018 report both arms pooled: Eckardt
6.2 +/- 1.3 -> 0.70 +/- 0.70; LES 37.5 +/- 6.7 -> 12.8 +/- 2.8 mmHg). Everything
here is **SYNTHETIC**: simulated, seeded, only loosely shaped like those pooled
figures, with no true difference between the arms unless asked. It exists to
demonstrate and test the methods and must never be read as trial results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_poem.trials.common import ANTERIOR, POSTERIOR

__all__ = ["DESCRIPTIONS", "SYNTHETIC_ECKARDT_SUMMARIES", "synthetic_eckardt_patients"]

DESCRIPTIONS = {  # what each example is: the SYNTHETIC banner (bayes_poem.banner)
    "synthetic_eckardt_patients": (
        "patient-level Eckardt scores simulated by bayes_poem (seeded) for illustration "
        "(example 'synthetic_eckardt_patients'), not published per-arm values or trial "
        "results"),
    "synthetic_eckardt_summaries": (
        "arm-level Eckardt summaries made up by bayes_poem for illustration (example "
        "'synthetic_eckardt_summaries'), not published per-arm values or trial results"),
}

SYNTHETIC_ECKARDT_SUMMARIES = {
    ANTERIOR: {"n": 31, "before_mean": 6.3, "before_sd": 1.4, "after_mean": 0.8,
               "after_sd": 0.7},
    POSTERIOR: {"n": 32, "before_mean": 6.1, "before_sd": 1.2, "after_mean": 0.6,
                "after_sd": 0.7},
}
"""SYNTHETIC arm-level Eckardt summaries (not published values)."""


def synthetic_eckardt_patients(*, n_anterior: int = 31, n_posterior: int = 32,
                               effect: float = 0.0, seed: int = 2018,
                               outliers: int = 0) -> pd.DataFrame:
    """SYNTHETIC patient-level Eckardt scores: columns arm, baseline, followup.

    Baseline ~ N(6.2, 1.3), follow-up ~ 0.7 + 0.1 (baseline - 6.2) + effect x
    [posterior] + N(0, 0.65) (continuous, not rounded). ``outliers`` adds that
    many follow-up values shifted by +6 (for the robust Student-t model).
    """
    rng = np.random.default_rng(seed)
    arms = [ANTERIOR] * n_anterior + [POSTERIOR] * n_posterior
    n = len(arms)
    baseline = rng.normal(6.2, 1.3, size=n)
    followup = (0.7 + 0.1 * (baseline - 6.2) + effect * (np.array(arms) == POSTERIOR)
                + rng.normal(0.0, 0.65, size=n))
    if outliers:
        idx = rng.choice(n, size=outliers, replace=False)
        followup[idx] += 6.0
    return pd.DataFrame({"arm": arms, "baseline": np.round(baseline, 2),
                         "followup": np.round(followup, 2)})
