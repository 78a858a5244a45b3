"""The local test internet (lab): its DNS answers and scripted HTTP hosts.

Everything talks to 127.0.0.x only: DNS through dnspython pointed at the
server's port, HTTP by connecting to a host's address with a Host header.
"""

from __future__ import annotations

import gzip
import http.client
import ipaddress
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from lab import (
    DEFAULT_NETWORKS,
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
from lab.http_server import parse_request
from lab.networks import Mimic
from lab.rdap import REAL_ENTITY, REAL_RESPONSES

ROOT = Path(__file__).resolve().parent.parent
REAL_ASNAMES = REAL_RESPONSES.parent / "asnames.json.gz"
DOCUMENTATION_ASNS = range(64496, 64512)
# No proxy from the environment: these requests must go to loopback directly.
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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
    command = [sys.executable, "-m", "lab", "serve", "--hosts", "2", "--paths", "3"]
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
            assert rdap_get(f"{ready['rdap_url']}/ip/127.1.1.10")[2]["name"] == "DUTCHHOST-NL"
            rows = read_asn_table(Path(ready["asn_table"]))[1]
            assert ("127.1.5.0/24", 64505) in rows
            names = json.loads(Path(ready["asnames"]).read_text(encoding="utf-8"))
            assert names["64503"] == "RHEINHOST-DE Rhein Test Hosting GmbH, DE"
            assert {n["netname"]: n["prefix"] for n in ready["networks"]}["TESTCDN"] == (
                "127.1.5.0/24"
            )
            if stop_by == "sigterm":
                child.send_signal(signal.SIGTERM)
            else:
                child.stdin.close()
            assert child.wait(timeout=10) == 0
            assert json.loads(child.stdout.readline()) == {"requests": 1}  # no RDAP in it
            assert not Path(ready["asn_table"]).exists()  # the temporary files are gone
        finally:
            if child.poll() is None:
                child.kill()


def test_serve_child_process_serves_pictures_and_their_reencodings_with_images() -> None:
    """``--images K``: real pictures at /i/{j}, their re-encodings at /i/{j}/{variant}
    (the PDQ crawl benchmark's farm); /c/{j} as before."""
    from lab import images
    from lab.__main__ import bench_image_seed

    command = [sys.executable, "-m", "lab", "serve", "--hosts", "2", "--paths", "3",
               "--images", "2"]
    with subprocess.Popen(
        command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdin is not None and child.stdout is not None
        try:
            ready = json.loads(child.stdout.readline())
            assert ready["images"] == 2
            ip = ready["hosts"][1]["ip"]
            seed = bench_image_seed(1, 2, hosts=2, images=2)
            assert seed == 2 and bench_image_seed(0, 1, hosts=2, images=2) == 1
            got = {}
            for path in ("/i/2", "/i/2/webp", "/i/2/resized", "/c/2"):
                conn = http.client.HTTPConnection(ip, ready["port"], timeout=5)
                conn.request("GET", path, headers={"Host": "h1.bench.test"})
                response = conn.getresponse()
                got[path] = (response.status, response.getheader("Content-Type"), response.read())
                conn.close()
            assert got["/i/2"] == (200, "image/jpeg", images.reported(seed))
            assert got["/i/2/webp"] == (200, "image/webp", images.variants(seed)["webp"])
            assert got["/i/2/resized"][2] == images.variants(seed)["resized"]
            assert images.reported(seed) != images.reported(1)  # another picture per seed
            assert b"hostwatch-bench-h1-c2" in got["/c/2"][2]
        finally:
            child.stdin.close()
            if child.wait(timeout=10) != 0:
                child.kill()


# -- test networks and their ASN files ---------------------------------------


def rdap_get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, str], Any]:
    """GET an RDAP URL on loopback: status, headers, parsed JSON (errors included)."""
    try:
        with NO_PROXY.open(url, timeout=timeout) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.load(error)


