"""`hostwatch export sqlite` (#15): the analyst views as tables of a
read-only SQLite file, from a store on SQLite or PostgreSQL, written whole."""

from __future__ import annotations

import random
import sqlite3
import stat
from datetime import datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from hostwatch.cli import main
from store import Store
from store.snapshot import ANALYST_VIEWS, write_snapshot
from tests.reports.test_hoster_sql import _fill
from tests.store.test_migration_routes import _at


def _normal(value):
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return round(value, 6)
    return value


def test_the_snapshot_holds_every_view_and_nothing_else(store, db_url, tmp_path):
    with store.transaction() as session:
        _fill(session, random.Random(3), 60)
    path = tmp_path / "analysts.db"
    path.write_text("an older snapshot")
    path.chmod(0o444)
    result = CliRunner().invoke(main, ["--db", db_url, "export", "sqlite", str(path)])
    assert result.exit_code == 0, result.output
    assert "60 cases" in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".analysts")] == []
    snapshot = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = {name for (name,) in snapshot.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {*ANALYST_VIEWS, "snapshot_info"}
    info = dict(snapshot.execute("SELECT key, value FROM snapshot_info"))
    assert info["schema_revision"] == "0013"
    # Ages in days move with the clock: the snapshot's are those of the export.
    volatile = {"days_open", "oldest_open_days"}
    with store.engine.connect() as connection:
        for view in ANALYST_VIEWS:
            result = connection.execute(text(f"SELECT * FROM {view}"))
            columns = list(result.keys())
            keep = [i for i, name in enumerate(columns) if name not in volatile]
            want = sorted((tuple(_normal(row[i]) for i in keep) for row in result), key=repr)
            got_cursor = snapshot.execute(f"SELECT * FROM {view}")
            assert [d[0] for d in got_cursor.description] == columns, view
            got = sorted((tuple(_normal(row[i]) for i in keep) for row in got_cursor),
                         key=repr)
            assert got == want, view
            assert want, view
    # Nothing in it is a raw URL.
    for view in ANALYST_VIEWS:
        for row in snapshot.execute(f"SELECT * FROM {view}"):
            assert not any(isinstance(v, str) and ("http://" in v.lower()
                                                   or "https://" in v.lower())
                           for v in row), (view, row)
    snapshot.close()


def test_the_store_itself_is_refused_and_left_alone(tmp_path):
    db = tmp_path / "h.db"
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{db}", "export", "sqlite", str(db)])
    assert result.exit_code == 1
    assert "is the store itself" in result.output
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT COUNT(*) FROM cases").fetchone() == (0,)


def test_a_missing_folder_is_a_clear_error(tmp_path):
    target = tmp_path / "no" / "such" / "analysts.db"
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{tmp_path / 'h.db'}", "export",
                                       "sqlite", str(target)])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_a_failed_export_leaves_the_old_file_and_no_trace(tmp_path):
    db = f"sqlite:///{tmp_path / 'h.db'}"
    old_store = Store(db)
    _at(old_store, db, "0012")  # a store without the views: the export fails midway
    target = tmp_path / "analysts.db"
    target.write_text("the previous snapshot")
    with pytest.raises(OperationalError, match="analyst_cases"):
        write_snapshot(old_store.engine, target)
    old_store.dispose()
    assert target.read_text() == "the previous snapshot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["analysts.db", "h.db"]
