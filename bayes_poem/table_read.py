"""Reading a user's file: the one reader of user files (CSV tables, TOML specs).

:func:`read_text` (UTF-8, a leading byte-order mark dropped; every failure an
error naming the source and the reason) and ``_read_csv`` (every cell as text,
with each data row's file line for the messages of
:mod:`bayes_poem.table_validate`). Moved from :mod:`bayes_poem.table`, which
re-exports :func:`read_text`.
"""

from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path

import pandas as pd

from bayes_poem.errors import BayesPoemError, DataError

__all__ = ["read_text"]


def read_text(path: str | Path, source: str | None = None, *,
              error: type[BayesPoemError] = DataError) -> str:
    """The text of a user's file (UTF-8, a leading byte-order mark dropped).

    The one reader of user files (CSV tables, TOML specs): every failure is an
    ``error`` (``DataError`` or ``SpecError``) naming ``source`` and the actual
    reason: no such file, is a directory, not a regular file (a FIFO, device or
    socket; checked before opening, so a FIFO never blocks), permission denied,
    not UTF-8 text.
    """
    path = Path(path)
    source = source or str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        broken = os.path.islink(path)
        raise error(f"{source}: no such file{' (a broken symbolic link)' if broken else ''}"
                    ) from None
    except NotADirectoryError:
        raise error(f"{source}: no such file (a parent of the path is not a directory)"
                    ) from None
    except OSError as err:
        raise error(f"{source}: cannot read ({_os_reason(err)})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{source}: is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{source}: not a regular file ({_file_kind(info.st_mode)})")
    try:
        # O_NONBLOCK: should the path be swapped for a FIFO after the check, opening
        # it still returns at once and fstat below refuses it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise error(f"{source}: not a regular file")
            content = handle.read()
    except OSError as err:
        raise error(f"{source}: cannot read ({_os_reason(err)})") from None
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"{source}: not a UTF-8 text file") from None


def _os_reason(err: OSError) -> str:
    if isinstance(err, PermissionError):
        return "permission denied"
    return (err.strerror or type(err).__name__).lower()


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO / named pipe"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def _read_csv(path: Path, source: str) -> tuple[pd.DataFrame, list[int]]:
    """Read every cell as text; return the frame and each data row's file line."""
    text = read_text(path, source)
    try:
        with io.StringIO(text, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            while header is not None and not any(cell.strip() for cell in header):
                header = next(reader, None)
            if header is None:
                raise DataError(f"{source}: the file is empty")
            header = [h.strip() for h in header]
            dups = sorted({h for h in header if header.count(h) > 1})
            if dups:
                raise DataError(f"{source}: line 1: duplicate column(s) "
                                f"{', '.join(map(repr, dups))}")
            records, lines = [], []
            start = reader.line_num + 1
            for record in reader:
                if not record or all(not cell.strip() for cell in record):
                    start = reader.line_num + 1
                    continue
                if len(record) != len(header):
                    raise DataError(
                        f"{source}: line {start}: {len(record)} fields, but the header has "
                        f"{len(header)} ({', '.join(header)})"
                    )
                records.append(record)
                lines.append(start)
                start = reader.line_num + 1
    except csv.Error as err:
        raise DataError(f"{source}: not a readable CSV file ({err})") from None
    return pd.DataFrame(records, columns=header, dtype=object), lines
