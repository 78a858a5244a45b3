"""`cases --json` and a CDN edge (#14): the country of the edge a CDN answered
from is not where the material is hosted, so a CDN-fronted case has no
server_country there (as in the report and the packs); the edge's country
is given apart, and the store keeps the attribution's raw fact."""

from __future__ import annotations

from sqlalchemy import select

from lab import Serve, marker_body
from store import Attribution, Store
from tests.crawler.conftest import add_cases
from tests.enrichment.conftest import cases_json, hostwatch


def test_a_cdn_fronted_case_has_no_server_country_but_its_edge_country(db_url, net, tmp_path):
    store = Store(db_url)
    store.upgrade()
    body = Serve(marker_body("cdn-image", kind="jpeg"), content_type="image/jpeg")
    fronted = net.add_cdn_site("fronted.test")
    fronted.default(body)
    direct = net.add_host("koeln.test", network=64503)
    direct.default(body)
    urls = {"cdn": fronted.url("/a.jpg"), "direct": direct.url("/b.jpg")}
    add_cases(store, list(urls.values()))
    assert hostwatch(db_url, net, tmp_path, "crawl").returncode == 0
    result = hostwatch(db_url, net, tmp_path, "enrich", HOSTWATCH_GEOIP_DB=str(net.geoip_path))
    assert result.returncode == 0, result.stderr
    cases = cases_json(db_url, net, tmp_path)
    edge = cases[urls["cdn"]]
    assert edge["cdn"] == "TestCDN Inc."
    assert (edge["server_country"], edge["server_country_source"], edge["geoip_built_at"],
            edge["cdn_edge_country"]) == (None, None, None, "US")
    origin = cases[urls["direct"]]
    assert (origin["server_country"], origin["server_country_source"],
            origin["cdn_edge_country"]) == ("DE", "geoip", None)
    # The store keeps what the geolocation database said about the edge.
    with store.session() as session:
        raw = session.scalars(select(Attribution.server_country)
                              .where(Attribution.cdn.is_not(None))).all()
    assert raw == ["US"]
    store.dispose()
