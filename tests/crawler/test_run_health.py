"""A broken vantage point removes nothing (#10 point 8): control URLs, the
anomaly rule, suspect runs, and the healthy run that confirms or clears them."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from lab import Serve, Status, marker_body
from store import Case, Check, CrawlRun, Store
from store.runs import DueRule, count_due
from tests.crawler.conftest import add_cases, crawl_env, run_crawl

IMAGE = marker_body("health-image")
QUICK = {"HOSTWATCH_REMOVAL_MIN_HOURS": "0"}  # rounds are seconds apart here
EXIT_SUSPECT = 5


def states(store: Store) -> dict[str, str]:
    with store.session() as session:
        return dict(session.execute(select(Case.url, Case.state)).all())


def runs(store: Store) -> list[CrawlRun]:
    with store.session() as session:
        return list(session.scalars(select(CrawlRun).order_by(CrawlRun.id)))


def due_a_night_after(store: Store, healthy_run: int, suspect_run: int) -> int:
    """Cases due (HOSTWATCH_RECHECK_HOURS=20) at a time 20 hours after the
    healthy run's checks but not yet 20 hours after the suspect run's."""
    with store.session() as session:
        healthy = session.scalar(select(func.max(Check.checked_at))
                                 .where(Check.run_id == healthy_run))
        suspect = session.scalar(select(func.min(Check.checked_at))
                                 .where(Check.run_id == suspect_run))
        assert healthy is not None and suspect is not None and healthy < suspect
        when = healthy + (suspect - healthy) / 2 + timedelta(hours=20)
        return count_due(session, when, DueRule(recheck_hours=20))


def status(db_url: str, net, workdir) -> str:
    result = subprocess.run([sys.executable, "-m", "hostwatch", "--db", db_url, "status"],
                            env=crawl_env(net, workdir), cwd=workdir, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_a_dead_resolver_removes_nothing_until_a_healthy_run(sqlite_url, net, tmp_path):
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("vantage.test")
    host.default(Serve(IMAGE))
    urls = [host.url(f"/img/{i}.jpg") for i in range(24)]
    add_cases(store, urls)

    result = run_crawl(sqlite_url, net, tmp_path, **QUICK)
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(states(store).values()) == {"online"}

    # The vantage point's resolver now says no name exists: twice, enough
    # gone checks to confirm a removal of every case.
    net.break_dns("nxdomain")
    for _ in range(2):
        result = run_crawl(sqlite_url, net, tmp_path, **QUICK)
        assert result.returncode == EXIT_SUSPECT, result.stderr[-3000:]
        assert "SUSPECT" in result.stdout
    assert set(states(store).values()) == {"online"}  # nothing removed
    with store.session() as session:
        verdicts = set(session.scalars(select(Check.verdict).where(Check.run_id > 1)))
    assert verdicts == {"nxdomain"}  # the checks are kept...
    assert [r.health for r in runs(store)] == ["healthy", "suspect", "suspect"]
    assert "served before" in (runs(store)[1].health_reason or "")
    shown = status(sqlite_url, net, tmp_path)
    assert "suspect" in shown
    assert "24 cases await confirmation" in shown
    # ...and their cases stay due: the suspect checks do not reset the clock
    # of the recheck interval, a healthy check does.
    assert due_a_night_after(store, healthy_run=1, suspect_run=3) == 24

    net.break_dns(None)
    result = run_crawl(sqlite_url, net, tmp_path, **QUICK)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert runs(store)[-1].health == "healthy"
    assert set(states(store).values()) == {"online"}
    assert "await confirmation" not in status(sqlite_url, net, tmp_path)
    net.break_dns("servfail")
    result = run_crawl(sqlite_url, net, tmp_path, **QUICK)
    assert result.returncode == EXIT_SUSPECT, result.stdout + result.stderr[-3000:]
    assert due_a_night_after(store, healthy_run=4, suspect_run=5) == 24


@pytest.mark.slow
def test_a_dead_resolver_in_a_run_too_small_for_a_share_removes_nothing(sqlite_url, net,
                                                                        tmp_path):
    """A handful of cases (a deadline run's size) and no control URLs: a run
    in which every check got no address is suspect all the same."""
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("small.test")
    host.default(Serve(IMAGE))
    add_cases(store, [host.url(f"/img/{i}.jpg") for i in range(3)])
    assert run_crawl(sqlite_url, net, tmp_path, **QUICK).returncode == 0
    net.break_dns("nxdomain")
    for _ in range(2):
        result = run_crawl(sqlite_url, net, tmp_path, **QUICK)
        assert result.returncode == EXIT_SUSPECT, result.stdout + result.stderr[-3000:]
    assert "all 3 checks got no usable address" in (runs(store)[-1].health_reason or "")
    assert set(states(store).values()) == {"online"}
    net.break_dns(None)


@pytest.mark.slow
def test_a_control_url_that_fails_makes_the_run_suspect_until_a_healthy_run_confirms(
        db_url, store, net, tmp_path):
    control = net.add_host("control.test")
    # served in round 0, a 503 in rounds 1 and 2, served again from round 3
    control.route("/ok", [Serve(b"control"), Status(503), Status(503), Serve(b"control")])
    host = net.add_host("taken.test")
    host.route("/a.jpg", [Serve(IMAGE), Status(404)])
    host.route("/b.jpg", Serve(IMAGE))
    add_cases(store, [host.url("/a.jpg"), host.url("/b.jpg")])
    env = {"HOSTWATCH_CONTROL_URLS": control.url("/ok"), **QUICK}

    seen = []
    codes = []
    for round_ in range(5):
        net.round = round_
        result = run_crawl(db_url, net, tmp_path, **env)
        codes.append(result.returncode)
        seen.append(states(store)[host.url("/a.jpg")])
    assert codes == [0, EXIT_SUSPECT, EXIT_SUSPECT, 0, 0]
    # The 404s of the suspect runs 1 and 2 do not count; the healthy runs 3
    # and 4 confirm the removal with gone checks of their own.
    assert seen == ["online", "online", "online", "pending_removal", "removed"]
    health = runs(store)
    assert [r.health for r in health] == ["healthy", "suspect", "suspect", "healthy", "healthy"]
    assert "control" in (health[1].health_reason or "")
    assert {c["phase"] for c in health[1].controls} == {"start", "end"}
    assert all(c["status"] == 503 for c in health[1].controls)
    with store.session() as session:
        case = session.scalars(select(Case).where(Case.url == host.url("/a.jpg"))).one()
        checks = session.execute(select(Check.checked_at, Check.run_id)
                                 .where(Check.case_id == case.id).order_by(Check.checked_at)).all()
    # The removal lies between the last served check and the first gone check
    # of a healthy run: a suspect run's check does not narrow it.
    assert (case.removed_after, case.removed_at) == (checks[0][0], checks[3][0])
    assert states(store)[host.url("/b.jpg")] == "online"


@pytest.mark.slow
def test_a_normal_run_with_a_few_genuine_removals_is_not_suspect(sqlite_url, net, tmp_path):
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("many.test")
    host.default(Serve(IMAGE))
    for i in range(3):
        host.route(f"/gone/{i}.jpg", [Serve(IMAGE), Status(404)])
    gone_host = net.add_host("vanishing.test")
    gone_host.route("/x.jpg", Serve(IMAGE))
    urls = [host.url(f"/img/{i}.jpg") for i in range(21)]
    gone = [host.url(f"/gone/{i}.jpg") for i in range(3)] + [gone_host.url("/x.jpg")]
    add_cases(store, urls + gone)
    for round_ in range(3):
        net.round = round_
        if round_ == 1:
            net.remove_name("vanishing.test")
        result = run_crawl(sqlite_url, net, tmp_path, **QUICK)
        assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert {r.health for r in runs(store)} == {"healthy"}
    found = states(store)
    assert {found[url] for url in gone} == {"removed"}
    assert {found[url] for url in urls} == {"online"}
