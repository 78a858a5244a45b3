"""RDAP answers are server bytes too: a hostile RDAP reply (no status line,
a garbage reason phrase or Retry-After, a data: redirect, a malformed
Location) becomes an RdapError in hostwatch's words, which is what the
enrichment logs and caches (#10 point 5)."""

from __future__ import annotations

import ipaddress
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from enrichment.rdap_client import RdapClient
from enrichment.rdap_parse import RdapError, RdapErrorKind, parse_rdap
from lab import Raw, Serve, TestInternet, marker_body
from lab.hostile import hostile_replies
from outbound.dns import Resolver
from store import Network, Store
from tests.crawler.conftest import add_cases
from tests.enrichment.conftest import hostwatch


def test_hostile_rdap_replies_give_errors_that_quote_none_of_them(net: TestInternet) -> None:
    marker = f"HOSTILE-{uuid.uuid4().hex}".encode()
    host = net.add_host("rdap-hostile.test")
    replies = hostile_replies(marker)
    for path, data in replies.items():
        host.route(f"{path}/ip/192.0.2.1", Raw(data))
    kinds: dict[str, RdapErrorKind] = {}
    for path in replies:
        client = RdapClient(f"http://{host.ip}:{net.port}{path}", timeout=3)
        try:
            client.lookup("192.0.2.1")
        except RdapError as exc:  # any other exception fails the test
            assert marker.decode() not in str(exc), path
            kinds[path] = exc.kind
    assert kinds["/no-status-line"] is RdapErrorKind.CONNECTION
    assert kinds["/error-reason-phrase"] is RdapErrorKind.HTTP
    assert kinds["/data-location"] is RdapErrorKind.REDIRECT
    assert kinds["/bad-location"] is RdapErrorKind.REDIRECT


@pytest.mark.parametrize("answer", [
    {"errorCode": 400, "title": "{marker}", "description": ["{marker}"]},
    {"errorCode": "{marker}"},
    {"objectClassName": "{marker}"},
    {"objectClassName": ["{marker}"], "startAddress": "192.0.2.0"},
])
def test_rdap_json_that_is_no_network_gives_an_error_that_quotes_none_of_it(
        net: TestInternet, answer: dict[str, object]) -> None:
    """An RDAP error object or a wrong object class is answered in
    hostwatch's words: the error is logged and cached (networks.error), so
    a title, description or class name the server chose stays out of it."""
    marker = f"HOSTILE-{uuid.uuid4().hex}"
    body = json.dumps(answer).replace("{marker}", marker).encode()
    host = net.add_host("rdap-json.test")
    host.route("/ip/192.0.2.1", Raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/rdap+json"
                                    b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                                    % len(body) + body))
    client = RdapClient(f"http://{host.ip}:{net.port}", timeout=3)
    with pytest.raises(RdapError) as caught:
        client.lookup("192.0.2.1")
    assert caught.value.kind is RdapErrorKind.INVALID
    assert marker not in str(caught.value)
    with pytest.raises(RdapError) as parsed:
        parse_rdap(json.loads(body))
    assert marker not in str(parsed.value)


