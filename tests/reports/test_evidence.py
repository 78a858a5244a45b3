"""`hostwatch report evidence`: the pack of one hoster's cases, built through the
real commands (import, import-notices, import-orders, import-checks, enrich on
the local test internet)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from hostwatch.cli import main
from lab import TestInternet
from store import Case, Check, Store
from tests.enrichment.conftest import hostwatch as hostwatch_child

DUTCH = "Dutch Test Hosting B.V."
US = "Liberty Test Hosting LLC"
FORMULA = '=HYPERLINK("http://x.test/","click")'


@dataclass(frozen=True)
class Built:
    workdir: Path
    db: str
    ids: dict[str, int]  # external id -> case id


def hostwatch(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args])


def build_store(db: str, workdir: Path, net: TestInternet) -> Built:
    """Three cases at a Dutch hoster, one at a US hoster, through the real commands.

    A1 removed (served 02-01 12:00, gone 02-02 12:00 and 02-03 12:00), notice
    02-01 13:00; B2 still online (served 02-01 12:00 and 02-04 12:00), a
    trusted flagger's notice 02-01 12:30 and an ATKM order 02-02 00:00 due
    06:00; C3 removed (served 12:00, placeholder 20:00 and 02-02 09:00), ATKM
    order 14:00 due 21:00; D4 at the US hoster, always online.
    """
    dutch = net.add_host("dutch.test", network=64501)
    us = net.add_host("liberty.test", network=64504)
    files = {
        "reports.csv": "id,url,category,reported_at\n"
                       f"A1,{dutch.url('/a.jpg')},csam,2026-02-01T10:00:00Z\n"
                       f"B2,{dutch.url('/b.jpg')},csam,2026-02-01T11:00:00Z\n"
                       f"C3,{dutch.url('/c.jpg')},ncii,2026-02-01T10:00:00Z\n"
                       f"D4,{us.url('/d.jpg')},csam,2026-02-01T10:00:00Z\n",
        "checks.csv": "case_id,checked_at,verdict,http_status,ip\n"
                      f"A1,2026-02-01T12:00:00Z,online,200,{dutch.ip}\n"
                      f"A1,2026-02-02T12:00:00Z,http_gone,404,{dutch.ip}\n"
                      f"A1,2026-02-03T12:00:00Z,http_gone,404,{dutch.ip}\n"
                      f"B2,2026-02-01T12:00:00Z,online,200,{dutch.ip}\n"
                      f"B2,2026-02-04T12:00:00Z,online,200,{dutch.ip}\n"
                      f"C3,2026-02-01T12:00:00Z,online,200,{dutch.ip}\n"
                      f"C3,2026-02-01T20:00:00Z,placeholder,200,{dutch.ip}\n"
                      f"C3,2026-02-02T09:00:00Z,placeholder,200,{dutch.ip}\n"
                      f"D4,2026-02-01T12:00:00Z,online,200,{us.ip}\n"
                      f"D4,2026-02-02T12:00:00Z,online,200,{us.ip}\n",
        "notices.csv": "case_id,sent_at,recipient,channel,reference,trusted_flagger\n"
                       "A1,2026-02-01T13:00:00Z,abuse@dutchhost.test,email,N-1,false\n"
                       f'B2,2026-02-01T12:30:00Z,"{FORMULA.replace(chr(34), 2 * chr(34))}",'
                       "email,N-2,true\n"
                       "D4,2026-02-01T13:00:00Z,abuse@libertyhost.test,email,N-4,false\n",
        "orders.csv": "case_id,issued_at,issuer,deadline_at,legal_basis,reference\n"
                      "B2,2026-02-02T00:00:00Z,ATKM,2026-02-02T06:00:00Z,,O-2\n"
                      "C3,2026-02-01T14:00:00Z,ATKM,2026-02-01T21:00:00Z,,O-3\n"
                      "D4,2026-02-01T14:00:00Z,ATKM,2026-02-01T20:00:00Z,,O-4\n",
    }
    for name, text in files.items():
        (workdir / name).write_text(text)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        for var in ("HOSTWATCH_DB", "HOSTWATCH_REMOVAL_MIN_HOURS",
                    "HOSTWATCH_REMOVAL_CONFIRMATIONS", "HOSTWATCH_TRANSIENT_DAYS"):
            mp.delenv(var, raising=False)
        for command, name in (("import", "reports.csv"), ("import-checks", "checks.csv"),
                              ("import-notices", "notices.csv"),
                              ("import-orders", "orders.csv")):
            result = hostwatch(db, command, name)
            assert result.exit_code == 0, (command, result.output)
    enriched = hostwatch_child(db, net, workdir, "enrich")
    assert enriched.returncode == 0, enriched.stderr
    assert "10 checks attributed" in enriched.stdout
    store = Store(db)
    try:
        with store.session() as session:
            ids = {c.external_id: c.id for c in session.scalars(select(Case))}
    finally:
        store.dispose()
    return Built(workdir, db, ids)


def write_pack(built: Built, *args: str, out: str = "pack") -> Result:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(built.workdir)
        return hostwatch(built.db, "report", "evidence", "-o", out, *args)


def private_copy(original: Built, tmp_path: Path) -> Built:
    """A copy of a module's store and packs that one test may change."""
    workdir = tmp_path / "copy"
    shutil.copytree(original.workdir, workdir)
    return replace(original, workdir=workdir, db=f"sqlite:///{workdir / 'hostwatch.db'}")


