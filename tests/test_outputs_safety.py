"""Classes 1, 3 and 8 of "no silent wrong results", at the results-directory writer.

Existing results are never replaced without ``--force`` and never lost with
it; a write interrupted or failed part-way leaves nothing; OS errors are one
line naming the path. The writer is tested directly (no sampling) and through
the CLI where a user meets it. File-system conditions (full, read-only, no
permission) are made for real: a small tmpfs in a private mount namespace
(``unshare``), or the DAC-override capability dropped with ``setpriv``, so the
tests mean the same for root and for a normal user.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bayes_poem import outputs
from bayes_poem.errors import Interrupted, OutputError
from bayes_poem.outputs import MARKER, check_target, reserve, write_directory, write_text
from tests.helpers import run_cli

QUICK = ('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
         "[sampler]\ndraws = 200\ntune = 200\nchains = 2\nseed = 3\n")
COMMANDS = ("run", "compare", "sensitivity", "report")


def _quick(tmp_path: Path) -> Path:
    path = tmp_path / "quick.toml"
    path.write_text(QUICK)
    return path


def _results(path: Path, text: str = "old") -> Path:
    """A results directory as the writer leaves it."""
    write_directory(path, {"summary.csv": write_text(text)}, force=False)
    return path


def _hidden(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------- the writer
def test_class3_a_new_directory_is_written_whole_with_its_marker(tmp_path):
    out = _results(tmp_path / "res", "new")
    assert {p.name for p in out.iterdir()} == {"summary.csv", MARKER}
    assert (out / "summary.csv").read_text() == "new"
    assert _hidden(tmp_path) == []


def test_class3_existing_results_are_refused_without_force(tmp_path):
    out = _results(tmp_path / "res")
    with pytest.raises(OutputError, match="already exists; use --force"):
        write_directory(out, {"summary.csv": write_text("new")}, force=False)
    assert (out / "summary.csv").read_text() == "old"


def test_class3_force_swaps_in_place_and_removes_the_old(tmp_path):
    out = _results(tmp_path / "res")
    write_directory(out, {"other.csv": write_text("new")}, force=True)
    assert {p.name for p in out.iterdir()} == {"other.csv", MARKER}
    assert _hidden(tmp_path) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_class3_failed_write_under_force_keeps_the_old_results(tmp_path, monkeypatch,
                                                               exchange):
    if not exchange:
        monkeypatch.setattr(outputs, "_renameat2", _unsupported)
    out = _results(tmp_path / "res")

    def broken(path):
        raise OSError(28, "No space left on device", str(path))

    with pytest.raises(OutputError, match="cannot write b.csv: No space left on device"):
        write_directory(out, {"a.csv": write_text("new"), "b.csv": broken}, force=True)
    assert (out / "summary.csv").read_text() == "old"
    assert _hidden(tmp_path) == []
    write_directory(out, {"a.csv": write_text("new")}, force=True)  # the fallback works too
    assert {p.name for p in out.iterdir()} == {"a.csv", MARKER}
    assert _hidden(tmp_path) == []


def _unsupported(*args):
    raise NotImplementedError


def test_class3_a_directory_that_appears_while_writing_is_never_replaced(tmp_path):
    out = tmp_path / "res"

    def intruder(path):  # another program creates the target meanwhile
        out.mkdir()
        (out / "theirs.txt").write_text("theirs")
        path.write_text("mine")

    with pytest.raises(OutputError, match="appeared while this command ran"):
        write_directory(out, {"summary.csv": intruder}, force=False)
    assert {p.name for p in out.iterdir()} == {"theirs.txt"}
    assert _hidden(tmp_path) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_class1_signal_while_writing_leaves_nothing_and_keeps_old_results(tmp_path, signum):
    out = _results(tmp_path / "res")

    def signalled(path):
        path.write_text("half")
        os.kill(os.getpid(), signum)  # held back until the writer polls between files

    previous = signal.signal(signal.SIGTERM, lambda *a: None)  # handled in Python, as the CLI
    try:
        with pytest.raises(Interrupted) as info:
            write_directory(out, {"a.csv": signalled, "b.csv": write_text("b")}, force=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert info.value.signum == signum
    assert {p.name for p in out.iterdir()} == {"summary.csv", MARKER}
    assert (out / "summary.csv").read_text() == "old"
    assert _hidden(tmp_path) == []


def test_class1_crash_between_two_renames_is_repaired_by_the_next_writer(tmp_path):
    """What a crash between the fallback's renames leaves: the old results aside."""
    out = _results(tmp_path / "res")
    aside = tmp_path / ".res.old-crashed"
    aside.mkdir()
    os.rename(out, aside / "res")
    (tmp_path / ".res.tmp-crashed").mkdir()  # and the complete new one, never moved
    with pytest.raises(OutputError, match="already exists"):  # restored, so not replaced
        write_directory(out, {"x.csv": write_text("x")}, force=False)
    assert (out / "summary.csv").read_text() == "old"
    assert _hidden(tmp_path) == []


