"""How long the queries behind `hostwatch serve`'s analyst pages take (#15).

    .venv/bin/python benchmarks/serve_views.py [--store URL] [--cases N]
                                               [--repeat R] [--timeout S]
                                               [--skip-sql] [--http]
                                               [--setting NAME=VALUE]
                                               [--json FILE]

`hostwatch serve` runs Datasette on the store's SQLite file, and Datasette
stops a query after ``sql_time_limit_ms`` (default 1000 ms) and a facet after
``facet_time_limit_ms`` (default 200 ms). This measures, on a large store,
what each analyst page and canned query asks of SQLite, to choose those
limits:

1. opens the store read-only (``file:...?mode=ro``, as Datasette opens a
   mutable file) with the standard library's sqlite3; by default the
   synthetic SQLite store of benchmarks/reports.py (``--cases``, default
   1,000,000; make it with ``reports.py --stores sqlite --no-reports``);
2. for each analyst view, times the SQL Datasette 0.65 runs for the view's
   page, in Datasette's own shapes: ``select count(*) from VIEW`` (the row
   count; with suggested facets on, Datasette also runs it as
   ``count(*) from (select ...)`` and a time-out there fails the page), the
   first page ``select COLUMNS from VIEW limit 101`` (a view has no default
   order), and each facet of ``hostwatch.serve.FACETS``;
3. times each canned query of ``hostwatch.serve.QUERIES`` with plausible
   parameters: a case that has notices and orders, ``since``/``until`` empty
   and one month;
4. with ``--http``, also starts the store's Datasette the way `hostwatch
   serve` does, on 127.0.0.1 (port 0), and times one request per view page
   and per canned query (the ``.json`` of the page: the same queries as its
   HTML; the facets that timed out are those missing from it); each view
   page also with ``_nosuggest=1`` (no suggested facets). ``--setting
   NAME=VALUE`` runs it with other Datasette settings, to try limits before
   changing hostwatch/serve.py; ``--skip-sql`` leaves out steps 2 and 3.

Each query runs ``--repeat`` times (default 1) on one connection, its rows
read as Datasette reads them (at most max_returned_rows + 1); one that runs
longer than ``--timeout`` seconds (default 300) is interrupted and shown as
">". Prints a table (seconds against the default limits) and writes every
figure to benchmarks/.cache/serve-views-results.json (``--json`` elsewhere).
Nothing leaves 127.0.0.1; no row is written anywhere. Exit status 0; 1 when
the store is missing or lacks the analyst views.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Run as a script, benchmarks/ comes first on sys.path, and its enrichment.py and
# reports.py would hide the packages of those names (even with REPO on PYTHONPATH).
sys.path[:] = [str(REPO), *(entry for entry in sys.path
                            if Path(entry).resolve() not in (REPO, REPO / "benchmarks"))]

from sqlalchemy.engine import make_url  # noqa: E402

from hostwatch.serve import FACETS, QUERIES  # noqa: E402

CACHE = REPO / "benchmarks" / ".cache"
# Migration 0013's views, in the order docs/analysts.md lists them.
VIEWS = ("analyst_cases", "analyst_checks", "analyst_deadlines", "analyst_notices",
         "analyst_orders", "analyst_case_durations", "analyst_hosters")
SQL_LIMIT_MS = 1000  # Datasette 0.65's defaults, which `hostwatch serve` keeps
FACET_LIMIT_MS = 200
PAGE_SIZE = 100  # Datasette's page_size; it asks for one row more
FACET_SIZE = 30  # Datasette's default_facet_size; it asks for one value more
MAX_ROWS = 1000  # Datasette's max_returned_rows: it reads no further than one row more
HTTP_TIMEOUT = 600.0


@dataclass
class Timing:
    kind: str  # count, page, facet, query
    target: str  # the view or the canned query
    detail: str  # the facet's column, the query's parameters
    limit_ms: int  # the Datasette limit the query runs under
    seconds: list[float] = field(default_factory=list)
    rows: int | None = None
    timed_out: bool = False
    error: str = ""

    @property
    def best(self) -> float | None:
        return min(self.seconds) if self.seconds else None


def default_store(cases: int, checks_per_case: int, seed: int) -> str:
    """The SQLite store benchmarks/reports.py makes for these figures."""
    return f"sqlite:///{CACHE / f'reports-{cases}x{checks_per_case}-s{seed}.db'}"


def store_path(url: str) -> Path:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise SystemExit(f"--store: a SQLite file, as `hostwatch serve` reads ({url})")
    path = Path(parsed.database)
    if not path.is_file():
        raise SystemExit(f"no store at {path}: make it with `.venv/bin/python "
                         "benchmarks/reports.py --stores sqlite --no-reports` "
                         "(or pass --store)")
    return path


def connect(path: Path) -> sqlite3.Connection:
    """The file read-only, as Datasette opens a mutable database."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def quote(name: str) -> str:
    """Datasette's escape_sqlite for the names used here."""
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) else f"[{name}]"


