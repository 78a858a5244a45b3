"""When a browser check reads the page (#11, points 1, 2, 6 and 8), in real
Chromium through `hostwatch crawl --browser`, on the pages of
lab.pages.busy: read once the page is stable (a spinner swapped for
the photo, a photo replaced by a notice a second after load), lazy images
found by scrolling, pages that never finish loading kept transient
(`incomplete`), and a stable page read without waiting for the settle time.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from sqlalchemy import select

from crawler.browser.check import _to_hash
from crawler.browser.decide import MediaHash, PageVisit
from crawler.browser.page import _union
from crawler.browser.read import Shown
from crawler.browser.settle import FOREIGN_WAIT, Activity
from kernel.urls import site_of
from lab import TestInternet
from lab.pages.busy import BusyPages, add_busy_pages
from store import Case
from tests.crawler.conftest import add_cases, checks_by_url, run_crawl

MARKER = b"HW-MARKER-SETTLE-7d21"

pytestmark = pytest.mark.slow


@pytest.fixture
def pages(net: TestInternet) -> BusyPages:
    return add_busy_pages(net, "settle.test", marker=MARKER, hold=40)


def _crawl(store, db_url, net, tmp_path, browser_temp, refs: dict[str, str | None],
           **extra: str) -> dict[str, tuple[str, str]]:
    add_cases(store, list(refs), {url: ref for url, ref in refs.items() if ref is not None})
    settings = {"HOSTWATCH_BROWSER_TIMEOUT": "20",  # generous: the machine is busy
                "HOSTWATCH_BROWSER_TEMP": str(browser_temp), **extra}
    result = run_crawl(db_url, net, tmp_path, "--browser", timeout=300, **settings)
    assert result.returncode == 0, result.stderr[-3000:]
    checks = checks_by_url(store)
    return {url: (checks[url][-1].verdict, checks[url][-1].reason or "") for url in refs}


def test_a_spinner_swapped_for_the_photo_after_load_is_online(store, db_url, net, pages,
                                                             tmp_path, browser_temp):
    """The spinner shows first; a timer puts the photo in 1.2 s later with no
    request in between. Read at the first media, the page looked "changed".
    The same inside a cross-origin frame: its timers count too."""
    url = pages.swap("s1")
    other = add_busy_pages(net, "frames.test", marker=MARKER)
    framed = pages.framed("s2", other.swap("s2"))
    refs = {url: pages.photo_sha256("s1"), framed: other.photo_sha256("s2")}
    got = _crawl(store, db_url, net, tmp_path, browser_temp, refs)
    assert got[url][0] == "online", got
    assert got[framed][0] == "online" and other.photo_url("s2") in got[framed][1], got
    check = checks_by_url(store)[url][0]
    assert check.reference_match is True
    assert check.body_sha256 == pages.photo_sha256("s1")
    assert pages.photo_url("s1") in (check.reason or "")


def test_a_photo_replaced_by_a_notice_after_load_is_a_placeholder(store, db_url, net, pages,
                                                                 tmp_path, browser_temp):
    """The photo shows at load; a timer replaces it with "has been removed"
    a second later. Read at the first media, the page looked online."""
    url = pages.late_notice("n1")
    got = _crawl(store, db_url, net, tmp_path, browser_temp, {url: pages.photo_sha256("n1")})
    verdict, reason = got[url]
    assert verdict == "placeholder", got
    assert "has been removed" in reason


def test_a_page_that_refreshes_to_the_home_page_after_load_is_redirected_away(
        store, db_url, net, pages, tmp_path, browser_temp):
    """The photo shows, and a <meta http-equiv=refresh> sends the browser to
    the home page a second after load: the person ends up there. Read at the
    first media, the page looked online."""
    url = pages.refresh("r1")
    got = _crawl(store, db_url, net, tmp_path, browser_temp, {url: pages.photo_sha256("r1")})
    assert got[url][0] == "redirect_away", got
    assert checks_by_url(store)[url][0].final_url == pages.host.url("/")


def test_lazy_images_below_the_fold_are_found_by_scrolling(store, db_url, net, pages,
                                                          tmp_path, browser_temp):
    """An IntersectionObserver gives the photo its src only once it is in view
    (with a loading=lazy thumbnail above it; and again in an app that scrolls
    a box, not its body), and an infinite-scroll page fetches its photo only
    when its end is in view: all far below the fold."""
    lazy, boxed, feed = pages.lazy("l1"), pages.boxed("x1"), pages.feed("f1")
    refs = {lazy: pages.photo_sha256("l1"), boxed: pages.photo_sha256("x1"),
            feed: pages.photo_sha256("f1")}
    got = _crawl(store, db_url, net, tmp_path, browser_temp, refs)
    assert got[lazy][0] == "online" and pages.photo_url("l1") in got[lazy][1], got
    assert got[boxed][0] == "online" and pages.photo_url("x1") in got[boxed][1], got
    assert got[feed][0] == "online" and pages.photo_url("f1") in got[feed][1], got
    checks = checks_by_url(store)
    assert checks[lazy][0].body_sha256 == pages.photo_sha256("l1")
    assert checks[feed][0].reference_match is True


def test_pages_that_never_finish_loading_are_incomplete_not_removed(store, db_url, net, pages,
                                                                   tmp_path, browser_temp):
    """An endless spinner polling an API and a fetch stream that never ends:
    `incomplete` (transient), never "changed" or "shows no media", and the
    case is not removed even where one gone check would confirm a removal.
    A page whose text keeps changing (a clock) with a quiet network is read
    as it is; a notice on a page that is still loading still counts. A page
    that shows a photo while it polls, on a case without a reference hash,
    is online: media shown, nothing to compare (it was `incomplete`)."""
    endless, stream, clock = pages.endless("e1"), pages.stream("t1"), pages.clock("c1")
    polling = pages.polling("q1")
    refs = {endless: pages.photo_sha256("e1"), stream: pages.photo_sha256("t1"),
            clock: pages.photo_sha256("c1"), polling: None}
    started = time.monotonic()
    got = _crawl(store, db_url, net, tmp_path, browser_temp, refs,
                 HOSTWATCH_BROWSER_SETTLE="3",
                 HOSTWATCH_REMOVAL_CONFIRMATIONS="1", HOSTWATCH_REMOVAL_MIN_HOURS="0")
    took = time.monotonic() - started
    for url in (endless, stream):
        verdict, reason = got[url]
        assert verdict == "incomplete", got
        assert "still loading" in reason and "not read as removed" in reason
    assert got[clock][0] == "online", got
    assert got[polling][0] == "online" and "no reference hash" in got[polling][1], got
    with store.session() as session:
        states = dict(session.execute(select(Case.url, Case.state)).all())
    assert states[endless] != "removed" and states[stream] != "removed", states
    assert states[clock] == "online"
    assert took < 150  # bounded by the settle time, not the 40 s the stream is held


def test_a_stable_page_is_read_without_waiting_for_the_settle_time(store, db_url, net, pages,
                                                                  tmp_path, browser_temp):
    """Six pages that are done at load (a photo, or text with no media), one
    browser page at a time, with a settle time of 30 s: waiting it out for
    the four without media would take two minutes (it did: "nothing shown
    yet" got the whole settle time); a stable page is read once it has been
    quiet."""
    urls = {pages.still(f"p{i}"): pages.photo_sha256(f"p{i}") for i in range(2)}
    urls |= {pages.blank(f"b{i}"): pages.photo_sha256(f"b{i}") for i in range(4)}
    started = time.monotonic()
    got = _crawl(store, db_url, net, tmp_path, browser_temp, urls,
                 HOSTWATCH_BROWSER_SETTLE="30", HOSTWATCH_BROWSER_PAGES="1",
                 HOSTWATCH_BROWSER_TIMEOUT="40")
    took = time.monotonic() - started
    assert {url: verdict for url, (verdict, _) in got.items()} == {
        **{url: "online" for url in list(urls)[:2]},
        **{url: "placeholder" for url in list(urls)[2:]}}, got
    assert took < 75, f"{took:.0f} s for six stable pages"


def test_a_live_widget_of_another_site_does_not_keep_the_page_loading(
        store, db_url, net, pages, tmp_path, browser_temp):
    """Pages with an EventSource of their own (a live viewer count) and a
    third-party chat widget in a frame that holds an EventSource and a long
    poll open: a person sees the photo. Counted as loading, every visit was
    `incomplete`; now the photo decides: a match is online, another photo is
    changed, and without a reference hash the photo shown is online."""
    widget = add_busy_pages(net, "widget.test", marker=MARKER, hold=40)
    same, other, unknown = (pages.live(f"w{i}", widget.chat(f"c{i}")) for i in range(3))
    refs = {same: pages.photo_sha256("w0"), other: pages.photo_sha256("not-shown"),
            unknown: None}
    got = _crawl(store, db_url, net, tmp_path, browser_temp, refs)
    assert got[same][0] == "online" and pages.photo_url("w0") in got[same][1], got
    assert got[other][0] == "changed", got
    assert got[unknown][0] == "online" and "no reference hash" in got[unknown][1], got
    for _, reason in got.values():
        assert "still loading" not in reason


def test_a_page_that_reloads_itself_is_read_as_it_shows(store, db_url, net, pages, tmp_path,
                                                       browser_temp):
    """A page that reloads itself every 3 s by script, and one with a
    `<meta http-equiv=refresh content=4>` without a URL: a person sees the
    photo. Waiting for the reload timer on every new document, the check
    ended "the page kept navigating" (`redirect_loop`)."""
    scripted, meta = pages.reloading("rl1"), pages.meta_reload("rm1")
    refs = {scripted: pages.photo_sha256("rl1"), meta: pages.photo_sha256("rm1")}
    got = _crawl(store, db_url, net, tmp_path, browser_temp, refs)
    assert got[scripted][0] == "online" and pages.photo_url("rl1") in got[scripted][1], got
    assert got[meta][0] == "online" and pages.photo_url("rm1") in got[meta][1], got
    checks = checks_by_url(store)
    assert checks[scripted][0].reference_match is True
    assert checks[meta][0].reference_match is True
    assert checks[scripted][0].final_url is None  # a reload is no redirect


def test_a_frame_that_keeps_reloading_does_not_hold_the_page(store, db_url, net, pages,
                                                            tmp_path, browser_temp):
    """The photo, beside another host's ad frame that reloads itself every
    300 ms: the page is stable once the ad's reloads are seen as such, not
    at the settle time (30 s here; it took all of it)."""
    ads = add_busy_pages(net, "ads.test", marker=MARKER)
    url = pages.with_ad("ad1", ads.blinking("b1"))
    started = time.monotonic()
    got = _crawl(store, db_url, net, tmp_path, browser_temp, {url: pages.photo_sha256("ad1")},
                 HOSTWATCH_BROWSER_SETTLE="30", HOSTWATCH_BROWSER_TIMEOUT="45")
    took = time.monotonic() - started
    assert got[url][0] == "online" and pages.photo_url("ad1") in got[url][1], got
    assert "still loading" not in got[url][1]
    assert took < 25, f"{took:.0f} s: the page waited for its settle time"


# -- the pure parts: what counts as busy, what the reads add up to ------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Request:
    """What `Activity` asks of a Playwright request (no frame: a worker's)."""

    def __init__(self, url: str = "http://x.test/api", resource_type: str = "fetch") -> None:
        self.url = url
        self.resource_type = resource_type

    def is_navigation_request(self) -> bool:
        return False


def test_a_network_quiet_for_the_quiet_period_is_not_busy():
    clock = _Clock()
    activity = Activity(clock)
    request = _Request()
    activity.started(request)  # type: ignore[arg-type]
    clock.now += 0.2
    assert activity.busy(0.5) == "1 request(s) in flight, 1 started in the last 0.5 s"
    activity.ended(request)  # type: ignore[arg-type]
    clock.now += 0.4
    assert activity.busy(0.5) == ("0 request(s) started in the last 0.5 s, the last one "
                                  "ended 0.4 s ago")
    clock.now += 0.2
    assert activity.busy(0.5) is None
    assert activity.quiet_since() == 100.2


def test_the_reads_of_a_scrolled_page_add_up_the_last_read_first_then_earlier_ones():
    a, b, c, d = (f"http://x.test/{n}.jpg" for n in "abcd")
    inline = MediaHash("data:image/png (inline #1, 9 bytes)", sha256="0" * 64, inline=True)
    reads = [Shown((a, b, "data:image/png (inline #1)")),
             Shown((b, c), (), 'text "has been removed"'),
             Shown((d, inline.url), (inline,))]  # a list that dropped a, b and c
    # The last read keeps its order (its inline media were hashed by their
    # place in it); inline media are its own: only it read their bytes.
    assert _union(reads) == Shown((d, inline.url, a, b, c), (inline,),
                                  'text "has been removed"', showing=2)
    assert _union([Shown((a,), (), "element .gone")]).removed == "element .gone"


def test_only_the_page_s_own_requests_make_it_busy():
    """EventSource, WebSocket, ping and beacon requests never count; one to
    another site holds the quiet clock for its first FOREIGN_WAIT seconds
    only, and never makes the page busy."""
    clock = _Clock()
    activity = Activity(clock, site=lambda: "x.test")
    start = clock.now
    for kind in ("eventsource", "websocket", "ping", "beacon"):
        activity.started(_Request(resource_type=kind))  # type: ignore[arg-type]
    widget = _Request("http://chat.widget.test/poll")
    activity.started(widget)  # type: ignore[arg-type]
    clock.now += 1.0
    assert activity.quiet_since() == clock.now and activity.busy(0.5) is None
    clock.now += FOREIGN_WAIT
    assert activity.quiet_since() == start + FOREIGN_WAIT
    own = _Request("http://cdn.x.test/api/poll")
    activity.started(own)  # type: ignore[arg-type]
    assert activity.busy(0.5) == "1 request(s) in flight, 1 started in the last 0.5 s"


def test_a_site_is_a_registrable_domain_or_the_last_two_labels():
    assert site_of("https://img.example.co.uk/a.jpg") == "example.co.uk"
    assert site_of("https://a.github.io/") == "a.github.io"  # a private suffix
    assert site_of("http://chat.widget.test:8080/x") == "widget.test"  # not on the list
    assert site_of("http://127.0.0.1:99/") == "127.0.0.1"
    assert site_of("about:blank") is None


def test_every_inline_media_the_last_read_hashed_is_compared():
    # Earlier reads saw more http media than the media limit; the last read
    # hashed its inline photo at place 2 of its own list.
    earlier = Shown(tuple(f"http://x.test/{n}.jpg" for n in range(10)))
    inline = MediaHash("data:image/jpeg (inline #1, 9 bytes)", sha256="0" * 64, inline=True)
    last = Shown(("http://x.test/9.jpg", inline.url), (inline,))
    shown = _union([earlier, last])
    visit = PageVisit(url="http://x.test/p", status=200, content_type="text/html",
                      media=shown.media, inline=shown.inline, shown=shown.shown_now)
    assert inline.url in _to_hash(visit, 2)
    # However far down the list it is.
    visit = replace(visit, media=(*earlier.media, inline.url))
    assert _to_hash(visit, 2) == ["http://x.test/0.jpg", "http://x.test/1.jpg", inline.url]


@pytest.mark.parametrize("tell", ["settle", "webdriver", "timers"])
def test_a_page_that_looks_for_a_crawler_shows_it_what_a_person_sees(
        store, db_url, net, pages, tmp_path, browser_temp, tell):
    """Cloaking: the page shows the photo to a person and a removal notice to
    a crawler it recognises, by a window property hostwatch was known by
    (``__hostwatchSettle``), by ``navigator.webdriver`` (true with Playwright's
    ``--enable-automation``), or by timer functions that are not native.
    Recognised, hostwatch read the notice: a takedown that did not happen."""
    url = pages.cloaked(f"k-{tell}", tell)
    got = _crawl(store, db_url, net, tmp_path, browser_temp, {url: pages.photo_sha256(f"k-{tell}")})
    verdict, reason = got[url]
    assert verdict == "online", got
    assert pages.photo_url(f"k-{tell}") in reason


def test_a_document_over_the_body_limit_is_read_as_far_as_the_limit(
        store, db_url, net, pages, tmp_path, browser_temp):
    """An HTML document of 600 KB with HOSTWATCH_MAX_BODY at 64 KiB: the
    browser gets the first 64 KiB as the document and reads it. With the
    photo in those bytes: online (the reason says the document was cut);
    with the photo after them: incomplete (what the rest shows is unknown),
    not "shows no media". Both waited for the rest until the page timeout."""
    first, last = pages.big("g1", 600_000), pages.big("g2", 600_000, photo_first=False)
    started = time.monotonic()
    got = _crawl(store, db_url, net, tmp_path, browser_temp,
                 {first: pages.photo_sha256("g1"), last: pages.photo_sha256("g2")},
                 HOSTWATCH_MAX_BODY=str(64 * 1024), HOSTWATCH_BROWSER_TIMEOUT="40")
    took = time.monotonic() - started
    verdict, reason = got[first]
    assert verdict == "online", got
    assert pages.photo_url("g1") in reason and "HOSTWATCH_MAX_BODY" in reason
    verdict, reason = got[last]
    assert verdict == "incomplete", got
    assert "HOSTWATCH_MAX_BODY" in reason and "not read as removed" in reason
    assert took < 35, f"{took:.0f} s: the check waited for the page timeout"
