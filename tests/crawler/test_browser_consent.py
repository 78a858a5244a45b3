"""Consent walls: the browser rules' actions (click, wait_for), through
`hostwatch crawl --browser` in real Chromium, on the pages of
lab.pages.consent (an overlay, a consent manager's cross-origin frame,
a cookie and a reload; and no wall at all).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kernel.config import KEYS
from lab import TestInternet
from lab.pages.consent import ACCEPT, PHOTO, ConsentSite, Wall, add_consent_site
from tests.crawler.conftest import add_cases, checks_by_url, run_crawl

MARKER = b"HW-MARKER-CONSENT-7a41"
CRAWL_USER_AGENT = KEYS["user_agent"].default
BROWSER_TIMEOUT = "15"  # generous: the machine runs other browsers too

pytestmark = pytest.mark.slow


@pytest.fixture
def site(net: TestInternet) -> ConsentSite:
    return add_consent_site(net, "photos-consent.test", cmp_name="cmp-consent.test",
                            marker=MARKER)


def _rules(tmp_path: Path, host: str, actions: str) -> str:
    path = tmp_path / "browser_rules.toml"
    path.write_text(f'[[host]]\npattern = "{host}"\nbrowser = "always"\n'
                    f"actions = [\n{actions}\n]\n", encoding="utf-8")
    return str(path)


ACCEPT_THEN_PHOTO = f'{{ click = "{ACCEPT}" }},\n{{ wait_for = "{PHOTO}", timeout = 8 }},'


def _crawl(store, db_url, net, tmp_path, browser_temp, site, items, rules=None):
    refs = {site.page_url(item): site.media_sha256(item) for item in items}
    add_cases(store, list(refs), refs)
    extra = {"HOSTWATCH_BROWSER_RULES": rules} if rules else {}
    result = run_crawl(db_url, net, tmp_path, "--browser", timeout=180,
                       HOSTWATCH_BROWSER_TIMEOUT=BROWSER_TIMEOUT, HOSTWATCH_LOG_LEVEL="DEBUG",
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp), **extra)
    assert result.returncode == 0, result.stderr[-3000:]
    # What a click makes the page show is still never kept: not in the store,
    # the temp directories or the most detailed logs.
    assert not [path for path in [*tmp_path.rglob("*"), *browser_temp.rglob("*")]
                if path.is_file() and MARKER in path.read_bytes()]
    assert MARKER.decode() not in result.stdout + result.stderr
    checks = checks_by_url(store)
    return {item: checks[site.page_url(item)][0] for item in items}


def _media_fetchers(net: TestInternet, item: str) -> list[str]:
    return [hit.user_agent for hit in net.hits if hit.path == f"/m/{item}.jpg"]


def test_without_a_rule_a_consent_wall_reads_as_a_page_without_media(
        store, db_url, net, site, tmp_path, browser_temp):
    """Why the actions exist: read as it loads, each wall shows no photo, and
    the check says "placeholder" (it counts toward a removal that did not
    happen). Without a rule nothing is clicked."""
    for item, wall in {"o": Wall.OVERLAY, "f": Wall.FRAME, "r": Wall.RELOAD}.items():
        site.item(item, wall)
    checks = _crawl(store, db_url, net, tmp_path, browser_temp, site, ["o", "f", "r"])
    for item, check in checks.items():
        assert (check.method, check.verdict) == ("browser", "placeholder"), check.reason
        assert check.reason == "page, run in a browser, shows no media"
        assert _media_fetchers(net, item) == []
    assert not [hit for hit in net.hits if hit.path.startswith("/api/photo/")]
    assert len([hit for hit in net.hits if hit.path == "/cookie/r"]) == 1  # never reloaded


def test_a_consent_click_shows_the_photo_online(store, db_url, net, site, tmp_path,
                                                browser_temp):
    site.item("o", Wall.OVERLAY)
    rules = _rules(tmp_path, site.host.name, ACCEPT_THEN_PHOTO)
    check = _crawl(store, db_url, net, tmp_path, browser_temp, site, ["o"], rules)["o"]

    assert (check.verdict, check.reference_match) == ("online", True), check.reason
    assert check.body_sha256 == site.media_sha256("o")
    assert check.reason == (f"page shows {site.media_url('o')}: matches the reference hash; "
                            f"consent actions: clicked {ACCEPT}, wait_for {PHOTO}: seen")
    # Clicked or not, the browser never loads the photo: the hasher fetched it.
    assert _media_fetchers(net, "o") == [CRAWL_USER_AGENT]


def test_a_consent_button_in_a_consent_managers_frame_is_clicked(
        store, db_url, net, site, tmp_path, browser_temp):
    """The banner is an iframe from another host: the button is looked for in
    every frame, and the note says which origin it was clicked in."""
    site.item("f", Wall.FRAME)
    rules = _rules(tmp_path, site.host.name, ACCEPT_THEN_PHOTO)
    check = _crawl(store, db_url, net, tmp_path, browser_temp, site, ["f"], rules)["f"]

    assert (check.verdict, check.reference_match) == ("online", True), check.reason
    frame_origin = site.cmp.url("/").rstrip("/")
    assert f"clicked {ACCEPT} in a frame from {frame_origin}" in (check.reason or "")
    assert [hit.path for hit in net.hits if hit.host == site.cmp.name] == ["/banner"]
    assert _media_fetchers(net, "f") == [CRAWL_USER_AGENT]


def test_a_consent_click_that_sets_a_cookie_and_reloads_reads_the_new_page(
        store, db_url, net, site, tmp_path, browser_temp):
    """The click reloads the page, which the server now sends with its photo:
    the new document is read, and a reload of the same URL is no redirect."""
    site.item("r", Wall.RELOAD)
    rules = _rules(tmp_path, site.host.name, ACCEPT_THEN_PHOTO)
    check = _crawl(store, db_url, net, tmp_path, browser_temp, site, ["r"], rules)["r"]

    assert (check.verdict, check.reference_match) == ("online", True), check.reason
    assert f"clicked {ACCEPT} (the page loaded a new document)" in (check.reason or "")
    assert check.final_url is None and check.redirect_chain is None
    assert len([hit for hit in net.hits if hit.path == "/cookie/r"]) == 2  # the wall, the page
    assert _media_fetchers(net, "r") == [CRAWL_USER_AGENT]


def test_actions_that_find_nothing_leave_the_page_to_be_read_as_it_is(
        store, db_url, net, site, tmp_path, browser_temp):
    """A stale rule (the site renamed its button): a page without a wall (a
    returning visitor's) is still read and online; the wall stays and the
    page shows no photo. Both reasons say what the actions did not find."""
    site.item("open", Wall.NONE)
    site.item("o", Wall.OVERLAY)
    rules = _rules(tmp_path, site.host.name,
                   '{ click = "button#accept-everything", timeout = 1 },\n'
                   f'{{ wait_for = "{PHOTO}", timeout = 1 }},')
    checks = _crawl(store, db_url, net, tmp_path, browser_temp, site, ["open", "o"], rules)

    nothing = "click button#accept-everything: nothing to click in 1 s"
    shown = checks["open"]
    assert (shown.verdict, shown.reference_match) == ("online", True), shown.reason
    assert shown.reason == (f"page shows {site.media_url('open')}: matches the reference hash; "
                            f"consent actions: {nothing}, wait_for {PHOTO}: seen")
    walled = checks["o"]
    assert walled.verdict == "placeholder", walled.reason
    assert walled.reason == ("page, run in a browser, shows no media; consent actions: "
                             f"{nothing}, wait_for {PHOTO}: not seen in 1 s")
