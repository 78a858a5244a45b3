"""Appending checks: the hash chain, the case summary, the derived state.

`append_checks()` is the only writer of the `checks` table. One call is one
transaction: the checks of a batch, the chain head, and the cases they touch
are written together or not at all, so a crash loses no finished batch and
leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, select
from sqlalchemy.orm import Session

from kernel.model import PdqSource, RunHealth, Verdict
from kernel.state import Debounce, derive_state
from store.models import Case, ChainHead, Check, CrawlRun, RunCase

GENESIS = "0" * 64
CHECKS: Table = Check.__table__  # type: ignore[assignment]
_CASES: Table = Case.__table__  # type: ignore[assignment]
_RUNS: Table = CrawlRun.__table__  # type: ignore[assignment]
_CASE_UPDATE = (_CASES.update().where(_CASES.c.id == bindparam("case_id"))
                .values({name: bindparam(name) for name in (
                    "state", "last_verdict", "last_checked_at", "last_served_at",
                    "removed_after", "removed_at", "reappearances", "check_count",
                    "last_counted_at", "unconfirmed_checks")}))


@dataclass
class NewCheck:
    """A check as the crawler (or an import) hands it to the store."""

    case_id: int
    checked_at: datetime
    method: str
    verdict: str
    url: str
    tool_version: str
    run_id: int | None = None
    http_status: int | None = None
    final_url: str | None = None
    redirect_chain: list[str] | None = None
    peer_ip: str | None = None
    content_type: str | None = None
    content_length: int | None = None
    bytes_received: int | None = None
    truncated: bool = False
    body_sha256: str | None = None
    body_pdq: str | None = None
    reference_match: bool | None = None
    reason: str | None = None
    error_kind: str | None = None
    headers: dict[str, Any] | None = field(default=None)
    imported: bool = False
    pdq_quality: int | None = None  # PDQ's own 0-100 score of body_pdq
    pdq_distance: int | None = None  # bits between body_pdq and the case's reference PDQ
    # Not a field of the check: the case's reference PDQ is learned from this
    # check (its SHA-256 matched the reported one, its PDQ is of usable
    # quality, the case has none yet): the case records body_pdq and this check.
    learns_pdq: bool = False


# The fields of a check that its record hash always covers, in this order:
# those a check had before migration 0010...
HASHED_FIELDS = (
    "case_id", "checked_at", "method", "verdict", "url", "tool_version", "run_id",
    "http_status", "final_url", "redirect_chain", "peer_ip", "content_type", "content_length",
    "bytes_received", "truncated", "body_sha256", "body_pdq", "reference_match", "reason",
    "error_kind", "headers", "imported")
# ...and these, added since, only when set: every check written before them
# keeps the record hash it was written with, and the chain still verifies.
HASHED_WHEN_SET = ("pdq_quality", "pdq_distance")
# The columns of a check written from a NewCheck (the chain links apart).
CHECK_FIELDS = HASHED_FIELDS + HASHED_WHEN_SET


def _canonical_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# The canonical JSON form: what json.dumps(sort_keys=True, separators=(",", ":"),
# ensure_ascii=True) writes, with one encoder for every check instead of one each.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def record_hash(row: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 of a check's canonical JSON form and the previous link."""
    canonical = {name: row.get(name) for name in HASHED_FIELDS}
    canonical.update((name, row[name]) for name in HASHED_WHEN_SET if row.get(name) is not None)
    canonical["checked_at"] = _canonical_time(row["checked_at"])
    canonical["prev_hash"] = prev_hash
    text = _CANONICAL_JSON.encode(canonical)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _chain_head(session: Session) -> ChainHead:
    """The chain head row, locked for this transaction (FOR UPDATE on PostgreSQL).

    The first writer of a store creates it; writers starting at once (the
    workers of a shared run) must not both try: the insert ignores a row
    that another transaction wrote meanwhile."""
    locked = select(ChainHead).where(ChainHead.id == 1).with_for_update()
    head = session.scalars(locked).first()
    if head is None:
        session.execute(_insert_ignoring(session, ChainHead).values(
            id=1, record_hash=GENESIS, check_id=None))
        head = session.scalars(locked.execution_options(populate_existing=True)).one()
    return head


