"""Jurisdiction of a hoster of record: NL, another EU member state, outside the EU.

Decided by the country of establishment of the hoster of record only. Where
the servers stand (the network's registration) is reported beside it, never
instead: a US company's Amsterdam data centre is not Dutch-hosted, and a case
behind a CDN has no hoster of record, so its jurisdiction is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from enrichment.hosters import HosterDecision

__all__ = ["EU_MEMBER_STATES", "Area", "Jurisdiction", "is_dutch", "jurisdiction"]

# ISO 3166-1 alpha-2 codes of the 27 EU member states (since 2020-02-01).
EU_MEMBER_STATES: frozenset[str] = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})

# EU institutions write Greece "EL" and some sources the United Kingdom "UK";
# both are ISO-reserved, never another country.
_ALIASES = {"EL": "GR", "UK": "GB"}


def _user_assigned(code: str) -> bool:
    """ISO's private-use codes (AA, QM-QZ, XA-XZ, ZZ): RIRs use ZZ for "unknown"."""
    return code in ("AA", "ZZ") or code[0] == "X" or (code[0] == "Q" and code[1] >= "M")


class Area(StrEnum):
    NL = "NL"
    EU = "EU"  # another member state
    NON_EU = "non-EU"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Jurisdiction:
    """Where a hoster of record is established: the area and the country."""

    area: Area
    country: str | None  # ISO code; None when unknown or only "EU" was known

    @property
    def value(self) -> str:
        """The area as stored and reported: NL / EU / non-EU / unknown."""
        return self.area.value

    def __str__(self) -> str:
        if self.area is Area.EU and self.country:
            return f"EU ({self.country})"
        return self.area.value


def jurisdiction(country: str | None) -> Jurisdiction:
    """The jurisdiction of a country of establishment (ISO 3166-1 alpha-2).

    "EL" is read as Greece (GR) and "UK" as GB. "EU" (used by RIRs for an
    EU-wide registration) is the EU with no member state. Anything that is not
    a two-letter code, or is a private-use code such as "ZZ", is unknown.
    Non-EU EEA states (NO, IS, LI) are non-EU.
    """
    code = (country or "").strip().upper()
    code = _ALIASES.get(code, code)
    if len(code) != 2 or not code.isascii() or not code.isalpha() or _user_assigned(code):
        return Jurisdiction(Area.UNKNOWN, None)
    if code == "NL":
        return Jurisdiction(Area.NL, code)
    if code == "EU":
        return Jurisdiction(Area.EU, None)
    if code in EU_MEMBER_STATES:
        return Jurisdiction(Area.EU, code)
    return Jurisdiction(Area.NON_EU, code)


def is_dutch(decision: HosterDecision) -> bool:
    """True exactly when the hoster of record is established in the Netherlands."""
    return decision.hoster is not None and jurisdiction(decision.country).area is Area.NL
