"""Every code block of README.md and docs/*.md runs, and shows what the code prints.

One case per markdown file runs its blocks in document order (a reader's session):

- ```` ```python ````: executed in one namespace per file, in a temporary working
  directory holding copies of ``models/`` and of the shipped CSVs
  (``bayes_poem/datasets/*.csv``): the docs' relative paths are the repository
  root's, and nothing is written into the repository. A ```` ```text ```` block
  right after a python block (only blank lines between) is that block's output:
  its captured stdout must equal it. A ``ConvergenceWarning`` fails the block (an
  example whose fit warns would mislead its reader).
- ```` ```bash ```` / ```` ```sh ````: each line is run as pasted, by bash, in that
  directory; ``bayes-poem`` and ``.venv/bin/bayes-poem`` are this worktree's CLI
  (run with this interpreter), and ``head``, ``cat`` and ``ls`` may show output
  files. Lines starting with an install command (:data:`NOT_RUN`) are not run;
  any other command fails the test. A line must exit 0, unless it ends with the
  comment ``# exit status N``.
- ```` ```console ````: a transcript. ``$ COMMAND`` lines run as above; the lines
  after one are what a terminal shows (stdout and stderr, merged).
- ```` ```toml ````: parsed with ``tomllib``; a block with ``[data]`` (a complete
  analysis spec) is validated with :func:`bayes_poem.specfile.parse_spec`.
- Other ```` ```text ```` blocks (synopses, messages, formulas) are shown, not run;
  one that starts with ``$ `` looks like a transcript and must be ```` ```console ````.

Output comparison: only trailing whitespace is normalised; a line ``...`` alone
(indented or not) in a shown output stands for any number of lines, an elision
the reader can see.

A block the test cannot run is opted out in the markdown by the line
``<!-- docs-test: skip (reason) -->`` right before its fence; each skip is its own
skipped case (listed by ``-ra``), and a skip without a reason fails.

Files whose blocks sample are marked ``mcmc`` (:data:`SAMPLING_FILES`); the unit
tier (tests/conftest.py) fails a file that samples without the mark. The unit tests
of the extractor and of the comparison at the end keep this test able to fail.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = ("README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))

# Files with a block that samples (a fit, or a CLI command that fits).
SAMPLING_FILES = frozenset({
    "README.md", "docs/quickstart.md", "docs/sensitivity.md", "docs/report.md",
    "docs/compare.md", "docs/cli.md",
})

# Shell lines starting with these words are installation steps: shown, never run.
NOT_RUN = (("make",), ("pip", "install"), ("git", "clone"))

# What a shell line may run: the CLI, as a reader with the package installed would,
# and read-only commands that show its output files.
CLI = (("bayes-poem",), (".venv/bin/bayes-poem",), ("python", "-m", "bayes_poem"))
INSPECT = (("head",), ("cat",), ("ls",))
# CLI subcommands that never sample; any other one samples in a subprocess, where the
# unit tier's guard (tests/conftest.py) cannot see it, so its file must be mcmc.
NON_SAMPLING = frozenset({"check", "datasets", "--version", "--help", "-h"})

COMMAND_TIMEOUT = 900  # seconds; a hung command fails instead of blocking the suite

FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")
DIRECTIVE = re.compile(r"^<!--\s*docs-test:(.*?)-->\s*$")
SKIP = re.compile(r"^\s*skip\s*(?:\((.*)\))?\s*$")
EXIT_STATUS = re.compile(r"#\s*exit status (\d+)\s*$")


@dataclass(frozen=True)
class Block:
    """A fenced code block: language tag, body, 1-based line of its opening fence."""

    file: str
    line: int
    lang: str
    body: str
    skip: str | None = None  # the reason given by a docs-test: skip comment
    end: int = 0  # line of the closing fence

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


class DocsError(AssertionError):
    """A block that fails, naming file:line."""


def extract_blocks(text: str, file: str = "<doc>") -> list[Block]:
    """Fenced blocks of a markdown text, with their ``docs-test`` directives.

    Raises ``DocsError`` for an unclosed fence, an unknown directive or a skip
    without a reason.
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    pending: tuple[int, str | None] | None = None  # (line, reason) of a skip comment
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = DIRECTIVE.match(line.strip())
        if directive:
            skip = SKIP.match(directive.group(1))
            if not skip:
                raise DocsError(f"{file}:{i + 1}: unknown docs-test directive {line.strip()!r}; "
                                "the only one is '<!-- docs-test: skip (reason) -->'")
            reason = (skip.group(1) or "").strip()
            if not reason:
                raise DocsError(f"{file}:{i + 1}: a docs-test skip needs a reason: "
                                "'<!-- docs-test: skip (why it cannot run) -->'")
            pending = (i + 1, reason)
            i += 1
            continue
        fence = FENCE.match(line)
        if not fence:
            if line.strip() and pending:
                raise DocsError(f"{file}:{pending[0]}: a docs-test skip must come right "
                                "before a code block")
            i += 1
            continue
        marker, lang = fence.group(1), fence.group(2).lower()
        start = i
        i += 1
        body: list[str] = []
        while i < len(lines) and not (lines[i].startswith(marker[0] * len(marker))
                                      and not lines[i].strip(marker[0]).strip()):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise DocsError(f"{file}:{start + 1}: code block never closed")
        blocks.append(Block(file, start + 1, lang, "\n".join(body) + "\n" if body else "",
                            skip=pending[1] if pending else None, end=i + 1))
        pending = None
        i += 1
    if pending:
        raise DocsError(f"{file}:{pending[0]}: a docs-test skip must come right before a code "
                        "block")
    return blocks


