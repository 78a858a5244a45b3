"""One progress line for a long job (a crawl, an enrichment), on stderr.

On a terminal the line is rewritten in place and cleared when the job ends,
so the outcome the command prints next stands alone; anywhere else (a cron
log, a pipe) it is a plain line at most every ``interval`` seconds, so a log
file grows by a line every few seconds, not by one per batch.
HOSTWATCH_PROGRESS=0 switches it off: the caller does not make one then.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

# Seconds between plain lines when stderr is not a terminal.
PLAIN_INTERVAL = 5.0
# Seconds between rewrites on a terminal: often enough to look alive.
TTY_INTERVAL = 0.5
_CLEAR_LINE = "\r\x1b[K"


class ProgressLine:
    """Shows the latest text of a job: ``update(text)`` as often as it likes,
    ``close()`` at the end (also as a context manager)."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None,
                 interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.tty = _is_tty(self.stream) if tty is None else tty
        self.interval = interval if interval is not None else (
            TTY_INTERVAL if self.tty else PLAIN_INTERVAL)
        self.clock = clock
        self.started = clock()
        self._last: float | None = None
        self._shown = False

    def elapsed(self) -> float:
        """Seconds since the line was made (never zero: a rate divides by it)."""
        return max(self.clock() - self.started, 1e-9)

    def update(self, text: str, *, force: bool = False) -> None:
        """Show ``text``, unless the last one is younger than the interval."""
        now = self.clock()
        if not force and self._last is not None and now - self._last < self.interval:
            return
        self._last = now
        if self.tty:
            self.stream.write(f"{_CLEAR_LINE}{text}")
        else:
            self.stream.write(f"{text}\n")
        self._shown = True
        self.stream.flush()

    def close(self) -> None:
        """End the line: on a terminal, wipe it, so that what follows starts
        at the left edge of an empty line."""
        if self.tty and self._shown:
            self.stream.write(_CLEAR_LINE)
            self.stream.flush()
        self._shown = False

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stream-like object
        return False
