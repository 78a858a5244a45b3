"""enrichment.asn, .rdap_parse and .rdap_client: the prefix table, AS names, RDAP
parsing and the RDAP client.

Real data (lab/data/realdata) is only looked up, never connected to; the
RDAP client talks to a real HTTP server on 127.0.0.1 started here.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from enrichment import EnrichmentError
from enrichment.asn import AsName, AsNames, AsnTable, DataFileError, parse_as_name
from enrichment.rdap_client import RdapClient
from enrichment.rdap_parse import RdapError, RdapErrorKind, parse_rdap
from kernel.config import Config
from lab.rdap import REALDATA
from outbound.guard import parse_networks

REAL_RDAP: dict[str, Any] = json.loads((REALDATA / "rdap_responses.json").read_text("utf-8"))


# -- the prefix table -------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_table() -> AsnTable:
    return AsnTable.load(REALDATA / "ipasn_20140513.dat.gz")


@pytest.mark.parametrize(("ip", "asn", "prefix"), [
    ("85.17.1.1", 16265, "85.17.0.0/16"),  # LeaseWeb
    ("78.46.1.1", 24940, "78.46.0.0/15"),  # Hetzner
    ("5.39.1.1", 16276, "5.39.0.0/17"),  # OVH
    ("8.8.8.8", 15169, "8.8.8.0/24"),  # Google, inside Level 3's 8.0.0.0/8 and /9
    ("78.46.65.213", 24940, "78.46.65.213/32"),  # a /32 inside Hetzner's /15
])
def test_real_table_gives_origin_asn_and_most_specific_prefix(
        real_table: AsnTable, ip: str, asn: int, prefix: str) -> None:
    assert real_table.lookup(ip) == (asn, prefix)


def test_real_table_loads_every_prefix_and_knows_unannounced_space(real_table: AsnTable) -> None:
    assert len(real_table) == 512_621  # as the file's header says
    assert real_table.lookup("10.1.2.3") is None
    assert real_table.lookup("2001:db8::1") is None  # an IPv4-only table


def test_ipv4_mapped_ipv6_address_is_looked_up_as_ipv4(real_table: AsnTable) -> None:
    assert real_table.lookup("::ffff:85.17.1.1") == (16265, "85.17.0.0/16")


def test_small_table_from_lines() -> None:
    table = AsnTable.from_lines([
        "; a test table", "192.0.2.0/24\t64500", "192.0.2.128/25\t64501", "",
        "2001:db8::/32\t64502",
    ])
    assert len(table) == 3
    assert table.lookup("192.0.2.1") == (64500, "192.0.2.0/24")
    assert table.lookup("192.0.2.200") == (64501, "192.0.2.128/25")
    assert table.lookup("2001:db8::1") == (64502, "2001:db8::/32")
    assert table.lookup("198.51.100.1") is None


def test_lookup_of_a_non_address_is_an_enrichment_error() -> None:
    table = AsnTable.from_lines("192.0.2.0/24\t64500\n")
    with pytest.raises(EnrichmentError, match="not an IP address: 'example.nl'"):
        table.lookup("example.nl")


BAD_TABLE = "; comment\n; another\n192.0.2.0/24\t64500\n\n192.0.2.999/24\t64501\n"


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_bad_table_line_is_named_with_file_and_line(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / ("bad.dat.gz" if compress else "bad.dat")
    data = BAD_TABLE.encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(DataFileError) as caught:
        AsnTable.load(path)
    assert caught.value.line == 5
    assert f"{path}, line 5: not a prefix: '192.0.2.999/24'" in str(caught.value)


@pytest.mark.parametrize(("text", "line", "problem"), [
    ("192.0.2.0/24\t64500\nhello world\n", 2, "expected 'prefix<TAB>asn'"),
    ("192.0.2.0/24 64500\n", 1, "expected 'prefix<TAB>asn'"),
    ("; c\n192.0.2.0/24\tAS64500\n", 2, "not an ASN"),
    ("192.0.2.0/24\t64500\n192.0.2.0/24\t-5\n", 2, "ASN out of range"),
    ("192.0.2.0/24\t99999999999\n", 1, "ASN out of range"),
])
def test_garbled_lines_are_refused_with_their_number(text: str, line: int, problem: str) -> None:
    with pytest.raises(DataFileError, match=problem) as caught:
        AsnTable.from_lines(text, source="test.dat")
    assert caught.value.line == line
    assert str(caught.value).startswith(f"test.dat, line {line}: ")


def test_missing_empty_and_broken_table_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.dat"
    with pytest.raises(DataFileError, match=f"{missing}: no such file"):
        AsnTable.load(missing)
    only_comments = tmp_path / "empty.dat"
    only_comments.write_text("; nothing here\n")
    with pytest.raises(DataFileError, match=f"{only_comments}: no prefixes"):
        AsnTable.load(only_comments)
    truncated = tmp_path / "cut.dat.gz"
    truncated.write_bytes(gzip.compress(BAD_TABLE.encode() * 50)[:40])
    with pytest.raises(DataFileError, match=f"{truncated}: broken gzip data"):
        AsnTable.load(truncated)
    binary = tmp_path / "binary.dat"
    binary.write_bytes(b"192.0.2.0/24\t64500\n\xff\xfe\x00\n")
    with pytest.raises(DataFileError, match=f"{binary}, line 2: not UTF-8 text"):
        AsnTable.load(binary)


# -- AS names ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_names() -> AsNames:
    return AsNames.load(REALDATA / "asnames.json.gz")


@pytest.mark.parametrize("expected", [
    AsName(16265, "LEASEWEB-NETWORK", "LeaseWeb Network B.V.", "NL"),
    AsName(24940, "HETZNER-AS", "Hetzner Online GmbH", "DE"),
    AsName(16276, "OVH", "OVH SAS", "FR"),
    AsName(15169, "GOOGLE", "Google Inc.", "US"),  # "GOOGLE - Google Inc., US"
])
def test_real_as_names(real_names: AsNames, expected: AsName) -> None:
    assert real_names.get(expected.asn) == expected


def test_real_as_names_size_and_unknown_asn(real_names: AsNames) -> None:
    assert len(real_names) == 77_586
    assert real_names.get(4_200_000_000) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("LVLT-1 - Level 3 Communications, Inc., US",
     AsName(1, "LVLT-1", "Level 3 Communications, Inc.", "US")),
    ("Servicoop S.A., AR", AsName(1, None, "Servicoop S.A.", "AR")),
    ("ADETEL, S.A. DE C.V., MX", AsName(1, None, "ADETEL, S.A. DE C.V.", "MX")),
    ("CABLEMAR, HN", AsName(1, None, "CABLEMAR", "HN")),
    ("-Reserved AS-, ZZ", AsName(1, None, "-Reserved AS-", None, reserved=True)),
    ("-Private Use AS-, ZZ", AsName(1, None, "-Private Use AS-", None, reserved=True)),
    ("RESEARCH-INT Research International Network, ZZ",
     AsName(1, "RESEARCH-INT", "Research International Network", None)),
    ("SLLNET Stockholms Lans Landsting, na",  # "na" is no country code
     AsName(1, "SLLNET", "Stockholms Lans Landsting", None)),
    ("TELEFÔNICA BRASIL S.A, BR", AsName(1, None, "TELEFÔNICA BRASIL S.A", "BR")),
])
def test_odd_as_name_entries_of_the_real_file(text: str, expected: AsName) -> None:
    assert parse_as_name(1, text) == expected


def test_bad_as_names_files_name_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "names.json"
    broken.write_text('{\n  "1": "A",\n  "2": "B"\n  "3": "C"\n}\n')
    with pytest.raises(DataFileError, match=f"{broken}, line 4: not JSON"):
        AsNames.load(broken)
    wrong = tmp_path / "wrong.json.gz"
    wrong.write_bytes(gzip.compress(b'{"AS1": "A, US"}'))
    with pytest.raises(DataFileError, match=f"{wrong}: bad entry 'AS1'"):
        AsNames.load(wrong)


# -- RDAP answers -----------------------------------------------------------------------

# Read by hand from realdata/rdap_responses.json. The org is the registrant's
# name; None where the answer names no registrant with a name.
RDAP_EXPECTED: dict[str, dict[str, Any]] = {
    # RIPE (old format): the only registrant is BTENT-MNT, a maintainer named
    # inside the abuse entity, without vCard: no org. The abuse entity lists
    # three addresses; the first counts.
    "2a00:2381:ffff::1": dict(
        name="BT-WORLD-IPVSIX-LAUNCH", handle="2a00:2381:ffff::/64", org=None,
        org_handle="BTENT-MNT", country="GB", abuse_email="zzdnsr@bt.com",
        cidr="2a00:2381:ffff::/64", registry="ripencc"),
    "62.239.237.1": dict(
        name="BT-CORPORATE", handle="62.239.237.0 - 62.239.237.255", org=None,
        org_handle="BTENT-MNT", country="GB", abuse_email="zzdnsr@bt.com",
        cidr="62.239.237.0/24", start_address="62.239.237.0", registry="ripencc"),
    # APNIC: only JPNIC's technical/administrative contact, no registrant and
    # no abuse contact in the answer.
    "2001:240:10c:1::ca20:9d1d": dict(
        name="IIJ-JPNIC-JP-20000308", handle="2001:0240::/32", org=None, org_handle=None,
        country="JP", abuse_email=None, cidr="2001:240::/32", registry="apnic"),
    # APNIC: the abuse role is KRNIC's IRT (hostmaster@nic.or.kr);
    # abuse@bora.net appears only on the technical/administrative contact.
    "210.107.73.73": dict(
        name="BORANET-NET-210-107", handle="210.107.0.0 - 210.107.127.255", org=None,
        org_handle=None, country="KR", abuse_email="hostmaster@nic.or.kr",
        cidr="210.107.0.0/17", registry="apnic"),
    # AFRINIC: entities without roles; the org entity's fn is its handle
    # (no name), and no abuse contact in the answer.
    "2001:43f8:7b0::": dict(
        name="ORG-TA38-AFRINIC", handle="2001:43f8:07b0::/48", org=None,
        org_handle="ORG-TA38-AFRINIC", country="KE", abuse_email=None,
        cidr="2001:43f8:7b0::/48", registry="afrinic"),
    "196.11.240.215": dict(
        name="ORG-VSA1-AFRINIC", handle="196.11.239.0 - 196.11.246.255", org=None,
        org_handle="ORG-VSA1-AFRINIC", country="ZA", abuse_email=None,
        cidr="196.11.239.0/24, 196.11.240.0/22, 196.11.244.0/23, 196.11.246.0/24",
        registry="afrinic"),
    # LACNIC: registrant org at the top, the abuse contact is a person.
    "200.57.141.161": dict(
        name="Triara.com, S.A. de C.V.", handle="200.57.141.161",
        org="Triara.com, S.A. de C.V.", org_handle="MX-TSCV6-LACNIC", country="MX",
        abuse_email="operacion.redes@TRIARA.COM", cidr="200.57.141.161/32",
        registry="lacnic"),
    "2801:10:c000::": dict(
        name="Universidad Catolica de Oriente", handle="2801:10:c000::",
        org="Universidad Catolica de Oriente", org_handle="CO-UCOR-LACNIC", country="CO",
        abuse_email="sistemas.red@UCO.EDU.CO", cidr="2801:10:c000::/128",
        registry="lacnic"),
    # ARIN: no network country (None: the holder's address is not where the
    # block is used); the holder's country US from the registrant's address
    # label ("UNITED STATES"). The abuse POC is nested inside the org entity.
    "74.125.225.229": dict(
        name="GOOGLE", handle="NET-74-125-0-0-1", org="Google Inc.", org_handle="GOGL",
        country=None, org_country="US", abuse_email="arin-contact@google.com",
        cidr="74.125.0.0/16", start_address="74.125.0.0", end_address="74.125.255.255",
        registry="arin"),
    "2001:4860:4860::8888": dict(
        name="GOOGLE-IPV6", handle="NET6-2001-4860-1", org="Google Inc.", org_handle="GOGL",
        country=None, org_country="US", abuse_email="arin-contact@google.com",
        cidr="2001:4860::/32", start_address="2001:4860::", registry="arin"),
}


def test_every_real_answer_has_expectations() -> None:
    assert sorted(RDAP_EXPECTED) == sorted(REAL_RDAP)


@pytest.mark.parametrize("ip", sorted(RDAP_EXPECTED))
def test_real_rdap_answer_parses_to_the_holder(ip: str) -> None:
    info = parse_rdap(REAL_RDAP[ip]["response"])
    expected = RDAP_EXPECTED[ip]
    assert {key: getattr(info, key) for key in expected} == expected
    assert info.source == "rdap"


@pytest.mark.parametrize("ip", sorted(RDAP_EXPECTED))
def test_an_answer_without_a_reseller_entity_names_no_reseller(ip: str) -> None:
    info = parse_rdap(REAL_RDAP[ip]["response"])
    assert (info.reseller, info.reseller_handle) == (None, None)


def _reseller(handle: str, name: str | None, kind: str = "org") -> dict[str, Any]:
    card: list[list[Any]] = [["version", {}, "text", "4.0"], ["kind", {}, "text", kind]]
    if name is not None:
        card.insert(1, ["fn", {}, "text", name])
    return {"objectClassName": "entity", "handle": handle, "roles": ["reseller"],
            "vcardArray": ["vcard", card]}


def _arin_with(*resellers: dict[str, Any], nested: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """The real ARIN answer for 74.125.225.229 (Google) with reseller
    entities ADDED: none of the real answers names one."""
    raw = copy.deepcopy(REAL_RDAP["74.125.225.229"]["response"])
    raw["entities"].extend(resellers)
    if nested is not None:  # inside the holder's entity (GOGL)
        raw["entities"][0].setdefault("entities", []).append(nested)
    return raw


def test_a_reseller_entity_names_the_reseller_block_holder_beside_the_holder() -> None:
    info = parse_rdap(_arin_with(_reseller("RSL-1-TEST", "Example Reseller LLC")))
    assert (info.reseller, info.reseller_handle) == ("Example Reseller LLC", "RSL-1-TEST")
    # The holder stays the registrant, the abuse contact the nested POC.
    assert (info.org, info.org_handle, info.abuse_email) == (
        "Google Inc.", "GOGL", "arin-contact@google.com")


def test_registry_text_is_stored_clean_of_control_characters() -> None:
    """A hostile registry's names reach the store (PostgreSQL refuses NUL),
    terminals and packs: control and format characters are dropped, line
    breaks and tabs become spaces; the ARIN label's lines still give the
    holder's country."""
    raw = _arin_with(_reseller("RSL-\x1b[2J1", "Evil\x1b[31mRED\x07\r\nFAKE:\tline\x00nul"
                                                "\u202eRTL\x9b"))
    raw["name"] = "GOOGLE\x00-NET\n"
    info = parse_rdap(raw)
    assert info.reseller == "Evil[31mRED  FAKE: linenulRTL"
    assert info.reseller_handle == "RSL-[2J1"
    assert info.name == "GOOGLE-NET"
    assert (info.org, info.org_country) == ("Google Inc.", "US")


