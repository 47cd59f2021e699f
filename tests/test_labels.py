"""Class 14 of issue 9: labels that would make coordinates ambiguous are refused.

Row labels are ``"<study> | <subgroup>"`` (``dims.ROW``), so ``|`` in a study or
subgroup label could make two cells share one ``row`` coordinate: the table
refuses it, naming the source, row and column. Control characters (newlines,
tabs, NUL, ...) and the reserved subgroup name ``overall`` are refused too;
labels differing only by case or whitespace already were.
"""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from bayes_poem.errors import DataError
from bayes_poem.spec import ModelSpec
from bayes_poem.table import load_table
from tests.helpers import run_cli

PIPES = ["A | B", "A|B", "|", "A |", "| B", " A || B ", "A\u2009|\u2009B"]
CONTROLS = ["A\nB", "A\rB", "A\tB", "A\x00B", "A\x1b[31mB", "A\x7fB", "A\x85B", "A\u2028B",
            "A\u2029B", "A\x0bB", "A\x0cB"]
RESERVED = ["overall", "Overall", " OVERALL "]


def _frame(column: str, label: str) -> pd.DataFrame:
    return pd.DataFrame({"study": ["S1", "S2", "S3"], "subgroup": ["g1", "g1", "g2"],
                         "outcome": ["x", "x", "x"], "events": [1, 2, 3],
                         "total": [10, 10, 10]}).assign(**{column: ["ok", "ok2", label]})


def _csv(tmp_path, frame: pd.DataFrame):
    path = tmp_path / "labels.csv"
    frame.to_csv(path, index=False, quoting=csv.QUOTE_ALL)
    return path


@pytest.mark.parametrize("label", PIPES, ids=repr)
@pytest.mark.parametrize("column", ["study", "subgroup"])
def test_class14_pipe_in_study_or_subgroup_via_cli(tmp_path, capsys, column, label):
    path = _csv(tmp_path, _frame(column, label))
    code, out, err = run_cli(["check", path], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert f"labels.csv: row 3 (line 4), column '{column}': label" in err
    assert "'|', which is reserved" in err and "Traceback" not in err


@pytest.mark.parametrize("label", PIPES, ids=repr)
@pytest.mark.parametrize("column", ["study", "subgroup"])
def test_class14_pipe_in_study_or_subgroup_via_dataframe(column, label):
    with pytest.raises(DataError, match=rf"^DataFrame: row 3, column '{column}': label .* "
                                        r"contains '\|', which is reserved"):
        load_table(_frame(column, label))


def test_class14_the_colliding_cells_of_the_issue_are_refused(tmp_path, capsys):
    """Study 'A | B' x subgroup 'C' and study 'A' x subgroup 'B | C' both label 'A | B | C'."""
    path = tmp_path / "collide.csv"
    path.write_text("study,subgroup,outcome,events,total\nA | B,C,x,1,10\nA,B | C,x,2,10\n"
                    "A,C,x,3,10\nA | B,B | C,x,4,10\n")
    code, out, err = run_cli(["check", path], capsys)
    assert code == 2 and "collide.csv: row 1 (line 2), column 'study'" in err, err


@pytest.mark.parametrize("label", CONTROLS, ids=repr)
@pytest.mark.parametrize("column", ["study", "subgroup", "outcome"])
def test_class14_control_characters_are_refused(column, label):
    with pytest.raises(DataError) as excinfo:
        load_table(_frame(column, label))
    message = str(excinfo.value)
    assert message.startswith(f"DataFrame: row 3, column '{column}': label ")
    assert "contains the control character U+" in message and "\n" not in message


@pytest.mark.parametrize("label", ["A\nB", "A\tB", "A\rB"], ids=repr)
def test_class14_control_characters_via_cli(tmp_path, capsys, label):
    path = _csv(tmp_path, _frame("study", label))
    code, out, err = run_cli(["check", path], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "labels.csv: row 3" in err and "column 'study'" in err
    assert "control character" in err


@pytest.mark.parametrize("label", ["", " ", "\t", " \n ", "\u3000"], ids=repr)
@pytest.mark.parametrize("column", ["study", "subgroup", "outcome"])
def test_class14_labels_empty_after_stripping(column, label):
    with pytest.raises(DataError, match=rf"^DataFrame: row 3, column '{column}': missing value"):
        load_table(_frame(column, label))


@pytest.mark.parametrize("label", RESERVED, ids=repr)
def test_class14_subgroup_overall_is_reserved(tmp_path, capsys, label):
    path = _csv(tmp_path, _frame("subgroup", label))
    code, out, err = run_cli(["check", path], capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert "labels.csv: row 3 (line 4), column 'subgroup': the subgroup label" in err
    assert "is reserved" in err


@pytest.mark.parametrize(("first", "second"), [("Type A", "type a"), ("A  B", "a b"),
                                               ("x", "X")])
def test_class14_labels_differing_only_by_case_still_refused(first, second):
    frame = _frame("study", second).assign(study=[first, "other", second])
    with pytest.raises(DataError, match="only by case or whitespace"):
        load_table(frame)


def test_class14_other_labels_stay_valid_and_row_labels_unique():
    """Punctuation, non-ASCII letters and '|' in the outcome (not part of row labels)."""
    frame = pd.DataFrame({"study": ["Smith/Jones 2019", "Müller (2020)", "O'Brien – 2021"],
                          "subgroup": ["overall survival", "type-III", "type-III"],
                          "outcome": ["success | 6 months"] * 3, "events": [1, 2, 3],
                          "total": [10, 10, 10]})
    table = load_table(frame)
    spec = ModelSpec.from_table(table, subgroup_effects="fixed")
    assert len(set(spec.row_labels)) == len(spec.row_labels) == 3
