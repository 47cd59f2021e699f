"""Every table as LaTeX and in one Word file (bayes_poem.exports), without sampling.

The Word file is read back with python-docx and every cell compared with the CSV's
number formatted as the exports format it (and a few cells with hand-written
strings, so the formatter is not only compared with itself); the LaTeX is checked
structurally (``pdflatex`` is not available): balanced braces and environments,
one ``&`` fewer than columns per row, no unescaped special character.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import docx
import numpy as np
import pandas as pd
import pytest
from docx.enum.text import WD_ALIGN_PARAGRAPH

from bayes_poem import exports
from bayes_poem.outputs import MARKER
from tests.test_results_dir import ROOT, _analysis, _hand_made_fit, _write_run

SPECIALS = "\\&%$#_{}~^<>"
WEIRD = ["type_iii", "50% & more", "a{b}$#~^\\c", "x < y > z"]


def _frame() -> pd.DataFrame:
    """A summary.csv-like table whose labels hold LaTeX's special characters."""
    return pd.DataFrame({
        "subgroup": WEIRD,
        "quantity": ["p_pooled"] * 4,
        "median": [0.8909617, 0.00049, np.nan, 1.0],
        "lower": [0.8171, -0.0004, 0.25, 0.999951],
        "upper": [0.95161, 0.5, 0.75, 1.0],
        "interval": ["90% ETI"] * 4,
        "events": [104, 0, 3, 8],
        "beta": [-0.02032, 1234.56789, np.nan, 2.0],
        "included": [True, False, True, True],
    })


PERCENT = ("median", "lower", "upper")


# ---------------------------------------------------------------------- cells
@pytest.mark.parametrize("value, percent, expected", [
    (0.8909617, True, "89.1%"), (0.00049, True, "0.0%"), (-0.0004, True, "0.0%"),
    (1.0, True, "100.0%"), (-0.02032, False, "-0.020"), (-0.0004, False, "0.000"),
    (1234.56789, False, "1234.568"), (np.int64(104), False, "104"), (True, False, "True"),
    (np.nan, False, ""), (None, True, ""), ("a_b", False, "a_b"), (float("inf"), False, "inf"),
])
def test_cells_are_formatted_as_the_text_output(value, percent, expected):
    assert exports.format_cell(value, percent) == expected


def test_a_constant_interval_column_goes_into_the_caption():
    frame = _frame()
    rows = exports.format_table(frame, PERCENT)
    assert "interval" not in rows[0] and len(rows) == 1 + len(frame)
    assert exports.caption_text(frame, "Pooled.") == "Pooled. Intervals: 90% ETI."
    two = frame.assign(freq_interval="95% CI").drop(columns="interval")
    assert (exports.caption_text(two, "Cmp") == "Cmp. Intervals (freq): 95% CI.")
    mixed = frame.assign(interval=["90% ETI", "95% HDI"] * 2)
    assert "interval" in exports.format_table(mixed)[0]
    assert exports.caption_text(mixed, "x") == "x."


# ---------------------------------------------------------------------- LaTeX
def _unescaped(text: str) -> str:
    """``text`` without the escapes latex_escape writes and the commands to_latex writes."""
    text = re.sub(r"\\(textbackslash|textasciitilde|textasciicircum|textless|textgreater)"
                  r"\{\}", "", text)
    return re.sub(r"\\[&%$#_{}]", "", text)


def _check_latex(tex: str, n_columns: int) -> list[str]:
    """Structural checks of a to_latex table; its body rows."""
    assert tex.count("\\begin{table}") == tex.count("\\end{table}") == 1
    assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") == 1
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert tex.count(rule) == 1
    bare = _unescaped(tex)
    depth = 0
    for ch in bare:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    lines = tex.split("\n")
    header = lines[lines.index("\\toprule") + 1]
    body = lines[lines.index("\\midrule") + 1:lines.index("\\bottomrule")]
    for row in [header, *body]:
        assert row.endswith(" \\\\")
        assert _unescaped(row).count("&") == n_columns - 1
        # no special character left unescaped in a cell
        cells = _unescaped(row[:-3]).replace("&", "")
        assert not set(cells) & set(SPECIALS), row
    return body


