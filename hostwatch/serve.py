"""`hostwatch serve`: the analyst views in Datasette, read-only (#15).

What is served is never the store itself but a snapshot of its analyst views
(`store.snapshot`, the file `hostwatch export sqlite` writes), in a temporary
folder, rewritten when the store changes. The snapshot holds no raw URL, no
header and no base table, so no page, no JSON or CSV export and no SQL query
can hand out a reported URL as it is: the views show them defanged. A store on
PostgreSQL is served the same way; a ready snapshot file (``--db
sqlite:///snapshot.db``) is served as it is.

Datasette turns every cell that looks like a URL into a link. The plugin below
(registered programmatically, not through an entry point) takes over the
rendering of every string cell in every table, row page and SQL query result:
escaped plain text, addresses defanged (`kernel.defang`), never an anchor,
image or frame; the only links are to this server (a case id to the
`case_history` query, a hoster to its section of the hoster report at
``/-/report``). Its ASGI wrapper adds a Content-Security-Policy under which a
page loads nothing but the UI's own assets, and no referrer ever leaves. The
database's metadata adds canned queries on the views (`QUERIES`) and the
facets each view opens with (`FACETS`).

Authentication is datasette-auth-passwords with one account, ``analyst``,
whose password hash is ``HOSTWATCH_SERVE_PASSWORD_HASH``; when it is set every
page needs a login, and only then may the server listen beyond loopback.
``--tls-cert``/``--tls-key`` serve HTTPS.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import io
import ipaddress
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import markupsafe
from datasette import hookimpl
from datasette.app import Datasette
from datasette.database import Database
from datasette.plugins import pm
from datasette.utils.asgi import Forbidden, Response
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from hostwatch.serve_defaults import DEFAULT_PORT, REFRESH_SECONDS, USERNAME
from kernel.config import KEYS, Config
from kernel.defang import defang
from kernel.errors import HostwatchError
from kernel.progress import ProgressLine
from store.snapshot import progress_text

__all__ = ["CSP", "DATABASE", "DEFAULT_PORT", "FACETS", "QUERIES", "REFRESH_SECONDS",
           "USERNAME", "ServeError", "Served", "cell_text", "check_host",
           "database_metadata", "open_served", "register_plugin", "serve"]

log = logging.getLogger(__name__)

DATABASE = "hostwatch"  # the database's name and route: /hostwatch/analyst_cases
PASSWORD_HASH_ENV = KEYS["serve_password_hash"].env
PLUGIN_NAME = "hostwatch-serve"
MAX_AGE_SECONDS = 3600.0  # days open and pending deadlines depend on "now"
GRACE_SECONDS = 60.0  # an old snapshot outlives its replacement by this much
PACE = 5.0  # after a snapshot that took t seconds, none for PACE * t seconds
# Datasette's time limits (its defaults, 1 s and 0.2 s, cut most pages on a
# store of 1,000,000 cases: BENCHMARKS.md, "Analyst views in Datasette").
# The snapshot's tables are plain tables, faster than the views measured
# there; counting or faceting 10,000,000 checks still takes seconds. Facet
# suggestions (one more count per column) are off.
SQL_TIME_LIMIT_MS = 60_000
FACET_TIME_LIMIT_MS = 10_000

# Only the UI's own assets; Datasette's pages use inline scripts and styles.
CSP = ("default-src 'self'; img-src 'self' data:; script-src 'self' 'unsafe-inline'; "
       "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-src 'none'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]

# Dates, times and decimal numbers read as they are; any other text (an address
# too) is defanged.
_PLAIN = re.compile(r"\d{4}-\d\d-\d\d(?:[ T]\d\d:\d\d(?::\d\d(?:\.\d+)?)?)?"
                    r"(?:Z|[+-]\d\d:?\d\d)?|[+-]?\d+(?:\.\d+)?")


_OPEN = "('online', 'pending_removal', 'reappeared')"  # the analyst views' open states

# Canned queries on the analyst views (docs/analysts.md): every address in them
# is already defanged by the view, and the plugin renders every cell anyway.
QUERIES: dict[str, dict[str, str]] = {
    "still_online": {
        "title": "Still online, per hoster (oldest first)",
        "description": "Open cases (online, pending removal, reappeared) grouped by the "
                       "hoster of record, the longest open first within each hoster.",
        "sql": "SELECT hoster, hoster_country, jurisdiction, case_id, category, url_defanged,\n"
               "       reported_at, state, last_served_at, days_open\n"
               f"FROM analyst_cases WHERE state IN {_OPEN}\n"
               "ORDER BY hoster, reported_at, case_id",
    },
    "deadline_breaches": {
        "title": "Deadline breaches per regime and period",
        "description": "The deadlines the hoster report counts (each case's first notice, "
                       "every order with a regime) due between :since (inclusive) and "
                       ":until (exclusive; ISO dates or times in UTC such as 2026-01-01 or "
                       "2026-01-01T12:00:00Z, either may be empty), per regime and month: "
                       "how many were due, met, breached, undecided or pending.",
        "sql": "SELECT regime, substr(due_at, 1, 7) AS month, COUNT(*) AS deadlines,\n"
               "       SUM(outcome = 'breached') AS breached, SUM(outcome = 'met') AS met,\n"
               "       SUM(outcome = 'already_gone') AS already_gone,\n"
               "       SUM(outcome = 'undecided') AS undecided,\n"
               "       SUM(outcome = 'pending') AS pending\n"
               "FROM analyst_deadlines\n"
               "WHERE in_report = 1\n"
               "  AND (:since = '' OR datetime(due_at) >= datetime(:since))\n"
               "  AND (:until = '' OR datetime(due_at) < datetime(:until))\n"
               "GROUP BY regime, month ORDER BY regime, month",
    },
    "case_history": {
        "title": "One case's full history",
        "description": "Everything about case :case in time order: the report, every check "
                       "with the attribution it made, every notice and order with its outcome.",
        "sql": "SELECT * FROM (\n"
               "  SELECT 'report' AS kind, reported_at AS at, category AS what,\n"
               "         url_defanged AS detail, hoster, jurisdiction, NULL AS outcome\n"
               "  FROM analyst_cases WHERE case_id = :case\n"
               "  UNION ALL\n"
               "  SELECT 'check', checked_at, verdict,\n"
               "         COALESCE(hostname_defanged, '') || ' ' || COALESCE(ip, '') || ' AS'\n"
               "         || COALESCE(asn, '') || ' ' || COALESCE(as_name, ''),\n"
               "         hoster, jurisdiction, CASE WHEN of_record = 1 THEN 'of record' END\n"
               "  FROM analyst_checks WHERE case_id = :case\n"
               "  UNION ALL\n"
               "  SELECT 'notice', sent_at, channel, COALESCE(reference, ''), NULL, NULL, outcome\n"
               "  FROM analyst_notices WHERE case_id = :case\n"
               "  UNION ALL\n"
               "  SELECT 'order', issued_at, regime,\n"
               "         COALESCE(issuer, '') || ' ' || COALESCE(reference, ''),\n"
               "         NULL, NULL, outcome\n"
               "  FROM analyst_orders WHERE case_id = :case\n"
               ") ORDER BY at, kind",
    },
    "hoster_comparison": {
        "title": "Hoster comparison",
        "description": "Per hoster and report section: cases, still online, removed, "
                       "reappearances, the oldest open case, and deadlines met or breached.",
        "sql": "SELECT section, hoster, hoster_country, dsa_role, cases, online, removed,\n"
               "       unchecked, reappearances, oldest_open_days,\n"
               "       notice_24h_met, notice_24h_breached, atkm_order_met, atkm_order_breached\n"
               "FROM analyst_hosters ORDER BY online DESC, cases DESC, hoster",
    },
    "reappearances": {
        "title": "Reappearances",
        "description": "Cases that came back online after removal, the most often first.",
        "sql": "SELECT case_id, hoster, jurisdiction, category, url_defanged, reappearances,\n"
               "       state, removed_at, last_served_at\n"
               "FROM analyst_cases WHERE reappearances > 0\n"
               "ORDER BY reappearances DESC, case_id",
    },
    "cases_by_jurisdiction": {
        "title": "Cases by jurisdiction and category",
        "description": "How many cases each jurisdiction holds per category, and how many "
                       "are still online or removed.",
        "sql": "SELECT jurisdiction, category, COUNT(*) AS cases,\n"
               f"       SUM(state IN {_OPEN}) AS online,\n"
               "       SUM(removed_at IS NOT NULL) AS removed\n"
               "FROM analyst_cases GROUP BY jurisdiction, category\n"
               "ORDER BY cases DESC, jurisdiction, category",
    },
}

# Facets each analyst view opens with.
FACETS: dict[str, list[str]] = {
    "analyst_cases": ["hoster", "jurisdiction", "state", "category"],
    "analyst_checks": ["hoster", "jurisdiction", "verdict_group"],
    "analyst_deadlines": ["regime", "outcome"],
    "analyst_notices": ["outcome"],
    "analyst_orders": ["regime", "outcome"],
}


def database_metadata(description: str = "") -> dict[str, Any]:
    """Datasette metadata for the served database: canned queries, facets,
    and the hidden bookkeeping table of the snapshot."""
    tables: dict[str, Any] = {view: {"facets": list(facets)} for view, facets in FACETS.items()}
    tables["snapshot_info"] = {"hidden": True}
    return {"description": description,
            "queries": {name: dict(query) for name, query in QUERIES.items()},
            "tables": tables}


class ServeError(HostwatchError):
    """The store cannot be served as asked (its message says why and what to do)."""


def cell_text(value: Any) -> markupsafe.Markup | None:
    """What the plugin shows for one cell: escaped, defanged text; None = Datasette's own."""
    if isinstance(value, dict):  # an expanded foreign key: {"value": ..., "label": ...}
        value = value.get("label") if value.get("label") not in (None, "") else value.get("value")
        if not isinstance(value, str):
            return markupsafe.Markup(markupsafe.escape(str(value)))
    if isinstance(value, bytes):
        return markupsafe.Markup(markupsafe.escape(f"<binary: {len(value):,} bytes>"))
    if not isinstance(value, str):
        return None  # numbers and NULL: Datasette's rendering has no link
    if value == "":
        return markupsafe.Markup("&nbsp;")
    text_ = value if _PLAIN.fullmatch(value) else defang(value)
    return markupsafe.Markup(markupsafe.escape(text_))


