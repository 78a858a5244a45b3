"""The RDAP client: ``GET {base_url}/ip/{ip}`` -> the address holder, over guarded HTTP.

- `RdapClient`: the transport. Builds the request URL, sends it through the
  crawl's address guard (`outbound.http.GuardedGet`, redirects included),
  maps every transport failure, error status and unusable body to a typed
  `RdapError`, counts requests and failures, and hands the body to
  `enrichment.rdap_parse.parse_rdap`. No cache (the store caches answers per
  network, see `enrichment.attribute`), no bootstrap registry (one configured
  base URL: HOSTWATCH_RDAP_URL), no proxy from the environment, an
  ``offline`` switch.
- `RdapAnswer`: one fetched answer, as sent and as parsed.

Why a module of its own: this is the only part of attribution that talks to
the outside world, so everything about connections, timeouts, redirects and
the address guard is here and nowhere else; what an answer *means* is
`enrichment.rdap_parse` (pure, imported by this module), and the offline
prefix table is `enrichment.asn`.

An address no registry holds (HTTP 404) is not an error: `RdapClient.lookup`
returns None, as it does in offline mode (when no request is made at all).
"""

from __future__ import annotations

import ipaddress
import json
import ssl
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from enrichment import EnrichmentError
from enrichment.rdap_parse import NetworkInfo, RdapError, RdapErrorKind, parse_rdap
from outbound.dns import Resolver
from outbound.guard import Network as GuardNetwork
from outbound.guard import parse_networks
from outbound.http import FetchError, FetchErrorKind, GuardedGet, status_text

if TYPE_CHECKING:
    from kernel.config import Config

__all__ = ["RdapAnswer", "RdapClient"]


# -- RDAP over HTTP -------------------------------------------------------------------

@dataclass(frozen=True)
class RdapAnswer:
    """One fetched RDAP answer: where it came from, as sent, and parsed."""

    url: str  # after redirects
    raw: dict[str, Any]
    info: NetworkInfo


