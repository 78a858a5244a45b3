"""Attribution: who served a check, put together from every layer.

For each check: the host that served it (the final URL's host), its CNAME
chain and zone nameservers (DNS), the address (the peer the crawler actually
connected to, else DNS), ASN and announced prefix (offline BGP table), AS name
and country (AS-names file), the address holder (RDAP, cached per network in
the store), a CDN in front (ASN, CNAMEs, the headers the crawler kept), the
hoster of record and its jurisdiction. Each decided field records its source.

`enrich()` attributes every check that has no attribution yet, in batches of
HOSTWATCH_ENRICH_BATCH, one transaction each: idempotent, and an interrupted
run resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from enrichment import EnrichmentError
from enrichment.cdn import CdnDetection, detect_cdn
from enrichment.dns import Addresses, DnsFailure, Resolver, ZoneServers, is_ip_literal
from enrichment.hosters import HosterDecision, HosterRegistry, hoster_of_record
from enrichment.jurisdiction import jurisdiction
from enrichment.network import AsNames, AsnTable, NetworkInfo, RdapClient
from hostwatch.config import Config
from store import Attribution, Check, Hoster, Network, Store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkFacts:
    """The address holder of one network, as cached in the store."""

    network_id: int | None
    status: str  # ok / not_found / error / offline / none
    name: str | None = None
    handle: str | None = None
    org: str | None = None
    country: str | None = None
    abuse_email: str | None = None
    cidr: str | None = None


@dataclass
class Facts:
    """Everything known about one target; becomes an Attribution row."""

    hostname: str | None
    ip: str | None
    ip_source: str  # peer / dns / given / none
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
    hoster_row_id: int | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``hostwatch whois --json``)."""
        decision = self.decision
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
            "sources": self.sources,
        }


@dataclass(frozen=True)
class Target:
    """What to attribute: a host and/or an address, and the headers it sent."""

    hostname: str | None
    ip: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def host_of(url: str) -> str | None:
    host = urlsplit(url).hostname
    return host.lower() if host else None


def _cache_key(ip: str, prefix: str | None) -> str:
    """The network cache key: the announced prefix, else the single address."""
    if prefix:
        return prefix
    address = ipaddress.ip_address(ip)
    return f"{address}/{address.max_prefixlen}"


