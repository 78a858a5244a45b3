"""The hoster report's second meaning of "Dutch-hosted" (#14): where the
server stood (the attribution of record's ``server_country``) beside where the
hoster is established, the cross table where the two part, and per hoster the
countries its cases were served from; in every format, with the method text
naming both meanings. Attributions are written directly with their server
country (the enrichment that fills it is tested with enrichment)."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from hostwatch.cli import main
from kernel.model import Verdict
from kernel.state import derive_state
from reports.formats import render_csv, render_json, render_markdown, report_dict
from reports.hosters import CROSS, SERVER_TOTALS, ReportQuery, hoster_report
from reports.html import render_html
from reports.takedown import CaseTimes, Clock, takedown_figures
from store.models import Attribution, Case
from tests.builders import add_case, add_hoster
from tests.reports.test_hoster_sql import HOSTERS, NOW, _fill

T0 = datetime(2026, 3, 2, tzinfo=UTC)
LATER = T0 + timedelta(days=10)
BUILT = datetime(2026, 2, 24, 9, 30, tzinfo=UTC)  # the geolocation database's build
ONLINE, GONE = Verdict.ONLINE, Verdict.HTTP_GONE
REGISTRY = {"nl": ("Polder Hosting B.V.", "NL", "NL", True),
            "de": ("Rhein GmbH", "DE", "EU", False),
            "us": ("Liberty LLC", "US", "non-EU", False)}
# case: (hoster key or None, server country, checks as (hours, verdict)).
# Times to removal (debounce: 2 gone checks over 12 h), by hand:
CASES = {
    "A1": ("nl", "NL", [(2, ONLINE), (10, GONE), (26, GONE)]),  # (2, 10] -> 6 h
    # A Dutch company's server abroad: (26, 50] -> 38 h.
    "A2": ("nl", "DE", [(2, ONLINE), (26, ONLINE), (50, GONE), (74, GONE)]),
    # Attributed before server locations were recorded: unknown; censored at 50 h.
    "A3": ("nl", None, [(2, ONLINE), (26, ONLINE), (50, ONLINE)]),
    # A foreign company's Dutch data centre: (report, 24] -> 12 h.
    "B1": ("us", "NL", [(24, GONE), (48, GONE)]),
    "B2": ("us", "US", [(2, ONLINE), (74, ONLINE)]),  # censored at 74 h
    "B3": ("de", "NL", [(2, ONLINE), (4, ONLINE), (6, GONE), (30, GONE)]),  # (4, 6] -> 5 h
    "U1": (None, None, [(2, ONLINE)]),  # no attribution: server location unknown
}


def _add_case(session, name: str, hosters: dict, hoster: str | None,
              country: str | None, history: list[tuple[float, Verdict]]) -> Case:
    """Case ``name``, reported at T0 and checked ``history`` (hours after);
    attributed to the registry's ``hoster``, its server in ``country``."""
    checks = [(T0 + timedelta(hours=hours), verdict) for hours, verdict in history]
    if hoster is None:
        return add_case(session, name, T0, checks)
    _, _, area, dutch = REGISTRY[hoster]
    return add_case(session, name, T0, checks, hoster=hosters[hoster], attribution={
        "jurisdiction": area, "dutch": dutch, "server_country": country,
        # B2's from RDAP (no database knew the address), the rest geoip.
        "server_country_source": None if not country else "rdap" if name == "B2" else "geoip",
        "geoip_built_at": BUILT if country and name != "B2" else None})


@pytest.fixture
def built(store):
    with store.transaction() as session:
        hosters = {key: add_hoster(session, key, legal, country, updated_at=T0)
                   for key, (legal, country, _, _) in REGISTRY.items()}
        for name, (hoster, country, history) in CASES.items():
            _add_case(session, name, hosters, hoster, country, history)
    with store.session() as session:
        return hoster_report(session, now=LATER)


def _pure(names: list[str]):
    """The pure takedown figures of the named cases (reports.takedown)."""
    times = []
    for name in names:
        checks = [(T0 + timedelta(hours=h), v) for h, v in CASES[name][2]]
        state = derive_state(T0, checks)
        times.append(CaseTimes(case_id=0, hoster="", reported_at=T0,
                               removed_after=state.removed_after, removed_at=state.removed_at,
                               last_checked_at=state.last_checked_at,
                               reappearances=state.reappearances))
    return takedown_figures(times, Clock.REPORT)


