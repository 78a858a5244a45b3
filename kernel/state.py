"""A case's state, derived from its check history (pure, no I/O).

Debounced removal (DESIGN.md, "Verdicts and case state"):

- a case is *removed* after ``confirmations`` gone checks since the material
  was last served, spanning at least ``min_hours`` from the first to the last
  of them; transient checks (timeouts, 5xx...) neither count nor break the run;
- when only failing checks (gone or transient) have been seen for at least
  ``transient_days`` since the first of them, removal counts as confirmed too;
- the removal time is the interval (last served, first gone]: the material was
  last seen at ``removed_after`` and first missed at ``removed_at``. The report
  counts as a sighting too: ``removed_after`` is the later of the last served
  check and the report time, of those not after ``removed_at``. When neither
  precedes the first gone check (a log of checks older than a report filed
  late), nothing says when the material was last served: ``removed_after`` is
  None and only ``removed_at`` bounds the removal. So ``removed_after <=
  removed_at`` holds in every state the rule can reach;
- served again after a confirmed removal is a *reappearance*: counted, and the
  clock restarts from that check.

``blocked_address`` checks never fetched anything and are ignored.

Checks of a *suspect* run (its vantage point was broken: a control URL failed,
or an anomalous share of served cases failed at once; store.health), and of a
run not judged yet, are passed apart as ``held``. Their served verdicts count
like any other (the material answered: positive evidence from any vantage
point); their gone and transient verdicts count for nothing, now or later. A
healthy run *confirms* such a failure only with gone checks of its own: the
removal interval runs from the last served check to the first gone check of a
healthy run, and a suspect run's gone check inside it does not narrow it (a
broken vantage point cannot date a removal). Held failures newer than the last
counted check are reported as ``unconfirmed``; the case's ``last_counted_at``
ignores them, so the scheduler keeps the case due.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from kernel.model import CaseState, Verdict, VerdictGroup


@dataclass(frozen=True)
class Debounce:
    confirmations: int = 2
    min_hours: float = 12.0
    transient_days: float = 7.0


@dataclass(frozen=True)
class CaseHistory:
    state: CaseState
    last_verdict: Verdict | None
    last_checked_at: datetime | None
    last_served_at: datetime | None
    removed_after: datetime | None
    removed_at: datetime | None
    reappearances: int
    checks: int
    last_counted_at: datetime | None = None  # newest check that counts (not blocked, not held)
    unconfirmed: int = 0  # held failing checks newer than that


def counts(verdict: Verdict, held: bool) -> bool:
    """Whether a check counts as evidence about the material: every check of
    a healthy run; of a held (suspect or unjudged) run only a served one.
    Deadline judgements use the same rule as the state."""
    return not held or verdict.group is VerdictGroup.SERVED


def _split_held(
    checks: Iterable[tuple[datetime, Verdict]],
    held: Iterable[tuple[datetime, Verdict]],
) -> tuple[list[tuple[datetime, Verdict]], list[tuple[datetime, Verdict]]]:
    """(the checks that count, the held failures that do not)."""
    counted = list(checks)
    failures = []
    for when, verdict in held:
        if verdict.group in (VerdictGroup.GONE, VerdictGroup.TRANSIENT):
            failures.append((when, verdict))
        else:  # served counts; not fetched is ignored by the fold either way
            counted.append((when, verdict))
    return counted, failures


def derive_state(
    reported_at: datetime,
    checks: Iterable[tuple[datetime, Verdict]],
    rules: Debounce = Debounce(),
    held: Iterable[tuple[datetime, Verdict]] = (),
) -> CaseHistory:
    """Fold a case's checks (any order) into its current state.

    ``held``: the checks of suspect or not yet judged runs (see above).
    """
    counted, failures = _split_held(checks, held)
    # A stable sort: checks at the same moment keep the order given (the
    # store gives them in id order).
    ordered = sorted(counted, key=lambda c: c[0])
    state = CaseState.UNCHECKED
    seen_served: datetime | None = None
    removed_after = removed_at = None
    reappearances = 0
    gone_run: list[datetime] = []  # gone checks since the last served one
    first_failure: datetime | None = None  # first gone/transient since then
    min_span = timedelta(hours=rules.min_hours)
    transient_span = timedelta(days=rules.transient_days)

    for when, verdict in ordered:
        group = verdict.group
        if group is VerdictGroup.NOT_FETCHED:
            continue
        if group is VerdictGroup.SERVED:
            if state is CaseState.REMOVED:
                reappearances += 1
                state = CaseState.REAPPEARED
            elif state is not CaseState.REAPPEARED:
                state = CaseState.ONLINE
            seen_served = when
            gone_run = []
            first_failure = None
            continue
        # gone or transient
        if first_failure is None:
            first_failure = when
        if group is VerdictGroup.GONE:
            gone_run.append(when)
        if state is CaseState.REMOVED:
            continue
        confirmed_by_gone = (
            len(gone_run) >= rules.confirmations and gone_run[-1] - gone_run[0] >= min_span
        )
        confirmed_by_time = when - first_failure >= transient_span
        if confirmed_by_gone or confirmed_by_time:
            state = CaseState.REMOVED
            removed_at = gone_run[0] if confirmed_by_gone else first_failure
            removed_after = _last_sighting(reported_at, seen_served, removed_at)
        else:
            state = CaseState.PENDING_REMOVAL

    every = sorted([*ordered, *failures], key=lambda c: c[0])
    last = every[-1] if every else None
    last_counted = max((when for when, verdict in ordered
                        if verdict.group is not VerdictGroup.NOT_FETCHED), default=None)
    if state is not CaseState.REMOVED:
        removed_after = removed_at = None
    return CaseHistory(
        state=state,
        last_verdict=last[1] if last else None,
        last_checked_at=last[0] if last else None,
        last_served_at=seen_served,
        removed_after=removed_after,
        removed_at=removed_at,
        reappearances=reappearances,
        checks=len(every),
        last_counted_at=last_counted,
        unconfirmed=sum(1 for when, _ in failures if last_counted is None or when > last_counted),
    )


def _last_sighting(reported_at: datetime, last_served: datetime | None,
                   removed_at: datetime) -> datetime | None:
    """The last time the material was known served, not after ``removed_at``.

    A served check comes before ``removed_at`` by construction (it precedes the
    run of failures); the report counts only when it was not filed later.
    """
    sightings = [t for t in (last_served, reported_at) if t is not None and t <= removed_at]
    return max(sightings, default=None)