class Attributor:
    """Holds the lookup sources; `facts()` attributes targets."""

    def __init__(
        self,
        config: Config,
        *,
        resolver: Resolver | None = None,
        table: AsnTable | None = None,
        names: AsNames | None = None,
        registry: HosterRegistry | None = None,
        rdap: RdapClient | None = None,
    ) -> None:
        self.config = config
        self.resolver = resolver or Resolver(config.nameservers, timeout=config.dns_timeout)
        self.table = table
        self.names = names
        self.registry = registry or HosterRegistry.load(
            user=Path(config.hosters) if config.hosters else None)
        self.rdap = rdap
        self.ttl = timedelta(days=config.rdap_ttl_days)
        # cache key -> what the store holds for it, within this run: one
        # query per network, not one per check.
        self._networks: dict[str, NetworkFacts] = {}

    @classmethod
    def from_config(cls, config: Config) -> Attributor:
        table = AsnTable.load(Path(config.asn_db)) if config.asn_db else None
        names = AsNames.load(Path(config.asnames)) if config.asnames else None
        rdap = None if config.offline else RdapClient.from_config(config)
        return cls(config, table=table, names=names, rdap=rdap)

    # -- DNS ------------------------------------------------------------------

    async def _dns(self, hostnames: Iterable[str]) -> dict[str, tuple[Any, Any]]:
        names = sorted({h for h in hostnames if h and not is_ip_literal(h)})

        async def one(name: str) -> tuple[str, tuple[Any, Any]]:
            return name, (await self.resolver.addresses(name),
                          await self.resolver.zone_nameservers(name))

        results = await asyncio.gather(*(one(name) for name in names))
        return dict(results)

    # -- the layers -------------------------------------------------------------

    def facts(self, session: Session, targets: list[Target],
              now: datetime | None = None) -> list[Facts]:
        """Attribute ``targets`` (DNS for their hosts at once, RDAP cached)."""
        now = now or datetime.now(UTC)
        dns_answers = asyncio.run(self._dns(t.hostname for t in targets if t.hostname))
        return [self._one(session, target, dns_answers.get(target.hostname or ""), now)
                for target in targets]

    def _one(self, session: Session, target: Target, dns_answer: tuple[Any, Any] | None,
             now: datetime) -> Facts:
        ip, ip_source = target.ip, "given" if target.ip else "none"
        facts = Facts(hostname=target.hostname, ip=None, ip_source=ip_source)
        if target.hostname and is_ip_literal(target.hostname) and not ip:
            ip, ip_source = target.hostname.strip("[]"), "url"
        if dns_answer is not None:
            lookup, zone = dns_answer
            if isinstance(lookup, Addresses):
                facts.cname_chain = list(lookup.cname_chain)
                if not ip and lookup.addresses:
                    ip, ip_source = lookup.addresses[0], "dns"
            elif isinstance(lookup, DnsFailure):
                facts.dns_error = lookup.kind.value
            if isinstance(zone, ZoneServers):
                facts.zone, facts.nameservers = zone.zone, list(zone.nameservers)
        facts.ip, facts.ip_source = ip, ip_source
        sources = facts.sources
        if ip:
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
            facts.network = self._network(session, ip, facts.prefix, now)
            if facts.network.status == "ok":
                for name in ("org", "country", "abuse_email"):
                    if getattr(facts.network, name):
                        sources[f"rdap_{name}"] = "rdap"
        detected = detect_cdn(asn=facts.asn, cname_chain=facts.cname_chain,
                              headers=target.headers)
        decision = facts.decision = hoster_of_record(
            asn=facts.asn, as_name=facts.as_name, as_country=facts.as_country,
            rdap_org=facts.network.org, rdap_country=facts.network.country,
            cdn=detected, registry=self.registry)
        if detected is not None:
            facts.cdn = detected
        elif decision.cdn:  # the registry knows the network as a CDN's
            facts.cdn = CdnDetection(decision.cdn,
                                     (f"{decision.sources.get('cdn', 'registry')} "
                                      f"(asn {facts.asn}, org {facts.network.org})",))
        sources["hoster"] = decision.sources.get("hoster", "none")
        sources["hoster_country"] = decision.sources.get("country", "none")
        sources["dsa_role"] = decision.sources.get("dsa_role", "none")
        sources["abuse"] = decision.sources.get("abuse", "none")
        if facts.cdn is not None:
            sources["cdn"] = "; ".join(facts.cdn.evidence)
        place = jurisdiction(decision.country)
        facts.jurisdiction = place.value
        facts.jurisdiction_country = decision.country
        facts.dutch = place.value == "NL"
        sources["jurisdiction"] = ("the hoster of record's country of establishment"
                                   if decision.country else "none")
        return facts

    def _network(self, session: Session, ip: str, prefix: str | None,
                 now: datetime) -> NetworkFacts:
        """The address holder, from the store's cache, else from RDAP."""
        key = _cache_key(ip, prefix)
        known = self._networks.get(key)
        if known is not None:
            return known
        facts = self._network_row(session, ip, key, now)
        if len(self._networks) > 200_000:
            self._networks.clear()
        self._networks[key] = facts
        return facts

    def _network_row(self, session: Session, ip: str, key: str, now: datetime) -> NetworkFacts:
        row = session.scalars(select(Network).where(Network.prefix == key)).first()
        fresh = row is not None and row.fetched_at + self.ttl > now and row.status != "error"
        if row is None or not fresh:
            if self.rdap is None:
                if row is None:
                    return NetworkFacts(None, "offline")
            else:
                row = self._fetch(session, row, key, ip, now)
        assert row is not None
        return NetworkFacts(row.id, row.status, row.name, row.handle, row.org, row.country,
                            row.abuse_email, row.cidr)

    def _fetch(self, session: Session, row: Network | None, key: str, ip: str,
               now: datetime) -> Network:
        assert self.rdap is not None
        if row is None:
            row = Network(prefix=key)
            session.add(row)
        row.fetched_at = now
        row.rdap_url = f"{self.rdap.base_url}/ip/{ip}"
        try:
            info = self.rdap.lookup(ip)
        except EnrichmentError as exc:
            row.status, row.error = "error", str(exc)[:1000]
            logger.warning("RDAP for %s failed: %s", ip, exc)
        else:
            if info is None:
                row.status, row.error = "not_found", None
            else:
                row.status, row.error = "ok", None
                _copy_network(row, info)
        session.flush()
        return row

    # -- hosters ----------------------------------------------------------------

    def hoster_row(self, session: Session, decision: HosterDecision, now: datetime,
                   cache: dict[str, int]) -> int | None:
        """The hosters row of the decision (made or updated), by key."""
        if not decision.hoster:
            return None
        key = decision.hoster_id or f"unregistered:{decision.hoster.lower()}"
        if key in cache:
            return cache[key]
        row = session.scalars(select(Hoster).where(Hoster.key == key)).first()
        registered = self.registry.get(decision.hoster_id) if decision.hoster_id else None
        if row is None:
            row = Hoster(key=key, legal_name=decision.hoster, updated_at=now, asns=[],
                         source="registry" if registered else
                         decision.sources.get("hoster", "rdap"), cdn=False)
            session.add(row)
        row.legal_name = decision.hoster
        row.country = decision.country
        row.dsa_role = decision.dsa_role
        row.abuse = decision.abuse or row.abuse
        if registered is not None:
            row.asns = list(registered.asns)
            row.cdn = registered.cdn
        row.updated_at = now
        session.flush()
        cache[key] = row.id
        return row.id


