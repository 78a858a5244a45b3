"""When a page in the browser has settled, and scrolling it as a person would.

A page is read once it is *stable*: for HOSTWATCH_BROWSER_QUIET seconds
nothing happened, that is

- no request of the page was in flight, and none started or ended (counted
  from the browser context's request events; a media request the filter
  aborted has ended);
- what it shows did not change: a cheap snapshot of every frame (main
  document and child frames, cross-origin ones too), made of the media URLs
  it references and the length and a hash of its visible text, taken again
  only after a DOM mutation;
- no one-shot timer is pending that fires within the settle time
  (`INIT_SCRIPT` wraps setTimeout/clearTimeout in every frame; intervals and
  animation frames are not counted; a ``<meta http-equiv=refresh>`` due
  within it counts as one). This catches "the photo is replaced by a notice
  one second after load", which needs no network at all.

or at the latest HOSTWATCH_BROWSER_SETTLE seconds after load. A page whose
network was still active when that time ran out (a request in flight, or
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
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Frame, Page, Request

POLL = 0.1  # seconds between two looks at the page while it settles
PROBE_TIMEOUT = 1.0  # seconds one frame may take to answer a look
STEP_WAIT = 1.0  # seconds a scroll step waits at most for the page to be quiet

# Run in every frame before the page's own scripts (BrowserContext.add_init_script).
# Counts the pending one-shot timers due within the settle time, and marks
# the frame "dirty" on any DOM mutation (noting when) so that the snapshot
# is taken again.
INIT_SCRIPT = """
(() => {
  if (window.__hostwatchSettle) return;
  const limit = %(limit)d;
  const state = {timers: new Set(), dirty: true, sig: null, since: 0, changed: 0, limit: limit};
  Object.defineProperty(window, "__hostwatchSettle", {value: state, enumerable: false});
  const setT = window.setTimeout, clearT = window.clearTimeout, clearI = window.clearInterval;
  const native = (wrapper, original) => {
    try { Object.defineProperty(wrapper, "toString", {value: () => original.toString()}); }
    catch (e) {}
    return wrapper;
  };
  window.setTimeout = native(function (handler, delay, ...args) {
    const ms = Number(delay) || 0;
    if (typeof handler !== "function" || ms > limit) return setT.apply(window, arguments);
    let id;
    const run = function () { state.timers.delete(id); return handler.apply(this, args); };
    id = setT.call(window, run, ms);
    state.timers.add(id);
    return id;
  }, setT);
  const forget = (clear) => native(function (id) {
    state.timers.delete(id);
    return clear.call(window, id);
  }, clear);
  window.clearTimeout = forget(clearT);
  window.clearInterval = forget(clearI);  // clears a timeout too, by the same id
  try {
    new MutationObserver(() => {
      if (!state.dirty) { state.dirty = true; state.since = performance.now(); }
    }).observe(
      document, {subtree: true, childList: true, attributes: true, characterData: true});
  } catch (e) {}
})();
"""

# One look at a frame: [pending timers, snapshot, ms since the snapshot last
# changed (null in a frame the init script did not reach)]. The snapshot is a
# short hash of the media URLs referenced and the visible text, taken again
# only after a mutation; nothing of the content leaves the page.
PROBE = """
() => {
  const state = window.__hostwatchSettle;
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
  if (refresh && state) {  // a redirect (or reload) on a timer, without a script
    const wait = parseFloat(refresh.getAttribute("content") || "");
    if (wait >= 0 && wait * 1000 <= state.limit) timers += 1;
  }
  return [timers, look.sig, state ? performance.now() - state.changed : null];
}
"""

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
    return INIT_SCRIPT % {"limit": int(settle * 1000)}


class Activity:
    """The requests of one browser context, from its request events."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.in_flight: set[Request] = set()
        self.last = clock()  # when a request last started or ended
        self.starts: list[float] = []  # when recent requests started

    def watch(self, context: BrowserContext) -> None:
        context.on("request", self.started)
        context.on("requestfinished", self.ended)
        context.on("requestfailed", self.ended)

    def started(self, request: Request) -> None:
        self.in_flight.add(request)
        self.last = now = self.clock()
        self.starts.append(now)
        if len(self.starts) > 1000:
            del self.starts[:500]

    def ended(self, request: Request) -> None:
        self.in_flight.discard(request)
        self.last = self.clock()

    def quiet_since(self) -> float:
        """Since when the network was quiet (now, while a request is in flight)."""
        return self.clock() if self.in_flight else self.last

    def busy(self, window: float) -> str | None:
        """Why the network is busy now (in flight, or active in the last ``window``
        seconds), in our words; None when it is not."""
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
    last: tuple[str, ...] | None = None
    while True:
        if moved():
            return Settled(False, clock() - started, navigated=True)
        looks = await _look(page)
        now = clock()
        if looks is None or any(timers for timers, _, _ in looks):
            calm = now  # a frame did not answer, or a timer is about to fire
        else:
            snapshot = tuple(sig for _, sig, _ in looks)
            if last is not None and snapshot != last and (
                    len(snapshot) != len(last) or any(age is None for _, _, age in looks)):
                calm = now  # a frame came or went, or changed where no age is known
            for _, _, age in looks:
                if age is not None:  # when the frame last changed what it shows
                    calm = max(calm, now - age / 1000)
            last = snapshot
        calm = max(calm, activity.quiet_since())
        if now - calm >= quiet:
            return Settled(True, now - started)
        if now >= until:
            busy = activity.busy(quiet)
            if busy is not None:
                busy = f"still loading after {now - since:.1f} s: {busy}"
            return Settled(False, now - started, busy=busy)
        await asyncio.sleep(max(0.0, min(POLL, calm + quiet - now, until - now)))


async def _look(page: Page) -> list[tuple[int, str, float | None]] | None:
    """Each frame's pending timers, snapshot and its age; None when a frame did not answer."""
    answers = await asyncio.gather(*(_probe(frame) for frame in list(page.frames)))
    looks = []
    for answer in answers:
        if answer is None:
            return None
        timers, sig, age = answer
        looks.append((int(timers), str(sig), None if age is None else float(age)))
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
