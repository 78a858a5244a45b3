"""The verdict of a browser check: pure functions over what the visit saw.

A browser check answers the same question as an HTTP check (is the reported
material still served at this URL?) for pages that only show their media once
their scripts have run. The browser never loads media (crawler.browser.page
blocks it); the page's media URLs are then fetched over the HTTP path, hashed
in memory and compared with the case's `crawler.perceptual.Reference`
(`MediaHash`): its SHA-256, and its PDQ when the reference has one (or is
to learn one). "Matches" below means either: the reference SHA-256 (the very
file reported) or, for a file whose bytes differ, a PDQ within the
reference's threshold (the same picture, re-encoded: recompressed, WebP,
resized...). Where both kinds match, the SHA-256 match is the one recorded.
A match by SHA-256 is ``online``; a match by PDQ only is ``reencoded`` when
the reference has a SHA-256 (other bytes than those reported, the same
picture), and ``online`` when the reference is a PDQ alone (there are no
reported bytes to differ from). The reason names the hash that matched, and
the PDQ distance.

The order of the questions:

1. The visit failed (DNS, guard, timeout, crash...): the same transient or
   "never fetched" verdicts as an HTTP check.
2. The page's own status and redirects (HTTP and script navigations): 404,
   451, 5xx, a redirect to the home page or a login... as `classify()`; and
   a single-page app that left the reported route for its home or a login
   route by itself (`route_away`): ``redirect_away``.
3. The page shows the host's "removed" text or element: ``placeholder``,
   unless the page, when read, also shows media that matches the
   reference (by SHA-256 or by PDQ): then ``online`` (or ``reencoded``),
   and the reason says where the notice was too
   (a notice in a third-party frame, such as a comment "deleted" in a
   comments widget, does not take the photo down). A notice laid over the
   page itself (an overlay of the main document) still wins: it covers
   the media. Media the page only asked for, or showed only before it was
   read (a photo replaced by the notice), never beat a notice. A picture
   shown beside the notice that could not be decoded within the PDQ limits
   (crawler.perceptual: inconclusive) is ``online`` without comparison.
4. The page was still loading when its settle time ran out
   (`PageVisit.busy`, crawler.browser.settle): one of its media files
   matching the reference is ``online`` (or ``reencoded``) and only known
   "removed" images ``placeholder`` (both are what a person saw, finished or
   not), and so is usable media on a case without a reference hash
   (``online``: media shown, nothing to compare, as on a page that is done);
   anything else is ``incomplete`` (transient), never "no media" or
   ``changed``: what it would have shown once done is unknown. The same for
   a page whose document was longer than HOSTWATCH_MAX_BODY
   (`PageVisit.truncated`): the browser read its first HOSTWATCH_MAX_BODY
   bytes as the page; what the rest would show is unknown.
5. The page shows no media at all: ``placeholder``.
6. One of its media files matches the reference: ``online`` (or
   ``reencoded``, as above); an inline (data:/blob:) media shown that could
   not be read or compared, and no match: ``online`` without a comparison
   (it may be the reported one), and so is a picture that could not be
   decoded within the PDQ limits (inconclusive: never a removal); media
   that all differ: ``changed``, the
   reason saying how the first differs (another picture and its PDQ
   distance, a PDQ of too low a quality, no PDQ: why); only known "removed"
   images: ``placeholder``; media that are all gone (404/410):
   ``placeholder``. Without a reference hash, media shown means ``online``.

The same rules hold when the URL is itself a media file
(`PageVisit.main_is_media`): its fetch decides.

A page the rules make the browser act on first (a consent click,
crawler.browser.actions) gets the same verdicts; `with_actions` adds what
the actions did to the reason, so the record says how the page was seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from crawler.perceptual import Comparison, Match, Pdq, Reference
from crawler.verdict import LOGIN_PATH, Decision, ErrorKind, Observation, PlaceholderRules, classify
from kernel.model import Verdict
from kernel.urls import document_url, url_route


@dataclass(frozen=True)
class ActionNote:
    """What one of the host's actions did, in hostwatch's words and the rule's selector."""

    text: str  # "clicked button#accept-all", "wait_for main img: not seen in 5 s"
    acted: bool = False  # it changed the page (a click): the page settles again

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class PageVisit:
    """What one page visit in the browser saw (never any body)."""

    url: str
    status: int | None = None
    final_url: str | None = None
    redirect_chain: tuple[str, ...] = ()  # HTTP redirects, then script navigations
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    peer_ip: str | None = None
    media: tuple[str, ...] = ()  # media URLs the page shows or asked for, page order
    # How many of `media` (the first ones) the page showed when it was read;
    # the rest it showed only earlier or only asked for. None: all of them.
    shown: int | None = None
    removed: str | None = None  # the "removed" text or element found, and where
    inline: tuple[MediaHash, ...] = ()  # data:/blob: media in `media`, hashed in the page
    busy: str | None = None  # still loading when the settle time ran out: why (our words)
    truncated: bool = False  # the document was cut at HOSTWATCH_MAX_BODY (read as far as that)
    main_is_media: bool = False  # the URL itself answered with media
    popups: int = 0
    requests: int = 0
    blocked: int = 0  # media requests the browser was not allowed to make
    actions: tuple[ActionNote, ...] = ()  # the host's consent actions, in order
    error: ErrorKind | None = None
    error_detail: str | None = None
    # The address bar when the page was read (page.url): text the page can
    # write, read only to see whether an app left the reported route
    # (`route_away`); never stored.
    address: str | None = None


