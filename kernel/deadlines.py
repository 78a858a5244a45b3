"""Deadlines: did a hoster take the material down in time? (pure functions)

Three regimes (DESIGN.md, "Reports"):

- ``notice_24h``: the 24-hour norm after the first notice to the hoster;
- ``atkm_order``: an ATKM removal order's own ``deadline_at``, at most 12 hours
  after it was issued (a later ``deadline_at`` is cut to 12 hours);
- ``terrorist_1h``: a terrorist-content removal order, one hour after issue.

A deadline runs from its *start* (the notice was sent, the order issued) to
its *due* time. It is judged at a moment ``now`` (the caller's clock: the time
a report or pack is made), from the checks around it, never guessed:

- ``pending``: ``now`` is before the deadline. Nothing is decided yet,
  whatever the checks found so far: the material may still come back before
  the deadline, or go.

Once the deadline has passed (``now`` at or after it):

- ``already_gone``: the material was gone when the notice was sent or the
  order issued and stayed gone until the deadline: the last decisive check
  at or before the start found it gone, and no check from the start to the
  deadline found it served. Not compliance: there was nothing left to
  remove. (Gone before the notice, served again after it and gone again by
  the deadline is ``met``; served again and still served after the deadline
  is ``breached``.)
- ``met``: the last decisive check at or before the deadline found the
  material gone (and it is not ``already_gone``);
- ``breached``: the first decisive check after the deadline found it served,
  and the last one at or before the deadline had not found it gone;
- ``undecided``: the checks do not bracket the deadline (no check at or
  before it found it gone, and none after it found it served - e.g. served
  before, gone after: the removal may have come just in time or just too
  late; or no check at all).

Decisive checks are served or gone verdicts; time-outs, 5xx and the like say
nothing about the material and are skipped. Checks at the same instant that
disagree count as served (a served check is positive evidence that the
material was there), so the judgement does not depend on the order of the
checks. A check exactly at the start counts as "at the start", one exactly at
the deadline as in time. Material that comes back after a met (or
already-gone) deadline is a reappearance (counted elsewhere), not a breach.

The store keeps an order's ``deadline_at`` as the order states it and judges
its ``due_at`` (`order_due`): `capped` tells when the two differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from kernel.model import Verdict, VerdictGroup


class Regime(StrEnum):
    NOTICE_24H = "notice_24h"
    ATKM_ORDER = "atkm_order"
    TERRORIST_1H = "terrorist_1h"


class Outcome(StrEnum):
    MET = "met"
    ALREADY_GONE = "already_gone"
    BREACHED = "breached"
    UNDECIDED = "undecided"
    PENDING = "pending"


NOTICE_HOURS = 24
ATKM_MAX_HOURS = 12
TERRORIST_HOURS = 1


def order_regime(issuer: str, legal_basis: str = "") -> Regime | None:
    """The regime of an order, from its issuer and legal basis.

    A legal basis naming the terrorist-content regulation (EU 2021/784, "TCO")
    or terrorist content makes a ``terrorist_1h`` order; any other order from
    ATKM is an ``atkm_order``. Other issuers: None (no regime; give the
    ``regime`` column when importing).
    """
    basis = legal_basis.lower()
    if "2021/784" in basis or "tco" in basis.split() or "terror" in basis:
        return Regime.TERRORIST_1H
    if issuer.strip().upper() == "ATKM" or "kinderpornografisch" in issuer.lower():
        return Regime.ATKM_ORDER
    return None


def order_due(regime: Regime | None, issued_at: datetime, deadline_at: datetime) -> datetime:
    """When an order is due: its regime's deadline, else its own ``deadline_at``."""
    if regime is None or regime is Regime.NOTICE_24H:
        return deadline_at
    return deadline(regime, issued_at, deadline_at)


