"""Start-up: what importing the package and the CLI loads, and which warnings reach
the terminal (issue 14, item 4). Each check runs in a fresh interpreter, since this
test session has long imported every library; each has a control that shows the
probe sees what it looks for. The wall times are measured by benchmarks/startup.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("numpy", "pandas", "arviz", "pymc", "numba", "pytensor", "xarray", "scipy",
         "matplotlib", "nutpie")

# Prints the heavy top-level modules loaded after running PROBE_BODY.
PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in sys.modules if m in {heavy!r})))
"""


def _python(code: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=300)


def _heavy_after(body: str) -> list[str]:
    proc = _python(PROBE.format(body=body, heavy=HEAVY))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_the_package_loads_no_numerical_library():
    assert _heavy_after("import bayes_poem") == []
    assert _heavy_after("import bayes_poem; dir(bayes_poem); bayes_poem.__version__") == []


def test_importing_the_cli_and_building_its_parser_loads_no_numerical_library():
    assert _heavy_after("from bayes_poem.cli import main") == []
    assert _heavy_after("from bayes_poem.cli import build_parser; build_parser()") == []


def test_version_and_datasets_never_import_pandas_or_numpy():
    body = ("from bayes_poem.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit as stop:\n"
            "    assert stop.code == 0\n"
            "assert main(['datasets']) == 0")
    assert _heavy_after(body) == []


def test_the_probe_sees_a_library_a_public_name_imports():
    """Control: the first use of a public name imports its module's libraries."""
    loaded = _heavy_after("import bayes_poem; bayes_poem.list_datasets()")
    assert "pandas" in loaded and "numpy" in loaded


# A command that imports ArviZ and PyMC (so PyTensor) for real, then emits both library
# warnings as their modules do (so the check does not depend on this machine lacking a
# BLAS or on ArviZ's once-a-day stamp) and one warning of the package's own.
NOISY_COMMAND = """
import warnings
import bayes_poem.cli as cli
from bayes_poem.errors import ConvergenceWarning

def noisy(args):
    import arviz, pymc  # noqa: F401
    warnings.warn_explicit("\\nArviZ is undergoing a major refactor to improve flexibility",
                           FutureWarning, "arviz/__init__.py", 50, module="arviz")
    warnings.warn_explicit("PyTensor could not link to a BLAS installation.", UserWarning,
                           "pytensor/link/c/cmodule.py", 2986,
                           module="pytensor.link.c.cmodule")
    warnings.warn("max R-hat 1.2 > 1.01", ConvergenceWarning)
    return 0

cli.cmd_datasets = noisy
{call}
"""
LIBRARY_LINES = ("ArviZ is undergoing", "could not link to a BLAS")


def test_library_warnings_do_not_reach_the_terminal_but_the_packages_own_do(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}  # a fresh ArviZ stamp: its warning is due
    proc = _python(NOISY_COMMAND.format(call="raise SystemExit(cli.main(['datasets']))"),
                   env=env)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in LIBRARY_LINES if line in proc.stderr] == []
    assert "ConvergenceWarning: max R-hat 1.2 > 1.01" in proc.stderr
    # Control: the same command without main's filters shows both library warnings.
    bare = _python(NOISY_COMMAND.format(call="noisy(None)"), env=env)
    assert bare.returncode == 0, bare.stderr
    assert [line for line in LIBRARY_LINES if line in bare.stderr] == list(LIBRARY_LINES)


def test_a_real_command_that_imports_arviz_prints_no_library_warning(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "bayes_poem.cli", "check", "models/sed_clinical_success.toml"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    # Control: ArviZ's warning is due in this environment (a fresh cache directory).
    bare = _python("import arviz", env={"XDG_CACHE_HOME": str(tmp_path / "fresh")})
    assert "ArviZ is undergoing" in bare.stderr
