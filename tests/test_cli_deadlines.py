"""`hostwatch crawl --due` and `hostwatch deadlines` on the local test internet.

Removal orders whose deadlines are seconds away: the deadline run checks
their cases at and just after the deadline (and nothing else), and
`hostwatch deadlines` judges them met, breached or undecided once they have
passed, pending before.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from crawler.spiders.recheck import RecheckSpider
from hostwatch.cli import main
from lab import Serve, Status, TestInternet, marker_body
from store import Case, Check, CrawlRun, Store
from store.lock import RunLock
from store.runs import DueRule, count_due
from tests.crawler.conftest import run_crawl

IMAGE = marker_body("deadline-image")
# The "at" check is due MARGIN before the deadline and must land before it:
# MARGIN has to cover a crawl's start-up (about 4 s on a busy test machine).
# The deadline lines of the "at" run say "pending" when the run ends before
# the deadline, so MARGIN also leaves the run time to end.
MARGIN = 10


@pytest.fixture
def net() -> TestInternet:
    with TestInternet(ttl=1) as internet:
        yield internet


def hostwatch(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args])


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def wait_until(moment: datetime) -> None:
    left = (moment - datetime.now(UTC)).total_seconds()
    if left > 0:
        time.sleep(left)


def checks_of(store: Store) -> dict[str, list[tuple[datetime, str]]]:
    with store.session() as session:
        rows = session.execute(select(Case.external_id, Check.checked_at, Check.verdict)
                               .join(Check, Check.case_id == Case.id).order_by(Check.id)).all()
    out: dict[str, list[tuple[datetime, str]]] = {}
    for name, when, verdict in rows:
        out.setdefault(name, []).append((when, verdict))
    return out


def deadline_lines(stdout: str) -> dict[str, tuple[str, ...]]:
    """`crawl --due`'s deadline lines: case -> (regime, deadline, as stated, outcome)."""
    lines = [line.split("\t") for line in stdout.splitlines() if line.startswith("deadline\t")]
    return {cells[1].split("/", 1)[1]: tuple(cells[2:6]) for cells in lines}


