"""The hoster-problem report: figures per hoster of record, Dutch-hosted apart
from foreign (DESIGN.md, "Reports").

Every count is aggregated in SQL; the durations come as one (duration,
removed) row per measured case, summed per group in arrays (numpy, no Python
object per case), and Python fits the Kaplan–Meier curves on those sums
(number of cases per distinct duration) and arranges the result. A case
belongs to the hoster of its *attribution of record* (``cases.attribution_id``:
the newest attributed check that reached an address); its section follows that
attribution:

- ``dutch``: the hoster of record is established in the Netherlands;
- ``eu`` / ``non_eu``: another member state / outside the EU, by the hoster's
  country;
- ``cdn``: the case is served through a CDN: the CDN is an intermediary and the
  origin hoster is unknown, so these cases are neither Dutch nor foreign;
- ``unattributed``: no attribution yet, or the hoster's country is unknown.

Beside that establishment split, the report splits the same cases by where
the *server* stood (#14): the ``server_country`` of the attribution of record
(from the geolocation database, else the RDAP network's country):
``server_nl``, ``server_abroad`` and ``server_unknown`` (no attribution, or no
country known). The cross table (``HosterReport.cross``) holds the cases where
the two meanings of "Dutch-hosted" part: NL servers of hosters established
abroad, and servers abroad of hosters established in NL. Per hoster,
``HosterLine.server_countries`` counts its cases per server country. The
server country is one more column of the SQL grouping, so every figure comes
from the same grouped queries.

Times are compared to the second. The report's own definitions are in
``METHOD`` (printed in every format).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from kernel.deadlines import Outcome, Regime
from kernel.defang import defang
from kernel.model import CaseState, PdqSource, RunHealth, Verdict, VerdictGroup
from kernel.state import Debounce
from reports.location import server_location_of
from reports.perceptual import PdqCounts, PdqRule, counts_text, rule_text
from reports.takedown import DEFAULT_CONFIDENCE, Clock, TakedownFigures, figures_from_arrays
from store.checks import held_run_ids
from store.models import Attribution, Case, Check, CrawlRun, Hoster, Notice, Order

__all__ = [
    "CROSS",
    "FOREIGN",
    "METHOD",
    "SERVER_TOTALS",
    "GroupFigures",
    "HosterLine",
    "HosterReport",
    "OnlineCase",
    "ReportQuery",
    "Section",
    "hoster_report",
]


class Section(StrEnum):
    DUTCH = "dutch"
    EU = "eu"
    NON_EU = "non_eu"
    CDN = "cdn"
    UNATTRIBUTED = "unattributed"

    @property
    def heading(self) -> str:
        return _TITLES[self]


_TITLES = {
    Section.DUTCH: "Dutch-hosted (hoster established in NL)",
    Section.EU: "Foreign: other EU member states",
    Section.NON_EU: "Foreign: outside the EU",
    Section.CDN: "CDN-fronted (origin hoster unknown)",
    Section.UNATTRIBUTED: "Unattributed (hoster or its country unknown)",
}
FOREIGN = (Section.EU, Section.NON_EU)
# The server-location split (#14): where the server of the attribution of
# record stood, whoever is established where.
SERVER_TOTALS = ("server_nl", "server_abroad", "server_unknown")
# The cross table: where the two meanings of "Dutch-hosted" part.
CROSS = {"server_nl_hoster_foreign": "NL server, hoster established abroad",
         "server_abroad_hoster_dutch": "Server abroad, hoster established in NL"}

SERVED = tuple(v.value for v in Verdict if v.group is VerdictGroup.SERVED)
GONE = tuple(v.value for v in Verdict if v.group is VerdictGroup.GONE)
OPEN_STATES = (CaseState.ONLINE.value, CaseState.PENDING_REMOVAL.value,
               CaseState.REAPPEARED.value)
# Removal-time distribution buckets: (label, upper bound in hours).
HISTOGRAM = (("< 1 h", 1.0), ("1–6 h", 6.0), ("6–12 h", 12.0), ("12–24 h", 24.0),
             ("1–3 d", 72.0), ("3–7 d", 168.0), ("7–30 d", 720.0), ("> 30 d", float("inf")))

METHOD: dict[str, str] = {
    "checks": "Each reported URL is re-checked over HTTP (nightly, plus checks at the "
              "deadline of every open removal order). The response body is hashed in "
              "memory and dropped; no material is stored. A check ends in one verdict: "
              "served (online; or reencoded: the same picture in other bytes, see "
              "perceptual), gone (404/410, 451, a 'removed' placeholder, a redirect "
              "away, the name no longer exists, or content that no longer matches the "
              "reported file) or transient (time-outs, 5xx, refused...), which says "
              "nothing about the material. Checks imported from the hotline's own log "
              "(import-checks) count like any other.",
    "removal": "",  # removal_text(): the debounce rule in use
    "clocks": "Hours to removal are counted from the clock named in `clock`: the report "
             "(when the hotline learned of it), the first notice to the hoster, or the "
             "first removal order. A case whose removal was already seen before its "
             "clock started has no duration on that clock (counted in the case totals "
             "only).",
    "survival": "Median and 90th percentile hours to removal are Kaplan–Meier estimates: "
                "cases still online count as right-censored at their last check (followed "
                "that long, not yet removed). A median is empty (not reached) when fewer "
                "than half of the cases were seen removed within the follow-up. 95 % "
                "confidence intervals use the exponential Greenwood formula; a bound the "
                "data do not give is open (null in JSON, empty in CSV, 'open' in text), "
                "e.g. when the confidence band reaches the level only where the curve "
                "reaches 0 (every case followed was removed): one removed case has a "
                "median with two open bounds, not a zero-width interval. The share "
                "removed within 24 h is 1 - S(24 h) from the same curve.",
    "deadlines": "Deadlines: the 24-hour notice norm (from the first notice), ATKM removal "
                 "orders (the order's own deadline, at most 12 h: a later deadline_at is "
                 "judged at 12 h) and terrorist-content orders (1 h). A deadline not yet "
                 "passed when the report was generated is pending, whatever the checks "
                 "found so far. Once passed, it is already_gone when the last decisive "
                 "check at or before the notice or order found the material gone and no "
                 "check from then to the deadline found it served (nothing was left to "
                 "remove: not compliance); met when the last decisive check at or before "
                 "the deadline found the material gone; breached when the first decisive "
                 "check after it found the material served (and none before it found it "
                 "gone); undecided when the checks do not bracket it. Decisive checks are "
                 "served or gone; at one instant, served outweighs gone. Checks are "
                 "scheduled at each open order's deadline and just after it, so order "
                 "breaches can be shown; the notice norm relies on the nightly checks.",
    "attribution": "The hoster of record is the company that held the address of the "
                   "newest check that reached an address: from the hostwatch registry "
                   "(ASN and organisation matches), else the RDAP registrant, else the AS "
                   "name. 'Dutch-hosted' (the sections and the dutch/foreign totals) means "
                   "the hoster of record is established in the Netherlands, whatever "
                   "country its address block is registered in or its server stands in. "
                   "Each attribution records the source of every field.",
    "server_location": "'Dutch-hosted' has two meanings, and the report gives both. "
                       "Establishment (totals dutch / foreign, the sections): where the "
                       "hoster of record is established, from the hostwatch registry, else "
                       "the RDAP registrant's country, else the country of its autonomous "
                       "system (the AS names file). This is the split comparable with "
                       "ATKM's reach: ATKM can order hosting providers established in the "
                       "Netherlands, and DSA supervision follows establishment, so a Dutch "
                       "company's servers abroad count as Dutch. Server location (totals "
                       "server_nl / server_abroad / server_unknown, and per hoster the "
                       "countries its cases were served from): the country where the "
                       "address of the check of record is located (unknown for a CDN-fronted "
                       "case: the edge that answered says where the CDN answers, not where "
                       "the material is hosted), from an IP geolocation database in "
                       "the MaxMind DB format (HOSTWATCH_GEOIP_DB: GeoLite2-Country, DB-IP "
                       "Lite or IPinfo Lite; source 'geoip', with the database's build "
                       "date); without a database, or for an address the database does not "
                       "know, the country the RDAP network object itself states (source "
                       "'rdap': where the block is registered, usually but not always where "
                       "it is used; never the holder's postal address); "
                       "never a guess: without either, or before an attribution recorded "
                       "it, the location is unknown. It is frozen per check: a later "
                       "database does not rewrite old checks. This is the split comparable "
                       "with hotline statistics (IWF, INHOPE, Offlimits), which count a URL "
                       "as hosted in the Netherlands when its server stands there: a "
                       "foreign company's Amsterdam data centre counts as NL. The cross "
                       "table shows the cases where the two meanings part: NL servers of "
                       "hosters established abroad (in hotline statistics, not in ATKM's "
                       "reach) and servers abroad of hosters established in NL (in ATKM's "
                       "reach, not in hotline statistics).",
    "cdn": "CDN-fronted cases are grouped apart: a CDN edge address says where the CDN "
           "answers, not where the material is hosted, so these cases count neither as "
           "Dutch nor as foreign. The CDN is named as the intermediary.",
    "definitions": "cases: reported URLs in the period (by report time); online: checked "
                   "and not (yet) confirmed removed (online, pending removal or "
                   "reappeared); removed: removal confirmed; unchecked: never checked; "
                   "oldest_open_days: age of the oldest case not confirmed removed; "
                   "notices, orders: notices sent and removal orders issued for the cases; "
                   "still online: per hoster, its cases not confirmed removed, oldest "
                   "report first (days online: since the report), URLs defanged (hxxp, "
                   "[.]) so that none is a link.",
}


def removal_text(debounce: Debounce) -> str:
    """When a case counts as removed, with the rule's settings."""
    return (f"A case counts as removed after {debounce.confirmations} consecutive gone "
            f"checks spanning at least {debounce.min_hours:g} h (transient checks neither "
            f"count nor break the run), or after {debounce.transient_days:g} days of nothing "
            "but failed checks (the settings in use: see settings). The removal lies between "
            "the last check that found the material served (the report, if none did) and "
            "the first gone check of the confirmed run; its point estimate is the middle of "
            "that interval, so figures are accurate to about half the check gap (see "
            "check_resolution). Material served again after a removal counts as a "
            "reappearance and its clock restarts.")


