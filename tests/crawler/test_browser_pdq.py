"""PDQ in browser checks (#12): the same picture, re-encoded, shown by a page
that only shows its media once its script has run, is still served.

Through `hostwatch crawl` in real Chromium, on pages of the local test
internet whose script puts the picture in (a shell without it for a plain
GET): a WebP of the reported JPEG is ``reencoded`` with its PDQ and distance
recorded; another picture is ``changed``; a re-encoded copy shown from a
``data:`` or a ``blob:`` URL (read in the page) is ``reencoded``; a
"removed" notice beside a re-encoded copy does not take the picture down;
and a case without a reference PDQ learns one from a browser check that
found the reported file, then recognises a re-encoding in a later round.
The pictures are lab.images (made in memory, served from memory).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.perceptual import pdq_of_image
from kernel.model import PdqSource
from lab import REMOVED_SELECTOR, REMOVED_TEXT, Serve, TestInternet
from lab.hosts import Host
from lab.images import CONTENT_TYPES, reported, variants
from store import Case, Store
from tests.crawler.conftest import add_cases, checks_by_url, run_crawl

pytestmark = pytest.mark.slow

HOST = "pdq-gallery.test"
MAX_PIXELS = 50_000_000


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _page(source: str, *, notice: bool = False) -> bytes:
    """A gallery page whose script shows one picture (``source``: a JS
    expression for its src) a moment after it loaded, and the host's
    "removed" notice beside it when ``notice``."""
    removed = (f'<div class="{REMOVED_SELECTOR.split(".", 1)[1]}">{REMOVED_TEXT}</div>'
               if notice else "")
    return (f'<!doctype html><title>gallery</title><main id="g">{removed}</main><script>'
            f'setTimeout(() => {{ const img = document.createElement("img");'
            f' img.src = {source}; document.getElementById("g").append(img); }}, 50);'
            f'</script>').encode()


def _bytes_js(body: bytes) -> str:
    """JS for ``body`` as a Uint8Array (built in the page, from base64)."""
    encoded = json.dumps(base64.b64encode(body).decode())
    return f"Uint8Array.from(atob({encoded}), (c) => c.charCodeAt(0))"


def _serve_picture(host: Host, path: str, body: bytes | list[bytes], kind: str) -> None:
    bodies = body if isinstance(body, list) else [body]
    host.route(path, [Serve(b, content_type=CONTENT_TYPES[kind]) for b in bodies])


def _rules(tmp_path: Path) -> str:
    path = tmp_path / "browser_rules.toml"
    path.write_text(f'[[host]]\npattern = "{HOST}"\nbrowser = "always"\n'
                    f'removed_texts = ["{REMOVED_TEXT}"]\n'
                    f'removed_selectors = ["{REMOVED_SELECTOR}"]\n', encoding="utf-8")
    return str(path)


def _crawl(db_url: str, net: TestInternet, tmp_path: Path, browser_temp: Path) -> None:
    result = run_crawl(db_url, net, tmp_path, timeout=240,
                       HOSTWATCH_BROWSER_RULES=_rules(tmp_path),
                       HOSTWATCH_BROWSER_TIMEOUT="15",  # generous: the machine is busy
                       HOSTWATCH_BROWSER_TEMP=str(browser_temp),
                       HOSTWATCH_REMOVAL_MIN_HOURS="0")
    assert result.returncode == 0, result.stderr[-3000:]


def _set_reference_pdq(store: Store, urls: list[str], pdq: str) -> None:
    """As an import with the hotline's ``pdq`` column would."""
    with store.transaction() as session:
        for case in session.scalars(select(Case).where(Case.url.in_(urls))):
            case.ref_pdq = pdq
            case.ref_pdq_source = PdqSource.REPORT.value


