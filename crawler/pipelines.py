"""The store pipeline: checks are written in batches, each batch one transaction.

Writing happens in a worker thread, one batch after the other, so the reactor
goes on fetching while SQLite or PostgreSQL works (their drivers release the
GIL). A write that fails stops the crawl: continuing would only pile up
checks that cannot be kept.
"""

from __future__ import annotations

import logging

from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import defer, task, threads
from twisted.python.failure import Failure

from hostwatch.config import Config
from store import Store
from store.checks import NewCheck, append_checks
from store.state import Debounce

logger = logging.getLogger(__name__)


class StorePipeline:
    """Buffers NewCheck items; writes every HOSTWATCH_WRITE_BATCH items and at
    least every two seconds, so a crash loses at most the unwritten tail."""

    FLUSH_SECONDS = 2.0

    def __init__(self, crawler: Crawler, config: Config) -> None:
        self.crawler = crawler
        self.config = config
        self.rules = Debounce(config.removal_confirmations, config.removal_min_hours,
                              config.transient_days)
        self.buffer: list[NewCheck] = []
        self.written = 0
        self.store: Store | None = None
        self.timer: task.LoopingCall | None = None
        self._writes: defer.Deferred[None] = defer.succeed(None)  # the chain of writes
        self.error: Failure | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return cls(crawler, Config.from_env())

    def open_spider(self) -> None:
        self.store = getattr(self.crawler.spider, "store", None) or Store(self.config.db)
        self.timer = task.LoopingCall(self.flush)
        self.timer.start(self.FLUSH_SECONDS, now=False)

    def process_item(self, item: object) -> object:
        if isinstance(item, NewCheck):
            self.buffer.append(item)
            if len(self.buffer) >= self.config.write_batch:
                self.flush()
        return item

    def flush(self) -> None:
        """Queue the buffered checks for writing, after the writes before them."""
        if not self.buffer or self.store is None or self.error is not None:
            return
        batch, self.buffer = self.buffer, []
        self._writes.addCallback(lambda _: threads.deferToThread(self._write, batch))
        self._writes.addErrback(self._failed)

    def _write(self, batch: list[NewCheck]) -> None:
        assert self.store is not None
        with self.store.transaction() as session:
            append_checks(session, batch, self.rules)
        self.written += len(batch)

    def _failed(self, failure: Failure) -> None:
        if self.error is None:
            self.error = failure
            logger.error("hostwatch: writing checks failed, stopping the crawl: %s",
                         failure.getErrorMessage())
            self.crawler.stats.set_value("hostwatch/store_error", failure.getErrorMessage())
            engine = self.crawler.engine
            if engine is not None:
                deferred_from_coro(engine.close_spider_async(reason="store_error"))

    async def close_spider(self) -> None:
        if self.timer is not None and self.timer.running:
            self.timer.stop()
        self.flush()
        await maybe_deferred_to_future(self._writes)
        self.crawler.stats.set_value("hostwatch/checks_written", self.written)
        logger.info("hostwatch: %d checks written", self.written)
