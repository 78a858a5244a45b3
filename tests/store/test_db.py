from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, select

from store import Case, Store, StoreError


def test_upgrade_creates_every_table_and_is_idempotent(store):
    store.upgrade()  # a second upgrade is a no-op
    tables = set(inspect(store.engine).get_table_names())
    assert {"cases", "checks", "notices", "orders", "crawl_runs", "chain_head"} <= tables


def test_times_come_back_as_aware_utc(store):
    reported = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    with store.transaction() as session:
        session.add(Case(source="s", external_id="1", url="http://a.test/", url_normalised="http://a.test/",
                         host="a.test", category="csam", reported_at=reported,
                         imported_at=reported))
    with store.session() as session:
        case = session.scalars(select(Case)).one()
    assert case.reported_at == reported
    assert case.reported_at.tzinfo is not None


def test_naive_datetimes_are_refused(store):
    with pytest.raises(Exception, match="naive datetime"), store.transaction() as session:
        session.add(Case(source="s", external_id="1", url="u", url_normalised="u", host="h",
                         category="csam", reported_at=datetime(2026, 1, 1),
                         imported_at=datetime(2026, 1, 1)))
        session.flush()


def test_bad_url_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="not a database URL"):
        Store("no-such-thing")
    with pytest.raises(StoreError, match="does not exist"):
        Store(f"sqlite:///{tmp_path}/missing/dir/h.db")


def test_migrations_match_the_models(store):
    """A model change without a migration fails here (alembic would autogenerate a diff)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from store.models import Base

    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
