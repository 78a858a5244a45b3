"""The local test internet's HTTP server, on raw asyncio streams.

Raw streams (not a web framework) because the point is to misbehave on cue:
stall, send garbage, reset, stream endlessly. Every listener runs on one
event loop in one background thread. Each listening socket belongs to one
:class:`Site` (a host), which decides the reply; this module only parses
requests and writes replies.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import struct
import threading
import weakref
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from lab.behaviours import (
    CHUNK_SIZE,
    Hangup,
    Reply,
    Request,
    Response,
    Status,
    Stream,
    reason_phrase,
)

log = logging.getLogger(__name__)

HEADER_LIMIT = 64 * 1024
"""Longest request head (request line and headers) accepted."""
BODY_LIMIT = 1024 * 1024
"""Longest request body read (and discarded)."""
PORT_RANGE = (20000, 60000)

T = TypeVar("T")


class Site(Protocol):
    """Whatever answers the requests arriving on one listening address."""

    def respond(self, request: Request, local_ip: str) -> Reply: ...


class BadRequest(ValueError):
    """The bytes received are not an HTTP/1.x request we can answer."""


def parse_request(head: bytes) -> Request:
    """Parse a request head (everything up to and including the blank line)."""
    lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest(f"bad request line {lines[0][:80]!r}")
    method, target, version = parts
    if not method.isalpha() or not method.isupper() or version not in ("HTTP/1.1", "HTTP/1.0"):
        raise BadRequest(f"bad request line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(f"bad header line {line[:80]!r}")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if target.startswith("/"):
        path, _, query = target.partition("?")
        path = path.partition("#")[0]
    elif target.startswith(("http://", "https://")):  # absolute form, as sent to proxies
        parts_ = urlsplit(target)
        path, query = parts_.path or "/", parts_.query
    else:
        raise BadRequest(f"bad request target {target[:80]!r}")
    return Request(method, target, path, query, version, headers)


def _keep_alive(request: Request) -> bool:
    tokens = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _head(
    reply: Response, extra: Iterable[tuple[str, str]], length: int | None, keep_alive: bool
) -> bytes:
    """The status line and headers; ``length`` None means chunked."""
    lines = [f"HTTP/1.1 {reply.status} {reason_phrase(reply.status)}"]
    lines.extend(f"{name}: {value}" for name, value in reply.headers)
    lines.extend(f"{name}: {value}" for name, value in extra)
    if length is None:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {length}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1", "replace")


def listen(ip: str, port: int) -> socket.socket:
    """A non-blocking TCP listener on ``ip``:``port`` (raises OSError if taken)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT only
        sock.bind((ip, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def listen_all(ips: list[str], attempts: int = 200) -> tuple[int, list[socket.socket]]:
    """Find one port free on every address in ``ips`` and listen on it."""
    rng = random.Random()  # private: a test seeding `random` must not pin our ports
    for _ in range(attempts):
        port = rng.randint(*PORT_RANGE)
        socks: list[socket.socket] = []
        try:
            for ip in ips:
                socks.append(listen(ip, port))
        except OSError:
            for sock in socks:
                sock.close()
            continue
        return port, socks
    raise OSError(f"no port in {PORT_RANGE} is free on all of {ips}")


class Listener:
    """One listening socket being served; HttpServer.close() ends it."""

    def __init__(self, server: asyncio.Server) -> None:
        self.server = server
        self.connections: set[asyncio.Task[None]] = set()


class HttpServer:
    """All listeners on one event loop in one background thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listeners: list[Listener] = []
        self._connections: set[asyncio.Task[None]] = set()
        self._transports: weakref.WeakSet[asyncio.WriteTransport] = weakref.WeakSet()
        self._bad_request = Status(400)

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        loop.call_soon(ready.set)
        self._thread = threading.Thread(target=loop.run_forever, name="testnet-http", daemon=True)
        self._thread.start()
        ready.wait()
        self._loop = loop

    def serve(self, sock: socket.socket, site: Site) -> Listener:
        """Start answering connections to ``sock`` with ``site`` (any thread)."""

        async def start() -> Listener:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await self._connection(site, reader, writer, listener)

            server = await asyncio.start_server(handle, sock=sock, limit=HEADER_LIMIT)
            # No await between here and the return: no connection is handled
            # before `listener` exists.
            listener = Listener(server)
            return listener

        listener = self._run(start())
        self._listeners.append(listener)
        return listener

    def close(self, listener: Listener) -> None:
        """Stop listening on ``listener`` and drop its open connections (any thread)."""

        async def close() -> None:
            listener.server.close()
            for task in list(listener.connections):
                task.cancel()
            await asyncio.gather(*listener.connections, return_exceptions=True)
            await listener.server.wait_closed()

        self._run(close())
        self._listeners.remove(listener)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._run(self._shutdown())
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
        self._loop = self._thread = None
        self._listeners = []

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "start() the server first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _shutdown(self) -> None:
        for listener in self._listeners:
            listener.server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for transport in list(self._transports):
            transport.abort()  # e.g. a stream to a client that stopped reading
        for listener in self._listeners:
            await listener.server.wait_closed()

    async def _connection(
        self,
        site: Site,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        listener: Listener,
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        listener.connections.add(task)
        self._transports.add(writer.transport)
        local_ip = writer.get_extra_info("sockname")[0]
        try:
            while await self._exchange(site, local_ip, reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            pass  # stop(): ending quietly here spares asyncio a spurious traceback
        finally:
            self._connections.discard(task)
            listener.connections.discard(task)
            writer.close()  # flushes what is buffered; stop() aborts what never flushes

    async def _exchange(
        self,
        site: Site,
        local_ip: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Read one request and answer it; True to keep the connection open."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False  # closed between requests (or mid-head: nothing to answer)
        except asyncio.LimitOverrunError:
            await self._refuse(writer, 431)
            return False
        try:
            request = parse_request(head)
        except BadRequest as exc:
            log.debug("bad request from client: %s", exc)
            await self._refuse(writer, 400)
            return False
        if "transfer-encoding" in request.headers:
            await self._refuse(writer, 501)  # chunked request bodies: not needed here
            return False
        length_text = request.headers.get("content-length", "0")
        if not length_text.isdigit():
            await self._refuse(writer, 400)
            return False
        if int(length_text) > BODY_LIMIT:
            await self._refuse(writer, 413)
            return False
        if length_text != "0":
            await reader.readexactly(int(length_text))
        try:
            reply = site.respond(request, local_ip)
        except Exception:
            log.exception("behaviour failed for %s %s", request.method, request.target)
            reply = Status(500).reply(request, _NoContext())
        return await self._send(reader, writer, request, reply, _keep_alive(request))

    async def _refuse(self, writer: asyncio.StreamWriter, code: int) -> None:
        reply = Status(code).reply(_NO_REQUEST, _NoContext())
        assert isinstance(reply, Response)
        writer.write(_head(reply, (), len(reply.body), False) + reply.body)
        await writer.drain()

    async def _send(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: Request,
        reply: Reply,
        keep_alive: bool,
    ) -> bool:
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if isinstance(reply, Hangup):
            await _hang_up(reader, writer, reply)
            return False
        head_only = request.method == "HEAD"
        stream = reply.stream
        if stream is None:
            head = _head(reply, (), len(reply.body), keep_alive)
            if head_only:
                writer.write(head)
            elif len(reply.body) <= CHUNK_SIZE:
                writer.write(head + reply.body)  # one segment: no extra round trip
            else:
                writer.write(head)
                writer.write(reply.body)
            await writer.drain()
            return keep_alive
        writer.write(_head(reply, (), None if stream.chunked else stream.size, keep_alive))
        if not head_only:
            await _write_stream(writer, stream)
        await writer.drain()
        return keep_alive


async def _hang_up(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: Hangup
) -> None:
    if reply.data:
        writer.write(reply.data)
        await writer.drain()
    if reply.hold > 0:
        await _until_client_leaves(reader, reply.hold)
    if reply.reset:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


async def _until_client_leaves(reader: asyncio.StreamReader, seconds: float) -> None:
    """Wait up to ``seconds`` for the client to close its side, discarding what it sends."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(CHUNK_SIZE):
                pass
    except TimeoutError:
        pass  # held as long as asked: now close


async def _write_stream(writer: asyncio.StreamWriter, stream: Stream) -> None:
    """Write ``stream.size`` bytes a chunk at a time, waiting for the client to keep up."""
    chunk = (stream.fill * (CHUNK_SIZE // len(stream.fill) + 1))[:CHUNK_SIZE]
    left = stream.size
    while left > 0:
        piece = chunk if left >= CHUNK_SIZE else chunk[:left]
        if stream.chunked:
            writer.write(b"%x\r\n%b\r\n" % (len(piece), piece))
        else:
            writer.write(piece)
        left -= len(piece)
        await writer.drain()  # raises ConnectionError once the client has gone
    if stream.chunked:
        writer.write(b"0\r\n\r\n")


class _NoContext:
    def count(self, path: str) -> int:
        return 0


_NO_REQUEST = Request("GET", "/", "/", "", "HTTP/1.1", {})
