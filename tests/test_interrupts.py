"""Class 1 of "no silent wrong results": an interrupted computation writes nothing.

Each test runs ``bayes-poem`` as a user does, in a subprocess, waits for the
progress line that says sampling started, lets it run into the phase under
test, sends SIGINT or SIGTERM, and asserts: exit 130 or 143, one line after the
progress lines (no traceback), no results directory, no staging directory and
no lock file left beside it.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.mcmc

SPEC = ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
        "[sampler]\nchains = 2\nseed = 1\n")
# Warm-up of a million iterations, or a million draws after 20 warm-up ones: either
# phase lasts far longer than the test waits before it signals.
PHASES = {"warmup": "tune = 1000000\ndraws = 10\n", "draws": "tune = 20\ndraws = 1000000\n"}
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Cli:
    """A ``bayes-poem`` subprocess whose stderr is read line by line."""

    def __init__(self, args, cwd: Path) -> None:
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        self.proc = subprocess.Popen([sys.executable, "-m", "bayes_poem.cli", *map(str, args)],
                                     cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.err = b""

    def wait_for(self, text: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.err:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} on stderr: {self.err.decode()}"
            ready, _, _ = select.select([self.proc.stderr], [], [], left)
            chunk = os.read(self.proc.stderr.fileno(), 65536) if ready else b""
            if ready and not chunk:
                raise AssertionError(f"exited before {text!r}: {self.err.decode()}")
            self.err += chunk

    def finish(self, timeout: float = 60.0) -> tuple[int, str, str]:
        out, rest = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(), (self.err + rest).decode()


def _after_progress(err: str) -> list[str]:
    return [line for line in err.splitlines() if not line.startswith("[bayes-poem]")]


def _leftovers(directory: Path, name: str) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(f".{name}."))


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_class1_interrupt_while_sampling_writes_nothing(tmp_path, phase, signum):
    (tmp_path / "long.toml").write_text(SPEC + PHASES[phase])
    cli = Cli(["run", "long.toml", "--out", "res"], tmp_path)
    cli.wait_for("] sampling ")
    time.sleep(2.0)  # well inside the phase: warm-up of 20 iterations takes milliseconds
    cli.proc.send_signal(signum)
    code, out, err = cli.finish()
    assert code == EXIT[signum], err
    assert _after_progress(err) == [
        f"bayes-poem: interrupted ({signal.Signals(signum).name}); nothing was written"]
    assert "Traceback" not in err and "Results written" not in out
    assert not (tmp_path / "res").exists()
    assert _leftovers(tmp_path, "res") == []


def test_class1_killed_run_leaves_staging_that_the_next_run_removes(tmp_path):
    """SIGKILL cannot be handled: its staging directory is removed by the next writer."""
    (tmp_path / "long.toml").write_text(SPEC + PHASES["draws"])
    cli = Cli(["run", "long.toml", "--out", "res"], tmp_path)
    cli.wait_for("] sampling ")
    cli.proc.kill()
    cli.finish()
    assert [n for n in _leftovers(tmp_path, "res") if n.startswith(".res.tmp-")]
    (tmp_path / "quick.toml").write_text(
        SPEC + "tune = 200\ndraws = 200\n")
    code, _, err = Cli(["run", "quick.toml", "--out", "res", "--quiet"], tmp_path).finish(120)
    assert code == 0, err
    assert (tmp_path / "res" / "summary.csv").is_file()
    assert _leftovers(tmp_path, "res") == []


def test_class3_concurrent_runs_into_one_out(tmp_path):
    """Two runs into one --out: the second is refused at once, before sampling."""
    (tmp_path / "long.toml").write_text(SPEC + PHASES["draws"])
    first = Cli(["run", "long.toml", "--out", "res"], tmp_path)
    first.wait_for("] sampling ")
    (tmp_path / "quick.toml").write_text(SPEC + "tune = 100\ndraws = 100\n")
    code, out, err = Cli(["run", "quick.toml", "--out", "res"], tmp_path).finish(120)
    assert code == 2
    assert err.count("\n") == 1 and "another bayes-poem process (pid" in err
    assert "is writing it" in err and "res" in err and "Results written" not in out
    first.proc.send_signal(signal.SIGINT)
    code, _, err = first.finish()
    assert code == 130, err
    assert not (tmp_path / "res").exists() and _leftovers(tmp_path, "res") == []


TRIAL = ('analysis = "meta"\n[data]\ndataset = "poem_anterior_posterior_rcts"\n'
         'outcomes = ["clinical_success"]\n'
         'studies = { clinical_success = ["Khashab2020_long", "Tan2018"] }\n'
         "[sampler]\ndraws = 1000000\ntune = 20\nchains = 2\nseed = 1\n")
OTHER_COMMANDS = {
    # serial and parallel grids: the workers are ended with the main process
    "sensitivity": (["sensitivity", "long.toml", "--out", "res"], SPEC + PHASES["draws"],
                    "sensitivity grid:"),
    "sensitivity_jobs2": (["sensitivity", "long.toml", "--out", "res", "--jobs", "2"],
                          SPEC + PHASES["draws"], "sensitivity grid:"),
    "report": (["report", "long.toml", "--out", "res"], SPEC + PHASES["draws"], "] sampling "),
    "trial": (["trial", "long.toml", "--out", "res"], TRIAL, "] meta:"),
}


@pytest.mark.parametrize("command", OTHER_COMMANDS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_class1_every_command_stops_cleanly(tmp_path, command, signum):
    args, spec, started = OTHER_COMMANDS[command]
    (tmp_path / "long.toml").write_text(spec)
    cli = Cli(args, tmp_path)
    cli.wait_for(started)
    time.sleep(3.0)
    listed = subprocess.run(["pgrep", "-P", str(cli.proc.pid)], capture_output=True, text=True)
    children = [int(pid) for pid in listed.stdout.split()]
    if command == "sensitivity_jobs2":
        assert children, "the grid runs in worker processes"
    cli.proc.send_signal(signum)
    code, out, err = cli.finish()
    assert code == EXIT[signum], err
    assert [pid for pid in children if _alive(pid)] == []  # no worker left running
    lines = _after_progress(err.replace("\r", "\n"))
    assert [line for line in lines if line.strip()] == [
        f"bayes-poem: interrupted ({signal.Signals(signum).name}); nothing was written"]
    assert "Traceback" not in err and "written to" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.toml"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has ended; it only waits to be reaped by its new parent
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
