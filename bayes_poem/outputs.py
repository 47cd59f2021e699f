"""Atomic writing of a results directory.

All files are written into a hidden temporary directory beside the target and
moved into place with a ``rename`` once every file is complete. A failure at
any point leaves no partial directory behind. An existing directory is replaced
only when ``force`` is given, and only after the new one is complete: the old
one is renamed aside, the new one renamed into place, then the old one removed
(two renames, so the path is absent for an instant but never half-written).
Missing parent directories of the target are created.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from bayes_poem.errors import OutputError

Writer = Callable[[Path], None]


def check_target(out: Path, *, force: bool) -> None:
    """Fail early (before any work) if ``out`` cannot be written."""
    if out.exists() and not force:
        raise OutputError(f"{out}: already exists; use --force to replace it")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory")
    parent = out.resolve().parent
    existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise OutputError(f"{out}: cannot create results under {existing}")
    if not os.access(existing, os.W_OK):
        raise OutputError(f"{existing}: not writable")


def write_directory(out: Path, writers: Mapping[str, Writer], *, force: bool) -> Path:
    """Write ``writers`` (file name -> function writing that path) atomically to ``out``."""
    out = Path(out)
    check_target(out, force=force)
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    try:
        os.chmod(staging, 0o777 & ~_umask())
        for name, write in writers.items():
            write(staging / name)
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
            os.replace(out, retired / out.name)
            os.replace(staging, out)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_text(text: str) -> Writer:
    def write(path: Path) -> None:
        path.write_text(text, encoding="utf-8")

    return write