def test_both_splits_and_the_cross_table(built):
    totals = built.totals
    # The establishment split is as before.
    assert [totals[name].cases for name in ("dutch", "foreign", "unattributed", "all")] == [
        3, 3, 1, 7]
    # Server location: NL A1 B1 B3; abroad A2 (DE) B2 (US); unknown A3 U1.
    assert {name: (totals[name].cases, totals[name].removed, totals[name].online)
            for name in SERVER_TOTALS} == {"server_nl": (3, 3, 0), "server_abroad": (2, 1, 1),
                                           "server_unknown": (2, 0, 2)}
    # 5, 6 and 12 h: S(6) = 1/3.
    assert totals["server_nl"].takedown.median.hours == pytest.approx(6.0)
    # 38 h removed, 74 h censored: S(38) = 1/2.
    assert totals["server_abroad"].takedown.median.hours == pytest.approx(38.0)
    assert totals["server_unknown"].takedown.median.hours is None
    assert set(built.cross) == set(CROSS)
    nl_foreign = built.cross["server_nl_hoster_foreign"]  # B1, B3
    abroad_dutch = built.cross["server_abroad_hoster_dutch"]  # A2
    assert (nl_foreign.cases, nl_foreign.removed, abroad_dutch.cases, abroad_dutch.removed) == (
        2, 2, 1, 1)
    assert abroad_dutch.takedown.median.hours == pytest.approx(38.0)
    for figures, names in [(totals["server_nl"], ["A1", "B1", "B3"]),
                           (totals["server_abroad"], ["A2", "B2"]),
                           (totals["server_unknown"], ["A3", "U1"]),
                           (nl_foreign, ["B1", "B3"]), (abroad_dutch, ["A2"])]:
        want, got = _pure(names), figures.takedown
        assert (got.cases, got.removed, got.measured) == (want.cases, want.removed,
                                                           want.measured), names
        for part in ("median", "p90"):
            assert getattr(got, part).hours == (
                None if getattr(want, part).hours is None
                else pytest.approx(getattr(want, part).hours)), (names, part)
        assert got.share_within_24h == (None if want.share_within_24h is None
                                        else pytest.approx(want.share_within_24h))


def test_each_hoster_lists_the_countries_its_cases_were_served_from(built):
    lines = {line.hoster: line for line in built.hosters}
    polder = lines["Polder Hosting B.V."]
    # One line per hoster, whatever number of server countries it has.
    assert [line.hoster for line in built.hosters].count("Polder Hosting B.V.") == 1
    assert (polder.figures.cases, polder.server_countries, polder.server_unknown) == (
        3, {"DE": 1, "NL": 1}, 1)
    assert polder.figures.takedown.median.hours == pytest.approx(38.0)  # as before
    assert lines["Liberty LLC"].server_countries == {"NL": 1, "US": 1}
    assert lines["Rhein GmbH"].server_countries == {"NL": 1}
    unattributed = [line for line in built.hosters if line.section.value == "unattributed"]
    assert [(line.server_countries, line.server_unknown) for line in unattributed] == [({}, 1)]


def test_json_has_both_splits_the_cross_table_and_the_countries(built):
    data = json.loads(render_json(built))
    assert data == report_dict(built) | {"generated_at": data["generated_at"]}
    totals = data["totals"]
    # foreign_eu and foreign_non_eu: the parts of foreign (#15).
    assert list(totals) == ["dutch", "foreign", "foreign_eu", "foreign_non_eu", "cdn",
                            "unattributed", "all", "server_nl", "server_abroad",
                            "server_unknown"]
    # The same fields as the other totals.
    assert set(totals["server_nl"]) == set(totals["dutch"])
    assert (totals["server_nl"]["cases"], totals["server_nl"]["median_hours_to_removal"],
            totals["server_abroad"]["cases"], totals["server_unknown"]["cases"]) == (
        3, 6.0, 2, 2)
    cross = data["cross"]
    assert cross["server_nl_hoster_foreign"]["label"] == "NL server, hoster established abroad"
    assert (cross["server_nl_hoster_foreign"]["cases"],
            cross["server_abroad_hoster_dutch"]["cases"],
            cross["server_abroad_hoster_dutch"]["median_hours_to_removal"]) == (2, 1, 38.0)
    assert set(cross["server_nl_hoster_foreign"]) == set(totals["dutch"]) | {"label"}
    hosters = {row["hoster"]: row for row in data["hosters"]}
    assert (hosters["Polder Hosting B.V."]["server_countries"],
            hosters["Polder Hosting B.V."]["server_unknown"]) == ({"DE": 1, "NL": 1}, 1)
    assert hosters["Liberty LLC"]["server_countries"] == {"NL": 1, "US": 1}


