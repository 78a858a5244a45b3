"""One page visit in the browser, without loading any media.

A fresh browser context per visit (no cookies, no cache, nothing kept), with
its own guarded proxy (crawler.browser.proxy), service workers and downloads
off, WebRTC removed, and a request filter that aborts every image, media and
font request and every request whose path names a media file, recording
their URLs. Popups are closed as they open. The page gets
HOSTWATCH_BROWSER_TIMEOUT seconds in all: to load, then until it is stable
(crawler.browser.settle: quiet network, nothing shown changing, no timer
about to fire) but at most HOSTWATCH_BROWSER_SETTLE seconds; a page taller
than its viewport is then scrolled down in bounded steps (lazy loading) and
settles again; then the page is read (media it shows, the host's "removed"
texts and elements; media seen while scrolling are kept) and the context is
closed. A page still loading when the settle time ran out is marked `busy`.
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

from crawler.browser.decide import PageVisit
from crawler.browser.pool import BrowserPool, BrowserSettings
from crawler.browser.proxy import REFUSED_HEADER, GuardedProxy
from crawler.browser.rules import Removed
from crawler.browser.settle import STEP_WAIT, Activity, init_script, scroll, until_stable
from crawler.guard import Network
from crawler.verdict import ErrorKind
from enrichment.dns import Resolver
from hostwatch.redact import digest, evidence_header
from hostwatch.urls import redirect_url

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
# What the page shows once its scripts ran: media URLs (page order) and the
# first "removed" text or element. Reads the DOM only; returns no content.
READ_PAGE = """
([texts, selectors, limit]) => {
  const out = [];
  const add = (value) => {
    if (!value || out.length >= limit) return;
    let url;
    try { url = new URL(value, document.baseURI).href; } catch (e) { return; }
    if (/^https?:/i.test(url) && !out.includes(url)) out.push(url);
  };
  for (const el of document.querySelectorAll(
      "img, video, audio, source, embed, object, input[type=image], image")) {
    for (const attr of ["src", "data", "poster", "href", "xlink:href"]) add(el.getAttribute(attr));
    const srcset = el.getAttribute("srcset");
    if (srcset) for (const part of srcset.split(",")) add(part.trim().split(/\\s+/)[0]);
    if (el.currentSrc) add(el.currentSrc);
  }
  for (const el of document.querySelectorAll(
      'meta[property="og:image"], meta[property="og:video"], meta[name="twitter:image"]'))
    add(el.getAttribute("content"));
  let seen = 0;
  for (const el of document.querySelectorAll("body *")) {
    if (++seen > 5000) break;
    const bg = getComputedStyle(el).backgroundImage;
    if (bg && bg !== "none")
      for (const m of bg.matchAll(/url\\(["']?([^"')]+)["']?\\)/g)) add(m[1]);
  }
  const text = (document.body ? document.body.innerText : "").toLowerCase().slice(0, 500000);
  let removed = null;
  for (const t of texts) if (text.includes(t)) { removed = "text " + JSON.stringify(t); break; }
  if (!removed) for (const s of selectors) {
    try { if (document.querySelector(s)) { removed = "element " + s; break; } } catch (e) {}
  }
  return {media: out, removed: removed};
}
"""


class _Visit:
    """The bookkeeping of one visit (filled by Playwright's event handlers)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.page: Page | None = None
        self.requested_media: list[str] = []
        self.navigations: list[str] = []
        self.popups = 0
        self.requests = 0
        self.blocked = 0
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
                allow: Sequence[Network], max_body: int) -> PageVisit:
    """Visit ``url`` in the browser and say what it shows (see the module docstring)."""
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
            return await asyncio.wait_for(_visit(context, url, removed, proxy, settings),
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
                 settings: BrowserSettings) -> PageVisit:
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    seen = _Visit(url)
    activity = Activity()
    timeout, quiet = settings.timeout, settings.quiet
    await context.add_init_script(NO_WEBRTC)
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
        for _ in range(NAVIGATIONS):
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
            # consent actions (rules) run here, then the page settles again
            reads = await scroll(page, activity, lambda: _read(page, removed), quiet=quiet,
                                 max_height=settings.scroll_height, moved=moved,
                                 until=min(time.monotonic() + settings.scroll_time, last_look))
            if reads and not moved():
                # Scrolled: the page settles again, for the settle time once
                # more, or one step's wait when it never became stable before.
                again = settings.settle if settled.stable else STEP_WAIT
                settled = await until_stable(page, activity, quiet=quiet, since=loaded,
                                             until=min(time.monotonic() + again, last_look),
                                             moved=moved)
            shown = await _read(page, removed)
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


