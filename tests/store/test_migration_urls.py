"""Migration 0008: cases imported before #10 are re-read as a browser reads their URL."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import select, text

from store import Case, Store
from store.db import _alembic_config

NOW = datetime(2026, 2, 1, 10, 0, tzinfo=UTC)


def test_stored_cases_get_the_browser_s_host(db_url, caplog):
    store = Store(db_url)
    with store.engine.begin() as connection:
        cfg = _alembic_config(db_url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0005")
    # As the hand-written normaliser stored them before #10.
    old = {
        "decimal": ("http://3232235777:8080/a.jpg", "http://3232235777:8080/a.jpg", "3232235777"),
        "hex": ("http://0x7f.1/", "http://0x7f.1/", "0x7f.1"),
        "name": ("https://Img.Example.COM/a/../b", "https://img.example.com/a/../b",
                 "img.example.com"),
        "plain": ("https://a.example/x.jpg", "https://a.example/x.jpg", "a.example"),
        "bad": ("http://1.2.3.4.5/x", "http://1.2.3.4.5/x", "1.2.3.4.5"),
    }
    # Plain SQL against the 0005 schema (the model has columns of later migrations).
    with store.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO cases (source, external_id, url, url_normalised, host, category, "
            "reported_at, imported_at, state, reappearances, check_count) VALUES "
            "('hotline', :key, :url, :normal, :host, 'csam', :at, :at, 'unchecked', 0, 0)"), [
            {"key": key, "url": url, "normal": normal, "host": host,
             "at": NOW.replace(tzinfo=None)}
            for key, (url, normal, host) in old.items()])

    with caplog.at_level(logging.WARNING, logger="hostwatch.migrations"):
        store.upgrade()

    with store.session() as session:
        got = {c.external_id: (c.url, c.url_normalised, c.host)
               for c in session.scalars(select(Case))}
    assert got == {
        "decimal": ("http://3232235777:8080/a.jpg", "http://192.168.1.1:8080/a.jpg",
                    "192.168.1.1"),
        "hex": ("http://0x7f.1/", "http://127.0.0.1/", "127.0.0.1"),
        "name": ("https://Img.Example.COM/a/../b", "https://img.example.com/b",
                 "img.example.com"),
        "plain": old["plain"],
        "bad": old["bad"],  # refused now: kept as stored, and said so
    }
    assert "3 case(s) now read as a browser reads their URL" in caplog.text
    assert "kept as stored, case" in caplog.text
    assert "not a URL a browser would open" in caplog.text
