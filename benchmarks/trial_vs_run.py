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
import shutil
import statistics
import tempfile
from pathlib import Path

from _timing import bayes_poem_command, time_process

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
    workdir = Path(tempfile.mkdtemp(prefix="bayes_poem_bench_"))
    try:
        times: dict[str, list[float]] = {kind: [] for kind in COMMANDS}
        for kind in times:  # warm the caches
            _time(kind, workdir)
        for _ in range(args.repeats):
            for kind in times:
                times[kind].append(_time(kind, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["trial"] / medians["run"]
    for kind, values in times.items():
        print(f"{kind:<6} median {medians[kind]:6.2f} s   runs: "
              + " ".join(f"{v:.2f}" for v in values))
    print(f"ratio trial / run = {ratio:.3f}   (goal <= 3)")
    print(json.dumps({"ratio": round(ratio, 4), "median_seconds": medians,
                      "repeats": args.repeats}))


if __name__ == "__main__":
    main()
