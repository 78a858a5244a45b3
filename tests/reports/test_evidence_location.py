"""Evidence packs and the two meanings of "Dutch-hosted" (#14): per case where
the server stood and where the hoster is established, the flags where the two
part (both directions), the ATKM section that lists them, and `hostwatch
verify` of packs with and without the new columns."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from lab import TestInternet
from reports.evidence import (
    ATTRIBUTION_LOCATION_COLUMNS,
    CASE_LOCATION_COLUMNS,
    manifest_text,
)
from reports.location import LocationFlag, location_flag
from store import Store
from store.models import Attribution
from tests.reports.test_evidence import (
    Built,
    build_store,
    private_copy,
    read_csv,
    write_pack,
)
from tests.reports.test_evidence import verify_packs as verify

BUILT_AT = datetime(2026, 1, 20, 6, 0, tzinfo=UTC)


def place(db: str, case_id: int, country: str | None, source: str | None,
          built_at: datetime | None = None) -> None:
    """Set where the server of every check of one case stood."""
    store = Store(db)
    try:
        with store.transaction() as session:
            session.execute(update(Attribution).where(Attribution.case_id == case_id).values(
                server_country=country, server_country_source=source,
                geoip_built_at=built_at))
    finally:
        store.dispose()


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Iterator[Built]:
    """A1 at the Dutch hoster served from DE (geoip), B2 from NL (geoip), C3 from
    an unknown place; D4 at the US hoster served from NL (RDAP)."""
    workdir = tmp_path_factory.mktemp("evidence-location")
    with TestInternet(ttl=1) as net:
        built = build_store(f"sqlite:///{workdir / 'hostwatch.db'}", workdir, net)
    place(built.db, built.ids["A1"], "DE", "geoip", BUILT_AT)
    place(built.db, built.ids["B2"], "NL", "geoip", BUILT_AT)
    place(built.db, built.ids["C3"], None, None)
    place(built.db, built.ids["D4"], "NL", "rdap")
    for hoster, audience, out in (("dutch-test-hosting", "atkm", "nl-atkm"),
                                  ("dutch-test-hosting", "acm", "nl-acm"),
                                  ("Liberty Test Hosting LLC", "atkm", "us-atkm")):
        result = write_pack(built, "--hoster", hoster, "--for", audience, out=out)
        assert result.exit_code == 0, result.output
    yield built


@pytest.fixture
def built(original, tmp_path) -> Built:
    """A private copy of the store and its packs, free to change."""
    return private_copy(original, tmp_path)


def test_the_flag_rule_both_ways_and_never_on_unknowns():
    assert location_flag("NL", "DE") is LocationFlag.NL_HOSTER_SERVER_ABROAD
    assert location_flag("NL", "us") is LocationFlag.NL_HOSTER_SERVER_ABROAD
    assert location_flag("non-EU", "NL") is LocationFlag.FOREIGN_HOSTER_SERVER_NL
    assert location_flag("EU", "nl") is LocationFlag.FOREIGN_HOSTER_SERVER_NL
    assert location_flag("NL", "NL") is None
    assert location_flag("non-EU", "DE") is None and location_flag("EU", "DE") is None
    # Unknown establishment (a CDN-fronted case too), unknown server: no flag.
    assert location_flag("unknown", "NL") is None and location_flag(None, "DE") is None
    assert location_flag("NL", None) is None and location_flag("NL", "") is None
    # "EU" may be the Netherlands; ZZ is a registry's "unknown": neither is a country.
    assert location_flag("NL", "EU") is None and location_flag("NL", "ZZ") is None


def test_cases_csv_says_where_each_server_stood_and_flags_a_dutch_hoster_abroad(original):
    for out in ("nl-atkm", "nl-acm"):  # cases.csv is in both packs
        rows = {row["external_id"]: row for row in read_csv(original.workdir / out / "cases.csv")}
        assert {name: rows["A1"][name] for name in CASE_LOCATION_COLUMNS} == {
            "hoster_country": "NL", "server_country": "DE", "server_country_source": "geoip",
            "geoip_built_at": "2026-01-20T06:00:00Z",
            "location_flag": "nl_hoster_server_abroad"}
        assert (rows["B2"]["server_country"], rows["B2"]["location_flag"]) == ("NL", "")
        assert {name: rows["C3"][name] for name in CASE_LOCATION_COLUMNS} == {
            "hoster_country": "NL", "server_country": "", "server_country_source": "",
            "geoip_built_at": "", "location_flag": ""}


def test_a_foreign_hoster_with_a_server_in_nl_is_flagged(original):
    (d4,) = read_csv(original.workdir / "us-atkm" / "cases.csv")
    assert {name: d4[name] for name in CASE_LOCATION_COLUMNS} == {
        "hoster_country": "US", "server_country": "NL", "server_country_source": "rdap",
        "geoip_built_at": "", "location_flag": "foreign_hoster_server_nl"}
    text = (original.workdir / "us-atkm" / "atkm.md").read_text(encoding="utf-8")
    assert (f"| {original.ids['D4']} (D4) | NL (RDAP network's country) | US | "
            "`foreign_hoster_server_nl` |") in text
    assert "- `foreign_hoster_server_nl`: the hoster is established outside" in text
    assert f"Cases: {original.ids['D4']} (D4)." in text


def test_attributions_csv_has_the_server_location_of_every_check(original):
    rows = read_csv(original.workdir / "nl-atkm" / "attributions.csv")
    # After the columns of older packs; the reseller column (#14) came after them.
    assert list(rows[0])[-4:] == [*ATTRIBUTION_LOCATION_COLUMNS, "rdap_reseller"]
    a1 = [row for row in rows if row["case_id"] == str(original.ids["A1"])]
    assert {(row["server_country"], row["server_country_source"], row["geoip_built_at"])
            for row in a1} == {("DE", "geoip", "2026-01-20T06:00:00Z")}


def test_the_atkm_section_lists_the_flagged_cases_and_explains_both_meanings(original):
    ids = original.ids
    text = (original.workdir / "nl-atkm" / "atkm.md").read_text(encoding="utf-8")
    section = text[text.index("## Where the server stood and where the hoster is established"):]
    assert "when **the server stands there**" in section
    assert "where the hosting company is **established**" in section
    assert (f"| {ids['A1']} (A1) | DE (geolocation database, built 2026-01-20) | NL | "
            "`nl_hoster_server_abroad` |") in section
    assert f"| {ids['B2']} (B2) | NL (geolocation database, built 2026-01-20) | NL | - |" in (
        section)
    assert f"| {ids['C3']} (C3) | unknown | NL | - |" in section
    flagged = section[section.index("### Cases where the two meanings part"):]
    abroad = next(line for line in flagged.splitlines()
                  if line.startswith("- `nl_hoster_server_abroad`"))
    assert "ATKM's removal orders reach the hoster" in abroad
    assert abroad.endswith(f"Cases: {ids['A1']} (A1).")
    foreign = next(line for line in flagged.splitlines()
                   if line.startswith("- `foreign_hoster_server_nl`"))
    assert foreign.endswith("Cases: none.")
    assert "not flagged" in flagged
    jurisdiction = (original.workdir / "nl-atkm" / "jurisdiction.md").read_text(
        encoding="utf-8")
    assert "- server location: DE (geolocation database, built 2026-01-20)" in jurisdiction
    assert "- server location: unknown" in jurisdiction
    method = (original.workdir / "nl-atkm" / "method.md").read_text(encoding="utf-8")
    assert "## Where the server stood" in method


def test_a_pack_with_the_location_columns_verifies(built):
    result = verify(built, "nl-atkm", "nl-atkm.zip", "nl-acm", "us-atkm")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].endswith("all hold")


def without_location_columns(pack: Path) -> None:
    """Rewrite the pack as hostwatch wrote it before the location columns (#14)."""
    for name, dropped in (("cases.csv", CASE_LOCATION_COLUMNS),
                          ("attributions.csv", ATTRIBUTION_LOCATION_COLUMNS)):
        path = pack / name
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
        keep = [i for i, column in enumerate(rows[0]) if column not in dropped]
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerows([[row[i] for i in keep]
                                                           for row in rows])
        path.write_text(out.getvalue(), encoding="utf-8", newline="")
    files = {p.name: p.read_bytes() for p in pack.iterdir() if p.name != "MANIFEST.sha256"}
    (pack / "MANIFEST.sha256").write_text(manifest_text(files), encoding="utf-8")


def test_a_pack_written_before_the_location_columns_still_verifies(built):
    pack = built.workdir / "nl-atkm"
    without_location_columns(pack)
    assert "server_country" not in (pack / "cases.csv").read_text(encoding="utf-8")
    result = verify(built, "nl-atkm")
    assert result.exit_code == 0, result.output
    # ...and is still checked: a changed file is named.
    path = pack / "cases.csv"
    path.write_bytes(path.read_bytes().replace(b"A1", b"A9"))
    result = verify(built, "nl-atkm")
    assert result.exit_code == 1
    assert "cases.csv: changed since the pack was written" in result.stderr


def test_a_cdn_edge_is_no_place_where_the_server_stood():
    """A CDN-fronted case's edge says where the CDN answers: the pack's case
    table leaves the server location empty and flags nothing."""
    from types import SimpleNamespace

    from reports.evidence_data import locations

    edge = SimpleNamespace(id=1, cdn="TestCDN", server_country="NL",
                           server_country_source="geoip", geoip_built_at=datetime.now(UTC),
                           hoster_country=None, jurisdiction="non-EU")
    origin = SimpleNamespace(id=2, cdn=None, server_country="NL", server_country_source="geoip",
                             geoip_built_at=None, hoster_country="US", jurisdiction="non-EU")
    data = SimpleNamespace(attributions=[edge, origin],
                           cases=[SimpleNamespace(id=10, attribution_id=1),
                                  SimpleNamespace(id=11, attribution_id=2)])
    found = locations(data)
    assert (found[10].server_country, found[10].server_country_source, found[10].flag) == (
        None, None, None)
    assert (found[11].server_country, found[11].flag) == (
        "NL", LocationFlag.FOREIGN_HOSTER_SERVER_NL)


def figures_locations(pack: Path) -> dict[str, dict[str, str | None]]:
    """figures.json's per-case location by external id."""
    figures = json.loads((pack / "figures.json").read_text(encoding="utf-8"))
    return {entry["external_id"]: {name: entry[name] for name in
                                   ("server_country", "server_country_source",
                                    "location_flag")}
            for entry in figures["per_case"]}


def test_figures_json_says_where_each_server_stood_as_cases_csv_does(original):
    for out in ("nl-atkm", "nl-acm", "us-atkm"):
        pack = original.workdir / out
        per_case = figures_locations(pack)
        # The same cells as cases.csv (empty there, null here).
        for row in read_csv(pack / "cases.csv"):
            assert per_case[row["external_id"]] == {
                name: row[name] or None for name in per_case[row["external_id"]]}
    nl = figures_locations(original.workdir / "nl-atkm")
    assert nl["A1"] == {"server_country": "DE", "server_country_source": "geoip",
                        "location_flag": "nl_hoster_server_abroad"}
    assert nl["C3"] == dict.fromkeys(("server_country", "server_country_source",
                                      "location_flag"))
    assert figures_locations(original.workdir / "us-atkm")["D4"] == {
        "server_country": "NL", "server_country_source": "rdap",
        "location_flag": "foreign_hoster_server_nl"}


def test_dsa_json_sums_up_where_the_servers_stood(original):
    pack = original.workdir / "nl-acm"
    dsa = json.loads((pack / "dsa.json").read_text(encoding="utf-8"))
    # A1 served from DE, B2 from NL, C3 from an unknown place.
    assert dsa["server_location"] == {
        "cases_per_server_country": {"DE": 1, "NL": 1},
        "cases_without_server_country": 1,
        "cases_served_from_nl": 1, "cases_served_from_abroad": 1}
    text = (pack / "dsa.md").read_text(encoding="utf-8")
    section = text[text.index("## Where the servers stood"):]
    assert "- served from the Netherlands: 1\n- served from abroad: 1\n" in section
    assert "- server location unknown (or CDN-fronted): 1" in section
    assert "- per server country: DE 1, NL 1" in section


def test_a_pack_written_before_the_location_figures_still_verifies(built):
    """figures.json without the per-case location, dsa.json without
    server_location: as hostwatch wrote them before (#14)."""
    pack = built.workdir / "nl-acm"
    figures = json.loads((pack / "figures.json").read_text(encoding="utf-8"))
    for entry in figures["per_case"]:
        for name in ("server_country", "server_country_source", "location_flag"):
            del entry[name]
    dsa = json.loads((pack / "dsa.json").read_text(encoding="utf-8"))
    del dsa["server_location"]
    (pack / "figures.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    (pack / "dsa.json").write_text(json.dumps(dsa, indent=2), encoding="utf-8")
    without_location_columns(pack)  # rewrites the manifest too
    result = verify(built, "nl-acm")
    assert result.exit_code == 0, result.output



def _attribution(**given: object) -> Attribution:
    fields = dict(id=1, jurisdiction="unknown", dutch=False, hoster_country=None, asn=64510,
                  as_name="TESTCDN", as_country="US", network_name="TESTCDN-NET",
                  rdap_org="Test CDN Inc.", rdap_org_country="US", rdap_country="US",
                  cdn=None, sources={}, server_country=None, server_country_source=None,
                  geoip_built_at=None, rdap_reseller=None)
    fields.update(given)
    return Attribution(**fields)


def test_jurisdiction_md_gives_no_server_location_for_a_cdn_edge():
    """The pack's jurisdiction.md agrees with its cases.csv: the edge a CDN
    answered from is not where the server stood; an origin's location is."""
    from kernel.state import Debounce
    from reports.evidence_data import Audience, EvidenceData
    from reports.evidence_docs import jurisdiction_md
    from store.models import Case, Hoster

    hoster = Hoster(id=1, legal_name="Test Hoster B.V.", key="test-hoster",
                    source="registry", country="NL")
    edge = _attribution(id=1, cdn="TestCDN", server_country="NL",
                        server_country_source="geoip", geoip_built_at=BUILT_AT)
    origin = _attribution(id=2, jurisdiction="NL", dutch=True, hoster_country="NL",
                          server_country="DE", server_country_source="geoip",
                          geoip_built_at=BUILT_AT,
                          # stored before registry text was cleaned: shown, never acted on
                          rdap_reseller="Evil\x1b[2J\u202eRTL")
    data = EvidenceData(
        hoster=hoster, audience=Audience.ATKM, since=None, until=None,
        cases=[Case(id=10, attribution_id=1), Case(id=11, attribution_id=2)], checks=[],
        attributions=[edge, origin], notices=[], orders=[], head_check_id=None,
        head_hash="0" * 64, store_url="sqlite://", generated_at=BUILT_AT, rules=Debounce())
    text = jurisdiction_md(data)
    assert ("- server location: unknown: served through the CDN TestCDN, whose answering "
            "edge (NL) is not where the material is hosted") in text
    assert "- server location: DE (geolocation database, built 2026-01-20)" in text
    assert "NL (geolocation database" not in text
    assert "\x1b" not in text and "\u202e" not in text
    assert r"reseller block holder (RDAP): Evil\\x1b\[2J\\u202eRTL," in text
