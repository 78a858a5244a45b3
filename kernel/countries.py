"""Country codes as hostwatch stores them: ISO 3166-1 alpha-2, or nothing.

Geolocation databases and registries also write codes that name no country:
"EU" (somewhere in the Union), "AP" (Asia/Pacific), ISO's user-assigned
codes that registries use for "unknown" (ZZ, AA, QM-QZ, XA-XZ). Stored as a
server location such a code would be counted as "abroad", or hide a Dutch
server: hostwatch stores None for it instead. Kosovo's XK is a country.
EU institutions write Greece "EL" and some sources the United Kingdom "UK":
both are ISO-reserved for those countries and read as GR and GB, so one
country is never counted under two codes. The same rule serves the server
location and the hoster's establishment (enrichment/jurisdiction.py).
"""

from __future__ import annotations

__all__ = ["country_code"]

_REGIONS = frozenset({"EU", "AP", "AA", "ZZ"})
_ALIASES = {"EL": "GR", "UK": "GB"}


def country_code(value: object) -> str | None:
    """``value`` as an upper-case alpha-2 country code, or None when it names
    no single country."""
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    code = _ALIASES.get(code, code)
    if len(code) != 2 or not code.isascii() or not code.isalpha() or code in _REGIONS:
        return None
    if (code[0] == "X" and code != "XK") or (code[0] == "Q" and code[1] >= "M"):
        return None
    return code
