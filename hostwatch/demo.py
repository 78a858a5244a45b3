"""`hostwatch demo`: the whole pipeline on the local test internet.

Starts real DNS and HTTP servers on 127.0.0.x (lab), invents a few
hundred reports spread over several fictional hosters with different
takedown habits, imports them, and runs several crawl rounds while the hosts
take material down (or put it back). Everything stays on loopback; the
"material" is generated filler with a marker, never anything real.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from kernel.config import Config
from lab import (
    Behaviour,
    Bursts,
    RedirectHome,
    Serve,
    Slow,
    SoftNotFound,
    Status,
    TestInternet,
    add_js_gallery,
    marker_body,
)
from lab.images import as_webp
from lab.images import reported as reported_picture
from reports.location import LocationFlag, location_flag, server_location_of
from store import Attribution, Case, Check, CrawlRun, Store
from store.imports import import_cases, import_orders


@dataclass(frozen=True)
class DemoHoster:
    name: str
    share: int  # relative number of cases
    habit: str  # what the demo hoster does, in words
    script: Callable[[bytes, int], Sequence[Behaviour]]  # body, case number -> per round
    network: int | str | None = None  # the test network (ASN or name) it is hosted on
    cdn: bool = False  # behind the test internet's CDN (Cloudflare-style headers)
    pictures: bool = False  # its reported files are real pictures (lab.images)


def _gone_from(round_: int, gone: Behaviour) -> Callable[[bytes, int], Sequence[Behaviour]]:
    def script(body: bytes, number: int) -> list[Behaviour]:
        return [*([Serve(body)] * round_), gone]

    return script


HOSTERS: tuple[DemoHoster, ...] = (
    DemoHoster("fastnl-hosting.test", 20, "removes within a day (404)",
               _gone_from(1, Status(404)), network=64501),
    DemoHoster("slowstack.test", 15, "removes late, shows a 'removed' page",
               _gone_from(3, Serve(b"<html><body>This file has been removed.</body></html>",
                                   content_type="text/html")), network=64502),
    DemoHoster("bulletproof.test", 15, "never removes anything",
               lambda body, i: [Serve(body)], network="OFFSHORE-RESELLER"),
    DemoHoster("imgshare.test", 15, "soft-404: removed files get its 'not found' page",
               _gone_from(2, SoftNotFound()), network=64503),
    DemoHoster("edgecache.test", 10, "behind a CDN; replaces the file",
               lambda body, i: [Serve(body)] * 2 + [Serve(marker_body(f"replacement-{i}"))],
               cdn=True),
    DemoHoster("flakyhost.test", 8, "overloaded: 503s and time-outs, then removes",
               lambda body, i: [Bursts(1, then=Serve(body)), Slow(3), Status(410)],
               network=64504),
    DemoHoster("legalblock.test", 5, "blocks by law (451)", _gone_from(1, Status(451)),
               network=64503),
    # A US company's Amsterdam data centre: its servers stand in NL.
    DemoHoster("tohome.test", 5, "redirects removed files to its home page",
               _gone_from(2, RedirectHome()), network=64506),
    # A Dutch company whose servers stand in Germany.
    DemoHoster("grensnet.test", 5, "Dutch company, server in Germany; removes (404)",
               _gone_from(2, Status(404)), network=64507),
    DemoHoster("comeback.test", 7, "removes, then comes back at another hoster",
               lambda body, i: [Serve(body), Status(404), Status(404), Serve(body)],
               network=64502),
    DemoHoster("webpcdn.test", 5, "serves the picture re-encoded as WebP (reencoded)",
               lambda body, i: [Serve(body),
                                Serve(as_webp(body), content_type="image/webp")],
               network=64501, pictures=True),
)
PACK_HOSTER = "Dutch Test Hosting B.V."  # the demo's evidence pack is about this hoster
# A gallery that draws its images with JavaScript: its pages are checked in
# the browser (the demo's rule file says so; the shell would send them there
# anyway). Per item, its state in each round (the last one repeats).
GALLERY, GALLERY_NETWORK = "jsgallery.test", 64502
GALLERY_ITEMS: tuple[tuple[str, ...], ...] = (
    ("present",), ("present", "present", "removed"), ("present", "removed"),
    ("present", "changed"), ("present_background", "present_background", "removed"),
    ("popup_redirect",), ("present", "removed", "removed", "present"),
)
GALLERY_RULES = """\
# The demo's browser rules (HOSTWATCH_BROWSER_RULES): the JS gallery is always
# checked in the browser; its "removed" notice is this element.
[[host]]
pattern = "jsgallery.test"
browser = "always"
removed_selectors = ["div.hw-removed-notice"]
"""
VANISHING = "shortlived.test"  # its domain disappears from DNS after round 2
MOVER, MOVES_TO, MOVES_AT = "comeback.test", 64504, 3  # moves hoster before round 4

# The demo's hoster registry (HOSTWATCH_HOSTERS), over the shipped one: two
# Dutch hosters (one of them with its servers in Germany) and the test CDN
# are registered; the others are found through RDAP and the AS names, as an
# unregistered hoster would be.
DEMO_REGISTRY = """\
[[hoster]]
id = "demo-dutch-test-hosting"
legal_name = "Dutch Test Hosting B.V."
country = "NL"
asns = [64501]
rdap_orgs = ["dutch test hosting"]
dsa_role = "hosting"
abuse = "abuse@dutchhost.test"
cdn = false

