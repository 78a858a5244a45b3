"""reports.csvsafe: CSV cells a spreadsheet will not run as formulas."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

import pytest

from reports.csvsafe import csv_text, rfc3339, safe_cell, write_csv


@pytest.mark.parametrize(("value", "cell"), [
    ('=HYPERLINK("http://evil.test/","x")', '\'=HYPERLINK("http://evil.test/","x")'),
    ("+31 20 000", "'+31 20 000"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("http://a.test/=1", "http://a.test/=1"),
    ("plain", "plain"),
    ("", ""),
    (None, ""),
    (-3, "-3"),
    (-1.5, "-1.5"),
    (True, "true"),
    (False, "false"),
    (["-x", "y"], '["-x","y"]'),
    ({"b": 1, "a": "=x"}, '{"a":"=x","b":1}'),
])
def test_safe_cell(value, cell):
    assert safe_cell(value) == cell


def test_times_are_utc_with_z():
    amsterdam = timezone(timedelta(hours=1))
    assert safe_cell(datetime(2026, 2, 1, 11, 0, tzinfo=amsterdam)) == "2026-02-01T10:00:00Z"
    assert rfc3339(datetime(2026, 2, 1, 10, 0, 0, 500, tzinfo=UTC)) == \
        "2026-02-01T10:00:00.000500Z"
    with pytest.raises(ValueError, match="naive"):
        rfc3339(datetime(2026, 2, 1))


def test_written_csv_reads_back_with_the_quote(tmp_path):
    rows = [["=cmd|' /C calc'!A0", 1, None], ["ok, with comma", -2, "line\nbreak"]]
    path = tmp_path / "out.csv"
    assert write_csv(path, ["url", "n", "note"], rows) == 2
    read = list(csv.reader(path.open(newline="", encoding="utf-8")))
    assert read == [["url", "n", "note"], ["'=cmd|' /C calc'!A0", "1", ""],
                    ["ok, with comma", "-2", "line\nbreak"]]
    assert path.read_bytes().decode("utf-8") == csv_text(["url", "n", "note"], rows)


def test_a_row_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match="row 1 has 1 cells, the header 2"):
        write_csv(io.StringIO(), ["a", "b"], [["x"]])
