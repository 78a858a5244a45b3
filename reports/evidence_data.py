"""Evidence packs, part one (collect): read one hoster's cases from the store and
work out what they show, into plain values.

`read_evidence()` reads the cases whose hoster of record is one hoster
(``cases.attribution_id`` -> ``attributions.hoster_id``), with every check,
attribution, notice and order of those cases and the check hash chain's head,
in one read, into an `EvidenceData`. Checks newer than the chain head read at
the start are left out, so a crawl running meanwhile cannot make the pack
disagree with its own ``chain_head``.

`findings()` then works out, once, everything the pack states about those
rows: every deadline judgement (`judgements()`), the cases' times and
durations on each clock, the time-to-removal figures, the check resolution,
the PDQ counts, and where each case's server stood against where its hoster
is established (`locations()`), into a `Findings`. Both are pure values: nothing here
knows a file, a column or a sentence of the pack.

Why the split: the pack's data flows one way. This module reads and computes
and imports neither of the others; `reports.evidence_docs` renders the pack's
files from an `EvidenceData` and its `Findings` (and never calls back here
for a computation); `reports.evidence` builds the pack from those renderings
and writes it.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from kernel.deadlines import Judgement, Outcome, Regime, judge
from kernel.errors import ReportError
from kernel.model import RunHealth, Verdict
from kernel.state import Debounce, counts
from reports.location import LocationFlag, location_flag, server_location_of
from reports.perceptual import PdqCounts, PdqRule, pdq_counts
from reports.takedown import (
    CaseTimes,
    Clock,
    Duration,
    TakedownFigures,
    durations,
    takedown_figures,
)
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
    "Audience",
    "CaseLocation",
    "EvidenceData",
    "EvidenceError",
    "Findings",
    "Judged",
    "case_times",
    "check_resolution_hours",
    "deadline_counts",
    "find_hoster",
    "findings",
    "judgements",
    "locations",
    "read_evidence",
]

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


# ---------------------------------------------------------------- findings


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


@dataclass(frozen=True)
class CaseLocation:
    """Where a case's server stood and where its hoster is established, from
    its attribution of record (frozen with that check), and whether the two
    disagree (`reports.location.location_flag`)."""

    server_country: str | None
    server_country_source: str | None  # "geoip" / "rdap" / None
    geoip_built_at: datetime | None  # the geolocation database's build time (geoip only)
    hoster_country: str | None  # the hoster of record's country of establishment
    flag: LocationFlag | None


def locations(data: EvidenceData) -> dict[int, CaseLocation]:
    """Case id -> `CaseLocation` of its attribution of record (all None when
    that attribution is not in the pack)."""
    by_id = {a.id: a for a in data.attributions}
    found: dict[int, CaseLocation] = {}
    for case in data.cases:
        a = by_id.get(case.attribution_id or -1)
        if a is None:
            found[case.id] = CaseLocation(None, None, None, None, None)
            continue
        # A CDN edge's country is no server location (attributions.csv keeps it).
        country = server_location_of(a.cdn, a.server_country)
        found[case.id] = CaseLocation(
            server_country=country,
            server_country_source=a.server_country_source if country else None,
            geoip_built_at=a.geoip_built_at if country else None,
            hoster_country=a.hoster_country, flag=location_flag(a.jurisdiction, country))
    return found


@dataclass(frozen=True)
class Findings:
    """What an `EvidenceData` shows, worked out once (by `findings()`) for every
    file of the pack that states it."""

    per_notice: dict[int, Judgement]  # every notice, by id, judged against its due_at
    per_order: dict[int, Judgement]  # every order with a regime, by id
    counted: list[Judged]  # each case's first notice, and each order with a regime
    deadline_counts: dict[str, dict[str, int]]  # of ``counted``: regime -> outcome -> n
    case_times: list[CaseTimes]  # in the order of ``data.cases``
    durations: dict[int, dict[Clock, Duration | None]]  # case id -> clock -> duration
    takedown: dict[Clock, TakedownFigures]  # the time-to-removal figures per clock
    check_resolution_hours: float | None
    pdq: PdqCounts  # the cases that could be matched by picture, and the checks that were
    # case id -> where its server stood, where its hoster is established, the flag
    locations: dict[int, CaseLocation] = field(default_factory=dict)


def findings(data: EvidenceData) -> Findings:
    """Everything the pack states about ``data`` (pure)."""
    per_notice, per_order, counted = judgements(data)
    times = case_times(data)
    return Findings(
        per_notice=per_notice, per_order=per_order, counted=counted,
        deadline_counts=deadline_counts(counted), case_times=times,
        durations={t.case_id: durations(t) for t in times},
        takedown={clock: takedown_figures(times, clock) for clock in Clock},
        check_resolution_hours=check_resolution_hours(data),
        pdq=pdq_counts((case.ref_pdq_source for case in data.cases),
                       (check.verdict for check in data.checks)),
        locations=locations(data))
