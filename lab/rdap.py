"""The local test internet's RDAP server: ``GET {rdap_url}/ip/{address}`` on loopback.

An IP query is answered by the first of these that applies:

1. a scripted fault or redirect for the address (``TestInternet.rdap_fail`` /
   ``rdap_slow`` / ``rdap_redirect``);
2. the test network holding the address: a synthetic "ip network" object in
   the shape of a RIPE answer (handle, start/endAddress, name, country,
   cidr0_cidrs, a registrant entity whose vcard ``fn`` is the org, an abuse
   entity whose vcard has the abuse email, and for a network with a
   ``reseller`` an entity with role reseller whose ``fn`` is its name);
3. a real RIR answer from ``realdata/rdap_responses.json`` whose
   startAddress–endAddress range holds the address, sent unchanged — so the
   real RIPE, ARIN, APNIC, LACNIC and AFRINIC answers can be fetched by IP,
   over HTTP, without leaving loopback;
4. 404 with an RDAP error object.

``/ip/{prefix}/{len}`` queries work too (the holder of the prefix's first
address). ``/entity/{handle}`` answers the test networks' entities and the
real entity of ``realdata/rdap_entity.json``; ``/autnum/{asn}`` the test ASes.
Anything else is 404; an unparsable address is 400. The server is a Site of
the same HttpServer as the web hosts, on its own port of 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lab.behaviours import Reply, Request, Response, reason_phrase
from lab.networks import Network

log = logging.getLogger(__name__)

REALDATA = Path(__file__).resolve().parent / "data" / "realdata"
"""The real data of lab/data/realdata (a copy of the project's shared real data)."""
REAL_RESPONSES = REALDATA / "rdap_responses.json"
REAL_ENTITY = REALDATA / "rdap_entity.json"

CONTENT_TYPE = "application/rdap+json"
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Target = str | Network | IpNetwork
"""What a fault or a hit count applies to: an address, a prefix or a test network."""


@dataclass(frozen=True, slots=True)
class RdapHit:
    """One request to the RDAP server: its path, the address asked for ("" if none), the status."""

    path: str
    ip: str
    status: int


@dataclass(slots=True)
class _Fault:
    where: IpNetwork
    status: int | None  # None: answer normally (after the delay)
    delay: float
    retry_after: int | None
    remaining: int | None  # None: forever
    location: str | None = None  # a redirect's base URL: Location {location}/ip/{ip}


@dataclass(frozen=True, slots=True)
class RealAnswer:
    """One real RIR answer and the address range it covers."""

    key: str
    first: IpAddress
    last: IpAddress
    response: dict[str, Any]

    def holds(self, ip: IpAddress) -> bool:
        return ip.version == self.first.version and int(self.first) <= int(ip) <= int(self.last)


def parse_rdap_address(text: str) -> IpAddress:
    """An address as RIRs write it in start/endAddress.

    Real answers carry a ``/32`` or ``/128`` suffix (RIPE), zero-padded IPv4
    octets (``074.125.000.000``, ARIN) or upper case IPv6.
    """
    text = text.strip().partition("/")[0]
    if "." in text and ":" not in text:
        text = ".".join(str(int(octet)) for octet in text.split("."))
    return ipaddress.ip_address(text)


def load_real_answers(path: Path | None) -> list[RealAnswer]:
    """The answers of ``rdap_responses.json`` (none if ``path`` is None or missing)."""
    if path is None:
        return []
    if not path.exists():
        log.warning("no real RDAP answers: %s does not exist", path)
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    answers = []
    for key, item in data.items():
        response = item["response"]
        first = parse_rdap_address(response["startAddress"])
        last = parse_rdap_address(response["endAddress"])
        answers.append(RealAnswer(key, first, last, response))
    return answers


def as_network(target: Target) -> IpNetwork:
    """An address, a prefix or a test network as an ip_network."""
    if isinstance(target, Network):
        return target.prefix
    if isinstance(target, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return target
    return ipaddress.ip_network(target.strip(), strict=False)


def _inside(ip: IpAddress, where: IpNetwork) -> bool:
    # `in` across IP versions compares bare integers, so check the version first.
    return ip.version == where.version and ip in where


def _json_reply(status: int, payload: object, extra: Sequence[tuple[str, str]] = ()) -> Response:
    body = json.dumps(payload, indent=1).encode()
    headers = (("Content-Type", CONTENT_TYPE), ("Access-Control-Allow-Origin", "*"), *extra)
    return Response(status, headers, body)


def error_object(status: int, description: str) -> dict[str, Any]:
    return {
        "errorCode": status,
        "title": reason_phrase(status),
        "description": [description],
        "rdapConformance": ["rdap_level_0"],
    }


_NOTICES = [
    {
        "title": "Source",
        "description": ["Objects returned came from source", "TEST"],
    },
    {
        "title": "Test registry",
        "description": [
            "A local test registry of hostwatch (lab). The holders are fictional."
        ],
    },
]


class RdapServer:
    """The RDAP Site: answers, faults and a record of every request."""

    def __init__(
        self,
        networks: Callable[[], list[Network]],
        real_responses: Path | None = REAL_RESPONSES,
        real_entity: Path | None = REAL_ENTITY,
    ) -> None:
        self._networks = networks
        self.real_answers = load_real_answers(real_responses)
        self._real_entities: dict[str, dict[str, Any]] = {}
        if real_entity is not None and real_entity.exists():
            entity = json.loads(real_entity.read_text(encoding="utf-8"))
            self._real_entities[entity["handle"].upper()] = entity
        self.url = ""
        """The base URL (``http://127.0.0.1:PORT``), set once the server listens."""
        self._lock = threading.Lock()
        self._hits: list[RdapHit] = []
        self._faults: list[_Fault] = []

    # -- scripting ------------------------------------------------------------

    def fail(
        self,
        target: Target,
        status: int = 503,
        *,
        times: int | None = None,
        delay: float = 0.0,
        retry_after: int | None = None,
    ) -> None:
        """IP queries inside ``target`` get ``status`` (the first ``times`` ones, or all)."""
        if not 400 <= status <= 599:
            raise ValueError(f"a failure needs a 4xx or 5xx status, got {status}")
        self._add_fault(_Fault(as_network(target), status, delay, retry_after, times))

    def slow(self, target: Target, seconds: float, *, times: int | None = None) -> None:
        """IP queries inside ``target`` are answered normally, but only after ``seconds``."""
        self._add_fault(_Fault(as_network(target), None, seconds, None, times))

    def redirect(self, target: Target, to: str, status: int = 302, *,
                 times: int | None = None) -> None:
        """IP queries inside ``target`` are redirected as ARIN does: ``status``
        with ``Location: {to}/ip/{address}``."""
        if status not in (301, 302, 303, 307, 308):
            raise ValueError(f"a redirect needs a 30x status, got {status}")
        self._add_fault(_Fault(as_network(target), status, 0.0, None, times, to.rstrip("/")))

    def _add_fault(self, fault: _Fault) -> None:
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError("times must be at least 1 (or None for always)")
        with self._lock:
            self._faults.insert(0, fault)  # the latest script wins

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # -- the record -------------------------------------------------------------

    @property
    def hits(self) -> list[RdapHit]:
        with self._lock:
            return list(self._hits)

    def hit_count(self, target: Target | None = None) -> int:
        """Requests so far, or the IP queries for addresses inside ``target``."""
        with self._lock:
            hits = list(self._hits)
        if target is None:
            return len(hits)
        where = as_network(target)
        return sum(1 for hit in hits if hit.ip and _inside(ipaddress.ip_address(hit.ip), where))

    def clear_hits(self) -> None:
        with self._lock:
            self._hits.clear()

    # -- answering -----------------------------------------------------------------

    def respond(self, request: Request, local_ip: str) -> Reply:
        ip, reply = self._answer(request)
        with self._lock:
            self._hits.append(RdapHit(request.path, str(ip) if ip else "", reply.status))
        return reply

    def _answer(self, request: Request) -> tuple[IpAddress | None, Response]:
        if request.method not in ("GET", "HEAD"):
            return None, _json_reply(405, error_object(405, "Only GET and HEAD."))
        kind, _, value = unquote(request.path).lstrip("/").partition("/")
        if kind == "entity" and value:
            return None, self._entity(value)
        if kind == "autnum" and value:
            return None, self._autnum(value)
        if kind != "ip" or not value:
            return None, _json_reply(404, error_object(404, f"Unsupported query {request.path}"))
        try:
            ip = ipaddress.ip_network(value, strict=False).network_address
        except ValueError:
            return None, _json_reply(400, error_object(400, f"Not an IP address: {value}"))
        fault = self._fault_for(ip)
        if fault is not None and fault.location is not None:
            assert fault.status is not None
            reply = Response(fault.status, (("Location", f"{fault.location}/ip/{ip}"),))
        elif fault is not None and fault.status is not None:
            extra = (("Retry-After", str(fault.retry_after)),) if fault.retry_after else ()
            reply = _json_reply(
                fault.status, error_object(fault.status, "Scripted failure"), extra
            )
        else:
            reply = self._lookup(ip, value)
        if fault is not None and fault.delay:
            reply = Response(reply.status, reply.headers, reply.body, delay=fault.delay)
        return ip, reply

    def _fault_for(self, ip: IpAddress) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if not _inside(ip, fault.where):
                    continue
                if fault.remaining is not None:
                    if fault.remaining == 0:
                        continue
                    fault.remaining -= 1
                return fault
        return None

    def _lookup(self, ip: IpAddress, query: str) -> Response:
        for net in self._networks():
            if ip.version == 4 and ip in net.prefix:
                return _json_reply(200, self.network_object(net, query))
        for answer in self.real_answers:  # their ranges do not overlap
            if answer.holds(ip):
                return _json_reply(200, answer.response)
        return _json_reply(404, error_object(404, f"No network holds {ip} in this registry."))

    def _entity(self, handle: str) -> Response:
        wanted = handle.upper()
        if wanted in self._real_entities:
            return _json_reply(200, self._real_entities[wanted])
        for net in self._networks():
            for entity in self._entities(net):
                if entity["handle"] == wanted:
                    top = {**entity, "rdapConformance": ["rdap_level_0"], "notices": _NOTICES}
                    return _json_reply(200, top)
        return _json_reply(404, error_object(404, f"No entity {handle}."))

    def _autnum(self, value: str) -> Response:
        text = value.upper().removeprefix("AS")
        matches = [net for net in self._networks() if text.isdigit() and net.asn == int(text)]
        if not matches:
            return _json_reply(404, error_object(404, f"No autnum {value}."))
        net = matches[0]
        return _json_reply(
            200,
            {
                "objectClassName": "autnum",
                "handle": f"AS{net.asn}",
                "startAutnum": net.asn,
                "endAutnum": net.asn,
                "name": net.handle,
                "country": net.as_country,
                "entities": self._entities(net),
                "links": [{"value": f"{self.url}/autnum/{net.asn}", "rel": "self",
                           "href": f"{self.url}/autnum/{net.asn}"}],
                "rdapConformance": ["rdap_level_0"],
                "notices": _NOTICES,
                "port43": "whois.test",
            },
        )

    # -- synthetic objects ------------------------------------------------------------

    def network_object(self, net: Network, query: str) -> dict[str, Any]:
        """The "ip network" object for ``net``, shaped like a RIPE answer."""
        first, last = net.prefix.network_address, net.prefix.broadcast_address
        return {
            "objectClassName": "ip network",
            "handle": f"{first} - {last}",
            "startAddress": str(first),
            "endAddress": str(last),
            "ipVersion": "v4",
            "name": net.netname,
            "type": "ASSIGNED PA",
            "country": net.country,
            "parentHandle": "127.0.0.0 - 127.255.255.255",
            "status": ["active"],
            "cidr0_cidrs": [{"v4prefix": str(first), "length": net.prefix.prefixlen}],
            "entities": self._entities(net),
            "remarks": [{"description": [f"Test network of AS{net.asn} ({net.org})."]}],
            "links": [
                {"value": f"{self.url}/ip/{query}", "rel": "self",
                 "href": f"{self.url}/ip/{net.prefix}"},
            ],
            "events": [
                {"eventAction": "registration", "eventDate": "2024-01-15T10:00:00Z"},
                {"eventAction": "last changed", "eventDate": "2024-06-01T12:00:00Z"},
            ],
            "rdapConformance": ["cidr0", "rdap_level_0"],
            "notices": _NOTICES,
            "port43": "whois.test",
        }

    def _entities(self, net: Network) -> list[dict[str, Any]]:
        registrant = {
            "objectClassName": "entity",
            "handle": f"ORG-{net.netname}-TEST",
            "vcardArray": [
                "vcard",
                [
                    ["version", {}, "text", "4.0"],
                    ["fn", {}, "text", net.org],
                    ["kind", {}, "text", "org"],
                    ["adr", {"cc": net.org_country, "label": f"{net.org}\n{net.org_country}"},
                     "text", None],
                ],
            ],
            "roles": ["registrant"],
            "links": [self._entity_link(f"ORG-{net.netname}-TEST")],
        }
        abuse = {
            "objectClassName": "entity",
            "handle": f"AR-{net.netname}-TEST",
            "vcardArray": [
                "vcard",
                [
                    ["version", {}, "text", "4.0"],
                    ["fn", {}, "text", f"{net.org} abuse desk"],
                    ["kind", {}, "text", "group"],
                    ["email", {}, "text", net.abuse],
                ],
            ],
            "roles": ["abuse"],
            "links": [self._entity_link(f"AR-{net.netname}-TEST")],
        }
        if not net.reseller:
            return [registrant, abuse]
        # RFC 9083: "a third party through which the registration was conducted".
        reseller = {
            "objectClassName": "entity",
            "handle": f"RS-{net.netname}-TEST",
            "vcardArray": [
                "vcard",
                [
                    ["version", {}, "text", "4.0"],
                    ["fn", {}, "text", net.reseller],
                    ["kind", {}, "text", "org"],
                ],
            ],
            "roles": ["reseller"],
            "links": [self._entity_link(f"RS-{net.netname}-TEST")],
        }
        return [registrant, abuse, reseller]

    def _entity_link(self, handle: str) -> dict[str, str]:
        url = f"{self.url}/entity/{handle}"
        return {"value": url, "rel": "self", "href": url}
