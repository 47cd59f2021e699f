"""Command-line interface: ``bayes-poem run|compare|report|check|datasets``.

Exit status: 0 success; 2 a user error (one line on stderr, nothing written);
3 the fit finished and its results were written, but sampler diagnostics
failed and ``--strict`` was given.
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

from bayes_poem.errors import BayesPoemError, ConvergenceWarning, SpecError

EXIT_OK, EXIT_USER_ERROR, EXIT_DIAGNOSTICS = 0, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_USER_ERROR)


def _progress(message: str, quiet: bool) -> None:
    if not quiet:
        sys.stderr.write(f"[bayes-poem] {message}\n")
        sys.stderr.flush()


def _validated_spec(analysis):
    """Load the data and check every label the spec names, printing nothing.

    All user errors surface here, before any progress line, so that an error is
    the only line on stderr.
    """
    spec = analysis.model_spec()
    _check_contrast_labels(analysis, spec)
    _check_weight_labels(analysis, spec)
    return spec


def _fit_analysis(analysis, spec, quiet: bool):
    """Fit a validated spec (progress on stderr); the result reports the spec's
    [summary] interval and weights."""
    from bayes_poem.results import with_summary_options

    _progress(f"data loaded from {spec.table.source}: {len(spec.studies)} studies", quiet)
    settings = dataclasses.replace(analysis.sampler, progress=not quiet)
    _progress(
        f"preparing the {settings.backend} sampler (compiled density is cached after the "
        "first run)", quiet)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        _progress(f"sampling {settings.chains} chains x {settings.draws} draws "
                  f"({settings.tune} tuning), seed {settings.seed}", quiet)
        result = spec.fit(settings)
    _progress(f"sampling done in {time.perf_counter() - started:.1f} s", quiet)
    for warning in caught:
        if not issubclass(warning.category, ConvergenceWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    return with_summary_options(result, interval=analysis.interval, weights=analysis.weights)


def cmd_run(args: argparse.Namespace) -> int:
    from bayes_poem.outputs import check_target, write_directory, write_text
    from bayes_poem.report_text import render
    from bayes_poem.specfile import load_spec

    analysis = load_spec(args.spec)
    out = Path(args.out) if args.out else Path("results") / Path(args.spec).stem
    check_target(out, force=args.force)
    spec = _validated_spec(analysis)
    result = _fit_analysis(analysis, spec, args.quiet)
    contrasts = result.contrasts(list(analysis.contrasts) or None)
    summary = result.subgroup_summary()
    text = render(result, contrasts, title=analysis.title)

    writers = {
        "posterior.nc": lambda path: result.idata.to_netcdf(str(path), engine="h5netcdf"),
        "summary.csv": lambda path: summary.to_csv(path, index=False),
        "heterogeneity.csv": lambda path: result.heterogeneity().to_csv(path, index=False),
        "study_estimates.csv": lambda path: result.study_estimates().to_csv(path, index=False),
        "contrasts.csv": lambda path: contrasts.to_csv(path, index=False),
        "diagnostics.csv": lambda path: result.diagnostics.table.to_csv(path),
        "spec.toml": write_text(analysis.resolved_toml(spec)),
        "summary.txt": write_text(text + "\n"),
    }
    write_directory(out, writers, force=args.force)
    print(text)
    print(f"\nResults written to {out}/")
    if not result.diagnostics.ok and args.strict:
        sys.stderr.write("bayes-poem: sampler diagnostics failed (--strict): "
                         + "; ".join(result.diagnostics.problems) + "\n")
        return EXIT_DIAGNOSTICS
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from bayes_poem.compare import compare
    from bayes_poem.outputs import check_target, write_directory, write_text
    from bayes_poem.specfile import load_spec

    analysis = load_spec(args.spec)
    out = (Path(args.out) if args.out
           else Path("results") / f"{Path(args.spec).stem}_compare")
    check_target(out, force=args.force)
    spec = _validated_spec(analysis)
    result = _fit_analysis(analysis, spec, args.quiet)
    _progress("frequentist reference analysis and comparison", args.quiet)
    comparison = compare(result, contrasts=list(analysis.contrasts) or None)
    text = comparison.render_text(title=analysis.title)
    writers = {
        "comparison_subgroups.csv": lambda path: comparison.subgroups.to_csv(path, index=False),
        "comparison_contrasts.csv": lambda path: comparison.contrasts.to_csv(path, index=False),
        "comparison.txt": write_text(text + "\n"),
    }
    write_directory(out, writers, force=args.force)
    print(text)
    print(f"\nResults written to {out}/")
    return EXIT_OK


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from bayes_poem.loglik import power_scaling
    from bayes_poem.outputs import check_target, write_directory, write_text
    from bayes_poem.sensitivity import (
        build_variants,
        default_subsets,
        parse_sensitivity,
        run_sensitivity,
        summarise_by_variant,
    )
    from bayes_poem.specfile import load_spec

    analysis = load_spec(args.spec)
    out = (Path(args.out) if args.out
           else Path("results") / f"{Path(args.spec).stem}_sensitivity")
    check_target(out, force=args.force)
    spec = _validated_spec(analysis)
    config = parse_sensitivity(analysis.sensitivity, analysis.source)
    grid = config.grid
    if "subsets" not in analysis.sensitivity:
        grid = dataclasses.replace(grid, subsets=default_subsets(spec))
    variants = build_variants(spec, grid)
    executor, shutdown = _executor(args)
    settings = dataclasses.replace(analysis.sampler, progress=False)

    def progress(done: int, total: int, name: str) -> None:
        if not args.quiet:
            bar = "#" * int(30 * done / total)
            sys.stderr.write(f"\r[bayes-poem] [{bar:<30}] {done}/{total} {name[:40]:<40}")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    _progress(f"{len(variants)} variants of {analysis.source}", args.quiet)
    try:
        result = run_sensitivity(variants, settings, contrasts=analysis.contrasts,
                                 interval=analysis.interval, threshold=config.threshold,
                                 executor=executor, progress=progress)
    finally:
        shutdown()
    psens = None
    if config.psens:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            psens = power_scaling(spec.fit(settings))
    by_variant = summarise_by_variant(result.table)
    text = _sensitivity_text(analysis, spec, result, by_variant, psens)
    from bayes_poem.plots import sensitivity_forest

    figure = sensitivity_forest(frame=result.table, title=analysis.title)
    writers = {
        "sensitivity.csv": lambda path: result.table.to_csv(path, index=False),
        "variants.csv": lambda path: by_variant.to_csv(path, index=False),
        "sensitivity.png": lambda path: figure.savefig(path, dpi=120),
        "sensitivity.txt": write_text(text + "\n"),
        "spec.toml": write_text(analysis.resolved_toml(spec)),
    }
    if psens is not None:
        writers["psens.csv"] = lambda path: psens.to_csv(path, index=False)
    write_directory(out, writers, force=args.force)
    print(text)
    print(f"\nResults written to {out}/")
    return EXIT_OK


def _executor(args: argparse.Namespace):
    """The executor for the grid: Dask scheduler, local processes, or serial."""
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise SpecError("--scheduler needs the 'distributed' package "
                            "(pip install 'bayes-poem[dask]')") from None
        try:
            client = Client(args.scheduler, timeout=10)
        except OSError as err:
            raise SpecError(f"--scheduler {args.scheduler}: cannot connect ({err})") from None
        return client.get_executor(), client.close
    if args.jobs == 1:
        return None, lambda: None
    import concurrent.futures as cf

    pool = cf.ProcessPoolExecutor(max_workers=args.jobs)
    return pool, pool.shutdown


def _sensitivity_text(analysis, spec, result, by_variant, psens) -> str:
    from bayes_poem.report_text import SYNTHETIC_BANNER

    lines = [SYNTHETIC_BANNER] if spec.table.is_synthetic else []
    if analysis.title:
        lines.append(analysis.title)
    n_failed = int((by_variant["status"] == "failed").sum())
    lines.append(f"Sensitivity analysis: {len(by_variant)} variants in {result.seconds:.1f} s "
                 f"({n_failed} failed); decision threshold P(>0) = {result.threshold:g}")
    compact = result.compact()
    if not compact.empty:
        lines.append("")
        lines.append(f"{'variant':<34} {'quantity':<36} {'median':>7} {'interval':<19} "
                     f"{'P(>0)':>6}  flag")
        for row in compact.itertuples(index=False):
            p = "" if row.p_gt_0 != row.p_gt_0 else f"{row.p_gt_0:6.3f}"
            lines.append(f"{row.variant[:34]:<34} {row.quantity[:36]:<36} {row.median:7.3f} "
                         f"[{row.lower:7.3f}, {row.upper:7.3f}] {p:>6}  {row.flag or ''}")
    failed = result.failed
    if not failed.empty:
        lines.append("")
        lines.append("Failed variants (reported, not fatal):")
        for row in failed.itertuples(index=False):
            lines.append(f"  {row.variant}: {row.error}")
    if psens is not None:
        lines.append("")
        lines.append("Power-scaling sensitivity of the main fit (ArviZ psens; > 0.05 is "
                     "notable)")
        for row in psens.itertuples(index=False):
            lines.append(f"  {row.parameter:<22} prior {row.prior_sensitivity:6.3f}  "
                         f"likelihood {row.likelihood_sensitivity:6.3f}  {row.diagnosis}")
    if spec.table.is_synthetic:
        lines += ["", SYNTHETIC_BANNER]
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    """Report of a spec (fitted here) or of a results directory (its posterior.nc)."""
    from bayes_poem.errors import SpecError
    from bayes_poem.outputs import check_target, write_directory
    from bayes_poem.report import (
        build_report,
        find_sensitivity,
        load_fit,
        report_writers,
        results_dir_files,
    )
    from bayes_poem.specfile import load_spec

    target = Path(args.target)
    from_results = target.is_dir()
    if args.new_centre_n is not None and args.new_centre_n < 1:
        raise SpecError(f"--new-centre-n: must be a positive integer (got {args.new_centre_n})")
    if from_results:
        analysis = load_spec(results_dir_files(target)[1])
        default = target.resolve().parent / f"{target.resolve().name}_report"
    else:
        analysis = load_spec(target)
        default = Path("results") / f"{target.stem}_report"
    out = Path(args.out) if args.out else default
    check_target(out, force=args.force)
    spec = _validated_spec(analysis)
    result = (load_fit(target, analysis, spec) if from_results
              else _fit_analysis(analysis, spec, args.quiet))
    sensitivity = None if from_results else find_sensitivity(Path("results") / target.stem)
    report = build_report(result, analysis=analysis, new_centre_n=args.new_centre_n,
                          results_dir=target if from_results else None,
                          sensitivity=sensitivity,
                          progress=lambda message: _progress(message, args.quiet))
    write_directory(out, report_writers(report), force=args.force)
    print(f"Report written to {out}/report.html and {out}/report.md")
    return EXIT_OK


def cmd_trial(args: argparse.Namespace) -> int:
    """Anterior-vs-posterior trial analyses (``bayes_poem.trials``, docs/trials.md)."""
    from bayes_poem.outputs import check_target, write_directory
    from bayes_poem.trials.spec import load_trial_spec

    spec = load_trial_spec(args.spec)
    out = Path(args.out) if args.out else Path("results") / Path(args.spec).stem
    check_target(out, force=args.force)
    prepared = spec.prepare()  # every user error is raised here, before any output
    _progress(f"{spec.analysis}: {prepared.describe}", args.quiet)
    started = time.perf_counter()
    report = prepared.run()
    _progress(f"done in {time.perf_counter() - started:.1f} s", args.quiet)
    write_directory(out, report.writers(), force=args.force)
    print(report.text)
    print(f"\nResults written to {out}/")
    return EXIT_OK


def _check_weight_labels(analysis, spec) -> None:
    from bayes_poem.errors import SpecError

    unknown = [k for k in (analysis.weights or {}) if k not in spec.subgroups]
    if unknown:
        raise SpecError(f"{analysis.source}: summary.weights: unknown subgroup(s) "
                        f"{', '.join(unknown)}; subgroups: {', '.join(spec.subgroups)}")


def _check_contrast_labels(analysis, spec) -> None:
    from bayes_poem.errors import SpecError

    if analysis.contrasts and spec.subgroup_effects == "none":
        raise SpecError(f"{analysis.source}: contrasts need subgroup effects "
                        "(model.subgroup_effects = 'random' or 'fixed')")
    for i, contrast in enumerate(analysis.contrasts, start=1):
        for label in (contrast.a, contrast.b):
            if label not in spec.subgroups:
                raise SpecError(
                    f"{analysis.source}: contrasts[{i}]: subgroup '{label}' is not in the "
                    f"data; subgroups: {', '.join(spec.subgroups)}"
                )


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
    spec = _validated_spec(analysis)
    synthetic = " (SYNTHETIC data)" if spec.table.is_synthetic else ""
    print(f"OK: {path}: outcome {spec.outcome}, {len(spec.table.frame)} rows, "
          f"{len(spec.studies)} studies, subgroups {', '.join(spec.subgroups)}{synthetic}; "
          f"model subgroup_effects={spec.subgroup_effects}, "
          f"study_effects={spec.study_effects}")
    return EXIT_OK


def cmd_datasets(args: argparse.Namespace) -> int:
    from bayes_poem.datasets import list_datasets

    for row in list_datasets().itertuples(index=False):
        flag = "  [SYNTHETIC]" if row.synthetic else ""
        print(f"{row.name}{flag}\n    {row.title}\n    {row.citation}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bayes-poem",
                     description="Bayesian hierarchical meta-analysis of POEM outcomes.")
    from bayes_poem import __version__

    parser.add_argument("--version", action="version", version=f"bayes-poem {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="fit an analysis spec and write its results")
    run.add_argument("spec", help="TOML analysis spec, e.g. models/sed_clinical_success.toml")
    run.add_argument("--out", help="results directory (default: results/<spec name>)")
    run.add_argument("--force", action="store_true", help="replace an existing results dir")
    run.add_argument("--strict", action="store_true",
                     help="exit with status 3 if sampler diagnostics fail")
    run.add_argument("--quiet", action="store_true", help="no progress messages or progress bar")
    run.set_defaults(func=cmd_run)

    comp = sub.add_parser("compare", help="fit a spec and compare it with the frequentist "
                          "analysis (and published values, where stored)")
    comp.add_argument("spec", help="TOML analysis spec, e.g. models/sed_clinical_success.toml")
    comp.add_argument("--out", help="results directory (default: results/<spec name>_compare)")
    comp.add_argument("--force", action="store_true", help="replace an existing results dir")
    comp.add_argument("--quiet", action="store_true",
                      help="no progress messages or progress bar")
    comp.set_defaults(func=cmd_compare)

    check = sub.add_parser("check", help="validate a spec or a CSV table without fitting")
    check.add_argument("target", help="a TOML spec or a CSV study table")
    check.set_defaults(func=cmd_check)

    sens = sub.add_parser("sensitivity", help="fit a grid of model variants and flag changes")
    sens.add_argument("spec", help="TOML analysis spec (its [sensitivity] section, if any)")
    sens.add_argument("--out", help="results directory (default: results/<spec>_sensitivity)")
    sens.add_argument("--force", action="store_true", help="replace an existing results dir")
    sens.add_argument("--quiet", action="store_true", help="no progress messages")
    sens.add_argument("--jobs", type=int, default=1,
                      help="local worker processes (default 1: serial)")
    sens.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786")
    sens.set_defaults(func=cmd_sensitivity)

    rep = sub.add_parser("report", help="write a self-contained HTML (and Markdown) report")
    rep.add_argument("target", metavar="SPEC|RESULTS_DIR",
                     help="a TOML spec (fitted here) or a results directory of 'run' "
                          "(its posterior.nc and spec.toml; the analysis is not refitted)")
    rep.add_argument("--out", help="report directory (default: results/<spec>_report, or "
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
    trial.add_argument("--out", help="results directory (default: results/<spec name>)")
    trial.add_argument("--force", action="store_true", help="replace an existing results dir")
    trial.add_argument("--quiet", action="store_true", help="no progress messages")
    trial.set_defaults(func=cmd_trial)

    datasets = sub.add_parser("datasets", help="list the embedded datasets")
    datasets.set_defaults(func=cmd_datasets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # ArviZ 0.23 announces its 1.0 refactor on import; not a message for our users.
    warnings.filterwarnings("ignore", message="ArviZ is undergoing", category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BayesPoemError as err:
        sys.stderr.write(f"bayes-poem: error: {err}\n")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("bayes-poem: interrupted; nothing was written\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
