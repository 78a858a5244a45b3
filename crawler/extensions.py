"""Crawler extension: the progress line."""

from __future__ import annotations

from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from kernel.progress import ProgressLine


class Progress:
    """'checked N of M' on stderr (HOSTWATCH_PROGRESS): rewritten in place on
    a terminal, a plain line every HOSTWATCH_PROGRESS_INTERVAL seconds (5)
    elsewhere (kernel.progress)."""

    def __init__(self, crawler: Crawler, interval: float | None) -> None:
        self.crawler = crawler
        self.interval = interval
        self.line: ProgressLine | None = None
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Progress:
        if not crawler.settings.getbool("HOSTWATCH_PROGRESS", True):
            raise NotConfigured
        interval = crawler.settings.get("HOSTWATCH_PROGRESS_INTERVAL")
        ext = cls(crawler, None if interval is None else float(interval))
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def opened(self, spider: Any) -> None:
        self.line = ProgressLine(interval=self.interval)
        self.loop = task.LoopingCall(self.report, spider)
        self.loop.start(self.line.interval, now=False)

    def report(self, spider: Any) -> None:
        if self.line is None:
            return
        done = getattr(spider, "checks_done", 0)
        total = getattr(spider, "cases_due", 0)
        rate = done / self.line.elapsed()
        left = max(total - done, 0)
        eta = f", about {left / rate:.0f} s left" if rate > 0 and left else ""
        self.line.update(f"hostwatch: checked {done} of {total} due cases ({rate:.0f}/s{eta})",
                         force=True)

    def closed(self, spider: Any) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        if self.line is not None:
            self.line.close()  # the run's outcome follows on a line of its own
