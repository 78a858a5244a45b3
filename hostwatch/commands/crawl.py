"""`hostwatch crawl` and `hostwatch run`: the nightly re-check."""

from __future__ import annotations

import click

from hostwatch.api import CrawlFailed, CrawlOutcome, Hostwatch, WorkerMisconfigured
from hostwatch.commands.common import load_config, open_store
from kernel.errors import CrawlError
from kernel.text import printable
from store.lock import LockBusy

EXIT_LOCKED = 3
EXIT_INCOMPLETE = 4
EXIT_SUSPECT = 5  # the run was judged suspect: its failing checks count for nothing yet
EXIT_CONFIG = 78  # sysexits' EX_CONFIG: a worker's store is not the coordinator's


def _report_run(outcome: CrawlOutcome) -> None:
    run = outcome.run
    if run is None:
        return
    seconds = ((run.finished_at or run.started_at) - run.started_at).total_seconds()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(run.counts.items())) or (
        "nothing due" if not run.cases_due else "no checks")
    click.echo(f"run {run.id} {run.status}: {run.checks_made} of {run.cases_due} due cases "
               f"checked in {seconds:.1f} s ({counts})")
    if outcome.suspect:
        click.echo(f"run {run.id} SUSPECT: {run.health_reason}. Its checks are kept, but "
                   "its gone and failed checks count toward no removal until a healthy "
                   "run confirms them; its cases stay due.")


def _report_deadlines(outcome: CrawlOutcome) -> None:
    """The order deadlines of the cases a deadline run checked, judged now
    (the lines of `hostwatch deadlines`)."""
    from hostwatch.commands.deadlines import as_text  # a sibling command's line format

    for row in outcome.deadlines:
        click.echo("deadline\t" + as_text(row))


def _crawl(ctx: click.Context, limit: int | None, timeout: float | None,
           concurrency: int | None, deadlines: bool = False,
           browser: bool = False, workers: int | None = None) -> Hostwatch:
    config = load_config(ctx, timeout=timeout, concurrency=concurrency)
    if workers is None and config.queue and not deadlines:
        # HOSTWATCH_QUEUE set: a shared run, one worker here. Not for the
        # deadline checks (`crawl --due`, every few minutes, a few cases).
        workers = 1
    hw = open_store(config)
    try:
        outcome = hw.crawl(limit=limit, deadlines=deadlines, browser=browser, workers=workers)
    except LockBusy as exc:
        click.echo(f"hostwatch: not started: {exc}", err=True)
        ctx.exit(EXIT_LOCKED)
    except CrawlFailed as exc:
        _report_run(exc.outcome)
        _report_deadlines(exc.outcome)
        raise click.ClickException(str(exc)) from exc
    except CrawlError as exc:
        raise click.ClickException(str(exc)) from exc
    if outcome.nothing_due:
        # A deadline crawl with nothing due starts no Scrapy: cheap enough
        # for a cron job every minute.
        click.echo("no deadline checks due")
        return hw
    _report_run(outcome)
    _report_deadlines(outcome)
    run = outcome.run
    if run is not None and outcome.suspect:
        click.echo(f"hostwatch: run {run.id} is suspect ({run.health_reason}); check the "
                   "vantage point (resolver, uplink) and run again", err=True)
        ctx.exit(EXIT_SUSPECT)
    if run is not None and not outcome.finished:
        click.echo(f"hostwatch: run {run.id} did not finish ({run.status}); the next run "
                   "checks the cases it did not reach", err=True)
        ctx.exit(EXIT_INCOMPLETE)
    return hw


_limit = click.option("--limit", type=click.IntRange(min=1), default=None,
                      help="Check at most this many due cases.")
_timeout = click.option("--timeout", type=click.FloatRange(min=0.1), default=None,
                        help="Seconds per fetch (default $HOSTWATCH_TIMEOUT or 15).")
_concurrency = click.option("--concurrency", type=click.IntRange(min=1), default=None,
                            help="Requests in flight (default $HOSTWATCH_CONCURRENCY or 400).")


_browser = click.option("--browser", is_flag=True,
                        help="Check every case in the browser (Chromium), not by a plain GET.")


_workers = click.option(
    "--workers", type=click.IntRange(min=0), default=None,
    help="Share the run through the queue (HOSTWATCH_QUEUE) with N worker processes on "
         "this machine; 0: only workers started elsewhere (`hostwatch worker`).")


