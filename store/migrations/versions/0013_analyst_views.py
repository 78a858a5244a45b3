"""Analyst views (#15): analyst_cases, analyst_checks, analyst_deadlines,
analyst_notices, analyst_orders, analyst_case_durations, analyst_hosters

A stable schema for analysts and BI tools (docs/analysts.md), the same view
names and columns on SQLite and PostgreSQL. Reported URLs appear defanged
only (``hxxp://``, ``[.]``; kernel/defang.py holds the rule in Python and
the tests hold this SQL to it); the raw URL stays in the base tables.

The figures follow the hoster report's SQL (reports/hosters.py) and the pure
rules it is tested against (kernel/deadlines.py, kernel/durations.py): this
file holds its own frozen copy of them, as migrations must. A view cannot
take "now" as a parameter: ``pending`` deadlines, ``days_open`` and
``oldest_open_days`` use the database's clock when queried
(CURRENT_TIMESTAMP, in UTC).

A later migration that rebuilds a table these views read (SQLite's batch
mode copies and renames the table) drops the views first and creates them
again afterwards: `view_sql` gives the statements, `VIEWS` the order to drop
them in. Migration 0014 creates them with a stricter defang rule.

Revision ID: 0013
Revises: 0012
"""
from collections.abc import Callable

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Frozen copies of kernel.model's verdict groups and open states (0013).
SERVED = ("online", "reencoded")
GONE = ("changed", "http_gone", "legal_block", "placeholder", "redirect_away", "nxdomain")
TRANSIENT = ("timeout", "refused", "server_error", "tls_error", "dns_error", "bad_response",
             "redirect_loop", "access_denied", "incomplete")
NOT_FETCHED = ("blocked_address",)
OPEN_STATES = ("online", "pending_removal", "reappeared")
REGIMES = ("notice_24h", "atkm_order", "terrorist_1h")
OUTCOMES = ("met", "already_gone", "breached", "undecided", "pending")

# Dependants first: the order to drop them in.
VIEWS = ("analyst_hosters", "analyst_case_durations", "analyst_orders", "analyst_notices",
         "analyst_deadlines", "analyst_checks", "analyst_cases")


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


class _Dialect:
    """The few expressions that differ between SQLite and PostgreSQL."""

    def __init__(self, name: str) -> None:
        self.sqlite = name == "sqlite"

    def epoch(self, column: str) -> str:
        """Whole seconds since 1970 of a UTC timestamp (reports/hosters.py _epoch)."""
        if self.sqlite:
            return f"CAST(ROUND((julianday({column}) - 2440587.5) * 86400.0) AS INTEGER)"
        return f"CAST(ROUND(EXTRACT(EPOCH FROM {column})) AS BIGINT)"

    @property
    def now(self) -> str:
        """The database's current time as a naive UTC timestamp, like the columns."""
        if self.sqlite:
            return "CURRENT_TIMESTAMP"  # 'YYYY-MM-DD HH:MM:SS', UTC
        return "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"

    def hours(self, seconds: str) -> str:
        return f"(CAST({seconds} AS DOUBLE PRECISION) / 3600.0)"

    def days(self, seconds: str) -> str:
        return f"(CAST({seconds} AS DOUBLE PRECISION) / 86400.0)"


def _defang(column: str) -> str:
    """kernel.defang.defang in SQL: text already defanged read back, the
    scheme, then every '://' and '.' of the rest."""
    def rest(text: str) -> str:
        return f"REPLACE(REPLACE({text}, '://', '[://]'), '.', '[.]')"
    plain = f"REPLACE(REPLACE({column}, '[.]', '.'), '[://]', '://')"
    return (f"CASE WHEN LOWER(SUBSTR({plain}, 1, 8)) IN ('https://', 'hxxps://') "
            f"THEN 'hxxps://' || {rest(f'SUBSTR({plain}, 9)')} "
            f"WHEN LOWER(SUBSTR({plain}, 1, 7)) IN ('http://', 'hxxp://') "
            f"THEN 'hxxp://' || {rest(f'SUBSTR({plain}, 8)')} "
            f"ELSE {rest(plain)} END")


def _section(a: str) -> str:
    """The report's section of a case by its attribution of record."""
    return (f"CASE WHEN {a}.id IS NULL THEN 'unattributed' "
            f"WHEN {a}.cdn IS NOT NULL THEN 'cdn' "
            f"WHEN {a}.dutch THEN 'dutch' "
            f"WHEN {a}.jurisdiction = 'EU' THEN 'eu' "
            f"WHEN {a}.jurisdiction = 'non-EU' THEN 'non_eu' "
            "ELSE 'unattributed' END")


