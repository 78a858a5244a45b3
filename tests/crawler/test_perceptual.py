"""Perceptual matching in the HTTP check, on the local test internet (#12).

The reported JPEG served again with other bytes (metadata stripped,
recompressed, WebP, AVIF, PNG, resized) is the same picture: `reencoded`,
served, never a removal. Another picture, a flat one, or a file that is not
a picture at all is `changed`, and the reason says why. Each test runs
`python -m hostwatch crawl` in a child process against real DNS and HTTP
servers on 127.0.0.x; the pictures are made in memory (lab.images).
"""

from __future__ import annotations

import hashlib
import io
import time

import pytest
from PIL import Image
from sqlalchemy import select

from crawler.perceptual import pdq_of_image
from lab import Serve, Status
from lab.images import CONTENT_TYPES, SAME_PICTURE, flat_reported, hostile, reported, variants
from store import Case, Store
from store.imports import import_cases
from tests.crawler.conftest import add_cases, checks_by_url, run_crawl

QUICK = {"HOSTWATCH_REMOVAL_MIN_HOURS": "0", "HOSTWATCH_SOFT404_PROBE": "0"}
REPORTED = reported(1)
REPORTED_SHA = hashlib.sha256(REPORTED).hexdigest()
REPORTED_PDQ = pdq_of_image(REPORTED, 50_000_000).hash or ""


def states(store: Store) -> dict[str, str]:
    with store.session() as session:
        return {url: state for url, state in session.execute(select(Case.url, Case.state))}


def crawl(db_url, net, tmp_path, **env):
    result = run_crawl(db_url, net, tmp_path, **{**QUICK, **env})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_the_reported_picture_re_encoded_is_reencoded_and_never_removed(store, db_url, net,
                                                                        tmp_path):
    host = net.add_host("cdn-images.test")
    urls = {}
    for name in SAME_PICTURE:
        host.route(f"/{name}", Serve(variants(1)[name], content_type=CONTENT_TYPES[name]))
        urls[name] = host.url(f"/{name}")
    add_cases(store, list(urls.values()), refs=dict.fromkeys(urls.values(), REPORTED_SHA),
              pdqs=dict.fromkeys(urls.values(), REPORTED_PDQ))

    for round_ in (0, 1):
        net.round = round_
        # INFO: Scrapy's closing stats, quiet at the default level (WARNING).
        result = crawl(db_url, net, tmp_path, HOSTWATCH_LOG_LEVEL="INFO")
        assert {states(store)[url] for url in urls.values()} == {"online"}, round_
    checks = checks_by_url(store)
    for name, url in urls.items():
        assert [c.verdict for c in checks[url]] == ["reencoded", "reencoded"], name
        check = checks[url][-1]
        assert check.reference_match is True
        assert check.body_sha256 != REPORTED_SHA  # other bytes...
        assert check.body_pdq and check.pdq_quality >= 50  # ...the same picture
        assert check.pdq_distance is not None and check.pdq_distance <= 31, name
        assert f"PDQ distance {check.pdq_distance}" in check.reason, check.reason
    assert f"hostwatch/pdq_decoded': {len(SAME_PICTURE)}" in result.stderr  # stats count decodes
    for name in ("turned", "mirrored"):
        assert "same picture, turned or mirrored" in checks[urls[name]][-1].reason


@pytest.mark.slow
def test_another_picture_or_a_flat_one_is_changed(store, db_url, net, tmp_path):
    host = net.add_host("swapped.test")
    host.route("/other.jpg", Serve(variants(1)["other"], content_type="image/jpeg"))
    host.route("/flat.jpg", Serve(variants(1)["flat"], content_type="image/jpeg"))
    grey = io.BytesIO()
    Image.new("RGB", (640, 480), (128, 128, 128)).save(grey, "JPEG", quality=60)
    host.route("/flat-again.jpg", Serve(grey.getvalue(), content_type="image/jpeg"))
    other, flat, flat_again = (host.url(p) for p in ("/other.jpg", "/flat.jpg", "/flat-again.jpg"))
    flat_pdq = pdq_of_image(flat_reported(), 50_000_000).hash or ""
    add_cases(store, [other, flat, flat_again],
              refs={other: REPORTED_SHA, flat: REPORTED_SHA,
                    flat_again: hashlib.sha256(flat_reported()).hexdigest()},
              pdqs={other: REPORTED_PDQ, flat: REPORTED_PDQ, flat_again: flat_pdq})

    # With the soft-404 probe on: the checks wait for it with their PDQ.
    crawl(db_url, net, tmp_path, HOSTWATCH_SOFT404_PROBE="1")
    checks = checks_by_url(store)
    assert {url: checks[url][0].verdict for url in (other, flat, flat_again)} == dict.fromkeys(
        (other, flat, flat_again), "changed")
    assert "another picture: PDQ distance" in checks[other][0].reason
    assert checks[other][0].pdq_distance > 31
    # A flat picture's PDQ is noise: neither a flat file served nor a flat
    # reported file is ever "the same picture", however close the bits.
    for url in (flat, flat_again):
        assert "PDQ quality 0 is under 50" in checks[url][0].reason, checks[url][0].reason
        assert checks[url][0].reference_match is False


