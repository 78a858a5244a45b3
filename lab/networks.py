"""Test networks: test ASNs, their loopback address blocks and the files describing them.

A :class:`Network` is what attribution sees from outside: an address block
announced by an AS (the BGP view: prefix and origin ASN, written in pyasn's
text format) and registered to an address holder (the RDAP view: network
name, org, country, abuse contact). The two views may disagree on purpose,
as they do on the real internet: a reseller's block inside a Dutch AS, or a
US company's block registered in NL.

Address plan (all inside 127.0.0.0/8, all IPv4):

- 127.0.0.0/16 — hosts without a network, from 127.0.0.10 up (in no ASN);
- 127.1.0.0/16 — the default networks of :data:`DEFAULT_NETWORKS`, one /24 each;
- 127.2.0.0 and up — networks added by tests without an explicit prefix,
  one /24 each in order of addition.

Inside a block, hosts get addresses from the 10th one up, skipping .0 and .255.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
PLAIN_HOSTS = ipaddress.IPv4Network("127.0.0.0/16")
"""Hosts added without a network live here (no ASN announces it)."""
CUSTOM_NETWORKS_FROM = ipaddress.IPv4Address("127.2.0.0")
"""The first /24 handed to a network added without an explicit prefix."""
FIRST_OFFSET = 10
"""A block's first host address is its 10th (127.x.y.10), like the plain hosts."""

Mimic = Literal["cloudflare", "fastly", "cloudfront"]


@dataclass(frozen=True, slots=True)
class Network:
    """One test network: an address block, the AS announcing it and its RDAP holder.

    ``as_name`` and ``as_country`` are the AS's entry in the asnames file
    (``"HANDLE Org name, CC"``); ``netname``, ``org``, ``country`` and
    ``abuse`` are what RDAP says about the block. ``cdn`` marks a CDN's
    network (the hoster registry of the tests should call its ASN a CDN).
    """

    asn: int
    as_name: str
    as_country: str
    netname: str
    org: str
    country: str
    abuse: str
    prefix: ipaddress.IPv4Network
    cdn: bool = False
    org_country: str = ""
    """Where the holder ``org`` is established (its RDAP address); default ``country``."""
    server_country: str = ""
    """Where the block's servers stand (the geolocation file, GEOIP_FILE);
    default ``country``."""
    reseller: str = ""
    """The third party through which the block was registered: RDAP names it
    in an entity with role ``reseller`` (RFC 9083); "" for none."""

    @property
    def handle(self) -> str:
        """The AS handle: the first word of the AS name (e.g. ``DUTCHHOST-NL``)."""
        return self.as_name.split()[0]

    @property
    def asnames_entry(self) -> str:
        """The AS's line in the asnames file: ``"HANDLE Org name, CC"``."""
        return f"{self.as_name}, {self.as_country}"

    @property
    def first_ip(self) -> str:
        return str(self.prefix.network_address + FIRST_OFFSET)

    @property
    def last_ip(self) -> str:
        return str(self.prefix.broadcast_address)

    def __contains__(self, ip: object) -> bool:
        try:
            return ipaddress.ip_address(str(ip)) in self.prefix
        except ValueError:
            return False


@dataclass(frozen=True, slots=True)
class NetworkSpec:
    """The arguments of ``TestInternet.add_network``, for shipping defaults."""

    asn: int
    name: str
    country: str
    org: str
    abuse: str
    prefix: str | None = None
    cdn: bool = False
    rdap_name: str | None = None
    rdap_country: str | None = None
    org_country: str | None = None
    server_country: str | None = None
    reseller: str | None = None
    note: str = field(default="", compare=False)


