"""`hostwatch deadlines`: was each notice and order deadline met?"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import click

from hostwatch.commands.common import load_config, open_store
from kernel.deadlines import Outcome
from reports.deadline_cases import CaseDeadline


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _as_json(row: CaseDeadline) -> str:
    judgement = row.judgement
    return json.dumps({
        "id": row.external_id, "source": row.source, "url": row.url, "state": row.state,
        "regime": row.regime.value, "issuer": row.issuer, "reference": row.reference,
        "start": _iso(row.start), "deadline": _iso(judgement.deadline),
        "deadline_stated": _iso(row.stated), "capped": row.capped,
        "outcome": judgement.outcome.value,
        "at_start": _iso(judgement.at_start),
        "at_start_verdict": row.at_start_verdict,
        "last_before": _iso(judgement.last_before),
        "last_before_verdict": row.last_before_verdict,
        "first_after": _iso(judgement.first_after),
        "first_after_verdict": row.first_after_verdict,
        "open": row.open,
        "next_check": _iso(row.next_check.due) if row.next_check else None,
        "next_check_kind": row.next_check.kind.value if row.next_check else None,
    }, ensure_ascii=False)


def _check(verdict: str | None, when: datetime | None) -> str:
    return f"{verdict} {_iso(when)}" if verdict and when else "-"


# The columns of `as_text`, printed above the first plain `hostwatch deadlines` line.
TEXT_HEADER = "\t".join(["case", "regime", "deadline", "deadline_stated", "outcome",
                         "last_before", "first_after", "next_check", "url"])


def as_text(row: CaseDeadline) -> str:
    """One deadline as a tab-separated line (`hostwatch deadlines`, `crawl --due`)."""
    judgement = row.judgement
    upcoming = (f"{row.next_check.kind.value} {_iso(row.next_check.due)}"
                if row.next_check else "-")
    stated = "-" if row.stated is None else (
        f"{_iso(row.stated)}{' (capped)' if row.capped else ''}")
    return "\t".join([
        f"{row.source}/{row.external_id}", row.regime.value, _iso(judgement.deadline) or "",
        stated, judgement.outcome.value,
        _check(row.last_before_verdict, judgement.last_before),
        _check(row.first_after_verdict, judgement.first_after),
        upcoming, row.url])


@click.command("deadlines")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--open", "only_open", is_flag=True,
              help="Only deadlines not yet passed or passed less than two days ago "
                   "(still chased by `hostwatch crawl --due`).")
@click.pass_context
def deadlines(ctx: click.Context, as_json: bool, only_open: bool) -> None:
    """Judge every deadline now: pending, met, already_gone, breached or undecided.

    Deadlines: the first notice of a case (notice_24h, 24 hours after it was
    sent) and each removal order with a regime (atkm_order: the order's own
    deadline, at most 12 hours; terrorist_1h: 1 hour after issue). A deadline
    that has not passed yet is pending, whatever the checks found so far.
    Once passed, it is already_gone when the last served-or-gone check at or
    before the notice or order found the material gone and no check since
    found it served (nothing was left to remove: not compliance); met when the
    last such check at or before the deadline found the material gone;
    breached when the first such check after it found the material served;
    else undecided (the checks do not bracket it). Time-outs and other failed
    checks count for neither.

    Plain text: a header row (case, regime, deadline, deadline_stated,
    outcome, last_before, first_after, next_check, url), then a
    tab-separated line a deadline: case, regime, the deadline it is judged
    at, the order's deadline as stated ("(capped)" when it lies beyond the legal maximum and
    the earlier one is judged; "-" for notices), outcome, the last decisive
    check at or before the deadline (so far, while pending), the first one
    after it, the next deadline check of `hostwatch crawl --due` ("at"
    HOSTWATCH_DEADLINE_MARGIN_SECONDS before the deadline, "after" as long
    after it; orders only, "-" when both are done or the deadline is more
    than two days past), and the URL; then a count per regime and outcome.
    With --open, only the deadlines still chased: those not yet passed
    (pending) and those passed less than two days ago. With --json, one
    object per line with the keys id, source, url, state, regime, issuer,
    reference, start, deadline, deadline_stated, capped, outcome, at_start,
    at_start_verdict, last_before, last_before_verdict, first_after,
    first_after_verdict, open, next_check, next_check_kind.

    \b
    Example:
      hostwatch deadlines --open
      hostwatch deadlines --json | jq 'select(.outcome == "breached")'
    """
    hw = open_store(load_config(ctx))
    tally: Counter[tuple[str, str]] = Counter()
    for row in hw.deadlines(only_open=only_open):
        if as_json:
            click.echo(_as_json(row))
        else:
            if not tally:
                click.echo(TEXT_HEADER)
            click.echo(as_text(row))
            tally[row.regime.value, row.judgement.outcome.value] += 1
    if not as_json:
        regimes = sorted({regime for regime, _ in tally})
        for regime in regimes:
            outcomes = ", ".join(f"{outcome.value} {tally[regime, outcome.value]}"
                                 for outcome in Outcome)
            click.echo(f"{regime}: {outcomes}")
        if not regimes:
            click.echo("no deadlines" + (" open" if only_open else ""))


COMMANDS = [deadlines]
