"""`hostwatch serve`: the store in Datasette, read-only, for analysts (#15).

Datasette turns every cell that looks like a URL into a link; here every
reported URL is one click away from being opened. The plugin below
(registered programmatically, not through an entry point) takes over the
rendering of every string cell in every table, view, row page and SQL query
result: escaped plain text, URLs defanged (`kernel.defang`), never an anchor,
image or frame. Its ASGI wrapper adds a Content-Security-Policy under which a
page loads nothing but the UI's own assets, and no referrer ever leaves.
The database's metadata adds canned queries on the analyst views (`QUERIES`)
and the facets each view opens with (`FACETS`); a case id in a view or a
query result links to the `case_history` query.

The store's SQLite file is opened the way Datasette opens a mutable file:
``?mode=ro``. A PostgreSQL store is not served: its `hostwatch export sqlite` snapshot is.
Authentication is datasette-auth-passwords with one account, ``analyst``,
whose password hash is ``HOSTWATCH_SERVE_PASSWORD_HASH``; when it is set every
page needs a login, and only then may the server listen beyond loopback.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import markupsafe
from datasette import hookimpl
from datasette.app import Datasette
from datasette.plugins import pm
from datasette.utils import tilde_encode
from datasette.utils.asgi import Response
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from kernel.config import KEYS, Config
from kernel.defang import defang
from kernel.errors import HostwatchError

__all__ = ["CSP", "DEFAULT_PORT", "FACETS", "QUERIES", "USERNAME", "ServeError", "app",
           "check_host", "database_metadata", "register_plugin", "serve", "sqlite_path"]

DEFAULT_PORT = 8001
USERNAME = "analyst"  # the one account of datasette-auth-passwords
PASSWORD_HASH_ENV = KEYS["serve_password_hash"].env
PLUGIN_NAME = "hostwatch-serve"

# Only the UI's own assets; Datasette's pages use inline scripts and styles.
CSP = ("default-src 'self'; img-src 'self' data:; script-src 'self' 'unsafe-inline'; "
       "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-src 'none'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'")
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
        "description": "Notice and order deadlines due between :since (inclusive) and :until "
                       "(exclusive; ISO dates, either may be empty), per regime and month: "
                       "how many were due, met, breached, undecided or pending.",
        "sql": "SELECT regime, substr(due_at, 1, 7) AS month, COUNT(*) AS deadlines,\n"
               "       SUM(outcome = 'breached') AS breached, SUM(outcome = 'met') AS met,\n"
               "       SUM(outcome = 'already_gone') AS already_gone,\n"
               "       SUM(outcome = 'undecided') AS undecided,\n"
               "       SUM(outcome = 'pending') AS pending\n"
               "FROM analyst_deadlines\n"
               "WHERE (:since = '' OR due_at >= :since) AND (:until = '' OR due_at < :until)\n"
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


def database_metadata() -> dict[str, Any]:
    """Datasette metadata for the store's database: canned queries, facets."""
    return {"queries": {name: dict(query) for name, query in QUERIES.items()},
            "tables": {view: {"facets": list(facets)} for view, facets in FACETS.items()}}


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
    text = value if _PLAIN.fullmatch(value) else defang(value)
    return markupsafe.Markup(markupsafe.escape(text))


async def _foreign_key_link(value: dict[str, Any], column: str, table: str, database: str,
                            datasette: Datasette) -> markupsafe.Markup | None:
    """An expanded foreign key: Datasette's link to the other row (on this
    server: how a check leads to its case), its label shown as a cell is."""
    keys = await datasette.get_database(database).foreign_keys_for_table(table)
    other = next((key["other_table"] for key in keys if key["column"] == column), None)
    label = cell_text(value)
    if other is None:
        return label
    href = datasette.urls.row(database, other, tilde_encode(str(value.get("value"))))
    return markupsafe.Markup('<a href="{}">{}</a>').format(href, label)


def _facet_label(value: Any) -> markupsafe.Markup:
    """A facet value as the plugin shows a cell ("-" when empty)."""
    if value in (None, ""):
        return markupsafe.Markup("-")
    shown = cell_text(value)
    return shown if shown is not None else markupsafe.Markup(markupsafe.escape(str(value)))


# Datasette's templates the plugin overrides (the facet list: its values too).
TEMPLATES = Path(__file__).with_name("serve_templates")


