"""DNS lookups with dnspython, configured explicitly.

The crawler and enrichment share one `Resolver` so both see the same answers.
Failures are typed results (`DnsFailure`), never exceptions leaking out: an
NXDOMAIN is evidence (the name is gone), a SERVFAIL or a timeout is not.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from enum import StrEnum

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver


class DnsFailureKind(StrEnum):
    NXDOMAIN = "nxdomain"  # the name does not exist
    SERVFAIL = "servfail"  # the servers could not answer
    TIMEOUT = "timeout"  # no answer in time
    NO_ANSWER = "no_answer"  # the name exists but has no address


@dataclass(frozen=True)
class DnsFailure:
    name: str
    kind: DnsFailureKind
    detail: str


@dataclass(frozen=True)
class Addresses:
    """The addresses a name resolved to, and the CNAMEs on the way."""

    name: str
    addresses: tuple[str, ...]
    cname_chain: tuple[str, ...] = ()
    ttl: int = 0


Lookup = Addresses | DnsFailure


@dataclass(frozen=True)
class ZoneServers:
    """The nameservers (NS) of the zone a name belongs to."""

    zone: str
    nameservers: tuple[str, ...]


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class Resolver:
    """An explicitly configured resolver (no surprises from the host's setup).

    ``nameservers``: ``(host, port)`` pairs; empty means the system's
    resolv.conf. dnspython's cache honours each answer's TTL.
    """

    def __init__(
        self,
        nameservers: tuple[tuple[str, int], ...] = (),
        *,
        timeout: float = 5.0,
        want_ipv6: bool = True,
    ) -> None:
        if nameservers:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers
            ]
        else:
            resolver = dns.asyncresolver.Resolver(configure=True)
        resolver.timeout = max(timeout / 2, 0.5)  # per server try
        resolver.lifetime = timeout  # all tries together
        resolver.cache = dns.resolver.LRUCache(100_000)
        self._resolver = resolver
        self.want_ipv6 = want_ipv6
        # name -> (expires, lookup): answers within their TTL without building
        # dnspython query objects (the crawler asks once per request).
        self._answers: dict[str, tuple[float, Lookup]] = {}
        self.negative_ttl = 30.0

    async def addresses(self, name: str) -> Lookup:
        """A and AAAA of ``name`` (IP literals answer themselves)."""
        host = name.strip("[]").rstrip(".").lower()
        cached = self._answers.get(host)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        if is_ip_literal(host):
            return Addresses(host, (str(ipaddress.ip_address(host)),))
        lookup = await self._addresses(host)
        if isinstance(lookup, Addresses):
            ttl = float(lookup.ttl)
        elif lookup.kind in (DnsFailureKind.NXDOMAIN, DnsFailureKind.NO_ANSWER):
            ttl = self.negative_ttl
        else:
            ttl = 0.0  # SERVFAIL and time-outs are asked again next time
        if ttl > 0:
            if len(self._answers) > 100_000:
                self._answers.clear()
            self._answers[host] = (now + ttl, lookup)
        return lookup

    async def zone_nameservers(self, name: str) -> ZoneServers | DnsFailure:
        """The NS of the zone of ``name``: ask for NS at the name, then at each
        parent (``a.b.example.nl``, ``b.example.nl``, ``example.nl``, ``nl``)
        until one answers. A name that is a CNAME has no NS of its own."""
        host = name.strip("[]").rstrip(".").lower()
        if is_ip_literal(host):
            return DnsFailure(host, DnsFailureKind.NO_ANSWER, "an IP address has no zone")
        labels = host.split(".")
        for start in range(len(labels)):
            candidate = ".".join(labels[start:])
            result = await self._query(candidate, "NS")
            if isinstance(result, DnsFailure):
                if result.kind in (DnsFailureKind.SERVFAIL, DnsFailureKind.TIMEOUT):
                    return result
                continue  # NXDOMAIN or no NS here: try the parent
            if result.rrset is None or result.rrset.rdtype != dns.rdatatype.NS or \
                    result.canonical_name.to_text().rstrip(".").lower() != candidate:
                continue
            servers = sorted(rr.target.to_text().rstrip(".").lower() for rr in result.rrset)
            return ZoneServers(candidate, tuple(servers))
        return DnsFailure(host, DnsFailureKind.NO_ANSWER, "no NS record up to the top label")

    async def _addresses(self, host: str) -> Lookup:
        found: list[str] = []
        chain: tuple[str, ...] = ()
        ttl: int | None = None
        failure: DnsFailure | None = None
        types = ("A", "AAAA") if self.want_ipv6 else ("A",)
        for rdtype in types:
            result = await self._query(host, rdtype)
            if isinstance(result, DnsFailure):
                if result.kind is DnsFailureKind.NXDOMAIN:
                    return result
                if result.kind is not DnsFailureKind.NO_ANSWER or failure is None:
                    failure = result
                continue
            answer = result
            found.extend(rr.to_text() for rr in answer.rrset or ())
            if answer.rrset is not None:
                ttl = answer.rrset.ttl if ttl is None else min(ttl, answer.rrset.ttl)
            chain = chain or _cname_chain(answer)
        if found:
            return Addresses(host, tuple(found), chain, ttl or 0)
        assert failure is not None
        return failure

    async def _query(self, host: str, rdtype: str) -> dns.resolver.Answer | DnsFailure:
        try:
            return await self._resolver.resolve(host, rdtype, search=False)
        except dns.resolver.NXDOMAIN as exc:
            return DnsFailure(host, DnsFailureKind.NXDOMAIN, str(exc))
        except dns.resolver.NoAnswer as exc:
            return DnsFailure(host, DnsFailureKind.NO_ANSWER, str(exc))
        except dns.resolver.NoNameservers as exc:
            return DnsFailure(host, DnsFailureKind.SERVFAIL, str(exc))
        except dns.exception.Timeout as exc:
            return DnsFailure(host, DnsFailureKind.TIMEOUT, str(exc))
        except (dns.name.NameTooLong, dns.name.EmptyLabel, dns.name.LabelTooLong) as exc:
            return DnsFailure(host, DnsFailureKind.NXDOMAIN, f"not a valid name: {exc}")


def _cname_chain(answer: dns.resolver.Answer) -> tuple[str, ...]:
    """The canonical names followed from the query name to the address."""
    chain: list[str] = []
    response = answer.response
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.CNAME:
            for rr in rrset:
                chain.append(rr.target.to_text().rstrip(".").lower())
    return tuple(chain)
