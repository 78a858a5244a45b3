"""Deciding a check's verdict: pure functions, no Scrapy, no I/O.

The spider turns a response (or a failure) into an `Observation` — status,
redirects, content type, hashes and a few features of the body computed in
memory — and `classify()` decides the verdict. The body itself never reaches
an Observation: it is hashed and scanned in memory and dropped.

A served file is compared with the case's `Reference` (crawler.perceptual):
the same SHA-256 is the reported file (`online`); another SHA-256 whose PDQ
(computed by the spider off the event loop, carried by the Observation) is
within the threshold is the same picture re-encoded (`reencoded`, or
`online` when the case has only a PDQ reference); anything else is
`changed`, and the reason says which hash was compared, the distance, or
why there was no picture to compare. A page, or a body over the size cap,
is served but not compared.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlsplit

from crawler.perceptual import Match, Pdq, Reference
from kernel.model import Verdict

DATA = Path(__file__).with_name("data")

# Bodies larger than this are not scanned for text markers or fingerprinted
# (they are still hashed): placeholder pages are small.
SCAN_LIMIT = 512 * 1024

LOGIN_PATH = re.compile(r"(^|/)(login|log-in|signin|sign-in|sign_in|auth|account/login|session/new)"
                        r"(/|$|\.|\?)", re.IGNORECASE)
REMOVED_NAME = re.compile(r"(?<![0-9a-z])(removed|deleted|unavailable|notfound|not[-_]found|"
                          r"no[-_]image|placeholder|missing|404|gone)(?![0-9a-z])",
                          re.IGNORECASE)
# What shows media in a page as served (before any script runs): without
# any of these, a page with scripts is a shell a browser fills in.
MEDIA_TAGS = (b"<img", b"<video", b"<picture", b"<audio", b"<source", b"<embed", b"<object",
              b"og:image", b"background-image")
TITLE_SCAN = 8192  # the <title> is looked for in the first bytes only
TITLE_MAX = 1024


class ErrorKind(StrEnum):
    """Why a fetch produced no usable response."""

    BLOCKED = "blocked_address"
    NXDOMAIN = "nxdomain"
    DNS_SERVFAIL = "dns_servfail"
    DNS_TIMEOUT = "dns_timeout"
    DNS_NO_ANSWER = "dns_no_answer"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    CONNECTION_LOST = "connection_lost"
    TLS = "tls"
    BAD_RESPONSE = "bad_response"
    REDIRECT_LOOP = "redirect_loop"
    UNSUPPORTED = "unsupported"
    OTHER = "other"


_ERROR_VERDICTS: dict[ErrorKind, Verdict] = {
    ErrorKind.BLOCKED: Verdict.BLOCKED_ADDRESS,
    ErrorKind.NXDOMAIN: Verdict.NXDOMAIN,
    ErrorKind.DNS_SERVFAIL: Verdict.DNS_ERROR,
    ErrorKind.DNS_TIMEOUT: Verdict.DNS_ERROR,
    ErrorKind.DNS_NO_ANSWER: Verdict.DNS_ERROR,
    ErrorKind.TIMEOUT: Verdict.TIMEOUT,
    ErrorKind.REFUSED: Verdict.REFUSED,
    ErrorKind.CONNECTION_LOST: Verdict.REFUSED,
    ErrorKind.TLS: Verdict.TLS_ERROR,
    ErrorKind.BAD_RESPONSE: Verdict.BAD_RESPONSE,
    ErrorKind.REDIRECT_LOOP: Verdict.REDIRECT_LOOP,
    ErrorKind.UNSUPPORTED: Verdict.BAD_RESPONSE,
    ErrorKind.OTHER: Verdict.BAD_RESPONSE,
}


@dataclass(frozen=True)
class BodyFeatures:
    """What is kept of a body: hashes and a few facts, never the bytes."""

    sha256: str
    length: int
    truncated: bool = False
    marker: str | None = None  # first placeholder text marker found
    normalised_sha256: str | None = None  # hash with the requested path removed
    title: str | None = None
    scanned: bool = False  # a page small enough to be scanned (the fields below)
    scripts: int = 0  # <script> tags
    media_tags: int = 0  # tags and properties that show media (MEDIA_TAGS)


@dataclass(frozen=True)
class NotFoundFingerprint:
    """How a host answers a URL that certainly does not exist (soft-404 probe)."""

    status: int
    content_type: str
    normalised_sha256: str | None
    length: int
    title: str | None

    @property
    def soft(self) -> bool:
        """True when the host answers 'not found' with a 2xx (a soft-404)."""
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Observation:
    url: str
    status: int | None = None
    final_url: str | None = None
    redirect_chain: tuple[str, ...] = ()
    content_type: str | None = None
    body: BodyFeatures | None = None
    error: ErrorKind | None = None
    error_detail: str | None = None
    # The served file's PDQ, when the spider decoded it (Reference.needs_pdq).
    pdq: Pdq | None = None


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    reference_match: bool | None = None


@dataclass(frozen=True)
class PlaceholderRules:
    """Known 'removed' images (by SHA-256) and 'removed' texts."""

    hashes: frozenset[str] = frozenset()
    markers: tuple[str, ...] = ()

    @classmethod
    def load(cls, extra_hashes: str = "", extra_markers: str = "") -> PlaceholderRules:
        """The shipped lists plus the user's files (paths; empty = none)."""
        hashes = set(_lines(DATA / "placeholder_hashes.txt"))
        markers = list(_lines(DATA / "placeholder_markers.txt"))
        if extra_hashes:
            hashes.update(_lines(Path(extra_hashes)))
        if extra_markers:
            markers.extend(_lines(Path(extra_markers)))
        bad = [h for h in hashes if not re.fullmatch(r"[0-9a-f]{64}", h.lower())]
        if bad:
            raise ValueError(f"not a SHA-256 hex digest in placeholder hashes: {bad[0]!r}")
        return cls(frozenset(h.lower() for h in hashes), tuple(m.lower() for m in markers))


