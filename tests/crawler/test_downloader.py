"""crawler/downloader.py: a host's limit holds, so its hanging URLs do not
make its other URLs time out (#16).

Scrapy 2.19 under asyncio hands every queued request of a host to the
download handler at once; the surplus waited in aiohttp's connection pool
with its time-out running, and URLs served in 0.2 s were recorded as
``timeout`` behind two that hung.
"""

from __future__ import annotations

from pathlib import Path

from lab import TestInternet
from lab.behaviours import Serve, Slow
from store import Store
from tests.crawler.conftest import add_cases, checks_by_url, run_crawl


def test_served_urls_behind_hanging_ones_are_not_timeouts(net: TestInternet,
                                                          tmp_path: Path) -> None:
    host = net.add_host("queue.test")
    for n in range(2):
        host.route(f"/hang/{n}", Slow(30))
    for n in range(12):
        host.route(f"/ok/{n}", Slow(0.2, Serve(b"<html>here</html>", content_type="text/html")))
    hanging = [host.url(f"/hang/{n}") for n in range(2)]
    served = [host.url(f"/ok/{n}") for n in range(12)]
    db_url = f"sqlite:///{tmp_path / 'hw.db'}"
    store = Store(db_url)
    store.upgrade()
    add_cases(store, [*hanging, *served])  # fed in this order: the hanging ones first
    done = run_crawl(db_url, net, tmp_path, HOSTWATCH_CONCURRENCY="64",
                     HOSTWATCH_CONCURRENCY_PER_HOST="2", HOSTWATCH_TIMEOUT="2",
                     HOSTWATCH_SOFT404_PROBE="0")
    assert done.returncode == 0, done.stderr[-2000:]
    verdicts = {url: [check.verdict for check in checks]
                for url, checks in checks_by_url(store).items()}
    store.dispose()
    assert {url: verdicts[url] for url in hanging} == {url: ["timeout"] for url in hanging}
    assert {url: verdicts[url] for url in served} == {url: ["online"] for url in served}