def verify_packs(built: Built, *packs: str) -> Result:
    """`hostwatch verify --pack ...` of the named packs in the store's folder."""
    args = [arg for pack in packs for arg in ("--pack", str(built.workdir / pack))]
    return hostwatch(built.db, "verify", *args)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Iterator[Built]:
    workdir = tmp_path_factory.mktemp("evidence")
    with TestInternet(ttl=1) as net:
        yield build_store(f"sqlite:///{workdir / 'hostwatch.db'}", workdir, net)


@pytest.fixture(scope="module")
def pack(built) -> Path:
    result = write_pack(built, "--hoster", "dutch-test-hosting", "--for", "acm")
    assert result.exit_code == 0, result.output
    return built.workdir / "pack"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def test_the_pack_holds_every_check_of_the_hosters_cases_and_no_other(built, pack):
    store = Store(built.db)
    with store.session() as session:
        dutch_cases = {built.ids[x] for x in ("A1", "B2", "C3")}
        expected = {c.id: c for c in session.scalars(
            select(Check).where(Check.case_id.in_(dutch_cases)))}
    store.dispose()
    checks = read_csv(pack / "checks.csv")
    assert sorted(int(row["check_id"]) for row in checks) == sorted(expected)
    assert built.ids["D4"] not in {int(row["case_id"]) for row in checks}
    for row in checks:
        stored = expected[int(row["check_id"])]
        assert row["record_hash"] == stored.record_hash
        assert row["prev_hash"] == stored.prev_hash
        assert row["verdict"] == stored.verdict
        assert row["imported"] == "true"
        assert row["checked_at"].endswith("Z")
    assert {row["checked_at"] for row in checks if row["case_id"] == str(built.ids["C3"])} == {
        "2026-02-01T12:00:00Z", "2026-02-01T20:00:00Z", "2026-02-02T09:00:00Z"}
    cases = read_csv(pack / "cases.csv")
    assert sorted(row["external_id"] for row in cases) == ["A1", "B2", "C3"]
    a1 = next(row for row in cases if row["external_id"] == "A1")
    assert (a1["state"], a1["removed_after"], a1["removed_at"]) == (
        "removed", "2026-02-01T12:00:00Z", "2026-02-02T12:00:00Z")
    notices = read_csv(pack / "notices.csv")
    assert sorted(row["reference"] for row in notices) == ["N-1", "N-2"]
    orders = {row["reference"]: row for row in read_csv(pack / "orders.csv")}
    assert set(orders) == {"O-2", "O-3"}
    assert (orders["O-2"]["regime"], orders["O-2"]["due_at"], orders["O-2"]["outcome"]) == (
        "atkm_order", "2026-02-02T06:00:00Z", "breached")
    assert orders["O-3"]["outcome"] == "met"
    attributions = read_csv(pack / "attributions.csv")
    assert len(attributions) == len(checks)
    assert {row["hoster"] for row in attributions} == {DUTCH}
    assert sum(row["of_record"] == "true" for row in attributions) == 3


def test_a_formula_from_outside_is_written_as_text(pack):
    raw = (pack / "notices.csv").read_text(encoding="utf-8")
    recipients = [row["recipient"] for row in read_csv(pack / "notices.csv")]
    assert "'" + FORMULA in recipients
    assert not any(line.split(",")[4].startswith("=") for line in raw.splitlines()[1:]
                   if len(line.split(",")) > 4)