def append_checks(session: Session, checks: Sequence[NewCheck], rules: Debounce, *,
                  once_per_run: bool = False) -> int:
    """Append ``checks`` to the store and bring their cases up to date;
    returns how many were appended.

    ``once_per_run`` (a run shared by workers, store.queue): a check whose
    case already has one in its run is dropped, and each appended one
    records its (run, case) in ``run_cases`` in the same transaction.
    Call inside a transaction (``store.transaction()``).
    """
    if not checks:
        return 0
    # The chain head first: every writer takes it before anything else, so
    # two writers of one run (a batch handed on) never wait for each other's
    # run_cases rows while holding the head (no deadlock).
    head = _chain_head(session)
    if once_per_run:
        checks = _first_of_run(session, checks)
        if not checks:
            return 0
    prev = head.record_hash
    rows: list[dict[str, Any]] = []
    learning: list[tuple[NewCheck, str]] = []
    for check in checks:
        row = {name: getattr(check, name) for name in CHECK_FIELDS}
        row["prev_hash"] = prev
        row["record_hash"] = prev = record_hash(row, prev)
        rows.append(row)
        if check.learns_pdq and check.body_pdq:
            learning.append((check, prev))
    # Core statements: the ORM's bulk paths cost about twice the CPU here.
    session.connection().execute(CHECKS.insert(), rows)
    last_id = session.scalar(select(Check.id).where(Check.record_hash == prev))
    head.record_hash = prev
    head.check_id = last_id
    for check, link in learning:
        _learn_pdq(session, check, link)
    refresh_cases(session, {c.case_id for c in checks}, rules)
    return len(checks)


def _first_of_run(session: Session, checks: Sequence[NewCheck]) -> list[NewCheck]:
    """The checks whose (run, case) has none stored yet, their ``run_cases``
    rows inserted (the primary key decides between two writers at once:
    the second waits for the first's transaction, then finds its row)."""
    keys = list(dict.fromkeys((c.run_id, c.case_id) for c in checks if c.run_id is not None))
    added: set[tuple[int, int]] = set()
    if keys:
        statement = _insert_ignoring(session, RunCase).values(
            [{"run_id": run_id, "case_id": case_id} for run_id, case_id in keys])
        added = {(row[0], row[1]) for row in session.execute(
            statement.returning(RunCase.run_id, RunCase.case_id))}
    kept: list[NewCheck] = []
    for check in checks:
        if check.run_id is None:
            kept.append(check)
        elif (check.run_id, check.case_id) in added:
            added.discard((check.run_id, check.case_id))  # the first of a batch's twins
            kept.append(check)
    return kept


def _insert_ignoring(session: Session, model: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING into ``model``'s table, in the store's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model).on_conflict_do_nothing()


def _learn_pdq(session: Session, check: NewCheck, link: str) -> None:
    """The case's reference PDQ, learned from ``check`` (its record hash
    ``link``) unless the case has one already (from its report, or learned
    by an earlier check): the hash of the picture, never the picture."""
    db = session.connection()
    check_id = db.scalar(select(CHECKS.c.id).where(CHECKS.c.record_hash == link))
    db.execute(_CASES.update()
               .where(_CASES.c.id == check.case_id, _CASES.c.ref_pdq.is_(None))
               .values(ref_pdq=check.body_pdq, ref_pdq_source=PdqSource.LEARNED.value,
                       ref_pdq_check_id=check_id))


def held_run_ids(session: Session) -> set[int]:
    """The runs whose failing checks do not count (yet): suspect, or not judged.

    A handful at any time (the running run and the suspect ones), so reading
    them once beats joining every check to its run.
    """
    return set(session.connection().scalars(
        select(_RUNS.c.id).where(_RUNS.c.health != RunHealth.HEALTHY.value)))


