"""Tier-1 tests of the data-loading boundary: ``load_table``, ``StudyTable``, ``wide_to_long``.

Every bad input is fed twice, as a CSV file and as a ``DataFrame``; the
``DataError`` message must name the source ("<path>" or "DataFrame"), the data
row (plus "(line N+1)" for files) and the column.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_poem.errors import BayesPoemError, DataError
from bayes_poem.table import StudyTable, load_table, wide_to_long

HEADER = ("study", "subgroup", "outcome", "events", "total")
REQUIRED = ("study", "outcome", "events", "total")
VIAS = ("csv", "frame")


def good_rows() -> list[dict[str, object]]:
    """A small valid long table; row numbers in messages count these from 1."""
    return [
        {"study": "Alpha", "subgroup": "type_iii", "outcome": "clinical_success",
         "events": 9, "total": 10},
        {"study": "Alpha", "subgroup": "des", "outcome": "clinical_success",
         "events": 4, "total": 5},
        {"study": "Beta", "subgroup": "type_iii", "outcome": "clinical_success",
         "events": 7, "total": 8},
        {"study": "Beta", "subgroup": "type_iii", "outcome": "adverse_event",
         "events": 1, "total": 8},
    ]


def _csv_cell(value: object) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def write_csv(path: Path, rows: list[dict[str, object]], columns=None) -> Path:
    columns = list(columns or (rows[0].keys() if rows else HEADER))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_cell(row[c]) for c in columns])
    return path


def load_via(via: str, rows: list[dict[str, object]], tmp_path: Path, columns=None):
    """Load ``rows`` through a CSV file or a DataFrame; returns (table, source name)."""
    columns = list(columns or (rows[0].keys() if rows else HEADER))
    if via == "csv":
        path = write_csv(tmp_path / "studies.csv", rows, columns)
        return load_table(path), str(path)
    return load_table(pd.DataFrame(rows, columns=columns)), "DataFrame"


def error_via(via: str, rows, tmp_path: Path, columns=None) -> tuple[str, str]:
    """Load and expect a DataError; returns (message, source name)."""
    columns = list(columns or (rows[0].keys() if rows else HEADER))
    source = str(tmp_path / "studies.csv") if via == "csv" else "DataFrame"
    with pytest.raises(DataError) as excinfo:
        load_via(via, rows, tmp_path, columns)
    return str(excinfo.value), source


def where(via: str, source: str, row: int, column: str) -> str:
    line = f" (line {row + 1})" if via == "csv" else ""
    return f"{source}: row {row}{line}, column '{column}'"


def names_row(message: str, row: int) -> bool:
    return re.search(rf"\brow {row}\b", message) is not None


# ---------------------------------------------------------------------------
# Bad counts
# ---------------------------------------------------------------------------

BAD_COUNTS = [
    # (column, value in the DataFrame, text in the CSV, fragment of the message)
    ("events", 2.5, "2.5", "not an integer count"),
    ("total", 8.5, "8.5", "not an integer count"),
    ("events", "abc", "abc", "'abc' is not an integer count"),
    ("total", "abc", "abc", "'abc' is not an integer count"),
    ("events", "1e2", "1e2", "is not an integer count"),
    ("events", -1, "-1", "negative count (-1)"),
    ("total", -8, "-8", "negative count (-8)"),
    ("events", 9, "9", "events (9) > total (8)"),
    ("events", True, "true", "not"),
]


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize(("column", "frame_value", "csv_value", "fragment"), BAD_COUNTS)
def test_bad_count_names_source_row_and_column(via, column, frame_value, csv_value, fragment,
                                               tmp_path):
    rows = good_rows()
    rows[2][column] = csv_value if via == "csv" else frame_value
    message, source = error_via(via, rows, tmp_path)
    assert message.startswith(where(via, source, 3, column)), message
    assert fragment in message


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("zero", [0, "0", "0.0"])
def test_total_zero_is_rejected(via, zero, tmp_path):
    rows = good_rows()
    rows[1]["events"] = 0
    rows[1]["total"] = zero
    message, source = error_via(via, rows, tmp_path)
    assert message.startswith(where(via, source, 2, "total")), message
    assert "total is 0" in message


@pytest.mark.parametrize("via", VIAS)
def test_events_greater_than_total_reports_both_counts(via, tmp_path):
    rows = good_rows()
    rows[3]["events"] = 12
    message, source = error_via(via, rows, tmp_path)
    assert message == f"{where(via, source, 4, 'events')}: events (12) > total (8)"


# ---------------------------------------------------------------------------
# Missing values
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("column", HEADER)
@pytest.mark.parametrize("blank", ["", "   "], ids=["empty", "spaces"])
def test_missing_cell_in_csv(column, blank, tmp_path):
    rows = good_rows()
    rows[1][column] = blank
    message, source = error_via("csv", rows, tmp_path)
    assert message == f"{where('csv', source, 2, column)}: missing value"


@pytest.mark.parametrize("column", HEADER)
@pytest.mark.parametrize("missing", ["", "  ", None, np.nan, pd.NA],
                         ids=["empty", "spaces", "None", "NaN", "NA"])
def test_missing_cell_in_dataframe(column, missing, tmp_path):
    rows = good_rows()
    rows[1][column] = missing
    message, source = error_via("frame", rows, tmp_path)
    assert message == f"{where('frame', source, 2, column)}: missing value"


def test_missing_value_in_first_row_of_nullable_integer_column():
    frame = pd.DataFrame(good_rows())
    frame["total"] = pd.array([None, 5, 8, 8], dtype="Int64")
    with pytest.raises(DataError, match=r"^DataFrame: row 1, column 'total': missing value$"):
        load_table(frame)


# ---------------------------------------------------------------------------
# Duplicates and label spelling
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("via", VIAS)
def test_duplicate_key_names_both_rows(via, tmp_path):
    rows = good_rows()
    rows.append(dict(rows[1], events=3))  # repeats row 2 as row 5
    message, source = error_via(via, rows, tmp_path)
    lines = " (lines 3 and 6)" if via == "csv" else ""
    assert message.startswith(
        f"{source}: rows 2 and 5{lines} repeat study x subgroup x outcome")
    assert "Alpha x des x clinical_success" in message


@pytest.mark.parametrize("via", VIAS)
def test_duplicate_key_after_stripping_whitespace(via, tmp_path):
    rows = good_rows()
    rows.append(dict(rows[0], study=" Alpha ", events=1))
    message, source = error_via(via, rows, tmp_path)
    lines = " (lines 2 and 6)" if via == "csv" else ""
    assert message.startswith(f"{source}: rows 1 and 5{lines} repeat"), message


def test_interleaved_duplicates_name_rows_that_really_repeat():
    rows = good_rows()[:2]
    rows = rows + [dict(r, events=0) for r in rows]  # rows 3, 4 repeat rows 1, 2
    with pytest.raises(DataError) as excinfo:
        load_table(pd.DataFrame(rows))
    assert "rows 1 and 3" in str(excinfo.value)


LABEL_CLASHES = [
    ("Type III", "type iii"),
    ("a b", "a  b"),
    ("a b", "a\u00a0b"),  # a no-break space (a tab is a control character: refused)
    ("Jackhammer", "JACKHAMMER"),
]


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("column", ["study", "subgroup", "outcome"])
@pytest.mark.parametrize(("first", "second"), LABEL_CLASHES)
def test_labels_differing_only_by_case_or_whitespace(via, column, first, second, tmp_path):
    rows = good_rows()
    rows[0][column] = first
    rows[2][column] = second
    message, source = error_via(via, rows, tmp_path)
    assert message.startswith(where(via, source, 3, column)), message
    assert f"label {second!r} differs from {first!r} (row 1)" in message
    assert "only by case or whitespace" in message


@pytest.mark.parametrize("via", VIAS)
def test_surrounding_whitespace_in_labels_is_stripped(via, tmp_path):
    rows = good_rows()
    rows[2]["study"] = "  Beta"
    rows[3]["study"] = "Beta  "
    rows[1]["subgroup"] = " des "
    table, _ = load_via(via, rows, tmp_path)
    assert table.studies == ["Alpha", "Beta"]
    assert table.subgroups == ["type_iii", "des"]


# ---------------------------------------------------------------------------
# Structure: empty tables, missing columns, missing files
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("via", VIAS)
def test_header_only_table_has_no_rows(via, tmp_path):
    message, source = error_via(via, [], tmp_path, HEADER)
    assert message == f"{source}: the table has no rows"


@pytest.mark.parametrize("content", ["", "\n", "\n\n  \n"], ids=["0-byte", "newline", "blank"])
def test_empty_file(content, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataError) as excinfo:
        load_table(path)
    assert str(excinfo.value) == f"{path}: the file is empty"


@pytest.mark.parametrize("via", VIAS)
@pytest.mark.parametrize("dropped", REQUIRED)
def test_missing_required_column_lists_columns_found(via, dropped, tmp_path):
    columns = [c for c in HEADER if c != dropped]
    rows = [{c: r[c] for c in columns} for r in good_rows()]
    message, source = error_via(via, rows, tmp_path, columns)
    assert message == (
        f"{source}: missing required column(s) '{dropped}'; "
        f"columns found: {', '.join(columns)}"
    )


def test_several_missing_columns_are_all_named():
    frame = pd.DataFrame({"study": ["A"], "n": [3]})
    with pytest.raises(DataError) as excinfo:
        load_table(frame)
    message = str(excinfo.value)
    assert "'outcome', 'events', 'total'" in message
    assert message.endswith("columns found: study, n")


def test_dataframe_without_columns():
    with pytest.raises(DataError, match=r"columns found: \(none\)$"):
        load_table(pd.DataFrame())


def test_column_names_are_stripped(tmp_path):
    path = tmp_path / "padded.csv"
    path.write_text(" study , outcome,events , total\nA,o,1,2\n")
    table = load_table(path)
    assert list(table.frame.columns) == ["study", "subgroup", "outcome", "events", "total"]


def test_duplicate_columns_in_dataframe():
    frame = pd.DataFrame([["A", "o", 1, 2, 1]], columns=["study", "outcome", "events", "total",
                                                          "events"])
    with pytest.raises(DataError, match=r"^DataFrame: duplicate column\(s\) 'events'$"):
        load_table(frame)


def test_duplicate_columns_in_csv(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("study,outcome,events,total,events\nA,o,1,5,3\n")
    with pytest.raises(DataError, match="duplicate column"):
        load_table(path)


def test_rows_longer_than_header_are_rejected(tmp_path):
    path = tmp_path / "shifted.csv"
    path.write_text("study,outcome,events,total\nA,o,1,5,7\n")
    with pytest.raises(DataError):
        load_table(path)


def test_ragged_rows_are_a_data_error(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("study,outcome,events,total\nA,o,1,5\nB,o,1,5,7,9\n")
    expected = rf"^{re.escape(str(path))}: line 3: 6 fields, but the header has 4"
    with pytest.raises(DataError, match=expected):
        load_table(path)


def test_line_number_counts_blank_lines(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("study,outcome,events,total\nA,o,1,5\n\nB,o,9,5\n")
    with pytest.raises(DataError, match=r"row 2 \(line 4\)"):
        load_table(path)


@pytest.mark.parametrize("as_str", [True, False], ids=["str", "Path"])
def test_file_that_does_not_exist(as_str, tmp_path):
    path = tmp_path / "nowhere" / "studies.csv"
    with pytest.raises(DataError) as excinfo:
        load_table(str(path) if as_str else path)
    assert str(excinfo.value) == f"{path}: no such file"


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        load_table(tmp_path)


def test_undecodable_file_is_a_data_error(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"study,outcome,events,total\n\xff\xfe\xfa,o,1,2\n")
    with pytest.raises(DataError, match="binary.csv: not a UTF-8 text file"):
        load_table(path)


def test_data_error_is_a_package_and_value_error():
    with pytest.raises(BayesPoemError):
        load_table(pd.DataFrame())
    with pytest.raises(ValueError):
        load_table(pd.DataFrame())


def test_source_overrides_name_in_messages(tmp_path):
    rows = good_rows()
    rows[0]["events"] = -2
    with pytest.raises(DataError, match=r"^my trials: row 1, column 'events'"):
        load_table(pd.DataFrame(rows), source="my trials")
    path = write_csv(tmp_path / "x.csv", rows)
    with pytest.raises(DataError, match=r"^my file: row 1 \(line 2\), column 'events'"):
        load_table(path, source="my file")


# ---------------------------------------------------------------------------
# Good inputs
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("via", VIAS)
def test_valid_table_loads_in_order_with_int64_counts(via, tmp_path):
    table, source = load_via(via, good_rows(), tmp_path)
    assert isinstance(table, StudyTable)
    assert table.source == source
    assert table.has_subgroups is True
    assert list(table.frame.columns) == list(HEADER)
    assert table.frame["events"].dtype == np.int64
    assert table.frame["total"].dtype == np.int64
    assert table.frame.to_dict("records") == good_rows()
    assert table.studies == ["Alpha", "Beta"]
    assert table.subgroups == ["type_iii", "des"]
    assert table.outcomes == ["clinical_success", "adverse_event"]
    assert table.covariates == []
    assert table.metadata == {}
    assert table.is_synthetic is False


@pytest.mark.parametrize(("csv_value", "frame_value"),
                         [("3.0", 3.0), ("3.00", np.float32(3.0)), ("3", np.int16(3)),
                          (" 3 ", " 3 "), ("+3", "+3"), ("3.", "3.")])
@pytest.mark.parametrize("via", VIAS)
def test_integer_valued_counts_are_accepted(via, csv_value, frame_value, tmp_path):
    rows = good_rows()
    rows[1]["events"] = csv_value if via == "csv" else frame_value
    rows[1]["total"] = "5.0" if via == "csv" else 5.0
    table, _ = load_via(via, rows, tmp_path)
    assert table.frame.loc[1, "events"] == 3
    assert table.frame.loc[1, "total"] == 5
    assert table.frame["events"].dtype == np.int64


def test_float_columns_of_whole_numbers_are_accepted():
    frame = pd.DataFrame(good_rows()).astype({"events": float, "total": float})
    table = load_table(frame)
    assert table.frame["events"].tolist() == [9, 4, 7, 1]
    assert table.frame["total"].dtype == np.int64


@pytest.mark.parametrize("via", VIAS)
def test_zero_events_are_allowed(via, tmp_path):
    rows = good_rows()
    rows[3]["events"] = 0
    table, _ = load_via(via, rows, tmp_path)
    assert table.frame.loc[3, "events"] == 0


@pytest.mark.parametrize("via", VIAS)
def test_covariates_are_carried_along(via, tmp_path):
    rows = good_rows()
    for row, quality, year in zip(rows, ["good", "good", "fair", "fair"],
                                  [2014, 2014, 2016, 2016], strict=True):
        row["quality"] = quality
        row["year"] = year
    table, _ = load_via(via, rows, tmp_path)
    assert table.covariates == ["quality", "year"]
    assert list(table.frame.columns) == [*HEADER, "quality", "year"]
    assert table.frame["quality"].tolist() == ["good", "good", "fair", "fair"]
    assert [int(y) for y in table.frame["year"]] == [2014, 2014, 2016, 2016]
    subset = table.for_outcome("clinical_success")
    assert subset.frame["quality"].tolist() == ["good", "good", "fair"]


@pytest.mark.parametrize("via", VIAS)
def test_covariate_before_required_columns_is_moved_after_them(via, tmp_path):
    rows = [{"year": 2015, **r} for r in good_rows()]
    table, _ = load_via(via, rows, tmp_path, ["year", "total", "events", "outcome", "subgroup",
                                              "study"])
    assert list(table.frame.columns) == [*HEADER, "year"]
    assert table.frame["events"].tolist() == [9, 4, 7, 1]


@pytest.mark.parametrize("via", VIAS)
def test_table_without_subgroup_column_is_single_group(via, tmp_path):
    rows = [{k: v for k, v in r.items() if k != "subgroup"} for r in good_rows()[2:]]
    rows.insert(0, {"study": "Alpha", "outcome": "clinical_success", "events": 9, "total": 10})
    table, _ = load_via(via, rows, tmp_path)
    assert table.has_subgroups is False
    assert table.subgroups == ["all"]
    assert table.frame["subgroup"].tolist() == ["all"] * 3
    assert list(table.frame.columns) == list(HEADER)
    assert table.frame["events"].tolist() == [9, 7, 1]


def test_single_group_table_still_rejects_duplicates():
    frame = pd.DataFrame({"study": ["A", "A"], "outcome": ["o", "o"], "events": [1, 2],
                          "total": [3, 3]})
    with pytest.raises(DataError, match=r"rows 1 and 2 repeat .*\(A x all x o\)"):
        load_table(frame)


def test_non_string_labels_become_strings():
    frame = pd.DataFrame({"study": [1, 2], "outcome": ["o", "o"], "events": [1, 2],
                          "total": [3, 3]})
    table = load_table(frame)
    assert table.studies == ["1", "2"]


def test_input_dataframe_is_not_modified():
    frame = pd.DataFrame(good_rows()).rename(columns={"study": " study "})
    before = frame.copy()
    load_table(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_metadata_is_copied_onto_the_table():
    meta = {"citation": "X et al.", "synthetic": "TRUE"}
    table = load_table(pd.DataFrame(good_rows()), metadata=meta)
    assert table.metadata == meta
    assert table.metadata is not meta
    assert table.is_synthetic is True


# ---------------------------------------------------------------------------
# StudyTable methods
# ---------------------------------------------------------------------------

@pytest.fixture
def table() -> StudyTable:
    return load_table(pd.DataFrame(good_rows()), source="demo")


def test_for_outcome_keeps_only_that_outcome(table):
    subset = table.for_outcome("adverse_event")
    assert subset.outcomes == ["adverse_event"]
    assert subset.frame.to_dict("records") == [good_rows()[3]]
    assert list(subset.frame.index) == [0]
    assert subset.source == "demo"


@pytest.mark.parametrize("outcome", ["mortality", "Adverse_Event", ""])
def test_for_outcome_not_in_data_lists_outcomes_found(table, outcome):
    with pytest.raises(DataError) as excinfo:
        table.for_outcome(outcome)
    assert str(excinfo.value) == (
        f"demo: outcome '{outcome}' is not in the data; "
        "outcomes found: clinical_success, adverse_event"
    )


@pytest.mark.parametrize("order", [["des", "type_iii"], ["type_iii", "des"], ["des"]])
def test_with_subgroups_keeps_given_order(table, order):
    subset = table.with_subgroups(order)
    assert subset.subgroups == order
    expected = [r for s in order for r in good_rows() if r["subgroup"] == s]
    assert subset.frame.to_dict("records") == expected
    assert list(subset.frame.index) == list(range(len(expected)))


def test_with_subgroups_unknown_lists_subgroups_found(table):
    with pytest.raises(DataError) as excinfo:
        table.with_subgroups(["des", "jackhammer"])
    assert "'jackhammer'" in str(excinfo.value)
    assert str(excinfo.value).endswith("subgroups found: type_iii, des")


def test_without_studies(table):
    subset = table.without_studies(["Alpha"])
    assert subset.studies == ["Beta"]
    assert len(subset.frame) == 2
    with pytest.raises(DataError, match="'Gamma' not in the data"):
        table.without_studies(["Gamma"])
    with pytest.raises(DataError, match="leaves no rows"):
        table.without_studies(["Alpha", "Beta"])


def test_selections_do_not_change_the_original(table):
    before = table.frame.copy()
    table.for_outcome("adverse_event")
    table.with_subgroups(["des"])
    table.without_studies(["Beta"])
    pd.testing.assert_frame_equal(table.frame, before)


def test_data_hash_is_stable_on_reload(tmp_path):
    path = write_csv(tmp_path / "a.csv", good_rows())
    first = load_table(path).data_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert load_table(path).data_hash() == first
    assert load_table(pd.DataFrame(good_rows())).data_hash() == first
    copy = write_csv(tmp_path / "b.csv", good_rows())
    assert load_table(copy, source="elsewhere").data_hash() == first


@pytest.mark.parametrize(("index", "column", "value"),
                         [(0, "events", 8), (3, "total", 9), (1, "study", "Gamma"),
                          (2, "subgroup", "des")])
def test_data_hash_changes_with_the_data(index, column, value):
    base = load_table(pd.DataFrame(good_rows())).data_hash()
    rows = good_rows()
    rows[index][column] = value
    assert load_table(pd.DataFrame(rows)).data_hash() != base


def test_data_hash_changes_with_row_order():
    rows = good_rows()
    base = load_table(pd.DataFrame(rows)).data_hash()
    assert load_table(pd.DataFrame(rows[::-1])).data_hash() != base


# ---------------------------------------------------------------------------
# wide_to_long
# ---------------------------------------------------------------------------

def wide_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "study": ["Alpha", "Alpha", "Beta"],
        "subgroup": ["type_iii", "des", "type_iii"],
        "success": [9, 4, 7],
        "ae": [2, 0, 1],
        "n": [10, 5, 8],
        "quality": ["good", "good", "fair"],
    })


def test_wide_to_long_round_trip():
    long = wide_to_long(wide_frame(), {"clinical_success": "success", "adverse_event": "ae"},
                        total="n")
    assert list(long.columns) == [*HEADER, "quality"]
    assert len(long) == 6
    table = load_table(long)
    assert table.outcomes == ["clinical_success", "adverse_event"]
    records = {(r["study"], r["subgroup"], r["outcome"]): (r["events"], r["total"])
               for r in table.frame.to_dict("records")}
    assert records == {
        ("Alpha", "type_iii", "clinical_success"): (9, 10),
        ("Alpha", "des", "clinical_success"): (4, 5),
        ("Beta", "type_iii", "clinical_success"): (7, 8),
        ("Alpha", "type_iii", "adverse_event"): (2, 10),
        ("Alpha", "des", "adverse_event"): (0, 5),
        ("Beta", "type_iii", "adverse_event"): (1, 8),
    }
    assert table.frame["quality"].tolist() == ["good", "good", "fair"] * 2


def test_wide_to_long_with_a_total_per_outcome():
    wide = wide_frame().assign(n_ae=[9, 5, 7])
    long = wide_to_long(wide, {"clinical_success": "success", "adverse_event": "ae"},
                        total={"clinical_success": "n", "adverse_event": "n_ae"})
    assert "n" not in long.columns and "n_ae" not in long.columns
    ae = long[long["outcome"] == "adverse_event"]
    assert ae["total"].tolist() == [9, 5, 7]
    cs = long[long["outcome"] == "clinical_success"]
    assert cs["total"].tolist() == [10, 5, 8]


def test_wide_to_long_does_not_modify_its_input():
    wide = wide_frame()
    before = wide.copy()
    wide_to_long(wide, {"clinical_success": "success"}, total="n")
    pd.testing.assert_frame_equal(wide, before)


@pytest.mark.parametrize(("outcomes", "total", "missing"), [
    ({"clinical_success": "succes"}, "n", "'succes'"),
    ({"clinical_success": "success"}, "total", "'total'"),
    ({"clinical_success": "x", "adverse_event": "y"}, "n", "'x', 'y'"),
    ({"clinical_success": "success"}, {"clinical_success": "m"}, "'m'"),
])
def test_wide_to_long_missing_columns(outcomes, total, missing):
    with pytest.raises(DataError) as excinfo:
        wide_to_long(wide_frame(), outcomes, total=total)
    message = str(excinfo.value)
    assert message.startswith(f"wide_to_long: column(s) {missing} not in the table")
    assert message.endswith("columns found: study, subgroup, success, ae, n, quality")


def test_wide_to_long_needs_outcomes():
    with pytest.raises(DataError, match="no outcomes given"):
        wide_to_long(wide_frame(), {})


@pytest.mark.parametrize("total", [{"clinical_success": "n"},
                                   {"clinical_success": "n", "adverse_event": "n",
                                    "other": "n"}])
def test_wide_to_long_total_mapping_must_match_outcomes(total):
    with pytest.raises(DataError, match="exactly the outcomes clinical_success, adverse_event"):
        wide_to_long(wide_frame(), {"clinical_success": "success", "adverse_event": "ae"},
                     total=total)


def test_wide_to_long_output_errors_are_caught_by_load_table():
    wide = wide_frame()
    wide.loc[1, "ae"] = 6  # > n = 5
    long = wide_to_long(wide, {"clinical_success": "success", "adverse_event": "ae"}, total="n")
    with pytest.raises(DataError, match=r"^DataFrame: row 5, column 'events': events \(6\)"):
        load_table(long)


# ---------------------------------------------------------------------------
# Property-based tests
# ---------------------------------------------------------------------------

STUDY_LABELS = ["Alpha", "Beta", "Gamma 2", "delta-4", "E", "Study, 6", '7 "q"']
SUBGROUP_LABELS = ["type_iii", "des", "jackhammer", "NA", "null"]
OUTCOME_LABELS = ["clinical_success", "adverse_event", "0"]


@st.composite
def count_pair(draw) -> tuple[int, int]:
    total = draw(st.one_of(st.integers(1, 30), st.integers(1, 10**9)))
    events = draw(st.one_of(st.integers(0, total), st.sampled_from([0, total])))
    return events, total


@st.composite
def valid_rows(draw, min_size: int = 1) -> list[dict[str, object]]:
    keys = draw(st.lists(
        st.tuples(st.sampled_from(STUDY_LABELS), st.sampled_from(SUBGROUP_LABELS),
                  st.sampled_from(OUTCOME_LABELS)),
        min_size=min_size, max_size=12, unique=True,
    ))
    rows = []
    for study, subgroup, outcome in keys:
        events, total = draw(count_pair())
        rows.append({"study": study, "subgroup": subgroup, "outcome": outcome,
                     "events": events, "total": total})
    return rows


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY_SETTINGS
@given(rows=valid_rows())
def test_property_valid_counts_are_preserved(rows, tmp_path):
    from_frame = load_table(pd.DataFrame(rows))
    from_csv = load_table(write_csv(tmp_path / "p.csv", rows))
    for table in (from_frame, from_csv):
        assert table.frame[["study", "subgroup", "outcome"]].to_dict("records") == [
            {k: r[k] for k in ("study", "subgroup", "outcome")} for r in rows
        ]
        assert table.frame["events"].tolist() == [r["events"] for r in rows]
        assert table.frame["total"].tolist() == [r["total"] for r in rows]
        assert table.frame["events"].dtype == np.int64
    pd.testing.assert_frame_equal(from_frame.frame, from_csv.frame)
    assert from_frame.data_hash() == from_csv.data_hash()


CORRUPTIONS = ["negative_events", "negative_total", "events_over_total", "zero_total",
               "blank_study", "blank_subgroup", "blank_outcome", "blank_events", "blank_total"]


@PROPERTY_SETTINGS
@given(rows=valid_rows(), data=st.data(), kind=st.sampled_from(CORRUPTIONS),
       via=st.sampled_from(VIAS))
def test_property_one_corrupt_cell_is_reported_at_its_row(rows, data, kind, via, tmp_path):
    index = data.draw(st.integers(0, len(rows) - 1), label="row index")
    bad = rows[index]
    k = data.draw(st.integers(1, 1000), label="offset")
    if kind == "negative_events":
        bad["events"], column = -k, "events"
    elif kind == "negative_total":
        bad["total"], column = -k, "total"
    elif kind == "events_over_total":
        bad["events"], column = bad["total"] + k, "events"
    elif kind == "zero_total":
        bad["total"], column = 0, "total"
    else:
        column = kind.removeprefix("blank_")
        blank = data.draw(st.sampled_from(["", " ", None]) if via == "frame"
                          else st.sampled_from(["", " "]), label="blank")
        bad[column] = blank
    if via == "csv":
        path = write_csv(tmp_path / "c.csv", rows)
        source = str(path)
    else:
        path, source = pd.DataFrame(rows), "DataFrame"
    with pytest.raises(DataError) as excinfo:
        load_table(path)
    message = str(excinfo.value)
    row = index + 1
    assert message.startswith(where(via, source, row, column)), message
    assert names_row(message, row)
