"""The store pipeline: checks are written in batches, each batch one transaction."""

from __future__ import annotations

import logging

from scrapy.crawler import Crawler
from twisted.internet import task

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
        if not self.buffer or self.store is None:
            return
        batch, self.buffer = self.buffer, []
        with self.store.transaction() as session:
            append_checks(session, batch, self.rules)
        self.written += len(batch)

    def close_spider(self) -> None:
        if self.timer is not None and self.timer.running:
            self.timer.stop()
        self.flush()
        logger.info("hostwatch: %d checks written", self.written)
