"""`hostwatch crawl` and `hostwatch run`: the nightly re-check."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click
from sqlalchemy import func, select

from crawler.run import run_crawl
from hostwatch.commands.common import load_config, open_store
from kernel.config import Config
from kernel.deadlines import Regime
from kernel.model import RunHealth
from kernel.schedule import DUE_DEADLINES, DUE_NIGHTLY
from reports.deadline_cases import case_deadlines
from store import CrawlRun, Store
from store.models import Case, Check
from store.schedule import count_deadline_due

EXIT_LOCKED = 3
EXIT_INCOMPLETE = 4
EXIT_SUSPECT = 5  # the run was judged suspect: its failing checks count for nothing yet


def _report_run(store: Store, run_id: object) -> None:
    with store.session() as session:
        run = session.get(CrawlRun, run_id)
        if run is None:
            return
        seconds = ((run.finished_at or run.started_at) - run.started_at).total_seconds()
        counts = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items())) or "nothing due"
        click.echo(f"run {run.id} {run.status}: {run.checks_made} of {run.cases_due} due cases "
                   f"checked in {seconds:.1f} s ({counts})")
        if run.health == RunHealth.SUSPECT.value:
            click.echo(f"run {run.id} SUSPECT: {run.health_reason}. Its checks are kept, but "
                       "its gone and failed checks count toward no removal until a healthy "
                       "run confirms them; its cases stay due.")


def _report_deadlines(config: Config, store: Store, run_id: object) -> None:
    """The order deadlines of the cases a deadline run checked, judged now
    (the lines of `hostwatch deadlines`)."""
    from hostwatch.commands.deadlines import as_text  # a sibling command's line format

    with store.session() as session:
        ids = sorted(set(session.scalars(select(Check.case_id).where(Check.run_id == run_id))))
    if not ids:
        return
    rule = config.schedule_rule()
    for row in case_deadlines(store, datetime.now(UTC), rule, among=ids):
        if row.regime is not Regime.NOTICE_24H:
            click.echo("deadline\t" + as_text(row))


def _crawl(ctx: click.Context, limit: int | None, timeout: float | None,
           concurrency: int | None, due: str = DUE_NIGHTLY, browser: bool = False) -> Store:
    config = load_config(ctx, timeout=timeout, concurrency=concurrency)
    store = open_store(config)
    if due == DUE_DEADLINES and not _deadline_checks_pending(config, store):
        click.echo("no deadline checks due")
        return store  # without starting Scrapy: cheap enough for a cron job every minute
    stats = run_crawl(config, limit, due, browser)
    if stats.get("hostwatch/nothing_due"):
        click.echo("no deadline checks due")
        return store
    busy = stats.get("hostwatch/lock_busy")
    if busy:
        click.echo(f"hostwatch: not started: {busy}", err=True)
        sys.exit(EXIT_LOCKED)
    run_id = stats.get("hostwatch/run_id")
    if run_id is None:
        raise click.ClickException("the crawl ended before it started a run; see the log above")
    _report_run(store, run_id)
    if due == DUE_DEADLINES:
        _report_deadlines(config, store, run_id)
    failed = stats.get("hostwatch/store_error")
    if failed:
        raise click.ClickException(f"checks could not be written, crawl stopped: {failed}")
    with store.session() as session:
        run = session.get(CrawlRun, run_id)
    if run is not None and run.health == RunHealth.SUSPECT.value:
        click.echo(f"hostwatch: run {run_id} is suspect ({run.health_reason}); check the "
                   "vantage point (resolver, uplink) and run again", err=True)
        sys.exit(EXIT_SUSPECT)
    if run is not None and run.status != "finished":
        click.echo(f"hostwatch: run {run_id} did not finish ({run.status}); the next run "
                   "checks the cases it did not reach", err=True)
        sys.exit(EXIT_INCOMPLETE)
    return store


def _deadline_checks_pending(config: Config, store: Store) -> bool:
    rule = config.schedule_rule()
    with store.session() as session:
        return count_deadline_due(session, datetime.now(UTC), rule) > 0


_limit = click.option("--limit", type=click.IntRange(min=1), default=None,
                      help="Check at most this many due cases.")
_timeout = click.option("--timeout", type=click.FloatRange(min=0.1), default=None,
                        help="Seconds per fetch (default $HOSTWATCH_TIMEOUT or 30).")
_concurrency = click.option("--concurrency", type=click.IntRange(min=1), default=None,
                            help="Requests in flight (default $HOSTWATCH_CONCURRENCY or 64).")


_browser = click.option("--browser", is_flag=True,
                        help="Check every case in the browser (Chromium), not by a plain GET.")


@click.command("crawl")
@click.option("--due", "deadlines", is_flag=True,
              help="Make only the deadline checks that are due (removal orders), nothing else.")
@_browser
@_limit
@_timeout
@_concurrency
@click.pass_context
def crawl(ctx: click.Context, deadlines: bool, browser: bool, limit: int | None,
          timeout: float | None, concurrency: int | None) -> None:
    """Re-check every due case over HTTP, once.

    Pages that need a browser are checked in Chromium (method "browser"):
    hosts your HOSTWATCH_BROWSER_RULES file marks "always", and pages whose
    plain GET returns an HTML shell (scripts, no media); --browser sends every
    case there. The browser loads no image, video or font: the media a page
    shows is fetched over HTTP, hashed in memory and dropped.

    A case is due when its last check is older than HOSTWATCH_RECHECK_HOURS
    (removed cases stay due for HOSTWATCH_WATCH_REMOVED_DAYS, to see
    reappearances). Response bodies are hashed in memory and dropped.

    The control URLs (HOSTWATCH_CONTROL_URLS) are fetched before the first
    case and after the last; a run is suspect when one is not served, or
    when an anomalous share of its cases fails at network level at once
    (HOSTWATCH_SUSPECT_*: a dead resolver, a blocked uplink). A suspect
    run's checks are kept, but its gone and failed checks count toward no
    removal until a healthy run confirms them, and its cases stay due.

    Exit status 3 when another run holds the lock, 4 when the run did not
    check every due case (interrupted, or checks failed), 5 when the run
    is suspect (finished or not), 1 when checks could not be written.

    With --due, only the deadline checks of removal orders: each order's
    case is checked HOSTWATCH_DEADLINE_MARGIN_SECONDS (300) before its
    deadline, so that the check lands at or before it, and as long after it.
    A check is due once its time has come and the case has not been checked
    since; one check does every due check of a case; deadlines more than two
    days past are not chased. Run it from cron every few minutes, more often
    than the margin. After the run summary it prints one line per order
    deadline of the cases it checked, as `hostwatch deadlines` does, after
    the word "deadline": case, regime, the deadline judged, the deadline as
    the order states it, the outcome now (pending before the deadline; met,
    already_gone, breached or undecided after it), the last decisive check at
    or before the deadline, the first after it, the next deadline check, the
    URL. With nothing due it
    prints "no deadline checks due", records no run and exits 0. While the
    nightly run holds the lock it exits 3 and checks nothing: the checks stay
    due and the next call after the nightly run makes them (late: an "at"
    check missed this way can leave the deadline undecided).

    \b
    Example:
      HOSTWATCH_NAMESERVERS=127.0.0.1:5353 hostwatch crawl --limit 100
    \b
    Example (every case in the browser):
      hostwatch crawl --browser --limit 20
    \b
    Example (cron, deadline checks every two minutes):
      */2 * * * *  cd /srv/hostwatch && .venv/bin/hostwatch crawl --due >> due.log 2>&1
    """
    _crawl(ctx, limit, timeout, concurrency, DUE_DEADLINES if deadlines else DUE_NIGHTLY,
           browser)


@click.command("run")
@_limit
@_timeout
@_concurrency
@click.pass_context
def run(ctx: click.Context, limit: int | None, timeout: float | None,
        concurrency: int | None) -> None:
    """The nightly job: crawl every due case, attribute the new checks, then
    print the case states.

    Case states are brought up to date as each batch of checks is written,
    so a crashed run leaves every finished check and state in place; the
    next run picks up the cases that were not checked, and attributes every
    check that has no attribution yet (see `hostwatch enrich`). Exit
    status as for `hostwatch crawl` (5: the run is suspect; it then stops
    before attributing, and the next run attributes its checks).

    \b
    Example (cron, 02:00 every night):
      0 2 * * *  cd /srv/hostwatch && .venv/bin/hostwatch run >> run.log 2>&1
    """
    store = _crawl(ctx, limit, timeout, concurrency)
    from hostwatch.commands.enrich import run_enrich  # only `run` needs enrichment

    run_enrich(load_config(ctx), store)
    with store.session() as session:
        rows = session.execute(select(Case.state, func.count()).group_by(Case.state)).all()
    click.echo("cases: " + ", ".join(f"{state} {n}" for state, n in sorted(rows)))


COMMANDS = [crawl, run]
