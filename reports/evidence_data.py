"""Evidence packs, part one: read one hoster's cases from the store and compute their figures.

`read_evidence()` reads the cases whose hoster of record is one hoster
(``cases.attribution_id`` -> ``attributions.hoster_id``), with every check,
attribution, notice and order of those cases and the check hash chain's head,
in one read, into an `EvidenceData`. Checks newer than the chain head read at
the start are left out, so a crawl running meanwhile cannot make the pack
disagree with its own ``chain_head``.

The rest are pure functions of an `EvidenceData`: the cells of the pack's CSV
tables, the time-to-removal figures (figures.json) and the deadline
judgements. `reports.evidence` builds the pack from them; `reports.evidence_docs`
writes the documents for people.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.deadlines import Judgement, Outcome, Regime, judge
from kernel.errors import ReportError
from kernel.model import RunHealth, Verdict
from kernel.state import Debounce, counts
from reports.perceptual import PdqRule
from reports.takedown import CaseTimes, Clock, duration, takedown_figures
from store.checks import GENESIS
from store.hosters import find_hoster
from store.models import (
    Attribution,
    Case,
    ChainHead,
    Check,
    CrawlRun,
    Hoster,
    HosterAlias,
    Notice,
    Order,
)

__all__ = [
    "ATTRIBUTION_COLUMNS",
    "CASE_COLUMNS",
    "CHECK_COLUMNS",
    "CHECK_COLUMNS_BEFORE_PDQ",
    "MANIFEST",
    "NOTICE_COLUMNS",
    "ORDER_COLUMNS",
    "RUN_COLUMNS",
    "Audience",
    "EvidenceData",
    "EvidenceError",
    "Judged",
    "attribution_cells",
    "case_cells",
    "case_times",
    "check_cells",
    "check_resolution_hours",
    "deadline_counts",
    "figures",
    "find_hoster",
    "judgements",
    "read_evidence",
    "run_cells",
]

# The pack's checksum file: here rather than in reports.evidence because the
# pack's README (reports.evidence_docs) lists it too.
MANIFEST = "MANIFEST.sha256"


class EvidenceError(ReportError):
    """The pack cannot be made (unknown hoster, folder in the way...); says why."""


class Audience(StrEnum):
    ATKM = "atkm"  # Autoriteit online Terroristisch en Kinderpornografisch Materiaal
    ACM = "acm"  # Autoriteit Consument & Markt, the Dutch Digital Services Coordinator


@dataclass(frozen=True)
class EvidenceData:
    """What the store holds about one hoster's cases, read at one moment."""

    hoster: Hoster
    audience: Audience
    since: datetime | None
    until: datetime | None
    cases: list[Case]
    checks: list[Check]
    attributions: list[Attribution]
    notices: list[Notice]
    orders: list[Order]
    head_check_id: int | None
    head_hash: str
    store_url: str
    generated_at: datetime
    rules: Debounce
    runs: list[CrawlRun] = field(default_factory=list)  # the runs that made the checks
    # How the hoster's sources name it (registry id, RDAP handle, names...):
    # the evidence of how each attribution was matched to this hoster.
    aliases: list[HosterAlias] = field(default_factory=list)
    # The perceptual-matching settings the method states (HOSTWATCH_PDQ*).
    pdq: PdqRule = field(default_factory=PdqRule)


# ---------------------------------------------------------------- reading


def read_evidence(session: Session, hoster_name: str, audience: Audience, *,
                  store_url: str, rules: Debounce, since: datetime | None = None,
                  until: datetime | None = None, now: datetime | None = None,
                  pdq: PdqRule | None = None) -> EvidenceData:
    """Read the cases of one hoster of record (reported in [since, until)).

    Raises `store.hosters.HosterNotFound` / `HosterAmbiguous` when
    ``hoster_name`` names no single hoster.
    """
    hoster = find_hoster(session, hoster_name)
    aliases = list(session.scalars(select(HosterAlias).where(HosterAlias.hoster_id == hoster.id)
                                   .order_by(HosterAlias.first_seen, HosterAlias.id)))
    head = session.get(ChainHead, 1)
    head_id = head.check_id if head is not None else None
    head_hash = head.record_hash if head is not None else GENESIS
    stmt = (select(Case).join(Attribution, Attribution.id == Case.attribution_id)
            .where(Attribution.hoster_id == hoster.id).order_by(Case.id))
    if since is not None:
        stmt = stmt.where(Case.reported_at >= since)
    if until is not None:
        stmt = stmt.where(Case.reported_at < until)
    cases = list(session.scalars(stmt))
    ids = [case.id for case in cases]
    checks: list[Check] = []
    attributions: list[Attribution] = []
    notices: list[Notice] = []
    orders: list[Order] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        if head_id is not None:
            checks += session.scalars(select(Check).where(
                Check.case_id.in_(chunk), Check.id <= head_id))
            attributions += session.scalars(select(Attribution).where(
                Attribution.case_id.in_(chunk), Attribution.check_id <= head_id))
        notices += session.scalars(select(Notice).where(Notice.case_id.in_(chunk)))
        orders += session.scalars(select(Order).where(Order.case_id.in_(chunk)))
    return EvidenceData(
        hoster=hoster, audience=audience, since=since, until=until, cases=cases,
        checks=sorted(checks, key=lambda c: c.id),
        attributions=sorted(attributions, key=lambda a: a.id),
        notices=sorted(notices, key=lambda n: (n.case_id, n.sent_at, n.id)),
        orders=sorted(orders, key=lambda o: (o.case_id, o.issued_at, o.id)),
        head_check_id=head_id, head_hash=head_hash, store_url=store_url,
        generated_at=(now or datetime.now(UTC)).replace(microsecond=0), rules=rules,
        runs=_runs(session, {c.run_id for c in checks if c.run_id is not None}),
        aliases=aliases, pdq=pdq or PdqRule())


