"""End to end on the local test internet: crawl, `hostwatch enrich`, and what
each case is attributed to."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from lab import Serve, marker_body
from store import Attribution, Case, CrawlRun, Hoster, Network, Store
from tests.crawler.conftest import add_cases
from tests.enrichment.conftest import cases_json, hostwatch

IMAGE = marker_body("attributed-image", kind="jpeg")


def _serve(host):
    host.default(Serve(IMAGE, content_type="image/jpeg"))
    return host


def test_each_case_gets_its_hoster_jurisdiction_and_cdn(db_url, net, tmp_path):
    store = Store(db_url)
    store.upgrade()
    sites = {
        "registered-nl": _serve(net.add_host("registered.test", network=64501)),
        "rdap-nl": _serve(net.add_host("polder.test", network=64502)),
        "de": _serve(net.add_host("rhein.test", network=64503)),
        "us": _serve(net.add_host("liberty.test", network=64504)),
        "reseller": _serve(net.add_host("reseller.test", network="OFFSHORE-RESELLER")),
        "us-block-in-nl": _serve(net.add_host("transatlantic.test", network=64506)),
        "spoofed-cdn": _serve(net.add_host("spoof.test", network=64501,
                                           headers={"CF-RAY": "8a0000000000-AMS",
                                                    "Server": "cloudflare"})),
        "cdn-registry": _serve(net.add_cdn_site("shop.test")),
        "cdn-headers": _serve(net.add_cdn_site("flare.test", mimic="cloudflare")),
        "nowhere": _serve(net.add_host("plain.test")),
    }
    urls = {key: host.url("/img/1.jpg") for key, host in sites.items()}
    add_cases(store, list(urls.values()))
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0

    result = hostwatch(db_url, net, tmp_path, "enrich")
    assert result.returncode == 0, result.stderr
    assert "10 checks attributed" in result.stdout
    cases = cases_json(db_url, net, tmp_path)
    got = {key: cases[url] for key, url in urls.items()}

    def who(key):
        row = got[key]
        return (row["hoster"], row["hoster_country"], row["jurisdiction"], row["dutch"],
                row["cdn"])

    assert who("registered-nl") == ("Dutch Test Hosting B.V.", "NL", "NL", True, None)
    assert got["registered-nl"]["asn"] == 64501
    assert got["registered-nl"]["ip"] == sites["registered-nl"].ip
    assert who("rdap-nl") == ("Polder Servers B.V.", "NL", "NL", True, None)
    assert who("de") == ("Rhein Test Hosting GmbH", "DE", "EU", False, None)
    assert who("us") == ("Liberty Test Hosting LLC", "US", "non-EU", False, None)
    # A reseller's block inside a Dutch AS that the registry does not list:
    # the RDAP holder decides, not the AS (a registered AS would decide first).
    assert got["reseller"]["asn"] == 64502
    assert who("reseller") == ("Offshore Test Reseller Ltd.", "SC", "non-EU", False, None)
    # A US company's block registered in NL: the holder's own country decides;
    # where the block is registered is kept beside it.
    assert who("us-block-in-nl") == ("Transatlantic Test Hosting Inc.", "US", "non-EU", False,
                                     None)
    # Cloudflare headers served from a Dutch hoster's own address do not hide it.
    assert who("spoofed-cdn") == ("Dutch Test Hosting B.V.", "NL", "NL", True, None)
    # CDN-fronted: the CDN is named, the origin is unknown, never Dutch.
    assert who("cdn-registry") == (None, None, "unknown", False, "TestCDN Inc.")
    assert who("cdn-headers")[:4] == (None, None, "unknown", False)
    assert who("cdn-headers")[4] == "Cloudflare"
    # No ASN, no RDAP network: nothing is made up.
    assert who("nowhere") == (None, None, "unknown", False, None)

    with store.session() as session:
        rows = {a.hostname: a for a in session.scalars(select(Attribution))}
    cdn = rows["shop.test"]
    assert cdn.cname_chain == [sites["cdn-registry"].edge_name]
    assert any("cf-ray" in e for e in rows["flare.test"].cdn_evidence)
    registered = rows["registered.test"]
    assert registered.sources["hoster"] == "registry:asn"
    assert registered.sources["asn"] == "asn_table"
    assert registered.abuse_email == "abuse@dutchhost.test"
    assert rows["polder.test"].sources["hoster"] == "rdap"
    assert registered.nameservers == ["ns1.test"]  # the .test zone's NS
    assert registered.ip == sites["registered-nl"].ip
    transatlantic = rows["transatlantic.test"]
    assert (transatlantic.rdap_country, transatlantic.rdap_org_country) == ("NL", "US")
    assert "not the CDN's" in rows["spoof.test"].sources["cdn"]
    with store.session() as session:
        hosters = {h.legal_name: h for h in session.scalars(select(Hoster))}
    # Unregistered hosters are kept with their RDAP abuse contact.
    assert hosters["Polder Servers B.V."].abuse == "abuse@polderservers.test"
    assert hosters["Dutch Test Hosting B.V."].source == "registry"


def test_enrich_is_idempotent_and_asks_rdap_once_per_network(db_url, net, tmp_path):
    store = Store(db_url)
    store.upgrade()
    hosts = [_serve(net.add_host(f"h{i}.test", network=64503)) for i in range(3)]
    add_cases(store, [h.url(f"/{j}.jpg") for h in hosts for j in range(4)])
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
    first = hostwatch(db_url, net, tmp_path, "enrich", HOSTWATCH_ENRICH_BATCH="5")
    assert first.returncode == 0, first.stderr
    assert "12 checks attributed" in first.stdout
    assert net.rdap_hit_count() == 1  # twelve checks, one network
    again = hostwatch(db_url, net, tmp_path, "enrich")
    assert "0 checks attributed" in again.stdout
    assert net.rdap_hit_count() == 1
    with store.session() as session:
        assert session.scalar(select(Network.org)) == "Rhein Test Hosting GmbH"


def test_enrich_summary_counts_failed_rdap_lookups_and_cache_hits(net, tmp_path):
    """A registry that fails is visible in the run's summary, not hidden
    behind a count of requests (issue #10, point 9)."""
    db_url = f"sqlite:///{tmp_path / 'summary.db'}"
    store = Store(db_url)
    store.upgrade()
    failing = _serve(net.add_host("down.test", network=64503))
    fine = [_serve(net.add_host(f"up{i}.test", network=64501)) for i in range(3)]
    add_cases(store, [failing.url("/a.jpg"), *(h.url("/b.jpg") for h in fine)])
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
    net.rdap_fail(net.network(64503), 503)
    result = hostwatch(db_url, net, tmp_path, "enrich")
    assert result.returncode == 0, result.stderr
    assert "4 checks attributed" in result.stdout
    # one request per network; the other two up*.test come from the cache
    assert "RDAP: 2 requests, 1 failed (1 http), 2 cache hits" in result.stdout
    store.dispose()


def test_offline_makes_no_rdap_request_and_no_dns_query(db_url, net, tmp_path):
    store = Store(db_url)
    store.upgrade()
    host = _serve(net.add_host("quiet.test", network=64502))
    add_cases(store, [host.url("/a.jpg")])
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
    # A nameserver that only listens: offline, it must hear nothing.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.setblocking(False)
        port = listener.getsockname()[1]
        result = hostwatch(db_url, net, tmp_path, "enrich", HOSTWATCH_OFFLINE="1",
                           HOSTWATCH_NAMESERVERS=f"127.0.0.1:{port}")
        with pytest.raises(BlockingIOError):
            listener.recv(512)
    assert result.returncode == 0, result.stderr
    assert net.rdap_hit_count() == 0
    row = cases_json(db_url, net, tmp_path)[host.url("/a.jpg")]
    # Without RDAP the AS names decide: the AS, its name and country; the
    # address is the one the crawler connected to.
    assert (row["asn"], row["hoster"], row["hoster_country"], row["ip"]) == (
        64502, "Polder Servers B.V.", "NL", host.ip)


def test_a_failing_rdap_server_is_recorded_and_asked_again_next_time(db_url, net, tmp_path):
    store = Store(db_url)
    store.upgrade()
    host = _serve(net.add_host("flaky.test", network=64504))
    add_cases(store, [host.url("/a.jpg")])
    network = net.network(64504)
    net.rdap_fail(network, status=503, times=1)
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
    assert hostwatch(db_url, net, tmp_path, "enrich").returncode == 0
    with store.session() as session:
        cached = session.scalars(select(Network)).one()
        assert (cached.status, "503" in (cached.error or "")) == ("error", True)
    # The next night's check is attributed with a fresh answer.
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
    assert hostwatch(db_url, net, tmp_path, "enrich").returncode == 0
    with store.session() as session:
        cached = {n.status: n for n in session.scalars(select(Network))}
        orgs = [a.rdap_org for a in session.scalars(select(Attribution)
                                                    .order_by(Attribution.check_id))]
    # The failure stays on record (under the prefix); the answer is kept by its range.
    assert set(cached) == {"error", "ok"}
    assert cached["ok"].prefix == "127.1.4.0-127.1.4.255"
    assert orgs == [None, "Liberty Test Hosting LLC"]


def test_a_host_that_moves_shows_as_two_attributions(db_url, net, tmp_path):
    store = Store(db_url)
    store.upgrade()
    mover = _serve(net.add_host("mover.test", network=64501))
    add_cases(store, [mover.url("/a.jpg")])
    assert hostwatch(db_url, net, tmp_path, "run").returncode == 0
    net.move_host("mover.test", 64503)
    time.sleep(1.5)  # the zone's TTL (1 s): cached answers expire
    result = hostwatch(db_url, net, tmp_path, "run")
    assert result.returncode == 0, result.stderr
    with store.session() as session:
        seen = session.execute(select(Attribution.hoster, Attribution.jurisdiction,
                                      Attribution.asn, Attribution.ip)
                               .order_by(Attribution.check_id)).all()
        case = session.scalars(select(Case)).one()
    assert [row[:3] for row in seen] == [("Dutch Test Hosting B.V.", "NL", 64501),
                                         ("Rhein Test Hosting GmbH", "EU", 64503)]
    assert seen[0].ip != seen[1].ip
    assert case.check_count == 2
    row = cases_json(db_url, net, tmp_path)[mover.url("/a.jpg")]
    assert row["hoster"] == "Rhein Test Hosting GmbH"  # the newest attribution


def test_whois_prints_the_attribution_of_an_address_and_of_a_url(db_url, net, tmp_path):
    host = _serve(net.add_host("who.test", network=64503))
    result = hostwatch(db_url, net, tmp_path, "whois", "--json", host.url("/x.jpg"))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["hostname"], data["ip"], data["asn"]) == ("who.test", host.ip, 64503)
    assert (data["hoster"], data["jurisdiction"], data["dutch"]) == (
        "Rhein Test Hosting GmbH", "EU", False)
    assert data["network"]["abuse_email"] == "abuse@rheinhost.test"
    text = hostwatch(db_url, net, tmp_path, "whois", host.ip)
    assert text.returncode == 0, text.stderr
    assert "Rhein Test Hosting GmbH" in text.stdout
    missing = hostwatch(db_url, net, tmp_path, "whois", "gone.test")
    assert missing.returncode == 1
    assert "no address for gone.test" in missing.stderr