def pair_outputs(blocks: list[Block], text: str) -> list[tuple[Block, Block | None]]:
    """Each block with its shown output: the ```text block right after a python block."""
    lines = text.splitlines()
    paired: list[tuple[Block, Block | None]] = []
    i = 0
    while i < len(blocks):
        block = blocks[i]
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        if (block.lang == "python" and nxt is not None and nxt.lang == "text"
                and not any(s.strip() for s in lines[block.end:nxt.line - 1])):
            paired.append((block, nxt))
            i += 2
        else:
            paired.append((block, None))
            i += 1
    return paired


# --------------------------------------------------------------------------------------
# Output comparison
# --------------------------------------------------------------------------------------

def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.rstrip().splitlines()]


def output_matches(shown: str, actual: str) -> bool:
    """``actual`` equals ``shown`` up to trailing whitespace; a line ``...`` (indented or
    not) stands for any number of lines."""
    want, got = _lines(shown), _lines(actual)

    def match(w: int, g: int) -> bool:
        while w < len(want):
            if want[w].strip() == "...":
                return any(match(w + 1, k) for k in range(g, len(got) + 1))
            if g >= len(got) or want[w] != got[g]:
                return False
            w, g = w + 1, g + 1
        return g == len(got)

    return match(0, 0)


def output_diff(shown: str, actual: str) -> str:
    return "\n".join(difflib.unified_diff(_lines(shown), _lines(actual), "shown in the docs",
                                          "printed by the code", lineterm=""))


# --------------------------------------------------------------------------------------
# Shell lines
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Command:
    """One shell line: run or not, and the exit status the docs expect."""

    line: str
    run: bool
    status: int = 0
    samples: bool = False


