"""Migration 0009: stored cases reported with a single-page app's route keep it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import select, text

from kernel.urls import normalise_url
from store import Case, Store
from store.db import _alembic_config

NOW = datetime(2026, 2, 1, 10, 0, tzinfo=UTC)


def _at(store: Store, db_url: str, revision: str, direction: str = "upgrade") -> None:
    with store.engine.begin() as connection:
        cfg = _alembic_config(db_url)
        cfg.attributes["connection"] = connection
        getattr(command, direction)(cfg, revision)


def test_stored_route_cases_keep_their_route(db_url, caplog):
    store = Store(db_url)
    _at(store, db_url, "0008")
    # (URL as reported, normal form as 0008 left it)
    old = {
        "photo21": ("https://Spa.Example/app/#/photo/21", "https://spa.example/app/"),
        "photo22": ("https://spa.example/app/#/photo/22", "https://spa.example/app/"),
        "bang": ("https://spa.example/app#!/item/9", "https://spa.example/app"),
        "escaped": (" https://spa.example/#/foto/ü x ", "https://spa.example/"),
        "anchor": ("https://spa.example/app/#top", "https://spa.example/app/"),
        "bare": ("https://spa.example/app/", "https://spa.example/app/"),
        "refused": ("https://1.2.3.4.5/#/x", "https://1.2.3.4.5/"),
    }
    with store.engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO cases (source, external_id, url, url_normalised, host, category, "
            "reported_at, imported_at, state, reappearances, check_count) VALUES "
            "('hotline', :key, :url, :normal, 'spa.example', 'csam', :at, :at, 'unchecked', "
            "0, 0)"), [
            {"key": key, "url": url, "normal": normal, "at": NOW.replace(tzinfo=None)}
            for key, (url, normal) in old.items()])
    with store.engine.connect() as connection:
        ids: dict[str, int] = dict(connection.execute(text(
            "SELECT external_id, id FROM cases")).all())

    with caplog.at_level(logging.WARNING, logger="hostwatch.migrations"):
        store.upgrade()

    with store.session() as session:
        got = {c.external_id: (c.url, c.url_normalised) for c in session.scalars(select(Case))}
    routes = {"photo21": "#/photo/21", "photo22": "#/photo/22", "bang": "#!/item/9",
              "escaped": "#/foto/%C3%BC%20x"}
    assert got == {key: (url, normal + routes.get(key, "")) for key, (url, normal) in old.items()}
    # What an import of the same URLs would store now: one normal form.
    for key in routes:
        assert got[key][1] == normalise_url(old[key][0]).url
    # The two photos of one app are two URLs now, and the log names the cases.
    assert got["photo21"][1] != got["photo22"][1]
    rewritten = sorted(ids[key] for key in routes)
    assert ("4 case(s) reported with a single-page app's route (#/..., #!...) now keep it"
            in caplog.text)
    assert f"case {', '.join(map(str, rewritten))}" in caplog.text

    # Twice is once; down again drops the routes.
    with caplog.at_level(logging.WARNING, logger="hostwatch.migrations"):
        caplog.clear()
        _at(store, db_url, "0008", "downgrade")
        with store.engine.connect() as connection:
            assert connection.execute(text(
                "SELECT count(*) FROM cases WHERE url_normalised LIKE '%#%'")).scalar_one() == 0
        store.upgrade()
        store.upgrade()
    assert caplog.text.count("0009:") == 1
    with store.session() as session:
        again = {c.external_id: (c.url, c.url_normalised) for c in session.scalars(select(Case))}
    assert again == got
    store.dispose()
