"""CSV cells that a spreadsheet will not run as formulas.

URLs, redirect chains and reasons in hostwatch's exports come from the
internet: a reported URL such as ``=HYPERLINK("http://evil/", "x")`` would run
as a formula when an analyst opens the CSV in Excel or LibreOffice. Every text
cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab / carriage return,
which some spreadsheets skip before reading a formula) is written with a
leading single quote ``'``, the mark spreadsheets read as "text, not a
formula". Numbers are written as numbers: ``-3`` is not attacker-controlled.

Cell values: None is empty, booleans ``true``/``false``, datetimes UTC RFC 3339
ending in ``Z``, lists and dicts compact JSON (then escaped like any text).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = ["FORMULA_START", "csv_text", "rfc3339", "safe_cell", "write_csv"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def rfc3339(value: datetime) -> str:
    """An aware datetime as UTC RFC 3339 with a ``Z`` (``2026-02-01T10:00:00Z``)."""
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: hostwatch writes UTC only")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def safe_cell(value: Any) -> str:
    """``value`` as CSV cell text, a formula-looking text prefixed with ``'``."""
    text = _text(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return text
    if text.startswith(FORMULA_START):
        return "'" + text
    return text


def write_csv(out: TextIO | Path, header: Sequence[str],
              rows: Iterable[Sequence[Any]]) -> int:
    """Write ``header`` and ``rows`` (every cell through ``safe_cell``) as CSV.

    ``out`` is an open text stream (opened with ``newline=""``) or a path
    (written as UTF-8). Returns the number of rows written.
    """
    if isinstance(out, Path):
        with out.open("w", encoding="utf-8", newline="") as stream:
            return write_csv(stream, header, rows)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(name) for name in header])
    count = 0
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {count + 1} has {len(row)} cells, the header {len(header)}")
        writer.writerow([safe_cell(cell) for cell in row])
        count += 1
    return count


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The CSV ``write_csv`` would write, as a string."""
    buffer = io.StringIO(newline="")
    write_csv(buffer, header, rows)
    return buffer.getvalue()
