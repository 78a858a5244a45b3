"""XARF v4 abuse reports for notices to hosters (pure: facts in, dict out).

Format source: the XARF v4 specification and JSON schemas of the XARF
project, read in the public repository ``xarf/xarf-spec`` (MIT licence) at
commit 37820dace8ac6a9495d33886abc9f94e3d1691fe (2026-03-20):
``schemas/v4/xarf-core.json`` (the fields of every report),
``schemas/v4/types/content-base.json`` (the ``content`` category),
``schemas/v4/types/content-csam.json`` (type ``csam``),
``schemas/v4/xarf-v4-master.json`` (the valid category/type pairs),
``docs/specification.md`` and ``docs/implementation-guide.md``. A copy of the
schemas is in ``tests/data/xarf/``; the tests validate every report built
here against them.

One report per case (the spec: "one incident = one report"). What a report
carries (never any material: no body, no evidence item, no thumbnail):

==================  ==========================================================
``xarf_version``    ``4.2.0``, the version of the spec's own examples
``report_id``       a fresh UUID v4, given by the caller
``timestamp``       when the material was last seen served (the case's last
                    served check), else when it was reported
``reporter``        the hotline (org, contact e-mail, domain)
``sender``          who transmits the report; the reporter unless given
``source_identifier`` the IP address the check connected to, else the host
``category/type``   ``content`` / ``csam``; on request ``content`` / ``ncii``,
                    hostwatch's own type, NOT part of XARF v4 (see below)
``url``             the URL as the crawler requests it, as an RFC 3986 URI
                    (IDN host in punycode; non-ASCII, spaces, quotes and the
                    like percent-encoded as UTF-8)
``domain``          the URL's host, when it fits the schema's pattern (not
                    for IP addresses or punycode labels with ``--``)
``hosting_provider``  the hoster of record's legal name
``asn``             the AS the check's address was announced by
``nameservers``     the zone's nameservers, when attribution recorded them
``verified_at``     the last check that found the material served, with
``verification_method`` ``automated_crawler``
``classification``  required by ``csam``: baseline / A1 / A2 / B1 / B2; hostwatch
                    does not record it, so the caller must give it. Not in
                    ``ncii`` reports (a child-abuse classification)
``detection_method`` ``manual_review``: a hotline analyst assessed the report;
                    hostwatch's checks only confirm that it is still served
``media_type``      from the served check's Content-Type (image, video, audio)
``hash_values``     ``sha256``: the reference hash of the reported file
``content_removed`` false when online or reappeared, true when removed,
                    absent while a removal is pending (not yet known)
``evidence_source`` ``crawler``; no ``evidence`` items are attached (the spec:
                    "for csam and csem, do not attach visual content")
``description``     the case reference, its state, and the last check's
                    verdict, time, HTTP status, address and AS, in words
``tags``            ``csam:ai_generated`` for ``csam_ai`` cases;
                    ``xarf-extension:ncii`` on every ``ncii`` report, plus
                    ``ncii:deepfake`` (deepfake_adult) or ``ncii:sextortion``
==================  ==========================================================

Category mapping (hostwatch -> XARF v4):

================  ===================  ========================================
hostwatch         XARF category/type   note
================  ===================  ========================================
csam              content / csam
csam_ai           content / csam       tagged ``csam:ai_generated``
ncii              content / ncii [1]   only when asked (``with_ncii``; the
                                       command's ``--with-ncii``), else
                                       skipped; tagged ``xarf-extension:ncii``
deepfake_adult    content / ncii [1]   as ncii, also tagged ``ncii:deepfake``
sextortion        content / ncii [1]   as ncii, also tagged ``ncii:sextortion``
terrorist         (none: skipped)      no XARF v4 type
other             (none: skipped)      no XARF v4 type
================  ===================  ========================================

[1] ``ncii`` is a hostwatch extension, not an XARF v4 type. XARF v4 has no
registered type for non-consensual intimate images of adults (``csem`` is
child exploitation only), and the official master schema accepts only its
listed category/type pairs: "any category/type combination not in this table
must be rejected as invalid" (implementation guide). A receiver that
validates strictly against the official v4 schema WILL reject these reports;
agree with the receiver that it accepts type ``ncii`` before sending any.
An ``ncii`` report is meant to validate as ``content-base.json`` (the fields
every content report shares, ``url`` required) and carries the same fields
as a csam report except ``classification``; its tags say that it uses the
extension and which kind of intimate-image case it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kernel.errors import ReportError
from kernel.model import CaseState, Category, Verdict, VerdictGroup

__all__ = [
    "CLASSIFICATIONS", "EXTENSION_TAG", "NCII_TYPES", "XARF_TYPES", "XARF_VERSION", "CaseFacts",
    "HosterFacts", "NoXarfType", "Party", "SeenFacts", "XarfError", "build_report", "uri_of",
    "xarf_type",
]

XARF_VERSION = "4.2.0"

# hostwatch category -> XARF v4 (category, type); a category missing here has
# no XARF v4 type (see the module docstring).
XARF_TYPES: dict[Category, tuple[str, str]] = {
    Category.CSAM: ("content", "csam"),
    Category.CSAM_AI: ("content", "csam"),
}

# hostwatch's own type for intimate-image cases: NOT an XARF v4 type (see the
# module docstring), so built only when the caller asks (``with_ncii``).
NCII_TYPES: dict[Category, tuple[str, str]] = {
    Category.NCII: ("content", "ncii"),
    Category.DEEPFAKE_ADULT: ("content", "ncii"),
    Category.SEXTORTION: ("content", "ncii"),
}
# On every ncii report, so that a receiver sees the type is an extension.
EXTENSION_TAG = "xarf-extension:ncii"
_NCII_KIND_TAGS = {Category.DEEPFAKE_ADULT: "ncii:deepfake",
                   Category.SEXTORTION: "ncii:sextortion"}

# content-csam.json: "Legal classification category for the material".
CLASSIFICATIONS = ("baseline", "A1", "A2", "B1", "B2")

DESCRIPTION_MAX = 1000  # xarf-core.json: description maxLength
ORG_MAX = 200  # xarf-core.json: contact_info.org maxLength

# content-base.json: domain pattern (lower-case ASCII; no "--" inside a label).
_DOMAIN = re.compile(r"^([a-z0-9]+(-[a-z0-9]+)*\.)+[a-z]{2,}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
# RFC 3986: what may stand in a path or query as it is; "%" only as "%XX".
_URI_KEEP = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2}")
_MEDIA = {"image": "image", "video": "video", "audio": "audio"}


class XarfError(ReportError, ValueError):
    """Facts that cannot make a valid XARF v4 report; the message says which."""


class NoXarfType(XarfError):
    """The case's category has no XARF v4 type."""


