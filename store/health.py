"""Is a crawl run's vantage point to be trusted? Control URLs and the anomaly rule.

A dead or wrong resolver, a blocked uplink, or a resolver that points every
name at a private address makes every reported URL fail at once. Counted, such
a run would confirm the removal of every case. So each run is judged when it
ends (``judge_run``), and its failing checks count toward no removal until it
is judged healthy (kernel.state: held checks). A run is *suspect* when:

1. **a control URL was not served**: HOSTWATCH_CONTROL_URLS are fetched through
   the crawl's own path (resolver, address guard, downloader) at the start and
   at the end of the run, and each must answer 2xx; or
2. **served cases failed at network level at once**: among the cases the run
   checked whose previous decisive check (served, or gone in a healthy run) found
   the material served, the share whose check now failed at network level
   (``NETWORK_FAILURES``: no name, no DNS answer, refused, time-out, TLS
   failure, or an address the guard refused) reached HOSTWATCH_SUSPECT_SHARE,
   with at least HOSTWATCH_SUSPECT_MIN_CASES such cases (a run of three cases
   is not judged by its share); or
3. **nothing got an address**: at least HOSTWATCH_SUSPECT_NO_ADDRESS_SHARE of
   the run's checks (again at least HOSTWATCH_SUSPECT_MIN_CASES) got no usable
   address (``NO_ADDRESS``: no name, no DNS answer, refused by the guard). This
   covers a fresh import that was never served. It does not apply when control
   URLs were configured and every one made was served: the resolver is then
   shown to work, and names it cannot find are taken as gone. A run too small
   for the shares (fewer checks than HOSTWATCH_SUSPECT_MIN_CASES, such as a
   `crawl --due` deadline run) is suspect when *every* check got no usable
   address and at least one of them was of a case served before, unless
   control URLs vouch for the resolver: a single genuine domain takedown in a
   one-case deadline run is then held too, and its deadline waits for a
   healthy check (configure control URLs to avoid that).

HTTP answers (404, 5xx, 403...) are never a network-level failure: a server
answered, and that is the hoster speaking. Rule 2 cannot tell a broken path to
some hosters from a mass takedown of those hosters in one night: with the
defaults that takes half of all previously served cases in one run; such a run
is shown as suspect with its reason, and the next healthy run confirms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from kernel.model import RunHealth, Verdict, VerdictGroup
from kernel.state import Debounce
from store.checks import held_run_ids, refresh_cases
from store.models import Check, CrawlRun
from store.of_record import NO_ADDRESS

NETWORK_FAILURES = frozenset({
    Verdict.NXDOMAIN, Verdict.DNS_ERROR, Verdict.REFUSED, Verdict.TIMEOUT, Verdict.TLS_ERROR,
    Verdict.BLOCKED_ADDRESS})
"""Verdicts where no server answered over HTTP: what a broken path produces."""

# NO_ADDRESS (store.of_record): verdicts where the name gave no address the
# crawler could use.

_SERVED = tuple(v.value for v in Verdict if v.group is VerdictGroup.SERVED)
_GONE = tuple(v.value for v in Verdict if v.group is VerdictGroup.GONE)
_FAILING = tuple(v.value for v in Verdict if v.group in (VerdictGroup.GONE,
                                                         VerdictGroup.TRANSIENT))


class ControlPhase(StrEnum):
    START = "start"
    END = "end"


@dataclass(frozen=True)
class ControlResult:
    """One fetch of a control URL: its final HTTP status, or the error kind."""

    phase: ControlPhase
    url: str
    status: int | None
    error: str | None
    checked_at: datetime

    @property
    def served(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def as_json(self) -> dict[str, Any]:
        return {"phase": self.phase.value, "url": self.url, "status": self.status,
                "error": self.error,
                "checked_at": self.checked_at.isoformat().replace("+00:00", "Z")}


@dataclass(frozen=True)
class HealthRule:
    """The anomaly thresholds (HOSTWATCH_SUSPECT_*)."""

    share: float = 0.5
    min_cases: int = 20
    no_address_share: float = 0.9

    def __post_init__(self) -> None:
        for name in ("share", "no_address_share"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"HealthRule.{name} must be in (0, 1], got {value}")
        if self.min_cases < 1:
            raise ValueError(f"HealthRule.min_cases must be at least 1, got {self.min_cases}")


@dataclass(frozen=True)
class RunTally:
    """What a run's checks add up to, for the anomaly rules."""

    checks: int = 0  # case checks the run made
    no_address: int = 0  # of them, in NO_ADDRESS
    were_served: int = 0  # checks whose case's previous decisive check was served
    turned: int = 0  # of those, now in NETWORK_FAILURES


