"""Scrapy settings of the hostwatch crawler (scrapy.cfg: default = crawler.settings).

Values that users tune come from hostwatch's own settings (kernel/config.py):
the crawl's `Config` travels in the Scrapy setting HOSTWATCH_CONFIG, where
`crawler.run.run_crawl` puts it (`crawl_settings()`), and every component
takes it from its crawler's settings with `config_of()`. Under a plain
`scrapy crawl recheck` nobody put one there: the spider's ``update_settings``
reads HOSTWATCH_* from the environment then, once, and puts that Config
there (`apply_config()`). `scrapy_overrides()` maps the Config onto Scrapy's
own names, applied in the same place, so `scrapy crawl recheck` and
`hostwatch crawl` behave the same.
"""

from __future__ import annotations

from typing import Any

from scrapy.settings import BaseSettings, Settings

from kernel.config import Config

BOT_NAME = "hostwatch"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# Reported URLs are checked whatever robots.txt says: the hotline acts under a
# mandate, and a notice-and-takedown check is not crawling.
ROBOTSTXT_OBEY = False
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
# Each check is one observation; a transient failure is recorded as such and
# the debounce rule (kernel/state.py) handles it, so no retries.
RETRY_ENABLED = False
METAREFRESH_ENABLED = False
# Every status reaches the spider: 404/410/451 are verdicts, not errors.
HTTPERROR_ALLOW_ALL = True
# Scrapy's size limits abort without a response; hostwatch's handler caps the
# body itself (HOSTWATCH_MAX_BODY) so what arrived is still hashed.
DOWNLOAD_MAXSIZE = 0
DOWNLOAD_WARNSIZE = 0
# A body cut short by the server is still evidence of what was served.
DOWNLOAD_FAIL_ON_DATALOSS = False
# Cases are checked even when two share a URL; no fingerprinting cost.
DUPEFILTER_CLASS = "scrapy.dupefilters.BaseDupeFilter"
# One item task per response instead of 100 (measured: ~2x the throughput).
CONCURRENT_ITEMS = 1
# aiohttp instead of Twisted for HTTP(S): about half the CPU per request;
# names resolve through hostwatch's resolver and guard (crawler/handler.py).
# Scrapy's downloader with its per-host limit kept under asyncio (see
# crawler/downloader.py: otherwise requests wait for a host inside their time-out).
DOWNLOADER = "crawler.downloader.SlotLimitedDownloader"
DOWNLOAD_HANDLERS = {
    "http": "crawler.handler.GuardedAiohttpHandler",
    "https": "crawler.handler.GuardedAiohttpHandler",
}
# Politeness by address and hoster (crawler/politeness.py): requests for a
# full or backed-off address or hoster wait in the scheduler, not in the
# downloader, where they would count toward CONCURRENT_REQUESTS.
SCHEDULER_PRIORITY_QUEUE = "crawler.politeness.PoliteQueue"
# Scrapy re-parses a callback's source on every response to warn about
# `return value` in generators (its cache misses bound methods): ~13% of the
# crawl's CPU in a profile. Our callbacks return nothing.
WARN_ON_GENERATOR_RETURN_VALUE = False