def test_rdap_answers_are_reused_by_range_not_by_announced_prefix(net, tmp_path):
    """Two customers' blocks inside one announced prefix: each gets its own
    holder, and every further address is answered from the cache."""
    from enrichment.asn import AsnTable
    from enrichment.attribute import Attributor, Target
    from enrichment.rdap_client import RdapClient
    from kernel.config import Config

    store = Store(f"sqlite:///{tmp_path}/cache.db")
    store.upgrade()
    config = Config.from_env({"HOSTWATCH_RDAP_URL": net.rdap_url,
                              "HOSTWATCH_NAMESERVERS": net.nameservers_env,
                              "HOSTWATCH_ALLOW_PRIVATE": "127.0.0.0/8"})
    table = AsnTable.from_lines(["127.1.0.0/16\t64501"])  # one announcement for both
    rdap = RdapClient.from_config(config)
    first = Attributor(config, store, table=table, rdap=rdap)
    ips = ["127.1.1.20", "127.1.3.20", "127.1.1.21", "127.1.3.21", "::ffff:127.1.1.22"]
    orgs = [f.network.org for f in first.facts([Target(None, ip) for ip in ips])]
    assert orgs == ["Dutch Test Hosting B.V.", "Rhein Test Hosting GmbH",
                    "Dutch Test Hosting B.V.", "Rhein Test Hosting GmbH",
                    "Dutch Test Hosting B.V."]
    assert rdap.requests_made == 2
    # A new run reads the store's cache: no request at all.
    again = Attributor(config, store, table=table, rdap=rdap)
    assert again.facts([Target(None, "127.1.3.99")])[0].network.org == "Rhein Test Hosting GmbH"
    assert rdap.requests_made == 2
    # Addresses the guard refuses are never sent to a registry.
    strict = Attributor(Config.from_env({"HOSTWATCH_RDAP_URL": net.rdap_url}), store,
                        table=table, rdap=rdap)
    assert strict.facts([Target(None, "127.1.4.20")])[0].network.status == "non_public"
    assert rdap.requests_made == 2


