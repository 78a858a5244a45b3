"""Closed sets shared by every stage: categories, verdicts, case states.

These are plain enums with string values; the store keeps the values as text so
that a new member needs no schema change.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    CSAM = "csam"
    CSAM_AI = "csam_ai"
    NCII = "ncii"
    DEEPFAKE_ADULT = "deepfake_adult"
    SEXTORTION = "sextortion"
    TERRORIST = "terrorist"
    OTHER = "other"


class Method(StrEnum):
    HTTP = "http"
    BROWSER = "browser"
    IMPORTED = "imported"


class Verdict(StrEnum):
    # Served.
    ONLINE = "online"
    REENCODED = "reencoded"  # other bytes, the same picture (PDQ): still served
    CHANGED = "changed"
    # Gone.
    HTTP_GONE = "http_gone"
    LEGAL_BLOCK = "legal_block"
    PLACEHOLDER = "placeholder"
    REDIRECT_AWAY = "redirect_away"
    NXDOMAIN = "nxdomain"
    # Transient: say nothing about the material on their own.
    TIMEOUT = "timeout"
    REFUSED = "refused"
    SERVER_ERROR = "server_error"
    TLS_ERROR = "tls_error"
    DNS_ERROR = "dns_error"
    BAD_RESPONSE = "bad_response"
    REDIRECT_LOOP = "redirect_loop"
    ACCESS_DENIED = "access_denied"  # 401/403/408...: says nothing about the material
    INCOMPLETE = "incomplete"  # a browser page still loading when its time ran out
    # Never fetched.
    BLOCKED_ADDRESS = "blocked_address"

    @property
    def group(self) -> VerdictGroup:
        return _GROUPS[self]


class VerdictGroup(StrEnum):
    SERVED = "served"
    GONE = "gone"
    TRANSIENT = "transient"
    NOT_FETCHED = "not_fetched"


# `changed` is served content, but not the reported material: for the
# material's survival it counts as gone (DESIGN: "the reported material is gone
# from this URL").
_GROUPS: dict[Verdict, VerdictGroup] = {
    Verdict.ONLINE: VerdictGroup.SERVED,
    Verdict.REENCODED: VerdictGroup.SERVED,
    Verdict.CHANGED: VerdictGroup.GONE,
    Verdict.HTTP_GONE: VerdictGroup.GONE,
    Verdict.LEGAL_BLOCK: VerdictGroup.GONE,
    Verdict.PLACEHOLDER: VerdictGroup.GONE,
    Verdict.REDIRECT_AWAY: VerdictGroup.GONE,
    Verdict.NXDOMAIN: VerdictGroup.GONE,
    Verdict.TIMEOUT: VerdictGroup.TRANSIENT,
    Verdict.REFUSED: VerdictGroup.TRANSIENT,
    Verdict.SERVER_ERROR: VerdictGroup.TRANSIENT,
    Verdict.TLS_ERROR: VerdictGroup.TRANSIENT,
    Verdict.DNS_ERROR: VerdictGroup.TRANSIENT,
    Verdict.BAD_RESPONSE: VerdictGroup.TRANSIENT,
    Verdict.REDIRECT_LOOP: VerdictGroup.TRANSIENT,
    Verdict.ACCESS_DENIED: VerdictGroup.TRANSIENT,
    Verdict.INCOMPLETE: VerdictGroup.TRANSIENT,
    Verdict.BLOCKED_ADDRESS: VerdictGroup.NOT_FETCHED,
}


class PdqSource(StrEnum):
    """Where a case's reference PDQ came from (store.Case.ref_pdq_source)."""

    REPORT = "report"  # the import's pdq column: the hotline's hash of the reported file
    LEARNED = "learned"  # the PDQ of the first check whose SHA-256 matched the report's


class CaseState(StrEnum):
    UNCHECKED = "unchecked"  # imported, never checked
    ONLINE = "online"  # last decisive check found the material served
    PENDING_REMOVAL = "pending_removal"  # gone or unreachable, not yet confirmed
    REMOVED = "removed"  # removal confirmed by the debounce rule
    REAPPEARED = "reappeared"  # served again after a confirmed removal


class RunHealth(StrEnum):
    """Whether a crawl run's vantage point could be trusted (store.health).

    The failing (gone and transient) checks of a run count toward a case's
    state only once the run is judged healthy: a dead resolver or a blocked
    uplink makes every URL look gone at once, and that says nothing about the
    material. Served checks always count: a URL that answered with the
    material is positive evidence from any vantage point.
    """

    PENDING = "pending"  # running, or ended without a judgement yet
    HEALTHY = "healthy"  # controls served (if any), no anomaly
    SUSPECT = "suspect"  # a control failed, or the anomaly rule fired


class AliasKind(StrEnum):
    """How a source names a hoster (store.HosterAlias.kind), most certain first."""

    REGISTRY = "registry"  # the id of hostwatch's registry entry
    ASN = "asn"  # an AS number the registry entry lists
    RDAP_HANDLE = "rdap_handle"  # the RDAP organisation handle of the registrant
    LEGAL_NAME = "legal_name"  # the registry entry's legal name, reduced
    RDAP_ORG = "rdap_org"  # the RDAP registrant's name, reduced
    AS_NAME = "as_name"  # the company part of the AS name, reduced
    KEY = "key"  # a key the hoster had before duplicates were merged


NAME_KINDS = (AliasKind.LEGAL_NAME, AliasKind.RDAP_ORG, AliasKind.AS_NAME)
