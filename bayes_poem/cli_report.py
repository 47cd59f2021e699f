"""``bayes-poem report``: the report of a spec (fitted here) or of a results directory
(moved from ``cli``).

:func:`cmd_report` reads a results directory back (:mod:`bayes_poem.results_dir`) or
fits the spec (:func:`bayes_poem.cli_fit.fit_analysis`), finds a ``sensitivity.csv``
beside it, builds the report (:func:`bayes_poem.report.build_report`) and writes
``report.html`` and ``report.md`` as one bundle; a joint spec goes to
:func:`bayes_poem.joint_cli.report_joint`. Imports nothing heavy at module level.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bayes_poem.cli_fit import fit_analysis
from bayes_poem.cli_support import EXIT_OK
from bayes_poem.cli_support import out_path as _out_path
from bayes_poem.cli_support import progress as _progress
from bayes_poem.cli_support import spec_inputs as _inputs
from bayes_poem.cli_support import validated_spec as _validated_spec

__all__ = ["cmd_report"]


def cmd_report(args: argparse.Namespace) -> int:
    """Report of a spec (fitted here) or of a results directory (its posterior.nc)."""
    from bayes_poem.bundle import write_bundle
    from bayes_poem.errors import SpecError
    from bayes_poem.outputs import check_target, reserve
    from bayes_poem.report import build_report, report_bundle
    from bayes_poem.results_dir import (
        REPORT_HTML,
        REPORT_MD,
        beside,
        default_out,
        find_sensitivity,
        load_fit,
        results_dir_files,
    )
    from bayes_poem.specfile import load_spec

    target = Path(args.target)
    from_results = target.is_dir()
    if args.new_centre_n is not None and args.new_centre_n < 1:
        raise SpecError(f"--new-centre-n: must be a positive integer (got {args.new_centre_n})")
    if from_results:
        spec_path = results_dir_files(target)[1]
        analysis = load_spec(spec_path)
        default = beside(target.resolve(), "report")
        inputs = [target, *_inputs(analysis, spec_path)]
    else:
        analysis = load_spec(target)
        default = default_out("report", target)
        inputs = _inputs(analysis, target)
    out = _out_path(args, default)
    check_target(out, force=args.force, protect=inputs)
    if getattr(analysis, "is_joint", False):  # [data] outcomes: the joint model
        from bayes_poem.joint_cli import report_joint

        return report_joint(args, analysis, target, out, inputs, from_results=from_results)
    spec = _validated_spec(analysis)
    # A sensitivity.csv beside the results is validated now, before any fitting.
    sensitivity = find_sensitivity(target if from_results else default_out("run", target))
    with reserve(out, force=args.force, protect=inputs, command="report") as reserved:
        result = (load_fit(target, analysis, spec) if from_results
                  else fit_analysis(analysis, spec, args.quiet))
        report = build_report(result, analysis=analysis, new_centre_n=args.new_centre_n,
                              results_dir=target if from_results else None,
                              sensitivity=sensitivity,
                              progress=lambda message: _progress(message, args.quiet))
        write_bundle(report_bundle(report), reserved)
    print(f"Report written to {out}/{REPORT_HTML} and {out}/{REPORT_MD}")
    return EXIT_OK