class _Plugin:
    """The Datasette hooks (a namespace for pluggy; `register_plugin` registers it)."""

    @staticmethod
    @hookimpl(tryfirst=True)
    def render_cell(value: Any, column: str, table: str | None, database: str,
                    datasette: Datasette) -> Any:
        if isinstance(value, dict) and table:
            return _foreign_key_link(value, column, table, database, datasette)
        if (column == "case_id" and isinstance(value, int) and not isinstance(value, bool)
                and (table is None or table.startswith("analyst_"))):
            # A case id in an analyst view or a query result leads to its history.
            href = datasette.urls.query(database, "case_history") + f"?case={value}"
            return markupsafe.Markup('<a href="{}">{}</a>').format(href, value)
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
    def forbidden(datasette: Datasette, request: Any, message: str) -> Response | None:
        if request.actor is None and datasette.plugin_config("datasette-auth-passwords"):
            return Response.redirect(datasette.urls.path("/-/login"))
        return None


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _with_headers(app: Callable[[Scope, Receive, Send], Awaitable[None]]
                  ) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in HEADERS}
                headers = [(n, v) for n, v in message.get("headers", [])
                           if n.lower() not in names]
                message["headers"] = headers + HEADERS
            await send(message)

        await app(scope, receive, send_with_headers)

    return wrapped


def register_plugin() -> None:
    """Register the plugin with Datasette's plugin manager, once per process."""
    if pm.get_plugin(PLUGIN_NAME) is None:
        pm.register(_Plugin, name=PLUGIN_NAME)


def sqlite_path(config: Config) -> Path:
    """The store's SQLite file, or a `ServeError` saying why it cannot be served."""
    try:
        url = make_url(config.db)
    except ArgumentError as exc:
        raise ServeError(f"bad store URL {config.db!r}: {exc}") from exc
    if url.get_backend_name() != "sqlite":
        raise ServeError(
            f"serve reads a SQLite file and the store is {url.get_backend_name()}: "
            "write a snapshot of its analyst views with `hostwatch export sqlite PATH` "
            "and serve that (hostwatch --db sqlite:///PATH serve)")
    if not url.database or url.database == ":memory:":
        raise ServeError("serve needs a SQLite file, not an in-memory store")
    path = Path(url.database).expanduser()
    if not path.is_file():
        raise ServeError(f"no store at {path}: nothing to serve")
    return path


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def check_host(host: str, config: Config) -> None:
    """Refuse a host beyond loopback unless every page needs a login."""
    if not _loopback(host) and not config.serve_password_hash:
        raise ServeError(
            f"refusing to serve on {host}: beyond loopback (127.0.0.1, ::1) every page "
            f"must need a login; set {PASSWORD_HASH_ENV} to a password hash "
            "(datasette hash-password) first")


def app(config: Config) -> Datasette:
    """The Datasette instance on the store, read-only, with the plugin registered."""
    path = sqlite_path(config)
    register_plugin()
    metadata: dict[str, Any] = {"title": "hostwatch",
                                "databases": {path.stem: database_metadata()}}
    if config.serve_password_hash:
        # Through $env, so the hash never shows in /-/metadata.
        if os.environ.get(PASSWORD_HASH_ENV) != config.serve_password_hash:
            os.environ[PASSWORD_HASH_ENV] = config.serve_password_hash
        metadata["allow"] = {"id": USERNAME}  # no anonymous view-instance
        metadata["plugins"] = {"datasette-auth-passwords": {
            f"{USERNAME}_password_hash": {"$env": PASSWORD_HASH_ENV}}}
    return Datasette(files=[str(path)], metadata=metadata, template_dir=str(TEMPLATES),
                     settings={"allow_download": False})


def serve(config: Config, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          announce: Callable[[str], None] | None = None) -> None:
    """Serve the store until interrupted (Ctrl-C); ``announce`` gets the URL to open.

    Every refusal (PostgreSQL, no file, a host beyond loopback without a
    login) happens before anything is bound.
    """
    import uvicorn

    check_host(host, config)
    datasette = app(config)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(128)
    bound_port = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if family == socket.AF_INET6 else host
    (announce or (lambda line: print(line, file=sys.stdout, flush=True)))(
        f"http://{shown}:{bound_port}/")
    server = uvicorn.Server(uvicorn.Config(datasette.app(), log_level="warning",
                                           lifespan="on"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
