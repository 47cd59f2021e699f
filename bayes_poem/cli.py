"""Command-line interface: ``bayes-poem run|compare|sensitivity|bias|report|trial|check|datasets``.

Exit status (``docs/cli.md``): 0 success; 2 a user error, OS errors included
(one line on stderr, nothing written); 3 the fit finished and its results were
written, but sampler diagnostics failed and ``--strict`` was given; 4 the
computation failed (an incomplete or non-finite trace, diagnostics that cannot
be computed: one line, nothing written); 130 interrupted by SIGINT, 143 by
SIGTERM (one line, nothing written).

``sensitivity`` runs in :mod:`bayes_poem.cli_sensitivity` and ``report`` in
:mod:`bayes_poem.cli_report`; this module parses and dispatches.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from bayes_poem import runlog
from bayes_poem.cli_fit import fit_analysis, tau2_explained_refit, unpooled_refit
from bayes_poem.cli_report import cmd_report
from bayes_poem.cli_sensitivity import cmd_sensitivity
from bayes_poem.cli_support import (
    EXIT_DIAGNOSTICS,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USER_ERROR,
)
from bayes_poem.cli_support import out_path as _out_path
from bayes_poem.cli_support import progress as _progress
from bayes_poem.cli_support import spec_inputs as _inputs
from bayes_poem.cli_support import trial_inputs as _trial_inputs
from bayes_poem.cli_support import validated_spec as _validated_spec
from bayes_poem.errors import (
    BayesPoemError,
    Interrupted,
    SamplingError,
    SpecError,
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_USER_ERROR)


def _bubble_pngs(result, title: str) -> dict[str, bytes]:
    """``bubble_<moderator>.png`` for each numeric moderator (computed now, drawn now)."""
    from bayes_poem.plots import bubble_plot, to_png
    from bayes_poem.results_dir import bubble_file

    pngs = {}
    for moderator in result.spec.moderators:
        if moderator.kind != "numeric":
            continue
        curve, points = result.moderator_curve(moderator.name)
        png = to_png(bubble_plot(points=points, curve=curve, moderator=moderator.name,
                                 interval_label=result.interval.label, title=title))
        pngs[bubble_file(moderator.name)] = png
    return pngs


def cmd_run(args: argparse.Namespace) -> int:
    from bayes_poem.bundle import write_bundle
    from bayes_poem.outputs import check_target, reserve
    from bayes_poem.report_text import render
    from bayes_poem.results_dir import FOREST_MAX_STUDIES, default_out, run_bundle
    from bayes_poem.specfile import load_spec

    analysis = load_spec(args.spec)
    if getattr(analysis, "is_joint", False):  # [data] outcomes: the joint model
        from bayes_poem.joint_cli import run_joint

        return run_joint(args, analysis)
    out = _out_path(args, default_out("run", args.spec))
    inputs = _inputs(analysis, args.spec)
    check_target(out, force=args.force, protect=inputs)
    spec = _validated_spec(analysis)
    with reserve(out, force=args.force, protect=inputs, command="run") as target:
        result = fit_analysis(analysis, spec, args.quiet)
        # spec.toml records the target_accept the fit used: a rerun gives the same draws
        analysis = dataclasses.replace(analysis, sampler=result.settings)
        explained = tau2_explained_refit(result, args.quiet)
        contrasts = unpooled_refit(result, list(analysis.contrasts) or None, args.quiet)
        text = render(result, contrasts, title=analysis.title, explained=explained)
        # the data path absolute: a results directory copied elsewhere still reruns
        spec_toml = analysis.resolved_toml(spec)
        forest_order = analysis.forest_order
        if len(spec.studies) > FOREST_MAX_STUDIES:  # said once: stderr and run.log
            forest_order = None
            _progress(f"forest plot not written: {len(spec.studies)} studies > "
                      f"{FOREST_MAX_STUDIES} (one row per study); FitResult.plot_forest "
                      "draws it", args.quiet)
        write_bundle(run_bundle(result, spec_toml=spec_toml, text=text,
                                contrasts=contrasts, explained=explained,
                                figures=_bubble_pngs(result, analysis.title),
                                forest_order=forest_order), target)
    print(text)
    print(f"\nResults written to {out}/")
    problems = list(result.diagnostics.problems)
    if explained is not None:
        from bayes_poem.report_text import explained_problems

        problems += [f"fit without moderators: {p}" for p in explained_problems(explained)]
    unpooled = str(contrasts["unpooled_problems"].iloc[0]) if "unpooled_problems" in contrasts \
        else ""
    if unpooled:
        problems.append(f"fit with fixed subgroup effects: {unpooled}")
    if problems and args.strict:
        sys.stderr.write("bayes-poem: sampler diagnostics failed (--strict): "
                         + "; ".join(problems) + "\n")
        return EXIT_DIAGNOSTICS
    return EXIT_OK


def _compare_options(args: argparse.Namespace, analysis) -> dict[str, object]:
    """``method`` and ``knapp_hartung`` of ``compare``: ``--method``/``--knha`` override
    the spec's ``[compare]`` (validated like it: ``SpecError`` naming the flag)."""
    from bayes_poem.specfile import check_method

    method = args.method if args.method is not None else analysis.compare["method"]
    knha = args.knha if args.knha is not None else analysis.compare["knapp_hartung"]
    try:
        method, knha = check_method(method, knha, key="--method")
    except SpecError as err:
        message = str(err)
        if message.startswith("knapp_hartung:"):
            message = "--knha" + message[len("knapp_hartung"):]
        raise SpecError(f"{message} (the spec's [compare]: method = "
                        f"'{analysis.compare['method']}')") from None
    return {"method": method, "knapp_hartung": knha}


