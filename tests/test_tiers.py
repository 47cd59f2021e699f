"""The test tiers and what `make test` needs on a fresh machine.

- ``unit`` is added by ``tests/conftest.py`` (its hook is ``tests/tiers.py``) to every
  test not marked ``mcmc``/``slow``/``browser``, so ``pytest -m unit`` (``make
  test-fast``) is the old marker expression;
- ``scripts/ensure_chromium.sh`` (the first step of ``make test``) decides, with a fake
  PATH here (no real apt-get): Chromium present -> proceed; absent and installable ->
  apt-get; absent and not installable -> one line, exit non-zero, and make stops before
  pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ensure_chromium.sh"

# ---------------------------------------------------------------------- markers
SAMPLE_TESTS = '''
import pytest

def test_plain():
    pass

@pytest.mark.mcmc
def test_sampling():
    pass

@pytest.mark.slow
def test_long():
    pass

@pytest.mark.browser
def test_page():
    pass

@pytest.mark.mcmc
class TestClass:
    def test_in_class(self):
        pass

@pytest.mark.parametrize("x", [1, 2])
def test_param(x):
    pass
'''
INI = """[pytest]
addopts = --strict-markers -p no:cacheprovider
markers =
    unit: no sampling
    mcmc: samples
    slow: long
    browser: chromium
"""


def _collect(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "pytest.ini").write_text(INI)
    # The hook under test, not a copy of it.
    (tmp_path / "conftest.py").write_text(
        "from tests.tiers import pytest_collection_modifyitems  # noqa: F401\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def _ids(out: str) -> set[str]:
    return {line.split("::", 1)[1] for line in out.splitlines() if "::" in line}


def test_unit_marker_is_every_test_not_mcmc_slow_or_browser(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE_TESTS)
    unit = _collect(tmp_path, "-m", "unit")
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert _ids(unit.stdout) == {"test_plain", "test_param[1]", "test_param[2]"}
    old = _collect(tmp_path, "-m", "not slow and not mcmc and not browser")
    assert _ids(old.stdout) == _ids(unit.stdout)
    rest = _collect(tmp_path, "-m", "not unit")
    assert _ids(rest.stdout) == {"test_sampling", "test_long", "test_page",
                                 "TestClass::test_in_class"}


def test_a_test_marked_unit_and_mcmc_is_a_usage_error(tmp_path):
    (tmp_path / "test_bad.py").write_text(
        "import pytest\n\n@pytest.mark.unit\n@pytest.mark.mcmc\ndef test_both():\n    pass\n")
    result = _collect(tmp_path)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "test_bad.py::test_both: marked unit and mcmc" in result.stderr


def _recipes(makefile: str) -> dict[str, list[str]]:
    """Each Makefile target's recipe lines (tab-indented, after ``target:``)."""
    recipes: dict[str, list[str]] = {}
    target = None
    for line in makefile.splitlines():
        if line.startswith("\t") and target is not None:
            recipes[target].append(line.strip())
        elif ":" in line and not line.startswith(("#", "\t", " ")) and "=" not in line:
            target = line.split(":", 1)[0].strip()
            recipes[target] = []
        else:
            target = None if not line.startswith("\t") else target
    return recipes


def test_make_test_fast_is_the_unit_tier_on_both_cores_and_make_test_is_ci():
    """``make test-fast``: the unit tier on two xdist workers (a file's tests in one
    worker); ``make test``: the whole suite in one process, as CI runs it."""
    recipes = _recipes((ROOT / "Makefile").read_text())
    assert recipes["test-fast"] == ["$(BIN)/python -m pytest -m unit -n 2 --dist loadfile"]
    assert recipes["test"] == ["$(BIN)/python -m pytest"]


