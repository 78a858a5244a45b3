"""The HTTP download handler: Scrapy's aiohttp handler, resolving through
hostwatch's resolver and guard.

Scrapy's default (Twisted) handler costs more CPU per request than its
aiohttp handler (BENCHMARKS.md), and a re-check is bound by CPU. The aiohttp
handler is marked experimental in Scrapy 2.19: hostwatch subclasses it and
pins what it relies on with its own tests (every verdict, the guard, the body
cap, hostile servers against real local servers).

What this adds to Scrapy's handler:

- aiohttp resolves names through `crawler.resolver.GuardedResolver`
  (hostwatch's resolver minus every address the guard refuses); aiohttp's own
  DNS cache is off (it would ignore TTLs).
- The body is read up to HOSTWATCH_MAX_BODY and the rest is not read (the
  connection is closed): what arrived is handed on with the flag
  ``download_stopped``, so it is hashed and the check marked truncated. A body
  cut short by the server is handed on with the flag ``dataloss``. No
  ``bytes_received``/``headers_received`` signals are sent (nothing in
  hostwatch listens, and each costs a signal dispatch per response).
- The handler is built lazily, on the first request, because aiohttp needs the
  running event loop.
- aiohttp's exception messages can quote what the server sent (a bad status
  line, a bad header); `crawler.errors` keeps only class names for those.
- Requests marked for the browser (``crawler.browser.META_BROWSER``) are
  browser checks (crawler.browser.check): Chromium starts on the first one
  and stops with the crawl; their media is hashed through this handler's
  session, so the same resolver, guard and body cap apply; their PDQ is
  computed by the crawl's shared `crawler.perceptual.PdqHasher` (the one the
  spider's HTTP checks use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import aiohttp
from scrapy.core.downloader.handlers._aiohttp import AiohttpDownloadHandler, _ClientResponse
from scrapy.core.downloader.handlers._base_streaming import BaseStreamingDownloadHandler
from scrapy.http import Response
from scrapy.utils.ssl import _make_ssl_context

from crawler.browser import (
    META_ACTIONS,
    META_BROWSER,
    META_BROWSER_RESULT,
    META_PAGE_URL,
    META_REFERENCE,
)
from crawler.resolver import GuardedResolver, shared_resolver
from crawler.settings import config_of
from outbound.guard import parse_networks

if TYPE_CHECKING:
    from crawler.browser.check import BrowserChecker

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler


class GuardedAiohttpHandler(AiohttpDownloadHandler):
    """See the module docstring."""

    lazy = True  # aiohttp needs the running loop
    _shared_browser: ClassVar[BrowserChecker | None] = None
    # Scrapy logs a warning for experimental handlers on every crawl; the
    # module docstring and the README say what that means for hostwatch.
    experimental: ClassVar[bool] = False

    def __init__(self, crawler: Crawler) -> None:
        self._max_body = crawler.settings.getint("HOSTWATCH_MAX_BODY", 16 * 1024 * 1024)
        # Scrapy's handler minus its session (we make our own below).
        BaseStreamingDownloadHandler.__init__(self, crawler)
        self._ssl_context = _make_ssl_context(crawler.settings)
        config = self._config = config_of(crawler.settings)
        self._browser: BrowserChecker | None = None
        connector = aiohttp.TCPConnector(
            local_addr=self._bind_address,
            limit=self._pool_size_total,
            limit_per_host=self._pool_size_per_host,
            resolver=GuardedResolver(shared_resolver(config),
                                     parse_networks(config.allow_private)),
            use_dns_cache=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            response_class=_ClientResponse,
            skip_auto_headers=("Accept", "Accept-Encoding", "Content-Type", "User-Agent"),
        )

    async def download_request(self, request: Request) -> Response:
        if META_BROWSER in request.meta:
            return await self._browser_check(request)
        return await super().download_request(request)

    async def _browser_check(self, request: Request) -> Response:
        """A browser check (crawler.browser): its result travels in
        ``request.meta``; the response itself is an empty stand-in."""
        if self._browser is None:
            self._browser = GuardedAiohttpHandler._shared_browser
        if self._browser is None:
            from crawler.browser.check import BrowserChecker
            from crawler.browser.pool import BrowserSettings
            from crawler.perceptual import PdqSettings, shared_hasher

            config = self._config
            # One browser for the crawl: Scrapy makes a handler per scheme.
            self._browser = GuardedAiohttpHandler._shared_browser = BrowserChecker(
                BrowserSettings.from_config(config), self._session, shared_resolver(config),
                parse_networks(config.allow_private), user_agent=config.user_agent,
                max_body=self._max_body, max_redirects=config.max_redirects,
                timeout=config.timeout,
                hasher=shared_hasher(PdqSettings.from_config(config)))
        request.meta[META_BROWSER_RESULT] = await self._browser.check(
            request.meta.get(META_PAGE_URL, request.url),
            reference=request.meta.get(META_REFERENCE),
            removed=request.meta[META_BROWSER], actions=request.meta.get(META_ACTIONS, ()))
        return Response(url=request.url, status=200, body=b"", flags=["browser"],
                        request=request)

    async def close(self) -> None:
        if self._browser is not None:
            if GuardedAiohttpHandler._shared_browser is self._browser:
                GuardedAiohttpHandler._shared_browser = None
                await self._browser.close()
            self._browser = None
        await super().close()

    async def _read_response(self, response: _ClientResponse, request: Request) -> Response:
        headers = self._extract_headers(response)
        args = self._build_base_response_args(response, request, headers)
        limit = self._max_body
        chunks: list[bytes] = []
        received = 0
        flags: list[str] = []
        try:
            async for chunk in response.content.iter_any():
                chunks.append(chunk)
                received += len(chunk)
                if received > limit:
                    flags.append("download_stopped")
                    break
        except aiohttp.ClientPayloadError:
            flags.append("dataloss")
        body = b"".join(chunks)
        if received > limit:
            body = body[:limit]
        # A plain Response: hostwatch reads bytes only, so Scrapy's sniffing of
        # a response class (HtmlResponse, TextResponse...) is skipped.
        return Response(**args, body=body, flags=flags or None)
