"""`hostwatch cases`: the plain-text header row and the --hoster filter.

The store's cases are attributed by the real `hostwatch enrich` against the
local test internet: two hosters, one Dutch (registry) and one German (RDAP).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner, Result

from hostwatch.cli import main
from lab import TestInternet
from store import Hoster, Store
from tests.enrichment.conftest import hostwatch as run_hostwatch

HEADER = "case\tstate\tlast_verdict\tremoved_at\turl"


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("cases")
    url = f"sqlite:///{work / 'hostwatch.db'}"
    with TestInternet(ttl=1) as net:
        nl = net.add_host("registered.test", network=64501)  # Dutch Test Hosting (registry)
        de = net.add_host("rhein.test", network=64503)  # Rhein Test Hosting (RDAP)
        (work / "reports.csv").write_text(
            "id,url,category,reported_at\n"
            f"A1,{nl.url('/a1.jpg')},csam,2026-02-01T10:00:00Z\n"
            f"A2,{nl.url('/a2.jpg')},csam,2026-02-01T10:00:00Z\n"
            f"B1,{de.url('/b1.jpg')},csam,2026-02-01T10:00:00Z\n"
            f"U1,{nl.url('/never-checked.jpg')},csam,2026-02-01T10:00:00Z\n", "utf-8")
        (work / "checks.csv").write_text(
            "case_id,checked_at,verdict,http_status,ip\n"
            f"A1,2026-02-02T12:00:00Z,online,200,{nl.ip}\n"
            f"A2,2026-02-02T12:00:00Z,http_gone,404,{nl.ip}\n"
            f"B1,2026-02-02T12:00:00Z,online,200,{de.ip}\n", "utf-8")
        for command, name in (("import", "reports.csv"), ("import-checks", "checks.csv")):
            result = CliRunner().invoke(main, ["--db", url, command, str(work / name)])
            assert result.exit_code == 0, result.output
        enriched = run_hostwatch(url, net, work, "enrich")
        assert enriched.returncode == 0, enriched.stderr
    # Two more hosters sharing a legal name, for the ambiguous lookup.
    store = Store(url)
    with store.transaction() as session:
        for key in ("rdap:acme hosting", "asn:64999"):
            session.add(Hoster(key=key, legal_name="ACME Hosting", source="rdap",
                               updated_at=datetime(2026, 2, 2, tzinfo=UTC)))
    store.dispose()
    yield url


def cases(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, "cases", *args])


def ids(result: Result) -> list[str]:
    return [line.split("\t")[0] for line in result.stdout.splitlines()[1:]]


def test_plain_text_starts_with_a_header_row(db):
    result = cases(db)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == HEADER
    assert len(lines[1].split("\t")) == len(HEADER.split("\t"))
    assert ids(result) == ["hotline/A1", "hotline/A2", "hotline/B1", "hotline/U1"]


def test_json_lines_have_no_header(db):
    result = cases(db, "--json")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [
        "A1", "A2", "B1", "U1"]


def test_no_case_no_header(db):
    result = cases(db, "--state", "reappeared")
    assert (result.exit_code, result.stdout) == (0, "")


@pytest.mark.parametrize("named", ["dutch-test-hosting", "DUTCH-TEST-HOSTING",
                                   "dutch test hosting b.v."])
def test_hoster_filters_by_key_or_legal_name(db, named):
    result = cases(db, "--hoster", named)
    assert result.exit_code == 0, result.output
    # U1 has no check, so no hoster of record.
    assert ids(result) == ["hotline/A1", "hotline/A2"]


def test_hoster_combines_with_state_and_json(db):
    result = cases(db, "--hoster", "Rhein Test Hosting GmbH", "--json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(row["id"], row["hoster"]) for row in rows] == [("B1", "Rhein Test Hosting GmbH")]
    online = cases(db, "--hoster", "dutch-test-hosting", "--state", "online")
    assert ids(online) == ["hotline/A1"]


def test_an_unknown_hoster_is_exit_2_with_close_matches_as_for_evidence(db, tmp_path):
    result = cases(db, "--hoster", "dutch tset hosting")
    assert result.exit_code == 2
    assert "no hoster with key or name 'dutch tset hosting'" in result.stderr
    assert "Dutch Test Hosting B.V. (key dutch-test-hosting)" in result.stderr
    assert result.stdout == ""
    # The same message and status as `report evidence --hoster`.
    evidence = CliRunner().invoke(main, ["--db", db, "report", "evidence", "--hoster",
                                         "dutch tset hosting", "--for", "atkm",
                                         "-o", str(tmp_path / "pack")])
    assert (evidence.exit_code, evidence.stderr) == (result.exit_code, result.stderr)


def test_an_ambiguous_hoster_is_exit_6_listing_the_keys(db):
    result = cases(db, "--hoster", "acme hosting")
    assert result.exit_code == 6
    assert ("hoster 'acme hosting' is ambiguous: 2 hosters match (asn:64999 (ACME Hosting); "
            "rdap:acme hosting (ACME Hosting)); give the key of one") in result.stderr
    assert result.stdout == ""
    by_key = cases(db, "--hoster", "asn:64999")
    assert (by_key.exit_code, by_key.stdout) == (0, "")  # no case of its own