def _lines(path: Path) -> Iterable[str]:
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def is_textual(content_type: str | None) -> bool:
    if not content_type:
        return False
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith("text/") or kind in {
        "application/xhtml+xml", "application/json", "application/xml"}


def body_features(
    body: bytes,
    *,
    requested_url: str,
    content_type: str | None,
    rules: PlaceholderRules,
    truncated: bool = False,
) -> BodyFeatures:
    """Hash ``body`` and read the few facts classify() needs, in memory."""
    digest = hashlib.sha256(body).hexdigest()
    marker = normalised = title = None
    scripts = media = 0
    scanned = is_textual(content_type) and len(body) <= SCAN_LIMIT
    if scanned:
        lowered = body.lower()
        for candidate in rules.markers:
            if candidate.encode("utf-8") in lowered:
                marker = candidate
                break
        normalised = hashlib.sha256(_without_path(lowered, requested_url)).hexdigest()
        title = _title(lowered[:TITLE_SCAN], body)
        scripts = lowered.count(b"<script")
        media = sum(lowered.count(tag) for tag in MEDIA_TAGS)
    return BodyFeatures(digest, len(body), truncated, marker, normalised, title, scanned,
                        scripts, media)


def _title(lowered_head: bytes, body: bytes) -> str | None:
    """The page title, found with bounded searches: a hostile page full of
    unclosed <title> tags must not cost more than a few microseconds."""
    start = lowered_head.find(b"<title")
    if start < 0:
        return None
    start = lowered_head.find(b">", start, start + 256)
    if start < 0:
        return None
    end = lowered_head.find(b"</title", start, start + TITLE_MAX)
    if end < 0:
        return None
    return body[start + 1:end].strip().decode("utf-8", "replace")[:200] or None


def _without_path(lowered_body: bytes, url: str) -> bytes:
    """The body with every echo of the requested path removed (soft-404 pages
    often repeat what was asked for)."""
    path = urlsplit(url).path
    pieces = {path, unquote(path), path.rsplit("/", 1)[-1], unquote(path.rsplit("/", 1)[-1])}
    out = lowered_body
    for piece in sorted((p for p in pieces if p and p != "/"), key=len, reverse=True):
        out = out.replace(piece.lower().encode("utf-8", "replace"), b"")
    return out


def matches_not_found(body: BodyFeatures, content_type: str | None,
                      fingerprint: NotFoundFingerprint) -> bool:
    """Does a 2xx body look like the host's own 'not found' page?"""
    if not fingerprint.soft or body.normalised_sha256 is None:
        return False
    if _media_type(content_type) != _media_type(fingerprint.content_type):
        return False
    if body.normalised_sha256 == fingerprint.normalised_sha256:
        return True
    if body.title and fingerprint.title and body.title == fingerprint.title:
        bigger = max(body.length, fingerprint.length, 1)
        return abs(body.length - fingerprint.length) / bigger <= 0.1
    return False


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_home_or_login(url: str, original: str) -> str | None:
    """Where a redirect went, if it went away from the reported item.

    http -> https and www. changes of the same path are not "away"."""
    parts = urlsplit(url)
    asked = urlsplit(original)
    if (parts.path or "/") == (asked.path or "/"):
        return None
    if parts.path in ("", "/"):
        same_site = parts.netloc.removeprefix("www.") == asked.netloc.removeprefix("www.")
        return "the site's home page" if same_site else "another site's home page"
    if LOGIN_PATH.search(parts.path):
        return "a login page"
    return None


