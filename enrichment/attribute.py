"""Attribution: who served a check, put together from every layer.

For each check: the host that served it (the final URL's host), its CNAME
chain and zone nameservers (DNS, asked when the check is attributed: right
after the crawl in `hostwatch run`), the address (the peer the crawler
actually connected to, else DNS), ASN and announced prefix (offline BGP
table), AS name and country (AS-names file), the address holder and, where
RDAP names one, the reseller through which the block was registered (RDAP,
cached per network in the store), a CDN in front (ASN, CNAMEs, the headers the
crawler kept), the hoster of record and its jurisdiction, and where the
server stands (`enrichment/geo.py`: the geolocation database
HOSTWATCH_GEOIP_DB, else the RDAP network's country, marked ``rdap``). Each
field records its source in ``sources``.

With HOSTWATCH_OFFLINE=1 nothing is asked outside: no RDAP and no DNS (the
address is the one the crawler connected to; no CNAME chain, no NS).

`enrich()` attributes every check that has no attribution yet, in batches of
HOSTWATCH_ENRICH_BATCH, one transaction each: idempotent, and an interrupted
run resumes where it stopped. Attributions are frozen per check: a check
that has one is never attributed again, so a later geolocation database (or
RDAP answer) never rewrites where an earlier check's server stood.
"""

from __future__ import annotations

import asyncio
import bisect
import ipaddress
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from enrichment import EnrichmentError
from enrichment.asn import AsNames, AsnTable
from enrichment.geo import GeoDb, LocationSource, ServerLocation, server_location
from enrichment.hosters import HosterDecision, HosterRegistry, hoster_of_record
from enrichment.identity import HosterBook, identity_of
from enrichment.jurisdiction import jurisdiction
from enrichment.rdap_client import RdapClient
from enrichment.rdap_parse import NetworkInfo
from kernel.cdn import CdnDetection, detect_cdn
from kernel.config import Config
from kernel.location import server_and_edge
from kernel.urls import url_host
from outbound.dns import Addresses, DnsFailure, Resolver, ZoneServers, is_ip_literal
from outbound.guard import forbidden_reason, parse_networks
from store import Attribution, Check, Network, Store
from store.of_record import set_attributions_of_record

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkFacts:
    """The address holder of one network, as cached in the store."""

    network_id: int | None
    status: str  # ok / stale / not_found / error / offline / non_public / none
    name: str | None = None
    handle: str | None = None
    org: str | None = None
    org_country: str | None = None  # the holder's own address
    country: str | None = None  # the network's
    abuse_email: str | None = None
    cidr: str | None = None
    org_handle: str | None = None  # the holder's RDAP handle
    # The third party through which the block was registered (RDAP role
    # "reseller"), where the answer names one.
    reseller: str | None = None
    reseller_handle: str | None = None


