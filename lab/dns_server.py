"""The local test internet's DNS server: a `.test` zone served by dnslib.

The server answers on UDP and TCP on one port of 127.0.0.1. It behaves like
a recursive resolver that happens to know the whole zone: A and AAAA queries
follow CNAME chains inside the answer section (the CNAMEs, then the
addresses), unknown names get NXDOMAIN, names marked broken get SERVFAIL,
and the zone apex answers SOA and NS.
"""

from __future__ import annotations

import ipaddress
import logging
import socketserver
import threading
from dataclasses import dataclass, field

from dnslib import AAAA, CNAME, NS, QTYPE, RCODE, RR, SOA, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

log = logging.getLogger(__name__)

MAX_CHAIN = 16
"""CNAME hops followed before answering SERVFAIL (a loop, in practice)."""


def canonical(name: str) -> str:
    """Lowercase, absolute (trailing dot) form of a DNS name."""
    name = name.strip().lower()
    if not name or name == ".":
        return "."
    return name if name.endswith(".") else name + "."


@dataclass
class _Node:
    a: list[str] = field(default_factory=list)
    aaaa: list[str] = field(default_factory=list)
    cname: str | None = None
    servfail: bool = False


class Zone:
    """The records the server knows; safe to change while it answers."""

    def __init__(self, origin: str = "test.", ttl: int = 60, ns_ip: str = "127.0.0.1") -> None:
        self.origin = canonical(origin)
        self.ttl = ttl
        self.ns_name = "ns1." + self.origin
        self._lock = threading.Lock()
        self._nodes: dict[str, _Node] = {self.ns_name: _Node(a=[ns_ip])}
        # None, or "servfail" / "nxdomain": the answer to every question.
        self.broken: str | None = None

    def add_a(self, name: str, ip: str) -> None:
        self._add_address(name, str(ipaddress.IPv4Address(ip)), "a")

    def add_aaaa(self, name: str, ip: str) -> None:
        self._add_address(name, str(ipaddress.IPv6Address(ip)), "aaaa")

    def _add_address(self, name: str, ip: str, kind: str) -> None:
        key = canonical(name)
        with self._lock:
            node = self._nodes.setdefault(key, _Node())
            if node.cname is not None:
                raise ValueError(f"{name} is a CNAME; remove it before adding addresses")
            addresses = node.a if kind == "a" else node.aaaa
            if ip not in addresses:
                addresses.append(ip)

    def replace_a(self, name: str, old: str, new: str) -> None:
        """Swap address ``old`` of ``name`` for ``new`` in one step (no gap for queries)."""
        old, new = str(ipaddress.IPv4Address(old)), str(ipaddress.IPv4Address(new))
        with self._lock:
            node = self._nodes.get(canonical(name))
            if node is None or old not in node.a:
                raise ValueError(f"{name} has no A record {old}")
            node.a[node.a.index(old)] = new

    def add_cname(self, name: str, target: str) -> None:
        key = canonical(name)
        with self._lock:
            node = self._nodes.get(key)
            if node is not None and (node.a or node.aaaa):
                raise ValueError(f"{name} has addresses; a CNAME cannot sit beside them")
            self._nodes[key] = _Node(cname=canonical(target))

    def add_servfail(self, name: str) -> None:
        with self._lock:
            self._nodes.setdefault(canonical(name), _Node()).servfail = True

    def remove(self, name: str) -> None:
        """Forget every record of ``name`` (it answers NXDOMAIN afterwards)."""
        with self._lock:
            self._nodes.pop(canonical(name), None)

    def in_zone(self, name: str) -> bool:
        return name == self.origin or name.endswith("." + self.origin)

    def answer(self, request: DNSRecord) -> DNSRecord:
        """The full reply to ``request``."""
        reply = request.reply()  # aa and ra set, question copied
        qname = canonical(str(request.q.qname))
        qtype = request.q.qtype
        with self._lock:
            if self.broken == "servfail":
                self._fail(reply)
            elif self.broken == "nxdomain":
                reply.header.rcode = RCODE.NXDOMAIN
            else:
                self._fill(reply, qname, qtype)
        return reply

    def _fill(self, reply: DNSRecord, qname: str, qtype: int) -> None:
        name = qname
        for _ in range(MAX_CHAIN):
            node = self._nodes.get(name)
            if node is not None and node.servfail:
                self._fail(reply)
                return
            if node is None:
                if name == self.origin:
                    self._apex(reply, qtype)
                elif self.in_zone(name) and self._has_children(name):
                    self._nodata(reply, name)
                else:
                    reply.header.rcode = RCODE.NXDOMAIN
                    if self.in_zone(name):
                        reply.add_auth(self._soa())
                return
            if node.cname is not None:
                reply.add_answer(RR(name, QTYPE.CNAME, rdata=CNAME(node.cname), ttl=self.ttl))
                if qtype == QTYPE.CNAME:
                    return  # like a resolver: a CNAME query gets the CNAME itself
                name = node.cname
                continue
            found = 0
            if qtype in (QTYPE.A, QTYPE.ANY):
                for ip in node.a:
                    reply.add_answer(RR(name, QTYPE.A, rdata=A(ip), ttl=self.ttl))
                    found += 1
            if qtype in (QTYPE.AAAA, QTYPE.ANY):
                for ip in node.aaaa:
                    reply.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(ip), ttl=self.ttl))
                    found += 1
            if not found:
                self._nodata(reply, name)
            return
        self._fail(reply)

    def _apex(self, reply: DNSRecord, qtype: int) -> None:
        if qtype in (QTYPE.SOA, QTYPE.ANY):
            reply.add_answer(self._soa())
        if qtype in (QTYPE.NS, QTYPE.ANY):
            reply.add_answer(RR(self.origin, QTYPE.NS, rdata=NS(self.ns_name), ttl=self.ttl))
            for ip in self._nodes[self.ns_name].a:
                reply.add_ar(RR(self.ns_name, QTYPE.A, rdata=A(ip), ttl=self.ttl))
        if not reply.rr:
            reply.add_auth(self._soa())

    def _nodata(self, reply: DNSRecord, name: str) -> None:
        if self.in_zone(name):
            reply.add_auth(self._soa())

    def _fail(self, reply: DNSRecord) -> None:
        reply.rr = []
        reply.header.rcode = RCODE.SERVFAIL

    def _has_children(self, name: str) -> bool:
        suffix = "." + name
        return any(key.endswith(suffix) for key in self._nodes)

    def _soa(self) -> RR:
        times = (1, 3600, 600, 86400, self.ttl)  # serial, refresh, retry, expire, minimum
        rdata = SOA(self.ns_name, "hostmaster." + self.origin, times)
        return RR(self.origin, QTYPE.SOA, rdata=rdata, ttl=self.ttl)