def test_the_reseller_is_the_networks_own_named_org_entity() -> None:
    person = _reseller("P-RSL-TEST", "Some Reseller Person", kind="individual")
    org = _reseller("ORG-RSL-TEST", "Reseller Org Ltd.")
    # An org before a person, whatever the order.
    assert parse_rdap(_arin_with(person, org)).reseller == "Reseller Org Ltd."
    # The network's own before one nested in the holder's entity (the
    # holder's reseller, not the network's), even a person before a nested
    # org; a person is kept by handle only (privacy).
    nested = _reseller("ORG-NESTED-TEST", "Nested Reseller Ltd.")
    by_person = parse_rdap(_arin_with(person, nested=nested))
    assert (by_person.reseller, by_person.reseller_handle) == (None, "P-RSL-TEST")
    assert parse_rdap(_arin_with(nested=nested)).reseller == "Nested Reseller Ltd."
    # A name that merely repeats the handle is no name: a named one is
    # preferred, and alone it leaves only the handle.
    bare = _reseller("ORG-RS9-ARIN", "ORG-RS9-ARIN")
    assert parse_rdap(_arin_with(bare, org)).reseller_handle == "ORG-RSL-TEST"
    alone = parse_rdap(_arin_with(bare))
    assert (alone.reseller, alone.reseller_handle) == (None, "ORG-RS9-ARIN")
    no_card = parse_rdap(_arin_with(_reseller("RS-NOCARD-TEST", None)))
    assert (no_card.reseller, no_card.reseller_handle) == (None, "RS-NOCARD-TEST")


