"""The local test internet (tests/net): its DNS answers and scripted HTTP hosts.

Everything talks to 127.0.0.x only: DNS through dnspython pointed at the
server's port, HTTP by connecting to a host's address with a Host header.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from tests.net import (
    Bursts,
    EndlessRedirect,
    Garbage,
    Huge,
    Redirect,
    RedirectHome,
    RedirectLogin,
    Reset,
    Serve,
    Slow,
    SoftNotFound,
    Status,
    TestInternet,
    marker_body,
)
from tests.net.http_server import parse_request

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def net() -> Iterator[TestInternet]:
    with TestInternet(ttl=42) as running:
        yield running


def resolver_for(net: TestInternet) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [net.nameserver[0]]
    resolver.port = net.nameserver[1]
    resolver.lifetime = 2.0
    return resolver


def get(
    net: TestInternet,
    name: str,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request to host ``name`` by its address (no system DNS involved)."""
    host = net.host(name)
    conn = http.client.HTTPConnection(host.ip, net.port, timeout=timeout)
    try:
        conn.request(method, path, headers={"Host": name, **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def raw_exchange(net: TestInternet, ip: str, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes."""
    with socket.create_connection((ip, net.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# -- DNS ---------------------------------------------------------------------


def test_dns_answers_a_record_of_a_host_case_insensitively(net: TestInternet) -> None:
    host = net.add_host("Gallery-A.test")
    answer = resolver_for(net).resolve("GALLERY-a.TEST", "A")
    assert host.name == "gallery-a.test"
    assert [rr.to_text() for rr in answer] == ["127.0.0.10"]
    assert answer.rrset is not None and answer.rrset.ttl == 42


def test_hosts_get_consecutive_loopback_addresses(net: TestInternet) -> None:
    first, second = net.add_host("one.test"), net.add_host("two.test")
    assert (first.ip, second.ip) == ("127.0.0.10", "127.0.0.11")
    assert first.url("/img/1.jpg") == f"http://one.test:{net.port}/img/1.jpg"


def test_dns_follows_cname_chain_in_answer_section(net: TestInternet) -> None:
    net.add_host("origin.test")
    net.add_cname("cdn-edge.test", "origin.test")
    net.add_cname("www.shop.test", "cdn-edge.test")
    answer = resolver_for(net).resolve("www.shop.test", "A")
    sections = [
        (str(rrset.name), dns.rdatatype.to_text(rrset.rdtype)) for rrset in answer.response.answer
    ]
    assert sections == [
        ("www.shop.test.", "CNAME"),
        ("cdn-edge.test.", "CNAME"),
        ("origin.test.", "A"),
    ]
    assert [rr.to_text() for rr in answer] == ["127.0.0.10"]
    assert str(answer.canonical_name) == "origin.test."


def test_dns_cname_query_answers_the_cname_itself(net: TestInternet) -> None:
    net.add_host("origin.test")
    net.add_cname("alias.test", "origin.test")
    answer = resolver_for(net).resolve("alias.test", "CNAME")
    assert [rr.to_text() for rr in answer] == ["origin.test."]


def test_dns_unknown_names_are_nxdomain_inside_and_outside_the_zone(net: TestInternet) -> None:
    resolver = resolver_for(net)
    for name in ("missing.test", "example.com", "nl"):
        with pytest.raises(dns.resolver.NXDOMAIN):
            resolver.resolve(name, "A")


def test_dns_cname_to_a_missing_name_is_nxdomain(net: TestInternet) -> None:
    net.add_cname("dangling.test", "gone.test")
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver_for(net).resolve("dangling.test", "A")


def test_dns_servfail_name(net: TestInternet) -> None:
    net.add_servfail("broken.test")
    query = dns.message.make_query("broken.test", "A")
    response = dns.query.udp(query, net.nameserver[0], port=net.nameserver[1], timeout=2)
    assert response.rcode() == dns.rcode.SERVFAIL
    with pytest.raises(dns.resolver.NoNameservers):
        resolver_for(net).resolve("broken.test", "A")


def test_dns_name_without_aaaa_has_no_answer_but_exists(net: TestInternet) -> None:
    net.add_host("v4only.test")
    with pytest.raises(dns.resolver.NoAnswer):
        resolver_for(net).resolve("v4only.test", "AAAA")


def test_dns_arbitrary_records_added_after_start_and_removed(net: TestInternet) -> None:
    resolver = resolver_for(net)
    net.add_a("private.test", "10.0.0.5")
    net.add_aaaa("private.test", "fd00::5")
    assert [rr.to_text() for rr in resolver.resolve("private.test", "A")] == ["10.0.0.5"]
    assert [rr.to_text() for rr in resolver.resolve("private.test", "AAAA")] == ["fd00::5"]
    net.remove_name("private.test")
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("private.test", "A")


def test_dns_zone_apex_has_soa_and_ns(net: TestInternet) -> None:
    resolver = resolver_for(net)
    soa = resolver.resolve("test", "SOA")
    assert soa[0].mname.to_text() == "ns1.test."
    ns = resolver.resolve("test", "NS")
    assert [rr.to_text() for rr in ns] == ["ns1.test."]


def test_dns_answers_over_tcp_on_the_same_port(net: TestInternet) -> None:
    net.add_host("tcp.test")
    answer = resolver_for(net).resolve("tcp.test", "A", tcp=True)
    assert [rr.to_text() for rr in answer] == ["127.0.0.10"]


def test_dns_rejects_cname_beside_addresses() -> None:
    net = TestInternet()
    net.add_host("taken.test")
    with pytest.raises(ValueError):
        net.add_cname("taken.test", "elsewhere.test")


# -- HTTP behaviours ---------------------------------------------------------


def test_serve_sends_body_type_length_and_extra_headers(net: TestInternet) -> None:
    body = marker_body("case-17")
    net.add_host("a.test").route("/img/1.jpg", Serve(body, headers={"cf-ray": "abc-AMS"}))
    status, headers, got = get(net, "a.test", "/img/1.jpg?size=large")
    assert (status, got) == (200, body)
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["Content-Length"] == str(len(body))
    assert headers["cf-ray"] == "abc-AMS"


def test_host_wide_headers_are_added_to_every_response(net: TestInternet) -> None:
    net.add_host("cdn.test", headers={"Server": "cloudflare"})
    assert get(net, "cdn.test", "/nothing")[1]["Server"] == "cloudflare"
    assert get(net, "cdn.test", "/")[1]["Server"] == "cloudflare"


@pytest.mark.parametrize("code", [404, 410, 451, 500, 503])
def test_status_codes(net: TestInternet, code: int) -> None:
    net.add_host("s.test").route("/x", Status(code))
    status, headers, body = get(net, "s.test", "/x")
    assert status == code
    assert str(code).encode() in body and headers["Content-Type"].startswith("text/html")


def test_unrouted_path_is_404_and_builtin_pages_exist(net: TestInternet) -> None:
    net.add_host("plain.test")
    assert get(net, "plain.test", "/nope")[0] == 404
    status, _, home = get(net, "plain.test", "/")
    assert status == 200 and b"Welcome to plain.test" in home
    status, _, login = get(net, "plain.test", "/login")
    assert status == 200 and b"<form" in login


def test_soft_not_found_default_echoes_path(net: TestInternet) -> None:
    net.add_host("soft.test").default(SoftNotFound())
    status, _, body = get(net, "soft.test", "/img/<gone>.jpg")
    assert status == 200
    assert b"Sorry, page not found" in body and b"/img/&lt;gone&gt;.jpg" in body


@pytest.mark.parametrize(
    ("behaviour", "location"),
    [
        (Redirect("http://other.test/x.jpg"), "http://other.test/x.jpg"),
        (Redirect("../removed.png", status=301), "../removed.png"),
        (RedirectHome(), "/"),
        (RedirectLogin(), "/login?next=/img/a%20b.jpg"),
    ],
)
def test_redirects(
    net: TestInternet, behaviour: Redirect | RedirectHome | RedirectLogin, location: str
) -> None:
    net.add_host("r.test").route("/img/a b.jpg", behaviour)  # matched once percent-decoded
    status, headers, _ = get(net, "r.test", "/img/a%20b.jpg")
    assert status == behaviour.status
    assert headers["Location"] == location


def test_endless_redirect_counts_hops(net: TestInternet) -> None:
    net.add_host("loop.test").route("/p", EndlessRedirect())
    assert get(net, "loop.test", "/p")[1]["Location"] == "/p?hop=1"
    assert get(net, "loop.test", "/p?hop=7")[1]["Location"] == "/p?hop=8"


def test_slow_sends_nothing_until_its_time(net: TestInternet) -> None:
    host = net.add_host("slow.test")
    host.route("/stall", Slow(30))
    host.route("/late", Slow(0.3, then=Serve(b"ok", content_type="text/plain")))
    with pytest.raises(TimeoutError):
        get(net, "slow.test", "/stall", timeout=0.3)
    started = time.monotonic()
    status, _, body = get(net, "slow.test", "/late")
    assert (status, body) == (200, b"ok")
    assert time.monotonic() - started >= 0.3


def test_bursts_fail_first_then_serve_counting_across_rounds(net: TestInternet) -> None:
    net.add_host("b.test").route("/img", Bursts(3, Serve(b"img")))
    assert [get(net, "b.test", "/img")[0] for _ in range(2)] == [503, 503]
    net.round = 1
    assert [get(net, "b.test", "/img")[0] for _ in range(3)] == [503, 200, 200]
    net.add_host("c.test").route("/img", Bursts(1, Serve(b"img"), status=500))
    assert [get(net, "c.test", "/img")[0] for _ in range(2)] == [500, 200]


def test_garbage_is_deterministic_non_http_then_close(net: TestInternet) -> None:
    net.add_host("g.test").route("/x", Garbage(size=300, seed=7))
    ip = net.host("g.test").ip
    request = b"GET /x HTTP/1.1\r\nHost: g.test\r\n\r\n"
    first, second = raw_exchange(net, ip, request), raw_exchange(net, ip, request)
    assert len(first) == 300 and first == second
    assert not first.startswith(b"HTTP/")
    with pytest.raises(http.client.HTTPException):
        get(net, "g.test", "/x")


def test_reset_closes_without_a_response(net: TestInternet) -> None:
    net.add_host("rst.test").route("/x", Reset())
    with pytest.raises(ConnectionResetError):
        raw_exchange(net, net.host("rst.test").ip, b"GET /x HTTP/1.1\r\nHost: rst.test\r\n\r\n")


def test_huge_streams_content_length_and_chunked(net: TestInternet) -> None:
    host = net.add_host("big.test")
    host.route("/fixed", Huge(1_000_000, fill=b"ab"))
    host.route("/chunked", Huge(200_000, chunked=True, content_type="video/mp4"))
    status, headers, body = get(net, "big.test", "/fixed")
    assert (status, headers["Content-Length"], len(body)) == (200, "1000000", 1_000_000)
    assert body[:4] == b"abab"
    status, headers, body = get(net, "big.test", "/chunked")
    assert headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in headers
    assert (status, body) == (200, b"x" * 200_000)


def test_huge_copes_with_client_closing_early(net: TestInternet) -> None:
    net.add_host("big.test").route("/endless", Huge(50 * 1024**3))  # 50 GiB: never finishes
    for _ in range(3):
        with socket.create_connection((net.host("big.test").ip, net.port), timeout=5) as sock:
            sock.sendall(b"GET /endless HTTP/1.1\r\nHost: big.test\r\n\r\n")
            first = sock.recv(65536)
            assert first.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"Content-Length: 53687091200\r\n" in first
    assert get(net, "big.test", "/")[0] == 200  # the server carries on


def test_head_sends_headers_only_and_keeps_connection(net: TestInternet) -> None:
    net.add_host("h.test").route("/img", Serve(b"12345"))
    ip = net.host("h.test").ip
    data = raw_exchange(
        net,
        ip,
        b"HEAD /img HTTP/1.1\r\nHost: h.test\r\n\r\n"
        b"GET /img HTTP/1.1\r\nHost: h.test\r\nConnection: close\r\n\r\n",
    )
    head_response, _, get_response = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 5" in head_response
    assert get_response.startswith(b"HTTP/1.1 200 OK")
    assert get_response.endswith(b"\r\n\r\n12345")


def test_keep_alive_serves_two_requests_on_one_connection(net: TestInternet) -> None:
    net.add_host("k.test").route("/a", Serve(b"first")).route("/b", Serve(b"second"))
    conn = http.client.HTTPConnection(net.host("k.test").ip, net.port, timeout=5)
    try:
        conn.request("GET", "/a", headers={"Host": "k.test"})
        assert conn.getresponse().read() == b"first"
        sock = conn.sock
        conn.request("GET", "/b", headers={"Host": "k.test"})
        assert conn.getresponse().read() == b"second"
        assert conn.sock is sock and sock is not None  # no reconnect happened
    finally:
        conn.close()


def test_connection_close_is_honoured(net: TestInternet) -> None:
    net.add_host("c.test")
    data = raw_exchange(
        net,
        net.host("c.test").ip,
        b"GET / HTTP/1.1\r\nHost: c.test\r\nConnection: close\r\n\r\n"
        b"GET /login HTTP/1.1\r\nHost: c.test\r\n\r\n",
    )  # returns only because the server closed after the first response
    assert data.count(b"HTTP/1.1 ") == 1 and b"Connection: close" in data


def test_bad_request_gets_400_and_close(net: TestInternet) -> None:
    net.add_host("bad.test")
    data = raw_exchange(net, net.host("bad.test").ip, b"HELLO THERE\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert data.count(b"HTTP/1.1 ") == 1


def test_parse_request_splits_target_and_lowercases_headers() -> None:
    request = parse_request(b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: A.test\r\nX-Y:  z \r\n\r\n")
    assert (request.path, request.query, request.headers) == (
        "/a/b",
        "x=1&y=2",
        {"host": "A.test", "x-y": "z"},
    )
    absolute = parse_request(b"GET http://a.test:8080/p?q HTTP/1.0\r\n\r\n")
    assert (absolute.path, absolute.query, absolute.version) == ("/p", "q", "HTTP/1.0")


# -- rounds, hits, lifecycle -------------------------------------------------


def test_round_switches_behaviour_and_last_one_repeats(net: TestInternet) -> None:
    body = marker_body("reappearing")
    net.add_host("r.test").route("/img", [Serve(body), Status(404), Serve(body)])
    net.add_host("s.test").route("/img", Status(410))  # a single behaviour ignores rounds
    seen = []
    for number in range(5):
        net.round = number
        seen.append((get(net, "r.test", "/img")[0], get(net, "s.test", "/img")[0]))
    assert seen == [(200, 410), (404, 410), (200, 410), (200, 410), (200, 410)]


def test_hits_record_every_request(net: TestInternet) -> None:
    host = net.add_host("hits.test")
    net.add_cname("alias.test", "hits.test")
    host.route("/img", Serve(b"x"))
    get(net, "hits.test", "/img?a=1", headers={"User-Agent": "hostwatch/0.1"})
    net.round = 3
    conn = http.client.HTTPConnection(host.ip, net.port, timeout=5)
    conn.request("HEAD", "/other", headers={"Host": f"ALIAS.test:{net.port}"})
    conn.getresponse().read()
    conn.close()
    hits = net.hits
    assert [(h.host, h.ip, h.path, h.method, h.round, h.user_agent, h.query) for h in hits] == [
        ("hits.test", "127.0.0.10", "/img", "GET", 0, "hostwatch/0.1", "a=1"),
        ("alias.test", "127.0.0.10", "/other", "HEAD", 3, "", ""),
    ]
    hits.clear()  # a copy: the record is untouched
    assert len(net.hits) == 2 and net.hit_count == 2
    net.clear_hits()
    assert net.hits == [] and net.hit_count == 0


def test_host_added_after_start_is_served_and_resolvable() -> None:
    with TestInternet() as net:
        first = net.add_host("early.test")
        late = net.add_host("late.test").route("/x", Serve(b"late"))
        assert get(net, "late.test", "/x")[2] == b"late"
        assert first.ip != late.ip
        assert [rr.to_text() for rr in resolver_for(net).resolve("late.test", "A")] == [late.ip]


def test_hosts_added_before_start_listen_on_one_port() -> None:
    net = TestInternet()
    names = [f"p{i}.test" for i in range(3)]
    for name in names:
        net.add_host(name).route("/x", Serve(name.encode()))
    with net:
        assert [get(net, name, "/x")[2] for name in names] == [n.encode() for n in names]
        assert net.url_list() == [f"http://{name}:{net.port}/x" for name in names]
        ip, port = net.host("p0.test").ip, net.port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((ip, port), timeout=2).close()


def test_marker_body_is_deterministic_and_holds_the_marker() -> None:
    jpeg = marker_body("case-42-marker")
    assert len(jpeg) == 2048 and jpeg.startswith(b"\xff\xd8\xff") and jpeg.endswith(b"\xff\xd9")
    assert jpeg.count(b"case-42-marker") == 1
    assert jpeg == marker_body("case-42-marker") != marker_body("case-43-marker")
    page = marker_body("m", size=500, kind="html")
    assert len(page) == 500 and page.startswith(b"<!doctype html>") and b"<p>m</p>" in page
    assert marker_body("long-marker", size=4, kind="bin") == b"long-marker"


@pytest.mark.parametrize("stop_by", ["sigterm", "stdin_closed"])
def test_serve_child_process_prints_address_and_stops(stop_by: str) -> None:
    command = [sys.executable, "-m", "tests.net", "serve", "--hosts", "2", "--paths", "3"]
    with subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:  # the with closes the pipes and waits
        assert child.stdin is not None and child.stdout is not None
        try:
            ready = json.loads(child.stdout.readline())
            assert [h["name"] for h in ready["hosts"]] == ["h0.bench.test", "h1.bench.test"]
            resolver = dns.resolver.Resolver(configure=False)
            address, port = ready["nameservers"].split(":")
            resolver.nameservers, resolver.port = [address], int(port)
            ip = resolver.resolve("h1.bench.test", "A")[0].to_text()
            conn = http.client.HTTPConnection(ip, ready["port"], timeout=5)
            conn.request("GET", "/c/2", headers={"Host": "h1.bench.test"})
            body = conn.getresponse().read()
            conn.close()
            assert b"hostwatch-bench-h1-c2" in body and len(body) == 2048
            if stop_by == "sigterm":
                child.send_signal(signal.SIGTERM)
            else:
                child.stdin.close()
            assert child.wait(timeout=10) == 0
            assert json.loads(child.stdout.readline()) == {"requests": 1}
        finally:
            if child.poll() is None:
                child.kill()