METHOD["removal"] = removal_text(Debounce())


def settings_text(debounce: Debounce, recheck_hours: float | None,
                  resolution_hours: float | None) -> str:
    """The removal rule and check interval the data was produced with, in words."""
    interval = ("not stated" if recheck_hours is None
                else f"a case is re-checked when its last check is {recheck_hours:g} h old")
    measured = ("not measured (no removal yet)" if resolution_hours is None
                else f"{resolution_hours:.1f} h")
    return (f"Settings of this report: a removal is confirmed by {debounce.confirmations} "
            f"consecutive gone checks spanning at least {debounce.min_hours:g} h "
            f"(HOSTWATCH_REMOVAL_CONFIRMATIONS, HOSTWATCH_REMOVAL_MIN_HOURS), or by "
            f"{debounce.transient_days:g} days of nothing but failed (transient) checks "
            f"(HOSTWATCH_TRANSIENT_DAYS); check interval: {interval} "
            f"(HOSTWATCH_RECHECK_HOURS); check resolution measured in these cases (median "
            f"gap between the last served and the first gone check of a removal): "
            f"{measured}. These are the settings in use when the report was made; data "
            f"crawled under other settings keeps the states derived then.")


@dataclass(frozen=True)
class ReportQuery:
    """Which cases: reported in [since, until), of one category, of one hoster."""

    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    hoster_key: str | None = None
    clock: Clock = Clock.REPORT
    confidence: float = DEFAULT_CONFIDENCE
    pdq: PdqRule = PdqRule()  # the perceptual-matching settings the method states
    # The removal rule and check interval in use (Config.debounce(),
    # recheck_hours): the method states them, not the defaults.
    debounce: Debounce = Debounce()
    recheck_hours: float | None = None
    # Cases still online listed per hoster (oldest first); the rest are counted.
    still_online_limit: int = 10


