"""`hostwatch report hosters` on a small hand-made history, imported through
the real commands and attributed by `hostwatch enrich` (offline: the test
networks' ASN table and a hoster registry); every figure below was worked out
by hand from the history in the comments, and is checked in every format.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from hostwatch.cli import main
from kernel.deadlines import Outcome, Regime, judge
from kernel.model import Verdict
from lab import TestInternet
from store import Store
from store.models import Case, Check, Notice, Order

T0 = datetime(2026, 3, 2, tzinfo=UTC)
EVIL = '<img src=x onerror=alert(1)>Evil & "Co" Hosting'
FORMULA = '=HYPERLINK("http://evil.test","Rhein")'

REGISTRY = f"""
[[hoster]]
id = "dutch-test-hosting"
legal_name = "Dutch Test Hosting B.V."
country = "NL"
asns = [64501]
rdap_orgs = []
cdn = false
dsa_role = "hosting"
abuse = "abuse@dutchhost.test"

[[hoster]]
id = "rhein"
legal_name = '{FORMULA}'
country = "DE"
asns = [64503]
rdap_orgs = []
cdn = false
dsa_role = "hosting"
abuse = "abuse@rheinhost.test"

[[hoster]]
id = "evil"
legal_name = '{EVIL}'
country = "US"
asns = [64504]
rdap_orgs = []
cdn = false
dsa_role = "hosting"
abuse = "abuse@evil.test"

