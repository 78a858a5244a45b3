"""crawler.politeness without a crawl: the queue's lanes and the back-off rule,
on hand-built requests and a hand-turned clock."""

from __future__ import annotations

from typing import Any

import pytest
from scrapy import Request
from scrapy.http import Response

from crawler.errors import RefusedTarget
from crawler.politeness import (
    ADDRESS,
    HOSTER,
    META_HOSTER,
    META_LEASE,
    Politeness,
    PoliteQueue,
)
from crawler.verdict import ErrorKind
from kernel.config import Config


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, Any, tuple[Any, ...]]] = []

    def __call__(self) -> float:
        return self.now

    def later(self, delay: float, func: Any, *args: Any) -> None:
        self.timers.append((self.now + delay, func, args))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _when, func, args in due:
            func(*args)


def politeness(clock: Clock, **settings: Any) -> Politeness:
    values = {"concurrency_per_ip": 2, "concurrency_per_hoster": 3, "backoff_max_delay": 1.6,
              "backoff_min_concurrency": 1} | settings
    return Politeness(Config.from_env({}, **values), clock=clock, later=clock.later)


def request(url: str, hoster: str | None = None, priority: int = 0) -> Request:
    return Request(url, meta={META_HOSTER: hoster} if hoster else {}, priority=priority)


def drain(queue: PoliteQueue) -> list[Request]:
    out = []
    while (popped := queue.pop()) is not None:
        out.append(popped)
    return out


def resolve(polite: Politeness, popped: list[Request], address: str) -> list[Request]:
    """What the middleware does: admit each on ``address``; the ones sent back."""
    return [r for r in popped
            if polite.admit(r, r.url.split("/")[2], [address]) is not None]


def test_many_names_on_one_address_share_its_limit():
    clock = Clock()
    polite = politeness(clock)
    queue = PoliteQueue(polite)
    for name in ("a", "b", "c"):
        for number in range(3):
            queue.push(request(f"http://{name}.test/{number}"))
    first = drain(queue)
    # Before any name is resolved, nothing says they share an address...
    assert len(first) == 9
    sent_back = resolve(polite, first, "192.0.2.1")
    # ...but the address admits its limit only; the rest wait in the scheduler.
    assert len(first) - len(sent_back) == 2
    assert polite.target(ADDRESS, "192.0.2.1").active == 2
    for back in sent_back:
        queue.push(back)
    assert drain(queue) == []  # all three names are known now: the address is full
    assert len(queue) == 7 and polite.held == 7
    admitted = [r for r in first if r not in sent_back]
    polite.release(admitted[0].meta[META_LEASE])
    polite.release(admitted[0].meta[META_LEASE])  # idempotent
    again = drain(queue)
    assert len(again) == 1 and resolve(polite, again, "192.0.2.1") == []
    assert polite.target(ADDRESS, "192.0.2.1").active == 2


def test_a_hoster_cap_holds_across_its_addresses_and_others_go_on():
    clock = Clock()
    polite = politeness(clock, concurrency_per_ip=8)
    queue = PoliteQueue(polite)
    for number in range(10):
        queue.push(request(f"http://h{number}.test/x", hoster="AS64500"))
    for number in range(5):
        queue.push(request(f"http://other.test/{number}"))
    popped = drain(queue)
    hosters = [r for r in popped if r.meta.get(META_HOSTER) == "AS64500"]
    assert len(hosters) == 3  # the cap, over ten names and addresses
    assert len(popped) - len(hosters) == 5  # the other host is not held up by them
    assert polite.held == 7


def test_priorities_first_then_lanes_take_turns():
    clock = Clock()
    queue = PoliteQueue(politeness(clock, concurrency_per_ip=100))
    for number in range(3):
        queue.push(request(f"http://a.test/{number}"))
    queue.push(request("http://b.test/0"))
    queue.push(request("http://c.test/control", priority=20))
    order = [r.url for r in drain(queue)]
    assert order == ["http://c.test/control", "http://a.test/0", "http://b.test/0",
                     "http://a.test/1", "http://a.test/2"]


def fail(polite: Politeness, target_key: str, times: int, status: int = 503) -> None:
    """``times`` requests to ``target_key`` (an address) each answered with ``status``."""
    for _ in range(times):
        lease = polite.acquire([polite.target(ADDRESS, target_key)], polite.clock())
        req = Request("http://x.test/", meta={META_LEASE: lease})
        polite._downloaded(Response("http://x.test/", status=status, request=req), req)
        polite.release(lease)


