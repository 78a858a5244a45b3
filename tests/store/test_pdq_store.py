"""The store's side of perceptual matching (#12), on SQLite and PostgreSQL.

A reference PDQ learned from a check whose SHA-256 matched (never over one the
report gave, nor over an earlier learned one); the PDQ fields in the hash
chain (absent: the record hash of before 0010; present and changed: named by
``verify_chain`` and ``hostwatch verify``); re-imports after a learned PDQ;
migration 0010 on a store of the 0009 era.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import select, text

from hostwatch.cli import main
from kernel.state import Debounce
from store import Case, Check, Store
from store.checks import GENESIS, NewCheck, append_checks, verify_chain
from store.db import _alembic_config
from store.imports import import_cases

T0 = datetime(2026, 5, 1, tzinfo=UTC)
SHA = "ab" * 32
PDQ_REPORT = "0f" * 32
PDQ_SEEN = "f0" * 32
PDQ_LATER = "3c" * 32

# The record hash as store.checks wrote it before migration 0010 (copied from
# that version): a check without PDQ fields must still get exactly this.
OLD_HASHED_FIELDS = (
    "case_id", "checked_at", "method", "verdict", "url", "tool_version", "run_id",
    "http_status", "final_url", "redirect_chain", "peer_ip", "content_type", "content_length",
    "bytes_received", "truncated", "body_sha256", "body_pdq", "reference_match", "reason",
    "error_kind", "headers", "imported")


def old_record_hash(row: dict[str, Any], prev_hash: str) -> str:
    canonical = {name: row.get(name) for name in OLD_HASHED_FIELDS}
    canonical["checked_at"] = row["checked_at"].astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    canonical["prev_hash"] = prev_hash
    text_ = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text_.encode("ascii")).hexdigest()


def add_case(store: Store, external_id: str = "r1", ref_pdq: str | None = None,
             source: str | None = None) -> int:
    with store.transaction() as session:
        case = Case(source="hotline", external_id=external_id,
                    url=f"http://h.test/{external_id}.jpg",
                    url_normalised=f"http://h.test/{external_id}.jpg", host="h.test",
                    category="csam", reported_at=T0, imported_at=T0, state="unchecked",
                    reappearances=0, check_count=0, ref_sha256=SHA, ref_pdq=ref_pdq,
                    ref_pdq_source=source)
        session.add(case)
        session.flush()
        return case.id


def seen(case_id: int, hours: int, *, pdq: str | None = PDQ_SEEN, learns: bool = True,
         verdict: str = "online", **more: Any) -> NewCheck:
    """A check that served the reported bytes (its SHA-256 matched)."""
    return NewCheck(case_id=case_id, checked_at=T0 + timedelta(hours=hours), method="http",
                    verdict=verdict, url="http://h.test/r1.jpg", tool_version="test",
                    http_status=200, body_sha256=SHA, body_pdq=pdq, reference_match=True,
                    learns_pdq=learns, **more)


def append(store: Store, *checks: NewCheck) -> None:
    with store.transaction() as session:
        append_checks(session, list(checks), Debounce())


def reference(store: Store, case_id: int) -> tuple[str | None, str | None, int | None]:
    with store.session() as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.ref_pdq, case.ref_pdq_source, case.ref_pdq_check_id


def check_ids(store: Store) -> list[int]:
    with store.session() as session:
        return list(session.scalars(select(Check.id).order_by(Check.id)))


# ------------------------------------------------------------------ learning


def test_the_reference_pdq_is_learned_from_the_first_sha256_match(store):
    case_id = add_case(store)
    other = add_case(store, "r2")
    append(store, seen(other, 0, learns=False), seen(case_id, 1, pdq=PDQ_SEEN))
    append(store, seen(case_id, 2, pdq=PDQ_LATER))
    ids = check_ids(store)
    # Learned from the second check of the first batch (the case's first),
    # and kept when a later check could teach another.
    assert reference(store, case_id) == (PDQ_SEEN, "learned", ids[1])
    assert reference(store, other) == (None, None, None)


def test_learning_in_one_batch_keeps_the_first(store):
    case_id = add_case(store)
    append(store, seen(case_id, 1, pdq=PDQ_SEEN), seen(case_id, 2, pdq=PDQ_LATER))
    assert reference(store, case_id) == (PDQ_SEEN, "learned", check_ids(store)[0])


def test_a_reported_pdq_is_never_overwritten_by_a_learned_one(store):
    case_id = add_case(store, ref_pdq=PDQ_REPORT, source="report")
    append(store, seen(case_id, 1))
    assert reference(store, case_id) == (PDQ_REPORT, "report", None)


def test_learns_pdq_without_a_pdq_learns_nothing(store):
    case_id = add_case(store)
    append(store, seen(case_id, 1, pdq=None))
    assert reference(store, case_id) == (None, None, None)
    append(store, seen(case_id, 2, pdq=PDQ_LATER))
    assert reference(store, case_id) == (PDQ_LATER, "learned", check_ids(store)[1])


def test_a_check_that_does_not_learn_leaves_the_case_alone(store):
    case_id = add_case(store)
    append(store, seen(case_id, 1, learns=False))
    assert reference(store, case_id) == (None, None, None)


# ------------------------------------------------------------------ the chain


def test_a_check_without_pdq_fields_keeps_the_record_hash_of_before_0010(store):
    case_id = add_case(store)
    plain = seen(case_id, 1, pdq=None, learns=False)
    # body_pdq was a column before 0010 too: hashed as then.
    imaged = replace(seen(case_id, 2, learns=False, verdict="changed"), reference_match=False,
                     body_sha256="cd" * 32)
    append(store, plain, imaged)
    with store.session() as session:
        stored = session.execute(select(Check.prev_hash, Check.record_hash)
                                 .order_by(Check.id)).all()
    first = old_record_hash(vars(plain), GENESIS)
    assert stored[0] == (GENESIS, first)
    assert stored[1] == (first, old_record_hash(vars(imaged), first))


def test_a_check_with_pdq_fields_is_hashed_with_them_and_verifies(store):
    case_id = add_case(store, ref_pdq=PDQ_REPORT, source="report")
    reencoded = NewCheck(case_id=case_id, checked_at=T0, method="http", verdict="reencoded",
                         url="http://h.test/r1.jpg", tool_version="test", http_status=200,
                         body_sha256="cd" * 32, body_pdq=PDQ_SEEN, reference_match=True,
                         pdq_quality=88, pdq_distance=12,
                         reason="same picture: PDQ distance 12 ≤ 31 bits, quality 88")
    append(store, reencoded)
    with store.session() as session:
        row = session.execute(select(Check.record_hash, Check.pdq_quality,
                                     Check.pdq_distance)).one()
        assert verify_chain(session) == (1, [])
    assert (row.pdq_quality, row.pdq_distance) == (88, 12)
    # The PDQ fields are in the hash: without them it would be another one.
    assert row.record_hash != old_record_hash(vars(reencoded), GENESIS)


def hostwatch_verify(db_url: str) -> Any:
    return CliRunner().invoke(main, ["--db", db_url, "verify"])


@pytest.mark.parametrize(("column", "value"), [
    ("pdq_distance", 3), ("pdq_quality", 100), ("body_pdq", PDQ_LATER),
    ("pdq_distance", None), ("pdq_quality", None)])
def test_a_changed_pdq_field_is_found_by_verify(store, db_url, column, value):
    case_id = add_case(store, ref_pdq=PDQ_REPORT, source="report")
    append(store, seen(case_id, 0, pdq=None, learns=False),
           NewCheck(case_id=case_id, checked_at=T0 + timedelta(hours=1), method="http",
                    verdict="reencoded", url="http://h.test/r1.jpg", tool_version="test",
                    http_status=200, body_sha256="cd" * 32, body_pdq=PDQ_SEEN,
                    reference_match=True, pdq_quality=88, pdq_distance=12),
           seen(case_id, 2, pdq=None, learns=False))
    assert hostwatch_verify(db_url).exit_code == 0
    target = check_ids(store)[1]
    with store.transaction() as session:
        session.execute(text(f"UPDATE checks SET {column} = :v WHERE id = :id"),
                        {"v": value, "id": target})
    with store.session() as session:
        count, problems = verify_chain(session)
    assert count == 3
    assert [p.check_id for p in problems] == [target]
    assert "contents changed since written" in str(problems[0])
    result = hostwatch_verify(db_url)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"check {target}: contents changed since written")


def test_a_pdq_field_added_to_an_old_check_is_found(store):
    case_id = add_case(store)
    append(store, seen(case_id, 0, pdq=None, learns=False))
    with store.transaction() as session:
        session.execute(text("UPDATE checks SET pdq_distance = 0"))
    with store.session() as session:
        _, problems = verify_chain(session)
    assert len(problems) == 1


# ------------------------------------------------------------------ re-import


def write_reports(tmp_path: Path, pdq: str | None) -> Path:
    path = tmp_path / "reports.csv"
    path.write_text("id,url,category,reported_at,sha256,pdq\n"
                    f"r1,http://h.test/r1.jpg,csam,2026-05-01T00:00:00Z,{SHA},{pdq or ''}\n")
    return path


def imported_case(store: Store, tmp_path: Path) -> int:
    result = import_cases(store, write_reports(tmp_path, None), now=T0)
    assert (result.added, result.rejected) == (1, [])
    with store.session() as session:
        return session.scalars(select(Case.id)).one()


def test_a_reimport_without_pdq_agrees_with_a_learned_one(store, tmp_path):
    case_id = imported_case(store, tmp_path)
    append(store, seen(case_id, 1))
    learned = reference(store, case_id)
    assert learned[:2] == (PDQ_SEEN, "learned")
    result = import_cases(store, write_reports(tmp_path, None), now=T0)
    assert (result.added, result.unchanged, result.rejected) == (0, 1, [])
    assert reference(store, case_id) == learned


def test_a_reported_pdq_replaces_a_learned_one(store, tmp_path):
    case_id = imported_case(store, tmp_path)
    append(store, seen(case_id, 1))
    result = import_cases(store, write_reports(tmp_path, PDQ_REPORT), now=T0)
    assert (result.added, result.unchanged, result.pdq_set, result.rejected) == (0, 1, 1, [])
    assert reference(store, case_id) == (PDQ_REPORT, "report", None)
    # From the report now: another pdq in a later file is a conflict.
    again = import_cases(store, write_reports(tmp_path, PDQ_LATER), now=T0)
    assert [e.field for e in again.rejected] == ["pdq"]
    assert "conflict" in again.rejected[0].reason
    assert reference(store, case_id) == (PDQ_REPORT, "report", None)


def test_a_reimport_with_a_pdq_fills_a_case_that_had_none(store, tmp_path):
    # The hotline computed its PDQs after the first import.
    case_id = imported_case(store, tmp_path)
    assert reference(store, case_id) == (None, None, None)
    result = import_cases(store, write_reports(tmp_path, PDQ_REPORT), now=T0)
    assert (result.added, result.unchanged, result.pdq_set, result.rejected) == (0, 1, 1, [])
    assert reference(store, case_id) == (PDQ_REPORT, "report", None)
    again = import_cases(store, write_reports(tmp_path, PDQ_REPORT), now=T0)
    assert (again.unchanged, again.pdq_set, again.rejected) == (1, 0, [])


def test_a_rejected_row_does_not_replace_a_learned_pdq(store, tmp_path):
    case_id = imported_case(store, tmp_path)
    append(store, seen(case_id, 1))
    learned = reference(store, case_id)
    path = tmp_path / "other.csv"
    path.write_text("id,url,category,reported_at,sha256,pdq\n"
                    f"r1,http://h.test/r1.jpg,ncii,2026-05-01T00:00:00Z,{SHA},{PDQ_REPORT}\n")
    result = import_cases(store, path, now=T0)
    assert [e.field for e in result.rejected] == ["category"]
    assert reference(store, case_id) == learned


def test_an_imported_pdq_is_from_the_report(store, tmp_path):
    import_cases(store, write_reports(tmp_path, PDQ_REPORT), now=T0)
    with store.session() as session:
        case_id = session.scalars(select(Case.id)).one()
    assert reference(store, case_id) == (PDQ_REPORT, "report", None)


# ------------------------------------------------------------------ migration 0010


def test_migration_0010_marks_stored_pdqs_as_from_the_report(db_url):
    store = Store(db_url)
    try:
        with store.engine.begin() as connection:
            cfg = _alembic_config(db_url)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "0009")
        at = T0.replace(tzinfo=None)
        with store.engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO cases (source, external_id, url, url_normalised, host, category, "
                "reported_at, imported_at, state, reappearances, check_count, ref_sha256, "
                "ref_pdq) VALUES ('hotline', :key, 'http://h.test/x.jpg', "
                "'http://h.test/x.jpg', 'h.test', 'csam', :at, :at, 'unchecked', 0, 0, "
                ":sha, :pdq)"), [
                {"key": "with", "at": at, "sha": SHA, "pdq": PDQ_REPORT},
                {"key": "without", "at": at, "sha": SHA, "pdq": None}])
            # A check of the 0009 era, hashed as then.
            case_id = connection.execute(text(
                "SELECT id FROM cases WHERE external_id = 'with'")).scalar_one()
            old = {name: None for name in OLD_HASHED_FIELDS} | {
                "case_id": case_id, "checked_at": T0, "method": "http", "verdict": "online",
                "url": "http://h.test/x.jpg", "tool_version": "0.9", "truncated": False,
                "imported": False, "http_status": 200, "body_sha256": SHA}
            digest = old_record_hash(old, GENESIS)
            connection.execute(text(
                "INSERT INTO checks (case_id, checked_at, method, verdict, url, tool_version, "
                "truncated, imported, http_status, body_sha256, prev_hash, record_hash) VALUES "
                "(:case_id, :at, 'http', 'online', 'http://h.test/x.jpg', '0.9', :f, :f, 200, "
                ":sha, :genesis, :digest)"),
                {"case_id": case_id, "at": at, "f": False, "sha": SHA, "genesis": GENESIS,
                 "digest": digest})
            connection.execute(text(
                "UPDATE chain_head SET record_hash = :digest, check_id = "
                "(SELECT max(id) FROM checks)"), {"digest": digest})
        store.upgrade()
        with store.session() as session:
            got = {c.external_id: (c.ref_pdq, c.ref_pdq_source, c.ref_pdq_check_id)
                   for c in session.scalars(select(Case))}
            assert verify_chain(session) == (1, [])
        assert got == {"with": (PDQ_REPORT, "report", None), "without": (None, None, None)}
        # The 0009-era chain, extended with a check that has PDQ fields, verifies.
        append(store, NewCheck(case_id=case_id, checked_at=T0 + timedelta(hours=1),
                               method="http", verdict="reencoded", url="http://h.test/x.jpg",
                               tool_version="test", body_sha256="cd" * 32, body_pdq=PDQ_SEEN,
                               pdq_quality=90, pdq_distance=4, reference_match=True))
        with store.session() as session:
            assert verify_chain(session) == (2, [])
    finally:
        store.dispose()


def test_cases_json_says_where_the_reference_pdq_came_from(store):
    case_id = add_case(store)
    append(store, seen(case_id, 1))
    result = CliRunner().invoke(main, ["--db", store.url, "cases", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output.splitlines()[0])
    with store.session() as session:
        check_id = session.scalars(select(Check.id)).one()
    assert (listed["ref_pdq"], listed["ref_pdq_source"], listed["ref_pdq_check_id"]) == (
        PDQ_SEEN, "learned", check_id)
    assert listed["ref_sha256"] == SHA