[[hoster]]
id = "testcdn"
legal_name = "TestCDN Inc."
country = "US"
asns = [64505]
rdap_orgs = []
dsa_role = "cdn"
abuse = "abuse@testcdn.test"
cdn = true
"""


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


REPORTS = "id,url,category,reported_at\n" + "".join(
    f"{case},https://{case.lower()}.example.test/img.jpg,{category},{at(0)}\n"
    for case, category in [("D1", "csam"), ("D2", "csam"), ("D3", "terrorist"),
                           ("E1", "ncii"), ("U1", "csam"), ("C1", "csam")])

DUTCH, RHEIN, US, CDN = "127.1.1.10", "127.1.3.10", "127.1.4.10", "127.1.5.10"
HISTORY = {
    # Dutch Test Hosting (NL). D1: served at 2 h, gone at 10 h and 26 h: removed
    # in (2, 10] -> 6 h. D2: served at 2 and 26 h, gone at 50 and 74 h: (26, 50]
    # -> 38 h. D3: served throughout, censored at 50 h.
    "D1": [(2, "online", DUTCH), (10, "http_gone", DUTCH), (26, "http_gone", DUTCH)],
    "D2": [(2, "online", DUTCH), (26, "online", DUTCH), (50, "http_gone", DUTCH),
           (74, "http_gone", DUTCH)],
    "D3": [(2, "online", DUTCH), (26, "online", DUTCH), (50, "online", DUTCH)],
    # Rhein (DE): never seen served; gone at 24 and 48 h: (report, 24] -> 12 h.
    "E1": [(24, "http_gone", RHEIN), (48, "http_gone", RHEIN)],
    # The US hoster: removed in (2, 10], then served again at 50 h: a
    # reappearance, not removed; censored at 74 h.
    "U1": [(2, "online", US), (10, "http_gone", US), (26, "http_gone", US),
           (50, "online", US), (74, "online", US)],
    # Behind the CDN: served at 2 h, censored there.
    "C1": [(2, "online", CDN)],
}
CHECKS = "case_id,checked_at,verdict,http_status,ip\n" + "".join(
    f"{case},{at(hours)},{verdict},{200 if verdict == 'online' else 404},{ip}\n"
    for case, rows in HISTORY.items() for hours, verdict, ip in rows)
# Notices 1 h after the report (due at 25 h): D1 was gone at 10 h -> met; D2 was
# served at 2 h and at 26 h -> breached. E1: a notice at 30 h (due 54 h), when
# the material had been gone since 24 h and stayed gone -> already_gone.
NOTICES = f"case_id,sent_at,recipient\nD1,{at(1)},abuse@dutchhost.test\n" \
          f"D2,{at(1)},abuse@dutchhost.test\nE1,{at(30)},abuse@rheinhost.test\n"
# D2: an ATKM order at 20 h asking for 40 h, capped at 12 h -> due 32 h: served
# at 26 h, gone at 50 h -> undecided. D3: a terrorist-content order at 48 h ->
# due 49 h: served at 26 h and at 50 h -> breached.
ORDERS = ("case_id,issued_at,issuer,deadline_at,legal_basis,reference\n"
          f"D2,{at(20)},ATKM,{at(40)},Wet bestuursrechtelijke aanpak,A-1\n"
          f"D3,{at(48)},ATKM,{at(49)},Regulation (EU) 2021/784,T-1\n")


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[str, Path]:
    """A SQLite store holding the hand-made history, attributed."""
    work = tmp_path_factory.mktemp("report")
    db = f"sqlite:///{work / 'h.db'}"
    for name, text in [("reports.csv", REPORTS), ("checks.csv", CHECKS),
                       ("notices.csv", NOTICES), ("orders.csv", ORDERS),
                       ("hosters.toml", REGISTRY)]:
        (work / name).write_text(text)
    with TestInternet() as net:
        env = {"HOSTWATCH_OFFLINE": "1", "HOSTWATCH_ASN_DB": str(net.asn_table_path),
               "HOSTWATCH_ASNAMES": str(net.asnames_path),
               "HOSTWATCH_HOSTERS": str(work / "hosters.toml"),
               "HOSTWATCH_DATA_DIR": str(work),
               "HOSTWATCH_ALLOW_PRIVATE": "127.0.0.0/8"}
        runner = CliRunner(env=env)
        for args in (["import", str(work / "reports.csv")],
                     ["import-notices", str(work / "notices.csv")],
                     ["import-orders", str(work / "orders.csv")],
                     ["import-checks", str(work / "checks.csv")],
                     ["enrich"]):
            result = runner.invoke(main, ["--db", db, *args])
            assert result.exit_code == 0, (args, result.output)
    return db, work


def report(db: str, out: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["--db", db, "report", "hosters", "-o", str(out), *args])
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


def by_hoster(data: dict) -> dict[str, dict]:
    return {row["hoster"]: row for row in data["hosters"]}


def test_json_figures_match_the_hand_computed_history(history, tmp_path):
    db, _ = history
    data = json.loads(report(db, tmp_path / "r.json"))
    assert set(data) >= {"generated_at", "period", "method", "totals", "hosters"}
    hosters = by_hoster(data)
    assert set(hosters) == {"Dutch Test Hosting B.V.", FORMULA, EVIL, "TestCDN Inc."}
    dutch = hosters["Dutch Test Hosting B.V."]
    assert {k: dutch[k] for k in ("country", "dutch", "asns", "section", "cases", "online",
                                  "removed", "median_hours_to_removal",
                                  "p90_hours_to_removal", "removed_within_24h_share",
                                  "reappearances", "abuse_contact")} == {
        "country": "NL", "dutch": True, "asns": [64501], "section": "dutch", "cases": 3,
        "online": 1, "removed": 2,
        # KM: 6 h (event), 38 h (event), 50 h (censored): S(6)=2/3, S(38)=1/3.
        "median_hours_to_removal": 38.0, "p90_hours_to_removal": None,
        "removed_within_24h_share": 0.333, "reappearances": 0,
        "abuse_contact": "abuse@dutchhost.test"}
    assert dutch["deadline_breaches"] == {"notice_24h": 1, "atkm_order": 0, "terrorist_1h": 1}
    assert dutch["deadlines"]["notice_24h"] == {"met": 1, "already_gone": 0, "breached": 1,
                                                "undecided": 0, "pending": 0}
    assert dutch["deadlines"]["atkm_order"] == {"met": 0, "already_gone": 0, "breached": 0,
                                                "undecided": 1, "pending": 0}
    # Gone before the notice was sent: not counted as met.
    assert by_hoster(data)[FORMULA]["deadlines"]["notice_24h"] == {
        "met": 0, "already_gone": 1, "breached": 0, "undecided": 0, "pending": 0}
    expected_days = (datetime.now(UTC) - T0).total_seconds() / 86400
    assert dutch["oldest_open_days"] == pytest.approx(expected_days, abs=0.2)

    rhein, evil, cdn = hosters[FORMULA], hosters[EVIL], hosters["TestCDN Inc."]
    assert (rhein["section"], rhein["country"], rhein["removed"],
            rhein["median_hours_to_removal"], rhein["p90_hours_to_removal"],
            rhein["removed_within_24h_share"], rhein["oldest_open_days"]) == (
        "eu", "DE", 1, 12.0, 12.0, 1.0, None)
    # One removed case: S drops to 0 at 12 h, where the confidence band is
    # undefined; both bounds are open (null), not the zero-width [12.0, 12.0].
    assert (rhein["median_ci_hours"], rhein["p90_ci_hours"]) == ([None, None], [None, None])
    # D1 6 h, D2 38 h, D3 censored at 50 h: the upper band stays above 0.5.
    assert dutch["median_ci_hours"] == [6.0, None]
    assert (evil["section"], evil["online"], evil["removed"], evil["reappearances"],
            evil["median_hours_to_removal"], evil["removed_within_24h_share"]) == (
        "non_eu", 1, 0, 1, None, 0.0)
    # Followed for 2 h only: the 24 h share is beyond the data.
    assert (cdn["section"], cdn["removed_within_24h_share"]) == ("cdn", None)

    totals = data["totals"]
    assert (totals["dutch"]["cases"], totals["dutch"]["median_hours_to_removal"]) == (3, 38.0)
    # Foreign: 12 h (event) and 74 h (censored): S(12) = 1/2.
    assert {k: totals["foreign"][k] for k in ("cases", "removed", "online",
                                              "median_hours_to_removal",
                                              "removed_within_24h_share", "reappearances")} == {
        "cases": 2, "removed": 1, "online": 1, "median_hours_to_removal": 12.0,
        "removed_within_24h_share": 0.5, "reappearances": 1}
    assert (totals["cdn"]["cases"], totals["all"]["cases"]) == (1, 6)
    # Removal gaps 8, 24 and 24 h.
    assert data["method"]["check_resolution_hours"] == 24.0
    # Dutch-hosted first, then EU, then non-EU, then CDN-fronted.
    assert [row["section"] for row in data["hosters"]] == ["dutch", "eu", "non_eu", "cdn"]


def test_the_notice_clock_counts_from_the_first_notice(history, tmp_path):
    db, _ = history
    data = json.loads(report(db, tmp_path / "r.json", "--clock", "notice"))
    dutch = by_hoster(data)["Dutch Test Hosting B.V."]
    # From the notice at 1 h: D1 (1, 9] -> 5 h, D2 (25, 49] -> 37 h; D3 had no notice.
    assert (dutch["median_hours_to_removal"], dutch["p90_hours_to_removal"],
            dutch["removed_within_24h_share"], dutch["measured"]) == (5.0, 37.0, 0.5, 2)
    # Both removed: the curve reaches 0 at 37 h, so no upper bound closes there.
    assert (dutch["median_ci_hours"], dutch["p90_ci_hours"]) == ([5.0, None], [5.0, None])
    assert data["method"]["clock"] == "notice"


def test_sql_deadlines_agree_with_the_pure_judgement(history):
    db, _ = history
    store = Store(db)
    with store.session() as session:
        cases = {c.id: c.external_id for c in session.scalars(select(Case))}
        checks: dict[str, list[tuple[datetime, Verdict]]] = {}
        for check in session.scalars(select(Check)):
            checks.setdefault(cases[check.case_id], []).append(
                (check.checked_at, Verdict(check.verdict)))
        dues = [(cases[n.case_id], Regime.NOTICE_24H, n.sent_at, n.due_at)
                for n in session.scalars(select(Notice))]
        dues += [(cases[o.case_id], Regime(o.regime), o.issued_at, o.due_at)
                 for o in session.scalars(select(Order))]
    store.dispose()
    now = datetime.now(UTC)
    judged = {(case, regime.value): judge(regime, start, due, checks[case], now).outcome
              for case, regime, start, due in dues}
    assert judged == {("D1", "notice_24h"): Outcome.MET, ("D2", "notice_24h"): Outcome.BREACHED,
                      ("D2", "atkm_order"): Outcome.UNDECIDED,
                      ("D3", "terrorist_1h"): Outcome.BREACHED,
                      ("E1", "notice_24h"): Outcome.ALREADY_GONE}


def test_a_report_made_before_a_deadline_calls_it_pending_not_met(history):
    """The issue's example: at 24 h, D1 has been gone since 10 h, but its
    notice's deadline (25 h) is an hour away: pending, not met, in every format."""
    from reports.formats import render_csv, render_markdown, report_dict
    from reports.hosters import hoster_report
    from reports.html import render_html

    db, _ = history
    store = Store(db)
    with store.session() as session:
        built = hoster_report(session, now=T0 + timedelta(hours=24))
    store.dispose()
    data = report_dict(built)
    dutch = by_hoster(data)["Dutch Test Hosting B.V."]
    # D1 and D2's notices (due 25 h) and D2's order (due 32 h) are still ahead.
    assert dutch["deadlines"]["notice_24h"] == {"met": 0, "already_gone": 0, "breached": 0,
                                                "undecided": 0, "pending": 2}
    assert dutch["deadlines"]["atkm_order"]["pending"] == 1
    assert dutch["deadline_breaches"]["notice_24h"] == 0
    rows = {row["hoster"]: row for row in csv.DictReader(io.StringIO(render_csv(built)))}
    assert (rows["Dutch Test Hosting B.V."]["pending_notice_24h"],
            rows["Dutch Test Hosting B.V."]["met_notice_24h"]) == ("2", "0")
    markdown = render_markdown(built)
    assert "| Dutch Test Hosting B.V. | notice 24 h | 0 | 0 | 0 | 0 | 2 |" in markdown
    assert "Dutch Test Hosting B.V.</td><td class=\"text\">notice 24 h</td><td>0</td>" \
        "<td>0</td><td>0</td><td>0</td><td>2</td>" in render_html(built)