def columns(conn: sqlite3.Connection, view: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_xinfo({quote(view)})")]


def view_sql(conn: sqlite3.Connection, view: str) -> dict[str, str]:
    """The SQL Datasette 0.65's table view runs for VIEW's page (no filter)."""
    cols = ", ".join(quote(c) for c in columns(conn, view))
    inner = f"select {cols} from {quote(view)} "
    queries = {"count": f"select count(*) from {quote(view)} ",
               "page": f"{inner}limit {PAGE_SIZE + 1}"}
    for column in FACETS.get(view, []):
        col = quote(column)
        queries[f"facet {column}"] = (
            f"select {col} as value, count(*) as count from ( {inner} ) "
            f"where {col} is not null group by {col} order by count desc, value "
            f"limit {FACET_SIZE + 1}")
    return queries


def query_parameters(conn: sqlite3.Connection) -> dict[str, list[dict[str, str]]]:
    """Plausible parameters for each canned query (one run per dict)."""
    case = conn.execute("SELECT o.case_id FROM orders o JOIN notices n ON n.case_id = o.case_id "
                        "ORDER BY o.id LIMIT 1").fetchone()
    if case is None:
        case = conn.execute("SELECT id FROM cases ORDER BY id LIMIT 1").fetchone()
    latest = conn.execute("SELECT MAX(due_at) FROM notices").fetchone()[0] or "2025-12-31"
    year, month = int(latest[:4]), int(latest[5:7])
    # The last whole month before the latest deadline.
    until = f"{year:04d}-{month:02d}-01"
    year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    since = f"{year:04d}-{month:02d}-01"
    runs: dict[str, list[dict[str, str]]] = {}
    for name, query in QUERIES.items():
        names = sorted(set(re.findall(r"(?<!:):([a-z_]+)", query["sql"])))
        if not names:
            runs[name] = [{}]
        elif names == ["case"]:
            runs[name] = [{"case": str(case[0] if case else 1)}]
        elif names == ["since", "until"]:
            runs[name] = [{"since": "", "until": ""}, {"since": since, "until": until}]
        else:
            raise SystemExit(f"canned query {name}: no plausible values for {names}")
    return runs


def run(conn: sqlite3.Connection, sql: str, params: dict[str, str], timeout: float
        ) -> tuple[float, int | None, bool, str]:
    """(seconds, rows, interrupted, error) of one query, its rows read as
    Datasette reads them (up to one more than max_returned_rows)."""
    deadline = time.perf_counter() + timeout
    conn.set_progress_handler(lambda: int(time.perf_counter() > deadline), 10_000)
    started = time.perf_counter()
    try:
        rows = len(conn.execute(sql, params).fetchmany(MAX_ROWS + 1))
    except sqlite3.OperationalError as exc:
        seconds = time.perf_counter() - started
        if str(exc) == "interrupted":
            return seconds, None, True, ""
        return seconds, None, False, str(exc)
    finally:
        conn.set_progress_handler(None, 0)
    return time.perf_counter() - started, rows, False, ""


def measure(path: Path, repeat: int, timeout: float, log: Any = print) -> list[Timing]:
    conn = connect(path)
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master "
                                              "WHERE type = 'view'")}
    missing = [view for view in VIEWS if view not in present]
    if missing:
        raise SystemExit(f"the store lacks the analyst views {missing}: older than migration "
                         "0013? (reports.py upgrades its store in place)")
    jobs: list[tuple[Timing, str, dict[str, str]]] = []
    for view in VIEWS:
        for name, sql in view_sql(conn, view).items():
            kind, _, column = name.partition(" ")
            limit = FACET_LIMIT_MS if kind == "facet" else SQL_LIMIT_MS
            jobs.append((Timing(kind, view, column, limit), sql, {}))
    for name, runs in query_parameters(conn).items():
        for params in runs:
            detail = ", ".join(f"{k}={v!r}" for k, v in params.items())
            jobs.append((Timing("query", name, detail, SQL_LIMIT_MS), QUERIES[name]["sql"],
                         params))
    for timing, sql, params in jobs:
        for _ in range(repeat):
            seconds, rows, interrupted, error = run(conn, sql, params, timeout)
            timing.seconds.append(round(seconds, 4))
            timing.rows, timing.timed_out, timing.error = rows, interrupted, error
            if interrupted or error:
                break
        log(_row(timing))
    conn.close()
    return [timing for timing, _, _ in jobs]


