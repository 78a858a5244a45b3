"""The HTML hoster report's layout (#15): on a 1,000-pixel screen, in real
Chromium, no table is wider than the page - with hosters whose legal names,
abuse addresses, ASN lists and reported URLs are long - and every group has
one colour across the charts.

The screenshot is taken in memory only (``page.screenshot()`` returns the
bytes) and never written: the report holds no material, but the habit holds.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kernel.model import Verdict
from reports.hosters import hoster_report
from reports.html import GROUP_STYLES, render_html
from store import Store
from tests.builders import add_case, add_hoster
from tests.reports.test_hoster_report import CHROMIUM, CHROMIUM_FLAGS

T0 = datetime(2026, 4, 6, tzinfo=UTC)
NOW = T0 + timedelta(days=20)
LONG = "Internationale Datacenter- en Hostingdienstverlening Nederland Holding B.V."
# key: (legal name, country, jurisdiction, dutch)
HOSTERS = {
    "nl-long": (LONG, "NL", "NL", True),
    "nl-two": ("Stichting Serverpark Noord-Holland en Flevoland Colocatie", "NL", "NL", True),
    "de-long": ("Rechenzentrum Süd-West Betreibergesellschaft mbH & Co. KG", "DE", "EU", False),
    "fr": ("Hébergement Européen Société par Actions Simplifiée", "FR", "EU", False),
    "us-long": ("Transcontinental Cloud Infrastructure Services Incorporated", "US", "non-EU",
                False),
    "sc": ("Offshore Bulletproof Anonymous Hosting Limited (Seychelles)", "SC", "non-EU",
           False),
}
ONLINE, GONE = Verdict.ONLINE, Verdict.HTTP_GONE


def _fill(session) -> None:
    rows = {}
    for key, (legal, country, _, _) in HOSTERS.items():
        abuse = f"abuse-and-notice-and-action-desk@{key}.very-long-domain.test"
        rows[key] = add_hoster(session, key, legal, country, updated_at=T0,
                               asns=range(64500, 64509), abuse=abuse)
    for n in range(60):
        key = list(HOSTERS)[n % len(HOSTERS)]
        _, country, area, dutch = HOSTERS[key]
        reported = T0 + timedelta(hours=n)
        # "sc" never removes; the others remove every other case.
        removes = key != "sc" and n % 2 == 0
        history = [(reported + timedelta(hours=h), v) for h, v in
                   ([(2, ONLINE), (20, GONE), (40, GONE)] if removes
                    else [(2, ONLINE), (30, ONLINE), (200, ONLINE)])]
        url = (f"https://cdn{n}.images.{key}.example.test/gallery/2026/04/"
               f"{'a' * 80}/{uuid.uuid4().hex}{uuid.uuid4().hex}.jpg")
        add_case(session, f"HOTLINE-2026-{n:06d}", reported, history, url=url,
                 host=f"cdn{n}.example.test", hoster=rows[key],
                 attribution={"jurisdiction": area, "dutch": dutch,
                              "server_country": "NL" if n % 3 else country,
                              "server_country_source": "geoip"},
                 notices=[(reported + timedelta(hours=1), "abuse@x.test")])


@pytest.fixture
def html(sqlite_url) -> Iterator[str]:
    store = Store(sqlite_url)
    store.upgrade()
    with store.transaction() as session:
        _fill(session)
    with store.session() as session:
        yield render_html(hoster_report(session, now=NOW))
    store.dispose()


def test_every_group_has_one_colour_in_every_chart(html):
    charts = re.findall(r'<svg class="chart".*?</svg>', html, re.S)
    assert len(charts) == 4
    seen: dict[str, set[str]] = {}
    for svg in charts:
        for name, colour in re.findall(r'data-name="([^"]+)"[^>]* stroke="([^"]+)"', svg):
            seen.setdefault(name, set()).add(colour)
        for name, colour in re.findall(r'data-series="([^"]+)"[^>]* fill="([^"]+)"', svg):
            seen.setdefault(name.split(": ")[0], set()).add(colour)
    for group, style in GROUP_STYLES.items():
        assert seen.get(group) == {style.colour}, (group, seen.get(group))
    # The hosters' curves take colours no group has.
    hoster_colours = {c for name, colours in seen.items() if name not in GROUP_STYLES
                      for c in colours}
    assert hoster_colours and not hoster_colours & {s.colour for s in GROUP_STYLES.values()}
    # The hoster that removed nothing is drawn, and said to be so.
    assert 'class="series never-removed" data-name="Offshore Bulletproof' in html


def test_no_table_is_wider_than_a_1000_pixel_page_in_chromium(html, tmp_path):
    from playwright.sync_api import sync_playwright

    out = tmp_path / "r.html"
    out.write_text(html, encoding="utf-8")
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make install`"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.goto(out.as_uri())
            tables = page.evaluate("""() => {
                const page = document.documentElement.clientWidth;
                return {page, scroll: document.documentElement.scrollWidth,
                        tables: [...document.querySelectorAll('table')].map((t, i) => ({
                            i, id: t.closest('section').id,
                            right: t.getBoundingClientRect().right,
                            width: t.getBoundingClientRect().width,
                            scroll: t.scrollWidth}))};
            }""")
            page_width = tables["page"]
            assert 980 <= page_width <= 1000, page_width
            assert len(tables["tables"]) >= 10  # totals, hosters, still online, deadlines
            too_wide = [t for t in tables["tables"]
                        if t["right"] > page_width or t["width"] > page_width
                        or t["scroll"] > page_width]
            assert too_wide == [], too_wide
            assert tables["scroll"] <= page_width  # no sideways scrolling at all
            # The long names wrapped instead: the hoster cell is several lines.
            cell = page.locator("#section-dutch table.hosters td.name", has_text=LONG)
            box = cell.bounding_box()
            assert box is not None and box["height"] > 30
            # Legend names, in full, stay inside their chart.
            outside = page.evaluate("""() => [...document.querySelectorAll('svg.chart')]
                .flatMap(svg => [...svg.querySelectorAll('text.legend')].filter(text => {
                    const box = text.getBBox();
                    return box.x + box.width > svg.viewBox.baseVal.width
                        || box.y + box.height > svg.viewBox.baseVal.height;
                }).map(text => text.textContent))""")
            assert outside == []
            assert page.locator("svg.chart text.legend", has_text="(Seychelles)").count() >= 1
            # The whole page renders (in memory only: never written to disk).
            shot = page.screenshot(full_page=True)
            assert shot[:8] == b"\x89PNG\r\n\x1a\n"
            # And in print (A4), no table is cut off either.
            page.emulate_media(media="print")
            page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi
            printed = page.evaluate("""() => {
                const page = document.documentElement.clientWidth;
                return [...document.querySelectorAll('table')]
                    .filter(t => t.getBoundingClientRect().right > page).length;
            }""")
            assert printed == 0
        finally:
            browser.close()
