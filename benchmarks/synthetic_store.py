"""A synthetic hostwatch store for the report benchmark (deterministic from a seed).

    .venv/bin/python benchmarks/synthetic_store.py --db URL [--cases N]
                     [--checks-per-case K] [--seed S] [--regenerate]

The schema comes from hostwatch's own migrations (``Store(url).upgrade()``);
the rows are bulk-loaded (SQLite: ``executemany`` with the loading PRAGMAs;
PostgreSQL: ``COPY``), with the secondary indexes, unique and foreign-key
constraints dropped during the load and re-created afterwards from the very
definitions the migrations made (PostgreSQL is ANALYZEd; SQLite is left
without statistics, like a user's store).

What is in it - the tables and columns the hoster report reads, made to hang
together the way hostwatch itself would write them:

- ``hosters``: about 300 synthetic companies (no real names): ~25 % Dutch,
  ~35 % other EU, ~30 % outside the EU, 6 CDNs (``cdn`` true), the rest
  unregistered hosters named by RDAP (some without a country). Private-use
  32-bit ASNs, ``abuse@....example`` contacts.
- ``cases``: N reports spread evenly over 2025, ids in report order; a
  Zipf-like spread over the hosters (CDNs ~15 %), categories mostly csam.
  Each hoster has a removal-speed profile (log-normal hours from the notice,
  or from the report without one, plus a share never removed); ~2 % of cases
  reappear after removal; ~1 % never reach an address (NXDOMAIN from the first
  check: no attribution).
- ``checks``: K per case on average, N*K in all (exactly): nightly checks
  (01:00-05:00 UTC, one slot per case) for 1..2K-1 nights from the night
  after the report, plus checks at each order's deadline and 15 min after it.
  Ids follow check time, night by night, as a real nightly crawl writes them
  (a case's checks are scattered over the table). The verdict follows the
  case's fate: served until the removal, then the case's gone verdict; 3 %
  transient verdicts (timeouts, 5xx, refused, TLS). One ``crawl_runs`` row per
  night. The hash chain is the real one: ``prev_hash``/``record_hash`` as
  ``store.checks.record_hash`` computes them (a faster equivalent of its
  canonical JSON, checked against it on the first 2,000 rows and every
  100,000th), so ``verify_chain`` holds.
- the derived columns of ``cases`` come from ``kernel.state.derive_state`` over
  the case's own checks (every case, default debounce rules).
- ``attributions``: one per attributed case, the attribution of record
  (``cases.attribution_id``): on the newest check that reached an address, as
  enrichment sets it. CDN-fronted cases have no hoster (``cdn`` names the CDN,
  jurisdiction unknown), as enrichment records them. No attribution on the
  other checks. Server locations (#14, ``_server_parts``): most cases served
  from the hoster's own country by the geolocation database; one Dutch hoster
  in seven serves half its cases from Germany, one foreign hoster in five a
  third of its cases from an Amsterdam data centre; every 33rd case is not in
  the database and takes the RDAP network's country (``rdap``); hosters named
  by RDAP only are located by RDAP (some not at all).
- ``notices``: ~80 % of cases, sent 0.5-6 h after the report to the hoster's
  abuse contact, due 24 h later (``kernel.deadlines.notice_due``).
- ``orders``: ~1 % of cases, ATKM orders (regime ``atkm_order``) to Dutch
  hosters of csam cases still online a while after the notice deadline, the
  order's own deadline 1-24 h (due at most 12 h: ``order_due``); and about
  N/5000 terrorist-content orders (``terrorist_1h``). Most orders are
  complied with (removal pulled forward), some just too late, some ignored.

A store is reused when its marker table (``bench_synthetic``) names the same
generator version, size, seed and schema head; one made at an older schema
head is first upgraded in place by hostwatch's migrations, as a user's store
would be. ``--regenerate`` rebuilds it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Run as a script, benchmarks/ comes first on sys.path, and its enrichment.py and
# reports.py would hide the packages of those names (even with REPO on PYTHONPATH).
sys.path[:] = [str(REPO), *(entry for entry in sys.path
                            if Path(entry).resolve() not in (REPO, REPO / "benchmarks"))]

import numpy as np  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from enrichment.jurisdiction import EU_MEMBER_STATES, jurisdiction  # noqa: E402
from kernel import __version__  # noqa: E402
from kernel.deadlines import Regime, notice_due, order_due  # noqa: E402
from kernel.model import Verdict  # noqa: E402
from kernel.state import derive_state  # noqa: E402
from store.checks import GENESIS, HASHED_FIELDS, record_hash  # noqa: E402
from store.db import MIGRATIONS, Store  # noqa: E402

GENERATOR = "reports-synthetic-2"  # 2: server locations (#14)
MARKER = "bench_synthetic"
PG_DATABASE = "hostwatch_bench"
START = datetime(2025, 1, 1, tzinfo=UTC)
REPORT_DAYS = 365
NIGHTS = REPORT_DAYS + 1  # the last night's checks end before 2026-01-02
DAY = 86_400
HOUR = 3_600
BATCH = 50_000
TRANSIENT_SHARE = 0.03
REAPPEAR_SHARE = 0.025  # ~2 % seen reappearing once transients and timing take theirs
DEAD_SHARE = 0.01
ORDER_SHARE = 0.01
TERRORIST_ORDERS_PER = 5_000  # one terrorist-content order per this many cases

CATEGORIES = (("csam", 0.80), ("csam_ai", 0.06), ("ncii", 0.05), ("deepfake_adult", 0.03),
              ("sextortion", 0.02), ("terrorist", 0.02), ("other", 0.02))
GONE_KINDS = ((Verdict.HTTP_GONE, 0.55), (Verdict.PLACEHOLDER, 0.12), (Verdict.NXDOMAIN, 0.08),
              (Verdict.REDIRECT_AWAY, 0.10), (Verdict.CHANGED, 0.10),
              (Verdict.LEGAL_BLOCK, 0.05))
TRANSIENTS = (Verdict.TIMEOUT, Verdict.SERVER_ERROR, Verdict.SERVER_ERROR, Verdict.REFUSED,
              Verdict.TLS_ERROR)
VERDICTS = list(Verdict)
CODE = {v: i for i, v in enumerate(VERDICTS)}
NO_ADDRESS = {Verdict.NXDOMAIN, Verdict.DNS_ERROR, Verdict.REFUSED, Verdict.BLOCKED_ADDRESS}
# (http_status, content_type, content_length, reference_match, error_kind, reason)
VERDICT_FIELDS: dict[Verdict, tuple[int | None, str | None, int | None, bool | None,
                                    str | None, str]] = {
    Verdict.ONLINE: (200, "image/jpeg", None, True, None, "served; matches the reference"),
    Verdict.CHANGED: (200, "image/jpeg", 48_211, False, None, "served; not the reference"),
    Verdict.HTTP_GONE: (404, "text/html", 1_256, None, None, "HTTP 404"),
    Verdict.LEGAL_BLOCK: (451, "text/html", 2_048, None, None, "HTTP 451"),
    Verdict.PLACEHOLDER: (200, "image/png", 4_312, False, None, "removed-content placeholder"),
    Verdict.REDIRECT_AWAY: (200, "text/html", 17_877, None, None, "redirected to the home page"),
    Verdict.NXDOMAIN: (None, None, None, None, "nxdomain", "the name does not exist"),
    Verdict.TIMEOUT: (None, None, None, None, "timeout", "timed out"),
    Verdict.SERVER_ERROR: (503, "text/html", 512, None, None, "HTTP 503"),
    Verdict.REFUSED: (None, None, None, None, "refused", "connection refused"),
    Verdict.TLS_ERROR: (None, None, None, None, "tls", "TLS handshake failed"),
    Verdict.DNS_ERROR: (None, None, None, None, "dns_error", "DNS lookup failed (SERVFAIL)"),
}
CHECK_COLUMNS = ("id", "case_id", "run_id", "checked_at", "method", "verdict", "http_status",
                 "url", "final_url", "redirect_chain", "peer_ip", "content_type",
                 "content_length", "bytes_received", "truncated", "body_sha256", "body_pdq",
                 "reference_match", "reason", "error_kind", "headers", "tool_version",
                 "imported", "prev_hash", "record_hash")
CASE_COLUMNS = ("id", "source", "external_id", "url", "url_normalised", "host", "category",
                "reported_at", "ref_sha256", "ref_pdq", "imported_at", "state", "last_verdict",
                "last_checked_at", "last_served_at", "removed_after", "removed_at",
                "reappearances", "check_count", "attribution_id", "last_counted_at",
                "unconfirmed_checks")
ATTRIBUTION_COLUMNS = ("id", "check_id", "case_id", "attributed_at", "hostname", "ip", "asn",
                       "prefix", "as_name", "as_country", "network_name", "rdap_org",
                       "rdap_org_country", "rdap_country", "abuse_email", "cdn",
                       "cdn_evidence", "hoster_id", "hoster", "hoster_country", "dsa_role",
                       "jurisdiction", "dutch", "sources", "server_country",
                       "server_country_source", "geoip_built_at")
NOTICE_COLUMNS = ("id", "case_id", "sent_at", "channel", "recipient", "reference",
                  "trusted_flagger", "due_at")
ORDER_COLUMNS = ("id", "case_id", "issuer", "legal_basis", "reference", "issued_at",
                 "deadline_at", "regime", "due_at")
HOSTER_COLUMNS = ("id", "key", "legal_name", "country", "asns", "dsa_role", "abuse", "cdn",
                  "source", "updated_at")
RUN_COLUMNS = ("id", "started_at", "finished_at", "status", "method", "cases_due",
               "checks_made", "counts", "errors", "tool_version", "pid", "hostname")
TABLES = ("hosters", "crawl_runs", "cases", "notices", "orders", "checks", "attributions")


class SyntheticError(RuntimeError):
    """The synthetic store cannot be made or is not what it claims to be."""


@dataclass(frozen=True)
class Spec:
    cases: int
    checks_per_case: int
    seed: int

    @property
    def checks(self) -> int:
        return self.cases * self.checks_per_case

    def marker(self, schema: str) -> dict[str, Any]:
        return {"generator": GENERATOR, "cases": self.cases,
                "checks_per_case": self.checks_per_case, "seed": self.seed, "schema": schema}


# -- time as text ---------------------------------------------------------------------

_DATES = [(START + timedelta(days=d)).strftime("%Y-%m-%d") for d in range(NIGHTS + 40)]


def db_time(seconds: int) -> str:
    """Seconds after START as the store keeps a UTC time (SQLAlchemy's SQLite form)."""
    day, rest = divmod(seconds, DAY)
    hour, rest = divmod(rest, HOUR)
    minute, second = divmod(rest, 60)
    return f"{_DATES[day]} {hour:02d}:{minute:02d}:{second:02d}.000000"


def _aware(seconds: int) -> datetime:
    return START + timedelta(seconds=seconds)


def _seconds(value: datetime | None) -> int | None:
    return None if value is None else int((value - START).total_seconds())


# -- hosters --------------------------------------------------------------------------

@dataclass(frozen=True)
class HosterSpec:
    id: int
    klass: str  # nl / eu / non_eu / cdn / rdap
    key: str
    legal_name: str
    country: str | None
    asns: list[int]
    dsa_role: str | None
    abuse: str
    source: str
    median_hours: float
    sigma: float
    never: float
    weight: float

    @property
    def cdn(self) -> bool:
        return self.klass == "cdn"


EU_OTHER = sorted(EU_MEMBER_STATES - {"NL"})
EU_WEIGHTS = {"DE": 8, "FR": 5, "LU": 3, "BG": 3, "RO": 3, "LT": 2, "LV": 2, "CZ": 2, "PL": 2}
NON_EU = ("US", "US", "US", "RU", "RU", "GB", "CA", "SG", "UA", "HK", "PA", "SC", "MD", "CH",
          "NO", "TR", "BZ", "VN", "IN", "BR")


def make_hosters(rng: random.Random, count: int = 300) -> list[HosterSpec]:
    """The hoster population: class mix, countries, ASNs, removal profiles, weights."""
    n_cdn = 6
    n_nl, n_eu, n_non_eu = round(count * 0.25), round(count * 0.35), round(count * 0.30)
    n_rdap = count - n_cdn - n_nl - n_eu - n_non_eu
    classes = ["nl"] * n_nl + ["eu"] * n_eu + ["non_eu"] * n_non_eu + ["cdn"] * n_cdn + \
        ["rdap"] * n_rdap
    eu_pool = [c for c in EU_OTHER for _ in range(EU_WEIGHTS.get(c, 1))]
    # Zipf-like case shares over a shuffled rank order; CDNs take ~15 %, RDAP-named ~5 %.
    ranks = list(range(1, count - n_cdn - n_rdap + 1))
    rng.shuffle(ranks)
    hosters: list[HosterSpec] = []
    next_asn = 4_200_000_000
    rank_iter = iter(ranks)
    for index, klass in enumerate(classes, start=1):
        asns = list(range(next_asn, next_asn + rng.choice((1, 1, 1, 2, 3))))
        next_asn += len(asns)
        never = 0.0
        if klass == "nl":
            country: str | None = "NL"
            slow = rng.random() < 0.1
            median = rng.uniform(150, 400) if slow else rng.uniform(3, 36)
            never = rng.uniform(0.2, 0.4) if slow else rng.uniform(0.01, 0.05)
        elif klass == "eu":
            country = rng.choice(eu_pool)
            median, never = rng.uniform(8, 96), rng.uniform(0.03, 0.10)
        elif klass == "non_eu":
            country = rng.choice(NON_EU)
            bulletproof = rng.random() < 0.1
            median = rng.uniform(24, 400)
            never = rng.uniform(0.7, 0.9) if bulletproof else rng.uniform(0.05, 0.4)
        elif klass == "cdn":
            country = rng.choice(("US", "US", "GB", "SI"))
            median, never = rng.uniform(48, 300), rng.uniform(0.1, 0.2)
        else:
            country = rng.choice(("RU", "UA", "SC", "DE", "FR", None, None))
            median, never = rng.uniform(24, 300), rng.uniform(0.1, 0.3)
        if klass == "cdn":
            weight, tag = 0.15 / n_cdn, "cdn"
        elif klass == "rdap":
            weight, tag = 0.05 / n_rdap, "rdap"
        else:
            weight, tag = 1.0 / next(rank_iter) ** 1.05, klass.replace("_", "")
        slug = f"synthetic-{tag}-{index:03d}"
        suffix = {"nl": " B.V.", "eu": " SA", "cdn": " CDN Inc.", "rdap": " Ltd"}.get(
            klass, " LLC")
        name = f"Synthetic {tag.upper()} {index:03d}{suffix}"
        registered = klass != "rdap"
        hosters.append(HosterSpec(
            id=index, klass=klass, key=slug if registered else f"rdap:{name.lower()}",
            legal_name=name, country=country, asns=asns,
            dsa_role={"cdn": "cdn", "rdap": None}.get(klass, "hosting"),
            abuse=f"abuse@{slug}.example", source="registry" if registered else "rdap",
            median_hours=median, sigma=rng.uniform(0.8, 1.4), never=never, weight=weight))
    # Normalise the non-CDN, non-RDAP weights to the remaining 80 %.
    ranked = sum(h.weight for h in hosters if h.klass not in ("cdn", "rdap"))
    return [h if h.klass in ("cdn", "rdap") else replace(h, weight=h.weight / ranked * 0.80)
            for h in hosters]


def hoster_rows(hosters: Sequence[HosterSpec]) -> list[tuple[Any, ...]]:
    updated = db_time(0)
    return [(h.id, h.key, h.legal_name, h.country, json.dumps(h.asns), h.dsa_role, h.abuse,
             h.cdn, h.source, updated) for h in hosters]


# -- the case plan (vectorised) -------------------------------------------------------

@dataclass
class Plan:
    """Every case's parameters, one numpy array per field (index = case id - 1)."""

    reported: Any
    hoster: Any
    host: Any
    category: Any
    dead: Any
    notice_sent: Any  # -1 when no notice
    removal: Any  # float seconds; inf = never
    reappear: Any  # inf = no reappearance
    removal2: Any  # inf = not removed again
    gone_kind: Any
    slot: Any
    first_night: Any
    nights: Any
    order_kind: Any  # 0 none, 1 ATKM, 2 terrorist
    order_issued: Any
    order_deadline: Any
    order_due: Any
    hosts_per_hoster: Any
    host_offset: Any


def make_plan(spec: Spec, hosters: Sequence[HosterSpec], gen: Any) -> Plan:
    n = spec.cases
    reported = np.sort(gen.integers(0, REPORT_DAYS * DAY, size=n))
    weights = np.array([h.weight for h in hosters])
    hoster = gen.choice(len(hosters), size=n, p=weights / weights.sum())
    hosts_per_hoster = np.maximum(1, np.round(weights / weights.sum() * n / 20)).astype(np.int64)
    host_offset = np.concatenate(([0], np.cumsum(hosts_per_hoster)[:-1]))
    host = host_offset[hoster] + (gen.random(n) * hosts_per_hoster[hoster]).astype(np.int64)
    cats = [c for c, _ in CATEGORIES]
    category = gen.choice(len(cats), size=n, p=[p for _, p in CATEGORIES])
    dead = gen.random(n) < DEAD_SHARE
    has_notice = (gen.random(n) < 0.80) & ~dead
    notice_sent = np.where(has_notice, reported + gen.integers(HOUR // 2, 6 * HOUR, size=n), -1)
    start = np.where(has_notice, notice_sent, reported).astype(np.float64)
    median = np.array([h.median_hours for h in hosters])[hoster]
    sigma = np.array([h.sigma for h in hosters])[hoster]
    never = gen.random(n) < np.array([h.never for h in hosters])[hoster]
    delay = gen.lognormal(np.log(median), sigma) * HOUR
    removal = np.where(never, np.inf, start + delay)
    removal = np.where(dead, reported.astype(np.float64), removal)

    # Nightly checks: 1..2K-1 nights (mean K) from the night after the report, never
    # past the last night; the total is made exactly N*K below (deadline checks included).
    first_night = reported // DAY + 1
    room = NIGHTS - first_night
    k = spec.checks_per_case
    lo = max(1, k // 2)
    nights = np.minimum(gen.integers(lo, 2 * k - lo + 1, size=n), room)
    nights_planned = nights.copy()

    # Orders: ATKM to Dutch hosters of csam cases still online after the notice deadline.
    klass = np.array([h.klass for h in hosters])[hoster]
    due_notice = notice_sent + 24 * HOUR
    csam = (category == cats.index("csam")) | (category == cats.index("csam_ai"))
    eligible = (klass == "nl") & csam & has_notice & (removal > due_notice + 2 * HOUR)
    share = min(1.0, ORDER_SHARE * n / max(1, int(eligible.sum())))
    atkm = eligible & (gen.random(n) < share)
    terror_eligible = (klass == "nl") & (category == cats.index("terrorist")) & ~dead & \
        (removal > reported + 2 * HOUR)
    t_share = min(1.0, (n / TERRORIST_ORDERS_PER) / max(1, int(terror_eligible.sum())))
    terror = terror_eligible & (gen.random(n) < t_share)
    order_kind = np.where(atkm, 1, np.where(terror, 2, 0))
    latest = np.minimum(removal, np.where(atkm, due_notice, reported) + 72 * HOUR)
    base = np.where(atkm, due_notice, reported).astype(np.float64)
    issued = (base + HOUR + gen.random(n) * np.maximum(0, latest - base - HOUR)).astype(np.int64)
    own_hours = gen.choice([1, 4, 12, 24], size=n, p=[0.2, 0.3, 0.4, 0.1])
    deadline = np.where(order_kind == 2, issued + HOUR, issued + own_hours * HOUR)
    due = np.where(order_kind == 2, issued + HOUR, np.minimum(deadline, issued + 12 * HOUR))
    comply = gen.random(n) < np.where(order_kind == 2, 0.6, 0.75)
    forced = issued + gen.uniform(0.2, 1.3, size=n) * (due - issued)
    removal = np.where((order_kind > 0) & comply, np.minimum(removal, forced), removal)

    # Reappearances: served again after a removal confirmed by at least two nightly
    # checks, and seen by a later check.
    # (A night less than planned: the total below may take one off.)
    last_check = (reported // DAY + nights_planned - 1) * DAY + HOUR
    after = removal + 2.5 * DAY
    can = np.isfinite(removal) & ~dead & (after < last_check)
    reappears = can & (gen.random(n) < REAPPEAR_SHARE * n / max(1, int(can.sum())))
    span = np.where(can, last_check - after, 0.0)
    reappear = np.where(reappears, after + gen.random(n) * span, np.inf)
    removal2 = np.where(reappears & (gen.random(n) < 0.7),
                        reappear + gen.lognormal(np.log(median), sigma) * HOUR, np.inf)
    kinds = [k for k, _ in GONE_KINDS]
    gone_kind = np.array([CODE[k] for k in kinds])[
        gen.choice(len(kinds), size=n, p=[p for _, p in GONE_KINDS])]
    gone_kind = np.where(dead, CODE[Verdict.NXDOMAIN], gone_kind)

    diff = spec.checks - 2 * int((order_kind > 0).sum()) - int(nights.sum())
    while diff != 0:
        pool = np.flatnonzero(nights < room) if diff > 0 else np.flatnonzero(nights > 1)
        if pool.size == 0:
            raise SyntheticError("cannot fit the checks into the nights available")
        pick = gen.choice(pool, size=min(abs(diff), pool.size), replace=False)
        nights[pick] += 1 if diff > 0 else -1
        diff -= int(np.sign(diff)) * pick.size
    slot = gen.integers(0, 4 * HOUR, size=n)
    return Plan(reported=reported, hoster=hoster, host=host, category=category, dead=dead,
                notice_sent=notice_sent, removal=removal, reappear=reappear, removal2=removal2,
                gone_kind=gone_kind, slot=slot, first_night=first_night, nights=nights,
                order_kind=order_kind, order_issued=issued, order_deadline=deadline,
                order_due=due, hosts_per_hoster=hosts_per_hoster, host_offset=host_offset)


# -- loaders --------------------------------------------------------------------------

class Loader:
    """Bulk-writes rows into one freshly migrated store."""

    name = "store"

    def __init__(self, url: str) -> None:
        self.url = url

    def prepare(self) -> None:
        raise NotImplementedError

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    def finish(self, head: tuple[str, int | None], marker: dict[str, Any]) -> None:
        raise NotImplementedError


class SqliteLoader(Loader):
    name = "sqlite"

    def prepare(self) -> None:
        path = make_url(self.url).database
        assert path
        self.db = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "foreign_keys=OFF",
                       "cache_size=-1000000", "temp_store=MEMORY", "locking_mode=EXCLUSIVE"):
            self.db.execute(f"PRAGMA {pragma}")
        self.indexes = [(name, sql) for name, sql in self.db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({','.join('?' * len(TABLES))})", TABLES)]
        for name, _ in self.indexes:
            self.db.execute(f"DROP INDEX {name}")
        self.db.execute("BEGIN")

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        marks = ",".join("?" * len(columns))
        self.db.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", rows)

    def finish(self, head: tuple[str, int | None], marker: dict[str, Any]) -> None:
        self.db.execute("COMMIT")
        for _, sql in self.indexes:
            self.db.execute(sql)
        self.db.execute("UPDATE chain_head SET record_hash = ?, check_id = ? WHERE id = 1", head)
        _write_marker(self.db.execute, marker, "?")
        self.db.execute("PRAGMA locking_mode=NORMAL")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.close()


def _write_marker(execute: Callable[..., Any], marker: dict[str, Any], mark: str) -> None:
    execute(f"CREATE TABLE IF NOT EXISTS {MARKER} (spec TEXT NOT NULL)")
    execute(f"DELETE FROM {MARKER}")
    execute(f"INSERT INTO {MARKER} (spec) VALUES ({mark})", (json.dumps(marker, sort_keys=True),))


class PostgresLoader(Loader):
    name = "postgresql"

    def _connect(self) -> Any:
        import psycopg
        url = make_url(self.url).set(drivername="postgresql")
        return psycopg.connect(url.render_as_string(hide_password=False))

    def prepare(self) -> None:
        self.conn = self._connect()
        cur = self.conn.cursor()
        cur.execute("SET maintenance_work_mem = '1GB'")
        self.constraints = cur.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
            "AND contype IN ('u', 'f') AND conrelid::regclass::text = ANY(%s)",
            (list(TABLES),)).fetchall()
        owned = {name for _, name, _, _ in self.constraints}
        self.indexes = [(name, sql) for name, sql in cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = ANY(%s) AND indexname NOT LIKE '%%_pkey'", (list(TABLES),))
            if name not in owned]
        for table, name, _, _ in sorted(self.constraints, key=lambda c: c[3] != "f"):
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in self.indexes:
            cur.execute(f'DROP INDEX "{name}"')
        self.conn.commit()

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        # Times and JSON go as their text forms; PostgreSQL parses them per column.
        with self.conn.cursor() as cur, \
                cur.copy(f"COPY {table} ({','.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def finish(self, head: tuple[str, int | None], marker: dict[str, Any]) -> None:
        cur = self.conn.cursor()
        cur.execute("SET maintenance_work_mem = '1GB'")
        for _, sql in self.indexes:
            cur.execute(sql)
        for table, name, definition, _ in sorted(self.constraints, key=lambda c: c[3] == "f"):
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for table in TABLES:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
        cur.execute("UPDATE chain_head SET record_hash = %s, check_id = %s WHERE id = 1", head)
        _write_marker(cur.execute, marker, "%s")
        self.conn.commit()
        self.conn.autocommit = True
        # What autovacuum does after a bulk insert (PostgreSQL 13+): statistics,
        # and the visibility map that lets index-only scans skip the table.
        self.conn.execute("VACUUM ANALYZE")
        self.conn.close()


# -- the hash chain -------------------------------------------------------------------

def _j(value: Any) -> str:
    """JSON of a scalar, as json.dumps writes it (strings here are plain ASCII)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return '"' + value + '"'
    return str(value)


_SORTED = sorted((*HASHED_FIELDS, "prev_hash"))


# The fields that differ between checks of one verdict; the others are constants of
# the verdict (VERDICT_FIELDS) or of every synthetic check.
_VARYING = ("body_sha256", "bytes_received", "case_id", "checked_at", "content_length",
            "final_url", "peer_ip", "prev_hash", "run_id", "url")


def _hash_template(verdict: Verdict) -> str:
    """The canonical JSON of a check of ``verdict`` with %s for each varying field."""
    status, ctype, _, match, error_kind, reason = VERDICT_FIELDS[verdict]
    constants = {"body_pdq": None, "content_type": ctype, "error_kind": error_kind,
                 "headers": None, "http_status": status, "imported": False, "method": "http",
                 "reason": reason, "redirect_chain": None, "reference_match": match,
                 "tool_version": __version__, "truncated": False, "verdict": verdict.value}
    parts = [f'"{name}":%s' if name in _VARYING else f'"{name}":{_j(constants[name])}'
             for name in _SORTED]
    return ("{" + ",".join(parts) + "}").replace("%s", "\0").replace("%", "%%") \
        .replace("\0", "%s")


def fast_record_hash(template: str, values: tuple[Any, ...]) -> str:
    """``store.checks.record_hash`` of a synthetic check: its verdict's template
    filled with the JSON of the ``_VARYING`` fields, in that order (checked
    against the real function while generating)."""
    return hashlib.sha256((template % values).encode("ascii")).hexdigest()


# -- generation -----------------------------------------------------------------------

def _sha(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def _host_name(host: int) -> str:
    words = ("img", "files", "pics", "cdn", "share", "up", "media", "host")
    tlds = ("com", "net", "nl", "ru", "to", "io", "org", "cc")
    return f"{words[host % 8]}{host}.{tlds[(host // 8) % 8]}"


def _ip(hoster: int, case: int) -> str:
    """A benchmark-range (198.18.0.0/15, RFC 2544) address: one /24 per hoster."""
    return f"198.{18 + hoster // 256}.{hoster % 256}.{case % 254 + 1}"


def generate(spec: Spec, loaders: Sequence[Loader], log: Callable[[str], None] = print) -> None:
    """Build the store described in the module docstring into every loader's store."""
    if not 0 < spec.cases < 2**24 or spec.checks_per_case < 1:
        raise SyntheticError("--cases must be 1..16,777,215 and --checks-per-case at least 1")
    started = time.perf_counter()
    rng = random.Random(spec.seed)
    gen = np.random.default_rng(spec.seed)
    hosters = make_hosters(rng)
    plan = make_plan(spec, hosters, gen)
    log(f"  plan: {spec.cases:,} cases over {len(hosters)} hosters "
        f"({time.perf_counter() - started:.1f} s)")

    def insert(table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        for loader in loaders:
            loader.insert(table, columns, rows)
        rows.clear()

    for loader in loaders:
        loader.prepare()
    insert("hosters", HOSTER_COLUMNS, hoster_rows(hosters))

    # Order-deadline checks may fall a few days after the last night.
    nights = [array("q") for _ in range(NIGHTS + 8)]
    attr_at = array("q", [-1]) * spec.cases
    cats = [c for c, _ in CATEGORIES]
    cases: list[tuple[Any, ...]] = []
    notices: list[tuple[Any, ...]] = []
    orders: list[tuple[Any, ...]] = []
    notice_id = order_id = 0  # the lists are emptied after each batch
    gone = VERDICTS
    no_address = {CODE[v] for v in NO_ADDRESS}
    online, nxdomain, dns_error = CODE[Verdict.ONLINE], CODE[Verdict.NXDOMAIN], \
        CODE[Verdict.DNS_ERROR]
    transient_codes = [CODE[v] for v in TRANSIENTS]
    P = plan
    reported_l, first_l, nights_l, slot_l = (P.reported.tolist(), P.first_night.tolist(),
                                             P.nights.tolist(), P.slot.tolist())
    removal_l, reappear_l, removal2_l = P.removal.tolist(), P.reappear.tolist(), \
        P.removal2.tolist()
    gone_l, dead_l, kind_l = P.gone_kind.tolist(), P.dead.tolist(), P.order_kind.tolist()
    sent_l, issued_l = P.notice_sent.tolist(), P.order_issued.tolist()
    deadline_l, due_l = P.order_deadline.tolist(), P.order_due.tolist()
    host_l, hoster_l, cat_l = P.host.tolist(), P.hoster.tolist(), P.category.tolist()
    phase = time.perf_counter()
    for i in range(spec.cases):
        case_id = i + 1
        rep = reported_l[i]
        base = first_l[i] * DAY + HOUR + slot_l[i]
        times = [base + k * DAY for k in range(nights_l[i])]
        kind = kind_l[i]
        if kind:
            times.extend((due_l[i], due_l[i] + 900))
            times.sort()
        rm, re_, rm2, gk = removal_l[i], reappear_l[i], removal2_l[i], gone_l[i]
        dead = dead_l[i]
        history = []
        last_address = -1
        for t in times:
            if dead:
                code = dns_error if rng.random() < TRANSIENT_SHARE else nxdomain
            elif rng.random() < TRANSIENT_SHARE:
                code = transient_codes[int(rng.random() * 5)]
            elif t < rm or re_ <= t < rm2:
                code = online
            else:
                code = gk
            nights[t // DAY].append((t << 29) | (i << 5) | code)
            history.append((START + timedelta(seconds=t), gone[code]))
            if code not in no_address:
                last_address = t
        attr_at[i] = last_address
        derived = derive_state(_aware(rep), history)
        host = _host_name(host_l[i])
        url = f"https://{host}/m/{case_id:07d}.jpg"
        cases.append((
            case_id, "bench", f"B{case_id:07d}", url, url, host, cats[cat_l[i]], db_time(rep),
            _sha(spec.seed, case_id), None, db_time(rep + 600), derived.state.value,
            derived.last_verdict.value if derived.last_verdict else None,
            _db(derived.last_checked_at), _db(derived.last_served_at),
            _db(derived.removed_after), _db(derived.removed_at), derived.reappearances,
            derived.checks, case_id if last_address >= 0 else None,
            _db(derived.last_counted_at), derived.unconfirmed))
        hoster = hosters[hoster_l[i]]
        if sent_l[i] >= 0:
            sent = sent_l[i]
            due = _seconds(notice_due(_aware(sent)))
            assert due is not None
            notice_id += 1
            notices.append((notice_id, case_id, db_time(sent), "email", hoster.abuse,
                            f"NTD-{case_id:07d}", True, db_time(due)))
        if kind:
            regime = Regime.ATKM_ORDER if kind == 1 else Regime.TERRORIST_1H
            issued, deadline = issued_l[i], deadline_l[i]
            check_due = _seconds(order_due(regime, _aware(issued), _aware(deadline)))
            assert check_due == due_l[i], (case_id, check_due, due_l[i])
            basis = ("Wet bestuursrechtelijke aanpak online kinderpornografisch materiaal"
                     if kind == 1 else "Regulation (EU) 2021/784 (TCO), art. 3")
            order_id += 1
            orders.append((order_id, case_id, "ATKM", basis, f"ATKM-{case_id:07d}",
                           db_time(issued), db_time(deadline), regime.value, db_time(due_l[i])))
        if len(cases) >= BATCH:
            for table, columns, rows in (("cases", CASE_COLUMNS, cases),
                                         ("notices", NOTICE_COLUMNS, notices),
                                         ("orders", ORDER_COLUMNS, orders)):
                if rows:
                    insert(table, columns, rows)
        if case_id % 200_000 == 0:
            log(f"  cases: {case_id:,} ({time.perf_counter() - phase:.0f} s)")
    for table, columns, rows in (("cases", CASE_COLUMNS, cases),
                                 ("notices", NOTICE_COLUMNS, notices),
                                 ("orders", ORDER_COLUMNS, orders)):
        if rows:
            insert(table, columns, rows)
    log(f"  cases, notices and orders written ({time.perf_counter() - phase:.0f} s)")

    head = _write_checks(spec, loaders, hosters, plan, nights, attr_at, insert, log)
    log(f"  loaded; re-creating indexes and constraints (t = "
        f"{time.perf_counter() - started:.0f} s)")
    marker = spec.marker(schema_head())
    for loader in loaders:
        phase = time.perf_counter()
        loader.finish(head, marker)
        log(f"  {loader.name}: indexes, constraints, marker ({time.perf_counter() - phase:.0f} s)")
    log(f"  generated in {time.perf_counter() - started:.0f} s")


def _db(value: datetime | None) -> str | None:
    seconds = _seconds(value)
    return None if seconds is None else db_time(seconds)


def _write_checks(spec: Spec, loaders: Sequence[Loader], hosters: Sequence[HosterSpec],
                  plan: Plan, nights: list[array[int]], attr_at: array[int],
                  insert: Callable[[str, Sequence[str], list[tuple[Any, ...]]], None],
                  log: Callable[[str], None]) -> tuple[str, int | None]:
    """The checks night by night in time order, the hash chain, the attributions."""
    phase = time.perf_counter()
    prev = GENESIS
    check_id = 0
    rows: list[tuple[Any, ...]] = []
    attributions: list[tuple[Any, ...]] = []
    runs: list[tuple[Any, ...]] = []
    host_l, hoster_l = plan.host.tolist(), plan.hoster.tolist()
    fields = {CODE[v]: f for v, f in VERDICT_FIELDS.items()}
    no_address = {CODE[v] for v in NO_ADDRESS}
    online, changed = CODE[Verdict.ONLINE], CODE[Verdict.CHANGED]
    attribution_parts = [_attribution_parts(h) for h in hosters]
    templates = {CODE[v]: _hash_template(v) for v in VERDICT_FIELDS}
    redirect_away = CODE[Verdict.REDIRECT_AWAY]
    host_names = [_host_name(h) for h in range(int(plan.hosts_per_hoster.sum()))]
    for night, packed in enumerate(nights):
        if not packed:
            continue
        run_id = len(runs) + 1
        counts: dict[str, int] = {}
        first_time = last_time = None
        for key in sorted(packed):
            t, i, code = key >> 29, (key >> 5) & 0xFFFFFF, key & 31
            verdict = VERDICTS[code].value
            counts[verdict] = counts.get(verdict, 0) + 1
            check_id += 1
            case_id = i + 1
            host = host_names[host_l[i]]
            hoster_index = hoster_l[i]
            status, ctype, length, match, error_kind, reason = fields[code]
            sha = None
            if code == online:
                sha = _sha(spec.seed, case_id)
                length = 40_000 + case_id % 90_000
            elif code == changed:
                sha = _sha(spec.seed, case_id, "changed")
            elif length is not None:
                sha = _sha(hoster_index, verdict)
            url = f"https://{host}/m/{case_id:07d}.jpg"
            final_url = f"https://{host}/" if code == redirect_away else None
            ip = None if code in no_address else _ip(hoster_index, case_id)
            when = db_time(t)
            digest = fast_record_hash(templates[code], (
                _j(sha), _j(length), case_id, f'"{when[:10]}T{when[11:]}Z"', _j(length),
                _j(final_url), _j(ip), f'"{prev}"', run_id, f'"{url}"'))
            if check_id <= 2_000 or check_id % 100_000 == 0:
                real = record_hash({
                    "case_id": case_id, "checked_at": _aware(t), "method": "http",
                    "verdict": verdict, "url": url, "tool_version": __version__,
                    "run_id": run_id, "http_status": status, "final_url": final_url,
                    "redirect_chain": None, "peer_ip": ip, "content_type": ctype,
                    "content_length": length, "bytes_received": length, "truncated": False,
                    "body_sha256": sha, "body_pdq": None, "reference_match": match,
                    "reason": reason, "error_kind": error_kind, "headers": None,
                    "imported": False}, prev)
                if real != digest:
                    raise SyntheticError(f"check {check_id}: the fast record hash differs "
                                         "from store.checks.record_hash")
            rows.append((check_id, case_id, run_id, when, "http", verdict, status, url,
                         final_url, None, ip, ctype, length, length, False, sha, None, match,
                         reason, error_kind, None, __version__, False, prev, digest))
            prev = digest
            if attr_at[i] == t:
                attr_at[i] = -2  # once only
                attributions.append((case_id, check_id, case_id, db_time(t + 600), host, ip,
                                     *attribution_parts[hoster_index],
                                     *_server_parts(hosters[hoster_index], case_id)))
            first_time = first_time if first_time is not None else t
            last_time = t
            if len(rows) >= BATCH:
                insert("checks", CHECK_COLUMNS, rows)
                if attributions:
                    insert("attributions", ATTRIBUTION_COLUMNS, attributions)
        assert first_time is not None and last_time is not None
        runs.append((run_id, db_time(first_time - 60), db_time(last_time + 60), "finished",
                     "http", len(packed), len(packed), json.dumps(counts, sort_keys=True), 0,
                     __version__, None, "bench"))
        nights[night] = array("q")
        if night % 60 == 0:
            log(f"  checks: night {night}/{NIGHTS}, {check_id:,} checks "
                f"({time.perf_counter() - phase:.0f} s)")
    if rows:
        insert("checks", CHECK_COLUMNS, rows)
    if attributions:
        insert("attributions", ATTRIBUTION_COLUMNS, attributions)
    insert("crawl_runs", RUN_COLUMNS, runs)
    if check_id != spec.checks:
        raise SyntheticError(f"wrote {check_id:,} checks, planned {spec.checks:,}")
    log(f"  checks: {check_id:,} written ({time.perf_counter() - phase:.0f} s)")
    return prev, check_id or None


def _attribution_parts(h: HosterSpec) -> tuple[Any, ...]:
    """The columns of an attribution that depend on the hoster only (after hostname, ip)."""
    place = jurisdiction(h.country)
    asn = h.asns[0]
    prefix = f"198.{18 + h.id // 256}.{h.id % 256}.0/24"
    as_name = f"AS-{h.key.upper()[:40]}"
    if h.cdn:
        sources = {"hoster": "cdn", "country": "cdn", "dsa_role": "cdn",
                   "abuse": "registry:cdn", "cdn": "cdn", "jurisdiction": "cdn"}
        return (asn, prefix, as_name, h.country, f"{h.key}-net", h.legal_name, h.country,
                h.country, h.abuse, h.legal_name.removesuffix(" CDN Inc."),
                json.dumps([f"asn {asn}"]), None, None, None, "intermediary", "unknown",
                False, json.dumps(sources, sort_keys=True))
    source = "registry:asn" if h.source == "registry" else "rdap"
    sources = {"hoster": source, "country": source if h.country else "none",
               "dsa_role": source if h.dsa_role else "none", "abuse": source, "cdn": "none",
               "jurisdiction": "hoster_country"}
    return (asn, prefix, as_name, h.country, f"{h.key}-net", h.legal_name, h.country,
            h.country, h.abuse, None, None, h.id, h.legal_name, h.country, h.dsa_role,
            place.value, place.value == "NL", json.dumps(sources, sort_keys=True))


GEOIP_BUILT = db_time(int((datetime(2025, 12, 1, tzinfo=UTC) - START).total_seconds()))


def _server_parts(h: HosterSpec, case_id: int) -> tuple[str | None, str | None, str | None]:
    """server_country, server_country_source, geoip_built_at of one case
    (deterministic from the hoster and the case, so the other draws stay put)."""
    rdap = (h.country, "rdap", None) if h.country else (None, None, None)
    if h.klass == "rdap" or case_id % 33 == 0:
        return rdap
    country = h.country
    if h.klass == "nl" and h.id % 7 == 0 and case_id % 2 == 0:
        country = "DE"
    elif h.klass in ("eu", "non_eu") and h.id % 5 == 0 and case_id % 3 == 0:
        country = "NL"
    elif h.cdn:
        country = ("NL", "DE", "US")[case_id % 3]  # the edge: never counted as a location
    return (country, "geoip", GEOIP_BUILT) if country else rdap


# -- the store: open, reuse or (re)make -----------------------------------------------

def schema_head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def read_marker(url: str) -> dict[str, Any] | None:
    """The marker of a finished synthetic store at ``url``, else None."""
    from sqlalchemy import create_engine, inspect, text
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or not Path(parsed.database).exists():
            return None
    elif not _pg_database_exists(url):
        return None
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(MARKER):
                return None
            spec = conn.execute(text(f"SELECT spec FROM {MARKER}")).scalar()
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    if spec is None:
        return None
    marker: dict[str, Any] = json.loads(spec)
    return marker if marker.get("schema") == version else None


def _pg_admin(url: str) -> Any:
    import psycopg
    admin = make_url(url).set(drivername="postgresql", database="postgres")
    return psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True)


def _pg_database_exists(url: str) -> bool:
    name = make_url(url).database
    with _pg_admin(url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is not None


def reset_store(url: str) -> None:
    """Make ``url`` an empty store at the schema head (drops what was there)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:":
            raise SyntheticError("the benchmark needs a SQLite file, not a memory database")
        path = Path(database)
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    elif parsed.get_backend_name() == "postgresql":
        name = parsed.database or ""
        if not name.startswith(PG_DATABASE):
            raise SyntheticError(f"refusing to drop PostgreSQL database {name!r}: the "
                                 f"benchmark only owns databases named {PG_DATABASE}*")
        with _pg_admin(url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    else:
        raise SyntheticError(f"unsupported store {parsed.get_backend_name()!r}")
    store = Store(url)
    store.upgrade()
    store.dispose()


def loader_for(url: str) -> Loader:
    backend = make_url(url).get_backend_name()
    return SqliteLoader(url) if backend == "sqlite" else PostgresLoader(url)


def _upgrade_older(url: str, wanted: dict[str, Any], log: Callable[[str], None]) -> None:
    """Bring a store made at an older schema head up to the current one with
    hostwatch's own migrations, as a user's store would be (and re-stamp the
    marker); a store of another size or seed is left alone."""
    from sqlalchemy import create_engine, inspect, text
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or not Path(parsed.database).exists():
            return
    elif not _pg_database_exists(url):
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(MARKER):
                return
            spec = conn.execute(text(f"SELECT spec FROM {MARKER}")).scalar()
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    marker = json.loads(spec) if spec else {}
    if marker.get("schema") != version or version == wanted["schema"]:
        return  # unfinished, or already current
    if {k: v for k, v in marker.items() if k != "schema"} != \
            {k: v for k, v in wanted.items() if k != "schema"}:
        return
    started = time.perf_counter()
    store = Store(url)
    store.upgrade()
    with store.engine.begin() as conn:
        conn.execute(text(f"UPDATE {MARKER} SET spec = :spec"),
                     {"spec": json.dumps(wanted, sort_keys=True)})
    if parsed.get_backend_name() == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    store.dispose()
    log(f"upgraded {store.safe_url} from schema {version} to {wanted['schema']} "
        f"({time.perf_counter() - started:.0f} s)")


def ensure_stores(spec: Spec, urls: Iterable[str], *, regenerate: bool = False,
                  log: Callable[[str], None] = print) -> dict[str, float | None]:
    """Reuse or (re)generate each store; seconds spent generating (None: reused)."""
    wanted = spec.marker(schema_head())
    todo: list[str] = []
    result: dict[str, float | None] = {}
    for url in urls:
        if not regenerate:
            _upgrade_older(url, wanted, log)
        if not regenerate and read_marker(url) == wanted:
            log(f"reusing {Store(url).safe_url} ({spec.cases:,} cases, seed {spec.seed})")
            result[url] = None
        else:
            todo.append(url)
    if todo:
        log(f"generating {spec.cases:,} cases / {spec.checks:,} checks (seed {spec.seed}) "
            f"into {', '.join(Store(u).safe_url for u in todo)}")
        started = time.perf_counter()
        for url in todo:
            reset_store(url)
        generate(spec, [loader_for(url) for url in todo], log)
        elapsed = time.perf_counter() - started
        for url in todo:
            result[url] = elapsed
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", action="append", required=True,
                        help="store URL (repeat for several; written in one pass)")
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--checks-per-case", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args(argv)
    spec = Spec(args.cases, args.checks_per_case, args.seed)
    ensure_stores(spec, args.db, regenerate=args.regenerate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