def test_latex_escapes_every_special_character_and_is_structurally_sound():
    frame = _frame()
    tex = exports.to_latex(frame, "Labels with _ % & in them: 100% sure", name="a_b",
                           percent=PERCENT, note="SYNTHETIC & made up")
    body = _check_latex(tex, n_columns=frame.shape[1] - 1)
    assert body[0].startswith("type\\_iii & p\\_pooled & 89.1\\% & 81.7\\% & 95.2\\% & 104 & "
                              "-0.020 & True")
    assert body[1].startswith("50\\% \\& more & ")
    assert body[2].startswith("a\\{b\\}\\$\\#\\textasciitilde{}\\textasciicircum{}"
                              "\\textbackslash{}c & ")
    assert body[3].startswith("x \\textless{} y \\textgreater{} z & ")
    assert ("\\caption{Labels with \\_ \\% \\& in them: 100\\% sure. Intervals: 90\\% ETI.}"
            in tex)
    assert "\\label{tab:a-b}" in tex  # no escapes in a label: \\ref{tab:a-b}
    assert "\\begin{tabular}{llrrrrrl}" in tex  # numbers right, labels and booleans left
    assert "SYNTHETIC \\& made up" in tex


def test_latex_escape_round_trips_each_character():
    for ch in SPECIALS:
        escaped = exports.latex_escape(f"a{ch}b")
        assert escaped != f"a{ch}b" and _unescaped(escaped) == "ab"


# ---------------------------------------------------------------------- Word
def _docx_tables(data: bytes) -> tuple[list[str], list[list[list[str]]]]:
    document = docx.Document(io.BytesIO(data))
    captions = [p.text for p in document.paragraphs if p.text.startswith("Table ")]
    cells = [[[cell.text for cell in row.cells] for row in table.rows]
             for table in document.tables]
    return captions, cells


def test_docx_round_trip_every_cell_equals_the_csv_formatted(tmp_path):
    frame = _frame()
    frame.to_csv(tmp_path / "summary.csv", index=False)
    read = pd.read_csv(tmp_path / "summary.csv")
    files = exports.table_files({"summary.csv": read, "other.csv": read.iloc[:2]},
                                {"summary.csv": exports.Caption("Pooled", PERCENT),
                                 "other.csv": "Other & more"}, title="T", synthetic=True)
    assert sorted(files) == ["other.tex", "summary.tex", "tables.docx"]
    captions, tables = _docx_tables(files["tables.docx"])
    assert captions == ["Table 1. Pooled. Intervals: 90% ETI.",
                        "Table 2. Other & more. Intervals: 90% ETI."]
    assert tables[0] == exports.format_table(read, PERCENT)
    assert tables[1] == exports.format_table(read.iloc[:2])
    # the formatted CSV numbers, written out by hand for one row
    assert tables[0][1] == ["type_iii", "p_pooled", "89.1%", "81.7%", "95.2%", "104",
                            "-0.020", "True"]
    assert tables[0][3][2] == "" and tables[0][4][3] == "100.0%"
    assert tables[1][2][6] == "1234.568"
    text = "\n".join(p.text for p in docx.Document(io.BytesIO(files["tables.docx"])).paragraphs)
    assert text.startswith("T\nSYNTHETIC DATA")


def test_a_2000_row_table_exports_every_cell_bold_header_and_right_aligned_numbers():
    """The Word table of a large study table (2,000 rows, as ``run`` writes at scale) is
    built from one template row (``_word_table``): every cell must still be the
    formatted CSV's, the header bold, number columns right-aligned in the body only."""
    rng = np.random.default_rng(2000)
    n = 2000
    total = rng.integers(5, 61, n)
    events = rng.binomial(total, 0.7)
    frame = pd.DataFrame({"study": [f"synthetic study {i}" for i in range(n)],
                          "subgroup": "all", "events": events, "total": total,
                          "observed": events / total, "median": rng.uniform(0, 1, n),
                          "interval": "95% ETI", "included": rng.random(n) > 0.1})
    frame.loc[7, "median"] = np.nan  # an empty cell in the middle
    files = exports.table_files({"study_estimates.csv": frame})
    document = docx.Document(io.BytesIO(files["tables.docx"]))
    (table,) = document.tables
    expected = exports.format_table(frame, exports.CAPTIONS["study_estimates.csv"].percent)
    assert [[cell.text for cell in row.cells] for row in table.rows] == expected
    assert len(expected) == n + 1 and expected[8][5] == ""
    assert expected[1][0] == "synthetic study 0" and expected[1][4].endswith("%")
    right = exports._numeric(exports._shown(frame))
    assert right == [False, False, True, True, True, True, False]
    for i, row in enumerate(table.rows):
        for cell, is_number in zip(row.cells, right, strict=True):
            (paragraph,) = cell.paragraphs
            assert [bool(run.bold) for run in paragraph.runs] == [i == 0] * len(paragraph.runs)
            aligned = paragraph.alignment == WD_ALIGN_PARAGRAPH.RIGHT
            assert aligned == (is_number and i > 0)


