"""The local test internet's JS gallery (lab/gallery.py).

Plain HTTP sees only shells, JSON and media files; one test drives real
Chromium to show the script really puts the media or the removal notice on
the page. Names are resolved through the test internet's DNS; nothing leaves
127.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import dns.resolver
import pytest

from lab import (
    REMOVED_SELECTOR,
    REMOVED_TEXT,
    ItemState,
    JsGallery,
    TestInternet,
    add_js_gallery,
)
from lab.gallery import POPUP_PATHS, REDIRECT_AFTER_MS

MARKER = b"HW-MARKER-7f3a9c"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SHELL_STATES = [state for state in ItemState if state is not ItemState.HANG]
MEDIA_TAG = re.compile(rb"<\s*(img|video|picture|source)\b", re.IGNORECASE)


@pytest.fixture
def net() -> Iterator[TestInternet]:
    with TestInternet() as running:
        yield running


@pytest.fixture
def gallery(net: TestInternet) -> JsGallery:
    return add_js_gallery(net, "jsgallery.test", network=64501, marker=MARKER)


def fetch(
    net: TestInternet, url: str, user_agent: str = "gallery-test/1"
) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``, its name resolved by the test internet's DNS."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [net.nameserver[0]]
    resolver.port = net.nameserver[1]
    resolver.lifetime = 2.0
    ip = resolver.resolve(parts.hostname, "A")[0].to_text()
    conn = http.client.HTTPConnection(ip, parts.port, timeout=5)
    try:
        conn.request("GET", parts.path or "/", headers={
            "Host": f"{parts.hostname}:{parts.port}", "User-Agent": user_agent})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def api(net: TestInternet, gallery: JsGallery, item_id: str) -> dict[str, object]:
    status, headers, body = fetch(net, gallery.host.url(f"/api/item/{item_id}"))
    assert status == 200 and headers["Content-Type"] == "application/json"
    data = json.loads(body)
    assert isinstance(data, dict)
    return data


# -- pages and the script ------------------------------------------------------


@pytest.mark.parametrize("state", SHELL_STATES)
def test_page_is_a_shell_without_media_that_loads_the_script(
    net: TestInternet, gallery: JsGallery, state: ItemState
) -> None:
    gallery.item("a1", state)
    url = gallery.page_url("a1")
    assert url == f"http://jsgallery.test:{net.port}/g/a1"
    status, headers, body = fetch(net, url)
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"  # a browser asks again every round
    assert MEDIA_TAG.search(body) is None
    assert b"/m/" not in body and MARKER not in body and REMOVED_TEXT.encode() not in body
    assert b'<script src="/static/gallery.js"></script>' in body
    assert b'data-item="a1"' in body


def test_script_is_javascript_that_asks_the_api(net: TestInternet, gallery: JsGallery) -> None:
    status, headers, body = fetch(net, gallery.host.url("/static/gallery.js"))
    assert status == 200
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert b'fetch("/api/item/"' in body
    assert REMOVED_SELECTOR == "div.hw-removed-notice"
    assert b'"hw-removed-notice"' in body


def test_popup_pages_exist(net: TestInternet, gallery: JsGallery) -> None:
    for path in POPUP_PATHS:
        status, headers, body = fetch(net, gallery.host.url(path))
        assert status == 200 and b"Hot deal" in body


# -- the API -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("present", {"media": {"kind": "img", "src": "/m/a1.jpg"}}),
        ("present_video", {"media": {"kind": "video", "src": "/m/a1.mp4"}}),
        ("present_background", {"media": {"kind": "background", "src": "/m/a1.jpg"}}),
        ("changed", {"media": {"kind": "img", "src": "/m/a1-v2.jpg"}}),
        ("removed", {"notice": "This image has been removed"}),
        ("hang", {}),
        ("popup_redirect", {"popups": ["/promo/1", "/promo/2", "/promo/3"], "redirect": "/",
                            "redirect_after_ms": REDIRECT_AFTER_MS}),
    ],
)
def test_api_describes_what_the_page_shows(
    net: TestInternet, gallery: JsGallery, state: str, expected: dict[str, object]
) -> None:
    gallery.item("a1", state)
    assert api(net, gallery, "a1") == {"id": "a1", "state": state, **expected}


@pytest.mark.parametrize(
    ("state", "path"),
    [
        ("present", "/m/a1.jpg"),
        ("present_video", "/m/a1.mp4"),
        ("present_background", "/m/a1.jpg"),
        ("changed", "/m/a1-v2.jpg"),
        ("removed", None),
        ("hang", None),
        ("popup_redirect", None),
    ],
)
def test_media_url_is_what_the_page_shows_this_round(
    net: TestInternet, gallery: JsGallery, state: str, path: str | None
) -> None:
    gallery.item("a1", state)
    assert gallery.state("a1") == ItemState(state)
    expected = None if path is None else f"http://jsgallery.test:{net.port}{path}"
    assert gallery.media_url("a1") == expected


# -- media files -------------------------------------------------------------------


def test_media_files_have_types_the_marker_and_the_reference_hash(
    net: TestInternet, gallery: JsGallery
) -> None:
    gallery.item("a1", "present").item("b2", "present")
    bodies = {}
    for name, content_type in [("a1.jpg", "image/jpeg"), ("a1-v2.jpg", "image/jpeg"),
                               ("a1.mp4", "video/mp4"), ("b2.jpg", "image/jpeg")]:
        status, headers, body = fetch(net, gallery.host.url(f"/m/{name}"))
        assert (status, headers["Content-Type"]) == (200, content_type), name
        assert headers["Cache-Control"] == "no-store", name  # every fetch is a Hit
        assert MARKER in body, name
        bodies[name] = body
    assert bodies["a1.jpg"].startswith(b"\xff\xd8\xff") and bodies["a1.jpg"].endswith(b"\xff\xd9")
    assert bodies["a1.mp4"][4:8] == b"ftyp"
    assert hashlib.sha256(bodies["a1.jpg"]).hexdigest() == gallery.media_sha256("a1")
    assert len({hashlib.sha256(body).digest() for body in bodies.values()}) == 4


def test_media_bytes_are_deterministic_per_marker_and_id() -> None:
    with TestInternet(networks=()) as first, TestInternet(networks=()) as second:
        one = add_js_gallery(first, "one.test", marker=MARKER).item("a1", "present")
        two = add_js_gallery(second, "two.test", marker=MARKER).item("a1", "removed")
        other = add_js_gallery(second, "other.test", marker=b"HW-MARKER-other")
        other.item("a1", "present")
        assert one.media_sha256("a1") == two.media_sha256("a1") != other.media_sha256("a1")
        video = "/m/a1.mp4"
        assert fetch(first, one.host.url(video))[2] == fetch(second, two.host.url(video))[2]


def test_unknown_items_are_404(net: TestInternet, gallery: JsGallery) -> None:
    gallery.item("a1", "present")
    for path in ("/m/zz.jpg", "/m/zz-v2.jpg", "/m/zz.mp4", "/g/zz", "/api/item/zz"):
        assert fetch(net, gallery.host.url(path))[0] == 404, path
    with pytest.raises(KeyError):
        gallery.media_url("zz")
    with pytest.raises(KeyError):
        gallery.page_url("zz")


def test_hits_tell_which_client_fetched_the_media(net: TestInternet, gallery: JsGallery) -> None:
    gallery.item("a1", "present")
    fetch(net, gallery.page_url("a1"), user_agent="plain-checker/1")
    fetch(net, gallery.host.url("/m/a1.jpg"), user_agent="browser-checker/1")
    media = [hit for hit in net.hits if hit.path == "/m/a1.jpg"]
    assert [(hit.host, hit.ip, hit.user_agent) for hit in media] == [
        ("jsgallery.test", gallery.host.ip, "browser-checker/1")]


# -- rounds ------------------------------------------------------------------------


def test_states_follow_the_rounds_and_the_last_repeats(
    net: TestInternet, gallery: JsGallery
) -> None:
    gallery.item("a1", ("present", "changed", "removed"))
    original = gallery.media_sha256("a1")
    seen = []
    for round_ in range(4):
        net.round = round_
        assert gallery.media_sha256("a1") == original
        seen.append((api(net, gallery, "a1")["state"], gallery.media_url("a1")))
    base = f"http://jsgallery.test:{net.port}"
    assert seen == [("present", f"{base}/m/a1.jpg"), ("changed", f"{base}/m/a1-v2.jpg"),
                    ("removed", None), ("removed", None)]
    # The files stay reachable: only the page decides what it shows.
    assert fetch(net, gallery.host.url("/m/a1.jpg"))[0] == 200


# -- hang ----------------------------------------------------------------------------


def _open_hang(net: TestInternet, gallery: JsGallery) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection((gallery.host.ip, net.port), timeout=5)
    sock.sendall(b"GET /g/h1 HTTP/1.1\r\nHost: jsgallery.test\r\n\r\n")
    received = b""
    while b"Loading" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"closed early after {received!r}"
        received += chunk
    return sock, received


def test_hang_sends_half_a_page_then_stalls_until_its_bound(net: TestInternet) -> None:
    gallery = add_js_gallery(net, marker=MARKER, hang_seconds=0.6)
    gallery.item("h1", "hang")
    started = time.monotonic()
    sock, received = _open_hang(net, gallery)
    with sock:
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Transfer-Encoding: chunked" in received
        sock.settimeout(5)
        assert sock.recv(65536) == b""  # nothing more, then the server closes
    elapsed = time.monotonic() - started
    assert 0.5 < elapsed < 3
    assert b"</html>" not in received and not received.endswith(b"0\r\n\r\n")
    assert b"<script" not in received


def test_hang_ends_when_the_client_goes_away(net: TestInternet) -> None:
    gallery = add_js_gallery(net, marker=MARKER, hang_seconds=30)
    gallery.item("h1", "hang")
    sock, _ = _open_hang(net, gallery)
    with sock:
        sock.shutdown(socket.SHUT_WR)  # the client is done: a FIN, as when a tab closes
        started = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(65536) == b""
        assert time.monotonic() - started < 2


# -- arguments -----------------------------------------------------------------------


def test_bad_arguments_are_refused(net: TestInternet, gallery: JsGallery) -> None:
    with pytest.raises(ValueError):
        gallery.item("a1", "gone")
    with pytest.raises(ValueError):
        gallery.item("a1", ())
    with pytest.raises(ValueError):
        gallery.item("../a1", "present")
    with pytest.raises(ValueError):
        add_js_gallery(net, "other.test", marker="HW-MÄRKER".encode())
    with pytest.raises(ValueError):
        add_js_gallery(net, "other.test", hang_seconds=0)


# -- a real browser --------------------------------------------------------------------


def test_chromium_shows_the_media_then_the_removal_notice(
    net: TestInternet, gallery: JsGallery
) -> None:
    from playwright.async_api import async_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make install`"
    gallery.item("a1", ("present", "removed"))
    shown = gallery.media_url("a1")
    rule = f"--host-resolver-rules=MAP {gallery.host.name} {gallery.host.ip}"

    async def look() -> list[tuple[list[str], int, list[str]]]:
        seen = []
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM,
                                              args=[*CHROMIUM_FLAGS, rule])
            try:
                page = await browser.new_page()
                for round_ in (0, 1):
                    net.round = round_
                    await page.goto(gallery.page_url("a1"))
                    await page.wait_for_selector(f"#gallery img, {REMOVED_SELECTOR}",
                                                 timeout=5000)
                    sources = await page.eval_on_selector_all(
                        "img", "imgs => imgs.map(img => img.src)")
                    notices = await page.locator(REMOVED_SELECTOR).all_inner_texts()
                    seen.append((sources, await page.locator("video").count(), notices))
            finally:
                await browser.close()
        return seen

    present, removed = asyncio.run(look())
    assert present == ([shown], 0, [])
    assert removed == ([], 0, [REMOVED_TEXT])
    media_hits = [hit for hit in net.hits if hit.path.startswith("/m/")]
    assert [(hit.path, hit.round) for hit in media_hits] == [("/m/a1.jpg", 0)]
    assert "Chrome" in media_hits[0].user_agent