def _facet_label(value: Any) -> markupsafe.Markup:
    """A facet value as the plugin shows a cell ("-" when empty)."""
    if value in (None, ""):
        return markupsafe.Markup("-")
    shown = cell_text(value)
    return shown if shown is not None else markupsafe.Markup(markupsafe.escape(str(value)))


# Datasette's templates the plugin overrides (the facet list: its values too).
TEMPLATES = Path(__file__).with_name("serve_templates")


def _served(datasette: Datasette) -> Served | None:
    served = getattr(datasette, "hostwatch_served", None)
    return served if isinstance(served, Served) else None


async def _report(datasette: Datasette, request: Any) -> Response:
    """``/-/report``: the hoster report of the store, as `hostwatch report` writes it."""
    if not await datasette.permission_allowed(request.actor, "view-instance", default=True):
        raise Forbidden("view-instance")
    served = _served(datasette)
    if served is None or served.hostwatch is None:
        return Response.html("<!DOCTYPE html><title>No report</title><p>No hoster report: "
                             "this server shows a snapshot file, not a store. Serve the "
                             "store (hostwatch --db URL serve) for the report.</p>",
                             status=404)
    try:
        return Response.html(await served.report_html())
    except Exception as exc:  # the store went away, say: the log has the details
        log.warning("hoster report for /-/report failed: %s: %s", type(exc).__name__, exc)
        return Response.html("<!DOCTYPE html><title>No report</title><p>The hoster report "
                             "could not be built from the store; the server's log says "
                             "why.</p>", status=503)