def read_asn_table(path: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """The ``;`` header lines and the ``(prefix, asn)`` rows of a pyasn text table."""
    header, rows = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(";"):
            header.append(line)
            continue
        prefix, tab, asn = line.partition("\t")
        assert tab and asn.isdigit(), f"not a pyasn row: {line!r}"
        rows.append((prefix, int(asn)))
    return header, rows


def origin_asn(rows: list[tuple[str, int]], ip: str) -> int | None:
    """Longest-prefix match of ``ip`` in table rows, as pyasn does it."""
    address = ipaddress.ip_address(ip)
    matches = [
        (ipaddress.ip_network(prefix), asn)
        for prefix, asn in rows
        if address in ipaddress.ip_network(prefix)
    ]
    return max(matches, key=lambda match: match[0].prefixlen)[1] if matches else None


def vcard(entity: dict[str, Any], field: str) -> list[str]:
    return [item[3] for item in entity["vcardArray"][1] if item[0] == field]


def test_default_networks_span_nl_eu_non_eu_and_a_cdn(net: TestInternet) -> None:
    networks = net.networks
    assert len(networks) == len(DEFAULT_NETWORKS) == 8
    assert all(network.asn in DOCUMENTATION_ASNS for network in networks)
    by_name = {network.netname: network for network in networks}
    assert [by_name[name].country for name in ("DUTCHHOST-NL", "POLDERHOST-NL")] == ["NL", "NL"]
    assert by_name["RHEINHOST-DE"].country == "DE"
    assert by_name["LIBERTYHOST-US"].country == "US"
    assert [network.netname for network in networks if network.cdn] == ["TESTCDN"]
    assert str(net.network(64501).prefix) == "127.1.1.0/24"
    assert net.network("dutchhost-nl") is net.network(64501)
    assert net.network("OFFSHORE-RESELLER").asn == 64502  # a second block of AS64502
    assert net.network(64502).netname == "POLDERHOST-NL"  # by ASN: the first one
    blocks = [network.prefix for network in networks]
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])
    with pytest.raises(KeyError):
        net.network(64499)


def test_host_in_a_network_gets_an_address_of_its_block(net: TestInternet) -> None:
    dutch = net.network("DUTCHHOST-NL")
    first = net.add_host("nl-one.test", network=dutch)
    second = net.add_host("nl-two.test", network=64501)
    german = net.add_host("de.test", network="RHEINHOST-DE")
    plain = net.add_host("plain.test")
    assert (first.ip, second.ip, german.ip, plain.ip) == (
        "127.1.1.10", "127.1.1.11", "127.1.3.10", "127.0.0.10",
    )
    assert (first.network, german.network, plain.network) == (
        dutch, net.network(64503), None,
    )
    resolver = resolver_for(net)
    for host in (first, second, german, plain):
        assert [rr.to_text() for rr in resolver.resolve(host.name, "A")] == [host.ip]
    german.route("/img", Serve(b"from-de"))
    assert get(net, "de.test", "/img")[2] == b"from-de"
    assert net.hits[-1].ip == "127.1.3.10"


def test_add_network_takes_the_next_free_block_and_refuses_clashes(net: TestInternet) -> None:
    franco = net.add_network(64510, "FRANCO-FR Franco Test SAS", "FR", "Franco Test SAS",
                             "abuse@franco.test")
    other = net.add_network(64511, "OTHER-FR Other Test SAS", "FR", "Other Test SAS",
                            "abuse@other.test")
    chosen = net.add_network(65536, "BIG-NL Big Test B.V.", "NL", "Big Test B.V.",
                             "abuse@big.test", prefix="127.9.0.0/16")
    assert (str(franco.prefix), str(other.prefix), str(chosen.prefix)) == (
        "127.2.0.0/24", "127.2.1.0/24", "127.9.0.0/16",
    )
    assert (franco.netname, franco.country, franco.as_country) == ("FRANCO-FR", "FR", "FR")
    assert net.add_host("fr.test", network=franco).ip == "127.2.0.10"
    with pytest.raises(ValueError, match="overlaps"):
        net.add_network(64512, "X-NL X", "NL", "X", "abuse@x.test", prefix="127.1.1.0/24")
    with pytest.raises(ValueError, match="outside"):
        net.add_network(64512, "X-NL X", "NL", "X", "abuse@x.test", prefix="127.0.5.0/24")
    with pytest.raises(ValueError, match="already named"):
        net.add_network(64501, "RENAMED-NL Renamed", "NL", "X", "abuse@x.test")
    with pytest.raises(ValueError, match="rdap_name"):
        net.add_network(64501, "DUTCHHOST-NL Dutch Test Hosting B.V.", "NL", "X", "a@x.test")
    with pytest.raises(ValueError, match="two-letter"):
        net.add_network(64512, "X-NL X", "Netherlands", "X", "abuse@x.test")


