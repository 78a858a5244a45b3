"""Time to takedown of one case: its durations on three clocks (pure).

The group figures (Kaplan–Meier) built on these are reports/takedown.py.

No database access: a case comes in as plain times (`CaseTimes`), as the store's
``derive_state()`` gives them, so an SQL layer can feed this module directly.

**Durations.** A confirmed removal is only known to lie in the interval
(``removed_after``, ``removed_at``]: the material was last seen served at
``removed_after`` (the later of the last served check and the report; None
when neither came before the first miss: then the interval is open below and
a clock counts from its own start) and first missed at ``removed_at``. On
each clock (`Clock`: from the report, the first notice, the removal order)
that interval becomes hours since the clock's
start, with its midpoint as the point estimate and its width (the check gap) as
the uncertainty. After a reappearance the store restarts the removal interval,
so a duration measures the time until the *latest* confirmed removal;
reappearances are counted apart.

A case without a confirmed removal (online, pending removal, reappeared) is
*right-censored* at its last check: it was followed that long and is counted as
not yet removed.

**A clock that starts late.** When the clock starts inside the removal interval
(a notice sent between the last served and the first gone check) the lower bound
is clamped to 0: the removal may have come just before or after it. When the
clock starts at or after ``removed_at`` (a notice or order sent after the
removal had already been seen) the case has *no* duration on that clock: a
removal that preceded the notice says nothing about how the hoster reacts to
notices, and counting it as 0 h would flatter the hoster. Such cases still count
in the group's case totals, not in its survival figures (`TakedownFigures.measured`).
A still-online case whose last check predates the clock's start is censored at
0 h (in the totals, no weight in the curve).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum

__all__ = [
    "CaseTimes",
    "Clock",
    "Duration",
    "censored_duration",
    "clock_start",
    "duration",
    "durations",
    "hours_between",
    "removal_duration",
]


class Clock(StrEnum):
    """Where the time to removal is measured from."""

    REPORT = "report"  # reported_at: how long the material stayed up once known
    NOTICE = "notice"  # first_notice_at: the hoster's reaction to a notice
    ORDER = "order"  # order_issued_at: the reaction to a removal order


@dataclass(frozen=True)
class CaseTimes:
    """One case's times, as aware datetimes (UTC from the store).

    ``removed_at`` is set for a confirmed removal and None otherwise (the
    case counts as still online). ``removed_after`` (at most ``removed_at``) is
    the last time the material was known served; None when nothing showed it
    served before ``removed_at`` (checks older than a report filed late): then
    only the upper bound of the removal is known.
    ``last_checked_at`` is None for a case never checked.
    """

    case_id: int
    hoster: str
    reported_at: datetime
    removed_after: datetime | None = None
    removed_at: datetime | None = None
    last_checked_at: datetime | None = None
    first_notice_at: datetime | None = None
    order_issued_at: datetime | None = None
    reappearances: int = 0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, datetime) and value.utcoffset() is None:
                raise ValueError(f"case {self.case_id}: {field.name} must be timezone-aware")
        if self.removed_after is not None and self.removed_at is None:
            raise ValueError(f"case {self.case_id}: removed_after needs removed_at")
        if (
            self.removed_after is not None
            and self.removed_at is not None
            and self.removed_at < self.removed_after
        ):
            raise ValueError(f"case {self.case_id}: removed_at must not precede removed_after")
        if self.reappearances < 0:
            raise ValueError(f"case {self.case_id}: reappearances cannot be negative")

    @property
    def removed(self) -> bool:
        """True when a removal is confirmed (and not undone by a reappearance)."""
        return self.removed_at is not None


@dataclass(frozen=True)
class Duration:
    """Hours from a clock's start to removal, or to the last check if not removed.

    Removed: the removal lies in (``lower_hours``, ``upper_hours``];
    ``point_hours`` is the midpoint and ``uncertainty_hours`` the width.
    Not removed (right-censored): ``lower_hours == point_hours`` = hours followed,
    ``upper_hours`` and ``uncertainty_hours`` are None (no upper bound).
    """

    lower_hours: float
    upper_hours: float | None
    point_hours: float
    uncertainty_hours: float | None
    removed: bool


def hours_between(start: datetime, end: datetime) -> float:
    """Signed hours from ``start`` to ``end``."""
    return (end - start).total_seconds() / 3600.0


def removal_duration(
    start: datetime, removed_after: datetime | None, removed_at: datetime
) -> Duration | None:
    """The removal interval (removed_after, removed_at] seen from ``start``.

    A start inside the interval clamps the lower bound to 0, and so does an
    unknown ``removed_after`` (None: the interval is open below); a start at
    or after ``removed_at`` (removal already seen) gives None: no duration on
    this clock.
    """
    upper = hours_between(start, removed_at)
    if upper <= 0:
        return None
    lower = 0.0 if removed_after is None else max(0.0, hours_between(start, removed_after))
    return Duration(
        lower_hours=lower,
        upper_hours=upper,
        point_hours=(lower + upper) / 2,
        uncertainty_hours=upper - lower,
        removed=True,
    )


def censored_duration(start: datetime, followed_until: datetime) -> Duration:
    """A case not removed, followed until ``followed_until`` (at least 0 h)."""
    hours = max(0.0, hours_between(start, followed_until))
    return Duration(
        lower_hours=hours, upper_hours=None, point_hours=hours, uncertainty_hours=None,
        removed=False,
    )


def clock_start(case: CaseTimes, clock: Clock) -> datetime | None:
    """When ``clock`` starts for ``case``; None when that event never happened."""
    if clock is Clock.REPORT:
        return case.reported_at
    if clock is Clock.NOTICE:
        return case.first_notice_at
    return case.order_issued_at


def duration(case: CaseTimes, clock: Clock = Clock.REPORT) -> Duration | None:
    """Time to removal of ``case`` on ``clock``.

    None when the clock never started (no notice, no order) or started only
    after the removal had been seen. A never-checked case is censored at its
    report.
    """
    start = clock_start(case, clock)
    if start is None:
        return None
    if case.removed_at is not None:
        return removal_duration(start, case.removed_after, case.removed_at)
    return censored_duration(start, case.last_checked_at or case.reported_at)


def durations(case: CaseTimes) -> dict[Clock, Duration | None]:
    """``duration()`` of ``case`` on every clock."""
    return {clock: duration(case, clock) for clock in Clock}