class _Plugin:
    """The Datasette hooks (a namespace for pluggy; `register_plugin` registers it)."""

    @staticmethod
    @hookimpl(tryfirst=True)
    def render_cell(value: Any, column: str, table: str | None, database: str,
                    datasette: Datasette) -> Any:
        if isinstance(value, dict):  # no foreign keys in a snapshot: shown as text
            return cell_text(value)
        if column == "case_id" and isinstance(value, int) and not isinstance(value, bool):
            # A case id leads to its history.
            href = datasette.urls.query(database, "case_history") + f"?case={value}"
            return markupsafe.Markup('<a href="{}">{}</a>').format(href, value)
        served = _served(datasette)
        if (column == "hoster" and isinstance(value, str) and value
                and table in (None, "analyst_cases", "analyst_hosters")
                and served is not None and served.hostwatch is not None):
            # A hoster of record leads to its line in the hoster report
            # (analyst_checks names the hoster each check found, frozen).
            from reports.html import hoster_anchor

            href = datasette.urls.path("/-/report") + "#" + hoster_anchor(value)
            return markupsafe.Markup('<a href="{}">{}</a>').format(href, cell_text(value))
        return cell_text(value)

    @staticmethod
    @hookimpl
    def prepare_jinja2_environment(env: Any) -> None:
        env.filters["hostwatch_cell"] = _facet_label

    @staticmethod
    @hookimpl
    def asgi_wrapper(datasette: Datasette) -> Callable[[Any], Any]:
        return _with_headers

    @staticmethod
    @hookimpl
    def register_routes(datasette: Datasette) -> list[tuple[str, Any]]:
        return [(r"^/-/report$", _report)]

    @staticmethod
    @hookimpl
    def forbidden(datasette: Datasette, request: Any, message: str) -> Response | None:
        if request.actor is None and datasette.plugin_config("datasette-auth-passwords"):
            return Response.redirect(datasette.urls.path("/-/login"))
        return None


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