def test_the_networks_own_handle_only_reseller_beats_a_named_nested_one() -> None:
    """Depth before name: a reseller named inside the holder's entity is the
    holder's, so the network's own reseller wins even when RDAP gives it only
    a handle."""
    nested = _reseller("ORG-NESTED-TEST", "Nested Reseller Ltd.")
    for own in (_reseller("RS-OWN-TEST", None), _reseller("RS-OWN-TEST", "RS-OWN-TEST")):
        info = parse_rdap(_arin_with(own, nested=nested))
        assert (info.reseller, info.reseller_handle) == (None, "RS-OWN-TEST")


def test_a_reseller_who_is_a_person_is_kept_by_handle_only() -> None:
    """A natural person's name is not stored (privacy): kind individual."""
    person = _reseller("P-RSL-TEST", "Jan Jansen", kind="individual")
    info = parse_rdap(_arin_with(person))
    assert (info.reseller, info.reseller_handle) == (None, "P-RSL-TEST")
    assert "Jan Jansen" not in repr(info)
    # Beside a nameless org of the network's own, the org is chosen.
    bare = _reseller("ORG-RS9-ARIN", None)
    assert parse_rdap(_arin_with(person, bare)).reseller_handle == "ORG-RS9-ARIN"


def _ripe_style(abuse_nested: bool = True) -> dict[str, Any]:
    """A network shaped like today's RIPE answers: the abuse contact inside the org."""
    abuse = {"handle": "AR1-TEST", "roles": ["abuse"], "vcardArray": ["vcard", [
        ["version", {}, "text", "4.0"], ["fn", {}, "text", "Abuse desk"],
        ["email", {}, "text", "abuse@hoster.test"]]]}
    org = {"handle": "ORG-HT1-TEST", "roles": ["registrant"], "vcardArray": ["vcard", [
        ["version", {}, "text", "4.0"], ["fn", {}, "text", "Hoster Test B.V."],
        ["kind", {}, "text", "org"],
        ["adr", {"label": "Straat 1\nAmsterdam\nNetherlands"}, "text", None]]]}
    admin = {"handle": "P1-TEST", "roles": ["administrative", "registrant"],
             "vcardArray": ["vcard", [["fn", {}, "text", "Some Person"],
                                      ["kind", {}, "text", "individual"]]]}
    if abuse_nested:
        org["entities"] = [abuse]
    return {"objectClassName": "ip network", "handle": "192.0.2.0 - 192.0.2.255",
            "startAddress": "192.0.2.0", "endAddress": "192.0.2.255", "name": "HOSTER-NET",
            "country": "NL", "port43": "whois.ripe.net",
            "entities": [admin, org] if abuse_nested else [admin, org, abuse]}