def _verdict_group(column: str) -> str:
    return (f"CASE WHEN {column} IN {_in(SERVED)} THEN 'served' "
            f"WHEN {column} IN {_in(GONE)} THEN 'gone' "
            f"WHEN {column} IN {_in(TRANSIENT)} THEN 'transient' "
            f"WHEN {column} IN {_in(NOT_FETCHED)} THEN 'not_fetched' END")


def _cases(d: _Dialect, defang: Callable[[str], str] = _defang) -> str:
    age = f"({d.epoch(d.now)} - {d.epoch('c.reported_at')})"
    return f"""
CREATE VIEW analyst_cases AS
SELECT c.id AS case_id, c.source, c.external_id, c.category,
       {defang('c.url')} AS url_defanged,
       {defang('c.host')} AS host_defanged,
       c.reported_at, c.state, c.last_verdict, c.last_checked_at, c.last_served_at,
       c.removed_after, c.removed_at, c.reappearances, c.check_count,
       c.attribution_id,
       {_section('a')} AS section,
       a.hoster_id,
       CASE WHEN a.cdn IS NOT NULL THEN (SELECT MIN(hc.key) FROM hosters hc
                                         WHERE hc.cdn AND hc.legal_name = a.cdn)
            ELSE h.key END AS hoster_key,
       CASE WHEN a.cdn IS NOT NULL THEN a.cdn
            WHEN a.hoster_id IS NOT NULL THEN COALESCE(h.legal_name, 'unknown')
            ELSE COALESCE(a.hoster, 'unknown') END AS hoster,
       a.hoster_country, a.jurisdiction, a.dutch, a.dsa_role, a.cdn,
       CASE WHEN a.cdn IS NULL THEN a.server_country END AS server_country,
       CASE WHEN a.cdn IS NULL THEN a.server_country_source END AS server_country_source,
       CASE WHEN c.state <> 'removed' THEN {d.days(age)} END AS days_open
FROM cases c
LEFT JOIN attributions a ON a.id = c.attribution_id
LEFT JOIN hosters h ON h.id = a.hoster_id
"""


def _checks(d: _Dialect, defang: Callable[[str], str] = _defang) -> str:
    return f"""
CREATE VIEW analyst_checks AS
SELECT ch.id AS check_id, ch.case_id, ch.run_id, r.health AS run_health,
       ch.checked_at, ch.method, ch.verdict, {_verdict_group('ch.verdict')} AS verdict_group,
       ch.http_status, {defang('ch.url')} AS url_defanged,
       {defang('ch.final_url')} AS final_url_defanged,
       ch.peer_ip, ch.content_type, ch.content_length, ch.bytes_received, ch.truncated,
       ch.body_sha256, ch.reference_match, ch.pdq_distance, ch.error_kind, ch.imported,
       a.id AS attribution_id,
       CASE WHEN a.id IS NULL THEN NULL WHEN a.id = c.attribution_id THEN 1 ELSE 0 END
           AS of_record,
       {defang('a.hostname')} AS hostname_defanged,
       a.ip, a.asn, a.prefix, a.as_name, a.as_country, a.rdap_org, a.rdap_country,
       a.rdap_reseller, a.cdn, a.hoster_id, h.key AS hoster_key, a.hoster,
       a.hoster_country, a.jurisdiction, a.dutch,
       CASE WHEN a.cdn IS NULL THEN a.server_country END AS server_country,
       CASE WHEN a.cdn IS NULL THEN a.server_country_source END AS server_country_source
FROM checks ch
JOIN cases c ON c.id = ch.case_id
LEFT JOIN crawl_runs r ON r.id = ch.run_id
LEFT JOIN attributions a ON a.check_id = ch.id
LEFT JOIN hosters h ON h.id = a.hoster_id
"""


