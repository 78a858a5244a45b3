"""Crawl runs and which cases are due for a check."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from kernel import __version__
from kernel.model import CaseState, RunHealth
from kernel.state import Debounce
from store.db import Store
from store.health import HealthRule, judge_pending_runs
from store.models import Attribution, Case, Check, CrawlRun, RunCase, RunWorker


@dataclass(frozen=True)
class DueRule:
    """A case is due when its last counted check is older than
    ``recheck_hours``; removed cases stay due for ``watch_removed_days`` after
    their removal so that a reappearance is seen.

    A check that never reached an address (``blocked_address``) and a failing
    check of a suspect run do not count (``cases.last_counted_at``): such cases
    stay due, and the next run checks them again."""

    recheck_hours: float = 20.0
    watch_removed_days: float = 30.0


@dataclass(frozen=True)
class DueCase:
    id: int
    url: str
    host: str
    ref_sha256: str | None
    ref_pdq: str | None = None  # from the report, or learned from a SHA-256 match
    # Whose limit its requests share (crawler.politeness): `hoster_key` of its
    # hoster of record; None: never attributed, or behind a CDN.
    hoster: str | None = None
    # The shared run whose batch it came in (`load_cases`): a worker may hold
    # the same case for two runs at once. None in a single-process crawl.
    run_id: int | None = None


def hoster_key(hoster_id: int | None, asn: int | None, cdn: str | None) -> str | None:
    """The key under which a case's requests share one hoster's limit: its
    hoster of record (the ``hosters`` row), else the network (AS) that served
    it. None for a CDN-fronted case: the CDN's edge is no hoster, and one
    limit for all of a CDN would slow every case behind it."""
    if cdn is not None:
        return None
    if hoster_id is not None:
        return f"hoster {hoster_id}"
    if asn is not None:
        return f"AS{asn}"
    return None


def due_cases_query() -> Select[*tuple[Any, ...]]:
    """The columns `due_case` reads: the case's, and its attribution of record's."""
    return (select(Case.id, Case.url_normalised, Case.host, Case.ref_sha256, Case.ref_pdq,
                   Attribution.hoster_id, Attribution.asn, Attribution.cdn)
            .outerjoin(Attribution, Attribution.id == Case.attribution_id))


def due_case(row: Any, run_id: int | None = None) -> DueCase:
    case_id, url, host, ref_sha256, ref_pdq, hoster_id, asn, cdn = row
    return DueCase(case_id, url, host, ref_sha256, ref_pdq, hoster_key(hoster_id, asn, cdn),
                   run_id)


def _due_filter(now: datetime, rule: DueRule) -> ColumnElement[bool]:
    stale = now - timedelta(hours=rule.recheck_hours)
    watched = now - timedelta(days=rule.watch_removed_days)
    not_recent = or_(Case.last_counted_at.is_(None), Case.last_counted_at <= stale)
    still_watched = or_(Case.state != CaseState.REMOVED.value, Case.removed_at >= watched)
    return and_(not_recent, still_watched)


def count_due(session: Session, now: datetime, rule: DueRule) -> int:
    return session.scalar(select(func.count()).select_from(Case).where(_due_filter(now, rule))) or 0


def iter_due(store: Store, now: datetime, rule: DueRule, batch: int,
             limit: int | None = None) -> Iterator[list[DueCase]]:
    """Due cases in id order, ``batch`` at a time (keyset paging: memory stays flat)."""
    last_id = 0
    left = limit
    while left is None or left > 0:
        size = batch if left is None else min(batch, left)
        with store.session() as session:
            rows = session.execute(
                due_cases_query().where(_due_filter(now, rule), Case.id > last_id)
                .order_by(Case.id).limit(size)).all()
        if not rows:
            return
        last_id = rows[-1][0]
        if left is not None:
            left -= len(rows)
        yield [due_case(row) for row in rows]


def start_run(store: Store, now: datetime, cases_due: int, method: str = "http", *,
              health: HealthRule, debounce: Debounce) -> int:
    """Record a new run, not judged yet (its failing checks are held until it
    is: store.health). Runs left 'running' by a crash are marked 'aborted' and
    judged by their checks alone (``health``, ``debounce``: the rules).

    Call only while holding the run lock: then no other run can be running.
    """
    with store.transaction() as session:
        session.execute(update(CrawlRun).where(CrawlRun.status == "running")
                        .values(status="aborted"))
        judge_pending_runs(session, health, debounce)
        run = CrawlRun(started_at=now, status="running", method=method, cases_due=cases_due,
                       checks_made=0, counts={}, errors=0, tool_version=__version__,
                       pid=os.getpid(), hostname=socket.gethostname(),
                       health=RunHealth.PENDING.value)
        session.add(run)
        session.flush()
        return run.id


def finish_run(store: Store, run_id: int, now: datetime, status: str,
               counts: dict[str, int], errors: int, checks_made: int | None = None) -> None:
    """Close a run: ``counts`` per verdict as observed, ``checks_made`` as stored."""
    with store.transaction() as session:
        run = session.get(CrawlRun, run_id)
        if run is None:
            return
        run.finished_at = now
        run.status = status
        run.counts = dict(sorted(counts.items()))
        run.checks_made = sum(counts.values()) if checks_made is None else checks_made
        run.errors = errors


# -- runs shared by workers (store.queue) ---------------------------------------


def load_cases(store: Store, case_ids: Sequence[int], run_id: int) -> list[DueCase]:
    """The cases of a queued batch that ``run_id`` has not stored a check
    of yet (a batch handed on from a stalled worker skips those), by id."""
    done = select(RunCase.case_id).where(RunCase.run_id == run_id)
    with store.session() as session:
        rows = session.execute(
            due_cases_query().where(Case.id.in_(list(case_ids)), Case.id.not_in(done))
            .order_by(Case.id)).all()
    return [due_case(row, run_id) for row in rows]


def run_status(store: Store, run_id: int) -> str | None:
    with store.session() as session:
        return session.scalar(select(CrawlRun.status).where(CrawlRun.id == run_id))


def stored_in_run(session: Session, run_id: int) -> int:
    """Cases of a shared run with a stored check, over all its workers."""
    return session.scalar(select(func.count()).select_from(RunCase)
                          .where(RunCase.run_id == run_id)) or 0


def verdicts_of_run(session: Session, run_id: int) -> dict[str, int]:
    """The run's stored checks per verdict (a shared run's counts: every
    worker's checks, as stored)."""
    rows = session.execute(select(Check.verdict, func.count()).where(Check.run_id == run_id)
                           .group_by(Check.verdict)).all()
    return {verdict: count for verdict, count in rows}


def set_progress(store: Store, run_id: int, checks_made: int) -> None:
    with store.transaction() as session:
        session.execute(update(CrawlRun).where(CrawlRun.id == run_id)
                        .values(checks_made=checks_made))


def record_worker(store: Store, run_id: int, name: str, pid: int, now: datetime, *,
                  checks: int, stopped: bool = False) -> None:
    """Insert or bring up to date a worker's line of a shared run (`status`)."""
    with store.transaction() as session:
        worker = session.scalars(select(RunWorker).where(RunWorker.run_id == run_id,
                                                         RunWorker.name == name)).first()
        if worker is None:
            worker = RunWorker(run_id=run_id, name=name, hostname=name.rsplit(":", 1)[0],
                               pid=pid, started_at=now, checks=0)
            session.add(worker)
        worker.last_seen_at = now
        worker.checks = checks
        if stopped:
            worker.stopped_at = now


def workers_of_run(session: Session, run_id: int) -> list[RunWorker]:
    return list(session.scalars(select(RunWorker).where(RunWorker.run_id == run_id)
                                .order_by(RunWorker.started_at, RunWorker.id)))
