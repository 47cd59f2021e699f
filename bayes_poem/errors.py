"""The package's error and warning types.

Every error a user can cause derives from :class:`BayesPoemError`; the CLI turns
exactly these into one line on stderr and exit status 2. Anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


class BayesPoemError(Exception):
    """Root of every user-facing error raised by bayes_poem."""


class DataError(BayesPoemError, ValueError):
    """A study table is malformed; the message names the source, row and column."""


class SpecError(BayesPoemError, ValueError):
    """An analysis spec or model option is invalid; the message names the key."""


class OutputError(BayesPoemError, OSError):
    """Results cannot be written where asked (for example, the directory exists)."""


class SamplingError(BayesPoemError, RuntimeError):
    """A computation failed or was cut short: no results may be made from it.

    Raised for an interrupted sampler (a partial trace), non-finite draws, or
    diagnostics that cannot be computed (NaN). The CLI reports it in one line
    with exit status 4 and writes nothing.
    """


class Interrupted(KeyboardInterrupt):  # noqa: N818 - named for what happened, like its base
    """The process was asked to stop (SIGINT or SIGTERM) during a computation.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C stops on it too;
    ``signum`` says which signal. The CLI exits with ``128 + signum`` (130 for
    SIGINT, 143 for SIGTERM) and writes nothing.
    """

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = int(signum)
        super().__init__(signal.Signals(self.signum).name)


class ConvergenceWarning(UserWarning):
    """A fit has sampler diagnostics outside the accepted thresholds."""


@contextlib.contextmanager
def refit_reported(label: str) -> Iterator[None]:
    """Run another fit of an analysis (a refit) whose diagnostics its table reports.

    Its :class:`ConvergenceWarning` is not warned (the table shows the problems); a
    :class:`SamplingError` becomes one naming the refit: ``"{label}: {message}"``,
    e.g. ``"the fit without moderators (for R^2): ..."``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            yield
    except SamplingError as err:
        raise SamplingError(f"{label}: {err}") from None
