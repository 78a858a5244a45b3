"""Deadline checks in the store: which cases have one pending (the rules:
kernel/schedule.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import and_, func, not_, select
from sqlalchemy.orm import Session

from kernel.model import Verdict, VerdictGroup
from kernel.schedule import (
    ScheduleRule,
    pending_check,
)
from store.checks import held_run_ids
from store.db import Store
from store.models import Case, Check, Order
from store.runs import DueCase, due_case, due_cases_query

# -- the store ------------------------------------------------------------------

def pending_case_ids(session: Session, now: datetime, rule: ScheduleRule) -> list[int]:
    """Ids of the cases with a pending deadline check at ``now``, in id order.

    Reads only the orders whose deadline checks can be pending (deadline within
    the window; the index on ``orders.due_at``) and each one's newest check
    that counts.
    """
    failing = tuple(v.value for v in Verdict
                    if v.group in (VerdictGroup.GONE, VerdictGroup.TRANSIENT))
    held = held_run_ids(session)
    counts = and_(Check.verdict != Verdict.BLOCKED_ADDRESS.value,
                  # (an imported check has no run: NULL must not drop it)
                  not_(and_(Check.verdict.in_(failing), Check.run_id.is_not(None),
                            Check.run_id.in_(held))))
    newest = (select(func.max(Check.checked_at)).where(Check.case_id == Order.case_id, counts)
              .correlate(Order).scalar_subquery())
    rows = session.execute(
        select(Order.case_id, Order.due_at, newest)
        .where(Order.due_at >= now - rule.window - rule.margin,
               Order.due_at <= now + rule.margin)).all()
    return sorted({case_id for case_id, due, last in rows
                   if pending_check(due, last, now, rule) is not None})


def count_deadline_due(session: Session, now: datetime, rule: ScheduleRule) -> int:
    return len(pending_case_ids(session, now, rule))


def iter_deadline_due(store: Store, now: datetime, rule: ScheduleRule, batch: int,
                      limit: int | None = None) -> Iterator[list[DueCase]]:
    """The cases with a pending deadline check, ``batch`` at a time (like
    ``store.runs.iter_due`` for the nightly run)."""
    with store.session() as session:
        ids = pending_case_ids(session, now, rule)
    if limit is not None:
        ids = ids[:limit]
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        with store.session() as session:
            rows = session.execute(
                due_cases_query().where(Case.id.in_(chunk)).order_by(Case.id)).all()
        yield [due_case(row) for row in rows]
