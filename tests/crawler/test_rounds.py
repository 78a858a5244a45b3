"""Several crawl rounds while hosts change: debounce, reappearance, resume, lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select, text

from lab import Bursts, Serve, Slow, Status, marker_body
from store import Case, Check, CrawlRun, Store
from store.lock import RunLock
from tests.crawler.conftest import add_cases, crawl_env, run_crawl

IMAGE = marker_body("round-image")
QUICK = {"HOSTWATCH_REMOVAL_MIN_HOURS": "0"}  # rounds are seconds apart here


def states(store: Store) -> dict[str, tuple[str, int]]:
    with store.session() as session:
        return {url: (state, reappearances) for url, state, reappearances in session.execute(
            select(Case.url, Case.state, Case.reappearances))}


@pytest.mark.slow
def test_removal_is_debounced_and_reappearance_counted(store, db_url, net, tmp_path):
    host = net.add_host("rounds.test")
    host.route("/takedown.jpg", [Serve(IMAGE), Status(404), Status(404), Status(404)])
    host.route("/back.jpg", [Serve(IMAGE), Status(410), Status(410), Serve(IMAGE)])
    host.route("/flaky.jpg", [Bursts(2, then=Serve(IMAGE))])
    host.route("/stays.jpg", Serve(IMAGE))
    urls = {name: host.url(f"/{name}.jpg") for name in ("takedown", "back", "flaky", "stays")}
    add_cases(store, list(urls.values()))

    seen = []
    for round_ in range(4):
        net.round = round_
        result = run_crawl(db_url, net, tmp_path, **QUICK)
        assert result.returncode == 0, result.stderr[-3000:]
        seen.append({name: states(store)[url] for name, url in urls.items()})

    assert [s["takedown"][0] for s in seen] == ["online", "pending_removal", "removed", "removed"]
    assert [s["back"] for s in seen] == [
        ("online", 0), ("pending_removal", 0), ("removed", 0), ("reappeared", 1)]
    # 503, 503, then served: transient failures never made it "removed".
    assert [s["flaky"][0] for s in seen] == ["pending_removal", "pending_removal", "online",
                                             "online"]
    assert {s["stays"][0] for s in seen} == {"online"}
    with store.session() as session:
        case = session.scalars(select(Case).where(Case.url == urls["takedown"])).one()
        times = list(session.scalars(select(Check.checked_at).where(Check.case_id == case.id)
                                     .order_by(Check.checked_at)))
    # Removal time is the interval (last served check, first gone check].
    assert (case.removed_after, case.removed_at) == (times[0], times[1])


@pytest.mark.slow
def test_crash_mid_run_keeps_finished_checks_and_the_next_run_resumes(sqlite_url, net, tmp_path):
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("slowish.test")
    host.default(Slow(0.3, then=Serve(IMAGE)))
    urls = [host.url(f"/c/{i}.jpg") for i in range(120)]
    add_cases(store, urls)
    env = crawl_env(net, tmp_path, HOSTWATCH_RECHECK_HOURS="6", HOSTWATCH_WRITE_BATCH="5",
                    HOSTWATCH_CONCURRENCY="4", HOSTWATCH_CONCURRENCY_PER_HOST="4",
                    HOSTWATCH_SOFT404_PROBE="0")
    child = subprocess.Popen([sys.executable, "-m", "hostwatch", "--db", sqlite_url, "crawl"],
                             env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with store.session() as session:
                written = session.scalar(select(func.count()).select_from(Check))
            if written >= 20:
                break
            time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)  # a crash: no clean-up runs
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    with store.session() as session:
        before = session.scalar(select(func.count()).select_from(Check))
    assert 20 <= before < len(urls)

    result = run_crawl(sqlite_url, net, tmp_path, HOSTWATCH_RECHECK_HOURS="6",
                       HOSTWATCH_SOFT404_PROBE="0", HOSTWATCH_CONCURRENCY="32")
    assert result.returncode == 0, result.stderr[-3000:]
    with store.session() as session:
        per_case = dict(session.execute(
            select(Check.case_id, func.count()).group_by(Check.case_id)).all())
        runs = session.scalars(select(CrawlRun).order_by(CrawlRun.id)).all()
    assert len(per_case) == len(urls)  # every case checked...
    assert set(per_case.values()) == {1}  # ...exactly once over both runs
    assert [r.status for r in runs] == ["aborted", "finished"]
    assert runs[1].checks_made == len(urls) - before


@pytest.mark.slow
def test_a_second_run_does_not_start_while_one_holds_the_lock(db_url, store, net, tmp_path):
    host = net.add_host("lock.test")
    host.route("/a.jpg", Serve(IMAGE))
    add_cases(store, [host.url("/a.jpg")])
    with RunLock(store, str(tmp_path)):
        result = run_crawl(db_url, net, tmp_path)
    assert result.returncode == 3
    assert "another hostwatch run" in result.stderr
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Check)) == 0
    result = run_crawl(db_url, net, tmp_path)  # the lock is free again
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_a_store_that_refuses_writes_stops_the_crawl_with_an_error(sqlite_url, net, tmp_path):
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("full.test")
    host.default(Serve(IMAGE))
    add_cases(store, [host.url(f"/{i}.jpg") for i in range(30)])
    with store.transaction() as session:
        session.execute(text("CREATE TRIGGER no_checks BEFORE INSERT ON checks "
                             "BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END"))
    result = run_crawl(sqlite_url, net, tmp_path, HOSTWATCH_SOFT404_PROBE="0")
    assert result.returncode == 1
    assert "checks could not be written" in result.stderr
    assert "disk full (simulated)" in result.stderr
    with store.session() as session:
        run = session.scalars(select(CrawlRun)).one()
    assert (run.status, run.checks_made) == ("failed", 0)
