"""Where the server stands (#14): MMDB lookups (`enrichment.geo.GeoDb`), the
RDAP fallback, and the attributor's use of both. Small MMDB files are written
here with mmdb_writer; nothing is downloaded."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import mmdb_writer
import pytest
from netaddr import IPSet

from enrichment.attribute import Attributor, Target
from enrichment.geo import GeoDb, GeoDbError, LocationSource, ServerLocation, server_location
from enrichment.rdap_client import RdapClient
from kernel.config import Config
from kernel.countries import country_code
from kernel.errors import EnrichmentError
from store import Store

BUILT = 1_764_547_200  # 2025-12-01 00:00 UTC


def write_mmdb(path, records, *, ip_version=6, database_type="Test-Country", built=BUILT):
    """An MMDB file of ``records`` (network -> record), built at ``built``."""
    writer = mmdb_writer.MMDBWriter(ip_version=ip_version, ipv4_compatible=ip_version == 6,
                                    database_type=database_type, description="test")
    for network, record in records.items():
        writer.insert_network(IPSet([network]), record)
    saved = mmdb_writer.time
    mmdb_writer.time = SimpleNamespace(time=lambda: built)
    try:
        writer.to_db_file(str(path))
    finally:
        mmdb_writer.time = saved
    return path


@pytest.fixture
def geolite(tmp_path):
    """GeoLite2-Country's layout (``country.iso_code``), IPv4 and IPv6."""
    return write_mmdb(tmp_path / "GeoLite2-Country.mmdb", {
        "198.51.100.0/24": {"country": {"iso_code": "NL", "names": {"en": "Netherlands"}}},
        "203.0.113.0/24": {"country": {"iso_code": "us"}},  # any case
        "2001:db8:1::/48": {"country": {"iso_code": "DE"}},
        "192.0.2.0/24": {"continent": {"code": "EU"}},  # a record without a country
    })


def test_ipv4_and_ipv6_addresses_are_located(geolite):
    with GeoDb(geolite) as geo:
        built = datetime.fromtimestamp(BUILT, UTC)
        assert geo.locate("198.51.100.7") == ServerLocation("NL", LocationSource.GEOIP, built)
        assert geo.locate("203.0.113.1").country == "US"
        assert geo.locate("2001:db8:1::5") == ServerLocation("DE", LocationSource.GEOIP, built)
        assert (geo.database_type, geo.built_at) == ("Test-Country", built)


def test_an_address_the_database_does_not_know_has_no_country(geolite):
    with GeoDb(geolite) as geo:
        for ip in ("100.64.0.1", "2001:db8:2::1", "192.0.2.9"):
            located = geo.locate(ip)
            assert (located.country, located.source) == (None, LocationSource.GEOIP), ip


def test_an_ipv4_only_database_knows_no_ipv6_address(tmp_path):
    path = write_mmdb(tmp_path / "v4.mmdb", {"198.51.100.0/24": {"country": {"iso_code": "NL"}}},
                      ip_version=4)
    with GeoDb(path) as geo:
        assert geo.locate("198.51.100.1").country == "NL"
        assert geo.locate("2001:db8::1").country is None


def test_ipinfo_lite_records_carry_the_code_at_the_top_level(tmp_path):
    path = write_mmdb(tmp_path / "ipinfo_lite.mmdb", {
        "198.51.100.0/24": {"asn": "AS64501", "as_name": "Example", "country": "Netherlands",
                            "country_code": "NL", "continent": "Europe",
                            "continent_code": "EU"},
        "2001:db8::/32": {"country": "Germany", "country_code": "de"},
    }, database_type="ipinfo lite.mmdb")
    with GeoDb(path) as geo:
        assert geo.locate("198.51.100.20").country == "NL"
        assert geo.locate("2001:db8::20").country == "DE"


def test_a_missing_file_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "GeoLite2-Country.mmdb"
    with pytest.raises(GeoDbError, match="GeoLite2-Country.mmdb") as caught:
        GeoDb(missing)
    assert "no such file" in str(caught.value)
    assert isinstance(caught.value, EnrichmentError)
    assert GeoDb.from_setting("  ") is None


@pytest.mark.parametrize("content", [b"", b"not a maxmind database\n" * 50,
                                     b"\xab\xcd\xefMaxMind.com" + b"\x00" * 64])
