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

__all__ = ["FLAG_TEXT", "LocationFlag", "location_flag"]


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


def _code(country: str | None) -> str | None:
    """A country, or None when it names none: empty, "EU" (somewhere in the
    Union, the Netherlands perhaps), or ISO's private-use codes (ZZ, XX...)."""
    code = (country or "").strip().upper()
    if len(code) != 2 or not code.isalpha() or code == "EU":
        return None
    if code in ("AA", "ZZ") or code[0] == "X" or (code[0] == "Q" and code[1] >= "M"):
        return None
    return code


def location_flag(hoster_country: str | None, server_country: str | None) -> LocationFlag | None:
    """The disagreement between establishment and server location, if any:
    a hoster established in NL whose server stood abroad, or a hoster
    established elsewhere whose server stood in NL; None when both are in
    NL, both abroad, or either is unknown."""
    established, server = _code(hoster_country), _code(server_country)
    if established is None or server is None:
        return None
    if established == "NL" and server != "NL":
        return LocationFlag.NL_HOSTER_SERVER_ABROAD
    if established != "NL" and server == "NL":
        return LocationFlag.FOREIGN_HOSTER_SERVER_NL
    return None
