"""Start-up time of the ``bayes-poem`` command, each command in a fresh process.

In one run, against the interpreter's own start-up (``python -c pass``, measured in
the same run so that a busy machine shows in both): ``bayes-poem --version``,
``bayes-poem datasets`` and ``bayes-poem check`` of a shipped CSV
(``bayes_poem/datasets/sed_synthetic.csv``). Each command is run once untimed to
warm the file cache, then REPEATS times, alternating, and the medians are shown
with their goals (issue 14): ``--version`` and ``datasets`` at most 0.3 s,
``check`` of a CSV at most 1.5 s. The package measured is this checkout's
(``PYTHONPATH`` is set to it). Exit status 1 if a goal is missed.

    python benchmarks/startup.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from _timing import bayes_poem_command, time_process

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "bayes_poem" / "datasets" / "sed_synthetic.csv"

# name -> (command, goal in seconds or None)
COMMANDS: dict[str, tuple[list[str], float | None]] = {
    "python -c pass": ([sys.executable, "-c", "pass"], None),
    "bayes-poem --version": (bayes_poem_command() + ["--version"], 0.3),
    "bayes-poem datasets": (bayes_poem_command() + ["datasets"], 0.3),
    f"bayes-poem check {CSV.relative_to(ROOT)}": (bayes_poem_command() + ["check", str(CSV)],
                                                  1.5),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for name, (command, _) in COMMANDS.items():  # warm the file cache
        time_process(name, command, ROOT)
    for _ in range(args.repeats):
        for name, (command, _) in COMMANDS.items():
            times[name].append(time_process(name, command, ROOT))
    baseline = statistics.median(times["python -c pass"])
    missed = []
    print(f"median wall time of {args.repeats} fresh processes (min-max), "
          f"this checkout: {ROOT}")
    for name, (_, goal) in COMMANDS.items():
        median = statistics.median(times[name])
        verdict = ""
        if goal is not None:
            ok = median <= goal
            verdict = f"  goal <= {goal:.1f} s: {'OK' if ok else 'MISSED'}"
            if not ok:
                missed.append(name)
        extra = "" if goal is None else f"  (+{median - baseline:.3f} s over python)"
        print(f"  {name:<58} {median:6.3f} s ({min(times[name]):.3f}-{max(times[name]):.3f})"
              f"{extra}{verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
