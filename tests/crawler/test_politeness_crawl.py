"""Politeness by address and hoster in a real crawl (#16 point 3): what the
servers of the local test internet see.

Each request is timed where it arrives, at the server: a `Timed` behaviour
notes when a request came in and answers it a fixed time later, so the
requests a server was working on at once can be counted afterwards."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from kernel.model import Verdict
from lab import Redirect, Serve, Status, marker_body
from lab.behaviours import Behaviour, Reply, Request, Slow
from lab.behaviours import Context as LabContext
from store import Check, Store
from tests.builders import add_case
from tests.crawler.conftest import add_cases, run_crawl

pytestmark = pytest.mark.slow

IMAGE = marker_body("polite-image")
BASE = {"HOSTWATCH_SOFT404_PROBE": "0", "HOSTWATCH_TIMEOUT": "10"}


class Timed(Behaviour):
    """Answer like ``then``, ``seconds`` after the request arrived; note the arrival."""

    def __init__(self, seconds: float, then: Behaviour | None = None) -> None:
        self.seconds = seconds
        self.then = then or Serve(IMAGE)
        self.arrivals: list[float] = []
        self._lock = threading.Lock()

    def reply(self, request: Request, context: LabContext) -> Reply:
        with self._lock:
            self.arrivals.append(time.monotonic())
        return Slow(self.seconds, self.then).reply(request, context)


def most_at_once(*timed: Timed) -> int:
    """The most requests the servers of ``timed`` were answering at one moment."""
    events = sorted([(t, 1) for b in timed for t in b.arrivals]
                    + [(t + b.seconds, -1) for b in timed for t in b.arrivals])
    at_once = best = 0
    for _when, step in events:  # an end sorts before a start at the same instant
        at_once += step
        best = max(best, at_once)
    return best


def arrivals(*timed: Timed) -> list[float]:
    return sorted(t for b in timed for t in b.arrivals)


def add_attributed(store: Store, urls: list[str], asn: int, prefix: str) -> None:
    """Cases checked and attributed before, with network AS``asn`` as hoster of record."""
    long_ago = datetime.now(UTC) - timedelta(days=2)
    with store.transaction() as session:
        for number, url in enumerate(urls):
            add_case(session, f"{prefix}{number}", long_ago - timedelta(hours=1),
                     [(long_ago, Verdict.ONLINE)], url=url, host=urlsplit(url).hostname,
                     attribution={"asn": asn, "jurisdiction": "unknown"})


def checks_per_case(store: Store) -> dict[int, int]:
    with store.session() as session:
        return dict(session.execute(select(Check.case_id, func.count())
                                    .where(Check.run_id.is_not(None))
                                    .group_by(Check.case_id)).all())


def crawl(store_url: str, net, tmp_path, **settings: str) -> str:
    result = run_crawl(store_url, net, tmp_path, **(BASE | settings))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def test_one_address_and_one_hoster_each_share_one_limit(sqlite_url, net, tmp_path):
    store = Store(sqlite_url)
    store.upgrade()
    # Eight names on one address.
    shared = net.add_host("shared.test")
    on_shared = Timed(0.3)
    shared.default(on_shared)
    names = [f"n{number}.test" for number in range(8)]
    for name in names:
        net.add_a(name, shared.ip)
    shared_urls = [f"http://{name}:{net.port}/{j}.jpg" for name in names for j in range(3)]
    # Redirected there from another address: each hop counts on its own address.
    jump = net.add_host("jump.test")
    jump.default(Redirect(f"http://n0.test:{net.port}/landed.jpg"))
    jump_urls = [jump.url(f"/{j}.jpg") for j in range(6)]
    # One hoster (AS64501) on four addresses.
    hoster_hosts = [net.add_host(f"h{number}.test") for number in range(4)]
    on_hoster = [Timed(0.3) for _ in hoster_hosts]
    for host, timed in zip(hoster_hosts, on_hoster, strict=True):
        host.default(timed)
    hoster_urls = [host.url(f"/{j}.jpg") for host in hoster_hosts for j in range(4)]
    assert len({host.ip for host in hoster_hosts}) == 4
    add_cases(store, shared_urls + jump_urls)
    add_attributed(store, hoster_urls, 64501, "h")

    crawl(sqlite_url, net, tmp_path, HOSTWATCH_CONCURRENCY="64",
          HOSTWATCH_CONCURRENCY_PER_IP="3", HOSTWATCH_CONCURRENCY_PER_HOSTER="3")

    assert len(on_shared.arrivals) == len(shared_urls) + len(jump_urls)
    assert 2 <= most_at_once(on_shared) <= 3  # 8 names x 3 without it
    assert 2 <= most_at_once(*on_hoster) <= 3  # 4 addresses x 3 without it
    per_case = checks_per_case(store)
    assert len(per_case) == len(shared_urls) + len(jump_urls) + len(hoster_urls)
    assert set(per_case.values()) == {1}


def test_a_failing_hoster_is_backed_off_while_another_goes_on(sqlite_url, net, tmp_path):
    store = Store(sqlite_url)
    store.upgrade()
    failing_hosts = [net.add_host(f"busy{number}.test") for number in range(2)]
    on_failing = [Timed(0.05, Status(503)) for _ in failing_hosts]
    for host, timed in zip(failing_hosts, on_failing, strict=True):
        host.default(timed)
    failing_urls = [host.url(f"/{j}.jpg") for host in failing_hosts for j in range(8)]
    fine = net.add_host("fine.test")
    on_fine = Timed(0.1)
    fine.default(on_fine)
    fine_urls = [fine.url(f"/{j}.jpg") for j in range(30)]
    add_attributed(store, failing_urls, 64502, "busy")
    add_attributed(store, fine_urls, 64503, "fine")

    stderr = crawl(sqlite_url, net, tmp_path, HOSTWATCH_CONCURRENCY="64",
                   HOSTWATCH_CONCURRENCY_PER_IP="4", HOSTWATCH_CONCURRENCY_PER_HOSTER="4",
                   HOSTWATCH_BACKOFF_MAX_DELAY="0.4", HOSTWATCH_BACKOFF_MIN_CONCURRENCY="1")

    failing = arrivals(*on_failing)
    assert len(failing) == len(failing_urls)  # every one still tried
    assert most_at_once(*on_failing) >= 2  # at first, at full speed
    # Then slower: the pause doubles with each failure up to
    # HOSTWATCH_BACKOFF_MAX_DELAY, and the late requests come that far apart
    # (answered in 0.05 s at four at once, all sixteen would take 0.2 s).
    late_gaps = [b - a for a, b in zip(failing[-4:], failing[-3:], strict=False)]
    assert min(late_gaps) >= 0.3, late_gaps
    assert stderr.count("backing off hoster AS64502") == 1
    assert "AS64503" not in stderr
    # The other hoster's checks went on at full speed meanwhile.
    ok = arrivals(on_fine)
    assert most_at_once(on_fine) == 4
    assert ok[-1] - ok[0] < 1.5
    assert ok[-1] < failing[-1] - 1
    per_case = checks_per_case(store)
    assert len(per_case) == len(failing_urls) + len(fine_urls)
    assert set(per_case.values()) == {1}


def test_a_slow_hosters_cases_do_not_hold_up_another_hosters(sqlite_url, net, tmp_path):
    store = Store(sqlite_url)
    store.upgrade()
    slow = net.add_host("slow.test")
    on_slow = Timed(0.8)
    slow.default(on_slow)
    slow_urls = [slow.url(f"/{j}.jpg") for j in range(16)]
    fast_hosts = [net.add_host(f"fast{number}.test") for number in range(3)]
    on_fast = [Timed(0.02) for _ in fast_hosts]
    for host, timed in zip(fast_hosts, on_fast, strict=True):
        host.default(timed)
    fast_urls = [host.url(f"/{j}.jpg") for host in fast_hosts for j in range(8)]
    # The slow hoster's cases come first, and fill the first two feed batches.
    add_attributed(store, slow_urls, 64504, "slow")
    add_cases(store, fast_urls)

    crawl(sqlite_url, net, tmp_path, HOSTWATCH_CONCURRENCY="4", HOSTWATCH_FEED_BATCH="8",
          HOSTWATCH_CONCURRENCY_PER_IP="8", HOSTWATCH_CONCURRENCY_PER_HOSTER="2")

    slow_times, fast_times = arrivals(on_slow), arrivals(*on_fast)
    assert len(slow_times) == len(slow_urls) and len(fast_times) == len(fast_urls)
    assert most_at_once(on_slow) == 2
    # 16 at 0.8 s, two at a time: 6.4 s. The fast ones were all done within
    # the first two seconds, not queued behind them (global limit 4).
    assert slow_times[-1] - slow_times[0] > 5
    assert fast_times[-1] - slow_times[0] < 2.0
    per_case = checks_per_case(store)
    assert len(per_case) == len(slow_urls) + len(fast_urls)
    assert set(per_case.values()) == {1}