def test_csv_has_both_splits_the_cross_table_and_the_countries(built):
    rows = list(csv.DictReader(io.StringIO(render_csv(built))))
    named = {(row["section"], row["hoster"]): row for row in rows}
    assert (named[("dutch", "Polder Hosting B.V.")]["server_countries"],
            named[("dutch", "Polder Hosting B.V.")]["server_unknown"]) == (
        "DE 1, NL 1, unknown 1", "1")
    assert named[("non_eu", "Liberty LLC")]["server_countries"] == "NL 1, US 1"
    assert [(row["hoster"], row["cases"]) for row in rows if row["section"] == "total"] == [
        ("Dutch-hosted", "3"), ("Foreign (EU and non-EU)", "3"), ("CDN-fronted", "0"),
        ("Unattributed", "1"), ("All cases", "7")]
    assert [(row["hoster"], row["cases"]) for row in rows
            if row["section"] == "server_total"] == [
        ("Server in NL", "3"), ("Server abroad", "2"), ("Server location unknown", "2")]
    assert named[("server_total", "Server in NL")]["median_hours_to_removal"] == "6.0"
    cross = [(row["hoster"], row["cases"], row["removed"], row["median_hours_to_removal"])
             for row in rows if row["section"] == "cross"]
    assert cross == [("NL server, hoster established abroad", "2", "2", "5.0"),
                     ("Server abroad, hoster established in NL", "1", "1", "38.0")]


def test_markdown_has_both_splits_the_cross_table_and_the_countries(built):
    text = render_markdown(built)
    assert text.index("## Dutch-hosted vs foreign (where the hoster is established)") \
        < text.index("## Server in NL vs abroad (where the server stood)") \
        < text.index("## Where the two meanings part") < text.index("## Method and limitations")
    lines = text.splitlines()

    def line(start: str) -> str:
        return next(row for row in lines if row.startswith(start))

    assert "| 3 | 0 | 3 | 6.0 h" in line("| Server in NL |")
    assert "| 2 | 1 | 1 | 38.0 h" in line("| Server abroad |")
    assert "| 2 | 2 | 0 | not reached" in line("| Server location unknown |")
    assert "| 2 | 0 | 2 | 5.0 h" in line("| NL server, hoster established abroad |")
    assert "| 1 | 0 | 1 | 38.0 h" in line("| Server abroad, hoster established in NL |")
    assert line("| Polder Hosting B.V. |").endswith("| DE 1, NL 1, unknown 1 |")
    assert line("| Liberty LLC |").endswith("| NL 1, US 1 |")
    assert "- **server_location**: 'Dutch-hosted' has two meanings" in text


def test_html_has_both_splits_the_cross_table_and_the_countries(built):
    html = render_html(built)
    assert html.index('id="totals"') < html.index('id="server-location"') \
        < html.index('id="cross"') < html.index('id="section-dutch"')
    server = html[html.index('id="server-location"'):html.index('id="cross"')]
    assert '<td class="name">Server in NL</td>' in server
    assert "<td>3</td><td>0</td><td>3</td>" in server  # cases, online, removed
    assert "<td>6.0 h (" in server
    cross = html[html.index('id="cross"'):html.index('id="section-dutch"')]
    assert '<td class="name">NL server, hoster established abroad</td>' in cross
    assert '<td class="name">Server abroad, hoster established in NL</td>' in cross
    assert "<td>38.0 h (" in cross
    assert '<td class="text">DE 1, NL 1, unknown 1</td>' in html
    assert '<td class="text">NL 1, US 1</td>' in html
    assert "<dt>Server location</dt><dd>&#39;Dutch-hosted&#39; has two meanings" in html


