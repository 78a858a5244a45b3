"""XARF v4 export: the pure builder (reports/xarf.py) and `hostwatch export xarf`.

Every report is validated against the XARF project's own v4 schemas
(tests/data/xarf, copied from xarf/xarf-spec), formats included. Reports of
hostwatch's extension type ``ncii`` are validated against those schemas with
only that type added (built here at runtime; the copied files stay as they are)
and shown to be rejected by the official ones.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from click.testing import CliRunner, Result
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from sqlalchemy import create_engine, text

from hostwatch.cli import main
from hostwatch.commands.export import export, find_hoster
from kernel.urls import normalise_url
from lab import TestInternet
from reports.xarf import (
    EXTENSION_TAG,
    CaseFacts,
    HosterFacts,
    NoXarfType,
    Party,
    SeenFacts,
    XarfError,
    build_report,
    uri_of,
)
from store import Hoster, Store
from store.hosters import HosterAmbiguous
from tests.conftest import PG_URL, need_postgres
from tests.enrichment.conftest import enrich_env

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "xarf" / "v4"
REPORTER = Party("Offlimits", "meldpunt@offlimits.test", "offlimits.test")
T = datetime(2026, 2, 2, 12, tzinfo=UTC)


def _official_master() -> dict[str, Any]:
    return json.loads((SCHEMAS / "xarf-v4-master.json").read_text())


def ncii_master() -> dict[str, Any]:
    """The official master schema with hostwatch's ``ncii`` type added and
    nothing else changed: content/ncii becomes a valid category/type pair, and
    such a report must satisfy content-base.json (what every content report
    shares)."""
    extended = copy.deepcopy(_official_master())
    extended["$id"] = "https://xarf.org/schemas/v4/hostwatch-ncii-master.json"
    pairs = extended["allOf"][1]["anyOf"]
    [content] = [pair for pair in pairs
                 if pair["properties"]["category"] == {"const": "content"}]
    content["properties"]["type"]["enum"].append("ncii")
    extended["allOf"].append({
        "if": {"properties": {"category": {"const": "content"}, "type": {"const": "ncii"}}},
        "then": {"$ref": "types/content-base.json"}})
    return extended


@cache
def _validator(with_ncii: bool = False) -> Draft202012Validator:
    resources = []
    for path in SCHEMAS.rglob("*.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    master = ncii_master() if with_ncii else _official_master()
    return Draft202012Validator(master, registry=Registry().with_resources(resources),
                                format_checker=FormatChecker())


def schema_errors(report: dict[str, Any]) -> list[str]:
    """What the official XARF v4 master schema finds wrong ([] = valid)."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _validator().iter_errors(report)]


