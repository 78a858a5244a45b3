"""The hoster registry (shipped and user files) and hoster_of_record()'s decision order."""

import re

import pytest

from enrichment import EnrichmentError
from enrichment.hosters import (
    CDN_OPERATORS,
    SHIPPED_HOSTERS,
    DsaRole,
    HosterRegistry,
    hoster_of_record,
)
from kernel.cdn import CdnDetection

REGISTRY = HosterRegistry.load()

ENTRY = """
[[hoster]]
id = "{id}"
legal_name = "{name}"
country = "{country}"
asns = {asns}
rdap_orgs = {orgs}
dsa_role = "hosting"
abuse = ""
cdn = false
"""


def entry(id="kleine-hoster", name="Kleine Hoster B.V.", country="NL", asns="[64500]",
          orgs='["kleine hoster"]'):
    return ENTRY.format(id=id, name=name, country=country, asns=asns, orgs=orgs)


def write(tmp_path, text, name="mine.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(**files):
    with pytest.raises(EnrichmentError) as caught:
        HosterRegistry.load(**files)
    return str(caught.value)


# -- the shipped registry ------------------------------------------------------

def test_the_shipped_registry_ships_in_the_package_and_loads():
    assert SHIPPED_HOSTERS.parent.name == "data"
    assert SHIPPED_HOSTERS.parent.parent.name == "enrichment"
    assert len(REGISTRY) >= 30


def test_every_shipped_entry_is_complete_and_consistent():
    for hoster in REGISTRY:
        assert re.fullmatch(r"[A-Z]{2}", hoster.country), hoster.id
        assert hoster.legal_name and hoster.note, hoster.id
        assert hoster.asns or hoster.rdap_orgs, hoster.id
        # A CDN entry is never a hoster of record; a hoster is never a CDN.
        assert hoster.cdn == (hoster.dsa_role is DsaRole.CDN), hoster.id


def test_every_cdn_operator_is_in_the_shipped_registry():
    for cdn, ids in CDN_OPERATORS.items():
        for hoster_id in ids:
            assert REGISTRY.get(hoster_id) is not None, (cdn, hoster_id)


@pytest.mark.parametrize(("asn", "hoster_id", "legal_name", "country"), [
    (60781, "leaseweb-nl", "LeaseWeb Netherlands B.V.", "NL"),
    (16265, "leaseweb-network", "LeaseWeb Network B.V.", "NL"),
    (28753, "leaseweb-de", "Leaseweb Deutschland GmbH", "DE"),
    (24940, "hetzner", "Hetzner Online GmbH", "DE"),
    (16276, "ovh", "OVH SAS", "FR"),
    (43350, "nforce", "NFOrce Entertainment B.V.", "NL"),
    (202018, "digitalocean", "DigitalOcean, LLC", "US"),
    (13335, "cloudflare", "Cloudflare, Inc.", "US"),
])
def test_shipped_asns_give_the_company_and_its_country(asn, hoster_id, legal_name, country):
    hoster = REGISTRY.by_asn(asn)
    assert hoster is not None
    assert (hoster.id, hoster.legal_name, hoster.country) == (hoster_id, legal_name, country)


def test_rdap_org_names_match_case_insensitively_longest_substring_first():
    assert REGISTRY.by_org("LeaseWeb Netherlands B.V.").id == "leaseweb-nl"
    assert REGISTRY.by_org("HETZNER ONLINE GmbH").id == "hetzner"
    assert REGISTRY.by_org("Serverius  II B.V.").id == "serverius-ii"
    assert REGISTRY.by_org("Serverius B.V.").id == "serverius"
    assert REGISTRY.by_org("Some Other Hosting Ltd") is None
    assert REGISTRY.by_org(None) is None
    assert REGISTRY.by_asn(None) is None and REGISTRY.by_asn(64500) is None


# -- the user's file -------------------------------------------------------------

def test_a_user_file_adds_an_entry(tmp_path):
    registry = HosterRegistry.load(user=write(tmp_path, entry()))
    hoster = registry.by_asn(64500)
    assert hoster is not None and (hoster.id, hoster.country) == ("kleine-hoster", "NL")
    assert registry.by_org("KLEINE HOSTER B.V.") is hoster
    assert len(registry) == len(REGISTRY) + 1


def test_a_user_entry_changes_only_the_fields_it_gives(tmp_path):
    user = write(tmp_path, '[[hoster]]\nid = "worldstream"\n'
                           'abuse = "https://worldstream.example/abuse"\n')
    hoster = HosterRegistry.load(user=user).by_asn(49981)
    assert hoster is not None
    assert hoster.abuse == "https://worldstream.example/abuse"
    assert hoster.legal_name == REGISTRY.get("worldstream").legal_name
    assert hoster.country == "NL"


def test_a_user_entry_can_move_an_asn_by_overriding_the_shipped_entry(tmp_path):
    user = write(tmp_path, '[[hoster]]\nid = "leaseweb-network"\nasns = [38930]\n'
                 + entry(id="my-leaseweb", name="LeaseWeb Network B.V.", asns="[16265]",
                         orgs="[]"))
    assert HosterRegistry.load(user=user).by_asn(16265).id == "my-leaseweb"


def test_the_user_file_alone_without_the_shipped_one(tmp_path):
    registry = HosterRegistry.load(shipped=None, user=write(tmp_path, entry()))
    assert len(registry) == 1 and registry.by_asn(60781) is None


# -- mistakes ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "entry_named", "field", "problem"), [
    (entry(country="nl"), "'kleine-hoster'", "country", "2 upper-case letters"),
    (entry(country="NLD"), "'kleine-hoster'", "country", "2 upper-case letters"),
    (entry(asns='["AS64500"]'), "'kleine-hoster'", "asns", "AS numbers"),
    (entry(asns="[64500, 64500]"), "'kleine-hoster'", "asns", "twice"),
    (entry(orgs='"kleine hoster"'), "'kleine-hoster'", "rdap_orgs", "list"),
    (entry().replace('"hosting"', '"bulletproof"'), "'kleine-hoster'", "dsa_role", "one of"),
    (entry().replace("cdn = false", 'cdn = "no"'), "'kleine-hoster'", "cdn", "true or false"),
    (entry().replace('abuse = ""', 'abuse = "call us"'), "'kleine-hoster'", "abuse", "e-mail"),
    (entry().replace("cdn = false", "cdn = false\nabuse_email = 'x@y.z'"), "'kleine-hoster'",
     "abuse_email", "unknown field"),
    (entry().replace("country = \"NL\"\n", ""), "'kleine-hoster'", "country", "missing"),
    (entry(id="Kleine Hoster"), "#1", "id", "slug"),
    (entry() + entry(asns="[64501]", orgs="[]"), "'kleine-hoster'", "id", "twice"),
])
def test_a_bad_entry_is_named_with_its_file_and_field(tmp_path, text, entry_named, field,
                                                      problem):
    path = write(tmp_path, text)
    message = load_error(shipped=path)
    assert str(path) in message
    assert f"hoster {entry_named}" in message
    assert f"field {field!r}" in message
    assert problem in message