def test_org_prefers_named_org_registrant_and_finds_nested_abuse_contact() -> None:
    info = parse_rdap(_ripe_style())
    assert (info.org, info.org_handle) == ("Hoster Test B.V.", "ORG-HT1-TEST")
    assert info.abuse_email == "abuse@hoster.test"
    assert (info.cidr, info.country, info.registry) == ("192.0.2.0/24", "NL", "ripencc")


def test_the_network_country_is_never_the_registrants_address() -> None:
    """The network's country stands in for where the server is (#14): the
    holder's postal address is kept as org_country, never put in its place."""
    raw = _ripe_style()
    del raw["country"]
    raw["entities"][1]["vcardArray"][1][3] = ["adr", {"cc": "de"}, "text", None]
    info = parse_rdap(raw)
    assert (info.country, info.org_country) == (None, "DE")
    raw["country"] = "nl"
    assert (parse_rdap(raw).country, parse_rdap(raw).org_country) == ("NL", "DE")
    del raw["country"]
    raw["entities"][1]["vcardArray"][1][3] = ["adr", {"label": "Somewhere\nNetherlands"},
                                              "text", None]
    info = parse_rdap(raw)
    assert (info.country, info.org_country) == (None, None)  # a name outside ARIN's region


@pytest.mark.parametrize("href", ["http://[x/", "http://a b/", "https://[::1/ip", "http://:99999/"])
def test_a_garbled_self_link_names_no_registry_and_breaks_nothing(href: str) -> None:
    """The links are the server's text: one that is no URL means no registry
    from it, not a crash of the whole enrichment."""
    raw = {"objectClassName": "ip network", "startAddress": "192.0.2.0",
           "endAddress": "192.0.2.255", "links": [{"rel": "self", "href": href}]}
    assert parse_rdap(raw).registry is None
    raw["links"].append({"rel": "self", "href": "https://rdap.db.ripe.net/ip/192.0.2.0"})
    assert parse_rdap(raw).registry == "ripencc"


