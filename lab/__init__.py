"""The local test internet: DNS, scripted HTTP hosts, test networks and RDAP on loopback.

Used by the test suite (in-process), ``hostwatch demo`` and the benchmarks
(``python -m lab serve``). Nothing here binds or connects outside
127.0.0.0/8.

    with TestInternet() as net:
        host = net.add_host("gallery-a.test")
        host.route("/img/1.jpg", [Serve(marker_body("case-1")), Status(404)])
        ...  # crawl with HOSTWATCH_NAMESERVERS=net.nameservers_env
        net.round = 1  # now /img/1.jpg answers 404

Attribution (enrichment) tests put hosts into test networks:

    with TestInternet() as net:  # starts with DEFAULT_NETWORKS
        nl = net.add_host("nl.test", network=64501)        # 127.1.1.10, AS64501, NL
        shop = net.add_cdn_site("shop.test")               # CNAME onto TestCDN, AS64505
        ...  # enrich with HOSTWATCH_ASN_DB=net.asn_table_path,
        ...  # HOSTWATCH_ASNAMES=net.asnames_path, HOSTWATCH_RDAP_URL=net.rdap_url
        net.move_host("nl.test", to_network="RHEINHOST-DE")  # now 127.1.3.10
        assert net.rdap_hit_count("127.1.1.0/24") == 1       # RDAP asked once per network

The default networks (documentation ASNs; one /24 each in 127.1.0.0/16):

    netname            ASN    block          AS country  RDAP org (country)
    DUTCHHOST-NL       64501  127.1.1.0/24   NL          Dutch Test Hosting B.V. (NL)
    POLDERHOST-NL      64502  127.1.2.0/24   NL          Polder Servers B.V. (NL)
    RHEINHOST-DE       64503  127.1.3.0/24   DE          Rhein Test Hosting GmbH (DE)
    LIBERTYHOST-US     64504  127.1.4.0/24   US          Liberty Test Hosting LLC (US)
    TESTCDN (a CDN)    64505  127.1.5.0/24   US          TestCDN Inc. (US)
    TRANSATLANTIC-AMS  64506  127.1.6.0/24   US          Transatlantic Test Hosting Inc. (NL)
    OFFSHORE-RESELLER  64502  127.1.7.0/24   NL          Offshore Test Reseller Ltd. (SC)
    GRENSHOST-FRA      64507  127.1.8.0/24   NL          Grens Test Hosting B.V. (NL)

The last three are on purpose: a US company's NL-registered block (its
servers stand in NL), a reseller's block inside a Dutch AS (the ASN is not
the hoster; its RDAP answer also names Island Test Brokers Ltd. in an entity
with role ``reseller``, the only test network that names one), and a Dutch
company's block registered and standing in Germany.
Where each block's servers stand is in the geolocation file
(``net.geoip_path``, for HOSTWATCH_GEOIP_DB). AS names are
in lab.networks.DEFAULT_NETWORKS (e.g. "DUTCHHOST-NL Dutch Test
Hosting B.V."); abuse contacts are abuse@<hoster>.test (abuse@dutchhost.test).

Hosts without a network stay in 127.0.0.0/16 (127.0.0.10 up, in no ASN);
networks added with ``add_network`` and no prefix get 127.2.0.0/24,
127.2.1.0/24, ... A host's address is the 10th of its block up (127.1.1.10,
127.1.1.11, ...). A host never gets an address back once it moved away.

The API, all on TestInternet:

- ``add_network(asn, name, country, org, abuse, *, prefix=None, cdn=False,
  rdap_name=None, rdap_country=None, org_country=None, reseller=None) -> Network``;
  ``network(asn_or_name)``,
  ``networks``;
- ``add_host(name, *, headers=None, network=None)``: ``network`` is a
  Network, an ASN or a name;
- ``add_cdn_site(name, *, cdn_network=None, edge_name=None, mimic=None,
  headers=None) -> Host``: ``name CNAME {name}.testcdn-edge.test``, the edge
  name's A record in the CDN's block; responses carry ``Server: TestCDN`` and
  ``X-TestCDN-Id`` (or, with ``mimic="cloudflare"|"fastly"|"cloudfront"``,
  that CDN's headers such as ``CF-RAY``);
- ``move_host(name, to_network) -> Host``: a new address in another block,
  the A record swapped (zone TTL applies to cached answers), the old address
  stops answering; routes and behaviours stay;
- ``break_dns("servfail" | "nxdomain" | None)``: the DNS server answers
  every question with SERVFAIL or NXDOMAIN (a dead or wrong resolver), or
  answers normally again;
- ``asn_table_path`` (pyasn text: ``prefix<TAB>asn`` under a ``;`` header) and
  ``asnames_path`` (``{"64501": "HANDLE Org name, CC"}``), written at start
  and rewritten when a network is added later;
- ``rdap_url``: ``GET {rdap_url}/ip/{ip}`` answers a test network's block
  with a RIPE-shaped "ip network" object, an address of a real answer in
  lab/data/realdata/rdap_responses.json with that real answer, anything else
  with 404 (``/entity/{handle}`` and ``/autnum/{asn}`` too; see lab.rdap);
- ``rdap_fail(target, status=503, *, times=None, delay=0.0, retry_after=None)``,
  ``rdap_slow(target, seconds, *, times=None)``, ``rdap_redirect(target, to,
  status=302, *, times=None)`` (``Location: {to}/ip/{address}``),
  ``clear_rdap_faults()``: scripted RDAP failures and redirects for an
  address, a prefix or a Network;
- ``rdap_hits`` (list of RdapHit: path, ip, status), ``rdap_hit_count(target=None)``,
  ``clear_rdap_hits()``: proof of caching.

Galleries that render with JavaScript (lab.gallery), for the browser
checks: a plain fetch of the page gets a shell without media; only a browser
running its script sees the image, the video, the CSS background, the
changed image, the removal notice, the popups and redirect, or a page that
never finishes loading:

    gallery = add_js_gallery(net, "jsgallery.test", network=64501, marker=b"HW-MARKER-1")
    gallery.item("a1", ("present", "removed"))   # one ItemState per round
    gallery.page_url("a1")       # http://jsgallery.test:PORT/g/a1
    gallery.media_url("a1")      # .../m/a1.jpg this round; None once removed
    gallery.media_sha256("a1")   # the original's hash, every round
    # the removal notice: REMOVED_SELECTOR ("div.hw-removed-notice"), REMOVED_TEXT

A browser reaches it with ``--host-resolver-rules=MAP jsgallery.test
{gallery.host.ip}``. The URL layout and every state are in that module's
docstring.
"""