# Scrapy's CPU cost per request is what limits a crawl (measured: ~3 ms per
# check on one core), so every component that does nothing for a re-check is
# off. The spider sets User-Agent, Accept and the timeout on each request.
DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.AddressGuardMiddleware": 50,
    "scrapy.downloadermiddlewares.downloadtimeout.DownloadTimeoutMiddleware": None,
    "scrapy.downloadermiddlewares.defaultheaders.DefaultHeadersMiddleware": None,
    "scrapy.downloadermiddlewares.useragent.UserAgentMiddleware": None,
    "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
    # Same redirects, no Referer header ever (see crawler.middlewares).
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "crawler.middlewares.RedirectWithoutReferer": 600,
    "scrapy.downloadermiddlewares.stats.DownloaderStats": None,
    "scrapy.downloadermiddlewares.httpcache.HttpCacheMiddleware": None,
    # No Accept-Encoding is sent and nothing is decompressed: no
    # decompression bombs, and the hash is of the bytes as served.
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
    "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
}
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.httperror.HttpErrorMiddleware": None,
    "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
}
ITEM_PIPELINES = {"crawler.pipelines.StorePipeline": 100}
EXTENSIONS = {
    "crawler.extensions.Progress": 200,
    "scrapy.extensions.telnet.TelnetConsole": None,
    # Per-request stats and the once-a-minute log line: the CrawlRun row and
    # the Progress extension say the same.
    "scrapy.extensions.corestats.CoreStats": None,
    "scrapy.extensions.logstats.LogStats": None,
    "scrapy.extensions.feedexport.FeedExporter": None,
    # No listening control port on a machine that handles hotline data.
    "scrapy.extensions.remote_control.RemoteControl": None,
}
# Problems only (kernel.config: HOSTWATCH_LOG_LEVEL): Scrapy's banner,
# settings dump and component lists are INFO records, shown with -v.
LOG_LEVEL = "WARNING"
# The crawl's kernel.config.Config (see the module docstring); None: not
# given, read from the environment (HOSTWATCH_*) by the spider, once.
HOSTWATCH_CONFIG = None


def crawl_settings(config: Config) -> Settings:
    """The Scrapy settings of a crawl under ``config``: this module's, and
    ``config`` itself for every component (`config_of`)."""
    settings = Settings()
    settings.setmodule(__name__, priority="project")
    settings.set("HOSTWATCH_CONFIG", config, priority="project")
    # Already here, not only in the spider's update_settings: Scrapy logs its
    # banner when the process starts, before any spider is made.
    settings.set("LOG_LEVEL", config.log_level, priority="project")
    return settings


def config_of(settings: BaseSettings) -> Config:
    """The crawl's Config, from its Scrapy settings. Without one (a plain
    `scrapy crawl recheck`), the one read from HOSTWATCH_* now: the only
    place where the crawl reads the environment for its configuration."""
    config = settings.get("HOSTWATCH_CONFIG")
    if config is None:
        return Config.from_env()
    if not isinstance(config, Config):
        raise TypeError(f"the Scrapy setting HOSTWATCH_CONFIG must be a kernel.config.Config, "
                        f"not {type(config).__name__}")
    return config


def apply_config(settings: BaseSettings) -> Config:
    """Fix the crawl's Config in ``settings`` (read once here when none was
    given) and the Scrapy settings that follow from it; the spider's
    ``update_settings`` calls this, before any component is built."""
    config = config_of(settings)
    settings.set("HOSTWATCH_CONFIG", config, priority="spider")
    settings.setdict(scrapy_overrides(config), priority="spider")
    return config


def scrapy_overrides(config: Config) -> dict[str, Any]:
    """Scrapy settings that follow hostwatch's own settings."""
    return {
        "CONCURRENT_REQUESTS": config.concurrency,
        # Scrapy's downloader slot of a request is its address (set by
        # crawler.middlewares), and aiohttp's connections per host follow
        # this too; crawler.politeness keeps both from ever filling up.
        "CONCURRENT_REQUESTS_PER_DOMAIN": config.concurrency_per_ip,
        "DOWNLOAD_TIMEOUT": config.timeout,
        "DNS_TIMEOUT": config.dns_timeout,
        "REDIRECT_MAX_TIMES": config.max_redirects,
        "USER_AGENT": config.user_agent,
        "LOG_LEVEL": config.log_level,
        "HOSTWATCH_MAX_BODY": config.max_body,
        "HOSTWATCH_PROGRESS": config.progress,
        # Responses whose callbacks still run count toward this; Scrapy stops
        # downloading above it (5 MB by default). A picture awaiting its PDQ
        # decode (crawler.perceptual) may be HOSTWATCH_MAX_BODY long: room
        # for a few, so one slow decode does not hold every other download.
        "SCRAPER_SLOT_MAX_ACTIVE_SIZE": max(5_000_000, 4 * config.max_body),
    }
