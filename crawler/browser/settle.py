"""When a page in the browser has settled, and scrolling it as a person would.

A page is read once it is *stable*: for HOSTWATCH_BROWSER_QUIET seconds
nothing happened, that is

- no request of the page was in flight, and none started or ended (counted
  from the browser context's request events; a media request the filter
  aborted has ended). Only the page's own requests count (`Activity`): those
  to its document's *site* (`site_of`), and the main frame's navigations.
  EventSource, WebSocket, ping and beacon requests never count (they are
  meant to stay open or go unanswered). A request to another site (an
  analytics call, a chat widget's long poll, a third-party frame) counts
  only during its first `FOREIGN_WAIT` seconds in flight, and never makes
  the page busy;
- what it shows did not change: a cheap snapshot of each frame (main
  document and child frames, cross-origin ones too; the first `MAX_FRAMES`,
  main frame first), made of the media URLs it references and the length and
  a hash of its visible text, taken again only after a DOM mutation. A
  child frame that does not answer within `PROBE_TIMEOUT` (sandboxed,
  detached, still parsing or reloading) is left out of that look, not
  waited for; a frame seen for the first time is no change (its element's
  arrival changed its parent's snapshot);
- no one-shot timer is pending that fires within the settle time
  (`INIT_SCRIPT` wraps setTimeout/clearTimeout in every frame; intervals and
  animation frames are not counted; a ``<meta http-equiv=refresh>`` to
  another document due within it counts as one, one that reloads the same
  document does not). This catches "the photo is replaced by a notice one
  second after load", which needs no network at all.

A frame that has reloaded itself (was sent again the URL it showed: a page
or an ad that reloads every few seconds) would never be stable: a main frame
that did is read once stable without its timers; a child frame that did is
left out of the looks, and its requests no longer count.

or at the latest HOSTWATCH_BROWSER_SETTLE seconds after load. A page whose
own network (as counted above) was still active when that time ran out (a request in flight, or
one started or ended within the last quiet period) is *busy*: `Settled.busy`
says so in hostwatch's words. A page whose text keeps changing with a quiet
network (a clock, a ticker) is not busy: it is read as it is.

`scroll` then moves a page taller than its viewport down one viewport at a
time (as a person would, so `loading=lazy` images, IntersectionObserver and
``data-src`` loaders and infinite-scroll fetches fire), waiting after each
step until the page is quiet again (at most `STEP_WAIT` seconds), up to
HOSTWATCH_BROWSER_SCROLL_HEIGHT pixels and HOSTWATCH_BROWSER_SCROLL_TIME
seconds, and reads the page after each step. Nothing here reads or returns
page content: counts, hashes and scroll positions only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import string
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from kernel.urls import site_of

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Frame, Page, Request, Response

POLL = 0.1  # seconds between two looks at the page while it settles
PROBE_TIMEOUT = 1.0  # seconds one frame may take to answer a look
STEP_WAIT = 1.0  # seconds a scroll step waits at most for the page to be quiet
MAX_FRAMES = 50  # frames looked at, main frame first (an ad wall can have hundreds)
FOREIGN_WAIT = 2.0  # seconds a request to another site counts toward "not quiet"
RELOADS = 1  # a frame that loaded the URL it showed this many times: its timers are moot
# Requests meant to stay open or to go unanswered: never "activity".
UNCOUNTED_TYPES = frozenset({"eventsource", "websocket", "ping", "beacon"})

# The name of the one window property the settle script leaves in a page: a
# function, non-enumerable, non-writable and non-configurable, that takes one
# look (`PROBE`). Random letters, new in each run, so a page cannot test for
# a name hostwatch is known by and show it something else than a person sees
# (cloaking); everything else stays in the script's closure.
ENTRY = "".join(secrets.choice(string.ascii_letters) for _ in range(12 + secrets.randbelow(6)))

# One look at the frame, as a function of the init script's closure (or with
# no state, in a frame the init script did not reach): [pending timers,
# snapshot, ms since the snapshot last changed (null without state)]. The
# snapshot is a short hash of the media URLs referenced and the visible text,
# taken again only after a mutation; nothing of the content leaves the page.
LOOK = r"""
(state) => {
  const look = state || {timers: new Set(), dirty: true, sig: null};
  if (look.dirty || look.sig === null) {
    look.dirty = false;
    let h = 2166136261;
    const mix = (s) => {
      for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
    };
    let n = 0;
    const tags = "img, video, audio, source, embed, object, input[type=image], image, iframe, "
                 + "[style*=url]";
    for (const el of document.querySelectorAll(tags)) {
      if (++n > 2000) break;
      for (const attr of ["src", "srcset", "data", "poster", "href", "xlink:href", "style"]) {
        const v = el.getAttribute(attr); if (v) mix(v);
      }
      if (el.currentSrc) mix(el.currentSrc);
    }
    const text = document.body ? document.body.innerText || "" : "";
    mix(text.length > 200000 ? text.slice(0, 100000) + text.slice(-100000) : text);
    const sig = n + ":" + text.length + ":" + (h >>> 0);
    if (state && state.sig !== null && sig !== state.sig) state.changed = state.since;
    look.sig = sig;
  }
  let timers = look.timers.size;
  const refresh = document.querySelector('meta[http-equiv="refresh" i]');
  if (refresh && state) {  // a redirect on a timer, without a script; a reload is none
    const parts = /^\s*([0-9.]+)\s*(?:[;,]\s*(?:url\s*=\s*)?(.*))?$/i.exec(
      refresh.getAttribute("content") || "");
    const wait = parts ? parseFloat(parts[1]) : NaN;
    let to = null;
    try {
      const target = (parts && parts[2] || "").trim().replace(/^(['"])(.*)\1$/, "$2");
      if (target) to = new URL(target, location.href).href.split("#")[0];
    } catch (e) {}
    if (wait >= 0 && wait * 1000 <= state.limit && to !== null
        && to !== location.href.split("#")[0]) timers += 1;
  }
  return [timers, look.sig, state ? performance.now() - state.changed : null];
}
"""

# Run in every frame before the page's own scripts (BrowserContext.add_init_script).
# Counts the pending one-shot timers due within the settle time, and marks
# the frame "dirty" on any DOM mutation (noting when) so that the snapshot
# is taken again. Its state stays in its closure; the page sees only `ENTRY`.
# setTimeout, clearTimeout and clearInterval are wrapped in Proxies of the
# originals (same name, length, no prototype), and Function.prototype.toString
# answers for each wrapper (and for itself) what it answers for the original.
INIT_SCRIPT = r"""
(() => {
  const name = @NAME@;
  if (Object.prototype.hasOwnProperty.call(window, name)) return;
  const look = @LOOK@;
  const state = {timers: new Set(), dirty: true, sig: null, since: 0, changed: 0,
                 limit: @LIMIT@};
  Object.defineProperty(window, name, {value: () => look(state), enumerable: false,
                                       writable: false, configurable: false});
  const masks = new WeakMap();
  const fnToString = Function.prototype.toString;
  const toString = {toString() {
    return Reflect.apply(fnToString, masks.get(this) || this, []);
  }}.toString;
  masks.set(toString, fnToString);
  try {
    Object.defineProperty(Function.prototype, "toString", {value: toString});
  } catch (e) {}
  const wrap = (original, apply) => {
    const wrapper = new Proxy(original, {apply: apply});
    masks.set(wrapper, original);
    return wrapper;
  };
  const setT = window.setTimeout, clearT = window.clearTimeout, clearI = window.clearInterval;
  window.setTimeout = wrap(setT, (target, self, args) => {
    const [handler, delay, ...rest] = args;
    const ms = Number(delay) || 0;
    if (typeof handler !== "function" || ms > state.limit) {
      return Reflect.apply(target, self, args);
    }
    let id;
    const run = function () { state.timers.delete(id); return handler.apply(this, rest); };
    id = Reflect.apply(target, self, [run, ms]);
    state.timers.add(id);
    return id;
  });
  const forget = (clear) => wrap(clear, (target, self, args) => {
    state.timers.delete(args[0]);
    return Reflect.apply(target, self, args);
  });
  window.clearTimeout = forget(clearT);
  window.clearInterval = forget(clearI);  // clears a timeout too, by the same id
  try {
    new MutationObserver(() => {
      if (!state.dirty) { state.dirty = true; state.since = performance.now(); }
    }).observe(
      document, {subtree: true, childList: true, attributes: true, characterData: true});
  } catch (e) {}
})();
""".replace("@NAME@", json.dumps(ENTRY)).replace("@LOOK@", LOOK.strip())

# One look at a frame (`LOOK`), through `ENTRY` where the init script ran.
PROBE = r"""
() => {
  if (document.readyState === "loading") return null;  // a document still being parsed
  const entry = Object.getOwnPropertyDescriptor(window, @NAME@);
  if (entry && typeof entry.value === "function") return entry.value();
  return (@LOOK@)(null);
}
""".replace("@NAME@", json.dumps(ENTRY)).replace("@LOOK@", LOOK.strip())

# Where the page is scrolled to, and (with true) one viewport further down.
# The document scrolls, unless it is no taller than the window or its
# overflow is hidden (an app that scrolls a box instead): then the
# scrollable element with the most to scroll does.
SCROLL = """
(move) => {
  const root = document.scrollingElement || document.documentElement;
  if (!root) return null;
  const view = window.innerHeight || root.clientHeight;
  const hidden = (el) => !!el && /hidden|clip/.test(getComputedStyle(el).overflowY);
  let box = root;
  if (root.scrollHeight <= view + 1 || hidden(document.documentElement)
      || hidden(document.body)) {
    box = null;
    let room = 1, seen = 0;
    for (const el of document.querySelectorAll("body *")) {
      if (++seen > 3000) break;
      const more = el.scrollHeight - el.clientHeight;
      if (more > room && el.clientHeight > 0
          && /^(auto|scroll|overlay)$/.test(getComputedStyle(el).overflowY)) {
        box = el; room = more;
      }
    }
    if (!box) return {top: 0, height: view, view: view};
  }
  const height = box === root ? view : box.clientHeight;
  if (move) {
    if (box === root) window.scrollBy(0, height); else box.scrollBy(0, height);
  }
  return {top: box.scrollTop, height: box.scrollHeight, view: height};
}
"""


def init_script(settle: float) -> str:
    """The script every frame runs first: timers due within ``settle`` s are counted."""
    return INIT_SCRIPT.replace("@LIMIT@", str(int(settle * 1000)))


def _frame(request: Request) -> Frame | None:
    with contextlib.suppress(Exception):  # a worker's request has no frame
        return request.frame
    return None


class Activity:
    """The requests of one browser context that count as the page's activity
    (module docstring), from the context's request and response events.

    ``site`` gives the site of the page's current document (`site_of`; None:
    every request is the page's own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 site: Callable[[], str | None] = lambda: None) -> None:
        self.clock = clock
        self.site = site
        self.in_flight: set[Request] = set()  # the page's own
        self.foreign: dict[Request, float] = {}  # to another site: when each started
        self.last = clock()  # when one of the page's own requests last started or ended
        self.stirred = self.last  # when a counted request (own or foreign) did
        self.starts: list[float] = []  # when the page's own recent requests started
        self.documents: dict[Frame, tuple[str, int]] = {}  # frame: (its URL, reloads)

    def watch(self, context: BrowserContext) -> None:
        context.on("request", self.started)
        context.on("requestfinished", self.ended)
        context.on("requestfailed", self.ended)
        context.on("response", self.responded)

    def _kind(self, request: Request) -> str | None:
        """"own", "foreign", or None: a request that does not count."""
        if request.resource_type in UNCOUNTED_TYPES:
            return None
        frame = _frame(request)
        main = frame is not None and frame.parent_frame is None
        if frame is not None and not main and self.reloaded(frame):
            return None
        site, target = self.site(), site_of(request.url)
        if site is None or target is None or target == site:
            return "own"  # (a blob: or data: URL has no host: the page's own)
        with contextlib.suppress(Exception):
            if main and request.is_navigation_request():
                return "own"  # the page itself going to another site
        return "foreign"

    def started(self, request: Request) -> None:
        kind = self._kind(request)
        if kind is None:
            return
        self.stirred = now = self.clock()
        if kind == "foreign":
            self.foreign[request] = now
            return
        self.in_flight.add(request)
        self.last = now
        self.starts.append(now)
        if len(self.starts) > 1000:
            del self.starts[:500]

    def ended(self, request: Request) -> None:
        if request in self.in_flight:
            self.in_flight.discard(request)
            self.last = self.stirred = self.clock()
        elif self.foreign.pop(request, None) is not None:
            self.stirred = self.clock()

    def responded(self, response: Response) -> None:
        """Note the documents each frame was sent (not a redirect's hops): a
        frame sent the URL it already showed has reloaded itself."""
        with contextlib.suppress(Exception):  # e.g. a frame already detached
            if not response.request.is_navigation_request() or 300 <= response.status < 400:
                return
            frame, url = response.frame, response.url
            shown, reloads = self.documents.get(frame, (None, 0))
            self.documents[frame] = (url, reloads + 1 if url == shown else 0)

    def reloaded(self, frame: Frame) -> bool:
        """Whether ``frame`` reloaded itself (its timers and, for a child
        frame, its requests no longer count)."""
        return self.documents.get(frame, ("", 0))[1] >= RELOADS

    def quiet_since(self) -> float:
        """Since when the network was quiet (now, while one of the page's own
        requests is in flight, or one to another site in its first
        `FOREIGN_WAIT` seconds)."""
        now = self.clock()
        if self.in_flight:
            return now
        since = self.stirred
        for started in self.foreign.values():
            since = max(since, min(now, started + FOREIGN_WAIT))
        return since

    def busy(self, window: float) -> str | None:
        """Why the page's own network is busy now (in flight, or active in the
        last ``window`` seconds), in our words; None when it is not."""
        now = self.clock()
        recent = sum(1 for moment in self.starts if now - moment <= window)
        if self.in_flight:
            return (f"{len(self.in_flight)} request(s) in flight, {recent} started in the "
                    f"last {window:g} s")
        if now - self.last <= window:
            return (f"{recent} request(s) started in the last {window:g} s, the last one "
                    f"ended {now - self.last:.1f} s ago")
        return None


@dataclass(frozen=True)
class Settled:
    """How a wait for a stable page ended."""

    stable: bool  # quiet for the quiet period before time ran out
    waited: float  # seconds it took
    busy: str | None = None  # time ran out while the network was active: why
    navigated: bool = False  # the page went to another document meanwhile


async def until_stable(page: Page, activity: Activity, *, quiet: float, until: float,
                       moved: Callable[[], bool], since: float | None = None) -> Settled:
    """Wait until the page is stable (module docstring) or the clock reaches ``until``.

    ``since`` is when the page loaded (for the wording of a busy page);
    ``moved`` says whether the page navigated to another document.
    """
    clock = activity.clock
    started = clock()
    since = started if since is None else since
    calm = started  # nothing happened since (as far as seen): at least one quiet period
    shown: dict[Frame, str] = {}  # each frame's last snapshot
    while True:
        if moved():
            return Settled(False, clock() - started, navigated=True)
        looks = await _look(page)
        now = clock()
        for frame, answer in looks:
            if answer is None:
                if frame is page.main_frame:
                    calm = now  # the page itself did not answer: look again
                continue  # a child frame that did not answer: left out
            timers, sig, age = answer
            before, shown[frame] = shown.get(frame), sig
            if activity.reloaded(frame):
                if frame is not page.main_frame:
                    continue  # a child frame that reloads itself (an ad): left out
                timers = 0  # a page that reloads itself: read it between reloads
            if timers:
                calm = now  # a timer is about to fire
            if age is not None:  # when the frame last changed what it shows
                calm = max(calm, now - age / 1000)
            elif before is not None and sig != before:
                calm = now  # it changed, and its script cannot say when
        calm = max(calm, activity.quiet_since())
        if now - calm >= quiet:
            return Settled(True, now - started)
        if now >= until:
            busy = activity.busy(quiet)
            if busy is not None:
                busy = f"still loading after {now - since:.1f} s: {busy}"
            return Settled(False, now - started, busy=busy)
        await asyncio.sleep(max(0.0, min(POLL, calm + quiet - now, until - now)))


async def _look(page: Page) -> list[tuple[Frame, tuple[int, str, float | None] | None]]:
    """Each frame's pending timers, snapshot and its age (None: the frame did
    not answer), for the first `MAX_FRAMES` frames, the main frame first."""
    main = page.main_frame
    frames = [main, *(f for f in page.frames if f is not main and not f.is_detached())]
    frames = frames[:MAX_FRAMES]
    answers = await asyncio.gather(*(_probe(frame) for frame in frames))
    looks: list[tuple[Frame, tuple[int, str, float | None] | None]] = []
    for frame, answer in zip(frames, answers, strict=True):
        if answer is None:
            looks.append((frame, None))
            continue
        timers, sig, age = answer
        looks.append((frame, (int(timers), str(sig), None if age is None else float(age))))
    return looks


async def _probe(frame: Frame) -> list[Any] | None:
    from playwright.async_api import Error as PlaywrightError

    try:
        answer = await asyncio.wait_for(frame.evaluate(PROBE), PROBE_TIMEOUT)
    except (PlaywrightError, TimeoutError):  # navigating, detached, slow: look again
        return None
    return answer if isinstance(answer, list) and len(answer) == 3 else None


Shown = TypeVar("Shown")


async def scroll(page: Page, activity: Activity, read: Callable[[], Awaitable[Shown | None]], *,
                 quiet: float, max_height: int, until: float,
                 moved: Callable[[], bool]) -> list[Shown]:
    """Scroll a page taller than its viewport down, viewport by viewport, and read it
    before the first step and after each one (module docstring). A page no taller
    than its viewport is not scrolled and not read: []."""
    if max_height <= 0 or activity.clock() >= until:
        return []
    position = await _scroll(page, move=False)
    if position is None or position["height"] <= position["view"] + 1:
        return []
    reads: list[Shown] = []
    shown = await read()
    if shown is None:
        return reads
    reads.append(shown)
    clock = activity.clock
    while clock() < until and position["top"] < max_height:
        before = position["top"]
        position = await _scroll(page, move=True)
        if position is None:
            break
        settled = await until_stable(page, activity, quiet=quiet, moved=moved,
                                     until=min(clock() + STEP_WAIT, until))
        if settled.navigated:
            break
        shown = await read()
        if shown is None:
            break
        reads.append(shown)
        # Measured after the wait: a page that grows as it is scrolled goes on.
        position = await _scroll(page, move=False) or position
        if position["top"] <= before or \
                position["top"] + position["view"] >= position["height"] - 1:
            break  # the bottom, or a page that does not move
    return reads


async def _scroll(page: Page, *, move: bool) -> dict[str, int] | None:
    from playwright.async_api import Error as PlaywrightError

    try:
        position = await asyncio.wait_for(page.evaluate(SCROLL, move), PROBE_TIMEOUT)
    except (PlaywrightError, TimeoutError):  # navigating away, or too slow: do not scroll
        return None
    if not isinstance(position, dict):
        return None
    try:
        return {key: int(position[key]) for key in ("top", "height", "view")}
    except (KeyError, TypeError, ValueError):
        return None