def test_class3_lock_refuses_a_second_writer_and_is_released(tmp_path):
    out = tmp_path / "res"
    with reserve(out, force=False) as target:
        with pytest.raises(OutputError, match=r"another bayes-poem process \(pid \d+\)"):
            with reserve(out, force=False):
                pass
        target.commit({"a.csv": write_text("a")})
    assert _hidden(tmp_path) == []
    write_directory(out, {"b.csv": write_text("b")}, force=True)


def test_class3_leaving_a_reservation_without_commit_writes_nothing(tmp_path):
    for out in (tmp_path / "res", tmp_path / "new" / "deeper" / "res"):
        with pytest.raises(RuntimeError):
            with reserve(out, force=False):
                assert out.parent.is_dir()  # parents exist while the work runs
                raise RuntimeError("the fit failed")
        assert list(tmp_path.iterdir()) == []  # created parents removed again
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError), reserve(tmp_path / "kept" / "res", force=False):
        raise RuntimeError("the fit failed")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]  # not a parent it created


# ---------------------------------------------------------------------- target checks
@pytest.mark.parametrize("force", [False, True])
def test_class3_nested_target_is_refused(tmp_path, force):
    outer = _results(tmp_path / "res")
    for inner in (outer / "inner", outer / "a" / "b"):
        with pytest.raises(OutputError, match="lies inside the results directory"):
            check_target(inner, force=force)
    assert not (outer / "inner").exists() and not (outer / "a").exists()