def test_network_block_runs_out_of_addresses() -> None:
    net = TestInternet(networks=())
    tiny = net.add_network(64500, "TINY-NL Tiny", "NL", "Tiny", "abuse@tiny.test")
    ips = [net.add_host(f"t{i}.test", network=tiny).ip for i in range(245)]
    assert (ips[0], ips[-1]) == ("127.2.0.10", "127.2.0.254")
    with pytest.raises(ValueError, match="out of loopback addresses"):
        net.add_host("one-too-many.test", network=tiny)


def test_asn_table_is_pyasn_text_covering_every_test_network(net: TestInternet) -> None:
    header, rows = read_asn_table(net.asn_table_path)
    assert header[0] == "; IP-ASN32-DAT file"
    assert "; Prefixes      : 8" in header
    assert rows == [
        ("127.1.1.0/24", 64501),
        ("127.1.2.0/24", 64502),
        ("127.1.3.0/24", 64503),
        ("127.1.4.0/24", 64504),
        ("127.1.5.0/24", 64505),
        ("127.1.6.0/24", 64506),
        ("127.1.7.0/24", 64502),
        ("127.1.8.0/24", 64507),
    ]
    assert origin_asn(rows, net.add_host("nl.test", network=64501).ip) == 64501
    assert origin_asn(rows, net.add_host("reseller.test", network="OFFSHORE-RESELLER").ip) == 64502
    assert origin_asn(rows, net.add_host("plain.test").ip) is None  # 127.0.0.0/16: no AS
    # The same format as the real table of realdata, so one loader reads both.
    with gzip.open(REAL_RESPONSES.parent / "ipasn_20140513.dat.gz", "rt") as real:
        real_head = [next(real) for _ in range(7)]
    assert real_head[0].rstrip("\n") == header[0]
    assert re.fullmatch(r"[\d.]+/\d+\t\d+\n", real_head[-1])


def test_network_added_after_start_is_written_to_both_files(net: TestInternet) -> None:
    net.add_network(64509, "LATE-BE Late Test BV", "BE", "Late Test BV", "abuse@late.test")
    assert ("127.2.0.0/24", 64509) in read_asn_table(net.asn_table_path)[1]
    names = json.loads(net.asnames_path.read_text(encoding="utf-8"))
    assert names["64509"] == "LATE-BE Late Test BV, BE"


def test_asnames_file_has_the_shape_of_the_real_one(net: TestInternet) -> None:
    names = json.loads(net.asnames_path.read_text(encoding="utf-8"))
    assert names == {
        "64501": "DUTCHHOST-NL Dutch Test Hosting B.V., NL",
        "64502": "POLDERHOST-NL Polder Servers B.V., NL",
        "64503": "RHEINHOST-DE Rhein Test Hosting GmbH, DE",
        "64504": "LIBERTYHOST-US Liberty Test Hosting LLC, US",
        "64505": "TESTCDN TestCDN Inc., US",
        "64506": "TRANSATLANTIC-US Transatlantic Test Hosting Inc., US",
        "64507": "GRENSHOST-NL Grens Test Hosting B.V., NL",
    }
    with gzip.open(REAL_ASNAMES, "rt", encoding="utf-8") as real_file:
        real = json.load(real_file)
    shape = re.compile(r"\S+ .+, [A-Z]{2}")
    assert real["60781"] == "LEASEWEB-NL LeaseWeb Netherlands B.V., NL"
    assert all(key.isdigit() and shape.fullmatch(value) for key, value in names.items())
    assert shape.fullmatch(real["60781"]) and shape.fullmatch(real["24940"])


