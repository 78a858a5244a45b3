"""Where a serving address is located: an IP geolocation database in the
MaxMind DB format, read with ``maxminddb`` (#14).

GeoLite2-Country, DB-IP Lite (country) and IPinfo Lite all ship such a file;
``HOSTWATCH_GEOIP_DB`` names it. A file of the same format that holds no
countries (GeoLite2-ASN, GeoIP2-ISP, DBIP-ASN-Lite...) is refused when it is
opened, naming its database type: it would otherwise give no location for
every address, silently. The country is where the *server* stands,
which is what hotline statistics (IWF, INHOPE, Offlimits) count as "hosted
in NL" — not where the hosting company is established (enrichment/hosters.py,
enrichment/jurisdiction.py), which is what ATKM's reach follows.

Without a database, or for an address the database does not know, the RDAP
network's country stands in, marked ``rdap``:
registries record where a block is registered, which is usually but not
always where it is used. Only the network object's own ``country`` counts
(`enrichment.rdap_parse`): ARIN's network objects carry none, and the
holder's postal address is where the company sits, not the server, so there
is then no country. Nothing else is guessed: no answer is no country.
The file is opened once and read from memory-mapped pages; nothing is
downloaded.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from kernel.countries import country_code
from kernel.errors import EnrichmentError

__all__ = ["GeoDb", "GeoDbError", "LocationSource", "ServerLocation", "server_location"]


class GeoDbError(EnrichmentError):
    """The geolocation database cannot be used; the message names the file."""


class LocationSource(StrEnum):
    GEOIP = "geoip"  # the geolocation database (HOSTWATCH_GEOIP_DB)
    # The RDAP network object's own country: no database, or it did not know
    # the address.
    RDAP = "rdap"


@dataclass(frozen=True)
class ServerLocation:
    """Where a serving address is located, and where that was read."""

    country: str | None  # ISO 3166-1 alpha-2, upper case; None: not known
    source: LocationSource | None  # None when nothing was known
    built_at: datetime | None = None  # the database's build time (geoip only)


def server_location(geo: ServerLocation | None, rdap_country: str | None) -> ServerLocation:
    """The rule: the database's country when it has one for the address;
    else (no database configured, or an address it does not know) the RDAP
    network's country, marked ``rdap``; else nothing."""
    if geo is not None and geo.country is not None:
        return geo
    country = country_code(rdap_country)
    if country is not None:
        return ServerLocation(country, LocationSource.RDAP)
    return ServerLocation(None, None)


def _country(record: Any) -> str | None:
    """The country of a record of any of the common layouts: MaxMind and
    DB-IP (``country.iso_code``), IPinfo Lite (``country_code``, beside
    ``country`` as a name), IPinfo's older country files (``country`` as the
    code itself, "NL"); codes that name no single country ("EU", "ZZ"...)
    are none (kernel/countries.py)."""
    if not isinstance(record, dict):
        return None
    country = record.get("country")
    code = country.get("iso_code") if isinstance(country, dict) else None
    if code is None:
        code = record.get("country_code")
    if code is None and isinstance(country, str):
        code = country
    return country_code(code)


# The products in the MaxMind DB format that hold no country per address
# (matched against the file's database_type, case-insensitively, as words:
# "GeoLite2-ASN", "DBIP-ASN-Lite (compat=GeoLite2-ASN)", "ipinfo asn.mmdb"),
# unless the type also names locations ("DBIP-Location-ISP"): those are
# judged by their records alone.
_NO_COUNTRY = re.compile(
    r"(?<![a-z0-9])(asn|isp|anonymous-ip|anonymous-plus|connection-type|domain|"
    r"ip-risk|static-ip-score|user-count|carrier|privacy)(?![a-z0-9])")
_LOCATION = re.compile(r"country|city|location|enterprise|precision")
# A file of another type is looked at: its first records must hold a country
# layout `_country` reads, else it is refused all the same.
_PROBE_RECORDS = 1000


def _has_country_layout(record: Any) -> bool:
    return isinstance(record, dict) and ("country" in record or "country_code" in record)


class GeoDb:
    """An open geolocation database: ``GeoDb(path)``, ``locate(ip)``, ``close()``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        named = f"HOSTWATCH_GEOIP_DB={str(self.path)!r}"
        if not self.path.exists():
            raise GeoDbError(f"{named}: no such file")
        if not self.path.is_file():
            raise GeoDbError(f"{named}: not a file")
        try:
            self._reader = maxminddb.open_database(str(self.path))
        except (InvalidDatabaseError, ValueError) as exc:
            raise GeoDbError(f"{named}: not a MaxMind DB file ({exc})") from exc
        except OSError as exc:
            raise GeoDbError(f"{named}: cannot read it ({exc.strerror or exc})") from exc
        meta = self._reader.metadata()
        self.database_type: str = meta.database_type
        self.built_at = datetime.fromtimestamp(meta.build_epoch, UTC)
        self.ip_version: int = meta.ip_version
        try:
            holds = self._holds_countries()
        except (InvalidDatabaseError, ValueError) as exc:
            self._reader.close()
            raise GeoDbError(f"{named}: damaged ({exc})") from exc
        if not holds:
            self._reader.close()
            raise GeoDbError(f"{named}: a {self.database_type!r} database holds no country "
                             f"data (use a country or city database: GeoLite2-Country, "
                             f"DB-IP Lite country, IPinfo Lite)")

    def _holds_countries(self) -> bool:
        """Whether the file is a database of countries: not a product known
        to hold none (by its database_type), and a country layout in one of
        its first records (a file of no records holds none)."""
        kind = self.database_type.lower()
        if _NO_COUNTRY.search(kind) and not _LOCATION.search(kind):
            return False
        records = itertools.islice(iter(self._reader), _PROBE_RECORDS)
        return any(_has_country_layout(record) for _, record in records)

    @classmethod
    def from_setting(cls, value: str) -> GeoDb | None:
        """The database HOSTWATCH_GEOIP_DB names, or None when it is empty."""
        return cls(value) if value.strip() else None

    def locate(self, ip: str) -> ServerLocation:
        """Where ``ip`` is located by this database; country None when the
        database does not know the address (or an IPv6 address meets an
        IPv4-only database)."""
        address = ipaddress.ip_address(ip)
        if address.version == 6 and self.ip_version == 4:
            return ServerLocation(None, LocationSource.GEOIP, self.built_at)
        try:
            record = self._reader.get(str(address))
        except InvalidDatabaseError as exc:
            raise GeoDbError(f"HOSTWATCH_GEOIP_DB={str(self.path)!r}: damaged at the "
                             f"record of {address} ({exc})") from exc
        return ServerLocation(_country(record), LocationSource.GEOIP, self.built_at)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> GeoDb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
