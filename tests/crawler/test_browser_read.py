"""What a browser check reads from a page, the way a person sees it (#11,
points 3 and 4), through `hostwatch crawl --browser` in real Chromium:

- a removal notice in a cross-origin iframe, a closed or an open shadow root
  or an overlay is found, and the reason says where; a hidden notice
  template on a page that shows the photo is not a notice;
- a photo shown from a data: URI or a blob: URL is read in the page, hashed
  and compared like any other media (online; changed for another image),
  and the check names it without its content.

The pages are in lab.pages.hidden.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.browser.read import _Inline, _name, frame_words, media_type
from lab import REMOVED_SELECTOR, REMOVED_TEXT, TestInternet
from lab.pages.hidden import HiddenSite, add_hidden_site
from tests.crawler.conftest import add_cases, checks_by_url, run_crawl

MARKER = b"HW-MARKER-READ-7d31"

pytestmark = pytest.mark.slow


@pytest.fixture
def site(net: TestInternet) -> HiddenSite:
    return add_hidden_site(net, marker=MARKER)


def _crawl(store, db_url, net, site: HiddenSite, pages: list[str], tmp_path: Path,
           browser_temp: Path) -> dict[str, tuple[str, str, str | None]]:
    """Each page's (verdict, reason, body_sha256) after one browser crawl."""
    rules = tmp_path / "browser_rules.toml"
    rules.write_text(f'[[host]]\npattern = "{site.host.name}"\nbrowser = "always"\n'
                     f'removed_texts = ["{REMOVED_TEXT}"]\n'
                     f'removed_selectors = ["{REMOVED_SELECTOR}"]\n', encoding="utf-8")
    refs = {site.url(page): site.photo_sha256 for page in pages}
    add_cases(store, list(refs), refs)
    result = run_crawl(db_url, net, tmp_path, "--browser", timeout=240,
                       HOSTWATCH_BROWSER_RULES=str(rules),
                       HOSTWATCH_BROWSER_TIMEOUT="15",  # generous: the machine is busy
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp))
    assert result.returncode == 0, result.stderr[-3000:]
    checks = checks_by_url(store)
    out = {}
    for page in pages:
        [check] = checks[site.url(page)]
        assert check.method == "browser"
        out[page] = (check.verdict, check.reason or "", check.body_sha256)
    return out


def test_a_notice_is_found_where_a_person_sees_it_and_the_reason_says_where(
        store, db_url, net, site, tmp_path, browser_temp):
    pages = ["iframe-notice", "iframe-shadow", "closed-shadow", "open-shadow", "overlay",
             "hidden-template", "hidden-iframe"]
    got = _crawl(store, db_url, net, site, pages, tmp_path, browser_temp)
    verdicts = {page: verdict for page, (verdict, _, _) in got.items()}
    assert verdicts == {"iframe-notice": "placeholder", "iframe-shadow": "placeholder",
                        "closed-shadow": "placeholder",
                        "open-shadow": "placeholder", "overlay": "placeholder",
                        "hidden-template": "online", "hidden-iframe": "online"}, got
    notice = f"page shows the host's 'removed' text \"{REMOVED_TEXT.lower()}\""
    assert got["iframe-notice"][1] == f"{notice} in a cross-origin iframe ({site.frame_url})"
    assert got["closed-shadow"][1] == f"{notice} in a closed shadow root"
    assert got["iframe-shadow"][1] == (f"{notice} in a closed shadow root in a cross-origin "
                                       f"iframe ({site.notices.url('/n/6')})")
    assert got["open-shadow"][1] == f"{notice} in an open shadow root"
    assert got["overlay"][1] == f"{notice} in an overlay"
    # The hidden template and iframe are on the page, but a person sees the photo.
    for page in ("hidden-template", "hidden-iframe"):
        assert got[page][2] == site.photo_sha256, page
        assert "matches the reference hash" in got[page][1], page
    # The notice host's page was loaded (in the frame nobody sees), and read not.
    assert [h.path for h in net.hits if h.host == site.notices.name].count("/n/5") >= 2


def test_data_and_blob_images_are_hashed_in_the_page_and_compared(
        store, db_url, net, site, tmp_path, browser_temp):
    pages = ["data", "data-csp", "data-changed", "blob", "blob-changed"]
    got = _crawl(store, db_url, net, site, pages, tmp_path, browser_temp)
    verdicts = {page: verdict for page, (verdict, _, _) in got.items()}
    assert verdicts == {"data": "online", "data-csp": "online", "data-changed": "changed",
                        "blob": "online", "blob-changed": "changed"}, got
    for page in ("data", "data-csp", "blob"):
        assert got[page][2] == site.photo_sha256, page
    for page in ("data-changed", "blob-changed"):
        assert got[page][2] == site.other_sha256, page
    size = len(site.photo)
    assert got["data"][1] == (f"page shows data:image/jpeg (inline #1, {size} bytes): "
                              "matches the reference hash")
    assert got["data-csp"][1] == got["data"][1]
    assert "data:image/jpeg (inline #1," in got["data-changed"][1]
    assert got["blob"][1].startswith(f"page shows blob:{site.host.url('/')[:-1]}/")
    for _, reason, _ in got.values():
        assert "base64" not in reason and len(reason) < 300