def import_all(db: str, workdir: Path, reports: str, orders: str, notices: str = "") -> None:
    (workdir / "reports.csv").write_text("id,url,category,reported_at\n" + reports)
    (workdir / "orders.csv").write_text(
        "case_id,issued_at,issuer,deadline_at,legal_basis,reference\n" + orders)
    steps = [("import", "reports.csv"), ("import-orders", "orders.csv")]
    if notices:
        (workdir / "notices.csv").write_text("case_id,sent_at,recipient\n" + notices)
        steps.append(("import-notices", "notices.csv"))
    for command, name in steps:
        result = hostwatch(db, command, str(workdir / name))
        assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_deadline_runs_judge_met_breached_and_undecided(sqlite_url, net, tmp_path,
                                                          monkeypatch):
    monkeypatch.setenv("HOSTWATCH_DEADLINE_MARGIN_SECONDS", str(MARGIN))
    store = Store(sqlite_url)
    store.upgrade()
    # Round 0 is never crawled; round 1: the "at" run, round 2: the "after" run.
    stays = net.add_host("stays.test").route("/a.jpg", Serve(IMAGE))
    quick = net.add_host("quick.test").route("/a.jpg", [Serve(IMAGE), Status(404)])
    late = net.add_host("late.test").route("/a.jpg", [Serve(IMAGE), Serve(IMAGE), Status(404)])
    other = net.add_host("other.test").route("/a.jpg", Serve(IMAGE))
    reported = iso(datetime.now(UTC) - timedelta(hours=3))
    deadline = datetime.now(UTC) + timedelta(seconds=MARGIN + 0.5)
    import_all(sqlite_url, tmp_path, (
        f"STAY,{stays.url('/a.jpg')},terrorist,{reported}\n"
        f"QUICK,{quick.url('/a.jpg')},csam,{reported}\n"
        f"LATE,{late.url('/a.jpg')},csam,{reported}\n"
        f"NOTICE,{other.url('/a.jpg')},csam,{reported}\n"
        f"LATER,{other.url('/b.jpg')},csam,{reported}\n"
    ), (
        # Terrorist content: due one hour after issue, whatever deadline_at says.
        f"STAY,{iso(deadline - timedelta(hours=1))},Politie,"
        f"{iso(deadline + timedelta(hours=5))},EU 2021/784,T-1\n"
        # ATKM: the order's own deadline (within 12 hours of issue).
        f"QUICK,{iso(deadline - timedelta(hours=2))},ATKM,{iso(deadline)},,A-1\n"
        f"LATE,{iso(deadline - timedelta(hours=2))},ATKM,{iso(deadline)},,A-2\n"
        f"LATER,{iso(deadline - timedelta(hours=2))},ATKM,"
        f"{iso(deadline + timedelta(hours=11))},,A-3\n"
    ), f"NOTICE,{reported},abuse@other.test\n")
    with store.session() as session:
        # Without --due all five would be checked (never checked, recheck 0 h).
        assert count_due(session, datetime.now(UTC), DueRule(recheck_hours=0)) == 5

    net.round = 1  # quick.test has removed the image before the deadline
    wait_until(deadline - timedelta(seconds=MARGIN))
    at_run = run_crawl(sqlite_url, net, tmp_path, "--due")
    ended = datetime.now(UTC)
    assert at_run.returncode == 0, at_run.stderr[-3000:]
    assert "3 of 3 due cases checked" in at_run.stdout
    checks = checks_of(store)
    assert sorted(checks) == ["LATE", "QUICK", "STAY"]  # NOTICE and LATER: not due
    landed = max(when for history in checks.values() for when, _ in history)
    assert landed <= deadline, (
        f"the 'at' checks landed {(landed - deadline).total_seconds():.1f} s after the "
        f"deadline: this machine needs a larger MARGIN")
    # The run says how each order stands when it ends: pending while the
    # deadline is ahead (QUICK's image is gone already, but it may come back
    # before the deadline); judged from the checks so far once it has passed
    # (a slow machine ends the run after the deadline).
    lines = deadline_lines(at_run.stdout)
    assert {name: line[:3] for name, line in lines.items()} == {
        "QUICK": ("atkm_order", iso(deadline), iso(deadline)),
        "LATE": ("atkm_order", iso(deadline), iso(deadline)),
        "STAY": ("terrorist_1h", iso(deadline), iso(deadline + timedelta(hours=5))
                 + " (capped)")}
    outcomes = {name: line[3] for name, line in lines.items()}
    if ended < deadline:
        assert outcomes == {"QUICK": "pending", "LATE": "pending", "STAY": "pending"}
    else:
        assert outcomes in ({"QUICK": "pending", "LATE": "pending", "STAY": "pending"},
                            {"QUICK": "met", "LATE": "undecided", "STAY": "undecided"})

    net.round = 2  # late.test removes it only now, after the deadline
    wait_until(deadline + timedelta(seconds=MARGIN))
    after_run = run_crawl(sqlite_url, net, tmp_path, "--due")
    assert after_run.returncode == 0, after_run.stderr[-3000:]
    assert "3 of 3 due cases checked" in after_run.stdout
    checks = checks_of(store)
    assert {name: [verdict for _, verdict in history] for name, history in checks.items()} == {
        "STAY": ["online", "online"], "QUICK": ["http_gone", "http_gone"],
        "LATE": ["online", "http_gone"]}
    assert all(history[1][0] > deadline for history in checks.values())
    assert {name: line[3] for name, line in deadline_lines(after_run.stdout).items()} == {
        "STAY": "breached", "QUICK": "met", "LATE": "undecided"}
    with store.session() as session:
        runs = session.execute(select(CrawlRun.method, CrawlRun.status, CrawlRun.cases_due)
                               .order_by(CrawlRun.id)).all()
    assert runs == [("http-deadlines", "finished", 3)] * 2

    result = hostwatch(sqlite_url, "deadlines", "--json")
    assert result.exit_code == 0, result.output
    rows = {(row["id"], row["regime"]): row for row in map(json.loads, result.stdout.splitlines())}
    assert sorted(rows) == [("LATE", "atkm_order"), ("LATER", "atkm_order"),
                            ("NOTICE", "notice_24h"), ("QUICK", "atkm_order"),
                            ("STAY", "terrorist_1h")]
    outcome = {name: row["outcome"] for (name, _), row in rows.items()}
    # LATER's deadline is 10 hours ahead, NOTICE's 21 hours: pending, not judged.
    assert outcome == {"STAY": "breached", "QUICK": "met", "LATE": "undecided",
                       "LATER": "pending", "NOTICE": "pending"}
    stay = rows["STAY", "terrorist_1h"]
    assert stay["deadline"] == iso(deadline)  # issue + 1 h, not the order's deadline_at
    assert (stay["last_before_verdict"], stay["first_after_verdict"]) == ("online", "online")
    assert stay["first_after"] == iso(checks["STAY"][1][0])
    quick_row = rows["QUICK", "atkm_order"]
    assert quick_row["last_before"] == iso(checks["QUICK"][0][0])
    assert quick_row["last_before_verdict"] == "http_gone"
    # Both deadline checks done: nothing scheduled any more.
    assert {rows[name, "atkm_order"]["next_check"] for name in ("QUICK", "LATE")} == {None}
    # LATER: 13 hours after issue is cut to 12 (10 hours from now); its "at"
    # check comes MARGIN before that.
    later = rows["LATER", "atkm_order"]
    assert later["deadline"] == iso(deadline + timedelta(hours=10))
    assert (later["deadline_stated"], later["capped"]) == (
        iso(deadline + timedelta(hours=11)), True)
    assert (quick_row["deadline_stated"], quick_row["capped"]) == (iso(deadline), False)
    assert (rows["NOTICE", "notice_24h"]["deadline_stated"],
            rows["NOTICE", "notice_24h"]["capped"]) == (None, False)
    assert later["next_check_kind"] == "at"
    assert later["next_check"] == iso(deadline + timedelta(hours=10, seconds=-MARGIN))
    # Notices are judged but not scheduled.
    assert rows["NOTICE", "notice_24h"]["next_check"] is None

    text = hostwatch(sqlite_url, "deadlines", "--open")
    assert text.exit_code == 0, text.output
    assert ("atkm_order: met 1, already_gone 0, breached 0, undecided 1, pending 1"
            in text.stdout)
    assert ("terrorist_1h: met 0, already_gone 0, breached 1, undecided 0, pending 0"
            in text.stdout)
    assert ("notice_24h: met 0, already_gone 0, breached 0, undecided 0, pending 1"
            in text.stdout)
    later_line = next(line.split("\t") for line in text.stdout.splitlines()
                      if line.startswith("hotline/LATER\t"))
    assert later_line[1:5] == ["atkm_order", iso(deadline + timedelta(hours=10)),
                               iso(deadline + timedelta(hours=11)) + " (capped)", "pending"]