def _union(reads: list[dict[str, Any]]) -> dict[str, Any]:
    """What the page showed over its reads (before, while and after scrolling): every
    media URL, in the order first seen (a virtualised list drops the ones scrolled
    past); the last read's "removed" notice, else one seen while scrolling."""
    last = reads[-1]
    media = list(dict.fromkeys(url for shown in reads for url in shown.get("media", [])))
    notice = last.get("removed") or next((s["removed"] for s in reads if s.get("removed")), None)
    return {**last, "media": media, "removed": notice}


async def _read(page: Page, removed: Removed) -> dict[str, Any] | None:
    """What the page shows; None when it navigated away while being read."""
    from playwright.async_api import Error as PlaywrightError

    try:
        shown: dict[str, Any] = await page.evaluate(
            READ_PAGE, [list(removed.texts), list(removed.selectors), 200])
    except PlaywrightError as exc:
        if "context was destroyed" not in str(exc):
            raise
        return None
    return shown


def _left(deadline: float) -> float:
    return max(1.0, (deadline - time.monotonic()) * 1000)


async def _result(seen: _Visit, proxy: GuardedProxy, response: Response | None,
                  shown: dict[str, Any], busy: str | None = None) -> PageVisit:
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
    final = seen.navigations[-1] if seen.navigations else seen.url
    if response is not None and final != response.url:
        # Script navigations after the document (location.href, meta refresh).
        steps = [response.url, *(u for u in seen.navigations if u not in (response.url, final))]
        chain.extend(u for u in dict.fromkeys(steps) if u not in chain)
    media = list(dict.fromkeys([*shown.get("media", []), *seen.requested_media,
                                *(e.target for e in proxy.events if e.media)]))
    main_event = next((e for e in proxy.events if e.target in (seen.url, final)), None)
    return PageVisit(
        url=seen.url, status=status, final_url=_stored(final) if chain else None,
        redirect_chain=tuple(dict.fromkeys(map(_stored, chain))), content_type=content_type,
        headers=headers,
        peer_ip=_peer_ip(proxy, final), media=tuple(media),
        removed=shown.get("removed"), busy=busy, main_is_media=main_is_media,
        popups=seen.popups,
        requests=seen.requests, blocked=seen.blocked + sum(e.media for e in proxy.events),
        error=main_event.error if main_event is not None and main_event.error else None,
        error_detail=main_event.refused if main_event is not None and main_event.error
        else None)


def _stored(url: str) -> str:
    """A URL the page went to as the check stores it: no fragment and no user
    info (a redirect's Location can carry both; hostwatch.urls.redirect_url)."""
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
                     requests=seen.requests, blocked=seen.blocked)


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


def _error_kind(message: str, proxy: GuardedProxy) -> tuple[ErrorKind, str]:
    """What a Playwright error means for the check (names only, no page content)."""
    found = re.search(r"net::(ERR_[A-Z_]+)", message)
    code = found.group(1) if found else ""
    if code in ("ERR_TUNNEL_CONNECTION_FAILED", "ERR_PROXY_CONNECTION_FAILED") or not code:
        refused = next((e for e in proxy.events if e.error is not None), None)
        if refused is not None and refused.error is not None:
            return refused.error, refused.refused or refused.error.value
    if code.startswith("ERR_CERT") or code.startswith("ERR_SSL"):
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
    api = re.match(r"[A-Za-z]+\.[A-Za-z]+(?=:)", message)
    return ErrorKind.OTHER, (f"browser error in {api.group(0) if api else 'the browser'} "
                             f"(message withheld: {digest(message)})")