LEGAL_CAP_HOURS = {Regime.ATKM_ORDER: ATKM_MAX_HOURS, Regime.TERRORIST_1H: TERRORIST_HOURS}
"""The longest deadline the law allows an order of each regime (hours after issue)."""

REGIME_TEXT = {Regime.NOTICE_24H: "a notice (24-hour norm)",
               Regime.ATKM_ORDER: "an ATKM order",
               Regime.TERRORIST_1H: "a terrorist-content order"}


def capped(regime: Regime | None, issued_at: datetime, deadline_at: datetime) -> bool:
    """Whether an order's stated ``deadline_at`` lies beyond its regime's legal
    cap, so that it is judged at the (earlier) `order_due` time instead."""
    return order_due(regime, issued_at, deadline_at) < deadline_at


def notice_due(sent_at: datetime) -> datetime:
    """The 24-hour notice norm's deadline for a notice sent at ``sent_at``."""
    return deadline(Regime.NOTICE_24H, sent_at)


def deadline(regime: Regime, start: datetime, deadline_at: datetime | None = None) -> datetime:
    """The deadline of ``regime`` for a notice sent / an order issued at ``start``."""
    if regime is Regime.NOTICE_24H:
        return start + timedelta(hours=NOTICE_HOURS)
    if regime is Regime.TERRORIST_1H:
        return start + timedelta(hours=TERRORIST_HOURS)
    latest = start + timedelta(hours=ATKM_MAX_HOURS)
    return latest if deadline_at is None else min(deadline_at, latest)


@dataclass(frozen=True)
class Judgement:
    regime: Regime
    start: datetime  # the notice was sent / the order issued
    deadline: datetime
    outcome: Outcome
    last_before: datetime | None  # the decisive check at or before the deadline
    first_after: datetime | None  # the decisive check after it
    at_start: datetime | None  # the decisive check at or before the start


_Seen = tuple[datetime, VerdictGroup]


def _later(seen: _Seen | None, when: datetime, group: VerdictGroup) -> bool:
    """Whether (when, group) replaces ``seen`` as the latest decisive check;
    at one instant, served outweighs gone."""
    return (seen is None or when > seen[0]
            or (when == seen[0] and group is VerdictGroup.SERVED))


def _earlier(seen: _Seen | None, when: datetime, group: VerdictGroup) -> bool:
    return (seen is None or when < seen[0]
            or (when == seen[0] and group is VerdictGroup.SERVED))


def judge(regime: Regime, start: datetime, due: datetime,
          checks: Iterable[tuple[datetime, Verdict]], now: datetime) -> Judgement:
    """Judge one deadline from ``start`` to ``due`` at ``now``, from a case's
    checks (any order). See the module's docstring for the rule."""
    if start > due:
        raise ValueError(f"a deadline cannot start ({start}) after it is due ({due})")
    before: _Seen | None = None
    after: _Seen | None = None
    at_start: _Seen | None = None
    served_since_start = False
    for when, verdict in checks:
        group = verdict.group
        if group not in (VerdictGroup.SERVED, VerdictGroup.GONE):
            continue
        if when <= start and _later(at_start, when, group):
            at_start = (when, group)
        if when <= due:
            if _later(before, when, group):
                before = (when, group)
            if when > start and group is VerdictGroup.SERVED:
                served_since_start = True
        elif _earlier(after, when, group):
            after = (when, group)
    if now < due:
        outcome = Outcome.PENDING
    elif before is not None and before[1] is VerdictGroup.GONE:
        gone_at_start = at_start is not None and at_start[1] is VerdictGroup.GONE
        outcome = (Outcome.ALREADY_GONE if gone_at_start and not served_since_start
                   else Outcome.MET)
    elif after is not None and after[1] is VerdictGroup.SERVED:
        outcome = Outcome.BREACHED
    else:
        outcome = Outcome.UNDECIDED
    return Judgement(regime, start, due, outcome, before[0] if before else None,
                     after[0] if after else None, at_start[0] if at_start else None)