# -- where the server stands (#14) ----------------------------------------------------


def test_cases_and_whois_show_server_location_operator_and_legal_entity(db_url, net, tmp_path):
    """The three facts side by side: where the server stood, who operates the
    network, and which company is established where."""
    store = Store(db_url)
    store.upgrade()
    sites = {"transatlantic": _serve(net.add_host("amsterdam.test", network=64506)),
             "reseller": _serve(net.add_host("resold.test", network="OFFSHORE-RESELLER")),
             "de": _serve(net.add_host("koeln.test", network=64503))}
    urls = {key: host.url("/img/1.jpg") for key, host in sites.items()}
    add_cases(store, list(urls.values()))
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
    geoip = str(net.geoip_path)  # the lab's file: where each test network's servers stand
    result = hostwatch(db_url, net, tmp_path, "enrich", HOSTWATCH_GEOIP_DB=geoip)
    assert result.returncode == 0, result.stderr
    cases = cases_json(db_url, net, tmp_path)
    us_in_nl = cases[urls["transatlantic"]]
    # A US company's servers in Amsterdam: hosted in NL by the hotlines'
    # count, not Dutch by establishment.
    assert (us_in_nl["server_country"], us_in_nl["server_country_source"]) == ("NL", "geoip")
    assert us_in_nl["geoip_built_at"] is not None
    assert (us_in_nl["asn"], us_in_nl["rdap_org"], us_in_nl["rdap_org_country"],
            us_in_nl["rdap_country"], us_in_nl["network_name"]) == (
        64506, "Transatlantic Test Hosting Inc.", "US", "NL", "TRANSATLANTIC-AMS")
    assert "Transatlantic" in us_in_nl["as_name"]
    assert (us_in_nl["hoster"], us_in_nl["hoster_country"], us_in_nl["dutch"]) == (
        "Transatlantic Test Hosting Inc.", "US", False)
    # A reseller's block inside a Dutch AS: the operator's AS and the block's holder differ.
    resold = cases[urls["reseller"]]
    assert (resold["asn"], resold["as_country"], resold["rdap_org"]) == (
        64502, "NL", "Offshore Test Reseller Ltd.")
    assert (resold["server_country"], resold["hoster_country"], resold["dutch"]) == (
        "SC", "SC", False)
    assert (cases[urls["de"]]["server_country"], cases[urls["de"]]["hoster_country"]) == (
        "DE", "DE")
    with store.session() as session:
        row = session.scalars(select(Attribution)
                              .where(Attribution.hostname == "amsterdam.test")).one()
    assert row.sources["server_country"].startswith("geoip (Lab-GeoIP-Country, built ")

    ip = sites["transatlantic"].ip
    data = json.loads(hostwatch(db_url, net, tmp_path, "whois", "--json", ip,
                                HOSTWATCH_GEOIP_DB=geoip).stdout)
    assert (data["server_country"], data["server_country_source"]) == ("NL", "geoip")
    assert data["geoip_built_at"] is not None
    assert (data["asn"], data["network"]["org"], data["network"]["country"]) == (
        64506, "Transatlantic Test Hosting Inc.", "NL")
    assert (data["hoster"], data["hoster_country"], data["dutch"]) == (
        "Transatlantic Test Hosting Inc.", "US", False)
    text = hostwatch(db_url, net, tmp_path, "whois", ip, HOSTWATCH_GEOIP_DB=geoip)
    assert text.returncode == 0, text.stderr
    line = next(x for x in text.stdout.splitlines() if x.startswith("server_country "))
    assert line.split(None, 1)[1].startswith("NL (geoip, database built 20")
    # Without a database the RDAP network's country stands in, marked so.
    plain = json.loads(hostwatch(db_url, net, tmp_path, "whois", "--json", ip).stdout)
    assert (plain["server_country"], plain["server_country_source"],
            plain["geoip_built_at"]) == ("NL", "rdap", None)


