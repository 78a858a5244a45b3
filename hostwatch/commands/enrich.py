"""`hostwatch enrich` and `hostwatch whois`: who hosts what, and where."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import click

from hostwatch.api import Hostwatch
from hostwatch.commands.common import load_config, open_store
from kernel.errors import EnrichmentError
from kernel.progress import ProgressLine
from kernel.text import printable
from kernel.urls import UrlError
from store.lock import LockBusy

if TYPE_CHECKING:
    from enrichment.attribute import EnrichResult

EXIT_LOCKED = 3


def run_enrich(ctx: click.Context, hw: Hostwatch, limit: int | None = None) -> EnrichResult:
    """Attribute every check without an attribution, printing progress.

    Holds the run lock (the crawl's): a crawl and an enrichment, or two
    enrichments, never write at once; exits 3 when it is held.
    """
    started = time.monotonic()
    line = ProgressLine() if hw.config.progress else None

    def progress(done: int, total: int) -> None:
        if line is not None:
            rate = done / line.elapsed()
            line.update(f"hostwatch: attributed {done} of {total} checks ({rate:.0f}/s)")

    try:
        result = hw.enrich(limit=limit, progress=progress)
    except LockBusy as exc:
        click.echo(f"hostwatch: enrich not started: {exc}", err=True)
        ctx.exit(EXIT_LOCKED)
    except EnrichmentError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if line is not None:
            line.close()  # the outcome below stands on a line of its own
    click.echo(f"enrich: {result.attributed} checks attributed in "
               f"{time.monotonic() - started:.1f} s; "
               f"{rdap_summary(result, hw.config.offline)}")
    return result


def rdap_summary(result: EnrichResult, offline: bool) -> str:
    """``RDAP: 3 requests, 1 failed (1 refused), 40 cache hits``: failed lookups
    are counted, not only requests, so a run whose registry failed says so."""
    if offline:
        return f"RDAP: offline, no requests, {result.rdap_cache_hits} cache hits"
    kinds = ", ".join(f"{count} {kind}" for kind, count in result.rdap_failures.items())
    failed = f"{result.rdap_failed} failed" + (f" ({kinds})" if kinds else "")
    return (f"RDAP: {result.rdap_requests} requests, {failed}, "
            f"{result.rdap_cache_hits} cache hits")


@click.command("enrich")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Attribute at most this many checks.")
@click.pass_context
def enrich_command(ctx: click.Context, limit: int | None) -> None:
    """Attribute every check that has no attribution yet.

    For each check: CNAME chain and zone nameservers, the address the crawler
    connected to, ASN and prefix (HOSTWATCH_ASN_DB), AS name and country
    (HOSTWATCH_ASNAMES), the address holder (RDAP at HOSTWATCH_RDAP_URL,
    cached per network for HOSTWATCH_RDAP_TTL_DAYS; none with
    HOSTWATCH_OFFLINE=1), a CDN in front, the hoster of record (registry,
    HOSTWATCH_HOSTERS) and its jurisdiction, and where the server stands
    (HOSTWATCH_GEOIP_DB, else the RDAP network's country, marked rdap; exit
    status 1 when the database is missing, damaged or holds no countries).
    Batched and idempotent (a check's attribution is never redone): run it
    again and only new checks are attributed. With HOSTWATCH_OFFLINE=1
    nothing is asked outside (no RDAP, no DNS). Exit status 3 when a crawl
    or another enrichment holds the lock.

    \b
    Example:
      HOSTWATCH_ASN_DB=ipasn.dat.gz HOSTWATCH_ASNAMES=asnames.json hostwatch enrich
    """
    run_enrich(ctx, open_store(load_config(ctx)), limit)


@click.command("whois")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def whois(ctx: click.Context, target: str, as_json: bool) -> None:
    """The full attribution of one URL, host name or IP address, now.

    Uses the same sources as `hostwatch enrich` (and its RDAP cache in the
    store), the server's country included (HOSTWATCH_GEOIP_DB); a line
    "reseller block holder" when RDAP names the reseller through which the
    address block was registered. A CDN-fronted target has no server
    location: its address is the CDN's edge (whose location --json gives as
    cdn_edge_country). Text the servers supplied (RDAP names, DNS names)
    is printed with control characters escaped (--json: JSON escapes). With
    a URL or name, the first address DNS gives is attributed
    (with HOSTWATCH_OFFLINE=1 no DNS is asked: give an address). Exit
    status 1 when there is no address to attribute.

    \b
    Example:
      hostwatch whois https://img.example.nl/a/b.jpg --json
    """
    hw = open_store(load_config(ctx))
    try:
        facts = hw.whois(target)
    except UrlError as exc:
        raise click.BadParameter(f"no host in {target!r}", param_hint="TARGET") from exc
    except EnrichmentError as exc:
        raise click.ClickException(str(exc)) from exc
    data = facts.as_dict()
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))  # escapes control characters
        return
    for line in whois_lines(data):
        click.echo(line)
    if facts.ip is None:
        click.echo(f"hostwatch: no address for {target}", err=True)
        ctx.exit(1)


def whois_lines(data: dict[str, Any]) -> list[str]:
    """The plain `hostwatch whois` output of ``Facts.as_dict()``: one line a
    field; every value escaped with `printable` (RDAP servers, DNS and the
    crawled server supply most of them)."""
    data = dict(data)
    # Where the server stands, on one line: "NL (geoip, database built
    # 2026-11-28)"; none for a CDN-fronted target, whose edge stands where
    # the CDN answers, not where the material is hosted.
    source = data.pop("server_country_source")
    built = data.pop("geoip_built_at")
    edge, edge_source = data.pop("cdn_edge_country"), data.pop("cdn_edge_country_source")
    if data["server_country"] is not None:
        data["server_country"] = (f"{data['server_country']} ({source}"
                                  + (f", database built {built[:10]})" if built else ")"))
    elif data["cdn"] is not None:
        where = f"; its edge is in {edge} ({edge_source})" if edge else ""
        data["server_country"] = f"none (served through CDN {data['cdn']}{where})"
    # The reseller through which the block was registered gets a line of its
    # own below the network, only when RDAP names one.
    network = dict(data["network"])
    data["network"] = network
    reseller, reseller_handle = network.pop("reseller"), network.pop("reseller_handle")
    width = max(len(k) for k in data)
    lines = []
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, ""))
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        lines.append(f"{key:<{width}}  {'' if value is None else printable(str(value))}")
        if key == "network" and (reseller or reseller_handle):
            named = reseller or reseller_handle
            handle = f" ({reseller_handle})" if reseller and reseller_handle else ""
            lines.append(f"reseller block holder: {printable(named + handle)}")
    return lines


COMMANDS = [enrich_command, whois]
