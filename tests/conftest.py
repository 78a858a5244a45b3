"""Shared fixtures: a store on SQLite (always) and on the local PostgreSQL.

PostgreSQL tests skip when the server is unreachable, unless
HOSTWATCH_REQUIRE_SERVICES=1 (as in CI), where they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from store import Store

PG_URL = os.environ.get(
    "HOSTWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("HOSTWATCH_REQUIRE_SERVICES") == "1"


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure means "not reachable here"
        return str(exc).splitlines()[0]
    return None


def need_postgres() -> None:
    problem = _pg_reachable()
    if problem is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail("PostgreSQL required (HOSTWATCH_REQUIRE_SERVICES=1) "
                    f"but unreachable: {problem}")
    pytest.skip(f"PostgreSQL unreachable: {problem}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, private schema."""
    need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'hostwatch.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hostwatch.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url) -> Iterator[Store]:
    s = Store(db_url)
    s.upgrade()
    yield s
    s.dispose()