@pytest.mark.parametrize(("raw", "problem"), [
    ({"errorCode": 404, "title": "Not Found"}, "an RDAP error object"),
    ({"objectClassName": "entity", "handle": "X"}, "objectClassName is 'entity'"),
    ({"objectClassName": "ip network", "handle": "X"}, "no valid startAddress"),
    ({"objectClassName": "ip network", "startAddress": "x", "endAddress": "y"},
     "no valid startAddress"),
    (["not", "a", "dict"], "not a JSON object"),
])
def test_answers_that_are_no_network_are_invalid(raw: Any, problem: str) -> None:
    with pytest.raises(RdapError, match=problem) as caught:
        parse_rdap(raw)
    assert caught.value.kind is RdapErrorKind.INVALID


# -- the RDAP client against a real local server -----------------------------------------

# The server below is on loopback: the address guard lets it through only
# because these tests allow loopback explicitly (HOSTWATCH_ALLOW_PRIVATE).
LOOPBACK = parse_networks(["127.0.0.0/8"])
RIPE_ANSWER = json.dumps(REAL_RDAP["62.239.237.1"]["response"]).encode()
Route = Callable[[BaseHTTPRequestHandler], None]


def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes,
          headers: tuple[tuple[str, str], ...] = ()) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/rdap+json")
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def _slow(handler: BaseHTTPRequestHandler) -> None:
    time.sleep(1.5)
    _send(handler, 200, RIPE_ANSWER)