def classify(
    obs: Observation,
    *,
    reference: Reference | None = None,
    rules: PlaceholderRules = PlaceholderRules(),
    not_found: NotFoundFingerprint | None = None,
) -> Decision:
    """The verdict of one check. See DESIGN.md, "Verdicts and case state"."""
    if obs.error is not None:
        detail = f": {obs.error_detail}" if obs.error_detail else ""
        return Decision(_ERROR_VERDICTS[obs.error], f"{obs.error.value}{detail}")
    status = obs.status
    if status is None:
        return Decision(Verdict.BAD_RESPONSE, "no status")
    if status in (404, 410):
        return Decision(Verdict.HTTP_GONE, f"HTTP {status}")
    if status == 451:
        return Decision(Verdict.LEGAL_BLOCK, "HTTP 451 Unavailable For Legal Reasons")
    if status == 429:
        return Decision(Verdict.SERVER_ERROR, "HTTP 429: rate limited")
    if status >= 500:
        return Decision(Verdict.SERVER_ERROR, f"HTTP {status}")
    if 400 <= status < 500:
        # 401/403 (bot walls, geo-blocks), 408 and the like say nothing about
        # whether the material is still there.
        return Decision(Verdict.ACCESS_DENIED, f"HTTP {status}: the host refused the request")
    if not 200 <= status < 300:
        return Decision(Verdict.BAD_RESPONSE, f"HTTP {status} without a usable redirect")
    final = obs.final_url or obs.url
    if obs.redirect_chain:
        away = _is_home_or_login(final, obs.url)
        if away:
            return Decision(Verdict.REDIRECT_AWAY, f"redirected to {away}: {final}")
    body = obs.body
    if body is not None and body.sha256 in rules.hashes:
        return Decision(Verdict.PLACEHOLDER, "body is a known 'removed' image")
    if body is not None and body.marker:
        return Decision(Verdict.PLACEHOLDER, f"page says {body.marker!r}")
    final_name = urlsplit(final).path.rsplit("/", 1)[-1]
    if (obs.redirect_chain and final_name != urlsplit(obs.url).path.rsplit("/", 1)[-1]
            and REMOVED_NAME.search(final_name)):
        return Decision(Verdict.PLACEHOLDER, f"redirected to a 'removed' file: {final}")
    if body is not None and not_found is not None and matches_not_found(
            body, obs.content_type, not_found):
        return Decision(Verdict.PLACEHOLDER, "same as the host's page for a missing URL (soft-404)")
    return _served(obs, reference)


def _served(obs: Observation, reference: Reference | None) -> Decision:
    body = obs.body
    if reference is None or not reference.known or body is None:
        return Decision(Verdict.ONLINE, "served")
    if is_textual(obs.content_type):
        # A page, not the reported file: an HTTP check cannot compare it.
        return Decision(Verdict.ONLINE, "served a page; the reference is a file", None)
    if body.truncated:
        return Decision(Verdict.ONLINE, f"served; body over the cap, first {body.length} "
                                        "bytes hashed, no comparison", None)
    comparison = reference.compare(body.sha256, obs.pdq)
    if comparison.match is Match.SHA256:
        return Decision(Verdict.ONLINE, "served; matches the reference hash", True)
    if comparison.match is Match.PDQ:
        if reference.sha256 is None:
            # Only a PDQ was reported: a picture match is all there is to find.
            return Decision(Verdict.ONLINE, f"served; matches the reference PDQ "
                                            f"({comparison.reason})", True)
        return Decision(Verdict.REENCODED, f"served with other bytes; {comparison.reason} "
                                           "(the reported picture, re-encoded)", True)
    if comparison.match is Match.UNKNOWN:
        # Other bytes that may be the picture, not decoded within hostwatch's
        # limits (a time-out, the pixel cap, a damaged file): as for a body
        # over the size cap, no removal can be read from it.
        return Decision(Verdict.ONLINE, f"served; {comparison.reason}: not counted as "
                                        "removed", None)
    return Decision(Verdict.CHANGED,
                    f"served, but not the reported file ({comparison.reason})", False)
