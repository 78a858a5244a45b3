"""A read-only SQLite snapshot of the analyst views (#15: `hostwatch export
sqlite`), from a store on SQLite or PostgreSQL.

Each analyst view (migration 0013, docs/analysts.md) becomes a table of the
same name and columns, read in one transaction, so the tables agree with each
other; a table ``snapshot_info`` says when and from which schema revision.
Nothing else of the store is copied: no raw URL, no header, no base table.
Figures that depend on "now" (pending deadlines, days open) are those of the
moment of the export.

A store in a SQLite file is copied inside SQLite: the snapshot attaches the
store read-only and fills each table with ``INSERT ... SELECT``, so no row
passes through Python. Any other store (PostgreSQL) is read through its
driver, streamed in batches, so memory stays flat however many checks the
store holds. Both give the same tables, column types and cells (times as
text, booleans 0/1).

The file is written whole or not at all (a temporary file beside it, renamed
over the target) and left read-only (mode 0444), for Datasette or
``sqlite3 -readonly``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from kernel.errors import StoreError

__all__ = ["ANALYST_VIEWS", "Progress", "progress_text", "write_snapshot"]

ANALYST_VIEWS = ("analyst_cases", "analyst_checks", "analyst_deadlines", "analyst_notices",
                 "analyst_orders", "analyst_case_durations", "analyst_hosters")
"""The views a snapshot holds, as tables (store migration 0013)."""

Progress = Callable[[str, int], None]
"""``progress(view, rows)``: the rows of ``view`` written so far."""

PROGRESS_INTERVAL = 2.0  # seconds between two reports within one view
# What a snapshot is looked up by (hostwatch serve's case_history query and
# the analysts' filters), indexed once it is written.
INDEXES = (("analyst_cases", ("case_id",)), ("analyst_cases", ("hoster", "reported_at")),
           ("analyst_checks", ("case_id", "checked_at")), ("analyst_deadlines", ("case_id",)),
           ("analyst_notices", ("case_id",)), ("analyst_orders", ("case_id",)),
           ("analyst_case_durations", ("case_id",)))

_BATCH = 5000  # rows read and written at a time; the first batch decides column types
_TICK = 4096  # rows between two looks at the clock, on the SQLite path
_READ_ONLY = 0o444
_STORE = "store"  # the schema name the store is attached under

# A copy (one of the two paths): fills the tables of ``target`` (a connection
# in autocommit mode) from the store, reading ``batch`` rows at a time, and
# leaves them in one open transaction; returns the store's schema revision
# and the rows per view.
_Copy = Callable[[Engine, sqlite3.Connection, "_Pacer", int],
                 tuple[str | None, dict[str, int]]]


class _Pacer:
    """Passes the rows written so far to ``progress``: at the end of each
    view, and within a view at most every ``interval`` seconds (also while a
    view is being computed and no row is written yet)."""

    def __init__(self, progress: Progress | None, interval: float = PROGRESS_INTERVAL,
                 clock: Callable[[], float] = time.monotonic, steps: int = 100_000) -> None:
        self.progress = progress
        self.interval = interval
        self.steps = steps  # SQLite's steps between two calls of `step`
        self.clock = clock
        self._last = clock()
        self.view, self.count = "", 0
        # What stopped a copy from inside SQLite (Ctrl-C in a callback): the
        # sqlite3 module turns it into an OperationalError, to be raised again.
        self.stopped: BaseException | None = None

    def start(self, view: str) -> None:
        self.view, self.count = view, 0

    def rows(self, count: int) -> None:
        self.count = count
        self.tick()

    def tick(self) -> None:
        if self.progress is not None and self.clock() - self._last >= self.interval:
            self._last = self.clock()
            self.progress(self.view, self.count)

    def step(self) -> int:
        """SQLite's progress handler: gives Python a moment (a signal, the
        clock) during a long statement; non-zero stops the statement."""
        try:
            self.tick()
        except BaseException as exc:
            self.stopped = exc
            return 1
        return 0

    def done(self, count: int) -> None:
        self.count = count
        if self.progress is not None:
            self._last = self.clock()
            self.progress(self.view, count)


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


def _create(target: sqlite3.Connection, view: str, columns: Sequence[str],
            first: Sequence[Sequence[Any]]) -> str:
    """Create the table of ``view``, typed by its first rows; returns the
    statement that inserts one row into it."""
    types = [_affinity(row[i] for row in first) for i in range(len(columns))]
    target.execute(f"CREATE TABLE main.{_quote(view)} ("
                   + ", ".join(f"{_quote(name)} {kind}".rstrip()
                               for name, kind in zip(columns, types, strict=True)) + ")")
    return f"INSERT INTO main.{_quote(view)} VALUES (" + ", ".join("?" for _ in columns) + ")"


# -- a store in a SQLite file: copied inside SQLite -----------------------------

def _store_file(engine: Engine) -> Path | None:
    """The store's SQLite file, when it is one that SQLite can attach."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database).expanduser()
    return path if path.is_file() else None