def _trickle(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(RIPE_ANSWER)))
    handler.end_headers()
    for index in range(30):  # each byte in time, the whole far too late
        handler.wfile.write(RIPE_ANSWER[index:index + 1])
        time.sleep(0.1)


ROUTES: dict[str, Route] = {
    "/rdap/ip/62.239.237.1": lambda h: _send(h, 200, RIPE_ANSWER),
    "/ripe/ip/192.0.2.5": lambda h: _send(h, 200, RIPE_ANSWER),
    "/rdap/ip/192.0.2.1": lambda h: _send(h, 404, b'{"errorCode": 404, "title": "Not Found"}'),
    "/rdap/ip/192.0.2.2": lambda h: _send(h, 200, b"<html>Service unavailable</html>"),
    "/rdap/ip/192.0.2.3": _slow,
    "/rdap/ip/192.0.2.4": lambda h: _send(h, 503, b"{}", (("Retry-After", "120"),)),
    "/rdap/ip/192.0.2.5": lambda h: _send(h, 302, b"", (("Location", "/ripe/ip/192.0.2.5"),)),
    "/rdap/ip/192.0.2.6": lambda h: _send(h, 302, b"", (("Location", "file:///etc/passwd"),)),
    "/rdap/ip/192.0.2.10": lambda h: _send(h, 302, b"", (("Location", "ftp://127.0.0.1/x"),)),
    "/rdap/ip/192.0.2.7": lambda h: _send(h, 302, b"", (("Location", "/rdap/ip/192.0.2.7"),)),
    "/rdap/ip/192.0.2.11": lambda h: _send(h, 302, b"", (("Location", "http://127.0.0.2:9/x"),)),
    "/rdap/ip/192.0.2.8": lambda h: _send(h, 200, b'{"objectClassName": "entity"}'),
    "/rdap/ip/192.0.2.9": _trickle,
    # 60,000 levels of nested entities (1.8 MB, under the size cap): past the
    # JSON parser's recursion limit.
    "/rdap/ip/192.0.2.12": lambda h: _send(
        h, 200, b'{"objectClassName": "ip network", "entities": '
        + b'[{"entities": ' * 60_000 + b"[]" + b"}]" * 60_000 + b"}"),
}


