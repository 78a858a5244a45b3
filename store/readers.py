"""Reading import files: CSV and JSON Lines rows, field by field, with errors
that name the file, line and field (`RowError`) or the whole file (`FileError`).

No database access here; store.imports decides what to write.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from kernel.errors import StoreError
from kernel.model import Category

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
# Times later than this after "now" are typing errors (a wrong year, a swapped
# day and month), not reports from the future.
FUTURE_SLACK = timedelta(days=1)

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
CATEGORIES = [category.value for category in Category]
TRUE, FALSE = {"true", "1"}, {"false", "0"}


class FileError(StoreError):
    """The file cannot be imported at all (nothing was written); the message names it."""


@dataclass(frozen=True)
class RowError:
    """A rejected row: where it is and what is wrong with it."""

    file: str
    line: int  # physical line where the row starts, from 1
    field: str | None  # None: the row as a whole (bad CSV, bad JSON)
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


@dataclass(frozen=True)
class RowNote:
    """Something to know about a row that was taken as it is (not a rejection):
    e.g. an order's deadline beyond the legal maximum, judged at the maximum."""

    file: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"



# ---------------------------------------------------------------- reading files


@dataclass
class FileRows:
    name: str
    rows: list[tuple[int, dict[str, Any]]]  # (line, column -> value)
    errors: list[RowError]


def read_table(path: Path, fmt: str | None, required: Sequence[str],
               optional: Sequence[str]) -> FileRows:
    name = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise FileError(f"{name}: is a directory, not a file") from None
    except OSError as exc:
        raise FileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if fmt is None:
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise FileError(f"{name}: unknown format: name it .csv or .jsonl, or give the format")
    elif fmt not in ("csv", "jsonl"):
        raise FileError(f"{name}: unknown format {fmt!r}: expected csv or jsonl")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileError(f"{name}: UTF-16 text; save the file as UTF-8")
    # Undecodable bytes become lone surrogates, so only the rows holding them fail.
    decoded = data.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
    if not decoded.strip():
        raise FileError(f"{name}: empty file")
    lines = _LINE.findall(decoded)
    if fmt == "csv":
        return _read_csv(name, lines, required, optional)
    return _read_jsonl(name, lines)