def test_a_corrupt_file_is_an_error_naming_it(tmp_path, content):
    corrupt = tmp_path / "corrupt.mmdb"
    corrupt.write_bytes(content)
    with pytest.raises(GeoDbError, match="corrupt.mmdb") as caught:
        GeoDb(corrupt)
    assert "not a MaxMind DB file" in str(caught.value)


def test_the_rule_database_first_then_rdap_marked_then_nothing():
    built = datetime.fromtimestamp(BUILT, UTC)
    found = ServerLocation("NL", LocationSource.GEOIP, built)
    unknown = ServerLocation(None, LocationSource.GEOIP, built)
    assert server_location(found, "US") == found
    assert server_location(unknown, "us") == ServerLocation("US", LocationSource.RDAP)
    assert server_location(None, "DE") == ServerLocation("DE", LocationSource.RDAP)
    assert server_location(None, None) == ServerLocation(None, None)
    assert server_location(None, "EU-ish") == ServerLocation(None, None)  # never a guess


# -- the attributor ------------------------------------------------------------------


def _attributor(net, store, geoip_db=""):
    config = Config.from_env({"HOSTWATCH_RDAP_URL": net.rdap_url,
                              "HOSTWATCH_NAMESERVERS": net.nameservers_env,
                              "HOSTWATCH_ALLOW_PRIVATE": "127.0.0.0/8",
                              "HOSTWATCH_ASN_DB": str(net.asn_table_path),
                              "HOSTWATCH_ASNAMES": str(net.asnames_path),
                              "HOSTWATCH_GEOIP_DB": geoip_db})
    attributor = Attributor.from_config(config, store)
    assert attributor.rdap is None or isinstance(attributor.rdap, RdapClient)
    return attributor


def test_the_attributor_locates_servers_by_database_else_by_rdap(net, tmp_path):
    store = Store(f"sqlite:///{tmp_path}/geo.db")
    store.upgrade()
    transatlantic = net.network(64506)  # a US company; its block registered in NL
    rhein = net.network(64503)
    in_block = str(transatlantic.prefix.network_address + 20)
    rhein_ip = str(rhein.prefix.network_address + 20)
    # The database places the US company's block in Amsterdam and knows
    # nothing of the German one.
    path = write_mmdb(tmp_path / "partial.mmdb",
                      {str(transatlantic.prefix): {"country": {"iso_code": "NL"}}})
    targets = [Target(None, in_block), Target(None, rhein_ip), Target("gone.test")]
    with _attributor(net, store, str(path)) as attributor:
        geo = attributor.geo
        assert geo is not None
        located, fallback, nothing = attributor.facts(targets)
    assert attributor.geo is None  # closed
    assert (located.server.country, located.server.source) == ("NL", "geoip")
    assert located.server.built_at == datetime.fromtimestamp(BUILT, UTC)
    assert located.sources["server_country"] == "geoip (Test-Country, built 2025-12-01)"
    # The legal entity stays the US company: the two meanings side by side.
    assert (located.decision.country, located.dutch) == ("US", False)
    data = located.as_dict()
    assert (data["server_country"], data["server_country_source"], data["hoster_country"],
            data["geoip_built_at"]) == ("NL", "geoip", "US", "2025-12-01T00:00:00Z")
    # An address the database does not know: the RDAP network's country, marked.
    assert (fallback.server.country, fallback.server.source) == ("DE", "rdap")
    assert fallback.server.built_at is None
    # The frozen record names the database build that was asked and did not know it.
    assert fallback.sources["server_country"] == (
        "rdap (the network's registered country; the geolocation database gives no "
        "country for the address (Test-Country, built 2025-12-01))")
    # No address: no server country.
    assert nothing.ip is None
    assert (nothing.server.country, nothing.as_dict()["server_country_source"]) == (None, None)

    # Without a database: every country comes from RDAP, marked so.
    with _attributor(net, store) as attributor:
        assert attributor.geo is None
        plain = attributor.facts([Target(None, in_block)])[0]
    assert (plain.server.country, plain.server.source) == ("NL", "rdap")
    assert plain.sources["server_country"] == (
        "rdap (the network's registered country; no geolocation database)")
    assert plain.as_dict()["geoip_built_at"] is None
    store.dispose()


def test_the_attributor_refuses_a_bad_database_by_name(net, tmp_path):
    store = Store(f"sqlite:///{tmp_path}/geo.db")
    store.upgrade()
    bad = tmp_path / "broken.mmdb"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(GeoDbError, match="broken.mmdb"):
        _attributor(net, store, str(bad))
    store.dispose()