LOGIN_PATH = "/-/login"
LOGINS_PER_MINUTE = 10  # login attempts per client address
LOGINS_PER_MINUTE_IN_ALL = 30  # from all addresses together
_logins: dict[str, list[float]] = {}  # client address -> times of its recent attempts
_login_lock: asyncio.Lock | None = None


def _login_allowed(client: str, now: float) -> bool:
    """At most `LOGINS_PER_MINUTE` login attempts per client address (an
    IPv6 address by its /64), and `LOGINS_PER_MINUTE_IN_ALL` from all of
    them: each attempt costs a password hash on the server."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(client).version == 6:
            client = str(ipaddress.ip_network(f"{client}/64", strict=False))
    everyone = [t for t in _logins.get("*", []) if now - t < 60.0]
    if len(everyone) >= LOGINS_PER_MINUTE_IN_ALL:
        _logins["*"] = everyone
        return False
    recent = [t for t in _logins.get(client, []) if now - t < 60.0]
    if len(_logins) > 10_000:  # many addresses: forget the old ones
        for old in [key for key, times in _logins.items() if now - times[-1] >= 60.0]:
            del _logins[old]
    if len(recent) >= LOGINS_PER_MINUTE:
        _logins[client] = recent
        return False
    _logins[client] = [*recent, now]
    _logins["*"] = [*everyone, now]
    return True


def _cookie(value: bytes, https: bool) -> bytes:
    """The login cookie kept from scripts, and over HTTPS from plain HTTP."""
    flags = value.lower()
    if b"httponly" not in flags:
        value += b"; HttpOnly"
    if https and b"secure" not in flags:
        value += b"; Secure"
    return value


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class _CsvGuard:
    """Datasette's CSV, rewritten as it streams so that a spreadsheet runs no
    cell as a formula: a text cell starting with ``=``, ``+``, ``-``, ``@``, a
    tab or a carriage return gets a leading ``'`` (the rule of
    `reports.csvsafe`, here without the column types: a plain number stays as
    it is). Names and header values come from registries and hostile servers.
    """

    def __init__(self) -> None:
        self._decode = codecs.getincrementaldecoder("utf-8")("replace")
        self._rest = ""

    def feed(self, data: bytes, final: bool) -> bytes:
        from reports.csvsafe import FORMULA_START

        text = self._rest + self._decode.decode(data, final)
        cut = len(text) if final else text.rfind("\n") + 1
        while cut > 0 and text.count('"', 0, cut) % 2:  # a line break inside quotes
            cut = text.rfind("\n", 0, cut - 1) + 1
        whole, self._rest = text[:cut], text[cut:]
        if not whole:
            return b""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        for record in csv.reader(io.StringIO(whole, newline="")):
            writer.writerow([f"'{cell}" if cell.startswith(FORMULA_START)
                             and not _NUMBER.fullmatch(cell) else cell for cell in record])
        return out.getvalue().encode("utf-8")


def _with_headers(app: ASGIApp) -> ASGIApp:
    """The security headers on every response, and the login's guards.

    There is no HTTP Basic login here: an ``Authorization`` header is dropped
    (datasette-auth-passwords would hash its password on the event loop for
    any request). The password tool, which hashes passwords for anyone, is
    not served (`datasette hash-password` makes the hash). Login attempts are
    limited per client address and in all (each costs a password hash on the
    event loop), and handled one at a time.
    """
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        global _login_lock
        https = scope.get("scheme") == "https"
        scope = dict(scope)
        scope["headers"] = [(n, v) for n, v in scope.get("headers", [])
                            if n.lower() != b"authorization"]

        path = scope.get("path", "")
        csv_path = path.endswith(".csv")
        guard: _CsvGuard | None = None

        async def send_with_headers(message: Message) -> None:
            nonlocal guard
            if message["type"] == "http.response.start":
                names = {name for name, _ in HEADERS}
                kind = dict(message.get("headers", [])).get(b"content-type", b"")
                if (csv_path and message.get("status") == 200
                        and kind.startswith((b"text/csv", b"text/plain"))):
                    guard = _CsvGuard()  # the CSV itself, not an error page
                    names.add(b"content-length")  # the body changes length
                headers = [(n, _cookie(v, https) if n.lower() == b"set-cookie" else v)
                           for n, v in message.get("headers", []) if n.lower() not in names]
                message["headers"] = headers + HEADERS
            elif message["type"] == "http.response.body" and guard is not None:
                more = message.get("more_body", False)
                message = {**message, "body": guard.feed(message.get("body", b""), not more)}
            await send(message)

        if path == "/-/password-tool":
            await Response.text("Not found", status=404).asgi_send(send_with_headers)
            return
        if path == LOGIN_PATH and scope.get("method") == "POST":
            client = (scope.get("client") or ("?", 0))[0]
            if not _login_allowed(client, time.monotonic()):
                await Response.text("Too many login attempts: wait a minute.",
                                    status=429).asgi_send(send_with_headers)
                return
            if _login_lock is None:
                _login_lock = asyncio.Lock()
            async with _login_lock:
                await app(scope, receive, send_with_headers)
            return
        await app(scope, receive, send_with_headers)

    return wrapped


def register_plugin() -> None:
    """Register the plugin with Datasette's plugin manager, once per process."""
    if pm.get_plugin(PLUGIN_NAME) is None:
        pm.register(_Plugin, name=PLUGIN_NAME)


