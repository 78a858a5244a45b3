"""Every deadline in the store, judged: the glue between the store and
``kernel.deadlines.judge``.

Per case, the deadlines are:

- ``notice_24h``: the case's first notice (by ``sent_at``), due at its
  ``due_at`` (24 hours after it was sent);
- each order with a regime (``atkm_order``, ``terrorist_1h``), due at its
  ``due_at``. Orders whose regime hostwatch cannot tell are scheduled for
  deadline checks (store.schedule) but not judged here.

Each is judged at ``now`` (the caller's clock: ``pending`` until the deadline
has passed) from all of the case's checks. An order carries both its stated
``deadline_at`` and the ``due_at`` it is judged at (capped to the regime's
legal maximum). For orders the deadline scheduler's next check is given while
the deadline is open (not long past).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from kernel.deadlines import Judgement, Regime, judge
from kernel.model import Verdict, VerdictGroup
from kernel.schedule import DeadlineCheck, ScheduleRule, is_open, next_check
from kernel.state import counts
from store.checks import held_run_ids
from store.db import Store
from store.models import Case, Check, Notice, Order

CHUNK = 500  # cases read per round of queries


@dataclass(frozen=True)
class CaseDeadline:
    """One deadline of one case, judged."""

    case_id: int
    source: str
    external_id: str
    url: str
    state: str
    regime: Regime
    start: datetime  # the notice was sent / the order issued
    issuer: str | None  # orders only
    reference: str
    stated: datetime | None  # orders only: deadline_at as the order states it
    judgement: Judgement  # judgement.deadline: the due time (capped to the legal maximum)
    at_start_verdict: Verdict | None
    last_before_verdict: Verdict | None
    first_after_verdict: Verdict | None
    open: bool  # the deadline is not long past (store.schedule.is_open)
    next_check: DeadlineCheck | None  # orders only: the scheduler's next check

    @property
    def capped(self) -> bool:
        """The order states a later deadline than the one it is judged at."""
        return self.stated is not None and self.stated > self.judgement.deadline


@dataclass(frozen=True)
class _Deadline:
    regime: Regime
    start: datetime
    due: datetime
    issuer: str | None
    reference: str
    stated: datetime | None
    scheduled: bool


def _case_ids(session: Session, since: datetime | None,
              among: Sequence[int] | None) -> list[int]:
    notices = select(Notice.case_id)
    orders = select(Order.case_id).where(Order.regime.is_not(None))
    if since is not None:
        notices = notices.where(Notice.due_at >= since)
        orders = orders.where(Order.due_at >= since)
    if among is not None:
        notices = notices.where(Notice.case_id.in_(among))
        orders = orders.where(Order.case_id.in_(among))
    return sorted(session.scalars(select(union(notices, orders).subquery().c.case_id)))


def _deadlines(session: Session, ids: Sequence[int]) -> dict[int, list[_Deadline]]:
    found: dict[int, list[_Deadline]] = defaultdict(list)
    first_notice: set[int] = set()
    for notice in session.scalars(select(Notice).where(Notice.case_id.in_(ids))
                                  .order_by(Notice.case_id, Notice.sent_at, Notice.id)):
        if notice.case_id not in first_notice:
            first_notice.add(notice.case_id)
            found[notice.case_id].append(_Deadline(
                Regime.NOTICE_24H, notice.sent_at, notice.due_at, None, notice.reference,
                stated=None, scheduled=False))
    for order in session.scalars(select(Order).where(Order.case_id.in_(ids))
                                 .order_by(Order.case_id, Order.due_at, Order.id)):
        if order.regime is None:  # hostwatch cannot tell its regime: not judged
            continue
        found[order.case_id].append(_Deadline(
            Regime(order.regime), order.issued_at, order.due_at, order.issuer, order.reference,
            stated=order.deadline_at, scheduled=True))
    return found


def _checks(session: Session, ids: Sequence[int]) -> dict[int, list[tuple[datetime, Verdict]]]:
    """The checks that count (kernel.state.counts: a suspect run's failures do not)."""
    held = held_run_ids(session)
    found: dict[int, list[tuple[datetime, Verdict]]] = defaultdict(list)
    for case_id, when, verdict, run_id in session.execute(
            select(Check.case_id, Check.checked_at, Check.verdict, Check.run_id)
            .where(Check.case_id.in_(ids))):
        if counts(Verdict(verdict), run_id in held):
            found[case_id].append((when, Verdict(verdict)))
    return found


def _decisive_at(checks: Sequence[tuple[datetime, Verdict]],
                 when: datetime | None) -> Verdict | None:
    """The served or gone verdict of the check at ``when`` (the judgement's own
    pick: at one instant, a served verdict outweighs a gone one)."""
    if when is None:
        return None
    found = [verdict for checked_at, verdict in checks if checked_at == when
             and verdict.group in (VerdictGroup.SERVED, VerdictGroup.GONE)]
    served = [verdict for verdict in found if verdict.group is VerdictGroup.SERVED]
    return next(iter(served or found), None)


def case_deadlines(store: Store, now: datetime, rule: ScheduleRule,
                   only_open: bool = False,
                   among: Sequence[int] | None = None) -> Iterator[CaseDeadline]:
    """Every deadline of every case with a notice or a regime order, by case id,
    judged at ``now``; ``only_open``: only those not long past (see
    store.schedule); ``among``: only these cases."""
    since = now - rule.window - rule.margin if only_open else None
    with store.session() as session:
        ids = _case_ids(session, since, among)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        with store.session() as session:
            cases = {case.id: case for case in session.scalars(
                select(Case).where(Case.id.in_(chunk)))}
            deadlines = _deadlines(session, chunk)
            checks = _checks(session, chunk)
        for case_id in chunk:
            case = cases[case_id]
            history = checks.get(case_id, [])
            last_checked = max((when for when, _ in history), default=None)
            for deadline in deadlines.get(case_id, []):
                still_open = is_open(deadline.due, now, rule)
                if only_open and not still_open:
                    continue
                judgement = judge(deadline.regime, deadline.start, deadline.due, history, now)
                yield CaseDeadline(
                    case_id=case_id, source=case.source, external_id=case.external_id,
                    url=case.url, state=case.state, regime=deadline.regime,
                    start=deadline.start, issuer=deadline.issuer,
                    reference=deadline.reference, stated=deadline.stated,
                    judgement=judgement,
                    at_start_verdict=_decisive_at(history, judgement.at_start),
                    last_before_verdict=_decisive_at(history, judgement.last_before),
                    first_after_verdict=_decisive_at(history, judgement.first_after),
                    open=still_open,
                    next_check=(next_check(deadline.due, last_checked, now, rule)
                                if deadline.scheduled else None))
