"""Deadlines: did a hoster take the material down in time? (pure functions)

Three regimes (DESIGN.md, "Reports"):

- ``notice_24h``: the 24-hour norm after the first notice to the hoster;
- ``atkm_order``: an ATKM removal order's own ``deadline_at``, at most 12 hours
  after it was issued (a later ``deadline_at`` is cut to 12 hours);
- ``terrorist_1h``: a terrorist-content removal order, one hour after issue.

A deadline is judged from the checks around it, never guessed:

- ``met``: the last decisive check at or before the deadline found the
  material gone (a gone verdict);
- ``breached``: the first decisive check after the deadline found it served,
  and no check at or before the deadline had found it gone;
- ``undecided``: the checks do not bracket the deadline (no check before it
  found it gone, and none after it found it served - e.g. served before,
  gone after: the removal may have come just in time or just too late).

Decisive checks are served or gone verdicts; time-outs, 5xx and the like say
nothing about the material and are skipped. Material that comes back after a
met deadline is a reappearance (counted elsewhere), not a breach.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from hostwatch.model import Verdict, VerdictGroup


class Regime(StrEnum):
    NOTICE_24H = "notice_24h"
    ATKM_ORDER = "atkm_order"
    TERRORIST_1H = "terrorist_1h"


class Outcome(StrEnum):
    MET = "met"
    BREACHED = "breached"
    UNDECIDED = "undecided"


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
    deadline: datetime
    outcome: Outcome
    last_before: datetime | None  # the decisive check at or before the deadline
    first_after: datetime | None  # the decisive check after it


def judge(regime: Regime, due: datetime,
          checks: Iterable[tuple[datetime, Verdict]]) -> Judgement:
    """Judge one deadline ``due`` from a case's checks (any order)."""
    before: tuple[datetime, VerdictGroup] | None = None
    after: tuple[datetime, VerdictGroup] | None = None
    for when, verdict in checks:
        group = verdict.group
        if group not in (VerdictGroup.SERVED, VerdictGroup.GONE):
            continue
        if when <= due:
            if before is None or when > before[0]:
                before = (when, group)
        elif after is None or when < after[0]:
            after = (when, group)
    if before is not None and before[1] is VerdictGroup.GONE:
        outcome = Outcome.MET
    elif after is not None and after[1] is VerdictGroup.SERVED:
        outcome = Outcome.BREACHED
    else:
        outcome = Outcome.UNDECIDED
    return Judgement(regime, due, outcome, before[0] if before else None,
                     after[0] if after else None)
