"""store.runs: the due cases carry the key of their hoster of record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kernel.model import Verdict
from store.runs import DueRule, hoster_key, iter_due
from tests.builders import add_case, add_hoster


def test_due_cases_carry_their_hoster_of_record(store):
    now = datetime.now(UTC)
    then = now - timedelta(days=2)
    history = [(then, Verdict.ONLINE)]
    with store.transaction() as session:
        hoster = add_hoster(session, "acme", "Acme Hosting B.V.", "NL", updated_at=then)
        registered = add_case(session, "reg", then, history, hoster=hoster,
                              attribution={"asn": 64500, "jurisdiction": "NL"})
        network = add_case(session, "net", then, history,
                           attribution={"asn": 64501, "jurisdiction": "unknown"})
        fronted = add_case(session, "cdn", then, history,
                           attribution={"asn": 64505, "cdn": "TestCDN",
                                        "jurisdiction": "unknown"})
        never = add_case(session, "new", then, [])
        ids = {registered.id: f"hoster {hoster.id}", network.id: "AS64501",
               fronted.id: None, never.id: None}
    due = [case for batch in iter_due(store, now, DueRule(recheck_hours=1), batch=2)
           for case in batch]
    assert {case.id: case.hoster for case in due} == ids


def test_hoster_key_prefers_the_registry_then_the_network_and_skips_cdns():
    assert hoster_key(7, 64500, None) == "hoster 7"
    assert hoster_key(None, 64500, None) == "AS64500"
    assert hoster_key(7, 13335, "Cloudflare") is None
    assert hoster_key(None, None, None) is None
