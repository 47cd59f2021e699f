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
import shutil
import statistics
import tempfile
from pathlib import Path

from _timing import bayes_poem_command, time_process

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
    workdir = Path(tempfile.mkdtemp(prefix="bayes_poem_bench_"))
    try:
        times: dict[str, list[float]] = {"single": [], "joint": []}
        for kind in times:  # warm the caches
            _time(kind, workdir)
        for _ in range(args.repeats):
            for kind in times:
                times[kind].append(_time(kind, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["joint"] / medians["single"]
    for kind, values in times.items():
        print(f"{kind:<8} median {medians[kind]:6.2f} s   runs: "
              + " ".join(f"{v:.2f}" for v in values))
    print(f"ratio joint / single = {ratio:.3f}   (goal <= 2)")
    print(json.dumps({"ratio": round(ratio, 4), "median_seconds": medians,
                      "repeats": args.repeats}))


if __name__ == "__main__":
    main()
