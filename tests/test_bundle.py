"""One bundle contract, one writer: every command's files go through ``write_bundle``.

A :class:`~bayes_poem.bundle.Bundle` names its files (tables, figures, other
files, the resolved spec, the text) and :func:`~bayes_poem.bundle.write_bundle`
writes them through :mod:`bayes_poem.outputs` (atomic, marker, ``run.log``).
The architecture check reads the package's source: no other module writes a
file itself (``to_csv`` to a path, ``savefig``, ``write_text``/``write_bytes``,
``open(..., "w")``) or commits a results directory.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bayes_poem.bundle import SPEC_FILE, Bundle, write_bundle
from bayes_poem.errors import OutputError
from bayes_poem.outputs import MARKER, reserve

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bayes_poem"

# (module, call): the writer itself, the low-level machinery, and writes into memory
ALLOWED = {
    ("bayes_poem/bundle.py", "savefig"), ("bayes_poem/bundle.py", "to_csv"),
    ("bayes_poem/bundle.py", "write_bytes"), ("bayes_poem/bundle.py", "write_directory"),
    ("bayes_poem/bundle.py", "commit"), ("bayes_poem/bundle.py", "write_text"),
    ("bayes_poem/outputs.py", "write_text"), ("bayes_poem/outputs.py", "to_netcdf"),
    ("bayes_poem/outputs.py", "write_bytes"),
    ("bayes_poem/outputs.py", "commit"),  # reserve() + Target.commit: write_directory
    ("bayes_poem/plots.py", "savefig"),  # to_png: into a BytesIO buffer
    ("bayes_poem/figure_style.py", "savefig"),  # to_bytes: into a BytesIO buffer
    # figure_style.save: a figure to a path the user names (FitResult.plot_forest's
    # figure in a script); the bundle saves its figures through it
    ("bayes_poem/figure_style.py", "write_bytes"),
}
WRITING_CALLS = {"savefig", "write_text", "write_bytes", "write_directory", "commit",
                 "to_netcdf", "to_parquet", "to_excel"}


def _writes(path: Path) -> list[tuple[str, int]]:
    """(call, line) of every file-writing call in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in WRITING_CALLS:
            if name == "to_netcdf" and not node.args and not node.keywords:
                continue
            found.append((name, node.lineno))
        elif name == "to_csv" and (node.args or any(k.arg == "path_or_buf"
                                                     for k in node.keywords)):
            found.append((name, node.lineno))
        elif name == "open" and isinstance(func, ast.Name):
            modes = [a for a in node.args[1:2]] + [k.value for k in node.keywords
                                                      if k.arg == "mode"]
            if any(isinstance(m, ast.Constant) and set(str(m.value)) & set("wax+")
                   for m in modes):
                found.append((name, node.lineno))
    return found


def test_no_module_but_the_writer_writes_results_files():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(ROOT).as_posix()
        for call, line in _writes(path):
            if (module, call) not in ALLOWED:
                offenders.append(f"{module}:{line}: {call}")
    assert offenders == [], "write through bayes_poem.bundle.write_bundle:\n" + "\n".join(
        offenders)


def test_the_architecture_check_finds_a_writer(tmp_path):
    """The check above can fail: a module writing a CSV or a figure itself is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f(frame, fig, p):\n    frame.to_csv(p)\n    fig.savefig(p)\n"
                   "    open(p, 'w')\n    frame.to_csv(index=False)\n")
    assert [call for call, _ in _writes(bad)] == ["to_csv", "savefig", "open"]


def _figure() -> Figure:
    fig = Figure(figsize=(1, 1))
    FigureCanvasAgg(fig)
    fig.add_subplot().plot([0, 1])
    return fig


def test_bundle_names_every_part_in_writing_order():
    bundle = Bundle(text="hello", text_name="summary.txt",
                    tables={"a.csv": pd.DataFrame({"x": [1]})}, figures={"f.png": b"png"},
                    files={"other.nc": b"nc"}, spec_toml="x = 1\n")
    assert bundle.names() == ["other.nc", "a.csv", "f.png", SPEC_FILE, "summary.txt"]
    assert Bundle(text_name="").names() == []


def test_a_file_named_twice_is_an_error():
    bundle = Bundle(tables={"summary.txt": pd.DataFrame()}, text_name="summary.txt")
    with pytest.raises(OutputError, match="summary.txt: named twice"):
        bundle.writers()
    with pytest.raises(OutputError, match="is the results directory's marker"):
        Bundle(files={MARKER: "{}"}).writers()


def test_write_bundle_writes_every_part_and_the_marker(tmp_path):
    frame = pd.DataFrame({"x": [1, 2]}, index=["r1", "r2"])
    bundle = Bundle(text="hello", text_name="comparison.txt",
                    tables={"plain.csv": frame, "indexed.csv": frame},
                    figures={"fig.png": _figure(), "pre.png": b"\x89PNG"},
                    files={"a.txt": "text", "b.bin": b"\x00\x01",
                           "c.txt": lambda path: path.write_text("by writer")},
                    spec_toml="title = 't'\n", indexed=frozenset({"indexed.csv"}))
    out = write_bundle(bundle, tmp_path / "res", command="test")
    assert (out / "comparison.txt").read_text() == "hello\n"
    assert (out / "plain.csv").read_text() == "x\n1\n2\n"
    assert (out / "indexed.csv").read_text() == ",x\nr1,1\nr2,2\n"
    assert (out / "fig.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "pre.png").read_bytes() == b"\x89PNG"
    assert (out / "a.txt").read_text() == "text"
    assert (out / "b.bin").read_bytes() == b"\x00\x01"
    assert (out / "c.txt").read_text() == "by writer"
    assert (out / SPEC_FILE).read_text() == "title = 't'\n"
    marker = json.loads((out / MARKER).read_text())
    assert marker["command"] == "test"
    assert marker["files"] == sorted(bundle.names())
    with pytest.raises(OutputError, match="already exists"):  # never a silent overwrite
        write_bundle(bundle, out)


def test_write_bundle_into_a_reserved_target_and_nothing_on_failure(tmp_path):
    out = tmp_path / "res"
    with reserve(out, force=False, command="run") as target:
        write_bundle(Bundle(text="ok"), target)
    assert (out / "summary.txt").read_text() == "ok\n"

    def broken(path):
        raise OSError(28, "No space left on device")

    other = tmp_path / "other"
    with pytest.raises(OutputError, match="nothing was written"):
        write_bundle(Bundle(text="x", files={"a.nc": broken}), other)
    assert not other.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_a_bundle_saves_figures_at_the_one_figure_style_resolution():
    from bayes_poem import bundle, figure_style

    assert bundle.FIGURE_DPI == figure_style.DPI
