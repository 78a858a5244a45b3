"""Enrichment's own HTTP requests (RDAP), behind the crawl's address guard.

An RDAP server redirects (ARIN sends other registries' addresses on), and a
redirect is a URL a server chose: followed blindly, it turns hostwatch against
the hotline's own network or a cloud metadata service (169.254.169.254). So
every connection `guarded_get` makes, the first and every redirect hop:

1. resolves its host through hostwatch's resolver (`outbound.dns.Resolver`:
   HOSTWATCH_NAMESERVERS, never the system's getaddrinfo);
2. keeps only the addresses the address guard (`outbound.guard`, the crawl's
   own) lets through, with the operator's HOSTWATCH_ALLOW_PRIVATE networks;
3. connects to one of those checked addresses itself, sending the name in the
   Host header and as TLS server name (certificates are verified for the
   name): nothing is resolved again between the check and the connect, so a
   name cannot rebind to another address in between.

Redirects are followed here, not by urllib, so that each hop passes through
the same three steps. Errors say what hostwatch decided (the hop, the
address's kind, the status), never what the server sent (Location values,
reason phrases, header lines): these messages are logged and stored.

The guard lives in the crawler package for now (issue #13 puts the guard and
the resolver where both stages share them); enrichment already imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus
from urllib.parse import urlsplit

from kernel.errors import EnrichmentError
from kernel.urls import redirect_url, url_host
from outbound.dns import DnsFailure, Resolver
from outbound.guard import Network, forbidden_reason

__all__ = ["FetchError", "FetchErrorKind", "GuardedGet", "Reply", "allowed_addresses",
           "redirect_target", "status_text"]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class FetchErrorKind(StrEnum):
    TIMEOUT = "timeout"  # no (complete) answer within the timeout
    CONNECTION = "connection"  # unresolvable, refused, reset, broken HTTP
    REFUSED = "refused"  # the address guard refused every address of a hop
    REDIRECT = "redirect"  # to a non-http(s) URL, a loop, or too many
    TOO_LARGE = "too_large"  # the body passed the size limit


class FetchError(EnrichmentError):
    """A guarded GET that gave no answer. ``hop``: 0 the URL asked, 1.. redirects."""

    def __init__(self, kind: FetchErrorKind, hop: int, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.hop = hop
        self.detail = detail
        self.requests = 0  # HTTP requests sent before it failed (set by GuardedGet.get)


@dataclass(frozen=True)
class Reply:
    """The final answer: its URL (after redirects), status, headers and body."""

    url: str
    status: int
    headers: http.client.HTTPMessage
    body: bytes
    requests: int  # HTTP requests sent for it, redirect hops included


def _who(hop: int) -> str:
    return "the first request" if hop == 0 else f"redirect {hop}"


def allowed_addresses(addresses: Sequence[str], allow: Sequence[Network]) -> tuple[
        list[str], str | None]:
    """The addresses the guard lets through, and why the first one is refused
    when none is (None when some address may be connected to)."""
    allowed = [ip for ip in addresses if forbidden_reason(ip, allow) is None]
    if allowed:
        return allowed, None
    if not addresses:
        return [], "no address"
    return [], forbidden_reason(addresses[0], allow)


def redirect_target(current: str, location: str | None, hop: int) -> str:
    """The absolute URL redirect number ``hop`` sends to, read as a browser
    reads it (kernel.urls.redirect_url: numeric IPv4 forms as the
    address, IDN hosts in punycode, spaces and other bytes percent-encoded,
    no fragment, no user info), so
    that the guard judges the address a browser would connect to;
    `FetchError` (REDIRECT) when a browser would not follow it to an http(s)
    URL with a host, or there is none."""
    if not location:
        raise FetchError(FetchErrorKind.REDIRECT, hop, f"redirect {hop} refused: no Location")
    # http.client reads header bytes as Latin-1; a browser reads a
    # Location's bytes as UTF-8.
    with contextlib.suppress(UnicodeError):
        location = location.encode("latin-1").decode("utf-8")
    target = redirect_url(location, current)
    if target is None:  # e.g. "http://[" : a server's garbage, not a crash
        raise FetchError(FetchErrorKind.REDIRECT, hop,
                         f"redirect {hop} refused: not a valid URL")
    if urlsplit(target).scheme not in ("http", "https") or not url_host(target):
        raise FetchError(FetchErrorKind.REDIRECT, hop,
                         f"redirect {hop} refused: not an http(s) URL with a host")
    return target


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to ``host`` made to one of the given (checked)
    addresses: http.client never resolves ``host`` itself."""

    def __init__(self, host: str, port: int | None, addresses: Sequence[str],
                 timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._addresses = tuple(addresses)

    def connect(self) -> None:
        error: OSError | None = None
        for address in self._addresses:
            try:
                self.sock = socket.create_connection((address, self.port), self.timeout)
            except TimeoutError:
                raise
            except OSError as exc:
                error = exc
                continue
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return
        assert error is not None
        raise error


class _PinnedHTTPS(_PinnedHTTP):
    """Over TLS: the name is the server name sent and the name verified."""

    default_port = http.client.HTTPS_PORT

    def __init__(self, host: str, port: int | None, addresses: Sequence[str],
                 timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, addresses, timeout)
        self._tls = context

    def connect(self) -> None:
        super().connect()
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self.host)