def test_geoip_file_places_each_block_where_its_servers_stand(net: TestInternet) -> None:
    """A foreign company's Dutch data centre and a Dutch company's German one:
    the geolocation file says where the servers stand, not who holds them."""
    import maxminddb

    with maxminddb.open_database(str(net.geoip_path)) as reader:
        def country(ip: str) -> str | None:
            record = reader.get(ip)
            return record["country"]["iso_code"] if record else None

        assert country(net.add_host("nl.test", network=64501).ip) == "NL"
        assert country(net.add_host("us-in-ams.test", network=64506).ip) == "NL"
        assert country(net.add_host("nl-in-fra.test", network=64507).ip) == "DE"
        assert country(net.add_host("us.test", network=64504).ip) == "US"
        assert country(net.add_host("plain.test").ip) is None
    grens = net.network(64507)
    assert (grens.as_country, grens.org_country, grens.country, grens.server_country) == (
        "NL", "NL", "DE", "DE")


def test_pyasn_reads_the_asn_table(net: TestInternet) -> None:
    pyasn = pytest.importorskip("pyasn")
    table = pyasn.pyasn(str(net.asn_table_path), as_names_file=str(net.asnames_path))
    host = net.add_host("nl.test", network=64501)
    assert table.lookup(host.ip) == (64501, "127.1.1.0/24")
    assert table.lookup("127.0.0.10") == (None, None)


def test_network_files_live_while_started_or_in_files_dir(tmp_path: Path) -> None:
    net = TestInternet()
    with pytest.raises(RuntimeError):
        net.asn_table_path  # noqa: B018 - not written before start
    with net:
        temporary = net.asn_table_path
        assert temporary.exists() and net.asnames_path.parent == temporary.parent
    assert not temporary.exists()
    with TestInternet(networks=(), files_dir=tmp_path / "nets") as empty:
        assert empty.asn_table_path == tmp_path / "nets" / "ipasn.dat"
        assert read_asn_table(empty.asn_table_path)[1] == []
    assert json.loads((tmp_path / "nets" / "asnames.json").read_text()) == {}


# -- RDAP ---------------------------------------------------------------------


def test_rdap_answers_a_test_network_like_ripe(net: TestInternet) -> None:
    host = net.add_host("nl.test", network=64501)
    status, headers, answer = rdap_get(f"{net.rdap_url}/ip/{host.ip}")
    assert status == 200 and headers["Content-Type"] == "application/rdap+json"
    assert answer["objectClassName"] == "ip network"
    assert (answer["handle"], answer["startAddress"], answer["endAddress"]) == (
        "127.1.1.0 - 127.1.1.255", "127.1.1.0", "127.1.1.255",
    )
    assert (answer["name"], answer["country"], answer["ipVersion"]) == ("DUTCHHOST-NL", "NL", "v4")
    assert answer["cidr0_cidrs"] == [{"v4prefix": "127.1.1.0", "length": 24}]
    roles = {role: entity for entity in answer["entities"] for role in entity["roles"]}
    assert vcard(roles["registrant"], "fn") == ["Dutch Test Hosting B.V."]
    assert vcard(roles["abuse"], "email") == ["abuse@dutchhost.test"]
    assert answer["links"][0]["value"] == f"{net.rdap_url}/ip/{host.ip}"
    real_ripe = json.loads(REAL_RESPONSES.read_text())["62.239.237.1"]["response"]
    assert set(real_ripe) <= set(answer)  # every top-level member of a real RIPE answer


def test_rdap_block_holder_can_differ_from_the_as(net: TestInternet) -> None:
    reseller = net.add_host("reseller.test", network="OFFSHORE-RESELLER")
    status, _, answer = rdap_get(f"{net.rdap_url}/ip/{reseller.ip}")
    roles = {role: entity for entity in answer["entities"] for role in entity["roles"]}
    assert (status, answer["name"], answer["country"]) == (200, "OFFSHORE-RESELLER", "SC")
    assert vcard(roles["registrant"], "fn") == ["Offshore Test Reseller Ltd."]
    # ...registered through a broker: the only test network whose answer names a reseller.
    assert vcard(roles["reseller"], "fn") == ["Island Test Brokers Ltd."]
    amsterdam = rdap_get(f"{net.rdap_url}/ip/127.1.6.99")[2]
    assert (amsterdam["name"], amsterdam["country"]) == ("TRANSATLANTIC-AMS", "NL")
    assert all("reseller" not in entity["roles"] for entity in amsterdam["entities"])


