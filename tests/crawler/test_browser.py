"""Browser checks against the JS gallery of the local test internet, in real
Chromium (Debian's package): every verdict through `hostwatch crawl`, the
rules that send a case to the browser, and the runtime (restarts, crashes,
pages that never finish).

Chromium must be installed (`make install` does it); these tests are not
skipped without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from crawler.browser.check import BrowserChecker
from crawler.browser.decide import decide
from crawler.browser.pool import BrowserSettings
from crawler.browser.rules import Removed
from crawler.perceptual import Reference
from crawler.resolver import GuardedResolver
from kernel.config import KEYS
from lab import REMOVED_SELECTOR, REMOVED_TEXT, JsGallery, Serve, TestInternet, add_js_gallery
from lab.gallery import _mp4
from outbound.dns import Resolver
from outbound.guard import parse_networks
from tests.crawler.conftest import add_cases, checks_by_url, run_crawl

MARKER = b"HW-MARKER-BROWSER-5c1e"
ALLOW = parse_networks(["127.0.0.0/8"])
USER_AGENT = "hostwatch-test-hasher"
CRAWL_USER_AGENT = KEYS["user_agent"].default
REMOVED = Removed((REMOVED_TEXT.lower(),), (REMOVED_SELECTOR,))

pytestmark = pytest.mark.slow


@pytest.fixture
def gallery(net: TestInternet) -> JsGallery:
    return add_js_gallery(net, "jsgallery.test", marker=MARKER, hang_seconds=20)


def _rules(tmp_path: Path, *hosts: str, browser: str = "always") -> str:
    path = tmp_path / "browser_rules.toml"
    path.write_text("".join(
        f'[[host]]\npattern = "{host}"\nbrowser = "{browser}"\n'
        f'removed_selectors = ["{REMOVED_SELECTOR}"]\n\n' for host in hosts), encoding="utf-8")
    return str(path)


def test_every_browser_verdict_through_the_crawl(store, db_url, net, gallery, tmp_path,
                                                 browser_temp):
    """Shells found by the plain GET go to the browser (fallback); a host the
    rules mark "always" goes there directly; each ends with its own verdict."""
    states = {"p": "present", "v": "present_video", "b": "present_background",
              "c": "changed", "r": "removed", "pop": "popup_redirect"}
    for item, state in states.items():
        gallery.item(item, state)
    always = add_js_gallery(net, "always.test", marker=MARKER, hang_seconds=20)
    always.item("h", "hang")
    always.item("p2", "present")
    refs = {gallery.page_url(i): gallery.media_sha256(i) for i in states}
    refs[gallery.page_url("v")] = hashlib.sha256(_mp4(MARKER, "v")).hexdigest()
    refs[always.page_url("p2")] = always.media_sha256("p2")
    urls = [*refs, always.page_url("h")]
    add_cases(store, urls, refs)

    result = run_crawl(db_url, net, tmp_path, timeout=180,
                       HOSTWATCH_BROWSER_RULES=_rules(tmp_path, "always.test"),
                       HOSTWATCH_BROWSER_TIMEOUT="10",  # generous: CI machines are busy
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp))
    assert result.returncode == 0, result.stderr[-3000:]

    checks = checks_by_url(store)
    got = {url: [(c.method, c.verdict) for c in checks[url]] for url in urls}
    expected = {gallery.page_url("p"): "online", gallery.page_url("v"): "online",
                gallery.page_url("b"): "online", gallery.page_url("c"): "changed",
                gallery.page_url("r"): "placeholder", gallery.page_url("pop"): "redirect_away",
                always.page_url("p2"): "online", always.page_url("h"): "timeout"}
    reasons = {url: [c.reason for c in checks[url]] for url in urls}
    assert got == {url: [("browser", verdict)] for url, verdict in expected.items()}, (got, reasons)
    present = checks[gallery.page_url("p")][0]
    assert present.reference_match is True
    assert present.body_sha256 == gallery.media_sha256("p")
    assert present.peer_ip == gallery.host.ip
    assert gallery.media_url("p") in (present.reason or "")
    changed = checks[gallery.page_url("c")][0]
    assert changed.reference_match is False
    assert changed.body_sha256 == hashlib.sha256(
        _fetch_media(net, gallery.media_url("c"))).hexdigest()
    away = checks[gallery.page_url("pop")][0]
    assert away.final_url == gallery.host.url("/")
    # "always": no plain GET of the page first; fallback: one GET, then the browser.
    pages = [(h.path, h.user_agent) for h in net.hits if h.path.startswith("/g/")]
    assert not [p for p in pages if p[0] == "/g/p2" and "Chrome" not in p[1]]
    assert len([p for p in pages if p[0] == "/g/p" and "Chrome" not in p[1]]) == 1
    assert not any(browser_temp.iterdir())  # the browser's directory went with it


def test_a_page_that_rewrites_its_address_bar_is_not_redirected_away(store, db_url, net, tmp_path,
                                                                   browser_temp):
    """history.replaceState("/") shows the home page's address without
    leaving the page: the gallery is still shown (online), not "redirected
    to the site's home page" (a gone verdict: a removal that never happened).
    A real navigation to the home page still is one."""
    image = MARKER + b"-replaced"
    host = net.add_host("rewriter.test")
    host.route("/m.jpg", Serve(image, content_type="image/jpeg"))
    host.route("/", Serve(b"<!doctype html><p>home</p>", content_type="text/html"))
    host.route("/stays.html", Serve(b'<!doctype html><img src="/m.jpg"><script>'
                                    b'history.replaceState(null, "", "/");</script>',
                                    content_type="text/html"))
    host.route("/leaves.html", Serve(b'<!doctype html><img src="/m.jpg"><script>'
                                     b'location.replace("/");</script>',
                                     content_type="text/html"))
    refs = {host.url("/stays.html"): hashlib.sha256(image).hexdigest(),
            host.url("/leaves.html"): hashlib.sha256(image).hexdigest()}
    add_cases(store, list(refs), refs)

    result = run_crawl(db_url, net, tmp_path, "--browser", timeout=180,
                       HOSTWATCH_BROWSER_TIMEOUT="10", HOSTWATCH_BROWSER_TEMP=str(browser_temp))
    assert result.returncode == 0, result.stderr[-3000:]

    checks = checks_by_url(store)
    stays = checks[host.url("/stays.html")][0]
    assert (stays.verdict, stays.reference_match) == ("online", True), stays.reason
    assert stays.final_url is None and stays.redirect_chain is None
    leaves = checks[host.url("/leaves.html")][0]
    assert leaves.verdict == "redirect_away", leaves.reason
    assert leaves.final_url == host.url("/")


def _fetch_media(net: TestInternet, url: str | None) -> bytes:
    """The media file's bytes, fetched by the test itself (for its hash only)."""
    assert url is not None
    host = url.split("/")[2].split(":")[0]
    address = net.host(host).ip

    async def get() -> bytes:
        async with aiohttp.ClientSession() as session, session.get(
                url.replace(f"//{host}:", f"//{address}:"), headers={"Host": host}) as response:
            return await response.read()
    return asyncio.run(get())


