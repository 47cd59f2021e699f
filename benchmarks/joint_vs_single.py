"""Cost of the joint model: ``bayes-poem run`` of the joint SED spec against one outcome.

Both commands fit the SYNTHETIC SED data (4 chains x 1000 draws, 1000 tuning
steps) in a fresh process each time, as a user runs them: wall time includes
interpreter start-up, imports, sampling and writing results (the joint run also
draws one figure per disorder). ``single`` is ``models/sed_clinical_success.toml``
(one outcome, 17 rows); ``joint`` is ``models/sed_joint.toml`` (both outcomes, 34
rows, correlated study effects). Each is run once untimed to warm the on-disk
caches (numba's compiled kernels included), then REPEATS times, alternating; the
medians are compared. Nothing compiles in either.

Goal (issue 12): ratio = joint / single <= 2.

    python benchmarks/joint_vs_single.py [--repeats N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _timing import alternate_medians, bayes_poem_command, time_process

ROOT = Path(__file__).resolve().parents[1]
SPECS = {"single": ROOT / "models" / "sed_clinical_success.toml",
         "joint": ROOT / "models" / "sed_joint.toml"}


def _time(kind: str, workdir: Path) -> float:
    command = bayes_poem_command() + ["run", str(SPECS[kind]), "--out", str(workdir / kind),
                                      "--force", "--quiet"]
    return time_process(kind, command, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    medians = alternate_medians(["single", "joint"], _time, args.repeats)
    ratio = medians["joint"] / medians["single"]
    print(f"ratio joint / single = {ratio:.3f}   (goal <= 2)")
    print(json.dumps({"ratio": round(ratio, 4), "median_seconds": medians,
                      "repeats": args.repeats}))


if __name__ == "__main__":
    main()
