"""RDAP parsing: an RDAP "ip network" answer (JSON) -> `NetworkInfo`, the address holder.

- `parse_rdap`: the network (prefixes, name, handle, type, its own
  country), its holder and the holder's address country, the reseller
  through which the block was registered (where the answer names one), the
  abuse contact and the registry, from the answer's entities and vCards
  (RFC 9083, RFC 7095), walked without trusting their shape.
- `RdapError` / `RdapErrorKind`: how an RDAP lookup gave no usable answer.

Why a module of its own: turning an answer into facts is pure (no I/O, no
clock, no configuration), so it can be read, tested and re-run on a stored
answer without a server; the transport that fetches answers lives in
`enrichment.rdap_client`, which imports this module and never the reverse.
The error type lives here, in the lower of the two, because both raise it:
the parser raises kind INVALID, the client the transport kinds.

Errors, all `EnrichmentError`s::

    EnrichmentError
    └── RdapError       an RDAP request failed; ``kind`` says how (RdapErrorKind)
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# Only ipwhois's helpers: its RDAP class needs an ipwhois Net, which refuses
# non-public addresses (the local test internet lives in 127/8), and at depth 0
# it leaves nested entities (where RIPE and ARIN put the abuse contact) unparsed.
from ipwhois.utils import calculate_cidr, ipv4_lstrip_zeros

from enrichment import EnrichmentError
from kernel.urls import url_host

__all__ = ["NetworkInfo", "RdapError", "RdapErrorKind", "parse_rdap"]


class RdapErrorKind(StrEnum):
    HTTP = "http"  # an error status other than 404
    TIMEOUT = "timeout"  # no (complete) answer within the timeout
    CONNECTION = "connection"  # refused, reset, unresolvable host, broken HTTP
    INVALID = "invalid"  # not JSON, too large, or not an RDAP ip network object
    REDIRECT = "redirect"  # to a non-http(s) URL, a loop, or too many redirects
    REFUSED = "refused"  # the address guard refused the server's or a redirect's address


class RdapError(EnrichmentError):
    """An RDAP request that gave no usable answer."""

    def __init__(self, kind: RdapErrorKind, url: str, detail: str,
                 status: int | None = None) -> None:
        super().__init__(f"RDAP {kind.value} error for {url}: {detail}")
        self.kind = kind
        self.url = url
        self.detail = detail
        self.status = status



# -- RDAP: the address holder ------------------------------------------------------

@dataclass(frozen=True)
class NetworkInfo:
    """The holder of an address block, as its registry's RDAP answer gives it."""

    cidr: str | None  # "85.17.0.0/16"; several joined by ", " for an unaligned range
    start_address: str | None
    end_address: str | None
    name: str | None  # the network's name, e.g. "BT-CORPORATE"
    handle: str | None  # the network's handle, e.g. "NET-74-125-0-0-1"
    org: str | None  # the holder's name (see `parse_rdap` for the rule)
    org_handle: str | None
    # The network object's own ``country`` (where the block is registered);
    # None when the answer gives none (ARIN's never do): never the holder's.
    country: str | None
    abuse_email: str | None
    registry: str | None  # arin / ripencc / apnic / lacnic / afrinic, if recognisable
    net_type: str | None = None  # "ASSIGNED PA", "ALLOCATED PORTABLE", ...
    parent_handle: str | None = None
    source: str = "rdap"
    org_country: str | None = None  # the holder's own address country, if given
    # The third party through which the block was registered (RFC 9083 role
    # "reseller"), where the answer names one: see `parse_rdap` for the rule.
    reseller: str | None = None
    reseller_handle: str | None = None


