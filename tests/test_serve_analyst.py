"""`hostwatch serve` for analysts (#15 point 2): canned queries and facets on
the analyst views, and the whole UI in real Chromium.

The reported hosts are `.test` names (RFC 2606): they resolve nowhere, and
the only server any page may reach is the one on 127.0.0.1.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import markupsafe
import pytest

from hostwatch.api import open_store
from hostwatch.serve import FACETS, QUERIES
from tests.test_serve import serving

HOSTS = ("img.abuse-host.test", "cdn.bad-host.test", "203.0.113.9")
REPORTS = (
    "id,url,category,reported_at\n"
    "R1,https://img.abuse-host.test/a.jpg,csam,2026-02-01T10:00:00Z\n"
    "R2,http://cdn.bad-host.test/gallery/b.png?x=1&y=<b>,csam,2026-02-01T11:00:00Z\n"
    "R3,http://203.0.113.9:8080/c.mp4,ncii,2026-02-02T09:00:00Z\n"
)
CHECKS = ("case_id,checked_at,verdict\n"
          "R1,2026-02-01T12:00:00Z,online\n"
          "R1,2026-02-03T12:00:00Z,online\n"
          "R2,2026-02-01T12:00:00Z,online\n"
          "R2,2026-02-02T12:00:00Z,http_gone\n")
# R1's second notice is not one the hoster report counts (only a case's first).
NOTICES = ("case_id,sent_at,recipient\nR1,2026-02-01T13:00:00Z,abuse@abuse-host.test\n"
           "R1,2026-02-01T15:00:00Z,abuse@abuse-host.test\n")
ORDERS = ("case_id,issued_at,issuer,deadline_at,legal_basis,reference\n"
          "R2,2026-02-01T14:00:00Z,ATKM,2026-02-02T14:00:00Z,,O-2\n")

# Each canned query: its parameters, and columns its result must have.
RUNS: dict[str, tuple[dict[str, str], list[str]]] = {
    "still_online": ({}, ["hoster", "case_id", "url_defanged", "reported_at", "state"]),
    "deadline_breaches": ({"since": "2026-01-01", "until": "2026-03-01"},
                          ["regime", "month", "deadlines", "breached", "met"]),
    "case_history": ({"case": "1"}, ["kind", "at", "what", "detail", "hoster", "outcome"]),
    "hoster_comparison": ({}, ["section", "hoster", "cases", "online", "removed",
                               "notice_24h_breached"]),
    "reappearances": ({}, ["case_id", "hoster", "url_defanged", "reappearances"]),
    "cases_by_jurisdiction": ({}, ["jurisdiction", "category", "cases", "online"]),
}


@pytest.fixture
def analyst_db(tmp_path: Path) -> str:
    for name, text in {"reports.csv": REPORTS, "checks.csv": CHECKS,
                       "notices.csv": NOTICES, "orders.csv": ORDERS}.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'h.db'}"
    with open_store(db) as hw:
        assert hw.import_reports(tmp_path / "reports.csv").added == 3
        assert hw.import_checks(tmp_path / "checks.csv").added == 4
        assert hw.import_notices(tmp_path / "notices.csv").added == 2
        assert hw.import_orders(tmp_path / "orders.csv").added == 1
        hw.update_states()
    return db


def _no_raw_host(text: str, where: str) -> None:
    for host in HOSTS:
        assert host not in text, f"{where}: {host} appears as it is"


def test_every_canned_query_runs_and_shows_no_reported_host(analyst_db):
    assert set(RUNS) == set(QUERIES)
    with serving(analyst_db) as base, httpx.Client(base_url=base, timeout=10) as client:
        database = client.get("/hostwatch")
        assert database.status_code == 200
        for query in QUERIES.values():
            assert str(markupsafe.escape(query["title"])) in database.text
        rows: dict[str, list[list[object]]] = {}
        for name, (params, columns) in RUNS.items():
            page = client.get(f"/hostwatch/{name}", params=params)
            assert page.status_code == 200, (name, page.text[:500])
            assert str(markupsafe.escape(QUERIES[name]["title"])) in page.text
            _no_raw_host(page.text, name)
            data = client.get(f"/hostwatch/{name}.json", params=params)
            assert data.status_code == 200, (name, data.text[:500])
            body = data.json()
            assert set(columns) <= set(body["columns"]), (name, body["columns"])
            rows[name] = body["rows"]
            _no_raw_host(data.text, f"{name}.json")
        # R1 online, R2 gone once (pending removal); R3 never checked.
        assert sorted(row[3] for row in rows["still_online"]) == [1, 2]
        assert sum(row[2] for row in rows["cases_by_jurisdiction"]) == 3
        kinds = [row[0] for row in rows["case_history"]]
        assert kinds[0] == "report" and kinds.count("check") == 2 and "notice" in kinds
        assert rows["deadline_breaches"], rows
        # A case id, in a view or a query result, leads to the case's history.
        for path in ("/hostwatch/analyst_cases", "/hostwatch/still_online"):
            assert '<a href="/hostwatch/case_history?case=1">1</a>' in client.get(path).text, path
        # Empty bounds are allowed: every deadline the report counts (R1's first
        # notice, due 2026-02-02 13:00; R2's ATKM order, due at its 12-hour cap,
        # 02:00), not R1's second notice.
        def due(since: str, until: str) -> int:
            found = client.get("/hostwatch/deadline_breaches.json",
                               params={"since": since, "until": until})
            assert found.status_code == 200, found.text[:300]
            return sum(row[2] for row in found.json()["rows"])

        assert due("", "") == 2
        # Bounds are times, whatever their spelling, not text.
        assert due("2026-02-02T02:30:00Z", "") == 1
        assert due("2026-02-02 02:30", "2026-02-02T13:00:00+00:00") == 0
        assert due("2026-02-02T03:00:00+01:00", "2026-02-02T14:00:00+01:00") == 1
        assert due("2026-02-02", "2026-02-03") == 2


def test_analyst_views_open_with_their_facets(analyst_db):
    with serving(analyst_db) as base, httpx.Client(base_url=base, timeout=10) as client:
        for view, facets in FACETS.items():
            page = client.get(f"/hostwatch/{view}")
            assert page.status_code == 200, (view, page.text[:500])
            for facet in facets:
                assert f'data-column="{facet}"' in page.text, (view, facet)
            _no_raw_host(page.text, view)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
DATASETTE = "https://datasette.io"  # the footer's "Powered by Datasette"
# Every URL an element would load or lead to.
URLS_JS = """() => [...document.querySelectorAll(
    'a[href], img[src], iframe[src], script[src], link[href], source[src], video[src],'
    + ' audio[src], embed[src], object[data], form[action]')]
  .map(e => e.href || e.src || e.data || e.action || '')"""


def test_the_ui_in_chromium_reaches_nothing_but_the_server(analyst_db, tmp_path):
    from playwright.sync_api import Page, sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make install`"
    with serving(analyst_db) as base, sync_playwright() as p:
        origin = base.rstrip("/")
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(accept_downloads=True)
            page = context.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            visited: list[str] = []

            def check(page: Page) -> None:
                visited.append(page.url)
                for url in page.evaluate(URLS_JS):
                    parts = urlsplit(url)
                    if any(host in (parts.hostname or "") for host in HOSTS):
                        pytest.fail(f"{page.url}: an element leads to {url}")
                    if parts.scheme in ("http", "https"):
                        # A link to this server may carry a host in its query
                        # (a facet); beyond it only Datasette's "Powered by" link.
                        assert f"{parts.scheme}://{parts.netloc}" in (origin, DATASETTE), \
                            (page.url, url)
                _no_raw_host(page.locator("body").inner_text(), page.url)

            page.goto(base)
            check(page)
            page.get_by_role("link", name="hostwatch", exact=True).first.click()
            page.wait_for_load_state()
            check(page)
            # A canned query, from the database page.
            page.get_by_role("link", name=QUERIES["still_online"]["title"]).click()
            page.wait_for_load_state()
            assert "/hostwatch/still_online" in page.url
            check(page)
            assert "hxxps://img[.]abuse-host[.]test/a[.]jpg" in page.content()
            # A facet on a view: one click narrows the table.
            page.goto(f"{base}hostwatch/analyst_cases")
            check(page)
            page.locator('.facet-info[data-column="state"] li a').first.click()
            page.wait_for_load_state()
            assert re.search(r"[?&]state=", page.url), page.url
            check(page)
            # A hoster leads to its line in the hoster report, on this server.
            page.goto(f"{base}hostwatch/hoster_comparison")
            page.locator("td.col-hoster a").first.click()
            page.wait_for_load_state()
            assert re.search(r"/-/report#hoster-unknown-[0-9a-f]{8}$", page.url), page.url
            check(page)
            anchor = urlsplit(page.url).fragment
            assert page.locator(f"tr#{anchor}").count() == 1
            assert "hxxps://img[.]abuse-host[.]test/a[.]jpg" in page.content()
            # The CSV export of a view: addresses only defanged.
            page.goto(f"{base}hostwatch/analyst_cases")
            with page.expect_download() as info:
                page.locator('form[action$=".csv"] input[name="_dl"]').check()
                page.locator('form[action$=".csv"] [type="submit"]').click()
            saved = tmp_path / "analyst_cases.csv"
            info.value.save_as(saved)
            exported = saved.read_text(encoding="utf-8")
            table = list(csv.DictReader(io.StringIO(exported)))
            assert len(table) == 3
            _no_raw_host(exported, "analyst_cases.csv")
            assert "hxxps://img[.]abuse-host[.]test/a[.]jpg" in exported
            # A case's history from its id.
            page.goto(f"{base}hostwatch/analyst_cases")
            page.locator("td.col-case_id a").first.click()
            page.wait_for_load_state()
            assert re.search(r"/hostwatch/case_history\?case=\d+$", page.url), page.url
            check(page)
            assert page.locator("td.col-kind").first.inner_text().strip() == "report"
            assert page.locator("td.col-kind", has_text="check").count() >= 1
            assert len(visited) >= 6
        finally:
            browser.close()
    assert requests
    for url in requests:
        assert url.startswith(origin + "/"), f"a request left the server: {url}"
        _no_raw_host(urlsplit(url).netloc, url)