[[hoster]]
id = "demo-grens-test-hosting"
legal_name = "Grens Test Hosting B.V."
country = "NL"
asns = [64507]
rdap_orgs = ["grens test hosting"]
dsa_role = "hosting"
abuse = "abuse@grenshost.test"
cdn = false

[[hoster]]
id = "demo-testcdn"
legal_name = "TestCDN Inc."
country = "US"
asns = [64505]
rdap_orgs = ["testcdn inc"]
dsa_role = "cdn"
abuse = "abuse@testcdn.test"
cdn = true
"""


def _crawl_env(net: TestInternet, out_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "HOSTWATCH_NAMESERVERS": net.nameservers_env,
        "HOSTWATCH_ALLOW_PRIVATE": "127.0.0.0/8",  # the demo internet is on loopback
        "HOSTWATCH_RECHECK_HOURS": "0",  # every round re-checks every case
        "HOSTWATCH_REMOVAL_MIN_HOURS": "0",  # rounds are seconds apart, not nights
        "HOSTWATCH_TIMEOUT": "2",
        "HOSTWATCH_PROGRESS": "0",
        "HOSTWATCH_LOG_LEVEL": "WARNING",
        "HOSTWATCH_DATA_DIR": str(out_dir),
        # Attribution from the test internet's own data: its BGP table, AS
        # names, RDAP server, and the demo's hoster registry.
        "HOSTWATCH_ASN_DB": str(net.asn_table_path),
        "HOSTWATCH_ASNAMES": str(net.asnames_path),
        "HOSTWATCH_RDAP_URL": net.rdap_url,
        # Where the test networks' servers stand (a MaxMind DB file).
        "HOSTWATCH_GEOIP_DB": str(net.geoip_path),
        "HOSTWATCH_HOSTERS": str(out_dir / "hosters.toml"),
        "HOSTWATCH_BROWSER_RULES": str(out_dir / "browser_rules.toml"),
    })
    return env


def _write_reports(path: Path, net: TestInternet, total: int) -> None:
    """Invent ``total`` reports spread over the demo hosters and script their hosts."""
    hosts = {h.name: (net.add_cdn_site(h.name, mimic="cloudflare") if h.cdn
                      else net.add_host(h.name, network=h.network)) for h in HOSTERS}
    vanishing = net.add_host(VANISHING, network=64504)
    weights = [(h, h.share) for h in HOSTERS]
    scale = sum(w for _, w in weights)
    reported = datetime.now(UTC) - timedelta(days=2)
    rows = []
    number = 0
    for hoster, share in weights:
        for _ in range(max(1, total * share // scale)):
            body = (reported_picture(number) if hoster.pictures
                    else marker_body(f"demo-case-{number}"))
            path_ = f"/media/{number:05d}.jpg"
            hosts[hoster.name].route(path_, hoster.script(body, number))
            rows.append((f"OL-{number:05d}", hosts[hoster.name].url(path_), body))
            number += 1
    for _ in range(5):
        body = marker_body(f"demo-case-{number}")
        path_ = f"/p/{number}.jpg"
        vanishing.route(path_, Serve(body))
        rows.append((f"OL-{number:05d}", vanishing.url(path_), body))
        number += 1
    gallery = add_js_gallery(net, GALLERY, network=GALLERY_NETWORK)
    references: dict[str, str] = {}
    for index in range(max(7, total // 25)):
        item = f"d{index}"
        gallery.item(item, GALLERY_ITEMS[index % len(GALLERY_ITEMS)])
        rows.append((f"OL-{number:05d}", gallery.page_url(item), b""))
        references[gallery.page_url(item)] = gallery.media_sha256(item)
        number += 1
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "url", "category", "reported_at", "notice_sent_at", "sha256"])
        for n, (report_id, url, body) in enumerate(rows):
            category = "csam" if n % 4 else "ncii"
            at = reported + timedelta(minutes=n)
            # The hotline notifies the hoster an hour after the report (most cases).
            notice = (at + timedelta(hours=1)).isoformat() if n % 5 else ""
            writer.writerow([report_id, url, category, at.isoformat(), notice,
                             references.get(url) or hashlib.sha256(body).hexdigest()])


def _write_orders(path: Path, reports: Path) -> None:
    """ATKM removal orders for the first few cases at each Dutch-hosted demo
    hoster (established in NL, wherever its servers stand), issued two hours
    after the report with a 12-hour deadline."""
    dutch = {h.name for h in HOSTERS if h.network in (64501, 64502, 64507)}
    taken: Counter[str] = Counter()
    with reports.open(newline="", encoding="utf-8") as handle, \
            path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["case_id", "issued_at", "issuer", "deadline_at", "legal_basis",
                         "reference"])
        for row in csv.DictReader(handle):
            host = row["url"].split("/")[2].split(":")[0]
            if host not in dutch or taken[host] >= 3:
                continue
            taken[host] += 1
            issued = datetime.fromisoformat(row["reported_at"]) + timedelta(hours=2)
            writer.writerow([row["id"], issued.isoformat(), "ATKM",
                             (issued + timedelta(hours=12)).isoformat(),
                             "Wet bestuursrechtelijke aanpak online kinderpornografisch "
                             "materiaal", f"ATKM-DEMO-{row['id']}"])


def run_demo(out_dir: Path, *, cases: int = 300, rounds: int = 4,
             echo: Callable[[str], None] = print) -> Path:
    """Run the demo in ``out_dir`` (its store is started afresh); returns the store file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    db_file = out_dir / "hostwatch.db"
    for stale in out_dir.glob("hostwatch.db*"):
        stale.unlink()
    db_url = f"sqlite:///{db_file}"
    store = Store(db_url)
    store.upgrade()
    with TestInternet(ttl=1) as net:
        echo(f"local test internet: DNS on {net.nameservers_env}, RDAP on {net.rdap_url}, "
             f"{len(HOSTERS) + 1} hosts on {len(net.networks)} test networks, port {net.port}")
        (out_dir / "hosters.toml").write_text(DEMO_REGISTRY, encoding="utf-8")
        (out_dir / "browser_rules.toml").write_text(GALLERY_RULES, encoding="utf-8")
        reports = out_dir / "reports.csv"
        _write_reports(reports, net, cases)
        result = import_cases(store, reports, source="demo-hotline")
        echo(f"imported {reports}: {result.added} cases")
        orders = out_dir / "orders.csv"
        _write_orders(orders, reports)
        result = import_orders(store, orders, source="demo-hotline")
        echo(f"imported {orders}: {result.added} ATKM removal orders")
        env = _crawl_env(net, out_dir)
        for round_ in range(rounds):
            net.round = round_
            if round_ == 2:
                net.remove_name(VANISHING)
            if round_ == MOVES_AT:
                net.move_host(MOVER, MOVES_TO)
                time.sleep(1.2)  # the zone's TTL: resolvers forget the old address
            completed = subprocess.run(
                [sys.executable, "-m", "hostwatch", "--db", db_url, "run"],
                env=env, cwd=out_dir, capture_output=True, text=True, check=False)
            if completed.returncode != 0:
                raise RuntimeError(f"round {round_ + 1} failed:\n{completed.stderr[-2000:]}")
            echo(f"round {round_ + 1}: " + "; ".join(
                line for line in completed.stdout.splitlines()
                if line.startswith(("run ", "enrich:"))))
    _summarise(store, echo)
    report_file = _hoster_report(store, out_dir, env)
    pack, archive = _evidence_pack(store, out_dir, env)
    echo("")
    echo(f"store:   {db_file}")
    echo(f"reports: {out_dir / 'reports.csv'}")
    echo(f"hoster report (HTML): {report_file}")
    echo(f"evidence pack (ATKM, {PACK_HOSTER}): {pack} and {archive}")
    command = _hostwatch_command()
    echo(f"look:    {command} --db {db_url} status")
    echo(f"         {command} --db {db_url} cases --state reappeared --json")
    from hostwatch.serve import DEFAULT_PORT

    echo(f"browse:  {command} --db {db_url} serve   "
         f"(then open http://127.0.0.1:{DEFAULT_PORT}/ ; Ctrl-C stops it)")
    store.dispose()
    return db_file