def test_cases_and_whois_name_the_reseller_block_holder_where_rdap_names_one(
        db_url, net, tmp_path):
    """The network operator in full: the AS, the RDAP holder, and the reseller
    through which the block was registered (lab: OFFSHORE-RESELLER's RDAP
    answer names Island Test Brokers Ltd. with role reseller)."""
    store = Store(db_url)
    store.upgrade()
    resold = _serve(net.add_host("resold.test", network="OFFSHORE-RESELLER"))
    plain = _serve(net.add_host("plain-nl.test", network=64501))
    urls = [resold.url("/img/1.jpg"), plain.url("/img/1.jpg")]
    add_cases(store, urls)
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
    assert hostwatch(db_url, net, tmp_path, "enrich").returncode == 0
    cases = cases_json(db_url, net, tmp_path)
    assert (cases[urls[0]]["asn"], cases[urls[0]]["rdap_org"],
            cases[urls[0]]["rdap_reseller"]) == (
        64502, "Offshore Test Reseller Ltd.", "Island Test Brokers Ltd.")
    assert cases[urls[0]]["hoster"] == "Offshore Test Reseller Ltd."  # the holder decides
    assert cases[urls[1]]["rdap_reseller"] is None
    with store.session() as session:
        row = session.scalars(select(Attribution)
                              .where(Attribution.hostname == "resold.test")).one()
        network = session.get(Network, row.network_id)
        assert (network.reseller, network.reseller_handle) == (
            "Island Test Brokers Ltd.", "RS-OFFSHORE-RESELLER-TEST")
    assert row.sources["rdap_reseller"] == "rdap"

    data = json.loads(hostwatch(db_url, net, tmp_path, "whois", "--json", resold.ip).stdout)
    assert (data["network"]["org"], data["network"]["reseller"],
            data["network"]["reseller_handle"]) == (
        "Offshore Test Reseller Ltd.", "Island Test Brokers Ltd.", "RS-OFFSHORE-RESELLER-TEST")
    text = hostwatch(db_url, net, tmp_path, "whois", resold.ip)
    assert text.returncode == 0, text.stderr
    assert ("reseller block holder: Island Test Brokers Ltd. (RS-OFFSHORE-RESELLER-TEST)"
            in text.stdout.splitlines())
    other = hostwatch(db_url, net, tmp_path, "whois", plain.ip)
    assert "Dutch Test Hosting B.V." in other.stdout
    assert "reseller block holder" not in other.stdout
    data = json.loads(hostwatch(db_url, net, tmp_path, "whois", "--json", plain.ip).stdout)
    assert (data["network"]["reseller"], data["network"]["reseller_handle"]) == (None, None)


