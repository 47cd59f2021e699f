"""Cost of the trials' meta-analysis against the core fit, each in a fresh process.

``bayes-poem trial models/anterior_vs_posterior_meta.toml`` (three outcomes of the
shipped comparative RCTs, one arm-based binomial meta-analysis each, 4 chains x
2000 draws, 1000 tuning steps) against ``bayes-poem run
models/sed_clinical_success.toml`` (one SED fit on SYNTHETIC data, 4 chains x
1000 draws), as a user runs them: wall time includes interpreter start-up,
imports, sampling, figures and writing results. Both sample compiled kernels
loaded from numba's disk cache (bayes_poem.backends.arm_density and
bayes_poem.backends.density); nothing compiles per process. Each command is run once
untimed to warm the caches, then REPEATS times, alternating, and the medians
are compared.

Goal: ratio = trial / run <= 3 (it was about 15 while the trial models were
compiled by nutpie in every process).

    python benchmarks/trial_vs_run.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _timing import alternate_medians, bayes_poem_command, time_process

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "trial": ["trial", str(ROOT / "models" / "anterior_vs_posterior_meta.toml")],
    "run": ["run", str(ROOT / "models" / "sed_clinical_success.toml")],
}


def _time(kind: str, workdir: Path) -> float:
    command = bayes_poem_command() + COMMANDS[kind] + ["--out", str(workdir / kind),
                                                       "--force", "--quiet"]
    return time_process(kind, command, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    medians = alternate_medians(list(COMMANDS), _time, args.repeats)
    ratio = medians["trial"] / medians["run"]
    print(f"ratio trial / run = {ratio:.3f}   (goal <= 3)")
    print(json.dumps({"ratio": round(ratio, 4), "median_seconds": medians,
                      "repeats": args.repeats}))


if __name__ == "__main__":
    main()
