"""Scripted HTTP behaviours for the local test internet.

A behaviour turns one request into a reply: a :class:`Response` (status,
headers and a body or a stream) or a :class:`Hangup` (some raw bytes or
nothing, then the connection is closed). Behaviours are plain data with no
I/O, so they can be listed per round and checked without a server; the server
in ``lab.http`` does the writing.
"""

from __future__ import annotations

import hashlib
import html
import random
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Literal, Protocol
from urllib.parse import parse_qs, quote

CHUNK_SIZE = 64 * 1024
"""Huge bodies are written in chunks of this size, never held whole."""


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request as a behaviour sees it."""

    method: str
    target: str
    path: str
    query: str
    version: str
    headers: dict[str, str]
    """Header names lowercased; repeated headers joined with ", "."""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


@dataclass(frozen=True, slots=True)
class Stream:
    """A body of ``size`` bytes generated from ``fill`` while it is sent."""

    size: int
    fill: bytes = b"x"
    chunked: bool = False


@dataclass(frozen=True, slots=True)
class Response:
    """A full HTTP response; the server adds Content-Length (or chunking)."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    stream: Stream | None = None
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Hangup:
    """No complete HTTP response: write ``data`` (maybe nothing), then close.

    ``reset`` closes with a TCP RST (SO_LINGER 0) instead of a FIN. ``hold``
    keeps the connection open that many seconds after ``data`` (or until the
    client closes its side), for a page that stalls half-sent yet never
    holds a server thread or a test's teardown for long.
    """

    data: bytes = b""
    reset: bool = False
    delay: float = 0.0
    hold: float = 0.0


Reply = Response | Hangup


class Context(Protocol):
    """What a behaviour may ask of the host serving it."""

    def count(self, path: str) -> int:
        """How many earlier requests for ``path`` asked this; counts this one."""
        ...


class Behaviour:
    """Base of every behaviour: turns a request into a reply."""

    def reply(self, request: Request, context: Context) -> Reply:
        raise NotImplementedError


def _page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html><head><title>{html.escape(title)}</title></head>"
        f"<body>{body}</body></html>"
    ).encode()