DEFAULT_NETWORKS: tuple[NetworkSpec, ...] = (
    NetworkSpec(64501, "DUTCHHOST-NL Dutch Test Hosting B.V.", "NL",
                "Dutch Test Hosting B.V.", "abuse@dutchhost.test", "127.1.1.0/24",
                note="Dutch hoster"),
    NetworkSpec(64502, "POLDERHOST-NL Polder Servers B.V.", "NL",
                "Polder Servers B.V.", "abuse@polderservers.test", "127.1.2.0/24",
                note="Dutch hoster"),
    NetworkSpec(64503, "RHEINHOST-DE Rhein Test Hosting GmbH", "DE",
                "Rhein Test Hosting GmbH", "abuse@rheinhost.test", "127.1.3.0/24",
                note="German hoster (EU, not NL)"),
    NetworkSpec(64504, "LIBERTYHOST-US Liberty Test Hosting LLC", "US",
                "Liberty Test Hosting LLC", "abuse@libertyhost.test", "127.1.4.0/24",
                note="US hoster (outside the EU)"),
    NetworkSpec(64505, "TESTCDN TestCDN Inc.", "US",
                "TestCDN Inc.", "abuse@testcdn.test", "127.1.5.0/24", cdn=True,
                note="CDN (edge addresses of add_cdn_site)"),
    NetworkSpec(64506, "TRANSATLANTIC-US Transatlantic Test Hosting Inc.", "US",
                "Transatlantic Test Hosting Inc.", "abuse@transatlantic.test", "127.1.6.0/24",
                rdap_name="TRANSATLANTIC-AMS", rdap_country="NL", org_country="US",
                note="US company, AS in the US, address block registered in NL"),
    NetworkSpec(64502, "POLDERHOST-NL Polder Servers B.V.", "NL",
                "Offshore Test Reseller Ltd.", "abuse@offshore-reseller.test", "127.1.7.0/24",
                rdap_name="OFFSHORE-RESELLER", rdap_country="SC", org_country="SC",
                reseller="Island Test Brokers Ltd.",
                note="a Seychelles reseller's block inside the Dutch AS64502, registered "
                     "through a broker (RDAP role reseller)"),
    NetworkSpec(64507, "GRENSHOST-NL Grens Test Hosting B.V.", "NL",
                "Grens Test Hosting B.V.", "abuse@grenshost.test", "127.1.8.0/24",
                rdap_name="GRENSHOST-FRA", rdap_country="DE", org_country="NL",
                server_country="DE",
                note="Dutch company, AS in NL, its block's servers stand in Germany (DE)"),
)
"""The networks every TestInternet starts with (unless given ``networks=()``)."""


def make_network(
    spec: NetworkSpec, taken: Iterable[Network], next_free: ipaddress.IPv4Address
) -> Network:
    """Check ``spec`` against the networks already ``taken`` and build the Network.

    Without an explicit prefix, the block is the first free /24 at or after
    ``next_free``.
    """
    taken = list(taken)
    if not 0 < spec.asn < 2**32:
        raise ValueError(f"ASN out of range: {spec.asn}")
    if not spec.name.split():
        raise ValueError("the AS name must start with a handle, e.g. 'EXAMPLE-NL Example B.V.'")
    for country in (spec.country, spec.rdap_country, spec.org_country, spec.server_country):
        if country is not None and (len(country) != 2 or not country.isalpha()):
            raise ValueError(f"country must be a two-letter code, got {country!r}")
    for other in taken:
        if other.asn == spec.asn and other.as_name != spec.name:
            raise ValueError(f"AS{spec.asn} is already named {other.as_name!r}")
    netname = (spec.rdap_name or spec.name.split()[0]).upper()
    if any(other.netname == netname for other in taken):
        raise ValueError(f"a network named {netname} exists; pass rdap_name=... to tell them apart")
    if spec.prefix is not None:
        prefix = ipaddress.IPv4Network(spec.prefix)
        if prefix.prefixlen < 16 or prefix.prefixlen > 24:
            raise ValueError(f"prefix must be a /16 to /24, got {prefix}")
        if not prefix.subnet_of(LOOPBACK) or prefix.overlaps(PLAIN_HOSTS):
            raise ValueError(f"prefix must be inside 127.0.0.0/8 and outside {PLAIN_HOSTS}")
    else:
        prefix = _free_block(next_free, [other.prefix for other in taken])
    for other in taken:
        if other.prefix.overlaps(prefix):
            raise ValueError(f"{prefix} overlaps {other.prefix} of {other.netname}")
    return Network(
        asn=spec.asn,
        as_name=spec.name,
        as_country=spec.country.upper(),
        netname=netname,
        org=spec.org,
        country=(spec.rdap_country or spec.country).upper(),
        abuse=spec.abuse,
        prefix=prefix,
        cdn=spec.cdn,
        org_country=(spec.org_country or spec.rdap_country or spec.country).upper(),
        server_country=(spec.server_country or spec.rdap_country or spec.country).upper(),
        reseller=spec.reseller or "",
    )


def _free_block(
    start: ipaddress.IPv4Address, taken: list[ipaddress.IPv4Network]
) -> ipaddress.IPv4Network:
    block = ipaddress.IPv4Network(f"{start}/24", strict=False)
    while any(block.overlaps(other) for other in taken):
        block = ipaddress.IPv4Network(f"{block.broadcast_address + 1}/24")
    if not block.subnet_of(LOOPBACK):
        raise ValueError("out of loopback address blocks")
    return block


