"""Typed SQLAlchemy models. Schema changes go through Alembic (store/migrations).

Times are stored as UTC. SQLite has no time-zone type, so `UTCDateTime` keeps
naive UTC in the column and hands out aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: hostwatch stores UTC only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


# BigInteger ids on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Case(Base):
    """One reported URL."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_cases_source_external_id"),
        Index("ix_cases_due", "state", "last_counted_at"),
        Index("ix_cases_host", "host"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(Text)  # as reported
    url_normalised: Mapped[str] = mapped_column(Text)
    host: Mapped[str] = mapped_column(String(255))
    category: Mapped[str] = mapped_column(String(32))
    reported_at: Mapped[datetime]
    ref_sha256: Mapped[str | None] = mapped_column(String(64))
    ref_pdq: Mapped[str | None] = mapped_column(String(64))
    # Where ref_pdq came from: "report" (the import's pdq column) or "learned"
    # (the PDQ of the first check whose SHA-256 matched ref_sha256, that check
    # in ref_pdq_check_id); never an image, only its hash (0010).
    ref_pdq_source: Mapped[str | None] = mapped_column(String(16))
    ref_pdq_check_id: Mapped[int | None] = mapped_column(BigId)
    imported_at: Mapped[datetime]
    # Derived from the check history (kernel.state); kept here for queries.
    state: Mapped[str] = mapped_column(String(32), default="unchecked")
    last_verdict: Mapped[str | None] = mapped_column(String(32))
    last_checked_at: Mapped[datetime | None]
    last_served_at: Mapped[datetime | None]
    removed_after: Mapped[datetime | None]  # last served check before removal
    removed_at: Mapped[datetime | None]  # first gone check of the confirmed removal
    reappearances: Mapped[int] = mapped_column(Integer, default=0)
    check_count: Mapped[int] = mapped_column(Integer, default=0)
    # The newest check that counts toward the state (it reached an address,
    # and is served or from a healthy run): the scheduler's clock, so a case
    # checked only by a suspect run, or refused by the guard, stays due (0007).
    last_counted_at: Mapped[datetime | None]
    # Failing checks of suspect (or not yet judged) runs after that one: they
    # await a healthy run that confirms or clears them.
    unconfirmed_checks: Mapped[int] = mapped_column(Integer, default=0)
    # The attribution of record: that of the attributed check with the newest
    # checked_at that has an address, ties by check id (store.of_record, set by
    # enrichment and import-checks), so reports group cases by hoster without
    # reading every check.
    # (No foreign key: attributions already point at cases.)
    attribution_id: Mapped[int | None] = mapped_column(BigId, index=True)


class Notice(Base):
    """A notice sent to a hoster about a case."""

    __tablename__ = "notices"
    __table_args__ = (
        UniqueConstraint("case_id", "sent_at", "recipient", name="uq_notices_case_sent_recipient"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    sent_at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(32), default="email")
    recipient: Mapped[str] = mapped_column(String(255), default="")
    reference: Mapped[str] = mapped_column(String(255), default="")
    trusted_flagger: Mapped[bool] = mapped_column(Boolean, default=False)
    due_at: Mapped[datetime] = mapped_column(index=True)  # the 24-hour notice norm


class Order(Base):
    """A removal order (ATKM, a terrorist-content order...) about a case."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("case_id", "issuer", "reference", name="uq_orders_case_issuer_reference"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(64))
    legal_basis: Mapped[str] = mapped_column(String(255), default="")
    reference: Mapped[str] = mapped_column(String(255), default="")
    issued_at: Mapped[datetime]
    deadline_at: Mapped[datetime]  # as the order states it
    # kernel.deadlines.Regime (atkm_order / terrorist_1h), None when hostwatch
    # cannot tell; due_at = the regime's deadline (an ATKM order's own deadline,
    # at most 12 hours; 1 hour for a terrorist-content order), else deadline_at.
    regime: Mapped[str | None] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(index=True)


class CrawlRun(Base):
    """One crawl: when, how far it got, what it found, and whether its
    vantage point could be trusted (``health``, kernel.model.RunHealth;
    store.health)."""

    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="running")
    method: Mapped[str] = mapped_column(String(16), default="http")
    cases_due: Mapped[int] = mapped_column(Integer, default=0)
    checks_made: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    tool_version: Mapped[str] = mapped_column(String(32))
    pid: Mapped[int | None] = mapped_column(Integer)
    hostname: Mapped[str | None] = mapped_column(String(255))
    # pending while running; healthy / suspect once judged (0007). Runs from
    # before 0007 are healthy: they were counted as such.
    health: Mapped[str] = mapped_column(String(16), default="healthy",
                                        server_default="healthy")
    health_reason: Mapped[str | None] = mapped_column(Text)  # why suspect, in words
    # The control URLs' results: [{"phase": "start"|"end", "url", "status",
    # "error", "checked_at"}]; None when no control was configured.
    controls: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class Check(Base):
    """One re-check of a case. Append-only: rows are never updated or deleted.

    ``record_hash`` = SHA-256 over the canonical form of the row and the
    previous row's hash (``prev_hash``): the checks form one hash chain, so a
    changed or removed row shows (``hostwatch verify``).
    """

    __tablename__ = "checks"
    __table_args__ = (
        # id and verdict: the deadline judgements read the index only (0005).
        Index("ix_checks_case_time_verdict", "case_id", "checked_at", "id", "verdict"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="RESTRICT"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"), index=True)
    checked_at: Mapped[datetime]
    method: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str] = mapped_column(String(32))
    http_status: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)  # the URL requested
    final_url: Mapped[str | None] = mapped_column(Text)
    redirect_chain: Mapped[list[str] | None] = mapped_column(JSON)
    peer_ip: Mapped[str | None] = mapped_column(String(45))
    content_type: Mapped[str | None] = mapped_column(String(255))
    content_length: Mapped[int | None] = mapped_column(BigInteger)  # as declared
    bytes_received: Mapped[int | None] = mapped_column(BigInteger)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    body_sha256: Mapped[str | None] = mapped_column(String(64))
    body_pdq: Mapped[str | None] = mapped_column(String(64))
    pdq_quality: Mapped[int | None] = mapped_column(Integer)  # PDQ's own 0-100 score
    pdq_distance: Mapped[int | None] = mapped_column(Integer)  # bits from the reference PDQ
    reference_match: Mapped[bool | None] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(Text)  # why this verdict, in words
    error_kind: Mapped[str | None] = mapped_column(String(64))
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # selected, never a body
    tool_version: Mapped[str] = mapped_column(String(32))
    imported: Mapped[bool] = mapped_column(Boolean, default=False)
    prev_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64), unique=True)


class RunCase(Base):
    """A case checked in a run shared by several workers (0015): one row per
    (run, case), written in the transaction of the case's check, so that a
    case whose batch was handed to a second worker (its first worker
    stalled) is stored once (store.checks: ``once_per_run``)."""

    __tablename__ = "run_cases"

    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("crawl_runs.id"), primary_key=True)
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("cases.id"), primary_key=True)


class RunWorker(Base):
    """A worker process of a shared run (0015), for `hostwatch status`: which
    machine, when last seen, how many checks it has written."""

    __tablename__ = "run_workers"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("crawl_runs.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))  # host:pid
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    checks: Mapped[int] = mapped_column(Integer, default=0)
    stopped_at: Mapped[datetime | None]


class ChainHead(Base):
    """The newest link of the check hash chain (a single row, id 1).

    Writers lock this row while appending, so concurrent crawlers on
    PostgreSQL still build one unbroken chain.
    """

    __tablename__ = "chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_hash: Mapped[str] = mapped_column(String(64))
    check_id: Mapped[int | None] = mapped_column(BigId)


class Network(Base):
    """RDAP's answer for one network (the address holder), cached.

    An answer is found again by its range (``range_start``..``range_end``,
    sortable keys of the addresses): every address inside a network RDAP
    described is answered from it, so a million URLs on two thousand networks
    cost about two thousand RDAP requests. "Not found" and failed answers are
    kept under the announced prefix (or the address). Re-asked after
    HOSTWATCH_RDAP_TTL_DAYS; a failed answer is re-asked on the next run.
    """

    __tablename__ = "networks"
    __table_args__ = (Index("ix_networks_range", "range_start", "range_end"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # "start-end" of an answered network; else the announced prefix or address
    prefix: Mapped[str] = mapped_column(String(100), unique=True)
    range_start: Mapped[str | None] = mapped_column(String(40))
    range_end: Mapped[str | None] = mapped_column(String(40))
    fetched_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))  # ok / not_found / error
    error: Mapped[str | None] = mapped_column(Text)
    cidr: Mapped[str | None] = mapped_column(Text)  # as RDAP states it
    start_address: Mapped[str | None] = mapped_column(String(45))
    end_address: Mapped[str | None] = mapped_column(String(45))
    name: Mapped[str | None] = mapped_column(String(255))
    handle: Mapped[str | None] = mapped_column(String(255))
    org: Mapped[str | None] = mapped_column(String(255))
    org_country: Mapped[str | None] = mapped_column(String(8))  # the holder's address
    country: Mapped[str | None] = mapped_column(String(8))  # the network's
    abuse_email: Mapped[str | None] = mapped_column(String(255))
    org_handle: Mapped[str | None] = mapped_column(String(255))  # the holder's RDAP handle
    # The third party through which the block was registered (RDAP role
    # "reseller"), where the answer names one.
    reseller: Mapped[str | None] = mapped_column(String(255))
    reseller_handle: Mapped[str | None] = mapped_column(String(255))
    rir: Mapped[str | None] = mapped_column(String(32))  # the registry that answered
    rdap_url: Mapped[str | None] = mapped_column(Text)  # where the answer came from


class Hoster(Base):
    """A hosting company of record: from the registry file, or made from RDAP
    or AS-names data when the registry does not know it."""

    __tablename__ = "hosters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)  # registry id or derived
    legal_name: Mapped[str] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(8))
    asns: Mapped[list[int]] = mapped_column(JSON, default=list)
    dsa_role: Mapped[str | None] = mapped_column(String(32))
    abuse: Mapped[str | None] = mapped_column(String(255))
    cdn: Mapped[bool] = mapped_column(Boolean, default=False)
    # The best source that named it: registry, else rdap, else asn_names. How
    # each attribution was matched to it: its aliases (HosterAlias).
    source: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime]


class HosterAlias(Base):
    """One way a source names a hoster: how an attribution was matched to it.

    ``kind`` is a `kernel.model.AliasKind`: the registry entry id, an AS
    number the registry lists, an RDAP organisation handle, a company name
    reduced by `kernel.orgnames` (from RDAP, an AS name or the registry's
    legal name; ``base`` holds it without the legal form), or a key the
    hoster had before duplicates were merged. A (kind, value) names one
    hoster; ``seen_as`` keeps the text as the source wrote it.
    """

    __tablename__ = "hoster_aliases"
    __table_args__ = (
        UniqueConstraint("kind", "value", name="uq_hoster_aliases_kind_value"),
        Index("ix_hoster_aliases_base", "base"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    hoster_id: Mapped[int] = mapped_column(ForeignKey("hosters.id", ondelete="CASCADE"),
                                           index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(300))
    base: Mapped[str | None] = mapped_column(String(300))
    seen_as: Mapped[str] = mapped_column(String(300))
    first_seen: Mapped[datetime]


class Attribution(Base):
    """Who served a check: frozen when the check is attributed, because
    material moves between hosters. One per check."""

    __tablename__ = "attributions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("checks.id", ondelete="RESTRICT"),
                                          unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    attributed_at: Mapped[datetime]
    hostname: Mapped[str | None] = mapped_column(String(255))
    cname_chain: Mapped[list[str] | None] = mapped_column(JSON)
    nameservers: Mapped[list[str] | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))
    asn: Mapped[int | None] = mapped_column(BigInteger)
    prefix: Mapped[str | None] = mapped_column(String(64))
    as_name: Mapped[str | None] = mapped_column(String(255))
    as_country: Mapped[str | None] = mapped_column(String(8))
    network_id: Mapped[int | None] = mapped_column(ForeignKey("networks.id"))
    network_name: Mapped[str | None] = mapped_column(String(255))
    network_handle: Mapped[str | None] = mapped_column(String(255))
    rdap_org: Mapped[str | None] = mapped_column(String(255))
    rdap_org_country: Mapped[str | None] = mapped_column(String(8))
    rdap_country: Mapped[str | None] = mapped_column(String(8))  # the network's
    abuse_email: Mapped[str | None] = mapped_column(String(255))
    cdn: Mapped[str | None] = mapped_column(String(64))
    cdn_evidence: Mapped[list[str] | None] = mapped_column(JSON)
    hoster_id: Mapped[int | None] = mapped_column(ForeignKey("hosters.id"), index=True)
    hoster: Mapped[str | None] = mapped_column(String(255))  # name, frozen
    hoster_country: Mapped[str | None] = mapped_column(String(8))
    dsa_role: Mapped[str | None] = mapped_column(String(32))
    jurisdiction: Mapped[str] = mapped_column(String(16))  # NL / EU / non-EU / unknown
    dutch: Mapped[bool] = mapped_column(Boolean, default=False)
    sources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # field -> source
    # Where the serving address is located (#14): from the geolocation
    # database ("geoip", built at geoip_built_at) or the RDAP network ("rdap").
    server_country: Mapped[str | None] = mapped_column(String(8))
    server_country_source: Mapped[str | None] = mapped_column(String(16))
    geoip_built_at: Mapped[datetime | None]
    # The network operator beside the AS and the RDAP holder (#14): the
    # reseller through which the block was registered, where RDAP names one.
    rdap_reseller: Mapped[str | None] = mapped_column(String(255))
