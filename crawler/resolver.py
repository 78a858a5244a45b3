"""The Twisted name resolver Scrapy connects through (TWISTED_DNS_RESOLVER).

It answers from hostwatch's dnspython resolver (HOSTWATCH_NAMESERVERS, TTLs
honoured) and drops every address the guard refuses, so the address a
connection is actually made to has passed the guard, whatever DNS says between
the middleware's lookup and the connect.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from scrapy.crawler import Crawler
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
)
from zope.interface import implementer

from crawler.guard import Network, forbidden_reason, parse_networks
from enrichment.dns import Addresses, Lookup, Resolver
from hostwatch.config import Config


@lru_cache(maxsize=8)
def _resolver_for(nameservers: tuple[tuple[str, int], ...], timeout: float) -> Resolver:
    return Resolver(nameservers, timeout=timeout)


def shared_resolver(config: Config) -> Resolver:
    """One resolver (and one DNS cache) per process and configuration."""
    return _resolver_for(config.nameservers, config.dns_timeout)


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:  # pragma: no cover - Twisted never cancels these
        pass


@implementer(IHostnameResolver)
class GuardedResolver:
    def __init__(self, reactor: object, resolver: Resolver, allow: tuple[Network, ...]) -> None:
        self.reactor = reactor
        self.resolver = resolver
        self.allow = allow

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: object) -> GuardedResolver:
        config = Config.from_env()
        return cls(reactor, shared_resolver(config), parse_networks(config.allow_private))

    def install_on_reactor(self) -> None:
        self.reactor.installNameResolver(self)  # type: ignore[attr-defined]

    def resolveHostName(  # noqa: N802 - Twisted's interface
        self,
        resolutionReceiver: Any,  # noqa: N803 - an IResolutionReceiver
        hostName: str,  # noqa: N803
        portNumber: int = 0,  # noqa: N803
        addressTypes: Sequence[type[IAddress]] | None = None,  # noqa: N803
        transportSemantics: str = "TCP",  # noqa: N803
    ) -> _Resolution:
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)

        def deliver(task: asyncio.Future[Lookup]) -> None:
            lookup = None if task.cancelled() or task.exception() else task.result()
            if isinstance(lookup, Addresses):
                for ip in lookup.addresses:
                    if forbidden_reason(ip, self.allow) is not None:
                        continue
                    parsed = ipaddress.ip_address(ip)
                    if isinstance(parsed, ipaddress.IPv6Address):
                        if addressTypes is None or IPv6Address in addressTypes:
                            resolutionReceiver.addressResolved(IPv6Address("TCP", ip, portNumber))
                    elif addressTypes is None or IPv4Address in addressTypes:
                        resolutionReceiver.addressResolved(IPv4Address("TCP", ip, portNumber))
            resolutionReceiver.resolutionComplete()

        future = asyncio.ensure_future(self.resolver.addresses(hostName))
        future.add_done_callback(deliver)
        return resolution
