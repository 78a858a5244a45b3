"""jurisdiction() and is_dutch(): NL, other member states, outside the EU, unknown."""

import pytest

from enrichment.hosters import HosterRegistry, hoster_of_record
from enrichment.jurisdiction import EU_MEMBER_STATES, Area, is_dutch, jurisdiction
from kernel.cdn import CdnDetection

REGISTRY = HosterRegistry.load()


@pytest.mark.parametrize(("country", "area", "code", "shown"), [
    ("NL", Area.NL, "NL", "NL"),
    ("nl", Area.NL, "NL", "NL"),
    ("DE", Area.EU, "DE", "EU (DE)"),
    ("GR", Area.EU, "GR", "EU (GR)"),
    ("EL", Area.EU, "GR", "EU (GR)"),
    ("EU", Area.EU, None, "EU"),
    ("US", Area.NON_EU, "US", "non-EU"),
    ("GB", Area.NON_EU, "GB", "non-EU"),
    ("UK", Area.NON_EU, "GB", "non-EU"),
    ("NO", Area.NON_EU, "NO", "non-EU"),
    (None, Area.UNKNOWN, None, "unknown"),
    ("", Area.UNKNOWN, None, "unknown"),
    ("ZZ", Area.UNKNOWN, None, "unknown"),
    ("AP", Area.UNKNOWN, None, "unknown"),
    ("XK", Area.NON_EU, "XK", "non-EU"),  # Kosovo: the same rule as a server location
    ("XA", Area.UNKNOWN, None, "unknown"),
    ("Netherlands", Area.UNKNOWN, None, "unknown"),
])
def test_jurisdiction_of_a_country(country, area, code, shown):
    place = jurisdiction(country)
    assert (place.area, place.country, str(place), place.value) == (area, code, shown,
                                                                      area.value)


def test_the_27_member_states():
    assert len(EU_MEMBER_STATES) == 27
    assert {"NL", "DE", "GR", "HR", "CY", "IE"} <= EU_MEMBER_STATES
    assert not {"EL", "GB", "CH", "NO"} & EU_MEMBER_STATES


def decide(**given):
    facts = {"asn": None, "as_name": None, "as_country": None, "rdap_org": None,
             "rdap_country": None, "cdn": None, "registry": REGISTRY}
    return hoster_of_record(**{**facts, **given})


def test_a_dutch_hoster_of_record_is_dutch():
    assert is_dutch(decide(asn=60781))
    assert is_dutch(decide(rdap_org="Kleine Hoster B.V.", rdap_country="NL"))


def test_a_foreign_company_in_a_dutch_data_centre_is_not_dutch():
    # DigitalOcean's Amsterdam AS is registered NL; the company is established in the US.
    decision = decide(asn=202018, as_country="NL", rdap_country="NL")
    assert decision.country == "US" and not is_dutch(decision)


def test_a_case_behind_a_dutch_cdn_is_not_dutch():
    decision = decide(asn=20940, as_country="NL",
                      cdn=CdnDetection("Akamai", ("asn 20940",)))
    assert not is_dutch(decision)


def test_an_unknown_hoster_is_not_dutch():
    assert not is_dutch(decide())
