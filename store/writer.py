"""A separate process that appends checks to the store.

The crawl is bound by CPU (Scrapy's cost per request), and writing a check
(hash chain, insert, case state) costs about a fifth of what fetching it
costs. In a thread of the crawl's own process that work takes the GIL from
the crawl; in its own process it runs on another core. BENCHMARKS.md has the
figures.

The protocol is pickles over the child's stdin/stdout, between two processes
of the same program: the parent sends a `WriterSetup`, then batches of
`NewCheck`; the child answers each batch with ``("ok", n)`` or
``("error", message)``. Each batch is one transaction (`append_checks`).

The child ignores SIGINT and SIGTERM: on Ctrl-C or a stop request the crawl
shuts down gracefully and still hands over its last batch. It exits when its
stdin closes, so when the crawl dies (even by ``kill -9``) the child finishes
the batch in hand and exits; nothing half-written is left.
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
    """The parent's side: ``write(batch)`` blocks until the batch is committed
    (call it from a worker thread), and raises `StoreError` when it was not."""

    def __init__(self, setup: WriterSetup, *, pass_fds: tuple[int, ...] = ()) -> None:
        # pass_fds: the run lock's file, so the lock is held until the
        # writer has finished too, even when the crawl itself died.
        self._process = subprocess.Popen(
            [sys.executable, "-m", "store.writer"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, pass_fds=pass_fds)
        assert self._process.stdin is not None and self._process.stdout is not None
        self._to: IO[bytes] = self._process.stdin
        self._from: IO[bytes] = self._process.stdout
        self._send(setup)

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

    def write(self, batch: list[NewCheck]) -> int:
        self._send(batch)
        try:
            status, value = pickle.load(self._from)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            raise self._died() from exc
        if status != "ok":
            raise StoreError(str(value))
        return int(value)

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
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        setup: WriterSetup = pickle.load(requests)
    except EOFError:
        return 0
    try:
        store = Store(setup.db)
    except StoreError as exc:
        print(f"hostwatch store writer: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
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
            pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
            replies.flush()
    finally:
        store.dispose()


def main() -> int:
    # The protocol gets the real stdout; anything printed goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    sys.exit(main())