# ARIN's network objects carry no country; ARIN writes the holder's country as
# a name on the last line of the vCard address label (read into org_country,
# the holder's, never the network's). These are the countries of ARIN's
# service region; other names stay unknown.
_ARIN_COUNTRIES = {
    "UNITED STATES": "US", "CANADA": "CA", "PUERTO RICO": "PR", "ANGUILLA": "AI",
    "ANTARCTICA": "AQ", "ANTIGUA AND BARBUDA": "AG", "BAHAMAS": "BS", "BARBADOS": "BB",
    "BERMUDA": "BM", "BOUVET ISLAND": "BV", "CAYMAN ISLANDS": "KY", "DOMINICA": "DM",
    "GRENADA": "GD", "HEARD ISLAND AND MCDONALD ISLANDS": "HM", "JAMAICA": "JM",
    "MONTSERRAT": "MS", "SAINT BARTHELEMY": "BL", "SAINT KITTS AND NEVIS": "KN",
    "SAINT LUCIA": "LC", "SAINT PIERRE AND MIQUELON": "PM",
    "SAINT VINCENT AND THE GRENADINES": "VC", "TURKS AND CAICOS ISLANDS": "TC",
    "UNITED STATES MINOR OUTLYING ISLANDS": "UM", "VIRGIN ISLANDS, BRITISH": "VG",
    "VIRGIN ISLANDS, U.S.": "VI",
}
_REGISTRIES = {"arin": "arin", "ripe": "ripencc", "apnic": "apnic", "lacnic": "lacnic",
               "afrinic": "afrinic"}
_CODE = re.compile(r"[A-Z]{2}")
# RFC 9083's object classes: the ones an error message may name.
_OBJECT_CLASSES = frozenset({"domain", "ip network", "autnum", "nameserver", "entity"})


@dataclass(frozen=True)
class _Entity:
    handle: str | None
    roles: frozenset[str]
    depth: int  # 0: listed by the network itself; 1: inside such an entity; ...
    name: str | None  # vCard fn
    kind: str | None  # vCard kind: org / group / individual
    emails: tuple[str, ...]
    country: str | None  # from its vCard address

    @property
    def real_name(self) -> str | None:
        """The fn, unless it merely repeats the handle (AFRINIC's "ORG-VSA1-AFRINIC")."""
        if self.name and self.name.casefold() != (self.handle or "").casefold():
            return self.name
        return None


