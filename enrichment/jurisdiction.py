"""Jurisdiction of a hoster of record: NL, another EU member state, outside the EU.

Decided by the country of establishment of the hoster of record only. Where
the servers stand (enrichment/geo.py) is reported beside it, never instead:
a US company's Amsterdam data centre is not established in NL (though
hotline statistics count its cases as hosted in NL), and a case behind a CDN
has no hoster of record, so its jurisdiction is unknown. Country codes are
read by the one rule of kernel/countries.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from kernel.countries import country_code

if TYPE_CHECKING:
    from enrichment.hosters import HosterDecision

__all__ = ["EU_MEMBER_STATES", "Area", "Jurisdiction", "is_dutch", "jurisdiction"]

# ISO 3166-1 alpha-2 codes of the 27 EU member states (since 2020-02-01).
EU_MEMBER_STATES: frozenset[str] = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})


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

    "EU" (used by RIRs for an EU-wide registration) is the EU with no member
    state. Otherwise the code is read by `kernel.countries.country_code`
    ("EL" is Greece, "UK" is GB, Kosovo's XK a non-EU country); a code of no
    single country ("ZZ", "AP", other private-use codes) or anything that is
    not a two-letter code is unknown. Non-EU EEA states (NO, IS, LI) are non-EU.
    """
    if (country or "").strip().upper() == "EU":
        return Jurisdiction(Area.EU, None)
    code = country_code(country)
    if code is None:
        return Jurisdiction(Area.UNKNOWN, None)
    if code == "NL":
        return Jurisdiction(Area.NL, code)
    if code in EU_MEMBER_STATES:
        return Jurisdiction(Area.EU, code)
    return Jurisdiction(Area.NON_EU, code)


def is_dutch(decision: HosterDecision) -> bool:
    """True exactly when the hoster of record is established in the Netherlands."""
    return decision.hoster is not None and jurisdiction(decision.country).area is Area.NL
