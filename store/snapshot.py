"""A read-only SQLite snapshot of the analyst views (#15: `hostwatch export
sqlite`), from a store on SQLite or PostgreSQL.

Each analyst view (migration 0013, docs/analysts.md) becomes a table of the
same name and columns, read in one transaction, so the tables agree with each
other; a table ``snapshot_info`` says when and from which schema revision.
Nothing else of the store is copied: no raw URL, no header, no base table.
Figures that depend on "now" (pending deadlines, days open) are those of the
moment of the export.

The file is written whole or not at all (a temporary file beside it, renamed
over the target) and left read-only (mode 0444), for Datasette or
``sqlite3 -readonly``.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, text

from kernel.errors import StoreError

__all__ = ["ANALYST_VIEWS", "write_snapshot"]

ANALYST_VIEWS = ("analyst_cases", "analyst_checks", "analyst_deadlines", "analyst_notices",
                 "analyst_orders", "analyst_case_durations", "analyst_hosters")
"""The views a snapshot holds, as tables (store migration 0013)."""

_BATCH = 5000  # rows read and written at a time
_READ_ONLY = 0o444


def _cell(value: Any) -> Any:
    """A value as SQLite stores it: times in the store's own text form (UTC)."""
    if isinstance(value, datetime):
        if value.utcoffset() is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _affinity(values: Iterable[Any]) -> str:
    """The column type a snapshot table declares, from the values it holds."""
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool | int):
            return "INTEGER"
        if isinstance(value, float | Decimal):
            return "REAL"
        return "TEXT"
    return ""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copy_view(source: Connection, target: sqlite3.Connection, view: str) -> int:
    result = source.execute(text(f"SELECT * FROM {view}"))  # a name from ANALYST_VIEWS
    columns: Sequence[str] = list(result.keys())
    first = result.fetchmany(_BATCH)
    types = [_affinity(row[i] for row in first) for i in range(len(columns))]
    target.execute(f"CREATE TABLE {_quote(view)} ("
                   + ", ".join(f"{_quote(name)} {kind}".rstrip()
                               for name, kind in zip(columns, types, strict=True)) + ")")
    insert = (f"INSERT INTO {_quote(view)} VALUES ("
              + ", ".join("?" for _ in columns) + ")")
    rows, count = first, 0
    while rows:
        target.executemany(insert, ([_cell(value) for value in row] for row in rows))
        count += len(rows)
        rows = result.fetchmany(_BATCH)
    return count


def write_snapshot(engine: Engine, path: Path, *, now: datetime | None = None
                   ) -> dict[str, int]:
    """Write the analyst views of the store behind ``engine`` to the SQLite
    file ``path`` (replaced whole); returns the rows per view.

    Raises `StoreError` when ``path`` is the store's own file or its folder
    does not exist.
    """
    path = path.expanduser()
    if not path.parent.is_dir():
        raise StoreError(f"cannot write {path}: directory {path.parent} does not exist")
    own = engine.url.database if engine.dialect.name == "sqlite" else None
    if own and own != ":memory:" and Path(own).expanduser().resolve() == path.resolve():
        raise StoreError(f"{path} is the store itself: choose another file")
    exported_at = now or datetime.now(UTC)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    counts: dict[str, int] = {}
    try:
        target = sqlite3.connect(tmp)
        try:
            with engine.connect() as source:
                if engine.dialect.name == "postgresql":
                    source = source.execution_options(isolation_level="REPEATABLE READ")
                elif engine.dialect.name == "sqlite":
                    # One read transaction: every view from the same state of the store.
                    source.exec_driver_sql("BEGIN")
                revision = MigrationContext.configure(source).get_current_revision()
                for view in ANALYST_VIEWS:
                    counts[view] = _copy_view(source, target, view)
            target.execute("CREATE TABLE snapshot_info (key TEXT PRIMARY KEY, value TEXT)")
            target.executemany("INSERT INTO snapshot_info VALUES (?, ?)", [
                ("exported_at", _cell(exported_at)),
                ("schema_revision", revision),
                ("source_dialect", engine.dialect.name),
                ("docs", "docs/analysts.md"),
            ])
            target.commit()
        finally:
            target.close()
        os.chmod(tmp, _READ_ONLY)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return counts
