"""`hostwatch export xarf`: XARF v4 reports for notices to a hoster;
`hostwatch export sqlite`: a read-only snapshot of the analyst views.

The reports are built by `hostwatch.api.Hostwatch.xarf` (over the pure
`reports.xarf`), the snapshot by `hostwatch.api.Hostwatch.export_sqlite`
(`store.snapshot`); this module parses the options and writes the files.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from hostwatch.api import ClassificationRequired
from hostwatch.commands.common import hoster_error, load_config, open_store
from kernel.errors import StoreError
from kernel.progress import ProgressLine
from reports.xarf import CLASSIFICATIONS, Party, XarfError, xarf_type
from store.hosters import HosterLookupError
from store.hosters import find_hoster as find_hoster  # where tests have looked it up

SKIPPED_SHOWN = 10  # case references listed per skipped category


@click.group("export")
def export() -> None:
    """Export cases for other systems: XARF v4 abuse reports for hosters, a
    read-only SQLite snapshot of the analyst views.

    \b
    Example:
      hostwatch export xarf --hoster dutch-test-hosting -o - > reports.jsonl
      hostwatch export sqlite analysts.db
    """


def _party(role: str, org: str | None, contact: str | None, domain: str | None,
           required: bool) -> Party | None:
    given = {"org": org, "contact": contact, "domain": domain}
    if not any(given.values()) and not required:
        return None
    missing = [f"--{role}-{name} (or HOSTWATCH_XARF_{role.upper()}_{name.upper()})"
               for name, value in given.items() if not (value or "").strip()]
    if missing:
        what = "missing reporter identity" if role == "reporter" else \
            "a sender needs org, contact and domain"
        raise click.UsageError(f"{what}: give {', '.join(missing)}")
    party = Party(org or "", contact or "", domain or "")
    problems = party.problems()
    if problems:
        raise click.UsageError(
            "; ".join(f"--{role}-{p.split(':', 1)[0]}:{p.split(':', 1)[1]}" for p in problems))
    return party


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_reports(reports: Sequence[dict[str, Any]], output: str) -> str:
    """Write ``reports``; returns where, in words.

    ``-``: JSON Lines on standard output. A directory (existing, or a path
    ending in ``/``, created): one ``<report_id>.json`` per report. Anything
    else: a JSON Lines file. Files are written whole or not at all.
    """
    if output == "-":
        for report in reports:
            sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
        return "standard output"
    path = Path(output).expanduser()
    if path.is_dir() or output.endswith(("/", os.sep)):
        try:
            path.mkdir(exist_ok=True)
        except OSError as exc:
            raise click.ClickException(f"cannot create directory {path}: {exc}") from exc
        for report in reports:
            _write_atomically(path / f"{report['report_id']}.json",
                              json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        return f"{path}{os.sep} (one file per report)"
    if not path.parent.is_dir():
        raise click.ClickException(f"cannot write {path}: directory {path.parent} "
                                   "does not exist")
    _write_atomically(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in reports))
    return str(path)


@export.command("xarf")
@click.option("--hoster", "hoster_name", required=True,
              help="The hoster of record: its key, or a name any source gave it "
                   "(legal name, RDAP registrant, AS name), case-insensitive.")
@click.option("-o", "--output", default="-", show_default=True,
              help="'-' = JSON Lines on standard output; a directory (existing, or ending "
                   "in '/') = one <report_id>.json per report; else a JSON Lines file.")
@click.option("--all", "include_removed", is_flag=True,
              help="Also removed cases (content_removed: true).")
@click.option("--classification", type=click.Choice(CLASSIFICATIONS),
              envvar="HOSTWATCH_XARF_CLASSIFICATION", show_envvar=True,
              help="Legal classification that XARF csam reports require "
                   "(hostwatch does not record one per case).")
@click.option("--with-ncii", "with_ncii", is_flag=True,
              help="Also export intimate-image cases (ncii, deepfake_adult, sextortion) as "
                   "category content, type ncii: hostwatch's own type, NOT in XARF v4. "
                   "Receivers that validate against the official v4 schema reject these "
                   "reports; agree with the receiver before sending them.")
@click.option("--reporter-org", envvar="HOSTWATCH_XARF_REPORTER_ORG", show_envvar=True,
              help="Reporting organisation (the hotline).")
@click.option("--reporter-contact", envvar="HOSTWATCH_XARF_REPORTER_CONTACT",
              show_envvar=True, help="Its contact e-mail address.")
@click.option("--reporter-domain", envvar="HOSTWATCH_XARF_REPORTER_DOMAIN", show_envvar=True,
              help="Its domain name.")
@click.option("--sender-org", envvar="HOSTWATCH_XARF_SENDER_ORG", show_envvar=True,
              help="Organisation that transmits the reports, if not the reporter.")
@click.option("--sender-contact", envvar="HOSTWATCH_XARF_SENDER_CONTACT", show_envvar=True,
              help="Its contact e-mail address.")
@click.option("--sender-domain", envvar="HOSTWATCH_XARF_SENDER_DOMAIN", show_envvar=True,
              help="Its domain name.")
@click.pass_context
def xarf(ctx: click.Context, hoster_name: str, output: str, include_removed: bool,
         classification: str | None, with_ncii: bool, reporter_org: str | None,
         reporter_contact: str | None, reporter_domain: str | None, sender_org: str | None,
         sender_contact: str | None, sender_domain: str | None) -> None:
    """XARF abuse reports for one hoster: type csam (v4); ncii only with --with-ncii.

    One report per case whose hoster of record (the attribution of its
    newest check that reached an address, see `hostwatch enrich`) is the
    hoster: cases online, pending removal or reappeared; with --all also
    removed ones. Unchecked cases have no hoster of record yet.

    csam and csam_ai cases become type csam (csam_ai tagged
    csam:ai_generated). Terrorist and other cases have no XARF v4 type:
    they are skipped and counted on standard error.

    Intimate-image cases (ncii, deepfake_adult, sextortion) are skipped and
    counted too, unless --with-ncii is given. XARF v4 has no registered type
    for non-consensual intimate images; with --with-ncii they become
    category content, type ncii, which is hostwatch's own extension type,
    tagged xarf-extension:ncii (and ncii:deepfake or ncii:sextortion), with
    no classification. Receivers that validate strictly against the
    official XARF v4 schema will reject these reports: agree with the
    receiver that it accepts type ncii before sending them.

    A report carries the URL, its domain, the address and AS the check saw,
    the hoster's name, when the material was last seen served, the
    reference SHA-256 and the last check's verdict; never any material.
    The reporter identity is required; the sender defaults to it. Exporting
    records no notice: import the notices you send (`hostwatch
    import-notices`).

    Exit status 2 when --hoster names no hoster, 6 when it names more than
    one (the message lists their keys: give one), as for every --hoster.

    \b
    Example:
      export HOSTWATCH_XARF_REPORTER_ORG="Offlimits"
      export HOSTWATCH_XARF_REPORTER_CONTACT=meldpunt@offlimits.nl
      export HOSTWATCH_XARF_REPORTER_DOMAIN=offlimits.nl
      hostwatch export xarf --hoster "Dutch Test Hosting B.V." \\
          --classification baseline -o notices/
      # intimate-image cases too, for a receiver that agreed to type ncii:
      hostwatch export xarf --hoster dutch-test-hosting \\
          --classification baseline --with-ncii -o notices/
    """
    reporter = _party("reporter", reporter_org, reporter_contact, reporter_domain, True)
    assert reporter is not None
    sender = _party("sender", sender_org, sender_contact, sender_domain, False)
    hw = open_store(load_config(ctx))
    try:
        result = hw.xarf(hoster_name, reporter=reporter, sender=sender,
                         classification=classification, include_removed=include_removed,
                         with_ncii=with_ncii)
    except HosterLookupError as exc:
        raise hoster_error(exc) from exc
    except ClassificationRequired as exc:
        raise click.UsageError(
            f"{exc.cases} csam cases need --classification (or "
            f"HOSTWATCH_XARF_CLASSIFICATION), one of {', '.join(CLASSIFICATIONS)}: XARF "
            "v4 csam reports require the legal classification, which hostwatch does not "
            "record") from exc
    except XarfError as exc:
        raise click.ClickException(str(exc)) from exc
    reports, target, skipped = result.reports, result.hoster, result.skipped

    where = write_reports(reports, output)
    states_text = result.states
    click.echo(f"xarf: {len(reports)} reports for {target.legal_name} (key {target.key}, "
               f"abuse {target.abuse or 'unknown'}) to {where}"
               + (": " + ", ".join(f"{n} {s}" for s, n in sorted(states_text.items()))
                  if states_text else ""), err=True)
    ncii = result.ncii
    if ncii:
        click.echo(f"xarf: {ncii} of them have type ncii, hostwatch's own extension, not "
                   "XARF v4: receivers that validate against the official schema reject "
                   "them", err=True)
    for category, refs in sorted(skipped.items()):
        shown = ", ".join(refs[:SKIPPED_SHOWN])
        more = f" and {len(refs) - SKIPPED_SHOWN} more" if len(refs) > SKIPPED_SHOWN else ""
        why = ("no XARF v4 type; --with-ncii exports them as hostwatch's own type ncii"
               if xarf_type(category, with_ncii=True) else "no XARF v4 type")
        click.echo(f"xarf: skipped {len(refs)} {category} cases ({why}): "
                   f"{shown}{more}", err=True)


@export.command("sqlite")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def sqlite(ctx: click.Context, path: Path) -> None:
    """A read-only SQLite file of the analyst views, for Datasette or sqlite3.

    Each analyst view (docs/analysts.md: analyst_cases, analyst_checks,
    analyst_deadlines, analyst_notices, analyst_orders,
    analyst_case_durations, analyst_hosters) becomes a table of the same
    name, read in one transaction from the store (SQLite or PostgreSQL);
    snapshot_info says when. Reported URLs are in it defanged only; nothing
    else of the store is copied. Figures that depend on the time (pending
    deadlines, days open) are those of the export. PATH is replaced whole,
    or left as it was when the export fails, and is made read-only.

    A store in a SQLite file is copied inside SQLite (attached read-only).
    A progress line on standard error names the view and its rows so far
    (none with HOSTWATCH_PROGRESS=0); the outcome line comes last.

    \b
    Example:
      hostwatch --db postgresql+psycopg://hostwatch@db/hostwatch export sqlite analysts.db
      sqlite3 -readonly analysts.db "SELECT hoster, online FROM analyst_hosters"
    """
    from store.snapshot import progress_text  # alembic: not at every start of the CLI

    hw = open_store(load_config(ctx))
    started = time.monotonic()
    line = ProgressLine() if hw.config.progress else None

    def progress(view: str, rows: int) -> None:
        assert line is not None
        line.update(progress_text(view, rows, line.elapsed()))

    try:
        # No line, no callback: counting rows costs the export some time.
        counts = hw.export_sqlite(path, progress=progress if line is not None else None)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc}") from exc
    finally:
        if line is not None:
            line.close()  # the outcome below stands on a line of its own
        hw.close()
    click.echo(f"sqlite: {counts.get('analyst_cases', 0)} cases, "
               f"{counts.get('analyst_checks', 0)} checks, "
               f"{counts.get('analyst_hosters', 0)} hosters written to {path} (read-only) "
               f"in {time.monotonic() - started:.1f} s", err=True)


COMMANDS = [export]