@pytest.mark.parametrize(("raw", "stored"), [
    ("nl", "NL"), (" de ", "DE"), ("XK", "XK"), ("EU", None), ("AP", None), ("ZZ", None),
    ("UK", "GB"), ("el", "GR"),  # one country, one code: as its establishment is read
    ("XX", None), ("QZ", None), ("N1", None), ("NLD", None), ("", None), (None, None),
])
def test_only_codes_of_one_country_are_stored(raw, stored):
    """What the report's split and the pack's flags count: a region or an
    'unknown' code is no server location (kernel/countries.py)."""
    assert country_code(raw) == stored
    assert server_location(None, raw).country == stored


def test_a_folder_or_an_unreadable_file_is_named(tmp_path):
    with pytest.raises(GeoDbError, match=rf"HOSTWATCH_GEOIP_DB='{tmp_path}': not a file"):
        GeoDb(tmp_path)


# -- review of #14: files without countries, the legacy IPinfo layout, ARIN -------

@pytest.mark.parametrize("database_type", [
    "GeoLite2-ASN", "GeoIP2-ISP", "GeoIP2-Anonymous-IP", "GeoIP2-Connection-Type",
    "GeoIP2-Domain", "DBIP-ASN-Lite", "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
])
def test_a_database_without_country_data_is_refused_naming_file_and_type(
        tmp_path, database_type):
    """An ASN (or ISP, anonymity...) file opens fine as MaxMind DB and would
    locate nothing, silently: it is refused at open, by name and type."""
    path = write_mmdb(tmp_path / "wrong.mmdb", {
        "198.51.100.0/24": {"autonomous_system_number": 64501,
                            "autonomous_system_organization": "Example B.V."},
    }, database_type=database_type)
    with pytest.raises(GeoDbError, match="wrong.mmdb") as caught:
        GeoDb(path)
    assert f"a {database_type!r} database holds no country data" in str(caught.value)


def test_a_file_of_another_type_is_judged_by_its_records(tmp_path):
    """A type no list names: refused when its records hold no country,
    opened when they do (also beside ISP data: "DBIP-Location-ISP")."""
    countryless = write_mmdb(tmp_path / "custom.mmdb", {
        "198.51.100.0/24": {"connection_type": "Corporate"}}, database_type="Acme-Feed")
    with pytest.raises(GeoDbError, match=r"custom.mmdb.*'Acme-Feed' database holds no country"):
        GeoDb(countryless)
    located = write_mmdb(tmp_path / "location-isp.mmdb", {
        "198.51.100.0/24": {"country": {"iso_code": "NL"}, "isp": "Example B.V."}},
        database_type="DBIP-Location-ISP (compat=Enterprise)")
    with GeoDb(located) as geo:
        assert geo.locate("198.51.100.1").country == "NL"


def test_legacy_ipinfo_country_records_carry_the_code_as_country(tmp_path):
    path = write_mmdb(tmp_path / "country.mmdb", {
        "198.51.100.0/24": {"country": "NL", "continent": "EU"},
        "2001:db8::/32": {"country": "de"},
        "203.0.113.0/24": {"country": "Netherlands"},  # a name is no code
    }, database_type="ipinfo country.mmdb")
    with GeoDb(path) as geo:
        assert geo.locate("198.51.100.20").country == "NL"
        assert geo.locate("2001:db8::20").country == "DE"
        assert geo.locate("203.0.113.1").country is None


@pytest.mark.parametrize("ip", ["74.125.225.229", "2001:4860:4860::8888"])
def test_an_arin_network_gives_no_server_country_without_a_database(net, tmp_path, ip):
    """ARIN's network objects carry no country: the holder's postal address
    (Google, US) is where the company sits, not where the server stands, so
    without a geolocation database there is no server country at all. The
    lab's RDAP server answers with the real ARIN answers; nothing connects
    to the address."""
    store = Store(f"sqlite:///{tmp_path}/arin.db")
    store.upgrade()
    with _attributor(net, store) as attributor:
        facts = attributor.facts([Target(None, ip)])[0]
    assert facts.network.status == "ok"
    assert (facts.network.org, facts.network.org_country) == ("Google Inc.", "US")
    assert facts.network.country is None
    assert facts.server == ServerLocation(None, None)
    assert facts.sources["server_country"] == "none"
    data = facts.as_dict()
    assert (data["server_country"], data["server_country_source"]) == (None, None)
    # The establishment still follows the holder's own country.
    assert facts.decision is not None and facts.decision.country == "US"
    store.dispose()
