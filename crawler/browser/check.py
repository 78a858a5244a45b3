"""A browser check: the page visit, then its media hashed over the HTTP path.

The browser shows which media the page references (crawler.browser.page)
but never loads it; each media URL is then fetched here with the crawl's own
guarded HTTP client (the aiohttp session of crawler.handler), streamed
through SHA-256 in memory and dropped, up to HOSTWATCH_MAX_BODY, and
compared with the case's reference hash (crawler.browser.decide). The media
request carries the page as its Referer, as the browser's would: hosts that
refuse hot-linked media would otherwise answer with a stand-in. Inline media
(``data:``, ``blob:``) were hashed inside the page (crawler.browser.read) and
take their place in page order among the media compared.

PDQ (crawler.perceptual): when the case's reference may need a decode (it
has a PDQ, or is to learn one), a media body is also kept in memory (a
bytearray, up to HOSTWATCH_MAX_BODY, never written); once hashed, a body
whose SHA-256 calls for it (`Reference.needs_pdq`) that looks like an image
and was not cut short is decoded by the crawl's `PdqHasher` (a worker
process, off the event loop), and the bytes are dropped. The media are
fetched in page order until the first that matches the reference, by SHA-256
or by PDQ: going on to look for an exact copy after a re-encoded one would
cost one more fetch (and decode) per media file to change only which served
verdict is recorded (``online`` rather than ``reencoded``), never whether
the material is served.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from crawler.browser.decide import MediaHash, PageVisit, compare, route_away
from crawler.browser.page import MEDIA_PATH, visit
from crawler.browser.pool import BrowserPool, BrowserSettings
from crawler.browser.read import Hashing
from crawler.browser.rules import Action, Removed
from crawler.perceptual import SNIFF_BYTES, Pdq, PdqHasher, Reference, undecodable
from crawler.verdict import ErrorKind, Observation, classify
from kernel.model import Verdict
from kernel.urls import document_url, redirect_url
from outbound.dns import Resolver
from outbound.guard import Network, forbidden_reason


@dataclass(frozen=True)
class BrowserResult:
    visit: PageVisit
    hashes: tuple[MediaHash, ...]


class BrowserChecker:
    """Browser checks for one crawl: one pool, the crawl's HTTP session."""

    def __init__(self, settings: BrowserSettings, session: aiohttp.ClientSession,
                 resolver: Resolver, allow: Sequence[Network], *, user_agent: str,
                 max_body: int, max_redirects: int, timeout: float,
                 hasher: PdqHasher | None = None) -> None:
        self.pool = BrowserPool(settings)
        self.hasher = hasher  # PDQ of media (None: SHA-256 only)
        self.session = session
        self.resolver = resolver
        self.allow = tuple(allow)
        self.user_agent = user_agent
        self.max_body = max_body
        self.max_redirects = max_redirects
        self.timeout = timeout

    async def check(self, url: str, *, reference: Reference | None,
                    removed: Removed, actions: Sequence[Action] = ()) -> BrowserResult:
        reference = reference or Reference()
        if MEDIA_PATH.search(urlsplit(url).path):
            # The URL names a media file: the browser would only be refused it.
            seen = PageVisit(url=url, main_is_media=True)
        else:
            await self.pool.start()  # once; BrowserUnavailable when Chromium cannot run
            seen = await visit(self.pool, url, removed, resolver=self.resolver,
                               allow=self.allow, max_body=self.max_body, actions=actions,
                               reference=reference, hasher=self.hasher)
        hashes: list[MediaHash] = []
        inline = {media.url: media for media in seen.inline}  # hashed in the page already
        for media in _to_hash(seen, self.pool.settings.media_limit):
            if media in inline:
                result = inline[media]
            elif urlsplit(media).scheme in ("http", "https"):
                # A browser's Referer never carries the fragment (the app's route).
                result = await hash_media(self.session, media, referer=document_url(url),
                                          allow=self.allow, user_agent=self.user_agent,
                                          max_body=self.max_body,
                                          max_redirects=self.max_redirects, timeout=self.timeout,
                                          reference=reference, hasher=self.hasher)
            else:  # inline media past what the page read could hash: never fetched
                continue
            hashes.append(result)
            if result.usable and (not reference.known or compare(result, reference).matched):
                break  # the match (of either kind), or (no reference) proof that media is shown
        return BrowserResult(seen, tuple(hashes))

    async def close(self) -> None:
        await self.pool.close()


