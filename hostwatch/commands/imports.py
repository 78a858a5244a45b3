"""`hostwatch import`, `import-notices`, `import-orders`, `import-checks`: files
from the hotline.

Exit status: 0 every row taken (added or unchanged), 1 some rows rejected
(the rest kept), 2 nothing written (the file cannot be read, the store cannot
be opened, or the store refused the write). A row taken with a note (an
order's deadline beyond the legal cap, judged at the cap) is taken: the note
goes to standard output after the summary and does not change the exit status.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from hostwatch.api import Hostwatch, ImportRefused
from hostwatch.commands.common import load_config, open_store
from kernel.text import printable
from store.imports import FileError, ImportResult
from store.lock import LockBusy

EXIT_REJECTED = 1
EXIT_NOTHING_WRITTEN = 2


def _source(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.strip() or len(value) > 64:
        raise click.BadParameter("must be 1 to 64 characters")
    return value


_FILE = click.argument("file", type=click.Path(path_type=Path))
_SOURCE = click.option("--source", default="hotline", show_default=True, callback=_source,
                       help="Name of the hotline (report ids are unique within it).")
_FORMAT = click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default=None,
                       help="File format (default: from the extension: .csv, .jsonl, "
                            ".ndjson, .json).")


def _run(ctx: click.Context, file: Path, work: Callable[[Hostwatch], ImportResult]) -> None:
    """Open the store, import, print the summary and the errors, exit 0/1/2."""
    try:
        hw = open_store(load_config(ctx))
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()} (nothing written)", err=True)
        ctx.exit(EXIT_NOTHING_WRITTEN)
    try:
        result = work(hw)
    except FileError as exc:
        click.echo(f"error: {printable(str(exc))} (nothing written)", err=True)
        ctx.exit(EXIT_NOTHING_WRITTEN)
    except ImportRefused as exc:
        click.echo(f"error: {printable(str(exc))}", err=True)
        ctx.exit(EXIT_NOTHING_WRITTEN)
    finally:
        hw.close()
    summary = f"{file}: {result.added} added, {result.unchanged} unchanged, " \
              f"{result.rejected_rows} rejected"
    if result.notices_added:
        summary += f", {result.notices_added} notices added"
    if result.pdq_set:
        summary += f", {result.pdq_set} reference PDQs set from the file"
    if result.notes:
        summary += f", {len(result.notes)} with a note"
    click.echo(summary)
    for note in result.notes:
        click.echo(str(note))
    for error in result.rejected:
        click.echo(str(error), err=True)
    ctx.exit(EXIT_REJECTED if result.rejected else 0)


@click.command("import")
@_FILE
@_SOURCE
@_FORMAT
@click.pass_context
def import_reports(ctx: click.Context, file: Path, source: str, fmt: str | None) -> None:
    """Import hotline reports: one case per row of a CSV or JSON Lines FILE.

    Columns: id, url, category, reported_at (ISO 8601 with Z or an offset);
    optional notice_sent_at (records an e-mail notice), sha256, pdq. Other
    columns are ignored. Each rejected row is printed as file:line: field:
    reason; the other rows are kept. Re-importing a file changes nothing.

    Exit status: 0 every row taken, 1 some rows rejected, 2 nothing written.

    \b
    Example:
      hostwatch import reports.csv
      hostwatch import --source meldpunt --format jsonl export.txt
    """
    _run(ctx, file, lambda hw: hw.import_reports(file, source=source, fmt=fmt))


@click.command("import-notices")
@_FILE
@_SOURCE
@_FORMAT
@click.pass_context
def import_notices_command(ctx: click.Context, file: Path, source: str, fmt: str | None) -> None:
    """Import the notices sent to hosters about imported cases.

    Columns: case_id (the report id), sent_at; optional recipient, channel
    (default email), reference, trusted_flagger (true/false/1/0). A notice is
    identified by case, sent_at and recipient.

    Exit status: 0 every row taken, 1 some rows rejected, 2 nothing written.

    \b
    Example:
      hostwatch import-notices notices.csv
    """
    _run(ctx, file, lambda hw: hw.import_notices(file, source=source, fmt=fmt))


@click.command("import-orders")
@_FILE
@_SOURCE
@_FORMAT
@click.pass_context
def import_orders_command(ctx: click.Context, file: Path, source: str, fmt: str | None) -> None:
    """Import removal orders (e.g. from ATKM) about imported cases.

    Columns: case_id (the report id), issued_at, issuer, deadline_at (after
    issued_at); optional legal_basis, reference, regime (atkm_order or
    terrorist_1h; else told from the issuer and legal basis). An order is
    identified by case, issuer and reference.

    An ATKM order may set at most 12 hours, a terrorist-content order 1
    hour: a later deadline_at is stored as stated and judged at that cap.
    Each such row is taken and named on standard output after the summary,
    e.g. "orders.csv:7: deadline_at: later than the 12-hour legal cap for an
    ATKM order; judged at 2026-03-02T21:00:00Z"; it does not change the exit
    status.

    Exit status: 0 every row taken, 1 some rows rejected, 2 nothing written.

    \b
    Example:
      hostwatch import-orders orders.csv
    """
    _run(ctx, file, lambda hw: hw.import_orders(file, source=source, fmt=fmt))


@click.command("import-checks")
@_FILE
@_SOURCE
@_FORMAT
@click.pass_context
def import_checks_command(ctx: click.Context, file: Path, source: str, fmt: str | None) -> None:
    """Import the check log kept before hostwatch, for imported cases.

    Columns: case_id (the report id), checked_at (ISO 8601 with zone),
    verdict (one of hostwatch's verdicts: online, changed, http_gone,
    legal_block, placeholder, redirect_away, nxdomain, timeout, ...);
    optional http_status, ip. The checks join the hash chain marked as
    imported and take part in every state and figure; the cases' states are
    derived again. A check is identified by case and checked_at.
    Takes the run lock: not while a crawl runs.

    Exit status: 0 every row taken, 1 some rows rejected, 2 nothing written,
    3 a crawl or enrichment holds the lock.

    \b
    Example:
      hostwatch import-checks old-checks.csv
    """
    load_config(ctx)  # a bad setting is an error (status 1) before the store is opened

    def work(hw: Hostwatch) -> ImportResult:
        try:
            return hw.import_checks(file, source=source, fmt=fmt)
        except LockBusy as exc:
            click.echo(f"error: {printable(str(exc))} (nothing written)", err=True)
            ctx.exit(3)

    _run(ctx, file, work)


COMMANDS: list[click.Command] = [import_reports, import_notices_command, import_orders_command,
                                 import_checks_command]