@pytest.mark.slow
def test_the_report_s_pdq_column_is_the_reference(store, db_url, net, tmp_path):
    host = net.add_host("imported.test")
    host.route("/a.webp", Serve(variants(1)["webp"], content_type="image/webp"))
    report = tmp_path / "reports.csv"
    report.write_text("id,url,category,reported_at,sha256,pdq\n"
                      f"r1,{host.url('/a.webp')},csam,2026-01-01T00:00:00Z,"
                      f"{REPORTED_SHA},{REPORTED_PDQ}\n")
    import_cases(store, report, source="hotline")

    crawl(db_url, net, tmp_path)
    check = checks_by_url(store)[host.url("/a.webp")][0]
    assert (check.verdict, check.pdq_distance) == ("reencoded", 0)


@pytest.mark.slow
def test_a_reference_pdq_learned_from_a_sha256_match_is_used_later(store, db_url, net,
                                                                   tmp_path):
    host = net.add_host("learning.test")
    url = host.url("/photo.jpg")
    host.route("/photo.jpg", [Serve(REPORTED, content_type="image/jpeg"),
                              Serve(variants(1)["webp"], content_type="image/webp")])
    add_cases(store, [url], refs={url: REPORTED_SHA})  # a SHA-256, no PDQ

    crawl(db_url, net, tmp_path)
    first = checks_by_url(store)[url][0]
    assert (first.verdict, first.reference_match) == ("online", True)
    with store.session() as session:
        case = session.scalars(select(Case).where(Case.url == url)).one()
    assert (case.ref_pdq, case.ref_pdq_source, case.ref_pdq_check_id) == (
        REPORTED_PDQ, "learned", first.id)
    assert (first.body_pdq, first.pdq_quality) == (REPORTED_PDQ, 100)

    net.round = 1  # the host now serves the same picture as WebP
    crawl(db_url, net, tmp_path)
    later = checks_by_url(store)[url][1]
    assert (later.verdict, later.pdq_distance) == ("reencoded", 0)
    assert states(store)[url] == "online"


@pytest.mark.slow
def test_a_pdq_only_reference_is_compared_and_pdq_off_is_sha256_only(store, db_url, net,
                                                                     tmp_path):
    host = net.add_host("pdqonly.test")
    host.route("/same.webp", Serve(variants(1)["webp"], content_type="image/webp"))
    host.route("/other.jpg", Serve(variants(1)["other"], content_type="image/jpeg"))
    host.route("/both.webp", Serve(variants(1)["webp"], content_type="image/webp"))
    same, other, both = (host.url(p) for p in ("/same.webp", "/other.jpg", "/both.webp"))
    add_cases(store, [same, other, both], refs={both: REPORTED_SHA},
              pdqs=dict.fromkeys((same, other, both), REPORTED_PDQ))

    crawl(db_url, net, tmp_path)
    checks = checks_by_url(store)
    assert (checks[same][0].verdict, checks[same][0].reference_match) == ("online", True)
    assert checks[same][0].reason.startswith("served; matches the reference PDQ")
    assert (checks[other][0].verdict, checks[other][0].reference_match) == ("changed", False)
    assert checks[both][0].verdict == "reencoded"

    crawl(db_url, net, tmp_path, HOSTWATCH_PDQ="0")  # SHA-256 only, as before #12
    checks = checks_by_url(store)
    assert (checks[both][1].verdict, checks[both][1].body_pdq) == ("changed", None)
    assert checks[same][1].verdict == "online"  # nothing to compare with
    assert checks[same][1].reference_match is None