from lab.behaviours import (
    Behaviour,
    Bursts,
    EndlessRedirect,
    Garbage,
    Hangup,
    Homepage,
    Huge,
    LoginPage,
    Raw,
    Redirect,
    RedirectHome,
    RedirectLogin,
    Reply,
    Request,
    Reset,
    Response,
    Serve,
    Slow,
    SoftNotFound,
    Status,
    Stream,
    marker_body,
)
from lab.gallery import (
    REMOVED_SELECTOR,
    REMOVED_TEXT,
    ItemState,
    JsGallery,
    add_js_gallery,
)
from lab.internet import Hit, Host, TestInternet
from lab.networks import DEFAULT_NETWORKS, Network, NetworkSpec, cdn_headers
from lab.rdap import RdapHit

__all__ = [
    "DEFAULT_NETWORKS",
    "REMOVED_SELECTOR",
    "REMOVED_TEXT",
    "Behaviour",
    "Bursts",
    "EndlessRedirect",
    "Garbage",
    "Hangup",
    "Hit",
    "Homepage",
    "Host",
    "Huge",
    "ItemState",
    "JsGallery",
    "LoginPage",
    "Network",
    "NetworkSpec",
    "RdapHit",
    "Raw",
    "Redirect",
    "RedirectHome",
    "RedirectLogin",
    "Reply",
    "Request",
    "Reset",
    "Response",
    "Serve",
    "Slow",
    "SoftNotFound",
    "Status",
    "Stream",
    "TestInternet",
    "add_js_gallery",
    "cdn_headers",
    "marker_body",
]
