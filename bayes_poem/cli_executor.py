"""The executor of a sensitivity grid from the command line (``--jobs``, ``--scheduler``):
serial, local worker processes, or a Dask scheduler, each with the ``shutdown`` that
ends it (``abort`` stops the workers' running fits too); the workers' signal handling
and what they inherit loaded (:func:`preload`).

Used by ``cli``'s ``sensitivity`` (one outcome and joint); Dask is imported only when
``--scheduler`` is given.
"""

from __future__ import annotations

import argparse

from bayes_poem.errors import SpecError

__all__ = ["SCHEDULER_TIMEOUT", "grid_executor", "preload", "worker_signals"]

SCHEDULER_TIMEOUT = 10.0  # seconds to reach a Dask scheduler


def grid_executor(args: argparse.Namespace, n_variants: int):
    """The executor for the grid: Dask scheduler, local processes, or serial.

    A scheduler that cannot be reached (malformed address, unknown scheme,
    refused or timed-out connection) is a user error: one line, before sampling.
    """
    if args.scheduler is not None:
        try:
            from distributed import Client
        except ImportError:
            raise SpecError("--scheduler needs the 'distributed' package "
                            "(pip install 'bayes-poem[dask]')") from None
        import copy

        import dask

        # A Client sets dask's global 'scheduler' in its constructor and unsets it on
        # close; one that fails to connect never closes, so its setting is undone here.
        config = copy.deepcopy(dask.config.config)
        try:
            client = Client(args.scheduler, timeout=SCHEDULER_TIMEOUT)
        except (OSError, ValueError, TypeError, TimeoutError) as err:
            dask.config.config.clear()
            dask.config.config.update(config)
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise SpecError(f"--scheduler {args.scheduler}: cannot connect ({reason})") from None
        return client.get_executor(), lambda abort=False: client.close()
    if args.jobs == 1 or n_variants <= 1:
        return None, lambda abort=False: None
    import concurrent.futures as cf

    preload()  # before the workers fork from this process
    pool = cf.ProcessPoolExecutor(max_workers=min(args.jobs, n_variants),
                                  initializer=worker_signals)

    def shutdown(abort: bool = False) -> None:
        """Wait for the workers; on ``abort`` end them (a stopped grid must not run on)."""
        if abort:
            # A worker finishes its running fit before it reads the shutdown request;
            # the pool has no public way to stop it, so its processes are terminated.
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)

    return pool, shutdown


def preload() -> None:
    """Load here what every fit and figure of a grid loads on first use, so that the
    local workers, forked from this process, start with it instead of each loading it.

    The fit's modules, and xarray's first ``Dataset``, which imports the array
    libraries installed beside it (Dask: about 0.2 s), which each worker would
    otherwise pay on its first variant. Nothing here samples or starts a thread
    (forking a process with running threads is unsafe).
    """
    import numpy as np
    import xarray as xr

    import bayes_poem.backends.compiled  # noqa: F401
    import bayes_poem.nutpie_trace  # noqa: F401
    import bayes_poem.results  # noqa: F401
    import bayes_poem.sensitivity_plots  # noqa: F401

    xr.Dataset({"x": ("draw", np.zeros(1))})


def worker_signals() -> None:
    """In a grid worker: Ctrl-C is the main process's to handle (it ends the workers),
    and SIGTERM ends the worker at once, as for any process."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
