"""`hostwatch report evidence` and `hostwatch verify`: evidence packs and their checks."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from hostwatch.commands.common import hoster_error, load_config, open_store, when_option
from kernel.errors import ReportError
from store.hosters import HosterLookupError


@click.command("evidence")
@click.option("--hoster", "hoster", required=True,
              help="The hoster of record: its key, or a name any source gave it "
                   "(legal name, RDAP registrant, AS name), case-insensitive.")
@click.option("--for", "audience", required=True,
              type=click.Choice(["atkm", "acm"], case_sensitive=False),
              help="atkm: removal orders first; acm: the DSA points (dsa.md, dsa.json).")
@click.option("-o", "--output", "output", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="The pack's folder; its zip is written beside it as FOLDER.zip.")
@click.option("--since", callback=when_option,
              help="Only cases reported on or after this day/time (UTC).")
@click.option("--until", callback=when_option, help="Only cases reported before this day/time.")
@click.option("--force", is_flag=True, help="Replace a non-empty folder and its zip.")
@click.pass_context
def evidence(ctx: click.Context, hoster: str, audience: str, output: Path,
             since: datetime | None, until: datetime | None, force: bool) -> None:
    """Write an evidence pack about one hoster's cases, for ATKM or ACM.

    The pack (a folder and FOLDER.zip) holds the cases whose hoster of record
    is HOSTER and every check, attribution, notice and order of them as CSV;
    time-to-removal figures and deadline judgements (figures.json); the
    hoster and why it is or is not Dutch (hoster.json, jurisdiction.md); the
    method (method.md); for ACM the DSA points (dsa.md, dsa.json), for ATKM
    the orders and their deadlines (atkm.md); pack.json with the head of the
    check hash chain; and MANIFEST.sha256 over every file. No material is
    stored or included: hashes, URLs and metadata only.

    Exit status 2 when --hoster names no hoster, 6 when it names more than
    one (the message lists their keys: give one), as for every --hoster.

    \b
    Example:
      hostwatch report evidence --hoster "Example Hosting B.V." --for atkm -o pack-2026-02
      hostwatch verify --pack pack-2026-02.zip
    """
    config = load_config(ctx)
    start, end = since, until
    if start and end and end <= start:
        raise click.BadParameter("must be later than --since", param_hint="--until")
    hw = open_store(config)
    try:
        pack = hw.evidence_pack(hoster, audience, output, since=start, until=end, force=force)
    except HosterLookupError as exc:
        raise hoster_error(exc) from exc
    except (ReportError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        hw.close()
    data, files, folder, archive = pack.data, pack.files, pack.folder, pack.archive
    click.echo(f"evidence: {data.hoster.legal_name}: {len(data.cases)} cases, "
               f"{len(data.checks)} checks, {len(files)} files in {folder} and {archive} "
               f"(chain head: check {data.head_check_id})")


@click.command("verify")
@click.option("--pack", "packs", multiple=True,
              type=click.Path(exists=False, path_type=Path),
              help="An evidence pack (folder or zip) to verify too; repeatable.")
@click.pass_context
def verify(ctx: click.Context, packs: tuple[Path, ...]) -> None:
    """Verify the check hash chain of the store, and evidence packs.

    Recomputes every check's record_hash and link in the store. For each
    --pack: every MANIFEST.sha256 line (a missing, extra or changed file is
    named), that the pack's chain head is a link of the store's chain, and
    that every check in its checks.csv is still stored unchanged. Exit status
    0 when everything holds, 1 with one line per problem otherwise.

    \b
    Example:
      hostwatch verify
      hostwatch --db postgresql+psycopg://hostwatch@db/hostwatch verify --pack pack-2026-02.zip
    """
    hw = open_store(load_config(ctx))
    try:
        result = hw.verify(packs)
    finally:
        hw.close()
    for pack in result.packs:
        if pack.result is not None:
            click.echo(f"pack {pack.path}: {pack.result.files_checked} files, "
                       f"{pack.result.checks_checked} check rows compared"
                       + ("" if pack.result.problems else ": all hold"))
    count, problems = result.checks, result.problems
    head_text = f"head check {result.head_check_id}" if result.head_check_id else "empty"
    click.echo(f"chain: {count} checks ({head_text})"
               + ("" if result.chain else ": every link holds"))
    for problem in problems:
        click.echo(problem, err=True)
    click.echo(f"verified: {count} checks, {result.files_checked} files"
               + (f", {result.pack_checks_checked} pack check rows" if packs else "")
               + (f": {len(problems)} problems" if problems else ": all hold"))
    if problems:
        ctx.exit(1)

COMMANDS = [verify]