def test_browser_flag_checks_every_case_in_the_browser(store, db_url, net, gallery, tmp_path,
                                                        browser_temp):
    image = net.add_host("plain.test")
    image.route("/a.jpg", Serve(MARKER + b" plain image", content_type="image/jpeg"))
    gallery.item("p", "present")
    image_url = image.url("/a.jpg")
    refs = {image_url: hashlib.sha256(MARKER + b" plain image").hexdigest(),
            gallery.page_url("p"): gallery.media_sha256("p")}
    nowhere = f"http://nosuch.test:{net.port}/x"
    add_cases(store, [*refs, nowhere], refs)

    result = run_crawl(db_url, net, tmp_path, "--browser", timeout=120,
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp))
    assert result.returncode == 0, result.stderr[-3000:]
    checks = checks_by_url(store)
    got = {url: [(c.method, c.verdict) for c in checks[url]] for url in [*refs, nowhere]}
    assert got == {image_url: [("browser", "online")],
                   gallery.page_url("p"): [("browser", "online")],
                   nowhere: [("browser", "nxdomain")]}
    # The image URL itself: the browser was refused its body, the hasher fetched it.
    direct = checks[image_url][0]
    assert direct.reference_match is True and "the URL is media" in (direct.reason or "")
    assert [h.user_agent for h in net.hits if h.path == "/a.jpg"] == [CRAWL_USER_AGENT]