def parse_rdap(raw: Mapping[str, Any], *, source: str = "RDAP answer") -> NetworkInfo:
    """The address holder in an RDAP "ip network" answer (RFC 9083).

    Entities are walked breadth-first, nested ones included (RIPE and ARIN put
    the abuse contact inside the holder's entity). Rules:

    - org: the entity with role ``registrant`` -- one with a real name (an
      ``fn`` that is not just its handle) before one without, kind ``org``
      before a person, the network's own before nested ones. AFRINIC answers
      give no roles at all: then a role-less entity of kind ``org`` is the
      holder. No registrant, no org (APNIC answers name only the NIR's and
      technical contacts, which are not the holder).
    - reseller: the entity with role ``reseller`` ("a third party through
      which the registration was conducted", RFC 9083 section 10.2.4) -- the
      network's own before nested ones, whatever their names (a reseller
      named inside another entity, the holder's say, is that entity's, not
      the network's); then one with a name we keep before one without; then
      kind ``org`` before others. Its real name, and its handle as
      ``reseller_handle``. Privacy: a reseller of vCard kind ``individual``
      (a natural person) is never kept by name, only by its handle (and so
      counts as nameless when choosing). None when no entity has the role
      (no real answer of a regional registry we hold names one; the holder
      stays the registrant either way).
    - abuse_email: the first e-mail of the first entity with role ``abuse``;
      None when the answer names no abuse contact.
    - country: the network object's own ``country``, and nothing else: None
      when the answer has none (ARIN's network objects never have one). It
      stands in for the server's location (`enrichment.geo`), so the
      holder's postal address is never substituted for it.
    - org_country: the holder's vCard address (``cc`` parameter, the
      structured country field if it is a code, or an ARIN-region country
      name on the label's last line); what the hoster of record's
      establishment follows.

    Raises `RdapError` (kind INVALID) when ``raw`` is no ip network object.
    """
    if not isinstance(raw, Mapping):
        raise RdapError(RdapErrorKind.INVALID, source, "not a JSON object")
    # The server wrote the error's title and the class name: the message (logged,
    # and cached in networks.error) names only what RFC 9083 defines.
    if "errorCode" in raw:
        code = raw.get("errorCode")
        said = f"errorCode {code}" if type(code) is int and 0 <= code < 1000 else \
            "an errorCode that is not an HTTP status"
        raise RdapError(RdapErrorKind.INVALID, source, f"an RDAP error object ({said})")
    kind = raw.get("objectClassName")
    if kind is not None and kind != "ip network":
        named = f"{kind!r}" if isinstance(kind, str) and kind in _OBJECT_CLASSES \
            else "not an RDAP object class"
        raise RdapError(RdapErrorKind.INVALID, source,
                        f"objectClassName is {named}, not 'ip network'")
    start, end = _address(raw.get("startAddress")), _address(raw.get("endAddress"))
    if start is None or end is None:
        raise RdapError(RdapErrorKind.INVALID, source, "no valid startAddress/endAddress")
    entities = _entities(raw.get("entities"))
    holder = _holder(entities)
    reseller = _reseller(entities)
    abuse = next((e.emails[0] for e in entities if "abuse" in e.roles and e.emails), None)
    return NetworkInfo(
        cidr=_cidr(raw.get("cidr0_cidrs"), start, end),
        start_address=start, end_address=end,
        name=_text(raw.get("name")), handle=_text(raw.get("handle")),
        org=holder.real_name if holder else None,
        org_handle=holder.handle if holder else None,
        country=_code(raw.get("country")), abuse_email=abuse, registry=_registry(raw),
        net_type=_text(raw.get("type")), parent_handle=_text(raw.get("parentHandle")),
        org_country=holder.country if holder else None,
        reseller=_reseller_name(reseller) if reseller else None,
        reseller_handle=reseller.handle if reseller else None,
    )


def _text(value: Any, *, lines: bool = False) -> str | None:
    """A string of the answer as clean text: control and format characters
    (NUL, ESC, BEL, C1, bidi overrides...) are dropped, tabs and line breaks
    become spaces (kept as line breaks with ``lines``). The registry's text
    goes into the store (PostgreSQL refuses NUL), terminals and packs."""
    if not isinstance(value, str):
        return None
    if value.isprintable():  # the common case, fast
        return value.strip() or None
    kept = []
    for char in value:
        if char == "\n" and lines:
            kept.append(char)
        elif char in "\t\r\n\v\f\x85\u2028\u2029":
            kept.append(" ")
        elif unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn"):
            kept.append(char)
    return "".join(kept).strip() or None


def _code(value: Any) -> str | None:
    text = _text(value)
    return text.upper() if text and _CODE.fullmatch(text.upper()) else None


def _address(value: Any) -> str | None:
    """An address as RIRs write it: "62.239.237.0/32" (RIPE), "074.125.000.000"
    (ARIN, zero-padded), "2001:4860:0000:...:0000" or upper-case IPv6."""
    text = (_text(value) or "").partition("/")[0]
    if "." in text and ":" not in text:
        text = ipv4_lstrip_zeros(text)
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _cidr(cidr0: Any, start: str, end: str) -> str | None:
    """The registry's own cidr0 prefixes, else the range summarised as prefixes."""
    prefixes = []
    for item in cidr0 if isinstance(cidr0, list) else ():
        if not isinstance(item, Mapping):
            continue
        try:
            prefix = item.get("v4prefix") or item.get("v6prefix")
            prefixes.append(str(ipaddress.ip_network(f"{prefix}/{item['length']}", strict=False)))
        except (KeyError, ValueError):
            continue
    if not prefixes:
        try:
            prefixes = calculate_cidr(start, end)
        except (ValueError, TypeError):  # start after end, or IPv4 to IPv6
            return None
    return ", ".join(prefixes) or None


