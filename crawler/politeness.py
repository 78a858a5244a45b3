"""Politeness by address and hoster (#16): how many requests go to one
address and to one hoster at once, and backing off from one that fails.

A *target* is an address (the one a request's host resolved to, whatever the
host name: many names on one address share its limit) or a hoster (the
hoster of record of the case a request checks, ``META_HOSTER``; a case never
attributed has none and is limited per address only). A request holds a
`Lease` on its targets while it is in the downloader: from the moment the
scheduler hands it out until it leaves the download handler.

Requests for a target that is full, or in its back-off pause, wait in the
scheduler (`PoliteQueue`, Scrapy's SCHEDULER_PRIORITY_QUEUE), not in the
downloader: Scrapy counts every request in the downloader toward
CONCURRENT_REQUESTS, so a request parked there behind a slow hoster would
keep another hoster's check from starting. The queue keeps one lane per host
name and hoster and hands out the next request of a lane whose targets all
have room, lanes taking turns; a blocked lane is parked on the target that
blocks it and woken when that target has room again.

A host's address is only known once the downloader middleware has resolved
it (crawler.middlewares): the first requests of a host are handed out on
their hoster's room alone; the middleware then learns the address
(`Politeness.admit`) and sends a request whose address is full back to the
scheduler, where it waits without counting toward the global limit. The
request of a redirect is scheduled again and passes both checks for its own
host; it stays on the hoster of its case.

Back-off (AIMD): after ``BACKOFF_AFTER`` load failures in a row on a target
(a time-out, a refused or reset connection, HTTP 429/502/503/504), its limit
is halved and a pause between two request starts doubled (from an eighth of
HOSTWATCH_BACKOFF_MAX_DELAY), at most once per round of requests; each
success adds one request to the limit and halves the pause. Both are
bounded: never fewer than HOSTWATCH_BACKOFF_MIN_CONCURRENCY requests in
flight, never a longer pause than HOSTWATCH_BACKOFF_MAX_DELAY, so a dead
hoster's cases are all still tried in the night and get their error
verdicts. The first back-off of each target is logged once, as a warning,
naming the target (an address or a hoster key) and hostwatch's name for the
failure, never text the server sent.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy import Request, signals
from scrapy.http import Response
from scrapy.utils.asyncio import call_later
from scrapy.utils.httpobj import urlparse_cached

from crawler.errors import error_kind
from crawler.settings import config_of
from crawler.verdict import ErrorKind

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

    from kernel.config import Config

logger = logging.getLogger(__name__)

# Request.meta key: the hoster key of the case a request checks (store.runs.DueCase.hoster).
META_HOSTER = "hostwatch_hoster"
# Request.meta key: the request's `Lease` while it is in the downloader.
META_LEASE = "hostwatch_lease"

# Failures that say a server is overloaded or refusing us.
LOAD_ERRORS = frozenset({ErrorKind.TIMEOUT, ErrorKind.REFUSED, ErrorKind.CONNECTION_LOST})
LOAD_STATUSES = frozenset({429, 502, 503, 504})
# Load failures in a row (no success between) before a target backs off: one
# hanging URL on a healthy host is not a failing host.
BACKOFF_AFTER = 3
ADDRESS = "address"
HOSTER = "hoster"


@dataclass(eq=False, slots=True)
class Target:
    """An address or a hoster, with its limit and back-off state."""

    kind: str  # ADDRESS or HOSTER
    key: str
    cap: int  # the configured limit
    floor: int  # back-off never goes below this
    limit: float = 0.0  # the current limit: cap, less while backed off
    active: int = 0
    pause: float = 0.0  # seconds between two request starts while backed off
    next_start: float = 0.0
    failures: int = 0  # load failures in a row
    last_decrease: float = float("-inf")
    warned: bool = False
    timer: bool = False
    waiting: deque[_Lane] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.limit = float(self.cap)

    def room(self, now: float) -> int:
        """Requests that may start now."""
        if now < self.next_start:
            return 0
        return max(0, int(self.limit) - self.active)

    @property
    def backed_off(self) -> bool:
        return self.limit < self.cap or self.pause > 0

    @property
    def idle(self) -> bool:
        """Nothing to remember: forgotten, and made anew when needed (a night
        sees many addresses once). One that backed off stays, to warn once."""
        return (self.active == 0 and not self.waiting and not self.timer
                and self.failures == 0 and not self.warned and not self.backed_off)


@dataclass(eq=False, slots=True)
class Lease:
    """The targets a request counts toward while it is in the downloader."""

    targets: list[Target]
    started: float
    released: bool = False
    judged: bool = False


class Politeness:
    """The targets of a crawl, their leases and their back-off (one per crawler:
    `Politeness.of`). ``clock`` and ``later`` are injectable for tests."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.monotonic,
                 later: Callable[..., Any] = call_later,
                 wake: Callable[[], None] = lambda: None,
                 stats: Any = None) -> None:
        self.per_ip = config.concurrency_per_ip
        self.per_hoster = config.concurrency_per_hoster
        self.max_pause = config.backoff_max_delay
        self.min_concurrency = config.backoff_min_concurrency
        self.clock = clock
        self.later = later
        self.wake = wake
        self.stats = stats
        self.targets: dict[tuple[str, str], Target] = {}
        self.addresses: dict[str, str] = {}  # host name -> the address it is counted on
        self.unpark: Callable[[_Lane], None] = lambda lane: None  # PoliteQueue's
        self.held = 0  # requests waiting in parked lanes (PoliteQueue's count)

    _of: weakref.WeakKeyDictionary[Crawler, Politeness] = weakref.WeakKeyDictionary()

    @classmethod
    def of(cls, crawler: Crawler) -> Politeness:
        """The crawl's one Politeness, shared by the queue and the middleware."""
        try:
            return cls._of[crawler]
        except KeyError:
            pass
        politeness = cls(config_of(crawler.settings), wake=lambda: _wake(crawler),
                         stats=crawler.stats)
        crawler.signals.connect(politeness._left_downloader, signal=signals.request_left_downloader)
        crawler.signals.connect(politeness._downloaded, signal=signals.response_downloaded)
        cls._of[crawler] = politeness
        return politeness

    # -- targets --------------------------------------------------------------

    def target(self, kind: str, key: str) -> Target:
        try:
            return self.targets[(kind, key)]
        except KeyError:
            cap = self.per_ip if kind == ADDRESS else self.per_hoster
            target = self.targets[(kind, key)] = Target(kind, key, cap,
                                                        min(cap, self.min_concurrency))
            return target

    def targets_for(self, host: str, hoster: str | None) -> list[Target]:
        """A request's targets as far as they are known before it is resolved."""
        found = []
        if hoster is not None:
            found.append(self.target(HOSTER, hoster))
        address = self.addresses.get(host)
        if address is not None:
            found.append(self.target(ADDRESS, address))
        return found

    def blocker(self, targets: Iterable[Target], now: float) -> Target | None:
        for target in targets:
            if target.room(now) == 0:
                return target
        return None

    def acquire(self, targets: list[Target], now: float) -> Lease:
        for target in targets:
            self._start(target, now)
        return Lease(list(targets), now)

    def _start(self, target: Target, now: float) -> None:
        target.active += 1
        if target.pause:
            target.next_start = now + target.pause

    def release(self, lease: Lease | None) -> None:
        """The request left the downloader (or never reached it): idempotent."""
        if lease is None or lease.released:
            return
        lease.released = True
        for target in lease.targets:
            self._drop(target)

    def _drop(self, target: Target) -> None:
        target.active -= 1
        self._wake_lanes(target)
        if target.idle and self.targets.get((target.kind, target.key)) is target:
            del self.targets[(target.kind, target.key)]

    # -- the middleware's side ------------------------------------------------

    def admit(self, request: Request, host: str, addresses: list[str]) -> Request | None:
        """Count ``request`` on the address it connects to (resolved now): None
        lets it through; the request itself goes back to the scheduler when
        its address is full, to wait there."""
        address = self.addresses.get(host)
        if address not in addresses:
            # Kept while DNS still names it: a rotating answer does not move
            # a host from one address's count to another's at each lookup.
            address = self.addresses[host] = addresses[0]
            if len(self.addresses) > 1_000_000:
                self.addresses.clear()
        # Scrapy's downloader slot of the address (its concurrency is
        # HOSTWATCH_CONCURRENCY_PER_IP too): never full, the lease is stricter.
        request.meta["download_slot"] = address
        lease: Lease | None = request.meta.get(META_LEASE)
        now = self.clock()
        if lease is None or lease.released:  # not handed out by PoliteQueue
            lease = request.meta[META_LEASE] = Lease([], now)
        target = self.target(ADDRESS, address)
        if target in lease.targets:
            return None
        for other in [t for t in lease.targets if t.kind == ADDRESS]:
            # Counted on an address the host no longer resolves to.
            lease.targets.remove(other)
            self._drop(other)
        if target.room(now) == 0:
            self.release(lease)
            if self.stats is not None:
                self.stats.inc_value("hostwatch/politeness/sent_back")
            return request
        self._start(target, now)
        lease.targets.append(target)
        return None

    def failed(self, request: Request, exc: BaseException) -> None:
        """A request failed in the downloader: a load failure counts against
        its targets, any other failure (DNS, guard, TLS...) is no signal."""
        kind, _detail = error_kind(exc)
        lease = request.meta.get(META_LEASE)
        if kind in LOAD_ERRORS and lease is not None:
            self._judge(lease, kind.value)

    # -- outcomes ---------------------------------------------------------------

    def _left_downloader(self, request: Request, **_: Any) -> None:
        self.release(request.meta.get(META_LEASE))

    def _downloaded(self, response: Response, request: Request, **_: Any) -> None:
        lease = request.meta.get(META_LEASE)
        if lease is not None:
            status = response.status
            self._judge(lease, f"HTTP {status}" if status in LOAD_STATUSES else None)

    def _judge(self, lease: Lease, failure: str | None) -> None:
        """One outcome per request: ``failure`` names a load failure, None is a success."""
        if lease.judged:
            return
        lease.judged = True
        now = self.clock()
        for held in lease.targets:
            # The one now (a target idle since the request left was forgotten).
            target = self.target(held.kind, held.key)
            if failure is None:
                self._succeeded(target)
            else:
                self._failed(target, failure, lease.started, now)

    def _succeeded(self, target: Target) -> None:
        target.failures = 0
        if not target.backed_off:
            return
        target.limit = min(float(target.cap), target.limit + 1)
        target.pause = target.pause / 2 if target.pause / 2 >= self.max_pause / 8 else 0.0
        if target.pause == 0:
            target.next_start = 0.0
        self._wake_lanes(target)

    def _failed(self, target: Target, failure: str, started: float, now: float) -> None:
        target.failures += 1
        # Once per round: the requests in flight when it backed off fail alike.
        if target.failures < BACKOFF_AFTER or started < target.last_decrease:
            return
        target.last_decrease = now
        target.limit = max(float(target.floor), target.limit / 2)
        target.pause = min(self.max_pause, target.pause * 2 or self.max_pause / 8)
        target.next_start = max(target.next_start, now + target.pause)
        if not target.warned:
            target.warned = True
            if self.stats is not None:
                self.stats.inc_value("hostwatch/politeness/backed_off")
            logger.warning("backing off %s %s: %d failures in a row (%s); now %d requests at "
                           "once at most, %.2f s between two", target.kind, target.key,
                           target.failures, failure, int(target.limit), target.pause)

    # -- waking parked lanes ---------------------------------------------------

    def park(self, lane: _Lane, target: Target, now: float) -> None:
        target.waiting.append(lane)
        if now < target.next_start and not target.timer:
            target.timer = True
            self.later(target.next_start - now, self._pause_over, target)

    def _pause_over(self, target: Target) -> None:
        target.timer = False
        if self._wake_lanes(target):
            self.wake()

    def _wake_lanes(self, target: Target, most: int | None = None) -> int:
        """Hand back to the queue as many parked lanes as ``target`` has room for."""
        if not target.waiting:
            return 0
        now = self.clock()
        room = target.room(now)
        if room == 0 and now < target.next_start and not target.timer:
            target.timer = True
            self.later(target.next_start - now, self._pause_over, target)
        count = min(room, len(target.waiting), most if most is not None else room)
        for _ in range(count):
            lane = target.waiting.popleft()
            lane.woken_by = target
            self.unpark(lane)
        return count


