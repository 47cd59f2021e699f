"""Signals during computations and writes: never a partial result.

Samplers catch ``KeyboardInterrupt`` and hand back the trace drawn so far
(nutpie's blocking ``sample`` and ``pm.sample`` both do). :func:`watch` records
a SIGINT or SIGTERM that arrives while it is active, so the caller can refuse
whatever the interrupted call returned and raise :class:`~bayes_poem.errors.
Interrupted` instead. :func:`deferred` holds signals back while a results
directory is written, so a write is never cut half-way inside a library
(h5py, for one, reports errors of its own when interrupted mid-call); the
writer checks :func:`Watch.raise_if_signalled` between files and gives up
cleanly.

Handlers can only be installed from the main thread; elsewhere (a worker
thread, a Dask worker) these are no-ops and the host's handling stands.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from bayes_poem.errors import Interrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Watch:
    """The first signal seen while a :func:`watch` or :func:`deferred` block ran."""

    signum: int | None = None

    def raise_if_signalled(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)


def _handled(signum: int) -> bool:
    """Whether the process handles ``signum`` in Python (not ignored, not the OS default).

    SIGINT's default in Python is ``default_int_handler`` (a KeyboardInterrupt);
    SIGTERM is handled only where a program chose to (the CLI does), so a library
    user's SIGTERM keeps killing the process as they expect.
    """
    current = signal.getsignal(signum)
    return callable(current)


@contextlib.contextmanager
def _recording(interrupt: bool) -> Iterator[Watch]:
    """Install a handler for SIGINT/SIGTERM (where Python handles them) that records the
    first signal and, if ``interrupt``, raises :class:`Interrupted`; restore on exit.

    Outside the main thread no handler can be installed and nothing is recorded.
    """
    seen = Watch()
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def handler(signum: int, frame: object) -> None:
        if seen.signum is None:
            seen.signum = signum
        if interrupt:
            raise Interrupted(signum)

    previous = {s: signal.getsignal(s) for s in SIGNALS if _handled(s)}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield seen
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@contextlib.contextmanager
def watch() -> Iterator[Watch]:
    """Record SIGINT/SIGTERM, then interrupt the running call as a KeyboardInterrupt.

    On leaving the block the previous handlers are restored; if a signal was
    seen, :class:`Interrupted` is raised even when the call inside swallowed
    the KeyboardInterrupt and returned normally.
    """
    with _recording(interrupt=True) as seen:
        try:
            yield seen
        except KeyboardInterrupt:
            if seen.signum is None:  # raised by other means (e.g. a test), not a signal
                raise
            raise Interrupted(seen.signum) from None
    seen.raise_if_signalled()


@contextlib.contextmanager
def deferred() -> Iterator[Watch]:
    """Record SIGINT/SIGTERM without interrupting; the block polls ``raise_if_signalled``.

    A signal that arrives after the block's last poll (after the results were
    complete and in place) does not undo them: the command finishes normally.
    """
    with _recording(interrupt=False) as seen:
        yield seen


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """For a command-line program: SIGTERM raises :class:`Interrupted` like Ctrl-C.

    Without it SIGTERM kills the process at once, skipping the clean-up that
    removes staging directories.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