@dataclass(frozen=True)
class GroupFigures:
    cases: int
    online: int
    removed: int
    unchecked: int
    reappearances: int
    oldest_open_days: float | None
    takedown: TakedownFigures
    deadlines: dict[str, dict[str, int]]  # regime -> outcome -> cases
    # Perceptual matching (#12): cases with a reference PDQ, and checks that
    # found the same picture in other bytes.
    pdq: PdqCounts = PdqCounts()
    notices: int = 0  # notices sent for these cases
    orders: int = 0  # removal orders issued for these cases

    @property
    def breaches(self) -> dict[str, int]:
        return {regime: outcomes.get(Outcome.BREACHED.value, 0)
                for regime, outcomes in self.deadlines.items()}


@dataclass(frozen=True)
class OnlineCase:
    """One case still online, as the hoster's list shows it: never a link."""

    case_id: int  # the store's id: analyst_cases.case_id, what `case_history` takes
    source: str  # who reported it ...
    case: str  # ... and under which id (the external id; unique only per source)
    url: str  # defanged (kernel.defang)
    reported_at: datetime
    days_online: float  # since the report
    last_checked_at: datetime | None


@dataclass(frozen=True)
class HosterLine:
    key: str | None  # the hosters row's key; None when the hoster is not known
    hoster: str
    section: Section
    country: str | None
    asns: list[int]
    dsa_role: str | None
    abuse: str | None
    figures: GroupFigures
    # Where its cases were served from (#14): server country -> cases, most
    # cases first; cases whose server location is unknown are not in it.
    server_countries: dict[str, int] = field(default_factory=dict)
    # Its oldest cases still online (at most ReportQuery.still_online_limit);
    # the others are counted in still_online_more.
    still_online: list[OnlineCase] = field(default_factory=list)

    @property
    def still_online_more(self) -> int:
        """Cases still online beyond the list."""
        return max(0, self.figures.online - len(self.still_online))

    @property
    def server_unknown(self) -> int:
        """Cases whose server location is not known."""
        return self.figures.cases - sum(self.server_countries.values())

    @property
    def dutch(self) -> bool:
        return self.section is Section.DUTCH


@dataclass(frozen=True)
class HosterReport:
    generated_at: datetime
    query: ReportQuery
    hosters: list[HosterLine]
    # dutch, foreign, foreign_eu, foreign_non_eu (subtotals of foreign), cdn,
    # unattributed, all (establishment), then server_nl, server_abroad,
    # server_unknown (server location)
    totals: dict[str, GroupFigures]
    check_resolution_hours: float | None  # median check gap around removals
    over_time: list[tuple[str, str, int, int]]  # (month, dutch|foreign, cases, removed)
    histogram: list[tuple[str, int, int]]  # (bucket, dutch, foreign) removed cases
    method: dict[str, str] = field(default_factory=lambda: dict(METHOD))
    # Runs judged suspect that checked the report's cases: (id, started, reason).
    suspect_runs: list[tuple[int, datetime, str | None]] = field(default_factory=list)
    # Where the two meanings of "Dutch-hosted" part (keys of ``CROSS``).
    cross: dict[str, GroupFigures] = field(default_factory=dict)
    # The histogram's removed cases by where the server stood (#14):
    # (bucket, server_nl, server_abroad).
    server_histogram: list[tuple[str, int, int]] = field(default_factory=list)

    def section(self, section: Section) -> list[HosterLine]:
        return [line for line in self.hosters if line.section is section]


# ---------------------------------------------------------------- SQL pieces


def _epoch(column: Any, dialect: str) -> ColumnElement[int]:
    """Whole seconds since 1970 of a UTC timestamp column."""
    if dialect == "sqlite":
        seconds = (func.julianday(column) - 2440587.5) * 86400.0
    else:
        seconds = func.extract("epoch", column)
    return cast(func.round(seconds), BigInteger)


