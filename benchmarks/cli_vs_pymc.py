"""Speed of ``bayes-poem run`` against a plain PyMC script, measured in one run.

Both commands fit the SED clinical-success model (SYNTHETIC data) with the same
model, data, priors, draws (1000), tuning steps (1000) and chains (4), in a fresh
process each time, as a user runs them; wall time includes interpreter start-up,
imports, compilation (warm caches), sampling and writing results. Each command
is run once untimed to warm the on-disk caches (PyTensor's C cache, numba's
cache), then REPEATS times, alternating, and the medians are compared.

PyMC's default ``cores`` is half of ``multiprocessing.cpu_count()`` (it assumes
hyper-threads): 1 on a 2-core machine, so its chains run one after another. The
baseline is therefore timed with the default and with ``cores=2``; both ratios
are printed.

Goal (issue "Core toolkit"): ratio = bayes_poem / plain PyMC <= 0.5.

    python benchmarks/cli_vs_pymc.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _timing import alternate_medians, bayes_poem_command, time_process

ROOT = Path(__file__).resolve().parents[1]


def _command(kind: str, out: Path) -> list[str]:
    if kind == "plain_pymc_cores2":
        return [sys.executable, str(ROOT / "benchmarks" / "plain_pymc_sed.py"), str(out), "2"]
    if kind == "bayes_poem":
        return bayes_poem_command() + ["run", str(ROOT / "models" / "sed_clinical_success.toml"),
                         "--out", str(out), "--force", "--quiet"]
    return [sys.executable, str(ROOT / "benchmarks" / "plain_pymc_sed.py"), str(out)]


def _time(kind: str, workdir: Path) -> float:
    return time_process(kind, _command(kind, workdir / kind), workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    medians = alternate_medians(["bayes_poem", "plain_pymc", "plain_pymc_cores2"], _time,
                                args.repeats)
    ratio = medians["bayes_poem"] / medians["plain_pymc"]
    ratio2 = medians["bayes_poem"] / medians["plain_pymc_cores2"]
    print(f"ratio bayes_poem / plain PyMC (pm.sample defaults) = {ratio:.3f}   (goal <= 0.5)")
    print(f"ratio bayes_poem / plain PyMC (cores=2)            = {ratio2:.3f}")
    print(json.dumps({"ratio": round(ratio, 4), "ratio_cores2": round(ratio2, 4),
                      "median_seconds": medians, "repeats": args.repeats}))


if __name__ == "__main__":
    main()