# ---------------------------------------------------------------------- chromium
def _fake_bin(tmp_path: Path, *, uid: int, sudo_ok: bool | None = None,
              apt: str | None = None, browser: str | None = None) -> Path:
    """A PATH directory with only the commands the script may call, each logging its call.

    ``apt``: None (no apt-get), "installs" (creates ``chromium``) or "fails"."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "calls.log"

    def tool(name: str, body: str) -> None:
        path = bin_ / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\n{body}\n')
        path.chmod(0o755)

    tool("id", f"echo {uid}")
    (bin_ / "env").symlink_to(shutil.which("env"))
    if sudo_ok is not None:
        tool("sudo", 'shift; "$@"' if sudo_ok else "exit 1")
    if apt == "installs":
        tool("apt-get", f'case "$*" in *install*) printf "#!/bin/sh\\n" > {bin_}/chromium;'
                        f' {shutil.which("chmod")} +x {bin_}/chromium;; esac')
    elif apt == "fails":
        tool("apt-get", "exit 100")
    if browser:
        tool(browser, "")
    return bin_


def _ensure(bin_: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/sh", str(SCRIPT)], env={"PATH": str(bin_)},
                          capture_output=True, text=True, timeout=60)


def _calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("name", ["chromium", "chromium-browser", "google-chrome"])
def test_chromium_present_proceeds_without_installing(tmp_path, name):
    bin_ = _fake_bin(tmp_path, uid=1000, apt="installs", browser=name)
    result = _ensure(bin_)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert _calls(tmp_path) == []


@pytest.mark.parametrize("sudo_ok", [None, False])
def test_chromium_absent_and_not_installable_stops_with_one_line(tmp_path, sudo_ok):
    bin_ = _fake_bin(tmp_path, uid=1000, sudo_ok=sudo_ok, apt="installs")
    result = _ensure(bin_)
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr == (
        "make test needs Chromium for the browser tests and cannot install it (not root, "
        "no passwordless sudo): install it (Debian/Ubuntu: sudo apt-get install chromium) "
        "and rerun make test\n")
    assert not [c for c in _calls(tmp_path) if c.startswith("apt-get")]


def test_chromium_absent_without_apt_get_stops_with_one_line(tmp_path):
    result = _ensure(_fake_bin(tmp_path, uid=0))
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1 and "(no apt-get)" in result.stderr


@pytest.mark.parametrize(("uid", "sudo_ok"), [(0, None), (1000, True)])
def test_chromium_absent_is_installed_as_root_or_with_passwordless_sudo(tmp_path, uid,
                                                                        sudo_ok):
    bin_ = _fake_bin(tmp_path, uid=uid, sudo_ok=sudo_ok, apt="installs")
    result = _ensure(bin_)
    assert result.returncode == 0, result.stderr
    assert (bin_ / "chromium").is_file()
    apt = [c for c in _calls(tmp_path) if c.startswith("apt-get")]
    assert apt == ["apt-get update -qq", "apt-get install -y -qq chromium"]
    assert [c for c in _calls(tmp_path) if c.startswith("sudo")] == (
        ["sudo -n true", "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
         "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"]
        if sudo_ok else [])


def test_a_failed_install_stops_with_what_to_install(tmp_path):
    result = _ensure(_fake_bin(tmp_path, uid=0, apt="fails"))
    assert result.returncode != 0
    assert result.stderr.splitlines()[-1] == (
        "make test needs Chromium for the browser tests and apt-get install chromium failed: "
        "install it (Debian/Ubuntu: sudo apt-get install chromium) and rerun make test")


def test_make_test_stops_before_pytest_when_chromium_cannot_be_had(tmp_path):
    """`make test` runs the script first; its failure means pytest never starts (a fake
    venv whose python records being called; a stamp newer than pyproject.toml)."""
    make = shutil.which("make")
    assert make, "make is needed: the README's commands are make targets"
    bin_ = _fake_bin(tmp_path, uid=1000, apt="installs")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    ran = tmp_path / "pytest_ran"
    python = venv / "bin" / "python"
    python.write_text(f"#!/bin/sh\n: > {ran}\n")
    python.chmod(0o755)
    stamp = venv / ".installed"
    stamp.touch()
    result = subprocess.run([make, "-C", str(ROOT), "--no-print-directory", "test",
                             f"BIN={venv / 'bin'}", f"STAMP={stamp}"],
                            env={"PATH": str(bin_)}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "make test needs Chromium" in result.stderr
    assert not ran.exists()
    # The control: with Chromium on PATH, the same command reaches the (fake) pytest.
    (bin_ / "chromium").write_text("#!/bin/sh\n")
    (bin_ / "chromium").chmod(0o755)
    ok = subprocess.run([make, "-C", str(ROOT), "test", f"BIN={venv / 'bin'}",
                         f"STAMP={stamp}"], env={"PATH": str(bin_)}, capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ran.exists()