def test_rdap_serves_every_real_answer_by_address(net: TestInternet) -> None:
    real = json.loads(REAL_RESPONSES.read_text())
    assert len(real) == 10
    for ip, item in real.items():
        status, _, answer = rdap_get(f"{net.rdap_url}/ip/{ip}")
        assert (status, answer) == (200, item["response"]), ip


@pytest.mark.parametrize(
    ("ip", "handle"),
    [
        ("62.239.237.200", "62.239.237.0 - 62.239.237.255"),  # RIPE, "/32" in the range
        ("74.125.9.9", "NET-74-125-0-0-1"),  # ARIN, zero-padded "074.125.000.000"
        ("2001:4860:1::5", "NET6-2001-4860-1"),  # ARIN IPv6, upper case
        ("210.107.127.255", "210.107.0.0 - 210.107.127.255"),  # APNIC, last address
        ("196.11.239.0", "196.11.239.0 - 196.11.246.255"),  # AFRINIC, first address
    ],
)
def test_rdap_real_answer_covers_its_whole_range(net: TestInternet, ip: str, handle: str) -> None:
    status, _, answer = rdap_get(f"{net.rdap_url}/ip/{ip}")
    assert (status, answer["handle"]) == (200, handle)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/ip/62.239.238.1", 404),  # just past the real BT range
        ("/ip/9.9.9.9", 404),
        ("/ip/127.0.0.10", 404),  # hosts without a network belong to nobody
        ("/ip/not-an-address", 400),
        ("/domain/shop.test", 404),
    ],
)
def test_rdap_errors_are_rdap_error_objects(net: TestInternet, path: str, status: int) -> None:
    got, headers, error = rdap_get(net.rdap_url + path)
    assert (got, error["errorCode"]) == (status, status)
    assert headers["Content-Type"] == "application/rdap+json"
    assert error["description"] and error["rdapConformance"] == ["rdap_level_0"]


def test_rdap_prefix_query_entity_and_autnum(net: TestInternet) -> None:
    assert rdap_get(f"{net.rdap_url}/ip/127.1.3.0/24")[2]["name"] == "RHEINHOST-DE"
    status, _, entity = rdap_get(f"{net.rdap_url}/entity/AR-RHEINHOST-DE-TEST")
    assert (status, vcard(entity, "email")) == (200, ["abuse@rheinhost.test"])
    real_entity = json.loads(REAL_ENTITY.read_text())
    assert rdap_get(f"{net.rdap_url}/entity/{real_entity['handle']}")[2] == real_entity
    status, _, autnum = rdap_get(f"{net.rdap_url}/autnum/AS64505")
    assert (status, autnum["handle"], autnum["name"]) == (200, "AS64505", "TESTCDN")
    assert rdap_get(f"{net.rdap_url}/autnum/15169")[0] == 404


def test_rdap_counts_requests_per_address_and_network(net: TestInternet) -> None:
    for ip in ("127.1.1.10", "127.1.1.10", "127.1.1.77", "127.1.4.10", "62.239.237.1"):
        rdap_get(f"{net.rdap_url}/ip/{ip}")
    rdap_get(f"{net.rdap_url}/entity/ZG39-ARIN")
    assert net.rdap_hit_count() == 6
    assert net.rdap_hit_count("127.1.1.10") == 2
    assert net.rdap_hit_count(net.network(64501)) == 3
    assert net.rdap_hit_count("127.1.0.0/16") == 4
    assert net.rdap_hit_count("62.239.237.0/24") == 1
    assert net.rdap_hits[0].path == "/ip/127.1.1.10" and net.rdap_hits[0].status == 200
    assert net.hit_count == 0  # RDAP requests are not web hits
    net.clear_rdap_hits()
    assert net.rdap_hit_count() == 0 and net.rdap_hits == []