def test_a_new_user_entry_must_be_complete(tmp_path):
    path = write(tmp_path, '[[hoster]]\nid = "new-hoster"\ncountry = "NL"\n')
    message = load_error(user=path)
    assert str(path) in message and "'new-hoster'" in message
    assert "'legal_name'" in message and "missing" in message


def test_a_file_that_is_not_toml_is_named(tmp_path):
    path = write(tmp_path, "[[hoster]\nid = ")
    message = load_error(user=path)
    assert str(path) in message and "TOML" in message


def test_a_missing_file_is_named(tmp_path):
    message = load_error(user=tmp_path / "absent.toml")
    assert "absent.toml" in message


def test_the_same_asn_in_two_entries_names_both(tmp_path):
    path = write(tmp_path, entry() + entry(id="other-hoster", name="Other B.V.",
                                           orgs='["other b.v."]'))
    message = load_error(shipped=path)
    assert "AS64500" in message
    assert "'kleine-hoster'" in message and "'other-hoster'" in message


def test_a_user_entry_taking_a_shipped_asn_names_both_files(tmp_path):
    user = write(tmp_path, entry(asns="[60781]"))
    message = load_error(user=user)
    assert "AS60781" in message
    assert f"'kleine-hoster' ({user})" in message
    assert f"'leaseweb-nl' ({SHIPPED_HOSTERS})" in message


def test_the_same_rdap_org_in_two_entries_names_both(tmp_path):
    path = write(tmp_path, entry() + entry(id="other-hoster", asns="[64501]"))
    message = load_error(shipped=path)
    assert "'kleine hoster'" in message and "'other-hoster'" in message


# -- hoster of record ----------------------------------------------------------------

def decide(**given):
    facts = {"asn": None, "as_name": None, "as_country": None, "rdap_org": None,
             "rdap_country": None, "cdn": None, "registry": REGISTRY}
    return hoster_of_record(**{**facts, **given})


def test_the_asn_in_the_registry_decides_first():
    decision = decide(asn=60781, as_name="LEASEWEB-NL LeaseWeb Netherlands B.V.",
                      as_country="NL", rdap_org="Hetzner Online GmbH", rdap_country="DE")
    assert (decision.hoster, decision.hoster_id, decision.country) == (
        "LeaseWeb Netherlands B.V.", "leaseweb-nl", "NL")
    assert decision.dsa_role == "hosting" and decision.abuse == "abuse@leaseweb.com"
    assert decision.cdn is None
    assert decision.sources == {"hoster": "registry:asn", "country": "registry:asn",
                                "dsa_role": "registry:asn", "abuse": "registry:asn",
                                "cdn": "none"}


def test_then_the_rdap_org_in_the_registry():
    decision = decide(asn=64500, as_name="SOMETRANSIT", as_country="GB",
                      rdap_org="Hetzner Online GmbH", rdap_country="FI")
    assert (decision.hoster_id, decision.country) == ("hetzner", "DE")
    assert decision.sources["hoster"] == "registry:rdap_org"
    assert decision.sources["country"] == "registry:rdap_org"


