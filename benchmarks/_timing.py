"""Shared by the command-line benchmarks: how to call ``bayes-poem`` and time a process."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def bayes_poem_command() -> list[str]:
    """The installed ``bayes-poem`` script beside this interpreter, else ``-m``."""
    exe = BIN / "bayes-poem"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "bayes_poem.cli"]


def time_process(name: str, command: list[str], cwd: Path) -> float:
    """Wall time of ``command`` in a fresh process; exits with its stderr if it fails."""
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def alternate_medians(kinds: list[str], time_one, repeats: int) -> dict[str, float]:
    """Median wall time per kind: each kind once untimed (warming the on-disk caches),
    then ``repeats`` rounds alternating the kinds, in a scratch directory removed after.

    ``time_one(kind, workdir)`` times one fresh process. Prints each kind's runs.
    """
    workdir = Path(tempfile.mkdtemp(prefix="bayes_poem_bench_"))
    try:
        for kind in kinds:  # warm the caches
            time_one(kind, workdir)
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        for _ in range(repeats):
            for kind in kinds:
                times[kind].append(time_one(kind, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    width = max(map(len, kinds))
    for kind, values in times.items():
        print(f"{kind:<{width}} median {medians[kind]:6.2f} s   runs: "
              + " ".join(f"{v:.2f}" for v in values))
    return medians


def median_seconds(function, repeats: int) -> float:
    """Median wall seconds of ``repeats`` calls of ``function()`` in this process."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
