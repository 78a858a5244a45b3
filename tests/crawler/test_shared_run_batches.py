"""A worker's batches (crawler.shared_run.Worker): done once every case's
check is stored; a batch whose checks stop coming is given up and handed
back, and its next try checks the cases it did not get."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from crawler.shared_run import BatchAbandoned, Worker
from kernel.config import Config
from store import CrawlRun
from store.checks import NewCheck
from store.runs import DueCase
from tests.builders import add_case

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _worker(store, sqlite_url) -> tuple[Worker, list[int], int, list[int]]:
    with store.transaction() as session:
        ids = [add_case(session, f"B{n}", NOW, []).id for n in range(3)]
        run = CrawlRun(started_at=NOW, status="running", tool_version="test")
        session.add(run)
        session.flush()
        run_id = run.id
    crawled: list[int] = []

    def crawl(case: DueCase, run: int, browser: bool) -> None:
        crawled.append(case.id)

    config = Config.from_env({}, db=sqlite_url, queue="postgresql://127.0.0.1:1/unused")
    return Worker(config, store, crawl), ids, run_id, crawled


def _check(case_id: int, run_id: int) -> NewCheck:
    return NewCheck(case_id=case_id, checked_at=NOW, method="http", verdict="online",
                    url="https://x.test/", tool_version="test", run_id=run_id)


@pytest.fixture
def sqlite_store(sqlite_url):
    from store import Store

    store = Store(sqlite_url)
    store.upgrade()
    yield store
    store.dispose()


def test_a_batch_is_done_when_every_check_is_stored(sqlite_store, sqlite_url):
    worker, ids, run_id, crawled = _worker(sqlite_store, sqlite_url)

    async def run() -> int:
        batch = asyncio.ensure_future(worker.check_batch(run_id, ids, False))
        await asyncio.sleep(0.2)
        assert crawled == ids and not batch.done()
        worker.stored([_check(ids[0], run_id), _check(ids[1], run_id)])
        await asyncio.sleep(0.1)
        assert not batch.done()  # one case still unstored
        worker.stored([_check(ids[2], run_id)])
        return await asyncio.wait_for(batch, 5)

    assert asyncio.run(run()) == 3
    assert not worker.in_hand(run_id, ids[0])  # nothing of it left in hand


def test_a_batch_whose_checks_stop_coming_is_handed_back(sqlite_store, sqlite_url, monkeypatch):
    worker, ids, run_id, crawled = _worker(sqlite_store, sqlite_url)
    monkeypatch.setattr(Worker, "stall_seconds", property(lambda self: 0.5))

    async def run() -> None:
        batch = asyncio.ensure_future(worker.check_batch(run_id, ids, False))
        await asyncio.sleep(0.2)
        worker.stored([_check(ids[0], run_id)])  # progress: the clock starts again
        await asyncio.sleep(0.4)
        assert not batch.done()
        with pytest.raises(BatchAbandoned):
            await asyncio.wait_for(batch, 5)  # ids[1] and ids[2] never came
        crawled.clear()
        # Its next try (here, the same worker) checks the lost cases again.
        again = asyncio.ensure_future(worker.check_batch(run_id, ids, False))
        await asyncio.sleep(0.2)
        assert set(crawled) >= {ids[1], ids[2]}
        worker.stored([_check(case_id, run_id) for case_id in ids])
        await asyncio.wait_for(again, 5)

    asyncio.run(run())


def test_a_case_in_hand_for_two_runs_is_checked_for_each(sqlite_store, sqlite_url):
    """An always-on worker still has an aborted run's batch when the next
    run's batch brings the same cases: each run gets its own check, and the
    one run's check does not finish the other run's batch."""
    worker, ids, first_run, crawled = _worker(sqlite_store, sqlite_url)
    with sqlite_store.transaction() as session:
        run = CrawlRun(started_at=NOW, status="running", tool_version="test")
        session.add(run)
        session.flush()
        second_run = run.id
    runs_crawled: list[int | None] = []
    crawl = worker._crawl
    worker._crawl = lambda case, run, browser: (runs_crawled.append(case.run_id),
                                                crawl(case, run, browser))

    async def run() -> tuple[int, int]:
        first = asyncio.ensure_future(worker.check_batch(first_run, ids, False))
        await asyncio.sleep(0.2)
        second = asyncio.ensure_future(worker.check_batch(second_run, ids, False))
        await asyncio.sleep(0.2)
        assert sorted(crawled) == sorted(ids * 2)  # every case, once per run
        worker.stored([_check(case_id, first_run) for case_id in ids])
        done_first = await asyncio.wait_for(first, 5)
        await asyncio.sleep(0.1)
        assert not second.done()  # the first run's checks are not the second's
        worker.stored([_check(case_id, second_run) for case_id in ids])
        return done_first, await asyncio.wait_for(second, 5)

    assert asyncio.run(run()) == (3, 3)
    assert sorted(runs_crawled) == sorted([first_run] * 3 + [second_run] * 3)