class RdapTestServer:
    def __init__(self) -> None:
        self.paths: list[str] = []
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                with lock:
                    server.paths.append(self.path)
                route = ROUTES.get(self.path, lambda h: _send(h, 404, b"{}"))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    route(self)  # (a client that timed out is gone)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/rdap"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(scope="module")
def rdap_server() -> Iterator[RdapTestServer]:
    server = RdapTestServer()
    yield server
    server.close()


@pytest.fixture
def server(rdap_server: RdapTestServer) -> RdapTestServer:
    rdap_server.paths.clear()
    return rdap_server


def test_client_fetches_and_parses_a_real_answer(server: RdapTestServer) -> None:
    client = RdapClient(server.url + "/", timeout=5, allow=LOOPBACK)
    answer = client.fetch("62.239.237.1")
    assert answer is not None
    assert answer.url == f"{server.url}/ip/62.239.237.1"
    assert answer.raw == REAL_RDAP["62.239.237.1"]["response"]
    assert (answer.info.name, answer.info.abuse_email) == ("BT-CORPORATE", "zzdnsr@bt.com")
    assert client.lookup("62.239.237.1") == answer.info
    # no hidden cache: the second lookup asked again
    assert server.paths == ["/rdap/ip/62.239.237.1"] * 2
    assert client.requests_made == 2


def test_not_found_is_none(server: RdapTestServer) -> None:
    client = RdapClient(server.url, timeout=5, allow=LOOPBACK)
    assert client.lookup("192.0.2.1") is None
    assert client.requests_made == 1


@pytest.mark.parametrize(("ip", "kind", "message"), [
    ("192.0.2.2", RdapErrorKind.INVALID, "not JSON"),
    ("192.0.2.8", RdapErrorKind.INVALID, "objectClassName is 'entity'"),
    ("192.0.2.4", RdapErrorKind.HTTP, "HTTP 503 Service Unavailable, retry after 120 s"),
    ("192.0.2.6", RdapErrorKind.REDIRECT, "redirect 1 refused: not an http.s. URL"),
    ("192.0.2.10", RdapErrorKind.REDIRECT, "redirect 1 refused: not an http.s. URL"),
    ("192.0.2.7", RdapErrorKind.REDIRECT, "redirect loop"),
    ("192.0.2.12", RdapErrorKind.INVALID, "JSON nested too deeply"),
])
def test_failures_are_typed_errors_naming_the_url(
        server: RdapTestServer, ip: str, kind: RdapErrorKind, message: str) -> None:
    client = RdapClient(server.url, timeout=5, allow=LOOPBACK)
    with pytest.raises(RdapError, match=message) as caught:
        client.lookup(ip)
    assert caught.value.kind is kind
    assert f"{server.url}/ip/{ip}" in str(caught.value)
    # what the server sent (a Location, a body) is not quoted back
    for sent in ("passwd", "ftp:", "Service unavailable</html>", "entity\"}"):
        assert sent not in str(caught.value)


