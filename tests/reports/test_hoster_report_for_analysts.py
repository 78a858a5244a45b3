"""The hoster report as an analyst acts on it (#15 point 4): totals without
the columns that only mean something per hoster, the EU and non-EU parts of
"foreign", deadlines by outcome with the notices and orders behind them, the
72 h and 7-day shares, the cases still online per hoster (defanged, oldest
first, cut and flagged), and a method that states the settings in use.

The hand-made history is the one of ``test_hoster_report`` (its comments give
every case); the still-online list is compared with the store's own rows on
random histories (``test_hoster_sql``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from datetime import datetime, timedelta

from click.testing import CliRunner
from sqlalchemy import select

from hostwatch.cli import main
from kernel.defang import defang
from kernel.state import Debounce
from reports.formats import render_csv, render_markdown, report_dict
from reports.hosters import OPEN_STATES, ReportQuery, hoster_report
from reports.html import render_html
from store import Store
from store.models import Attribution, Case, Hoster
from tests.reports.test_hoster_report import EVIL, FORMULA, T0, by_hoster, history
from tests.reports.test_hoster_sql import NOW, _fill

__all__ = ["history"]  # the module fixture, shared

DUTCH = "Dutch Test Hosting B.V."
HOSTER_ONLY = ("Country", "ASNs", "DSA role", "Abuse contact", "Served from")


def _built(db: str, query: ReportQuery | None = None, now: datetime | None = None):
    store = Store(db)
    with store.session() as session:
        built = hoster_report(session, query or ReportQuery(), now=now)
    store.dispose()
    return built


def _section(html: str, start: str, end: str) -> str:
    return html[html.index(start):html.index(end)]


def test_totals_tables_show_only_what_means_something_for_a_group(history):
    db, _ = history
    built = _built(db)
    html = render_html(built)
    for start, end in (('id="totals"', 'id="server-location"'),
                       ('id="server-location"', 'id="cross"'),
                       ('id="cross"', 'id="section-dutch"')):
        head = _section(html, start, end)
        head = head[head.index("<thead>"):head.index("</thead>")]
        assert not [name for name in HOSTER_ONLY if f">{name}<" in head], start
    hosters_head = html[html.index('id="section-dutch"'):]
    hosters_head = hosters_head[:hosters_head.index("</thead>")]
    assert all(f">{name}<" in hosters_head for name in HOSTER_ONLY)
    text = render_markdown(built)
    totals = text[text.index("## Dutch-hosted vs foreign"):text.index("## Dutch-hosted (")]
    header = next(line for line in totals.splitlines() if line.startswith("| Group |"))
    assert not [name for name in HOSTER_ONLY if f"| {name} |" in header]
    # A total row has as many cells as its header (no hoster cells left over).
    row = next(line for line in totals.splitlines() if line.startswith("| All cases |"))
    assert row.count("|") == header.count("|")


def test_foreign_is_split_into_eu_and_non_eu_in_every_format(history):
    db, _ = history
    built = _built(db)
    data = report_dict(built)
    totals = data["totals"]
    # Rhein (DE): E1, removed in 12 h. The US hoster: U1, online again.
    assert {name: (totals[name]["cases"], totals[name]["removed"], totals[name]["online"])
            for name in ("foreign", "foreign_eu", "foreign_non_eu")} == {
        "foreign": (2, 1, 1), "foreign_eu": (1, 1, 0), "foreign_non_eu": (1, 0, 1)}
    assert totals["foreign_eu"]["median_hours_to_removal"] == 12.0
    assert set(totals["foreign_eu"]) == set(totals["foreign_non_eu"]) == set(totals["dutch"])
    rows = list(csv.DictReader(io.StringIO(render_csv(built))))
    # A part of "foreign": its own section, so that "total" counts each case once.
    assert [(row["hoster"], row["cases"]) for row in rows if row["section"] == "subtotal"] == [
        ("Foreign: other EU member states", "1"), ("Foreign: outside the EU", "1")]
    assert sum(int(row["cases"]) for row in rows if row["section"] == "total"
               and row["hoster"] != "All cases") == 6
    text = render_markdown(built)
    assert "| Foreign: other EU member states | 1 | 0 | 1 | 12.0 h (CI open) |" in text
    assert "| Foreign: outside the EU | 1 | 1 | 0 | not reached |" in text
    totals_html = _section(render_html(built), 'id="totals"', 'id="server-location"')
    assert '<td class="name">Foreign: other EU member states</td>' in totals_html
    assert '<td class="name">Foreign: outside the EU</td>' in totals_html


def test_deadlines_per_hoster_show_every_outcome_and_the_notices_and_orders(history):
    db, _ = history
    built = _built(db)
    hosters = by_hoster(report_dict(built))
    # Dutch: notices for D1 and D2, orders for D2 and D3; Rhein: E1's notice.
    assert [(hosters[name]["notices"], hosters[name]["orders"])
            for name in (DUTCH, FORMULA, EVIL)] == [(2, 2), (1, 0), (0, 0)]
    assert report_dict(built)["totals"]["all"]["notices"] == 3
    csv_rows = {row["hoster"]: row for row in csv.DictReader(io.StringIO(render_csv(built)))}
    assert (csv_rows[DUTCH]["notices"], csv_rows[DUTCH]["orders"]) == ("2", "2")
    text = render_markdown(built)
    line = next(row for row in text.splitlines() if row.startswith(f"| {DUTCH} | NL"))
    # notice 24 h: met 1, breached 1; ATKM: undecided 1; terrorist 1 h: breached 1.
    assert "| 2 / 2 | met 1, breached 2, undecided 1 |" in line
    rhein = next(row for row in text.splitlines() if "HYPERLINK" in row and "| DE |" in row)
    assert "| 1 / 0 | already gone 1 |" in rhein
    evil = next(row for row in text.splitlines() if "onerror" in row and "| US |" in row)
    assert "| 0 / 0 | none |" in evil
    # At 24 h every deadline is ahead (D1, D2's notices, D2's and D3's
    # orders): pending, not a missing breach.
    early = render_html(_built(db, now=T0 + timedelta(hours=24)))
    assert "<td>2 / 2</td><td class=\"text\">pending 4</td>" in early


def test_72_hour_and_7_day_shares_are_in_html_and_markdown(history):
    db, _ = history
    built = _built(db)
    rhein = by_hoster(report_dict(built))[FORMULA]
    # E1 removed at 12 h: the curve reaches 0, so every later share is 100 %.
    assert (rhein["removed_within_72h_share"], rhein["removed_within_7d_share"]) == (1.0, 1.0)
    text = render_markdown(built)
    assert "| ≤24 h | ≤72 h | ≤7 d |" in text
    line = next(row for row in text.splitlines() if "HYPERLINK" in row and "| DE |" in row)
    assert "| 12.0 h | 100 % | 100 % | 100 % |" in line
    html = render_html(built)
    assert "<th>≤ 72 h</th><th>≤ 7 days</th>" in html
    eu = _section(html, 'id="section-eu"', 'id="section-non_eu"')
    assert "<td>12.0 h</td><td>100 %</td>\n  <td>100 %</td><td>100 %</td>" in eu


def test_cases_still_online_are_listed_per_hoster_defanged_and_never_links(history):
    db, _ = history
    now = T0 + timedelta(days=3)
    built = _built(db, now=now)
    data = report_dict(built)
    hosters = by_hoster(data)
    # D3 (served at 50 h), U1 (served again at 50 and 74 h), C1 (served at 2 h).
    # Each case by the store's id (what analyst_cases and case_history take) and
    # by who reported it under which id (an external id is unique per source only).
    with Store(db).session() as session:
        d3 = session.scalar(select(Case.id).where(Case.external_id == "D3"))
    assert hosters[DUTCH]["still_online"] == [{
        "case_id": d3, "source": "hotline", "case": "D3",
        "url": "hxxps://d3[.]example[.]test/img[.]jpg", "days_online": 3.0,
        "last_checked_at": "2026-03-04T02:00:00Z"}]
    assert [row["case"] for row in hosters[EVIL]["still_online"]] == ["U1"]
    assert [row["case"] for row in hosters["TestCDN Inc."]["still_online"]] == ["C1"]
    assert hosters[FORMULA]["still_online"] == []
    assert all(h["still_online_more"] == 0 for h in hosters.values())
    text = render_markdown(built)
    assert "### Still online: Dutch Test Hosting B.V." in text
    assert (f"| {d3} | hotline:D3 | hxxps://d3\\[.\\]example\\[.\\]test/img\\[.\\]jpg"
            " | 3.0 |") in text
    html = render_html(built)
    dutch = _section(html, 'id="section-dutch"', 'id="section-eu"')
    assert '<td class="url">hxxps://d3[.]example[.]test/img[.]jpg</td>' in dutch
    # No reported URL in a readable form anywhere, and no anchor at all.
    for rendered in (text, html, json.dumps(data)):
        assert not re.search(r"https?://[a-z0-9]+\.example\.test", rendered)
    assert "<a " not in html and "href" not in html


def test_the_still_online_list_is_the_oldest_cases_cut_at_the_limit(store):
    """Random histories (test_hoster_sql): each hoster's list is its oldest
    open cases, at most the limit, and the rest is counted."""
    rng = random.Random(15)
    with store.transaction() as session:
        _fill(session, rng, 240)
    with store.session() as session:
        rows = session.execute(
            select(Hoster.legal_name, Case.external_id, Case.url, Case.reported_at, Case.id)
            .join(Attribution, Attribution.id == Case.attribution_id)
            .join(Hoster, Hoster.id == Attribution.hoster_id)
            .where(Case.state.in_(OPEN_STATES))).all()
        built = hoster_report(session, ReportQuery(still_online_limit=4), now=NOW)
        unlimited = hoster_report(session, ReportQuery(still_online_limit=1000), now=NOW)
    open_cases: dict[str, list] = {}
    for name, external_id, url, _, case_id in sorted(rows, key=lambda r: (r[3], r[4])):
        open_cases.setdefault(name, []).append((case_id, external_id, defang(url)))
    lines = {line.hoster: line for line in built.hosters if line.key}
    assert set(lines) == set(open_cases)
    for name, line in lines.items():
        assert [(c.case_id, c.case, c.url) for c in line.still_online] \
            == open_cases[name][:4], name
        assert line.still_online_more == len(open_cases[name]) - 4 > 0, name
        assert line.figures.online == len(open_cases[name])
        days = [c.days_online for c in line.still_online]
        assert days == sorted(days, reverse=True)  # oldest first
    for line in unlimited.hosters:
        assert line.still_online_more == 0
    data = report_dict(built)
    flagged = by_hoster(data)["Polder B.V."]
    cut = f"and {flagged['still_online_more']} more ({flagged['online']} still online)"
    assert f"{cut}." in render_markdown(built)
    assert f'<p class="more">{cut}.</p>' in render_html(built)
    with store.session() as session:
        none = hoster_report(session, ReportQuery(still_online_limit=0), now=NOW)
    assert [line.still_online for line in none.hosters if line.still_online] == []


def test_the_method_states_the_settings_the_report_was_made_with(history):
    db, _ = history
    query = ReportQuery(debounce=Debounce(confirmations=3, min_hours=6.0, transient_days=2.0),
                        recheck_hours=8.0)
    built = _built(db, query)
    method = report_dict(built)["method"]
    assert method["settings_in_use"] == {"removal_confirmations": 3, "removal_min_hours": 6.0,
                                         "transient_days": 2.0, "recheck_hours": 8.0,
                                         "still_online_limit": 10}
    assert "after 3 consecutive gone checks spanning at least 6 h" in method["removal"]
    assert "2 days of nothing but failed checks" in method["removal"]
    assert "defaults" not in method["removal"]
    assert "re-checked when its last check is 8 h old" in method["settings"]
    # The check resolution measured in these cases (removal gaps 8, 24, 24 h).
    assert "removal): 24.0 h" in method["settings"]
    assert "3 consecutive gone checks" in render_markdown(built)
    assert "3 consecutive gone checks" in render_html(built)


def test_the_command_states_the_configured_settings_not_the_defaults(history, tmp_path):
    db, _ = history
    out = tmp_path / "r.json"
    result = CliRunner(env={"HOSTWATCH_REMOVAL_CONFIRMATIONS": "4",
                            "HOSTWATCH_REMOVAL_MIN_HOURS": "36",
                            "HOSTWATCH_RECHECK_HOURS": "6"}).invoke(
        main, ["--db", db, "report", "hosters", "-o", str(out)])
    assert result.exit_code == 0, result.output
    method = json.loads(out.read_text())["method"]
    assert (method["settings_in_use"]["removal_confirmations"],
            method["settings_in_use"]["removal_min_hours"],
            method["settings_in_use"]["recheck_hours"]) == (4, 36.0, 6.0)
    assert "after 4 consecutive gone checks spanning at least 36 h" in method["removal"]



def test_markdown_cells_hold_nothing_a_viewer_would_link():
    """Names come from registries and AS names a hoster controls: in Markdown
    (GitHub links any http(s): or www. in text) they are broken like a URL."""
    from reports.formats import md

    assert md("Evil HTTPS://x.example B.V.") == "Evil HxxPS://x.example B.V."
    assert md("see www.evil.example") == "see www\\[.\\]evil.example"
    assert md("hxxps://a[.]b") == "hxxps://a\\[.\\]b"  # defanged stays as it was
    assert md("Polder Servers B.V.") == "Polder Servers B.V."
    assert md("2026-03-04T02:00:00Z") == "2026-03-04T02:00:00Z"
