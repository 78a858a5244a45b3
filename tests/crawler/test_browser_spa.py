"""Single-page apps (#11, point 5): a reported URL whose fragment is a route
(``#/photo/21``, ``#!/item/9``) is its own case, opened in real Chromium with
its route; plain HTTP checks request the document without it. Through
`hostwatch import` and `hostwatch crawl`, as an operator runs them.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.browser.decide import PageVisit, decide, route_away
from lab import Redirect, Serve, TestInternet, marker_body
from lab.pages.spa import APP_PATH, SpaApp, add_spa
from store import Case, Store
from tests.crawler.conftest import checks_by_url, crawl_env, run_crawl

MARKER = b"HW-MARKER-SPA-7d2f"



@pytest.fixture
def app(net: TestInternet) -> SpaApp:
    spa = (add_spa(net, "spa.test", marker=MARKER)
           .photo(21).photo(22, changed=True).photo(23, gone_home=True).photo(9))
    spa.host.route("/old/", Redirect(APP_PATH, 301))  # the app moved; routes stay
    return spa


def _import(db_url: str, net: TestInternet, workdir: Path,
            reports: Mapping[str, tuple[str, str | None]]) -> None:
    """``hostwatch import`` of ``reports``: report id -> (URL as reported, sha256)."""
    lines = ["id,url,category,reported_at,sha256"]
    lines += [f"{key},{url},csam,2026-12-01T10:00:00Z,{sha or ''}"
              for key, (url, sha) in reports.items()]
    path = workdir / "reports.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "hostwatch", "--db", db_url, "import", str(path)],
        env=crawl_env(net, workdir), cwd=workdir, capture_output=True, text=True, timeout=60,
        check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _cases(store: Store) -> dict[str, tuple[str, str]]:
    """Report id -> (url as reported, normal form)."""
    with store.session() as session:
        return {key: (url, normal) for key, url, normal in session.execute(
            select(Case.external_id, Case.url, Case.url_normalised))}


@pytest.mark.slow
def test_each_reported_route_is_checked_in_the_browser_at_its_route(
        store, db_url, net, app, tmp_path, browser_temp):
    """Two routes of one app are two cases, each opened with its own route:
    the photo still shown is online, the replaced one changed, a hash-bang
    route is read too, an unknown route shows "not found" (placeholder), and
    an app that goes to its home route by itself has sent the reader away.
    Opened without the route (the app's start page, a list of thumbnails)
    every one of them would read "changed"."""
    reports = {
        "shown": (app.url("/photo/21"), app.media_sha256(21)),
        "replaced": (app.url("/photo/22"), app.media_sha256(22)),
        "hashbang": (app.url("!/item/9"), app.media_sha256(9)),
        "unknown": (app.url("/photo/99"), app.media_sha256(21)),
        "home": (app.url("/photo/23"), app.media_sha256(23)),
        # As reported: upper-case scheme and host; kept so in cases.url.
        "spelled": (app.url("/photo/21").replace("http://spa.test", "HTTP://SPA.TEST"),
                    app.media_sha256(21)),
        # Redirected to the app's new place: the browser keeps the route.
        "moved": (app.url("/photo/21", path="/old/"), app.media_sha256(21)),
    }
    _import(db_url, net, tmp_path, reports)

    cases = _cases(store)
    assert cases["spelled"] == (reports["spelled"][0], app.url("/photo/21"))
    assert {key: normal for key, (_, normal) in cases.items()} == {
        key: app.url(route) for key, route in (
            ("shown", "/photo/21"), ("replaced", "/photo/22"), ("hashbang", "!/item/9"),
            ("unknown", "/photo/99"), ("home", "/photo/23"), ("spelled", "/photo/21"))} | {
        "moved": app.url("/photo/21", path="/old/")}

    result = run_crawl(db_url, net, tmp_path, "--browser", timeout=240,
                       HOSTWATCH_BROWSER_TIMEOUT="15",  # generous: the machine is busy
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp))
    assert result.returncode == 0, result.stderr[-3000:]

    checks = checks_by_url(store)
    got = {key: [(c.method, c.verdict) for c in checks[url]]
           for key, (url, _) in reports.items()}
    reasons = {key: [c.reason for c in checks[url]] for key, (url, _) in reports.items()}
    assert got == {"shown": [("browser", "online")], "replaced": [("browser", "changed")],
                   "hashbang": [("browser", "online")], "unknown": [("browser", "placeholder")],
                   "home": [("browser", "redirect_away")],
                   "spelled": [("browser", "online")], "moved": [("browser", "online")]}, reasons
    shown = checks[reports["shown"][0]][0]
    assert (shown.reference_match, shown.body_sha256) == (True, app.media_sha256(21))
    assert app.media_url(21) in (shown.reason or "")
    # The check names the case's route; the document it was sent is no redirect.
    assert shown.url == app.url("/photo/21")
    assert (shown.final_url, shown.redirect_chain) == (None, None)
    assert shown.peer_ip == app.host.ip
    replaced = checks[reports["replaced"][0]][0]
    assert replaced.body_sha256 == app.media_sha256(22, "v2")
    assert checks[reports["hashbang"][0]][0].body_sha256 == app.media_sha256(9)
    assert "image not found" in (checks[reports["unknown"][0]][0].reason or "")
    home = checks[reports["home"][0]][0]
    assert "the app left the reported route for its home route" in (home.reason or ""), \
        home.reason
    assert (home.final_url, home.redirect_chain) == (None, None)
    moved = checks[reports["moved"][0]][0]
    assert (moved.final_url, moved.redirect_chain) == (app.url(), [app.host.url("/old/")])
    # The server was asked for the document only, never with a route in it.
    chrome = [h for h in net.hits if "Chrome" in h.user_agent and h.path == APP_PATH]
    assert len(chrome) == len(reports)


@pytest.mark.slow
def test_an_anchor_is_no_route_and_plain_http_checks_every_route(
        store, db_url, net, app, tmp_path):
    """Plain HTTP (the host kept off the browser): "#top" is an anchor, the
    same case URL as the bare document; each route case gets its own check
    of the document, without the fragment, and the check names the route."""
    rules = tmp_path / "browser_rules.toml"
    rules.write_text('[[host]]\npattern = "spa.test"\nbrowser = "never"\n', encoding="utf-8")
    reports = {"a": (app.url("/photo/21"), None), "b": (app.url("/photo/22"), None),
               "top": (app.url() + "#top", None), "bare": (app.url(), None),
               "moved": (app.url("/photo/21", path="/old/"), None)}
    _import(db_url, net, tmp_path, reports)
    cases = _cases(store)
    assert cases["top"] == (app.url() + "#top", app.url())
    assert cases["bare"][1] == app.url()

    result = run_crawl(db_url, net, tmp_path, timeout=120, HOSTWATCH_BROWSER_RULES=str(rules))
    assert result.returncode == 0, result.stderr[-3000:]

    checks = checks_by_url(store)
    got = {key: [(c.method, c.verdict, c.url) for c in checks[url]]
           for key, (url, _) in reports.items()}
    assert got == {"a": [("http", "online", app.url("/photo/21"))],
                   "b": [("http", "online", app.url("/photo/22"))],
                   "top": [("http", "online", app.url())],
                   "bare": [("http", "online", app.url())],
                   "moved": [("http", "online", app.url("/photo/21", path="/old/"))]}
    for key in ("a", "b"):
        check = checks[reports[key][0]][0]
        assert (check.final_url, check.redirect_chain) == (None, None)
    # Redirect hops are what was requested and sent: documents, no route.
    moved = checks[reports["moved"][0]][0]
    assert (moved.final_url, moved.redirect_chain) == (app.url(), [app.host.url("/old/")])
    # One GET of the document per case: the two routes were not taken for one.
    pages = [h for h in net.hits if h.path == APP_PATH and "Chrome" not in h.user_agent]
    assert len(pages) == len(reports)


@pytest.mark.slow
def test_a_route_goes_to_the_browser_without_a_plain_get_first(store, db_url, net, app, tmp_path,
                                                               browser_temp):
    """The operator's usual path (no --browser, the shipped fallback rule): a
    case with a route goes straight to the browser, opened at its own route;
    a plain GET would only get the app's start page, which says nothing
    about the reported item."""
    reports = {"shown": (app.url("/photo/21"), app.media_sha256(21)),
               "replaced": (app.url("/photo/22"), app.media_sha256(22))}
    _import(db_url, net, tmp_path, reports)

    result = run_crawl(db_url, net, tmp_path, timeout=240, HOSTWATCH_BROWSER_TIMEOUT="15",
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp))
    assert result.returncode == 0, result.stderr[-3000:]

    checks = checks_by_url(store)
    got = {key: [(c.method, c.verdict, c.url) for c in checks[url]]
           for key, (url, _) in reports.items()}
    assert got == {"shown": [("browser", "online", app.url("/photo/21"))],
                   "replaced": [("browser", "changed", app.url("/photo/22"))]}
    plain = [h for h in net.hits if h.path == APP_PATH and "Chrome" not in h.user_agent]
    chrome = [h for h in net.hits if h.path == APP_PATH and "Chrome" in h.user_agent]
    assert (len(plain), len(chrome)) == (0, 2)


# An app whose start page carries a logo (so a plain GET of it does not look
# like a shell) and that knows its routes by their exact spelling, as many do
# (location.hash compared as it stands, never decoded).
_LOGO_APP = (b'<!doctype html><html><head><meta charset="utf-8"><title>Tags</title></head>'
             b'<body><img src="/logo.png" alt="logo"><main id="app"></main><script>'
             b'var photos = {"#/tag/red|blue": "/media/t1.jpg", "#!/q/[1]": "/media/t2.jpg"};'
             b'var src = photos[location.hash];'
             b'if (src) { var img = document.createElement("img"); img.src = src;'
             b' document.getElementById("app").appendChild(img); }'
             b"</script></body></html>")


@pytest.mark.slow
def test_the_browser_opens_the_route_as_reported_even_past_a_logo(store, db_url, net, tmp_path,
                                                                   browser_temp):
    """Routes with characters an HTTP library would re-encode ("|", "[") are
    opened exactly as the browser writes them, so the app finds them; and a
    start page with a logo (not a shell to the fallback rule) is no reason
    to judge the route by that start page: each is checked in the browser
    and its photo matches."""
    host = net.add_host("tags.test")
    photos = {"t1": marker_body(f"{MARKER.decode()} tag t1", 4096),
              "t2": marker_body(f"{MARKER.decode()} tag t2", 4096)}
    host.route("/tags/", Serve(_LOGO_APP, content_type="text/html; charset=utf-8"))
    host.route("/logo.png", Serve(marker_body("logo", 512), content_type="image/png"))
    for name, body in photos.items():
        host.route(f"/media/{name}.jpg", Serve(body, content_type="image/jpeg"))
    reports = {"pipe": (host.url("/tags/") + "#/tag/red|blue",
                        hashlib.sha256(photos["t1"]).hexdigest()),
               "bracket": (host.url("/tags/") + "#!/q/[1]",
                           hashlib.sha256(photos["t2"]).hexdigest())}
    _import(db_url, net, tmp_path, reports)

    result = run_crawl(db_url, net, tmp_path, timeout=240, HOSTWATCH_BROWSER_TIMEOUT="15",
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp))
    assert result.returncode == 0, result.stderr[-3000:]

    checks = checks_by_url(store)
    got = {key: [(c.method, c.verdict, c.reference_match) for c in checks[url]]
           for key, (url, _) in reports.items()}
    reasons = {key: [c.reason for c in checks[url]] for key, (url, _) in reports.items()}
    assert got == {"pipe": [("browser", "online", True)],
                   "bracket": [("browser", "online", True)]}, reasons


APP = "https://spa.example/app/"


@pytest.mark.parametrize(("reported", "address", "final_url", "away"), [
    # The app stayed on the reported route, however it spells it.
    (APP + "#/photo/21", APP + "#/photo/21", None, None),
    (APP + "#/photo/21", APP + "#!/photo/21/", None, None),
    (APP + "#!item/9", APP + "#!/item/9", None, None),
    (APP + "#/", APP, None, None),
    # Home and login routes: away, as an HTTP redirect to them would be.
    (APP + "#/photo/23", APP + "#/", None, "its home route"),
    (APP + "#!/photo/23", APP + "#!", None, "its home route"),
    (APP + "#/photo/23", APP, None, "its home route"),
    (APP + "#/photo/23", APP + "#/login?next=%2Fphoto%2F23", None, "a login route"),
    # Another item's route: the page is judged by what it shows.
    (APP + "#/photo/23", APP + "#/photo/24", None, None),
    # No route reported: an app that writes "#/" on load is not away.
    (APP, APP + "#/", None, None),
    # Another document, by redirect: the redirect rules decide (classify);
    # a path written with the History API is not read.
    ("https://spa.example/old/#/photo/1", APP + "#/", APP, "its home route"),
    (APP + "#/photo/1", "https://spa.example/photo/1", None, None),
    (APP + "#/photo/1", None, None, None),
])
def test_an_app_that_leaves_the_reported_route(reported, address, final_url, away):
    visit = PageVisit(url=reported, status=200, address=address, final_url=final_url,
                      redirect_chain=(final_url,) if final_url else (),
                      content_type="text/html", media=("https://spa.example/m/1.jpg",))
    assert route_away(visit) == away
    decision, _ = decide(visit, (), reference=None)
    if away:
        assert decision.verdict.value == "redirect_away"
        assert decision.reason == f"the app left the reported route for {away}: {reported}"
    else:
        assert decision.verdict.value != "redirect_away"
