"""crawler.browser.decide: the verdict of a browser check, from hand-built visits.

Every question of the module docstring, in its order: the visit failed, the
page's own status and redirects, the host's "removed" notice, no media, then
the media hashed over the HTTP path against the reference. Pure: no browser,
no network.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest

from crawler.browser.decide import (
    ActionNote,
    MediaHash,
    PageVisit,
    PdqRecord,
    decide,
    pdq_record,
    with_actions,
)
from crawler.perceptual import Pdq, Reference
from crawler.verdict import Decision, ErrorKind, PlaceholderRules
from kernel.model import Verdict, VerdictGroup

PAGE = "http://gallery.test/g/a1"
IMG = "http://gallery.test/m/a1.jpg"
OTHER_IMG = "http://cdn.gallery.test/m/b2.jpg"
THUMB = "http://gallery.test/m/a1-thumb.jpg"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


REFERENCE = sha(b"the reported image")
DIFFERENT = sha(b"some other image")
STAND_IN = sha(b"the host's 'image removed' picture")
RULES = PlaceholderRules(hashes=frozenset({STAND_IN}))


LOADED = PageVisit(url=PAGE, status=200, content_type="text/html; charset=utf-8",
                   peer_ip="127.0.0.10", media=(IMG,))


def page(**fields: Any) -> PageVisit:
    """A page that loaded fine (200, HTML) and showed ``IMG``, unless told otherwise."""
    return replace(LOADED, **fields)


def hashed(url: str = IMG, digest: str | None = REFERENCE, status: int | None = 200, *,
           truncated: bool = False) -> MediaHash:
    return MediaHash(url, status, digest, 2048, "image/jpeg", truncated)


def run(visit: PageVisit, hashes: list[MediaHash] | tuple[MediaHash, ...] = (),
        reference: str | None = REFERENCE,
        rules: PlaceholderRules = RULES) -> tuple[Decision, MediaHash | None]:
    return decide(visit, hashes, reference=Reference(sha256=reference), rules=rules)


# -- 1. the visit failed ------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "verdict"), [
    (ErrorKind.NXDOMAIN, Verdict.NXDOMAIN),
    (ErrorKind.BLOCKED, Verdict.BLOCKED_ADDRESS),
    (ErrorKind.TIMEOUT, Verdict.TIMEOUT),
    (ErrorKind.DNS_SERVFAIL, Verdict.DNS_ERROR),
    (ErrorKind.REFUSED, Verdict.REFUSED),
    (ErrorKind.TLS, Verdict.TLS_ERROR),
    (ErrorKind.OTHER, Verdict.BAD_RESPONSE),
])
def test_a_failed_visit_gets_the_verdict_of_its_error(kind, verdict):
    visit = PageVisit(url=PAGE, error=kind, error_detail="gallery.test: why")
    decision, media = run(visit, [hashed()])
    assert decision.verdict is verdict
    assert "gallery.test: why" in decision.reason
    assert decision.reference_match is None
    assert media is None


def test_an_error_wins_over_what_the_page_seemed_to_show():
    # A visit that timed out after the page had already named its media
    # (and even a hash that matches) is still a timeout: nothing was decided.
    visit = page(error=ErrorKind.TIMEOUT, error_detail="took over 20 s", removed="text 'x'")
    decision, media = run(visit, [hashed()])
    assert decision.verdict is Verdict.TIMEOUT
    assert media is None


# -- 2. the page's own status and redirects -------------------------------------------


@pytest.mark.parametrize(("status", "verdict"), [
    (404, Verdict.HTTP_GONE),
    (410, Verdict.HTTP_GONE),
    (451, Verdict.LEGAL_BLOCK),
    (503, Verdict.SERVER_ERROR),
    (500, Verdict.SERVER_ERROR),
    (429, Verdict.SERVER_ERROR),
    (403, Verdict.ACCESS_DENIED),
    (401, Verdict.ACCESS_DENIED),
    (304, Verdict.BAD_RESPONSE),
    (None, Verdict.BAD_RESPONSE),
])
def test_the_pages_status_decides_before_its_media(status, verdict):
    # Even a page that shows the reported image: its status says it all.
    decision, media = run(page(status=status), [hashed()])
    assert decision.verdict is verdict
    assert decision.reference_match is None
    assert media is None


def test_a_script_redirect_to_the_home_page_is_redirect_away():
    home = "http://gallery.test/"
    visit = page(final_url=home, redirect_chain=(PAGE,), media=(THUMB,))
    decision, media = run(visit, [hashed(THUMB, DIFFERENT)])
    assert decision.verdict is Verdict.REDIRECT_AWAY
    assert home in decision.reason
    assert media is None


def test_a_redirect_to_a_login_page_is_redirect_away():
    visit = page(final_url="http://gallery.test/login?next=/g/a1", redirect_chain=(PAGE,))
    decision, _ = run(visit, [hashed()])
    assert decision.verdict is Verdict.REDIRECT_AWAY
    assert "login" in decision.reason


def test_a_redirect_to_https_of_the_same_page_is_followed_to_its_media():
    visit = page(final_url="https://gallery.test/g/a1", redirect_chain=(PAGE,))
    decision, media = run(visit, [hashed()])
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, True)
    assert media == hashed()


# -- 3. the host's "removed" notice, 4. no media ------------------------------------


def test_the_hosts_removed_text_means_placeholder():
    visit = page(removed='text "this image has been removed"', media=(THUMB,))
    decision, media = run(visit, [hashed(THUMB, DIFFERENT)])
    assert decision.verdict is Verdict.PLACEHOLDER
    assert "this image has been removed" in decision.reason
    assert media is None


def test_the_reported_media_still_shown_beats_a_notice_elsewhere_on_the_page():
    # A comments widget saying "this comment was deleted" takes no photo down.
    notice = ('text "was deleted" in a cross-origin iframe '
              '(http://comments.test/w/1)')
    decision, media = run(page(removed=notice), [hashed()])
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, True)
    assert decision.reason == (f"page shows {IMG}: matches the reference hash; it also shows "
                               f"the host's 'removed' {notice}")
    assert media == hashed()


def test_an_inline_match_beats_a_notice_too():
    inline = MediaHash("data:image/jpeg (inline #1, 2048 bytes)", sha256=REFERENCE,
                       length=2048, inline=True)
    decision, media = run(page(removed='text "was deleted" in the page',
                               media=(inline.url,), inline=(inline,)), [inline])
    assert (decision.verdict, decision.reference_match, media) == (Verdict.ONLINE, True, inline)


@pytest.mark.parametrize("where", ["in an overlay", "in an overlay in a closed shadow root"])
def test_a_notice_laid_over_the_page_wins_over_a_matching_hash(where):
    # The overlay covers the photo: a person sees the notice.
    decision, media = run(page(removed=f"element div.hw-removed-notice {where}"), [hashed()])
    assert decision.verdict is Verdict.PLACEHOLDER
    assert decision.reason == ("page shows the host's 'removed' element "
                               f"div.hw-removed-notice {where}")
    assert media is None


def test_media_the_page_no_longer_showed_when_read_never_beats_a_notice():
    # The photo was asked for, then replaced by the notice: only the first
    # `shown` media were on the page when it was read.
    visit = page(removed='text "has been removed" in the page', media=(THUMB, IMG), shown=1)
    decision, media = run(visit, [hashed(THUMB, DIFFERENT), hashed(IMG, REFERENCE)])
    assert (decision.verdict, media) == (Verdict.PLACEHOLDER, None)


def test_a_notice_without_a_match_is_a_placeholder_whatever_else_is_shown():
    for reference in (REFERENCE, None):
        decision, _ = run(page(removed='text "gone" in the page'), [hashed(IMG, DIFFERENT)],
                          reference=reference)
        assert decision.verdict is Verdict.PLACEHOLDER, reference


def test_a_page_that_shows_no_media_is_a_placeholder():
    decision, media = run(page(media=()), [])
    assert decision.verdict is Verdict.PLACEHOLDER
    assert "no media" in decision.reason
    assert decision.reference_match is None
    assert media is None


# -- 5. the media, hashed over the HTTP path ------------------------------------------


def test_media_matching_the_reference_is_online_and_the_match_is_returned():
    first = hashed(THUMB, DIFFERENT)
    match = hashed(IMG, REFERENCE)
    decision, media = run(page(media=(THUMB, IMG)), [first, match])
    assert decision.verdict is Verdict.ONLINE
    assert decision.reference_match is True
    assert IMG in decision.reason
    assert media == match


def test_the_reference_is_compared_case_insensitively():
    match = hashed(IMG, REFERENCE)
    decision, media = run(page(), [hashed(THUMB, DIFFERENT), match], reference=REFERENCE.upper())
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, True)
    assert media == match


def test_media_that_all_differ_from_the_reference_is_changed():
    first = hashed(OTHER_IMG, DIFFERENT)
    second = hashed(THUMB, sha(b"a thumbnail"))
    decision, media = run(page(media=(OTHER_IMG, THUMB)), [first, second])
    assert decision.verdict is Verdict.CHANGED
    assert decision.reference_match is False
    assert OTHER_IMG in decision.reason
    assert media == first  # the first usable one is what the check records


def test_changed_records_the_first_usable_media_not_the_first_fetched():
    gone = hashed(THUMB, None, 404)
    broken = MediaHash(IMG, error=ErrorKind.TIMEOUT)
    other = hashed(OTHER_IMG, DIFFERENT)
    decision, media = run(page(media=(THUMB, IMG, OTHER_IMG)), [gone, broken, other])
    assert decision.verdict is Verdict.CHANGED
    assert media == other


def test_only_the_hosts_known_removed_image_is_a_placeholder():
    stand_in = hashed(IMG, STAND_IN)
    decision, media = run(page(), [stand_in])
    assert decision.verdict is Verdict.PLACEHOLDER
    assert "known 'removed' image" in decision.reason
    assert media == stand_in


def test_the_known_removed_image_is_recognised_without_a_reference_too():
    decision, _ = run(page(), [hashed(IMG, STAND_IN)], reference=None)
    assert decision.verdict is Verdict.PLACEHOLDER


def test_a_known_removed_image_beside_a_different_one_is_changed_not_placeholder():
    decision, media = run(page(media=(IMG, OTHER_IMG)),
                          [hashed(IMG, STAND_IN), hashed(OTHER_IMG, DIFFERENT)])
    assert decision.verdict is Verdict.CHANGED
    assert media == hashed(IMG, STAND_IN)


def test_media_that_is_all_gone_is_a_placeholder():
    first = hashed(IMG, None, 404)
    decision, media = run(page(media=(IMG, THUMB)), [first, hashed(THUMB, None, 410)])
    assert decision.verdict is Verdict.PLACEHOLDER
    assert "HTTP 404" in decision.reason and IMG in decision.reason
    assert decision.reference_match is None
    assert media == first


def test_media_partly_gone_partly_unreachable_is_not_called_gone():
    decision, _ = run(page(media=(IMG, THUMB)),
                      [hashed(IMG, None, 404), MediaHash(THUMB, error=ErrorKind.REFUSED)])
    assert decision.verdict is Verdict.ONLINE
    assert decision.reference_match is None


@pytest.mark.parametrize("failure", [
    MediaHash(IMG, error=ErrorKind.TIMEOUT),
    MediaHash(IMG, error=ErrorKind.BLOCKED),
    MediaHash(IMG, status=503, content_type="text/html"),
    MediaHash(IMG, status=403, content_type="text/html"),
])
def test_media_shown_but_unreachable_is_online_without_a_comparison(failure):
    decision, media = run(page(), [failure])
    assert decision.verdict is Verdict.ONLINE
    assert decision.reference_match is None
    assert "could not be fetched" in decision.reason
    assert media == failure


@pytest.mark.parametrize("unread", [
    MediaHash("blob:http://gallery.test/6eb17f28-c3eb-4d81-a8db-21f7afd76054",
              error=ErrorKind.UNSUPPORTED, inline=True),
    MediaHash("data:image/jpeg (inline #2)", error=ErrorKind.UNSUPPORTED, inline=True),
    MediaHash("data:image/jpeg (inline #2)", sha256=DIFFERENT, truncated=True, inline=True),
])
def test_an_inline_media_that_could_not_be_read_is_not_read_as_changed(unread):
    # It may be the reported photo (a MediaSource stream, a Blob let go):
    # the other media differing proves no removal.
    decision, media = run(page(media=(IMG, unread.url), inline=(unread,)),
                          [hashed(IMG, DIFFERENT), unread])
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, None)
    assert decision.reason == (f"page shows {unread.url}, which could not be compared (read "
                               "in the page); no other media matches the reference hash")
    # Beside only the host's known "removed" image, too.
    decision, _ = run(page(media=(IMG, unread.url)), [hashed(IMG, STAND_IN), unread])
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, None)
    # A match still wins.
    decision, _ = run(page(media=(IMG, unread.url)), [unread, hashed(IMG, REFERENCE)])
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, True)


def test_media_shown_but_never_hashed_is_online_without_a_comparison():
    decision, media = run(page(), [])
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, None)
    assert media is None


def test_without_a_reference_media_shown_is_online():
    shown = hashed(IMG, DIFFERENT)
    decision, media = run(page(), [shown], reference=None)
    assert decision.verdict is Verdict.ONLINE
    assert decision.reference_match is None
    assert "no reference" in decision.reason
    assert media == shown


def test_a_truncated_hash_is_never_compared():
    # Over HOSTWATCH_MAX_BODY: the hash covers only the first bytes. Even if
    # it happened to equal the reference it proves nothing, and a difference
    # proves nothing either.
    for digest in (REFERENCE, DIFFERENT):
        cut = hashed(IMG, digest, truncated=True)
        decision, media = run(page(), [cut])
        assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, None)
        assert media == cut


def test_a_truncated_hash_beside_a_full_one_defers_to_the_full_one():
    decision, media = run(page(media=(THUMB, IMG)),
                          [hashed(THUMB, REFERENCE, truncated=True), hashed(IMG, DIFFERENT)])
    assert (decision.verdict, decision.reference_match) == (Verdict.CHANGED, False)
    assert media == hashed(IMG, DIFFERENT)


def test_a_hash_of_a_non_2xx_answer_is_never_compared():
    decision, _ = run(page(), [hashed(IMG, REFERENCE, status=304)])
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, None)


# -- the URL itself is the media --------------------------------------------------------


def media_url(**fields: Any) -> PageVisit:
    """The reported URL answered with media itself (the proxy refused its body)."""
    return page(url=IMG, content_type=None, media=(), main_is_media=True, **fields)


def test_a_url_that_serves_the_reported_media_is_online():
    match = hashed(IMG, REFERENCE)
    decision, media = run(media_url(), [match])
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, True)
    assert IMG in decision.reason
    assert media == match


def test_a_url_that_serves_other_media_is_changed():
    decision, media = run(media_url(), [hashed(IMG, DIFFERENT)])
    assert (decision.verdict, decision.reference_match) == (Verdict.CHANGED, False)
    assert media == hashed(IMG, DIFFERENT)


def test_a_url_that_serves_media_without_a_reference_is_online():
    decision, _ = run(media_url(), [hashed(IMG, DIFFERENT)], reference=None)
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, None)


def test_a_url_that_serves_the_known_removed_image_is_a_placeholder():
    decision, _ = run(media_url(), [hashed(IMG, STAND_IN)])
    assert decision.verdict is Verdict.PLACEHOLDER


def test_a_url_that_serves_media_is_decided_by_its_hash_not_by_no_media_shown():
    # No <img> in a page (there is no page): not "shows no media".
    decision, _ = run(media_url(), [hashed(IMG, REFERENCE)])
    assert decision.verdict is not Verdict.PLACEHOLDER


def test_a_url_that_serves_media_truncated_is_online_without_a_comparison():
    decision, _ = run(media_url(), [hashed(IMG, REFERENCE, truncated=True)])
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, None)


@pytest.mark.parametrize(("status", "verdict"), [
    (404, Verdict.HTTP_GONE),
    (410, Verdict.HTTP_GONE),
    (451, Verdict.LEGAL_BLOCK),
    (403, Verdict.ACCESS_DENIED),
    (503, Verdict.SERVER_ERROR),
])
def test_a_media_url_with_an_error_status_gets_the_verdict_an_http_check_would(status, verdict):
    # A 451/403/503 answered with an image/* type (a "blocked" or "not found"
    # picture): the proxy refuses it as media and keeps the upstream status;
    # the hash fetch of the same URL (check.py) gets the same status. It is
    # not "online" because an image-typed answer came back.
    fetched = MediaHash(IMG, status=status, content_type="image/png")
    decision, media = run(media_url(status=status), [fetched])
    assert decision.verdict is verdict
    assert decision.reference_match is None
    assert media == fetched


@pytest.mark.parametrize(("kind", "verdict"), [
    (ErrorKind.TIMEOUT, Verdict.TIMEOUT),
    (ErrorKind.BLOCKED, Verdict.BLOCKED_ADDRESS),
    (ErrorKind.REFUSED, Verdict.REFUSED),
])
def test_a_media_url_whose_hash_fetch_failed_gets_the_verdict_of_that_failure(kind, verdict):
    decision, _ = run(media_url(), [MediaHash(IMG, error=kind)])
    assert decision.verdict is verdict


def test_a_media_url_whose_visit_failed_is_still_the_error():
    decision, media = run(media_url(error=ErrorKind.BLOCKED, error_detail="10.0.0.5 is private"),
                          [hashed()])
    assert decision.verdict is Verdict.BLOCKED_ADDRESS
    assert media is None


# -- what the host's actions did (consent walls) ------------------------------------------


def test_a_check_without_actions_keeps_its_reason():
    decision = Decision(Verdict.PLACEHOLDER, "page, run in a browser, shows no media")
    assert with_actions(decision, LOADED) == decision


def test_the_actions_that_ran_end_the_reason_in_order_whatever_the_verdict():
    notes = (ActionNote("clicked button#accept-all", acted=True),
             ActionNote("wait_for main img: not seen in 5 s"))
    for decision in (Decision(Verdict.ONLINE, "page shows x: matches the reference hash", True),
                     Decision(Verdict.TIMEOUT, "the page did not finish loading in 30 s")):
        got = with_actions(decision, replace(LOADED, actions=notes))
        assert got == replace(decision, reason=f"{decision.reason}; consent actions: clicked "
                                               "button#accept-all, wait_for main img: not seen "
                                               "in 5 s")


# -- a page still loading when its settle time ran out (PageVisit.busy) -------------------

BUSY = "still loading after 5.0 s: 2 request(s) in flight, 3 started in the last 0.5 s"


def busy(**fields: Any) -> PageVisit:
    return page(busy=BUSY, **fields)


def test_a_busy_page_showing_the_reported_media_is_online():
    match = hashed(IMG, REFERENCE)
    decision, media = run(busy(media=(THUMB, IMG)), [hashed(THUMB, DIFFERENT), match])
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, True)
    assert media == match


def test_a_busy_page_showing_media_without_a_reference_hash_is_online():
    """Media shown, nothing to compare: as on a page that is done."""
    decision, media = run(busy(media=(IMG,)), [hashed(IMG, DIFFERENT)], reference=None)
    assert decision.verdict is Verdict.ONLINE and "no reference hash" in decision.reason
    assert media == hashed(IMG, DIFFERENT)


@pytest.mark.parametrize(("media", "hashes", "reference"), [
    ((IMG,), [hashed(IMG, DIFFERENT)], REFERENCE),  # a spinner, not the photo: not "changed"
    ((), [], REFERENCE),  # nothing shown yet: not "shows no media"
    ((IMG,), [hashed(IMG, None, 404)], REFERENCE),  # not "media that is gone"
    ((IMG,), [MediaHash(IMG, error=ErrorKind.TIMEOUT)], REFERENCE),
    ((), [], None),  # no reference, nothing shown yet
])
def test_a_busy_page_is_incomplete_unless_it_shows_the_reported_media(media, hashes, reference):
    decision, _ = run(busy(media=media), hashes, reference=reference)
    assert decision.verdict is Verdict.INCOMPLETE
    assert decision.verdict.group is VerdictGroup.TRANSIENT
    assert decision.reference_match is None
    assert "still loading" in decision.reason and BUSY in decision.reason
    assert "not read as removed" in decision.reason


def test_a_busy_page_records_the_media_it_hashed():
    spinner = hashed(IMG, DIFFERENT)
    decision, media = run(busy(), [spinner])
    assert decision.verdict is Verdict.INCOMPLETE
    assert media == spinner


def test_a_busy_page_with_the_hosts_removed_notice_is_a_placeholder():
    decision, media = run(busy(removed='text "has been removed"'), [hashed(IMG, DIFFERENT)])
    assert decision.verdict is Verdict.PLACEHOLDER
    assert media is None
    # As on a finished page, the reported media still shown beats the notice.
    decision, _ = run(busy(removed='text "has been removed"'), [hashed()])
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, True)


def test_a_busy_page_showing_only_the_hosts_known_removed_image_is_a_placeholder():
    decision, _ = run(busy(), [hashed(IMG, STAND_IN)])
    assert decision.verdict is Verdict.PLACEHOLDER


@pytest.mark.parametrize(("fields", "verdict"), [
    ({"status": 404}, Verdict.HTTP_GONE),
    ({"error": ErrorKind.TIMEOUT, "error_detail": "took over 30 s"}, Verdict.TIMEOUT),
    ({"final_url": "http://gallery.test/", "redirect_chain": (PAGE,)}, Verdict.REDIRECT_AWAY),
])
def test_the_visit_error_and_the_pages_status_decide_before_busy(fields, verdict):
    decision, _ = run(busy(**fields), [hashed(IMG, DIFFERENT)])
    assert decision.verdict is verdict


# -- the same picture, other bytes (PDQ, crawler.perceptual) -------------------------------

REF_PDQ = "a5" * 32


def near(bits: int, pdq: str = REF_PDQ) -> str:
    """A PDQ ``bits`` bits away from ``pdq`` (the low ones flipped)."""
    return f"{int(pdq, 16) ^ ((1 << bits) - 1):064x}"


PDQ_REFERENCE = Reference(sha256=REFERENCE, pdq=REF_PDQ)


def pdq_hashed(url: str = THUMB, bits: int = 4, quality: int = 100, *,
               digest: str = DIFFERENT, pdq: Pdq | None = None) -> MediaHash:
    """Media whose bytes differ from the reported file, with its PDQ ``bits`` away."""
    return replace(hashed(url, digest), pdq=pdq or Pdq(near(bits), quality))


def run_pdq(visit: PageVisit, hashes: list[MediaHash], reference: Reference = PDQ_REFERENCE
            ) -> tuple[Decision, MediaHash | None]:
    return decide(visit, hashes, reference=reference, rules=RULES)


def test_a_re_encoding_of_the_reported_picture_is_reencoded_not_changed():
    decision, media = run_pdq(page(media=(THUMB,)), [pdq_hashed(bits=7)])
    assert (decision.verdict, decision.reference_match) == (Verdict.REENCODED, True)
    assert decision.verdict.group is VerdictGroup.SERVED
    assert decision.reason.startswith(f"page shows {THUMB}: matches the reference PDQ (")
    assert "PDQ distance 7 ≤ 31 bits" in decision.reason
    assert media is not None and media.url == THUMB


def test_a_pdq_match_on_a_case_with_a_pdq_only_reference_is_online():
    # No reported bytes are known: nothing says these are other bytes.
    decision, _ = run_pdq(page(media=(THUMB,)), [pdq_hashed(bits=2)],
                          Reference(pdq=REF_PDQ))
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, True)
    assert "matches the reference PDQ" in decision.reason


def test_the_exact_file_is_recorded_rather_than_a_re_encoding_shown_before_it():
    decision, media = run_pdq(page(media=(THUMB, IMG)), [pdq_hashed(), hashed(IMG)])
    assert (decision.verdict, decision.reason) == (
        Verdict.ONLINE, f"page shows {IMG}: matches the reference hash")
    assert media is not None and media.url == IMG


@pytest.mark.parametrize(("media", "why"), [
    (pdq_hashed(bits=32), "hash differs; another picture: PDQ distance 32 > 31 bits"),
    (pdq_hashed(bits=3, quality=20), "PDQ quality 20 is under 50"),
    (pdq_hashed(pdq=Pdq(error="image could not be decoded (truncated file)")),
     "not compared by picture: image could not be decoded (truncated file)"),
    (hashed(THUMB, DIFFERENT), "hash differs; no picture to compare"),
])
def test_another_picture_or_one_not_compared_by_pdq_is_changed_and_says_why(media, why):
    decision, recorded = run_pdq(page(media=(THUMB,)), [media])
    assert (decision.verdict, decision.reference_match) == (Verdict.CHANGED, False)
    assert why in decision.reason, decision.reason
    assert recorded is media


def test_a_truncated_file_never_matches_by_pdq():
    media = replace(pdq_hashed(), truncated=True)
    decision, _ = run_pdq(page(media=(THUMB,)), [media])
    assert decision.verdict is not Verdict.REENCODED and not decision.reference_match


def test_a_re_encoding_still_shown_beats_a_removed_notice():
    notice = 'text "has been removed" in the page'
    decision, media = run_pdq(page(media=(THUMB,), removed=notice), [pdq_hashed()])
    assert (decision.verdict, decision.reference_match) == (Verdict.REENCODED, True)
    assert "matches the reference PDQ" in decision.reason
    assert decision.reason.endswith(f"it also shows the host's 'removed' {notice}")
    assert media is not None and media.url == THUMB


def test_a_notice_over_the_page_beats_a_re_encoding_under_it():
    notice = 'text "has been removed" in an overlay'
    decision, media = run_pdq(page(media=(THUMB,), removed=notice), [pdq_hashed()])
    assert decision.verdict is Verdict.PLACEHOLDER and media is None


def test_a_re_encoding_the_page_no_longer_shows_does_not_beat_a_notice():
    decision, _ = run_pdq(page(media=(IMG, THUMB), shown=1, removed='text "removed" in the page'),
                          [hashed(IMG, STAND_IN), pdq_hashed()])
    assert decision.verdict is Verdict.PLACEHOLDER


def test_a_busy_page_showing_a_re_encoding_is_reencoded_not_incomplete():
    decision, _ = run_pdq(page(media=(THUMB,), busy="requests still open"), [pdq_hashed()])
    assert decision.verdict is Verdict.REENCODED
    decision, _ = run_pdq(page(media=(THUMB,), busy="requests still open"),
                          [pdq_hashed(bits=60)])
    assert decision.verdict is Verdict.INCOMPLETE


def test_a_url_that_serves_a_re_encoding_is_reencoded():
    decision, _ = run_pdq(PageVisit(url=THUMB, main_is_media=True), [pdq_hashed()])
    assert (decision.verdict, decision.reference_match) == (Verdict.REENCODED, True)


def test_an_inline_re_encoding_is_reencoded():
    inline = MediaHash("data:image/webp (inline #1, 900 bytes)", None, DIFFERENT, 900,
                       "image/webp", inline=True, pdq=Pdq(near(5), 100))
    decision, _ = run_pdq(page(media=(inline.url,), inline=(inline,)), [inline])
    assert decision.verdict is Verdict.REENCODED


def test_the_check_records_the_pdq_and_distance_of_its_media():
    _, media = run_pdq(page(media=(THUMB,)), [pdq_hashed(bits=9, quality=88)])
    record = pdq_record(media, PDQ_REFERENCE)
    assert record == PdqRecord(near(9), 88, 9, learns=False)
    assert pdq_record(None, PDQ_REFERENCE) == PdqRecord()


@pytest.mark.parametrize(("quality", "reference", "learns"), [
    (100, Reference(sha256=REFERENCE, learn=True), True),
    (30, Reference(sha256=REFERENCE, learn=True), False),  # a flat picture's PDQ is noise
    (100, Reference(sha256=REFERENCE, pdq=REF_PDQ), False),  # the case has one already
    (100, Reference(sha256=REFERENCE), False),  # PDQ off
])
def test_a_case_learns_its_reference_pdq_from_the_reported_file_only(quality, reference,
                                                                     learns):
    exact = replace(hashed(IMG), pdq=Pdq("0f" * 32, quality))
    _, media = decide(page(), [exact], reference=reference, rules=RULES)
    assert media is exact
    assert pdq_record(media, reference).learns is learns
    # A re-encoding (other bytes) never teaches the reference.
    other = replace(hashed(THUMB, DIFFERENT), pdq=Pdq("0f" * 32, quality))
    assert pdq_record(other, reference).learns is False


def test_media_whose_picture_could_not_be_decoded_is_shown_without_comparison():
    # A time-out, the pixel cap, a damaged file: no conclusion, never a removal.
    undecoded = pdq_hashed(pdq=Pdq(error="image took longer than 10 s to decode",
                                   inconclusive=True))
    decision, _ = run_pdq(page(media=(THUMB, IMG)), [undecoded, pdq_hashed(IMG, bits=90)])
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, None)
    assert f"{THUMB}, whose picture could not be compared" in decision.reason
    assert decision.reason.endswith("not counted as removed")


def test_a_picture_beside_a_notice_that_could_not_be_decoded_is_no_removal():
    notice = 'text "has been removed" in the page'
    undecoded = pdq_hashed(pdq=Pdq(error="image of 12000×12000 pixels is over the cap",
                                   inconclusive=True))
    decision, media = run_pdq(page(media=(THUMB,), removed=notice), [undecoded])
    assert (decision.verdict, decision.reference_match) == (Verdict.ONLINE, None)
    assert decision.reason.endswith(f"it also shows the host's 'removed' {notice}: not counted "
                                    "as removed")
    assert media is undecoded
    # Laid over the page, the notice covers it: the notice wins.
    over = 'text "has been removed" in an overlay'
    decision, _ = run_pdq(page(media=(THUMB,), removed=over), [undecoded])
    assert decision.verdict is Verdict.PLACEHOLDER
