"""detect_cdn(): every CDN from each kind of evidence; origins and weak signs are no CDN."""

import pytest

from enrichment.hosters import HosterRegistry
from kernel.cdn import (
    CDN_HEADER_PREFIXES,
    CDN_HEADERS,
    RULES,
    Kind,
    detect_cdn,
    is_cdn_header,
)


def detect(asn=None, cnames=(), **headers):
    return detect_cdn(asn=asn, cname_chain=list(cnames),
                      headers={k.replace("_", "-"): v for k, v in headers.items()})


@pytest.mark.parametrize(("headers", "cdn", "evidence"), [
    ({"cf-ray": "8a1b2c3d4e5f-AMS"}, "Cloudflare", "header cf-ray"),
    ({"server": "cloudflare"}, "Cloudflare", "header server: cloudflare"),
    ({"cf-cache-status": "HIT"}, "Cloudflare", "header cf-cache-status"),
    ({"server": "AkamaiGHost"}, "Akamai", "header server: AkamaiGHost"),
    ({"akamai-grn": "0.1e2f3c17.1700000000.abc"}, "Akamai", "header akamai-grn"),
    ({"x-akamai-transformed": "9 - 0 pmb=mRUM,1"}, "Akamai", "header x-akamai-transformed"),
    ({"x-served-by": "cache-ams21022-AMS"}, "Fastly", "header x-served-by: cache-ams21022-AMS"),
    ({"x-served-by": "cache-iad-kiad7000046-IAD, cache-ams21077-AMS"}, "Fastly",
     "header x-served-by: cache-iad-kiad7000046-IAD, cache-ams21077-AMS"),
    ({"x-fastly-request-id": "5e2d1c0b"}, "Fastly", "header x-fastly-request-id"),
    ({"x-amz-cf-id": "Zx9-abc=="}, "Amazon CloudFront", "header x-amz-cf-id"),
    ({"x-amz-cf-pop": "AMS1-C1"}, "Amazon CloudFront", "header x-amz-cf-pop"),
    ({"via": "1.1 0f1e2d.cloudfront.net (CloudFront)"}, "Amazon CloudFront",
     "header via: 1.1 0f1e2d.cloudfront.net (CloudFront)"),
    ({"x-cache": "Hit from cloudfront"}, "Amazon CloudFront",
     "header x-cache: Hit from cloudfront"),
    ({"server": "BunnyCDN-DE1-1049"}, "Bunny CDN", "header server: BunnyCDN-DE1-1049"),
    ({"cdn-pullzone": "123456"}, "Bunny CDN", "header cdn-pullzone"),
    ({"x-hw": "1700000000.dop012.am1.t,1700000000.cds020.am1.c"}, "StackPath", "header x-hw"),
    ({"server": "NetDNA-cache/2.2"}, "StackPath", "header server: NetDNA-cache/2.2"),
])
def test_each_cdn_is_recognised_by_its_headers(headers, cdn, evidence):
    found = detect_cdn(asn=None, cname_chain=[], headers=headers)
    assert found is not None and found.name == cdn
    assert evidence in found.evidence


@pytest.mark.parametrize(("cname", "cdn"), [
    ("www.shop.example.cdn.cloudflare.net.", "Cloudflare"),
    ("www.shop.example.edgekey.net", "Akamai"),
    ("www.shop.example.edgesuite.net", "Akamai"),
    ("e1234.a.akamaiedge.net", "Akamai"),
    ("shop.akamaized.net", "Akamai"),
    ("shop-a.akamaihd.net", "Akamai"),
    ("shop.map.fastly.net", "Fastly"),
    ("d111111abcdef8.cloudfront.net", "Amazon CloudFront"),
    ("shop.b-cdn.net", "Bunny CDN"),
    ("shop.stackpathdns.com", "StackPath"),
    ("shop.stackpathcdn.com", "StackPath"),
    ("SHOP.HWCDN.NET.", "StackPath"),
])
def test_each_cdn_is_recognised_by_a_cname_anywhere_in_the_chain(cname, cdn):
    found = detect(cnames=["img.shop.example", "alias.shop.example", cname])
    assert found is not None and found.name == cdn
    assert f"cname {cname.lower().rstrip('.')}" in found.evidence


@pytest.mark.parametrize(("asn", "cdn"), [
    (13335, "Cloudflare"), (209242, "Cloudflare"), (54113, "Fastly"),
    (20940, "Akamai"), (16625, "Akamai"),
])
def test_cdn_only_networks_are_recognised_by_asn_alone(asn, cdn):
    found = detect(asn=asn)
    assert found is not None and found.name == cdn
    assert found.evidence == (f"asn {asn}",)