def _wake(crawler: Crawler) -> None:
    """Ask the engine for the next requests now, not at its next heartbeat (5 s):
    a pause ended. Scrapy has no public call for this."""
    slot = getattr(crawler.engine, "_slot", None)
    if slot is not None:
        slot.nextcall.schedule()


@dataclass(eq=False, slots=True)
class _Lane:
    """Requests of one priority, host name and hoster, in order."""

    priority: int
    host: str
    hoster: str | None
    requests: deque[Request] = field(default_factory=deque)
    parked: bool = False
    woken_by: Target | None = None


class PoliteQueue:
    """Scrapy's SCHEDULER_PRIORITY_QUEUE: hands out only requests whose
    targets have room (module docstring). Memory only (no JOBDIR)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler, downstream_queue_cls: Any, key: str,
                     startprios: Any = None, *, start_queue_cls: Any = None) -> Self:
        if key:
            raise ValueError("crawler.politeness.PoliteQueue keeps requests in memory only: "
                             "JOBDIR is not supported")
        return cls(Politeness.of(crawler))

    def __init__(self, politeness: Politeness) -> None:
        self.politeness = politeness
        politeness.unpark = self._unpark
        self._lanes: dict[tuple[int, str, str | None], _Lane] = {}
        self._ready: dict[int, deque[_Lane]] = {}  # priority (lower first) -> lanes
        self._size = 0

    def push(self, request: Request) -> None:
        priority = -request.priority
        host = urlparse_cached(request).hostname or ""
        hoster = request.meta.get(META_HOSTER)
        key = (priority, host, hoster)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(priority, host, hoster)
            self._ready.setdefault(priority, deque()).append(lane)
        elif lane.parked:
            self.politeness.held += 1
        lane.requests.append(request)
        self._size += 1

    def pop(self) -> Request | None:
        politeness = self.politeness
        now = politeness.clock()
        for priority in sorted(self._ready):
            ready = self._ready[priority]
            while ready:
                lane = ready.popleft()
                targets = politeness.targets_for(lane.host, lane.hoster)
                blocker = politeness.blocker(targets, now)
                if blocker is not None:
                    self._park(lane, blocker, now)
                    continue
                lane.woken_by = None
                request = lane.requests.popleft()
                self._size -= 1
                if lane.requests:
                    ready.append(lane)  # lanes take turns
                else:
                    del self._lanes[(lane.priority, lane.host, lane.hoster)]
                request.meta[META_LEASE] = politeness.acquire(targets, now)
                return request
            del self._ready[priority]
        return None

    def _park(self, lane: _Lane, blocker: Target, now: float) -> None:
        lane.parked = True
        self.politeness.held += len(lane.requests)
        woken_by, lane.woken_by = lane.woken_by, None
        self.politeness.park(lane, blocker, now)
        if woken_by is not None and woken_by is not blocker:
            # Woken for room it did not take: the next lane there may take it.
            self.politeness._wake_lanes(woken_by, most=1)

    def _unpark(self, lane: _Lane) -> None:
        lane.parked = False
        self.politeness.held -= len(lane.requests)
        self._ready.setdefault(lane.priority, deque()).append(lane)

    def peek(self) -> Request | None:
        raise NotImplementedError("PoliteQueue cannot say which request is next without "
                                  "handing it out")

    def close(self) -> dict[str, list[int]]:
        self._lanes.clear()
        self._ready.clear()
        return {}

    def __len__(self) -> int:
        return self._size