class _Resolver(BaseResolver):
    def __init__(self, zone: Zone) -> None:
        self.zone = zone

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        return self.zone.answer(request)


class _UDPServer(socketserver.ThreadingMixIn, socketserver.UDPServer):
    # No SO_REUSEADDR: on UDP it would let two test internets share a port.
    allow_reuse_address = False
    daemon_threads = True


class _TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True  # TCP: only skips TIME_WAIT, never shares a listener
    daemon_threads = True


class DnsServer:
    """UDP and TCP on the same free port of ``address``, each in a thread."""

    def __init__(self, zone: Zone, address: str = "127.0.0.1") -> None:
        self.zone = zone
        self.address = address
        self.port: int | None = None
        self._servers: list[DNSServer] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        resolver = _Resolver(self.zone)
        logger = DNSLogger(log="error", prefix=False, logf=log.warning)
        for _ in range(50):
            udp = DNSServer(resolver, self.address, 0, logger=logger, server=_UDPServer)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(
                    resolver, self.address, port, tcp=True, logger=logger, server=_TCPServer
                )
            except OSError:
                udp.server.server_close()
                continue
            break
        else:
            raise OSError(f"no port free for DNS on both UDP and TCP at {self.address}")
        self.port = port
        self._servers = [udp, tcp]
        for server in self._servers:
            thread = threading.Thread(
                target=server.server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"testnet-dns-{port}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()
        for thread in self._threads:
            thread.join()
        self._servers, self._threads = [], []