@dataclass(frozen=True)
class MediaHash:
    """One media URL fetched over the HTTP path and hashed in memory, or one
    inline (data:/blob:) media read in the page and hashed in memory
    (crawler.browser.read; ``url`` is then a descriptor without content)."""

    url: str
    status: int | None = None
    sha256: str | None = None
    length: int = 0
    content_type: str | None = None
    truncated: bool = False
    error: ErrorKind | None = None
    inline: bool = False  # read in the page: no HTTP status
    # The file's PDQ (hash and quality, or why there is none), when the
    # case's reference needed one (`Reference.needs_pdq`); None: not computed.
    pdq: Pdq | None = None

    @property
    def usable(self) -> bool:
        return (self.sha256 is not None and not self.truncated and self.error is None
                and (self.inline or (self.status is not None and 200 <= self.status < 300)))

    @property
    def gone(self) -> bool:
        return self.status in (404, 410)


NO_RULES = PlaceholderRules()
NO_REFERENCE = Reference()


def decide(visit: PageVisit, hashes: Sequence[MediaHash], *,
           reference: Reference | None, rules: PlaceholderRules = NO_RULES
           ) -> tuple[Decision, MediaHash | None]:
    """The verdict of a browser check (see the module docstring), and the
    media file whose hash the check records: the match (by SHA-256 rather
    than by PDQ), else the first hashed, else none."""
    reference = reference or NO_REFERENCE
    if visit.error is not None:
        return classify(Observation(url=visit.url, error=visit.error,
                                    error_detail=visit.error_detail)), None
    if visit.main_is_media:
        return _direct_media(visit, hashes, reference, rules)
    first = classify(Observation(url=visit.url, status=visit.status, final_url=visit.final_url,
                                 redirect_chain=visit.redirect_chain,
                                 content_type=visit.content_type))
    if first.verdict is not Verdict.ONLINE:
        return first, None
    away = route_away(visit)
    if away:
        return Decision(Verdict.REDIRECT_AWAY, f"the app left the reported route for {away}: "
                                               f"{visit.url}"), None
    if visit.removed:
        return _notice_verdict(visit, hashes, reference)
    if visit.busy:
        return _busy_verdict(f"page was still loading when the settle time ran out "
                             f"({visit.busy})", hashes, reference, rules)
    if visit.truncated:
        decision, media = _busy_verdict(TRUNCATED, hashes, reference, rules)
        if decision.verdict is not Verdict.INCOMPLETE:
            decision = replace(decision, reason=f"{decision.reason}; {TRUNCATED}")
        return decision, media
    if not visit.media:
        return Decision(Verdict.PLACEHOLDER, "page, run in a browser, shows no media"), None
    return _media_verdict(hashes, reference, rules, "page shows")


def compare(media: MediaHash, reference: Reference) -> Comparison:
    """How one hashed media file compares with the reference."""
    return reference.compare(media.sha256, media.pdq)


def best_match(hashes: Sequence[MediaHash], reference: Reference
               ) -> tuple[MediaHash, Comparison] | None:
    """The usable media that matches the reference, by SHA-256 first (the
    very file reported beats a re-encoding of it), else by PDQ; None when
    none matches (or there is no reference to match)."""
    if not reference.known:
        return None
    found: tuple[MediaHash, Comparison] | None = None
    for media in hashes:
        if not media.usable:
            continue
        comparison = compare(media, reference)
        if comparison.match is Match.SHA256:
            return media, comparison
        if comparison.match is Match.PDQ and found is None:
            found = media, comparison
    return found