@pytest.mark.slow
def test_a_deadline_run_waits_for_no_lock_and_checks_nothing_while_the_night_runs(
        sqlite_url, net, tmp_path):
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("locked.test").route("/a.jpg", Serve(IMAGE))
    now = datetime.now(UTC)
    # Default margin (300 s): the "at" check of a deadline 60 s away is due now.
    import_all(sqlite_url, tmp_path, f"L1,{host.url('/a.jpg')},csam,{iso(now)}\n",
               f"L1,{iso(now - timedelta(hours=1))},ATKM,{iso(now + timedelta(seconds=60))},,"
               "A-9\n")
    with RunLock(store, str(tmp_path)):
        busy = run_crawl(sqlite_url, net, tmp_path, "--due")
    assert busy.returncode == 3
    assert "another hostwatch run" in busy.stderr
    assert checks_of(store) == {}

    # The case was checked meanwhile: the "at" check is done, "after" is minutes away.
    (tmp_path / "checks.csv").write_text(f"case_id,checked_at,verdict\nL1,{iso(now)},online\n")
    assert hostwatch(sqlite_url, "import-checks", str(tmp_path / "checks.csv")).exit_code == 0
    with RunLock(store, str(tmp_path)):
        idle = run_crawl(sqlite_url, net, tmp_path, "--due")
    assert idle.returncode == 0, idle.stderr[-3000:]
    assert idle.stdout == "no deadline checks due\n"
    with store.session() as session:
        assert session.scalars(select(CrawlRun)).all() == []


def test_an_unknown_due_argument_is_refused():
    with pytest.raises(ValueError, match="due: expected nightly or deadlines, got 'weekly'"):
        RecheckSpider(due="weekly")


def test_plain_deadlines_start_with_a_header_row_json_has_none(sqlite_url, tmp_path):
    (tmp_path / "reports.csv").write_text(
        "id,url,category,reported_at,notice_sent_at\n"
        "N1,http://h.test/a.jpg,csam,2026-02-01T10:00:00Z,2026-02-01T11:00:00Z\n", "utf-8")
    assert hostwatch(sqlite_url, "import", str(tmp_path / "reports.csv")).exit_code == 0
    text = hostwatch(sqlite_url, "deadlines")
    assert text.exit_code == 0, text.output
    header, line, tally = text.stdout.splitlines()
    assert header.split("\t") == ["case", "regime", "deadline", "deadline_stated", "outcome",
                                  "last_before", "first_after", "next_check", "url"]
    assert line.split("\t")[:2] == ["hotline/N1", "notice_24h"]
    assert len(line.split("\t")) == len(header.split("\t"))
    assert tally.startswith("notice_24h: met 0")
    as_json = hostwatch(sqlite_url, "deadlines", "--json")
    assert [json.loads(row)["id"] for row in as_json.stdout.splitlines()] == ["N1"]
    none = hostwatch(sqlite_url, "deadlines", "--open")
    assert none.stdout == "no deadlines open\n"  # no header without a row
