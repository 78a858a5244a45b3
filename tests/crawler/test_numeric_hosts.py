"""#10 point 6: IPv4 hosts written the ways a browser accepts them
(``http://3232235777/``, ``http://0x7f.1/``) are checked at that address,
never looked up in DNS as a name, and the address guard applies to them.

Cases go in through the real import (the normaliser), then a real crawl runs
in a child process. A test with a target that is not loopback is marked
``netns`` (tests/netns.py: it runs inside ``unshare --net``), and the guard
must refuse such a target before any connect.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from lab import Redirect, Serve, marker_body
from store import Store
from store.imports import import_cases
from tests.crawler.conftest import checks_by_url, run_crawl
from tests.enrichment.conftest import hostwatch

IMAGE = marker_body("numeric-host-image", kind="jpeg")


def _import(store: Store, tmp_path: Path, urls: list[str]) -> dict[str, str]:
    """Import ``urls`` as a hotline file; reported URL -> its normal form."""
    path = tmp_path / "reports.csv"
    path.write_text("id,url,category,reported_at\n" + "".join(
        f"r{n},{url},csam,2026-02-01T10:00:00Z\n" for n, url in enumerate(urls)))
    result = import_cases(store, path)
    assert result.rejected == [] and result.added == len(urls)
    from sqlalchemy import select

    from store import Case
    with store.session() as session:
        return dict(session.execute(select(Case.url, Case.url_normalised)).all())


def _decimal(ip: str) -> str:
    return str(int(ipaddress.IPv4Address(ip)))


def _hex_short(ip: str) -> str:
    """127.0.0.12 as 0x7f.12 (first byte in hex, the rest as one number)."""
    first, *rest = ipaddress.IPv4Address(ip).packed
    return f"0x{first:x}.{int.from_bytes(bytes(rest), 'big')}"


@pytest.mark.slow
@pytest.mark.netns
def test_a_numeric_host_is_checked_at_its_address_and_found_online(sqlite_url, net, tmp_path):
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("numeric.test")
    host.route("/a.jpg", Serve(IMAGE))
    host.route("/to-meta.jpg", Redirect("http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/"))
    host.route("/to-private.jpg", Redirect("http://3232235777/x.jpg"))
    host.route("/to-self.jpg", Redirect(f"http://{_hex_short(host.ip)}:{net.port}/a.jpg"))
    base = f"http://{_decimal(host.ip)}:{net.port}"
    reported = {
        f"{base}/a.jpg": "online",
        f"http://{_hex_short(host.ip)}:{net.port}/a.jpg": "online",
        f"{base}/to-self.jpg": "online",
        f"{base}/to-meta.jpg": "blocked_address",
        f"{base}/to-private.jpg": "blocked_address",
    }
    normal = _import(store, tmp_path, list(reported))
    result = run_crawl(sqlite_url, net, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    checks = checks_by_url(store)
    got = {url: [c.verdict for c in checks.get(url, [])] for url in reported}
    assert got == {url: [verdict] for url, verdict in reported.items()}
    assert normal[f"{base}/a.jpg"] == f"http://{host.ip}:{net.port}/a.jpg"
    online = checks[f"{base}/a.jpg"][0]
    assert online.peer_ip == host.ip
    assert "169.254.169.254 is link-local" in checks[f"{base}/to-meta.jpg"][0].reason
    assert "192.168.1.1 is private" in checks[f"{base}/to-private.jpg"][0].reason
    self_redirect = checks[f"{base}/to-self.jpg"][0]
    assert self_redirect.final_url == f"http://{host.ip}:{net.port}/a.jpg"


@pytest.mark.slow
def test_a_numeric_loopback_host_is_refused_without_the_lab_setting(sqlite_url, net, tmp_path):
    store = Store(sqlite_url)
    store.upgrade()
    host = net.add_host("home.test")
    host.route("/a.jpg", Serve(IMAGE))
    url = f"http://{_hex_short(host.ip)}:{net.port}/a.jpg"
    _import(store, tmp_path, [url])
    result = run_crawl(sqlite_url, net, tmp_path, HOSTWATCH_ALLOW_PRIVATE="0")
    assert result.returncode == 0, result.stderr[-3000:]
    (check,) = checks_by_url(store)[url]
    assert check.verdict == "blocked_address"
    assert f"{host.ip} is loopback" in check.reason
    assert net.hits == []


@pytest.mark.slow
@pytest.mark.netns
def test_numeric_forms_of_private_addresses_are_blocked(sqlite_url, net, tmp_path):
    """With the tests' own lab setting (loopback allowed), the guard refuses
    every one of these by the address a browser would connect to, before any
    connect (and in a network namespace: had it not, nothing would leave)."""
    store = Store(sqlite_url)
    store.upgrade()
    reported = {
        "http://3232235777/a.jpg": "192.168.1.1 is private",
        "http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/": "169.254.169.254 is link-local",
        "http://0251.0376.0251.0376/": "169.254.169.254 is link-local",
        "http://10.1:8080/x": "10.0.0.1 is private",
        "http://172.0x100001/x": "172.16.0.1 is private",
        "http://0/": "0.0.0.0 is unspecified",
        "https://[::ffff:c0a8:101]/x": "192.168.1.1 is private",
        "http://0x64.0x40.0.1/": "100.64.0.1 is not globally routable",
    }
    _import(store, tmp_path, list(reported))
    result = run_crawl(sqlite_url, net, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    checks = checks_by_url(store)
    got = {url: [(c.verdict, reason in (c.reason or "")) for c in checks[url]]
           for url, reason in reported.items()}
    assert got == {url: [("blocked_address", True)] for url in reported}
    assert net.hits == []


@pytest.mark.slow
def test_whois_reads_numeric_hosts_as_addresses(sqlite_url, net, tmp_path):
    host = net.add_host("who-numeric.test", network=64503)
    host.default(Serve(IMAGE))
    for target in (f"http://{_decimal(host.ip)}:{net.port}/x.jpg", _decimal(host.ip),
                   _hex_short(host.ip)):
        result = hostwatch(sqlite_url, net, tmp_path, "whois", "--json", target)
        assert result.returncode == 0, (target, result.stderr)
        data = json.loads(result.stdout)
        assert (data["ip"], data["asn"]) == (host.ip, 64503), target


@pytest.mark.netns
def test_the_browser_check_s_media_redirects_read_numeric_hosts_as_addresses(net):
    """The browser check hashes the media a page shows with its own HTTP
    client (crawler.browser.check.hash_media); a redirect there to
    ``http://0xa9.0xfe.0xa9.0xfe/`` is the metadata address, refused by the
    guard before any connect, and one to the host's own address in hex is
    followed."""
    import asyncio
    import hashlib

    import aiohttp

    from crawler.browser.check import hash_media
    from crawler.resolver import GuardedResolver
    from crawler.verdict import ErrorKind
    from outbound.dns import Resolver
    from outbound.guard import parse_networks

    host = net.add_host("media.test")
    host.route("/real.jpg", Serve(IMAGE))
    host.route("/to-meta.jpg", Redirect("http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/"))
    host.route("/to-self.jpg", Redirect(f"http://{_hex_short(host.ip)}:{net.port}/real.jpg"))
    host.route("/to-decimal.jpg", Redirect(f"http://{_decimal(host.ip)}:{net.port}/real.jpg"))
    allow = loopback = parse_networks(["127.0.0.0/8"])

    async def fetch(path: str, allow=allow):
        # Names resolve through the guard with the lab setting; ``allow`` is
        # what hash_media lets through for an address in a URL.
        resolver = GuardedResolver(Resolver((net.nameserver,), timeout=2), loopback)
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver)) as session:
            return await hash_media(session, host.url(path), referer=host.url("/"),
                                    allow=allow, user_agent="hostwatch-test", max_body=1 << 20,
                                    max_redirects=3, timeout=5)

    blocked = asyncio.run(fetch("/to-meta.jpg"))
    assert blocked.error is ErrorKind.BLOCKED
    followed = asyncio.run(fetch("/to-self.jpg"))
    assert (followed.error, followed.sha256) == (None, hashlib.sha256(IMAGE).hexdigest())
    # Without the lab setting the decimal form of a loopback address is the
    # loopback address: blocked by the guard (aiohttp alone would call the
    # URL invalid, a bad response, not a refused target).
    before = len(net.hits)
    refused = asyncio.run(fetch("/to-decimal.jpg", allow=()))
    assert refused.error is ErrorKind.BLOCKED
    assert [hit.path for hit in net.hits[before:]] == ["/to-decimal.jpg"]


def test_the_browser_check_s_media_redirects_are_joined_as_a_browser_joins_them(net):
    """A media file's redirect is followed where the browser would go: a
    Location of ``\\\\other.test\\x.jpg`` is the host other.test to a browser
    (a backslash is a slash in http URLs), not a path on the same host as
    Python's urljoin reads it."""
    import asyncio
    import hashlib

    import aiohttp

    from crawler.browser.check import hash_media
    from crawler.resolver import GuardedResolver
    from outbound.dns import Resolver
    from outbound.guard import parse_networks

    host = net.add_host("media.test")
    other = net.add_host("other-media.test")
    other.route("/real.jpg", Serve(IMAGE))
    host.route("/to-other.jpg", Redirect(f"\\\\other-media.test:{net.port}\\real.jpg"))
    loopback = parse_networks(["127.0.0.0/8"])

    async def fetch(path: str):
        resolver = GuardedResolver(Resolver((net.nameserver,), timeout=2), loopback)
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver)) as session:
            return await hash_media(session, host.url(path), referer=host.url("/"),
                                    allow=loopback, user_agent="hostwatch-test",
                                    max_body=1 << 20, max_redirects=3, timeout=5)

    followed = asyncio.run(fetch("/to-other.jpg"))
    assert (followed.error, followed.sha256) == (None, hashlib.sha256(IMAGE).hexdigest())
