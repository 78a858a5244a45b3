"""Hosting companies and the hoster of record.

`HosterRegistry` reads the shipped registry (``enrichment/data/hosters.toml``,
whose top comment documents the format) and, merged over it by ``id``, the
user's file (HOSTWATCH_HOSTERS). `hoster_of_record()` decides who hosts a
case from the registry, RDAP and the AS names, and says which source decided
each field.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from enrichment import EnrichmentError
from kernel.cdn import CdnDetection
from kernel.countries import country_code

__all__ = [
    "CDN_OPERATORS",
    "SHIPPED_HOSTERS",
    "DsaRole",
    "Hoster",
    "HosterDecision",
    "HosterRegistry",
    "hoster_of_record",
]

SHIPPED_HOSTERS = Path(__file__).with_name("data") / "hosters.toml"

# The registry entries of the company running each CDN that `detect_cdn` names
# (the first is the one whose abuse contact is used); a CDN-fronted case gets
# the CDN's abuse contact from here.
CDN_OPERATORS: Mapping[str, tuple[str, ...]] = {
    "Cloudflare": ("cloudflare",),
    "Akamai": ("akamai", "akamai-international"),
    "Fastly": ("fastly",),
    "Amazon CloudFront": ("amazon", "amazon-ireland"),
    "Google Cloud CDN": ("google",),
    "Bunny CDN": ("bunny",),
    "StackPath": ("stackpath",),
}

_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MAX_ASN = 2**32 - 1
_REQUIRED = ("legal_name", "country", "asns", "rdap_orgs", "dsa_role", "abuse", "cdn")
_FIELDS = frozenset(("id", "note", *_REQUIRED))


class DsaRole(StrEnum):
    """What a company does with the material (EU Digital Services Act terms)."""

    HOSTING = "hosting"  # stores it for customers (art. 6): a possible hoster of record
    CDN = "cdn"  # caches and relays it from an origin elsewhere (art. 5)
    INTERMEDIARY = "intermediary"  # in the path without storing it (proxy, transit)


@dataclass(frozen=True)
class Hoster:
    """One company (legal entity) of the registry."""

    id: str
    legal_name: str
    country: str  # ISO 3166-1 alpha-2, country of establishment
    asns: tuple[int, ...]
    rdap_orgs: tuple[str, ...]  # lower-case substrings of RDAP org names
    dsa_role: DsaRole
    abuse: str  # e-mail or URL; "" when unknown
    cdn: bool
    note: str = ""


@dataclass(frozen=True)
class HosterDecision:
    """The hoster of record of one case, and where each field came from.

    ``sources`` maps ``hoster``, ``country``, ``dsa_role``, ``abuse`` and
    ``cdn`` to the deciding source: ``registry:asn``, ``registry:rdap_org``,
    ``registry:cdn`` (the CDN's own entry), ``rdap``, ``asn_names``, ``cdn``
    (a CDN in front hides the origin) or ``none``.
    """

    hoster: str | None
    hoster_id: str | None
    country: str | None
    dsa_role: str | None
    abuse: str | None
    cdn: str | None
    sources: dict[str, str] = field(default_factory=dict)


def _fail(path: Path, entry: str, name: str | None, problem: str) -> EnrichmentError:
    where = f"{path}: hoster {entry}"
    return EnrichmentError(f"{where}, field {name!r}: {problem}" if name else f"{where}: {problem}")


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise EnrichmentError(f"{path}: cannot read the hoster registry: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise EnrichmentError(f"{path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"hoster"})
    if unknown:
        raise EnrichmentError(f"{path}: unknown top-level key(s) {unknown}; "
                              "entries are [[hoster]] tables")
    entries = data.get("hoster", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise EnrichmentError(f"{path}: 'hoster' must be an array of tables ([[hoster]])")
    return entries


def _check_field(path: Path, entry: str, name: str, value: Any) -> Any:
    """The value of one field in its stored form, or an error naming it."""

    def bad(problem: str) -> EnrichmentError:
        return _fail(path, entry, name, problem)

    if name in ("legal_name", "note"):
        if not isinstance(value, str) or (name == "legal_name" and not value.strip()):
            raise bad("must be a non-empty string" if name == "legal_name" else "must be a string")
        return value.strip()
    if name == "country":
        if not isinstance(value, str) or not _COUNTRY.match(value):
            raise bad(f"must be 2 upper-case letters (ISO 3166-1 alpha-2), not {value!r}")
        return value
    if name == "asns":
        if not isinstance(value, list) or not all(
                isinstance(a, int) and not isinstance(a, bool) and 0 < a <= _MAX_ASN
                for a in value):
            raise bad(f"must be a list of AS numbers (integers 1-{_MAX_ASN}), not {value!r}")
        if len(set(value)) != len(value):
            raise bad("lists an AS twice")
        return tuple(value)
    if name == "rdap_orgs":
        if not isinstance(value, list) or not all(isinstance(o, str) and o.strip()
                                                  for o in value):
            raise bad(f"must be a list of non-empty strings, not {value!r}")
        return tuple(_norm_org(o) for o in value)
    if name == "dsa_role":
        try:
            return DsaRole(value)
        except ValueError:
            raise bad(f"must be one of {[r.value for r in DsaRole]}, not {value!r}") from None
    if name == "abuse":
        if not isinstance(value, str):
            raise bad("must be a string (\"\" when unknown)")
        value = value.strip()
        if value and not (_EMAIL.match(value) or value.startswith(("https://", "http://"))):
            raise bad(f"must be an e-mail address or an http(s) URL, not {value!r}")
        return value
    if name == "cdn":
        if not isinstance(value, bool):
            raise bad(f"must be true or false, not {value!r}")
        return value
    raise bad(f"unknown field (known: {sorted(_FIELDS)})")


def _norm_org(name: str) -> str:
    return " ".join(name.casefold().split())


def _merge_file(path: Path, merged: dict[str, dict[str, Any]], origin: dict[str, Path],
                *, overriding: bool) -> None:
    """Check the entries of ``path`` and lay them over ``merged`` by id."""
    seen: set[str] = set()
    for number, raw in enumerate(_read(path), start=1):
        entry_id = raw.get("id")
        if not isinstance(entry_id, str) or not _ID.match(entry_id):
            raise _fail(path, f"#{number}", "id",
                        f"must be a slug (lower-case letters, digits, '-'), not {entry_id!r}")
        label = f"{entry_id!r}"
        if entry_id in seen:
            raise _fail(path, label, "id", "appears twice in this file")
        seen.add(entry_id)
        fields = {name: _check_field(path, label, name, value)
                  for name, value in raw.items() if name != "id"}
        if overriding and entry_id in merged:
            merged[entry_id] = {**merged[entry_id], **fields}
        else:
            missing = [name for name in _REQUIRED if name not in fields]
            if missing:
                raise _fail(path, label, missing[0],
                            "is missing" + (" (a new entry needs every field but 'note')"
                                            if overriding else ""))
            merged[entry_id] = fields
        origin[entry_id] = path


class HosterRegistry:
    """The known hosting companies, found by ASN or by RDAP org name."""

    def __init__(self, hosters: Mapping[str, Hoster] | None = None,
                 origin: Mapping[str, Path] | None = None) -> None:
        self._hosters: dict[str, Hoster] = dict(hosters or {})
        self._by_asn: dict[int, Hoster] = {}
        self._orgs: list[tuple[str, Hoster]] = []
        org_owner: dict[str, Hoster] = {}
        where = dict(origin or {})

        def named(hoster: Hoster) -> str:
            return f"{hoster.id!r} ({where[hoster.id]})" if hoster.id in where \
                else repr(hoster.id)

        for hoster in self._hosters.values():
            for asn in hoster.asns:
                other = self._by_asn.get(asn)
                if other is not None:
                    raise EnrichmentError(
                        f"hoster registry: AS{asn} is listed by both {named(other)} and "
                        f"{named(hoster)}; an AS may belong to one entry only")
                self._by_asn[asn] = hoster
            for org in hoster.rdap_orgs:
                owner = org_owner.get(org)
                if owner is not None and owner is not hoster:
                    raise EnrichmentError(
                        f"hoster registry: rdap_orgs {org!r} is listed by both "
                        f"{named(owner)} and {named(hoster)}")
                org_owner[org] = hoster
                self._orgs.append((org, hoster))
        # Longest substring first: "serverius ii" is tried before "serverius".
        self._orgs.sort(key=lambda item: -len(item[0]))

    @classmethod
    def load(cls, shipped: Path | None = SHIPPED_HOSTERS,
             user: Path | None = None) -> HosterRegistry:
        """Read ``shipped`` (None: none) and lay ``user`` over it by id.

        Raises `EnrichmentError` naming the file, the entry and the field of
        the first mistake, or both entries when an AS or an RDAP org substring
        is listed twice.
        """
        merged: dict[str, dict[str, Any]] = {}
        origin: dict[str, Path] = {}
        if shipped is not None:
            _merge_file(shipped, merged, origin, overriding=False)
        if user is not None:
            _merge_file(user, merged, origin, overriding=True)
        hosters = {
            entry_id: Hoster(id=entry_id, legal_name=f["legal_name"], country=f["country"],
                             asns=f["asns"], rdap_orgs=f["rdap_orgs"], dsa_role=f["dsa_role"],
                             abuse=f["abuse"], cdn=f["cdn"], note=f.get("note", ""))
            for entry_id, f in merged.items()
        }
        return cls(hosters, origin)

    def __iter__(self) -> Iterator[Hoster]:
        return iter(self._hosters.values())

    def __len__(self) -> int:
        return len(self._hosters)

    def get(self, hoster_id: str) -> Hoster | None:
        return self._hosters.get(hoster_id)

    def by_asn(self, asn: int | None) -> Hoster | None:
        return self._by_asn.get(asn) if asn is not None else None

    def by_org(self, org_name: str | None) -> Hoster | None:
        """The entry one of whose ``rdap_orgs`` occurs in ``org_name`` (longest wins)."""
        if not org_name:
            return None
        name = _norm_org(org_name)
        for org, hoster in self._orgs:
            if org in name:
                return hoster
        return None


# Codes registries use that name no country (unknown ZZ, the EU as a whole,
# Asia-Pacific AP) fall through to the next source.
def _country(value: str | None) -> str | None:
    """A country of establishment read from RDAP or the AS names: the one rule
    of kernel/countries.py (regions and "unknown" codes name no country)."""
    return country_code(value)


def _cdn_fronted(cdn_name: str, cdn_source: str, operator: Hoster | None) -> HosterDecision:
    abuse = operator.abuse if operator is not None and operator.abuse else None
    return HosterDecision(
        hoster=None, hoster_id=None, country=None, dsa_role=DsaRole.INTERMEDIARY.value,
        abuse=abuse, cdn=cdn_name,
        sources={"hoster": "cdn", "country": "cdn", "dsa_role": "cdn",
                 "abuse": "registry:cdn" if abuse else "none", "cdn": cdn_source})


def _address_is_cdns(cdn: CdnDetection, asn: int | None, entry: Hoster | None) -> bool:
    """Whether the address may belong to the detected CDN (see hoster_of_record)."""
    if any(e.startswith("asn ") for e in cdn.evidence):
        return True
    if entry is not None:
        return entry.cdn or entry.id in CDN_OPERATORS.get(cdn.name, ())
    return asn is None


def _cdn_name(entry: Hoster) -> str:
    """The CDN name `detect_cdn` would use for a registry entry, else its legal name."""
    for name, ids in CDN_OPERATORS.items():
        if entry.id in ids:
            return name
    return entry.legal_name


def hoster_of_record(*, asn: int | None, as_name: str | None, as_country: str | None,
                     rdap_org: str | None, rdap_country: str | None,
                     cdn: CdnDetection | None, registry: HosterRegistry) -> HosterDecision:
    """Who hosts a case, and which source said so.

    In order: the registry entry of the ASN; the registry entry whose
    ``rdap_orgs`` occur in the RDAP org; an unregistered hoster named by the
    RDAP org (country: the RDAP country, else the AS country); the AS name
    with the AS country; unknown.

    A case behind a CDN - detected, or on a registry entry marked ``cdn`` -
    has an unknown origin: hoster and country are None, ``dsa_role`` is
    "intermediary" and ``cdn`` names the CDN. It is never counted as hosted
    in the CDN's country.

    CDN signs in headers or CNAMEs count only when the address may be the
    CDN's: its ASN is a CDN's (a CDN rule or the registry says so, or the CDN's
    operator holds it), or nothing is known of the address. A server's own
    headers cannot hide a known hoster (a ``cf-ray`` header served from
    LeaseWeb's network leaves the case at LeaseWeb).
    """
    by_asn = registry.by_asn(asn)
    by_org = registry.by_org(rdap_org) if by_asn is None else None
    entry, source = (by_asn, "registry:asn") if by_asn is not None else \
        (by_org, "registry:rdap_org")

    if cdn is not None and _address_is_cdns(cdn, asn, entry):
        ids = CDN_OPERATORS.get(cdn.name, ())
        operator = entry if entry is not None and entry.id in ids else \
            next((h for h in map(registry.get, ids) if h is not None), None)
        return _cdn_fronted(cdn.name, "cdn", operator)
    if entry is not None and entry.cdn:
        return _cdn_fronted(_cdn_name(entry), source, entry)
    if entry is not None:
        return HosterDecision(
            hoster=entry.legal_name, hoster_id=entry.id, country=entry.country,
            dsa_role=entry.dsa_role.value, abuse=entry.abuse or None, cdn=None,
            sources={"hoster": source, "country": source, "dsa_role": source,
                     "abuse": source if entry.abuse else "none", "cdn": "none"})

    none = {"dsa_role": "none", "abuse": "none", "cdn": "none"}
    if rdap_org and rdap_org.strip():
        country, country_source = _country(rdap_country), "rdap"
        if country is None:
            country, country_source = _country(as_country), "asn_names"
        return HosterDecision(
            hoster=rdap_org.strip(), hoster_id=None, country=country, dsa_role=None,
            abuse=None, cdn=None,
            sources={"hoster": "rdap", "country": country_source if country else "none",
                     **none})
    if as_name and as_name.strip():
        country = _country(as_country)
        return HosterDecision(
            hoster=as_name.strip(), hoster_id=None, country=country, dsa_role=None,
            abuse=None, cdn=None,
            sources={"hoster": "asn_names", "country": "asn_names" if country else "none",
                     **none})
    return HosterDecision(hoster=None, hoster_id=None, country=None, dsa_role=None,
                          abuse=None, cdn=None,
                          sources={"hoster": "none", "country": "none", **none})
