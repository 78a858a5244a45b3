"""Deadline checks: which cases to check at and just after an order's deadline.

A nightly check cannot prove a 1-hour or 12-hour breach (DESIGN.md,
"Deadlines"), so every removal order gets two checks of its own:

- ``at``: due at ``deadline - margin``, so that it lands at or before the
  deadline: found gone there, the deadline was met;
- ``after``: due at ``deadline + margin``: found served there, it was breached.

Nothing is stored for this: a deadline check is *done* when the case has any
check that counts (nightly, deadline run or imported) at or after its due
time, and *pending* when its due time has come and it is not done. A check
that never reached an address (``blocked_address``) and a failing check of a
suspect run (store.health) do not count: the deadline check stays pending,
and the next ``crawl --due`` makes it again. One check therefore
does every pending check of a case at once, and a late ``at`` check (the
deadline run could not run in time) is simply a check after the deadline.

An order is *open* while ``deadline + margin`` is less than ``window`` (two
days) ago; older deadlines are not chased any more.

Cases that are already confirmed removed keep their deadline checks: a gone
check at the deadline shows the deadline met in the evidence, and material
that came back just before the deadline is seen.

Every order is scheduled by its ``due_at`` (the regime's deadline, or the
order's own deadline when hostwatch cannot tell its regime); notices are not:
their 24-hour norm is left to the nightly run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import and_, func, not_, select
from sqlalchemy.orm import Session

from hostwatch.model import Verdict, VerdictGroup
from store.checks import held_run_ids
from store.db import Store
from store.models import Case, Check, Order
from store.runs import DueCase

DEADLINE_WINDOW = timedelta(days=2)
"""Orders whose ``after`` check was due longer ago than this are not chased."""

DUE_NIGHTLY = "nightly"
"""Which cases a crawl checks (the recheck spider's ``due`` argument): every
case due by HOSTWATCH_RECHECK_HOURS (store.runs)..."""
DUE_DEADLINES = "deadlines"
"""...or only the cases with a pending deadline check (this module)."""

DEADLINE_RUN_METHOD = "http-deadlines"
"""CrawlRun.method of a run that made only deadline checks (a nightly run: ``http``)."""


class CheckKind(StrEnum):
    AT = "at"  # lands at or before the deadline
    AFTER = "after"  # just after it


@dataclass(frozen=True)
class ScheduleRule:
    """``margin``: how far before / after the deadline its two checks are due."""

    margin: timedelta = timedelta(seconds=300)
    window: timedelta = DEADLINE_WINDOW

    def __post_init__(self) -> None:
        if self.margin <= timedelta(0):
            raise ValueError(f"the deadline margin must be positive, got {self.margin}")


@dataclass(frozen=True)
class DeadlineCheck:
    kind: CheckKind
    due: datetime  # when it should run
    deadline: datetime


def deadline_checks(deadline: datetime, rule: ScheduleRule) -> tuple[DeadlineCheck, DeadlineCheck]:
    """The ``at`` and ``after`` checks of a deadline."""
    return (DeadlineCheck(CheckKind.AT, deadline - rule.margin, deadline),
            DeadlineCheck(CheckKind.AFTER, deadline + rule.margin, deadline))


def is_open(deadline: datetime, now: datetime, rule: ScheduleRule) -> bool:
    """Whether the deadline is still chased at ``now`` (not long past)."""
    return deadline + rule.margin >= now - rule.window


def _done(check: DeadlineCheck, last_checked: datetime | None) -> bool:
    return last_checked is not None and last_checked >= check.due


def pending_check(deadline: datetime, last_checked: datetime | None, now: datetime,
                  rule: ScheduleRule) -> DeadlineCheck | None:
    """The deadline check to make now, or None.

    ``last_checked`` is the time of the case's newest check. When both checks
    are pending (the ``at`` check was missed), the ``after`` one is returned:
    one check now does both.
    """
    if not is_open(deadline, now, rule):
        return None
    pending = [check for check in deadline_checks(deadline, rule)
               if check.due <= now and not _done(check, last_checked)]
    return pending[-1] if pending else None


def next_check(deadline: datetime, last_checked: datetime | None, now: datetime,
               rule: ScheduleRule) -> DeadlineCheck | None:
    """The first deadline check not done yet (pending now, or to come); None
    when both are done or the deadline is no longer chased."""
    if not is_open(deadline, now, rule):
        return None
    return next((check for check in deadline_checks(deadline, rule)
                 if not _done(check, last_checked)), None)


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
                select(Case.id, Case.url_normalised, Case.host, Case.ref_sha256, Case.ref_pdq)
                .where(Case.id.in_(chunk)).order_by(Case.id)).all()
        yield [DueCase(*row) for row in rows]
