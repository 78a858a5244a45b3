"""Network layers of attribution: who routes an address, and who holds it.

- `AsnTable`: IP -> (ASN, announced prefix), from an offline BGP prefix table
  in pyasn's text format (``prefix<TAB>asn`` lines, ``;`` comments, plain or
  gzip), looked up by pyasn's C radix tree.
- `AsNames`: ASN -> `AsName` (handle, name, country), from pyasn's AS-names
  JSON (``{"60781": "LEASEWEB-NL LeaseWeb Netherlands B.V., NL"}``).
- `parse_rdap`: an RDAP "ip network" answer -> `NetworkInfo`, the address holder.
- `RdapClient`: ``GET {base_url}/ip/{ip}``; no cache (the store caches per
  network), no proxy from the environment, an ``offline`` switch; every
  connection (redirects included) behind the crawl's address guard
  (`outbound.http`).

Errors, all `EnrichmentError`s::

    EnrichmentError
    ├── DataFileError   a table or names file is missing, unreadable or garbled
    │                   (the message names the file and, where known, the line)
    └── RdapError       an RDAP request failed; ``kind`` says how (RdapErrorKind)

An address no registry holds (HTTP 404) is not an error: `RdapClient.lookup`
returns None, as it does in offline mode (when no request is made at all).
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
import ssl
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pyasn

# Only ipwhois's helpers: its RDAP class needs an ipwhois Net, which refuses
# non-public addresses (the local test internet lives in 127/8), and at depth 0
# it leaves nested entities (where RIPE and ARIN put the abuse contact) unparsed.
from ipwhois.utils import calculate_cidr, ipv4_lstrip_zeros

from enrichment import EnrichmentError
from kernel.urls import url_host
from outbound.dns import Resolver
from outbound.guard import Network as GuardNetwork
from outbound.guard import parse_networks
from outbound.http import FetchError, FetchErrorKind, GuardedGet, status_text

if TYPE_CHECKING:
    from kernel.config import Config

__all__ = [
    "AsName", "AsNames", "AsnTable", "DataFileError", "NetworkInfo", "RdapAnswer",
    "RdapClient", "RdapError", "RdapErrorKind", "parse_as_name", "parse_rdap",
]


class DataFileError(EnrichmentError):
    """A data file (prefix table, AS names) is missing, unreadable or garbled."""

    def __init__(self, source: str, problem: str, line: int | None = None) -> None:
        where = source if line is None else f"{source}, line {line}"
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


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


# -- reading data files ---------------------------------------------------------

def _read_text(path: Path) -> str:
    """The text of ``path``, gunzipped when its content is gzip (whatever its name)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(str(path), "no such file") from None
    except OSError as exc:
        raise DataFileError(str(path), f"cannot read it: {exc.strerror or exc}") from exc
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFileError(str(path), f"broken gzip data: {exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataFileError(str(path), "not UTF-8 text", line) from exc


# -- IP -> ASN and prefix ------------------------------------------------------------

_MAX_ASN = 2**32 - 1
# pyasn parses the ASN with strtoul, so "-5" and 99999999999 load silently as
# wrong numbers: catch them first (only a "-" or ten or more digits can be wrong).
_SUSPECT_ASN = re.compile(r"\t[ \t]*(-|\d{10,})")


class AsnTable:
    """IP -> (origin ASN, announced prefix) from an offline BGP prefix table.

    Lookups go straight to pyasn's C radix tree (several 100,000 a second).
    """

    def __init__(self, db: Any, source: str, prefixes: int) -> None:
        self._search = db.radix.search_best
        self.source = source
        self.prefixes = prefixes

    @classmethod
    def load(cls, path: Path | str) -> AsnTable:
        """Load a table file (``.dat`` or gzip-compressed ``.dat.gz``)."""
        path = Path(path)
        return cls._parse(_read_text(path), str(path))

    @classmethod
    def from_lines(cls, lines: str | Iterable[str], source: str = "<lines>") -> AsnTable:
        """Build a table from text or lines (``"1.2.3.0/24\\t64500"``); for tests."""
        text = lines if isinstance(lines, str) else "\n".join(x.rstrip("\n") for x in lines)
        return cls._parse(text, source)

    @classmethod
    def _parse(cls, text: str, source: str) -> AsnTable:
        for match in _SUSPECT_ASN.finditer(text):
            start = text.rfind("\n", 0, match.start()) + 1
            value = match.group(1)
            if text[start] != ";" and (value == "-" or int(value) > _MAX_ASN):
                line = text.count("\n", 0, start) + 1
                raise DataFileError(source, "ASN out of range (0 to 4294967295)", line)
        prefixes = sum(1 for line in text.splitlines()
                       if line.strip() and not line.startswith(";"))
        if prefixes == 0:
            raise DataFileError(source, "no prefixes in the table")
        try:
            db = pyasn.pyasn(None, ipasn_string=text)
        except (RuntimeError, ValueError) as exc:
            bad = _first_bad_line(text)
            if bad is None:
                raise DataFileError(source, f"pyasn cannot load it: {exc}") from exc
            raise DataFileError(source, bad[1], bad[0]) from exc
        return cls(db, source, prefixes)

    def lookup(self, ip: str) -> tuple[int, str] | None:
        """(ASN, most specific announced prefix) of ``ip``; None if unannounced."""
        try:
            node = self._search(ip)
        except ValueError:
            raise EnrichmentError(f"not an IP address: {ip!r}") from None
        if node is None:
            return self._lookup_mapped(ip) if ":" in ip else None
        return node.asn, node.prefix

    def _lookup_mapped(self, ip: str) -> tuple[int, str] | None:
        """An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) is its IPv4 address."""
        mapped = ipaddress.IPv6Address(ip).ipv4_mapped
        return None if mapped is None else self.lookup(str(mapped))

    def __len__(self) -> int:
        return self.prefixes


def _first_bad_line(text: str) -> tuple[int, str] | None:
    """The first line that is neither a comment nor ``prefix<TAB>asn``, and why."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(";"):
            continue
        prefix, tab, asn = line.partition("\t")
        if not tab or "/" not in prefix:
            return number, f"expected 'prefix<TAB>asn', got {line[:80]!r}"
        try:
            ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            return number, f"not a prefix: {prefix[:80]!r}"
        if not asn.strip().isdigit():
            return number, f"not an ASN: {asn[:80]!r}"
    return None


# -- ASN -> AS name and country ------------------------------------------------------

_HANDLE = re.compile(r"[A-Z0-9][A-Z0-9._-]*")
_RESERVED_NAMES = frozenset({"-Reserved AS-", "-Private Use AS-"})


@dataclass(frozen=True)
class AsName:
    """One AS as the AS-names file describes it."""

    asn: int
    handle: str | None  # e.g. "LEASEWEB-NL"; None for the many LACNIC/AFRINIC
    name: str  # entries that give only the holder's name
    country: str | None  # ISO 3166 code; None where the file says "ZZ" or nothing
    reserved: bool = False  # "-Reserved AS-" / "-Private Use AS-": no holder at all


def parse_as_name(asn: int, text: str) -> AsName:
    """Split ``"HANDLE Org name, CC"`` (the pyasn AS-names format).

    The country is the two upper-case letters after the last comma ("ZZ",
    unknown, gives None); a two-letter tail in lower case ("na") is dropped
    from the name but is no country. The first word is the handle when it
    looks like one (upper case, digits, ``-._``) and more words follow;
    ARIN's ``HANDLE - Name`` separator is dropped. Otherwise the whole rest is
    the name and there is no handle (``"Servicoop S.A., AR"``, ``"-Reserved AS-, ZZ"``).
    """
    body, country = text.strip(), None
    head, comma, tail = body.rpartition(",")
    tail = tail.strip()
    if comma and len(tail) == 2 and tail.isalpha() and tail.isascii():
        body = head.strip()
        country = tail if tail.isupper() and tail != "ZZ" else None
    first, _, rest = body.partition(" ")
    if rest.strip() and _HANDLE.fullmatch(first):
        name = rest.strip().removeprefix("- ").strip()
        return AsName(asn, first, name or first, country)
    return AsName(asn, None, body, country, reserved=body in _RESERVED_NAMES)


class AsNames:
    """ASN -> `AsName`, from pyasn's AS-names JSON (plain or gzip)."""

    def __init__(self, names: Mapping[int, str], source: str) -> None:
        self._names = dict(names)
        self.source = source

    @classmethod
    def load(cls, path: Path | str) -> AsNames:
        path = Path(path)
        text = _read_text(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFileError(str(path), f"not JSON: {exc.msg} (column {exc.colno})",
                                exc.lineno) from exc
        return cls.from_mapping(data, str(path))

    @classmethod
    def from_mapping(cls, data: Any, source: str = "<mapping>") -> AsNames:
        """Build from ``{"asn": "HANDLE Name, CC"}`` (string or int keys)."""
        if not isinstance(data, Mapping):
            raise DataFileError(source, "expected a JSON object of ASN -> name")
        names: dict[int, str] = {}
        for key, value in data.items():
            if not str(key).isdigit() or not isinstance(value, str):
                raise DataFileError(source, f"bad entry {str(key)[:40]!r}: {str(value)[:80]!r}"
                                    " (expected a decimal ASN and a text)")
            names[int(key)] = value
        return cls(names, source)

    def get(self, asn: int) -> AsName | None:
        text = self._names.get(asn)
        return None if text is None else parse_as_name(asn, text)

    def __len__(self) -> int:
        return len(self._names)


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
    country: str | None  # the network's country (where the block is registered)
    abuse_email: str | None
    registry: str | None  # arin / ripencc / apnic / lacnic / afrinic, if recognisable
    net_type: str | None = None  # "ASSIGNED PA", "ALLOCATED PORTABLE", ...
    parent_handle: str | None = None
    source: str = "rdap"
    org_country: str | None = None  # the holder's own address country, if given


# ARIN's network objects carry no country; ARIN writes the holder's country as
# a name on the last line of the vCard address label. These are the countries
# of ARIN's service region; other names stay unknown (the AS country decides).
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
    - abuse_email: the first e-mail of the first entity with role ``abuse``;
      None when the answer names no abuse contact.
    - country: the network's ``country``, else the holder's vCard address
      (``cc`` parameter, the structured country field if it is a code, or an
      ARIN-region country name on the label's last line).

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
    abuse = next((e.emails[0] for e in entities if "abuse" in e.roles and e.emails), None)
    country = _code(raw.get("country")) or (holder.country if holder else None)
    return NetworkInfo(
        cidr=_cidr(raw.get("cidr0_cidrs"), start, end),
        start_address=start, end_address=end,
        name=_text(raw.get("name")), handle=_text(raw.get("handle")),
        org=holder.real_name if holder else None,
        org_handle=holder.handle if holder else None,
        country=country, abuse_email=abuse, registry=_registry(raw),
        net_type=_text(raw.get("type")), parent_handle=_text(raw.get("parentHandle")),
        org_country=holder.country if holder else None,
    )


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


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
    label = _text(params.get("label"))
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


# -- RDAP over HTTP -------------------------------------------------------------------

@dataclass(frozen=True)
class RdapAnswer:
    """One fetched RDAP answer: where it came from, as sent, and parsed."""

    url: str  # after redirects
    raw: dict[str, Any]
    info: NetworkInfo


class RdapClient:
    """Asks an RDAP server who holds an address: ``GET {base_url}/ip/{ip}``.

    - 404 (no registry holds it) -> None; offline -> None, with no request.
    - Every connection, to ``base_url``'s host and to every redirect target,
      goes through `outbound.http.GuardedGet`: resolved by ``resolver``
      (hostwatch's, HOSTWATCH_NAMESERVERS), refused unless the crawl's address
      guard lets its address through (``allow``: HOSTWATCH_ALLOW_PRIVATE),
      and made to the checked address. A ``base_url`` written with an IP
      address is the operator's own choice and is trusted as written (a lab's
      or test's loopback RDAP server): that address and port, not the other
      ports of the address; a redirect to any other address or port, or a
      ``base_url`` with a name, passes the guard.
    - Any other failure raises `RdapError`: HTTP error status (kind HTTP),
      no answer within ``timeout`` seconds (TIMEOUT; the whole fetch, redirects
      and body read included, is bounded), connection failure (CONNECTION),
      an address the guard refuses (REFUSED), a body that is not JSON, larger
      than ``max_bytes`` or no ip network (INVALID), a redirect to anything but
      http(s), a loop or more than 5 redirects (REDIRECT).
    - Proxies from the environment are ignored: every request goes where
      ``base_url`` says. There is no cache; ``requests_made`` counts every
      HTTP request sent, redirect hops included, and ``failures`` every
      lookup that raised `RdapError`, by kind.
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0, offline: bool = False,
                 user_agent: str = "hostwatch/0.1", max_bytes: int = 4 * 1024 * 1024,
                 resolver: Resolver | None = None, allow: Sequence[GuardNetwork] = (),
                 tls: ssl.SSLContext | None = None) -> None:
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).hostname:
            raise EnrichmentError(f"RDAP base URL must be http(s)://host..., got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.offline = offline
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self.requests_made = 0
        self.failures: Counter[RdapErrorKind] = Counter()
        self._get = GuardedGet(resolver or Resolver(), allow, timeout=timeout,
                               max_bytes=max_bytes, max_redirects=5, tls=tls,
                               trusted=[base_url])

    @classmethod
    def from_config(cls, config: Config, resolver: Resolver | None = None) -> RdapClient:
        """HOSTWATCH_RDAP_URL, HOSTWATCH_RDAP_TIMEOUT, HOSTWATCH_OFFLINE,
        HOSTWATCH_USER_AGENT, HOSTWATCH_ALLOW_PRIVATE; names resolved by
        ``resolver`` or one on HOSTWATCH_NAMESERVERS."""
        resolver = resolver or Resolver(config.nameservers, timeout=config.dns_timeout)
        return cls(config.rdap_url, timeout=config.rdap_timeout, offline=config.offline,
                   user_agent=config.user_agent, resolver=resolver,
                   allow=parse_networks(config.allow_private))

    def lookup(self, ip: str) -> NetworkInfo | None:
        """The holder of ``ip``; None if no registry holds it, or when offline."""
        answer = self.fetch(ip)
        return None if answer is None else answer.info

    def fetch(self, ip: str) -> RdapAnswer | None:
        """Like `lookup`, with the raw answer and the URL it finally came from."""
        try:
            return self._fetch(ip)
        except RdapError as exc:
            self.failures[exc.kind] += 1
            raise

    def _fetch(self, ip: str) -> RdapAnswer | None:
        try:
            address = str(ipaddress.ip_address(ip.strip().strip("[]")))
        except ValueError:
            raise EnrichmentError(f"not an IP address: {ip!r}") from None
        if self.offline:
            return None
        url = f"{self.base_url}/ip/{address}"
        headers = {"Accept": "application/rdap+json, application/json;q=0.9",
                   "User-Agent": self.user_agent}
        try:
            reply = self._get.get(url, headers)
        except FetchError as exc:
            self.requests_made += exc.requests
            raise RdapError(_FETCH_KINDS[exc.kind], url, exc.detail) from None
        self.requests_made += reply.requests
        if reply.status == 404:
            return None
        # Errors name the URL asked, not where a redirect sent it: a Location
        # is the server's text, and these errors are logged and cached.
        hops = reply.requests - 1
        redirected = f", after {hops} redirect{'s' if hops > 1 else ''}" if hops else ""
        if not 200 <= reply.status < 300:
            retry = _retry_after(reply.headers.get("Retry-After"))
            detail = status_text(reply.status) + (f", retry after {retry}" if retry else "")
            raise RdapError(RdapErrorKind.HTTP, url, detail + redirected, status=reply.status)
        try:
            raw = json.loads(reply.body)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise RdapError(RdapErrorKind.INVALID, url,
                            f"not JSON ({type(exc).__name__}){redirected}") from None
        try:
            info = parse_rdap(raw, source=url)
        except RdapError as exc:
            raise RdapError(exc.kind, url, exc.detail + redirected) from None
        return RdapAnswer(reply.url, raw, info)


_FETCH_KINDS = {
    FetchErrorKind.TIMEOUT: RdapErrorKind.TIMEOUT,
    FetchErrorKind.CONNECTION: RdapErrorKind.CONNECTION,
    FetchErrorKind.REFUSED: RdapErrorKind.REFUSED,
    FetchErrorKind.REDIRECT: RdapErrorKind.REDIRECT,
    FetchErrorKind.TOO_LARGE: RdapErrorKind.INVALID,
}


def _retry_after(value: str | None) -> str | None:
    """Retry-After as hostwatch words it: seconds, or "a date" (never the raw value)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit() and len(value) <= 9:
        return f"{int(value)} s"
    return "a date it gave"
