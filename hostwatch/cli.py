"""The `hostwatch` command: a thin layer over the library.

Each command's docstring is its --help text.
"""

from __future__ import annotations

import os

import click

from hostwatch.commands import (
    cases,
    crawl,
    deadlines,
    demo,
    enrich,
    evidence,
    export,
    imports,
    report,
    serve,
)
from kernel import __version__, redact, verbosity
from kernel.config import KEYS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hostwatch")
@click.option("--db", "db_url", envvar="HOSTWATCH_DB", default=None,
              help="Store URL (default: sqlite:///hostwatch.db, or $HOSTWATCH_DB).")
@click.option("-v", "--verbose", count=True,
              help="Say more: -v logs at INFO (Scrapy's start-up and stats, Python's "
                   "warnings), -vv at DEBUG (every request). Default: $HOSTWATCH_LOG_LEVEL "
                   "or WARNING (problems only).")
@click.pass_context
def main(ctx: click.Context, db_url: str | None, verbose: int) -> None:
    """Re-check reported abuse-material URLs without keeping the material.

    \b
    Typical night:
      hostwatch import reports.csv     # new reports from the hotline
      hostwatch run                    # re-check every due case
      hostwatch status                 # how many are online, removed...

    \b
    A night shared by machines (PostgreSQL store and HOSTWATCH_QUEUE):
      hostwatch run --workers 4        # on the store's host
      hostwatch worker                 # on each other machine
    """
    # No log line of any command may quote what a server sent (kernel.redact).
    redact.install()
    level = verbosity.level_of_verbose(verbose)
    key = KEYS["log_level"]
    verbosity.quiet_warnings(level or os.environ.get(key.env, key.default))
    ctx.ensure_object(dict)
    ctx.obj["db"] = db_url
    ctx.obj["log_level"] = level


for _command in [*imports.COMMANDS, *crawl.COMMANDS, *enrich.COMMANDS, *cases.COMMANDS,
                 *demo.COMMANDS, *report.COMMANDS, *deadlines.COMMANDS,
                 *evidence.COMMANDS, *export.COMMANDS, *serve.COMMANDS]:
    main.add_command(_command)