def _chart(html: str, name: str) -> str:
    start = html.index(f'<figure id="chart-{name}">')
    return html[start:html.index("</figure>", start)]


def test_html_charts_say_which_meaning_of_dutch_hosted_they_show(built):
    html = render_html(built)
    survival = _chart(html, "survival")
    curves = re.findall(r'<path class="series" data-name="([^"]+)"', survival)
    assert curves[:4] == ["Hoster established in NL", "Hoster established abroad",
                          "Server in NL", "Server abroad"]
    assert "where the hoster of record is established" in survival
    assert "where the server stood" in survival
    # Removal times: by establishment, and the same cases by server location.
    by_hoster = _chart(html, "distribution")
    assert "by where the hoster of record is established" in by_hoster
    assert set(re.findall(r'data-series="([^"]+)"', by_hoster)) == {
        "Hoster established in NL", "Hoster established abroad"}
    # A1 6 h and B1 12 h and B3 5 h from NL servers, A2 38 h from DE.
    by_server = _chart(html, "distribution-server")
    assert "by where the server stood" in by_server
    bars = dict(re.findall(r"<title>([^<]+): (\d+)</title></rect>", by_server))
    assert {bar: int(n) for bar, n in bars.items() if n != "0"} == {
        "Server in NL, 1–6 h": 1, "Server in NL, 6–12 h": 1, "Server in NL, 12–24 h": 1,
        "Server abroad, 1–3 d": 1}
    over_time = _chart(html, "over-time")
    assert "by where the hoster of record is established" in over_time
    # The groups' full names, as in the other charts (#15: one name, one colour).
    assert set(re.findall(r'data-series="([^"]+)"', over_time)) == {
        "Hoster established in NL: reported", "Hoster established in NL: removed",
        "Hoster established abroad: reported", "Hoster established abroad: removed"}
    charts = html[html.index('id="charts"'):html.index('id="method"')]
    assert "Dutch-hosted" not in charts and "Foreign" not in charts


def test_json_removal_time_distribution_has_both_splits(built):
    rows = {row["bucket"]: row for row in report_dict(built)["removal_time_distribution"]}
    assert rows["1–6 h"] == {"bucket": "1–6 h", "dutch": 0, "foreign": 1, "server_nl": 1,
                             "server_abroad": 0}
    assert rows["1–3 d"] == {"bucket": "1–3 d", "dutch": 1, "foreign": 0, "server_nl": 0,
                             "server_abroad": 1}


