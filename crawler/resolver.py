"""The name resolver connections are made through.

aiohttp (crawler/handler.py) asks `GuardedResolver` for a host's addresses: it
answers from hostwatch's dnspython resolver (HOSTWATCH_NAMESERVERS, TTLs
honoured) and drops every address the guard refuses, so a connection is only
ever made to a guarded address, whatever DNS answers between the middleware's
lookup and the connect. (aiohttp does not ask a resolver for IP literals:
the middleware guards those.)
"""

from __future__ import annotations

import ipaddress
import socket
from functools import lru_cache

from aiohttp.abc import AbstractResolver, ResolveResult

from kernel.config import Config
from outbound.dns import DnsFailure, Resolver
from outbound.guard import Network, forbidden_reason


@lru_cache(maxsize=8)
def _resolver_for(nameservers: tuple[tuple[str, int], ...], timeout: float) -> Resolver:
    return Resolver(nameservers, timeout=timeout)


def shared_resolver(config: Config) -> Resolver:
    """One resolver (and one DNS cache) per process and configuration."""
    return _resolver_for(config.nameservers, config.dns_timeout)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver interface over hostwatch's resolver and the guard."""

    def __init__(self, resolver: Resolver, allow: tuple[Network, ...]) -> None:
        self.resolver = resolver
        self.allow = allow

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        lookup = await self.resolver.addresses(host)
        if isinstance(lookup, DnsFailure):
            # aiohttp turns an OSError from the resolver into ClientConnectorDNSError.
            raise OSError(f"{host}: {lookup.kind.value}")
        results: list[ResolveResult] = []
        for ip in lookup.addresses:
            if forbidden_reason(ip, self.allow) is not None:
                continue
            ip_family = (socket.AF_INET6 if isinstance(ipaddress.ip_address(ip),
                                                      ipaddress.IPv6Address)
                         else socket.AF_INET)
            if family not in (socket.AF_UNSPEC, ip_family):
                continue
            results.append(ResolveResult(hostname=host, host=ip, port=port,
                                         family=ip_family, proto=0,
                                         flags=socket.AI_NUMERICHOST))
        if not results:
            raise OSError(f"{host}: no address the guard allows")
        return results

    async def close(self) -> None:
        return None