def test_word_cells_keep_tabs_breaks_edge_spaces_and_empty_text():
    odd = ["a\tb", " leading", "trailing ", "", "line\nbreak", "two  spaces", "Zürich"]
    frame = pd.DataFrame({"study": odd, "value": np.arange(len(odd), dtype=float)})
    _, tables = _docx_tables(exports.table_files({"x.csv": frame})["tables.docx"])
    assert [row[0] for row in tables[0][1:]] == odd
    assert tables[0] == exports.format_table(frame)


# ---------------------------------------------------------------------- run directories
def test_a_run_directory_has_every_table_as_tex_and_in_tables_docx(tmp_path):
    analysis = _analysis(ROOT / "models" / "sed_clinical_success.toml", tmp_path)
    out = _write_run(_hand_made_fit(analysis), analysis, tmp_path / "run")
    csvs = sorted(p.name for p in out.glob("*.csv"))
    assert csvs == ["contrasts.csv", "diagnostics.csv", "heterogeneity.csv",
                    "study_estimates.csv", "summary.csv"]
    assert all(name in exports.CAPTIONS for name in csvs)
    captions, tables = _docx_tables((out / exports.DOCX).read_bytes())
    assert len(tables) == len(csvs)
    order = ["summary.csv", "heterogeneity.csv", "study_estimates.csv", "contrasts.csv",
             "diagnostics.csv"]
    for k, name in enumerate(order):
        read = pd.read_csv(out / name)
        caption = exports.CAPTIONS[name]
        assert tables[k] == exports.format_table(read, caption.percent), name
        assert captions[k].startswith(f"Table {k + 1}. {caption.text}")
        tex = (out / name.replace(".csv", ".tex")).read_text()
        _check_latex(tex, n_columns=len(tables[k][0]))
        if "interval" in read.columns:  # the interval kind and level in the caption
            label = read["interval"].iloc[0]  # the spec's: 95% ETI
            assert label == "95% ETI"
            assert f"Intervals: {label.replace('%', chr(92) + '%')}." in tex
            assert captions[k].endswith(f"{label}.")
    # the summary's rates as percentages, as summary.txt prints them
    summary = pd.read_csv(out / "summary.csv")
    assert tables[0][1][3] == f"{100 * summary['median'][0]:.1f}%"
    marker = (out / MARKER).read_text()
    assert '"tables.docx"' in marker and '"summary.tex"' in marker


def test_export_tables_from_python(tmp_path):
    analysis = _analysis(ROOT / "models" / "rat_tumors.toml", tmp_path)
    fit = _hand_made_fit(analysis)
    out = exports.export_tables(fit, tmp_path / "tables", title="Rat tumours")
    names = {p.name for p in Path(out).iterdir()}
    assert {"summary.csv", "summary.tex", "heterogeneity.tex", "tables.docx"} <= names
    with pytest.raises(Exception, match="exists"):
        exports.export_tables(fit, out)