def test_the_command_line_summary_gives_both_splits(built, db_url, tmp_path):
    out = tmp_path / "r.md"
    result = CliRunner().invoke(main, ["--db", db_url, "report", "hosters", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        rf"{re.escape(str(out))}: md, 4 hosters, 7 cases \(hoster established in NL 3, "
        r"abroad 3; server in NL 3, abroad 2, unknown 2\), [0-9.]+ s\n", result.stderr)


def test_the_method_defines_both_meanings_and_their_sources(built):
    text = built.method["server_location"]
    for words in ("Establishment", "established in the Netherlands", "Server location",
                  "server stands there", "HOSTWATCH_GEOIP_DB", "MaxMind DB", "'geoip'",
                  "'rdap'", "the country the RDAP network object itself states",
                  "for an address the database does not know",
                  "never the holder's postal address", "else the country of its autonomous "
                  "system", "never a guess", "hotline statistics", "ATKM's reach",
                  "frozen per check"):
        assert words in text, words
    # The hotline comparison goes with the server split, ATKM with establishment.
    assert text.index("server_nl") < text.index("comparable with hotline statistics")
    assert text.index("comparable with ATKM's reach") < text.index("server_nl")
    assert "whatever country its address block is registered in or its server stands in" \
        in built.method["attribution"]
    assert json.loads(render_json(built))["method"]["server_location"] == text
    # And where this report's locations came from.
    assert text.endswith(" Server locations of these cases: 4 from the geolocation database, "
                         "built 2026-02-24, 1 from the RDAP network's country, 2 unknown.")


@pytest.mark.parametrize("clock", list(Clock))
def test_sql_server_split_equals_the_pure_figures(store, clock):
    """Random histories (tests/reports/test_hoster_sql.py) with random server
    countries: each server group and cross row has the pure figures of its
    cases, and the establishment split is unchanged by the server column."""
    rng = random.Random(14)
    with store.transaction() as session:
        cases, _ = _fill(session, rng, 200)
        located: dict[int, str | None] = {}
        for attribution in session.scalars(select(Attribution)):
            attribution.server_country = rng.choice(["NL", "NL", "DE", "US", None])
            located[attribution.case_id] = attribution.server_country
    with store.session() as session:
        built = hoster_report(session, ReportQuery(clock=clock), now=NOW)
    area = {name: (dutch, jurisdiction) for _, name, _, jurisdiction, dutch in HOSTERS}

    def server(case: CaseTimes) -> str:
        country = located.get(case.case_id)
        return "server_unknown" if country is None else (
            "server_nl" if country == "NL" else "server_abroad")

    groups = {name: [case for case in cases if server(case) == name] for name in SERVER_TOTALS}
    groups["server_nl_hoster_foreign"] = [
        case for case in groups["server_nl"] if case.hoster and not area[case.hoster][0]]
    groups["server_abroad_hoster_dutch"] = [
        case for case in groups["server_abroad"] if case.hoster and area[case.hoster][0]]
    assert all(groups.values())  # every group has cases to compare
    for name, mine in groups.items():
        got = (built.cross.get(name) or built.totals[name]).takedown
        want = takedown_figures(mine, clock)
        assert (got.cases, got.removed, got.reappearances, got.measured) == (
            want.cases, want.removed, want.reappearances, want.measured), name
        for part in ("median", "p90"):
            for bound in ("hours", "ci_lower_hours", "ci_upper_hours"):
                w = getattr(getattr(want, part), bound)
                h = getattr(getattr(got, part), bound)
                assert h == pytest.approx(w, abs=1e-9) if w is not None else h is None, (
                    name, part, bound)
    # The server split partitions all cases, deadlines included.
    all_ = built.totals["all"]
    assert sum(built.totals[name].cases for name in SERVER_TOTALS) == all_.cases == len(cases)
    for regime, outcomes in all_.deadlines.items():
        for outcome, n in outcomes.items():
            assert sum(built.totals[name].deadlines[regime][outcome]
                       for name in SERVER_TOTALS) == n
    # Per hoster: its countries count its cases by server country.
    for line in built.hosters:
        if not line.key:
            continue
        mine = [case for case in cases if case.hoster == line.hoster]
        counted: dict[str, int] = {}
        for case in mine:
            if located.get(case.case_id):
                counted[located[case.case_id]] = counted.get(located[case.case_id], 0) + 1
        assert line.server_countries == counted, line.hoster
        assert line.server_unknown == sum(1 for case in mine if not located.get(case.case_id))
        assert line.figures.cases == len(mine)


def test_a_cdn_edge_is_no_server_location(store):
    """The edge that answered says where the CDN answers, not where the
    material is hosted: a CDN-fronted case is 'server unknown', and its CDN's
    line lists no country."""
    with store.transaction() as session:
        hoster = add_hoster(session, "nl", REGISTRY["nl"][0], "NL", updated_at=T0)
        case = _add_case(session, "C1", {"nl": hoster}, "nl", "US",
                         [(2, ONLINE), (26, ONLINE)])
        attribution = session.get(Attribution, case.attribution_id)
        attribution.cdn, attribution.hoster_id, attribution.hoster = "TestCDN", None, None
        attribution.geoip_built_at = BUILT + timedelta(days=90)  # a later database
        _add_case(session, "N1", {"nl": hoster}, "nl", "DE", [(2, ONLINE)])
    with store.session() as session:
        report = hoster_report(session, now=LATER)
    totals = report.totals
    assert (totals["cdn"].cases, totals["server_unknown"].cases,
            totals["server_abroad"].cases, totals["server_nl"].cases) == (1, 1, 1, 0)
    assert [line.server_countries for line in report.hosters] == [{"DE": 1}, {}]
    # The method names the database build of the located case only, not the
    # later one that located the CDN's edge.
    assert report.method["server_location"].endswith(
        "Server locations of these cases: 1 from the geolocation database, built "
        "2026-02-24, 1 unknown.")