def test_server_location_is_frozen_per_check(db_url, net, tmp_path):
    """A later database places the block elsewhere: new checks get its answer,
    checks attributed before keep the old one and its build time."""
    from tests.enrichment.test_geo import write_mmdb

    store = Store(db_url)
    store.upgrade()
    host = _serve(net.add_host("amsterdam.test", network=64506))
    add_cases(store, [host.url("/a.jpg")])
    block = str(net.network(64506).prefix)
    geoip = tmp_path / "GeoLite2-Country.mmdb"
    built_a, built_b = 1_761_955_200, 1_764_547_200  # 2025-11-01, 2025-12-01
    write_mmdb(geoip, {block: {"country": {"iso_code": "NL"}}}, built=built_a)
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
    first = hostwatch(db_url, net, tmp_path, "enrich", HOSTWATCH_GEOIP_DB=str(geoip))
    assert first.returncode == 0, first.stderr
    # The operator replaces the file with next month's: the block has moved.
    write_mmdb(geoip, {block: {"country": {"iso_code": "DE"}}}, built=built_b)
    again = hostwatch(db_url, net, tmp_path, "enrich", HOSTWATCH_GEOIP_DB=str(geoip))
    assert "0 checks attributed" in again.stdout  # nothing is redone
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
    second = hostwatch(db_url, net, tmp_path, "enrich", HOSTWATCH_GEOIP_DB=str(geoip))
    assert "1 checks attributed" in second.stdout, second.stdout
    with store.session() as session:
        seen = session.execute(select(Attribution.server_country,
                                      Attribution.server_country_source,
                                      Attribution.geoip_built_at)
                               .order_by(Attribution.check_id)).all()
    assert [tuple(row) for row in seen] == [
        ("NL", "geoip", datetime.fromtimestamp(built_a, UTC)),
        ("DE", "geoip", datetime.fromtimestamp(built_b, UTC))]
    row = cases_json(db_url, net, tmp_path)[host.url("/a.jpg")]
    assert (row["server_country"], row["geoip_built_at"]) == ("DE", "2025-12-01T00:00:00Z")
    store.dispose()