def _runs(session: Session, ids: set[int]) -> list[CrawlRun]:
    runs: list[CrawlRun] = []
    ordered = sorted(ids)
    for start in range(0, len(ordered), 500):
        runs += session.scalars(select(CrawlRun).where(
            CrawlRun.id.in_(ordered[start:start + 500])))
    return sorted(runs, key=lambda r: r.id)


# ---------------------------------------------------------------- tables

CASE_COLUMNS = (
    "case_id", "source", "external_id", "url", "url_normalised", "host", "category",
    "reported_at", "state", "last_verdict", "last_checked_at", "last_served_at",
    "removed_after", "removed_at", "reappearances", "check_count", "ref_sha256", "ref_pdq",
    "ref_pdq_source", "ref_pdq_check_id", "attribution_id")
RUN_COLUMNS = ("run_id", "started_at", "finished_at", "status", "method", "health",
               "health_reason", "controls", "tool_version")
CHECK_COLUMNS = (
    "check_id", "case_id", "run_id", "checked_at", "method", "verdict", "http_status", "url",
    "final_url", "redirect_chain", "peer_ip", "content_type", "content_length",
    "bytes_received", "truncated", "body_sha256", "body_pdq", "pdq_quality", "pdq_distance",
    "reference_match", "reason", "error_kind", "headers", "tool_version", "imported",
    "prev_hash", "record_hash")
# checks.csv of packs written before the PDQ fields (#12): `hostwatch verify`
# still compares their rows, column by column.
CHECK_COLUMNS_BEFORE_PDQ = tuple(
    name for name in CHECK_COLUMNS if name not in ("pdq_quality", "pdq_distance"))
ATTRIBUTION_COLUMNS = (
    "attribution_id", "check_id", "case_id", "of_record", "attributed_at", "hostname",
    "cname_chain", "nameservers", "ip", "asn", "prefix", "as_name", "as_country",
    "network_name", "network_handle", "rdap_org", "rdap_org_country", "rdap_country",
    "abuse_email", "cdn", "cdn_evidence", "hoster_id", "hoster", "hoster_country", "dsa_role",
    "jurisdiction", "dutch", "sources")
NOTICE_COLUMNS = (
    "notice_id", "case_id", "sent_at", "channel", "recipient", "reference", "trusted_flagger",
    "due_at", "outcome", "decisive_check_at_start", "last_decisive_check_before",
    "first_decisive_check_after")
# deadline_at: as the order states it; due_at: when it is judged (capped to the
# regime's legal maximum).
ORDER_COLUMNS = (
    "order_id", "case_id", "issuer", "legal_basis", "reference", "issued_at", "deadline_at",
    "regime", "due_at", "outcome", "decisive_check_at_start", "last_decisive_check_before",
    "first_decisive_check_after")


def check_cells(check: Check) -> list[Any]:
    """One checks.csv row (before cell escaping); `hostwatch verify` compares it too."""
    return [check.id if name == "check_id" else getattr(check, name) for name in CHECK_COLUMNS]


def run_cells(run: CrawlRun) -> list[Any]:
    """A run's row: whether its vantage point was healthy, and its control fetches."""
    return [run.id, run.started_at, run.finished_at, run.status, run.method, run.health,
            run.health_reason,
            json.dumps(run.controls, sort_keys=True) if run.controls is not None else None,
            run.tool_version]


def case_cells(case: Case) -> list[Any]:
    return [case.id if name == "case_id" else getattr(case, name) for name in CASE_COLUMNS]


def attribution_cells(row: Attribution, of_record: bool) -> list[Any]:
    values = {"attribution_id": row.id, "of_record": of_record}
    return [values[name] if name in values else getattr(row, name)
            for name in ATTRIBUTION_COLUMNS]


# ---------------------------------------------------------------- figures


def _history(data: EvidenceData) -> dict[int, list[tuple[datetime, Verdict]]]:
    """Each case's checks that count (kernel.state.counts: a suspect or
    unjudged run's failures do not)."""
    held = {run.id for run in data.runs if run.health != RunHealth.HEALTHY.value}
    history: dict[int, list[tuple[datetime, Verdict]]] = defaultdict(list)
    for check in data.checks:
        verdict = Verdict(check.verdict)
        if counts(verdict, check.run_id in held):
            history[check.case_id].append((check.checked_at, verdict))
    return history


