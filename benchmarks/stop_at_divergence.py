"""Stopping a doomed attempt at its first divergence after warm-up, against running it to the end.

An adaptive fit (``target_accept`` unset) discards every attempt but the last that
has a divergence; ``bayes_poem.sampling`` stops such an attempt (not the ladder's
last) as soon as a chain diverges after warm-up. Two measurements, each with
stopping (the default) and without it (every attempt ``sampling._nutpie_once`` run
to the end, as before), alternately in this one process:

- ``--grid``: the sensitivity grid ``benchmarks/sed_grid_24.toml`` (SED clinical
  success, SYNTHETIC data; 24 warm-started variants + main) through ``bayes-poem
  sensitivity --jobs 1 --quiet``, with every nutpie attempt timed: how many were
  stopped, the seconds of the discarded attempts and of the whole command;
- the default: one fit whose first rung (0.8) diverges, of a larger SYNTHETIC
  model: ``--studies`` (default 300) single-group studies of 5-60 patients
  (uniform) spread over 4 subgroups a, b, c, d in turn, events ~ Binomial(n,
  logistic(logit(0.7) + 0.5 w)), w ~ N(0, 1), data seed 20261127; no true
  subgroup differences, so ``sigma_subgroup`` piles up near 0 and the funnel there
  diverges at 0.8 (at seeds 0 and 1: 11 and 13 divergences). 4 chains x 1000 draws
  after 1000 tuning steps, sampler seed ``--seed``. The draws of the two fits are
  checked bit-for-bit identical. Without a progress bar (as here) an attempt is
  watched through nutpie's progress counts, whatever its size.

Wall seconds and this process's CPU seconds (user + system) are printed: on a
shared machine the CPU time moves less with the other processes' load.

    PYTHONPATH=$PWD python benchmarks/stop_at_divergence.py [--studies 300] [--repeats 3]
    PYTHONPATH=$PWD python benchmarks/stop_at_divergence.py --grid [--repeats 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")

HERE = Path(__file__).resolve().parent
DATA_SEED = 20261127


def simulate(n_studies: int, folder: Path) -> Path:
    """The SYNTHETIC table and its spec; returns the spec's path."""
    rng = np.random.default_rng(DATA_SEED)
    total = rng.integers(5, 61, size=n_studies)
    logit = np.log(0.7 / 0.3) + 0.5 * rng.normal(size=n_studies)
    events = rng.binomial(total, 1.0 / (1.0 + np.exp(-logit)))
    rows = "".join(f"S{i + 1:05d},{'abcd'[i % 4]},success,{e},{n}\n"
                   for i, (e, n) in enumerate(zip(events, total, strict=True)))
    (folder / "studies.csv").write_text("study,subgroup,outcome,events,total\n" + rows)
    spec = folder / "spec.toml"
    spec.write_text(f"""title = "SYNTHETIC: {n_studies} simulated studies in 4 subgroups"

[data]
path = "studies.csv"
outcome = "success"
synthetic = true
label = "SYNTHETIC: simulated by benchmarks/stop_at_divergence.py, seed {DATA_SEED}"
""")
    return spec


class Timed:
    """Wraps the attempts of ``sampling`` (``_nutpie_counted``, the watched attempts
    without a progress bar, and ``_nutpie_once``): the seconds and outcome of each.
    Without ``stopping``, every attempt is ``_nutpie_once`` run to the end."""

    def __init__(self, once: Callable, counted: Callable, stopping: bool):
        self.once, self.counted, self.stopping = once, counted, stopping
        self.rows: list[tuple[float, bool, str, float]] = []

    def __call__(self, model, settings, target, initial_step=None, *, stop=False):
        return self._timed(lambda: self.once(model, settings, target, initial_step,
                                             stop=stop and self.stopping),
                           settings, target, stop)

    def watched(self, model, settings, target, initial_step=None):
        if not self.stopping:
            return self(model, settings, target, initial_step)
        return self._timed(lambda: self.counted(model, settings, target, initial_step),
                           settings, target, True)

    def _timed(self, attempt, settings, target, stop):
        from bayes_poem.sampling import Stopped

        started = time.perf_counter()
        result = attempt()
        seconds = time.perf_counter() - started
        if isinstance(result, Stopped):
            outcome = f"stopped ({result.draws} of {settings.chains * settings.draws} draws)"
        else:
            outcome = f"{int(result.sample_stats['diverging'].sum())} divergences"
        self.rows.append((target, stop, outcome, seconds))
        return result


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def run(stopping: bool, action: Callable[[], object]) -> tuple[float, float, Timed, object]:
    from bayes_poem import sampling

    real_once, real_counted = sampling._nutpie_once, sampling._nutpie_counted
    timed = Timed(real_once, real_counted, stopping)
    sampling._nutpie_once, sampling._nutpie_counted = timed, timed.watched
    try:
        wall, cpu = time.perf_counter(), _cpu()
        result = action()
        return time.perf_counter() - wall, _cpu() - cpu, timed, result
    finally:
        sampling._nutpie_once, sampling._nutpie_counted = real_once, real_counted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", action="store_true")
    parser.add_argument("--studies", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from bayes_poem.sampling import SamplerSettings
    from bayes_poem.specfile import load_spec

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.grid:
            from bayes_poem.cli import main as cli

            runs = itertools.count()

            def action():
                return cli(["sensitivity", str(HERE / "sed_grid_24.toml"), "--jobs", "1",
                            "--quiet", "--out", str(tmp_path / f"out{next(runs)}")])
            label = "bayes-poem sensitivity benchmarks/sed_grid_24.toml --jobs 1 --quiet"
        else:
            spec = load_spec(simulate(args.studies, tmp_path)).model_spec()
            settings = SamplerSettings(seed=args.seed)
            spec.fit(dataclasses.replace(settings, draws=10, tune=10))  # warm the caches

            def action():
                return spec.fit(settings)
            label = f"{args.studies} SYNTHETIC studies, seed {args.seed}, 4 x (1000 + 1000)"
        print(label)
        seconds: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        fits = {}
        for _ in range(args.repeats):
            for stopping in (False, True):
                wall, cpu, timed, result = run(stopping, action)
                seconds[stopping].append((wall, cpu))
                fits[stopping] = result
                # an attempt that may stop (not the last) is discarded iff it diverged
                discarded = [r for r in timed.rows if r[1] and r[2] != "0 divergences"]
                print(f"  {'stopping' if stopping else 'to the end'}: {wall:.2f} s wall, "
                      f"{cpu:.2f} s CPU; {len(timed.rows)} attempts, "
                      f"{sum(1 for r in timed.rows if r[2].startswith('stopped'))} stopped; "
                      f"discarded attempts {sum(r[3] for r in discarded):.3f} s")
                if not args.grid:
                    for target, stop, outcome, secs in timed.rows:
                        print(f"    {target:g}{' (may stop)' if stop else ''}: "
                              f"{outcome}, {secs:.2f} s")
        for stopping in (False, True):
            walls, cpus = zip(*seconds[stopping], strict=True)
            print(f"median {'stopping' if stopping else 'to the end'}: "
                  f"{statistics.median(walls):.2f} s wall, {statistics.median(cpus):.2f} s CPU")
        if not args.grid:
            same = all(np.array_equal(fits[True].posterior[name].values, values.values)
                       for name, values in fits[False].posterior.data_vars.items())
            print(f"same draws: {same}; kept target "
                  f"{fits[True].settings.target_accept:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
