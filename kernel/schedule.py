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

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

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
