"""Cost of meta-regression: ``bayes-poem run`` with two moderators against the plain fit.

Both commands fit the SED clinical-success model (SYNTHETIC data, 4 chains x 1000
draws, 1000 tuning steps) in a fresh process each time, as a user runs them: wall
time includes interpreter start-up, imports, sampling and writing results. The
moderator run adds ``year`` (numeric) and ``quality`` (categorical). Each command is
run once untimed to warm the on-disk caches, then REPEATS times, alternating, and
the medians are compared. Nothing compiles in either (the one cached density).

Goal (issue 10): ratio = with moderators / plain <= 1.2. (The issue's goal also
names cell effects, a random block not built yet.)

    python benchmarks/moderators_vs_plain.py [--repeats N]
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
MODERATED = '[model]\nmoderators = ["year", "quality"]\n'


def _spec(workdir: Path, kind: str) -> Path:
    text = (ROOT / "models" / "sed_clinical_success.toml").read_text(encoding="utf-8")
    if kind == "moderators":
        if "[model]" in text:
            text = text.replace("[model]\n", MODERATED, 1)
        else:
            text += "\n" + MODERATED
    path = workdir / f"{kind}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _time(kind: str, workdir: Path) -> float:
    command = bayes_poem_command() + ["run", str(_spec(workdir, kind)), "--out",
                                      str(workdir / kind), "--force", "--quiet"]
    return time_process(kind, command, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bayes_poem_bench_"))
    try:
        times: dict[str, list[float]] = {"plain": [], "moderators": []}
        for kind in times:  # warm the caches
            _time(kind, workdir)
        for _ in range(args.repeats):
            for kind in times:
                times[kind].append(_time(kind, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratio = medians["moderators"] / medians["plain"]
    for kind, values in times.items():
        print(f"{kind:<11} median {medians[kind]:6.2f} s   runs: "
              + " ".join(f"{v:.2f}" for v in values))
    print(f"ratio with moderators / plain = {ratio:.3f}   (goal <= 1.2)")
    print(json.dumps({"ratio": round(ratio, 4), "median_seconds": medians,
                      "repeats": args.repeats}))


if __name__ == "__main__":
    main()