def _in_sqlite(engine: Engine, target: sqlite3.Connection, pacer: _Pacer, batch: int
               ) -> tuple[str | None, dict[str, int]]:
    store = _store_file(engine)
    assert store is not None
    # Views of an attached schema read the tables of that schema; mode=ro:
    # the export can never write to the store.
    target.execute(f"ATTACH DATABASE ? AS {_STORE}",
                   (f"file:{quote(str(store.resolve()))}?mode=ro",))
    # One transaction over both files: every view is read from the same
    # state of the store (WAL: a snapshot; writers go on meanwhile).
    target.execute("BEGIN")
    (revision,) = target.execute(f"SELECT version_num FROM {_STORE}.alembic_version"
                                 ).fetchone() or (None,)
    # Every 100,000 steps of SQLite, cheap: progress, and Ctrl-C, which would
    # otherwise wait for the end of a statement that runs for minutes.
    target.set_progress_handler(pacer.step, pacer.steps)
    counts: dict[str, int] = {}
    try:
        for view in ANALYST_VIEWS:  # names from ANALYST_VIEWS: nothing to escape
            pacer.start(view)
            cursor = target.execute(f"SELECT * FROM {_STORE}.{view}")
            columns = [d[0] for d in cursor.description]
            first = cursor.fetchmany(batch)
            cursor.close()
            insert = _create(target, view, columns, first)
            if len(first) < batch:  # all of it already: no need to compute it again
                target.executemany(insert, first)
                counts[view] = len(first)
            else:
                counts[view] = _insert_select(target, view, columns, pacer)
            pacer.done(counts[view])
    except sqlite3.Error:
        if pacer.stopped is not None:
            raise pacer.stopped from None
        raise
    finally:
        target.set_progress_handler(None, 0)
    return revision, counts


def _insert_select(target: sqlite3.Connection, view: str, columns: Sequence[str],
                   pacer: _Pacer) -> int:
    """Copy the whole view in one statement; returns the rows copied."""
    selected = [f"{_STORE}.{view}.{_quote(name)}" for name in columns]
    if pacer.progress is not None:
        # Counted through a function that hands back its argument unchanged,
        # only when someone watches: a Python call per row costs time.
        seen = 0

        def counted(value: Any) -> Any:
            nonlocal seen
            seen += 1
            if seen % _TICK == 0:
                try:
                    pacer.rows(seen)
                except BaseException as exc:
                    pacer.stopped = exc
                    raise
            return value

        target.create_function("hostwatch_counted", 1, counted)
        selected[0] = f"hostwatch_counted({selected[0]})"
    cursor = target.execute(f"INSERT INTO main.{_quote(view)} "
                            f"SELECT {', '.join(selected)} FROM {_STORE}.{view}")
    return cursor.rowcount


# -- any other store: read through its driver, in batches ----------------------

def _through_driver(engine: Engine, target: sqlite3.Connection, pacer: _Pacer, batch: int
                    ) -> tuple[str | None, dict[str, int]]:
    target.execute("BEGIN")
    counts: dict[str, int] = {}
    with engine.connect() as source:
        if engine.dialect.name == "postgresql":
            source = source.execution_options(isolation_level="REPEATABLE READ")
        elif engine.dialect.name == "sqlite":
            # One read transaction: every view from the same state of the store.
            source.exec_driver_sql("BEGIN")
        revision = MigrationContext.configure(source).get_current_revision()
        for view in ANALYST_VIEWS:
            pacer.start(view)
            # yield_per: streamed (a server-side cursor on PostgreSQL), not
            # loaded whole into memory.
            result = source.execute(text(f"SELECT * FROM {view}"),
                                    execution_options={"yield_per": batch})
            rows = result.fetchmany(batch)
            insert = _create(target, view, list(result.keys()),
                             [[_cell(value) for value in row] for row in rows])
            count = 0
            while rows:
                target.executemany(insert, ([_cell(value) for value in row] for row in rows))
                count += len(rows)
                pacer.rows(count)
                rows = result.fetchmany(batch)
            result.close()
            counts[view] = count
            pacer.done(count)
    return revision, counts