def test_a_lookalike_domain_is_no_cname_match():
    assert detect(cnames=["shop.notcloudfront.net", "evilfastly.net"]) is None


@pytest.mark.parametrize("asn", [16509, 14618, 15169, 396982, 63949, 24940, 60781])
def test_plain_amazon_google_and_hoster_origins_are_no_cdn(asn):
    assert detect(asn=asn, server="nginx", x_cache="MISS") is None


@pytest.mark.parametrize("headers", [
    {"x-cache": "HIT"},
    {"x-cache": "HIT", "age": "120"},
    {"via": "1.1 varnish"},
    {"via": "1.1 varnish (Varnish/7.4)", "x-cache": "HIT", "x-cache-hits": "3"},
    {"via": "1.1 google"},
    {"x-served-by": "web-frontend-3"},
    {"cdn-cache": "HIT"},
    {"server": "nginx"},
])
def test_weak_or_generic_headers_alone_are_no_cdn(headers):
    assert detect_cdn(asn=None, cname_chain=[], headers=headers) is None


def test_varnish_counts_for_fastly_only_beside_another_fastly_sign():
    assert detect(asn=24940, via="1.1 varnish") is None
    found = detect(asn=54113, via="1.1 varnish")
    assert found is not None and found.name == "Fastly"
    assert found.evidence == ("asn 54113", "header via: 1.1 varnish")


def test_google_cloud_cdn_needs_the_google_via_and_a_google_network():
    assert detect(via="1.1 google") is None
    assert detect(asn=15169) is None
    found = detect(asn=15169, via="1.1 google")
    assert found is not None and found.name == "Google Cloud CDN"
    assert set(found.evidence) == {"asn 15169", "header via: 1.1 google"}


def test_an_amazon_address_adds_evidence_to_cloudfront_headers():
    found = detect(asn=16509, x_amz_cf_pop="AMS50-C1")
    assert found is not None and found.name == "Amazon CloudFront"
    assert found.evidence == ("header x-amz-cf-pop", "asn 16509")


def test_every_matching_sign_is_listed_strongest_first():
    found = detect(asn=54113, cnames=["www.shop.example", "shop.map.fastly.net"],
                   via="1.1 varnish", x_served_by="cache-ams21022-AMS",
                   x_fastly_request_id="abc")
    assert found is not None
    assert found.evidence == (
        "header x-fastly-request-id",
        "header x-served-by: cache-ams21022-AMS",
        "cname shop.map.fastly.net",
        "asn 54113",
        "header via: 1.1 varnish",
    )


def test_header_names_are_compared_lower_case():
    found = detect_cdn(asn=None, cname_chain=[], headers={"CF-Ray": "x", "Server": "cloudflare"})
    assert found is not None and found.evidence == ("header cf-ray", "header server: cloudflare")


def test_the_cdn_we_connected_to_wins_over_one_behind_it():
    # Cloudflare's address, with CloudFront's headers passed through from behind it.
    found = detect(asn=13335, x_amz_cf_id="abc", cf_ray="123-AMS")
    assert found is not None and found.name == "Cloudflare"
    # No ASN sign: the first CDN in the CNAME chain is the outer one.
    found = detect(cnames=["www.shop.example", "shop.b-cdn.net", "origin.cloudfront.net"])
    assert found is not None and found.name == "Bunny CDN"


def test_cdn_headers_cover_every_header_the_rules_read():
    for rule in RULES:
        if rule.kind is Kind.HEADER:
            assert is_cdn_header(rule.header.rstrip("*") + ("x" if rule.header.endswith("*")
                                                             else ""))
    assert {"cf-ray", "x-amz-cf-id", "x-served-by", "via", "server"} <= CDN_HEADERS
    assert CDN_HEADER_PREFIXES == ("x-akamai-",)
    assert is_cdn_header("X-Akamai-Request-ID")
    assert not is_cdn_header("set-cookie")


def test_every_asn_that_alone_means_a_cdn_is_a_cdn_in_the_shipped_registry():
    registry = HosterRegistry.load()
    strong_asns = {asn for rule in RULES if rule.kind is Kind.ASN
                   and rule.strength.name == "STRONG" for asn in rule.asns}
    for asn in strong_asns:
        hoster = registry.by_asn(asn)
        assert hoster is not None and hoster.cdn, f"AS{asn}"
