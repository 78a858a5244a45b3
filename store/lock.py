"""One crawl at a time: a lock that the operating system or the database
releases by itself when its holder dies, so a crash never leaves it stuck.

SQLite stores: an exclusive ``flock`` on ``<database>.lock``.
PostgreSQL stores: a session-level advisory lock on a dedicated connection,
keyed by the store's schema: two stores in one database (schemas on the
search path) do not block each other.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

from sqlalchemy import text

from kernel.errors import StoreError
from store import Store

# "host" as a number: the first half of every hostwatch advisory lock key; the
# second is a hash of the store's schema (current_schema()).
ADVISORY_KEY = 0x686F7374
_LOCK = text("SELECT pg_try_advisory_lock(:k, hashtext(coalesce(current_schema(), '')))")
_UNLOCK = text("SELECT pg_advisory_unlock(:k, hashtext(coalesce(current_schema(), '')))")


class LockBusy(StoreError):
    """Another run holds the lock."""


class RunLock:
    def __init__(self, store: Store, data_dir: str = ".") -> None:
        self.store = store
        sqlite_file = store.sqlite_path
        if sqlite_file is not None:
            self.path: Path | None = sqlite_file.with_name(sqlite_file.name + ".lock")
        elif store.dialect == "postgresql":
            self.path = None
        else:  # in-memory SQLite or another database: a file in the data dir
            self.path = Path(data_dir).resolve() / "store.lock"
        self._fd: int | None = None
        self._connection: Any = None

    def acquire(self) -> None:
        """Take the lock or raise LockBusy at once (never waits)."""
        if self.path is None:
            connection = self.store.engine.connect()
            got = connection.execute(_LOCK, {"k": ADVISORY_KEY}).scalar()
            connection.commit()
            if not got:
                connection.close()
                raise LockBusy("another hostwatch run holds the PostgreSQL advisory lock")
            self._connection = connection
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockBusy(f"another hostwatch run holds {self.path}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    @property
    def fd(self) -> int | None:
        """The lock file's descriptor (SQLite stores, while held)."""
        return self._fd

    def release(self) -> None:
        if self._connection is not None:
            self._connection.execute(_UNLOCK, {"k": ADVISORY_KEY})
            self._connection.commit()
            self._connection.close()
            self._connection = None
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
