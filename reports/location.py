"""Where the server stood against where the hoster is established (#14): the
two meanings of "Dutch-hosted", and the cases where they disagree.

Hotlines and their statistics (IWF, INHOPE, Offlimits) count a URL as hosted
in the Netherlands when **the server stands there** (the attribution's
``server_country``: the geolocation database, else the RDAP network's
country). ATKM's removal orders and the DSA's supervision follow where the
hosting company is **established** (the attribution's ``hoster_country``).
`location_flag()` names the two ways they can disagree; a case whose server
location or establishment is unknown is never flagged (nothing is guessed).

Pure: the evidence packs and the demo's closing table apply it to the
attribution of record of each case.
"""

from __future__ import annotations

from enum import StrEnum

from kernel.countries import country_code
from kernel.location import server_and_edge

__all__ = ["FLAG_TEXT", "LocationFlag", "location_flag", "server_location_of"]


class LocationFlag(StrEnum):
    NL_HOSTER_SERVER_ABROAD = "nl_hoster_server_abroad"
    FOREIGN_HOSTER_SERVER_NL = "foreign_hoster_server_nl"


FLAG_TEXT = {
    LocationFlag.NL_HOSTER_SERVER_ABROAD: (
        "the hoster is established in the Netherlands but served the case from a server "
        "abroad: ATKM's removal orders reach the hoster, while hotline statistics count "
        "the case as hosted outside the Netherlands"),
    LocationFlag.FOREIGN_HOSTER_SERVER_NL: (
        "the hoster is established outside the Netherlands but served the case from a "
        "server in the Netherlands: hotline statistics count the case as hosted in the "
        "Netherlands, while an ATKM removal order does not bind the hoster"),
}


def server_location_of(cdn: str | None, server_country: str | None) -> str | None:
    """The country a case counts as served from in the server-location split:
    None for a CDN-fronted case (the edge that answered says where the CDN
    answers, not where the material is hosted: kernel.location) and for a
    code that names no single country."""
    server, _ = server_and_edge(bool(cdn), country_code(server_country), None)
    return server


def location_flag(jurisdiction: str | None,
                  server_country: str | None) -> LocationFlag | None:
    """The disagreement between establishment and server location, if any.

    ``jurisdiction`` is the attribution's decided area of establishment of
    the hoster of record (enrichment/jurisdiction.py: NL / EU / non-EU /
    unknown; EU = another member state), ``server_country`` where the server
    stood. A hoster established in NL whose server stood abroad, or one
    established elsewhere whose server stood in NL, is flagged; None when
    both are on the same side of the border, or either is unknown.
    """
    server = country_code(server_country)
    if server is None:
        return None
    if jurisdiction == "NL" and server != "NL":
        return LocationFlag.NL_HOSTER_SERVER_ABROAD
    if jurisdiction in ("EU", "non-EU") and server == "NL":
        return LocationFlag.FOREIGN_HOSTER_SERVER_NL
    return None
