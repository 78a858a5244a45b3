"""`hostwatch demo` runs the whole pipeline and each demo hoster behaves as told."""

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from hostwatch.cli import main
from reports.location import LocationFlag, location_flag, server_location_of
from store import Attribution, Case, Check, Store


@pytest.mark.slow
def test_demo_shows_each_hosters_habit(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--dir", str(out), "--cases", "40"])
    assert result.exit_code == 0, result.output
    assert "round 4: run 4 finished" in result.output
    assert f"store:   {out / 'hostwatch.db'}" in result.output
    assert "--db sqlite:///" in result.output
    # The last line: how to browse the demo store (#15).
    last = result.output.rstrip().splitlines()[-1]
    assert last.startswith("browse:  ") and f"--db sqlite:///{out / 'hostwatch.db'} serve" in last
    assert "http://127.0.0.1:8001/" in last
    store = Store(f"sqlite:///{out / 'hostwatch.db'}")
    with store.session() as session:
        rows = session.execute(select(Case.host, Case.state, func.count())
                               .group_by(Case.host, Case.state)).all()
    states = {}
    for host, state, _count in rows:
        states.setdefault(host, set()).add(state)
    assert states["bulletproof.test"] == {"online"}
    assert states["fastnl-hosting.test"] == {"removed"}
    assert states["imgshare.test"] == {"removed"}  # soft-404 placeholders recognised
    assert states["edgecache.test"] == {"removed"}  # the file was replaced: changed
    assert states["comeback.test"] == {"reappeared"}
    assert states["shortlived.test"] == {"removed"}  # NXDOMAIN
    # Served again as WebP: the same picture by PDQ (reference learned from
    # the first round's SHA-256 match), so still online, never removed.
    assert states["webpcdn.test"] == {"online"}
    assert states["grensnet.test"] == {"removed"}
    with store.session() as session:
        recoded = session.execute(select(Check.verdict, func.count())
                                  .join(Case, Case.id == Check.case_id)
                                  .where(Case.host == "webpcdn.test")
                                  .group_by(Check.verdict)).all()
        learned = session.scalars(select(Case.ref_pdq_source)
                                  .where(Case.host == "webpcdn.test")).all()
    assert dict(recoded).keys() == {"online", "reencoded"}
    assert set(learned) == {"learned"}
    assert (out / "reports.csv").is_file()
    report = out / "hoster-report.html"
    assert f"hoster report (HTML): {report}" in result.output
    html = report.read_text()
    assert "Dutch Test Hosting B.V." in html and "<svg" in html
    # The method states the demo's own crawl settings, not the defaults (#15).
    assert "spanning at least 0 h" in html and "last check is 0 h old" in html
    pack = out / "evidence-atkm"
    assert (f"evidence pack (ATKM, Dutch Test Hosting B.V.): {pack} and {pack}.zip"
            in result.output)
    verified = CliRunner().invoke(main, ["--db", f"sqlite:///{out / 'hostwatch.db'}", "verify",
                                         "--pack", str(pack), "--pack", f"{pack}.zip"])
    assert verified.exit_code == 0, verified.output
    assert "ATKM-DEMO-" in (pack / "orders.csv").read_text()

    # Attribution: hosters, jurisdictions, a CDN-fronted host, a host that moved.
    with store.session() as session:
        seen = session.execute(select(Case.host, Attribution.hoster, Attribution.jurisdiction,
                                      Attribution.cdn)
                               .join(Attribution, Attribution.case_id == Case.id)
                               .where(Attribution.ip.is_not(None)).distinct()).all()
    who = {}
    for host, hoster, place, cdn in seen:
        who.setdefault(host, set()).add((hoster, place, cdn))
    assert who["fastnl-hosting.test"] == {("Dutch Test Hosting B.V.", "NL", None)}
    assert who["imgshare.test"] == {("Rhein Test Hosting GmbH", "EU", None)}
    assert who["edgecache.test"] == {(None, "unknown", "Cloudflare")}
    assert who["comeback.test"] == {("Polder Servers B.V.", "NL", None),
                                    ("Liberty Test Hosting LLC", "non-EU", None)}
    assert "Dutch-hosted (NL)" in result.output
    assert "CDN Cloudflare, origin unknown" in result.output
    # Both meanings of Dutch-hosted: a Dutch company with its server in
    # Germany, a US company with its server in Amsterdam.
    assert who["grensnet.test"] == {("Grens Test Hosting B.V.", "NL", None)}
    assert who["tohome.test"] == {("Transatlantic Test Hosting Inc.", "non-EU", None)}
    assert_server_split(store, result.output)

    # The JS gallery: every check of its pages ran in the browser, and its
    # items ended as their per-round scripts say (hostwatch/demo.py).
    with store.session() as session:
        gallery = session.execute(select(Case.url, Case.state, Check.method, Check.verdict)
                                  .join(Check, Check.case_id == Case.id)
                                  .where(Case.host == "jsgallery.test")).all()
    assert {method for _, _, method, _ in gallery} == {"browser"}
    assert len(gallery) == 7 * 4  # seven items, four rounds
    final = {url.rsplit("/", 1)[-1]: state for url, state, _, _ in gallery}
    assert final == {"d0": "online", "d1": "removed", "d2": "removed", "d3": "removed",
                     "d4": "removed", "d5": "removed", "d6": "reappeared"}
    verdicts = {verdict for _, _, _, verdict in gallery}
    assert verdicts == {"online", "placeholder", "changed", "redirect_away"}
    assert "browser checks (jsgallery.test" in result.output


def assert_server_split(store: Store, output: str) -> None:
    """The closing table's server-location split and cross counts are the
    store's (the attribution of record of each case, located by the lab's
    geolocation file, HOSTWATCH_GEOIP_DB); the Dutch company's German server
    and the US company's Amsterdam one are the two crossings."""
    with store.session() as session:
        rows = session.execute(select(Case.host, Attribution.jurisdiction,
                                      Attribution.server_country, Attribution.cdn)
                               .outerjoin(Attribution, Attribution.id == Case.attribution_id)
                               ).all()
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("server location "))
    table = {line[:22].strip(): int(line[22:].split()[0]) for line in lines[start + 1:start + 4]}
    servers = [server_location_of(cdn, server) for _, _, server, cdn in rows]
    assert any(cdn and server for _, _, server, cdn in rows)  # CDN edges are located...
    assert table == {"server in NL": sum(s == "NL" for s in servers),
                     "server abroad": sum(s is not None and s != "NL" for s in servers),
                     "unknown": sum(s is None for s in servers)}
    crossed = {flag: sorted({host for host, place, server, _ in rows
                             if location_flag(place, server) is flag})
               for flag in LocationFlag}
    counts = {flag: sum(location_flag(place, server) is flag for _, place, server, _ in rows)
              for flag in LocationFlag}
    assert (f"NL servers of foreign hosters: "
            f"{counts[LocationFlag.FOREIGN_HOSTER_SERVER_NL]} cases") in output
    assert (f"servers abroad of Dutch hosters: "
            f"{counts[LocationFlag.NL_HOSTER_SERVER_ABROAD]} cases") in output
    by_host = {host: server for host, _, server, _ in rows}
    assert (by_host["grensnet.test"], by_host["tohome.test"]) == ("DE", "NL")
    assert crossed[LocationFlag.NL_HOSTER_SERVER_ABROAD] == ["grensnet.test"]
    assert "tohome.test" in crossed[LocationFlag.FOREIGN_HOSTER_SERVER_NL]