@dataclass(frozen=True)
class Party:
    """A reporter or sender: xarf-core.json ``contact_info``."""

    org: str
    contact: str  # e-mail address
    domain: str  # the organisation's domain name

    def problems(self) -> list[str]:
        """What is wrong with this identity, per field ([] when it is usable)."""
        found: list[str] = []
        if not self.org.strip():
            found.append("org: missing")
        elif len(self.org) > ORG_MAX:
            found.append(f"org: longer than {ORG_MAX} characters")
        if not self.contact.strip():
            found.append("contact: missing")
        elif not _EMAIL.match(self.contact):
            found.append(f"contact: not an e-mail address: {self.contact!r}")
        if not self.domain.strip():
            found.append("domain: missing")
        elif not _is_hostname(self.domain):
            found.append(f"domain: not a domain name: {self.domain!r}")
        return found

    def as_dict(self) -> dict[str, str]:
        return {"org": self.org, "contact": self.contact, "domain": self.domain}


@dataclass(frozen=True)
class CaseFacts:
    """One case, as the store has it."""

    source: str
    external_id: str
    url: str  # the normal form: what the crawler requests (kernel.urls)
    host: str
    category: str
    state: str
    reported_at: datetime
    ref_sha256: str | None = None
    last_verdict: str | None = None
    last_checked_at: datetime | None = None
    last_served_at: datetime | None = None


@dataclass(frozen=True)
class SeenFacts:
    """The attribution of record: what the check behind it saw."""

    ip: str | None
    hostname: str | None = None
    asn: int | None = None
    nameservers: tuple[str, ...] = ()
    checked_at: datetime | None = None
    verdict: str | None = None
    http_status: int | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class HosterFacts:
    """The hoster of record (the ``hosters`` row)."""

    key: str
    legal_name: str
    country: str | None = None
    abuse: str | None = None


def xarf_type(category: str, *, with_ncii: bool = False) -> tuple[str, str] | None:
    """The XARF (category, type) of a hostwatch category, or None.

    With ``with_ncii`` the intimate-image categories get hostwatch's own
    type ``content``/``ncii``, which is not part of XARF v4.
    """
    try:
        known = Category(category)
    except ValueError:
        return None
    return XARF_TYPES.get(known) or (NCII_TYPES.get(known) if with_ncii else None)


