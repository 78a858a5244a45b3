"""Downloader middleware: resolve through hostwatch's resolver and apply the
address guard before any connection is made (also for every redirect hop,
because a redirected request passes through here again).

Every request's URL is read as a browser reads it (kernel.urls): a
redirect to ``http://0x7f.1/`` goes to 127.0.0.1, so it is guarded as that
address, not looked up in DNS as a name.

Once resolved, a request is counted on the address it connects to
(crawler.politeness): one whose address is full goes back to the scheduler
and waits there, so it does not hold a place in the global concurrency."""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.http import Response
from scrapy.utils.httpobj import urlparse_cached

from crawler.errors import RefusedTarget
from crawler.politeness import META_LEASE, Politeness
from crawler.resolver import shared_resolver
from crawler.settings import config_of
from crawler.verdict import ErrorKind
from kernel.urls import browser_target, plain_host, redirect_url
from outbound.dns import DnsFailure, DnsFailureKind, Resolver
from outbound.guard import Network, forbidden_reason, parse_networks

# What each DNS failure is as a check's error (also the browser's proxy's).
DNS_ERROR_KINDS = {
    DnsFailureKind.NXDOMAIN: ErrorKind.NXDOMAIN,
    DnsFailureKind.SERVFAIL: ErrorKind.DNS_SERVFAIL,
    DnsFailureKind.TIMEOUT: ErrorKind.DNS_TIMEOUT,
    DnsFailureKind.NO_ANSWER: ErrorKind.DNS_NO_ANSWER,
}

# Request.meta key: the addresses the request's host resolved to.
META_ADDRESSES = "hostwatch_addresses"
# Request.meta key: the URL last rewritten to the form a browser requests.
META_REWRITTEN = "hostwatch_browser_url"


class AddressGuardMiddleware:
    """HOSTWATCH_ALLOW_PRIVATE=1 lets loopback and private targets through."""

    def __init__(self, resolver: Resolver, allow: tuple[Network, ...],
                 politeness: Politeness | None = None) -> None:
        self.resolver = resolver
        self.allow = allow
        self.politeness = politeness
        self._verdicts: dict[str, str | None] = {}  # address -> forbidden_reason()

    def _reason(self, address: str) -> str | None:
        try:
            return self._verdicts[address]
        except KeyError:
            if len(self._verdicts) > 100_000:
                self._verdicts.clear()
            reason = self._verdicts[address] = forbidden_reason(address, self.allow)
            return reason

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AddressGuardMiddleware:
        config = config_of(crawler.settings)
        return cls(shared_resolver(config), parse_networks(config.allow_private),
                   Politeness.of(crawler))

    async def process_request(self, request: Request) -> Request | None:
        host = urlparse_cached(request).hostname or ""
        if not host or plain_host(request.url) != host.rstrip("."):
            # Not plainly written (most URLs are, and read the same to every
            # parser): one full parse, as a browser reads it.
            rewritten = self._as_browser(request, host)
            if rewritten is not None:
                return rewritten
        if not host:
            raise RefusedTarget(ErrorKind.UNSUPPORTED, f"no host in {request.url}")
        lookup = await self.resolver.addresses(host)
        if isinstance(lookup, DnsFailure):
            raise RefusedTarget(DNS_ERROR_KINDS[lookup.kind], f"{host}: {lookup.kind.value}")
        allowed = [ip for ip in lookup.addresses
                   if self._reason(ip) is None]
        if not allowed:
            reason = self._reason(lookup.addresses[0])
            raise RefusedTarget(ErrorKind.BLOCKED, f"{host} -> {reason}")
        request.meta[META_ADDRESSES] = allowed
        if self.politeness is None:
            return None
        return self.politeness.admit(request, host, allowed)

    def _as_browser(self, request: Request, host: str) -> Request | None:
        """The request for the URL a browser would request, when its host
        reads as another one to a browser; None when it reads the same."""
        target = browser_target(request.url)
        if target is None or not target[0]:
            # A redirect a browser could not follow (a case URL never gets here).
            raise RefusedTarget(ErrorKind.UNSUPPORTED, "not a URL a browser would open")
        browser_host, as_browser = target
        if browser_host == host.rstrip("."):
            return None
        # A host a browser reads as something else (a numeric IPv4 form such
        # as 0x7f.1, an IDN): request the URL a browser would. Its host reads
        # the same both ways, so this happens once a request.
        if request.meta.get(META_REWRITTEN) == request.url:
            raise RefusedTarget(ErrorKind.UNSUPPORTED, "host read two ways")
        if self.politeness is not None:  # scheduled again, under its own host
            self.politeness.release(request.meta.get(META_LEASE))
        return request.replace(url=as_browser, meta={**request.meta, META_REWRITTEN: as_browser})

    def process_exception(self, request: Request, exception: Exception) -> None:
        # Refused here or failed in the download: the lease ends (if the
        # download ran, it already has), and a load failure counts.
        if self.politeness is not None:
            self.politeness.release(request.meta.get(META_LEASE))
            self.politeness.failed(request, exception)

    def process_response(self, request: Request, response: Response) -> Any:
        # DNS rebinding: the address actually connected to must pass too.
        if response.ip_address is not None:
            reason = self._reason(str(response.ip_address))
            if reason is not None:
                raise RefusedTarget(ErrorKind.BLOCKED, f"connected to {reason}")
        return response


class RedirectWithoutReferer(RedirectMiddleware):
    """Scrapy's redirects, minus the Referer header: a re-check never tells a
    host where it came from (and needs no referer middleware for that).

    The target is the URL a browser would request (kernel.urls.redirect_url):
    no fragment and no user info, which a Location can carry but no server is
    sent; otherwise they would be logged and stored as the hop or final URL
    (text the server wrote), and the credentials sent on to the host."""

    def handle_referer(self, request: Request, response: Response) -> None:
        request.headers.pop(b"Referer", None)

    def _engine_started(self) -> None:
        # Scrapy's looks for its referer middleware here and warns, at every
        # start, that without one the Referer is dropped: that is the point.
        pass

    def _build_redirect_request(self, source_request: Request, response: Response, *,
                                url: str, **kwargs: Any) -> Request:
        # None: no URL a browser would follow; the guard refuses it as it is.
        target = redirect_url(url, source_request.url) or url
        return super()._build_redirect_request(source_request, response, url=target,
                                               **kwargs)
