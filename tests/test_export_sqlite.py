"""`hostwatch export sqlite` (#15): the analyst views as tables of a
read-only SQLite file, from a store on SQLite or PostgreSQL, written whole."""

from __future__ import annotations

import random
import sqlite3
import stat
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from hostwatch.cli import main
from kernel.errors import StoreError
from kernel.model import Verdict
from store import Store, snapshot
from store.models import CrawlRun
from store.snapshot import ANALYST_VIEWS, write_snapshot
from tests.builders import add_case, add_hoster
from tests.reports.test_hoster_sql import T0, _fill, _history
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
    path = tmp_path / "analysts.db"
    write_snapshot(store.engine, path)  # an older snapshot (read-only), replaced below
    with store.transaction() as session:
        _fill(session, random.Random(3), 60)
    result = CliRunner().invoke(main, ["--db", db_url, "export", "sqlite", str(path)])
    assert result.exit_code == 0, result.output
    assert "60 cases" in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".analysts")] == []
    snapshot = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = {name for (name,) in snapshot.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {*ANALYST_VIEWS, "snapshot_info"}
    # One case's history is found by index, not by reading every check.
    plan = " ".join(str(row) for row in snapshot.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM analyst_checks WHERE case_id = 1"))
    assert "USING INDEX analyst_checks_by_case_id_checked_at" in plan, plan
    info = dict(snapshot.execute("SELECT key, value FROM snapshot_info"))
    assert info["schema_revision"] == "0015"
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
    good = Store(f"sqlite:///{tmp_path / 'good.db'}")
    good.upgrade()
    write_snapshot(good.engine, target)  # the previous snapshot
    good.dispose()
    before = target.read_bytes()
    with pytest.raises(StoreError, match="analyst_cases"):
        write_snapshot(old_store.engine, target)
    old_store.dispose()
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()
                  if not p.name.startswith("good.db")) == ["analysts.db", "h.db"]


def test_only_an_earlier_snapshot_is_replaced(tmp_path):
    """Another store, a CSV, a folder, a link, the store's own WAL: refused,
    left as they were (only the store itself was refused before)."""
    db = tmp_path / "h.db"
    other = tmp_path / "other.db"
    for store_file in (db, other):
        store = Store(f"sqlite:///{store_file}")
        store.upgrade()
        store.dispose()
    csv_file = tmp_path / "reports.csv"
    csv_file.write_text("id,url\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    link = tmp_path / "link.db"
    link.symlink_to(other)
    wal = tmp_path / "h.db-wal"
    wal.write_bytes(b"\x37\x7f\x06\x82" + bytes(28))
    for target, message in ((other, "is not a snapshot"), (csv_file, "is not a snapshot"),
                            (folder, "is a directory"), (link, "not a regular file"),
                            (wal, "is not a snapshot")):
        before = target.read_bytes() if target.is_file() else None
        result = CliRunner().invoke(main, ["--db", f"sqlite:///{db}", "export", "sqlite",
                                           str(target)])
        assert result.exit_code in (1, 2), (target, result.output)  # 2: click's own check
        assert message in result.output, (target, result.output)
        if before is not None:
            assert target.read_bytes() == before, target
    snapshot = tmp_path / "analysts.db"
    for _ in range(2):  # a new file, then the earlier snapshot replaced
        result = CliRunner().invoke(main, ["--db", f"sqlite:///{db}", "export", "sqlite",
                                           str(snapshot)])
        assert result.exit_code == 0, result.output


# -- the two ways of copying: inside SQLite, and through the driver ------------

VOLATILE = {"days_open", "oldest_open_days"}  # computed from the clock, per statement


def _varied(session, rng: random.Random, n: int) -> None:
    """Cases beside _fill's: checks of crawl runs (healthy or suspect) with
    status codes, flags, distances and redirects; attributions behind a CDN
    or with a server country."""
    runs = [CrawlRun(started_at=T0, tool_version="t", health=health)
            for health in ("healthy", "suspect", "healthy")]
    session.add_all(runs)
    session.flush()
    hoster = add_hoster(session, "cdn-edge", "Edge Inc.", "US", updated_at=T0)
    for i in range(n):
        reported, history = _history(rng)
        if not history:
            continue
        fields = {"run_id": rng.choice([None, *(run.id for run in runs)]),
                  "http_status": rng.choice([None, 200, 404, 451]),
                  "final_url": rng.choice([None, f"https://v{i}.test/moved.html"]),
                  "peer_ip": rng.choice([None, "192.0.2.7", "2001:db8::7"]),
                  "content_length": rng.choice([None, 0, 123456789012]),
                  "truncated": rng.random() < 0.3, "imported": rng.random() < 0.2,
                  "reference_match": rng.choice([None, True, False]),
                  "pdq_distance": rng.choice([None, 0, 31]),
                  "error_kind": rng.choice([None, "timeout"])}
        attribution = rng.choice([
            None, {"jurisdiction": "non-EU", "cdn": "Edge Inc.", "asn": 64501},
            {"jurisdiction": "EU", "dutch": False, "server_country": "DE",
             "server_country_source": "geoip", "hostname": f"v{i}.test"}])
        add_case(session, f"v{i}", reported, history, check_fields=fields,
                 hoster=hoster if attribution and rng.random() < 0.5 else None,
                 attribution=attribution)


def _cells(path):
    """Per table: its columns with their declared types, and its rows as
    (storage class, value) pairs, sorted; the clock's columns by class only."""
    snapshot = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    tables = {}
    for view in ANALYST_VIEWS:
        declared = [(name, kind) for _, name, kind, *_ in
                    snapshot.execute(f"PRAGMA table_info({view})")]
        rows = sorted((tuple((type(value).__name__,
                              None if name in VOLATILE else value)
                             for (name, _), value in zip(declared, row, strict=True))
                       for row in snapshot.execute(f"SELECT * FROM {view}")), key=repr)
        tables[view] = declared, rows
    info = dict(snapshot.execute("SELECT key, value FROM snapshot_info"))
    snapshot.close()
    return tables, info


@pytest.mark.parametrize("batch", [3, 5000])
def test_copying_inside_sqlite_gives_what_the_driver_gives(sqlite_url, tmp_path, batch):
    # batch 3: the first rows type the columns, the rest follows them; 5000:
    # every view fits in the first read.
    store = Store(sqlite_url)
    store.upgrade()
    with store.transaction() as session:
        _fill(session, random.Random(11), 50)
        _varied(session, random.Random(12), 50)
    assert snapshot._store_file(store.engine) is not None  # the SQLite way is taken
    when = datetime(2026, 3, 1, tzinfo=UTC)
    seen: dict[str, list[tuple[str, int]]] = {"sqlite": [], "driver": []}
    inside = snapshot._write(store.engine, tmp_path / "inside.db", snapshot._in_sqlite,
                             now=when, batch=batch,
                             progress=lambda *shown: seen["sqlite"].append(shown))
    driver = snapshot._write(store.engine, tmp_path / "driver.db", snapshot._through_driver,
                             now=when, batch=batch,
                             progress=lambda *shown: seen["driver"].append(shown))
    store.dispose()
    assert inside == driver
    assert (inside["analyst_checks"] > batch) == (batch == 3)
    # Every view reported once it is done, with its rows.
    for shown in seen.values():
        assert [call for call in shown if call[1] == inside[call[0]]][-len(ANALYST_VIEWS):] \
            == list(inside.items())
    tables, info = _cells(tmp_path / "inside.db")
    want_tables, want_info = _cells(tmp_path / "driver.db")
    assert info == want_info
    for view in ANALYST_VIEWS:
        assert tables[view][0] == want_tables[view][0], view
        assert tables[view][1] == want_tables[view][1], view
        assert len(tables[view][1]) == inside[view], view
    # Every kind of cell is there: times as text, flags as 0/1, real numbers.
    declared = dict(tables["analyst_checks"][0])
    assert declared["checked_at"] == "TEXT"
    assert declared["truncated"] == "INTEGER"
    assert {value for _, value in (row[[name for name, _ in tables["analyst_checks"][0]]
                                       .index("truncated")]
                                   for row in tables["analyst_checks"][1])} == {0, 1}
    assert dict(tables["analyst_case_durations"][0])["point_hours"] == "REAL"


def test_every_view_is_of_one_state_of_the_store_while_cases_come_in(store, tmp_path):
    with store.transaction() as session:
        _fill(session, random.Random(5), 10)
    added = []

    def another_case(view: str, rows: int) -> None:  # after each view: a case more
        with store.transaction() as session:
            add_case(session, f"late-{view}", T0, [(T0, Verdict.ONLINE)])
        added.append(view)

    counts = write_snapshot(store.engine, tmp_path / "analysts.db", progress=another_case)
    assert added == list(ANALYST_VIEWS)
    snapshot = sqlite3.connect(f"file:{tmp_path / 'analysts.db'}?mode=ro", uri=True)
    assert counts["analyst_cases"] == 10
    assert snapshot.execute("SELECT COUNT(*) FROM analyst_case_durations "
                            "WHERE clock = 'report'").fetchone() == (10,)
    assert snapshot.execute("SELECT SUM(cases) FROM analyst_hosters").fetchone() == (10,)
    snapshot.close()


@pytest.mark.parametrize("shown", ["1", "0"])
def test_the_export_shows_its_progress_unless_told_not_to(sqlite_url, tmp_path, shown):
    store = Store(sqlite_url)
    store.upgrade()
    with store.transaction() as session:
        _fill(session, random.Random(6), 12)
    store.dispose()
    result = CliRunner().invoke(main, ["--db", sqlite_url, "export", "sqlite",
                                       str(tmp_path / "analysts.db")],
                                env={"HOSTWATCH_PROGRESS": shown})
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("sqlite: 12 cases, ")
    progress = [line for line in lines if line.startswith("hostwatch: snapshot: ")]
    if shown == "1":  # a plain line (not a terminal): the first view's, at least
        assert progress[0].startswith("hostwatch: snapshot: analyst_cases 12 rows (view 1 of 7")
    else:
        assert progress == []


def test_ctrl_c_stops_a_copy_inside_sqlite_within_a_statement(sqlite_url, tmp_path):
    store = Store(sqlite_url)
    store.upgrade()
    with store.transaction() as session:
        _fill(session, random.Random(7), 20)
    calls = []

    def interrupted(view: str, rows: int) -> None:
        calls.append((view, rows))
        raise KeyboardInterrupt

    target = sqlite3.connect(tmp_path / "analysts.db", isolation_level=None)
    with pytest.raises(KeyboardInterrupt):  # as itself, not as a database error
        snapshot._in_sqlite(store.engine, target,
                            snapshot._Pacer(interrupted, interval=0, steps=100), 3)
    target.close()
    store.dispose()
    assert calls == [("analyst_cases", 0)]  # while its first rows were being read