@dataclass
class Facts:
    """Everything known about one target; becomes an Attribution row."""

    hostname: str | None
    ip: str | None
    ip_source: str  # the target's source (e.g. the crawl's peer), url, dns, or none
    cname_chain: list[str] = field(default_factory=list)
    nameservers: list[str] | None = None
    zone: str | None = None
    dns_error: str | None = None
    asn: int | None = None
    prefix: str | None = None
    as_name: str | None = None
    as_country: str | None = None
    network: NetworkFacts = field(default_factory=lambda: NetworkFacts(None, "none"))
    cdn: CdnDetection | None = None
    decision: HosterDecision | None = None
    jurisdiction: str = "unknown"
    jurisdiction_country: str | None = None
    dutch: bool = False
    # Where the server stands (the first meaning of "Dutch-hosted"; the
    # hoster's establishment above is the second): enrichment/geo.py.
    server: ServerLocation = field(default_factory=lambda: ServerLocation(None, None))
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def reported_server(self) -> ServerLocation:
        """Where the server stands, as reported: none for a CDN-fronted target,
        whose address is the CDN's edge (where the CDN answers, not where the
        material is hosted); the raw fact stays in ``server`` (and in the
        attribution row). The rule is kernel.location's, as in the reports."""
        return self._server_and_edge()[0]

    def _server_and_edge(self) -> tuple[ServerLocation, ServerLocation]:
        return server_and_edge(self.cdn is not None, self.server, ServerLocation(None, None))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``hostwatch whois --json``): for a CDN-fronted
        target ``server_country`` is None and the edge's location is
        ``cdn_edge_country`` (source ``cdn_edge_country_source``)."""
        decision = self.decision
        where, edge = self._server_and_edge()
        return {
            "hostname": self.hostname, "ip": self.ip, "ip_source": self.ip_source,
            "cname_chain": self.cname_chain, "zone": self.zone,
            "nameservers": self.nameservers, "dns_error": self.dns_error,
            "asn": self.asn, "prefix": self.prefix, "as_name": self.as_name,
            "as_country": self.as_country,
            "network": asdict(self.network),
            "cdn": self.cdn.name if self.cdn else None,
            "cdn_evidence": list(self.cdn.evidence) if self.cdn else [],
            "hoster": decision.hoster if decision else None,
            "hoster_id": decision.hoster_id if decision else None,
            "hoster_country": decision.country if decision else None,
            "dsa_role": decision.dsa_role if decision else None,
            "abuse": decision.abuse if decision else None,
            "jurisdiction": self.jurisdiction,
            "jurisdiction_country": self.jurisdiction_country,
            "dutch": self.dutch,
            "server_country": where.country,
            "server_country_source": where.source.value if where.source else None,
            "geoip_built_at": (where.built_at.isoformat().replace("+00:00", "Z")
                               if where.built_at and where.country else None),
            "cdn_edge_country": edge.country,
            "cdn_edge_country_source": edge.source.value if edge.country and edge.source
            else None,
            "sources": self.sources,
        }


@dataclass(frozen=True)
class Target:
    """What to attribute: a host and/or an address, and the headers it sent."""

    hostname: str | None
    ip: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    ip_source: str = "given"  # where ``ip`` came from, as recorded in ``sources``


def host_of(url: str) -> str | None:
    """The host a browser connects to for ``url`` ("http://0x7f.1/" is the
    address 127.0.0.1, not a name); the plain reading of a stored URL that a
    browser would not open."""
    host = url_host(url)
    if host is not None:
        return host
    plain = urlsplit(url).hostname
    return plain.lower() if plain else None


def host_target(text: str) -> str:
    """A host name or address given on its own, read as it would be in a URL:
    "3232235777" is 192.168.1.1 and "BÜCHER.example" is xn--bcher-kva.example."""
    if is_ip_literal(text) or any(c in text for c in "/?#@\\"):
        return text.strip("[]").lower().rstrip(".")
    return url_host(f"http://{text}/") or text.lower().rstrip(".")


def _cache_key(ip: str, prefix: str | None) -> str:
    """Where a "not found" or failed RDAP answer is kept: the announced
    prefix, else the single address."""
    if prefix:
        return prefix
    address = ipaddress.ip_address(ip)
    return f"{address}/{address.max_prefixlen}"


def range_key(ip: str) -> str:
    """A sortable text key of an address: "4:" or "6:" and fixed-width hex."""
    address = ipaddress.ip_address(ip)
    return f"4:{int(address):08x}" if address.version == 4 else f"6:{int(address):032x}"


def plain_ip(ip: str) -> str:
    """The address in its plain form (an IPv4-mapped IPv6 address as IPv4)."""
    address = ipaddress.ip_address(ip.strip("[]"))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


# A hoster's name and the like are cut to fit their columns (PostgreSQL
# refuses longer text; an RDAP server decides these lengths, not us).
def _fit(value: str | None, size: int = 255) -> str | None:
    return value[:size] if value is not None else None


class Attributor:
    """Holds the lookup sources; `facts()` attributes targets."""

    DNS_AT_ONCE = 32  # DNS lookups in flight at once

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        resolver: Resolver | None = None,
        table: AsnTable | None = None,
        names: AsNames | None = None,
        registry: HosterRegistry | None = None,
        rdap: RdapClient | None = None,
        geo: GeoDb | None = None,
    ) -> None:
        self.config = config
        self.geo = geo  # closed by close(); None: the RDAP country stands in
        self.store = store
        self.rdap_cache_hits = 0  # holders answered from this run's memory or the store
        self.offline = config.offline
        self.resolver = resolver or Resolver(config.nameservers, timeout=config.dns_timeout)
        self.table = table
        self.names = names
        self.registry = registry or HosterRegistry.load(
            user=Path(config.hosters) if config.hosters else None)
        self.rdap = None if config.offline else rdap
        self.allow = parse_networks(config.allow_private)
        self.ttl = timedelta(days=config.rdap_ttl_days)
        # What the store holds, within this run: RDAP networks by range (per
        # IP version: sorted starts, and (start, end, facts)), other answers
        # by cache key. One query per network, not one per check.
        self._starts: dict[str, list[str]] = {"4": [], "6": []}
        self._ranges: dict[str, list[tuple[str, str, NetworkFacts]]] = {"4": [], "6": []}
        self._keyed: dict[str, NetworkFacts] = {}
        # identity -> (hosters row id, how it was matched), within this run
        self._hosters: dict[tuple[str | None, ...], tuple[int, str]] = {}
        self._guard: dict[str, bool] = {}  # announced prefix (or address) -> public

    @classmethod
    def from_config(cls, config: Config, store: Store) -> Attributor:
        table = AsnTable.load(Path(config.asn_db)) if config.asn_db else None
        names = AsNames.load(Path(config.asnames)) if config.asnames else None
        rdap = None if config.offline else RdapClient.from_config(config)
        # Opened once, last (nothing else to close if it fails): GeoDbError
        # names the file when it is missing or no MaxMind DB.
        geo = GeoDb.from_setting(config.geoip_db)
        return cls(config, store, table=table, names=names, rdap=rdap, geo=geo)

    def close(self) -> None:
        """Close the geolocation database (the attributor cannot locate after)."""
        if self.geo is not None:
            self.geo.close()
            self.geo = None

    def __enter__(self) -> Attributor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- DNS ------------------------------------------------------------------

    async def _dns(self, hostnames: Iterable[str]) -> dict[str, tuple[Any, Any]]:
        names = sorted({h for h in hostnames if h and not is_ip_literal(h)})
        gate = asyncio.Semaphore(self.DNS_AT_ONCE)

        async def one(name: str) -> tuple[str, tuple[Any, Any]]:
            async with gate:
                return name, (await self.resolver.addresses(name),
                              await self.resolver.zone_nameservers(name))

        results = await asyncio.gather(*(one(name) for name in names))
        return dict(results)

    # -- the layers -------------------------------------------------------------

    def facts(self, targets: list[Target], now: datetime | None = None) -> list[Facts]:
        """Attribute ``targets`` (DNS for their hosts at once, RDAP cached).

        RDAP answers are written to the store's cache as they come, each in
        its own short transaction; nothing else is written.
        """
        now = now or datetime.now(UTC)
        dns_answers: dict[str, tuple[Any, Any]] = {}
        if not self.offline:
            dns_answers = asyncio.run(self._dns(t.hostname for t in targets if t.hostname))
        return [self._one(target, dns_answers.get(target.hostname or ""), now)
                for target in targets]

    def _one(self, target: Target, dns_answer: tuple[Any, Any] | None,
             now: datetime) -> Facts:
        ip, ip_source = target.ip, target.ip_source if target.ip else "none"
        facts = Facts(hostname=target.hostname, ip=None, ip_source=ip_source)
        sources = facts.sources
        if target.hostname:
            sources["hostname"] = "the URL checked (the final URL after redirects)"
        if target.hostname and is_ip_literal(target.hostname) and not ip:
            ip, ip_source = target.hostname.strip("[]"), "url"
        if dns_answer is not None:
            lookup, zone = dns_answer
            sources["cname_chain"] = sources["nameservers"] = "dns, when attributed"
            if isinstance(lookup, Addresses):
                facts.cname_chain = list(lookup.cname_chain)
                if not ip and lookup.addresses:
                    ip, ip_source = lookup.addresses[0], "dns, when attributed"
            elif isinstance(lookup, DnsFailure):
                facts.dns_error = lookup.kind.value
            if isinstance(zone, ZoneServers):
                facts.zone, facts.nameservers = zone.zone, list(zone.nameservers)
            elif isinstance(zone, DnsFailure) and facts.dns_error is None:
                facts.dns_error = f"ns {zone.kind.value}"
        elif target.hostname and self.offline:
            sources["cname_chain"] = sources["nameservers"] = "none (offline)"
        facts.ip, facts.ip_source = (plain_ip(ip) if ip else None), ip_source
        if facts.ip:
            ip = facts.ip
            sources["ip"] = ip_source
            if self.table is not None:
                found = self.table.lookup(ip)
                if found is not None:
                    facts.asn, facts.prefix = found
                    sources["asn"] = sources["prefix"] = "asn_table"
            if facts.asn is not None and self.names is not None:
                entry = self.names.get(facts.asn)
                if entry is not None:
                    facts.as_name, facts.as_country = entry.name, entry.country
                    sources["as_name"] = sources["as_country"] = "asn_names"
            facts.network = self._network(ip, facts.prefix, now)
            if facts.network.status in ("ok", "stale"):
                label = "rdap" if facts.network.status == "ok" else \
                    "rdap (an older answer: the refresh failed)"
                for name in ("network_name", "network_handle", "rdap_org",
                             "rdap_org_country", "rdap_country", "rdap_reseller",
                             "abuse_email"):
                    sources[name] = label
            else:
                sources["rdap"] = facts.network.status
        detected = detect_cdn(asn=facts.asn, cname_chain=facts.cname_chain,
                              headers=target.headers)
        decision = facts.decision = hoster_of_record(
            asn=facts.asn, as_name=facts.as_name, as_country=facts.as_country,
            rdap_org=facts.network.org, rdap_country=facts.network.org_country,
            cdn=detected, registry=self.registry)
        if decision.cdn and detected is not None and detected.name == decision.cdn:
            facts.cdn = detected
        elif decision.cdn:  # the registry knows the network as a CDN's
            facts.cdn = CdnDetection(decision.cdn,
                                     (f"{decision.sources.get('cdn', 'registry')} "
                                      f"(asn {facts.asn}, org {facts.network.org})",))
        sources["hoster"] = decision.sources.get("hoster", "none")
        sources["hoster_country"] = decision.sources.get("country", "none")
        sources["dsa_role"] = decision.sources.get("dsa_role", "none")
        sources["hoster_abuse"] = decision.sources.get("abuse", "none")
        if facts.cdn is not None:
            sources["cdn"] = "; ".join(facts.cdn.evidence)
        elif detected is not None:
            sources["cdn"] = (f"none: {detected.name} signs ({'; '.join(detected.evidence)}) "
                              f"on an address that is not the CDN's")
        else:
            sources["cdn"] = "none"
        facts.server = self._server(facts)
        place = jurisdiction(decision.country)
        facts.jurisdiction = place.value
        facts.jurisdiction_country = decision.country
        facts.dutch = place.value == "NL"
        sources["jurisdiction"] = sources["dutch"] = (
            "the hoster of record's country" if decision.country else "none")
        return facts

    # -- where the server stands ------------------------------------------------

    def _server(self, facts: Facts) -> ServerLocation:
        """The serving address's country (`enrichment.geo.server_location`),
        its source recorded in ``sources["server_country"]``; none without an
        address."""
        if facts.ip is None:
            return ServerLocation(None, None)
        located = self.geo.locate(facts.ip) if self.geo is not None else None
        where = server_location(located, facts.network.country)
        # The database consulted is named even when it did not know the
        # address: the frozen record then says which build was asked.
        consulted = (f"{self.geo.database_type}, built {self.geo.built_at.date().isoformat()}"
                     if self.geo is not None else "")
        if where.source is LocationSource.GEOIP:
            how = f"geoip ({consulted})"
        elif where.source is LocationSource.RDAP:
            why = ("no geolocation database" if self.geo is None
                   else f"the geolocation database gives no country for the address "
                        f"({consulted})")
            how = f"rdap (the network's registered country; {why})"
        elif self.geo is not None:
            how = (f"none (the geolocation database gives no country for the address "
                   f"({consulted}), RDAP none)")
        else:
            how = "none"
        facts.sources["server_country"] = how
        return where

    # -- the address holder (RDAP, cached) --------------------------------------

    def _network(self, ip: str, prefix: str | None, now: datetime) -> NetworkFacts:
        """The address holder: from this run's memory, the store's cache, or RDAP."""
        if not self._public(ip, prefix):
            return NetworkFacts(None, "non_public")  # never asked of a public registry
        key = range_key(ip)
        version = key[0]
        known = self._in_memory(version, key) or self._keyed.get(_cache_key(ip, prefix))
        if known is not None:
            self.rdap_cache_hits += 1
            return known
        facts = self._from_store(ip, prefix, now)
        if facts.status not in ("ok", "stale"):  # answers are remembered by range
            self._remember(ip, prefix, facts)
        return facts

    def _public(self, ip: str, prefix: str | None) -> bool:
        """Whether the guard lets ``ip`` through (checked once per announced
        prefix: special-purpose ranges are never split across prefixes)."""
        where = prefix or ip
        verdict = self._guard.get(where)
        if verdict is None:
            target = prefix.split("/")[0] if prefix else ip
            verdict = self._guard[where] = (forbidden_reason(target, self.allow) is None
                                            and forbidden_reason(ip, self.allow) is None)
            if len(self._guard) > 100_000:
                self._guard.clear()
        return verdict

    def _in_memory(self, version: str, key: str) -> NetworkFacts | None:
        starts, ranges = self._starts[version], self._ranges[version]
        index = bisect.bisect_right(starts, key) - 1
        for candidate in range(index, max(index - 8, -1), -1):  # nested ranges
            start, end, facts = ranges[candidate]
            if start <= key <= end:
                return facts
        return None

    def _remember(self, ip: str, prefix: str | None, facts: NetworkFacts,
                  span: tuple[str, str] | None = None) -> None:
        if span is None or not (span[0] <= range_key(ip) <= span[1]):
            self._keyed[_cache_key(ip, prefix)] = facts
            return
        version = span[0][0]
        index = bisect.bisect_right(self._starts[version], span[0])
        self._starts[version].insert(index, span[0])
        self._ranges[version].insert(index, (span[0], span[1], facts))

    def _from_store(self, ip: str, prefix: str | None, now: datetime) -> NetworkFacts:
        key = range_key(ip)
        with self.store.session() as session:
            answered = session.scalars(
                select(Network).where(Network.status == "ok", Network.range_start <= key,
                                      Network.range_end >= key,
                                      Network.range_start.like(f"{key[0]}:%"))
                .order_by(Network.range_start.desc()).limit(1)).first()
            kept = session.scalars(select(Network).where(
                Network.prefix == _cache_key(ip, prefix))).first()
        if answered is not None and answered.fetched_at + self.ttl > now:
            facts = _network_facts(answered)
            span = (answered.range_start or "", answered.range_end or "")
            self._remember(ip, prefix, facts, span)
            self.rdap_cache_hits += 1
            return facts
        if kept is not None and kept.status == "not_found" and kept.fetched_at + self.ttl > now:
            self.rdap_cache_hits += 1
            return _network_facts(kept)
        if self.rdap is None:
            if answered is not None:
                return self._stale(ip, prefix, answered)
            return NetworkFacts(None, "offline")
        return self._fetch(ip, prefix, now, stale=answered)

    def _stale(self, ip: str, prefix: str | None, row: Network) -> NetworkFacts:
        """An older answer, used (and marked) when no fresh one can be had."""
        facts = _network_facts(row, status="stale")
        self._remember(ip, prefix, facts, (row.range_start or "", row.range_end or ""))
        return facts

    def _fetch(self, ip: str, prefix: str | None, now: datetime,
               stale: Network | None) -> NetworkFacts:
        assert self.rdap is not None
        url = f"{self.rdap.base_url}/ip/{ip}"
        try:
            info = self.rdap.lookup(ip)
        except EnrichmentError as exc:
            logger.warning("RDAP for %s failed: %s", ip, exc)
            self._keep(_cache_key(ip, prefix), now, url, status="error", error=str(exc))
            if stale is not None:
                return self._stale(ip, prefix, stale)
            return NetworkFacts(None, "error")
        if info is None or info.start_address is None or info.end_address is None:
            row_id = self._keep(_cache_key(ip, prefix), now, url, status="not_found")
            return NetworkFacts(row_id, "not_found")
        span = (range_key(info.start_address), range_key(info.end_address))
        row_id = self._keep(f"{info.start_address}-{info.end_address}", now, url,
                            status="ok", info=info, span=span)
        facts = NetworkFacts(row_id, "ok", _fit(info.name), _fit(info.handle), _fit(info.org),
                             info.org_country, info.country, _fit(info.abuse_email), info.cidr,
                             _fit(info.org_handle), _fit(info.reseller),
                             _fit(info.reseller_handle))
        self._remember(ip, prefix, facts, span)
        return facts

    def _keep(self, key: str, now: datetime, url: str, *, status: str, error: str | None = None,
              info: NetworkInfo | None = None, span: tuple[str, str] | None = None) -> int:
        """Write one RDAP answer to the store's cache (its own transaction)."""
        with self.store.transaction() as session:
            row = session.scalars(select(Network).where(Network.prefix == key)).first()
            if row is None:
                row = Network(prefix=key)
                session.add(row)
            row.fetched_at, row.status, row.rdap_url = now, status, url
            row.error = error[:1000] if error else None
            if info is not None and span is not None:
                row.range_start, row.range_end = span
                row.cidr = info.cidr
                row.start_address, row.end_address = info.start_address, info.end_address
                row.name, row.handle = _fit(info.name), _fit(info.handle)
                row.org, row.org_country = _fit(info.org), info.org_country
                row.org_handle = _fit(info.org_handle)
                row.reseller = _fit(info.reseller)
                row.reseller_handle = _fit(info.reseller_handle)
                row.country, row.abuse_email = info.country, _fit(info.abuse_email)
                row.rir = info.registry
            session.flush()
            return row.id

    # -- hosters ----------------------------------------------------------------

    def hoster_row(self, session: Session, facts: Facts, now: datetime) -> int | None:
        """The hosters row of the decision: one per company, whichever source
        named it (`enrichment.identity`); how it was matched goes into the
        facts' ``sources`` (``hoster_identity``)."""
        decision = facts.decision
        if decision is None or not decision.hoster:
            return None
        identity = identity_of(decision, asn=facts.asn, as_name=facts.as_name,
                               rdap_org=facts.network.org,
                               rdap_org_handle=facts.network.org_handle,
                               registry=self.registry)
        if identity is None:
            return None
        cache_key = (identity.registry_id, identity.handle,
                     identity.name.full if identity.name else identity.legal_name,
                     identity.country, identity.source)
        cached = self._hosters.get(cache_key)
        if cached is not None:
            facts.sources["hoster_identity"] = cached[1]
            return cached[0]
        match = HosterBook(session, now).row(identity)
        row, how = match.row, match.how
        if match.merged:
            self._hosters.clear()  # rows this run remembered may be gone
        registered = self.registry.get(identity.registry_id) if identity.registry_id else None
        row.dsa_role = decision.dsa_role or row.dsa_role
        # An unregistered hoster's abuse contact is its network's, from RDAP.
        row.abuse = _fit(decision.abuse or facts.network.abuse_email) or row.abuse
        if registered is not None:
            row.asns = list(registered.asns)
            row.cdn = registered.cdn
            row.country = registered.country
        elif facts.asn is not None and facts.asn not in (row.asns or []):
            row.asns = sorted([*(row.asns or []), facts.asn])
        session.flush()
        facts.sources["hoster_identity"] = how
        self._hosters[cache_key] = (row.id, how)
        return row.id


