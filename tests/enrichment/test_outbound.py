"""outbound.http: the guarded GET behind the RDAP client.

The decisions (which addresses a hop may use, where a redirect goes) are
plain functions tested here without servers; over TLS, a real local HTTPS
server with a certificate made here shows that the connection goes to the
checked address while the name is what TLS verifies. Loopback only.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from enrichment.rdap_client import RdapClient
from enrichment.rdap_parse import RdapError, RdapErrorKind
from lab import Redirect, TestInternet
from lab.rdap import REALDATA
from outbound.dns import Resolver
from outbound.guard import parse_networks
from outbound.http import FetchError, FetchErrorKind, allowed_addresses, redirect_target
from tests.builders import self_signed

LOOPBACK = parse_networks(["127.0.0.0/8"])

RIPE = json.loads((REALDATA / "rdap_responses.json").read_text("utf-8"))["62.239.237.1"]


# -- the decisions ------------------------------------------------------------------


def test_a_hop_uses_only_the_addresses_the_guard_allows() -> None:
    assert allowed_addresses(["10.0.0.9", "127.0.0.9"], LOOPBACK) == (["127.0.0.9"], None)
    assert allowed_addresses(["169.254.169.254"], LOOPBACK) == (
        [], "169.254.169.254 is link-local")
    assert allowed_addresses(["127.0.0.1"], ()) == ([], "127.0.0.1 is loopback")
    assert allowed_addresses(["85.17.1.1"], ()) == (["85.17.1.1"], None)
    assert allowed_addresses([], LOOPBACK) == ([], "no address")


@pytest.mark.parametrize(("location", "target"), [
    ("/ripe/ip/1.2.3.4", "http://rdap.test/ripe/ip/1.2.3.4"),
    ("https://rdap.db.ripe.net/ip/1.2.3.4", "https://rdap.db.ripe.net/ip/1.2.3.4"),
    (" http://[::1]:8080/x ", "http://[::1]:8080/x"),
])
def test_a_redirect_goes_to_an_absolute_http_url(location: str, target: str) -> None:
    assert redirect_target("http://rdap.test/arin/ip/1.2.3.4", location, 1) == target


@pytest.mark.parametrize(("location", "target"), [
    # Numeric IPv4 forms are the address a browser would connect to: the
    # guard then judges 127.0.0.1, not a DNS name "0x7f.1" that finds nothing.
    ("http://0x7f.1:8080/x", "http://127.0.0.1:8080/x"),
    ("http://2852039166/latest/", "http://169.254.169.254/latest/"),
    ("http://[0:0:0:0:0:ffff:a9fe:a9fe]/", "http://[::ffff:a9fe:a9fe]/"),
    ("http://\u00e9x.test/ip/1", "http://xn--x-9fa.test/ip/1"),  # IDN: punycode
    ("http://evil.test\\@127.0.0.1/", "http://evil.test/@127.0.0.1/"),  # "\\" ends the host
    ("/a b/\u00ff", "http://rdap.test/a%20b/%C3%BF"),  # what http.client can send
    ("http://rdap.test:80/x#frag", "http://rdap.test/x"),  # default port, no fragment
])
def test_a_redirect_is_read_as_a_browser_reads_it(location: str, target: str) -> None:
    assert redirect_target("http://rdap.test/arin/ip/1.2.3.4", location, 1) == target


@pytest.mark.parametrize("location", [None, "", "file:///etc/passwd", "ftp://127.0.0.1/x",
                                      "gopher://x/", "https://", "http://h.test:99999/",
                                      "http://a%00b.test/", "http://[x/"])
def test_a_redirect_elsewhere_is_refused_without_repeating_it(location: str | None) -> None:
    with pytest.raises(FetchError) as caught:
        redirect_target("http://rdap.test/ip/1.2.3.4", location, 2)
    assert caught.value.kind is FetchErrorKind.REDIRECT
    assert str(caught.value).startswith("redirect 2 refused")
    assert not location or location not in str(caught.value)


# -- over TLS: connected to the checked address, verified for the name ----------------


def _certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    return self_signed(tmp, x509.DNSName(name))


class TlsRdap:
    """An HTTPS RDAP server on 127.0.0.1 whose certificate names ``name``;
    it records the server name (SNI) and Host header of every request."""

    def __init__(self, tmp: Path, name: str) -> None:
        self.cert, key = _certificate(tmp, name)
        self.seen: list[tuple[str | None, str | None]] = []
        sni: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.seen.append((sni[-1] if sni else None, self.headers.get("Host")))
                body = json.dumps(RIPE["response"]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/rdap+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)

        def remember_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            sni.append(name)

        context.sni_callback = remember_sni  # type: ignore[assignment]
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def tls_rdap(tmp_path: Path) -> Iterator[TlsRdap]:
    server = TlsRdap(tmp_path, "rdap.tls.test")
    yield server
    server.close()


def _client(net: TestInternet, base: str, server: TlsRdap) -> RdapClient:
    trust = ssl.create_default_context(cafile=str(server.cert))
    return RdapClient(base, timeout=5, allow=LOOPBACK, tls=trust,
                      resolver=Resolver((net.nameserver,), timeout=2))


def test_https_connects_to_the_checked_address_and_verifies_the_name(
        tls_rdap: TlsRdap, tmp_path: Path) -> None:
    with TestInternet() as net:
        # A name only hostwatch's resolver knows, with a forbidden address first.
        net.add_a("rdap.tls.test", "10.0.0.8")
        net.add_a("rdap.tls.test", "127.0.0.1")
        client = _client(net, f"https://rdap.tls.test:{tls_rdap.port}", tls_rdap)
        answer = client.fetch("62.239.237.1")
        assert answer is not None and answer.info.name == "BT-CORPORATE"
        assert tls_rdap.seen == [("rdap.tls.test", f"rdap.tls.test:{tls_rdap.port}")]
        # The same server under another name: the certificate does not match it.
        net.add_a("other.tls.test", "127.0.0.1")
        other = _client(net, f"https://other.tls.test:{tls_rdap.port}", tls_rdap)
        with pytest.raises(RdapError, match="TLS failed") as caught:
            other.lookup("62.239.237.1")
        assert caught.value.kind is RdapErrorKind.CONNECTION


# -- a server that answers a byte at a time ------------------------------------------


class Drip:
    """A server on 127.0.0.1 that sends a status line, then ``lines`` (one
    every ``every`` seconds): each read gets bytes in time, the whole answer
    never comes within the timeout."""

    def __init__(self, lines: list[bytes], every: float) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()

        def drip(conn: socket.socket) -> None:
            with conn, contextlib.suppress(OSError):
                conn.recv(65536)
                for line in lines:
                    conn.sendall(line)
                    if self._stop.wait(every):
                        return

        def serve() -> None:
            with contextlib.suppress(OSError):
                while True:
                    conn, _ = self._server.accept()
                    threading.Thread(target=drip, args=(conn,), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._server.close()


@pytest.mark.parametrize("lines", [
    [b"HTTP/1.1 200 OK\r\n", *(b"X-%d: y\r\n" % n for n in range(40)), b"\r\n{}"],  # headers
    [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", *(b" " for _ in range(40)), b"{}"],
])
def test_an_answer_that_drips_in_ends_at_the_timeout(lines: list[bytes]) -> None:
    """The timeout bounds the whole fetch (the README's promise): a server
    sending a header line or a body byte just before each read would time
    out holds the enrichment no longer than that."""
    server = Drip(lines, every=0.25)
    try:
        client = RdapClient(f"http://127.0.0.1:{server.port}", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(RdapError) as caught:
            client.lookup("192.0.2.1")
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert caught.value.kind is RdapErrorKind.TIMEOUT
    assert elapsed < 2.5


def test_a_redirect_back_to_the_configured_address_on_another_port_is_guarded() -> None:
    """The RDAP base URL's address is trusted because the operator wrote it:
    that is its port, not every service on that address. A server it sends
    hostwatch to (here 127.0.0.10, standing in for a public registry)
    cannot send it on to another port of that address."""
    secret = socket.create_server(("127.0.0.1", 0))
    secret.settimeout(0.5)
    secret_port = secret.getsockname()[1]
    try:
        with TestInternet() as net:
            registry = net.add_host("registry.test")
            registry.route("/ip/192.0.2.1", Redirect(f"http://127.0.0.1:{secret_port}/x"))
            net.rdap_redirect("192.0.2.1", f"http://{registry.ip}:{net.port}")
            client = RdapClient(net.rdap_url, timeout=3,
                                allow=parse_networks([f"{registry.ip}/32"]),
                                resolver=Resolver((net.nameserver,), timeout=2))
            with pytest.raises(RdapError) as caught:
                client.lookup("192.0.2.1")
            assert caught.value.kind is RdapErrorKind.REFUSED
            assert "redirect 2 refused by the address guard: 127.0.0.1 is loopback" in str(
                caught.value)
            assert client.lookup("62.239.237.1") is not None  # the base URL still works
        with pytest.raises(TimeoutError):
            secret.accept()  # nobody came
    finally:
        secret.close()