class RdapClient:
    """Asks an RDAP server who holds an address: ``GET {base_url}/ip/{ip}``.

    - 404 (no registry holds it) -> None; offline -> None, with no request.
    - Every connection, to ``base_url``'s host and to every redirect target,
      goes through `outbound.http.GuardedGet`: resolved by ``resolver``
      (hostwatch's, HOSTWATCH_NAMESERVERS), refused unless the crawl's address
      guard lets its address through (``allow``: HOSTWATCH_ALLOW_PRIVATE),
      and made to the checked address. A ``base_url`` written with an IP
      address is the operator's own choice and is trusted as written (a lab's
      or test's loopback RDAP server): that address and port, not the other
      ports of the address; a redirect to any other address or port, or a
      ``base_url`` with a name, passes the guard.
    - Any other failure raises `RdapError`: HTTP error status (kind HTTP),
      no answer within ``timeout`` seconds (TIMEOUT; the whole fetch, redirects
      and body read included, is bounded), connection failure (CONNECTION),
      an address the guard refuses (REFUSED), a body that is not JSON, larger
      than ``max_bytes`` or no ip network (INVALID), a redirect to anything but
      http(s), a loop or more than 5 redirects (REDIRECT).
    - Proxies from the environment are ignored: every request goes where
      ``base_url`` says. There is no cache; ``requests_made`` counts every
      HTTP request sent, redirect hops included, and ``failures`` every
      lookup that raised `RdapError`, by kind.
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0, offline: bool = False,
                 user_agent: str = "hostwatch/0.1", max_bytes: int = 4 * 1024 * 1024,
                 resolver: Resolver | None = None, allow: Sequence[GuardNetwork] = (),
                 tls: ssl.SSLContext | None = None) -> None:
        if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).hostname:
            raise EnrichmentError(f"RDAP base URL must be http(s)://host..., got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.offline = offline
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self.requests_made = 0
        self.failures: Counter[RdapErrorKind] = Counter()
        self._get = GuardedGet(resolver or Resolver(), allow, timeout=timeout,
                               max_bytes=max_bytes, max_redirects=5, tls=tls,
                               trusted=[base_url])

    @classmethod
    def from_config(cls, config: Config, resolver: Resolver | None = None) -> RdapClient:
        """HOSTWATCH_RDAP_URL, HOSTWATCH_RDAP_TIMEOUT, HOSTWATCH_OFFLINE,
        HOSTWATCH_USER_AGENT, HOSTWATCH_ALLOW_PRIVATE; names resolved by
        ``resolver`` or one on HOSTWATCH_NAMESERVERS."""
        resolver = resolver or Resolver(config.nameservers, timeout=config.dns_timeout)
        return cls(config.rdap_url, timeout=config.rdap_timeout, offline=config.offline,
                   user_agent=config.user_agent, resolver=resolver,
                   allow=parse_networks(config.allow_private))

    def lookup(self, ip: str) -> NetworkInfo | None:
        """The holder of ``ip``; None if no registry holds it, or when offline."""
        answer = self.fetch(ip)
        return None if answer is None else answer.info

    def fetch(self, ip: str) -> RdapAnswer | None:
        """Like `lookup`, with the raw answer and the URL it finally came from."""
        try:
            return self._fetch(ip)
        except RdapError as exc:
            self.failures[exc.kind] += 1
            raise

    def _fetch(self, ip: str) -> RdapAnswer | None:
        try:
            address = str(ipaddress.ip_address(ip.strip().strip("[]")))
        except ValueError:
            raise EnrichmentError(f"not an IP address: {ip!r}") from None
        if self.offline:
            return None
        url = f"{self.base_url}/ip/{address}"
        headers = {"Accept": "application/rdap+json, application/json;q=0.9",
                   "User-Agent": self.user_agent}
        try:
            reply = self._get.get(url, headers)
        except FetchError as exc:
            self.requests_made += exc.requests
            raise RdapError(_FETCH_KINDS[exc.kind], url, exc.detail) from None
        self.requests_made += reply.requests
        if reply.status == 404:
            return None
        # Errors name the URL asked, not where a redirect sent it: a Location
        # is the server's text, and these errors are logged and cached.
        hops = reply.requests - 1
        redirected = f", after {hops} redirect{'s' if hops > 1 else ''}" if hops else ""
        if not 200 <= reply.status < 300:
            retry = _retry_after(reply.headers.get("Retry-After"))
            detail = status_text(reply.status) + (f", retry after {retry}" if retry else "")
            raise RdapError(RdapErrorKind.HTTP, url, detail + redirected, status=reply.status)
        try:
            raw = json.loads(reply.body)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise RdapError(RdapErrorKind.INVALID, url,
                            f"not JSON ({type(exc).__name__}){redirected}") from None
        except RecursionError:  # a hostile answer nested past the parser's depth
            raise RdapError(RdapErrorKind.INVALID, url,
                            f"JSON nested too deeply{redirected}") from None
        try:
            info = parse_rdap(raw, source=url)
        except RdapError as exc:
            raise RdapError(exc.kind, url, exc.detail + redirected) from None
        return RdapAnswer(reply.url, raw, info)


_FETCH_KINDS = {
    FetchErrorKind.TIMEOUT: RdapErrorKind.TIMEOUT,
    FetchErrorKind.CONNECTION: RdapErrorKind.CONNECTION,
    FetchErrorKind.REFUSED: RdapErrorKind.REFUSED,
    FetchErrorKind.REDIRECT: RdapErrorKind.REDIRECT,
    FetchErrorKind.TOO_LARGE: RdapErrorKind.INVALID,
}


def _retry_after(value: str | None) -> str | None:
    """Retry-After as hostwatch words it: seconds, or "a date" (never the raw value)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit() and len(value) <= 9:
        return f"{int(value)} s"
    return "a date it gave"