def _matched(what: str, media: MediaHash, comparison: Comparison, reference: Reference,
             also: str = "") -> Decision:
    """The decision for media that matches the reference (`best_match`)."""
    if comparison.match is Match.SHA256:
        # The wording of every SHA-256 match since before PDQ: "hash" is the
        # file's SHA-256, and reasons already recorded read the same.
        return Decision(Verdict.ONLINE, f"{what} {media.url}: matches the reference hash{also}",
                        True)
    # Other bytes, the same picture: re-encoded when the reported bytes are
    # known; with a PDQ-only reference there are no bytes to differ from.
    verdict = Verdict.REENCODED if reference.sha256 else Verdict.ONLINE
    return Decision(verdict, f"{what} {media.url}: matches the reference PDQ "
                             f"({comparison.reason}){also}", True)


@dataclass(frozen=True)
class PdqRecord:
    """The PDQ fields a browser check records for its media (`pdq_record`)."""

    hash: str | None = None
    quality: int | None = None
    distance: int | None = None  # to the reference PDQ, when compared
    learns: bool = False  # the case learns its reference PDQ from this check


def pdq_record(media: MediaHash | None, reference: Reference) -> PdqRecord:
    """What a check records of the PDQ of the media it records (`decide`):
    its hash, quality and distance to the reference; and whether the case
    learns its reference PDQ from it: the media is the reported file (its
    SHA-256 matched), the case has no reference PDQ yet, and the hash is of
    usable quality (a flat picture's PDQ is noise)."""
    if media is None or media.pdq is None:
        return PdqRecord()
    comparison = compare(media, reference)
    pdq = media.pdq
    return PdqRecord(pdq.hash, pdq.quality, comparison.distance,
                     reference.learns(media.sha256, pdq))


def _notice_verdict(visit: PageVisit, hashes: Sequence[MediaHash], reference: Reference
                    ) -> tuple[Decision, MediaHash | None]:
    """A "removed" notice, unless the page still shows the reported media
    (or a re-encoding of it) beside it (point 3 of the module docstring)."""
    notice = f"the host's 'removed' {visit.removed}"
    shown = set(visit.media if visit.shown is None else visit.media[:visit.shown])
    beside = [h for h in hashes if h.inline or h.url in shown]
    found = best_match(beside, reference)
    if found is not None and not _over_the_page(visit.removed or ""):
        media, comparison = found
        return _matched("page shows", media, comparison, reference,
                        f"; it also shows {notice}"), media
    undecided = next((h for h in beside if h.usable
                      and compare(h, reference).match is Match.UNKNOWN), None)
    if undecided is not None and not _over_the_page(visit.removed or ""):
        # A picture beside the notice that may be the reported one (not
        # decoded within the limits): a hoster earns no removal with it.
        return Decision(Verdict.ONLINE, f"page shows {undecided.url}, whose picture could not "
                                        f"be compared ({compare(undecided, reference).reason}); "
                                        f"it also shows {notice}: not counted as removed",
                        None), undecided
    return Decision(Verdict.PLACEHOLDER, f"page shows {notice}"), None


# Where crawler.browser.read.notice_place puts a notice laid over the page
# itself (our words, at the end of the notice's description): it covers
# what is under it, so a person sees the notice, not the media.
_OVER_THE_PAGE = ("in an overlay", "in an overlay in an open shadow root",
                  "in an overlay in a closed shadow root")


def _over_the_page(removed: str) -> bool:
    return removed.endswith(_OVER_THE_PAGE)


def route_away(visit: PageVisit) -> str | None:
    """Where a single-page app went by itself, if it left the reported route
    (``#/photo/21``, ``#!/item/9``: kernel.urls) for its home route or a
    login route: the same rule as an HTTP redirect (`classify`), read from
    the address bar, since a route change sends no request. Another route is
    not "away": the page is then judged by what it shows. Only while the
    document is the one the browser was sent: a path the page wrote with the
    History API is not read (as for every URL the page writes)."""
    reported = url_route(visit.url)
    if reported is None or visit.address is None:
        return None
    if document_url(visit.address) != document_url(visit.final_url or visit.url):
        return None
    shown = _route_key(visit.address.partition("#")[2])
    if shown == _route_key(reported):
        return None
    if shown == "/":
        return "its home route"
    if LOGIN_PATH.search(shown.partition("?")[0]):
        return "a login route"
    return None


def _route_key(fragment: str) -> str:
    """One spelling per route: "#!/a/", "#/a" and "#!a" are one route "/a";
    no route, "#/", "#!" and "#!/" are the home route "/"."""
    return "/" + fragment.removeprefix("!").strip("/")


