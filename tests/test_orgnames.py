"""Company names reduced to what identifies the company (kernel.orgnames)."""

from __future__ import annotations

import pytest

from kernel.orgnames import OrgName, org_name, same_company


@pytest.mark.parametrize("name", ["Polder Servers B.V.", "POLDER SERVERS BV", "polder servers",
                                  "Polder-Servers b.v", "Pölder Servers B. V."])
def test_spellings_of_one_company_are_one(name):
    assert same_company(org_name(name), org_name("Polder Servers B.V."))


@pytest.mark.parametrize(("name", "reduced"), [
    ("Hetzner Online GmbH", OrgName("hetzner online", "gmbh")),
    ("Example GmbH & Co. KG", OrgName("example", "gmbh co kg")),
    ("OVH SAS", OrgName("ovh", "sas")),
    ("Company X S.A.", OrgName("company x", "sa")),
    ("Foo Sp. z o.o.", OrgName("foo", "sp zoo")),
    ("Acme Co., Ltd.", OrgName("acme", "co ltd")),
    ("Liberty Hosting Limited", OrgName("liberty hosting", "ltd")),
    ("LEASEWEB-NL", OrgName("leaseweb nl", None)),
    # "AS" ends many AS names ("autonomous system"): no legal form.
    ("Example Networks AS", OrgName("example networks as", None)),
])
def test_names_reduce_to_base_and_legal_form(name, reduced):
    assert org_name(name) == reduced


def test_different_legal_forms_are_different_companies():
    assert not same_company(org_name("Example Hosting B.V."), org_name("Example Hosting GmbH"))
    assert not same_company(org_name("Example Hosting"), org_name("Example Host"))
    assert org_name("") is None and org_name(" .,- ") is None