def test_figures_match_the_history_worked_out_by_hand(built, pack):
    figures = json.loads((pack / "figures.json").read_text())
    report, notice, order = (figures["clocks"][c] for c in ("report", "notice", "order"))
    assert (report["cases"], report["removed"], report["still_online"], report["measured"]) == (
        3, 2, 1, 3)
    # Report clock: C3 in (2 h, 10 h] -> 6 h; A1 in (2 h, 26 h] -> 14 h; B2 censored at 73 h.
    assert report["median"]["hours"] == pytest.approx(14.0)
    assert report["share_within_24h"] == pytest.approx(2 / 3)
    per_case = {row["external_id"]: row["durations"] for row in figures["per_case"]}
    assert per_case["A1"]["report"] == {"lower_hours": 2.0, "upper_hours": 26.0,
                                        "point_hours": 14.0, "uncertainty_hours": 24.0,
                                        "removed": True}
    assert per_case["B2"]["report"]["point_hours"] == pytest.approx(73.0)
    assert per_case["B2"]["report"]["removed"] is False
    # Notice clock: A1 from 13:00 inside (12:00, 12:00 next day] -> (0, 23] -> 11.5 h;
    # B2 censored 71.5 h; C3 had no notice.
    assert notice["measured"] == 2
    assert per_case["A1"]["notice"]["point_hours"] == pytest.approx(11.5)
    assert per_case["C3"]["notice"] is None
    assert notice["median"]["hours"] == pytest.approx(11.5)
    # Order clock: C3 from 14:00 -> (0, 6] -> 3 h; B2 censored at 60 h.
    assert per_case["C3"]["order"]["point_hours"] == pytest.approx(3.0)
    assert per_case["B2"]["order"]["point_hours"] == pytest.approx(60.0)
    assert order["median"]["hours"] == pytest.approx(3.0)
    counts = figures["deadlines"]["counts"]
    assert counts["notice_24h"] == {"met": 1, "already_gone": 0, "breached": 1,
                                    "undecided": 0, "pending": 0}
    assert counts["atkm_order"] == {"met": 1, "already_gone": 0, "breached": 1,
                                    "undecided": 0, "pending": 0}
    assert set(counts["terrorist_1h"].values()) == {0}
    assert figures["check_resolution_hours"] == pytest.approx(16.0)  # median of 24 h and 8 h


def test_the_dsa_points_for_acm(built, pack):
    dsa = json.loads((pack / "dsa.json").read_text())
    assert dsa["contact_point"] == {"abuse_contact": "abuse@dutchhost.test", "status": "known",
                                    "source": "registry",
                                    "rdap_abuse_contacts": ["abuse@dutchhost.test"]}
    assert dsa["notices"]["received"] == 2
    handling = {p["external_id"]: p["handling"] for p in dsa["notices"]["per_notice"]}
    assert handling == {"A1": "removed_within_24h", "B2": "still_online"}
    assert dsa["persistence_after_first_notice"]["cases_seen_served_at_least_days_after"] == {
        "1": 1, "7": 0, "30": 0}
    assert dsa["trusted_flagger_notices"]["count"] == 1
    assert dsa["competent_coordinator"].startswith("ACM")
    text = (pack / "dsa.md").read_text()
    assert "Abuse contact known: abuse@dutchhost.test" in text
    assert "still online (not removed)" in text
    assert not (pack / "atkm.md").exists()


def test_hoster_jurisdiction_and_method(pack):
    hoster = json.loads((pack / "hoster.json").read_text())
    assert (hoster["legal_name"], hoster["country"], hoster["asns"], hoster["dsa_role"],
            hoster["abuse_contact"], hoster["source"]) == (
        DUTCH, "NL", [64501], "hosting", "abuse@dutchhost.test", "registry")
    jurisdiction = (pack / "jurisdiction.md").read_text()
    assert "established in the Netherlands (NL): Dutch-hosted by establishment" in jurisdiction
    assert "jurisdiction: **NL**" in jurisdiction
    assert "registry:asn" in jurisdiction
    assert "CDN caveat" in jurisdiction
    method = (pack / "method.md").read_text()
    assert "No material is ever stored or included." in method
    assert "2 consecutive gone checks spanning at least 12 hours" in method
    assert "median gap" in method and "16 h" in method