def _hoster_report(store: Store, out_dir: Path, env: dict[str, str]) -> Path:
    """The HTML hoster-problem report of the demo's store, as `hostwatch
    report` writes it: from the crawl's own settings (_crawl_env), which the
    method states."""
    from hostwatch.api import Hostwatch
    from reports.html import render_html

    report = Hostwatch(Config.from_env(env), store=store).hoster_report()
    path = out_dir / "hoster-report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


def _evidence_pack(store: Store, out_dir: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """An ATKM evidence pack about the demo's registered Dutch hoster, with the
    crawl's debounce rule (_crawl_env)."""
    from hostwatch.api import Hostwatch

    pack = Hostwatch(Config.from_env(env), store=store).evidence_pack(
        PACK_HOSTER, "atkm", out_dir / "evidence-atkm", force=True)
    return pack.folder, pack.archive


def _hostwatch_command() -> str:
    """How to run hostwatch from here: on PATH, else from this Python's bin folder."""
    if shutil.which("hostwatch"):
        return "hostwatch"
    beside = Path(sys.executable).parent / "hostwatch"
    return str(beside) if beside.exists() else f"{sys.executable} -m hostwatch"


def _summarise(store: Store, echo: Callable[[str], None]) -> None:
    with store.session() as session:
        rows = session.execute(
            select(Case.host, Case.state, Attribution.hoster, Attribution.jurisdiction,
                   Attribution.hoster_country, Attribution.cdn, Attribution.server_country)
            .outerjoin(Attribution, Attribution.id == Case.attribution_id)).all()
        runs = session.scalar(select(func.count()).select_from(CrawlRun))
        browser = dict(session.execute(select(Check.verdict, func.count())
                                       .where(Check.method == "browser")
                                       .group_by(Check.verdict)).all())
    by_host: dict[str, Counter[str]] = {}
    where: dict[str, Counter[str]] = {}
    by_place: dict[str, Counter[str]] = {}
    by_server: dict[str, Counter[str]] = {}
    crossed: dict[LocationFlag, Counter[str]] = {flag: Counter() for flag in LocationFlag}
    for host, state, hoster, place, country, cdn, server in rows:
        by_host.setdefault(host, Counter())[state] += 1
        label = (f"CDN {cdn}, origin unknown" if cdn else
                 f"{hoster} ({country or '?'})" if hoster else "unknown")
        where.setdefault(host, Counter())[label] += 1
        group = ("CDN-fronted" if cdn else "Dutch-hosted (NL)" if place == "NL" else
                 "other EU" if place == "EU" else "non-EU" if place == "non-EU" else "unknown")
        by_place.setdefault(group, Counter())[state] += 1
        located = server_location_of(cdn, server)
        stood = ("unknown" if located is None else "server in NL" if located == "NL"
                 else "server abroad")
        by_server.setdefault(stood, Counter())[state] += 1
        flag = location_flag(place, located)
        if flag is not None:
            crossed[flag][host] += 1
    habits = {h.name: h.habit for h in HOSTERS}
    habits[VANISHING] = "domain disappears (NXDOMAIN)"
    habits[GALLERY] = "JavaScript gallery, checked in the browser"
    echo("")
    echo(f"after {runs} crawl rounds:")
    echo(f"{'host':<22} {'cases':>5}  {'online':>6} {'pending':>7} {'removed':>7} "
         f"{'back':>4}  habit")
    totals: Counter[str] = Counter()
    for host in sorted(by_host):
        c = by_host[host]
        totals.update(c)
        echo(f"{host:<22} {sum(c.values()):>5}  {c['online']:>6} {c['pending_removal']:>7} "
             f"{c['removed']:>7} {c['reappeared']:>4}  {habits.get(host, '')}")
    echo(f"{'all':<22} {sum(totals.values()):>5}  {totals['online']:>6} "
         f"{totals['pending_removal']:>7} {totals['removed']:>7} {totals['reappeared']:>4}")
    echo("")
    echo("who hosts it (hoster of record of each case's newest check that reached an address):")
    for host in sorted(where):
        echo(f"  {host:<22} " + "; ".join(f"{label}: {n}"
                                          for label, n in where[host].most_common()))
    echo("")
    echo(f"{'jurisdiction':<22} {'cases':>5}  {'online':>6} {'removed':>7}")
    for group in ("Dutch-hosted (NL)", "other EU", "non-EU", "CDN-fronted", "unknown"):
        c = by_place.get(group, Counter())
        echo(f"{group:<22} {sum(c.values()):>5}  {c['online'] + c['reappeared']:>6} "
             f"{c['removed']:>7}")
    echo("")
    echo(f"{'server location':<22} {'cases':>5}  {'online':>6} {'removed':>7}")
    for group in ("server in NL", "server abroad", "unknown"):
        c = by_server.get(group, Counter())
        echo(f"{group:<22} {sum(c.values()):>5}  {c['online'] + c['reappeared']:>6} "
             f"{c['removed']:>7}")
    echo("(jurisdiction: where the hoster of record is established, what ATKM's orders "
         "reach;")
    echo(" server location: where the server stood, what hotline statistics count)")
    for flag, label in ((LocationFlag.FOREIGN_HOSTER_SERVER_NL,
                         "NL servers of foreign hosters"),
                        (LocationFlag.NL_HOSTER_SERVER_ABROAD,
                         "servers abroad of Dutch hosters")):
        hosts = crossed[flag]
        echo(f"{label}: {sum(hosts.values())} cases"
             + (" (" + ", ".join(f"{h} {n}" for h, n in sorted(hosts.items())) + ")"
                if hosts else ""))
    echo("")
    echo(f"browser checks ({GALLERY}, media never loaded by the browser): "
         f"{sum(browser.values())} (" + ", ".join(f"{v} {n}" for v, n in sorted(browser.items()))
         + ")")
