"""A host's actions before its page is read: getting past a consent wall.

Some sites show their content only after a click on "Accept all" (a consent
wall, often drawn by a consent manager in an iframe from its own host). A
host rule can list actions (crawler.browser.rules.Action) that the browser
takes once the page first settled and before it is read
(crawler.browser.page), in order:

- ``click``: the first visible match of the selector, looked for in every
  frame of the page (the main document first, then its frames in the order
  they attached), for up to the action's timeout. Nothing to click is not an
  error: a returning visitor may see no wall. The note says so and the page
  is read anyway. A click may make the page load a new document (the page
  visit then reads that one) or open a popup (closed, as every popup is).
- ``wait_for``: wait until a visible match exists in any frame, for up to the
  action's timeout.

Each action is bounded by its timeout and by the page's deadline, of which
READ_RESERVE is kept for reading the page. The actions run in the page's own
context, behind the same request filter, guarded proxy and popup handling as
everything else the page does: a click reaches nothing the page's own
scripts could not, and a media file it asks for is blocked like any other.

The notes (`ActionNote`) are hostwatch's words and the rule's selector, the
user's text. Playwright's error messages can quote the page's markup, so
they are never passed on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from crawler.browser.decide import ActionNote
from crawler.browser.rules import Action, ActionKind

if TYPE_CHECKING:
    from playwright.async_api import Frame, Locator, Page, Request

POLL = 0.1  # seconds between two looks for a selector
MATCHES = 20  # matches of a selector looked at in one frame
READ_RESERVE = 1.0  # seconds of the page's deadline kept for reading the page
AFTER_CLICK = 0.5  # seconds for a navigation that a click starts to show


class _BadSelector(Exception):
    """Playwright cannot parse the rule's selector."""


async def run_actions(page: Page, actions: Sequence[Action],
                      deadline: float) -> tuple[ActionNote, ...]:
    """Take ``actions`` on ``page`` before ``deadline`` (time.monotonic());
    one note per action, in order (see the module docstring)."""
    watch = _Navigations(page)
    notes: list[ActionNote] = []
    click: tuple[int, int] | None = None  # the last click's note, navigations before it
    try:
        for action in actions:
            if action.kind is ActionKind.CLICK:
                _say_if_moved(notes, click, watch)
                click = (len(notes), watch.started)
            notes.append(await _run(page, action, deadline, watch))
        _say_if_moved(notes, click, watch)
        return tuple(notes)
    finally:
        watch.close()


def _say_if_moved(notes: list[ActionNote], click: tuple[int, int] | None,
                  watch: _Navigations) -> None:
    """Add to a click's note that the page loaded a new document after it (a
    reload may start only while the next action waits)."""
    if click is not None and watch.started > click[1] and notes[click[0]].acted:
        note = notes[click[0]]
        notes[click[0]] = replace(note, text=f"{note.text} (the page loaded a new document)")


async def _run(page: Page, action: Action, deadline: float,
               watch: _Navigations) -> ActionNote:
    limit = round(min(action.timeout, deadline - READ_RESERVE - time.monotonic()), 1)
    if limit <= 0:
        return ActionNote(f"{action}: skipped, the page's time had run out")
    until = time.monotonic() + limit
    try:
        found = await _find(page, action.selector, until)
    except _BadSelector:
        return ActionNote(f"{action}: not a valid selector")
    if action.kind is ActionKind.WAIT_FOR:
        return ActionNote(f"{action}: seen" if found else f"{action}: not seen in {limit:g} s")
    if found is None:
        return ActionNote(f"{action}: nothing to click in {limit:g} s")
    return await _click(page, action, found, until, watch)


async def _click(page: Page, action: Action, found: tuple[Locator, Frame], until: float,
                 watch: _Navigations) -> ActionNote:
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    target, frame = found
    where = "" if frame is page.main_frame else f" in a frame from {_origin(frame.url)}"
    try:
        await target.click(timeout=max(1.0, (until - time.monotonic()) * 1000))
    except PlaywrightTimeout:
        return ActionNote(f"{action}{where}: not clickable in time")
    except PlaywrightError:
        # Gone while being clicked: the page changed (it may have been the click).
        return ActionNote(f"{action}{where}: the element went away while it was clicked",
                          acted=True)
    await asyncio.sleep(max(0.0, min(AFTER_CLICK, until - time.monotonic())))
    while watch.pending and time.monotonic() < until:
        await asyncio.sleep(POLL)  # the new document commits; the page visit loads it
    return ActionNote(f"clicked {action.selector}{where}", acted=True)


async def _find(page: Page, selector: str, until: float) -> tuple[Locator, Frame] | None:
    """The first visible match of ``selector`` in any frame, main first; None
    when there is none by ``until``."""
    while True:
        for frame in [page.main_frame, *(f for f in page.frames if f is not page.main_frame)]:
            match = await _visible(frame, selector)
            if match is not None:
                return match, frame
        if time.monotonic() + POLL >= until:
            return None
        await asyncio.sleep(POLL)


async def _visible(frame: Frame, selector: str) -> Locator | None:
    from playwright.async_api import Error as PlaywrightError

    try:
        matches = frame.locator(selector)
        for index in range(min(await matches.count(), MATCHES)):
            match = matches.nth(index)
            if await match.is_visible():
                return match
    except PlaywrightError as exc:
        if "while parsing" in str(exc):  # Playwright's words about the rule's selector
            raise _BadSelector from None
        # A frame that navigated or went away meanwhile: looked at again next time.
    return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "this page"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


class _Navigations:
    """Main-frame navigations while the actions run: how many started, and
    whether one is still on its way (requested, neither committed nor failed)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.started = 0
        self.pending = False
        page.on("request", self._request)
        page.on("requestfailed", self._failed)
        page.on("framenavigated", self._committed)

    def close(self) -> None:
        self.page.remove_listener("request", self._request)
        self.page.remove_listener("requestfailed", self._failed)
        self.page.remove_listener("framenavigated", self._committed)

    def _main(self, request: Request) -> bool:
        try:
            return request.is_navigation_request() and request.frame is self.page.main_frame
        except Exception:  # a service worker's request has no frame
            return False

    def _request(self, request: Request) -> None:
        if self._main(request):
            if request.redirected_from is None:
                self.started += 1
            self.pending = True

    def _failed(self, request: Request) -> None:
        if self._main(request):
            self.pending = False

    def _committed(self, frame: Frame) -> None:
        if frame is self.page.main_frame:
            self.pending = False