def _seconds(timing: Timing) -> str:
    if timing.error:
        return "error"
    if timing.timed_out:
        return f">{timing.seconds[-1]:.0f}"
    return " / ".join(f"{s:.3f}" for s in timing.seconds)


def _row(timing: Timing) -> str:
    best = timing.best
    over = ("-" if best is None or timing.error else
            "over" if timing.timed_out or best * 1000 > timing.limit_ms else "ok")
    what = f"{timing.kind} {timing.detail}".strip()
    rows = "" if timing.rows is None else f"{timing.rows:,}"
    return (f"{timing.target:<24} {what:<40} {_seconds(timing):>22} {rows:>9} "
            f"{timing.limit_ms:>6} ms {over}")


# -- --http: one request per page through the store's Datasette ---------------------

SERVER = """
import socket, sys, uvicorn
from hostwatch.serve import app
from kernel.config import Config
config = Config.from_env(db=sys.argv[1])
ds = app(config)
for name, value in {settings}.items():  # the benchmark's --setting, in place
    ds._settings[name] = value
ds.sql_time_limit_ms = ds.setting("sql_time_limit_ms")
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
print(f"http://127.0.0.1:{{sock.getsockname()[1]}}/", flush=True)
uvicorn.Server(uvicorn.Config(ds.app(), log_level="warning", lifespan="on")).run(sockets=[sock])
"""


@dataclass
class Request:
    path: str
    status: int
    seconds: float
    count: int | None = None
    facets_timed_out: list[str] = field(default_factory=list)
    error: str = ""