@pytest.mark.parametrize("content", [None, b"not a MaxMind DB\n" * 20])
def test_a_bad_geoip_database_stops_enrich_and_whois_naming_the_file(net, tmp_path, content):
    db_url = f"sqlite:///{tmp_path / 'bad-geoip.db'}"
    store = Store(db_url)
    store.upgrade()
    host = _serve(net.add_host("where.test", network=64503))
    add_cases(store, [host.url("/a.jpg")])
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
    geoip = tmp_path / "GeoLite2-Country.mmdb"
    if content is not None:
        geoip.write_bytes(content)
    said = "no such file" if content is None else "not a MaxMind DB file"
    for args in (("enrich",), ("whois", host.ip)):
        result = hostwatch(db_url, net, tmp_path, *args, HOSTWATCH_GEOIP_DB=str(geoip))
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert f"HOSTWATCH_GEOIP_DB='{geoip}'" in result.stderr
        assert said in result.stderr
        assert "Traceback" not in result.stderr
    # `run` says so before it crawls, not after an hour of crawling.
    result = hostwatch(db_url, net, tmp_path, "run", HOSTWATCH_GEOIP_DB=str(geoip))
    assert (result.returncode, said in result.stderr) == (1, True), result.stderr
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Attribution)) == 0
        assert session.scalar(select(func.count()).select_from(CrawlRun)) == 1
    store.dispose()


# -- review of #14: reseller handles, CDN edges, server-supplied text ----------------


def test_a_reseller_named_only_by_its_handle_is_kept_in_the_attribution():
    from enrichment.attribute import Facts, NetworkFacts, attribution_row

    now = datetime(2026, 12, 1, tzinfo=UTC)
    for reseller, handle, kept in [(None, "RS-ONLY-TEST", "RS-ONLY-TEST"),
                                   ("Broker Ltd.", "RS-1-TEST", "Broker Ltd."),
                                   (None, None, None)]:
        facts = Facts(hostname=None, ip="192.0.2.1", ip_source="given",
                      network=NetworkFacts(1, "ok", org="Holder B.V.", reseller=reseller,
                                           reseller_handle=handle))
        assert attribution_row(facts, 1, 1, now, None)["rdap_reseller"] == kept


