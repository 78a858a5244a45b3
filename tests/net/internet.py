"""TestInternet: DNS plus scripted HTTP hosts on loopback, ready for a crawler.

Each host gets its own 127.0.0.x address (from 127.0.0.10 up) and an A
record; every host listens on the same HTTP port. Routes map a path to a
behaviour, or to a list of behaviours indexed by ``net.round`` (the last one
repeats), so one test can script "served, then gone" across crawl rounds.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from urllib.parse import unquote

from tests.net.behaviours import (
    Behaviour,
    Homepage,
    LoginPage,
    Reply,
    Request,
    Response,
    Status,
)
from tests.net.dns_server import DnsServer, Zone, canonical
from tests.net.http_server import HttpServer, listen, listen_all

FIRST_HOST_IP = "127.0.0.10"

_BUILTIN: dict[str, Behaviour] = {"/": Homepage(), "/login": LoginPage()}


@dataclass(frozen=True, slots=True)
class Hit:
    """One request as the server received it.

    ``host`` is the name the client asked for (Host header, lowercased,
    without port; the host's own name if the header is missing); ``ip`` is
    the address it connected to; ``round`` is ``net.round`` at that moment.
    """

    host: str
    ip: str
    path: str
    method: str
    round: int
    user_agent: str
    query: str = ""


class Host:
    """One web host: a name, an address, routes. Made by TestInternet.add_host."""

    def __init__(self, net: TestInternet, name: str, ip: str, headers: dict[str, str]) -> None:
        self._net = net
        self.name = name
        self.ip = ip
        self.headers = tuple(headers.items())
        """Added to every response of this host (e.g. CDN headers such as cf-ray)."""
        self._routes: dict[str, tuple[Behaviour, ...]] = {}
        self._default: tuple[Behaviour, ...] = (Status(404),)
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.ip!r})"

    def url(self, path: str = "/") -> str:
        """``http://name:port/path`` (the port is known once the net is started)."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        return f"http://{self.name}:{self._net.port}{path}"

    def route(self, path: str, behaviour: Behaviour | Sequence[Behaviour]) -> Host:
        """Answer ``path`` with ``behaviour``, or with one behaviour per round.

        The query string is ignored when matching; a request path is tried as
        sent, then percent-decoded.
        """
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        self._routes[path.partition("?")[0]] = _per_round(behaviour)
        return self

    def default(self, behaviour: Behaviour | Sequence[Behaviour]) -> Host:
        """Answer unrouted paths with ``behaviour`` (initially Status(404))."""
        self._default = _per_round(behaviour)
        return self

    @property
    def paths(self) -> list[str]:
        """The routed paths, in the order they were added."""
        return list(self._routes)

    def count(self, path: str) -> int:
        """Counter for Bursts: the number of earlier calls for ``path``."""
        with self._lock:
            seen = self._counts.get(path, 0)
            self._counts[path] = seen + 1
        return seen

    def reset_counts(self) -> None:
        """Start every Bursts counter of this host again from zero."""
        with self._lock:
            self._counts.clear()

    def respond(self, request: Request, local_ip: str) -> Reply:
        """Record the hit and let this round's behaviour answer."""
        round_ = self._net.round
        asked = request.headers.get("host", "")
        self._net._record(
            Hit(
                host=_hostname(asked) or self.name,
                ip=local_ip,
                path=request.path,
                method=request.method,
                round=round_,
                user_agent=request.headers.get("user-agent", ""),
                query=request.query,
            )
        )
        behaviours = self._routes.get(request.path)
        if behaviours is None and "%" in request.path:
            behaviours = self._routes.get(unquote(request.path))
        if behaviours is None:
            builtin = _BUILTIN.get(request.path)
            behaviours = (builtin,) if builtin is not None else self._default
        reply = behaviours[min(round_, len(behaviours) - 1)].reply(request, self)
        if self.headers and isinstance(reply, Response):
            reply = replace(reply, headers=(*reply.headers, *self.headers))
        return reply


def _per_round(behaviour: Behaviour | Sequence[Behaviour]) -> tuple[Behaviour, ...]:
    items = (behaviour,) if isinstance(behaviour, Behaviour) else tuple(behaviour)
    if not items or not all(isinstance(item, Behaviour) for item in items):
        raise TypeError(f"expected a behaviour or a non-empty list of them, got {behaviour!r}")
    return items


def _hostname(header: str) -> str:
    header = header.strip().lower()
    if header.startswith("["):
        return header.partition("]")[0] + "]"
    return header.partition(":")[0].rstrip(".")


class TestInternet:
    """DNS on 127.0.0.1 and scripted HTTP hosts on 127.0.0.x, in background threads.

    Use as a context manager, or call start() and stop(). Records can be
    added before or after start; a host added after start listens at once.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, ttl: int = 60, *, record_hits: bool = True) -> None:
        self.zone = Zone("test.", ttl=ttl)
        self.record_hits = record_hits
        self._dns = DnsServer(self.zone)
        self._http = HttpServer()
        self._hosts: dict[str, Host] = {}
        self._next_ip = ipaddress.IPv4Address(FIRST_HOST_IP)
        self._port: int | None = None
        self._round = 0
        self._hits: list[Hit] = []
        self._hit_count = 0
        self._lock = threading.Lock()

    # -- names -------------------------------------------------------------

    def add_host(self, name: str, *, headers: dict[str, str] | None = None) -> Host:
        """A web host at the next free 127.0.0.x, with an A record for ``name``."""
        key = canonical(name).rstrip(".")
        if key in self._hosts:
            raise ValueError(f"host {key} already exists")
        ip = self._take_ip()
        host = Host(self, key, ip, headers or {})
        if self._http.running:
            assert self._port is not None
            self._http.serve(listen(ip, self._port), host)
        self._hosts[key] = host
        self.zone.add_a(key, ip)
        return host

    def host(self, name: str) -> Host:
        return self._hosts[canonical(name).rstrip(".")]

    @property
    def hosts(self) -> list[Host]:
        return list(self._hosts.values())

    def add_cname(self, name: str, target: str) -> None:
        self.zone.add_cname(name, target)

    def add_a(self, name: str, ip: str) -> None:
        """An A record only (nothing listens there unless it is a host's address)."""
        self.zone.add_a(name, ip)

    def add_aaaa(self, name: str, ip: str) -> None:
        self.zone.add_aaaa(name, ip)

    def add_servfail(self, name: str) -> None:
        self.zone.add_servfail(name)

    def remove_name(self, name: str) -> None:
        """Drop every DNS record of ``name`` (NXDOMAIN from now on); hosts keep serving."""
        self.zone.remove(name)

    def _take_ip(self) -> str:
        ip = self._next_ip
        while ip.packed[3] in (0, 255):  # skip .0 and .255: they confuse some tools
            ip += 1
        self._next_ip = ip + 1
        if ip not in ipaddress.IPv4Network("127.0.0.0/8"):
            raise ValueError("out of loopback addresses")
        return str(ip)

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> TestInternet:
        """Start DNS and every host; returns once all of them are listening."""
        if self._http.running:
            raise RuntimeError("already started")
        self._dns.start()
        try:
            probe = [host.ip for host in self._hosts.values()] or [str(self._next_ip)]
            port, socks = listen_all(probe)
            if not self._hosts:
                for sock in socks:
                    sock.close()
                socks = []
            self._port = port
            self._http.start()
            for host, sock in zip(self._hosts.values(), socks, strict=True):
                self._http.serve(sock, host)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close every listener and connection and join the threads (idempotent)."""
        self._http.stop()
        self._dns.stop()

    def __enter__(self) -> TestInternet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------

    @property
    def port(self) -> int:
        """The HTTP port every host listens on."""
        if self._port is None:
            raise RuntimeError("the TestInternet is not started")
        return self._port

    @property
    def nameserver(self) -> tuple[str, int]:
        if self._dns.port is None:
            raise RuntimeError("the TestInternet is not started")
        return (self._dns.address, self._dns.port)

    @property
    def nameservers_env(self) -> str:
        """The value for HOSTWATCH_NAMESERVERS."""
        address, port = self.nameserver
        return f"{address}:{port}"

    def url_list(self) -> list[str]:
        """Every routed URL of every host."""
        return [host.url(path) for host in self._hosts.values() for path in host.paths]

    # -- rounds and hits ----------------------------------------------------

    @property
    def round(self) -> int:
        return self._round

    @round.setter
    def round(self, value: int) -> None:
        if value < 0:
            raise ValueError("round must be >= 0")
        with self._lock:
            self._round = int(value)

    @property
    def hits(self) -> list[Hit]:
        """A copy of every request received (while ``record_hits`` is on)."""
        with self._lock:
            return list(self._hits)

    @property
    def hit_count(self) -> int:
        """Requests received since the last clear_hits(), recorded or not."""
        return self._hit_count

    def clear_hits(self) -> None:
        with self._lock:
            self._hits.clear()
            self._hit_count = 0

    def _record(self, hit: Hit) -> None:
        with self._lock:
            self._hit_count += 1
            if self.record_hits:
                self._hits.append(hit)
