"""Scrapy's downloader, keeping its per-host limit under asyncio.

Scrapy 2.19's `Downloader._process_queue` hands each queued request of a slot
to a new asyncio task, and the request counts as transferring only once that
task first runs; the loop that checks the slot's free transfer places has
handed out every queued request by then. So a slot's limit
(CONCURRENT_REQUESTS_PER_DOMAIN, HOSTWATCH_CONCURRENCY_PER_HOST) is not kept:
on the latency farm (benchmarks/farm.py) 164 requests of one host were
transferring at once under a limit of 8. aiohttp's connection pool (its own
per-host limit) held them back, but a request's time-out runs while it waits
for a connection there, so on a host with a few hanging URLs the served URLs
queued behind them ended as ``timeout``.

`SlotLimitedDownloader` marks a request transferring when it is handed out,
so a request waits for its host in Scrapy's slot queue, outside its time-out.
It relies on Scrapy internals (``_process_queue``, ``_wait_for_download``,
``Slot``); tests/crawler/test_downloader.py pins the behaviour.
"""

from __future__ import annotations

from time import monotonic

from scrapy.core.downloader import Downloader, Slot
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import _schedule_coro


class SlotLimitedDownloader(Downloader):
    """See the module docstring."""

    def _process_queue(self, slot: Slot) -> None:
        # Scrapy's method, with one line added (marked).
        if slot.latercall:
            return  # a delayed call will process the queue
        now = monotonic()
        delay = slot.download_delay()
        if delay:
            penalty = delay - now + slot.lastseen
            if penalty > 0:
                slot.latercall = call_later(penalty, self._latercall, slot)
                return
        while slot.queue and slot.free_transfer_slots() > 0:
            slot.lastseen = now
            request, queue_dfd = slot.queue.popleft()
            slot.transferring.add(request)  # added: counts now, not when the task runs
            _schedule_coro(self._wait_for_download(slot, request, queue_dfd))
            if delay:
                self._process_queue(slot)
                break
