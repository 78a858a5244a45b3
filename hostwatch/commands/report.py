"""`hostwatch report ...`: reports for analysts and regulators."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import click

from hostwatch.api import REPORT_FORMATS, render_hoster_report
from hostwatch.commands.common import load_config, open_store, when_option
from hostwatch.commands.evidence import evidence
from kernel.model import Category

FORMATS = REPORT_FORMATS
# reports.takedown.Clock's values; the module itself loads lifelines (slow),
# so it is imported only when a report is made.
CLOCKS = ("report", "notice", "order")


@click.group("report")
def report() -> None:
    """Reports from the store: the hoster-problem report, evidence packs.

    \b
    Example:
      hostwatch report hosters --format html -o hosters.html
    """


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file: never half a report."""
    path = path.expanduser()
    if not path.parent.is_dir():
        raise click.ClickException(f"cannot write {path}: directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@report.command("hosters")
@click.option("--since", callback=when_option,
              help="Cases reported at or after this date/time (UTC).")
@click.option("--until", callback=when_option, help="Cases reported before this date/time (UTC).")
@click.option("--category", type=click.Choice([c.value for c in Category]), default=None,
              help="Only cases of this category.")
@click.option("--clock", type=click.Choice(CLOCKS), default="report",
              show_default=True,
              help="Count hours to removal from the report, the first notice or the first "
                   "removal order.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Output format (default: from the file name's suffix, else html).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="File to write ('-' for standard output).")
@click.pass_context
def hosters(ctx: click.Context, since: datetime | None, until: datetime | None,
            category: str | None, clock: str, fmt: str | None, output: Path) -> None:
    """The hoster-problem report: per hoster of record, cases, still online,
    removed, Kaplan-Meier median and p90 hours to removal (still-online cases
    right-censored), share removed within 24 h, deadline breaches per regime,
    reappearances, oldest open case and abuse contact. Dutch-hosted hosters
    first, then foreign ones by country (other EU apart from non-EU), then
    CDN-fronted and unattributed cases; totals for Dutch-hosted vs foreign
    (where the hoster is established) and for server in NL vs abroad (where
    the server stood); a method and limitations section. The line printed
    after writing a file gives both splits.

    Formats: html (one self-contained file, charts inline, printable), md,
    csv (one row per hoster, then the totals; formula-like cells escaped),
    json (keys generated_at, period, method, totals, hosters, ...). Run
    `hostwatch enrich` (or `hostwatch run`) first: cases are grouped by the
    attribution of their newest check that reached an address.

    \b
    Example:
      hostwatch report hosters --since 2026-01-01 --format html -o hosters.html
      hostwatch report hosters --clock notice --format json -o - | jq '.totals'
    """
    if since and until and until <= since:
        raise click.BadParameter("must be after --since", param_hint="--until")
    if fmt is None:
        suffix = output.suffix.lower().lstrip(".")
        fmt = {"markdown": "md", "htm": "html"}.get(suffix, suffix)
        if fmt not in FORMATS:
            fmt = "html"
    hw = open_store(load_config(ctx))
    started = time.monotonic()
    built = hw.hoster_report(since=since, until=until, category=category, clock=clock)
    text = render_hoster_report(built, fmt)
    if str(output) == "-":
        sys.stdout.write(text)
    else:
        write_atomically(output, text)
        # Both meanings of Dutch-hosted (#14); CDN-fronted and unattributed
        # cases are in neither establishment count.
        n = {name: figures.cases for name, figures in built.totals.items()}
        click.echo(f"{output}: {fmt}, {len(built.hosters)} hosters, {n['all']} cases "
                   f"(hoster established in NL {n['dutch']}, abroad {n['foreign']}; "
                   f"server in NL {n['server_nl']}, abroad {n['server_abroad']}, "
                   f"unknown {n['server_unknown']}), "
                   f"{time.monotonic() - started:.1f} s", err=True)


report.add_command(evidence)

COMMANDS = [report]
