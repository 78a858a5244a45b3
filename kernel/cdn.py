"""Is a CDN in front of this host? Decided from the ASN, the CNAME chain and headers.

A case served through a CDN says nothing about who stores the material: the
CDN relays it from an origin we cannot see. So detection only names the CDN;
`enrichment.hosters.hoster_of_record` then marks the origin hoster unknown.

The rules are data (`RULES`, below). Each rule is one sign of one CDN:

* ``asn``    - the address we connected to is announced by one of these ASNs;
* ``cname``  - some name in the CNAME chain is, or ends in, this domain;
* ``header`` - the response has this header (names lower-case; a name ending
  in ``*`` is a prefix), optionally with a value matching a regular expression
  (values as served, so patterns say whether case matters).

and has a strength:

* ``STRONG`` - enough on its own (``cf-ray``, a ``*.cloudfront.net`` CNAME,
  Cloudflare's AS13335);
* ``WEAK``   - only counts together with a second, different sign of the same
  CDN. ``via: 1.1 varnish`` is any Varnish, not only Fastly; Amazon's and
  Google's ASNs host origin servers as well as their CDNs.

An ASN is a STRONG sign only for ASNs that carry nothing but CDN edges
(Cloudflare, Fastly, Akamai's CDN networks). Linode, although owned by Akamai
since 2022, hosts origins and is not here. Generic headers (``x-cache: HIT``,
``age``) are no sign of any CDN in particular and have no rule.

When signs of several CDNs are present (CDNs chained behind each other), the
one we talked to wins: the CDN whose ASN matched, else the one whose CNAME
comes first in the chain, else the one with most evidence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum

__all__ = [
    "CDN_HEADERS",
    "CDN_HEADER_PREFIXES",
    "RULES",
    "CdnDetection",
    "Kind",
    "Rule",
    "Strength",
    "detect_cdn",
    "is_cdn_header",
]

_EVIDENCE_VALUE_CHARS = 80


class Kind(StrEnum):
    ASN = "asn"
    CNAME = "cname"
    HEADER = "header"


class Strength(IntEnum):
    WEAK = 1
    STRONG = 2


@dataclass(frozen=True)
class Rule:
    """One sign of one CDN; see the module docstring."""

    cdn: str
    kind: Kind
    strength: Strength
    asns: frozenset[int] = frozenset()
    suffix: str = ""  # cname rules
    header: str = ""  # header rules; a trailing "*" makes it a prefix
    value: re.Pattern[str] | None = None  # header rules; None = presence is enough


@dataclass(frozen=True)
class CdnDetection:
    """The CDN in front of a host and every sign that gave it away, strongest first."""

    name: str
    evidence: tuple[str, ...]


def _asn(cdn: str, *asns: int, strength: Strength = Strength.STRONG) -> Rule:
    return Rule(cdn, Kind.ASN, strength, asns=frozenset(asns))


def _cname(cdn: str, suffix: str, strength: Strength = Strength.STRONG) -> Rule:
    return Rule(cdn, Kind.CNAME, strength, suffix=suffix)


def _header(cdn: str, name: str, value: str | None = None,
            strength: Strength = Strength.STRONG) -> Rule:
    return Rule(cdn, Kind.HEADER, strength, header=name,
                value=re.compile(value) if value is not None else None)


STRONG, WEAK = Strength.STRONG, Strength.WEAK
CLOUDFLARE = "Cloudflare"
AKAMAI = "Akamai"
FASTLY = "Fastly"
CLOUDFRONT = "Amazon CloudFront"
GOOGLE_CDN = "Google Cloud CDN"
BUNNY = "Bunny CDN"
STACKPATH = "StackPath"

RULES: tuple[Rule, ...] = (
    # Cloudflare: every response carries cf-ray. AS209242 is Cloudflare's second
    # anycast network (allocated after 2014, so not in the 2014 AS-names file).
    _header(CLOUDFLARE, "cf-ray"),
    _header(CLOUDFLARE, "cf-cache-status"),
    _header(CLOUDFLARE, "server", r"(?i)^cloudflare"),
    _cname(CLOUDFLARE, "cdn.cloudflare.net"),
    _asn(CLOUDFLARE, 13335, 209242),
    # Akamai: AkamaiGHost is the edge server; akamai-grn and x-akamai-* are
    # added by the edge. The ASNs are Akamai's CDN networks as named in the 2014
    # AS-names file (Akamai Technologies, Inc. and Akamai International B.V.).
    _header(AKAMAI, "server", r"(?i)^akamaighost"),
    _header(AKAMAI, "akamai-grn"),
    _header(AKAMAI, "x-akamai-*"),
    _header(AKAMAI, "x-cache", r"(?i)akamaighost"),
    _cname(AKAMAI, "edgekey.net"),
    _cname(AKAMAI, "edgesuite.net"),
    _cname(AKAMAI, "akamaiedge.net"),
    _cname(AKAMAI, "akamaized.net"),
    _cname(AKAMAI, "akamaihd.net"),
    _cname(AKAMAI, "akamai.net"),
    _asn(AKAMAI, 20940, 16625, 16702, 12222, 18680, 18717, 20189, 21342, 21399, 22207,
         23454, 23455, 30675, 31107, 31108, 31109, 31110, 33905, 34164, 35204, 35993,
         35994, 36183, 39836, 43639),
    # Fastly: x-served-by names the cache nodes ("cache-ams21022-AMS", several
    # when shielded). Varnish is what Fastly runs, but so do many origins.
    _header(FASTLY, "x-fastly-request-id"),
    _header(FASTLY, "x-served-by", r"^cache-[a-z0-9-]+-[A-Z]{3}(,\s*cache-[a-z0-9-]+-[A-Z]{3})*$"),
    _cname(FASTLY, "fastly.net"),
    _cname(FASTLY, "fastlylb.net"),
    _asn(FASTLY, 54113),
    _header(FASTLY, "via", r"(?i)\bvarnish\b", strength=WEAK),
    # Amazon CloudFront: AS16509/AS14618 also carry EC2 origins, so they only
    # add evidence to a CloudFront sign.
    _header(CLOUDFRONT, "x-amz-cf-id"),
    _header(CLOUDFRONT, "x-amz-cf-pop"),
    _header(CLOUDFRONT, "via", r"(?i)\(cloudfront\)"),
    _header(CLOUDFRONT, "x-cache", r"(?i)\bfrom cloudfront\b"),
    _cname(CLOUDFRONT, "cloudfront.net"),
    _asn(CLOUDFRONT, 16509, 14618, strength=WEAK),
    # Google Cloud CDN sits in Google's load balancer, which says "via: 1.1
    # google" with or without the CDN; AS15169/AS396982 also carry Google
    # Cloud's origin servers. Only both together count.
    _header(GOOGLE_CDN, "via", r"(?i)\b1\.1 google\b", strength=WEAK),
    _asn(GOOGLE_CDN, 15169, 396982, strength=WEAK),
    # Bunny CDN (BunnyWay d.o.o.): "server: BunnyCDN-DE1-1234" and its cdn-* headers.
    _header(BUNNY, "server", r"(?i)^bunnycdn"),
    _header(BUNNY, "cdn-pullzone"),
    _header(BUNNY, "cdn-uid"),
    _header(BUNNY, "cdn-requestid", strength=WEAK),
    _header(BUNNY, "cdn-cache", strength=WEAK),
    _cname(BUNNY, "b-cdn.net"),
    # StackPath, which took over Highwinds (x-hw, hwcdn.net) and MaxCDN
    # (NetDNA). No ASN rule: StackPath also sold servers (edge compute).
    _header(STACKPATH, "x-hw"),
    _header(STACKPATH, "server", r"(?i)^netdna"),
    _cname(STACKPATH, "stackpathdns.com"),
    _cname(STACKPATH, "stackpathcdn.com"),
    _cname(STACKPATH, "hwcdn.net"),
    _cname(STACKPATH, "netdna-cdn.com"),
    _cname(STACKPATH, "netdna-ssl.com"),
)

# Header names the rules read: the crawler must keep these with each check.
CDN_HEADERS: frozenset[str] = frozenset(
    r.header for r in RULES if r.kind is Kind.HEADER and not r.header.endswith("*"))
# ...and every header whose name starts with one of these.
CDN_HEADER_PREFIXES: tuple[str, ...] = tuple(sorted(
    r.header[:-1] for r in RULES if r.kind is Kind.HEADER and r.header.endswith("*")))


def is_cdn_header(name: str) -> bool:
    """True when CDN detection reads the response header ``name``."""
    name = name.lower()
    return name in CDN_HEADERS or name.startswith(CDN_HEADER_PREFIXES)


@dataclass(frozen=True)
class _Sign:
    rule: Rule
    evidence: str
    cname_position: int | None = None


def _short(value: str) -> str:
    value = " ".join(value.split())
    if len(value) > _EVIDENCE_VALUE_CHARS:
        return value[:_EVIDENCE_VALUE_CHARS - 1] + "…"
    return value


def _norm_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _match(rule: Rule, asn: int | None, names: Sequence[str],
           headers: Mapping[str, str]) -> list[_Sign]:
    if rule.kind is Kind.ASN:
        return [_Sign(rule, f"asn {asn}")] if asn in rule.asns else []
    if rule.kind is Kind.CNAME:
        for position, name in enumerate(names):
            if name == rule.suffix or name.endswith("." + rule.suffix):
                return [_Sign(rule, f"cname {name}", position)]
        return []
    signs = []
    prefix = rule.header[:-1] if rule.header.endswith("*") else None
    for name, value in headers.items():
        if (name.startswith(prefix) if prefix is not None else name == rule.header):
            if rule.value is None:
                signs.append(_Sign(rule, f"header {name}"))
            elif rule.value.search(value):
                signs.append(_Sign(rule, f"header {name}: {_short(value)}"))
    return signs


_RULE_ASNS = frozenset(asn for rule in RULES if rule.kind is Kind.ASN for asn in rule.asns)


def _decides(signs: list[_Sign]) -> bool:
    """One strong sign, or two weak signs of different kinds."""
    if any(s.rule.strength is Strength.STRONG for s in signs):
        return True
    return len({s.rule.kind for s in signs}) >= 2


def detect_cdn(*, asn: int | None, cname_chain: Sequence[str],
               headers: Mapping[str, str]) -> CdnDetection | None:
    """The CDN in front of a host, or None when no CDN's signs are enough.

    ``cname_chain`` is the chain from the queried name on (trailing dots and
    case do not matter); ``headers`` are the response headers as kept by the
    crawler (names are compared lower-case).
    """
    if not cname_chain and not headers and asn not in _RULE_ASNS:
        return None  # nothing any rule could match (most addresses of a big run)
    names = [_norm_name(n) for n in cname_chain]
    lowered = {name.lower(): value for name, value in headers.items()}
    by_cdn: dict[str, list[_Sign]] = {}
    for rule in RULES:
        by_cdn.setdefault(rule.cdn, []).extend(_match(rule, asn, names, lowered))
    candidates = [(cdn, signs) for cdn, signs in by_cdn.items() if signs and _decides(signs)]
    if not candidates:
        return None

    def outermost(item: tuple[str, list[_Sign]]) -> tuple[bool, int, int]:
        signs = item[1]
        asn_matched = any(s.rule.kind is Kind.ASN for s in signs)
        positions = [s.cname_position for s in signs if s.cname_position is not None]
        return (not asn_matched, min(positions, default=len(names)), -len(signs))

    cdn, signs = min(candidates, key=outermost)  # min() keeps table order on ties
    ordered = sorted(signs, key=lambda s: -s.rule.strength)  # stable: table order within
    return CdnDetection(cdn, tuple(dict.fromkeys(s.evidence for s in ordered)))
