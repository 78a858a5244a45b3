"""Read-only queries the library API (hostwatch.api) and the CLI share.

Each takes an open session and returns plain values or model rows; none
writes. They hold the SQL the CLI commands used to carry themselves.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kernel.model import RunHealth
from store.models import Attribution, Case, ChainHead, Check, CrawlRun, Hoster

__all__ = [
    "CaseRow",
    "case_ids",
    "case_ids_checked_in_run",
    "chain_head",
    "checks_in_run",
    "count_suspect_runs",
    "count_unconfirmed_cases",
    "hoster_case_rows",
    "iter_cases",
    "last_run",
    "state_counts",
]

# A case, the attribution of its newest check that reached an address (None
# until attributed) and the key of that attribution's hoster of record.
CaseRow = tuple[Case, Attribution | None, str | None]


def state_counts(session: Session) -> dict[str, int]:
    """How many cases are in each state (states without cases left out)."""
    rows = session.execute(select(Case.state, func.count()).group_by(Case.state)).all()
    return {state: count for state, count in rows}


def last_run(session: Session) -> CrawlRun | None:
    """The newest crawl run, or None before the first."""
    return session.scalars(select(CrawlRun).order_by(CrawlRun.id.desc()).limit(1)).first()


def checks_in_run(session: Session, run_id: int) -> int:
    """How many checks of the run are stored (a running run's count so far)."""
    return session.scalar(
        select(func.count()).select_from(Check).where(Check.run_id == run_id)) or 0


def count_unconfirmed_cases(session: Session) -> int:
    """Cases whose newest checks failed in a suspect (or running) run."""
    return session.scalar(select(func.count()).select_from(Case)
                          .where(Case.unconfirmed_checks > 0)) or 0


def count_suspect_runs(session: Session) -> int:
    """Crawl runs judged suspect, in all."""
    return session.scalar(select(func.count()).select_from(CrawlRun)
                          .where(CrawlRun.health == RunHealth.SUSPECT.value)) or 0


def case_ids(session: Session) -> list[int]:
    """Every case's id."""
    return list(session.scalars(select(Case.id)))


def case_ids_checked_in_run(session: Session, run_id: int) -> list[int]:
    """The ids of the cases the run checked, in order."""
    return sorted(set(session.scalars(select(Check.case_id).where(Check.run_id == run_id))))


def chain_head(session: Session) -> ChainHead | None:
    """The head of the check hash chain (None on a store that never had one)."""
    return session.get(ChainHead, 1)


def iter_cases(session: Session, state: str | None = None,
               limit: int | None = None, hoster_id: int | None = None) -> Iterator[CaseRow]:
    """Cases by id with their attribution of record and its hoster key,
    streamed in batches; ``state``: only cases in it; ``hoster_id``: only
    cases whose hoster of record it is (as `hoster_case_rows`); ``limit``: at
    most so many."""
    query = (select(Case, Attribution, Hoster.key).order_by(Case.id)
             .outerjoin(Attribution, Attribution.id == Case.attribution_id)
             .outerjoin(Hoster, Hoster.id == Attribution.hoster_id))
    if state:
        query = query.where(Case.state == state)
    if hoster_id is not None:
        query = query.where(Attribution.hoster_id == hoster_id)
    if limit:
        query = query.limit(limit)
    rows = session.execute(query).yield_per(1000)
    yield from ((case, who, key) for case, who, key in rows)


def hoster_case_rows(session: Session, hoster_id: int,
                     states: Sequence[str]) -> list[tuple[Case, Attribution, Check]]:
    """The cases in ``states`` whose hoster of record is the hoster, by id,
    with that attribution and the check it attributes."""
    rows = session.execute(
        select(Case, Attribution, Check)
        .join(Attribution, Attribution.id == Case.attribution_id)
        .join(Check, Check.id == Attribution.check_id)
        .where(Attribution.hoster_id == hoster_id, Case.state.in_(states))
        .order_by(Case.id)).all()
    return [(case, who, check) for case, who, check in rows]
