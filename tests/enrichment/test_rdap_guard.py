"""RDAP redirects pass the crawl's address guard (issue #10, point 7).

The local RDAP server redirects as ARIN does, but to addresses that must never
be connected to. Every test here runs inside a network namespace with only
loopback (``netns``: tests/netns.py), so nothing can leave even if the guard
failed: there a forbidden connection would end as a connection error, not as
the guard's refusal these tests expect.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from enrichment.rdap_client import RdapClient
from enrichment.rdap_parse import RdapError, RdapErrorKind
from kernel.config import Config
from lab import Serve, TestInternet, marker_body
from store import Network, Store
from tests.crawler.conftest import add_cases
from tests.enrichment.conftest import hostwatch

pytestmark = pytest.mark.netns

RIPE_IP = "62.239.237.1"  # a real RIPE answer of the test RDAP server (BT-CORPORATE)


def _client(net: TestInternet) -> RdapClient:
    return RdapClient.from_config(Config.from_env({
        "HOSTWATCH_RDAP_URL": net.rdap_url, "HOSTWATCH_RDAP_TIMEOUT": "3",
        "HOSTWATCH_NAMESERVERS": net.nameservers_env, "HOSTWATCH_DNS_TIMEOUT": "2",
        "HOSTWATCH_ALLOW_PRIVATE": "127.0.0.0/8"}))


def _port(net: TestInternet) -> int:
    port = urlsplit(net.rdap_url).port
    assert port is not None
    return port


@pytest.mark.parametrize(("to", "reason"), [
    ("http://169.254.169.254/rdap", "169.254.169.254 is link-local"),  # cloud metadata
    ("http://10.0.0.1/rdap", "10.0.0.1 is private"),
    ("http://inside.rdap.test:{port}", "10.0.0.9 is private"),  # a name, private in DNS
    ("http://[::1]:{port}", "::1 is loopback"),  # loopback, but not what the test allows
    ("http://0.0.0.0:{port}", "0.0.0.0 is unspecified"),
    ("https://[::ffff:169.254.169.254]/rdap", "169.254.169.254 is link-local"),
    # Numeric forms a browser reads as an address (not DNS names to look up).
    ("http://0xa9.0xfe.0xa9.0xfe/rdap", "169.254.169.254 is link-local"),
    ("http://2852039166/rdap", "169.254.169.254 is link-local"),
    ("http://0x0a.1:{port}", "10.0.0.1 is private"),
    ("http://[0:0:0:0:0:ffff:0a00:0001]:{port}", "10.0.0.1 is private"),
])
def test_a_redirect_to_a_forbidden_address_is_refused(net: TestInternet, to: str,
                                                      reason: str) -> None:
    net.add_a("inside.rdap.test", "10.0.0.9")
    net.rdap_redirect(RIPE_IP, to.format(port=_port(net)))
    client = _client(net)
    with pytest.raises(RdapError) as caught:
        client.lookup(RIPE_IP)
    error = caught.value
    assert error.kind is RdapErrorKind.REFUSED
    assert f"redirect 1 refused by the address guard: {reason}" in str(error)
    assert "inside.rdap.test" not in str(error)  # the server's words are not repeated
    assert [hit.path for hit in net.rdap_hits] == [f"/ip/{RIPE_IP}"]  # nothing followed
    assert client.requests_made == 1


def test_a_redirect_to_another_allowed_rdap_server_is_followed(net: TestInternet) -> None:
    """ARIN -> RIPE: the redirect names a host that only hostwatch's resolver
    knows, with a forbidden address beside the allowed one; the answer comes
    from the allowed one, asked by name (Host header)."""
    net.add_a("rdap.ripe.test", "10.0.0.7")
    net.add_a("rdap.ripe.test", "127.0.0.1")
    net.rdap_redirect(RIPE_IP, f"http://rdap.ripe.test:{_port(net)}", times=1)
    client = _client(net)
    answer = client.fetch(RIPE_IP)
    assert answer is not None
    assert answer.url == f"http://rdap.ripe.test:{_port(net)}/ip/{RIPE_IP}"
    assert answer.info.name == "BT-CORPORATE"
    assert [hit.status for hit in net.rdap_hits] == [302, 200]
    assert client.requests_made == 2


def test_enrich_records_a_refused_redirect_as_a_failure_and_goes_on(
        net: TestInternet, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'hostwatch.db'}"
    store = Store(db_url)
    store.upgrade()
    body = Serve(marker_body("rdap-guard", kind="jpeg"), content_type="image/jpeg")
    trapped = net.add_host("trapped.test", network=64503)
    fine = net.add_host("fine.test", network=64501)
    for host in (trapped, fine):
        host.default(body)
    add_cases(store, [trapped.url("/a.jpg"), fine.url("/b.jpg")])
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
    net.rdap_redirect(net.network(64503), "http://169.254.169.254/rdap")

    result = hostwatch(db_url, net, tmp_path, "enrich")
    assert result.returncode == 0, result.stderr
    assert "2 checks attributed" in result.stdout
    assert "1 failed (1 refused)" in result.stdout
    with store.session() as session:
        rows = {row.status: row for row in session.scalars(select(Network))}
    assert set(rows) == {"ok", "error"}
    assert rows["ok"].org == "Dutch Test Hosting B.V."
    assert "redirect 1 refused by the address guard: 169.254.169.254 is link-local" in (
        rows["error"].error or "")
    assert "169.254.169.254/rdap" not in (rows["error"].error or "")
    store.dispose()
