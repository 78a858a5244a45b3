"""`hostwatch demo`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option("--dir", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("hostwatch-demo"), show_default=True,
              help="Where the demo's store and report file go (started afresh).")
@click.option("--cases", type=click.IntRange(min=10, max=5000), default=300, show_default=True,
              help="How many reports to invent.")
@click.option("--rounds", type=click.IntRange(min=1, max=10), default=4, show_default=True,
              help="How many crawl rounds ('nights') to run.")
def demo(out_dir: Path, cases: int, rounds: int) -> None:
    """See the whole pipeline work, on a local test internet (loopback only).

    Starts a DNS server and scripted web hosts on 127.0.0.x, invents reports
    spread over fictional hosters, imports them into a fresh SQLite store,
    and runs several crawl rounds while the hosters take material down, show
    placeholders, redirect, fail, or put it back. Prints the case states per
    hoster and where the output is. No traffic leaves this machine.

    \b
    Example:
      hostwatch demo --cases 300 --rounds 4
    """
    from hostwatch.demo import run_demo

    try:
        run_demo(out_dir.resolve(), cases=cases, rounds=rounds, echo=click.echo)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc


COMMANDS = [demo]
