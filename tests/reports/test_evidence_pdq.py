"""Evidence packs and perceptual matching (#12): the PDQ columns of checks.csv and
cases.csv, the method's account of how the same picture is recognised, and
`hostwatch verify` over the PDQ cells (also of packs written before them)."""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import select, text, update

from kernel.state import Debounce
from lab import TestInternet
from reports.evidence import CHECK_COLUMNS_BEFORE_PDQ, manifest_text
from store import Case, Check, Store
from store.checks import NewCheck, append_checks
from tests.reports.test_evidence import Built, build_store, hostwatch, read_csv, write_pack

SHA = "ab" * 32
PDQ_REPORT = "0f" * 32
PDQ_LEARNED = "f0" * 32
PDQ_SERVED = "f1" * 32


@dataclass(frozen=True)
class PdqBuilt:
    built: Built
    learned_check: int  # B2's check its reference PDQ was learned from
    reencoded_check: int  # B2's check that found the same picture in other bytes


def add_pdq_history(db: str, ids: dict[str, int]) -> tuple[int, int]:
    """C3: a reference PDQ from the report; B2: one learned from a SHA-256 match,
    then a re-encoded copy served (6 bits away, quality 90)."""
    store = Store(db)
    try:
        with store.transaction() as session:
            session.execute(update(Case).where(Case.id == ids["C3"]).values(
                ref_sha256=SHA, ref_pdq=PDQ_REPORT, ref_pdq_source="report"))
            session.execute(update(Case).where(Case.id == ids["B2"]).values(ref_sha256=SHA))
            common = {"case_id": ids["B2"], "method": "http", "url": "http://dutch.test/b.jpg",
                      "tool_version": "test", "http_status": 200}
            append_checks(session, [
                NewCheck(**common, checked_at=datetime(2026, 2, 4, 13, tzinfo=UTC),
                         verdict="online", body_sha256=SHA, body_pdq=PDQ_LEARNED,
                         pdq_quality=95, reference_match=True, learns_pdq=True),
                NewCheck(**common, checked_at=datetime(2026, 2, 4, 14, tzinfo=UTC),
                         verdict="reencoded", body_sha256="cd" * 32, body_pdq=PDQ_SERVED,
                         pdq_quality=90, pdq_distance=6, reference_match=True,
                         reason="same picture: PDQ distance 6 ≤ 31 bits, quality 90"),
            ], Debounce())
        with store.session() as session:
            learned, reencoded = session.scalars(
                select(Check.id).where(Check.case_id == ids["B2"])
                .order_by(Check.id.desc()).limit(2)).all()[::-1]
    finally:
        store.dispose()
    return learned, reencoded


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Iterator[PdqBuilt]:
    workdir = tmp_path_factory.mktemp("evidence-pdq")
    with TestInternet(ttl=1) as net:
        built = build_store(f"sqlite:///{workdir / 'hostwatch.db'}", workdir, net)
    learned, reencoded = add_pdq_history(built.db, built.ids)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOSTWATCH_PDQ_THRESHOLD", "24")
        mp.setenv("HOSTWATCH_PDQ_MIN_QUALITY", "60")
        result = write_pack(built, "--hoster", "dutch-test-hosting", "--for", "acm")
    assert result.exit_code == 0, result.output
    yield PdqBuilt(built, learned, reencoded)


@pytest.fixture
def pdq(original, tmp_path) -> PdqBuilt:
    """A private copy of the store and its pack, free to tamper with."""
    workdir = tmp_path / "copy"
    shutil.copytree(original.built.workdir, workdir)
    built = replace(original.built, workdir=workdir, db=f"sqlite:///{workdir / 'hostwatch.db'}")
    return replace(original, built=built)


def verify(built: Built, *packs: str) -> Result:
    args = [arg for pack in packs for arg in ("--pack", str(built.workdir / pack))]
    return hostwatch(built.db, "verify", *args)


def test_checks_csv_has_the_pdq_quality_and_distance(original):
    checks = {int(row["check_id"]): row
              for row in read_csv(original.built.workdir / "pack" / "checks.csv")}
    reencoded = checks[original.reencoded_check]
    assert (reencoded["verdict"], reencoded["body_pdq"], reencoded["pdq_quality"],
            reencoded["pdq_distance"]) == ("reencoded", PDQ_SERVED, "90", "6")
    learned = checks[original.learned_check]
    assert (learned["body_pdq"], learned["pdq_quality"], learned["pdq_distance"]) == (
        PDQ_LEARNED, "95", "")
    # Checks made without PDQ: empty cells, not zeros.
    others = [row for check_id, row in checks.items()
              if check_id not in (original.reencoded_check, original.learned_check)]
    assert others and all(row["pdq_quality"] == row["pdq_distance"] == "" for row in others)


def test_cases_csv_says_where_each_reference_pdq_came_from(original):
    built = original.built
    cases = {row["external_id"]: row for row in read_csv(built.workdir / "pack" / "cases.csv")}
    assert (cases["B2"]["ref_pdq"], cases["B2"]["ref_pdq_source"],
            cases["B2"]["ref_pdq_check_id"]) == (PDQ_LEARNED, "learned",
                                                 str(original.learned_check))
    assert (cases["C3"]["ref_pdq"], cases["C3"]["ref_pdq_source"],
            cases["C3"]["ref_pdq_check_id"]) == (PDQ_REPORT, "report", "")
    assert (cases["A1"]["ref_pdq"], cases["A1"]["ref_pdq_source"]) == ("", "")


