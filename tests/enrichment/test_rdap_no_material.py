"""RDAP answers are server bytes too: a hostile RDAP reply (no status line,
a garbage reason phrase or Retry-After, a data: redirect, a malformed
Location) becomes an RdapError in hostwatch's words, which is what the
enrichment logs and caches (#10 point 5)."""

from __future__ import annotations

import uuid

from enrichment.network import RdapClient, RdapError, RdapErrorKind
from tests.net import Raw, TestInternet
from tests.net.hostile import hostile_replies


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