def test_redirect_is_followed_and_counted(server: RdapTestServer) -> None:
    client = RdapClient(server.url, timeout=5, allow=LOOPBACK)
    answer = client.fetch("192.0.2.5")
    assert answer is not None and answer.url.endswith("/ripe/ip/192.0.2.5")
    assert answer.info.name == "BT-CORPORATE"
    assert server.paths == ["/rdap/ip/192.0.2.5", "/ripe/ip/192.0.2.5"]
    assert client.requests_made == 2


@pytest.mark.parametrize("ip", ["192.0.2.3", "192.0.2.9"], ids=["slow-headers", "trickle"])
def test_answer_past_the_timeout_is_a_timeout_error(server: RdapTestServer, ip: str) -> None:
    client = RdapClient(server.url, timeout=0.4, allow=LOOPBACK)
    started = time.monotonic()
    with pytest.raises(RdapError) as caught:
        client.lookup(ip)
    assert caught.value.kind is RdapErrorKind.TIMEOUT
    assert time.monotonic() - started < 1.2  # the server would take 1.5 s or more


def test_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = RdapClient(f"http://127.0.0.1:{port}", timeout=2, allow=LOOPBACK)
    with pytest.raises(RdapError) as caught:
        client.lookup("192.0.2.1")
    assert caught.value.kind is RdapErrorKind.CONNECTION


def test_offline_client_makes_no_request(server: RdapTestServer) -> None:
    client = RdapClient.from_config(Config.from_env(
        {"HOSTWATCH_RDAP_URL": server.url, "HOSTWATCH_OFFLINE": "1"}))
    assert client.offline
    assert client.lookup("62.239.237.1") is None
    assert client.fetch("62.239.237.1") is None
    assert server.paths == []
    assert client.requests_made == 0


def test_environment_proxies_are_ignored(server: RdapTestServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # discard port: would fail
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    client = RdapClient(server.url, timeout=5, allow=LOOPBACK)
    assert client.lookup("62.239.237.1") is not None
    assert server.paths == ["/rdap/ip/62.239.237.1"]


def test_bad_base_url_and_bad_address_are_refused(server: RdapTestServer) -> None:
    with pytest.raises(EnrichmentError, match="must be http"):
        RdapClient("ftp://rdap.example/registry")
    client = RdapClient(server.url, allow=LOOPBACK)
    with pytest.raises(EnrichmentError, match="not an IP address"):
        client.lookup("example.nl")
    assert server.paths == []


def test_the_configured_rdap_address_is_trusted_and_redirects_are_guarded(
        server: RdapTestServer) -> None:
    """An RDAP base URL written with an address is the operator's own choice
    (a lab's loopback server works without HOSTWATCH_ALLOW_PRIVATE); a
    redirect it sends to any other non-public address passes the guard."""
    client = RdapClient.from_config(Config.from_env({"HOSTWATCH_RDAP_URL": server.url}))
    assert client.lookup("62.239.237.1") is not None
    before = len(server.paths)
    with pytest.raises(RdapError, match="redirect 1 refused by the address guard: "
                                        "127.0.0.2 is loopback") as caught:
        client.lookup("192.0.2.11")
    assert caught.value.kind is RdapErrorKind.REFUSED
    assert len(server.paths) == before + 1  # the first request only
    allowed = RdapClient.from_config(Config.from_env(
        {"HOSTWATCH_RDAP_URL": server.url, "HOSTWATCH_ALLOW_PRIVATE": "127.0.0.1/32"}))
    with pytest.raises(RdapError, match="127.0.0.2 is loopback"):
        allowed.lookup("192.0.2.11")