def test_filters_select_the_cases(history, tmp_path):
    db, _ = history
    data = json.loads(report(db, tmp_path / "r.json", "--category", "ncii"))
    assert [(row["hoster"], row["cases"]) for row in data["hosters"]] == [(FORMULA, 1)]
    assert data["period"]["category"] == "ncii"
    later = json.loads(report(db, tmp_path / "r2.json", "--since", "2026-03-03"))
    assert later["totals"]["all"]["cases"] == 0
    assert later["period"]["since"] == "2026-03-03T00:00:00Z"


def test_csv_has_the_same_figures_and_escapes_formulas(history, tmp_path):
    db, _ = history
    rows = list(csv.DictReader(io.StringIO(report(db, tmp_path / "r.csv"))))
    named = {row["hoster"]: row for row in rows}
    dutch = named["Dutch Test Hosting B.V."]
    assert (dutch["cases"], dutch["median_hours_to_removal"], dutch["removed_within_24h_share"],
            dutch["breaches_notice_24h"], dutch["breaches_terrorist_1h"]) == (
        "3", "38.0", "0.333", "1", "1")
    assert (dutch["met_notice_24h"], dutch["undecided_atkm_order"],
            dutch["pending_notice_24h"]) == ("1", "1", "0")
    assert named["'" + FORMULA]["already_gone_notice_24h"] == "1"
    # The formula-like hoster name is neutralised for spreadsheets, not lost.
    assert "'" + FORMULA in named
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row.values())
    totals = {row["hoster"]: row for row in rows if row["section"] == "total"}
    assert totals["Foreign (EU and non-EU)"]["median_hours_to_removal"] == "12.0"
    rhein = named["'" + FORMULA]  # one removed case: open bounds are empty cells
    assert (rhein["median_hours_to_removal"], rhein["median_ci_lower"],
            rhein["median_ci_upper"]) == ("12.0", "", "")
    assert (dutch["median_ci_lower"], dutch["median_ci_upper"]) == ("6.0", "")