def test_failures_back_off_boundedly_and_successes_recover(caplog):
    clock = Clock()
    polite = politeness(clock, concurrency_per_ip=16, backoff_min_concurrency=2)
    target = polite.target(ADDRESS, "192.0.2.7")
    fail(polite, "192.0.2.7", 2)
    assert (target.limit, target.pause) == (16, 0)  # two failures are not yet a pattern
    fail(polite, "192.0.2.7", 1)
    assert (target.limit, target.pause) == (8, 0.2)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage() for r in warnings] == [
        "backing off address 192.0.2.7: 3 failures in a row (HTTP 503); now 8 requests at "
        "once at most, 0.20 s between two"]
    for _ in range(20):
        clock.advance(0.01)  # each failure a new round
        fail(polite, "192.0.2.7", 1)
    assert (target.limit, target.pause) == (2, 1.6)  # the floor and the longest pause
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1  # once
    lease = polite.acquire([target], clock())
    assert target.next_start == clock() + 1.6
    req = Request("http://x.test/", meta={META_LEASE: lease})
    polite._downloaded(Response("http://x.test/", status=404, request=req), req)
    assert (target.limit, target.pause) == (3, 0.8)  # a success: one more, half the pause
    for _ in range(20):
        lease = polite.acquire([target], clock())
        req = Request("http://x.test/", meta={META_LEASE: lease})
        polite._downloaded(Response("http://x.test/", status=200, request=req), req)
    assert (target.limit, target.pause, target.backed_off) == (16, 0, False)


def test_a_round_of_failures_backs_off_once():
    clock = Clock()
    polite = politeness(clock, concurrency_per_ip=16)
    target = polite.target(ADDRESS, "192.0.2.8")
    leases = [polite.acquire([target], clock()) for _ in range(8)]
    clock.advance(1)
    for lease in leases:  # eight requests in flight together all time out
        polite._judge(lease, "timeout")
    assert target.limit == 8  # halved once, not eight times


def test_a_paused_target_wakes_its_lanes_when_the_pause_is_over():
    clock = Clock()
    polite = politeness(clock, concurrency_per_ip=8)
    woken: list[int] = []
    polite.wake = lambda: woken.append(1)
    queue = PoliteQueue(polite)
    target = polite.target(HOSTER, "AS64509")
    target.pause, target.limit = 0.5, 2
    for number in range(3):
        queue.push(request(f"http://slow.test/{number}", hoster="AS64509"))
    assert queue.pop() is not None  # starts the pause
    assert queue.pop() is None  # parked until the pause is over
    clock.advance(0.5)
    assert woken == [1]
    assert queue.pop() is not None


@pytest.mark.parametrize(("env", "expected"), [
    ({"HOSTWATCH_CONCURRENCY_PER_HOST": "5"}, 5),  # the earlier name still works
    ({"HOSTWATCH_CONCURRENCY_PER_IP": "6"}, 6),
    ({"HOSTWATCH_CONCURRENCY_PER_IP": "6", "HOSTWATCH_CONCURRENCY_PER_HOST": "6"}, 6),
    ({}, 8),
])
def test_per_ip_setting_and_its_earlier_name(env, expected):
    assert Config.from_env(env).concurrency_per_ip == expected


def test_per_ip_setting_and_its_earlier_name_must_agree():
    from kernel.errors import ConfigError

    with pytest.raises(ConfigError, match="HOSTWATCH_CONCURRENCY_PER_HOST.*earlier name"):
        Config.from_env({"HOSTWATCH_CONCURRENCY_PER_IP": "6",
                         "HOSTWATCH_CONCURRENCY_PER_HOST": "4"})


def test_failures_judged_after_the_request_left_still_count():
    """Scrapy ends a failed download's lease before the middleware hears of
    the failure: the (then idle, forgotten) target must still count it."""
    clock = Clock()
    polite = politeness(clock, concurrency_per_ip=8)
    for _ in range(3):
        clock.advance(0.01)
        lease = polite.acquire([polite.target(ADDRESS, "192.0.2.9")], clock())
        req = Request("http://x.test/", meta={META_LEASE: lease})
        polite.release(lease)
        polite.failed(req, TimeoutError("timed out"))
    target = polite.target(ADDRESS, "192.0.2.9")
    assert (target.failures, target.limit) == (3, 4)


def test_failures_that_say_nothing_of_load_do_not_back_off():
    clock = Clock()
    polite = politeness(clock, concurrency_per_ip=8)
    target = polite.target(ADDRESS, "192.0.2.10")
    for _ in range(5):
        lease = polite.acquire([target], clock())
        req = Request("http://x.test/", meta={META_LEASE: lease})
        polite.failed(req, RefusedTarget(ErrorKind.NXDOMAIN, "x.test: nxdomain"))
        polite._downloaded(Response("http://x.test/", status=500, request=req), req)
        polite.release(lease)
    assert (target.failures, target.limit, target.backed_off) == (0, 8, False)