# -- the runtime, in this process -----------------------------------------------------


@pytest.fixture
def resolver(net: TestInternet) -> Resolver:
    return Resolver((net.nameserver,), timeout=2)


@contextlib.asynccontextmanager
async def _checker(resolver: Resolver, temp: Path, **settings: object
                   ) -> AsyncIterator[BrowserChecker]:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=GuardedResolver(resolver, ALLOW),
                                       use_dns_cache=False), auto_decompress=False)
    options = {"timeout": 10.0, "settle": 1.0, "temp_root": str(temp)}
    options.update(settings)
    checker = BrowserChecker(BrowserSettings(**options), session, resolver,  # type: ignore[arg-type]
                             ALLOW, user_agent=USER_AGENT, max_body=1 << 20, max_redirects=5,
                             timeout=5)
    try:
        yield checker
    finally:
        await checker.close()
        await session.close()


async def _verdict(checker: BrowserChecker, gallery: JsGallery, item: str) -> str:
    reference = Reference(sha256=gallery.media_sha256(item))
    result = await checker.check(gallery.page_url(item), reference=reference, removed=REMOVED)
    decision, _ = decide(result.visit, result.hashes, reference=reference)
    return decision.verdict.value


def test_browser_restarts_after_n_pages(resolver, gallery, browser_temp):
    for item in ("a", "b", "c", "d", "e"):
        gallery.item(item, "present")

    async def go() -> tuple[list[str], int]:
        async with _checker(resolver, browser_temp, restart_after=2) as checker:
            verdicts = [await _verdict(checker, gallery, i) for i in ("a", "b", "c", "d", "e")]
            return verdicts, checker.pool.launches

    verdicts, launches = asyncio.run(go())
    assert verdicts == ["online"] * 5
    assert launches == 3  # pages 1-2, 3-4, 5


