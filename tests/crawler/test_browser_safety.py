"""Proof that browser checks keep none of the material (issue #5, point 5).

The JS gallery serves media whose bytes hold a marker made for this test
run. After browser checks of pages that show that media (as an image, a
video and a CSS background, and a changed image), the marker must be
nowhere: not in the data directory (the store), the crawl's temp directory,
the browser's temporary directory, the browser's profile (looked at while
the browser still runs, before it is removed) nor the logs. And the media
must have reached the server only from hostwatch's in-memory hasher, never
from the browser.

Inline media (#11) are the exception to "never from the browser": a data:
URI is in the page itself and a blob: URL's bytes come in the page's own
JSON. Their bytes, read in the page and hashed in memory, must leave no
trace either: neither the marker nor its base64 form (what a data: URL
would carry) on disk, in the profile while the browser runs, in the logs or
in any table of the store (a check's reason names such media without its
content).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import uuid
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import MetaData, select

from crawler.browser.check import BrowserChecker
from crawler.browser.pool import BrowserSettings
from crawler.browser.rules import Removed
from crawler.perceptual import Reference
from crawler.resolver import GuardedResolver
from kernel.config import KEYS
from lab import REMOVED_SELECTOR, REMOVED_TEXT, JsGallery, TestInternet, add_js_gallery
from lab.gallery import _mp4
from lab.pages.hidden import HiddenSite, add_hidden_site
from outbound.dns import Resolver
from outbound.guard import parse_networks
from tests.crawler.conftest import add_cases, checks_by_url, run_crawl

ALLOW = parse_networks(["127.0.0.0/8"])
SHOWN = {"p": "present", "v": "present_video", "b": "present_background", "c": "changed"}
INLINE = {"data": "online", "data-csp": "online", "data-changed": "changed", "blob": "online",
          "blob-changed": "changed"}
CRAWL_USER_AGENT = KEYS["user_agent"].default

pytestmark = pytest.mark.slow


@pytest.fixture
def marker() -> bytes:
    return f"HW-NO-MATERIAL-{uuid.uuid4().hex}".encode()


@pytest.fixture
def gallery(net: TestInternet, marker: bytes) -> JsGallery:
    gallery = add_js_gallery(net, "jsgallery.test", marker=marker)
    for item, state in SHOWN.items():
        gallery.item(item, state)
    gallery.item("r", "removed")
    return gallery


def _refs(gallery: JsGallery, marker: bytes) -> dict[str, str]:
    refs = {gallery.page_url(i): gallery.media_sha256(i) for i in (*SHOWN, "r")}
    refs[gallery.page_url("v")] = hashlib.sha256(_mp4(marker, "v")).hexdigest()
    return refs


def _files_with(marker: bytes | list[bytes], *roots: Path) -> list[Path]:
    markers = marker if isinstance(marker, list) else [marker]
    found = []
    for root in roots:
        if not root.exists():
            continue
        for path in [root] if root.is_file() else root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    content = path.read_bytes()
                except OSError:
                    continue
                if any(m in content for m in markers):
                    found.append(path)
    return found


def _forms(marker: bytes) -> list[bytes]:
    """The marker, and what base64 makes of it at each of the three offsets it
    can have in a longer body (the part made of marker bytes only)."""
    forms = [marker]
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + marker)
        forms.append(encoded[-(-pad // 3) * 4:(pad + len(marker)) // 3 * 4])
    return forms


def _crawl(store, db_url, net, gallery, marker, tmp_path, browser_temp):
    add_cases(store, list(_refs(gallery, marker)), _refs(gallery, marker))
    result = run_crawl(db_url, net, tmp_path, "--browser", timeout=180,
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp), HOSTWATCH_LOG_LEVEL="DEBUG")
    assert result.returncode == 0, result.stderr[-3000:]
    checks = checks_by_url(store)
    verdicts = {url: [c.verdict for c in checks[url]] for url in _refs(gallery, marker)}
    # The checks really saw the media: every shown file was hashed and compared.
    assert verdicts == {gallery.page_url("p"): ["online"], gallery.page_url("v"): ["online"],
                        gallery.page_url("b"): ["online"], gallery.page_url("c"): ["changed"],
                        gallery.page_url("r"): ["placeholder"]}
    return result


def _served(net: TestInternet, gallery: JsGallery, item: str) -> bytes:
    """The media as the server sends it, fetched by the test (kept in memory)."""
    url = gallery.media_url(item)
    assert url is not None
    address = gallery.host.ip

    async def get() -> bytes:
        async with aiohttp.ClientSession() as session, session.get(
                url.replace(f"//{gallery.host.name}:", f"//{address}:"),
                headers={"Host": gallery.host.name}) as response:
            return await response.read()
    return asyncio.run(get())


def test_no_trace_of_the_media_on_disk_or_in_the_logs(store, db_url, net, gallery, marker,
                                                      tmp_path, browser_temp):
    result = _crawl(store, db_url, net, gallery, marker, tmp_path, browser_temp)
    # The marker really is in what the server sends (the search below can find it).
    assert marker in _served(net, gallery, "p")
    assert marker in _served(net, gallery, "c")

    # tmp_path holds the data directory (the store, the lock) and the crawl's TMPDIR.
    home = Path.home()
    places = [tmp_path, browser_temp, home / ".config" / "chromium",
              home / ".cache" / "chromium", home / "Downloads", *Path("/dev/shm").glob("hwb-*")]
    assert _files_with(marker, *places) == []
    assert marker.decode() not in result.stdout + result.stderr
    assert "DEBUG" in result.stderr  # the logs searched are the most detailed ones
    assert not any(browser_temp.iterdir())  # and the browser's directory is gone


def test_no_media_request_reaches_the_server_from_the_browser(store, db_url, net, gallery,
                                                               marker, tmp_path, browser_temp):
    _crawl(store, db_url, net, gallery, marker, tmp_path, browser_temp)
    hits = [h for h in net.hits if h.host == "jsgallery.test"]
    media = [h for h in hits if h.path.startswith("/m/")]
    # The browser did run the pages (it fetched the shells, scripts and APIs)...
    assert {h.path for h in hits if "Chrome" in h.user_agent} >= {
        "/g/p", "/static/gallery.js", "/api/item/p"}
    # ...and every media request came from the hasher, one per file shown.
    assert sorted(h.path for h in media) == ["/m/b.jpg", "/m/c-v2.jpg", "/m/p.jpg", "/m/v.mp4"]
    assert {h.user_agent for h in media} == {CRAWL_USER_AGENT}


def test_the_browser_profile_holds_no_media_while_the_browser_runs(net, gallery, marker,
                                                                   browser_temp):
    resolver = Resolver((net.nameserver,), timeout=2)
    removed = Removed((REMOVED_TEXT.lower(),), (REMOVED_SELECTOR,))

    async def go() -> tuple[list[Path], list[Path], list[Path], Path]:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=GuardedResolver(resolver, ALLOW),
                                           use_dns_cache=False), auto_decompress=False)
        checker = BrowserChecker(BrowserSettings(timeout=8.0, settle=1.0,
                                                 temp_root=str(browser_temp)),
                                 session, resolver, ALLOW, user_agent=CRAWL_USER_AGENT,
                                 max_body=1 << 20, max_redirects=5, timeout=5)
        try:
            for item in (*SHOWN, "r"):
                result = await checker.check(gallery.page_url(item), reference=None,
                                             removed=removed)
                assert result.visit.error is None, result.visit.error_detail
            root = checker.pool.root
            assert root is not None
            profiles = checker.pool.profile_dirs
            files = [p for p in root.rglob("*") if p.is_file()]
            # Before removal: the profile exists, holds files, and none has the marker.
            return profiles, files, _files_with(marker, root), root
        finally:
            await checker.close()
            await session.close()

    profiles, files, with_marker, root = asyncio.run(go())
    assert profiles and any(str(p).startswith(str(profiles[0])) for p in files)
    assert with_marker == []
    assert not root.exists()


@pytest.fixture
def hidden(net: TestInternet, marker: bytes) -> HiddenSite:
    return add_hidden_site(net, marker=marker)


def test_no_trace_of_inline_media_on_disk_in_the_logs_or_the_store(store, db_url, net, hidden,
                                                                   marker, tmp_path,
                                                                   browser_temp):
    refs = {hidden.url(page): hidden.photo_sha256 for page in INLINE}
    add_cases(store, list(refs), refs)
    result = run_crawl(db_url, net, tmp_path, "--browser", timeout=180,
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp), HOSTWATCH_LOG_LEVEL="DEBUG",
                       HOSTWATCH_BROWSER_TIMEOUT="15")
    assert result.returncode == 0, result.stderr[-3000:]
    checks = checks_by_url(store)
    # The checks really read the inline media: hashed and compared.
    assert {page: [c.verdict for c in checks[hidden.url(page)]] for page in INLINE} == {
        page: [verdict] for page, verdict in INLINE.items()}
    forms = _forms(marker)
    served = base64.b64encode(hidden.photo)
    assert marker in hidden.photo and any(form in served for form in forms[1:])

    home = Path.home()
    places = [tmp_path, browser_temp, home / ".config" / "chromium",
              home / ".cache" / "chromium", home / "Downloads", *Path("/dev/shm").glob("hwb-*")]
    assert _files_with(forms, *places) == []
    logs = (result.stdout + result.stderr).encode()
    assert "DEBUG" in result.stderr
    assert [form for form in forms if form in logs] == []
    assert b"data:image/jpeg;base64" not in logs
    # Every value in every table of the store (PostgreSQL keeps no file here).
    tables = MetaData()
    tables.reflect(store.engine)
    with store.engine.connect() as connection:
        values = repr([connection.execute(select(table)).all()
                       for table in tables.sorted_tables]).encode()
    assert [form for form in forms if form in values] == []
    assert b";base64," not in values


def test_playwrights_debug_switches_never_print_inline_media(store, db_url, net, hidden, marker,
                                                             tmp_path, browser_temp):
    # DEBUG=pw:protocol makes Playwright's driver print every message it
    # exchanges with Chromium, the inline media bytes read in the page among
    # them (as base64); DEBUG_FILE would write them to a file.
    pages = ["data", "blob"]
    refs = {hidden.url(page): hidden.photo_sha256 for page in pages}
    add_cases(store, list(refs), refs)
    debug_file = tmp_path / "pw-debug.log"
    result = run_crawl(db_url, net, tmp_path, "--browser", timeout=180,
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp), HOSTWATCH_BROWSER_TIMEOUT="15",
                       DEBUG="pw:protocol,pw:channel,pw:api", DEBUG_FILE=str(debug_file),
                       PWDEBUG="console", DEBUGP="1")
    assert result.returncode == 0, result.stderr[-3000:]
    checks = checks_by_url(store)
    # The checks really read the inline media: hashed and matched.
    assert {page: [c.verdict for c in checks[hidden.url(page)]] for page in pages} == {
        page: ["online"] for page in pages}
    forms = _forms(marker)
    logs = (result.stdout + result.stderr).encode()
    assert [form for form in forms if form in logs] == []
    assert b"data:image/jpeg;base64" not in logs
    assert _files_with(forms, tmp_path, browser_temp) == []


def test_the_browser_profile_holds_no_inline_media_while_the_browser_runs(net, hidden, marker,
                                                                          browser_temp):
    resolver = Resolver((net.nameserver,), timeout=2)

    async def go() -> tuple[list[str], list[Path], Path]:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=GuardedResolver(resolver, ALLOW),
                                           use_dns_cache=False), auto_decompress=False)
        checker = BrowserChecker(BrowserSettings(timeout=15.0, settle=1.0,
                                                 temp_root=str(browser_temp)),
                                 session, resolver, ALLOW, user_agent=CRAWL_USER_AGENT,
                                 max_body=1 << 20, max_redirects=5, timeout=5)
        try:
            matched = []
            for page in INLINE:
                result = await checker.check(hidden.url(page),
                                             reference=Reference(sha256=hidden.photo_sha256),
                                             removed=Removed())
                matched += [h.url for h in result.hashes if h.sha256 == hidden.photo_sha256]
            root = checker.pool.root
            assert root is not None
            return matched, _files_with(_forms(marker), root), root
        finally:
            await checker.close()
            await session.close()

    matched, with_marker, root = asyncio.run(go())
    assert len(matched) == 3  # data, data-csp and blob: read in the page and hashed
    assert with_marker == []
    assert not root.exists()