def test_rdap_scripted_failures(net: TestInternet) -> None:
    url = net.rdap_url
    net.rdap_fail(net.network(64501), 503, times=2)
    net.rdap_fail("127.1.4.10", 429, retry_after=7)
    assert [rdap_get(f"{url}/ip/127.1.1.10")[0] for _ in range(3)] == [503, 503, 200]
    status, headers, error = rdap_get(f"{url}/ip/127.1.4.10")
    assert (status, headers["Retry-After"], error["errorCode"]) == (429, "7", 429)
    assert rdap_get(f"{url}/ip/127.1.4.11")[0] == 200  # only that address fails
    assert rdap_get(f"{url}/ip/127.1.4.10")[0] == 429  # without times: for good
    net.clear_rdap_faults()
    assert rdap_get(f"{url}/ip/127.1.4.10")[0] == 200
    assert [hit.status for hit in net.rdap_hits] == [503, 503, 200, 429, 200, 429, 200]
    with pytest.raises(ValueError):
        net.rdap_fail("127.1.4.10", 200)


def test_rdap_slow_answer_times_a_client_out(net: TestInternet) -> None:
    net.rdap_slow("62.239.237.0/24", 0.6, times=1)
    with pytest.raises(TimeoutError):
        rdap_get(f"{net.rdap_url}/ip/62.239.237.1", timeout=0.2)
    started = time.monotonic()
    assert rdap_get(f"{net.rdap_url}/ip/62.239.237.1")[0] == 200
    assert time.monotonic() - started < 0.5  # times=1: the second one is quick
    net.rdap_fail("127.1.2.0/24", 504, delay=0.3)
    started = time.monotonic()
    assert rdap_get(f"{net.rdap_url}/ip/127.1.2.10")[0] == 504
    assert time.monotonic() - started >= 0.3


# -- CDN sites ----------------------------------------------------------------


def test_cdn_site_is_a_cname_onto_an_edge_in_the_cdn_network(net: TestInternet) -> None:
    site = net.add_cdn_site("shop.test").route("/img/1.jpg", Serve(b"via-cdn"))
    assert (site.name, site.edge_name) == ("shop.test", "shop.test.testcdn-edge.test")
    assert site.network is net.network("TESTCDN") and site.ip == "127.1.5.10"
    answer = resolver_for(net).resolve("shop.test", "A")
    sections = [
        (str(rrset.name), dns.rdatatype.to_text(rrset.rdtype), [rr.to_text() for rr in rrset])
        for rrset in answer.response.answer
    ]
    assert sections == [
        ("shop.test.", "CNAME", ["shop.test.testcdn-edge.test."]),
        ("shop.test.testcdn-edge.test.", "A", ["127.1.5.10"]),
    ]
    status, headers, body = get(net, "shop.test", "/img/1.jpg")
    assert (status, body, headers["Server"]) == (200, b"via-cdn", "TestCDN")
    assert re.fullmatch(r"[0-9a-f]{16}-AMS", headers["X-TestCDN-Id"])
    assert get(net, "shop.test", "/nothing")[1]["Server"] == "TestCDN"  # on every response
    assert net.host("shop.test.testcdn-edge.test") is site
    rdap = rdap_get(f"{net.rdap_url}/ip/{site.ip}")[2]
    assert rdap["name"] == "TESTCDN"
    assert origin_asn(read_asn_table(net.asn_table_path)[1], site.ip) == 64505


@pytest.mark.parametrize(
    ("mimic", "expected"),
    [
        ("cloudflare", {"Server": "cloudflare", "CF-Cache-Status": "HIT"}),
        ("fastly", {"X-Cache": "HIT", "Via": "1.1 varnish"}),
        ("cloudfront", {"X-Cache": "Hit from cloudfront", "X-Amz-Cf-Pop": "AMS58-P1"}),
    ],
)
def test_cdn_site_can_look_like_a_real_cdn(
    net: TestInternet, mimic: Mimic, expected: dict[str, str]
) -> None:
    net.add_cdn_site("blog.test", mimic=mimic, headers={"X-Extra": "1"})
    headers = get(net, "blog.test", "/")[1]
    assert expected.items() <= headers.items()
    assert headers["X-Extra"] == "1" and "X-TestCDN-Id" not in headers
    if mimic == "cloudflare":
        assert re.fullmatch(r"[0-9a-f]{16}-AMS", headers["CF-RAY"])


