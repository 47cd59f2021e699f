"""The ``bayes-poem`` console entry point: ``main`` for a process that ends when it returns."""

from __future__ import annotations

import gc
import tomllib
from pathlib import Path

from bayes_poem import cli

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_command_is_console_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"bayes-poem": "bayes_poem.cli:console_main"}


def test_console_main_returns_mains_code_and_freezes_the_heap_after_it(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "main", lambda: calls.append("main") or 3)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    assert cli.console_main() == 3
    assert calls == ["main", "freeze"]  # frozen only once every file is written