def test_the_method_says_how_the_same_picture_is_recognised(original):
    built = original.built
    method = (built.workdir / "pack" / "method.md").read_text(encoding="utf-8")
    section = method.split("## Same picture, other bytes (PDQ)")[1].split("\n## ")[0]
    # The settings in force when the pack was written.
    assert "When at most 24 of the 256 bits differ and the quality is at least 60" in section
    assert "the check is `reencoded`" in section
    assert "never the image, a thumbnail or the pixels" in section
    assert ("In this pack: 2 of 3 cases could be matched by picture (with a reference PDQ: "
            "1 from the report, 1 learned from a SHA-256 match); the other 1 by SHA-256 "
            "only. 1 check found the same picture in other bytes (`reencoded`).") in section
    assert (f"Learned references: case {built.ids['B2']} from check "
            f"{original.learned_check}.") in section
    assert "`reencoded` (the same picture in other bytes" in method


def test_pdq_off_is_stated(original, tmp_path):
    built = original.built
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOSTWATCH_PDQ", "0")
        result = write_pack(built, "--hoster", "dutch-test-hosting", "--for", "atkm",
                            out=str(tmp_path / "off"))
    assert result.exit_code == 0, result.output
    method = (tmp_path / "off" / "method.md").read_text(encoding="utf-8")
    assert "switched off (HOSTWATCH_PDQ=0)" in method
    assert "When at most 31 of the 256 bits differ and the quality is at least 50" in method


def test_the_pack_with_pdq_cells_verifies(pdq):
    result = verify(pdq.built, "pack", "pack.zip")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("verified: 12 checks")


def edit_cell(path: Path, check_id: int, column: str, value: str) -> int:
    """Set one cell of a pack's checks.csv; the line it is on."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    index = rows[0].index(column)
    line = next(n for n, row in enumerate(rows, 1) if row[0] == str(check_id))
    rows[line - 1][index] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    return line


def test_an_edited_pdq_distance_cell_fails(pdq):
    path = pdq.built.workdir / "pack" / "checks.csv"
    line = edit_cell(path, pdq.reencoded_check, "pdq_distance", "30")
    result = verify(pdq.built, "pack")
    assert result.exit_code == 1
    assert (f"check {pdq.reencoded_check} (checks.csv:{line}): pdq_distance is '6' in the "
            "store, '30' in the pack (checks.csv was changed after the pack was written)"
            ) in result.stderr


def test_an_edited_cell_with_its_manifest_line_fixed_blames_the_pack(pdq):
    # Whoever edits the pack may fix its manifest too: the store's intact
    # row (its contents still give its record_hash) says which side changed.
    pack = pdq.built.workdir / "pack"
    path = pack / "checks.csv"
    line = edit_cell(path, pdq.reencoded_check, "pdq_distance", "25")
    manifest = pack / "MANIFEST.sha256"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest.write_text("".join(
        f"{digest}  checks.csv\n" if entry.endswith("  checks.csv") else f"{entry}\n"
        for entry in manifest.read_text(encoding="utf-8").splitlines()), encoding="utf-8")
    result = verify(pdq.built, "pack")
    assert result.exit_code == 1
    assert (f"check {pdq.reencoded_check} (checks.csv:{line}): pdq_distance is '6' in the "
            "store, '25' in the pack (the store's row still gives its record_hash: checks.csv "
            "was changed after the pack was written, and its line in MANIFEST.sha256 with it)"
            ) in result.stderr


def test_a_pdq_field_changed_in_the_store_fails_against_the_pack(pdq):
    engine_store = Store(pdq.built.db)
    with engine_store.engine.begin() as connection:
        connection.execute(text("UPDATE checks SET pdq_quality = 40 WHERE id = :id"),
                           {"id": pdq.reencoded_check})
    engine_store.dispose()
    result = verify(pdq.built, "pack")
    assert result.exit_code == 1
    problems = result.stderr.splitlines()
    assert problems[0].startswith(f"check {pdq.reencoded_check}: contents changed since written")
    assert (f"check {pdq.reencoded_check} (checks.csv:" in problems[1]
            and "pdq_quality is '40' in the store, '90' in the pack (the store's row was "
                "changed after the pack was written)" in problems[1])


def without_pdq_columns(pack: Path) -> None:
    """Rewrite the pack as hostwatch wrote it before the PDQ columns (#12)."""
    path = pack / "checks.csv"
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    keep = [rows[0].index(name) for name in CHECK_COLUMNS_BEFORE_PDQ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([[row[i] for i in keep] for row in rows])
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    files = {p.name: p.read_bytes() for p in pack.iterdir() if p.name != "MANIFEST.sha256"}
    (pack / "MANIFEST.sha256").write_text(manifest_text(files), encoding="utf-8")


def test_a_pack_written_before_the_pdq_columns_still_verifies(pdq):
    pack = pdq.built.workdir / "pack"
    without_pdq_columns(pack)
    assert verify(pdq.built, "pack").exit_code == 0
    # ...and its cells are still compared.
    path = pack / "checks.csv"
    path.write_bytes(path.read_bytes().replace(PDQ_SERVED.encode(), ("e1" * 32).encode()))
    files = {p.name: p.read_bytes() for p in pack.iterdir() if p.name != "MANIFEST.sha256"}
    (pack / "MANIFEST.sha256").write_text(manifest_text(files), encoding="utf-8")
    result = verify(pdq.built, "pack")
    assert result.exit_code == 1
    assert f"check {pdq.reencoded_check} (checks.csv:" in result.stderr
    assert "body_pdq is" in result.stderr