@click.command("crawl")
@click.option("--due", "deadlines", is_flag=True,
              help="Make only the deadline checks that are due (removal orders), nothing else.")
@_browser
@_limit
@_timeout
@_concurrency
@_workers
@click.pass_context
def crawl(ctx: click.Context, deadlines: bool, browser: bool, limit: int | None,
          timeout: float | None, concurrency: int | None, workers: int | None) -> None:
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

    With --workers N (or HOSTWATCH_QUEUE set) the run is shared: this
    process holds the run lock, queues the due cases in batches
    (HOSTWATCH_QUEUE_BATCH) on the queue, starts N `hostwatch worker`
    processes here, and waits until every batch is checked; workers on
    other machines join (`hostwatch worker`). The store must be PostgreSQL.
    A worker that stops sending its heartbeat for HOSTWATCH_QUEUE_LEASE
    seconds has its unfinished batches handed to the others; each case is
    stored once per run. The run's counts are those of every worker.

    \b
    Example (four workers here, more on other machines):
      HOSTWATCH_DB=postgresql+psycopg://hostwatch@db/hostwatch \\
      HOSTWATCH_QUEUE=postgresql://hostwatch@db/hostwatch hostwatch crawl --workers 4
    """
    _crawl(ctx, limit, timeout, concurrency, deadlines, browser, workers)


@click.command("run")
@_limit
@_timeout
@_concurrency
@_workers
@click.pass_context
def run(ctx: click.Context, limit: int | None, timeout: float | None,
        concurrency: int | None, workers: int | None) -> None:
    """The nightly job: crawl every due case, attribute the new checks, then
    print the case states.

    Case states are brought up to date as each batch of checks is written,
    so a crashed run leaves every finished check and state in place; the
    next run picks up the cases that were not checked, and attributes every
    check that has no attribution yet (see `hostwatch enrich`). Exit
    status as for `hostwatch crawl` (5: the run is suspect; it then stops
    before attributing, and the next run attributes its checks). --workers
    as for `hostwatch crawl`: the crawl is shared by workers, the
    attribution runs here once it is done.

    \b
    Example (cron, 02:00 every night):
      0 2 * * *  cd /srv/hostwatch && .venv/bin/hostwatch run >> run.log 2>&1
    """
    from enrichment.geo import GeoDb, GeoDbError
    from hostwatch.commands.enrich import run_enrich  # only `run` needs enrichment

    try:  # a file the attribution cannot use fails now, not after the crawl
        geo = GeoDb.from_setting(load_config(ctx).geoip_db)
    except GeoDbError as exc:
        raise click.ClickException(str(exc)) from exc
    if geo is not None:
        geo.close()
    hw = _crawl(ctx, limit, timeout, concurrency, workers=workers)

    run_enrich(ctx, hw)
    counts = hw.state_counts()
    click.echo("cases: " + ", ".join(f"{state} {n}" for state, n in sorted(counts.items())))


@click.command("worker")
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Check batches of shared runs, from the queue, until stopped.

    Joins whatever run `hostwatch crawl --workers N` (on any machine) has
    queued, now or later: takes HOSTWATCH_WORKER_JOBS batches at a time,
    checks their cases as `crawl` does, and writes the checks to the store
    (HOSTWATCH_DB, PostgreSQL, the same as the coordinator's). SIGTERM or
    Ctrl-C: no new batch, the ones in hand are finished, then it exits; a
    second one stops it at once (its batches go to other workers after
    HOSTWATCH_QUEUE_LEASE seconds). Exit status 1 when the queue or the
    store cannot be reached, 78 when the store is not the coordinator's (it
    has none of the runs the queue holds batches of; no batch is taken).

    \b
    Example (systemd runs this on each worker machine):
      HOSTWATCH_DB=postgresql+psycopg://hostwatch@db/hostwatch \\
      HOSTWATCH_QUEUE=postgresql://hostwatch@db/hostwatch hostwatch worker
    """
    hw = open_store(load_config(ctx))
    try:
        hw.work()
    except WorkerMisconfigured as exc:
        click.echo(f"error: {printable(str(exc))}", err=True)
        ctx.exit(EXIT_CONFIG)
    except CrawlError as exc:
        raise click.ClickException(str(exc)) from exc


COMMANDS = [crawl, run, worker]
