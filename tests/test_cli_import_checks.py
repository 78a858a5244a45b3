"""`hostwatch import-checks`: a hotline's earlier check log joins the history."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select

from store import Case, Check, Store
from store.checks import verify_chain
from tests.test_cli_import import db, hostwatch, workdir  # noqa: F401 - fixtures

REPORTS = ("id,url,category,reported_at\n"
           "A1,https://img.example.com/a.jpg,csam,2026-02-01T10:00:00Z\n"
           "B2,https://img.example.com/b.jpg,ncii,2026-02-01T11:00:00Z\n")
CHECKS = ("case_id,checked_at,verdict,http_status,ip\n"
          "A1,2026-02-01T12:00:00Z,online,200,85.17.1.1\n"
          "A1,2026-02-02T12:00:00Z,http_gone,404,85.17.1.1\n"
          "A1,2026-02-03T12:00:00Z,http_gone,404,85.17.1.1\n"
          "B2,2026-02-01T12:00:00Z,online,200,\n"
          "B2,2026-02-04T12:00:00Z,online,200,\n")


def _t(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 2, day, hour, tzinfo=UTC)


def test_imported_checks_make_the_case_history(workdir, db):  # noqa: F811
    (workdir / "reports.csv").write_text(REPORTS)
    (workdir / "checks.csv").write_text(CHECKS)
    assert hostwatch(db, "import", "reports.csv").exit_code == 0
    result = hostwatch(db, "import-checks", "checks.csv")
    assert result.exit_code == 0, result.output
    assert "checks.csv: 5 added, 0 unchanged, 0 rejected" in result.output
    store = Store(db)
    with store.session() as session:
        cases = {c.external_id: c for c in session.scalars(select(Case))}
        checks = session.scalars(select(Check).order_by(Check.id)).all()
        count, problems = verify_chain(session)
    a, b = cases["A1"], cases["B2"]
    # Removed after two gone checks 24 h apart: the interval (last served, first gone].
    assert (a.state, a.removed_after, a.removed_at, a.check_count) == (
        "removed", _t(1), _t(2), 3)
    assert (b.state, b.last_checked_at) == ("online", _t(4))
    assert all(c.imported and c.method == "imported" for c in checks)
    assert [c.checked_at for c in checks] == sorted(c.checked_at for c in checks)
    assert (checks[0].http_status, checks[0].peer_ip) == (200, "85.17.1.1")
    assert (count, problems) == (5, [])
    again = hostwatch(db, "import-checks", "checks.csv")
    assert again.exit_code == 0
    assert "0 added, 5 unchanged, 0 rejected" in again.output


def test_bad_rows_are_named_and_the_good_ones_kept(workdir, db):  # noqa: F811
    (workdir / "reports.csv").write_text(REPORTS)
    (workdir / "checks.csv").write_text(
        "case_id,checked_at,verdict,http_status\n"
        "A1,2026-02-01T12:00:00Z,online,200\n"
        "A1,2026-02-02T12:00:00Z,gone-ish,404\n"
        "A1,2026-02-02,http_gone,404\n"
        "A1,2026-02-03T12:00:00Z,http_gone,99\n"
        "Z9,2026-02-03T12:00:00Z,http_gone,404\n"
        "A1,2026-02-01T12:00:00Z,online,200\n")
    assert hostwatch(db, "import", "reports.csv").exit_code == 0
    result = hostwatch(db, "import-checks", "checks.csv")
    assert result.exit_code == 1
    assert "checks.csv: 1 added, 0 unchanged, 5 rejected" in result.output
    assert "checks.csv:3: verdict: not a verdict: 'gone-ish'" in result.output
    assert "checks.csv:4: checked_at:" in result.output
    assert "checks.csv:5: http_status: not an HTTP status" in result.output
    assert "checks.csv:6: case_id: no case 'Z9'" in result.output
    assert "checks.csv:7: duplicate check (first on line 2)" in result.output
    # A check that contradicts one already imported is refused, not overwritten.
    (workdir / "other.csv").write_text("case_id,checked_at,verdict\n"
                                       "A1,2026-02-01T12:00:00Z,http_gone\n")
    conflict = hostwatch(db, "import-checks", "other.csv")
    assert conflict.exit_code == 1
    assert "other.csv:2: verdict:" in conflict.output


def test_a_log_older_than_a_late_report_makes_packs_and_reports(workdir, db, monkeypatch):  # noqa: F811
    """Gone checks before the report time: the case is removed with no known
    last sighting, and the report, the pack and the XARF export all succeed."""
    from lab.rdap import REALDATA as realdata
    monkeypatch.setenv("HOSTWATCH_OFFLINE", "1")
    monkeypatch.setenv("HOSTWATCH_NAMESERVERS", "127.0.0.1:9")
    monkeypatch.setenv("HOSTWATCH_ASN_DB", str(realdata / "ipasn_20140513.dat.gz"))
    monkeypatch.setenv("HOSTWATCH_ASNAMES", str(realdata / "asnames.json.gz"))
    (workdir / "reports.csv").write_text(
        "id,url,category,reported_at\nA1,https://img.example.com/a.jpg,csam,2026-02-05T10:00:00Z\n")
    (workdir / "checks.csv").write_text(
        "case_id,checked_at,verdict,http_status,ip\n"
        "A1,2026-02-01T12:00:00Z,http_gone,404,85.17.1.1\n"
        "A1,2026-02-02T12:00:00Z,http_gone,404,85.17.1.1\n")
    assert hostwatch(db, "import", "reports.csv").exit_code == 0
    assert hostwatch(db, "import-checks", "checks.csv").exit_code == 0
    assert hostwatch(db, "enrich").exit_code == 0
    store = Store(db)
    with store.session() as session:
        case = session.scalars(select(Case)).one()
    store.dispose()
    assert (case.state, case.removed_after, case.removed_at) == ("removed", None, _t(1))
    pack = hostwatch(db, "report", "evidence", "--hoster", "leaseweb-network", "--for", "atkm",
                     "-o", "pack")
    assert pack.exit_code == 0, pack.output
    assert (workdir / "pack.zip").exists()
    report = hostwatch(db, "report", "hosters", "--format", "json", "-o", "-")
    assert report.exit_code == 0, report.output
    method = json.loads(report.output)["method"]
    assert method["check_resolution_hours"] is None  # no interval to measure