def test_markdown_has_sections_figures_and_method(history, tmp_path):
    db, _ = history
    text = report(db, tmp_path / "r.md")
    assert text.index("## Dutch-hosted") < text.index("## Foreign: other EU") \
        < text.index("## Foreign: outside the EU") < text.index("## CDN-fronted") \
        < text.index("## Method and limitations")
    dutch_line = next(line for line in text.splitlines() if "Dutch Test Hosting" in line)
    # Shares by 24 h, 72 h, 7 d (followed 50 h: the later ones are beyond the
    # data), notices / orders, deadlines by outcome over every regime (#15).
    assert "| 3 | 1 | 2 | 38.0 h (6.0–open) | not reached | 33 % | – | – | 2 / 2 " \
        "| met 1, breached 2, undecided 1 | 0 |" in dutch_line
    rhein_line = next(line for line in text.splitlines() if "HYPERLINK" in line)
    assert "| 1 | 0 | 1 | 12.0 h (CI open) | 12.0 h |" in rhein_line
    # Every deadline outcome per regime: met, already gone, breached, undecided, pending.
    assert "| Dutch Test Hosting B.V. | notice 24 h | 1 | 0 | 1 | 0 | 0 |" in text
    assert "| Dutch Test Hosting B.V. | terrorist 1 h | 0 | 0 | 1 | 0 | 0 |" in text
    assert "notice 24 h | 0 | 1 | 0 | 0 | 0 |" in text  # Rhein: already gone
    assert "<img" not in text  # the HTML in the hoster name is escaped
    assert "&lt;img src=x onerror=alert(1)&gt;Evil &amp; \"Co\" Hosting" in text


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def test_html_report_in_chromium(history, tmp_path):
    """The HTML opens in real Chromium with its sections, tables and charts,
    and the hoster name with HTML in it is shown as text, not run."""
    from playwright.sync_api import sync_playwright

    db, _ = history
    out = tmp_path / "r.html"
    report(db, out)
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run `make install`"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(out.as_uri())
            for section in ("totals", "section-dutch", "section-eu", "section-non_eu",
                            "section-cdn", "section-unattributed", "deadlines", "charts",
                            "method"):
                assert page.locator(f"#{section}").count() == 1, section
            assert page.locator("#section-dutch table.hosters tbody tr").count() == 1
            cells = page.locator("#section-dutch table.hosters tbody tr td").all_inner_texts()
            # hoster, country, ASNs, role, cases, online, removed, median (CI), p90,
            # <= 24 h, 72 h, 7 d, notices / orders, deadlines by outcome (#15),
            # reappearances.
            assert cells[:15] == ["Dutch Test Hosting B.V.", "NL", "64501", "hosting", "3", "1",
                                  "2", "38.0 h (6.0–open)", "not reached", "33 %", "–", "–",
                                  "2 / 2", "met 1, breached 2, undecided 1", "0"]
            assert page.locator("#section-eu h3").inner_text() == "DE"
            # One removed case: open bounds, not "12.0 h (12.0–12.0)".
            rhein = page.locator("#section-eu tbody tr td").all_inner_texts()
            assert rhein[4:9] == ["1", "0", "1", "12.0 h (CI open)", "12.0 h"]
            # dutch, foreign, its EU and non-EU parts, CDN, unattributed, all.
            assert page.locator("#totals tbody tr").count() == 7
            deadline_cells = page.locator("#deadlines tbody tr").nth(0).locator(
                "td").all_inner_texts()
            assert deadline_cells == ["Dutch-hosted", "notice 24 h", "1", "0", "1", "0", "0"]
            # Four charts, each drawn: curves and bars (removal times by
            # establishment and by server location, #14).
            assert page.locator("svg.chart").count() == 4
            assert page.locator("#chart-survival path.series").count() >= 3
            assert page.locator("#chart-distribution rect.bar").count() == 16
            assert page.locator("#chart-distribution-server rect.bar").count() == 16
            assert page.locator("#chart-over-time rect.bar").count() == 4
            # The hostile name: shown as text, no element made from it, nothing ran.
            assert page.locator("img").count() == 0
            assert EVIL in page.locator("#section-non_eu").inner_text()
            assert dialogs == []
            assert requests == [out.as_uri()]  # self-contained: nothing else loaded
            # Readable printed: the print layout renders a PDF.
            assert page.pdf()[:4] == b"%PDF"
        finally:
            browser.close()