def _network_facts(row: Network, status: str | None = None) -> NetworkFacts:
    return NetworkFacts(row.id, status or row.status, row.name, row.handle, row.org,
                        row.org_country, row.country, row.abuse_email, row.cidr,
                        row.org_handle, row.reseller, row.reseller_handle)


def attribution_row(facts: Facts, check_id: int, case_id: int, now: datetime,
                    hoster_row_id: int | None) -> dict[str, Any]:
    decision = facts.decision
    return {
        "check_id": check_id, "case_id": case_id, "attributed_at": now,
        "hostname": facts.hostname, "cname_chain": facts.cname_chain or None,
        "nameservers": facts.nameservers, "ip": facts.ip, "asn": facts.asn,
        "prefix": facts.prefix, "as_name": _fit(facts.as_name), "as_country": facts.as_country,
        "network_id": facts.network.network_id, "network_name": facts.network.name,
        "network_handle": facts.network.handle, "rdap_org": facts.network.org,
        "rdap_org_country": facts.network.org_country,
        "rdap_country": facts.network.country, "abuse_email": facts.network.abuse_email,
        # A reseller RDAP names only by its handle is still named.
        "rdap_reseller": facts.network.reseller or facts.network.reseller_handle,
        "cdn": facts.cdn.name if facts.cdn else None,
        "cdn_evidence": list(facts.cdn.evidence) if facts.cdn else None,
        "hoster_id": hoster_row_id,
        "hoster": _fit(decision.hoster) if decision else None,
        "hoster_country": decision.country if decision else None,
        "dsa_role": decision.dsa_role if decision else None,
        "jurisdiction": facts.jurisdiction, "dutch": facts.dutch,
        "server_country": facts.server.country,
        "server_country_source": facts.server.source.value if facts.server.source else None,
        "geoip_built_at": facts.server.built_at if facts.server.country else None,
        "sources": facts.sources,
    }


