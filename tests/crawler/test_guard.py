import asyncio
import socket

import pytest

from kernel.config import LAB_NETWORKS
from outbound.guard import forbidden_reason, parse_networks

LAB = parse_networks(LAB_NETWORKS)
LOOPBACK_ONLY = parse_networks(["127.0.0.0/8"])


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "::1",
    "fe80::1", "fc00::1", "100.64.0.1", "::ffff:10.0.0.1", "240.0.0.1", "0.0.0.0",
    "224.0.0.1",
])
def test_non_public_addresses_are_refused(address):
    assert forbidden_reason(address) is not None


@pytest.mark.parametrize("address", [
    "192.0.0.8",  # IANA's IPv4 dummy address (192.0.0.0/24, IETF protocol assignments)
    "fec0::1",  # IPv6 site-local: deprecated, still routed inside some networks
    "3fff::1",  # IPv6 documentation (RFC 9637)
    "5f00::1",  # SRv6 segment identifiers (RFC 9602)
])
def test_ranges_the_iana_registry_marks_not_globally_reachable_are_refused(address):
    """Whatever the Python version's ipaddress tables say (3.11's pass these)."""
    assert forbidden_reason(address) is not None


@pytest.mark.parametrize("address", ["85.17.1.1", "8.8.8.8", "2a00:1450:4001::1"])
def test_public_addresses_pass(address):
    assert forbidden_reason(address) is None


def test_lab_setting_lets_loopback_and_private_through_but_never_multicast():
    assert forbidden_reason("127.0.0.5", LAB) is None
    assert forbidden_reason("10.0.0.5", LAB) is None
    assert forbidden_reason("169.254.169.254", LAB) is not None  # cloud metadata
    assert forbidden_reason("224.0.0.1", LAB) is not None
    assert forbidden_reason("0.0.0.0", LAB) is not None


def test_a_network_list_allows_exactly_those_networks():
    assert forbidden_reason("127.0.0.20", LOOPBACK_ONLY) is None
    assert "private" in forbidden_reason("10.0.0.5", LOOPBACK_ONLY)
    assert "loopback" in forbidden_reason("::1", LOOPBACK_ONLY)


def test_garbage_is_refused():
    assert "not an IP" in forbidden_reason("example.test")


@pytest.mark.parametrize("address", [
    "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "2002:7f00:1::1", "::7f00:1", "2001:0:4136:e378::1",
    "::ffff:0:a9fe:a9fe", "::ffff:0:7f00:1",  # IPv4-translated (SIIT, RFC 6145)
])
def test_ipv6_forms_that_embed_an_ipv4_address_are_refused(address):
    assert "embeds an IPv4" in forbidden_reason(address)
    assert forbidden_reason(address, LOOPBACK_ONLY) is not None


# -- the resolver connections are made through (crawler/resolver.py) ----------


def _resolve(net, name, allow, family=socket.AF_INET):
    from crawler.resolver import GuardedResolver
    from outbound.dns import Resolver

    resolver = GuardedResolver(Resolver((net.nameserver,), timeout=2), allow)
    return asyncio.run(resolver.resolve(name, 80, family))


def test_connections_only_get_addresses_the_guard_allows(net):
    net.add_a("mixed.test", "127.0.0.9")
    net.add_a("mixed.test", "10.0.0.9")
    results = _resolve(net, "mixed.test", LOOPBACK_ONLY)
    assert [(r["host"], r["port"]) for r in results] == [("127.0.0.9", 80)]


def test_a_name_with_only_forbidden_addresses_gets_no_connection(net):
    net.add_a("inside.test", "10.0.0.9")
    with pytest.raises(OSError, match="no address the guard allows"):
        _resolve(net, "inside.test", LOOPBACK_ONLY)
    net.add_a("home.test", "127.0.0.9")
    with pytest.raises(OSError, match="no address the guard allows"):
        _resolve(net, "home.test", ())  # loopback, without HOSTWATCH_ALLOW_PRIVATE


def test_a_name_that_does_not_resolve_is_an_os_error_for_aiohttp(net):
    with pytest.raises(OSError, match="nxdomain"):
        _resolve(net, "nowhere.test", LOOPBACK_ONLY)


# -- numeric host forms (#10): the guard sees the address a browser connects to --


@pytest.mark.parametrize(("url", "reason"), [
    ("http://3232235777/", "192.168.1.1 is private"),
    ("http://0x7f.1/", "127.0.0.1 is loopback"),
    ("http://0177.0.0.1/", "127.0.0.1 is loopback"),
    ("http://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254 is link-local"),
    ("http://2852039166/", "169.254.169.254 is link-local"),
    ("http://10.1/", "10.0.0.1 is private"),
    ("http://0xac.0x10.0.1/", "172.16.0.1 is private"),
    ("http://0x0/", "0.0.0.0 is unspecified"),
    ("http://0xe0000001/", "224.0.0.1 is multicast"),
    ("http://[::ffff:a9fe:a9fe]/", "169.254.169.254 is link-local"),
    ("http://[0:0:0:0:0:0:0:1]/", "::1 is loopback"),
])
def test_numeric_host_forms_are_guarded_as_their_address(url, reason):
    from kernel.urls import normalise_url

    host = normalise_url(url).host
    assert forbidden_reason(host) == reason
    if "127.0.0.1" not in reason:
        assert forbidden_reason(host, LOOPBACK_ONLY) == reason


def _guard_request(url, allow=LOOPBACK_ONLY):
    """The guard middleware on one request; its resolver points nowhere, so
    any DNS lookup would fail as a timeout, not pass."""
    from scrapy import Request

    from crawler.middlewares import AddressGuardMiddleware
    from outbound.dns import Resolver

    guard = AddressGuardMiddleware(Resolver((("127.0.0.1", 9),), timeout=1), allow)
    return asyncio.run(guard.process_request(Request(url))), guard


@pytest.mark.parametrize(("url", "address"), [
    ("http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/", "169.254.169.254"),
    ("http://3232235777:8080/x", "192.168.1.1"),
    ("https://0x7f.1/", "127.0.0.1"),
])
def test_a_redirect_to_a_numeric_host_is_requested_at_its_address_and_guarded(url, address):
    """A redirect hop reaches the middleware with the server's spelling; it
    goes on as the URL a browser would request, and the guard judges that
    address before any connection (no DNS lookup of "0xa9.0xfe.0xa9.0xfe")."""
    from crawler.errors import RefusedTarget
    from crawler.middlewares import META_ADDRESSES

    rewritten, guard = _guard_request(url)
    assert rewritten is not None and address in rewritten.url
    if address.startswith("127."):
        assert asyncio.run(guard.process_request(rewritten)) is None
        assert rewritten.meta[META_ADDRESSES] == [address]
        return
    with pytest.raises(RefusedTarget) as caught:
        asyncio.run(guard.process_request(rewritten))
    assert caught.value.kind.value == "blocked_address"
    assert address in caught.value.detail


def test_a_redirect_a_browser_could_not_follow_is_not_looked_up():
    from crawler.errors import RefusedTarget

    with pytest.raises(RefusedTarget) as caught:
        _guard_request("http://1.2.3.4.5/x")
    assert caught.value.kind.value == "unsupported"