def test_the_manifest_lists_every_file_and_the_zip_holds_the_same(built, pack):
    names = sorted(p.name for p in pack.iterdir())
    manifest = (pack / "MANIFEST.sha256").read_text().splitlines()
    listed = [line.split("  ", 1)[1] for line in manifest]
    assert listed == sorted(set(names) - {"MANIFEST.sha256"})
    for line in manifest:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((pack / name).read_bytes()).hexdigest() == digest
    with zipfile.ZipFile(built.workdir / "pack.zip") as zf:
        in_zip = {info.filename: zf.read(info) for info in zf.infolist()}
    assert in_zip == {f"pack/{name}": (pack / name).read_bytes() for name in names}
    assert {"cases.csv", "checks.csv", "attributions.csv", "notices.csv", "orders.csv",
            "figures.json", "hoster.json", "jurisdiction.md", "method.md", "dsa.md",
            "dsa.json", "pack.json", "MANIFEST.sha256"} <= set(names)


def test_pack_json_names_the_chain_head_and_hides_the_password(built, pack):
    info = json.loads((pack / "pack.json").read_text())
    store = Store(built.db)
    with store.session() as session:
        last = session.scalars(select(Check).order_by(Check.id.desc())).first()
    store.dispose()
    assert info["chain_head"] == {"check_id": last.id, "record_hash": last.record_hash}
    assert info["for"] == "acm"
    assert info["store"] == built.db
    assert info["generated_at"].endswith("Z")
    assert info["counts"]["checks"] == 8


def test_nothing_but_hashes_urls_and_metadata(pack):
    for name in ("cases.csv", "checks.csv", "attributions.csv", "notices.csv", "orders.csv"):
        header = next(csv.reader(io.StringIO((pack / name).read_text())))
        assert not {"body", "content", "html", "data", "image"} & set(header), name
        assert all(column in {"body_sha256", "body_pdq"} for column in header
                   if column.startswith("body")), name


def test_atkm_pack_puts_orders_first_and_says_when_atkm_cannot_reach(built):
    result = write_pack(built, "--hoster", US.upper(), "--for", "atkm", out="us-pack")
    assert result.exit_code == 0, result.output
    pack = built.workdir / "us-pack"
    text = (pack / "atkm.md").read_text()
    assert "ATKM removal orders reach only providers established in the Netherlands" in text
    assert "established outside the EU (US)" in text
    assert "| breached |" in text
    assert not (pack / "dsa.md").exists()
    cases = read_csv(pack / "cases.csv")
    assert [row["external_id"] for row in cases] == ["D4"]
    dutch = write_pack(built, "--hoster", "dutch-test-hosting", "--for", "atkm",
                       out="nl-atkm")
    assert dutch.exit_code == 0, dutch.output
    nl_text = (built.workdir / "nl-atkm" / "atkm.md").read_text()
    assert "reach only providers" not in nl_text
    assert "atkm_order: met 1, already_gone 0, breached 1, undecided 0, pending 0" in nl_text