def classify(line: str, where: str) -> Command | None:
    """A shell line as pasted: ``None`` for blank/comment lines, else a ``Command``."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError as err:
        raise DocsError(f"{where}: cannot parse shell line {line!r} ({err})") from None
    if not words:
        return None
    status = EXIT_STATUS.search(line)
    if any(tuple(words[:len(p)]) == p for p in NOT_RUN):
        return Command(line, run=False)
    prefix = next((p for p in CLI + INSPECT if tuple(words[:len(p)]) == p), None)
    if prefix is not None:
        absolute = [w for w in words[1:] if w.startswith(("/", "~"))]
        if absolute:
            raise DocsError(f"{where}: {line.strip()!r} uses the absolute path {absolute[0]}; "
                            "docs commands run in a temporary directory: use a relative path")
        rest = words[len(prefix):]
        samples = prefix in CLI and (not rest or rest[0] not in NON_SAMPLING)
        return Command(line, run=True, status=int(status.group(1)) if status else 0,
                       samples=samples)
    raise DocsError(f"{where}: {line.strip()!r} is neither a bayes-poem command nor an install "
                    f"command (NOT_RUN in tests/test_docs.py); run it or skip the block with "
                    f"a reason")


def parse_console(body: str, where: str) -> list[tuple[Command, str]]:
    """A ```console transcript: ``$ command`` lines, each with the output shown after it."""
    steps: list[tuple[Command | None, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            steps.append((classify(line[2:], where), []))
        elif not steps:
            if line.strip():
                raise DocsError(f"{where}: a console block starts with '$ COMMAND'")
        else:
            steps[-1][1].append(line)
    out = []
    for command, shown in steps:
        if command is None:
            raise DocsError(f"{where}: empty '$' line in a console block")
        out.append((command, "\n".join(shown)))
    return out


def _workdir(tmp: Path) -> dict[str, str]:
    """Fill ``tmp`` with what the docs need and return the environment of their commands."""
    shutil.copytree(ROOT / "models", tmp / "models")
    # the shipped CSVs at their repository paths (data only: no module shadows the package)
    shutil.copytree(ROOT / "bayes_poem" / "datasets", tmp / "bayes_poem" / "datasets",
                    ignore=lambda d, names: [n for n in names if not n.endswith(".csv")])
    bin_dir = tmp / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    cli = bin_dir / "bayes-poem"
    cli.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -c "
                   "'import sys; from bayes_poem.cli import main; sys.exit(main())' \"$@\"\n")
    cli.chmod(0o755)
    python = bin_dir / "python"
    python.symlink_to(sys.executable)
    env = dict(os.environ)
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(ROOT),
               PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    return env


def run_command(command: Command, cwd: Path, env: dict[str, str], where: str) -> str:
    """Run one shell line with bash; its merged stdout and stderr."""
    proc = subprocess.run(["bash", "-c", command.line], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=COMMAND_TIMEOUT)
    if proc.returncode != command.status:
        raise DocsError(f"{where}: {command.line.strip()!r} exited {proc.returncode} "
                        f"(the docs expect {command.status}):\n{proc.stdout[-3000:]}")
    return proc.stdout


# --------------------------------------------------------------------------------------
# Running a file
# --------------------------------------------------------------------------------------

def _check_toml(block: Block) -> None:
    try:
        raw = tomllib.loads(block.body)
    except tomllib.TOMLDecodeError as err:
        raise DocsError(f"{block.where}: not valid TOML ({err})") from None
    if "data" in raw:
        from bayes_poem.errors import BayesPoemError
        from bayes_poem.specfile import parse_spec

        try:
            parse_spec(raw, source=block.where, base_dir=Path.cwd())
        except BayesPoemError as err:
            raise DocsError(f"{block.where}: not a valid analysis spec: {err}") from None


def _run_python(block: Block, shown: Block | None, namespace: dict) -> None:
    from bayes_poem.errors import ConvergenceWarning

    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        # an example that samples badly without saying so misleads its reader
        warnings.simplefilter("error", ConvergenceWarning)
        exec(compile(block.body, f"{block.where} (docs)", "exec"), namespace)
    if shown is not None and not output_matches(shown.body, out.getvalue()):
        raise DocsError(f"{block.where}: the output shown at line {shown.line} is not what the "
                        f"block prints:\n{output_diff(shown.body, out.getvalue())}")


def run_file(file: str, tmp: Path) -> list[str]:
    """Run every block of one markdown file in ``tmp``; what was checked, one line each."""
    text = (ROOT / file).read_text()
    env = _workdir(tmp)
    namespace: dict = {"__name__": "__docs__"}
    checked = []

    def run(command: Command, where: str) -> str:
        if command.samples and file not in SAMPLING_FILES:
            raise DocsError(f"{where}: {command.line.strip()!r} samples: add {file} to "
                            "SAMPLING_FILES in tests/test_docs.py (the mcmc tier)")
        return run_command(command, tmp, env, where)

    for block, shown in pair_outputs(extract_blocks(text, file), text):
        if block.skip:
            continue
        if block.lang == "python":
            _run_python(block, shown, namespace)
        elif block.lang in ("bash", "sh", "shell"):
            for n, line in enumerate(block.body.splitlines()):
                command = classify(line, f"{file}:{block.line + 1 + n}")
                if command is not None and command.run:
                    run(command, f"{file}:{block.line + 1 + n}")
        elif block.lang == "console":
            for command, shown_out in parse_console(block.body, block.where):
                if not command.run:
                    continue
                actual = run(command, block.where)
                if not output_matches(shown_out, actual):
                    raise DocsError(f"{block.where}: '$ {command.line.strip()}' does not print "
                                    f"what the docs show:\n{output_diff(shown_out, actual)}")
        elif block.lang == "toml":
            _check_toml(block)
        elif block.lang in ("text", ""):
            if block.body.startswith("$ "):
                raise DocsError(f"{block.where}: a transcript ('$ ...') in a ```text block is "
                                "never run; make it ```console")
            continue
        else:
            raise DocsError(f"{block.where}: no runner for ```{block.lang} blocks")
        checked.append(f"{block.where} {block.lang}")
    return checked


