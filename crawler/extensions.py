"""Crawler extension: the progress display."""

from __future__ import annotations

import sys
import time
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from twisted.internet import task


class Progress:
    """Print 'checked N of M' to stderr every few seconds (HOSTWATCH_PROGRESS)."""

    def __init__(self, crawler: Crawler, interval: float) -> None:
        self.crawler = crawler
        self.interval = interval
        self.started = time.monotonic()
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Progress:
        if not crawler.settings.getbool("HOSTWATCH_PROGRESS", True):
            raise NotConfigured
        ext = cls(crawler, crawler.settings.getfloat("HOSTWATCH_PROGRESS_INTERVAL", 5.0))
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def opened(self, spider: Any) -> None:
        self.started = time.monotonic()
        self.loop = task.LoopingCall(self.report, spider)
        self.loop.start(self.interval, now=False)

    def report(self, spider: Any) -> None:
        done = getattr(spider, "checks_done", 0)
        total = getattr(spider, "cases_due", 0)
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = done / elapsed
        left = max(total - done, 0)
        eta = f", about {left / rate:.0f} s left" if rate > 0 and left else ""
        print(f"hostwatch: checked {done} of {total} due cases ({rate:.0f}/s{eta})",
              file=sys.stderr, flush=True)

    def closed(self, spider: Any) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
