"""One company, one hoster, whichever source named it (enrichment.identity, #10 point 4)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from enrichment.hosters import HosterDecision, HosterRegistry
from enrichment.identity import HosterBook, identity_of
from hostwatch.cli import main
from kernel.model import AliasKind
from lab import Serve, marker_body
from store import Attribution, Hoster, HosterAlias, Store
from tests.crawler.conftest import add_cases
from tests.enrichment.conftest import TEST_HOSTERS, cases_json, hostwatch

IMAGE = marker_body("identity-image", kind="jpeg")
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
XARF_ENV = {"HOSTWATCH_XARF_REPORTER_ORG": "Offlimits",
            "HOSTWATCH_XARF_REPORTER_CONTACT": "meldpunt@offlimits.test",
            "HOSTWATCH_XARF_REPORTER_DOMAIN": "offlimits.test",
            "HOSTWATCH_XARF_CLASSIFICATION": "baseline"}


def _decision(hoster: str, source: str, country: str | None = "NL",
              hoster_id: str | None = None) -> HosterDecision:
    return HosterDecision(hoster=hoster, hoster_id=hoster_id, country=country, dsa_role=None,
                          abuse=None, cdn=None, sources={"hoster": source})


def _cli(db: str, workdir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--db", db, *args], env=XARF_ENV)
    return result.exit_code, result.output


# ---------------------------------------------------------------- end to end


def test_checks_named_by_as_name_and_by_rdap_are_one_hoster(db_url, net, tmp_path,
                                                             monkeypatch):
    """RDAP fails on the first night (the AS name decides), answers on the next."""
    monkeypatch.chdir(tmp_path)
    store = Store(db_url)
    store.upgrade()
    host = net.add_host("polder.test", network=64502)
    host.default(Serve(IMAGE, content_type="image/jpeg"))
    add_cases(store, [host.url("/a.jpg")])
    net.rdap_fail(net.network(64502), status=503, times=1)
    for _night in range(2):
        assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
        enriched = hostwatch(db_url, net, tmp_path, "enrich")
        assert enriched.returncode == 0, enriched.stderr
    with store.session() as session:
        seen = session.execute(select(Attribution.hoster_id, Attribution.sources)
                               .order_by(Attribution.check_id)).all()
        hosters = session.scalars(select(Hoster)).all()
        aliases = {(a.kind, a.seen_as) for a in session.scalars(select(HosterAlias))}
    assert [sources["hoster"] for _, sources in seen] == ["asn_names", "rdap"]
    assert len(hosters) == 1 and seen[0].hoster_id == seen[1].hoster_id == hosters[0].id
    assert (hosters[0].key, hosters[0].legal_name, hosters[0].source) == (
        "org:polder servers", "Polder Servers B.V.", "rdap")
    assert {("as_name", "Polder Servers B.V."), ("rdap_org", "Polder Servers B.V."),
            ("rdap_handle", "ORG-POLDERHOST-NL-TEST")} <= aliases
    assert seen[0].sources["hoster_identity"] == "new hoster, first named by asn_names"
    assert seen[1].sources["hoster_identity"].startswith(
        "same company name as 'Polder Servers B.V.' (as_name")

    assert cases_json(db_url, net, tmp_path)[host.url("/a.jpg")]["hoster_key"] == \
        "org:polder servers"
    for name in ("org:polder servers", "Polder Servers B.V.", "POLDER SERVERS BV"):
        code, output = _cli(db_url, tmp_path, "report", "evidence", "--hoster", name,
                            "--for", "atkm", "-o", "pack", "--force")
        assert code == 0, (name, output)
        code, output = _cli(db_url, tmp_path, "export", "xarf", "--hoster", name)
        assert code == 0, (name, output)
    jurisdiction = (tmp_path / "pack" / "jurisdiction.md").read_text()
    assert "another hoster" not in jurisdiction  # one company: nothing moved
    assert "## How this hoster was identified" in jurisdiction
    assert "the AS name: Polder Servers B.V." in jurisdiction
    document = json.loads((tmp_path / "pack" / "hoster.json").read_text())
    assert {(a["kind"], a["seen_as"]) for a in document["aliases"]} == aliases

    # The material moves to another company: now, and only now, the pack says so.
    net.move_host("polder.test", 64503)
    time.sleep(1.5)  # the zone's TTL (1 s): cached answers expire
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
    assert hostwatch(db_url, net, tmp_path, "enrich").returncode == 0
    code, output = _cli(db_url, tmp_path, "report", "evidence", "--hoster",
                        "Rhein Test Hosting GmbH", "--for", "atkm", "-o", "rhein")
    assert code == 0, output
    moved = (tmp_path / "rhein" / "jurisdiction.md").read_text()
    assert "## Cases that moved to another hoster" in moved
    assert "another company (another legal entity: Polder Servers B.V.;" in moved
    store.dispose()


def test_a_weaker_source_naming_the_same_address_otherwise_is_no_move(db_url, net, tmp_path,
                                                                      monkeypatch):
    """A reseller's block inside another company's AS: the night RDAP fails,
    the AS name names the AS's owner; the next night RDAP names the reseller.
    The server, its address and the material stayed where they were: the
    reseller's pack must not say the material moved to another hoster."""
    monkeypatch.chdir(tmp_path)
    store = Store(db_url)
    store.upgrade()
    host = net.add_host("reseller.test", network="OFFSHORE-RESELLER")
    host.default(Serve(IMAGE, content_type="image/jpeg"))
    add_cases(store, [host.url("/a.jpg")])
    net.rdap_fail(net.network("OFFSHORE-RESELLER"), status=503, times=1)
    for _night in range(2):
        assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
        enriched = hostwatch(db_url, net, tmp_path, "enrich")
        assert enriched.returncode == 0, enriched.stderr
    with store.session() as session:
        seen = session.execute(select(Attribution.hoster, Attribution.ip)
                               .order_by(Attribution.check_id)).all()
    assert seen[0].ip == seen[1].ip  # one server...
    assert seen[0].hoster != seen[1].hoster  # ...named by two sources as two companies
    code, output = _cli(db_url, tmp_path, "report", "evidence", "--hoster",
                        "Offshore Test Reseller Ltd.", "--for", "acm", "-o", "pack")
    assert code == 0, output
    jurisdiction = (tmp_path / "pack" / "jurisdiction.md").read_text()
    assert "moved to another hoster" not in jurisdiction
    assert "Material moves between hosters" not in jurisdiction
    # What happened is said: the same address, named otherwise by another source.
    assert "## Cases whose address another source named otherwise" in jurisdiction
    assert f"{seen[0].hoster} (on the same address {seen[0].ip}, named by asn\\_names)" \
        in jurisdiction  # Markdown-escaped
    store.dispose()