def _is_snapshot(path: Path) -> bool:
    """True for a file `hostwatch export sqlite` wrote, False for a hostwatch
    store; a `ServeError` for any other file (nothing is written to it)."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro",
                                                uri=True)) as conn:
            names = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise ServeError(f"{path} is not a SQLite database: {exc}") from exc
    if "snapshot_info" in names and "cases" not in names:
        return True
    if {"alembic_version", "cases"} <= names:
        return False
    raise ServeError(f"{path} is neither a hostwatch store nor a snapshot from "
                     "`hostwatch export sqlite`: nothing to serve")


def _source(config: Config) -> tuple[str, Path | None]:
    """("store", None) for a store to snapshot, ("snapshot", path) for a ready
    snapshot file; a `ServeError` when the store URL names neither."""
    try:
        url = make_url(config.db)
    except ArgumentError as exc:
        raise ServeError(f"bad store URL {config.db!r}: {exc}") from exc
    if url.get_backend_name() != "sqlite":
        return "store", None
    if not url.database or url.database == ":memory:":
        raise ServeError("serve needs a SQLite file or a PostgreSQL store, "
                         "not an in-memory store")
    path = Path(url.database).expanduser()
    if not path.is_file():
        raise ServeError(f"no store at {path}: nothing to serve")
    return ("snapshot", path) if _is_snapshot(path) else ("store", None)


def _exported_at(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro",
                                            uri=True)) as conn:
        row = conn.execute(
            "SELECT value FROM snapshot_info WHERE key = 'exported_at'").fetchone()
    return str(row[0])[:19] if row else "an unknown time"


# What tells a snapshot is out of date: the newest row of each table the
# views read, and what changes in place: the cases' states, attribution of
# record and checks counted (update_states, enrichment, a re-import), the
# runs' health (a suspect run), the hosters' last update. One indexed look
# per table, and one pass over the cases.
_FINGERPRINT = text(
    "SELECT (SELECT MAX(id) FROM cases), (SELECT MAX(id) FROM checks), "
    "(SELECT MAX(id) FROM attributions), (SELECT MAX(id) FROM notices), "
    "(SELECT MAX(id) FROM orders), (SELECT MAX(id) FROM hosters), "
    "(SELECT COUNT(*) FROM hosters), (SELECT MAX(updated_at) FROM hosters), "
    "(SELECT MAX(id) FROM crawl_runs), "
    "(SELECT COUNT(*) FROM crawl_runs WHERE health IS NULL OR health <> 'healthy'), "
    "(SELECT SUM(LENGTH(state) * (id % 7919)) FROM cases), "
    "(SELECT SUM(COALESCE(attribution_id, 0)) FROM cases), "
    "(SELECT SUM(check_count + reappearances) FROM cases), "
    "(SELECT COUNT(*) FROM cases WHERE removed_at IS NOT NULL)")


class _Stopping(Exception):
    """A snapshot being written when the server stops: abandoned."""


@dataclass
class _Instance:
    """One Datasette instance on one snapshot file, and the requests it serves."""

    datasette: Datasette
    path: Path
    app: ASGIApp
    busy: int = 0  # requests in flight


@dataclass
class Served:
    """The Datasette instance in use and how it is kept up to date.

    ``hostwatch`` is the store (a `hostwatch.api.Hostwatch`) when a store is
    served: its snapshot is rewritten when the store changes (asked every
    ``refresh`` seconds; 0 never) or grows older than an hour, and its hoster
    report is at ``/-/report``. None when a ready snapshot file is served.
    """

    config: Config
    snapshot: Path
    hostwatch: Any = None
    refresh: float = REFRESH_SECONDS
    folder: Path | None = None
    secret: str = field(default_factory=lambda: secrets.token_hex(32))
    current: _Instance | None = None
    fingerprint: Any = None  # the store's when the snapshot was written
    seen: Any = None  # the store's at the last look
    built: float = field(default_factory=time.monotonic)
    build_seconds: float = 0.0
    generation: int = 0  # snapshots in use so far, less one
    written: int = 0  # snapshot files written: each has a name of its own
    grace: float = GRACE_SECONDS
    stopping: threading.Event = field(default_factory=threading.Event)
    _report_cache: tuple[int, str] | None = None
    _report_lock: asyncio.Lock | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def datasette(self) -> Datasette | None:
        return self.current.datasette if self.current is not None else None

    # -- the Datasette instance ----------------------------------------------

    def instance(self, path: Path) -> _Instance:
        """A Datasette instance on the snapshot file ``path``."""
        register_plugin()
        where = (f"the store {self.hostwatch.store.safe_url}" if self.hostwatch is not None
                 else f"the snapshot file {path.name}")
        description = (f"The analyst views of {where} as of {_exported_at(path)} "
                       "UTC (docs/analysts.md). Reported URLs are shown defanged; the "
                       "store's own tables are not served.")
        metadata: dict[str, Any] = {"title": "hostwatch",
                                    "databases": {DATABASE: database_metadata(description)}}
        if self.config.serve_password_hash:
            # Through $env, so the hash never shows in /-/metadata.
            if os.environ.get(PASSWORD_HASH_ENV) != self.config.serve_password_hash:
                os.environ[PASSWORD_HASH_ENV] = self.config.serve_password_hash
            metadata["allow"] = {"id": USERNAME}  # no anonymous view-instance
            metadata["plugins"] = {"datasette-auth-passwords": {
                f"{USERNAME}_password_hash": {"$env": PASSWORD_HASH_ENV}}}
        datasette = Datasette(metadata=metadata, template_dir=str(TEMPLATES),
                              secret=self.secret,  # logins outlive a new snapshot
                              settings={"allow_download": False,
                                        "sql_time_limit_ms": SQL_TIME_LIMIT_MS,
                                        "facet_time_limit_ms": FACET_TIME_LIMIT_MS,
                                        "suggest_facets": False})
        datasette.add_database(Database(datasette, path=str(path), is_mutable=False),
                               name=DATABASE)
        if "_memory" in datasette.databases:  # Datasette adds it to an empty instance
            datasette.remove_database("_memory")
        datasette.hostwatch_served = self  # type: ignore[attr-defined]
        return _Instance(datasette, path, datasette.app())

    # -- keeping the snapshot up to date ---------------------------------------

    def store_fingerprint(self) -> tuple[Any, ...]:
        with self.hostwatch.store.engine.connect() as conn:
            return tuple(conn.execute(_FINGERPRINT).one())

    def write(self, progress: Callable[[str, int], None] | None = None) -> Path:
        """Write a new snapshot of the store into the folder; returns its path.
        ``progress(view, rows)`` as for `store.snapshot.write_snapshot`; the
        writing stops (`_Stopping`) within seconds once the server stops."""
        from store.snapshot import write_snapshot

        def watched(view: str, rows: int) -> None:
            if self.stopping.is_set():
                raise _Stopping("the server is stopping")
            if progress is not None:
                progress(view, rows)

        assert self.folder is not None and self.hostwatch is not None
        started = time.monotonic()
        fingerprint = self.store_fingerprint()  # before: a change while writing counts
        self.written += 1
        path = self.folder / f"analyst-{self.written}.db"
        write_snapshot(self.hostwatch.store.engine, path, progress=watched)
        self.fingerprint = fingerprint  # only once written: a failure is retried
        self.build_seconds = time.monotonic() - started
        return path

    def due(self) -> bool:
        """Whether to write a new snapshot now.

        When the store has changed since the snapshot and then stood still
        for one look (a crawl or an import has finished), or when the
        snapshot is an hour old ("now" moves pending deadlines and days
        open). Never sooner than `PACE` times the last snapshot's writing
        time after it, so that a large store is not read over and over
        while a night's crawl writes to it.
        """
        age = time.monotonic() - self.built
        if age < PACE * self.build_seconds:
            return False
        current = self.store_fingerprint()
        previous, self.seen = self.seen, current
        if current == self.fingerprint:
            return age >= MAX_AGE_SECONDS
        return current == previous or age >= MAX_AGE_SECONDS

    async def refresh_once(self) -> bool:
        """Replace the snapshot when it is due; True when it was replaced."""
        if self.hostwatch is None or not await asyncio.to_thread(self.due):
            return False
        path = await asyncio.to_thread(self.write)
        try:
            new = self.instance(path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        old, self.current = self.current, new
        self.snapshot, self.built = path, time.monotonic()
        self.generation += 1
        if old is not None:
            asyncio.get_running_loop().call_later(self.grace, self._retire, old)
        log.info("snapshot %d written: %s", self.generation, path)
        return True

    def _retire(self, old: _Instance) -> None:
        """Close an old instance and remove its file, once no request is
        still served from it (streamed CSV exports may run long)."""
        if old.busy:
            asyncio.get_running_loop().call_later(self.grace, self._retire, old)
            return
        for database in old.datasette.databases.values():
            with contextlib.suppress(Exception):
                database.close()
        if old.datasette.executor is not None:
            old.datasette.executor.shutdown(wait=False)
        old.path.unlink(missing_ok=True)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            try:
                await self.refresh_once()
            except Exception as exc:  # keep serving the last snapshot
                if self.stopping.is_set():
                    return
                log.warning("could not refresh the snapshot of the store: %s: %s",
                            type(exc).__name__, exc)

    # -- the hoster report -----------------------------------------------------

    async def report_html(self) -> str:
        """The hoster report of the store, computed once per snapshot."""
        if self._report_lock is None:
            self._report_lock = asyncio.Lock()
        async with self._report_lock:
            generation = self.generation
            if self._report_cache is None or self._report_cache[0] != generation:
                from reports.html import render_html

                built = await asyncio.to_thread(self.hostwatch.hoster_report)
                self._report_cache = (generation, render_html(built))
            return self._report_cache[1]

    # -- ASGI ------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        serving = self.current
        assert serving is not None
        serving.busy += 1
        try:
            await serving.app(scope, receive, send)
        finally:
            serving.busy -= 1

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.hostwatch is not None and self.refresh > 0:
                    self._task = asyncio.create_task(self._refresh_loop())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.stopping.set()  # a snapshot being written stops within seconds
                if self._task is not None:
                    self._task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._task
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close(self) -> None:
        """Release the store and remove the snapshots written."""
        self.stopping.set()
        if self.hostwatch is not None:
            self.hostwatch.close()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def open_served(config: Config, *, refresh: float = REFRESH_SECONDS,
                progress: Callable[[str], None] | None = None) -> Served:
    """What `serve` serves: a first snapshot of the store (or the ready
    snapshot file) and its Datasette instance. Close it when done."""
    kind, path = _source(config)
    if kind == "snapshot":
        assert path is not None
        served = Served(config, path, refresh=0)
        served.current = served.instance(path)
        return served
    from hostwatch.api import Hostwatch

    try:
        store = Hostwatch(config)
    except HostwatchError as exc:
        raise ServeError(f"cannot open the store: {exc}") from exc
    folder = Path(tempfile.mkdtemp(prefix="hostwatch-serve-"))
    served = Served(config, folder / "analyst-0.db", hostwatch=store, refresh=refresh,
                    folder=folder)
    try:
        if progress:
            progress("Writing a snapshot of the analyst views...")
        started = time.monotonic()
        line = ProgressLine() if progress and config.progress else None

        def views(view: str, rows: int) -> None:
            assert line is not None
            line.update(progress_text(view, rows, line.elapsed()))

        try:
            served.snapshot = served.write(views if line is not None else None)
        finally:
            if line is not None:
                line.close()
        served.built = time.monotonic()
        if progress:
            progress(f"Snapshot written in {served.built - started:.1f} s.")
        served.current = served.instance(served.snapshot)
    except BaseException:
        served.close()
        raise
    return served


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


_HASH = re.compile(r"pbkdf2_sha256\$[1-9]\d*\$[^$\s]+\$[A-Za-z0-9+/]+={0,2}")


def check_host(host: str, config: Config) -> None:
    """Refuse a host beyond loopback unless every page needs a login, and a
    login whose password hash no one could log in with."""
    hashed = config.serve_password_hash
    if hashed and not _HASH.fullmatch(hashed.strip()):
        raise ServeError(
            f"{PASSWORD_HASH_ENV} is not a password hash: it must be what `datasette "
            "hash-password` prints (pbkdf2_sha256$ITERATIONS$SALT$HASH), never the "
            "password itself")
    if not _loopback(host) and not hashed:
        raise ServeError(
            f"refusing to serve on {host}: beyond loopback (127.0.0.1, ::1) every page "
            f"must need a login; set {PASSWORD_HASH_ENV} to a password hash "
            "(datasette hash-password) first")


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _check_tls(cert: Path | None, key: Path | None) -> None:
    """Both files, readable, a certificate and its unencrypted key; else a
    `ServeError` before anything is bound."""
    import ssl

    if cert is None and key is None:
        return
    if cert is None or key is None:
        raise ServeError("HTTPS needs both --tls-cert and --tls-key")
    for what, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not path.exists():
            raise ServeError(f"{what} {path}: no such file")
        if not path.is_file():
            raise ServeError(f"{what} {path}: not a file")
    try:
        if b"ENCRYPTED" in key.read_bytes()[:4096]:
            raise ServeError(f"--tls-key {key} is encrypted: give the key without a "
                             "pass phrase (openssl pkey -in KEY -out PLAIN)")
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            cert, key, password=lambda: b"")  # never a pass phrase prompt
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ServeError(f"cannot use --tls-cert {cert} with --tls-key {key}: they are "
                         f"not a PEM certificate and its private key ({exc})") from exc


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def serve(config: Config, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          refresh: float = REFRESH_SECONDS, tls_cert: Path | None = None,
          tls_key: Path | None = None, announce: Callable[[str], None] | None = None,
          progress: Callable[[str], None] | None = None) -> None:
    """Serve the store's analyst views until interrupted (Ctrl-C, SIGTERM,
    SIGHUP); ``announce`` gets the URL to open, ``progress`` what happens
    before (and warnings).

    Every refusal (no file, a host beyond loopback without a login, a bad
    password hash, a bad TLS pair) happens before anything is bound; a port
    in use, before the snapshot is written. The snapshots are removed however
    it stops, short of SIGKILL.
    """
    import uvicorn

    def stdout(line: str) -> None:
        print(line, file=sys.stdout, flush=True)

    say = progress or stdout
    check_host(host, config)
    _check_tls(tls_cert, tls_key)
    _source(config)  # a file that is neither store nor snapshot: refused now
    if tls_cert is None and not _loopback(host):
        say(f"Warning: plain HTTP on {host}: passwords and figures cross the network "
            "unencrypted; give --tls-cert and --tls-key, or put a TLS proxy in front.")
    sock = _listen(host, port)
    # uvicorn stops on SIGTERM and then raises it again: exit through the
    # finally below, so the snapshots are removed (on SIGHUP too).
    previous = {signum: signal.signal(signum, _exit_on_signal)
                for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        served = open_served(config, refresh=refresh, progress=say)
        try:
            bound_port = sock.getsockname()[1]
            shown = f"[{host.strip('[]')}]" if sock.family == socket.AF_INET6 else host
            scheme = "https" if tls_cert is not None else "http"
            (announce or stdout)(f"{scheme}://{shown}:{bound_port}/")
            server = uvicorn.Server(uvicorn.Config(
                served, log_level="warning", lifespan="on",
                ssl_certfile=str(tls_cert) if tls_cert else None,
                ssl_keyfile=str(tls_key) if tls_key else None))
            server.run(sockets=[sock])
        finally:
            served.close()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sock.close()