def test_a_re_encoded_picture_shown_by_a_page_is_still_served(store, db_url, net, tmp_path,
                                                              browser_temp):
    original = reported(1)
    reference_pdq = pdq_of_image(original, MAX_PIXELS).hash
    assert reference_pdq is not None
    made = variants(1)
    host = net.add_host(HOST)
    _serve_picture(host, "/m/a1.webp", made["webp"], "webp")
    _serve_picture(host, "/m/b2.jpg", made["other"], "other")
    _serve_picture(host, "/m/c3-thumb.jpg", made["resized"], "resized")
    pages = {
        "webp": _page('"/m/a1.webp"'),
        "other": _page('"/m/b2.jpg"'),
        "data": _page(json.dumps("data:image/webp;base64,"
                                 + base64.b64encode(made["webp"]).decode())),
        "blob": _page(f"URL.createObjectURL(new Blob([{_bytes_js(made['recompressed'])}],"
                      f' {{type: "image/jpeg"}}))'),
        "notice": _page('"/m/c3-thumb.jpg"', notice=True),
    }
    for name, body in pages.items():
        host.route(f"/g/{name}", Serve(body, content_type="text/html; charset=utf-8"))
    urls = {name: host.url(f"/g/{name}") for name in pages}
    add_cases(store, list(urls.values()), dict.fromkeys(urls.values(), _sha(original)))
    _set_reference_pdq(store, list(urls.values()), reference_pdq)

    _crawl(db_url, net, tmp_path, browser_temp)

    checks = {name: checks_by_url(store)[url] for name, url in urls.items()}
    got = {name: [(c.method, c.verdict) for c in found] for name, found in checks.items()}
    reasons = {name: [c.reason for c in found] for name, found in checks.items()}
    assert got == {"webp": [("browser", "reencoded")], "other": [("browser", "changed")],
                   "data": [("browser", "reencoded")], "blob": [("browser", "reencoded")],
                   "notice": [("browser", "reencoded")]}, reasons
    served = {"webp": made["webp"], "data": made["webp"], "blob": made["recompressed"],
              "notice": made["resized"]}
    for name, body in served.items():
        [check] = checks[name]
        assert check.reference_match is True, name
        assert check.body_sha256 == _sha(body), name
        assert check.body_pdq is not None and len(check.body_pdq) == 64, name
        assert check.pdq_quality is not None and check.pdq_quality >= 50, name
        assert check.pdq_distance is not None and check.pdq_distance <= 31, name
        assert f"PDQ distance {check.pdq_distance} ≤ 31 bits" in (check.reason or ""), name
    [webp] = checks["webp"]
    assert webp.reason.startswith(f"page shows {host.url('/m/a1.webp')}: matches the reference "
                                  "PDQ"), webp.reason
    # The notice does not take the picture down: the reason says it was there too.
    [notice] = checks["notice"]
    assert "it also shows the host's 'removed' text" in (notice.reason or ""), notice.reason
    assert REMOVED_TEXT.lower() in (notice.reason or "").lower(), notice.reason
    # Another picture: compared by PDQ, far away, and the reason says so.
    [other] = checks["other"]
    assert other.reference_match is False
    assert other.body_sha256 == _sha(made["other"])
    assert other.pdq_distance is not None and other.pdq_distance > 31
    assert "another picture: PDQ distance" in (other.reason or ""), other.reason
    with store.session() as session:
        sources = set(session.scalars(select(Case.ref_pdq_source)))
    assert sources == {PdqSource.REPORT.value}  # a reference from the report is kept


def test_a_reference_pdq_learned_in_a_browser_check_recognises_a_later_re_encoding(
        store, db_url, net, tmp_path, browser_temp):
    original = reported(2)
    webp = variants(2)["webp"]
    host = net.add_host(HOST)
    # Round 0: the page shows the reported file; round 1: a WebP of it.
    host.route("/m/d4.jpg", [Serve(original, content_type="image/jpeg"),
                             Serve(webp, content_type="image/webp")])
    host.route("/g/d4", Serve(_page('"/m/d4.jpg"'), content_type="text/html; charset=utf-8"))
    url = host.url("/g/d4")
    add_cases(store, [url], {url: _sha(original)})
    reported_pdq = pdq_of_image(original, MAX_PIXELS).hash

    _crawl(db_url, net, tmp_path, browser_temp)
    [first] = checks_by_url(store)[url]
    assert (first.method, first.verdict, first.reference_match) == ("browser", "online", True)
    assert reported_pdq is not None and first.body_pdq == reported_pdq
    with store.session() as session:
        case = session.scalars(select(Case).where(Case.url == url)).one()
    assert (case.ref_pdq, case.ref_pdq_source, case.ref_pdq_check_id) == (
        first.body_pdq, PdqSource.LEARNED.value, first.id)

    net.round = 1
    _crawl(db_url, net, tmp_path, browser_temp)
    [_, second] = checks_by_url(store)[url]
    assert (second.method, second.verdict, second.reference_match) == (
        "browser", "reencoded", True), second.reason
    assert second.body_sha256 == _sha(webp)
    assert second.pdq_distance is not None and second.pdq_distance <= 31
    assert "matches the reference PDQ" in (second.reason or "")
    with store.session() as session:
        state = session.scalars(select(Case.state).where(Case.url == url)).one()
    assert state == "online"  # re-encoding is not removal