def _extra(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(headers.items())


def reason_phrase(code: int) -> str:
    """The standard reason phrase for ``code``, or "Unknown"."""
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


@dataclass(frozen=True)
class Serve(Behaviour):
    """Serve ``body`` (with Content-Length), e.g. the reported image."""

    body: bytes
    content_type: str = "image/jpeg"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def reply(self, request: Request, context: Context) -> Reply:
        return Response(
            self.status, (("Content-Type", self.content_type), *_extra(self.headers)), self.body
        )


@dataclass(frozen=True)
class Status(Behaviour):
    """A bare status such as 404, 410, 451, 500 or 503 with a short HTML page."""

    code: int
    body: bytes | None = None
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    def reply(self, request: Request, context: Context) -> Reply:
        body = self.body
        if body is None:
            title = f"{self.code} {reason_phrase(self.code)}"
            body = _page(title, f"<h1>{html.escape(title)}</h1>")
        return Response(
            self.code, (("Content-Type", self.content_type), *_extra(self.headers)), body
        )


def _redirect(location: str, status: int, headers: dict[str, str] | None = None) -> Response:
    link = html.escape(location)
    return Response(
        status,
        (
            ("Location", location),
            ("Content-Type", "text/html; charset=utf-8"),
            *_extra(headers or {}),
        ),
        _page("Moved", f'<p>Moved to <a href="{link}">{link}</a>.</p>'),
    )


@dataclass(frozen=True)
class Redirect(Behaviour):
    """Redirect to ``location`` (absolute or relative, sent as given)."""

    location: str
    status: int = 302
    headers: dict[str, str] = field(default_factory=dict)

    def reply(self, request: Request, context: Context) -> Reply:
        return _redirect(self.location, self.status, self.headers)


@dataclass(frozen=True)
class RedirectHome(Behaviour):
    """302 to the home page: a classic way of hiding removed content."""

    status: int = 302

    def reply(self, request: Request, context: Context) -> Reply:
        return _redirect("/", self.status)


@dataclass(frozen=True)
class RedirectLogin(Behaviour):
    """302 to ``/login?next=<path>``: content put behind a login wall."""

    status: int = 302

    def reply(self, request: Request, context: Context) -> Reply:
        return _redirect("/login?next=" + quote(request.path, safe="/%"), self.status)


@dataclass(frozen=True)
class EndlessRedirect(Behaviour):
    """302 to the same path with ``?hop=N+1``, forever (a redirect loop)."""

    status: int = 302

    def reply(self, request: Request, context: Context) -> Reply:
        try:
            hop = int(parse_qs(request.query).get("hop", ["0"])[0])
        except ValueError:
            hop = 0
        return _redirect(f"{request.path}?hop={hop + 1}", self.status)


@dataclass(frozen=True)
class Slow(Behaviour):
    """Wait ``seconds`` before sending anything, then behave like ``then``."""

    seconds: float
    then: Behaviour = field(default_factory=lambda: Serve(b"late", content_type="text/plain"))

    def reply(self, request: Request, context: Context) -> Reply:
        later = self.then.reply(request, context)
        return replace(later, delay=later.delay + self.seconds)


@dataclass(frozen=True)
class Bursts(Behaviour):
    """The first ``failures`` requests to the path get ``status``; later ones ``then``.

    Counted per host and path, across rounds, over the requests this
    behaviour answered.
    """

    failures: int
    then: Behaviour
    status: int = 503

    def reply(self, request: Request, context: Context) -> Reply:
        if context.count(request.path) < self.failures:
            return Status(self.status).reply(request, context)
        return self.then.reply(request, context)


@dataclass(frozen=True)
class Garbage(Behaviour):
    """Write ``size`` seeded random bytes that are not HTTP, then close."""

    size: int = 512
    seed: int = 0

    def reply(self, request: Request, context: Context) -> Reply:
        # A NUL first byte guarantees no client mistakes it for a status line.
        return Hangup(b"\x00" + random.Random(self.seed).randbytes(max(self.size - 1, 0)))


@dataclass(frozen=True)
class Raw(Behaviour):
    """Write ``data`` exactly as given as the whole reply, then close.

    For hostile replies no well-behaved server sends: a body with no status
    line, a garbage or oversized header, a broken chunked body. The server
    adds nothing (no Content-Length, no Connection header).
    """

    data: bytes

    def reply(self, request: Request, context: Context) -> Reply:
        return Hangup(self.data)


@dataclass(frozen=True)
class Huge(Behaviour):
    """Stream ``size`` bytes of ``fill`` in 64 KiB chunks (never held whole)."""

    size: int
    content_type: str = "image/jpeg"
    chunked: bool = False
    fill: bytes = b"x"

    def __post_init__(self) -> None:
        if not self.fill:
            raise ValueError("fill must not be empty")

    def reply(self, request: Request, context: Context) -> Reply:
        return Response(
            200,
            (("Content-Type", self.content_type),),
            stream=Stream(self.size, self.fill, self.chunked),
        )


@dataclass(frozen=True)
class Reset(Behaviour):
    """Close the connection with a TCP reset and no response at all."""

    def reply(self, request: Request, context: Context) -> Reply:
        return Hangup(reset=True)


@dataclass(frozen=True)
class SoftNotFound(Behaviour):
    """A "Sorry, page not found" page that echoes the path (a soft 404)."""

    status: int = 200

    def reply(self, request: Request, context: Context) -> Reply:
        path = html.escape(request.path)
        body = _page(
            "Page not found",
            f"<h1>Sorry, page not found</h1><p>The page {path} does not exist or "
            'was removed.</p><p><a href="/">Back to the home page</a></p>',
        )
        return Response(self.status, (("Content-Type", "text/html; charset=utf-8"),), body)


@dataclass(frozen=True)
class Homepage(Behaviour):
    """The small home page every host serves at "/" unless routed otherwise."""

    def reply(self, request: Request, context: Context) -> Reply:
        name = html.escape(request.header("host", "this site"))
        body = _page(
            "Home",
            f"<h1>Welcome to {name}</h1><p>Photos, galleries and more.</p>"
            '<p><a href="/login">Log in</a></p>',
        )
        return Response(200, (("Content-Type", "text/html; charset=utf-8"),), body)


@dataclass(frozen=True)
class LoginPage(Behaviour):
    """The login form every host serves at "/login" unless routed otherwise."""

    def reply(self, request: Request, context: Context) -> Reply:
        body = _page(
            "Log in",
            '<h1>Log in</h1><form method="post" action="/login">'
            '<input name="user"><input name="password" type="password">'
            '<button type="submit">Log in</button></form>',
        )
        return Response(200, (("Content-Type", "text/html; charset=utf-8"),), body)


_JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"


def marker_body(
    marker: str, size: int = 2048, kind: Literal["jpeg", "html", "bin"] = "jpeg"
) -> bytes:
    """A deterministic body of ``size`` bytes (more if the marker needs it) holding ``marker``.

    ``jpeg`` looks like a JPEG (SOI, JFIF header, the marker in a comment
    segment, EOI); ``html`` is a page with the marker in its text; ``bin`` is
    the marker followed by filler. The filler is derived from the marker, so
    different markers give different hashes.
    """
    text = marker.encode()
    if kind == "jpeg":
        comment = text[:65533]
        head = _JPEG_HEAD + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
        tail = b"\xff\xd9"
    elif kind == "html":
        head = b"<!doctype html><html><body><p>" + html.escape(marker).encode() + b"</p><!-- "
        tail = b" --></body></html>"
    elif kind == "bin":
        head, tail = text, b""
    else:
        raise ValueError(f"unknown kind {kind!r}")
    need = max(size - len(head) - len(tail), 0)
    seed = hashlib.sha256(text).hexdigest().encode()  # hex: never 0xff, never "--"
    filler = (seed * (need // len(seed) + 1))[:need]
    return head + filler + tail
