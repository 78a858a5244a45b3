"""The browser's only way out: a guarded forward proxy, one per page visit.

Chromium is started so that it resolves no name itself (host-resolver rules
map everything to "not found" except this proxy's address) and each browser
context is given its own `GuardedProxy`. So every connection the page makes
passes here, where:

- names resolve through hostwatch's resolver (HOSTWATCH_NAMESERVERS, TTLs
  honoured), so the browser sees the same DNS as the HTTP checks;
- the address guard applies to every request, redirect and sub-resource, as
  for HTTP checks (a page cannot reach the hotline's network or a cloud
  metadata address);
- a plain-HTTP response whose headers say it is media (image, video, audio,
  font, a download) is refused before a byte of its body is read, and one
  whose first bytes are those of a media file (sent without a type, or as
  text) is refused after those few bytes, whatever asked for it (an <img>, a
  script's fetch(), a frame): the browser never holds the material. The URL
  is recorded, so the check knows what the page wanted to show. (HTTPS goes
  through as a CONNECT tunnel the proxy cannot read; there the browser's own
  request filter in `crawler.browser.page` is what blocks media.)

A body longer than ``max_body`` (HOSTWATCH_MAX_BODY) is cut there and still
ends cleanly, so the browser reads what it got instead of waiting for the
rest: announced with a Content-Length of ``max_body``, or (chunked, or
without a length) decoded and ended by closing the connection;
`ProxyEvent.truncated` records it.

Every answer the proxy gives the browser closes the connection; the browser
opens a new one for its next request. Each request is recorded as a
`ProxyEvent` (what, where it went, its status and type, or why it was
refused) for the check to read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from crawler.middlewares import DNS_ERROR_KINDS
from crawler.verdict import ErrorKind
from outbound.dns import DnsFailure, Resolver
from outbound.guard import Network, forbidden_reason

HEAD_LIMIT = 64 * 1024
REQUEST_BODY_LIMIT = 1024 * 1024
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization",
                        "proxy-authenticate", "te", "trailer", "upgrade"})
MEDIA_TYPES = ("image/", "video/", "audio/", "font/", "application/font",
               "application/x-font", "application/octet-stream", "application/mp4",
               "application/ogg", "application/x-mpegurl", "application/vnd.apple.mpegurl",
               "application/dash+xml")
REFUSED_HEADER = "X-Hostwatch-Refused"
SNIFF_BYTES = 64
# The first bytes of media files (and archives that could carry them).
MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "jpeg"), (0, b"\x89PNG\r\n\x1a\n", "png"), (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"), (0, b"RIFF", "riff (webp, avi, wav)"), (4, b"ftyp", "mp4/mov/heic/avif"),
    (0, b"\x1aE\xdf\xa3", "webm/mkv"), (0, b"OggS", "ogg"), (0, b"fLaC", "flac"),
    (0, b"ID3", "mp3"), (0, b"II*\x00", "tiff"), (0, b"MM\x00*", "tiff"),
    (0, b"\x00\x00\x01\x00", "ico"), (0, b"wOFF", "woff"), (0, b"wOF2", "woff2"),
    (0, b"OTTO", "otf"), (0, b"\x00\x01\x00\x00", "ttf"), (0, b"PK\x03\x04", "zip"),
    (0, b"Rar!", "rar"), (0, b"7z\xbc\xaf", "7z"), (0, b"FLV", "flv"),
)



@dataclass
class ProxyEvent:
    """One request the page made, as the proxy saw it."""

    target: str  # the URL (plain HTTP) or host:port (CONNECT)
    method: str
    ip: str | None = None
    status: int | None = None
    content_type: str | None = None
    refused: str | None = None  # "media", or why the request could not be made
    error: ErrorKind | None = None
    truncated: bool = False  # the body was cut at max_body: the browser got its first bytes

    @property
    def media(self) -> bool:
        return self.refused == "media"


def is_media_response(content_type: str | None, disposition: str | None) -> bool:
    """Headers that announce media or a download (the body is never read)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind.startswith(MEDIA_TYPES):
        return True
    return (disposition or "").strip().lower().startswith("attachment")