def http_pages(url: str, path: Path, settings: dict[str, int], log: Any = print
               ) -> list[Request]:
    """Start the store's Datasette on 127.0.0.1 and time one .json per page."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSTWATCH_")}
    env.update(PYTHONPATH=str(REPO), HOSTWATCH_OFFLINE="1",
               HOSTWATCH_NAMESERVERS="127.0.0.1:1")
    child = subprocess.Popen([sys.executable, "-c", SERVER.format(settings=settings), url],
                             stdout=subprocess.PIPE, env=env, cwd=REPO, text=True)
    # No proxy, whatever the environment says: the server is on loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    requests: list[Request] = []
    try:
        assert child.stdout is not None
        base = child.stdout.readline().strip()
        if not base.startswith("http://127.0.0.1:"):
            raise SystemExit(f"--http: the server did not start ({base!r})")
        conn = connect(path)
        # Without suggested facets too, unless the settings switch them off.
        tails = ("", "?_nosuggest=1") if settings.get("suggest_facets", 1) else ("",)
        pages = [f"/{path.stem}/{view}.json{tail}" for view in VIEWS for tail in tails]
        for name, runs in query_parameters(conn).items():
            pages += [f"/{path.stem}/{name}.json" + (f"?{urllib.parse.urlencode(p)}" if p
                                                     else "") for p in runs]
        conn.close()
        for page in pages:
            view = page.split("/")[2].partition(".json")[0]
            requests.append(_get(opener, base.rstrip("/") + page, page, FACETS.get(view, [])))
            r = requests[-1]
            log(f"{page:<60} {r.status:>4} {r.seconds:>8.2f} s  count "
                f"{'-' if r.count is None else f'{r.count:,}'}  timed out: "
                f"{', '.join(r.facets_timed_out) or '-'} {r.error}")
    finally:
        child.terminate()
        child.wait(timeout=30)
    return requests


def _get(opener: urllib.request.OpenerDirector, url: str, page: str,
         facets: list[str]) -> Request:
    started = time.perf_counter()
    try:
        with opener.open(url, timeout=HTTP_TIMEOUT) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    seconds = time.perf_counter() - started
    try:
        data = json.loads(body)
    except ValueError:
        return Request(page, status, round(seconds, 3), error="not JSON")
    # Only these fields are kept: the figures, never a row. A facet that timed
    # out is missing from the JSON's facet_results (the HTML names it).
    shown = data.get("facet_results") or {}
    timed_out = [facet for facet in facets if facet not in shown] if status == 200 else []
    return Request(page, status, round(seconds, 3), data.get("filtered_table_rows_count"),
                   timed_out, "" if data.get("ok", True) else str(data.get("title") or "error"))


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="SQLite store URL (default: reports.py's store "
                                        "of --cases cases)")
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--checks-per-case", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each query")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="interrupt a query after this many seconds (default %(default)s)")
    parser.add_argument("--skip-sql", action="store_true", help="only the --http part")
    parser.add_argument("--http", action="store_true",
                        help="also time one request per page through Datasette on loopback")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a Datasette setting for --http (e.g. sql_time_limit_ms=5000)")
    parser.add_argument("--json", type=Path, default=CACHE / "serve-views-results.json")
    args = parser.parse_args(argv)
    settings = {}
    for item in args.setting:
        name, _, value = item.partition("=")
        if not value.isdigit():
            parser.error(f"--setting {item!r}: NAME=integer")
        settings[name] = int(value)
    url = args.store or default_store(args.cases, args.checks_per_case, args.seed)
    path = store_path(url)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=REPO).stdout.strip()
    size = path.stat().st_size
    print(f"serve views benchmark, {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; commit {commit}; "
          f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{platform.platform()}, {os.cpu_count()} CPUs; load {_load()}")
    print(f"store {path} ({size / 2**30:.2f} GiB)")
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit,
        "store": str(path), "bytes": size, "sqlite": sqlite3.sqlite_version,
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "limits_ms": {"sql_time_limit_ms": SQL_LIMIT_MS,
                      "facet_time_limit_ms": FACET_LIMIT_MS},
        "load_before": _load(), "repeat": args.repeat, "timeout": args.timeout}
    if not args.skip_sql:
        print(f"\n{'view / query':<24} {'what':<40} {'seconds':>22} {'rows':>9} {'limit':>9}")
        timings = measure(path, args.repeat, args.timeout)
        results["queries"] = [asdict(t) for t in timings]
    if args.http:
        print(f"\nthrough Datasette (settings {settings or 'as hostwatch serve sets them'}):")
        results["http"] = {"settings": settings,
                           "requests": [asdict(r) for r in http_pages(url, path, settings)]}
    results["load_after"] = _load()
    print(f"load {results['load_after']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