def test_a_pack_judges_as_of_its_own_time_and_tells_already_gone_from_met(tmp_path):
    """Made while deadlines are still ahead: pending, not met (the issue's
    example: gone an hour before the deadline). Material gone before the
    notice and the order were sent: already_gone, not met. A capped order
    shows its stated deadline and the time it is judged at."""
    now = datetime.now(UTC).replace(microsecond=0)

    def ago(hours: float) -> str:
        return (now - timedelta(hours=hours)).isoformat().replace("+00:00", "Z")

    db = f"sqlite:///{tmp_path / 'h.db'}"
    with TestInternet(ttl=1) as net:
        dutch = net.add_host("dutch.test", network=64501)
        files = {
            "reports.csv": "id,url,category,reported_at\n"
                           f"P1,{dutch.url('/p.jpg')},csam,{ago(3)}\n"
                           f"G1,{dutch.url('/g.jpg')},csam,{ago(72)}\n",
            "checks.csv": "case_id,checked_at,verdict,http_status,ip\n"
                          f"P1,{ago(2.5)},online,200,{dutch.ip}\n"
                          f"P1,{ago(1)},http_gone,404,{dutch.ip}\n"
                          f"G1,{ago(70)},online,200,{dutch.ip}\n"
                          f"G1,{ago(60)},http_gone,404,{dutch.ip}\n"
                          f"G1,{ago(40)},http_gone,404,{dutch.ip}\n",
            # P1: due in 22 h (notice) and in 10 h (the order's 20 h capped at 12 h).
            "notices.csv": f"case_id,sent_at,recipient\nP1,{ago(2)},a@x.test\n"
                           f"G1,{ago(30)},a@x.test\n",
            "orders.csv": "case_id,issued_at,issuer,deadline_at,legal_basis,reference\n"
                          f"P1,{ago(2)},ATKM,{ago(-18)},,O-P\n"
                          f"G1,{ago(30)},ATKM,{ago(25)},,O-G\n",
        }
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        for command, name in (("import", "reports.csv"), ("import-checks", "checks.csv"),
                              ("import-notices", "notices.csv"),
                              ("import-orders", "orders.csv")):
            result = hostwatch(db, command, str(tmp_path / name))
            assert result.exit_code == 0, (command, result.output)
        assert hostwatch_child(db, net, tmp_path, "enrich").returncode == 0
    built = Built(tmp_path, db, {})
    for audience in ("atkm", "acm"):
        result = write_pack(built, "--hoster", "dutch-test-hosting", "--for", audience,
                            out=audience)
        assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "atkm" / "figures.json").read_text())
    judged = {(row["subject"].split()[0], row["outcome"]) for row in
              figures["deadlines"]["judgements"]}
    assert judged == {("notice", "pending"), ("order", "pending"),
                      ("notice", "already_gone"), ("order", "already_gone")}
    assert figures["deadlines"]["counts"]["atkm_order"] == {
        "met": 0, "already_gone": 1, "breached": 0, "undecided": 0, "pending": 1}
    capped = next(row for row in figures["deadlines"]["judgements"] if row["capped"])
    assert (capped["deadline_at"], capped["due_at"], capped["outcome"]) == (
        ago(-18), ago(-10), "pending")
    text = (tmp_path / "atkm" / "atkm.md").read_text()
    row = next(line for line in text.splitlines() if "O-P" in line)
    assert f"| {ago(-18)} | {ago(-10)} (capped) | pending |" in row
    assert "atkm_order: met 0, already_gone 1, breached 0, undecided 0, pending 1" in text
    orders = {row["reference"]: row for row in read_csv(tmp_path / "atkm" / "orders.csv")}
    assert (orders["O-G"]["outcome"], orders["O-G"]["decisive_check_at_start"]) == (
        "already_gone", ago(40))
    dsa = json.loads((tmp_path / "acm" / "dsa.json").read_text())
    assert dsa["notices"]["handling"]["deadline_pending"] == 1
    assert dsa["notices"]["handling"]["removed_before_notice"] == 1
    assert dsa["notices"]["handling"]["removed_within_24h"] == 0


def test_since_and_until_select_cases_by_report_time(built):
    result = write_pack(built, "--hoster", DUTCH, "--for", "acm", "--since",
                        "2026-02-01T10:30:00Z", "--until", "2026-02-02", out="later")
    assert result.exit_code == 0, result.output
    assert [row["external_id"] for row in read_csv(built.workdir / "later" / "cases.csv")] == [
        "B2"]


def test_unknown_hoster_names_close_ones(built):
    result = write_pack(built, "--hoster", "dutch-test-hostin", "--for", "acm", out="x")
    assert result.exit_code == 2
    assert "no hoster with key or name 'dutch-test-hostin'" in result.output
    assert "Dutch Test Hosting B.V. (key dutch-test-hosting)" in result.output
    assert not (built.workdir / "x").exists()


def test_a_non_empty_folder_is_kept_unless_forced(built, pack):
    before = (pack / "checks.csv").read_bytes()
    again = write_pack(built, "--hoster", DUTCH, "--for", "acm")
    assert again.exit_code == 1
    assert "exists and is not empty (use --force" in again.output
    assert (pack / "checks.csv").read_bytes() == before
    forced = write_pack(built, "--hoster", DUTCH, "--for", "acm", out="forced")
    assert forced.exit_code == 0
    (built.workdir / "forced" / "stray.txt").write_text("x")
    replaced = write_pack(built, "--hoster", DUTCH, "--for", "atkm", "--force", out="forced")
    assert replaced.exit_code == 0, replaced.output
    names = {p.name for p in (built.workdir / "forced").iterdir()}
    assert "stray.txt" not in names and "atkm.md" in names
    assert not [p for p in built.workdir.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