def sniff_media(first: bytes) -> str | None:
    """The media kind the first bytes of a body announce, or None."""
    for offset, magic, kind in MAGIC:
        if first[offset:offset + len(magic)] == magic:
            return kind
    return None


async def _head_of_body(reader: asyncio.StreamReader) -> bytes:
    """Up to SNIFF_BYTES of the body: enough for every signature, or all there is."""
    data = b""
    while len(data) < SNIFF_BYTES:
        chunk = await reader.read(SNIFF_BYTES - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _after_chunk_size(data: bytes) -> bytes:
    """The data of a chunked body's first chunk (its size line removed)."""
    line, sep, rest = data.partition(b"\r\n")
    return rest if sep and line.split(b";")[0].strip().isalnum() else data


class GuardedProxy:
    """See the module docstring. ``async with GuardedProxy(...) as proxy``."""

    def __init__(self, resolver: Resolver, allow: Sequence[Network], *,
                 timeout: float = 30.0, max_body: int = 16 * 1024 * 1024,
                 listen: str = "127.0.0.1") -> None:
        self.resolver = resolver
        self.allow = tuple(allow)
        self.timeout = timeout
        self.max_body = max_body
        self.listen = listen
        self.events: list[ProxyEvent] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None, "the proxy is not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> GuardedProxy:
        self._server = await asyncio.start_server(self._serve, self.listen, 0,
                                                  limit=HEAD_LIMIT)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def __aenter__(self) -> GuardedProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- one browser connection ------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.timeout)
            method, target, headers = _parse_head(head)
            if method == "CONNECT":
                await self._tunnel(target, reader, writer)
            else:
                await self._forward(method, target, headers, reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                TimeoutError, ConnectionError, OSError):
            with contextlib.suppress(Exception):
                writer.write(_answer(400, "bad request"))
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _address(self, host: str, event: ProxyEvent) -> str | None:
        """A guarded address for ``host``; None (and the event says why) when none."""
        lookup = await self.resolver.addresses(host)
        if isinstance(lookup, DnsFailure):
            event.error = DNS_ERROR_KINDS[lookup.kind]
            event.refused = f"{host}: {lookup.kind.value}"
            return None
        for ip in lookup.addresses:
            if forbidden_reason(ip, self.allow) is None:
                event.ip = ip
                return ip
        event.error = ErrorKind.BLOCKED
        event.refused = f"{host} -> {forbidden_reason(lookup.addresses[0], self.allow)}"
        return None

    async def _connect(self, ip: str, port: int, event: ProxyEvent
                       ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await asyncio.wait_for(asyncio.open_connection(ip, port, limit=HEAD_LIMIT),
                                          self.timeout)
        except TimeoutError:
            event.error, event.refused = ErrorKind.TIMEOUT, f"{ip}:{port}: connect timed out"
        except OSError as exc:
            event.error = ErrorKind.REFUSED
            event.refused = f"{ip}:{port}: {type(exc).__name__}"
        return None

    async def _tunnel(self, target: str, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        event = ProxyEvent(target, "CONNECT")
        self.events.append(event)
        host, _, port_text = target.rpartition(":")
        if not host or not port_text.isdigit():
            raise ValueError(f"bad CONNECT target {target!r}")
        ip = await self._address(host.strip("[]"), event)
        upstream = await self._connect(ip, int(port_text), event) if ip else None
        if upstream is None:
            writer.write(_answer(403, event.refused or "refused"))
            return
        up_reader, up_writer = upstream
        writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()

    async def _forward(self, method: str, target: str, headers: list[tuple[str, str]],
                       reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        event = ProxyEvent(target, method)
        self.events.append(event)
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            event.refused = "not an absolute http:// URL"
            writer.write(_answer(400, event.refused))
            return
        body = b""
        length = _header(headers, "content-length")
        if length:
            if not length.isdigit() or int(length) > REQUEST_BODY_LIMIT:
                event.refused = "request body too large"
                writer.write(_answer(413, event.refused))
                return
            body = await asyncio.wait_for(reader.readexactly(int(length)), self.timeout)
        elif _header(headers, "transfer-encoding"):
            event.refused = "chunked request bodies are not forwarded"
            writer.write(_answer(411, event.refused))
            return
        ip = await self._address(parts.hostname, event)
        upstream = await self._connect(ip, parts.port or 80, event) if ip else None
        if upstream is None:
            writer.write(_answer(502, event.refused or "refused"))
            return
        up_reader, up_writer = upstream
        try:
            path = parts.path or "/"
            if parts.query:
                path += f"?{parts.query}"
            lines = [f"{method} {path} HTTP/1.1"]
            lines += [f"{name}: {value}" for name, value in headers
                      if name.lower() not in HOP_BY_HOP]
            lines.append("Connection: close")
            up_writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await up_writer.drain()
            try:
                head = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"),
                                              self.timeout)
                status, answer_headers = _parse_status(head)
            except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                # The server's fault, not the browser's: the check records a
                # bad response (in hostwatch's words), not a 400 from the host.
                event.error = ErrorKind.BAD_RESPONSE
                event.refused = f"the server's reply is not HTTP/1.x ({type(exc).__name__})"
                writer.write(_answer(502, event.refused))
                return
            except TimeoutError:
                event.error = ErrorKind.TIMEOUT
                event.refused = f"no reply within {self.timeout:.0f} s"
                writer.write(_answer(504, event.refused))
                return
            event.status = status
            event.content_type = _header(answer_headers, "content-type")
            if is_media_response(event.content_type,
                                 _header(answer_headers, "content-disposition")):
                # Not one byte of the body is read: the browser gets nothing.
                event.refused = "media"
                writer.write(_answer(403, "media", refused="media"))
                return
            body_length = _body_length(answer_headers)
            first = b""
            if not _header(answer_headers, "content-encoding") and body_length != 0:
                # Media sent as something else (no type, text/plain...): its
                # first bytes say so. They stay here; the browser gets nothing.
                first = await asyncio.wait_for(_head_of_body(up_reader), self.timeout)
                chunked = "chunked" in (_header(answer_headers, "transfer-encoding") or "")
                kind = sniff_media(_after_chunk_size(first) if chunked else first)
                if kind is not None:
                    event.refused = "media"
                    writer.write(_answer(403, f"media ({kind})", refused="media"))
                    return
            if "chunked" in (_header(answer_headers, "transfer-encoding") or "").lower():
                # Decoded here, so that a body cut at max_body still ends
                # cleanly: the browser's copy is delimited by the close.
                writer.write(_relay_head(head, length=None))
                event.truncated = await _dechunk(up_reader, first, writer, self.max_body,
                                                 self.timeout)
                return
            if body_length is not None and body_length > self.max_body:
                # Announced as longer than max_body: announced to the browser as
                # its first max_body bytes, which it gets whole and reads.
                event.truncated = True
                writer.write(_relay_head(head, length=self.max_body) + first[:self.max_body])
                await _copy(up_reader, writer, body_length - len(first),
                            self.max_body - len(first), self.timeout)
                return
            writer.write(_relay_head(head) + first[:self.max_body])
            event.truncated = await _copy(
                up_reader, writer, None if body_length is None else body_length - len(first),
                self.max_body - len(first), self.timeout)
        finally:
            up_writer.close()


# -- HTTP/1.1 pieces -----------------------------------------------------------


def _parse_head(head: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    if not version.startswith("HTTP/1."):
        raise ValueError(f"not HTTP/1.x: {version!r}")
    return method.upper(), target, _header_lines(lines[1:])


def _parse_status(head: bytes) -> tuple[int, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError("bad status line")
    return int(parts[1]), _header_lines(lines[1:])


def _header_lines(lines: list[str]) -> list[tuple[str, str]]:
    headers = []
    for line in lines:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ValueError("bad header line")
        headers.append((name.strip(), value.strip()))
    return headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name), None)


def _body_length(headers: list[tuple[str, str]]) -> int | None:
    length = _header(headers, "content-length")
    if length and length.isdigit() and not _header(headers, "transfer-encoding"):
        return int(length)
    return None  # read to the end (the upstream was asked to close)


KEEP = object()  # `_relay_head`: the upstream's own Content-Length, if any


def _relay_head(head: bytes, length: int | None | object = KEEP) -> bytes:
    """The upstream's head for the browser, with this connection closing after
    it; with ``length``, its body framing replaced: a Content-Length of
    ``length``, or (None) a body that ends when the connection closes."""
    framing = HOP_BY_HOP if length is KEEP else HOP_BY_HOP | {"content-length",
                                                              "transfer-encoding"}
    lines = head.decode("latin-1").split("\r\n")
    kept = [lines[0]] + [line for line in lines[1:] if line
                         and line.partition(":")[0].strip().lower() not in framing]
    if isinstance(length, int):
        kept.append(f"Content-Length: {length}")
    return ("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1")


def _answer(status: int, reason: str, *, refused: str | None = None) -> bytes:
    safe = reason.encode("ascii", "replace").decode("ascii").replace("\r", " ").replace("\n", " ")
    # A body, however short: Chromium turns an error status without one into
    # a navigation error instead of a page with that status.
    body = f"refused by hostwatch: {safe[:200]}\n".encode("ascii")
    return (f"HTTP/1.1 {status} Refused by hostwatch\r\n"
            f"{REFUSED_HEADER}: {(refused or safe)[:200]}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("ascii") + body


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                length: int | None, limit: int, timeout: float) -> bool:
    """Copy ``length`` bytes (None: up to the end), at most ``limit``; whether
    the limit stopped it (the body has more)."""
    left = min(length, limit) if length is not None else limit
    while left > 0:
        chunk = await asyncio.wait_for(reader.read(min(65536, left)), timeout)
        if not chunk:
            return False
        left -= len(chunk)
        writer.write(chunk)
        await writer.drain()
    # Without a length, a body that reached the limit is taken as cut (it is
    # not read further to see: a stream would hold the browser's copy open).
    return length is None or length > limit


CHUNK_LINE_LIMIT = 4096


async def _dechunk(reader: asyncio.StreamReader, first: bytes, writer: asyncio.StreamWriter,
                   limit: int, timeout: float) -> bool:
    """Copy the data of a chunked body (its first bytes already read:
    ``first``), at most ``limit`` bytes; whether the limit stopped it. A body
    that breaks off or is not well formed ends the copy there."""
    buffer = bytearray(first)

    async def more() -> bool:
        chunk = await asyncio.wait_for(reader.read(65536), timeout)
        buffer.extend(chunk)
        return bool(chunk)

    async def line() -> bytes | None:
        while (end := buffer.find(b"\r\n")) < 0:
            if len(buffer) > CHUNK_LINE_LIMIT or not await more():
                return None
        text = bytes(buffer[:end])
        del buffer[:end + 2]
        return text

    left = limit
    while True:
        size_line = await line()
        if size_line is None:
            return False
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            return False
        if size == 0:
            return False
        while size > 0:
            if not buffer and not await more():
                return False
            piece = bytes(buffer[:min(size, left)])
            del buffer[:len(piece)]
            size -= len(piece)
            left -= len(piece)
            writer.write(piece)
            await writer.drain()
            if left <= 0:
                return True
        if await line() != b"":
            return False


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
