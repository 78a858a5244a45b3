"""Hostile replies: what no well-behaved server sends, for the no-material tests.

Each reply quotes a marker where a parser's error message would quote it
(aiohttp's "Bad status line: b'...'", http.client's BadStatusLine...), so a
test can prove that hostwatch repeats none of it in a log, a reason or a
stored field. Serve them with ``host.route(path, Raw(data))``.

The markers sit only where hostwatch keeps no evidence on purpose: it
stores the status, selected headers and the URLs it requested, so a marker
in a Server header or an http(s) redirect URL would rightly be stored.
"""

from __future__ import annotations

from lab.behaviours import marker_body


def hostile_replies(marker: bytes) -> dict[str, bytes]:
    """Replies no well-behaved server sends, each quoting ``marker`` where a
    parser's error message would quote it. Path -> the whole reply."""
    body = marker_body(marker.decode(), kind="html")
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
    sized = b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body
    return {
        # No status line at all: the body comes first.
        "/no-status-line": body + b"\r\n\r\n",
        "/no-status-line-text": marker + b" is what this server says\r\n\r\n",
        "/garbage-status": b"HTTP/1.1 2" + marker + b" OK\r\n\r\n",
        "/garbage-version": b"HTTX/" + marker + b" 200 OK\r\n\r\n",
        "/long-status-line": b"HTTP/1.1 200 " + marker + b"x" * 20_000 + b"\r\n\r\n",
        "/reason-phrase": b"HTTP/1.1 200 " + marker + b"\r\nContent-Type: text/html\r\n" + sized,
        "/error-reason-phrase": b"HTTP/1.1 503 " + marker + b"\r\nRetry-After: " + marker
                                + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "/garbage-header": ok + marker + b"\r\n" + sized,
        "/garbage-header-name": ok + marker + b" bad name: x\r\n" + sized,
        "/oversized-header": ok + b"X-Pad: " + marker + b"a" * 20_000 + b"\r\n" + sized,
        "/oversized-header-name": ok + marker + b"a" * 20_000 + b": x\r\n" + sized,
        "/too-many-headers": ok + b"".join(b"X-H%d: %b\r\n" % (n, marker)
                                           for n in range(300)) + sized,
        "/unkept-header": ok + b"X-Material: " + marker + b"\r\n" + sized,
        "/control-in-header": ok + b"X-Ctl: \x01" + marker + b"\x7f\r\n" + sized,
        "/bad-content-length": ok + b"Content-Length: " + marker + b"\r\n\r\n" + body,
        "/bad-chunk-size": ok + b"Transfer-Encoding: chunked\r\n\r\n" + marker + b"\r\n"
                           + body + b"\r\n0\r\n\r\n",
        "/bad-transfer-encoding": ok + b"Transfer-Encoding: " + marker + b"\r\n\r\n" + body,
        "/data-location": b"HTTP/1.1 302 Found\r\nLocation: data:text/html," + marker
                          + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        # A browser drops the tab: a data: URL, content rather than an address.
        "/tab-data-location": b"HTTP/1.1 302 Found\r\nLocation: da\tta:text/html," + marker
                              + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "/bad-location": b"HTTP/1.1 302 Found\r\nLocation: http://[" + marker
                         + b"/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "/nul-location": b"HTTP/1.1 302 Found\r\nLocation: /\x00" + marker
                         + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    }