def _to_hash(seen: PageVisit, limit: int) -> list[str]:
    """The media worth fetching: none when the page's status or route already decides."""
    if seen.error is not None:
        return []
    if seen.main_is_media:
        return [seen.url]
    page = classify(Observation(url=seen.url, status=seen.status, final_url=seen.final_url,
                                redirect_chain=seen.redirect_chain,
                                content_type=seen.content_type))
    if page.verdict is not Verdict.ONLINE or route_away(seen):
        return []
    # Hashed beside a "removed" notice too, but only what the page shows when
    # read: the reported media still shown beats a notice
    # (crawler.browser.decide). Every inline media the page read hashed is
    # compared, wherever it stands in the list: its hash is already made.
    media = seen.media if not seen.removed or seen.shown is None else seen.media[:seen.shown]
    first = list(media[:limit])
    return [*first, *(m.url for m in seen.inline if m.url not in first)]


async def hash_media(session: aiohttp.ClientSession, url: str, *, referer: str,
                     allow: Sequence[Network], user_agent: str, max_body: int,
                     max_redirects: int, timeout: float, reference: Reference | None = None,
                     hasher: PdqHasher | None = None) -> MediaHash:
    """GET ``url`` and hash its body in memory (redirects followed, each
    guarded); its PDQ too when ``reference`` needs one (see the module
    docstring)."""
    headers = {"User-Agent": user_agent, "Referer": referer}
    limit = aiohttp.ClientTimeout(total=timeout)
    current = url
    try:
        for _ in range(max_redirects + 1):
            refused = _literal_refused(current, allow)
            if refused:
                return MediaHash(url, error=ErrorKind.BLOCKED)
            async with session.get(current, headers=headers, allow_redirects=False,
                                   timeout=limit) as response:
                location = response.headers.get("Location")
                if response.status in (301, 302, 303, 307, 308) and location:
                    # Joined and read as the browser does it: "http://0x7f.1/" is
                    # 127.0.0.1, an address for _literal_refused, not a name for
                    # DNS; a backslash is a slash (a Location "\\other\x"
                    # names the host "other"); no fragment, no credentials.
                    target = redirect_url(location, current)
                    if target is None or urlsplit(target).scheme not in ("http", "https"):
                        return MediaHash(url, status=response.status,
                                         error=ErrorKind.UNSUPPORTED)
                    current = target
                    continue
                content_type = response.headers.get("Content-Type")
                if not 200 <= response.status < 300:
                    return MediaHash(url, status=response.status, content_type=content_type)
                digest = hashlib.sha256()
                # Only in memory, and only when it may be decoded.
                hashing = Hashing(max_body, reference, hasher, urlsplit(current).hostname)
                body = bytearray() if hashing.may_decode else None
                received = 0
                truncated = False
                sniffed: Pdq | None = None  # no decode needed to say what it is
                async for chunk in response.content.iter_any():
                    room = max_body - received
                    if len(chunk) > room:
                        chunk = chunk[:room]
                        truncated = True
                    digest.update(chunk)
                    received += len(chunk)
                    if body is not None:
                        body += chunk
                        if len(body) - len(chunk) < SNIFF_BYTES <= len(body):  # once
                            sniffed = undecodable(bytes(body[:SNIFF_BYTES]))
                            if sniffed is not None:
                                body = None  # a video, a page...: no need to keep it
                    if truncated:
                        break
                sha256 = digest.hexdigest()
            pdq = None
            if sniffed is not None and hashing.reference is not None \
                    and hashing.reference.needs_pdq(sha256):
                pdq = sniffed
            elif body is not None:
                try:
                    pdq = await hashing.pdq(bytes(body), sha256, truncated)
                finally:
                    del body
            return MediaHash(url, response.status, sha256, received, content_type, truncated,
                             pdq=pdq)
        return MediaHash(url, error=ErrorKind.REDIRECT_LOOP)
    except TimeoutError:
        return MediaHash(url, error=ErrorKind.TIMEOUT)
    except aiohttp.ClientConnectorError as exc:
        kind = ErrorKind.NXDOMAIN if "nxdomain" in str(exc) else ErrorKind.REFUSED
        return MediaHash(url, error=kind)
    except (aiohttp.ClientError, ValueError):
        return MediaHash(url, error=ErrorKind.BAD_RESPONSE)


def _literal_refused(url: str, allow: Sequence[Network]) -> str | None:
    """aiohttp asks no resolver for an IP literal: such targets are guarded here."""
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return forbidden_reason(host, allow)
