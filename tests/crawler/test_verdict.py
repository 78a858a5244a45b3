"""classify(): every verdict from hand-built observations, no Scrapy, no network."""

import hashlib
from dataclasses import replace

import pytest

from crawler.perceptual import Pdq, Reference
from crawler.verdict import (
    ErrorKind,
    NotFoundFingerprint,
    Observation,
    PlaceholderRules,
    body_features,
    classify,
)
from kernel.model import Verdict

RULES = PlaceholderRules.load()
IMAGE = b"\xff\xd8\xff\xe0JFIF reported image bytes"
IMAGE_SHA = hashlib.sha256(IMAGE).hexdigest()


def served(url="http://h.test/img/1.jpg", body=IMAGE, content_type="image/jpeg", status=200,
           final_url=None, chain=(), rules=RULES):
    features = body_features(body, requested_url=final_url or url, content_type=content_type,
                             rules=rules)
    return Observation(url=url, status=status, final_url=final_url or url, redirect_chain=chain,
                       content_type=content_type, body=features)


def test_served_without_reference_is_online():
    decision = classify(served())
    assert decision.verdict is Verdict.ONLINE
    assert decision.reference_match is None


def test_served_matching_the_reference_is_online_with_a_match():
    decision = classify(served(), reference=Reference(sha256=IMAGE_SHA.upper()))
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, True)


def test_served_but_different_file_is_changed():
    decision = classify(served(body=b"another picture"), reference=Reference(sha256=IMAGE_SHA))
    assert (decision.verdict, decision.reference_match) == (Verdict.CHANGED, False)


def test_a_page_is_not_compared_with_a_file_reference():
    decision = classify(served(body=b"<html>gallery</html>", content_type="text/html"),
                        reference=Reference(sha256=IMAGE_SHA))
    assert decision.verdict is Verdict.ONLINE
    assert decision.reference_match is None


def test_truncated_body_is_online_without_comparison():
    features = body_features(IMAGE[:10], requested_url="http://h.test/a.jpg",
                             content_type="image/jpeg", rules=RULES, truncated=True)
    obs = Observation(url="http://h.test/a.jpg", status=200, content_type="image/jpeg",
                      body=features)
    decision = classify(obs, reference=Reference(sha256=IMAGE_SHA))
    assert decision.verdict is Verdict.ONLINE
    assert decision.reference_match is None
    assert "cap" in decision.reason


PDQ = "f" * 64  # the reference PDQ
NEAR = "0" * 3 + "f" * 61  # 12 bits from it
FAR = "0" * 16 + "f" * 48  # 64 bits from it
REENCODED = Observation(url="http://h.test/a.jpg", status=200, content_type="image/webp",
                        body=body_features(b"RIFF....WEBP other bytes",
                                           requested_url="http://h.test/a.jpg",
                                           content_type="image/webp", rules=RULES))


def test_same_picture_with_other_bytes_is_reencoded():
    decision = classify(replace(REENCODED, pdq=Pdq(NEAR, 100)),
                        reference=Reference(sha256=IMAGE_SHA, pdq=PDQ))
    assert (decision.verdict, decision.reference_match) == (Verdict.REENCODED, True)
    assert "PDQ distance 12" in decision.reason


def test_a_pdq_only_reference_is_compared_and_online_by_pdq():
    reference = Reference(pdq=PDQ)
    near = classify(replace(REENCODED, pdq=Pdq(NEAR, 100)), reference=reference)
    assert (near.verdict, near.reference_match) == (Verdict.ONLINE, True)
    assert near.reason.startswith("served; matches the reference PDQ")
    far = classify(replace(REENCODED, pdq=Pdq(FAR, 100)), reference=reference)
    assert (far.verdict, far.reference_match) == (Verdict.CHANGED, False)
    assert "PDQ distance 64" in far.reason


