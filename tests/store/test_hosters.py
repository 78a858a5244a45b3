"""The one --hoster lookup (store.hosters) and migration 0006's merge of
duplicate hoster rows of older stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from store import Attribution, Hoster, Store
from store.hosters import HosterAmbiguous, HosterNotFound, find_hoster

T = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _at_0005(db_url: str) -> Store:
    from alembic import command

    from store.db import _alembic_config

    store = Store(db_url)
    with store.engine.begin() as connection:
        cfg = _alembic_config(db_url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0005")
    return store


def test_migration_merges_the_rows_one_company_got_from_two_sources(db_url):
    """An older store: checks attributed from AS names and from RDAP got two keys."""
    store = _at_0005(db_url)
    url = "http://polder.test/a.jpg"
    with store.engine.begin() as connection:  # plain SQL: the 0005 schema, not the model's
        case_id = connection.execute(text(
            "INSERT INTO cases (source, external_id, url, url_normalised, host, category, "
            "reported_at, imported_at, state, reappearances, check_count) VALUES "
            "('test', 'r0', :u, :u, 'polder.test', 'csam', :t, :t, 'online', 0, 2) "
            "RETURNING id"), {"u": url, "t": T.replace(tzinfo=None)}).scalar_one()
    rows = [("asn_names:polder servers b.v.", "Polder Servers B.V.", "asn_names", "NL"),
            ("rdap:polder servers b.v.", "Polder Servers B.V.", "rdap", "NL"),
            ("rdap:polder servers gmbh", "Polder Servers GmbH", "rdap", "DE"),
            ("dutch-test-hosting", "Dutch Test Hosting B.V.", "registry", "NL")]
    with store.transaction() as session:
        ids = []
        for key, name, source, country in rows:
            ids.append(session.execute(text(
                "INSERT INTO hosters (key, legal_name, country, asns, cdn, source, updated_at) "
                "VALUES (:k, :n, :c, '[]', false, :s, :t) RETURNING id"),
                {"k": key, "n": name, "c": country, "s": source,
                 "t": T.replace(tzinfo=None)}).scalar_one())
        for number, hoster_id in enumerate(ids[:2]):
            check_id = session.execute(text(
                "INSERT INTO checks (case_id, checked_at, method, verdict, url, tool_version, "
                "truncated, imported, prev_hash, record_hash) VALUES (:case, :t, 'http', "
                "'online', :u, 'test', false, false, '0', :h) RETURNING id"),
                {"case": case_id, "t": T.replace(tzinfo=None, hour=number), "u": url,
                 "h": f"{number}" * 64}).scalar_one()
            session.execute(text(
                "INSERT INTO attributions (check_id, case_id, attributed_at, ip, hoster_id, "
                "hoster, jurisdiction, dutch, sources) VALUES (:c, :case, :t, '127.1.2.10', "
                ":h, 'Polder Servers B.V.', 'NL', true, '{}')"),
                {"c": check_id, "case": case_id, "t": T.replace(tzinfo=None), "h": hoster_id})
    store.upgrade()
    with store.session() as session:
        hosters = {h.key: h for h in session.scalars(select(Hoster))}
        pointed = set(session.scalars(select(Attribution.hoster_id)))
        assert sorted(hosters) == ["dutch-test-hosting", "org:polder servers",
                                   "org:polder servers gmbh"]
        polder = hosters["org:polder servers"]
        assert (polder.legal_name, polder.source) == ("Polder Servers B.V.", "rdap")
        assert pointed == {polder.id}
        # Every key the store had still finds the same hoster.
        for old in ("asn_names:polder servers b.v.", "RDAP:polder servers b.v.",
                    "Polder Servers BV"):
            assert find_hoster(session, old).id == polder.id
        assert find_hoster(session, "rdap:polder servers gmbh").key == "org:polder servers gmbh"
        with pytest.raises(HosterAmbiguous):
            find_hoster(session, "polder servers")
        with pytest.raises(HosterNotFound, match="close matches: Polder Servers"):
            find_hoster(session, "polder server")
    store.dispose()
