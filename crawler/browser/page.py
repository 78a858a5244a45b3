"""One page visit in the browser, without loading any media.

A fresh browser context per visit (no cookies, no cache, nothing kept), with
its own guarded proxy (crawler.browser.proxy), service workers and downloads
off, WebRTC removed, and a request filter that aborts every image, media and
font request and every request whose path names a media file, recording
their URLs. Popups are closed as they open. The page gets
HOSTWATCH_BROWSER_TIMEOUT seconds to load, then until it is stable
(crawler.browser.settle: quiet network, nothing shown changing, no timer
about to fire) but at most HOSTWATCH_BROWSER_SETTLE seconds; a host whose
rule lists actions (a consent click, crawler.browser.actions) has them taken
then, and the page settles again; a page taller than its viewport is then
scrolled down in bounded steps (lazy loading) and settles again; then the
page is read in all its frames and shadow roots (crawler.browser.read: media
it shows, inline media hashed in the page, the host's "removed" texts and
elements; media seen while scrolling are kept) and the context is closed. A
page still loading when the settle time ran out is marked `busy`. Settling
and scrolling end a second before the timeout; a visit still running five
seconds after it (a slow read) is stopped: `timeout`.
The result is a `PageVisit`: URLs, statuses, counts, never a body.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crawler.browser.actions import run_actions
from crawler.browser.decide import ActionNote, PageVisit
from crawler.browser.pool import BrowserPool, BrowserSettings
from crawler.browser.proxy import REFUSED_HEADER, GuardedProxy
from crawler.browser.read import INIT_SCRIPT, Hashing, Shown, read_page
from crawler.browser.rules import Action, Removed
from crawler.browser.settle import (
    STEP_WAIT,
    Activity,
    init_script,
    scroll,
    site_of,
    until_stable,
)
from crawler.perceptual import PdqHasher, Reference
from crawler.verdict import ErrorKind
from kernel.redact import digest, evidence_header
from kernel.urls import document_url, redirect_url
from outbound.dns import Resolver
from outbound.guard import Network

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Page, Request, Response, Route

BLOCKED_TYPES = frozenset({"image", "media", "font"})
NAVIGATIONS = 4  # times a page may navigate by itself while it is being read
MEDIA_PATH = re.compile(r"\.(jpe?g|png|gif|webp|avif|bmp|tiff?|heic|svg|ico|mp4|m4v|webm|mkv|"
                        r"mov|avi|wmv|flv|mpe?g|3gp|m3u8|mpd|ts|mp3|m4a|ogg|ogv|oga|wav|flac|"
                        r"woff2?|ttf|otf|eot|zip|rar|7z)$", re.IGNORECASE)
KEPT_HEADERS = frozenset({"server", "via", "x-cache", "x-served-by", "cf-ray", "cf-cache-status",
                          "x-amz-cf-id", "x-amz-cf-pop", "x-fastly-request-id", "x-cdn",
                          "content-type", "content-length", "last-modified", "etag", "age"})
NO_WEBRTC = """
for (const name of ["RTCPeerConnection", "webkitRTCPeerConnection", "RTCDataChannel",
                    "RTCRtpSender", "RTCRtpReceiver", "RTCIceCandidate"]) {
  try { delete window[name]; } catch (e) {}
  try { Object.defineProperty(window, name, {value: undefined, configurable: false}); } catch (e) {}
}
"""
class _Visit:
    """The bookkeeping of one visit (filled by Playwright's event handlers)."""

    def __init__(self, url: str) -> None:
        self.url = url  # as the case gives it: with its route (#/photo/21), if any
        self.document = document_url(url)  # what the server is asked for
        self.page: Page | None = None
        self.requested_media: list[str] = []
        self.navigations: list[str] = []
        self.popups = 0
        self.requests = 0
        self.blocked = 0
        self.actions: tuple[ActionNote, ...] = ()
        self.tasks: set[asyncio.Task[Any]] = set()

    async def route(self, route: Route) -> None:
        request = route.request
        self.requests += 1
        media_path = bool(MEDIA_PATH.search(urlsplit(request.url).path))
        main = request.is_navigation_request() and self._in_main_frame(request)
        if request.resource_type in BLOCKED_TYPES or (media_path and not main):
            self.blocked += 1
            if request.url not in self.requested_media:
                self.requested_media.append(request.url)
            await route.abort("blockedbyclient")
        elif request.is_navigation_request() and not self._in_main_page(request):
            await route.abort("blockedbyclient")  # a popup's page, or a frame of one
        else:
            await route.continue_()

    def _in_main_page(self, request: Request) -> bool:
        with contextlib.suppress(Exception):
            return request.frame.page is self.page
        return False

    def _in_main_frame(self, request: Request) -> bool:
        with contextlib.suppress(Exception):
            return self.page is not None and request.frame is self.page.main_frame
        return False

    def popup(self, page: Page) -> None:
        if page is self.page:
            return
        self.popups += 1
        task = asyncio.ensure_future(page.close())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def responded(self, response: Response) -> None:
        """Record a document the main frame was sent (redirect hops included).
        Only these are where the page went: history.pushState, replaceState
        and a fragment change the address bar without a request, so such a
        URL is text the page wrote, not a URL hostwatch requested."""
        with contextlib.suppress(Exception):  # e.g. a service worker's response
            if (self.page is not None and response.request.is_navigation_request()
                    and response.frame is self.page.main_frame):
                self.navigations.append(response.url)


async def visit(pool: BrowserPool, url: str, removed: Removed, *, resolver: Resolver,
                allow: Sequence[Network], max_body: int,
                actions: Sequence[Action] = (), reference: Reference | None = None,
                hasher: PdqHasher | None = None) -> PageVisit:
    """Visit ``url`` in the browser and say what it shows (see the module
    docstring); inline media are compared with ``reference``, by PDQ too
    (``hasher``) when it needs one."""
    settings = pool.settings
    async with pool.browser() as browser, GuardedProxy(
            resolver, allow, timeout=settings.timeout, max_body=max_body) as proxy:
        options: dict[str, Any] = {
            "proxy": {"server": proxy.url, "bypass": "<-loopback>"},
            "service_workers": "block", "accept_downloads": False}
        if settings.user_agent:
            options["user_agent"] = settings.user_agent
        context = await browser.new_context(**options)
        try:
            return await asyncio.wait_for(
                _visit(context, url, removed, proxy, settings, actions,
                       hashing=Hashing(max_body, reference, hasher, urlsplit(url).hostname)),
                settings.timeout + 5)
        except TimeoutError:
            return PageVisit(url=url, error=ErrorKind.TIMEOUT,
                             error_detail=f"the page took over {settings.timeout:.0f} s")
        finally:
            try:
                await asyncio.wait_for(context.close(), 10)
            except Exception:
                await pool.kill()  # a context that will not close: a new browser


async def _visit(context: BrowserContext, url: str, removed: Removed, proxy: GuardedProxy,
                 settings: BrowserSettings, actions: Sequence[Action] = (), *,
                 hashing: Hashing) -> PageVisit:
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    seen = _Visit(url)
    # The page's own requests are those to the site of its current document.
    activity = Activity(site=lambda: site_of(seen.navigations[-1] if seen.navigations
                                             else seen.document))
    timeout, quiet = settings.timeout, settings.quiet
    await context.add_init_script(NO_WEBRTC)
    await context.add_init_script(INIT_SCRIPT)  # closed shadow roots, Blobs (read.py)
    await context.add_init_script(init_script(settings.settle))
    await context.route("**/*", seen.route)
    activity.watch(context)
    page = seen.page = await context.new_page()
    context.on("page", seen.popup)  # after the page itself: every later page is a popup
    page.on("response", seen.responded)
    deadline = time.monotonic() + timeout
    last_look = deadline - 1.0  # time left to read the page
    response: Response | None = None
    try:
        response = await page.goto(url, wait_until="commit", timeout=timeout * 1000)
        shown = None
        busy = None
        acting = bool(actions)
        for _ in range(NAVIGATIONS + acting):
            await page.wait_for_load_state("load", timeout=_left(deadline))
            loaded = time.monotonic()
            moves = len(seen.navigations)

            def moved(moves: int = moves) -> bool:
                return len(seen.navigations) != moves

            settled = await until_stable(page, activity, quiet=quiet, since=loaded,
                                         until=min(loaded + settings.settle, last_look),
                                         moved=moved)
            if settled.navigated:
                continue  # a script navigation (location.href, meta refresh): the new page
            # Consent actions (the host's rules, crawler.browser.actions), then
            # the page settles again.
            if acting:
                acting = False
                seen.actions = await run_actions(page, actions, deadline)
                if any(note.acted for note in seen.actions):
                    continue
            reads = await scroll(page, activity, lambda: _read(page, removed, hashing, 0),
                                 quiet=quiet,
                                 max_height=settings.scroll_height, moved=moved,
                                 until=min(time.monotonic() + settings.scroll_time, last_look))
            if reads and not moved():
                # Scrolled: the page settles again, for the settle time once
                # more, or one step's wait when it never became stable before.
                again = settings.settle if settled.stable else STEP_WAIT
                settled = await until_stable(page, activity, quiet=quiet, since=loaded,
                                             until=min(time.monotonic() + again, last_look),
                                             moved=moved)
            shown = await _read(page, removed, hashing, settings.media_limit)
            if shown is not None and not moved():
                shown = _union([*reads, shown])
                busy = settled.busy
                break
            shown = None  # it navigated while it was read: read the new page
        if shown is None:
            return _failed(seen, proxy, ErrorKind.REDIRECT_LOOP,
                           f"the page kept navigating ({NAVIGATIONS} times)")
    except PlaywrightTimeout:
        return _failed(seen, proxy, ErrorKind.TIMEOUT,
                       f"the page did not finish loading in {timeout:.0f} s")
    except PlaywrightError as exc:
        kind, detail = _error_kind(str(exc), proxy)
        return _failed(seen, proxy, kind, detail)
    return await _result(seen, proxy, response, shown, busy)


def _union(reads: list[Shown]) -> Shown:
    """What the page showed over its reads (while and after scrolling): the
    last read's media first, in its order (its inline media were hashed by
    their place in it: crawler.browser.check compares the first media_limit),
    then the http(s) URLs only earlier reads saw, in the order first seen (a
    virtualised list drops the ones scrolled past); the last read's "removed"
    notice, else one seen while scrolling. Inline media are the last read's
    (only it hashes them: the reads while scrolling list inline media without
    reading their bytes). `Shown.showing` counts the last read's media."""
    last = reads[-1]
    earlier = [url for shown in reads[:-1] for url in shown.media
               if url.startswith(("http:", "https:")) and url not in last.media]
    notice = last.removed or next((s.removed for s in reads if s.removed), None)
    return Shown(tuple(dict.fromkeys([*last.media, *earlier])), last.inline, notice,
                 showing=len(last.media))


async def _read(page: Page, removed: Removed, hashing: Hashing, media_limit: int
                ) -> Shown | None:
    """What the page shows (crawler.browser.read); None when it navigated away
    while being read."""
    return await read_page(page, removed, max_body=hashing.max_body, hashed=media_limit,
                           reference=hashing.reference, hasher=hashing.hasher)


def _left(deadline: float) -> float:
    return max(1.0, (deadline - time.monotonic()) * 1000)


async def _result(seen: _Visit, proxy: GuardedProxy, response: Response | None,
                  shown: Shown, busy: str | None = None) -> PageVisit:
    chain: list[str] = []
    status = content_type = None
    headers: dict[str, str] = {}
    main_is_media = False
    if response is not None:
        request: Request | None = response.request.redirected_from
        while request is not None:
            chain.insert(0, request.url)
            request = request.redirected_from
        status = response.status
        raw = await response.all_headers()
        content_type = raw.get("content-type")
        headers = {k: evidence_header(k, v) for k, v in raw.items() if k in KEPT_HEADERS}
        main_is_media = raw.get(REFUSED_HEADER.lower()) == "media"
        if main_is_media:
            status = next((e.status for e in proxy.events if e.target == response.url), status)
    # The last document the main frame was sent, not page.url (see responded()).
    # A route fragment is not sent: the document for "/app/#/photo/21" is
    # "/app/", and that is no redirect.
    final = seen.navigations[-1] if seen.navigations else seen.document
    if response is not None and final != response.url:
        # Script navigations after the document (location.href, meta refresh).
        steps = [response.url, *(u for u in seen.navigations if u not in (response.url, final))]
        chain.extend(u for u in dict.fromkeys(steps) if u not in chain)
    media = list(dict.fromkeys([*shown.media, *seen.requested_media,
                                *(e.target for e in proxy.events if e.media)]))
    main_event = next((e for e in proxy.events if e.target in (seen.document, final)), None)
    return PageVisit(
        url=seen.url, status=status, final_url=_stored(final) if chain else None,
        redirect_chain=tuple(dict.fromkeys(map(_stored, chain))), content_type=content_type,
        headers=headers,
        peer_ip=_peer_ip(proxy, final), media=tuple(media), shown=shown.shown_now,
        removed=shown.removed, inline=shown.inline, busy=busy, main_is_media=main_is_media,
        truncated=main_event is not None and main_event.truncated,
        popups=seen.popups, address=seen.page.url if seen.page is not None else None,
        requests=seen.requests, blocked=seen.blocked + sum(e.media for e in proxy.events),
        actions=seen.actions,
        error=main_event.error if main_event is not None and main_event.error else None,
        error_detail=main_event.refused if main_event is not None and main_event.error
        else None)


def _stored(url: str) -> str:
    """A URL the page went to as the check stores it: no fragment and no user
    info (a redirect's Location can carry both; kernel.urls.redirect_url)."""
    return redirect_url(url, url) or url


def _peer_ip(proxy: GuardedProxy, url: str) -> str | None:
    parts = urlsplit(url)
    tunnel = f"{parts.hostname}:{parts.port or 443}"
    for event in proxy.events:
        if event.target == url or (parts.scheme == "https" and event.target == tunnel):
            return event.ip
    return None


def _failed(seen: _Visit, proxy: GuardedProxy, kind: ErrorKind, detail: str) -> PageVisit:
    return PageVisit(url=seen.url, error=kind, error_detail=detail, popups=seen.popups,
                     requests=seen.requests, blocked=seen.blocked, actions=seen.actions)


_NET_ERRORS = {
    "ERR_NAME_NOT_RESOLVED": ErrorKind.NXDOMAIN,
    "ERR_CONNECTION_REFUSED": ErrorKind.REFUSED,
    "ERR_CONNECTION_RESET": ErrorKind.CONNECTION_LOST,
    "ERR_CONNECTION_CLOSED": ErrorKind.CONNECTION_LOST,
    "ERR_EMPTY_RESPONSE": ErrorKind.CONNECTION_LOST,
    "ERR_TIMED_OUT": ErrorKind.TIMEOUT,
    "ERR_CONNECTION_TIMED_OUT": ErrorKind.TIMEOUT,
    "ERR_TOO_MANY_REDIRECTS": ErrorKind.REDIRECT_LOOP,
    "ERR_INVALID_RESPONSE": ErrorKind.BAD_RESPONSE,
    "ERR_INVALID_HTTP_RESPONSE": ErrorKind.BAD_RESPONSE,
    "ERR_UNSAFE_PORT": ErrorKind.BLOCKED,
}


# Chromium's TLS errors (net/base/net_error_list.h) that a check can meet.
_TLS_ERRORS = frozenset({
    "ERR_CERT_AUTHORITY_INVALID", "ERR_CERT_COMMON_NAME_INVALID", "ERR_CERT_DATE_INVALID",
    "ERR_CERT_INVALID", "ERR_CERT_REVOKED", "ERR_CERT_WEAK_KEY", "ERR_CERT_CONTAINS_ERRORS",
    "ERR_CERT_WEAK_SIGNATURE_ALGORITHM", "ERR_CERT_NAME_CONSTRAINT_VIOLATION",
    "ERR_CERT_VALIDITY_TOO_LONG", "ERR_CERT_NO_REVOCATION_MECHANISM",
    "ERR_CERT_UNABLE_TO_CHECK_REVOCATION", "ERR_CERT_SYMANTEC_LEGACY",
    "ERR_CERT_KNOWN_INTERCEPTION_BLOCKED", "ERR_CERT_END", "ERR_SSL_PROTOCOL_ERROR",
    "ERR_SSL_VERSION_OR_CIPHER_MISMATCH", "ERR_SSL_UNRECOGNIZED_NAME_ALERT",
    "ERR_SSL_CLIENT_AUTH_CERT_NEEDED", "ERR_SSL_BAD_RECORD_MAC_ALERT",
    "ERR_SSL_DECRYPT_ERROR_ALERT", "ERR_SSL_SERVER_CERT_BAD_FORMAT",
    "ERR_SSL_PINNED_KEY_NOT_IN_CERT_CHAIN", "ERR_SSL_OBSOLETE_CIPHER",
    "ERR_SSL_RENEGOTIATION_REQUESTED", "ERR_SSL_KEY_USAGE_INCOMPATIBLE",
    "ERR_SSL_SERVER_CERT_CHANGED", "ERR_SSL_CLIENT_AUTH_SIGNATURE_FAILED",
    "ERR_BAD_SSL_CLIENT_AUTH_CERT", "ERR_ECH_NOT_NEGOTIATED",
})
# Other Chromium net errors kept by name (detail only; their kind is OTHER).
_KNOWN_NET_ERRORS = _TLS_ERRORS | frozenset({
    "ERR_ABORTED", "ERR_BLOCKED_BY_CLIENT", "ERR_BLOCKED_BY_RESPONSE", "ERR_FAILED",
    "ERR_ADDRESS_UNREACHABLE", "ERR_ADDRESS_INVALID", "ERR_NETWORK_CHANGED",
    "ERR_INTERNET_DISCONNECTED", "ERR_HTTP2_PROTOCOL_ERROR", "ERR_CONTENT_LENGTH_MISMATCH",
    "ERR_INCOMPLETE_CHUNKED_ENCODING", "ERR_RESPONSE_HEADERS_TOO_BIG", "ERR_INVALID_REDIRECT",
    "ERR_UNSAFE_REDIRECT", "ERR_INVALID_URL", "ERR_DISALLOWED_URL_SCHEME",
    "ERR_UNKNOWN_URL_SCHEME", "ERR_NAME_RESOLUTION_FAILED", "ERR_TUNNEL_CONNECTION_FAILED",
    "ERR_PROXY_CONNECTION_FAILED", "ERR_HTTP_RESPONSE_CODE_FAILURE", "ERR_CONNECTION_ABORTED",
    "ERR_CONNECTION_FAILED", "ERR_SOCKET_NOT_CONNECTED", "ERR_CONTENT_DECODING_FAILED",
    "ERR_RESPONSE_HEADERS_MULTIPLE_CONTENT_LENGTH", "ERR_INSUFFICIENT_RESOURCES",
    "ERR_OUT_OF_MEMORY", "ERR_TIMED_OUT", "ERR_METHOD_NOT_SUPPORTED", "ERR_CACHE_MISS",
})


def _error_kind(message: str, proxy: GuardedProxy) -> tuple[ErrorKind, str]:
    """What a Playwright error means for the check (names only, no page content)."""
    found = re.search(r"net::(ERR_[A-Z0-9_]+)", message)
    api = re.match(r"[A-Za-z]+\.[A-Za-z_]+(?=:)", message)
    # A net error is the browser's own only when it is one Chromium names
    # (an allow-list) and not in an error a page's script threw into our
    # evaluate() (such a "code" is text the page chose).
    thrown = api is not None and "evaluate" in api.group(0).lower()
    code = found.group(1) if found and not thrown and (
        found.group(1) in _NET_ERRORS or found.group(1) in _KNOWN_NET_ERRORS) else ""
    if code in ("ERR_TUNNEL_CONNECTION_FAILED", "ERR_PROXY_CONNECTION_FAILED") or not code:
        refused = next((e for e in proxy.events if e.error is not None), None)
        if refused is not None and refused.error is not None:
            return refused.error, refused.refused or refused.error.value
    if code in _TLS_ERRORS:
        return ErrorKind.TLS, code
    if code in _NET_ERRORS:
        return _NET_ERRORS[code], code
    if "crash" in message.lower() or "closed" in message.lower():
        return ErrorKind.OTHER, "the browser page crashed or was closed"
    if "Download is starting" in message:
        return ErrorKind.UNSUPPORTED, "the URL starts a download"
    if code:
        return ErrorKind.OTHER, code
    # The rest of a Playwright message can quote the page (an error its
    # script threw, text it was asked about): keep the API's name only.
    return ErrorKind.OTHER, (f"browser error in {api.group(0) if api else 'the browser'} "
                             f"(message withheld: {digest(message)})")