class GuardedGet:
    """GET with redirects, every hop resolved and guarded (see the module doc).

    ``allow``: the non-public networks the operator lets through
    (HOSTWATCH_ALLOW_PRIVATE); empty in production. ``trusted``: URLs the
    operator wrote into the configuration themselves (an RDAP base URL such
    as ``http://127.0.0.1:8080``): a hop to exactly such an origin (scheme,
    address and port) is the operator's own choice, not a server's, and is
    not refused; another port of that address is (a redirect must not reach
    the operator's other services). A name is never trusted (what it
    resolves to is not the operator's word). ``tls``:
    the TLS context (default: the system's trusted CAs, names verified).
    """

    def __init__(self, resolver: Resolver, allow: Sequence[Network] = (), *,
                 timeout: float = 10.0, max_bytes: int = 4 * 1024 * 1024,
                 max_redirects: int = 5, tls: ssl.SSLContext | None = None,
                 trusted: Sequence[str] = ()) -> None:
        self.resolver = resolver
        self.allow = tuple(allow)
        self.trusted = frozenset(_origin(u) for u in trusted) - {None}
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self._tls = tls or ssl.create_default_context()

    def get(self, url: str, headers: Mapping[str, str]) -> Reply:
        """The answer at the end of the redirects (any status but a redirect).

        A `FetchError` says in ``requests`` how many requests were sent."""
        deadline = time.monotonic() + self.timeout
        seen: set[str] = set()
        requests = 0
        try:
            for hop in range(self.max_redirects + 1):
                if url in seen:
                    raise FetchError(FetchErrorKind.REDIRECT, hop, f"{_who(hop)} is a URL "
                                     "already asked: a redirect loop")
                seen.add(url)
                addresses = self._addresses(url, hop)
                requests += 1
                status, answer_headers, body = self._one(url, addresses, hop, headers,
                                                         deadline)
                if status not in REDIRECT_STATUSES:
                    return Reply(url, status, answer_headers, body, requests)
                url = redirect_target(url, answer_headers.get("Location"), hop + 1)
            raise FetchError(FetchErrorKind.REDIRECT, self.max_redirects + 1,
                             f"more than {self.max_redirects} redirects")
        except FetchError as exc:
            exc.requests = requests
            raise

    def _addresses(self, url: str, hop: int) -> list[str]:
        host = urlsplit(url).hostname or ""
        if _origin(url) in self.trusted:
            return [host.strip("[]")]
        lookup = asyncio.run(self.resolver.addresses(host))
        if isinstance(lookup, DnsFailure):
            raise FetchError(FetchErrorKind.CONNECTION, hop,
                             f"{_who(hop)} does not resolve ({lookup.kind.value})")
        allowed, refusal = allowed_addresses(lookup.addresses, self.allow)
        if not allowed:
            raise FetchError(FetchErrorKind.REFUSED, hop,
                             f"{_who(hop)} refused by the address guard: {refusal}")
        return allowed

    def _one(self, url: str, addresses: Sequence[str], hop: int, headers: Mapping[str, str],
             deadline: float) -> tuple[int, http.client.HTTPMessage, bytes]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        remaining = max(deadline - time.monotonic(), 0.001)
        timeout = min(self.timeout, remaining)
        connection: _PinnedHTTP
        try:
            port = parts.port
        except ValueError:
            raise FetchError(FetchErrorKind.CONNECTION, hop,
                             f"{_who(hop)} has a port out of range") from None
        if parts.scheme.lower() == "https":
            connection = _PinnedHTTPS(host, port, addresses, timeout, self._tls)
        else:
            connection = _PinnedHTTP(host, port, addresses, timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # A socket timeout bounds each read, not the answer: a server sending
        # a header line just before each read would time out could hold the
        # enrichment for hours. At the deadline the socket is shut, which
        # ends whatever read is waiting.
        watchdog = threading.Timer(remaining, _cut, (connection,))
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.request("GET", path, headers=dict(headers))
            response = connection.getresponse()
            if response.status in REDIRECT_STATUSES:
                return response.status, response.headers, b""
            body = self._read(response, hop, deadline)
            if time.monotonic() >= deadline:  # cut short by the watchdog
                raise TimeoutError
            return response.status, response.headers, body
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            if isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
                raise FetchError(FetchErrorKind.TIMEOUT, hop,
                                 f"{_who(hop)}: no answer within {self.timeout} s") from None
            raise self._failure(exc, hop) from None
        finally:
            watchdog.cancel()
            connection.close()

    @staticmethod
    def _failure(exc: OSError | http.client.HTTPException, hop: int) -> FetchError:
        """A failed request in hostwatch's words, not the exception's."""
        if isinstance(exc, ssl.SSLError):
            return FetchError(FetchErrorKind.CONNECTION, hop,
                              f"{_who(hop)}: TLS failed ({type(exc).__name__})")
        if isinstance(exc, OSError):
            reason = exc.strerror or type(exc).__name__
            return FetchError(FetchErrorKind.CONNECTION, hop, f"{_who(hop)}: {reason}")
        # Its message may quote the server's bytes (a bad status line).
        return FetchError(FetchErrorKind.CONNECTION, hop,
                          f"{_who(hop)}: broken HTTP answer ({type(exc).__name__})")

    def _read(self, response: http.client.HTTPResponse, hop: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read1(65536):
            size += len(chunk)
            if size > self.max_bytes:
                raise FetchError(FetchErrorKind.TOO_LARGE, hop,
                                 f"answer larger than {self.max_bytes} bytes")
            if time.monotonic() > deadline:
                raise FetchError(FetchErrorKind.TIMEOUT, hop,
                                 f"answer not complete within {self.timeout} s")
            chunks.append(chunk)
        return b"".join(chunks)


def _cut(connection: http.client.HTTPConnection) -> None:
    """End every read and write on ``connection``'s socket (from another thread).
    socket.socket's own shutdown: an SSLSocket's would drop its TLS state
    under the reading thread."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, address, port) of a URL whose host is an IP address literal;
    None for a name or a URL without a valid port."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return None
    address = _literal(parts.hostname or "")
    return None if address is None else (parts.scheme.lower(), address, port)


def _literal(host: str) -> str | None:
    """The canonical form of an IP address literal; None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]")).compressed
    except ValueError:
        return None


def status_text(status: int) -> str:
    """``HTTP 503 Service Unavailable``: the standard phrase, not the server's."""
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"
