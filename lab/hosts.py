"""Web hosts of the local test internet: a name, an address, routes per round.

Made by ``TestInternet.add_host`` (and ``add_cdn_site``); the HTTP server
hands every request arriving at a host's address to :meth:`Host.respond`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import unquote

from lab.behaviours import (
    Behaviour,
    Homepage,
    LoginPage,
    Reply,
    Request,
    Response,
    Status,
)
from lab.networks import Network

if TYPE_CHECKING:
    from lab.internet import TestInternet

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

    def __init__(
        self,
        net: TestInternet,
        name: str,
        ip: str,
        headers: dict[str, str],
        network: Network | None = None,
        edge_name: str | None = None,
    ) -> None:
        self._net = net
        self.name = name
        self.ip = ip
        """The address it serves on now (TestInternet.move_host changes it)."""
        self.network = network
        """The test network ``ip`` belongs to (None: 127.0.0.0/16, in no ASN)."""
        self.edge_name = edge_name
        """For a CDN site: the edge name its CNAME points to, which holds the A record."""
        self.headers = tuple(headers.items())
        """Added to every response of this host (e.g. CDN headers such as cf-ray)."""
        self._routes: dict[str, tuple[Behaviour, ...]] = {}
        self._default: tuple[Behaviour, ...] = (Status(404),)
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Host({self.name!r}, {self.ip!r})"

    @property
    def address_name(self) -> str:
        """The name whose A record is this host's address (the edge name for a CDN site)."""
        return self.edge_name or self.name

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
