"""`hostwatch status`, `hostwatch cases`, `hostwatch update`: reading case states."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from hostwatch.api import case_as_dict
from hostwatch.commands.common import hoster_error, load_config, open_store
from kernel.model import CaseState, RunHealth
from store.hosters import HosterLookupError

# The plain `hostwatch cases` columns, printed above the first case.
CASES_HEADER = "case\tstate\tlast_verdict\tremoved_at\turl"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@click.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Count the cases in each state and show the last crawl run, whether
    its vantage point was healthy or suspect, and how many cases have
    checks of suspect (or still running) runs awaiting confirmation by a
    healthy run.

    \b
    Example:
      hostwatch status
    """
    status_ = open_store(load_config(ctx)).status()
    counts, last, stored = status_.counts, status_.last_run, status_.checks_so_far
    unconfirmed, suspect = status_.unconfirmed_cases, status_.suspect_runs
    total = sum(counts.values())
    click.echo(f"{total} cases")
    for state in CaseState:
        click.echo(f"  {state.value:<16} {counts.get(state.value, 0)}")
    if last is not None:
        click.echo(f"last run {last.id}: {last.status}, {last.health}, started "
                   f"{_iso(last.started_at)}, "
                   + (f"{last.checks_made} checks" if stored is None
                      else f"{stored} checks stored so far"))
        if last.health == RunHealth.SUSPECT.value:
            click.echo(f"  suspect: {last.health_reason}")
        now = datetime.now(UTC)
        for worker in status_.workers:
            seen = (now - worker.last_seen_at).total_seconds()
            seen_text = "stopped" if worker.stopped_at is not None else (
                f"last seen {seen:.0f} s ago")
            click.echo(f"  worker {worker.name}: {worker.checks} checks stored, {seen_text}")
    else:
        click.echo("no crawl run yet")
    if suspect:
        click.echo(f"{suspect} suspect run{'s' if suspect != 1 else ''} in all "
                   "(their gone and failed checks count toward no removal)")
    if unconfirmed:
        click.echo(f"{unconfirmed} case{'s' if unconfirmed != 1 else ''} await confirmation: "
                   "their newest checks failed in a suspect (or still running) run; "
                   "they stay due until a healthy run checks them")


@click.command("cases")
@click.option("--state", type=click.Choice([s.value for s in CaseState]), default=None,
              help="Only cases in this state.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--hoster", "hoster", default=None,
              help="Only cases whose hoster of record this is: its key, or a name any "
                   "source gave it (legal name, RDAP registrant, AS name), case-insensitive.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N cases.")
@click.pass_context
def cases(ctx: click.Context, state: str | None, as_json: bool, hoster: str | None,
          limit: int | None) -> None:
    """List cases with their state, last verdict and removal time.

    Plain text: a header row, then one tab-separated line a case: case,
    state, last_verdict, removed_at, url. With --hoster, only the cases
    whose hoster of record (the attribution of the newest check that reached
    an address) is that hoster, found as `hostwatch report evidence
    --hoster` finds it: exit status 2 when it names no hoster, 6 when it
    names more than one (the message lists their keys: give one).

    With --json, one object per line with the keys id, source, url, category,
    state, last_verdict, last_checked_at, removed_at, reappearances, checks,
    unconfirmed_checks (failed checks of suspect runs since the last check
    that counts: they await a healthy run), ref_sha256 and ref_pdq (the
    reference hashes), ref_pdq_source ("report", "learned" or null) and
    ref_pdq_check_id (the check a learned PDQ came from), and from the attribution of the
    newest check that has an address (see `hostwatch enrich`): hoster,
    hoster_key (the key to give --hoster: one per company, whichever source
    named it), hoster_country, jurisdiction, dutch, asn, ip, cdn (null until
    the case's checks are attributed).

    \b
    Example:
      hostwatch cases --state removed --json | jq .removed_at
      hostwatch cases --hoster "Example Hosting B.V." --state online
    """
    rows = open_store(load_config(ctx)).cases(state=state, limit=limit, hoster=hoster)
    try:
        for number, row in enumerate(rows):
            case = row[0]
            if as_json:
                click.echo(json.dumps(case_as_dict(row), ensure_ascii=False))
                continue
            if number == 0:
                click.echo(CASES_HEADER)
            click.echo(f"{case.source}/{case.external_id}\t{case.state}\t"
                       f"{case.last_verdict or '-'}\t{_iso(case.removed_at) or '-'}\t"
                       f"{case.url}")
    except HosterLookupError as exc:
        raise hoster_error(exc) from exc


@click.command("update")
@click.pass_context
def update(ctx: click.Context) -> None:
    """Re-derive every case's state from its checks (after changing the
    HOSTWATCH_REMOVAL_* or HOSTWATCH_TRANSIENT_DAYS settings). The failed
    checks of suspect runs count for nothing, as in the nightly run.

    \b
    Example:
      HOSTWATCH_REMOVAL_CONFIRMATIONS=3 hostwatch update
    """
    done = open_store(load_config(ctx)).update_states()
    click.echo(f"{done} cases updated")


COMMANDS = [status, cases, update]