def with_actions(decision: Decision, visit: PageVisit) -> Decision:
    """The decision, its reason followed by what the host's actions did (if any ran)."""
    if not visit.actions:
        return decision
    notes = ", ".join(str(note) for note in visit.actions)
    return replace(decision, reason=f"{decision.reason}; consent actions: {notes}")


TRUNCATED = "the page's document is longer than HOSTWATCH_MAX_BODY: read as far as that"


def _busy_verdict(why: str, hashes: Sequence[MediaHash], reference: Reference,
                  rules: PlaceholderRules) -> tuple[Decision, MediaHash | None]:
    """A page still loading (or only partly read: ``why``): only what it
    already shows for certain decides."""
    decision, media = _media_verdict(hashes, reference, rules, "page shows")
    usable = [h for h in hashes if h.usable]
    if decision.reference_match or (
            not reference.known and usable and decision.verdict is Verdict.ONLINE) or (
            decision.verdict is Verdict.PLACEHOLDER and usable
            and all(h.sha256 in rules.hashes for h in usable)):
        return decision, media
    return Decision(Verdict.INCOMPLETE, f"{why}; not read as removed"), media


def _direct_media(visit: PageVisit, hashes: Sequence[MediaHash], reference: Reference,
                  rules: PlaceholderRules) -> tuple[Decision, MediaHash | None]:
    """The URL is the media file itself: its fetch decides, as an HTTP check's would."""
    fetched = hashes[0] if hashes else None
    if fetched is not None and fetched.error is not None:
        return classify(Observation(url=visit.url, error=fetched.error)), fetched
    if fetched is not None and not fetched.usable and fetched.status is not None \
            and not 200 <= fetched.status < 300:
        return classify(Observation(url=visit.url, status=fetched.status)), fetched
    return _media_verdict(hashes, reference, rules, "the URL is media:")


def _media_verdict(hashes: Sequence[MediaHash], reference: Reference,
                   rules: PlaceholderRules, what: str) -> tuple[Decision, MediaHash | None]:
    found = best_match(hashes, reference)
    if found is not None:
        media, comparison = found
        return _matched(what, media, comparison, reference), media
    usable = [h for h in hashes if h.usable]
    decision = _media_decision(hashes, usable, reference, rules, what)
    return decision, usable[0] if usable else (hashes[0] if hashes else None)


def _media_decision(hashes: Sequence[MediaHash], usable: Sequence[MediaHash],
                    reference: Reference, rules: PlaceholderRules, what: str) -> Decision:
    """Media none of which matches the reference (`_media_verdict`)."""
    known = reference.known
    # An inline media shown but not read (a blob: whose Blob was let go, a
    # MediaSource stream, a data: URL that would not decode, one over the
    # size limit) may be the reported one: no removal can be read from the rest.
    unread = next((h for h in hashes if h.inline and not h.usable), None)
    if unread is not None and (known or not usable
                               or all(h.sha256 in rules.hashes for h in usable)):
        return Decision(Verdict.ONLINE, f"{what} {unread.url}, which could not be compared "
                                        "(read in the page); no other media matches the "
                                        "reference hash", None)
    if usable and all(h.sha256 in rules.hashes for h in usable):
        return Decision(Verdict.PLACEHOLDER, f"{what} only a known 'removed' image "
                                             f"({usable[0].url})")
    undecided = next((h for h in usable if compare(h, reference).match is Match.UNKNOWN), None)
    if undecided is not None:
        # Other bytes that may be the picture, not decoded within the limits
        # (a time-out, the pixel cap, a damaged file): no removal read from it.
        return Decision(Verdict.ONLINE, f"{what} {undecided.url}, whose picture could not be "
                                        f"compared ({compare(undecided, reference).reason}); "
                                        "no media matches the reference: not counted as "
                                        "removed", None)
    if usable and known:
        first = usable[0]
        return Decision(Verdict.CHANGED, f"{what} {len(usable)} media file(s), none matches "
                                         f"the reference hash (first: {first.url}: "
                                         f"{compare(first, reference).reason})", False)
    if usable:
        return Decision(Verdict.ONLINE, f"{what} media ({usable[0].url}); no reference hash "
                                        "to compare")
    if hashes and all(h.gone for h in hashes):
        return Decision(Verdict.PLACEHOLDER, f"{what} media that is gone "
                                             f"(HTTP {hashes[0].status}: {hashes[0].url})")
    # The page shows media that could not be fetched to compare: still shown.
    detail = f" ({hashes[0].url})" if hashes else ""
    return Decision(Verdict.ONLINE, f"{what} media{detail}; it could not be fetched to "
                                    "compare with the reference", None)