@pytest.mark.parametrize(("pdq", "says"), [
    (None, "no picture to compare"),
    (Pdq(error="decompression bomb: ..."), "decompression bomb"),
    (Pdq(NEAR, 10), "quality 10 is under 50"),
    (Pdq(FAR, 100), "PDQ distance 64 > 31"),
])
def test_other_bytes_that_are_not_the_picture_are_changed_with_the_reason(pdq, says):
    decision = classify(replace(REENCODED, pdq=pdq),
                        reference=Reference(sha256=IMAGE_SHA, pdq=PDQ))
    assert (decision.verdict, decision.reference_match) == (Verdict.CHANGED, False)
    assert says in decision.reason


def test_the_reported_bytes_match_by_sha256_whatever_their_pdq():
    decision = classify(replace(served(), pdq=Pdq(FAR, 100)),
                        reference=Reference(sha256=IMAGE_SHA, pdq=PDQ))
    assert (decision.verdict, decision.reason) == (Verdict.ONLINE,
                                                   "served; matches the reference hash")


@pytest.mark.parametrize(("status", "verdict"), [
    (404, Verdict.HTTP_GONE), (410, Verdict.HTTP_GONE), (451, Verdict.LEGAL_BLOCK),
    (403, Verdict.ACCESS_DENIED), (401, Verdict.ACCESS_DENIED), (408, Verdict.ACCESS_DENIED),
    (500, Verdict.SERVER_ERROR), (503, Verdict.SERVER_ERROR),
    (429, Verdict.SERVER_ERROR), (304, Verdict.BAD_RESPONSE), (101, Verdict.BAD_RESPONSE),
])
def test_status_codes(status, verdict):
    assert classify(served(status=status)).verdict is verdict


@pytest.mark.parametrize(("kind", "verdict"), [
    (ErrorKind.NXDOMAIN, Verdict.NXDOMAIN), (ErrorKind.DNS_SERVFAIL, Verdict.DNS_ERROR),
    (ErrorKind.DNS_TIMEOUT, Verdict.DNS_ERROR), (ErrorKind.TIMEOUT, Verdict.TIMEOUT),
    (ErrorKind.REFUSED, Verdict.REFUSED), (ErrorKind.CONNECTION_LOST, Verdict.REFUSED),
    (ErrorKind.TLS, Verdict.TLS_ERROR), (ErrorKind.BAD_RESPONSE, Verdict.BAD_RESPONSE),
    (ErrorKind.REDIRECT_LOOP, Verdict.REDIRECT_LOOP),
    (ErrorKind.BLOCKED, Verdict.BLOCKED_ADDRESS),
])
def test_fetch_failures(kind, verdict):
    decision = classify(Observation(url="http://h.test/", error=kind, error_detail="x"))
    assert decision.verdict is verdict
    assert kind.value in decision.reason


@pytest.mark.parametrize("target", [
    "http://h.test/", "http://h.test/login?next=/img/1.jpg", "http://h.test/account/login",
    "http://other.test/",
])
def test_redirect_to_home_or_login_is_redirect_away(target):
    obs = served(body=b"<html>welcome</html>", content_type="text/html", final_url=target,
                 chain=("http://h.test/img/1.jpg",))
    assert classify(obs).verdict is Verdict.REDIRECT_AWAY


def test_redirect_to_a_removed_image_is_placeholder():
    obs = served(final_url="http://h.test/static/removed.png", chain=("http://h.test/img/1.jpg",))
    assert classify(obs).verdict is Verdict.PLACEHOLDER


def test_redirect_to_another_file_is_still_served():
    obs = served(final_url="http://cdn.h.test/img/1.jpg", chain=("http://h.test/img/1.jpg",))
    assert classify(obs).verdict is Verdict.ONLINE


def test_known_removed_image_hash_is_placeholder(tmp_path):
    placeholder = b"\x89PNG removed-placeholder"
    hashes = tmp_path / "hashes.txt"
    hashes.write_text(hashlib.sha256(placeholder).hexdigest() + "\n")
    rules = PlaceholderRules.load(extra_hashes=str(hashes))
    obs = served(body=placeholder, content_type="image/png", rules=rules)
    assert classify(obs, rules=rules).verdict is Verdict.PLACEHOLDER
    assert classify(served(), rules=rules).verdict is Verdict.ONLINE