def test_class3_force_never_replaces_a_directory_that_is_not_results(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "my.toml").write_text("x")
    with pytest.raises(OutputError, match="is not a bayes-poem results directory"):
        check_target(folder, force=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    check_target(empty, force=True)  # an empty directory holds nothing to lose


def test_class3_force_never_replaces_a_directory_holding_inputs(tmp_path, monkeypatch):
    out = _results(tmp_path / "res")
    (out / "data.csv").write_text("x")
    with pytest.raises(OutputError, match="data.csv, which --force would delete"):
        check_target(out, force=True, protect=[out / "data.csv"])
    monkeypatch.chdir(out)
    for given in (out, Path(".")):
        with pytest.raises(OutputError, match="contains the working directory"):
            check_target(given, force=True)


@pytest.mark.parametrize("force", [False, True])
def test_class3_file_symlink_and_root_targets(tmp_path, force):
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(OutputError, match="exists and is not a directory; choose another"):
        check_target(file, force=force)
    link = tmp_path / "link"
    link.symlink_to(_results(tmp_path / "res"))
    with pytest.raises(OutputError, match="is a symbolic link"):
        check_target(link, force=force)
    with pytest.raises(OutputError, match="file-system root"):
        check_target("/", force=force)
    with pytest.raises(OutputError, match="empty path"):
        check_target("  ", force=force)


# ---------------------------------------------------------------------- through the CLI
OUT_CASES = {
    "empty": ("", "--out: empty path"),
    "file": ("afile", "exists and is not a directory; choose another path"),
    "under_proc": ("/proc/bayes-poem-results/res", "/proc/bayes-poem-results/res: cannot"),
    "under_file": ("afile/res", "afile/res: cannot create it under"),
    "root": ("/", "file-system root"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", OUT_CASES, ids=str)
def test_class8_and_11_bad_out_is_one_line_before_any_work(tmp_path, capsys, monkeypatch,
                                                           command, case):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("mine")
    _quick(tmp_path)
    out, message = OUT_CASES[case]
    for extra in ([], ["--force"]):
        code, stdout, err = run_cli([command, "quick.toml", "--out", out, *extra], capsys)
        assert code == 2, err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err
        assert err.startswith("bayes-poem: error:") and "[bayes-poem]" not in err
    assert (tmp_path / "afile").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "quick.toml"]


@pytest.mark.parametrize("command", COMMANDS)
def test_class3_force_on_the_spec_and_data_folder_is_refused(tmp_path, capsys, monkeypatch,
                                                             command):
    """--out naming the folder that holds the spec and the data, or '.', with --force."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("study,outcome,events,total\nA,s,1,3\nB,s,2,4\n")
    (tmp_path / "spec.toml").write_text('[data]\npath = "data.csv"\noutcome = "s"\n')
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for out in (".", str(tmp_path), "../" + tmp_path.name):
        code, _, err = run_cli([command, "spec.toml", "--out", out, "--force"], capsys)
        assert code == 2 and err.count("\n") == 1, err
        assert "is not a bayes-poem results directory" in err
    (tmp_path / MARKER).write_text("{}")  # even one that claims to be results
    code, _, err = run_cli([command, "spec.toml", "--out", ".", "--force"], capsys)
    assert code == 2 and "contains the working directory" in err
    (tmp_path / MARKER).unlink()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.mcmc
def test_class3_nested_out_and_rerun_inside_results_through_run(tmp_path, capsys):
    spec = _quick(tmp_path)
    res = tmp_path / "res"
    code, _, err = run_cli(["run", spec, "--out", res, "--quiet"], capsys)
    assert code == 0, err
    files = {p.name: p.read_bytes() for p in res.iterdir()}
    code, _, err = run_cli(["run", spec, "--out", res / "inner", "--quiet"], capsys)
    assert code == 2 and "lies inside the results directory" in err
    # rerunning the resolved spec.toml into its own directory would delete its input
    code, _, err = run_cli(["run", res / "spec.toml", "--out", res, "--force", "--quiet"],
                           capsys)
    assert code == 2 and "spec.toml, which --force would delete" in err
    assert {p.name: p.read_bytes() for p in res.iterdir()} == files


@pytest.mark.mcmc
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_class1_signal_while_the_cli_writes(tmp_path, capsys, monkeypatch, signum):
    spec = _quick(tmp_path)
    original = outputs.write_netcdf

    def signalling(idata):
        write = original(idata)

        def wrapped(path):
            write(path)
            os.kill(os.getpid(), signum)
        return wrapped

    monkeypatch.setattr(outputs, "write_netcdf", signalling)
    code, out, err = run_cli(["run", spec, "--out", tmp_path / "res", "--quiet"], capsys)
    assert code == 128 + signum
    name = signal.Signals(signum).name
    assert err == f"bayes-poem: interrupted ({name}); nothing was written\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quick.toml"]


# ---------------------------------------------------------------------- real file systems
def _namespace_available() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot mount a tmpfs in a private namespace: {probe.stderr.strip()}"
    return None


def _in_tmpfs(tmp_path: Path, options: str, args: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI with ``tmp_path/fs`` a fresh tmpfs (``options``), then list the tmpfs."""
    why = _namespace_available()
    if why:
        pytest.fail(why)  # an unrun check must not pass
    mount = tmp_path / "fs"
    mount.mkdir()
    cli = " ".join(f"'{a}'" for a in [sys.executable, "-m", "bayes_poem.cli", *args])
    script = (f"mount -t tmpfs -o {options} tmpfs '{mount}' && "
              f"{'mount -o remount,ro ' + repr(str(mount)) + ' && ' if 'ro' in options else ''}"
              f"{{ {cli}; code=$?; echo \"LISTING:$(ls -A '{mount}' | tr '\\n' ' ')\"; "
              "exit $code; }")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=300)


@pytest.mark.mcmc
def test_class8_full_disk_while_writing(tmp_path):
    _quick(tmp_path)
    proc = _in_tmpfs(tmp_path, "size=64k", ["run", "quick.toml", "--out", "fs/res", "--quiet"])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "No space left on device" in proc.stderr
    assert "fs/res: cannot write" in proc.stderr and "Traceback" not in proc.stderr
    assert "LISTING:\n" in proc.stdout or proc.stdout.rstrip().endswith("LISTING:")


def test_class8_read_only_file_system(tmp_path):
    _quick(tmp_path)
    proc = _in_tmpfs(tmp_path, "size=1m,ro", ["run", "quick.toml", "--out", "fs/res"])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "fs/res: cannot" in proc.stderr
    assert "[bayes-poem] sampling" not in proc.stderr  # refused before any work


def test_class8_permission_denied_on_the_parent(tmp_path):
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is not installed")
    _quick(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    caps = "-dac_override,-dac_read_search"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}", sys.executable, "-m",
         "bayes_poem.cli", "run", "quick.toml", "--out", "locked/res"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    locked.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "locked/res: cannot create it" in proc.stderr
    assert list(locked.iterdir()) == []