def _deadlines(d: _Dialect) -> str:
    # A suspect or unjudged run's gone checks do not count (kernel.state).
    counted = (f"(x.verdict IN {_in(SERVED)} OR (x.verdict IN {_in(GONE)} AND "
               "(x.run_id IS NULL OR NOT EXISTS (SELECT 1 FROM crawl_runs r WHERE "
               "r.id = x.run_id AND r.health <> 'healthy'))))")
    # At one instant a served check outweighs a gone one (kernel.deadlines.judge).
    served_first = f"CASE WHEN x.verdict IN {_in(SERVED)} THEN 0 ELSE 1 END"

    def nearest(bound: str, before: bool) -> str:
        side = f"x.checked_at <= {bound}" if before else f"x.checked_at > {bound}"
        order = (f"x.checked_at DESC, {served_first}, x.id DESC" if before
                 else f"x.checked_at ASC, {served_first}, x.id ASC")
        return (f"(SELECT x.id FROM checks x WHERE x.case_id = due.case_id AND {side} "
                f"AND {counted} ORDER BY {order} LIMIT 1)")

    served_since = (f"CASE WHEN EXISTS (SELECT 1 FROM checks x WHERE x.case_id = due.case_id "
                    f"AND x.checked_at > due.started_at AND x.checked_at <= due.due_at "
                    f"AND x.verdict IN {_in(SERVED)}) THEN 1 ELSE 0 END")
    gone, served = _in(GONE), _in(SERVED)
    return f"""
CREATE VIEW analyst_deadlines AS
WITH due AS (
    SELECT 'notice' AS kind, n.id AS notice_id, CAST(NULL AS BIGINT) AS order_id,
           n.case_id, 'notice_24h' AS regime, n.sent_at AS started_at, n.due_at,
           CASE WHEN n.id = (SELECT f.id FROM notices f WHERE f.case_id = n.case_id
                             ORDER BY f.sent_at, f.id LIMIT 1) THEN 1 ELSE 0 END AS in_report
    FROM notices n
    UNION ALL
    SELECT 'order', NULL, o.id, o.case_id, o.regime, o.issued_at, o.due_at,
           CASE WHEN o.regime IS NOT NULL THEN 1 ELSE 0 END
    FROM orders o
), judged AS (
    SELECT due.*, {nearest('due.started_at', True)} AS at_start_id,
           {nearest('due.due_at', True)} AS before_id,
           {nearest('due.due_at', False)} AS after_id,
           {served_since} AS served_since_start,
           CASE WHEN {d.epoch('due.due_at')} > {d.epoch(d.now)} THEN 1 ELSE 0 END AS ahead
    FROM due
)
SELECT j.kind, j.notice_id, j.order_id, j.case_id, j.regime, j.started_at, j.due_at,
       j.in_report,
       s.checked_at AS at_start_checked_at, s.verdict AS at_start_verdict,
       b.checked_at AS before_checked_at, b.verdict AS before_verdict,
       f.checked_at AS after_checked_at, f.verdict AS after_verdict,
       j.served_since_start,
       CASE WHEN j.ahead = 1 THEN 'pending'
            WHEN b.verdict IN {gone} AND s.verdict IN {gone} AND j.served_since_start = 0
                THEN 'already_gone'
            WHEN b.verdict IN {gone} THEN 'met'
            WHEN f.verdict IN {served} THEN 'breached'
            ELSE 'undecided' END AS outcome
FROM judged j
LEFT JOIN checks s ON s.id = j.at_start_id
LEFT JOIN checks b ON b.id = j.before_id
LEFT JOIN checks f ON f.id = j.after_id
"""


_JUDGEMENT = ("dl.in_report, dl.at_start_checked_at, dl.at_start_verdict, "
              "dl.before_checked_at, dl.before_verdict, dl.after_checked_at, "
              "dl.after_verdict, dl.outcome")


def _notices() -> str:
    return f"""
CREATE VIEW analyst_notices AS
SELECT n.id AS notice_id, n.case_id, n.sent_at, n.channel, n.recipient, n.reference,
       n.trusted_flagger, n.due_at, {_JUDGEMENT}
FROM notices n JOIN analyst_deadlines dl ON dl.notice_id = n.id
"""


def _orders() -> str:
    return f"""
CREATE VIEW analyst_orders AS
SELECT o.id AS order_id, o.case_id, o.issuer, o.legal_basis, o.reference, o.regime,
       o.issued_at, o.deadline_at, o.due_at,
       CASE WHEN o.due_at < o.deadline_at THEN 1 ELSE 0 END AS capped, {_JUDGEMENT}
FROM orders o JOIN analyst_deadlines dl ON dl.order_id = o.id
"""