def test_the_reported_photo_still_shown_beats_a_notice_in_a_third_party_frame(
        store, db_url, net, site, tmp_path, browser_temp):
    # A comments widget where one comment reads as the notice takes no photo
    # down; the pages whose notice is all a person sees stay placeholders.
    pages = ["iframe-comments", "iframe-notice", "closed-shadow", "overlay"]
    got = _crawl(store, db_url, net, site, pages, tmp_path, browser_temp)
    verdicts = {page: verdict for page, (verdict, _, _) in got.items()}
    assert verdicts == {"iframe-comments": "online", "iframe-notice": "placeholder",
                        "closed-shadow": "placeholder", "overlay": "placeholder"}, got
    verdict, reason, sha = got["iframe-comments"]
    assert sha == site.photo_sha256
    assert reason == (f"page shows {site.host.url('/m/photo.jpg')}: matches the reference "
                      f"hash; it also shows the host's 'removed' text "
                      f"\"{REMOVED_TEXT.lower()}\" in a cross-origin iframe "
                      f"({site.notices.url('/n/7')})")


def test_hidden_frames_do_not_use_up_the_frames_read(store, db_url, net, site, tmp_path,
                                                     browser_temp):
    # 25 tracking-style frames nobody sees come first; the notice frame after
    # them is still read.
    got = _crawl(store, db_url, net, site, ["many-frames"], tmp_path, browser_temp)
    assert got["many-frames"][:2] == (
        "placeholder", f"page shows the host's 'removed' text \"{REMOVED_TEXT.lower()}\" in a "
                       f"cross-origin iframe ({site.frame_url})"), got


@pytest.mark.parametrize(("url", "words"), [
    ("http://notices.test:8080/n/5", "in a cross-origin iframe (http://notices.test:8080/n/5)"),
    ("http://hidden.test:8080/frame#secret", "in a same-origin iframe (http://hidden.test:8080/frame)"),
    ("http://user:pw@other.test/f", "in a cross-origin iframe (http://other.test/f)"),
    ("data:text/html;base64,SFctTUFSS0VS", "in a data: iframe"),
    ("blob:http://hidden.test:8080/6eb17f28-c3eb-4d81-a8db-21f7afd76054", "in a blob: iframe"),
    ("about:srcdoc", "in an about: iframe"),
    ("", "in an iframe"),
])
def test_an_iframe_is_named_by_its_origin_and_only_an_http_url_is_quoted(url, words):
    assert frame_words(url, "http://hidden.test:8080/p/x") == words


@pytest.mark.parametrize(("declared", "name", "stored"), [
    ("image/png", "data:image/png (inline #1, 9 bytes)", "image/png"),
    ("IMAGE/SVG+XML", "data:image/svg+xml (inline #1, 9 bytes)", "image/svg+xml"),
    ("video/webm", "data:video/webm (inline #1, 9 bytes)", "video/webm"),
    # Text the page wrote in the type's place never reaches a reason or the store.
    ("image/you-have-been-hacked-call-555", "data: URL of another type (inline #1, 9 bytes)",
     None),
    ("text/html", "data: URL of another type (inline #1, 9 bytes)", None),
    ("application/octet-stream", "data: URL of another type (inline #1, 9 bytes)", None),
    ("", "data: URL of another type (inline #1, 9 bytes)", None),
])
def test_a_data_url_is_named_and_typed_only_by_a_known_media_type(declared, name, stored):
    inline = _Inline(None, 0, "data", declared, None)  # type: ignore[arg-type]
    assert _name(inline, 1, 9) == name
    assert media_type(declared) == stored


def test_a_page_cannot_break_or_fool_the_reader_nor_see_it(store, db_url, net, site, tmp_path,
                                                          browser_temp):
    # A hostile page: a DOM getter that throws, replaced Blob/Response/
    # FileReader methods and a rewritten reader object giving other bytes for
    # the data: photo it shows, and scripts that show the notice only to a
    # crawler they detect by its window property or wrapped built-ins. A
    # person sees the photo on each.
    pages = ["getter-throws", "data-blob-override", "data-key-override", "cloak-key",
             "cloak-wrapped"]
    got = _crawl(store, db_url, net, site, pages, tmp_path, browser_temp)
    assert {page: verdict for page, (verdict, _, _) in got.items()} == dict.fromkeys(
        pages, "online"), got
    for page in pages:
        assert got[page][2] == site.photo_sha256, page
        assert "matches the reference hash" in got[page][1], page