def progress_text(view: str, rows: int, seconds: float) -> str:
    """The progress line of a snapshot being written (export sqlite, serve)."""
    return (f"hostwatch: snapshot: {view} {rows} rows (view {ANALYST_VIEWS.index(view) + 1} "
            f"of {len(ANALYST_VIEWS)}, {seconds:.0f} s)")


def _check_replaceable(path: Path) -> None:
    """Only an earlier snapshot is replaced: never another store, a report, a
    store's journal or a device (`StoreError` otherwise)."""
    if path.is_symlink() or not path.is_file():
        raise StoreError(f"{path} exists and is not a regular file: choose another path")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro",
                                                uri=True)) as conn:
            names = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:
        names = set()
    if "snapshot_info" not in names or "cases" in names:
        raise StoreError(f"{path} exists and is not a snapshot from `hostwatch export "
                         "sqlite`: choose another path, or remove it first")


def write_snapshot(engine: Engine, path: Path, *, now: datetime | None = None,
                   progress: Progress | None = None) -> dict[str, int]:
    """Write the analyst views of the store behind ``engine`` to the SQLite
    file ``path`` (replaced whole); returns the rows per view.

    ``progress(view, rows)``, when given, is called at the end of each view
    and within a long one every few seconds.

    Raises `StoreError` when ``path`` is the store's own file, its folder
    does not exist, or the store or the file cannot be read or written (a
    store without the views, a full disk); ``path`` is then left as it was.
    """
    copy = _in_sqlite if _store_file(engine) is not None else _through_driver
    return _write(engine, path, copy, now=now, progress=progress)


def _write(engine: Engine, path: Path, copy: _Copy, *, now: datetime | None = None,
           progress: Progress | None = None, batch: int = _BATCH) -> dict[str, int]:
    path = path.expanduser()
    if not path.parent.is_dir():
        raise StoreError(f"cannot write {path}: directory {path.parent} does not exist")
    own = engine.url.database if engine.dialect.name == "sqlite" else None
    if own and own != ":memory:" and Path(own).expanduser().resolve() == path.resolve():
        raise StoreError(f"{path} is the store itself: choose another file")
    if path.exists() or path.is_symlink():
        _check_replaceable(path)
    exported_at = now or datetime.now(UTC)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        target = sqlite3.connect(f"file:{quote(tmp)}", uri=True, isolation_level=None)
        try:
            # A temporary file, deleted when anything fails: no journal needed,
            # and one fsync (the close) instead of one per transaction.
            target.execute("PRAGMA main.journal_mode=OFF")
            target.execute("PRAGMA main.synchronous=OFF")
            revision, counts = copy(engine, target, _Pacer(progress), batch)
            for view, columns in INDEXES:  # one case's history, a hoster's cases
                target.execute(f"CREATE INDEX main.{view}_by_{'_'.join(columns)} "
                               f"ON {view} ({', '.join(columns)})")
            target.execute("CREATE TABLE main.snapshot_info (key TEXT PRIMARY KEY, value TEXT)")
            target.executemany("INSERT INTO main.snapshot_info VALUES (?, ?)", [
                ("exported_at", _cell(exported_at)),
                ("schema_revision", revision),
                ("source_dialect", engine.dialect.name),
                ("docs", "docs/analysts.md"),
            ])
            target.execute("COMMIT")
        finally:
            target.close()
        with open(tmp, "rb+") as written:  # on disk before it takes the name
            os.fsync(written.fileno())
        os.chmod(tmp, _READ_ONLY)
        os.replace(tmp, path)
    except (sqlite3.Error, DBAPIError) as exc:
        Path(tmp).unlink(missing_ok=True)
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        raise StoreError(f"cannot write the snapshot {path}: {reason}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return counts