class _Lines:
    """The file's lines for csv.reader, rewindable to restart after a bad row."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.pos = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _csv_records(lines: list[str]) -> Iterator[tuple[int, list[str] | csv.Error, _Lines]]:
    """(line, fields or the CSV error, the line source) per non-blank record."""
    source = _Lines(lines)
    reader = csv.reader(source, strict=True)
    while True:
        start = source.pos
        try:
            fields: list[str] | csv.Error = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            fields = exc
        yield start + 1, fields, source
        if isinstance(fields, csv.Error):
            # Go on with the line after the start of the bad row: a stray
            # quote should cost one row, not every row up to the next quote.
            source.pos = start + 1
            reader = csv.reader(source, strict=True)


def _read_csv(name: str, lines: list[str], required: Sequence[str],
              optional: Sequence[str]) -> FileRows:
    records = ((line, fields, source) for line, fields, source in _csv_records(lines)
               if not isinstance(fields, list) or any(f.strip() for f in fields))
    first = next(records, None)
    if first is None:
        raise FileError(f"{name}: empty file")
    line, header, _ = first
    if isinstance(header, csv.Error):
        raise FileError(f"{name}:{line}: the header row is not valid CSV ({header})")
    columns = [column.strip().lower() for column in header]
    doubled = sorted({c for c in columns if c and columns.count(c) > 1})
    if doubled:
        raise FileError(f"{name}: column {', '.join(doubled)} appears more than once")
    missing = [column for column in required if column not in columns]
    if len(missing) == len(required) and any("://" in value for value in header):
        raise FileError(f"{name}: no header row (line {line} looks like data); "
                        f"the first line must name the columns: {', '.join(required)}")
    if missing:
        raise FileError(f"{name}: missing required column {', '.join(missing)} "
                        f"(the header has: {', '.join(c for c in columns if c)})")
    used = {columns.index(c) for c in (*required, *optional) if c in columns}
    table = FileRows(name, [], [])
    for line, fields, source in records:
        if isinstance(fields, csv.Error):
            table.errors.append(RowError(name, line, None, _csv_problem(fields)))
        elif len(fields) > len(columns):
            table.errors.append(RowError(
                name, line, None, f"{len(fields)} fields but the header has {len(columns)} "
                "(an unquoted comma?)"))
            source.pos = line  # a record that ran over several lines: read them again
        elif any("\n" in fields[i] or "\r" in fields[i] for i in used if i < len(fields)):
            table.errors.append(RowError(
                name, line, None, "line break inside a quoted field (a stray quote?)"))
            source.pos = line
        else:
            table.rows.append((line, {c: v for c, v in zip(columns, fields, strict=False) if c}))
    return table


def _csv_problem(error: csv.Error) -> str:
    message = str(error)
    if message == "unexpected end of data":
        return "bad CSV: a quoted field is never closed (a stray quote?)"
    if message.endswith("expected after '\"'"):
        return "bad CSV: text after a closing quote (a stray quote?)"
    return f"bad CSV: {message}"


def _read_jsonl(name: str, lines: list[str]) -> FileRows:
    table = FileRows(name, [], [])
    for line, content in enumerate(lines, 1):
        if not content.strip():
            continue
        if not table.rows and not table.errors and content.lstrip().startswith("["):
            raise FileError(f"{name}: a JSON array; expected JSON Lines (one object per line)")
        try:
            value = json.loads(content)
        except json.JSONDecodeError as exc:
            table.errors.append(RowError(name, line, None,
                                         f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        if isinstance(value, dict):
            table.rows.append((line, value))
        else:
            table.errors.append(RowError(
                name, line, None, f"not a JSON object but {_json_type(value)}"))
    return table


def _json_type(value: object) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null",
             int: "a number", float: "a number", dict: "an object"}
    return kinds.get(type(value), type(value).__name__)


# ---------------------------------------------------------------- checking fields


def shown(value: str) -> str:
    """``value`` for a message; bytes that were not UTF-8 are shown as bytes."""
    try:
        value.encode("utf-8")
        return repr(value)
    except UnicodeEncodeError:
        pass
    try:
        return repr(value.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a lone surrogate written as a JSON \\u escape
        return ascii(value)


def _time(value: str) -> datetime:
    try:
        date.fromisoformat(value)
    except ValueError:
        pass
    else:
        raise ValueError(f"a date without a time of day: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time with zone: {value!r}") from None
    if parsed.utcoffset() is None:
        raise ValueError(f"no time zone (add Z or an offset such as +01:00): {value!r}")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"time out of range: {value!r}") from None


class Fields:
    """One row's values; each bad field adds a `RowError`, each remark about a
    good one a `RowNote`."""

    def __init__(self, name: str, line: int, record: dict[str, Any], now: datetime) -> None:
        self.name, self.line, self.record, self.now = name, line, record, now
        self.errors: list[RowError] = []
        self.notes: list[RowNote] = []

    def fail(self, column: str | None, reason: str) -> None:
        self.errors.append(RowError(self.name, self.line, column, reason))

    def note(self, column: str, reason: str) -> None:
        self.notes.append(RowNote(self.name, self.line, column, reason))

    def text(self, column: str, *, required: bool = False, max_len: int = 255) -> str | None:
        value = self.record.get(column)
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int):
            value = str(value)
        elif value is not None and not isinstance(value, str):
            self.fail(column, f"expected text, not {_json_type(value)}")
            return None
        value = (value or "").strip()
        if not value:
            if required:
                self.fail(column, "missing value")
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.fail(column, f"not valid UTF-8: {shown(value)}")
            return None
        if len(value) > max_len:
            self.fail(column, f"longer than {max_len} characters")
            return None
        return value

    def time(self, column: str, *, required: bool = False, past: bool = True) -> datetime | None:
        value = self.text(column, required=required)
        if value is None:
            return None
        try:
            parsed = _time(value)
        except ValueError as exc:
            self.fail(column, str(exc))
            return None
        if past and parsed > self.now + FUTURE_SLACK:
            self.fail(column, f"in the future: {value!r}")
            return None
        return parsed

    def hex64(self, column: str, what: str) -> str | None:
        value = self.text(column)
        if value is not None and not _HEX64.fullmatch(value):
            self.fail(column, f"not a {what} (64 hex digits): {value!r}")
            return None
        return value.lower() if value else None