def _redirect(location: bytes) -> bytes:
    return (b"HTTP/1.1 302 Found\r\nLocation: " + location
            + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def test_hostile_rdap_redirects_are_errors_in_hostwatch_s_words(net: TestInternet) -> None:
    """A Location a browser would follow but http.client cannot send as it
    is (a space, a byte that is no ASCII, an IDN host) is read as a browser
    reads it; one no browser would follow is a redirect error. Never an
    exception other than RdapError (which would stop the whole enrichment),
    never the marker."""
    marker = f"HOSTILE-{uuid.uuid4().hex}"
    host = net.add_host("rdap-redirects.test")
    replies = {
        "/space": _redirect(b"/a b" + marker.encode()),
        "/control": _redirect(b"/a\x01" + marker.encode()),
        "/not-ascii": _redirect(b"/\xff" + marker.encode()),
        "/idn": _redirect("http://\u00e9{marker}.test/".replace("{marker}", marker).encode()),
        "/bad-idn": _redirect(b"http://xn--" + marker.encode() + b"\xc3.test/"),
        "/bad-port": _redirect(b"http://rdap.test:" + marker.encode() + b"/"),
    }
    for path, data in replies.items():
        host.route(f"{path}/ip/192.0.2.1", Raw(data))
    host.default(Raw(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n"))
    resolver = Resolver((net.nameserver,), timeout=2)
    kinds = {}
    for path in replies:
        client = RdapClient(f"http://{host.ip}:{net.port}{path}", timeout=3, resolver=resolver,
                            allow=[ipaddress.ip_network(f"{host.ip}/32")])
        try:
            kinds[path] = client.lookup("192.0.2.1")
        except RdapError as exc:  # any other exception fails the test
            assert marker not in str(exc), path
            kinds[path] = exc.kind
    # Followed, as a browser would, to the host's 404: no registry holds it.
    assert kinds["/space"] is None
    assert kinds["/control"] is None
    assert kinds["/not-ascii"] is None
    assert kinds["/bad-port"] is RdapErrorKind.REDIRECT


@pytest.mark.parametrize("answer", [b"<html>not RDAP</html>", b'{"errorCode": 500}',
                                    b'{"objectClassName": "entity"}'])
def test_an_rdap_error_after_a_redirect_names_the_url_asked_not_the_location(
        net: TestInternet, answer: bytes) -> None:
    """Where a redirect went is what the server wrote (a Location can carry
    anything in its path): RDAP errors, logged and cached, name the URL
    hostwatch asked and say that it was redirected."""
    marker = f"HOSTILE-{uuid.uuid4().hex}"
    host = net.add_host("rdap-moved.test")
    host.route("/ip/192.0.2.1", Raw(_redirect(f"/{marker}/ip/192.0.2.1".encode())))
    host.route(f"/{marker}/ip/192.0.2.1", Raw(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/rdap+json\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n" % len(answer) + answer))
    client = RdapClient(f"http://{host.ip}:{net.port}", timeout=3)
    with pytest.raises(RdapError) as caught:
        client.lookup("192.0.2.1")
    error = caught.value
    assert error.kind is RdapErrorKind.INVALID
    assert marker not in str(error)
    assert error.url == f"http://{host.ip}:{net.port}/ip/192.0.2.1"
    assert "after 1 redirect" in str(error)


@pytest.mark.slow
def test_enrich_at_debug_logs_and_caches_none_of_a_hostile_rdap_answer(
        net: TestInternet, tmp_path: Path) -> None:
    """`hostwatch enrich` at HOSTWATCH_LOG_LEVEL=DEBUG against RDAP servers
    that redirect to a path, answer with an error object, a wrong class or a
    garbled reply, each carrying a marker: the failures are counted, the
    run goes on, and the marker is in no log line and no file (the store's
    networks.error included)."""
    marker = f"HOSTILE-{uuid.uuid4().hex}"
    db_url = f"sqlite:///{tmp_path / 'hostwatch.db'}"
    store = Store(db_url)
    store.upgrade()
    rdap = net.add_host("rdap-evil.test")
    answers = {
        "/error-object": json.dumps({"errorCode": 400, "title": marker}).encode(),
        "/class": json.dumps({"objectClassName": marker}).encode(),
    }
    for path, body in answers.items():
        rdap.route(f"/{marker}{path}", Raw(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rdap+json\r\nContent-Length: %d"
            b"\r\nConnection: close\r\n\r\n" % len(body) + body))
    replies = hostile_replies(marker.encode())
    sites = []
    for asn, path in zip((64501, 64502, 64503), ("/error-object", "/class", "/no-status-line"),
                         strict=True):
        site = net.add_host(f"site{asn}.test", network=asn)
        site.default(Serve(marker_body("served", kind="jpeg"), content_type="image/jpeg"))
        sites.append(site.url("/a.jpg"))
        if path in answers:
            to = f"http://rdap-evil.test:{net.port}/{marker}{path}#{marker}"
        else:
            rdap.route(f"/raw/ip/{site.ip}", Raw(replies[path]))
            to = f"http://rdap-evil.test:{net.port}/raw"
        net.rdap_redirect(net.network(asn), to)
    add_cases(store, sites)
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0

    result = hostwatch(db_url, net, tmp_path, "enrich", HOSTWATCH_LOG_LEVEL="DEBUG",
                       HOSTWATCH_ALLOW_PRIVATE="127.0.0.0/8")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 failed" in result.stdout, result.stdout
    assert marker not in result.stdout + result.stderr
    with store.session() as session:
        errors = [row.error or "" for row in session.scalars(select(Network))]
    assert len([e for e in errors if e]) == 3
    assert not [e for e in errors if marker in e]
    store.dispose()
    assert [p for p in tmp_path.rglob("*") if p.is_file()
            and marker.encode() in p.read_bytes()] == []