def cmd_compare(args: argparse.Namespace) -> int:
    from bayes_poem.bundle import Bundle, write_bundle
    from bayes_poem.compare import compare
    from bayes_poem.exports import table_files
    from bayes_poem.outputs import check_target, reserve
    from bayes_poem.results_dir import default_out
    from bayes_poem.specfile import load_spec

    analysis = load_spec(args.spec)
    out = _out_path(args, default_out("compare", args.spec))
    inputs = _inputs(analysis, args.spec)
    check_target(out, force=args.force, protect=inputs)
    if getattr(analysis, "is_joint", False):  # [data] outcomes: the joint model
        from bayes_poem.joint_compare import compare_command

        return compare_command(args, analysis, out, inputs,
                               progress=lambda message: _progress(message, args.quiet))
    spec = _validated_spec(analysis)
    with reserve(out, force=args.force, protect=inputs, command="compare") as target:
        result = fit_analysis(analysis, spec, args.quiet)
        _progress("frequentist reference analysis and comparison", args.quiet)
        comparison = compare(result, contrasts=list(analysis.contrasts) or None,
                             **_compare_options(args, analysis))
        text = comparison.render_text(title=analysis.title)
        tables = {"comparison_subgroups.csv": comparison.subgroups,
                  "comparison_contrasts.csv": comparison.contrasts,
                  **({"comparison_moderators.csv": comparison.moderators}
                     if not comparison.moderators.empty else {})}
        write_bundle(Bundle(text=text, text_name="comparison.txt", tables=tables,
                            files=table_files(tables, title=analysis.title,
                                                synthetic=spec.table.is_synthetic)), target)
    print(text)
    print(f"\nResults written to {out}/")
    return EXIT_OK


