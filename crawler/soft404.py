"""Per-host "not found" fingerprints, learned by probing a random sibling URL.

Many hosts answer a missing file with 200 and a friendly page (a soft-404).
To tell that page from served material, the crawler asks each host once per
run for a URL that certainly does not exist and remembers how it answered.
Checks of that host that come back while the probe is out wait here.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from crawler.verdict import NotFoundFingerprint

T = TypeVar("T")


def origin(url: str) -> str:
    """``scheme://host[:port]`` of an absolute URL (cheap: called per response)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0].split('#', 1)[0]}"


def probe_url(url: str, token: Callable[[], str] = lambda: secrets.token_hex(8)) -> str:
    """A sibling of ``url`` that does not exist: same directory and extension."""
    parts = urlsplit(url)
    directory, _, name = parts.path.rpartition("/")
    extension = name[name.rfind("."):] if "." in name else ""
    return urlunsplit((parts.scheme, parts.netloc,
                       f"{directory}/hostwatch-probe-{token()}{extension}", "", ""))


@dataclass
class _Host(Generic[T]):
    done: bool = False
    fingerprint: NotFoundFingerprint | None = None
    waiting: list[T] = field(default_factory=list)


class NotFoundProbes(Generic[T]):
    def __init__(self) -> None:
        self._hosts: dict[str, _Host[T]] = {}

    def known(self, url: str) -> tuple[bool, NotFoundFingerprint | None]:
        """(whether the host's probe has finished, its fingerprint if any)."""
        host = self._hosts.get(origin(url))
        if host is None or not host.done:
            return False, None
        return True, host.fingerprint

    def wait(self, url: str, item: T) -> bool:
        """Park ``item`` until the host's probe ends; True if a probe must be sent."""
        key = origin(url)
        host = self._hosts.get(key)
        first = host is None
        if host is None:
            host = self._hosts[key] = _Host()
        host.waiting.append(item)
        return first

    def finish(self, url: str, fingerprint: NotFoundFingerprint | None) -> list[T]:
        """Record the probe's outcome; returns the items that waited for it."""
        host = self._hosts.setdefault(origin(url), _Host())
        host.done = True
        host.fingerprint = fingerprint
        waiting, host.waiting = host.waiting, []
        return waiting

    def forget_finished(self) -> None:
        """Forget every host whose probe has ended (a new run probes them
        again); probes still out, and what waits for them, are kept."""
        self._hosts = {key: host for key, host in self._hosts.items() if not host.done}

    def pending(self) -> int:
        return sum(len(h.waiting) for h in self._hosts.values())