@dataclass(frozen=True)
class Judgement:
    health: RunHealth
    reasons: tuple[str, ...] = ()

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) or None


def judge(tally: RunTally, controls: Sequence[ControlResult], rule: HealthRule) -> Judgement:
    """The health of a run from its tally and its control fetches (pure)."""
    reasons = [f"control {c.url} not served at the {c.phase.value} of the run "
               f"({f'HTTP {c.status}' if c.status is not None else c.error or 'no answer'})"
               for c in controls if not c.served]
    if tally.were_served >= rule.min_cases and tally.turned >= rule.share * tally.were_served:
        reasons.append(f"{tally.turned} of {tally.were_served} cases served before failed at "
                       f"network level in this run (threshold {rule.share:.0%})")
    vouched = bool(controls) and all(c.served for c in controls)
    if (not vouched and tally.checks >= rule.min_cases
            and tally.no_address >= rule.no_address_share * tally.checks):
        reasons.append(f"{tally.no_address} of {tally.checks} checks got no usable address "
                       f"(threshold {rule.no_address_share:.0%}): the resolver answered "
                       "nothing useful")
    elif (not vouched and tally.were_served > 0 and tally.checks < rule.min_cases
          and tally.no_address == tally.checks):
        # Too few cases for a share (a deadline run checks a handful): a run
        # in which every check got no address, cases served before included,
        # is what a dead or wrong resolver looks like. Control URLs vouching
        # for the resolver lift it.
        reasons.append(f"all {tally.checks} checks got no usable address, {tally.were_served} "
                       "of them of cases served before, and no control URL vouched for "
                       "the resolver (a run too small for the shares)")
    return Judgement(RunHealth.SUSPECT if reasons else RunHealth.HEALTHY, tuple(reasons))


# -- the store ------------------------------------------------------------------

def tally_run(session: Session, run_id: int) -> RunTally:
    """Count a run's checks for the anomaly rules (aggregated in SQL).

    A case's previous decisive check is its newest earlier check that was
    served (from any run), or gone in a counted run: a suspect run's gone
    checks would otherwise hide the next broken run.
    """
    held = held_run_ids(session)
    prev = aliased(Check)
    counted_gone = and_(prev.verdict.in_(_GONE),
                        or_(prev.run_id.is_(None), prev.run_id.not_in(held)))
    previous = (select(prev.verdict)
                .where(prev.case_id == Check.case_id, prev.checked_at < Check.checked_at,
                       or_(prev.verdict.in_(_SERVED), counted_gone))
                .order_by(prev.checked_at.desc(), prev.id.desc()).limit(1)
                .correlate(Check).scalar_subquery())
    rows = select(Check.verdict.label("verdict"), previous.label("previous")) \
        .where(Check.run_id == run_id).subquery()
    was_served = rows.c.previous.in_(_SERVED)
    totals = session.execute(select(rows.c.verdict, was_served, func.count())
                             .group_by(rows.c.verdict, was_served)).all()
    checks = no_address = were_served = turned = 0
    for verdict, served_before, n in totals:
        checks += n
        failure = Verdict(verdict)
        if failure in NO_ADDRESS:
            no_address += n
        if served_before:
            were_served += n
            if failure in NETWORK_FAILURES:
                turned += n
    return RunTally(checks, no_address, were_served, turned)


def judge_run(session: Session, run_id: int, controls: Sequence[ControlResult] | None,
              rule: HealthRule, debounce: Debounce) -> Judgement:
    """Judge a run that has ended, record its health, and re-derive the state
    of the cases it found failing (they count now, or stay held).

    ``controls``: the control fetches made, None when none were configured.
    Call inside a transaction, after the run's last check is written.
    """
    judgement = judge(tally_run(session, run_id), controls or (), rule)
    session.execute(update(CrawlRun).where(CrawlRun.id == run_id).values(
        health=judgement.health.value, health_reason=judgement.reason,
        controls=[c.as_json() for c in controls] if controls is not None else None))
    failing = session.scalars(select(Check.case_id).distinct()
                              .where(Check.run_id == run_id, Check.verdict.in_(_FAILING)))
    refresh_cases(session, list(failing), debounce)
    return judgement


def judge_pending_runs(session: Session, rule: HealthRule, debounce: Debounce) -> list[int]:
    """Judge every run left unjudged (a crash, a kill): by its checks alone, as
    its control results died with it. Call only while holding the run lock."""
    ids = list(session.scalars(select(CrawlRun.id).where(
        CrawlRun.health == RunHealth.PENDING.value, CrawlRun.status != "running")
        .order_by(CrawlRun.id)))
    for run_id in ids:
        judge_run(session, run_id, None, rule, debounce)
    return ids
