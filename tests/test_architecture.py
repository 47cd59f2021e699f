"""ARCHITECTURE.md stays true: its module map, its CLI commands, and one-way layers.

The import graph is read from the source with ``ast`` (module-level and
function-local imports alike; ``if TYPE_CHECKING:`` blocks excluded, since
they never run), so a cycle hidden in a function body counts too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bayes_poem"
ARCHITECTURE = (ROOT / "ARCHITECTURE.md").read_text()


def _module_files() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _module_files()


def _is_type_checking(test: ast.expr) -> bool:
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(name: str, path: Path) -> set[str]:
    """The package modules ``name`` imports at run time."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def resolve(module: str) -> str | None:
        while module and module not in MODULES:
            module = module.rpartition(".")[0]
        return module or None

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if _is_type_checking(node.test):
                for child in node.orelse:
                    self.visit(child)
            else:
                self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                if alias.name.split(".")[0] == "bayes_poem":
                    found.add(resolve(alias.name))

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "bayes_poem":
                return
            for alias in node.names:
                found.add(resolve(f"{module}.{alias.name}"))

    Visitor().visit(ast.parse(path.read_text(), filename=str(path)))
    return {module for module in found if module and module != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _mapped_modules() -> set[str]:
    """Module paths in the first column of ARCHITECTURE.md's module map."""
    section = ARCHITECTURE.split("## Module map", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([\w/]+\.py)` \|", section, flags=re.MULTILINE))


def test_the_module_map_lists_every_module_and_only_existing_ones():
    files = {str(path.relative_to(PACKAGE)) for path in MODULES.values()}
    mapped = _mapped_modules()
    assert sorted(files - mapped) == [], "modules missing from ARCHITECTURE.md"
    assert sorted(mapped - files) == [], "ARCHITECTURE.md lists modules that do not exist"


def test_the_package_has_no_import_cycle():
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    assert _cycles(graph) == []


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
])
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert _cycles(graph) == expected


def test_a_function_local_import_counts_and_type_checking_does_not(tmp_path):
    source = ("from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from bayes_poem.spec import ModelSpec\n"
              "def f():\n    from bayes_poem.results import FitResult\n")
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert _imports("bayes_poem.probe", path) == {"bayes_poem.results"}


def test_the_cli_row_names_every_command():
    from bayes_poem.cli import build_parser

    parser = build_parser()
    commands = next(action for action in parser._actions
                    if action.__class__.__name__ == "_SubParsersAction").choices
    row = next(line for line in ARCHITECTURE.splitlines() if line.startswith("| `cli.py` |"))
    missing = [name for name in commands if f"`{name}`" not in row]
    assert missing == []


def test_docs_cli_documents_every_command_and_no_other():
    """docs/cli.md: the synopsis and one section per command, equal to the parser's."""
    from bayes_poem.cli import build_parser

    parser = build_parser()
    commands = set(next(action for action in parser._actions
                        if action.__class__.__name__ == "_SubParsersAction").choices)
    text = (ROOT / "docs" / "cli.md").read_text()
    synopsis = text.split("```text\n", 1)[1].split("```", 1)[0]
    in_synopsis = set(re.findall(r"^bayes-poem (\w+)", synopsis, flags=re.MULTILINE))
    sections = set(re.findall(r"^## `bayes-poem (\w+)", text, flags=re.MULTILINE))
    assert in_synopsis == commands
    assert sections == commands
