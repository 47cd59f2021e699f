"""What the command modules share: exit statuses, progress lines, output paths, writers.

``cli`` (argument parsing and dispatch) and the command modules it dispatches to
(e.g. ``joint_cli``) import these from here, so no command module imports ``cli``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bayes_poem import runlog
from bayes_poem.errors import OutputError, SpecError

__all__ = ["EXIT_DIAGNOSTICS", "EXIT_FAILED", "EXIT_OK", "EXIT_USER_ERROR", "out_path",
           "progress", "spec_inputs", "trial_inputs", "validated_spec"]

EXIT_OK, EXIT_USER_ERROR, EXIT_DIAGNOSTICS, EXIT_FAILED = 0, 2, 3, 4


def progress(message: str, quiet: bool) -> None:
    """One ``[bayes-poem]`` line on stderr, unless ``quiet``; in the run log either way
    (:mod:`bayes_poem.runlog`: the record does not depend on ``--quiet``)."""
    if quiet:
        runlog.note(f"[bayes-poem] {message}")
    else:
        sys.stderr.write(f"[bayes-poem] {message}\n")
        sys.stderr.flush()


def out_path(args: argparse.Namespace, default: Path) -> Path:
    """``--out`` if given (an empty one is an error, not the default), else ``default``."""
    if args.out is None:
        return default
    if not args.out.strip():
        raise OutputError("--out: empty path; give a directory or leave --out out")
    return Path(args.out)


def spec_inputs(analysis, spec_path: str | Path) -> list[Path]:
    """Files a command reads: a results directory replaced by --force must hold none."""
    paths = [Path(spec_path)]
    if "path" in analysis.data:
        paths.append(analysis.base_dir / analysis.data["path"])
    return paths


def trial_inputs(spec, spec_path: str | Path) -> list[Path]:
    """The trial spec and every file it names (``path`` keys, relative to the spec)."""
    paths = [Path(spec_path)]
    base = spec.base_dir

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "path" and isinstance(value, str):
                    paths.append(base / value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(dict(spec.sections))
    return paths


def validated_spec(analysis):
    """The spec's ``ModelSpec``, every section checked before sampling
    (``AnalysisSpec.validated_spec``); a joint spec where a command takes one outcome
    is a ``SpecError``."""
    if getattr(analysis, "is_joint", False):
        raise SpecError(f"{analysis.source}: the joint model (data.outcomes) runs with "
                        "'bayes-poem run', 'compare', 'sensitivity', 'report' and 'check'; this "
                        "command "
                        "takes one outcome (data.outcome)")
    return analysis.validated_spec()