def cmd_bias(args: argparse.Namespace) -> int:
    """Small-study effects: frequentist tests, the Bayesian precision model, cumulative
    analyses and funnel plots (docs/cli.md)."""
    from bayes_poem.bias_analysis import analyse_bias, figures, render_text
    from bayes_poem.bundle import Bundle, write_bundle
    from bayes_poem.exports import table_files
    from bayes_poem.outputs import check_target, reserve
    from bayes_poem.plots import to_png
    from bayes_poem.results_dir import default_out
    from bayes_poem.specfile import load_spec

    analysis = load_spec(args.spec)
    out = _out_path(args, default_out("bias", args.spec))
    inputs = _inputs(analysis, args.spec)
    check_target(out, force=args.force, protect=inputs)
    spec = _validated_spec(analysis)
    options = analysis.checked_bias_options(spec)  # no [bias] section: the defaults, checked
    resolved = dataclasses.replace(analysis, bias=options.to_dict())
    with reserve(out, force=args.force, protect=inputs, command="bias") as target:
        result = fit_analysis(analysis, spec, args.quiet)
        bias = analyse_bias(result, options, progress=lambda m: _progress(m, args.quiet))
        text = render_text(bias, spec, analysis.title)
        pngs = {f"{stem}.png": to_png(fig) for stem, (_, fig) in
                figures(bias, analysis.title).items()}
        tables = {"precision.csv": bias.precision_table(), "regtest.csv": bias.regtest,
                  "ranktest.csv": bias.ranktest, "trimfill.csv": bias.trimfill,
                  "cumulative_bayes.csv": bias.cumulative_table(),
                  "cumulative_frequentist.csv": bias.cumulative_frequentist()}
        write_bundle(Bundle(text=text, text_name="bias.txt", tables=tables, figures=pngs,
                            files=table_files(tables, title=analysis.title,
                                                synthetic=spec.table.is_synthetic),
                            spec_toml=resolved.resolved_toml(spec)), target)
    print(text)
    print(f"\nResults written to {out}/")
    return EXIT_OK


def _positive_int(text: str) -> int:
    """argparse type of ``--jobs``: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {text!r})") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (got {value})")
    return value


def _scheduler_address(text: str) -> str:
    """argparse type of ``--scheduler``: a non-blank address (checked on connecting)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty address; give e.g. tcp://host:8786")
    return text


def cmd_trial(args: argparse.Namespace) -> int:
    """Anterior-vs-posterior trial analyses (``bayes_poem.trials``, docs/trials.md)."""
    from bayes_poem.bundle import write_bundle
    from bayes_poem.outputs import check_target, reserve
    from bayes_poem.results_dir import default_out
    from bayes_poem.trials.specfile import load_trial_spec

    spec = load_trial_spec(args.spec)
    out = _out_path(args, default_out("trial", args.spec))
    inputs = _trial_inputs(spec, args.spec)
    check_target(out, force=args.force, protect=inputs)
    prepared = spec.prepare()  # every user error is raised here, before any output
    with reserve(out, force=args.force, protect=inputs, command="trial") as target:
        _progress(f"{spec.analysis}: {prepared.describe}", args.quiet)
        started = time.perf_counter()
        report = prepared.run()
        _progress(f"done in {time.perf_counter() - started:.1f} s", args.quiet)
        write_bundle(report.bundle(), target)
    print(report.text)
    print(f"\nResults written to {out}/")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    path = Path(args.target)
    if path.suffix.lower() == ".csv":
        from bayes_poem.table import load_table

        table = load_table(path)
        print(f"OK: {path}: {len(table.frame)} rows, {len(table.studies)} studies, "
              f"{len(table.subgroups)} subgroup(s), outcomes: {', '.join(table.outcomes)}")
        return EXIT_OK
    from bayes_poem.specfile import load_spec

    analysis = load_spec(path)
    if getattr(analysis, "is_joint", False):
        joint = analysis.model_spec()
        flag = " (SYNTHETIC data)" if joint.table.is_synthetic else ""
        print(f"OK: {path}: joint model of {' and '.join(joint.outcomes)}, "
              f"{len(joint.table.frame)} rows, {len(joint.studies)} studies, subgroups "
              f"{', '.join(joint.subgroups)}{flag}; model subgroup_effects="
              f"{joint.subgroup_effects}, rho {joint.describe_priors()['rho']}")
        return EXIT_OK
    spec = _validated_spec(analysis)
    synthetic = " (SYNTHETIC data)" if spec.table.is_synthetic else ""
    print(f"OK: {path}: outcome {spec.outcome}, {len(spec.table.frame)} rows, "
          f"{len(spec.studies)} studies, subgroups {', '.join(spec.subgroups)}{synthetic}; "
          f"model subgroup_effects={spec.subgroup_effects}, "
          f"study_effects={spec.study_effects}")
    return EXIT_OK


