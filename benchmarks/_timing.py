"""Shared by the command-line benchmarks: how to call ``bayes-poem`` and time a process."""

from __future__ import annotations

import subprocess
import sys
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
