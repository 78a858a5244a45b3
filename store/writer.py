"""A separate process that appends checks to the store.

The crawl is bound by CPU (Scrapy's cost per request), and writing a check
(hash chain, insert, case state) costs about a fifth of what fetching it
costs. In a thread of the crawl's own process that work takes the GIL from
the crawl; in its own process it runs on another core. BENCHMARKS.md has the
figures.

The protocol is pickles over the child's stdin/stdout, between two processes
of the same program: the parent sends a `WriterSetup`; the child answers
``("ready", None)`` once it has imported what it needs and connected to the
store (so its start-up is done before the run's first check, not on the
cores the crawl uses meanwhile). Then the parent sends batches of
`NewCheck`; the child answers each batch with ``("ok", n)`` or
``("error", message)``. Each batch is one transaction (`append_checks`).

Once ready, the child ignores SIGINT and SIGTERM: on Ctrl-C or a stop
request the crawl shuts down gracefully and still hands over its last
batch. It exits when its stdin closes, so when the crawl dies (even by
``kill -9``) the child finishes the batch in hand and exits; nothing
half-written is left.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import configure_mappers

from kernel.errors import StoreError
from kernel.state import Debounce
from store.checks import NewCheck, append_checks
from store.db import Store


@dataclass(frozen=True)
class WriterSetup:
    db: str
    rules: Debounce
    once_per_run: bool = False  # a shared run: each case stored once (store.checks)


class WriterProcess:
    """The parent's side: starting it waits until the writer is ready, and
    ``write(batch)`` blocks until the batch is committed (call both from a
    worker thread); each raises `StoreError` when the writer failed."""

    def __init__(self, setup: WriterSetup, *, pass_fds: tuple[int, ...] = ()) -> None:
        # pass_fds: the run lock's file, so the lock is held until the
        # writer has finished too, even when the crawl itself died.
        self._process = subprocess.Popen(
            [sys.executable, "-m", "store.writer"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, pass_fds=pass_fds)
        assert self._process.stdin is not None and self._process.stdout is not None
        self._to: IO[bytes] = self._process.stdin
        self._from: IO[bytes] = self._process.stdout
        try:
            self._send(setup)
            status, _ = self._receive()
        except BaseException:  # its error, or anything unexpected: no writer left behind
            self.close(timeout=5)
            raise
        if status != "ready":
            self.close(timeout=5)
            raise StoreError(f"the store writer process answered {status!r}, not 'ready'")

    def _send(self, message: Any) -> None:
        try:
            pickle.dump(message, self._to, protocol=pickle.HIGHEST_PROTOCOL)
            self._to.flush()
        except (BrokenPipeError, OSError) as exc:
            raise self._died() from exc

    def _died(self) -> StoreError:
        try:
            status = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            status = None
        return StoreError(f"the store writer process stopped (exit status {status}); "
                          "its error, if any, is in the log above")

    def _receive(self) -> tuple[str, Any]:
        """The writer's next answer; its error as a `StoreError`."""
        try:
            status, value = pickle.load(self._from)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            raise self._died() from exc
        if status == "error":
            raise StoreError(str(value))
        return str(status), value

    def write(self, batch: list[NewCheck]) -> int:
        self._send(batch)
        _, written = self._receive()
        return int(written)

    def close(self, timeout: float = 120.0) -> None:
        """Let the writer finish and exit."""
        with contextlib.suppress(OSError):
            self._to.close()
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._from.close()


def serve(requests: IO[bytes], replies: IO[bytes]) -> int:
    """The child's side (``python -m store.writer``)."""
    try:
        setup: WriterSetup = pickle.load(requests)
    except EOFError:
        return 0
    try:
        store = Store(setup.db)
        configure_mappers()  # what the first batch would otherwise do
        with store.transaction() as session:  # connects
            session.connection()
    except (StoreError, SQLAlchemyError) as exc:
        _reply(replies, ("error", f"the store writer cannot open the store: {exc}"))
        return 1
    # Only now: Ctrl-C while the store is still being opened (a database
    # that does not answer) ends the writer, and with it the crawl's wait.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        _reply(replies, ("ready", None))
        while True:
            try:
                batch = pickle.load(requests)
            except EOFError:
                return 0
            try:
                with store.transaction() as session:
                    written = append_checks(session, batch, setup.rules,
                                            once_per_run=setup.once_per_run)
                reply: tuple[str, Any] = ("ok", written)
            except Exception as exc:  # told to the crawl, which stops
                reply = ("error", f"{type(exc).__name__}: {exc}")
            _reply(replies, reply)
    finally:
        store.dispose()


def _reply(replies: IO[bytes], reply: tuple[str, Any]) -> None:
    pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
    replies.flush()


def main() -> int:
    # The protocol gets the real stdout; anything printed goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    status = main()
    # Every batch was committed before its answer, and the store is closed:
    # nothing is left to do but the interpreter's own clean-up, which takes
    # longer than the last batch (about 0.1 s), and the crawl waits for it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
