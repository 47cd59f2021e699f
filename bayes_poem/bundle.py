"""A command's result as one bundle, written by one writer.

Every command (``run``, ``compare``, ``sensitivity``, ``bias``, ``trial``,
``report``; the joint ``run``/``compare``/``sensitivity``/``report`` too)
returns its files as a :class:`Bundle` and writes it with :func:`write_bundle`:

* ``text``: the printed summary, written as ``text_name`` (``summary.txt``,
  ``comparison.txt``, ...; none when ``text_name`` is empty);
* ``tables``: file name (``*.csv``) -> ``pandas.DataFrame``, written without
  the index unless the name is in ``indexed``;
* ``figures``: file name (``*.png``) -> a matplotlib ``Figure`` (saved by
  :func:`bayes_poem.figure_style.save`: the one figure style's resolution,
  :data:`FIGURE_DPI`), PNG bytes already rendered, or a writer;
* ``files``: any other file name -> text, bytes, or a writer (a function of
  the path, e.g. :func:`bayes_poem.outputs.write_netcdf`);
* ``spec_toml``: the resolved spec, written as ``spec.toml`` when given.

:func:`write_bundle` is the one writer: it reserves the directory (or takes
one reserved before the work, a :class:`bayes_poem.outputs.Target`) and
commits every file atomically with the marker and ``run.log``
(:mod:`bayes_poem.outputs`): all files or none, never a silent overwrite.
What a directory is called and where it lies is :mod:`bayes_poem.results_dir`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayes_poem import outputs
from bayes_poem.errors import OutputError
from bayes_poem.outputs import Target, Writer

__all__ = ["FIGURE_DPI", "SPEC_FILE", "Bundle", "write_bundle"]

SPEC_FILE = "spec.toml"
FIGURE_DPI = 300  # = figure_style.DPI (tests/test_bundle.py); not imported: matplotlib


@dataclass(frozen=True)
class Bundle:
    """What one command writes: text, tables, figures, other files, resolved spec."""

    text: str = ""
    text_name: str = "summary.txt"
    tables: Mapping[str, Any] = field(default_factory=dict)
    figures: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, str | bytes | Writer] = field(default_factory=dict)
    spec_toml: str | None = None
    indexed: frozenset[str] = frozenset()

    def names(self) -> list[str]:
        """The file names, in writing order (``run.log`` and the marker not included)."""
        return list(self.writers())

    def writers(self) -> dict[str, Writer]:
        """File name -> writer: other files, tables, figures, the spec, the text.

        Raises :class:`OutputError` when two parts name the same file, or one is
        named as the results directory's marker (written by :mod:`bayes_poem.outputs`).
        """
        parts: list[tuple[str, Writer]] = []
        parts += [(name, _file(content)) for name, content in self.files.items()]
        parts += [(name, _csv(frame, name in self.indexed))
                  for name, frame in self.tables.items()]
        parts += [(name, _png(figure)) for name, figure in self.figures.items()]
        if self.spec_toml is not None:
            parts.append((SPEC_FILE, outputs.write_text(self.spec_toml)))
        if self.text_name:
            parts.append((self.text_name, outputs.write_text(self.text + "\n")))
        out: dict[str, Writer] = {}
        for name, write in parts:
            if name == outputs.MARKER:
                raise OutputError(f"{name}: is the results directory's marker; "
                                  "choose another file name")
            if name in out:
                raise OutputError(f"{name}: named twice in one results directory")
            out[name] = write
        return out


def write_bundle(bundle: Bundle, out: str | Path | Target, *, force: bool = False,
                 protect: Iterable[str | Path] = (), command: str = "") -> Path:
    """Write ``bundle`` as the results directory ``out``, atomically; return its path.

    ``out`` is a path (reserved here: ``force``, ``protect`` and ``command`` as
    :func:`bayes_poem.outputs.reserve`) or a :class:`~bayes_poem.outputs.Target`
    the command reserved before its work (the files are written only at the end).
    """
    writers = bundle.writers()
    if isinstance(out, Target):
        return out.commit(writers)
    return outputs.write_directory(out, writers, force=force, protect=protect,
                                   command=command)


def _file(content: str | bytes | Writer) -> Writer:
    if isinstance(content, str):
        return outputs.write_text(content)
    if isinstance(content, bytes):
        return lambda path: path.write_bytes(content)
    return content


def _csv(frame: Any, index: bool) -> Writer:
    return lambda path: frame.to_csv(path, index=index)


def _png(figure: Any) -> Writer:
    if isinstance(figure, bytes):
        return lambda path: path.write_bytes(figure)
    if callable(figure):  # already a writer
        return figure

    def write(path: Path) -> None:
        from bayes_poem.figure_style import save

        save(figure, path)

    return write