def case_times(data: EvidenceData) -> list[CaseTimes]:
    """`CaseTimes` of every case: the cases table, the first notice, the first order."""
    first_notice: dict[int, datetime] = {}
    for notice in data.notices:
        first_notice[notice.case_id] = min(first_notice.get(notice.case_id, notice.sent_at),
                                           notice.sent_at)
    first_order: dict[int, datetime] = {}
    for order in data.orders:
        first_order[order.case_id] = min(first_order.get(order.case_id, order.issued_at),
                                         order.issued_at)
    return [CaseTimes(case_id=c.id, hoster=data.hoster.legal_name, reported_at=c.reported_at,
                      removed_after=c.removed_after, removed_at=c.removed_at,
                      last_checked_at=c.last_checked_at,
                      first_notice_at=first_notice.get(c.id),
                      order_issued_at=first_order.get(c.id), reappearances=c.reappearances)
            for c in data.cases]


@dataclass(frozen=True)
class Judged:
    """One deadline judgement and what it is about."""

    case_id: int
    subject: str  # "notice 3" / "order 7"
    judgement: Judgement
    stated: datetime | None = None  # orders: deadline_at as stated (judgement.deadline: due)


def judgements(data: EvidenceData) -> tuple[dict[int, Judgement], dict[int, Judgement],
                                            list[Judged]]:
    """(per notice id, per order id, the counted ones): every deadline judged.

    Every notice and every order with a regime is judged against its own
    ``due_at``, at the pack's time (``generated_at``: a deadline not yet
    passed then is pending); the counted judgements are each case's first
    notice (``notice_24h``) and each order with a regime (by its regime).
    """
    history = _history(data)
    now = data.generated_at
    per_notice = {n.id: judge(Regime.NOTICE_24H, n.sent_at, n.due_at,
                              history.get(n.case_id, ()), now)
                  for n in data.notices}
    per_order = {o.id: judge(Regime(o.regime), o.issued_at, o.due_at,
                             history.get(o.case_id, ()), now)
                 for o in data.orders if o.regime is not None}
    counted: list[Judged] = []
    seen: set[int] = set()
    for notice in data.notices:  # sorted by case, then time: the first comes first
        if notice.case_id not in seen:
            seen.add(notice.case_id)
            counted.append(Judged(notice.case_id, f"notice {notice.id}", per_notice[notice.id]))
    counted += [Judged(o.case_id, f"order {o.id}", per_order[o.id], o.deadline_at)
                for o in data.orders if o.id in per_order]
    return per_notice, per_order, counted


def check_resolution_hours(data: EvidenceData) -> float | None:
    """Median hours between the last served and the first gone check of removals."""
    gaps = [(c.removed_at - c.removed_after).total_seconds() / 3600.0
            for c in data.cases if c.removed_at is not None and c.removed_after is not None]
    return round(statistics.median(gaps), 3) if gaps else None


def deadline_counts(counted: Sequence[Judged]) -> dict[str, dict[str, int]]:
    counts = {regime.value: {outcome.value: 0 for outcome in Outcome} for regime in Regime}
    for item in counted:
        counts[item.judgement.regime.value][item.judgement.outcome.value] += 1
    return counts


def figures(data: EvidenceData) -> dict[str, Any]:
    """The figures.json document."""
    times = case_times(data)
    _, _, counted = judgements(data)
    by_case = {case.id: case for case in data.cases}
    return {
        "hoster": data.hoster.legal_name,
        "cases": len(data.cases),
        "check_resolution_hours": check_resolution_hours(data),
        "clocks": {clock.value: asdict(takedown_figures(times, clock)) for clock in Clock},
        "per_case": [{
            "case_id": t.case_id,
            "external_id": by_case[t.case_id].external_id,
            "state": by_case[t.case_id].state,
            "reported_at": t.reported_at,
            "first_notice_at": t.first_notice_at,
            "order_issued_at": t.order_issued_at,
            "removed_after": t.removed_after,
            "removed_at": t.removed_at,
            "last_checked_at": t.last_checked_at,
            "reappearances": t.reappearances,
            "durations": {clock.value: _duration(t, clock) for clock in Clock},
        } for t in times],
        "deadlines": {
            "counts": deadline_counts(counted),
            "judgements": [_judged(item) for item in counted],
        },
    }


def _duration(case: CaseTimes, clock: Clock) -> dict[str, Any] | None:
    found = duration(case, clock)
    return asdict(found) if found is not None else None


def _judged(item: Judged) -> dict[str, Any]:
    j = item.judgement
    return {"case_id": item.case_id, "subject": item.subject, "regime": j.regime.value,
            "start": j.start, "deadline_at": item.stated, "due_at": j.deadline,
            "capped": item.stated is not None and item.stated > j.deadline,
            "outcome": j.outcome.value,
            "decisive_check_at_start": j.at_start,
            "last_decisive_check_before": j.last_before,
            "first_decisive_check_after": j.first_after}