# ---------------------------------------------------------------- pure: identity_of


def test_an_rdap_reseller_inside_a_hosters_as_does_not_take_the_as_name():
    registry = HosterRegistry.load(shipped=None, user=TEST_HOSTERS)
    reseller = identity_of(_decision("Offshore Test Reseller Ltd.", "rdap", "SC"), asn=64502,
                           as_name="Polder Servers B.V.", rdap_org="Offshore Test Reseller Ltd.",
                           rdap_org_handle="ORG-OFFSHORE-TEST", registry=registry)
    assert reseller is not None
    assert {c.kind for c in reseller.claims} == {AliasKind.RDAP_ORG, AliasKind.RDAP_HANDLE}
    same = identity_of(_decision("Polder Servers B.V.", "rdap"), asn=64502,
                       as_name="Polder Servers BV", rdap_org="Polder Servers B.V.",
                       rdap_org_handle=None, registry=registry)
    assert same is not None and AliasKind.AS_NAME in {c.kind for c in same.claims}


# ---------------------------------------------------------------- the store's rows


def _row(store: Store, decision: HosterDecision, *, handle: str | None = None,
         registry: HosterRegistry | None = None) -> tuple[str, str]:
    registry = registry or HosterRegistry.load(shipped=None, user=TEST_HOSTERS)
    source = decision.sources["hoster"]
    identity = identity_of(decision, asn=64999, as_name=decision.hoster if source ==
                           "asn_names" else None,
                           rdap_org=decision.hoster if source == "rdap" else None,
                           rdap_org_handle=handle, registry=registry)
    assert identity is not None
    with store.transaction() as session:
        match = HosterBook(session, NOW).row(identity)
        return match.row.key, match.how


