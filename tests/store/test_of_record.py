"""The attribution of record goes by check time, whatever the order in which
checks reached the store (store.of_record, #10 point 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text

from enrichment.asn import AsNames, AsnTable
from enrichment.attribute import Attributor, enrich
from kernel.config import Config
from kernel.state import Debounce
from store import Attribution, Case, Store
from store.checks import NewCheck, append_checks
from store.imports import import_checks
from tests.crawler.conftest import add_cases

RULES = Debounce()
URL = "http://img.example.test/a.jpg"
DUTCH_IP, GERMAN_IP = "127.1.1.10", "127.1.3.10"
NOW = datetime.now(UTC).replace(microsecond=0)
# An older check log: the material was on a German server two weeks ago.
OLD_LOG = ("case_id,checked_at,verdict,http_status,ip\n"
           f"r0,{(NOW - timedelta(days=14)).isoformat()},online,200,{GERMAN_IP}\n"
           f"r0,{(NOW - timedelta(days=13)).isoformat()},online,200,{GERMAN_IP}\n")


def _attributor(store: Store) -> Attributor:
    config = Config.from_env({"HOSTWATCH_OFFLINE": "1", "HOSTWATCH_NAMESERVERS": "127.0.0.1"})
    table = AsnTable.from_lines(["127.1.1.0/24\t64501", "127.1.3.0/24\t64503"])
    names = AsNames({64501: "DUTCHHOST-NL Dutch Test Hosting B.V., NL",
                     64503: "RHEINHOST-DE Rhein Test Hosting GmbH, DE"}, "test")
    return Attributor(config, store, table=table, names=names)


def _crawl(store: Store, case_id: int) -> None:
    """What the crawl writes: a check of now, from the Dutch server."""
    with store.transaction() as session:
        append_checks(session, [NewCheck(case_id=case_id, checked_at=NOW, method="http",
                                         verdict="online", url=URL, tool_version="test",
                                         http_status=200, peer_ip=DUTCH_IP)], RULES)


def _import_old_log(store: Store, folder: Path) -> None:
    log = folder / "old-checks.csv"
    log.write_text(OLD_LOG)
    result = import_checks(store, log, RULES, source="test")
    assert (result.added, result.rejected) == (2, [])


def _of_record(store: Store) -> tuple[str | None, str | None, bool]:
    with store.session() as session:
        row = session.execute(select(Attribution.hoster, Attribution.ip, Attribution.dutch)
                              .join(Case, Case.attribution_id == Attribution.id)).one()
    return row.hoster, row.ip, row.dutch


def test_an_older_log_imported_after_crawling_does_not_take_the_case_over(store, tmp_path):
    case_id = add_cases(store, [URL])[URL]
    attributor = _attributor(store)
    _crawl(store, case_id)
    enrich(store, attributor)
    assert _of_record(store) == ("Dutch Test Hosting B.V.", DUTCH_IP, True)
    _import_old_log(store, tmp_path)
    # Before enrichment and after it, the newest check in time stays of record.
    assert _of_record(store) == ("Dutch Test Hosting B.V.", DUTCH_IP, True)
    assert enrich(store, attributor).attributed == 2
    assert _of_record(store) == ("Dutch Test Hosting B.V.", DUTCH_IP, True)


def test_the_other_order_gives_the_same_hoster_of_record(store, tmp_path):
    case_id = add_cases(store, [URL])[URL]
    attributor = _attributor(store)
    _import_old_log(store, tmp_path)
    enrich(store, attributor)
    assert _of_record(store) == ("Rhein Test Hosting GmbH", GERMAN_IP, False)
    _crawl(store, case_id)
    enrich(store, attributor)
    assert _of_record(store) == ("Dutch Test Hosting B.V.", DUTCH_IP, True)


def test_migration_0006_derives_the_record_of_an_older_store_again(db_url, tmp_path):
    """A store that the highest-id rule left pointing at the older import, or
    at a newer check that reached no address. Plain SQL against the 0005
    schema: the model has columns of later migrations."""
    from alembic import command

    from store.db import _alembic_config

    store = Store(db_url)
    with store.engine.begin() as connection:
        cfg = _alembic_config(db_url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0005")
    naive = NOW.replace(tzinfo=None)
    with store.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO cases (source, external_id, url, url_normalised, host, category, "
            "reported_at, imported_at, state, reappearances, check_count) VALUES "
            "('test', 'r0', :url, :url, 'img.example.test', 'csam', :at, :at, 'online', 0, 3)"),
            {"url": URL, "at": naive - timedelta(days=20)})
        case_id = connection.execute(text("SELECT id FROM cases")).scalar_one()
        # In the order they reached the store: the crawl's check now, an older
        # log from the German server, then a check an hour later that the
        # guard refused (its address from the redirect's URL).
        for when, verdict, ip in ((naive, "online", DUTCH_IP),
                                  (naive - timedelta(days=14), "online", GERMAN_IP),
                                  (naive + timedelta(hours=1), "blocked_address", "10.0.0.1")):
            check_id = connection.execute(text(
                "INSERT INTO checks (case_id, checked_at, method, verdict, url, peer_ip, "
                "truncated, tool_version, imported, prev_hash, record_hash) VALUES "
                "(:case, :at, 'http', :verdict, :url, :ip, false, 'test', false, :h, :h) "
                "RETURNING id"),
                {"case": case_id, "at": when, "verdict": verdict, "url": URL,
                 "ip": ip if verdict != "blocked_address" else None,
                 "h": f"{verdict}-{when.isoformat()}"}).scalar_one()
            # What enrichment wrote under the old rule, and the highest check id.
            connection.execute(text(
                "INSERT INTO attributions (check_id, case_id, attributed_at, ip, hoster, "
                "jurisdiction, dutch, sources) VALUES (:c, :case, :t, :ip, :h, :j, :d, '{}')"),
                {"c": check_id, "case": case_id, "t": naive, "ip": ip,
                 "h": {DUTCH_IP: "Dutch", GERMAN_IP: "German"}.get(ip),
                 "j": {DUTCH_IP: "NL", GERMAN_IP: "EU"}.get(ip, "unknown"),
                 "d": ip == DUTCH_IP})
        connection.execute(text(
            "UPDATE cases SET attribution_id = (SELECT max(id) FROM attributions)"))
    assert _of_record(store) == (None, "10.0.0.1", False)
    store.upgrade()
    assert _of_record(store) == ("Dutch", DUTCH_IP, True)
    store.dispose()


def _check(store: Store, case_id: int, when: datetime, verdict: str, **fields: object) -> None:
    with store.transaction() as session:
        append_checks(session, [NewCheck(case_id=case_id, checked_at=when, method="http",
                                         verdict=verdict, url=URL, tool_version="test",
                                         **fields)], RULES)  # type: ignore[arg-type]


def test_a_newer_check_that_reached_no_address_keeps_the_hoster_of_record(store):
    """A hoster that redirects its URL to a private address gets a
    blocked_address check: the crawler connected to nothing, and the
    address it was sent to (here from the redirect's URL) says nothing of
    who hosts the material. It must not take the case away from the hoster
    of record and make it unattributed."""
    case_id = add_cases(store, [URL])[URL]
    attributor = _attributor(store)
    _crawl(store, case_id)
    _check(store, case_id, NOW + timedelta(hours=1), "blocked_address",
           final_url="http://10.0.0.1/a.jpg")
    enrich(store, attributor)
    assert _of_record(store) == ("Dutch Test Hosting B.V.", DUTCH_IP, True)


def test_an_imported_failure_with_an_address_does_not_take_the_case_over(store, tmp_path):
    """An older tool's log may name an address on a row whose verdict says no
    address was reached (no such name, no DNS answer, refused by a guard)."""
    case_id = add_cases(store, [URL])[URL]
    attributor = _attributor(store)
    _check(store, case_id, NOW - timedelta(hours=1), "online", http_status=200,
           peer_ip=DUTCH_IP)
    enrich(store, attributor)
    log = tmp_path / "later.csv"
    log.write_text("case_id,checked_at,verdict,http_status,ip\n"
                   f"r0,{(NOW - timedelta(minutes=50)).isoformat()},nxdomain,,{GERMAN_IP}\n"
                   f"r0,{(NOW - timedelta(minutes=40)).isoformat()},dns_error,,{GERMAN_IP}\n"
                   f"r0,{(NOW - timedelta(minutes=30)).isoformat()},blocked_address,,"
                   f"{GERMAN_IP}\n")
    assert import_checks(store, log, RULES, source="test").rejected == []
    enrich(store, attributor)
    assert _of_record(store) == ("Dutch Test Hosting B.V.", DUTCH_IP, True)