def _cases():
    for file in DOC_FILES:
        marks = [pytest.mark.mcmc] if file in SAMPLING_FILES else []
        yield pytest.param(file, id=file, marks=marks)


def _skips():
    for file in DOC_FILES:
        try:
            blocks = extract_blocks((ROOT / file).read_text(), file)
        except DocsError:
            continue  # reported by the file's own case
        for block in blocks:
            if block.skip:
                yield pytest.param(block, id=f"{block.where}-skip")


@pytest.mark.parametrize("file", list(_cases()))
def test_docs_blocks_run_and_show_their_output(file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    run_file(file, tmp_path)


@pytest.mark.parametrize("block", list(_skips()))
def test_skipped_docs_blocks(block):
    pytest.skip(f"{block.where} ```{block.lang}: {block.skip}")


def test_sampling_files_exist():
    assert SAMPLING_FILES <= set(DOC_FILES)


# --------------------------------------------------------------------------------------
# The test can fail: extractor, pairing, comparison, shell lines
# --------------------------------------------------------------------------------------

SAMPLE = """\
# Title

```python
print(1 + 1)
```

```text
2
```

<!-- docs-test: skip (needs a scheduler) -->
```bash
bayes-poem sensitivity s.toml --scheduler tcp://host:8786
```

````markdown
```python
nested
```
````

```python
x = 3
```
Some prose.
```text
not output
```
"""


def test_extractor_finds_blocks_lines_skips_and_nested_fences():
    blocks = extract_blocks(SAMPLE, "s.md")
    assert [(b.line, b.lang) for b in blocks] == [
        (3, "python"), (7, "text"), (12, "bash"), (16, "markdown"), (22, "python"),
        (26, "text")]
    assert blocks[0].body == "print(1 + 1)\n"
    assert blocks[2].skip == "needs a scheduler" and blocks[1].skip is None
    assert blocks[3].body == "```python\nnested\n```\n"


def test_output_block_is_the_text_block_right_after_python():
    paired = pair_outputs(extract_blocks(SAMPLE), SAMPLE)
    assert [(b.line, s.line if s else None) for b, s in paired] == [
        (3, 7), (12, None), (16, None), (22, None), (26, None)]


@pytest.mark.parametrize("text, message", [
    ("<!-- docs-test: skip -->\n```bash\nx\n```\n", "needs a reason"),
    ("<!-- docs-test: skip () -->\n```bash\nx\n```\n", "needs a reason"),
    ("<!-- docs-test: run -->\n```bash\nx\n```\n", "unknown docs-test directive"),
    ("<!-- docs-test: skip (r) -->\nprose\n```bash\nx\n```\n", "right before a code block"),
    ("```python\nx = 1\n", "never closed"),
])
def test_extractor_refuses_malformed_markdown(text, message):
    with pytest.raises(DocsError, match=message):
        extract_blocks(text, "s.md")


def test_output_comparison_fails_on_a_wrong_output():
    assert output_matches("a  \nb\n\n", "a\nb\n")
    assert not output_matches("p_new 0.89\n", "p_pooled 0.89\n")
    assert not output_matches("a\nb\n", "a\nb\nc\n")
    assert not output_matches("  a\n", "a\n")  # leading whitespace counts
    assert not output_matches("a\n", "")
    assert "-p_new 0.89" in output_diff("p_new 0.89\n", "p_pooled 0.89\n")


def test_output_comparison_elision():
    assert output_matches("a\n...\nd\n", "a\nb\nc\nd\n")
    assert output_matches("a\n...\nd\n", "a\nd\n")
    assert not output_matches("a\n...\nd\n", "a\nb\nc\n")
    assert output_matches("a\n    ...\n", "a\n    b\n    c\n")
    assert not output_matches("a ...\n", "a b\n")  # only a whole line elides


def test_python_block_with_a_wrong_shown_output_fails():
    text = "```python\nprint('p_new')\n```\n\n```text\np_pooled\n```\n"
    (block, shown), = pair_outputs(extract_blocks(text, "t.md"), text)
    with pytest.raises(DocsError, match=r"t.md:1: the output shown at line 5"):
        _run_python(block, shown, {})
    _run_python(block, Block("t.md", 5, "text", "p_new\n"), {})


def test_shell_lines_are_the_cli_install_steps_or_an_error():
    assert classify("  # a comment", "w") is None
    assert classify("make run    # fits", "w") == Command("make run    # fits", run=False)
    assert classify("pip install -e .", "w").run is False
    assert classify(".venv/bin/bayes-poem check x.toml  # exit status 2", "w").status == 2
    assert classify("bayes-poem datasets", "w") == Command("bayes-poem datasets", run=True)
    assert classify("bayes-poem run s.toml", "w").samples
    assert classify(".venv/bin/bayes-poem sensitivity s.toml --jobs 2", "w").samples
    assert not classify("bayes-poem check s.toml", "w").samples
    assert not classify("head -n 2 results/x/summary.csv", "w").samples
    with pytest.raises(DocsError, match="w: 'rm -rf results' is neither"):
        classify("rm -rf results", "w")
    with pytest.raises(DocsError, match="absolute path /tmp/x; .* use a relative path"):
        classify("bayes-poem run models/rat_tumors.toml --out /tmp/x", "w")


def test_a_convergence_warning_fails_a_python_block():
    from bayes_poem.errors import ConvergenceWarning

    body = ("import warnings\nfrom bayes_poem.errors import ConvergenceWarning\n"
            "warnings.warn('R-hat > 1.01', ConvergenceWarning)\n")
    with pytest.raises(ConvergenceWarning):
        _run_python(Block("t.md", 1, "python", body), None, {})


def test_console_transcripts_pair_commands_with_outputs():
    steps = parse_console("$ bayes-poem datasets\nsed_synthetic\n...\n$ make run\n", "w")
    assert [(c.line, c.run, out) for c, out in steps] == [
        ("bayes-poem datasets", True, "sed_synthetic\n..."), ("make run", False, "")]
    with pytest.raises(DocsError, match="starts with"):
        parse_console("output\n$ bayes-poem datasets\n", "w")


def test_a_failing_or_unexpected_exit_status_fails(tmp_path):
    env = _workdir(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text("[data]\ndataset = 'sed_synthetic'\noutcome = 'nope'\n")
    out = run_command(classify("bayes-poem check bad.toml  # exit status 2", "w"),
                      tmp_path, env, "w")
    assert out.startswith("bayes-poem: error: ") and "'nope'" in out
    with pytest.raises(DocsError, match="exited 2 \\(the docs expect 0\\)"):
        run_command(classify("bayes-poem check bad.toml", "w"), tmp_path, env, "w")


def test_an_unmarked_file_whose_command_samples_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "bayes_poem" / "datasets").mkdir(parents=True)
    (tmp_path / "docs" / "t.md").write_text("```bash\nbayes-poem run models/x.toml\n```\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(DocsError, match="docs/t.md:2: 'bayes-poem run models/x.toml' samples"):
        run_file("docs/t.md", tmp_path / "work")


def test_transcripts_in_text_blocks_and_unknown_languages_fail(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "t.md").write_text("```text\n$ bayes-poem datasets\nsed_synthetic\n```\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "bayes_poem" / "datasets").mkdir(parents=True)
    with pytest.raises(DocsError, match="make it ```console"):
        run_file("docs/t.md", tmp_path / "work")
    (docs / "t.md").write_text("```r\nrma(yi, vi)\n```\n")
    with pytest.raises(DocsError, match="docs/t.md:1: no runner for ```r blocks"):
        run_file("docs/t.md", tmp_path / "work2")