def test_two_companies_of_one_name_stay_two(store):
    dutch = _row(store, _decision("Example Hosting B.V.", "rdap", "NL"))
    german = _row(store, _decision("Example Hosting GmbH", "rdap", "DE"))
    assert dutch[0] != german[0]
    # Same name and form, but RDAP names two organisations: two companies.
    first = _row(store, _decision("Twin Hosting Ltd", "rdap", "GB"), handle="ORG-TWIN1")
    second = _row(store, _decision("Twin Hosting Ltd", "rdap", "GB"), handle="ORG-TWIN2")
    assert first[0] != second[0]
    # A name without a legal form, in another country: not merged either.
    bare = _row(store, _decision("Example Hosting", "asn_names", "US"))
    assert bare[0] not in (dutch[0], german[0])
    with store.session() as session:
        assert session.query(Hoster).count() == 5


def test_a_handle_that_comes_with_another_country_is_another_company(store):
    """A registry's handle names one company: a handle reused (or lied about)
    for a company of another country must not merge the two, or an ATKM pack
    would list a US company's cases as a Dutch hoster's."""
    dutch = _row(store, _decision("Polder Servers B.V.", "rdap", "NL"), handle="ORG-X")
    american = _row(store, _decision("Liberty Hosting LLC", "rdap", "US"), handle="ORG-X")
    assert american[0] != dutch[0]
    assert not american[1].startswith("RDAP organisation handle")
    # The same handle and country (a renamed company) is still one company.
    renamed = _row(store, _decision("Polder Cloud B.V.", "rdap", "NL"), handle="ORG-X")
    assert renamed == (dutch[0], "RDAP organisation handle ORG-X")
    with store.session() as session:
        countries = dict(session.execute(select(Hoster.key, Hoster.country)).all())
    assert (countries[dutch[0]], countries[american[0]]) == ("NL", "US")


def test_one_company_is_one_row_in_either_order(db_url, tmp_path):
    for order in (("asn_names", "rdap"), ("rdap", "asn_names")):
        store = Store(f"sqlite:///{tmp_path}/{order[0]}.db") if db_url.startswith("sqlite") \
            else Store(db_url)
        store.upgrade()
        keys = {_row(store, _decision(name, source), handle="ORG-X" if source == "rdap"
                     else None)[0]
                for source, name in zip(order, ("Polder Servers BV", "Polder Servers B.V."),
                                        strict=True)}
        assert keys == {"org:polder servers"}
        store.dispose()


def test_a_new_registry_entry_takes_over_the_row_made_before_it(store, tmp_path):
    before = _row(store, _decision("Polder Servers B.V.", "rdap"), handle="ORG-POLDER")
    user = tmp_path / "hosters.toml"
    user.write_text(
        '[[hoster]]\nid = "polder"\nlegal_name = "Polder Servers B.V."\ncountry = "NL"\n'
        'asns = [64999]\nrdap_orgs = []\ndsa_role = "hosting"\nabuse = ""\ncdn = false\n')
    registry = HosterRegistry.load(shipped=None, user=user)
    key, how = _row(store, _decision("Polder Servers B.V.", "registry:asn",
                                     hoster_id="polder"), registry=registry)
    assert key == "polder"
    assert f"merged with the earlier hoster {before[0]}" in how
    with store.session() as session:
        assert [h.key for h in session.scalars(select(Hoster))] == ["polder"]
        kinds = {a.kind for a in session.scalars(select(HosterAlias))}
    assert {"registry", "asn", "legal_name", "rdap_org", "rdap_handle", "key"} <= kinds


# ---------------------------------------------------------------- one error for --hoster


@pytest.mark.parametrize("command", [("report", "evidence", "--for", "acm", "-o", "p"),
                                     ("export", "xarf")])
def test_an_ambiguous_hoster_is_one_error_with_one_exit_status(command, tmp_path,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path}/h.db"
    store = Store(db)
    store.upgrade()
    _row(store, _decision("Example Hosting B.V.", "rdap", "NL"))
    _row(store, _decision("Example Hosting GmbH", "rdap", "DE"))
    store.dispose()
    code, output = _cli(db, tmp_path, *command[:2], "--hoster", "example hosting",
                        *command[2:])
    assert code == 6
    assert ("hoster 'example hosting' is ambiguous: 2 hosters match (org:example hosting "
            "(Example Hosting B.V.); org:example hosting gmbh (Example Hosting GmbH)); "
            "give the key of one") in output
    code, output = _cli(db, tmp_path, *command[:2], "--hoster", "nobody at all", *command[2:])
    assert code == 2 and "no hoster with key or name 'nobody at all'" in output
    code, output = _cli(db, tmp_path, *command[:2], "--help")
    assert code == 0
    assert "Exit status 2 when --hoster names no hoster, 6 when it names more than" in output