def refresh_cases(session: Session, case_ids: Iterable[int], rules: Debounce) -> int:
    """Re-derive the state of ``case_ids`` from their full check history,
    honouring run health (kernel.state: held checks)."""
    ids = sorted(set(case_ids))
    done = 0
    held_runs = held_run_ids(session)
    # Core statements on the session's connection: no ORM result processing.
    db = session.connection()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        reported = dict(db.execute(
            select(_CASES.c.id, _CASES.c.reported_at).where(_CASES.c.id.in_(chunk))).all())
        history: dict[int, list[tuple[datetime, Verdict]]] = defaultdict(list)
        held: dict[int, list[tuple[datetime, Verdict]]] = defaultdict(list)
        for case_id, when, verdict, run_id in db.execute(
                select(CHECKS.c.case_id, CHECKS.c.checked_at, CHECKS.c.verdict, CHECKS.c.run_id)
                .where(CHECKS.c.case_id.in_(chunk))
                # checks at the same moment: in the order they were written
                .order_by(CHECKS.c.case_id, CHECKS.c.checked_at, CHECKS.c.id)):
            (held if run_id in held_runs else history)[case_id].append((when, Verdict(verdict)))
        updates = []
        for case_id in chunk:
            if case_id not in reported:
                continue
            derived = derive_state(reported[case_id], history.get(case_id, ()), rules,
                                   held=held.get(case_id, ()))
            updates.append({
                "case_id": case_id,
                "state": derived.state.value,
                "last_verdict": derived.last_verdict.value if derived.last_verdict else None,
                "last_checked_at": derived.last_checked_at,
                "last_served_at": derived.last_served_at,
                "removed_after": derived.removed_after,
                "removed_at": derived.removed_at,
                "reappearances": derived.reappearances,
                "check_count": derived.checks,
                "last_counted_at": derived.last_counted_at,
                "unconfirmed_checks": derived.unconfirmed,
            })
        if updates:
            db.execute(_CASE_UPDATE, updates)
        done += len(updates)
    return done


@dataclass(frozen=True)
class ChainProblem:
    check_id: int
    problem: str

    def __str__(self) -> str:
        return f"check {self.check_id}: {self.problem}"


def verify_chain(session: Session, batch: int = 10_000) -> tuple[int, list[ChainProblem]]:
    """Recompute the hash chain over every check, in id order.

    Returns the number of checks read and every link that does not hold, each
    naming its check and what differs: its contents no longer give its
    ``record_hash`` (a field was changed), its ``record_hash`` itself was
    overwritten (its contents still give the hash the next check links to), or
    its ``prev_hash`` is not the previous check's ``record_hash`` (a check was
    removed in between, or a link was rewritten); and a chain head that is not
    the last check.
    """
    problems: list[ChainProblem] = []
    prev, prev_id = GENESIS, 0
    # The last check whose contents did not give its record_hash:
    # (its index in problems, id, stored hash, recomputed hash).
    unmatched: tuple[int, int, str, str] | None = None
    count = 0
    columns = [getattr(Check, name) for name in CHECK_FIELDS]
    while True:
        rows = session.execute(
            select(Check.id, Check.prev_hash, Check.record_hash, *columns)
            .where(Check.id > prev_id).order_by(Check.id).limit(batch)).all()
        if not rows:
            break
        for row in rows:
            data = row._asdict()
            count += 1
            check_id = data["id"]
            if data["prev_hash"] != prev:
                if (unmatched is not None and unmatched[1] == prev_id
                        and data["prev_hash"] == unmatched[3]):
                    # The previous check's contents are intact: its record_hash
                    # was overwritten, and this link still names the true one.
                    problems[unmatched[0]] = ChainProblem(prev_id, (
                        f"record_hash changed since written (stored {unmatched[2][:12]}…, "
                        f"its contents and check {check_id}'s prev_hash give "
                        f"{unmatched[3][:12]}…)"))
                else:
                    before = f"check {prev_id}" if prev_id else "the chain's start"
                    problems.append(ChainProblem(check_id, (
                        f"prev_hash {data['prev_hash'][:12]}… is not the record_hash "
                        f"{prev[:12]}… of {before} before it (a check between them was "
                        "removed, or a link was rewritten)")))
            expected = record_hash(data, data["prev_hash"])
            unmatched = None
            if expected != data["record_hash"]:
                unmatched = (len(problems), check_id, data["record_hash"], expected)
                problems.append(ChainProblem(check_id, "contents changed since written "
                                             f"(hash {data['record_hash'][:12]}…, "
                                             f"recomputed {expected[:12]}…)"))
            prev, prev_id = data["record_hash"], check_id
    head = session.get(ChainHead, 1)
    if head is not None and (head.record_hash != prev or (count and head.check_id != prev_id)):
        problems.append(ChainProblem(prev_id, (
            f"chain head (check {head.check_id}, {head.record_hash[:12]}…) is not the last "
            f"check (check {prev_id}, {prev[:12]}…)")))
    return count, problems
