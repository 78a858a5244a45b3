"""Run the recheck spider in this process (the CLI's `crawl` and the library API call this)."""

from __future__ import annotations

from scrapy.crawler import CrawlerProcess

from crawler.settings import crawl_settings
from kernel.config import Config
from kernel.schedule import DUE_NIGHTLY


def run_crawl(config: Config, limit: int | None = None,
              due: str = DUE_NIGHTLY, browser: bool = False, *,
              workers: int | None = None, worker: bool = False) -> dict[str, object]:
    """Run the recheck spider in this process; returns Scrapy's stats.

    ``config`` reaches the spider's components in the crawler's settings
    (crawler.settings: `crawl_settings`, `config_of`); the process
    environment is neither read nor changed for it.
    ``due``: ``nightly`` (every due case) or ``deadlines`` (only the pending
    deadline checks, store.schedule). ``browser``: every case in the browser.
    ``workers``: a run shared through the queue (HOSTWATCH_QUEUE), with so
    many local worker processes (crawler.shared_run); ``worker``: be a
    worker, taking batches from the queue until stopped.
    Scrapy's reactor cannot be restarted:
    call this once per process.
    """
    # Scrapy installs its root log handler (LOG_INSTALL_ROOT_HANDLER), at
    # the crawl's LOG_LEVEL from the start: its banner is an INFO record.
    process = CrawlerProcess(crawl_settings(config))
    crawler = process.create_crawler("recheck")
    role = "worker" if worker else "coordinator" if workers is not None else ""
    process.crawl(crawler, limit=limit, due=due, browser="1" if browser else "", role=role,
                  workers=workers or 0)
    process.start()
    return dict(crawler.stats.get_stats()) if crawler.stats else {}