def _entities(top: Any) -> list[_Entity]:
    """Every entity in the answer, breadth-first (the network's own first)."""
    found: list[_Entity] = []
    level = [e for e in top if isinstance(e, Mapping)] if isinstance(top, list) else []
    depth = 0
    while level and depth < 10:
        nested: list[Mapping[str, Any]] = []
        for item in level:
            found.append(_entity(item, depth))
            children = item.get("entities")
            if isinstance(children, list):
                nested.extend(e for e in children if isinstance(e, Mapping))
        level, depth = nested, depth + 1
    return found


def _entity(item: Mapping[str, Any], depth: int) -> _Entity:
    roles = item.get("roles")
    name = kind = country = None
    emails: list[str] = []
    for prop, params, value in _vcard(item.get("vcardArray")):
        if prop == "fn" and name is None:
            name = _text(value)
        elif prop == "kind" and kind is None:
            kind = (_text(value) or "").lower() or None
        elif prop == "email" and (email := _text(value)) and email not in emails:
            emails.append(email)
        elif prop == "adr" and country is None:
            country = _adr_country(params, value)
    return _Entity(
        handle=_text(item.get("handle")),
        roles=frozenset(r.lower() for r in roles if isinstance(r, str))
        if isinstance(roles, list) else frozenset(),
        depth=depth, name=name, kind=kind, emails=tuple(emails), country=country)


def _vcard(value: Any) -> list[tuple[str, Mapping[str, Any], Any]]:
    """The properties of a jCard (``["vcard", [[name, params, type, value], ...]]``)."""
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], list)):
        return []
    props = []
    for prop in value[1]:
        if isinstance(prop, list) and len(prop) >= 4 and isinstance(prop[0], str):
            params = prop[1] if isinstance(prop[1], Mapping) else {}
            props.append((prop[0].lower(), params, prop[3]))
    return props


def _adr_country(params: Mapping[str, Any], value: Any) -> str | None:
    code = _code(params.get("cc"))  # RFC 8605
    if code is None and isinstance(value, list) and len(value) >= 7:
        code = _code(value[6])  # the structured "country name" field, as LACNIC fills it
    label = _text(params.get("label"), lines=True)
    if code is None and label:
        code = _ARIN_COUNTRIES.get(label.splitlines()[-1].strip().upper())
    return code


def _holder(entities: list[_Entity]) -> _Entity | None:
    candidates = [e for e in entities if "registrant" in e.roles]
    if not candidates:
        candidates = [e for e in entities if not e.roles and e.kind == "org"]
    if not candidates:
        return None
    # min() keeps the first of equals: document order breaks ties.
    return min(candidates, key=lambda e: (e.real_name is None, e.kind != "org", e.depth))


def _reseller_name(entity: _Entity) -> str | None:
    """The name a reseller is kept by: none for a natural person (privacy)."""
    return None if entity.kind == "individual" else entity.real_name


def _reseller(entities: list[_Entity]) -> _Entity | None:
    candidates = [e for e in entities if "reseller" in e.roles]
    # Depth first: a reseller nested in another entity (the holder's, say) is
    # that entity's, not the network's own, however well it is named.
    return min(candidates,
               key=lambda e: (e.depth, _reseller_name(e) is None, e.kind != "org"),
               default=None)


def _registry(raw: Mapping[str, Any]) -> str | None:
    """The RIR, from the whois server (port43) or the answer's own links."""
    hosts = [_text(raw.get("port43")) or ""]
    links = raw.get("links")
    for link in links if isinstance(links, list) else ():
        if isinstance(link, Mapping) and link.get("rel") == "self":
            # The server's text: read as a browser would, None when it is no URL.
            hosts.append(url_host(str(link.get("href") or link.get("value") or "")) or "")
    for host in hosts:
        for label, registry in _REGISTRIES.items():
            if host == f"{label}.net" or host.endswith(f".{label}.net"):
                return registry
    return None