@dataclass
class EnrichResult:
    """What one `enrich()` did. RDAP: HTTP requests sent (redirect hops
    included), lookups that failed by kind (an error status, a timeout, a
    redirect the address guard refused...: the check keeps no holder, or an
    older one), and holders answered from the cache without asking."""

    attributed: int = 0
    batches: int = 0
    rdap_requests: int = 0
    rdap_failures: dict[str, int] = field(default_factory=dict)
    rdap_cache_hits: int = 0

    @property
    def rdap_failed(self) -> int:
        return sum(self.rdap_failures.values())


def enrich(store: Store, attributor: Attributor, *, batch: int | None = None,
           limit: int | None = None,
           progress: Callable[[int, int], None] | None = None) -> EnrichResult:
    """Attribute every check that has none yet; returns what was done."""
    size = batch or attributor.config.enrich_batch
    result = EnrichResult()
    with store.session() as session:
        total = session.scalar(
            select(func.count()).select_from(Check)
            .outerjoin(Attribution, Attribution.check_id == Check.id)
            .where(Attribution.id.is_(None))) or 0
    if limit is not None:
        total = min(total, limit)
    before = attributor.rdap.requests_made if attributor.rdap else 0
    failed_before = Counter(attributor.rdap.failures) if attributor.rdap else Counter()
    hits_before = attributor.rdap_cache_hits
    last_id = 0
    while result.attributed < total:
        take = min(size, total - result.attributed)
        with store.session() as session:
            rows = session.execute(
                select(Check.id, Check.case_id, Check.url, Check.final_url, Check.peer_ip,
                       Check.headers)
                .outerjoin(Attribution, Attribution.check_id == Check.id)
                .where(Attribution.id.is_(None), Check.id > last_id)
                .order_by(Check.id).limit(take)).all()
        if not rows:
            break
        now = datetime.now(UTC)
        # DNS and RDAP outside the write transaction: the store is not held
        # while a registry takes its time.
        targets = [Target(host_of(final_url or url), peer_ip, headers or {},
                          "peer (the address the crawler connected to)")
                   for _, _, url, final_url, peer_ip, headers in rows]
        facts = attributor.facts(targets, now)
        with store.transaction() as session:
            # hoster_row first: it records in the facts' sources how the
            # hoster was matched, which the attribution row keeps.
            hoster_ids = [attributor.hoster_row(session, item, now) for item in facts]
            values = [attribution_row(item, check_id, case_id, now, hoster_id)
                      for (check_id, case_id, *_), item, hoster_id
                      in zip(rows, facts, hoster_ids, strict=True)]
            session.execute(insert(Attribution), values)
            set_attributions_of_record(session, [case_id for _, case_id, *_ in rows])
        last_id = rows[-1][0]
        result.attributed += len(rows)
        result.batches += 1
        if progress is not None:
            progress(result.attributed, total)
    result.rdap_requests = (attributor.rdap.requests_made if attributor.rdap else 0) - before
    if attributor.rdap is not None:
        failed = attributor.rdap.failures - failed_before
        result.rdap_failures = {kind.value: count for kind, count in sorted(failed.items())}
    result.rdap_cache_hits = attributor.rdap_cache_hits - hits_before
    return result