def build_report(case: CaseFacts, seen: SeenFacts, hoster: HosterFacts, *,
                 reporter: Party, report_id: str, sender: Party | None = None,
                 classification: str | None = None,
                 with_ncii: bool = False) -> dict[str, Any]:
    """The XARF v4 report of one case, as a JSON-ready dict.

    ``with_ncii``: build intimate-image cases as hostwatch's extension type
    ``ncii`` (not XARF v4; see the module docstring) instead of refusing
    them. ``classification`` is used by csam reports only.

    Raises `NoXarfType` for a category without an XARF v4 type (or without
    the extension type asked for) and `XarfError` for a bad reporter/sender,
    a csam case without a known ``classification``, or a case without an
    address or host.
    """
    kind = xarf_type(case.category, with_ncii=with_ncii)
    if kind is None:
        hint = (": it has hostwatch's own type ncii, not in XARF v4, only when asked "
                "for (with_ncii)" if xarf_type(case.category, with_ncii=True) else "")
        raise NoXarfType(f"category {case.category!r} has no XARF v4 type{hint}")
    for role, party in (("reporter", reporter), ("sender", sender)):
        if party is not None and (problems := party.problems()):
            raise XarfError(f"{role} " + "; ".join(problems))
    if kind[1] == "csam" and classification not in CLASSIFICATIONS:
        raise XarfError("an XARF csam report needs a classification, one of "
                        f"{', '.join(CLASSIFICATIONS)}; got {classification!r}")
    source = seen.ip or seen.hostname or case.host
    if not source:
        raise XarfError(f"case {case.source}/{case.external_id}: no address or host")

    report: dict[str, Any] = {
        "xarf_version": XARF_VERSION,
        "report_id": report_id,
        "timestamp": _iso(case.last_served_at or case.reported_at),
        "reporter": reporter.as_dict(),
        "sender": (sender or reporter).as_dict(),
        "source_identifier": source,
        "category": kind[0],
        "type": kind[1],
        "url": uri_of(case.url),
        # csam only: a child-abuse classification means nothing for ncii.
        **({"classification": classification} if kind[1] == "csam" else {}),
        "detection_method": "manual_review",
        "evidence_source": "crawler",
        "hosting_provider": hoster.legal_name,
        "description": _description(case, seen),
    }
    if _DOMAIN.match(case.host):
        report["domain"] = case.host
    if seen.asn is not None and 1 <= seen.asn <= 4294967295:
        report["asn"] = seen.asn
    if seen.nameservers:
        report["nameservers"] = list(seen.nameservers)
    if case.last_served_at is not None:
        report["verified_at"] = _iso(case.last_served_at)
        report["verification_method"] = "automated_crawler"
    media = _media_type(seen)
    if media:
        report["media_type"] = media
    if case.ref_sha256 and _SHA256.match(case.ref_sha256):
        report["hash_values"] = {"sha256": case.ref_sha256.lower()}
    removed = {CaseState.ONLINE.value: False, CaseState.REAPPEARED.value: False,
               CaseState.REMOVED.value: True}.get(case.state)
    if removed is not None:
        report["content_removed"] = removed
    tags = _tags(Category(case.category), kind[1])
    if tags:
        report["tags"] = tags
    return report


def _tags(category: Category, xarf_kind: str) -> list[str]:
    if xarf_kind == "ncii":
        kind_tag = _NCII_KIND_TAGS.get(category)
        return [EXTENSION_TAG, *([kind_tag] if kind_tag else [])]
    return ["csam:ai_generated"] if category == Category.CSAM_AI else []


def uri_of(url: str) -> str:
    """``url`` (already in hostwatch's normal form) as an RFC 3986 URI.

    The normal form keeps path and query as reported but for spaces and
    non-ASCII; here every other character a URI may not hold (quotes, ``<``,
    ``>``, ``{``, ``|``, ``\\``, ``^``, backtick, brackets, a ``%`` that starts
    no escape) is percent-encoded as UTF-8 too. Decoding gives back the
    reported characters.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _quote_rest(url)
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i != -1), default=len(rest))
    return f"{scheme}://{rest[:cut]}{_quote_rest(rest[cut:])}"


def _quote_rest(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        keep = _URI_KEEP.match(text, i)
        if keep:
            out.append(keep.group())
            i = keep.end()
        else:
            out.append("".join(f"%{b:02X}" for b in text[i].encode("utf-8")))
            i += 1
    return "".join(out)


def _media_type(seen: SeenFacts) -> str | None:
    """image/video/audio from the Content-Type of a check that served it
    (``online``, or ``reencoded``: the same picture in other bytes)."""
    if not _served(seen.verdict) or not seen.content_type:
        return None
    return _MEDIA.get(seen.content_type.split("/", 1)[0].strip().lower())


def _served(verdict: str | None) -> bool:
    try:
        return verdict is not None and Verdict(verdict).group is VerdictGroup.SERVED
    except ValueError:  # a verdict this version does not know
        return False


def _description(case: CaseFacts, seen: SeenFacts) -> str:
    parts = [f"Case {case.source}/{case.external_id} ({case.category}), reported "
             f"{_iso(case.reported_at)}; state {case.state}."]
    seen_text = "".join([
        f", HTTP {seen.http_status}" if seen.http_status is not None else "",
        f", address {seen.ip}" if seen.ip else "",
        f" (AS{seen.asn})" if seen.asn is not None else ""])
    same = seen.checked_at is not None and seen.checked_at == case.last_checked_at
    if case.last_checked_at is not None:
        parts.append(f"Last check {_iso(case.last_checked_at)}: {case.last_verdict}"
                     f"{seen_text if same else ''}.")
    if seen.checked_at is not None and not same:
        parts.append(f"Check of {_iso(seen.checked_at)}: {seen.verdict}{seen_text}.")
    if case.last_served_at is not None:
        parts.append(f"Last seen served {_iso(case.last_served_at)}.")
    parts.append("No material is attached.")
    text = " ".join(parts)
    return text if len(text) <= DESCRIPTION_MAX else text[:DESCRIPTION_MAX - 1] + "…"


def _is_hostname(name: str) -> bool:
    name = name.rstrip(".").lower()
    return (0 < len(name) <= 253 and "." in name
            and all(_LABEL.match(label) for label in name.split(".")))


def _iso(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z``."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
