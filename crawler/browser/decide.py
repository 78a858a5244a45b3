"""The verdict of a browser check: pure functions over what the visit saw.

A browser check answers the same question as an HTTP check (is the reported
material still served at this URL?) for pages that only show their media once
their scripts have run. The browser never loads media (crawler.browser.page
blocks it); the page's media URLs are then fetched over the HTTP path, hashed
in memory and compared with the reference hash (`MediaHash`).

The order of the questions:

1. The visit failed (DNS, guard, timeout, crash...): the same transient or
   "never fetched" verdicts as an HTTP check.
2. The page's own status and redirects (HTTP and script navigations): 404,
   451, 5xx, a redirect to the home page or a login... as `classify()`.
3. The page shows the host's "removed" text or element: ``placeholder``.
4. The page was still loading when its settle time ran out (`PageVisit.busy`,
   crawler.browser.settle): one of its media files hashing to the reference is
   ``online`` and only known "removed" images ``placeholder`` (both are what
   a person saw, finished or not); anything else is ``incomplete``
   (transient), never "no media" or ``changed``: what it would have shown
   once done is unknown.
5. The page shows no media at all: ``placeholder``.
6. One of its media files hashes to the reference: ``online``; media that all
   differ: ``changed``; only known "removed" images: ``placeholder``; media
   that are all gone (404/410): ``placeholder``. Without a reference hash,
   media shown means ``online``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from crawler.verdict import Decision, ErrorKind, Observation, PlaceholderRules, classify
from hostwatch.model import Verdict


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
    removed: str | None = None  # the "removed" text or element found
    busy: str | None = None  # still loading when the settle time ran out: why (our words)
    main_is_media: bool = False  # the URL itself answered with media
    popups: int = 0
    requests: int = 0
    blocked: int = 0  # media requests the browser was not allowed to make
    error: ErrorKind | None = None
    error_detail: str | None = None


@dataclass(frozen=True)
class MediaHash:
    """One media URL fetched over the HTTP path and hashed in memory."""

    url: str
    status: int | None = None
    sha256: str | None = None
    length: int = 0
    content_type: str | None = None
    truncated: bool = False
    error: ErrorKind | None = None

    @property
    def usable(self) -> bool:
        return (self.sha256 is not None and self.status is not None
                and 200 <= self.status < 300 and not self.truncated)

    @property
    def gone(self) -> bool:
        return self.status in (404, 410)


NO_RULES = PlaceholderRules()


def decide(visit: PageVisit, hashes: Sequence[MediaHash], *,
           reference_sha256: str | None, rules: PlaceholderRules = NO_RULES
           ) -> tuple[Decision, MediaHash | None]:
    """The verdict of a browser check (see the module docstring), and the
    media file whose hash the check records: the match, else the first
    hashed, else none."""
    if visit.error is not None:
        return classify(Observation(url=visit.url, error=visit.error,
                                    error_detail=visit.error_detail)), None
    if visit.main_is_media:
        return _direct_media(visit, hashes, reference_sha256, rules)
    first = classify(Observation(url=visit.url, status=visit.status, final_url=visit.final_url,
                                 redirect_chain=visit.redirect_chain,
                                 content_type=visit.content_type))
    if first.verdict is not Verdict.ONLINE:
        return first, None
    if visit.removed:
        return Decision(Verdict.PLACEHOLDER,
                        f"page shows the host's 'removed' {visit.removed}"), None
    if visit.busy:
        return _busy_verdict(visit.busy, hashes, reference_sha256, rules)
    if not visit.media:
        return Decision(Verdict.PLACEHOLDER, "page, run in a browser, shows no media"), None
    return _media_verdict(hashes, reference_sha256, rules, "page shows")


def _busy_verdict(busy: str, hashes: Sequence[MediaHash], reference: str | None,
                  rules: PlaceholderRules) -> tuple[Decision, MediaHash | None]:
    """A page still loading: only what it already shows for certain decides."""
    decision, media = _media_verdict(hashes, reference, rules, "page shows")
    usable = [h for h in hashes if h.usable]
    if decision.reference_match or (
            decision.verdict is Verdict.PLACEHOLDER and usable
            and all(h.sha256 in rules.hashes for h in usable)):
        return decision, media
    return Decision(Verdict.INCOMPLETE, f"page was still loading when the settle time ran out "
                                        f"({busy}); not read as removed"), media


def _direct_media(visit: PageVisit, hashes: Sequence[MediaHash], reference: str | None,
                  rules: PlaceholderRules) -> tuple[Decision, MediaHash | None]:
    """The URL is the media file itself: its fetch decides, as an HTTP check's would."""
    fetched = hashes[0] if hashes else None
    if fetched is not None and fetched.error is not None:
        return classify(Observation(url=visit.url, error=fetched.error)), fetched
    if fetched is not None and not fetched.usable and fetched.status is not None \
            and not 200 <= fetched.status < 300:
        return classify(Observation(url=visit.url, status=fetched.status)), fetched
    return _media_verdict(hashes, reference, rules, "the URL is media:")


def _media_verdict(hashes: Sequence[MediaHash], reference: str | None,
                   rules: PlaceholderRules, what: str) -> tuple[Decision, MediaHash | None]:
    decision = _media_decision(hashes, reference, rules, what)
    usable = [h for h in hashes if h.usable]
    if decision.reference_match:
        reference = (reference or "").lower()
        return decision, next(h for h in usable if h.sha256 == reference)
    return decision, usable[0] if usable else (hashes[0] if hashes else None)


def _media_decision(hashes: Sequence[MediaHash], reference: str | None,
                    rules: PlaceholderRules, what: str) -> Decision:
    reference = reference.lower() if reference else None
    usable = [h for h in hashes if h.usable]
    if reference is not None:
        for media in usable:
            if media.sha256 == reference:
                return Decision(Verdict.ONLINE, f"{what} {media.url}: matches the reference hash",
                                True)
    if usable and all(h.sha256 in rules.hashes for h in usable):
        return Decision(Verdict.PLACEHOLDER, f"{what} only a known 'removed' image "
                                             f"({usable[0].url})")
    if usable and reference is not None:
        return Decision(Verdict.CHANGED, f"{what} {len(usable)} media file(s), none matches "
                                         f"the reference hash (first: {usable[0].url})", False)
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
