"""The run log: what a command wrote on stderr, with timestamps, kept as ``run.log``.

:func:`capture` (entered by :func:`bayes_poem.cli.main` around a command) puts a
tee in front of ``sys.stderr``: every line still reaches the terminal unchanged,
and a copy is kept with its UTC time, ``2026-11-27T15:30:01.123Z <line>``. The
copy is what :meth:`bayes_poem.outputs.Target.commit` writes as :data:`RUN_LOG`
beside the results, through the same atomic writer (a command that fails writes
no results directory, hence no log either).

Kept: the ``[bayes-poem]`` progress lines, Python warnings (they are shown on
``sys.stderr``), messages of libraries that write there through Python, and
:func:`note` lines (for the log only: e.g. convergence warnings that the
command reports in its summary instead of on stderr). A line redrawn with
carriage returns (a terminal's progress bar) is kept once, as last drawn;
terminal escape sequences are dropped. Output that bypasses Python's
``sys.stderr`` (a C library writing to file descriptor 2, worker processes)
is not captured.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from bayes_poem._version import __version__

RUN_LOG = "run.log"

_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RunLog:
    """Timestamped lines of one command."""

    def __init__(self, command: Sequence[str] = ()) -> None:
        self.lines: list[str] = []
        self._pending = ""
        self._pending_at = ""
        self.note(f"bayes-poem {__version__}: bayes-poem {' '.join(map(str, command))}".rstrip())

    def note(self, line: str) -> None:
        """Add ``line`` to the log only (nothing is written to stderr)."""
        for part in str(line).splitlines() or [""]:
            self.lines.append(f"{_now()} {part}")

    def feed(self, text: str) -> None:
        """Record text written to stderr: complete lines are kept, ``\\r`` redraws."""
        for char_run in re.split(r"(\r\n|\n|\r)", _ESCAPES.sub("", text)):
            if char_run in ("\n", "\r\n"):
                self.lines.append(f"{self._pending_at or _now()} {self._pending}".rstrip())
                self._pending, self._pending_at = "", ""
            elif char_run == "\r":  # the line is drawn again: keep only its last state
                self._pending = ""
            elif char_run:
                if not self._pending_at:
                    self._pending_at = _now()
                self._pending += char_run

    def text(self) -> str:
        """The log so far (an unfinished line included), one line per entry."""
        lines = list(self.lines)
        if self._pending.strip():
            lines.append(f"{self._pending_at} {self._pending}")
        return "\n".join(lines) + "\n"


class _Tee:
    """``sys.stderr`` with a copy of what is written going to a :class:`RunLog`."""

    def __init__(self, stream: TextIO, log: RunLog) -> None:
        self._stream = stream
        self._log: RunLog | None = log

    def write(self, text: str) -> int:
        if self._log is not None:
            self._log.feed(text)
        return self._stream.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def detach_log(self) -> None:
        """Stop copying (a handler that kept a reference still reaches the stream)."""
        self._log = None

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, flush, encoding, ...
        return getattr(self._stream, name)


_current: list[RunLog] = []


def current() -> RunLog | None:
    """The log of the command being run, or None (e.g. when used from Python)."""
    return _current[-1] if _current else None


def note(line: str) -> None:
    """Add ``line`` to the current log, if any (nothing is written to stderr)."""
    log = current()
    if log is not None:
        log.note(line)


@contextlib.contextmanager
def capture(command: Sequence[str] = ()) -> Iterator[RunLog]:
    """Keep a :class:`RunLog` of ``sys.stderr`` for the duration of the block."""
    log = RunLog(command)
    stream = sys.stderr
    tee = _Tee(stream, log)
    sys.stderr = tee  # type: ignore[assignment]
    _current.append(log)
    try:
        yield log
    finally:
        _current.remove(log)
        tee.detach_log()
        if sys.stderr is tee:
            sys.stderr = stream