class AddressPool:
    """Hands out the addresses of one block in order: the 10th up, skipping .0 and .255."""

    def __init__(self, block: ipaddress.IPv4Network) -> None:
        self.block = block
        self._next = block.network_address + FIRST_OFFSET

    def peek(self) -> str | None:
        """The address take() would return next; None when the block is full."""
        ip = self._next
        while ip.packed[3] in (0, 255):  # .0 and .255 confuse some tools
            ip += 1
        return str(ip) if ip in self.block else None

    def take(self) -> str:
        ip = self.peek()
        if ip is None:
            raise ValueError(f"out of loopback addresses in {self.block}")
        self._next = ipaddress.IPv4Address(ip) + 1
        return ip


# -- files ------------------------------------------------------------------


def asn_table_text(networks: Iterable[Network]) -> str:
    """A pyasn text table (``prefix<TAB>asn`` lines under a ``;`` header), sorted by prefix."""
    rows = sorted({(net.prefix, net.asn) for net in networks})
    now = datetime.now(UTC).strftime("%a %b %d %H:%M:%S %Y")
    header = [
        "; IP-ASN32-DAT file",
        "; Original file : hostwatch lab test networks",
        f"; Converted on  : {now}",
        f"; Prefixes      : {len(rows)}",
        "; ",
    ]
    return "\n".join([*header, *(f"{prefix}\t{asn}" for prefix, asn in rows)]) + "\n"


def asnames_text(networks: Iterable[Network]) -> str:
    """The asnames JSON: ``{"64501": "DUTCHHOST-NL Dutch Test Hosting B.V., NL", ...}``."""
    names: dict[str, str] = {}
    for net in networks:
        names.setdefault(str(net.asn), net.asnames_entry)
    return json.dumps(names, indent=1, sort_keys=True) + "\n"


ASN_TABLE_FILE = "ipasn.dat"
ASNAMES_FILE = "asnames.json"
GEOIP_FILE = "geoip.mmdb"


def write_network_files(directory: Path, networks: Iterable[Network]) -> None:
    """Write (or replace) ASN_TABLE_FILE, ASNAMES_FILE and GEOIP_FILE in ``directory``."""
    networks = list(networks)
    directory.mkdir(parents=True, exist_ok=True)
    for file_name, text in (
        (ASN_TABLE_FILE, asn_table_text(networks)),
        (ASNAMES_FILE, asnames_text(networks)),
    ):
        partial = directory / (file_name + ".part")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, directory / file_name)  # readers never see half a file
    partial = directory / (GEOIP_FILE + ".part")
    write_geoip_file(partial, networks)
    os.replace(partial, directory / GEOIP_FILE)


def write_geoip_file(path: Path, networks: Iterable[Network]) -> None:
    """A geolocation database in the MaxMind DB format (GeoLite2-Country's
    layout: ``country.iso_code``) placing each network where its servers
    stand, written with mmdb-writer."""
    from mmdb_writer import MMDBWriter  # only the lab writes MMDB files
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="Lab-GeoIP-Country",
                        description="hostwatch lab: where the test networks' servers stand")
    for network in networks:
        writer.insert_network(IPSet([str(network.prefix)]),
                              {"country": {"iso_code": network.server_country}})
    writer.to_db_file(str(path))


# -- CDN headers --------------------------------------------------------------


def cdn_headers(edge_name: str, mimic: Mimic | None = None) -> dict[str, str]:
    """Response headers of a CDN edge: TestCDN's own, or a real CDN's look-alikes.

    Values are derived from ``edge_name``, so they are stable across runs.
    """
    digest = hashlib.sha256(edge_name.encode()).hexdigest()
    if mimic is None:
        return {"Server": "TestCDN", "X-TestCDN-Id": f"{digest[:16]}-AMS"}
    if mimic == "cloudflare":
        return {"Server": "cloudflare", "CF-RAY": f"{digest[:16]}-AMS", "CF-Cache-Status": "HIT"}
    if mimic == "fastly":
        return {
            "X-Served-By": f"cache-ams{int(digest[:5], 16) % 100000:05d}-AMS",
            "X-Cache": "HIT",
            "Via": "1.1 varnish",
        }
    if mimic == "cloudfront":
        return {
            "X-Amz-Cf-Id": digest[:56],
            "X-Amz-Cf-Pop": "AMS58-P1",
            "X-Cache": "Hit from cloudfront",
            "Via": f"1.1 {digest[:32]}.cloudfront.net (CloudFront)",
        }
    raise ValueError(f"unknown CDN to mimic: {mimic!r}")