def cmd_datasets(args: argparse.Namespace) -> int:
    from bayes_poem.datasets import catalog  # the registry's metadata: no pandas

    for row in catalog():
        flag = "  [SYNTHETIC]" if row.synthetic else ""
        print(f"{row.name}{flag}\n    {row.title}\n    {row.citation}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bayes-poem",
                     description="Bayesian hierarchical meta-analysis of POEM outcomes.")
    from bayes_poem._version import __version__
    from bayes_poem.results_dir import default_help

    parser.add_argument("--version", action="version", version=f"bayes-poem {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="fit an analysis spec and write its results")
    run.add_argument("spec", help="TOML analysis spec, e.g. models/sed_clinical_success.toml")
    run.add_argument("--out", help=f"results directory (default: {default_help('run')})")
    run.add_argument("--force", action="store_true", help="replace an existing results dir")
    run.add_argument("--strict", action="store_true",
                     help="exit with status 3 if sampler diagnostics fail")
    run.add_argument("--quiet", action="store_true", help="no progress messages or progress bar")
    run.set_defaults(func=cmd_run)

    comp = sub.add_parser("compare", help="fit a spec and compare it with the frequentist "
                          "analysis (and published values, where stored)")
    comp.add_argument("spec", help="TOML analysis spec, e.g. models/sed_clinical_success.toml")
    comp.add_argument("--out", help=f"results directory (default: {default_help('compare')})")
    comp.add_argument("--force", action="store_true", help="replace an existing results dir")
    comp.add_argument("--quiet", action="store_true",
                      help="no progress messages or progress bar")
    comp.add_argument("--method", choices=("published", "glmm", "reml", "dl"), default=None,
                      help="frequentist comparator (overrides [compare] method; default "
                           "published): the published method, the binomial-normal GLMM, or "
                           "random effects by REML or DerSimonian-Laird")
    comp.add_argument("--knha", action=argparse.BooleanOptionalAction, default=None,
                      help="Knapp-Hartung CI for --method reml or dl (overrides [compare] "
                           "knapp_hartung)")
    comp.set_defaults(func=cmd_compare)

    check = sub.add_parser("check", help="validate a spec or a CSV table without fitting")
    check.add_argument("target", help="a TOML spec or a CSV study table")
    check.set_defaults(func=cmd_check)

    sens = sub.add_parser("sensitivity", help="fit a grid of model variants and flag changes")
    sens.add_argument("spec", help="TOML analysis spec (its [sensitivity] section, if any)")
    sens.add_argument("--out",
                      help=f"results directory (default: {default_help('sensitivity')})")
    sens.add_argument("--force", action="store_true", help="replace an existing results dir")
    sens.add_argument("--quiet", action="store_true", help="no progress messages")
    sens.add_argument("--jobs", type=_positive_int, default=1,
                      help="local worker processes (default 1: serial)")
    sens.add_argument("--scheduler", type=_scheduler_address,
                      help="Dask scheduler address, e.g. tcp://host:8786")
    sens.set_defaults(func=cmd_sensitivity)

    bias = sub.add_parser("bias", help="small-study effects: funnel plots, Egger, rank and "
                          "trim-and-fill tests, the Bayesian precision model, cumulative "
                          "meta-analysis")
    bias.add_argument("spec", help="TOML analysis spec (its [bias] section, if any)")
    bias.add_argument("--out", help=f"results directory (default: {default_help('bias')})")
    bias.add_argument("--force", action="store_true", help="replace an existing results dir")
    bias.add_argument("--quiet", action="store_true", help="no progress messages")
    bias.set_defaults(func=cmd_bias)

    rep = sub.add_parser("report", help="write a self-contained HTML (and Markdown) report")
    rep.add_argument("target", metavar="SPEC|RESULTS_DIR",
                     help="a TOML spec (fitted here) or a results directory of 'run' "
                          "(its posterior.nc and spec.toml; the analysis is not refitted)")
    rep.add_argument("--out", help=f"report directory (default: {default_help('report')}, or "
                                   "<RESULTS_DIR>_report)")
    rep.add_argument("--force", action="store_true", help="replace an existing report dir")
    rep.add_argument("--quiet", action="store_true", help="no progress messages")
    rep.add_argument("--new-centre-n", type=int, metavar="N",
                     help="patients at the new centre of the predictions (default 50)")
    rep.set_defaults(func=cmd_report)

    trial = sub.add_parser("trial", help="anterior vs posterior myotomy: trial analysis, "
                           "comparative meta-analysis or trial design (docs/trials.md)")
    trial.add_argument("spec", help="TOML trial spec, e.g. "
                       "models/anterior_vs_posterior_meta.toml")
    trial.add_argument("--out", help=f"results directory (default: {default_help('trial')})")
    trial.add_argument("--force", action="store_true", help="replace an existing results dir")
    trial.add_argument("--quiet", action="store_true", help="no progress messages")
    trial.set_defaults(func=cmd_trial)

    datasets = sub.add_parser("datasets", help="list the embedded datasets")
    datasets.set_defaults(func=cmd_datasets)
    return parser


def quiet_library_warnings() -> None:
    """Keep warnings a user of the command cannot act on off the terminal.

    Each filter names one library's warning by category, module and the start of
    its message, so any other warning, the package's ``ConvergenceWarning``
    included, still shows. Installed by :func:`main` before any command imports
    a library; the grid's worker processes inherit them (fork).
    """
    # ArviZ 0.23 announces its 1.0 refactor on import, once a day; the message starts
    # with a line break.
    warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor",
                            category=FutureWarning, module=r"arviz(\.|$)")
    # PyTensor (imported with PyMC) without a BLAS library: only its PyMC-backend C
    # code is slower; the default nutpie backend samples a compiled density.
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS",
                            category=UserWarning, module=r"pytensor(\.|$)")