def test_a_registered_hoster_without_abuse_contact_says_so():
    decision = decide(asn=43350)
    assert decision.abuse is None and decision.sources["abuse"] == "none"


def test_then_an_unregistered_hoster_named_by_rdap():
    decision = decide(asn=64500, as_name="TRANSIT-AS Transit Ltd", as_country="GB",
                      rdap_org="Kleine Hoster B.V.", rdap_country="nl")
    assert (decision.hoster, decision.hoster_id, decision.country) == (
        "Kleine Hoster B.V.", None, "NL")
    assert decision.dsa_role is None and decision.abuse is None
    assert (decision.sources["hoster"], decision.sources["country"]) == ("rdap", "rdap")


def test_an_rdap_org_without_country_takes_the_as_country():
    decision = decide(asn=64500, as_name="X", as_country="DE", rdap_org="Kleine Hoster GmbH")
    assert decision.country == "DE"
    assert (decision.sources["hoster"], decision.sources["country"]) == ("rdap", "asn_names")


def test_then_the_as_name_and_country():
    decision = decide(asn=64500, as_name="KLEINE-AS Kleine Hoster B.V.", as_country="NL")
    assert (decision.hoster, decision.country) == ("KLEINE-AS Kleine Hoster B.V.", "NL")
    assert (decision.sources["hoster"], decision.sources["country"]) == (
        "asn_names", "asn_names")


def test_nothing_known_is_unknown():
    decision = decide(asn=64500)
    assert (decision.hoster, decision.hoster_id, decision.country, decision.cdn) == (
        None, None, None, None)
    assert set(decision.sources.values()) == {"none"}


CLOUDFLARE = CdnDetection("Cloudflare", ("header cf-ray", "asn 13335"))
AKAMAI = CdnDetection("Akamai", ("asn 20940",))


def test_a_cdn_fronted_case_names_the_cdn_and_leaves_the_origin_unknown():
    decision = decide(asn=13335, as_name="CLOUDFLARENET - CloudFlare, Inc.", as_country="US",
                      rdap_org="Cloudflare, Inc.", rdap_country="US", cdn=CLOUDFLARE)
    assert (decision.hoster, decision.hoster_id, decision.country) == (None, None, None)
    assert (decision.cdn, decision.dsa_role) == ("Cloudflare", "intermediary")
    assert decision.abuse == "https://abuse.cloudflare.com/"
    assert decision.sources == {"hoster": "cdn", "country": "cdn", "dsa_role": "cdn",
                                "abuse": "registry:cdn", "cdn": "cdn"}


def test_a_cdn_established_in_nl_does_not_make_the_case_dutch_hosted():
    # Akamai International B.V. is a Dutch company and its AS may be registered NL.
    decision = decide(asn=20940, as_name="AKAMAI-ASN1 Akamai International B.V.",
                      as_country="NL", rdap_org="Akamai International B.V.",
                      rdap_country="NL", cdn=AKAMAI)
    assert decision.country is None and decision.hoster is None
    assert decision.cdn == "Akamai"


CF_HEADER_ONLY = CdnDetection("Cloudflare", ("header cf-ray",))


def test_cdn_headers_served_from_a_known_hosters_address_do_not_hide_it():
    # A server's own headers (cf-ray...) cannot move a LeaseWeb case out of NL.
    decision = decide(asn=60781, as_country="NL", cdn=CF_HEADER_ONLY)
    assert (decision.hoster, decision.country, decision.cdn) == (
        "LeaseWeb Netherlands B.V.", "NL", None)
    # The same for an unregistered AS that is no CDN's...
    decision = decide(asn=64999, as_name="Small Host B.V.", as_country="NL",
                      cdn=CF_HEADER_ONLY)
    assert (decision.hoster, decision.country, decision.cdn) == ("Small Host B.V.", "NL", None)
    # ...but with nothing known of the address, the signs decide.
    decision = decide(cdn=CF_HEADER_ONLY)
    assert (decision.hoster, decision.cdn) == (None, "Cloudflare")


def test_a_registry_cdn_network_is_cdn_fronted_without_any_header():
    decision = decide(asn=132892, as_country="US")  # a Cloudflare AS with no CDN rule
    assert (decision.hoster, decision.country, decision.cdn) == (None, None, "Cloudflare")
    assert decision.sources["cdn"] == "registry:asn"
    decision = decide(rdap_org="Akamai International B.V.", rdap_country="NL")
    assert (decision.hoster, decision.country, decision.cdn) == (None, None, "Akamai")
    assert decision.sources["cdn"] == "registry:rdap_org"


def test_cloudfront_on_amazon_is_cdn_fronted_not_hosted_by_amazon():
    decision = decide(asn=16509, as_country="US",
                      cdn=CdnDetection("Amazon CloudFront", ("header x-amz-cf-id",)))
    assert (decision.hoster, decision.cdn) == (None, "Amazon CloudFront")
    assert decision.abuse == "abuse@amazonaws.com"