def _durations(d: _Dialect) -> str:
    start, after = d.epoch("k.started_at"), d.epoch("COALESCE(c.removed_after, k.started_at)")
    at = d.epoch("c.removed_at")
    last = d.epoch("COALESCE(c.last_checked_at, c.reported_at)")

    def nonneg(value: str) -> str:
        return f"CASE WHEN {value} > 0 THEN {value} ELSE 0 END"

    served_for = nonneg(f"{after} - {start}")
    followed = nonneg(f"{last} - {start}")
    point = (f"CASE WHEN c.removed_at IS NULL THEN {d.hours(followed)} "
             f"WHEN {at} > {start} THEN {d.hours(f'({served_for} + {at} - {start})')} / 2 END")
    lower = (f"CASE WHEN c.removed_at IS NULL THEN {d.hours(followed)} "
             f"WHEN {at} > {start} THEN {d.hours(served_for)} END")
    upper = (f"CASE WHEN c.removed_at IS NOT NULL AND {at} > {start} "
             f"THEN {d.hours(f'{at} - {start}')} END")
    return f"""
CREATE VIEW analyst_case_durations AS
WITH clocks AS (
    SELECT id AS case_id, 'report' AS clock, reported_at AS started_at FROM cases
    UNION ALL
    SELECT case_id, 'notice', MIN(sent_at) FROM notices GROUP BY case_id
    UNION ALL
    SELECT case_id, 'order', MIN(issued_at) FROM orders GROUP BY case_id
)
SELECT k.case_id, k.clock, k.started_at,
       CASE WHEN c.removed_at IS NULL THEN 'censored'
            WHEN {at} > {start} THEN 'removed'
            ELSE 'removed_before_clock' END AS status,
       {lower} AS lower_hours, {upper} AS upper_hours, {point} AS point_hours
FROM clocks k JOIN cases c ON c.id = k.case_id
"""


def _hosters(d: _Dialect) -> str:
    counts = ",\n       ".join(
        f"SUM(CASE WHEN dl.regime = '{r}' AND dl.outcome = '{o}' THEN 1 ELSE 0 END) AS {r}_{o}"
        for r in REGIMES for o in OUTCOMES)
    totals = ",\n       ".join(f"CAST(SUM(COALESCE(p.{r}_{o}, 0)) AS BIGINT) AS {r}_{o}"
                               for r in REGIMES for o in OUTCOMES)
    reported = d.epoch("ac.reported_at")
    first_open = f"MIN(CASE WHEN ac.state <> 'removed' THEN {reported} END)"
    oldest = d.days(f"{d.epoch(d.now)} - {first_open}")
    figures = ", ".join(f"g.{name}" for name in (
        "cases", "online", "removed", "unchecked", "reappearances", "oldest_open_reported_at",
        "oldest_open_days", *(f"{r}_{o}" for r in REGIMES for o in OUTCOMES)))
    return f"""
CREATE VIEW analyst_hosters AS
WITH per_case AS (
    SELECT dl.case_id,
       {counts}
    FROM analyst_deadlines dl WHERE dl.in_report = 1 GROUP BY dl.case_id
), grouped AS (
    SELECT ac.section, ac.hoster_id, ac.hoster, MIN(ac.hoster_key) AS hoster_key,
       COUNT(*) AS cases,
       SUM(CASE WHEN ac.state IN {_in(OPEN_STATES)} THEN 1 ELSE 0 END) AS online,
       SUM(CASE WHEN ac.removed_at IS NOT NULL THEN 1 ELSE 0 END) AS removed,
       SUM(CASE WHEN ac.state = 'unchecked' THEN 1 ELSE 0 END) AS unchecked,
       SUM(ac.reappearances) AS reappearances,
       MIN(CASE WHEN ac.state <> 'removed' THEN ac.reported_at END) AS oldest_open_reported_at,
       CASE WHEN {oldest} < 0 THEN 0 ELSE {oldest} END AS oldest_open_days,
       {totals}
    FROM analyst_cases ac LEFT JOIN per_case p ON p.case_id = ac.case_id
    GROUP BY ac.section, ac.hoster_id, ac.hoster
)
SELECT g.section, g.hoster_id, g.hoster, g.hoster_key, h.country AS hoster_country,
       h.dsa_role, h.abuse AS abuse_contact, {figures}
FROM grouped g LEFT JOIN hosters h ON h.key = g.hoster_key
"""


def view_sql(dialect_name: str, defang: Callable[[str], str] = _defang) -> tuple[str, ...]:
    """The CREATE VIEW statements, in the order to run them; ``defang`` gives
    the SQL that defangs a column (0013's rule unless a later migration says)."""
    dialect = _Dialect(dialect_name)
    return (_cases(dialect, defang), _checks(dialect, defang), _deadlines(dialect), _notices(),
            _orders(), _durations(dialect), _hosters(dialect))


def upgrade() -> None:
    for sql in view_sql(op.get_bind().dialect.name):
        op.execute(sql)


def downgrade() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