def main(argv: Sequence[str] | None = None) -> int:
    quiet_library_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    from bayes_poem import signals

    command = list(sys.argv[1:] if argv is None else argv)
    with signals.terminate_as_interrupt(), runlog.capture(command):
        try:
            return int(args.func(args))
        except SamplingError as err:
            _error_line(f"bayes-poem: the computation failed: {err}")
            return EXIT_FAILED
        except BayesPoemError as err:
            _error_line(f"bayes-poem: error: {err}")
            return EXIT_USER_ERROR
        except OSError as err:  # the environment (permissions, disks), not a bug of ours
            where = f"{err.filename}: " if err.filename else ""
            _error_line(f"bayes-poem: error: {where}{err.strerror or err}")
            return EXIT_USER_ERROR
        except Interrupted as err:
            name = signal_name(err.signum)
            _error_line(f"bayes-poem: interrupted ({name}); nothing was written")
            return 128 + err.signum
        except KeyboardInterrupt:
            _error_line("bayes-poem: interrupted (SIGINT); nothing was written")
            return 130


def console_main() -> int:
    """The ``bayes-poem`` command: :func:`main` on ``sys.argv``, for a process that ends
    when it returns.

    Before returning, the heap is frozen (``gc.freeze``): the interpreter's
    teardown then skips the cyclic garbage collector's passes over the objects of
    ArviZ, matplotlib, numba and the fit, which took 0.8 s of a 4.8 s SED
    ``run`` (measured: ``benchmarks/cli_vs_pymc.py``). Nothing is lost by it:
    every file is written, closed and moved into place before :func:`main`
    returns, and the standard streams are flushed at exit as always. Not for
    :func:`main` called in a process that goes on (tests, notebooks), whose
    garbage must stay collectable.
    """
    import gc

    code = main()
    gc.freeze()
    return code


def signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


def _error_line(text: str) -> None:
    """One line on stderr: a message's own line breaks are folded."""
    sys.stderr.write(" ".join(text.split("\n")) + "\n")
    sys.stderr.flush()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(console_main())