def test_cdn_site_with_own_edge_name_and_cdn() -> None:
    with TestInternet(networks=()) as net:
        with pytest.raises(ValueError, match="no CDN network"):
            net.add_cdn_site("shop.test")
        edgy = net.add_network(64511, "EDGY Edgy CDN Ltd.", "GB", "Edgy CDN Ltd.",
                               "abuse@edgy.test", cdn=True)
        site = net.add_cdn_site("www.shop.test", edge_name="e1.edgy-cdn.test")
        assert site.network is edgy and site.ip == "127.2.0.10"
        answer = resolver_for(net).resolve("www.shop.test", "A")
        assert str(answer.canonical_name) == "e1.edgy-cdn.test."
        with pytest.raises(ValueError, match="already exists"):
            net.add_host("e1.edgy-cdn.test")


# -- hosts moving between networks -------------------------------------------


def test_moved_host_resolves_to_its_new_network_and_keeps_its_routes(net: TestInternet) -> None:
    body = marker_body("mover")
    mover = net.add_host("mover.test", network="DUTCHHOST-NL")
    mover.route("/img", [Serve(body), Status(404)])
    resolver = resolver_for(net)
    assert [rr.to_text() for rr in resolver.resolve("mover.test", "A")] == ["127.1.1.10"]
    assert get(net, "mover.test", "/img")[2] == body
    old_ip = mover.ip

    assert net.move_host("mover.test", to_network=64503) is mover
    assert (mover.ip, mover.network) == ("127.1.3.10", net.network("RHEINHOST-DE"))
    answer = resolver.resolve("mover.test", "A")
    assert [rr.to_text() for rr in answer] == ["127.1.3.10"]
    assert answer.rrset is not None and answer.rrset.ttl == 42
    assert get(net, "mover.test", "/img")[2] == body  # same routes at the new address
    net.round = 1
    assert get(net, "mover.test", "/img")[0] == 404  # and the same script per round
    assert [hit.ip for hit in net.hits] == [old_ip, "127.1.3.10", "127.1.3.10"]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((old_ip, net.port), timeout=2).close()
    assert rdap_get(f"{net.rdap_url}/ip/{mover.ip}")[2]["country"] == "DE"
    assert origin_asn(read_asn_table(net.asn_table_path)[1], mover.ip) == 64503
    net.move_host("mover.test", to_network=None)  # off every network: 127.0.0.0/16
    assert mover.ip == "127.0.0.10" and mover.network is None
    assert get(net, "mover.test", "/img")[0] == 404


def test_move_closes_open_keep_alive_connections(net: TestInternet) -> None:
    net.add_host("k.test", network=64501).route("/a", Serve(b"a"))
    conn = http.client.HTTPConnection(net.host("k.test").ip, net.port, timeout=5)
    try:
        conn.request("GET", "/a", headers={"Host": "k.test"})
        assert conn.getresponse().read() == b"a"
        net.move_host("k.test", "LIBERTYHOST-US")
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            conn.request("GET", "/a", headers={"Host": "k.test"})
            conn.getresponse().read()
    finally:
        conn.close()


def test_move_before_start_and_a_cdn_site_leaving_its_cdn() -> None:
    net = TestInternet(ttl=5)
    net.add_host("early.test", network=64501).route("/x", Serve(b"x"))
    net.move_host("early.test", "POLDERHOST-NL")
    site = net.add_cdn_site("shop.test")
    with net:
        assert get(net, "early.test", "/x")[2] == b"x"
        assert net.host("early.test").ip == "127.1.2.10"
        net.move_host("shop.test", to_network=64504)  # the edge name's A record moves
        answer = resolver_for(net).resolve("shop.test", "A")
        assert str(answer.canonical_name) == "shop.test.testcdn-edge.test."
        assert [rr.to_text() for rr in answer] == [site.ip] == ["127.1.4.10"]
        assert get(net, "shop.test", "/")[0] == 200