def _chromium_pids(root: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(root).encode() in cmdline and b"chromium" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_a_killed_browser_is_replaced_and_the_next_page_is_checked(resolver, gallery, browser_temp):
    gallery.item("a", "present")
    gallery.item("b", "removed")

    async def go() -> tuple[str, str, int]:
        async with _checker(resolver, browser_temp) as checker:
            first = await _verdict(checker, gallery, "a")
            assert checker.pool.root is not None
            pids = _chromium_pids(checker.pool.root)
            assert pids, "no Chromium process found under the pool's directory"
            for pid in pids:
                with_suppress_kill(pid)
            await asyncio.sleep(0.5)
            second = await _verdict(checker, gallery, "b")
            return first, second, checker.pool.launches

    first, second, launches = asyncio.run(go())
    assert (first, second) == ("online", "placeholder")
    assert launches == 2


def with_suppress_kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def test_a_page_that_never_finishes_is_bounded_by_the_timeout(resolver, gallery, browser_temp):
    gallery.item("h", "hang")
    gallery.item("p", "present")

    async def go() -> tuple[str, float, str]:
        async with _checker(resolver, browser_temp, timeout=4.0) as checker:
            started = time.monotonic()
            hung = await _verdict(checker, gallery, "h")
            took = time.monotonic() - started
            return hung, took, await _verdict(checker, gallery, "p")

    hung, took, after = asyncio.run(go())
    assert hung == "timeout"
    assert took < 12
    assert after == "online"  # the browser is still usable


def test_without_chromium_browser_checks_fail_clearly_and_http_checks_go_on(
        store, db_url, net, gallery, tmp_path, browser_temp):
    image = net.add_host("plain.test")
    image.route("/a.jpg", Serve(b"plain image", content_type="image/jpeg"))
    gallery.item("p", "present")
    always = _rules(tmp_path, "jsgallery.test")
    add_cases(store, [gallery.page_url("p"), image.url("/a.jpg")])

    result = run_crawl(db_url, net, tmp_path, timeout=120, HOSTWATCH_BROWSER_RULES=always,
                       HOSTWATCH_CHROMIUM=str(tmp_path / "no-chromium"),
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp))
    assert result.returncode == 0, result.stderr[-3000:]
    checks = checks_by_url(store)
    page = checks[gallery.page_url("p")]
    assert [(c.method, c.verdict) for c in page] == [("browser", "bad_response")]
    assert f"Chromium not found at {tmp_path / 'no-chromium'}" in (page[0].reason or "")
    assert "apt-get install chromium" in (page[0].reason or "")
    assert [c.verdict for c in checks[image.url("/a.jpg")]] == ["online"]
    assert result.stderr.count("Chromium not found") == 1  # said once, not per case


def test_no_more_pages_open_at_once_than_the_setting(resolver, gallery, browser_temp):
    """Two pages that never finish, one page at a time: the second waits for
    the first one's timeout, so the pair takes two timeouts, not one."""
    gallery.item("h1", "hang")
    gallery.item("h2", "hang")

    async def go(pages: int) -> tuple[list[str], float]:
        async with _checker(resolver, browser_temp, timeout=2.0, pages=pages) as checker:
            await _verdict(checker, gallery, "h1")  # the browser is up before timing
            started = time.monotonic()
            verdicts = await asyncio.gather(_verdict(checker, gallery, "h1"),
                                            _verdict(checker, gallery, "h2"))
            return list(verdicts), time.monotonic() - started

    one_at_a_time, serial = asyncio.run(go(1))
    two_at_once, parallel = asyncio.run(go(2))
    assert one_at_a_time == two_at_once == ["timeout", "timeout"]
    assert serial >= 4.0
    assert parallel < serial - 1.0


def test_a_worn_browser_is_replaced_even_while_pages_keep_coming(resolver, gallery,
                                                                 browser_temp):
    """Two pages at a time and a steady queue: new pages go to a new browser
    and the worn one closes when its last page is done."""
    items = [f"q{i}" for i in range(8)]
    for item in items:
        gallery.item(item, "present")

    async def go() -> tuple[list[str], int, list[int]]:
        async with _checker(resolver, browser_temp, restart_after=2, pages=2) as checker:
            verdicts = await asyncio.gather(*(_verdict(checker, gallery, i) for i in items))
            assert checker.pool.root is not None
            await asyncio.sleep(1.0)
            return list(verdicts), checker.pool.launches, _main_processes(checker.pool.root)

    verdicts, launches, browsers = asyncio.run(go())
    assert verdicts == ["online"] * len(items)
    assert launches >= 4  # 8 pages, 2 per browser
    assert len(browsers) == 1  # the worn ones are gone; only the last one runs


def _main_processes(root: Path) -> list[int]:
    """Chromium's browser processes (not its renderers and helpers) under ``root``."""
    mains = []
    for pid in _chromium_pids(root):
        with contextlib.suppress(OSError):
            program, _, args = Path(f"/proc/{pid}/cmdline").read_bytes().partition(b"\0")
            if program.endswith(b"/chromium") and b"--type=" not in args:
                mains.append(pid)
    return mains
