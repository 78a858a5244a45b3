"""Runs shared by several workers through the queue (#16): Procrastinate on
the real PostgreSQL of this machine, worker processes as operators start
them (`hostwatch crawl --workers N`, `hostwatch worker`), the local test
internet serving the cases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from lab import TestInternet
from lab.behaviours import Serve, Slow, Status
from store import Check, CrawlRun, Store
from store.checks import verify_chain
from store.models import RunWorker
from tests.conftest import PG_URL
from tests.crawler.conftest import add_cases, crawl_env, run_crawl

pytestmark = pytest.mark.postgres

IMAGE = b"\xff\xd8\xff\xe0" + b"shared-run-test-image" * 20


@pytest.fixture
def pg_store(pg_url):
    store = Store(pg_url)
    store.upgrade()
    yield store
    store.dispose()


def _queue_url(pg_url: str) -> str:
    return pg_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _cases(net: TestInternet, store: Store, count: int, delay: float = 0.0) -> dict[str, int]:
    """``count`` cases on three hosts: served, gone, served after ``delay``."""
    hosts = [net.add_host(f"w{i}.test") for i in range(3)]
    urls = []
    for number in range(count):
        host = hosts[number % 3]
        path = f"/c{number}.jpg"
        kind = number % 3
        behaviour = Serve(IMAGE) if kind == 0 else Status(404) if kind == 1 else Serve(IMAGE)
        host.route(path, Slow(delay, behaviour) if delay else behaviour)
        urls.append(host.url(path))
    return add_cases(store, urls)


def _checks_per_case(store: Store, run_id: int) -> Counter[int]:
    with store.session() as session:
        return Counter(session.scalars(select(Check.case_id).where(Check.run_id == run_id)))


def _one_run(store: Store) -> CrawlRun:
    with store.session() as session:
        return session.scalars(select(CrawlRun)).one()


def _workers(store: Store, run_id: int) -> list[RunWorker]:
    with store.session() as session:
        return list(session.scalars(select(RunWorker).where(RunWorker.run_id == run_id)))


def _chain_ok(store: Store) -> int:
    with store.session() as session:
        count, problems = verify_chain(session)
    assert problems == []
    return count


def test_three_workers_share_a_run_and_each_case_is_checked_once(pg_store, pg_url, net,
                                                                  tmp_path):
    ids = _cases(net, pg_store, 90, delay=0.05)
    result = run_crawl(pg_url, net, tmp_path, "--workers", "3", timeout=240,
                       HOSTWATCH_QUEUE=_queue_url(pg_url), HOSTWATCH_QUEUE_BATCH="10",
                       HOSTWATCH_CONCURRENCY="4")
    assert result.returncode == 0, result.stderr[-3000:]
    run = _one_run(pg_store)
    assert run.status == "finished"
    per_case = _checks_per_case(pg_store, run.id)
    assert set(per_case) == set(ids.values())
    assert set(per_case.values()) == {1}
    # One run record, its counts summed over the workers.
    assert run.checks_made == 90 and run.cases_due == 90
    assert run.counts == {"online": 60, "http_gone": 30}
    assert f"run {run.id} finished: 90 of 90 due cases checked" in result.stdout
    workers = _workers(pg_store, run.id)
    assert len(workers) == 3, [w.name for w in workers]  # every worker took batches
    assert sum(w.checks for w in workers) == 90
    assert all(w.stopped_at is not None for w in workers)
    status = subprocess.run([sys.executable, "-m", "hostwatch", "--db", pg_url, "status"],
                            env=crawl_env(net, tmp_path), capture_output=True, text=True,
                            timeout=60, check=False)
    assert status.returncode == 0, status.stderr
    lines = [line for line in status.stdout.splitlines() if line.startswith("  worker ")]
    assert len(lines) == 3 and all("stopped" in line for line in lines), status.stdout
    # Concurrent writers, one chain.
    assert _chain_ok(pg_store) == 90
    verify = subprocess.run([sys.executable, "-m", "hostwatch", "--db", pg_url, "verify"],
                            env=crawl_env(net, tmp_path), capture_output=True, text=True,
                            timeout=60, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _start_worker(pg_url: str, net: TestInternet, workdir: Path,
                  **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "hostwatch", "--db", pg_url, "worker"],
                            env=crawl_env(net, workdir, **extra), cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _start_coordinator(pg_url: str, net: TestInternet, workdir: Path,
                       **settings: str) -> subprocess.Popen[str]:
    """`crawl --workers 0`: the run's coordinator, every worker started by the test."""
    return subprocess.Popen(
        [sys.executable, "-m", "hostwatch", "--db", pg_url, "crawl", "--workers", "0"],
        env=crawl_env(net, workdir, **settings), cwd=workdir, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def _wait_until_it_stored(store: Store, worker: subprocess.Popen[str], checks: int) -> None:
    """Until ``worker`` has stored ``checks`` checks of its own (its status line)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        mine = [w for w in _workers_of_any_run(store) if w.pid == worker.pid]
        if mine and mine[0].checks >= checks:
            return
        time.sleep(0.2)
    pytest.fail(f"worker {worker.pid} stored no {checks} checks")


def _slow_settings(pg_url: str, lease: int) -> dict[str, str]:
    """Small batches, one at a time, two requests at once: a run of seconds."""
    return {"HOSTWATCH_QUEUE": _queue_url(pg_url), "HOSTWATCH_QUEUE_BATCH": "5",
            "HOSTWATCH_QUEUE_LEASE": str(lease), "HOSTWATCH_CONCURRENCY": "2",
            "HOSTWATCH_WORKER_JOBS": "1"}


def test_a_killed_worker_loses_nothing(pg_store, pg_url, net, tmp_path):
    ids = _cases(net, pg_store, 60, delay=0.3)
    settings = _slow_settings(pg_url, lease=3)
    coordinator = _start_coordinator(pg_url, net, tmp_path, **settings)
    workers = [_start_worker(pg_url, net, tmp_path, **settings) for _ in range(3)]
    try:
        victim = workers[0]
        # Kill the first worker once it has stored some checks of its own.
        _wait_until_it_stored(pg_store, victim, 2)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        out, err = coordinator.communicate(timeout=240)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
        if coordinator.poll() is None:
            coordinator.kill()
    assert coordinator.returncode == 0, err[-3000:]
    run = _one_run(pg_store)
    assert run.status == "finished", (run.status, err[-2000:])
    per_case = _checks_per_case(pg_store, run.id)
    assert set(per_case) == set(ids.values())  # the killed worker's cases too
    assert set(per_case.values()) == {1}
    killed = [w for w in _workers(pg_store, run.id) if w.pid == victim.pid]
    assert killed and killed[0].stopped_at is None  # it never said goodbye
    assert "handed" in err  # the coordinator said it handed batches on
    _chain_ok(pg_store)


def test_a_stopped_worker_finishes_its_batches_first(pg_store, pg_url, net, tmp_path):
    """SIGTERM (systemctl stop): no new batch, the batches in hand are
    finished and stored, exit 0. Finishing them takes longer than the lease
    (2 s): the stopping worker keeps its heartbeat, so nothing is handed on."""
    ids = _cases(net, pg_store, 40, delay=1.5)
    settings = {**_slow_settings(pg_url, lease=2), "HOSTWATCH_QUEUE_BATCH": "10"}
    coordinator = _start_coordinator(pg_url, net, tmp_path, **settings)
    stopped, other = (_start_worker(pg_url, net, tmp_path, **settings) for _ in range(2))
    try:
        _wait_until_it_stored(pg_store, stopped, 2)
        stopped.send_signal(signal.SIGTERM)
        _out, stopped_err = stopped.communicate(timeout=60)
        out, err = coordinator.communicate(timeout=180)
    finally:
        for process in (stopped, other, coordinator):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        other.communicate(timeout=60)
    assert stopped.returncode == 0, stopped_err[-2000:]
    assert "stopping after the batches in hand" in stopped_err
    assert coordinator.returncode == 0, err[-3000:]
    run = _one_run(pg_store)
    assert run.status == "finished"
    per_case = _checks_per_case(pg_store, run.id)
    assert set(per_case) == set(ids.values()) and set(per_case.values()) == {1}
    mine = [w for w in _workers(pg_store, run.id) if w.pid == stopped.pid]
    assert mine[0].stopped_at is not None and mine[0].checks % 10 == 0  # whole batches
    assert "handed" not in err


def test_a_worker_on_another_store_leaves_the_batches_and_stops(pg_store, pg_url, net,
                                                                 tmp_path):
    """A worker whose HOSTWATCH_DB is not the coordinator's store must not
    eat the run's batches: it says so, exits 78 (a setting to correct: the
    systemd unit does not restart it) without taking a batch, however often
    it is started, and the batches are checked by a rightly configured
    worker."""
    ids = _cases(net, pg_store, 6)
    other_schema = f"t_other_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{other_schema}"'))
    other_db = f"{PG_URL}?options=-csearch_path%3D{other_schema}"
    settings = {"HOSTWATCH_QUEUE": _queue_url(pg_url), "HOSTWATCH_QUEUE_BATCH": "3"}
    coordinator = _start_coordinator(pg_url, net, tmp_path, **settings)
    right = None
    try:
        _wait_for_batches(pg_url, 2)
        wrongs = []
        for _ in range(3):  # as systemd would restart it
            wrong = _start_worker(other_db, net, tmp_path, **settings)
            _out, wrong_err = wrong.communicate(timeout=120)
            wrongs.append(wrong.returncode)
        tries = _batch_tries(pg_url)
        right = _start_worker(pg_url, net, tmp_path, **settings)
        out, err = coordinator.communicate(timeout=120)
    finally:
        for process in (coordinator, right):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.communicate(timeout=60)
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{other_schema}" CASCADE'))
        admin.dispose()
    assert wrongs == [78, 78, 78]
    assert "its store has no run 1" in wrong_err and "HOSTWATCH_DB" in wrong_err
    assert tries == [0, 0], "the wrong worker took batches"
    assert coordinator.returncode == 0, err[-3000:]
    run = _one_run(pg_store)
    per_case = _checks_per_case(pg_store, run.id)
    assert run.status == "finished"
    assert set(per_case) == set(ids.values()) and set(per_case.values()) == {1}


def _jobs(pg_url: str) -> list[tuple[str, int]]:
    """(status, attempts) of every queued batch."""
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return [(row[0], row[1]) for row in conn.execute(text(
                "SELECT status::text, attempts FROM procrastinate_jobs "
                "WHERE queue_name = 'hostwatch' ORDER BY id"))]
    finally:
        engine.dispose()


def _wait_for_batches(pg_url: str, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if len(_jobs(pg_url)) >= count:
                return
        except Exception:  # the queue's tables not made yet
            pass
        time.sleep(0.2)
    pytest.fail(f"the coordinator queued no {count} batches")


def _batch_tries(pg_url: str) -> list[int]:
    return [attempts for _status, attempts in _jobs(pg_url)]


def _workers_of_any_run(store: Store) -> list[RunWorker]:
    with store.session() as session:
        return list(session.scalars(select(RunWorker)))


def test_a_worker_that_cannot_reach_the_queue_exits_with_a_clear_error(pg_store, pg_url,
                                                                        net, tmp_path):
    started = time.monotonic()
    worker = _start_worker(pg_url, net, tmp_path,
                           HOSTWATCH_QUEUE="postgresql://postgres:s3cret@127.0.0.1:1/test")
    out, err = worker.communicate(timeout=60)
    assert worker.returncode == 1
    assert "cannot reach the queue at postgresql://postgres:***@127.0.0.1:1/test" in err
    assert "HOSTWATCH_QUEUE" in err and "s3cret" not in err + out
    assert time.monotonic() - started < 30


def test_a_shared_run_needs_postgresql_and_a_postgresql_queue(sqlite_url, net, tmp_path):
    result = run_crawl(sqlite_url, net, tmp_path, "--workers", "2",
                       HOSTWATCH_QUEUE=_queue_url(PG_URL))
    assert result.returncode == 1
    assert "needs the store on PostgreSQL" in result.stderr
    result = run_crawl(sqlite_url, net, tmp_path, "--workers", "2",
                       HOSTWATCH_QUEUE="redis://127.0.0.1:6379/0")
    assert result.returncode != 0
    assert "HOSTWATCH_QUEUE" in result.stderr and "not Redis" in result.stderr


def test_the_single_process_crawl_writes_no_worker_tables(pg_store, pg_url, net, tmp_path):
    _cases(net, pg_store, 6)
    result = run_crawl(pg_url, net, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = _one_run(pg_store)
    assert run.status == "finished" and run.checks_made == 6
    assert _workers(pg_store, run.id) == []
    assert os.environ.get("HOSTWATCH_QUEUE") is None


def _exited(pid: int) -> bool:
    """Gone, or a zombie nobody reaped yet (its parent, the coordinator, is dead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_killed_coordinator_leaves_no_worker_behind(pg_store, pg_url, net, tmp_path):
    """`crawl --workers 2` killed with SIGKILL (the OOM killer, kill -9): its
    local workers finish the batches in hand and exit instead of taking the
    run's batches and then waiting for new ones for ever."""
    _cases(net, pg_store, 120, delay=0.3)
    coordinator = subprocess.Popen(
        [sys.executable, "-m", "hostwatch", "--db", pg_url, "crawl", "--workers", "2"],
        env=crawl_env(net, tmp_path, **_slow_settings(pg_url, lease=30)), cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        workers: list[RunWorker] = []
        while time.monotonic() < deadline and not (
                len(workers) == 2 and all(w.checks >= 1 for w in workers)):
            time.sleep(0.2)
            workers = _workers_of_any_run(pg_store)
        assert len(workers) == 2, [w.name for w in workers]
        pids = [w.pid for w in workers]
        coordinator.send_signal(signal.SIGKILL)
        coordinator.wait(timeout=10)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(_exited(pid) for pid in pids):
            time.sleep(0.2)
        running = [pid for pid in pids if not _exited(pid)]
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
    for pid in running:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert running == [], "local workers outlived their coordinator"
    # They stopped as on SIGTERM: the batches in hand finished, not the run.
    with pg_store.session() as session:
        stopped = list(session.scalars(select(RunWorker)))
    assert all(w.stopped_at is not None for w in stopped)
    assert sum(w.checks for w in stopped) < 120


def test_the_run_after_a_killed_coordinator_checks_every_case(pg_store, pg_url, net, tmp_path):
    """A coordinator dies while an always-on worker (another machine) holds
    batches of its run; the next run's batches bring the same cases while
    the worker still checks them for the dead run. Each run gets its own
    check of each case: the next run finishes complete."""
    ids = _cases(net, pg_store, 30, delay=1.0)
    # Three batches of run 1 in hand, a place free for one of run 2 (the same
    # cases), two checks at a time: run 1's batches are still being checked.
    settings = {**_slow_settings(pg_url, lease=5), "HOSTWATCH_QUEUE_BATCH": "10",
                "HOSTWATCH_CONCURRENCY": "2", "HOSTWATCH_WORKER_JOBS": "4"}
    first = _start_coordinator(pg_url, net, tmp_path, **settings)
    worker = _start_worker(pg_url, net, tmp_path, **settings)
    try:
        _wait_until_it_stored(pg_store, worker, 2)  # batches of run 1 in its hands
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = subprocess.run(
            [sys.executable, "-m", "hostwatch", "--db", pg_url, "crawl", "--workers", "0"],
            env=crawl_env(net, tmp_path, **settings), cwd=tmp_path, capture_output=True,
            text=True, timeout=240, check=False)
    finally:
        for process in (first, worker):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        worker.communicate(timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    with pg_store.session() as session:
        runs = session.scalars(select(CrawlRun).order_by(CrawlRun.id)).all()
    assert [r.status for r in runs] == ["aborted", "finished"]
    per_case = _checks_per_case(pg_store, runs[1].id)
    assert set(per_case) == set(ids.values()) and set(per_case.values()) == {1}
    _chain_ok(pg_store)


def test_a_coordinator_that_cannot_reach_the_queue_says_so(pg_store, pg_url, net, tmp_path):
    _cases(net, pg_store, 3)
    result = run_crawl(pg_url, net, tmp_path, "--workers", "1",
                       HOSTWATCH_QUEUE="postgresql://postgres:s3cret@127.0.0.1:1/test")
    assert result.returncode == 1
    assert "postgresql://postgres:***@127.0.0.1:1/test" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr
    # Its run's line does not claim that nothing was due.
    assert "0 of 3 due cases checked" in result.stdout and "nothing due" not in result.stdout
