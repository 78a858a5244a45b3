"""The run lock on PostgreSQL: one per store (database and schema)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from store import Store
from store.lock import LockBusy, RunLock


@pytest.mark.postgres
def test_stores_in_two_schemas_of_one_database_do_not_block_each_other(pg_url, tmp_path):
    schema = pg_url.rsplit("search_path%3D", 1)[1]
    other_url = pg_url.replace("search_path%3D", "search_path%3Dother_")
    first, same, other = Store(pg_url), Store(pg_url), Store(other_url)
    with first.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "other_{schema}"'))
    try:
        with RunLock(first, str(tmp_path)):
            with pytest.raises(LockBusy, match="another hostwatch run"):
                RunLock(same, str(tmp_path)).acquire()
            with RunLock(other, str(tmp_path)):  # another store: not blocked
                pass
        with RunLock(same, str(tmp_path)):  # released with its holder
            pass
    finally:
        with first.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "other_{schema}" CASCADE'))
        for store in (first, same, other):
            store.dispose()