# ---------------------------------------------------------------------- reports
def test_a_reports_tables_are_exported_in_reading_order_without_the_highlight():
    from bayes_poem.report.document import HIGHLIGHT, Report, Section

    loo = pd.DataFrame({"study": ["A_1", "B"], "elpd": ["-2.715", "-1.675"],
                        HIGHLIGHT: [True, False]})
    report = Report(
        title="R & D", subtitle="", synthetic=True,
        sections=(Section("Posterior summaries", table=pd.DataFrame({"x": ["89.1%"]}),
                          table_caption="Pooled probabilities, median [95% ETI]"),
                  Section("Checks", text="no table", subsections=(
                      Section("Leave-one-study-out (LOO)", table=loo),))),
        footer=Section("Reproducibility"))
    tables = exports.report_tables(report)
    assert list(tables) == ["table01_posterior_summaries.csv",
                            "table02_leave_one_study_out_loo.csv"]
    assert tables["table01_posterior_summaries.csv"][1] == (
        "Posterior summaries: Pooled probabilities, median [95% ETI]")
    files = {name: writer for name, writer in exports.report_table_files(report).items()}
    assert sorted(files) == ["table01_posterior_summaries.tex",
                             "table02_leave_one_study_out_loo.tex", "tables.docx"]
    captions, cells = _docx_tables(exports.table_files(
        {name: frame for name, (frame, _) in tables.items()},
        {name: caption for name, (_, caption) in tables.items()})["tables.docx"])
    assert captions == ["Table 1. Posterior summaries: Pooled probabilities, median "
                        "[95% ETI].", "Table 2. Leave-one-study-out (LOO)."]
    assert cells[1] == [["study", "elpd"], ["A_1", "-2.715"], ["B", "-1.675"]]


# ---------------------------------------------------------------------- commands (tier 2)
def _check_directory(out: Path) -> None:
    """Every CSV of ``out`` has its NAME.tex and its table in tables.docx, cell for cell."""
    csvs = sorted(p for p in out.glob("*.csv"))
    assert csvs
    _, tables = _docx_tables((out / exports.DOCX).read_bytes())
    assert len(tables) == len(csvs)
    for path in csvs:
        read = pd.read_csv(path)
        tex = (out / f"{path.stem}.tex").read_text()
        percent = next((c.percent for c in (exports.CAPTIONS.get(path.name),
                                            exports.JOINT_CAPTIONS.get(path.name),
                                            exports.TRIAL_CAPTIONS.get(path.name)) if c), ())
        rows = exports.format_table(read, percent)
        _check_latex(tex, n_columns=len(rows[0]))
        assert rows in tables, path.name  # every cell: the CSV's number, formatted


@pytest.mark.mcmc
@pytest.mark.filterwarnings("ignore::bayes_poem.errors.ConvergenceWarning")  # short chains
def test_run_compare_and_joint_run_export_every_csv(tmp_path, capsys):
    from bayes_poem.cli import main

    quick = "\n[sampler]\ndraws = 200\ntune = 300\nchains = 2\nseed = 5\n"
    spec = tmp_path / "quick.toml"
    spec.write_text('[data]\ndataset = "sed_synthetic"\noutcome = "clinical_success"\n'
                    'label = "Label_with & 100%"\n' + quick)
    joint_spec = tmp_path / "joint.toml"
    joint_spec.write_text('[data]\ndataset = "sed_synthetic"\n'
                          'outcomes = ["clinical_success", "adverse_event"]\n' + quick)
    for command, path in (("run", spec), ("compare", spec), ("run", joint_spec)):
        out = tmp_path / f"{command}_{path.stem}"
        assert main([command, str(path), "--out", str(out), "--quiet"]) == 0
        _check_directory(out)
        docx_text = "\n".join(p.text for p in docx.Document(out / exports.DOCX).paragraphs)
        assert "SYNTHETIC DATA" in docx_text
    capsys.readouterr()


def test_counts_stored_as_floats_are_shown_as_integers_but_probabilities_are_not():
    frame = pd.DataFrame({"k": [8.0, np.nan], "divergences": [0.0, 3.0],
                          "df": [2.0, 2.5], "p": [1.0, 0.0]})
    assert exports.format_table(frame) == [["k", "divergences", "df", "p"],
                                           ["8", "0", "2.000", "1.000"],
                                           ["", "3", "2.500", "0.000"]]


def test_a_table_without_columns_is_a_note_not_an_empty_tabular():
    files = exports.table_files({"contrasts.csv": pd.DataFrame(),
                                 "x.csv": pd.DataFrame(columns=["a_1", "b"])})
    tex = files["contrasts.tex"].decode()
    assert "tabular" not in tex and "\\emph{(no entries)}" in tex
    _check_latex(files["x.tex"].decode(), n_columns=2)  # a header, no rows
    captions, tables = _docx_tables(files["tables.docx"])
    assert len(captions) == 2 and tables == [[["a_1", "b"]]]
