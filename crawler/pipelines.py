"""The store pipeline: checks are written in batches, each batch one transaction.

Writing happens in a separate process (store/writer.py), one batch after the
other, so the crawl goes on fetching on its own core; a worker thread hands
each batch over and waits for the answer. A write that fails stops the crawl:
continuing would only pile up checks that cannot be kept.
"""

from __future__ import annotations

import logging
import threading

from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import defer, task, threads
from twisted.python.failure import Failure

from crawler.settings import config_of
from kernel.config import Config
from kernel.errors import StoreError
from store import Store
from store.checks import NewCheck
from store.writer import WriterProcess, WriterSetup

logger = logging.getLogger(__name__)


class StorePipeline:
    """Buffers checks (handed over by the recheck spider through `add`, or as
    NewCheck items); writes every HOSTWATCH_WRITE_BATCH checks and at least
    every two seconds, so a crash loses at most the unwritten tail."""

    FLUSH_SECONDS = 2.0

    def __init__(self, crawler: Crawler, config: Config) -> None:
        self.crawler = crawler
        self.config = config
        self.rules = config.debounce()
        self.buffer: list[NewCheck] = []
        self.written = 0
        self.store: Store | None = None
        self.writer: WriterProcess | None = None
        self.timer: task.LoopingCall | None = None
        self._writes: defer.Deferred[None] = defer.succeed(None)  # the chain of writes
        self.error: Failure | None = None
        self._starting = threading.Lock()
        self.closed = False  # close_spider has run: no writer is started any more

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return cls(crawler, config_of(crawler.settings))

    def open_spider(self) -> None:
        spider = self.crawler.spider
        self.store = getattr(spider, "store", None) or Store(self.config.db)
        if spider is not None and hasattr(spider, "check_sink"):
            # The recheck spider hands its checks here directly, not as
            # Scrapy items (RecheckSpider._out): the same buffer, less CPU.
            spider.check_sink = self.add
        if spider is not None and hasattr(spider, "writer_opener"):
            spider.writer_opener = self.open_writer
        self.timer = task.LoopingCall(self.flush)
        self.timer.start(self.FLUSH_SECONDS, now=False)

    def process_item(self, item: object) -> object:
        if isinstance(item, NewCheck):
            self.add(item)
        return item

    def add(self, check: NewCheck) -> None:
        """Buffer ``check``; the buffer is written when full (or by the timer)."""
        self.buffer.append(check)
        if len(self.buffer) >= self.config.write_batch:
            self.flush()

    def flush(self) -> None:
        """Queue the buffered checks for writing, after the writes before them."""
        if not self.buffer or self.store is None or self.error is not None:
            return
        batch, self.buffer = self.buffer, []
        self._writes.addCallback(lambda _: threads.deferToThread(self._write, batch))
        self._writes.addCallback(lambda _: self._stored(batch))
        self._writes.addErrback(self._failed)

    def _stored(self, batch: list[NewCheck]) -> None:
        """Tell the spider (a worker of a shared run waits for its batches'
        checks to be committed: crawler.shared_run)."""
        stored = getattr(self.crawler.spider, "stored", None)
        if stored is not None:
            stored(batch)

    def open_writer(self) -> None:
        """Start the writer process and wait until it is ready (blocking: call
        it from a worker thread). The recheck spider calls it once it holds
        the run lock, before the run's clock starts (`writer_opener`);
        otherwise the first batch does."""
        assert self.store is not None
        with self._starting:  # the spider's thread and a write's thread
            if self.writer is not None or self.closed:
                return
            self.writer = self._start_writer(self.store)
        if self.closed:  # the crawl closed while it started: close_spider may have missed it
            self.writer.close()

    def _start_writer(self, store: Store) -> WriterProcess:
        # The writer shares the run lock's file (SQLite stores), so the lock
        # lasts as long as the writer, even when this process dies first.
        lock = getattr(self.crawler.spider, "lock", None)
        fd = getattr(lock, "fd", None)
        # A worker of a shared run stores each case once per run.
        once = getattr(self.crawler.spider, "worker", None) is not None
        return WriterProcess(WriterSetup(store.url, self.rules, once),
                             pass_fds=(fd,) if fd is not None else ())

    def _write(self, batch: list[NewCheck]) -> None:
        """In a worker thread: hand the batch to the writer process."""
        self.open_writer()
        if self.writer is None:
            raise StoreError("the store pipeline is closed; checks not written")
        self.written += self.writer.write(batch)

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
        self.closed = True  # a writer still starting closes itself (open_writer)
        if self.writer is not None:
            await maybe_deferred_to_future(threads.deferToThread(self.writer.close))
        self.crawler.stats.set_value("hostwatch/checks_written", self.written)
        logger.info("hostwatch: %d checks written", self.written)