def test_removed_text_marker_is_placeholder():
    obs = served(body=b"<html><p>This image has been REMOVED due to a complaint.</p></html>",
                 content_type="text/html; charset=utf-8")
    decision = classify(obs)
    assert decision.verdict is Verdict.PLACEHOLDER
    assert "has been removed" in decision.reason


def test_markers_are_not_searched_in_images():
    obs = served(body=b"\xff\xd8 has been removed", content_type="image/jpeg")
    assert classify(obs).verdict is Verdict.ONLINE


def test_user_markers_are_added(tmp_path):
    markers = tmp_path / "markers.txt"
    markers.write_text("# comment\nweggehaald door de beheerder\n")
    rules = PlaceholderRules.load(extra_markers=str(markers))
    obs = served(body=b"<p>Weggehaald door de beheerder</p>", content_type="text/html",
                 rules=rules)
    assert classify(obs, rules=rules).verdict is Verdict.PLACEHOLDER


def test_bad_placeholder_hash_file_is_a_clear_error(tmp_path):
    hashes = tmp_path / "hashes.txt"
    hashes.write_text("not-a-hash\n")
    with pytest.raises(ValueError, match="not-a-hash"):
        PlaceholderRules.load(extra_hashes=str(hashes))


def _soft404_page(path: str) -> bytes:
    return (f"<html><head><title>Oops</title></head><body>We looked everywhere for "
            f"{path} but it is not here.</body></html>").encode()


def _fingerprint(status=200):
    probe = "http://h.test/img/hostwatch-probe-0123.jpg"
    features = body_features(_soft404_page("/img/hostwatch-probe-0123.jpg"),
                             requested_url=probe, content_type="text/html", rules=RULES)
    return NotFoundFingerprint(status, "text/html", features.normalised_sha256,
                               features.length, features.title)


def test_soft_404_page_that_echoes_the_path_is_placeholder():
    obs = served(body=_soft404_page("/img/1.jpg"), content_type="text/html")
    assert classify(obs).verdict is Verdict.ONLINE  # no fingerprint: cannot tell
    assert classify(obs, not_found=_fingerprint()).verdict is Verdict.PLACEHOLDER


def test_real_page_on_a_soft_404_host_is_online():
    obs = served(body=b"<html><head><title>Gallery</title></head><body>photos</body></html>",
                 content_type="text/html")
    assert classify(obs, not_found=_fingerprint()).verdict is Verdict.ONLINE


def test_honest_404_host_fingerprint_never_matches():
    obs = served(body=_soft404_page("/img/1.jpg"), content_type="text/html")
    assert classify(obs, not_found=_fingerprint(status=404)).verdict is Verdict.ONLINE


def test_body_features_keep_no_bytes_of_the_body():
    features = body_features(b"<html>secret-marker-123</html>", requested_url="http://h.test/",
                             content_type="text/html", rules=RULES)
    assert "secret-marker-123" not in repr(features)


@pytest.mark.parametrize(("asked", "final"), [
    ("http://h.test/", "https://h.test/"),
    ("http://h.test/", "https://www.h.test/"),
    ("http://h.test/IMG_4041.jpg", "https://h.test/IMG_4041.jpg"),
    ("http://h.test/gallery/missing-link.html", "https://cdn.h.test/gallery/missing-link.html"),
])
def test_plain_scheme_or_host_redirects_are_still_served(asked, final):
    obs = served(url=asked, final_url=final, chain=(asked,))
    assert classify(obs).verdict is Verdict.ONLINE


def test_a_hostile_page_of_unclosed_titles_is_cheap():
    import time

    body = b"<html>" + b"<title>" * 70_000
    started = time.perf_counter()
    features = body_features(body, requested_url="http://h.test/", content_type="text/html",
                             rules=RULES)
    assert time.perf_counter() - started < 0.5
    assert features.title is None
