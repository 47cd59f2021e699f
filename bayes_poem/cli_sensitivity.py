"""``bayes-poem sensitivity``: the prior-sensitivity grid of a spec (moved from ``cli``).

:func:`cmd_sensitivity` reserves the output, runs the grid (``[sensitivity]``:
:func:`bayes_poem.sensitivity.spec_plan`) on the executor of ``--jobs``/``--scheduler``
(:mod:`bayes_poem.cli_executor`) with a progress bar, and writes ``sensitivity.csv``,
``variants.csv``, ``psens.csv`` (power-scaling, when asked), the text and figures as
one bundle; a joint spec goes to :func:`bayes_poem.joint_sensitivity.sensitivity_command`.
Imports nothing heavy at module level (``bayes-poem --version`` stays fast).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import sys
import warnings

from bayes_poem.cli_executor import grid_executor
from bayes_poem.cli_support import EXIT_OK
from bayes_poem.cli_support import out_path as _out_path
from bayes_poem.cli_support import progress as _progress
from bayes_poem.cli_support import spec_inputs as _inputs
from bayes_poem.cli_support import validated_spec as _validated_spec
from bayes_poem.errors import ConvergenceWarning, SamplingError

__all__ = ["cmd_sensitivity"]


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from bayes_poem.outputs import check_target, reserve
    from bayes_poem.results_dir import default_out
    from bayes_poem.sensitivity import spec_plan
    from bayes_poem.specfile import load_spec

    analysis = load_spec(args.spec)
    out = _out_path(args, default_out("sensitivity", args.spec))
    inputs = _inputs(analysis, args.spec)
    check_target(out, force=args.force, protect=inputs)
    if getattr(analysis, "is_joint", False):  # [data] outcomes: the prior on rho
        from bayes_poem.joint_sensitivity import sensitivity_command

        return sensitivity_command(args, analysis, out, inputs,
                                   progress=lambda message: _progress(message, args.quiet),
                                   make_executor=lambda n: grid_executor(args, n))
    spec = _validated_spec(analysis)
    config, plan = spec_plan(analysis.sensitivity, spec, analysis.source)
    executor, shutdown = grid_executor(args, len(plan.variants))
    try:
        with reserve(out, force=args.force, protect=inputs, command="sensitivity") as target:
            _progress(f"{plan.summary()} of {analysis.source}", args.quiet)
            for note in plan.notes:
                _progress(note, args.quiet)
            text = _run_grid(args, analysis, spec, config, plan, executor, shutdown,
                             target)
    except BaseException:
        shutdown(abort=True)  # an interrupt or error: stop the workers' fits too
        raise
    shutdown()
    print(text)
    print(f"\nResults written to {out}/")
    return EXIT_OK


def _run_grid(args, analysis, spec, config, plan, executor, shutdown, target) -> str:
    """Fit the grid, then write its files into the reserved ``target``; the report text."""
    from bayes_poem.banner import synthetic_banner
    from bayes_poem.bundle import Bundle, write_bundle
    from bayes_poem.exports import table_files
    from bayes_poem.loglik import power_scaling
    from bayes_poem.results_dir import SENSITIVITY
    from bayes_poem.sensitivity import run_sensitivity, summarise_by_variant
    from bayes_poem.sensitivity_plots import figure_names, figure_png
    from bayes_poem.sensitivity_text import sensitivity_text
    from bayes_poem.structure import structure_line

    settings = dataclasses.replace(analysis.sampler, progress=False)
    bar_open = []  # non-empty while the progress bar's line is unfinished

    def progress(done: int, total: int, name: str) -> None:
        if args.quiet or not sys.stderr.isatty():  # a log: a line per variant, no \r
            _progress(f"variant {done}/{total} done: {name}", args.quiet)
        else:
            bar = "#" * int(30 * done / total)
            sys.stderr.write(f"\r[bayes-poem] [{bar:<30}] {done}/{total} {name[:40]:<40}")
            bar_open[:] = [True]
            if done == total:
                sys.stderr.write("\n")
                bar_open.clear()
            sys.stderr.flush()

    try:
        result = run_sensitivity(plan.variants, settings, contrasts=analysis.contrasts,
                                 interval=analysis.interval, threshold=config.threshold,
                                 executor=executor, progress=progress)
    except SamplingError as err:  # the main fit failed: no reference, no results
        raise SamplingError(f"{analysis.source}: {err}; nothing was written") from None
    finally:
        if bar_open:  # stopped mid-grid: end the bar's line before any message
            sys.stderr.write("\n")
    # The figures need the table only: local workers draw them while this process
    # writes the rest (a 300-dpi figure of a large grid takes about a second)
    pool = executor if isinstance(executor, cf.ProcessPoolExecutor) else None
    figure_args = ([a for a, _ in plan.axes], analysis.title)
    drawing = {name: pool.submit(figure_png, name, result.table, *figure_args)
               for name in figure_names(figure_args[0])} if pool else {}
    psens = None
    if config.psens:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            psens = power_scaling(result.main_fit or spec.fit(settings))
    by_variant = summarise_by_variant(result.table)
    banner = synthetic_banner(spec.table) if spec.table.is_synthetic else ""
    text = sensitivity_text(title=analysis.title, synthetic=banner,
                            result=result, by_variant=by_variant, psens=psens, plan=plan,
                            structure=structure_line(spec),
                            interval_label=analysis.interval.label)
    tables = {SENSITIVITY: result.table, "variants.csv": by_variant,
              **({"psens.csv": psens} if psens is not None else {})}
    files = table_files(tables, title=analysis.title, synthetic=spec.table.is_synthetic)
    spec_toml = analysis.resolved_toml(spec)
    figures = {name: _drawn(drawing.get(name), name, result.table, *figure_args)
               for name in figure_names(figure_args[0])}
    shutdown()  # the grid and its figures are done: release the workers
    write_bundle(Bundle(text=text, text_name="sensitivity.txt", tables=tables,
                        figures=figures, files=files, spec_toml=spec_toml), target)
    return text


def _drawn(future, name, *args) -> bytes:
    """A figure's PNG from the worker drawing it, or drawn here when no worker was
    asked or the pool was lost (a worker killed: the figure does not depend on it)."""
    from bayes_poem.sensitivity_plots import figure_png

    if future is not None:
        try:
            return future.result()
        except cf.BrokenExecutor:
            pass
    return figure_png(name, *args)
