"""Results directories: reserved before the work, written atomically, never lost.

Every command's files reach this module as one bundle
(:func:`bayes_poem.bundle.write_bundle`): it reserves the directory with
:func:`reserve` before the work and commits the bundle's writers at its end.

The contract (``docs/cli.md``, "Results directories"):

* **Reserve first.** :func:`reserve` checks the target before any computation:
  it must not exist (or, with ``force``, must be a bayes-poem results directory
  that holds none of the command's inputs and not the working directory), must
  not lie inside another results directory, and its parent must be creatable
  and writable. It then takes an exclusive lock beside the target
  (``.NAME.lock``, ``flock``: released by the kernel even if the process is
  killed) and creates the staging directory ``.NAME.tmp-*``. A second process
  writing the same target is refused at once, before it samples anything.
* **Write atomically.** :meth:`Target.commit` writes every file into the
  staging directory with SIGINT/SIGTERM held back between files
  (:func:`bayes_poem.signals.deferred`), then moves it into place with one
  ``renameat2`` call: ``RENAME_NOREPLACE`` for a new target (a directory that
  appeared meanwhile is never replaced), ``RENAME_EXCHANGE`` to swap with the
  results being replaced under ``force`` (the path is never absent, never
  half-written). Where the kernel or file system lacks ``renameat2`` the
  fallback is two renames with the signals still held back, and an old
  directory left by a crash between them is put back by the next writer.
* **Leave nothing behind.** On any error or interrupt the staging directory is
  removed; staging directories of killed processes are removed by the next
  writer of the same target (it holds the lock, so they cannot be live).
* **Mark what we own.** Every results directory holds ``.bayes-poem.json``
  (writer, version, command, files); ``force`` replaces only such directories.
* **Keep the log.** Written by a command (:func:`bayes_poem.runlog.capture`
  active), the results also hold ``run.log``: the command's progress lines
  and warnings with timestamps, up to the commit.

OS errors (permissions, read-only or full file systems, paths that cannot be
created) become :class:`~bayes_poem.errors.OutputError` naming the path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bayes_poem import runlog, signals
from bayes_poem._version import __version__
from bayes_poem.errors import OutputError

Writer = Callable[[Path], None]

MARKER = ".bayes-poem.json"
RUN_LOG = runlog.RUN_LOG  # written by every command beside its results (bayes_poem.runlog)
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100


# ---------------------------------------------------------------------- checks
def _absolute(out: str | Path) -> Path:
    text = str(out)
    if not text.strip():
        raise OutputError("output directory: empty path")
    return Path(os.path.abspath(text))


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def is_results_dir(path: Path) -> bool:
    """Whether ``path`` is a directory written by bayes-poem (it has the marker)."""
    return path.is_dir() and not path.is_symlink() and (path / MARKER).is_file()


def _within(path: Path, ancestor: Path) -> bool:
    try:
        path.relative_to(ancestor)
    except ValueError:
        return False
    return True


def check_target(out: str | Path, *, force: bool, protect: Iterable[str | Path] = ()) -> Path:
    """Check that ``out`` may be written; return it as an absolute path.

    Raises :class:`OutputError` (naming ``out``) when it exists and ``force``
    is not given; when it exists but is not a directory, is a symbolic link, or
    (under ``force``) is not a bayes-poem results directory, or contains the
    working directory or a path of ``protect`` (the command's inputs); when it
    lies inside another results directory; when its nearest existing ancestor
    is not a writable directory. Nothing is created.
    """
    path = _absolute(out)
    shown = str(out)
    if path == Path(path.anchor):
        raise OutputError(f"{shown}: is the file-system root; choose a results directory")
    if path.is_symlink():
        raise OutputError(f"{shown}: is a symbolic link; give the directory's real path")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{shown}: exists and is not a directory; choose another path")
    if path.exists():
        if not force:
            raise OutputError(f"{shown}: already exists; use --force to replace it")
        if not is_results_dir(path) and any(path.iterdir()):
            raise OutputError(f"{shown}: is not a bayes-poem results directory (no {MARKER}); "
                              "--force replaces only those: choose another path")
        real = path.resolve()
        for inner in (Path.cwd(), *map(Path, protect)):
            if _within(inner.resolve(), real):
                what = "the working directory" if inner == Path.cwd() else str(inner)
                raise OutputError(f"{shown}: contains {what}, which --force would delete; "
                                  "choose another path")
    for ancestor in path.resolve().parents:
        if is_results_dir(ancestor):
            raise OutputError(f"{shown}: lies inside the results directory {ancestor}; "
                              "choose a path outside it")
    existing = next((p for p in path.parents if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise OutputError(f"{shown}: cannot create it under {existing} (not a directory)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{shown}: cannot create it: {existing} is not writable")
    return path


# ---------------------------------------------------------------------- renames
def _renameat2(source: Path, target: Path, flags: int) -> None:
    """``renameat2(2)``; ``NotImplementedError`` where unavailable or unsupported."""
    libc = ctypes.CDLL(None, use_errno=True)
    call = getattr(libc, "renameat2", None)
    if call is None:
        raise NotImplementedError
    if call(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) != 0:
        code = ctypes.get_errno()
        if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise NotImplementedError
        raise OSError(code, os.strerror(code), str(target))


def _move_new(staging: Path, out: Path) -> None:
    """Move ``staging`` to ``out``, which must not exist (never replaced)."""
    try:
        _renameat2(staging, out, _RENAME_NOREPLACE)
    except NotImplementedError:
        if out.exists() or out.is_symlink():
            raise FileExistsError(errno.EEXIST, "File exists", str(out)) from None
        os.rename(staging, out)


def _swap(staging: Path, out: Path) -> None:
    """Put ``staging`` at ``out`` and the old ``out`` at ``staging``."""
    try:
        _renameat2(staging, out, _RENAME_EXCHANGE)
    except NotImplementedError:
        retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, retired / out.name)
        os.rename(staging, out)
        os.rename(retired / out.name, staging)
        retired.rmdir()


def _clean_leftovers(out: Path) -> None:
    """Remove staging directories of dead writers; restore results a crash left aside.

    Called with the target's lock held, so no live process owns any of them.
    """
    for old in out.parent.glob(f".{out.name}.old-*"):
        kept = old / out.name
        if kept.is_dir() and not out.exists():
            os.rename(kept, out)
        shutil.rmtree(old, ignore_errors=True)
    for stale in out.parent.glob(f".{out.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


# ---------------------------------------------------------------------- reservation
@dataclass
class Target:
    """A reserved results directory: write it once with :meth:`commit`."""

    path: Path
    force: bool
    command: str
    staging: Path
    committed: bool = field(default=False)

    def commit(self, writers: Mapping[str, Writer]) -> Path:
        """Write every file into the staging directory, then move it into place.

        A SIGINT or SIGTERM that arrives while writing stops the write before the
        move: nothing is written and :class:`~bayes_poem.errors.Interrupted` is
        raised. One that arrives after the move leaves the complete results.
        """
        if self.committed:
            raise OutputError(f"{self.path}: already written")
        out = self.path
        log = runlog.current()  # a command's run: its stderr lines, timestamped
        if log is not None and RUN_LOG not in writers:
            log.note(f"writing the results to {out.name}/")
            writers = {**writers, RUN_LOG: write_text(log.text())}
        with signals.deferred() as seen:
            for name, write in writers.items():
                seen.raise_if_signalled()
                try:
                    write(self.staging / name)
                except OSError as err:
                    raise OutputError(f"{out}: cannot write {name}: {_reason(err)}; "
                                      "nothing was written") from None
            manifest = {"written_by": "bayes-poem", "version": __version__,
                        "command": self.command, "files": sorted(writers)}
            try:
                (self.staging / MARKER).write_text(json.dumps(manifest, indent=1) + "\n",
                                                   encoding="utf-8")
            except OSError as err:
                raise OutputError(f"{out}: cannot write {MARKER}: {_reason(err)}; "
                                  "nothing was written") from None
            seen.raise_if_signalled()
            try:
                if self.force and out.exists():
                    if not is_results_dir(out):  # replaced by something else meanwhile
                        raise OutputError(f"{out}: is no longer a bayes-poem results "
                                          "directory; nothing was replaced")
                    _swap(self.staging, out)
                else:
                    _move_new(self.staging, out)
            except FileExistsError:
                raise OutputError(f"{out}: appeared while this command ran (another process "
                                  "wrote it); it was not replaced and nothing was "
                                  "written") from None
            except OSError as err:
                raise OutputError(f"{out}: cannot move the results into place: "
                                  f"{_reason(err)}; nothing was written") from None
            self.committed = True
        # After a swap the staging path holds the replaced results.
        shutil.rmtree(self.staging, ignore_errors=True)
        return out


@contextlib.contextmanager
def reserve(out: str | Path, *, force: bool, protect: Iterable[str | Path] = (),
            command: str = "") -> Iterator[Target]:
    """Reserve the results directory ``out`` for the duration of the block.

    Checks it (:func:`check_target`), creates its parents, takes the lock and
    the staging directory. Leaving the block without :meth:`Target.commit`
    (an error, an interrupt) removes the staging directory: nothing is written.
    """
    protect = tuple(protect)
    path = check_target(out, force=force, protect=protect)
    created = [p for p in path.parents if not p.exists()]  # nearest first
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{out}: cannot create its parent directory: {_reason(err)}") from None
    target = None
    try:
        with _locked(path.parent / f".{path.name}.lock", out):
            _clean_leftovers(path)
            check_target(out, force=force, protect=protect)  # again, under the lock
            try:
                staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
                os.chmod(staging, 0o777 & ~_umask())
            except OSError as err:
                raise OutputError(f"{out}: cannot write in {path.parent}: "
                                  f"{_reason(err)}") from None
            target = Target(path, force, command, staging)
            try:
                yield target
            finally:
                if not target.committed:
                    shutil.rmtree(staging, ignore_errors=True)
    finally:
        if target is None or not target.committed:
            for parent in created:  # the parents this call created, if still empty
                with contextlib.suppress(OSError):
                    parent.rmdir()


@contextlib.contextmanager
def _locked(lock_path: Path, out: str | Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_path`` (created if needed), or OutputError."""
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as err:
            raise OutputError(f"{out}: cannot write in {lock_path.parent}: "
                              f"{_reason(err)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _read_owner(fd)
            os.close(fd)
            raise OutputError(f"{out}: another bayes-poem process{owner} is writing it; "
                              "wait for it or choose another path") from None
        try:  # the file may have been unlinked by its previous holder: retry on a new one
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)


def _read_owner(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {text})" if text.isdigit() else ""


def write_directory(out: str | Path, writers: Mapping[str, Writer], *, force: bool,
                    protect: Iterable[str | Path] = (), command: str = "") -> Path:
    """Reserve ``out`` and write ``writers`` (file name -> function writing that path)."""
    with reserve(out, force=force, protect=protect, command=command) as target:
        return target.commit(writers)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_text(text: str) -> Writer:
    def write(path: Path) -> None:
        path.write_text(text, encoding="utf-8")

    return write


def write_netcdf(idata) -> Writer:
    """Writer of an ``InferenceData`` as netCDF-4: serialised in memory first.

    h5py writing straight to disk reports a full disk with its own traceback
    (and can crash at exit); in memory the only disk step is a plain write
    whose ``OSError`` the results writer reports in one line. xarray returns a view of
    its in-memory file, written as it is (a copy as ``bytes`` took 0.2 s and the
    file's size again in memory for a 300 MB posterior).
    """
    def write(path: Path) -> None:
        path.write_bytes(idata.to_datatree().to_netcdf(engine="h5netcdf"))

    return write
