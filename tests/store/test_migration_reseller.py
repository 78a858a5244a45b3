"""Migration 0012: the RDAP reseller (networks.reseller, reseller_handle;
attributions.rdap_reseller), up and down on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import inspect, text

from store import Store
from tests.store.test_migration_routes import _at

FETCHED = datetime(2026, 2, 1, 10, 0)


def _columns(store: Store, table: str) -> set[str]:
    return {column["name"] for column in inspect(store.engine).get_columns(table)}


def test_the_reseller_columns_come_and_go_and_cached_networks_stay(db_url):
    store = Store(db_url)
    _at(store, db_url, "0011")
    assert "reseller" not in _columns(store, "networks")
    with store.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO networks (prefix, fetched_at, status, org) "
            "VALUES ('127.1.7.0-127.1.7.255', :at, 'ok', 'Offshore Test Reseller Ltd.')"),
            {"at": FETCHED})

    store.upgrade()
    assert {"reseller", "reseller_handle"} <= _columns(store, "networks")
    assert "rdap_reseller" in _columns(store, "attributions")
    with store.engine.begin() as connection:
        # A network cached before 0012 says nothing of a reseller.
        assert connection.execute(text("SELECT org, reseller FROM networks")).one() == (
            "Offshore Test Reseller Ltd.", None)
        connection.execute(text("UPDATE networks SET reseller = 'Island Test Brokers Ltd.', "
                                "reseller_handle = 'RS-OFFSHORE-RESELLER-TEST'"))

    _at(store, db_url, "0011", "downgrade")
    assert not {"reseller", "reseller_handle"} & _columns(store, "networks")
    assert "rdap_reseller" not in _columns(store, "attributions")
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT prefix, org FROM networks")).one() == (
            "127.1.7.0-127.1.7.255", "Offshore Test Reseller Ltd.")
    store.upgrade()  # and up again
    assert "rdap_reseller" in _columns(store, "attributions")
    store.dispose()