def test_evidence_pack_figures_equal_the_report_row(history, tmp_path):
    """The hoster report (SQL) and the hoster's evidence pack (pure functions
    over the rows) give the same figures for the same hoster."""
    db, _ = history
    row = by_hoster(json.loads(report(db, tmp_path / "r.json")))["Dutch Test Hosting B.V."]
    result = CliRunner().invoke(main, ["--db", db, "report", "evidence", "--hoster",
                                       "dutch-test-hosting", "--for", "acm",
                                       "-o", str(tmp_path / "pack")])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "pack" / "figures.json").read_text())
    clock = figures["clocks"]["report"]
    assert (clock["cases"], clock["removed"], clock["median"]["hours"], clock["p90"]["hours"],
            round(clock["share_within_24h"], 3), clock["reappearances"]) == (
        row["cases"], row["removed"], row["median_hours_to_removal"],
        row["p90_hours_to_removal"], row["removed_within_24h_share"], row["reappearances"])
    assert figures["deadlines"]["counts"] == row["deadlines"]
    assert clock["median"] == {"hours": 38.0, "ci_lower_hours": 6.0, "ci_upper_hours": None}
    # From the notice: 5 h and 37 h, both removed; the curve reaches 0 at 37 h.
    assert figures["clocks"]["notice"]["p90"] == {"hours": 37.0, "ci_lower_hours": 5.0,
                                                  "ci_upper_hours": None}