def _month(column: Any, dialect: str) -> ColumnElement[str]:
    if dialect == "sqlite":
        return func.strftime("%Y-%m", column)
    return func.to_char(column, "YYYY-MM")


def _section() -> ColumnElement[str]:
    return case(
        (Attribution.id.is_(None), Section.UNATTRIBUTED.value),
        (Attribution.cdn.is_not(None), Section.CDN.value),
        (Attribution.dutch.is_(True), Section.DUTCH.value),
        (Attribution.jurisdiction == "EU", Section.EU.value),
        (Attribution.jurisdiction == "non-EU", Section.NON_EU.value),
        else_=Section.UNATTRIBUTED.value)


def _nonneg(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((value > 0, value), else_=0)


class _Sql:
    """The report's queries over one filtered set of cases."""

    def __init__(self, session: Session, query: ReportQuery) -> None:
        self.session = session
        self.query = query
        self.dialect = session.get_bind().dialect.name
        self.section = _section().label("section")
        # A CDN-fronted case is grouped under its CDN (the origin hoster is
        # unknown); a hoster not in the hosters table under its frozen name.
        # The server's country and where it was read (#14) close the key: the
        # server split, the cross table, each hoster's countries and the
        # method's count of sources are sums of groups.
        self.key = [Attribution.hoster_id,
                    case((Attribution.cdn.is_not(None), Attribution.cdn),
                         (Attribution.hoster_id.is_(None), Attribution.hoster)).label("name"),
                    self.section,
                    Attribution.server_country.label("server_country"),
                    Attribution.server_country_source.label("server_source")]

    def cases(self, *columns: Any) -> Any:
        """SELECT columns FROM the filtered cases and their attribution of record."""
        q = self.query
        stmt = (select(*columns).select_from(Case)
                .outerjoin(Attribution, Attribution.id == Case.attribution_id))
        if q.since is not None:
            stmt = stmt.where(Case.reported_at >= q.since)
        if q.until is not None:
            stmt = stmt.where(Case.reported_at < q.until)
        if q.category is not None:
            stmt = stmt.where(Case.category == q.category)
        if q.hoster_key is not None:
            stmt = stmt.join(Hoster, Hoster.id == Attribution.hoster_id).where(
                Hoster.key == q.hoster_key)
        return stmt

    def counts(self) -> list[Any]:
        removed = Case.removed_at.is_not(None)
        open_ = Case.state != CaseState.REMOVED.value
        stmt = self.cases(
            *self.key,
            func.count().label("cases"),
            func.sum(case((Case.state.in_(OPEN_STATES), 1), else_=0)).label("online"),
            func.sum(case((removed, 1), else_=0)).label("removed"),
            func.sum(case((Case.state == CaseState.UNCHECKED.value, 1), else_=0))
            .label("unchecked"),
            func.sum(Case.reappearances).label("reappearances"),
            func.min(case((open_, _epoch(Case.reported_at, self.dialect)))).label("oldest"),
            func.min(Attribution.geoip_built_at).label("geoip_first"),
            func.max(Attribution.geoip_built_at).label("geoip_last"),
            # The perceptual-matching counts (#12) from the same pass.
            func.sum(case((Case.ref_pdq_source == PdqSource.REPORT.value, 1), else_=0))
            .label("pdq_report"),
            func.sum(case((Case.ref_pdq_source == PdqSource.LEARNED.value, 1), else_=0))
            .label("pdq_learned"),
        ).group_by(*self.key)
        return list(self.session.execute(stmt))

    def orders(self) -> list[Any]:
        """(key..., removal orders issued) rows (notices: ``deadlines``)."""
        stmt = (self.cases(*self.key, func.count().label("n"))
                .join(Order, Order.case_id == Case.id).group_by(*self.key))
        return list(self.session.execute(stmt))

    def still_online(self, limit: int) -> list[Any]:
        """(hoster_id, name, section, case id, source, external id, url, reported,
        last check):
        each hoster's ``limit`` oldest cases still online - one bounded query."""
        if limit <= 0:
            return []
        rank = func.row_number().over(partition_by=self.key[:3],
                                      order_by=(Case.reported_at, Case.id)).label("rank")
        # Ranked on narrow rows (no URL in the sort); the listed cases' own
        # columns are read afterwards, for the few that are listed.
        ranked = (self.cases(*self.key[:3], Case.id.label("case_id"), rank)
                  .where(Case.state.in_(OPEN_STATES)).subquery("ranked"))
        listed = aliased(Case, name="listed")
        stmt = (select(*(c for c in ranked.c if c.name not in ("case_id", "rank")),
                       listed.id, listed.source, listed.external_id, listed.url,
                       listed.reported_at, listed.last_checked_at)
                .join(listed, listed.id == ranked.c.case_id)
                .where(ranked.c.rank <= limit).order_by(ranked.c.rank))
        return list(self.session.execute(stmt))

    def reencoded(self) -> list[Any]:
        """(key..., checks whose verdict is reencoded) rows."""
        stmt = (self.cases(*self.key, func.count().label("n"))
                .join(Check, Check.case_id == Case.id)
                .where(Check.verdict == Verdict.REENCODED.value).group_by(*self.key))
        return list(self.session.execute(stmt))

    def _clock_start(self) -> tuple[Any, Any]:
        """(start column, the join it needs) of the report's clock."""
        clock = self.query.clock
        if clock is Clock.REPORT:
            return Case.reported_at, None
        if clock is Clock.NOTICE:
            first = (select(Notice.case_id, func.min(Notice.sent_at).label("start"))
                     .group_by(Notice.case_id).subquery())
        else:
            first = (select(Order.case_id, func.min(Order.issued_at).label("start"))
                     .group_by(Order.case_id).subquery())
        return first.c.start, first

    def durations(self) -> list[Any]:
        """(key..., twice the point estimate in seconds, removed) rows, one per
        measured case (not grouped: nearly every case has a duration of its own,
        so grouping would only sort them; ``_Durations`` sums them).

        The same arithmetic as ``reports.takedown.duration`` (to the second):
        removed cases lie in (removed_after, removed_at] from the clock's start,
        the lower bound clamped at 0, none when the removal came first;
        others are censored at their last check (or the report).
        """
        start_col, join = self._clock_start()
        start = _epoch(start_col, self.dialect)
        # An unknown last sighting (None) clamps to the clock's start, as a
        # start inside the interval does.
        after = _epoch(func.coalesce(Case.removed_after, start_col), self.dialect)
        at = _epoch(Case.removed_at, self.dialect)
        last = _epoch(func.coalesce(Case.last_checked_at, Case.reported_at), self.dialect)
        removed = Case.removed_at.is_not(None)
        twice = case(
            (removed, _nonneg(after - start) + (at - start)),
            else_=2 * _nonneg(last - start)).label("twice")
        event = case((removed, 1), else_=0).label("event")
        stmt = self.cases(*self.key, twice, event)
        if join is not None:
            stmt = stmt.join(join, join.c.case_id == Case.id)
        stmt = stmt.where(or_(~removed, at > start))
        return list(self.session.execute(stmt))

    def deadlines(self, now: datetime) -> list[Any]:
        """(key..., regime, outcome, cases, notices): every case's deadline
        judgements at ``now``, and the notices sent (all of a case's notices
        counted on its notice_24h row: no second pass over the notices).

        The first notice's deadline (notice_24h) and every order's with a
        regime: a second order is a deadline of its own. Same rule as
        ``kernel.deadlines.judge`` (tests/reports/test_hoster_sql.py).
        """
        due = union_all(
            select(Notice.case_id.label("case_id"),
                   literal(Regime.NOTICE_24H.value, String).label("regime"),
                   func.min(Notice.sent_at).label("start"),
                   func.min(Notice.due_at).label("due"),
                   func.count().label("sent"))
            .group_by(Notice.case_id),
            select(Order.case_id, Order.regime, Order.issued_at, Order.due_at, literal(0))
            .where(Order.regime.is_not(None)),
        ).subquery("due")
        decisive = (*SERVED, *GONE)
        # A suspect or unjudged run's gone checks do not count (kernel.state.counts).
        held = sorted(held_run_ids(self.session))
        counted = (Check.verdict.in_(decisive) if not held else
                   Check.verdict.in_(SERVED) | (Check.verdict.in_(GONE)
                                                & (Check.run_id.is_(None)
                                                   | Check.run_id.not_in(held))))
        # At one instant a served check outweighs a gone one (judge()'s rule).
        served_first = case((Check.verdict.in_(SERVED), 0), else_=1)

        # The group of the nearest decisive check, "s" (served) or "g" (gone).
        group = case((Check.verdict.in_(SERVED), "s"), else_="g")

        def nearest(bound: Any, before: bool) -> Any:
            side = Check.checked_at <= bound if before else Check.checked_at > bound
            order = ((Check.checked_at.desc(), served_first, Check.id.desc()) if before
                     else (Check.checked_at.asc(), served_first, Check.id.asc()))
            return (select(group)
                    .where(Check.case_id == due.c.case_id, side, counted)
                    .order_by(*order).limit(1).scalar_subquery())

        served_since_start = (
            select(Check.id).where(Check.case_id == due.c.case_id,
                                   Check.checked_at > due.c.start,
                                   Check.checked_at <= due.c.due,
                                   Check.verdict.in_(SERVED))
            .exists())
        # One CASE, each subquery written once and run only when the
        # outcome depends on it (a CASE stops at its first true branch):
        # about two look-ups per deadline instead of every one of them.
        outcome = case(
            (due.c.due > literal(now, Case.reported_at.type), Outcome.PENDING.value),
            else_=case(
                {"g": case((and_(nearest(due.c.start, True) == "g", ~served_since_start),
                            Outcome.ALREADY_GONE.value),
                           else_=Outcome.MET.value)},
                value=nearest(due.c.due, True),
                else_=case((nearest(due.c.due, False) == "s", Outcome.BREACHED.value),
                           else_=Outcome.UNDECIDED.value))).label("outcome")
        # Materialized: the outcome is judged once per deadline, not again
        # for the GROUP BY (a flattened subquery would repeat every look-up).
        judged = (select(due.c.case_id, due.c.regime, outcome, due.c.sent)
                  .cte("judged").prefix_with("MATERIALIZED"))
        stmt = (self.cases(*self.key, judged.c.regime, judged.c.outcome,
                           func.count().label("n"), func.sum(judged.c.sent).label("notices"))
                .join(judged, judged.c.case_id == Case.id)
                .group_by(*self.key, judged.c.regime, judged.c.outcome))
        return list(self.session.execute(stmt))

    def over_time(self) -> list[tuple[str, str, int, int]]:
        month = _month(Case.reported_at, self.dialect).label("month")
        stmt = self.cases(month, self.section, func.count(),
                          func.sum(case((Case.removed_at.is_not(None), 1), else_=0))
                          ).group_by(month, self.section).order_by(month)
        rows: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for month_, section, cases, removed in self.session.execute(stmt):
            group = _total_group(Section(section))
            if group in ("dutch", "foreign"):
                rows[(month_, group)][0] += cases
                rows[(month_, group)][1] += removed or 0
        return [(m, g, c, r) for (m, g), (c, r) in sorted(rows.items())]

    def suspect_runs(self) -> list[tuple[int, datetime, str | None]]:
        """Suspect runs that checked any of the selected cases (a few runs:
        one indexed look-up each)."""
        runs = self.session.execute(
            select(CrawlRun.id, CrawlRun.started_at, CrawlRun.health_reason)
            .where(CrawlRun.health == RunHealth.SUSPECT.value).order_by(CrawlRun.id)).all()
        return [(run_id, started, reason) for run_id, started, reason in runs
                if self.session.execute(self.cases(literal(1))
                                        .join(Check, Check.case_id == Case.id)
                                        .where(Check.run_id == run_id).limit(1)).first()]

    def check_gaps(self) -> list[tuple[float, int]]:
        """(hours between last served and first gone check, cases) of removals."""
        gap = _epoch(Case.removed_at, self.dialect) - _epoch(Case.removed_after, self.dialect)
        tenths = ((gap + 180) // 360).label("tenths")  # tenths of an hour, rounded
        stmt = self.cases(tenths, func.count()).where(Case.removed_at.is_not(None)
                                                       ).group_by(tenths)
        return [(int(t) / 10.0, n) for t, n in self.session.execute(stmt) if t is not None]


def _total_group(section: Section) -> str:
    if section is Section.DUTCH:
        return "dutch"
    if section in FOREIGN:
        return "foreign"
    return section.value


def _server_group(country: str | None) -> str:
    if country is None:
        return "server_unknown"
    return "server_nl" if country == "NL" else "server_abroad"


def _cross_group(section: Section, server: str) -> str | None:
    """The cross table's row of a group, if it has one."""
    if server == "server_nl" and section in FOREIGN:
        return "server_nl_hoster_foreign"
    if server == "server_abroad" and section is Section.DUTCH:
        return "server_abroad_hoster_dutch"
    return None


# ---------------------------------------------------------------- assembling


@dataclass
class _Acc:
    """One group's aggregated rows, before the figures are fitted."""

    cases: int = 0
    online: int = 0
    removed: int = 0
    unchecked: int = 0
    reappearances: int = 0
    oldest: int | None = None  # epoch seconds of the oldest open report
    # Its rows of the report's duration arrays (_Durations), as index arrays.
    durations: list[np.ndarray] = field(default_factory=list)
    deadlines: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    pdq_report: int = 0
    pdq_learned: int = 0
    reencoded: int = 0
    notices: int = 0
    orders: int = 0

    def add(self, other: _Acc) -> None:
        self.cases += other.cases
        self.notices += other.notices
        self.orders += other.orders
        self.pdq_report += other.pdq_report
        self.pdq_learned += other.pdq_learned
        self.reencoded += other.reencoded
        self.online += other.online
        self.removed += other.removed
        self.unchecked += other.unchecked
        self.reappearances += other.reappearances
        if other.oldest is not None:
            self.oldest = other.oldest if self.oldest is None else min(self.oldest, other.oldest)
        self.durations += other.durations
        for regime, outcomes in other.deadlines.items():
            for outcome, n in outcomes.items():
                self.deadlines[regime][outcome] += n

    def figures(self, query: ReportQuery, now: datetime, durations: _Durations
                ) -> GroupFigures:
        hours, observed, counts = durations.summed(self.durations)
        takedown = figures_from_arrays(
            query.clock, cases=self.cases, removed=self.removed,
            reappearances=self.reappearances, confidence=query.confidence,
            hours=hours, observed=observed, counts=counts)
        oldest = (None if self.oldest is None
                  else max(0.0, (now.timestamp() - self.oldest) / 86400.0))
        return GroupFigures(
            cases=self.cases, online=self.online, removed=self.removed,
            unchecked=self.unchecked, reappearances=self.reappearances,
            oldest_open_days=oldest, takedown=takedown,
            pdq=PdqCounts(self.cases, self.pdq_report, self.pdq_learned, self.reencoded),
            notices=self.notices, orders=self.orders,
            deadlines={regime.value: {outcome.value: self.deadlines.get(regime.value, {})
                                      .get(outcome.value, 0) for outcome in Outcome}
                       for regime in Regime})


@dataclass(frozen=True)
class _Durations:
    """The duration rows of ``_Sql.durations`` as arrays: twice the point
    estimate in seconds, removed or not, number of cases (1 a row). A group
    holds the indices of its rows (``_Acc.durations``)."""

    twice: np.ndarray  # int64
    event: np.ndarray  # bool
    n: np.ndarray  # int64

    @classmethod
    def of(cls, rows: Sequence[Sequence[Any]]) -> tuple[_Durations, dict[tuple[Any, ...],
                                                                       np.ndarray]]:
        """The arrays of (key..., twice, event) rows, and each key's row indices."""
        if not rows:
            empty = np.zeros(0, dtype=np.int64)
            return cls(empty, empty.astype(bool), empty), {}
        columns = list(zip(*rows, strict=True))
        ids: dict[tuple[Any, ...], int] = {}
        keys = zip(*columns[:-2], strict=True)
        group = np.fromiter((ids.setdefault(key, len(ids)) for key in keys),
                            dtype=np.int64, count=len(rows))
        order = np.argsort(group, kind="stable")
        bounds = np.cumsum(np.bincount(group, minlength=len(ids)))[:-1]
        parts = np.split(order, bounds)
        arrays = cls(np.asarray(columns[-2], dtype=np.int64),
                     np.asarray(columns[-1], dtype=np.int64) != 0,
                     np.ones(len(rows), dtype=np.int64))
        return arrays, {key: parts[i] for key, i in ids.items()}

    def summed(self, parts: Sequence[np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hours, removed, cases) per distinct (duration, removed) of the rows
        ``parts`` index, in that order: what the Kaplan–Meier fit takes."""
        index = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        # One sortable key per (twice, removed); twice is never negative.
        keys = self.twice[index] * 2 + self.event[index]
        distinct, inverse = np.unique(keys, return_inverse=True)
        counts = np.bincount(inverse.ravel(), weights=self.n[index],
                             minlength=len(distinct)).astype(np.int64)
        return (distinct // 2) / 7200.0, (distinct % 2) == 1, counts

    def removed_hours(self, parts: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(hours, cases) of the removed rows ``parts`` index."""
        index = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        index = index[self.event[index]]
        return self.twice[index] / 7200.0, self.n[index]


def _median(weighted: Sequence[tuple[float, int]]) -> float | None:
    total = sum(n for _, n in weighted)
    if not total:
        return None
    seen = 0
    for value, n in sorted(weighted):
        seen += n
        if seen * 2 >= total:
            return value
    return None  # unreachable


def _server_of(section: Section, server_country: str | None) -> str:
    """The server-location total a group counts in."""
    # A CDN edge's country is no server location (reports/location.py).
    return _server_group(server_location_of("cdn" if section is Section.CDN else None,
                                            server_country))


def _histograms(groups: dict[tuple[Any, ...], _Acc], durations: _Durations
                ) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    """Removed cases per removal-time bucket: (bucket, dutch, foreign) by
    establishment, and (bucket, server_nl, server_abroad) by server location,
    from the groups already aggregated (no query)."""
    charted = ("dutch", "foreign", "server_nl", "server_abroad")
    counts = {label: dict.fromkeys(charted, 0) for label, _ in HISTOGRAM}
    uppers = np.array([upper for _, upper in HISTOGRAM])
    for key, acc in groups.items():
        section = Section(key[2])
        targets = [group for group in (_total_group(section), _server_of(section, key[3]))
                   if group in charted]
        if not targets:
            continue
        hours, n = durations.removed_hours(acc.durations)
        # A bucket holds the hours below its upper bound, from the one before.
        buckets = np.bincount(np.searchsorted(uppers, hours, side="right"), weights=n,
                              minlength=len(HISTOGRAM))
        for (label, _), cases in zip(HISTOGRAM, buckets.tolist(), strict=False):
            for group in targets:
                counts[label][group] += int(cases)
    return ([(label, c["dutch"], c["foreign"]) for label, c in counts.items()],
            [(label, c["server_nl"], c["server_abroad"]) for label, c in counts.items()])


def hoster_report(session: Session, query: ReportQuery = ReportQuery(),
                  now: datetime | None = None) -> HosterReport:
    """Build the hoster-problem report of the cases ``query`` selects."""
    now = now or datetime.now(UTC)
    sql = _Sql(session, query)
    suspect = sql.suspect_runs()
    groups: dict[tuple[Any, ...], _Acc] = defaultdict(_Acc)
    built_at: list[datetime] = []  # the geolocation databases' build times
    for row in sql.counts():
        if Section(row[2]) is not Section.CDN:  # an edge's location is not counted
            built_at += [when for when in (row.geoip_first, row.geoip_last)
                         if when is not None]
        acc = groups[tuple(row[:5])]
        acc.cases, acc.online, acc.removed = row.cases, row.online or 0, row.removed or 0
        acc.unchecked, acc.reappearances = row.unchecked or 0, row.reappearances or 0
        acc.oldest = row.oldest
        acc.pdq_report, acc.pdq_learned = row.pdq_report or 0, row.pdq_learned or 0
    durations, rows_of = _Durations.of(sql.durations())
    for key, rows in rows_of.items():
        groups[key].durations.append(rows)
    for *key, regime, outcome, n, notices in sql.deadlines(now):
        groups[tuple(key)].deadlines[regime][outcome] += n
        groups[tuple(key)].notices += int(notices or 0)
    for *key, n in sql.reencoded():
        groups[tuple(key)].reencoded = n
    for *key, n in sql.orders():
        groups[tuple(key)].orders = n
    online: dict[tuple[Any, ...], list[OnlineCase]] = defaultdict(list)  # oldest first
    for hoster_id, name, section_value, case_id, source, external_id, url, reported, last \
            in sql.still_online(query.still_online_limit):
        reported = _utc(reported)
        online[(hoster_id, name, section_value)].append(OnlineCase(
            case_id=case_id, source=source, case=external_id, url=defang(url), reported_at=reported,
            days_online=max(0.0, (now - reported).total_seconds() / 86400.0),
            last_checked_at=None if last is None else _utc(last)))

    ids = sorted({key[0] for key in groups if key[0] is not None})
    hosters = {h.id: h for h in session.scalars(select(Hoster).where(Hoster.id.in_(ids)))} \
        if ids else {}
    cdn_names = sorted({key[1] for key in groups if key[2] == Section.CDN.value and key[1]})
    cdns = {h.legal_name: h for h in session.scalars(
        select(Hoster).where(Hoster.cdn.is_(True), Hoster.legal_name.in_(cdn_names)))} \
        if cdn_names else {}
    totals: dict[str, _Acc] = defaultdict(_Acc)
    cross: dict[str, _Acc] = defaultdict(_Acc)
    # One line per hoster: its groups (one per server country) summed.
    per_hoster: dict[tuple[Any, ...], _Acc] = defaultdict(_Acc)
    countries: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    located: dict[str | None, int] = defaultdict(int)  # source -> cases with a country
    for (hoster_id, name, section_value, server_country, source), acc in groups.items():
        section = Section(section_value)
        # A CDN edge's country is no server location (reports/location.py).
        country = server_location_of("cdn" if section is Section.CDN else None, server_country)
        server = _server_group(country)
        totals[_total_group(section)].add(acc)
        if section in FOREIGN:
            totals[f"foreign_{section.value}"].add(acc)
        totals["all"].add(acc)
        totals[server].add(acc)
        crossed = _cross_group(section, server)
        if crossed is not None:
            cross[crossed].add(acc)
        per_hoster[(hoster_id, name, section_value)].add(acc)
        if country is not None:
            countries[(hoster_id, name, section_value)][country] += acc.cases
            located[source] += acc.cases
    lines: list[HosterLine] = []
    for (hoster_id, name, section_value), acc in per_hoster.items():
        section = Section(section_value)
        row = cdns.get(name) if section is Section.CDN else hosters.get(hoster_id)
        served = countries.get((hoster_id, name, section_value), {})
        lines.append(HosterLine(
            key=row.key if row else None,
            hoster=(row.legal_name if row else name) or "unknown",
            section=section,
            country=row.country if row else None,
            asns=list(row.asns) if row else [],
            dsa_role=row.dsa_role if row else None,
            abuse=row.abuse if row else None,
            figures=acc.figures(query, now, durations),
            server_countries=dict(sorted(served.items(), key=lambda item: (-item[1],
                                                                           item[0]))),
            still_online=online.get((hoster_id, name, section_value), [])))
    order = list(Section)
    lines.sort(key=lambda line: (order.index(line.section), line.country or "~",
                                 -line.figures.cases, line.hoster.lower()))
    figures = {name: totals[name].figures(query, now, durations)
               for name in ("dutch", "foreign", "foreign_eu", "foreign_non_eu", "cdn",
                            "unattributed", "all", *SERVER_TOTALS)}
    histogram, server_histogram = _histograms(groups, durations)
    resolution = _median(sql.check_gaps())
    return HosterReport(
        generated_at=now,
        query=query,
        hosters=lines,
        totals=figures,
        check_resolution_hours=resolution,
        over_time=sql.over_time(),
        histogram=histogram,
        server_histogram=server_histogram,
        method={**METHOD, "removal": removal_text(query.debounce),
                "settings": settings_text(query.debounce, query.recheck_hours, resolution),
                "suspect_runs": _suspect_text(suspect),
                "server_location": f"{METHOD['server_location']} "
                                   f"{_located_text(located, figures, built_at)}",
                "perceptual": f"{rule_text(query.pdq)} {counts_text(figures['all'].pdq)}"},
        suspect_runs=suspect,
        cross={name: cross[name].figures(query, now, durations) for name in CROSS},
    )


def _utc(value: datetime) -> datetime:
    """A stored time as UTC (SQLite hands back naive UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _located_text(located: dict[str | None, int], figures: dict[str, GroupFigures],
                  built_at: Sequence[datetime]) -> str:
    """Where this report's server locations were read: cases per source."""
    parts = []
    geoip = located.pop("geoip", 0)
    if geoip:
        days = sorted({f"{when:%Y-%m-%d}" for when in built_at})
        built = ("" if not days else f", built {days[0]}" if len(days) == 1
                 else f", built {days[0]} to {days[-1]}")
        parts.append(f"{geoip} from the geolocation database{built}")
    rdap = located.pop("rdap", 0)
    if rdap:
        parts.append(f"{rdap} from the RDAP network's country")
    other = sum(located.values())
    if other:
        parts.append(f"{other} from an unnamed source")
    parts.append(f"{figures['server_unknown'].cases} unknown")
    return "Server locations of these cases: " + ", ".join(parts) + "."


def _suspect_text(runs: Sequence[tuple[int, datetime, str | None]]) -> str:
    rule = ("A run whose vantage point was broken (a control URL not served at its start "
            "or end, or an anomalous share of cases failing at network level at once: a "
            "dead resolver, a blocked uplink) is suspect: its checks are kept and shown, "
            "but its gone and failed checks count toward no removal, and a removal is "
            "dated by the gone checks of healthy runs only.")
    if not runs:
        return rule + " No run that checked these cases was suspect."
    named = "; ".join(f"run {run_id} of {started.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
                      f" ({reason or 'no reason recorded'})" for run_id, started, reason in runs)
    return rule + f" Suspect runs that checked these cases: {named}."