def ncii_schema_errors(report: dict[str, Any]) -> list[str]:
    """What the official schemas extended by type ``ncii`` find wrong."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _validator(with_ncii=True).iter_errors(report)]


def official_rejections(report: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """Which rule of the official master schema each error breaks."""
    return [(str(e.validator), list(e.relative_schema_path))
            for e in _validator().iter_errors(report)]


# -- the pure builder ---------------------------------------------------------

def _case(**changes: Any) -> CaseFacts:
    url = normalise_url("http://registered.test/img/a.jpg")
    base = CaseFacts(source="offlimits", external_id="2026-0001", url=url.url, host=url.host,
                     category="csam", state="online",
                     reported_at=datetime(2026, 2, 1, 10, tzinfo=UTC),
                     ref_sha256="AB" * 32, last_verdict="online", last_checked_at=T,
                     last_served_at=T)
    return replace(base, **changes)


SEEN = SeenFacts(ip="127.1.1.10", hostname="registered.test", asn=64501,
                 nameservers=("ns1.test",), checked_at=T, verdict="online", http_status=200,
                 content_type="image/jpeg")
HOSTER = HosterFacts(key="dutch-test-hosting", legal_name="Dutch Test Hosting B.V.",
                     country="NL", abuse="abuse@dutchhost.test")


def _build(case: CaseFacts | None = None, seen: SeenFacts = SEEN, **kwargs: Any
           ) -> dict[str, Any]:
    kwargs.setdefault("reporter", REPORTER)
    kwargs.setdefault("classification", "baseline")
    return build_report(case or _case(), seen, HOSTER, report_id=str(uuid.uuid4()), **kwargs)


def test_a_csam_case_makes_a_valid_content_csam_report_with_the_check_facts():
    report = _build()
    assert schema_errors(report) == []
    assert (report["category"], report["type"], report["xarf_version"]) == (
        "content", "csam", "4.2.0")
    assert report["reporter"] == report["sender"] == {
        "org": "Offlimits", "contact": "meldpunt@offlimits.test", "domain": "offlimits.test"}
    assert report["url"] == "http://registered.test/img/a.jpg"
    assert report["domain"] == "registered.test"
    assert report["source_identifier"] == "127.1.1.10"
    assert report["asn"] == 64501
    assert report["hosting_provider"] == "Dutch Test Hosting B.V."
    assert report["timestamp"] == report["verified_at"] == "2026-02-02T12:00:00Z"
    assert report["verification_method"] == "automated_crawler"
    assert report["hash_values"] == {"sha256": "ab" * 32}
    assert report["media_type"] == "image"
    assert report["classification"] == "baseline"
    assert report["content_removed"] is False
    assert "Case offlimits/2026-0001 (csam)" in report["description"]
    assert "online, HTTP 200, address 127.1.1.10 (AS64501)" in report["description"]
    # Never any material: no evidence item, no payload anywhere.
    assert "evidence" not in report
    assert "payload" not in json.dumps(report)


def test_a_separate_sender_is_named_as_sender():
    sender = Party("Hotline Services", "xarf@services.test", "services.test")
    report = _build(sender=sender)
    assert report["sender"]["org"] == "Hotline Services"
    assert report["reporter"]["org"] == "Offlimits"
    assert schema_errors(report) == []


def test_ai_generated_csam_is_type_csam_with_a_tag():
    report = _build(_case(category="csam_ai"))
    assert (report["type"], report["tags"]) == ("csam", ["csam:ai_generated"])
    assert schema_errors(report) == []


@pytest.mark.parametrize("category",
                         ["ncii", "deepfake_adult", "sextortion", "terrorist", "other"])
def test_categories_without_an_xarf_type_are_refused(category):
    with pytest.raises(NoXarfType, match=category):
        _build(_case(category=category))


@pytest.mark.parametrize("category", ["ncii", "deepfake_adult", "sextortion"])
def test_intimate_image_cases_are_refused_unless_the_extension_is_asked_for(category):
    with pytest.raises(NoXarfType, match="hostwatch's own type ncii, not in XARF v4"):
        _build(_case(category=category))


@pytest.mark.parametrize("category", ["terrorist", "other"])
def test_terrorist_and_other_stay_refused_with_the_extension(category):
    with pytest.raises(NoXarfType, match=f"{category!r} has no XARF v4 type$"):
        _build(_case(category=category), with_ncii=True)


@pytest.mark.parametrize(("category", "tags"), [
    ("ncii", ["xarf-extension:ncii"]),
    ("deepfake_adult", ["xarf-extension:ncii", "ncii:deepfake"]),
    ("sextortion", ["xarf-extension:ncii", "ncii:sextortion"]),
])
def test_with_ncii_an_intimate_image_case_is_content_ncii_tagged_as_extension(category, tags):
    # No classification needed: that is a csam (child-abuse) field.
    report = _build(_case(category=category), with_ncii=True, classification=None)
    assert (report["category"], report["type"]) == ("content", "ncii")
    assert report["tags"] == tags
    assert "classification" not in report
    assert report["url"] == "http://registered.test/img/a.jpg"
    assert report["hash_values"] == {"sha256": "ab" * 32}
    assert f"Case offlimits/2026-0001 ({category})" in report["description"]
    assert "evidence" not in report
    # Valid where the receiver accepts the extension...
    assert ncii_schema_errors(report) == []
    # ...and rejected by the official v4 schema, for the unknown pair alone:
    # the warning in the documentation is true.
    assert official_rejections(report) == [("anyOf", ["allOf", 1, "anyOf"])]


def test_a_classification_given_is_not_put_on_ncii_reports():
    report = _build(_case(category="deepfake_adult"), with_ncii=True, classification="A1")
    assert "classification" not in report
    assert ncii_schema_errors(report) == []


def test_csam_reports_are_unchanged_by_the_extension():
    plain, extended = _build(), _build(with_ncii=True)
    assert schema_errors(extended) == []
    assert extended["type"] == "csam" and "tags" not in extended
    del plain["report_id"], extended["report_id"]
    assert plain == extended
    with pytest.raises(XarfError, match="classification"):
        _build(with_ncii=True, classification=None)


def test_the_extended_schema_checks_ncii_reports_as_content_reports():
    # The test schema is not a rubber stamp: content-base rules apply to ncii.
    report = _build(_case(category="ncii"), with_ncii=True)
    no_url = {k: v for k, v in report.items() if k != "url"}
    assert any("'url' is a required property" in e for e in ncii_schema_errors(no_url))
    bad_tag = {**report, "tags": ["NCII extension"]}
    assert ncii_schema_errors(bad_tag) != []
    elsewhere = {**report, "category": "messaging"}
    assert ncii_schema_errors(elsewhere) != []
    # And it differs from the official master only by the ncii pair and its
    # dispatch to content-base.json.
    extended, official = ncii_master(), _official_master()
    assert extended["allOf"].pop()["then"] == {"$ref": "types/content-base.json"}
    for pair in extended["allOf"][1]["anyOf"]:
        if "ncii" in pair["properties"]["type"]["enum"]:
            pair["properties"]["type"]["enum"].remove("ncii")
    assert {**extended, "$id": official["$id"]} == official


@pytest.mark.parametrize(("state", "removed"), [
    ("online", False), ("reappeared", False), ("removed", True), ("pending_removal", None)])
def test_content_removed_follows_the_case_state(state, removed):
    report = _build(_case(state=state))
    assert report.get("content_removed") is removed
    assert f"state {state}" in report["description"]
    assert schema_errors(report) == []


def test_a_case_never_seen_served_is_dated_by_its_report_and_not_verified():
    report = _build(_case(state="pending_removal", last_served_at=None, last_verdict="timeout"),
                    replace(SEEN, verdict="timeout", http_status=None, content_type=None))
    assert report["timestamp"] == "2026-02-01T10:00:00Z"
    assert "verified_at" not in report and "media_type" not in report
    assert schema_errors(report) == []


def test_a_url_with_quotes_unicode_and_escapes_round_trips():
    raw = 'https://Bücher.example/fotó "1"<x>|a%20b.jpg?q=ä{b}&c=%zz#frag'
    normal = normalise_url(raw)
    report = _build(_case(url=normal.url, host=normal.host))
    assert report["url"] == ("https://xn--bcher-kva.example/fot%C3%B3%20%221%22%3Cx%3E%7Ca%20b"
                             ".jpg?q=%C3%A4%7Bb%7D&c=%25zz")
    parts = urlsplit(report["url"])
    assert unquote(parts.path) == '/fotó "1"<x>|a b.jpg'
    assert unquote(parts.query) == "q=ä{b}&c=%zz"
    # The punycode host does not fit the schema's domain pattern ("--"): left out.
    assert "domain" not in report
    assert schema_errors(report) == []
    assert json.loads(json.dumps(report, ensure_ascii=False)) == report


def test_uri_of_leaves_a_plain_url_alone():
    url = "http://127.0.0.1:8080/a/b;c=d?x=1&y=%2F~z"
    assert uri_of(url) == url


def test_an_ip_literal_host_has_no_domain():
    normal = normalise_url("http://[2001:db8::1]:8080/a.jpg")
    report = _build(_case(url=normal.url, host=normal.host), replace(SEEN, ip="2001:db8::1"))
    assert "domain" not in report
    assert report["url"] == "http://[2001:db8::1]:8080/a.jpg"
    assert schema_errors(report) == []


@pytest.mark.parametrize(("party", "problem"), [
    (Party("", "a@b.test", "b.test"), "reporter org: missing"),
    (Party("X", "not-an-address", "b.test"), "reporter contact: not an e-mail"),
    (Party("X", "a@b.test", "not a domain"), "reporter domain: not a domain"),
])
def test_a_bad_reporter_is_an_error_not_an_invalid_report(party, problem):
    with pytest.raises(XarfError, match=problem):
        _build(reporter=party)


def test_csam_needs_a_classification():
    with pytest.raises(XarfError, match="classification"):
        _build(classification=None)
    with pytest.raises(XarfError, match="classification"):
        _build(classification="A3")


# -- the command, on a store built by import + import-checks + enrich ---------

@dataclass(frozen=True)
class Built:
    db: str
    work: Path
    urls: dict[str, str]  # case id -> URL as reported


def _cases_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "url", "category", "reported_at", "notice_sent_at", "sha256"])
    writer.writerows(rows)
    return out.getvalue()


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def built(request, tmp_path_factory) -> Iterator[Built]:
    """A store with cases of two hosters in every state, attributed by the
    real `hostwatch enrich` against the local test internet."""
    work = tmp_path_factory.mktemp("xarf")
    schema = None
    if request.param == "sqlite":
        db = f"sqlite:///{work / 'hostwatch.db'}"
    else:
        need_postgres()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        db = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    with TestInternet(ttl=1) as net:
        nl = net.add_host("registered.test", network=64501)  # Dutch Test Hosting (registry)
        de = net.add_host("rhein.test", network=64503)  # Rhein Test Hosting (RDAP)
        urls = {"A1": nl.url('/fotó "1"<x>.jpg?s=ä&t=%zz'), "A2": nl.url("/ai.jpg"),
                "A3": nl.url("/pending.jpg"), "A4": nl.url("/removed.jpg"),
                "A5": nl.url("/ncii.jpg"), "A6": nl.url("/terror.mp4"),
                "A7": nl.url("/deepfake.jpg"), "A8": nl.url("/unchecked.jpg"),
                "A9": nl.url("/sextortion.jpg"), "B1": de.url("/b.jpg")}
        category = {"A2": "csam_ai", "A5": "ncii", "A6": "terrorist", "A7": "deepfake_adult",
                    "A9": "sextortion"}
        (work / "reports.csv").write_text(_cases_csv([
            [case, url, category.get(case, "csam"), "2026-02-01T10:00:00Z", "",
             "ab" * 32 if case == "A1" else ""] for case, url in urls.items()]), "utf-8")
        history = {"A1": ["online"], "A2": ["online", "http_gone", "http_gone", "online"],
                   "A3": ["online", "http_gone"], "A4": ["online", "http_gone", "http_gone"],
                   "A5": ["online"], "A6": ["online"], "A7": ["online"], "A9": ["online"],
                   "B1": ["online"]}
        lines = ["case_id,checked_at,verdict,http_status,ip"]
        for case, verdicts in history.items():
            ip = de.ip if case.startswith("B") else nl.ip
            for day, verdict in enumerate(verdicts, start=2):
                status = 200 if verdict == "online" else 404
                lines.append(f"{case},2026-02-{day:02d}T12:00:00Z,{verdict},{status},{ip}")
        (work / "checks.csv").write_text("\n".join(lines) + "\n")
        for command in (["import", "reports.csv"], ["import-checks", "checks.csv"]):
            result = CliRunner().invoke(
                main, ["--db", db, command[0], str(work / command[1])])
            assert result.exit_code == 0, result.output
        enriched = subprocess.run(
            [sys.executable, "-m", "hostwatch", "--db", db, "enrich"],
            env=enrich_env(net, work), cwd=work, capture_output=True, text=True, timeout=120,
            check=False)
        assert enriched.returncode == 0, enriched.stderr
        assert "15 checks attributed" in enriched.stdout
    yield Built(db, work, urls)
    if schema is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# Non-ASCII on purpose: written as UTF-8, never as \u escapes.
ORG = "Offlimits – Expertisecentrum Online Misbruik"
IDENTITY = {"HOSTWATCH_XARF_REPORTER_ORG": ORG,
            "HOSTWATCH_XARF_REPORTER_CONTACT": "meldpunt@offlimits.test",
            "HOSTWATCH_XARF_REPORTER_DOMAIN": "offlimits.test",
            "HOSTWATCH_XARF_CLASSIFICATION": "baseline"}


def run_export(built: Built, *args: str, env: dict[str, str | None] | None = None) -> Result:
    full: dict[str, str | None] = {
        **dict.fromkeys(["HOSTWATCH_XARF_SENDER_ORG", "HOSTWATCH_XARF_SENDER_CONTACT",
                         "HOSTWATCH_XARF_SENDER_DOMAIN"]),
        **IDENTITY, **(env or {})}
    return CliRunner().invoke(export, ["xarf", *args], obj={"db": built.db}, env=full)


def _by_case(reports: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {}
    for report in reports:
        case = report["description"].split()[1].split("/")[1]
        found[case] = report
    return found


def test_export_writes_one_valid_report_per_open_csam_case_of_the_hoster(built):
    result = run_export(built, "--hoster", "dutch-test-hosting")
    assert result.exit_code == 0, result.output
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    for report in reports:
        assert schema_errors(report) == [], report
    by_case = _by_case(reports)
    # Online, reappeared, pending; not removed (A4), unchecked (A8), another
    # hoster's (B1), nor the categories without an XARF type (A5-A7, A9).
    assert sorted(by_case) == ["A1", "A2", "A3"]
    assert len({r["report_id"] for r in reports}) == 3
    assert by_case["A1"]["content_removed"] is False
    assert by_case["A2"]["tags"] == ["csam:ai_generated"]
    assert "state reappeared" in by_case["A2"]["description"]
    assert "content_removed" not in by_case["A3"]
    a1 = by_case["A1"]
    assert a1["hosting_provider"] == "Dutch Test Hosting B.V."
    assert (a1["asn"], a1["source_identifier"], a1["domain"]) == (64501, "127.1.1.10",
                                                                  "registered.test")
    assert a1["hash_values"] == {"sha256": "ab" * 32}
    # The URL with quotes and unicode: decoded, it is the reported one.
    reported, sent = urlsplit(built.urls["A1"]), urlsplit(a1["url"])
    assert (unquote(sent.path), unquote(sent.query)) == (reported.path, reported.query)
    assert sent.netloc == reported.netloc
    assert a1["reporter"]["org"] == ORG
    assert f'"org": "{ORG}"' in result.stdout  # UTF-8 as it is, not \u2013
    assert "xarf: 3 reports for Dutch Test Hosting B.V." in result.stderr
    assert "abuse abuse@dutchhost.test" in result.stderr
    assert "skipped 1 ncii cases (no XARF v4 type; " in result.stderr
    assert "skipped 1 terrorist cases" in result.stderr
    assert "skipped 1 deepfake_adult cases" in result.stderr


HINT = "(no XARF v4 type; --with-ncii exports them as hostwatch's own type ncii)"


def test_without_with_ncii_intimate_image_cases_are_skipped_with_a_hint(built):
    result = run_export(built, "--hoster", "dutch-test-hosting")
    assert result.exit_code == 0, result.output
    types = {r["type"] for r in map(json.loads, result.stdout.splitlines())}
    assert types == {"csam"}
    assert ("xarf: 3 reports for Dutch Test Hosting B.V. (key dutch-test-hosting, abuse "
            "abuse@dutchhost.test) to standard output: 1 online, 1 pending_removal, "
            "1 reappeared") in result.stderr.splitlines()
    skipped = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert skipped == [
        f"xarf: skipped 1 deepfake_adult cases {HINT}: hotline/A7",
        f"xarf: skipped 1 ncii cases {HINT}: hotline/A5",
        f"xarf: skipped 1 sextortion cases {HINT}: hotline/A9",
        "xarf: skipped 1 terrorist cases (no XARF v4 type): hotline/A6",
    ]
    assert "type ncii, hostwatch's own extension" not in result.stderr


def test_with_ncii_intimate_image_cases_are_exported_as_the_ncii_extension(built):
    result = run_export(built, "--hoster", "dutch-test-hosting", "--with-ncii")
    assert result.exit_code == 0, result.output
    by_case = _by_case([json.loads(line) for line in result.stdout.splitlines()])
    assert sorted(by_case) == ["A1", "A2", "A3", "A5", "A7", "A9"]
    for case in ("A1", "A2", "A3"):  # csam: official XARF v4, as before
        assert by_case[case]["type"] == "csam"
        assert schema_errors(by_case[case]) == []
    tags = {"A5": [EXTENSION_TAG], "A7": [EXTENSION_TAG, "ncii:deepfake"],
            "A9": [EXTENSION_TAG, "ncii:sextortion"]}
    for case, expected in tags.items():
        report = by_case[case]
        assert (report["category"], report["type"], report["tags"]) == (
            "content", "ncii", expected)
        assert "classification" not in report
        assert report["hosting_provider"] == "Dutch Test Hosting B.V."
        assert ncii_schema_errors(report) == []
        assert official_rejections(report) == [("anyOf", ["allOf", 1, "anyOf"])]
    assert "xarf: 6 reports for Dutch Test Hosting B.V." in result.stderr
    assert ("xarf: 3 of them have type ncii, hostwatch's own extension, not XARF v4: "
            "receivers that validate against the official schema reject them") in result.stderr
    skipped = [line for line in result.stderr.splitlines() if "skipped" in line]
    assert skipped == ["xarf: skipped 1 terrorist cases (no XARF v4 type): hotline/A6"]


def test_with_ncii_the_classification_is_still_needed_for_the_csam_cases_only(built):
    result = run_export(built, "--hoster", "dutch-test-hosting", "--with-ncii",
                        env={"HOSTWATCH_XARF_CLASSIFICATION": None})
    assert result.exit_code == 2
    assert "3 csam cases need --classification" in result.stderr
    assert result.stdout == ""


def test_all_adds_the_removed_cases(built):
    result = run_export(built, "--hoster", "dutch-test-hosting", "--all")
    assert result.exit_code == 0, result.output
    by_case = _by_case([json.loads(line) for line in result.stdout.splitlines()])
    assert sorted(by_case) == ["A1", "A2", "A3", "A4"]
    assert by_case["A4"]["content_removed"] is True
    assert schema_errors(by_case["A4"]) == []


def test_the_hoster_is_found_by_key_or_legal_name_in_any_case(built):
    by_key = run_export(built, "--hoster", "DUTCH-test-hosting")
    by_name = run_export(built, "--hoster", "dutch test hosting b.v.")
    other = run_export(built, "--hoster", "Rhein Test Hosting GmbH")
    assert by_key.exit_code == by_name.exit_code == other.exit_code == 0
    assert sorted(_by_case([json.loads(x) for x in by_name.stdout.splitlines()])) == [
        "A1", "A2", "A3"]
    assert len(by_key.stdout.splitlines()) == 3
    assert list(_by_case([json.loads(x) for x in other.stdout.splitlines()])) == ["B1"]


def test_an_unknown_hoster_is_an_error_that_lists_close_matches(built):
    result = run_export(built, "--hoster", "dutch tset hosting")
    assert result.exit_code == 2
    assert "no hoster with key or name 'dutch tset hosting'" in result.stderr
    assert "Dutch Test Hosting B.V. (key dutch-test-hosting)" in result.stderr
    assert result.stdout == ""
    part = run_export(built, "--hoster", "rhein")
    assert part.exit_code == 2
    assert "close matches: Rhein Test Hosting GmbH (key " in part.stderr
    nothing = run_export(built, "--hoster", "zzzz")
    assert nothing.exit_code == 2 and "no close match" in nothing.stderr


def test_a_directory_gets_one_file_per_report_and_a_file_json_lines(built, tmp_path):
    folder = tmp_path / "notices"
    result = run_export(built, "--hoster", "dutch-test-hosting", "-o", f"{folder}/")
    assert result.exit_code == 0, result.output
    files = sorted(folder.glob("*.json"))
    assert len(files) == 3
    for path in files:
        report = json.loads(path.read_text("utf-8"))
        assert path.name == f"{report['report_id']}.json"
        assert schema_errors(report) == []
    lines = tmp_path / "notices.jsonl"
    result = run_export(built, "--hoster", "dutch-test-hosting", "-o", str(lines))
    assert result.exit_code == 0, result.output
    reports = [json.loads(line) for line in lines.read_text("utf-8").splitlines()]
    assert sorted(_by_case(reports)) == ["A1", "A2", "A3"]
    assert result.stdout == ""
    # Non-ASCII is written as it is (UTF-8), not as \u escapes.
    assert ORG in lines.read_text("utf-8")
    assert all(ORG in path.read_text("utf-8") for path in files)


def test_an_output_in_a_missing_directory_is_an_error(built, tmp_path):
    result = run_export(built, "--hoster", "dutch-test-hosting",
                        "-o", str(tmp_path / "nowhere" / "out.jsonl"))
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


def test_a_legal_name_shared_by_two_hosters_asks_for_the_key(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    store.upgrade()
    with store.transaction() as session:
        for key in ("rdap:acme hosting", "asn:64999"):
            session.add(Hoster(key=key, legal_name="ACME Hosting", source="rdap",
                               updated_at=T))
    with store.session() as session, pytest.raises(HosterAmbiguous) as raised:
        find_hoster(session, "acme hosting")
    assert "hoster 'acme hosting' is ambiguous: 2 hosters match" in str(raised.value)
    assert "asn:64999 (ACME Hosting); rdap:acme hosting (ACME Hosting)" in str(raised.value)
    assert raised.value.candidates == [("asn:64999", "ACME Hosting"),
                                       ("rdap:acme hosting", "ACME Hosting")]
    with store.session() as session:
        assert find_hoster(session, "ASN:64999").key == "asn:64999"
    store.dispose()


def test_a_missing_reporter_identity_is_an_error_and_writes_nothing(built, tmp_path):
    out = tmp_path / "out.jsonl"
    result = run_export(built, "--hoster", "dutch-test-hosting", "-o", str(out),
                        env={"HOSTWATCH_XARF_REPORTER_CONTACT": None})
    assert result.exit_code == 2
    assert "missing reporter identity" in result.stderr
    assert "--reporter-contact (or HOSTWATCH_XARF_REPORTER_CONTACT)" in result.stderr
    assert not out.exists()
    bad = run_export(built, "--hoster", "dutch-test-hosting", "--reporter-domain", "x y")
    assert bad.exit_code == 2 and "--reporter-domain: not a domain name" in bad.stderr


def test_a_missing_classification_is_an_error(built):
    result = run_export(built, "--hoster", "dutch-test-hosting",
                        env={"HOSTWATCH_XARF_CLASSIFICATION": None})
    assert result.exit_code == 2
    assert "3 csam cases need --classification" in result.stderr
    assert result.stdout == ""


def test_a_partial_sender_is_an_error(built):
    result = run_export(built, "--hoster", "dutch-test-hosting",
                        "--sender-org", "Hotline Services")
    assert result.exit_code == 2
    assert "a sender needs org, contact and domain" in result.stderr
