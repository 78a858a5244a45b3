"""crawler.browser.proxy: the browser's guarded way out, against real local servers.

Each test starts a `GuardedProxy` on 127.0.0.1 that resolves through
hostwatch's `Resolver` pointed at the test internet's DNS, and talks to it
the way Chromium does: absolute-form requests and CONNECT, over a raw
asyncio socket (so every byte the client receives can be inspected), or with
aiohttp's ``proxy=``. Only loopback is allowed (``127.0.0.0/8``), so a name
that resolves to 10.0.0.5 must be refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import aiohttp
import pytest

from crawler.browser.proxy import REQUEST_BODY_LIMIT, GuardedProxy, ProxyEvent
from crawler.verdict import ErrorKind
from lab import Behaviour, Host, Raw, Serve, Slow, Status, TestInternet, marker_body
from lab.behaviours import Context, Hangup, Reply, Request
from outbound.dns import Resolver
from outbound.guard import Network, parse_networks

ALLOW = parse_networks(["127.0.0.0/8"])
MARKER = "HW-PROXY-MARKER-7f3a91"
MARKER_BYTES = MARKER.encode()
IMAGE = marker_body(MARKER, size=200_000, kind="jpeg")
PAGE = (b"<!doctype html><html><head><title>Item a1</title></head>"
        b'<body><div id="app"></div><script src="/static/gallery.js"></script></body></html>')

T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), 20)

    return asyncio.run(bounded())


@pytest.fixture
def resolver(net: TestInternet) -> Resolver:
    return Resolver((net.nameserver,), timeout=2)


@pytest.fixture
def gallery(net: TestInternet) -> Host:
    host = net.add_host("gallery.test")
    host.route("/g/a1", Serve(PAGE, content_type="text/html; charset=utf-8"))
    host.route("/m/a1.jpg", Serve(IMAGE, content_type="image/jpeg"))
    return host


def proxy_for(resolver: Resolver, allow: tuple[Network, ...] = ALLOW,
              timeout: float = 5.0) -> GuardedProxy:
    return GuardedProxy(resolver, allow, timeout=timeout)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes  # every byte the client received


async def exchange(proxy: GuardedProxy, data: bytes, *, timeout: float = 10) -> Answer:
    """Send ``data`` as a browser would and read everything until the proxy closes."""
    parts = urlsplit(proxy.url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    return parse(raw)


def parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(lines[0].split(" ")[1]), headers, body, raw)


def get(url: str, *extra: str) -> bytes:
    parts = urlsplit(url)
    lines = [f"GET {url} HTTP/1.1", f"Host: {parts.netloc}", "User-Agent: hostwatch-test",
             "Proxy-Connection: keep-alive", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(target: str) -> bytes:
    return f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()


def only_event(proxy: GuardedProxy) -> ProxyEvent:
    assert len(proxy.events) == 1, proxy.events
    return proxy.events[0]


# -- plain HTTP, relayed -------------------------------------------------------------------


def test_an_html_page_is_relayed_with_its_status_and_body(resolver, gallery):
    async def scenario() -> Answer:
        async with proxy_for(resolver) as proxy:
            answer = await exchange(proxy, get(gallery.url("/g/a1")))
            event = only_event(proxy)
        assert (event.target, event.method) == (gallery.url("/g/a1"), "GET")
        assert event.ip == gallery.ip
        assert (event.status, event.content_type) == (200, "text/html; charset=utf-8")
        assert event.refused is None and event.error is None and not event.media
        return answer

    answer = run(scenario)
    assert answer.status == 200
    assert answer.body == PAGE
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["connection"] == "close"


def test_an_error_status_and_a_redirect_are_relayed_not_acted_upon(resolver, net, gallery):
    gallery.route("/gone", Status(404))
    gallery.route("/moved", Serve(b"", content_type="text/html", status=302,
                                  headers={"Location": "/elsewhere"}))

    async def scenario() -> tuple[Answer, Answer]:
        async with proxy_for(resolver) as proxy:
            return (await exchange(proxy, get(gallery.url("/gone"))),
                    await exchange(proxy, get(gallery.url("/moved"))))

    gone, moved = run(scenario)
    assert gone.status == 404 and b"404 Not Found" in gone.body
    # The browser follows redirects itself (each one through the guard again).
    assert moved.status == 302 and moved.headers["location"] == "/elsewhere"
    assert [hit.path for hit in net.hits] == ["/gone", "/moved"]


def test_aiohttp_through_the_proxy_gets_the_page(resolver, net, gallery):
    async def scenario() -> tuple[int, bytes]:
        async with proxy_for(resolver) as proxy, aiohttp.ClientSession() as session, \
                session.get(gallery.url("/g/a1"), proxy=proxy.url) as response:
            return response.status, await response.read()

    assert run(scenario) == (200, PAGE)
    (hit,) = net.hits
    assert (hit.host, hit.ip, hit.path) == ("gallery.test", gallery.ip, "/g/a1")


def test_a_small_request_body_is_forwarded(resolver, net, gallery):
    gallery.route("/api/like", Serve(b"{}", content_type="application/json"))
    body = b'{"item": "a1"}'
    request = (f"POST {gallery.url('/api/like')} HTTP/1.1\r\nHost: gallery.test\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
               ).encode() + body

    async def scenario() -> Answer:
        async with proxy_for(resolver) as proxy:
            return await exchange(proxy, request)

    assert run(scenario).status == 200
    assert [(hit.method, hit.path) for hit in net.hits] == [("POST", "/api/like")]


# -- names and addresses -----------------------------------------------------------------


def test_a_name_that_does_not_exist_is_a_502_and_nxdomain(resolver, net):
    async def scenario() -> tuple[Answer, ProxyEvent]:
        async with proxy_for(resolver) as proxy:
            answer = await exchange(proxy, get(f"http://nosuch.test:{net.port}/g/a1"))
            return answer, only_event(proxy)

    answer, event = run(scenario)
    assert answer.status == 502
    assert "x-hostwatch-refused" in answer.headers
    assert event.error is ErrorKind.NXDOMAIN
    assert event.ip is None and event.status is None
    assert "nosuch.test" in (event.refused or "")


def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(resolver, net):
    net.add_a("private.test", "10.0.0.5")

    async def scenario() -> tuple[Answer, ProxyEvent, float]:
        async with proxy_for(resolver, timeout=5) as proxy:
            started = time.monotonic()
            answer = await exchange(proxy, get(f"http://private.test:{net.port}/x.jpg"))
            return answer, only_event(proxy), time.monotonic() - started

    answer, event, took = run(scenario)
    assert answer.status == 502
    assert "x-hostwatch-refused" in answer.headers
    assert event.error is ErrorKind.BLOCKED
    assert "10.0.0.5" in (event.refused or "") and "private" in (event.refused or "")
    # No connection: no peer address, no status, and no wait for a connect
    # to an address where nothing answers.
    assert event.ip is None and event.status is None
    assert took < 2


def test_a_forbidden_address_gets_no_connection_at_all(resolver, net, gallery):
    # The host listens (on loopback), but this proxy allows no private
    # network: not one request may reach it.
    async def scenario() -> tuple[Answer, ProxyEvent]:
        async with proxy_for(resolver, allow=()) as proxy:
            answer = await exchange(proxy, get(gallery.url("/g/a1")))
            return answer, only_event(proxy)

    answer, event = run(scenario)
    assert answer.status == 502
    assert event.error is ErrorKind.BLOCKED and "loopback" in (event.refused or "")
    assert net.hits == []


@pytest.mark.parametrize("target", ["http://10.0.0.5/", "http://169.254.169.254/latest/",
                                    "http://[::1]/"])
def test_an_ip_literal_outside_the_allowed_networks_is_refused(resolver, net, target):
    async def scenario() -> tuple[Answer, ProxyEvent]:
        async with proxy_for(resolver) as proxy:
            answer = await exchange(proxy, get(target))
            return answer, only_event(proxy)

    answer, event = run(scenario)
    assert answer.status == 502
    assert event.error is ErrorKind.BLOCKED and event.ip is None


def test_a_name_with_a_forbidden_and_an_allowed_address_uses_the_allowed_one(
        resolver, net, gallery):
    net.add_a("mixed.test", "10.0.0.5")
    net.add_a("mixed.test", gallery.ip)
    gallery_path = "/g/a1"

    async def scenario() -> tuple[Answer, ProxyEvent]:
        async with proxy_for(resolver) as proxy:
            answer = await exchange(proxy, get(f"http://mixed.test:{net.port}{gallery_path}"))
            return answer, only_event(proxy)

    answer, event = run(scenario)
    assert (answer.status, answer.body) == (200, PAGE)
    assert event.ip == gallery.ip


# -- media: refused on its headers, body never read --------------------------------------


@pytest.mark.parametrize("content_type", [
    "image/jpeg", "IMAGE/PNG; charset=binary", "video/mp4", "audio/mpeg", "font/woff2",
    "application/octet-stream", "application/vnd.apple.mpegurl",
])
def test_a_media_response_is_refused_and_none_of_its_bytes_reach_the_client(
        resolver, net, gallery, content_type):
    gallery.route("/m/b2", Serve(IMAGE, content_type=content_type))

    async def scenario() -> tuple[Answer, ProxyEvent]:
        async with proxy_for(resolver) as proxy:
            answer = await exchange(proxy, get(gallery.url("/m/b2")))
            return answer, only_event(proxy)

    answer, event = run(scenario)
    assert answer.status == 403
    assert answer.headers["x-hostwatch-refused"] == "media"
    # At most the proxy's own short note, never the upstream's body.
    assert answer.headers["content-type"] == "text/plain"
    assert len(answer.body) < 512
    assert MARKER_BYTES not in answer.raw
    assert IMAGE[:64] not in answer.raw  # not even the JPEG header
    assert event.media is True
    assert (event.status, event.content_type, event.ip) == (200, content_type, gallery.ip)
    assert [hit.path for hit in net.hits] == ["/m/b2"]  # asked, so the URL is known


def test_a_download_is_refused_whatever_its_type(resolver, gallery):
    body = b"plain text " + MARKER_BYTES
    gallery.route("/dl", Serve(body, content_type="text/plain",
                               headers={"Content-Disposition": 'attachment; filename="a.jpg"'}))

    async def scenario() -> tuple[Answer, ProxyEvent]:
        async with proxy_for(resolver) as proxy:
            answer = await exchange(proxy, get(gallery.url("/dl")))
            return answer, only_event(proxy)

    answer, event = run(scenario)
    assert (answer.status, answer.headers["x-hostwatch-refused"]) == (403, "media")
    assert MARKER_BYTES not in answer.raw
    assert event.media is True


def test_an_inline_disposition_is_not_a_download(resolver, gallery):
    gallery.route("/doc", Serve(b"hello", content_type="text/plain",
                                headers={"Content-Disposition": "inline"}))

    async def scenario() -> Answer:
        async with proxy_for(resolver) as proxy:
            return await exchange(proxy, get(gallery.url("/doc")))

    answer = run(scenario)
    assert (answer.status, answer.body) == (200, b"hello")


@dataclass(frozen=True)
class HeadThenStall(Behaviour):
    """A media head and the first body bytes, then nothing until the client leaves."""

    content_type: str = "image/jpeg"

    def reply(self, request: Request, context: Context) -> Reply:
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: {self.content_type}\r\n"
                f"Content-Length: {len(IMAGE)}\r\n\r\n").encode()
        return Hangup(head + IMAGE[:4096], hold=15)


def test_a_media_response_is_refused_on_its_headers_without_waiting_for_the_body(
        resolver, gallery):
    # A proxy that read (or drained) the body would wait here for bytes that
    # never come: the refusal must come at once.
    gallery.route("/m/stall.jpg", HeadThenStall())

    async def scenario() -> tuple[Answer, float]:
        async with proxy_for(resolver, timeout=8) as proxy:
            started = time.monotonic()
            answer = await exchange(proxy, get(gallery.url("/m/stall.jpg")))
            return answer, time.monotonic() - started

    answer, took = run(scenario)
    assert (answer.status, answer.headers["x-hostwatch-refused"]) == (403, "media")
    assert MARKER_BYTES not in answer.raw
    assert took < 2


# -- CONNECT tunnels ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["private.test", "nosuch.test", "10.0.0.5", "169.254.169.254"])
def test_connect_to_a_forbidden_or_unknown_target_is_refused(resolver, net, name):
    net.add_a("private.test", "10.0.0.5")

    async def scenario() -> tuple[Answer, ProxyEvent]:
        async with proxy_for(resolver) as proxy:
            answer = await exchange(proxy, connect(f"{name}:443"))
            return answer, only_event(proxy)

    answer, event = run(scenario)
    assert answer.status == 403
    assert not answer.raw.startswith(b"HTTP/1.1 200")
    assert event.method == "CONNECT" and event.target == f"{name}:443"
    assert event.error in (ErrorKind.BLOCKED, ErrorKind.NXDOMAIN)
    assert event.ip is None


def test_connect_to_an_allowed_host_tunnels_bytes_both_ways(resolver, net, gallery):
    async def scenario() -> tuple[bytes, Answer, ProxyEvent]:
        async with proxy_for(resolver) as proxy:
            parts = urlsplit(proxy.url)
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            try:
                writer.write(connect(f"gallery.test:{net.port}"))
                established = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                # Now a plain request, end to end through the tunnel.
                writer.write(f"GET /g/a1 HTTP/1.1\r\nHost: gallery.test:{net.port}\r\n"
                             "Connection: close\r\n\r\n".encode())
                await writer.drain()
                inside = parse(await asyncio.wait_for(reader.read(-1), 5))
            finally:
                writer.close()
            return established, inside, only_event(proxy)

    established, inside, event = run(scenario)
    assert established.startswith(b"HTTP/1.1 200")
    assert (inside.status, inside.body) == (200, PAGE)
    assert event.ip == gallery.ip and event.error is None
    assert [(hit.path, hit.ip) for hit in net.hits] == [("/g/a1", gallery.ip)]


# -- what the proxy will not forward ----------------------------------------------------


def test_a_request_body_over_one_mebibyte_is_413_and_never_forwarded(resolver, net, gallery):
    gallery.route("/upload", Serve(b"ok", content_type="text/plain"))
    request = (f"POST {gallery.url('/upload')} HTTP/1.1\r\nHost: gallery.test\r\n"
               f"Content-Length: {REQUEST_BODY_LIMIT + 1}\r\n\r\n").encode()

    async def scenario() -> tuple[Answer, ProxyEvent]:
        async with proxy_for(resolver) as proxy:
            answer = await exchange(proxy, request)
            return answer, only_event(proxy)

    answer, event = run(scenario)
    assert answer.status == 413
    assert event.refused == "request body too large"
    assert net.hits == []


def test_a_request_body_of_exactly_the_limit_is_forwarded(resolver, net, gallery):
    gallery.route("/upload", Serve(b"ok", content_type="text/plain"))
    body = b"x" * REQUEST_BODY_LIMIT
    request = (f"POST {gallery.url('/upload')} HTTP/1.1\r\nHost: gallery.test\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def scenario() -> Answer:
        async with proxy_for(resolver) as proxy:
            return await exchange(proxy, request)

    assert run(scenario).status == 200
    assert [hit.path for hit in net.hits] == ["/upload"]


def test_a_chunked_request_body_is_not_forwarded(resolver, net, gallery):
    request = (f"POST {gallery.url('/g/a1')} HTTP/1.1\r\nHost: gallery.test\r\n"
               "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n").encode()

    async def scenario() -> Answer:
        async with proxy_for(resolver) as proxy:
            return await exchange(proxy, request)

    assert run(scenario).status == 411
    assert net.hits == []


@pytest.mark.parametrize("target", ["https://gallery.test/g/a1", "/g/a1",
                                    "ftp://gallery.test/a.jpg"])
def test_a_request_that_is_not_an_absolute_http_url_is_400(resolver, net, gallery, target):
    async def scenario() -> Answer:
        async with proxy_for(resolver) as proxy:
            return await exchange(proxy, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    assert run(scenario).status == 400
    assert net.hits == []


# -- shutting down ----------------------------------------------------------------------------


def test_close_returns_promptly_with_connections_open(resolver, net, gallery):
    gallery.route("/slow", Slow(10, Serve(b"late", content_type="text/plain")))

    async def scenario() -> tuple[float, list[bytes]]:
        proxy = await proxy_for(resolver, timeout=30).start()
        parts = urlsplit(proxy.url)
        clients = [await asyncio.open_connection(parts.hostname, parts.port) for _ in range(3)]
        (r1, w1), (r2, w2), (r3, w3) = clients
        w1.write(connect(f"gallery.test:{net.port}"))  # an idle tunnel
        await r1.readuntil(b"\r\n\r\n")
        w2.write(b"GET http://gallery.test/ HTTP/1.1\r\nHost: gal")  # half a head
        w3.write(get(gallery.url("/slow")))  # waiting on the upstream
        await w2.drain()
        await w3.drain()
        await asyncio.sleep(0.3)  # let the proxy take all three up
        started = time.monotonic()
        await proxy.close()
        took = time.monotonic() - started
        # Every client sees its connection end (EOF), none is left hanging.
        rest = [await asyncio.wait_for(reader.read(-1), 2) for reader, _ in clients]
        for _, writer in clients:
            writer.close()
        return took, rest

    took, rest = run(scenario)
    assert took < 1.5
    assert b"late" not in rest[2]


def test_a_closed_proxy_accepts_no_new_connection(resolver):
    async def scenario() -> None:
        proxy = await proxy_for(resolver).start()
        parts = urlsplit(proxy.url)
        await proxy.close()
        with pytest.raises(OSError):
            await asyncio.open_connection(parts.hostname, parts.port)

    run(scenario)


# -- media sent under another type: recognised by its first bytes --------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "text/html", "application/json", ""])
def test_media_sent_as_something_else_is_refused_by_its_first_bytes(
        resolver, gallery, content_type):
    gallery.route("/x", Serve(IMAGE, content_type=content_type))

    async def scenario() -> tuple[Answer, ProxyEvent]:
        async with proxy_for(resolver) as proxy:
            answer = await exchange(proxy, get(gallery.url("/x")))
            return answer, only_event(proxy)

    answer, event = run(scenario)
    assert (answer.status, answer.headers["x-hostwatch-refused"]) == (403, "media")
    assert MARKER_BYTES not in answer.raw and IMAGE[:3] not in answer.raw
    assert event.media is True


def test_a_page_that_merely_mentions_a_signature_is_relayed(resolver, gallery):
    page = b"<html><body>GIF89a and \x89PNG are just words here " + MARKER_BYTES + b"</body></html>"
    gallery.route("/words", Serve(page, content_type="text/html"))

    async def scenario() -> Answer:
        async with proxy_for(resolver) as proxy:
            return await exchange(proxy, get(gallery.url("/words")))

    answer = run(scenario)
    assert answer.status == 200 and answer.body == page  # the first bytes were passed on too


@pytest.mark.parametrize("reply", [MARKER_BYTES + b" and no status line\r\n\r\n",
                                   b"HTTP/1.1 2" + MARKER_BYTES + b" OK\r\n\r\n",
                                   b"HTTP/1.1 200 OK\r\n" + MARKER_BYTES + b"\r\n\r\n",
                                   MARKER_BYTES])
def test_a_reply_that_is_not_http_is_the_servers_bad_response_not_a_400(resolver, net, reply):
    host = net.add_host("hostile.test")
    host.route("/p", Raw(reply))
    url = host.url("/p")

    async def scenario() -> tuple[Answer, list[ProxyEvent]]:
        async with proxy_for(resolver) as proxy:
            answer = await exchange(proxy, f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            return answer, proxy.events

    answer, events = run(scenario)
    assert answer.status == 502  # a gateway's answer: the host said nothing usable
    assert MARKER_BYTES not in answer.raw
    assert events[0].error is ErrorKind.BAD_RESPONSE
    assert MARKER not in (events[0].refused or "")


# -- documents over max_body ----------------------------------------------------------------

BIG_PAGE = b"<!doctype html><html><body><p>" + b"x" * 300_000 + b"</p></body></html>"


def _chunked(body: bytes, size: int = 10_000) -> bytes:
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%b\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


@dataclass(frozen=True)
class SentThenStall(Behaviour):
    """An HTML head and ``body`` (maybe only its start), then nothing until the client leaves."""

    head: bytes
    body: bytes

    def reply(self, request: Request, context: Context) -> Reply:
        return Hangup(self.head + self.body, hold=15)


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_document_over_max_body_ends_cleanly_at_the_limit(resolver, gallery, framing):
    """The browser gets the first max_body bytes as a whole document, at
    once: framed by a Content-Length of what it gets, or (chunked) decoded
    and ended by the close. The proxy announced the upstream's length (or
    relayed chunks cut mid-way), and Chromium waited for the rest until the
    page timeout. The server here sends more than the limit, then stalls."""
    limit = 64 * 1024
    if framing == "length":
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                b"Content-Length: %d\r\n\r\n" % len(BIG_PAGE))
        sent = BIG_PAGE[:100_000]
    else:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
        sent = _chunked(BIG_PAGE)[:100_000]
    gallery.route("/big", SentThenStall(head, sent))

    async def scenario() -> tuple[Answer, ProxyEvent, float]:
        proxy = GuardedProxy(resolver, ALLOW, timeout=8, max_body=limit)
        async with proxy:
            started = time.monotonic()
            answer = await exchange(proxy, get(gallery.url("/big")))
            return answer, only_event(proxy), time.monotonic() - started

    answer, event, took = run(scenario)
    assert answer.status == 200
    assert answer.body == BIG_PAGE[:limit]
    assert "transfer-encoding" not in answer.headers
    assert answer.headers.get("content-length") in (None, str(limit))
    assert event.truncated
    assert took < 4, f"{took:.1f} s"


def test_a_chunked_document_under_max_body_is_relayed_whole_and_decoded(resolver, gallery):
    gallery.route("/chunked", Raw(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(PAGE, 40)))

    async def scenario() -> tuple[Answer, ProxyEvent]:
        async with proxy_for(resolver) as proxy:
            answer = await exchange(proxy, get(gallery.url("/chunked")))
            return answer, only_event(proxy)

    answer, event = run(scenario)
    assert (answer.status, answer.body) == (200, PAGE)
    assert "transfer-encoding" not in answer.headers and not event.truncated