def test_whois_gives_a_cdn_fronted_address_no_server_location(db_url, net, tmp_path):
    """The CDN's edge stands where the CDN answers, not where the material is
    hosted: whois reports no server country, and the edge's apart."""
    edge = _serve(net.add_cdn_site("fronted.test"))
    geoip = str(net.geoip_path)
    data = json.loads(hostwatch(db_url, net, tmp_path, "whois", "--json", edge.ip,
                                HOSTWATCH_GEOIP_DB=geoip).stdout)
    assert data["cdn"] == "TestCDN Inc."
    assert (data["server_country"], data["server_country_source"], data["geoip_built_at"]) == (
        None, None, None)
    assert (data["cdn_edge_country"], data["cdn_edge_country_source"]) == ("US", "geoip")
    text = hostwatch(db_url, net, tmp_path, "whois", edge.ip, HOSTWATCH_GEOIP_DB=geoip)
    assert text.returncode == 0, text.stderr
    line = next(x for x in text.stdout.splitlines() if x.startswith("server_country "))
    assert line.split(None, 1)[1] == (
        "none (served through CDN TestCDN Inc.; its edge is in US (geoip))")
    assert "cdn_edge_country" not in text.stdout
    # Without a database: the RDAP country is the edge's as well, never the server's.
    plain = json.loads(hostwatch(db_url, net, tmp_path, "whois", "--json", edge.ip).stdout)
    assert (plain["server_country"], plain["cdn_edge_country"],
            plain["cdn_edge_country_source"]) == (None, "US", "rdap")
    # A host that is not CDN-fronted keeps its server country and no edge.
    host = _serve(net.add_host("direct.test", network=64503))
    direct = json.loads(hostwatch(db_url, net, tmp_path, "whois", "--json", host.ip,
                                  HOSTWATCH_GEOIP_DB=geoip).stdout)
    assert (direct["server_country"], direct["cdn_edge_country"]) == ("DE", None)


def test_plain_whois_escapes_control_characters_a_server_sent(db_url, net, tmp_path):
    """A hostile RDAP server's text (org, reseller, network name) cannot
    clear the screen or retitle the terminal of whoever runs whois."""
    net.add_network(64590, "HOSTILE-NET Hostile B.V.", "NL", "Evil\x1b[2J Hosting\x07 B.V.",
                    "abuse@hostile.test", rdap_name="HOSTILE\x1b]0;pwned",
                    reseller="Broker\x9b31m\u202e Ltd.")
    host = _serve(net.add_host("hostile.test", network=64590))
    text = hostwatch(db_url, net, tmp_path, "whois", host.ip)
    assert text.returncode == 0, text.stderr
    assert not any(ch in text.stdout for ch in "\x1b\x07\x9b\u202e")
    # The registry's text is read clean (enrichment/rdap_parse.py): the
    # controls are dropped before anything stores or prints it.
    assert "Evil[2J Hosting B.V." in text.stdout
    assert "reseller block holder: Broker31m Ltd." in text.stdout
    data = json.loads(hostwatch(db_url, net, tmp_path, "whois", "--json", host.ip).stdout)
    assert data["network"]["org"] == "Evil[2J Hosting B.V."
    assert data["network"]["name"] == "HOSTILE]0;PWNED"  # the lab writes names upper-case


def test_the_whois_formatting_escapes_every_control_character():
    from kernel.text import printable

    assert printable("Plain B.V. — Ünïcode") == "Plain B.V. — Ünïcode"
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("x\x00\ty\nz\x7f\x85\x9b") == "x\\x00\\ty\\nz\\x7f\\x85\\x9b"
    assert printable("\u202egnp.exe") == "\\u202egnp.exe"