def _copy_network(row: Network, info: NetworkInfo) -> None:
    row.cidr = info.cidr
    row.start_address = info.start_address
    row.end_address = info.end_address
    row.name = info.name
    row.handle = info.handle
    row.org = info.org
    row.country = info.country
    row.abuse_email = info.abuse_email
    row.rir = info.registry


def attribution_row(facts: Facts, check_id: int, case_id: int, now: datetime,
                    hoster_row_id: int | None) -> dict[str, Any]:
    decision = facts.decision
    return {
        "check_id": check_id, "case_id": case_id, "attributed_at": now,
        "hostname": facts.hostname, "cname_chain": facts.cname_chain or None,
        "nameservers": facts.nameservers, "ip": facts.ip, "asn": facts.asn,
        "prefix": facts.prefix, "as_name": facts.as_name, "as_country": facts.as_country,
        "network_id": facts.network.network_id, "network_name": facts.network.name,
        "network_handle": facts.network.handle, "rdap_org": facts.network.org,
        "rdap_country": facts.network.country, "abuse_email": facts.network.abuse_email,
        "cdn": facts.cdn.name if facts.cdn else None,
        "cdn_evidence": list(facts.cdn.evidence) if facts.cdn else None,
        "hoster_id": hoster_row_id,
        "hoster": decision.hoster if decision else None,
        "hoster_country": decision.country if decision else None,
        "dsa_role": decision.dsa_role if decision else None,
        "jurisdiction": facts.jurisdiction, "dutch": facts.dutch,
        "sources": facts.sources,
    }


@dataclass
class EnrichResult:
    attributed: int = 0
    batches: int = 0
    rdap_requests: int = 0


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
    last_id = 0
    hosters: dict[str, int] = {}
    while result.attributed < total:
        take = min(size, total - result.attributed)
        with store.transaction() as session:
            rows = session.execute(
                select(Check.id, Check.case_id, Check.url, Check.final_url, Check.peer_ip,
                       Check.headers)
                .outerjoin(Attribution, Attribution.check_id == Check.id)
                .where(Attribution.id.is_(None), Check.id > last_id)
                .order_by(Check.id).limit(take)).all()
            if not rows:
                break
            now = datetime.now(UTC)
            targets = [Target(host_of(final_url or url), peer_ip, headers or {})
                       for _, _, url, final_url, peer_ip, headers in rows]
            facts = attributor.facts(session, targets, now)
            for target_facts, (_, _, _, _, peer_ip, _) in zip(facts, rows, strict=True):
                if peer_ip:
                    target_facts.ip_source = "peer"
                    target_facts.sources["ip"] = "peer (the address the crawler connected to)"
            values = []
            for (check_id, case_id, *_), item in zip(rows, facts, strict=True):
                assert item.decision is not None
                hoster_id = attributor.hoster_row(session, item.decision, now, hosters)
                values.append(attribution_row(item, check_id, case_id, now, hoster_id))
            session.execute(insert(Attribution), values)
            last_id = rows[-1][0]
        result.attributed += len(rows)
        result.batches += 1
        if progress is not None:
            progress(result.attributed, total)
    result.rdap_requests = (attributor.rdap.requests_made if attributor.rdap else 0) - before
    return result