@pytest.mark.slow
def test_hostile_images_end_in_a_clear_reason_in_bounded_time(store, db_url, net, tmp_path):
    host = net.add_host("hostile-images.test")
    files = hostile()
    for name, (body, content_type) in files.items():
        host.route(f"/{name}", Serve(body, content_type=content_type))
    urls = {name: host.url(f"/{name}") for name in files}
    add_cases(store, list(urls.values()), refs=dict.fromkeys(urls.values(), REPORTED_SHA),
              pdqs=dict.fromkeys(urls.values(), REPORTED_PDQ))

    started = time.monotonic()
    crawl(db_url, net, tmp_path, HOSTWATCH_PDQ_MAX_PIXELS="50000000")
    assert time.monotonic() - started < 60
    checks = {name: checks_by_url(store)[url][0] for name, url in urls.items()}
    # Bytes that are no picture at all are not the reported one.
    lies = checks["lies"]
    assert (lies.verdict, lies.body_pdq, lies.reference_match) == ("changed", None, False)
    assert "not compared by picture: not an image" in lies.reason
    # A file that may be the picture, not decoded within the limits: no
    # comparison, and never a removal (a hoster must not earn one by serving
    # images hostwatch cannot decode).
    says = {"bomb": "30000×30000 pixels is over the cap", "canvas": "over the cap",
            "truncated": "truncated file", "header_only": "could not be decoded"}
    for name, text in says.items():
        check = checks[name]
        assert (check.verdict, check.body_pdq, check.reference_match) == (
            "online", None, None), name
        assert "not compared by picture: " in check.reason and text in check.reason, (
            name, check.reason)
        assert check.reason.endswith("not counted as removed"), check.reason
    # The bytes decide, not the Content-Type: a PNG served as image/jpeg.
    assert checks["png_as_jpeg"].verdict == "reencoded"


@pytest.mark.slow
def test_a_decode_time_out_is_a_clear_reason_and_the_crawl_goes_on(store, db_url, net,
                                                                   tmp_path):
    host = net.add_host("slow-decode.test")
    host.route("/webp", Serve(variants(1)["webp"], content_type="image/webp"))
    host.route("/png", Serve(variants(1)["png"], content_type="image/png"))
    host.route("/reported.jpg", Serve(REPORTED, content_type="image/jpeg"))
    host.route("/gone.jpg", Status(404))
    urls = [host.url(p) for p in ("/webp", "/png", "/reported.jpg", "/gone.jpg")]
    add_cases(store, urls, refs=dict.fromkeys(urls, REPORTED_SHA),
              pdqs=dict.fromkeys(urls, REPORTED_PDQ))

    crawl(db_url, net, tmp_path, HOSTWATCH_PDQ_TIMEOUT="0.01")
    checks = checks_by_url(store)
    for url in urls[:2]:
        check = checks[url][0]
        # Not compared, so not a removal either.
        assert (check.verdict, check.reference_match) == ("online", None)
        assert "took longer than 0.01 s to decode (HOSTWATCH_PDQ_TIMEOUT)" in check.reason
    # The other cases need no decode and are checked as ever.
    assert [checks[url][0].verdict for url in urls[2:]] == ["online", "http_gone"]


@pytest.mark.slow
def test_an_error_after_a_decode_is_recorded_on_the_check(store, db_url, net, tmp_path):
    """A stored reference PDQ that is not hex (written by hand into the
    store, say) fails the comparison after the decode was awaited: the check
    records hostwatch's error, never loses the case, and the crawl goes on."""
    host = net.add_host("bad-reference.test")
    host.route("/a.webp", Serve(variants(1)["webp"], content_type="image/webp"))
    host.route("/b.webp", Serve(variants(1)["webp"], content_type="image/webp"))
    bad, good = host.url("/a.webp"), host.url("/b.webp")
    add_cases(store, [bad, good], refs={bad: REPORTED_SHA, good: REPORTED_SHA},
              pdqs={bad: "not-a-pdq", good: REPORTED_PDQ})

    crawl(db_url, net, tmp_path)
    checks = checks_by_url(store)
    assert (checks[bad][0].error_kind, checks[bad][0].reason) == (
        "other", "other: hostwatch error ValueError")
    assert checks[good][0].verdict == "reencoded"
